//! The wire codec of docs/PROTOCOL.md: frames, and every message of order entry and market
//! data as a fixed little-endian block.
//!
//! ```text
//!  bytes from the socket ──▶ FrameReader ──▶ frame ──▶ decode_client / decode_server / decode_md
//!                            (u16 len, ≤ 1024)          (header: template, version, flags;
//!                                                        block: exact length, every field checked)
//!  message ──▶ encode_* ──▶ len + header + block
//! ```
//!
//! Decoding is strict: the block length must be the template's exactly, enum codes and flags
//! must be known, padding and unannounced fields must be zero. Errors are typed
//! ([`WireError`], [`FramingError`]) and map to the protocol's reject and logout codes; no
//! input makes this module panic (a property test feeds it arbitrary bytes).

use l2x_types::bytes::{DecodeError, Reader};
use l2x_types::{ClientOrderId, InstrumentId, OrderId, OrderType, Price, Qty, Side, StpMode, TimeInForce, Timestamp};

use crate::codes::{LogoutReason, SessionReject};

/// Schema version of every message this codec writes and reads.
pub const VERSION: u8 = 1;
/// Largest frame, in bytes after the length field.
pub const MAX_FRAME: usize = 1024;
/// Message header: template (u16), version (u8), flags (u8).
pub const HEADER: usize = 4;
/// Header flag: sent again by a replay.
pub const FLAG_POSSIBLE_DUPLICATE: u8 = 1;
/// Header flag (market data): the last update of one command.
pub const FLAG_END_OF_EVENT: u8 = 2;

/// Template ids (stable: part of the protocol).
pub mod template {
    /// Client: logon.
    pub const LOGON: u16 = 1;
    /// Client: heartbeat.
    pub const HEARTBEAT: u16 = 2;
    /// Client: logout.
    pub const LOGOUT: u16 = 3;
    /// Client: replay request.
    pub const REPLAY: u16 = 4;
    /// Client: new order.
    pub const NEW_ORDER: u16 = 10;
    /// Client: amend.
    pub const AMEND: u16 = 11;
    /// Client: cancel.
    pub const CANCEL: u16 = 12;
    /// Client: mass cancel.
    pub const MASS_CANCEL: u16 = 13;
    /// Server: logon accepted.
    pub const LOGON_ACK: u16 = 101;
    /// Server: logon refused.
    pub const LOGON_REJECT: u16 = 102;
    /// Server: heartbeat.
    pub const SERVER_HEARTBEAT: u16 = 103;
    /// Server: logout.
    pub const SERVER_LOGOUT: u16 = 104;
    /// Server: replay done.
    pub const REPLAY_COMPLETE: u16 = 105;
    /// Report: accepted.
    pub const ACCEPTED: u16 = 110;
    /// Report: rejected.
    pub const REJECTED: u16 = 111;
    /// Report: amended.
    pub const AMENDED: u16 = 112;
    /// Report: cancelled.
    pub const CANCELLED: u16 = 113;
    /// Report: fill.
    pub const FILL: u16 = 114;
    /// Market data: instrument definition.
    pub const INSTRUMENT: u16 = 201;
    /// Market data: snapshot begins.
    pub const SNAPSHOT_BEGIN: u16 = 202;
    /// Market data: one resting order of a snapshot.
    pub const SNAPSHOT_ORDER: u16 = 203;
    /// Market data: snapshot ends.
    pub const SNAPSHOT_END: u16 = 204;
    /// Market data: an order rested.
    pub const ADD_ORDER: u16 = 210;
    /// Market data: an order shrank without trading.
    pub const REDUCE_ORDER: u16 = 211;
    /// Market data: an order left the book without trading.
    pub const DELETE_ORDER: u16 = 212;
    /// Market data: a resting order traded.
    pub const EXECUTION: u16 = 213;
    /// Market data: a trade.
    pub const TRADE: u16 = 214;
    /// Market data: heartbeat.
    pub const MD_HEARTBEAT: u16 = 215;
}

// ----- messages ----------------------------------------------------------------------------

/// Logon: authenticate a key and open a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

/// Maker or taker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Liquidity {
    /// The order was resting.
    Maker = 0,
    /// The order was incoming.
    Taker = 1,
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

// ----- errors ------------------------------------------------------------------------------

/// A frame whose contents are wrong. The session goes on (the frame is answered with a
/// `Rejected` report carrying [`WireError::reject_code`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// No such template.
    #[error("unknown template {0}")]
    UnknownTemplate(u16),
    /// A schema version this side does not speak.
    #[error("template {template}: unsupported version {version}")]
    UnsupportedVersion {
        /// The template.
        template: u16,
        /// The version sent.
        version: u8,
    },
    /// A block of the wrong length for its template.
    #[error("template {template}: block of {got} bytes, expected {expected}")]
    BadLength {
        /// The template.
        template: u16,
        /// Its block length.
        expected: usize,
        /// What came.
        got: usize,
    },
    /// A field out of range.
    #[error("template {template}: {source}")]
    BadField {
        /// The template.
        template: u16,
        /// The client order id, when the template has one.
        cid: Option<u64>,
        /// Which field, where.
        source: DecodeError,
    },
}

impl WireError {
    /// The protocol's reject reason for this error (docs/PROTOCOL.md, 403–406).
    pub const fn reject(&self) -> SessionReject {
        match self {
            WireError::UnknownTemplate(_) => SessionReject::UnknownTemplate,
            WireError::UnsupportedVersion { .. } => SessionReject::UnsupportedVersion,
            WireError::BadLength { .. } => SessionReject::BadLength,
            WireError::BadField { .. } => SessionReject::BadField,
        }
    }

    /// The protocol's reject code for this error (docs/PROTOCOL.md, 403–406).
    pub fn reject_code(&self) -> u16 {
        self.reject().code()
    }

    /// The client order id the bad frame carried, if it could be read.
    pub fn cid(&self) -> Option<u64> {
        match self {
            WireError::BadField { cid, .. } => *cid,
            _ => None,
        }
    }
}

