//! Command-line numbers out of their range are refused by clap before anything runs, with
//! the flag and the range (a huge count used to be an allocation that aborted the process).

use std::process::{Command, Stdio};

/// Runs `l2x ARGS`; it must exit 2 naming `--flag` (the argument before the value) and a
/// range.
fn refused(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_l2x")).args(args).stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    let (flag, value) = (args[args.len() - 2], args[args.len() - 1]);
    assert!(err.contains(&format!("invalid value '{value}' for '{flag}")), "{args:?}: {err}");
    assert!(err.contains("is not in") || err.contains("at most") || err.contains("must"), "{args:?}: {err}");
}

#[test]
fn huge_counts_on_the_command_line_are_refused() {
    refused(&["bench", "engine", "--commands", "1099511627776"]);
    refused(&["bench", "engine", "--collateral", "0"]);
    refused(&["bench", "pipeline", "--capacity", "1099511627776"]);
    refused(&["bench", "pipeline", "--recovery-commands", "2000M"]);
    refused(&["bench", "replay", "--commands", "0"]);
    refused(&["bench", "risk", "--accounts", "4294967295"]);
    refused(&["bench", "settlement", "--touched", "1099511627776"]);
    refused(&["bench", "wire", "--sessions", "100000"]);
    refused(&["match", "--input", "-", "--snapshot-every", "1000000000001"]);
    refused(&["demo", "--seconds", "0"]);
    refused(&["serve", "--data-dir", ""]);
}
