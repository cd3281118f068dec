//! The journal and snapshots on real files: round trips, segment rolling, torn tails at
//! every byte, corruption anywhere else, snapshot + tail = full replay, refused snapshots.

use std::fs;
use std::ops::ControlFlow;
use std::path::Path;

use l2x_sequencer::journal::{self, Journal, JournalError, JournalWriter, MAX_RECORD, Point, snapshot};

/// A segment header's length: records start there.
pub(crate) const HEADER: usize = 96;
use l2x_engine::{CanonicalState, StateHash, StateMachine};
use l2x_risk::Ledger;
use l2x_types::Sequenced;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use l2x_engine::testing::orders::{Generator, Profile};

/// Commands of every kind: book-heavy (GTD, amends, mass cancels, bad values),
/// risk-heavy (deposits to the fund, withdrawals, funding, liquidations), then the L1 queue
/// (a binding, deposits and forced withdrawals in and out of turn).
fn mixed_commands() -> Vec<Sequenced> {
    let mut cmds = book_and_risk_commands();
    let (seq, ts) = cmds.last().map_or((0, 0), |c| (c.seq.0, c.ts.0));
    cmds.extend(crate::l1_queue::tail(seq, ts, 300));
    cmds
}

fn book_and_risk_commands() -> Vec<Sequenced> {
    let mut generator = Generator::new(Profile::CROSSING);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut cmds = generator.setup();
    for _ in 0..1_500 {
        cmds.push(generator.next(&mut rng));
    }
    // The generator sometimes steps time back; the journal keeps what it is given, and the
    // risk stream continues the sequence.
    let base = cmds.last().map_or(0, |c| c.seq.0);
    let mut tail = l2x_engine::testing::risk::stream(5, 1_500);
    for (i, c) in tail.iter_mut().enumerate() {
        c.seq.0 = base + 1 + i as u64;
    }
    cmds.extend(tail);
    cmds
}

/// The state hash after applying `cmds` to a fresh state machine.
fn hash_after(cmds: &[Sequenced]) -> StateHash {
    let mut sm = StateMachine::new();
    let mut out = Vec::new();
    for c in cmds {
        out.clear();
        sm.apply(c, &mut out);
    }
    sm.canonical().hash()
}

/// Writes `cmds` into a new journal (dropped without a clean stop); returns where the next
/// record would go (segment, offset).
fn write_journal(dir: &Path, cmds: &[Sequenced], segment_bytes: u64) -> (u64, u64) {
    let (mut w, report) = JournalWriter::open(dir, segment_bytes).expect("open");
    assert_eq!(report.records, 0);
    for c in cmds {
        w.append(c).expect("append");
    }
    w.position()
}

/// The journal point after record `seq` (its CRC, from a read of the journal).
pub(crate) fn point_at(dir: &Path, seq: u64) -> Point {
    let (_, report) = journal::replay(dir, Some(seq), &Ledger::default()).expect("replay");
    assert_eq!(report.last.seq, seq);
    report.last
}

/// Writes a snapshot of `state`, the state of the journal in `dir` after record `seq`.
pub(crate) fn snapshot_at(dir: &Path, seq: u64, state: &CanonicalState) -> std::path::PathBuf {
    let id = Journal::open(dir).expect("open").id();
    snapshot::write(dir, id, point_at(dir, seq), state).expect("snapshot")
}

fn read_all(dir: &Path) -> (Vec<Sequenced>, journal::ScanReport) {
    let mut got = Vec::new();
    let report = journal::scan(dir, |c| {
        got.push(c);
        ControlFlow::Continue(())
    })
    .expect("scan");
    (got, report)
}

