//! The order books of every instrument: resting orders, price levels, ladders, and the
//! net-change tracking behind `book` events.
//!
//! # Layout
//!
//! ```text
//!  ladders[instrument][side]: Ladder   level handle per tick of a price window, a bitmap
//!                                   │   of occupied ticks, the best level (ladder.rs)
//!  levels: slab of Level { price, qty, count, head ─┐, tail ─┐ }      pooled, u32 handles
//!                                                   ▼        ▼
//!  orders: slab of Order { .., prev, next (FIFO in its level), acct_prev, acct_next, level }
//!  cids:   DetMap<(account, cid), OrderHandle>       acct_heads[slot] → one list per account
//! ```
//!
//! All resting orders of all instruments live in one slab addressed by [`OrderHandle`]s
//! (`u32` indexes); freed slots go on a free list and are reused, so the steady state
//! allocates nothing. A level is an intrusive doubly linked FIFO of orders; levels are pooled
//! the same way and addressed by [`LevelHandle`]s, a distinct type, so that an order's handle
//! can never index the level pool (or the reverse). Each side of each book is a [`Ladder`]:
//! the level at a price is found by indexing an array with the price's distance from the
//! start of a window of ticks, and the best level is kept; when the best level goes, a bitmap
//! finds the next one (see `ladder.rs`).
//!
//! # Invariants (checked by [`Books::check_invariants`] after every command in tests)
//!
//! 1. Each ladder holds exactly the levels of its side, each under its own price, and
//!    yields them best first, strictly ordered (its own invariants: `ladder.rs`).
//! 2. Every level has at least one order; its `qty` is the sum of its orders' open
//!    quantities and its `count` their number; its list links are consistent.
//! 3. Every resting order has positive open quantity and sits in the level of its price,
//!    side and instrument, in arrival order (FIFO).
//! 4. The book is never crossed at rest: best bid < best ask.
//! 5. `cids` has exactly one entry per resting order; every account list holds exactly
//!    that account's resting orders.
//!
//! # Complexity
//!
//! | operation | cost |
//! |---|---|
//! | best price | O(1) |
//! | add to an existing level | O(1) |
//! | add a new level | O(1) (growing the ladder's window: O(window), amortised) |
//! | cancel (order leaves a level with others) | O(1) |
//! | cancel (the level empties) | O(1); the best level: O(gap / 64) to find the next |
//! | match against one resting order | O(1) |
//! | look up by (account, cid) | O(1) expected |
//!
//! Levels outside a ladder's window (prices spanning more than half of its largest window,
//! 4,194,304 ticks, e.g. stale orders after a very large move) cost O(log f) instead, f the
//! number of such levels.
//!
//! # Known limitations
//!
//! - Memory per side grows with the span of its resting prices in ticks (4 bytes per tick
//!   plus 1 bit, from 16 KiB up to 16 MiB per side), not with the number of levels; the
//!   window does not shrink until the side empties.
//! - Handles are `u32` (`u32::MAX` is `NIL`): at most about 4 billion resting orders and
//!   levels.
//!
//! # Book events
//!
//! A command may touch a level many times (a sweep, a decrement, an amend that leaves and
//! re-enters). The first touch of a level in a command records its quantity and count
//! before, and the level's handle and generation; at the end of the command
//! [`Books::flush_book_events`] emits one `book` event for each price whose (quantity,
//! count) differs from its first-recorded value, ordered by instrument, bids before asks,
//! best price first. It reads the totals now through the recorded handles, with no search
//! of the ladder: a level freed during the command reads as gone even if its slot was
//! reused (for another price, or the other side at the same price), because every
//! allocation of a slot bumps its generation. The common one-touch command needs no sort.

use l2x_risk::AccountSlot;
use l2x_types::{
    AccountId, ClientOrderId, DetMap, Event, InstrumentId, NewOrder, OrderId, Price, Qty, Side, StpMode, TimeInForce,
    Timestamp,
};

use crate::ladder::Ladder;

/// A handle to an order: its index in the order slab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub(crate) struct OrderHandle(u32);

