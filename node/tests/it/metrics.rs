//! The metrics endpoint of a running node, over a real socket: what `GET /metrics` says
//! (names, types, values, and the one family that waits for its first sample), what it
//! answers to anything else (404, 405, 400), how long it waits for a request, and that
//! the port closes when the node stops.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use l2x_gateway::auth::Keys;
use l2x_node::config::{ChainKind, Config};
use l2x_protocol::codec::Report;
use l2x_types::Side;

use crate::node::{KEYS, instrument, key, limit, report, send};

/// A node with its metrics endpoint on a free loopback port.
fn node(dir: &std::path::Path) -> l2x_node::Node {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = Config { data_dir: dir.to_path_buf(), ..Config::default() };
    (config.ports.order_entry, config.ports.market_data, config.ports.metrics) = (any, any, any);
    config.instruments = vec![instrument()];
    config.settlement.chain = ChainKind::None;
    let keys = Keys::from_keys(KEYS.iter().map(|&(k, _)| key(k))).unwrap();
    l2x_node::Node::start(&config, keys).unwrap()
}

/// Sends `request` as it is and reads the answer to the end of the stream: (status line,
/// head, body).
fn exchange(addr: SocketAddr, request: &[u8]) -> (String, String, String) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    conn.write_all(request).unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.lines().next().unwrap_or_default().to_string(), head.to_string(), body.to_string())
}

#[test]
fn metrics_answers_get_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let addr = node.metrics().unwrap().addr();
    let (status, head, body) = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"), "{head}");
    assert!(head.contains("\r\nConnection: close"), "{head}");
    for family in ["l2x_sessions gauge", "l2x_fills_total counter", "l2x_order_to_ack_seconds histogram"] {
        assert!(body.contains(&format!("# TYPE {family}\n")), "{family}: {body}");
    }
    assert!(body.contains("\nl2x_ring_capacity{ring=\"input\"} 4096\n"), "{body}");
    assert!(body.contains("\nl2x_open_interest_lots{instrument=\"0\"} 0\n"), "{body}");
    assert!(body.contains("\nl2x_order_to_ack_seconds_bucket{le=\"0.000005\"} 0\n"), "{body}");
    assert!(!body.contains("l2x_settlement_"), "no settlement, no settlement metrics: {body}");
    // No reject yet: the family is left out (the encoder writes none without a sample).
    assert!(!body.contains("l2x_rejects_total"), "{body}");

    let (status, _, body) = exchange(addr, b"GET /other HTTP/1.1\r\n\r\n");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 404 Not Found", "l2x: the metrics are at /metrics\n"));
    let (status, head, _) = exchange(addr, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert!(head.contains("\r\nAllow: GET"), "{head}");
    assert_eq!(exchange(addr, b"garbage\r\n\r\n").0, "HTTP/1.1 400 Bad Request");
    node.stop().unwrap();
}

#[test]
fn metrics_count_rejects_by_reason_once_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let addr = node.metrics().unwrap().addr();
    let mut client = l2x_protocol::client::Client::connect(
        node.server().order_entry_addr(),
        &key(1),
        l2x_protocol::client::Options { read_timeout: Some(Duration::from_secs(20)), ..Default::default() },
    )
    .unwrap();
    // Far outside the price band.
    send(&mut client, limit(1, Side::Buy, 1, 1));
    assert!(matches!(report(&mut client).1, Report::Rejected { .. }));
    let (_, _, body) = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(body.contains("# TYPE l2x_rejects_total counter\n"), "{body}");
    assert!(body.contains("\nl2x_rejects_total{reason=\""), "{body}");
    node.stop().unwrap();
}

/// A client that never finishes its request is cut off after 2 s, and the node's stop
/// closes the port.
#[test]
#[allow(clippy::disallowed_methods, reason = "the request deadline is wall-clock time")]
fn metrics_waits_two_seconds_for_a_request_and_closes_at_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let addr = node.metrics().unwrap().addr();
    let started = Instant::now();
    let (status, _, _) = exchange(addr, b"GET /metrics HTTP/1.1\r\n");
    let waited = started.elapsed();
    assert!(status.is_empty() || status.contains("408"), "{status}");
    assert!(waited >= Duration::from_millis(1_900) && waited < Duration::from_secs(10), "{waited:?}");
    node.stop().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "the port is closed after the stop");
}
