//! Opening a chain: the one the node's config names, or the one a settlement command names.
//!
//! ```text
//!  ChainSpec::Embedded { dir }       the contract run in-process by revm, its state in dir
//!  ChainSpec::Rpc { url, contract }  a JSON-RPC node and the contract's address on it
//!
//!  reader()            read-only: roots, batches, verifyLeaf (settle status/prove/verify,
//!                      replay --verify-roots)
//!  writer(key, conf)   committing: the embedded chain (created if dir holds none), or the
//!                      node's with the submitter's key (settle submit)
//!  open_chain(config)  the node's: settlement.chain = embedded | rpc, with the send policy,
//!                      the vault's binding and where the L1 watcher reads (NodeChain)
//! ```
//!
//! The command line says which chain with flags (`--chain-dir`, or `--rpc-url` and
//! `--contract`); it turns them into a [`ChainSpec`], and everything from there is here.

use std::path::PathBuf;

use l2x_settlement::chain::{Chain, QueueReader, RpcChain};
use l2x_settlement::embedded::EmbeddedChain;
use l2x_types::{L1Address, L1Binding};

use crate::config::{ChainKind, Config, ConfigError, address};
use crate::error::{NodeError, Result};
use crate::watcher::Source;

/// A chain named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainSpec {
    /// The embedded chain kept in this directory (`l2x serve` keeps its own in
    /// DATA_DIR/chain).
    Embedded {
        /// The directory.
        dir: PathBuf,
    },
    /// A node's JSON-RPC endpoint and the settlement contract's address on it.
    Rpc {
        /// The endpoint.
        url: String,
        /// The contract's address, as given (checked when the chain is opened).
        contract: String,
    },
}

impl ChainSpec {
    /// The chain to read.
    ///
    /// # Errors
    /// A directory that holds no chain, an unreachable node, a contract that is not an
    /// address.
    pub fn reader(&self) -> Result<Box<dyn Chain>> {
        Ok(match self {
            ChainSpec::Embedded { dir } => Box::new(EmbeddedChain::read_only(dir)?),
            ChainSpec::Rpc { url, contract } => Box::new(RpcChain::read_only(url, address(contract)?)?),
        })
    }

    /// The chain to commit to: the embedded one (created if the directory holds none), or
    /// the node's with the submitter's `key`, waiting for `confirmations` after each commit.
    ///
    /// # Errors
    /// [`NodeError::NoKey`] for a node without a key; as [`ChainSpec::reader`].
    pub fn writer(&self, key: Option<&str>, confirmations: u64) -> Result<Box<dyn Chain>> {
        Ok(match self {
            ChainSpec::Embedded { dir } => Box::new(EmbeddedChain::open(dir)?),
            ChainSpec::Rpc { url, contract } => {
                let key = key.ok_or(NodeError::NoKey)?;
                Box::new(RpcChain::connect(url, key, address(contract)?, confirmations)?)
            }
        })
    }
}

/// The chain to read, if `spec` names one.
///
/// # Errors
/// As [`ChainSpec::reader`].
pub fn reader(spec: Option<&ChainSpec>) -> Result<Option<Box<dyn Chain>>> {
    spec.map(ChainSpec::reader).transpose()
}

/// The node's chain, opened before anything is written: the chain to commit to (the
/// embedded one is still concrete, so that a new journal's first deposits can be made on it
/// before the submitter takes it), the vault's binding, and where the L1 watcher reads.
#[derive(Debug)]
pub struct NodeChain {
    /// The chain the submitter commits to.
    pub committer: Committer,
    /// The chain id, the vault and its token: what the journal is bound to.
    pub binding: L1Binding,
    /// Where the L1 watcher reads the queue.
    pub source: Source,
}

/// The chain the submitter commits to, as opened.
#[derive(Debug)]
pub enum Committer {
    /// The embedded chain, opened for writing.
    Embedded(EmbeddedChain),
    /// A JSON-RPC node, with the submitter's key.
    Rpc(RpcChain),
}

impl Committer {
    /// The chain, to read before the submitter takes it.
    pub fn as_chain(&mut self) -> &mut dyn Chain {
        match self {
            Committer::Embedded(chain) => chain,
            Committer::Rpc(chain) => chain,
        }
    }

    /// The chain as the submitter takes it.
    pub fn into_chain(self) -> Box<dyn Chain + Send> {
        match self {
            Committer::Embedded(chain) => Box::new(chain),
            Committer::Rpc(chain) => Box::new(chain),
        }
    }
}

/// `QueueReader::binding`'s answer as the engine's [`L1Binding`].
pub fn l1_binding(reader: &mut dyn QueueReader) -> Result<L1Binding> {
    let (chain_id, contract, token) = reader.binding()?;
    Ok(L1Binding { chain_id, contract: L1Address(contract.into_array()), token: L1Address(token.into_array()) })
}

/// The chain the config names, opened for committing, with its binding and the watcher's
/// source (`None` for `chain = "none"`).
///
/// # Errors
/// No `[settlement.rpc]` table for `rpc`, the submitter's key not in the environment, a
/// contract that is not an address, an unreachable node, an embedded chain directory that
/// cannot be used (or is in use).
pub fn open_chain(config: &Config) -> Result<Option<NodeChain>> {
    let settlement = &config.settlement;
    match (settlement.chain, &settlement.rpc) {
        (ChainKind::None, _) => Ok(None),
        (ChainKind::Rpc, Some(rpc)) => {
            let address = address(&rpc.contract)?;
            let mut chain = RpcChain::connect(&rpc.url, &rpc.key()?, address, rpc.confirmations)?;
            chain.set_policy(rpc.send_policy());
            let mut reader = RpcChain::read_only(&rpc.url, address)?;
            let binding = l1_binding(&mut reader)?;
            Ok(Some(NodeChain { committer: Committer::Rpc(chain), binding, source: Source::Rpc(Box::new(reader)) }))
        }
        (ChainKind::Rpc, None) => Err(ConfigError::NoRpcTable.into()),
        (ChainKind::Embedded, _) => {
            let dir = config.chain_dir();
            let embedded = |source| NodeError::EmbeddedChain { dir: dir.clone(), source };
            let mut chain = EmbeddedChain::open(&dir).map_err(embedded)?;
            let binding = l1_binding(&mut chain)?;
            Ok(Some(NodeChain { committer: Committer::Embedded(chain), binding, source: Source::Embedded(dir) }))
        }
    }
}
