//! Integration tests of the `l2x` binary, run as a real process.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod demo;
mod flags;
mod l2x_match;
mod journal;
mod replay;
mod serve;
mod settle;
