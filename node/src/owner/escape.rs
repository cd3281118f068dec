//! What an escape needs — the account's leaf, its proof against the chain's last root and
//! the market state committed with that root — and where it comes from.
//!
//! ```text
//!  ProofSource::BatchFiles(dir) ─▶ BatchSet::load (every file checked)
//!      ─▶ state_at(the chain's last index): no such batch ─▶ NotInFiles (nothing sent)
//!      ─▶ its root = the chain's last root?   no        ─▶ RootDiffers (nothing sent)
//!      ─▶ the account's leaf (none: NoLeaf), tree.prove(account), the batch's markets
//!      ─▶ EscapeProof, checked against the root before it is returned
//! ```
//!
//! ```text
//!  ProofSource::Chain(spec) ─▶ l2x_settlement::rebuild (every batch read back and checked)
//!      ─▶ a finding (a batch does not rebuild)     ─▶ DoesNotRebuild (nothing sent)
//!      ─▶ read at another batch than the escape's  ─▶ ChainMoved (nothing sent)
//!      ─▶ Rebuild::escape(account) (none: NoLeaf) ─▶ EscapeProof, checked against the root
//! ```
//!
//! | source | what it needs | used by |
//! |---|---|---|
//! | [`ProofSource::Chain`] | the chain alone: its commits and posted batch data | `settle escape` (default) |
//! | [`ProofSource::BatchFiles`] | a directory of batch files holding the chain's last batch | `settle escape --batches DIR` |
//!
//! The proof is always against the chain's **last** committed batch (the contract's
//! `escape` checks `lastRoot`), whatever later batches the files hold. Either source gives
//! the same [`EscapeProof`], and either is checked against the chain's root before anything
//! is sent.

use std::path::PathBuf;

use alloy_primitives::B256;
use l2x_settlement::batch_set::BatchSet;
use l2x_settlement::leaf::AccountLeaf;
use l2x_settlement::market::Market;
use l2x_settlement::rebuild::{self, Rebuild};
use l2x_settlement::tree::Proof;

use crate::chain::ChainSpec;
use crate::error::{NodeError, Result};

/// An account's leaf, its proof against a committed root, and the market state committed
/// with it: `escape`'s arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscapeProof {
    /// The batch whose root it proves against (the chain's last).
    pub batch: u64,
    /// That root.
    pub root: B256,
    /// The account's leaf.
    pub leaf: AccountLeaf,
    /// The proof: sibling hashes from the root's children down.
    pub siblings: Vec<B256>,
    /// The batch's market state.
    pub markets: Vec<Market>,
}

/// Where an escape's proof comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofSource {
    /// A directory of batch files (the operator's `DATA_DIR/batches`, or a copy): the
    /// state at the chain's last batch rebuilt from them alone.
    BatchFiles(PathBuf),
    /// The chain itself: every batch read back from it and rebuilt
    /// ([`l2x_settlement::rebuild`]), no file of the operator's needed.
    Chain(ChainSpec),
}

/// Why an escape's proof cannot be made, or does not match the chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EscapeError {
    /// The chain has no committed batch: there is no root to escape against.
    #[error("the chain has no committed batch, so there is no root to escape against")]
    NothingCommitted,
    /// The batch files do not have the chain's last batch.
    #[error("the chain's last committed batch is {last}, but the batch files in {} end at batch {files}", dir.display())]
    NotInFiles {
        /// The chain's last batch.
        last: u64,
        /// The files' last batch (0: none).
        files: u64,
        /// The batch directory.
        dir: PathBuf,
    },
    /// The batch files' root at the chain's last batch is not the chain's.
    #[error("batch {index}: the chain has root {chain}, the batch files in {} give {ours}", dir.display())]
    RootDiffers {
        /// The batch.
        index: u64,
        /// The chain's root.
        chain: B256,
        /// The files'.
        ours: B256,
        /// The batch directory.
        dir: PathBuf,
    },
    /// The chain's batches do not rebuild to its last root (the operator posted data that
    /// is not its commitments'): the escape cannot be proven from the chain alone.
    #[error(
        "the chain's batches do not rebuild to its last root ({finding}); \
         `l2x settle rebuild` shows where, and --batches DIR proves from batch files instead"
    )]
    DoesNotRebuild {
        /// The first disagreement, in words.
        finding: String,
    },
    /// The chain's data could not be read for the proof (a node that does not answer, a
    /// damaged store file): nothing was sent.
    #[error(
        "the chain's data could not be read for the proof ({why}); nothing was sent; \
         --batches DIR proves from batch files instead"
    )]
    Unreadable {
        /// What could not be read, in words.
        why: String,
    },
    /// The chain committed another batch between reading its last root and rebuilding.
    #[error(
        "the chain's last batch was {last} with root {root} when the escape began, and {rebuilt} with root \
         {rebuilt_root} when it was rebuilt; run it again"
    )]
    ChainMoved {
        /// The batch the escape is against.
        last: u64,
        /// Its root.
        root: B256,
        /// The batch the rebuild read to.
        rebuilt: u64,
        /// The root the rebuild read.
        rebuilt_root: B256,
    },
    /// The account has no leaf at that batch (nothing in it, ever): nothing to escape with.
    #[error("{holder} has no leaf at batch {index}: nothing to escape with")]
    NoLeaf {
        /// The account, in words.
        holder: String,
        /// The batch.
        index: u64,
    },
}

