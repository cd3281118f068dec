//! Market data: the engine's events as an order-by-order feed (docs/PROTOCOL.md, "Market
//! data"). The subscriber's side, which rebuilds the book from it, is `l2x_protocol::book`.
//!
//! ```text
//!  batch (events of one command) ──▶ Feed::on_batch ──▶ AddOrder / ReduceOrder / DeleteOrder /
//!                                    shadow of every        Execution / Trade, md_seq + 1 each,
//!                                    resting order, per     end-of-event on the last
//!                                    level in time order
//!  new subscriber ◀── Feed::snapshot: definitions, then each book in priority order at md_seq
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

use l2x_protocol::book::{Resting, RestingOrders};
use l2x_protocol::codec::MdMsg;
use l2x_types::{Event, InstrumentId, OrderId, Price, Qty, Trade};

/// The publishing side: turns batches into sequenced updates and serves snapshots.
#[derive(Debug, Default)]
pub struct Feed {
    md_seq: u64,
    shadow: RestingOrders,
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
        // Orders entering the book in this command, with what is left of them so far.
        let mut pending: Vec<(OrderId, Resting)> = Vec::new();
        for ev in events {
            match *ev {
                Event::Accepted { order_id, instrument, side, price, qty, .. } => {
                    pending.push((order_id, Resting { instrument, side, price, leaves: qty }));
                }
                Event::Amended { order_id, price, qty, priority_kept, .. } => {
                    self.amended(order_id, price, qty, priority_kept, &mut pending, out);
                }
                Event::Trade(ref t) => self.traded(t, &mut pending, out),
                Event::Cancelled { order_id, qty, leaves, .. } => {
                    self.cancelled(order_id, qty, leaves, &mut pending, out);
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

    /// An amend that keeps priority shrinks the order in place; one that loses it takes the
    /// order off and enters it again, like a new order.
    fn amended(
        &mut self,
        order_id: OrderId,
        price: Price,
        qty: Qty,
        priority_kept: bool,
        pending: &mut Vec<(OrderId, Resting)>,
        out: &mut Vec<MdMsg>,
    ) {
        if priority_kept {
            if let Some((leaves, o)) = self.shadow.leaves_mut(order_id)
                && qty < o.leaves
            {
                let removed = Qty(o.leaves.0 - qty.0);
                *leaves = qty;
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

    /// A trade: an `Execution` of the resting order, then the `Trade`; the taker, if it is
    /// entering the book in this command, has that much less to rest.
    fn traded(&mut self, t: &Trade, pending: &mut [(OrderId, Resting)], out: &mut Vec<MdMsg>) {
        if let Some((leaves, o)) = self.shadow.leaves_mut(t.maker_order_id) {
            *leaves = t.maker_leaves;
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

    /// A cancel: of an order entering the book in this command, what it will rest; of a
    /// resting one, a `DeleteOrder`, or a `ReduceOrder` when it leaves quantity.
    fn cancelled(
        &mut self,
        order_id: OrderId,
        qty: Qty,
        leaves: Qty,
        pending: &mut [(OrderId, Resting)],
        out: &mut Vec<MdMsg>,
    ) {
        if let Some((_, p)) = pending.iter_mut().find(|(id, _)| *id == order_id) {
            p.leaves = leaves;
        } else if let Some((open, o)) = self.shadow.leaves_mut(order_id) {
            let (instrument, side) = (o.instrument, o.side);
            if leaves == Qty::ZERO {
                self.shadow.remove(order_id);
                let md_seq = self.next();
                out.push(MdMsg::DeleteOrder { md_seq, instrument, side, order_id });
            } else {
                *open = leaves;
                let md_seq = self.next();
                out.push(MdMsg::ReduceOrder { md_seq, instrument, side, order_id, removed: qty, leaves });
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
