//! The gateway over real loopback sockets, a real pipeline and a real journal: logon, every
//! order type, throttles, cancel-on-disconnect, replay after reconnect and after a server
//! restart, two sessions on one account, malformed input, slow consumers, market data.
//!
//! No sleeps: every wait is a blocking read of something the server must send (reads time
//! out after 20 s so that a bug fails the test instead of hanging it).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use l2x_gateway::server::Config;
use l2x_protocol::client::{ClientError, MdClient, Options};
use l2x_protocol::codec::{self, ClientMsg, Limits, Liquidity, Logon, MdMsg, Report, ServerMsg, WireAmend, WireOrder};
use l2x_protocol::codes::LogoutReason;
use l2x_protocol::logon::sign;
use l2x_types::{
    CancelReason, ClientOrderId, OrderType, Price, Qty, RejectReason, Side, StpMode, TimeInForce, Timestamp,
};

use crate::node::{BTC, Node, key, limit, next, report, send, trade_until_a_slow_consumer_is_cut_off};

#[allow(clippy::disallowed_methods, reason = "logons carry the client's wall-clock time")]
fn now_ns() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()).unwrap()
}

#[test]
#[allow(clippy::too_many_lines, reason = "one session walks every order type in turn; the steps depend on each other")]
fn order_lifecycle_of_every_order_type_over_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut a = node.connect(1);
    let mut b = node.connect(3);
    assert_eq!(a.info().next_seq, 1);
    assert_eq!(a.info().limits, Limits::default());

    // A limit order rests: Accepted with the order's fields and three timestamps.
    send(&mut a, limit(10, Side::Buy, 990, 5));
    let (h, r) = report(&mut a);
    assert_eq!(h.seq, 1);
    assert!(h.gateway_in_ns > 0 && h.engine_in_ns > 0 && h.engine_out_ns >= h.gateway_in_ns, "{h:?}");
    let Report::Accepted { cid, order_id, instrument, side, price, qty } = r else { panic!("{r:?}") };
    assert_eq!((cid, instrument, side, price, qty), (ClientOrderId(10), BTC, Side::Buy, Price(990), Qty(5)));
    let bid = order_id;

    // Amend down keeps priority; a new price loses it.
    a.send(&ClientMsg::Amend(WireAmend { cid: ClientOrderId(10), instrument: BTC, price: None, qty: Some(Qty(4)) }))
        .unwrap();
    let (h, r) = report(&mut a);
    assert_eq!(h.seq, 2);
    assert_eq!(
        r,
        Report::Amended { cid: ClientOrderId(10), order_id: bid, price: Price(990), qty: Qty(4), priority_kept: true }
    );
    a.send(&ClientMsg::Amend(WireAmend {
        cid: ClientOrderId(10),
        instrument: BTC,
        price: Some(Price(995)),
        qty: None,
    }))
    .unwrap();
    let (_, r) = report(&mut a);
    assert_eq!(
        r,
        Report::Amended { cid: ClientOrderId(10), order_id: bid, price: Price(995), qty: Qty(4), priority_kept: false }
    );

    // An IOC sell crosses: both sides get a fill with the same match id; the rest of the
    // IOC is cancelled.
    send(&mut b, WireOrder { tif: TimeInForce::Ioc, ..limit(20, Side::Sell, 995, 6) });
    let (_, r) = report(&mut b);
    assert!(matches!(r, Report::Accepted { cid: ClientOrderId(20), .. }), "{r:?}");
    let (_, taker_fill) = report(&mut b);
    let (_, maker_fill) = report(&mut a);
    let Report::Fill { match_id, price, qty, leaves, cum_qty, fee, liquidity, .. } = taker_fill else {
        panic!("{taker_fill:?}")
    };
    assert_eq!((price, qty, leaves, cum_qty, liquidity), (Price(995), Qty(4), Qty(2), Qty(4), Liquidity::Taker));
    assert!(fee > 0, "the taker pays");
    let Report::Fill { match_id: maker_match, order_id, leaves, cum_qty, fee, liquidity, .. } = maker_fill else {
        panic!("{maker_fill:?}")
    };
    assert_eq!((maker_match, order_id, leaves, cum_qty, liquidity), (match_id, bid, Qty(0), Qty(4), Liquidity::Maker));
    assert!(fee < 0, "the maker gets the rebate");
    let (_, r) = report(&mut b);
    assert!(
        matches!(r, Report::Cancelled { qty: Qty(2), leaves: Qty(0), reason, .. } if reason == CancelReason::IocRemainder.code()),
        "{r:?}"
    );

    // FOK that cannot fill; market order into an empty side; post-only that would cross.
    send(&mut a, limit(11, Side::Sell, 1010, 3));
    assert!(matches!(report(&mut a).1, Report::Accepted { .. }));
    send(&mut b, WireOrder { tif: TimeInForce::Fok, ..limit(21, Side::Buy, 1010, 5) });
    assert!(matches!(report(&mut b).1, Report::Accepted { .. }));
    let (_, r) = report(&mut b);
    assert!(matches!(r, Report::Cancelled { reason, .. } if reason == CancelReason::FokUnfilled.code()), "{r:?}");
    send(&mut b, WireOrder { post_only: true, ..limit(22, Side::Buy, 1010, 1) });
    let (h, r) = report(&mut b);
    assert!(h.seq > 0, "an engine reject is part of the stream");
    assert_eq!(
        r,
        Report::Rejected { cid: ClientOrderId(22), reason: RejectReason::PostOnlyWouldCross.code(), retry_after_ms: 0 }
    );
    let market = WireOrder { order_type: OrderType::Market, price: None, ..limit(23, Side::Buy, 0, 5) };
    send(&mut b, market);
    assert!(matches!(report(&mut b).1, Report::Accepted { .. }));
    assert!(matches!(report(&mut b).1, Report::Fill { qty: Qty(3), liquidity: Liquidity::Taker, .. }));
    assert!(
        matches!(report(&mut b).1, Report::Cancelled { reason, .. } if reason == CancelReason::MarketRemainder.code())
    );
    assert!(matches!(report(&mut a).1, Report::Fill { qty: Qty(3), liquidity: Liquidity::Maker, .. }));

    // b is short 1 now. Reduce-only that would increase the position is refused; GTD rests
    // until its time.
    send(&mut b, WireOrder { reduce_only: true, ..limit(24, Side::Sell, 1100, 1) });
    let (_, r) = report(&mut b);
    assert!(
        matches!(r, Report::Rejected { reason, .. } if reason == RejectReason::ReduceOnlyWouldIncrease.code()),
        "{r:?}"
    );
    let expiry = Timestamp(now_ns() + 3_600_000_000_000);
    send(&mut b, WireOrder { tif: TimeInForce::Gtd, expire_ts: Some(expiry), ..limit(25, Side::Buy, 900, 2) });
    assert!(matches!(report(&mut b).1, Report::Accepted { .. }));

    // Self-trade prevention, decrement: b's sell of 1 against its own bid of 2 shrinks both.
    send(&mut b, WireOrder { stp: StpMode::Decrement, ..limit(26, Side::Sell, 900, 1) });
    assert!(matches!(report(&mut b).1, Report::Accepted { .. }));
    let mut reasons = vec![];
    for _ in 0..2 {
        let (_, r) = report(&mut b);
        let Report::Cancelled { reason, .. } = r else { panic!("{r:?}") };
        reasons.push(reason);
    }
    assert_eq!(reasons, [CancelReason::SelfTrade.code(); 2]);

    // A resent order whose cid is live is not applied twice; cancel; mass cancel by side.
    send(&mut a, limit(12, Side::Buy, 980, 1));
    assert!(matches!(report(&mut a).1, Report::Accepted { .. }));
    send(&mut a, limit(12, Side::Buy, 980, 1));
    assert!(matches!(report(&mut a).1, Report::Rejected { reason, .. } if reason == RejectReason::DuplicateCid.code()));
    a.send(&ClientMsg::Cancel { cid: ClientOrderId(12) }).unwrap();
    assert!(
        matches!(report(&mut a).1, Report::Cancelled { cid: ClientOrderId(12), reason, .. } if reason == CancelReason::User.code())
    );
    send(&mut a, limit(13, Side::Buy, 970, 1));
    send(&mut a, limit(14, Side::Sell, 1030, 1));
    assert!(matches!(report(&mut a).1, Report::Accepted { .. }));
    assert!(matches!(report(&mut a).1, Report::Accepted { .. }));
    a.send(&ClientMsg::MassCancel { instrument: Some(BTC), side: Some(Side::Sell) }).unwrap();
    // Only the sell that is still live (b's market order took all of cid 11).
    let (_, r) = report(&mut a);
    assert!(
        matches!(r, Report::Cancelled { cid: ClientOrderId(14), reason, .. } if reason == CancelReason::MassCancel.code()),
        "{r:?}"
    );
    // Cancelling another account's cid is impossible: the session's account is implied.
    b.send(&ClientMsg::Cancel { cid: ClientOrderId(13) }).unwrap();
    assert!(matches!(report(&mut b).1, Report::Rejected { reason, .. } if reason == RejectReason::UnknownOrder.code()));

    let state = node.stop();
    state.check_invariants().unwrap();
    let resting: Vec<u64> = state.resting_orders().iter().map(|o| o.cid.0).collect();
    assert_eq!(resting, [13, 25], "a's bid at 970 and b's GTD bid at 900");
}

