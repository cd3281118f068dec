//! How the server ends a session, over real loopback sockets: every logout it sends can be
//! read, with its reason, followed by a clean end of stream — never a reset, whatever the
//! client is still sending. (Closing a socket with unread input makes the kernel answer
//! with a reset, which throws away what the client has not read yet, the logout included.)
//!
//! Each test reads until the end of the stream and asserts that it ended with EOF
//! (`read` → 0), not an error such as `ECONNRESET`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use l2x_gateway::server::Config;
use l2x_protocol::client::Options;
use l2x_protocol::codec::{self, ClientMsg, FrameReader, Limits, Report, ServerMsg};
use l2x_protocol::codes::{LogoutReason, SessionReject};
use l2x_types::{ClientOrderId, Side};

use crate::node::{Node, limit, trade_until_a_slow_consumer_is_cut_off};

/// Session-band reject `throttled`, as the pattern the tests match.
const THROTTLED: u16 = SessionReject::Throttled.code();

/// A logged-on session as a raw socket (the Rust client's logon, then the bytes).
fn raw_session(node: &Node, key_id: u64) -> (TcpStream, FrameReader) {
    let client = node.connect_with(key_id, Options { heartbeat_ms: 60_000, ..Options::default() });
    let (stream, reader) = client.into_parts();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    (stream, reader)
}

/// Reads every message until the stream ends: the messages, and how it ended (`Ok`: EOF).
fn read_to_end(stream: &mut TcpStream, mut reader: FrameReader) -> (Vec<ServerMsg>, io::Result<()>) {
    let mut msgs = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Some(frame) = reader.next_frame().unwrap() {
            msgs.push(codec::decode_server(frame).unwrap());
        }
        match stream.read(&mut buf) {
            Ok(0) => return (msgs, Ok(())),
            Ok(n) => reader.extend(&buf[..n]),
            Err(e) => return (msgs, Err(e)),
        }
    }
}

/// `count` NewOrder frames (cids from 1), in one buffer.
fn orders(count: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for cid in 1..=count {
        codec::encode_client(&ClientMsg::NewOrder(limit(cid, Side::Buy, 900, 1)), &mut out);
    }
    out
}

#[test]
fn flooding_client_reads_throttle_logout_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { order_rate: 1, order_burst: 5, cancel_rate: 1, cancel_burst: 5 };
    let node = Node::start(dir.path(), Config { limits, ..Config::default() });
    let (mut stream, reader) = raw_session(&node, 1);
    // Twenty thousand orders (a megabyte) without reading a byte: five pass, ten are
    // throttled, the eleventh throttled one logs the session out; the rest is dropped.
    let flood = orders(20_000);
    stream.write_all(&flood).expect("the server reads a flood to its end, it does not reset it");
    let (msgs, end) = read_to_end(&mut stream, reader);
    end.expect("a clean end of stream after the logout, not a reset");
    assert_eq!(msgs.last(), Some(&ServerMsg::Logout { reason: LogoutReason::ThrottleExceeded.code() }), "{msgs:?}");
    let throttled = msgs
        .iter()
        .filter(|m| matches!(m, ServerMsg::Report { report: Report::Rejected { reason: THROTTLED, .. }, .. }))
        .count();
    assert_eq!(throttled, 10, "twice the burst of throttled rejects, then the logout: {msgs:?}");
    assert!(
        msgs[..msgs.len() - 1].iter().all(|m| matches!(
            m,
            ServerMsg::Report { report: Report::Accepted { .. } | Report::Rejected { reason: THROTTLED, .. }, .. }
        )),
        "{msgs:?}"
    );
    node.stop();
}

/// Limits no test of other things should hit.
const UNTHROTTLED: Limits =
    Limits { order_rate: 10_000_000, order_burst: 10_000_000, cancel_rate: 10_000_000, cancel_burst: 10_000_000 };

#[test]
fn slow_consumer_that_keeps_sending_reads_its_logout_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { limits: UNTHROTTLED, max_outbound_bytes: 64 * 1024, ..Config::default() };
    let node = Node::start(dir.path(), config);
    // Keys 1 and 2 share account 1: `slow` never reads while `loader` trades.
    let (mut slow, reader) = raw_session(&node, 2);
    let mut loader = node.connect(1);
    trade_until_a_slow_consumer_is_cut_off(&node, &mut loader);
    // Cut off, the slow client goes on sending (heartbeats) while it reads its backlog.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer = slow.try_clone().unwrap();
    let (first, sending) = std::sync::mpsc::channel::<()>();
    let writing = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut chunk = Vec::new();
            for _ in 0..1000 {
                codec::encode_client(&ClientMsg::Heartbeat, &mut chunk);
            }
            let mut sent = 0usize;
            while !stop.load(Ordering::SeqCst) {
                if writer.write_all(&chunk).is_err() {
                    break;
                }
                if sent == 0 {
                    let _ = first.send(());
                }
                sent += chunk.len();
            }
            sent
        })
    };
    // Regression: the reading below could finish before the writer thread was first
    // scheduled (a loaded machine), and the test then failed on `sent > 0`. The client is
    // sending before it reads; a writer that fails at once ends (dropping `first`), and the
    // assertion on `sent` says so.
    let _ = sending.recv();
    let (msgs, end) = read_to_end(&mut slow, reader);
    stop.store(true, Ordering::SeqCst);
    let sent = writing.join().unwrap();
    end.expect("a clean end of stream after the logout, not a reset");
    assert_eq!(msgs.last(), Some(&ServerMsg::Logout { reason: LogoutReason::SlowConsumer.code() }));
    assert!(msgs.len() > 100, "the backlog came first: {} messages", msgs.len());
    assert!(sent > 0, "the client was sending while it read");
    node.stop();
}

