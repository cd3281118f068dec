//! The market state at an epoch's close: per listed instrument, its mark price, its
//! cumulative funding index and its tick value — what turns an account leaf into equity
//! and into the funding the account owes (docs/SETTLEMENT.md, "Market state").
//!
//! ```text
//!  struct Market { uint32 instrument; int64 mark; int128 fundingIndex; int64 tickValue; }
//!  market hash = keccak256(abi.encode(Market[] markets))       (instruments 0, 1, …, n−1)
//!
//!  funding an account owes on a position = size · (market.fundingIndex − position.fundingIndex)
//!  equity = collateral + Σ ( size · mark · tickValue − cost − size · (fundingIndex − position.fundingIndex) )
//! ```
//!
//! Funding is settled lazily (docs/RISK.md, "Funding"): a position's `fundingIndex` is the
//! index when it last traded, and what it owes since is the difference with the market's
//! index. The leaves alone cannot say it; the leaves and the market state of the same batch
//! can, and both are in the batch's data (bound on chain by its data hash).
//!
//! `mark` is in ticks, `0` while the instrument has no oracle price yet (the engine refuses
//! an oracle price below 1 tick, so 0 never is one); `tickValue` is `k` of docs/RISK.md, the
//! micro-USDC value of one tick on one lot (fixed at listing). The array is ABI-encodable
//! so that a contract can hash it (`keccak256(abi.encode(markets))`) as l2x does.

use alloy_primitives::{B256, keccak256};
use alloy_sol_types::{SolValue, sol};
use l2x_risk::Ledger;
use l2x_types::InstrumentId;

use crate::leaf::{AccountLeaf, Position};

sol! {
    /// One listed instrument's market state (ABI struct).
    #[derive(Debug, PartialEq, Eq)]
    struct Market {
        /// Instrument id (listing order, from 0).
        uint32 instrument;
        /// Mark price, ticks; 0 while the instrument has no oracle price.
        int64 mark;
        /// Cumulative funding index, micro-USDC per lot.
        int128 fundingIndex;
        /// Micro-USDC per tick per lot (`k`).
        int64 tickValue;
    }
}

/// Bytes of one market in a batch's raw data.
pub const MARKET_LEN: usize = 4 + 8 + 16 + 8;

/// The market state of every instrument the ledger lists, in instrument order.
pub fn of(ledger: &Ledger) -> Vec<Market> {
    (0u32..)
        .map_while(|i| {
            let id = InstrumentId(i);
            let params = ledger.market_params(id)?;
            Some(Market {
                instrument: i,
                mark: ledger.mark(id).map_or(0, |p| p.0),
                fundingIndex: ledger.funding_index(id),
                tickValue: params.quote_per_tick_lot,
            })
        })
        .collect()
}

/// Whether `markets` is the market state of `ledger` (what [`of`] would give), without
/// building it: epochs ask this after every command of an epoch that is due but has not
/// changed anything yet.
pub fn matches(ledger: &Ledger, markets: &[Market]) -> bool {
    let listed = (0u32..).take_while(|&i| ledger.market_params(InstrumentId(i)).is_some()).count();
    listed == markets.len()
        && markets.iter().all(|m| {
            let id = InstrumentId(m.instrument);
            ledger.mark(id).map_or(0, |p| p.0) == m.mark && ledger.funding_index(id) == m.fundingIndex
        })
}

/// `keccak256(abi.encode(markets))`: what a contract computes from the same array.
pub fn hash(markets: &[Market]) -> B256 {
    keccak256(markets.abi_encode())
}

/// Appends the compact encoding of `markets` (a batch's raw data): `u32 n`, then per market
/// `u32 instrument ‖ i64 mark ‖ i128 fundingIndex ‖ i64 tickValue`, big-endian.
pub fn encode(markets: &[Market], out: &mut Vec<u8>) {
    out.extend_from_slice(&u32::try_from(markets.len()).unwrap_or(u32::MAX).to_be_bytes());
    for m in markets {
        out.extend_from_slice(&m.instrument.to_be_bytes());
        out.extend_from_slice(&m.mark.to_be_bytes());
        out.extend_from_slice(&m.fundingIndex.to_be_bytes());
        out.extend_from_slice(&m.tickValue.to_be_bytes());
    }
}

