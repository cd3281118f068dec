//! The four-phase workload of the peer comparison (issue 17), and `l2x bench engine --mix
//! peers`: l2x alone on it, median nanoseconds per operation per phase.
//!
//! The same orders, in the same sequence, are given to every engine compared: l2x here and
//! in `bench/peers` (the `l2x-peers` binary), lobster, matchcore and orderbook-rs there. The
//! workload is therefore written as neutral [`Op`]s (integer prices and quantities, an order
//! number, an owner), which each engine's driver turns into its own commands **before** any
//! clock is read.
//!
//! ```text
//!  seed ─▶ PeerWorkload::generate ─▶ A: 100,000 resting limit orders (bids 9,500–9,999, asks 10,001–10,500)
//!                                    B: cancel every 5th of them (20,000)
//!                                    C: 20,000 takers of 10, alternating buy @10,500 / sell @9,500 (1 fill each)
//!                                    D: 200 sweeps of 1,000, alternating sides (100 fills each)
//!          L2xRun::new ─▶ setup (listing, deposits, oracle)  │ A │ B │ C │ D   (Sequenced commands)
//!                           untimed, per round                 └─ each phase timed as one loop
//! ```
//!
//! # The workload ([`Shape::ISSUE_17`])
//!
//! | phase | operations | what each does |
//! |---|---:|---|
//! | A add | 100,000 | a GTC limit order of 10 that rests: even numbers bids, odd numbers asks; each price drawn uniformly (ChaCha8, `--seed`) from the side's 500 levels, about 100 orders per level |
//! | B cancel | 20,000 | cancels orders 4, 9, 14, … of phase A (every 5th) |
//! | C one fill | 20,000 | a limit order of 10, alternating buy at the highest ask level and sell at the lowest bid level: it fills exactly the resting order at the front of the opposite best level |
//! | D sweep | 200 | a limit order of 1,000, alternating buy and sell at the same limits: 100 fills each |
//!
//! The numbers of fills follow from the shape ([`PeerWorkload::expected_fills`]); every
//! driver checks them after every round, so an engine that matched differently fails the
//! run instead of reporting a figure.
//!
//! # l2x's side ([`L2xRun`])
//!
//! Everything runs through `StateMachine::apply` with risk on: one perpetual (`PEER-PERP`,
//! tick 1, lot 0.001, maker fee 0.01 %, taker fee 0.05 %, price band 10 % around the oracle
//! price 10,000), makers on 100 accounts (order `k` belongs to account `1 + (k / 2) mod
//! 100`, so each maker has bids and asks), takers on two others (101 buys, 102 sells), and
//! deposits of 10⁹ USDC each: every order runs the full pre-trade margin check and none is
//! refused; every fill books both accounts, their fees and the liquidation index. Client
//! order id = order number + 1.
//!
//! # Timing (`l2x bench engine --mix peers`)
//!
//! One untimed warm-up round, then `--throughput-runs` rounds. A round starts from a fresh
//! state machine with the setup applied (untimed), then runs the phases in order, each as
//! one tight loop (one reused `Vec<Event>`, cleared per command) between two clock reads.
//! A phase's figure is the **median over the rounds** of its time divided by its number of
//! operations; the whole workload's figure is the median of the rounds' total time. Per
//! operation the clock is not read: at 30 ns a read it would be a large part of a 100 ns
//! operation.

use std::time::{Duration, Instant};

use l2x_engine::StateMachine;
use l2x_types::{
    AccountId, Amount, Cancel, ClientOrderId, Command, Decimal, Event, Holder, InstrumentId, InstrumentSpec, NewOrder,
    OrderType, Price, Qty, Seq, Sequenced, Side, StpMode, Symbol, TimeInForce, Timestamp,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::engine::Options;
use crate::machine::{CpuMeter, Machine};

/// The four phases, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A: resting limit orders.
    Add = 0,
    /// B: cancels of every 5th of them.
    Cancel = 1,
    /// C: takers that fill exactly one resting order each.
    Take = 2,
    /// D: sweeps that fill many resting orders each.
    Sweep = 3,
}

