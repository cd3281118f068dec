//! Damaged journals: every kind of damage to a small journal's files gives a named error or
//! exactly the undamaged result — never a different history without an error, never a
//! valid record modified — and a regression test for each defect found from outside
//! (issue 14: missing segments, intact records zeroed, foreign snapshots, an empty
//! directory read as an empty journal).

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use l2x_engine::{StateHash, StateMachine};
use l2x_risk::Ledger;
use l2x_sequencer::journal::{self, Journal, JournalError, JournalWriter, MAX_RECORD, Point, snapshot};
use l2x_types::{Command, Sequenced};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::journal::{HEADER, crc_header, crc32c_of, point_at, snapshot_at};
use l2x_engine::testing::orders::{Generator, Profile};

/// Segments this small hold a handful of records (and one instrument listing) each.
const SMALL: u64 = 512;

/// A short stream of every kind of command, with a few of the L1 queue's (a binding,
/// entries in and out of turn) among them, before the snapshots.
fn commands(n: usize) -> Vec<Sequenced> {
    let mut generator = Generator::new(Profile::CROSSING);
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let mut cmds = generator.setup();
    while cmds.len() < n {
        cmds.push(generator.next(&mut rng));
    }
    let at = cmds.len().min(10);
    let (seq, ts) = (cmds[at - 1].seq.0, cmds[at - 1].ts.0);
    let l1 = crate::l1_queue::tail(seq, ts, 5);
    let shift = l1.len() as u64;
    for c in &mut cmds[at..] {
        c.seq.0 += shift;
    }
    cmds.splice(at..at, l1);
    cmds.truncate(n);
    cmds
}

fn state_after(cmds: &[Sequenced]) -> StateMachine {
    let mut sm = StateMachine::new();
    let mut out = Vec::new();
    for c in cmds {
        out.clear();
        sm.apply(c, &mut out);
    }
    sm
}

/// Writes `cmds` to a new journal in `dir` in small segments; closes it cleanly (end marker)
/// if `close`.
fn write(dir: &Path, cmds: &[Sequenced], close: bool) {
    let (mut w, _) = JournalWriter::open(dir, SMALL).unwrap();
    for c in cmds {
        w.append(c).unwrap();
    }
    if close {
        w.close().unwrap();
    }
}

/// The error replaying `dir` gives (a success fails the test with the state's hash only).
fn replay_err(dir: &Path, until: Option<u64>) -> JournalError {
    match journal::replay(dir, until, &Ledger::default()) {
        Ok((sm, report)) => panic!("replay succeeded: seq {}, hash {}", report.last_seq, sm.canonical().hash()),
        Err(e) => e,
    }
}

fn records(dir: &Path) -> Result<Vec<Sequenced>, JournalError> {
    let mut got = Vec::new();
    journal::scan(dir, |c| {
        got.push(c);
        ControlFlow::Continue(())
    })?;
    Ok(got)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "LOCK"))
        .collect();
    v.sort();
    v
}

fn segment(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("journal-{index:08}.l2xj"))
}

