//! The journal: every sequenced command, appended before its effects are released, in
//! memory-mapped segment files. Recovery, replay and the risk desks' tools all read it back.
//! The format is specified byte by byte in `docs/JOURNAL.md`.
//!
//! # Layout
//!
//! ```text
//!  DIR/
//!    LOCK                       held (flock) by the one writer; the OS releases it on exit
//!    journal-00000000.l2xj      segment 0: 64-byte header, then records back to back
//!    journal-00000001.l2xj      segment 1 (rolled when the next record did not fit)
//!    snapshot-…0001234.l2xs     state after command 1234 (see `snapshot`)
//! ```
//!
//! Segments are created at full size (zero-filled, sparse) and mapped with memmap2; an
//! append is a `memcpy` into the mapping ([`JournalWriter::append`]). After it the command is
//! in the OS page cache: it survives the process being killed (`durability = os`). An
//! `fsync` of the segment files ([`JournalSyncer`], on its own thread) makes it survive the
//! machine failing (`durability = fsync`).
//!
//! # Reading back, and what counts as damage
//!
//! [`scan`] walks every record in order, validating each one (length, CRC32C, layout,
//! strictly increasing sequence numbers). A record that fails is classified:
//!
//! - **torn tail** — nothing but zeros from one maximal record length past its start to the
//!   end of the journal: the process died in the middle of that append. Its bytes are
//!   reported (and, on recovery, zeroed); the commands before it are intact.
//! - **corruption** — anything else (valid-looking data after the bad record): an error
//!   naming the segment file and the byte offset. Never skipped.
//!
//! A damaged *final* record is indistinguishable from a torn one; in `durability = os` that
//! record's events were never released (the append is the last step before release only
//! once it completed), so truncating it loses nothing that was acknowledged.

mod record;
mod segment;
pub mod snapshot;

use std::fs::{self, File, OpenOptions};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use l2x_risk::Ledger;
use l2x_types::Sequenced;
use memmap2::Mmap;

use crate::state::StateMachine;

pub use self::record::MAX_RECORD;
use self::segment::{HEADER_LEN, Header, Segment};

/// Default segment size: 64 MiB (about a million records).
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

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
    /// A segment file that is not a valid segment.
    #[error("{path}: {what}")]
    BadSegment {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A segment written by a newer format version.
    #[error("{path}: journal format version {version} is newer than this l2x understands (1)")]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// Its version.
        version: u32,
    },
    /// A segment missing from the sequence of segment files.
    #[error("{dir}: segment {index} is missing (found segments before and after it)")]
    MissingSegment {
        /// The journal directory.
        dir: PathBuf,
        /// The missing index.
        index: u64,
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
    /// Another process holds the journal's lock.
    #[error("{0}: the journal is locked by another writer")]
    Locked(PathBuf),
    /// An append out of sequence order.
    #[error("sequence {seq} is not after the journal's last sequence {last}")]
    OutOfOrder {
        /// The appended sequence number.
        seq: u64,
        /// The last one in the journal.
        last: u64,
    },
}

fn io(path: &Path, source: std::io::Error) -> JournalError {
    JournalError::Io { path: path.to_path_buf(), source }
}

/// A torn final record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub path: PathBuf,
    /// Byte offset of the torn record.
    pub offset: u64,
    /// Non-zero bytes found from there on.
    pub bytes: u64,
}

/// What a scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Records read (and passed to the callback).
    pub records: u64,
    /// The last sequence number read (0 if none).
    pub last_seq: u64,
    /// The torn tail, if the journal ends with one.
    pub torn: Option<TornTail>,
    /// Segment files read.
    pub segments: u64,
    /// Where appending would continue: (segment index, byte offset), if any segment exists.
    pub end: Option<(u64, u64)>,
}

/// The segment files of a journal directory, in index order.
///
/// # Errors
/// I/O errors, or a gap in the indexes.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        if let Some(index) = entry.file_name().to_str().and_then(segment::parse_name) {
            found.push((index, entry.path()));
        }
    }
    found.sort();
    for pair in found.windows(2) {
        if pair[1].0 != pair[0].0 + 1 {
            return Err(JournalError::MissingSegment { dir: dir.to_path_buf(), index: pair[0].0 + 1 });
        }
    }
    Ok(found)
}

/// The first sequence number of each segment of the journal in `dir`, in index order (from
/// the segments' headers alone: a cheap look at a journal's size before reading it).
///
/// # Errors
/// As [`segments`], and a segment whose header does not decode.
pub fn first_seqs(dir: &Path) -> Result<Vec<u64>, JournalError> {
    use std::io::Read as _;
    let mut firsts = Vec::new();
    for (_, path) in segments(dir)? {
        let mut head = [0u8; HEADER_LEN];
        File::open(&path).and_then(|mut f| f.read_exact(&mut head)).map_err(|e| io(&path, e))?;
        firsts.push(Header::decode(&path, &head)?.first_seq);
    }
    Ok(firsts)
}

