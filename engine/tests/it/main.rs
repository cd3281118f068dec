//! The engine's integration tests (one binary, `it`).
//!
//! - `model_test`: the state machine against a naive reference exchange (`reference`) over
//!   seeded random command streams (`commands`): every event of every command, the
//!   invariants after every command, and the canonical state and its hash.
//! - `risk`: margin, funding and liquidation inside the state machine over random flow and
//!   price paths: conservation, initial margin of accepted orders, maintenance after the
//!   liquidation step.

mod commands;
mod model_test;
mod reference;
mod risk;
