//! The state machine: applies one sequenced command at a time to the books and the risk
//! ledger, and writes what happened as [`Event`]s.
//!
//! # Order of events within a command
//!
//! 1. `cancelled` (reason `expired`) for GTD orders whose expiry the command's time
//!    reached: time passes before the command acts, so an expired order never trades.
//! 2. `accepted` or `rejected` (or `amended`) for the command itself — or, for a deposit,
//!    withdrawal or funding tick, its `balance`, `insurance` or `funding` event.
//! 3. `trade` and `cancelled` events in the order they happen; after each trade, the
//!    maker's then the taker's `position` (and `balance` when collateral changed), then the
//!    fee account's `balance` when fees were charged.
//! 4. Reduce-only orders that no longer fit their position are cut (`cancelled`,
//!    reason `reduce_only`).
//! 5. Liquidations, account by account in ascending account id: `cancelled` (reason
//!    `liquidation`), liquidation `trade`s with `liquidation` events, `takeover`, `adl`,
//!    `insurance`, `position` and `balance` events (docs/RISK.md).
//! 6. One `book` event per price level whose total quantity or order count changed over
//!    the command (net), ordered by instrument, bids before asks, best price first.
//!
//! # Validation order of a new order (the first failing check is the reason)
//!
//! `unknown_symbol`, `bad_flags`, `bad_expiry`, `bad_price`, `bad_qty`, `max_order_qty`,
//! `duplicate_cid`, `no_mark_price`, `price_out_of_band`, then the risk checks
//! (`reduce_only_would_increase`, `max_position`, `insufficient_margin`), then
//! `post_only_would_cross`. A rejected order gets no `accepted` and changes nothing.
//!
//! # Resting quantity
//!
//! The ledger keeps, per account and instrument, the open quantity of resting orders (the
//! initial requirement counts it). Every change to a resting order's open quantity goes
//! through one of this module's wrappers (`rest`, `remove_resting`, `unlink`, `relink`,
//! `move_resting`, `resize`, `decrement`, or a fill booked by the ledger), and
//! [`StateMachine::check_invariants`] checks the two agree.
//!
//! # Time
//!
//! Time arrives only inside commands. The state machine's clock is the largest timestamp
//! seen so far, so a (journal-corrupting) decreasing timestamp cannot move time backwards.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use l2x_risk::{
    AccountSlot, Change, ExactPrice, Exposure, Fill, FillEffect, Ledger, MarketParams, ParamsError, formulas,
};
use l2x_types::{
    AccountId, Amend, Amount, CancelReason, ClientOrderId, Command, CommandKind, DetMap, Event, Holder, Instrument,
    InstrumentId, InstrumentSpec, MassCancel, NewOrder, OrderId, OrderType, Price, Qty, RejectReason, Sequenced, Side,
    SpecError, StpMode, Symbol, TimeInForce, Timestamp, Trade, TradeId,
};

use crate::book::{Books, Order, OrderHandle, RestingOrder, crosses};
use crate::canonical::{AccountState, CanonicalState, MatchingState, PositionState};

/// Everything the exchange knows, and the only code that changes it.
#[derive(Clone, Debug, Default)]
pub struct StateMachine {
    instruments: Vec<Instrument>,
    /// Per instrument, the price band (`Instrument::band`, 128-bit divisions) and the mark it
    /// was computed at: recomputed only when the mark has changed, not per order.
    bands: Vec<Option<(Price, (Price, Price))>>,
    symbols: DetMap<Symbol, InstrumentId>,
    books: Books,
    ledger: Ledger,
    /// GTD orders by (expiry, order id); entries of orders gone since are skipped lazily.
    expiries: BinaryHeap<Reverse<(Timestamp, OrderId, OrderHandle)>>,
    gtd_live: usize,
    /// Resting reduce-only orders per account slot.
    reduce_only_resting: Vec<u32>,
    next_order_id: u64,
    next_trade_id: u64,
    now: Timestamp,
    scratch: Vec<OrderHandle>,
    /// (account, instrument) whose position changed during this command.
    touched: Vec<(AccountSlot, InstrumentId)>,
    /// Accounts an oracle or funding tick may have put below maintenance.
    suspects: Vec<AccountSlot>,
}

/// Why a canonical state could not be restored: what in it is inconsistent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// An instrument of the snapshot does not list.
    #[error("inconsistent snapshot: instrument {index} ({symbol}) does not list")]
    Instrument {
        /// Its place in the snapshot (its id).
        index: usize,
        /// Its symbol.
        symbol: Symbol,
        /// Why it does not list.
        #[source]
        source: ListingError,
    },
    /// An instrument has no funding index.
    #[error("inconsistent snapshot: missing funding index")]
    MissingFundingIndex {
        /// The instrument's place in the snapshot.
        index: usize,
    },
    /// A resting order names an unknown instrument, has no open quantity, or repeats a
    /// live (account, client id).
    #[error("inconsistent snapshot: resting order {order} is not valid here")]
    Order {
        /// The order.
        order: OrderId,
    },
    /// A resting order belongs to an account the snapshot does not have.
    #[error("inconsistent snapshot: order {order} of an unknown account")]
    UnknownAccount {
        /// The order.
        order: OrderId,
    },
    /// The parts are each valid but rebuilding them gives another state (a derived part,
    /// such as an open quantity, disagrees with what it derives from).
    #[error("inconsistent snapshot: the snapshot's parts disagree (rebuilding it gives another state)")]
    Disagrees,
    /// The rebuilt state breaks an invariant.
    #[error("inconsistent snapshot: restored state breaks an invariant: {what}")]
    Invariant {
        /// The first broken invariant.
        what: String,
    },
}

/// Why an instrument does not list (reject reason `duplicate_symbol` or `bad_instrument`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    /// The symbol is listed already.
    #[error("the symbol is listed already")]
    DuplicateSymbol,
    /// There are `u32::MAX` instruments already.
    #[error("too many instruments")]
    TooMany,
    /// The specification does not validate.
    #[error("bad specification")]
    Spec(#[source] SpecError),
    /// The risk parameters derived from it do not validate.
    #[error("bad risk parameters")]
    Params(#[source] ParamsError),
    /// The ledger gave its market another id.
    #[error("the ledger's market id disagrees")]
    MarketId,
}

impl ListingError {
    /// The reject reason of a listing command that fails this way.
    pub fn reason(&self) -> RejectReason {
        match self {
            ListingError::DuplicateSymbol => RejectReason::DuplicateSymbol,
            _ => RejectReason::BadInstrument,
        }
    }
}

/// The order that is taking liquidity: a new order, an amended one that crosses, or a
/// liquidation order.
#[derive(Clone, Copy, Debug)]
struct Taker {
    account: AccountId,
    slot: AccountSlot,
    cid: ClientOrderId,
    order_id: OrderId,
    instrument: InstrumentId,
    side: Side,
    limit: Price,
    leaves: Qty,
    /// Executed while taking (becomes the resting order's `filled`).
    filled: Qty,
    stp: StpMode,
    /// The bankruptcy price, when this is a liquidation order.
    liquidation: Option<ExactPrice>,
}

/// Why matching stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MatchEnd {
    /// The taker has no quantity left.
    Filled,
    /// No more crossing liquidity; the taker has quantity left.
    Exhausted,
    /// Self-trade prevention cancels the taker's remainder.
    SelfTrade,
}

impl StateMachine {
    /// An empty exchange: no instruments, no accounts; default liquidation parameters.
    pub fn new() -> StateMachine {
        StateMachine::with_ledger(Ledger::default())
    }

    /// An empty exchange whose risk ledger was configured by the caller (what-if runs).
    pub fn with_ledger(ledger: Ledger) -> StateMachine {
        StateMachine { next_order_id: 1, next_trade_id: 1, ledger, ..StateMachine::default() }
    }

    /// Rebuilds a state machine from a canonical state (a snapshot): instruments and marks,
    /// the ledger, then every resting order in priority order; every index (cid, accounts,
    /// levels, expiries, the liquidation index) is recomputed. The result's canonical state
    /// must equal `state` exactly, which also validates the snapshot's consistency.
    ///
    /// # Errors
    /// [`RestoreError`] naming what in the snapshot is inconsistent.
    pub fn restore(state: &CanonicalState, ledger: Ledger) -> Result<StateMachine, RestoreError> {
        let mut sm = StateMachine::with_ledger(ledger);
        for (i, (spec, mark)) in state.matching.instruments.iter().enumerate() {
            sm.list(spec).map_err(|source| RestoreError::Instrument { index: i, symbol: spec.symbol, source })?;
            let index = state.funding_indexes.get(i).copied().ok_or(RestoreError::MissingFundingIndex { index: i })?;
            sm.ledger.restore_market(InstrumentId(u32::try_from(i).unwrap_or(u32::MAX)), *mark, index);
        }
        for a in &state.accounts {
            let positions: Vec<l2x_risk::Position> = a
                .positions
                .iter()
                .map(|p| {
                    let mut record = l2x_risk::Position::new(p.instrument, p.funding_index);
                    record.size = p.size.0;
                    record.cost = p.cost;
                    record.realised = p.realised;
                    record
                })
                .collect();
            sm.ledger.restore_account(a.holder, a.collateral.0, &positions);
        }
        sm.ledger.restore_flows_and_index(state.deposits, state.withdrawals);
        sm.now = state.matching.now;
        for o in &state.matching.orders {
            if sm.instrument(o.instrument).is_none()
                || !o.leaves.is_positive()
                || sm.books.find(o.account, o.cid).is_some()
            {
                return Err(RestoreError::Order { order: o.order_id });
            }
            let slot = sm.ledger.slot(o.account).ok_or(RestoreError::UnknownAccount { order: o.order_id })?;
            let mut order = Order::new(
                o.order_id,
                o.account,
                slot,
                o.cid,
                o.instrument,
                o.side,
                o.price,
                o.leaves,
                o.tif,
                o.expire_ts,
                o.post_only,
                o.reduce_only,
                o.stp,
            );
            order.filled = o.filled;
            sm.rest(order);
        }
        sm.next_order_id = state.matching.next_order_id;
        sm.next_trade_id = state.matching.next_trade_id;
        sm.books.begin_command();
        sm.touched.clear();
        let rebuilt = sm.canonical();
        if rebuilt != *state {
            return Err(RestoreError::Disagrees);
        }
        sm.check_invariants().map_err(|what| RestoreError::Invariant { what })?;
        Ok(sm)
    }

    /// Applies one command, appending its events to `out` (which is not cleared).
    pub fn apply(&mut self, cmd: &Sequenced, out: &mut Vec<Event>) {
        self.books.begin_command();
        self.touched.clear();
        self.suspects.clear();
        self.now = self.now.max(cmd.ts);
        self.expire(out);
        match &cmd.cmd {
            Command::ListInstrument(spec) => self.list_instrument(spec, out),
            Command::Deposit { to, amount } => self.deposit(*to, *amount, out),
            Command::Withdraw { account, amount } => match self.ledger.withdraw(*account, *amount) {
                Ok((_, collateral)) => {
                    out.push(Event::Balance { holder: Holder::Account(*account), collateral: Amount(collateral) })
                }
                Err(reason) => out.push(reject(CommandKind::Withdraw, Some(*account), None, reason)),
            },
            Command::Oracle { instrument, price } => self.oracle(*instrument, *price, out),
            Command::Funding { instrument } => self.funding(*instrument, out),
            Command::NewOrder(order) => self.new_order(order, out),
            Command::Amend(amend) => self.amend(amend, out),
            Command::Cancel(c) => match self.books.find(c.account, c.cid) {
                Some(h) => {
                    let reason = if c.on_disconnect { CancelReason::Disconnect } else { CancelReason::User };
                    self.cancel_resting(h, reason, out);
                }
                None => out.push(reject(CommandKind::Cancel, Some(c.account), Some(c.cid), RejectReason::UnknownOrder)),
            },
            Command::MassCancel(m) => self.mass_cancel(m, out),
            // Time passing is all a tick does: the expiries above.
            Command::Tick => {}
        }
        self.trim_reduce_only(out);
        if self.liquidate_all(out) {
            self.trim_reduce_only(out);
        }
        self.books.flush_book_events(out);
    }

    // ----- queries ---------------------------------------------------------------------

    /// The instrument listed under `symbol`.
    pub fn instrument_by_symbol(&self, symbol: &str) -> Option<&Instrument> {
        let symbol = Symbol::try_new(symbol).ok()?;
        self.symbols.get(&symbol).map(|id| &self.instruments[id.0 as usize])
    }

    /// The instrument with this id.
    pub fn instrument(&self, id: InstrumentId) -> Option<&Instrument> {
        self.instruments.get(id.0 as usize)
    }

    /// Every listed instrument, in id order.
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    /// The mark price of an instrument, once it has an oracle price.
    pub fn mark(&self, id: InstrumentId) -> Option<Price> {
        self.ledger.mark(id)
    }

