//! Damaged inputs for batch files: a flipped byte at every offset, every truncation, and
//! missing, renamed, duplicated, misnamed and foreign files. Every case is a named error
//! (the file, and the field when there is one) or, where the files alone cannot tell (the
//! last file missing), the same answer as the intact files give for what they hold —
//! never another answer without an error. And the auditor's comparison with the journal
//! names a batch file whose market state is not the journal's.

use std::path::{Path, PathBuf};

use l2x_risk::Ledger;
use l2x_settlement::audit::{self, Disagreement};
use l2x_settlement::batch::{Batch, BatchError, FormatError};
use l2x_settlement::batch_set::BatchSet;
use l2x_settlement::epoch::{self, Epoch, Policy};
use l2x_types::Sequenced;

use crate::common::stream_l1;

const POLICY: Policy = Policy { max_ms: 300, max_fills: 0 };

/// A journal of `n` seeded commands (seed `seed`) with L1 queue entries in `dir`, and its
/// epochs.
fn journal(dir: &Path, seed: u64, n: usize) -> Vec<Epoch> {
    let cmds: Vec<Sequenced> = stream_l1(seed, n);
    crate::common::write_journal(dir, &cmds);
    epoch::from_journal(dir, POLICY, &Ledger::default()).unwrap()
}

/// The batch files of `epochs` in a new directory.
fn files(epochs: &[Epoch]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in epochs {
        Batch::of(e).write(dir.path()).unwrap();
    }
    dir
}

fn file(dir: &Path, index: u64) -> PathBuf {
    dir.join(Batch::file_name(index))
}

/// The error's file, if it names one.
fn named_file(err: &BatchError) -> Option<&Path> {
    match err {
        BatchError::Damaged { path, .. } | BatchError::Inconsistent { path, .. } | BatchError::Io { path, .. } => {
            Some(path)
        }
        _ => None,
    }
}

#[test]
fn a_flipped_byte_at_every_offset_of_a_batch_file_is_a_named_error() {
    let jdir = tempfile::tempdir().unwrap();
    let epochs = journal(jdir.path(), 11, 400);
    assert!(epochs.len() >= 4, "{} epochs", epochs.len());
    let set = files(&epochs);
    let intact = BatchSet::load(set.path()).unwrap();
    // The smallest file after the first with every queue section non-empty: a middle batch
    // with neighbours on both sides.
    let index = (2..epochs.len() as u64)
        .filter(|&i| {
            let e = &epochs[usize::try_from(i).unwrap() - 1];
            !e.withdrawals.is_empty()
                && !e.rejected.is_empty()
                && e.queue_count > epochs[usize::try_from(i).unwrap() - 2].queue_count
        })
        .min_by_key(|&i| std::fs::metadata(file(set.path(), i)).unwrap().len())
        .unwrap();
    let path = file(set.path(), index);
    let good = std::fs::read(&path).unwrap();
    assert!(good.len() > l2x_settlement::batch::DATA_OFFSET + 40, "a file with data: {} bytes", good.len());
    for offset in 0..good.len() {
        for mask in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[offset] ^= mask;
            std::fs::write(&path, &bad).unwrap();
            let err = BatchSet::load(set.path()).unwrap_err();
            assert_eq!(named_file(&err), Some(path.as_path()), "byte {offset} ^ {mask:#x}: {err}");
            // A header field is named as one.
            if (12..l2x_settlement::batch::DATA_OFFSET).contains(&offset) {
                assert!(
                    matches!(
                        err,
                        BatchError::Damaged {
                            what: FormatError::Header { .. } | FormatError::DataHash | FormatError::Data { .. },
                            ..
                        }
                    ),
                    "byte {offset}: {err}"
                );
            }
        }
    }
    std::fs::write(&path, &good).unwrap();
    assert_eq!(BatchSet::load(set.path()).unwrap().batches(), intact.batches());
}

