//! The views: what a desk's notebook loads must be what the engine did — the liquidations
//! and trades of a hand-checked scenario, the state at the point, a time series sampled at
//! exact boundaries, CSV and JSON lines alike.

use std::path::Path;

use l2x_replay::views::{Format, Table, View, Viewer};
use l2x_replay::{Options, Until, replay};
use l2x_risk::Ledger;
use l2x_sequencer::journal::JournalWriter;
use l2x_sequencer::scenario::Runner;
use l2x_types::{AccountId, Amount, Command, Holder, Seq, Sequenced, Timestamp};

fn run_scenario(dir: &Path, name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sequencer/tests/scenarios").join(name);
    let (writer, _) = JournalWriter::open(dir, 1 << 20).unwrap();
    let mut runner = Runner::new().with_journal(writer, false, 3);
    let input = std::fs::read(path).unwrap();
    runner.run(&input[..], &mut std::io::sink(), &mut std::io::sink()).unwrap();
}

fn rows(dir: &Path, view: View, format: Format, account: Option<u64>, every: Option<u64>, until: Until) -> Vec<String> {
    let mut buf = Vec::new();
    let mut viewer = Viewer::new(Table::new(view, format, account.map(AccountId), &mut buf), every);
    let opts = Options { until, from_start: view.of_events() || every.is_some(), progress: false };
    let out = replay(dir, &Ledger::default(), opts, &mut viewer).unwrap();
    viewer.at_end(&out.state, out.last_seq, until);
    viewer.table.finish().unwrap();
    String::from_utf8(buf).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn liquidations_trades_and_state_of_a_hand_checked_scenario() {
    // liquidation_insurance.jsonl (its .expected file is the engine's golden output): account
    // 1 buys 0.4 BTC at 50,000 from account 2; the oracle falls to 47,500; the book cannot
    // absorb, the insurance fund takes the 0.4 over at the bankruptcy price.
    let tmp = tempfile::tempdir().unwrap();
    run_scenario(tmp.path(), "liquidation_insurance.jsonl");
    let liq = rows(tmp.path(), View::Liquidations, Format::Csv, None, None, Until::End);
    assert_eq!(liq[0], "seq,ts,kind,account,symbol,side,qty,price,fee,counterparty");
    assert_eq!(liq[1..], ["9,0,takeover,1,BTC-PERP,sell,0.4,47500,,insurance".to_string()]);
    let trades = rows(tmp.path(), View::Trades, Format::Csv, None, None, Until::End);
    assert_eq!(trades[1..], ["7,0,1,BTC-PERP,50000,0.4,2,1,0,0".to_string()]);
    // Before the oracle fell (seq 8): no liquidation yet.
    assert_eq!(rows(tmp.path(), View::Liquidations, Format::Csv, None, None, Until::Seq(8)).len(), 1);
    // Only account 2's trades: the same trade (it was the maker); account 3 has none.
    assert_eq!(rows(tmp.path(), View::Trades, Format::Csv, Some(2), None, Until::End).len(), 2);
    assert_eq!(rows(tmp.path(), View::Trades, Format::Csv, Some(3), None, Until::End).len(), 1);
    // Positions at the end as JSON lines: account 2 is short 0.4 at 50,000, marked at the
    // last oracle price.
    let pos = rows(tmp.path(), View::Positions, Format::Json, Some(2), None, Until::End);
    let p: serde_json::Value = serde_json::from_str(&pos[0]).unwrap();
    assert_eq!((p["size"].as_str(), p["entry_notional"].as_str()), (Some("-0.4"), Some("-20000")));
    assert_eq!(pos.len(), 1);
}

/// Deposits of 1 USDC to account 1 at t = 1,000 · k ns, k = 1..=n.
fn deposits(dir: &Path, n: u64) {
    let (mut w, _) = JournalWriter::open(dir, 1 << 20).unwrap();
    for k in 1..=n {
        let cmd = Command::Deposit { to: Holder::Account(AccountId(1)), amount: Amount(1_000_000) };
        w.append(&Sequenced { seq: Seq(k), ts: Timestamp(1_000 * k), cmd }).unwrap();
    }
    w.sync().unwrap();
}

#[test]
fn a_time_series_samples_the_state_at_each_boundary() {
    let tmp = tempfile::tempdir().unwrap();
    deposits(tmp.path(), 50);
    // Every 10 µs from the first command (t = 1,000): boundaries 11,000, 21,000, …; at
    // 11,000 the deposits of t ≤ 11,000 are in: 11 USDC, the 11th command.
    let series = rows(tmp.path(), View::Accounts, Format::Csv, None, Some(10_000), Until::End);
    let cut: Vec<(String, String, String)> = series[1..]
        .iter()
        .map(|r| {
            let f: Vec<&str> = r.split(',').collect();
            (f[0].to_string(), f[1].to_string(), f[3].to_string())
        })
        .collect();
    let expected: Vec<(String, String, String)> =
        [(11, 11_000), (21, 21_000), (31, 31_000), (41, 41_000), (50, 50_000)]
            .iter()
            .map(|(k, t)| (k.to_string(), t.to_string(), k.to_string()))
            .collect();
    assert_eq!(cut, expected);
    // Past the last command (t = 50,000) up to 95,000: every boundary to there, then the
    // point.
    let past = rows(tmp.path(), View::Accounts, Format::Csv, None, Some(10_000), Until::Time(Timestamp(95_000)));
    let times: Vec<&str> = past[1..].iter().map(|r| r.split(',').nth(1).unwrap()).collect();
    assert_eq!(times, ["11000", "21000", "31000", "41000", "51000", "61000", "71000", "81000", "91000", "50000"]);
    assert!(past[1..].iter().skip(4).all(|r| r.starts_with("50,")), "{past:?}");
    // Stopped at a time: the series ends there.
    let upto = rows(tmp.path(), View::Accounts, Format::Csv, None, Some(10_000), Until::Time(Timestamp(25_500)));
    assert_eq!(upto.len(), 1 + 3, "{upto:?}");
    assert!(upto[3].starts_with("25,25000,1,25,"), "{upto:?}");
}

#[test]
fn rows_at_a_snapshot_are_labelled_with_its_point() {
    // Snapshots every 3 commands: a replay to seq 6 applies nothing after the snapshot, and
    // its rows still say seq 6.
    let tmp = tempfile::tempdir().unwrap();
    run_scenario(tmp.path(), "liquidation_insurance.jsonl");
    let at = rows(tmp.path(), View::Accounts, Format::Csv, None, None, Until::Seq(6));
    assert!(at.len() > 1 && at[1..].iter().all(|r| r.starts_with("6,")), "{at:?}");
}

#[test]
fn adl_closes_name_both_sides() {
    // adl.jsonl: an empty insurance fund, so account 1's bankrupt long is closed against the
    // most profitable shorts (accounts 3 then 2) at its bankruptcy price.
    let tmp = tempfile::tempdir().unwrap();
    run_scenario(tmp.path(), "adl.jsonl");
    let liq = rows(tmp.path(), View::Liquidations, Format::Csv, None, None, Until::End);
    assert_eq!(
        liq[1..],
        ["9,0,adl,1,BTC-PERP,sell,0.1,47500,,3".to_string(), "9,0,adl,1,BTC-PERP,sell,0.3,47500,,2".to_string()]
    );
    // Account 2's rows: the close it was on the other side of.
    assert_eq!(rows(tmp.path(), View::Liquidations, Format::Csv, Some(2), None, Until::End).len(), 2);
}
