//! The sequencer pipeline: one thread owns the state machine and the journal; commands come in
//! on a bounded ring from any number of producers, are numbered, timed, journaled and applied,
//! and their events leave on bounded rings once the journal holds them as durably as
//! configured.
//!
//! # The shape
//!
//! ```text
//!  producers ──submit(tag, cmd)──▶ input ring ──▶ SEQUENCER THREAD (owns StateMachine + JournalWriter)
//!  (any number,  InputHandle)    (ArrayQueue,      takes a run of up to 64 inputs; for each:
//!                                 bounded)           1. seq = last + 1, ts = max(last ts, clock)
//!                                                    2. JournalWriter::append ──▶ segment mapping
//!                                                    3. appended watermark = seq ──────────────┐
//!                                                    4. StateMachine::apply ──▶ the run's events│
//!                                                    5. every N commands: canonical() ──┐      │
//!                                                  then pushes the run onto each output │      │
//!                                                  ring, waiting while one is full      │      │
//!                                                     │                 │               │      │
//!                                                     ▼                 ▼               ▼      ▼
//!                                        reports ring          market-data ring   snapshot   GROUP-COMMIT THREAD
//!                                        (every command's      (Book and Trade    ring (1)   (durability = fsync)
//!                                         batch)                events)             │       loop: fsync segments,
//!                                                     │                 │            ▼       durable watermark = the
//!                                                     ▼                 ▼        SNAPSHOT    appended seq it covered
//!                                        Receiver::recv      Receiver::recv     THREAD            │
//!                                        └─ hands out one batch at a time, each   fsync journal,   │
//!                                           once durable watermark ≥ its seq ◀── snapshot::write  │
//!                                           (fsync only) ◀─────────────────────────────────────────┘
//! ```
//!
//! # Threads
//!
//! - **Sequencer** — the one writer (docs: "One writer"). It is the only place in l2x that
//!   reads the clock for state: `ts = max(last ts, SystemTime::now())` in nanoseconds since the
//!   Unix epoch, read once per run of inputs, so sequenced time never goes backwards even when
//!   the wall clock does (the commands of one run share a timestamp). It appends the record
//!   *before* applying the command, so every released event belongs to a journaled command.
//!   It never `fsync`s on the hot path (only once, at a clean exit, in `durability = os`).
//! - **Group commit** (only with [`Durability::Fsync`]) — repeatedly `fsync`s the segments
//!   ([`crate::journal::JournalSyncer`]) and publishes the *durable watermark*: the appended
//!   sequence number it read before the `fsync`. One `fsync` covers every command appended
//!   before it, however many: that is the group commit.
//! - **Snapshot** — receives `(seq, CanonicalState)` and writes it
//!   ([`crate::journal::snapshot::write`]) after `fsync`ing the journal itself, so a snapshot
//!   never names a command that a machine failure could take out of the journal (a stale
//!   snapshot would otherwise describe a different command with the same number after the
//!   restart).
//!
//! Each of these threads can be pinned to a core ([`Cores`]).
//!
//! # Runs: what travels on the output rings
//!
//! The sequencer takes whatever the input ring holds, up to 64 inputs, and handles them as a
//! *run*: one clock reading, the events of all of them written back to back into one buffer
//! (with a small index entry per command), one push per output ring and one round of
//! wake-ups at the end. The receivers hand the batches out one command at a time. When
//! commands arrive slowly each run is one command long and nothing waits for anything; under
//! load the per-command cost of the rings (slot cache misses, compare-and-swaps, fences)
//! is paid once per run. A command's batch leaves at the end of its run, at most 64
//! commands of sequencer work (about 40 µs) after it was applied.
//!
//! # Where durability holds batches
//!
//! In the consumer-facing [`Receiver`]. The sequencer publishes every run as soon as its
//! records are in the mapping; with [`Durability::Os`] that is the release. With
//! [`Durability::Fsync`] a receiver takes the next run off its ring and hands out each
//! command's batch only once the durable watermark has reached its sequence number; the runs
//! behind it stay in the ring, in order. No extra thread and no extra hop: the holding costs
//! one atomic load per batch, and the group-commit thread wakes the receivers when the
//! watermark moves. Both outputs are held: market data that showed a trade which a crash
//! then erased would be as wrong as an execution report of it. While batches are held the
//! rings fill up and the sequencer waits (below): a slow disk slows the sequencer down, it
//! never makes it lose a batch or release one early.
//!
//! # Backpressure
//!
//! Every ring is bounded. A producer that finds the input ring full gets
//! [`SubmitError::Full`] from [`InputHandle::submit`], or waits in
//! [`InputHandle::submit_wait`]. When an output ring is full the sequencer waits (with the
//! configured [`WaitStrategy`]) until its consumer makes room: nothing is ever dropped, so a
//! stuck consumer stalls the whole pipeline — which is the point of an exchange that never
//! loses an acknowledged event. [`Pipeline::stats`] shows each ring's occupancy (output
//! rings count runs) and how often it was full. The one exception: a [`Receiver`] that was
//! dropped means nobody wants that output, and its runs are then discarded rather than
//! waited for.
//!
//! # Waiting
//!
//! [`WaitStrategy::Park`] is the default: spin, then yield for [`PARK_AFTER`] (50 µs), then
//! sleep until notified. With the producers, the sequencer, the group-commit thread and the
//! consumers there are more pipeline threads than the two cores of the development machine:
//! a thread that spins or yields whenever it is idle keeps a core busy that a working thread
//! (or another program) needs, and an idle exchange would burn both cores. Under load nobody
//! sleeps and a notifier pays one fence and one load; the spin-and-yield phase keeps the
//! 10–20 µs futex wake-up of a virtual machine off commands that arrive less than 50 µs
//! apart. [`WaitStrategy::SpinThenYield`] never sleeps (lower latency at low rates, a core
//! busy per idle thread); [`WaitStrategy::BusySpin`] is for machines with a core per thread,
//! pinned.
//!
//! A consumer with more than the pipeline to wait for (the gateway's event loop also waits
//! on sockets) sets a waker on its receiver ([`Receiver::set_waker`]) and arms it
//! ([`Receiver::arm`]) before it sleeps in its own poll: the pipeline calls the waker when a
//! batch may be ready, and only then (one load when the consumer is awake).
//!
//! # Allocation
//!
//! Run buffers (an index vector and an event vector) come from a small pool, a lock-free
//! queue of 64: the sequencer takes one per output per run and the receiver puts it back,
//! cleared, when it moves on to the next run. Few buffers in rotation stay in cache. In the
//! steady state no command allocates (a rare `ListInstrument` boxes its specification);
//! when consumers lag and the pool runs dry the sequencer allocates, and surplus buffers are
//! freed on return. The receivers hand out borrowed slices ([`Received`]): nothing is
//! copied out.
//!
//! # Snapshots
//!
//! Every [`Config::snapshot_every`] commands the sequencer takes [`StateMachine::canonical`]
//! — one walk of the state that copies every instrument, resting order, account and position
//! into plain vectors: O(orders + accounts + positions), allocation included — and hands it
//! to the snapshot thread, which encodes, hashes, writes and `fsync`s it. The sequencer's
//! pause is the walk only; each one is measured ([`Summary::snapshot_pauses_ns`],
//! [`Stats::snapshot_max_pause_ns`]): on the development machine 0.18 ms on average with
//! 10³ accounts and resting orders, 15 ms with 10⁵ accounts and 10⁴ orders
//! (`docs/BENCHMARKS.md`; a replica on the snapshot thread would remove it, see there). If the snapshot
//! thread is still writing the previous snapshot, the new one is skipped and counted
//! ([`Stats::snapshots_skipped`]) rather than queued: the journal, not the snapshot, is the
//! record.
//!
//! # Shutdown
//!
//! [`Pipeline::shutdown`] (or dropping every [`InputHandle`] that was handed out) closes the
//! input. Submissions after that fail with [`SubmitError::Closed`]; every command already
//! accepted is still sequenced. The sequencer drains the input, publishes everything and
//! exits; the journal is synced (the group-commit thread's last `fsync`, or the sequencer's
//! with `durability = os`) and the watermark reaches the last command, so the receivers see
//! every batch and then the end of the stream. `shutdown` joins the threads and returns the
//! final state and its hash. Consumers must keep draining (or drop their receivers) while
//! the pipeline shuts down.
//!
//! # Errors
//!
//! A journal error on the sequencer (a segment cannot be created) or the group-commit thread
//! (an `fsync` fails) halts the pipeline: the failing command is not applied, no batch that is
//! not durable is released, the input closes, receivers see the end of the stream, and
//! [`Pipeline::shutdown`] returns the error.
//!
//! # Known limitations
//!
//! - The input ring is a multi-producer queue: one compare-and-swap per command on each
//!   side. A gateway with one thread per core could give each its own single-producer ring.
//! - New journal pages are faulted in by the sequencer's first write to them (one fault per
//!   4 KiB, about 56 commands; segments are sparse files, so the fault allocates a block).
//!   Segments written full of zeros ahead of the writer measured 12 % faster with
//!   `durability = os` (`docs/BENCHMARKS.md`). With `durability = fsync` every `fsync`
//!   write-protects the pages it cleaned and the sequencer's next write to them faults again.