/// A raw socket to the order-entry port that has sent `first` (a hand-made logon, or
/// anything else) and nothing more.
fn raw_send(node: &Node, first: ClientMsg) -> TcpStream {
    let mut stream = TcpStream::connect(node.server().order_entry_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut out = Vec::new();
    codec::encode_client(&first, &mut out);
    stream.write_all(&out).unwrap();
    stream
}

/// Sends a hand-made logon on a raw socket and returns the answer.
fn raw_logon(node: &Node, logon: Logon) -> ServerMsg {
    read_server(&mut raw_send(node, ClientMsg::Logon(logon)))
}

/// Reads one server message from a raw socket.
fn read_server(stream: &mut TcpStream) -> ServerMsg {
    let mut reader = codec::FrameReader::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = reader.next_frame().unwrap() {
            return codec::decode_server(frame).unwrap();
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before a message");
        reader.extend(&buf[..n]);
    }
}

fn signed(key_id: u64, timestamp_ns: u64, nonce: u64) -> Logon {
    let secret = [u8::try_from(key_id).unwrap(); 32];
    Logon {
        key_id,
        timestamp_ns,
        nonce,
        signature: sign(&secret, key_id, timestamp_ns, nonce),
        heartbeat_ms: 60_000,
        cancel_on_disconnect: false,
        resume_from: 0,
    }
}

#[test]
fn logons_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let now = now_ns();
    let refused = |msg: ServerMsg| match msg {
        ServerMsg::LogonReject { reason } => reason,
        other => panic!("expected a logon reject, got {other:?}"),
    };
    assert_eq!(refused(raw_logon(&node, signed(99, now, 1))), 20, "unknown key");
    let mut bad = signed(1, now, 2);
    bad.signature[0] ^= 1;
    assert_eq!(refused(raw_logon(&node, bad)), 21, "bad signature");
    assert_eq!(refused(raw_logon(&node, signed(1, now - 10_000_000_000, 3))), 22, "stale timestamp");
    // A good logon, then the same nonce again (a captured logon replayed).
    let good = signed(3, now_ns(), 4);
    let mut first = raw_send(&node, ClientMsg::Logon(good));
    assert!(matches!(read_server(&mut first), ServerMsg::LogonAck { .. }));
    assert_eq!(refused(raw_logon(&node, good)), 23, "replayed nonce");
    // A second logon of the key (a client reconnecting before the server noticed the old
    // connection die) supersedes the first session.
    let mut second = raw_send(&node, ClientMsg::Logon(signed(3, now_ns(), 5)));
    assert!(matches!(read_server(&mut second), ServerMsg::LogonAck { .. }));
    assert_eq!(read_server(&mut first), ServerMsg::Logout { reason: LogoutReason::Superseded.code() });
    assert_eq!(first.read(&mut [0u8; 16]).unwrap(), 0, "then the old connection closes");
    // Anything but a logon first: logged out.
    let mut stream = raw_send(&node, ClientMsg::Cancel { cid: ClientOrderId(1) });
    assert_eq!(read_server(&mut stream), ServerMsg::Logout { reason: LogoutReason::NotLoggedIn.code() });
    assert_eq!(stream.read(&mut [0u8; 16]).unwrap(), 0, "then the connection closes");
    drop((first, second));
    let mut again = node.connect(3);
    send(&mut again, limit(1, Side::Buy, 990, 1));
    assert!(matches!(report(&mut again).1, Report::Accepted { .. }));
    assert_eq!(node.server().counters().logon_rejects.load(std::sync::atomic::Ordering::Relaxed), 4);
    node.stop();
}

