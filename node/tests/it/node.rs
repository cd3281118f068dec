//! The node the socket tests share: an [`l2x_node::Node`] on a temporary journal, started
//! with the gateway settings a test gives: one instrument (`BTC-PERP`, tick 1, lot 1, mark
//! 1000), funded accounts, one key per entry of [`KEYS`]; no settlement, no metrics
//! endpoint, and no idle ticks within a test's time (sequenced time passes only with the
//! tests' own commands).
//!
//! The node runs the multi-thread pipeline unless the test runs inside [`single_thread`]:
//! then every node it starts runs `pipeline.mode = "single-thread"`, the gateway thread
//! sequencing inline. The tests that matter for both run twice, once through it.

use std::cell::Cell;
use std::path::Path;
use std::time::Duration;

use l2x_engine::StateMachine;
use l2x_gateway::auth::Keys;
use l2x_gateway::server::{Config, Server};
use l2x_node::config::{ChainKind, Config as NodeConfig, InstrumentEntry, ModeName};
use l2x_protocol::client::{Client, Options};
use l2x_protocol::codec::{ClientMsg, ServerMsg, WireOrder};
use l2x_protocol::logon::Key;
use l2x_types::{AccountId, Amount, ClientOrderId, Command, Holder, InstrumentId, L1Address, Price, Qty, Side};

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

/// BTC-PERP: tick 1, lot 1, its first oracle price 1000.
pub(crate) fn instrument() -> InstrumentEntry {
    let text = |s: &str| s.to_string();
    InstrumentEntry {
        symbol: text("BTC-PERP"),
        tick_size: text("1"),
        lot_size: text("1"),
        initial_margin: text("0.1"),
        maintenance_margin: text("0.05"),
        max_order_qty: text("1000"),
        max_position_qty: text("100000"),
        price_band: text("0.5"),
        maker_fee: Some(text("-0.0001")),
        taker_fee: Some(text("0.0005")),
        liquidation_fee: Some(text("0.01")),
        impact_notional: Some(text("10000")),
        funding_interest: Some(text("0")),
        funding_clamp: Some(text("0.05")),
        oracle_price: text("1000"),
    }
}

thread_local! {
    /// The mode of the nodes this test thread starts.
    static MODE: Cell<ModeName> = const { Cell::new(ModeName::Threads) };
}

/// Runs `test` with every node it starts in `pipeline.mode = "single-thread"`.
pub(crate) fn single_thread(test: fn()) {
    MODE.with(|m| m.set(ModeName::SingleThread));
    test();
    MODE.with(|m| m.set(ModeName::Threads));
}

/// The node's config: the journal in `dir`, the gateway as `server` says, every key's
/// account funded with 1,000,000 USDC.
pub(crate) fn config(dir: &Path, server: &Config) -> NodeConfig {
    let mut config = NodeConfig { data_dir: dir.to_path_buf(), ..NodeConfig::default() };
    (config.ports.order_entry, config.ports.market_data) = (server.order_entry, server.market_data);
    config.ports.metrics_enabled = false;
    config.gateway.set_limits(server.limits);
    (config.gateway.max_outbound_bytes, config.gateway.core) = (server.max_outbound_bytes, server.core);
    // Snapshots as a bare pipeline takes them: only the one at the stop.
    config.pipeline.snapshot_every = 0;
    // The longest idle a node allows: no test here waits that long.
    config.pipeline.idle_tick_ms = 60_000;
    config.accounts.deposit_usdc = 1_000_000;
    config.instruments = vec![instrument()];
    config.settlement.chain = ChainKind::None;
    config.pipeline.mode = MODE.with(Cell::get);
    config
}

/// A running node.
pub(crate) struct Node(l2x_node::Node);

