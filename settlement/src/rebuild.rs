//! Every leaf and the root from the chain alone: what a user runs when the operator is gone
//! and nothing is left but the chain — no journal, no batch files (`l2x settle rebuild`,
//! docs/SETTLEMENT.md "Finding a batch on chain").
//!
//! ```text
//!  chain.last_committed() ──▶ K, the chain's root
//!  for k in 1..=K:  chain.posted(k) ─▶ h, withdrawals, rejected, data (Chain::posted)
//!                   chain.committed(k) ─▶ roots(k), commitments(k)
//!    commitment   Posted::commitment() = commitments(k)                              → Commitment
//!                 (keccak256(abi.encode(h, withdrawals, rejected[, versionedHashes])))
//!    data hash    keccak256(data) = h.dataHash                                       → DataHash
//!                 (for blobs the only check: the contract cannot read them)
//!    data         Batch::from_data: decompresses and decodes (format rules): the     → Data
//!                 header and the contents the arguments are compared with
//!    arguments    h's fields, withdrawals, rejected = the data's                     → Argument
//!    sequence     batch_set::check_next after batch k − 1                            → Sequence (or Data)
//!    root         the leaves applied to the tree give h.newRoot, and roots(k)        → Root
//!  after batch K: the rebuilt root is lastRoot() (last_committed)                     → LastRoot
//!  ──▶ Rebuild: the state at the last batch that checked (every leaf, the tree, the
//!      market state), the batches read, the first Finding if any
//! ```
//!
//! A disagreement is a [`Finding`] (the first batch that differs and the field), not an
//! error: the caller reports it and exits 1, as `audit` does. Errors ([`RebuildError`]) are
//! a chain that cannot be read — one that does not answer, or answers something that is
//! not a batch's commit (`ChainError::Posted`). A leaf whose value does not fit in 128 bits
//! (the submitter's key can commit one: the contract never reads leaves) is neither: that
//! leaf's figures are unknown, with the reason, and every other leaf is valued as usual
//! ([`Rebuild::valued`], [`Totals`]).
//!
//! The checks are the file loader's, reused (`Batch::from_data`, `batch_set::check_next`):
//! a chain that rebuilds is one whose batches would load as batch files. A batch is named by
//! its index, and where the loader's message names files, by the file name it would have
//! (`batch-<index, 20 digits>.l2xb`). The chain is read as it stood at the first read
//! (`last_committed`); batches committed after it are not read.

use std::path::PathBuf;

use alloy_primitives::{B256, keccak256};

use crate::audit::{self, Value};
use crate::batch::{Batch, BatchError, Contents, FormatError, Header};
use crate::batch_set::{State, check_next};
use crate::chain::{Carrier, Chain, ChainError, Posted};
use crate::leaf::AccountLeaf;
use crate::market::{Market, ValueError};
use crate::tree::Proof;

/// A chain that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The chain: it does not answer, or answers something that is not a batch's commit.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// The first place where what the chain holds does not rebuild (each names the batch and
/// the field).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    /// The commit's arguments as read back do not give the commitment the contract stored:
    /// they are not the batch's commit.
    #[error("batch {index}: the chain has commitment {chain}, the posted arguments give {posted}")]
    Commitment {
        /// The batch.
        index: u64,
        /// `commitments(index)`.
        chain: B256,
        /// The posted arguments'.
        posted: B256,
    },
    /// The data does not hash to the header argument's `dataHash`.
    #[error("batch {index}: h.dataHash is {header}, but the posted data hashes to {data}")]
    DataHash {
        /// The batch.
        index: u64,
        /// `h.dataHash`.
        header: B256,
        /// `keccak256(data)`.
        data: B256,
    },
    /// The data does not decompress or decode, or breaks a rule of the batch format.
    #[error("batch {index}: the posted data: {field}: {why}")]
    Data {
        /// The batch.
        index: u64,
        /// The field of the format (`data` for data that does not decompress, `blobs` for
        /// a blob commit's blobs that do not decode: [`Posted::undecodable`]).
        field: &'static str,
        /// The rule it breaks.
        why: String,
    },
    /// An argument of the commit is not what the data says.
    #[error("batch {index}: argument {field} is {call}, but the posted data says {data}")]
    Argument {
        /// The batch.
        index: u64,
        /// The argument: `h.firstSeq`, …, `withdrawals`, `rejected`.
        field: &'static str,
        /// Its value in the call.
        call: String,
        /// The data's.
        data: String,
    },
    /// The batch does not follow the one before it (the loader's rules).
    #[error("batch {index}: {field}: {why}")]
    Sequence {
        /// The batch.
        index: u64,
        /// The header field.
        field: &'static str,
        /// What it should have been.
        why: String,
    },
    /// Every batch checked, but the chain's `lastRoot()` is not the root they give (the
    /// state is at batch `index`, the chain's last, which checked against `roots(index)`).
    #[error("after batch {index}: the batches give root {rebuilt}, but the chain's lastRoot is {last_root}")]
    LastRoot {
        /// The chain's last batch (`lastIndex()`).
        index: u64,
        /// The rebuilt root.
        rebuilt: B256,
        /// `lastRoot()`.
        last_root: B256,
    },
    /// The leaves, applied to the tree of the batches before, give another root.
    #[error("batch {index}: its leaves give root {rebuilt}, {whose} is {expected}")]
    Root {
        /// The batch.
        index: u64,
        /// The rebuilt root.
        rebuilt: B256,
        /// `"h.newRoot"` or `"the chain's roots(index)"`.
        whose: &'static str,
        /// Theirs.
        expected: B256,
    },
}

