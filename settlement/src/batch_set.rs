//! A directory of batch files, loaded and checked as a whole: the one place where every
//! `l2x settle` command (and anything else that reads batch files) validates them
//! (docs/SETTLEMENT.md, "Reading a set of batch files").
//!
//! ```text
//!  BatchSet::load(dir)
//!    names      batch-<20 digits>.l2xb only (other batch-*.l2xb names are refused; *.tmp,
//!               a write a crash interrupted, and other files are ignored)
//!    indexes    1, 2, …, n without gaps                                   → Missing
//!    each file  Batch::read: magic, version, header, data hash, content   → Damaged
//!               its header's index is its name's                          → Inconsistent (index)
//!    in order   first_seq = the previous last_seq + 1 (batch 1: seq 1)    → Inconsistent (first_seq)
//!               (commands ≤ last_seq − first_seq + 1: sequence numbers may have gaps)
//!               prev_root = the previous new_root (batch 1: 0x00…00)      → Inconsistent (prev_root)
//!               markets: never fewer, tick values fixed, a mark once set stays set
//!               queue_count ≥ the previous one (batch 1: ≥ 0)             → Inconsistent (queue_count)
//!               the same count: the same queue_hash                        → Inconsistent (queue_hash)
//!               rejected indexes > the previous queue_count (the decoder
//!               checked them increasing and ≤ this queue_count)            → Inconsistent (rejected)
//!               its leaves applied to the tree give new_root              → Inconsistent (new_root)
//! ```
//!
//! A set that loads is a chain of batches anyone could have rebuilt from the first: each
//! one's leaves lead from the root before it to its own. The per-file rules ([`check_next`])
//! are also what the submitter checks each batch against before committing it: a batch the
//! tools would refuse never reaches the chain. Whether it is *the exchange's*
//! chain is for the journal (`settle verify`) or the contract's roots to say.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alloy_primitives::B256;

use crate::batch::{Batch, BatchError, Contents};
use crate::leaf::AccountLeaf;
use crate::market::Market;
use crate::tree::Tree;

/// Every leaf and the tree as of one batch, rebuilt from the batch files alone.
#[derive(Clone, Debug)]
pub struct State {
    /// The batch.
    pub index: u64,
    /// The tree of every leaf (its root is the batch's new root).
    pub tree: Tree,
    /// Every leaf, by key.
    pub leaves: BTreeMap<u64, AccountLeaf>,
    /// The market state at the batch's epoch close.
    pub markets: Vec<Market>,
}

impl State {
    /// The state before batch 1: no leaf, the empty tree, no market.
    pub(crate) fn empty() -> State {
        State { index: 0, tree: Tree::new(), leaves: BTreeMap::new(), markets: Vec::new() }
    }

    /// Takes batch `index`'s leaves and market state, its leaves already applied to
    /// `self.tree` (by the caller, which checked the root they give).
    pub(crate) fn take(&mut self, index: u64, contents: Contents) {
        self.leaves.extend(contents.leaves.into_iter().map(|l| (l.account, l)));
        self.index = index;
        self.markets = contents.markets;
    }

    /// Applies the next batch (already checked to follow): its leaves must give its root.
    fn apply(&mut self, path: &Path, batch: &Batch, contents: Contents) -> Result<(), BatchError> {
        let root = self.tree.update(contents.leaves.iter().map(|l| (l.account, Some(l.hash()))));
        if root != batch.header.new_root {
            return Err(inconsistent(
                path,
                "new_root",
                format!("the header says {}, but its leaves give {root}", batch.header.new_root),
            ));
        }
        self.take(batch.header.index, contents);
        Ok(())
    }
}

/// A directory of batch files that all check ([`BatchSet::load`]).
#[derive(Clone, Debug)]
pub struct BatchSet {
    dir: PathBuf,
    batches: Vec<Batch>,
    last: State,
}

fn inconsistent(path: &Path, field: &'static str, why: String) -> BatchError {
    BatchError::Inconsistent { path: path.to_path_buf(), field, why }
}

/// What a directory entry's name says.
enum Name {
    /// Not a batch file (another file, or a temporary one).
    Other,
    /// `batch-<20 digits>.l2xb`.
    Batch(u64),
}