#[test]
fn heartbeats_keep_a_reading_session_alive_and_silence_times_it_out() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    // A client that reads answers the server's heartbeats: five of them, still logged on.
    let mut alive = node.connect_with(1, Options { heartbeat_ms: 100, ..Options::default() });
    assert_eq!(alive.info().heartbeat_ms, 100);
    for _ in 0..5 {
        assert_eq!(alive.recv().unwrap(), ServerMsg::Heartbeat);
    }
    send(&mut alive, limit(1, Side::Buy, 990, 1));
    assert!(matches!(report(&mut alive).1, Report::Accepted { .. }));
    // A raw session that never sends anything after its logon is logged out after three
    // intervals; the server's own heartbeats come first.
    let mut logon = signed(3, now_ns(), 77);
    logon.heartbeat_ms = 100;
    let mut stream = raw_send(&node, ClientMsg::Logon(logon));
    let mut reader = codec::FrameReader::new();
    let mut seen = vec![];
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        reader.extend(&buf[..n]);
        while let Some(frame) = reader.next_frame().unwrap() {
            seen.push(codec::decode_server(frame).unwrap());
        }
    }
    assert!(matches!(seen[0], ServerMsg::LogonAck { heartbeat_ms: 100, .. }), "{seen:?}");
    assert!(seen[1..seen.len() - 1].iter().all(|m| *m == ServerMsg::Heartbeat) && seen.len() >= 3, "{seen:?}");
    assert_eq!(seen.last(), Some(&ServerMsg::Logout { reason: LogoutReason::HeartbeatTimeout.code() }));
    node.stop();
}