impl Phase {
    /// Every phase, in running order.
    pub const ALL: [Phase; 4] = [Phase::Add, Phase::Cancel, Phase::Take, Phase::Sweep];

    /// Its label in tables (`A add`, …).
    pub const fn label(self) -> &'static str {
        match self {
            Phase::Add => "A add",
            Phase::Cancel => "B cancel",
            Phase::Take => "C one fill",
            Phase::Sweep => "D sweep",
        }
    }
}

/// The sizes of the workload; [`Shape::ISSUE_17`] is the one measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shape {
    /// Resting orders per side in phase A.
    pub makers_per_side: u32,
    /// Price levels per side: bids `mid − levels ..= mid − 1`, asks `mid + 1 ..= mid + levels`.
    pub levels: u64,
    /// The price between the sides (no order rests there).
    pub mid: u64,
    /// Quantity of every order of phases A and C.
    pub qty: u64,
    /// Phase B cancels orders `k` with `k mod cancel_every = cancel_every − 1`.
    pub cancel_every: u32,
    /// Phase C's takers.
    pub takers: u32,
    /// Phase D's sweeps.
    pub sweeps: u32,
    /// Quantity of each sweep (a multiple of `qty`).
    pub sweep_qty: u64,
}

impl Shape {
    /// Issue 17's workload: 100,000 resting orders over 2 × 500 levels, 20,000 cancels,
    /// 20,000 one-fill takers, 200 sweeps of 100 fills.
    pub const ISSUE_17: Shape = Shape {
        makers_per_side: 50_000,
        levels: 500,
        mid: 10_000,
        qty: 10,
        cancel_every: 5,
        takers: 20_000,
        sweeps: 200,
        sweep_qty: 1_000,
    };

    /// A small workload with the same structure, for tests: 2,000 resting orders over
    /// 2 × 20 levels, 400 cancels, 200 takers, 10 sweeps of 10 fills.
    pub const TINY: Shape = Shape {
        makers_per_side: 1_000,
        levels: 20,
        mid: 10_000,
        qty: 10,
        cancel_every: 5,
        takers: 200,
        sweeps: 10,
        sweep_qty: 100,
    };

    /// The limit price of a taker on `side`: the far end of the opposite side's levels.
    pub const fn taker_price(&self, side: Side) -> u64 {
        match side {
            Side::Buy => self.mid + self.levels,
            Side::Sell => self.mid - self.levels,
        }
    }
}

/// A limit order of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// Its number, unique in the workload: `0..2·makers_per_side` for phase A, then the
    /// takers, then the sweeps.
    pub id: u32,
    /// Buy or sell.
    pub side: Side,
    /// Limit price (an integer; l2x reads it in ticks of 1).
    pub price: u64,
    /// Quantity (l2x reads it in lots of 0.001).
    pub qty: u64,
    /// Its owner (l2x's account id; book-only engines ignore it).
    pub account: u64,
}

/// One operation of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A new GTC limit order (it rests, or trades what it crosses and rests the rest).
    Limit(Order),
    /// The cancel of this resting order.
    Cancel(Order),
}

/// The four phases' operations, generated from a [`Shape`] and a seed.
#[derive(Clone, Debug)]
pub struct PeerWorkload {
    shape: Shape,
    seed: u64,
    phases: [Vec<Op>; 4],
}

/// Maker accounts: 1..=MAKER_ACCOUNTS.
const MAKER_ACCOUNTS: u64 = 100;
/// The account of every buying taker.
const BUY_TAKER: u64 = MAKER_ACCOUNTS + 1;
/// The account of every selling taker.
const SELL_TAKER: u64 = MAKER_ACCOUNTS + 2;