impl Finding {
    /// The batch where it was found.
    pub fn index(&self) -> u64 {
        match self {
            Finding::Commitment { index, .. }
            | Finding::DataHash { index, .. }
            | Finding::Data { index, .. }
            | Finding::Argument { index, .. }
            | Finding::Sequence { index, .. }
            | Finding::Root { index, .. }
            | Finding::LastRoot { index, .. } => *index,
        }
    }
}

/// A batch read from the chain and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// Its header, as its data and its commit's arguments say.
    pub header: Header,
    /// Where its data was found.
    pub carrier: Carrier,
}

/// What the chain rebuilds to.
#[derive(Clone, Debug)]
pub struct Rebuild {
    /// The chain's last committed batch when it was read (0: none).
    pub chain_last: u64,
    /// Its root (`0x00…00` for none).
    pub chain_root: B256,
    /// Every leaf, the tree and the market state as of the last batch that checked: batch
    /// `chain_last` unless there is a finding, the batch before it if there is (a
    /// [`Finding::LastRoot`] is after batch `chain_last`: the state is at it).
    pub state: State,
    /// The batches that checked, from batch 1.
    pub batches: Vec<Read>,
    /// The first disagreement (`None`: every batch checked and the root is the chain's).
    pub finding: Option<Finding>,
}

/// What escaping takes for one account: `escape(leaf, siblings, markets)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escape {
    /// The account's leaf.
    pub leaf: AccountLeaf,
    /// Its proof against the chain's last root, the root's child first.
    pub siblings: Vec<B256>,
    /// The market state committed with that root.
    pub markets: Vec<Market>,
}

/// Totals over every leaf (trading accounts, the insurance fund, the fee account).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Leaves.
    pub leaves: usize,
    /// Σ collateral.
    pub collateral: i128,
    /// Σ funding owed (`None`: a leaf's cannot be computed, or the sum does not fit in 128
    /// bits).
    pub funding_owed: Option<i128>,
    /// Σ equity (`None`: as for `funding_owed`).
    pub equity: Option<i128>,
    /// Leaves whose value does not fit in 128 bits (their figures are `None`).
    pub unvalued: usize,
    /// The sums that do not fit in 128 bits although every leaf's does (`"funding_owed"`,
    /// `"equity"`).
    pub overflow: Vec<&'static str>,
}

impl Rebuild {
    /// Whether every batch checked and the rebuilt root is the chain's last.
    pub fn agrees(&self) -> bool {
        self.finding.is_none()
    }

    /// The rebuilt root (of the state's batch).
    pub fn root(&self) -> B256 {
        self.state.tree.root()
    }

    /// Every leaf, in key order, with its value at the state's market state: `Err` for a
    /// leaf with a figure that does not fit in 128 bits (the account, the position, the
    /// figure), which leaves every other leaf's value as it is.
    pub fn valued(&self) -> Vec<(&AccountLeaf, Result<Value, ValueError>)> {
        self.state.leaves.values().map(|leaf| (leaf, audit::value_of(leaf, &self.state.markets))).collect()
    }