/// The byte stream itself is broken: the connection must close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A frame shorter than its header.
    #[error("frame of {0} bytes is shorter than the 4-byte header")]
    TooShort(usize),
    /// A frame over [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the 1024-byte limit")]
    TooLarge(usize),
}

// ----- framing -----------------------------------------------------------------------------

impl FramingError {
    /// The reason of the `Logout` that answers it (the connection then closes).
    pub const fn logout_reason(self) -> LogoutReason {
        match self {
            FramingError::TooShort(_) => LogoutReason::Malformed,
            FramingError::TooLarge(_) => LogoutReason::FrameTooLarge,
        }
    }
}

/// Reassembles frames from a byte stream split at arbitrary points.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
}

impl FrameReader {
    /// An empty reader.
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Appends bytes read from the socket.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame (header and block, without the length), if one has arrived.
    ///
    /// # Errors
    /// [`FramingError`] when the stream is broken; the reader must not be used after.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FramingError> {
        let avail = &self.buf[self.start..];
        if avail.len() < 2 {
            return Ok(None);
        }
        let len = usize::from(u16::from_le_bytes([avail[0], avail[1]]));
        if len < HEADER {
            return Err(FramingError::TooShort(len));
        }
        if len > MAX_FRAME {
            return Err(FramingError::TooLarge(len));
        }
        if avail.len() < 2 + len {
            return Ok(None);
        }
        let at = self.start + 2;
        self.start += 2 + len;
        Ok(Some(&self.buf[at..at + len]))
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

// ----- encoding ----------------------------------------------------------------------------

struct Block<'a> {
    out: &'a mut Vec<u8>,
}

impl Block<'_> {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.out.extend_from_slice(v);
        self
    }
    fn zero(&mut self, n: usize) -> &mut Self {
        self.out.resize(self.out.len() + n, 0);
        self
    }
}

/// Writes a frame: length, header, then whatever `body` writes.
fn frame(out: &mut Vec<u8>, template: u16, flags: u8, body: impl FnOnce(&mut Block<'_>)) {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&template.to_le_bytes());
    out.push(VERSION);
    out.push(flags);
    body(&mut Block { out });
    let len = out.len() - at - 2;
    #[allow(clippy::cast_possible_truncation, reason = "every block is far below 64 KiB")]
    out[at..at + 2].copy_from_slice(&(len as u16).to_le_bytes());
}

/// Appends a client message as one frame.
pub fn encode_client(msg: &ClientMsg, out: &mut Vec<u8>) {
    match msg {
        ClientMsg::Logon(l) => frame(out, template::LOGON, 0, |b| {
            b.u64(l.key_id).u64(l.timestamp_ns).u64(l.nonce).bytes(&l.signature).u32(l.heartbeat_ms);
            b.u8(u8::from(l.cancel_on_disconnect)).zero(3).u64(l.resume_from);
        }),
        ClientMsg::Heartbeat => frame(out, template::HEARTBEAT, 0, |_| {}),
        ClientMsg::Logout { reason } => frame(out, template::LOGOUT, 0, |b| {
            b.u16(*reason).zero(6);
        }),
        ClientMsg::Replay { from_seq } => frame(out, template::REPLAY, 0, |b| {
            b.u64(*from_seq);
        }),
        ClientMsg::NewOrder(o) => frame(out, template::NEW_ORDER, 0, |b| {
            let flags = u8::from(o.post_only)
                | u8::from(o.reduce_only) << 1
                | u8::from(o.price.is_some()) << 2
                | u8::from(o.expire_ts.is_some()) << 3;
            b.u64(o.cid.0).u32(o.instrument.0);
            b.u8(o.side.code()).u8(o.order_type.code()).u8(o.tif.code()).u8(o.stp.code());
            b.u8(flags).zero(7);
            b.i64(o.price.map_or(0, |p| p.0)).i64(o.qty.0).u64(o.expire_ts.map_or(0, |t| t.0));
        }),
        ClientMsg::Amend(a) => frame(out, template::AMEND, 0, |b| {
            b.u64(a.cid.0).u32(a.instrument.0);
            b.u8(u8::from(a.price.is_some()) | u8::from(a.qty.is_some()) << 1).zero(3);
            b.i64(a.price.map_or(0, |p| p.0)).i64(a.qty.map_or(0, |q| q.0));
        }),
        ClientMsg::Cancel { cid } => frame(out, template::CANCEL, 0, |b| {
            b.u64(cid.0);
        }),
        ClientMsg::MassCancel { instrument, side } => frame(out, template::MASS_CANCEL, 0, |b| {
            b.u32(instrument.map_or(0, |i| i.0));
            b.u8(u8::from(instrument.is_some()) | u8::from(side.is_some()) << 1);
            b.u8(side.map_or(0, Side::code)).zero(2);
        }),
    }
}

/// Appends a server message as one frame.
pub fn encode_server(msg: &ServerMsg, out: &mut Vec<u8>) {
    match msg {
        ServerMsg::LogonAck {
            session_id,
            next_seq,
            heartbeat_ms,
            order_rate,
            order_burst,
            cancel_rate,
            cancel_burst,
        } => {
            frame(out, template::LOGON_ACK, 0, |b| {
                b.u64(*session_id).u64(*next_seq).u32(*heartbeat_ms).u32(*order_rate).u32(*order_burst);
                b.u32(*cancel_rate).u32(*cancel_burst).zero(4);
            });
        }
        ServerMsg::LogonReject { reason } => frame(out, template::LOGON_REJECT, 0, |b| {
            b.u16(*reason).zero(6);
        }),
        ServerMsg::Heartbeat => frame(out, template::SERVER_HEARTBEAT, 0, |_| {}),
        ServerMsg::Logout { reason } => frame(out, template::SERVER_LOGOUT, 0, |b| {
            b.u16(*reason).zero(6);
        }),
        ServerMsg::ReplayComplete { first, last } => frame(out, template::REPLAY_COMPLETE, 0, |b| {
            b.u64(*first).u64(*last);
        }),
        ServerMsg::Report { header, report, possible_duplicate } => {
            let flags = if *possible_duplicate { FLAG_POSSIBLE_DUPLICATE } else { 0 };
            let h = |b: &mut Block<'_>| {
                b.u64(header.seq).u64(header.gateway_in_ns).u64(header.engine_in_ns).u64(header.engine_out_ns);
            };
            match report {
                Report::Accepted { cid, order_id, instrument, side, price, qty } => {
                    frame(out, template::ACCEPTED, flags, |b| {
                        h(b);
                        b.u64(cid.0).u64(order_id.0).u32(instrument.0).u8(side.code()).zero(3);
                        b.i64(price.0).i64(qty.0).zero(8);
                    });
                }
                Report::Rejected { cid, reason, retry_after_ms } => frame(out, template::REJECTED, flags, |b| {
                    h(b);
                    b.u64(cid.0).u16(*reason).zero(2).u32(*retry_after_ms);
                }),
                Report::Amended { cid, order_id, price, qty, priority_kept } => {
                    frame(out, template::AMENDED, flags, |b| {
                        h(b);
                        b.u64(cid.0).u64(order_id.0).i64(price.0).i64(qty.0).u8(u8::from(*priority_kept)).zero(7);
                    });
                }
                Report::Cancelled { cid, order_id, qty, leaves, reason } => {
                    frame(out, template::CANCELLED, flags, |b| {
                        h(b);
                        b.u64(cid.0).u64(order_id.0).i64(qty.0).i64(leaves.0).u8(*reason).zero(7);
                    });
                }
                Report::Fill { cid, order_id, match_id, price, qty, leaves, cum_qty, fee, liquidity } => {
                    frame(out, template::FILL, flags, |b| {
                        h(b);
                        b.u64(cid.0).u64(order_id.0).u64(*match_id).i64(price.0).i64(qty.0);
                        b.i64(leaves.0).i64(cum_qty.0).i64(*fee).u8(*liquidity as u8).zero(7);
                    });
                }
            }
        }
    }
}