#[test]
fn every_command_round_trips_across_many_segments() {
    let cmds = mixed_commands();
    let dir = tempfile::tempdir().unwrap();
    write_journal(dir.path(), &cmds, 4096);
    let (got, report) = read_all(dir.path());
    assert_eq!(got, cmds);
    assert!(report.segments > 50, "{report:?}");
    assert_eq!(report.torn, None);
    // Reopening continues after the last record.
    let (mut w, report) = JournalWriter::open(dir.path(), 4096).unwrap();
    assert_eq!(report.last_seq, cmds.last().unwrap().seq.0);
    let mut next = cmds[0].clone();
    next.seq.0 = report.last_seq + 1;
    w.append(&next).unwrap();
    let stale = next.clone();
    assert!(matches!(w.append(&stale), Err(JournalError::OutOfOrder { .. })));
}

#[test]
fn replay_reproduces_the_state_hash_at_every_point() {
    let cmds = mixed_commands();
    let dir = tempfile::tempdir().unwrap();
    write_journal(dir.path(), &cmds, 1 << 16);
    for n in [1usize, 10, 500, 1_501, 2_000, cmds.len()] {
        let until = cmds[n - 1].seq.0;
        let (sm, report) = journal::replay(dir.path(), Some(until), &Ledger::default()).unwrap();
        assert_eq!(report.last_seq, until);
        assert_eq!(sm.canonical().hash(), hash_after(&cmds[..n]), "after {n} commands");
    }
}

