//! Market data: the engine's events as an order-by-order feed (docs/PROTOCOL.md, "Market
//! data"), and the client side that rebuilds the book from it.
//!
//! ```text
//!  batch (events of one command) ──▶ Feed::on_batch ──▶ AddOrder / ReduceOrder / DeleteOrder /
//!                                    shadow of every        Execution / Trade, md_seq + 1 each,
//!                                    resting order, per     end-of-event on the last
//!                                    level in time order
//!  new subscriber ◀── Feed::snapshot: definitions, then each book in priority order at md_seq
//!
//!  Book::apply(msg) ──▶ the same resting orders as the engine, or Gap (resubscribe)
//! ```
//!
//! # From events to updates
//!
//! The feed keeps a shadow of the resting orders. A new order's `accepted` opens a *pending*
//! order; its `trade`s as taker and `cancelled` events (a remainder, a self-trade decrement,
//! a reduce-only cut) shrink it; at the end of the command whatever is left has rested
//! (every remainder that does not rest is cancelled with an event), so it becomes an
//! `AddOrder`. An amend that keeps priority is a `ReduceOrder` (or nothing, for the same
//! quantity); one that loses it is a `DeleteOrder`, then handled like a new order. A trade
//! is an `Execution` of the resting order and a `Trade`; a cancel of a resting order is a
//! `DeleteOrder`, or a `ReduceOrder` when it leaves quantity (a decrement).

use std::collections::{BTreeMap, VecDeque};

use l2x_types::{DetMap, Event, InstrumentId, OrderId, Price, Qty, Side};

use crate::codec::MdMsg;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Resting {
    instrument: InstrumentId,
    side: Side,
    price: Price,
    leaves: Qty,
}

/// Orders of one book side at one price, oldest first.
type Queue = VecDeque<OrderId>;

/// Sort key of a level: bids best (highest) first, asks best (lowest) first.
fn level_key(instrument: InstrumentId, side: Side, price: Price) -> (InstrumentId, Side, i64) {
    (instrument, side, if side == Side::Buy { -price.0 } else { price.0 })
}

/// Resting orders by id and, per level, in time priority: what both the feed and a
/// subscriber keep.
#[derive(Debug, Default)]
struct Shadow {
    orders: DetMap<OrderId, Resting>,
    levels: BTreeMap<(InstrumentId, Side, i64), Queue>,
}

impl Shadow {
    fn insert(&mut self, id: OrderId, o: Resting) {
        self.orders.insert(id, o);
        self.levels.entry(level_key(o.instrument, o.side, o.price)).or_default().push_back(id);
    }

    fn remove(&mut self, id: OrderId) -> Option<Resting> {
        let o = self.orders.remove(&id)?;
        let key = level_key(o.instrument, o.side, o.price);
        if let Some(q) = self.levels.get_mut(&key) {
            q.retain(|&x| x != id);
            if q.is_empty() {
                self.levels.remove(&key);
            }
        }
        Some(o)
    }

    /// Every order in canonical order (instrument, bids then asks, best first, time).
    fn in_order(&self) -> impl Iterator<Item = (OrderId, &Resting)> + '_ {
        self.levels.values().flatten().filter_map(|id| self.orders.get(id).map(|o| (*id, o)))
    }
}

/// The publishing side: turns batches into sequenced updates and serves snapshots.
#[derive(Debug, Default)]
pub struct Feed {
    md_seq: u64,
    shadow: Shadow,
}

impl Feed {
    /// An empty feed (no resting orders, `md_seq` 0).
    pub fn new() -> Feed {
        Feed::default()
    }

    /// The sequence number of the last update.
    pub fn md_seq(&self) -> u64 {
        self.md_seq
    }

    fn next(&mut self) -> u64 {
        self.md_seq += 1;
        self.md_seq
    }

