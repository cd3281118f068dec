//! The embedded chain: the settlement contract's committed bytecode executed in-process by
//! revm, its state kept in one file so that a restart continues where it stopped
//! (docs/SETTLEMENT.md, "Chain backends").
//!
//! ```text
//!  open(dir) ──▶ genesis: deploy ARTIFACT (+ constructor(SUBMITTER)) in a fresh revm state
//!                  │          (the same creation code `l2x settle deploy` sends to a node)
//!                  ▼
//!             dir/chain.l2xc present? ──▶ check it (magic, version, checksum, contract
//!                  │                      address and code hash = genesis's), restore the
//!                  │                      contract's storage and the submitter's nonce
//!                  ▼
//!  commit(batch) ──▶ commitBatch(…) as a transaction from SUBMITTER, one block per commit
//!                  reverted: Refused (decoded), nothing changes
//!                  succeeded: apply the state change, write chain.l2xc (temporary file,
//!                             fsync, rename, fsync the directory), then return
//!  last_committed / committed / verify_leaf ──▶ calls of the contract's views, never committed
//! ```
//!
//! Everything the contract checks on a node it checks here, by the same bytecode: the
//! submitter, the next index, the previous root, the data hash. What the embedded chain
//! does not have is other parties: it is final at once (one confirmation, no reorgs, no
//! fees), and it is as durable as the file. A crash between executing a commit and
//! renaming the file loses that commit, exactly like a transaction a node dropped: the
//! submitter reads the chain on restart and sends the batch again.
//!
//! `chain.l2xc` (all integers big-endian, like the EVM's words):
//!
//! ```text
//!  "L2XCHAIN" | version u32 = 1 | block u64 | contract address 20 | submitter address 20
//!  | contract code hash 32 | submitter nonce u64 | slots u32 | (slot 32, value 32) × slots,
//!  ascending by slot | keccak-256 of everything before 32
//! ```
//!
//! One process writes a chain directory at a time (a `flock` on `dir/LOCK`); readers
//! ([`EmbeddedChain::read_only`]) take no lock: the file is only ever replaced whole.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::sol_types::SolCall;
use revm::context::TxEnv;
use revm::context::result::{ExecutionResult, Output};
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::TxKind;
use revm::state::AccountInfo;
use revm::{Context, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};

use crate::batch::Batch;
use crate::chain::abi::L2xSettlement as C;
use crate::chain::{Chain, ChainError, Result, commit_call, creation_code, revert_reason};
use crate::leaf::AccountLeaf;

/// The embedded chain's submitter: the only address its contract accepts commits from. No
/// key exists for it; transactions on the embedded chain are not signed.
pub const SUBMITTER: Address = Address::new(*b"l2x-embedded-submit\x01");

/// The state file's name inside the chain directory.
pub const STATE_FILE: &str = "chain.l2xc";

const MAGIC: &[u8; 8] = b"L2XCHAIN";
const VERSION: u32 = 1;
/// Gas allowed to one transaction: EIP-7825's cap, as on mainnet since Osaka.
const TX_GAS_LIMIT: u64 = 1 << 24;

type Db = CacheDB<EmptyDB>;

/// The settlement contract on an in-process EVM (see the module docs).
pub struct EmbeddedChain {
    dir: PathBuf,
    db: Db,
    contract: Address,
    code_hash: B256,
    /// Blocks so far (the genesis deployment is block 0; each commit adds one).
    block: u64,
    /// Gas used by the last commit.
    last_gas: u64,
    /// Held while this process may write the directory (`None`: read only).
    lock: Option<File>,
}

impl std::fmt::Debug for EmbeddedChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedChain")
            .field("dir", &self.dir)
            .field("contract", &self.contract)
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

/// What is wrong with the embedded chain's directory or state file (the `detail` of
/// [`ChainError::State`]).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading, writing or syncing it.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Another process has the directory open for committing.
    #[error("held by another process ({0})")]
    Locked(#[source] std::fs::TryLockError),
    /// [`EmbeddedChain::read_only`] of a directory with no chain.
    #[error("no embedded chain here")]
    Missing,
    /// A state file that does not parse.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A state file written by another build of the contract.
    #[error(
        "a chain of another contract build (contract {contract} code {code_hash}, this build deploys {ours} code {our_code_hash})"
    )]
    OtherBuild {
        /// The file's contract address.
        contract: Address,
        /// The file's contract code hash.
        code_hash: B256,
        /// This build's contract address.
        ours: Address,
        /// This build's code hash.
        our_code_hash: B256,
    },
}