    /// The totals over every leaf: a sum is `None` if a leaf's figure is unknown (an
    /// instrument not listed or without a mark, or a value that does not fit: counted in
    /// `unvalued`) or if the sum itself does not fit (named in `overflow`).
    pub fn totals(&self) -> Totals {
        let mut totals = Totals {
            leaves: 0,
            collateral: 0,
            funding_owed: Some(0),
            equity: Some(0),
            unvalued: 0,
            overflow: Vec::new(),
        };
        let mut over = [false, false];
        let mut add = |sum: Option<i128>, v: Option<i128>, slot: usize| match (sum, v) {
            (Some(s), Some(v)) => {
                let total = s.checked_add(v);
                over[slot] |= total.is_none();
                total
            }
            _ => None,
        };
        for (leaf, value) in self.valued() {
            totals.leaves += 1;
            // At most 2^64 leaves of 63-bit collateral: it fits.
            totals.collateral = totals.collateral.saturating_add(i128::from(leaf.collateral));
            let value = value.unwrap_or_else(|_| {
                totals.unvalued += 1;
                Value { funding_owed: None, equity: None }
            });
            totals.funding_owed = add(totals.funding_owed, value.funding_owed, 0);
            totals.equity = add(totals.equity, value.equity, 1);
        }
        totals.overflow =
            ["funding_owed", "equity"].into_iter().zip(over).filter(|(_, o)| *o).map(|(n, _)| n).collect();
        totals
    }

    /// `account`'s proof (of inclusion or absence) against the rebuilt root.
    pub fn prove(&self, account: u64) -> Proof {
        self.state.tree.prove(account)
    }

    /// What `account` escapes with against the chain's last root: its leaf, its proof and
    /// the market state. `None` if it has no leaf, or if the rebuild has a finding (the
    /// state is not at the chain's last root then).
    pub fn escape(&self, account: u64) -> Option<Escape> {
        if !self.agrees() {
            return None;
        }
        let leaf = self.state.leaves.get(&account)?.clone();
        Some(Escape { leaf, siblings: self.prove(account).siblings, markets: self.state.markets.clone() })
    }
}

/// Rebuilds every leaf, the tree and the market state from what `chain` holds, batch 1 to
/// its last, checking each batch (see the module docs); stops at the first finding.
///
/// # Errors
/// [`RebuildError::Chain`]: the chain cannot be read, or answers something that is not a
/// batch's commit.
pub fn rebuild(chain: &mut dyn Chain) -> Result<Rebuild, RebuildError> {
    let (chain_last, chain_root) = chain.last_committed()?;
    let mut state = State::empty();
    let mut prev: Option<Batch> = None;
    let mut batches = Vec::new();
    for index in 1..=chain_last {
        let posted = chain.posted(index)?;
        let (root, commitment) = chain.committed(index)?;
        match next(&mut state, prev.as_ref(), &posted, index, (root, commitment)) {
            Ok(batch) => {
                batches.push(Read { header: batch.header, carrier: posted.carrier });
                prev = Some(batch);
            }
            Err(finding) => return Ok(Rebuild { chain_last, chain_root, state, batches, finding: Some(finding) }),
        }
    }
    let finding = (state.tree.root() != chain_root).then(|| Finding::LastRoot {
        index: chain_last,
        rebuilt: state.tree.root(),
        last_root: chain_root,
    });
    Ok(Rebuild { chain_last, chain_root, state, batches, finding })
}

/// Checks batch `index` as posted and applies it to `state` (left as it was on a finding).
fn next(
    state: &mut State,
    prev: Option<&Batch>,
    posted: &Posted,
    index: u64,
    (root, commitment): (B256, B256),
) -> Result<Batch, Finding> {
    let ours = posted.commitment();
    if ours != commitment {
        return Err(Finding::Commitment { index, chain: commitment, posted: ours });
    }
    if let Some(why) = &posted.undecodable {
        return Err(Finding::Data { index, field: "blobs", why: why.clone() });
    }
    let data_hash = keccak256(&posted.data);
    if data_hash != posted.h.dataHash {
        return Err(Finding::DataHash { index, header: posted.h.dataHash, data: data_hash });
    }
    let (batch, decoded) = Batch::from_data(posted.data.clone()).map_err(|e| data_finding(index, &e))?;
    arguments(index, posted, &batch, &decoded)?;
    let name = PathBuf::from(Batch::file_name(index));
    let previous = prev.map(|b| (b, state.markets.as_slice()));
    let (batch, contents) =
        check_next(&name, &batch.encode(), index, previous).map_err(|e| sequence_finding(index, e))?;
    let mut tree = state.tree.clone();
    let rebuilt = tree.update(contents.leaves.iter().map(|l| (l.account, Some(l.hash()))));
    if rebuilt != batch.header.new_root {
        return Err(Finding::Root { index, rebuilt, whose: "h.newRoot", expected: batch.header.new_root });
    }
    if rebuilt != root {
        return Err(Finding::Root { index, rebuilt, whose: "the chain's roots(index)", expected: root });
    }
    state.tree = tree;
    state.take(index, contents);
    Ok(batch)
}

