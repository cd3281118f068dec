//! Golden scenarios: every `engine/tests/scenarios/NAME.jsonl` is run through
//! `l2x match --input`, and standard output, standard error and the exit code are compared
//! with `NAME.expected`, `NAME.stderr` (absent: must be empty) and the rule "exit 2 if and
//! only if `NAME.stderr` reports a skipped line" (a refused listing's reason is not one). Where `NAME.state.json` exists, the run also writes
//! `--state-out` and the final state must equal it.
//!
//! After an intended change of behaviour, `UPDATE_GOLDEN=1 cargo test -p l2x golden`
//! rewrites the files; review the diff line by line before committing it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/scenarios")
}

struct Run {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

fn l2x_match(input: &Path, state_out: Option<&Path>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l2x"));
    cmd.arg("match").arg("--input").arg(input).stdin(Stdio::null());
    if let Some(path) = state_out {
        cmd.arg("--state-out").arg(path);
    }
    let out = cmd.output().expect("run l2x");
    Run {
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
        code: out.status.code(),
    }
}

#[test]
fn golden_scenarios_match_their_expected_output() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut scenarios: Vec<PathBuf> = fs::read_dir(scenarios_dir())
        .expect("scenarios dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 6, "expected the golden scenarios, found {scenarios:?}");
    let mut failures = Vec::new();
    let scratch = std::env::temp_dir().join(format!("l2x-golden-{}", std::process::id()));
    fs::create_dir_all(&scratch).expect("scratch dir");
    for scenario in &scenarios {
        let expected_state = scenario.with_extension("state.json");
        let state_out = expected_state.exists().then(|| scratch.join("state.json"));
        let run = l2x_match(scenario, state_out.as_deref());
        let expected_out = scenario.with_extension("expected");
        let expected_err = scenario.with_extension("stderr");
        let state = state_out.as_ref().map(|p| fs::read_to_string(p).expect("state written"));
        if update {
            if let Some(state) = &state {
                fs::write(&expected_state, state).expect("write state");
            }
            fs::write(&expected_out, &run.stdout).expect("write expected");
            if run.stderr.is_empty() {
                let _ = fs::remove_file(&expected_err);
            } else {
                fs::write(&expected_err, &run.stderr).expect("write stderr");
            }
            continue;
        }
        let name = scenario.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let want_out = fs::read_to_string(&expected_out).unwrap_or_default();
        let want_err = fs::read_to_string(&expected_err).unwrap_or_default();
        // A refused listing's reason is written too, but is no bad line.
        let skipped = want_err.lines().any(|l| !l.contains(": instrument refused (bad_instrument): "));
        let want_code = if skipped { 2 } else { 0 };
        if run.stdout != want_out {
            failures.push(format!("{name}: stdout differs\n{}", diff(&want_out, &run.stdout)));
        }
        if run.stderr != want_err {
            failures.push(format!("{name}: stderr differs\n{}", diff(&want_err, &run.stderr)));
        }
        if run.code != Some(want_code) {
            failures.push(format!("{name}: exit code {:?}, expected {want_code}", run.code));
        }
        if let Some(state) = &state {
            let want = fs::read_to_string(&expected_state).expect("expected state");
            if *state != want {
                failures.push(format!("{name}: final state differs\n{}", diff(&want, state)));
            }
        }
    }
    let _ = fs::remove_dir_all(&scratch);
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

#[test]
fn standard_input_is_read_with_dash() {
    let scenario = scenarios_dir().join("basic_matching.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_l2x"))
        .args(["match", "--input", "-"])
        .stdin(fs::File::open(&scenario).expect("open scenario"))
        .output()
        .expect("run l2x");
    assert_eq!(out.status.code(), Some(0));
    let want = fs::read_to_string(scenario.with_extension("expected")).expect("expected file");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

#[test]
fn a_missing_input_file_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_l2x"))
        .args(["match", "--input", "/nonexistent/scenario.jsonl"])
        .output()
        .expect("run l2x");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot open /nonexistent/scenario.jsonl"), "{stderr}");
}

/// Regression: a line of invalid UTF-8 stopped the whole run (exit 1, no line number, the
/// lines after it skipped).
#[test]
fn match_reports_invalid_utf8_line_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("bytes.jsonl");
    let mut bytes = b"{\"cmd\":\"deposit\",\"account\":1,\"amount\":\"5\"}\n".to_vec();
    bytes.extend_from_slice(b"{\"cmd\":\"deposit\",\"account\":1,\"amount\":\"\xc3\x28\"}\n");
    bytes.extend_from_slice(b"{\"cmd\":\"deposit\",\"account\":1,\"amount\":\"7\"}\n");
    fs::write(&scenario, bytes).unwrap();
    let run = l2x_match(&scenario, None);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(run.stderr, "line 2: not UTF-8: byte 40 of the line is not part of a UTF-8 character\n");
    assert!(run.stdout.contains(r#"{"ev":"balance","seq":3,"account":1,"collateral":"12"}"#), "{}", run.stdout);
}

/// Regression: `--input DIR` failed with an OS error that named no path.
#[test]
fn match_input_directory_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let run = l2x_match(dir.path(), None);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains(&format!("--input {}: is a directory", dir.path().display())), "{}", run.stderr);
}