impl PeerWorkload {
    /// Generates the workload (deterministic in `shape` and `seed`).
    ///
    /// # Panics
    /// If the shape cannot produce the fills it promises: a zero quantity or level count,
    /// a sweep quantity that is not a multiple of the order quantity, or more fills on a
    /// side than orders rest there after the cancels.
    pub fn generate(shape: &Shape, seed: u64) -> PeerWorkload {
        assert!(shape.qty > 0 && shape.levels > 0 && shape.levels < shape.mid, "a degenerate shape: {shape:?}");
        assert!(shape.sweep_qty.is_multiple_of(shape.qty), "a sweep must fill whole orders: {shape:?}");
        assert!(shape.cancel_every > 0, "cancel_every must be positive");
        let fills_per_side =
            u64::from(shape.takers.div_ceil(2)) + u64::from(shape.sweeps.div_ceil(2)) * shape.sweep_qty / shape.qty;
        let left_per_side =
            u64::from(shape.makers_per_side) - u64::from(shape.makers_per_side) / u64::from(shape.cancel_every) - 1;
        assert!(fills_per_side <= left_per_side, "the takers would empty a side: {shape:?}");

        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let makers = 2 * shape.makers_per_side;
        let add: Vec<Op> = (0..makers)
            .map(|id| {
                let side = if id.is_multiple_of(2) { Side::Buy } else { Side::Sell };
                let offset = rng.random_range(1..=shape.levels);
                let price = match side {
                    Side::Buy => shape.mid - offset,
                    Side::Sell => shape.mid + offset,
                };
                let account = 1 + u64::from(id / 2) % MAKER_ACCOUNTS;
                Op::Limit(Order { id, side, price, qty: shape.qty, account })
            })
            .collect();
        let cancel: Vec<Op> = add
            .iter()
            .skip(shape.cancel_every as usize - 1)
            .step_by(shape.cancel_every as usize)
            .map(|op| match *op {
                Op::Limit(o) | Op::Cancel(o) => Op::Cancel(o),
            })
            .collect();
        let taker = |id: u32, n: u32, qty: u64| {
            let side = if n.is_multiple_of(2) { Side::Buy } else { Side::Sell };
            let account = if side == Side::Buy { BUY_TAKER } else { SELL_TAKER };
            Op::Limit(Order { id, side, price: shape.taker_price(side), qty, account })
        };
        let take: Vec<Op> = (0..shape.takers).map(|n| taker(makers + n, n, shape.qty)).collect();
        let sweep: Vec<Op> = (0..shape.sweeps).map(|n| taker(makers + shape.takers + n, n, shape.sweep_qty)).collect();
        PeerWorkload { shape: *shape, seed, phases: [add, cancel, take, sweep] }
    }

    /// The shape it was generated from.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The seed it was generated from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The operations of one phase, in order.
    pub fn phase(&self, phase: Phase) -> &[Op] {
        &self.phases[phase as usize]
    }

    /// How many orders are numbered (phase A's, the takers and the sweeps).
    pub fn order_count(&self) -> u32 {
        2 * self.shape.makers_per_side + self.shape.takers + self.shape.sweeps
    }

    /// Fills every correct price-time engine produces in the phase.
    pub fn expected_fills(&self, phase: Phase) -> u64 {
        match phase {
            Phase::Add | Phase::Cancel => 0,
            Phase::Take => u64::from(self.shape.takers),
            Phase::Sweep => u64::from(self.shape.sweeps) * (self.shape.sweep_qty / self.shape.qty),
        }
    }

    /// Orders resting after the phase (both sides).
    pub fn expected_resting(&self, phase: Phase) -> u64 {
        let added = 2 * u64::from(self.shape.makers_per_side);
        let cancelled = self.phase(Phase::Cancel).len() as u64;
        match phase {
            Phase::Add => added,
            Phase::Cancel => added - cancelled,
            Phase::Take => added - cancelled - self.expected_fills(Phase::Take),
            Phase::Sweep => added - cancelled - self.expected_fills(Phase::Take) - self.expected_fills(Phase::Sweep),
        }
    }
}

