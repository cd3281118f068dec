//! Snapshots: the whole state after some command, so that recovery and replay start there
//! instead of at the first command.
//!
//! ```text
//! offset size  field
//!      0    8  magic          "L2XSNAP\0"
//!      8    4  version        2
//!     12    4  header length  96
//!     16    8  seq            the state is the one after this command
//!     24    8  length         payload bytes
//!     32   32  sha256         SHA-256 of the payload (= the state hash)
//!     64   16  journal id     the journal the state was taken from
//!     80    4  record crc     the CRC of that journal's record `seq`
//!     84    8  reserved       zero
//!     92    4  crc            CRC32C of bytes 0 .. 92
//!     96    …  payload        the canonical state encoding (`CanonicalState::encode`)
//! ```
//!
//! The journal id and the record CRC bind a snapshot to one history: a reader uses it only
//! for a journal with that id whose record `seq` has that CRC (see `super::recovery`).
//!
//! A snapshot is written to `snapshot-<seq>.l2xs.tmp`, `fsync`ed, renamed into place and the
//! directory `fsync`ed: a crash leaves either the old set or the new one, never half a file
//! under the final name. Loading verifies the header, the length, the checksum and the
//! decoding, then rebuilds a state machine and checks that its canonical state is the
//! snapshot's.
//!
//! Taking a snapshot costs the sequencer one walk of the state ([`l2x_engine::StateMachine::canonical`]);
//! encoding, hashing and writing happen wherever the caller runs [`write()`] (the pipeline
//! does it on its snapshot thread).

