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
//! reports ([`Streams`]) and into market-data updates ([`Feed`]), and writes them. All
//! session state lives on this thread: no locks, and a session can only be touched by its
//! own connection. Between events it keeps polling without sleeping for [`SPIN`] (so a
//! report that comes back a few microseconds after its order is not paid for with a wake-up),
//! yielding the core between empty polls (on a 2-core machine the sequencer may need it);
//! then it *arms* the receiver's waker ([`Receiver::arm`]) and sleeps in the poll until a
//! socket, the waker or the next timer wakes it. The pipeline's market-data output is not
//! used: the feed needs the order-level events, which the report output carries.
//!
//! # Sequencing and replay
//!
//! Report streams are a pure function of the journal: at start the server replays the whole
//! journal through a state machine of its own and feeds the events to [`Streams`] and
//! [`Feed`], so after a restart every account's stream continues with the same sequence
//! numbers and a client can replay what it missed (the rebuilt reports carry 0 as their
//! gateway timestamps). A session in *catch-up* (after a `Replay` request, or a logon with
//! `resume_from`) is fed from the store, at most [`CATCH_UP_CHUNK`] bytes ahead of what the
//! socket took, flagged *possible duplicate* up to the end of the requested range, then
//! `ReplayComplete`, then whatever came meanwhile, and only then live again: the client sees
//! every sequence number once, in order.
//!
//! # Protection
//!
//! - Token buckets per session ([`Throttle`]); `throttled` rejects carry `retry_after_ms`;
//!   a session that keeps sending is logged out.
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
//! # Known limitations
//!
//! - The replay store keeps every report of the journal in memory (about 100 bytes each) and
//!   is rebuilt by a full replay of the journal at start: days of history would want it on
//!   disk, indexed by account and sequence number.
//! - One thread serves every connection; a second core would go to a second gateway thread
//!   with its own sessions (the pipeline's input takes any number of producers).

