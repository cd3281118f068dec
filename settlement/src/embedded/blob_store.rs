//! Blob commits on the embedded chain ([`EmbeddedChain::commit_in_blobs`], behind
//! `Chain::commit_blobs`) and `DIR/blobs/`, where their blobs are kept, one file per blob
//! named by its versioned hash, so that batch data posted in blobs can be read back like a
//! node's ([`EmbeddedChain::blob`], [`EmbeddedChain::blob_data`]; docs/SETTLEMENT.md,
//! "Batch data in blobs").
//!
//! ```text
//!  DIR/blobs/<versioned hash: 64 hex digits, lowercase, no 0x>.blob   the blob's 131,072 bytes
//!  write: each blob to <name>.tmp, fsync, rename, then fsync DIR/blobs (and DIR, when
//!         blobs/ was created) — all before the state file that commits them is renamed
//!  read(hash): the file's bytes, its KZG commitment's versioned hash = its name, else an
//!         error naming the file
//! ```
//!
//! A blob is content-addressed: writing one that is there rewrites the same bytes. A crash
//! after the blobs and before the state file leaves blobs no commit refers to (harmless: the
//! commit is sent again and writes the same files); never a commit whose blobs are missing.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use alloy::eips::eip4844::Blob;
use alloy::primitives::B256;

use alloy::primitives::{Bytes, keccak256};
use alloy::sol_types::SolCall as _;

use super::{EmbeddedChain, SUBMITTER, StateError, state_error};
use crate::batch::Batch;
use crate::blob;
use crate::chain::{ChainError, Result, batch_blobs, commit_blobs_call};

/// The blob store's directory under the chain's.
pub const BLOBS_DIR: &str = "blobs";

/// The file of the blob whose versioned hash is `hash`.
pub fn blob_path(dir: &Path, hash: B256) -> PathBuf {
    dir.join(BLOBS_DIR).join(format!("{}.blob", alloy::hex::encode(hash)))
}

/// Writes each blob under its versioned hash (`hashes[i]` is `blobs[i]`'s), each synced and
/// renamed into place, then the directory synced.
///
/// # Errors
/// [`ChainError::State`](crate::chain::ChainError::State) naming the file or directory
/// that could not be written.
pub(super) fn write(dir: &Path, hashes: &[B256], blobs: &[Blob]) -> Result<()> {
    let store = dir.join(BLOBS_DIR);
    let created = !store.exists();
    std::fs::create_dir_all(&store).map_err(|e| state_error(&store, e))?;
    for (hash, bytes) in hashes.iter().zip(blobs) {
        let path = blob_path(dir, *hash);
        let tmp = path.with_extension("blob.tmp");
        let mut f = File::create(&tmp).map_err(|e| state_error(&tmp, e))?;
        f.write_all(bytes.as_slice()).and_then(|()| f.sync_all()).map_err(|e| state_error(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| state_error(&path, e))?;
    }
    File::open(&store).and_then(|d| d.sync_all()).map_err(|e| state_error(&store, e))?;
    if created {
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| state_error(dir, e))?;
    }
    Ok(())
}

/// The blob whose versioned hash is `hash`, checked: 131,072 bytes whose KZG commitment
/// hashes to `hash`.
///
/// # Errors
/// [`ChainError::State`](crate::chain::ChainError::State) naming the file: missing or
/// unreadable ([`StateError::Io`]), or damaged: another size or an element c-kzg refuses
/// ([`StateError::Blob`]), another versioned hash ([`StateError::BlobHash`]).
pub(super) fn read(dir: &Path, hash: B256) -> Result<Vec<u8>> {
    let path = blob_path(dir, hash);
    let bytes = std::fs::read(&path).map_err(|e| state_error(&path, e))?;
    let got = blob::versioned_hash(0, &bytes).map_err(|e| state_error(&path, StateError::Blob(e)))?;
    if got != hash {
        return Err(state_error(&path, StateError::BlobHash { got }));
    }
    Ok(bytes)
}

impl EmbeddedChain {
    /// The blob whose versioned hash is `hash`, from the blob store (`DIR/blobs/`), checked
    /// against its name.
    ///
    /// # Errors
    /// [`ChainError::State`] naming the file: missing, unreadable, or damaged (not a blob, or
    /// a blob whose KZG commitment does not hash to its name).
    pub fn blob(&self, hash: B256) -> Result<Vec<u8>> {
        read(&self.dir, hash)
    }

    /// The batch data the blobs of versioned hashes `hashes` carry, in order (a blob
    /// commit's, from its `BatchBlobs` event): each read as [`EmbeddedChain::blob`], then
    /// decoded ([`blob::decode`]).
    ///
    /// # Errors
    /// As [`EmbeddedChain::blob`]; [`ChainError::Blobs`] (index 0) for blobs that do not
    /// decode.
    pub fn blob_data(&self, hashes: &[B256]) -> Result<Vec<u8>> {
        let blobs = hashes.iter().map(|h| self.blob(*h)).collect::<Result<Vec<_>>>()?;
        crate::blob::decode(&blobs).map_err(ChainError::blobs(0))
    }

    /// [`EmbeddedChain::transact`] of a type-3 transaction carrying `blobs` as they are
    /// (their versioned hashes computed here, the blobs kept in the store as a commit's
    /// are): what any key can send, whatever the blobs hold — for tests and tools that
    /// craft what the contract accepts but a submitter never sends.
    ///
    /// # Errors
    /// As [`EmbeddedChain::transact`]; [`ChainError::Config`] for no blob or more than
    /// [`blob::MAX_BLOBS`]; [`ChainError::Blobs`] (index 0) for a blob KZG refuses.
    pub fn transact_with_blobs(
        &mut self,
        from: alloy::primitives::Address,
        to: alloy::primitives::Address,
        calldata: impl Into<Bytes>,
        blobs: &[Blob],
    ) -> Result<super::Receipt> {
        if blobs.is_empty() || blobs.len() > blob::MAX_BLOBS {
            let n = blobs.len();
            return Err(ChainError::Config(format!("{n} blobs: a blob transaction carries 1 to {}", blob::MAX_BLOBS)));
        }
        let hashes = blob::versioned_hashes(blobs).map_err(ChainError::blobs(0))?;
        self.send_with_blobs(from, to, calldata.into(), &hashes, blobs)?.map_err(|reason| ChainError::Reverted {
            from,
            to,
            reason,
        })
    }

    /// [`Chain::commit_blobs`](crate::chain::Chain::commit_blobs): the batch's blobs, their
    /// versioned hashes, and `commitBatchBlobs` from [`SUBMITTER`] in a type-3 transaction;
    /// the blobs are stored before the state file.
    pub(super) fn commit_in_blobs(&mut self, batch: &Batch) -> Result<B256> {
        let index = batch.header.index;
        let blobs = batch_blobs(batch)?;
        let hashes = crate::blob::versioned_hashes(&blobs).map_err(ChainError::blobs(index))?;
        let data = Bytes::from(commit_blobs_call(batch)?.abi_encode());
        let tx_hash = {
            let mut preimage = self.block.wrapping_add(1).to_be_bytes().to_vec();
            preimage.extend_from_slice(&data);
            hashes.iter().for_each(|h| preimage.extend_from_slice(h.as_slice()));
            keccak256(preimage)
        };
        match self.send_with_blobs(SUBMITTER, self.address(), data, &hashes, &blobs)? {
            Ok(receipt) => {
                self.last_gas = receipt.gas_used;
                Ok(tx_hash)
            }
            Err(reason) => Err(ChainError::Refused { index, reason }),
        }
    }
}
