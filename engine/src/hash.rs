//! The canonical state and its hash.
//!
//! [`CanonicalState`] lists everything that defines the exchange's state in one fixed
//! order; [`CanonicalState::hash`] is SHA-256 over its encoding below. Two states are equal
//! exactly when their canonical forms are, so replay, recovery and the reference-model tests
//! compare hashes (and, when they differ, the forms).
//!
//! # Encoding (all integers little-endian)
//!
//! ```text
//! "l2x-state-v1"
//! u64 instrument count, then per instrument in id order:
//!     16 symbol bytes, then tick, lot, imf, mmf, max order, max position, band
//!     (each a decimal as 16 bytes: rust_decimal's `serialize()` of the normalised value),
//!     u8 has_mark, i64 mark ticks (0 if none)
//! u64 resting order count, then per order in canonical order (instrument, bids then asks,
//!     best price first, time priority):
//!     u32 instrument, u8 side, i64 price, u64 order id, u64 account, u64 cid,
//!     i64 leaves, i64 filled, u8 tif, u8 has_expiry, u64 expiry, u8 post_only,
//!     u8 reduce_only, u8 stp
//! u64 account count, then per account in ascending id: u64 id, i64 collateral
//! u64 next order id, u64 next trade id, u64 now
//! ```

use core::fmt;

use l2x_types::{AccountId, Amount, Decimal, InstrumentSpec, Price, Timestamp};
use sha2::{Digest, Sha256};

use crate::book::RestingOrder;

/// Everything that defines the state, in canonical order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonicalState {
    /// Listed instruments in id order, with their mark price.
    pub instruments: Vec<(InstrumentSpec, Option<Price>)>,
    /// Resting orders in canonical order.
    pub orders: Vec<RestingOrder>,
    /// Accounts in ascending id, with collateral.
    pub accounts: Vec<(AccountId, Amount)>,
    /// The id the next accepted order gets.
    pub next_order_id: u64,
    /// The id the next trade gets.
    pub next_trade_id: u64,
    /// Sequenced time reached.
    pub now: Timestamp,
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

impl CanonicalState {
    /// The state hash: SHA-256 of the encoding in the module doc.
    pub fn hash(&self) -> StateHash {
        let mut h = Sha256::new();
        h.update(b"l2x-state-v1");
        let len = |n: usize| (n as u64).to_le_bytes();
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
        h.update(len(self.accounts.len()));
        for (id, collateral) in &self.accounts {
            h.update(id.0.to_le_bytes());
            h.update(collateral.0.to_le_bytes());
        }
        h.update(self.next_order_id.to_le_bytes());
        h.update(self.next_trade_id.to_le_bytes());
        h.update(self.now.0.to_le_bytes());
        StateHash(h.finalize().into())
    }
}
