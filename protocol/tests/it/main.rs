//! Integration tests of the protocol crate (one binary, `it`).
//!
//! - `doc`: docs/PROTOCOL.md against the code: reason codes, enums, block lengths, examples.
//! - `wire_bytes`: one message of every template, pinned to its bytes.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod doc;
mod wire_bytes;
