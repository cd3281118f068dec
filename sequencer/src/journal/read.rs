//! Reading a journal back: one reader and one set of rules for everything that reads a
//! journal — recovery, replay, export, what-if, the gateway's start-up, settlement.
//!
//! # What a read proves
//!
//! ```text
//!  open:  segments 0, 1, …, n-1 all present (numbered from 0, no gaps), every header valid,
//!         index and size as the file, one journal id in all of them, segment 0 starting
//!         the journal (previous record: none)
//!  read:  from the start, or from a snapshot's point (seq S with CRC C):
//!           the record S must be in the journal with CRC C (or be the record a segment
//!           header names as its previous one)
//!         every record valid and after the one before it (strictly increasing seq);
//!         each segment's header names the last record of the segment before it
//!  end:   the last segment must not be sealed (a seal says another segment follows);
//!         a damaged block is the torn tail only if nothing valid follows it;
//!         an end marker from a clean stop must name the last record exactly
//! ```
//!
//! A read that its callback stops early (`ControlFlow::Break`) has proven the journal up to
//! where it stopped; the end rules apply only to reads that reach the end.
//!
//! # Torn tail or corruption
//!
//! At a block that does not decode, the read decides: it is the **torn tail** (a record —
//! or a seal — whose writer died during its `memcpy`) only if every byte after it is zero —
//! from the end its intact length field gives, or from one maximal record past its start
//! when the length itself is unreadable — in this segment and every later one, and no valid
//! record starts anywhere inside it. Anything else is **corruption**: an error naming the
//! segment and the offset. A torn tail can only be at the end of the last segment, or at
//! the end of the one before it when the last has no records yet (a seal torn while
//! rolling).
//!
//! # Reading a journal that is being written
//!
//! A reader maps the segments as they are and may meet the record being appended at that
//! moment: it reports it as a torn tail (and, in a rare race with a writer that goes on
//! appending while the reader checks what follows, as corruption). Readers inside the node
//! read only up to the sequence number the writer has published.

use std::fs::{self, File};
use std::io::Read as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use l2x_types::Sequenced;
use memmap2::Mmap;

use super::end::{self, EndMarker};
use super::record::{self, Block, MAX_RECORD};
use super::segment::{self, HEADER_LEN, Header};
use super::{JournalError, JournalId, Point, io};

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
struct Mapped {
    path: PathBuf,
    header: Header,
    map: Mmap,
}

/// An open journal directory: its segments checked and mapped, ready to be read.
pub struct Journal {
    dir: PathBuf,
    id: JournalId,
    segments: Vec<Mapped>,
    marker: Option<EndMarker>,
}

impl core::fmt::Debug for Journal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("id", &self.id)
            .field("segments", &self.segments.len())
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
    /// documentation, "open") and reads its end marker if there is one.
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
        let mut segments = Vec::with_capacity(files.len());
        for (index, path) in files {
            let file = File::open(&path).map_err(|e| io(&path, e))?;
            // SAFETY: see `segment::map`: the segment's existing bytes are not changed by
            // anyone while it is mapped here (the writer only appends past them).
            #[allow(unsafe_code, reason = "memory-mapping a file is unsafe by construction (memmap2)")]
            let map = unsafe { Mmap::map(&file) }.map_err(|e| io(&path, e))?;
            let header = Header::decode(&path, &map)?;
            check_header(&path, index, &header, map.len(), segments.first().map(|s: &Mapped| s.header.journal))?;
            segments.push(Mapped { path, header, map });
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
        Ok(Journal { dir: dir.to_path_buf(), id, segments, marker })
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
    /// [`JournalError::MissingSegment`] when the last segment is sealed;
    /// [`JournalError::EndMismatch`] when the end marker names another last record.
    pub fn read(
        &self,
        from: Point,
        mut f: impl FnMut(Sequenced) -> ControlFlow<()>,
    ) -> Result<ScanReport, JournalError> {
        let first = self.segments.iter().rposition(|s| s.header.previous.seq <= from.seq).unwrap_or(0);
        let mut walk = Walk::new(self, from, first)?;
        for k in first..self.segments.len() {
            match walk.segment(k, &mut f)? {
                Step::Next => {}
                Step::Stopped => return Ok(walk.report),
                Step::Ended => break,
            }
        }
        walk.finish()
    }
}

