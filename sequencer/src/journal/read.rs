//! Reading a journal back: one reader and one set of rules for everything that reads a
//! journal — recovery, replay, export, what-if, the gateway's start-up, settlement.
//!
//! # What a read proves
//!
//! ```text
//!  open:  segments 0, 1, …, n-1 all present (numbered from 0, no gaps), every header valid,
//!         index and size as the file, one journal id in all of them, segment 0 starting
//!         the journal (previous record: none); the points of this journal's snapshots
//!         (their headers: seq and the CRC of that record)
//!  read:  from the start, or from a snapshot's point (seq S with CRC C), beginning in the
//!         segment that holds record S: S must be there with CRC C
//!         every record valid and after the one before it (strictly increasing seq), naming
//!         the CRC of the one before it; each segment's header names the last record of
//!         the segment before it; every snapshot point the read passes names a record of
//!         the journal with its CRC
//!  end:   the last segment must not be sealed (a seal says another segment follows);
//!         a damaged block is the torn tail only if nothing valid follows it;
//!         no snapshot of this journal is past its last record;
//!         an end marker from a clean stop must name the last record exactly
//! ```
//!
//! A read that its callback stops early (`ControlFlow::Break`) has proven the journal up to
//! where it stopped; the end rules apply only to reads that reach the end. The rules of one
//! read are in `walk`.
//!
//! # Reading a journal that is being written
//!
//! A reader maps the segments as they are. A seal naming a segment that was not there when
//! the journal was opened makes the reader look again (the writer renames the next segment
//! into place before it writes the seal). A reader may still meet the record being appended
//! at that moment: it reports it as a torn tail and, in a rare race with a writer that goes
//! on appending while the reader checks what follows, as corruption. Readers inside the
//! node read only up to the sequence number the writer has published.

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::Read as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use l2x_types::Sequenced;
use memmap2::Mmap;

use super::end::{self, EndMarker};
use super::segment::{self, HEADER_LEN, Header};
use super::walk::{Step, Walk};
use super::{JournalError, JournalId, Point, io, snapshot};

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

/// What a read found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Records the callback took (a record it answered `Break` is not counted).
    pub records: u64,
    /// The last record the callback took (the starting point's if none).
    pub last_seq: u64,
    /// That record, as a journal point.
    pub last: Point,
    /// The torn tail, if the journal ends with one.
    pub torn: Option<TornTail>,
    /// Segment files read.
    pub segments: u64,
    /// Where a writer continues, when the read reached the end.
    pub(crate) tail: Option<Tail>,
}

/// Where a writer continues after a read that reached the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    /// The last segment, and the offset the next record goes to.
    pub(crate) segment: u64,
    pub(crate) offset: u64,
    /// A torn tail to zero first: segment, offset.
    pub(crate) torn: Option<(u64, u64)>,
    /// The segment before the last, when its roll was interrupted before its seal was
    /// written: segment, offset of the seal.
    pub(crate) unsealed: Option<(u64, u64)>,
}

/// One mapped segment.
pub(crate) struct Mapped {
    pub(crate) path: PathBuf,
    pub(crate) header: Header,
    pub(crate) map: Mmap,
}

/// A snapshot of this journal, by its header: the point it is the state at.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotPoint {
    pub(crate) point: Point,
    pub(crate) path: PathBuf,
}

/// An open journal directory: its segments checked and mapped, ready to be read.
pub struct Journal {
    dir: PathBuf,
    id: JournalId,
    /// Grows when a read meets a seal naming a segment the writer created since.
    segments: RefCell<Vec<Mapped>>,
    marker: Option<EndMarker>,
    /// This journal's snapshots (valid headers, this journal's id), by sequence number.
    snapshots: Vec<SnapshotPoint>,
}

impl core::fmt::Debug for Journal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("id", &self.id)
            .field("segments", &self.segments.borrow().len())
            .finish()
    }
}

