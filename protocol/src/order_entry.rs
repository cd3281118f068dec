//! The order-entry messages (docs/PROTOCOL.md, "Order entry"), and each one's layout.
//!
//! A message's layout is its arm of `walk`: the fields in wire order, with their padding,
//! written once and run by encoding, decoding and measuring ([`crate::layout`]). `template`
//! and `blank` map each message to its template id and back.
//!
//! | direction | messages |
//! |---|---|
//! | client → server | [`ClientMsg`]: `Logon`, `Heartbeat`, `Logout`, `Replay`, `NewOrder`, `Amend`, `Cancel`, `MassCancel`, `Withdraw` |
//! | server → client | [`ServerMsg`]: `LogonAck`, `LogonReject`, `Heartbeat`, `Logout`, `ReplayComplete`, and the execution [`Report`]s behind a [`ReportHeader`] |

use l2x_types::{
    Amount, ClientOrderId, InstrumentId, OrderId, OrderType, Price, Qty, Side, StpMode, TimeInForce, Timestamp,
};

use crate::codes::wire_codes;
use crate::layout::{Layout, Walk, zero};
use crate::template::{ClientTemplate, ServerTemplate};

/// Logon: authenticate a key and open a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Logon {
    /// API key id.
    pub key_id: u64,
    /// Client clock, ns.
    pub timestamp_ns: u64,
    /// Never reused within a minute for this key.
    pub nonce: u64,
    /// HMAC-SHA256 over the key, timestamp and nonce.
    pub signature: [u8; 32],
    /// Heartbeat interval the client asks for.
    pub heartbeat_ms: u32,
    /// Cancel this session's orders when it disconnects.
    pub cancel_on_disconnect: bool,
    /// Replay reports from this sequence number (0: none).
    pub resume_from: u64,
}

/// A new order on the wire (the account is the session's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireOrder {
    /// Client order id.
    pub cid: ClientOrderId,
    /// Instrument id.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Limit or market.
    pub order_type: OrderType,
    /// Time in force.
    pub tif: TimeInForce,
    /// Self-trade prevention.
    pub stp: StpMode,
    /// Post-only.
    pub post_only: bool,
    /// Reduce-only.
    pub reduce_only: bool,
    /// Limit price, ticks.
    pub price: Option<Price>,
    /// Quantity, lots.
    pub qty: Qty,
    /// GTD expiry.
    pub expire_ts: Option<Timestamp>,
}

impl WireOrder {
    /// A plain GTC limit order (no flags, self-trade prevention `cancel_taker`, no expiry):
    /// the base the other kinds are written from, `WireOrder { tif, ..WireOrder::limit(…) }`.
    pub fn limit(cid: ClientOrderId, instrument: InstrumentId, side: Side, price: Price, qty: Qty) -> WireOrder {
        WireOrder {
            cid,
            instrument,
            side,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            stp: StpMode::CancelTaker,
            post_only: false,
            reduce_only: false,
            price: Some(price),
            qty,
            expire_ts: None,
        }
    }
}

/// An amend on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireAmend {
    /// Client order id.
    pub cid: ClientOrderId,
    /// The order's instrument.
    pub instrument: InstrumentId,
    /// New price.
    pub price: Option<Price>,
    /// New open quantity.
    pub qty: Option<Qty>,
}

/// Client → server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMsg {
    /// Logon.
    Logon(Logon),
    /// Heartbeat.
    Heartbeat,
    /// Logout.
    Logout {
        /// Reason code.
        reason: u16,
    },
    /// Replay reports from a sequence number.
    Replay {
        /// First sequence number wanted.
        from_seq: u64,
    },
    /// New order.
    NewOrder(WireOrder),
    /// Amend.
    Amend(WireAmend),
    /// Cancel.
    Cancel {
        /// Client order id.
        cid: ClientOrderId,
    },
    /// Mass cancel of the session's account.
    MassCancel {
        /// Only this instrument.
        instrument: Option<InstrumentId>,
        /// Only this side.
        side: Option<Side>,
    },
    /// Withdraw collateral from the session's account: answered `Withdrawn` or `Rejected`
    /// (cid = `request_id`); paid on L1 once the batch that lists it is committed.
    Withdraw {
        /// The client's id for the request, echoed in the answer.
        request_id: u64,
        /// The amount, micro-USDC (the engine refuses one that is not positive).
        amount: Amount,
    },
}