/// Reads every record of the journal in `dir` in order, calling `f` for each (which may stop
/// the scan early with `Break`). Stops cleanly before a torn tail and reports it.
///
/// # Errors
/// [`JournalError`] for I/O errors, bad segments, missing segments, and corruption anywhere
/// but the torn tail.
pub fn scan(dir: &Path, mut f: impl FnMut(Sequenced) -> ControlFlow<()>) -> Result<ScanReport, JournalError> {
    let files = segments(dir)?;
    let mut report = ScanReport::default();
    let mut last_seq = 0u64;
    let mut maps = Vec::with_capacity(files.len());
    for (index, path) in &files {
        let file = File::open(path).map_err(|e| io(path, e))?;
        // SAFETY: see `segment::map`: the segment's existing bytes are not changed by anyone
        // while it is mapped here (the writer only appends past them).
        #[allow(unsafe_code, reason = "memory-mapping a file is unsafe by construction (memmap2)")]
        let map = unsafe { Mmap::map(&file) }.map_err(|e| io(path, e))?;
        let header = Header::decode(path, &map)?;
        if header.index != *index || header.capacity != map.len() as u64 {
            return Err(JournalError::BadSegment {
                path: path.clone(),
                what: "header index or capacity does not match the file".to_string(),
            });
        }
        maps.push((path.clone(), header, map));
    }
    for (k, (path, header, map)) in maps.iter().enumerate() {
        report.segments += 1;
        let mut at = HEADER_LEN;
        loop {
            report.end = Some((header.index, at as u64));
            let rest = &map[at..];
            if rest.len() < 4 || rest[..4] == [0, 0, 0, 0] {
                // End of this segment's data: everything after must be zero, unless it is a
                // torn record whose length was not written yet.
                if rest.iter().all(|&b| b == 0) {
                    break;
                }
                return torn_or_corrupt(&maps, k, at, "non-zero bytes after the end of the data", report);
            }
            let decoded = match record::claimed_len(rest) {
                Some(len) => record::decode(rest).map(|r| (r, len)),
                None => Err(l2x_types::bytes::DecodeError { offset: 0, what: "record length" }),
            };
            let (rec, len) = match decoded {
                Ok(ok) => ok,
                Err(e) => return torn_or_corrupt(&maps, k, at, &e.to_string(), report),
            };
            if rec.seq.0 <= last_seq || rec.seq.0 < header.first_seq {
                return Err(JournalError::Corrupt {
                    path: path.clone(),
                    offset: at as u64,
                    what: format!("sequence {} after {last_seq}", rec.seq.0),
                });
            }
            last_seq = rec.seq.0;
            report.records += 1;
            report.last_seq = last_seq;
            at += len;
            report.end = Some((header.index, at as u64));
            if f(rec).is_break() {
                return Ok(report);
            }
        }
    }
    Ok(report)
}

/// A bad record at `at` in segment `k`: the torn tail if all bytes from one maximal record
/// length past it to the end of the journal are zero, else corruption.
fn torn_or_corrupt(
    maps: &[(PathBuf, Header, Mmap)],
    k: usize,
    at: usize,
    what: &str,
    mut report: ScanReport,
) -> Result<ScanReport, JournalError> {
    let (path, header, map) = &maps[k];
    let window_end = (at + MAX_RECORD).min(map.len());
    let later_zero = map[window_end..].iter().all(|&b| b == 0)
        && maps[k + 1..].iter().all(|(_, _, m)| m[HEADER_LEN..].iter().all(|&b| b == 0));
    if !later_zero {
        return Err(JournalError::Corrupt { path: path.clone(), offset: at as u64, what: what.to_string() });
    }
    let bytes = map[at..window_end].iter().filter(|&&b| b != 0).count() as u64;
    report.torn = Some(TornTail { path: path.clone(), offset: at as u64, bytes });
    report.end = Some((header.index, at as u64));
    Ok(report)
}

/// Appends records to a journal. One writer per directory (an OS lock enforces it).
pub struct JournalWriter {
    dir: PathBuf,
    segment_bytes: u64,
    current: Segment,
    offset: usize,
    last_seq: u64,
    /// The index of the segment being written, for the syncer.
    current_index: Arc<AtomicU64>,
    _lock: File,
    buf: Box<[u8; MAX_RECORD]>,
}

impl JournalWriter {
    /// Opens the journal in `dir` for appending after its last intact record, creating the
    /// directory and the first segment if needed. A torn tail is zeroed first (and returned
    /// in the report); corruption is an error and nothing is written.
    ///
    /// # Errors
    /// [`JournalError`].
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(JournalWriter, ScanReport), JournalError> {
        let lock = lock(dir)?;
        let report = scan(dir, |_| ControlFlow::Continue(()))?;
        JournalWriter::at_end(dir, lock, segment_bytes, report)
    }