fn copy_dir(from: &Path, to: &Path) {
    for f in files(to) {
        fs::remove_file(f).unwrap();
    }
    for f in files(from) {
        fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files(dir).into_iter().map(|f| (f.clone(), fs::read(&f).unwrap())).collect()
}

/// What the undamaged journal gives.
struct Clean {
    dir: tempfile::TempDir,
    hash: StateHash,
    export: String,
    /// For a journal not stopped cleanly: the last record (segment file, byte offset), and
    /// the state and export without it — what a damaged last record legitimately gives
    /// (it cannot be told from a torn one).
    last: Option<(PathBuf, usize, StateHash, String)>,
}

/// How the damage suites' journal is made.
#[derive(Clone, Copy)]
enum Shape {
    /// Stopped cleanly (an end marker), a snapshot after the 30th command.
    Closed,
    /// As after a crash (no end marker), a snapshot at the last record of segment 1 (the
    /// next segment's header names it).
    Crashed,
}

/// 40 commands in segments of 512 bytes, with a snapshot; see [`Shape`].
fn clean(shape: Shape) -> Clean {
    let dir = tempfile::tempdir().unwrap();
    let cmds = commands(40);
    let (mut w, _) = JournalWriter::open(dir.path(), SMALL).unwrap();
    let mut starts = Vec::new();
    for c in &cmds {
        starts.push(w.position());
        w.append(c).unwrap();
    }
    let last_start = w.position();
    let at = match shape {
        Shape::Closed => {
            w.close().unwrap();
            29
        }
        Shape::Crashed => {
            drop(w);
            // The last command before the first record of segment 2.
            starts.iter().position(|p| p.0 == 2).unwrap() - 1
        }
    };
    snapshot_at(dir.path(), cmds[at].seq.0, &state_after(&cmds[..=at]).canonical());
    assert!(fs::read_dir(dir.path()).unwrap().count() >= 6, "several segments");
    let export = export(dir.path()).unwrap();
    assert_eq!(records(dir.path()).unwrap(), cmds);
    let last = match shape {
        Shape::Closed => None,
        Shape::Crashed => {
            let (segment_index, offset) = *starts.last().unwrap();
            assert_eq!(segment_index, last_start.0, "the last record is in the last segment");
            let without = export.lines().take(cmds.len() - 1).map(|l| format!("{l}\n")).collect();
            let hash = state_after(&cmds[..cmds.len() - 1]).canonical().hash();
            Some((segment(dir.path(), segment_index), usize::try_from(offset).unwrap(), hash, without))
        }
    };
    Clean { hash: state_after(&cmds).canonical().hash(), dir, export, last }
}

fn export(dir: &Path) -> Result<String, JournalError> {
    let mut out = Vec::new();
    l2x_sequencer::scenario::export(dir, &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

/// The rule: replay, export and recovery of the damaged copy in `case` each give an error
/// that names the directory or one of its files, or exactly the clean result — or, when
/// `torn_allowed` (the damage is in or after the last record of a journal not stopped
/// cleanly), the result without the last record; recovery that fails writes nothing, and
/// recovery that succeeds keeps every record and zeroes only a torn tail.
fn check(case: &Path, clean: &Clean, label: &str, torn_allowed: bool) {
    let named = |e: &JournalError| {
        let text = e.to_string();
        assert!(text.contains(&case.display().to_string()), "{label}: an error that names no file: {text}");
    };
    let without_last = clean.last.as_ref().filter(|_| torn_allowed);
    let state_ok = |hash: StateHash| hash == clean.hash || without_last.is_some_and(|l| l.2 == hash);
    match journal::replay(case, None, &Ledger::default()) {
        Ok((sm, _)) => assert!(state_ok(sm.canonical().hash()), "{label}: replay gave another state"),
        Err(e) => named(&e),
    }
    match export(case) {
        Ok(text) => assert!(
            text == clean.export || without_last.is_some_and(|l| l.3 == text),
            "{label}: export gave other lines"
        ),
        Err(e) => named(&e),
    }
    let before = contents(case);
    let readable = records(case).ok();
    match journal::recover(case, SMALL, &Ledger::default()) {
        Ok((sm, writer, report)) => {
            drop(writer);
            assert!(state_ok(sm.canonical().hash()), "{label}: recovery gave another state");
            only_torn_bytes_zeroed(&before, report.torn.as_ref(), label);
            if let Some(records_before) = readable {
                let after = records(case).unwrap_or_else(|e| panic!("{label}: unreadable after recovery: {e}"));
                assert_eq!(after, records_before, "{label}: recovery changed the records");
            }
        }
        Err(e) => {
            named(&e);
            assert_eq!(contents(case), before, "{label}: a failed recovery wrote to the journal");
        }
    }
}

/// Recovery changed nothing in the files but zeroed a torn tail and wrote zero bytes over
/// (a seal, where a roll was cut short).
fn only_torn_bytes_zeroed(before: &[(PathBuf, Vec<u8>)], torn: Option<&journal::TornTail>, label: &str) {
    for (path, old) in before {
        let Ok(new) = fs::read(path) else { continue };
        for (i, (a, b)) in old.iter().zip(&new).enumerate() {
            let zeroed_torn = *b == 0
                && torn.is_some_and(|t| {
                    t.path == *path && (t.offset as usize..t.offset as usize + MAX_RECORD).contains(&i)
                });
            assert!(a == b || zeroed_torn || *a == 0, "{label}: recovery changed {} byte {i}", path.display());
        }
    }
}

/// A flipped bit at every offset of every file of a `shape` journal.
fn every_flipped_bit(shape: Shape) {
    let clean = clean(shape);
    let case = tempfile::tempdir().unwrap();
    let mut cases = 0;
    for file in files(clean.dir.path()) {
        let bytes = fs::read(&file).unwrap();
        let name = file.file_name().unwrap();
        for at in 0..bytes.len() {
            copy_dir(clean.dir.path(), case.path());
            let mut bad = bytes.clone();
            bad[at] ^= 1 << (at % 8);
            fs::write(case.path().join(name), &bad).unwrap();
            let torn_allowed = clean.last.as_ref().is_some_and(|(path, start, ..)| *path == file && at >= *start);
            check(case.path(), &clean, &format!("{} byte {at}", name.display()), torn_allowed);
            cases += 1;
        }
    }
    assert!(cases > 3_000, "{cases}");
}

#[test]
fn a_flipped_bit_anywhere_in_any_file_is_a_named_error_or_changes_nothing() {
    every_flipped_bit(Shape::Closed);
}

/// The crash path: without an end marker a damaged last record is the torn tail (dropped,
/// never anything before it), and the snapshot at a segment's last record is where the
/// next segment's header points.
#[test]
fn a_flipped_bit_in_a_crashed_journal_is_a_named_error_the_same_result_or_the_last_record_dropped() {
    every_flipped_bit(Shape::Crashed);
}

#[test]
fn missing_renamed_duplicated_truncated_and_foreign_files_are_named_errors_or_change_nothing() {
    every_file_damage(Shape::Closed);
}

#[test]
fn missing_renamed_duplicated_truncated_and_foreign_files_of_a_crashed_journal_too() {
    every_file_damage(Shape::Crashed);
}

/// Every file of a `shape` journal missing, truncated, renamed, duplicated, swapped, or
/// replaced by another journal's.
fn every_file_damage(shape: Shape) {
    let clean = clean(shape);
    let case = tempfile::tempdir().unwrap();
    let all = files(clean.dir.path());
    let segments = all.iter().filter(|f| f.extension().is_some_and(|e| e == "l2xj")).count() as u64;
    let run = |label: &str, damage: &dyn Fn(&Path)| {
        copy_dir(clean.dir.path(), case.path());
        damage(case.path());
        check(case.path(), &clean, label, false);
    };
    for f in &all {
        let name = f.file_name().unwrap().to_owned();
        run(&format!("{} missing", name.display()), &|d| fs::remove_file(d.join(&name)).unwrap());
        let len = fs::metadata(f).unwrap().len();
        for cut in [0, 1, 40, HEADER as u64 - 1, HEADER as u64, len / 2, len - 1] {
            run(&format!("{} cut to {cut}", name.display()), &|d| {
                fs::OpenOptions::new().write(true).open(d.join(&name)).unwrap().set_len(cut).unwrap();
            });
        }
    }
    for k in 0..segments {
        run(&format!("segment {k} renamed past the end"), &|d| {
            fs::rename(segment(d, k), segment(d, segments)).unwrap();
        });
        run(&format!("segment {k} copied past the end"), &|d| {
            fs::copy(segment(d, k), segment(d, segments)).unwrap();
        });
        if k + 1 < segments {
            run(&format!("segments {k} and {} swapped", k + 1), &|d| {
                fs::rename(segment(d, k), d.join("x")).unwrap();
                fs::rename(segment(d, k + 1), segment(d, k)).unwrap();
                fs::rename(d.join("x"), segment(d, k + 1)).unwrap();
            });
        }
    }
    // Files of another journal: same commands, another journal id.
    let other = tempfile::tempdir().unwrap();
    let cmds = commands(40);
    write(other.path(), &cmds, true);
    snapshot_at(other.path(), cmds[29].seq.0, &state_after(&cmds[..30]).canonical());
    for f in files(other.path()) {
        let name = f.file_name().unwrap().to_owned();
        run(&format!("{} from another journal", name.display()), &|d| {
            fs::copy(other.path().join(&name), d.join(&name)).unwrap();
        });
    }
    // Another journal's snapshot of another point, renamed and its sequence patched.
    run("a foreign snapshot renamed and patched", &|d| {
        let mut bytes = fs::read(other.path().join(snapshot::file_name(cmds[29].seq.0))).unwrap();
        let seq = cmds[34].seq.0;
        bytes[16..24].copy_from_slice(&seq.to_le_bytes());
        let crc = crc32c_of(&bytes[..92]);
        bytes[92..96].copy_from_slice(&crc.to_le_bytes());
        fs::write(d.join(snapshot::file_name(seq)), bytes).unwrap();
    });
}

/// Regression (issue 14): deleting the first segment made replay skip the missing records
/// from a snapshot, replay from the second segment without one, and export print symbols as
/// `#0` — all with success.
#[test]
fn a_missing_first_segment_is_an_error_with_or_without_a_snapshot() {
    let cmds = commands(60);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &cmds, false);
    snapshot_at(dir.path(), cmds[49].seq.0, &state_after(&cmds[..50]).canonical());
    fs::remove_file(segment(dir.path(), 0)).unwrap();
    for e in
        [replay_err(dir.path(), Some(cmds[55].seq.0)), replay_err(dir.path(), None), export(dir.path()).unwrap_err()]
    {
        assert!(matches!(e, JournalError::MissingSegment { index: 0, .. }), "{e}");
        assert!(e.to_string().contains("segment 0 is missing"), "{e}");
    }
    for f in files(dir.path()).iter().filter(|f| f.extension().is_some_and(|e| e == "l2xs")) {
        fs::remove_file(f).unwrap();
    }
    assert!(matches!(journal::replay(dir.path(), None, &Ledger::default()), Err(JournalError::MissingSegment { .. })));
}

/// Regression (issue 14): deleting the newest segment ended the replay early with a warning
/// about a snapshot "past the journal's end", and exit 0.
#[test]
fn a_missing_last_segment_is_an_error_not_a_shorter_history() {
    let cmds = commands(60);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &cmds, false);
    let last = files(dir.path()).iter().filter(|f| f.extension().is_some_and(|e| e == "l2xj")).count() - 1;
    fs::remove_file(segment(dir.path(), last as u64)).unwrap();
    let e = replay_err(dir.path(), None);
    assert!(matches!(e, JournalError::MissingSegment { index, .. } if index == last as u64), "{e}");
    assert!(e.to_string().contains("ends with a seal"), "{e}");
    // A one-segment journal stopped cleanly: its end marker proves the segment existed.
    let one = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(one.path(), 1 << 20).unwrap();
    for c in &cmds {
        w.append(c).unwrap();
    }
    w.close().unwrap();
    fs::remove_file(segment(one.path(), 0)).unwrap();
    let e = replay_err(one.path(), None);
    assert!(matches!(e, JournalError::MissingSegment { index: 0, .. }), "{e}");
    assert!(e.to_string().contains(&format!("ended at seq {}", cmds[59].seq.0)), "{e}");
}

/// Regression (issue 14): a flipped bit in the second-to-last record was taken for a torn
/// tail, and the writer zeroed the valid, checksum-correct record after it on disk.
#[test]
fn a_damaged_record_before_a_valid_one_is_corruption_and_nothing_is_zeroed() {
    let cmds = commands(30);
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(dir.path(), 1 << 20).unwrap();
    let mut starts = Vec::new();
    for c in &cmds {
        starts.push(w.position().1 as usize);
        w.append(c).unwrap();
    }
    drop(w);
    let seg = segment(dir.path(), 0);
    let mut bytes = fs::read(&seg).unwrap();
    let second_to_last = starts[starts.len() - 2];
    for at in [second_to_last, second_to_last + 1, second_to_last + 12, second_to_last + 33] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x04;
        fs::write(&seg, &bad).unwrap();
        let e = journal::recover(dir.path(), 1 << 20, &Ledger::default()).unwrap_err();
        match &e {
            JournalError::Corrupt { path, offset, .. } => {
                assert_eq!((path, *offset), (&seg, second_to_last as u64), "{e}");
            }
            other => panic!("flip at {at}: {other}"),
        }
        assert_eq!(fs::read(&seg).unwrap(), bad, "flip at {at}: the journal was modified");
        assert!(journal::replay(dir.path(), None, &Ledger::default()).is_err());
        assert!(export(dir.path()).is_err());
    }
    // The last record alone damaged is the torn tail: recovery continues before it.
    let last = starts[starts.len() - 1];
    bytes[last + 20] ^= 0x04;
    fs::write(&seg, &bytes).unwrap();
    let (_, _, report) = journal::recover(dir.path(), 1 << 20, &Ledger::default()).unwrap();
    assert_eq!(report.torn.map(|t| t.offset), Some(last as u64));
    assert_eq!(report.last_seq, cmds[cmds.len() - 2].seq.0);
}

