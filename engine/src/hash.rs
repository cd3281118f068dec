//! The canonical state and its hash.
//!
//! [`CanonicalState`] lists everything that defines the exchange's state in one fixed
//! order; [`CanonicalState::hash`] is SHA-256 over its encoding below. Two states are equal
//! exactly when their canonical forms are, so replay, recovery and the tests compare hashes
//! (and, when they differ, the forms). The matching part ([`MatchingState`]: instruments,
//! books, counters, time) has a hash of its own, which the book's reference-model tests
//! compare.
//!
//! # Encoding (all integers little-endian)
//!
//! ```text
//! "l2x-state-v2"
//! matching part:
//!   u64 instrument count, then per instrument in id order:
//!       16 symbol bytes, then the 13 decimals of its specification in declaration order
//!       (each rust_decimal's 16-byte `serialize()` of the normalised value),
//!       u8 has_mark, i64 mark ticks (0 if none)
//!   u64 resting order count, then per order in canonical order (instrument, bids then
//!       asks, best price first, time priority):
//!       u32 instrument, u8 side, i64 price, u64 order id, u64 account, u64 cid,
//!       i64 leaves, i64 filled, u8 tif, u8 has_expiry, u64 expiry, u8 post_only,
//!       u8 reduce_only, u8 stp
//!   u64 next order id, u64 next trade id, u64 now
//! risk part:
//!   per instrument in id order: i128 funding index
//!   u64 account count, then per account (insurance fund, fee account, then trading
//!       accounts in ascending id):
//!       u8 holder kind (0 account, 1 insurance, 2 fees), u64 account id (0 if none),
//!       i64 collateral, u64 position count, then per position in instrument order:
//!       u32 instrument, i64 size, i128 cost, i128 funding index, i128 realised,
//!       i64 open buy, i64 open sell
//!   i128 total deposits, i128 total withdrawals
//! ```

use core::fmt;

use l2x_types::{Amount, Decimal, Holder, InstrumentId, InstrumentSpec, Price, Qty, Timestamp};
use sha2::{Digest, Sha256};

use crate::book::RestingOrder;

/// The matching part of the state: instruments, books, counters, time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchingState {
    /// Listed instruments in id order, with their mark price.
    pub instruments: Vec<(InstrumentSpec, Option<Price>)>,
    /// Resting orders in canonical order.
    pub orders: Vec<RestingOrder>,
    /// The id the next accepted order gets.
    pub next_order_id: u64,
    /// The id the next trade gets.
    pub next_trade_id: u64,
    /// Sequenced time reached.
    pub now: Timestamp,
}

/// One position record of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionState {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Signed size.
    pub size: Qty,
    /// Signed entry notional of the open size, quote micro-units.
    pub cost: i128,
    /// Funding index at the last settlement.
    pub funding_index: i128,
    /// Realised PnL so far.
    pub realised: i128,
    /// Open quantity of resting buys.
    pub open_buy: Qty,
    /// Open quantity of resting sells.
    pub open_sell: Qty,
}

/// One account's balances and positions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// Who.
    pub holder: Holder,
    /// Collateral.
    pub collateral: Amount,
    /// Position records, in instrument order.
    pub positions: Vec<PositionState>,
}

/// Everything that defines the state, in canonical order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonicalState {
    /// Instruments, books, counters, time.
    pub matching: MatchingState,
    /// Each instrument's cumulative funding index, in id order.
    pub funding_indexes: Vec<i128>,
    /// Insurance fund, fee account, then trading accounts in ascending id.
    pub accounts: Vec<AccountState>,
    /// Total deposits, quote micro-units.
    pub deposits: i128,
    /// Total withdrawals, quote micro-units.
    pub withdrawals: i128,
}

/// A SHA-256 state hash; displays as `0x` and 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateHash(pub [u8; 32]);

impl fmt::Display for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn len(n: usize) -> [u8; 8] {
    (n as u64).to_le_bytes()
}

impl MatchingState {
    fn encode(&self, h: &mut Sha256) {
        let dec = |d: Decimal| d.normalize().serialize();
        h.update(len(self.instruments.len()));
        for (spec, mark) in &self.instruments {
            h.update(spec.symbol.to_bytes());
            for d in [
                spec.tick_size,
                spec.lot_size,
                spec.initial_margin,
                spec.maintenance_margin,
                spec.max_order_qty,
                spec.max_position_qty,
                spec.price_band,
                spec.maker_fee,
                spec.taker_fee,
                spec.liquidation_fee,
                spec.impact_notional,
                spec.funding_interest,
                spec.funding_clamp,
            ] {
                h.update(dec(d));
            }
            h.update([u8::from(mark.is_some())]);
            h.update(mark.map_or(0, |p| p.0).to_le_bytes());
        }
        h.update(len(self.orders.len()));
        for o in &self.orders {
            h.update(o.instrument.0.to_le_bytes());
            h.update([o.side.code()]);
            h.update(o.price.0.to_le_bytes());
            h.update(o.order_id.0.to_le_bytes());
            h.update(o.account.0.to_le_bytes());
            h.update(o.cid.0.to_le_bytes());
            h.update(o.leaves.0.to_le_bytes());
            h.update(o.filled.0.to_le_bytes());
            h.update([o.tif.code(), u8::from(o.expire_ts.is_some())]);
            h.update(o.expire_ts.map_or(0, |t| t.0).to_le_bytes());
            h.update([u8::from(o.post_only), u8::from(o.reduce_only), o.stp.code()]);
        }
        h.update(self.next_order_id.to_le_bytes());
        h.update(self.next_trade_id.to_le_bytes());
        h.update(self.now.0.to_le_bytes());
    }

    /// SHA-256 of the matching part alone (domain `"l2x-matching-v2"`).
    pub fn hash(&self) -> StateHash {
        let mut h = Sha256::new();
        h.update(b"l2x-matching-v2");
        self.encode(&mut h);
        StateHash(h.finalize().into())
    }
}

impl CanonicalState {
    /// The state hash: SHA-256 of the encoding in the module doc.
    pub fn hash(&self) -> StateHash {
        let mut h = Sha256::new();
        h.update(b"l2x-state-v2");
        self.matching.encode(&mut h);
        for index in &self.funding_indexes {
            h.update(index.to_le_bytes());
        }
        h.update(len(self.accounts.len()));
        for a in &self.accounts {
            let (kind, id) = match a.holder {
                Holder::Account(id) => (0u8, id.0),
                Holder::Insurance => (1, 0),
                Holder::Fees => (2, 0),
            };
            h.update([kind]);
            h.update(id.to_le_bytes());
            h.update(a.collateral.0.to_le_bytes());
            h.update(len(a.positions.len()));
            for p in &a.positions {
                h.update(p.instrument.0.to_le_bytes());
                h.update(p.size.0.to_le_bytes());
                h.update(p.cost.to_le_bytes());
                h.update(p.funding_index.to_le_bytes());
                h.update(p.realised.to_le_bytes());
                h.update(p.open_buy.0.to_le_bytes());
                h.update(p.open_sell.0.to_le_bytes());
            }
        }
        h.update(self.deposits.to_le_bytes());
        h.update(self.withdrawals.to_le_bytes());
        StateHash(h.finalize().into())
    }
}
