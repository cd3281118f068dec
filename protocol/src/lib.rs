//! The l2x wire (docs/PROTOCOL.md): what a market maker's program needs to trade on l2x,
//! and nothing of the server.
//!
//! - [`codec`]: frames and the fixed little-endian messages of order entry and market data;
//!   strict decoding with typed errors, a [`codec::FrameReader`] that reassembles frames
//!   split across reads. The server and the client use the same code. Behind it, private:
//!   `frame` (length, header, reassembly), `template` (the template ids, one coded enum per
//!   direction), `order_entry` and `market_data` (the messages, each with its layout written
//!   once) and `layout` (the walk that runs a layout to encode, decode or measure).
//! - [`codes`]: the codes the gateway itself sends: logout reasons, session rejects, logon
//!   refusals.
//! - [`logon`]: API keys and the HMAC-SHA256 logon signature.
//! - [`book`]: the market-data book a subscriber rebuilds from the feed.
//! - [`client`]: the Rust client (order entry with reconnect and replay; market data with
//!   the rebuilt book).
//!
//! The crate depends on `l2x-types` alone: a client does not pull in the engine, the journal
//! or the server's event loop.

#![deny(clippy::float_arithmetic)]

pub mod book;
pub mod client;
pub mod codec;
pub mod codes;
pub mod logon;

mod frame;
mod layout;
mod market_data;
mod order_entry;
mod template;
