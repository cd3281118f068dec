//! What an outside auditor runs (docs/SETTLEMENT.md, "Command line"): the journal's
//! batches against the batch files and the chain (`settle verify`), the batch files
//! against the chain (`settle status`), and an account's proof from the batch files,
//! checked against the chain (`settle prove`). Read-only: no key, nothing committed.
//!
//! ```text
//!  verify   journal ──epoch::from_journal──▶ batches ─┬─ compare ─▶ BatchSet (files, all checked)
//!                                                     └─ compare ─▶ chain: every committed root and commitment
//!  status   BatchSet ── the last batch both have: root and commitment ─▶ chain
//!  prove    BatchSet ──state_at(K)──▶ tree, leaf, proof ──▶ chain: root and commitment of K,
//!                                                            verifyLeaf (inclusion)
//! ```
//!
//! A commitment agrees when it is the batch's in either data mode, calldata or blobs
//! ([`committed_as`]): a chain may hold batches of both.
//!
//! A disagreement is a finding ([`Disagreement`], with the first batch that differs), not
//! an error: the caller reports it and exits 1. Errors ([`AuditError`]) are inputs that
//! cannot be read — a damaged batch file, a journal that does not replay, a chain that does
//! not answer.

use std::path::Path;

use alloy_primitives::B256;
use l2x_risk::Ledger;
use l2x_sequencer::journal::JournalError;

use crate::batch::{Batch, BatchError};
use crate::batch_set::{BatchSet, State};
use crate::chain::{Chain, ChainError, Da, commitment, committed_as};
use crate::epoch::{self, Policy};
use crate::leaf::AccountLeaf;
use crate::tree::Proof;

/// Inputs that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The journal.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A batch file or the set of them.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// The chain.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A leaf whose value at its batch's market state does not fit in 128 bits (a crafted
    /// batch file: the exchange produces none).
    #[error("batch {index}: {what}")]
    Value {
        /// The batch.
        index: u64,
        /// The account, the position and the figure.
        what: crate::market::ValueError,
    },
    /// A batch asked for that the set does not have.
    #[error("{dir}: {why}")]
    NoBatch {
        /// The batch directory.
        dir: std::path::PathBuf,
        /// What is missing.
        why: String,
    },
}

/// The first place where the journal, the batch files and the chain disagree.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Disagreement {
    /// A batch file (or a committed batch) beyond the journal's batches.
    #[error("batch {index}: {what}, but the journal gives only {batches} batches")]
    BeyondJournal {
        /// The batch.
        index: u64,
        /// "a batch file" or "on chain".
        what: &'static str,
        /// Batches the journal closes.
        batches: u64,
    },
    /// A batch file that says something else than the journal.
    #[error("batch {index}: the batch file is not what the journal gives: {what}")]
    File {
        /// The batch.
        index: u64,
        /// The first difference.
        what: String,
    },
    /// A committed root that is not the expected one.
    #[error("batch {index}: the chain has root {chain}, {whose} gives {expected}")]
    Root {
        /// The batch.
        index: u64,
        /// The chain's root.
        chain: B256,
        /// "the journal" or "the batch file".
        whose: &'static str,
        /// The expected root.
        expected: B256,
    },
    /// A committed commitment that is not the batch's in either data mode (its data or its
    /// queue fields differ).
    #[error(
        "batch {index}: the chain has commitment {chain}, the batch's commit gives {ours} (data in calldata; in blobs another, which differs too)"
    )]
    Commitment {
        /// The batch.
        index: u64,
        /// The chain's.
        chain: B256,
        /// The batch's, with its data in calldata.
        ours: B256,
    },
    /// A batch the chain does not have.
    #[error("batch {index} is not on the chain (it has batches 1-{last})")]
    NotCommitted {
        /// The batch.
        index: u64,
        /// The chain's last.
        last: u64,
    },
    /// The contract's `verifyLeaf` refuses a proof that verifies against the same root.
    #[error("batch {index}: the contract's verifyLeaf refuses the leaf of account {account}")]
    Contract {
        /// The batch.
        index: u64,
        /// The account.
        account: u64,
    },
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Batches the journal closes.
    pub batches: u64,
    /// With batch files: how many there are (all matching), or the first that differs.
    pub files: Option<Result<u64, Disagreement>>,
    /// With a chain: how many batches it has committed (all matching), or the first that
    /// differs.
    pub chain: Option<Result<u64, Disagreement>>,
}

