// Compiles l2x's contracts with the pinned solc, in one compiler input with one set of
// settings, and writes the artifact the Rust code embeds for each (CONTRACTS below:
// `<Name>.sol` → `<Name>.json`: ABI, creation and runtime bytecode, the runtime code's
// immutable references by the immutable's name). `--check` compiles and fails, naming each
// artifact that differs from what is committed: the bytecode on chain is the bytecode of
// the source.
//
//   L2xSettlement: the settlement contract (docs/SETTLEMENT.md, "Contract").
//   L2xTestUSD:    an ERC-20 with 6 decimals for tests and the demo, never production
//                  collateral (docs/SETTLEMENT.md, "Test token").
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const dir = __dirname;
const CONTRACTS = ['L2xSettlement', 'L2xTestUSD'];

const sources = {};
for (const name of CONTRACTS) {
  sources[`${name}.sol`] = { content: fs.readFileSync(path.join(dir, `${name}.sol`), 'utf8') };
}
const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'cancun',
    // No metadata hash: the bytecode depends on the source and the settings only.
    metadata: { bytecodeHash: 'none', appendCBOR: false },
    outputSelection: {
      // The AST only to name the immutables (solc keys their references by AST id).
      '*': {
        '': ['ast'],
        '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.deployedBytecode.immutableReferences'],
      },
    },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
for (const e of output.errors || []) console.error(e.formattedMessage);
if ((output.errors || []).some((e) => e.severity === 'error')) process.exit(1);

// The name of every `immutable` in the sources, by the AST id solc keys its references with.
function immutableNames() {
  const names = new Map();
  const walk = (node) => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    if (node.nodeType === 'VariableDeclaration' && node.mutability === 'immutable') names.set(String(node.id), node.name);
    Object.values(node).forEach(walk);
  };
  for (const source of Object.values(output.sources)) walk(source.ast);
  return names;
}
const names = immutableNames();

// Where the constructor writes each `immutable` into the deployed code: for each name, the
// byte ranges (offset and length in deployedBytecode, zero there). Code read from a chain
// differs from deployedBytecode exactly there, so a verifier fills or masks them.
function immutableReferences(contract, refs) {
  const byName = {};
  for (const [id, ranges] of Object.entries(refs || {})) {
    const name = names.get(id);
    if (name === undefined) throw new Error(`${contract}: no immutable with AST id ${id}`);
    if (name in byName) throw new Error(`${contract}: two immutables named ${name}`);
    byName[name] = ranges.map(({ start, length }) => ({ start, length })).sort((a, b) => a.start - b.start);
  }
  const sorted = {};
  for (const name of Object.keys(byName).sort()) sorted[name] = byName[name];
  return sorted;
}

function artifact(name) {
  const c = output.contracts[`${name}.sol`][name];
  return {
    compiler: `solc ${solc.version()}`,
    settings: input.settings,
    abi: c.abi,
    bytecode: '0x' + c.evm.bytecode.object,
    deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    immutableReferences: immutableReferences(name, c.evm.deployedBytecode.immutableReferences),
  };
}

const check = process.argv.includes('--check');
let differs = 0;
for (const name of CONTRACTS) {
  const text = JSON.stringify(artifact(name), null, 2) + '\n';
  const out = path.join(dir, `${name}.json`);
  if (!check) {
    fs.writeFileSync(out, text);
    console.log(`wrote ${out}`);
  } else if (!fs.existsSync(out) || fs.readFileSync(out, 'utf8') !== text) {
    const what = fs.existsSync(out) ? `is not what ${name}.sol compiles to` : 'is missing';
    console.error(`${name}.json ${what}: run \`npm run build\` in settlement/contracts`);
    differs += 1;
  } else {
    console.log(`${name}.json matches its source`);
  }
}
if (differs > 0) process.exit(1);
