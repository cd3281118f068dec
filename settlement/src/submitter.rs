//! The submitter: puts the journal's epochs on the chain, one batch at a time, and never a
//! root that the journal does not reproduce (docs/SETTLEMENT.md, "Submitter").
//!
//! ```text
//!  journal ──epoch::Follower──▶ epochs ──Batch::of──▶ batch files (written, or checked
//!           (applies only the commands              against what is there)
//!            after the last one read)
//!  chain.last_committed() = k
//!     k > epochs                          ──▶ stop: ChainAhead
//!     batches 1..=k not compared yet: root or commitment ≠ the journal's
//!                                         ──▶ stop: Mismatch { the first }  (nothing committed)
//!     otherwise: check batch k+1 as the batch-set loader checks a file after batch k's
//!                (batch_set::check_next on its encoded bytes)  ──▶ refused: stop, nothing sent
//!                commit batch k+1 (calldata or blobs: `posting`), read the chain again,
//!                until it has every epoch
//! ```
//!
//! A committed batch's commitment is compared in either data mode (`chain::committed_as`):
//! the mode may change between restarts, and a chain may hold batches of both.
//!
//! The first pass loads the batch directory as it finds it, whole
//! ([`BatchSet::load`], as `status`, `prove` and `verify` do): a stray, misnamed, damaged or
//! foreign file stops the submitter before it reads the journal or sends anything.
//!
//! Resuming is reading the chain: after a restart the submitter asks the contract for its
//! last index and root and continues after it, so a batch committed just before a crash is
//! never sent twice, and one whose transaction never landed is sent again. The contract
//! refuses a wrong index or previous root as well, but the submitter does not rely on that:
//! it reads the chain before every commit and stops on any disagreement. Every committed
//! batch's root and commitment are compared with the journal's once per submitter (the
//! contract checks that each batch starts from the previous root, but a new root is the
//! submitter's word: agreeing on the last one alone would not prove the earlier ones).
//!
//! A live journal is read up to the sequence number its writer publishes
//! ([`Submitter::reading_up_to`]). Where that number is not durable yet (`durability = os`),
//! each pass makes the journal durable between reading the number and reading the journal
//! ([`Submitter::syncing_before_reading`], with the pipeline's `JournalSyncer`):
//! a committed root is irreversible, so it is never built on a record a power cut could
//! take back.

use std::path::PathBuf;

use alloy::primitives::B256;
use l2x_risk::Ledger;
use l2x_sequencer::journal::JournalError;

use crate::batch::{Batch, BatchError};
use crate::batch_set::BatchSet;
use crate::chain::{Chain, ChainError, Da, commitment, committed_as};
use crate::epoch::{Follower, Policy};

/// Why the submitter stopped.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Reading the journal.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Making the journal durable before reading it (nothing was read).
    #[error("making the journal durable before reading it: {0}")]
    Durable(JournalError),
    /// A batch file.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// The chain.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A batch file on disk is not what the journal gives.
    #[error("{path}: the batch file is not what the journal gives for batch {index}")]
    LocalMismatch {
        /// The batch.
        index: u64,
        /// The file.
        path: PathBuf,
    },
    /// The chain's root for a batch is not the journal's.
    #[error("batch {index}: the chain has root {chain}, the journal gives {journal}")]
    Mismatch {
        /// The first batch that differs.
        index: u64,
        /// The chain's root.
        chain: B256,
        /// The journal's.
        journal: B256,
    },
    /// The chain's commitment for a batch is that of the batch's file in neither data mode
    /// (the roots agree: the batch was posted with other data — a lost file recompressed by
    /// another zstd, or another encoding — or other queue fields).
    #[error(
        "batch {index}: the chain has commitment {chain}, the batch file's commit gives {ours} (data in calldata; in blobs another, which differs too)"
    )]
    CommitmentMismatch {
        /// The first batch that differs.
        index: u64,
        /// The chain's commitment.
        chain: B256,
        /// The batch file's, with its data in calldata.
        ours: B256,
    },
    /// A batch the batch-set loader would refuse after the one before it (a bug in what the
    /// submitter built): it is not committed, so the chain never holds a batch that `settle
    /// verify`, `status`, `prove` and `replay --verify-roots` refuse to read.
    #[error("batch {index} was not committed: the batch files would not load with it: {what}")]
    Refused {
        /// The batch.
        index: u64,
        /// What the loader would say.
        what: BatchError,
    },
    /// The chain has more batches than the journal closes.
    #[error("the chain has {chain} batches, the journal closes only {journal}")]
    ChainAhead {
        /// Batches on the chain.
        chain: u64,
        /// Epochs the journal closes.
        journal: u64,
    },
}