/// The segment files of a journal directory, in index order: numbered from 0 without gaps.
///
/// # Errors
/// I/O errors, or a missing segment (a gap, or no segment 0).
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        if let Some(index) = entry.file_name().to_str().and_then(segment::parse_name) {
            found.push((index, entry.path()));
        }
    }
    found.sort();
    for (expected, (index, _)) in (0u64..).zip(&found) {
        if *index != expected {
            let what = if expected == 0 {
                format!("the journal's first records are not there (the first segment present is {index})")
            } else {
                format!("segments {} and {index} are present", expected - 1)
            };
            return Err(JournalError::MissingSegment { dir: dir.to_path_buf(), index: expected, what });
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
    let mut firsts = Vec::new();
    for (_, path) in segments(dir)? {
        let mut head = [0u8; HEADER_LEN];
        File::open(&path).and_then(|mut f| f.read_exact(&mut head)).map_err(|e| io(&path, e))?;
        firsts.push(Header::decode(&path, &head)?.first_seq);
    }
    Ok(firsts)
}

/// Reads every record of the journal in `dir` from its start, calling `f` for each (which
/// may stop the read early with `Break`): [`Journal::open`] then [`Journal::read`] from
/// [`Point::START`].
///
/// # Errors
/// As [`Journal::open`] and [`Journal::read`].
pub fn scan(dir: &Path, f: impl FnMut(Sequenced) -> ControlFlow<()>) -> Result<ScanReport, JournalError> {
    Journal::open(dir)?.read(Point::START, f)
}

impl Journal {
    /// Opens the journal in `dir`: lists, maps and checks its segments (see the module
    /// documentation, "open"), reads its end marker if there is one and the headers of its
    /// snapshots.
    ///
    /// # Errors
    /// [`JournalError::NoJournal`] for a directory without segments and nothing that says it
    /// had any; [`JournalError::MissingSegment`] for a gap, a missing segment 0, or segments
    /// missing from a directory whose snapshots or end marker say it had records;
    /// [`JournalError::BadSegment`], [`JournalError::NewerFormat`],
    /// [`JournalError::OlderFormat`], [`JournalError::ForeignSegment`],
    /// [`JournalError::BadEndMarker`]; I/O errors.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        let files = segments(dir)?;
        let marker = end::read(dir)?;
        if files.is_empty() {
            return Err(no_segments(dir, marker.as_ref())?);
        }
        let mut segments: Vec<Mapped> = Vec::with_capacity(files.len());
        for (index, path) in files {
            let first = segments.first().map(|s| s.header.journal);
            segments.push(map_segment(path, index, first)?);
        }
        let id = segments[0].header.journal;
        if let Some(m) = &marker
            && m.journal != id
        {
            return Err(JournalError::BadEndMarker {
                path: end::path(dir),
                what: format!("it belongs to journal {}, the segments to journal {id}", m.journal),
            });
        }
        let snapshots = snapshot_points(dir, id)?;
        Ok(Journal { dir: dir.to_path_buf(), id, segments: RefCell::new(segments), marker, snapshots })
    }

    /// The journal's identity.
    pub fn id(&self) -> JournalId {
        self.id
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the records after `from` in order — [`Point::START`] for all of them, or a
    /// snapshot's point — calling `f` for each (which may stop the read with `Break`).
    ///
    /// # Errors
    /// [`JournalError::Corrupt`] for a damaged record that is not the torn tail or a record
    /// out of sequence order; [`JournalError::Chain`] for a segment whose header does not
    /// name the last record before it; [`JournalError::PointNotInJournal`] when `from` is
    /// not a record of this journal (past its end, or another record with its number);
    /// [`JournalError::SnapshotNotInJournal`] for a snapshot of this journal that names a
    /// record the journal does not have; [`JournalError::MissingSegment`] when the last
    /// segment is sealed; [`JournalError::EndMismatch`] when the end marker names another
    /// last record.
    pub fn read(
        &self,
        from: Point,
        mut f: impl FnMut(Sequenced) -> ControlFlow<()>,
    ) -> Result<ScanReport, JournalError> {
        self.read_points(from, |cmd, _| f(cmd))
    }

    /// [`Journal::read`], also telling the callback each record's point (its sequence
    /// number and CRC: what a snapshot of the state after it is bound to).
    ///
    /// # Errors
    /// As [`Journal::read`].
    pub fn read_points(
        &self,
        from: Point,
        mut f: impl FnMut(Sequenced, Point) -> ControlFlow<()>,
    ) -> Result<ScanReport, JournalError> {
        // The segment that holds record `from`: the last whose header names a record before it.
        let first = if from == Point::START {
            0
        } else {
            self.segments.borrow().iter().rposition(|s| s.header.previous.seq < from.seq).unwrap_or(0)
        };
        let mut walk = Walk::new(self, from, first)?;
        let mut k = first;
        loop {
            match walk.segment(k, &mut f)? {
                Step::Next => k += 1,
                Step::Sealed(next) => {
                    self.find_segment(next, &walk)?;
                    k += 1;
                }
                Step::Stopped => return Ok(walk.into_report()),
                Step::Ended => return walk.finish(),
            }
        }
    }

    /// The segments as opened (or grown since).
    pub(crate) fn mapped(&self) -> std::cell::Ref<'_, Vec<Mapped>> {
        self.segments.borrow()
    }

    pub(crate) fn marker(&self) -> Option<&EndMarker> {
        self.marker.as_ref()
    }

    pub(crate) fn snapshot_points(&self) -> &[SnapshotPoint] {
        &self.snapshots
    }

    /// Segment `next`, named by the seal of the last segment read: mapped already, or
    /// created by the writer since the journal was opened (mapped now), or missing.
    fn find_segment(&self, next: u64, walk: &Walk<'_>) -> Result<(), JournalError> {
        let have = self.segments.borrow().len() as u64;
        if next < have {
            return Ok(());
        }
        let path = self.dir.join(segment::file_name(next));
        if !path.exists() {
            return Err(JournalError::MissingSegment {
                dir: self.dir.clone(),
                index: next,
                what: format!(
                    "segment {} ends with a seal saying the journal goes on there: the records after seq {} are not there",
                    next - 1,
                    walk.last().seq
                ),
            });
        }
        let mapped = map_segment(path, next, Some(self.id))?;
        self.segments.borrow_mut().push(mapped);
        Ok(())
    }
}

