//! Seeded command streams for the engine benchmark: realistic order flow around one mark
//! price on one instrument, whose cancels and amends always target live orders.
//!
//! # How a stream is made
//!
//! ```text
//!  ChaCha8(seed) ──▶ pick a kind by the mix's shares ──▶ price and size it from the book ──▶ Command
//!                                                                                             │
//!        live orders (account, cid, side, price, leaves) ◀── events ◀── shadow StateMachine ◀─┘
//! ```
//!
//! The generator runs every command it makes through a shadow [`StateMachine`] and tracks
//! the live orders from the events (`accepted`, `amended`, `trade`, `cancelled`), so a cancel
//! or an amend always names an order that is live at that point of the stream, and orders
//! are priced against the book as it really is. The engine is deterministic, so replaying
//! the same commands on a fresh state machine reproduces the same book at every step: the
//! timed replay sees exactly the states the generator saw.
//!
//! # Layout of a [`Workload`]
//!
//! 1. **Setup**: list `BTC-PERP` (tick 0.5, lot 0.001, band 10 %, no trading fees), deposit
//!    `collateral_usdc` into each account (by default 10⁹ USDC: every order passes the
//!    pre-trade margin check, which runs in full, and no account comes near maintenance;
//!    with less, some orders are refused `insufficient_margin` and the stream stays valid,
//!    the generator tracking only accepted orders), one oracle price, 50,000 (100,000
//!    ticks).
//! 2. **Prefill**: passive GTC orders until `resting` orders rest.
//! 3. **Warm-up**: `warmup` commands of the mix (replayed untimed before every timed run).
//! 4. **Measured**: `commands` commands of the mix, the part that is timed.
//!
//! # Pricing
//!
//! - A *reference* price is the book's mid pulled one eighth of the way back to the mark,
//!   so the book wanders with the flow but does not drift away.
//! - A *passive* order rests `1 + d` ticks behind the reference, `d = ⌊u₁·u₂ / D⌋` with
//!   `u₁, u₂` uniform in `0..D` (`D` the mix's `depth_ticks`): dense near the touch, thin
//!   behind it. It is clamped so that it never crosses.
//! - A *crossing* GTC order is priced at the opposite best: it takes what is there and rests
//!   the remainder (moving the touch). An IOC or FOK taker is priced 0 to 2 ticks through the
//!   opposite best; a market order has no price (it is bounded by the price band).
//! - An amend either moves the price by 1 to 8 ticks either way (clamped passive, so it
//!   loses priority but does not cross), or, with the mix's `amend_cross` share, moves it to
//!   the opposite best (it trades as a taker), or, with the `amend_qty_down` share, lowers
//!   the open quantity and keeps priority.
//! - Maker quantities are uniform in 1..=1,000 lots (0.001 to 1 BTC). Taker quantities are
//!   uniform around a mean of `taker_size` ‰ of the mean maker quantity.
//! - **Book-size feedback**: the mean taker quantity and the crossing shares (`gtc_cross`,
//!   `amend_cross`) are scaled by `(live / resting)³`, the ratio clamped to ¼..2. This is the
//!   one feedback loop; it holds the book near `resting` orders without touching the mix's
//!   shares of command kinds.
//!
//! Accounts are drawn uniformly, so an occasional self-trade (`cancel_taker`) happens, as it
//! does on a real venue. Client order ids count up per account and are never reused.

use l2x_engine::StateMachine;
use l2x_types::{
    AccountId, Amend, Amount, Cancel, ClientOrderId, Command, Decimal, DetMap, Event, Holder, InstrumentId,
    InstrumentSpec, NewOrder, OrderType, Price, Qty, Seq, Sequenced, Side, StpMode, Symbol, TimeInForce, Timestamp,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The one instrument of every workload.
pub const INSTRUMENT: InstrumentId = InstrumentId(0);
/// The oracle (mark) price, in ticks of 0.5: 50,000 USDC.
pub const MARK: Price = Price(100_000);
/// Each account's deposit by default, USDC: enough that no order is refused for margin and
/// no account comes near maintenance.
pub const DEFAULT_COLLATERAL_USDC: i64 = 1_000_000_000;
/// Largest maker quantity, in lots (1 BTC).
const MAKER_MAX_LOTS: i64 = 1_000;
/// Largest price move of a passive amend, in ticks.
const AMEND_MAX_TICKS: i64 = 8;

/// The kinds of command a mix is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A new good-till-cancel limit order (passive, or crossing with the mix's `gtc_cross` share).
    Gtc = 0,
    /// A new immediate-or-cancel limit order priced through the opposite best.
    Ioc = 1,
    /// A new fill-or-kill limit order priced through the opposite best.
    Fok = 2,
    /// A new market order (IOC, bounded by the price band).
    Market = 3,
    /// A cancel of a live order.
    Cancel = 4,
    /// An amend of a live order.
    Amend = 5,
}