/// What one pass did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synced {
    /// Epochs the journal closes.
    pub epochs: u64,
    /// Batches the chain had before.
    pub committed_before: u64,
    /// Batches committed by this pass.
    pub committed: u64,
    /// The chain's last root after it.
    pub root: B256,
}

/// Where the submitter reads and writes, how far it has read the journal and checked the
/// chain.
#[derive(Debug)]
pub struct Submitter {
    journal: PathBuf,
    batches: PathBuf,
    /// Committed batches already compared with the journal (0: none yet).
    verified: u64,
    /// The journal read so far (each pass applies only the commands after it).
    follower: Follower,
    /// The batch of every epoch closed so far.
    closed: Vec<Batch>,
    /// How many of them have their file written or checked (only those are committed).
    stored: usize,
    /// How far the journal may be read: the writer's published sequence number, for a
    /// journal being written (`None`: to its end).
    until: Option<PublishedSeq>,
    /// What makes the journal durable up to that number before a pass reads it (`None`: it
    /// already is).
    sync_first: Option<SyncFirst>,
    /// Whether the batch directory as found was loaded and checked whole (the first pass
    /// does it; later files are this submitter's own, each checked as it is stored).
    dir_checked: bool,
    /// How each batch's data is posted.
    da: Da,
}

/// Makes a journal durable up to what a pass is about to read (see
/// [`Submitter::syncing_before_reading`]).
struct SyncFirst(Box<dyn FnMut() -> Result<(), JournalError> + Send>);

impl std::fmt::Debug for SyncFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncFirst")
    }
}

/// The last sequence number a journal's writer has published as readable (and, with
/// `durability = fsync`, durable): a live journal is read up to it and no further.
pub struct PublishedSeq(Box<dyn Fn() -> u64 + Send>);

impl PublishedSeq {
    /// The published sequence number as `f` reads it now.
    pub fn new(f: impl Fn() -> u64 + Send + 'static) -> PublishedSeq {
        PublishedSeq(Box::new(f))
    }
}

impl std::fmt::Debug for PublishedSeq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PublishedSeq").field(&(self.0)()).finish()
    }
}

impl Submitter {
    /// A submitter of the journal in `journal`, writing batch files into `batches`, with
    /// this epoch policy and the risk configuration the journal is replayed with.
    pub fn new(journal: PathBuf, batches: PathBuf, policy: Policy, ledger: Ledger) -> Submitter {
        Submitter {
            journal,
            batches,
            verified: 0,
            follower: Follower::new(policy, &ledger),
            closed: Vec::new(),
            stored: 0,
            until: None,
            sync_first: None,
            dir_checked: false,
            da: Da::Calldata,
        }
    }

    /// Posts each batch's data as `da` says (default: calldata). Batches already on chain
    /// are compared whatever mode committed them: a chain may hold both.
    pub fn posting(mut self, da: Da) -> Submitter {
        self.da = da;
        self
    }

    /// Reads the journal only up to the sequence number `published` gives at each pass: for
    /// a journal its writer is appending to (the node's), so that a pass never reads the
    /// record being written, nor (with `durability = fsync`) one a machine failure could
    /// still take back.
    pub fn reading_up_to(mut self, published: PublishedSeq) -> Submitter {
        self.until = Some(published);
        self
    }

    /// Calls `sync` at each pass after reading the published sequence number and before
    /// reading the journal: for a writer that publishes records before they are durable
    /// (`durability = os`), `sync` makes durable what the pass will read — every record
    /// appended before it is called (the pipeline's `JournalSyncer::sync`). A pass
    /// whose `sync` fails reads nothing ([`SubmitError::Durable`]); the next one tries again.
    pub fn syncing_before_reading(
        mut self,
        sync: impl FnMut() -> Result<(), JournalError> + Send + 'static,
    ) -> Submitter {
        self.sync_first = Some(SyncFirst(Box::new(sync)));
        self
    }

    /// Reads the journal's commands after the last one read: up to the published sequence
    /// number read first, made durable second (if it is not already).
    fn follow(&mut self) -> Result<(), SubmitError> {
        let mut epochs = Vec::new();
        let until = self.until.as_ref().map_or(u64::MAX, |p| (p.0)());
        if let Some(SyncFirst(sync)) = &mut self.sync_first {
            sync().map_err(SubmitError::Durable)?;
        }
        let read = self.follower.read(&self.journal, &mut epochs, until);
        self.closed.extend(epochs.iter().map(Batch::of));
        Ok(read?)
    }