    /// The instrument of the live order (account, cid), if there is one.
    pub fn live_order_instrument(&self, account: AccountId, cid: ClientOrderId) -> Option<InstrumentId> {
        self.books.find(account, cid).map(|h| self.books.order(h).instrument)
    }

    /// The risk ledger: collateral, positions, marks, funding.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The sequenced time the state has reached.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Number of resting orders in all books.
    pub fn resting_count(&self) -> usize {
        self.books.len()
    }

    /// Best bid or ask of an instrument: price, total quantity, order count.
    pub fn best(&self, instrument: InstrumentId, side: Side) -> Option<(Price, Qty, u32)> {
        self.instrument(instrument)?;
        let (price, _) = self.books.best(instrument, side)?;
        let (qty, count) = self.books.level_at(instrument, side, price);
        Some((price, Qty(qty), count))
    }

    /// Every resting order, canonically ordered (instrument, bids then asks, best price
    /// first, then time priority).
    pub fn resting_orders(&self) -> Vec<RestingOrder> {
        self.books.resting_orders()
    }

    /// The canonical form of the whole state, from which the state hash is computed.
    pub fn canonical(&self) -> CanonicalState {
        let matching = MatchingState {
            instruments: self.instruments.iter().map(|i| (i.spec(), self.ledger.mark(i.id))).collect(),
            orders: self.resting_orders(),
            next_order_id: self.next_order_id,
            next_trade_id: self.next_trade_id,
            now: self.now,
        };
        let slots = [Ledger::INSURANCE, Ledger::FEES].into_iter().chain(self.ledger.slots_by_id());
        let accounts = slots
            .map(|s| {
                let a = self.ledger.account(s);
                AccountState {
                    holder: a.holder,
                    collateral: Amount(a.collateral),
                    positions: a
                        .positions
                        .iter()
                        .map(|p| PositionState {
                            instrument: p.instrument,
                            size: Qty(p.size),
                            cost: p.cost,
                            funding_index: p.funding_index,
                            realised: p.realised,
                            open_buy: Qty(p.open_buy),
                            open_sell: Qty(p.open_sell),
                        })
                        .collect(),
                }
            })
            .collect();
        let (deposits, withdrawals) = self.ledger.flows();
        CanonicalState {
            matching,
            funding_indexes: self.instruments.iter().map(|i| self.ledger.funding_index(i.id)).collect(),
            accounts,
            deposits,
            withdrawals,
        }
    }