#![allow(
    clippy::disallowed_methods,
    reason = "the sequencer is the one place that reads the clock (the sequenced timestamp) and \
              measures its own snapshot pauses; the state machine it drives never does"
)]

mod ring;

use std::fmt;
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam::queue::ArrayQueue;
use crossbeam::utils::CachePadded;
use l2x_risk::Ledger;
use l2x_types::{Command, Event, Seq, Sequenced, Timestamp};

pub use self::ring::{PARK_AFTER, RingStats, WaitStrategy};
use self::ring::{Ring, Signal};
use crate::journal::{
    self, DEFAULT_SEGMENT_BYTES, JournalError, JournalId, JournalSyncer, JournalWriter, Point, RecoveryReport,
};
use l2x_engine::StateMachine;
use l2x_engine::{CanonicalState, StateHash};

/// When a batch may leave the pipeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Once its command's record is in the journal's mapping (the OS page cache): survives
    /// the process being killed, not the machine failing.
    #[default]
    Os,
    /// Once an `fsync` that covers its command has returned (group commit, off the sequencer
    /// thread): survives the machine failing.
    Fsync,
}

/// Cores to pin the pipeline's threads to (core_affinity ids, as `nproc` counts them).
/// `None` leaves a thread to the scheduler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cores {
    /// The sequencer thread.
    pub sequencer: Option<usize>,
    /// The group-commit thread (`durability = fsync` only).
    pub group_commit: Option<usize>,
    /// The snapshot thread.
    pub snapshot: Option<usize>,
}

/// How a pipeline runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// When batches are released.
    pub durability: Durability,
    /// How threads wait.
    pub wait: WaitStrategy,
    /// Slots of the input ring.
    pub input_capacity: usize,
    /// Slots of the execution-report ring, each a run of up to 64 commands' batches.
    pub reports_capacity: usize,
    /// Slots of the market-data ring, each a run (commands with book or trade events).
    pub market_data_capacity: usize,
    /// Take a snapshot every this many commands; 0 for never.
    pub snapshot_every: u64,
    /// Size of new journal segments, bytes.
    pub segment_bytes: u64,
    /// Risk configuration of the state machine (recovery replays with it).
    pub ledger: Ledger,
    /// Thread pinning.
    pub cores: Cores,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            durability: Durability::Os,
            wait: WaitStrategy::Park,
            input_capacity: 4096,
            reports_capacity: 1024,
            market_data_capacity: 1024,
            snapshot_every: 0,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            ledger: Ledger::default(),
            cores: Cores::default(),
        }
    }
}