#[test]
fn every_truncation_of_a_batch_file_is_a_named_error() {
    let jdir = tempfile::tempdir().unwrap();
    let epochs = journal(jdir.path(), 12, 80);
    let set = files(&epochs);
    let path = file(set.path(), 2);
    let good = std::fs::read(&path).unwrap();
    for n in 0..good.len() {
        std::fs::write(&path, &good[..n]).unwrap();
        let err = BatchSet::load(set.path()).unwrap_err();
        assert!(matches!(&err, BatchError::Damaged { path: p, .. } if *p == path), "truncated to {n}: {err}");
    }
    // Bytes appended: the data's length is the header's.
    let mut longer = good.clone();
    longer.push(0);
    std::fs::write(&path, &longer).unwrap();
    let err = BatchSet::load(set.path()).unwrap_err();
    assert!(matches!(err, BatchError::Damaged { what: FormatError::Header { field: "data_len", .. }, .. }), "{err}");
}

#[test]
fn missing_batch_files_are_named_and_a_missing_last_one_changes_no_answer() {
    let jdir = tempfile::tempdir().unwrap();
    let epochs = journal(jdir.path(), 13, 80);
    let n = epochs.len() as u64;
    assert!(n >= 3);
    for gone in [1, 2] {
        let set = files(&epochs);
        std::fs::remove_file(file(set.path(), gone)).unwrap();
        let err = BatchSet::load(set.path()).unwrap_err();
        assert!(matches!(err, BatchError::Missing { index, .. } if index == gone), "{err}");
        assert!(err.to_string().contains(&Batch::file_name(gone + 1)), "names the file after the gap: {err}");
    }
    // The last file gone: the files alone cannot tell it from one not written yet. The set
    // is the batches before it, each answering as before (`settle verify` against the
    // journal, or `status` against the chain, says the last one is missing).
    let intact = files(&epochs);
    let full = BatchSet::load(intact.path()).unwrap();
    std::fs::remove_file(file(intact.path(), n)).unwrap();
    let shorter = BatchSet::load(intact.path()).unwrap();
    assert_eq!(shorter.batches(), &full.batches()[..full.batches().len() - 1]);
    let (a, b) = (shorter.state_at(n - 1).unwrap(), full.state_at(n - 1).unwrap());
    assert_eq!((a.tree.root(), a.leaves, a.markets), (b.tree.root(), b.leaves, b.markets));
    let v = audit::verify(jdir.path(), POLICY, &Ledger::default(), Some(&shorter), None).unwrap();
    assert_eq!(v.files, Some(Ok(n - 1)), "verify: one epoch has no batch file yet");
}

#[test]
fn renamed_duplicated_and_misnamed_batch_files_are_refused() {
    let jdir = tempfile::tempdir().unwrap();
    let epochs = journal(jdir.path(), 14, 80);
    let n = epochs.len() as u64;
    // The last batch renamed one index up: a gap where it was.
    let set = files(&epochs);
    std::fs::rename(file(set.path(), n), file(set.path(), n + 1)).unwrap();
    let err = BatchSet::load(set.path()).unwrap_err();
    assert!(matches!(err, BatchError::Missing { index, .. } if index == n), "{err}");
    // A copy of batch 1 saved as the next batch: its header says 1.
    let set = files(&epochs);
    std::fs::copy(file(set.path(), 1), file(set.path(), n + 1)).unwrap();
    let err = BatchSet::load(set.path()).unwrap_err();
    assert!(
        matches!(&err, BatchError::Inconsistent { field: "index", path, .. } if *path == file(set.path(), n + 1)),
        "{err}"
    );
    // Two batches swapped: each file's header says the other's index.
    let set = files(&epochs);
    let tmp = set.path().join("swap");
    std::fs::rename(file(set.path(), 1), &tmp).unwrap();
    std::fs::rename(file(set.path(), 2), file(set.path(), 1)).unwrap();
    std::fs::rename(&tmp, file(set.path(), 2)).unwrap();
    let err = BatchSet::load(set.path()).unwrap_err();
    assert!(matches!(err, BatchError::Inconsistent { field: "index", .. }), "{err}");
    // A name that is almost a batch's: refused, not skipped.
    let set = files(&epochs);
    std::fs::rename(file(set.path(), n), set.path().join(format!("batch-{n}.l2xb"))).unwrap();
    let err = BatchSet::load(set.path()).unwrap_err();
    assert!(matches!(err, BatchError::Inconsistent { field: "file name", .. }), "{err}");
    // A temporary file (a write a crash interrupted) is not a batch: ignored.
    let set = files(&epochs);
    std::fs::write(file(set.path(), n + 1).with_extension("tmp"), b"half a batch").unwrap();
    assert_eq!(BatchSet::load(set.path()).unwrap().batches().len() as u64, n);
}

