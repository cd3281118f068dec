//! Segment files: names, the 64-byte header, creation and mapping.
//!
//! ```text
//! offset size  field
//!      0    8  magic          "L2XJRNL\0"
//!      8    4  version        format version (1)
//!     12    4  header length  64
//!     16    8  first seq      sequence number the segment starts at (its first record's, or
//!                             the one after the previous segment's last)
//!     24    8  index          the segment's position in the journal (0, 1, 2, …)
//!     32    8  capacity       the file's size in bytes
//!     40    4  crc            CRC32C of bytes 0 .. 40
//!     44   20  reserved       zero
//!     64    …  records        back to back; a zero length ends the data
//! ```

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use super::JournalError;

pub(crate) const MAGIC: &[u8; 8] = b"L2XJRNL\0";
pub(crate) const VERSION: u32 = 1;
pub(crate) const HEADER_LEN: usize = 64;

/// The file name of segment `index`.
pub(crate) fn file_name(index: u64) -> String {
    format!("journal-{index:08}.l2xj")
}

/// The index in a segment file name, if it is one.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("journal-")?.strip_suffix(".l2xj")?;
    (digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// A segment's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) first_seq: u64,
    pub(crate) index: u64,
    pub(crate) capacity: u64,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        #[allow(clippy::cast_possible_truncation, reason = "64 fits")]
        b[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.index.to_le_bytes());
        b[32..40].copy_from_slice(&self.capacity.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..40]);
        b[40..44].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks a header.
    pub(crate) fn decode(path: &Path, b: &[u8]) -> Result<Header, JournalError> {
        let bad = |what: &str| JournalError::BadSegment { path: path.to_path_buf(), what: what.to_string() };
        if b.len() < HEADER_LEN {
            return Err(bad("shorter than its 64-byte header"));
        }
        if &b[0..8] != MAGIC {
            return Err(bad("not an l2x journal segment (bad magic)"));
        }
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let long = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
        let version = word(8);
        if version > VERSION {
            return Err(JournalError::NewerFormat { path: path.to_path_buf(), version });
        }
        if version != VERSION || word(12) as usize != HEADER_LEN {
            return Err(bad("unsupported header version or length"));
        }
        if crc32c::crc32c(&b[0..40]) != word(40) {
            return Err(bad("header checksum mismatch"));
        }
        if b[44..64].iter().any(|&x| x != 0) {
            return Err(bad("reserved header bytes are not zero"));
        }
        Ok(Header { first_seq: long(16), index: long(24), capacity: long(32) })
    }
}

/// An open, mapped segment.
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) header: Header,
    pub(crate) map: MmapMut,
}

fn io(path: &Path, source: std::io::Error) -> JournalError {
    JournalError::Io { path: path.to_path_buf(), source }
}

impl Segment {
    /// Creates segment `index` (zero-filled, `capacity` bytes) with its header.
    pub(crate) fn create(dir: &Path, index: u64, first_seq: u64, capacity: u64) -> Result<Segment, JournalError> {
        let path = dir.join(file_name(index));
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path).map_err(|e| io(&path, e))?;
        file.set_len(capacity).map_err(|e| io(&path, e))?;
        let mut map = map(&file, &path)?;
        let header = Header { first_seq, index, capacity };
        map[..HEADER_LEN].copy_from_slice(&header.encode());
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
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = Header { first_seq: 7, index: 3, capacity: 4096 };
        let b = h.encode();
        assert_eq!(Header::decode(Path::new("x"), &b).unwrap(), h);
        for i in 0..HEADER_LEN {
            let mut bad = b;
            bad[i] ^= 0x40;
            assert!(Header::decode(Path::new("x"), &bad).is_err(), "flip at {i} accepted");
        }
    }
}
