//! Orders in: a new order is validated, accepted, matched and rested; an amend keeps or
//! loses its priority and may trade; cancels and mass cancels remove resting orders.

use l2x_risk::{AccountSlot, Change, Exposure};
use l2x_types::{
    AccountId, Amend, Cancel, CancelReason, CommandKind, Event, InstrumentId, MassCancel, NewOrder, OrderId, OrderType,
    Price, Qty, RejectReason, Side, TimeInForce,
};

use super::matching::{MatchEnd, Taker, cancelled};
use super::{StateMachine, reject};
use crate::book::{Order, OrderHandle};

/// What validating a new order found: its account's slot if the account exists, its limit
/// (a market order's: the protection price, the band's edge), the quantity it enters with.
#[derive(Clone, Copy, Debug)]
struct Valid {
    slot: Option<AccountSlot>,
    limit: Price,
    qty: Qty,
}

impl StateMachine {
    /// A new order: validated (the first failing check is the reject reason, in the order of
    /// the module doc), accepted, matched against the book, and then rested or cancelled.
    pub(super) fn new_order(&mut self, o: &NewOrder, out: &mut Vec<Event>) {
        let valid = match self.validate_new(o) {
            Ok(valid) => valid,
            Err(reason) => return out.push(reject(CommandKind::New, Some(o.account), Some(o.cid), reason)),
        };
        let mut taker = self.accept(o, valid, out);
        if o.tif == TimeInForce::Fok && !self.fok_fillable(&taker) {
            return out.push(cancelled(&taker, taker.leaves, Qty::ZERO, CancelReason::FokUnfilled));
        }
        let end = self.match_taker(&mut taker, out);
        self.rest_or_cancel(o, &taker, end, out);
    }

    /// Every check of a new order, in the module doc's order; changes nothing but the band
    /// cache.
    fn validate_new(&mut self, o: &NewOrder) -> Result<Valid, RejectReason> {
        self.check_new_fields(o)?;
        let limit = self.limit_in_band(o)?;
        let slot = self.ledger.slot(o.account);
        let exposure = Exposure {
            instrument: o.instrument,
            side: o.side,
            price: limit,
            qty: o.qty,
            reduce_only: o.reduce_only,
            change: Change::New,
        };
        let mut qty = self.ledger.check_exposure(slot, &exposure)?;
        if o.reduce_only {
            // Resting reduce-only orders of the same side share the position (docs/RISK.md).
            let open = self.reduce_only_open(o.account, o.instrument, o.side, None);
            if open >= qty {
                return Err(RejectReason::ReduceOnlyWouldIncrease);
            }
            qty = qty.less(open);
        }
        if o.post_only && self.would_cross(o.instrument, o.side, limit) {
            return Err(RejectReason::PostOnlyWouldCross);
        }
        Ok(Valid { slot, limit, qty })
    }

    /// The checks of a new order's own fields, up to `duplicate_cid`.
    fn check_new_fields(&self, o: &NewOrder) -> Result<(), RejectReason> {
        let Some(max_order_qty) = self.instrument(o.instrument).map(|i| i.max_order_qty) else {
            return Err(RejectReason::UnknownSymbol);
        };
        let market = o.order_type == OrderType::Market;
        if (market && o.tif == TimeInForce::Gtd)
            || (o.post_only && (market || matches!(o.tif, TimeInForce::Ioc | TimeInForce::Fok)))
        {
            return Err(RejectReason::BadFlags);
        }
        match (o.tif, o.expire_ts) {
            (TimeInForce::Gtd, Some(t)) if t > self.now => {}
            (TimeInForce::Gtd, _) | (_, Some(_)) => return Err(RejectReason::BadExpiry),
            _ => {}
        }
        match (market, o.price) {
            (false, Some(p)) if p.is_positive() => {}
            (true, None) => {}
            _ => return Err(RejectReason::BadPrice),
        }
        if !o.qty.is_positive() {
            return Err(RejectReason::BadQty);
        }
        if o.qty > max_order_qty {
            return Err(RejectReason::MaxOrderQty);
        }
        if self.books.find(o.account, o.cid).is_some() {
            return Err(RejectReason::DuplicateCid);
        }
        Ok(())
    }