/// A handle to a price level: its index in the level pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub(crate) struct LevelHandle(u32);

impl OrderHandle {
    /// "No order", inside intrusive lists only (a slab never grows to `u32::MAX` orders).
    pub(crate) const NIL: OrderHandle = OrderHandle(u32::MAX);

    /// The handle of slab index `i`.
    ///
    /// # Panics
    /// If `i` does not fit 32 bits.
    fn at(i: usize) -> OrderHandle {
        OrderHandle(u32::try_from(i).expect("fewer than 2^32 - 1 orders"))
    }

    /// Its index in the slab.
    #[inline]
    pub(crate) const fn index(self) -> usize {
        self.0 as usize
    }

    /// `true` for [`OrderHandle::NIL`].
    #[inline]
    pub(crate) const fn is_nil(self) -> bool {
        self.0 == u32::MAX
    }
}

impl LevelHandle {
    /// "No level": an order not in a level, a tick of a ladder without one.
    pub(crate) const NIL: LevelHandle = LevelHandle(u32::MAX);

    /// The handle of pool index `i`.
    ///
    /// # Panics
    /// If `i` does not fit 32 bits.
    pub(crate) fn at(i: usize) -> LevelHandle {
        LevelHandle(u32::try_from(i).expect("fewer than 2^32 - 1 levels"))
    }

    /// Its index in the pool.
    #[inline]
    pub(crate) const fn index(self) -> usize {
        self.0 as usize
    }

    /// `true` for [`LevelHandle::NIL`].
    #[inline]
    pub(crate) const fn is_nil(self) -> bool {
        self.0 == u32::MAX
    }
}

/// A resting order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Order {
    pub(crate) id: OrderId,
    pub(crate) account: AccountId,
    pub(crate) cid: ClientOrderId,
    pub(crate) instrument: InstrumentId,
    pub(crate) side: Side,
    pub(crate) price: Price,
    pub(crate) leaves: Qty,
    pub(crate) filled: Qty,
    pub(crate) tif: TimeInForce,
    pub(crate) expire_ts: Option<Timestamp>,
    pub(crate) post_only: bool,
    pub(crate) reduce_only: bool,
    pub(crate) stp: StpMode,
    /// Owning account's slot (the per-account list, the ledger's tables).
    pub(crate) slot: AccountSlot,
    level: LevelHandle,
    prev: OrderHandle,
    next: OrderHandle,
    acct_prev: OrderHandle,
    acct_next: OrderHandle,
}

impl Order {
    /// A new order entering the book at `price` with open quantity `leaves`, having
    /// executed `filled` while taking liquidity; not yet linked anywhere.
    pub(crate) fn entering(
        o: &NewOrder,
        id: OrderId,
        slot: AccountSlot,
        price: Price,
        leaves: Qty,
        filled: Qty,
    ) -> Order {
        Order {
            id,
            account: o.account,
            cid: o.cid,
            instrument: o.instrument,
            side: o.side,
            price,
            leaves,
            filled,
            tif: o.tif,
            expire_ts: o.expire_ts,
            post_only: o.post_only,
            reduce_only: o.reduce_only,
            stp: o.stp,
            slot,
            level: LevelHandle::NIL,
            prev: OrderHandle::NIL,
            next: OrderHandle::NIL,
            acct_prev: OrderHandle::NIL,
            acct_next: OrderHandle::NIL,
        }
    }

    /// A resting order of a snapshot, not yet linked anywhere.
    pub(crate) fn restored(r: &RestingOrder, slot: AccountSlot) -> Order {
        Order {
            id: r.order_id,
            account: r.account,
            cid: r.cid,
            instrument: r.instrument,
            side: r.side,
            price: r.price,
            leaves: r.leaves,
            filled: r.filled,
            tif: r.tif,
            expire_ts: r.expire_ts,
            post_only: r.post_only,
            reduce_only: r.reduce_only,
            stp: r.stp,
            slot,
            level: LevelHandle::NIL,
            prev: OrderHandle::NIL,
            next: OrderHandle::NIL,
            acct_prev: OrderHandle::NIL,
            acct_next: OrderHandle::NIL,
        }
    }

