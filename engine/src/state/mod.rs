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
//! through one of the wrappers in `resting` (`rest`, `remove_resting`, `unlink`, `relink`,
//! `move_resting`, `resize`, `decrement`), or is a fill booked by the ledger, and
//! [`StateMachine::check_invariants`] checks the two agree.
//!
//! # Time
//!
//! Time arrives only inside commands. The state machine's clock is the largest timestamp
//! seen so far, so a (journal-corrupting) decreasing timestamp cannot move time backwards.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | `commands` | the commands that are not orders: listings, deposits, oracle prices, funding ticks |
//! | `orders` | new orders (validate → accept → match → rest), amends, cancels, mass cancels |
//! | `matching` | a taker against the book: price-time priority, self-trade prevention, fills |
//! | `resting` | every change of a resting order's open quantity, mirrored in the ledger |
//! | `liquidation` | reduce-only trimming, liquidations, insurance takeovers, auto-deleveraging |
//! | `expiry` | GTD orders by expiry |
//! | `l1` | the L1 queue (deposits, forced withdrawals, exactly once in order) and the vault binding |
//! | `snapshot` | the canonical state, and a state machine rebuilt from one |

mod commands;
mod expiry;
mod l1;
mod liquidation;
mod matching;
mod orders;
mod resting;
mod snapshot;
#[cfg(test)]
mod test_support;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use l2x_risk::{AccountSlot, Ledger};
use l2x_types::{
    AccountId, ClientOrderId, Command, CommandKind, DetMap, Event, Holder, Instrument, InstrumentId, OrderId, Price,
    Qty, RejectReason, Sequenced, Side, Symbol, TimeInForce, Timestamp,
};

use crate::book::{Books, OrderHandle, RestingOrder};
use crate::canonical::L1State;

pub use commands::ListingError;
pub use snapshot::RestoreError;

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
    /// Some account a match of this command filled was below maintenance when re-keyed at
    /// the match's end (`liquidate_all`'s quick check of the touched accounts).
    fills_below: bool,
    /// The L1 queue's next index and the vault binding.
    l1: L1State,
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

    /// Applies one command, appending its events to `out` (which is not cleared).
    pub fn apply(&mut self, cmd: &Sequenced, out: &mut Vec<Event>) {
        self.books.begin_command();
        self.touched.clear();
        self.suspects.clear();
        self.fills_below = false;
        self.now = self.now.max(cmd.ts);
        self.expire(out);
        match &cmd.cmd {
            Command::ListInstrument(spec) => self.list_instrument(spec, out),
            Command::Deposit { to, amount } => self.deposit(*to, *amount, out),
            Command::Withdraw { account, amount } => self.withdraw(*account, *amount, out),
            Command::WithdrawRequest { account, amount, request_id } => {
                self.withdraw_request(*account, *amount, *request_id, out);
            }
            Command::Oracle { instrument, price } => self.oracle(*instrument, *price, out),
            Command::Funding { instrument } => self.funding(*instrument, out),
            Command::NewOrder(order) => self.new_order(order, out),
            Command::Amend(amend) => self.amend(amend, out),
            Command::Cancel(c) => self.cancel(c, out),
            Command::MassCancel(m) => self.mass_cancel(m, out),
            // Time passing is all a tick does: the expiries above.
            Command::Tick => {}
            Command::L1Deposit { index, to, amount, .. } => self.l1_deposit(*index, *to, *amount, out),
            Command::ForcedWithdrawal { index, account, amount, .. } => {
                self.forced_withdrawal(*index, *account, *amount, out);
            }
            Command::L1Bind { chain_id, contract, token } => self.l1_bind(*chain_id, *contract, *token, out),
        }
        self.trim_reduce_only(out);
        if self.liquidate_all(out) {
            self.trim_reduce_only(out);
        }
        self.books.flush_book_events(out);
    }

    /// The instrument listed under `symbol`.
    pub fn instrument_by_symbol(&self, symbol: &str) -> Option<&Instrument> {
        let symbol = Symbol::try_new(symbol).ok()?;
        self.symbols.get(&symbol).map(|id| &self.instruments[id.index()])
    }

    /// The instrument with this id.
    pub fn instrument(&self, id: InstrumentId) -> Option<&Instrument> {
        self.instruments.get(id.index())
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

    /// The L1 queue's next index and the vault binding.
    pub fn l1(&self) -> L1State {
        self.l1
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
}

fn reject(kind: CommandKind, account: Option<AccountId>, cid: Option<ClientOrderId>, reason: RejectReason) -> Event {
    Event::Rejected { kind, account, cid, reason }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;

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
}