wire_codes! {
    /// Maker or taker.
    pub enum Liquidity: u8 {
        /// The order was resting.
        Maker = 0 => "maker",
        /// The order was incoming.
        Taker = 1 => "taker",
    }
}

/// The 32 bytes every execution report starts with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportHeader {
    /// This key's report sequence number.
    pub seq: u64,
    /// When the gateway read the request (0 if none caused this report).
    pub gateway_in_ns: u64,
    /// The command's sequenced time.
    pub engine_in_ns: u64,
    /// When the gateway received the engine's result.
    pub engine_out_ns: u64,
}

/// An execution report's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// Accepted.
    Accepted {
        /// Client order id.
        cid: ClientOrderId,
        /// Order id.
        order_id: OrderId,
        /// Instrument.
        instrument: InstrumentId,
        /// Side.
        side: Side,
        /// Limit price (a market order's protection price).
        price: Price,
        /// Quantity.
        qty: Qty,
    },
    /// Rejected.
    Rejected {
        /// Client order id (0 if none).
        cid: ClientOrderId,
        /// Reject code.
        reason: u16,
        /// For `throttled`: when to try again.
        retry_after_ms: u32,
    },
    /// Amended.
    Amended {
        /// Client order id.
        cid: ClientOrderId,
        /// Order id.
        order_id: OrderId,
        /// New price.
        price: Price,
        /// New open quantity.
        qty: Qty,
        /// Queue priority kept.
        priority_kept: bool,
    },
    /// Cancelled.
    Cancelled {
        /// Client order id.
        cid: ClientOrderId,
        /// Order id.
        order_id: OrderId,
        /// Quantity cancelled.
        qty: Qty,
        /// Open quantity left.
        leaves: Qty,
        /// Cancel reason code.
        reason: u8,
    },
    /// A fill.
    Fill {
        /// Client order id.
        cid: ClientOrderId,
        /// Order id.
        order_id: OrderId,
        /// Match id shared by both sides.
        match_id: u64,
        /// Price.
        price: Price,
        /// Quantity.
        qty: Qty,
        /// Open quantity left.
        leaves: Qty,
        /// Filled so far.
        cum_qty: Qty,
        /// Fee in micro-USDC (negative: rebate).
        fee: i64,
        /// Maker or taker.
        liquidity: Liquidity,
    },
    /// A withdrawal honoured: the amount left the account's collateral.
    Withdrawn {
        /// The request's id.
        request_id: u64,
        /// The amount, micro-USDC.
        amount: Amount,
        /// The account's collateral after it, micro-USDC.
        collateral: Amount,
    },
}

/// Server → client on the order-entry port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMsg {
    /// Logon accepted.
    LogonAck {
        /// Session id.
        session_id: u64,
        /// Sequence number of the next new report.
        next_seq: u64,
        /// Heartbeat interval.
        heartbeat_ms: u32,
        /// New orders and amends per second.
        order_rate: u32,
        /// Their burst.
        order_burst: u32,
        /// Cancels per second.
        cancel_rate: u32,
        /// Their burst.
        cancel_burst: u32,
    },
    /// Logon refused.
    LogonReject {
        /// Reason code.
        reason: u16,
    },
    /// Heartbeat.
    Heartbeat,
    /// Logout.
    Logout {
        /// Reason code.
        reason: u16,
    },
    /// A replay is done.
    ReplayComplete {
        /// First replayed sequence number (0: none).
        first: u64,
        /// Last replayed sequence number (0: none).
        last: u64,
    },
    /// An execution report.
    Report {
        /// Its 32-byte header.
        header: ReportHeader,
        /// The report.
        report: Report,
        /// Sent again by a replay.
        possible_duplicate: bool,
    },
}

/// The limits of a session, announced in its `LogonAck`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// New orders and amends per second.
    pub order_rate: u32,
    /// Their burst.
    pub order_burst: u32,
    /// Cancels and mass cancels per second.
    pub cancel_rate: u32,
    /// Their burst.
    pub cancel_burst: u32,
}

impl Default for Limits {
    /// 5,000 orders/s with a burst of 1,000; cancels twice that.
    fn default() -> Limits {
        Limits { order_rate: 5_000, order_burst: 1_000, cancel_rate: 10_000, cancel_burst: 2_000 }
    }
}