    /// A writer holding `lock`, positioned after the journal's last intact record as a full
    /// `scan` of it (made while holding the lock) found it; zeroes the torn tail if any.
    fn at_end(
        dir: &Path,
        lock: File,
        segment_bytes: u64,
        report: ScanReport,
    ) -> Result<(JournalWriter, ScanReport), JournalError> {
        let segment_bytes = segment_bytes.max((HEADER_LEN + MAX_RECORD) as u64);
        let (current, offset) = match report.end {
            None => (Segment::create(dir, 0, 1, segment_bytes)?, HEADER_LEN),
            Some((index, offset)) => {
                let mut seg = Segment::open(&dir.join(segment::file_name(index)))?;
                if let Some(torn) = &report.torn {
                    let at = usize::try_from(torn.offset).unwrap_or(usize::MAX);
                    let end = (at + MAX_RECORD).min(seg.map.len());
                    seg.map[at..end].fill(0);
                    seg.map.flush().map_err(|e| io(&seg.path, e))?;
                }
                (seg, usize::try_from(offset).unwrap_or(usize::MAX))
            }
        };
        let current_index = Arc::new(AtomicU64::new(current.header.index));
        let writer = JournalWriter {
            dir: dir.to_path_buf(),
            segment_bytes,
            current,
            offset,
            last_seq: report.last_seq,
            current_index,
            _lock: lock,
            buf: Box::new([0u8; MAX_RECORD]),
        };
        Ok((writer, report))
    }

    /// The last sequence number written (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one sequenced command: encoded, then copied into the mapping. After this
    /// returns the record is in the OS page cache (survives the process dying).
    ///
    /// # Errors
    /// [`JournalError::OutOfOrder`] if `cmd.seq` is not after the last one; I/O errors
    /// creating the next segment.
    pub fn append(&mut self, cmd: &Sequenced) -> Result<(), JournalError> {
        if cmd.seq.0 <= self.last_seq {
            return Err(JournalError::OutOfOrder { seq: cmd.seq.0, last: self.last_seq });
        }
        let len = record::encode(cmd, &mut self.buf);
        if self.offset + len > self.current.map.len() {
            self.roll(cmd.seq.0)?;
        }
        self.current.map[self.offset..self.offset + len].copy_from_slice(&self.buf[..len]);
        self.offset += len;
        self.last_seq = cmd.seq.0;
        Ok(())
    }

    fn roll(&mut self, first_seq: u64) -> Result<(), JournalError> {
        // The old segment's mapping stays valid until dropped; its tail stays zero (the end).
        let next = self.current.header.index + 1;
        let segment = Segment::create(&self.dir, next, first_seq, self.segment_bytes)?;
        self.current = segment;
        self.offset = HEADER_LEN;
        self.current_index.store(next, Ordering::Release);
        Ok(())
    }

    /// Writes the mapping back to disk and waits for it (`msync`): everything appended so
    /// far survives the machine failing. Used by tests and by clean shutdown; the pipeline's
    /// group commit uses a [`JournalSyncer`] on its own thread instead.
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync(&self) -> Result<(), JournalError> {
        self.current.map.flush().map_err(|e| io(&self.current.path, e))
    }

    /// A handle that can `fsync` this journal's segments from another thread.
    pub fn syncer(&self) -> JournalSyncer {
        JournalSyncer {
            dir: self.dir.clone(),
            current: Arc::clone(&self.current_index),
            synced_index: None,
            files: Vec::new(),
        }
    }
}

impl core::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("JournalWriter").field("dir", &self.dir).field("last_seq", &self.last_seq).finish()
    }
}

/// Creates the journal directory if needed and takes its writer lock (released by the OS
/// when the process ends, however it ends).
fn lock(dir: &Path) -> Result<File, JournalError> {
    fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let lock_path = dir.join("LOCK");
    let lock =
        OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| io(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(io(&lock_path, e)),
    }
}

/// Makes appended records durable from another thread (group commit): [`JournalSyncer::sync`]
/// `fsync`s every segment written since the last call. On Linux, `fsync` of a file writes
/// back the pages dirtied through its shared mapping.
pub struct JournalSyncer {
    dir: PathBuf,
    current: Arc<AtomicU64>,
    synced_index: Option<u64>,
    files: Vec<(u64, File)>,
}

