//! The canonical state: everything that defines the exchange, in one fixed order, with one
//! binary encoding that is both the snapshot format and the input of the state hash.
//!
//! [`CanonicalState::encode`] writes the encoding below; [`CanonicalState::decode`] reads it
//! back, validating every field (a snapshot is bytes from disk); [`CanonicalState::hash`] is
//! SHA-256 of the encoding. Two states are equal exactly when their canonical forms are, so
//! replay, recovery and the tests compare hashes (and, when they differ, the forms). The
//! matching part ([`MatchingState`]: instruments, books, counters, time) has a hash of its
//! own (domain `l2x-matching-v2` + its part of the encoding), which the book's
//! reference-model tests compare.
//!
//! # Encoding (all integers little-endian)
//!
//! ```text
//! "l2x-state-v2"                                  12 bytes, the format's name and version
//! matching part:
//!   u64 instrument count, then per instrument in id order:
//!       16 symbol bytes (zero-padded), then the 13 decimals of its specification in
//!       declaration order (each rust_decimal's 16-byte `serialize()` of the normalised value),
//!       u8 has_mark, i64 mark ticks (0 if none)
//!   u64 resting order count, then per order in canonical order (instrument, bids then
//!       asks, best price first, time priority):
//!       u32 instrument, u8 side, i64 price, u64 order id, u64 account, u64 cid,
//!       i64 leaves, i64 filled, u8 tif, u8 has_expiry, u64 expiry, u8 post_only,
//!       u8 reduce_only, u8 stp
//!   u64 next order id, u64 next trade id, u64 now
//! risk part:
//!   per instrument in id order: i128 funding index
//!   u64 account count, then per account (insurance fund, fee account, then trading
//!       accounts in ascending id):
//!       u8 holder kind (0 account, 1 insurance, 2 fees), u64 account id (0 if none),
//!       i64 collateral, u64 position count, then per position in instrument order:
//!       u32 instrument, i64 size, i128 cost, i128 funding index, i128 realised,
//!       i64 open buy, i64 open sell
//!   i128 total deposits, i128 total withdrawals
//! L1 part, only for a state that has seen the L1 queue or a binding (see below):
//!   u8 1 (the part's tag), u64 next queue index, u8 bound,
//!   u64 chain id, 20 contract bytes, 20 token bytes (all zero unless bound)
//! ```
//!
//! # The L1 part is a trailer
//!
//! A state that never consumed an L1 queue entry and was never bound (next index 1, no
//! binding: every state before issue 16, and every journal of `chain = none`) ends after the
//! total withdrawals, so its encoding — and its hash, and every snapshot of it — is
//! byte-for-byte what it was before the L1 queue existed. Every other state carries the
//! trailer. The decoder refuses a trailer that describes that initial L1 state (the encoding
//! would not be the only one), a next index of 0, an unknown tag, and binding bytes that are
//! not zero when unbound.

use core::fmt;

use l2x_types::{
    AccountId, Amount, ClientOrderId, Holder, InstrumentId, InstrumentSpec, L1Address, L1Binding, OrderId, Price, Qty,
    Side, StpMode, TimeInForce, Timestamp,
};
use sha2::{Digest, Sha256};

use crate::book::RestingOrder;
use l2x_types::bytes::{DecodeError, Reader};

/// The matching part of the state: instruments, books, counters, time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchingState {
    /// Listed instruments in id order, with their mark price.
    pub instruments: Vec<(InstrumentSpec, Option<Price>)>,
    /// Resting orders in canonical order.
    pub orders: Vec<RestingOrder>,
    /// The id the next accepted order gets.
    pub next_order_id: u64,
    /// The id the next trade gets.
    pub next_trade_id: u64,
    /// Sequenced time reached.
    pub now: Timestamp,
}