/// Appends a market-data message as one frame (`end_of_event` sets the header flag).
pub fn encode_md(msg: &MdMsg, end_of_event: bool, out: &mut Vec<u8>) {
    let flags = if end_of_event { FLAG_END_OF_EVENT } else { 0 };
    match msg {
        MdMsg::InstrumentDefinition { md_seq, instrument, symbol, tick, lot } => {
            frame(out, template::INSTRUMENT, flags, |b| {
                b.u64(*md_seq).u32(instrument.0).bytes(symbol).i64(tick.0).i64(lot.0).u8(tick.1).u8(lot.1).zero(2);
            });
        }
        MdMsg::SnapshotBegin { md_seq, instrument, count } => frame(out, template::SNAPSHOT_BEGIN, flags, |b| {
            b.u64(*md_seq).u32(instrument.0).zero(4).u64(*count);
        }),
        MdMsg::Order { add, md_seq, instrument, side, order_id, price, qty } => {
            let t = if *add { template::ADD_ORDER } else { template::SNAPSHOT_ORDER };
            frame(out, t, flags, |b| {
                b.u64(*md_seq).u32(instrument.0).u8(side.code()).zero(3).u64(order_id.0).i64(price.0).i64(qty.0);
            });
        }
        MdMsg::SnapshotEnd { md_seq, instrument } => frame(out, template::SNAPSHOT_END, flags, |b| {
            b.u64(*md_seq).u32(instrument.0).zero(4);
        }),
        MdMsg::ReduceOrder { md_seq, instrument, side, order_id, removed, leaves } => {
            frame(out, template::REDUCE_ORDER, flags, |b| {
                b.u64(*md_seq).u32(instrument.0).u8(side.code()).zero(3).u64(order_id.0).i64(removed.0).i64(leaves.0);
            });
        }
        MdMsg::DeleteOrder { md_seq, instrument, side, order_id } => frame(out, template::DELETE_ORDER, flags, |b| {
            b.u64(*md_seq).u32(instrument.0).u8(side.code()).zero(3).u64(order_id.0);
        }),
        MdMsg::Execution { md_seq, instrument, side, order_id, price, qty, leaves } => {
            frame(out, template::EXECUTION, flags, |b| {
                b.u64(*md_seq).u32(instrument.0).u8(side.code()).zero(3).u64(order_id.0);
                b.i64(price.0).i64(qty.0).i64(leaves.0);
            });
        }
        MdMsg::Trade { md_seq, instrument, aggressor, match_id, price, qty } => {
            frame(out, template::TRADE, flags, |b| {
                b.u64(*md_seq).u32(instrument.0).u8(aggressor.code()).zero(3).u64(*match_id).i64(price.0).i64(qty.0);
            })
        }
        MdMsg::Heartbeat { md_seq } => frame(out, template::MD_HEARTBEAT, flags, |b| {
            b.u64(*md_seq);
        }),
    }
}

// ----- decoding ----------------------------------------------------------------------------

/// Block length of each template (None: unknown).
pub fn block_len(id: u16) -> Option<usize> {
    use template as t;
    Some(match id {
        t::LOGON => 72,
        t::HEARTBEAT | t::SERVER_HEARTBEAT => 0,
        t::LOGOUT | t::SERVER_LOGOUT | t::LOGON_REJECT | t::REPLAY | t::CANCEL | t::MASS_CANCEL | t::MD_HEARTBEAT => 8,
        t::NEW_ORDER => 48,
        t::AMEND => 32,
        t::LOGON_ACK => 40,
        t::REPLAY_COMPLETE | t::SNAPSHOT_END => 16,
        t::ACCEPTED => 80,
        t::REJECTED => 48,
        t::AMENDED | t::CANCELLED => 72,
        t::FILL => 104,
        t::INSTRUMENT => 48,
        t::SNAPSHOT_BEGIN | t::DELETE_ORDER => 24,
        t::SNAPSHOT_ORDER | t::ADD_ORDER | t::REDUCE_ORDER | t::TRADE => 40,
        t::EXECUTION => 48,
        _ => return None,
    })
}

