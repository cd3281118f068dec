//! `l2x bench wire`: order-to-ack latency over loopback TCP through the whole gateway, next
//! to a raw TCP ping-pong of the same message sizes.
//!
//! ```text
//!  load thread (one mio poll, N sessions)          gateway thread          sequencer thread
//!  request i due at t0 + i/rate ──NewOrder/Cancel──▶ decode, throttle, ──▶ journal, apply
//!  (sent when due; a late send is                    submit                     │
//!   charged from its due time)                                                  ▼
//!  ack received ◀──────────────── Accepted / Cancelled / Rejected ◀── reports, routed
//!  latency = ack received − due  (HDR histogram: coordinated omission corrected)
//!
//!  floor: a blocking client and an echo thread, a request of the NewOrder frame's size
//!  answered with one of the Accepted frame's size, one at a time
//! ```
//!
//! # Method
//!
//! 1. An [`l2x_node::Node`], as `l2x serve` runs it (durability `os`, a fresh journal in a
//!    temporary directory, the gateway on loopback with throttles out of the way, no
//!    settlement, no metrics endpoint); one instrument, `--sessions` keys on as many
//!    accounts, each funded, logged on by the benchmark's own non-blocking client.
//! 2. The seeded mix: 60 % post-only limit orders resting a few ticks off the mark, 30 %
//!    cancels of the session's oldest live order, 10 % IOC orders that cross (trades). Each
//!    request is *acknowledged* by the first report for its client order id (accepted or
//!    rejected for an order, cancelled or rejected for a cancel).
//! 3. An open-loop schedule over all sessions in turn at `--rate` requests per second: a
//!    request is due at `t0 + i/rate`, sent when due (never early), and its latency is
//!    `ack received − due`, so a request that waits behind a slow one is charged its wait.
//!    The first `--warmup` requests are not recorded.
//! 4. The floor, in the same process before the run: a TCP client and an echo thread on
//!    loopback, request and answer of the same sizes as NewOrder and Accepted, `--pingpong`
//!    round trips one after the other; both ends poll their non-blocking sockets and yield
//!    between empty polls, as the gateway and the load thread do (the figure the issue asks
//!    to compare with). The same with blocking reads is reported too: there every message
//!    wakes a sleeping thread, which costs a virtual machine far more than the network path.
//!
//! 5. Each node mode of `--mode` in turn, on a fresh journal, with the same seed and the same
//!    schedule: `threads` (the multi-thread pipeline: a gateway thread and a sequencer
//!    thread) and `single-thread` (`pipeline.mode = "single-thread"`: the gateway thread
//!    sequences, journals and applies inline, busy-polling). Each mode's figures are also
//!    given as ratios to the floor of the same run.
//! 6. **Saturation**: a node that acknowledges more slowly than requests are offered builds a
//!    queue, and its latencies then measure the queue. A mode is reported *saturated* when
//!    the measured requests were sent or acknowledged at less than [`SATURATED_BELOW`] of the
//!    offered rate (acknowledged: measured requests over the time from the first measured
//!    request's due time to the last measured ack); the table says so on the mode's line.
//!
//! In the `threads` mode the load thread, the gateway thread and the sequencer share the
//! machine's cores; each yields between empty polls, so that on the 2-core development VM
//! none of them keeps a core from the others for a whole scheduler slice. In the
//! `single-thread` mode the node's thread never yields: pin it (`--pin-gateway`) to a core
//! the load thread (`--pin-client`) is not on.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use hdrhistogram::Histogram;
use l2x_gateway::auth::Keys;
use l2x_node::Node;
use l2x_node::config::{ChainKind, Config, InstrumentEntry, ModeName};
use l2x_protocol::client::Client;
use l2x_protocol::codec::{self, ClientMsg, FrameReader, Limits, Report as Wired, ServerMsg, WireOrder};
use l2x_protocol::logon::Key;
use l2x_types::{AccountId, ClientOrderId, InstrumentId, Price, Qty, Side, TimeInForce};
use mio::{Events, Interest, Poll, Token};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::engine::parse_rate;
use crate::machine::{CpuMeter, Machine};

