//! The raw (decompressed) data of a batch: the epoch's header fields, the market state, the
//! withdrawals, the refused queue entries and the changed leaves, each decoded strictly and named by field and offset when it breaks a
//! rule (the layout is in the parent module's doc).

use alloy_primitives::B256;

use super::{Contents, EPOCH_LEN, FormatError, Header};
use crate::leaf::{AccountLeaf, Position};
use crate::market::{self, Market};
use crate::queue::Withdrawal;

/// A cursor over bytes that names the field it failed to read.
pub(super) struct Cursor<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) at: usize,
}

impl Cursor<'_> {
    pub(super) fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], FormatError> {
        let end = self.at.checked_add(N).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else { return Err(FormatError::Truncated { field, offset: self.at }) };
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.at..end]);
        self.at = end;
        Ok(out)
    }
    pub(super) fn u64(&mut self, field: &'static str) -> Result<u64, FormatError> {
        self.take::<8>(field).map(u64::from_be_bytes)
    }
    pub(super) fn b256(&mut self, field: &'static str) -> Result<B256, FormatError> {
        self.take::<32>(field).map(B256::from)
    }
}

/// The epoch fields the raw data repeats from the header.
pub(super) fn epoch_fields(h: &Header) -> [(&'static str, usize, Field); 10] {
    [
        ("index", 12, Field::U64(h.index)),
        ("first_seq", 20, Field::U64(h.first_seq)),
        ("last_seq", 28, Field::U64(h.last_seq)),
        ("epoch_ts", 36, Field::U64(h.epoch_ts)),
        ("commands", 44, Field::U64(h.commands)),
        ("fills", 148, Field::U64(h.fills)),
        ("prev_root", 52, Field::Root(h.prev_root)),
        ("new_root", 84, Field::Root(h.new_root)),
        ("queue_count", 208, Field::U64(h.queue_count)),
        ("queue_hash", 216, Field::Root(h.queue_hash)),
    ]
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    U64(u64),
    Root(B256),
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::U64(v) => write!(f, "{v}"),
            Field::Root(r) => write!(f, "{r}"),
        }
    }
}

/// The raw encoding of a batch's content: the header's epoch fields, the markets, the
/// withdrawals, the refused queue indexes, the leaves.
pub fn encode_raw(
    header: &Header,
    markets: &[Market],
    withdrawals: &[Withdrawal],
    rejected: &[u64],
    leaves: &[AccountLeaf],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        EPOCH_LEN
            + 12
            + markets.len() * market::MARKET_LEN
            + withdrawals.len() * 16
            + rejected.len() * 8
            + leaves.len() * 62,
    );
    for (_, _, field) in epoch_fields(header) {
        match field {
            Field::U64(v) => out.extend_from_slice(&v.to_be_bytes()),
            Field::Root(r) => out.extend_from_slice(r.as_slice()),
        }
    }
    market::encode(markets, &mut out);
    out.extend_from_slice(&u32::try_from(withdrawals.len()).unwrap_or(u32::MAX).to_be_bytes());
    for w in withdrawals {
        out.extend_from_slice(&w.account.to_be_bytes());
        out.extend_from_slice(&w.amount.to_be_bytes());
    }
    out.extend_from_slice(&u32::try_from(rejected.len()).unwrap_or(u32::MAX).to_be_bytes());
    for i in rejected {
        out.extend_from_slice(&i.to_be_bytes());
    }
    out.extend_from_slice(&encode_leaves(leaves));
    out
}

/// Encodes leaves in the compact form of the raw data.
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

fn raw_error(field: &'static str, offset: usize, why: impl Into<String>) -> FormatError {
    FormatError::Raw { field, offset, why: why.into() }
}