impl Layout for ClientMsg {
    /// The layout of each client message: its block's fields in wire order (a message that
    /// is a struct of its own has its layout in its own `Layout`).
    ///
    /// # Errors
    /// Reading: the first field out of range.
    #[inline]
    fn walk<W: Walk>(&mut self, w: &mut W) -> Result<(), W::Error> {
        match self {
            ClientMsg::Logon(l) => l.walk(w),
            ClientMsg::Heartbeat => Ok(()),
            ClientMsg::Logout { reason } => {
                w.field(reason, "reason")?;
                w.zeros(6, "padding")
            }
            ClientMsg::Replay { from_seq } => w.field(from_seq, "from seq"),
            ClientMsg::NewOrder(o) => o.walk(w),
            ClientMsg::Amend(a) => a.walk(w),
            ClientMsg::Cancel { cid } => w.field(cid, "cid"),
            ClientMsg::MassCancel { instrument, side } => {
                // Both optional fields are read first and checked after the padding: the
                // instrument comes before the flags that announce it.
                let mut raw_instrument = instrument.unwrap_or(zero());
                w.field(&mut raw_instrument, "instrument")?;
                let [has_instrument, has_side] =
                    w.flags([instrument.is_some(), side.is_some()], "mass cancel flags")?;
                let side_at = w.at();
                let mut side_code = side.map_or(0, Side::code);
                w.field(&mut side_code, "side")?;
                w.zeros(2, "padding")?;
                w.check(has_instrument || raw_instrument == zero(), 0, "instrument without its flag")?;
                let known_side = Side::from_code(side_code);
                w.check(!has_side || known_side.is_some(), side_at, "side")?;
                w.check(has_side || side_code == 0, side_at, "side without its flag")?;
                *instrument = has_instrument.then_some(raw_instrument);
                *side = known_side.filter(|_| has_side);
                Ok(())
            }
            ClientMsg::Withdraw { request_id, amount } => {
                w.field(request_id, "request id")?;
                w.field(amount, "amount")
            }
        }
    }
}

impl ClientMsg {
    /// Its template.
    #[inline]
    pub(crate) const fn template(&self) -> ClientTemplate {
        match self {
            ClientMsg::Logon(_) => ClientTemplate::Logon,
            ClientMsg::Heartbeat => ClientTemplate::Heartbeat,
            ClientMsg::Logout { .. } => ClientTemplate::Logout,
            ClientMsg::Replay { .. } => ClientTemplate::Replay,
            ClientMsg::NewOrder(_) => ClientTemplate::NewOrder,
            ClientMsg::Amend(_) => ClientTemplate::Amend,
            ClientMsg::Cancel { .. } => ClientTemplate::Cancel,
            ClientMsg::MassCancel { .. } => ClientTemplate::MassCancel,
            ClientMsg::Withdraw { .. } => ClientTemplate::Withdraw,
        }
    }

    /// The message of `template` with every field zero: what its block is read into.
    #[inline(always)]
    pub(crate) fn blank(template: ClientTemplate) -> ClientMsg {
        match template {
            ClientTemplate::Logon => ClientMsg::Logon(Logon::default()),
            ClientTemplate::Heartbeat => ClientMsg::Heartbeat,
            ClientTemplate::Logout => ClientMsg::Logout { reason: 0 },
            ClientTemplate::Replay => ClientMsg::Replay { from_seq: 0 },
            ClientTemplate::NewOrder => ClientMsg::NewOrder(WireOrder::limit(zero(), zero(), zero(), zero(), zero())),
            ClientTemplate::Amend => ClientMsg::Amend(WireAmend::default()),
            ClientTemplate::Cancel => ClientMsg::Cancel { cid: zero() },
            ClientTemplate::MassCancel => ClientMsg::MassCancel { instrument: None, side: None },
            ClientTemplate::Withdraw => ClientMsg::Withdraw { request_id: 0, amount: zero() },
        }
    }
}

impl Layout for Logon {
    /// The layout of `Logon`.
    #[inline]
    fn walk<W: Walk>(&mut self, w: &mut W) -> Result<(), W::Error> {
        w.field(&mut self.key_id, "key id")?;
        w.field(&mut self.timestamp_ns, "timestamp")?;
        w.field(&mut self.nonce, "nonce")?;
        w.field(&mut self.signature, "signature")?;
        w.field(&mut self.heartbeat_ms, "heartbeat")?;
        [self.cancel_on_disconnect] = w.flags([self.cancel_on_disconnect], "logon flags")?;
        w.zeros(3, "padding")?;
        w.field(&mut self.resume_from, "resume from")
    }
}

