//! A deliberately naive reference exchange, written from the matching rules of issue 2
//! (and the state machine's documented event and validation order), not from the engine.
//!
//! Everything is a plain `Vec` and a linear scan: per instrument and side, the resting
//! orders sorted by (price best-first, arrival stamp); the front of the opposite side is
//! always the next order a taker meets. Book events come from diffing the level totals
//! before and after the command, so "net per level" holds by construction. Nothing here is
//! fast, and nothing here should be clever: when the engine and this model disagree, the
//! model is the one that is easy to check against the spec.

use std::collections::BTreeMap;

use l2x_engine::{MatchingState, RestingOrder};
use l2x_types::{
    AccountId, Amend, Amount, CancelReason, ClientOrderId, Command, CommandKind, Event, Fraction, Holder, Instrument,
    InstrumentId, InstrumentSpec, MassCancel, NewOrder, OrderId, OrderType, Price, Qty, RejectReason, Sequenced, Side,
    StpMode, TimeInForce, Timestamp, Trade, TradeId,
};

/// A resting order in the reference book.
#[derive(Clone, Copy, Debug)]
struct Order {
    id: OrderId,
    account: AccountId,
    cid: ClientOrderId,
    instrument: InstrumentId,
    side: Side,
    price: Price,
    leaves: Qty,
    filled: Qty,
    tif: TimeInForce,
    expire_ts: Option<Timestamp>,
    post_only: bool,
    reduce_only: bool,
    stp: StpMode,
    /// Time priority: larger is later. A new stamp whenever the order (re)joins a queue.
    arrival: u64,
}

/// One instrument: its spec, mark and two sorted books.
#[derive(Clone, Debug)]
struct Market {
    instrument: Instrument,
    mark: Option<Price>,
    /// `[bids, asks]`, each sorted best price first, then by arrival.
    books: [Vec<Order>; 2],
}

/// The order taking liquidity (a new order, or an amended one whose new price crosses).
#[derive(Clone, Copy, Debug)]
struct Taker {
    account: AccountId,
    cid: ClientOrderId,
    id: OrderId,
    instrument: InstrumentId,
    side: Side,
    limit: Price,
    leaves: Qty,
    filled: Qty,
    stp: StpMode,
}

/// How a taker's walk through the book ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Filled,
    NoMoreLiquidity,
    SelfTradeCancelsTaker,
}

/// Level totals keyed so that a `BTreeMap` iterates them in book-event order:
/// (instrument, side (bids first), price best-first).
type LevelKey = (u32, u8, i64);

/// The reference exchange.
#[derive(Clone, Debug, Default)]
pub(crate) struct Reference {
    markets: Vec<Market>,
    accounts: BTreeMap<AccountId, Amount>,
    orders_accepted: u64,
    trades: u64,
    now: Timestamp,
    arrivals: u64,
}

/// Sort key of a price within its side: smaller is better.
fn best_first(side: Side, price: Price) -> i64 {
    match side {
        Side::Buy => -price.0,
        Side::Sell => price.0,
    }
}

/// Can a taker on `side` limited at `limit` trade with a resting order at `resting`?
fn can_trade(side: Side, limit: Price, resting: Price) -> bool {
    match side {
        Side::Buy => resting <= limit,
        Side::Sell => resting >= limit,
    }
}

/// Every tick within mark · (1 ± band), inclusive: the low end rounded up, the high end
/// rounded down (both towards the mark).
fn band(instrument: &Instrument, mark: Price) -> (Price, Price) {
    let scale = i128::from(Fraction::SCALE);
    let band = i128::from(instrument.price_band.0);
    let mark = i128::from(mark.0);
    let low_num = mark * (scale - band); // positive: band < 1
    let low = (low_num + scale - 1) / scale;
    let high = mark * (scale + band) / scale;
    (Price(i64::try_from(low).expect("band fits")), Price(i64::try_from(high).expect("band fits")))
}

fn rejected(kind: CommandKind, account: Option<AccountId>, cid: Option<ClientOrderId>, reason: RejectReason) -> Event {
    Event::Rejected { kind, account, cid, reason }
}

