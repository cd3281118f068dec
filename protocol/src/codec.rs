//! The wire codec of docs/PROTOCOL.md: frames, and every message of order entry and market
//! data as a fixed little-endian block. Everything a program needs to speak the protocol is
//! here; the modules behind it are private.
//!
//! ```text
//!  bytes from the socket ──▶ FrameReader ──▶ frame ──▶ decode_client / decode_server / decode_md
//!                            (u16 len, ≤ 1024)          (header: template, version, flags;
//!                                                        block: exact length, every field checked)
//!  message ──▶ encode_* ──▶ len + header + block
//! ```
//!
//! # One layout per message
//!
//! Each message's layout — its fields in wire order, with their padding — is written once,
//! as the message's arm of a `walk` over its fields. Encoding runs the walk writing, decoding
//! runs it reading into the template's blank message, and a template's block length
//! ([`block_len`], [`ClientTemplate::block_len`], …) is the same walk measuring. Templates
//! are coded enums, one per direction ([`ClientTemplate`], [`ServerTemplate`],
//! [`MdTemplate`]), so every mapping between messages and templates is an exhaustive match.
//!
//! # Strict decoding
//!
//! The block length must be the template's exactly, enum codes and flags must be known,
//! padding and unannounced fields must be zero. A frame is judged in the order of
//! docs/PROTOCOL.md ("Malformed input"): template, version, length, header flags, fields.
//! Errors are typed ([`WireError`], [`FramingError`]) and map to the protocol's reject and
//! logout codes; no input makes this module panic (a property test feeds it arbitrary
//! bytes).
//!
//! # Performance
//!
//! No allocation but the caller's output buffer, no dynamic dispatch: each walk is
//! monomorphised per direction, and a block length folds to a constant.

use l2x_types::bytes::{DecodeError, Reader};

use crate::codes::SessionReject;
use crate::frame::{self, Header};
pub use crate::frame::{
    FLAG_END_OF_EVENT, FLAG_POSSIBLE_DUPLICATE, FrameReader, FramingError, HEADER, MAX_FRAME, VERSION,
};
use crate::layout::{Get, Layout, Put};
pub use crate::market_data::MdMsg;
pub use crate::order_entry::{
    ClientMsg, Limits, Liquidity, Logon, Report, ReportHeader, ServerMsg, WireAmend, WireOrder,
};
pub use crate::template::{ClientTemplate, MdTemplate, ServerTemplate, block_len};

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
    #[inline]
    pub const fn reject(&self) -> SessionReject {
        match self {
            WireError::UnknownTemplate(_) => SessionReject::UnknownTemplate,
            WireError::UnsupportedVersion { .. } => SessionReject::UnsupportedVersion,
            WireError::BadLength { .. } => SessionReject::BadLength,
            WireError::BadField { .. } => SessionReject::BadField,
        }
    }

    /// The protocol's reject code for this error (docs/PROTOCOL.md, 403–406).
    #[inline]
    pub fn reject_code(&self) -> u16 {
        self.reject().code()
    }

    /// The client order id the bad frame carried, if it could be read.
    #[inline]
    pub fn cid(&self) -> Option<u64> {
        match self {
            WireError::BadField { cid, .. } => *cid,
            _ => None,
        }
    }
}

/// Appends a client message as one frame.
#[inline]
pub fn encode_client(msg: &ClientMsg, out: &mut Vec<u8>) {
    let mut msg = *msg;
    let at = frame::begin(out, msg.template().code(), 0);
    let Ok(()) = msg.walk(&mut Put(out));
    frame::end(out, at);
}

/// Appends a server message as one frame.
#[inline]
pub fn encode_server(msg: &ServerMsg, out: &mut Vec<u8>) {
    let mut msg = *msg;
    let duplicate = matches!(msg, ServerMsg::Report { possible_duplicate: true, .. });
    let flags = if duplicate { FLAG_POSSIBLE_DUPLICATE } else { 0 };
    let at = frame::begin(out, msg.template().code(), flags);
    let Ok(()) = msg.walk(&mut Put(out));
    frame::end(out, at);
}

/// Appends a market-data message as one frame (`end_of_event` sets the header flag).
#[inline]
pub fn encode_md(msg: &MdMsg, end_of_event: bool, out: &mut Vec<u8>) {
    let mut msg = *msg;
    let flags = if end_of_event { FLAG_END_OF_EVENT } else { 0 };
    let at = frame::begin(out, msg.template().code(), flags);
    let Ok(()) = msg.walk(&mut Put(out));
    frame::end(out, at);
}

/// Splits a frame into its template (one of a direction's), header flags and block, after
/// checking the template and the version, in that order.
#[inline]
fn open<T>(frame: &[u8], template_of: fn(u16) -> Option<T>) -> Result<(T, u8, &[u8]), WireError> {
    let Some((header, block)) = Header::split(frame) else {
        return Err(WireError::BadLength { template: 0, expected: HEADER, got: frame.len() });
    };
    let template = template_of(header.template).ok_or(WireError::UnknownTemplate(header.template))?;
    if header.version != VERSION {
        return Err(WireError::UnsupportedVersion { template: header.template, version: header.version });
    }
    Ok((template, header.flags, block))
}

/// Reads a whole block into a blank message with its walk: a block longer than the walk is
/// refused too.
#[inline]
fn read<M: Layout>(block: &[u8], msg: &mut M) -> Result<(), DecodeError> {
    let mut get = Get(Reader::new(block));
    msg.walk(&mut get)?;
    get.0.finish("block")
}

