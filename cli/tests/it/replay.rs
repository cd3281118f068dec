//! `l2x replay` through the binary: the summary, a view, and `--verify-roots` — which passes
//! on what the submitter committed and fails, naming the batch, on a tampered batch file and
//! on a tampered journal; bad epoch flags are refused.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn l2x(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l2x")).args(args).stdin(Stdio::null()).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The liquidation_insurance scenario, its commands 1 ms apart.
fn scenario() -> String {
    crate::scenario_1ms_apart("liquidation_insurance.jsonl")
}

fn journal_of(dir: &Path, lines: &str) {
    let input = dir.with_extension("jsonl");
    std::fs::write(&input, lines).unwrap();
    let run = l2x(&["match", "--input", input.to_str().unwrap(), "--journal", dir.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run));
}

#[test]
fn replay_summarises_views_and_verifies_roots_and_catches_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("journal");
    journal_of(&journal, &scenario());
    let j = journal.to_str().unwrap();

    let summary = l2x(&["replay", j]);
    assert!(summary.status.success(), "{}", text(&summary));
    assert!(text(&summary).contains("open interest  0.4 BTC-PERP (mark 49500)"), "{}", text(&summary));
    let liq = l2x(&["replay", j, "--dump", "liquidations", "--format", "json"]);
    let row: serde_json::Value = serde_json::from_str(text(&liq).lines().next().unwrap()).unwrap();
    assert_eq!(row["kind"], "takeover");
    let bad = l2x(&["replay", j, "--dump", "trades", "--every", "1s"]);
    assert!(!bad.status.success() && text(&bad).contains("--every samples the state views"), "{}", text(&bad));

    // What-if with a lower maintenance margin (2 % instead of 3 %): at 48,900 account 1 has
    // 1,000 − 0.4 × 1,100 = 560 USDC against 391.2 required — the takeover disappears.
    let params = tmp.path().join("low-mm.toml");
    std::fs::write(&params, "[instruments.\"BTC-PERP\"]\nmaintenance_margin = \"0.02\"\n").unwrap();
    let wi = l2x(&["replay", j, "--risk-params", params.to_str().unwrap(), "--no-progress"]);
    assert!(wi.status.success(), "{}", text(&wi));
    assert!(
        text(&wi).contains("disappears in the what-if: account 1 BTC-PERP (takeover, from seq 9)"),
        "{}",
        text(&wi)
    );
    let csv = l2x(&["replay", j, "--risk-params", params.to_str().unwrap(), "--format", "csv"]);
    assert!(text(&csv).contains("\n1,1,0,"), "{}", text(&csv));
    std::fs::write(&params, "[instruments.\"BTC-PERP\"]\nmaintenance_margin = \"0.2\"\n").unwrap();
    let impossible = l2x(&["replay", j, "--risk-params", params.to_str().unwrap()]);
    assert!(
        !impossible.status.success() && text(&impossible).contains("instruments.\"BTC-PERP\""),
        "{}",
        text(&impossible)
    );

    // Settled on an embedded chain, an epoch per two commands.
    let chain = tmp.path().join("chain");
    let c = chain.to_str().unwrap();
    let batches = journal.join("batches");
    let b = batches.to_str().unwrap();
    let submit = l2x(&["settle", "submit", "--journal", j, "--batches", b, "--chain-dir", c, "--epoch-ms", "1"]);
    assert!(submit.status.success(), "{}", text(&submit));
    let verify = |journal: &str| l2x(&["replay", journal, "--verify-roots", "--chain-dir", c, "--epoch-ms", "1"]);
    let ok = verify(j);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("batch files match") && text(&ok).contains("committed roots match"), "{}", text(&ok));

    // A tampered batch file (its data changed: the hash check names the batch's file).
    let file = batches.join("batch-00000000000000000004.l2xb");
    let good = std::fs::read(&file).unwrap();
    let mut bytes = good.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let tampered = verify(j);
    assert!(!tampered.status.success());
    assert!(text(&tampered).contains("batch-00000000000000000004.l2xb"), "{}", text(&tampered));
    std::fs::write(&file, &good).unwrap();

    // A tampered journal: the same scenario with the liquidated account's deposit changed,
    // written as a valid journal. Its first epoch (the listing and the deposit) already
    // differs from what the chain holds; the batch files are the honest journal's.
    let forged = tmp.path().join("forged");
    journal_of(&forged, &scenario().replacen("\"amount\":\"1000\"", "\"amount\":\"1001\"", 1));
    let f = forged.to_str().unwrap();
    let caught = l2x(&["replay", f, "--verify-roots", "--batches", b, "--chain-dir", c, "--epoch-ms", "1"]);
    assert!(!caught.status.success());
    assert!(text(&caught).contains("batch 1"), "{}", text(&caught));
}

/// Regression: `--epoch-ms 0` was accepted (an epoch per command: `settle submit` on the
/// demo journal ran for over a minute); refused by `replay --verify-roots` and every `settle`
/// command, naming the flag and the range.
#[test]
fn epoch_ms_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for args in [
        &["replay", d, "--verify-roots", "--epoch-ms", "0"][..],
        &["settle", "verify", "--journal", d, "--epoch-ms", "0"],
        &["settle", "submit", "--journal", d, "--batches", d, "--chain-dir", d, "--epoch-ms", "0"],
        &["settle", "verify", "--journal", d, "--epoch-fills", "1000000001"],
        &["settle", "submit", "--journal", d, "--batches", d, "--chain-dir", d, "--confirmations", "0"],
    ] {
        let out = l2x(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let flag = args.iter().rev().nth(1).unwrap();
        let e = text(&out);
        assert!(
            e.contains(&format!("invalid value '{}' for '{flag} ", args.last().unwrap())) && e.contains(" is not in "),
            "{e}"
        );
    }
    let empty = l2x(&["replay", "", "--state-hash"]);
    assert!(!empty.status.success() && text(&empty).contains("must not be empty"), "{}", text(&empty));
}
