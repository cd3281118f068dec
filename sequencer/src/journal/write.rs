//! Appending: the one writer of a journal directory, and its group-commit syncer.
//!
//! ```text
//!  open ──▶ lock DIR/LOCK ──▶ read the whole journal (every rule of `read`) ──▶ decide
//!             new journal: segment 0 with a fresh journal id
//!             torn tail:   zero it (only once the read has proven it is one)
//!             roll cut short before its seal: write the seal
//!             fsync every segment (what a killed writer left in the page cache)
//!             end marker:  remove it before the first append
//!  append ──▶ encode ──▶ room for it and a seal? ──no──▶ roll: create the next segment
//!                │                                        (header naming the last record;
//!                ▼                                        fsynced, named, directory fsynced),
//!                                                         then seal the full one
//!            memcpy into the mapping
//!  close ──▶ fsync the segments written ──▶ write the end marker
//! ```
//!
//! Nothing in the journal is modified before the read that opens it has decided the journal
//! is sound: corruption stops the open with nothing written.

use std::fs::{self, File, OpenOptions};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering, fence};

use l2x_types::Sequenced;

use super::end::{self, EndMarker};
use super::read::{Journal, ScanReport, Tail};
use super::record::{self, MAX_RECORD, SEAL_LEN};
use super::segment::{self, HEADER_LEN, Header, Segment};
use super::{JournalError, JournalId, Point, io, sync_dir};

/// Appends records to a journal. One writer per directory (an OS lock enforces it).
pub struct JournalWriter {
    dir: PathBuf,
    journal: JournalId,
    segment_bytes: u64,
    current: Segment,
    offset: usize,
    last: Point,
    /// The first segment this writer appended to (its close `fsync`s from there).
    first_index: u64,
    /// A segment was created since the last [`JournalWriter::sync`]: the directory needs an
    /// `fsync` too.
    dir_dirty: bool,
    /// The index of the segment being written, for the syncer.
    current_index: Arc<AtomicU64>,
    _lock: File,
    buf: Box<[u8; MAX_RECORD]>,
}