/// Regression (issue 14): a snapshot of another journal, renamed and its header sequence
/// patched to fit, was loaded and gave another state.
#[test]
fn a_foreign_snapshot_with_a_patched_sequence_is_refused() {
    let cmds = commands(60);
    let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(ours.path(), &cmds, true);
    // Their history differs from ours after the 20th command.
    let mut other = cmds.clone();
    other[20].cmd = Command::Tick;
    write(theirs.path(), &other, true);
    let path = snapshot_at(theirs.path(), other[39].seq.0, &state_after(&other[..40]).canonical());
    let target = ours.path().join(snapshot::file_name(cmds[44].seq.0));
    let mut bytes = fs::read(&path).unwrap();
    bytes[16..24].copy_from_slice(&cmds[44].seq.0.to_le_bytes());
    let crc = crc32c_of(&bytes[..92]);
    bytes[92..96].copy_from_slice(&crc.to_le_bytes());
    fs::write(&target, &bytes).unwrap();
    let (sm, report) = journal::replay(ours.path(), None, &Ledger::default()).unwrap();
    assert_eq!(report.snapshot, None);
    assert_eq!(report.refused_snapshots.len(), 1);
    assert!(report.refused_snapshots[0].1.contains("taken from journal"), "{:?}", report.refused_snapshots);
    assert_eq!(sm.canonical().hash(), state_after(&cmds).canonical().hash());
}

