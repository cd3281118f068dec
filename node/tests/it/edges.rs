//! The corners docs/PROTOCOL.md documents, pinned over loopback sockets and a real pipeline:
//! what a client written from the document alone would otherwise have to guess.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use l2x_gateway::server::Config;
use l2x_protocol::client::{Client, ClientError, MdClient, Options};
use l2x_protocol::codec::{
    self, ClientMsg, FrameReader, Limits, Liquidity, MdMsg, Report, ServerMsg, WireAmend, WireOrder,
};
use l2x_protocol::codes::LogoutReason;
use l2x_types::{CancelReason, ClientOrderId, Command, OrderType, Price, Qty, RejectReason, Side, TimeInForce};

use crate::node::{BTC, Node, gateway_reject, key, limit, next, report, send};

/// Limits no test of other things should hit.
const UNTHROTTLED: Limits =
    Limits { order_rate: 10_000_000, order_burst: 10_000_000, cancel_rate: 10_000_000, cancel_burst: 10_000_000 };

fn options() -> Options {
    Options { heartbeat_ms: 60_000, read_timeout: Some(Duration::from_secs(20)), ..Options::default() }
}

#[test]
fn replay_request_past_next_seq_skips_no_live_report() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config { limits: UNTHROTTLED, ..Config::default() });
    let mut a = node.connect(1);
    send(&mut a, limit(1, Side::Buy, 900, 1));
    assert_eq!(report(&mut a).0.seq, 1);
    // Key 2 (the same account) keeps the stream moving while key 1 asks for a replay from a
    // number far past its end: nothing is replayed, and every report from next_seq on comes,
    // in order (the client fails with a gap if one is skipped).
    let mut b = node.connect(2);
    let orders = std::thread::spawn(move || {
        for cid in 2..=3001 {
            send(&mut b, limit(cid, Side::Buy, 900, 1));
        }
        b
    });
    // In the middle of the flow.
    while a.last_seq() < 100 {
        report(&mut a);
    }
    a.send(&ClientMsg::Replay { from_seq: 1_000_000 }).unwrap();
    let mut completed = false;
    while !completed || a.last_seq() < 3001 {
        match a.recv() {
            Ok(ServerMsg::ReplayComplete { first, last }) => {
                assert_eq!((first, last), (0, 0), "nothing to replay");
                completed = true;
            }
            Ok(ServerMsg::Report { .. } | ServerMsg::Heartbeat) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(completed);
    drop(orders.join().unwrap());
    // The same at logon: resume_from past next_seq replays nothing; the next report is
    // next_seq.
    drop(a);
    let mut c = Client::connect_from(node.server().order_entry_addr(), &key(1), options(), 1_000_000).unwrap();
    assert_eq!(c.info().next_seq, 3002);
    assert_eq!(next(&mut c), ServerMsg::ReplayComplete { first: 0, last: 0 });
    send(&mut c, limit(1000, Side::Buy, 900, 1));
    assert_eq!(report(&mut c).0.seq, 3002);
    node.stop();
}

/// A raw connection that has sent `bytes` and nothing else; what it reads until the end of
/// the stream (which must be clean).
fn raw_exchange(node: &Node, bytes: &[u8]) -> Vec<ServerMsg> {
    let mut stream = TcpStream::connect(node.server().order_entry_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(bytes).unwrap();
    let mut reader = FrameReader::new();
    let mut msgs = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        while let Some(frame) = reader.next_frame().unwrap() {
            msgs.push(codec::decode_server(frame).unwrap());
        }
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            return msgs;
        }
        reader.extend(&buf[..n]);
    }
}

/// A frame of `len` (the length field) with a heartbeat's header and a zero block.
fn frame_of_len(len: u16) -> Vec<u8> {
    let mut f = len.to_le_bytes().to_vec();
    f.extend_from_slice(&[2, 0, 1, 0]);
    f.resize(2 + usize::from(len), 0);
    f
}