    /// The updates of one command's events, appended to `out` (the caller sets end of event
    /// on the last one).
    pub fn on_batch(&mut self, events: &[Event], out: &mut Vec<MdMsg>) {
        // Orders entering the book in this command: (id, instrument, side, price, leaves).
        let mut pending: Vec<(OrderId, Resting)> = Vec::new();
        for ev in events {
            match *ev {
                Event::Accepted { order_id, instrument, side, price, qty, .. } => {
                    pending.push((order_id, Resting { instrument, side, price, leaves: qty }));
                }
                Event::Amended { order_id, price, qty, priority_kept, .. } => {
                    if priority_kept {
                        if let Some(o) = self.shadow.orders.get_mut(&order_id)
                            && qty < o.leaves
                        {
                            let removed = Qty(o.leaves.0 - qty.0);
                            o.leaves = qty;
                            let (instrument, side) = (o.instrument, o.side);
                            let md_seq = self.next();
                            out.push(MdMsg::ReduceOrder { md_seq, instrument, side, order_id, removed, leaves: qty });
                        }
                    } else if let Some(o) = self.shadow.remove(order_id) {
                        let md_seq = self.next();
                        out.push(MdMsg::DeleteOrder { md_seq, instrument: o.instrument, side: o.side, order_id });
                        pending.push((order_id, Resting { price, leaves: qty, ..o }));
                    }
                }
                Event::Trade(t) => {
                    if let Some(o) = self.shadow.orders.get_mut(&t.maker_order_id) {
                        o.leaves = t.maker_leaves;
                        let (instrument, side) = (o.instrument, o.side);
                        if t.maker_leaves == Qty::ZERO {
                            self.shadow.remove(t.maker_order_id);
                        }
                        let md_seq = self.next();
                        out.push(MdMsg::Execution {
                            md_seq,
                            instrument,
                            side,
                            order_id: t.maker_order_id,
                            price: t.price,
                            qty: t.qty,
                            leaves: t.maker_leaves,
                        });
                    }
                    if let Some((_, p)) = pending.iter_mut().find(|(id, _)| *id == t.taker_order_id) {
                        p.leaves = t.taker_leaves;
                    }
                    let md_seq = self.next();
                    out.push(MdMsg::Trade {
                        md_seq,
                        instrument: t.instrument,
                        aggressor: t.taker_side,
                        match_id: t.trade_id.0,
                        price: t.price,
                        qty: t.qty,
                    });
                }
                Event::Cancelled { order_id, qty, leaves, .. } => {
                    if let Some((_, p)) = pending.iter_mut().find(|(id, _)| *id == order_id) {
                        p.leaves = leaves;
                    } else if let Some(o) = self.shadow.orders.get_mut(&order_id) {
                        let (instrument, side) = (o.instrument, o.side);
                        if leaves == Qty::ZERO {
                            self.shadow.remove(order_id);
                            let md_seq = self.next();
                            out.push(MdMsg::DeleteOrder { md_seq, instrument, side, order_id });
                        } else {
                            o.leaves = leaves;
                            let md_seq = self.next();
                            out.push(MdMsg::ReduceOrder { md_seq, instrument, side, order_id, removed: qty, leaves });
                        }
                    }
                }
                _ => {}
            }
        }
        for (order_id, o) in pending {
            if o.leaves.is_positive() {
                self.shadow.insert(order_id, o);
                let md_seq = self.next();
                out.push(MdMsg::Order {
                    add: true,
                    md_seq,
                    instrument: o.instrument,
                    side: o.side,
                    order_id,
                    price: o.price,
                    qty: o.leaves,
                });
            }
        }
    }

    /// The snapshot of one instrument's book at the current `md_seq`: `SnapshotBegin`, every
    /// resting order (bids best first, then asks best first, time priority within a level),
    /// `SnapshotEnd`.
    pub fn snapshot(&self, instrument: InstrumentId, out: &mut Vec<MdMsg>) {
        let md_seq = self.md_seq;
        let mut orders: Vec<MdMsg> = self
            .shadow
            .in_order()
            .filter(|(_, o)| o.instrument == instrument)
            .map(|(order_id, o)| MdMsg::Order {
                add: false,
                md_seq,
                instrument,
                side: o.side,
                order_id,
                price: o.price,
                qty: o.leaves,
            })
            .collect();
        out.push(MdMsg::SnapshotBegin { md_seq, instrument, count: orders.len() as u64 });
        out.append(&mut orders);
        out.push(MdMsg::SnapshotEnd { md_seq, instrument });
    }
}