/// A copy of a journal keeps its id; a snapshot of the copy's diverged history is not a
/// state of the original: an error, not a silently different state.
#[test]
fn a_snapshot_of_a_diverged_copy_is_an_error() {
    let cmds = commands(40);
    let (ours, copy) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write(ours.path(), &cmds[..20], true);
    copy_dir(ours.path(), copy.path());
    let mut theirs = cmds[20..].to_vec();
    theirs[0].cmd = Command::Tick;
    for (dir, rest) in [(ours.path(), &cmds[20..]), (copy.path(), &theirs[..])] {
        let (mut w, _) = JournalWriter::open(dir, SMALL).unwrap();
        for c in rest {
            w.append(c).unwrap();
        }
        w.close().unwrap();
    }
    let mut diverged = cmds[..20].to_vec();
    diverged.extend(theirs.iter().cloned());
    let path = snapshot_at(copy.path(), cmds[29].seq.0, &state_after(&diverged[..30]).canonical());
    fs::copy(&path, ours.path().join(path.file_name().unwrap())).unwrap();
    let e = replay_err(ours.path(), None);
    assert!(matches!(e, JournalError::SnapshotNotInJournal { .. }), "{e}");
    // A segment of the copy in place of ours: the chain of headers breaks at it.
    fs::remove_file(ours.path().join(path.file_name().unwrap())).unwrap();
    let last = files(copy.path()).iter().filter(|f| f.extension().is_some_and(|e| e == "l2xj")).count() as u64 - 1;
    fs::copy(segment(copy.path(), last), segment(ours.path(), last)).unwrap();
    let e = replay_err(ours.path(), None);
    assert!(matches!(e, JournalError::Chain { .. } | JournalError::EndMismatch { .. }), "{e}");
}