/// Splits a frame into (template, flags, block) after checking version and block length.
fn open<'a>(frame: &'a [u8], known: &[u16]) -> Result<(u16, u8, &'a [u8]), WireError> {
    let template = u16::from_le_bytes([frame[0], frame[1]]);
    if !known.contains(&template) {
        return Err(WireError::UnknownTemplate(template));
    }
    if frame[2] != VERSION {
        return Err(WireError::UnsupportedVersion { template, version: frame[2] });
    }
    let block = &frame[HEADER..];
    let expected = block_len(template).unwrap_or(usize::MAX);
    if block.len() != expected {
        return Err(WireError::BadLength { template, expected, got: block.len() });
    }
    Ok((template, frame[3], block))
}

fn side(r: &mut Reader<'_>) -> Result<Side, DecodeError> {
    let at = r.pos();
    Side::from_code(r.u8("side")?).ok_or(DecodeError { offset: at, what: "side" })
}

fn flags(r: &mut Reader<'_>, allowed: u8, what: &'static str) -> Result<u8, DecodeError> {
    let at = r.pos();
    let f = r.u8(what)?;
    if f & !allowed != 0 {
        return Err(DecodeError { offset: at, what });
    }
    Ok(f)
}

/// A value that must be zero unless its flag is set.
fn gated(r: &mut Reader<'_>, present: bool, what: &'static str) -> Result<Option<i64>, DecodeError> {
    let at = r.pos();
    let v = r.i64(what)?;
    match (present, v) {
        (true, v) => Ok(Some(v)),
        (false, 0) => Ok(None),
        (false, _) => Err(DecodeError { offset: at, what }),
    }
}

/// Decodes a client message from a frame (header and block).
///
/// # Errors
/// [`WireError`]; the session answers it with a `Rejected` and goes on.
pub fn decode_client(frame: &[u8]) -> Result<ClientMsg, WireError> {
    use template as t;
    if frame.len() < HEADER {
        return Err(WireError::BadLength { template: 0, expected: HEADER, got: frame.len() });
    }
    let known = [t::LOGON, t::HEARTBEAT, t::LOGOUT, t::REPLAY, t::NEW_ORDER, t::AMEND, t::CANCEL, t::MASS_CANCEL];
    let (template, hflags, block) = open(frame, &known)?;
    let mut r = Reader::new(block);
    // The cid is the first field of the order templates: readable even if the rest is bad.
    let cid = matches!(template, t::NEW_ORDER | t::AMEND | t::CANCEL)
        .then(|| u64::from_le_bytes(block[..8].try_into().unwrap_or([0; 8])));
    let bad = |source: DecodeError| WireError::BadField { template, cid, source };
    if hflags != 0 {
        return Err(bad(DecodeError { offset: 0, what: "header flags must be zero" }));
    }
    let msg = (|| -> Result<ClientMsg, DecodeError> {
        Ok(match template {
            t::LOGON => {
                let key_id = r.u64("key id")?;
                let timestamp_ns = r.u64("timestamp")?;
                let nonce = r.u64("nonce")?;
                let signature = r.array::<32>("signature")?;
                let heartbeat_ms = r.u32("heartbeat")?;
                let f = flags(&mut r, 1, "logon flags")?;
                r.zeros(3, "padding")?;
                let resume_from = r.u64("resume from")?;
                ClientMsg::Logon(Logon {
                    key_id,
                    timestamp_ns,
                    nonce,
                    signature,
                    heartbeat_ms,
                    cancel_on_disconnect: f & 1 != 0,
                    resume_from,
                })
            }
            t::HEARTBEAT => ClientMsg::Heartbeat,
            t::LOGOUT => {
                let reason = r.u16("reason")?;
                r.zeros(6, "padding")?;
                ClientMsg::Logout { reason }
            }
            t::REPLAY => ClientMsg::Replay { from_seq: r.u64("from seq")? },
            t::NEW_ORDER => {
                let cid = ClientOrderId(r.u64("cid")?);
                let instrument = InstrumentId(r.u32("instrument")?);
                let side = side(&mut r)?;
                let at = r.pos();
                let order_type =
                    OrderType::from_code(r.u8("order type")?).ok_or(DecodeError { offset: at, what: "order type" })?;
                let tif = TimeInForce::from_code(r.u8("time in force")?)
                    .ok_or(DecodeError { offset: at + 1, what: "time in force" })?;
                let stp = StpMode::from_code(r.u8("stp")?).ok_or(DecodeError { offset: at + 2, what: "stp" })?;
                let f = flags(&mut r, 0b1111, "order flags")?;
                r.zeros(7, "padding")?;
                let price = gated(&mut r, f & 4 != 0, "price")?.map(Price);
                let qty = Qty(r.i64("qty")?);
                let expire = gated(&mut r, f & 8 != 0, "expire_ts")?;
                ClientMsg::NewOrder(WireOrder {
                    cid,
                    instrument,
                    side,
                    order_type,
                    tif,
                    stp,
                    post_only: f & 1 != 0,
                    reduce_only: f & 2 != 0,
                    price,
                    qty,
                    expire_ts: expire.map(|e| Timestamp(e.cast_unsigned())),
                })
            }
            t::AMEND => {
                let cid = ClientOrderId(r.u64("cid")?);
                let instrument = InstrumentId(r.u32("instrument")?);
                let f = flags(&mut r, 0b11, "amend flags")?;
                r.zeros(3, "padding")?;
                let price = gated(&mut r, f & 1 != 0, "price")?.map(Price);
                let qty = gated(&mut r, f & 2 != 0, "qty")?.map(Qty);
                ClientMsg::Amend(WireAmend { cid, instrument, price, qty })
            }
            t::CANCEL => ClientMsg::Cancel { cid: ClientOrderId(r.u64("cid")?) },
            _ => {
                let instrument = r.u32("instrument")?;
                let f = flags(&mut r, 0b11, "mass cancel flags")?;
                let at = r.pos();
                let s = r.u8("side")?;
                r.zeros(2, "padding")?;
                if f & 1 == 0 && instrument != 0 {
                    return Err(DecodeError { offset: 0, what: "instrument without its flag" });
                }
                let side = match (f & 2 != 0, s) {
                    (true, s) => Some(Side::from_code(s).ok_or(DecodeError { offset: at, what: "side" })?),
                    (false, 0) => None,
                    (false, _) => return Err(DecodeError { offset: at, what: "side without its flag" }),
                };
                ClientMsg::MassCancel { instrument: (f & 1 != 0).then_some(InstrumentId(instrument)), side }
            }
        })
    })()
    .map_err(bad)?;
    Ok(msg)
}

