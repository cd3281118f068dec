//! The sequencer's integration tests (one binary, `it`).
//!
//! - `golden`: every golden scenario (`tests/scenarios/`) through the scenario runner.
//! - `journal`: the journal and snapshots on real files: round trips, torn tails at every
//!   byte, corruption, snapshot + tail = full replay, refused snapshots.
//! - `journal_damage`: every kind of damage to a small journal's files (a flipped bit at
//!   every offset; missing, renamed, duplicated, truncated and foreign files) gives a named
//!   error or the undamaged result, and recovery never modifies a valid record; the issue 14
//!   regressions.
//! - `l1_queue`: the L1 queue against a reference model (random indices, duplicates, gaps,
//!   interleaved trading): each entry once, in order; conservation; the journal replays it.
//! - `pipeline`: the pipeline against direct application of the same commands, durability
//!   holds, tiny rings, restarts, snapshots.

#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    reason = "test code: a panic is the failure report, and every size here is small"
)]

mod golden;
mod journal;
mod journal_damage;
mod l1_queue;
mod pipeline;