/// Options of `l2x bench wire`.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Sessions (each its own key and account) (1 to 1,024).
    #[arg(long, default_value_t = 8, value_parser = crate::ranged::<usize>(1, 1_024))]
    pub sessions: usize,
    /// Offered rate, requests per second over all sessions (`k`, `M` suffixes allowed).
    #[arg(long, value_parser = parse_rate, default_value = "100k")]
    pub rate: u64,
    /// Measured requests (1 to 100,000,000).
    #[arg(long, default_value_t = 300_000, value_parser = crate::ranged::<usize>(1, 100_000_000))]
    pub requests: usize,
    /// Requests sent first and not recorded (0 to 100,000,000).
    #[arg(long, default_value_t = 50_000, value_parser = crate::ranged::<usize>(0, 100_000_000))]
    pub warmup: usize,
    /// Round trips of the raw TCP floor (1 to 100,000,000).
    #[arg(long, default_value_t = 50_000, value_parser = crate::ranged::<usize>(1, 100_000_000))]
    pub pingpong: usize,
    /// Seed of the request mix.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Pin the load thread to this core (0 to 1,023).
    #[arg(long, value_parser = crate::ranged::<usize>(0, 1_023))]
    pub pin_client: Option<usize>,
    /// Pin the gateway thread to this core (0 to 1,023).
    #[arg(long, value_parser = crate::ranged::<usize>(0, 1_023))]
    pub pin_gateway: Option<usize>,
    /// Pin the sequencer thread to this core, in the `threads` mode (0 to 1,023).
    #[arg(long, value_parser = crate::ranged::<usize>(0, 1_023))]
    pub pin_sequencer: Option<usize>,
    /// The node's modes to measure, in this order, each on a fresh journal.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "threads,single-thread")]
    pub mode: Vec<NodeMode>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// A mode acknowledging (or the load sending) below this share of the offered rate is
/// saturated.
pub const SATURATED_BELOW: f64 = 0.97;

/// `--mode` values: the node's `pipeline.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NodeMode {
    /// The multi-thread pipeline (`pipeline.mode = "threads"`).
    Threads,
    /// One thread polls, sequences, journals and applies (`pipeline.mode = "single-thread"`).
    SingleThread,
}

impl NodeMode {
    fn name(self) -> &'static str {
        match self {
            NodeMode::Threads => "threads",
            NodeMode::SingleThread => "single-thread",
        }
    }
}

/// Latency percentiles, nanoseconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th.
    pub p90: u64,
    /// 99th.
    pub p99: u64,
    /// 99.9th.
    pub p999: u64,
    /// 99.99th.
    pub p9999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: u64,
    /// Samples.
    pub count: u64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a mean of nanoseconds")]
            mean: h.mean() as u64,
            count: h.len(),
        }
    }
}

/// What `l2x bench wire` measured: the floor, then each mode.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// Requests per second offered.
    pub offered_rate: u64,
    /// Sessions.
    pub sessions: usize,
    /// Measured requests per mode.
    pub requests: usize,
    /// Unrecorded requests first.
    pub warmup: usize,
    /// Seed of the mix.
    pub seed: u64,
    /// The raw loopback TCP round trip of the same sizes, both ends polling (as the gateway
    /// and the load thread wait): the floor.
    pub tcp_pingpong_ns: Percentiles,
    /// The same with blocking reads (each message wakes a sleeping thread).
    pub tcp_pingpong_blocking_ns: Percentiles,
    /// Each mode measured, in `--mode` order.
    pub modes: Vec<ModeReport>,
}

