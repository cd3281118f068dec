//! `l2x serve` as a real process: it listens, trades over TCP with the client library,
//! publishes market data and metrics; SIGKILLed while clients trade and restarted on the
//! same data directory, it has every order a client saw acknowledged and the clients
//! reconnect, replay what they missed and go on; SIGTERM stops it cleanly with a final
//! snapshot.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use l2x_protocol::client::{Client, ClientError, MdClient, Options};
use l2x_protocol::codec::{ClientMsg, MdMsg, Report, ServerMsg, WireOrder};
use l2x_protocol::logon::Key;
use l2x_types::{AccountId, ClientOrderId, InstrumentId, Price, Qty, Side, TimeInForce};

/// A running `l2x serve`, killed when dropped.
struct Serve {
    child: Child,
    order_entry: SocketAddr,
    market_data: SocketAddr,
    metrics: SocketAddr,
    /// The sequence number it recovered to.
    recovered: u64,
    /// The rest of its standard output.
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Serve {
    serve_on(dir, "127.0.0.1:0")
}

/// `l2x serve` with its order-entry port at `order_entry`.
fn serve_on(dir: &Path, order_entry: &str) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_l2x"))
        .args(["serve", "--data-dir", dir.to_str().unwrap(), "--order-entry", order_entry])
        .args(["--market-data", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("l2x serve ended at once").unwrap();
    let recovered = first.split("recovered to seq ").nth(1).and_then(|r| r.split([')', ',']).next());
    let recovered: u64 = recovered.unwrap_or_else(|| panic!("{first}")).parse().unwrap();
    let mut addr = |prefix: &str| loop {
        let line = lines.next().expect("l2x serve ended before listening").unwrap();
        if let Some(a) = line.strip_prefix(prefix) {
            return a.trim().trim_start_matches("http://").trim_end_matches("/metrics").parse::<SocketAddr>().unwrap();
        }
    };
    let order_entry = addr("order entry ");
    let market_data = addr("market data ");
    let metrics = addr("metrics ");
    Serve { child, order_entry, market_data, metrics, recovered, lines }
}

/// `GET path` on the metrics port: (status line, body).
fn http_get(addr: SocketAddr, request: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of the sample `name` (with its labels, if any) in a metrics text.
fn sample(text: &str, name: &str) -> u64 {
    let line = text.lines().find(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with(' ')));
    let line = line.unwrap_or_else(|| panic!("no {name} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn demo_key(id: u8) -> Key {
    Key::new(u64::from(id), AccountId(u64::from(id)), [id; 32])
}

fn options() -> Options {
    Options { heartbeat_ms: 60_000, read_timeout: Some(Duration::from_secs(20)), ..Options::default() }
}

fn report(c: &mut Client) -> Report {
    loop {
        match c.recv().unwrap() {
            ServerMsg::Report { report, .. } => return report,
            ServerMsg::Heartbeat => {}
            other => panic!("{other:?}"),
        }
    }
}

/// A BTC-PERP order: price in ticks of 0.5, quantity in lots of 0.001.
fn btc(cid: u64, side: Side, price: i64, qty: i64, tif: TimeInForce) -> WireOrder {
    WireOrder { tif, ..WireOrder::limit(ClientOrderId(cid), InstrumentId(0), side, Price(price), Qty(qty)) }
}

/// Reads the market-data snapshot of both default instruments.
fn snapshot(addr: SocketAddr) -> MdClient {
    let mut md = MdClient::connect(addr, Some(Duration::from_secs(20))).unwrap();
    let mut ends = 0;
    while ends < 2 {
        if let (MdMsg::SnapshotEnd { .. }, _) = md.recv().unwrap() {
            ends += 1;
        }
    }
    md
}

#[test]
fn serve_trades_over_tcp_and_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let node = serve(dir.path());
    let mut maker = Client::connect(node.order_entry, &demo_key(1), options()).unwrap();
    let mut taker = Client::connect(node.order_entry, &demo_key(2), options()).unwrap();
    maker.send(&ClientMsg::NewOrder(btc(1, Side::Sell, 100_010, 2_000, TimeInForce::Gtc))).unwrap();
    maker.send(&ClientMsg::NewOrder(btc(2, Side::Buy, 99_990, 1_000, TimeInForce::Gtc))).unwrap();
    assert!(matches!(report(&mut maker), Report::Accepted { .. }));
    assert!(matches!(report(&mut maker), Report::Accepted { .. }));
    taker.send(&ClientMsg::NewOrder(btc(1, Side::Buy, 100_010, 500, TimeInForce::Ioc))).unwrap();
    assert!(matches!(report(&mut taker), Report::Accepted { .. }));
    assert!(matches!(report(&mut taker), Report::Fill { qty: Qty(500), .. }));
    assert!(matches!(report(&mut maker), Report::Fill { qty: Qty(500), leaves: Qty(1_500), .. }));
    let md = snapshot(node.market_data);
    assert_eq!(md.definitions().len(), 2, "BTC-PERP and ETH-PERP");
    let book = md.book().orders();
    assert_eq!(book.len(), 2);
    let seen = maker.last_seq();
    assert_eq!(seen, 3);

    // The metrics endpoint counts what happened: 3 orders accepted (the IOC traded), one
    // fill, 2 sessions, 0.5 BTC of open interest, an ack latency for each order.
    let (status, metrics) = http_get(node.metrics, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(sample(&metrics, "l2x_orders_accepted_total"), 3, "{metrics}");
    assert_eq!(sample(&metrics, "l2x_fills_total"), 1);
    assert_eq!(sample(&metrics, "l2x_sessions"), 2);
    assert_eq!(sample(&metrics, "l2x_open_interest_lots{instrument=\"0\"}"), 500);
    assert_eq!(sample(&metrics, "l2x_order_to_ack_seconds_count"), 3);
    assert_eq!(sample(&metrics, "l2x_order_to_ack_seconds_bucket{le=\"+Inf\"}"), 3);
    assert!(sample(&metrics, "l2x_journal_seq") >= 11, "listings, prices, deposits and 3 orders");
    assert_eq!(sample(&metrics, "l2x_ring_capacity{ring=\"input\"}"), 4096);
    assert!(metrics.contains("# TYPE l2x_order_to_ack_seconds histogram\n"));
    // A reject is counted by its reason.
    taker.send(&ClientMsg::NewOrder(btc(2, Side::Buy, 100_010, 1, TimeInForce::Gtd))).unwrap();
    assert!(matches!(report(&mut taker), Report::Rejected { .. }));
    let (_, metrics) = http_get(node.metrics, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(sample(&metrics, "l2x_rejects_total{reason=\"bad_expiry\"}"), 1, "{metrics}");
    assert_eq!(http_get(node.metrics, "GET /other HTTP/1.1\r\n\r\n").0, "HTTP/1.1 404 Not Found");
    assert_eq!(http_get(node.metrics, "POST /metrics HTTP/1.1\r\n\r\n").0, "HTTP/1.1 405 Method Not Allowed");

    // SIGKILL, then a restart on the same directory.
    drop(node);
    let node = serve(dir.path());
    let mut maker = Client::connect_from(node.order_entry, &demo_key(1), options(), 1).unwrap();
    assert_eq!(maker.info().next_seq, seen + 1, "the stream continues where it was");
    let replayed: Vec<Report> = (0..3).map(|_| report(&mut maker)).collect();
    assert!(matches!(replayed[2], Report::Fill { qty: Qty(500), .. }), "{replayed:?}");
    assert_eq!(maker.recv().unwrap(), ServerMsg::ReplayComplete { first: 1, last: 3 });
    assert_eq!(snapshot(node.market_data).book().orders(), book, "the book survived");
    // And trading goes on.
    maker.send(&ClientMsg::Cancel { cid: ClientOrderId(1) }).unwrap();
    assert!(matches!(report(&mut maker), Report::Cancelled { qty: Qty(1_500), .. }));
}

/// What one trading client saw before and after the kill.
struct Traded {
    account: AccountId,
    /// Client order ids acknowledged (accepted) before the kill.
    acked: Vec<ClientOrderId>,
    /// Reports replayed after the reconnect (seq, report).
    replayed: Vec<(u64, Report)>,
    /// The new order after the restart was acknowledged.
    continued: bool,
}

/// Sends orders (resting bids and asks around 50,000, every third an IOC that crosses) and
/// reports each acknowledgement on `acks`, until the connection dies; then waits for
/// `restarted`, reconnects (same address) resuming after the last report it saw, reads the
/// replay to its end, and sends one more order.
fn trade_until_killed(
    addr: SocketAddr,
    id: u8,
    acks: &std::sync::mpsc::Sender<()>,
    restarted: &std::sync::mpsc::Receiver<()>,
) -> Traded {
    let key = demo_key(id);
    let mut client = Client::connect(addr, &key, options()).unwrap();
    let mut acked = Vec::new();
    let mut cid = 0u64;
    'trading: loop {
        cid += 1;
        let away = i64::try_from(cid % 7).unwrap() + 1;
        let order = match cid % 3 {
            0 => btc(cid, Side::Sell, 99_990, 3, TimeInForce::Ioc),
            1 => btc(cid, Side::Buy, 100_000 - away, 2, TimeInForce::Gtc),
            _ => btc(cid, Side::Sell, 100_000 + away, 2, TimeInForce::Gtc),
        };
        if client.send(&ClientMsg::NewOrder(order)).is_err() {
            break;
        }
        loop {
            match client.recv() {
                Ok(ServerMsg::Report { report: Report::Accepted { cid: c, .. }, .. }) if c.0 == cid => {
                    acked.push(c);
                    // The test may have stopped counting (and killed the server).
                    let _ = acks.send(());
                    break;
                }
                Ok(ServerMsg::Report { report: Report::Rejected { cid: c, .. }, .. }) if c.0 == cid => break,
                Ok(_) => {}
                Err(_) => break 'trading,
            }
        }
    }
    restarted.recv().unwrap();
    client.reconnect().unwrap();
    let mut replayed = Vec::new();
    loop {
        match client.recv().unwrap() {
            ServerMsg::Report { header, report, .. } => replayed.push((header.seq, report)),
            ServerMsg::ReplayComplete { .. } => break,
            ServerMsg::Heartbeat => {}
            other => panic!("{other:?}"),
        }
    }
    let next = ClientOrderId(1_000_000);
    client.send(&ClientMsg::NewOrder(btc(next.0, Side::Buy, 99_000, 1, TimeInForce::Gtc))).unwrap();
    let continued = loop {
        if let Report::Accepted { cid, .. } = report(&mut client) {
            break cid == next;
        }
    };
    Traded { account: key.account, acked, replayed, continued }
}

/// Orders the engine accepted, by (account, cid).
type Accepted = std::collections::BTreeSet<(AccountId, ClientOrderId)>;

/// Accepted orders, by (account, cid), and the orders still resting (order id → open
/// quantity), from the journal in `dir`.
fn journal_orders(dir: &Path) -> (Accepted, Vec<(u64, i64)>) {
    use l2x_types::Event;
    let mut sm = l2x_engine::StateMachine::with_ledger(l2x_risk::Ledger::default());
    let (mut accepted, mut live) = (std::collections::BTreeSet::new(), std::collections::BTreeMap::new());
    let mut events = Vec::new();
    l2x_sequencer::journal::scan(dir, |cmd| {
        events.clear();
        sm.apply(&cmd, &mut events);
        for ev in &events {
            match *ev {
                Event::Accepted { account, cid, order_id, qty, .. } => {
                    accepted.insert((account, cid));
                    live.insert(order_id.0, qty.0);
                }
                Event::Trade(t) => {
                    for (id, leaves) in [(t.maker_order_id, t.maker_leaves), (t.taker_order_id, t.taker_leaves)] {
                        if leaves == Qty::ZERO {
                            live.remove(&id.0);
                        } else if let Some(q) = live.get_mut(&id.0) {
                            *q = leaves.0;
                        }
                    }
                }
                Event::Cancelled { order_id, leaves, .. } => {
                    if leaves == Qty::ZERO {
                        live.remove(&order_id.0);
                    } else if let Some(q) = live.get_mut(&order_id.0) {
                        *q = leaves.0;
                    }
                }
                _ => {}
            }
        }
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    (accepted, live.into_iter().collect())
}

/// The crash test of the whole node: three clients trade over TCP as fast as they can,
/// `l2x serve` is SIGKILLed under them, then restarted on the same directory and port.
/// Every order a client saw acknowledged is in the recovered journal; the recovered book
/// (as the market-data snapshot shows it) is the journal's; each client reconnects,
/// replays exactly the reports it missed (in order, numbered on from the last it saw), and
/// goes on trading.
#[test]
fn serve_killed_while_clients_trade_keeps_every_acknowledged_order() {
    let dir = tempfile::tempdir().unwrap();
    // A fixed port, so the clients reconnect to where they were.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let node = serve_on(dir.path(), &port.to_string());
    let (acks_tx, acks) = std::sync::mpsc::channel();
    let mut restart = Vec::new();
    let mut clients = Vec::new();
    for id in 1..=3u8 {
        let (tx, rx) = std::sync::mpsc::channel();
        restart.push(tx);
        let acks = acks_tx.clone();
        clients.push(std::thread::spawn(move || trade_until_killed(port, id, &acks, &rx)));
    }
    drop(acks_tx);
    // Mid-flight: after 600 acknowledgements, with every client still sending.
    for _ in 0..600 {
        acks.recv().unwrap();
    }
    drop(node); // SIGKILL
    drop(acks);

    let (accepted, live) = journal_orders(dir.path());
    let node = serve_on(dir.path(), &port.to_string());
    let book = snapshot(node.market_data).book().orders();
    let rested: Vec<(u64, i64)> = book.iter().map(|&(_, _, _, id, qty)| (id.0, qty.0)).collect();
    let mut rested_sorted = rested.clone();
    rested_sorted.sort_unstable();
    assert_eq!(rested_sorted, live, "the recovered book is the journal's");
    for tx in &restart {
        tx.send(()).unwrap();
    }
    for c in clients {
        let traded = c.join().unwrap();
        assert!(!traded.acked.is_empty(), "{:?} traded before the kill", traded.account);
        for cid in &traded.acked {
            assert!(
                accepted.contains(&(traded.account, *cid)),
                "acknowledged order {cid:?} of {:?} lost",
                traded.account
            );
        }
        // What was replayed is numbered on from the last report seen, with no gaps (the
        // client checks), and holds only what the journal has.
        for (_, report) in &traded.replayed {
            if let Report::Accepted { cid, .. } = report {
                assert!(accepted.contains(&(traded.account, *cid)));
            }
        }
        assert!(traded.continued, "{:?} trades on after the restart", traded.account);
    }
}

/// SIGTERM: the node drains, writes a final snapshot, says where it stopped, and exits 0;
/// the next start recovers to the same sequence number and state.
#[test]
fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = serve(dir.path());
    let mut maker = Client::connect(node.order_entry, &demo_key(1), options()).unwrap();
    maker.send(&ClientMsg::NewOrder(btc(1, Side::Sell, 100_010, 2_000, TimeInForce::Gtc))).unwrap();
    assert!(matches!(report(&mut maker), Report::Accepted { .. }));
    let killed = Command::new("kill").args(["-TERM", &node.child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    // The session is logged out (server_shutdown), not cut off.
    assert!(matches!(maker.recv(), Err(l2x_protocol::client::ClientError::LoggedOut(8))));
    let rest: Vec<String> = node.lines.by_ref().map(Result::unwrap).collect();
    assert!(node.child.wait().unwrap().success(), "{rest:?}");
    let stopped = rest.iter().find_map(|l| l.strip_prefix("l2x serve: SIGTERM: stopped at seq ")).unwrap();
    let (seq, state) = stopped.split_once(", state ").unwrap();
    let seq: u64 = seq.parse().unwrap();
    assert!(rest.iter().any(|l| l.starts_with("l2x serve: final snapshot ")), "{rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("l2x serve: settlement: ")), "{rest:?}");
    let snapshots = l2x_sequencer::journal::snapshot::list(dir.path(), u64::MAX).unwrap();
    assert_eq!(snapshots.last().map(|(s, _)| *s), Some(seq), "the final snapshot is at the last command");
    let replayed = Command::new(env!("CARGO_BIN_EXE_l2x"))
        .args(["replay", dir.path().to_str().unwrap(), "--state-hash", "--no-progress"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&replayed.stdout).contains(state), "{replayed:?}");
    assert_eq!(serve(dir.path()).recovered, seq, "the next start recovers to where it stopped");
}

/// `l2x serve` with its default config logs every logon, logout (with its reason), session
/// that ended without one, and refused logon on standard error.
#[test]
fn serve_logs_sessions_at_info_by_default() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_l2x"))
        .args(["serve", "--data-dir", dir.path().to_str().unwrap(), "--order-entry", "127.0.0.1:0"])
        .args(["--market-data", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("l2x serve ended before listening").unwrap();
        if let Some(a) = line.strip_prefix("order entry ") {
            break a.parse::<SocketAddr>().unwrap();
        }
    };
    for _ in 0..3 {
        Client::connect(addr, &demo_key(1), options()).unwrap().logout().unwrap();
    }
    drop(Client::connect(addr, &demo_key(2), options()).unwrap());
    assert!(matches!(Client::connect(addr, &demo_key(9), options()), Err(ClientError::Refused(20))));
    // A session the server logs out at the stop.
    let mut last = Client::connect(addr, &demo_key(3), options()).unwrap();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert!(matches!(last.recv(), Err(ClientError::LoggedOut(8))));
    drop(lines);
    assert!(child.wait().unwrap().success());
    let text = logs.join().unwrap();
    let count = |what: &str, with: &str| text.lines().filter(|l| l.contains(what) && l.contains(with)).count();
    assert_eq!(count(" INFO logon ", "key=1 account=1"), 3, "{text}");
    assert_eq!(count(" INFO logout ", "key=1 account=1"), 3, "{text}");
    assert_eq!(count(" INFO logout ", "reason=client_request code=1"), 3, "{text}");
    assert_eq!(count(" INFO disconnected ", "key=2 account=2"), 1, "{text}");
    assert_eq!(count(" WARN logon refused ", "key=9"), 1, "{text}");
    assert_eq!(count(" INFO logout ", "reason=server_shutdown code=8"), 1, "{text}");
}

/// `l2x serve` with this config file (and the data directory `data`, loopback ports);
/// it must refuse to start. Its exit code and standard error.
fn refused(config: &str, data: &Path) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("l2x.toml");
    std::fs::write(&file, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_l2x"))
        .args(["serve", "--config", file.to_str().unwrap(), "--data-dir", data.to_str().unwrap()])
        .args(["--order-entry", "127.0.0.1:0", "--market-data", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!data.join("journal-00000000.l2xj").exists(), "nothing may be written before the refusal");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Regression: `input_capacity = 1099511627776` aborted the node (exit 134, the key not named).
#[test]
fn serve_refuses_huge_input_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = refused("[pipeline]\ninput_capacity = 1099511627776\n", &dir.path().join("data"));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("pipeline.input_capacity = 1099511627776 is out of range: it must be from 1 to 1048576"),
        "{err}"
    );
}

/// Regression: a key (and so a first deposit) on the insurance fund's or fee account's id
/// was accepted.
#[test]
fn serve_refuses_a_key_on_a_reserved_account() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    let secret = "01".repeat(32);
    std::fs::write(&keys, format!("[[key]]\nid = 1\naccount = 18446744073709551614\nsecret = \"{secret}\"\n")).unwrap();
    let config = format!("[accounts]\nkeys_file = \"{}\"\n", keys.display());
    let (code, err) = refused(&config, &dir.path().join("data"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("key id 1 is on account 18446744073709551614, which is reserved"), "{err}");
    // And a deposit for an account no key trades, which would be dropped silently.
    let (code, err) = refused("[accounts.deposits]\n\"9\" = 5\n", &dir.path().join("data"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("accounts.deposits: account 9 has no key in the demo keys"), "{err}");
}

/// Regression: a data directory that cannot be one failed with an OS error naming no key.
#[test]
fn serve_refuses_a_file_as_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let (code, err) = refused("", &file);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!("data_dir {}: is a file, not a directory", file.display())), "{err}");
    let (code, err) = refused("data_dir = \"\"\n", &dir.path().join("data"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("data_dir: must not be empty"), "{err}");
}