/// What one phase did on l2x, counted from its events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhaseCount {
    /// `trade` events.
    pub fills: u64,
    /// Events of any kind.
    pub events: u64,
    /// `rejected` events (none expected).
    pub rejects: u64,
}

/// The workload as l2x commands: the untimed setup and the four phases.
#[derive(Clone, Debug)]
pub struct L2xRun {
    setup: Vec<Sequenced>,
    phases: [Vec<Sequenced>; 4],
}

/// The one instrument.
const INSTRUMENT: InstrumentId = InstrumentId(0);
/// Each account's deposit, USDC: no order is refused, no account nears maintenance.
const DEPOSIT_USDC: i64 = 1_000_000_000;

impl L2xRun {
    /// Builds every command (setup and phases) from the workload.
    ///
    /// # Panics
    /// If a price or quantity of the workload does not fit l2x's `i64` ticks and lots.
    pub fn new(w: &PeerWorkload) -> L2xRun {
        let mut seq = 0u64;
        let mut next = |cmd: Command| {
            seq += 1;
            Sequenced { seq: Seq(seq), ts: Timestamp(seq), cmd }
        };
        let mut setup = vec![next(Command::ListInstrument(Box::new(spec())))];
        for account in 1..=SELL_TAKER {
            let amount = Amount(DEPOSIT_USDC * Amount::ONE);
            setup.push(next(Command::Deposit { to: Holder::Account(AccountId(account)), amount }));
        }
        let mark = i64::try_from(w.shape.mid).expect("the mid fits i64");
        setup.push(next(Command::Oracle { instrument: INSTRUMENT, price: Price(mark) }));
        let phases = Phase::ALL.map(|p| w.phase(p).iter().map(|op| next(command(op))).collect());
        L2xRun { setup, phases }
    }

    /// The commands of one phase.
    pub fn phase(&self, phase: Phase) -> &[Sequenced] {
        &self.phases[phase as usize]
    }

    /// A fresh state machine with the setup applied (listing, deposits, oracle).
    pub fn fresh_state(&self) -> StateMachine {
        let mut state = StateMachine::new();
        let mut events = Vec::new();
        for cmd in &self.setup {
            events.clear();
            state.apply(cmd, &mut events);
        }
        state
    }

    /// Runs one phase on `state` and counts what it did. Phase D runs in its own function
    /// (`timed_sweep_phase`) so that a profiler can isolate it:
    /// `valgrind --tool=callgrind --toggle-collect='*timed_sweep_phase*'`.
    pub fn run_phase(&self, state: &mut StateMachine, phase: Phase, events: &mut Vec<Event>) -> PhaseCount {
        let commands = self.phase(phase);
        match phase {
            Phase::Sweep => timed_sweep_phase(state, commands, events),
            _ => timed_phase(state, commands, events),
        }
    }
}

/// The instrument: integer prices (tick 1), lots of 0.001, realistic fees.
fn spec() -> InstrumentSpec {
    InstrumentSpec {
        symbol: Symbol::try_new("PEER-PERP").expect("a valid symbol"),
        tick_size: Decimal::ONE,
        lot_size: Decimal::new(1, 3),
        initial_margin: Decimal::new(5, 2),
        maintenance_margin: Decimal::new(3, 2),
        max_order_qty: Decimal::new(1_000, 0),
        max_position_qty: Decimal::new(1_000_000, 0),
        price_band: Decimal::new(1, 1),
        maker_fee: Decimal::new(1, 4),
        taker_fee: Decimal::new(5, 4),
        liquidation_fee: InstrumentSpec::DEFAULT_LIQUIDATION_FEE,
        impact_notional: InstrumentSpec::DEFAULT_IMPACT_NOTIONAL,
        funding_interest: Decimal::ZERO,
        funding_clamp: Decimal::new(2, 2),
    }
}

