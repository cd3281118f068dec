//! What can go wrong between settlement and a chain, one variant per cause, each keeping
//! the error it came from (`#[source]`).
//!
//! | variant | from | retryable |
//! |---|---|---|
//! | [`Rpc`](ChainError::Rpc), [`Call`](ChainError::Call), [`Receipt`](ChainError::Receipt), [`Incomplete`](ChainError::Incomplete) | a node: transport, JSON-RPC error, an answer that does not decode or lacks a field | yes |
//! | [`Timeout`](ChainError::Timeout) | a node that does not answer in time, a commit not confirmed in time | yes |
//! | [`Pending`](ChainError::Pending), [`NonceUsed`](ChainError::NonceUsed) | the submitter's key used elsewhere: wait, read the chain again | yes |
//! | [`Unconfirmed`](ChainError::Unconfirmed) | a user's transaction sent, its receipt not seen: it may still be mined | no (it may be done twice) |
//! | [`Refused`](ChainError::Refused) | the contract refused a batch (a revert, decoded) | no |
//! | [`Reverted`](ChainError::Reverted) | a contract refused a user's transaction or call on the embedded chain (decoded) | no |
//! | [`WrongContract`](ChainError::WrongContract), [`Config`](ChainError::Config) | our configuration | no |
//! | [`Evm`](ChainError::Evm), [`EvmFailed`](ChainError::EvmFailed), [`Decode`](ChainError::Decode), [`State`](ChainError::State) | the embedded chain (revm, its state file): not RPC errors | no |
//! | [`Artifact`](ChainError::Artifact) | a committed contract artifact (a broken build) | no |
//! | [`Batch`](ChainError::Batch) | a batch whose data does not decode | no |
//! | [`Posted`](ChainError::Posted) | what a committed batch posted cannot be read back ([`PostedError`]: no log, two, a transaction that is not its commit, a damaged store) | no |
//! | [`Blobs`](ChainError::Blobs) | a batch's data that does not fit in a transaction's blobs, or blobs read back that do not decode | no |
//!
//! "Retryable" ([`ChainError::is_retryable`]) means the same call may succeed later with
//! nothing changed on our side: a node that comes back, a transaction that lands or
//! leaves. The rest need someone to change something.

use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::{Address, B256};

/// A result whose error is, unless said otherwise, a [`ChainError`].
pub type Result<T, E = ChainError> = std::result::Result<T, E>;

