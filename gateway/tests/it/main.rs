//! Integration tests of the gateway crate (one binary, `it`).
//!
//! - `closing`: how the server ends sessions: every logout readable, then a clean end of
//!   stream, never a reset.
//! - `edges`: the corners docs/PROTOCOL.md documents (replay past the end, cid 0, market
//!   orders, header flags, framing limits, snapshots' md_seq…), pinned.
//! - `logs`: sessions' logons, logouts and refusals as the gateway logs them.
//! - `market_data`: the feed against the engine: a subscriber's book rebuilt from updates
//!   (and a late subscriber's from a snapshot) equals the engine's resting orders after
//!   every command.
//! - `server`: the gateway over real loopback sockets and a real pipeline (`node` starts
//!   one).

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod closing;
mod edges;
mod logs;
mod market_data;
mod node;
mod server;
