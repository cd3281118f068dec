//! Batch data in EIP-4844 blobs: l2x's own packing of a batch's posted `data` (the zstd
//! bytes) into blobs, its checked unpacking, and the KZG side — versioned hashes and the
//! EIP-7594 sidecar a transaction carries (docs/SETTLEMENT.md, "Batch data in blobs").
//!
//! ```text
//!  data (zstd, n bytes) ──▶ stream = u32 n (big-endian) ‖ data ‖ 0x00 … to the end of the last blob
//!  stream, 31 bytes at a time ──▶ field element = 0x00 ‖ 31 stream bytes         (32 bytes)
//!  4,096 field elements ──▶ one blob (131,072 bytes); blobs = ⌈(4 + n) / 126,976⌉, 1 to 6
//!  blob ──c-kzg──▶ KZG commitment (48 bytes) ──▶ versioned hash = 0x01 ‖ sha256(commitment)[1..]
//! ```
//!
//! | function | job |
//! |---|---|
//! | [`encode`] | data → blobs; refuses data that needs more than [`MAX_BLOBS`] |
//! | [`decode`] | blobs → data, checking every padding byte, the length and the blob count ([`BlobError`] names the blob and the byte) |
//! | [`versioned_hash`], [`versioned_hashes`] | what `BLOBHASH` returns for each blob: the contract binds these |
//! | [`check_hashes`] | blobs read back are exactly those of a transaction's versioned hashes |
//! | [`sidecar`] | the blobs, their commitments and cell proofs, as an Osaka node takes them |
//!
//! # Invariants
//!
//! - Every field element's first byte is 0, so every element is below the BLS12-381 scalar
//!   modulus whatever the data: any data encodes, and c-kzg accepts every blob `encode`
//!   makes.
//! - `decode(encode(d)) = d`, and `decode` accepts exactly the blobs `encode` makes: one
//!   canonical encoding per data (a property test checks both).
//! - Nothing here reads a clock or the environment; the KZG trusted setup is the mainnet
//!   one c-kzg carries.

use alloy::eips::eip4844::{Blob, Bytes48, c_kzg, env_settings::EnvKzgSettings, kzg_to_versioned_hash};
use alloy::eips::eip7594::{BlobTransactionSidecarEip7594, MAX_BLOBS_PER_TX_FUSAKA};
use alloy::primitives::B256;

/// Bytes in a blob: 4,096 field elements of 32 bytes.
pub const BYTES_PER_BLOB: usize = 131_072;
/// Bytes in a field element.
pub const ELEMENT_BYTES: usize = 32;
/// Data bytes a field element carries: all but its first, which is 0.
pub const PAYLOAD_PER_ELEMENT: usize = 31;
/// Field elements in a blob.
pub const ELEMENTS_PER_BLOB: usize = BYTES_PER_BLOB / ELEMENT_BYTES;
/// Stream bytes a blob carries: 4,096 × 31.
pub const PAYLOAD_PER_BLOB: usize = ELEMENTS_PER_BLOB * PAYLOAD_PER_ELEMENT;
/// Bytes of the length prefix at the start of the stream.
pub const LENGTH_BYTES: usize = 4;
/// The most blobs one transaction may carry since Osaka (EIP-7594): a batch whose data
/// needs more is refused before anything is sent.
pub const MAX_BLOBS: usize = 6;
/// The most data bytes [`MAX_BLOBS`] blobs carry: 6 × 126,976 − 4 = 761,852.
pub const MAX_DATA: usize = MAX_BLOBS * PAYLOAD_PER_BLOB - LENGTH_BYTES;
/// Blob gas one blob uses (EIP-4844): its size in bytes.
pub const GAS_PER_BLOB: u64 = 131_072;

const _: () = assert!(MAX_BLOBS as u64 == MAX_BLOBS_PER_TX_FUSAKA);