impl JournalWriter {
    /// Opens the journal in `dir` for appending after its last intact record, creating the
    /// directory and a new journal (segment 0, a fresh journal id) if it holds none. The
    /// whole journal is read first with every rule of [`Journal::read`]; only then is a torn
    /// tail zeroed (and returned in the report) or an interrupted roll completed.
    ///
    /// # Errors
    /// [`JournalError`]; on an error nothing was written.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(JournalWriter, ScanReport), JournalError> {
        let lock = lock(dir)?;
        match Journal::open(dir) {
            Err(JournalError::NoJournal { .. }) => JournalWriter::create(dir, lock, segment_bytes),
            Err(e) => Err(e),
            Ok(journal) => {
                let report = journal.read(Point::START, |_| ControlFlow::Continue(()))?;
                JournalWriter::at_end(&journal, lock, segment_bytes, report)
            }
        }
    }

    /// A new journal in `dir` (which holds none), under `lock`.
    pub(crate) fn create(
        dir: &Path,
        lock: File,
        segment_bytes: u64,
    ) -> Result<(JournalWriter, ScanReport), JournalError> {
        let segment_bytes = min_segment(segment_bytes);
        remove_unfinished(dir)?;
        let journal = JournalId::generate().map_err(|e| io(dir, e))?;
        let header = Header { first_seq: 1, index: 0, capacity: segment_bytes, journal, previous: Point::START };
        let current = Segment::create(dir, header)?;
        let writer = JournalWriter::new(dir, journal, segment_bytes, current, HEADER_LEN, Point::START, lock);
        Ok((writer, ScanReport::default()))
    }

    /// A writer holding `lock`, positioned after the journal's last intact record as a full
    /// read of it (made while holding the lock) found it: zeroes the torn tail, if any,
    /// completes an interrupted roll, and removes the end marker.
    pub(crate) fn at_end(
        journal: &Journal,
        lock: File,
        segment_bytes: u64,
        report: ScanReport,
    ) -> Result<(JournalWriter, ScanReport), JournalError> {
        let dir = journal.dir();
        let tail = report.tail.ok_or_else(|| JournalError::BadSegment {
            path: dir.to_path_buf(),
            what: "the journal was not read to its end before appending".to_string(),
        })?;
        remove_unfinished(dir)?;
        repair(dir, &tail)?;
        // What a writer killed before it left in the page cache is made durable before this
        // one appends (and before a snapshot or an end marker can name it).
        sync_segments(dir, tail.segment)?;
        end::remove(dir)?;
        let current = Segment::open(&dir.join(segment::file_name(tail.segment)))?;
        let offset = usize::try_from(tail.offset).unwrap_or(usize::MAX);
        let writer =
            JournalWriter::new(dir, journal.id(), min_segment(segment_bytes), current, offset, report.last, lock);
        Ok((writer, report))
    }

    fn new(
        dir: &Path,
        journal: JournalId,
        segment_bytes: u64,
        current: Segment,
        offset: usize,
        last: Point,
        lock: File,
    ) -> JournalWriter {
        JournalWriter {
            dir: dir.to_path_buf(),
            journal,
            segment_bytes,
            first_index: current.header.index,
            current_index: Arc::new(AtomicU64::new(current.header.index)),
            current,
            offset,
            last,
            dir_dirty: true,
            _lock: lock,
            buf: Box::new([0u8; MAX_RECORD]),
        }
    }

    /// The last sequence number written (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.last.seq
    }

    /// The journal point after the last record written: what a snapshot of the state now
    /// is bound to.
    pub fn last(&self) -> Point {
        self.last
    }

    /// Where the next record goes: (segment index, byte offset in its file).
    pub fn position(&self) -> (u64, u64) {
        (self.current.header.index, self.offset as u64)
    }

    /// The journal's identity.
    pub fn journal_id(&self) -> JournalId {
        self.journal
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
        if cmd.seq.0 <= self.last.seq {
            return Err(JournalError::OutOfOrder { dir: self.dir.clone(), seq: cmd.seq.0, last: self.last.seq });
        }
        let len = record::encode(cmd, self.last.crc, &mut self.buf);
        // Room for the record and, after it, the seal a roll will write.
        if self.offset + len + SEAL_LEN > self.current.map.len() {
            self.roll(cmd.seq.0)?;
        }
        self.current.map[self.offset..self.offset + len].copy_from_slice(&self.buf[..len]);
        self.offset += len;
        let crc = u32::from_le_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
        self.last = Point { seq: cmd.seq.0, crc };
        Ok(())
    }

    /// Starts the next segment: created (its header naming the last record), then the full
    /// one sealed. A crash between the two leaves an empty last segment after an unsealed
    /// one, which the next writer seals.
    fn roll(&mut self, first_seq: u64) -> Result<(), JournalError> {
        let next = self.current.header.index + 1;
        let header =
            Header { first_seq, index: next, capacity: self.segment_bytes, journal: self.journal, previous: self.last };
        if self.offset + SEAL_LEN > self.current.map.len() {
            // Every append leaves room for the seal; a segment without it was not ours.
            return Err(JournalError::BadSegment {
                path: self.current.path.clone(),
                what: format!("no room for the seal at byte offset {}", self.offset),
            });
        }
        let segment = Segment::create(&self.dir, header)?;
        self.current.map[self.offset..self.offset + SEAL_LEN].copy_from_slice(&record::encode_seal(next));
        // The seal is in memory before any record of the next segment (readers of a live
        // journal rely on the order).
        fence(Ordering::Release);
        self.current = segment;
        self.offset = HEADER_LEN;
        self.dir_dirty = true;
        self.current_index.store(next, Ordering::Release);
        Ok(())
    }

    /// Writes the mapping back to disk and waits for it (`msync`), and the directory entry of
    /// a segment created since the last call: everything appended so far survives the
    /// machine failing. Used by tests and tools; the pipeline's group commit uses a
    /// [`JournalSyncer`] on its own thread instead.
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.current.map.flush().map_err(|e| io(&self.current.path, e))?;
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Stops cleanly: makes every segment this writer appended to durable, then records the
    /// journal's end in the end marker (docs/JOURNAL.md, "End marker"). A writer dropped
    /// without `close` leaves no marker, as a crash does.
    ///
    /// # Errors
    /// I/O errors.
    pub fn close(mut self) -> Result<Point, JournalError> {
        for index in self.first_index..self.current.header.index {
            let path = self.dir.join(segment::file_name(index));
            File::open(&path).and_then(|f| f.sync_data()).map_err(|e| io(&path, e))?;
        }
        self.sync()?;
        end::write(&self.dir, EndMarker { journal: self.journal, last: self.last })?;
        Ok(self.last)
    }

    /// A handle that can `fsync` this journal's segments from another thread.
    pub fn syncer(&self) -> JournalSyncer {
        JournalSyncer {
            dir: self.dir.clone(),
            current: Arc::clone(&self.current_index),
            first: self.first_index,
            synced_index: None,
            files: Vec::new(),
        }
    }
}

