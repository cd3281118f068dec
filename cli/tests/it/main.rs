//! Integration tests of the `l2x` binary, run as a real process.

mod golden;