#[test]
fn throttles_reject_with_retry_after_then_disconnect_and_cancels_have_their_own_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { order_rate: 1, order_burst: 3, cancel_rate: 1, cancel_burst: 10 };
    let node = Node::start(dir.path(), Config { limits, ..Config::default() });
    let mut a = node.connect(1);
    assert_eq!(a.info().limits, limits);
    for cid in 1..=3 {
        send(&mut a, limit(cid, Side::Buy, 900 + i64::try_from(cid).unwrap(), 1));
        assert!(matches!(report(&mut a).1, Report::Accepted { .. }));
    }
    send(&mut a, limit(4, Side::Buy, 950, 1));
    let (h, r) = report(&mut a);
    assert_eq!(h.seq, 0, "a gateway reject is not part of the account's stream");
    let Report::Rejected { cid, reason: code, retry_after_ms } = r else { panic!("{r:?}") };
    assert_eq!((cid, code), (ClientOrderId(4), RejectReason::Throttled.code()));
    assert!((1..=1000).contains(&retry_after_ms), "{retry_after_ms}");
    // Cancels still pass: their bucket is separate.
    for cid in 1..=3 {
        a.send(&ClientMsg::Cancel { cid: ClientOrderId(cid) }).unwrap();
        let (h, r) = report(&mut a);
        assert!(h.seq > 0 && matches!(r, Report::Cancelled { .. }), "{r:?}");
    }
    // Keep sending while throttled: more than twice the burst of rejects, then a logout.
    let mut rejects = 1;
    let outcome = loop {
        send(&mut a, limit(100 + rejects, Side::Buy, 950, 1));
        match a.recv() {
            Ok(ServerMsg::Report { report: Report::Rejected { reason: 400, .. }, .. }) => rejects += 1,
            // A token refilled (the machine stalled for a second): not a reject.
            Ok(ServerMsg::Report { report: Report::Accepted { .. }, .. }) => {}
            Err(e) => break e,
            Ok(other) => panic!("{other:?}"),
        }
        assert!(rejects < 100, "never cut off");
    };
    assert!(matches!(outcome, ClientError::LoggedOut(r) if r == LogoutReason::ThrottleExceeded.code()), "{outcome:?}");
    // Cut off at the seventh reject within a second (twice the burst of 3, plus one); more
    // only if the machine stalled for a second (the unit test pins the count exactly).
    assert!(rejects >= 6, "{rejects}");
    node.stop();
}

#[test]
fn cancel_on_disconnect_cancels_only_that_sessions_live_orders() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    // Keys 1 and 2 share account 1: key 2 watches (drop copy) and has an order of its own.
    let mut watcher = node.connect(2);
    send(&mut watcher, limit(50, Side::Buy, 900, 1));
    assert!(matches!(report(&mut watcher).1, Report::Accepted { .. }));
    let mut cod = node.connect_with(1, Options { cancel_on_disconnect: true, ..Options::default() });
    for cid in 1..=3 {
        send(&mut cod, limit(cid, Side::Buy, 950 + i64::try_from(cid).unwrap(), 2));
        assert!(matches!(report(&mut cod).1, Report::Accepted { .. }));
    }
    // One of them fills completely, one partly: only live ones are cancelled, once.
    let mut taker = node.connect(3);
    send(&mut taker, WireOrder { tif: TimeInForce::Ioc, ..limit(9, Side::Sell, 952, 3) });
    for _ in 0..3 {
        report(&mut taker); // accepted, two fills
    }
    // The watcher saw its own accept, then the three accepts and two maker fills.
    for _ in 0..5 {
        report(&mut watcher);
    }
    drop(cod);
    let mut cancelled = vec![];
    for _ in 0..2 {
        let (h, r) = report(&mut watcher);
        let Report::Cancelled { cid, qty, leaves, reason, .. } = r else { panic!("{r:?}") };
        assert_eq!((leaves, reason), (Qty(0), CancelReason::Disconnect.code()));
        assert_eq!(h.gateway_in_ns, 0, "no request caused it");
        cancelled.push((cid.0, qty.0));
    }
    cancelled.sort_unstable();
    assert_eq!(cancelled, [(1, 2), (2, 1)], "cid 3 filled completely; cid 2 had 1 left");
    // A session without cancel-on-disconnect leaves its orders.
    drop(watcher);
    let state = node.stop();
    let resting: Vec<u64> = state.resting_orders().iter().map(|o| o.cid.0).collect();
    assert_eq!(resting, [50]);
}

#[test]
fn a_reconnecting_client_gets_exactly_the_reports_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut maker = node.connect(1);
    for cid in 1..=5 {
        send(&mut maker, limit(cid, Side::Sell, 1000 + i64::try_from(cid).unwrap(), 2));
        report(&mut maker);
    }
    assert_eq!(maker.last_seq(), 5);
    // The maker's connection fails; meanwhile its orders trade.
    let addr = node.server().order_entry_addr();
    let maker_key = key(1);
    drop(maker);
    let mut taker = node.connect(3);
    send(&mut taker, WireOrder { tif: TimeInForce::Ioc, ..limit(1, Side::Buy, 1003, 5) });
    for _ in 0..4 {
        report(&mut taker);
    }
    // Reconnect asking from seq 6: the three fills, flagged, then ReplayComplete, then live.
    let options = Options { heartbeat_ms: 60_000, read_timeout: Some(Duration::from_secs(20)), ..Options::default() };
    let mut maker = l2x_protocol::client::Client::connect_from(addr, &maker_key, options, 6).unwrap();
    assert_eq!(maker.info().next_seq, 9);
    let mut seqs = vec![];
    for _ in 0..3 {
        let ServerMsg::Report { header, report: Report::Fill { .. }, possible_duplicate: true } = next(&mut maker)
        else {
            panic!("expected a replayed fill")
        };
        seqs.push(header.seq);
    }
    assert_eq!(seqs, [6, 7, 8]);
    assert_eq!(next(&mut maker), ServerMsg::ReplayComplete { first: 6, last: 8 });
    send(&mut maker, limit(6, Side::Sell, 1010, 1));
    let ServerMsg::Report { header, possible_duplicate: false, .. } = next(&mut maker) else { panic!() };
    assert_eq!(header.seq, 9);
    // A replay request mid-session: everything from 2, the ones seen are dropped by the
    // client, and the server flags them all.
    maker.send(&ClientMsg::Replay { from_seq: 2 }).unwrap();
    assert_eq!(next(&mut maker), ServerMsg::ReplayComplete { first: 2, last: 9 });
    // Reconnect through the client: resumes after the last seq it handed out (9).
    maker.reconnect().unwrap();
    assert_eq!(next(&mut maker), ServerMsg::ReplayComplete { first: 0, last: 0 });
    send(&mut maker, limit(7, Side::Sell, 1011, 1));
    assert_eq!(report(&mut maker).0.seq, 10);
    node.stop();
}

