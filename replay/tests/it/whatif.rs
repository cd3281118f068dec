//! What-if runs: with the journal's own parameters they are the original run exactly; a
//! higher maintenance margin liquidates the account a hand calculation says it does, at the
//! price it says; a higher initial margin refuses the order that opened the position; bad
//! parameter files are refused naming the key.

use std::path::Path;

use l2x_replay::Until;
use l2x_replay::whatif::{Comparison, ParamsError, RiskParams, WhatIfError, run};
use l2x_risk::Ledger;
use l2x_sequencer::journal::JournalWriter;
use l2x_sequencer::scenario::Runner;
use l2x_types::AccountId;

/// Account 1 deposits 1,000 USDC and buys 0.4 BTC at 50,000 from account 2 (initial margin
/// 5 %: exactly 1,000); the oracle falls to 49,800. Nobody bids.
const SCENARIO: &str = r#"{"cmd":"instrument","symbol":"BTC-PERP","tick_size":"0.5","lot_size":"0.001","initial_margin":"0.05","maintenance_margin":"0.03","max_order_qty":"100","max_position_qty":"1000","price_band":"0.1"}
{"cmd":"deposit","account":1,"amount":"1000"}
{"cmd":"deposit","account":2,"amount":"1000000"}
{"cmd":"deposit","account":"insurance","amount":"10000"}
{"cmd":"oracle","symbol":"BTC-PERP","price":"50000"}
{"cmd":"new","account":2,"cid":1,"symbol":"BTC-PERP","side":"sell","price":"50000","qty":"0.4"}
{"cmd":"new","account":1,"cid":1,"symbol":"BTC-PERP","side":"buy","price":"50000","qty":"0.4","tif":"ioc"}
{"cmd":"oracle","symbol":"BTC-PERP","price":"49800"}
"#;

fn journal(dir: &Path) {
    let (writer, _) = JournalWriter::open(dir, 1 << 20).unwrap();
    let mut runner = Runner::new().with_journal(writer, false, 0);
    runner.run(SCENARIO.as_bytes(), &mut std::io::sink(), &mut std::io::sink()).unwrap();
}

fn what_if(dir: &Path, toml: &str) -> Result<Comparison, WhatIfError> {
    let params = RiskParams::parse("params.toml", toml).map_err(WhatIfError::Params)?;
    run(dir, "params.toml", &params, Until::End, false)
}

#[test]
fn the_journals_own_parameters_reproduce_the_original_run() {
    let tmp = tempfile::tempdir().unwrap();
    journal(tmp.path());
    for same in [
        "",
        "[liquidation]\nadl = true\nbankruptcy_adjustment = \"1\"\n[instruments.\"BTC-PERP\"]\nmaintenance_margin = \"0.03\"\n",
    ] {
        let c = what_if(tmp.path(), same).unwrap();
        assert_eq!(c.hashes.0, c.hashes.1, "{same}");
        assert_eq!(c.original, c.what_if);
        assert_eq!(c.last_seq, 8);
    }
    // And the original run is the journal's: the replay's hash.
    let c = what_if(tmp.path(), "").unwrap();
    let replayed = l2x_replay::replay(tmp.path(), &Ledger::default(), l2x_replay::Options::default(), &mut ()).unwrap();
    assert_eq!(c.hashes.0, replayed.state.canonical().hash().to_string());
}

#[test]
fn a_higher_maintenance_margin_liquidates_where_the_hand_calculation_says() {
    // At 49,800 account 1's equity is 1,000 − 0.4 × 200 = 920 USDC. Maintenance at 3 %:
    // 0.4 × 49,800 × 0.03 = 597.6 — safe. At 4.8 %: 956.16 — below: liquidated. No bids, so
    // the fund takes the whole 0.4 over at the bankruptcy price 50,000 − 1,000 / 0.4 =
    // 47,500, and ends with 10,000 + 0.4 × (49,800 − 47,500) = 10,920 USDC of equity.
    let tmp = tempfile::tempdir().unwrap();
    journal(tmp.path());
    let c = what_if(tmp.path(), "[instruments.\"BTC-PERP\"]\nmaintenance_margin = \"0.048\"\n").unwrap();
    assert!(c.original.liquidations.is_empty());
    let l = &c.what_if.liquidations;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!((l[0].seq, l[0].account, l[0].kind, l[0].qty, l[0].price), (8, AccountId(1), "takeover", 400, 95_000));
    let (appear, disappear) = c.changed_liquidations();
    assert_eq!((appear.len(), disappear.len()), (1, 0));
    assert!(c.what_if.bankrupt.contains(&AccountId(1)) && c.original.bankrupt.is_empty());
    assert_eq!(c.what_if.insurance.last(), Some(&(8, 10_920_000_000)));
    assert_eq!(c.original.worst_equity[&AccountId(1)], (920_000_000, 8));
    assert_eq!(c.what_if.worst_equity[&AccountId(1)].0, 0);
    assert_ne!(c.hashes.0, c.hashes.1);
    // Without ADL and with a bigger fund nothing changes for this one (the fund absorbs).
    let c2 = what_if(
        tmp.path(),
        "[liquidation]\nadl = false\n[insurance]\nextra_usdc = \"5000\"\n[instruments.\"*\"]\nmaintenance_margin = \"0.048\"\n",
    )
    .unwrap();
    assert_eq!(c2.what_if.liquidations, c.what_if.liquidations);
    assert_eq!(c2.what_if.insurance.last(), Some(&(8, 15_920_000_000)));
}

