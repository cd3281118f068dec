//! The engine's integration tests (one binary, `it`).
//!
//! - `model_test`: the state machine against a naive reference exchange (`reference`) over
//!   seeded random command streams (`commands`): every event of every command, the
//!   invariants after every command, and the canonical state and its hash.
//! - `journal`: the journal and snapshots on real files: round trips, torn tails at every
//!   byte, corruption, snapshot + tail = full replay, restored states behaving identically.
//! - `journal_damage`: every kind of damage to a small journal's files (a flipped bit at
//!   every offset; missing, renamed, duplicated, truncated and foreign files) gives a named
//!   error or the undamaged result, and recovery never modifies a valid record; the issue 14
//!   regressions.
//! - `risk`: margin, funding and liquidation inside the state machine over random flow and
//!   price paths: conservation, initial margin of accepted orders, maintenance after the
//!   liquidation step.

#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    reason = "test code: a panic is the failure report, and every size here is small"
)]

mod commands;
mod journal;
mod journal_damage;
mod model_test;
mod pipeline;
mod reference;
mod risk;
