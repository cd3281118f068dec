//! The engine's integration tests (one binary, `it`).
//!
//! - `model_test`: the state machine against a naive reference exchange (`reference`) over
//!   seeded random command streams (`commands`): every event of every command, the
//!   invariants after every command, and the canonical state and its hash.

mod commands;
mod model_test;
mod reference;
