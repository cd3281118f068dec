//! The embedded chain's store of what each batch posted: the exact input of the transaction
//! that committed it, one file per batch, so that the chain can answer `Chain::posted` as
//! a node does from its transactions (docs/SETTLEMENT.md, "Chain backends").
//!
//! ```text
//!  DIR/batches/<index, 20 digits>   the input of batch index's commit, as sent:
//!                                   commitBatch's selector ‖ abi.encode(h, withdrawals,
//!                                   rejected, data)  (the bytes a node keeps as the input)
//!
//!  a transaction whose BatchCommitted log says batch k ──▶ its input written to <k>.tmp,
//!      synced, renamed to <k>, DIR/batches synced ──▶ then the state file is renamed
//!      into place (the state that records batch k)
//!  DIR/batches/ created (if it is not there) and DIR synced at every writable open
//! ```
//!
//! # Crash rule
//!
//! A file is written and synced **before** the state that records its commit, so a
//! committed batch always has its file. A crash between the two leaves a file for a batch
//! the state does not have (an orphan): it is never read (`posted` answers only for
//! committed indexes) and the next commit of that index overwrites it (the rename
//! replaces it whole).
//!
//! # Blob commits
//!
//! For a `commitBatchBlobs` the input has no data; the commit's versioned hashes are kept
//! beside it, written and synced the same way, before the input and the state file:
//!
//! ```text
//!  DIR/batches/<index, 20 digits>.blobs   the commit's versioned hashes, in order,
//!                                         32 bytes each (nothing else)
//! ```
//!
//! and the data is the blobs of those hashes in the blob store (`blob_store`), decoded. A
//! `.blobs` file beside a `commitBatch` input (a crash orphan) is never read.
//!
//! # Reading
//!
//! A file is checked against the chain when read: it must decode as a `commitBatch` or
//! `commitBatchBlobs` call of its batch, a `commitBatch`'s data must hash to its header's
//! `dataHash`, and its arguments (with a blob commit's hashes: a `.blobs` file of one to
//! six hashes, read no further than one byte past six) must give the commitment the
//! contract stored — compared before any blob is read. Anything else is [`PostedError`]
//! naming the file (missing, not a commit, another batch's, damaged), or
//! [`ChainError::State`] naming a blob file that is missing or not its hash's: the contract
//! checked all of it at commit, so a file that disagrees was damaged since. What the
//! contract cannot check is not checked here either, since a mismatch is on the chain
//! itself — a finding of `rebuild`, not damage: a blob commit's data hash, and blobs that
//! are their hashes' but do not decode ([`Posted::undecodable`]).

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use alloy::primitives::{B256, keccak256};

use super::state_error;
use super::state_file::atomic_write;
use crate::chain::{Carrier, ChainError, CommitInput, Posted, PostedError, Result, decode_commit_input};

/// The store's directory inside the chain directory.
pub const BATCHES_DIR: &str = "batches";

/// The file of batch `index`'s commit input in chain directory `dir`.
pub fn path(dir: &Path, index: u64) -> PathBuf {
    dir.join(BATCHES_DIR).join(format!("{index:020}"))
}

