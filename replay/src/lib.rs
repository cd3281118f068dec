//! l2x replay: what a risk desk asks of the journal — the state at any point, views of it,
//! the same history under other risk parameters, and the settlement roots re-derived
//! (docs/REPLAY.md).
//!
//! ```text
//!  journal DIR ──(memmap2 segments, sequencer::journal::Journal::read)──▶ Sequenced commands
//!     │  --until-time T: a first scan finds the last command at or before T (ts are monotonic)
//!     ▼
//!  newest snapshot ≤ the point (unless a view needs every command) ──▶ StateMachine
//!     │  apply each later command with the engine's own code, up to the point
//!     ▼
//!  Observer::command(cmd, events, state) after each one ──▶ views, time series, what-if
//!     ▼
//!  Outcome: the state at the point, what was read, a torn tail if the journal ends in one
//! ```
//!
//! The replayed state is the engine's: [`l2x_engine::StateMachine`] applied to the journal's
//! commands, so its hash at any sequence number is the one the engine had there.

#![deny(clippy::float_arithmetic)]

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use l2x_engine::StateMachine;
use l2x_risk::Ledger;
use l2x_sequencer::journal::{self, Journal, JournalError, Point, Start, TornTail};
use l2x_types::{Event, Sequenced, Timestamp};

pub mod point;
pub mod progress;
pub mod report;
pub mod views;
pub mod whatif;

/// How far to replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Until {
    /// To the journal's last intact command.
    #[default]
    End,
    /// Through this sequence number.
    Seq(u64),
    /// Through the last command sequenced at or before this time.
    Time(Timestamp),
    /// Through the last command sequenced at most this many nanoseconds after the
    /// journal's first.
    Elapsed(u64),
}

/// What a replay may use and show.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// How far.
    pub until: Until,
    /// Replay every command from the first, ignoring snapshots (views of events — trades,
    /// liquidations, time series — need every command).
    pub from_start: bool,
    /// Show a progress bar on the terminal (standard error).
    pub progress: bool,
}

/// Sees every replayed command with its events and the state after it.
pub trait Observer {
    /// Before `cmd` is applied (the state is the previous command's).
    fn before(&mut self, cmd: &Sequenced, state: &StateMachine) {
        let _ = (cmd, state);
    }

    /// After `cmd` was applied.
    fn command(&mut self, cmd: &Sequenced, events: &[Event], state: &StateMachine);
}

impl Observer for () {
    fn command(&mut self, _: &Sequenced, _: &[Event], _: &StateMachine) {}
}

/// What a replay reached and read.
#[derive(Debug)]
pub struct Outcome {
    /// The state at the point.
    pub state: StateMachine,
    /// The last command applied (0: none).
    pub last_seq: u64,
    /// Commands applied (after the snapshot, if one was used).
    pub replayed: u64,
    /// The snapshot it started from: (sequence, file).
    pub snapshot: Option<(u64, PathBuf)>,
    /// Snapshots refused, with the reason (an older one, or the start, was used instead).
    pub refused_snapshots: Vec<(PathBuf, String)>,
    /// The torn tail the journal ends with, if it does: replay stopped cleanly before it.
    pub torn: Option<TornTail>,
    /// Whether the journal ended before the point asked for (always, for [`Until::End`]).
    pub reached_end: bool,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The journal: a missing segment, a corrupt record, a newer format, I/O (each names the
    /// file, and the offset where there is one).
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The last command sequenced at or before `t`, or at most `elapsed` after the first
/// command (0 if none).
fn seq_at_time(journal: &Journal, t: Option<Timestamp>, elapsed: u64) -> Result<u64, ReplayError> {
    let mut last = 0;
    let mut end = t;
    journal.read(Point::START, |cmd| {
        let end = *end.get_or_insert(Timestamp(cmd.ts.0.saturating_add(elapsed)));
        if cmd.ts > end {
            return ControlFlow::Break(());
        }
        last = cmd.seq.0;
        ControlFlow::Continue(())
    })?;
    Ok(last)
}

/// Replays the journal in `dir` with the risk configuration `ledger` to the point `opts`
/// names, showing every applied command to `observer`. The journal is read by the engine's
/// one reader ([`Journal::read`]) from the newest snapshot of it at or before the point
/// ([`journal::start`]), with every rule that proves the history continuous.
///
/// # Errors
/// [`ReplayError`]: the journal's errors name the segment and the offset, a snapshot that is
/// not a state of the journal names the snapshot; a point past the journal's end is not an
/// error (the replay stops at the end and says where).
pub fn replay(dir: &Path, ledger: &Ledger, opts: Options, observer: &mut dyn Observer) -> Result<Outcome, ReplayError> {
    let journal = Journal::open(dir)?;
    let limit = match opts.until {
        Until::End => u64::MAX,
        Until::Seq(n) => n,
        Until::Time(t) => seq_at_time(&journal, Some(t), 0)?,
        Until::Elapsed(ns) => seq_at_time(&journal, None, ns)?,
    };
    let Start { state, point, snapshot, refused } = if opts.from_start {
        Start {
            state: StateMachine::with_ledger(ledger.clone()),
            point: Point::START,
            snapshot: None,
            refused: Vec::new(),
        }
    } else {
        journal::start(&journal, limit, ledger)?
    };
    let mut outcome = Outcome {
        state,
        last_seq: point.seq,
        replayed: 0,
        snapshot,
        refused_snapshots: refused,
        torn: None,
        reached_end: true,
    };
    // The segments' headers are read for the bar's total only when there is a bar.
    let total = if opts.progress { progress::estimate(dir, limit)? } else { (0, true) };
    let bar = progress::Bar::new(opts.progress, total, point.seq);
    let mut events = Vec::new();
    let (state, replayed, last) = (&mut outcome.state, &mut outcome.replayed, &mut outcome.last_seq);
    let mut past_limit = false;
    let scanned = journal::read_after(&journal, point, outcome.snapshot.as_ref(), |cmd, _| {
        if cmd.seq.0 > limit {
            past_limit = true;
            return ControlFlow::Break(());
        }
        observer.before(&cmd, state);
        events.clear();
        state.apply(&cmd, &mut events);
        observer.command(&cmd, &events, state);
        *replayed += 1;
        *last = cmd.seq.0;
        bar.tick(cmd.seq.0);
        // At the point asked for the read stops: it claims nothing about what follows.
        if cmd.seq.0 == limit {
            past_limit = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    bar.finish(outcome.last_seq);
    outcome.torn = scanned.torn;
    outcome.reached_end = !past_limit;
    Ok(outcome)
}
