//! Segment files: names, the 96-byte header, creation and mapping.
//!
//! ```text
//! offset size  field
//!      0    8  magic          "L2XJRNL\0"
//!      8    4  version        format version (2)
//!     12    4  header length  96
//!     16    8  first seq      no record of the segment has a lower sequence number
//!     24    8  index          the segment's position in the journal (0, 1, 2, …)
//!     32    8  capacity       the file's size in bytes
//!     40   16  journal id     chosen when the journal was created; the same in every segment
//!     56    8  previous seq   the last record before this segment (0 for segment 0)
//!     64    4  previous crc   that record's CRC (0 for segment 0)
//!     68   24  reserved       zero
//!     92    4  crc            CRC32C of bytes 0 .. 92
//!     96    …  records        back to back; a zero length ends the data
//! ```
//!
//! The previous-record fields chain the segments: segment `k + 1` names the last record of
//! segment `k`, so a reader proves that no record is missing between them. A new segment
//! is written to `journal-N.l2xj.tmp` with its header, `fsync`ed, renamed into place and
//! the directory `fsync`ed, so a segment file under its final name always has a whole
//! header, even after a machine failure (two `fsync`s per segment, 64 MiB by default).

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use super::{JournalError, JournalId, Point, io, sync_dir};

pub(crate) const MAGIC: &[u8; 8] = b"L2XJRNL\0";
pub(crate) const VERSION: u32 = 2;
pub(crate) const HEADER_LEN: usize = 96;

/// The file name of segment `index`.
pub(crate) fn file_name(index: u64) -> String {
    format!("journal-{index:08}.l2xj")
}

/// The index in a segment file name, if it is one.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("journal-")?.strip_suffix(".l2xj")?;
    (digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Whether `name` is a segment that was being created when a writer stopped (never renamed
/// into place, so it never held a record).
pub(crate) fn is_unfinished(name: &str) -> bool {
    name.strip_suffix(".tmp").and_then(parse_name).is_some()
}

/// A segment's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) first_seq: u64,
    pub(crate) index: u64,
    pub(crate) capacity: u64,
    pub(crate) journal: JournalId,
    /// The last record before this segment ([`Point::START`] for segment 0).
    pub(crate) previous: Point,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        #[allow(clippy::cast_possible_truncation, reason = "96 fits")]
        b[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.index.to_le_bytes());
        b[32..40].copy_from_slice(&self.capacity.to_le_bytes());
        b[40..56].copy_from_slice(&self.journal.0);
        b[56..64].copy_from_slice(&self.previous.seq.to_le_bytes());
        b[64..68].copy_from_slice(&self.previous.crc.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..92]);
        b[92..96].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks a header.
    pub(crate) fn decode(path: &Path, b: &[u8]) -> Result<Header, JournalError> {
        let bad = |what: &str| JournalError::BadSegment { path: path.to_path_buf(), what: what.to_string() };
        if b.len() < 16 {
            return Err(bad("shorter than a segment header"));
        }
        if &b[0..8] != MAGIC {
            return Err(bad("not an l2x journal segment (bad magic)"));
        }
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let version = word(8);
        if version > VERSION {
            return Err(JournalError::NewerFormat { path: path.to_path_buf(), version });
        }
        if version < VERSION {
            return Err(JournalError::OlderFormat { path: path.to_path_buf(), version });
        }
        if b.len() < HEADER_LEN {
            return Err(bad("shorter than its 96-byte header"));
        }
        if word(12) as usize != HEADER_LEN {
            return Err(bad("header length is not 96"));
        }
        if crc32c::crc32c(&b[0..92]) != word(92) {
            return Err(bad("header checksum mismatch"));
        }
        if b[68..92].iter().any(|&x| x != 0) {
            return Err(bad("reserved header bytes are not zero"));
        }
        let long = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
        let mut journal = [0u8; 16];
        journal.copy_from_slice(&b[40..56]);
        Ok(Header {
            first_seq: long(16),
            index: long(24),
            capacity: long(32),
            journal: JournalId(journal),
            previous: Point { seq: long(56), crc: word(64) },
        })
    }
}

/// An open, mapped segment.
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) header: Header,
    pub(crate) map: MmapMut,
}

impl Segment {
    /// Creates the segment `header` describes in `dir` (zero-filled, `header.capacity`
    /// bytes): written under a temporary name with its header, then renamed into place.
    pub(crate) fn create(dir: &Path, header: Header) -> Result<Segment, JournalError> {
        let path = dir.join(file_name(header.index));
        if path.exists() {
            return Err(JournalError::BadSegment {
                path,
                what: "exists already: a writer never replaces a segment".to_string(),
            });
        }
        let tmp = dir.join(format!("{}.tmp", file_name(header.index)));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| io(&tmp, e))?;
        // Durable before it has a name, and its name durable before anything refers to it
        // (the seal of the segment before): after a machine failure a segment file under
        // its final name has its whole header, and a seal never names a lost file.
        file.write_all(&header.encode())
            .and_then(|()| file.set_len(header.capacity))
            .and_then(|()| file.sync_all())
            .map_err(|e| io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        sync_dir(dir)?;
        let map = map(&file, &path)?;
        Ok(Segment { path, header, map })
    }

    /// Maps an existing segment for writing and checks its header.
    pub(crate) fn open(path: &Path) -> Result<Segment, JournalError> {
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| io(path, e))?;
        let map = map(&file, path)?;
        let header = Header::decode(path, &map)?;
        if header.capacity != map.len() as u64 {
            return Err(JournalError::BadSegment {
                path: path.to_path_buf(),
                what: format!("header says {} bytes, the file has {}", header.capacity, map.len()),
            });
        }
        Ok(Segment { path: path.to_path_buf(), header, map })
    }
}

impl core::fmt::Debug for Segment {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Segment").field("path", &self.path).field("header", &self.header).finish()
    }
}

fn map(file: &File, path: &Path) -> Result<MmapMut, JournalError> {
    // SAFETY: the journal directory is this process's own: no other process writes or
    // truncates its segment files while they are mapped (the writer takes a lock file, and
    // readers map read-only copies only of segments the writer has finished or is
    // appending to, whose existing bytes never change).
    #[allow(unsafe_code, reason = "memory-mapping a file is unsafe by construction (memmap2)")]
    unsafe {
        MmapMut::map_mut(file).map_err(|e| io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(42), "journal-00000042.l2xj");
        assert_eq!(parse_name("journal-00000042.l2xj"), Some(42));
        assert_eq!(parse_name("journal-42.l2xj"), None);
        assert_eq!(parse_name("snapshot-00000042.l2xs"), None);
        assert!(is_unfinished("journal-00000042.l2xj.tmp"));
        assert!(!is_unfinished("journal-00000042.l2xj"));
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = Header {
            first_seq: 7,
            index: 3,
            capacity: 4096,
            journal: JournalId([9; 16]),
            previous: Point { seq: 6, crc: 0xdead_beef },
        };
        let b = h.encode();
        assert_eq!(Header::decode(Path::new("x"), &b).unwrap(), h);
        for i in 0..HEADER_LEN {
            let mut bad = b;
            bad[i] ^= 0x40;
            assert!(Header::decode(Path::new("x"), &bad).is_err(), "flip at {i} accepted");
        }
    }
}
