//! The gateway server: one event-loop thread that owns every order-entry session and every
//! market-data subscriber, between the sockets and the sequencer pipeline.
//!
//! ```text
//!            order-entry port                                  market-data port
//!  client ──frames──▶ FrameReader ─▶ decode_client ─▶ session     subscriber ◀── snapshot, then
//!                     (per conn)     logon (HMAC) · throttles     updates (Feed, md_seq + 1 each)
//!                                    · account of the key                 ▲
//!                                          │ submit(tag = session,        │
//!                                          ▼   gateway_in_ns)             │
//!                                   pipeline input ──▶ SEQUENCER ──▶ reports Receiver
//!                                                                          │ (every command's events)
//!                                          ┌───────────────────────────────┤
//!                                          ▼                               ▼
//!  client ◀──reports, seq per account── Streams (replay store) ──▶ Feed (order by order)
//! ```
//!
//! # One thread
//!
//! The gateway thread runs a `mio` poll over the two listeners, every connection and a
//! waker. It reads and decodes frames, authenticates, throttles and submits commands to the
//! pipeline (tagged with the session and the time the request was read); it drains the
//! pipeline's report receiver, turns each command's events into the accounts' sequenced
//! reports ([`Streams`](crate::reports::Streams)) and into market-data updates
//! ([`Feed`](crate::market_data::Feed)), and writes them. All session state lives on this
//! thread: no locks, and a session can only be touched by its own connection. Between
//! events it keeps polling without sleeping for [`SPIN`] (so a report that comes back a few
//! microseconds after its order is not paid for with a wake-up), yielding the core between
//! empty polls (on a 2-core machine the sequencer may need it); then it *arms* the
//! receiver's waker ([`Receiver::arm`](l2x_sequencer::pipeline::Receiver::arm)) and sleeps in
//! the poll until a socket, the waker or the next timer wakes it. The pipeline's market-data
//! output is not used: the feed needs the order-level events, which the report output
//! carries.
//!
//! # One thread for everything (the pipeline's inline mode)
//!
//! When the pipeline was started in [`Mode::Inline`](l2x_sequencer::pipeline::Mode) the
//! server takes its sequencer ([`Pipeline::inline`]) and the gateway thread runs it: each
//! loop turn sequences, journals and applies what the input ring holds, one run at a time,
//! and routes each run's reports before the next; the loop never sleeps (every poll has a
//! zero timeout: busy-polling, a core kept busy). An order is read, sequenced, journaled,
//! applied and answered on one thread, without a hop. Everything else is as above:
//! commands from other threads ([`Control`]: the operator, the L1 watcher, the idle ticker)
//! enter the same input ring and are taken by the next turn; replay, throttles, logon and
//! market data are the same code.
//!
//! # Sequencing and replay
//!
//! Report streams are a pure function of the journal: at start the server replays the whole
//! journal through a state machine of its own and feeds the events to the streams and the
//! feed, so after a restart every account's stream continues with the same sequence
//! numbers and a client can replay what it missed (the rebuilt reports carry 0 as their
//! gateway timestamps). A session in *catch-up* (after a `Replay` request, or a logon with
//! `resume_from`) is fed from the store, at most [`CATCH_UP_CHUNK`] bytes ahead of what the
//! socket took, flagged *possible duplicate* up to the end of the requested range, then
//! `ReplayComplete`, then whatever came meanwhile, and only then live again: the client sees
//! every sequence number once, in order.
//!
//! # Protection
//!
//! - Token buckets per session ([`Throttle`](crate::throttle::Throttle)); `throttled`
//!   rejects carry `retry_after_ms`; a session that keeps sending is logged out.
//! - Each connection's outbound buffer is bounded ([`Config::max_outbound_bytes`]); a reader
//!   that lets it fill is logged out (`slow_consumer`) and closed. Nothing waits for a
//!   socket: the gateway never stalls the pipeline or another session on a slow reader.
//! - The pipeline's input ring full: commands wait in the gateway's backlog, in order
//!   (never a blocking submit: the sequencer may be waiting for this very thread to drain
//!   the reports).
//! - Malformed frames: a typed `Rejected` (seq 0) and the session goes on; a broken stream
//!   (bad length) or more than [`MAX_MALFORMED`] bad frames: `Logout` and close.
//! - Cancel on disconnect: the orders a session entered and that are still live are
//!   cancelled (`Cancel` with `on_disconnect`, reason `disconnect`) when its session ends
//!   for any reason other than a server shutdown.
//!
//! # How a connection ends
//!
//! ```text
//!  logout(reason) ── session ended at once (logged; cancel-on-disconnect) ── Logout queued last
//!        │  input from now on: read and dropped
//!        ▼
//!  out written ── shutdown(Write): FIN after the Logout ── read and drop until the client's EOF
//!        │ socket takes nothing for CLOSE_GRACE              │ or CLOSE_GRACE after the FIN
//!        ▼                                                   ▼
//!      close                                               close
//! ```
//!
//! The client can always read the logout and its reason, then a clean end of stream: a
//! socket closed with unread input makes the kernel answer with a reset, and a reset throws
//! away what the client has not read yet, so the server never closes while input may still
//! be unread (a client that keeps sending for [`CLOSE_GRACE`] after the FIN is the bounded
//! exception). A client that goes without a logout (EOF, reset) ends its session at once.
//!
//! # The parts
//!
//! The loop's state is split by concern; each part is a type of its own with unit tests,
//! and the loop's glue for that concern sits next to it:
//!
//! | module | part | job |
//! |---|---|---|
//! | `event_loop` | `EventLoop` | the poll, a turn of work, timers, shutdown |
//! | `connections` | `Connections`, `Conn`, `Outbox` | sockets and slots, bounded outbound buffers, the graceful close |
//! | `sessions` | `Sessions`, `Session`, `Ask` | logon, what a session's messages ask for, throttles, logout |
//! | `catch_up` | `CatchUp` | replays from the store, a chunk ahead of the socket |
//! | `ownership` | `Ownership` | which session entered which live order: cancel-on-disconnect |
//! | `routing` | `Router` | each batch into reports, market data and counters, to whom they go |
//! | `pipe` | `Submitter`, `Output` | commands in without blocking, batches out |
//!
//! # Known limitations
//!
//! - The replay store keeps every report of the journal in memory (about 100 bytes each) and
//!   is rebuilt by a full replay of the journal at start: days of history would want it on
//!   disk, indexed by account and sequence number.
//! - One thread serves every connection; a second core would go to a second gateway thread
//!   with its own sessions (the pipeline's input takes any number of producers).