#[test]
fn a_torn_final_record_is_truncated_at_every_byte_offset() {
    let cmds = mixed_commands();
    let cmds = &cmds[..400];
    let dir = tempfile::tempdir().unwrap();
    let (_, end) = write_journal(dir.path(), cmds, 1 << 16);
    let seg = dir.path().join("journal-00000000.l2xj");
    let clean = fs::read(&seg).unwrap();
    // Where the last record starts and ends.
    let end = usize::try_from(end).unwrap();
    let mut start = HEADER;
    journal::scan(dir.path(), |c| {
        if c.seq != cmds.last().unwrap().seq {
            start += record_len(&clean[start..]);
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    assert!(end - start <= MAX_RECORD && end > start);
    let before_last = hash_after(&cmds[..cmds.len() - 1]);
    for cut in 0..(end - start) {
        // Two ways a write can be cut: a prefix of the record, or everything but its length
        // (copies are not ordered).
        for keep_len_only in [false, true] {
            let mut bytes = clean.clone();
            if keep_len_only {
                bytes[start..start + 4].fill(0);
                bytes[start + 4 + cut.min(end - start - 4)..end].fill(0);
            } else {
                bytes[start + cut..end].fill(0);
            }
            let case = tempfile::tempdir().unwrap();
            fs::write(case.path().join("journal-00000000.l2xj"), &bytes).unwrap();
            let (sm, _, report) = journal::recover(case.path(), 1 << 16, &Ledger::default())
                .unwrap_or_else(|e| panic!("cut {cut} ({keep_len_only}): {e}"));
            if bytes[start..end] == clean[start..end] {
                // The cut only zeroed bytes that were zero anyway: the record is whole.
                assert_eq!(report.torn, None, "cut {cut}: an intact record reported torn");
                assert_eq!(report.last_seq, cmds[cmds.len() - 1].seq.0);
                continue;
            }
            if bytes[start..end].iter().all(|&b| b == 0) {
                assert_eq!(report.torn, None, "cut {cut}: nothing of the record left is a clean end");
            } else {
                let torn = report.torn.as_ref().unwrap_or_else(|| panic!("cut {cut}: no torn tail reported"));
                assert_eq!(torn.offset, start as u64);
            }
            assert_eq!(report.last_seq, cmds[cmds.len() - 2].seq.0);
            assert_eq!(sm.canonical().hash(), before_last, "cut {cut}");
            // After recovery the tail is clean: a second scan finds no torn record.
            assert_eq!(read_all(case.path()).1.torn, None);
        }
    }
}

fn record_len(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize
}

#[test]
fn a_flipped_byte_before_the_tail_fails_loudly_with_segment_and_offset() {
    let cmds = mixed_commands();
    let dir = tempfile::tempdir().unwrap();
    write_journal(dir.path(), &cmds[..300], 1 << 16);
    let seg = dir.path().join("journal-00000000.l2xj");
    let clean = fs::read(&seg).unwrap();
    for at in [HEADER, HEADER + 6, HEADER + 40, 1_000, 5_000] {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x01;
        fs::write(&seg, &bytes).unwrap();
        let err = journal::scan(dir.path(), |_| ControlFlow::Continue(())).unwrap_err();
        match &err {
            JournalError::Corrupt { path, offset, .. } => {
                assert_eq!(path, &seg);
                assert!(*offset as usize <= at && at < *offset as usize + MAX_RECORD, "{err}");
            }
            other => panic!("flip at {at}: {other}"),
        }
        assert!(err.to_string().contains("journal-00000000.l2xj"), "{err}");
        // Recovery refuses too, and writes nothing.
        assert!(journal::recover(dir.path(), 1 << 16, &Ledger::default()).is_err());
        assert_eq!(fs::read(&seg).unwrap(), bytes);
    }
}

#[test]
fn snapshot_plus_tail_equals_full_replay() {
    let cmds = mixed_commands();
    let dir = tempfile::tempdir().unwrap();
    write_journal(dir.path(), &cmds, 1 << 16);
    let full = hash_after(&cmds);
    for k in [1usize, 700, 1_499, 1_700, 2_900] {
        let mut sm = StateMachine::new();
        let mut out = Vec::new();
        for c in &cmds[..k] {
            out.clear();
            sm.apply(c, &mut out);
        }
        let snap = tempfile::tempdir().unwrap();
        for entry in fs::read_dir(dir.path()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() != "LOCK" {
                fs::copy(entry.path(), snap.path().join(entry.file_name())).unwrap();
            }
        }
        snapshot_at(snap.path(), cmds[k - 1].seq.0, &sm.canonical());
        let (recovered, report) = journal::replay(snap.path(), None, &Ledger::default()).unwrap();
        assert_eq!(report.snapshot.as_ref().map(|s| s.0), Some(cmds[k - 1].seq.0));
        assert_eq!(report.replayed as usize, cmds.len() - k);
        assert_eq!(recovered.canonical().hash(), full, "snapshot after {k}");
    }
}

#[test]
fn damaged_snapshots_are_refused_with_a_reason() {
    let cmds = mixed_commands();
    let dir = tempfile::tempdir().unwrap();
    write_journal(dir.path(), &cmds[..1_000], 1 << 16);
    let mut sm = StateMachine::new();
    let mut out = Vec::new();
    for c in &cmds[..800] {
        sm.apply(c, &mut out);
    }
    let seq = cmds[799].seq.0;
    let path = snapshot_at(dir.path(), seq, &sm.canonical());
    let good = fs::read(&path).unwrap();
    for (at, why) in [(0usize, "magic"), (100, "checksum"), (good.len() - 1, "checksum")] {
        let mut bad = good.clone();
        bad[at] ^= 0x55;
        fs::write(&path, &bad).unwrap();
        let (recovered, report) = journal::replay(dir.path(), None, &Ledger::default()).unwrap();
        assert_eq!(report.snapshot, None);
        assert_eq!(report.refused_snapshots.len(), 1);
        assert!(report.refused_snapshots[0].1.contains(why), "{:?}", report.refused_snapshots);
        assert_eq!(recovered.canonical().hash(), hash_after(&cmds[..1_000]));
    }
    // A snapshot whose payload checksums but does not rebuild the state it claims.
    let mut state = sm.canonical();
    state.matching.next_order_id += 1;
    state.deposits += 1; // conservation broken: restoring must refuse it
    snapshot_at(dir.path(), seq, &state);
    let (_, report) = journal::replay(dir.path(), None, &Ledger::default()).unwrap();
    assert!(
        report.refused_snapshots[0].1.contains("invariant") || report.refused_snapshots[0].1.contains("disagree"),
        "{:?}",
        report.refused_snapshots
    );
}

#[test]
fn bad_journals_are_clear_errors() {
    let cmds = mixed_commands();
    let dir = tempfile::tempdir().unwrap();
    write_journal(dir.path(), &cmds[..600], 4096);
    // A second writer is refused while the first holds the lock.
    let (_first, _) = JournalWriter::open(dir.path(), 4096).unwrap();
    assert!(matches!(JournalWriter::open(dir.path(), 4096), Err(JournalError::Locked(_))));
    // A newer format version.
    let seg0 = dir.path().join("journal-00000000.l2xj");
    let clean = fs::read(&seg0).unwrap();
    let mut newer = clean.clone();
    newer[8] = 3;
    let crc = crc_header(&newer);
    newer[92..96].copy_from_slice(&crc.to_le_bytes());
    fs::write(&seg0, &newer).unwrap();
    let err = journal::scan(dir.path(), |_| ControlFlow::Continue(())).unwrap_err();
    assert!(matches!(err, JournalError::NewerFormat { version: 3, .. }), "{err}");
    // A journal of the first format (version 1) is named as such, not as damage.
    let mut older = clean.clone();
    older[8] = 1;
    fs::write(&seg0, &older).unwrap();
    let err = journal::scan(dir.path(), |_| ControlFlow::Continue(())).unwrap_err();
    assert!(matches!(err, JournalError::OlderFormat { version: 1, .. }), "{err}");
    fs::write(&seg0, &clean).unwrap();
    // A missing segment in the middle.
    fs::remove_file(dir.path().join("journal-00000002.l2xj")).unwrap();
    let err = journal::scan(dir.path(), |_| ControlFlow::Continue(())).unwrap_err();
    assert!(matches!(err, JournalError::MissingSegment { index: 2, .. }), "{err}");
    assert!(err.to_string().contains("segment 2 is missing"), "{err}");
}

/// CRC32C of a segment header's first 92 bytes (to forge a valid header of another version).
pub(crate) fn crc_header(bytes: &[u8]) -> u32 {
    crc32c_of(&bytes[..92])
}

/// CRC32C, the same polynomial the journal uses (Castagnoli), bit by bit: independent of the
/// crate under test.
pub(crate) fn crc32c_of(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn a_snapshot_ahead_of_the_journal_is_an_error_not_ignored() {
    // 1,200 records and a snapshot after the last; then the records after 900 are lost (their
    // pages zeroed, as a machine failure under durability os can lose them).
    let cmds = mixed_commands();
    let dir = tempfile::tempdir().unwrap();
    let at_901 = write_journal(dir.path(), &cmds[..900], 1 << 20);
    let (mut w, _) = JournalWriter::open(dir.path(), 1 << 20).unwrap();
    for c in &cmds[900..1_200] {
        w.append(c).unwrap();
    }
    let end = w.position();
    drop(w);
    let mut ahead = StateMachine::new();
    let mut out = Vec::new();
    for c in &cmds[..1_200] {
        ahead.apply(c, &mut out);
    }
    let snap = snapshot_at(dir.path(), cmds[1_199].seq.0, &ahead.canonical());
    let seg = dir.path().join("journal-00000000.l2xj");
    let mut bytes = fs::read(&seg).unwrap();
    bytes[usize::try_from(at_901.1).unwrap()..usize::try_from(end.1).unwrap()].fill(0);
    fs::write(&seg, &bytes).unwrap();
    let err = journal::recover(dir.path(), 1 << 20, &Ledger::default()).unwrap_err();
    assert!(matches!(err, JournalError::SnapshotNotInJournal { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&snap.display().to_string()), "{text}");
    assert!(text.contains(&format!("ends at seq {}", cmds[899].seq.0)), "{text}");
    // Nothing was written.
    assert_eq!(fs::read(&seg).unwrap(), bytes);
}