#[test]
fn two_sessions_on_one_account_see_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut one = node.connect(1);
    let mut two = node.connect(2);
    send(&mut one, limit(1, Side::Buy, 990, 1));
    send(&mut two, limit(2, Side::Buy, 991, 1));
    // The cid space is the account's: the second session cannot reuse a live cid.
    send(&mut two, limit(1, Side::Buy, 992, 1));
    let a: Vec<_> = (0..3).map(|_| report(&mut one)).collect();
    let b: Vec<_> = (0..3).map(|_| report(&mut two)).collect();
    assert_eq!(a, b, "the same reports, the same sequence numbers");
    assert_eq!(a.iter().map(|(h, _)| h.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(
        a.iter()
            .any(|(_, r)| matches!(r, Report::Rejected { reason, .. } if *reason == RejectReason::DuplicateCid.code()))
    );
    // Either session may cancel the account's order.
    two.send(&ClientMsg::Cancel { cid: ClientOrderId(1) }).unwrap();
    assert!(matches!(report(&mut one).1, Report::Cancelled { cid: ClientOrderId(1), .. }));
    node.stop();
}

#[test]
fn after_a_restart_the_streams_continue_and_replay_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut a = node.connect(1);
    let mut b = node.connect(3);
    let mut before = vec![];
    for cid in 1..=4 {
        send(&mut a, limit(cid, Side::Sell, 1000, 1));
        before.push(report(&mut a));
    }
    send(&mut b, limit(1, Side::Buy, 1000, 3));
    for _ in 0..3 {
        before.push(report(&mut a));
    }
    drop((a, b));
    node.stop();

    let node = Node::start(dir.path(), Config::default());
    let options = Options { heartbeat_ms: 60_000, read_timeout: Some(Duration::from_secs(20)), ..Options::default() };
    let mut a =
        l2x_protocol::client::Client::connect_from(node.server().order_entry_addr(), &key(1), options, 1).unwrap();
    assert_eq!(a.info().next_seq, 8);
    let replayed: Vec<_> = (0..7).map(|_| report(&mut a)).collect();
    for ((h0, r0), (h1, r1)) in before.iter().zip(&replayed) {
        assert_eq!((h0.seq, h0.engine_in_ns, r0), (h1.seq, h1.engine_in_ns, r1), "same report, same place");
        assert_eq!((h1.gateway_in_ns, h1.engine_out_ns), (0, 0), "rebuilt reports carry no gateway times");
    }
    assert_eq!(next(&mut a), ServerMsg::ReplayComplete { first: 1, last: 7 });
    // The cumulative quantity of a partly filled order survives the restart.
    let mut b = node.connect(3);
    send(&mut b, WireOrder { tif: TimeInForce::Ioc, ..limit(2, Side::Buy, 1000, 1) });
    let (h, r) = report(&mut a);
    assert_eq!(h.seq, 8);
    assert!(matches!(r, Report::Fill { cum_qty: Qty(1), leaves: Qty(0), .. }), "{r:?}");
    node.stop();
}

/// A NewOrder frame, encoded.
fn order_frame(order: WireOrder) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_client(&ClientMsg::NewOrder(order), &mut out);
    out
}