fn classify(path: &Path) -> Result<Name, BatchError> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return Ok(Name::Other) };
    let Some(middle) = name.strip_prefix("batch-").and_then(|n| n.strip_suffix(".l2xb")) else {
        return Ok(Name::Other);
    };
    match middle.parse::<u64>() {
        Ok(index) if Batch::file_name(index) == name => Ok(Name::Batch(index)),
        _ => Err(inconsistent(path, "file name", "not a batch file name: batch-<index, 20 digits>.l2xb".into())),
    }
}

/// The batch files of `dir` by index, names checked.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, BatchError> {
    let io = |source| BatchError::Io { path: dir.to_path_buf(), source };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if let Name::Batch(index) = classify(&path)? {
            found.push((index, path));
        }
    }
    found.sort();
    for (expected, (index, path)) in (1u64..).zip(&found) {
        if *index != expected {
            let after = if *index > expected {
                format!(", but {} is", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
            } else {
                String::new()
            };
            return Err(BatchError::Missing {
                dir: dir.to_path_buf(),
                index: expected,
                file: Batch::file_name(expected),
                after,
            });
        }
    }
    Ok(found)
}

/// Checks that `b` follows `prev` (the last batch before it): sequence range and roots.
fn check_follows(path: &Path, b: &Batch, prev: Option<&Batch>) -> Result<(), BatchError> {
    let h = &b.header;
    // The batch before is named by its file name (the loader checked that names and
    // indexes agree).
    let prev = prev.map(|pb| (path.with_file_name(Batch::file_name(pb.header.index)), pb));
    let (prev_last, prev_root, after) = match &prev {
        Some((p, pb)) => (pb.header.last_seq, pb.header.new_root, format!("{} ends", p.display())),
        None => (0, B256::ZERO, "batch 1 starts the set".into()),
    };
    if h.first_seq != prev_last + 1 {
        let why =
            format!("the header says {}, but {after} at seq {prev_last}: ranges continue without gaps", h.first_seq);
        return Err(inconsistent(path, "first_seq", why));
    }
    if h.prev_root != prev_root {
        let why = match &prev {
            Some((p, _)) => {
                format!("the header says {}, but the new_root of {} is {prev_root}", h.prev_root, p.display())
            }
            None => {
                format!("the header says {}, but batch 1 starts from the empty tree's root {prev_root}", h.prev_root)
            }
        };
        return Err(inconsistent(path, "prev_root", why));
    }
    Ok(())
}

/// Checks that a batch's market state can follow the previous one: instruments are only
/// added, their tick values never change, a mark once set stays set.
fn check_markets(path: &Path, markets: &[Market], prev: &[Market]) -> Result<(), BatchError> {
    if markets.len() < prev.len() {
        let why = format!("{} instruments, but the batch before lists {}", markets.len(), prev.len());
        return Err(inconsistent(path, "markets", why));
    }
    for (m, p) in markets.iter().zip(prev) {
        if m.tickValue != p.tickValue {
            let why = format!(
                "instrument {}: tick value {}, the batch before had {}",
                m.instrument, m.tickValue, p.tickValue
            );
            return Err(inconsistent(path, "markets", why));
        }
        if m.mark == 0 && p.mark != 0 {
            let why = format!("instrument {}: no mark, the batch before had {}", m.instrument, p.mark);
            return Err(inconsistent(path, "markets", why));
        }
    }
    Ok(())
}

/// Checks that a batch's L1 queue fields continue the previous batch's: the count never
/// decreases, an unchanged count keeps its hash, and the refused entries are entries this
/// batch took (after the previous count; the decoder checked the upper bound and the order).
fn check_queue(path: &Path, b: &Batch, contents: &Contents, prev: Option<&Batch>) -> Result<(), BatchError> {
    let (count, hash) = (b.header.queue_count, b.header.queue_hash);
    let (prev_count, prev_hash) = prev.map_or((0, B256::ZERO), |pb| (pb.header.queue_count, pb.header.queue_hash));
    if count < prev_count {
        let why = format!("{count}, but the batch before had taken {prev_count} queue entries: it never decreases");
        return Err(inconsistent(path, "queue_count", why));
    }
    if count == prev_count && hash != prev_hash {
        let why = format!("{hash}, but no entry was taken since the batch before, whose hash is {prev_hash}");
        return Err(inconsistent(path, "queue_hash", why));
    }
    if let Some(&first) = contents.rejected.first()
        && first <= prev_count
    {
        let why = format!("index {first}, but the batch before had taken entries 1..={prev_count} already");
        return Err(inconsistent(path, "rejected", why));
    }
    Ok(())
}

