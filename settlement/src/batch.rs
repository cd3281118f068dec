//! Batches: an epoch as it is stored and posted — a fixed header and the changed leaves in
//! a compact encoding, compressed, bound together by the data's keccak-256
//! (docs/SETTLEMENT.md, "Batches").
//!
//! ```text
//!  file  = "L2XBATCH" ‖ u32 version = 2 ‖ header (fixed, 212 bytes) ‖ data
//!  data  = zstd(raw)                   (what is posted as calldata, and hashed)
//!  raw   = leaf*
//!  leaf  = u64 account ‖ i64 collateral ‖ u16 n ‖ position*n
//!  position = u32 instrument ‖ i64 size ‖ i128 cost ‖ i128 fundingIndex      (44 bytes)
//!  header.data_hash = keccak256(data)
//! ```
//!
//! Integers are big-endian (as the EVM reads them). Leaves are in strictly increasing
//! account order. From the batches alone anyone rebuilds every leaf: decompress and decode
//! the data, hash each leaf's ABI encoding, update the tree, and the root must be the
//! header's.
//!
//! Compression halves the calldata gas (measured in BENCHMARKS.md). Its bytes are not a
//! function of the leaves alone: another zstd version may compress the same leaves
//! differently. So the leaves are what a batch *is* ([`Batch::same_content`]); the data a
//! batch was posted with is kept in its file, and its hash is what the chain holds.

use std::path::{Path, PathBuf};

use alloy_primitives::{B256, keccak256};

use crate::epoch::Epoch;
use crate::leaf::{AccountLeaf, Position};

/// Start of a batch file.
pub const MAGIC: &[u8; 8] = b"L2XBATCH";
/// Format version of batch files this code writes and reads (1: uncompressed data).
pub const VERSION: u32 = 2;
/// The zstd level batches are compressed at.
pub const ZSTD_LEVEL: i32 = 9;
/// The most raw bytes a batch may declare (a bound on what decompression allocates).
pub const MAX_RAW_LEN: u64 = 1 << 30;
/// Bytes of the encoded header.
pub const HEADER_LEN: usize = 8 * 5 + 32 * 3 + 8 * 2 + 4 + 56;

/// The fixed part of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The batch's index (= its epoch's), from 1.
    pub index: u64,
    /// The epoch's first command.
    pub first_seq: u64,
    /// Its last command.
    pub last_seq: u64,
    /// Sequenced time of the last command, ns.
    pub epoch_ts: u64,
    /// Commands in the epoch.
    pub commands: u64,
    /// The root before.
    pub prev_root: B256,
    /// The root after.
    pub new_root: B256,
    /// keccak256 of the data.
    pub data_hash: B256,
    /// Trades in the epoch.
    pub fills: u64,
    /// Bytes of data (compressed).
    pub data_len: u64,
    /// Leaves in the data.
    pub leaves: u32,
    /// Bytes of the raw leaf encoding the data decompresses to.
    pub raw_len: u64,
}

/// A batch: header and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The header.
    pub header: Header,
    /// The changed leaves, encoded and compressed: what is posted.
    pub data: Vec<u8>,
}

/// What is wrong with a batch's bytes.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Reading or writing the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The bytes are not a batch.
    #[error("{what} at byte {offset}")]
    Malformed {
        /// What was wrong.
        what: String,
        /// Where, from the start of the file (or of the data).
        offset: usize,
    },
    /// The data does not hash to the header's data hash.
    #[error("batch {index}: the data does not match its hash (tampered or truncated)")]
    DataHash {
        /// The batch.
        index: u64,
    },
    /// The data's leaves do not lead from the previous root to the header's new root.
    #[error("batch {index}: its leaves give root {got}, the header says {expected}")]
    Root {
        /// The batch.
        index: u64,
        /// The header's root.
        expected: B256,
        /// What the leaves give.
        got: B256,
    },
}

fn malformed(what: impl Into<String>, offset: usize) -> BatchError {
    BatchError::Malformed { what: what.into(), offset }
}