/// Decodes leaves from the raw data's cursor to its end (strict: account order, positions
/// in instrument order, no size 0).
fn decode_leaves(c: &mut Cursor<'_>) -> Result<Vec<AccountLeaf>, FormatError> {
    let mut leaves: Vec<AccountLeaf> = Vec::new();
    while c.at < c.bytes.len() {
        let at = c.at;
        let account = c.u64("leaf account")?;
        if leaves.last().is_some_and(|l| l.account >= account) {
            return Err(raw_error("leaf account", at, "accounts not in increasing order"));
        }
        let collateral = i64::from_be_bytes(c.take::<8>("leaf collateral")?);
        let n = u16::from_be_bytes(c.take::<2>("leaf position count")?);
        let mut positions = Vec::with_capacity(usize::from(n).min(1024));
        for _ in 0..n {
            let p_at = c.at;
            let instrument = u32::from_be_bytes(c.take::<4>("position instrument")?);
            let size = i64::from_be_bytes(c.take::<8>("position size")?);
            let cost = i128::from_be_bytes(c.take::<16>("position cost")?);
            let funding_index = i128::from_be_bytes(c.take::<16>("position fundingIndex")?);
            if size == 0 {
                return Err(raw_error("position size", p_at + 4, "a position of size 0"));
            }
            if positions.last().is_some_and(|p: &Position| p.instrument >= instrument) {
                return Err(raw_error("position instrument", p_at, "positions not in increasing instrument order"));
            }
            positions.push(Position { instrument, size, cost, fundingIndex: funding_index });
        }
        leaves.push(AccountLeaf { account, collateral, positions });
    }
    Ok(leaves)
}

/// Decodes the market state (instruments 0, 1, … in order; marks not negative; tick values
/// positive).
fn decode_markets(c: &mut Cursor<'_>) -> Result<Vec<Market>, FormatError> {
    let count_at = c.at;
    let n = u32::from_be_bytes(c.take::<4>("market count")?);
    let room = (c.bytes.len() - c.at) / market::MARKET_LEN;
    if n as usize > room {
        return Err(raw_error("market count", count_at, format!("{n} markets, the data has room for {room}")));
    }
    let mut markets = Vec::with_capacity(n as usize);
    for i in 0..n {
        let at = c.at;
        let m = Market {
            instrument: u32::from_be_bytes(c.take::<4>("market instrument")?),
            mark: i64::from_be_bytes(c.take::<8>("market mark")?),
            fundingIndex: i128::from_be_bytes(c.take::<16>("market fundingIndex")?),
            tickValue: i64::from_be_bytes(c.take::<8>("market tickValue")?),
        };
        if m.instrument != i {
            return Err(raw_error(
                "market instrument",
                at,
                format!("{}, expected {i} (instruments in order)", m.instrument),
            ));
        }
        if m.mark < 0 {
            return Err(raw_error("market mark", at + 4, format!("{} is negative", m.mark)));
        }
        if m.tickValue <= 0 {
            return Err(raw_error("market tickValue", at + 28, format!("{} is not positive", m.tickValue)));
        }
        markets.push(m);
    }
    Ok(markets)
}

/// Decodes a count of `len`-byte items, refusing one the rest of the data has no room for.
fn decode_count(c: &mut Cursor<'_>, field: &'static str, len: usize) -> Result<u32, FormatError> {
    let at = c.at;
    let n = u32::from_be_bytes(c.take::<4>(field)?);
    let room = (c.bytes.len() - c.at) / len;
    if n as usize > room {
        return Err(raw_error(field, at, format!("{n} items of {len} bytes, the data has room for {room}")));
    }
    Ok(n)
}

/// Decodes the withdrawals (amounts positive, as a `u64` that fits an `i64`).
fn decode_withdrawals(c: &mut Cursor<'_>) -> Result<Vec<Withdrawal>, FormatError> {
    let n = decode_count(c, "withdrawal count", 16)?;
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let account = c.u64("withdrawal account")?;
        let at = c.at;
        let amount = c.u64("withdrawal amount")?;
        if amount == 0 || amount > i64::MAX.cast_unsigned() {
            return Err(raw_error("withdrawal amount", at, format!("{amount}: not in 1..=2^63-1")));
        }
        out.push(Withdrawal { account, amount });
    }
    Ok(out)
}

/// Decodes the refused queue indexes: strictly increasing, within `1..=queue_count`.
fn decode_rejected(c: &mut Cursor<'_>, queue_count: u64) -> Result<Vec<u64>, FormatError> {
    let n = decode_count(c, "rejected count", 8)?;
    let mut out: Vec<u64> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let at = c.at;
        let index = c.u64("rejected index")?;
        if out.last().is_some_and(|&p| p >= index) {
            return Err(raw_error("rejected index", at, format!("{index}: indexes not strictly increasing")));
        }
        if index == 0 || index > queue_count {
            return Err(raw_error("rejected index", at, format!("{index}: not in 1..={queue_count} (queue_count)")));
        }
        out.push(index);
    }
    Ok(out)
}