/// Who submitted a command, so that its output can be routed back: a session and the
/// session's own correlation number. The pipeline only copies it into the command's batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tag {
    /// The submitting session (gateway connection, admin tool, …).
    pub session: u64,
    /// The session's number for this command.
    pub correlation: u64,
}

/// What one command did, owned: its sequence number and time, the caller's tag, and its
/// events (all of them on the reports output; only `Book` and `Trade` events on the
/// market-data output). [`Received::to_batch`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The command's sequence number.
    pub seq: Seq,
    /// Its sequenced time.
    pub ts: Timestamp,
    /// The submitter's tag.
    pub tag: Tag,
    /// Its events, in the order the state machine wrote them.
    pub events: Vec<Event>,
}

/// Why a submission was refused. Both give the command back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The input ring is full (backpressure): try again later, or use
    /// [`InputHandle::submit_wait`].
    #[error("the input ring is full")]
    Full(Command),
    /// The pipeline is shutting down or halted: nothing more is accepted.
    #[error("the pipeline's input is closed")]
    Closed(Command),
}

impl SubmitError {
    /// The command that was not submitted.
    pub fn into_command(self) -> Command {
        match self {
            SubmitError::Full(c) | SubmitError::Closed(c) => c,
        }
    }
}

/// Why the pipeline failed to start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Recovery, appending or syncing failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A ring capacity of zero.
    #[error("{0} capacity must be positive")]
    Capacity(&'static str),
    /// A core to pin to that does not exist, or pinning failed.
    #[error("cannot pin the {thread} thread to core {core}")]
    Pin {
        /// Which thread.
        thread: &'static str,
        /// The core asked for.
        core: usize,
    },
    /// A pipeline thread could not be started.
    #[error("cannot start the {0} thread: {1}")]
    Spawn(&'static str, std::io::Error),
    /// A pipeline thread panicked (a bug).
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}

/// An input: a command and who sent it.
struct Input {
    tag: Tag,
    cmd: Command,
}

/// Counters the sequencer alone writes (plain stores), on their own cache line.
#[derive(Default)]
struct SequencerCounters {
    sequenced: AtomicU64,
    busy_ns: AtomicU64,
    snapshots_taken: AtomicU64,
    snapshots_skipped: AtomicU64,
    snapshot_max_pause_ns: AtomicU64,
    snapshot_total_pause_ns: AtomicU64,
}

/// What every thread shares.
struct Shared {
    durability: Durability,
    input: Ring<Input>,
    /// Submissions between their `closed` check and their push (see [`InputHandle::submit`]).
    in_flight: CachePadded<AtomicUsize>,
    /// Input handles alive; the last one dropped closes the input.
    handles: AtomicUsize,
    reports: Ring<Run>,
    market: Ring<Run>,
    pool: ArrayQueue<Run>,
    /// The last sequence number in the journal's mapping.
    appended: CachePadded<AtomicU64>,
    /// The last sequence number covered by an `fsync`.
    durable: CachePadded<AtomicU64>,
    /// The group-commit thread waits here for appends.
    commit: Signal,
    /// The sequencer has exited (normally or not); `appended` is final.
    sequencer_done: AtomicBool,
    /// A thread failed: stop, release nothing more that is not durable.
    halted: AtomicBool,
    counters: CachePadded<SequencerCounters>,
    fsyncs: AtomicU64,
    fsync_total_ns: AtomicU64,
    fsync_max_ns: AtomicU64,
    snapshots_written: AtomicU64,
}

impl Shared {
    fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
        self.close_input();
        for ring in [&self.reports, &self.market] {
            ring.not_empty.notify();
            ring.not_full.notify();
        }
        self.commit.notify();
    }

    fn close_input(&self) {
        self.input.closed.store(true, Ordering::SeqCst);
        self.input.not_empty.notify();
        self.input.not_full.notify();
    }

    /// May the batch of this sequence number leave?
    #[inline]
    fn released(&self, seq: u64) -> bool {
        self.durability == Durability::Os || self.durable.load(Ordering::Acquire) >= seq
    }

    fn ring(&self, output: Output) -> &Ring<Run> {
        match output {
            Output::Reports => &self.reports,
            Output::MarketData => &self.market,
        }
    }

    /// A run buffer from the pool, or a new one.
    fn fresh_run(&self) -> Run {
        self.pool.pop().unwrap_or_else(|| Run {
            entries: Vec::with_capacity(DRAIN_BATCH),
            events: Vec::with_capacity(DRAIN_BATCH * EVENTS_PER_COMMAND),
        })
    }

    fn recycle(&self, mut run: Run) {
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
struct Entry {
    seq: Seq,
    ts: Timestamp,
    tag: Tag,
    start: usize,
    end: usize,
}

/// What the sequencer pushes onto an output ring at once: the batches of the commands it
/// took in one run (at most [`DRAIN_BATCH`]), their events back to back.
#[derive(Debug, Default)]
struct Run {
    entries: Vec<Entry>,
    events: Vec<Event>,
}

/// The pipeline's two outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Reports = 0,
    MarketData = 1,
}

/// A running pipeline. See the module documentation.
pub struct Pipeline {
    shared: Arc<Shared>,
    dir: PathBuf,
    reports: Option<Receiver>,
    market: Option<Receiver>,
    sequencer: Option<JoinHandle<SequencerExit>>,
    group_commit: Option<JoinHandle<Result<(), JournalError>>>,
    snapshot: Option<JoinHandle<SnapshotLog>>,
    snapshot_ring: Arc<Ring<(Point, CanonicalState)>>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline").field("dir", &self.dir).field("stats", &self.stats()).finish_non_exhaustive()
    }
}

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