#[test]
fn frame_length_limits_and_which_logout_wins_before_a_logon() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    // Before a logon: a length below 4 is `malformed`, above 1024 `frame_too_large` (framing
    // errors win over `not_logged_in`); a well-framed frame that does not decode, or anything
    // but a logon, is `not_logged_in`.
    let logout = |reason| vec![ServerMsg::Logout { reason }];
    assert_eq!(raw_exchange(&node, &[3, 0, 2, 0, 1]), logout(LogoutReason::Malformed.code()));
    assert_eq!(raw_exchange(&node, &[0, 0]), logout(LogoutReason::Malformed.code()));
    assert_eq!(raw_exchange(&node, &1025u16.to_le_bytes()), logout(LogoutReason::FrameTooLarge.code()));
    assert_eq!(raw_exchange(&node, &frame_of_len(1024)), logout(LogoutReason::NotLoggedIn.code()));
    let mut bad_version = frame_of_len(4);
    bad_version[4] = 2;
    assert_eq!(raw_exchange(&node, &bad_version), logout(LogoutReason::NotLoggedIn.code()));
    // Logged on: 1024 is a frame (of the wrong length for a heartbeat: 405, the session goes
    // on); 1025 ends the session.
    let mut a = node.connect(1);
    a.send_raw(&frame_of_len(1024)).unwrap();
    assert_eq!(gateway_reject(&mut a), (0, 405));
    a.send_raw(&frame_of_len(4)).unwrap();
    send(&mut a, limit(1, Side::Buy, 900, 1));
    assert!(matches!(report(&mut a).1, Report::Accepted { .. }), "a heartbeat, then an order: still logged on");
    a.send_raw(&1025u16.to_le_bytes()).unwrap();
    assert!(matches!(a.recv(), Err(ClientError::LoggedOut(r)) if r == LogoutReason::FrameTooLarge.code()));
    node.stop();
}

#[test]
fn reserved_header_flags_and_bad_session_frames_are_answered_406_and_do_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut a = node.connect(1);
    // A NewOrder with header flag bit 0 (or 7) set: 406 with its cid; not entered.
    for flag in [1u8, 0x80] {
        let mut f = Vec::new();
        codec::encode_client(&ClientMsg::NewOrder(limit(7, Side::Buy, 900, 1)), &mut f);
        f[5] = flag;
        a.send_raw(&f).unwrap();
        assert_eq!(gateway_reject(&mut a), (7, 406));
    }
    // A Logout with non-zero padding is only rejected: the session goes on.
    let mut f = Vec::new();
    codec::encode_client(&ClientMsg::Logout { reason: 1 }, &mut f);
    f[2 + 4 + 3] = 1;
    a.send_raw(&f).unwrap();
    assert_eq!(gateway_reject(&mut a), (0, 406));
    // A second logon on the session: 401, seq 0, cid 0; the session goes on.
    let mut f = Vec::new();
    let logon = codec::Logon {
        key_id: 1,
        timestamp_ns: 0,
        nonce: 0,
        signature: [0; 32],
        heartbeat_ms: 0,
        cancel_on_disconnect: false,
        resume_from: 0,
    };
    codec::encode_client(&ClientMsg::Logon(logon), &mut f);
    a.send_raw(&f).unwrap();
    assert_eq!(gateway_reject(&mut a), (0, RejectReason::NotAuthorized.code()));
    send(&mut a, limit(7, Side::Buy, 900, 1));
    let (h, r) = report(&mut a);
    assert_eq!(h.seq, 1, "nothing before reached the account's stream");
    assert!(matches!(r, Report::Accepted { cid: ClientOrderId(7), .. }), "{r:?}");
    node.stop();
}

#[test]
fn cid_zero_is_an_ordinary_client_order_id() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut a = node.connect(1);
    send(&mut a, limit(0, Side::Buy, 900, 2));
    assert!(matches!(report(&mut a).1, Report::Accepted { cid: ClientOrderId(0), qty: Qty(2), .. }));
    send(&mut a, limit(0, Side::Buy, 901, 1));
    assert!(
        matches!(report(&mut a).1, Report::Rejected { cid: ClientOrderId(0), reason, .. } if reason == RejectReason::DuplicateCid.code())
    );
    a.send(&ClientMsg::Amend(WireAmend { cid: ClientOrderId(0), instrument: BTC, price: None, qty: Some(Qty(1)) }))
        .unwrap();
    assert!(matches!(report(&mut a).1, Report::Amended { cid: ClientOrderId(0), qty: Qty(1), .. }));
    a.send(&ClientMsg::Cancel { cid: ClientOrderId(0) }).unwrap();
    assert!(
        matches!(report(&mut a).1, Report::Cancelled { cid: ClientOrderId(0), reason, .. } if reason == CancelReason::User.code())
    );
    node.stop();
}