impl Op {
    /// Number of kinds.
    pub const COUNT: usize = 6;
    /// Every kind, in the order of [`Mix::shares`].
    pub const ALL: [Op; Op::COUNT] = [Op::Gtc, Op::Ioc, Op::Fok, Op::Market, Op::Cancel, Op::Amend];

    /// Its name in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Op::Gtc => "gtc",
            Op::Ioc => "ioc",
            Op::Fok => "fok",
            Op::Market => "market",
            Op::Cancel => "cancel",
            Op::Amend => "amend",
        }
    }
}

/// A command mix: the share of each kind of command and how orders are priced and sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Mix {
    /// Its name on the command line and in reports.
    pub name: &'static str,
    /// Per-mille of the stream for each [`Op`], in [`Op::ALL`] order; they sum to 1,000.
    pub shares: [u32; Op::COUNT],
    /// Per-mille of GTC orders priced at the opposite best (they take, then rest the rest).
    pub gtc_cross: u32,
    /// Per-mille of amends whose new price is the opposite best (they trade as takers).
    pub amend_cross: u32,
    /// Per-mille of amends that only lower the open quantity (priority kept).
    pub amend_qty_down: u32,
    /// Passive orders rest up to this many ticks behind the reference price.
    pub depth_ticks: i64,
    /// Mean taker quantity, per-mille of the mean maker quantity (before the book-size feedback).
    pub taker_size: u32,
}

impl Mix {
    /// exchange-core's published benchmark mix: 9 % GTC, 3 % IOC, 6 % cancel, 82 % move
    /// (amend the price) over about 1,000 resting orders spread over hundreds of price
    /// levels. About 6 % of its commands trade: here the IOCs, 15 % of the GTC orders and 2 %
    /// of the amends cross.
    pub const EXCHANGE_CORE: Mix = Mix {
        name: "exchange-core",
        shares: [90, 30, 0, 0, 60, 820],
        gtc_cross: 150,
        amend_cross: 10,
        amend_qty_down: 0,
        depth_ticks: 400,
        taker_size: 300,
    };

    /// Heavier on new orders and trades: 40 % GTC (a quarter of them crossing), 20 % IOC,
    /// 3 % FOK, 2 % market, 15 % cancel, 20 % amend (a fifth of them lowering the quantity),
    /// in a tighter book.
    pub const TAKER_HEAVY: Mix = Mix {
        name: "taker-heavy",
        shares: [400, 200, 30, 20, 150, 200],
        gtc_cross: 250,
        amend_cross: 50,
        amend_qty_down: 200,
        depth_ticks: 100,
        taker_size: 1_000,
    };

    /// The share of `kind`, as a fraction of one.
    pub fn share(&self, kind: Op) -> f64 {
        f64::from(self.shares[kind as usize]) / 1_000.0
    }
}

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Config {
    /// The mix.
    pub mix: Mix,
    /// Seed of the ChaCha8 generator: same seed, same stream.
    pub seed: u64,
    /// Number of trading accounts (ids 1..=accounts).
    pub accounts: u32,
    /// Each account's deposit, USDC.
    pub collateral_usdc: i64,
    /// Resting orders the book is filled to before the stream, and held near.
    pub resting: usize,
    /// Commands replayed untimed before each timed run.
    pub warmup: usize,
    /// Commands in the timed part.
    pub commands: usize,
}