use std::fs::{self, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use l2x_risk::Ledger;
use l2x_types::bytes::DecodeError;
use sha2::{Digest, Sha256};

use super::{JournalError, JournalId, Point, io, sync_dir};
use l2x_engine::CanonicalState;
use l2x_engine::{RestoreError, StateMachine};

const MAGIC: &[u8; 8] = b"L2XSNAP\0";
const VERSION: u32 = 2;
const HEADER: usize = 96;

/// Why a snapshot file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Io(#[source] std::io::Error),
    /// The header is not a valid snapshot header.
    #[error("{0}")]
    BadHeader(&'static str),
    /// Another format version.
    #[error("snapshot format version {0}, this l2x reads {VERSION}")]
    Version(u32),
    /// The payload's length is not the header's.
    #[error("payload is {found} bytes, the header says {header}")]
    Length {
        /// The header's.
        header: u64,
        /// The file's.
        found: u64,
    },
    /// The payload is not what was written.
    #[error("checksum mismatch (the payload is not what was written)")]
    Checksum,
    /// The payload does not decode.
    #[error("payload does not decode: {0}")]
    Decode(#[source] DecodeError),
    /// The payload decodes but is not a consistent state.
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

/// What a snapshot's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The journal it was taken from.
    pub journal: JournalId,
    /// The journal point it is the state at: after record `seq`, whose CRC is `crc`.
    pub point: Point,
    /// Payload bytes.
    pub len: u64,
    /// SHA-256 of the payload: the state hash at `point.seq`.
    pub hash: [u8; 32],
}

impl SnapshotHeader {
    fn encode(&self) -> [u8; HEADER] {
        let mut b = [0u8; HEADER];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        #[allow(clippy::cast_possible_truncation, reason = "96 fits")]
        b[12..16].copy_from_slice(&(HEADER as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.point.seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.len.to_le_bytes());
        b[32..64].copy_from_slice(&self.hash);
        b[64..80].copy_from_slice(&self.journal.0);
        b[80..84].copy_from_slice(&self.point.crc.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..92]);
        b[92..96].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<SnapshotHeader, SnapshotError> {
        if b.len() < 12 || &b[0..8] != MAGIC {
            return Err(SnapshotError::BadHeader("not an l2x snapshot (bad magic)"));
        }
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        if word(8) != VERSION {
            return Err(SnapshotError::Version(word(8)));
        }
        if b.len() < HEADER {
            return Err(SnapshotError::BadHeader("shorter than its 96-byte header"));
        }
        if word(12) as usize != HEADER {
            return Err(SnapshotError::BadHeader("header length is not 96"));
        }
        if crc32c::crc32c(&b[0..92]) != word(92) {
            return Err(SnapshotError::BadHeader("header checksum mismatch"));
        }
        if b[84..92].iter().any(|&x| x != 0) {
            return Err(SnapshotError::BadHeader("reserved header bytes are not zero"));
        }
        let long = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
        let mut journal = [0u8; 16];
        journal.copy_from_slice(&b[64..80]);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&b[32..64]);
        Ok(SnapshotHeader {
            journal: JournalId(journal),
            point: Point { seq: long(16), crc: word(80) },
            len: long(24),
            hash,
        })
    }
}

/// The file name of the snapshot after command `seq`.
pub fn file_name(seq: u64) -> String {
    format!("snapshot-{seq:020}.l2xs")
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("snapshot-")?.strip_suffix(".l2xs")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Writes the snapshot of `state` — the state of journal `journal` at `point` — into `dir`,
/// atomically. Returns its path.
///
/// # Errors
/// I/O errors.
pub fn write(dir: &Path, journal: JournalId, point: Point, state: &CanonicalState) -> Result<PathBuf, JournalError> {
    let payload = state.encode();
    let header = SnapshotHeader { journal, point, len: payload.len() as u64, hash: Sha256::digest(&payload).into() };
    let path = dir.join(file_name(point.seq));
    let tmp = dir.join(format!("{}.tmp", file_name(point.seq)));
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(|e| io(&tmp, e))?;
    file.write_all(&header.encode()).and_then(|()| file.write_all(&payload)).map_err(|e| io(&tmp, e))?;
    file.sync_all().map_err(|e| io(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    sync_dir(dir)?;
    Ok(path)
}

/// Reads and checks a snapshot's header alone (a cheap look: which journal, which point).
///
/// # Errors
/// [`SnapshotError`] if the file cannot be read or its header is not valid.
pub fn read_header(path: &Path) -> Result<SnapshotHeader, SnapshotError> {
    let mut head = Vec::with_capacity(HEADER);
    fs::File::open(path).and_then(|f| f.take(HEADER as u64).read_to_end(&mut head)).map_err(SnapshotError::Io)?;
    SnapshotHeader::decode(&head)
}

/// Reads and fully verifies one snapshot file, returning its header and state.
///
/// # Errors
/// [`SnapshotError`] saying why the snapshot cannot be used.
pub fn read(path: &Path, ledger: Ledger) -> Result<(SnapshotHeader, StateMachine), SnapshotError> {
    let bytes = fs::read(path).map_err(SnapshotError::Io)?;
    let header = SnapshotHeader::decode(&bytes)?;
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != header.len {
        return Err(SnapshotError::Length { header: header.len, found: payload.len() as u64 });
    }
    if Sha256::digest(payload).as_slice() != header.hash {
        return Err(SnapshotError::Checksum);
    }
    let state = CanonicalState::decode(payload).map_err(SnapshotError::Decode)?;
    let sm = StateMachine::restore(&state, ledger)?;
    Ok((header, sm))
}

/// Snapshots in `dir` with a sequence number at most `max_seq`, newest first (by name).
///
/// # Errors
/// I/O errors reading the directory.
pub fn list(dir: &Path, max_seq: u64) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_name).filter(|&s| s <= max_seq) {
            found.push((seq, entry.path()));
        }
    }
    found.sort_by(|a, b| b.cmp(a));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_name(&file_name(1234)), Some(1234));
        assert_eq!(parse_name("snapshot-1234.l2xs"), None);
        assert_eq!(parse_name(&format!("{}.tmp", file_name(1))), None);
    }

    #[test]
    fn header_round_trips_and_detects_every_flipped_byte() {
        let h = SnapshotHeader {
            journal: JournalId([3; 16]),
            point: Point { seq: 12, crc: 0xabcd_0123 },
            len: 77,
            hash: [5; 32],
        };
        let b = h.encode();
        assert_eq!(SnapshotHeader::decode(&b).unwrap(), h);
        for i in 0..HEADER {
            let mut bad = b;
            bad[i] ^= 0x10;
            assert!(SnapshotHeader::decode(&bad).is_err(), "flip at {i} accepted");
        }
    }
}