/// Decodes a server message (order-entry port) from a frame.
///
/// # Errors
/// [`WireError`].
pub fn decode_server(frame: &[u8]) -> Result<ServerMsg, WireError> {
    use template as t;
    if frame.len() < HEADER {
        return Err(WireError::BadLength { template: 0, expected: HEADER, got: frame.len() });
    }
    let known = [
        t::LOGON_ACK,
        t::LOGON_REJECT,
        t::SERVER_HEARTBEAT,
        t::SERVER_LOGOUT,
        t::REPLAY_COMPLETE,
        t::ACCEPTED,
        t::REJECTED,
        t::AMENDED,
        t::CANCELLED,
        t::FILL,
    ];
    let (template, hflags, block) = open(frame, &known)?;
    let bad = |source: DecodeError| WireError::BadField { template, cid: None, source };
    let mut r = Reader::new(block);
    let msg = (|| -> Result<ServerMsg, DecodeError> {
        let report = template >= t::ACCEPTED;
        if hflags & !(if report { FLAG_POSSIBLE_DUPLICATE } else { 0 }) != 0 {
            return Err(DecodeError { offset: 0, what: "header flags" });
        }
        Ok(match template {
            t::LOGON_ACK => {
                let m = ServerMsg::LogonAck {
                    session_id: r.u64("session id")?,
                    next_seq: r.u64("next seq")?,
                    heartbeat_ms: r.u32("heartbeat")?,
                    order_rate: r.u32("order rate")?,
                    order_burst: r.u32("order burst")?,
                    cancel_rate: r.u32("cancel rate")?,
                    cancel_burst: r.u32("cancel burst")?,
                };
                r.zeros(4, "padding")?;
                m
            }
            t::LOGON_REJECT | t::SERVER_LOGOUT => {
                let reason = r.u16("reason")?;
                r.zeros(6, "padding")?;
                if template == t::LOGON_REJECT {
                    ServerMsg::LogonReject { reason }
                } else {
                    ServerMsg::Logout { reason }
                }
            }
            t::SERVER_HEARTBEAT => ServerMsg::Heartbeat,
            t::REPLAY_COMPLETE => ServerMsg::ReplayComplete { first: r.u64("first")?, last: r.u64("last")? },
            _ => {
                let header = ReportHeader {
                    seq: r.u64("seq")?,
                    gateway_in_ns: r.u64("gateway in")?,
                    engine_in_ns: r.u64("engine in")?,
                    engine_out_ns: r.u64("engine out")?,
                };
                let report = match template {
                    t::ACCEPTED => {
                        let cid = ClientOrderId(r.u64("cid")?);
                        let order_id = OrderId(r.u64("order id")?);
                        let instrument = InstrumentId(r.u32("instrument")?);
                        let side = side(&mut r)?;
                        r.zeros(3, "padding")?;
                        let price = Price(r.i64("price")?);
                        let qty = Qty(r.i64("qty")?);
                        r.zeros(8, "padding")?;
                        Report::Accepted { cid, order_id, instrument, side, price, qty }
                    }
                    t::REJECTED => {
                        let cid = ClientOrderId(r.u64("cid")?);
                        let reason = r.u16("reason")?;
                        r.zeros(2, "padding")?;
                        Report::Rejected { cid, reason, retry_after_ms: r.u32("retry after")? }
                    }
                    t::AMENDED => {
                        let m = Report::Amended {
                            cid: ClientOrderId(r.u64("cid")?),
                            order_id: OrderId(r.u64("order id")?),
                            price: Price(r.i64("price")?),
                            qty: Qty(r.i64("qty")?),
                            priority_kept: r.bool("priority kept")?,
                        };
                        r.zeros(7, "padding")?;
                        m
                    }
                    t::CANCELLED => {
                        let m = Report::Cancelled {
                            cid: ClientOrderId(r.u64("cid")?),
                            order_id: OrderId(r.u64("order id")?),
                            qty: Qty(r.i64("qty")?),
                            leaves: Qty(r.i64("leaves")?),
                            reason: r.u8("reason")?,
                        };
                        r.zeros(7, "padding")?;
                        m
                    }
                    _ => {
                        let cid = ClientOrderId(r.u64("cid")?);
                        let order_id = OrderId(r.u64("order id")?);
                        let match_id = r.u64("match id")?;
                        let price = Price(r.i64("price")?);
                        let qty = Qty(r.i64("qty")?);
                        let leaves = Qty(r.i64("leaves")?);
                        let cum_qty = Qty(r.i64("cum qty")?);
                        let fee = r.i64("fee")?;
                        let at = r.pos();
                        let liquidity = match r.u8("liquidity")? {
                            0 => Liquidity::Maker,
                            1 => Liquidity::Taker,
                            _ => return Err(DecodeError { offset: at, what: "liquidity" }),
                        };
                        r.zeros(7, "padding")?;
                        Report::Fill { cid, order_id, match_id, price, qty, leaves, cum_qty, fee, liquidity }
                    }
                };
                ServerMsg::Report { header, report, possible_duplicate: hflags & FLAG_POSSIBLE_DUPLICATE != 0 }
            }
        })
    })()
    .map_err(bad)?;
    Ok(msg)
}

