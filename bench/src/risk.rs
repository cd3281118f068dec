//! `l2x bench risk`: a liquidation cascade — many leveraged accounts, one oracle shock, and
//! the engine time of the one command that liquidates them all.
//!
//! # Setup (untimed, through ordinary commands)
//!
//! ```text
//!  list BTC-PERP ─▶ deposits ─▶ oracle 50,000 ─▶ market makers rest asks at 50,000
//!      ─▶ every long account buys 0.1 BTC from them (IOC at 50,000)
//!      ─▶ bidders rest bids from 39,999.5 down to 39,301.5 ─▶ deposit to the insurance fund
//! ```
//!
//! - `BTC-PERP`: tick 0.5, lot 0.001, IMF 5 %, MMF 3 %, taker fee 0.05 %, maker fee 0,
//!   liquidation fee 1 % (the default), price band 25 % (so that the bids 20 % below the
//!   mark can be entered before the shock).
//! - `--accounts` long accounts (ids from 1), each depositing a seeded amount uniform in
//!   900–1,400 USDC and buying 0.1 BTC (100 lots) at 50,000: 3.6× to 5.6× leverage.
//! - Market makers (ids above the longs) each deposit 10⁹ USDC and rest one ask per 1,000 BTC
//!   they sell, so that they end up short what the longs bought.
//! - Bidders deposit 10⁹ USDC each and rest 1 BTC bids every 2 USDC (4 ticks) from
//!   39,999.5 down to 39,301.5: 350 BTC of bids below the post-shock mark. They absorb the
//!   liquidation orders whose limit (dYdX v4's fillable price, never worse than bankrupt) is
//!   at or below them, until they run out.
//! - The insurance fund is seeded with a deposit (`--insurance`, USDC).
//!
//! After the shock to 40,000 (`--shock` 20 %) an account is below maintenance when its
//! deposit is below about 1,122.5 USDC (the loss is 1,000 USDC, the taker fee 2.5 USDC,
//! maintenance 120 USDC) and bankrupt below about 1,002.5 USDC. Bankrupt accounts' limits
//! (their bankruptcy price, above the mark) cannot fill against bids below the mark: the
//! insurance fund takes them over at the bankruptcy price while its equity lasts, then
//! auto-deleveraging closes them against the market makers' shorts.
//!
//! # Timed
//!
//! The single oracle command at the shocked price: [`StateMachine::apply`] runs the whole
//! cascade (every account the index reports, every liquidation fill, takeover and ADL close,
//! and every account that traded with a liquidation) before it returns. Each run starts
//! from a clone of the prepared state; the event buffer is reused, with its memory already
//! touched by an untimed dry run, so the timed part allocates nothing for events.
//!
//! # Verified (untimed)
//!
//! After each run: every trading account with a position is at or above maintenance
//! ([`l2x_risk::Health::below_maintenance`]), [`StateMachine::check_invariants`] holds
//! (conservation, positions netting to zero, the liquidation index, the books), and every run
//! produced the same events.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use l2x_engine::StateMachine;
use l2x_types::{
    AccountId, Amount, ClientOrderId, Command, Decimal, Event, Holder, InstrumentId, InstrumentSpec, NewOrder,
    OrderType, Price, Qty, Seq, Sequenced, Side, StpMode, Symbol, TimeInForce, Timestamp,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::machine::{CpuMeter, Machine};

/// The instrument.
const INSTRUMENT: InstrumentId = InstrumentId(0);
/// The mark before the shock: 50,000 USDC in ticks of 0.5.
const MARK: Price = Price(100_000);
/// Each long account's position, in lots (0.1 BTC).
const LONG_LOTS: i64 = 100;
/// Largest order quantity of the instrument, in lots (1,000 BTC): one market-maker ask each.
const MAX_ORDER_LOTS: i64 = 1_000_000;
/// Long accounts' deposits, USDC: uniform in `DEPOSIT_MIN..DEPOSIT_MAX`.
const DEPOSIT_MIN: i64 = 900;
const DEPOSIT_MAX: i64 = 1_400;
/// Market makers' and bidders' deposits, USDC.
const RICH: i64 = 1_000_000_000;
/// Bidders, and their bids: `BID_LEVELS` levels of `BID_LOTS`, `BID_STEP` ticks apart,
/// from one tick below the shocked mark down.
const BIDDERS: u64 = 5;
const BID_LEVELS: i64 = 350;
const BID_LOTS: i64 = 1_000;
const BID_STEP: i64 = 4;

/// Command-line options of `l2x bench risk`.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct Options {
    /// Long accounts with a leveraged position (1 to 10,000,000).
    #[arg(long, default_value_t = 100_000, value_parser = crate::ranged::<u32>(1, 10_000_000))]
    pub accounts: u32,
    /// Seed of the deposits (ChaCha8): same seed, same accounts.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The oracle shock, percent below the mark.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=24))]
    pub shock: u32,
    /// The insurance fund's seed deposit, USDC (1 to 9,223,372,036,854).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(i64).range(1..=9_223_372_036_854))]
    pub insurance: i64,
    /// Timed runs (each from a clone of the prepared state); the best is the figure (1 to 100).
    #[arg(long, default_value_t = 3, value_parser = crate::ranged::<usize>(1, 100))]
    pub runs: usize,
    /// Pin the benchmark thread to this core (core_affinity) (0 to 1,023).
    #[arg(long, value_name = "CORE", value_parser = crate::ranged::<usize>(0, 1_023))]
    pub pin: Option<usize>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { accounts: 100_000, seed: 42, shock: 20, insurance: 10_000, runs: 3, pin: None, json: false }
    }
}