/// Creates the store's directory if it is not there and syncs the chain directory, so
/// that the store's entry is durable before any file in it is relied on: called at every
/// writable open, before anything is committed.
///
/// # Errors
/// [`ChainError::State`] naming the directory that could not be created or synced.
pub(super) fn create_store(dir: &Path) -> Result<()> {
    let store = dir.join(BATCHES_DIR);
    std::fs::create_dir_all(&store).map_err(|e| state_error(&store, e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| state_error(dir, e))
}

/// Writes `input` as batch `index`'s file (`state_file::atomic_write`: temporary file,
/// sync, rename, sync of the store's directory; the store exists since the open,
/// [`create_store`]).
///
/// # Errors
/// [`ChainError::State`] naming the file or directory that could not be written.
pub(super) fn write(dir: &Path, index: u64, input: &[u8]) -> Result<()> {
    atomic_write(&dir.join(BATCHES_DIR), &format!("{index:020}"), input)
}

/// Batch `index`'s file read back and checked against `commitment`, what the contract
/// stored for it (see the module docs).
///
/// # Errors
/// [`ChainError::Posted`] naming the file: missing, not a commit of this batch, or
/// damaged; [`ChainError::State`] if it cannot be read.
pub(super) fn read(dir: &Path, index: u64, commitment: B256) -> Result<Posted> {
    let file = path(dir, index);
    let posted = |why| ChainError::Posted { index, why };
    let input = match std::fs::read(&file) {
        Ok(input) => input,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(posted(PostedError::Missing { path: file }));
        }
        Err(e) => return Err(state_error(&file, e)),
    };
    let at = file.display().to_string();
    let call = decode_commit_input(&input).map_err(|why| posted(PostedError::NotACommit { at: at.clone(), why }))?;
    if call.index() != index {
        return Err(posted(PostedError::WrongIndex { at, got: call.index() }));
    }
    let mut found = match call {
        CommitInput::Calldata(call) => Posted::of_calldata(call, None),
        // The hashes only: no blob is read before the commitment is checked.
        CommitInput::Blobs(call) => Posted::of_blobs(call, Ok(Vec::new()), None, read_hashes(dir, index)?),
    };
    let damaged = |why| posted(PostedError::Damaged { path: file.clone(), why });
    let data_hash = keccak256(&found.data);
    // The contract checked a calldata commit's data hash; it cannot read blobs, so a blob
    // commit's data may not hash to its header on the chain itself: the reader's finding.
    if matches!(found.carrier, Carrier::Calldata { .. }) && data_hash != found.h.dataHash {
        return Err(damaged(format!("its data hashes to {data_hash}, its header argument says {}", found.h.dataHash)));
    }
    let ours = found.commitment();
    if ours != commitment {
        return Err(damaged(format!("its arguments give commitment {ours}, the contract stored {commitment}")));
    }
    if let Carrier::Blobs { versioned_hashes, .. } = &found.carrier {
        let blobs = versioned_hashes.iter().map(|h| super::blob_store::read(dir, *h)).collect::<Result<Vec<_>>>()?;
        // Blobs that are their hashes' but do not decode are on chain as committed (the
        // contract never reads them): the reader's finding (`Posted::undecodable`).
        match crate::blob::decode(&blobs) {
            Ok(data) => found.data = data,
            Err(e) => found.undecodable = Some(e.to_string()),
        }
    }
    Ok(found)
}

/// The file of batch `index`'s versioned hashes in chain directory `dir`, for a blob
/// commit: `<index, 20 digits>.blobs`.
pub fn hashes_path(dir: &Path, index: u64) -> PathBuf {
    path(dir, index).with_extension("blobs")
}

/// Writes `hashes` (a blob commit's versioned hashes, in order, 32 bytes each) as batch
/// `index`'s hashes file, as [`write`] does its input: temporary file, sync, rename, sync
/// of the store's directory (created, and the chain directory synced, at every open).
///
/// # Errors
/// [`ChainError::State`] naming the file or directory that could not be written.
pub(super) fn write_hashes(dir: &Path, index: u64, hashes: &[B256]) -> Result<()> {
    let bytes: Vec<u8> = hashes.iter().flat_map(|h| h.0).collect();
    atomic_write(&dir.join(BATCHES_DIR), &format!("{index:020}.blobs"), &bytes)
}

/// The longest hashes file: one transaction's most blobs ([`crate::blob::MAX_BLOBS`]),
/// 32 bytes each.
const MAX_HASHES_BYTES: usize = crate::blob::MAX_BLOBS * 32;

/// Batch `index`'s hashes file read back: one to [`crate::blob::MAX_BLOBS`] hashes, 32
/// bytes each; a longer file is refused after reading one byte past the limit.
///
/// # Errors
/// [`ChainError::Posted`] naming the file: missing ([`PostedError::Missing`]), or not a
/// whole list of one to six hashes ([`PostedError::Damaged`]); [`ChainError::State`] if it
/// cannot be read.
fn read_hashes(dir: &Path, index: u64) -> Result<Vec<B256>> {
    let file = hashes_path(dir, index);
    let posted = |why| ChainError::Posted { index, why };
    let opened = match File::open(&file) {
        Ok(opened) => opened,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(posted(PostedError::Missing { path: file }));
        }
        Err(e) => return Err(state_error(&file, e)),
    };
    // At most one byte past the longest list: a longer file is damaged, and never read whole.
    let mut bytes = Vec::new();
    opened.take(MAX_HASHES_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(|e| state_error(&file, e))?;
    if bytes.len() > MAX_HASHES_BYTES {
        let why = format!("more than {MAX_HASHES_BYTES} bytes: more than {} versioned hashes", crate::blob::MAX_BLOBS);
        return Err(posted(PostedError::Damaged { path: file, why }));
    }
    if bytes.is_empty() || bytes.len() % 32 != 0 {
        let why = format!("{} bytes, not a list of 32-byte versioned hashes", bytes.len());
        return Err(posted(PostedError::Damaged { path: file, why }));
    }
    Ok(bytes.chunks_exact(32).map(B256::from_slice).collect())
}