/// Regression (issue 14): an empty directory replayed to "seq 0" with success.
#[test]
fn an_empty_directory_is_not_a_journal() {
    let dir = tempfile::tempdir().unwrap();
    let e = replay_err(dir.path(), None);
    assert!(matches!(e, JournalError::NoJournal { .. }), "{e}");
    assert!(e.to_string().contains("there is no journal here"), "{e}");
    assert!(matches!(export(dir.path()), Err(JournalError::NoJournal { .. })));
    // A writer creates one.
    let (w, report) = JournalWriter::open(dir.path(), SMALL).unwrap();
    assert_eq!(report.records, 0);
    w.close().unwrap();
    assert_eq!(records(dir.path()).unwrap(), vec![]);
}

/// A roll cut short between creating the next segment and sealing the full one, or in the
/// middle of the seal: readers accept the journal, and the next writer completes the roll —
/// also when a snapshot is at the full segment's last record, so that recovery's state
/// starts where the next segment's header points (regression: the writer then never
/// looked at the full segment's end and left it unsealed, or its torn seal in place).
#[test]
fn an_interrupted_roll_is_completed_by_the_next_writer() {
    let cmds = commands(40);
    for (torn_seal, snapshot) in [(false, false), (true, false), (false, true), (true, true)] {
        let torn_seal_and_snapshot = (torn_seal, snapshot);
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = JournalWriter::open(dir.path(), SMALL).unwrap();
        let mut positions = Vec::new();
        for c in &cmds {
            w.append(c).unwrap();
            positions.push(w.position());
        }
        drop(w);
        // Cut the journal back to just after a roll: the last segment empty, its
        // predecessor's seal gone (or half written).
        let k = positions.iter().position(|p| p.0 == 2).unwrap();
        let seal_at = positions[k - 1].1 as usize;
        let mut prev = fs::read(segment(dir.path(), 1)).unwrap();
        assert_eq!(prev[seal_at + 24], 0, "the seal's type");
        prev[seal_at..].fill(0);
        if torn_seal {
            prev[seal_at] = 40;
            prev[seal_at + 32] = 2;
        }
        fs::write(segment(dir.path(), 1), &prev).unwrap();
        let mut last = fs::read(segment(dir.path(), 2)).unwrap();
        last[HEADER..].fill(0);
        fs::write(segment(dir.path(), 2), &last).unwrap();
        for f in
            files(dir.path()).into_iter().filter(|f| segment(dir.path(), 3) <= *f && f.extension().unwrap() == "l2xj")
        {
            fs::remove_file(f).unwrap();
        }
        let upto = &cmds[..k];
        assert_eq!(records(dir.path()).unwrap(), upto, "{torn_seal_and_snapshot:?}");
        if snapshot {
            snapshot_at(dir.path(), cmds[k - 1].seq.0, &state_after(upto).canonical());
        }
        let (_, mut w, report) = journal::recover(dir.path(), SMALL, &Ledger::default()).unwrap();
        assert_eq!(report.torn.is_some(), torn_seal);
        for c in &cmds[k..] {
            w.append(c).unwrap();
        }
        w.close().unwrap();
        assert_eq!(records(dir.path()).unwrap(), cmds, "{torn_seal_and_snapshot:?}");
        // The roll was completed: segment 1 is sealed, so losing segment 2 is detected.
        fs::remove_file(segment(dir.path(), 2)).unwrap();
        let later: Vec<PathBuf> = files(dir.path())
            .into_iter()
            .filter(|f| f.extension().unwrap() == "l2xj" && *f > segment(dir.path(), 2))
            .collect();
        for f in later {
            fs::remove_file(f).unwrap();
        }
        fs::remove_file(dir.path().join("journal.end")).unwrap();
        let e = replay_err(dir.path(), None);
        assert!(matches!(e, JournalError::MissingSegment { index: 2, .. }), "{torn_seal_and_snapshot:?}: {e}");
    }
}