    /// Reads the journal's new commands (all of it on the first pass), writes (or checks)
    /// the batch files of the epochs they closed, and commits every batch the chain does not
    /// have yet.
    ///
    /// # Errors
    /// [`SubmitError`]; on a disagreement nothing more is committed.
    pub fn sync(&mut self, chain: &mut dyn Chain) -> Result<Synced, SubmitError> {
        if !self.dir_checked {
            // Every file already there, as every command that reads batch files checks it:
            // a stray, misnamed or foreign file stops the submitter before it reads or sends.
            if self.batches.exists() {
                BatchSet::load(&self.batches)?;
            }
            self.dir_checked = true;
        }
        self.follow()?;
        std::fs::create_dir_all(&self.batches)
            .map_err(|source| BatchError::Io { path: self.batches.clone(), source })?;
        // Every batch not stored yet (also those of a pass that failed half-way).
        while let Some(b) = self.closed.get(self.stored) {
            let stored = self.store(b)?;
            self.closed[self.stored] = stored;
            self.stored += 1;
        }
        let closed = std::mem::take(&mut self.closed);
        let result = self.sync_batches(&closed, chain);
        self.closed = closed;
        result
    }

    fn sync_batches(&mut self, batches: &[Batch], chain: &mut dyn Chain) -> Result<Synced, SubmitError> {
        let (before, _) = chain.last_committed()?;
        let mut committed = 0;
        loop {
            let (k, root) = chain.last_committed()?;
            if k > batches.len() as u64 {
                return Err(SubmitError::ChainAhead { chain: k, journal: batches.len() as u64 });
            }
            // Every committed batch this submitter has not compared yet, oldest first: the
            // first that differs is named. (The batch it committed itself is compared on the
            // next turn, like any other.)
            while self.verified < k {
                let index = self.verified + 1;
                let mine = &batches[usize::try_from(index - 1).unwrap_or(usize::MAX)];
                let (chain_root, chain_commitment) = chain.committed(index)?;
                if chain_root != mine.header.new_root {
                    return Err(SubmitError::Mismatch { index, chain: chain_root, journal: mine.header.new_root });
                }
                if committed_as(mine, chain_commitment)?.is_none() {
                    let ours = commitment(mine, Da::Calldata)?;
                    return Err(SubmitError::CommitmentMismatch { index, chain: chain_commitment, ours });
                }
                self.verified = index;
            }
            let Some(next) = batches.get(usize::try_from(k).unwrap_or(usize::MAX)) else {
                return Ok(Synced { epochs: batches.len() as u64, committed_before: before, committed, root });
            };
            self.check_before_commit(batches, k)?;
            chain.commit_as(next, self.da)?;
            committed += 1;
        }
    }

    /// Checks batch `k + 1` (`batches[k]`) as [`BatchSet::load`](crate::batch_set::BatchSet::load)
    /// would check its file after batch `k`'s: its encoded bytes decode, and it continues
    /// batch `k` (index, sequence range, previous root, market state).
    fn check_before_commit(&self, batches: &[Batch], k: u64) -> Result<(), SubmitError> {
        let index = k + 1;
        let refused = |what| SubmitError::Refused { index, what };
        let at = |i: u64| batches.get(usize::try_from(i).unwrap_or(usize::MAX));
        let Some(next) = at(k) else { return Ok(()) };
        let prev = match k.checked_sub(1).and_then(at) {
            Some(pb) => {
                let markets =
                    pb.markets().map_err(|what| refused(BatchError::Format { index: pb.header.index, what }))?;
                Some((pb, markets))
            }
            None => None,
        };
        let path = self.batches.join(Batch::file_name(index));
        let prev = prev.as_ref().map(|(pb, m)| (*pb, m.as_slice()));
        crate::batch_set::check_next(&path, &next.encode(), index, prev).map_err(refused)?;
        Ok(())
    }

    /// Writes a batch file, or checks the one already there; returns the batch as stored.
    /// A file with the same content is kept as it is: it may be on chain already, and its
    /// data (compressed by whatever zstd wrote it) is what the chain's commitment binds.
    fn store(&self, batch: &Batch) -> Result<Batch, SubmitError> {
        let path = self.batches.join(Batch::file_name(batch.header.index));
        if path.exists() {
            let on_disk = Batch::read(&path)?;
            if !on_disk.same_content(batch) {
                return Err(SubmitError::LocalMismatch { index: batch.header.index, path });
            }
            return Ok(on_disk);
        }
        batch.write(&self.batches)?;
        Ok(batch.clone())
    }
}

#[cfg(test)]
mod tests;
