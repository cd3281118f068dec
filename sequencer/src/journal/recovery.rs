//! Rebuilding the state from a journal: from the newest snapshot that belongs to it, then
//! the records after the snapshot's point.
//!
//! ```text
//!  snapshots ≤ the point asked for, newest first
//!     damaged, renamed, or taken from another journal ──▶ refused (with the reason), next
//!     valid and of this journal ──▶ its state at (seq, CRC)
//!  Journal::read from that point: the record seq must be there with that CRC — a snapshot
//!     past the journal's end, or of another history with the same id, is an error
//! ```

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use l2x_risk::Ledger;

use super::read::{Journal, ScanReport, TornTail};
use super::write::{JournalWriter, lock};
use super::{JournalError, Point, snapshot};
use l2x_engine::{L1State, StateMachine};

/// What recovery did.
#[derive(Debug, Default)]
pub struct RecoveryReport {
    /// The snapshot recovery started from: (sequence, file), if any.
    pub snapshot: Option<(u64, PathBuf)>,
    /// Snapshots refused, newest first, with the reason.
    pub refused_snapshots: Vec<(PathBuf, String)>,
    /// Commands replayed from the journal after the snapshot.
    pub replayed: u64,
    /// The last sequence number recovered (0 for an empty journal).
    pub last_seq: u64,
    /// The journal point recovered to: after the record `last_seq` (what a snapshot of the
    /// recovered state is bound to).
    pub last: Point,
    /// The torn tail that was found (and, by a writer, zeroed), if any.
    pub torn: Option<TornTail>,
    /// The recovered state's L1 queue: the next index it will take and the vault it is
    /// bound to (what the node's L1 watcher resumes from and checks its chain against).
    pub l1: L1State,
}

/// The state a read of a journal starts from.
#[derive(Debug)]
pub struct Start {
    /// The state at `point`.
    pub state: StateMachine,
    /// Where in the journal: [`Point::START`], or the snapshot's point.
    pub point: Point,
    /// The snapshot used: (sequence, file).
    pub snapshot: Option<(u64, PathBuf)>,
    /// Snapshots refused, newest first, with the reason.
    pub refused: Vec<(PathBuf, String)>,
}

/// Reads `journal` after `point` (see [`Journal::read`]); an error about the point names
/// `snapshot`, the snapshot it came from.
///
/// # Errors
/// As [`Journal::read`]; [`JournalError::SnapshotNotInJournal`] for a snapshot past the
/// journal's end or of another history.
pub fn read_after(
    journal: &Journal,
    point: Point,
    snapshot: Option<&(u64, PathBuf)>,
    f: impl FnMut(l2x_types::Sequenced, Point) -> ControlFlow<()>,
) -> Result<ScanReport, JournalError> {
    journal.read_points(point, f).map_err(|e| match (e, snapshot) {
        (e @ JournalError::PointNotInJournal { .. }, Some((_, path))) => {
            JournalError::SnapshotNotInJournal { path: path.clone(), source: Box::new(e) }
        }
        (e, _) => e,
    })
}

/// The newest snapshot of `journal` at or before `limit` that verifies, or the empty state
/// of `ledger`'s configuration at the journal's start. Refused snapshots are listed with
/// the reason: damaged, named for another sequence number than their header's, or taken
/// from another journal (another journal id).
///
/// # Errors
/// I/O errors listing the directory.
pub fn start(journal: &Journal, limit: u64, ledger: &Ledger) -> Result<Start, JournalError> {
    let mut refused = Vec::new();
    for (seq, path) in snapshot::list(journal.dir(), limit)? {
        let header = match snapshot::read_header(&path) {
            Ok(h) => h,
            Err(e) => {
                refused.push((path, e.to_string()));
                continue;
            }
        };
        if header.point.seq != seq {
            refused.push((path, format!("its header says sequence {}, its name {seq}", header.point.seq)));
        } else if header.journal != journal.id() {
            let why = format!("it was taken from journal {}, this is journal {}", header.journal, journal.id());
            refused.push((path, why));
        } else {
            match snapshot::read(&path, ledger.clone()) {
                Ok((header, state)) => {
                    return Ok(Start { state, point: header.point, snapshot: Some((seq, path)), refused });
                }
                Err(e) => refused.push((path, e.to_string())),
            }
        }
    }
    Ok(Start { state: StateMachine::with_ledger(ledger.clone()), point: Point::START, snapshot: None, refused })
}

