//! The rules of one read of a journal, segment by segment (see `read` for what a read
//! proves).
//!
//! # Torn tail or corruption
//!
//! At a block that does not decode, the read decides. It is the **torn tail** — a record, or
//! a seal, whose writer died during its `memcpy` — only if:
//!
//! - its checksum does not match (a block whose checksum is right was written whole, by an
//!   encoder: if its contents are invalid, that is corruption, never a torn write);
//! - every byte after it is zero — from the end its intact length field gives, or from one
//!   maximal record past its start when the length itself is unreadable — in this segment
//!   and every later one;
//! - no valid record starts at any 8-byte boundary inside it;
//! - it is at the end of the last segment, or of the one before it when the last has no
//!   records yet (a seal torn while rolling).
//!
//! Anything else is **corruption**: an error naming the segment and the offset.

use std::ops::ControlFlow;

use l2x_types::Sequenced;

use super::read::{Journal, Mapped, ScanReport, SnapshotPoint, Tail, TornTail};
use super::record::{self, Block, MAX_RECORD};
use super::segment::HEADER_LEN;
use super::{JournalError, Point, end};

/// How a segment's walk ended.
pub(crate) enum Step {
    /// Its data ended without a seal: go on with the next segment, if there is one.
    Next,
    /// Its data ended with a seal naming the next segment, which must exist.
    Sealed(u64),
    /// The callback stopped the read.
    Stopped,
    /// The journal ended (the last segment's data ended, or a torn tail).
    Ended,
}

/// The state of one read.
pub(crate) struct Walk<'a> {
    journal: &'a Journal,
    from: Point,
    /// Whether the record `from` is still to be found in the segment the read began in.
    finding: bool,
    last: Point,
    /// Where the segment before the last ended without a seal, if it did.
    unsealed: Option<(u64, u64)>,
    /// The next of the journal's snapshot points to meet.
    next_point: usize,
    report: ScanReport,
}