/// Encodes changed leaves as batch data.
pub fn encode_leaves(leaves: &[AccountLeaf]) -> Vec<u8> {
    let mut out = Vec::with_capacity(leaves.len() * 62);
    for l in leaves {
        out.extend_from_slice(&l.account.to_be_bytes());
        out.extend_from_slice(&l.collateral.to_be_bytes());
        // One position per instrument held: a u16 count (`Batch::of` refuses more).
        out.extend_from_slice(&u16::try_from(l.positions.len()).unwrap_or(u16::MAX).to_be_bytes());
        for p in &l.positions {
            out.extend_from_slice(&p.instrument.to_be_bytes());
            out.extend_from_slice(&p.size.to_be_bytes());
            out.extend_from_slice(&p.cost.to_be_bytes());
            out.extend_from_slice(&p.fundingIndex.to_be_bytes());
        }
    }
    out
}

/// A cursor over bytes that names what it failed to read.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    base: usize,
}

impl Cursor<'_> {
    fn take<const N: usize>(&mut self, what: &str) -> Result<[u8; N], BatchError> {
        let end = self.at.checked_add(N).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else { return Err(malformed(format!("truncated {what}"), self.base + self.at)) };
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.at..end]);
        self.at = end;
        Ok(out)
    }
    fn u64(&mut self, what: &str) -> Result<u64, BatchError> {
        self.take::<8>(what).map(u64::from_be_bytes)
    }
}

/// Decodes batch data into leaves (strict: account order, no trailing bytes).
///
/// # Errors
/// [`BatchError::Malformed`] naming the field and the offset in the data.
pub fn decode_leaves(data: &[u8]) -> Result<Vec<AccountLeaf>, BatchError> {
    let mut c = Cursor { bytes: data, at: 0, base: 0 };
    let mut leaves: Vec<AccountLeaf> = Vec::new();
    while c.at < data.len() {
        let at = c.at;
        let account = c.u64("account")?;
        if leaves.last().is_some_and(|l| l.account >= account) {
            return Err(malformed("accounts not in increasing order", at));
        }
        let collateral = i64::from_be_bytes(c.take::<8>("collateral")?);
        let n = u16::from_be_bytes(c.take::<2>("position count")?);
        let mut positions = Vec::with_capacity(usize::from(n).min(1024));
        for _ in 0..n {
            let p_at = c.at;
            let instrument = u32::from_be_bytes(c.take::<4>("instrument")?);
            let size = i64::from_be_bytes(c.take::<8>("size")?);
            let cost = i128::from_be_bytes(c.take::<16>("cost")?);
            let funding_index = i128::from_be_bytes(c.take::<16>("funding index")?);
            if size == 0 {
                return Err(malformed("a position of size 0", p_at));
            }
            if positions.last().is_some_and(|p: &Position| p.instrument >= instrument) {
                return Err(malformed("positions not in increasing instrument order", p_at));
            }
            positions.push(Position { instrument, size, cost, fundingIndex: funding_index });
        }
        leaves.push(AccountLeaf { account, collateral, positions });
    }
    Ok(leaves)
}

impl Batch {
    /// The batch of a closed epoch.
    ///
    /// # Panics
    /// If a leaf holds more than 65,535 positions (more instruments held at once than the
    /// format counts; a bug elsewhere, never input).
    pub fn of(epoch: &Epoch) -> Batch {
        assert!(
            epoch.changes.iter().all(|l| l.positions.len() <= usize::from(u16::MAX)),
            "a leaf with more than 65,535 positions cannot be encoded"
        );
        let raw = encode_leaves(&epoch.changes);
        // Compressing bytes in memory fails only if zstd cannot allocate its context.
        let data = zstd::bulk::compress(&raw, ZSTD_LEVEL).unwrap_or_else(|e| panic!("zstd: {e}"));
        let header = Header {
            index: epoch.index,
            first_seq: epoch.first_seq,
            last_seq: epoch.last_seq,
            epoch_ts: epoch.ts,
            commands: epoch.commands,
            prev_root: epoch.prev_root,
            new_root: epoch.root,
            data_hash: keccak256(&data),
            fills: epoch.fills,
            data_len: data.len() as u64,
            leaves: u32::try_from(epoch.changes.len()).unwrap_or(u32::MAX),
            raw_len: raw.len() as u64,
        };
        Batch { header, data }
    }

