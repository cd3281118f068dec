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
//! # Reading
//!
//! A file is checked against the chain when read: it must decode as a `commitBatch` call of
//! its batch, its data must hash to its header's `dataHash`, and its arguments must give
//! the commitment the contract stored. Anything else is [`PostedError`] naming the file
//! (missing, not a commit, another batch's, damaged): the contract checked all of it at
//! commit, so a file that disagrees was damaged since.

use std::fs::File;
use std::path::{Path, PathBuf};

use alloy::primitives::{B256, keccak256};

use super::state_error;
use super::state_file::atomic_write;
use crate::chain::{ChainError, Posted, PostedError, Result, decode_commit_input};

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
    if call.h.index != index {
        return Err(posted(PostedError::WrongIndex { at, got: call.h.index }));
    }
    let found = Posted::of_calldata(call, None);
    let damaged = |why| posted(PostedError::Damaged { path: file.clone(), why });
    let data_hash = keccak256(&found.data);
    if data_hash != found.h.dataHash {
        return Err(damaged(format!("its data hashes to {data_hash}, its header argument says {}", found.h.dataHash)));
    }
    let ours = found.commitment();
    if ours != commitment {
        return Err(damaged(format!("its arguments give commitment {ours}, the contract stored {commitment}")));
    }
    Ok(found)
}
