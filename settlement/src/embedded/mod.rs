//! The embedded chain: a small EVM chain in-process — the test token, the settlement
//! contract and the users who send them transactions, executed by revm — whose whole state
//! is kept in one file, so that a restart continues where it stopped (docs/SETTLEMENT.md,
//! "Chain backends").
//!
//! ```text
//!  open(dir, clock) ──▶ genesis (block 0, from DEPLOYER):  nonce 0  L2xTestUSD     ─▶ token()
//!        │                                                 nonce 1  L2xSettlement  ─▶ address()
//!        ▼
//!  dir/chain.l2xc? ──▶ decode (magic, version 2, checksum, every field), rebuild the genesis
//!        │             at the file's genesis timestamp, check that every account with code
//!        │             has the code hash the genesis gives it, restore every account
//!        ▼
//!  transact(from, to, data) ─┐  one transaction in a block of its own:
//!  commit(batch) (SUBMITTER) ┤    number = block + 1, timestamp = max(time + 1, clock.now())
//!  commit_blobs(batch)       ┘    (type 3: the blobs' versioned hashes for BLOBHASH; the
//!                                 blobs written to DIR/blobs/ before the state file)
//!                                 reverted or halted: Reverted / Refused (decoded); no block
//!                                 succeeded: a batch's commit (its BatchCommitted log) has
//!                                 its input written to batches/<index> first; then the new
//!                                 state written to chain.l2xc (temporary file, fsync,
//!                                 rename, fsync the directory), then adopted
//!  call(to, data), last_committed, committed, verify_leaf ─▶ at the latest block, never kept
//!  posted(index) ─▶ batches/<index>, checked against the contract's commitment
//!  advance_time(secs) ─▶ the chain's time moves on by secs (written to the file); no block
//! ```
//!
//! | module | job |
//! |---|---|
//! | `genesis` | the deployments, their fixed addresses, [`settlement_creation_code`]; code hashes to check a state against |
//! | `state_file` | [`ChainState`] and `chain.l2xc` format 2: layout, canonical form, [`FormatError`], the atomic write |
//! | `batch_data` | what each batch posted: its commit's input, one file per batch, written before the state that records it |
//! | `clock` | [`Clock`]: [`WallClock`] for `serve` and the demo, [`FixedClock`] for tests |
//! | `evm` | revm's block and transaction environments, revert reasons in words |
//! | `blob_store` | blob commits, and `DIR/blobs/`: their blobs, named by versioned hash, checked when read |
//!
//! # Design
//!
//! Everything a contract checks on a node it checks here, by the same bytecode under the
//! same rules (revm's default spec, Osaka; tested for equal gas against anvil). What the
//! embedded chain does not have is other parties: it is final at once (one confirmation,
//! no reorgs), transactions are not signed (anyone may send as any address: it is a chain
//! for tests and demos, and for a node that settles alone), and nobody pays for gas (base
//! fee and gas price 0, so no account needs ether; gas is still counted). A transaction
//! that reverts leaves no trace — no block, no nonce used — unlike one mined by a node.
//!
//! Each transaction runs against the chain's state without changing it; only a success is
//! applied, to a copy, written to the file, and the chain then continues from exactly what
//! the file says (rebuilt from it), so a process that continues and one that reopens the
//! directory hold the same state. A crash between executing a transaction and renaming the
//! file loses that transaction, exactly like one a node dropped: the submitter reads the
//! chain on restart and sends its batch again.
//!
//! # Time
//!
//! The chain's time (`timestamp()`, kept in the file) is the latest block's timestamp,
//! moved on by [`EmbeddedChain::advance_time`] since. Calls run at it. The next block's
//! timestamp is `max(time + 1, clock.now())`: block timestamps strictly increase, and the
//! clock chosen at open (`clock` module) is the only source of time in the chain.
//!
//! # The directory
//!
//! ```text
//!  DIR/LOCK        flock'ed by the one process that may write (open); readers take none
//!  DIR/chain.l2xc  the state (format 2, `state_file`), only ever replaced whole
//!  DIR/batches/    the input of each batch's commit, `<index, 20 digits>` (`batch_data`):
//!                  written and synced before the state file that records the commit is
//!                  renamed into place; a file for a batch the state does not have (a
//!                  crash in between) is never read, and the next commit of it replaces it
//!  DIR/blobs/      the blob store (`blob_store`): each blob of a blob commit, named by
//!                  its versioned hash; a block's blobs are written and synced before the
//!                  state file that commits them is renamed into place
//! ```
//!
//! # Known limitations
//!
//! - Only the genesis's contracts have code: a transaction that creates a contract is
//!   refused (the file keeps no code).
//! - No history but the batches': events are returned in the [`Receipt`] and not kept; old
//!   blocks, their hashes, transactions and receipts are not kept. What each batch posted
//!   (its commit's input) is kept in `DIR/batches/`, so that the batches can be read back
//!   (`Chain::posted`) as from a node.
//! - Each block rewrites the whole state file: O(accounts + slots) per transaction. Fine for
//!   tests and a demo's thousands of accounts, not for a million.