/// Any error type, boxed (revm's errors are generic over its database).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong talking to the chain (see the module docs for the catalogue).
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The endpoint failed or answered something that is not a valid answer.
    #[error("{what}: {source}")]
    Rpc {
        /// What was being done.
        what: &'static str,
        /// The transport's error.
        #[source]
        source: Box<alloy::transports::TransportError>,
    },
    /// A contract call failed other than by a revert of the contract's own.
    #[error("{what}: {source}")]
    Call {
        /// What was being done.
        what: &'static str,
        /// The contract client's error.
        #[source]
        source: Box<alloy::contract::Error>,
    },
    /// Waiting for a transaction's receipt failed.
    #[error("{what}: {source}")]
    Receipt {
        /// What was being done.
        what: &'static str,
        /// The client's error.
        #[source]
        source: Box<alloy::providers::PendingTransactionError>,
    },
    /// The node answered without something the answer must hold.
    #[error("{what}: {missing}")]
    Incomplete {
        /// What was being done.
        what: &'static str,
        /// What the answer lacked.
        missing: &'static str,
    },
    /// No answer in time.
    #[error("{what}: no answer within {timeout:?}")]
    Timeout {
        /// What was being done.
        what: &'static str,
        /// The limit.
        timeout: Duration,
    },
    /// A user's transaction the node accepted, whose receipt was then not seen (a
    /// timeout, the node gone): it may still be mined. Not retryable: sending it again may
    /// do it twice; look its hash up first.
    #[error(
        "transaction {tx} was sent, but its receipt was not seen ({source}): it may still be mined; check it on the \
         chain before sending again"
    )]
    Unconfirmed {
        /// Its hash.
        tx: B256,
        /// Why the wait failed.
        #[source]
        source: Box<ChainError>,
    },
    /// The address does not hold the settlement contract this submitter may use.
    #[error("{address} is not the l2x settlement contract for submitter {submitter}: {why}")]
    WrongContract {
        /// The address.
        address: Address,
        /// Our submitter address.
        submitter: Address,
        /// What did not match.
        why: String,
        /// The error of the call that should have answered, if one failed.
        #[source]
        source: Option<Box<ChainError>>,
    },
    /// The contract refused the commit (its revert, decoded when it is one of its errors).
    #[error("batch {index} refused: {reason}")]
    Refused {
        /// The batch.
        index: u64,
        /// Why.
        reason: String,
    },
    /// A transaction or call on the embedded chain that reverted or halted (the reason
    /// decoded when it is one of the contracts' errors, a Solidity string or panic).
    /// Nothing changed. A batch's commit that reverts is [`ChainError::Refused`].
    #[error("transaction from {from} to {to} reverted: {reason}")]
    Reverted {
        /// The sender (the zero address for a call).
        from: Address,
        /// The contract called.
        to: Address,
        /// Why.
        reason: String,
    },
    /// The embedded chain's directory or state file.
    #[error("{path}: {detail}")]
    State {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        detail: Box<crate::embedded::StateError>,
    },
    /// revm could not execute a transaction of the embedded chain (it refused the
    /// transaction itself: a wrong nonce, a sender with code; a revert is
    /// [`ChainError::Refused`], [`ChainError::Reverted`] or [`ChainError::EvmFailed`]).
    #[error("{what}: {source}")]
    Evm {
        /// What was being done.
        what: &'static str,
        /// revm's error.
        #[source]
        source: BoxError,
    },
    /// A deployment of the embedded chain's genesis reverted, halted or landed elsewhere
    /// than its fixed address (a broken build).
    #[error("{what}: {outcome:?}")]
    EvmFailed {
        /// What was being done.
        what: &'static str,
        /// What revm reported.
        outcome: Box<revm::context::result::ExecutionResult>,
    },
    /// An answer of the embedded contract that does not decode as its ABI says.
    #[error("{what}: {source}")]
    Decode {
        /// What was being done.
        what: &'static str,
        /// The ABI decoder's error.
        #[source]
        source: Box<alloy::sol_types::Error>,
    },
    /// A committed contract artifact is broken (a broken build), or the code's values for
    /// its immutables do not match it.
    #[error("the {contract} artifact: {what}")]
    Artifact {
        /// The contract whose artifact it is.
        contract: &'static str,
        /// What is wrong with it.
        what: String,
        /// The parser's error, if it does not parse.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// Bad configuration (a key or URL that does not parse, a read-only chain asked to
    /// commit).
    #[error("{0}")]
    Config(String),
    /// A batch whose data does not decode, so the commit's arguments (its withdrawals and
    /// refused entries) cannot be read from it.
    #[error("batch {index}: {source}")]
    Batch {
        /// The batch.
        index: u64,
        /// What is wrong with its data.
        #[source]
        source: crate::batch::FormatError,
    },
    /// What committed batch `index` posted cannot be read back from the chain (`Chain::posted`).
    /// (`why` is this error's detail, not a cause from below, so the message says it once.)
    #[error("batch {index}: what it posted cannot be read back: {why}")]
    Posted {
        /// The batch.
        index: u64,
        /// What was wrong.
        why: PostedError,
    },
    /// A batch whose data does not fit in the blobs of one transaction (refused before
    /// anything is sent), or the blobs of a batch read back from a chain that are not what
    /// `blob::encode` makes.
    #[error("batch {index}: blobs: {source}")]
    Blobs {
        /// The batch (0 where it is not known: blobs read by transaction or hash).
        index: u64,
        /// What is wrong.
        #[source]
        source: Box<crate::blob::BlobError>,
    },
    /// More than one transaction of the submitter is pending: not the submitter's doing,
    /// and nothing is sent until they land or leave.
    #[error("{count} transactions of the submitter still pending; not sending another")]
    Pending {
        /// How many.
        count: u64,
    },
    /// The commit's nonce was used by another transaction of the submitter's key (one sent
    /// before a restart, say): read the chain again to see whether the batch landed.
    #[error("nonce {nonce} was used by another transaction of the submitter; read the chain again")]
    NonceUsed {
        /// The nonce.
        nonce: u64,
    },
}

/// Why what a committed batch posted cannot be read back (the `why` of
/// [`ChainError::Posted`]): the answers of a node, or the embedded chain's store, that are
/// not the batch's commit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PostedError {
    /// The batch is not committed (the chain's last is `last`).
    #[error("not committed (the chain's last batch is {last})")]
    NotCommitted {
        /// The chain's last committed batch.
        last: u64,
    },
    /// No `BatchCommitted` log with this index on the contract's address.
    #[error("no BatchCommitted log with this index on the contract's address (eth_getLogs)")]
    NoLog,
    /// More than one such log (the contract emits one per batch).
    #[error("{count} BatchCommitted logs with this index on the contract's address; the contract emits one")]
    Logs {
        /// How many.
        count: usize,
    },
    /// A log without the hash of its transaction.
    #[error("its BatchCommitted log has no transactionHash")]
    NoTransactionHash,
    /// The node does not have the log's transaction.
    #[error("the node does not have transaction {transaction} of its BatchCommitted log")]
    NoTransaction {
        /// The transaction.
        transaction: B256,
    },
    /// The commit's input, as found at `at` (a transaction, or a file of the embedded chain's
    /// store), is not a `commitBatch` call to the contract.
    #[error("{at}: not a commitBatch call to the contract: {why}")]
    NotACommit {
        /// The transaction or the file.
        at: String,
        /// What it is instead.
        why: String,
    },
    /// The commit found at `at` is another batch's.
    #[error("{at}: the commitBatch call is of batch {got}")]
    WrongIndex {
        /// The transaction or the file.
        at: String,
        /// The index its header argument has.
        got: u64,
    },
    /// A `commitBatchBlobs` transaction that carries no versioned hash (the contract
    /// refuses one, so this is not the commit).
    #[error("{at}: a commitBatchBlobs transaction without blobVersionedHashes")]
    NoBlobHashes {
        /// The transaction.
        at: String,
    },
    /// The blobs of a blob commit, as found at `at` (a transaction's, or files of the
    /// embedded chain's blob store), that are not its data: they do not decode, or are not
    /// the blobs of its versioned hashes.
    #[error("{at}: its blobs are not the batch's data: {why}")]
    Blobs {
        /// The transaction or the file.
        at: String,
        /// What is wrong.
        why: String,
    },
    /// The embedded chain's store has no data file for a committed batch.
    #[error("{}: missing (the embedded chain keeps every commit's input there)", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A file of the embedded chain's store that is not the committed batch's input: it
    /// decodes, but does not hash to what the contract stored (damaged).
    #[error("{}: damaged: {why}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What does not match.
        why: String,
    },
}

