//! The state machine: applies one sequenced command at a time to the books and accounts
//! and writes what happened as [`Event`]s.
//!
//! # Order of events within a command
//!
//! 1. `cancelled` (reason `expired`) for GTD orders whose expiry the command's time
//!    reached: time passes before the command acts, so an expired order never trades.
//! 2. `accepted` or `rejected` (or `amended`) for the command itself.
//! 3. `trade` and `cancelled` events in the order they happen.
//! 4. One `book` event per price level whose total quantity or order count changed over
//!    the command (net), ordered by instrument, bids before asks, best price first.
//!
//! # Validation order of a new order (the first failing check is the reason)
//!
//! `unknown_symbol`, `bad_flags`, `bad_expiry`, `bad_price`, `bad_qty`, `max_order_qty`,
//! `duplicate_cid`, `no_mark_price`, `price_out_of_band`, `post_only_would_cross`.
//! A rejected order gets no `accepted` and changes nothing.
//!
//! # Time
//!
//! Time arrives only inside commands. The state machine's clock is the largest timestamp
//! seen so far, so a (journal-corrupting) decreasing timestamp cannot move time backwards.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use l2x_risk::Ledger;
use l2x_types::{
    AccountId, Amend, CancelReason, ClientOrderId, Command, CommandKind, DetMap, Event, Instrument, InstrumentId,
    InstrumentSpec, MassCancel, NewOrder, OrderId, OrderType, Price, Qty, RejectReason, Sequenced, Side, StpMode,
    Symbol, TimeInForce, Timestamp, Trade, TradeId,
};

use crate::book::{Books, Handle, NIL, Order, RestingOrder, crosses};
use crate::hash::CanonicalState;

/// Everything the exchange knows, and the only code that changes it.
#[derive(Clone, Debug, Default)]
pub struct StateMachine {
    instruments: Vec<Instrument>,
    symbols: DetMap<Symbol, InstrumentId>,
    marks: Vec<Option<Price>>,
    books: Books,
    ledger: Ledger,
    /// GTD orders by (expiry, order id); entries of orders gone since are skipped lazily.
    expiries: BinaryHeap<Reverse<(Timestamp, OrderId, Handle)>>,
    gtd_live: usize,
    next_order_id: u64,
    next_trade_id: u64,
    now: Timestamp,
    scratch: Vec<Handle>,
}

/// The order that is taking liquidity: a new order, or an amended one that crosses.
#[derive(Clone, Copy, Debug)]
struct Taker {
    account: AccountId,
    cid: ClientOrderId,
    order_id: OrderId,
    instrument: InstrumentId,
    side: Side,
    limit: Price,
    leaves: Qty,
    /// Executed while taking (becomes the resting order's `filled`).
    filled: Qty,
    stp: StpMode,
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
    /// An empty exchange: no instruments, no accounts.
    pub fn new() -> StateMachine {
        StateMachine { next_order_id: 1, next_trade_id: 1, ..StateMachine::default() }
    }

    /// Applies one command, appending its events to `out` (which is not cleared).
    pub fn apply(&mut self, cmd: &Sequenced, out: &mut Vec<Event>) {
        self.books.begin_command();
        self.now = self.now.max(cmd.ts);
        self.expire(out);
        match &cmd.cmd {
            Command::ListInstrument(spec) => self.list_instrument(spec, out),
            Command::Deposit { account, amount } => {
                if self.ledger.deposit(*account, *amount).is_err() {
                    out.push(reject(CommandKind::Deposit, Some(*account), None, RejectReason::BadAmount));
                }
            }
            Command::Oracle { instrument, price } => self.oracle(*instrument, *price, out),
            Command::NewOrder(order) => self.new_order(order, out),
            Command::Amend(amend) => self.amend(amend, out),
            Command::Cancel(c) => match self.books.find(c.account, c.cid) {
                Some(h) => self.cancel_resting(h, CancelReason::User, out),
                None => out.push(reject(CommandKind::Cancel, Some(c.account), Some(c.cid), RejectReason::UnknownOrder)),
            },
            Command::MassCancel(m) => self.mass_cancel(m, out),
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
        self.marks.get(id.0 as usize).copied().flatten()
    }

    /// The instrument of the live order (account, cid), if there is one.
    pub fn live_order_instrument(&self, account: AccountId, cid: ClientOrderId) -> Option<InstrumentId> {
        self.books.find(account, cid).map(|h| self.books.order(h).instrument)
    }

    /// The collateral ledger.
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
        CanonicalState {
            instruments: self.instruments.iter().map(|i| (i.spec(), self.marks[i.id.0 as usize])).collect(),
            orders: self.resting_orders(),
            accounts: self.ledger.accounts(),
            next_order_id: self.next_order_id,
            next_trade_id: self.next_trade_id,
            now: self.now,
        }
    }

