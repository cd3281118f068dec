//! Integration tests of the `l2x` binary, run as a real process.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod demo;
mod flags;
mod journal;
mod l2x_match;
mod replay;
mod serve;
mod settle;
mod settle_files;
mod settle_idle;
