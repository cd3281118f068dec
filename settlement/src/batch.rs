//! Batches: an epoch as it is stored and posted — a fixed header, and the data: the
//! epoch's header fields, the market state at its close and the changed leaves in a compact
//! encoding, compressed, bound together by the data's keccak-256 (docs/SETTLEMENT.md,
//! "Batches").
//!
//! ```text
//!  file     = "L2XBATCH" ‖ u32 version = 4 ‖ header (fixed, 260 bytes) ‖ data
//!  data     = zstd(raw)                   (what is posted as calldata, and hashed)
//!  raw      = epoch ‖ u32 m ‖ market*m ‖ u32 w ‖ withdrawal*w ‖ u32 r ‖ u64 index*r ‖ leaf*
//!  epoch    = u64 index ‖ u64 first_seq ‖ u64 last_seq ‖ u64 epoch_ts ‖ u64 commands ‖ u64 fills
//!           ‖ bytes32 prev_root ‖ bytes32 new_root ‖ u64 queue_count ‖ bytes32 queue_hash
//!                                                                                (152 bytes)
//!  market   = u32 instrument ‖ i64 mark ‖ i128 fundingIndex ‖ i64 tickValue      (36 bytes)
//!  withdrawal = u64 account ‖ u64 amount                                          (16 bytes)
//!  leaf     = u64 account ‖ i64 collateral ‖ u16 n ‖ position*n
//!  position = u32 instrument ‖ i64 size ‖ i128 cost ‖ i128 fundingIndex          (44 bytes)
//!  header.data_hash = keccak256(data), header.market_hash = keccak256(abi.encode(markets))
//! ```
//!
//! Integers are big-endian (as the EVM reads them). The data is self-describing — it
//! repeats the header's epoch fields — so the data posted on chain is the whole batch, and
//! every header byte of a file is checked against something: the data (through its hash),
//! the data's length and count, or the file's name and its neighbours (`batch_set`).
//!
//! Compression halves the calldata gas (measured in BENCHMARKS.md). Its bytes are not a
//! function of the content alone: another zstd version may compress the same raw bytes
//! differently. So the raw bytes are what a batch *is* ([`Batch::same_content`]); the data a
//! batch was posted with is kept in its file, and its hash is what the chain holds.

use std::path::{Path, PathBuf};

use alloy_primitives::{B256, keccak256};

use crate::epoch::Epoch;
use crate::leaf::AccountLeaf;
use crate::market::{self, Market};
use crate::queue::Withdrawal;

/// Start of a batch file.
pub const MAGIC: &[u8; 8] = b"L2XBATCH";
/// Format version of batch files this code writes and reads (1: uncompressed leaves; 2:
/// compressed leaves, no market state; 3: no L1 queue, withdrawals or refused entries).
pub const VERSION: u32 = 4;
/// The zstd level batches are compressed at.
pub const ZSTD_LEVEL: i32 = 9;
/// The most raw bytes a batch may declare (a bound on what decompression allocates).
pub const MAX_RAW_LEN: u64 = 1 << 30;
/// Bytes of the encoded header (after the magic and the version).
pub const HEADER_LEN: usize = 8 * 5 + 32 * 3 + 8 * 2 + 4 + 8 + 32 + 8 + 32 + 4 + 4 + PADDING;
/// Zero bytes at the end of the header.
const PADDING: usize = 16;
/// Where the data starts in a file.
pub const DATA_OFFSET: usize = 12 + HEADER_LEN;
/// Bytes of the epoch fields at the start of the raw data.
pub const EPOCH_LEN: usize = 8 * 6 + 32 * 2 + 8 + 32;

/// The fixed part of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The batch's index, from 1 (batches are numbered without gaps; epochs that changed
    /// nothing are not batches, docs/SETTLEMENT.md "Epochs").
    pub index: u64,
    /// The first sequence number of the batch's range: the previous batch's `last_seq + 1`
    /// (1 for batch 1), whether or not the journal has a command with it.
    pub first_seq: u64,
    /// Its last command: the one that closed the epoch.
    pub last_seq: u64,
    /// Sequenced time of the last command, ns.
    pub epoch_ts: u64,
    /// Commands in the range: at least 1, at most `last_seq − first_seq + 1` (fewer where
    /// the journal's sequence numbers have gaps).
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
    /// Bytes of the raw encoding the data decompresses to.
    pub raw_len: u64,
    /// `keccak256(abi.encode(markets))` of the market state in the data.
    pub market_hash: B256,
    /// L1 queue entries taken in all up to the batch's end.
    pub queue_count: u64,
    /// The queue's rolling hash after entry `queue_count` ([`crate::queue`]).
    pub queue_hash: B256,
    /// Withdrawals in the data.
    pub withdrawals: u32,
    /// Refused queue indexes in the data.
    pub rejected: u32,
}

