//! Withdrawals over the wire (docs/PROTOCOL.md, "Withdrawals"), over loopback sockets, a real
//! pipeline and a real journal: `Withdraw` answered `Withdrawn` with the collateral after it
//! or `Rejected` with the engine's reason and the request id, malformed frames answered as
//! any other, and the answers replayed byte for byte after a reconnect and rebuilt after a
//! restart. The node is bound to a vault, every account funded with 1,000,000 USDC by an L1
//! deposit ([`Node::start_bound`]): unbound, a wire withdrawal is refused `no_vault`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use l2x_engine::StateMachine;
use l2x_gateway::server::Config;
use l2x_protocol::client::{Client, Options};
use l2x_protocol::codec::{self, ClientMsg, FLAG_POSSIBLE_DUPLICATE, Limits, Logon, Report, ReportHeader, ServerMsg};
use l2x_protocol::codes::LogoutReason;
use l2x_protocol::logon::sign;
use l2x_types::{AccountId, Amount, ClientOrderId, RejectReason, Side};

use crate::node::{Node, gateway_reject, key, limit, next, report, send};

/// Micro-USDC in one USDC.
const USDC: i64 = 1_000_000;
/// What every account of the test node starts with.
const START: i64 = 1_000_000 * USDC;

fn withdraw(client: &mut Client, request_id: u64, amount: i64) {
    client.send(&ClientMsg::Withdraw { request_id, amount: Amount(amount) }).unwrap();
}

/// The account's collateral in a final state.
fn collateral(state: &StateMachine, account: u64) -> i64 {
    let ledger = state.ledger();
    ledger.account(ledger.slot(AccountId(account)).unwrap()).collateral
}

/// The next report, which must be a `Rejected` the engine made (in the stream: seq > 0):
/// (seq, cid, reason).
fn engine_reject(client: &mut Client) -> (u64, u64, u16) {
    let (h, r) = report(client);
    let Report::Rejected { cid, reason, retry_after_ms: 0 } = r else { panic!("{r:?}") };
    assert_ne!(h.seq, 0, "an engine reject is in the account's stream");
    (h.seq, cid.0, reason)
}

#[test]
fn a_withdrawal_is_answered_with_the_exact_collateral_after_it_on_every_session_of_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_bound(dir.path(), Config::default());
    let mut a = node.connect(1);
    let mut drop_copy = node.connect(2);
    withdraw(&mut a, 41, 250 * USDC);
    let (h, r) = report(&mut a);
    assert_eq!(
        r,
        Report::Withdrawn { request_id: 41, amount: Amount(250 * USDC), collateral: Amount(START - 250 * USDC) }
    );
    assert_eq!(h.seq, 1);
    assert!(h.gateway_in_ns > 0 && h.engine_in_ns > 0 && h.engine_out_ns >= h.gateway_in_ns, "{h:?}");
    assert_eq!(report(&mut drop_copy), (h, r), "the same report to the account's other session");
    // A second one, down to the last micro-USDC the account holds.
    withdraw(&mut a, 42, START - 250 * USDC);
    let (h, r) = report(&mut a);
    assert_eq!(
        (h.seq, r),
        (2, Report::Withdrawn { request_id: 42, amount: Amount(START - 250 * USDC), collateral: Amount(0) })
    );
    // Another account is untouched.
    let state = node.stop();
    assert_eq!((collateral(&state, 1), collateral(&state, 2)), (0, START));
    state.check_invariants().unwrap();
}

#[test]
fn withdrawing_more_than_the_free_margin_is_refused_200_and_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_bound(dir.path(), Config::default());
    let mut a = node.connect(1);
    // More than the collateral.
    withdraw(&mut a, 7, START + 1);
    assert_eq!(engine_reject(&mut a), (1, 7, RejectReason::InsufficientMargin.code()));
    // A bid of 1000 lots at 1000 ticks (1,000,000 USDC notional) asks 10 % of initial margin:
    // 900,000 USDC are free, not a micro-USDC more.
    send(&mut a, limit(1, Side::Buy, 1000, 1000));
    assert!(matches!(report(&mut a).1, Report::Accepted { .. }));
    withdraw(&mut a, 8, 900_000 * USDC + 1);
    assert_eq!(engine_reject(&mut a), (3, 8, RejectReason::InsufficientMargin.code()));
    // Nothing moved: the whole free margin is still there, exactly.
    withdraw(&mut a, 9, 900_000 * USDC);
    let (h, r) = report(&mut a);
    assert_eq!(
        (h.seq, r),
        (4, Report::Withdrawn { request_id: 9, amount: Amount(900_000 * USDC), collateral: Amount(100_000 * USDC) })
    );
    withdraw(&mut a, 10, 1);
    assert_eq!(engine_reject(&mut a), (5, 10, RejectReason::InsufficientMargin.code()));
    let state = node.stop();
    assert_eq!(collateral(&state, 1), 100_000 * USDC);
}

