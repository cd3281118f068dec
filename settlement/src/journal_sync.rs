//! Making a live journal durable before the submitter reads it (docs/SETTLEMENT.md,
//! "Submitter").
//!
//! Under `durability = os` the node publishes a command as readable once it is in the
//! memory-mapped journal (the OS page cache): it survives the process, not the machine. A
//! root committed on such records is irreversible, and after a power cut the journal could
//! be shorter than what the chain holds. So, under `os`, each submitter pass first reads the
//! published sequence number, then `fsync`s the journal's segment files
//! ([`JournalSync::sync`]), then reads up to that number: everything it reads, and commits,
//! is on disk. (Under `fsync` the node publishes only records a group commit has covered.)
//!
//! ```text
//!  DIR/journal-NNNNNNNN.l2xj   segments, numbered from 0
//!  sync:  segments from the newest one of the last sync on (all of them the first time):
//!         open read-only, fdatasync; the directory too when a segment appeared since
//! ```
//!
//! On Linux, `fsync` of any descriptor of a file writes back the pages dirtied through the
//! writer's shared mapping (as the journal's own group commit does).

use std::fs::File;
use std::path::{Path, PathBuf};

use l2x_sequencer::journal::{self, JournalError};

/// Syncs a journal's segment files pass after pass, each time those written since the
/// last.
#[derive(Debug)]
pub struct JournalSync {
    dir: PathBuf,
    /// The newest segment of the last sync (`None`: no sync yet). Segments before it were
    /// complete when it was synced: nothing is appended to them any more.
    newest: Option<u64>,
}

/// What one [`JournalSync::sync`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncReport {
    /// The segments it `fsync`ed, by index, in order.
    pub segments: Vec<u64>,
    /// Whether it `fsync`ed the directory (a segment appeared since the last sync).
    pub dir: bool,
}

impl JournalSync {
    /// A syncer of the journal in `dir`; its first sync covers every segment.
    pub fn new(dir: PathBuf) -> JournalSync {
        JournalSync { dir, newest: None }
    }

    /// `fsync`s every segment that may have been written since the last call (the newest
    /// one of the last call, and every later one; all of them on the first call), and the
    /// directory when a segment appeared since: every record appended before this call is
    /// then on disk.
    ///
    /// # Errors
    /// [`JournalError::Io`] naming the file or directory; the journal's errors listing its
    /// segments (a missing segment).
    pub fn sync(&mut self) -> Result<SyncReport, JournalError> {
        let all = journal::segments(&self.dir)?;
        let from = self.newest.unwrap_or(0);
        let mut report = SyncReport { segments: Vec::new(), dir: false };
        for (index, path) in all.iter().filter(|(index, _)| *index >= from) {
            sync_data(path)?;
            report.segments.push(*index);
        }
        let newest = all.last().map(|(index, _)| *index);
        if newest.is_some() && (self.newest.is_none() || newest > self.newest) {
            // A new segment's name must survive a machine failure with its records.
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|source| JournalError::Io { path: self.dir.clone(), source })?;
            report.dir = true;
        }
        self.newest = newest.or(self.newest);
        Ok(report)
    }
}

fn sync_data(path: &Path) -> Result<(), JournalError> {
    File::open(path).and_then(|f| f.sync_data()).map_err(|source| JournalError::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use l2x_sequencer::journal::JournalWriter;
    use l2x_types::{AccountId, Amount, Command, Holder, Seq, Sequenced, Timestamp};

    use super::*;

    /// Appends deposits after `seq` until the journal has `n` segments; returns the last seq.
    fn grow_to(w: &mut JournalWriter, dir: &Path, mut seq: u64, n: usize) -> u64 {
        while journal::segments(dir).map_or(0, |s| s.len()) < n {
            seq += 1;
            let to = Holder::Account(AccountId(seq));
            let cmd = Sequenced { seq: Seq(seq), ts: Timestamp(seq), cmd: Command::Deposit { to, amount: Amount(1) } };
            w.append(&cmd).unwrap_or_else(|e| panic!("{e}"));
        }
        seq
    }

    /// Issue 14 review: under `durability = os` the submitter read records that were not
    /// durable. Each sync covers every segment written since the last one (the newest of the
    /// last sync, which may have grown, and every later one) and the directory when a
    /// segment appeared.
    #[test]
    fn the_journal_sync_fsyncs_the_segments_written_since_the_last_pass() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // The smallest segments the writer makes: a few records each.
        let (mut w, _) = JournalWriter::open(dir.path(), 0).unwrap_or_else(|e| panic!("{e}"));
        let seq = grow_to(&mut w, dir.path(), 0, 3);
        let mut sync = JournalSync::new(dir.path().to_path_buf());
        let report = |s: &mut JournalSync| s.sync().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report(&mut sync), SyncReport { segments: vec![0, 1, 2], dir: true }, "all of them first");
        assert_eq!(report(&mut sync), SyncReport { segments: vec![2], dir: false }, "the newest again");
        grow_to(&mut w, dir.path(), seq, 5);
        assert_eq!(report(&mut sync), SyncReport { segments: vec![2, 3, 4], dir: true });
        let gone = dir.path().join("gone");
        let err = JournalSync::new(gone.clone()).sync().unwrap_err();
        assert!(err.to_string().contains(&gone.display().to_string()), "{err}");
    }
}
