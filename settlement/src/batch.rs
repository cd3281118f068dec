//! Batches: an epoch as it is stored and posted — a fixed header and the changed leaves in
//! a compact encoding, bound together by the data's keccak-256 (docs/SETTLEMENT.md,
//! "Batches").
//!
//! ```text
//!  file  = "L2XBATCH" ‖ u32 version ‖ header (fixed, 212 bytes) ‖ data
//!  data  = leaf*                       (what is posted as calldata)
//!  leaf  = u64 account ‖ i64 collateral ‖ u16 n ‖ position*n
//!  position = u32 instrument ‖ i64 size ‖ i128 cost ‖ i128 fundingIndex      (44 bytes)
//!  header.data_hash = keccak256(data)
//! ```
//!
//! Integers are big-endian (as the EVM reads them). Leaves are in strictly increasing
//! account order. From the batches alone anyone rebuilds every leaf: decode the data, hash
//! each leaf's ABI encoding, update the tree, and the root must be the header's.

use std::path::{Path, PathBuf};

use alloy_primitives::{B256, keccak256};

use crate::epoch::Epoch;
use crate::leaf::{AccountLeaf, Position};

/// Start of a batch file.
pub const MAGIC: &[u8; 8] = b"L2XBATCH";
/// Format version of batch files this code writes and reads.
pub const VERSION: u32 = 1;
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
    /// Bytes of data.
    pub data_len: u64,
    /// Leaves in the data.
    pub leaves: u32,
}

/// A batch: header and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The header.
    pub header: Header,
    /// The encoded changed leaves.
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
        let data = encode_leaves(&epoch.changes);
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
        };
        Batch { header, data }
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
        let pad = c.at;
        if c.take::<56>("header padding")? != [0u8; 56] {
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
        let decoded = decode_leaves(data).map_err(|e| match e {
            BatchError::Malformed { what, offset } => malformed(what, offset + 12 + HEADER_LEN),
            other => other,
        })?;
        if decoded.len() != leaves as usize {
            return Err(malformed(format!("{} leaves, the header says {leaves}", decoded.len()), 12 + HEADER_LEN));
        }
        Ok(Batch { header, data: data.to_vec() })
    }

    /// The changed leaves.
    ///
    /// # Errors
    /// As [`decode_leaves`].
    pub fn leaves(&self) -> Result<Vec<AccountLeaf>, BatchError> {
        decode_leaves(&self.data)
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
    fn the_compact_encoding_is_a_fifth_of_the_abi() {
        let l = leaf(123_456, 1);
        assert_eq!(encode_leaves(std::slice::from_ref(&l)).len(), 8 + 8 + 2 + 44);
        assert_eq!(l.encode().len(), 288);
        assert!(calldata_gas(&encode_leaves(&[l])) < 62 * 16);
    }
}
