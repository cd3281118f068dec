//! The l2x domain vocabulary, shared by every other crate: fixed-point numbers, ids,
//! instruments, the [`Command`]s the sequencer orders and the [`Event`]s the state machine
//! emits, and the typed reason codes that travel on the journal and the wire.
//!
//! # Design
//!
//! - **Integers in state, decimals at the edges.** [`Price`] is `i64` ticks of the
//!   instrument, [`Qty`] is `i64` lots, [`Amount`] is `i64` micro-units of the quote asset
//!   (USDC has 6 decimals), [`Fraction`] is `i64` parts per million. Products go through
//!   `i128`. Decimal strings are parsed and formatted only by [`Instrument`] and [`Amount`]
//!   (with `rust_decimal`), exactly: a value off the tick or lot grid is an error, never
//!   rounded.
//! - **Scale lives in the instrument**, not in each value: one tick-lot is worth
//!   [`Instrument::quote_per_tick_lot`] micro-units of quote, fixed at listing and required to
//!   be a whole number so that every notional is exact.
//! - **Fixed-size values.** Everything in a [`Command`] or [`Event`] is `Copy` except an
//!   instrument listing (rare, boxed), so commands move through rings and into the journal
//!   without allocation.
//! - **Reason codes are numbers in bands** ([`RejectReason`], [`CancelReason`]): 1xx
//!   validation, 2xx risk, 3xx matching, 4xx session. They are written to the journal and
//!   the wire as numbers and to JSON as snake_case names; a code never changes meaning.
//!
//! # Determinism
//!
//! Nothing here reads a clock or a random source. [`DetMap`] is the hash map state code may
//! use: a fixed hasher, so the same operations give the same layout on every run (and
//! `clippy.toml` bans the randomly seeded std maps).

#![deny(clippy::float_arithmetic)]

pub mod bytes;
mod command;
mod event;
mod ids;
mod instrument;
mod l1;
mod num;
mod reason;

pub use command::{Amend, Cancel, Command, CommandKind, MassCancel, NewOrder, Sequenced};
pub use event::{Event, Trade};
pub use ids::{AccountId, ClientOrderId, Holder, InstrumentId, OrderId, Seq, Symbol, SymbolError, Timestamp, TradeId};
pub use instrument::{Instrument, InstrumentSpec, SpecError, SpecField, SpecRule};
pub use l1::{L1Address, L1AddressError, L1Binding};
pub use num::{Amount, Fraction, Ppb, Price, Qty, ValueError, exact_units, format_units};
pub use reason::{CancelReason, OrderType, RejectReason, Side, StpMode, TimeInForce};

/// Re-exported so that edges parse decimals with the same crate and version.
pub use rust_decimal::Decimal;

/// A hash map with a fixed (unseeded) hasher: the only hash map state code may use.
///
/// Lookups only: never iterate one where the order could reach an event, a hash or a file.
pub type DetMap<K, V> = hashbrown::HashMap<K, V, rustc_hash::FxBuildHasher>;

/// A hash set with a fixed (unseeded) hasher; see [`DetMap`].
pub type DetSet<K> = hashbrown::HashSet<K, rustc_hash::FxBuildHasher>;
