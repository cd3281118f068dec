//! Snapshots: the whole state after some command, so that recovery and replay start there
//! instead of at the first command.
//!
//! ```text
//! offset size  field
//!      0    8  magic     "L2XSNAP\0"
//!      8    4  version   1
//!     12    4  reserved  zero
//!     16    8  seq       the state is the one after this command
//!     24    8  length    payload bytes
//!     32   32  sha256    SHA-256 of the payload (= the state hash)
//!     64    …  payload   the canonical state encoding (`CanonicalState::encode`)
//! ```
//!
//! A snapshot is written to `snapshot-<seq>.l2xs.tmp`, `fsync`ed, renamed into place and the
//! directory `fsync`ed: a crash leaves either the old set or the new one, never half a file
//! under the final name. Loading verifies the header, the length, the checksum and the
//! decoding, then rebuilds a state machine and checks that its canonical state is the
//! snapshot's; a snapshot that fails any of these is refused (with the reason) and an older
//! one is tried.
//!
//! Taking a snapshot costs the sequencer one walk of the state ([`crate::StateMachine::canonical`]);
//! encoding, hashing and writing happen wherever the caller runs [`write()`] (the pipeline
//! does it on its snapshot thread).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use l2x_risk::Ledger;
use sha2::{Digest, Sha256};

use super::{JournalError, io};
use crate::canonical::CanonicalState;
use crate::state::StateMachine;

const MAGIC: &[u8; 8] = b"L2XSNAP\0";
const VERSION: u32 = 1;
const HEADER: usize = 64;

/// The file name of the snapshot after command `seq`.
pub fn file_name(seq: u64) -> String {
    format!("snapshot-{seq:020}.l2xs")
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("snapshot-")?.strip_suffix(".l2xs")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Writes the snapshot of `state` (the state after command `seq`) into `dir`, atomically.
/// Returns its path.
///
/// # Errors
/// I/O errors.
pub fn write(dir: &Path, seq: u64, state: &CanonicalState) -> Result<PathBuf, JournalError> {
    let payload = state.encode();
    let mut header = [0u8; HEADER];
    header[0..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&seq.to_le_bytes());
    header[24..32].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    header[32..64].copy_from_slice(&Sha256::digest(&payload));
    let path = dir.join(file_name(seq));
    let tmp = dir.join(format!("{}.tmp", file_name(seq)));
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(|e| io(&tmp, e))?;
    file.write_all(&header).and_then(|()| file.write_all(&payload)).map_err(|e| io(&tmp, e))?;
    file.sync_all().map_err(|e| io(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, e))?;
    Ok(path)
}

/// Reads and fully verifies one snapshot file, returning its sequence number and state.
///
/// # Errors
/// A description of why the snapshot is refused.
pub fn read(path: &Path, ledger: Ledger) -> Result<(u64, StateMachine), String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() < HEADER || &bytes[0..8] != MAGIC {
        return Err("not an l2x snapshot (bad magic)".to_string());
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != VERSION {
        return Err(format!("snapshot format version {version}, this l2x reads {VERSION}"));
    }
    let seq = u64::from_le_bytes(bytes[16..24].try_into().map_err(|_| "header")?);
    let len = u64::from_le_bytes(bytes[24..32].try_into().map_err(|_| "header")?);
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(format!("payload is {} bytes, the header says {len}", payload.len()));
    }
    if Sha256::digest(payload).as_slice() != &bytes[32..64] {
        return Err("checksum mismatch (the payload is not what was written)".to_string());
    }
    let state = CanonicalState::decode(payload).map_err(|e| format!("payload does not decode: {e}"))?;
    let sm = StateMachine::restore(&state, ledger).map_err(|e| e.to_string())?;
    Ok((seq, sm))
}

/// Snapshots in `dir` with a sequence number at most `max_seq`, newest first.
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
}
