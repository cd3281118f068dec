//! The base chain, as settlement sees it: the contract's committed state and a way to
//! commit a batch (docs/SETTLEMENT.md, "Chain backends").
//!
//! ```text
//!  Submitter ──▶ dyn Chain ──▶ RpcChain: alloy over JSON-RPC (any node; anvil in tests)
//!                          │      └─ fees::Resender: when to replace, at what price, when to stop
//!                          └─▶ EmbeddedChain: the same bytecode in revm, state in a file
//!  owners, depositors ──▶ L1User ──▶ a node (signed by their key) | the embedded chain
//!                 binding: the ABIs, the committed artifacts, revert reasons (both use it)
//! ```
//!
//! | module | job |
//! |---|---|
//! | `artifact` | [`Artifact`]: build.js's format, creation code, runtime code with immutables filled by name |
//! | `da` | [`Da`]: calldata or blobs; the blob commit's call, its versioned hashes, [`commitment`] in either mode |
//! | `binding` | the contracts' ABIs (`sol!`), the committed artifacts, creation and runtime code, revert decoding; no I/O |
//! | `error` | [`ChainError`], what each failure keeps as its source, [`ChainError::is_retryable`] |
//! | `fees` | [`SendPolicy`] and the pure send-and-replace state machine the RPC chain drives |
//! | `rpc` | [`RpcChain`]: the provider, the commit's dry run, nonces, gas, and the wait |
//! | `user` | [`L1User`]: a user's calls and transactions on either chain (owners, depositors, anyone who freezes) |
//!
//! # Design
//!
//! The trait is synchronous: the submitter runs on its own thread, never on the sequencer.
//! [`RpcChain`] keeps a single-threaded tokio runtime and blocks on each call, with a
//! timeout, so a node that hangs is an error and not a stuck thread.
//!
//! The decisions of sending (bump, replace, resend a dropped version, wait out a spike,
//! give up) are in `fees`, with no I/O and no clock, and unit-tested there; `rpc` only
//! asks the node and reports what it said.
//!
//! # Invariants
//!
//! - At most one commit transaction of the submitter is pending: a stuck one is replaced
//!   at the same nonce, never joined by another; more than one pending is an error
//!   ([`ChainError::Pending`]) and nothing is sent.
//! - A refusal costs nothing: every commit is simulated first, and a revert comes back as
//!   [`ChainError::Refused`] with the contract's reason.

mod artifact;
mod binding;
mod da;
mod error;
mod fees;
mod rpc;
mod user;

use alloy::primitives::{Address, B256};

pub use artifact::Artifact;
pub use binding::{
    ARTIFACT, Config, TEST_USD_ARTIFACT, WEEK, abi, commit_call, commit_floor_gas, commit_input, commitment_of,
    creation_code, entry_of, revert_reason, runtime_code, test_usd_creation_code, test_usd_runtime_code,
};
pub(crate) use binding::{CommitInput, decode_commit_input};
pub use da::{Da, batch_blobs, blob_hashes, commit_blobs_call, commitment, committed_as};
pub use error::{BoxError, ChainError, PostedError, Result};
pub use fees::SendPolicy;
pub use rpc::{LOG_RANGE, RpcChain, submitter_of};
pub use user::{Head, L1User, Sent, address_of};

use crate::batch::Batch;
use crate::queue::Entry;

/// The base chain as settlement uses it.
pub trait Chain {
    /// The last committed batch's index and root (0 and `0x00…00` before the first): the
    /// contract's `lastIndex()` and `lastRoot()`, read at one block.
    ///
    /// # Errors
    /// [`ChainError`].
    fn last_committed(&mut self) -> Result<(u64, B256)>;

    /// The root and the commitment stored for batch `index` (both `0x00…00` if none); the
    /// commitment of a batch is [`commitment`].
    ///
    /// # Errors
    /// [`ChainError`].
    fn committed(&mut self, index: u64) -> Result<(B256, B256)>;