/// Decodes a market-data message; returns it with its end-of-event flag.
///
/// # Errors
/// [`WireError`].
pub fn decode_md(frame: &[u8]) -> Result<(MdMsg, bool), WireError> {
    use template as t;
    if frame.len() < HEADER {
        return Err(WireError::BadLength { template: 0, expected: HEADER, got: frame.len() });
    }
    let known = [
        t::INSTRUMENT,
        t::SNAPSHOT_BEGIN,
        t::SNAPSHOT_ORDER,
        t::SNAPSHOT_END,
        t::ADD_ORDER,
        t::REDUCE_ORDER,
        t::DELETE_ORDER,
        t::EXECUTION,
        t::TRADE,
        t::MD_HEARTBEAT,
    ];
    let (template, hflags, block) = open(frame, &known)?;
    let bad = |source: DecodeError| WireError::BadField { template, cid: None, source };
    let mut r = Reader::new(block);
    let msg = (|| -> Result<MdMsg, DecodeError> {
        if hflags & !FLAG_END_OF_EVENT != 0 {
            return Err(DecodeError { offset: 0, what: "header flags" });
        }
        let md_seq = r.u64("md seq")?;
        Ok(match template {
            t::INSTRUMENT => {
                let instrument = InstrumentId(r.u32("instrument")?);
                let symbol = r.array::<16>("symbol")?;
                let tick_m = r.i64("tick mantissa")?;
                let lot_m = r.i64("lot mantissa")?;
                let tick_s = r.u8("tick scale")?;
                let lot_s = r.u8("lot scale")?;
                r.zeros(2, "padding")?;
                MdMsg::InstrumentDefinition { md_seq, instrument, symbol, tick: (tick_m, tick_s), lot: (lot_m, lot_s) }
            }
            t::SNAPSHOT_BEGIN => {
                let instrument = InstrumentId(r.u32("instrument")?);
                r.zeros(4, "padding")?;
                MdMsg::SnapshotBegin { md_seq, instrument, count: r.u64("count")? }
            }
            t::SNAPSHOT_END => {
                let instrument = InstrumentId(r.u32("instrument")?);
                r.zeros(4, "padding")?;
                MdMsg::SnapshotEnd { md_seq, instrument }
            }
            t::MD_HEARTBEAT => MdMsg::Heartbeat { md_seq },
            _ => {
                let instrument = InstrumentId(r.u32("instrument")?);
                let s = side(&mut r)?;
                r.zeros(3, "padding")?;
                let id = r.u64("id")?;
                match template {
                    t::SNAPSHOT_ORDER | t::ADD_ORDER => MdMsg::Order {
                        add: template == t::ADD_ORDER,
                        md_seq,
                        instrument,
                        side: s,
                        order_id: OrderId(id),
                        price: Price(r.i64("price")?),
                        qty: Qty(r.i64("qty")?),
                    },
                    t::REDUCE_ORDER => MdMsg::ReduceOrder {
                        md_seq,
                        instrument,
                        side: s,
                        order_id: OrderId(id),
                        removed: Qty(r.i64("removed")?),
                        leaves: Qty(r.i64("leaves")?),
                    },
                    t::DELETE_ORDER => MdMsg::DeleteOrder { md_seq, instrument, side: s, order_id: OrderId(id) },
                    t::EXECUTION => MdMsg::Execution {
                        md_seq,
                        instrument,
                        side: s,
                        order_id: OrderId(id),
                        price: Price(r.i64("price")?),
                        qty: Qty(r.i64("qty")?),
                        leaves: Qty(r.i64("leaves")?),
                    },
                    _ => MdMsg::Trade {
                        md_seq,
                        instrument,
                        aggressor: s,
                        match_id: id,
                        price: Price(r.i64("price")?),
                        qty: Qty(r.i64("qty")?),
                    },
                }
            }
        })
    })()
    .map_err(bad)?;
    Ok((msg, hflags & FLAG_END_OF_EVENT != 0))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn side() -> impl Strategy<Value = Side> {
        prop_oneof![Just(Side::Buy), Just(Side::Sell)]
    }

    fn client_msg() -> impl Strategy<Value = ClientMsg> {
        let logon =
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<[u8; 32]>(), any::<u32>(), any::<bool>(), any::<u64>())
                .prop_map(
                    |(key_id, timestamp_ns, nonce, signature, heartbeat_ms, cancel_on_disconnect, resume_from)| {
                        ClientMsg::Logon(Logon {
                            key_id,
                            timestamp_ns,
                            nonce,
                            signature,
                            heartbeat_ms,
                            cancel_on_disconnect,
                            resume_from,
                        })
                    },
                );
        let order = (
            (any::<u64>(), any::<u32>(), side(), 0u8..2, 0u8..4, 0u8..4),
            (
                any::<bool>(),
                any::<bool>(),
                proptest::option::of(any::<i64>()),
                any::<i64>(),
                proptest::option::of(any::<u64>()),
            ),
        )
            .prop_map(|((cid, inst, side, ty, tif, stp), (post_only, reduce_only, price, qty, expire))| {
                ClientMsg::NewOrder(WireOrder {
                    cid: ClientOrderId(cid),
                    instrument: InstrumentId(inst),
                    side,
                    order_type: OrderType::from_code(ty).unwrap(),
                    tif: TimeInForce::from_code(tif).unwrap(),
                    stp: StpMode::from_code(stp).unwrap(),
                    post_only,
                    reduce_only,
                    price: price.map(Price),
                    qty: Qty(qty),
                    expire_ts: expire.map(Timestamp),
                })
            });
        let amend =
            (any::<u64>(), any::<u32>(), proptest::option::of(any::<i64>()), proptest::option::of(any::<i64>()))
                .prop_map(|(cid, inst, price, qty)| {
                    ClientMsg::Amend(WireAmend {
                        cid: ClientOrderId(cid),
                        instrument: InstrumentId(inst),
                        price: price.map(Price),
                        qty: qty.map(Qty),
                    })
                });
        prop_oneof![
            logon,
            Just(ClientMsg::Heartbeat),
            any::<u16>().prop_map(|reason| ClientMsg::Logout { reason }),
            any::<u64>().prop_map(|from_seq| ClientMsg::Replay { from_seq }),
            order,
            amend,
            any::<u64>().prop_map(|cid| ClientMsg::Cancel { cid: ClientOrderId(cid) }),
            (proptest::option::of(any::<u32>()), proptest::option::of(side()))
                .prop_map(|(i, side)| ClientMsg::MassCancel { instrument: i.map(InstrumentId), side }),
        ]
    }

    fn server_msg() -> impl Strategy<Value = ServerMsg> {
        let header = (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(seq, a, b, c)| ReportHeader {
            seq,
            gateway_in_ns: a,
            engine_in_ns: b,
            engine_out_ns: c,
        });
        let report = prop_oneof![
            (any::<u64>(), any::<u64>(), any::<u32>(), side(), any::<i64>(), any::<i64>()).prop_map(
                |(c, o, i, s, p, q)| {
                    Report::Accepted {
                        cid: ClientOrderId(c),
                        order_id: OrderId(o),
                        instrument: InstrumentId(i),
                        side: s,
                        price: Price(p),
                        qty: Qty(q),
                    }
                }
            ),
            (any::<u64>(), any::<u16>(), any::<u32>()).prop_map(|(c, reason, retry)| Report::Rejected {
                cid: ClientOrderId(c),
                reason,
                retry_after_ms: retry
            }),
            (any::<u64>(), any::<u64>(), any::<i64>(), any::<i64>(), any::<bool>()).prop_map(|(c, o, p, q, k)| {
                Report::Amended {
                    cid: ClientOrderId(c),
                    order_id: OrderId(o),
                    price: Price(p),
                    qty: Qty(q),
                    priority_kept: k,
                }
            }),
            (any::<u64>(), any::<u64>(), any::<i64>(), any::<i64>(), any::<u8>()).prop_map(|(c, o, q, l, r)| {
                Report::Cancelled {
                    cid: ClientOrderId(c),
                    order_id: OrderId(o),
                    qty: Qty(q),
                    leaves: Qty(l),
                    reason: r,
                }
            }),
            (
                (any::<u64>(), any::<u64>(), any::<u64>()),
                (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
                any::<bool>()
            )
                .prop_map(|((c, o, m), (p, q, l, cum, fee), maker)| Report::Fill {
                    cid: ClientOrderId(c),
                    order_id: OrderId(o),
                    match_id: m,
                    price: Price(p),
                    qty: Qty(q),
                    leaves: Qty(l),
                    cum_qty: Qty(cum),
                    fee,
                    liquidity: if maker { Liquidity::Maker } else { Liquidity::Taker },
                }),
        ];
        prop_oneof![
            (any::<u64>(), any::<u64>(), any::<[u32; 5]>()).prop_map(|(s, n, l)| ServerMsg::LogonAck {
                session_id: s,
                next_seq: n,
                heartbeat_ms: l[0],
                order_rate: l[1],
                order_burst: l[2],
                cancel_rate: l[3],
                cancel_burst: l[4],
            }),
            any::<u16>().prop_map(|reason| ServerMsg::LogonReject { reason }),
            Just(ServerMsg::Heartbeat),
            any::<u16>().prop_map(|reason| ServerMsg::Logout { reason }),
            (any::<u64>(), any::<u64>()).prop_map(|(first, last)| ServerMsg::ReplayComplete { first, last }),
            (header, report, any::<bool>()).prop_map(|(header, report, possible_duplicate)| ServerMsg::Report {
                header,
                report,
                possible_duplicate
            }),
        ]
    }

    fn md_msg() -> impl Strategy<Value = (MdMsg, bool)> {
        let ids = || (any::<u64>(), any::<u32>(), side(), any::<u64>(), any::<i64>(), any::<i64>(), any::<i64>());
        (
            prop_oneof![
                (any::<u64>(), any::<u32>(), any::<[u8; 16]>(), any::<(i64, u8)>(), any::<(i64, u8)>()).prop_map(
                    |(md_seq, i, symbol, tick, lot)| MdMsg::InstrumentDefinition {
                        md_seq,
                        instrument: InstrumentId(i),
                        symbol,
                        tick,
                        lot
                    }
                ),
                (any::<u64>(), any::<u32>(), any::<u64>()).prop_map(|(md_seq, i, count)| MdMsg::SnapshotBegin {
                    md_seq,
                    instrument: InstrumentId(i),
                    count
                }),
                (any::<u64>(), any::<u32>())
                    .prop_map(|(md_seq, i)| MdMsg::SnapshotEnd { md_seq, instrument: InstrumentId(i) }),
                (ids(), any::<bool>()).prop_map(|((m, i, s, o, p, q, _), add)| MdMsg::Order {
                    add,
                    md_seq: m,
                    instrument: InstrumentId(i),
                    side: s,
                    order_id: OrderId(o),
                    price: Price(p),
                    qty: Qty(q),
                }),
                ids().prop_map(|(m, i, s, o, p, q, _)| MdMsg::ReduceOrder {
                    md_seq: m,
                    instrument: InstrumentId(i),
                    side: s,
                    order_id: OrderId(o),
                    removed: Qty(p),
                    leaves: Qty(q),
                }),
                ids().prop_map(|(m, i, s, o, ..)| MdMsg::DeleteOrder {
                    md_seq: m,
                    instrument: InstrumentId(i),
                    side: s,
                    order_id: OrderId(o)
                }),
                ids().prop_map(|(m, i, s, o, p, q, l)| MdMsg::Execution {
                    md_seq: m,
                    instrument: InstrumentId(i),
                    side: s,
                    order_id: OrderId(o),
                    price: Price(p),
                    qty: Qty(q),
                    leaves: Qty(l),
                }),
                ids().prop_map(|(m, i, s, o, p, q, _)| MdMsg::Trade {
                    md_seq: m,
                    instrument: InstrumentId(i),
                    aggressor: s,
                    match_id: o,
                    price: Price(p),
                    qty: Qty(q),
                }),
                any::<u64>().prop_map(|md_seq| MdMsg::Heartbeat { md_seq }),
            ],
            any::<bool>(),
        )
    }

    /// Feeds `bytes` to a reader in chunks of the given sizes, decoding every frame.
    fn frames_of<T>(bytes: &[u8], chunks: &[usize], decode: fn(&[u8]) -> Result<T, WireError>) -> Vec<T> {
        let mut reader = FrameReader::new();
        let mut out = Vec::new();
        let mut at = 0usize;
        for &c in chunks.iter().chain(core::iter::once(&usize::MAX)) {
            let end = at.saturating_add(c.max(1)).min(bytes.len());
            reader.extend(&bytes[at..end]);
            at = end;
            while let Some(frame) = reader.next_frame().unwrap() {
                out.push(decode(frame).unwrap());
            }
            if at == bytes.len() {
                break;
            }
        }
        assert_eq!(reader.pending(), 0);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(5), ..ProptestConfig::default() })]

        #[test]
        fn client_messages_round_trip_in_any_chunking(msgs in proptest::collection::vec(client_msg(), 1..20), chunks in proptest::collection::vec(1usize..40, 0..50)) {
            let mut bytes = Vec::new();
            for m in &msgs {
                encode_client(m, &mut bytes);
            }
            prop_assert_eq!(frames_of(&bytes, &chunks, decode_client), msgs);
        }

        #[test]
        fn server_messages_round_trip_in_any_chunking(msgs in proptest::collection::vec(server_msg(), 1..20), chunks in proptest::collection::vec(1usize..40, 0..50)) {
            let mut bytes = Vec::new();
            for m in &msgs {
                encode_server(m, &mut bytes);
            }
            prop_assert_eq!(frames_of(&bytes, &chunks, decode_server), msgs);
        }

        #[test]
        fn market_data_round_trips_in_any_chunking(msgs in proptest::collection::vec(md_msg(), 1..20), chunks in proptest::collection::vec(1usize..40, 0..50)) {
            let mut bytes = Vec::new();
            for (m, eoe) in &msgs {
                encode_md(m, *eoe, &mut bytes);
            }
            prop_assert_eq!(frames_of(&bytes, &chunks, decode_md), msgs);
        }

        /// Arbitrary bytes never panic the reader or any decoder; a frame either decodes or
        /// is refused with an error.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000), chunks in proptest::collection::vec(1usize..64, 0..80)) {
            let mut reader = FrameReader::new();
            let mut at = 0usize;
            'feed: for &c in chunks.iter().chain(core::iter::once(&usize::MAX)) {
                let end = at.saturating_add(c).min(bytes.len());
                reader.extend(&bytes[at..end]);
                at = end;
                loop {
                    match reader.next_frame() {
                        Ok(Some(frame)) => {
                            let _ = decode_client(frame);
                            let _ = decode_server(frame);
                            let _ = decode_md(frame);
                        }
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
                if at == bytes.len() {
                    break;
                }
            }
        }

        /// Mutating any one byte of a valid frame's block is either still a valid message or
        /// a typed error — never a panic, never a different template.
        #[test]
        fn single_byte_damage_is_refused_or_harmless(msg in client_msg(), at in 0usize..80, byte in any::<u8>()) {
            let mut bytes = Vec::new();
            encode_client(&msg, &mut bytes);
            let frame = &mut bytes[2..];
            let at = at % frame.len();
            frame[at] = byte;
            if let Ok(decoded) = decode_client(frame) {
                let mut again = Vec::new();
                encode_client(&decoded, &mut again);
                prop_assert_eq!(&again[2..], &*frame, "a decoded frame re-encodes to the same bytes");
            }
        }
    }

    #[test]
    fn a_stream_split_at_every_byte_gives_the_same_frames() {
        let msgs = [
            ClientMsg::Heartbeat,
            ClientMsg::Cancel { cid: ClientOrderId(9) },
            ClientMsg::MassCancel { instrument: Some(InstrumentId(2)), side: None },
            ClientMsg::Replay { from_seq: 77 },
        ];
        let mut bytes = Vec::new();
        for m in &msgs {
            encode_client(m, &mut bytes);
        }
        for split in 0..=bytes.len() {
            let got = frames_of(&bytes, &[split, bytes.len()], decode_client);
            assert_eq!(got, msgs, "split at {split}");
        }
    }

    #[test]
    fn errors_carry_their_protocol_codes() {
        let mut bytes = Vec::new();
        encode_client(&ClientMsg::Cancel { cid: ClientOrderId(5) }, &mut bytes);
        let frame = bytes[2..].to_vec();
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut x = frame.clone();
            f(&mut x);
            decode_client(&x).unwrap_err()
        };
        assert_eq!(with(&|x| x[0] = 99).reject_code(), 403);
        assert_eq!(with(&|x| x[2] = 2).reject_code(), 404);
        assert_eq!(with(&|x| x.push(0)).reject_code(), 405);
        let mut order = Vec::new();
        let o = WireOrder {
            cid: ClientOrderId(42),
            instrument: InstrumentId(0),
            side: Side::Buy,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            stp: StpMode::CancelTaker,
            post_only: false,
            reduce_only: false,
            price: Some(Price(1)),
            qty: Qty(1),
            expire_ts: None,
        };
        encode_client(&ClientMsg::NewOrder(o), &mut order);
        order[2 + HEADER + 12] = 7; // side 7
        let e = decode_client(&order[2..]).unwrap_err();
        assert_eq!((e.reject_code(), e.cid()), (406, Some(42)));
        let mut reader = FrameReader::new();
        reader.extend(&[2, 0, 1, 0]);
        assert_eq!(reader.next_frame(), Err(FramingError::TooShort(2)));
        let mut reader = FrameReader::new();
        reader.extend(&2000u16.to_le_bytes());
        assert_eq!(reader.next_frame(), Err(FramingError::TooLarge(2000)));
    }
}
