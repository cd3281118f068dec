//! Order ownership, for cancel-on-disconnect: which session entered which live order, and
//! what is still in flight when a session goes.
//!
//! ```text
//!  logon ── open(session) ── submitted(session) per command ── on_events: Accepted → owned,
//!                                                                         filled / cancelled → not
//!  the command's batch back ── returned(session): in_flight − 1
//!  session ends ── end(session, cancel):  cancel → its live orders' cancels, and it stays
//!                                                  *departed* while commands are in flight
//!                                         no cancel → forgotten at once
//!  a departed session's batch back ── returned: whatever of its orders rested since → cancels;
//!                                      forgotten once nothing of it is in flight
//! ```
//!
//! Ownership is by session of this server run: orders entered before a restart belong to no
//! session (docs/PROTOCOL.md, "Cancel on disconnect"). Nothing here does I/O: the caller
//! submits the cancels it is handed, tagged as the gateway's own.

use std::collections::{BTreeMap, BTreeSet};

use l2x_types::{AccountId, Cancel, ClientOrderId, DetMap, Event, OrderId, Qty};

/// What is remembered of one session's orders, connected or departed.
#[derive(Debug, Default)]
struct Entry {
    account: AccountId,
    /// Live orders the session entered (accepted, not yet filled or cancelled).
    live: BTreeSet<ClientOrderId>,
    /// Commands submitted whose batch has not come back yet.
    in_flight: u64,
    /// The session is gone with cancel-on-disconnect: whatever of its orders is still live
    /// after a batch is cancelled, until nothing of it is in flight.
    departed: bool,
}

impl Entry {
    /// Its live orders' cancels, taken (the orders are no longer counted as its own).
    fn take_cancels(&mut self) -> Vec<Cancel> {
        let account = self.account;
        std::mem::take(&mut self.live).into_iter().map(|cid| Cancel { account, cid, on_disconnect: true }).collect()
    }
}

/// Every session's live orders (see the module documentation).
#[derive(Debug, Default)]
pub(super) struct Ownership {
    /// Live orders entered by a session of this run: order → (session, cid).
    owners: DetMap<OrderId, (u64, ClientOrderId)>,
    /// Per session (connected, or departed with orders to cancel).
    sessions: BTreeMap<u64, Entry>,
}

impl Ownership {
    /// A session logged on for `account`.
    pub(super) fn open(&mut self, session: u64, account: AccountId) {
        self.sessions.insert(session, Entry { account, ..Entry::default() });
    }

    /// A command was submitted for `session` (a tag of no session is ignored).
    #[inline]
    pub(super) fn submitted(&mut self, session: u64) {
        if let Some(e) = self.sessions.get_mut(&session) {
            e.in_flight += 1;
        }
    }

    /// The events of one of `session`'s commands (or of anyone's): orders it entered that
    /// were accepted become its own; orders that left the book are no one's.
    pub(super) fn on_events(&mut self, session: u64, events: &[Event]) {
        for ev in events {
            match *ev {
                Event::Accepted { order_id, cid, .. } => {
                    if let Some(e) = self.sessions.get_mut(&session) {
                        self.owners.insert(order_id, (session, cid));
                        e.live.insert(cid);
                    }
                }
                Event::Cancelled { order_id, leaves, .. } if leaves == Qty::ZERO => self.done(order_id),
                Event::Trade(t) => {
                    if t.maker_leaves == Qty::ZERO {
                        self.done(t.maker_order_id);
                    }
                    if t.taker_leaves == Qty::ZERO {
                        self.done(t.taker_order_id);
                    }
                }
                _ => {}
            }
        }
    }

    fn done(&mut self, order_id: OrderId) {
        if let Some((session, cid)) = self.owners.remove(&order_id)
            && let Some(e) = self.sessions.get_mut(&session)
        {
            e.live.remove(&cid);
        }
    }

    /// One of `session`'s commands came back (after [`Ownership::on_events`]). For a
    /// departed session: the cancels of whatever of its orders rested since it went (an
    /// order that was in flight then), and it is forgotten once nothing is in flight.
    pub(super) fn returned(&mut self, session: u64) -> Vec<Cancel> {
        let Some(e) = self.sessions.get_mut(&session) else { return Vec::new() };
        e.in_flight = e.in_flight.saturating_sub(1);
        if !e.departed {
            return Vec::new();
        }
        let cancels = e.take_cancels();
        if e.in_flight == 0 {
            self.sessions.remove(&session);
        }
        cancels
    }

    /// The session ended. With `cancel` (cancel-on-disconnect, and not a server shutdown):
    /// the cancels of its live orders, and it stays departed while commands of it are in
    /// flight. Without: it is forgotten, and its orders stay.
    pub(super) fn end(&mut self, session: u64, cancel: bool) -> Vec<Cancel> {
        let Some(e) = self.sessions.get_mut(&session) else { return Vec::new() };
        let cancels = if cancel {
            e.departed = true;
            e.take_cancels()
        } else {
            Vec::new()
        };
        if !e.departed || e.in_flight == 0 {
            self.sessions.remove(&session);
        }
        cancels
    }