/// Rebuilds the state from the newest valid snapshot at or before `until_seq` (the end if
/// `None`) and the journal records after it, stopping at `until_seq`. Read-only: a torn
/// tail is reported, not repaired (see [`JournalWriter::open`] for that).
///
/// # Errors
/// [`JournalError`]: the journal's rules (see [`Journal::read`]), and a snapshot that is not
/// a state of this journal. A damaged or foreign snapshot is not an error: an older one, or
/// the journal from the start, is used and the report says why.
pub fn replay(
    dir: &Path,
    until_seq: Option<u64>,
    ledger: &Ledger,
) -> Result<(StateMachine, RecoveryReport), JournalError> {
    let journal = Journal::open(dir)?;
    replay_journal(&journal, until_seq, ledger).map(|(state, report, _)| (state, report))
}

/// [`replay`] of an open journal, also returning what its read found (without `until_seq`,
/// a read to the end: the end and the torn tail a writer needs).
fn replay_journal(
    journal: &Journal,
    until_seq: Option<u64>,
    ledger: &Ledger,
) -> Result<(StateMachine, RecoveryReport, ScanReport), JournalError> {
    let limit = until_seq.unwrap_or(u64::MAX);
    let Start { mut state, point, snapshot, refused } = start(journal, limit, ledger)?;
    let mut report = RecoveryReport {
        snapshot,
        refused_snapshots: refused,
        last_seq: point.seq,
        last: point,
        ..RecoveryReport::default()
    };
    let mut events = Vec::new();
    let scanned = read_after(journal, point, report.snapshot.clone().as_ref(), |cmd, at| {
        if cmd.seq.0 > limit {
            return ControlFlow::Break(());
        }
        events.clear();
        state.apply(&cmd, &mut events);
        report.replayed += 1;
        report.last_seq = cmd.seq.0;
        report.last = at;
        // At the point asked for the read stops: it claims nothing about what follows.
        if cmd.seq.0 == limit { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    })?;
    report.torn = scanned.torn.clone();
    report.l1 = state.l1();
    Ok((state, report, scanned))
}

/// Recovery for a writer: takes the journal's lock, proves the whole journal from its first
/// record (every rule of [`Journal::read`], whatever snapshot the state starts from: what
/// the node reads later — the gateway's report streams, settlement — reads it all), replays
/// from the newest valid snapshot as [`replay`] does, then opens the journal for appending
/// (zeroing a torn tail). A new journal is created in a directory that holds none.
///
/// # Errors
/// [`JournalError`]; on an error nothing was written.
pub fn recover(
    dir: &Path,
    segment_bytes: u64,
    ledger: &Ledger,
) -> Result<(StateMachine, JournalWriter, RecoveryReport), JournalError> {
    let lock = lock(dir)?;
    let journal = match Journal::open(dir) {
        Err(JournalError::NoJournal { .. }) => {
            let (writer, _) = JournalWriter::create(dir, lock, segment_bytes)?;
            return Ok((StateMachine::with_ledger(ledger.clone()), writer, RecoveryReport::default()));
        }
        other => other?,
    };
    let proof = journal.read(Point::START, |_| ControlFlow::Continue(()))?;
    let (state, report, _) = replay_journal(&journal, None, ledger)?;
    let (writer, _) = JournalWriter::at_end(&journal, lock, segment_bytes, proof)?;
    Ok((state, writer, report))
}