    /// A limit order's price if it lies in the band; a market order's protection price.
    fn limit_in_band(&mut self, o: &NewOrder) -> Result<Price, RejectReason> {
        let Some((low, high)) = self.band(o.instrument) else {
            return Err(RejectReason::NoMarkPrice);
        };
        match (o.price, o.side) {
            (Some(p), _) if p < low || p > high => Err(RejectReason::PriceOutOfBand),
            (Some(p), _) => Ok(p),
            (None, Side::Buy) => Ok(high),
            (None, Side::Sell) => Ok(low),
        }
    }

    /// Accepts a validated order: the account's slot (created by its first order), an order
    /// id, the `accepted` event, and the cut of a reduce-only order larger than what it may
    /// reduce. Returns it as a taker.
    fn accept(&mut self, o: &NewOrder, valid: Valid, out: &mut Vec<Event>) -> Taker {
        let slot = match valid.slot {
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
            price: valid.limit,
            qty: o.qty,
        });
        let taker = Taker {
            account: o.account,
            slot,
            cid: o.cid,
            order_id,
            instrument: o.instrument,
            side: o.side,
            limit: valid.limit,
            leaves: valid.qty,
            filled: Qty::ZERO,
            stp: o.stp,
            liquidation: None,
        };
        if valid.qty < o.qty {
            out.push(cancelled(&taker, o.qty.less(valid.qty), valid.qty, CancelReason::ReduceOnly));
        }
        taker
    }

    /// After matching: a limit GTC or GTD order rests what is left (with what it filled); any
    /// other remainder is cancelled with the reason its type gives.
    fn rest_or_cancel(&mut self, o: &NewOrder, taker: &Taker, end: MatchEnd, out: &mut Vec<Event>) {
        let market = o.order_type == OrderType::Market;
        let reason = match end {
            MatchEnd::Filled => return,
            MatchEnd::Exhausted if !market && o.tif.may_rest() => {
                let order = Order::entering(o, taker.order_id, taker.slot, taker.limit, taker.leaves, taker.filled);
                self.rest(order);
                return;
            }
            MatchEnd::SelfTrade => CancelReason::SelfTrade,
            MatchEnd::Exhausted => match (market, o.tif) {
                (_, TimeInForce::Fok) => CancelReason::FokUnfilled,
                (true, _) => CancelReason::MarketRemainder,
                (false, _) => CancelReason::IocRemainder,
            },
        };
        out.push(cancelled(taker, taker.leaves, Qty::ZERO, reason));
    }

    /// An amend: validated, then the quantity changed in place (priority kept), or the order
    /// moved to the back of its new level, or (when it now crosses) matched as a taker.
    pub(super) fn amend(&mut self, a: &Amend, out: &mut Vec<Event>) {
        let rej = |r| reject(CommandKind::Amend, Some(a.account), Some(a.cid), r);
        let Some(h) = self.books.find(a.account, a.cid).filter(|&h| self.books.order(h).instrument == a.instrument)
        else {
            return out.push(rej(RejectReason::UnknownOrder));
        };
        let o = *self.books.order(h);
        let price = a.price.unwrap_or(o.price);
        let qty = a.qty.unwrap_or(o.leaves);
        if let Err(reason) = self.validate_amend(h, &o, price, qty) {
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
        } else if crossing {
            self.amend_crossing(h, &o, price, qty, out);
        } else {
            self.move_resting(h, price, qty);
        }
    }

    /// The checks of an amend of the resting order `o` (handle `h`) to `price` and `qty`, up
    /// to the risk checks.
    fn validate_amend(&mut self, h: OrderHandle, o: &Order, price: Price, qty: Qty) -> Result<(), RejectReason> {
        let max_order_qty = self.instruments[o.instrument.index()].max_order_qty;
        if !price.is_positive() {
            return Err(RejectReason::BadPrice);
        }
        if !qty.is_positive() {
            return Err(RejectReason::BadQty);
        }
        if qty > max_order_qty {
            return Err(RejectReason::MaxOrderQty);
        }
        if price != o.price {
            // A resting order implies a mark exists; the fallback keeps this total.
            let (low, high) = self.band(o.instrument).unwrap_or((price, price));
            if price < low || price > high {
                return Err(RejectReason::PriceOutOfBand);
            }
        }
        if o.reduce_only {
            let size = self.ledger.account(o.slot).position(o.instrument).map_or(0, |p| p.size);
            let open = self.reduce_only_open(o.account, o.instrument, o.side, Some(h));
            if qty.checked_add(open).is_none_or(|total| total > Qty(size.abs())) {
                return Err(RejectReason::ReduceOnlyWouldIncrease);
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
        self.ledger.check_exposure(Some(o.slot), &exposure).map(|_| ())
    }

    /// An amend that crosses: the order leaves its level, takes liquidity at its new price,
    /// and rests again with what is left (or is gone, filled or cancelled by self-trade
    /// prevention).
    fn amend_crossing(&mut self, h: OrderHandle, o: &Order, price: Price, qty: Qty, out: &mut Vec<Event>) {
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

    /// A cancel: the whole open quantity of a live order (reason `user`, or `disconnect` when
    /// the gateway sent it for a session that went away).
    pub(super) fn cancel(&mut self, c: &Cancel, out: &mut Vec<Event>) {
        match self.books.find(c.account, c.cid) {
            Some(h) => {
                let reason = if c.on_disconnect { CancelReason::Disconnect } else { CancelReason::User };
                self.cancel_resting(h, reason, out);
            }
            None => out.push(reject(CommandKind::Cancel, Some(c.account), Some(c.cid), RejectReason::UnknownOrder)),
        }
    }

    /// A mass cancel: every live order of the account, narrowed by instrument and side, in
    /// ascending order id.
    pub(super) fn mass_cancel(&mut self, m: &MassCancel, out: &mut Vec<Event>) {
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

    /// Open quantity of an account's resting reduce-only orders on one side of one
    /// instrument, leaving out `except`.
    fn reduce_only_open(
        &self,
        account: AccountId,
        instrument: InstrumentId,
        side: Side,
        except: Option<OrderHandle>,
    ) -> Qty {
        let Some(slot) = self.ledger.slot(account) else { return Qty::ZERO };
        if self.reduce_only_resting.get(slot.index()).copied().unwrap_or(0) == 0 {
            return Qty::ZERO;
        }
        let mut handles = Vec::new();
        self.books.account_orders(slot, &mut handles);
        handles
            .iter()
            .filter(|&&h| Some(h) != except)
            .map(|&h| self.books.order(h))
            .filter(|o| o.reduce_only && o.instrument == instrument && o.side == side)
            .fold(Qty::ZERO, |open, o| open.saturating_add(o.leaves))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

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
    fn post_only_rests_when_it_does_not_cross_and_is_refused_against_own_orders_too() {
        let mut ex = Exchange::new();
        ex.rest(A, 1, Sell, 1001, 1);
        let events = ex.new_order(NewOrder { post_only: true, ..limit(A, 2, Buy, 1000, 1) });
        assert_eq!(events, vec![accepted(A, 2, 2, Buy, 1000, 1), book(Buy, 1000, 1, 1)]);
        let events = ex.new_order(NewOrder { post_only: true, ..limit(A, 3, Buy, 1001, 1) });
        assert_eq!(events, vec![rejected(CommandKind::New, A, Some(3), RejectReason::PostOnlyWouldCross)]);
    }
}
