//! The replay crate's integration tests (one binary, `it`).
//!
//! - `points`: Replay to a point reproduces the engine's state hash there — from the start and
//!   from the newest snapshot before the point, by sequence number and by time — and bad journals
//!   are clear errors naming the file; a torn tail stops the replay cleanly before it.
//! - `views`: The views: what a desk's notebook loads must be what the engine did — the
//!   liquidations and trades of a hand-checked scenario, the state at the point, a time series
//!   sampled at exact boundaries, CSV and JSON lines alike.
//! - `whatif`: What-if runs: with the journal's own parameters they are the original run exactly;
//!   a higher maintenance margin liquidates the account a hand calculation says it does, at the
//!   price it says; a higher initial margin refuses the order that opened the position; bad
//!   parameter files are refused naming the key.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod points;
mod views;
mod whatif;
