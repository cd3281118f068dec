//! The l2x sequencer: the one writer's pipeline, the journal it appends every command to
//! before releasing its effects, snapshots, and the scenario format that feeds commands to
//! the engine from JSON lines.
//!
//! ```text
//!  producers ──▶ pipeline (input ring ─▶ sequencer thread: seq, ts, journal append, apply)
//!                                          │                       │
//!                      journal (segments, snapshots, end marker)   ▼
//!                                          │             reports / market-data rings
//!                                          ▼
//!                 recovery, replay, export, settlement: journal::Journal::read
//!
//!  scenario lines (`l2x match`) ──▶ scenario::Runner ──▶ StateMachine (and, with --journal, the journal)
//! ```
//!
//! - [`journal`]: the format (docs/JOURNAL.md), the one reader and its rules, the writer,
//!   snapshots, recovery.
//! - [`pipeline`]: rings and threads around the state machine (docs/ARCHITECTURE.md):
//!   durability holds, group commit, snapshots off the sequencer.
//! - [`scenario`]: the JSON-lines edge (docs/SCENARIOS.md): parsing, the runner, export.

#![deny(clippy::float_arithmetic)]

pub mod clock;
pub mod journal;
pub mod pin;
pub mod pipeline;
pub mod scenario;
