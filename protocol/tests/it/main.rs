//! Integration tests of the protocol crate (one binary, `it`).
//!
//! - `doc`: docs/PROTOCOL.md against the code: reason codes, enums, block lengths, examples.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod doc;
