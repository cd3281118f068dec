//! The gateway's side of the sequencer pipeline: commands in, in order and never blocking,
//! and every command's batch of events out.
//!
//! ```text
//!  submit(tag, cmd) ──▶ input ring            ring full: held in the backlog, in order;
//!                       (never waits)          submitted again at the start of each loop turn
//!  drain_reports ◀── report receiver ◀── sequencer (released at the durable watermark)
//!  inline mode: sequence_inline ── Inline::step (this thread) ── drain_reports, per run
//! ```
//!
//! A blocking submit could deadlock: the sequencer may be waiting for this very thread to
//! drain the reports. So a full ring holds commands back here instead, and nothing is
//! refused for it (docs/PROTOCOL.md, "Backpressure").

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use l2x_sequencer::pipeline::{InputHandle, Receiver, SubmitError, Tag, TryRecvError};
use l2x_types::{Command, Event};

use super::event_loop::EventLoop;

/// Where commands go: the pipeline's input (a trait so that tests can stand in for it;
/// the server uses [`InputHandle`] alone, monomorphised).
pub(super) trait CommandSink {
    /// Submits without waiting.
    ///
    /// # Errors
    /// [`SubmitError::Full`] with the command when there is no room; [`SubmitError::Closed`]
    /// once the pipeline is shutting down.
    fn submit(&self, tag: Tag, cmd: Command) -> Result<(), SubmitError>;
}

impl CommandSink for InputHandle {
    #[inline]
    fn submit(&self, tag: Tag, cmd: Command) -> Result<(), SubmitError> {
        InputHandle::submit(self, tag, cmd)
    }
}

/// Commands on their way to the sequencer, in submission order.
#[derive(Debug)]
pub(super) struct Submitter<S = InputHandle> {
    sink: S,
    /// Commands the ring had no room for, oldest first.
    backlog: VecDeque<(Tag, Command)>,
    /// The pipeline refused a command as closed: nothing more will be submitted.
    closed: bool,
}

impl<S: CommandSink> Submitter<S> {
    /// Submits through `sink`.
    pub(super) fn new(sink: S) -> Submitter<S> {
        Submitter { sink, backlog: VecDeque::new(), closed: false }
    }

    /// `true` once the pipeline's input is closed: commands are dropped.
    #[inline]
    pub(super) fn is_closed(&self) -> bool {
        self.closed
    }

    /// `true` while commands wait for room.
    #[inline]
    pub(super) fn is_backlogged(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Submits a command, or holds it behind the ones waiting already.
    #[inline]
    pub(super) fn submit(&mut self, tag: Tag, cmd: Command) {
        if self.closed {
            return;
        }
        if !self.backlog.is_empty() {
            self.backlog.push_back((tag, cmd));
            return;
        }
        match self.sink.submit(tag, cmd) {
            Ok(()) => {}
            Err(SubmitError::Full(cmd)) => self.backlog.push_back((tag, cmd)),
            Err(SubmitError::Closed(_)) => self.closed = true,
        }
    }

    /// Submits what waits, in order, while there is room; `true` if anything went.
    pub(super) fn flush(&mut self) -> bool {
        let mut worked = false;
        while let Some((tag, cmd)) = self.backlog.pop_front() {
            match self.sink.submit(tag, cmd) {
                Ok(()) => worked = true,
                Err(SubmitError::Full(cmd)) => {
                    self.backlog.push_front((tag, cmd));
                    break;
                }
                Err(SubmitError::Closed(_)) => {
                    self.closed = true;
                    self.backlog.clear();
                }
            }
        }
        worked
    }
}

/// The pipeline's output: every command's batch of events.
#[derive(Debug)]
pub(super) struct Output {
    /// The pipeline's report receiver.
    pub(super) rx: Receiver,
    /// Batches up to here were rebuilt from the journal when the server started.
    pub(super) recovered: u64,
    /// Scratch: the current batch's events.
    events: Vec<Event>,
}

impl Output {
    /// The output of `rx`, whose batches up to `recovered` the server has already seen.
    pub(super) fn new(rx: Receiver, recovered: u64) -> Output {
        Output { rx, recovered, events: Vec::new() }
    }
}

/// The pipeline stopped and its output has ended: nothing more can be traded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct OutputEnded;

impl EventLoop {
    /// Submits a command (counted; a session's command counted as in flight for it).
    pub(super) fn submit(&mut self, tag: Tag, cmd: Command) {
        if self.submitter.is_closed() {
            return;
        }
        self.counters.commands.fetch_add(1, Ordering::Relaxed);
        self.ownership.submitted(tag.session);
        self.submitter.submit(tag, cmd);
    }

