// Compiles L2xSettlement.sol with the pinned solc and writes the artifact the Rust code
// embeds (L2xSettlement.json: ABI, creation and runtime bytecode, the runtime code's
// immutable references). `--check` compiles and
// fails if the committed artifact differs: the bytecode on chain is the bytecode of the source.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const dir = __dirname;
const source = fs.readFileSync(path.join(dir, 'L2xSettlement.sol'), 'utf8');
const input = {
  language: 'Solidity',
  sources: { 'L2xSettlement.sol': { content: source } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'cancun',
    // No metadata hash: the bytecode depends on the source and the settings only.
    metadata: { bytecodeHash: 'none', appendCBOR: false },
    outputSelection: {
      '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.deployedBytecode.immutableReferences'] },
    },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length > 0) process.exit(1);
const c = output.contracts['L2xSettlement.sol'].L2xSettlement;
const artifact = {
  compiler: `solc ${solc.version()}`,
  settings: input.settings,
  abi: c.abi,
  bytecode: '0x' + c.evm.bytecode.object,
  deployedBytecode: '0x' + c.evm.deployedBytecode.object,
  // Where the constructor writes `immutable` values into the deployed code (byte offsets and
  // lengths in deployedBytecode, zero here): code read from a chain differs from
  // deployedBytecode exactly there (`submitter`, a 32-byte word), so a verifier masks them.
  immutableReferences: Object.values(c.evm.deployedBytecode.immutableReferences || {}).flat(),
};
const text = JSON.stringify(artifact, null, 2) + '\n';
const out = path.join(dir, 'L2xSettlement.json');
if (process.argv.includes('--check')) {
  const committed = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
  if (committed !== text) {
    console.error('L2xSettlement.json is not what L2xSettlement.sol compiles to: run `npm run build` in settlement/contracts');
    process.exit(1);
  }
  console.log('L2xSettlement.json matches its source');
} else {
  fs.writeFileSync(out, text);
  console.log(`wrote ${out}`);
}