impl core::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("JournalWriter").field("dir", &self.dir).field("last", &self.last).finish()
    }
}

/// The smallest segment that holds a header, a maximal record and a seal.
fn min_segment(segment_bytes: u64) -> u64 {
    segment_bytes.max((HEADER_LEN + MAX_RECORD + SEAL_LEN) as u64)
}

/// Removes segments a writer was creating when it stopped (never renamed into place: they
/// never held a record).
fn remove_unfinished(dir: &Path) -> Result<(), JournalError> {
    for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        if entry.file_name().to_str().is_some_and(segment::is_unfinished) {
            fs::remove_file(entry.path()).map_err(|e| io(&entry.path(), e))?;
        }
    }
    Ok(())
}

/// `fsync`s segments 0 ..= `last` and the directory.
fn sync_segments(dir: &Path, last: u64) -> Result<(), JournalError> {
    for index in 0..=last {
        let path = dir.join(segment::file_name(index));
        File::open(&path).and_then(|f| f.sync_data()).map_err(|e| io(&path, e))?;
    }
    sync_dir(dir)
}

/// Zeroes a torn tail and seals a segment whose roll was cut short, as the read found them.
fn repair(dir: &Path, tail: &Tail) -> Result<(), JournalError> {
    if let Some((index, offset)) = tail.torn {
        let mut seg = Segment::open(&dir.join(segment::file_name(index)))?;
        let at = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = (at + MAX_RECORD).min(seg.map.len());
        seg.map[at..end].fill(0);
        seg.map.flush().map_err(|e| io(&seg.path, e))?;
    }
    if let Some((index, offset)) = tail.unsealed {
        let mut seg = Segment::open(&dir.join(segment::file_name(index)))?;
        let at = usize::try_from(offset).unwrap_or(usize::MAX);
        if at + SEAL_LEN <= seg.map.len() {
            seg.map[at..at + SEAL_LEN].copy_from_slice(&record::encode_seal(index + 1));
            seg.map.flush().map_err(|e| io(&seg.path, e))?;
        }
    }
    Ok(())
}

/// Creates the journal directory if needed and takes its writer lock (released by the OS
/// when the process ends, however it ends).
pub(crate) fn lock(dir: &Path) -> Result<File, JournalError> {
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
/// `fsync`s every segment written since the last call, and the directory when a segment
/// was created. On Linux, `fsync` of a file writes back the pages dirtied through its
/// shared mapping.
pub struct JournalSyncer {
    dir: PathBuf,
    current: Arc<AtomicU64>,
    /// The writer's first segment: the first sync starts there.
    first: u64,
    synced_index: Option<u64>,
    files: Vec<(u64, File)>,
}

impl core::fmt::Debug for JournalSyncer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("JournalSyncer").field("dir", &self.dir).field("synced_index", &self.synced_index).finish()
    }
}

impl JournalSyncer {
    /// Another syncer of the same journal, starting afresh (its first [`JournalSyncer::sync`]
    /// covers every segment the writer has appended to, whenever it is called).
    pub fn fresh(&self) -> JournalSyncer {
        JournalSyncer {
            dir: self.dir.clone(),
            current: Arc::clone(&self.current),
            first: self.first,
            synced_index: None,
            files: Vec::new(),
        }
    }

