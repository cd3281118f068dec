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
//!  open_chain(config)  the node's: settlement.chain = embedded | rpc, with the send policy
//! ```
//!
//! The command line says which chain with flags (`--chain-dir`, or `--rpc-url` and
//! `--contract`); it turns them into a [`ChainSpec`], and everything from there is here.

use std::path::PathBuf;

use l2x_settlement::chain::{Chain, RpcChain};
use l2x_settlement::embedded::EmbeddedChain;

use crate::config::{ChainKind, Config, ConfigError, address};
use crate::error::{NodeError, Result};

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

/// The chain the config names, opened for committing (`None` for `chain = "none"`).
///
/// # Errors
/// No `[settlement.rpc]` table for `rpc`, the submitter's key not in the environment, a
/// contract that is not an address, an unreachable node, an embedded chain directory that
/// cannot be used (or is in use).
pub fn open_chain(config: &Config) -> Result<Option<Box<dyn Chain + Send>>> {
    let settlement = &config.settlement;
    match (settlement.chain, &settlement.rpc) {
        (ChainKind::None, _) => Ok(None),
        (ChainKind::Rpc, Some(rpc)) => {
            let address = address(&rpc.contract)?;
            let mut chain = RpcChain::connect(&rpc.url, &rpc.key()?, address, rpc.confirmations)?;
            chain.set_policy(rpc.send_policy());
            Ok(Some(Box::new(chain)))
        }
        (ChainKind::Rpc, None) => Err(ConfigError::NoRpcTable.into()),
        (ChainKind::Embedded, _) => {
            let dir = config.chain_dir();
            let chain = EmbeddedChain::open(&dir).map_err(|source| NodeError::EmbeddedChain { dir, source })?;
            Ok(Some(Box::new(chain)))
        }
    }
}