/// One mode's run.
#[derive(Clone, Debug, Serialize)]
pub struct ModeReport {
    /// `threads` or `single-thread`.
    pub mode: NodeMode,
    /// Measured requests sent per second.
    pub achieved_rate: u64,
    /// Measured requests acknowledged per second (to the last measured ack).
    pub acked_rate: u64,
    /// The sent or acknowledged rate was below [`SATURATED_BELOW`] of the offered rate: the
    /// latencies measure a queue.
    pub saturated: bool,
    /// Order-to-ack latency (ack received − due), every request kind.
    pub order_to_ack_ns: Percentiles,
    /// The same for new orders only.
    pub new_order_to_ack_ns: Percentiles,
    /// The same for cancels only.
    pub cancel_to_ack_ns: Percentiles,
    /// p50 order-to-ack over p50 ping-pong.
    pub p50_over_pingpong: f64,
    /// p99 order-to-ack over p99 ping-pong.
    pub p99_over_pingpong: f64,
    /// Fills reported during the run (both sides).
    pub fills: u64,
    /// Rejects during the run (engine and gateway).
    pub rejects: u64,
    /// CPU other processes used meanwhile, in cores.
    pub other_load_cores: Option<f64>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// BTC-PERP as the benchmark lists it, its first oracle price the mark.
fn instrument() -> InstrumentEntry {
    let text = |s: &str| s.to_string();
    InstrumentEntry {
        symbol: text("BTC-PERP"),
        tick_size: text("0.5"),
        lot_size: text("0.001"),
        initial_margin: text("0.05"),
        maintenance_margin: text("0.03"),
        max_order_qty: text("100"),
        max_position_qty: text("1000000"),
        price_band: text("0.1"),
        maker_fee: Some(text("-0.0001")),
        taker_fee: Some(text("0.0005")),
        liquidation_fee: Some(text("0.01")),
        impact_notional: Some(text("10000")),
        funding_interest: Some(text("0")),
        funding_clamp: Some(text("0.05")),
        // MARK ticks of 0.5.
        oracle_price: text("50000"),
    }
}

/// The mark, in ticks of 0.5: 50,000 USDC.
const MARK: i64 = 100_000;

/// The node under test in `mode`: a fresh journal in `dir` (durability `os`, no snapshots
/// but the last), loopback ports, throttles out of the way, one instrument at [`MARK`], every
/// session's account funded; no settlement, no metrics endpoint.
fn node_config(opts: &Options, mode: NodeMode, dir: &std::path::Path) -> Config {
    let mut config = Config { data_dir: dir.to_path_buf(), ..Config::default() };
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    (config.ports.order_entry, config.ports.market_data, config.ports.metrics_enabled) = (any, any, false);
    config.gateway.set_limits(Limits {
        order_rate: u32::MAX,
        order_burst: u32::MAX,
        cancel_rate: u32::MAX,
        cancel_burst: u32::MAX,
    });
    config.gateway.max_outbound_bytes = 64 << 20;
    config.gateway.core = opts.pin_gateway;
    config.pipeline.snapshot_every = 0;
    config.pipeline.sequencer_core = opts.pin_sequencer;
    config.pipeline.mode = match mode {
        NodeMode::Threads => ModeName::Threads,
        NodeMode::SingleThread => ModeName::SingleThread,
    };
    config.accounts.deposit_usdc = 1_000_000_000;
    config.instruments = vec![instrument()];
    config.settlement.chain = ChainKind::None;
    config
}

/// Runs the benchmark.
///
/// # Errors
/// Setup failures (sockets, journal) and a run that does not complete.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    ensure!(opts.sessions > 0 && opts.rate > 0 && opts.requests > 0, "sessions, rate and requests must be positive");
    // The machine as a whole (the load thread, pinned or not, is its own).
    let machine = Machine::detect(opts.pin_client);
    let floor = pingpong(opts.pingpong, true)?;
    let blocking_floor = pingpong(opts.pingpong, false)?;
    let tcp_pingpong_ns = Percentiles::of(&floor);
    let mut modes = Vec::new();
    for &mode in &opts.mode {
        modes.push(run_mode(opts, mode, &tcp_pingpong_ns)?);
    }
    Ok(Report {
        machine,
        offered_rate: opts.rate,
        sessions: opts.sessions,
        requests: opts.requests,
        warmup: opts.warmup,
        seed: opts.seed,
        tcp_pingpong_ns,
        tcp_pingpong_blocking_ns: Percentiles::of(&blocking_floor),
        modes,
    })
}