pub mod batch_data;
mod blob_store;
mod clock;
mod evm;
mod genesis;
mod state_file;

use std::fs::File;
use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, Bytes, Log, U256, keccak256};
use alloy::sol_types::{SolCall, SolEvent as _};
use revm::context::result::ExecutionResult;
use revm::database::{CacheDB, DatabaseCommit};
use revm::primitives::TxKind;

pub use self::evm::CHAIN_ID;
pub use blob_store::{BLOBS_DIR, blob_path};
pub use clock::{Clock, FixedClock, WallClock};
pub use genesis::{DEPLOYER, recipient_key, settlement_address, settlement_creation_code, token_address};
pub use state_file::{AccountState, ChainState, FormatError, STATE_FILE, VERSION};

/// A revert's reason in words, on either chain (the RPC users' transactions use it too).
pub(crate) use self::evm::reason as revert_words;
use self::evm::{Db, Header};
use self::genesis::Genesis;
use crate::batch::Batch;
use crate::chain::abi::{L2xSettlement as C, L2xTestUSD};
use crate::chain::{Chain, ChainError, Posted, PostedError, QueueReader, Result, commit_call, entry_of};
use crate::leaf::AccountLeaf;
use crate::queue::Entry;

/// The embedded chain's submitter: the only address its contract accepts commits from. No
/// key exists for it; transactions on the embedded chain are not signed.
pub const SUBMITTER: Address = Address::new(*b"l2x-embedded-submit\x01");

/// The test token, the settlement contract and their users on an in-process EVM (see the
/// module docs).
pub struct EmbeddedChain {
    dir: PathBuf,
    db: Db,
    genesis: Genesis,
    /// The latest block (0: the genesis alone).
    block: u64,
    /// The chain's time: the latest block's timestamp, moved on by `advance_time` since.
    timestamp: u64,
    clock: Box<dyn Clock>,
    /// Gas used by the last commit.
    last_gas: u64,
    /// Held while this process may write the directory (`None`: read only).
    lock: Option<File>,
}

impl std::fmt::Debug for EmbeddedChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedChain")
            .field("dir", &self.dir)
            .field("block", &self.block)
            .field("timestamp", &self.timestamp)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// What a transaction did: the block it made and what it returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The block it is in (it is that block's only transaction).
    pub block: u64,
    /// That block's timestamp.
    pub timestamp: u64,
    /// Gas it used, as a node's receipt reports it.
    pub gas_used: u64,
    /// The events it emitted, in order.
    pub logs: Vec<Log>,
    /// What the call returned (ABI-encoded).
    pub output: Bytes,
}

