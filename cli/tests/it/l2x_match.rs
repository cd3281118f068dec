//! `l2x match` as a binary: standard input, the exit codes, a golden scenario through the
//! process, and input it refuses. (The golden scenarios themselves are run by the
//! sequencer crate's tests, which own the scenario format: `sequencer/tests/it/golden.rs`.)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sequencer/tests/scenarios")
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

/// One golden scenario with skipped lines through the binary: its output, its standard
/// error, exit code 2 and `--state-out`, as the golden files say.
#[test]
fn a_golden_scenario_through_the_binary_exits_2_on_skipped_lines() {
    let scenario = scenarios_dir().join("margin.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let run = l2x_match(&scenario, Some(&state));
    assert_eq!(run.stdout, fs::read_to_string(scenario.with_extension("expected")).unwrap());
    assert_eq!(run.stderr, fs::read_to_string(scenario.with_extension("stderr")).unwrap());
    assert_eq!(run.code, Some(2));
    assert_eq!(fs::read_to_string(state).unwrap(), fs::read_to_string(scenario.with_extension("state.json")).unwrap());
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