    /// Checks every invariant of the books, the indexes and the ledger (conservation,
    /// positions netting to zero, the liquidation index), and that the ledger's open
    /// quantities are the books' resting orders.
    ///
    /// # Errors
    /// A description of the first broken invariant.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.books.check_invariants()?;
        self.ledger.check_invariants()?;
        for (i, cached) in self.instruments.iter().zip(&self.bands) {
            if let Some((mark, band)) = cached
                && *band != i.band(*mark)
            {
                return Err(format!("instrument {}: cached band {band:?} is not the band at {mark:?}", i.id.0));
            }
        }
        let orders = self.resting_orders();
        let gtd = orders.iter().filter(|o| o.tif == TimeInForce::Gtd).count();
        if gtd != self.gtd_live {
            return Err(format!("{gtd} GTD orders rest but gtd_live is {}", self.gtd_live));
        }
        let mut open: DetMap<(AccountId, InstrumentId, Side), i64> = DetMap::default();
        let mut reduce_only: DetMap<AccountId, u32> = DetMap::default();
        for o in &orders {
            *open.entry((o.account, o.instrument, o.side)).or_default() += o.leaves.0;
            if o.reduce_only {
                *reduce_only.entry(o.account).or_default() += 1;
            }
        }
        for slot in self.ledger.slots_by_id() {
            let a = self.ledger.account(slot);
            let Holder::Account(id) = a.holder else { continue };
            for p in &a.positions {
                for (side, qty) in [(Side::Buy, p.open_buy), (Side::Sell, p.open_sell)] {
                    let books = open.get(&(id, p.instrument, side)).copied().unwrap_or(0);
                    if books != qty {
                        return Err(format!("account {id} {side} open: ledger {qty}, books {books}"));
                    }
                }
            }
            let counted = self.reduce_only_resting.get(slot.index()).copied().unwrap_or(0);
            if counted != reduce_only.get(&id).copied().unwrap_or(0) {
                return Err(format!("account {id}: reduce-only count {counted} disagrees with the books"));
            }
        }
        Ok(())
    }

    // ----- commands --------------------------------------------------------------------

    fn list_instrument(&mut self, spec: &InstrumentSpec, out: &mut Vec<Event>) {
        match self.list(spec) {
            Ok(instrument) => out.push(Event::InstrumentListed { instrument }),
            Err(e) => out.push(reject(CommandKind::Instrument, None, None, e.reason())),
        }
    }

    /// Lists an instrument: its book, its market in the ledger, its symbol.
    fn list(&mut self, spec: &InstrumentSpec) -> Result<InstrumentId, ListingError> {
        if self.symbols.contains_key(&spec.symbol) {
            return Err(ListingError::DuplicateSymbol);
        }
        let id = u32::try_from(self.instruments.len()).map(InstrumentId).map_err(|_| ListingError::TooMany)?;
        let instrument = Instrument::try_new(id, spec).map_err(ListingError::Spec)?;
        let params = MarketParams::from_instrument(&instrument);
        params.validate().map_err(ListingError::Params)?;
        match self.ledger.add_market(params) {
            Ok(market) if market == id => {}
            Ok(_) => return Err(ListingError::MarketId),
            Err(e) => return Err(ListingError::Params(e)),
        }
        self.instruments.push(instrument);
        self.bands.push(None);
        self.symbols.insert(spec.symbol, id);
        self.books.add_instrument();
        Ok(id)
    }

    fn deposit(&mut self, to: Holder, amount: Amount, out: &mut Vec<Event>) {
        if let Holder::Account(a) = to
            && a.is_reserved()
        {
            return out.push(reject(CommandKind::Deposit, Some(a), None, RejectReason::ReservedAccount));
        }
        match self.ledger.deposit(to, amount) {
            Ok((_, collateral)) => out.push(match to {
                Holder::Insurance => Event::Insurance { delta: i128::from(amount.0), balance: Amount(collateral) },
                holder => Event::Balance { holder, collateral: Amount(collateral) },
            }),
            Err(_) => {
                let account = match to {
                    Holder::Account(a) => Some(a),
                    _ => None,
                };
                out.push(reject(CommandKind::Deposit, account, None, RejectReason::BadAmount));
            }
        }
    }

    fn oracle(&mut self, instrument: InstrumentId, price: Price, out: &mut Vec<Event>) {
        let rej = |r| reject(CommandKind::Oracle, None, None, r);
        if self.instrument(instrument).is_none() {
            return out.push(rej(RejectReason::UnknownSymbol));
        }
        if price.0 <= 0 {
            return out.push(rej(RejectReason::BadOraclePrice));
        }
        let mut suspects = core::mem::take(&mut self.suspects);
        self.ledger.set_mark(instrument, price, &mut suspects);
        self.suspects = suspects;
    }

    /// The price band of an instrument at its mark, `None` without a mark.
    #[inline]
    fn band(&mut self, instrument: InstrumentId) -> Option<(Price, Price)> {
        let mark = self.ledger.mark(instrument)?;
        let i = instrument.0 as usize;
        match self.bands[i] {
            Some((at, band)) if at == mark => Some(band),
            _ => {
                let band = self.instruments[i].band(mark);
                self.bands[i] = Some((mark, band));
                Some(band)
            }
        }
    }

    fn funding(&mut self, instrument: InstrumentId, out: &mut Vec<Event>) {
        let rej = |r| reject(CommandKind::Funding, None, None, r);
        if self.instrument(instrument).is_none() {
            return out.push(rej(RejectReason::UnknownSymbol));
        }
        let mut suspects = core::mem::take(&mut self.suspects);
        let tick = self.ledger.funding_tick(
            instrument,
            self.books.depth(instrument, Side::Buy),
            self.books.depth(instrument, Side::Sell),
            &mut suspects,
        );
        self.suspects = suspects;
        match tick {
            Some((rate, index)) => out.push(Event::Funding { instrument, rate, index }),
            None => out.push(rej(RejectReason::NoMarkPrice)),
        }
    }

    fn new_order(&mut self, o: &NewOrder, out: &mut Vec<Event>) {
        let rej = |r| reject(CommandKind::New, Some(o.account), Some(o.cid), r);
        let Some(max_order_qty) = self.instrument(o.instrument).map(|i| i.max_order_qty) else {
            return out.push(rej(RejectReason::UnknownSymbol));
        };
        let market = o.order_type == OrderType::Market;
        if (market && o.tif == TimeInForce::Gtd)
            || (o.post_only && (market || matches!(o.tif, TimeInForce::Ioc | TimeInForce::Fok)))
        {
            return out.push(rej(RejectReason::BadFlags));
        }
        match (o.tif, o.expire_ts) {
            (TimeInForce::Gtd, Some(t)) if t > self.now => {}
            (TimeInForce::Gtd, _) | (_, Some(_)) => return out.push(rej(RejectReason::BadExpiry)),
            _ => {}
        }
        match (market, o.price) {
            (false, Some(p)) if p.0 > 0 => {}
            (true, None) => {}
            _ => return out.push(rej(RejectReason::BadPrice)),
        }
        if !o.qty.is_positive() {
            return out.push(rej(RejectReason::BadQty));
        }
        if o.qty > max_order_qty {
            return out.push(rej(RejectReason::MaxOrderQty));
        }
        if self.books.find(o.account, o.cid).is_some() {
            return out.push(rej(RejectReason::DuplicateCid));
        }
        let Some((low, high)) = self.band(o.instrument) else {
            return out.push(rej(RejectReason::NoMarkPrice));
        };
        let limit = match (o.price, o.side) {
            (Some(p), _) if p < low || p > high => return out.push(rej(RejectReason::PriceOutOfBand)),
            (Some(p), _) => p,
            (None, Side::Buy) => high,
            (None, Side::Sell) => low,
        };
        let known = self.ledger.slot(o.account);
        let exposure = Exposure {
            instrument: o.instrument,
            side: o.side,
            price: limit,
            qty: o.qty,
            reduce_only: o.reduce_only,
            change: Change::New,
        };
        let mut qty = match self.ledger.check_exposure(known, &exposure) {
            Ok(qty) => qty,
            Err(reason) => return out.push(rej(reason)),
        };
        if o.reduce_only {
            // Resting reduce-only orders of the same side share the position (docs/RISK.md).
            let room = qty.0 - self.reduce_only_open(o.account, o.instrument, o.side, None);
            if room <= 0 {
                return out.push(rej(RejectReason::ReduceOnlyWouldIncrease));
            }
            qty = Qty(room.min(qty.0));
        }
        if o.post_only && self.would_cross(o.instrument, o.side, limit) {
            return out.push(rej(RejectReason::PostOnlyWouldCross));
        }

        let slot = match known {
            Some(slot) => slot,
            None => self.ledger.slot_or_create(o.account),
        };
        let order_id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        out.push(Event::Accepted {
            account: o.account,
            cid: o.cid,
            order_id,
            instrument: o.instrument,
            side: o.side,
            price: limit,
            qty: o.qty,
        });
        let mut taker = Taker {
            account: o.account,
            slot,
            cid: o.cid,
            order_id,
            instrument: o.instrument,
            side: o.side,
            limit,
            leaves: qty,
            filled: Qty::ZERO,
            stp: o.stp,
            liquidation: None,
        };
        if qty < o.qty {
            // A reduce-only order larger than what it may reduce is cut at once.
            out.push(cancelled(&taker, Qty(o.qty.0 - qty.0), qty, CancelReason::ReduceOnly));
        }
        if o.tif == TimeInForce::Fok && !self.fok_fillable(&taker) {
            return out.push(cancelled(&taker, taker.leaves, Qty::ZERO, CancelReason::FokUnfilled));
        }
        let end = self.match_taker(&mut taker, out);
        match end {
            MatchEnd::Filled => {}
            MatchEnd::SelfTrade => out.push(cancelled(&taker, taker.leaves, Qty::ZERO, CancelReason::SelfTrade)),
            MatchEnd::Exhausted if !market && o.tif.may_rest() => {
                let mut order = Order::new(
                    order_id,
                    o.account,
                    slot,
                    o.cid,
                    o.instrument,
                    o.side,
                    limit,
                    taker.leaves,
                    o.tif,
                    o.expire_ts,
                    o.post_only,
                    o.reduce_only,
                    o.stp,
                );
                order.filled = taker.filled;
                self.rest(order);
            }
            MatchEnd::Exhausted => {
                let reason = match (market, o.tif) {
                    (_, TimeInForce::Fok) => CancelReason::FokUnfilled,
                    (true, _) => CancelReason::MarketRemainder,
                    (false, _) => CancelReason::IocRemainder,
                };
                out.push(cancelled(&taker, taker.leaves, Qty::ZERO, reason));
            }
        }
    }

    fn amend(&mut self, a: &Amend, out: &mut Vec<Event>) {
        let rej = |r| reject(CommandKind::Amend, Some(a.account), Some(a.cid), r);
        let Some(h) = self.books.find(a.account, a.cid).filter(|&h| self.books.order(h).instrument == a.instrument)
        else {
            return out.push(rej(RejectReason::UnknownOrder));
        };
        let o = *self.books.order(h);
        let max_order_qty = self.instruments[o.instrument.0 as usize].max_order_qty;
        let price = a.price.unwrap_or(o.price);
        let qty = a.qty.unwrap_or(o.leaves);
        if price.0 <= 0 {
            return out.push(rej(RejectReason::BadPrice));
        }
        if !qty.is_positive() {
            return out.push(rej(RejectReason::BadQty));
        }
        if qty > max_order_qty {
            return out.push(rej(RejectReason::MaxOrderQty));
        }
        if price != o.price {
            // A resting order implies a mark exists; the fallback keeps this total.
            let (low, high) = self.band(o.instrument).unwrap_or((price, price));
            if price < low || price > high {
                return out.push(rej(RejectReason::PriceOutOfBand));
            }
        }
        if o.reduce_only {
            let size = self.ledger.account(o.slot).position(o.instrument).map_or(0, |p| p.size);
            if qty.0 + self.reduce_only_open(o.account, o.instrument, o.side, Some(h)) > size.abs() {
                return out.push(rej(RejectReason::ReduceOnlyWouldIncrease));
            }
        }
        let exposure = Exposure {
            instrument: o.instrument,
            side: o.side,
            price,
            qty,
            reduce_only: o.reduce_only,
            change: Change::Amend { from: o.leaves, repriced: price != o.price },
        };
        if let Err(reason) = self.ledger.check_exposure(Some(o.slot), &exposure) {
            return out.push(rej(reason));
        }
        let priority_kept = price == o.price && qty <= o.leaves;
        let crossing = !priority_kept && self.would_cross(o.instrument, o.side, price);
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
            self.resize(h, qty);
            return;
        }
        if !crossing {
            self.move_resting(h, price, qty);
            return;
        }
        self.unlink(h);
        let mut taker = Taker {
            account: o.account,
            slot: o.slot,
            cid: o.cid,
            order_id: o.id,
            instrument: o.instrument,
            side: o.side,
            limit: price,
            leaves: qty,
            filled: Qty::ZERO,
            stp: o.stp,
            liquidation: None,
        };
        match self.match_taker(&mut taker, out) {
            MatchEnd::Exhausted => self.relink(h, price, taker.leaves, taker.filled),
            end => {
                if end == MatchEnd::SelfTrade {
                    out.push(cancelled(&taker, taker.leaves, Qty::ZERO, CancelReason::SelfTrade));
                }
                self.forget(h);
            }
        }
    }

    fn mass_cancel(&mut self, m: &MassCancel, out: &mut Vec<Event>) {
        if let Some(instrument) = m.instrument
            && self.instrument(instrument).is_none()
        {
            return out.push(reject(CommandKind::MassCancel, Some(m.account), None, RejectReason::UnknownSymbol));
        }
        let Some(slot) = self.ledger.slot(m.account) else { return };
        let mut handles = core::mem::take(&mut self.scratch);
        self.books.account_orders(slot, &mut handles);
        handles.retain(|&h| {
            let o = self.books.order(h);
            m.instrument.is_none_or(|i| i == o.instrument) && m.side.is_none_or(|s| s == o.side)
        });
        handles.sort_unstable_by_key(|&h| self.books.order(h).id);
        for &h in &handles {
            self.cancel_resting(h, CancelReason::MassCancel, out);
        }
        handles.clear();
        self.scratch = handles;
    }

    // ----- matching --------------------------------------------------------------------

    /// `true` if an order on `side` at `limit` would take liquidity.
    fn would_cross(&self, instrument: InstrumentId, side: Side, limit: Price) -> bool {
        self.books.best(instrument, side.opposite()).is_some_and(|(p, _)| crosses(side, limit, p))
    }

    /// Whether an FOK taker would fill completely, walking the book without changing it.
    /// Resting orders of its own account provide nothing; under `cancel_maker` they are
    /// skipped (matching would cancel them), under every other mode they end the walk
    /// (matching would stop, or decrement the taker, there). A resting reduce-only order
    /// counts for what its position still lets it trade; since an account's reduce-only
    /// orders on one side never add up to more than its position (entry sizing and
    /// `trim_reduce_only`), counting each on its own is exact.
    fn fok_fillable(&self, t: &Taker) -> bool {
        let mut need = t.leaves.0;
        for (price, lv) in self.books.levels_best_first(t.instrument, t.side.opposite()) {
            if !crosses(t.side, t.limit, price) {
                break;
            }
            let mut h = self.books.level_head(lv);
            while !h.is_nil() {
                let o = self.books.order(h);
                if o.account == t.account {
                    if t.stp != StpMode::CancelMaker {
                        return false;
                    }
                } else {
                    need -= if o.reduce_only { o.leaves.0.min(self.reduce_only_capacity(o)) } else { o.leaves.0 };
                    if need <= 0 {
                        return true;
                    }
                }
                h = o.next_in_level();
            }
        }
        false
    }

    /// Open quantity of an account's resting reduce-only orders on one side of one
    /// instrument, leaving out `except`.
    fn reduce_only_open(
        &self,
        account: AccountId,
        instrument: InstrumentId,
        side: Side,
        except: Option<OrderHandle>,
    ) -> i64 {
        let Some(slot) = self.ledger.slot(account) else { return 0 };
        if self.reduce_only_resting.get(slot.index()).copied().unwrap_or(0) == 0 {
            return 0;
        }
        let mut handles = Vec::new();
        self.books.account_orders(slot, &mut handles);
        handles
            .iter()
            .filter(|&&h| Some(h) != except)
            .map(|&h| self.books.order(h))
            .filter(|o| o.reduce_only && o.instrument == instrument && o.side == side)
            .map(|o| o.leaves.0)
            .sum()
    }

    /// How much a reduce-only order may still trade: its account's position if the order
    /// is on the other side of it, else nothing.
    fn reduce_only_capacity(&self, o: &Order) -> i64 {
        let size = self.ledger.account(o.slot).position(o.instrument).map_or(0, |p| p.size);
        match o.side {
            Side::Buy if size < 0 => -size,
            Side::Sell if size > 0 => size,
            _ => 0,
        }
    }

    /// Matches a taker against the opposite side in price-time priority.
    fn match_taker(&mut self, t: &mut Taker, out: &mut Vec<Event>) -> MatchEnd {
        let opposite = t.side.opposite();
        loop {
            let Some((price, lv)) = self.books.best(t.instrument, opposite) else {
                return MatchEnd::Exhausted;
            };
            if !crosses(t.side, t.limit, price) {
                return MatchEnd::Exhausted;
            }
            let mut h = self.books.level_head(lv);
            while !h.is_nil() {
                let mut maker = *self.books.order(h);
                let next = maker.next_in_level();
                if maker.account == t.account {
                    match t.stp {
                        StpMode::CancelTaker => return MatchEnd::SelfTrade,
                        StpMode::CancelMaker => self.cancel_resting(h, CancelReason::SelfTrade, out),
                        StpMode::CancelBoth => {
                            self.cancel_resting(h, CancelReason::SelfTrade, out);
                            return MatchEnd::SelfTrade;
                        }
                        StpMode::Decrement => {
                            let by = maker.leaves.min(t.leaves);
                            let maker_left = self.decrement(h, by);
                            t.leaves.0 -= by.0;
                            out.push(Event::Cancelled {
                                account: maker.account,
                                cid: maker.cid,
                                order_id: maker.id,
                                instrument: maker.instrument,
                                side: maker.side,
                                qty: by,
                                leaves: maker_left,
                                reason: CancelReason::SelfTrade,
                            });
                            out.push(cancelled(t, by, t.leaves, CancelReason::SelfTrade));
                            if maker_left == Qty::ZERO {
                                self.remove_resting(h);
                            }
                            if t.leaves == Qty::ZERO {
                                return MatchEnd::Filled;
                            }
                        }
                    }
                    h = next;
                    continue;
                }
                if maker.reduce_only {
                    // A reduce-only maker never trades past its position (docs/RISK.md).
                    let capacity = self.reduce_only_capacity(&maker);
                    if capacity == 0 {
                        self.cancel_resting(h, CancelReason::ReduceOnly, out);
                        h = next;
                        continue;
                    }
                    if maker.leaves.0 > capacity {
                        self.cut(h, Qty(capacity), CancelReason::ReduceOnly, out);
                        maker.leaves = Qty(capacity);
                    }
                }
                let qty = maker.leaves.min(t.leaves);
                let maker_left = self.books.reduce(h, qty, true);
                t.leaves.0 -= qty.0;
                t.filled.0 += qty.0;
                let trade_id = TradeId(self.next_trade_id);
                self.next_trade_id += 1;
                let maker_slot = maker.slot;
                let (te, me, liquidation_fee) = self.ledger.fill(Fill {
                    instrument: t.instrument,
                    price,
                    qty,
                    taker_side: t.side,
                    taker: t.slot,
                    maker: maker_slot,
                    liquidation: t.liquidation,
                });
                let saturate = |v: i128| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
                out.push(Event::Trade(Trade {
                    trade_id,
                    instrument: t.instrument,
                    price,
                    qty,
                    maker_account: maker.account,
                    maker_cid: maker.cid,
                    maker_order_id: maker.id,
                    maker_leaves: maker_left,
                    maker_fee: saturate(me.fee),
                    taker_account: t.account,
                    taker_cid: t.cid,
                    taker_order_id: t.order_id,
                    taker_leaves: t.leaves,
                    taker_fee: saturate(te.fee + liquidation_fee),
                    taker_side: t.side,
                    liquidation: t.liquidation.is_some(),
                }));
                if t.liquidation.is_some() {
                    out.push(Event::Liquidation {
                        account: t.account,
                        instrument: t.instrument,
                        side: t.side,
                        qty,
                        price,
                        fee: liquidation_fee,
                    });
                    if liquidation_fee != 0 {
                        self.insurance_event(liquidation_fee, out);
                    }
                }
                self.position_events(maker_slot, t.instrument, &me, 0, out);
                self.position_events(t.slot, t.instrument, &te, liquidation_fee, out);
                if te.fee != 0 || me.fee != 0 {
                    let fees = self.ledger.account(Ledger::FEES).collateral;
                    out.push(Event::Balance { holder: Holder::Fees, collateral: Amount(fees) });
                }
                if maker_left == Qty::ZERO {
                    self.remove_resting(h);
                }
                if t.leaves == Qty::ZERO {
                    return MatchEnd::Filled;
                }
                h = next;
            }
        }
    }

    /// `position` and (when collateral moved) `balance` events of one side of a fill or
    /// transfer; records the account as touched.
    fn position_events(
        &mut self,
        slot: AccountSlot,
        instrument: InstrumentId,
        e: &FillEffect,
        extra: i128,
        out: &mut Vec<Event>,
    ) {
        let a = self.ledger.account(slot);
        if let Some(p) = a.position(instrument) {
            out.push(Event::Position {
                holder: a.holder,
                instrument,
                size: Qty(p.size),
                cost: p.cost,
                realised: p.realised,
            });
        }
        if e.realised != 0 || e.fee != 0 || e.funding_paid != 0 || extra != 0 {
            out.push(Event::Balance { holder: a.holder, collateral: Amount(a.collateral) });
        }
        self.touched.push((slot, instrument));
    }

    fn insurance_event(&self, delta: i128, out: &mut Vec<Event>) {
        let balance = Amount(self.ledger.account(Ledger::INSURANCE).collateral);
        out.push(Event::Insurance { delta, balance });
    }

    // ----- resting orders (every change of resting quantity goes through here) ----------

    /// Puts an order on the book and records its open quantity.
    fn rest(&mut self, order: Order) -> OrderHandle {
        let slot = order.slot;
        self.ledger.open_order_delta(slot, order.instrument, order.side, order.leaves.0);
        if order.reduce_only {
            let i = slot.index();
            if self.reduce_only_resting.len() <= i {
                self.reduce_only_resting.resize(i + 1, 0);
            }
            self.reduce_only_resting[i] += 1;
        }
        let h = self.books.rest(order);
        if let Some(expiry) = order.expire_ts {
            self.push_expiry(expiry, order.id, h);
        }
        h
    }

    /// Cancels a resting order's whole open quantity and removes it.
    fn cancel_resting(&mut self, h: OrderHandle, reason: CancelReason, out: &mut Vec<Event>) {
        let o = *self.books.order(h);
        out.push(Event::Cancelled {
            account: o.account,
            cid: o.cid,
            order_id: o.id,
            instrument: o.instrument,
            side: o.side,
            qty: o.leaves,
            leaves: Qty::ZERO,
            reason,
        });
        self.remove_resting(h);
    }

    /// Cuts a resting order down to `leaves` in place (it keeps its priority).
    fn cut(&mut self, h: OrderHandle, leaves: Qty, reason: CancelReason, out: &mut Vec<Event>) {
        let o = *self.books.order(h);
        out.push(Event::Cancelled {
            account: o.account,
            cid: o.cid,
            order_id: o.id,
            instrument: o.instrument,
            side: o.side,
            qty: Qty(o.leaves.0 - leaves.0),
            leaves,
            reason,
        });
        self.resize(h, leaves);
    }

    fn remove_resting(&mut self, h: OrderHandle) {
        let o = *self.books.order(h);
        self.ledger.open_order_delta(o.slot, o.instrument, o.side, -o.leaves.0);
        self.forget_counts(&o);
        self.books.remove(h);
    }

    /// Frees an order already out of its level (an amend that ended without resting).
    fn forget(&mut self, h: OrderHandle) {
        let o = *self.books.order(h);
        self.forget_counts(&o);
        self.books.forget(h);
    }

    fn forget_counts(&mut self, o: &Order) {
        if o.tif == TimeInForce::Gtd {
            self.gtd_live -= 1;
        }
        if o.reduce_only {
            self.reduce_only_resting[o.slot.index()] -= 1;
        }
    }

    fn resize(&mut self, h: OrderHandle, leaves: Qty) {
        let o = *self.books.order(h);
        self.ledger.open_order_delta(o.slot, o.instrument, o.side, leaves.0 - o.leaves.0);
        self.books.resize_in_place(h, leaves);
    }

    /// Reduces a resting order without a trade (self-trade decrement).
    fn decrement(&mut self, h: OrderHandle, by: Qty) -> Qty {
        let o = *self.books.order(h);
        self.ledger.open_order_delta(o.slot, o.instrument, o.side, -by.0);
        self.books.reduce(h, by, false)
    }

    fn unlink(&mut self, h: OrderHandle) {
        let o = *self.books.order(h);
        self.ledger.open_order_delta(o.slot, o.instrument, o.side, -o.leaves.0);
        self.books.unlink_from_level(h);
    }

    /// Moves a resting order to the back of the level at `price` with open quantity `leaves`
    /// (an amend that loses priority and does not cross): one open-quantity update for the
    /// difference, none when the quantity is unchanged.
    fn move_resting(&mut self, h: OrderHandle, price: Price, leaves: Qty) {
        let o = *self.books.order(h);
        let delta = leaves.0 - o.leaves.0;
        if delta != 0 {
            self.ledger.open_order_delta(o.slot, o.instrument, o.side, delta);
        }
        self.books.unlink_from_level(h);
        self.books.relink(h, price, leaves, Qty::ZERO);
    }

    fn relink(&mut self, h: OrderHandle, price: Price, leaves: Qty, filled: Qty) {
        let o = *self.books.order(h);
        self.ledger.open_order_delta(o.slot, o.instrument, o.side, leaves.0);
        self.books.relink(h, price, leaves, filled);
    }

    // ----- reduce-only and liquidation ----------------------------------------------------

    /// Cuts the resting reduce-only orders of every account whose position changed, so that
    /// together they never exceed the position: oldest keep their quantity, newer ones are
    /// cut (`cancelled`, reason `reduce_only`); orders on the position's own side (or with
    /// no position) go entirely.
    fn trim_reduce_only(&mut self, out: &mut Vec<Event>) {
        let resting = &self.reduce_only_resting;
        if self.touched.iter().all(|&(s, _)| resting.get(s.index()).copied().unwrap_or(0) == 0) {
            return;
        }
        let mut touched = core::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        let mut handles = core::mem::take(&mut self.scratch);
        for &(slot, instrument) in &touched {
            if self.reduce_only_resting.get(slot.index()).copied().unwrap_or(0) == 0 {
                continue;
            }
            self.books.account_orders(slot, &mut handles);
            handles.retain(|&h| {
                let o = self.books.order(h);
                o.reduce_only && o.instrument == instrument
            });
            handles.sort_unstable_by_key(|&h| self.books.order(h).id);
            // What each side may still trade: a buy reduces a short, a sell a long.
            let size = self.ledger.account(slot).position(instrument).map_or(0, |p| p.size);
            let mut capacity = [(-size).max(0), size.max(0)]; // [buy, sell]
            for &h in &handles {
                let o = *self.books.order(h);
                let room = capacity[o.side as usize];
                let keep = o.leaves.0.min(room);
                capacity[o.side as usize] = room - keep;
                if keep == 0 {
                    self.cancel_resting(h, CancelReason::ReduceOnly, out);
                } else if keep < o.leaves.0 {
                    self.cut(h, Qty(keep), CancelReason::ReduceOnly, out);
                }
            }
        }
        handles.clear();
        self.scratch = handles;
        self.touched = touched;
    }

    /// Liquidates, in ascending account id, every account that traded this command or that
    /// an oracle or funding tick flagged, and every account that trades with a liquidation.
    ///
    /// Returns `true` if any account was liquidated; `self.touched` then holds every
    /// position a liquidation changed.
    fn liquidate_all(&mut self, out: &mut Vec<Event>) -> bool {
        if self.touched.is_empty() && self.suspects.is_empty() {
            return false;
        }
        // The common case: nobody is below maintenance, and the loop below would skip every
        // account. Checked without building the work set.
        let ledger = &self.ledger;
        let liquidatable =
            |s: AccountSlot| matches!(ledger.account(s).holder, Holder::Account(_)) && ledger.below_maintenance(s);
        if !self.touched.iter().any(|&(s, _)| liquidatable(s)) && !self.suspects.iter().any(|&s| liquidatable(s)) {
            self.touched.clear();
            return false;
        }
        let mut changed: Vec<(AccountSlot, InstrumentId)> = Vec::new();
        let mut work: BTreeSet<(AccountId, AccountSlot)> = BTreeSet::new();
        let ledger = &self.ledger;
        let key = |s: AccountSlot| match ledger.account(s).holder {
            Holder::Account(id) => Some((id, s)),
            _ => None,
        };
        work.extend(self.touched.iter().filter_map(|&(s, _)| key(s)));
        work.extend(self.suspects.iter().filter_map(|&s| key(s)));
        self.touched.clear();
        while let Some((id, slot)) = work.pop_first() {
            if self.ledger.liquidation_order(slot).is_none() {
                continue;
            }
            self.liquidate(id, slot, out);
            let ledger = &self.ledger;
            work.extend(self.touched.iter().filter_map(|&(s, _)| match ledger.account(s).holder {
                Holder::Account(other) if s != slot => Some((other, s)),
                _ => None,
            }));
            changed.append(&mut self.touched);
        }
        let any = !changed.is_empty();
        self.touched = changed;
        any
    }

    /// Liquidates one account below maintenance (docs/RISK.md, "Liquidating an account").
    fn liquidate(&mut self, id: AccountId, slot: AccountSlot, out: &mut Vec<Event>) {
        let mut handles = core::mem::take(&mut self.scratch);
        self.books.account_orders(slot, &mut handles);
        handles.sort_unstable_by_key(|&h| self.books.order(h).id);
        for &h in &handles {
            self.cancel_resting(h, CancelReason::Liquidation, out);
        }
        handles.clear();
        self.scratch = handles;

        while let Some(lo) = self.ledger.liquidation_order(slot) {
            let before = self.ledger.account(slot).position(lo.instrument).map_or(0, |p| p.size);
            let Some((low, high)) = self.band(lo.instrument) else { break };
            let limit = match lo.side {
                Side::Sell => lo.prices.limit.max(low),
                Side::Buy => lo.prices.limit.min(high),
            };
            let order_id = OrderId(self.next_order_id);
            self.next_order_id += 1;
            let mut taker = Taker {
                account: id,
                slot,
                cid: ClientOrderId(0),
                order_id,
                instrument: lo.instrument,
                side: lo.side,
                limit,
                leaves: lo.qty,
                filled: Qty::ZERO,
                stp: StpMode::CancelTaker,
                liquidation: Some(lo.prices.bankruptcy),
            };
            self.match_taker(&mut taker, out);
            let mut rest = Qty::ZERO;
            if taker.leaves.is_positive()
                && let Some(bankruptcy) = self.ledger.bankruptcy_price(slot, lo.instrument)
            {
                // The book could not absorb even this much at the fillable price and the
                // account is still below maintenance: the whole remaining position goes at the
                // bankruptcy price of now (closing there leaves the margin ratio unchanged, so
                // closing piecemeal would not help).
                let size = self.ledger.account(slot).position(lo.instrument).map_or(0, |p| p.size);
                rest = self.absorb(id, slot, lo.instrument, lo.side, Qty(size.abs()), bankruptcy, out);
            }
            if rest.is_positive() {
                out.push(Event::LiquidationIncomplete { account: id, instrument: lo.instrument, qty: rest });
                break;
            }
            let after = self.ledger.account(slot).position(lo.instrument).map_or(0, |p| p.size);
            if after == before {
                break;
            }
        }
    }

    /// What the book did not absorb of a liquidation order: the insurance fund takes what
    /// it can at the bankruptcy price, auto-deleveraging closes the rest against ranked
    /// opposite positions. Returns what is left.
    #[allow(clippy::too_many_arguments, reason = "one liquidation remainder, fully described")]
    fn absorb(
        &mut self,
        id: AccountId,
        slot: AccountSlot,
        instrument: InstrumentId,
        side: Side,
        qty: Qty,
        bankruptcy: ExactPrice,
        out: &mut Vec<Event>,
    ) -> Qty {
        let price = formulas::bankruptcy_tick(bankruptcy, side);
        let take = self.ledger.insurance_capacity(instrument, price, qty, side.opposite());
        let mut rest = qty;
        if take.is_positive() {
            out.push(Event::Takeover { account: id, instrument, side, qty: take, price });
            let (a, f) = self.ledger.transfer(instrument, price, take, side, slot, Ledger::INSURANCE);
            self.position_events(slot, instrument, &a, 0, out);
            self.position_events(Ledger::INSURANCE, instrument, &f, 0, out);
            rest.0 -= take.0;
        }
        if !rest.is_positive() || !self.ledger.liquidation_params().adl {
            return rest;
        }
        for cp in self.ledger.adl_queue(instrument, side, slot) {
            let Holder::Account(counterparty) = self.ledger.account(cp).holder else { continue };
            let size = self.ledger.account(cp).position(instrument).map_or(0, |p| p.size);
            let q = Qty(rest.0.min(size.abs()));
            if !q.is_positive() {
                continue;
            }
            out.push(Event::Adl { account: id, counterparty, instrument, side, qty: q, price });
            let (a, c) = self.ledger.transfer(instrument, price, q, side, slot, cp);
            self.position_events(slot, instrument, &a, 0, out);
            self.position_events(cp, instrument, &c, 0, out);
            rest.0 -= q.0;
            if !rest.is_positive() {
                break;
            }
        }
        rest
    }

    // ----- expiry --------------------------------------------------------------------------

    fn push_expiry(&mut self, expiry: Timestamp, id: OrderId, h: OrderHandle) {
        self.gtd_live += 1;
        // Lazily deleted entries are dropped once they outnumber the live ones.
        if self.expiries.len() >= 2 * self.gtd_live + 64 {
            let books = &self.books;
            self.expiries.retain(|Reverse((_, id, h))| books.is_live(*h, *id));
        }
        self.expiries.push(Reverse((expiry, id, h)));
    }

    /// Cancels (reason `expired`) every GTD order whose expiry is at or before now, in
    /// (expiry, order id) order.
    fn expire(&mut self, out: &mut Vec<Event>) {
        while let Some(&Reverse((expiry, id, h))) = self.expiries.peek() {
            if expiry > self.now {
                break;
            }
            self.expiries.pop();
            if self.books.is_live(h, id) {
                self.cancel_resting(h, CancelReason::Expired, out);
            }
        }
    }
}