/// Why the bytes of a state file are not a chain state (the first thing found wrong).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Shorter than the fixed part and the checksum.
    #[error("{len} bytes: too short for a chain state")]
    TooShort {
        /// The file's length.
        len: usize,
    },
    /// Not `L2XCHAIN` at the start.
    #[error("not an l2x chain state (bad magic)")]
    BadMagic,
    /// A format version this build does not read.
    #[error("format version {found}, this build reads {VERSION}")]
    Version {
        /// The file's version.
        found: u32,
    },
    /// The keccak-256 at the end is not that of the rest.
    #[error("checksum mismatch: the file is damaged")]
    Checksum,
    /// The bytes end inside a field.
    #[error("truncated at byte {at}")]
    Truncated {
        /// Where the field starts.
        at: usize,
    },
    /// The slot count disagrees with the bytes that follow.
    #[error("{count} storage slots announced, {bytes} bytes of them")]
    SlotCount {
        /// Slots announced.
        count: u32,
        /// Bytes present for them.
        bytes: usize,
    },
    /// Slots not in strictly ascending order.
    #[error("storage slot {slot:#x} out of order")]
    SlotOrder {
        /// The first slot out of order.
        slot: U256,
    },
}

fn state_error(path: &Path, detail: impl Into<StateError>) -> ChainError {
    ChainError::State { path: path.to_path_buf(), detail: Box::new(detail.into()) }
}

/// The chain's block environment: its number, and a timestamp derived from it (the contract
/// reads neither; no wall clock reaches the chain).
fn block_env(number: u64) -> revm::context::BlockEnv {
    revm::context::BlockEnv {
        number: U256::from(number),
        timestamp: U256::from(number.saturating_add(1)),
        ..revm::context::BlockEnv::default()
    }
}

/// Runs one transaction against `db`; commits its state change only if `commit` and it
/// succeeded.
fn execute(db: &mut Db, block: u64, tx: TxEnv, commit: bool) -> Result<ExecutionResult> {
    let mut evm = Context::mainnet().with_db(&mut *db).with_block(block_env(block)).build_mainnet();
    let run = evm
        .transact(tx)
        .map_err(|e| ChainError::Evm { what: "executing on the embedded chain", source: Box::new(e) })?;
    if commit && run.result.is_success() {
        evm.commit(run.state);
        // The events are not kept: the contract's storage is the chain's state.
        db.cache.logs.clear();
    }
    Ok(run.result)
}

fn tx(caller: Address, nonce: u64, kind: TxKind, data: Bytes) -> Result<TxEnv> {
    TxEnv::builder()
        .caller(caller)
        .nonce(nonce)
        .kind(kind)
        .data(data)
        .gas_limit(TX_GAS_LIMIT)
        .gas_price(0)
        .build()
        .map_err(|e| ChainError::Evm { what: "building an embedded-chain transaction", source: Box::new(e) })
}

/// The genesis state: the artifact deployed by [`SUBMITTER`] (nonce 0) in block 0.
fn genesis() -> Result<(Db, Address, B256)> {
    let code = creation_code(SUBMITTER)?;
    let mut db = Db::default();
    db.insert_account_info(SUBMITTER, AccountInfo::default());
    let result = execute(&mut db, 0, tx(SUBMITTER, 0, TxKind::Create, Bytes::from(code))?, true)?;
    let ExecutionResult::Success { output: Output::Create(_, Some(contract)), .. } = result else {
        let what = "deploying the contract on the embedded chain";
        return Err(ChainError::EvmFailed { what, outcome: Box::new(result) });
    };
    let code_hash = db.cache.accounts.get(&contract).map(|a| a.info.code_hash).unwrap_or_default();
    Ok((db, contract, code_hash))
}

/// What a state file holds besides the genesis.
struct Saved {
    block: u64,
    contract: Address,
    submitter: Address,
    code_hash: B256,
    nonce: u64,
    slots: BTreeMap<U256, U256>,
}

