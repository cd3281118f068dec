//! The canonical account leaf: what the state tree commits to for one account, encoded with
//! the Solidity ABI so that a contract can hash it exactly as l2x does
//! (docs/SETTLEMENT.md, "Account leaf").
//!
//! ```text
//!  struct Position    { uint32 instrument; int64 size; int128 cost; int128 fundingIndex; }
//!  struct AccountLeaf { uint64 account; int64 collateral; Position[] positions; }
//!  leaf hash = keccak256(abi.encode(leaf))
//! ```
//!
//! `size` is in lots of the instrument, `cost` (the signed entry notional of the open size)
//! and `collateral` in micro-USDC, `fundingIndex` the instrument's cumulative funding index
//! in micro-USDC per lot at the position's last settlement. Positions are listed in
//! instrument order; closed positions (size 0) are left out, so an account that only ever
//! traded flat has no positions. The insurance fund and the fee account are leaves too, at
//! the two highest keys.

use alloy_primitives::{B256, keccak256};
use alloy_sol_types::{SolValue, sol};
use l2x_risk::Account;
use l2x_types::Holder;

sol! {
    /// One open position of an account (ABI struct).
    #[derive(Debug, PartialEq, Eq)]
    struct Position {
        /// Instrument id.
        uint32 instrument;
        /// Signed size, lots.
        int64 size;
        /// Signed entry notional of the open size, micro-USDC.
        int128 cost;
        /// Funding index at the last settlement, micro-USDC per lot.
        int128 fundingIndex;
    }

    /// An account's leaf (ABI struct).
    #[derive(Debug, PartialEq, Eq)]
    struct AccountLeaf {
        /// The leaf's key: the account id (or a reserved key, [`INSURANCE_KEY`], [`FEES_KEY`]).
        uint64 account;
        /// Collateral, micro-USDC.
        int64 collateral;
        /// Open positions in instrument order.
        Position[] positions;
    }
}

/// The key of the insurance fund's leaf.
pub const INSURANCE_KEY: u64 = u64::MAX;
/// The key of the fee account's leaf.
pub const FEES_KEY: u64 = u64::MAX - 1;

/// The tree key of a holder. Trading account ids stay below [`FEES_KEY`]: the engine
/// refuses deposits to the reserved ids (`AccountId::RESERVED_FROM`).
pub fn key(holder: Holder) -> u64 {
    match holder {
        Holder::Account(id) => id.0,
        Holder::Insurance => INSURANCE_KEY,
        Holder::Fees => FEES_KEY,
    }
}

impl AccountLeaf {
    /// The leaf of an account as the risk ledger has it.
    pub fn of(account: &Account) -> AccountLeaf {
        let positions = account
            .positions
            .iter()
            .filter(|p| p.size != 0)
            .map(|p| Position {
                instrument: p.instrument.0,
                size: p.size,
                // Entry notionals and funding indexes are bounded far below 2^127 by the
                // instrument limits (|size| · price · tick value).
                cost: p.cost,
                fundingIndex: p.funding_index,
            })
            .collect();
        AccountLeaf { account: key(account.holder), collateral: account.collateral, positions }
    }

    /// `abi.encode(leaf)`.
    pub fn encode(&self) -> Vec<u8> {
        self.abi_encode()
    }

    /// `keccak256(abi.encode(leaf))`: the value the tree stores for this key.
    pub fn hash(&self) -> B256 {
        keccak256(self.abi_encode())
    }

    /// Decodes `abi.encode(leaf)`, strictly (the encoding must be the canonical one).
    ///
    /// # Errors
    /// The ABI decoder's, naming what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<AccountLeaf, alloy_sol_types::Error> {
        let leaf = AccountLeaf::abi_decode(bytes)?;
        if leaf.abi_encode() != bytes {
            return Err(alloy_sol_types::Error::custom("not the canonical encoding of an account leaf"));
        }
        Ok(leaf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoding_is_solidity_abi_encode_of_the_struct() {
        let leaf = AccountLeaf {
            account: 7,
            collateral: -5,
            positions: vec![Position { instrument: 1, size: -3, cost: 100, fundingIndex: 9 }],
        };
        let enc = leaf.encode();
        // abi.encode(struct with a dynamic member): the offset of the tuple, then the head
        // (account, collateral, offset of the array), then the array (length, one element of
        // four words).
        assert_eq!(enc.len(), 32 * (1 + 3 + 1 + 4));
        let word = |i: usize| &enc[32 * i..32 * (i + 1)];
        assert_eq!(word(0)[31], 0x20);
        assert_eq!(word(1)[31], 7);
        assert!(word(2)[..31].iter().all(|&b| b == 0xff), "collateral -5, two's complement");
        assert_eq!(word(2)[31], 0xfb);
        assert_eq!(word(3)[31], 0x60, "the array follows the three head words");
        assert_eq!(word(4)[31], 1, "one position");
        assert_eq!(word(5)[31], 1);
        assert_eq!(word(6)[31], 0xfd, "size -3");
        assert_eq!(AccountLeaf::decode(&enc).unwrap(), leaf);
        assert_eq!(leaf.hash(), keccak256(&enc));
        // A non-canonical encoding (a dirty high byte in the uint32) is refused.
        let mut bad = enc.clone();
        bad[32 * 5] = 1;
        assert!(AccountLeaf::decode(&bad).is_err());
    }
}
