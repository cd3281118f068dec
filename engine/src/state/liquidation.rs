//! After a command's own events: reduce-only orders cut to what their positions still
//! allow, then every account below maintenance liquidated (docs/RISK.md, "Liquidating an
//! account"): its orders cancelled, its positions closed through IOC liquidation orders, what
//! the book cannot absorb taken by the insurance fund or auto-deleveraged.

use std::collections::BTreeSet;

use l2x_risk::{AccountSlot, ExactPrice, Ledger, formulas};
use l2x_types::{AccountId, CancelReason, ClientOrderId, Event, Holder, InstrumentId, OrderId, Qty, Side, StpMode};

use super::StateMachine;
use super::matching::Taker;

impl StateMachine {
    /// Cuts the resting reduce-only orders of every account whose position changed, so that
    /// together they never exceed the position: oldest keep their quantity, newer ones are
    /// cut (`cancelled`, reason `reduce_only`); orders on the position's own side (or with
    /// no position) go entirely.
    pub(super) fn trim_reduce_only(&mut self, out: &mut Vec<Event>) {
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
            let mut capacity = [Qty((-size).max(0)), Qty(size.max(0))]; // [buy, sell]
            for &h in &handles {
                let o = *self.books.order(h);
                let room = capacity[o.side as usize];
                let keep = o.leaves.min(room);
                capacity[o.side as usize] = room.less(keep);
                if keep == Qty::ZERO {
                    self.cancel_resting(h, CancelReason::ReduceOnly, out);
                } else if keep < o.leaves {
                    self.cut(h, keep, CancelReason::ReduceOnly, out);
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
    pub(super) fn liquidate_all(&mut self, out: &mut Vec<Event>) -> bool {
        if self.touched.is_empty() && self.suspects.is_empty() {
            return false;
        }
        // The common case: nobody is below maintenance, and the loop below would skip every
        // account. Checked without building the work set; the touched accounts were all
        // filled by a match of this command, which re-keyed them at its end and said whether
        // any was below maintenance (nothing since changed their health: cancels and resting
        // orders move only the initial requirement).
        let ledger = &self.ledger;
        let liquidatable =
            |s: AccountSlot| matches!(ledger.account(s).holder, Holder::Account(_)) && ledger.below_maintenance(s);
        debug_assert!(
            self.fills_below || !self.touched.iter().any(|&(s, _)| liquidatable(s)),
            "a touched account below maintenance that its match did not report"
        );
        if !self.fills_below && !self.suspects.iter().any(|&s| liquidatable(s)) {
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
                rest = self.absorb(&taker, Qty(size.abs()), bankruptcy, out);
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

    /// What the book did not absorb of the liquidation order `t`, `qty` lots of the
    /// liquidated account's position: the insurance fund takes what it can at the
    /// bankruptcy price, auto-deleveraging closes the rest against ranked opposite
    /// positions. Returns what is left.
    fn absorb(&mut self, t: &Taker, qty: Qty, bankruptcy: ExactPrice, out: &mut Vec<Event>) -> Qty {
        let (id, slot, instrument, side) = (t.account, t.slot, t.instrument, t.side);
        let price = formulas::bankruptcy_tick(bankruptcy, side);
        let take = self.ledger.insurance_capacity(instrument, price, qty, side.opposite());
        let mut rest = qty;
        if take.is_positive() {
            out.push(Event::Takeover { account: id, instrument, side, qty: take, price });
            let (a, f) = self.ledger.transfer(instrument, price, take, side, slot, Ledger::INSURANCE);
            self.position_events(slot, instrument, &a, 0, out);
            self.position_events(Ledger::INSURANCE, instrument, &f, 0, out);
            rest = rest.less(take);
        }
        if !rest.is_positive() || !self.ledger.liquidation_params().adl {
            return rest;
        }
        for cp in self.ledger.adl_queue(instrument, side, slot) {
            let Holder::Account(counterparty) = self.ledger.account(cp).holder else { continue };
            let size = self.ledger.account(cp).position(instrument).map_or(0, |p| p.size);
            let q = rest.min(Qty(size.abs()));
            if !q.is_positive() {
                continue;
            }
            out.push(Event::Adl { account: id, counterparty, instrument, side, qty: q, price });
            let (a, c) = self.ledger.transfer(instrument, price, q, side, slot, cp);
            self.position_events(slot, instrument, &a, 0, out);
            self.position_events(cp, instrument, &c, 0, out);
            rest = rest.less(q);
            if !rest.is_positive() {
                break;
            }
        }
        rest
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::super::test_support::*;

    /// Issue 17 (re-keying deferred to the end of a match): an account that only a maker
    /// fill in the middle of a sweep puts below maintenance is liquidated in that command,
    /// with the events and the state the per-fill re-keying produced (hash pinned from it).
    #[test]
    fn a_maker_fill_inside_a_sweep_liquidates_in_the_same_command() {
        const M: u64 = 20;
        let mut ex = Exchange::new();
        // M: 100 USDC, a bid of 2 lots at the mark (initial requirement 100: accepted).
        ex.apply(Command::Deposit { to: Holder::Account(AccountId(M)), amount: Amount(100 * Amount::ONE) });
        ex.rest(B, 1, Buy, 1001, 1);
        ex.rest(M, 1, Buy, 1000, 2);
        ex.rest(C, 1, Buy, 999, 1);
        ex.rest(C, 2, Buy, 950, 10);
        // The mark falls: M holds no position, so nothing happens to it.
        let events = ex.apply_all(Command::Oracle { instrument: BTC, price: Price(960) });
        assert!(!events.iter().any(|e| matches!(e, Event::Liquidation { .. })), "{events:?}");
        // A sweep of B, M (2 lots at 1000 with the mark at 960: 80 lost of 100, maintenance
        // 57.6) and C: M is liquidated in the same command, against C's deeper bid.
        let events = ex.apply_all(Command::NewOrder(limit(A, 1, Sell, 990, 4)));
        let trades: Vec<(u64, u64, i64, i64, bool)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Trade(t) => Some((t.maker_account.0, t.taker_account.0, t.price.0, t.qty.0, t.liquidation)),
                _ => None,
            })
            .collect();
        assert_eq!(
            trades,
            vec![(B, A, 1001, 1, false), (M, A, 1000, 2, false), (C, A, 999, 1, false), (C, M, 950, 2, true)]
        );
        assert!(events.iter().any(|e| matches!(e, Event::Liquidation { account, .. } if account.0 == M)), "{events:?}");
        assert_eq!(ex.sm.ledger().account(ex.sm.ledger().slot(AccountId(M)).unwrap()).position(BTC).unwrap().size, 0);
        assert_eq!(
            ex.sm.canonical().hash().to_string(),
            "0xc0ff6f03bfdd57e00958f63f8b68dd323be51285b1f1f75958fee5ab459ab554"
        );
        // Every event of the command, positions and balances included, as they were.
        let digest = events.iter().fold(Sha256::new(), |h, e| h.chain_update(format!("{e:?}\n")));
        let hex: String = digest.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            format!("{} {hex}", events.len()),
            "19 bd9864afb1099c92f839e51475edea9db6ef78863f0efabcaf8c88df7f553493"
        );
    }
}