impl Node {
    /// Starts the node on `dir` with the gateway settings of `server`; on an empty journal
    /// it lists the instrument, sets the mark and funds the accounts.
    pub(crate) fn start(dir: &Path, server: Config) -> Node {
        let keys = Keys::from_keys(KEYS.iter().map(|&(k, _)| key(k))).unwrap();
        Node(l2x_node::Node::start(&config(dir, &server), keys).unwrap())
    }

    /// Starts the node on `dir` as [`Node::start`], but bound to a vault: on an empty journal
    /// no operator deposit; an `l1_bind`, then an L1 deposit of 1,000,000 USDC to every key's
    /// account, each from its own L1 address (which makes it the account's owner on a real
    /// vault). The node has no chain: the commands go in through the gateway's control
    /// handle, as the L1 watcher's would, and the engine takes them without one.
    pub(crate) fn start_bound(dir: &Path, server: Config) -> Node {
        let keys = Keys::from_keys(KEYS.iter().map(|&(k, _)| key(k))).unwrap();
        let mut config = config(dir, &server);
        config.accounts.deposit_usdc = 0;
        let node = Node(l2x_node::Node::start(&config, keys).unwrap());
        if node.0.recovered_seq() == 0 {
            let control = node.server().control();
            let (contract, token) = (L1Address([0xc0; 20]), L1Address([0x70; 20]));
            control.submit(Command::L1Bind { chain_id: 31_337, contract, token }).unwrap();
            let mut accounts: Vec<u64> = KEYS.iter().map(|&(_, a)| a).collect();
            accounts.dedup();
            for (index, account) in (1..).zip(accounts) {
                let from = L1Address([u8::try_from(account).unwrap(); 20]);
                let to = Holder::Account(AccountId(account));
                let amount = Amount(1_000_000 * 1_000_000);
                control.submit(Command::L1Deposit { index, to, amount, from, requested_at: 0 }).unwrap();
            }
        }
        node
    }

    /// The gateway.
    pub(crate) fn server(&self) -> &Server {
        self.0.server()
    }

    /// Stops the node (the gateway, then the pipeline); returns the final state.
    pub(crate) fn stop(self) -> StateMachine {
        self.0.stop().unwrap().state
    }

    pub(crate) fn connect(&self, key_id: u64) -> Client {
        self.connect_with(key_id, Options::default())
    }

    pub(crate) fn connect_with(&self, key_id: u64, options: Options) -> Client {
        // Tests that are not about heartbeats must not depend on how fast a debug build runs.
        let heartbeat_ms = if options.heartbeat_ms == 0 { 60_000 } else { options.heartbeat_ms };
        let options = Options { read_timeout: Some(Duration::from_secs(20)), heartbeat_ms, ..options };
        Client::connect(self.server().order_entry_addr(), &key(key_id), options).unwrap()
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

/// The next report the gateway made itself (seq 0): (cid, reason).
pub(crate) fn gateway_reject(client: &mut Client) -> (u64, u16) {
    let (h, r) = report(client);
    assert_eq!(h.seq, 0, "{r:?}");
    let l2x_protocol::codec::Report::Rejected { cid, reason, .. } = r else { panic!("{r:?}") };
    (cid.0, reason)
}

/// Makes `loader` trade (post-only bids, then their cancels, reading all of its own
/// reports, so it is never the one cut off) until the gateway has cut off a slow consumer
/// — a session on the same account that does not read.
pub(crate) fn trade_until_a_slow_consumer_is_cut_off(node: &Node, loader: &mut Client) {
    let counters = node.server().counters();
    let mut rounds = 0;
    while counters.slow_consumers.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        rounds += 1;
        assert!(rounds <= 500, "the slow reader was never cut off");
        for cid in 1..=100 {
            send(loader, WireOrder { post_only: true, ..limit(cid, Side::Buy, 900, 1) });
        }
        for cid in 1..=100 {
            loader.send(&ClientMsg::Cancel { cid: ClientOrderId(cid) }).unwrap();
        }
        for _ in 0..200 {
            report(loader);
        }
    }
}