/// What a pipeline did, returned by [`Pipeline::shutdown`].
#[derive(Debug)]
pub struct Summary {
    /// The last sequence number (in the journal, synced).
    pub last_seq: u64,
    /// The state after it.
    pub state: StateMachine,
    /// Its hash.
    pub state_hash: StateHash,
    /// Commands sequenced by this run.
    pub sequenced: u64,
    /// `fsync`s of the group-commit thread.
    pub fsyncs: u64,
    /// Snapshots written: (sequence number, file), in order.
    pub snapshots: Vec<(u64, PathBuf)>,
    /// Snapshots that failed to be written: (sequence number, error).
    pub snapshot_errors: Vec<(u64, String)>,
    /// Snapshots skipped because the snapshot thread was busy.
    pub snapshots_skipped: u64,
    /// The sequencer's pause for each snapshot taken, nanoseconds.
    pub snapshot_pauses_ns: Vec<u64>,
    /// The journal's identity.
    pub journal: JournalId,
    /// The journal's end: the point after its last record, recorded in its end marker
    /// (what a snapshot of `state` is bound to).
    pub end: Point,
}

impl Pipeline {
    /// Recovers the state from the journal in `dir` (the newest valid snapshot plus the
    /// journal after it; a torn tail is truncated and reported), then starts the threads.
    /// Sequence numbers continue after the last recovered command.
    ///
    /// # Errors
    /// [`PipelineError::Journal`] if recovery fails (corruption, I/O, the journal is locked by
    /// another writer); [`PipelineError::Capacity`], [`PipelineError::Pin`] and
    /// [`PipelineError::Spawn`] for bad settings or a thread that cannot start.
    pub fn start(config: Config, dir: &Path) -> Result<(Pipeline, RecoveryReport), PipelineError> {
        for (name, cap) in [
            ("input_capacity", config.input_capacity),
            ("reports_capacity", config.reports_capacity),
            ("market_data_capacity", config.market_data_capacity),
        ] {
            if cap == 0 {
                return Err(PipelineError::Capacity(name));
            }
        }
        let (state, writer, report) = journal::recover(dir, config.segment_bytes, &config.ledger)?;
        let last_seq = writer.last_seq();
        let journal_id = writer.journal_id();
        // Everything recovered is made durable before anything new is released, and each
        // syncer starts from the segment current now (it then covers every later one).
        let mut commit_syncer = writer.syncer();
        commit_syncer.sync()?;
        let mut snapshot_syncer = writer.syncer();
        snapshot_syncer.sync()?;
        let wait = config.wait;
        // Small on purpose: the vectors in rotation stay in cache. When consumers lag and
        // the pool runs dry the sequencer allocates; surplus vectors are freed on return.
        let pool_size = POOL_SIZE;
        let shared = Arc::new(Shared {
            durability: config.durability,
            input: Ring::new(config.input_capacity, wait),
            in_flight: CachePadded::new(AtomicUsize::new(0)),
            handles: AtomicUsize::new(0),
            reports: Ring::new(config.reports_capacity, wait),
            market: Ring::new(config.market_data_capacity, wait),
            pool: ArrayQueue::new(pool_size),
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
        });
        // Warm the pool so that the steady state never allocates.
        for _ in 0..pool_size {
            let run = Run {
                entries: Vec::with_capacity(DRAIN_BATCH),
                events: Vec::with_capacity(DRAIN_BATCH * EVENTS_PER_COMMAND),
            };
            let _ = shared.pool.push(run);
        }
        // The snapshot thread is not latency-critical: it always parks when idle.
        let snapshot_ring = Arc::new(Ring::new(1, WaitStrategy::Park));
        let mut pipeline = Pipeline {
            shared: Arc::clone(&shared),
            dir: dir.to_path_buf(),
            reports: Some(Receiver { shared: Arc::clone(&shared), output: Output::Reports, run: None, next: 0 }),
            market: Some(Receiver { shared: Arc::clone(&shared), output: Output::MarketData, run: None, next: 0 }),
            sequencer: None,
            group_commit: None,
            snapshot: None,
            snapshot_ring: Arc::clone(&snapshot_ring),
        };
        let (pinned_tx, pinned_rx) = mpsc::channel();
        let snapshot_dir = dir.to_path_buf();
        let ring = Arc::clone(&snapshot_ring);
        let core = config.cores.snapshot;
        let tx = pinned_tx.clone();
        let for_snapshots = Arc::clone(&shared);
        pipeline.snapshot = Some(spawn("snapshot", core, tx, move || {
            snapshot_thread(&for_snapshots, &ring, snapshot_syncer, &snapshot_dir, journal_id)
        })?);
        let final_syncer = if config.durability == Durability::Fsync {
            let shared = Arc::clone(&shared);
            let tx = pinned_tx.clone();
            pipeline.group_commit = Some(spawn("group-commit", config.cores.group_commit, tx, move || {
                group_commit(&shared, commit_syncer)
            })?);
            None
        } else {
            Some(commit_syncer)
        };
        let sequencer = Sequencer {
            last_ts: state.now().0,
            state,
            writer,
            final_syncer,
            shared: Arc::clone(&shared),
            snapshot_ring,
            snapshot_every: config.snapshot_every,
            since_snapshot: 0,
            last_seq,
            pauses: Vec::new(),
            runs: [shared.fresh_run(), shared.fresh_run()],
        };
        pipeline.sequencer = Some(spawn("sequencer", config.cores.sequencer, pinned_tx, move || sequencer.run())?);
        let threads = 2 + usize::from(pipeline.group_commit.is_some());
        for _ in 0..threads {
            if let Ok(Err(e)) = pinned_rx.recv() {
                // Stop what was started; the error is the pinning.
                drop(pipeline);
                return Err(e);
            }
        }
        Ok((pipeline, report))
    }