#[test]
fn a_higher_initial_margin_refuses_the_order_that_opened_the_position() {
    let tmp = tempfile::tempdir().unwrap();
    journal(tmp.path());
    let c = what_if(tmp.path(), "[instruments.\"BTC-PERP\"]\ninitial_margin = \"0.1\"\n").unwrap();
    assert_eq!((c.original.rejected_orders, c.what_if.rejected_orders), (0, 1));
    let open = c.states.1.ledger().accounts().iter().flat_map(|a| &a.positions).filter(|p| p.size != 0).count();
    assert_eq!(open, 0, "no trade happened in the what-if");
}

#[test]
fn bad_parameter_files_are_refused_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    journal(tmp.path());
    let err = |toml: &str| what_if(tmp.path(), toml).unwrap_err().to_string();
    assert!(err("[liquidation]\nadl_on = true\n").contains("adl_on"), "{}", err("[liquidation]\nadl_on = true\n"));
    assert!(err("[margins]\nx = 1\n").contains("margins"));
    let e = err("[instruments.\"BTC-PERP\"]\nmaintenance_margin = \"0.06\"\n");
    assert!(e.contains("instruments.\"BTC-PERP\"") && e.contains("maintenance"), "{e}");
    let e = err("[instruments.\"BTC-PERP\"]\nliquidation_fee = \"lots\"\n");
    assert!(e.contains("liquidation_fee") && e.contains("not a decimal"), "{e}");
    let e = err("[instruments.\"DOGE-PERP\"]\ninitial_margin = \"0.2\"\n");
    assert!(e.contains("DOGE-PERP") && e.contains("no such instrument"), "{e}");
    let e = err("[insurance]\nextra_usdc = \"-5\"\n");
    assert!(e.contains("insurance.extra_usdc"), "{e}");
    let e = err("[liquidation]\nspread_to_maintenance = \"0\"\n");
    assert!(e.contains("liquidation.spread_to_maintenance"), "{e}");
    assert!(matches!(RiskParams::parse("f", "[liquidation]\nadl = 3\n"), Err(ParamsError::Parse { .. })));
}

#[test]
fn listings_the_engine_refused_stay_refused_and_ids_stay_put() {
    // validation.jsonl lists an instrument the engine refuses (initial margin below
    // maintenance). The journal's own parameters still reproduce the run; a file that would
    // make that listing valid does not list it in the what-if either.
    let tmp = tempfile::tempdir().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sequencer/tests/scenarios/validation.jsonl");
    let (writer, _) = JournalWriter::open(tmp.path(), 1 << 20).unwrap();
    let mut runner = Runner::new().with_journal(writer, false, 0);
    runner.run(&std::fs::read(path).unwrap()[..], &mut std::io::sink(), &mut std::io::sink()).unwrap();
    let c = what_if(tmp.path(), "").unwrap();
    assert_eq!(c.hashes.0, c.hashes.1);
    let c = what_if(tmp.path(), "[instruments.\"*\"]\ninitial_margin = \"0.2\"\n").unwrap();
    assert_eq!(c.states.0.instruments().len(), c.states.1.instruments().len());
}

/// Regression (issue 14, "one reader, one rule"): what-if reads the journal through the
/// journal's own reader, so a journal whose first or last segment is missing is an error
/// naming the gap, not a comparison of two runs of a shorter history.
#[test]
fn what_if_refuses_a_journal_with_a_missing_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let (writer, _) = JournalWriter::open(tmp.path(), 512).unwrap();
    let mut runner = Runner::new().with_journal(writer, false, 0);
    runner.run(SCENARIO.as_bytes(), &mut std::io::sink(), &mut std::io::sink()).unwrap();
    drop(runner);
    let segments = l2x_sequencer::journal::segments(tmp.path()).unwrap();
    assert!(segments.len() >= 2, "{} segments", segments.len());
    what_if(tmp.path(), "").unwrap();
    for missing in [0, segments.len() - 1] {
        let case = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(tmp.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && path != segments[missing].1 && path.file_name().unwrap() != "LOCK" {
                std::fs::copy(&path, case.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        let Err(e) = what_if(case.path(), "") else { panic!("segment {missing}: what-if ran on a gap") };
        assert!(e.to_string().contains("missing"), "segment {missing}: {e}");
    }
}
