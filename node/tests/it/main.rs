//! Integration tests of the node crate (one binary, `it`): the gateway over real loopback
//! sockets, a real pipeline and a real journal, all started as one [`l2x_node::Node`].
//!
//! - `closing`: how the server ends sessions: every logout readable, then a clean end of
//!   stream, never a reset.
//! - `edges`: the corners docs/PROTOCOL.md documents (replay past the end, cid 0, market
//!   orders, header flags, framing limits, snapshots' md_seq…), pinned.
//! - `l1`: the L1 watcher: first deposits through the embedded vault, restarts, bindings
//!   refused, confirmations and reorgs on anvil.
//! - `logs`: sessions' logons, logouts and refusals as the gateway logs them.
//! - `metrics`: the Prometheus endpoint: what it answers, and to what.
//! - `server`: logon, every order type, throttles, cancel-on-disconnect, replay after a
//!   reconnect and after a restart, slow consumers, market data (`node` starts the node
//!   these tests share).
//! - `single_thread`: `pipeline.mode = "single-thread"` journals the same records and state
//!   as the multi-thread pipeline for the same orders over TCP (the socket tests of
//!   `server` also run in that mode, through [`node::single_thread`]).
//! - `withdrawals`: `Withdraw` answered `Withdrawn` or `Rejected`, malformed withdrawals,
//!   and the answers replayed after a reconnect and rebuilt after a restart.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod closing;
mod edges;
mod l1;
mod logs;
mod metrics;
mod node;
mod server;
mod single_thread;
mod withdrawals;