/// What is wrong with the embedded chain's directory or state file (the `detail` of
/// [`ChainError::State`]).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading, writing or syncing it.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Another process has the directory open for writing.
    #[error("held by another process ({0})")]
    Locked(#[source] std::fs::TryLockError),
    /// [`EmbeddedChain::read_only`] of a directory with no chain.
    #[error("no embedded chain here")]
    Missing,
    /// A state file that does not parse.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A file of the blob store that is not a blob (another size, an element c-kzg
    /// refuses).
    #[error("a damaged blob: {0}")]
    Blob(crate::blob::BlobError),
    /// A file of the blob store whose KZG commitment does not hash to its name.
    #[error("a damaged blob: its KZG commitment's versioned hash is {got}, not the one it is named by")]
    BlobHash {
        /// The versioned hash of what the file holds.
        got: B256,
    },
    /// A state file written by another build of the contracts: an account's code is not
    /// the code this build's genesis gives it.
    #[error(
        "a chain of another contract build: account {address} has {}, this build's genesis gives it {}",
        code(.code_hash),
        code(.ours)
    )]
    OtherBuild {
        /// The account.
        address: Address,
        /// Its code hash in the file (`None`: no code).
        code_hash: Option<B256>,
        /// The code hash this build's genesis gives it (`None`: no code).
        ours: Option<B256>,
    },
}

fn code(hash: &Option<B256>) -> String {
    hash.map_or_else(|| "no code".to_owned(), |h| format!("code {h}"))
}

fn state_error(path: &Path, detail: impl Into<StateError>) -> ChainError {
    ChainError::State { path: path.to_path_buf(), detail: Box::new(detail.into()) }
}

impl EmbeddedChain {
    /// Opens the embedded chain kept in `dir` for writing, creating it (the genesis) if the
    /// directory holds none; its blocks follow the wall clock.
    ///
    /// # Errors
    /// [`ChainError::State`] for a directory that cannot be used, another process holding
    /// it, or a state file that is damaged or from another contract build.
    pub fn open(dir: &Path) -> Result<EmbeddedChain> {
        EmbeddedChain::open_with_clock(dir, WallClock)
    }