impl Saved {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(8 + 4 + 8 + 20 + 20 + 32 + 8 + 4 + self.slots.len() * 64 + 32);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_be_bytes());
        b.extend_from_slice(&self.block.to_be_bytes());
        b.extend_from_slice(self.contract.as_slice());
        b.extend_from_slice(self.submitter.as_slice());
        b.extend_from_slice(self.code_hash.as_slice());
        b.extend_from_slice(&self.nonce.to_be_bytes());
        b.extend_from_slice(&u32::try_from(self.slots.len()).unwrap_or(u32::MAX).to_be_bytes());
        for (slot, value) in &self.slots {
            b.extend_from_slice(&slot.to_be_bytes::<32>());
            b.extend_from_slice(&value.to_be_bytes::<32>());
        }
        let sum = keccak256(&b);
        b.extend_from_slice(sum.as_slice());
        b
    }

    /// Parses a state file, naming the first thing that is wrong.
    fn decode(bytes: &[u8]) -> Result<Saved, FormatError> {
        const FIXED: usize = 8 + 4 + 8 + 20 + 20 + 32 + 8 + 4;
        if bytes.len() < FIXED + 32 {
            return Err(FormatError::TooShort { len: bytes.len() });
        }
        if &bytes[..8] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        let mut r = Reader(body, 8);
        let version = u32::from_be_bytes(r.take()?);
        if version != VERSION {
            return Err(FormatError::Version { found: version });
        }
        if keccak256(body).as_slice() != sum {
            return Err(FormatError::Checksum);
        }
        let block = u64::from_be_bytes(r.take()?);
        let contract = Address::new(r.take()?);
        let submitter = Address::new(r.take()?);
        let code_hash = B256::new(r.take()?);
        let nonce = u64::from_be_bytes(r.take()?);
        let count = u32::from_be_bytes(r.take()?);
        if body.len() - FIXED != usize::try_from(count).unwrap_or(usize::MAX).saturating_mul(64) {
            return Err(FormatError::SlotCount { count, bytes: body.len() - FIXED });
        }
        let mut slots = BTreeMap::new();
        let mut previous = None;
        for _ in 0..count {
            let slot = U256::from_be_bytes::<32>(r.take()?);
            let value = U256::from_be_bytes::<32>(r.take()?);
            if previous.is_some_and(|p| p >= slot) {
                return Err(FormatError::SlotOrder { slot });
            }
            previous = Some(slot);
            slots.insert(slot, value);
        }
        Ok(Saved { block, contract, submitter, code_hash, nonce, slots })
    }
}

struct Reader<'a>(&'a [u8], usize);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let end = self.1 + N;
        let bytes = self.0.get(self.1..end).ok_or(FormatError::Truncated { at: self.1 })?;
        self.1 = end;
        bytes.try_into().map_err(|_| FormatError::Truncated { at: self.1 })
    }
}

impl EmbeddedChain {
    /// Opens the embedded chain kept in `dir` for committing, creating it (genesis: the
    /// contract deployed) if the directory holds none.
    ///
    /// # Errors
    /// [`ChainError::State`] for a directory that cannot be used, another process holding
    /// it, or a state file that is damaged or from another contract build.
    pub fn open(dir: &Path) -> Result<EmbeddedChain> {
        std::fs::create_dir_all(dir).map_err(|e| state_error(dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = File::create(&lock_path).map_err(|e| state_error(&lock_path, e))?;
        lock.try_lock().map_err(|e| state_error(dir, StateError::Locked(e)))?;
        let mut chain = EmbeddedChain::load(dir, true)?;
        chain.lock = Some(lock);
        if !dir.join(STATE_FILE).exists() {
            chain.save(&chain.db, chain.block)?;
        }
        Ok(chain)
    }

    /// Opens the embedded chain in `dir` to read it only (`l2x settle verify`, `status`,
    /// `prove`); committing through it fails.
    ///
    /// # Errors
    /// As [`EmbeddedChain::open`], and [`ChainError::State`] if `dir` holds no chain.
    pub fn read_only(dir: &Path) -> Result<EmbeddedChain> {
        EmbeddedChain::load(dir, false)
    }

    fn load(dir: &Path, create: bool) -> Result<EmbeddedChain> {
        let (mut db, contract, code_hash) = genesis()?;
        let mut chain =
            EmbeddedChain { dir: dir.to_path_buf(), db, contract, code_hash, block: 0, last_gas: 0, lock: None };
        let path = dir.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => return Ok(chain),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(state_error(&path, StateError::Missing));
            }
            Err(e) => return Err(state_error(&path, e)),
        };
        let saved = Saved::decode(&bytes).map_err(|why| state_error(&path, why))?;
        if (saved.contract, saved.submitter, saved.code_hash) != (contract, SUBMITTER, code_hash) {
            let other = StateError::OtherBuild {
                contract: saved.contract,
                code_hash: saved.code_hash,
                ours: contract,
                our_code_hash: code_hash,
            };
            return Err(state_error(&path, other));
        }
        db = std::mem::take(&mut chain.db);
        for (slot, value) in &saved.slots {
            // The empty database behind the cache cannot fail (its error type is uninhabited).
            db.insert_account_storage(contract, *slot, *value).unwrap_or_else(|e| match e {});
        }
        let submitter = db.load_account(SUBMITTER).unwrap_or_else(|e| match e {});
        submitter.info.nonce = saved.nonce;
        chain.db = db;
        chain.block = saved.block;
        Ok(chain)
    }

