//! The settlement crate's integration tests, one binary (docs: STYLE.md, "a fixed test
//! pyramid"): batch files and their damage, the contract on anvil, the embedded chain,
//! epochs, sending under fee pressure, the submitter, the test token and the vault on anvil.
//!
//! The anvil tests run the pinned anvil (`devnode`, feature `test-utils`), installed into
//! the source tree with `npm ci` on first use.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod batch_set;
mod blobs;
mod common;
mod contract;
mod embedded;
mod epochs;
mod escape_all;
mod l1_user;
mod rebuild;
mod sending;
mod submitter;
mod token;
mod vault;