    /// Whether two batches say the same thing: the same header (but for the data's hash and
    /// length) and the same leaves, however their data was compressed.
    pub fn same_content(&self, other: &Batch) -> bool {
        let strip = |h: Header| Header { data_hash: B256::ZERO, data_len: 0, ..h };
        strip(self.header) == strip(other.header)
            && match (self.raw(), other.raw()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
    }

    /// The raw leaf encoding: the data decompressed, exactly `raw_len` bytes.
    ///
    /// # Errors
    /// [`BatchError::Malformed`] if the data is not a zstd frame of that length.
    pub fn raw(&self) -> Result<Vec<u8>, BatchError> {
        let declared = self.header.raw_len;
        if declared > MAX_RAW_LEN {
            return Err(malformed(format!("{declared} raw bytes declared, at most {MAX_RAW_LEN}"), 12));
        }
        let capacity = usize::try_from(declared).unwrap_or(usize::MAX);
        let raw = zstd::bulk::decompress(&self.data, capacity)
            .map_err(|e| malformed(format!("the data does not decompress: {e}"), 12 + HEADER_LEN))?;
        if raw.len() != capacity {
            return Err(malformed(format!("{} raw bytes, the header says {declared}", raw.len()), 12 + HEADER_LEN));
        }
        Ok(raw)
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let h = &self.header;
        let mut out = Vec::with_capacity(12 + HEADER_LEN + self.data.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        for v in [h.index, h.first_seq, h.last_seq, h.epoch_ts, h.commands] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for r in [h.prev_root, h.new_root, h.data_hash] {
            out.extend_from_slice(r.as_slice());
        }
        out.extend_from_slice(&h.fills.to_be_bytes());
        out.extend_from_slice(&h.data_len.to_be_bytes());
        out.extend_from_slice(&h.leaves.to_be_bytes());
        out.extend_from_slice(&h.raw_len.to_be_bytes());
        out.resize(12 + HEADER_LEN, 0);
        out.extend_from_slice(&self.data);
        out
    }

    /// Decodes a file's bytes and checks the data against its hash and its leaf count.
    ///
    /// # Errors
    /// [`BatchError::Malformed`] (with the offset), [`BatchError::DataHash`].
    pub fn decode(bytes: &[u8]) -> Result<Batch, BatchError> {
        let mut c = Cursor { bytes, at: 0, base: 0 };
        if c.take::<8>("magic")? != *MAGIC {
            return Err(malformed("not a batch file (magic)", 0));
        }
        let version = u32::from_be_bytes(c.take::<4>("version")?);
        if version != VERSION {
            return Err(malformed(format!("batch format version {version}, this l2x reads {VERSION}"), 8));
        }
        let index = c.u64("index")?;
        let first_seq = c.u64("first seq")?;
        let last_seq = c.u64("last seq")?;
        let epoch_ts = c.u64("epoch time")?;
        let commands = c.u64("commands")?;
        let prev_root = B256::from(c.take::<32>("previous root")?);
        let new_root = B256::from(c.take::<32>("new root")?);
        let data_hash = B256::from(c.take::<32>("data hash")?);
        let fills = c.u64("fills")?;
        let data_len = c.u64("data length")?;
        let leaves = u32::from_be_bytes(c.take::<4>("leaf count")?);
        let raw_len = c.u64("raw length")?;
        let pad = c.at;
        if c.take::<48>("header padding")? != [0u8; 48] {
            return Err(malformed("non-zero header padding", pad));
        }
        let header = Header {
            index,
            first_seq,
            last_seq,
            epoch_ts,
            commands,
            prev_root,
            new_root,
            data_hash,
            fills,
            data_len,
            leaves,
            raw_len,
        };
        if index == 0 || first_seq == 0 || first_seq > last_seq {
            return Err(malformed("index or sequence range out of range", 12));
        }
        let data = &bytes[c.at..];
        if data.len() as u64 != data_len {
            return Err(malformed(format!("{} data bytes, the header says {data_len}", data.len()), c.at));
        }
        if keccak256(data) != data_hash {
            return Err(BatchError::DataHash { index });
        }
        let batch = Batch { header, data: data.to_vec() };
        // Offsets of the raw leaves are within the decompressed data.
        let decoded = batch.leaves().map_err(|e| match e {
            BatchError::Malformed { what, offset } => malformed(format!("{what} (raw data)"), offset),
            other => other,
        })?;
        if decoded.len() != leaves as usize {
            return Err(malformed(format!("{} leaves, the header says {leaves}", decoded.len()), 12 + HEADER_LEN));
        }
        Ok(batch)
    }

    /// The changed leaves.
    ///
    /// # Errors
    /// As [`Batch::raw`] and [`decode_leaves`].
    pub fn leaves(&self) -> Result<Vec<AccountLeaf>, BatchError> {
        decode_leaves(&self.raw()?)
    }

    /// The file name of batch `index`: `batch-00000000000000000001.l2xb`.
    pub fn file_name(index: u64) -> String {
        format!("batch-{index:020}.l2xb")
    }

    /// Writes the batch into `dir` (write to a temporary name, sync, rename, sync the
    /// directory).
    ///
    /// # Errors
    /// [`BatchError::Io`].
    pub fn write(&self, dir: &Path) -> Result<PathBuf, BatchError> {
        use std::io::Write as _;
        let path = dir.join(Batch::file_name(self.header.index));
        let tmp = path.with_extension("tmp");
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| BatchError::Io { path: p, source }
        };
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&self.encode()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        // The rename itself is durable once the directory is synced.
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
        Ok(path)
    }

    /// Reads and checks a batch file.
    ///
    /// # Errors
    /// [`BatchError`], naming the file.
    pub fn read(path: &Path) -> Result<Batch, BatchError> {
        let bytes = std::fs::read(path).map_err(|source| BatchError::Io { path: path.to_path_buf(), source })?;
        Batch::decode(&bytes).map_err(|e| match e {
            BatchError::Malformed { what, offset } => {
                BatchError::Malformed { what: format!("{}: {what}", path.display()), offset }
            }
            other => other,
        })
    }
}

/// Calldata gas of bytes under EIP-2028: 16 per non-zero byte, 4 per zero byte.
pub fn calldata_gas(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| if b == 0 { 4 } else { 16 }).sum()
}