    /// Commits a batch and waits until its transaction has the configured confirmations;
    /// returns the transaction hash.
    ///
    /// # Errors
    /// [`ChainError::Refused`] with the contract's reason, or the transport's errors.
    fn commit(&mut self, batch: &Batch) -> Result<B256>;

    /// Commits a batch with its data in EIP-4844 blobs (`commitBatchBlobs`, [`Da::Blobs`])
    /// and waits as [`Chain::commit`] does; returns the transaction hash.
    ///
    /// # Errors
    /// As [`Chain::commit`]; [`ChainError::Blobs`] for data that does not fit in one
    /// transaction's blobs (nothing is sent).
    fn commit_blobs(&mut self, batch: &Batch) -> Result<B256>;

    /// Commits a batch with its data posted as `da` says.
    ///
    /// # Errors
    /// As [`Chain::commit`] and [`Chain::commit_blobs`].
    fn commit_as(&mut self, batch: &Batch, da: Da) -> Result<B256> {
        match da {
            Da::Calldata => self.commit(batch),
            Da::Blobs => self.commit_blobs(batch),
        }
    }

    /// Asks the contract whether `leaf` is in batch `index`'s root by `siblings` (its
    /// `verifyLeaf`).
    ///
    /// # Errors
    /// The transport's.
    fn verify_leaf(&mut self, index: u64, leaf: &crate::leaf::AccountLeaf, siblings: &[B256]) -> Result<bool>;

    /// What committed batch `index` posted, read back from the chain: its commit's
    /// arguments and its data (docs/SETTLEMENT.md, "Finding a batch on chain"). Nothing
    /// here is checked against the contract's commitment: that is the reader's to do
    /// ([`Posted::commitment`]).
    ///
    /// # Errors
    /// [`ChainError::Posted`] naming the batch and what is wrong: for an index that is not
    /// committed, [`PostedError::NoLog`] from [`RpcChain`] (it looks for the log only) and
    /// [`PostedError::NotCommitted`] from the embedded chain (it checks `lastIndex()`); no
    /// log or two, a transaction that is not its commit, a blob commit's transaction
    /// without versioned hashes or blobs that are not its hashes' (a node); a missing or
    /// damaged store file (the embedded chain); [`ChainError::Incomplete`] for a node with
    /// no blobs for a blob commit; the transport's. Blobs that are the commit's but do not
    /// decode are not an error ([`Posted::undecodable`]).
    fn posted(&mut self, index: u64) -> Result<Posted>;
}

/// What a committed batch posted, as the chain holds it: the arguments of its commit
/// (`commitBatch` or `commitBatchBlobs`) and its data.
#[derive(Clone, Debug)]
pub struct Posted {
    /// The header argument, `h`.
    pub h: abi::L2xSettlement::BatchHeader,
    /// The withdrawals argument.
    pub withdrawals: Vec<abi::L2xSettlement::Withdrawal>,
    /// The refused queue indexes argument.
    pub rejected: Vec<u64>,
    /// The batch's data: `zstd(raw)` (docs/SETTLEMENT.md, "Batches"); for a blob carrier,
    /// the blobs decoded ([`blob::decode`](crate::blob::decode)). Not checked against `h.dataHash` here (the
    /// contract checks it for calldata, nobody on chain for blobs): the reader's to do.
    pub data: Vec<u8>,
    /// Where the data was found.
    pub carrier: Carrier,
    /// For a blob carrier whose blobs are the commit's (each matches its versioned hash)
    /// but do not decode ([`blob::decode`](crate::blob::decode) refuses them: padding,
    /// length prefix, blob count, trailing bytes): why, and `data` is then empty. Such
    /// blobs are on chain (the contract never reads blobs): a finding of the reader
    /// (`rebuild`'s [`Finding::Data`](crate::rebuild::Finding::Data), field `blobs`), not
    /// an error. Always `None` for calldata.
    pub undecodable: Option<String>,
}

