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
//! # Modes: who runs the sequencer
//!
//! [`Mode::Threads`] (the default) is the shape above. In [`Mode::Inline`] there is no
//! sequencer thread: [`Pipeline::inline`] hands the sequencer out once, as an [`Inline`],
//! and the one thread that holds it (the gateway's event loop, on a small machine) calls
//! [`Inline::step`] between its own work: one run of the input ring, journaled, applied and
//! pushed on the output rings, which the same thread then drains. The code of a run is the
//! sequencer thread's (`Sequencer::run_once`), so both modes journal the same records for
//! the same inputs. The snapshot thread stays; the group-commit thread cannot be waited on
//! by a thread that also serves sockets, so the inline mode refuses [`Durability::Fsync`]
//! ([`PipelineError::InlineFsync`]). When the holder drops the handle the sequencer goes
//! back to the pipeline, and [`Pipeline::shutdown`] drains what is left on its caller's
//! thread.
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

mod commit;
mod inline;
mod input;
mod receiver;
mod ring;
mod sequencer;
mod shared;
mod snapshots;
mod stats;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;

use l2x_engine::{CanonicalState, StateHash, StateMachine};
use l2x_risk::Ledger;

use self::inline::Home;
pub use self::inline::Inline;
pub use self::input::{InputHandle, SubmitError};
pub use self::receiver::{CommandEvents, Received, Receiver, TryRecvError};
use self::ring::Ring;
pub use self::ring::{PARK_AFTER, RingStats, WaitStrategy};
use self::sequencer::{Sequencer, SequencerExit};
use self::shared::{Output, Shared};
use self::snapshots::SnapshotLog;
pub use self::stats::{Stats, StatsReader};
use crate::journal::{self, DEFAULT_SEGMENT_BYTES, JournalError, JournalId, JournalSyncer, Point, RecoveryReport};
use crate::pin::{self, PinError};

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

/// Who runs the sequencer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// A thread of its own, fed through the input ring (the default; any durability).
    #[default]
    Threads,
    /// No thread: whoever takes [`Pipeline::inline`] runs it between its own work
    /// ([`Inline::step`]), so a command is sequenced on the thread that read it. With
    /// [`Durability::Os`] only: [`Pipeline::start`] refuses [`Durability::Fsync`]
    /// ([`PipelineError::InlineFsync`]).
    Inline,
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
    /// Who runs the sequencer.
    pub mode: Mode,
    /// The sequenced time's source, nanoseconds since the Unix epoch, read once per run
    /// ([`crate::clock::wall_clock_ns`]; a test that compares journals fixes it).
    pub clock: fn() -> u64,
}