/// What the measured part of a stream did when the generator ran it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Commands of each [`Op`], in [`Op::ALL`] order.
    pub kinds: [u64; Op::COUNT],
    /// `trade` events.
    pub trades: u64,
    /// All events.
    pub events: u64,
    /// `rejected` events (none expected: the stream is made to be valid).
    pub rejects: u64,
    /// Fewest resting orders after a command.
    pub resting_min: usize,
    /// Most resting orders after a command.
    pub resting_max: usize,
    /// Mean resting orders after a command.
    pub resting_mean: f64,
    /// Resting orders at the end.
    pub resting_end: usize,
    /// Price levels (both sides) at the end.
    pub levels_end: usize,
}

/// A generated stream: setup, prefill, warm-up and measured commands, in sequence order.
#[derive(Clone, Debug)]
pub struct Workload {
    config: Config,
    commands: Vec<Sequenced>,
    setup_len: usize,
    measured_start: usize,
    stats: Stats,
}

impl Workload {
    /// Generates the stream of `config` (deterministic in the config).
    ///
    /// # Panics
    /// If `config.accounts` is zero.
    pub fn generate(config: &Config) -> Workload {
        assert!(config.accounts > 0, "a workload needs at least one account");
        let mut g = Generator::new(config);
        g.setup();
        g.prefill();
        let setup_len = g.commands.len();
        for _ in 0..config.warmup {
            g.step(false);
        }
        let measured_start = g.commands.len();
        g.stats.resting_min = usize::MAX;
        let mut resting_sum = 0u64;
        for _ in 0..config.commands {
            g.step(true);
            let live = g.live.len();
            g.stats.resting_min = g.stats.resting_min.min(live);
            g.stats.resting_max = g.stats.resting_max.max(live);
            resting_sum += live as u64;
        }
        if config.commands == 0 {
            g.stats.resting_min = g.live.len();
        } else {
            g.stats.resting_mean = resting_sum as f64 / config.commands as f64;
        }
        g.stats.resting_end = g.state.resting_count();
        let resting = g.state.resting_orders();
        g.stats.levels_end =
            1 + resting.windows(2).filter(|w| (w[0].side, w[0].price) != (w[1].side, w[1].price)).count();
        if resting.is_empty() {
            g.stats.levels_end = 0;
        }
        Workload { config: *config, commands: g.commands, setup_len, measured_start, stats: g.stats }
    }

    /// The configuration it was generated from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the measured part did when generated.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Every command: setup, prefill, warm-up, measured.
    pub fn all(&self) -> &[Sequenced] {
        &self.commands
    }

    /// Setup and prefill (instrument, deposits, oracle, resting orders).
    pub fn setup(&self) -> &[Sequenced] {
        &self.commands[..self.setup_len]
    }

    /// The warm-up commands.
    pub fn warmup(&self) -> &[Sequenced] {
        &self.commands[self.setup_len..self.measured_start]
    }

    /// The commands to time.
    pub fn measured(&self) -> &[Sequenced] {
        &self.commands[self.measured_start..]
    }

    /// A fresh state machine with setup, prefill and warm-up applied: the state the measured
    /// commands were generated against.
    pub fn prepared_state(&self) -> StateMachine {
        let mut state = StateMachine::new();
        let mut events = Vec::with_capacity(1024);
        for cmd in &self.commands[..self.measured_start] {
            events.clear();
            state.apply(cmd, &mut events);
        }
        state
    }
}

/// A live order as the generator knows it.
#[derive(Clone, Copy, Debug)]
struct LiveOrder {
    account: AccountId,
    cid: ClientOrderId,
    side: Side,
    price: Price,
    leaves: Qty,
}

/// Live orders: a dense vector to pick from uniformly, and an index by (account, cid).
#[derive(Debug, Default)]
struct Live {
    orders: Vec<LiveOrder>,
    index: DetMap<(AccountId, ClientOrderId), usize>,
}

impl Live {
    fn len(&self) -> usize {
        self.orders.len()
    }

    fn insert(&mut self, o: LiveOrder) {
        self.index.insert((o.account, o.cid), self.orders.len());
        self.orders.push(o);
    }

    fn get_mut(&mut self, account: AccountId, cid: ClientOrderId) -> Option<&mut LiveOrder> {
        let i = *self.index.get(&(account, cid))?;
        Some(&mut self.orders[i])
    }