/// A batch: header and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The header.
    pub header: Header,
    /// The epoch, its market state and its changed leaves, encoded and compressed: what is
    /// posted.
    pub data: Vec<u8>,
}

/// What a batch's data holds, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contents {
    /// The market state at the epoch's close, instruments 0, 1, … in order.
    pub markets: Vec<Market>,
    /// The withdrawals, in sequence order.
    pub withdrawals: Vec<Withdrawal>,
    /// The refused queue indexes, increasing.
    pub rejected: Vec<u64>,
    /// The changed leaves, in account order.
    pub leaves: Vec<AccountLeaf>,
}

/// What is wrong with a batch's bytes (no file: [`BatchError::Damaged`] names it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The bytes end inside a field.
    #[error("truncated: {field} at byte {offset} runs past the end")]
    Truncated {
        /// The field.
        field: &'static str,
        /// Where it starts (in the file, or in the raw data for raw fields).
        offset: usize,
    },
    /// Not a batch file.
    #[error("not a batch file: bytes 0-7 are not \"L2XBATCH\"")]
    Magic,
    /// Another format version.
    #[error("batch format version {found} (bytes 8-11); this l2x reads version {VERSION}")]
    Version {
        /// The file's version.
        found: u32,
    },
    /// A header field breaks a rule of the format.
    #[error("header field {field} (byte {offset}): {why}")]
    Header {
        /// The field.
        field: &'static str,
        /// Its offset in the file.
        offset: usize,
        /// The rule it breaks.
        why: String,
    },
    /// The data does not hash to the header's data hash.
    #[error("the data does not hash to header field data_hash (byte 116): the data or the hash was changed")]
    DataHash,
    /// The data is not a zstd frame of the declared length.
    #[error("the data (byte {DATA_OFFSET} on): {why}")]
    Data {
        /// What is wrong.
        why: String,
    },
    /// A field of the raw (decompressed) data breaks a rule of the format.
    #[error("raw data field {field} (byte {offset} of the decompressed data): {why}")]
    Raw {
        /// The field.
        field: &'static str,
        /// Its offset in the raw data.
        offset: usize,
        /// The rule it breaks.
        why: String,
    },
}