    /// [`EmbeddedChain::open`] with `clock` as the source of its blocks' time (a new chain's
    /// genesis timestamp is `clock.now()`).
    ///
    /// # Errors
    /// As [`EmbeddedChain::open`].
    pub fn open_with_clock(dir: &Path, clock: impl Clock + 'static) -> Result<EmbeddedChain> {
        std::fs::create_dir_all(dir).map_err(|e| state_error(dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = File::create(&lock_path).map_err(|e| state_error(&lock_path, e))?;
        lock.try_lock().map_err(|e| state_error(dir, StateError::Locked(e)))?;
        let (mut chain, found) = EmbeddedChain::load(dir, Box::new(clock), true)?;
        batch_data::create_store(dir)?;
        chain.lock = Some(lock);
        if !found {
            chain.write(&chain.state())?;
        }
        Ok(chain)
    }

    /// Opens the embedded chain in `dir` to read it only (`l2x settle verify`, `status`,
    /// `prove`): calls work, transactions, commits and `advance_time` fail.
    ///
    /// # Errors
    /// As [`EmbeddedChain::open`], and [`ChainError::State`] if `dir` holds no chain.
    pub fn read_only(dir: &Path) -> Result<EmbeddedChain> {
        EmbeddedChain::load(dir, Box::new(WallClock), false).map(|(chain, _)| chain)
    }

    /// The chain in `dir` (or a new genesis, if `create`), and whether a state file was
    /// found.
    fn load(dir: &Path, clock: Box<dyn Clock>, create: bool) -> Result<(EmbeddedChain, bool)> {
        let path = dir.join(STATE_FILE);
        let saved = match std::fs::read(&path) {
            Ok(bytes) => Some(ChainState::decode(&bytes).map_err(|why| state_error(&path, why))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(state_error(&path, StateError::Missing)),
            Err(e) => return Err(state_error(&path, e)),
        };
        let found = saved.is_some();
        let genesis_timestamp = saved.as_ref().map_or_else(|| clock.now(), |s| s.genesis_timestamp);
        let (genesis, genesis_state) = Genesis::build(genesis_timestamp)?;
        let state = saved.unwrap_or(genesis_state);
        genesis.check(&state).map_err(|foreign| state_error(&path, foreign))?;
        let chain = EmbeddedChain {
            dir: dir.to_path_buf(),
            db: genesis.restore(&state),
            genesis,
            block: state.block,
            timestamp: state.timestamp,
            clock,
            last_gas: 0,
            lock: None,
        };
        Ok((chain, found))
    }

    /// The settlement contract's address ([`settlement_address`]).
    pub fn address(&self) -> Address {
        settlement_address()
    }

    /// The test token's address ([`token_address`]).
    pub fn token(&self) -> Address {
        token_address()
    }

    /// The latest block (0: the genesis alone).
    pub fn block(&self) -> u64 {
        self.block
    }

    /// The chain's time in seconds: the latest block's timestamp, moved on by
    /// [`EmbeddedChain::advance_time`] since. Calls run at it.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// Gas used by the last commit of this process (0 before one).
    pub fn last_gas(&self) -> u64 {
        self.last_gas
    }

    /// The chain's whole state, as its file holds it.
    pub fn state(&self) -> ChainState {
        ChainState::of(&self.db, self.block, self.timestamp, self.genesis.timestamp)
    }

    /// Sends a transaction from `from` to `to` with `calldata`, in a block of its own;
    /// returns once the new state is in the file. Unsigned, and free: `from` needs no ether.
    ///
    /// # Errors
    /// [`ChainError::Reverted`] with the reason decoded (nothing changes, no block),
    /// [`ChainError::Evm`] if revm refuses the transaction itself (`from` has code),
    /// [`ChainError::State`] if the file cannot be written (nothing changes), and
    /// [`ChainError::Config`] on a chain opened read-only.
    pub fn transact(&mut self, from: Address, to: Address, calldata: impl Into<Bytes>) -> Result<Receipt> {
        self.send(from, to, calldata.into())?.map_err(|reason| ChainError::Reverted { from, to, reason })
    }

    /// Mints `amount` (in the token's 6-decimal units) of the test token to `to`: a
    /// [`EmbeddedChain::transact`] of the token's open `mint`, sent by [`DEPLOYER`].
    ///
    /// # Errors
    /// As [`EmbeddedChain::transact`].
    pub fn mint_test_usd(&mut self, to: Address, amount: U256) -> Result<Receipt> {
        self.transact(DEPLOYER, self.token(), L2xTestUSD::mintCall { to, amount }.abi_encode())
    }

    /// Calls `to` with `calldata` at the latest block (number and time) and returns what it
    /// returned; nothing is kept. The caller is the zero address.
    ///
    /// # Errors
    /// [`ChainError::Reverted`] with the reason decoded, [`ChainError::Evm`].
    pub fn call(&self, to: Address, calldata: impl Into<Bytes>) -> Result<Bytes> {
        let from = Address::ZERO;
        let tx = evm::tx(from, self.nonce(from), TxKind::Call(to), calldata.into())?;
        let header = Header { number: self.block, timestamp: self.timestamp };
        match evm::run(CacheDB::new(&self.db), header, tx)?.result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => {
                Err(ChainError::Reverted { from, to, reason: evm::reason(&output) })
            }
            ExecutionResult::Halt { reason, .. } => {
                Err(ChainError::Reverted { from, to, reason: format!("halted: {reason:?}") })
            }
        }
    }

    /// Moves the chain's time on by `secs` without making a block (written to the file):
    /// calls then run at the new time, and the next block is at least a second after it.
    /// Returns the new time. For tests: delays, deadlines.
    ///
    /// # Errors
    /// [`ChainError::Config`] on a chain opened read-only or past `u64::MAX` seconds;
    /// [`ChainError::State`] if the file cannot be written (the time does not move).
    pub fn advance_time(&mut self, secs: u64) -> Result<u64> {
        self.writable()?;
        let timestamp = self.timestamp.checked_add(secs).ok_or_else(|| overflow(self.timestamp, secs))?;
        let state = ChainState { timestamp, ..self.state() };
        self.write(&state)?;
        self.timestamp = timestamp;
        Ok(timestamp)
    }

    /// Checks what must hold between operations: the state is in canonical form (it
    /// encodes and decodes to itself), its code is the genesis's, its clock is consistent,
    /// and for a writer the file holds exactly this state. For tests.
    ///
    /// # Errors
    /// What does not hold, in words.
    pub fn check_invariants(&self) -> Result<(), String> {
        let state = self.state();
        let bytes = state.encode();
        let decoded = ChainState::decode(&bytes).map_err(|e| format!("the state does not decode: {e}"))?;
        if decoded != state {
            return Err("the state does not decode to itself".into());
        }
        self.genesis.check(&state).map_err(|f| StateError::from(f).to_string())?;
        if self.lock.is_some() && std::fs::read(self.dir.join(STATE_FILE)).ok() != Some(bytes) {
            return Err("the state file does not hold the chain's state".into());
        }
        Ok(())
    }

    /// One transaction from `from` to `to` in a new block: `Ok(Ok(receipt))` once the new
    /// state is in the file (and, for a batch's commit, its input in the batch data store
    /// before it), `Ok(Err(reason))` if the EVM reverted or halted it or it created code
    /// (nothing changes).
    fn send(&mut self, from: Address, to: Address, data: Bytes) -> Result<Result<Receipt, String>> {
        self.send_with_blobs(from, to, data, &[], &[])
    }

    /// [`EmbeddedChain::send`] of a transaction carrying `blobs` (whose versioned hashes are
    /// `hashes`; none: an ordinary transaction): a type-3 transaction, its blobs written to
    /// the blob store before the state file.
    pub(super) fn send_with_blobs(
        &mut self,
        from: Address,
        to: Address,
        data: Bytes,
        hashes: &[B256],
        blobs: &[alloy::eips::eip4844::Blob],
    ) -> Result<Result<Receipt, String>> {
        self.writable()?;
        let timestamp = self.timestamp.checked_add(1).ok_or_else(|| overflow(self.timestamp, 1))?;
        // A file's block is at most its time (its clock check), so this cannot fail first.
        let number = self.block.checked_add(1).ok_or_else(|| overflow(self.timestamp, 1))?;
        let header = Header { number, timestamp: timestamp.max(self.clock.now()) };
        let tx = if hashes.is_empty() {
            evm::tx(from, self.nonce(from), TxKind::Call(to), data.clone())?
        } else {
            evm::blob_tx(from, self.nonce(from), to, data.clone(), hashes.to_vec())?
        };
        let run = evm::run(CacheDB::new(&self.db), header, tx)?;
        let (gas, logs, output) = match run.result {
            ExecutionResult::Success { gas, logs, output, .. } => (gas, logs, output.into_data()),
            ExecutionResult::Revert { output, .. } => return Ok(Err(evm::reason(&output))),
            ExecutionResult::Halt { reason, .. } => return Ok(Err(format!("halted: {reason:?}"))),
        };
        let mut next = self.db.clone();
        next.commit(run.state);
        let state = ChainState::of(&next, header.number, header.timestamp, self.genesis.timestamp);
        if let Err(f) = self.genesis.check(&state) {
            return Ok(Err(format!("created code at {} (only the genesis's contracts have code here)", f.address)));
        }
        if !blobs.is_empty() {
            blob_store::write(&self.dir, hashes, blobs)?;
        }
        // A batch's data before the state that records its commit (`batch_data`'s crash rule).
        for log in &logs {
            if let Some(index) = committed_index(self.address(), log)? {
                if !hashes.is_empty() {
                    batch_data::write_hashes(&self.dir, index, hashes)?;
                }
                batch_data::write(&self.dir, index, &data)?;
            }
        }
        self.write(&state)?;
        self.db = self.genesis.restore(&state);
        (self.block, self.timestamp) = (header.number, header.timestamp);
        let receipt =
            Receipt { block: header.number, timestamp: header.timestamp, gas_used: gas.tx_gas_used(), logs, output };
        Ok(Ok(receipt))
    }

    fn writable(&self) -> Result<()> {
        match self.lock {
            Some(_) => Ok(()),
            None => Err(ChainError::Config("the embedded chain was opened read-only".into())),
        }
    }

    fn nonce(&self, account: Address) -> u64 {
        self.db.cache.accounts.get(&account).and_then(|a| a.info()).map_or(0, |info| info.nonce)
    }

    /// Writes `state` as the state file (`state_file`: temporary file, sync, rename, sync).
    fn write(&self, state: &ChainState) -> Result<()> {
        state_file::write(&self.dir, &state.encode())
    }

    /// Refuses a read at a block the chain has not made (its state is that of its last).
    fn at(&self, block: u64) -> Result<()> {
        if block > self.block {
            return Err(ChainError::Config(format!(
                "block {block} is after the embedded chain's last, {}",
                self.block
            )));
        }
        Ok(())
    }

    /// Calls a view of the settlement contract and decodes its answer.
    fn view<T: SolCall>(&self, call: &T) -> Result<T::Return> {
        let output = self.call(self.address(), call.abi_encode())?;
        T::abi_decode_returns(&output)
            .map_err(|e| ChainError::Decode { what: "decoding a view of the embedded contract", source: Box::new(e) })
    }
}

fn overflow(timestamp: u64, secs: u64) -> ChainError {
    ChainError::Config(format!("the embedded chain's time {timestamp} cannot move on by {secs} s (past u64::MAX)"))
}

/// The embedded chain is final at once: every block has all the confirmations there are,
/// and the only state to read is the latest (a block after it is an error).
impl QueueReader for EmbeddedChain {
    fn binding(&mut self) -> Result<(u64, Address, Address)> {
        Ok((CHAIN_ID, self.address(), self.token()))
    }

    fn confirmed_block(&mut self, _confirmations: u64) -> Result<Option<u64>> {
        Ok(Some(self.block))
    }

    fn queue_length(&mut self, block: u64) -> Result<u64> {
        self.at(block)?;
        self.view(&C::queueLengthCall {})
    }

    fn queue_hash(&mut self, index: u64, block: u64) -> Result<B256> {
        self.at(block)?;
        self.view(&C::queueHashesCall { index })
    }

    fn entry(&mut self, index: u64, block: u64) -> Result<Entry> {
        self.at(block)?;
        entry_of(index, &self.view(&C::entriesCall { index })?)
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
        let commitment = self.view(&C::commitmentsCall { index })?;
        Ok((root, commitment))
    }

    fn commit(&mut self, batch: &Batch) -> Result<B256> {
        let data = Bytes::from(commit_call(batch)?.abi_encode());
        let tx_hash = {
            let mut preimage = self.block.wrapping_add(1).to_be_bytes().to_vec();
            preimage.extend_from_slice(&data);
            keccak256(preimage)
        };
        match self.send(SUBMITTER, self.address(), data)? {
            Ok(receipt) => {
                self.last_gas = receipt.gas_used;
                Ok(tx_hash)
            }
            Err(reason) => Err(ChainError::Refused { index: batch.header.index, reason }),
        }
    }

    fn commit_blobs(&mut self, batch: &Batch) -> Result<B256> {
        self.commit_in_blobs(batch)
    }

    fn verify_leaf(&mut self, index: u64, leaf: &AccountLeaf, siblings: &[B256]) -> Result<bool> {
        self.view(&C::verifyLeafCall { index, leaf: leaf.into(), siblings: siblings.to_vec() })
    }

    /// From the batch data store (`batch_data`), for a committed batch only, checked against
    /// the commitment the contract stored.
    fn posted(&mut self, index: u64) -> Result<Posted> {
        let last = self.view(&C::lastIndexCall {})?;
        if index == 0 || index > last {
            return Err(ChainError::Posted { index, why: PostedError::NotCommitted { last } });
        }
        let commitment = self.view(&C::commitmentsCall { index })?;
        batch_data::read(&self.dir, index, commitment)
    }
}

/// The batch a log of a transaction says was committed: `Some` for a `BatchCommitted` log
/// of the settlement contract at `contract` (topic 0 its signature hash), `None` for any
/// other log.
///
/// # Errors
/// [`ChainError::Decode`] for a log of the contract with `BatchCommitted`'s topic 0 that
/// does not decode as it: its batch would be committed with no store file.
fn committed_index(contract: Address, log: &Log) -> Result<Option<u64>> {
    if log.address != contract || log.topics().first() != Some(&C::BatchCommitted::SIGNATURE_HASH) {
        return Ok(None);
    }
    let committed = C::BatchCommitted::decode_log_data(&log.data)
        .map_err(|e| ChainError::Decode { what: "decoding the contract's BatchCommitted log", source: Box::new(e) })?;
    Ok(Some(committed.index))
}

#[cfg(test)]
mod tests;
