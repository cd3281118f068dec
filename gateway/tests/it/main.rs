//! Integration tests of the gateway crate (one binary, `it`).
//!
//! - `market_data`: the feed against the engine: a subscriber's book rebuilt from updates
//!   (and a late subscriber's from a snapshot) equals the engine's resting orders after
//!   every command.
//!
//! The tests of the server over real sockets need a pipeline, a journal and a node's
//! set-up: they start an `l2x_node::Node`, and live in `node/tests/it`.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod market_data;
