//! `l2x demo`: the node on its embedded defaults, driven for a few seconds over real TCP,
//! ending in an oracle shock that liquidates leveraged accounts, then stopped, settled and
//! verified.
//!
//! ```text
//!  DATA_DIR (default ./l2x-demo, recreated each run) ─▶ Node::start
//!     the default config on loopback ports (any free ones) · pipeline + journal · the
//!     accounts' first deposits made on the embedded chain's vault and credited by the L1
//!     watcher (crate::funding) · submitter on the embedded chain · metrics endpoint
//!  clients (protocol::client over TCP):  makers (keys 1, 2): a bid and an ask on each
//!     instrument, cancelled and replaced every turn · takers (keys 3, 4): IOC orders
//!     that cross · leveraged longs (keys 5-10, 5,000 USDC each): buy BTC-PERP with IOC
//!     orders, 5-7 until the margin check refuses more (about 20x), 8-10 up to 5x
//!  this thread: an oracle random walk every 100 ms (seeded); at 70 % of the run (at most
//!     1.5 s before the end), once the longs are done buying (the run waits up to 10 s
//!     more for them), BTC-PERP's oracle drops 6 % in one step: the 20x longs fall below
//!     maintenance and are liquidated, the 5x ones are not. One status line a second
//!     (orders/s, fills, ack p50/p99, open interest, liquidations, batches, last root)
//!  after --seconds: clients log out · account 1 (a maker) withdraws 1,000 USDC over the
//!     wire and gets its Withdrawn; a tick a second later closes the epoch holding it ·
//!     Node::stop (gateway, pipeline drained, final snapshot, last settlement pass, which
//!     commits the withdrawal: the vault credits it to the account's L1 owner) · summary,
//!     with each long's position in the final state · on the embedded chain (l1): the
//!     deposits in the vault's queue, the vault's balance and books, the owner's claim()
//!     and its token balance after it · `l2x replay DIR --verify-roots --chain-dir
//!     DIR/chain` printed, and the same verification run in process (settle::verify)
//! ```
//!
//! The verdict fails unless every closed epoch was committed, the vault holds exactly
//! `l2Total + pendingDeposits + totalClaimable`, the claim pays the owner exactly the
//! withdrawn amount, and every committed root re-derives from the journal.
//!
//! The workload is seeded; what the clients manage to send in the time given is not (it is
//! a live system on a shared machine), so two runs trade the same way but not the same
//! amounts.

#![allow(
    clippy::disallowed_methods,
    reason = "the demo runs for a stretch of wall-clock time and measures order-to-ack"
)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use l2x_gateway::auth::Keys;
use l2x_gateway::server::Control;
use l2x_types::{Decimal, InstrumentId, InstrumentSpec, Price};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Config, ConfigError, LogLevel};
use crate::error::NodeError;
use crate::keys::demo_key;
use crate::node::Node;
use crate::settle::Verdict;
use crate::settlement::Settlement;

mod clients;
mod l1;
mod report;

use clients::{Longs, Stats};