impl ChainError {
    /// Whether the same call may succeed later with nothing changed on our side (a node
    /// back, a transaction landed or gone): the submitter's next pass tries again. The
    /// others (a refusal, a wrong contract or key, a broken embedded chain) need someone
    /// to change something first.
    pub fn is_retryable(&self) -> bool {
        match self {
            ChainError::Rpc { .. }
            | ChainError::Call { .. }
            | ChainError::Receipt { .. }
            | ChainError::Incomplete { .. }
            | ChainError::Timeout { .. }
            | ChainError::Pending { .. }
            | ChainError::NonceUsed { .. } => true,
            ChainError::WrongContract { .. }
            | ChainError::Unconfirmed { .. }
            | ChainError::Refused { .. }
            | ChainError::Reverted { .. }
            | ChainError::State { .. }
            | ChainError::Evm { .. }
            | ChainError::EvmFailed { .. }
            | ChainError::Decode { .. }
            | ChainError::Artifact { .. }
            | ChainError::Batch { .. }
            | ChainError::Posted { .. }
            | ChainError::Blobs { .. }
            | ChainError::Config(_) => false,
        }
    }

    /// Whether a contract refused: a batch ([`ChainError::Refused`]) or a transaction or
    /// call ([`ChainError::Reverted`]). Sending the same again gets the same answer.
    pub fn is_refusal(&self) -> bool {
        matches!(self, ChainError::Refused { .. } | ChainError::Reverted { .. })
    }

    /// A transport error while doing `what`.
    pub(crate) fn rpc(what: &'static str) -> impl FnOnce(alloy::transports::TransportError) -> ChainError {
        move |source| ChainError::Rpc { what, source: Box::new(source) }
    }

    /// A blob error of batch `index` (0: not known).
    pub(crate) fn blobs(index: u64) -> impl FnOnce(crate::blob::BlobError) -> ChainError {
        move |source| ChainError::Blobs { index, source: Box::new(source) }
    }

    /// A contract client's error while doing `what`.
    pub(crate) fn call(what: &'static str) -> impl FnOnce(alloy::contract::Error) -> ChainError {
        move |source| ChainError::Call { what, source: Box::new(source) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_configuration_are_not_retryable_node_trouble_is() {
        let timeout = ChainError::Timeout { what: "x", timeout: Duration::from_secs(1) };
        assert!(timeout.is_retryable());
        assert!(ChainError::NonceUsed { nonce: 3 }.is_retryable());
        assert!(ChainError::Pending { count: 2 }.is_retryable());
        let refused = ChainError::Refused { index: 1, reason: "WrongIndex".into() };
        assert!(!refused.is_retryable() && refused.is_refusal());
        let reverted = ChainError::Reverted { from: Address::ZERO, to: Address::ZERO, reason: "no".into() };
        assert!(!reverted.is_retryable() && reverted.is_refusal());
        assert!(!timeout.is_refusal());
        assert!(!ChainError::Config("bad key".into()).is_retryable());
        let artifact = ChainError::Artifact { contract: "L2xSettlement", what: "no bytecode".into(), source: None };
        assert!(!artifact.is_retryable());
        let evm = ChainError::Evm { what: "executing", source: "nonce too low".into() };
        assert!(!evm.is_retryable());
        assert!(evm.to_string().starts_with("executing: "), "{evm}");
    }

    /// Regression (a timeout after the broadcast looked like nothing done): the error names
    /// the transaction, says it may be mined, and is not retried blindly.
    #[test]
    fn an_unconfirmed_transaction_is_named_and_not_retryable() {
        let tx = B256::repeat_byte(0xab);
        let timeout =
            ChainError::Timeout { what: "waiting for the transaction's receipt", timeout: Duration::from_secs(600) };
        let unseen = ChainError::Unconfirmed { tx, source: Box::new(timeout) };
        assert!(!unseen.is_retryable() && !unseen.is_refusal());
        let text = unseen.to_string();
        assert!(
            text.contains(&tx.to_string()) && text.contains("check it on the chain before sending again"),
            "{text}"
        );
    }
}