/// One position record of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionState {
    /// Instrument.
    pub instrument: InstrumentId,
    /// Signed size.
    pub size: Qty,
    /// Signed entry notional of the open size, quote micro-units.
    pub cost: i128,
    /// Funding index at the last settlement.
    pub funding_index: i128,
    /// Realised PnL so far.
    pub realised: i128,
    /// Open quantity of resting buys.
    pub open_buy: Qty,
    /// Open quantity of resting sells.
    pub open_sell: Qty,
}

/// One account's balances and positions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// Who.
    pub holder: Holder,
    /// Collateral.
    pub collateral: Amount,
    /// Position records, in instrument order.
    pub positions: Vec<PositionState>,
}

/// Everything that defines the state, in canonical order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonicalState {
    /// Instruments, books, counters, time.
    pub matching: MatchingState,
    /// Each instrument's cumulative funding index, in id order.
    pub funding_indexes: Vec<i128>,
    /// Insurance fund, fee account, then trading accounts in ascending id.
    pub accounts: Vec<AccountState>,
    /// Total deposits, quote micro-units.
    pub deposits: i128,
    /// Total withdrawals, quote micro-units.
    pub withdrawals: i128,
    /// The L1 queue's position and the vault binding.
    pub l1: L1State,
}

/// The state machine's view of the L1 queue: the next entry it will apply, and the vault the
/// journal is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L1State {
    /// The queue index the next L1 command must carry (from 1; every entry before it has
    /// been applied, exactly once, in order).
    pub next: u64,
    /// The vault, once bound.
    pub binding: Option<L1Binding>,
}

impl Default for L1State {
    fn default() -> L1State {
        L1State { next: 1, binding: None }
    }
}

/// The L1 part's tag (the only one so far).
const L1_TAG: u8 = 1;