/// The end marker: written at a clean stop, checked by readers that reach the end, removed
/// by the next writer before it appends.
#[test]
fn the_end_marker_proves_the_end_until_the_next_writer_appends() {
    let cmds = commands(30);
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(dir.path(), 1 << 20).unwrap();
    let mut starts = Vec::new();
    for c in &cmds {
        starts.push(w.position().1 as usize);
        w.append(c).unwrap();
    }
    let end = w.close().unwrap();
    assert_eq!(end, point_at(dir.path(), cmds[29].seq.0));
    assert!(dir.path().join("journal.end").exists());
    // The last three records zeroed: without the marker this is a shorter, valid journal.
    let seg = segment(dir.path(), 0);
    let clean = fs::read(&seg).unwrap();
    let mut cut = clean.clone();
    cut[starts[27]..].fill(0);
    fs::write(&seg, &cut).unwrap();
    let e = replay_err(dir.path(), None);
    assert!(matches!(e, JournalError::EndMismatch { .. }), "{e}");
    assert!(e.to_string().contains(&format!("ended at record {}", cmds[29].seq.0)), "{e}");
    assert!(journal::recover(dir.path(), 1 << 20, &Ledger::default()).is_err());
    fs::write(&seg, &clean).unwrap();
    // The next writer removes it before appending.
    let (_, w, _) = journal::recover(dir.path(), 1 << 20, &Ledger::default()).unwrap();
    assert!(!dir.path().join("journal.end").exists());
    drop(w);
    fs::write(&seg, &cut).unwrap();
    assert_eq!(records(dir.path()).unwrap(), cmds[..27], "after a crash the end is not proven");
}

/// A segment header whose previous-record fields are rewritten (with a valid checksum) to
/// hide a gap is refused: the chain names the record before it.
#[test]
fn a_segment_header_naming_another_previous_record_breaks_the_chain() {
    let cmds = commands(40);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &cmds, false);
    let path = segment(dir.path(), 2);
    let mut bytes = fs::read(&path).unwrap();
    let previous = u64::from_le_bytes(bytes[56..64].try_into().unwrap());
    bytes[56..64].copy_from_slice(&(previous - 1).to_le_bytes());
    let crc = crc_header(&bytes);
    bytes[92..96].copy_from_slice(&crc.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let e = replay_err(dir.path(), None);
    assert!(matches!(&e, JournalError::Chain { path: p, .. } if *p == path), "{e}");
    let e = Journal::open(dir.path()).unwrap().read(Point::START, |_| ControlFlow::Continue(())).unwrap_err();
    assert!(e.to_string().contains("records are missing or replaced before this segment"), "{e}");
}

/// Regression (review of issue 14): a record whose checksum is right but whose contents are
/// invalid (a reserved byte set) at the end of the journal was taken for a torn write and
/// zeroed. A torn write cannot match its checksum: it is corruption, and nothing is written.
#[test]
fn a_checksum_correct_last_record_that_does_not_decode_is_corruption_not_torn() {
    let cmds = commands(30);
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(dir.path(), 1 << 20).unwrap();
    for c in &cmds[..29] {
        w.append(c).unwrap();
    }
    let last = usize::try_from(w.position().1).unwrap();
    w.append(&cmds[29]).unwrap();
    drop(w);
    let seg = segment(dir.path(), 0);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[last + 25] = 1; // a reserved byte
    let len = u32::from_le_bytes(bytes[last..last + 4].try_into().unwrap()) as usize;
    let crc = crc32c_of(&bytes[last + 8..last + len]);
    bytes[last + 4..last + 8].copy_from_slice(&crc.to_le_bytes());
    fs::write(&seg, &bytes).unwrap();
    let e = journal::recover(dir.path(), 1 << 20, &Ledger::default()).unwrap_err();
    assert!(matches!(&e, JournalError::Corrupt { offset, .. } if *offset == last as u64), "{e}");
    assert!(e.to_string().contains("checksum is right"), "{e}");
    assert_eq!(fs::read(&seg).unwrap(), bytes, "nothing was zeroed");
}

