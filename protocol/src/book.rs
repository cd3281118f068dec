//! The market-data book: resting orders as the order-by-order feed shows them
//! (docs/PROTOCOL.md, "Market data"), rebuilt by a subscriber from a snapshot and the
//! updates after it.
//!
//! ```text
//!  SnapshotBegin · SnapshotOrder … · SnapshotEnd   (per instrument, at md_seq n)
//!  AddOrder / ReduceOrder / DeleteOrder / Execution (md_seq n + 1, n + 2, …)
//!        │
//!        ▼
//!  Book::apply ──▶ the engine's resting orders, in its order, or Gap (resubscribe)
//! ```
//!
//! [`RestingOrders`] is what both sides keep: the server's feed (`l2x_gateway::market_data`)
//! keeps one to turn the engine's events into updates, a subscriber's [`Book`] keeps one
//! rebuilt from them; the two agree order for order.
//!
//! Lookups by order id are hash lookups; a level is a queue in time priority, so removing an
//! order from the middle of its level is linear in the level's length.

use std::collections::{BTreeMap, VecDeque};

use l2x_types::{DetMap, InstrumentId, OrderId, Price, Qty, Side};

use crate::codec::MdMsg;

/// An order resting on a book: where it rests and what is still open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resting {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Its side.
    pub side: Side,
    /// Its price.
    pub price: Price,
    /// Its open quantity.
    pub leaves: Qty,
}

/// Orders of one book side at one price, oldest first.
type Queue = VecDeque<OrderId>;

/// A level's place in the canonical order: instrument, bids before asks, best price first.
type LevelKey = (InstrumentId, Side, i64);

/// Sort key of a level: bids best (highest) first, asks best (lowest) first.
fn level_key(instrument: InstrumentId, side: Side, price: Price) -> LevelKey {
    (instrument, side, if side == Side::Buy { -price.0 } else { price.0 })
}

/// Resting orders by id and, per level, in time priority: what both the feed and a
/// subscriber keep.
#[derive(Debug, Default)]
pub struct RestingOrders {
    orders: DetMap<OrderId, Resting>,
    levels: BTreeMap<LevelKey, Queue>,
}

impl RestingOrders {
    /// Rests an order at the back of its level.
    #[inline]
    pub fn insert(&mut self, id: OrderId, o: Resting) {
        self.orders.insert(id, o);
        self.levels.entry(level_key(o.instrument, o.side, o.price)).or_default().push_back(id);
    }

    /// Takes an order off the book; `None` if it is not resting.
    #[inline]
    pub fn remove(&mut self, id: OrderId) -> Option<Resting> {
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

    /// A resting order's open quantity, to change in place, with the order as it is (its
    /// level cannot change: a new price is a removal and an insertion).
    #[inline]
    pub fn leaves_mut(&mut self, id: OrderId) -> Option<(&mut Qty, Resting)> {
        self.orders.get_mut(&id).map(|o| {
            let order = *o;
            (&mut o.leaves, order)
        })
    }

    /// Every order in canonical order (instrument, bids then asks, best first, time).
    pub fn in_order(&self) -> impl Iterator<Item = (OrderId, &Resting)> + '_ {
        self.levels.values().flatten().filter_map(|id| self.orders.get(id).map(|o| (*id, o)))
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
    resting: RestingOrders,
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
                    self.resting.in_order().filter(|(_, o)| o.instrument == instrument).map(|(id, _)| id).collect();
                for id in stale {
                    self.resting.remove(id);
                }
                Ok(())
            }
            MdMsg::Order { add: false, instrument, side, order_id, price, qty, .. } => {
                self.resting.insert(order_id, Resting { instrument, side, price, leaves: qty });
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
                        self.resting.insert(order_id, Resting { instrument, side, price, leaves: qty });
                    }
                    MdMsg::ReduceOrder { order_id, leaves, .. } | MdMsg::Execution { order_id, leaves, .. } => {
                        let (open, _) = self.resting.leaves_mut(order_id).ok_or(gap(md_seq, md_seq))?;
                        *open = leaves;
                        if leaves == Qty::ZERO {
                            self.resting.remove(order_id);
                        }
                    }
                    MdMsg::DeleteOrder { order_id, .. } => {
                        self.resting.remove(order_id).ok_or(gap(md_seq, md_seq))?;
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
        self.resting.in_order().map(|(id, o)| (o.instrument, o.side, o.price, id, o.leaves)).collect()
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
