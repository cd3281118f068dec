//! Cutting a damaged journal at its first damage, on an operator's order
//! (`l2x journal truncate DIR`), keeping what it cuts.
//!
//! Readers and recovery never drop a valid record: damage that is not a torn tail stops
//! them with an error naming the segment and the offset. After a machine failure the part
//! of a journal that was never synced can hold holes (pages written back out of order), and
//! the node then refuses to start. Someone has to decide that the records after the hole
//! are given up; this is how, and nothing is destroyed:
//!
//! ```text
//!  read the journal ──ok──▶ nothing to cut
//!       │ error at (segment k, offset X)
//!       ▼
//!  DIR/cut-N/  ◀── a copy of segment k as it was, segments k+1.. (moved), snapshots past
//!       │          the last kept record (moved), the end marker (moved)
//!       ▼
//!  segment k zeroed from X: the journal ends at the last record before the damage
//! ```

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::read::Journal;
use super::segment::{self, HEADER_LEN};
use super::write::lock;
use super::{JournalError, Point, end, io, snapshot, sync_dir};

/// What a truncation cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncated {
    /// The last record kept.
    pub kept: Point,
    /// Where the cut is: the segment file and the byte offset of the first damaged block.
    pub at: (PathBuf, u64),
    /// Why the journal was cut there (the reader's error).
    pub damage: String,
    /// The directory that holds everything cut.
    pub kept_aside: PathBuf,
}

/// Cuts the journal in `dir` at its first damaged block (see the module documentation).
/// `Ok(None)` if a read of the whole journal finds nothing to cut.
///
/// # Errors
/// [`JournalError::Locked`] while a writer holds the journal; errors opening it (a journal
/// whose segments are missing or foreign is not cut: that is not damage inside the data);
/// I/O errors.
pub fn truncate_at_damage(dir: &Path) -> Result<Option<Truncated>, JournalError> {
    let _lock = lock(dir)?;
    let journal = Journal::open(dir)?;
    // The records a read passes on before it stops at the damage are the ones kept.
    let mut last_good = 0;
    let err = match journal.read(Point::START, |cmd| {
        last_good = cmd.seq.0;
        ControlFlow::Continue(())
    }) {
        Ok(_) => return Ok(None),
        Err(e) => e,
    };
    let (path, offset) = match &err {
        JournalError::Corrupt { path, offset, .. } => (path.clone(), *offset),
        JournalError::Chain { path, .. } => (path.clone(), HEADER_LEN as u64),
        _ => return Err(err),
    };
    drop(journal);
    let index = path.file_name().and_then(|n| n.to_str()).and_then(segment::parse_name).unwrap_or(0);
    let aside = fresh_aside_dir(dir)?;
    fs::copy(&path, aside.join(segment::file_name(index))).map_err(|e| io(&path, e))?;
    for (later, later_path) in super::segments(dir)?.into_iter().filter(|(i, _)| *i > index) {
        move_into(&later_path, &aside.join(segment::file_name(later)))?;
    }
    for (seq, snap) in snapshot::list(dir, u64::MAX)?.into_iter().filter(|(s, _)| *s > last_good) {
        move_into(&snap, &aside.join(snapshot::file_name(seq)))?;
    }
    if end::path(dir).exists() {
        move_into(&end::path(dir), &aside.join(end::FILE_NAME))?;
    }
    zero_from(&path, offset)?;
    sync_dir(dir)?;
    // What is left must read to its end by every rule.
    let report = Journal::open(dir)?.read(Point::START, |_| ControlFlow::Continue(()))?;
    Ok(Some(Truncated { kept: report.last, at: (path, offset), damage: err.to_string(), kept_aside: aside }))
}

/// `DIR/cut-N` for the first N not taken.
fn fresh_aside_dir(dir: &Path) -> Result<PathBuf, JournalError> {
    for n in 1u32.. {
        let aside = dir.join(format!("cut-{n}"));
        match fs::create_dir(&aside) {
            Ok(()) => return Ok(aside),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(&aside, e)),
        }
    }
    Err(io(dir, std::io::Error::other("no free cut-N directory name")))
}

fn move_into(from: &Path, to: &Path) -> Result<(), JournalError> {
    fs::rename(from, to).map_err(|e| io(from, e))
}

/// Zeroes segment `path` from `offset` to its end, durably.
fn zero_from(path: &Path, offset: u64) -> Result<(), JournalError> {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = fs::OpenOptions::new().write(true).open(path).map_err(|e| io(path, e))?;
    let len = file.metadata().map_err(|e| io(path, e))?.len();
    file.seek(SeekFrom::Start(offset)).map_err(|e| io(path, e))?;
    let zeros = vec![0u8; 1 << 16];
    let mut left = len.saturating_sub(offset);
    while left > 0 {
        let n = usize::try_from(left.min(zeros.len() as u64)).unwrap_or(zeros.len());
        file.write_all(&zeros[..n]).map_err(|e| io(path, e))?;
        left -= n as u64;
    }
    file.sync_all().map_err(|e| io(path, e))
}

/// Why `l2x journal truncate` could not finish.
#[derive(Debug, thiserror::Error)]
pub enum TruncateError {
    /// The truncation ([`truncate_at_damage`]).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Writing what was done.
    #[error(transparent)]
    Output(#[from] std::io::Error),
}

/// `l2x journal truncate DIR`: [`truncate_at_damage`], then what it did told on `out`:
/// nothing to cut, or the damage, where the journal now ends, and where what was cut is.
///
/// # Errors
/// [`TruncateError`]: the truncation's, or I/O writing.
pub fn truncate_and_report(dir: &Path, out: &mut impl std::io::Write) -> Result<Option<Truncated>, TruncateError> {
    let truncated = truncate_at_damage(dir)?;
    match &truncated {
        None => writeln!(out, "{}: the journal reads to its end by every rule: nothing to cut", dir.display())?,
        Some(t) => {
            writeln!(out, "damage: {}", t.damage)?;
            writeln!(out, "cut at {} byte {}; the journal now ends at seq {}", t.at.0.display(), t.at.1, t.kept.seq)?;
            writeln!(out, "everything cut is in {}", t.kept_aside.display())?;
        }
    }
    Ok(truncated)
}