/// A batch file that cannot be read, or a batch that does not fit the ones before it.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Reading or writing a file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file whose bytes are not a valid batch. (`what` is this error's detail, not a
    /// cause from below: it is a field, so the message says it once.)
    #[error("{path}: {what}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with its bytes.
        what: FormatError,
    },
    /// A batch that is valid alone but not where it is: its name, its place in the set,
    /// its roots or its sequence range do not follow.
    #[error("{path}: {field}: {why}")]
    Inconsistent {
        /// The file.
        path: PathBuf,
        /// The header field (or `file name`).
        field: &'static str,
        /// What it should have been, and why.
        why: String,
    },
    /// A batch missing from a set (batches run from 1 without gaps).
    #[error("{dir}: batch {index} is missing ({file} is not there{after}); batches run from 1 without gaps")]
    Missing {
        /// The directory.
        dir: PathBuf,
        /// The missing batch.
        index: u64,
        /// Its file name.
        file: String,
        /// ", but batch N is" when a later batch is there.
        after: String,
    },
    /// The tree the batch is applied to is not at the batch's previous root.
    #[error("batch {index}: header field prev_root is {expected}, but the tree before the batch has root {got}")]
    PrevRoot {
        /// The batch.
        index: u64,
        /// The header's previous root.
        expected: B256,
        /// The root of the tree before the batch.
        got: B256,
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
    /// Decoding a batch held in memory (not read from a file).
    #[error("batch {index}: {what}")]
    Format {
        /// The batch (its header's index).
        index: u64,
        /// What is wrong.
        what: FormatError,
    },
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
        let mut header = Header {
            index: epoch.index,
            first_seq: epoch.first_seq,
            last_seq: epoch.last_seq,
            epoch_ts: epoch.ts,
            commands: epoch.commands,
            prev_root: epoch.prev_root,
            new_root: epoch.root,
            data_hash: B256::ZERO,
            fills: epoch.fills,
            data_len: 0,
            leaves: u32::try_from(epoch.changes.len()).unwrap_or(u32::MAX),
            raw_len: 0,
            market_hash: market::hash(&epoch.markets),
            queue_count: epoch.queue_count,
            queue_hash: epoch.queue_hash,
            withdrawals: u32::try_from(epoch.withdrawals.len()).unwrap_or(u32::MAX),
            rejected: u32::try_from(epoch.rejected.len()).unwrap_or(u32::MAX),
        };
        let raw = encode_raw(&header, &epoch.markets, &epoch.withdrawals, &epoch.rejected, &epoch.changes);
        // Compressing bytes in memory fails only if zstd cannot allocate its context.
        let data = zstd::bulk::compress(&raw, ZSTD_LEVEL).unwrap_or_else(|e| panic!("zstd: {e}"));
        header.data_hash = keccak256(&data);
        header.data_len = data.len() as u64;
        header.raw_len = raw.len() as u64;
        Batch { header, data }
    }

    /// Whether two batches say the same thing: the same header (but for the data's hash and
    /// length) and the same raw content, however their data was compressed.
    pub fn same_content(&self, other: &Batch) -> bool {
        let strip = |h: Header| Header { data_hash: B256::ZERO, data_len: 0, ..h };
        strip(self.header) == strip(other.header)
            && match (self.raw(), other.raw()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
    }

    /// The raw encoding: the data decompressed, exactly `raw_len` bytes.
    ///
    /// # Errors
    /// [`FormatError::Header`] for a raw length over [`MAX_RAW_LEN`], [`FormatError::Data`]
    /// if the data is not a zstd frame of that length.
    pub fn raw(&self) -> Result<Vec<u8>, FormatError> {
        let declared = self.header.raw_len;
        if declared > MAX_RAW_LEN {
            return Err(FormatError::Header {
                field: "raw_len",
                offset: 168,
                why: format!("{declared} raw bytes declared, at most {MAX_RAW_LEN}"),
            });
        }
        let raw = decompress_one_frame(&self.data, declared)?;
        if raw.len() as u64 > declared {
            return Err(FormatError::Data {
                why: format!(
                    "decompresses to more than {declared} bytes, header field raw_len (byte 168) says {declared}"
                ),
            });
        }
        if raw.len() as u64 != declared {
            return Err(FormatError::Data {
                why: format!("decompresses to {} bytes, header field raw_len (byte 168) says {declared}", raw.len()),
            });
        }
        Ok(raw)
    }

    /// The market state and the changed leaves, checked against the header: its epoch
    /// fields, its market hash and its leaf count.
    ///
    /// # Errors
    /// [`FormatError`] naming the field and its offset.
    pub fn contents(&self) -> Result<Contents, FormatError> {
        raw::decode(&self.raw()?, &self.header)
    }

    /// The changed leaves.
    ///
    /// # Errors
    /// As [`Batch::contents`].
    pub fn leaves(&self) -> Result<Vec<AccountLeaf>, FormatError> {
        self.contents().map(|c| c.leaves)
    }

    /// The market state at the epoch's close.
    ///
    /// # Errors
    /// As [`Batch::contents`].
    pub fn markets(&self) -> Result<Vec<Market>, FormatError> {
        self.contents().map(|c| c.markets)
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let h = &self.header;
        let mut out = Vec::with_capacity(DATA_OFFSET + self.data.len());
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
        out.extend_from_slice(h.market_hash.as_slice());
        out.extend_from_slice(&h.queue_count.to_be_bytes());
        out.extend_from_slice(h.queue_hash.as_slice());
        out.extend_from_slice(&h.withdrawals.to_be_bytes());
        out.extend_from_slice(&h.rejected.to_be_bytes());
        out.resize(DATA_OFFSET, 0);
        out.extend_from_slice(&self.data);
        out
    }

    /// Decodes a file's bytes and checks everything the bytes alone can tell: the magic,
    /// the version, the header's ranges and padding, the data's length and hash, its
    /// decompression, and its content against the header ([`Batch::contents`]).
    ///
    /// # Errors
    /// [`FormatError`] naming the field and its offset.
    pub fn decode(bytes: &[u8]) -> Result<Batch, FormatError> {
        let header = decode_header(bytes)?;
        let data = &bytes[DATA_OFFSET..];
        if data.len() as u64 != header.data_len {
            return Err(FormatError::Header {
                field: "data_len",
                offset: 156,
                why: format!("{}, but {} data bytes follow the header", header.data_len, data.len()),
            });
        }
        if keccak256(data) != header.data_hash {
            return Err(FormatError::DataHash);
        }
        let batch = Batch { header, data: data.to_vec() };
        batch.contents()?;
        check_ranges(&batch.header)?;
        Ok(batch)
    }

    /// The batch whose data is `data`, as a chain holds it (the data posted by its commit):
    /// the header is read from the data, which repeats the epoch fields; its counts,
    /// lengths and hashes are the data's own. The data is decompressed with at most
    /// [`MAX_RAW_LEN`] bytes, decoded as [`Batch::decode`] decodes a file's, and the rules
    /// between the header's fields are checked. Whether the header is the one the batch
    /// was committed with is the caller's to compare (the commit's arguments).
    ///
    /// # Errors
    /// [`FormatError`] naming the field ([`FormatError::Data`] for data that does not
    /// decompress). Returns the batch and its decoded contents ([`Batch::contents`], from
    /// the one decompression).
    pub fn from_data(data: Vec<u8>) -> Result<(Batch, Contents), FormatError> {
        let raw = decompress_bounded(&data)?;
        let (mut header, _) = raw::read(&raw)?;
        header.data_hash = keccak256(&data);
        header.data_len = data.len() as u64;
        check_ranges(&header)?;
        let contents = raw::decode(&raw, &header)?;
        Ok((Batch { header, data }, contents))
    }

    /// The file name of batch `index`: `batch-00000000000000000001.l2xb`.
    pub fn file_name(index: u64) -> String {
        format!("batch-{index:020}.l2xb")
    }

    /// Reads and checks a batch file ([`Batch::decode`]).
    ///
    /// # Errors
    /// [`BatchError::Io`], [`BatchError::Damaged`] naming the file.
    pub fn read(path: &Path) -> Result<Batch, BatchError> {
        let bytes = std::fs::read(path).map_err(|source| BatchError::Io { path: path.to_path_buf(), source })?;
        Batch::decode(&bytes).map_err(|what| BatchError::Damaged { path: path.to_path_buf(), what })
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
}

/// Data decompressed with no declared length to trust: at most [`MAX_RAW_LEN`] bytes.
fn decompress_bounded(data: &[u8]) -> Result<Vec<u8>, FormatError> {
    let raw = decompress_one_frame(data, MAX_RAW_LEN)?;
    if raw.len() as u64 > MAX_RAW_LEN {
        return Err(FormatError::Data { why: format!("decompresses to more than {MAX_RAW_LEN} bytes") });
    }
    Ok(raw)
}

/// The largest zstd window a batch's data may ask for, as a log: 2²⁷ bytes (zstd's own
/// default for streaming decoders; level 9 uses far less).
pub const WINDOW_LOG_MAX: u32 = 27;

/// The one decompressor of a batch's data, for a file's ([`Batch::raw`]) as for a chain's
/// ([`Batch::from_data`]): the data must be exactly one zstd frame (not two concatenated,
/// not one followed by a skippable frame or other bytes), with a window of at most
/// 2^[`WINDOW_LOG_MAX`] bytes; at most `limit` + 1 bytes are produced (the caller compares).
fn decompress_one_frame(data: &[u8], limit: u64) -> Result<Vec<u8>, FormatError> {
    use std::io::Read as _;
    let bad = |why: String| FormatError::Data { why: format!("does not decompress: {why}") };
    match zstd::zstd_safe::find_frame_compressed_size(data) {
        Ok(n) if n == data.len() => {}
        Ok(n) => return Err(bad(format!("not one zstd frame: the first ends at byte {n} of {}", data.len()))),
        Err(code) => return Err(bad(format!("not a zstd frame: {}", zstd::zstd_safe::get_error_name(code)))),
    }
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(data).map_err(|e| bad(format!("zstd: {e}")))?.single_frame();
    decoder.window_log_max(WINDOW_LOG_MAX).map_err(|e| bad(format!("zstd: {e}")))?;
    let mut raw = Vec::new();
    decoder.take(limit.saturating_add(1)).read_to_end(&mut raw).map_err(|e| bad(e.to_string()))?;
    Ok(raw)
}

/// The header of a file's bytes: magic, version, fields, padding.
fn decode_header(bytes: &[u8]) -> Result<Header, FormatError> {
    let mut c = raw::Cursor { bytes, at: 0 };
    if c.take::<8>("magic")? != *MAGIC {
        return Err(FormatError::Magic);
    }
    let found = u32::from_be_bytes(c.take::<4>("version")?);
    if found != VERSION {
        return Err(FormatError::Version { found });
    }
    let header = Header {
        index: c.u64("index")?,
        first_seq: c.u64("first_seq")?,
        last_seq: c.u64("last_seq")?,
        epoch_ts: c.u64("epoch_ts")?,
        commands: c.u64("commands")?,
        prev_root: c.b256("prev_root")?,
        new_root: c.b256("new_root")?,
        data_hash: c.b256("data_hash")?,
        fills: c.u64("fills")?,
        data_len: c.u64("data_len")?,
        leaves: u32::from_be_bytes(c.take::<4>("leaves")?),
        raw_len: c.u64("raw_len")?,
        market_hash: c.b256("market_hash")?,
        queue_count: c.u64("queue_count")?,
        queue_hash: c.b256("queue_hash")?,
        withdrawals: u32::from_be_bytes(c.take::<4>("withdrawals")?),
        rejected: u32::from_be_bytes(c.take::<4>("rejected")?),
    };
    let pad = c.at;
    if let Some(i) = c.take::<PADDING>("padding")?.iter().position(|&b| b != 0) {
        return Err(FormatError::Header { field: "padding", offset: pad + i, why: "not zero".into() });
    }
    Ok(header)
}

/// The rules between a header's epoch fields (checked after the data, which repeats them:
/// a damaged field is named by its disagreement with the data first).
fn check_ranges(header: &Header) -> Result<(), FormatError> {
    let bad = |field, offset, why: String| Err(FormatError::Header { field, offset, why });
    if header.index == 0 {
        return bad("index", 12, "0: batches count from 1".into());
    }
    if header.first_seq == 0 {
        return bad("first_seq", 20, "0: sequence numbers count from 1".into());
    }
    if header.last_seq < header.first_seq {
        return bad("last_seq", 28, format!("{}, before first_seq {}", header.last_seq, header.first_seq));
    }
    // A range holds its closing command, and at most one command per sequence number (the
    // journal's numbers may have gaps: fewer is fine).
    let room = header.last_seq - header.first_seq + 1;
    if header.commands == 0 {
        return bad("commands", 44, "0: a batch holds at least the command that closed it".into());
    }
    if header.commands > room {
        return bad(
            "commands",
            44,
            format!(
                "{}, but seq {}-{} has room for {room} commands at most",
                header.commands, header.first_seq, header.last_seq
            ),
        );
    }
    if header.queue_count == 0 && header.queue_hash != B256::ZERO {
        return bad("queue_hash", 216, format!("{}, but no queue entry was taken: 0x00…00", header.queue_hash));
    }
    if u64::from(header.rejected) > header.queue_count {
        let why = format!("{}, more than the {} queue entries taken", header.rejected, header.queue_count);
        return bad("rejected", 252, why);
    }
    Ok(())
}

/// Calldata gas of bytes under EIP-2028: 16 per non-zero byte, 4 per zero byte.
pub fn calldata_gas(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| if b == 0 { 4 } else { 16 }).sum()
}