/// The error for a directory without segments.
fn no_segments(dir: &Path, marker: Option<&EndMarker>) -> Result<JournalError, JournalError> {
    let snapshots = super::snapshot::list(dir, u64::MAX)?;
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

/// How a segment's walk ended.
enum Step {
    /// Its data ended (sealed or not): go on with the next segment.
    Next,
    /// The callback stopped the read.
    Stopped,
    /// The journal ended in it (a torn tail).
    Ended,
}

/// The state of one read.
struct Walk<'a> {
    journal: &'a Journal,
    from: Point,
    /// Whether the record `from` is still to be found (the read started inside the segment
    /// holding it rather than at a header naming it).
    finding: bool,
    last: Point,
    /// Where the segment before the last ended without a seal, if it did.
    unsealed: Option<(u64, u64)>,
    report: ScanReport,
}

impl<'a> Walk<'a> {
    /// A read from `from` starting at segment `first` (the last whose header's previous
    /// record is at or before `from`).
    fn new(journal: &'a Journal, from: Point, first: usize) -> Result<Walk<'a>, JournalError> {
        let previous = journal.segments[first].header.previous;
        let finding = previous.seq < from.seq;
        if !finding && previous != from {
            return Err(JournalError::PointNotInJournal {
                dir: journal.dir.clone(),
                point: from,
                what: format!(
                    "segment {first}'s header names record {} with CRC {:08x} there",
                    previous.seq, previous.crc
                ),
            });
        }
        let report = ScanReport { last_seq: previous.seq, last: previous, ..ScanReport::default() };
        Ok(Walk { journal, from, finding, last: previous, unsealed: None, report })
    }

    /// Reads segment `k` from its first block.
    fn segment(&mut self, k: usize, f: &mut impl FnMut(Sequenced) -> ControlFlow<()>) -> Result<Step, JournalError> {
        let seg = &self.journal.segments[k];
        if seg.header.previous != self.last {
            return Err(JournalError::Chain {
                path: seg.path.clone(),
                what: format!(
                    "its header names record {} (CRC {:08x}) as the one before it, but the journal before it ends at \
                     record {} (CRC {:08x})",
                    seg.header.previous.seq, seg.header.previous.crc, self.last.seq, self.last.crc
                ),
            });
        }
        self.report.segments += 1;
        let mut at = HEADER_LEN;
        loop {
            self.report.tail = Some(Tail { segment: k as u64, offset: at as u64, torn: None, unsealed: None });
            let rest = &seg.map[at..];
            if rest.len() < 4 || rest[..4] == [0, 0, 0, 0] {
                if rest.iter().all(|&b| b == 0) {
                    if k + 2 == self.journal.segments.len() {
                        self.unsealed = Some((k as u64, at as u64));
                    }
                    return Ok(Step::Next);
                }
                return self.torn_or_corrupt(k, at, "non-zero bytes after the end of the data");
            }
            let (block, len) = match record::decode_block(rest) {
                Ok(ok) => ok,
                Err(e) => return self.torn_or_corrupt(k, at, &e.to_string()),
            };
            match block {
                Block::Seal { next } => return self.seal(k, at + len, next),
                Block::Record(cmd, crc, prev) => {
                    if cmd.seq.0 <= self.last.seq || cmd.seq.0 < seg.header.first_seq {
                        return Err(corrupt(seg, at, format!("sequence {} after {}", cmd.seq.0, self.last.seq)));
                    }
                    if prev != self.last.crc {
                        let what = format!(
                            "record {} names a previous record with CRC {prev:08x}, the record before it (seq {}) has CRC {:08x}",
                            cmd.seq.0, self.last.seq, self.last.crc
                        );
                        return Err(corrupt(seg, at, what));
                    }
                    let point = Point { seq: cmd.seq.0, crc };
                    at += len;
                    if self.passes_start(point, seg, at - len)? {
                        continue;
                    }
                    if f(cmd).is_break() {
                        self.report.tail = None;
                        return Ok(Step::Stopped);
                    }
                    self.last = point;
                    self.report.last = point;
                    self.report.last_seq = point.seq;
                    self.report.records += 1;
                }
            }
        }
    }

    /// Whether the record at `point` is at or before the read's start (and so is not passed
    /// on); checks the starting record itself.
    fn passes_start(&mut self, point: Point, seg: &Mapped, at: usize) -> Result<bool, JournalError> {
        if !self.finding {
            return Ok(false);
        }
        if point.seq < self.from.seq {
            self.last = point;
            return Ok(true);
        }
        self.finding = false;
        if point == self.from {
            self.last = point;
            self.report.last = point;
            self.report.last_seq = point.seq;
            return Ok(true);
        }
        let what = if point.seq == self.from.seq {
            format!(
                "the journal's record {} has CRC {:08x} ({}, byte offset {at})",
                point.seq,
                point.crc,
                seg.path.display()
            )
        } else {
            format!(
                "the journal has no record {}: record {} follows record {}",
                self.from.seq, point.seq, self.last.seq
            )
        };
        Err(JournalError::PointNotInJournal { dir: self.journal.dir.clone(), point: self.from, what })
    }

    /// A seal at the end of segment `k`'s data (`after` is the offset just past it).
    fn seal(&mut self, k: usize, after: usize, next: u64) -> Result<Step, JournalError> {
        let seg = &self.journal.segments[k];
        if next != k as u64 + 1 {
            return Err(corrupt(seg, after - record::SEAL_LEN, format!("a seal naming segment {next} in segment {k}")));
        }
        if let Some(p) = seg.map[after..].iter().position(|&b| b != 0) {
            return Err(corrupt(seg, after + p, "data after the segment's seal".to_string()));
        }
        if k + 1 == self.journal.segments.len() {
            return Err(JournalError::MissingSegment {
                dir: self.journal.dir.clone(),
                index: next,
                what: format!(
                    "segment {k} ends with a seal saying the journal goes on there: the records after seq {} are not there",
                    self.last.seq
                ),
            });
        }
        Ok(Step::Next)
    }

    /// A block at `at` in segment `k` that does not decode: the torn tail, or corruption.
    fn torn_or_corrupt(&mut self, k: usize, at: usize, what: &str) -> Result<Step, JournalError> {
        let segs = &self.journal.segments;
        let seg = &segs[k];
        let len = record::claimed_len(&seg.map[at..]).unwrap_or(MAX_RECORD);
        let window_end = (at + len).min(seg.map.len());
        let nothing_after = seg.map[window_end..].iter().all(|&b| b == 0)
            && segs[k + 1..].iter().all(|s| s.map[HEADER_LEN..].iter().all(|&b| b == 0));
        let last_or_roll = k + 1 == segs.len() || k + 2 == segs.len();
        let valid_inside = (at + 8..window_end).step_by(8).find(|&p| record::decode_block(&seg.map[p..]).is_ok());
        match valid_inside {
            Some(p) => {
                return Err(corrupt(seg, at, format!("{what}, and a valid record follows at byte offset {p}")));
            }
            None if !(nothing_after && last_or_roll) => return Err(corrupt(seg, at, what.to_string())),
            None => {}
        }
        let bytes = seg.map[at..window_end].iter().filter(|&&b| b != 0).count() as u64;
        self.report.torn = Some(TornTail { path: seg.path.clone(), offset: at as u64, bytes });
        let mut tail =
            Tail { segment: k as u64, offset: at as u64, torn: Some((k as u64, at as u64)), unsealed: self.unsealed };
        if k + 2 == segs.len() {
            // A seal torn while rolling: the last segment exists and is empty.
            tail = Tail { segment: k as u64 + 1, offset: HEADER_LEN as u64, torn: tail.torn, unsealed: tail.torn };
            if segs[k + 1].header.previous != self.last {
                return Err(corrupt(seg, at, what.to_string()));
            }
        }
        self.report.tail = Some(tail);
        Ok(Step::Ended)
    }

    /// The end rules, after the last segment was read.
    fn finish(mut self) -> Result<ScanReport, JournalError> {
        let n = self.journal.segments.len();
        if self.finding {
            return Err(JournalError::PointNotInJournal {
                dir: self.journal.dir.clone(),
                point: self.from,
                what: format!("the journal ends at seq {}: the records after it are missing", self.last.seq),
            });
        }
        if let Some(tail) = &mut self.report.tail
            && tail.torn.is_none()
            && tail.segment + 1 == n as u64
        {
            tail.unsealed = self.unsealed;
        }
        if let Some(marker) = &self.journal.marker {
            let path = end::path(&self.journal.dir);
            if let Some(torn) = &self.report.torn {
                return Err(JournalError::EndMismatch {
                    path,
                    what: format!(
                        "the journal stopped cleanly, yet ends with a damaged record at {}",
                        torn.path.display()
                    ),
                });
            }
            if marker.last != self.last {
                return Err(JournalError::EndMismatch {
                    path,
                    what: format!(
                        "it says the journal ended at record {} (CRC {:08x}), but the journal ends at record {} (CRC {:08x})",
                        marker.last.seq, marker.last.crc, self.last.seq, self.last.crc
                    ),
                });
            }
        }
        Ok(self.report)
    }
}

fn corrupt(seg: &Mapped, at: usize, what: String) -> JournalError {
    JournalError::Corrupt { path: seg.path.clone(), offset: at as u64, what }
}