impl L1State {
    /// `true` for the state before any L1 command: encoded as nothing.
    pub fn is_initial(&self) -> bool {
        *self == L1State::default()
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        if self.is_initial() {
            return;
        }
        out.push(L1_TAG);
        out.extend_from_slice(&self.next.to_le_bytes());
        out.push(u8::from(self.binding.is_some()));
        let b = self.binding.unwrap_or(L1Binding {
            chain_id: 0,
            contract: L1Address::default(),
            token: L1Address::default(),
        });
        out.extend_from_slice(&b.chain_id.to_le_bytes());
        out.extend_from_slice(&b.contract.0);
        out.extend_from_slice(&b.token.0);
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<L1State, DecodeError> {
        if r.remaining() == 0 {
            return Ok(L1State::default());
        }
        let at = r.pos();
        if r.u8("L1 part tag")? != L1_TAG {
            return Err(DecodeError { offset: at, what: "L1 part tag" });
        }
        let next = r.u64("L1 next index")?;
        let bound = r.bool("L1 bound")?;
        let chain_id = r.u64("L1 chain id")?;
        let contract = L1Address(r.array::<20>("L1 contract")?);
        let token = L1Address(r.array::<20>("L1 token")?);
        let binding = L1Binding { chain_id, contract, token };
        let unbound = L1Binding { chain_id: 0, contract: L1Address::default(), token: L1Address::default() };
        if !bound && binding != unbound {
            return Err(DecodeError { offset: at, what: "L1 binding bytes without a binding" });
        }
        let state = L1State { next, binding: bound.then_some(binding) };
        if next == 0 || state.is_initial() {
            return Err(DecodeError { offset: at, what: "L1 part (a next index of 0, or the initial state)" });
        }
        Ok(state)
    }
}

/// A SHA-256 state hash; displays as `0x` and 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateHash(pub [u8; 32]);

impl fmt::Display for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The name and version at the start of every encoding.
pub(crate) const MAGIC: &[u8; 12] = b"l2x-state-v2";

/// Bytes per resting order and per position record in the encoding (bounds the counts the
/// decoder accepts).
const ORDER_BYTES: usize = 4 + 1 + 8 * 6 + 1 + 1 + 8 + 3;
const POSITION_BYTES: usize = 4 + 8 + 16 * 3 + 8 * 2;
const INSTRUMENT_BYTES: usize = 16 + 16 * 13 + 1 + 8;

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

impl MatchingState {
    fn encode_into(&self, out: &mut Vec<u8>) {
        put_len(out, self.instruments.len());
        for (spec, mark) in &self.instruments {
            out.extend_from_slice(&spec.symbol.to_bytes());
            for d in spec.decimals() {
                out.extend_from_slice(&d.normalize().serialize());
            }
            out.push(u8::from(mark.is_some()));
            out.extend_from_slice(&mark.map_or(0, |p| p.0).to_le_bytes());
        }
        put_len(out, self.orders.len());
        for o in &self.orders {
            out.extend_from_slice(&o.instrument.0.to_le_bytes());
            out.push(o.side.code());
            out.extend_from_slice(&o.price.0.to_le_bytes());
            out.extend_from_slice(&o.order_id.0.to_le_bytes());
            out.extend_from_slice(&o.account.0.to_le_bytes());
            out.extend_from_slice(&o.cid.0.to_le_bytes());
            out.extend_from_slice(&o.leaves.0.to_le_bytes());
            out.extend_from_slice(&o.filled.0.to_le_bytes());
            out.extend_from_slice(&[o.tif.code(), u8::from(o.expire_ts.is_some())]);
            out.extend_from_slice(&o.expire_ts.map_or(0, |t| t.0).to_le_bytes());
            out.extend_from_slice(&[u8::from(o.post_only), u8::from(o.reduce_only), o.stp.code()]);
        }
        out.extend_from_slice(&self.next_order_id.to_le_bytes());
        out.extend_from_slice(&self.next_trade_id.to_le_bytes());
        out.extend_from_slice(&self.now.0.to_le_bytes());
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<MatchingState, DecodeError> {
        let n = r.count(INSTRUMENT_BYTES, "instrument count")?;
        let mut instruments = Vec::with_capacity(n);
        for _ in 0..n {
            let spec = InstrumentSpec::read(r)?;
            let has_mark = r.bool("has mark")?;
            let mark = r.i64("mark")?;
            instruments.push((spec, has_mark.then_some(Price(mark))));
        }
        let n = r.count(ORDER_BYTES, "order count")?;
        let mut orders = Vec::with_capacity(n);
        for _ in 0..n {
            let instrument = InstrumentId(r.u32("order instrument")?);
            let side = Side::from_code(r.u8("side")?).ok_or(r.err("side"))?;
            let price = Price(r.i64("price")?);
            let order_id = OrderId(r.u64("order id")?);
            let account = AccountId(r.u64("account")?);
            let cid = ClientOrderId(r.u64("cid")?);
            let leaves = Qty(r.i64("leaves")?);
            let filled = Qty(r.i64("filled")?);
            let tif = TimeInForce::from_code(r.u8("tif")?).ok_or(r.err("tif"))?;
            let has_expiry = r.bool("has expiry")?;
            let expiry = Timestamp(r.u64("expiry")?);
            let post_only = r.bool("post only")?;
            let reduce_only = r.bool("reduce only")?;
            let stp = StpMode::from_code(r.u8("stp")?).ok_or(r.err("stp"))?;
            orders.push(RestingOrder {
                instrument,
                side,
                price,
                order_id,
                account,
                cid,
                leaves,
                filled,
                tif,
                expire_ts: has_expiry.then_some(expiry),
                post_only,
                reduce_only,
                stp,
            });
        }
        Ok(MatchingState {
            instruments,
            orders,
            next_order_id: r.u64("next order id")?,
            next_trade_id: r.u64("next trade id")?,
            now: Timestamp(r.u64("now")?),
        })
    }

    /// SHA-256 of the matching part alone (domain `l2x-matching-v2`).
    pub fn hash(&self) -> StateHash {
        let mut out = b"l2x-matching-v2".to_vec();
        self.encode_into(&mut out);
        StateHash(Sha256::digest(&out).into())
    }
}

impl CanonicalState {
    /// The encoding in the module doc.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.matching.orders.len() * ORDER_BYTES + self.accounts.len() * 64);
        out.extend_from_slice(MAGIC);
        self.matching.encode_into(&mut out);
        for index in &self.funding_indexes {
            out.extend_from_slice(&index.to_le_bytes());
        }
        put_len(&mut out, self.accounts.len());
        for a in &self.accounts {
            let (kind, id) = match a.holder {
                Holder::Account(id) => (0u8, id.0),
                Holder::Insurance => (1, 0),
                Holder::Fees => (2, 0),
            };
            out.push(kind);
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&a.collateral.0.to_le_bytes());
            put_len(&mut out, a.positions.len());
            for p in &a.positions {
                out.extend_from_slice(&p.instrument.0.to_le_bytes());
                out.extend_from_slice(&p.size.0.to_le_bytes());
                out.extend_from_slice(&p.cost.to_le_bytes());
                out.extend_from_slice(&p.funding_index.to_le_bytes());
                out.extend_from_slice(&p.realised.to_le_bytes());
                out.extend_from_slice(&p.open_buy.0.to_le_bytes());
                out.extend_from_slice(&p.open_sell.0.to_le_bytes());
            }
        }
        out.extend_from_slice(&self.deposits.to_le_bytes());
        out.extend_from_slice(&self.withdrawals.to_le_bytes());
        self.l1.encode_into(&mut out);
        out
    }