    /// The next order in its level (FIFO), or [`OrderHandle::NIL`].
    #[inline]
    pub(crate) fn next_in_level(&self) -> OrderHandle {
        self.next
    }
}

#[derive(Clone, Copy, Debug)]
struct Level {
    price: Price,
    /// The orders' total open quantity, in lots: a sum over orders that validation does not
    /// bound (one of the known limits of `l2x_types`' arithmetic rules).
    qty: i64,
    count: u32,
    head: OrderHandle,
    tail: OrderHandle,
    /// Bumped each time the slot is allocated, so that a touch of a level freed since can
    /// tell it from a new level in the reused slot (see module doc, "Book events").
    generation: u32,
    /// Command stamp of the last touch (see module doc, "Book events").
    stamp: u64,
}

/// First touch of a level within the current command.
#[derive(Clone, Copy, Debug)]
struct Touch {
    instrument: InstrumentId,
    side: Side,
    price: Price,
    qty_before: i64,
    count_before: u32,
    order: u32,
    /// The level touched, and its generation then.
    level: LevelHandle,
    generation: u32,
}

/// Rank of a price on its side: the better the price, the higher.
#[inline]
fn rank(side: Side, price: Price) -> i64 {
    match side {
        Side::Buy => price.0,
        Side::Sell => -price.0,
    }
}

/// `true` if a taker on `side` with limit `limit` may trade at `level_price`.
#[inline]
pub(crate) fn crosses(side: Side, limit: Price, level_price: Price) -> bool {
    match side {
        Side::Buy => level_price <= limit,
        Side::Sell => level_price >= limit,
    }
}

/// A resting order as seen from outside, in canonical order (see [`crate::StateMachine::resting_orders`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestingOrder {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Limit price.
    pub price: Price,
    /// Order id.
    pub order_id: OrderId,
    /// Owner.
    pub account: AccountId,
    /// Client id.
    pub cid: ClientOrderId,
    /// Open quantity.
    pub leaves: Qty,
    /// Executed quantity so far.
    pub filled: Qty,
    /// Time in force (GTC or GTD).
    pub tif: TimeInForce,
    /// Expiry, for GTD.
    pub expire_ts: Option<Timestamp>,
    /// Post-only flag.
    pub post_only: bool,
    /// Reduce-only flag.
    pub reduce_only: bool,
    /// Self-trade prevention mode.
    pub stp: StpMode,
}

/// Every book: orders, levels, ladders, indexes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Books {
    orders: Vec<Order>,
    free_orders: Vec<OrderHandle>,
    levels: Vec<Level>,
    free_levels: Vec<LevelHandle>,
    /// `[bids, asks]` per instrument.
    ladders: Vec<[Ladder; 2]>,
    cids: DetMap<(AccountId, ClientOrderId), OrderHandle>,
    acct_heads: Vec<OrderHandle>,
    live: usize,
    stamp: u64,
    touches: Vec<Touch>,
}

impl Books {
    /// Adds the (empty) book of a newly listed instrument.
    pub(crate) fn add_instrument(&mut self) {
        self.ladders.push([Ladder::new(Side::Buy), Ladder::new(Side::Sell)]);
    }

    /// Starts a new command: level touches are recorded afresh.
    #[inline]
    pub(crate) fn begin_command(&mut self) {
        self.stamp += 1;
        self.touches.clear();
    }

    /// Number of resting orders.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    #[inline]
    fn ladder(&self, instrument: InstrumentId, side: Side) -> &Ladder {
        &self.ladders[instrument.index()][side as usize]
    }

    #[inline]
    fn ladder_mut(&mut self, instrument: InstrumentId, side: Side) -> &mut Ladder {
        &mut self.ladders[instrument.index()][side as usize]
    }