    /// Checks every invariant of the books and indexes.
    ///
    /// # Errors
    /// A description of the first broken invariant.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.books.check_invariants()?;
        let gtd = self.resting_orders().iter().filter(|o| o.tif == TimeInForce::Gtd).count();
        if gtd != self.gtd_live {
            return Err(format!("{gtd} GTD orders rest but gtd_live is {}", self.gtd_live));
        }
        Ok(())
    }

    // ----- commands --------------------------------------------------------------------

    fn list_instrument(&mut self, spec: &InstrumentSpec, out: &mut Vec<Event>) {
        let rej = |r| reject(CommandKind::Instrument, None, None, r);
        if self.symbols.contains_key(&spec.symbol) {
            return out.push(rej(RejectReason::DuplicateSymbol));
        }
        let Ok(id) = u32::try_from(self.instruments.len()).map(InstrumentId) else {
            return out.push(rej(RejectReason::BadInstrument));
        };
        match Instrument::try_new(id, spec) {
            Ok(instrument) => {
                self.instruments.push(instrument);
                self.symbols.insert(spec.symbol, id);
                self.marks.push(None);
                self.books.add_instrument();
                out.push(Event::InstrumentListed { instrument: id });
            }
            Err(_) => out.push(rej(RejectReason::BadInstrument)),
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
        self.marks[instrument.0 as usize] = Some(price);
    }

    fn new_order(&mut self, o: &NewOrder, out: &mut Vec<Event>) {
        let rej = |r| reject(CommandKind::New, Some(o.account), Some(o.cid), r);
        let Some(inst) = self.instrument(o.instrument).copied() else {
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
        if o.qty > inst.max_order_qty {
            return out.push(rej(RejectReason::MaxOrderQty));
        }
        if self.books.find(o.account, o.cid).is_some() {
            return out.push(rej(RejectReason::DuplicateCid));
        }
        let Some(mark) = self.mark(o.instrument) else {
            return out.push(rej(RejectReason::NoMarkPrice));
        };
        let (low, high) = inst.band(mark);
        let limit = match (o.price, o.side) {
            (Some(p), _) if p < low || p > high => return out.push(rej(RejectReason::PriceOutOfBand)),
            (Some(p), _) => p,
            (None, Side::Buy) => high,
            (None, Side::Sell) => low,
        };
        if o.post_only && self.would_cross(o.instrument, o.side, limit) {
            return out.push(rej(RejectReason::PostOnlyWouldCross));
        }

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
            cid: o.cid,
            order_id,
            instrument: o.instrument,
            side: o.side,
            limit,
            leaves: o.qty,
            filled: Qty::ZERO,
            stp: o.stp,
        };
        if o.tif == TimeInForce::Fok && !self.fok_fillable(&taker) {
            return out.push(cancelled(&taker, taker.leaves, Qty::ZERO, CancelReason::FokUnfilled));
        }
        let end = self.match_taker(&mut taker, out);
        match end {
            MatchEnd::Filled => {}
            MatchEnd::SelfTrade => out.push(cancelled(&taker, taker.leaves, Qty::ZERO, CancelReason::SelfTrade)),
            MatchEnd::Exhausted if !market && o.tif.may_rest() => {
                let slot = self.ledger.slot_or_create(o.account).0;
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
                let h = self.books.rest(order);
                if let Some(expiry) = o.expire_ts {
                    self.push_expiry(expiry, order_id, h);
                }
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
        let Some(h) = self.books.find(a.account, a.cid) else {
            return out.push(rej(RejectReason::UnknownOrder));
        };
        let o = *self.books.order(h);
        let inst = self.instruments[o.instrument.0 as usize];
        let price = a.price.unwrap_or(o.price);
        let qty = a.qty.unwrap_or(o.leaves);
        if price.0 <= 0 {
            return out.push(rej(RejectReason::BadPrice));
        }
        if !qty.is_positive() {
            return out.push(rej(RejectReason::BadQty));
        }
        if qty > inst.max_order_qty {
            return out.push(rej(RejectReason::MaxOrderQty));
        }
        if price != o.price {
            // A resting order implies a mark exists; the fallback keeps this total.
            let (low, high) = self.mark(o.instrument).map_or((price, price), |m| inst.band(m));
            if price < low || price > high {
                return out.push(rej(RejectReason::PriceOutOfBand));
            }
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
            self.books.resize_in_place(h, qty);
            return;
        }
        self.books.unlink_from_level(h);
        if !crossing {
            self.books.relink(h, price, qty, Qty::ZERO);
            return;
        }
        let mut taker = Taker {
            account: o.account,
            cid: o.cid,
            order_id: o.id,
            instrument: o.instrument,
            side: o.side,
            limit: price,
            leaves: qty,
            filled: Qty::ZERO,
            stp: o.stp,
        };
        match self.match_taker(&mut taker, out) {
            MatchEnd::Exhausted => self.books.relink(h, price, taker.leaves, taker.filled),
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
        self.books.account_orders(slot.0, &mut handles);
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
    /// (matching would stop, or decrement the taker, there).
    fn fok_fillable(&self, t: &Taker) -> bool {
        let mut need = t.leaves.0;
        for (price, lv) in self.books.levels_best_first(t.instrument, t.side.opposite()) {
            if !crosses(t.side, t.limit, price) {
                break;
            }
            let mut h = self.books.level_head(lv);
            while h != NIL {
                let o = self.books.order(h);
                if o.account == t.account {
                    if t.stp != StpMode::CancelMaker {
                        return false;
                    }
                } else {
                    need -= o.leaves.0;
                    if need <= 0 {
                        return true;
                    }
                }
                h = o.next_in_level();
            }
        }
        false
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
            while h != NIL {
                let maker = *self.books.order(h);
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
                            let maker_left = self.books.reduce(h, by, false);
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
                let qty = maker.leaves.min(t.leaves);
                let maker_left = self.books.reduce(h, qty, true);
                t.leaves.0 -= qty.0;
                t.filled.0 += qty.0;
                let trade_id = TradeId(self.next_trade_id);
                self.next_trade_id += 1;
                out.push(Event::Trade(Trade {
                    trade_id,
                    instrument: t.instrument,
                    price,
                    qty,
                    maker_account: maker.account,
                    maker_cid: maker.cid,
                    maker_order_id: maker.id,
                    maker_leaves: maker_left,
                    taker_account: t.account,
                    taker_cid: t.cid,
                    taker_order_id: t.order_id,
                    taker_leaves: t.leaves,
                    taker_side: t.side,
                }));
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

    // ----- removal and expiry ----------------------------------------------------------

    /// Cancels a resting order's whole open quantity and removes it.
    fn cancel_resting(&mut self, h: Handle, reason: CancelReason, out: &mut Vec<Event>) {
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

    fn remove_resting(&mut self, h: Handle) {
        if self.books.order(h).tif == TimeInForce::Gtd {
            self.gtd_live -= 1;
        }
        self.books.remove(h);
    }

    /// Frees an order already out of its level (an amend that ended without resting).
    fn forget(&mut self, h: Handle) {
        if self.books.order(h).tif == TimeInForce::Gtd {
            self.gtd_live -= 1;
        }
        self.books.forget(h);
    }

    fn push_expiry(&mut self, expiry: Timestamp, id: OrderId, h: Handle) {
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
