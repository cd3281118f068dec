//! `l2x serve` as a real process: it listens, trades over TCP with the client library,
//! publishes market data, and after SIGKILL and a restart on the same data directory the
//! clients replay their reports and the book is what it was.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use l2x_gateway::auth::Key;
use l2x_gateway::client::{Client, MdClient, Options};
use l2x_gateway::codec::{ClientMsg, MdMsg, Report, ServerMsg, WireOrder};
use l2x_types::{AccountId, ClientOrderId, InstrumentId, Price, Qty, Side, TimeInForce};

/// A running `l2x serve`, killed when dropped.
struct Serve {
    child: Child,
    order_entry: SocketAddr,
    market_data: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_l2x"))
        .args(["serve", "--data-dir", dir.to_str().unwrap(), "--order-entry", "127.0.0.1:0"])
        .args(["--market-data", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = |prefix: &str| loop {
        let line = lines.next().expect("l2x serve ended before listening").unwrap();
        if let Some(a) = line.strip_prefix(prefix) {
            return a.trim().parse::<SocketAddr>().unwrap();
        }
    };
    let order_entry = addr("order entry ");
    let market_data = addr("market data ");
    Serve { child, order_entry, market_data }
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