mod catch_up;
mod connections;
mod event_loop;
mod ownership;
mod pipe;
mod routing;
mod sessions;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use l2x_protocol::codec::Limits;
use l2x_risk::Ledger;
use l2x_sequencer::journal::JournalError;
use l2x_sequencer::pipeline::{InputHandle, Pipeline, SubmitError, Tag};
use l2x_types::Command;
use mio::net::TcpListener;
use mio::{Interest, Poll, Waker};

use self::connections::{Closing, Connections, Role};
use self::event_loop::{EventLoop, MD_LISTENER, OE_LISTENER, WAKER};
use self::ownership::Ownership;
use self::pipe::{Output, Submitter};
use self::routing::{Listings, Router};
use self::sessions::Sessions;
use crate::auth::Keys;
use crate::metrics::Trading;

/// How long the loop keeps polling without sleeping after the last thing it did.
pub const SPIN: Duration = Duration::from_micros(50);
/// How far ahead of the socket a catch-up fills the outbound buffer, bytes.
pub const CATCH_UP_CHUNK: usize = 64 * 1024;
/// Malformed frames a session may send before it is logged out.
pub const MAX_MALFORMED: u32 = 100;
/// A connection must log on within this long.
pub const LOGON_TIMEOUT: Duration = Duration::from_secs(5);
/// Heartbeat interval bounds (a logon asking for 0 gets [`DEFAULT_HEARTBEAT_MS`]).
pub const HEARTBEAT_MS: (u32, u32) = (100, 60_000);
/// Heartbeat interval when the logon asks for 0.
pub const DEFAULT_HEARTBEAT_MS: u32 = 1_000;
/// A connection that is closing (after a logout) is closed when its socket has taken
/// nothing for this long.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The market-data port's heartbeat interval.
pub const MD_HEARTBEAT: Duration = Duration::from_secs(1);