#[test]
fn market_orders_trade_at_the_protection_price_of_the_last_oracle_price_and_never_rest() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut a = node.connect(1);
    let market =
        |cid, side, tif| WireOrder { order_type: OrderType::Market, price: None, tif, ..limit(cid, side, 0, 1) };
    // Mark 1000, band 50 %: a buy's protection price is 1500, a sell's 500. Into an empty
    // book a gtc market order is cancelled like an ioc one; an fok one whole.
    for (cid, side, tif, price, why) in [
        (1, Side::Buy, TimeInForce::Gtc, 1500, CancelReason::MarketRemainder),
        (2, Side::Sell, TimeInForce::Ioc, 500, CancelReason::MarketRemainder),
        (3, Side::Buy, TimeInForce::Fok, 1500, CancelReason::FokUnfilled),
    ] {
        send(&mut a, market(cid, side, tif));
        let (_, r) = report(&mut a);
        assert!(matches!(r, Report::Accepted { price: Price(p), .. } if p == price), "{r:?}");
        let (_, r) = report(&mut a);
        assert!(matches!(r, Report::Cancelled { leaves: Qty(0), reason, .. } if reason == why.code()), "{r:?}");
    }
    // gtd, or a price: refused.
    send(
        &mut a,
        WireOrder { expire_ts: Some(l2x_types::Timestamp(u64::MAX)), ..market(4, Side::Buy, TimeInForce::Gtd) },
    );
    assert!(matches!(report(&mut a).1, Report::Rejected { reason, .. } if reason == RejectReason::BadFlags.code()));
    send(&mut a, WireOrder { price: Some(Price(1000)), ..market(5, Side::Buy, TimeInForce::Ioc) });
    assert!(matches!(report(&mut a).1, Report::Rejected { reason, .. } if reason == RejectReason::BadPrice.code()));
    // A new oracle price moves the protection price: mark 1101, 1.5 × 1101 = 1651.5 → 1651
    // (rounded towards the mark).
    node.server().control().submit(Command::Oracle { instrument: BTC, price: Price(1101) }).unwrap();
    let mut b = node.connect(3);
    send(&mut b, limit(1, Side::Sell, 1600, 1));
    assert!(matches!(report(&mut b).1, Report::Accepted { .. }));
    send(&mut a, market(6, Side::Buy, TimeInForce::Gtc));
    let (_, r) = report(&mut a);
    assert!(matches!(r, Report::Accepted { price: Price(1651), .. }), "{r:?}");
    let (_, r) = report(&mut a);
    assert!(matches!(r, Report::Fill { price: Price(1600), leaves: Qty(0), liquidity: Liquidity::Taker, .. }), "{r:?}");
    node.stop();
}

#[test]
fn fill_fees_follow_the_documented_formula() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut maker = node.connect(1);
    let mut taker = node.connect(3);
    send(&mut maker, limit(1, Side::Sell, 1003, 7));
    assert!(matches!(report(&mut maker).1, Report::Accepted { .. }));
    send(&mut taker, WireOrder { tif: TimeInForce::Ioc, ..limit(1, Side::Buy, 1003, 3) });
    assert!(matches!(report(&mut taker).1, Report::Accepted { .. }));
    // The test instrument: tick 1, lot 1, so k = 10⁶; maker −0.0001 (−100 ppm), taker
    // 0.0005 (500 ppm). 3 lots at 1003 ticks: notional 3,009,000,000 micro-USDC.
    let notional: i64 = 1003 * 3 * 1_000_000;
    let (_, r) = report(&mut taker);
    assert!(
        matches!(r, Report::Fill { fee, liquidity: Liquidity::Taker, .. } if fee == notional * 500 / 1_000_000),
        "{r:?}"
    );
    let (_, r) = report(&mut maker);
    assert!(
        matches!(r, Report::Fill { fee, liquidity: Liquidity::Maker, cum_qty: Qty(3), leaves: Qty(4), .. } if fee == -(notional * 100 / 1_000_000)),
        "{r:?}"
    );
    node.stop();
}