impl JournalSyncer {
    /// `fsync`s the segments that may hold records appended before this call.
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        let current = self.current.load(Ordering::Acquire);
        let from = self.synced_index.unwrap_or(current);
        for index in from..=current {
            if !self.files.iter().any(|(i, _)| *i == index) {
                let path = self.dir.join(segment::file_name(index));
                let file = File::open(&path).map_err(|e| io(&path, e))?;
                self.files.push((index, file));
            }
        }
        for (index, file) in &self.files {
            if *index >= from {
                file.sync_data().map_err(|e| io(&self.dir.join(segment::file_name(*index)), e))?;
            }
        }
        // Segments before the current one are complete once synced: forget their handles.
        self.files.retain(|(i, _)| *i >= current);
        self.synced_index = Some(current);
        Ok(())
    }
}

// ----- recovery ----------------------------------------------------------------------------

/// What recovery did.
#[derive(Debug, Default)]
pub struct RecoveryReport {
    /// The snapshot recovery started from: (sequence, file), if any.
    pub snapshot: Option<(u64, PathBuf)>,
    /// Snapshots refused, newest first, with the reason.
    pub refused_snapshots: Vec<(PathBuf, String)>,
    /// Commands replayed from the journal after the snapshot.
    pub replayed: u64,
    /// The last sequence number recovered (0 for an empty journal).
    pub last_seq: u64,
    /// The torn tail that was found (and zeroed), if any.
    pub torn: Option<TornTail>,
}

/// Rebuilds the state from the newest valid snapshot at or before the journal's end and the
/// journal records after it, stopping at `until_seq` if given. Read-only: a torn tail is
/// reported, not repaired (see [`JournalWriter::open`] for that).
///
/// # Errors
/// [`JournalError`] for I/O errors and corruption; a refused snapshot is not an error (an
/// older one, or the journal from the start, is used and the report says why).
pub fn replay(
    dir: &Path,
    until_seq: Option<u64>,
    ledger: &Ledger,
) -> Result<(StateMachine, RecoveryReport), JournalError> {
    replay_scanning(dir, until_seq, ledger).map(|(state, report, _)| (state, report))
}

/// [`replay`], also returning what its scan of the journal found (without `until_seq`, that
/// is a full scan: the end and the torn tail a writer needs).
fn replay_scanning(
    dir: &Path,
    until_seq: Option<u64>,
    ledger: &Ledger,
) -> Result<(StateMachine, RecoveryReport, ScanReport), JournalError> {
    let limit = until_seq.unwrap_or(u64::MAX);
    let mut report = RecoveryReport::default();
    let (mut state, from) = start_state(dir, limit, ledger, &mut report)?;
    let mut events = Vec::new();
    let scan_report = scan(dir, |cmd| {
        if cmd.seq.0 > limit {
            return ControlFlow::Break(());
        }
        if cmd.seq.0 > from {
            events.clear();
            state.apply(&cmd, &mut events);
            report.replayed += 1;
            report.last_seq = cmd.seq.0;
        }
        ControlFlow::Continue(())
    })?;
    report.torn = scan_report.torn.clone();
    report.last_seq = report.last_seq.max(from);
    Ok((state, report, scan_report))
}

/// The newest snapshot that verifies (at most `limit`), or an empty state at 0.
fn start_state(
    dir: &Path,
    limit: u64,
    ledger: &Ledger,
    report: &mut RecoveryReport,
) -> Result<(StateMachine, u64), JournalError> {
    for (seq, path) in snapshot::list(dir, limit)? {
        match snapshot::read(&path, ledger.clone()) {
            Ok((read_seq, sm)) if read_seq == seq => {
                report.snapshot = Some((seq, path));
                return Ok((sm, seq));
            }
            Ok((read_seq, _)) => {
                report.refused_snapshots.push((path, format!("its header says sequence {read_seq}, its name {seq}")));
            }
            Err(why) => report.refused_snapshots.push((path, why)),
        }
    }
    Ok((StateMachine::with_ledger(ledger.clone()), 0))
}

/// Recovery for a writer: takes the journal's lock, replays as [`replay`] does, then opens
/// the journal for appending (zeroing a torn tail). A snapshot newer than the journal's end
/// is not used.
///
/// One pass over the journal serves both the replay and the writer's position. Only when
/// a snapshot newer than the journal's end exists (a machine failure after it under
/// `durability = os`) is the journal replayed a second time, bounded by its end.
///
/// # Errors
/// [`JournalError`].
pub fn recover(
    dir: &Path,
    segment_bytes: u64,
    ledger: &Ledger,
) -> Result<(StateMachine, JournalWriter, RecoveryReport), JournalError> {
    let lock = lock(dir)?;
    let (mut state, mut report, scan_report) = replay_scanning(dir, None, ledger)?;
    if snapshot::list(dir, u64::MAX)?.first().is_some_and(|&(seq, _)| seq > scan_report.last_seq) {
        (state, report) = replay(dir, Some(scan_report.last_seq), ledger)?;
        report.torn = scan_report.torn.clone();
    }
    let (writer, _) = JournalWriter::at_end(dir, lock, segment_bytes, scan_report)?;
    Ok((state, writer, report))
}