#[test]
fn a_withdrawal_of_zero_or_less_is_refused_109() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_bound(dir.path(), Config::default());
    let mut a = node.connect(1);
    for (seq, (request_id, amount)) in [(0, 0), (u64::MAX, -1), (3, i64::MIN)].into_iter().enumerate() {
        withdraw(&mut a, request_id, amount);
        let seq = u64::try_from(seq).unwrap() + 1;
        assert_eq!(engine_reject(&mut a), (seq, request_id, RejectReason::BadAmount.code()), "amount {amount}");
    }
    let state = node.stop();
    assert_eq!(collateral(&state, 1), START);
}

/// A raw connection that has sent `bytes` and nothing else; what it reads until the end of
/// the stream.
fn raw_exchange(node: &Node, bytes: &[u8]) -> Vec<ServerMsg> {
    let mut stream = TcpStream::connect(node.server().order_entry_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(bytes).unwrap();
    let mut reader = codec::FrameReader::new();
    let (mut msgs, mut buf) = (Vec::new(), [0u8; 4096]);
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

/// A `Withdraw` frame, encoded.
fn withdraw_frame(request_id: u64, amount: i64) -> Vec<u8> {
    let mut f = Vec::new();
    codec::encode_client(&ClientMsg::Withdraw { request_id, amount: Amount(amount) }, &mut f);
    f
}

#[test]
fn a_malformed_withdraw_frame_is_a_gateway_reject_and_withdraws_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_bound(dir.path(), Config::default());
    let mut a = node.connect(1);
    let good = withdraw_frame(5, 10 * USDC);
    assert_eq!(good.len(), 2 + 4 + 16);
    // A block one byte short, and one byte long (each length field saying so): 405, cid 0.
    let mut short = good[..good.len() - 1].to_vec();
    short[0..2].copy_from_slice(&19u16.to_le_bytes());
    let mut long = good.clone();
    long.push(0);
    long[0..2].copy_from_slice(&21u16.to_le_bytes());
    for f in [short, long] {
        a.send_raw(&f).unwrap();
        assert_eq!(gateway_reject(&mut a), (0, 405));
    }
    // A header flag: 406 with the request id.
    let mut flagged = good.clone();
    flagged[5] = 1;
    a.send_raw(&flagged).unwrap();
    assert_eq!(gateway_reject(&mut a), (5, 406));
    // Before a logon, a withdrawal is refused like anything but a logon.
    let logout = vec![ServerMsg::Logout { reason: LogoutReason::NotLoggedIn.code() }];
    assert_eq!(raw_exchange(&node, &good), logout);
    // None of that reached the engine: the good frame is the account's first report.
    a.send_raw(&good).unwrap();
    let (h, r) = report(&mut a);
    assert_eq!(
        (h.seq, r),
        (1, Report::Withdrawn { request_id: 5, amount: Amount(10 * USDC), collateral: Amount(START - 10 * USDC) })
    );
    let state = node.stop();
    assert_eq!(collateral(&state, 1), START - 10 * USDC);
}

#[allow(clippy::disallowed_methods, reason = "logons carry the client's wall-clock time")]
fn now_ns() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()).unwrap()
}