#[test]
fn foreign_batch_files_are_refused_or_named_by_the_journal() {
    let (ours_dir, theirs_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ours = journal(ours_dir.path(), 15, 80);
    let theirs = journal(theirs_dir.path(), 16, 80);
    // Another journal's batch 2 among ours: it does not follow our batch 1.
    let set = files(&ours);
    Batch::of(&theirs[1]).write(set.path()).unwrap();
    let err = BatchSet::load(set.path()).unwrap_err();
    assert!(
        matches!(&err, BatchError::Inconsistent { field: "first_seq" | "prev_root", path, .. } if *path == file(set.path(), 2)),
        "{err}"
    );
    // Another journal's whole set is a valid set; the journal says it is not ours.
    let foreign = files(&theirs);
    let set = BatchSet::load(foreign.path()).unwrap();
    let v = audit::verify(ours_dir.path(), POLICY, &Ledger::default(), Some(&set), None).unwrap();
    assert!(matches!(v.files, Some(Err(Disagreement::File { index: 1, .. }))), "{:?}", v.files);
    assert!(!v.agrees());
}

/// `settle verify` (and `replay --verify-roots`) checks each batch's market state: a file
/// whose leaves and roots are right but whose mark is not is named, with the instrument.
#[test]
fn verify_names_a_batch_file_whose_market_state_differs() {
    let jdir = tempfile::tempdir().unwrap();
    let epochs = journal(jdir.path(), 17, 120);
    let set = files(&epochs);
    let mut other = epochs[2].clone();
    other.markets[1].mark += 1;
    Batch::of(&other).write(set.path()).unwrap();
    let loaded = BatchSet::load(set.path()).unwrap();
    let v = audit::verify(jdir.path(), POLICY, &Ledger::default(), Some(&loaded), None).unwrap();
    match v.files {
        Some(Err(Disagreement::File { index: 3, what })) => {
            assert!(what.contains("market state differs at instrument 1"), "{what}");
        }
        other => panic!("{other:?}"),
    }
}

/// Issue 16: a batch's queue fields continue the batch before's: the count never
/// decreases, an unchanged count keeps its hash, and the refused entries were taken after
/// the previous count. Each break is refused naming the file and the field.
#[test]
fn queue_fields_that_do_not_follow_are_named() {
    let jdir = tempfile::tempdir().unwrap();
    let epochs = journal(jdir.path(), 14, 400);
    let k = (1..epochs.len()).find(|&k| epochs[k - 1].queue_count > 1).unwrap();
    let prev_count = epochs[k - 1].queue_count;
    let cases: [(&str, Epoch); 3] = [
        ("queue_count", Epoch { queue_count: prev_count - 1, rejected: Vec::new(), ..epochs[k].clone() }),
        (
            "queue_hash",
            Epoch {
                queue_count: prev_count,
                queue_hash: alloy_primitives::B256::repeat_byte(1),
                rejected: Vec::new(),
                ..epochs[k].clone()
            },
        ),
        (
            "rejected",
            Epoch {
                queue_count: prev_count,
                queue_hash: epochs[k - 1].queue_hash,
                rejected: vec![prev_count],
                ..epochs[k].clone()
            },
        ),
    ];
    for (field, bad) in cases {
        let set = files(&epochs);
        let path = Batch::of(&bad).write(set.path()).unwrap();
        let err = BatchSet::load(set.path()).unwrap_err();
        assert!(
            matches!(&err, BatchError::Inconsistent { path: p, field: f, .. } if *p == path && *f == field),
            "{field}: {err}"
        );
    }
}