/// How the server runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Order-entry listen address (port 0: any free port).
    pub order_entry: SocketAddr,
    /// Market-data listen address.
    pub market_data: SocketAddr,
    /// Every session's throttle limits.
    pub limits: Limits,
    /// Outbound bytes a connection may have unsent before it is cut off as a slow consumer.
    pub max_outbound_bytes: usize,
    /// Pin the gateway thread to this core.
    pub core: Option<usize>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            order_entry: SocketAddr::from(([127, 0, 0, 1], 0)),
            market_data: SocketAddr::from(([127, 0, 0, 1], 0)),
            limits: Limits::default(),
            max_outbound_bytes: 4 << 20,
            core: None,
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A socket could not be bound or polled.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// Rebuilding the report streams from the journal failed.
    #[error("rebuilding the report streams from the journal: {0}")]
    Journal(#[from] JournalError),
    /// The pipeline's report receiver was taken by someone else.
    #[error("the pipeline's report receiver is already taken")]
    ReceiverTaken,
    /// The gateway thread could not be pinned to this core.
    #[error("cannot pin the gateway thread to core {0}")]
    Pin(usize),
    /// The gateway thread panicked (a bug).
    #[error("the gateway thread panicked")]
    Panicked,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ServerError {
    move |source| ServerError::Io { what: what.into(), source }
}

/// What the server did, counted on its thread (readable while it runs).
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted on the order-entry port.
    pub connections: AtomicU64,
    /// Successful logons.
    pub logons: AtomicU64,
    /// Refused logons.
    pub logon_rejects: AtomicU64,
    /// Commands submitted to the pipeline.
    pub commands: AtomicU64,
    /// Reports written live (not replays).
    pub reports: AtomicU64,
    /// `throttled` rejects.
    pub throttled: AtomicU64,
    /// Malformed frames.
    pub malformed: AtomicU64,
    /// Connections cut off as slow consumers.
    pub slow_consumers: AtomicU64,
    /// Orders cancelled on disconnect.
    pub cancelled_on_disconnect: AtomicU64,
    /// Market-data subscribers accepted.
    pub md_subscribers: AtomicU64,
    /// Sessions logged on now.
    pub sessions: AtomicU64,
    /// Orders, rejects, fills, liquidations, open interest, order-to-ack latency.
    pub trading: Trading,
}

/// The tag's session of commands submitted through [`Control`] (sessions count from 1).
pub const CONTROL_SESSION: u64 = 0;
/// The tag's session of the gateway's cancel-on-disconnect commands (the correlation is
/// the session that went).
pub const DISCONNECT_SESSION: u64 = u64::MAX;

/// Submits commands that no session sends (listings, deposits, oracle prices, funding), so
/// that the server knows what they did: a listing made through here is announced on the
/// market-data port with its definition.
#[derive(Debug, Clone)]
pub struct Control {
    input: InputHandle,
    listings: Listings,
    next: Arc<AtomicU64>,
}

impl Control {
    /// Submits a command, waiting while the input ring is full.
    ///
    /// # Errors
    /// [`SubmitError::Closed`] once the pipeline is shutting down.
    pub fn submit(&self, cmd: Command) -> Result<(), SubmitError> {
        let correlation = self.next.fetch_add(1, Ordering::Relaxed);
        if let Command::ListInstrument(spec) = &cmd {
            self.listings.lock().unwrap_or_else(PoisonError::into_inner).insert(correlation, **spec);
        }
        self.input.submit_wait(Tag { session: CONTROL_SESSION, correlation }, cmd)
    }
}

/// A running gateway. [`Server::stop`] (or dropping it) logs every session out and joins the
/// thread; shut the pipeline down after.
#[derive(Debug)]
pub struct Server {
    thread: Option<JoinHandle<()>>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    order_entry: SocketAddr,
    market_data: SocketAddr,
    control: Control,
    counters: Arc<Counters>,
}