/// Everything one `l2x bench risk` run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// What was set up.
    pub setup: Setup,
    /// Best engine time of the shock command (the whole cascade), nanoseconds.
    pub engine_ns: u64,
    /// Every run's engine time, nanoseconds.
    pub runs_ns: Vec<u64>,
    /// Mean cores busy with other work during the timed runs (see [`CpuMeter`]).
    pub other_load_cores: Option<f64>,
    /// What the cascade did (the same in every run).
    pub cascade: Cascade,
    /// The checks after the cascade.
    pub check: Check,
}

/// The state before the shock.
#[derive(Clone, Debug, Serialize)]
pub struct Setup {
    /// Long accounts.
    pub accounts: u32,
    /// Deposit seed.
    pub seed: u64,
    /// Each long's position, BTC.
    pub long_btc: String,
    /// Range of the longs' deposits, USDC.
    pub deposit_usdc: [i64; 2],
    /// Market makers (short the longs' total).
    pub market_makers: u64,
    /// Bidders.
    pub bidders: u64,
    /// Resting bids: levels, and BTC in total.
    pub bid_levels: i64,
    /// BTC of bids in total.
    pub bid_btc: i64,
    /// Highest and lowest bid, USDC.
    pub bid_range_usdc: [String; 2],
    /// Insurance fund seed, USDC.
    pub insurance_usdc: i64,
    /// Mark before and after the shock, USDC.
    pub mark_usdc: [String; 2],
    /// Commands applied to build the state.
    pub setup_commands: u64,
    /// Untimed setup time, milliseconds (for information).
    pub setup_ms: u64,
    /// Long accounts the shock puts below maintenance (counted from the deposits).
    pub below_maintenance_expected: u64,
    /// Of those, accounts with negative equity at the shocked mark.
    pub bankrupt_expected: u64,
}