    /// A new handle to submit commands with (cloneable, `Send`). The input closes when
    /// [`Pipeline::shutdown`] is called or when the last handle handed out is dropped.
    pub fn input(&self) -> InputHandle {
        self.shared.handles.fetch_add(1, Ordering::SeqCst);
        InputHandle { shared: Arc::clone(&self.shared) }
    }

    /// The execution-report receiver (every command's batch, in sequence order). `None` if
    /// it was taken already.
    pub fn reports(&mut self) -> Option<Receiver> {
        self.reports.take()
    }

    /// The market-data receiver (`Book` and `Trade` events, per command that has any, in
    /// sequence order). `None` if it was taken already. Drop it if nobody wants market data:
    /// an untaken receiver's ring fills up and then stalls the sequencer.
    pub fn market_data(&mut self) -> Option<Receiver> {
        self.market.take()
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The durable watermark: the last sequence number covered by an `fsync`.
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// Counters and ring occupancy now.
    pub fn stats(&self) -> Stats {
        self.stats_reader().stats()
    }

    /// A handle that reads [`Pipeline::stats`] from another thread (a metrics endpoint).
    pub fn stats_reader(&self) -> StatsReader {
        StatsReader { shared: Arc::clone(&self.shared) }
    }

    /// Closes the input, lets the sequencer drain it and publish everything, syncs the
    /// journal, joins the threads and returns the final state. Receivers still held elsewhere
    /// must be drained (or dropped) meanwhile, or this waits for them.
    ///
    /// # Errors
    /// The first error a pipeline thread met ([`PipelineError::Journal`]), or
    /// [`PipelineError::Panicked`].
    pub fn shutdown(mut self) -> Result<Summary, PipelineError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<Summary, PipelineError> {
        // Receivers nobody took would never be drained.
        self.reports = None;
        self.market = None;
        self.shared.close_input();
        let exit = self.sequencer.take().map(|h| h.join().map_err(|_| PipelineError::Panicked("sequencer")));
        let commit = self.group_commit.take().map(|h| h.join().map_err(|_| PipelineError::Panicked("group-commit")));
        self.snapshot_ring.closed.store(true, Ordering::SeqCst);
        self.snapshot_ring.not_empty.notify();
        let log = self.snapshot.take().map(|h| h.join().map_err(|_| PipelineError::Panicked("snapshot")));
        let exit = exit.ok_or(PipelineError::Panicked("sequencer"))??;
        if let Some(result) = commit {
            result??;
        }
        let log = log.transpose()?.unwrap_or_default();
        let (state, journal, end) = exit.result?;
        Ok(Summary {
            last_seq: end.seq,
            journal,
            end,
            state_hash: state.canonical().hash(),
            state,
            sequenced: self.shared.counters.sequenced.load(Ordering::Relaxed),
            fsyncs: self.shared.fsyncs.load(Ordering::Relaxed),
            snapshots: log.written,
            snapshot_errors: log.errors,
            snapshots_skipped: self.shared.counters.snapshots_skipped.load(Ordering::Relaxed),
            snapshot_pauses_ns: exit.pauses,
        })
    }
}

impl Drop for Pipeline {
    /// Shuts down if [`Pipeline::shutdown`] was not called (errors are lost then).
    fn drop(&mut self) {
        if self.sequencer.is_some() {
            let _ = self.stop();
        }
    }
}

/// Reads a pipeline's [`Stats`] from any thread; outlives the pipeline harmlessly (the
/// figures then stay at their last values).
#[derive(Clone)]
pub struct StatsReader {
    shared: Arc<Shared>,
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

/// Core ids at or past this cannot be pinned to (the size of Linux's `cpu_set_t`).
const MAX_CORE_ID: usize = 1024;

/// Spawns a pipeline thread that first pins itself (if asked) and reports the outcome.
fn spawn<T: Send + 'static>(
    name: &'static str,
    core: Option<usize>,
    pinned: mpsc::Sender<Result<(), PipelineError>>,
    body: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, PipelineError> {
    std::thread::Builder::new()
        .name(format!("l2x-{name}"))
        .spawn(move || {
            // core_affinity indexes a fixed-size CPU set (1024 on Linux) and panics past it.
            let outcome = match core {
                Some(id) if id >= MAX_CORE_ID || !core_affinity::set_for_current(core_affinity::CoreId { id }) => {
                    Err(PipelineError::Pin { thread: name, core: id })
                }
                _ => Ok(()),
            };
            let _ = pinned.send(outcome);
            body()
        })
        .map_err(|e| PipelineError::Spawn(name, e))
}

// ----- input -------------------------------------------------------------------------------

/// Submits commands to a pipeline. Cloneable and `Send`: any number of producers on any
/// threads. The last handle dropped closes the input.
pub struct InputHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for InputHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputHandle").field("input", &self.shared.input.occupancy()).finish()
    }
}

impl Clone for InputHandle {
    fn clone(&self) -> InputHandle {
        self.shared.handles.fetch_add(1, Ordering::SeqCst);
        InputHandle { shared: Arc::clone(&self.shared) }
    }
}

impl Drop for InputHandle {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.close_input();
        }
    }
}

impl InputHandle {
    /// Submits a command without waiting. `Ok` means the sequencer will sequence it (even if
    /// the pipeline is shut down right after).
    ///
    /// # Errors
    /// [`SubmitError::Full`] when the input ring is full, [`SubmitError::Closed`] after
    /// shutdown began; both give the command back.
    pub fn submit(&self, tag: Tag, cmd: Command) -> Result<(), SubmitError> {
        self.enter(Input { tag, cmd }, false)
    }

