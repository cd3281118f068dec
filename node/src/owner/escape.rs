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
//! The proof is always against the chain's **last** committed batch (the contract's
//! `escape` checks `lastRoot`), whatever later batches the files hold. Another source (the
//! chain's own data) is one more [`ProofSource`] variant giving the same [`EscapeProof`].

use std::path::PathBuf;

use alloy_primitives::B256;
use l2x_settlement::batch_set::BatchSet;
use l2x_settlement::leaf::AccountLeaf;
use l2x_settlement::market::Market;

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
}

/// Why an escape's proof cannot be made, or does not match the chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EscapeError {
    /// The chain has no committed batch: there is no root to escape against.
    #[error("the chain has no committed batch, so there is no root to escape against")]
    NothingCommitted,
    /// The source does not have the chain's last batch.
    #[error("the chain's last committed batch is {last}, but {source_name} go up to batch {files} only")]
    NotInFiles {
        /// The chain's last batch.
        last: u64,
        /// The source's last batch (0: none).
        files: u64,
        /// The source, in words.
        source_name: String,
    },
    /// The source's root at the chain's last batch is not the chain's.
    #[error("batch {index}: the chain has root {chain}, {source_name} gives {ours}")]
    RootDiffers {
        /// The batch.
        index: u64,
        /// The chain's root.
        chain: B256,
        /// The source's.
        ours: B256,
        /// The source, in words.
        source_name: String,
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
        }
    }
}

/// [`ProofSource::BatchFiles`] over a loaded set.
fn from_batch_files(set: &BatchSet, account: u64, last: u64, root: B256) -> Result<EscapeProof> {
    let source_name = format!("the batch files in {}", set.dir().display());
    if last == 0 {
        return Err(escape(EscapeError::NothingCommitted));
    }
    let files = set.last().map_or(0, |b| b.header.index);
    let state = set
        .state_at(last)
        .ok_or_else(|| escape(EscapeError::NotInFiles { last, files, source_name: source_name.clone() }))?;
    let ours = state.tree.root();
    if ours != root {
        return Err(escape(EscapeError::RootDiffers { index: last, chain: root, ours, source_name }));
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
