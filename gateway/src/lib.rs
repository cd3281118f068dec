//! The l2x gateway: how market makers reach the engine over TCP (docs/PROTOCOL.md).
//!
//! - [`codec`]: frames and the fixed little-endian messages of order entry and market data;
//!   strict decoding with typed errors, a [`codec::FrameReader`] that reassembles frames
//!   split across reads. Used by the server and by the client alike.

#![deny(clippy::float_arithmetic)]

pub mod codec;
