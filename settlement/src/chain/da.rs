//! Where a batch's data goes on chain — calldata or EIP-4844 blobs — and what the contract
//! stores for each (docs/SETTLEMENT.md, "Batch data in blobs").
//!
//! | mode | transaction | data | commitment |
//! |---|---|---|---|
//! | [`Da::Calldata`] | `commitBatch(h, withdrawals, rejected, data)` | its last argument; the contract checks `keccak256(data) = h.dataHash` | `keccak256(abi.encode(h, withdrawals, rejected))` |
//! | [`Da::Blobs`] | type 3: `commitBatchBlobs(h, withdrawals, rejected)` and the blobs of [`blob::encode`](crate::blob::encode)`(data)` | the blobs; a verifier checks `keccak256(data) = h.dataHash` | `keccak256(abi.encode(h, withdrawals, rejected, versionedHashes))` |
//!
//! Both are canonical: the same batch gives the same commitment in the same mode whatever
//! bytes carried it (the versioned hashes follow from the data by `blob::encode` and KZG).

use alloy::eips::eip4844::Blob;
use alloy::primitives::B256;

use super::ChainError;
use super::binding::{abi, commit_call, commitment_of};
use crate::batch::Batch;

/// How a batch's data is posted (`settlement.da`, `l2x settle submit --da`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Da {
    /// As the last argument of `commitBatch`.
    #[default]
    Calldata,
    /// As EIP-4844 blobs of a type-3 transaction calling `commitBatchBlobs`.
    Blobs,
}

impl Da {
    /// Its name in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Da::Calldata => "calldata",
            Da::Blobs => "blobs",
        }
    }
}

impl std::fmt::Display for Da {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Da {
    type Err = String;

    /// `calldata` or `blobs`; anything else is an error saying so.
    fn from_str(s: &str) -> Result<Da, String> {
        match s {
            "calldata" => Ok(Da::Calldata),
            "blobs" => Ok(Da::Blobs),
            other => Err(format!("{other:?} is not a data mode: \"calldata\" or \"blobs\"")),
        }
    }
}

/// The blobs that carry `batch`'s data ([`blob::encode`](crate::blob::encode)).
///
/// # Errors
/// [`ChainError::Blobs`] for data that needs more blobs than a transaction carries.
pub fn batch_blobs(batch: &Batch) -> Result<Vec<Blob>, ChainError> {
    crate::blob::encode(&batch.data).map_err(ChainError::blobs(batch.header.index))
}

/// The versioned hashes of the blobs that carry `batch`'s data, in order: what
/// `commitBatchBlobs` reads with `BLOBHASH`.
///
/// # Errors
/// As [`batch_blobs`].
pub fn blob_hashes(batch: &Batch) -> Result<Vec<B256>, ChainError> {
    let blobs = batch_blobs(batch)?;
    crate::blob::versioned_hashes(&blobs).map_err(ChainError::blobs(batch.header.index))
}

/// The call that commits `batch` with its data in blobs: `commit_call`'s arguments but the
/// data.
///
/// # Errors
/// As [`commit_call`].
pub fn commit_blobs_call(batch: &Batch) -> Result<abi::L2xSettlement::commitBatchBlobsCall, ChainError> {
    let call = commit_call(batch)?;
    Ok(abi::L2xSettlement::commitBatchBlobsCall { h: call.h, withdrawals: call.withdrawals, rejected: call.rejected })
}

/// What the contract stores as batch `index`'s commitment (`commitments(index)`) once it is
/// committed in mode `da`: `keccak256(abi.encode(h, withdrawals, rejected))` of the commit's
/// arguments for calldata — the header fields, the withdrawals and the refused entries; the
/// data is bound through the header's data hash —, and for blobs
/// `keccak256(abi.encode(h, withdrawals, rejected, versionedHashes))`, the versioned hashes
/// of [`blob_hashes`] as a `bytes32[]`. Canonical: the same arguments give the same
/// commitment whatever bytes carried them.
///
/// # Errors
/// As [`commit_call`]; for blobs, as [`blob_hashes`].
pub fn commitment(batch: &Batch, da: Da) -> Result<B256, ChainError> {
    let call = commit_call(batch)?;
    Ok(match da {
        Da::Calldata => commitment_of(&call.h, &call.withdrawals, &call.rejected, None),
        Da::Blobs => commitment_of(&call.h, &call.withdrawals, &call.rejected, Some(&blob_hashes(batch)?)),
    })
}

/// In which mode `committed` (a chain's `commitments(index)`) is `batch`'s commitment, if
/// in either: calldata is tried first (the blob commitment needs the KZG commitments).
///
/// # Errors
/// As [`commitment`].
pub fn committed_as(batch: &Batch, committed: B256) -> Result<Option<Da>, ChainError> {
    for da in [Da::Calldata, Da::Blobs] {
        if commitment(batch, da)? == committed {
            return Ok(Some(da));
        }
    }
    Ok(None)
}
