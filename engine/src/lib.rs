//! The l2x matching engine: order books, price-time matching and the deterministic state
//! machine that applies sequenced commands.
//!
//! ```text
//!  Sequenced command ──▶ StateMachine::apply ──▶ events (accepted, trade, cancelled, book, …)
//!                          │  instruments, marks
//!                          │  books (book.rs: slab orders, pooled levels; ladder.rs: levels by price)
//!                          │  ledger (l2x-risk)
//!                          ▼
//!                     CanonicalState ──▶ StateHash (SHA-256)
//! ```
//!
//! - [`StateMachine`] owns all state and is the only code that changes it; one thread calls
//!   [`StateMachine::apply`] with commands in sequence order. Same commands, same events,
//!   same [`StateHash`]: no clock, no randomness, no floats, no hash-order iteration.
//! - The matching rules (the contract market makers trade against) are written out in
//!   `docs/MATCHING.md`; the book's layout, invariants and complexity in the `book` module.
//! - The engine does no I/O: no threads, no files, no JSON. The journal, the pipeline and the
//!   JSON-lines scenario format are the `l2x-sequencer` crate's.

#![deny(clippy::float_arithmetic)]

mod book;
mod canonical;
mod ladder;
mod state;
#[cfg(feature = "test-utils")]
pub mod testing;

pub use book::RestingOrder;
pub use canonical::{AccountState, CanonicalState, L1State, MatchingState, PositionState, StateHash};
pub use l2x_types::bytes::DecodeError;
pub use state::{ListingError, RestoreError, StateMachine};