fn reject(kind: CommandKind, account: Option<AccountId>, cid: Option<ClientOrderId>, reason: RejectReason) -> Event {
    Event::Rejected { kind, account, cid, reason }
}

fn cancelled(t: &Taker, qty: Qty, leaves: Qty, reason: CancelReason) -> Event {
    Event::Cancelled {
        account: t.account,
        cid: t.cid,
        order_id: t.order_id,
        instrument: t.instrument,
        side: t.side,
        qty,
        leaves,
        reason,
    }
}

#[cfg(test)]
mod tests {
    //! One worked example per matching rule. Instruments have tick 1 and lot 1, so prices
    //! and quantities read as plain numbers; the mark is 1000 and the band 10 %, so limit
    //! prices 900..=1100 are in band. Accounts: A = 1, B = 2, C = 3.

    use core::str::FromStr;

    use Side::{Buy, Sell};
    use l2x_types::{Amount, Cancel, Decimal, Seq};

    use super::*;

    const A: u64 = 1;
    const B: u64 = 2;
    const C: u64 = 3;
    const BTC: InstrumentId = InstrumentId(0);
    const ETH: InstrumentId = InstrumentId(1);

    fn spec(symbol: &str) -> InstrumentSpec {
        let d = |s| Decimal::from_str(s).unwrap();
        InstrumentSpec {
            symbol: Symbol::try_new(symbol).unwrap(),
            tick_size: d("1"),
            lot_size: d("1"),
            initial_margin: d("0.05"),
            maintenance_margin: d("0.03"),
            max_order_qty: d("100"),
            max_position_qty: d("1000"),
            price_band: d("0.1"),
            maker_fee: d("0"),
            taker_fee: d("0"),
            liquidation_fee: d("0.01"),
            impact_notional: d("10000"),
            funding_interest: d("0"),
            funding_clamp: d("0.02"),
        }
    }