/// One mode: a node on a fresh journal, the load, the node stopped.
fn run_mode(opts: &Options, mode: NodeMode, floor: &Percentiles) -> anyhow::Result<ModeReport> {
    let dir = crate::pipeline::temp_dir(&std::env::temp_dir(), "wire")?;
    let result = (|| {
        let keys: Vec<Key> = (1..=opts.sessions as u64)
            .map(|i| Key::new(i, AccountId(i), [u8::try_from(i % 251).unwrap_or(1); 32]))
            .collect();
        let node = Node::start(&node_config(opts, mode, &dir), Keys::from_keys(keys.clone())?)?;
        // On a thread of its own: the load pins its thread, and threads inherit their
        // parent's affinity, so a pinned caller would confine the next mode's node to the
        // client's core (and `--pin-gateway` elsewhere would then be refused).
        let addr = node.server().order_entry_addr();
        let measured = std::thread::scope(|s| s.spawn(|| load(opts, addr, &keys)).join())
            .map_err(|_| anyhow::anyhow!("the load thread panicked"))?;
        node.stop()?;
        measured
    })();
    crate::pipeline::remove(&dir);
    let m = result?;
    let order_to_ack_ns = Percentiles::of(&m.all);
    #[allow(clippy::cast_precision_loss, reason = "ratios of latencies and rates")]
    let (p50_over_pingpong, p99_over_pingpong, saturated) = (
        order_to_ack_ns.p50 as f64 / floor.p50.max(1) as f64,
        order_to_ack_ns.p99 as f64 / floor.p99.max(1) as f64,
        (m.achieved_rate.min(m.acked_rate) as f64) < SATURATED_BELOW * opts.rate as f64,
    );
    Ok(ModeReport {
        mode,
        achieved_rate: m.achieved_rate,
        acked_rate: m.acked_rate,
        saturated,
        order_to_ack_ns,
        new_order_to_ack_ns: Percentiles::of(&m.new),
        cancel_to_ack_ns: Percentiles::of(&m.cancel),
        p50_over_pingpong,
        p99_over_pingpong,
        fills: m.fills,
        rejects: m.rejects,
        other_load_cores: m.other_load_cores,
    })
}

/// The frame sizes of a NewOrder and of an Accepted report.
fn frame_sizes() -> (usize, usize) {
    let mut a = Vec::new();
    codec::encode_client(&ClientMsg::NewOrder(order(1, Side::Buy, MARK, TimeInForce::Gtc, true)), &mut a);
    let mut b = Vec::new();
    let report = Wired::Accepted {
        cid: ClientOrderId(1),
        order_id: l2x_types::OrderId(1),
        instrument: InstrumentId(0),
        side: Side::Buy,
        price: Price(MARK),
        qty: Qty(1),
    };
    codec::encode_server(
        &ServerMsg::Report { header: codec::ReportHeader::default(), report, possible_duplicate: false },
        &mut b,
    );
    (a.len(), b.len())
}

/// The raw loopback round trip of the benchmark's message sizes: a client and an echo
/// thread, each waiting for the other's bytes either in a blocking read (`spin` false: the
/// kernel wakes the thread) or by polling a non-blocking socket and yielding between empty
/// polls (`spin` true: how the gateway and the load thread wait).
fn pingpong(n: usize, spin: bool) -> anyhow::Result<Histogram<u64>> {
    let (req, resp) = frame_sizes();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        s.set_nonblocking(spin)?;
        let (mut inb, out) = (vec![0u8; req], vec![7u8; resp]);
        loop {
            if read_full(&mut s, &mut inb).is_err() {
                return Ok(());
            }
            s.write_all(&out)?;
        }
    });
    let mut c = TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    c.set_nonblocking(spin)?;
    let (out, mut inb) = (vec![7u8; req], vec![0u8; resp]);
    let mut h = histogram();
    for i in 0..n + n / 10 {
        let t = Instant::now();
        c.write_all(&out)?;
        read_full(&mut c, &mut inb)?;
        if i >= n / 10 {
            h.record(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1))?;
        }
    }
    drop(c);
    let _ = echo.join();
    Ok(h)
}

