//! Integration tests of the `l2x` binary, run as a real process.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod demo;
mod escape_sequence;
mod flags;
mod journal;
mod l2x_match;
mod owner;
mod replay;
mod serve;
mod settle;
mod settle_files;
mod settle_idle;
mod settle_rebuild;

/// A golden scenario's lines with the commands 1 ms apart (`"ts"` = line number × 1 ms), so
/// that epochs of 1 ms close every second command. A line with its own `ts` keeps it, and
/// the lines after it do not go back before it.
fn scenario_1ms_apart(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sequencer/tests/scenarios").join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let mut last = 0;
    (1u64..)
        .zip(text.lines())
        .map(|(n, line)| {
            let mut cmd: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
            let ts = cmd.get("ts").and_then(serde_json::Value::as_u64).unwrap_or((n * 1_000_000).max(last));
            last = ts;
            cmd.insert("ts".into(), ts.into());
            format!("{}\n", serde_json::Value::Object(cmd))
        })
        .collect()
}
