//! Consumers' side: the receivers of the two outputs. This is where durability holds a
//! command's batch (see the module documentation of `pipeline`, "Where durability holds
//! batches"): a receiver hands a batch out only once the durable watermark covers it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use l2x_types::{Event, Seq, Timestamp};

use super::Tag;
use super::shared::{Output, Run, Shared};

/// What one command did, owned: its sequence number and time, the caller's tag, and its
/// events (all of them on the reports output; only `Book` and `Trade` events on the
/// market-data output). [`Received::to_command_events`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandEvents {
    /// The command's sequence number.
    pub seq: Seq,
    /// Its sequenced time.
    pub ts: Timestamp,
    /// The submitter's tag.
    pub tag: Tag,
    /// Its events, in the order the state machine wrote them.
    pub events: Vec<Event>,
}

/// Receives one output's batches, in sequence order, each once it is released (see "Where
/// durability holds batches"). Single consumer; `Send`. Dropping it discards that output.
pub struct Receiver {
    pub(crate) shared: Arc<Shared>,
    pub(crate) output: Output,
    /// The run taken off the ring, and the index of its next entry.
    pub(crate) run: Option<Run>,
    pub(crate) next: usize,
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
    /// [`super::Durability::Fsync`]).
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// An owned copy.
    pub fn to_command_events(&self) -> CommandEvents {
        CommandEvents { seq: self.seq, ts: self.ts, tag: self.tag, events: self.events.to_vec() }
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

    /// The durable watermark now (see [`super::Pipeline::durable_seq`]).
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