/// Why a leaf cannot be valued at a market state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A position in an instrument the market state does not list.
    #[error("account {account}: a position in instrument {instrument}, which the market state does not list")]
    Unlisted {
        /// The account.
        account: u64,
        /// The instrument.
        instrument: u32,
    },
    /// A position in an instrument without a mark price.
    #[error("account {account}: a position in instrument {instrument}, which has no mark price")]
    NoMark {
        /// The account.
        account: u64,
        /// The instrument.
        instrument: u32,
    },
    /// A figure that does not fit in 128 bits. The exchange's risk limits keep every value
    /// it produces far inside; only a crafted batch file can hold such a leaf or market.
    #[error("account {account}: the position in instrument {instrument}: {what} does not fit in 128 bits")]
    Overflow {
        /// The account.
        account: u64,
        /// The position's instrument.
        instrument: u32,
        /// The figure.
        what: &'static str,
    },
}

/// What `leaf` owes in funding not settled yet, at `markets`: `Σ size · (F − f)` over its
/// positions, micro-USDC (negative: it is owed).
///
/// # Errors
/// [`ValueError::Unlisted`] for a position the market state does not list,
/// [`ValueError::Overflow`] for a figure that does not fit in 128 bits.
pub fn funding_owed(leaf: &AccountLeaf, markets: &[Market]) -> Result<i128, ValueError> {
    let mut owed = 0i128;
    for p in &leaf.positions {
        let m = market(leaf, p.instrument, markets)?;
        owed = owed.checked_add(position_funding(leaf, p, m)?).ok_or_else(|| overflow(leaf, p, "the funding owed"))?;
    }
    Ok(owed)
}

/// `leaf`'s equity at `markets`: collateral + unrealised PnL at the marks − funding owed,
/// micro-USDC, exact (docs/RISK.md, "Margin").
///
/// # Errors
/// [`ValueError`] for a position whose instrument is not listed or has no mark, or a figure
/// that does not fit in 128 bits.
pub fn equity(leaf: &AccountLeaf, markets: &[Market]) -> Result<i128, ValueError> {
    let mut equity = i128::from(leaf.collateral);
    for p in &leaf.positions {
        let m = market(leaf, p.instrument, markets)?;
        if m.mark == 0 {
            return Err(ValueError::NoMark { account: leaf.account, instrument: p.instrument });
        }
        let notional = i128::from(p.size)
            .checked_mul(i128::from(m.mark))
            .and_then(|v| v.checked_mul(i128::from(m.tickValue)))
            .ok_or_else(|| overflow(leaf, p, "size × mark × tickValue"))?;
        let funding = position_funding(leaf, p, m)?;
        let value = notional
            .checked_sub(p.cost)
            .and_then(|v| v.checked_sub(funding))
            .ok_or_else(|| overflow(leaf, p, "size × mark × tickValue − cost − funding owed"))?;
        equity = equity.checked_add(value).ok_or_else(|| overflow(leaf, p, "the equity"))?;
    }
    Ok(equity)
}

/// What one position owes in funding: `size · (F − f)`.
fn position_funding(leaf: &AccountLeaf, p: &Position, m: &Market) -> Result<i128, ValueError> {
    m.fundingIndex
        .checked_sub(p.fundingIndex)
        .and_then(|delta| i128::from(p.size).checked_mul(delta))
        .ok_or_else(|| overflow(leaf, p, "size × (the market's fundingIndex − the position's)"))
}

fn overflow(leaf: &AccountLeaf, p: &Position, what: &'static str) -> ValueError {
    ValueError::Overflow { account: leaf.account, instrument: p.instrument, what }
}

