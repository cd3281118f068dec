//! The gateway thread's loop: one `mio` poll over the two listeners, every connection and
//! the pipeline's waker, and the turn of work between polls.
//!
//! ```text
//!  loop turn: submit the backlog ─ inline mode: sequence what the input holds, a run at a
//!             time, routing each ─ drain released batches (route them) ─ pump catch-ups
//!             ─ write what is queued ─ free the slots closed
//!             every 10 ms: timers (logon timeout, heartbeats, closing grace), accept retries
//!             poll: spin (timeout 0, yielding) for SPIN after the last work, else arm the
//!                   pipeline's waker and sleep until a socket, the waker or the next timers;
//!                   inline mode: always timeout 0, never sleeping (busy-polling)
//!             each event: write (writable), read (readable, closed, error), accept (listener)
//! ```

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use l2x_sequencer::clock;
use l2x_sequencer::pipeline::Inline;

use l2x_protocol::codec::{self, MdMsg, ServerMsg};
use l2x_protocol::codes::LogoutReason;
use mio::net::TcpListener;
use mio::{Events, Poll, Token};

use super::connections::{Connections, Due, FIRST_CONN, due};
use super::ownership::Ownership;
use super::pipe::{Output, Submitter};
use super::routing::Router;
use super::sessions::Sessions;
use super::{Config, Counters, Role, SPIN};

/// Poll token of the order-entry listener.
pub(super) const OE_LISTENER: Token = Token(0);
/// Poll token of the market-data listener.
pub(super) const MD_LISTENER: Token = Token(1);
/// Poll token of the pipeline's waker.
pub(super) const WAKER: Token = Token(2);
/// How often the timers run.
const TIMERS: Duration = Duration::from_millis(10);

/// Everything the gateway thread owns (see the module documentation).
#[derive(Debug)]
pub(super) struct EventLoop {
    pub(super) poll: Poll,
    pub(super) oe: TcpListener,
    pub(super) md: TcpListener,
    pub(super) conns: Connections,
    pub(super) sessions: Sessions,
    pub(super) ownership: Ownership,
    pub(super) submitter: Submitter,
    /// Inline mode: the pipeline's sequencer, run here between polls (see `pipe`).
    pub(super) inline: Option<Inline>,
    pub(super) output: Output,
    pub(super) router: Router,
    pub(super) config: Config,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) counters: Arc<Counters>,
    /// Stopping: sessions end without cancel-on-disconnect.
    pub(super) shutting_down: bool,
    /// Scratch for encoding.
    pub(super) scratch: Vec<u8>,
}

impl EventLoop {
    /// Runs until [`super::Server::stop`], a failed poll or the pipeline's end; then shuts
    /// every connection down.
    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut last_work = clock::now();
        let mut next_timers = clock::now();
        while !self.stop.load(Ordering::SeqCst) {
            let Ok(mut worked) = self.turn() else { break };
            let now = clock::now();
            if worked {
                last_work = now;
            }
            if now >= next_timers {
                self.timers(now);
                // Connections an accept error left waiting (edge-triggered: no new event).
                self.accept(false);
                self.accept(true);
                self.flush_dirty();
                next_timers = now + TIMERS;
            }
            let timeout = self.timeout(now, last_work, next_timers, worked);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                break;
            }
            worked |= self.dispatch(&events);
            if worked {
                last_work = clock::now();
            }
        }
        self.shutdown();
    }

    /// The work between polls; `Ok(true)` if there was any.
    ///
    /// # Errors
    /// The pipeline stopped: nothing more can be traded.
    fn turn(&mut self) -> Result<bool, super::pipe::OutputEnded> {
        let mut worked = self.submitter.flush();
        worked |= self.sequence_inline()? > 0;
        worked |= self.drain_reports()? > 0;
        worked |= self.pump_catch_ups();
        self.flush_dirty();
        self.conns.reap();
        Ok(worked)
    }

    /// How long the next poll may wait: not at all inline (busy-polling: this thread is the
    /// sequencer too, and other threads' commands wake nobody), nor while work came recently
    /// or commands wait for room; otherwise until the next timers, once the pipeline's waker
    /// is armed.
    fn timeout(&mut self, now: Instant, last_work: Instant, next_timers: Instant, worked: bool) -> Duration {
        if self.inline.is_some() {
            Duration::ZERO
        } else if now.duration_since(last_work) < SPIN || self.submitter.is_backlogged() {
            if !worked {
                // Idle but about to poll again: let a thread that shares this core (the
                // sequencer, on a small machine) run first.
                std::thread::yield_now();
            }
            Duration::ZERO
        } else if self.output.rx.arm() {
            next_timers.saturating_duration_since(now).max(Duration::from_millis(1))
        } else {
            Duration::ZERO
        }
    }

    /// Handles what the poll reported; `true` if it reported anything.
    fn dispatch(&mut self, events: &Events) -> bool {
        let mut worked = false;
        for event in events {
            worked = true;
            match event.token() {
                OE_LISTENER => self.accept(false),
                MD_LISTENER => self.accept(true),
                WAKER => {}
                Token(t) => {
                    let slot = t - FIRST_CONN;
                    if event.is_writable() {
                        self.write(slot);
                    }
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        self.read(slot);
                    }
                }
            }
        }
        worked
    }

    /// Logon timeouts, heartbeats both ways, closing connections' grace.
    fn timers(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conns.get(slot) else { continue };
            match due(&conn.role, conn.times, conn.outbox.pending(), now) {
                None => {}
                Some(Due::Close(cause)) => self.close(slot, cause),
                Some(Due::Logout(why)) => self.logout(slot, why),
                Some(Due::Heartbeat) => self.queue_server(slot, &ServerMsg::Heartbeat),
                Some(Due::MdHeartbeat) => {
                    let mut buf = Vec::new();
                    codec::encode_md(&MdMsg::Heartbeat { md_seq: self.router.feed.md_seq() }, false, &mut buf);
                    self.queue(slot, &buf);
                }
            }
        }
    }

    /// Server shutdown: every session gets a logout, one attempt is made to write it, and
    /// the connections close without cancel-on-disconnect (what input is waiting is read
    /// first, so that the close is not a reset).
    fn shutdown(&mut self) {
        self.shutting_down = true;
        for slot in 0..self.conns.len() {
            if matches!(self.conns.get(slot).map(|c| &c.role), Some(Role::Session(_))) {
                self.logout(slot, LogoutReason::ServerShutdown);
            }
        }
        self.flush_dirty();
        for slot in 0..self.conns.len() {
            self.close(slot, "server shutdown");
        }
    }
}