/// What the shock command did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cascade {
    /// Distinct accounts with a liquidation fill, takeover or ADL close.
    pub liquidated_accounts: u64,
    /// Liquidation fills against the book (`liquidation` events).
    pub liquidation_fills: u64,
    /// BTC closed by liquidation fills.
    pub liquidation_btc: String,
    /// Insurance-fund takeovers.
    pub takeovers: u64,
    /// BTC taken over.
    pub takeover_btc: String,
    /// Auto-deleveraging closes.
    pub adl_closes: u64,
    /// BTC closed by ADL.
    pub adl_btc: String,
    /// Liquidations left incomplete (the fund and ADL exhausted): expected zero.
    pub incomplete: u64,
    /// Orders cancelled by liquidation.
    pub liquidation_cancels: u64,
    /// Events of the command.
    pub events: u64,
    /// Insurance fund collateral after, USDC.
    pub insurance_after_usdc: String,
}

/// The checks after each run.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// Trading accounts with a position after the cascade.
    pub accounts_with_position: u64,
    /// Of those, below maintenance (must be zero).
    pub below_maintenance: u64,
    /// `check_invariants()` result.
    pub invariants: String,
    /// Every run produced the same events.
    pub runs_agree: bool,
}

/// Builds the state one command at a time, failing on any reject.
struct Builder {
    state: StateMachine,
    seq: u64,
    events: Vec<Event>,
}

impl Builder {
    fn apply(&mut self, cmd: Command) -> anyhow::Result<()> {
        self.seq += 1;
        self.events.clear();
        self.state.apply(&Sequenced { seq: Seq(self.seq), ts: Timestamp(self.seq), cmd }, &mut self.events);
        if let Some(e) = self.events.iter().find(|e| matches!(e, Event::Rejected { .. } | Event::Liquidation { .. })) {
            bail!("setup command {} was not applied as intended: {e:?}", self.seq);
        }
        Ok(())
    }
}

fn usdc(n: i64) -> Amount {
    Amount(n * Amount::ONE)
}

fn order(account: u64, cid: u64, side: Side, price: Price, lots: i64, tif: TimeInForce) -> Command {
    Command::NewOrder(NewOrder {
        account: AccountId(account),
        cid: ClientOrderId(cid),
        instrument: INSTRUMENT,
        side,
        order_type: OrderType::Limit,
        price: Some(price),
        qty: Qty(lots),
        tif,
        expire_ts: None,
        post_only: false,
        reduce_only: false,
        stp: StpMode::CancelTaker,
    })
}

/// The instrument of the cascade (see the module doc).
fn spec() -> InstrumentSpec {
    InstrumentSpec {
        symbol: Symbol::try_new("BTC-PERP").expect("a valid symbol"),
        tick_size: Decimal::new(5, 1),
        lot_size: Decimal::new(1, 3),
        initial_margin: Decimal::new(5, 2),
        maintenance_margin: Decimal::new(3, 2),
        max_order_qty: Decimal::new(1_000, 0),
        max_position_qty: Decimal::new(1_000_000, 0),
        price_band: Decimal::new(25, 2),
        maker_fee: Decimal::ZERO,
        taker_fee: Decimal::new(5, 4),
        liquidation_fee: InstrumentSpec::DEFAULT_LIQUIDATION_FEE,
        impact_notional: InstrumentSpec::DEFAULT_IMPACT_NOTIONAL,
        funding_interest: Decimal::ZERO,
        funding_clamp: Decimal::new(2, 2),
    }
}

/// The shocked mark in ticks: `shock` percent below [`MARK`].
fn shocked(shock: u32) -> Price {
    Price(MARK.0 * (100 - i64::from(shock)) / 100)
}

/// The prepared state and what it holds, and the shock command.
struct Prepared {
    state: StateMachine,
    shock: Sequenced,
    setup: Setup,
}