/// The EIP-7623 calldata floor of bytes (Prague and later): 10 gas per token, a zero byte
/// one token and a non-zero byte four. A transaction pays at least 21,000 plus the floor
/// of its whole input, whatever it executes.
pub fn calldata_floor_gas(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| if b == 0 { 10 } else { 40 }).sum()
}

/// Applies a batch to a tree rebuilt from the batches before it: the tree's root must be
/// the batch's previous root, and its leaves must lead to its new root.
///
/// # Errors
/// [`BatchError::PrevRoot`] when the tree is not at the batch's previous root,
/// [`BatchError::Root`] when its leaves do not give its new root; [`BatchError::Format`]
/// when the data does not decode.
pub fn apply(tree: &mut crate::tree::Tree, batch: &Batch) -> Result<(), BatchError> {
    let h = &batch.header;
    if tree.root() != h.prev_root {
        return Err(BatchError::PrevRoot { index: h.index, expected: h.prev_root, got: tree.root() });
    }
    let leaves = batch.leaves().map_err(|what| BatchError::Format { index: h.index, what })?;
    let root = tree.update(leaves.iter().map(|l| (l.account, Some(l.hash()))));
    if root != h.new_root {
        return Err(BatchError::Root { index: h.index, expected: h.new_root, got: root });
    }
    Ok(())
}

mod raw;

pub use raw::{encode_leaves, encode_raw};

#[cfg(test)]
mod tests;