impl ProofSource {
    /// The proof of `account`'s leaf at batch `last`, whose root on chain is `root`.
    ///
    /// # Errors
    /// [`EscapeError`] (as [`OwnerError::Escape`](super::OwnerError::Escape)); a set of
    /// batch files that does not load; [`NodeError::ProofDoesNotVerify`] for a proof that
    /// does not verify against its own root (a bug).
    pub fn proof(&self, account: u64, last: u64, root: B256) -> Result<EscapeProof> {
        match self {
            ProofSource::BatchFiles(dir) => from_batch_files(&BatchSet::load(dir)?, account, last, root),
            ProofSource::Chain(spec) => {
                let unreadable = |e: &dyn std::fmt::Display| escape(EscapeError::Unreadable { why: e.to_string() });
                let mut reader = spec.reader().map_err(|e| unreadable(&e))?;
                let rebuilt = rebuild::rebuild(reader.as_mut()).map_err(|e| unreadable(&e))?;
                from_rebuild(&rebuilt, account, last, root)
            }
        }
    }
}

/// [`ProofSource::Chain`] over what the chain rebuilt to.
fn from_rebuild(r: &Rebuild, account: u64, last: u64, root: B256) -> Result<EscapeProof> {
    if last == 0 {
        return Err(escape(EscapeError::NothingCommitted));
    }
    if let Some(finding) = &r.finding {
        return Err(escape(EscapeError::DoesNotRebuild { finding: finding.to_string() }));
    }
    if r.chain_last != last || r.chain_root != root {
        return Err(escape(EscapeError::ChainMoved { last, root, rebuilt: r.chain_last, rebuilt_root: r.chain_root }));
    }
    let found = r
        .escape(account)
        .ok_or_else(|| escape(EscapeError::NoLeaf { holder: super::holder_name(account), index: last }))?;
    let proof = Proof { siblings: found.siblings, other: None };
    if !proof.verify(root, account, Some(found.leaf.hash())) {
        return Err(NodeError::ProofDoesNotVerify);
    }
    Ok(EscapeProof { batch: last, root, leaf: found.leaf, siblings: proof.siblings, markets: found.markets })
}

/// [`ProofSource::BatchFiles`] over a loaded set.
fn from_batch_files(set: &BatchSet, account: u64, last: u64, root: B256) -> Result<EscapeProof> {
    let dir = set.dir().to_path_buf();
    if last == 0 {
        return Err(escape(EscapeError::NothingCommitted));
    }
    let files = set.last().map_or(0, |b| b.header.index);
    let state = set.state_at(last).ok_or_else(|| escape(EscapeError::NotInFiles { last, files, dir: dir.clone() }))?;
    let ours = state.tree.root();
    if ours != root {
        return Err(escape(EscapeError::RootDiffers { index: last, chain: root, ours, dir }));
    }
    let leaf = state
        .leaves
        .get(&account)
        .cloned()
        .ok_or_else(|| escape(EscapeError::NoLeaf { holder: super::holder_name(account), index: last }))?;
    let proof = state.tree.prove(account);
    if !proof.verify(root, account, Some(leaf.hash())) {
        return Err(NodeError::ProofDoesNotVerify);
    }
    Ok(EscapeProof { batch: last, root, leaf, siblings: proof.siblings, markets: state.markets })
}

fn escape(e: EscapeError) -> NodeError {
    super::OwnerError::Escape(e).into()
}

#[cfg(test)]
mod tests {
    use l2x_engine::StateMachine;
    use l2x_risk::Ledger;
    use l2x_settlement::batch::Batch;
    use l2x_settlement::epoch::{Epochs, Policy};
    use l2x_types::{AccountId, Amount, Command, Holder, Seq, Sequenced, Timestamp};

    use super::*;
    use crate::owner::OwnerError;