/// Checks one batch file's bytes as [`BatchSet::load`] checks each file of a set, given the
/// batch before it and that batch's market state (`None`: it is batch 1): the bytes decode
/// ([`Batch::decode`]: every field, the data hash, the content), the header's index is
/// `index` (the file name's), its sequence range and `prev_root` continue the previous
/// batch's, and its market state can follow the previous one. Returns the batch and its
/// decoded content. (What the loader checks beyond this needs every batch before: that the
/// leaves lead from `prev_root` to `new_root`.)
///
/// # Errors
/// [`BatchError::Damaged`] or [`BatchError::Inconsistent`] naming `path` and the field.
pub fn check_next(
    path: &Path,
    bytes: &[u8],
    index: u64,
    prev: Option<(&Batch, &[Market])>,
) -> Result<(Batch, Contents), BatchError> {
    let b = Batch::decode(bytes).map_err(|what| BatchError::Damaged { path: path.to_path_buf(), what })?;
    if b.header.index != index {
        let why = format!("the header says {}, but the file name says {index}", b.header.index);
        return Err(inconsistent(path, "index", why));
    }
    check_follows(path, &b, prev.map(|(pb, _)| pb))?;
    let contents = b.contents().map_err(|what| BatchError::Damaged { path: path.to_path_buf(), what })?;
    check_markets(path, &contents.markets, prev.map_or(&[], |(_, m)| m))?;
    check_queue(path, &b, &contents, prev.map(|(pb, _)| pb))?;
    Ok((b, contents))
}

impl BatchSet {
    /// Reads every batch file of `dir` and checks each and all of them together (the
    /// module's list). An empty directory is an empty set.
    ///
    /// # Errors
    /// [`BatchError`] naming the first file (and field) that is wrong, or the first
    /// missing batch.
    pub fn load(dir: &Path) -> Result<BatchSet, BatchError> {
        let files = list(dir)?;
        let mut batches: Vec<Batch> = Vec::with_capacity(files.len());
        let mut state = State::empty();
        for (index, path) in &files {
            let bytes = std::fs::read(path).map_err(|source| BatchError::Io { path: path.clone(), source })?;
            let prev = batches.last().map(|pb| (pb, state.markets.as_slice()));
            let (b, contents) = check_next(path, &bytes, *index, prev)?;
            state.apply(path, &b, contents)?;
            batches.push(b);
        }
        Ok(BatchSet { dir: dir.to_path_buf(), batches, last: state })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The batches, from batch 1.
    pub fn batches(&self) -> &[Batch] {
        &self.batches
    }

    /// The last batch, if any.
    pub fn last(&self) -> Option<&Batch> {
        self.batches.last()
    }

    /// Batch `index`, if the set has it.
    pub fn get(&self, index: u64) -> Option<&Batch> {
        let i = usize::try_from(index.checked_sub(1)?).ok()?;
        self.batches.get(i)
    }

    /// Every leaf, the tree and the market state as of batch `index` (`None` if the set
    /// does not have it).
    pub fn state_at(&self, index: u64) -> Option<State> {
        self.get(index)?;
        if index == self.last.index {
            return Some(self.last.clone());
        }
        let mut state = State::empty();
        for b in self.batches.iter().take_while(|b| b.header.index <= index) {
            // Every batch decoded and applied when the set was loaded: this cannot fail.
            let contents = b.contents().ok()?;
            state.tree.update(contents.leaves.iter().map(|l| (l.account, Some(l.hash()))));
            state.leaves.extend(contents.leaves.into_iter().map(|l| (l.account, l)));
            state.markets = contents.markets;
            state.index = b.header.index;
        }
        Some(state)
    }
}
