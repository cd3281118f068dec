//! Producers' side: submitting commands to the input ring, with the closing protocol.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use l2x_types::Command;

use super::Tag;
use super::shared::{Input, Shared};

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

/// Submits commands to a pipeline. Cloneable and `Send`: any number of producers on any
/// threads. The last handle dropped closes the input.
pub struct InputHandle {
    pub(crate) shared: Arc<Shared>,
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
