//! The end marker: where the journal ended when its writer stopped cleanly.
//!
//! ```text
//!  DIR/journal.end
//! offset size  field
//!      0    8  magic       "L2XJEND\0"
//!      8    4  version     1
//!     12    4  reserved    zero
//!     16   16  journal id  the journal's
//!     32    8  last seq    the journal's last record (0: none)
//!     40    4  last crc    that record's CRC (0: none)
//!     44    4  crc         CRC32C of bytes 0 .. 44
//! ```
//!
//! A writer that stops cleanly writes it (to a temporary name, `fsync`ed, renamed, the
//! directory `fsync`ed); a writer that opens the journal checks it against the records and
//! removes it before its first append. While it exists, a reader that reaches the end of the
//! journal must find exactly that last record: a journal cut short after a clean stop (its
//! newest segment deleted, its last records zeroed) is an error, not a shorter history.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{JournalError, JournalId, Point, io, sync_dir};

/// The marker's file name.
pub(crate) const FILE_NAME: &str = "journal.end";

const MAGIC: &[u8; 8] = b"L2XJEND\0";
const VERSION: u32 = 1;
const LEN: usize = 48;

/// A clean stop's record of the journal's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EndMarker {
    pub(crate) journal: JournalId,
    pub(crate) last: Point,
}

impl EndMarker {
    fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[16..32].copy_from_slice(&self.journal.0);
        b[32..40].copy_from_slice(&self.last.seq.to_le_bytes());
        b[40..44].copy_from_slice(&self.last.crc.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(path: &Path, b: &[u8]) -> Result<EndMarker, JournalError> {
        let bad = |what: &str| JournalError::BadEndMarker { path: path.to_path_buf(), what: what.to_string() };
        if b.len() != LEN {
            return Err(bad(&format!("{} bytes, an end marker has {LEN}", b.len())));
        }
        if &b[0..8] != MAGIC {
            return Err(bad("not an l2x end marker (bad magic)"));
        }
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        if word(8) != VERSION {
            return Err(bad(&format!("version {}, this l2x reads {VERSION}", word(8))));
        }
        if crc32c::crc32c(&b[0..44]) != word(44) {
            return Err(bad("checksum mismatch"));
        }
        if word(12) != 0 {
            return Err(bad("reserved bytes are not zero"));
        }
        let mut journal = [0u8; 16];
        journal.copy_from_slice(&b[16..32]);
        let seq = u64::from_le_bytes(b[32..40].try_into().unwrap_or([0; 8]));
        Ok(EndMarker { journal: JournalId(journal), last: Point { seq, crc: word(40) } })
    }
}

/// The path of the marker in `dir`.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// The marker in `dir`, if there is one.
pub(crate) fn read(dir: &Path) -> Result<Option<EndMarker>, JournalError> {
    let path = path(dir);
    match fs::read(&path) {
        Ok(bytes) => EndMarker::decode(&path, &bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path, e)),
    }
}

/// Writes the marker atomically and durably.
pub(crate) fn write(dir: &Path, marker: EndMarker) -> Result<(), JournalError> {
    let path = path(dir);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(|e| io(&tmp, e))?;
    file.write_all(&marker.encode()).and_then(|()| file.sync_all()).map_err(|e| io(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    sync_dir(dir)
}

/// Removes the marker durably (a writer does, before it appends).
pub(crate) fn remove(dir: &Path) -> Result<(), JournalError> {
    let path = path(dir);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_and_detects_every_flipped_byte() {
        let m = EndMarker { journal: JournalId([7; 16]), last: Point { seq: 99, crc: 0x1234_5678 } };
        let b = m.encode();
        assert_eq!(EndMarker::decode(Path::new("x"), &b).unwrap(), m);
        for i in 0..LEN {
            let mut bad = b;
            bad[i] ^= 0x01;
            assert!(EndMarker::decode(Path::new("x"), &bad).is_err(), "flip at {i} accepted");
        }
        assert!(EndMarker::decode(Path::new("x"), &b[..LEN - 1]).is_err());
    }
}