impl Verification {
    /// Whether everything compared agrees.
    pub fn agrees(&self) -> bool {
        !matches!(self.files, Some(Err(_))) && !matches!(self.chain, Some(Err(_)))
    }
}

/// Recomputes every batch of the journal in `journal` under `policy` and compares it with
/// the batch files (by content) and with every batch committed on `chain` (root and
/// commitment — that of the batch file when there is one: the bytes the batch was posted
/// with).
///
/// # Errors
/// [`AuditError`] when an input cannot be read.
pub fn verify(
    journal: &Path,
    policy: Policy,
    ledger: &Ledger,
    files: Option<&BatchSet>,
    chain: Option<&mut dyn Chain>,
) -> Result<Verification, AuditError> {
    let computed: Vec<Batch> = epoch::from_journal(journal, policy, ledger)?.iter().map(Batch::of).collect();
    let mut posted: Vec<&Batch> = computed.iter().collect();
    let files = files.map(|set| compare_files(set, &computed, &mut posted)).transpose()?;
    let chain = match chain {
        Some(chain) => Some(compare_chain(chain, &computed, &posted)?),
        None => None,
    };
    Ok(Verification { batches: computed.len() as u64, files, chain })
}

/// Compares the batch files with the journal's batches; where they agree, the commitment
/// expected on chain is the file's (the bytes the batch was posted with).
fn compare_files<'a>(
    set: &'a BatchSet,
    computed: &[Batch],
    posted: &mut [&'a Batch],
) -> Result<Result<u64, Disagreement>, AuditError> {
    for (file, (mine, posted)) in set.batches().iter().zip(computed.iter().zip(posted.iter_mut())) {
        if let Some(what) = difference(file, mine) {
            return Ok(Err(Disagreement::File { index: file.header.index, what }));
        }
        *posted = file;
    }
    Ok(match set.batches().get(computed.len()) {
        Some(extra) => Err(Disagreement::BeyondJournal {
            index: extra.header.index,
            what: "a batch file",
            batches: computed.len() as u64,
        }),
        None => Ok(set.batches().len() as u64),
    })
}

fn compare_chain(
    chain: &mut dyn Chain,
    computed: &[Batch],
    posted: &[&Batch],
) -> Result<Result<u64, Disagreement>, AuditError> {
    let (last, _) = chain.last_committed()?;
    for index in 1..=last {
        let i = usize::try_from(index - 1).unwrap_or(usize::MAX);
        let Some(mine) = computed.get(i) else {
            return Ok(Err(Disagreement::BeyondJournal { index, what: "on chain", batches: computed.len() as u64 }));
        };
        let (root, committed) = chain.committed(index)?;
        if root != mine.header.new_root {
            return Ok(Err(Disagreement::Root {
                index,
                chain: root,
                whose: "the journal",
                expected: mine.header.new_root,
            }));
        }
        if committed_as(posted[i], committed)?.is_none() {
            let ours = commitment(posted[i], Da::Calldata)?;
            return Ok(Err(Disagreement::Commitment { index, chain: committed, ours }));
        }
    }
    Ok(Ok(last))
}

/// The first difference between a batch file and the journal's batch of the same index,
/// in words (`None`: the same content).
pub fn difference(file: &Batch, journal: &Batch) -> Option<String> {
    let (f, j) = (&file.header, &journal.header);
    let numbers = [
        ("first_seq", f.first_seq, j.first_seq),
        ("last_seq", f.last_seq, j.last_seq),
        ("epoch_ts", f.epoch_ts, j.epoch_ts),
        ("commands", f.commands, j.commands),
        ("fills", f.fills, j.fills),
    ];
    if let Some((field, a, b)) = numbers.iter().find(|(_, a, b)| a != b) {
        return Some(format!("{field} is {a} in the file, {b} from the journal"));
    }
    if f.prev_root != j.prev_root {
        return Some(format!("prev_root is {} in the file, {} from the journal", f.prev_root, j.prev_root));
    }
    let (fc, jc) = match (file.contents(), journal.contents()) {
        (Ok(fc), Ok(jc)) => (fc, jc),
        (Err(e), _) | (_, Err(e)) => return Some(format!("its data does not decode: {e}")),
    };
    if fc.markets != jc.markets {
        let n = fc.markets.len().max(jc.markets.len());
        let i = (0..n).find(|&i| fc.markets.get(i) != jc.markets.get(i)).unwrap_or(0);
        let show = |m: Option<&crate::market::Market>| {
            m.map_or("not listed".to_string(), |m| {
                format!("mark {}, funding index {}, tick value {}", m.mark, m.fundingIndex, m.tickValue)
            })
        };
        return Some(format!(
            "the market state differs at instrument {i}: {} in the file, {} from the journal",
            show(fc.markets.get(i)),
            show(jc.markets.get(i))
        ));
    }
    if fc.leaves != jc.leaves {
        let n = fc.leaves.len().max(jc.leaves.len());
        let i = (0..n).find(|&i| fc.leaves.get(i) != jc.leaves.get(i)).unwrap_or(0);
        let key = |l: Option<&AccountLeaf>| l.map_or("none".to_string(), |l| l.account.to_string());
        return Some(format!(
            "leaf {i} differs (account {} in the file, {} from the journal)",
            key(fc.leaves.get(i)),
            key(jc.leaves.get(i))
        ));
    }
    (f.new_root != j.new_root)
        .then(|| format!("new_root is {} in the file, {} from the journal", f.new_root, j.new_root))
}

