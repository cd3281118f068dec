//! Golden scenarios: every `sequencer/tests/scenarios/NAME.jsonl` is run by the scenario
//! runner, and its events, its reports of bad lines and whether any line was skipped are
//! compared with `NAME.expected`, `NAME.stderr` (absent: must be empty) and the rule "a run
//! with skipped lines if and only if `NAME.stderr` reports one" (a refused listing's reason
//! is not one; `l2x match` exits 2 for such a run). Where `NAME.state.json` exists, the final
//! state report must equal it.
//!
//! After an intended change of behaviour, `UPDATE_GOLDEN=1 cargo test -p l2x-sequencer
//! golden` rewrites the files; review the diff line by line before committing it.

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use l2x_sequencer::scenario::{self, Runner};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

/// What a run of one scenario gave.
struct Run {
    stdout: String,
    stderr: String,
    skipped: bool,
    state: String,
}

fn run(path: &Path) -> Run {
    let mut runner = Runner::new();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let file = fs::File::open(path).unwrap();
    let summary = runner.run(BufReader::new(file), &mut out, &mut err).unwrap();
    Run {
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
        skipped: summary.errors > 0,
        state: scenario::state_report(runner.state(), runner.last_seq()).to_json(),
    }
}

#[test]
fn golden_scenarios_match_their_expected_output() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut scenarios: Vec<PathBuf> = fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 6, "expected the golden scenarios, found {scenarios:?}");
    let mut failures = Vec::new();
    for scenario in &scenarios {
        let got = run(scenario);
        let (expected_out, expected_err, expected_state) = (
            scenario.with_extension("expected"),
            scenario.with_extension("stderr"),
            scenario.with_extension("state.json"),
        );
        if update {
            if expected_state.exists() {
                fs::write(&expected_state, &got.state).unwrap();
            }
            fs::write(&expected_out, &got.stdout).unwrap();
            if got.stderr.is_empty() {
                let _ = fs::remove_file(&expected_err);
            } else {
                fs::write(&expected_err, &got.stderr).unwrap();
            }
            continue;
        }
        let name = scenario.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let want_out = fs::read_to_string(&expected_out).unwrap_or_default();
        let want_err = fs::read_to_string(&expected_err).unwrap_or_default();
        // A refused listing's reason is written too, but is no bad line.
        let skipped = want_err.lines().any(|l| !l.contains(": instrument refused (bad_instrument): "));
        if got.stdout != want_out {
            failures.push(format!("{name}: events differ\n{}", diff(&want_out, &got.stdout)));
        }
        if got.stderr != want_err {
            failures.push(format!("{name}: reports of bad lines differ\n{}", diff(&want_err, &got.stderr)));
        }
        if got.skipped != skipped {
            failures.push(format!("{name}: skipped lines {}, expected {skipped}", got.skipped));
        }
        if expected_state.exists() {
            let want = fs::read_to_string(&expected_state).unwrap();
            if got.state != want {
                failures.push(format!("{name}: final state differs\n{}", diff(&want, &got.state)));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The first differing line of two texts, with its number.
fn diff(want: &str, got: &str) -> String {
    let (mut w, mut g) = (want.lines(), got.lines());
    for n in 1.. {
        match (w.next(), g.next()) {
            (None, None) => break,
            (a, b) if a == b => continue,
            (a, b) => return format!("  line {n}:\n    expected {a:?}\n    got      {b:?}"),
        }
    }
    String::new()
}
