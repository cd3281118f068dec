//! The l2x gateway: how market makers reach the engine over TCP (docs/PROTOCOL.md).
//!
//! - [`codec`]: frames and the fixed little-endian messages of order entry and market data;
//!   strict decoding with typed errors, a [`codec::FrameReader`] that reassembles frames
//!   split across reads. Used by the server and by the client alike.
//! - [`codes`]: the codes the gateway itself sends: logout reasons and wire rejects.
//! - [`auth`]: API keys (the accounts file) and HMAC-SHA256 logon verification.
//! - [`throttle`]: per-session token buckets and the disconnect threshold.
//! - [`market_data`]: the engine's events as an order-by-order feed with snapshots, and the
//!   subscriber's book rebuilt from it.
//! - [`reports`]: the engine's events as each account's sequenced execution reports,
//!   rebuilt identically from the journal after a restart.
//! - [`metrics`]: what the gateway counts about trading (orders, rejects by reason, fills,
//!   liquidations, open interest, order-to-ack latency) and the Prometheus text format.
//! - [`server`]: the gateway itself — one `mio` event loop between the sockets and the
//!   sequencer pipeline: sessions, market-data subscribers, replay, protection.
//! - [`client`]: the Rust client (order entry with reconnect and replay; market data with
//!   the rebuilt book).

#![deny(clippy::float_arithmetic)]

pub mod auth;
pub mod client;
pub mod codec;
pub mod codes;
pub mod market_data;
pub mod metrics;
pub mod reports;
pub mod server;
pub mod throttle;