#[test]
fn malformed_frames_get_typed_rejects_and_the_session_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut a = node.connect(1);
    let good = order_frame(limit(1, Side::Buy, 990, 1));
    let gateway_reject = |a: &mut l2x_protocol::client::Client| {
        let (h, r) = report(a);
        assert_eq!(h.seq, 0, "{r:?}");
        let Report::Rejected { cid, reason, .. } = r else { panic!("{r:?}") };
        (cid.0, reason)
    };
    // Unknown template.
    let mut f = good.clone();
    f[2..4].copy_from_slice(&999u16.to_le_bytes());
    a.send_raw(&f).unwrap();
    assert_eq!(gateway_reject(&mut a), (0, 403));
    // Unsupported version.
    let mut f = good.clone();
    f[4] = 9;
    a.send_raw(&f).unwrap();
    assert_eq!(gateway_reject(&mut a), (0, 404));
    // A block one byte short (the length field says so too).
    let mut f = good[..good.len() - 1].to_vec();
    let len = u16::try_from(f.len() - 2).unwrap();
    f[0..2].copy_from_slice(&len.to_le_bytes());
    a.send_raw(&f).unwrap();
    assert_eq!(gateway_reject(&mut a), (0, 405));
    // A field out of range (side 7): rejected with the order's cid.
    let mut f = good.clone();
    f[2 + 4 + 12] = 7;
    a.send_raw(&f).unwrap();
    assert_eq!(gateway_reject(&mut a), (1, 406));
    // Non-zero padding.
    let mut f = good.clone();
    f[2 + 4 + 20] = 1;
    a.send_raw(&f).unwrap();
    assert_eq!(gateway_reject(&mut a), (1, 406));
    // None of that reached the engine or the stream: the good order is seq 1. And a frame
    // split at every byte boundary (one write per byte) arrives whole.
    for byte in &good {
        a.send_raw(std::slice::from_ref(byte)).unwrap();
    }
    let (h, r) = report(&mut a);
    assert_eq!(h.seq, 1);
    assert!(matches!(r, Report::Accepted { cid: ClientOrderId(1), .. }));
    // Several frames in one write.
    let mut two = order_frame(limit(2, Side::Buy, 980, 1));
    two.extend(order_frame(limit(3, Side::Buy, 970, 1)));
    a.send_raw(&two).unwrap();
    assert!(matches!(report(&mut a).1, Report::Accepted { cid: ClientOrderId(2), .. }));
    assert!(matches!(report(&mut a).1, Report::Accepted { cid: ClientOrderId(3), .. }));
    // A bystander session is untouched by what follows.
    let mut bystander = node.connect(3);
    // An oversize length: the stream is broken, the session is logged out and closed.
    a.send_raw(&[0x01, 0x10, 0, 0]).unwrap();
    assert!(matches!(a.recv(), Err(ClientError::LoggedOut(r)) if r == LogoutReason::FrameTooLarge.code()));
    send(&mut bystander, limit(1, Side::Sell, 1100, 1));
    assert!(matches!(report(&mut bystander).1, Report::Accepted { .. }));
    // A length below the header: logged out as malformed.
    let mut c = node.connect(4);
    c.send_raw(&[0x02, 0x00, 0, 0]).unwrap();
    assert!(matches!(c.recv(), Err(ClientError::LoggedOut(r)) if r == LogoutReason::Malformed.code()));
    // More than 100 malformed frames: logged out.
    let mut d = node.connect(5);
    let mut junk = good.clone();
    junk[4] = 9;
    let mut outcome = None;
    for _ in 0..101 {
        d.send_raw(&junk).unwrap();
    }
    for _ in 0..101 {
        match d.recv() {
            Ok(ServerMsg::Report { report: Report::Rejected { reason: 404, .. }, .. }) => {}
            other => {
                outcome = Some(other);
                break;
            }
        }
    }
    assert!(
        matches!(outcome, Some(Err(ClientError::LoggedOut(r))) if r == LogoutReason::Malformed.code()),
        "{outcome:?}"
    );
    node.stop();
}