/// Options of `l2x demo`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the demo's node keeps its journal, batches and chain (recreated on each run;
    /// only a directory an earlier demo made is ever removed).
    pub data_dir: PathBuf,
    /// How long the clients trade, seconds.
    pub seconds: u64,
    /// The workload's seed.
    pub seed: u64,
    /// The node's log level.
    pub log_level: LogLevel,
}

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The directory holds something the demo did not make.
    #[error("{} exists and is not a demo directory; pass another --data-dir", dir.display())]
    NotADemoDirectory {
        /// The directory.
        dir: PathBuf,
    },
    /// The last demo's directory cannot be removed.
    #[error("removing the last demo's {}", dir.display())]
    Remove {
        /// The directory.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The directory cannot be made.
    #[error("creating {}", dir.display())]
    Create {
        /// The directory.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The node would not start or stop.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The demo keys (never: they are distinct).
    #[error(transparent)]
    Keys(#[from] l2x_gateway::auth::AccountsError),
    /// A client's session failed.
    #[error(transparent)]
    Client(#[from] l2x_protocol::client::ClientError),
    /// The 5x position does not fit in lots.
    #[error("the 5x position in lots")]
    FiveX(#[source] <i64 as TryFrom<Decimal>>::Error),
    /// The engine refused the demo's withdrawal (its reject reason).
    #[error("the demo's withdrawal was refused with reason {reason}")]
    WithdrawalRefused {
        /// The reject reason's code.
        reason: u16,
    },
    /// The embedded chain, opened after the stop to claim the withdrawal, failed.
    #[error("claiming the withdrawal on the embedded chain")]
    L1(#[source] l2x_settlement::chain::ChainError),
    /// A client thread panicked.
    #[error("a demo client panicked")]
    ClientPanicked,
    /// The data directory cannot be printed as the command that verifies it.
    #[error("the demo directory's path is not UTF-8")]
    NotUtf8,
    /// An id past its type (never: ten keys, two instruments).
    #[error(transparent)]
    Id(#[from] std::num::TryFromIntError),
    /// Writing the output, a socket, the marker file, a thread.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<ConfigError> for DemoError {
    fn from(e: ConfigError) -> DemoError {
        DemoError::Node(e.into())
    }
}

impl From<l2x_sequencer::pipeline::SubmitError> for DemoError {
    fn from(e: l2x_sequencer::pipeline::SubmitError) -> DemoError {
        DemoError::Node(e.into())
    }
}

/// The file that marks a directory as the demo's own.
const MARKER: &str = ".l2x-demo";
/// Keys (and accounts) of the leveraged longs; the first three go to the margin limit.
const LEVERAGED: std::ops::RangeInclusive<u8> = 5..=10;
/// Their deposit, whole USDC.
const LEVERAGED_USDC: u64 = 5_000;
/// The shock: BTC-PERP's oracle falls this many per mille in one step.
const SHOCK_PER_MILLE: i64 = 60;

/// Runs the demo, writing its progress and summary to `out` (its status line redrawn in
/// place when `terminal`). [`Verdict::Agrees`] when every closed epoch was committed, the
/// vault held exactly what it owes and the claim paid exactly the withdrawn amount, and
/// every committed root re-derived from the journal.
///
/// # Errors
/// The directory is not the demo's; the node fails; a client fails; the withdrawal is
/// refused; the embedded chain cannot be read or refuses the claim.
pub fn run(opts: &Options, out: &mut dyn Write, terminal: bool) -> Result<Verdict, DemoError> {
    prepare(&opts.data_dir)?;
    let config = node_config(&opts.data_dir, opts.log_level);
    let keys = Keys::from_keys((1..=*LEVERAGED.end()).map(demo_key))?;
    let node = Node::start(&config, keys)?;
    let addr = node.server().order_entry_addr();
    writeln!(
        out,
        "l2x demo: node on {addr}, journal in {}, settling on the embedded chain; {} s of trading over TCP by 2 makers, \
         2 takers and 6 leveraged longs, ending in a {}.{} % BTC-PERP oracle drop{}",
        opts.data_dir.display(),
        opts.seconds,
        SHOCK_PER_MILLE / 10,
        SHOCK_PER_MILLE % 10,
        node.metrics().map(|m| format!("; metrics at http://{}/metrics", m.addr())).unwrap_or_default(),
    )?;
    let market = Market::of(&config)?;
    let shared = Shared::new(&market);
    let clients = shared.spawn(addr, opts.seed, market.five_x()?)?;
    let started = drive(out, terminal, opts, &node, &market, &shared)?;
    shared.stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().map_err(|_| DemoError::ClientPanicked)??;
    }
    let elapsed = started.elapsed();
    let trading = node.server().counters_handle();
    let (oi, liquidations) = (report::open_interest(&trading.trading, &market.lots), trading.trading.liquidations());
    let withdrawal = l1::withdraw(addr, &node.server().control())?;
    let stopped = node.stop()?;
    let end = report::End { elapsed, open_interest: oi, liquidations, lot: market.btc.lot_size };
    let settled_all = report::summary(out, &shared, &end, &stopped)?;
    let moved = l1::claim(out, &config.chain_dir(), &withdrawal)?;
    let verified = report::verify(out, &opts.data_dir)?;
    // Every closed epoch committed, the vault balanced and the claim exact, and every
    // committed root re-derived, or a failure.
    Ok(if settled_all && moved { verified } else { Verdict::Differs })
}

/// Empties (or creates) the demo directory; refuses one the demo did not make.
fn prepare(dir: &Path) -> Result<(), DemoError> {
    if dir.exists() {
        let ours = dir.join(MARKER).exists();
        let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !(ours || empty) {
            return Err(DemoError::NotADemoDirectory { dir: dir.to_path_buf() });
        }
        std::fs::remove_dir_all(dir).map_err(|source| DemoError::Remove { dir: dir.to_path_buf(), source })?;
    }
    std::fs::create_dir_all(dir).map_err(|source| DemoError::Create { dir: dir.to_path_buf(), source })?;
    std::fs::write(dir.join(MARKER), b"made by l2x demo; removed by the next one\n")?;
    Ok(())
}

/// `l2x serve`'s default config for the demo's node: its directory, any free loopback
/// ports, a submitter pass every 250 ms, the leveraged accounts' smaller deposits, and the
/// log level.
fn node_config(dir: &Path, log_level: LogLevel) -> Config {
    let mut config = Config { data_dir: dir.to_path_buf(), log_level, ..Config::default() };
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    (config.ports.order_entry, config.ports.market_data, config.ports.metrics) = (any, any, any);
    config.settlement.every_ms = 250;
    for id in LEVERAGED {
        config.accounts.deposits.insert(id.to_string(), LEVERAGED_USDC);
    }
    config
}

/// The instruments the node listed, from their first prices.
struct Market {
    /// First oracle prices, ticks.
    start: Vec<i64>,
    /// Symbol and lot size of each.
    lots: Vec<(String, Decimal)>,
    /// BTC-PERP (the first), which the longs buy and the shock hits.
    btc: InstrumentSpec,
    btc_price: Price,
}

impl Market {
    fn of(config: &Config) -> Result<Market, DemoError> {
        let listings = config.listings()?;
        let start = listings.iter().map(|(_, price)| price.0).collect();
        let lots = listings.iter().map(|(spec, _)| (spec.symbol.as_str().to_string(), spec.lot_size)).collect();
        let (btc, btc_price) = listings[0];
        Ok(Market { start, lots, btc, btc_price })
    }

    /// 5x for the last three longs: 5 × 5,000 USDC of BTC-PERP at its first price, in lots.
    fn five_x(&self) -> Result<i64, DemoError> {
        let base = Decimal::from(5 * LEVERAGED_USDC) / (Decimal::from(self.btc_price.0) * self.btc.tick_size);
        i64::try_from((base / self.btc.lot_size).floor()).map_err(DemoError::FiveX)
    }
}

/// What the clients and this thread share.
struct Shared {
    /// Each instrument's oracle price now, ticks.
    fair: Arc<Vec<AtomicI64>>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    longs: Arc<Longs>,
}

impl Shared {
    fn new(market: &Market) -> Shared {
        Shared {
            fair: Arc::new(market.start.iter().map(|&p| AtomicI64::new(p)).collect()),
            stop: Arc::new(AtomicBool::new(false)),
            stats: Arc::new(Stats::new()),
            longs: Arc::new(Longs::default()),
        }
    }

    /// One thread per demo key: makers 1-2, takers 3-4, leveraged longs 5-10 (the last
    /// three up to `five_x` lots).
    fn spawn(&self, addr: SocketAddr, seed: u64, five_x: i64) -> Result<Vec<JoinHandle<clients::Outcome>>, DemoError> {
        let mut threads = Vec::new();
        for id in 1..=*LEVERAGED.end() {
            let (fair, stop, stats) = (Arc::clone(&self.fair), Arc::clone(&self.stop), Arc::clone(&self.stats));
            let longs = Arc::clone(&self.longs);
            let target = if id < LEVERAGED.start() + 3 { i64::MAX } else { five_x };
            threads.push(std::thread::Builder::new().name(format!("demo-client-{id}")).spawn(move || match id {
                1 | 2 => clients::maker(addr, id, seed, &fair, &stop, &stats),
                3 | 4 => clients::taker(addr, id, seed, &fair, &stop, &stats),
                _ => clients::leveraged(addr, id, target, &fair, &longs, &stats),
            })?);
        }
        Ok(threads)
    }
}

/// The oracle walks (±0.2 % a step at most), then the shock; the status line is redrawn
/// each second. Returns when the run started.
fn drive(
    out: &mut dyn Write,
    terminal: bool,
    opts: &Options,
    node: &Node,
    market: &Market,
    shared: &Shared,
) -> Result<Instant, DemoError> {
    let control = node.server().control();
    let trading = node.server().counters_handle();
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
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        let now = Instant::now();
        let ready = shared.longs.done.load(Ordering::Relaxed) == shared.longs.bought.len() as u64;
        let shock = !shocked && now >= shock_at && (ready || now + Duration::from_secs(1) >= hard_end);
        shocked |= shock;
        if shock {
            end = end.max(now + Duration::from_millis(500));
        } else if !shocked && now + Duration::from_millis(200) >= end {
            end = (end + Duration::from_millis(100)).min(hard_end);
        }
        walk(&control, &shared.fair, &market.start, shock, &mut rng)?;
        if Instant::now() >= next_status {
            next_status += Duration::from_secs(1);
            let settled = node.settlement().map(Settlement::status).unwrap_or_default();
            let line = report::StatusLine {
                elapsed: started.elapsed(),
                open_interest: report::open_interest(&trading.trading, &market.lots),
                liquidations: trading.trading.liquidations(),
                committed: settled.committed,
                root: settled.root,
            };
            line.write(out, terminal, &shared.stats)?;
        }
    }
    Ok(started)
}

/// One step of every instrument's oracle: a random step of at most 0.2 %, or the shock on
/// BTC-PERP; never below half the first price.
fn walk(
    control: &Control,
    fair: &[AtomicI64],
    start: &[i64],
    shock: bool,
    rng: &mut ChaCha8Rng,
) -> Result<(), DemoError> {
    for (i, f) in fair.iter().enumerate() {
        let mid = f.load(Ordering::Relaxed);
        let step =
            if shock && i == 0 { -mid * SHOCK_PER_MILLE / 1_000 } else { rng.random_range(-(mid / 500)..=mid / 500) };
        let price = (mid + step).max(start[i] / 2);
        f.store(price, Ordering::Relaxed);
        control
            .submit(l2x_types::Command::Oracle { instrument: InstrumentId(u32::try_from(i)?), price: Price(price) })?;
    }
    Ok(())
}