    /// A state machine with BTC-PERP (id 0, mark 1000) and ETH-PERP (id 1, no mark) listed,
    /// that checks the invariants after every command.
    struct Exchange {
        sm: StateMachine,
        seq: u64,
        ts: u64,
    }

    impl Exchange {
        fn new() -> Exchange {
            let mut ex = Exchange { sm: StateMachine::new(), seq: 0, ts: 0 };
            ex.apply(Command::ListInstrument(Box::new(spec("BTC-PERP"))));
            ex.apply(Command::ListInstrument(Box::new(spec("ETH-PERP"))));
            ex.apply(Command::Oracle { instrument: BTC, price: Price(1000) });
            // Margin is not what these tests are about: every account they use is funded.
            for account in 1..=9 {
                ex.apply(Command::Deposit {
                    to: Holder::Account(AccountId(account)),
                    amount: Amount(1_000_000_000_000_000),
                });
            }
            ex
        }

        /// Sets the time of the following commands.
        fn at(&mut self, ts: u64) -> &mut Exchange {
            self.ts = ts;
            self
        }

        fn apply(&mut self, cmd: Command) -> Vec<Event> {
            self.seq += 1;
            let mut out = Vec::new();
            self.sm.apply(&Sequenced { seq: Seq(self.seq), ts: Timestamp(self.ts), cmd }, &mut out);
            self.sm.check_invariants().unwrap();
            // The matching events only; positions, balances and the rest are the risk
            // tests' (engine/tests/it/risk.rs).
            out.retain(Event::is_matching);
            out
        }

        fn new_order(&mut self, o: NewOrder) -> Vec<Event> {
            self.apply(Command::NewOrder(o))
        }

        /// Rests a GTC limit order that must not trade; returns its order id.
        fn rest(&mut self, account: u64, cid: u64, side: Side, price: i64, qty: i64) -> u64 {
            let events = self.new_order(limit(account, cid, side, price, qty));
            match events.as_slice() {
                [Event::Accepted { order_id, .. }, Event::Book { .. }] => order_id.0,
                other => panic!("expected the order to rest, got {other:?}"),
            }
        }

        fn amend(&mut self, account: u64, cid: u64, price: Option<i64>, qty: Option<i64>) -> Vec<Event> {
            let instrument = self.sm.live_order_instrument(AccountId(account), ClientOrderId(cid)).unwrap_or(BTC);
            self.apply(Command::Amend(Amend {
                account: AccountId(account),
                cid: ClientOrderId(cid),
                instrument,
                price: price.map(Price),
                qty: qty.map(Qty),
            }))
        }

        fn cancel(&mut self, account: u64, cid: u64) -> Vec<Event> {
            self.apply(Command::Cancel(Cancel {
                account: AccountId(account),
                cid: ClientOrderId(cid),
                on_disconnect: false,
            }))
        }

        fn mass_cancel(&mut self, account: u64, instrument: Option<InstrumentId>, side: Option<Side>) -> Vec<Event> {
            self.apply(Command::MassCancel(MassCancel { account: AccountId(account), instrument, side }))
        }

        /// (order id, account, cid, price, leaves, filled) of every resting order, canonically
        /// ordered.
        fn book(&self) -> Vec<(u64, u64, u64, i64, i64, i64)> {
            self.sm
                .resting_orders()
                .iter()
                .map(|o| (o.order_id.0, o.account.0, o.cid.0, o.price.0, o.leaves.0, o.filled.0))
                .collect()
        }
    }

    /// A GTC limit order on BTC-PERP with STP `cancel_taker`.
    fn limit(account: u64, cid: u64, side: Side, price: i64, qty: i64) -> NewOrder {
        NewOrder {
            account: AccountId(account),
            cid: ClientOrderId(cid),
            instrument: BTC,
            side,
            order_type: OrderType::Limit,
            price: Some(Price(price)),
            qty: Qty(qty),
            tif: TimeInForce::Gtc,
            expire_ts: None,
            post_only: false,
            reduce_only: false,
            stp: StpMode::CancelTaker,
        }
    }

    /// A market order on BTC-PERP.
    fn market(account: u64, cid: u64, side: Side, qty: i64) -> NewOrder {
        NewOrder { order_type: OrderType::Market, price: None, ..limit(account, cid, side, 0, qty) }
    }

    fn accepted(account: u64, cid: u64, order_id: u64, side: Side, price: i64, qty: i64) -> Event {
        Event::Accepted {
            account: AccountId(account),
            cid: ClientOrderId(cid),
            order_id: OrderId(order_id),
            instrument: BTC,
            side,
            price: Price(price),
            qty: Qty(qty),
        }
    }

    fn rejected(kind: CommandKind, account: u64, cid: Option<u64>, reason: RejectReason) -> Event {
        Event::Rejected { kind, account: Some(AccountId(account)), cid: cid.map(ClientOrderId), reason }
    }

    fn amended(account: u64, cid: u64, order_id: u64, price: i64, qty: i64, priority_kept: bool) -> Event {
        Event::Amended {
            account: AccountId(account),
            cid: ClientOrderId(cid),
            order_id: OrderId(order_id),
            instrument: BTC,
            price: Price(price),
            qty: Qty(qty),
            priority_kept,
        }
    }

    /// A BTC-PERP trade; `maker` and `taker` are (account, cid, order id, leaves after).
    fn trade(
        trade_id: u64,
        price: i64,
        qty: i64,
        maker: (u64, u64, u64, i64),
        taker: (u64, u64, u64, i64),
        taker_side: Side,
    ) -> Event {
        Event::Trade(Trade {
            trade_id: TradeId(trade_id),
            instrument: BTC,
            price: Price(price),
            qty: Qty(qty),
            maker_account: AccountId(maker.0),
            maker_cid: ClientOrderId(maker.1),
            maker_order_id: OrderId(maker.2),
            maker_leaves: Qty(maker.3),
            maker_fee: 0,
            taker_account: AccountId(taker.0),
            taker_cid: ClientOrderId(taker.1),
            taker_order_id: OrderId(taker.2),
            taker_leaves: Qty(taker.3),
            taker_fee: 0,
            taker_side,
            liquidation: false,
        })
    }

    /// A BTC-PERP cancel; `order` is (account, cid, order id).
    fn cancel(order: (u64, u64, u64), side: Side, qty: i64, leaves: i64, reason: CancelReason) -> Event {
        Event::Cancelled {
            account: AccountId(order.0),
            cid: ClientOrderId(order.1),
            order_id: OrderId(order.2),
            instrument: BTC,
            side,
            qty: Qty(qty),
            leaves: Qty(leaves),
            reason,
        }
    }

    /// A BTC-PERP book event.
    fn book(side: Side, price: i64, qty: i64, orders: u32) -> Event {
        Event::Book { instrument: BTC, side, price: Price(price), qty: Qty(qty), orders }
    }

