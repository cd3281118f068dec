//! The inline mode ([`super::Mode::Inline`]): no sequencer thread; the one thread that
//! holds the [`Inline`] handle (the gateway's event loop) sequences, journals and applies
//! between its polls, with the very code the sequencer thread runs.
//!
//! ```text
//!  Pipeline::start (mode = inline) ── the Sequencer kept in the pipeline, no thread
//!        │ Pipeline::inline() hands it out once
//!        ▼
//!  Inline::step ── Sequencer::run_once: one run of the input ring (≤ 64), journaled,
//!  (the holder's thread)  applied, pushed on the output rings ── the same thread's
//!        │                 Receiver::try_recv takes it back off: no other thread touched
//!        ▼ dropped (the holder stopped, or panicked)
//!  the Sequencer goes home ── Pipeline::shutdown drains the rest on its caller's
//!                             thread (Sequencer::run), exactly as the thread would
//! ```
//!
//! | part | job |
//! |---|---|
//! | [`Inline::step`] | one run, never waits: 0 when the input ring is empty |
//! | `Home` | where the sequencer waits between the holder's drop and the shutdown |
//!
//! Invariants: the holder drains the report receiver after every step that took anything
//! (a run waits for room on a full output ring, and on one thread nobody else would make
//! it); an output whose receiver was dropped discards its runs, as in the threaded mode.
//! Commands other threads submit (an operator's, the L1 watcher's) go through the same input
//! ring and are taken by the next step. A journal error halts the pipeline at once (input
//! closed, outputs ended) and [`super::Pipeline::shutdown`] returns it.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use super::sequencer::Sequencer;

/// Where an inline sequencer goes back to when its holder drops it.
pub(crate) type Home = Arc<Mutex<Option<Sequencer>>>;

/// The sequencer of a pipeline in [`super::Mode::Inline`], run by whoever holds it. See
/// the module documentation.
pub struct Inline {
    pub(crate) sequencer: Option<Sequencer>,
    pub(crate) home: Home,
}

impl fmt::Debug for Inline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.sequencer.as_ref().map(|s| s.last_seq);
        f.debug_struct("Inline").field("last_seq", &last).finish_non_exhaustive()
    }
}

impl Inline {
    /// Sequences, journals and applies one run of what the input ring holds (at most 64
    /// commands) and publishes it on the output rings; the number of commands taken (0: the
    /// input was empty, or the pipeline halted). Never waits, unless an output ring is full
    /// (drain the receiver after every step that took anything).
    pub fn step(&mut self) -> usize {
        let Some(sequencer) = self.sequencer.as_mut() else { return 0 };
        if sequencer.failed.is_some() {
            return 0;
        }
        match sequencer.run_once() {
            Ok(taken) => taken,
            Err(e) => {
                sequencer.failed = Some(e);
                let shared = Arc::clone(&sequencer.shared);
                shared.halt();
                for ring in [&shared.reports, &shared.market] {
                    ring.closed.store(true, Ordering::Release);
                    ring.not_empty.notify();
                }
                0
            }
        }
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        if let Some(sequencer) = self.sequencer.take() {
            *self.home.lock().unwrap_or_else(PoisonError::into_inner) = Some(sequencer);
        }
    }
}
