//! Resting orders: every change of a resting order's open quantity goes through one of
//! these wrappers (or a fill, which the ledger books), so that the ledger's open quantity
//! per account, instrument and side (which the initial requirement counts) is always the
//! books'. [`StateMachine::check_invariants`] checks the two agree.

use l2x_types::{CancelReason, Event, Price, Qty, TimeInForce};

use super::StateMachine;
use crate::book::{Order, OrderHandle};

impl StateMachine {
    /// Puts an order on the book and records its open quantity.
    pub(super) fn rest(&mut self, order: Order) -> OrderHandle {
        let slot = order.slot;
        self.ledger.open_order_delta(slot, order.instrument, order.side, Qty::change(Qty::ZERO, order.leaves));
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
    pub(super) fn cancel_resting(&mut self, h: OrderHandle, reason: CancelReason, out: &mut Vec<Event>) {
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
    pub(super) fn cut(&mut self, h: OrderHandle, leaves: Qty, reason: CancelReason, out: &mut Vec<Event>) {
        let o = *self.books.order(h);
        out.push(Event::Cancelled {
            account: o.account,
            cid: o.cid,
            order_id: o.id,
            instrument: o.instrument,
            side: o.side,
            qty: o.leaves.less(leaves),
            leaves,
            reason,
        });
        self.resize(h, leaves);
    }

    /// Removes a resting order (cancelled, or filled: a filled maker's open quantity left
    /// the ledger with its fills, so there is nothing to record).
    pub(super) fn remove_resting(&mut self, h: OrderHandle) {
        let o = *self.books.order(h);
        if o.leaves != Qty::ZERO {
            self.ledger.open_order_delta(o.slot, o.instrument, o.side, Qty::change(o.leaves, Qty::ZERO));
        }
        self.forget_counts(&o);
        self.books.remove(h);
    }

    /// Removes a filled maker (its open quantity left the ledger with its fills): inlined
    /// into the fill path, once per filled maker.
    #[inline(always)]
    pub(super) fn remove_filled(&mut self, h: OrderHandle) {
        let o = *self.books.order(h);
        debug_assert_eq!(o.leaves, Qty::ZERO, "only a filled order leaves without a ledger update");
        self.forget_counts(&o);
        self.books.remove(h);
    }

    /// Frees an order already out of its level (an amend that ended without resting).
    pub(super) fn forget(&mut self, h: OrderHandle) {
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

    pub(super) fn resize(&mut self, h: OrderHandle, leaves: Qty) {
        let o = *self.books.order(h);
        self.ledger.open_order_delta(o.slot, o.instrument, o.side, Qty::change(o.leaves, leaves));
        self.books.resize_in_place(h, leaves);
    }

    /// Reduces a resting order without a trade (self-trade decrement).
    pub(super) fn decrement(&mut self, h: OrderHandle, by: Qty) -> Qty {
        let o = *self.books.order(h);
        self.ledger.open_order_delta(o.slot, o.instrument, o.side, Qty::change(o.leaves, o.leaves.less(by)));
        self.books.reduce(h, by, false)
    }

    pub(super) fn unlink(&mut self, h: OrderHandle) {
        let o = *self.books.order(h);
        self.ledger.open_order_delta(o.slot, o.instrument, o.side, Qty::change(o.leaves, Qty::ZERO));
        self.books.unlink_from_level(h);
    }

    /// Moves a resting order to the back of the level at `price` with open quantity `leaves`
    /// (an amend that loses priority and does not cross): one open-quantity update for the
    /// difference, none when the quantity is unchanged.
    pub(super) fn move_resting(&mut self, h: OrderHandle, price: Price, leaves: Qty) {
        let o = *self.books.order(h);
        let delta = Qty::change(o.leaves, leaves);
        if delta != 0 {
            self.ledger.open_order_delta(o.slot, o.instrument, o.side, delta);
        }
        self.books.unlink_from_level(h);
        self.books.relink(h, price, leaves, Qty::ZERO);
    }

    pub(super) fn relink(&mut self, h: OrderHandle, price: Price, leaves: Qty, filled: Qty) {
        let o = *self.books.order(h);
        self.ledger.open_order_delta(o.slot, o.instrument, o.side, Qty::change(Qty::ZERO, leaves));
        self.books.relink(h, price, leaves, filled);
    }
}
