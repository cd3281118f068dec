//! `l2x demo`: the node on its embedded defaults, driven for a few seconds over real TCP,
//! ending in an oracle shock that liquidates leveraged accounts, then stopped, settled and
//! verified.
//!
//! ```text
//!  DATA_DIR (default ./l2x-demo, recreated each run) ─▶ l2x_node::Node::start
//!     the default config on loopback ports (any free ones) · pipeline + journal ·
//!     submitter on the embedded chain · metrics endpoint
//!  clients (gateway::client over TCP):  makers (keys 1, 2): a bid and an ask on each
//!     instrument, cancelled and replaced every turn · takers (keys 3, 4): IOC orders
//!     that cross · leveraged longs (keys 5-10, 5,000 USDC each): buy BTC-PERP with IOC
//!     orders, 5-7 until the margin check refuses more (about 20x), 8-10 up to 5x
//!  this thread: an oracle random walk every 100 ms (seeded); at 70 % of the run (at most
//!     1.5 s before the end), once the longs are done buying (the run waits up to 10 s
//!     more for them), BTC-PERP's oracle drops 6 % in one step: the 20x longs fall below
//!     maintenance and are liquidated, the 5x ones are not. One status line a second
//!     (orders/s, fills, ack p50/p99, open interest, liquidations, batches, last root)
//!  after --seconds: clients log out · Node::stop (gateway, pipeline drained, final
//!     snapshot, last settlement pass) · summary, with each long's position in the final
//!     state · `l2x replay DIR --verify-roots
//!     --chain-dir DIR/chain` printed, and run in process
//! ```
//!
//! The workload is seeded; what the clients manage to send in the time given is not (it is
//! a live system on a shared machine), so two runs trade the same way but not the same
//! amounts.

#![allow(
    clippy::disallowed_methods,
    reason = "the demo runs for a stretch of wall-clock time and measures order-to-ack"
)]

use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use l2x_gateway::auth::Keys;
use l2x_gateway::metrics::Trading;
use l2x_protocol::client::{Client, Options as ClientOptions};
use l2x_protocol::codec::{ClientMsg, Report, ServerMsg, WireOrder};
use l2x_types::{
    AccountId, ClientOrderId, Command, Decimal, InstrumentId, Price, Qty, RejectReason, Side, TimeInForce,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use l2x_node::config::{Config, LogLevel};
use l2x_node::keys::demo_key;

use l2x_node::{Node, Settlement};

/// Options of `l2x demo`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Options {
    /// Where the demo's node keeps its journal, batches and chain (recreated on each run;
    /// only a directory an earlier demo made is ever removed).
    #[arg(long, default_value = "l2x-demo", value_parser = crate::args::non_empty_path)]
    data_dir: PathBuf,
    /// How long the clients trade, seconds (1 to 3,600).
    #[arg(long, default_value_t = 5, value_parser = crate::args::ranged(1, 3_600))]
    seconds: u64,
    /// The workload's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The node's log level on standard error. Warnings only by default (the status line is
    /// the demo's output); `info` logs every session's logon and logout, as `l2x serve` does.
    #[arg(long, default_value = "warn", value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: String,
}

/// The file that marks a directory as the demo's own.
const MARKER: &str = ".l2x-demo";
/// Keys (and accounts) of the leveraged longs; the first three go to the margin limit.
const LEVERAGED: std::ops::RangeInclusive<u8> = 5..=10;
/// Their deposit, whole USDC.
const LEVERAGED_USDC: u64 = 5_000;
/// The shock: BTC-PERP's oracle falls this many per mille in one step.
const SHOCK_PER_MILLE: i64 = 60;

/// What the clients did, shared with the status line.
#[derive(Default)]
struct Stats {
    orders: AtomicU64,
    rejects: AtomicU64,
    /// `throttled` rejects (the per-session rate limit; the client waited and went on).
    throttled: AtomicU64,
    fills: AtomicU64,
    /// Order-to-ack, ns.
    ack: Mutex<Option<Histogram<u64>>>,
}

impl Stats {
    fn record_ack(&self, ns: u64) {
        let mut h = self.ack.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = h.as_mut() {
            h.saturating_record(ns);
        }
    }

    /// (p50, p99) order-to-ack in µs.
    fn ack_us(&self) -> (u64, u64) {
        let h = self.ack.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        h.as_ref().map_or((0, 0), |h| (h.value_at_quantile(0.5) / 1_000, h.value_at_quantile(0.99) / 1_000))
    }
}