fn prepare(opts: &Options) -> anyhow::Result<Prepared> {
    let started = Instant::now();
    let mut b = Builder { state: StateMachine::new(), seq: 0, events: Vec::with_capacity(64) };
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let longs = u64::from(opts.accounts);
    let total_lots = i64::from(opts.accounts) * LONG_LOTS;
    let makers = u64::try_from((total_lots + MAX_ORDER_LOTS - 1) / MAX_ORDER_LOTS).context("market makers")?;
    let after = shocked(opts.shock);

    b.apply(Command::ListInstrument(Box::new(spec())))?;
    let mut deposits = Vec::with_capacity(opts.accounts as usize);
    for id in 1..=longs {
        // Micro-USDC, so that deposits are not all whole dollars.
        let amount = Amount(rng.random_range(DEPOSIT_MIN * Amount::ONE..DEPOSIT_MAX * Amount::ONE));
        deposits.push(amount.0);
        b.apply(Command::Deposit { to: Holder::Account(AccountId(id)), amount })?;
    }
    let maker_ids = longs + 1..=longs + makers;
    let bidder_ids = longs + makers + 1..=longs + makers + BIDDERS;
    for id in maker_ids.clone().chain(bidder_ids.clone()) {
        b.apply(Command::Deposit { to: Holder::Account(AccountId(id)), amount: usdc(RICH) })?;
    }
    b.apply(Command::Oracle { instrument: INSTRUMENT, price: MARK })?;
    let mut left = total_lots;
    for id in maker_ids {
        let lots = left.min(MAX_ORDER_LOTS);
        left -= lots;
        b.apply(order(id, 1, Side::Sell, MARK, lots, TimeInForce::Gtc))?;
    }
    for id in 1..=longs {
        b.apply(order(id, 1, Side::Buy, MARK, LONG_LOTS, TimeInForce::Ioc))?;
    }
    ensure!(b.state.resting_count() == 0, "the market makers' asks were not all taken");
    let bidders: Vec<u64> = bidder_ids.collect();
    for level in 0..BID_LEVELS {
        let price = Price(after.0 - 1 - level * BID_STEP);
        let bidder = bidders[usize::try_from(level).context("level")? % bidders.len()];
        b.apply(order(
            bidder,
            u64::try_from(level).context("level")? + 1,
            Side::Buy,
            price,
            BID_LOTS,
            TimeInForce::Gtc,
        ))?;
    }
    b.apply(Command::Deposit { to: Holder::Insurance, amount: usdc(opts.insurance) })?;
    b.state.check_invariants().map_err(|e| anyhow::anyhow!("setup state: {e}"))?;

    // Who the shock puts below maintenance, from the deposits: equity = deposit − taker fee
    // − loss, maintenance = |size| · mark · k · MMF (k = 500 micro-USDC per tick-lot).
    let fee = MARK.0 * LONG_LOTS * 500 * 500 / 1_000_000;
    let loss = (MARK.0 - after.0) * LONG_LOTS * 500;
    let mmr = LONG_LOTS * after.0 * 500 * 3 / 100;
    let below = deposits.iter().filter(|&&d| d - fee - loss < mmr).count() as u64;
    let bankrupt = deposits.iter().filter(|&&d| d - fee - loss < 0).count() as u64;

    let shock = Sequenced {
        seq: Seq(b.seq + 1),
        ts: Timestamp(b.seq + 1),
        cmd: Command::Oracle { instrument: INSTRUMENT, price: after },
    };
    let instrument = *b.state.instrument(INSTRUMENT).context("listed")?;
    let low_bid = Price(after.0 - 1 - (BID_LEVELS - 1) * BID_STEP);
    let setup = Setup {
        accounts: opts.accounts,
        seed: opts.seed,
        long_btc: instrument.format_qty(Qty(LONG_LOTS)),
        deposit_usdc: [DEPOSIT_MIN, DEPOSIT_MAX],
        market_makers: makers,
        bidders: BIDDERS,
        bid_levels: BID_LEVELS,
        bid_btc: BID_LEVELS * BID_LOTS / 1_000,
        bid_range_usdc: [instrument.format_price(Price(after.0 - 1)), instrument.format_price(low_bid)],
        insurance_usdc: opts.insurance,
        mark_usdc: [instrument.format_price(MARK), instrument.format_price(after)],
        setup_commands: b.seq,
        setup_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        below_maintenance_expected: below,
        bankrupt_expected: bankrupt,
    };
    Ok(Prepared { state: b.state, shock, setup })
}

