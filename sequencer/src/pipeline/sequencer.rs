//! The sequencer thread: numbers, times, journals and applies each input, and publishes
//! each run of them on the output rings.

use std::mem;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use l2x_engine::{CanonicalState, StateMachine};
use l2x_types::{Event, Seq, Sequenced, Timestamp};

use super::ring::Ring;
use super::shared::{DRAIN_BATCH, Entry, Input, Output, Run, Shared};
use super::{Durability, PipelineError};
use crate::clock;
use crate::journal::{JournalError, JournalId, JournalSyncer, JournalWriter, Point};

pub(crate) struct Sequencer {
    pub(crate) state: StateMachine,
    pub(crate) writer: JournalWriter,
    /// With `durability = os`: the syncer for the one `fsync` at a clean exit.
    pub(crate) final_syncer: Option<JournalSyncer>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) snapshot_ring: Arc<Ring<(Point, CanonicalState)>>,
    pub(crate) snapshot_every: u64,
    pub(crate) since_snapshot: u64,
    pub(crate) last_seq: u64,
    pub(crate) last_ts: u64,
    pub(crate) pauses: Vec<u64>,
    /// The runs being filled for each output: `[reports, market data]`.
    pub(crate) runs: [Run; 2],
    /// The sequenced time's source ([`super::Config::clock`]).
    pub(crate) clock: fn() -> u64,
    /// An inline step's journal error, returned when the pipeline drains at its shutdown.
    pub(crate) failed: Option<JournalError>,
}

/// What the sequencer thread returns.
pub(crate) struct SequencerExit {
    pub(crate) result: Result<(StateMachine, JournalId, Point), PipelineError>,
    pub(crate) pauses: Vec<u64>,
}

/// Events that go to the market-data output.
pub(crate) fn is_public(event: &Event) -> bool {
    matches!(event, Event::Book { .. } | Event::Trade(_))
}

impl Sequencer {
    /// The sequencer of the recovered `state`, appending with `writer`.
    pub(crate) fn new(
        state: StateMachine,
        writer: JournalWriter,
        final_syncer: Option<JournalSyncer>,
        shared: &Arc<Shared>,
        snapshot_ring: Arc<Ring<(Point, CanonicalState)>>,
        snapshot_every: u64,
        clock: fn() -> u64,
    ) -> Sequencer {
        Sequencer {
            last_ts: state.now().0,
            last_seq: writer.last_seq(),
            state,
            writer,
            final_syncer,
            shared: Arc::clone(shared),
            snapshot_ring,
            snapshot_every,
            since_snapshot: 0,
            pauses: Vec::new(),
            runs: [shared.fresh_run(), shared.fresh_run()],
            clock,
            failed: None,
        }
    }

    pub(crate) fn run(mut self) -> SequencerExit {
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
    pub(crate) fn drain(&mut self) -> Result<(), JournalError> {
        // An error met by an inline step (the pipeline halted then) ends the drain.
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let shared = Arc::clone(&self.shared);
        let input = &shared.input;
        loop {
            if self.run_once()? > 0 {
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

    /// One run: takes what the input ring holds (up to [`DRAIN_BATCH`]), sequences it with
    /// one clock reading and publishes it; the number of inputs taken (0: the ring was
    /// empty, nothing was done). The threaded sequencer's loop and the inline mode's step
    /// are this, so both write the same journal for the same inputs.
    pub(crate) fn run_once(&mut self) -> Result<usize, JournalError> {
        let shared = Arc::clone(&self.shared);
        let input = &shared.input;
        if input.queue.is_empty() {
            return Ok(0);
        }
        let mut taken = 0;
        let mut now = None;
        let started = clock::now();
        let mut failed = Ok(());
        while taken < DRAIN_BATCH {
            let Some(next) = input.queue.pop() else { break };
            taken += 1;
            let now = *now.get_or_insert_with(|| (self.clock)());
            failed = self.process(next, now);
            if failed.is_err() {
                break;
            }
        }
        if taken == 0 {
            return Ok(0);
        }
        input.not_full.notify();
        // What was applied is published, even when a later append failed.
        self.end_run();
        failed?;
        let busy = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let c = &shared.counters;
        c.busy_ns.store(c.busy_ns.load(Ordering::Relaxed) + busy, Ordering::Relaxed);
        Ok(taken)
    }

    /// Pushes the run's batches onto the output rings (waiting while one is full), and wakes
    /// the consumers and the group-commit thread.
    pub(crate) fn end_run(&mut self) {
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

    pub(crate) fn process(&mut self, input: Input, now: u64) -> Result<(), JournalError> {
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
    pub(crate) fn snapshot(&mut self) {
        let start = clock::now();
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
pub(crate) fn publish(shared: &Shared, output: Output, run: Run) {
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
