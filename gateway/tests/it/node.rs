//! A gateway over a real pipeline on a temporary journal, for the socket tests: one
//! instrument (`BTC-PERP`, tick 1, lot 1, mark 1000), funded accounts, one key per entry of
//! [`KEYS`].

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use l2x_engine::StateMachine;
use l2x_gateway::auth::Keys;
use l2x_gateway::server::{Config, Server};
use l2x_protocol::client::{Client, Options};
use l2x_protocol::codec::{ClientMsg, ServerMsg, WireOrder};
use l2x_protocol::logon::Key;
use l2x_risk::Ledger;
use l2x_sequencer::pipeline::{Config as PipelineConfig, Pipeline};
use l2x_types::{
    AccountId, Amount, ClientOrderId, Command, Decimal, Holder, InstrumentId, InstrumentSpec, Price, Qty, Side, Symbol,
};

/// (key id, account): keys 1 and 2 share account 1 (a drop copy), keys 3, 4, 5 have
/// accounts 2, 3, 4.
pub(crate) const KEYS: [(u64, u64); 5] = [(1, 1), (2, 1), (3, 2), (4, 3), (5, 4)];

/// The instrument every test trades.
pub(crate) const BTC: InstrumentId = InstrumentId(0);

pub(crate) fn key(id: u64) -> Key {
    let (_, account) = KEYS.iter().copied().find(|&(k, _)| k == id).unwrap();
    let secret = [u8::try_from(id).unwrap(); 32];
    Key::new(id, AccountId(account), secret)
}

pub(crate) fn spec() -> InstrumentSpec {
    let d = |s: &str| Decimal::from_str(s).unwrap();
    InstrumentSpec {
        symbol: Symbol::try_new("BTC-PERP").unwrap(),
        tick_size: d("1"),
        lot_size: d("1"),
        initial_margin: d("0.1"),
        maintenance_margin: d("0.05"),
        max_order_qty: d("1000"),
        max_position_qty: d("100000"),
        price_band: d("0.5"),
        maker_fee: d("-0.0001"),
        taker_fee: d("0.0005"),
        liquidation_fee: d("0.01"),
        impact_notional: d("10000"),
        funding_interest: d("0"),
        funding_clamp: d("0.05"),
    }
}

pub(crate) struct Node {
    pub(crate) pipeline: Pipeline,
    pub(crate) server: Server,
}

impl Node {
    /// Starts a pipeline on `dir` and a server over it; on an empty journal, lists the
    /// instrument, funds the accounts and sets the mark.
    pub(crate) fn start(dir: &Path, config: Config) -> Node {
        let (mut pipeline, _) = Pipeline::start(PipelineConfig::default(), dir).unwrap();
        let fresh = pipeline.stats().appended_seq == 0;
        let keys = Keys::from_keys(KEYS.iter().map(|&(k, _)| key(k))).unwrap();
        let server = Server::start(config, keys, &mut pipeline, &Ledger::default()).unwrap();
        if fresh {
            let control = server.control();
            control.submit(Command::ListInstrument(Box::new(spec()))).unwrap();
            for account in 1..=4 {
                let to = Holder::Account(AccountId(account));
                control.submit(Command::Deposit { to, amount: Amount(1_000_000_000_000) }).unwrap();
            }
            control.submit(Command::Oracle { instrument: BTC, price: Price(1000) }).unwrap();
        }
        Node { pipeline, server }
    }

    /// Stops the server, then the pipeline; returns the final state.
    pub(crate) fn stop(self) -> StateMachine {
        self.server.stop().unwrap();
        self.pipeline.shutdown().unwrap().state
    }

    pub(crate) fn connect(&self, key_id: u64) -> Client {
        self.connect_with(key_id, Options::default())
    }

    pub(crate) fn connect_with(&self, key_id: u64, options: Options) -> Client {
        // Tests that are not about heartbeats must not depend on how fast a debug build runs.
        let heartbeat_ms = if options.heartbeat_ms == 0 { 60_000 } else { options.heartbeat_ms };
        let options = Options { read_timeout: Some(Duration::from_secs(20)), heartbeat_ms, ..options };
        Client::connect(self.server.order_entry_addr(), &key(key_id), options).unwrap()
    }
}

/// A GTC limit order.
pub(crate) fn limit(cid: u64, side: Side, price: i64, qty: i64) -> WireOrder {
    WireOrder::limit(ClientOrderId(cid), BTC, side, Price(price), Qty(qty))
}

/// Sends an order.
pub(crate) fn send(client: &mut Client, order: WireOrder) {
    client.send(&ClientMsg::NewOrder(order)).unwrap();
}

/// The next message that is not a heartbeat.
pub(crate) fn next(client: &mut Client) -> ServerMsg {
    loop {
        match client.recv().unwrap() {
            ServerMsg::Heartbeat => {}
            msg => return msg,
        }
    }
}

/// The next report (header and body), skipping heartbeats.
pub(crate) fn report(client: &mut Client) -> (l2x_protocol::codec::ReportHeader, l2x_protocol::codec::Report) {
    match next(client) {
        ServerMsg::Report { header, report, .. } => (header, report),
        other => panic!("expected a report, got {other:?}"),
    }
}
