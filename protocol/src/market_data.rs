//! The market-data messages (docs/PROTOCOL.md, "Market data"), and each one's layout.
//!
//! Every block starts with `u64 md_seq`; a message's layout is its arm of `walk`, written
//! once and run by encoding, decoding and measuring ([`crate::layout`]). The snapshot's
//! orders and the updates' `AddOrder` share one layout (and one variant, [`MdMsg::Order`]).

use l2x_types::{InstrumentId, OrderId, Price, Qty, Side};

use crate::layout::{Layout, Walk, zero};
use crate::template::MdTemplate;

/// Market data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MdMsg {
    /// An instrument.
    InstrumentDefinition {
        /// Sequence number.
        md_seq: u64,
        /// Instrument id.
        instrument: InstrumentId,
        /// Symbol, zero-padded.
        symbol: [u8; 16],
        /// Tick size = mantissa · 10^-scale.
        tick: (i64, u8),
        /// Lot size = mantissa · 10^-scale.
        lot: (i64, u8),
    },
    /// A snapshot begins.
    SnapshotBegin {
        /// The sequence number the snapshot is consistent with.
        md_seq: u64,
        /// Instrument.
        instrument: InstrumentId,
        /// Orders that follow.
        count: u64,
    },
    /// A resting order in a snapshot (`add: false`) or one that just rested (`add: true`).
    Order {
        /// `true` for AddOrder, `false` for SnapshotOrder.
        add: bool,
        /// Sequence number.
        md_seq: u64,
        /// Instrument.
        instrument: InstrumentId,
        /// Side.
        side: Side,
        /// Order id.
        order_id: OrderId,
        /// Price.
        price: Price,
        /// Open quantity.
        qty: Qty,
    },
    /// A snapshot ends.
    SnapshotEnd {
        /// Sequence number.
        md_seq: u64,
        /// Instrument.
        instrument: InstrumentId,
    },
    /// An order shrank without trading.
    ReduceOrder {
        /// Sequence number.
        md_seq: u64,
        /// Instrument.
        instrument: InstrumentId,
        /// Side.
        side: Side,
        /// Order id.
        order_id: OrderId,
        /// Quantity removed.
        removed: Qty,
        /// Open quantity left.
        leaves: Qty,
    },
    /// An order left the book without trading.
    DeleteOrder {
        /// Sequence number.
        md_seq: u64,
        /// Instrument.
        instrument: InstrumentId,
        /// Side.
        side: Side,
        /// Order id.
        order_id: OrderId,
    },
    /// A resting order traded.
    Execution {
        /// Sequence number.
        md_seq: u64,
        /// Instrument.
        instrument: InstrumentId,
        /// Side of the resting order.
        side: Side,
        /// Order id.
        order_id: OrderId,
        /// Price.
        price: Price,
        /// Quantity.
        qty: Qty,
        /// Open quantity left.
        leaves: Qty,
    },
    /// A trade.
    Trade {
        /// Sequence number.
        md_seq: u64,
        /// Instrument.
        instrument: InstrumentId,
        /// The aggressor's side.
        aggressor: Side,
        /// Match id.
        match_id: u64,
        /// Price.
        price: Price,
        /// Quantity.
        qty: Qty,
    },
    /// Heartbeat.
    Heartbeat {
        /// Sequence number of the last update.
        md_seq: u64,
    },
}

