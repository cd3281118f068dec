//! The snapshot thread: writes the states the sequencer hands over, after making the
//! journal up to them durable.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use l2x_engine::CanonicalState;

use super::ring::Ring;
use super::shared::Shared;
use crate::journal::{self, JournalId, JournalSyncer, Point};

/// What the snapshot thread did.
#[derive(Default)]
pub(crate) struct SnapshotLog {
    pub(crate) written: Vec<(u64, PathBuf)>,
    pub(crate) errors: Vec<(u64, String)>,
}

/// The snapshot thread's loop: until the pipeline closes its ring.
pub(crate) fn run(
    shared: &Shared,
    ring: &Ring<(Point, CanonicalState)>,
    mut syncer: JournalSyncer,
    dir: &Path,
    journal: JournalId,
) -> SnapshotLog {
    let mut log = SnapshotLog::default();
    loop {
        let job = {
            let mut job = None;
            ring.not_empty.wait_until(|| {
                job = ring.queue.pop();
                job.is_some() || ring.closed.load(Ordering::SeqCst)
            });
            job.or_else(|| ring.queue.pop())
        };
        let Some((point, state)) = job else { return log };
        let seq = point.seq;
        // The journal first: a snapshot must never be ahead of what the disk holds.
        match syncer.sync().and_then(|()| journal::snapshot::write(dir, journal, point, &state)) {
            Ok(path) => {
                log.written.push((seq, path));
                shared.snapshots_written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => log.errors.push((seq, e.to_string())),
        }
        drop(state);
    }
}