/// The commit's arguments against the data: each header field, the withdrawals, the
/// refused entries.
fn arguments(index: u64, posted: &Posted, batch: &Batch, contents: &Contents) -> Result<(), Finding> {
    let (h, d) = (&posted.h, &batch.header);
    let numbers = [
        ("h.index", h.index, d.index),
        ("h.firstSeq", h.firstSeq, d.first_seq),
        ("h.lastSeq", h.lastSeq, d.last_seq),
        ("h.epochTs", h.epochTs, d.epoch_ts),
        ("h.queueCount", h.queueCount, d.queue_count),
    ];
    let roots = [
        ("h.prevRoot", h.prevRoot, d.prev_root),
        ("h.newRoot", h.newRoot, d.new_root),
        ("h.marketHash", h.marketHash, d.market_hash),
        ("h.queueHash", h.queueHash, d.queue_hash),
    ];
    let differ = |field, call: String, data: String| Err(Finding::Argument { index, field, call, data });
    if let Some((field, call, data)) = numbers.into_iter().find(|(_, c, d)| c != d) {
        return differ(field, call.to_string(), data.to_string());
    }
    if let Some((field, call, data)) = roots.into_iter().find(|(_, c, d)| c != d) {
        return differ(field, call.to_string(), data.to_string());
    }
    let call: Vec<(u64, u64)> = posted.withdrawals.iter().map(|w| (w.account, w.amount)).collect();
    let data: Vec<(u64, u64)> = contents.withdrawals.iter().map(|w| (w.account, w.amount)).collect();
    if let Some((call, data)) =
        first_difference(&call, &data, "withdrawal", |(a, m)| format!("(account {a}, amount {m})"))
    {
        return differ("withdrawals", call, data);
    }
    let show = |i: &u64| format!("queue index {i}");
    if let Some((call, data)) = first_difference(&posted.rejected, &contents.rejected, "refused entry", show) {
        return differ("rejected", call, data);
    }
    Ok(())
}

/// How two lists first differ, in words (`None`: equal).
fn first_difference<T: PartialEq>(
    call: &[T],
    data: &[T],
    item: &str,
    show: impl Fn(&T) -> String,
) -> Option<(String, String)> {
    if call.len() != data.len() {
        let items = |n: usize| format!("{n} item{}", if n == 1 { "" } else { "s" });
        return Some((items(call.len()), items(data.len())));
    }
    let i = call.iter().zip(data).position(|(c, d)| c != d)?;
    Some((format!("{item} {i}: {}", show(&call[i])), show(&data[i])))
}

/// A format error of the posted data as a finding: the field and the rule (file offsets
/// left out: the data has no file).
fn data_finding(index: u64, e: &FormatError) -> Finding {
    let (field, why) = match e {
        FormatError::Truncated { field, offset } => (*field, format!("truncated at raw byte {offset}")),
        FormatError::Header { field, why, .. } => (*field, why.clone()),
        FormatError::Raw { field, offset, why } => (*field, format!("raw byte {offset}: {why}")),
        FormatError::Data { why } => ("data", why.clone()),
        FormatError::DataHash => ("data_hash", "the data does not hash to it".into()),
        FormatError::Magic | FormatError::Version { .. } => ("data", e.to_string()),
    };
    Finding::Data { index, field, why }
}

/// A loader's error about a posted batch as a finding.
fn sequence_finding(index: u64, e: BatchError) -> Finding {
    match e {
        BatchError::Inconsistent { field, why, .. } => Finding::Sequence { index, field, why },
        BatchError::Damaged { what, .. } | BatchError::Format { what, .. } => data_finding(index, &what),
        other => Finding::Data { index, field: "data", why: other.to_string() },
    }
}
