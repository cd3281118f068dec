//! revm as the embedded chain drives it: one block environment per block, unsigned
//! transactions at gas price 0, and the reasons of reverts in words.
//!
//! Nobody needs ether: the base fee is 0 and every transaction's gas price is 0, so revm's
//! balance check asks for nothing (how the submitter's commits have always been paid), and
//! the gas a transaction uses is still counted, exactly as a node counts it.

use std::convert::Infallible;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::{GenericContractError, SolInterface};
use revm::context::result::ResultAndState;
use revm::context::{BlockEnv, TxEnv};
use revm::context_interface::block::BlobExcessGasAndPrice;
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::TxKind;
use revm::{Context, Database, ExecuteEvm, MainBuilder, MainContext};

use crate::chain::abi::L2xTestUSD::L2xTestUSDErrors as TokenError;
use crate::chain::{ChainError, Result, revert_reason};

/// The chain's state in revm: accounts, storage and code in memory, nothing behind them.
pub(super) type Db = CacheDB<EmptyDB>;

/// Gas allowed to one transaction: EIP-7825's cap, as on mainnet since Osaka.
const TX_GAS_LIMIT: u64 = 1 << 24;

/// What a block tells the EVM about itself: `NUMBER` and `TIMESTAMP`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) number: u64,
    pub(super) timestamp: u64,
}

impl Header {
    /// revm's block environment for this block: its number and timestamp, base fee 0 and
    /// blob base fee 0 (no excess blob gas, and nobody pays for blob gas either).
    fn env(self) -> BlockEnv {
        BlockEnv {
            number: U256::from(self.number),
            timestamp: U256::from(self.timestamp),
            basefee: 0,
            blob_excess_gas_and_price: Some(BlobExcessGasAndPrice { excess_blob_gas: 0, blob_gasprice: 0 }),
            ..BlockEnv::default()
        }
    }
}

/// The embedded chain's chain id (`CHAINID`, and what a journal binds to): "l2x" in ASCII,
/// taken by no public network.
pub const CHAIN_ID: u64 = 0x6c_32_78;

/// An unsigned transaction from `caller` at `nonce`, gas price 0.
pub(super) fn tx(caller: Address, nonce: u64, kind: TxKind, data: Bytes) -> Result<TxEnv> {
    TxEnv::builder()
        .caller(caller)
        .nonce(nonce)
        .kind(kind)
        .data(data)
        .gas_limit(TX_GAS_LIMIT)
        .gas_price(0)
        .chain_id(Some(CHAIN_ID))
        .build()
        .map_err(|e| ChainError::Evm { what: "building an embedded-chain transaction", source: Box::new(e) })
}

/// An unsigned blob transaction (type 3) from `caller` at `nonce` to `to`, carrying blobs
/// whose versioned hashes are `blob_hashes` (what `BLOBHASH` answers), every fee 0.
pub(super) fn blob_tx(caller: Address, nonce: u64, to: Address, data: Bytes, blob_hashes: Vec<B256>) -> Result<TxEnv> {
    TxEnv::builder()
        .tx_type(Some(3))
        .caller(caller)
        .nonce(nonce)
        .kind(TxKind::Call(to))
        .data(data)
        .gas_limit(TX_GAS_LIMIT)
        .gas_price(0)
        .gas_priority_fee(Some(0))
        .blob_hashes(blob_hashes)
        .max_fee_per_blob_gas(0)
        .chain_id(Some(CHAIN_ID))
        .build()
        .map_err(|e| ChainError::Evm { what: "building an embedded-chain blob transaction", source: Box::new(e) })
}

/// Executes `tx` in block `header` against `db`; commits nothing (the caller commits the
/// returned state if it keeps it).
///
/// # Errors
/// [`ChainError::Evm`] if revm refuses the transaction itself (a wrong nonce, a sender
/// with code); a revert or halt is a result, not an error.
pub(super) fn run<D: Database<Error = Infallible>>(db: D, header: Header, tx: TxEnv) -> Result<ResultAndState> {
    let mut evm = Context::mainnet()
        .with_db(db)
        .with_block(header.env())
        .modify_cfg_chained(|cfg| {
            cfg.chain_id = CHAIN_ID;
            cfg.max_blobs_per_tx = Some(crate::blob::MAX_BLOBS as u64);
        })
        .build_mainnet();
    evm.transact(tx).map_err(|e| ChainError::Evm { what: "executing on the embedded chain", source: Box::new(e) })
}

/// The reason of a revert in words: one of the settlement contract's errors, one of the
/// test token's, a Solidity `Error(string)` or `Panic(uint256)`, else its bytes in hex.
pub(crate) fn reason(data: &[u8]) -> String {
    revert_reason(data)
        .or_else(|| token_reason(data))
        .or_else(|| GenericContractError::abi_decode(data).ok().map(|e| e.to_string()))
        .unwrap_or_else(|| format!("reverted with 0x{}", alloy::hex::encode(data)))
}

/// The test token's reason for a revert, when its data is one of the token's errors.
fn token_reason(data: &[u8]) -> Option<String> {
    Some(match TokenError::abi_decode(data).ok()? {
        TokenError::ERC20InsufficientBalance(x) => {
            format!("ERC20InsufficientBalance(sender {}, balance {}, needed {})", x.sender, x.balance, x.needed)
        }
        TokenError::ERC20InsufficientAllowance(x) => {
            format!("ERC20InsufficientAllowance(spender {}, allowance {}, needed {})", x.spender, x.allowance, x.needed)
        }
        TokenError::ERC20InvalidReceiver(x) => format!("ERC20InvalidReceiver({})", x.receiver),
    })
}

#[cfg(test)]
mod tests {
    use alloy::sol_types::SolError;

    use super::*;
    use crate::chain::abi::L2xTestUSD;

    #[test]
    fn reverts_read_as_the_contracts_errors_solidity_strings_or_hex() {
        let short = L2xTestUSD::ERC20InsufficientBalance {
            sender: Address::repeat_byte(1),
            balance: U256::from(5),
            needed: U256::from(9),
        };
        let why = reason(&short.abi_encode());
        assert!(why.starts_with("ERC20InsufficientBalance(sender 0x0101") && why.ends_with("balance 5, needed 9)"));
        let string = alloy::sol_types::Revert::from("no").abi_encode();
        assert!(reason(&string).contains("no"), "{}", reason(&string));
        let panic = alloy::sol_types::Panic::from(alloy::sol_types::PanicKind::UnderOverflow).abi_encode();
        assert!(reason(&panic).contains("overflow"), "{}", reason(&panic));
        // Bytes that are no error (here also valid UTF-8) are shown as bytes, never as text.
        assert_eq!(reason(&[0xde, 0xad]), "reverted with 0xdead");
    }
}