/// What `status` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The last batch file's header.
    pub local: Option<crate::batch::Header>,
    /// With a chain: its last batch and root, and the check of the last batch both have.
    pub chain: Option<ChainStatus>,
}

/// The chain's side of `status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainStatus {
    /// The chain's last batch.
    pub last: u64,
    /// Its root.
    pub root: B256,
    /// The last batch both the files and the chain have (0: none), checked: its root and
    /// commitment agree, or how they differ.
    pub checked: Result<u64, Disagreement>,
}

/// The last batch file, and with a chain, the chain's last batch and whether the last
/// batch both have agrees (root and commitment). The files' own chain of roots, checked by
/// [`BatchSet::load`], carries the roots' agreement to every batch before it, not that of
/// their withdrawals and refused entries: `verify` compares every commitment.
///
/// # Errors
/// [`AuditError::Chain`].
pub fn status(set: &BatchSet, chain: Option<&mut dyn Chain>) -> Result<Status, AuditError> {
    let local = set.last().map(|b| b.header);
    let Some(chain) = chain else { return Ok(Status { local, chain: None }) };
    let (last, root) = chain.last_committed()?;
    let both = last.min(local.map_or(0, |h| h.index));
    let checked = match set.get(both) {
        Some(b) => check_committed(chain, b)?.map(|()| both),
        None => Ok(0),
    };
    Ok(Status { local, chain: Some(ChainStatus { last, root, checked }) })
}

/// Whether the chain committed `batch` as it is: its root and its commitment.
fn check_committed(chain: &mut dyn Chain, batch: &Batch) -> Result<Result<(), Disagreement>, AuditError> {
    let h = &batch.header;
    let (root, committed) = chain.committed(h.index)?;
    if root != h.new_root {
        return Ok(Err(Disagreement::Root {
            index: h.index,
            chain: root,
            whose: "the batch file",
            expected: h.new_root,
        }));
    }
    if committed_as(batch, committed)?.is_none() {
        let ours = commitment(batch, Da::Calldata)?;
        return Ok(Err(Disagreement::Commitment { index: h.index, chain: committed, ours }));
    }
    Ok(Ok(()))
}

/// An account's proof at a batch, from the batch files.
#[derive(Clone, Debug)]
pub struct Proven {
    /// The account.
    pub account: u64,
    /// The batch's state rebuilt from the files (its tree's root is the batch's root).
    pub state: State,
    /// The account's leaf (`None`: the proof is one of absence).
    pub leaf: Option<AccountLeaf>,
    /// The proof.
    pub proof: Proof,
    /// With a chain: what it says.
    pub chain: Option<OnChain>,
}

/// What the chain says of a proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnChain {
    /// The root the chain committed for the batch (`0x00…00`: none).
    pub root: B256,
    /// Inclusion: whether the contract's `verifyLeaf` accepts the leaf (`None`: an absence,
    /// which the contract cannot check; it is checked off chain against `root`).
    pub by_contract: Option<bool>,
    /// Whether the chain agrees with the files: committed, the same root and commitment,
    /// and the contract accepting an included leaf.
    pub agrees: Result<(), Disagreement>,
}

