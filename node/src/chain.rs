//! Opening the chain the node's config names: `settlement.chain = embedded` (the contract
//! run in-process by revm, its state in `chain_dir`) or `rpc` (a JSON-RPC node, with the
//! submitter's key from the environment and the send policy), or none.

use l2x_settlement::chain::{Chain, RpcChain};
use l2x_settlement::embedded::EmbeddedChain;

use crate::config::{ChainKind, Config, ConfigError, address};
use crate::error::{NodeError, Result};

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
