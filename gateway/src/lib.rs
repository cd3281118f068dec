//! The l2x gateway: the server that puts the engine on TCP (docs/PROTOCOL.md). The wire
//! itself — frames, messages, codes, logon signing, the client — is `l2x_protocol`.
//!
//! - [`auth`]: API keys (the accounts file) and logon verification: clock skew, nonces.
//! - [`throttle`]: per-session token buckets and the disconnect threshold.
//! - [`market_data`]: the engine's events as an order-by-order feed with snapshots.
//! - [`reports`]: the engine's events as each account's sequenced execution reports,
//!   rebuilt identically from the journal after a restart.
//! - [`metrics`]: what the gateway counts about trading (orders, rejects by reason, fills,
//!   liquidations, open interest, order-to-ack latency) and the Prometheus text format.
//! - [`server`]: the gateway itself — one `mio` event loop between the sockets and the
//!   sequencer pipeline: sessions, market-data subscribers, replay, protection.

#![deny(clippy::float_arithmetic)]

pub mod auth;
pub mod market_data;
pub mod metrics;
pub mod reports;
pub mod server;
pub mod throttle;