impl Layout for WireAmend {
    /// The layout of `Amend`.
    #[inline]
    fn walk<W: Walk>(&mut self, w: &mut W) -> Result<(), W::Error> {
        w.field(&mut self.cid, "cid")?;
        w.field(&mut self.instrument, "instrument")?;
        let [has_price, has_qty] = w.flags([self.price.is_some(), self.qty.is_some()], "amend flags")?;
        w.zeros(3, "padding")?;
        w.announced(&mut self.price, has_price, "price")?;
        w.announced(&mut self.qty, has_qty, "qty")
    }
}

impl Layout for WireOrder {
    /// The layout of `NewOrder`.
    #[inline]
    fn walk<W: Walk>(&mut self, w: &mut W) -> Result<(), W::Error> {
        w.field(&mut self.cid, "cid")?;
        w.field(&mut self.instrument, "instrument")?;
        w.field(&mut self.side, "side")?;
        w.field(&mut self.order_type, "order type")?;
        w.field(&mut self.tif, "time in force")?;
        w.field(&mut self.stp, "stp")?;
        let announced = [self.post_only, self.reduce_only, self.price.is_some(), self.expire_ts.is_some()];
        let [post_only, reduce_only, has_price, has_expiry] = w.flags(announced, "order flags")?;
        (self.post_only, self.reduce_only) = (post_only, reduce_only);
        w.zeros(7, "padding")?;
        w.announced(&mut self.price, has_price, "price")?;
        w.field(&mut self.qty, "qty")?;
        w.announced(&mut self.expire_ts, has_expiry, "expire_ts")
    }
}

impl Layout for ReportHeader {
    /// The layout of the 32 bytes every report starts with.
    #[inline]
    fn walk<W: Walk>(&mut self, w: &mut W) -> Result<(), W::Error> {
        w.field(&mut self.seq, "seq")?;
        w.field(&mut self.gateway_in_ns, "gateway in")?;
        w.field(&mut self.engine_in_ns, "engine in")?;
        w.field(&mut self.engine_out_ns, "engine out")
    }
}

impl Layout for Report {
    /// The layout of each report after its header.
    #[inline]
    fn walk<W: Walk>(&mut self, w: &mut W) -> Result<(), W::Error> {
        match self {
            Report::Accepted { cid, order_id, instrument, side, price, qty } => {
                w.field(cid, "cid")?;
                w.field(order_id, "order id")?;
                w.field(instrument, "instrument")?;
                w.field(side, "side")?;
                w.zeros(3, "padding")?;
                w.field(price, "price")?;
                w.field(qty, "qty")?;
                w.zeros(8, "padding")
            }
            Report::Rejected { cid, reason, retry_after_ms } => {
                w.field(cid, "cid")?;
                w.field(reason, "reason")?;
                w.zeros(2, "padding")?;
                w.field(retry_after_ms, "retry after")
            }
            Report::Amended { cid, order_id, price, qty, priority_kept } => {
                w.field(cid, "cid")?;
                w.field(order_id, "order id")?;
                w.field(price, "price")?;
                w.field(qty, "qty")?;
                w.field(priority_kept, "priority kept")?;
                w.zeros(7, "padding")
            }
            Report::Cancelled { cid, order_id, qty, leaves, reason } => {
                w.field(cid, "cid")?;
                w.field(order_id, "order id")?;
                w.field(qty, "qty")?;
                w.field(leaves, "leaves")?;
                w.field(reason, "reason")?;
                w.zeros(7, "padding")
            }
            Report::Fill { cid, order_id, match_id, price, qty, leaves, cum_qty, fee, liquidity } => {
                w.field(cid, "cid")?;
                w.field(order_id, "order id")?;
                w.field(match_id, "match id")?;
                w.field(price, "price")?;
                w.field(qty, "qty")?;
                w.field(leaves, "leaves")?;
                w.field(cum_qty, "cum qty")?;
                w.field(fee, "fee")?;
                w.field(liquidity, "liquidity")?;
                w.zeros(7, "padding")
            }
            Report::Withdrawn { request_id, amount, collateral } => {
                w.field(request_id, "request id")?;
                w.field(amount, "amount")?;
                w.field(collateral, "collateral")?;
                w.zeros(8, "padding")
            }
        }
    }
}