    /// The best level of one side: its price and handle.
    #[inline]
    pub(crate) fn best(&self, instrument: InstrumentId, side: Side) -> Option<(Price, LevelHandle)> {
        self.ladder(instrument, side).best()
    }

    /// Levels of one side from best to worst: (price, level handle).
    pub(crate) fn levels_best_first(
        &self,
        instrument: InstrumentId,
        side: Side,
    ) -> impl Iterator<Item = (Price, LevelHandle)> + '_ {
        self.ladder(instrument, side).iter()
    }

    /// Levels of one side from best to worst as (price, total open quantity).
    pub(crate) fn depth(&self, instrument: InstrumentId, side: Side) -> impl Iterator<Item = (Price, Qty)> + '_ {
        self.ladder(instrument, side).iter().map(|(p, lv)| (p, Qty(self.levels[lv.index()].qty)))
    }

    /// First order (oldest) of a level.
    #[inline]
    pub(crate) fn level_head(&self, level: LevelHandle) -> OrderHandle {
        self.levels[level.index()].head
    }

    /// The order behind a handle.
    #[inline]
    pub(crate) fn order(&self, h: OrderHandle) -> &Order {
        &self.orders[h.index()]
    }

    /// The live order with this (account, cid).
    #[inline]
    pub(crate) fn find(&self, account: AccountId, cid: ClientOrderId) -> Option<OrderHandle> {
        self.cids.get(&(account, cid)).copied()
    }

    /// `true` if `h` still holds the live order `id` (handles are reused after free).
    #[inline]
    pub(crate) fn is_live(&self, h: OrderHandle, id: OrderId) -> bool {
        self.orders.get(h.index()).is_some_and(|o| o.id == id && !o.level.is_nil())
    }

    /// Total open quantity and order count at a price (zeros if no level).
    pub(crate) fn level_at(&self, instrument: InstrumentId, side: Side, price: Price) -> (i64, u32) {
        match self.ladder(instrument, side).get(price) {
            Some(lv) => {
                let lv = &self.levels[lv.index()];
                (lv.qty, lv.count)
            }
            None => (0, 0),
        }
    }

    fn touch(&mut self, level: LevelHandle, instrument: InstrumentId, side: Side) {
        let lv = &mut self.levels[level.index()];
        if lv.stamp != self.stamp {
            lv.stamp = self.stamp;
            #[allow(clippy::cast_possible_truncation, reason = "touches per command fit in u32")]
            let order = self.touches.len() as u32;
            self.touches.push(Touch {
                instrument,
                side,
                price: lv.price,
                qty_before: lv.qty,
                count_before: lv.count,
                order,
                level,
                generation: lv.generation,
            });
        }
    }

    /// Puts an order at the back of its level (creating the level), and indexes it.
    pub(crate) fn rest(&mut self, order: Order) -> OrderHandle {
        let (instrument, side, price) = (order.instrument, order.side, order.price);
        let level = match self.ladder(instrument, side).get(price) {
            Some(lv) => {
                self.touch(lv, instrument, side);
                lv
            }
            None => {
                let lv = self.alloc_level(price);
                self.touch(lv, instrument, side);
                self.ladder_mut(instrument, side).insert(price, lv);
                lv
            }
        };
        let h = self.alloc_order(order);
        self.append_to_level(h, level);
        self.cids.insert((order.account, order.cid), h);
        self.link_account(h);
        self.live += 1;
        h
    }

    /// Takes an order out of its level (removing the level if it empties) but keeps it
    /// allocated and indexed by cid: used by amends that lose priority.
    pub(crate) fn unlink_from_level(&mut self, h: OrderHandle) {
        let o = self.orders[h.index()];
        let level = o.level;
        self.touch(level, o.instrument, o.side);
        if !o.prev.is_nil() {
            self.orders[o.prev.index()].next = o.next;
        } else {
            self.levels[level.index()].head = o.next;
        }
        if !o.next.is_nil() {
            self.orders[o.next.index()].prev = o.prev;
        } else {
            self.levels[level.index()].tail = o.prev;
        }
        let lv = &mut self.levels[level.index()];
        lv.qty -= o.leaves.0;
        lv.count -= 1;
        let empty = lv.count == 0;
        let node = &mut self.orders[h.index()];
        node.level = LevelHandle::NIL;
        node.prev = OrderHandle::NIL;
        node.next = OrderHandle::NIL;
        if empty {
            self.remove_level(o.instrument, o.side, o.price, level);
        }
    }

    /// Re-inserts an order taken out by [`Books::unlink_from_level`] at the back of the
    /// level of its (possibly new) price and open quantity, adding what it executed while
    /// out of the book to its `filled`.
    pub(crate) fn relink(&mut self, h: OrderHandle, price: Price, leaves: Qty, filled: Qty) {
        let (instrument, side) = {
            let o = &mut self.orders[h.index()];
            o.price = price;
            o.leaves = leaves;
            o.filled = o.filled.saturating_add(filled);
            (o.instrument, o.side)
        };
        let level = match self.ladder(instrument, side).get(price) {
            Some(lv) => lv,
            None => {
                let lv = self.alloc_level(price);
                self.ladder_mut(instrument, side).insert(price, lv);
                lv
            }
        };
        self.touch(level, instrument, side);
        self.append_to_level(h, level);
    }

    /// Removes an order entirely: level, cid index, account list, slab.
    pub(crate) fn remove(&mut self, h: OrderHandle) {
        if !self.orders[h.index()].level.is_nil() {
            self.unlink_from_level(h);
        }
        self.forget(h);
    }

    /// Frees an order already unlinked from its level (see [`Books::unlink_from_level`]).
    pub(crate) fn forget(&mut self, h: OrderHandle) {
        let o = self.orders[h.index()];
        self.cids.remove(&(o.account, o.cid));
        self.unlink_account(h);
        let node = &mut self.orders[h.index()];
        node.id = OrderId(0);
        node.level = LevelHandle::NIL;
        self.free_orders.push(h);
        self.live -= 1;
    }

    /// Reduces a resting order's open quantity by `by` (a fill or a decrement), recording
    /// `filled` for fills. The caller removes the order when it reaches zero.
    #[inline]
    pub(crate) fn reduce(&mut self, h: OrderHandle, by: Qty, fill: bool) -> Qty {
        let o = &mut self.orders[h.index()];
        o.leaves = o.leaves.less(by);
        if fill {
            o.filled = o.filled.saturating_add(by);
        }
        let (level, instrument, side, leaves) = (o.level, o.instrument, o.side, o.leaves);
        self.touch(level, instrument, side);
        self.levels[level.index()].qty -= by.0;
        leaves
    }

    /// Sets a resting order's open quantity in place, keeping its queue position.
    pub(crate) fn resize_in_place(&mut self, h: OrderHandle, leaves: Qty) {
        let o = self.orders[h.index()];
        self.touch(o.level, o.instrument, o.side);
        self.levels[o.level.index()].qty += Qty::change(o.leaves, leaves);
        self.orders[h.index()].leaves = leaves;
    }

    /// The resting orders of an account, by handle, in no particular order.
    pub(crate) fn account_orders(&self, slot: AccountSlot, into: &mut Vec<OrderHandle>) {
        into.clear();
        let mut h = self.acct_heads.get(slot.index()).copied().unwrap_or(OrderHandle::NIL);
        while !h.is_nil() {
            into.push(h);
            h = self.orders[h.index()].acct_next;
        }
    }

    /// Emits one `book` event per level whose (qty, count) changed over this command.
    ///
    /// Reads each touched level through the handle its touch kept, with no search. A price
    /// touched more than once (its level emptied and freed, then a new level made there)
    /// has several touches: the first holds the totals before, and the one whose level is
    /// still the same allocation and not empty, if any, holds the totals now.
    pub(crate) fn flush_book_events(&mut self, out: &mut Vec<Event>) {
        if self.touches.is_empty() {
            return;
        }
        let mut touches = core::mem::take(&mut self.touches);
        if touches.len() > 1 {
            touches.sort_unstable_by_key(|t| (t.instrument, t.side, -rank(t.side, t.price), t.order));
        }
        let mut group = 0;
        while group < touches.len() {
            let first = touches[group];
            let mut end = group + 1;
            while end < touches.len()
                && (touches[end].instrument, touches[end].side, touches[end].price)
                    == (first.instrument, first.side, first.price)
            {
                end += 1;
            }
            let (qty, count) = touches[group..end]
                .iter()
                .find_map(|t| {
                    let lv = &self.levels[t.level.index()];
                    (lv.generation == t.generation && lv.count > 0).then_some((lv.qty, lv.count))
                })
                .unwrap_or((0, 0));
            if (qty, count) != (first.qty_before, first.count_before) {
                out.push(Event::Book {
                    instrument: first.instrument,
                    side: first.side,
                    price: first.price,
                    qty: Qty(qty),
                    orders: count,
                });
            }
            group = end;
        }
        touches.clear();
        self.touches = touches;
    }

    /// Every resting order in canonical order: instrument, bids then asks, best price
    /// first, then time priority.
    pub(crate) fn resting_orders(&self) -> Vec<RestingOrder> {
        let mut all = Vec::with_capacity(self.live);
        for (i, sides) in self.ladders.iter().enumerate() {
            for side in Side::ALL {
                for (_, lv) in sides[*side as usize].iter() {
                    let mut h = self.levels[lv.index()].head;
                    while !h.is_nil() {
                        let o = &self.orders[h.index()];
                        #[allow(clippy::cast_possible_truncation, reason = "instrument count fits u32")]
                        all.push(RestingOrder {
                            instrument: InstrumentId(i as u32),
                            side: o.side,
                            price: o.price,
                            order_id: o.id,
                            account: o.account,
                            cid: o.cid,
                            leaves: o.leaves,
                            filled: o.filled,
                            tif: o.tif,
                            expire_ts: o.expire_ts,
                            post_only: o.post_only,
                            reduce_only: o.reduce_only,
                            stp: o.stp,
                        });
                        h = o.next;
                    }
                }
            }
        }
        all
    }

    fn alloc_order(&mut self, order: Order) -> OrderHandle {
        match self.free_orders.pop() {
            Some(h) => {
                self.orders[h.index()] = order;
                h
            }
            None => {
                let h = OrderHandle::at(self.orders.len());
                self.orders.push(order);
                h
            }
        }
    }

    fn alloc_level(&mut self, price: Price) -> LevelHandle {
        let level =
            Level { price, qty: 0, count: 0, head: OrderHandle::NIL, tail: OrderHandle::NIL, generation: 0, stamp: 0 };
        match self.free_levels.pop() {
            Some(h) => {
                let generation = self.levels[h.index()].generation.wrapping_add(1);
                self.levels[h.index()] = Level { generation, ..level };
                h
            }
            None => {
                let h = LevelHandle::at(self.levels.len());
                self.levels.push(level);
                h
            }
        }
    }

    fn remove_level(&mut self, instrument: InstrumentId, side: Side, price: Price, level: LevelHandle) {
        let removed = self.ladder_mut(instrument, side).remove(price);
        debug_assert_eq!(removed, level, "the ladder held another level at {price:?}");
        self.free_levels.push(level);
    }

    fn append_to_level(&mut self, h: OrderHandle, level: LevelHandle) {
        let lv = &mut self.levels[level.index()];
        let tail = lv.tail;
        lv.tail = h;
        if tail.is_nil() {
            lv.head = h;
        }
        lv.qty += self.orders[h.index()].leaves.0;
        lv.count += 1;
        if !tail.is_nil() {
            self.orders[tail.index()].next = h;
        }
        let o = &mut self.orders[h.index()];
        o.level = level;
        o.prev = tail;
        o.next = OrderHandle::NIL;
    }

    fn link_account(&mut self, h: OrderHandle) {
        let slot = self.orders[h.index()].slot.index();
        if self.acct_heads.len() <= slot {
            self.acct_heads.resize(slot + 1, OrderHandle::NIL);
        }
        let head = self.acct_heads[slot];
        if !head.is_nil() {
            self.orders[head.index()].acct_prev = h;
        }
        let o = &mut self.orders[h.index()];
        o.acct_prev = OrderHandle::NIL;
        o.acct_next = head;
        self.acct_heads[slot] = h;
    }

    fn unlink_account(&mut self, h: OrderHandle) {
        let o = self.orders[h.index()];
        if !o.acct_prev.is_nil() {
            self.orders[o.acct_prev.index()].acct_next = o.acct_next;
        } else {
            self.acct_heads[o.slot.index()] = o.acct_next;
        }
        if !o.acct_next.is_nil() {
            self.orders[o.acct_next.index()].acct_prev = o.acct_prev;
        }
    }

    /// Checks every invariant of the module doc.
    ///
    /// # Errors
    /// A description of the first broken invariant.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let mut seen = 0usize;
        for (i, sides) in self.ladders.iter().enumerate() {
            for side in Side::ALL {
                let ladder = &sides[*side as usize];
                ladder.check_invariants().map_err(|e| format!("instrument {i} ladder: {e}"))?;
                let levels: Vec<(Price, LevelHandle)> = ladder.iter().collect();
                for w in levels.windows(2) {
                    if rank(*side, w[0].0) <= rank(*side, w[1].0) {
                        return Err(format!("instrument {i} {side}: levels not strictly best first at {:?}", w));
                    }
                }
                if levels.len() != ladder.len() {
                    return Err(format!("instrument {i} {side}: {} levels, ladder len {}", levels.len(), ladder.len()));
                }
                for (price, lv) in levels {
                    let level = &self.levels[lv.index()];
                    if level.price != price || level.count == 0 {
                        return Err(format!("instrument {i} {side} {price:?}: bad level {level:?}"));
                    }
                    let (mut qty, mut count, mut prev, mut h) = (0i64, 0u32, OrderHandle::NIL, level.head);
                    while !h.is_nil() {
                        let o = &self.orders[h.index()];
                        if o.level != lv || o.prev != prev || o.price != price || o.side != *side {
                            return Err(format!("order {:?}: links or placement wrong", o.id));
                        }
                        if o.instrument.index() != i || o.leaves.0 <= 0 || o.id == OrderId(0) {
                            return Err(format!("order {:?}: bad instrument or leaves", o.id));
                        }
                        if self.cids.get(&(o.account, o.cid)) != Some(&h) {
                            return Err(format!("order {:?}: cid index does not point to it", o.id));
                        }
                        qty += o.leaves.0;
                        count += 1;
                        prev = h;
                        h = o.next;
                    }
                    if prev != level.tail || qty != level.qty || count != level.count {
                        return Err(format!(
                            "instrument {i} {side} {price:?}: level totals {}/{} but orders sum {qty}/{count}",
                            level.qty, level.count
                        ));
                    }
                    seen += count as usize;
                }
            }
            if let (Some((bid, _)), Some((ask, _))) = (sides[0].best(), sides[1].best())
                && bid >= ask
            {
                return Err(format!("instrument {i}: crossed at rest, bid {bid:?} >= ask {ask:?}"));
            }
        }
        if seen != self.live || self.cids.len() != self.live {
            return Err(format!("live {} but {seen} in levels and {} cids", self.live, self.cids.len()));
        }
        let mut in_accounts = 0usize;
        for (slot, &head) in self.acct_heads.iter().enumerate() {
            let (mut prev, mut h) = (OrderHandle::NIL, head);
            while !h.is_nil() {
                let o = &self.orders[h.index()];
                if o.slot.index() != slot || o.acct_prev != prev || o.level.is_nil() {
                    return Err(format!("order {:?}: account list broken", o.id));
                }
                in_accounts += 1;
                prev = h;
                h = o.acct_next;
            }
        }
        if in_accounts != self.live {
            return Err(format!("{in_accounts} orders in account lists, {} live", self.live));
        }
        Ok(())
    }
}
