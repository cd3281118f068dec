//! Accounts and their collateral, composed by the engine's state machine.
//!
//! ```text
//!  Ledger ── accounts: Vec<Account>   slot 0 insurance fund, slot 1 fee account, then traders
//!    │          └─ positions: size, cost, funding index, realised, open buys/sells
//!    └────── markets: Vec<Market>     mark, funding index, liquidation index (longs, shorts)
//! ```
//!
//! - [`Ledger`] is the state: collateral, positions, marks, funding indexes and the
//!   liquidation index. The engine's state machine calls it for pre-trade checks, every
//!   fill, every oracle price and funding tick, and to liquidate.
//! - [`formulas`] holds every formula as a pure integer function: fills and realised PnL,
//!   margin, dYdX v4's fillable and bankruptcy prices, partial liquidation sizing, the
//!   liquidation fee cap, BitMEX's ADL rank, impact prices and the funding rate.
//!   `docs/RISK.md` derives each one with a worked example.
//! - Conservation is exact: the equity of every account, the insurance fund and the fee
//!   account sums to deposits − withdrawals at every sequence number
//!   ([`Ledger::check_invariants`]).
//!
//! # Design
//!
//! Accounts are addressed by [`AccountId`](l2x_types::AccountId) at the edges and by a dense [`AccountSlot`]
//! inside: the directory maps one to the other once, and every per-account table (here and
//! in the engine) is a `Vec` indexed by slot. Slots are assigned in first-use order, which is
//! deterministic because commands are sequenced. Nothing is iterated in hash order:
//! [`Ledger::accounts`] walks accounts in ascending id.

#![deny(clippy::float_arithmetic)]

mod account;
pub mod formulas;
mod index;
mod ledger;
mod math;
mod params;

pub use account::{Account, FillEffect, Position};
pub use formulas::ExactPrice;
pub use l2x_types::{Holder, Ppb};
pub use ledger::{Change, Exposure, Fill, Health, Ledger, LiquidationOrder};
pub use params::{LiquidationParams, MarketParams, ParamsError};

/// A dense index of an account in every per-account table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct AccountSlot(pub u32);

impl AccountSlot {
    /// The slot as a `Vec` index.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Why a ledger operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The amount is not positive.
    #[error("amount must be positive")]
    NonPositiveAmount,
    /// The balance would overflow 64 bits.
    #[error("balance would overflow")]
    Overflow,
}
