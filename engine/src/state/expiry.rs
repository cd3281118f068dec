//! GTD orders leave the book when the sequenced time reaches their expiry, before the
//! command that brought the time acts, in (expiry, order id) order.
//!
//! A min-heap of (expiry, order id, handle) holds every GTD order that rested; an entry
//! whose order is gone since (cancelled, filled, expired, or its handle reused) is skipped
//! when it comes up, and the heap is compacted once such entries outnumber the live ones.

use std::cmp::Reverse;

use l2x_types::{CancelReason, Event, OrderId, Timestamp};

use super::StateMachine;
use crate::book::OrderHandle;

impl StateMachine {
    pub(super) fn push_expiry(&mut self, expiry: Timestamp, id: OrderId, h: OrderHandle) {
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
    pub(super) fn expire(&mut self, out: &mut Vec<Event>) {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

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
    fn time_never_goes_back() {
        let mut ex = Exchange::new();
        ex.at(100).apply(Command::Deposit { to: Holder::Account(AccountId(A)), amount: Amount(1) });
        ex.at(50).apply(Command::Deposit { to: Holder::Account(AccountId(A)), amount: Amount(1) });
        assert_eq!(ex.sm.now(), Timestamp(100));
        // "Now" is still 100: an expiry at 100 is not after now.
        assert_eq!(reasons(&ex.new_order(gtd(A, 1, Buy, 990, 1, 100))), vec![RejectReason::BadExpiry]);
    }
}