/// A gap or an inconsistency in the feed: the subscriber must reconnect for a new snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("market data gap: expected md_seq {expected}, got {got}")]
pub struct Gap {
    /// The sequence number that should have come.
    pub expected: u64,
    /// What came.
    pub got: u64,
}

/// The subscriber's book, rebuilt from a snapshot and the updates after it.
#[derive(Debug, Default)]
pub struct Book {
    md_seq: u64,
    shadow: Shadow,
}

impl Book {
    /// An empty book.
    pub fn new() -> Book {
        Book::default()
    }

    /// The last `md_seq` applied.
    pub fn md_seq(&self) -> u64 {
        self.md_seq
    }

    /// Applies one message of the feed.
    ///
    /// # Errors
    /// [`Gap`] if an update is not the next in sequence or names an order the book does not
    /// have; the book is then stale.
    pub fn apply(&mut self, msg: &MdMsg) -> Result<(), Gap> {
        let gap = |expected: u64, got: u64| Gap { expected, got };
        match *msg {
            MdMsg::InstrumentDefinition { .. } | MdMsg::Heartbeat { .. } | MdMsg::SnapshotEnd { .. } => Ok(()),
            MdMsg::SnapshotBegin { md_seq, instrument, .. } => {
                self.md_seq = md_seq;
                let stale: Vec<OrderId> =
                    self.shadow.in_order().filter(|(_, o)| o.instrument == instrument).map(|(id, _)| id).collect();
                for id in stale {
                    self.shadow.remove(id);
                }
                Ok(())
            }
            MdMsg::Order { add: false, instrument, side, order_id, price, qty, .. } => {
                self.shadow.insert(order_id, Resting { instrument, side, price, leaves: qty });
                Ok(())
            }
            ref update => {
                let md_seq = update_seq(update);
                if md_seq != self.md_seq + 1 {
                    return Err(gap(self.md_seq + 1, md_seq));
                }
                self.md_seq = md_seq;
                match *update {
                    MdMsg::Order { instrument, side, order_id, price, qty, .. } => {
                        self.shadow.insert(order_id, Resting { instrument, side, price, leaves: qty });
                    }
                    MdMsg::ReduceOrder { order_id, leaves, .. } | MdMsg::Execution { order_id, leaves, .. } => {
                        let o = self.shadow.orders.get_mut(&order_id).ok_or(gap(md_seq, md_seq))?;
                        o.leaves = leaves;
                        if leaves == Qty::ZERO {
                            self.shadow.remove(order_id);
                        }
                    }
                    MdMsg::DeleteOrder { order_id, .. } => {
                        self.shadow.remove(order_id).ok_or(gap(md_seq, md_seq))?;
                    }
                    _ => {}
                }
                Ok(())
            }
        }
    }

    /// Every resting order as (instrument, side, price, order id, open quantity), in the
    /// engine's canonical order: instrument, bids then asks, best price first, time priority.
    pub fn orders(&self) -> Vec<(InstrumentId, Side, Price, OrderId, Qty)> {
        self.shadow.in_order().map(|(id, o)| (o.instrument, o.side, o.price, id, o.leaves)).collect()
    }
}

fn update_seq(msg: &MdMsg) -> u64 {
    match *msg {
        MdMsg::InstrumentDefinition { md_seq, .. }
        | MdMsg::SnapshotBegin { md_seq, .. }
        | MdMsg::Order { md_seq, .. }
        | MdMsg::SnapshotEnd { md_seq, .. }
        | MdMsg::ReduceOrder { md_seq, .. }
        | MdMsg::DeleteOrder { md_seq, .. }
        | MdMsg::Execution { md_seq, .. }
        | MdMsg::Trade { md_seq, .. }
        | MdMsg::Heartbeat { md_seq } => md_seq,
    }
}