/// Regression (review of issue 14): recovery from a snapshot proved only the journal after
/// it, removed the end marker, and the node's later full reads (the gateway's report
/// streams, settlement) then refused the journal: damage before the snapshot must stop the
/// recovery itself, before anything is written.
#[test]
fn recovery_that_a_full_read_would_refuse_writes_nothing() {
    let cmds = commands(40);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &cmds, true);
    snapshot_at(dir.path(), cmds[39].seq.0, &state_after(&cmds).canonical());
    let seg = segment(dir.path(), 0);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[HEADER + 40] ^= 0x08;
    fs::write(&seg, &bytes).unwrap();
    // A replay may start at the snapshot and answer: the damage is before it.
    let (state, _) = journal::replay(dir.path(), None, &Ledger::default()).unwrap();
    assert_eq!(state.canonical().hash(), state_after(&cmds).canonical().hash());
    let before = contents(dir.path());
    let e = journal::recover(dir.path(), SMALL, &Ledger::default()).unwrap_err();
    assert!(matches!(&e, JournalError::Corrupt { path, .. } if *path == seg), "{e}");
    assert_eq!(contents(dir.path()), before, "a refused recovery wrote (the end marker is still there)");
}

/// Regression (review of issue 14): a reader that opened the journal before the writer
/// rolled met the full segment's seal naming a segment it had not listed, and reported the
/// records after it as missing. It looks again: the writer names the next segment before
/// it seals.
#[test]
fn a_reader_opened_before_a_roll_follows_the_new_segment() {
    let cmds = commands(40);
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(dir.path(), SMALL).unwrap();
    for c in &cmds[..3] {
        w.append(c).unwrap();
    }
    let reader = Journal::open(dir.path()).unwrap();
    for c in &cmds[3..] {
        w.append(c).unwrap();
    }
    assert!(w.position().0 >= 3, "the writer rolled");
    let mut got = Vec::new();
    reader
        .read(Point::START, |c| {
            got.push(c);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(got, cmds);
}

/// Regression (review of issue 14): a snapshot past the journal's end was an error only for
/// a replay that started from it; a read from the start (export, event views, settlement,
/// the gateway's start-up) returned the shorter history.
#[test]
fn a_snapshot_past_the_end_fails_every_read_to_the_end() {
    let cmds = commands(60);
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(dir.path(), 1 << 20).unwrap();
    let mut starts = Vec::new();
    for c in &cmds {
        starts.push(usize::try_from(w.position().1).unwrap());
        w.append(c).unwrap();
    }
    drop(w);
    snapshot_at(dir.path(), cmds[49].seq.0, &state_after(&cmds[..50]).canonical());
    let seg = segment(dir.path(), 0);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[starts[45]..].fill(0);
    fs::write(&seg, &bytes).unwrap();
    for e in [records(dir.path()).unwrap_err(), export(dir.path()).unwrap_err(), replay_err(dir.path(), None)] {
        assert!(matches!(e, JournalError::SnapshotNotInJournal { .. }), "{e}");
        let text = e.to_string();
        let end = cmds[44].seq.0;
        assert!(
            text.contains(&format!("is the state after seq {}, but the journal ends at seq {end}", cmds[49].seq.0))
                || text.contains(&format!("ends at seq {end}")),
            "{text}"
        );
    }
    // A read that stops before the end answers: nothing past its point is claimed.
    let (_, report) = journal::replay(dir.path(), Some(cmds[40].seq.0), &Ledger::default()).unwrap();
    assert_eq!(report.last_seq, cmds[40].seq.0);
}

/// After a machine failure the never-synced end of a journal can hold holes (pages written
/// back out of order): the node refuses to start, naming the offset, and writes nothing.
/// An operator cuts the journal at the damage with `truncate_at_damage`, which keeps every
/// byte it cuts (a copy of the segment as it was, the later files moved) and leaves a
/// journal that reads by every rule.
#[test]
fn a_hole_in_the_unsynced_tail_is_cut_by_an_operator_and_nothing_is_destroyed() {
    let cmds = commands(80);
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(dir.path(), 1 << 20).unwrap();
    let mut starts = Vec::new();
    for c in &cmds {
        starts.push(usize::try_from(w.position().1).unwrap());
        w.append(c).unwrap();
    }
    drop(w);
    snapshot_at(dir.path(), cmds[70].seq.0, &state_after(&cmds[..71]).canonical());
    let seg = segment(dir.path(), 0);
    let mut bytes = fs::read(&seg).unwrap();
    // A 512-byte sector never written back, in the middle of the records.
    let hole = (starts[50] / 512 + 1) * 512;
    bytes[hole..hole + 512].fill(0);
    fs::write(&seg, &bytes).unwrap();
    let before = contents(dir.path());
    assert!(matches!(journal::recover(dir.path(), 1 << 20, &Ledger::default()), Err(JournalError::Corrupt { .. })));
    assert_eq!(contents(dir.path()), before, "the refused start wrote nothing");

    let cut = journal::truncate_at_damage(dir.path()).unwrap().expect("something to cut");
    // The last record that ends at or before the hole (record i ends where i + 1 starts).
    let kept = (0..cmds.len() - 1).rev().find(|&i| starts[i + 1] <= hole).unwrap();
    assert_eq!(cut.kept.seq, cmds[kept].seq.0, "the journal ends before the record the hole damaged");
    assert_eq!(cut.at.0, seg);
    assert_eq!(fs::read(cut.kept_aside.join("journal-00000000.l2xj")).unwrap(), bytes, "the segment as it was");
    assert!(cut.kept_aside.join(snapshot::file_name(cmds[70].seq.0)).exists(), "the snapshot past the cut");
    let (state, _, report) = journal::recover(dir.path(), 1 << 20, &Ledger::default()).unwrap();
    assert_eq!(report.last_seq, cmds[kept].seq.0);
    assert_eq!(state.canonical().hash(), state_after(&cmds[..=kept]).canonical().hash());
    assert_eq!(journal::truncate_at_damage(dir.path()).unwrap(), None, "nothing more to cut");
}

/// Sets `bytes[at] = 1` and rewrites the little-endian CRC32C of `bytes[..crc_at]` at
/// `crc_at`: damage a checksum cannot see.
fn set_with_checksum(bytes: &mut [u8], at: usize, crc_at: usize) {
    bytes[at] = 1;
    let crc = crc32c_of(&bytes[..crc_at]);
    bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Regression (issue 14, "snapshot header bytes documented as zero are not checked"): a
/// reserved byte set in a segment header, a snapshot header or the end marker, with the
/// checksum recomputed so that only the zero rule can catch it, is refused by name. The
/// flipped-bit suites never reach this rule: their damage fails the checksum first.
#[test]
fn reserved_header_bytes_set_under_a_correct_checksum_are_refused() {
    let cmds = commands(40);
    let clean = tempfile::tempdir().unwrap();
    write(clean.path(), &cmds, true);
    let snap = snapshot_at(clean.path(), 20, &state_after(&cmds[..20]).canonical());
    let hash = state_after(&cmds).canonical().hash();
    let case = tempfile::tempdir().unwrap();
    // (file, reserved byte, checksum offset): segment 68..92 and snapshot 84..92 under the
    // CRC at 92; the end marker's 12..16 under the CRC at 44.
    let seg0 = segment(clean.path(), 0);
    let seg1 = segment(clean.path(), 1);
    let end = clean.path().join("journal.end");
    for (file, at, crc_at) in
        [(&seg0, 68, 92), (&seg1, 91, 92), (&snap, 84, 92), (&snap, 91, 92), (&end, 12, 44), (&end, 15, 44)]
    {
        copy_dir(clean.path(), case.path());
        let target = case.path().join(file.file_name().unwrap());
        let mut bytes = fs::read(&target).unwrap();
        set_with_checksum(&mut bytes, at, crc_at);
        fs::write(&target, &bytes).unwrap();
        let label = format!("{} byte {at}", target.display());
        if *file == snap {
            // A snapshot is only a shortcut: a bad one is named, and a replay either
            // refuses it by name or reaches the same state from the start.
            let e = snapshot::read_header(&target).unwrap_err();
            assert!(e.to_string().contains("reserved header bytes are not zero"), "{label}: {e}");
            match journal::replay(case.path(), None, &Ledger::default()) {
                Ok((sm, _)) => assert_eq!(sm.canonical().hash(), hash, "{label}"),
                Err(e) => assert!(e.to_string().contains("reserved"), "{label}: {e}"),
            }
        } else {
            let e = replay_err(case.path(), None);
            assert!(e.to_string().contains("reserved"), "{label}: {e}");
            assert!(e.to_string().contains(&target.display().to_string()), "{label}: names the file: {e}");
            let before = contents(case.path());
            assert!(journal::recover(case.path(), SMALL, &Ledger::default()).is_err(), "{label}: recovery");
            assert_eq!(contents(case.path()), before, "{label}: a refused recovery wrote nothing");
        }
    }
}