#[test]
fn broken_framing_with_more_bytes_behind_reads_its_logout_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let garbage = vec![0x55u8; 1 << 20];
    // Logged on: a length of 4097, then a megabyte more.
    let (mut stream, reader) = raw_session(&node, 1);
    let mut bytes = vec![0x01, 0x10];
    bytes.extend_from_slice(&garbage);
    stream.write_all(&bytes).expect("the server reads the rest of a broken stream, it does not reset it");
    let (msgs, end) = read_to_end(&mut stream, reader);
    end.expect("a clean end of stream after the logout, not a reset");
    assert_eq!(msgs, [ServerMsg::Logout { reason: LogoutReason::FrameTooLarge.code() }]);
    // Not logged on: a length of 3, then a megabyte more.
    let mut stream = TcpStream::connect(node.server().order_entry_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut bytes = vec![0x03, 0x00];
    bytes.extend_from_slice(&garbage);
    stream.write_all(&bytes).expect("the server reads the rest of a broken stream, it does not reset it");
    let (msgs, end) = read_to_end(&mut stream, FrameReader::new());
    end.expect("a clean end of stream after the logout, not a reset");
    assert_eq!(msgs, [ServerMsg::Logout { reason: LogoutReason::Malformed.code() }]);
    node.stop();
}

#[test]
fn client_logout_then_half_close_still_reads_the_servers_logout() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let (mut stream, reader) = raw_session(&node, 1);
    // Any reason code: the answer is client_request.
    let mut bytes = Vec::new();
    codec::encode_client(&ClientMsg::Logout { reason: 999 }, &mut bytes);
    stream.write_all(&bytes).unwrap();
    // Done sending (FIN), still reading: the server's logout must come before its EOF.
    stream.shutdown(Shutdown::Write).unwrap();
    let (msgs, end) = read_to_end(&mut stream, reader);
    end.expect("a clean end of stream");
    assert_eq!(msgs, [ServerMsg::Logout { reason: LogoutReason::ClientRequest.code() }]);
    node.stop();
}

#[test]
fn reports_after_a_client_logout_wait_in_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let (mut stream, reader) = raw_session(&node, 1);
    // An order and a logout in one write: the session ends with the logout; whatever the
    // order's report finds, it is not sent on this connection if it comes after it.
    let mut bytes = Vec::new();
    codec::encode_client(&ClientMsg::NewOrder(limit(1, Side::Buy, 900, 1)), &mut bytes);
    codec::encode_client(&ClientMsg::Logout { reason: 1 }, &mut bytes);
    stream.write_all(&bytes).unwrap();
    let (msgs, end) = read_to_end(&mut stream, reader);
    end.expect("a clean end of stream");
    assert_eq!(msgs.last(), Some(&ServerMsg::Logout { reason: LogoutReason::ClientRequest.code() }));
    assert!(msgs.len() <= 2, "{msgs:?}");
    // The report is in the account's stream: a logon with resume_from 1 replays it.
    let addr = node.server().order_entry_addr();
    let options = Options { heartbeat_ms: 60_000, read_timeout: Some(Duration::from_secs(20)), ..Options::default() };
    let mut again = l2x_protocol::client::Client::connect_from(addr, &crate::node::key(1), options, 1).unwrap();
    // (If the report was still in flight at the logon, it comes live, after an empty replay.)
    let (h, r) = loop {
        match crate::node::next(&mut again) {
            ServerMsg::Report { header, report, .. } => break (header, report),
            ServerMsg::ReplayComplete { .. } => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(h.seq, 1);
    assert!(matches!(r, Report::Accepted { cid: ClientOrderId(1), .. }), "{r:?}");
    node.stop();
}

/// The same tests with the node in `pipeline.mode = "single-thread"`.
mod single_thread {
    use crate::node::single_thread;

    #[test]
    fn flooding_client_reads_throttle_logout_not_reset() {
        single_thread(super::flooding_client_reads_throttle_logout_not_reset);
    }

    #[test]
    fn reports_after_a_client_logout_wait_in_the_stream() {
        single_thread(super::reports_after_a_client_logout_wait_in_the_stream);
    }
}