/// A refused block's length against its template's: the first thing judged (docs/PROTOCOL.md,
/// "Malformed input"), before the header flags and the fields. Only a refused frame is
/// measured: a frame that reads needs no other check.
#[cold]
fn check_length(template: u16, expected: usize, block: &[u8]) -> Result<(), WireError> {
    if block.len() == expected { Ok(()) } else { Err(WireError::BadLength { template, expected, got: block.len() }) }
}

/// Decodes a client message from a frame (header and block).
///
/// # Errors
/// [`WireError`]; the session answers it with a `Rejected` and goes on.
#[inline]
pub fn decode_client(frame: &[u8]) -> Result<ClientMsg, WireError> {
    let (template, flags, block) = open(frame, ClientTemplate::from_code)?;
    // Read in place in the result, so that a message is not copied on its way out (`out` is
    // `Ok` until a refusal replaces it).
    let mut out = Ok(ClientMsg::blank(template));
    let Ok(msg) = &mut out else { return out };
    let fields = read(block, msg);
    if flags == 0 && fields.is_ok() {
        return out;
    }
    check_length(template.code(), template.block_len(), block)?;
    // The cid is the first field of the order templates: readable even if the rest is bad.
    let cid = template.has_cid().then(|| block.first_chunk().map_or(0, |b| u64::from_le_bytes(*b)));
    let source = match fields {
        Err(e) if flags == 0 => e,
        _ => DecodeError { offset: 0, what: "header flags must be zero" },
    };
    Err(WireError::BadField { template: template.code(), cid, source })
}

/// Decodes a server message (order-entry port) from a frame.
///
/// # Errors
/// [`WireError`].
#[inline]
pub fn decode_server(frame: &[u8]) -> Result<ServerMsg, WireError> {
    let (template, flags, block) = open(frame, ServerTemplate::from_code)?;
    let allowed = if template.is_report() { FLAG_POSSIBLE_DUPLICATE } else { 0 };
    let mut out = Ok(ServerMsg::blank(template));
    let Ok(msg) = &mut out else { return out };
    let fields = read(block, msg);
    if flags & !allowed == 0 && fields.is_ok() {
        if let ServerMsg::Report { possible_duplicate, .. } = msg {
            *possible_duplicate = flags & FLAG_POSSIBLE_DUPLICATE != 0;
        }
        return out;
    }
    check_length(template.code(), template.block_len(), block)?;
    let source = match fields {
        Err(e) if flags & !allowed == 0 => e,
        _ => DecodeError { offset: 0, what: "header flags" },
    };
    Err(WireError::BadField { template: template.code(), cid: None, source })
}

/// Decodes a market-data message; returns it with its end-of-event flag.
///
/// # Errors
/// [`WireError`].
#[inline]
pub fn decode_md(frame: &[u8]) -> Result<(MdMsg, bool), WireError> {
    let (template, flags, block) = open(frame, MdTemplate::from_code)?;
    let mut out = Ok((MdMsg::blank(template), flags & FLAG_END_OF_EVENT != 0));
    let Ok((msg, _)) = &mut out else { return out };
    let fields = read(block, msg);
    if flags & !FLAG_END_OF_EVENT == 0 && fields.is_ok() {
        return out;
    }
    check_length(template.code(), template.block_len(), block)?;
    let source = match fields {
        Err(e) if flags & !FLAG_END_OF_EVENT == 0 => e,
        _ => DecodeError { offset: 0, what: "header flags" },
    };
    Err(WireError::BadField { template: template.code(), cid: None, source })
}

#[cfg(test)]
mod tests {
    use l2x_types::{
        Amount, ClientOrderId, InstrumentId, OrderId, OrderType, Price, Qty, Side, StpMode, TimeInForce, Timestamp,
    };
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
            (any::<u64>(), any::<i64>())
                .prop_map(|(request_id, amount)| ClientMsg::Withdraw { request_id, amount: Amount(amount) }),
        ]
    }

    fn report() -> impl Strategy<Value = Report> {
        prop_oneof![
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
            (any::<u64>(), any::<i64>(), any::<i64>()).prop_map(|(r, a, c)| Report::Withdrawn {
                request_id: r,
                amount: Amount(a),
                collateral: Amount(c),
            }),
        ]
    }

    fn server_msg() -> impl Strategy<Value = ServerMsg> {
        let header = (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(seq, a, b, c)| ReportHeader {
            seq,
            gateway_in_ns: a,
            engine_in_ns: b,
            engine_out_ns: c,
        });
        let report = report();
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
        // A withdrawal's request id is where an order's cid is: a 406 carries it, a 405 not.
        let mut withdraw = Vec::new();
        encode_client(&ClientMsg::Withdraw { request_id: 77, amount: Amount(5) }, &mut withdraw);
        assert_eq!(withdraw.len(), 2 + HEADER + 16);
        withdraw[2 + 3] = 1; // header flag bit 0
        let e = decode_client(&withdraw[2..]).unwrap_err();
        assert_eq!((e.reject_code(), e.cid()), (406, Some(77)));
        withdraw[2 + 3] = 0;
        withdraw.push(0);
        let e = decode_client(&withdraw[2..]).unwrap_err();
        assert_eq!((e.reject_code(), e.cid()), (405, None));
        let mut reader = FrameReader::new();
        reader.extend(&[2, 0, 1, 0]);
        assert_eq!(reader.next_frame(), Err(FramingError::TooShort(2)));
        let mut reader = FrameReader::new();
        reader.extend(&2000u16.to_le_bytes());
        assert_eq!(reader.next_frame(), Err(FramingError::TooLarge(2000)));
    }
}