/// Reads exactly `buf.len()` bytes from a blocking or non-blocking socket.
fn read_full(s: &mut TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        match s.read(&mut buf[at..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn order(cid: u64, side: Side, price: i64, tif: TimeInForce, post_only: bool) -> WireOrder {
    WireOrder { tif, post_only, ..WireOrder::limit(ClientOrderId(cid), InstrumentId(0), side, Price(price), Qty(100)) }
}

/// One session of the load thread.
struct Conn {
    stream: mio::net::TcpStream,
    reader: FrameReader,
    /// Requests awaiting their ack: cid → (due, new order?, recorded?).
    pending: BTreeMap<u64, (Instant, bool, bool)>,
    /// Live resting orders (client order ids grow, so the first is the oldest).
    live: BTreeSet<u64>,
    next_cid: u64,
}

/// What the load thread measured.
struct Measured {
    /// Order-to-ack of every request, of new orders, of cancels.
    all: Histogram<u64>,
    new: Histogram<u64>,
    cancel: Histogram<u64>,
    /// Measured requests sent per second.
    achieved_rate: u64,
    /// Measured requests acknowledged per second.
    acked_rate: u64,
    fills: u64,
    rejects: u64,
    /// The other cores' load.
    other_load_cores: Option<f64>,
}

/// The acks counted so far.
struct Tally {
    all: Histogram<u64>,
    new: Histogram<u64>,
    cancel: Histogram<u64>,
    fills: u64,
    rejects: u64,
    /// When the last measured request was acknowledged.
    last_ack: Option<Instant>,
}

impl Conn {
    /// Logs on with the client library (blocking), then takes the socket over for `poll`.
    fn log_on(poll: &Poll, token: usize, addr: SocketAddr, key: &Key) -> anyhow::Result<Conn> {
        let client =
            Client::connect(addr, key, l2x_protocol::client::Options { heartbeat_ms: 60_000, ..Default::default() })?;
        let (std_stream, reader) = client.into_parts();
        std_stream.set_nonblocking(true)?;
        let mut stream = mio::net::TcpStream::from_std(std_stream);
        poll.registry().register(&mut stream, Token(token), Interest::READABLE)?;
        Ok(Conn { stream, reader, pending: BTreeMap::new(), live: BTreeSet::new(), next_cid: 1 })
    }

    /// The next request of the mix, due at `due`: 30 % cancels of the oldest live order,
    /// 10 % IOC orders through the touch, the rest post-only quotes near the mark.
    fn next_request(&mut self, rng: &mut ChaCha8Rng, due: Instant, record: bool) -> ClientMsg {
        let roll = rng.random_range(0..100);
        if roll < 30 && !self.live.is_empty() {
            let cid = self.live.pop_first().unwrap_or(0);
            self.pending.insert(cid, (due, false, record));
            return ClientMsg::Cancel { cid: ClientOrderId(cid) };
        }
        let cid = self.next_cid;
        self.next_cid += 1;
        let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
        let sign = if side == Side::Buy { -1 } else { 1 };
        self.pending.insert(cid, (due, true, record));
        if roll < 40 {
            // Crosses the touch: trades against other sessions' quotes.
            ClientMsg::NewOrder(order(cid, side, MARK - sign * 200, TimeInForce::Ioc, false))
        } else {
            let away = rng.random_range(1..50);
            ClientMsg::NewOrder(order(cid, side, MARK + sign * away, TimeInForce::Gtc, true))
        }
    }

    /// Reads what the socket has, and takes every whole report: returns how many pending
    /// requests they acknowledged.
    fn read_acks(&mut self, buf: &mut [u8], tally: &mut Tally) -> anyhow::Result<usize> {
        loop {
            match self.stream.read(buf) {
                Ok(0) => bail!("the gateway closed a session"),
                Ok(n) => self.reader.extend(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let received = Instant::now();
        let mut acked = 0;
        while let Some(frame) = self.reader.next_frame()? {
            let ServerMsg::Report { report, .. } = codec::decode_server(frame)? else { continue };
            acked += usize::from(self.on_report(&report, received, tally)?);
        }
        Ok(acked)
    }

    /// One report: whether it acknowledged a pending request (recorded if measured).
    fn on_report(&mut self, report: &Wired, received: Instant, tally: &mut Tally) -> anyhow::Result<bool> {
        let (cid, acks_new, acks_cancel) = match *report {
            Wired::Accepted { cid, .. } => (cid.0, true, false),
            Wired::Rejected { cid, .. } => {
                tally.rejects += 1;
                (cid.0, true, true)
            }
            Wired::Cancelled { cid, leaves, .. } => {
                if leaves == Qty::ZERO {
                    self.live.remove(&cid.0);
                }
                (cid.0, false, true)
            }
            Wired::Fill { cid, leaves, .. } => {
                tally.fills += 1;
                if leaves == Qty::ZERO {
                    self.live.remove(&cid.0);
                }
                return Ok(false);
            }
            // The load sends no withdrawals: nothing to acknowledge.
            Wired::Amended { .. } | Wired::Withdrawn { .. } => return Ok(false),
        };
        let Some(&(due, is_new, record)) = self.pending.get(&cid) else { return Ok(false) };
        if (is_new && !acks_new) || (!is_new && !acks_cancel) {
            return Ok(false);
        }
        self.pending.remove(&cid);
        if is_new && matches!(report, Wired::Accepted { .. }) {
            self.live.insert(cid);
        }
        if record {
            tally.last_ack = Some(received);
            let ns = u64::try_from(received.duration_since(due).as_nanos()).unwrap_or(u64::MAX).max(1);
            tally.all.record(ns)?;
            if is_new { tally.new.record(ns)? } else { tally.cancel.record(ns)? }
        }
        Ok(true)
    }
}

/// The load: logs the sessions on, then runs the open-loop schedule (request `i` is due at
/// `i / rate` after the start, whenever it is actually sent: coordinated omission counted).
fn load(opts: &Options, addr: SocketAddr, keys: &[Key]) -> anyhow::Result<Measured> {
    if let Some(core) = opts.pin_client {
        l2x_sequencer::pin::pin_current_thread(core).map_err(|e| anyhow::anyhow!("--pin-client: {e}"))?;
    }
    let mut poll = Poll::new()?;
    let mut conns = keys
        .iter()
        .enumerate()
        .map(|(i, key)| Conn::log_on(&poll, i, addr, key))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut tally =
        Tally { all: histogram(), new: histogram(), cancel: histogram(), fills: 0, rejects: 0, last_ack: None };
    let total = opts.warmup + opts.requests;
    let interval_ns = 1_000_000_000u128 / u128::from(opts.rate);
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0u8; 256 * 1024];
    let mut out = Vec::with_capacity(128);
    let (mut sent, mut outstanding) = (0usize, 0usize);
    let t0 = Instant::now();
    let (mut measured_start, mut last_send) = (t0, t0);
    let meter = CpuMeter::start();
    while sent < total || outstanding > 0 {
        let now = Instant::now();
        if sent < total {
            let due = t0 + Duration::from_nanos(u64::try_from(interval_ns * sent as u128).unwrap_or(u64::MAX));
            if now >= due {
                if sent == opts.warmup {
                    measured_start = due;
                }
                let n_conns = conns.len();
                let c = &mut conns[sent % n_conns];
                out.clear();
                codec::encode_client(&c.next_request(&mut rng, due, sent >= opts.warmup), &mut out);
                write_all_nonblocking(&mut c.stream, &out)?;
                (sent, outstanding, last_send) = (sent + 1, outstanding + 1, now);
            }
        } else if now.duration_since(last_send) > Duration::from_secs(30) {
            bail!("{outstanding} requests were never acknowledged");
        }
        poll.poll(&mut events, Some(Duration::ZERO))?;
        if events.is_empty() {
            // Nothing to read and nothing due: give the core to the gateway or the sequencer.
            std::thread::yield_now();
        }
        for event in &events {
            outstanding -= conns[event.token().0].read_acks(&mut buf, &mut tally)?;
        }
    }
    let other = meter.and_then(|m| m.other_cores());
    let rate = |until: Instant| {
        let secs = until.duration_since(measured_start).as_secs_f64().max(1e-9);
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a rate"
        )]
        let rate = (opts.requests as f64 / secs) as u64;
        rate
    };
    Ok(Measured {
        achieved_rate: rate(last_send),
        acked_rate: rate(tally.last_ack.unwrap_or(last_send)),
        all: tally.all,
        new: tally.new,
        cancel: tally.cancel,
        fills: tally.fills,
        rejects: tally.rejects,
        other_load_cores: other,
    })
}

/// Writes a whole request on a non-blocking socket (a request is tiny: the socket takes it
/// unless the gateway stopped reading, which is then waited out).
fn write_all_nonblocking(stream: &mut mio::net::TcpStream, mut bytes: &[u8]) -> anyhow::Result<()> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => bail!("the gateway closed a session"),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {
                std::hint::spin_loop();
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Report {
    /// The report as one JSON object.
    ///
    /// # Errors
    /// Serialization errors (none expected).
    pub fn json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }

    /// A plain-text table.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.machine.summary("client pinned"));
        let _ = writeln!(
            s,
            "{} sessions, offered {} requests/s, {} measured after {} warm-up per mode, seed {}",
            self.sessions, self.offered_rate, self.requests, self.warmup, self.seed,
        );
        let line = |s: &mut String, name: &str, p: &Percentiles| {
            let _ = writeln!(
                s,
                "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name, p.p50, p.p90, p.p99, p.p999, p.p9999, p.max
            );
        };
        let _ = writeln!(
            s,
            "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "ns", "p50", "p90", "p99", "p99.9", "p99.99", "max"
        );
        line(&mut s, "raw TCP ping-pong", &self.tcp_pingpong_ns);
        line(&mut s, "  blocking reads", &self.tcp_pingpong_blocking_ns);
        for m in &self.modes {
            let _ = writeln!(
                s,
                "mode {}: sent {}/s, acknowledged {}/s; {} fills, {} rejects; other load {}",
                m.mode.name(),
                m.achieved_rate,
                m.acked_rate,
                m.fills,
                m.rejects,
                m.other_load_cores.map_or("unknown".into(), |c| format!("{c:.2} cores")),
            );
            if m.saturated {
                let _ = writeln!(
                    s,
                    "  SATURATED: below {:.0} % of the offered rate; the latencies below measure a queue",
                    SATURATED_BELOW * 100.0
                );
            }
            line(&mut s, "  order-to-ack (all)", &m.order_to_ack_ns);
            line(&mut s, "    new orders", &m.new_order_to_ack_ns);
            line(&mut s, "    cancels", &m.cancel_to_ack_ns);
            let _ = writeln!(
                s,
                "  order-to-ack / ping-pong: p50 {:.2}, p99 {:.2}",
                m.p50_over_pingpong, m.p99_over_pingpong
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (`bench wire: the load on its own thread`): the load pinned the calling
    /// thread, the next mode's node threads inherited that one core, and `--pin-gateway`
    /// to the other core was refused. Both modes run here, the load pinned to one core
    /// and the node to another, and each mode answers every measured request.
    #[test]
    fn a_pinned_load_does_not_confine_the_next_modes_node() -> anyhow::Result<()> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        // One core: nothing to confine.
        let (client, node) = if cores >= 2 { (Some(0), Some(1)) } else { (None, None) };
        let opts = Options {
            sessions: 2,
            rate: 2_000,
            requests: 200,
            warmup: 20,
            pingpong: 20,
            seed: 7,
            pin_client: client,
            pin_gateway: node,
            pin_sequencer: node,
            mode: vec![NodeMode::Threads, NodeMode::SingleThread],
            json: true,
        };
        let report = run(&opts)?;
        let modes: Vec<NodeMode> = report.modes.iter().map(|m| m.mode).collect();
        assert_eq!(modes, [NodeMode::Threads, NodeMode::SingleThread]);
        for m in &report.modes {
            assert!(m.order_to_ack_ns.p50 > 0 && m.order_to_ack_ns.p50 <= m.order_to_ack_ns.p99, "{m:?}");
        }
        Ok(())
    }
}
