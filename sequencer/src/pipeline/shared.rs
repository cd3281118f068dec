//! What the pipeline's threads share: the rings, the watermarks, the counters, and the run
//! buffers that travel on the output rings (see the module documentation of `pipeline`,
//! "Runs" and "Allocation").

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crossbeam::queue::ArrayQueue;
use crossbeam::utils::CachePadded;
use l2x_types::{Command, Event, Seq, Timestamp};

use super::ring::{Ring, Signal};
use super::{Durability, Tag};

/// Run buffers kept for reuse (see the module documentation, "Allocation"). Few on purpose:
/// the buffers in rotation stay in cache.
pub(crate) const POOL_SIZE: usize = 64;
/// Events per command a new run buffer has room for.
pub(crate) const EVENTS_PER_COMMAND: usize = 8;
/// A run buffer whose event vector grew past this is freed, not kept.
pub(crate) const MAX_KEPT_EVENTS: usize = 1 << 16;

/// Inputs the sequencer takes in one run: they share one clock reading, one push per output
/// and one round of notifications.
pub(crate) const DRAIN_BATCH: usize = 64;

/// An input: a command and who sent it.
pub(crate) struct Input {
    pub(crate) tag: Tag,
    pub(crate) cmd: Command,
}

/// Counters the sequencer alone writes (plain stores), on their own cache line.
#[derive(Default)]
pub(crate) struct SequencerCounters {
    pub(crate) sequenced: AtomicU64,
    pub(crate) busy_ns: AtomicU64,
    pub(crate) snapshots_taken: AtomicU64,
    pub(crate) snapshots_skipped: AtomicU64,
    pub(crate) snapshot_max_pause_ns: AtomicU64,
    pub(crate) snapshot_total_pause_ns: AtomicU64,
}

/// What every thread shares.
pub(crate) struct Shared {
    pub(crate) durability: Durability,
    pub(crate) input: Ring<Input>,
    /// Submissions between their `closed` check and their push (see [`InputHandle::submit`]).
    pub(crate) in_flight: CachePadded<AtomicUsize>,
    /// Input handles alive; the last one dropped closes the input.
    pub(crate) handles: AtomicUsize,
    pub(crate) reports: Ring<Run>,
    pub(crate) market: Ring<Run>,
    pub(crate) pool: ArrayQueue<Run>,
    /// The last sequence number in the journal's mapping.
    pub(crate) appended: CachePadded<AtomicU64>,
    /// The last sequence number covered by an `fsync`.
    pub(crate) durable: CachePadded<AtomicU64>,
    /// The group-commit thread waits here for appends.
    pub(crate) commit: Signal,
    /// The sequencer has exited (normally or not); `appended` is final.
    pub(crate) sequencer_done: AtomicBool,
    /// A thread failed: stop, release nothing more that is not durable.
    pub(crate) halted: AtomicBool,
    pub(crate) counters: CachePadded<SequencerCounters>,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) fsync_total_ns: AtomicU64,
    pub(crate) fsync_max_ns: AtomicU64,
    pub(crate) snapshots_written: AtomicU64,
}

impl Shared {
    /// The shared part of a pipeline configured by `config` whose journal ends at
    /// `last_seq`, with the pool of run buffers warmed so that the steady state never
    /// allocates.
    pub(crate) fn new(config: &super::Config, last_seq: u64) -> Shared {
        let wait = config.wait;
        let shared = Shared {
            durability: config.durability,
            input: Ring::new(config.input_capacity, wait),
            in_flight: CachePadded::new(AtomicUsize::new(0)),
            handles: AtomicUsize::new(0),
            reports: Ring::new(config.reports_capacity, wait),
            market: Ring::new(config.market_data_capacity, wait),
            pool: ArrayQueue::new(POOL_SIZE),
            appended: CachePadded::new(AtomicU64::new(last_seq)),
            durable: CachePadded::new(AtomicU64::new(last_seq)),
            commit: Signal::new(wait),
            sequencer_done: AtomicBool::new(false),
            halted: AtomicBool::new(false),
            counters: CachePadded::new(SequencerCounters::default()),
            fsyncs: AtomicU64::new(0),
            fsync_total_ns: AtomicU64::new(0),
            fsync_max_ns: AtomicU64::new(0),
            snapshots_written: AtomicU64::new(0),
        };
        for _ in 0..POOL_SIZE {
            let run = Run {
                entries: Vec::with_capacity(DRAIN_BATCH),
                events: Vec::with_capacity(DRAIN_BATCH * EVENTS_PER_COMMAND),
            };
            let _ = shared.pool.push(run);
        }
        shared
    }

    pub(crate) fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
        self.close_input();
        for ring in [&self.reports, &self.market] {
            ring.not_empty.notify();
            ring.not_full.notify();
        }
        self.commit.notify();
    }

    pub(crate) fn close_input(&self) {
        self.input.closed.store(true, Ordering::SeqCst);
        self.input.not_empty.notify();
        self.input.not_full.notify();
    }

    /// May the batch of this sequence number leave?
    #[inline]
    pub(crate) fn released(&self, seq: u64) -> bool {
        self.durability == Durability::Os || self.durable.load(Ordering::Acquire) >= seq
    }

    pub(crate) fn ring(&self, output: Output) -> &Ring<Run> {
        match output {
            Output::Reports => &self.reports,
            Output::MarketData => &self.market,
        }
    }

    /// A run buffer from the pool, or a new one.
    pub(crate) fn fresh_run(&self) -> Run {
        self.pool.pop().unwrap_or_else(|| Run {
            entries: Vec::with_capacity(DRAIN_BATCH),
            events: Vec::with_capacity(DRAIN_BATCH * EVENTS_PER_COMMAND),
        })
    }

    pub(crate) fn recycle(&self, mut run: Run) {
        // A buffer a liquidation cascade blew up is not kept.
        if run.events.capacity() > MAX_KEPT_EVENTS {
            return;
        }
        run.entries.clear();
        run.events.clear();
        // A full pool means the buffer is surplus: free it.
        let _ = self.pool.push(run);
    }
}

/// One command's batch inside a [`Run`]: its events are `events[start..end]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) seq: Seq,
    pub(crate) ts: Timestamp,
    pub(crate) tag: Tag,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// What the sequencer pushes onto an output ring at once: the batches of the commands it
/// took in one run (at most [`DRAIN_BATCH`]), their events back to back.
#[derive(Debug, Default)]
pub(crate) struct Run {
    pub(crate) entries: Vec<Entry>,
    pub(crate) events: Vec<Event>,
}

/// The pipeline's two outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    Reports = 0,
    MarketData = 1,
}
