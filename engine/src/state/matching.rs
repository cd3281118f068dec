//! A taker against the book: price-time priority at the maker's price, self-trade
//! prevention, reduce-only makers held to their position, and every fill booked in the
//! ledger with its events. Also FOK's walk, which asks the same questions without trading.

use l2x_risk::{AccountSlot, ExactPrice, Fill, FillEffect, Ledger};
use l2x_types::{
    AccountId, Amount, CancelReason, ClientOrderId, Event, Holder, InstrumentId, OrderId, Price, Qty, Side, StpMode,
    Trade, TradeId,
};

use super::StateMachine;
use crate::book::{Order, OrderHandle, crosses};

/// The order that is taking liquidity: a new order, an amended one that crosses, or a
/// liquidation order.
#[derive(Clone, Copy, Debug)]
pub(super) struct Taker {
    pub(super) account: AccountId,
    pub(super) slot: AccountSlot,
    pub(super) cid: ClientOrderId,
    pub(super) order_id: OrderId,
    pub(super) instrument: InstrumentId,
    pub(super) side: Side,
    pub(super) limit: Price,
    pub(super) leaves: Qty,
    /// Executed while taking (becomes the resting order's `filled`).
    pub(super) filled: Qty,
    pub(super) stp: StpMode,
    /// The bankruptcy price, when this is a liquidation order.
    pub(super) liquidation: Option<ExactPrice>,
}

/// Why matching stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MatchEnd {
    /// The taker has no quantity left.
    Filled,
    /// No more crossing liquidity; the taker has quantity left.
    Exhausted,
    /// Self-trade prevention cancels the taker's remainder.
    SelfTrade,
}

impl StateMachine {
    /// `true` if an order on `side` at `limit` would take liquidity.
    pub(super) fn would_cross(&self, instrument: InstrumentId, side: Side, limit: Price) -> bool {
        self.books.best(instrument, side.opposite()).is_some_and(|(p, _)| crosses(side, limit, p))
    }