#[test]
fn amend_without_price_or_qty_changes_nothing_and_mass_cancel_of_nothing_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut a = node.connect(1);
    send(&mut a, limit(1, Side::Buy, 900, 3));
    let (_, r) = report(&mut a);
    let Report::Accepted { order_id, .. } = r else { panic!("{r:?}") };
    a.send(&ClientMsg::Amend(WireAmend { cid: ClientOrderId(1), instrument: BTC, price: None, qty: None })).unwrap();
    assert_eq!(
        report(&mut a).1,
        Report::Amended { cid: ClientOrderId(1), order_id, price: Price(900), qty: Qty(3), priority_kept: true }
    );
    // A mass cancel of the sells (there are none): no report at all; the next report is the
    // marker order's.
    a.send(&ClientMsg::MassCancel { instrument: Some(BTC), side: Some(Side::Sell) }).unwrap();
    send(&mut a, limit(2, Side::Buy, 800, 1));
    let (h, r) = report(&mut a);
    assert_eq!(h.seq, 3);
    assert!(matches!(r, Report::Accepted { cid: ClientOrderId(2), .. }), "{r:?}");
    // An unknown instrument: rejected, cid 0.
    a.send(&ClientMsg::MassCancel { instrument: Some(l2x_types::InstrumentId(9)), side: None }).unwrap();
    let (h, r) = report(&mut a);
    assert!(h.seq > 0);
    assert_eq!(
        r,
        Report::Rejected { cid: ClientOrderId(0), reason: RejectReason::UnknownSymbol.code(), retry_after_ms: 0 }
    );
    node.stop();
}

#[test]
fn snapshot_messages_carry_the_md_seq_of_the_last_update() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let md_addr = node.server().market_data_addr();
    let mut early = MdClient::connect(md_addr, Some(Duration::from_secs(20))).unwrap();
    let mut a = node.connect(1);
    for cid in 1..=3 {
        send(&mut a, limit(cid, Side::Buy, 900 + i64::try_from(cid).unwrap(), 1));
        report(&mut a);
    }
    // Three AddOrders: md_seq 1, 2, 3 (the early subscriber sees its empty snapshot at 0).
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match early.recv().unwrap().0 {
            MdMsg::Order { add: true, md_seq, .. } => seen.push(md_seq),
            MdMsg::InstrumentDefinition { md_seq, .. }
            | MdMsg::SnapshotBegin { md_seq, .. }
            | MdMsg::SnapshotEnd { md_seq, .. } => assert_eq!(md_seq, 0),
            MdMsg::Heartbeat { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, [1, 2, 3]);
    // A late subscriber: the definition and every snapshot message carry 3, the last update.
    let mut late = MdClient::connect(md_addr, Some(Duration::from_secs(20))).unwrap();
    let mut snapshot = Vec::new();
    loop {
        let (msg, end) = late.recv().unwrap();
        assert!(!end, "no end-of-event flag outside updates");
        snapshot.push(msg);
        if matches!(msg, MdMsg::SnapshotEnd { .. }) {
            break;
        }
    }
    assert_eq!(snapshot.len(), 1 + 1 + 3 + 1, "definition, begin, three orders, end: {snapshot:?}");
    for m in &snapshot {
        let md_seq = match *m {
            MdMsg::InstrumentDefinition { md_seq, .. }
            | MdMsg::SnapshotBegin { md_seq, .. }
            | MdMsg::Order { add: false, md_seq, .. }
            | MdMsg::SnapshotEnd { md_seq, .. } => md_seq,
            other => panic!("{other:?}"),
        };
        assert_eq!(md_seq, 3, "{m:?}");
    }
    // The next update is 4.
    send(&mut a, limit(9, Side::Buy, 950, 1));
    loop {
        match late.recv().unwrap() {
            (MdMsg::Order { add: true, md_seq, .. }, true) => {
                assert_eq!(md_seq, 4);
                break;
            }
            (MdMsg::Heartbeat { .. }, _) => {}
            other => panic!("{other:?}"),
        }
    }
    node.stop();
}
