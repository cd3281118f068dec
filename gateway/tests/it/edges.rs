//! The corners docs/PROTOCOL.md documents, pinned over loopback sockets and a real pipeline:
//! what a client written from the document alone would otherwise have to guess.

use std::time::Duration;

use l2x_gateway::client::{Client, Options};
use l2x_gateway::codec::{ClientMsg, ServerMsg};
use l2x_gateway::server::Config;
use l2x_gateway::throttle::Limits;
use l2x_types::Side;

use crate::node::{Node, key, limit, next, report, send};

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
    let mut c = Client::connect_from(node.server.order_entry_addr(), &key(1), options(), 1_000_000).unwrap();
    assert_eq!(c.info().next_seq, 3002);
    assert_eq!(next(&mut c), ServerMsg::ReplayComplete { first: 0, last: 0 });
    send(&mut c, limit(1000, Side::Buy, 900, 1));
    assert_eq!(report(&mut c).0.seq, 3002);
    node.stop();
}