fn order_cancelled(o: &Order, qty: Qty, leaves: Qty, reason: CancelReason) -> Event {
    Event::Cancelled {
        account: o.account,
        cid: o.cid,
        order_id: o.id,
        instrument: o.instrument,
        side: o.side,
        qty,
        leaves,
        reason,
    }
}

fn taker_cancelled(t: &Taker, qty: Qty, leaves: Qty, reason: CancelReason) -> Event {
    Event::Cancelled {
        account: t.account,
        cid: t.cid,
        order_id: t.id,
        instrument: t.instrument,
        side: t.side,
        qty,
        leaves,
        reason,
    }
}

impl Reference {
    /// An empty exchange.
    pub(crate) fn new() -> Reference {
        Reference::default()
    }

    /// Applies one command and returns its events.
    pub(crate) fn apply(&mut self, cmd: &Sequenced) -> Vec<Event> {
        let before = self.level_totals();
        let mut out = Vec::new();
        if cmd.ts > self.now {
            self.now = cmd.ts;
        }
        self.expire(&mut out);
        match &cmd.cmd {
            Command::ListInstrument(spec) => self.list(spec, &mut out),
            Command::Deposit { to: Holder::Account(account), amount } => self.deposit(*account, *amount, &mut out),
            // The streams deposit only to trading accounts and never withdraw, tick funding or
            // use the L1 queue. Time passing is the expiries above.
            Command::Deposit { .. }
            | Command::Withdraw { .. }
            | Command::WithdrawRequest { .. }
            | Command::Funding { .. }
            | Command::Tick
            | Command::L1Deposit { .. }
            | Command::ForcedWithdrawal { .. }
            | Command::L1Bind { .. } => {}
            Command::Oracle { instrument, price } => self.oracle(*instrument, *price, &mut out),
            Command::NewOrder(o) => self.new_order(o, &mut out),
            Command::Amend(a) => self.amend(a, &mut out),
            Command::Cancel(c) => match self.take_out(c.account, c.cid) {
                Some(o) => {
                    let reason = if c.on_disconnect { CancelReason::Disconnect } else { CancelReason::User };
                    out.push(order_cancelled(&o, o.leaves, Qty(0), reason));
                }
                None => {
                    out.push(rejected(CommandKind::Cancel, Some(c.account), Some(c.cid), RejectReason::UnknownOrder))
                }
            },
            Command::MassCancel(m) => self.mass_cancel(m, &mut out),
        }
        let after = self.level_totals();
        self.book_events(&before, &after, &mut out);
        out
    }

    /// The matching part of the state in the engine's canonical form.
    pub(crate) fn canonical(&self) -> MatchingState {
        let mut orders = Vec::new();
        for m in &self.markets {
            for book in &m.books {
                for o in book {
                    orders.push(RestingOrder {
                        instrument: o.instrument,
                        side: o.side,
                        price: o.price,
                        order_id: o.id,
                        account: o.account,
                        cid: o.cid,
                        leaves: o.leaves,
                        filled: o.filled,
                        tif: o.tif,
                        expire_ts: o.expire_ts,
                        post_only: o.post_only,
                        reduce_only: o.reduce_only,
                        stp: o.stp,
                    });
                }
            }
        }
        MatchingState {
            instruments: self.markets.iter().map(|m| (m.instrument.spec(), m.mark)).collect(),
            orders,
            next_order_id: self.orders_accepted + 1,
            next_trade_id: self.trades + 1,
            now: self.now,
        }
    }

    // ----- commands ------------------------------------------------------------------

    fn list(&mut self, spec: &InstrumentSpec, out: &mut Vec<Event>) {
        let rej = |r| rejected(CommandKind::Instrument, None, None, r);
        if self.markets.iter().any(|m| m.instrument.symbol == spec.symbol) {
            return out.push(rej(RejectReason::DuplicateSymbol));
        }
        let id = InstrumentId(u32::try_from(self.markets.len()).expect("few instruments"));
        match Instrument::try_new(id, spec) {
            Ok(instrument) => {
                self.markets.push(Market { instrument, mark: None, books: [Vec::new(), Vec::new()] });
                out.push(Event::InstrumentListed { instrument: id });
            }
            Err(_) => out.push(rej(RejectReason::BadInstrument)),
        }
    }