    /// Writes `db` at `block` as the state file: a temporary file, synced, renamed over the
    /// old one, the directory synced.
    fn save(&self, db: &Db, block: u64) -> Result<()> {
        let account = db.cache.accounts.get(&self.contract);
        let slots: BTreeMap<U256, U256> = account
            .map(|a| a.storage.iter().map(|(k, v)| (*k, *v)).filter(|(_, v)| !v.is_zero()).collect())
            .unwrap_or_default();
        let nonce = db.cache.accounts.get(&SUBMITTER).map_or(0, |a| a.info.nonce);
        let saved =
            Saved { block, contract: self.contract, submitter: SUBMITTER, code_hash: self.code_hash, nonce, slots };
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let mut f = File::create(&tmp).map_err(|e| state_error(&tmp, e))?;
        f.write_all(&saved.encode()).and_then(|()| f.sync_all()).map_err(|e| state_error(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| state_error(&path, e))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| state_error(&self.dir, e))
    }

    /// The contract's address on this chain.
    pub fn address(&self) -> Address {
        self.contract
    }

    /// Blocks so far (0: only the genesis).
    pub fn block(&self) -> u64 {
        self.block
    }

    /// Gas used by the last commit of this process (0 before one).
    pub fn last_gas(&self) -> u64 {
        self.last_gas
    }

    /// Calls a view of the contract (never committed) and decodes its answer.
    fn view<T: SolCall>(&mut self, call: &T) -> Result<T::Return> {
        let tx = tx(Address::ZERO, 0, TxKind::Call(self.contract), Bytes::from(call.abi_encode()))?;
        let result = execute(&mut self.db, self.block, tx, false)?;
        let ExecutionResult::Success { output, .. } = result else {
            return Err(ChainError::EvmFailed { what: "a view of the embedded contract", outcome: Box::new(result) });
        };
        T::abi_decode_returns(output.data())
            .map_err(|e| ChainError::Decode { what: "decoding a view of the embedded contract", source: Box::new(e) })
    }
}

impl Chain for EmbeddedChain {
    fn last_committed(&mut self) -> Result<(u64, B256)> {
        let index = self.view(&C::lastIndexCall {})?;
        let root = self.view(&C::lastRootCall {})?;
        Ok((index, root))
    }

    fn committed(&mut self, index: u64) -> Result<(B256, B256)> {
        let root = self.view(&C::rootsCall { index })?;
        let data_hash = self.view(&C::dataHashesCall { index })?;
        Ok((root, data_hash))
    }

    fn commit(&mut self, batch: &Batch) -> Result<B256> {
        if self.lock.is_none() {
            return Err(ChainError::Config("the embedded chain was opened read-only".into()));
        }
        let data = Bytes::from(commit_call(batch).abi_encode());
        let nonce = self.db.cache.accounts.get(&SUBMITTER).map_or(0, |a| a.info.nonce);
        let block = self.block + 1;
        let tx_hash = {
            let mut preimage = block.to_be_bytes().to_vec();
            preimage.extend_from_slice(&data);
            keccak256(preimage)
        };
        // Executed on a copy that becomes the chain only once it is on disk: a commit whose
        // state file could not be written did not happen.
        let mut next = self.db.clone();
        let result = execute(&mut next, block, tx(SUBMITTER, nonce, TxKind::Call(self.contract), data)?, true)?;
        match result {
            ExecutionResult::Success { gas, .. } => {
                self.save(&next, block)?;
                self.db = next;
                self.block = block;
                self.last_gas = gas.tx_gas_used();
                Ok(tx_hash)
            }
            ExecutionResult::Revert { output, .. } => {
                let reason = revert_reason(&output)
                    .unwrap_or_else(|| format!("reverted with 0x{}", alloy::hex::encode(&output)));
                Err(ChainError::Refused { index: batch.header.index, reason })
            }
            ExecutionResult::Halt { reason, .. } => {
                Err(ChainError::Refused { index: batch.header.index, reason: format!("halted: {reason:?}") })
            }
        }
    }

    fn verify_leaf(&mut self, index: u64, leaf: &AccountLeaf, siblings: &[B256]) -> Result<bool> {
        self.view(&C::verifyLeafCall { index, leaf: leaf.into(), siblings: siblings.to_vec() })
    }
}