impl<'a> Walk<'a> {
    /// A read from `from` beginning at segment `first` (the one holding record `from`).
    pub(crate) fn new(journal: &'a Journal, from: Point, first: usize) -> Result<Walk<'a>, JournalError> {
        let previous = journal.mapped()[first].header.previous;
        if from != Point::START && previous.seq >= from.seq {
            return Err(not_in_journal(journal, from, format!("segment {first} starts after it")));
        }
        let next_point = journal.snapshot_points().partition_point(|p| p.point.seq <= previous.seq);
        let report = ScanReport { last_seq: previous.seq, last: previous, ..ScanReport::default() };
        Ok(Walk { journal, from, finding: from != Point::START, last: previous, unsealed: None, next_point, report })
    }

    /// The last record read.
    pub(crate) fn last(&self) -> Point {
        self.last
    }

    /// What the read found, for a read its callback stopped.
    pub(crate) fn into_report(self) -> ScanReport {
        self.report
    }

    /// Reads segment `k` from its first block.
    pub(crate) fn segment(
        &mut self,
        k: usize,
        f: &mut impl FnMut(Sequenced, Point) -> ControlFlow<()>,
    ) -> Result<Step, JournalError> {
        let segments = self.journal.mapped();
        let Some(seg) = segments.get(k) else { return Ok(Step::Ended) };
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
                    if k + 2 == segments.len() {
                        self.unsealed = Some((k as u64, at as u64));
                    }
                    return Ok(if k + 1 == segments.len() { Step::Ended } else { Step::Next });
                }
                return self.torn_or_corrupt(&segments, k, at, "non-zero bytes after the end of the data");
            }
            let (block, len) = match record::decode_block(rest) {
                Ok(ok) => ok,
                Err(e) => return self.torn_or_corrupt(&segments, k, at, &e.to_string()),
            };
            let (cmd, crc, prev) = match block {
                Block::Seal { next } => return seal(seg, k, at, len, next),
                Block::Record(cmd, crc, prev) => (cmd, crc, prev),
            };
            self.check_order(seg, at, &cmd, prev)?;
            let point = Point { seq: cmd.seq.0, crc };
            self.check_snapshot_points(point)?;
            at += len;
            if self.passes_start(point, seg, at - len)? {
                continue;
            }
            if f(cmd, point).is_break() {
                self.report.tail = None;
                return Ok(Step::Stopped);
            }
            self.last = point;
            self.report.last = point;
            self.report.last_seq = point.seq;
            self.report.records += 1;
        }
    }

    /// A record's sequence number is after the last one's, and it names the last one's CRC.
    fn check_order(&self, seg: &Mapped, at: usize, cmd: &Sequenced, prev: u32) -> Result<(), JournalError> {
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
        Ok(())
    }

    /// Every snapshot of this journal names a record of it: the one the read just reached,
    /// or a later one.
    fn check_snapshot_points(&mut self, point: Point) -> Result<(), JournalError> {
        let points = self.journal.snapshot_points();
        while let Some(p) = points.get(self.next_point) {
            if p.point.seq > point.seq {
                break;
            }
            let what = if p.point.seq < point.seq {
                format!(
                    "the journal has no record {}: record {} follows record {}",
                    p.point.seq, point.seq, self.last.seq
                )
            } else if p.point.crc != point.crc {
                format!("the journal's record {} has CRC {:08x}: another history", point.seq, point.crc)
            } else {
                self.next_point += 1;
                continue;
            };
            return Err(snapshot_not_in_journal(self.journal, p, what));
        }
        Ok(())
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
        Err(not_in_journal(self.journal, self.from, what))
    }

    /// A block at `at` in segment `k` that does not decode: the torn tail, or corruption.
    fn torn_or_corrupt(&mut self, segs: &[Mapped], k: usize, at: usize, what: &str) -> Result<Step, JournalError> {
        let seg = &segs[k];
        let rest = &seg.map[at..];
        if record::checksum_ok(rest) {
            return Err(corrupt(seg, at, format!("{what} (its checksum is right: written whole, not torn)")));
        }
        let window_end = (at + record::claimed_len(rest).unwrap_or(MAX_RECORD)).min(seg.map.len());
        let nothing_after = seg.map[window_end..].iter().all(|&b| b == 0)
            && segs[k + 1..].iter().all(|s| s.map[HEADER_LEN..].iter().all(|&b| b == 0));
        let last_or_roll = k + 1 == segs.len() || k + 2 == segs.len();
        if let Some(p) = (at + 8..window_end).step_by(8).find(|&p| record::decode_block(&seg.map[p..]).is_ok()) {
            return Err(corrupt(seg, at, format!("{what}, and a valid record follows at byte offset {p}")));
        }
        if !(nothing_after && last_or_roll) {
            return Err(corrupt(seg, at, what.to_string()));
        }
        let bytes = seg.map[at..window_end].iter().filter(|&&b| b != 0).count() as u64;
        self.report.torn = Some(TornTail { path: seg.path.clone(), offset: at as u64, bytes });
        let torn = Some((k as u64, at as u64));
        let mut tail = Tail { segment: k as u64, offset: at as u64, torn, unsealed: self.unsealed };
        if k + 2 == segs.len() {
            // A seal torn while rolling: the last segment exists and is empty.
            if segs[k + 1].header.previous != self.last {
                return Err(corrupt(seg, at, what.to_string()));
            }
            tail = Tail { segment: k as u64 + 1, offset: HEADER_LEN as u64, torn, unsealed: torn };
        }
        self.report.tail = Some(tail);
        Ok(Step::Ended)
    }

    /// The end rules, once the read reached the journal's end.
    pub(crate) fn finish(mut self) -> Result<ScanReport, JournalError> {
        if self.finding {
            let what = format!("the journal ends at seq {}: the records after it are missing", self.last.seq);
            return Err(not_in_journal(self.journal, self.from, what));
        }
        if let Some(p) = self.journal.snapshot_points().get(self.next_point) {
            let what = format!(
                "{} is the state after seq {}, but the journal ends at seq {}: records {}..={} are missing",
                p.path.display(),
                p.point.seq,
                self.last.seq,
                self.last.seq + 1,
                p.point.seq
            );
            return Err(snapshot_not_in_journal(self.journal, p, what));
        }
        let n = self.journal.mapped().len() as u64;
        if let Some(tail) = &mut self.report.tail
            && tail.torn.is_none()
            && tail.segment + 1 == n
        {
            tail.unsealed = self.unsealed;
        }
        self.check_end_marker()?;
        Ok(self.report)
    }

    /// A clean stop's end marker names the last record.
    fn check_end_marker(&self) -> Result<(), JournalError> {
        let Some(marker) = self.journal.marker() else { return Ok(()) };
        let path = end::path(self.journal.dir());
        if let Some(torn) = &self.report.torn {
            let what =
                format!("the journal stopped cleanly, yet ends with a damaged record at {}", torn.path.display());
            return Err(JournalError::EndMismatch { path, what });
        }
        if marker.last != self.last {
            let what = format!(
                "it says the journal ended at record {} (CRC {:08x}), but the journal ends at record {} (CRC {:08x})",
                marker.last.seq, marker.last.crc, self.last.seq, self.last.crc
            );
            return Err(JournalError::EndMismatch { path, what });
        }
        Ok(())
    }
}

/// A seal at `at` (of `len` bytes) in segment `k`: the rest of the segment must be zero.
fn seal(seg: &Mapped, k: usize, at: usize, len: usize, next: u64) -> Result<Step, JournalError> {
    if next != k as u64 + 1 {
        return Err(corrupt(seg, at, format!("a seal naming segment {next} in segment {k}")));
    }
    if let Some(p) = seg.map[at + len..].iter().position(|&b| b != 0) {
        return Err(corrupt(seg, at + len + p, "data after the segment's seal".to_string()));
    }
    Ok(Step::Sealed(next))
}

fn corrupt(seg: &Mapped, at: usize, what: String) -> JournalError {
    JournalError::Corrupt { path: seg.path.clone(), offset: at as u64, what }
}

fn not_in_journal(journal: &Journal, point: Point, what: String) -> JournalError {
    JournalError::PointNotInJournal { dir: journal.dir().to_path_buf(), point, what }
}

fn snapshot_not_in_journal(journal: &Journal, p: &SnapshotPoint, what: String) -> JournalError {
    JournalError::SnapshotNotInJournal {
        path: p.path.clone(),
        source: Box::new(not_in_journal(journal, p.point, what)),
    }
}