impl Server {
    /// Rebuilds every account's report stream and the market-data book from the journal of
    /// `pipeline` (replayed with `ledger`, the pipeline's risk configuration), binds both
    /// ports and starts the gateway thread. Call it before anything is submitted.
    ///
    /// # Errors
    /// [`ServerError`]: a port that cannot be bound, a journal that cannot be read, the report
    /// receiver taken already, a core the thread cannot be pinned to.
    pub fn start(config: Config, keys: Keys, pipeline: &mut Pipeline, ledger: &Ledger) -> Result<Server, ServerError> {
        let rx = pipeline.reports().ok_or(ServerError::ReceiverTaken)?;
        // The feed is built from the report output's order-level events.
        drop(pipeline.market_data());
        let recovered = pipeline.stats().appended_seq;
        let counters = Arc::new(Counters::default());
        let listings: Listings = Arc::new(Mutex::new(BTreeMap::new()));
        let router = Router::rebuild(pipeline.dir(), recovered, ledger, &counters.trading, Arc::clone(&listings))?;
        let (poll, oe, md) = bind(&config)?;
        let order_entry = oe.local_addr().map_err(io_err("order-entry address"))?;
        let market_data = md.local_addr().map_err(io_err("market-data address"))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_err("creating the waker"))?);
        let woken = Arc::clone(&waker);
        rx.set_waker(move || {
            let _ = woken.wake();
        });
        let control = Control { input: pipeline.input(), listings, next: Arc::new(AtomicU64::new(0)) };
        let stop = Arc::new(AtomicBool::new(false));
        let event_loop = EventLoop {
            poll,
            oe,
            md,
            conns: Connections::default(),
            sessions: Sessions::new(keys, config.limits),
            ownership: Ownership::default(),
            submitter: Submitter::new(pipeline.input()),
            inline: pipeline.inline(),
            output: Output::new(rx, recovered),
            router,
            config,
            stop: Arc::clone(&stop),
            counters: Arc::clone(&counters),
            shutting_down: false,
            scratch: Vec::new(),
        };
        let thread = spawn(event_loop)?;
        Ok(Server { thread: Some(thread), waker, stop, order_entry, market_data, control, counters })
    }
    /// The order-entry address it listens on.
    pub fn order_entry_addr(&self) -> SocketAddr {
        self.order_entry
    }

    /// The market-data address it listens on.
    pub fn market_data_addr(&self) -> SocketAddr {
        self.market_data
    }

    /// Submits commands no session sends.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Counters, live.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counters, live, shared (for a metrics endpoint on another thread).
    pub fn counters_handle(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Logs every session out (`server_shutdown`, no cancel-on-disconnect: the orders stay
    /// for the next start) and joins the thread.
    ///
    /// # Errors
    /// [`ServerError::Panicked`].
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.halt()
    }

    fn halt(&mut self) -> Result<(), ServerError> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| ServerError::Panicked),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// The poll and both listeners, bound and registered.
fn bind(config: &Config) -> Result<(Poll, TcpListener, TcpListener), ServerError> {
    let poll = Poll::new().map_err(io_err("creating the poll"))?;
    let mut oe = TcpListener::bind(config.order_entry)
        .map_err(io_err(format!("binding the order-entry port {}", config.order_entry)))?;
    let mut md = TcpListener::bind(config.market_data)
        .map_err(io_err(format!("binding the market-data port {}", config.market_data)))?;
    poll.registry().register(&mut oe, OE_LISTENER, Interest::READABLE).map_err(io_err("registering"))?;
    poll.registry().register(&mut md, MD_LISTENER, Interest::READABLE).map_err(io_err("registering"))?;
    Ok((poll, oe, md))
}

/// Starts the gateway thread, pinned to the configured core if there is one.
fn spawn(event_loop: EventLoop) -> Result<JoinHandle<()>, ServerError> {
    let core = event_loop.config.core;
    let (pinned_tx, pinned_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("l2x-gateway".into())
        .spawn(move || {
            let pinned = l2x_sequencer::pin::pin_current_thread_to(core).is_ok();
            let _ = pinned_tx.send(pinned);
            if pinned {
                event_loop.run();
            }
        })
        .map_err(io_err("starting the gateway thread"))?;
    if !pinned_rx.recv().unwrap_or(false) {
        let _ = thread.join();
        return Err(ServerError::Pin(core.unwrap_or(0)));
    }
    Ok(thread)
}

/// The wall clock, ns since the Unix epoch (the clock seam, `l2x_sequencer::clock`): logon
/// freshness, report timestamps; nothing here reaches the state machine except through
/// sequenced commands.
fn now_ns() -> u64 {
    l2x_sequencer::clock::wall_clock_ns()
}