    fn reasons(events: &[Event]) -> Vec<RejectReason> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Rejected { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    // ----- price-time priority -------------------------------------------------------

    #[test]
    fn best_price_first_then_oldest_first_at_the_makers_price() {
        let mut ex = Exchange::new();
        ex.rest(B, 1, Sell, 1001, 5); // order 1: worse price, oldest
        ex.rest(C, 1, Sell, 1000, 5); // order 2
        ex.rest(B, 2, Sell, 1000, 5); // order 3: same price as 2, later
        let events = ex.new_order(limit(A, 9, Buy, 1001, 12));
        assert_eq!(
            events,
            vec![
                accepted(A, 9, 4, Buy, 1001, 12),
                trade(1, 1000, 5, (C, 1, 2, 0), (A, 9, 4, 7), Buy),
                trade(2, 1000, 5, (B, 2, 3, 0), (A, 9, 4, 2), Buy),
                trade(3, 1001, 2, (B, 1, 1, 3), (A, 9, 4, 0), Buy),
                book(Sell, 1000, 0, 0),
                book(Sell, 1001, 3, 1),
            ]
        );
        assert_eq!(ex.book(), vec![(1, B, 1, 1001, 3, 2)]);
    }

    #[test]
    fn a_taker_stops_at_its_limit_and_rests_the_rest_with_what_it_filled() {
        let mut ex = Exchange::new();
        ex.rest(B, 1, Sell, 1000, 2);
        ex.rest(B, 2, Sell, 1002, 2);
        let events = ex.new_order(limit(A, 1, Buy, 1001, 5));
        assert_eq!(
            events,
            vec![
                accepted(A, 1, 3, Buy, 1001, 5),
                trade(1, 1000, 2, (B, 1, 1, 0), (A, 1, 3, 3), Buy),
                book(Buy, 1001, 3, 1),
                book(Sell, 1000, 0, 0),
            ]
        );
        assert_eq!(ex.book(), vec![(3, A, 1, 1001, 3, 2), (2, B, 2, 1002, 2, 0)]);
    }

    // ----- amend ---------------------------------------------------------------------

    #[test]
    fn amend_qty_down_keeps_priority() {
        let mut ex = Exchange::new();
        ex.rest(B, 1, Sell, 1000, 5); // order 1
        ex.rest(C, 1, Sell, 1000, 5); // order 2
        assert_eq!(ex.amend(B, 1, None, Some(3)), vec![amended(B, 1, 1, 1000, 3, true), book(Sell, 1000, 8, 2)]);
        let events = ex.new_order(limit(A, 1, Buy, 1000, 3));
        assert_eq!(events[1], trade(1, 1000, 3, (B, 1, 1, 0), (A, 1, 3, 0), Buy), "B is still first");
    }

    #[test]
    fn amend_to_the_same_qty_keeps_priority_and_changes_no_level() {
        let mut ex = Exchange::new();
        ex.rest(B, 1, Sell, 1000, 5);
        ex.rest(C, 1, Sell, 1000, 5);
        assert_eq!(ex.amend(B, 1, Some(1000), Some(5)), vec![amended(B, 1, 1, 1000, 5, true)]);
        assert_eq!(ex.amend(B, 1, None, None), vec![amended(B, 1, 1, 1000, 5, true)]);
        assert_eq!(ex.book()[0].0, 1, "B is still first");
    }

    #[test]
    fn amend_qty_up_goes_to_the_back_of_the_level() {
        let mut ex = Exchange::new();
        ex.rest(B, 1, Sell, 1000, 5); // order 1
        ex.rest(C, 1, Sell, 1000, 5); // order 2
        assert_eq!(ex.amend(B, 1, None, Some(6)), vec![amended(B, 1, 1, 1000, 6, false), book(Sell, 1000, 11, 2)]);
        assert_eq!(ex.book(), vec![(2, C, 1, 1000, 5, 0), (1, B, 1, 1000, 6, 0)]);
        let events = ex.new_order(limit(A, 1, Buy, 1000, 3));
        assert_eq!(events[1], trade(1, 1000, 3, (C, 1, 2, 2), (A, 1, 3, 0), Buy), "C is now first");
    }

    #[test]
    fn amend_price_change_goes_to_the_back_even_when_it_comes_back() {
        let mut ex = Exchange::new();
        ex.rest(B, 1, Sell, 1000, 5); // order 1
        ex.rest(C, 1, Sell, 1000, 5); // order 2
        assert_eq!(
            ex.amend(B, 1, Some(1001), None),
            vec![amended(B, 1, 1, 1001, 5, false), book(Sell, 1000, 5, 1), book(Sell, 1001, 5, 1)]
        );
        assert_eq!(
            ex.amend(B, 1, Some(1000), Some(4)),
            vec![amended(B, 1, 1, 1000, 4, false), book(Sell, 1000, 9, 2), book(Sell, 1001, 0, 0)]
        );
        assert_eq!(ex.book(), vec![(2, C, 1, 1000, 5, 0), (1, B, 1, 1000, 4, 0)]);
    }

    #[test]
    fn crossing_amend_trades_as_taker_after_the_amended_event() {
        let mut ex = Exchange::new();
        ex.rest(A, 1, Buy, 999, 5); // order 1
        ex.rest(B, 1, Sell, 1000, 3); // order 2
        ex.rest(B, 2, Sell, 1001, 3); // order 3
        let events = ex.amend(A, 1, Some(1000), Some(6));
        assert_eq!(
            events,
            vec![
                amended(A, 1, 1, 1000, 6, false),
                trade(1, 1000, 3, (B, 1, 2, 0), (A, 1, 1, 3), Buy),
                book(Buy, 1000, 3, 1),
                book(Buy, 999, 0, 0),
                book(Sell, 1000, 0, 0),
            ]
        );
        // Same order id, the rest at the new price, what it executed counted as filled.
        assert_eq!(ex.book(), vec![(1, A, 1, 1000, 3, 3), (3, B, 2, 1001, 3, 0)]);
    }

    #[test]
    fn crossing_amend_that_fills_leaves_the_book() {
        let mut ex = Exchange::new();
        ex.rest(A, 1, Buy, 999, 2);
        ex.rest(B, 1, Sell, 1000, 3);
        let events = ex.amend(A, 1, Some(1000), None);
        assert_eq!(
            events,
            vec![
                amended(A, 1, 1, 1000, 2, false),
                trade(1, 1000, 2, (B, 1, 2, 1), (A, 1, 1, 0), Buy),
                book(Buy, 999, 0, 0),
                book(Sell, 1000, 1, 1),
            ]
        );
        assert_eq!(ex.cancel(A, 1), vec![rejected(CommandKind::Cancel, A, Some(1), RejectReason::UnknownOrder)]);
    }

    #[test]
    fn post_only_crossing_amend_is_rejected_and_the_order_unchanged() {
        let mut ex = Exchange::new();
        ex.new_order(NewOrder { post_only: true, ..limit(A, 1, Buy, 998, 5) });
        ex.rest(C, 1, Buy, 998, 5);
        ex.rest(B, 1, Sell, 1000, 3);
        let before = ex.book();
        let events = ex.amend(A, 1, Some(1000), Some(4));
        assert_eq!(events, vec![rejected(CommandKind::Amend, A, Some(1), RejectReason::PostOnlyWouldCross)]);
        assert_eq!(ex.book(), before, "price, quantity and queue place unchanged");
        // A non-crossing amend of the same post-only order is fine.
        assert_eq!(
            ex.amend(A, 1, Some(999), None),
            vec![amended(A, 1, 1, 999, 5, false), book(Buy, 999, 5, 1), book(Buy, 998, 5, 1),]
        );
    }

    #[test]
    fn amend_validation_order() {
        let mut ex = Exchange::new();
        ex.new_order(NewOrder { post_only: true, ..limit(A, 1, Buy, 999, 5) });
        ex.rest(B, 1, Sell, 1000, 5);
        let rej = |cid, r| vec![rejected(CommandKind::Amend, A, Some(cid), r)];
        // Each line fixes the previous line's failure and fails the next check.
        assert_eq!(ex.amend(A, 2, Some(0), Some(0)), rej(2, RejectReason::UnknownOrder));
        assert_eq!(ex.amend(A, 1, Some(0), Some(0)), rej(1, RejectReason::BadPrice));
        assert_eq!(ex.amend(A, 1, Some(1200), Some(0)), rej(1, RejectReason::BadQty));
        assert_eq!(ex.amend(A, 1, Some(1200), Some(101)), rej(1, RejectReason::MaxOrderQty));
        assert_eq!(ex.amend(A, 1, Some(1200), Some(100)), rej(1, RejectReason::PriceOutOfBand));
        assert_eq!(ex.amend(A, 1, Some(1000), Some(100)), rej(1, RejectReason::PostOnlyWouldCross));
        assert_eq!(ex.book(), vec![(1, A, 1, 999, 5, 0), (2, B, 1, 1000, 5, 0)]);
    }

    // ----- cancel and mass cancel ----------------------------------------------------

    #[test]
    fn cancel_removes_and_a_cancel_or_amend_of_an_order_not_live_is_unknown_order() {
        let mut ex = Exchange::new();
        ex.rest(A, 1, Buy, 999, 5);
        ex.rest(A, 2, Sell, 1001, 5);
        assert_eq!(ex.cancel(A, 1), vec![cancel((A, 1, 1), Buy, 5, 0, CancelReason::User), book(Buy, 999, 0, 0)]);
        let unknown = |kind, cid| vec![rejected(kind, A, Some(cid), RejectReason::UnknownOrder)];
        // Cancelled.
        assert_eq!(ex.cancel(A, 1), unknown(CommandKind::Cancel, 1));
        assert_eq!(ex.amend(A, 1, Some(999), None), unknown(CommandKind::Amend, 1));
        // Never existed (and another account's cid is not ours).
        assert_eq!(ex.cancel(A, 7), unknown(CommandKind::Cancel, 7));
        assert_eq!(ex.cancel(B, 2), vec![rejected(CommandKind::Cancel, B, Some(2), RejectReason::UnknownOrder)]);
        // Filled.
        ex.new_order(limit(B, 1, Buy, 1001, 5));
        assert_eq!(ex.cancel(A, 2), unknown(CommandKind::Cancel, 2));
        assert_eq!(ex.amend(A, 2, None, Some(1)), unknown(CommandKind::Amend, 2));
        assert!(ex.book().is_empty());
    }

    #[test]
    fn mass_cancel_narrows_by_instrument_and_side_in_ascending_order_id() {
        let mut ex = Exchange::new();
        ex.apply(Command::Oracle { instrument: ETH, price: Price(1000) });
        ex.rest(A, 1, Buy, 990, 1); // order 1
        ex.new_order(NewOrder { instrument: ETH, ..limit(A, 2, Sell, 1010, 1) }); // order 2
        ex.rest(A, 3, Sell, 1010, 1); // order 3
        ex.rest(A, 4, Buy, 995, 1); // order 4: better than order 1
        ex.rest(B, 1, Buy, 995, 1); // order 5: not A's
        ex.rest(A, 5, Sell, 1005, 1); // order 6: better than order 3
        assert_eq!(
            ex.mass_cancel(A, Some(BTC), Some(Sell)),
            vec![
                cancel((A, 3, 3), Sell, 1, 0, CancelReason::MassCancel),
                cancel((A, 5, 6), Sell, 1, 0, CancelReason::MassCancel),
                book(Sell, 1005, 0, 0),
                book(Sell, 1010, 0, 0),
            ]
        );
        assert_eq!(
            ex.mass_cancel(A, Some(BTC), None),
            vec![
                cancel((A, 1, 1), Buy, 1, 0, CancelReason::MassCancel),
                cancel((A, 4, 4), Buy, 1, 0, CancelReason::MassCancel),
                book(Buy, 995, 1, 1),
                book(Buy, 990, 0, 0),
            ]
        );
        assert_eq!(ex.book(), vec![(5, B, 1, 995, 1, 0), (2, A, 2, 1010, 1, 0)]);
        let eth_cancel = Event::Cancelled {
            account: AccountId(A),
            cid: ClientOrderId(2),
            order_id: OrderId(2),
            instrument: ETH,
            side: Sell,
            qty: Qty(1),
            leaves: Qty(0),
            reason: CancelReason::MassCancel,
        };
        let eth_book = Event::Book { instrument: ETH, side: Sell, price: Price(1010), qty: Qty(0), orders: 0 };
        assert_eq!(ex.mass_cancel(A, None, None), vec![eth_cancel, eth_book]);
        assert_eq!(ex.mass_cancel(A, None, None), vec![]);
        assert_eq!(ex.mass_cancel(9, None, None), vec![], "an unknown account has nothing to cancel");
        assert_eq!(
            ex.mass_cancel(B, Some(InstrumentId(7)), None),
            vec![rejected(CommandKind::MassCancel, B, None, RejectReason::UnknownSymbol)]
        );
        assert_eq!(ex.book(), vec![(5, B, 1, 995, 1, 0)]);
    }

    // ----- self-trade prevention -----------------------------------------------------

    /// B sells 2 (order 1), A sells 3 (order 2), B sells 4 (order 3), all at 1000; then A
    /// buys 6 at 1000 (order 4) with `stp`.
    fn self_trade(stp: StpMode) -> (Exchange, Vec<Event>) {
        let mut ex = Exchange::new();
        ex.rest(B, 1, Sell, 1000, 2);
        ex.rest(A, 1, Sell, 1000, 3);
        ex.rest(B, 2, Sell, 1000, 4);
        let events = ex.new_order(NewOrder { stp, ..limit(A, 2, Buy, 1000, 6) });
        (ex, events)
    }

    #[test]
    fn stp_cancel_taker_cancels_the_takers_remainder_and_keeps_the_maker() {
        let (ex, events) = self_trade(StpMode::CancelTaker);
        assert_eq!(
            events,
            vec![
                accepted(A, 2, 4, Buy, 1000, 6),
                trade(1, 1000, 2, (B, 1, 1, 0), (A, 2, 4, 4), Buy),
                cancel((A, 2, 4), Buy, 4, 0, CancelReason::SelfTrade),
                book(Sell, 1000, 7, 2),
            ]
        );
        assert_eq!(ex.book(), vec![(2, A, 1, 1000, 3, 0), (3, B, 2, 1000, 4, 0)]);
    }

    #[test]
    fn stp_cancel_maker_cancels_the_resting_order_and_goes_on() {
        let (ex, events) = self_trade(StpMode::CancelMaker);
        assert_eq!(
            events,
            vec![
                accepted(A, 2, 4, Buy, 1000, 6),
                trade(1, 1000, 2, (B, 1, 1, 0), (A, 2, 4, 4), Buy),
                cancel((A, 1, 2), Sell, 3, 0, CancelReason::SelfTrade),
                trade(2, 1000, 4, (B, 2, 3, 0), (A, 2, 4, 0), Buy),
                book(Sell, 1000, 0, 0),
            ]
        );
        assert!(ex.book().is_empty());
    }

    #[test]
    fn stp_cancel_both_cancels_the_maker_then_the_takers_remainder() {
        let (ex, events) = self_trade(StpMode::CancelBoth);
        assert_eq!(
            events,
            vec![
                accepted(A, 2, 4, Buy, 1000, 6),
                trade(1, 1000, 2, (B, 1, 1, 0), (A, 2, 4, 4), Buy),
                cancel((A, 1, 2), Sell, 3, 0, CancelReason::SelfTrade),
                cancel((A, 2, 4), Buy, 4, 0, CancelReason::SelfTrade),
                book(Sell, 1000, 4, 1),
            ]
        );
        assert_eq!(ex.book(), vec![(3, B, 2, 1000, 4, 0)]);
    }

    #[test]
    fn stp_decrement_reduces_both_without_a_trade_and_goes_on() {
        let (ex, events) = self_trade(StpMode::Decrement);
        assert_eq!(
            events,
            vec![
                accepted(A, 2, 4, Buy, 1000, 6),
                trade(1, 1000, 2, (B, 1, 1, 0), (A, 2, 4, 4), Buy),
                cancel((A, 1, 2), Sell, 3, 0, CancelReason::SelfTrade),
                cancel((A, 2, 4), Buy, 3, 1, CancelReason::SelfTrade),
                trade(2, 1000, 1, (B, 2, 3, 3), (A, 2, 4, 0), Buy),
                book(Sell, 1000, 3, 1),
            ]
        );
        assert_eq!(ex.book(), vec![(3, B, 2, 1000, 3, 1)]);
    }

    #[test]
    fn stp_decrement_of_a_larger_maker_leaves_it_resting_and_ends_the_taker() {
        let mut ex = Exchange::new();
        ex.rest(A, 1, Sell, 1000, 10);
        let events = ex.new_order(NewOrder { stp: StpMode::Decrement, ..limit(A, 2, Buy, 1000, 4) });
        assert_eq!(
            events,
            vec![
                accepted(A, 2, 2, Buy, 1000, 4),
                cancel((A, 1, 1), Sell, 4, 6, CancelReason::SelfTrade),
                cancel((A, 2, 2), Buy, 4, 0, CancelReason::SelfTrade),
                book(Sell, 1000, 6, 1),
            ]
        );
        // Decrement is not a fill: the maker's filled stays zero.
        assert_eq!(ex.book(), vec![(1, A, 1, 1000, 6, 0)]);
    }

    #[test]
    fn stp_decrement_of_a_larger_taker_rests_what_is_left() {
        let mut ex = Exchange::new();
        ex.rest(A, 1, Sell, 1000, 2);
        let events = ex.new_order(NewOrder { stp: StpMode::Decrement, ..limit(A, 2, Buy, 1000, 5) });
        assert_eq!(
            events,
            vec![
                accepted(A, 2, 2, Buy, 1000, 5),
                cancel((A, 1, 1), Sell, 2, 0, CancelReason::SelfTrade),
                cancel((A, 2, 2), Buy, 2, 3, CancelReason::SelfTrade),
                book(Buy, 1000, 3, 1),
                book(Sell, 1000, 0, 0),
            ]
        );
        assert_eq!(ex.book(), vec![(2, A, 2, 1000, 3, 0)]);
    }

    #[test]
    fn stp_the_takers_mode_governs_not_the_makers() {
        let mut ex = Exchange::new();
        ex.new_order(NewOrder { stp: StpMode::CancelMaker, ..limit(A, 1, Sell, 1000, 2) });
        let events = ex.new_order(NewOrder { stp: StpMode::CancelTaker, ..limit(A, 2, Buy, 1000, 2) });
        assert_eq!(
            events,
            vec![accepted(A, 2, 2, Buy, 1000, 2), cancel((A, 2, 2), Buy, 2, 0, CancelReason::SelfTrade)]
        );
        assert_eq!(ex.book(), vec![(1, A, 1, 1000, 2, 0)]);
    }

    // ----- IOC, FOK, market ----------------------------------------------------------

    #[test]
    fn ioc_trades_what_it_can_and_cancels_the_rest_ioc_remainder() {
        let mut ex = Exchange::new();
        ex.rest(B, 1, Sell, 1000, 2);
        ex.rest(B, 2, Sell, 1002, 2);
        let events = ex.new_order(NewOrder { tif: TimeInForce::Ioc, ..limit(A, 1, Buy, 1001, 5) });
        assert_eq!(
            events,
            vec![
                accepted(A, 1, 3, Buy, 1001, 5),
                trade(1, 1000, 2, (B, 1, 1, 0), (A, 1, 3, 3), Buy),
                cancel((A, 1, 3), Buy, 3, 0, CancelReason::IocRemainder),
                book(Sell, 1000, 0, 0),
            ]
        );
        assert_eq!(ex.book(), vec![(2, B, 2, 1002, 2, 0)]);
    }

    #[test]
    fn market_order_trades_up_to_its_protection_price_and_cancels_market_remainder() {
        let mut ex = Exchange::new();
        ex.rest(B, 1, Sell, 1000, 2);
        ex.rest(B, 2, Sell, 1100, 2); // the band edge: reachable
        ex.apply(Command::Oracle { instrument: BTC, price: Price(1050) }); // band now 945..=1155
        ex.rest(B, 3, Sell, 1101, 2);
        ex.apply(Command::Oracle { instrument: BTC, price: Price(1000) }); // protection: 1100
        let events = ex.new_order(market(A, 1, Buy, 7));
        assert_eq!(
            events,
            vec![
                accepted(A, 1, 4, Buy, 1100, 7),
                trade(1, 1000, 2, (B, 1, 1, 0), (A, 1, 4, 5), Buy),
                trade(2, 1100, 2, (B, 2, 2, 0), (A, 1, 4, 3), Buy),
                cancel((A, 1, 4), Buy, 3, 0, CancelReason::MarketRemainder),
                book(Sell, 1000, 0, 0),
                book(Sell, 1100, 0, 0),
            ]
        );
        assert_eq!(ex.book(), vec![(3, B, 3, 1101, 2, 0)]);
        // With IOC, a market order's remainder is still market_remainder; into an empty
        // side it is accepted and cancelled whole.
        let events = ex.new_order(NewOrder { tif: TimeInForce::Ioc, ..market(A, 2, Sell, 4) });
        assert_eq!(
            events,
            vec![accepted(A, 2, 5, Sell, 900, 4), cancel((A, 2, 5), Sell, 4, 0, CancelReason::MarketRemainder)]
        );
    }

    #[test]
    fn fok_that_cannot_fill_is_cancelled_whole_without_trading() {
        let mut ex = Exchange::new();
        ex.rest(B, 1, Sell, 1000, 2);
        ex.rest(C, 1, Sell, 1001, 2);
        ex.rest(C, 2, Sell, 1002, 9); // beyond the limit
        let before = ex.book();
        let events = ex.new_order(NewOrder { tif: TimeInForce::Fok, ..limit(A, 1, Buy, 1001, 5) });
        assert_eq!(
            events,
            vec![accepted(A, 1, 4, Buy, 1001, 5), cancel((A, 1, 4), Buy, 5, 0, CancelReason::FokUnfilled)]
        );
        assert_eq!(ex.book(), before);
        // Exactly fillable: it fills.
        let events = ex.new_order(NewOrder { tif: TimeInForce::Fok, ..limit(A, 2, Buy, 1001, 4) });
        assert_eq!(
            events,
            vec![
                accepted(A, 2, 5, Buy, 1001, 4),
                trade(1, 1000, 2, (B, 1, 1, 0), (A, 2, 5, 2), Buy),
                trade(2, 1001, 2, (C, 1, 2, 0), (A, 2, 5, 0), Buy),
                book(Sell, 1000, 0, 0),
                book(Sell, 1001, 0, 0),
            ]
        );
        // A market FOK is FOK: fok_unfilled, not market_remainder.
        let events = ex.new_order(NewOrder { tif: TimeInForce::Fok, ..market(A, 3, Buy, 10) });
        assert_eq!(
            events,
            vec![accepted(A, 3, 6, Buy, 1100, 10), cancel((A, 3, 6), Buy, 10, 0, CancelReason::FokUnfilled)]
        );
    }

    #[test]
    fn fok_walk_own_orders_provide_nothing_and_end_the_walk_unless_cancel_maker() {
        let fok = |stp| NewOrder { tif: TimeInForce::Fok, stp, ..limit(A, 9, Buy, 1000, 3) };
        for stp in [StpMode::CancelTaker, StpMode::CancelBoth, StpMode::Decrement] {
            let mut ex = Exchange::new();
            ex.rest(A, 1, Sell, 1000, 1); // own, first in the queue
            ex.rest(B, 1, Sell, 1000, 5);
            let events = ex.new_order(fok(stp));
            assert_eq!(
                events,
                vec![accepted(A, 9, 3, Buy, 1000, 3), cancel((A, 9, 3), Buy, 3, 0, CancelReason::FokUnfilled)],
                "{stp}"
            );
            assert_eq!(ex.book().len(), 2, "{stp}: nothing touched");
        }
        let mut ex = Exchange::new();
        ex.rest(A, 1, Sell, 1000, 1);
        ex.rest(B, 1, Sell, 1000, 5);
        let events = ex.new_order(fok(StpMode::CancelMaker));
        assert_eq!(
            events,
            vec![
                accepted(A, 9, 3, Buy, 1000, 3),
                cancel((A, 1, 1), Sell, 1, 0, CancelReason::SelfTrade),
                trade(1, 1000, 3, (B, 1, 2, 2), (A, 9, 3, 0), Buy),
                book(Sell, 1000, 2, 1),
            ]
        );
        // Own order behind enough liquidity: the walk never reaches it.
        let mut ex = Exchange::new();
        ex.rest(B, 1, Sell, 1000, 3);
        ex.rest(A, 1, Sell, 1000, 1);
        let events = ex.new_order(fok(StpMode::CancelTaker));
        assert_eq!(events[1], trade(1, 1000, 3, (B, 1, 1, 0), (A, 9, 3, 0), Buy));
        // Own quantity is not counted: 2 of others' + 1 own < 3.
        let mut ex = Exchange::new();
        ex.rest(B, 1, Sell, 1000, 2);
        ex.rest(A, 1, Sell, 1000, 1);
        let events = ex.new_order(fok(StpMode::CancelMaker));
        assert_eq!(events[1], cancel((A, 9, 3), Buy, 3, 0, CancelReason::FokUnfilled));
    }

    // ----- client order ids, marks, bands ----------------------------------------------

    #[test]
    fn duplicate_cid_is_per_account_and_only_while_live() {
        let mut ex = Exchange::new();
        ex.rest(A, 7, Buy, 990, 1);
        let dup = ex.new_order(limit(A, 7, Sell, 1010, 1));
        assert_eq!(dup, vec![rejected(CommandKind::New, A, Some(7), RejectReason::DuplicateCid)]);
        // Live on another instrument still counts.
        ex.apply(Command::Oracle { instrument: ETH, price: Price(1000) });
        let dup = ex.new_order(NewOrder { instrument: ETH, ..limit(A, 7, Sell, 1010, 1) });
        assert_eq!(reasons(&dup), vec![RejectReason::DuplicateCid]);
        ex.rest(B, 7, Sell, 1010, 1); // another account's cid 7
        ex.cancel(A, 7);
        ex.rest(A, 7, Buy, 991, 1); // reusable once gone
    }

    #[test]
    fn orders_need_a_mark_price() {
        let mut ex = Exchange::new();
        let events = ex.new_order(NewOrder { instrument: ETH, ..limit(A, 1, Buy, 1000, 1) });
        assert_eq!(events, vec![rejected(CommandKind::New, A, Some(1), RejectReason::NoMarkPrice)]);
        let events = ex.new_order(NewOrder { instrument: ETH, ..market(A, 1, Buy, 1) });
        assert_eq!(reasons(&events), vec![RejectReason::NoMarkPrice]);
        ex.apply(Command::Oracle { instrument: ETH, price: Price(1000) });
        let events = ex.new_order(NewOrder { instrument: ETH, ..limit(A, 1, Buy, 1000, 1) });
        assert!(matches!(events[0], Event::Accepted { instrument: ETH, .. }));
    }

    #[test]
    fn price_band_edges_are_inclusive() {
        let mut ex = Exchange::new(); // mark 1000, band 10 %: 900..=1100
        ex.rest(A, 1, Buy, 900, 1);
        ex.rest(A, 2, Sell, 1100, 1);
        let out = |events: Vec<Event>| reasons(&events) == vec![RejectReason::PriceOutOfBand];
        assert!(out(ex.new_order(limit(A, 3, Buy, 899, 1))));
        assert!(out(ex.new_order(limit(A, 3, Sell, 1101, 1))));
        // An amend to a new price is checked against the band too.
        assert!(out(ex.amend(A, 1, Some(899), None)));
        assert_eq!(ex.amend(A, 1, Some(1100), None)[0], amended(A, 1, 1, 1100, 1, false));
    }

    #[test]
    fn market_protection_price_is_the_band_edge_rounded_to_the_tick_towards_the_mark() {
        let mut ex = Exchange::new();
        // mark 1005, band 10 %: 904.5..=1105.5 in ticks, so 905..=1105.
        ex.apply(Command::Oracle { instrument: BTC, price: Price(1005) });
        assert_eq!(ex.new_order(market(A, 1, Buy, 1))[0], accepted(A, 1, 1, Buy, 1105, 1));
        assert_eq!(ex.new_order(market(A, 2, Sell, 1))[0], accepted(A, 2, 2, Sell, 905, 1));
        ex.rest(A, 3, Buy, 905, 1);
        ex.rest(A, 4, Sell, 1105, 1);
        assert_eq!(reasons(&ex.new_order(limit(A, 5, Buy, 904, 1))), vec![RejectReason::PriceOutOfBand]);
        assert_eq!(reasons(&ex.new_order(limit(A, 5, Sell, 1106, 1))), vec![RejectReason::PriceOutOfBand]);
    }

    // ----- GTD -------------------------------------------------------------------------

    fn gtd(account: u64, cid: u64, side: Side, price: i64, qty: i64, expire_ts: u64) -> NewOrder {
        NewOrder {
            tif: TimeInForce::Gtd,
            expire_ts: Some(Timestamp(expire_ts)),
            ..limit(account, cid, side, price, qty)
        }
    }

    #[test]
    fn deposits_to_the_reserved_account_ids_are_refused() {
        let mut ex = Exchange::new();
        for id in [u64::MAX, u64::MAX - 1] {
            let events = ex.apply(Command::Deposit { to: Holder::Account(AccountId(id)), amount: Amount(1) });
            assert_eq!(
                events,
                vec![Event::Rejected {
                    kind: CommandKind::Deposit,
                    account: Some(AccountId(id)),
                    cid: None,
                    reason: RejectReason::ReservedAccount,
                }]
            );
        }
        let last_trading = AccountId(AccountId::RESERVED_FROM - 1);
        assert!(!last_trading.is_reserved());
        assert_eq!(ex.apply(Command::Deposit { to: Holder::Account(last_trading), amount: Amount(1) }), vec![]);
    }

    #[test]
    fn gtd_expires_before_the_first_command_whose_time_reaches_it() {
        let mut ex = Exchange::new();
        ex.at(10).new_order(gtd(B, 1, Sell, 1000, 5, 100));
        let deposit = Command::Deposit { to: Holder::Account(AccountId(C)), amount: Amount(1) };
        assert_eq!(ex.at(99).apply(deposit.clone()), vec![], "not yet");
        assert_eq!(ex.book().len(), 1);
        // At ts 100 the order expires before the new order acts: no trade.
        let events = ex.at(100).new_order(limit(A, 1, Buy, 1000, 5));
        assert_eq!(
            events,
            vec![
                cancel((B, 1, 1), Sell, 5, 0, CancelReason::Expired),
                accepted(A, 1, 2, Buy, 1000, 5),
                book(Buy, 1000, 5, 1),
                book(Sell, 1000, 0, 0),
            ]
        );
    }

    #[test]
    fn gtd_expires_on_a_tick_alone() {
        let mut ex = Exchange::new();
        ex.at(10).new_order(gtd(B, 1, Sell, 1000, 5, 100));
        assert_eq!(ex.at(99).apply(Command::Tick), vec![], "not yet");
        assert_eq!(
            ex.at(100).apply(Command::Tick),
            vec![cancel((B, 1, 1), Sell, 5, 0, CancelReason::Expired), book(Sell, 1000, 0, 0)]
        );
        assert_eq!(ex.book(), vec![]);
    }

    #[test]
    fn gtd_expiries_run_in_expiry_then_order_id_order_and_survive_amends() {
        let mut ex = Exchange::new();
        ex.new_order(gtd(A, 1, Buy, 990, 1, 50)); // order 1
        ex.new_order(gtd(A, 2, Buy, 991, 1, 40)); // order 2
        ex.new_order(gtd(A, 3, Buy, 992, 1, 40)); // order 3
        ex.new_order(gtd(A, 4, Buy, 993, 1, 61)); // order 4
        // An amend that loses priority keeps the expiry.
        assert_eq!(ex.amend(A, 3, Some(989), Some(2))[0], amended(A, 3, 3, 989, 2, false));
        let events = ex.at(60).apply(Command::Deposit { to: Holder::Account(AccountId(A)), amount: Amount(1) });
        assert_eq!(
            events,
            vec![
                cancel((A, 2, 2), Buy, 1, 0, CancelReason::Expired),
                cancel((A, 3, 3), Buy, 2, 0, CancelReason::Expired),
                cancel((A, 1, 1), Buy, 1, 0, CancelReason::Expired),
                book(Buy, 991, 0, 0),
                book(Buy, 990, 0, 0),
                book(Buy, 989, 0, 0),
            ]
        );
        assert_eq!(ex.book(), vec![(4, A, 4, 993, 1, 0)]);
        // An expired order is not live.
        assert_eq!(reasons(&ex.cancel(A, 1)), vec![RejectReason::UnknownOrder]);
    }

    #[test]
    fn bad_expiry_cases() {
        let mut ex = Exchange::new();
        ex.at(100);
        let bad = |ex: &mut Exchange, o| reasons(&ex.new_order(o)) == vec![RejectReason::BadExpiry];
        assert!(bad(&mut ex, NewOrder { expire_ts: None, ..gtd(A, 1, Buy, 990, 1, 0) }), "GTD without expiry");
        assert!(bad(&mut ex, gtd(A, 1, Buy, 990, 1, 100)), "GTD expiring now");
        assert!(bad(&mut ex, gtd(A, 1, Buy, 990, 1, 99)), "GTD in the past");
        assert!(bad(&mut ex, NewOrder { expire_ts: Some(Timestamp(200)), ..limit(A, 1, Buy, 990, 1) }), "GTC");
        let ioc = NewOrder { tif: TimeInForce::Ioc, expire_ts: Some(Timestamp(200)), ..limit(A, 1, Buy, 990, 1) };
        assert!(bad(&mut ex, ioc), "IOC with expiry");
        assert_eq!(ex.new_order(gtd(A, 1, Buy, 990, 1, 101))[0], accepted(A, 1, 1, Buy, 990, 1));
    }

    #[test]
    fn time_never_goes_back() {
        let mut ex = Exchange::new();
        ex.at(100).apply(Command::Deposit { to: Holder::Account(AccountId(A)), amount: Amount(1) });
        ex.at(50).apply(Command::Deposit { to: Holder::Account(AccountId(A)), amount: Amount(1) });
        assert_eq!(ex.sm.now(), Timestamp(100));
        // "Now" is still 100: an expiry at 100 is not after now.
        assert_eq!(reasons(&ex.new_order(gtd(A, 1, Buy, 990, 1, 100))), vec![RejectReason::BadExpiry]);
    }

    // ----- validation order --------------------------------------------------------------

    #[test]
    fn new_order_validation_order_reports_the_first_failing_check() {
        let mut ex = Exchange::new();
        ex.rest(A, 7, Buy, 999, 1); // makes cid 7 a duplicate
        ex.rest(B, 1, Sell, 1000, 1); // makes a post-only buy at 1000 cross
        // Each step fixes the previous step's failure; every later check still fails.
        type Fix = fn(&mut NewOrder);
        let steps: [(RejectReason, Fix); 10] = [
            (RejectReason::UnknownSymbol, |_| {}),
            (RejectReason::BadFlags, |o| o.instrument = ETH),
            (RejectReason::BadExpiry, |o| o.tif = TimeInForce::Gtc),
            (RejectReason::BadPrice, |o| o.expire_ts = None),
            (RejectReason::BadQty, |o| o.price = Some(Price(2000))),
            (RejectReason::MaxOrderQty, |o| o.qty = Qty(101)),
            (RejectReason::DuplicateCid, |o| o.qty = Qty(100)),
            (RejectReason::NoMarkPrice, |o| o.cid = ClientOrderId(8)),
            (RejectReason::PriceOutOfBand, |o| o.instrument = BTC),
            (RejectReason::PostOnlyWouldCross, |o| o.price = Some(Price(1000))),
        ];
        let mut order = NewOrder {
            instrument: InstrumentId(9),
            tif: TimeInForce::Ioc, // with post-only: bad_flags
            expire_ts: Some(Timestamp(5)),
            post_only: true,
            price: Some(Price(0)),
            qty: Qty(0),
            ..limit(A, 7, Buy, 0, 0)
        };
        let next_id = ex.sm.canonical().matching.next_order_id;
        for (expected, fix) in steps {
            fix(&mut order);
            assert_eq!(ex.new_order(order), vec![rejected(CommandKind::New, A, Some(order.cid.0), expected)]);
        }
        assert_eq!(ex.sm.canonical().matching.next_order_id, next_id, "a rejected order takes no id");
        order.price = Some(Price(999));
        assert!(matches!(ex.new_order(order)[0], Event::Accepted { .. }));
    }

    #[test]
    fn bad_flags_and_bad_price_combinations() {
        let mut ex = Exchange::new();
        let flags = |ex: &mut Exchange, o| reasons(&ex.new_order(o)) == vec![RejectReason::BadFlags];
        assert!(flags(&mut ex, NewOrder { post_only: true, ..market(A, 1, Buy, 1) }));
        assert!(flags(&mut ex, NewOrder { post_only: true, tif: TimeInForce::Fok, ..limit(A, 1, Buy, 990, 1) }));
        let market_gtd = NewOrder { tif: TimeInForce::Gtd, expire_ts: Some(Timestamp(9)), ..market(A, 1, Buy, 1) };
        assert!(flags(&mut ex, market_gtd));
        let price = |ex: &mut Exchange, o| reasons(&ex.new_order(o)) == vec![RejectReason::BadPrice];
        assert!(price(&mut ex, NewOrder { price: Some(Price(1000)), ..market(A, 1, Buy, 1) }), "market with a price");
        assert!(price(&mut ex, NewOrder { price: None, ..limit(A, 1, Buy, 990, 1) }), "limit without a price");
        assert!(price(&mut ex, limit(A, 1, Buy, -5, 1)), "negative");
        assert!(reasons(&ex.new_order(limit(A, 1, Buy, 990, -1))) == vec![RejectReason::BadQty]);
    }

    #[test]
    fn post_only_rests_when_it_does_not_cross_and_is_refused_against_own_orders_too() {
        let mut ex = Exchange::new();
        ex.rest(A, 1, Sell, 1001, 1);
        let events = ex.new_order(NewOrder { post_only: true, ..limit(A, 2, Buy, 1000, 1) });
        assert_eq!(events, vec![accepted(A, 2, 2, Buy, 1000, 1), book(Buy, 1000, 1, 1)]);
        let events = ex.new_order(NewOrder { post_only: true, ..limit(A, 3, Buy, 1001, 1) });
        assert_eq!(events, vec![rejected(CommandKind::New, A, Some(3), RejectReason::PostOnlyWouldCross)]);
    }

    // ----- book events -------------------------------------------------------------------

    #[test]
    fn book_events_are_net_per_level_per_command() {
        let mut ex = Exchange::new();
        // A sweep of three orders at one level: one event, not three.
        ex.rest(B, 1, Sell, 1000, 1);
        ex.rest(B, 2, Sell, 1000, 1);
        ex.rest(C, 1, Sell, 1000, 1);
        let events = ex.new_order(limit(A, 1, Buy, 1000, 3));
        assert_eq!(events.iter().filter(|e| matches!(e, Event::Book { .. })).count(), 1);
        assert_eq!(events.last(), Some(&book(Sell, 1000, 0, 0)));
        // A level touched twice with no net change (an expiry and a new order, same price,
        // same quantity) emits nothing.
        ex.at(10).new_order(gtd(B, 3, Sell, 1001, 2, 20));
        let events = ex.at(20).new_order(limit(C, 2, Sell, 1001, 2));
        assert_eq!(
            events,
            vec![cancel((B, 3, 5), Sell, 2, 0, CancelReason::Expired), accepted(C, 2, 6, Sell, 1001, 2)]
        );
        // An order that leaves a level and re-enters it (qty up) is one event with the new
        // totals.
        assert_eq!(ex.amend(C, 2, None, Some(3)), vec![amended(C, 2, 6, 1001, 3, false), book(Sell, 1001, 3, 1)]);
    }

    #[test]
    fn book_events_are_ordered_by_instrument_then_bids_then_asks_best_first() {
        let mut ex = Exchange::new();
        ex.apply(Command::Oracle { instrument: ETH, price: Price(1000) });
        ex.new_order(NewOrder { instrument: ETH, ..limit(A, 1, Sell, 1001, 1) });
        ex.rest(A, 2, Sell, 1002, 1);
        ex.rest(A, 3, Buy, 998, 1);
        ex.rest(A, 4, Sell, 1001, 1);
        ex.rest(A, 5, Buy, 999, 1);
        let events = ex.mass_cancel(A, None, None);
        let books: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Book { instrument, side, price, .. } => Some((instrument.0, *side, price.0)),
                _ => None,
            })
            .collect();
        assert_eq!(books, vec![(0, Buy, 999), (0, Buy, 998), (0, Sell, 1001), (0, Sell, 1002), (1, Sell, 1001)]);
    }

    #[test]
    fn a_rejected_command_changes_nothing_and_emits_no_book_event() {
        let mut ex = Exchange::new();
        ex.rest(A, 1, Buy, 999, 3);
        let before = ex.sm.canonical();
        for events in [
            ex.new_order(limit(A, 1, Buy, 999, 3)),
            ex.amend(A, 1, Some(1), None),
            ex.cancel(A, 2),
            ex.apply(Command::Deposit { to: Holder::Account(AccountId(A)), amount: Amount(0) }),
            ex.apply(Command::Oracle { instrument: BTC, price: Price(0) }),
        ] {
            assert_eq!(events.len(), 1, "{events:?}");
            assert!(matches!(events[0], Event::Rejected { .. }));
        }
        assert_eq!(ex.sm.canonical(), before);
    }

    /// A snapshot that does not restore says what is wrong in a typed error, and keeps why
    /// an instrument does not list as its source.
    #[test]
    fn restore_errors_are_typed_and_keep_their_source() {
        let ex = Exchange::new();
        let mut state = ex.sm.canonical();
        state.matching.instruments[1].0.price_band = Decimal::ONE;
        let err = StateMachine::restore(&state, Ledger::default()).unwrap_err();
        assert!(matches!(&err, RestoreError::Instrument { index: 1, source: ListingError::Spec(_), .. }), "{err:?}");
        let spec = std::error::Error::source(&err).and_then(std::error::Error::source);
        assert_eq!(spec.map(ToString::to_string).as_deref(), Some("price_band: 1 must be above 0 and below 1"));
        let mut state = ex.sm.canonical();
        state.funding_indexes.pop();
        let err = StateMachine::restore(&state, Ledger::default()).unwrap_err();
        assert_eq!(err, RestoreError::MissingFundingIndex { index: 1 });
        // An open quantity that no resting order accounts for.
        let mut state = ex.sm.canonical();
        state.accounts[2].positions.push(PositionState {
            instrument: BTC,
            size: Qty(0),
            cost: 0,
            funding_index: 0,
            realised: 0,
            open_buy: Qty(1),
            open_sell: Qty(0),
        });
        assert_eq!(StateMachine::restore(&state, Ledger::default()).err(), Some(RestoreError::Disagrees));
    }

    #[test]
    fn an_amend_naming_another_instrument_is_an_unknown_order() {
        let mut ex = Exchange::new();
        ex.rest(A, 1, Buy, 990, 5);
        let events = ex.apply(Command::Amend(Amend {
            account: AccountId(A),
            cid: ClientOrderId(1),
            instrument: ETH,
            price: None,
            qty: Some(Qty(1)),
        }));
        assert_eq!(
            events,
            vec![Event::Rejected {
                kind: CommandKind::Amend,
                account: Some(AccountId(A)),
                cid: Some(ClientOrderId(1)),
                reason: RejectReason::UnknownOrder
            }]
        );
        assert_eq!(ex.book(), vec![(1, A, 1, 990, 5, 0)]);
    }
}