/// What is wrong with data to encode or blobs to decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// Data that needs more blobs than a transaction may carry.
    #[error("{len} bytes of data need {needed} blobs; a transaction carries at most {MAX_BLOBS} ({MAX_DATA} bytes)")]
    TooLarge {
        /// The data's length.
        len: usize,
        /// The blobs it would need.
        needed: usize,
    },
    /// No blob at all.
    #[error("no blob")]
    NoBlobs,
    /// A blob that is not 131,072 bytes.
    #[error("blob {blob}: {len} bytes, a blob has {BYTES_PER_BLOB}")]
    Size {
        /// The blob (from 0).
        blob: usize,
        /// Its length.
        len: usize,
    },
    /// A field element whose first byte is not 0.
    #[error("blob {blob}: byte {byte} (the first of field element {}) is {value:#04x}, must be 0x00", byte / ELEMENT_BYTES)]
    Padding {
        /// The blob (from 0).
        blob: usize,
        /// The byte's offset in the blob.
        byte: usize,
        /// What it holds.
        value: u8,
    },
    /// A length prefix larger than the blobs hold.
    #[error("blob 0: bytes 1-4: the length prefix says {len} bytes, {blobs} blobs hold at most {capacity}")]
    Length {
        /// The prefix's value.
        len: u64,
        /// The blobs given.
        blobs: usize,
        /// What they hold after the prefix.
        capacity: usize,
    },
    /// More blobs than the length needs.
    #[error("{got} blobs for {len} bytes of data, which need {needed}")]
    Count {
        /// The length prefix.
        len: usize,
        /// The blobs it needs.
        needed: usize,
        /// The blobs given.
        got: usize,
    },
    /// A byte after the data that is not 0.
    #[error("blob {blob}: byte {byte} is {value:#04x}, after the data's end (must be 0x00)")]
    Trailing {
        /// The blob (from 0).
        blob: usize,
        /// The byte's offset in the blob.
        byte: usize,
        /// What it holds.
        value: u8,
    },
    /// A blob whose versioned hash is not the one it was asked for (or stored under).
    #[error("blob {blob}: its versioned hash is {got}, expected {expected}")]
    WrongHash {
        /// The blob (from 0).
        blob: usize,
        /// The hash it should have.
        expected: B256,
        /// The hash of its KZG commitment.
        got: B256,
    },
    /// Another number of blobs than the transaction names.
    #[error("{got} blobs, the transaction names {expected}")]
    Missing {
        /// The versioned hashes the transaction names.
        expected: usize,
        /// The blobs given.
        got: usize,
    },
    /// c-kzg refused a blob (one not made by [`encode`]: an element not below the modulus).
    #[error("blob {blob}: KZG: {why}")]
    Kzg {
        /// The blob (from 0).
        blob: usize,
        /// c-kzg's words.
        why: String,
    },
}

/// How many blobs `len` bytes of data take: ⌈(4 + len) / 126,976⌉.
pub fn blobs_for(len: usize) -> usize {
    (LENGTH_BYTES + len).div_ceil(PAYLOAD_PER_BLOB)
}

/// Where stream byte `i` lives: its blob and its offset in that blob.
fn locate(i: usize) -> (usize, usize) {
    let (blob, within) = (i / PAYLOAD_PER_BLOB, i % PAYLOAD_PER_BLOB);
    (blob, within / PAYLOAD_PER_ELEMENT * ELEMENT_BYTES + 1 + within % PAYLOAD_PER_ELEMENT)
}

/// Packs `data` into blobs (see the module docs).
///
/// # Errors
/// [`BlobError::TooLarge`] for data of more than [`MAX_DATA`] bytes.
pub fn encode(data: &[u8]) -> Result<Vec<Blob>, BlobError> {
    let needed = blobs_for(data.len());
    let len = u32::try_from(data.len()).ok().filter(|_| needed <= MAX_BLOBS);
    let Some(len) = len else { return Err(BlobError::TooLarge { len: data.len(), needed }) };
    let mut blobs = vec![Blob::ZERO; needed];
    let stream = len.to_be_bytes().into_iter().chain(data.iter().copied());
    for (i, byte) in stream.enumerate() {
        let (blob, at) = locate(i);
        blobs[blob][at] = byte;
    }
    Ok(blobs)
}

/// Unpacks the data from `blobs`, checking that they are exactly what [`encode`] makes of
/// it: each 131,072 bytes, every field element's first byte 0, a length the blobs hold,
/// no blob more than it needs, and every byte after the data 0.
///
/// # Errors
/// [`BlobError`], naming the blob and the byte.
pub fn decode<B: AsRef<[u8]>>(blobs: &[B]) -> Result<Vec<u8>, BlobError> {
    if blobs.is_empty() {
        return Err(BlobError::NoBlobs);
    }
    for (blob, bytes) in blobs.iter().enumerate() {
        let bytes = bytes.as_ref();
        if bytes.len() != BYTES_PER_BLOB {
            return Err(BlobError::Size { blob, len: bytes.len() });
        }
        if let Some(byte) = (0..BYTES_PER_BLOB).step_by(ELEMENT_BYTES).find(|&b| bytes[b] != 0) {
            return Err(BlobError::Padding { blob, byte, value: bytes[byte] });
        }
    }
    let at = |i: usize| {
        let (blob, offset) = locate(i);
        blobs[blob].as_ref()[offset]
    };
    let mut prefix = [0u8; LENGTH_BYTES];
    for (i, b) in prefix.iter_mut().enumerate() {
        *b = at(i);
    }
    let len = u32::from_be_bytes(prefix);
    let capacity = blobs.len() * PAYLOAD_PER_BLOB - LENGTH_BYTES;
    let len = usize::try_from(len).ok().filter(|&l| l <= capacity).ok_or(BlobError::Length {
        len: u64::from(len),
        blobs: blobs.len(),
        capacity,
    })?;
    let needed = blobs_for(len);
    if needed != blobs.len() {
        return Err(BlobError::Count { len, needed, got: blobs.len() });
    }
    let end = LENGTH_BYTES + len;
    if let Some(i) = (end..blobs.len() * PAYLOAD_PER_BLOB).find(|&i| at(i) != 0) {
        let (blob, byte) = locate(i);
        return Err(BlobError::Trailing { blob, byte, value: at(i) });
    }
    Ok((LENGTH_BYTES..end).map(at).collect())
}

