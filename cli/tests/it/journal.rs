//! The journal through the real binary: `l2x match --journal`, `l2x journal export`,
//! `l2x replay --state-hash`, and crashes — the process killed with SIGKILL at random points
//! while it journals, then recovered.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use l2x_sequencer::journal::{self, JournalWriter};
use l2x_sequencer::scenario::Runner;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn l2x(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_l2x")).args(args).stdin(Stdio::null()).output().expect("run l2x")
}

fn scenarios_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sequencer/tests/scenarios")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `{"seq":N,"state_hash":"0x…"}` from `l2x replay DIR --state-hash`.
fn replay_hash(dir: &Path, until: Option<u64>) -> (u64, String) {
    let until = until.map(|n| n.to_string());
    let mut args = vec!["replay", path(dir), "--state-hash"];
    if let Some(n) = &until {
        args.extend(["--until-seq", n]);
    }
    let out = l2x(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    (v["seq"].as_u64().expect("seq"), v["state_hash"].as_str().expect("hash").to_string())
}

#[test]
fn every_golden_scenario_round_trips_through_the_journal() {
    let mut names: Vec<_> = fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    names.sort();
    for scenario in names {
        let tmp = tempfile::tempdir().unwrap();
        let (j1, j2) = (tmp.path().join("j1"), tmp.path().join("j2"));
        let state = tmp.path().join("state.json");
        let run1 = l2x(&["match", "--input", path(&scenario), "--journal", path(&j1), "--state-out", path(&state)]);
        assert!(run1.status.code().is_some_and(|c| c == 0 || c == 2), "{scenario:?}");
        let e1 = l2x(&["journal", "export", path(&j1)]);
        assert!(e1.status.success());
        let export1 = tmp.path().join("e1.jsonl");
        fs::write(&export1, &e1.stdout).unwrap();
        let run2 = l2x(&["match", "--input", path(&export1), "--journal", path(&j2)]);
        assert_eq!(run2.status.code(), Some(0), "{scenario:?}: the export must be a clean scenario");
        let e2 = l2x(&["journal", "export", path(&j2)]);
        assert_eq!(e1.stdout, e2.stdout, "{scenario:?}: export, run, export again differs");
        // The replayed state is the state `--state-out` reported.
        let reported: serde_json::Value = serde_json::from_slice(&fs::read(&state).unwrap()).unwrap();
        let (seq, hash) = replay_hash(&j1, None);
        assert_eq!(Some(seq), reported["seq"].as_u64(), "{scenario:?}");
        assert_eq!(Some(hash.as_str()), reported["state_hash"].as_str(), "{scenario:?}");
        // And the re-run from the export ends in the same state.
        assert_eq!(replay_hash(&j2, None).1, hash, "{scenario:?}");
    }
}

/// A long random scenario: one instrument, twenty accounts, orders around a moving mark,
/// cancels and amends (some of orders that are gone), oracle moves and funding ticks.
fn big_scenario(seed: u64, commands: usize) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = String::new();
    s.push_str(r#"{"cmd":"instrument","symbol":"BTC-PERP","tick_size":"0.5","lot_size":"0.001","initial_margin":"0.05","maintenance_margin":"0.03","max_order_qty":"10","max_position_qty":"100","price_band":"0.1","taker_fee":"0.0005","maker_fee":"-0.0001"}"#);
    s.push('\n');
    for a in 1..=20 {
        s.push_str(&format!(
            "{{\"cmd\":\"deposit\",\"account\":{a},\"amount\":\"{}\"}}\n",
            rng.random_range(2_000..200_000)
        ));
    }
    let mut mark: i64 = 100_000;
    s.push_str(&format!("{{\"cmd\":\"oracle\",\"symbol\":\"BTC-PERP\",\"price\":\"{}\"}}\n", mark / 2));
    for i in 0..commands {
        let ts = (i as u64 + 1) * 1_000;
        let account = rng.random_range(1..=20);
        let cid = rng.random_range(1..=40);
        let line = match rng.random_range(0..100) {
            0..55 => {
                let side = if rng.random_bool(0.5) { "buy" } else { "sell" };
                let price = mark + rng.random_range(-200..=200);
                let tif = ["gtc", "gtc", "ioc", "fok"][rng.random_range(0..4)];
                format!(
                    r#"{{"cmd":"new","account":{account},"cid":{cid},"symbol":"BTC-PERP","side":"{side}","price":"{}","qty":"{}","tif":"{tif}","ts":{ts}}}"#,
                    f64_free(price),
                    lots(rng.random_range(1..2_000))
                )
            }
            55..75 => format!(r#"{{"cmd":"cancel","account":{account},"cid":{cid},"ts":{ts}}}"#),
            75..90 => format!(
                r#"{{"cmd":"amend","account":{account},"cid":{cid},"price":"{}","ts":{ts}}}"#,
                f64_free(mark + rng.random_range(-200..=200))
            ),
            90..97 => {
                mark = (mark + rng.random_range(-600..=600)).max(60_000);
                format!(r#"{{"cmd":"oracle","symbol":"BTC-PERP","price":"{}","ts":{ts}}}"#, f64_free(mark))
            }
            _ => format!(r#"{{"cmd":"funding","symbol":"BTC-PERP","ts":{ts}}}"#),
        };
        s.push_str(&line);
        s.push('\n');
    }
    s
}

/// A price in ticks of 0.5 as an exact decimal string.
fn f64_free(ticks: i64) -> String {
    if ticks % 2 == 0 { format!("{}", ticks / 2) } else { format!("{}.5", ticks / 2) }
}

/// A quantity in lots of 0.001 as an exact decimal string.
fn lots(n: i64) -> String {
    format!("{}.{:03}", n / 1_000, n % 1_000)
}

/// The largest `"seq":N` in a line of events.
fn seq_of(line: &str) -> Option<u64> {
    let at = line.find("\"seq\":")? + 6;
    line[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The state hash after the first `last_seq` lines of `scenario`, run in-process.
fn clean_hash(scenario: &str, last_seq: u64) -> String {
    let mut runner = Runner::new();
    let upto: String = scenario.lines().take(usize::try_from(last_seq).unwrap()).map(|l| format!("{l}\n")).collect();
    runner.run(upto.as_bytes(), &mut std::io::sink(), &mut std::io::sink()).unwrap();
    assert_eq!(runner.last_seq(), last_seq);
    runner.state().canonical().hash().to_string()
}

#[test]
fn killed_at_random_points_it_recovers_every_released_command() {
    let scenario = big_scenario(7, 40_000);
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("big.jsonl");
    fs::write(&input, &scenario).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0xc0ffee);
    let mut killed = 0;
    for round in 0..8 {
        let dir = tmp.path().join(format!("crash-{round}"));
        let mut args =
            vec!["match".to_string(), "--input".into(), path(&input).into(), "--journal".into(), path(&dir).into()];
        if round % 2 == 1 {
            args.extend(["--snapshot-every".into(), rng.random_range(500..5_000u64).to_string()]);
        }
        if round == 7 {
            args.extend(["--durability".into(), "fsync".into()]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_l2x"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn l2x");
        // Read released events until a random point, then SIGKILL.
        let kill_after = rng.random_range(50..20_000);
        let mut seen_seq = 0u64;
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        for _ in 0..kill_after {
            match lines.next() {
                Some(Ok(line)) => seen_seq = seen_seq.max(seq_of(&line).unwrap_or(0)),
                _ => break,
            }
        }
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        if status.code().is_none() {
            killed += 1;
        }
        // (a) every command whose events were released is in the journal.
        let report = journal::scan(&dir, |_| std::ops::ControlFlow::Continue(())).expect("scan after crash");
        assert!(
            report.last_seq >= seen_seq,
            "round {round}: saw events of seq {seen_seq} but the journal ends at {}",
            report.last_seq
        );
        // (b) the recovered state is a clean run's state at the same sequence number.
        let (seq, hash) = replay_hash(&dir, None);
        assert_eq!(seq, report.last_seq);
        assert_eq!(hash, clean_hash(&scenario, seq), "round {round}: recovered state differs at seq {seq}");
        // A writer reopening it truncates any torn tail and continues cleanly.
        let (writer, reopened) = JournalWriter::open(&dir, journal::DEFAULT_SEGMENT_BYTES).expect("reopen");
        assert_eq!(writer.last_seq(), seq);
        assert_eq!(reopened.torn, report.torn);
        drop(writer);
        assert_eq!(journal::scan(&dir, |_| std::ops::ControlFlow::Continue(())).unwrap().torn, None);
    }
    assert!(killed >= 6, "only {killed} of 8 runs were killed before finishing: make the scenario longer");
}

#[test]
fn journal_commands_give_clear_errors_on_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = scenarios_dir().join("basic_matching.jsonl");
    let dir = tmp.path().join("j");
    assert!(l2x(&["match", "--input", path(&scenario), "--journal", path(&dir)]).status.success());
    // A journal that already has records is not overwritten.
    let again = l2x(&["match", "--input", path(&scenario), "--journal", path(&dir)]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a journal"));
    // A flipped byte in the middle: both tools fail naming the file and the offset.
    let seg = dir.join("journal-00000000.l2xj");
    let mut bytes = fs::read(&seg).unwrap();
    bytes[96 + 40] ^= 0xff;
    fs::File::create(&seg).unwrap().write_all(&bytes).unwrap();
    for args in [vec!["journal", "export", path(&dir)], vec!["replay", path(&dir), "--state-hash"]] {
        let out = l2x(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("journal-00000000.l2xj") && err.contains("corrupt record at byte offset 96"), "{err}");
    }
    // A directory that is not a journal.
    let out = l2x(&["replay", "/nonexistent/journal", "--state-hash"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/journal"));
}

/// Regression (issue 14): `l2x serve` on a journal whose second-to-last record had one
/// flipped bit logged a torn tail, recovered to the record before the damage and zeroed the
/// valid record after it on disk. It must refuse to start, name the segment and the offset,
/// and leave the journal as it found it.
#[test]
fn serve_refuses_a_damaged_record_before_a_valid_one_and_zeroes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let scenario = scenarios_dir().join("basic_matching.jsonl");
    assert!(l2x(&["match", "--input", path(&scenario), "--journal", path(&dir)]).status.success());
    let seg = dir.join("journal-00000000.l2xj");
    let mut bytes = fs::read(&seg).unwrap();
    // The records' starts, walking their length fields from the 96-byte header.
    let mut starts = Vec::new();
    let mut at = 96;
    while u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) != 0 {
        starts.push(at);
        at += u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    }
    let damaged = starts[starts.len() - 2];
    bytes[damaged + 36] ^= 0x10;
    fs::write(&seg, &bytes).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_l2x"))
        .args(["serve", "--data-dir", path(&dir), "--order-entry", "127.0.0.1:0"])
        .args(["--market-data", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A node that refuses ends by itself; one that started would serve until killed.
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("journal-00000000.l2xj") && err.contains(&format!("corrupt record at byte offset {damaged}")),
        "{err}"
    );
    assert_eq!(fs::read(&seg).unwrap(), bytes, "the journal was modified");
}

/// A golden scenario journaled in 512-byte segments with a snapshot every 10 commands:
/// several segments, snapshots in the middle. Returns the last seq.
fn small_segments(dir: &Path, scenario: &str) -> u64 {
    let text = fs::read_to_string(scenarios_dir().join(scenario)).unwrap();
    let (writer, _) = JournalWriter::open(dir, 512).unwrap();
    let mut runner = Runner::new().with_journal(writer, false, 10);
    runner.run(text.as_bytes(), &mut std::io::sink(), &mut std::io::sink()).unwrap();
    drop(runner);
    assert!(journal::segments(dir).unwrap().len() >= 3, "several segments");
    replay_hash(dir, None).0
}

/// Regression (issue 14, "a missing segment is not detected"), through the binary as it
/// was reported: with the first segment deleted, `l2x replay --until-seq N --state-hash`
/// (from a snapshot), `l2x replay --state-hash` and `l2x journal export` printed a wrong
/// hash or exported from a later seq with exit 0. Each must exit 1 naming the missing
/// segment; with the last segment deleted, likewise.
#[test]
fn replay_and_export_exit_1_naming_a_missing_first_or_last_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    let last_seq = small_segments(&clean, "time_in_force.jsonl");
    let segments = journal::segments(&clean).unwrap();
    for (missing, index) in [(0, 0), (segments.len() - 1, segments[segments.len() - 1].0)] {
        let case = tmp.path().join(format!("without-{missing}"));
        fs::create_dir(&case).unwrap();
        for entry in fs::read_dir(&clean).unwrap() {
            let p = entry.unwrap().path();
            if p != segments[missing].1 && p.file_name().unwrap() != "LOCK" {
                fs::copy(&p, case.join(p.file_name().unwrap())).unwrap();
            }
        }
        let until = last_seq.to_string();
        for args in [
            vec!["replay", path(&case), "--until-seq", &until, "--state-hash"],
            vec!["replay", path(&case), "--state-hash"],
            vec!["journal", "export", path(&case)],
        ] {
            let out = l2x(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "segment {index} missing, {args:?}: {err}");
            assert!(err.contains("missing"), "segment {index} missing, {args:?}: {err}");
            assert!(!String::from_utf8_lossy(&out.stdout).contains("state_hash"), "{args:?}: no hash printed");
        }
    }
}

/// `l2x journal truncate`, through the binary: on a sound journal it cuts nothing; on one
/// with a damaged record before valid ones (which every reader refuses) it cuts at the
/// damage, keeps what it cut in `cut-N/`, and the journal then replays to the record
/// before the damage.
#[test]
fn journal_truncate_cuts_at_the_damage_and_keeps_what_it_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let scenario = scenarios_dir().join("basic_matching.jsonl");
    assert!(l2x(&["match", "--input", path(&scenario), "--journal", path(&dir)]).status.success());
    let (last_seq, _) = replay_hash(&dir, None);
    let sound = l2x(&["journal", "truncate", path(&dir)]);
    assert!(sound.status.success());
    assert!(String::from_utf8_lossy(&sound.stdout).contains("nothing to cut"), "{sound:?}");

    let seg = dir.join("journal-00000000.l2xj");
    let mut bytes = fs::read(&seg).unwrap();
    let second = 96 + u32::from_le_bytes(bytes[96..100].try_into().unwrap()) as usize;
    bytes[second + 36] ^= 0x10;
    fs::write(&seg, &bytes).unwrap();
    assert_eq!(l2x(&["replay", path(&dir), "--state-hash"]).status.code(), Some(1), "refused before the cut");
    let cut = l2x(&["journal", "truncate", path(&dir)]);
    let said = String::from_utf8_lossy(&cut.stdout);
    assert!(cut.status.success(), "{}", String::from_utf8_lossy(&cut.stderr));
    assert!(said.contains(&format!("byte {second}; the journal now ends at seq 1")), "{said}");
    let aside = dir.join("cut-1");
    assert!(said.contains(&format!("everything cut is in {}", aside.display())), "{said}");
    assert_eq!(fs::read(aside.join("journal-00000000.l2xj")).unwrap(), bytes, "the segment as it was");
    assert_eq!(replay_hash(&dir, None).0, 1);
    assert!(last_seq > 1);
}