    fn remove(&mut self, account: AccountId, cid: ClientOrderId) {
        let Some(i) = self.index.remove(&(account, cid)) else { return };
        self.orders.swap_remove(i);
        if let Some(moved) = self.orders.get(i) {
            self.index.insert((moved.account, moved.cid), i);
        }
    }
}

struct Generator {
    config: Config,
    rng: ChaCha8Rng,
    state: StateMachine,
    events: Vec<Event>,
    commands: Vec<Sequenced>,
    live: Live,
    /// Next client order id per account (index = account id − 1).
    next_cid: Vec<u64>,
    band: (Price, Price),
    touched: Vec<(AccountId, ClientOrderId)>,
    stats: Stats,
}

impl Generator {
    fn new(config: &Config) -> Generator {
        Generator {
            config: *config,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            state: StateMachine::new(),
            events: Vec::with_capacity(1024),
            commands: Vec::with_capacity(
                config.accounts as usize + config.resting + config.warmup + config.commands + 2,
            ),
            live: Live::default(),
            next_cid: vec![1; config.accounts as usize],
            band: (MARK, MARK),
            touched: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Applies a command to the shadow state, tracks live orders and appends it.
    fn push(&mut self, cmd: Command, measured: bool) {
        let seq = self.commands.len() as u64 + 1;
        let sequenced = Sequenced { seq: Seq(seq), ts: Timestamp(seq), cmd };
        self.events.clear();
        self.state.apply(&sequenced, &mut self.events);
        self.track(measured);
        self.commands.push(sequenced);
    }

    fn setup(&mut self) {
        let spec = InstrumentSpec {
            symbol: Symbol::try_new("BTC-PERP").expect("a valid symbol"),
            tick_size: Decimal::new(5, 1),
            lot_size: Decimal::new(1, 3),
            initial_margin: Decimal::new(5, 2),
            maintenance_margin: Decimal::new(3, 2),
            max_order_qty: Decimal::new(1_000, 0),
            max_position_qty: Decimal::new(1_000_000, 0),
            price_band: Decimal::new(1, 1),
            maker_fee: Decimal::ZERO,
            taker_fee: Decimal::ZERO,
            liquidation_fee: InstrumentSpec::DEFAULT_LIQUIDATION_FEE,
            impact_notional: InstrumentSpec::DEFAULT_IMPACT_NOTIONAL,
            funding_interest: Decimal::ZERO,
            funding_clamp: Decimal::new(2, 2),
        };
        self.push(Command::ListInstrument(Box::new(spec)), false);
        for account in 1..=u64::from(self.config.accounts) {
            let amount = Amount(self.config.collateral_usdc.saturating_mul(Amount::ONE));
            self.push(Command::Deposit { to: Holder::Account(AccountId(account)), amount }, false);
        }
        self.push(Command::Oracle { instrument: INSTRUMENT, price: MARK }, false);
        self.band = self.state.instrument(INSTRUMENT).expect("listed above").band(MARK);
    }

    /// Passive GTC orders until the book holds `resting` orders (each one rests: a passive
    /// price never crosses).
    fn prefill(&mut self) {
        for _ in 0..self.config.resting.saturating_mul(4) {
            if self.live.len() >= self.config.resting {
                break;
            }
            let cmd = self.gtc(false);
            self.push(cmd, false);
        }
    }

    fn step(&mut self, measured: bool) {
        let mut kind = self.pick_kind();
        let cmd = match kind {
            Op::Gtc => None,
            Op::Ioc => Some(self.taker(OrderType::Limit, TimeInForce::Ioc)),
            Op::Fok => Some(self.taker(OrderType::Limit, TimeInForce::Fok)),
            Op::Market => Some(self.taker(OrderType::Market, TimeInForce::Ioc)),
            Op::Cancel => self.cancel(),
            Op::Amend => self.amend(),
        };
        let cmd = cmd.unwrap_or_else(|| {
            // A GTC, or a cancel or amend with no live order to target (an empty book).
            kind = Op::Gtc;
            let cross = self.crossing(self.config.mix.gtc_cross);
            self.gtc(cross)
        });
        if measured {
            self.stats.kinds[kind as usize] += 1;
        }
        self.push(cmd, measured);
    }

    fn per_mille(&mut self, share: u32) -> bool {
        self.rng.random_range(0..1_000u32) < share
    }

    fn pick_kind(&mut self) -> Op {
        let mut r = self.rng.random_range(0..1_000u32);
        for kind in Op::ALL {
            let share = self.config.mix.shares[kind as usize];
            if r < share {
                return kind;
            }
            r -= share;
        }
        Op::Gtc
    }

    fn side(&mut self) -> Side {
        if self.rng.random_bool(0.5) { Side::Buy } else { Side::Sell }
    }

    /// A random account and its next client order id.
    fn account_and_cid(&mut self) -> (AccountId, ClientOrderId) {
        let account = self.rng.random_range(1..=u64::from(self.config.accounts));
        let next = &mut self.next_cid[usize::try_from(account - 1).expect("an account index fits usize")];
        let cid = *next;
        *next += 1;
        (AccountId(account), ClientOrderId(cid))
    }

    fn best(&self, side: Side) -> Option<i64> {
        self.state.best(INSTRUMENT, side).map(|(p, _, _)| p.0)
    }

    /// The book's mid, pulled an eighth of the way back towards the mark.
    fn reference(&self) -> i64 {
        let mark = MARK.0;
        let mid = match (self.best(Side::Buy), self.best(Side::Sell)) {
            (Some(b), Some(a)) => (a + b) / 2,
            (Some(b), None) => b,
            (None, Some(a)) => a,
            (None, None) => mark,
        };
        mid + (mark - mid) / 8
    }

    fn clamp_to_band(&self, p: i64) -> Price {
        Price(p.clamp(self.band.0.0, self.band.1.0))
    }

    /// Clamps a price of an order on `side` so that it does not cross the opposite best.
    fn passive_clamp(&self, side: Side, p: i64) -> i64 {
        match side {
            Side::Buy => self.best(Side::Sell).map_or(p, |a| p.min(a - 1)),
            Side::Sell => self.best(Side::Buy).map_or(p, |b| p.max(b + 1)),
        }
    }

    fn passive_price(&mut self, side: Side) -> Price {
        let depth = self.config.mix.depth_ticks.max(1);
        let d = self.rng.random_range(0..depth) * self.rng.random_range(0..depth) / depth;
        let reference = self.reference();
        let p = match side {
            Side::Buy => reference - 1 - d,
            Side::Sell => reference + 1 + d,
        };
        self.clamp_to_band(self.passive_clamp(side, p))
    }

    fn maker_qty(&mut self) -> Qty {
        Qty(self.rng.random_range(1..=MAKER_MAX_LOTS))
    }

    /// `base · (live / resting)³`, with the ratio clamped to ¼..2: the book-size feedback.
    fn by_fullness(&self, base: u64) -> u64 {
        let target = self.config.resting.max(1) as u128;
        let live = (self.live.len() as u128).clamp(target / 4, target * 2);
        u64::try_from(u128::from(base) * live * live * live / (target * target * target)).unwrap_or(u64::MAX)
    }

    /// `true` with probability `share` ‰ scaled by the book-size feedback.
    fn crossing(&mut self, share: u32) -> bool {
        let p = self.by_fullness(u64::from(share)).min(1_000);
        u64::from(self.rng.random_range(0..1_000u32)) < p
    }

    /// Uniform around the mix's mean taker size, scaled by the book-size feedback.
    fn taker_qty(&mut self) -> Qty {
        let base = u64::from(self.config.mix.taker_size) * (MAKER_MAX_LOTS as u64 / 2) / 1_000;
        let mean = i64::try_from(self.by_fullness(base).max(1)).unwrap_or(i64::MAX);
        Qty(self.rng.random_range(1..=2 * mean))
    }

    fn new_order(
        &mut self,
        side: Side,
        order_type: OrderType,
        price: Option<Price>,
        qty: Qty,
        tif: TimeInForce,
    ) -> Command {
        let (account, cid) = self.account_and_cid();
        Command::NewOrder(NewOrder {
            account,
            cid,
            instrument: INSTRUMENT,
            side,
            order_type,
            price,
            qty,
            tif,
            expire_ts: None,
            post_only: false,
            reduce_only: false,
            stp: StpMode::CancelTaker,
        })
    }

    fn gtc(&mut self, cross: bool) -> Command {
        let side = self.side();
        let opposite = if cross { self.best(side.opposite()) } else { None };
        let price = match opposite {
            Some(p) => Price(p),
            None => self.passive_price(side),
        };
        let qty = self.maker_qty();
        self.new_order(side, OrderType::Limit, Some(price), qty, TimeInForce::Gtc)
    }

    fn taker(&mut self, order_type: OrderType, tif: TimeInForce) -> Command {
        let side = self.side();
        let price = match order_type {
            OrderType::Market => None,
            OrderType::Limit => {
                let through = self.rng.random_range(0..=2i64);
                let p = match (side, self.best(side.opposite())) {
                    (Side::Buy, Some(a)) => a + through,
                    (Side::Sell, Some(b)) => b - through,
                    (_, None) => self.reference(),
                };
                Some(self.clamp_to_band(p))
            }
        };
        let qty = self.taker_qty();
        self.new_order(side, order_type, price, qty, tif)
    }

    fn pick_live(&mut self) -> Option<LiveOrder> {
        if self.live.len() == 0 {
            return None;
        }
        let i = self.rng.random_range(0..self.live.len());
        Some(self.live.orders[i])
    }

    fn cancel(&mut self) -> Option<Command> {
        let o = self.pick_live()?;
        Some(Command::Cancel(Cancel { account: o.account, cid: o.cid, on_disconnect: false }))
    }

    fn amend(&mut self) -> Option<Command> {
        let o = self.pick_live()?;
        let mix = self.config.mix;
        if self.per_mille(mix.amend_qty_down) && o.leaves.0 >= 2 {
            let qty = Qty(self.rng.random_range(1..o.leaves.0));
            return Some(Command::Amend(Amend {
                account: o.account,
                cid: o.cid,
                instrument: INSTRUMENT,
                price: None,
                qty: Some(qty),
            }));
        }
        let cross = self.crossing(mix.amend_cross);
        let price = match (cross, self.best(o.side.opposite())) {
            (true, Some(p)) => Price(p),
            _ => {
                let step = self.rng.random_range(1..=AMEND_MAX_TICKS);
                let step = if self.rng.random_bool(0.5) { step } else { -step };
                let mut p = self.clamp_to_band(self.passive_clamp(o.side, o.price.0 + step)).0;
                if p == o.price.0 {
                    // Pinned against the touch or the band: move away from the touch instead.
                    p = match o.side {
                        Side::Buy => p - step.abs(),
                        Side::Sell => p + step.abs(),
                    };
                }
                self.clamp_to_band(p)
            }
        };
        Some(Command::Amend(Amend {
            account: o.account,
            cid: o.cid,
            instrument: INSTRUMENT,
            price: Some(price),
            qty: None,
        }))
    }

    /// Updates the live orders from the last command's events.
    fn track(&mut self, measured: bool) {
        self.touched.clear();
        for ev in &self.events {
            match *ev {
                Event::Accepted { account, cid, side, price, qty, .. } => {
                    self.live.insert(LiveOrder { account, cid, side, price, leaves: qty });
                    self.touched.push((account, cid));
                }
                Event::Amended { account, cid, price, qty, .. } => {
                    if let Some(o) = self.live.get_mut(account, cid) {
                        o.price = price;
                        o.leaves = qty;
                    }
                    self.touched.push((account, cid));
                }
                Event::Trade(t) => {
                    if let Some(o) = self.live.get_mut(t.maker_account, t.maker_cid) {
                        o.leaves = t.maker_leaves;
                    }
                    if let Some(o) = self.live.get_mut(t.taker_account, t.taker_cid) {
                        o.leaves = t.taker_leaves;
                    }
                    self.touched.push((t.maker_account, t.maker_cid));
                    self.touched.push((t.taker_account, t.taker_cid));
                }
                Event::Cancelled { account, cid, leaves, .. } => {
                    if let Some(o) = self.live.get_mut(account, cid) {
                        o.leaves = leaves;
                    }
                    self.touched.push((account, cid));
                }
                // Book, risk and listing events do not change which orders are live.
                _ => {}
            }
        }
        for i in 0..self.touched.len() {
            let (account, cid) = self.touched[i];
            if self.live.get_mut(account, cid).is_some_and(|o| o.leaves == Qty::ZERO) {
                self.live.remove(account, cid);
            }
        }
        debug_assert_eq!(self.live.len(), self.state.resting_count(), "live tracking drifted from the engine");
        if measured {
            self.stats.events += self.events.len() as u64;
            for ev in &self.events {
                match ev {
                    Event::Trade(_) => self.stats.trades += 1,
                    Event::Rejected { .. } => self.stats.rejects += 1,
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mix: Mix, commands: usize) -> Config {
        Config {
            mix,
            seed: 7,
            accounts: 200,
            collateral_usdc: DEFAULT_COLLATERAL_USDC,
            resting: 1_000,
            warmup: 2_000,
            commands,
        }
    }

    #[test]
    fn shares_sum_to_one_thousand() {
        for mix in [Mix::EXCHANGE_CORE, Mix::TAKER_HEAVY] {
            assert_eq!(mix.shares.iter().sum::<u32>(), 1_000, "{}", mix.name);
        }
    }

    #[test]
    fn mix_proportions_match_for_a_fixed_seed() {
        for mix in [Mix::EXCHANGE_CORE, Mix::TAKER_HEAVY] {
            let n = 40_000;
            let w = Workload::generate(&config(mix, n));
            assert_eq!(w.measured().len(), n);
            for kind in Op::ALL {
                let got = w.stats().kinds[kind as usize] as f64 / n as f64;
                let want = mix.share(kind);
                assert!((got - want).abs() < 0.006, "{} {}: {got} vs {want}", mix.name, kind.name());
            }
            assert_eq!(w.stats().rejects, 0, "{}: the stream is made to be valid", mix.name);
            assert!(w.stats().trades > 0, "{}: some commands trade", mix.name);
        }
    }

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        let a = Workload::generate(&config(Mix::TAKER_HEAVY, 3_000));
        let b = Workload::generate(&config(Mix::TAKER_HEAVY, 3_000));
        assert_eq!(a.all(), b.all());
        let c = Workload::generate(&Config { seed: 8, ..config(Mix::TAKER_HEAVY, 3_000) });
        assert_ne!(a.measured(), c.measured());
    }

    /// Replays the stream on a fresh state machine and checks, before each cancel and amend,
    /// that its order is live; and that the replay reproduces the generator's book.
    #[test]
    fn cancels_and_amends_target_live_orders() {
        for mix in [Mix::EXCHANGE_CORE, Mix::TAKER_HEAVY] {
            let w = Workload::generate(&config(mix, 20_000));
            let mut state = StateMachine::new();
            let mut events = Vec::new();
            let mut targeted = 0;
            for cmd in w.all() {
                if let Command::Cancel(Cancel { account, cid, .. }) | Command::Amend(Amend { account, cid, .. }) =
                    cmd.cmd
                {
                    assert!(state.live_order_instrument(account, cid).is_some(), "seq {}: not live", cmd.seq);
                    targeted += 1;
                }
                events.clear();
                state.apply(cmd, &mut events);
                assert!(!events.iter().any(|e| matches!(e, Event::Rejected { .. })), "seq {}: {events:?}", cmd.seq);
            }
            assert!(targeted > 5_000, "{}: {targeted}", mix.name);
            assert_eq!(state.resting_count(), w.stats().resting_end);
            assert_eq!(w.prepared_state().now(), Timestamp(w.measured()[0].seq.0 - 1));
        }
    }

    #[test]
    fn the_book_stays_near_its_target_size() {
        for mix in [Mix::EXCHANGE_CORE, Mix::TAKER_HEAVY] {
            let w = Workload::generate(&config(mix, 40_000));
            let s = w.stats();
            assert!(s.resting_min >= 250 && s.resting_max <= 4_000, "{}: {s:?}", mix.name);
            assert!(s.levels_end > 10, "{}: {s:?}", mix.name);
        }
    }
}