/// The KZG settings: the mainnet trusted setup c-kzg carries (loaded once).
fn settings() -> &'static c_kzg::KzgSettings {
    EnvKzgSettings::Default.get()
}

/// c-kzg's copy of `bytes`, blob `blob` (for errors).
fn kzg_blob(blob: usize, bytes: &[u8]) -> Result<c_kzg::Blob, BlobError> {
    c_kzg::Blob::from_bytes(bytes).map_err(|e| BlobError::Kzg { blob, why: format!("{e:?}") })
}

/// The versioned hash of a blob (what `BLOBHASH` gives the contract): `0x01 ‖
/// sha256(commitment)[1..32]` of its KZG commitment. `blob` is its position, for errors.
///
/// # Errors
/// [`BlobError::Size`], or [`BlobError::Kzg`] for a blob with an element not below the
/// modulus (never one [`encode`] made).
pub fn versioned_hash(blob: usize, bytes: &[u8]) -> Result<B256, BlobError> {
    if bytes.len() != BYTES_PER_BLOB {
        return Err(BlobError::Size { blob, len: bytes.len() });
    }
    let commitment = settings()
        .blob_to_kzg_commitment(&kzg_blob(blob, bytes)?)
        .map_err(|e| BlobError::Kzg { blob, why: format!("{e:?}") })?;
    Ok(kzg_to_versioned_hash(commitment.to_bytes().as_slice()))
}

/// The versioned hash of each blob, in order.
///
/// # Errors
/// As [`versioned_hash`].
pub fn versioned_hashes(blobs: &[Blob]) -> Result<Vec<B256>, BlobError> {
    blobs.iter().enumerate().map(|(i, b)| versioned_hash(i, b.as_slice())).collect()
}

/// Checks that `blobs` are exactly the blobs of the versioned hashes `expected`, in order.
///
/// # Errors
/// [`BlobError::Missing`] for another count, [`BlobError::WrongHash`] naming the first blob
/// that differs, and as [`versioned_hash`].
pub fn check_hashes<B: AsRef<[u8]>>(blobs: &[B], expected: &[B256]) -> Result<(), BlobError> {
    if blobs.len() != expected.len() {
        return Err(BlobError::Missing { expected: expected.len(), got: blobs.len() });
    }
    for (blob, (bytes, &expected)) in blobs.iter().zip(expected).enumerate() {
        let got = versioned_hash(blob, bytes.as_ref())?;
        if got != expected {
            return Err(BlobError::WrongHash { blob, expected, got });
        }
    }
    Ok(())
}

/// The sidecar of a transaction carrying `blobs` on a chain at Osaka or later (EIP-7594):
/// the blobs, their KZG commitments and 128 cell proofs per blob.
///
/// # Errors
/// [`BlobError::Kzg`] naming the blob (never for blobs [`encode`] made).
pub fn sidecar(blobs: Vec<Blob>) -> Result<BlobTransactionSidecarEip7594, BlobError> {
    let mut commitments = Vec::with_capacity(blobs.len());
    let mut proofs = Vec::new();
    for (i, bytes) in blobs.iter().enumerate() {
        let kzg = |e: c_kzg::Error| BlobError::Kzg { blob: i, why: format!("{e:?}") };
        let blob = kzg_blob(i, bytes.as_slice())?;
        let commitment = settings().blob_to_kzg_commitment(&blob).map_err(kzg)?;
        let (_cells, cell_proofs) = settings().compute_cells_and_kzg_proofs(&blob).map_err(kzg)?;
        commitments.push(Bytes48::from(commitment.to_bytes().into_inner()));
        proofs.extend(cell_proofs.iter().map(|p| Bytes48::from(p.to_bytes().into_inner())));
    }
    Ok(BlobTransactionSidecarEip7594::new(blobs, commitments, proofs))
}

#[cfg(test)]
mod tests;