impl Report {
    /// Its template.
    #[inline]
    const fn template(&self) -> ServerTemplate {
        match self {
            Report::Accepted { .. } => ServerTemplate::Accepted,
            Report::Rejected { .. } => ServerTemplate::Rejected,
            Report::Amended { .. } => ServerTemplate::Amended,
            Report::Cancelled { .. } => ServerTemplate::Cancelled,
            Report::Fill { .. } => ServerTemplate::Fill,
            Report::Withdrawn { .. } => ServerTemplate::Withdrawn,
        }
    }
}

impl Layout for ServerMsg {
    /// The layout of each server message (order-entry port).
    ///
    /// # Errors
    /// Reading: the first field out of range.
    #[inline]
    fn walk<W: Walk>(&mut self, w: &mut W) -> Result<(), W::Error> {
        match self {
            ServerMsg::LogonAck {
                session_id,
                next_seq,
                heartbeat_ms,
                order_rate,
                order_burst,
                cancel_rate,
                cancel_burst,
            } => {
                w.field(session_id, "session id")?;
                w.field(next_seq, "next seq")?;
                w.field(heartbeat_ms, "heartbeat")?;
                w.field(order_rate, "order rate")?;
                w.field(order_burst, "order burst")?;
                w.field(cancel_rate, "cancel rate")?;
                w.field(cancel_burst, "cancel burst")?;
                w.zeros(4, "padding")
            }
            ServerMsg::LogonReject { reason } | ServerMsg::Logout { reason } => {
                w.field(reason, "reason")?;
                w.zeros(6, "padding")
            }
            ServerMsg::Heartbeat => Ok(()),
            ServerMsg::ReplayComplete { first, last } => {
                w.field(first, "first")?;
                w.field(last, "last")
            }
            // The duplicate flag is the frame header's, not the block's.
            ServerMsg::Report { header, report, possible_duplicate: _ } => {
                header.walk(w)?;
                report.walk(w)
            }
        }
    }
}

impl ServerMsg {
    /// Its template.
    #[inline]
    pub(crate) const fn template(&self) -> ServerTemplate {
        match self {
            ServerMsg::LogonAck { .. } => ServerTemplate::LogonAck,
            ServerMsg::LogonReject { .. } => ServerTemplate::LogonReject,
            ServerMsg::Heartbeat => ServerTemplate::Heartbeat,
            ServerMsg::Logout { .. } => ServerTemplate::Logout,
            ServerMsg::ReplayComplete { .. } => ServerTemplate::ReplayComplete,
            ServerMsg::Report { report, .. } => report.template(),
        }
    }

    /// The message of `template` with every field zero: what its block is read into.
    #[inline(always)]
    pub(crate) fn blank(template: ServerTemplate) -> ServerMsg {
        let report = |report| ServerMsg::Report { header: ReportHeader::default(), report, possible_duplicate: false };
        match template {
            ServerTemplate::LogonAck => ServerMsg::LogonAck {
                session_id: 0,
                next_seq: 0,
                heartbeat_ms: 0,
                order_rate: 0,
                order_burst: 0,
                cancel_rate: 0,
                cancel_burst: 0,
            },
            ServerTemplate::LogonReject => ServerMsg::LogonReject { reason: 0 },
            ServerTemplate::Heartbeat => ServerMsg::Heartbeat,
            ServerTemplate::Logout => ServerMsg::Logout { reason: 0 },
            ServerTemplate::ReplayComplete => ServerMsg::ReplayComplete { first: 0, last: 0 },
            ServerTemplate::Accepted => report(Report::Accepted {
                cid: zero(),
                order_id: zero(),
                instrument: zero(),
                side: zero(),
                price: zero(),
                qty: zero(),
            }),
            ServerTemplate::Rejected => report(Report::Rejected { cid: zero(), reason: 0, retry_after_ms: 0 }),
            ServerTemplate::Amended => report(Report::Amended {
                cid: zero(),
                order_id: zero(),
                price: zero(),
                qty: zero(),
                priority_kept: false,
            }),
            ServerTemplate::Cancelled => {
                report(Report::Cancelled { cid: zero(), order_id: zero(), qty: zero(), leaves: zero(), reason: 0 })
            }
            ServerTemplate::Fill => report(Report::Fill {
                cid: zero(),
                order_id: zero(),
                match_id: 0,
                price: zero(),
                qty: zero(),
                leaves: zero(),
                cum_qty: zero(),
                fee: 0,
                liquidity: zero(),
            }),
            ServerTemplate::Withdrawn => {
                report(Report::Withdrawn { request_id: 0, amount: zero(), collateral: zero() })
            }
        }
    }
}
