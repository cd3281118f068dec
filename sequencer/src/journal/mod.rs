//! The journal: every sequenced command, appended before its effects are released, in
//! memory-mapped segment files. Recovery, replay and the risk desks' tools all read it back.
//! The format is specified byte by byte in `docs/JOURNAL.md`.
//!
//! # Layout
//!
//! ```text
//!  DIR/
//!    LOCK                       held (flock) by the one writer; the OS releases it on exit
//!    journal-00000000.l2xj      segment 0: 96-byte header, then records back to back
//!    journal-00000001.l2xj      segment 1: its header names segment 0's last record;
//!                               segment 0 ends with a seal saying segment 1 exists
//!    journal.end                the end marker, while the writer is stopped cleanly
//!    snapshot-…0001234.l2xs     state after command 1234, bound to this journal's id and
//!                               the CRC of record 1234 (see `snapshot`)
//! ```
//!
//! Segments are created at full size (zero-filled, sparse) and mapped with memmap2; an
//! append is a `memcpy` into the mapping ([`JournalWriter::append`]). After it the command is
//! in the OS page cache: it survives the process being killed (`durability = os`). An
//! `fsync` of the segment files ([`JournalSyncer`], on its own thread) makes it survive the
//! machine failing (`durability = fsync`).
//!
//! # One reader, one rule
//!
//! Everything that reads a journal goes through [`Journal::read`] (directly, or through
//! [`scan`], [`replay`], [`recover`]): the history is proven continuous from the journal's
//! start, or from a snapshot's point, to where the read stops, and a read that reaches the
//! end proves the end as far as the format allows (see `read` for the rules and
//! docs/JOURNAL.md, "What a reader can and cannot detect"). A damaged block is the torn tail
//! only when nothing valid follows it; anything else is an error naming the segment and the
//! byte offset, and a writer modifies nothing before its read has decided.

mod end;
mod read;
mod record;
mod recovery;
mod segment;
pub mod snapshot;
mod truncate;
mod walk;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};

pub use self::read::{Journal, ScanReport, TornTail, first_seqs, scan, segments};
pub use self::record::{MAX_RECORD, encoded_len};
pub use self::recovery::{RecoveryReport, Start, read_after, recover, replay, start};
pub use self::truncate::{TruncateError, Truncated, truncate_and_report, truncate_at_damage};
pub use self::write::{JournalSyncer, JournalWriter};

/// Default segment size: 64 MiB (about a million records).
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// A journal's identity: 16 bytes chosen at random when its first segment is created, and
/// written into every segment header and every snapshot of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct JournalId(pub [u8; 16]);

impl JournalId {
    /// A fresh identity from the operating system's random source.
    ///
    /// # Errors
    /// The random source failed.
    pub(crate) fn generate() -> Result<JournalId, std::io::Error> {
        let mut id = [0u8; 16];
        #[allow(
            clippy::disallowed_methods,
            reason = "a journal's identity is not state: it names the files, never reaches the state hash"
        )]
        getrandom::fill(&mut id).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(JournalId(id))
    }
}

impl fmt::Display for JournalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for JournalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JournalId({self})")
    }
}

/// A point in a journal's history: just after the record `seq`, whose CRC is `crc`.
/// [`Point::START`] is before the first record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Point {
    /// The record's sequence number (0: none).
    pub seq: u64,
    /// The record's CRC32C (0: none).
    pub crc: u32,
}

impl Point {
    /// Before the first record.
    pub const START: Point = Point { seq: 0, crc: 0 };
}

/// Anything that went wrong reading or writing a journal. Messages name the file, and for
/// damaged data the byte offset.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A directory that holds no journal (no segment files, and nothing saying it had any).
    #[error("{dir}: there is no journal here (no journal-*.l2xj segment files)")]
    NoJournal {
        /// The directory.
        dir: PathBuf,
    },
    /// A segment file that is not a valid segment.
    #[error("{path}: {what}")]
    BadSegment {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A segment written by a newer format version.
    #[error("{path}: journal format version {version} is newer than this l2x understands (2)")]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// Its version.
        version: u32,
    },
    /// A segment of an older format version, which this l2x does not read.
    #[error("{path}: journal format version {version} was written by an older l2x; this one reads version 2 only")]
    OlderFormat {
        /// The file.
        path: PathBuf,
        /// Its version.
        version: u32,
    },
    /// A segment of another journal.
    #[error("{path}: the segment belongs to journal {found}, the others to journal {expected}")]
    ForeignSegment {
        /// The file.
        path: PathBuf,
        /// Its journal id.
        found: JournalId,
        /// The journal's.
        expected: JournalId,
    },
    /// A segment missing from the journal.
    #[error("{dir}: segment {index} is missing: {what}")]
    MissingSegment {
        /// The journal directory.
        dir: PathBuf,
        /// The missing index.
        index: u64,
        /// What says it existed, and which records are gone.
        what: String,
    },
    /// A segment whose header does not name the last record before it.
    #[error("{path}: records are missing or replaced before this segment: {what}")]
    Chain {
        /// The segment file.
        path: PathBuf,
        /// The two records.
        what: String,
    },
    /// A damaged record that is not the torn tail.
    #[error("{path}: corrupt record at byte offset {offset}: {what}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record in the file.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A read asked to start at a point that is not in the journal.
    #[error("{dir}: no record {} with CRC {:08x} in this journal: {what}", point.seq, point.crc)]
    PointNotInJournal {
        /// The journal directory.
        dir: PathBuf,
        /// The point.
        point: Point,
        /// What the journal has instead.
        what: String,
    },
    /// A snapshot of this journal that is not a state of it: past its end (records are
    /// missing) or after another record with the same number.
    #[error("{path}: this snapshot is not a state of the journal: {source}")]
    SnapshotNotInJournal {
        /// The snapshot file.
        path: PathBuf,
        /// Why.
        source: Box<JournalError>,
    },
    /// An end marker that cannot be read or does not belong to the journal.
    #[error("{path}: {what}")]
    BadEndMarker {
        /// The marker file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A journal that does not end where its clean stop recorded.
    #[error("{path}: {what}")]
    EndMismatch {
        /// The marker file.
        path: PathBuf,
        /// Where each says the journal ends.
        what: String,
    },
    /// Another process holds the journal's lock.
    #[error("{0}: the journal is locked by another writer")]
    Locked(PathBuf),
    /// An append out of sequence order.
    #[error("{dir}: sequence {seq} is not after the journal's last sequence {last}")]
    OutOfOrder {
        /// The journal directory.
        dir: PathBuf,
        /// The appended sequence number.
        seq: u64,
        /// The last one in the journal.
        last: u64,
    },
}

fn io(path: &Path, source: std::io::Error) -> JournalError {
    JournalError::Io { path: path.to_path_buf(), source }
}

/// `fsync`s a directory, so that the names created or removed in it survive a machine
/// failure.
fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, e))
}