    /// Submits a command, waiting (with the pipeline's wait strategy) while the input ring is
    /// full.
    ///
    /// # Errors
    /// [`SubmitError::Closed`] if the input closed before the command got in.
    pub fn submit_wait(&self, tag: Tag, cmd: Command) -> Result<(), SubmitError> {
        self.enter(Input { tag, cmd }, true)
    }

    /// Pushes with the closing protocol: a submission registers as in flight *before* it
    /// checks `closed`, and the sequencer exits only once the input is closed, nothing is in
    /// flight and the ring is empty. So a submission that saw the input open is always
    /// sequenced (`SeqCst` on both sides orders the check against the close).
    fn enter(&self, input: Input, wait: bool) -> Result<(), SubmitError> {
        let s = &*self.shared;
        s.in_flight.fetch_add(1, Ordering::SeqCst);
        let mut item = input;
        let mut waited = false;
        let result = loop {
            if s.input.closed.load(Ordering::SeqCst) {
                break Err(SubmitError::Closed(item.cmd));
            }
            match s.input.queue.push(item) {
                Ok(()) => break Ok(()),
                Err(back) if !wait => break Err(SubmitError::Full(back.cmd)),
                Err(back) => item = back,
            }
            if !waited {
                s.input.full_waits.fetch_add(1, Ordering::Relaxed);
                waited = true;
            }
            s.input.not_full.wait_until(|| !s.input.queue.is_full() || s.input.closed.load(Ordering::SeqCst));
        };
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        if result.is_ok() {
            s.input.not_empty.notify();
        }
        result
    }
}

// ----- outputs -----------------------------------------------------------------------------

/// Receives one output's batches, in sequence order, each once it is released (see "Where
/// durability holds batches"). Single consumer; `Send`. Dropping it discards that output.
pub struct Receiver {
    shared: Arc<Shared>,
    output: Output,
    /// The run taken off the ring, and the index of its next entry.
    run: Option<Run>,
    next: usize,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("output", &self.output)
            .field("ring", &self.shared.ring(self.output).occupancy())
            .field("next", &self.run.as_ref().and_then(|r| r.entries.get(self.next)).map(|e| e.seq))
            .finish()
    }
}

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing released yet (the ring is empty, or the next batch is not durable yet).
    #[error("no batch is released yet")]
    Empty,
    /// The pipeline stopped and every batch was received.
    #[error("the output is closed")]
    Closed,
}

/// A received batch: one command's sequence number, time, tag and events, borrowed from the
/// receiver until the next call (nothing is copied or allocated to hand it out).
#[derive(Clone, Copy)]
pub struct Received<'a> {
    /// The command's sequence number.
    pub seq: Seq,
    /// Its sequenced time.
    pub ts: Timestamp,
    /// The submitter's tag.
    pub tag: Tag,
    /// Its events (on the market-data output: its `Book` and `Trade` events).
    pub events: &'a [Event],
    shared: &'a Shared,
}

impl Received<'_> {
    /// The durable watermark now (≥ this batch's sequence number with
    /// [`Durability::Fsync`]).
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// An owned copy.
    pub fn to_batch(&self) -> Batch {
        Batch { seq: self.seq, ts: self.ts, tag: self.tag, events: self.events.to_vec() }
    }
}

impl fmt::Debug for Received<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Received")
            .field("seq", &self.seq)
            .field("ts", &self.ts)
            .field("tag", &self.tag)
            .field("events", &self.events)
            .finish()
    }
}

impl Receiver {
    /// Makes the next entry current (taking the next run off the ring when the held one is
    /// used up); returns whether it is released.
    fn poll(&mut self) -> bool {
        loop {
            if let Some(run) = &self.run {
                if let Some(entry) = run.entries.get(self.next) {
                    return self.shared.released(entry.seq.0);
                }
                if let Some(done) = self.run.take() {
                    self.shared.recycle(done);
                }
            }
            let ring = self.shared.ring(self.output);
            let Some(run) = ring.queue.pop() else { return false };
            ring.not_full.notify();
            self.run = Some(run);
            self.next = 0;
        }
    }

    /// The next entry's sequence number, if one is held.
    fn held(&self) -> Option<u64> {
        self.run.as_ref().and_then(|r| r.entries.get(self.next)).map(|e| e.seq.0)
    }

    /// End of stream: the ring is closed and drained, and nothing held can be released any
    /// more (normally: nothing is held; after a halt: what is held is not durable).
    fn at_end(&mut self) -> bool {
        let ring = self.shared.ring(self.output);
        if !ring.closed.load(Ordering::Acquire) {
            return false;
        }
        // Closed is set after the last push: one more look for a run pushed before it.
        if self.poll() {
            return false;
        }
        self.held().is_none() || self.shared.halted.load(Ordering::SeqCst)
    }

