//! The submitter's own steps: the check before a commit. (Against a node:
//! `settlement/tests/submitter.rs`.)

use alloy::primitives::B256;

use super::*;
use crate::embedded::EmbeddedChain;
use crate::epoch::Epoch;
use crate::leaf::AccountLeaf;
use crate::tree::Tree;

/// Every command is due: each deposit closes a batch.
const EVERY_COMMAND: Policy = Policy { max_ms: 0, max_fills: 0 };

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
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
        Epoch { index, first_seq, last_seq, ts: 1, commands, fills: 0, prev_root, root, markets: Vec::new(), changes }
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