/// Seeded garbage on many connections (before and after logon), then a healthy session
/// still trades: nothing a client sends can stop the server or touch another session.
#[test]
fn arbitrary_bytes_never_hurt_the_server_or_other_sessions() {
    use rand::{RngExt, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut healthy = node.connect(3);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for round in 0..60 {
        if round % 2 == 1 {
            // Not logged on: noise on a raw socket.
            let mut raw = TcpStream::connect(node.server().order_entry_addr()).unwrap();
            let mut bytes = vec![0u8; rng.random_range(1..300)];
            rng.fill(&mut bytes[..]);
            let _ = raw.write_all(&bytes);
            continue;
        }
        let mut stream = node.connect(1);
        // Mostly valid headers with random blocks, sometimes pure noise.
        for _ in 0..20 {
            let mut frame = vec![0u8; rng.random_range(0..80)];
            rng.fill(&mut frame[..]);
            if rng.random_bool(0.7) && frame.len() >= 6 {
                let len = u16::try_from(frame.len() - 2).unwrap();
                frame[0..2].copy_from_slice(&len.to_le_bytes());
                frame[2..4].copy_from_slice(&rng.random_range(0u16..20).to_le_bytes());
                frame[4] = 1;
                frame[5] = 0;
            }
            if stream.send_raw(&frame).is_err() {
                break;
            }
        }
        drop(stream);
    }
    send(&mut healthy, limit(1, Side::Buy, 990, 1));
    assert!(matches!(report(&mut healthy).1, Report::Accepted { cid: ClientOrderId(1), .. }));
    let state = node.stop();
    state.check_invariants().unwrap();
}

/// Limits no test of other things should hit.
const UNTHROTTLED: Limits =
    Limits { order_rate: 10_000_000, order_burst: 10_000_000, cancel_rate: 10_000_000, cancel_burst: 10_000_000 };

#[test]
fn a_slow_reader_is_cut_off_without_stalling_anyone_and_loses_nothing_on_replay() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { limits: UNTHROTTLED, max_outbound_bytes: 64 * 1024, ..Config::default() };
    let node = Node::start(dir.path(), config);
    // Keys 1 and 2 share account 1: `slow` never reads while `loader` trades.
    let mut slow = node.connect(2);
    let mut loader = node.connect(1);
    trade_until_a_slow_consumer_is_cut_off(&node, &mut loader);
    // The loader goes on.
    send(&mut loader, limit(1000, Side::Buy, 900, 1));
    let (last, _) = report(&mut loader);
    // The slow reader gets everything that was queued, in order, then the logout.
    let mut seen = 0;
    let err = loop {
        match slow.recv() {
            Ok(ServerMsg::Report { .. }) => seen += 1,
            Ok(ServerMsg::Heartbeat) => {}
            Ok(other) => panic!("{other:?}"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, ClientError::LoggedOut(r) if r == LogoutReason::SlowConsumer.code()), "{err:?}");
    assert!(seen > 0 && slow.last_seq() < last.seq);
    // Reconnecting, it replays the rest: nothing is lost.
    let had = slow.last_seq();
    slow.reconnect().unwrap();
    while slow.last_seq() < last.seq {
        next(&mut slow);
    }
    assert_eq!(next(&mut slow), ServerMsg::ReplayComplete { first: had + 1, last: last.seq });
    node.stop();
}

/// Reads market data until the AddOrders of the three sessions' marker orders (prices 600,
/// 601, 602: far below the action, inside the band) have been applied: each session's
/// marker is its last command, so every command was applied by then.
fn read_md_until_markers(md: &mut MdClient) -> (usize, usize) {
    let mut markers = vec![600, 601, 602];
    let (mut updates, mut events, mut idle) = (0, 0, 0);
    loop {
        let (msg, end) = md.recv().unwrap();
        updates += 1;
        if let MdMsg::Heartbeat { .. } = msg {
            // One a second when nothing happens: the marker is not coming.
            idle += 1;
            assert!(idle < 20, "no marker after {updates} messages");
        }
        events += usize::from(end);
        if let MdMsg::Order { add: true, price: Price(p), .. } = msg
            && markers.contains(&p)
        {
            assert!(end, "the marker's command ends with it");
            markers.retain(|&m| m != p);
            if markers.is_empty() {
                return (updates, events);
            }
        }
    }
}

#[test]
fn market_data_snapshot_and_updates_rebuild_the_engines_book() {
    use rand::{RngExt, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config { limits: UNTHROTTLED, ..Config::default() });
    let md_addr = node.server().market_data_addr();
    let mut early = MdClient::connect(md_addr, Some(Duration::from_secs(20))).unwrap();
    let mut sessions = [node.connect(1), node.connect(3), node.connect(4)];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut late = None;
    for i in 0..3_000 {
        if i == 1_500 {
            late = Some(MdClient::connect(md_addr, Some(Duration::from_secs(20))).unwrap());
        }
        let s = &mut sessions[rng.random_range(0..3)];
        let cid = ClientOrderId(rng.random_range(1..40));
        let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
        let msg = match rng.random_range(0..100) {
            0..60 => {
                let tif = if rng.random_ratio(1, 6) { TimeInForce::Ioc } else { TimeInForce::Gtc };
                let price = 1000 + rng.random_range(-20..=20);
                ClientMsg::NewOrder(WireOrder { tif, ..limit(cid.0, side, price, rng.random_range(1..20)) })
            }
            60..82 => ClientMsg::Amend(WireAmend {
                cid,
                instrument: BTC,
                price: rng.random_bool(0.5).then(|| Price(1000 + rng.random_range(-20..=20))),
                qty: rng.random_bool(0.7).then(|| Qty(rng.random_range(1..20))),
            }),
            82..99 => ClientMsg::Cancel { cid },
            _ => ClientMsg::MassCancel { instrument: Some(BTC), side: rng.random_bool(0.5).then_some(side) },
        };
        s.send(&msg).unwrap();
    }
    for (s, price) in sessions.iter_mut().zip(600..) {
        send(s, limit(1_000_000, Side::Buy, price, 1));
    }
    let (_, early_events) = read_md_until_markers(&mut early);
    let mut late = late.unwrap();
    read_md_until_markers(&mut late);
    assert!(early_events > 500, "one end-of-event per command that changed the book: {early_events}");
    let definition = early.definitions().get(&BTC).copied();
    assert!(
        matches!(definition, Some(MdMsg::InstrumentDefinition { symbol, tick: (1, 0), lot: (1, 0), .. }) if symbol.starts_with(b"BTC-PERP\0")),
        "{definition:?}"
    );
    drop(sessions);
    let state = node.stop();
    let engine: Vec<_> =
        state.resting_orders().iter().map(|o| (o.instrument, o.side, o.price, o.order_id, o.leaves)).collect();
    assert!(engine.len() >= 10, "a real book: {} orders", engine.len());
    assert_eq!(early.book().orders(), engine, "the subscriber from the start");
    assert_eq!(late.book().orders(), engine, "the subscriber from a snapshot");
}

#[test]
fn cancel_on_disconnect_covers_orders_still_in_flight_and_a_shutdown_cancels_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut watcher = node.connect(2);
    // An order sent, and the connection gone before its ack could come back.
    let mut cod = node.connect_with(1, Options { cancel_on_disconnect: true, ..Options::default() });
    send(&mut cod, limit(1, Side::Buy, 950, 1));
    drop(cod);
    assert!(matches!(report(&mut watcher).1, Report::Accepted { cid: ClientOrderId(1), .. }));
    let (_, r) = report(&mut watcher);
    assert!(
        matches!(r, Report::Cancelled { cid: ClientOrderId(1), reason, .. } if reason == CancelReason::Disconnect.code()),
        "{r:?}"
    );
    // A session with cancel-on-disconnect and a resting order, then a server shutdown.
    let mut cod = node.connect_with(4, Options { cancel_on_disconnect: true, ..Options::default() });
    send(&mut cod, limit(7, Side::Buy, 940, 1));
    assert!(matches!(report(&mut cod).1, Report::Accepted { .. }));
    let state = node.stop();
    let resting: Vec<u64> = state.resting_orders().iter().map(|o| o.cid.0).collect();
    assert_eq!(resting, [7], "a server shutdown cancels nothing");
    drop(cod);
}