    /// Hands out the current entry (after [`Receiver::poll`] said it is released).
    fn take(&mut self) -> Option<Received<'_>> {
        let run = self.run.as_ref()?;
        let entry = *run.entries.get(self.next)?;
        self.next += 1;
        Some(Received {
            seq: entry.seq,
            ts: entry.ts,
            tag: entry.tag,
            events: &run.events[entry.start..entry.end],
            shared: &self.shared,
        })
    }

    /// The next released batch, without waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if none is released yet, [`TryRecvError::Closed`] at the end
    /// of the stream.
    pub fn try_recv(&mut self) -> Result<Received<'_>, TryRecvError> {
        if self.poll() {
            return self.take().ok_or(TryRecvError::Empty);
        }
        if self.at_end() { Err(TryRecvError::Closed) } else { Err(TryRecvError::Empty) }
    }

    /// The next released batch, waiting for it with the pipeline's wait strategy; `None` at
    /// the end of the stream (after shutdown, once every batch was received).
    pub fn recv(&mut self) -> Option<Received<'_>> {
        loop {
            if self.poll() {
                return self.take();
            }
            if self.at_end() {
                return None;
            }
            let shared = &*self.shared;
            let ring = shared.ring(self.output);
            let held = self.held();
            // Holding a batch, only the watermark (or a halt) can change anything: the
            // group-commit thread wakes us after every fsync, the last one included.
            ring.not_empty.wait_until(|| {
                shared.halted.load(Ordering::Relaxed)
                    || match held {
                        Some(seq) => shared.released(seq),
                        None => !ring.queue.is_empty() || ring.closed.load(Ordering::Acquire),
                    }
            });
        }
    }

    /// The durable watermark now (see [`Pipeline::durable_seq`]).
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// For a consumer that sleeps somewhere else (an event loop waiting on sockets): `wake`
    /// is called, from a pipeline thread, when this output may have a batch for it, after
    /// [`Receiver::arm`] returned `true`. It should be quick (a `mio::Waker::wake`); it is
    /// called at most once per `arm`. Returns `false` if a waker was set already.
    pub fn set_waker(&self, wake: impl Fn() + Send + Sync + 'static) -> bool {
        self.shared.ring(self.output).not_empty.set_waker(Arc::new(wake))
    }

    /// Before sleeping elsewhere: `false` if a batch is ready (or the stream ended) now, so
    /// do not sleep; `true` if nothing is, and the waker will be called when that changes.
    /// No wake-up is lost between this check and the sleep.
    pub fn arm(&mut self) -> bool {
        let shared = Arc::clone(&self.shared);
        shared.ring(self.output).not_empty.arm(|| self.poll() || self.at_end())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let ring = self.shared.ring(self.output);
        ring.gone.store(true, Ordering::SeqCst);
        ring.not_full.notify();
        if let Some(run) = self.run.take() {
            self.shared.recycle(run);
        }
        while let Some(run) = ring.queue.pop() {
            self.shared.recycle(run);
        }
    }
}

// ----- the sequencer -----------------------------------------------------------------------

struct Sequencer {
    state: StateMachine,
    writer: JournalWriter,
    /// With `durability = os`: the syncer for the one `fsync` at a clean exit.
    final_syncer: Option<JournalSyncer>,
    shared: Arc<Shared>,
    snapshot_ring: Arc<Ring<(Point, CanonicalState)>>,
    snapshot_every: u64,
    since_snapshot: u64,
    last_seq: u64,
    last_ts: u64,
    pauses: Vec<u64>,
    /// The runs being filled for each output: `[reports, market data]`.
    runs: [Run; 2],
}

/// Run buffers kept for reuse (see the module documentation, "Allocation"). Few on purpose:
/// the buffers in rotation stay in cache.
const POOL_SIZE: usize = 64;
/// Events per command a new run buffer has room for.
const EVENTS_PER_COMMAND: usize = 8;
/// A run buffer whose event vector grew past this is freed, not kept.
const MAX_KEPT_EVENTS: usize = 1 << 16;

/// Inputs the sequencer takes in one run: they share one clock reading, one push per output
/// and one round of notifications.
const DRAIN_BATCH: usize = 64;

/// What the sequencer thread returns.
struct SequencerExit {
    result: Result<(StateMachine, JournalId, Point), PipelineError>,
    pauses: Vec<u64>,
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().saturating_mul(1_000_000_000).saturating_add(u64::from(d.subsec_nanos())))
}

/// Events that go to the market-data output.
fn is_public(event: &Event) -> bool {
    matches!(event, Event::Book { .. } | Event::Trade(_))
}

impl Sequencer {
    fn run(mut self) -> SequencerExit {
        let result = self.drain();
        let s = Arc::clone(&self.shared);
        let journal = self.writer.journal_id();
        let writer = self.writer;
        let result = result.and_then(|()| {
            if let Some(syncer) = &mut self.final_syncer {
                syncer.sync()?;
                s.durable.store(self.last_seq, Ordering::Release);
            }
            // A clean stop: the journal's end goes into its end marker.
            writer.close()
        });
        if result.is_err() {
            s.halt();
        }
        s.close_input();
        for ring in [&s.reports, &s.market] {
            ring.closed.store(true, Ordering::Release);
            ring.not_empty.notify();
        }
        s.sequencer_done.store(true, Ordering::SeqCst);
        s.commit.notify();
        for run in mem::take(&mut self.runs) {
            s.recycle(run);
        }
        SequencerExit {
            result: result.map(|end| (self.state, journal, end)).map_err(PipelineError::from),
            pauses: self.pauses,
        }
    }

    /// Sequences inputs until the input is closed and drained.
    fn drain(&mut self) -> Result<(), JournalError> {
        let shared = Arc::clone(&self.shared);
        let input = &shared.input;
        loop {
            let mut taken = 0;
            let now = wall_clock_ns();
            let started = Instant::now();
            let mut failed = Ok(());
            while taken < DRAIN_BATCH {
                let Some(next) = input.queue.pop() else { break };
                taken += 1;
                failed = self.process(next, now);
                if failed.is_err() {
                    break;
                }
            }
            if taken > 0 {
                input.not_full.notify();
                // What was applied is published, even when a later append failed.
                self.end_run();
                failed?;
                let busy = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let c = &shared.counters;
                c.busy_ns.store(c.busy_ns.load(Ordering::Relaxed) + busy, Ordering::Relaxed);
                continue;
            }
            if shared.halted.load(Ordering::Relaxed) {
                return Ok(());
            }
            if input.closed.load(Ordering::SeqCst) {
                if shared.in_flight.load(Ordering::SeqCst) == 0 && input.queue.is_empty() {
                    return Ok(());
                }
                std::hint::spin_loop();
                continue;
            }
            input.not_empty.wait_until(|| !input.queue.is_empty() || input.closed.load(Ordering::SeqCst));
        }
    }