/// Maps segment `index` at `path` and checks its header against the file and, if given,
/// the journal's id.
fn map_segment(path: PathBuf, index: u64, journal: Option<JournalId>) -> Result<Mapped, JournalError> {
    let file = File::open(&path).map_err(|e| io(&path, e))?;
    // SAFETY: see `segment::map`: the segment's existing bytes are not changed by anyone
    // while it is mapped here (the writer only appends past them).
    #[allow(unsafe_code, reason = "memory-mapping a file is unsafe by construction (memmap2)")]
    let map = unsafe { Mmap::map(&file) }.map_err(|e| io(&path, e))?;
    let header = Header::decode(&path, &map)?;
    check_header(&path, index, &header, map.len(), journal)?;
    Ok(Mapped { path, header, map })
}

/// The points of the snapshots in `dir` taken from journal `id`, by sequence number.
/// Snapshots whose header does not decode, whose name and header disagree, or of another
/// journal are left out (a read that starts at one refuses it by name, see `recovery`).
fn snapshot_points(dir: &Path, id: JournalId) -> Result<Vec<SnapshotPoint>, JournalError> {
    let mut points: Vec<SnapshotPoint> = snapshot::list(dir, u64::MAX)?
        .into_iter()
        .filter_map(|(seq, path)| {
            let h = snapshot::read_header(&path).ok()?;
            (h.journal == id && h.point.seq == seq).then_some(SnapshotPoint { point: h.point, path })
        })
        .collect();
    points.sort_by_key(|p| p.point.seq);
    Ok(points)
}

/// The error for a directory without segments.
fn no_segments(dir: &Path, marker: Option<&EndMarker>) -> Result<JournalError, JournalError> {
    let snapshots = snapshot::list(dir, u64::MAX)?;
    let what = match (marker, snapshots.first()) {
        (Some(m), _) => format!("there are no segment files, but its end marker says it ended at seq {}", m.last.seq),
        (None, Some((seq, path))) => {
            format!("there are no segment files, but {} is the state after seq {seq}", path.display())
        }
        (None, None) => return Ok(JournalError::NoJournal { dir: dir.to_path_buf() }),
    };
    Ok(JournalError::MissingSegment { dir: dir.to_path_buf(), index: 0, what })
}

/// Checks a header against its file and the journal's first segment.
fn check_header(
    path: &Path,
    index: u64,
    header: &Header,
    len: usize,
    journal: Option<JournalId>,
) -> Result<(), JournalError> {
    let bad = |what: String| Err(JournalError::BadSegment { path: path.to_path_buf(), what });
    if header.index != index {
        return bad(format!("its header says it is segment {}, its name {index}", header.index));
    }
    if header.capacity != len as u64 {
        return bad(format!("its header says {} bytes, the file has {len}", header.capacity));
    }
    if index == 0 && header.previous != Point::START {
        return bad(format!("segment 0 names a record before it (seq {})", header.previous.seq));
    }
    match journal {
        Some(id) if id != header.journal => {
            Err(JournalError::ForeignSegment { path: path.to_path_buf(), found: header.journal, expected: id })
        }
        _ => Ok(()),
    }
}