/// The leaf of `account` (or its absence) at batch `index` (default: the last), with its
/// proof against the root rebuilt from the batch files; with a chain, checked against the
/// root the chain committed for that batch and, for a leaf, by the contract.
///
/// # Errors
/// [`AuditError::NoBatch`] when the set does not have the batch; the chain's errors.
pub fn prove(
    set: &BatchSet,
    account: u64,
    index: Option<u64>,
    chain: Option<&mut dyn Chain>,
) -> Result<Proven, AuditError> {
    let no_batch = |why: String| AuditError::NoBatch { dir: set.dir().to_path_buf(), why };
    let last = set.last().map(|b| b.header.index).ok_or_else(|| no_batch("no batch files to prove against".into()))?;
    let index = index.unwrap_or(last);
    let state =
        set.state_at(index).ok_or_else(|| no_batch(format!("batch {index} is not among its batches 1-{last}")))?;
    let proof = state.tree.prove(account);
    let leaf = state.leaves.get(&account).cloned();
    let chain = match chain {
        Some(chain) => Some(on_chain(chain, set, index, leaf.as_ref(), &proof)?),
        None => None,
    };
    Ok(Proven { account, state, leaf, proof, chain })
}

fn on_chain(
    chain: &mut dyn Chain,
    set: &BatchSet,
    index: u64,
    leaf: Option<&AccountLeaf>,
    proof: &Proof,
) -> Result<OnChain, AuditError> {
    let (last, _) = chain.last_committed()?;
    let (root, _) = chain.committed(index)?;
    let mut result = OnChain { root, by_contract: None, agrees: Ok(()) };
    if index > last {
        result.agrees = Err(Disagreement::NotCommitted { index, last });
        return Ok(result);
    }
    let batch = set
        .get(index)
        .ok_or_else(|| AuditError::NoBatch { dir: set.dir().to_path_buf(), why: format!("batch {index}") })?;
    result.agrees = check_committed(chain, batch)?;
    if let (Some(leaf), Ok(())) = (leaf, &result.agrees) {
        let accepted = chain.verify_leaf(index, leaf, &proof.siblings)?;
        result.by_contract = Some(accepted);
        if !accepted {
            result.agrees = Err(Disagreement::Contract { index, account: leaf.account });
        }
    }
    Ok(result)
}

/// A leaf's value at its batch's market state (docs/SETTLEMENT.md, "Valuing an account").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value {
    /// The funding it owes and has not settled (`None`: a position's instrument is not
    /// listed).
    pub funding_owed: Option<i128>,
    /// Its equity (`None`: a position's instrument is not listed or has no mark).
    pub equity: Option<i128>,
}

/// `leaf`'s value at `markets` (docs/SETTLEMENT.md, "Valuing an account"): a figure is
/// `None` where a position's instrument is not listed (both) or has no mark (equity).
///
/// # Errors
/// [`ValueError::Overflow`](crate::market::ValueError::Overflow): a figure that does not
/// fit in 128 bits.
pub fn value_of(leaf: &AccountLeaf, markets: &[crate::market::Market]) -> Result<Value, crate::market::ValueError> {
    use crate::market::{self, ValueError};
    let known = |r: Result<i128, ValueError>| match r {
        Ok(v) => Ok(Some(v)),
        Err(what @ ValueError::Overflow { .. }) => Err(what),
        Err(ValueError::Unlisted { .. } | ValueError::NoMark { .. }) => Ok(None),
    };
    Ok(Value {
        funding_owed: known(market::funding_owed(leaf, markets))?,
        equity: known(market::equity(leaf, markets))?,
    })
}

impl Proven {
    /// The leaf's value at the batch's market state (`None`: no leaf, a proof of absence).
    ///
    /// # Errors
    /// [`AuditError::Value`] naming the batch, the account and the figure that does not fit
    /// in 128 bits.
    pub fn value(&self) -> Result<Option<Value>, AuditError> {
        let Some(leaf) = &self.leaf else { return Ok(None) };
        let value = value_of(leaf, &self.state.markets);
        value.map(Some).map_err(|what| AuditError::Value { index: self.state.index, what })
    }

    /// Whether the proof verifies against the root rebuilt from the batch files (it always
    /// should: a `false` is a bug).
    pub fn verified(&self) -> bool {
        self.proof.verify(self.state.tree.root(), self.account, self.leaf.as_ref().map(AccountLeaf::hash))
    }
}