    /// Sessions remembered (connected, or departed with commands in flight).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use l2x_types::{CancelReason, InstrumentId, Price, Side, Trade, TradeId};

    use super::*;

    const A: AccountId = AccountId(7);

    fn accepted(order: u64, cid: u64) -> Event {
        Event::Accepted {
            account: A,
            cid: ClientOrderId(cid),
            order_id: OrderId(order),
            instrument: InstrumentId(0),
            side: Side::Buy,
            price: Price(100),
            qty: Qty(5),
        }
    }

    fn cancelled(order: u64, cid: u64, leaves: i64) -> Event {
        Event::Cancelled {
            account: A,
            cid: ClientOrderId(cid),
            order_id: OrderId(order),
            instrument: InstrumentId(0),
            side: Side::Buy,
            qty: Qty(1),
            leaves: Qty(leaves),
            reason: CancelReason::User,
        }
    }

    fn filled(maker: u64, taker: u64) -> Event {
        Event::Trade(Trade {
            trade_id: TradeId(1),
            instrument: InstrumentId(0),
            price: Price(100),
            qty: Qty(5),
            maker_account: A,
            maker_cid: ClientOrderId(0),
            maker_order_id: OrderId(maker),
            maker_leaves: Qty(0),
            maker_fee: 0,
            taker_account: A,
            taker_cid: ClientOrderId(0),
            taker_order_id: OrderId(taker),
            taker_leaves: Qty(0),
            taker_fee: 0,
            taker_side: Side::Sell,
            liquidation: false,
        })
    }

    fn cids(cancels: &[Cancel]) -> Vec<u64> {
        assert!(cancels.iter().all(|c| c.account == A && c.on_disconnect));
        cancels.iter().map(|c| c.cid.0).collect()
    }

    /// One command of `session` through: submitted, its events, back.
    fn round_trip(o: &mut Ownership, session: u64, events: &[Event]) -> Vec<Cancel> {
        o.submitted(session);
        o.on_events(session, events);
        o.returned(session)
    }

    #[test]
    fn live_orders_are_cancelled_when_their_session_ends() {
        let mut o = Ownership::default();
        o.open(1, A);
        assert!(round_trip(&mut o, 1, &[accepted(10, 100)]).is_empty());
        assert!(round_trip(&mut o, 1, &[accepted(11, 101)]).is_empty());
        assert!(round_trip(&mut o, 1, &[accepted(12, 102)]).is_empty());
        // One filled, one cancelled whole, one only reduced: two are still live.
        o.on_events(0, &[filled(10, 99), cancelled(11, 101, 0), cancelled(12, 102, 3)]);
        assert_eq!(cids(&o.end(1, true)), [102]);
        assert_eq!(o.remembered(), 0, "nothing in flight: forgotten at once");
    }

    #[test]
    fn a_session_without_cancel_on_disconnect_is_forgotten_and_its_orders_stay() {
        let mut o = Ownership::default();
        o.open(1, A);
        o.submitted(1);
        o.on_events(1, &[accepted(10, 100)]);
        assert!(o.end(1, false).is_empty());
        assert_eq!(o.remembered(), 0);
        // Its command's batch coming back later does nothing.
        assert!(o.returned(1).is_empty());
    }

    /// An order still on its way to the engine when its session went is cancelled once it
    /// rests: the session stays departed until nothing of it is in flight.
    #[test]
    fn an_order_in_flight_at_disconnect_is_cancelled_when_it_comes_back() {
        let mut o = Ownership::default();
        o.open(1, A);
        assert!(round_trip(&mut o, 1, &[accepted(10, 100)]).is_empty());
        o.submitted(1);
        o.submitted(1);
        assert_eq!(cids(&o.end(1, true)), [100]);
        assert_eq!(o.remembered(), 1, "two commands in flight");
        o.on_events(1, &[accepted(11, 101)]);
        assert_eq!(cids(&o.returned(1)), [101]);
        assert_eq!(o.remembered(), 1);
        // The second was rejected: nothing to cancel, nothing in flight, forgotten.
        o.on_events(1, &[]);
        assert!(o.returned(1).is_empty());
        assert_eq!(o.remembered(), 0);
    }

    #[test]
    fn orders_of_other_sessions_and_of_no_session_are_not_owned() {
        let mut o = Ownership::default();
        o.open(1, A);
        o.open(2, A);
        assert!(round_trip(&mut o, 2, &[accepted(20, 200)]).is_empty());
        // A command of no session (a control command, a restart's order) owns nothing.
        o.on_events(0, &[accepted(30, 300)]);
        assert!(o.end(1, true).is_empty());
        assert_eq!(cids(&o.end(2, true)), [200]);
    }
}