    /// Inline mode: sequences what the pipeline's input holds, one run at a time, and routes
    /// each run's batches before the next (a run waits for room on the report ring, and
    /// only this thread makes room); the batches routed. Nothing in the threaded mode.
    ///
    /// # Errors
    /// [`OutputEnded`] when the pipeline's output has ended (a journal error halted it).
    pub(super) fn sequence_inline(&mut self) -> Result<usize, OutputEnded> {
        let mut n = 0;
        while let Some(inline) = self.inline.as_mut() {
            if inline.step() == 0 {
                break;
            }
            n += self.drain_reports()?;
            // The input has room again for what waited.
            self.submitter.flush();
        }
        Ok(n)
    }

    /// Hands every released batch to the router and routes the results; the number of
    /// batches taken.
    ///
    /// # Errors
    /// [`OutputEnded`] when the pipeline's output has ended.
    pub(super) fn drain_reports(&mut self) -> Result<usize, OutputEnded> {
        let mut n = 0;
        let mut events = std::mem::take(&mut self.output.events);
        let result = loop {
            events.clear();
            let (seq, ts, tag) = match self.output.rx.try_recv() {
                Ok(b) => {
                    events.extend_from_slice(b.events);
                    (b.seq.0, b.ts.0, b.tag)
                }
                Err(TryRecvError::Empty) => break Ok(n),
                Err(TryRecvError::Closed) => break Err(OutputEnded),
            };
            n += 1;
            if seq <= self.output.recovered {
                continue;
            }
            self.on_batch(ts, tag, &events);
        };
        self.output.events = events;
        result
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use l2x_types::{AccountId, Cancel, ClientOrderId};

    use super::*;

    /// A ring of `room` places that the test empties by hand; closed when `open` is false.
    #[derive(Default)]
    struct Ring {
        room: usize,
        open: bool,
        taken: RefCell<Vec<u64>>,
    }

    impl CommandSink for Ring {
        fn submit(&self, tag: Tag, cmd: Command) -> Result<(), SubmitError> {
            let mut taken = self.taken.borrow_mut();
            if !self.open {
                return Err(SubmitError::Closed(cmd));
            }
            if taken.len() >= self.room {
                return Err(SubmitError::Full(cmd));
            }
            taken.push(tag.correlation);
            Ok(())
        }
    }

    fn cancel(n: u64) -> (Tag, Command) {
        let cmd = Command::Cancel(Cancel { account: AccountId(1), cid: ClientOrderId(n), on_disconnect: false });
        (Tag { session: 1, correlation: n }, cmd)
    }

    #[test]
    fn a_full_ring_holds_commands_back_in_order() {
        let mut s = Submitter::new(Ring { room: 2, open: true, ..Ring::default() });
        for n in 1..=5 {
            let (tag, cmd) = cancel(n);
            s.submit(tag, cmd);
        }
        assert_eq!(*s.sink.taken.borrow(), [1, 2]);
        assert!(s.is_backlogged());
        // Room for one more: the oldest waiting goes, the rest keep their order.
        s.sink.room = 3;
        assert!(s.flush());
        assert!(!s.flush(), "no room: nothing goes");
        s.sink.room = 10;
        // A new command queues behind the backlog, never ahead of it.
        let (tag, cmd) = cancel(6);
        s.submit(tag, cmd);
        assert!(s.flush());
        assert_eq!(*s.sink.taken.borrow(), [1, 2, 3, 4, 5, 6]);
        assert!(!s.is_backlogged());
    }

    #[test]
    fn a_closed_pipeline_drops_everything_after() {
        let mut s = Submitter::new(Ring { room: 0, open: true, ..Ring::default() });
        let (tag, cmd) = cancel(1);
        s.submit(tag, cmd);
        assert!(s.is_backlogged());
        s.sink.open = false;
        assert!(!s.flush());
        assert!(s.is_closed() && !s.is_backlogged());
        s.sink.open = true;
        s.sink.room = 10;
        let (tag, cmd) = cancel(2);
        s.submit(tag, cmd);
        assert!(s.sink.taken.borrow().is_empty());
    }
}