fn command(op: &Op) -> Command {
    match *op {
        Op::Limit(o) => Command::NewOrder(NewOrder {
            account: AccountId(o.account),
            cid: ClientOrderId(u64::from(o.id) + 1),
            instrument: INSTRUMENT,
            side: o.side,
            order_type: OrderType::Limit,
            price: Some(Price(i64::try_from(o.price).expect("a price fits i64"))),
            qty: Qty(i64::try_from(o.qty).expect("a quantity fits i64")),
            tif: TimeInForce::Gtc,
            expire_ts: None,
            post_only: false,
            reduce_only: false,
            stp: StpMode::CancelTaker,
        }),
        Op::Cancel(o) => Command::Cancel(Cancel {
            account: AccountId(o.account),
            cid: ClientOrderId(u64::from(o.id) + 1),
            on_disconnect: false,
        }),
    }
}

/// Phases A to C: one tight loop.
#[inline(never)]
fn timed_phase(state: &mut StateMachine, commands: &[Sequenced], events: &mut Vec<Event>) -> PhaseCount {
    phase_loop(state, commands, events)
}

/// Phase D, the sweeps, in a function of its own for the profiler. The `black_box` makes
/// its code differ from [`timed_phase`]'s: identical functions are folded into one by the
/// optimiser, and the profiler would find no `timed_sweep_phase`.
#[inline(never)]
fn timed_sweep_phase(state: &mut StateMachine, commands: &[Sequenced], events: &mut Vec<Event>) -> PhaseCount {
    std::hint::black_box(Phase::Sweep);
    phase_loop(state, commands, events)
}

#[inline(always)]
fn phase_loop(state: &mut StateMachine, commands: &[Sequenced], events: &mut Vec<Event>) -> PhaseCount {
    let mut count = PhaseCount::default();
    for cmd in commands {
        events.clear();
        state.apply(cmd, events);
        count.events += events.len() as u64;
        for ev in events.iter() {
            match ev {
                Event::Trade(_) => count.fills += 1,
                Event::Rejected { .. } => count.rejects += 1,
                _ => {}
            }
        }
    }
    count
}

/// Per-round phase times of one engine, and their medians.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rounds {
    /// Nanoseconds of each phase in each round, `[round][phase]`.
    pub ns: Vec<[u64; 4]>,
}

impl Rounds {
    /// Records one round.
    pub fn push(&mut self, times: [Duration; 4]) {
        self.ns.push(times.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)));
    }

    /// Median over the rounds of the phase's time, nanoseconds (`None` without rounds).
    pub fn median_ns(&self, phase: Phase) -> Option<f64> {
        median(self.ns.iter().map(|r| r[phase as usize]).collect())
    }

    /// Median over the rounds of the whole workload's time (the four phases), nanoseconds.
    pub fn median_total_ns(&self) -> Option<f64> {
        median(self.ns.iter().map(|r| r.iter().sum()).collect())
    }
}

/// The median (the mean of the two middle values for an even count).
pub fn median(mut xs: Vec<u64>) -> Option<f64> {
    xs.sort_unstable();
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2] as f64),
        _ => Some((xs[n / 2 - 1] as f64 + xs[n / 2] as f64) / 2.0),
    }
}

/// One round of l2x: a fresh state (untimed), then the four phases, each timed. Checks the
/// fills and rejects of each phase against the workload.
///
/// # Errors
/// A phase whose fills differ from [`PeerWorkload::expected_fills`], or a rejected command.
pub fn l2x_round(
    w: &PeerWorkload,
    run: &L2xRun,
    events: &mut Vec<Event>,
) -> anyhow::Result<([Duration; 4], [PhaseCount; 4])> {
    let mut state = run.fresh_state();
    let mut times = [Duration::ZERO; 4];
    let mut counts = [PhaseCount::default(); 4];
    for phase in Phase::ALL {
        let start = Instant::now();
        let count = run.run_phase(&mut state, phase, events);
        times[phase as usize] = start.elapsed();
        counts[phase as usize] = count;
        anyhow::ensure!(count.rejects == 0, "l2x, phase {}: {} commands rejected", phase.label(), count.rejects);
        anyhow::ensure!(
            count.fills == w.expected_fills(phase),
            "l2x, phase {}: {} fills, expected {}",
            phase.label(),
            count.fills,
            w.expected_fills(phase)
        );
    }
    std::hint::black_box(&state);
    Ok((times, counts))
}