    /// Whether an FOK taker would fill completely, walking the book without changing it.
    /// Resting orders of its own account provide nothing; under `cancel_maker` they are
    /// skipped (matching would cancel them), under every other mode they end the walk
    /// (matching would stop, or decrement the taker, there). A resting reduce-only order
    /// counts for what its position still lets it trade; since an account's reduce-only
    /// orders on one side never add up to more than its position (entry sizing and
    /// `trim_reduce_only`), counting each on its own is exact.
    pub(super) fn fok_fillable(&self, t: &Taker) -> bool {
        let mut need = t.leaves;
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
                    let offered = if o.reduce_only { o.leaves.min(self.reduce_only_capacity(o)) } else { o.leaves };
                    if offered >= need {
                        return true;
                    }
                    need = need.less(offered);
                }
                h = o.next_in_level();
            }
        }
        false
    }

    /// How much a reduce-only order may still trade: its account's position if the order
    /// is on the other side of it, else nothing.
    fn reduce_only_capacity(&self, o: &Order) -> Qty {
        let size = self.ledger.account(o.slot).position(o.instrument).map_or(0, |p| p.size);
        match o.side {
            Side::Buy if size < 0 => Qty(-size),
            Side::Sell if size > 0 => Qty(size),
            _ => Qty::ZERO,
        }
    }

    /// Matches a taker against the opposite side in price-time priority: level by level
    /// from the best while the level's price crosses the taker's limit, oldest order first.
    /// A maker of the taker's own account is handled by self-trade prevention, a reduce-only
    /// maker is first held to its position, and every other match is a fill.
    ///
    /// The accounts filled are re-keyed in the liquidation index once each, at the end
    /// (nothing reads the index while matching), which also says whether any of them is now
    /// below maintenance (`fills_below`).
    pub(super) fn match_taker(&mut self, t: &mut Taker, out: &mut Vec<Event>) -> MatchEnd {
        let end = self.match_levels(t, out);
        self.fills_below |= self.ledger.rekey_pending();
        end
    }

    /// [`StateMachine::match_taker`] before the re-keying.
    #[inline(always)]
    fn match_levels(&mut self, t: &mut Taker, out: &mut Vec<Event>) -> MatchEnd {
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
                    if let Some(end) = self.self_trade(t, h, &maker, out) {
                        return end;
                    }
                } else if !maker.reduce_only || self.fit_reduce_only(h, &mut maker, out) {
                    self.book_fill(t, h, &maker, price, out);
                    if t.leaves == Qty::ZERO {
                        return MatchEnd::Filled;
                    }
                }
                h = next;
            }
        }
    }

    /// Self-trade prevention: the taker met a resting order of its own account. The taker's
    /// mode decides: cancel the taker's remainder, the maker, or both, or decrement both by
    /// the smaller quantity without a trade. Returns how matching ends, if it does.
    #[inline(always)]
    fn self_trade(&mut self, t: &mut Taker, h: OrderHandle, maker: &Order, out: &mut Vec<Event>) -> Option<MatchEnd> {
        match t.stp {
            StpMode::CancelTaker => Some(MatchEnd::SelfTrade),
            StpMode::CancelMaker => {
                self.cancel_resting(h, CancelReason::SelfTrade, out);
                None
            }
            StpMode::CancelBoth => {
                self.cancel_resting(h, CancelReason::SelfTrade, out);
                Some(MatchEnd::SelfTrade)
            }
            StpMode::Decrement => {
                let by = maker.leaves.min(t.leaves);
                let maker_left = self.decrement(h, by);
                t.leaves = t.leaves.less(by);
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
                (t.leaves == Qty::ZERO).then_some(MatchEnd::Filled)
            }
        }
    }

    /// A reduce-only maker never trades past its position (docs/RISK.md): with nothing left
    /// to reduce it is cancelled (`false`: no fill), with less than its open quantity it is
    /// cut to what is left (`maker` follows).
    #[inline(always)]
    fn fit_reduce_only(&mut self, h: OrderHandle, maker: &mut Order, out: &mut Vec<Event>) -> bool {
        let capacity = self.reduce_only_capacity(maker);
        if capacity == Qty::ZERO {
            self.cancel_resting(h, CancelReason::ReduceOnly, out);
            return false;
        }
        if maker.leaves > capacity {
            self.cut(h, capacity, CancelReason::ReduceOnly, out);
            maker.leaves = capacity;
        }
        true
    }

    /// One fill of the taker against the resting order `h` at the maker's `price`: the book,
    /// the ledger (positions, fees, a liquidation's fee to the insurance fund) and the
    /// events, in the module doc's order; the maker leaves the book when it is filled.
    #[inline(always)]
    fn book_fill(&mut self, t: &mut Taker, h: OrderHandle, maker: &Order, price: Price, out: &mut Vec<Event>) {
        let qty = maker.leaves.min(t.leaves);
        let maker_left = self.books.reduce(h, qty, true);
        t.leaves = t.leaves.less(qty);
        t.filled = t.filled.plus(qty);
        let trade_id = TradeId(self.next_trade_id);
        self.next_trade_id += 1;
        let (te, me, liquidation_fee) = self.ledger.fill(Fill {
            instrument: t.instrument,
            price,
            qty,
            taker_side: t.side,
            taker: t.slot,
            maker: maker.slot,
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
        self.position_events(maker.slot, t.instrument, &me, 0, out);
        self.position_events(t.slot, t.instrument, &te, liquidation_fee, out);
        if te.fee != 0 || me.fee != 0 {
            let fees = self.ledger.account(Ledger::FEES).collateral;
            out.push(Event::Balance { holder: Holder::Fees, collateral: Amount(fees) });
        }
        if maker_left == Qty::ZERO {
            self.remove_filled(h);
        }
    }

    /// `position` and (when collateral moved) `balance` events of one side of a fill or
    /// transfer; records the account as touched. Inlined: twice per fill, where the call
    /// itself cost a third of its work.
    #[inline(always)]
    pub(super) fn position_events(
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
}

pub(super) fn cancelled(t: &Taker, qty: Qty, leaves: Qty, reason: CancelReason) -> Event {
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
    use super::super::test_support::*;

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
}