fn market<'a>(leaf: &AccountLeaf, instrument: u32, markets: &'a [Market]) -> Result<&'a Market, ValueError> {
    markets
        .get(instrument as usize)
        .filter(|m| m.instrument == instrument)
        .ok_or(ValueError::Unlisted { account: leaf.account, instrument })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_market_hash_is_keccak_of_the_abi_encoded_array() {
        let markets = vec![
            Market { instrument: 0, mark: 100_000, fundingIndex: -3, tickValue: 500 },
            Market { instrument: 1, mark: 0, fundingIndex: 0, tickValue: 500 },
        ];
        let enc = markets.abi_encode();
        // abi.encode(Market[]): the offset of the array, its length, four words per market.
        assert_eq!(enc.len(), 32 * (2 + 4 * 2));
        let word = |i: usize| &enc[32 * i..32 * (i + 1)];
        assert_eq!(word(0)[31], 0x20);
        assert_eq!(word(1)[31], 2);
        assert_eq!(u64::from_be_bytes(word(3)[24..].try_into().unwrap_or_default()), 100_000);
        assert!(word(4)[..31].iter().all(|&b| b == 0xff), "funding index -3, two's complement");
        assert_eq!(word(4)[31], 0xfd);
        assert_eq!(word(6)[31], 1, "the second market's instrument");
        assert_eq!(hash(&markets), keccak256(&enc));
        let mut compact = Vec::new();
        encode(&markets, &mut compact);
        assert_eq!(compact.len(), 4 + 2 * MARKET_LEN);
    }

    /// The worked example of docs/SETTLEMENT.md ("Valuing an account").
    #[test]
    fn equity_and_funding_owed_from_a_leaf_and_the_market_state() {
        let markets = vec![Market { instrument: 0, mark: 101_000, fundingIndex: 1_500_000, tickValue: 500 }];
        let leaf = AccountLeaf {
            account: 7,
            collateral: 10_000_000_000,
            positions: vec![Position { instrument: 0, size: 200, cost: 10_000_000_000, fundingIndex: 1_000_000 }],
        };
        // The bytes the worked example shows: the market in the raw data, no withdrawal and
        // no refused queue entry (two zero counts), then the leaf.
        let mut bytes = Vec::new();
        encode(&markets, &mut bytes);
        bytes.extend([0u8; 8]);
        bytes.extend(crate::batch::encode_leaves(std::slice::from_ref(&leaf)));
        let hex = alloy_primitives::hex::encode(&bytes);
        assert_eq!(
            hex,
            "00000001\
             00000000 0000000000018a88 0000000000000000000000000016e360 00000000000001f4\
             00000000 00000000\
             0000000000000007 00000002540be400 0001\
             00000000 00000000000000c8 000000000000000000000002540be400 000000000000000000000000000f4240"
                .replace(' ', "")
        );
        assert_eq!(funding_owed(&leaf, &markets), Ok(100_000_000));
        assert_eq!(equity(&leaf, &markets), Ok(10_000_000_000 + 10_100_000_000 - 10_000_000_000 - 100_000_000));
        let unlisted = AccountLeaf { positions: vec![Position { instrument: 3, ..leaf.positions[0].clone() }], ..leaf };
        assert_eq!(equity(&unlisted, &markets), Err(ValueError::Unlisted { account: 7, instrument: 3 }));
    }

    /// Issue 14 review: the products were unchecked `i128` arithmetic on values read from
    /// batch files: a crafted, hash-consistent batch made `settle prove` panic (debug) or
    /// print a wrapped equity (release). Each figure that does not fit is an error naming
    /// the account and the instrument.
    #[test]
    fn values_that_do_not_fit_in_128_bits_are_errors_not_wrapped() {
        let big = Market { instrument: 0, mark: i64::MAX, fundingIndex: i128::MAX, tickValue: i64::MAX };
        let p = Position { instrument: 0, size: 1, cost: 0, fundingIndex: 0 };
        let leaf = |p: Position| AccountLeaf { account: 9, collateral: i64::MAX, positions: vec![p] };
        let what = |r: Result<i128, ValueError>| match r {
            Err(ValueError::Overflow { account: 9, instrument: 0, what }) => what,
            other => panic!("{other:?}"),
        };
        // size × mark × tickValue: 2^189.
        let huge = leaf(Position { size: i64::MAX, ..p.clone() });
        assert_eq!(what(equity(&huge, &[Market { fundingIndex: 0, ..big.clone() }])), "size × mark × tickValue");
        // F − f.
        let behind = leaf(Position { fundingIndex: -1, ..p.clone() });
        assert_eq!(
            what(funding_owed(&behind, std::slice::from_ref(&big))),
            "size × (the market's fundingIndex − the position's)"
        );
        // size × (F − f).
        let long = leaf(Position { size: 2, ..p.clone() });
        assert_eq!(
            what(funding_owed(&long, std::slice::from_ref(&big))),
            "size × (the market's fundingIndex − the position's)"
        );
        // − cost.
        let cost = leaf(Position { cost: i128::MIN, ..p.clone() });
        let small = Market { instrument: 0, mark: 1, fundingIndex: 0, tickValue: 1 };
        assert_eq!(what(equity(&cost, std::slice::from_ref(&small))), "size × mark × tickValue − cost − funding owed");
        // The sum over positions.
        let two = AccountLeaf {
            account: 9,
            collateral: 0,
            positions: vec![
                Position { instrument: 0, size: 1, cost: -(i128::MAX / 2) - 1, fundingIndex: 0 },
                Position { instrument: 1, size: 1, cost: -(i128::MAX / 2) - 1, fundingIndex: 0 },
            ],
        };
        let both = [small.clone(), Market { instrument: 1, ..small }];
        let err = equity(&two, &both).unwrap_err();
        assert_eq!(
            err.to_string(),
            "account 9: the position in instrument 1: the equity does not fit in 128 bits",
            "{err:?}"
        );
    }
}