/// Checks a count in the header against the data's.
fn check_count(field: &'static str, offset: usize, header: u32, data: usize) -> Result<(), FormatError> {
    if header as usize == data {
        return Ok(());
    }
    Err(FormatError::Header { field, offset, why: format!("{header}, but the data holds {data}") })
}

/// Decodes the raw data and checks it against `header`: its epoch fields, its market hash,
/// its withdrawal, refused-entry and leaf counts.
pub(super) fn decode(raw: &[u8], header: &Header) -> Result<Contents, FormatError> {
    let mut c = Cursor { bytes: raw, at: 0 };
    for (field, offset, value) in epoch_fields(header) {
        let at = c.at;
        let data = match value {
            Field::U64(_) => Field::U64(c.u64(field)?),
            Field::Root(_) => Field::Root(c.b256(field)?),
        };
        if data != value {
            return Err(FormatError::Header {
                field,
                offset,
                why: format!("{value}, but the data says {data} (raw byte {at})"),
            });
        }
    }
    let markets = decode_markets(&mut c)?;
    let hash = market::hash(&markets);
    if hash != header.market_hash {
        return Err(FormatError::Header {
            field: "market_hash",
            offset: 176,
            why: format!("{}, but the data's market state hashes to {hash}", header.market_hash),
        });
    }
    let withdrawals = decode_withdrawals(&mut c)?;
    check_count("withdrawals", 248, header.withdrawals, withdrawals.len())?;
    let rejected = decode_rejected(&mut c, header.queue_count)?;
    check_count("rejected", 252, header.rejected, rejected.len())?;
    let leaves = decode_leaves(&mut c)?;
    if leaves.len() != header.leaves as usize {
        return Err(FormatError::Header {
            field: "leaves",
            offset: 164,
            why: format!("{}, but the data holds {} leaves", header.leaves, leaves.len()),
        });
    }
    Ok(Contents { markets, withdrawals, rejected, leaves })
}

/// Reads raw data alone, with no header to check it against (what a chain holds of a batch
/// is its data, not a file's header): the epoch fields, then each section as [`decode`]
/// decodes it. Returns the header the data describes — its epoch fields, the hash of its
/// market state, its counts, `raw_len` its length; `data_hash` and `data_len` zero, for the
/// caller that has the compressed bytes — and the contents.
pub(super) fn read(raw: &[u8]) -> Result<(Header, Contents), FormatError> {
    let mut c = Cursor { bytes: raw, at: 0 };
    // The order of `epoch_fields` (and of `encode_raw`).
    let (index, first_seq, last_seq) = (c.u64("index")?, c.u64("first_seq")?, c.u64("last_seq")?);
    let (epoch_ts, commands, fills) = (c.u64("epoch_ts")?, c.u64("commands")?, c.u64("fills")?);
    let (prev_root, new_root) = (c.b256("prev_root")?, c.b256("new_root")?);
    let (queue_count, queue_hash) = (c.u64("queue_count")?, c.b256("queue_hash")?);
    let markets = decode_markets(&mut c)?;
    let withdrawals = decode_withdrawals(&mut c)?;
    let rejected = decode_rejected(&mut c, queue_count)?;
    let leaves = decode_leaves(&mut c)?;
    // Counts of items of at least 8 bytes in at most 2^30 raw bytes: they fit.
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let header = Header {
        index,
        first_seq,
        last_seq,
        epoch_ts,
        commands,
        prev_root,
        new_root,
        data_hash: B256::ZERO,
        fills,
        data_len: 0,
        leaves: count(leaves.len()),
        raw_len: raw.len() as u64,
        market_hash: market::hash(&markets),
        queue_count,
        queue_hash,
        withdrawals: count(withdrawals.len()),
        rejected: count(rejected.len()),
    };
    Ok((header, Contents { markets, withdrawals, rejected, leaves }))
}