/// `l2x bench engine --mix peers`: what it measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Always `peers`.
    pub mix: &'static str,
    /// Where it ran.
    pub machine: Machine,
    /// Seed of the price draws.
    pub seed: u64,
    /// The workload's sizes.
    pub shape: Shape,
    /// Timed rounds (after one untimed warm-up round).
    pub rounds: usize,
    /// One entry per phase.
    pub phases: Vec<PhaseReport>,
    /// Median over the rounds of the whole workload's time, nanoseconds.
    pub total_median_ns: f64,
    /// Mean cores busy with other work during the timed rounds (see [`CpuMeter`]).
    pub other_load_cores: Option<f64>,
}

/// The figures of one phase.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseReport {
    /// Which phase.
    pub phase: Phase,
    /// Operations (commands) in the phase.
    pub ops: u64,
    /// Median over the rounds of the phase's time per operation, nanoseconds.
    pub median_ns_per_op: f64,
    /// Every round's time per operation, nanoseconds.
    pub rounds_ns_per_op: Vec<f64>,
    /// Fills per operation.
    pub fills_per_op: f64,
    /// Events per operation.
    pub events_per_op: f64,
}

/// Runs `l2x bench engine --mix peers`: `--seed` draws the prices, `--throughput-runs`
/// is the number of timed rounds, `--pin` and `--json` as for the other mixes.
///
/// # Errors
/// A `--pin` core that cannot be pinned to, or an engine that did not produce the
/// workload's fills.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let machine = Machine::detect(opts.pin);
    if let Some(core) = opts.pin {
        crate::engine::pin(core)?;
    }
    let w = PeerWorkload::generate(&Shape::ISSUE_17, opts.seed);
    let run = L2xRun::new(&w);
    let mut events = Vec::with_capacity(4096);
    let (_, counts) = l2x_round(&w, &run, &mut events)?;
    let meter = CpuMeter::start();
    let mut rounds = Rounds::default();
    for _ in 0..opts.throughput_runs {
        let (times, _) = l2x_round(&w, &run, &mut events)?;
        rounds.push(times);
    }
    let other_load_cores = meter.and_then(|m| m.other_cores());
    let phases = Phase::ALL
        .iter()
        .map(|&phase| {
            let ops = w.phase(phase).len() as u64;
            let per_op = |ns: f64| ns / ops.max(1) as f64;
            let c = counts[phase as usize];
            PhaseReport {
                phase,
                ops,
                median_ns_per_op: per_op(rounds.median_ns(phase).unwrap_or(0.0)),
                rounds_ns_per_op: rounds.ns.iter().map(|r| per_op(r[phase as usize] as f64)).collect(),
                fills_per_op: c.fills as f64 / ops.max(1) as f64,
                events_per_op: c.events as f64 / ops.max(1) as f64,
            }
        })
        .collect();
    Ok(Report {
        mix: "peers",
        machine,
        seed: opts.seed,
        shape: Shape::ISSUE_17,
        rounds: opts.throughput_runs,
        phases,
        total_median_ns: rounds.median_total_ns().unwrap_or(0.0),
        other_load_cores,
    })
}

