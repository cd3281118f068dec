//! Seeded command streams for tests (feature `test-utils`; never in the product): the
//! engine's model and risk tests, and the sequencer's journal, snapshot and pipeline tests,
//! which want streams with every kind of command in them.

#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    missing_docs,
    reason = "test support: a panic is a test failure, and every value here is small"
)]

pub mod orders;
pub mod risk;