/// Empties (or creates) the demo directory; refuses one the demo did not make.
fn prepare(dir: &Path) -> Result<()> {
    if dir.exists() {
        let ours = dir.join(MARKER).exists();
        let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        anyhow::ensure!(ours || empty, "{} exists and is not a demo directory; pass another --data-dir", dir.display());
        std::fs::remove_dir_all(dir).with_context(|| format!("removing the last demo's {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join(MARKER), b"made by l2x demo; removed by the next one\n")?;
    Ok(())
}

/// `l2x serve`'s default config for the demo's node: its directory, any free loopback
/// ports, a submitter pass every 250 ms, the leveraged accounts' smaller deposits, and the
/// log level of `--log-level`.
fn node_config(dir: &Path, log_level: &str) -> Config {
    let log_level = match log_level {
        "error" => LogLevel::Error,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        _ => LogLevel::Warn,
    };
    let mut config = Config { data_dir: dir.to_path_buf(), log_level, ..Config::default() };
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    (config.ports.order_entry, config.ports.market_data, config.ports.metrics) = (any, any, any);
    config.settlement.every_ms = 250;
    for id in LEVERAGED {
        config.accounts.deposits.insert(id.to_string(), LEVERAGED_USDC);
    }
    config
}

/// Sends `msg` and reads until the report about `cid` that answers it; counts fills met on
/// the way. Returns whether it was accepted.
fn send_and_wait(client: &mut Client, msg: &ClientMsg, cid: ClientOrderId, stats: &Stats) -> Result<bool> {
    let sent = Instant::now();
    client.send(msg)?;
    loop {
        let ServerMsg::Report { report, .. } = client.recv()? else { continue };
        match report {
            Report::Fill { .. } => {
                stats.fills.fetch_add(1, Ordering::Relaxed);
            }
            Report::Accepted { cid: c, .. } if c == cid => {
                if matches!(msg, ClientMsg::NewOrder(_)) {
                    stats.record_ack(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
                }
                return Ok(true);
            }
            Report::Rejected { cid: c, reason, retry_after_ms } if c == cid => {
                // A cancel that finds its order already filled is no reject worth counting.
                if matches!(msg, ClientMsg::NewOrder(_)) {
                    rejected(stats, reason, retry_after_ms);
                }
                return Ok(false);
            }
            Report::Cancelled { cid: c, .. } if c == cid && matches!(msg, ClientMsg::Cancel { .. }) => {
                return Ok(true);
            }
            _ => {}
        }
    }
}

/// Counts a reject of an order; for a `throttled` one waits as long as it says before the
/// client sends again, as a well-behaved client does (one that keeps sending is logged out).
fn rejected(stats: &Stats, reason: u16, retry_after_ms: u32) {
    if reason == l2x_protocol::codes::SessionReject::Throttled.code() {
        stats.throttled.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(u64::from(retry_after_ms.max(1))));
    } else {
        stats.rejects.fetch_add(1, Ordering::Relaxed);
    }
}

/// A market maker: a bid and an ask on each instrument around the oracle, replaced every
/// turn.
fn maker(addr: SocketAddr, id: u8, seed: u64, fair: &[AtomicI64], stop: &AtomicBool, stats: &Stats) -> Result<()> {
    let mut client = Client::connect(addr, &demo_key(id), ClientOptions::default())?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ u64::from(id));
    let mut next_cid = 1u64;
    let mut resting: Vec<ClientOrderId> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        for cid in resting.drain(..) {
            send_and_wait(&mut client, &ClientMsg::Cancel { cid }, cid, stats)?;
        }
        for (i, f) in fair.iter().enumerate() {
            let mid = f.load(Ordering::Relaxed);
            let instrument = InstrumentId(u32::try_from(i)?);
            for side in [Side::Buy, Side::Sell] {
                let away = rng.random_range(1..=6i64);
                let price = Price(if side == Side::Buy { mid - away } else { mid + away });
                let cid = ClientOrderId(next_cid);
                next_cid += 1;
                let order = WireOrder::limit(cid, instrument, side, price, Qty(rng.random_range(5..=40)));
                stats.orders.fetch_add(1, Ordering::Relaxed);
                if send_and_wait(&mut client, &ClientMsg::NewOrder(order), cid, stats)? {
                    resting.push(cid);
                }
            }
        }
    }
    client.logout()?;
    Ok(())
}

/// What the leveraged longs did: lots bought by each (keys 5-10 in order), and how many are
/// done buying.
#[derive(Default)]
struct Longs {
    bought: [AtomicI64; 6],
    done: AtomicU64,
}

/// A leveraged long: IOC buys of BTC-PERP a few ticks through the oracle until it holds
/// `target` lots, or until the margin check refuses more; then it says so in `longs` and
/// logs out (the position stays).
fn leveraged(addr: SocketAddr, id: u8, target: i64, fair: &[AtomicI64], longs: &Longs, stats: &Stats) -> Result<()> {
    let held = buy_leveraged(addr, id, target, fair, stats);
    if let Some(b) = longs.bought.get(usize::from(id - LEVERAGED.start())) {
        b.store(*held.as_ref().unwrap_or(&0), Ordering::Relaxed);
    }
    longs.done.fetch_add(1, Ordering::Relaxed);
    held.map(|_| ())
}

fn buy_leveraged(addr: SocketAddr, id: u8, target: i64, fair: &[AtomicI64], stats: &Stats) -> Result<i64> {
    let mut client = Client::connect(addr, &demo_key(id), ClientOptions::default())?;
    let mut next_cid = 1u64;
    let mut held = 0i64;
    while held < target {
        let price = Price(fair[0].load(Ordering::Relaxed) + 8);
        let cid = ClientOrderId(next_cid);
        next_cid += 1;
        let mut order = WireOrder::limit(cid, InstrumentId(0), Side::Buy, price, Qty((target - held).min(50)));
        order.tif = TimeInForce::Ioc;
        stats.orders.fetch_add(1, Ordering::Relaxed);
        client.send(&ClientMsg::NewOrder(order))?;
        let sent = Instant::now();
        loop {
            let ServerMsg::Report { report, .. } = client.recv()? else { continue };
            match report {
                Report::Accepted { cid: c, .. } if c == cid => {
                    stats.record_ack(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
                }
                Report::Fill { cid: c, qty, leaves, .. } if c == cid => {
                    stats.fills.fetch_add(1, Ordering::Relaxed);
                    held += qty.0;
                    if leaves == Qty::ZERO {
                        break;
                    }
                }
                // An IOC's rest is cancelled: the order is done.
                Report::Cancelled { cid: c, .. } if c == cid => break,
                Report::Rejected { cid: c, reason, retry_after_ms } if c == cid => {
                    rejected(stats, reason, retry_after_ms);
                    if reason == RejectReason::InsufficientMargin.code() {
                        client.logout()?;
                        return Ok(held);
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    client.logout()?;
    Ok(held)
}

/// A taker: IOC orders a few ticks through the oracle, either side.
fn taker(addr: SocketAddr, id: u8, seed: u64, fair: &[AtomicI64], stop: &AtomicBool, stats: &Stats) -> Result<()> {
    let mut client = Client::connect(addr, &demo_key(id), ClientOptions::default())?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ u64::from(id));
    let mut next_cid = 1u64;
    while !stop.load(Ordering::Relaxed) {
        let i = rng.random_range(0..fair.len());
        let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
        let mid = fair[i].load(Ordering::Relaxed);
        let price = Price(if side == Side::Buy { mid + 8 } else { mid - 8 });
        let cid = ClientOrderId(next_cid);
        next_cid += 1;
        let mut order =
            WireOrder::limit(cid, InstrumentId(u32::try_from(i)?), side, price, Qty(rng.random_range(1..=10)));
        order.tif = TimeInForce::Ioc;
        stats.orders.fetch_add(1, Ordering::Relaxed);
        send_and_wait(&mut client, &ClientMsg::NewOrder(order), cid, stats)?;
    }
    client.logout()?;
    Ok(())
}

pub(crate) fn demo(opts: &Options) -> Result<ExitCode> {
    prepare(&opts.data_dir)?;
    let config = node_config(&opts.data_dir, &opts.log_level);
    crate::logs(config.log_level.filter());
    let keys = Keys::from_keys((1..=*LEVERAGED.end()).map(demo_key))?;
    let node = Node::start(&config, keys)?;
    let addr = node.server().order_entry_addr();
    let control = node.server().control();
    let stdout = io::stdout();
    writeln!(
        stdout.lock(),
        "l2x demo: node on {addr}, journal in {}, settling on the embedded chain; {} s of trading over TCP by 2 makers, \
         2 takers and 6 leveraged longs, ending in a {}.{} % BTC-PERP oracle drop{}",
        opts.data_dir.display(),
        opts.seconds,
        SHOCK_PER_MILLE / 10,
        SHOCK_PER_MILLE % 10,
        node.metrics().map(|m| format!("; metrics at http://{}/metrics", m.addr())).unwrap_or_default(),
    )?;

    // The instruments the node listed, from their first prices.
    let listings = config.listings()?;
    let start: Vec<i64> = listings.iter().map(|(_, price)| price.0).collect();
    let lots: Vec<(String, Decimal)> =
        listings.iter().map(|(spec, _)| (spec.symbol.as_str().to_string(), spec.lot_size)).collect();
    let fair: Arc<Vec<AtomicI64>> = Arc::new(start.iter().map(|&p| AtomicI64::new(p)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let stats =
        Arc::new(Stats { ack: Mutex::new(Histogram::new_with_bounds(1, 60_000_000_000, 3).ok()), ..Stats::default() });
    let mut clients = Vec::new();
    let longs = Arc::new(Longs::default());
    // 5x for the last three: 5 × 5,000 USDC of BTC-PERP at its first price, in lots.
    let (btc, btc_price) = &listings[0];
    let five_x_base = Decimal::from(5 * LEVERAGED_USDC) / (Decimal::from(btc_price.0) * btc.tick_size);
    let five_x = i64::try_from((five_x_base / btc.lot_size).floor()).context("the 5x position in lots")?;
    for id in 1..=*LEVERAGED.end() {
        let (fair, stop, stats, seed) = (Arc::clone(&fair), Arc::clone(&stop), Arc::clone(&stats), opts.seed);
        let longs = Arc::clone(&longs);
        let target = if id < LEVERAGED.start() + 3 { i64::MAX } else { five_x };
        clients.push(std::thread::Builder::new().name(format!("demo-client-{id}")).spawn(move || match id {
            1 | 2 => maker(addr, id, seed, &fair, &stop, &stats),
            3 | 4 => taker(addr, id, seed, &fair, &stop, &stats),
            _ => leveraged(addr, id, target, &fair, &longs, &stats),
        })?);
    }

    // The oracle walks (±0.2 % a step at most), then the shock; the status line is redrawn
    // each second.
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let started = Instant::now();
    let run = Duration::from_secs(opts.seconds);
    // The shock comes at 70 % of the run (at most 1.5 s before its end), once every long is
    // done buying: on a slow machine the run is stretched for it (by 10 s at most, then the
    // shock comes anyway), and it always has half a second after the shock.
    let mut end = started + run;
    let shock_at = started + (run * 7 / 10).max(run.saturating_sub(Duration::from_millis(1_500)));
    let hard_end = end + Duration::from_secs(10);
    let mut shocked = false;
    let mut next_status = started + Duration::from_secs(1);
    let trading = node.server().counters_handle();
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        let now = Instant::now();
        let ready = longs.done.load(Ordering::Relaxed) == longs.bought.len() as u64;
        let shock = !shocked && now >= shock_at && (ready || now + Duration::from_secs(1) >= hard_end);
        shocked |= shock;
        if shock {
            end = end.max(now + Duration::from_millis(500));
        } else if !shocked && now + Duration::from_millis(200) >= end {
            end = (end + Duration::from_millis(100)).min(hard_end);
        }
        for (i, f) in fair.iter().enumerate() {
            let mid = f.load(Ordering::Relaxed);
            let step = if shock && i == 0 {
                -mid * SHOCK_PER_MILLE / 1_000
            } else {
                rng.random_range(-(mid / 500)..=mid / 500)
            };
            let price = (mid + step).max(start[i] / 2);
            f.store(price, Ordering::Relaxed);
            control
                .submit(Command::Oracle { instrument: InstrumentId(u32::try_from(i)?), price: Price(price) })
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        if Instant::now() >= next_status {
            next_status += Duration::from_secs(1);
            let settled = node.settlement().map(Settlement::status).unwrap_or_default();
            let oi = open_interest(&trading.trading, &lots);
            status_line(
                &stats,
                started.elapsed(),
                &oi,
                trading.trading.liquidations(),
                settled.committed,
                settled.root,
            )?;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().map_err(|_| anyhow::anyhow!("a demo client panicked"))??;
    }
    let elapsed = started.elapsed();
    let (oi, liquidations) = (open_interest(&trading.trading, &lots), trading.trading.liquidations());
    let stopped = node.stop()?;
    let settled = stopped.settled.unwrap_or_default();
    let mut out = stdout.lock();
    writeln!(out)?;
    let orders = stats.orders.load(Ordering::Relaxed);
    let (p50, p99) = stats.ack_us();
    writeln!(
        out,
        "{orders} orders in {:.1} s ({:.0}/s), {} rejected, {} throttled, {} fills; order-to-ack p50 {p50} µs, p99 {p99} µs",
        elapsed.as_secs_f64(),
        orders as f64 / elapsed.as_secs_f64(),
        stats.rejects.load(Ordering::Relaxed),
        stats.throttled.load(Ordering::Relaxed),
        stats.fills.load(Ordering::Relaxed),
    )?;
    writeln!(
        out,
        "open interest {oi}; liquidations: {liquidations} (accounts, counted per command that liquidated them)"
    )?;
    // Each leveraged long: what it bought, what the final state says it holds.
    let ledger = stopped.state.ledger();
    for (i, bought) in longs.bought.iter().enumerate() {
        let id = LEVERAGED.start() + u8::try_from(i)?;
        let account = AccountId(u64::from(id));
        let holds =
            ledger.slot(account).and_then(|s| ledger.account(s).position(InstrumentId(0))).map_or(0, |p| p.size);
        let base = |n: i64| (Decimal::from(n) * btc.lot_size).normalize();
        let how = if id < LEVERAGED.start() + 3 { "to the margin limit" } else { "5x" };
        writeln!(
            out,
            "  long {id} ({how}): bought {} BTC-PERP, holds {} after the shock{}",
            base(bought.load(Ordering::Relaxed)),
            base(holds),
            if holds == 0 { " (liquidated)" } else { "" }
        )?;
    }
    writeln!(out, "journal: {} commands, final state {}", stopped.last_seq, stopped.state_hash)?;
    writeln!(
        out,
        "settlement: {} epochs closed, {} batches committed to the embedded chain, last root {}",
        settled.epochs, settled.committed, settled.root
    )?;
    let settled_all = settled.error.is_none() && settled.committed == settled.epochs;
    if let Some(e) = &settled.error {
        writeln!(out, "settlement's last pass failed: {e}")?;
    }
    let dir = opts.data_dir.to_str().context("the demo directory's path is not UTF-8")?;
    let chain = format!("{dir}/chain");
    let args = [dir, "--verify-roots", "--chain-dir", &chain];
    writeln!(out, "\nverify every committed root from the journal:\n  l2x replay {}\n", args.join(" "))?;
    drop(out);
    // The very command printed, run here.
    let verified = crate::replay::replay(&crate::replay::Options::parse_args(&args)?)?;
    // Every closed epoch committed and every committed root re-derived, or a failure.
    Ok(if settled_all { verified } else { ExitCode::FAILURE })
}

/// Open interest of every instrument, in base units: "BTC-PERP 1.234, ETH-PERP 5.6".
fn open_interest(trading: &Trading, lots: &[(String, Decimal)]) -> String {
    let each = lots.iter().enumerate().map(|(i, (symbol, lot))| {
        let id = InstrumentId(u32::try_from(i).unwrap_or(u32::MAX));
        format!("{symbol} {}", (Decimal::from(trading.open_interest(id)) * lot).normalize())
    });
    each.collect::<Vec<_>>().join(", ")
}

fn status_line(
    stats: &Stats,
    elapsed: Duration,
    oi: &str,
    liquidations: u64,
    committed: u64,
    root: alloy::primitives::B256,
) -> Result<()> {
    let orders = stats.orders.load(Ordering::Relaxed);
    let (p50, p99) = stats.ack_us();
    let root = root.to_string();
    let stdout = io::stdout();
    // Redrawn in place on a terminal; one line a second into a pipe or a file.
    let (start, end) = if stdout.is_terminal() { ("\r", "") } else { ("", "\n") };
    let mut out = stdout.lock();
    write!(
        out,
        "{start}{:>3} s  orders {orders} ({:.0}/s)  fills {}  ack p50 {p50} µs p99 {p99} µs  OI {oi}  liquidated {liquidations}  batches {committed}  root {}…",
        elapsed.as_secs(),
        orders as f64 / elapsed.as_secs_f64().max(1e-9),
        stats.fills.load(Ordering::Relaxed),
        &root[..root.len().min(10)],
    )?;
    write!(out, "{end}")?;
    out.flush()?;
    Ok(())
}