    /// Two batch files: account 1 deposits 5, then account 2 deposits 7 (each a batch).
    fn two_batches(dir: &std::path::Path) -> BatchSet {
        let mut state = StateMachine::with_ledger(Ledger::default());
        let mut epochs = Epochs::new(Policy { max_ms: 0, max_fills: 0 });
        let mut events = Vec::new();
        for (seq, (account, micro)) in (1u64..).zip([(1, 5), (2, 7)]) {
            let cmd = Command::Deposit { to: Holder::Account(AccountId(account)), amount: Amount(micro) };
            let c = Sequenced { seq: Seq(seq), ts: Timestamp(seq * 1_000_000), cmd };
            events.clear();
            state.apply(&c, &mut events);
            Batch::of(&epochs.on_command(&c, &events, &state).unwrap()).write(dir).unwrap();
        }
        BatchSet::load(dir).unwrap()
    }

    fn refusal(r: Result<EscapeProof>) -> EscapeError {
        match r {
            Err(NodeError::Owner(OwnerError::Escape(e))) => e,
            other => panic!("not an escape error: {other:?}"),
        }
    }

    /// The proof is against the chain's last batch, whatever later batches the files hold;
    /// files that lack it, another root, no batch on chain or no leaf are named refusals.
    #[test]
    fn the_proof_is_against_the_chains_last_batch_or_a_named_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let set = two_batches(dir.path());
        let root = |k| set.state_at(k).unwrap().tree.root();
        let proof = from_batch_files(&set, 1, 2, root(2)).unwrap();
        assert_eq!((proof.batch, proof.leaf.collateral), (2, 5));
        assert!(l2x_settlement::tree::Proof { siblings: proof.siblings.clone(), other: None }.verify(
            root(2),
            1,
            Some(proof.leaf.hash())
        ));
        // The chain is a batch behind the files: the proof is at its batch, 1.
        assert_eq!(from_batch_files(&set, 1, 1, root(1)).unwrap().root, root(1));
        assert_eq!(
            refusal(from_batch_files(&set, 2, 1, root(1))),
            EscapeError::NoLeaf { holder: "account 2".into(), index: 1 }
        );
        let ahead = refusal(from_batch_files(&set, 1, 3, root(2)));
        assert_eq!(ahead, EscapeError::NotInFiles { last: 3, files: 2, dir: dir.path().to_path_buf() });
        let other = B256::repeat_byte(7);
        let differs = refusal(from_batch_files(&set, 1, 2, other));
        assert_eq!(
            differs,
            EscapeError::RootDiffers { index: 2, chain: other, ours: root(2), dir: dir.path().to_path_buf() }
        );
        assert!(differs.to_string().starts_with("batch 2: the chain has root 0x0707"), "{differs}");
        assert_eq!(refusal(from_batch_files(&set, 1, 0, B256::ZERO)), EscapeError::NothingCommitted);
    }

    /// The chain's rebuild gives the same proof as the batch files; a chain that does not
    /// rebuild, one that moved on, no batch or no leaf are named refusals.
    #[test]
    fn the_chains_rebuild_gives_the_files_proof_or_a_named_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let set = two_batches(dir.path());
        let state = set.state_at(2).unwrap();
        let root = state.tree.root();
        let rebuilt =
            Rebuild { chain_last: 2, chain_root: root, state: state.clone(), batches: Vec::new(), finding: None };
        assert_eq!(from_rebuild(&rebuilt, 2, 2, root).unwrap(), from_batch_files(&set, 2, 2, root).unwrap());
        assert_eq!(
            refusal(from_rebuild(&rebuilt, 3, 2, root)),
            EscapeError::NoLeaf { holder: "account 3".into(), index: 2 }
        );
        let moved = refusal(from_rebuild(&rebuilt, 1, 3, B256::repeat_byte(3)));
        let expected = EscapeError::ChainMoved { last: 3, root: B256::repeat_byte(3), rebuilt: 2, rebuilt_root: root };
        assert_eq!(moved, expected);
        // The same batch with another root (a reorg of the last commit) is moved too.
        let other_root = refusal(from_rebuild(&rebuilt, 1, 2, B256::repeat_byte(4)));
        let expected = EscapeError::ChainMoved { last: 2, root: B256::repeat_byte(4), rebuilt: 2, rebuilt_root: root };
        assert_eq!(other_root, expected);
        assert_eq!(refusal(from_rebuild(&rebuilt, 1, 0, B256::ZERO)), EscapeError::NothingCommitted);
        let finding = l2x_settlement::rebuild::Finding::Root {
            index: 2,
            rebuilt: root,
            whose: "the chain's lastRoot",
            expected: B256::repeat_byte(9),
        };
        let differs = Rebuild { finding: Some(finding.clone()), ..rebuilt };
        let refused = refusal(from_rebuild(&differs, 1, 2, root));
        assert_eq!(refused, EscapeError::DoesNotRebuild { finding: finding.to_string() });
        assert!(refused.to_string().contains("`l2x settle rebuild` shows where"), "{refused}");
    }
}
