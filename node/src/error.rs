//! [`NodeError`]: why the node would not start or stop cleanly, or why a settlement command
//! failed.
//!
//! The variants follow the node's parts: the config ([`ConfigError`], the whole of it), the
//! data directory, the pipeline, the gateway, the chain, the submitter, the metrics port,
//! and the `l2x settle` commands' own refusals. An error of a part is kept whole as the
//! `#[source]` (or forwarded, `transparent`, where the node adds nothing to say), so the
//! chain printed by the binary (`l2x: …: …`) reads as it did when the binary composed the
//! node itself.

use std::path::PathBuf;

use l2x_sequencer::journal::JournalError;
use l2x_sequencer::pipeline::PipelineError;
use l2x_settlement::chain::ChainError;
use l2x_types::L1Binding;

use crate::config::{AddressError, ConfigError};

/// What `l2x_node` returns.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;

/// Why the node, or a settlement command over its parts, failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A setting, the accounts file, or the keys against the deposits.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The metrics port is in use (or not ours to bind).
    #[error("binding the metrics port {addr}")]
    MetricsPort {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `data_dir` names a file.
    #[error("data_dir {}: is a file, not a directory", dir.display())]
    DataDirIsFile {
        /// The path.
        dir: PathBuf,
    },
    /// `data_dir` cannot be created.
    #[error("data_dir {}: cannot create the directory", dir.display())]
    DataDir {
        /// The path.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The pipeline would not start (the journal would not recover, say).
    #[error("starting the pipeline on {}", dir.display())]
    Pipeline {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: PipelineError,
    },
    /// The pipeline failed while it stopped.
    #[error(transparent)]
    Shutdown(PipelineError),
    /// The gateway would not start or stop.
    #[error(transparent)]
    Gateway(#[from] l2x_gateway::server::ServerError),
    /// The pipeline refused a command of the node's own (it is shutting down).
    #[error(transparent)]
    Submit(#[from] l2x_sequencer::pipeline::SubmitError),
    /// A first deposit whose micro-USDC do not fit the ledger.
    #[error("a deposit too large")]
    DepositTooLarge(#[source] std::num::TryFromIntError),
    /// A recovered journal bound to another vault than the configured chain's.
    #[error(
        "the journal is bound to the vault {} (token {}) on chain {}, but the configured chain is \
         {} with the vault {} (token {}): a journal settles on one vault only",
        journal.contract, journal.token, journal.chain_id, chain.chain_id, chain.contract, chain.token
    )]
    BoundElsewhere {
        /// The journal's binding.
        journal: L1Binding,
        /// The configured chain's.
        chain: L1Binding,
    },
    /// A new journal on a vault that already has committed batches: they are another
    /// journal's, and the queue's entries they consumed would be credited again.
    #[error(
        "the vault {contract} already has {batches} committed batches, so a new journal cannot settle on it \
         (its queue's entries would be credited twice): recover the journal that committed them, or \
         configure another chain (settlement.chain_dir or settlement.rpc.contract)"
    )]
    VaultHasHistory {
        /// The vault.
        contract: l2x_types::L1Address,
        /// Its last committed batch.
        batches: u64,
    },
    /// A recovered journal that was never bound to a vault (written before the vault, or with
    /// `settlement.chain = "none"`), started with a vault configured.
    #[error(
        "the journal was never bound to a vault (it was written with settlement.chain = \"none\", or \
         before the vault existed), so it cannot settle on the vault {} on chain {}: start it with \
         settlement.chain = \"none\", or start a new journal",
        chain.contract, chain.chain_id
    )]
    NotBound {
        /// The configured chain's binding.
        chain: L1Binding,
    },
    /// The embedded chain refused a first deposit of the config.
    #[error("depositing account {account}'s first deposit from its owner {owner} on the embedded chain")]
    Funding {
        /// The account.
        account: l2x_types::AccountId,
        /// Its test owner.
        owner: alloy_primitives::Address,
        /// Why.
        #[source]
        source: ChainError,
    },
    /// The final snapshot could not be listed or written.
    #[error(transparent)]
    Snapshot(#[from] JournalError),
    /// The embedded chain's directory cannot be used.
    #[error("the embedded chain in {}", dir.display())]
    EmbeddedChain {
        /// Its directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: ChainError,
    },
    /// The chain refused, or could not be reached.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A `--contract` that is not an address.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// A node named where something is committed, without the submitter's key.
    #[error("a node (--rpc-url) needs the submitter's private key (--key-env names its environment variable)")]
    NoKey,
    /// A command that commits, and no chain named.
    #[error("name a chain: --chain-dir DIR, or --rpc-url URL --contract ADDRESS")]
    NoChain,
    /// The submitter failed (`l2x settle submit`).
    #[error(transparent)]
    Settle(#[from] l2x_settlement::submitter::SubmitError),
    /// A directory of batch files that does not load.
    #[error(transparent)]
    Batches(#[from] l2x_settlement::batch::BatchError),
    /// The audit (status, proof) failed.
    #[error(transparent)]
    Audit(#[from] l2x_settlement::audit::AuditError),
    /// Rebuilding from the chain failed (`l2x settle rebuild`).
    #[error(transparent)]
    Rebuild(#[from] l2x_settlement::rebuild::RebuildError),
    /// Recomputing a journal's roots failed.
    #[error("verifying {}", journal.display())]
    Verify {
        /// The journal.
        journal: PathBuf,
        /// Why.
        #[source]
        source: l2x_settlement::audit::AuditError,
    },
    /// A proof that does not verify against the root rebuilt from its own batch files.
    #[error("the proof does not verify against the rebuilt root (a bug)")]
    ProofDoesNotVerify,
    /// An owner's command (`l2x settle deposit`, `escape`, …) refused or stopped.
    #[error(transparent)]
    Owner(#[from] crate::owner::OwnerError),
    /// A JSON answer that does not serialize.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A thread of the node's that panicked.
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
    /// Writing an answer, starting a thread, reading a socket's address.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl NodeError {
    /// Whether the error is the config's (or the keys'): the node refused to start before
    /// anything was written.
    pub fn is_config(&self) -> bool {
        matches!(self, NodeError::Config(_))
    }
}