/// Runs the benchmark.
///
/// # Errors
/// Bad options, a `--pin` core that cannot be pinned to, a setup command that was rejected,
/// or a cascade that leaves an account below maintenance or breaks an invariant.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    ensure!(opts.accounts > 0, "--accounts must be positive");
    ensure!(opts.runs > 0, "--runs must be positive");
    ensure!(opts.insurance > 0, "--insurance must be positive");
    let machine = Machine::detect(opts.pin);
    if let Some(core) = opts.pin {
        crate::engine::pin(core)?;
    }
    let prepared = prepare(opts)?;

    // Untimed dry run: sizes the event buffer and touches its memory.
    let mut events: Vec<Event> = Vec::new();
    let mut dry = prepared.state.clone();
    dry.apply(&prepared.shock, &mut events);
    let reference = events.clone();
    let check = verify(&dry)?;
    drop(dry);

    let meter = CpuMeter::start();
    let mut runs_ns = Vec::with_capacity(opts.runs);
    let mut runs_agree = true;
    for _ in 0..opts.runs {
        let mut state = prepared.state.clone();
        events.clear();
        let elapsed = timed_shock(&mut state, &prepared.shock, &mut events);
        runs_ns.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        runs_agree &= events == reference;
        black_box(&state);
    }
    let other_load_cores = meter.and_then(|m| m.other_cores());
    let check = Check { runs_agree, ..check };
    ensure!(check.runs_agree, "the runs produced different events: the engine is not deterministic");
    let instrument = *prepared.state.instrument(INSTRUMENT).context("listed")?;
    Ok(Report {
        machine,
        setup: prepared.setup,
        engine_ns: runs_ns.iter().copied().min().context("at least one run")?,
        runs_ns,
        other_load_cores,
        cascade: summarize(&reference, &instrument),
        check,
    })
}

/// The timed part: one `apply` of the shock. Never inlined, so that a profiler can isolate
/// it (`valgrind --tool=callgrind --toggle-collect='*timed_shock*'`).
#[inline(never)]
fn timed_shock(state: &mut StateMachine, shock: &Sequenced, events: &mut Vec<Event>) -> std::time::Duration {
    let start = Instant::now();
    state.apply(shock, events);
    start.elapsed()
}

/// Every account with a position at or above maintenance, and every invariant.
fn verify(state: &StateMachine) -> anyhow::Result<Check> {
    let ledger = state.ledger();
    let (mut with_position, mut below) = (0u64, 0u64);
    for slot in ledger.slots_by_id() {
        if ledger.account(slot).has_position() {
            with_position += 1;
            if ledger.health(slot).below_maintenance() {
                below += 1;
            }
        }
    }
    let invariants = match state.check_invariants() {
        Ok(()) => "ok".to_string(),
        Err(e) => e,
    };
    ensure!(below == 0, "{below} accounts with a position are below maintenance after the cascade");
    ensure!(invariants == "ok", "invariants broken after the cascade: {invariants}");
    Ok(Check { accounts_with_position: with_position, below_maintenance: below, invariants, runs_agree: true })
}

fn summarize(events: &[Event], instrument: &l2x_types::Instrument) -> Cascade {
    let mut c = Cascade { events: events.len() as u64, ..Cascade::default() };
    let mut accounts: Vec<AccountId> = Vec::new();
    let (mut liq, mut takeover, mut adl) = (0i64, 0i64, 0i64);
    let mut insurance = None;
    for e in events {
        match *e {
            Event::Liquidation { account, qty, .. } => {
                c.liquidation_fills += 1;
                liq += qty.0;
                accounts.push(account);
            }
            Event::Takeover { account, qty, .. } => {
                c.takeovers += 1;
                takeover += qty.0;
                accounts.push(account);
            }
            Event::Adl { account, qty, .. } => {
                c.adl_closes += 1;
                adl += qty.0;
                accounts.push(account);
            }
            Event::LiquidationIncomplete { .. } => c.incomplete += 1,
            Event::Cancelled { reason: l2x_types::CancelReason::Liquidation, .. } => c.liquidation_cancels += 1,
            Event::Insurance { balance, .. } => insurance = Some(balance),
            _ => {}
        }
    }
    accounts.sort_unstable();
    accounts.dedup();
    c.liquidated_accounts = accounts.len() as u64;
    c.liquidation_btc = instrument.format_qty(Qty(liq));
    c.takeover_btc = instrument.format_qty(Qty(takeover));
    c.adl_btc = instrument.format_qty(Qty(adl));
    c.insurance_after_usdc = insurance.map_or_else(|| "unchanged".to_string(), |b| b.to_string());
    c
}