    /// Pushes the run's batches onto the output rings (waiting while one is full), and wakes
    /// the consumers and the group-commit thread.
    fn end_run(&mut self) {
        let shared = &*self.shared;
        for output in [Output::Reports, Output::MarketData] {
            let slot = &mut self.runs[output as usize];
            if slot.entries.is_empty() {
                continue;
            }
            let run = mem::replace(slot, shared.fresh_run());
            publish(shared, output, run);
        }
        if shared.durability == Durability::Fsync {
            shared.commit.notify();
        }
    }

    fn process(&mut self, input: Input, now: u64) -> Result<(), JournalError> {
        let seq = self.last_seq + 1;
        let ts = self.last_ts.max(now);
        let cmd = Sequenced { seq: Seq(seq), ts: Timestamp(ts), cmd: input.cmd };
        self.writer.append(&cmd)?;
        self.last_seq = seq;
        self.last_ts = ts;
        let shared = &*self.shared;
        shared.appended.store(seq, Ordering::Release);
        let [reports, market] = &mut self.runs;
        let start = reports.events.len();
        self.state.apply(&cmd, &mut reports.events);
        let end = reports.events.len();
        reports.entries.push(Entry { seq: cmd.seq, ts: cmd.ts, tag: input.tag, start, end });
        if !shared.market.gone.load(Ordering::Relaxed) {
            let md_start = market.events.len();
            market.events.extend(reports.events[start..end].iter().filter(|e| is_public(e)).copied());
            let md_end = market.events.len();
            if md_end > md_start {
                market.entries.push(Entry { seq: cmd.seq, ts: cmd.ts, tag: input.tag, start: md_start, end: md_end });
            }
        }
        shared.counters.sequenced.store(shared.counters.sequenced.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        if self.snapshot_every > 0 {
            self.since_snapshot += 1;
            if self.since_snapshot >= self.snapshot_every {
                self.since_snapshot = 0;
                self.snapshot();
            }
        }
        Ok(())
    }

    /// Takes the canonical state and hands it to the snapshot thread (or skips it if that
    /// thread is busy), timing the pause.
    fn snapshot(&mut self) {
        let start = Instant::now();
        let state = self.state.canonical();
        let handed = self.snapshot_ring.queue.push((self.writer.last(), state));
        let pause = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let c = &self.shared.counters;
        match handed {
            Ok(()) => {
                self.snapshot_ring.not_empty.notify();
                c.snapshots_taken.store(c.snapshots_taken.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            Err(_) => {
                c.snapshots_skipped.store(c.snapshots_skipped.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
        }
        self.pauses.push(pause);
        c.snapshot_max_pause_ns.fetch_max(pause, Ordering::Relaxed);
        c.snapshot_total_pause_ns.store(c.snapshot_total_pause_ns.load(Ordering::Relaxed) + pause, Ordering::Relaxed);
    }
}

/// Pushes a run, waiting while the ring is full (backpressure), and wakes the consumer;
/// discards the run if the ring's consumer is gone or the pipeline halted.
fn publish(shared: &Shared, output: Output, run: Run) {
    let ring = shared.ring(output);
    let mut run = run;
    let mut waited = false;
    loop {
        if ring.gone.load(Ordering::Relaxed) || shared.halted.load(Ordering::Relaxed) {
            shared.recycle(run);
            return;
        }
        match ring.queue.push(run) {
            Ok(()) => {
                ring.not_empty.notify();
                return;
            }
            Err(back) => run = back,
        }
        if !waited {
            ring.full_waits.fetch_add(1, Ordering::Relaxed);
            waited = true;
        }
        ring.not_full.wait_until(|| {
            !ring.queue.is_full() || ring.gone.load(Ordering::SeqCst) || shared.halted.load(Ordering::SeqCst)
        });
    }
}

// ----- group commit and snapshots ----------------------------------------------------------

/// The group-commit loop: `fsync` whatever was appended since the last one, publish the
/// watermark, wake the receivers; until the sequencer is done and everything is durable.
fn group_commit(shared: &Shared, mut syncer: JournalSyncer) -> Result<(), JournalError> {
    let mut durable = shared.durable.load(Ordering::Acquire);
    loop {
        let target = shared.appended.load(Ordering::Acquire);
        if target > durable {
            let started = Instant::now();
            if let Err(e) = syncer.sync() {
                shared.halt();
                return Err(e);
            }
            let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            shared.fsync_total_ns.fetch_add(took, Ordering::Relaxed);
            shared.fsync_max_ns.fetch_max(took, Ordering::Relaxed);
            durable = target;
            shared.durable.store(durable, Ordering::Release);
            shared.fsyncs.fetch_add(1, Ordering::Relaxed);
            shared.reports.not_empty.notify();
            shared.market.not_empty.notify();
            continue;
        }
        if shared.sequencer_done.load(Ordering::SeqCst) {
            if shared.appended.load(Ordering::Acquire) > durable {
                continue;
            }
            return Ok(());
        }
        shared.commit.wait_until(|| {
            shared.appended.load(Ordering::Acquire) > durable || shared.sequencer_done.load(Ordering::SeqCst)
        });
    }
}

/// What the snapshot thread did.
#[derive(Default)]
struct SnapshotLog {
    written: Vec<(u64, PathBuf)>,
    errors: Vec<(u64, String)>,
}

fn snapshot_thread(
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