/// Applies a batch to a tree rebuilt from the batches before it: the tree's root must be
/// the batch's previous root, and its leaves must lead to its new root.
///
/// # Errors
/// [`BatchError::Root`] when either root does not match; the leaves' decoding errors.
pub fn apply(tree: &mut crate::tree::Tree, batch: &Batch) -> Result<(), BatchError> {
    let h = &batch.header;
    if tree.root() != h.prev_root {
        return Err(BatchError::Root { index: h.index, expected: h.prev_root, got: tree.root() });
    }
    let leaves = batch.leaves()?;
    let root = tree.update(leaves.iter().map(|l| (l.account, Some(l.hash()))));
    if root != h.new_root {
        return Err(BatchError::Root { index: h.index, expected: h.new_root, got: root });
    }
    Ok(())
}

/// Every leaf and the tree as of batch `upto`, rebuilt from the batches alone (each applied
/// with [`apply`], so a batch that does not follow its predecessor is refused).
///
/// # Errors
/// [`BatchError`] naming the first batch that does not apply.
pub fn state_at(
    batches: &[Batch],
    upto: u64,
) -> Result<(crate::tree::Tree, std::collections::BTreeMap<u64, AccountLeaf>), BatchError> {
    let mut tree = crate::tree::Tree::new();
    let mut leaves = std::collections::BTreeMap::new();
    for b in batches.iter().take_while(|b| b.header.index <= upto) {
        apply(&mut tree, b)?;
        for leaf in b.leaves()? {
            leaves.insert(leaf.account, leaf);
        }
    }
    Ok((tree, leaves))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Tree;

    fn leaf(account: u64, n: u32) -> AccountLeaf {
        AccountLeaf {
            account,
            collateral: i64::try_from(account).unwrap_or(0) * -7,
            positions: (0..n)
                .map(|i| Position {
                    instrument: i,
                    size: i64::from(i) + 1,
                    cost: -(i128::from(i) << 70),
                    fundingIndex: 5,
                })
                .collect(),
        }
    }

    fn epoch(index: u64, prev: B256, changes: Vec<AccountLeaf>, tree: &mut Tree) -> Epoch {
        let root = tree.update(changes.iter().map(|l| (l.account, Some(l.hash()))));
        Epoch {
            index,
            first_seq: index * 10,
            last_seq: index * 10 + 9,
            ts: 77,
            commands: 10,
            fills: 3,
            prev_root: prev,
            root,
            changes,
        }
    }

    #[test]
    fn batches_round_trip_and_rebuild_the_tree_alone() {
        let mut tree = Tree::new();
        let e1 = epoch(1, B256::ZERO, vec![leaf(1, 0), leaf(2, 2), leaf(u64::MAX, 1)], &mut tree);
        let e2 = epoch(2, e1.root, vec![leaf(2, 1), leaf(9, 3)], &mut tree);
        let dir = std::env::temp_dir().join(format!("l2x-batch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or(());
        let mut rebuilt = Tree::new();
        for e in [&e1, &e2] {
            let b = Batch::of(e);
            assert_eq!(b.header.data_len, b.data.len() as u64);
            let path = b.write(&dir).unwrap_or_default();
            let read = Batch::read(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(read, b);
            assert_eq!(read.leaves().unwrap_or_default(), e.changes);
            apply(&mut rebuilt, &read).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(rebuilt.root(), tree.root());
        // Out of order: batch 2 on an empty tree.
        assert!(matches!(apply(&mut Tree::new(), &Batch::of(&e2)), Err(BatchError::Root { index: 2, .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn damaged_batches_are_refused_with_a_reason() {
        let mut tree = Tree::new();
        let e = epoch(1, B256::ZERO, vec![leaf(3, 2), leaf(4, 0)], &mut tree);
        let good = Batch::of(&e).encode();
        assert!(Batch::decode(&good).is_ok());
        // Every truncation: a clear error, never a panic.
        for n in 0..good.len() {
            assert!(Batch::decode(&good[..n]).is_err(), "truncated to {n}");
        }
        // Every single flipped byte is caught.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            match Batch::decode(&bad) {
                Err(_) => {}
                // A flipped header field the data does not cover (times, counts, roots) is
                // caught when the batch is applied or compared with the chain.
                Ok(b) => assert!(i < 12 + HEADER_LEN, "byte {i} of the data flipped unnoticed: {b:?}"),
            }
        }
        let mut tampered = good.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(Batch::decode(&tampered), Err(BatchError::DataHash { index: 1 })));
        let mut root = Batch::decode(&good).unwrap_or_else(|e| panic!("{e}"));
        root.header.new_root = B256::repeat_byte(1);
        assert!(matches!(apply(&mut Tree::new(), &root), Err(BatchError::Root { .. })));
        // Data that is not leaves in order.
        let swapped = encode_leaves(&[leaf(4, 0), leaf(3, 0)]);
        assert!(matches!(decode_leaves(&swapped), Err(BatchError::Malformed { offset: 18, .. })));
    }

    #[test]
    fn data_compressed_by_another_zstd_is_the_same_batch() {
        let mut tree = Tree::new();
        let leaves: Vec<AccountLeaf> = (1..200).map(|a| leaf(a * 3, u32::try_from(a % 3).unwrap_or(0))).collect();
        let b = Batch::of(&epoch(1, B256::ZERO, leaves, &mut tree));
        assert!((b.data.len() as u64) < b.header.raw_len / 2, "{} of {}", b.data.len(), b.header.raw_len);
        // The same leaves at another level: other bytes, another hash, the same batch.
        let raw = b.raw().unwrap_or_default();
        let other_data = zstd::bulk::compress(&raw, 1).unwrap_or_default();
        assert_ne!(other_data, b.data);
        let other = Batch {
            header: Header { data_hash: keccak256(&other_data), data_len: other_data.len() as u64, ..b.header },
            data: other_data,
        };
        assert!(Batch::decode(&other.encode()).is_ok());
        assert!(other.same_content(&b) && b.same_content(&other));
        // Another leaf, or another header field: not the same batch.
        let mut changed = raw.clone();
        changed[9] ^= 1;
        let changed_data = zstd::bulk::compress(&changed, ZSTD_LEVEL).unwrap_or_default();
        let changed = Batch { data: changed_data, ..b.clone() };
        assert!(!changed.same_content(&b));
        let later = Batch { header: Header { epoch_ts: 78, ..b.header }, ..b.clone() };
        assert!(!later.same_content(&b));
        // A raw length that is a lie, or absurd: refused, nothing huge allocated.
        for raw_len in [b.header.raw_len - 1, b.header.raw_len + 1, u64::MAX] {
            let lie = Batch { header: Header { raw_len, ..b.header }, ..b.clone() };
            assert!(matches!(Batch::decode(&lie.encode()), Err(BatchError::Malformed { .. })), "{raw_len}");
        }
    }

    #[test]
    fn the_compact_encoding_is_a_fifth_of_the_abi() {
        let l = leaf(123_456, 1);
        assert_eq!(encode_leaves(std::slice::from_ref(&l)).len(), 8 + 8 + 2 + 44);
        assert_eq!(l.encode().len(), 288);
        assert!(calldata_gas(&encode_leaves(&[l])) < 62 * 16);
    }
}
