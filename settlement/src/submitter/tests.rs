//! The submitter's own steps: the check before a commit, and the journal made durable
//! before a pass reads it. (Against a node: `settlement/tests/it/submitter.rs`.)

use std::sync::{Arc, Mutex};

use alloy::primitives::B256;
use l2x_sequencer::journal::JournalWriter;
use l2x_types::{AccountId, Amount, Command, Holder, Seq, Sequenced, Timestamp};

use super::*;
use crate::embedded::EmbeddedChain;
use crate::epoch::Epoch;
use crate::leaf::AccountLeaf;
use crate::tree::Tree;

/// Every command is due: each deposit closes a batch.
const EVERY_COMMAND: Policy = Policy { max_ms: 0, max_fills: 0 };

fn deposit(seq: u64) -> Sequenced {
    Sequenced {
        seq: Seq(seq),
        ts: Timestamp(seq * 1_000_000),
        cmd: Command::Deposit { to: Holder::Account(AccountId(seq)), amount: Amount(1_000_000) },
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

/// A journal in `dir` holding deposits `seqs`, its writer still open.
fn journal(dir: &std::path::Path, seqs: std::ops::RangeInclusive<u64>) -> JournalWriter {
    let (mut w, _) = JournalWriter::open(dir, 1 << 20).unwrap_or_else(|e| panic!("{e}"));
    for seq in seqs {
        w.append(&deposit(seq)).unwrap_or_else(|e| panic!("{e}"));
    }
    w
}

/// Issue 14 review: batches the loader refuses were committed. The submitter checks each
/// batch against the one before it, as the loader would, before committing it.
#[test]
fn a_batch_the_loader_would_refuse_is_never_committed() {
    let (dir, chain_dir) = (tempdir(), tempdir());
    let mut chain = EmbeddedChain::open(chain_dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let mut tree = Tree::new();
    let mut epoch = |index: u64, first_seq: u64, last_seq: u64, prev_root: B256| {
        let changes = vec![AccountLeaf { account: index, collateral: 5, positions: Vec::new() }];
        let root = tree.update(changes.iter().map(|l| (l.account, Some(l.hash()))));
        let commands = last_seq - first_seq + 1;
        Epoch {
            index,
            first_seq,
            last_seq,
            ts: 1,
            commands,
            fills: 0,
            prev_root,
            root,
            markets: Vec::new(),
            changes,
            queue_count: 0,
            queue_hash: B256::ZERO,
            withdrawals: Vec::new(),
            rejected: Vec::new(),
        }
    };
    let first = epoch(1, 1, 3, B256::ZERO);
    // Its range starts at 5, not 4: the loader refuses it after batch 1 (the contract,
    // which stores no ranges, would take it).
    let gap = epoch(2, 5, 6, first.root);
    let batches = [Batch::of(&first), Batch::of(&gap)];
    let mut sub =
        Submitter::new(dir.path().to_path_buf(), dir.path().join("batches"), EVERY_COMMAND, Ledger::default());
    let err = sub.sync_batches(&batches, &mut chain).unwrap_err();
    assert!(
        matches!(&err, SubmitError::Refused { index: 2, what: BatchError::Inconsistent { field: "first_seq", .. } }),
        "{err}"
    );
    assert!(err.to_string().contains("batch-00000000000000000002.l2xb: first_seq"), "{err}");
    assert_eq!(chain.last_committed().unwrap_or_else(|e| panic!("{e}")).0, 1, "batch 1 only");
}

/// Issue 14 review: under `durability = os` the node committed roots built on records a
/// power cut could take back. A pass reads the published number, then syncs, then reads:
/// here the sync itself appends the records the number announced, so a pass that read
/// before it synced would miss them.
#[test]
fn a_pass_makes_the_journal_durable_before_reading_it() {
    let (dir, chain_dir) = (tempdir(), tempdir());
    let mut chain = EmbeddedChain::open(chain_dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let mut writer = Some(journal(dir.path(), 1..=3));
    let log = Arc::new(Mutex::new(Vec::new()));
    let (published_log, sync_log) = (Arc::clone(&log), Arc::clone(&log));
    let push = |log: &Arc<Mutex<Vec<&'static str>>>, what| log.lock().unwrap_or_else(|e| panic!("{e}")).push(what);
    let published = PublishedSeq::new(move || {
        push(&published_log, "published");
        6
    });
    let mut sub =
        Submitter::new(dir.path().to_path_buf(), dir.path().join("batches"), EVERY_COMMAND, Ledger::default())
            .reading_up_to(published)
            .syncing_before_reading(move || {
                push(&sync_log, "sync");
                if let Some(mut w) = writer.take() {
                    (4..=6).try_for_each(|seq| w.append(&deposit(seq)))?;
                    w.sync()?;
                }
                Ok(())
            });
    let first = sub.sync(&mut chain).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((first.epochs, first.committed), (6, 6), "records 4-6 were read after the sync");
    let again = sub.sync(&mut chain).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((again.epochs, again.committed), (6, 0));
    let log = log.lock().unwrap_or_else(|e| panic!("{e}")).clone();
    assert_eq!(log, ["published", "sync", "published", "sync"], "one sync per pass, after the number is read");
}

/// A pass whose sync fails reads nothing and commits nothing; the next one goes on.
#[test]
fn a_pass_whose_sync_fails_reads_and_commits_nothing() {
    let (dir, chain_dir) = (tempdir(), tempdir());
    let mut chain = EmbeddedChain::open(chain_dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let _writer = journal(dir.path(), 1..=3);
    let mut failures = 1;
    let journal_dir = dir.path().to_path_buf();
    let batches = dir.path().join("batches");
    let mut sub = Submitter::new(journal_dir.clone(), batches.clone(), EVERY_COMMAND, Ledger::default())
        .reading_up_to(PublishedSeq::new(|| 3))
        .syncing_before_reading(move || {
            if failures > 0 {
                failures -= 1;
                let source = std::io::Error::other("the disk is gone");
                return Err(JournalError::Io { path: journal_dir.clone(), source });
            }
            Ok(())
        });
    let err = sub.sync(&mut chain).unwrap_err();
    assert!(matches!(err, SubmitError::Durable(_)), "{err}");
    assert!(err.to_string().starts_with("making the journal durable before reading it: "), "{err}");
    assert!(!batches.exists(), "no batch file written");
    assert_eq!(chain.last_committed().unwrap_or_else(|e| panic!("{e}")).0, 0);
    let next = sub.sync(&mut chain).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((next.epochs, next.committed), (3, 3));
}

/// Regression (issue 14 closing review): `l2x settle submit` checked only the files of the
/// epochs it recomputed, so a misnamed or stray file in the batch directory was never
/// looked at, while SETTLEMENT.md says every command that reads batch files loads the whole
/// directory first. The first pass now does: each bad directory stops it before it reads
/// the journal or sends anything, naming the file.
#[test]
fn submit_loads_the_whole_batch_directory_before_it_sends() {
    let dir = tempdir();
    drop(journal(dir.path(), 1..=3));
    let good = tempdir();
    let mut chain = EmbeddedChain::open(good.path()).unwrap_or_else(|e| panic!("{e}"));
    let batches = dir.path().join("batches");
    Submitter::new(dir.path().to_path_buf(), batches.clone(), EVERY_COMMAND, Ledger::default())
        .sync(&mut chain)
        .unwrap_or_else(|e| panic!("{e}"));
    let first = std::fs::read(batches.join(Batch::file_name(1))).unwrap_or_else(|e| panic!("{e}"));
    let cases: [(&str, &str, &[u8]); 3] = [
        ("batch-7.l2xb", "not a batch file name", &first),
        (&Batch::file_name(5), "batch 4 is missing", &first),
        (&Batch::file_name(4), "batch-00000000000000000004.l2xb", b"not a batch"),
    ];
    for (name, says, bytes) in cases {
        let case = tempdir();
        let case_batches = case.path().join("batches");
        std::fs::create_dir(&case_batches).unwrap_or_else(|e| panic!("{e}"));
        for i in 1..=3 {
            std::fs::copy(batches.join(Batch::file_name(i)), case_batches.join(Batch::file_name(i)))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(case_batches.join(name), bytes).unwrap_or_else(|e| panic!("{e}"));
        let chain_dir = tempdir();
        let mut chain = EmbeddedChain::open(chain_dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let mut sub = Submitter::new(dir.path().to_path_buf(), case_batches, EVERY_COMMAND, Ledger::default());
        let err = sub.sync(&mut chain).expect_err(name).to_string();
        assert!(err.contains(says), "{name}: {err}");
        assert!(sub.closed.is_empty(), "{name}: the journal was not read");
        assert_eq!(chain.last_committed().unwrap_or_else(|e| panic!("{e}")).0, 0, "{name}: nothing sent");
    }
}
