//! Counters and ring occupancy, readable from any thread.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::ring::RingStats;
use super::shared::Shared;

/// Counters and ring occupancy, read at one moment (each value on its own; they are not a
/// consistent cut).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Commands sequenced since start.
    pub sequenced: u64,
    /// Time the sequencer spent sequencing (not waiting for input), ns: with `sequenced`, its
    /// service time per command, including any wait for space in a full output ring.
    pub sequencer_busy_ns: u64,
    /// The last sequence number in the journal's mapping.
    pub appended_seq: u64,
    /// The last sequence number covered by an `fsync` (the durable watermark).
    pub durable_seq: u64,
    /// `fsync`s done by the group-commit thread.
    pub fsyncs: u64,
    /// Time spent in those `fsync`s, ns.
    pub fsync_total_ns: u64,
    /// The longest of them, ns.
    pub fsync_max_ns: u64,
    /// The input ring (`full_waits`: producers that waited in `submit_wait`).
    pub input: RingStats,
    /// The execution-report ring (`full_waits`: times the sequencer waited for space).
    pub reports: RingStats,
    /// The market-data ring (`full_waits`: times the sequencer waited for space).
    pub market_data: RingStats,
    /// Snapshots the sequencer took and handed over.
    pub snapshots_taken: u64,
    /// Snapshots skipped because the previous one was still being written.
    pub snapshots_skipped: u64,
    /// Snapshots written to disk.
    pub snapshots_written: u64,
    /// The sequencer's longest pause for a snapshot (`canonical()` and the hand-over), ns.
    pub snapshot_max_pause_ns: u64,
    /// The sequencer's total pause for snapshots, ns.
    pub snapshot_total_pause_ns: u64,
}

/// Reads a pipeline's [`Stats`] from any thread; outlives the pipeline harmlessly (the
/// figures then stay at their last values).
#[derive(Clone)]
pub struct StatsReader {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for StatsReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsReader").finish_non_exhaustive()
    }
}

impl StatsReader {
    /// Counters and ring occupancy now.
    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        let c = &s.counters;
        Stats {
            sequenced: c.sequenced.load(Ordering::Relaxed),
            sequencer_busy_ns: c.busy_ns.load(Ordering::Relaxed),
            appended_seq: s.appended.load(Ordering::Relaxed),
            durable_seq: s.durable.load(Ordering::Relaxed),
            fsyncs: s.fsyncs.load(Ordering::Relaxed),
            fsync_total_ns: s.fsync_total_ns.load(Ordering::Relaxed),
            fsync_max_ns: s.fsync_max_ns.load(Ordering::Relaxed),
            input: s.input.occupancy(),
            reports: s.reports.occupancy(),
            market_data: s.market.occupancy(),
            snapshots_taken: c.snapshots_taken.load(Ordering::Relaxed),
            snapshots_skipped: c.snapshots_skipped.load(Ordering::Relaxed),
            snapshots_written: s.snapshots_written.load(Ordering::Relaxed),
            snapshot_max_pause_ns: c.snapshot_max_pause_ns.load(Ordering::Relaxed),
            snapshot_total_pause_ns: c.snapshot_total_pause_ns.load(Ordering::Relaxed),
        }
    }
}
