//! Replay to a point reproduces the engine's state hash there — from the start and from the
//! newest snapshot before the point, by sequence number and by time — and bad journals are
//! clear errors naming the file; a torn tail stops the replay cleanly before it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use l2x_replay::{Options, ReplayError, Until, replay};
use l2x_risk::Ledger;
use l2x_sequencer::journal::{JournalError, JournalWriter};
use l2x_sequencer::scenario::{Applied, Runner};
use l2x_types::{AccountId, Amount, Command, Holder, Seq, Sequenced, Timestamp};

fn scenario(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sequencer/tests/scenarios").join(name);
    std::fs::read_to_string(path).unwrap()
}

/// Runs a scenario into a journal in `dir` (small segments, a snapshot every 4 commands);
/// returns each journaled command's (time, state hash).
fn journal(dir: &Path, name: &str, segment_bytes: u64) -> BTreeMap<u64, (u64, String)> {
    let (writer, _) = JournalWriter::open(dir, segment_bytes).unwrap();
    let mut runner = Runner::new().with_journal(writer, false, 4);
    let mut after = BTreeMap::new();
    for (n, line) in scenario(name).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let seq = n as u64 + 1;
        if let Ok(Ok(Applied::Command(cmd))) = runner.run_line(seq, line, &mut std::io::sink()) {
            after.insert(seq, (cmd.ts.0, runner.state().canonical().hash().to_string()));
        }
    }
    after
}

fn hash_at(dir: &Path, until: Until, from_start: bool) -> (u64, String, Option<u64>) {
    let opts = Options { until, from_start, progress: false };
    let out = replay(dir, &Ledger::default(), opts, &mut ()).unwrap();
    (out.last_seq, out.state.canonical().hash().to_string(), out.snapshot.map(|s| s.0))
}

#[test]
fn every_point_replays_to_the_engines_hash_from_the_start_and_from_snapshots() {
    for name in ["liquidation_book.jsonl", "liquidation_insurance.jsonl", "adl.jsonl", "funding.jsonl"] {
        let dir = tempfile::tempdir().unwrap();
        let after = journal(dir.path(), name, 1 << 20);
        assert!(after.len() >= 8, "{name}");
        let mut snapshots_used = 0;
        for (&seq, (ts, hash)) in &after {
            let (reached, h, snap) = hash_at(dir.path(), Until::Seq(seq), false);
            assert_eq!((reached, &h), (seq, hash), "{name} at {seq}, from snapshot {snap:?}");
            snapshots_used += usize::from(snap.is_some());
            assert_eq!(hash_at(dir.path(), Until::Seq(seq), true).1, *hash, "{name} at {seq} from the start");
            // By time: the last command sequenced at or before its time.
            let expected = after.iter().filter(|(_, (t, _))| t <= ts).map(|(s, _)| *s).max().unwrap();
            assert_eq!(hash_at(dir.path(), Until::Time(Timestamp(*ts)), false).0, expected, "{name} at t={ts}");
        }
        assert!(snapshots_used > 0, "{name}: snapshots were used");
        let (last, h, _) = hash_at(dir.path(), Until::End, false);
        assert_eq!((last, h), (*after.keys().last().unwrap(), after.values().last().unwrap().1.clone()));
        // Before the first command: the empty state; past the end: the end.
        let first_ts = after.values().next().unwrap().0;
        if first_ts > 0 {
            assert_eq!(hash_at(dir.path(), Until::Time(Timestamp(first_ts - 1)), false).0, 0);
        }
        assert_eq!(hash_at(dir.path(), Until::Seq(1_000_000), false).0, last);
        let at_start = after.iter().filter(|(_, (t, _))| *t == first_ts).map(|(s, _)| *s).max().unwrap();
        assert_eq!(hash_at(dir.path(), Until::Elapsed(0), false).0, at_start);
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "l2xj"))
        .collect();
    v.sort();
    v
}

fn error(dir: &Path) -> ReplayError {
    let opts = Options { from_start: true, ..Options::default() };
    replay(dir, &Ledger::default(), opts, &mut ()).unwrap_err()
}

/// A journal of `n` deposits in segments of `segment_bytes`; returns where appending would
/// continue: (segment index, byte offset).
fn deposits(dir: &Path, n: u64, segment_bytes: u64) -> (u64, u64) {
    let (mut w, _) = JournalWriter::open(dir, segment_bytes).unwrap();
    for k in 1..=n {
        let cmd = Command::Deposit { to: Holder::Account(AccountId(k % 7 + 1)), amount: Amount(1_000_000) };
        w.append(&Sequenced { seq: Seq(k), ts: Timestamp(1_000 * k), cmd }).unwrap();
    }
    w.sync().unwrap();
    w.position()
}