    /// `fsync`s the segments that may hold records appended before this call.
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        let current = self.current.load(Ordering::Acquire);
        let due = self.due(current);
        let from = *due.start();
        let mut opened = false;
        for index in due {
            if !self.files.iter().any(|(i, _)| *i == index) {
                let path = self.dir.join(segment::file_name(index));
                let file = File::open(&path).map_err(|e| io(&path, e))?;
                self.files.push((index, file));
                opened = true;
            }
        }
        for (index, file) in &self.files {
            if *index >= from {
                file.sync_data().map_err(|e| io(&self.dir.join(segment::file_name(*index)), e))?;
            }
        }
        if opened {
            // A new segment's name must survive a machine failure with its records.
            sync_dir(&self.dir)?;
        }
        // Segments before the current one are complete once synced: forget their handles.
        self.files.retain(|(i, _)| *i >= current);
        self.synced_index = Some(current);
        Ok(())
    }

    /// The segments a sync now must cover, `current` being the one written now: from the
    /// one current at the last sync (records may have been appended to it since) through
    /// `current`, every segment rolled in between included. The first sync starts at the
    /// writer's first segment (the segments before it were made durable by the recovery that
    /// opened the writer): however long after the writer's start it comes, and however
    /// many segments rolled meanwhile, none is missed.
    fn due(&self, current: u64) -> std::ops::RangeInclusive<u64> {
        self.synced_index.unwrap_or(self.first)..=current
    }
}

#[cfg(test)]
mod tests {
    use l2x_types::{AccountId, Amount, Command, Holder, Seq, Sequenced, Timestamp};

    use super::*;

    fn deposit(seq: u64) -> Sequenced {
        Sequenced {
            seq: Seq(seq),
            ts: Timestamp(seq),
            cmd: Command::Deposit { to: Holder::Account(AccountId(seq)), amount: Amount(1) },
        }
    }

    /// Regression (issue 14 closing read): the test of which segments the group commit
    /// `fsync`s was lost when the submitter's own syncer was replaced by this one. A sync
    /// covers the segment current at the last sync and every segment rolled since, and then
    /// forgets the completed ones.
    #[test]
    fn a_sync_covers_every_segment_written_since_the_last() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (mut w, _) = JournalWriter::open(dir.path(), 0).unwrap_or_else(|e| panic!("{e}"));
        let mut syncer = w.syncer();
        assert_eq!(syncer.due(0), 0..=0, "the first sync: the segment being written");
        w.append(&deposit(1)).unwrap_or_else(|e| panic!("{e}"));
        syncer.sync().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(syncer.synced_index, Some(0));
        roll_to(&mut w, 3, 1);
        assert_eq!(syncer.due(3), 0..=3, "the last sync's segment, the rolled ones, the current one");
        syncer.sync().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(syncer.synced_index, Some(3));
        assert_eq!(syncer.files.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [3], "completed segments forgotten");
        assert_eq!(syncer.due(3), 3..=3, "the current segment again: records may be appended to it");
    }

    /// Regression (review of the above): a syncer's first sync covered only the segment
    /// current then, so segments the journal rolled through between the syncer's creation
    /// (the node's start) and its first sync (one settlement interval later) were never
    /// `fsync`ed, and the submitter settled records a power cut could take back. The first
    /// sync of a syncer, or of a fresh one, starts at the writer's first segment.
    #[test]
    fn a_first_sync_covers_segments_rolled_before_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (mut w, _) = JournalWriter::open(dir.path(), 0).unwrap_or_else(|e| panic!("{e}"));
        let syncer = w.syncer();
        roll_to(&mut w, 2, 0);
        assert_eq!(syncer.due(2), 0..=2);
        assert_eq!(syncer.fresh().due(2), 0..=2, "a fresh syncer too");
        let mut fresh = syncer.fresh();
        fresh.sync().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fresh.synced_index, Some(2));
    }

    /// Appends deposits after seq `seq` until the writer writes segment `index`.
    fn roll_to(w: &mut JournalWriter, index: u64, mut seq: u64) {
        while w.current_index.load(Ordering::Acquire) < index {
            seq += 1;
            w.append(&deposit(seq)).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