    /// Reads an encoding back, validating every field: the magic, every enum code, every
    /// decimal, every flag, every count against the bytes left, and that nothing follows.
    /// (That the state is consistent — books, ledger and indexes agreeing — is checked when a
    /// state machine is restored from it.)
    ///
    /// # Errors
    /// [`DecodeError`] naming the byte offset and the field.
    pub fn decode(bytes: &[u8]) -> Result<CanonicalState, DecodeError> {
        let mut r = Reader::new(bytes);
        if &r.array::<12>("magic")? != MAGIC {
            return Err(DecodeError { offset: 0, what: "magic (not an l2x-state-v2 encoding)" });
        }
        let matching = MatchingState::decode_from(&mut r)?;
        let mut funding_indexes = Vec::with_capacity(matching.instruments.len());
        for _ in 0..matching.instruments.len() {
            funding_indexes.push(r.i128("funding index")?);
        }
        let n = r.count(1 + 8 + 8 + 8, "account count")?;
        let mut accounts = Vec::with_capacity(n);
        for _ in 0..n {
            let at = r.pos();
            let kind = r.u8("holder kind")?;
            let id = r.u64("account id")?;
            let holder = match (kind, id) {
                (0, id) => Holder::Account(AccountId(id)),
                (1, 0) => Holder::Insurance,
                (2, 0) => Holder::Fees,
                _ => return Err(DecodeError { offset: at, what: "holder" }),
            };
            let collateral = Amount(r.i64("collateral")?);
            let m = r.count(POSITION_BYTES, "position count")?;
            let mut positions = Vec::with_capacity(m);
            for _ in 0..m {
                positions.push(PositionState {
                    instrument: InstrumentId(r.u32("position instrument")?),
                    size: Qty(r.i64("size")?),
                    cost: r.i128("cost")?,
                    funding_index: r.i128("position funding index")?,
                    realised: r.i128("realised")?,
                    open_buy: Qty(r.i64("open buy")?),
                    open_sell: Qty(r.i64("open sell")?),
                });
            }
            accounts.push(AccountState { holder, collateral, positions });
        }
        let deposits = r.i128("deposits")?;
        let withdrawals = r.i128("withdrawals")?;
        let l1 = L1State::decode_from(&mut r)?;
        r.finish("trailing bytes")?;
        Ok(CanonicalState { matching, funding_indexes, accounts, deposits, withdrawals, l1 })
    }

    /// The state hash: SHA-256 of [`CanonicalState::encode`].
    pub fn hash(&self) -> StateHash {
        StateHash(Sha256::digest(self.encode()).into())
    }
}
