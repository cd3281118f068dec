//! `l2x demo` as the README runs it: it trades over TCP, commits batches to the embedded
//! chain, and its own verification (and an outside `l2x settle verify`) re-derives every
//! committed root from the journal it wrote. It recreates only a directory it made.

use std::process::{Command, Output, Stdio};

fn l2x(args: &[&str], cwd: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l2x")).args(args).current_dir(cwd).stdin(Stdio::null()).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The number before `what` in `line`, e.g. "3 batches committed".
fn count_before(out: &str, what: &str) -> u64 {
    let at = out.find(what).unwrap_or_else(|| panic!("no {what:?} in {out}"));
    out[..at].split_whitespace().last().unwrap().parse().unwrap()
}

#[test]
fn the_demo_trades_settles_on_the_embedded_chain_and_verifies_its_roots() {
    let dir = tempfile::tempdir().unwrap();
    let run = l2x(&["demo", "--seconds", "2"], dir.path());
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert!(count_before(&out, "orders in") > 100, "{out}");
    assert!(count_before(&out, "fills;") > 0, "{out}");
    // The shock at the end liquidates the leveraged longs that went to the margin limit (each
    // bought about 2 BTC on 5,000 USDC), not the 5x ones (0.5 BTC each).
    for id in 5..=7 {
        let line = out.lines().find(|l| l.starts_with(&format!("  long {id} "))).unwrap_or_else(|| panic!("{out}"));
        assert!(line.ends_with("holds 0 after the shock (liquidated)"), "{out}");
        assert!(!line.contains("bought 0 "), "{out}");
    }
    for id in 8..=10 {
        let line = format!("  long {id} (5x): bought 0.5 BTC-PERP, holds 0.5 after the shock");
        assert!(out.contains(&line), "{out}");
    }
    assert!(out.lines().any(|l| l.starts_with("open interest BTC-PERP ")), "{out}");
    let committed = count_before(&out, "batches committed to the embedded chain");
    assert!(committed >= 1, "{out}");
    assert_eq!(count_before(&out, "epochs closed"), committed, "every closed epoch committed: {out}");
    assert!(!out.contains("last pass failed"), "{out}");
    assert!(out.contains(&format!("{committed} committed roots match")), "{out}");

    // The printed command, run by hand, agrees.
    let printed = out.lines().find_map(|l| l.trim().strip_prefix("l2x replay ")).unwrap_or_else(|| panic!("{out}"));
    let replay = l2x(&[&["replay"][..], &printed.split(' ').collect::<Vec<_>>()].concat(), dir.path());
    assert!(replay.status.success(), "{}", text(&replay));
    assert!(text(&replay).contains(&format!("{committed} committed roots match")), "{}", text(&replay));
    let data = dir.path().join("l2x-demo");
    let d = data.to_str().unwrap();
    let (batches, chain) = (format!("{d}/batches"), format!("{d}/chain"));
    let verify = l2x(&["settle", "verify", "--journal", d, "--batches", &batches, "--chain-dir", &chain], dir.path());
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains(&format!("{committed} committed roots match")), "{}", text(&verify));

    // A second run starts afresh in its own directory; a directory it did not make is left
    // alone.
    // It logs warnings only unless asked: with `--log-level info`, every session's logon and
    // logout, as `l2x serve` does (two makers, two takers, six longs).
    let quiet = String::from_utf8_lossy(&run.stderr);
    assert!(!quiet.contains(" INFO "), "{quiet}");
    let again = l2x(&["demo", "--seconds", "1", "--log-level", "info"], dir.path());
    assert!(again.status.success(), "{}", text(&again));
    let logs = String::from_utf8_lossy(&again.stderr);
    assert_eq!(logs.lines().filter(|l| l.contains(" INFO logon ")).count(), 10, "{logs}");
    assert!(logs.lines().filter(|l| l.contains(" INFO logout ") && l.contains("reason=")).count() >= 10, "{logs}");
    let other = dir.path().join("mine");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "x").unwrap();
    let refused = l2x(&["demo", "--data-dir", other.to_str().unwrap()], dir.path());
    assert!(!refused.status.success());
    assert!(text(&refused).contains("is not a demo directory"), "{}", text(&refused));
    assert!(other.join("keep.txt").exists());
}