impl Config {
    /// Refuses settings the pipeline cannot run with.
    fn check(&self) -> Result<(), PipelineError> {
        for (name, cap) in [
            ("input_capacity", self.input_capacity),
            ("reports_capacity", self.reports_capacity),
            ("market_data_capacity", self.market_data_capacity),
        ] {
            if cap == 0 {
                return Err(PipelineError::Capacity(name));
            }
        }
        if self.mode == Mode::Inline && self.durability == Durability::Fsync {
            return Err(PipelineError::InlineFsync);
        }
        Ok(())
    }
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
            mode: Mode::Threads,
            clock: crate::clock::wall_clock_ns,
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

/// Why the pipeline failed to start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Recovery, appending or syncing failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A ring capacity of zero.
    #[error("{0} capacity must be positive")]
    Capacity(&'static str),
    /// [`Mode::Inline`] with [`Durability::Fsync`]: the one thread would wait for the disk.
    #[error("the inline mode runs with durability = os only (fsync needs the group-commit thread)")]
    InlineFsync,
    /// The [`Inline`] handle was still held at the shutdown (drop it first).
    #[error("the inline sequencer is still held: drop it before the shutdown")]
    InlineHeld,
    /// A core to pin to that does not exist, or pinning failed.
    #[error("the {thread} thread: {source}")]
    Pin {
        /// Which thread.
        thread: &'static str,
        /// Why.
        source: PinError,
    },
    /// A pipeline thread could not be started.
    #[error("cannot start the {0} thread: {1}")]
    Spawn(&'static str, std::io::Error),
    /// A pipeline thread panicked (a bug).
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
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
    /// The syncer [`Pipeline::journal_syncer`] hands out copies of.
    syncer: JournalSyncer,
    /// [`Mode::Inline`]: the handle until [`Pipeline::inline`] hands it out.
    inline: Option<Inline>,
    /// [`Mode::Inline`]: where the sequencer goes back when the handle is dropped.
    home: Option<Home>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline").field("dir", &self.dir).field("stats", &self.stats()).finish_non_exhaustive()
    }
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
        // 1. Settings.
        config.check()?;
        // 2. Recovery: the state and the writer after the journal's last record.
        let (state, writer, report) = journal::recover(dir, config.segment_bytes, &config.ledger)?;
        // 3. What the threads share, the pool of run buffers warmed.
        let shared = Arc::new(Shared::new(&config, writer.last_seq()));
        // 4. Syncers: everything recovered is made durable before anything new is released,
        //    and each starts from the segment current now (it then covers every later one).
        let mut commit_syncer = writer.syncer();
        commit_syncer.sync()?;
        let mut snapshot_syncer = writer.syncer();
        snapshot_syncer.sync()?;
        // 5. The pipeline's handle, with the two receivers.
        let snapshot_ring = Arc::new(Ring::new(1, WaitStrategy::Park));
        let mut pipeline = Pipeline::new(&shared, dir, &snapshot_ring, writer.syncer());
        let (pinned_tx, pinned_rx) = mpsc::channel();
        // 6. The snapshot thread (not latency-critical: it always parks when idle).
        let (journal_id, snapshot_dir, ring, tx) =
            (writer.journal_id(), dir.to_path_buf(), Arc::clone(&snapshot_ring), pinned_tx.clone());
        let for_snapshots = Arc::clone(&shared);
        pipeline.snapshot = Some(spawn("snapshot", config.cores.snapshot, tx, move || {
            snapshots::run(&for_snapshots, &ring, snapshot_syncer, &snapshot_dir, journal_id)
        })?);
        // 7. The group-commit thread (durability = fsync); with os, the sequencer keeps the
        //    syncer for its one fsync at a clean exit.
        let final_syncer = if config.durability == Durability::Fsync {
            let (for_commit, tx) = (Arc::clone(&shared), pinned_tx.clone());
            pipeline.group_commit = Some(spawn("group-commit", config.cores.group_commit, tx, move || {
                commit::run(&for_commit, commit_syncer)
            })?);
            None
        } else {
            Some(commit_syncer)
        };
        // 8. The sequencer thread, owning the state and the writer; inline, a handle.
        let sequencer =
            Sequencer::new(state, writer, final_syncer, &shared, snapshot_ring, config.snapshot_every, config.clock);
        if config.mode == Mode::Inline {
            let home: Home = Arc::new(Mutex::new(None));
            pipeline.inline = Some(Inline { sequencer: Some(sequencer), home: Arc::clone(&home) });
            pipeline.home = Some(home);
            drop(pinned_tx);
        } else {
            pipeline.sequencer = Some(spawn("sequencer", config.cores.sequencer, pinned_tx, move || sequencer.run())?);
        }
        // 9. Every thread pinned as asked, or none left running.
        let threads = 1 + usize::from(pipeline.group_commit.is_some()) + usize::from(pipeline.sequencer.is_some());
        for _ in 0..threads {
            if let Ok(Err(e)) = pinned_rx.recv() {
                drop(pipeline);
                return Err(e);
            }
        }
        Ok((pipeline, report))
    }

    /// The handle of a pipeline whose threads are not started yet.
    fn new(
        shared: &Arc<Shared>,
        dir: &Path,
        snapshot_ring: &Arc<Ring<(Point, CanonicalState)>>,
        syncer: JournalSyncer,
    ) -> Pipeline {
        let receiver = |output| Receiver { shared: Arc::clone(shared), output, run: None, next: 0 };
        Pipeline {
            shared: Arc::clone(shared),
            dir: dir.to_path_buf(),
            reports: Some(receiver(Output::Reports)),
            market: Some(receiver(Output::MarketData)),
            sequencer: None,
            group_commit: None,
            snapshot: None,
            snapshot_ring: Arc::clone(snapshot_ring),
            syncer,
            inline: None,
            home: None,
        }
    }

    /// [`Mode::Inline`]: the sequencer, for the one thread that will run it (see
    /// [`Inline`]); `None` in [`Mode::Threads`] or once taken. Untaken, it runs at the
    /// shutdown only.
    pub fn inline(&mut self) -> Option<Inline> {
        self.inline.take()
    }

    /// A syncer of the pipeline's journal, for another thread that must make what it read
    /// durable first (the settlement submitter under `durability = os`): each
    /// [`JournalSyncer::sync`] `fsync`s the segments written since its last.
    pub fn journal_syncer(&self) -> JournalSyncer {
        self.syncer.fresh()
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
        let exit = match self.home.take() {
            // Inline: the rest drained here, on the caller's thread.
            Some(home) => {
                let untaken = self.inline.take().and_then(|mut handle| handle.sequencer.take());
                let sequencer = untaken.or_else(|| home.lock().unwrap_or_else(PoisonError::into_inner).take());
                Some(sequencer.map(Sequencer::run).ok_or(PipelineError::InlineHeld))
            }
            None => self.sequencer.take().map(|h| h.join().map_err(|_| PipelineError::Panicked("sequencer"))),
        };
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
        if self.sequencer.is_some() || self.home.is_some() {
            let _ = self.stop();
        }
    }
}

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
            let outcome =
                pin::pin_current_thread_to(core).map_err(|source| PipelineError::Pin { thread: name, source });
            let _ = pinned.send(outcome);
            body()
        })
        .map_err(|e| PipelineError::Spawn(name, e))
}
