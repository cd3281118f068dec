//! The engine's integration tests (one binary, `it`).
//!
//! - `model_test`: the state machine against a naive reference exchange (`reference`) over
//!   seeded random command streams (`l2x_engine::testing::orders`): every event of every
//!   command, the invariants after every command, and the canonical state and its hash.
//! - `restore`: a state rebuilt from its canonical encoding behaves exactly like the original.
//! - `risk`: margin, funding and liquidation inside the state machine over random flow and
//!   price paths: conservation, initial margin of accepted orders, maintenance after the
//!   liquidation step.

#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    reason = "test code: a panic is the failure report, and every size here is small"
)]

mod model_test;
mod reference;
mod restore;
mod risk;