impl Report {
    /// One JSON object.
    ///
    /// # Errors
    /// Serialization errors (none expected: every field is plain data).
    pub fn json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }

    /// A plain-text table.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.machine.summary("pinned"));
        let _ = writeln!(
            s,
            "mix peers (issue 17's four phases, seed {}; median of {} rounds after 1 warm-up round; other load {} cores)",
            self.seed,
            self.rounds,
            self.other_load_cores.map_or_else(|| "?".to_string(), |c| format!("{c:.2}"))
        );
        let _ = writeln!(
            s,
            "  {:<11} {:>7} {:>12} {:>12} {:>12} {:>8} {:>8}",
            "phase", "ops", "median ns/op", "min", "max", "fills/op", "events/op"
        );
        for p in &self.phases {
            let min = p.rounds_ns_per_op.iter().copied().fold(f64::INFINITY, f64::min);
            let max = p.rounds_ns_per_op.iter().copied().fold(0.0, f64::max);
            let _ = writeln!(
                s,
                "  {:<11} {:>7} {:>12.0} {:>12.0} {:>12.0} {:>8.2} {:>8.2}",
                p.phase.label(),
                p.ops,
                p.median_ns_per_op,
                min,
                max,
                p.fills_per_op,
                p.events_per_op
            );
        }
        let _ = writeln!(s, "  whole workload: {:.2} ms (median)", self.total_median_ns / 1e6);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_17_shape_has_the_issue_17_counts() {
        let w = PeerWorkload::generate(&Shape::ISSUE_17, 42);
        assert_eq!(w.phase(Phase::Add).len(), 100_000);
        assert_eq!(w.phase(Phase::Cancel).len(), 20_000);
        assert_eq!(w.phase(Phase::Take).len(), 20_000);
        assert_eq!(w.phase(Phase::Sweep).len(), 200);
        assert_eq!(w.expected_fills(Phase::Take), 20_000);
        assert_eq!(w.expected_fills(Phase::Sweep), 20_000);
        let bids: Vec<u64> = w
            .phase(Phase::Add)
            .iter()
            .filter_map(|op| match op {
                Op::Limit(o) if o.side == Side::Buy => Some(o.price),
                _ => None,
            })
            .collect();
        assert_eq!(bids.len(), 50_000);
        assert_eq!((bids.iter().min(), bids.iter().max()), (Some(&9_500), Some(&9_999)));
        let asks = w.phase(Phase::Add).iter().filter_map(|op| match op {
            Op::Limit(o) if o.side == Side::Sell => Some(o.price),
            _ => None,
        });
        assert_eq!((asks.clone().min(), asks.max()), (Some(10_001), Some(10_500)));
        let Op::Cancel(first) = w.phase(Phase::Cancel)[0] else { panic!("phase B cancels") };
        assert_eq!(first.id, 4);
        assert_eq!(w.order_count(), 120_200);
    }

    /// The tiny shape through l2x: every phase fills what it should, nothing is rejected,
    /// the book holds what it should after each phase, and every invariant holds.
    #[test]
    fn l2x_produces_the_expected_fills_on_the_tiny_workload() {
        let w = PeerWorkload::generate(&Shape::TINY, 7);
        let run = L2xRun::new(&w);
        let mut state = run.fresh_state();
        let mut events = Vec::new();
        for phase in Phase::ALL {
            let count = run.run_phase(&mut state, phase, &mut events);
            assert_eq!(count.rejects, 0, "{phase:?}");
            assert_eq!(count.fills, w.expected_fills(phase), "{phase:?}");
            assert_eq!(state.resting_count() as u64, w.expected_resting(phase), "{phase:?}");
        }
        state.check_invariants().unwrap();
    }

    #[test]
    fn same_seed_same_workload() {
        let a = PeerWorkload::generate(&Shape::TINY, 1);
        let b = PeerWorkload::generate(&Shape::TINY, 1);
        let c = PeerWorkload::generate(&Shape::TINY, 2);
        assert_eq!(a.phase(Phase::Add), b.phase(Phase::Add));
        assert_ne!(a.phase(Phase::Add), c.phase(Phase::Add));
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![5, 1, 3]), Some(3.0));
        assert_eq!(median(vec![4, 1, 3, 2]), Some(2.5));
    }
}