impl Report {
    /// The report as one JSON object.
    ///
    /// # Errors
    /// Serialization errors (none expected: every field is plain data).
    pub fn json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }

    /// A plain-text summary.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let (su, c, k) = (&self.setup, &self.cascade, &self.check);
        let _ = writeln!(s, "{}", self.machine.summary("pinned"));
        let _ = writeln!(
            s,
            "setup: {} longs of {} BTC (deposits {}..{} USDC, seed {}), {} market makers short, {} bidders with {} BTC of bids {}..{}, insurance {} USDC; {} commands in {} ms",
            su.accounts,
            su.long_btc,
            su.deposit_usdc[0],
            su.deposit_usdc[1],
            su.seed,
            su.market_makers,
            su.bidders,
            su.bid_btc,
            su.bid_range_usdc[0],
            su.bid_range_usdc[1],
            su.insurance_usdc,
            su.setup_commands,
            su.setup_ms
        );
        let _ = writeln!(
            s,
            "shock: oracle {} -> {}: {} accounts below maintenance ({} bankrupt) expected",
            su.mark_usdc[0], su.mark_usdc[1], su.below_maintenance_expected, su.bankrupt_expected
        );
        let runs: Vec<String> = self.runs_ns.iter().map(|&n| format!("{:.1} ms", n as f64 / 1e6)).collect();
        let _ = writeln!(
            s,
            "engine time of the shock command: {:.1} ms (runs {}; other load {} cores)",
            self.engine_ns as f64 / 1e6,
            runs.join(", "),
            self.other_load_cores.map_or_else(|| "?".to_string(), |c| format!("{c:.2}"))
        );
        let _ = writeln!(
            s,
            "cascade: {} accounts liquidated; {} liquidation fills ({} BTC), {} takeovers ({} BTC), {} ADL closes ({} BTC), {} incomplete; {} events; insurance after {} USDC",
            c.liquidated_accounts,
            c.liquidation_fills,
            c.liquidation_btc,
            c.takeovers,
            c.takeover_btc,
            c.adl_closes,
            c.adl_btc,
            c.incomplete,
            c.events,
            c.insurance_after_usdc
        );
        let _ = writeln!(
            s,
            "check: {} accounts with a position, {} below maintenance; invariants {}; runs agree {}",
            k.accounts_with_position, k.below_maintenance, k.invariants, k.runs_agree
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small cascade (no timing assertions): it liquidates, uses the book, the fund and
    /// ADL, and leaves nobody below maintenance.
    #[test]
    fn a_small_cascade_uses_book_fund_and_adl() {
        let opts = Options { accounts: 2_000, insurance: 1_000, runs: 2, ..Options::default() };
        let report = run(&opts).unwrap();
        let c = &report.cascade;
        assert_eq!(c.liquidated_accounts, report.setup.below_maintenance_expected, "{c:?}");
        assert!(c.liquidation_fills > 0 && c.takeovers > 0 && c.adl_closes > 0, "{c:?}");
        assert_eq!(c.incomplete, 0);
        assert_eq!(report.check.below_maintenance, 0);
        assert!(report.check.runs_agree);
        let v: serde_json::Value = serde_json::from_str(&report.json().unwrap()).unwrap();
        assert!(v["engine_ns"].is_u64() && v["cascade"]["adl_closes"].is_u64());
    }
}