impl Posted {
    /// The arguments of a `commitBatch` call, its data from the call itself.
    pub(crate) fn of_calldata(call: abi::L2xSettlement::commitBatchCall, transaction: Option<B256>) -> Posted {
        Posted {
            h: call.h,
            withdrawals: call.withdrawals,
            rejected: call.rejected,
            data: call.data.to_vec(),
            carrier: Carrier::Calldata { transaction },
            undecodable: None,
        }
    }

    /// The arguments of a `commitBatchBlobs` call, `data` decoded from the blobs of
    /// `versioned_hashes` (or why those blobs do not decode: [`Posted::undecodable`]).
    pub(crate) fn of_blobs(
        call: abi::L2xSettlement::commitBatchBlobsCall,
        data: std::result::Result<Vec<u8>, String>,
        transaction: Option<B256>,
        versioned_hashes: Vec<B256>,
    ) -> Posted {
        let (data, undecodable) = match data {
            Ok(data) => (data, None),
            Err(why) => (Vec::new(), Some(why)),
        };
        Posted {
            h: call.h,
            withdrawals: call.withdrawals,
            rejected: call.rejected,
            data,
            carrier: Carrier::Blobs { transaction, versioned_hashes },
            undecodable,
        }
    }

    /// The commitment of the arguments ([`commitment_of`]): what the contract stored for
    /// the batch if these are its commit's arguments — for a blob carrier with its
    /// versioned hashes bound.
    pub fn commitment(&self) -> B256 {
        let blobs = match &self.carrier {
            Carrier::Calldata { .. } => None,
            Carrier::Blobs { versioned_hashes, .. } => Some(versioned_hashes.as_slice()),
        };
        commitment_of(&self.h, &self.withdrawals, &self.rejected, blobs)
    }
}

/// Where a posted batch's data was found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Carrier {
    /// The `data` argument of a `commitBatch`, in its transaction's input.
    Calldata {
        /// The commit's transaction (`None` on the embedded chain, which keeps each commit's
        /// input and not its transaction).
        transaction: Option<B256>,
    },
    /// The EIP-4844 blobs of a `commitBatchBlobs` transaction (docs/SETTLEMENT.md, "Batch
    /// data in blobs").
    Blobs {
        /// The commit's transaction (`None` on the embedded chain).
        transaction: Option<B256>,
        /// The transaction's versioned hashes, in order: the blobs the data was decoded
        /// from, and what the contract's commitment binds.
        versioned_hashes: Vec<B256>,
    },
}

impl Carrier {
    /// The commit's transaction, if the chain keeps it.
    pub fn transaction(&self) -> Option<B256> {
        match self {
            Carrier::Calldata { transaction } | Carrier::Blobs { transaction, .. } => *transaction,
        }
    }
}

/// The vault's L1 queue as the node's watcher reads it: every read at one block, so that the
/// answers are consistent with each other (docs/SETTLEMENT.md, "The vault").
pub trait QueueReader {
    /// The chain id, the contract's address and its token's: what the journal binds to.
    ///
    /// # Errors
    /// [`ChainError`].
    fn binding(&mut self) -> Result<(u64, Address, Address)>;

    /// The newest block with at least `confirmations` confirmations (the head has one).
    /// `None` while the chain is shorter than that.
    ///
    /// # Errors
    /// [`ChainError`].
    fn confirmed_block(&mut self, confirmations: u64) -> Result<Option<u64>>;

    /// The queue's length (its last index) at `block`.
    ///
    /// # Errors
    /// [`ChainError`].
    fn queue_length(&mut self, block: u64) -> Result<u64>;

    /// The rolling hash after entry `index` at `block` (`0x00…00` for 0).
    ///
    /// # Errors
    /// [`ChainError`].
    fn queue_hash(&mut self, index: u64, block: u64) -> Result<B256>;

    /// Entry `index` at `block`, as stored.
    ///
    /// # Errors
    /// [`ChainError`]; [`ChainError::Incomplete`] for a kind the contract does not have.
    fn entry(&mut self, index: u64, block: u64) -> Result<Entry>;
}
