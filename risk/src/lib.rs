//! Accounts and their collateral, composed by the engine's state machine.
//!
//! # Scope today
//!
//! This crate holds the account directory and the collateral ledger: a deposit credits an
//! account, creating it. Positions, mark-to-market, margin requirements, pre-trade checks,
//! funding, liquidation, the insurance fund and auto-deleveraging arrive with the risk
//! engine and will live here, keyed by the same dense account slots.
//!
//! # Design
//!
//! Accounts are addressed by [`AccountId`] at the edges and by a dense [`AccountSlot`]
//! inside: the directory maps one to the other once, and every per-account table (here and
//! in the engine) is a `Vec` indexed by slot. Slots are assigned in first-use order, which is
//! deterministic because commands are sequenced. Nothing is iterated in hash order:
//! [`Ledger::accounts`] walks accounts in ascending id.

#![deny(clippy::float_arithmetic)]

mod account;
pub mod formulas;
mod ledger;
mod math;
mod params;

pub use account::{Account, FillEffect, Holder, Position};
pub use ledger::{Fill, Health, Ledger, LiquidationOrder, fraction_of};
pub use params::{LiquidationParams, MarketParams, ParamsError, Ppb};

/// A dense index of an account in every per-account table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