#![allow(
    clippy::disallowed_methods,
    reason = "the gateway reads the wall clock for timestamps, heartbeats, logon freshness and \
              throttles; none of it reaches the state machine except through sequenced commands"
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use l2x_engine::StateMachine;
use l2x_engine::journal::{self, JournalError};
use l2x_engine::pipeline::{InputHandle, Pipeline, Receiver, SubmitError, Tag, TryRecvError};
use l2x_protocol::codec::{self, ClientMsg, Limits, Logon, MdMsg, Report, ServerMsg, WireError};
use l2x_protocol::codes::{LogoutReason, Refusal, SessionReject};
use l2x_risk::Ledger;
use l2x_types::{
    AccountId, Amend, Cancel, ClientOrderId, Command, DetMap, Event, Instrument, InstrumentId, InstrumentSpec,
    MassCancel, NewOrder, OrderId, Qty,
};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::auth::{Authenticator, Keys};
use crate::market_data::Feed;
use crate::metrics::{self, OpenInterest, Trading};
use crate::reports::Streams;
use crate::throttle::{Kind, Throttle, Verdict};

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
    listings: Arc<Mutex<BTreeMap<u64, InstrumentSpec>>>,
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
    /// receiver taken already.
    pub fn start(config: Config, keys: Keys, pipeline: &mut Pipeline, ledger: &Ledger) -> Result<Server, ServerError> {
        let rx = pipeline.reports().ok_or(ServerError::ReceiverTaken)?;
        // The feed is built from the report output's order-level events.
        drop(pipeline.market_data());
        let recovered = pipeline.stats().appended_seq;
        let counters = Arc::new(Counters::default());
        let (streams, feed, instruments, open_interest) =
            rebuild(pipeline.dir(), recovered, ledger, &counters.trading)?;
        let poll = Poll::new().map_err(io_err("creating the poll"))?;
        let mut oe = TcpListener::bind(config.order_entry)
            .map_err(io_err(format!("binding the order-entry port {}", config.order_entry)))?;
        let mut md = TcpListener::bind(config.market_data)
            .map_err(io_err(format!("binding the market-data port {}", config.market_data)))?;
        let order_entry = oe.local_addr().map_err(io_err("order-entry address"))?;
        let market_data = md.local_addr().map_err(io_err("market-data address"))?;
        poll.registry().register(&mut oe, OE_LISTENER, Interest::READABLE).map_err(io_err("registering"))?;
        poll.registry().register(&mut md, MD_LISTENER, Interest::READABLE).map_err(io_err("registering"))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_err("creating the waker"))?);
        let woken = Arc::clone(&waker);
        rx.set_waker(move || {
            let _ = woken.wake();
        });
        let control = Control {
            input: pipeline.input(),
            listings: Arc::new(Mutex::new(BTreeMap::new())),
            next: Arc::new(AtomicU64::new(0)),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut definitions = BTreeMap::new();
        for inst in &instruments {
            definitions.insert(inst.id, definition(inst.id, inst.symbol.as_str(), inst.tick_size, inst.lot_size));
        }
        let event_loop = EventLoop {
            poll,
            oe,
            md,
            conns: Vec::new(),
            free: Vec::new(),
            closed: Vec::new(),
            rx,
            input: pipeline.input(),
            backlog: VecDeque::new(),
            streams,
            feed,
            definitions,
            listings: Arc::clone(&control.listings),
            auth: Authenticator::new(keys),
            by_account: BTreeMap::new(),
            subscribers: Vec::new(),
            by_key: BTreeMap::new(),
            by_session: BTreeMap::new(),
            owners: DetMap::default(),
            orders: BTreeMap::new(),
            shutting_down: false,
            next_session: 1,
            recovered,
            config,
            stop: Arc::clone(&stop),
            counters: Arc::clone(&counters),
            open_interest,
            liquidated: Vec::new(),
            routed: Vec::new(),
            events: Vec::new(),
            md_msgs: Vec::new(),
            scratch: Vec::new(),
            dirty: BTreeSet::new(),
            input_closed: false,
        };
        let core = event_loop.config.core;
        let (pinned_tx, pinned_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("l2x-gateway".into())
            .spawn(move || {
                let pinned =
                    core.is_none_or(|id| id < 1024 && core_affinity::set_for_current(core_affinity::CoreId { id }));
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

/// The market-data definition of an instrument.
fn definition(
    instrument: InstrumentId,
    symbol: &str,
    tick: rust_decimal::Decimal,
    lot: rust_decimal::Decimal,
) -> MdMsg {
    let mut name = [0u8; 16];
    let bytes = symbol.as_bytes();
    let n = bytes.len().min(16);
    name[..n].copy_from_slice(&bytes[..n]);
    // Validated instrument sizes have at most 12 decimals and at most 10^9: both fit.
    let part = |d: rust_decimal::Decimal| {
        let d = d.normalize();
        (i64::try_from(d.mantissa()).unwrap_or(i64::MAX), u8::try_from(d.scale()).unwrap_or(u8::MAX))
    };
    MdMsg::InstrumentDefinition { md_seq: 0, instrument, symbol: name, tick: part(tick), lot: part(lot) }
}

/// Replays the journal from its first record up to `until` into fresh report streams, a
/// fresh feed and open interest (published to `trading`); returns them and the instruments
/// listed.
fn rebuild(
    dir: &std::path::Path,
    until: u64,
    ledger: &Ledger,
    trading: &Trading,
) -> Result<(Streams, Feed, Vec<Instrument>, OpenInterest), ServerError> {
    let mut sm = StateMachine::with_ledger(ledger.clone());
    let mut streams = Streams::new();
    let mut feed = Feed::new();
    let mut open_interest = OpenInterest::default();
    let (mut events, mut routed, mut md) = (Vec::new(), Vec::new(), Vec::new());
    journal::scan(dir, |cmd| {
        if cmd.seq.0 > until {
            return ControlFlow::Break(());
        }
        events.clear();
        sm.apply(&cmd, &mut events);
        routed.clear();
        streams.on_batch(&events, cmd.ts.0, 0, 0, &mut routed);
        md.clear();
        feed.on_batch(&events, &mut md);
        open_interest.on_events(&events, trading);
        ControlFlow::Continue(())
    })?;
    Ok((streams, feed, sm.instruments().to_vec(), open_interest))
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

const OE_LISTENER: Token = Token(0);
const MD_LISTENER: Token = Token(1);
const WAKER: Token = Token(2);
const FIRST_CONN: usize = 3;

/// A session's place in the report stream.
#[derive(Debug, Clone, Copy)]
struct CatchUp {
    /// Next sequence number to send from the store.
    next: u64,
    /// Reports up to here are replays (flagged possible duplicate).
    replay_end: u64,
    /// First replayed sequence number (0: none), for `ReplayComplete`.
    first: u64,
    /// `ReplayComplete` was sent.
    completed: bool,
}

#[derive(Debug)]
struct Session {
    id: u64,
    key_id: u64,
    account: AccountId,
    heartbeat: Duration,
    cancel_on_disconnect: bool,
    throttle: Throttle,
    /// Catch-up in progress; `None`: live.
    catch_up: Option<CatchUp>,
}

/// What the gateway remembers of a session's orders, whether or not it is still connected:
/// enough to cancel them on disconnect, including orders still in flight when it went.
#[derive(Debug, Default)]
struct Orders {
    account: AccountId,
    /// Live orders the session entered (accepted, not yet filled or cancelled).
    live: BTreeSet<ClientOrderId>,
    /// Commands submitted whose batch has not come back yet.
    in_flight: u64,
    /// The session is gone with cancel-on-disconnect: whatever of its orders is still live
    /// after a batch is cancelled, until nothing of it is in flight.
    departed: bool,
}

#[derive(Debug)]
enum Role {
    /// Order entry, not logged on yet.
    Pending,
    /// Order entry, logged on.
    Session(Box<Session>),
    /// A market-data subscriber.
    Subscriber,
    /// Order entry, answered (`Logout` or `LogonReject`) and closing; its session, if it
    /// had one, has ended.
    Closing,
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// The client's address (for the logs).
    peer: SocketAddr,
    reader: codec::FrameReader,
    out: Vec<u8>,
    /// Bytes of `out` already written.
    out_at: usize,
    opened: Instant,
    last_recv: Instant,
    last_send: Instant,
    role: Role,
    malformed: u32,
    /// Answered with a logout: once `out` is written the write side is shut (FIN after the
    /// logout), then the client's input is read and dropped until its end of stream, so that
    /// the close is never a reset (see [`EventLoop::write`]).
    closing: bool,
    /// Closing: when the write side was shut.
    fin_at: Option<Instant>,
    /// Closing: the client ended its stream before the logout was written; close once it is.
    peer_eof: bool,
    /// Close now, without cancel-on-disconnect (server shutdown).
    dead: bool,
    /// Bytes allowed beyond the outbound bound (a market-data snapshot).
    allowance: usize,
    /// Registered for writability (bytes are waiting for the socket).
    wants_writable: bool,
}

impl Conn {
    fn pending(&self) -> usize {
        self.out.len() - self.out_at
    }
}

struct EventLoop {
    poll: Poll,
    oe: TcpListener,
    md: TcpListener,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Slots closed in this iteration: reused only in the next (an event for the old
    /// connection may still be in the current batch).
    closed: Vec<usize>,
    rx: Receiver,
    input: InputHandle,
    backlog: VecDeque<(Tag, Command)>,
    streams: Streams,
    feed: Feed,
    definitions: BTreeMap<InstrumentId, MdMsg>,
    listings: Arc<Mutex<BTreeMap<u64, InstrumentSpec>>>,
    auth: Authenticator,
    by_account: BTreeMap<AccountId, Vec<usize>>,
    /// Market-data subscribers' slots.
    subscribers: Vec<usize>,
    by_key: BTreeMap<u64, usize>,
    by_session: BTreeMap<u64, usize>,
    /// Live orders entered by a session of this server run: order → (session, cid).
    owners: DetMap<OrderId, (u64, ClientOrderId)>,
    /// Per session (connected, or gone with orders to cancel): its orders.
    orders: BTreeMap<u64, Orders>,
    /// Stopping: connections close without cancel-on-disconnect.
    shutting_down: bool,
    next_session: u64,
    /// Batches up to here were rebuilt from the journal.
    recovered: u64,
    config: Config,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    open_interest: OpenInterest,
    /// Scratch for counting liquidated accounts.
    liquidated: Vec<AccountId>,
    routed: Vec<(AccountId, u64)>,
    events: Vec<Event>,
    md_msgs: Vec<MdMsg>,
    scratch: Vec<u8>,
    /// Connections with bytes to write.
    dirty: BTreeSet<usize>,
    input_closed: bool,
}

impl EventLoop {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut last_work = Instant::now();
        let mut next_timers = Instant::now();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                self.shutdown();
                return;
            }
            let mut worked = self.submit_backlog();
            match self.drain_reports() {
                Ok(n) => worked |= n > 0,
                Err(()) => {
                    // The pipeline stopped: nothing more can be traded.
                    self.shutdown();
                    return;
                }
            }
            worked |= self.pump_catch_ups();
            self.flush_dirty();
            self.reap();
            let now = Instant::now();
            if worked {
                last_work = now;
            }
            if now >= next_timers {
                self.timers(now);
                // Connections an accept error left waiting (edge-triggered: no new event).
                self.accept(false);
                self.accept(true);
                self.flush_dirty();
                next_timers = now + Duration::from_millis(10);
            }
            // Keep polling while work came recently; otherwise sleep until a socket, the
            // pipeline (armed waker) or the next timer.
            let timeout = if now.duration_since(last_work) < SPIN || !self.backlog.is_empty() {
                if !worked {
                    // Idle but about to poll again: let a thread that shares this core (the
                    // sequencer, on a small machine) run first.
                    std::thread::yield_now();
                }
                Some(Duration::ZERO)
            } else if self.rx.arm() {
                Some(next_timers.saturating_duration_since(now).max(Duration::from_millis(1)))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                self.shutdown();
                return;
            }
            for event in &events {
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
            if worked {
                last_work = Instant::now();
            }
        }
    }

    // ----- connections -------------------------------------------------------------------

    fn accept(&mut self, market_data: bool) {
        loop {
            let listener = if market_data { &self.md } else { &self.oe };
            let (stream, peer) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => continue,
                // Out of descriptors and the like: the timers try again every 10 ms.
                Err(_) => return,
            };
            let _ = stream.set_nodelay(true);
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let now = Instant::now();
            let mut conn = Conn {
                stream,
                peer,
                reader: codec::FrameReader::new(),
                out: Vec::new(),
                out_at: 0,
                opened: now,
                last_recv: now,
                last_send: now,
                role: if market_data { Role::Subscriber } else { Role::Pending },
                malformed: 0,
                closing: false,
                fin_at: None,
                peer_eof: false,
                dead: false,
                allowance: 0,
                wants_writable: false,
            };
            if self.poll.registry().register(&mut conn.stream, Token(slot + FIRST_CONN), Interest::READABLE).is_err() {
                self.free.push(slot);
                continue;
            }
            self.conns[slot] = Some(conn);
            if market_data {
                self.subscribers.push(slot);
                self.counters.md_subscribers.fetch_add(1, Ordering::Relaxed);
                self.send_md_snapshot(slot);
            } else {
                self.counters.connections.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn conn(&mut self, slot: usize) -> Option<&mut Conn> {
        self.conns.get_mut(slot).and_then(Option::as_mut)
    }

    /// Appends bytes to a connection's outbound buffer (written at the end of the loop
    /// iteration); cuts it off if the buffer would pass the bound.
    fn queue(&mut self, slot: usize, bytes: &[u8]) {
        let max = self.config.max_outbound_bytes;
        let Some(conn) = self.conn(slot) else { return };
        if conn.dead || conn.closing {
            return;
        }
        if conn.pending() + bytes.len() > max + conn.allowance {
            tracing::warn!(peer = %conn.peer, unsent = conn.pending(), "slow consumer: cut off");
            self.counters.slow_consumers.fetch_add(1, Ordering::Relaxed);
            self.logout(slot, LogoutReason::SlowConsumer);
            return;
        }
        if conn.out_at > 0 && conn.out_at * 2 >= conn.out.len() {
            conn.out.drain(..conn.out_at);
            conn.out_at = 0;
        }
        conn.out.extend_from_slice(bytes);
        self.dirty.insert(slot);
    }

    fn queue_server(&mut self, slot: usize, msg: &ServerMsg) {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        codec::encode_server(msg, &mut buf);
        self.queue(slot, &buf);
        self.scratch = buf;
    }

    /// Ends the connection's session (if it has one: logged at info with the reason, and
    /// cancel-on-disconnect applies at once) and sends a logout, beyond the outbound bound: it
    /// is the last thing sent, after everything queued before it, so the stream stays whole.
    /// The connection then closes gracefully ([`EventLoop::write`]), or when [`CLOSE_GRACE`]
    /// passes without the socket taking anything (a slow consumer that never reads). A
    /// market-data subscriber, which has no logout, is closed at once.
    fn logout(&mut self, slot: usize, why: LogoutReason) {
        let Some(conn) = self.conn(slot) else { return };
        if conn.closing || conn.dead {
            return;
        }
        let (code, peer) = (why.code(), conn.peer);
        match &conn.role {
            Role::Subscriber => {
                self.close(slot, "cut off");
                return;
            }
            Role::Session(s) => {
                tracing::info!(session = s.id, key = s.key_id, account = s.account.0, %peer, reason = %why, code, "logout");
            }
            Role::Pending | Role::Closing => tracing::info!(%peer, reason = %why, code, "logout before logon"),
        }
        codec::encode_server(&ServerMsg::Logout { reason: code }, &mut conn.out);
        conn.closing = true;
        let role = std::mem::replace(&mut conn.role, Role::Closing);
        self.dirty.insert(slot);
        if let Role::Session(session) = role {
            self.end_session(slot, &session);
        }
    }

    fn flush_dirty(&mut self) {
        while let Some(slot) = self.dirty.pop_first() {
            self.write(slot);
        }
    }

    /// Writes what the socket takes; registers for writability when it does not take all.
    ///
    /// A closing connection whose last byte (the logout) the socket has taken gets its write
    /// side shut: the client reads the logout, then the end of the stream. The connection
    /// stays open, reading and dropping whatever the client still sends, until the client's
    /// own end of stream or [`CLOSE_GRACE`]: closing a socket with unread input makes the
    /// kernel answer with a reset, which also throws away what the client has not read yet —
    /// the logout with its reason.
    fn write(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else { return };
        let mut failed = false;
        while conn.pending() > 0 {
            match conn.stream.write(&conn.out[conn.out_at..]) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => {
                    conn.out_at += n;
                    conn.last_send = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            self.close(slot, "connection error");
            return;
        }
        let done = conn.pending() == 0;
        let mut drain = false;
        if done {
            conn.out.clear();
            conn.out_at = 0;
            if conn.closing && conn.fin_at.is_none() {
                let _ = conn.stream.shutdown(Shutdown::Write);
                conn.fin_at = Some(Instant::now());
                if conn.peer_eof {
                    self.close(slot, "closed by the client");
                    return;
                }
                drain = true;
            }
        }
        // Writability is asked for only while bytes wait, and the registration is touched
        // only when that changes (an epoll_ctl per write would be a syscall on every report).
        if conn.wants_writable == done {
            conn.wants_writable = !done;
            let interest = if done { Interest::READABLE } else { Interest::READABLE | Interest::WRITABLE };
            let token = Token(slot + FIRST_CONN);
            if self.poll.registry().reregister(&mut conn.stream, token, interest).is_err() {
                self.close(slot, "cannot register the socket");
                return;
            }
        }
        if drain {
            // Input that came before the shutdown and was not read yet (edge-triggered: no
            // new event would announce it).
            self.read(slot);
        }
    }

    /// Reads everything available and handles each complete frame. A closing connection's
    /// input is read and dropped, never buffered: it has been answered.
    fn read(&mut self, slot: usize) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let Some(conn) = self.conn(slot) else { return };
            if conn.dead || conn.peer_eof {
                return;
            }
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    if conn.closing && conn.fin_at.is_none() {
                        // Done sending, perhaps still reading: the logout is written first.
                        conn.peer_eof = true;
                    } else {
                        self.close(slot, "closed by the client");
                    }
                    return;
                }
                Ok(n) => {
                    conn.last_recv = Instant::now();
                    if matches!(conn.role, Role::Subscriber) || conn.closing {
                        // Market data is one-way, and a connection that is closing has been
                        // answered: whatever they send is read and dropped.
                        continue;
                    }
                    conn.reader.extend(&buf[..n]);
                    // A frame that ends the session leaves the rest of the input to the
                    // closing branch above: it is read to the end all the same.
                    self.frames(slot);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close(slot, "connection error");
                    return;
                }
            }
        }
    }

    /// Handles the complete frames buffered on a connection, until one ends it.
    fn frames(&mut self, slot: usize) {
        let gateway_in = now_ns();
        loop {
            let Some(conn) = self.conn(slot) else { return };
            if conn.closing || conn.dead {
                return;
            }
            let decoded = match conn.reader.next_frame() {
                Ok(None) => return,
                Ok(Some(frame)) => codec::decode_client(frame),
                Err(e) => {
                    // The stream is broken, logged on or not: its reason wins over
                    // `not_logged_in` (nothing after it can be framed).
                    self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                    self.logout(slot, e.logout_reason());
                    return;
                }
            };
            match decoded {
                Ok(msg) => self.message(slot, msg, gateway_in),
                Err(e) => self.malformed(slot, &e),
            }
        }
    }

    fn malformed(&mut self, slot: usize, e: &WireError) {
        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
        let Some(conn) = self.conn(slot) else { return };
        if matches!(conn.role, Role::Pending) {
            self.logout(slot, LogoutReason::NotLoggedIn);
            return;
        }
        conn.malformed += 1;
        if conn.malformed > MAX_MALFORMED {
            self.logout(slot, LogoutReason::Malformed);
            return;
        }
        let report =
            Report::Rejected { cid: ClientOrderId(e.cid().unwrap_or(0)), reason: e.reject_code(), retry_after_ms: 0 };
        self.gateway_reject(slot, report);
    }

    /// A reject the gateway makes itself: seq 0, this session only.
    fn gateway_reject(&mut self, slot: usize, report: Report) {
        let now = now_ns();
        let header = codec::ReportHeader { seq: 0, gateway_in_ns: now, engine_in_ns: 0, engine_out_ns: now };
        self.queue_server(slot, &ServerMsg::Report { header, report, possible_duplicate: false });
    }

    fn message(&mut self, slot: usize, msg: ClientMsg, gateway_in: u64) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else { return };
        let session = match &mut conn.role {
            Role::Pending => {
                match msg {
                    ClientMsg::Logon(logon) => self.logon(slot, &logon),
                    _ => self.logout(slot, LogoutReason::NotLoggedIn),
                }
                return;
            }
            Role::Subscriber | Role::Closing => return,
            Role::Session(s) => s,
        };
        let account = session.account;
        let (cid, cmd, kind) = match msg {
            ClientMsg::Logon(_) => {
                let report = Report::Rejected {
                    cid: ClientOrderId(0),
                    reason: SessionReject::NotAuthorized.code(),
                    retry_after_ms: 0,
                };
                self.gateway_reject(slot, report);
                return;
            }
            ClientMsg::Heartbeat => return,
            ClientMsg::Logout { .. } => {
                self.logout(slot, LogoutReason::ClientRequest);
                return;
            }
            ClientMsg::Replay { from_seq } => {
                // Replaces a replay in progress (its ReplayComplete is not sent).
                let end = self.streams.next_seq(account) - 1;
                session.catch_up = Some(catch_up(from_seq, end));
                return;
            }
            ClientMsg::NewOrder(o) => {
                let cmd = Command::NewOrder(NewOrder {
                    account,
                    cid: o.cid,
                    instrument: o.instrument,
                    side: o.side,
                    order_type: o.order_type,
                    price: o.price,
                    qty: o.qty,
                    tif: o.tif,
                    expire_ts: o.expire_ts,
                    post_only: o.post_only,
                    reduce_only: o.reduce_only,
                    stp: o.stp,
                });
                (o.cid, cmd, Kind::Order)
            }
            ClientMsg::Amend(a) => {
                let cmd =
                    Command::Amend(Amend { account, cid: a.cid, instrument: a.instrument, price: a.price, qty: a.qty });
                (a.cid, cmd, Kind::Order)
            }
            ClientMsg::Cancel { cid } => {
                (cid, Command::Cancel(Cancel { account, cid, on_disconnect: false }), Kind::Cancel)
            }
            ClientMsg::MassCancel { instrument, side } => {
                (ClientOrderId(0), Command::MassCancel(MassCancel { account, instrument, side }), Kind::Cancel)
            }
        };
        let verdict = session.throttle.check(kind, now_ns());
        let session_id = session.id;
        match verdict {
            Verdict::Pass => self.submit(Tag { session: session_id, correlation: gateway_in }, cmd),
            Verdict::Throttled(retry_after_ms) => {
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                let report = Report::Rejected { cid, reason: SessionReject::Throttled.code(), retry_after_ms };
                self.gateway_reject(slot, report);
            }
            Verdict::Disconnect => {
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                self.logout(slot, LogoutReason::ThrottleExceeded);
            }
        }
    }

    fn logon(&mut self, slot: usize, logon: &Logon) {
        let now = now_ns();
        let key = match self.auth.verify(logon, now) {
            Ok(key) => key.clone(),
            Err(refusal) => {
                let peer = self.conn(slot).map(|c| c.peer.to_string()).unwrap_or_default();
                tracing::warn!(key = logon.key_id, %peer, reason = %refusal, code = refusal.code(), "logon refused");
                self.counters.logon_rejects.fetch_add(1, Ordering::Relaxed);
                self.refuse(slot, refusal);
                return;
            }
        };
        // A key has one session: a new logon supersedes the old one (a client reconnecting
        // after a network failure must not wait for the server to notice the dead
        // connection). The old session ends at once, as if disconnected; its connection
        // closes as any logged-out one does.
        if let Some(&old) = self.by_key.get(&key.id) {
            self.logout(old, LogoutReason::Superseded);
        }
        let heartbeat_ms = match logon.heartbeat_ms {
            0 => DEFAULT_HEARTBEAT_MS,
            ms => ms.clamp(HEARTBEAT_MS.0, HEARTBEAT_MS.1),
        };
        let id = self.next_session;
        self.next_session += 1;
        let next_seq = self.streams.next_seq(key.account);
        let limits = self.config.limits;
        let session = Session {
            id,
            key_id: key.id,
            account: key.account,
            heartbeat: Duration::from_millis(u64::from(heartbeat_ms)),
            cancel_on_disconnect: logon.cancel_on_disconnect,
            throttle: Throttle::new(limits, now),
            catch_up: (logon.resume_from > 0).then(|| catch_up(logon.resume_from, next_seq - 1)),
        };
        self.orders.insert(id, Orders { account: key.account, ..Orders::default() });
        let Some(conn) = self.conn(slot) else { return };
        conn.role = Role::Session(Box::new(session));
        let peer = conn.peer;
        self.by_key.insert(key.id, slot);
        self.by_session.insert(id, slot);
        self.by_account.entry(key.account).or_default().push(slot);
        self.counters.logons.fetch_add(1, Ordering::Relaxed);
        self.counters.sessions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            session = id,
            key = key.id,
            account = key.account.0,
            %peer,
            next_seq,
            resume_from = logon.resume_from,
            heartbeat_ms,
            cancel_on_disconnect = logon.cancel_on_disconnect,
            "logon"
        );
        let ack = ServerMsg::LogonAck {
            session_id: id,
            next_seq,
            heartbeat_ms,
            order_rate: limits.order_rate,
            order_burst: limits.order_burst,
            cancel_rate: limits.cancel_rate,
            cancel_burst: limits.cancel_burst,
        };
        self.queue_server(slot, &ack);
    }

    fn refuse(&mut self, slot: usize, why: Refusal) {
        self.queue_server(slot, &ServerMsg::LogonReject { reason: why.code() });
        if let Some(conn) = self.conn(slot) {
            conn.closing = true;
            conn.role = Role::Closing;
        }
    }

    /// Closes a connection now: reads and drops what input is waiting (bounded), unregisters
    /// it and, if it still has a session (the client went without a logout), ends the session
    /// (logged at info, with `cause`).
    fn close(&mut self, slot: usize, cause: &'static str) {
        let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) else { return };
        discard_input(&mut conn.stream);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.dirty.remove(&slot);
        self.closed.push(slot);
        let peer = conn.peer;
        match conn.role {
            Role::Subscriber => self.subscribers.retain(|&s| s != slot),
            Role::Session(session) => {
                let (id, key, account) = (session.id, session.key_id, session.account.0);
                tracing::info!(session = id, key, account, %peer, cause, "disconnected");
                self.end_session(slot, &session);
            }
            Role::Pending | Role::Closing => tracing::debug!(%peer, cause, "connection closed"),
        }
    }

    /// Forgets a session that ended (logged out or disconnected) and, if it asked for it and
    /// the server is not shutting down, cancels its live orders.
    fn end_session(&mut self, slot: usize, session: &Session) {
        self.counters.sessions.fetch_sub(1, Ordering::Relaxed);
        if self.by_key.get(&session.key_id) == Some(&slot) {
            self.by_key.remove(&session.key_id);
        }
        self.by_session.remove(&session.id);
        if let Some(slots) = self.by_account.get_mut(&session.account) {
            slots.retain(|&s| s != slot);
            if slots.is_empty() {
                self.by_account.remove(&session.account);
            }
        }
        if session.cancel_on_disconnect && !self.shutting_down {
            self.cancel_departed(session.id);
            if let Some(o) = self.orders.get_mut(&session.id) {
                o.departed = true;
            }
        }
        self.forget_if_settled(session.id);
    }

    /// Cancels (on disconnect) the live orders of a session that is gone.
    fn cancel_departed(&mut self, session: u64) {
        let Some(o) = self.orders.get_mut(&session) else { return };
        let account = o.account;
        let cids = std::mem::take(&mut o.live);
        for cid in cids {
            let cmd = Command::Cancel(Cancel { account, cid, on_disconnect: true });
            self.counters.cancelled_on_disconnect.fetch_add(1, Ordering::Relaxed);
            self.submit(Tag { session: DISCONNECT_SESSION, correlation: session }, cmd);
        }
    }

    /// Drops what is kept of a session's orders once it is disconnected and nothing of it
    /// is in flight (a session without cancel-on-disconnect: at once).
    fn forget_if_settled(&mut self, session: u64) {
        let connected = self.by_session.contains_key(&session);
        if let Some(o) = self.orders.get(&session)
            && !connected
            && (!o.departed || o.in_flight == 0)
        {
            self.orders.remove(&session);
        }
    }

    /// Frees the slots closed in this iteration.
    fn reap(&mut self) {
        self.free.append(&mut self.closed);
    }

    // ----- the pipeline ------------------------------------------------------------------

    fn submit(&mut self, tag: Tag, cmd: Command) {
        if self.input_closed {
            return;
        }
        self.counters.commands.fetch_add(1, Ordering::Relaxed);
        if let Some(o) = self.orders.get_mut(&tag.session) {
            o.in_flight += 1;
        }
        if !self.backlog.is_empty() {
            self.backlog.push_back((tag, cmd));
            return;
        }
        match self.input.submit(tag, cmd) {
            Ok(()) => {}
            Err(SubmitError::Full(cmd)) => self.backlog.push_back((tag, cmd)),
            Err(SubmitError::Closed(_)) => self.input_closed = true,
        }
    }

    fn submit_backlog(&mut self) -> bool {
        let mut worked = false;
        while let Some((tag, cmd)) = self.backlog.pop_front() {
            match self.input.submit(tag, cmd) {
                Ok(()) => worked = true,
                Err(SubmitError::Full(cmd)) => {
                    self.backlog.push_front((tag, cmd));
                    break;
                }
                Err(SubmitError::Closed(_)) => {
                    self.input_closed = true;
                    self.backlog.clear();
                }
            }
        }
        worked
    }

    /// Hands every released batch to the streams and the feed and routes the results.
    /// `Err` when the pipeline's output has ended.
    fn drain_reports(&mut self) -> Result<usize, ()> {
        let mut n = 0;
        let mut events = std::mem::take(&mut self.events);
        let result = loop {
            events.clear();
            let (seq, ts, tag) = match self.rx.try_recv() {
                Ok(b) => {
                    events.extend_from_slice(b.events);
                    (b.seq.0, b.ts.0, b.tag)
                }
                Err(TryRecvError::Empty) => break Ok(n),
                Err(TryRecvError::Closed) => break Err(()),
            };
            n += 1;
            if seq <= self.recovered {
                continue;
            }
            self.on_batch(ts, tag, &events);
        };
        self.events = events;
        result
    }

    /// One command's events: reports, market data, order ownership, listings.
    fn on_batch(&mut self, ts: u64, tag: Tag, events: &[Event]) {
        {
            let engine_out = now_ns();
            let gateway_in =
                if tag.session == CONTROL_SESSION || tag.session == DISCONNECT_SESSION { 0 } else { tag.correlation };
            let ack_ns = (gateway_in != 0).then(|| engine_out.saturating_sub(gateway_in));
            metrics::count(&self.counters.trading, events, ack_ns, &mut self.liquidated);
            self.open_interest.on_events(events, &self.counters.trading);
            self.routed.clear();
            self.streams.on_batch(events, ts, gateway_in, engine_out, &mut self.routed);
            self.md_msgs.clear();
            self.feed.on_batch(events, &mut self.md_msgs);
            // Ownership of live orders, for cancel-on-disconnect.
            for ev in events {
                match *ev {
                    Event::Accepted { order_id, cid, .. } => {
                        if let Some(o) = self.orders.get_mut(&tag.session) {
                            self.owners.insert(order_id, (tag.session, cid));
                            o.live.insert(cid);
                        }
                    }
                    Event::Cancelled { order_id, leaves, .. } if leaves == Qty::ZERO => self.order_done(order_id),
                    Event::Trade(t) => {
                        if t.maker_leaves == Qty::ZERO {
                            self.order_done(t.maker_order_id);
                        }
                        if t.taker_leaves == Qty::ZERO {
                            self.order_done(t.taker_order_id);
                        }
                    }
                    Event::InstrumentListed { instrument } if tag.session == CONTROL_SESSION => {
                        let spec =
                            self.listings.lock().unwrap_or_else(PoisonError::into_inner).remove(&tag.correlation);
                        if let Some(spec) = spec {
                            let def = definition(instrument, spec.symbol.as_str(), spec.tick_size, spec.lot_size);
                            self.definitions.insert(instrument, def);
                            self.broadcast_definition(def);
                        }
                    }
                    _ => {}
                }
            }
            self.route_reports();
            self.broadcast_md();
            if let Some(o) = self.orders.get_mut(&tag.session) {
                o.in_flight = o.in_flight.saturating_sub(1);
                if o.departed {
                    // An order that was in flight when the session went, and rested.
                    self.cancel_departed(tag.session);
                    self.forget_if_settled(tag.session);
                }
            }
        }
    }

    fn order_done(&mut self, order_id: OrderId) {
        if let Some((session, cid)) = self.owners.remove(&order_id)
            && let Some(o) = self.orders.get_mut(&session)
        {
            o.live.remove(&cid);
        }
    }

    /// Writes this batch's reports to the live sessions of their accounts.
    fn route_reports(&mut self) {
        let routed = std::mem::take(&mut self.routed);
        for &(account, seq) in &routed {
            let n = self.by_account.get(&account).map_or(0, Vec::len);
            let Some(stored) = self.streams.get(account, seq) else { continue };
            let mut buf = std::mem::take(&mut self.scratch);
            buf.clear();
            let msg = ServerMsg::Report { header: stored.header, report: stored.report, possible_duplicate: false };
            codec::encode_server(&msg, &mut buf);
            // Backwards: a session cut off as slow leaves the list while it is walked.
            for i in (0..n).rev() {
                let Some(&slot) = self.by_account.get(&account).and_then(|v| v.get(i)) else { continue };
                let live = matches!(
                    self.conns.get(slot).and_then(Option::as_ref),
                    Some(Conn { role: Role::Session(s), .. }) if s.catch_up.is_none()
                );
                if live {
                    self.counters.reports.fetch_add(1, Ordering::Relaxed);
                    self.queue(slot, &buf);
                }
            }
            self.scratch = buf;
        }
        self.routed = routed;
    }

    /// Feeds sessions in catch-up from the store, a chunk ahead of their sockets.
    fn pump_catch_ups(&mut self) -> bool {
        let mut worked = false;
        for slot in 0..self.conns.len() {
            let Some(Conn { role: Role::Session(s), out, out_at, closing: false, dead: false, .. }) =
                self.conns[slot].as_mut()
            else {
                continue;
            };
            let Some(mut cu) = s.catch_up else { continue };
            let account = s.account;
            let pending = out.len() - *out_at;
            let mut buf = Vec::new();
            let end = self.streams.next_seq(account) - 1;
            while pending + buf.len() < CATCH_UP_CHUNK {
                if cu.next > cu.replay_end && !cu.completed {
                    let (first, last) = if cu.first == 0 { (0, 0) } else { (cu.first, cu.replay_end) };
                    codec::encode_server(&ServerMsg::ReplayComplete { first, last }, &mut buf);
                    cu.completed = true;
                    continue;
                }
                let Some(stored) = self.streams.get(account, cu.next) else { break };
                let msg = ServerMsg::Report {
                    header: stored.header,
                    report: stored.report,
                    possible_duplicate: cu.next <= cu.replay_end,
                };
                codec::encode_server(&msg, &mut buf);
                cu.next += 1;
            }
            let caught_up = cu.completed && cu.next > end;
            s.catch_up = if caught_up { None } else { Some(cu) };
            if !buf.is_empty() {
                worked = true;
                // The catch-up's own bound is the chunk; the connection's bound still holds.
                self.queue(slot, &buf);
            }
        }
        worked
    }

    // ----- market data -------------------------------------------------------------------

    fn send_md_snapshot(&mut self, slot: usize) {
        let md_seq = self.feed.md_seq();
        let mut msgs = Vec::new();
        for def in self.definitions.values() {
            let mut d = *def;
            if let MdMsg::InstrumentDefinition { md_seq: s, .. } = &mut d {
                *s = md_seq;
            }
            msgs.push(d);
        }
        for &id in self.definitions.keys() {
            self.feed.snapshot(id, &mut msgs);
        }
        let mut buf = Vec::new();
        for m in &msgs {
            codec::encode_md(m, false, &mut buf);
        }
        // A snapshot is as big as the book: the subscriber's bound is raised by its size, so
        // that a big book does not cut off every new subscriber at once.
        if let Some(conn) = self.conn(slot) {
            conn.allowance = buf.len();
        }
        self.queue(slot, &buf);
    }

    fn broadcast_definition(&mut self, mut def: MdMsg) {
        if let MdMsg::InstrumentDefinition { md_seq, .. } = &mut def {
            *md_seq = self.feed.md_seq();
        }
        let mut buf = Vec::new();
        codec::encode_md(&def, false, &mut buf);
        for i in (0..self.subscribers.len()).rev() {
            self.queue(self.subscribers[i], &buf);
        }
    }

    fn broadcast_md(&mut self) {
        if self.md_msgs.is_empty() {
            return;
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let last = self.md_msgs.len() - 1;
        for (i, m) in self.md_msgs.iter().enumerate() {
            codec::encode_md(m, i == last, &mut buf);
        }
        // Backwards: a subscriber cut off as slow leaves the list while it is walked.
        for i in (0..self.subscribers.len()).rev() {
            if let Some(&slot) = self.subscribers.get(i) {
                self.queue(slot, &buf);
            }
        }
        self.scratch = buf;
    }

    // ----- timers and shutdown -----------------------------------------------------------

    fn timers(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conns[slot].as_ref() else { continue };
            let (idle_send, idle_recv) = (now.duration_since(conn.last_send), now.duration_since(conn.last_recv));
            if conn.dead {
                continue;
            }
            if conn.closing {
                // Bounded: a client that neither reads its logout nor ends its stream.
                match conn.fin_at {
                    Some(at) if now.duration_since(at) >= CLOSE_GRACE => {
                        self.close(slot, "no end of stream after the logout")
                    }
                    None if idle_send >= CLOSE_GRACE => self.close(slot, "the logout was not read"),
                    _ => {}
                }
                continue;
            }
            match &conn.role {
                Role::Closing => {}
                Role::Pending => {
                    if now.duration_since(conn.opened) >= LOGON_TIMEOUT {
                        self.logout(slot, LogoutReason::NotLoggedIn);
                    }
                }
                Role::Session(s) => {
                    let hb = s.heartbeat;
                    if idle_recv >= hb * 3 {
                        self.logout(slot, LogoutReason::HeartbeatTimeout);
                    } else if idle_send >= hb && conn.pending() == 0 {
                        self.queue_server(slot, &ServerMsg::Heartbeat);
                    }
                }
                Role::Subscriber => {
                    if idle_send >= MD_HEARTBEAT && conn.pending() == 0 {
                        let mut buf = Vec::new();
                        codec::encode_md(&MdMsg::Heartbeat { md_seq: self.feed.md_seq() }, false, &mut buf);
                        self.queue(slot, &buf);
                    }
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
            if matches!(self.conns[slot].as_ref(), Some(Conn { role: Role::Session(_), .. })) {
                self.logout(slot, LogoutReason::ServerShutdown);
            }
        }
        self.flush_dirty();
        for slot in 0..self.conns.len() {
            if let Some(conn) = self.conns[slot].as_mut() {
                conn.dead = true;
            }
            self.close(slot, "server shutdown");
        }
    }
}

/// A catch-up from `from` (0 means 1) over a stream whose last report is `end`. Asking past
/// the end replays nothing, and the session goes on from the next report (`end + 1`),
/// whatever number it asked for: a report made before the catch-up ends is never skipped.
fn catch_up(from: u64, end: u64) -> CatchUp {
    let next = from.max(1).min(end.saturating_add(1));
    let first = if next <= end { next } else { 0 };
    CatchUp { next, replay_end: end, first, completed: false }
}

/// Reads and drops what the peer sent and nobody will read (at most 1 MiB, without
/// waiting): the kernel answers the close of a socket with unread input with a reset, which
/// throws away what the peer has not read yet.
fn discard_input(stream: &mut TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    for _ in 0..64 {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_past_next_seq_skips_no_report_made_meanwhile() {
        // Reports 1..=5 exist; asking from 9 replays nothing and goes on from 6 (before,
        // the session went on from 9: reports 6..=8, made before its first catch-up pass,
        // were held back from the live stream and then never sent).
        let cu = catch_up(9, 5);
        assert_eq!((cu.next, cu.replay_end, cu.first), (6, 5, 0));
        // From next_seq exactly: the same.
        let cu = catch_up(6, 5);
        assert_eq!((cu.next, cu.first), (6, 0));
        // Within the stream: replayed from there; 0 means 1.
        let cu = catch_up(3, 5);
        assert_eq!((cu.next, cu.replay_end, cu.first), (3, 5, 3));
        assert_eq!(catch_up(0, 5).first, 1);
        // An empty stream, a request from the far end of the range.
        let cu = catch_up(u64::MAX, 0);
        assert_eq!((cu.next, cu.first), (1, 0));
    }
}