#[test]
#[allow(clippy::disallowed_methods, reason = "the test runs for a stretch of wall-clock time")]
fn a_client_that_only_reads_sends_its_own_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    // The trader goes as fast as the machine lets it: on a fast day past the default
    // 5,000 orders/s, whose throttle is not what this test is about.
    let limits =
        Limits { order_rate: 1_000_000, order_burst: 1_000_000, cancel_rate: 1_000_000, cancel_burst: 1_000_000 };
    let node = Node::start(dir.path(), Config { limits, ..Config::default() });
    // The watcher only reads; the account's reports never stop long enough for the server
    // to send it a heartbeat. Four server timeouts (3 × 400 ms) of that: an interval long
    // enough that a loaded machine's scheduling pauses do not stand in for a missed beat
    // (at 100 ms the test failed under load, with the client's code correct).
    let mut watcher = node.connect_with(2, Options { heartbeat_ms: 400, ..Options::default() });
    let mut trader = node.connect(1);
    let start = std::time::Instant::now();
    let mut cid = 0;
    while start.elapsed() < Duration::from_millis(4_800) {
        cid += 1;
        send(&mut trader, limit(cid, Side::Buy, 900, 1));
        let r = report(&mut trader).1;
        assert!(matches!(r, Report::Accepted { .. }), "{r:?}");
        trader.send(&ClientMsg::Cancel { cid: ClientOrderId(cid) }).unwrap();
        assert!(matches!(report(&mut trader).1, Report::Cancelled { .. }));
        assert!(matches!(report(&mut watcher).1, Report::Accepted { .. }));
        assert!(matches!(report(&mut watcher).1, Report::Cancelled { .. }));
    }
    send(&mut watcher, limit(cid + 1, Side::Buy, 900, 1));
    assert!(matches!(report(&mut watcher).1, Report::Accepted { .. }), "still logged on");
    node.stop();
}

/// The same tests with the node in `pipeline.mode = "single-thread"`: one thread polls the
/// sockets, sequences, journals and applies.
mod single_thread {
    use crate::node::single_thread;

    #[test]
    fn order_lifecycle_of_every_order_type_over_loopback() {
        single_thread(super::order_lifecycle_of_every_order_type_over_loopback);
    }

    #[test]
    fn logons_are_refused_with_a_reason() {
        single_thread(super::logons_are_refused_with_a_reason);
    }

    #[test]
    fn heartbeats_keep_a_reading_session_alive_and_silence_times_it_out() {
        single_thread(super::heartbeats_keep_a_reading_session_alive_and_silence_times_it_out);
    }

    #[test]
    fn throttles_reject_with_retry_after_then_disconnect_and_cancels_have_their_own_bucket() {
        single_thread(super::throttles_reject_with_retry_after_then_disconnect_and_cancels_have_their_own_bucket);
    }

    #[test]
    fn cancel_on_disconnect_cancels_only_that_sessions_live_orders() {
        single_thread(super::cancel_on_disconnect_cancels_only_that_sessions_live_orders);
    }

    #[test]
    fn a_reconnecting_client_gets_exactly_the_reports_it_missed() {
        single_thread(super::a_reconnecting_client_gets_exactly_the_reports_it_missed);
    }

    #[test]
    fn after_a_restart_the_streams_continue_and_replay_from_the_journal() {
        single_thread(super::after_a_restart_the_streams_continue_and_replay_from_the_journal);
    }

    #[test]
    fn malformed_frames_get_typed_rejects_and_the_session_goes_on() {
        single_thread(super::malformed_frames_get_typed_rejects_and_the_session_goes_on);
    }

    #[test]
    fn a_slow_reader_is_cut_off_without_stalling_anyone_and_loses_nothing_on_replay() {
        single_thread(super::a_slow_reader_is_cut_off_without_stalling_anyone_and_loses_nothing_on_replay);
    }

    #[test]
    fn market_data_snapshot_and_updates_rebuild_the_engines_book() {
        single_thread(super::market_data_snapshot_and_updates_rebuild_the_engines_book);
    }

    #[test]
    fn cancel_on_disconnect_covers_orders_still_in_flight_and_a_shutdown_cancels_nothing() {
        single_thread(super::cancel_on_disconnect_covers_orders_still_in_flight_and_a_shutdown_cancels_nothing);
    }
}