#[test]
fn a_missing_segment_a_corrupt_record_and_a_newer_format_are_named() {
    // Small segments: the journal spans several.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    deposits(dir, 2_000, 16 << 10);
    let files = segments(dir);
    assert!(files.len() >= 3, "{files:?}");
    let keep = |p: &Path| std::fs::read(p).unwrap();
    let second = keep(&files[1]);

    std::fs::remove_file(&files[1]).unwrap();
    let e = error(dir);
    assert!(matches!(e, ReplayError::Journal(JournalError::MissingSegment { index: 1, .. })), "{e}");
    std::fs::write(&files[1], &second).unwrap();

    // A flipped byte in the middle of the second segment's records.
    let mut bad = second.clone();
    bad[200] ^= 0x55;
    std::fs::write(&files[1], &bad).unwrap();
    let e = error(dir).to_string();
    assert!(e.contains(&files[1].display().to_string()), "{e}");
    std::fs::write(&files[1], &second).unwrap();

    // A newer format version in the first segment's header.
    let first = keep(&files[0]);
    let mut newer = first.clone();
    newer[8] = 99;
    std::fs::write(&files[0], &newer).unwrap();
    let e = error(dir);
    assert!(matches!(e, ReplayError::Journal(JournalError::NewerFormat { version: 99, .. })), "{e}");
    std::fs::write(&files[0], &first).unwrap();
    assert!(replay(dir, &Ledger::default(), Options::default(), &mut ()).is_ok());
}

#[test]
fn a_torn_tail_is_reported_and_replay_stops_before_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, end) = deposits(tmp.path(), 300, 1 << 20);
    let whole = replay(tmp.path(), &Ledger::default(), Options::default(), &mut ()).unwrap();
    let last = segments(tmp.path()).pop().unwrap();
    // Half a record where the next would go: a length and a few bytes.
    let mut bytes = std::fs::read(&last).unwrap();
    let at = usize::try_from(end).unwrap();
    bytes[at..at + 6].copy_from_slice(&[60, 0, 0, 0, 0xAB, 0xCD]);
    std::fs::write(&last, &bytes).unwrap();
    let out = replay(tmp.path(), &Ledger::default(), Options::default(), &mut ()).unwrap();
    let torn = out.torn.expect("the torn tail is reported");
    assert_eq!((torn.path, torn.offset), (last, end));
    assert_eq!(out.last_seq, 300);
    assert_eq!(out.state.canonical().hash(), whole.state.canonical().hash());
}

#[test]
fn a_snapshot_past_the_journals_end_is_an_error_naming_the_missing_records() {
    // A snapshot at 400, then the journal loses records 301..=400 (zeroed, as a machine
    // failure under durability os can lose its last pages): the snapshot proves they existed.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_, at_301) = deposits(dir, 300, 1 << 20);
    let (_, end) = {
        let (mut w, _) = JournalWriter::open(dir, 1 << 20).unwrap();
        for k in 301..=400 {
            let cmd = Command::Deposit { to: Holder::Account(AccountId(1)), amount: Amount(1) };
            w.append(&Sequenced { seq: Seq(k), ts: Timestamp(1_000 * k), cmd }).unwrap();
        }
        let at_400 = replay(dir, &Ledger::default(), Options::default(), &mut ()).unwrap();
        let id = l2x_sequencer::journal::Journal::open(dir).unwrap().id();
        l2x_sequencer::journal::snapshot::write(dir, id, w.last(), &at_400.state.canonical()).unwrap();
        w.position()
    };
    let last = segments(dir).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes[usize::try_from(at_301).unwrap()..usize::try_from(end).unwrap()].fill(0);
    std::fs::write(&last, &bytes).unwrap();
    let e = replay(dir, &Ledger::default(), Options::default(), &mut ()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ReplayError::Journal(JournalError::SnapshotNotInJournal { .. })), "{text}");
    assert!(text.contains("snapshot-00000000000000000400.l2xs") && text.contains("ends at seq 300"), "{text}");
    // Up to a point before the loss, the journal still answers (from the start).
    let out = replay(dir, &Ledger::default(), Options { until: Until::Seq(300), ..Options::default() }, &mut ());
    assert_eq!(out.unwrap().last_seq, 300);
}
