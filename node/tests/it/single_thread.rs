//! `pipeline.mode = "single-thread"` against the multi-thread pipeline: the same orders over
//! real TCP, the same journal and the same state.
//!
//! The sequenced time comes from the wall clock, so the test fixes the pipeline's clock
//! ([`l2x_sequencer::pipeline::Config::clock`]) and starts the pipeline and the gateway as
//! `l2x_node::Node` does, through the same crates; the commands a session sends keep their
//! order in both modes, and the set-up goes in through the control handle before any
//! session connects. The segments' headers carry each journal's random identity, so the
//! records are compared, decoded and re-encoded, with the final state hash.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use l2x_gateway::auth::Keys;
use l2x_gateway::server::{Config, Server};
use l2x_protocol::client::{Client, Options};
use l2x_protocol::codec::{ClientMsg, Report, ServerMsg, WireOrder};
use l2x_risk::Ledger;
use l2x_sequencer::journal;
use l2x_sequencer::pipeline::{Config as PipelineConfig, Mode, Pipeline};
use l2x_types::{AccountId, Amount, ClientOrderId, Command, Holder, InstrumentId, Sequenced, Side, TimeInForce};

use crate::node::{KEYS, config, key, limit, next, send};

/// The sequenced time of every command in these runs.
fn fixed_clock() -> u64 {
    1_760_000_000_000_000_000
}

/// What one run left: every journaled record and the final state's hash.
struct Run {
    records: Vec<Sequenced>,
    state_hash: String,
}

/// Reads reports until the one about `cid` that `done` accepts; returns how many came.
fn until(client: &mut Client, done: impl Fn(&Report) -> bool) -> usize {
    let mut n = 0;
    loop {
        n += 1;
        if let ServerMsg::Report { report, .. } = next(client)
            && done(&report)
        {
            return n;
        }
    }
}

/// Starts a pipeline in `mode` and the gateway over it on `dir`, sets up the instrument and
/// the deposits, trades over TCP, stops both; the journal and the state.
fn run(dir: &Path, mode: Mode) -> Run {
    let node_config = config(dir, &Config::default());
    let ledger = Ledger::default();
    let pipeline_config =
        PipelineConfig { mode, clock: fixed_clock, ledger: ledger.clone(), ..PipelineConfig::default() };
    let (mut pipeline, _) = Pipeline::start(pipeline_config, dir).unwrap();
    let keys = Keys::from_keys(KEYS.iter().map(|&(k, _)| key(k))).unwrap();
    let server = Server::start(Config::default(), keys, &mut pipeline, &ledger).unwrap();
    let control = server.control();
    for (spec, price) in node_config.listings().unwrap() {
        control.submit(Command::ListInstrument(Box::new(spec))).unwrap();
        control.submit(Command::Oracle { instrument: InstrumentId(0), price }).unwrap();
    }
    for account in [1, 2, 3] {
        let amount = Amount(1_000_000 * 1_000_000);
        control.submit(Command::Deposit { to: Holder::Account(AccountId(account)), amount }).unwrap();
    }
    let options = Options { heartbeat_ms: 60_000, read_timeout: Some(Duration::from_secs(20)), ..Options::default() };
    let addr = server.order_entry_addr();
    // The maker rests 20 sells, pipelined, and reads their 20 acceptances.
    let mut maker = Client::connect(addr, &key(1), options).unwrap();
    for cid in 1..=20 {
        send(&mut maker, limit(cid, Side::Sell, 1000 + i64::try_from(cid % 5).unwrap(), 2));
    }
    for _ in 0..20 {
        assert!(matches!(next(&mut maker), ServerMsg::Report { report: Report::Accepted { .. }, .. }));
    }
    // The taker sweeps, pipelined: IOCs, a resting bid, a cancel of it, and a last order
    // whose acceptance says every one before it was sequenced.
    let mut taker = Client::connect(addr, &key(3), options).unwrap();
    for cid in 1..=8 {
        send(&mut taker, WireOrder { tif: TimeInForce::Ioc, ..limit(cid, Side::Buy, 1004, 3) });
    }
    send(&mut taker, limit(50, Side::Buy, 990, 4));
    taker.send(&ClientMsg::Cancel { cid: ClientOrderId(50) }).unwrap();
    send(&mut taker, limit(99, Side::Buy, 900, 1));
    let seen = until(&mut taker, |r| matches!(r, Report::Accepted { cid: ClientOrderId(99), .. }));
    assert!(seen > 10, "every IOC answered before the last order's acceptance ({seen})");
    drop((maker, taker));
    server.stop().unwrap();
    let summary = pipeline.shutdown().unwrap();
    let mut records = Vec::new();
    journal::scan(dir, |r| {
        records.push(r);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(u64::try_from(records.len()).unwrap(), summary.last_seq);
    Run { records, state_hash: summary.state_hash.to_string() }
}

#[test]
fn single_thread_and_threads_journal_the_same_records_and_state_over_tcp() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let threads = run(a.path(), Mode::Threads);
    let inline = run(b.path(), Mode::Inline);
    assert!(threads.records.len() > 35, "the set-up and every order journaled: {}", threads.records.len());
    assert_eq!(threads.records, inline.records, "the same records, in the same order, with the same times");
    assert_eq!(threads.state_hash, inline.state_hash);
}

#[test]
fn single_thread_node_refuses_fsync_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), &Config::default());
    config.pipeline.mode = l2x_node::config::ModeName::SingleThread;
    config.pipeline.durability = l2x_node::config::DurabilityName::Fsync;
    let err = config.check().unwrap_err().to_string();
    assert!(err.contains("pipeline.mode") && err.contains("pipeline.durability"), "{err}");
}