impl Layout for MdMsg {
    /// The layout of each market-data message.
    ///
    /// # Errors
    /// Reading: the first field out of range.
    #[inline]
    fn walk<W: Walk>(&mut self, w: &mut W) -> Result<(), W::Error> {
        match self {
            MdMsg::InstrumentDefinition { md_seq, instrument, symbol, tick, lot } => {
                w.field(md_seq, "md seq")?;
                w.field(instrument, "instrument")?;
                w.field(symbol, "symbol")?;
                w.field(&mut tick.0, "tick mantissa")?;
                w.field(&mut lot.0, "lot mantissa")?;
                w.field(&mut tick.1, "tick scale")?;
                w.field(&mut lot.1, "lot scale")?;
                w.zeros(2, "padding")
            }
            MdMsg::SnapshotBegin { md_seq, instrument, count } => {
                w.field(md_seq, "md seq")?;
                w.field(instrument, "instrument")?;
                w.zeros(4, "padding")?;
                w.field(count, "count")
            }
            MdMsg::SnapshotEnd { md_seq, instrument } => {
                w.field(md_seq, "md seq")?;
                w.field(instrument, "instrument")?;
                w.zeros(4, "padding")
            }
            MdMsg::Order { add: _, md_seq, instrument, side, order_id, price, qty } => {
                order_head(w, md_seq, instrument, side, order_id)?;
                w.field(price, "price")?;
                w.field(qty, "qty")
            }
            MdMsg::ReduceOrder { md_seq, instrument, side, order_id, removed, leaves } => {
                order_head(w, md_seq, instrument, side, order_id)?;
                w.field(removed, "removed")?;
                w.field(leaves, "leaves")
            }
            MdMsg::DeleteOrder { md_seq, instrument, side, order_id } => {
                order_head(w, md_seq, instrument, side, order_id)
            }
            MdMsg::Execution { md_seq, instrument, side, order_id, price, qty, leaves } => {
                order_head(w, md_seq, instrument, side, order_id)?;
                w.field(price, "price")?;
                w.field(qty, "qty")?;
                w.field(leaves, "leaves")
            }
            MdMsg::Trade { md_seq, instrument, aggressor, match_id, price, qty } => {
                w.field(md_seq, "md seq")?;
                w.field(instrument, "instrument")?;
                w.field(aggressor, "side")?;
                w.zeros(3, "padding")?;
                w.field(match_id, "id")?;
                w.field(price, "price")?;
                w.field(qty, "qty")
            }
            MdMsg::Heartbeat { md_seq } => w.field(md_seq, "md seq"),
        }
    }
}

impl MdMsg {
    /// Its template.
    #[inline]
    pub(crate) const fn template(&self) -> MdTemplate {
        match self {
            MdMsg::InstrumentDefinition { .. } => MdTemplate::InstrumentDefinition,
            MdMsg::SnapshotBegin { .. } => MdTemplate::SnapshotBegin,
            MdMsg::Order { add: false, .. } => MdTemplate::SnapshotOrder,
            MdMsg::SnapshotEnd { .. } => MdTemplate::SnapshotEnd,
            MdMsg::Order { add: true, .. } => MdTemplate::AddOrder,
            MdMsg::ReduceOrder { .. } => MdTemplate::ReduceOrder,
            MdMsg::DeleteOrder { .. } => MdTemplate::DeleteOrder,
            MdMsg::Execution { .. } => MdTemplate::Execution,
            MdMsg::Trade { .. } => MdTemplate::Trade,
            MdMsg::Heartbeat { .. } => MdTemplate::Heartbeat,
        }
    }

    /// The message of `template` with every field zero: what its block is read into.
    #[inline(always)]
    pub(crate) fn blank(template: MdTemplate) -> MdMsg {
        let (md_seq, instrument, side, order_id, price, qty) = (0, zero(), zero(), zero(), zero(), zero());
        let order = |add| MdMsg::Order { add, md_seq, instrument, side, order_id, price, qty };
        match template {
            MdTemplate::InstrumentDefinition => {
                MdMsg::InstrumentDefinition { md_seq, instrument, symbol: [0; 16], tick: (0, 0), lot: (0, 0) }
            }
            MdTemplate::SnapshotBegin => MdMsg::SnapshotBegin { md_seq, instrument, count: 0 },
            MdTemplate::SnapshotOrder => order(false),
            MdTemplate::SnapshotEnd => MdMsg::SnapshotEnd { md_seq, instrument },
            MdTemplate::AddOrder => order(true),
            MdTemplate::ReduceOrder => {
                MdMsg::ReduceOrder { md_seq, instrument, side, order_id, removed: qty, leaves: qty }
            }
            MdTemplate::DeleteOrder => MdMsg::DeleteOrder { md_seq, instrument, side, order_id },
            MdTemplate::Execution => MdMsg::Execution { md_seq, instrument, side, order_id, price, qty, leaves: qty },
            MdTemplate::Trade => MdMsg::Trade { md_seq, instrument, aggressor: side, match_id: 0, price, qty },
            MdTemplate::Heartbeat => MdMsg::Heartbeat { md_seq },
        }
    }
}

/// The 24 bytes an order's messages start with: md_seq, instrument, side, padding, order id.
#[inline(always)]
fn order_head<W: Walk>(
    w: &mut W,
    md_seq: &mut u64,
    instrument: &mut InstrumentId,
    side: &mut Side,
    order_id: &mut OrderId,
) -> Result<(), W::Error> {
    w.field(md_seq, "md seq")?;
    w.field(instrument, "instrument")?;
    w.field(side, "side")?;
    w.zeros(3, "padding")?;
    w.field(order_id, "id")
}