/// Logs key `key_id` on over a raw socket asking for a replay from `resume_from`; returns
/// every frame it reads, as bytes (without the length field), up to `ReplayComplete`.
fn raw_replay(node: &Node, key_id: u64, resume_from: u64) -> Vec<Vec<u8>> {
    let (ts, secret) = (now_ns(), [u8::try_from(key_id).unwrap(); 32]);
    let logon = Logon {
        key_id,
        timestamp_ns: ts,
        nonce: ts,
        signature: sign(&secret, key_id, ts, ts),
        heartbeat_ms: 60_000,
        cancel_on_disconnect: false,
        resume_from,
    };
    let mut stream = TcpStream::connect(node.server().order_entry_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut out = Vec::new();
    codec::encode_client(&ClientMsg::Logon(logon), &mut out);
    stream.write_all(&out).unwrap();
    let mut reader = codec::FrameReader::new();
    let (mut frames, mut buf) = (Vec::new(), [0u8; 4096]);
    loop {
        while let Some(frame) = reader.next_frame().unwrap() {
            let done = matches!(codec::decode_server(frame).unwrap(), ServerMsg::ReplayComplete { .. });
            frames.push(frame.to_vec());
            if done {
                return frames;
            }
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before ReplayComplete");
        reader.extend(&buf[..n]);
    }
}

/// A report as its frame's bytes (without the length field).
fn frame_of(header: ReportHeader, report: Report, possible_duplicate: bool) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_server(&ServerMsg::Report { header, report, possible_duplicate }, &mut out);
    out.split_off(2)
}

#[test]
fn a_replay_after_a_reconnect_sends_the_same_withdrawn_bytes_and_a_restart_rebuilds_them() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_bound(dir.path(), Config::default());
    let mut a = node.connect(1);
    withdraw(&mut a, 77, 123 * USDC);
    let live_ok = report(&mut a);
    withdraw(&mut a, 78, START);
    let live_refused = report(&mut a);
    assert_eq!(live_refused.1, Report::Rejected { cid: ClientOrderId(78), reason: 200, retry_after_ms: 0 });
    // The account's other key logs on asking from seq 1: the frames it reads are the live
    // reports' bytes but for the possible-duplicate flag (header byte 3).
    let frames = raw_replay(&node, 2, 1);
    assert!(matches!(codec::decode_server(&frames[0]).unwrap(), ServerMsg::LogonAck { next_seq: 3, .. }));
    for (replayed, (h, r)) in frames[1..3].iter().zip([live_ok, live_refused]) {
        assert_eq!(replayed, &frame_of(h, r, true), "{r:?}");
        let mut live = frame_of(h, r, false);
        assert_eq!(live[3], 0);
        live[3] = FLAG_POSSIBLE_DUPLICATE;
        assert_eq!(replayed, &live);
    }
    assert_eq!(codec::decode_server(&frames[3]).unwrap(), ServerMsg::ReplayComplete { first: 1, last: 2 });
    drop(a);
    node.stop();

    // After a restart the stream is rebuilt from the journal: the same reports at the same
    // numbers, without the gateway's two times (not in the journal).
    let node = Node::start_bound(dir.path(), Config::default());
    let options = Options { heartbeat_ms: 60_000, read_timeout: Some(Duration::from_secs(20)), ..Options::default() };
    let mut a = Client::connect_from(node.server().order_entry_addr(), &key(1), options, 1).unwrap();
    assert_eq!(a.info().next_seq, 3);
    for (h, r) in [live_ok, live_refused] {
        let rebuilt = ReportHeader { gateway_in_ns: 0, engine_out_ns: 0, ..h };
        assert_eq!(report(&mut a), (rebuilt, r));
    }
    assert_eq!(next(&mut a), ServerMsg::ReplayComplete { first: 1, last: 2 });
    // And the account's collateral went on from there.
    withdraw(&mut a, 79, USDC);
    let (h, r) = report(&mut a);
    assert_eq!(
        (h.seq, r),
        (3, Report::Withdrawn { request_id: 79, amount: Amount(USDC), collateral: Amount(START - 124 * USDC) })
    );
    node.stop();
}

/// Issue 16 review: a node bound to no vault refuses a wire withdrawal `no_vault` (before
/// any other check: an amount of 0 too), in the account's stream with the request id, and
/// moves nothing. The batch would list it, and a vault pays no account without an L1 owner.
#[test]
fn an_unbound_node_refuses_a_wire_withdrawal_117_and_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut a = node.connect(1);
    withdraw(&mut a, 31, 250 * USDC);
    assert_eq!(engine_reject(&mut a), (1, 31, RejectReason::NoVault.code()));
    withdraw(&mut a, 32, 0);
    assert_eq!(engine_reject(&mut a), (2, 32, 117));
    let state = node.stop();
    assert_eq!(collateral(&state, 1), START);
    assert_eq!(state.ledger().flows().1, 0, "no withdrawal at all");
}

/// A `Withdraw` takes a token of the order bucket: with a burst of 1, the second at once is
/// the gateway's `throttled` (seq 0) with its request id and a retry time, and withdraws
/// nothing.
#[test]
fn a_withdraw_past_the_order_bucket_is_throttled_400_with_its_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { order_rate: 1, order_burst: 1, cancel_rate: 1, cancel_burst: 10 };
    let node = Node::start_bound(dir.path(), Config { limits, ..Config::default() });
    let mut a = node.connect(1);
    withdraw(&mut a, 51, USDC);
    assert!(matches!(report(&mut a), (h, Report::Withdrawn { request_id: 51, .. }) if h.seq == 1));
    withdraw(&mut a, 52, USDC);
    let (h, r) = report(&mut a);
    assert_eq!(h.seq, 0, "a gateway reject is not part of the account's stream");
    let Report::Rejected { cid, reason, retry_after_ms } = r else { panic!("{r:?}") };
    assert_eq!((cid, reason), (ClientOrderId(52), RejectReason::Throttled.code()));
    assert!((1..=1000).contains(&retry_after_ms), "{retry_after_ms}");
    let state = node.stop();
    assert_eq!(collateral(&state, 1), START - USDC);
}

/// The same test with the node in `pipeline.mode = "single-thread"`.
mod single_thread {
    #[test]
    fn a_replay_after_a_reconnect_sends_the_same_withdrawn_bytes_and_a_restart_rebuilds_them() {
        crate::node::single_thread(
            super::a_replay_after_a_reconnect_sends_the_same_withdrawn_bytes_and_a_restart_rebuilds_them,
        );
    }
}