    fn deposit(&mut self, account: AccountId, amount: Amount, out: &mut Vec<Event>) {
        if account.0 >= u64::MAX - 1 {
            return out.push(rejected(CommandKind::Deposit, Some(account), None, RejectReason::ReservedAccount));
        }
        let current = self.accounts.get(&account).copied().unwrap_or(Amount(0));
        match current.0.checked_add(amount.0) {
            Some(total) if amount.0 > 0 => {
                self.accounts.insert(account, Amount(total));
            }
            _ => out.push(rejected(CommandKind::Deposit, Some(account), None, RejectReason::BadAmount)),
        }
    }

    fn oracle(&mut self, instrument: InstrumentId, price: Price, out: &mut Vec<Event>) {
        let Some(m) = self.markets.get_mut(instrument.0 as usize) else {
            return out.push(rejected(CommandKind::Oracle, None, None, RejectReason::UnknownSymbol));
        };
        if price.0 <= 0 {
            return out.push(rejected(CommandKind::Oracle, None, None, RejectReason::BadOraclePrice));
        }
        m.mark = Some(price);
    }

    #[allow(
        clippy::too_many_lines,
        reason = "the reference model states every rule of MATCHING.md in order, in one place"
    )]
    fn new_order(&mut self, o: &NewOrder, out: &mut Vec<Event>) {
        let rej = |r| rejected(CommandKind::New, Some(o.account), Some(o.cid), r);
        let Some(m) = self.markets.get(o.instrument.0 as usize) else {
            return out.push(rej(RejectReason::UnknownSymbol));
        };
        let instrument = m.instrument;
        let mark = m.mark;
        let is_market = o.order_type == OrderType::Market;
        let ioc_like = o.tif == TimeInForce::Ioc || o.tif == TimeInForce::Fok;
        if is_market && o.tif == TimeInForce::Gtd {
            return out.push(rej(RejectReason::BadFlags));
        }
        if o.post_only && (is_market || ioc_like) {
            return out.push(rej(RejectReason::BadFlags));
        }
        let expiry_ok =
            if o.tif == TimeInForce::Gtd { o.expire_ts.is_some_and(|t| t > self.now) } else { o.expire_ts.is_none() };
        if !expiry_ok {
            return out.push(rej(RejectReason::BadExpiry));
        }
        let price_ok = if is_market { o.price.is_none() } else { o.price.is_some_and(|p| p.0 > 0) };
        if !price_ok {
            return out.push(rej(RejectReason::BadPrice));
        }
        if o.qty.0 <= 0 {
            return out.push(rej(RejectReason::BadQty));
        }
        if o.qty > instrument.max_order_qty {
            return out.push(rej(RejectReason::MaxOrderQty));
        }
        if self.find(o.account, o.cid).is_some() {
            return out.push(rej(RejectReason::DuplicateCid));
        }
        let Some(mark) = mark else {
            return out.push(rej(RejectReason::NoMarkPrice));
        };
        let (low, high) = band(&instrument, mark);
        let limit = match o.price {
            Some(p) => {
                if p < low || p > high {
                    return out.push(rej(RejectReason::PriceOutOfBand));
                }
                p
            }
            None if o.side == Side::Buy => high,
            None => low,
        };
        // The one risk rule this model keeps: an account that never deposited has no equity,
        // so every order of it is refused (the funded accounts never come near a limit).
        if !self.accounts.contains_key(&o.account) {
            return out.push(rej(RejectReason::InsufficientMargin));
        }
        if o.post_only && self.crosses_now(o.instrument, o.side, limit) {
            return out.push(rej(RejectReason::PostOnlyWouldCross));
        }

        self.orders_accepted += 1;
        let id = OrderId(self.orders_accepted);
        out.push(Event::Accepted {
            account: o.account,
            cid: o.cid,
            order_id: id,
            instrument: o.instrument,
            side: o.side,
            price: limit,
            qty: o.qty,
        });
        let mut taker = Taker {
            account: o.account,
            cid: o.cid,
            id,
            instrument: o.instrument,
            side: o.side,
            limit,
            leaves: o.qty,
            filled: Qty(0),
            stp: o.stp,
        };
        if o.tif == TimeInForce::Fok && !self.fok_can_fill(&taker) {
            out.push(taker_cancelled(&taker, taker.leaves, Qty(0), CancelReason::FokUnfilled));
            return;
        }
        match self.take(&mut taker, out) {
            End::Filled => {}
            End::SelfTradeCancelsTaker => {
                out.push(taker_cancelled(&taker, taker.leaves, Qty(0), CancelReason::SelfTrade));
            }
            End::NoMoreLiquidity => {
                let rests = !is_market && (o.tif == TimeInForce::Gtc || o.tif == TimeInForce::Gtd);
                if rests {
                    self.accounts.entry(o.account).or_insert(Amount(0));
                    let arrival = self.next_arrival();
                    self.insert(Order {
                        id,
                        account: o.account,
                        cid: o.cid,
                        instrument: o.instrument,
                        side: o.side,
                        price: limit,
                        leaves: taker.leaves,
                        filled: taker.filled,
                        tif: o.tif,
                        expire_ts: o.expire_ts,
                        post_only: o.post_only,
                        reduce_only: o.reduce_only,
                        stp: o.stp,
                        arrival,
                    });
                } else {
                    let reason = if o.tif == TimeInForce::Fok {
                        CancelReason::FokUnfilled
                    } else if is_market {
                        CancelReason::MarketRemainder
                    } else {
                        CancelReason::IocRemainder
                    };
                    out.push(taker_cancelled(&taker, taker.leaves, Qty(0), reason));
                }
            }
        }
    }

    fn amend(&mut self, a: &Amend, out: &mut Vec<Event>) {
        let rej = |r| rejected(CommandKind::Amend, Some(a.account), Some(a.cid), r);
        // The amend names its order's instrument; naming another one is an unknown order.
        let Some(o) = self.find(a.account, a.cid).filter(|o| o.instrument == a.instrument) else {
            return out.push(rej(RejectReason::UnknownOrder));
        };
        let market = &self.markets[o.instrument.0 as usize];
        let price = a.price.unwrap_or(o.price);
        let qty = a.qty.unwrap_or(o.leaves);
        if price.0 <= 0 {
            return out.push(rej(RejectReason::BadPrice));
        }
        if qty.0 <= 0 {
            return out.push(rej(RejectReason::BadQty));
        }
        if qty > market.instrument.max_order_qty {
            return out.push(rej(RejectReason::MaxOrderQty));
        }
        if price != o.price {
            let mark = market.mark.expect("an order rests, so the instrument has a mark");
            let (low, high) = band(&market.instrument, mark);
            if price < low || price > high {
                return out.push(rej(RejectReason::PriceOutOfBand));
            }
        }
        let priority_kept = price == o.price && qty <= o.leaves;
        let crossing = self.crosses_now(o.instrument, o.side, price);
        if crossing && o.post_only {
            return out.push(rej(RejectReason::PostOnlyWouldCross));
        }
        out.push(Event::Amended {
            account: o.account,
            cid: o.cid,
            order_id: o.id,
            instrument: o.instrument,
            price,
            qty,
            priority_kept,
        });
        if priority_kept {
            let book = &mut self.markets[o.instrument.0 as usize].books[o.side as usize];
            let resting = book.iter_mut().find(|r| r.id == o.id).expect("found above");
            resting.leaves = qty;
            return;
        }
        let mut order = self.take_out(a.account, a.cid).expect("found above");
        let mut taker = Taker {
            account: order.account,
            cid: order.cid,
            id: order.id,
            instrument: order.instrument,
            side: order.side,
            limit: price,
            leaves: qty,
            filled: Qty(0),
            stp: order.stp,
        };
        match self.take(&mut taker, out) {
            End::Filled => {}
            End::SelfTradeCancelsTaker => {
                out.push(taker_cancelled(&taker, taker.leaves, Qty(0), CancelReason::SelfTrade));
            }
            End::NoMoreLiquidity => {
                order.price = price;
                order.leaves = taker.leaves;
                order.filled.0 += taker.filled.0;
                order.arrival = self.next_arrival();
                self.insert(order);
            }
        }
    }

    fn mass_cancel(&mut self, m: &MassCancel, out: &mut Vec<Event>) {
        if let Some(i) = m.instrument
            && self.markets.get(i.0 as usize).is_none()
        {
            return out.push(rejected(CommandKind::MassCancel, Some(m.account), None, RejectReason::UnknownSymbol));
        }
        let mut victims: Vec<Order> = self
            .all_orders()
            .filter(|o| o.account == m.account)
            .filter(|o| m.instrument.is_none_or(|i| i == o.instrument))
            .filter(|o| m.side.is_none_or(|s| s == o.side))
            .copied()
            .collect();
        victims.sort_by_key(|o| o.id);
        for v in victims {
            self.take_out(v.account, v.cid);
            out.push(order_cancelled(&v, v.leaves, Qty(0), CancelReason::MassCancel));
        }
    }

    /// Cancels every GTD order whose expiry the clock has reached, earliest expiry first,
    /// then lowest order id.
    fn expire(&mut self, out: &mut Vec<Event>) {
        let now = self.now;
        let mut due: Vec<Order> = self
            .all_orders()
            .filter(|o| o.tif == TimeInForce::Gtd && o.expire_ts.is_some_and(|t| t <= now))
            .copied()
            .collect();
        due.sort_by_key(|o| (o.expire_ts, o.id));
        for o in due {
            self.take_out(o.account, o.cid);
            out.push(order_cancelled(&o, o.leaves, Qty(0), CancelReason::Expired));
        }
    }

    // ----- matching ------------------------------------------------------------------

    /// Does the opposite side have a resting order a taker at `limit` could trade with?
    fn crosses_now(&self, instrument: InstrumentId, side: Side, limit: Price) -> bool {
        self.markets[instrument.0 as usize].books[side.opposite() as usize]
            .iter()
            .any(|r| can_trade(side, limit, r.price))
    }

    /// FOK: could the taker fill completely? Walk the opposite side in priority order:
    /// other accounts' orders count; the taker's own orders count for nothing, and under
    /// any mode but `cancel_maker` (which would cancel them and go on) they end the walk.
    fn fok_can_fill(&self, t: &Taker) -> bool {
        let mut available = 0i64;
        for r in &self.markets[t.instrument.0 as usize].books[t.side.opposite() as usize] {
            if !can_trade(t.side, t.limit, r.price) {
                break;
            }
            if r.account == t.account {
                if t.stp == StpMode::CancelMaker {
                    continue;
                }
                break;
            }
            available += r.leaves.0;
            if available >= t.leaves.0 {
                return true;
            }
        }
        false
    }

    /// Walks the opposite side front to back while it crosses, trading or applying
    /// self-trade prevention (the taker's mode) at each resting order.
    fn take(&mut self, t: &mut Taker, out: &mut Vec<Event>) -> End {
        loop {
            let book = &mut self.markets[t.instrument.0 as usize].books[t.side.opposite() as usize];
            let Some(front) = book.first_mut() else { return End::NoMoreLiquidity };
            if !can_trade(t.side, t.limit, front.price) {
                return End::NoMoreLiquidity;
            }
            if front.account == t.account {
                match t.stp {
                    StpMode::CancelTaker => return End::SelfTradeCancelsTaker,
                    StpMode::CancelMaker => {
                        let maker = book.remove(0);
                        out.push(order_cancelled(&maker, maker.leaves, Qty(0), CancelReason::SelfTrade));
                    }
                    StpMode::CancelBoth => {
                        let maker = book.remove(0);
                        out.push(order_cancelled(&maker, maker.leaves, Qty(0), CancelReason::SelfTrade));
                        return End::SelfTradeCancelsTaker;
                    }
                    StpMode::Decrement => {
                        let by = Qty(front.leaves.0.min(t.leaves.0));
                        front.leaves.0 -= by.0;
                        t.leaves.0 -= by.0;
                        let maker = *front;
                        out.push(order_cancelled(&maker, by, maker.leaves, CancelReason::SelfTrade));
                        out.push(taker_cancelled(t, by, t.leaves, CancelReason::SelfTrade));
                        if maker.leaves.0 == 0 {
                            book.remove(0);
                        }
                        if t.leaves.0 == 0 {
                            return End::Filled;
                        }
                    }
                }
                continue;
            }
            let qty = Qty(front.leaves.0.min(t.leaves.0));
            front.leaves.0 -= qty.0;
            front.filled.0 += qty.0;
            t.leaves.0 -= qty.0;
            t.filled.0 += qty.0;
            let maker = *front;
            self.trades += 1;
            out.push(Event::Trade(Trade {
                trade_id: TradeId(self.trades),
                instrument: t.instrument,
                price: maker.price,
                qty,
                maker_account: maker.account,
                maker_cid: maker.cid,
                maker_order_id: maker.id,
                maker_leaves: maker.leaves,
                maker_fee: 0, // the model's instruments have no fees
                taker_account: t.account,
                taker_cid: t.cid,
                taker_order_id: t.id,
                taker_leaves: t.leaves,
                taker_fee: 0,
                taker_side: t.side,
                liquidation: false,
            }));
            if maker.leaves.0 == 0 {
                book.remove(0);
            }
            if t.leaves.0 == 0 {
                return End::Filled;
            }
        }
    }

    // ----- books ---------------------------------------------------------------------

    fn next_arrival(&mut self) -> u64 {
        self.arrivals += 1;
        self.arrivals
    }

    fn all_orders(&self) -> impl Iterator<Item = &Order> {
        self.markets.iter().flat_map(|m| m.books.iter().flatten())
    }

    /// The live order (account, cid), if any.
    fn find(&self, account: AccountId, cid: ClientOrderId) -> Option<Order> {
        self.all_orders().find(|o| o.account == account && o.cid == cid).copied()
    }

    /// Removes the live order (account, cid) from its book and returns it.
    fn take_out(&mut self, account: AccountId, cid: ClientOrderId) -> Option<Order> {
        for m in &mut self.markets {
            for book in &mut m.books {
                if let Some(pos) = book.iter().position(|o| o.account == account && o.cid == cid) {
                    return Some(book.remove(pos));
                }
            }
        }
        None
    }

    /// Adds an order to its book and restores the (price best-first, arrival) order.
    fn insert(&mut self, o: Order) {
        let book = &mut self.markets[o.instrument.0 as usize].books[o.side as usize];
        book.push(o);
        book.sort_by_key(|r| (best_first(r.side, r.price), r.arrival));
    }

    /// Total open quantity and order count of every level, keyed in book-event order.
    fn level_totals(&self) -> BTreeMap<LevelKey, (Price, i64, u32)> {
        let mut levels = BTreeMap::new();
        for (i, m) in self.markets.iter().enumerate() {
            for (s, book) in m.books.iter().enumerate() {
                for o in book {
                    let key = (
                        u32::try_from(i).expect("few instruments"),
                        u8::try_from(s).expect("two sides"),
                        best_first(o.side, o.price),
                    );
                    let level = levels.entry(key).or_insert((o.price, 0i64, 0u32));
                    level.1 += o.leaves.0;
                    level.2 += 1;
                }
            }
        }
        levels
    }

    /// One `book` event per level whose totals differ between `before` and `after`.
    fn book_events(
        &self,
        before: &BTreeMap<LevelKey, (Price, i64, u32)>,
        after: &BTreeMap<LevelKey, (Price, i64, u32)>,
        out: &mut Vec<Event>,
    ) {
        let mut keys: Vec<LevelKey> = before.keys().chain(after.keys()).copied().collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            let was = before.get(&key);
            let now = after.get(&key);
            if was == now {
                continue;
            }
            let (price, qty, orders) = match (was, now) {
                (_, Some(&(price, qty, count))) => (price, qty, count),
                (Some(&(price, _, _)), None) => (price, 0, 0),
                (None, None) => unreachable!("key came from one of the maps"),
            };
            out.push(Event::Book {
                instrument: InstrumentId(key.0),
                side: if key.1 == 0 { Side::Buy } else { Side::Sell },
                price,
                qty: Qty(qty),
                orders,
            });
        }
    }
}
