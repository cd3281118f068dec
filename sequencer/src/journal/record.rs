//! One journal record: a sequenced command in a fixed little-endian layout.
//!
//! ```text
//! offset size  field
//!      0    4  len      total record length in bytes, header included; a multiple of 8
//!      4    4  crc      CRC32C (Castagnoli) of bytes 8 .. len
//!      8    8  seq      sequence number, strictly increasing along the journal
//!     16    8  ts       sequenced time, nanoseconds
//!     24    1  type     command type (table in docs/JOURNAL.md)
//!     25    3  reserved zero
//!     28    4  prev crc the previous record's crc (0 for the journal's first record)
//!     32    …  payload  fixed layout per type, then zero padding to a multiple of 8
//! ```
//!
//! Every record checks by itself (its CRC covers its own bytes), and the previous record's
//! CRC inside those bytes chains it to the history before it: a record's CRC binds the whole
//! journal up to it, which is what snapshots and the end marker record.
//!
//! Decoding validates everything: the length against the type's payload, the checksum,
//! every enum code and flag, reserved bytes and padding zero. A record either decodes to
//! exactly the command that was encoded or is refused.

use l2x_types::{
    AccountId, Amend, Amount, Cancel, ClientOrderId, Command, Holder, InstrumentId, InstrumentSpec, L1Address,
    MassCancel, NewOrder, OrderType, Price, Qty, Seq, Sequenced, Side, StpMode, TimeInForce, Timestamp,
};

use l2x_types::bytes::{DecodeError, Reader};

/// Bytes before the payload.
pub(crate) const HEADER: usize = 32;
/// The largest record (an instrument listing): every torn record lies within this many
/// bytes of where it starts.
pub const MAX_RECORD: usize = HEADER + 224;

/// Command type codes (stable: part of the format).
mod ty {
    pub(super) const INSTRUMENT: u8 = 1;
    pub(super) const DEPOSIT: u8 = 2;
    pub(super) const WITHDRAW: u8 = 3;
    pub(super) const ORACLE: u8 = 4;
    pub(super) const FUNDING: u8 = 5;
    pub(super) const NEW_ORDER: u8 = 6;
    pub(super) const AMEND: u8 = 7;
    pub(super) const CANCEL: u8 = 8;
    pub(super) const MASS_CANCEL: u8 = 9;
    /// A cancel-on-disconnect: the layout of `CANCEL`, reason `disconnect`.
    pub(super) const DISCONNECT_CANCEL: u8 = 10;
    /// Time passes (no payload but eight zero bytes: every record has a payload).
    pub(super) const TICK: u8 = 11;
    /// An entry of the L1 queue: a deposit.
    pub(super) const L1_DEPOSIT: u8 = 12;
    /// An entry of the L1 queue: a forced withdrawal.
    pub(super) const FORCED_WITHDRAWAL: u8 = 13;
    /// The journal's binding to an L1 vault.
    pub(super) const L1_BIND: u8 = 14;
    /// An account's withdrawal asked over the wire (type 3's fields, then its request id).
    pub(super) const WITHDRAW_REQUEST: u8 = 15;
}

/// Payload length of each type.
fn payload_len(t: u8) -> Option<usize> {
    Some(match t {
        ty::INSTRUMENT => 224,
        ty::DEPOSIT => 24,
        ty::WITHDRAW => 16,
        ty::ORACLE => 16,
        ty::FUNDING => 8,
        ty::NEW_ORDER => 56,
        ty::AMEND => 40,
        ty::CANCEL | ty::DISCONNECT_CANCEL => 16,
        ty::MASS_CANCEL => 16,
        ty::TICK => 8,
        ty::L1_DEPOSIT => 64,
        ty::FORCED_WITHDRAWAL => 56,
        ty::L1_BIND => 48,
        ty::WITHDRAW_REQUEST => 24,
        _ => return None,
    })
}

/// The length of `cmd`'s record in the journal, in bytes.
pub fn encoded_len(cmd: &Sequenced) -> usize {
    encode(cmd, 0, &mut [0u8; MAX_RECORD])
}

/// Encodes a record following a record whose CRC is `prev_crc` into `buf`; returns its
/// length (its CRC is then in `buf[4..8]`).
pub(crate) fn encode(cmd: &Sequenced, prev_crc: u32, buf: &mut [u8; MAX_RECORD]) -> usize {
    buf.fill(0);
    let mut p = Payload { buf: &mut buf[HEADER..], at: 0 };
    let t = match &cmd.cmd {
        Command::ListInstrument(spec) => {
            p.bytes(&spec.symbol.to_bytes());
            for d in spec.decimals() {
                p.bytes(&d.serialize());
            }
            ty::INSTRUMENT
        }
        Command::Deposit { to, amount } => p.deposit(*to, *amount),
        Command::Withdraw { account, amount } => {
            p.u64(account.0);
            p.i64(amount.0);
            ty::WITHDRAW
        }
        Command::WithdrawRequest { account, amount, request_id } => {
            p.u64(account.0);
            p.i64(amount.0);
            p.u64(*request_id);
            ty::WITHDRAW_REQUEST
        }
        Command::Oracle { instrument, price } => {
            p.u32(instrument.0);
            p.skip(4);
            p.i64(price.0);
            ty::ORACLE
        }
        Command::Funding { instrument } => {
            p.u32(instrument.0);
            ty::FUNDING
        }
        Command::NewOrder(o) => p.new_order(o),
        Command::Amend(a) => p.amend(a),
        Command::Cancel(c) => {
            p.u64(c.account.0);
            p.u64(c.cid.0);
            if c.on_disconnect { ty::DISCONNECT_CANCEL } else { ty::CANCEL }
        }
        Command::MassCancel(m) => p.mass_cancel(m),
        Command::Tick => {
            p.skip(8);
            ty::TICK
        }
        l1 @ (Command::L1Deposit { .. } | Command::ForcedWithdrawal { .. } | Command::L1Bind { .. }) => p.l1(l1),
    };
    let payload = payload_len(t).unwrap_or(0);
    let len = (HEADER + payload).next_multiple_of(8);
    buf[8..16].copy_from_slice(&cmd.seq.0.to_le_bytes());
    buf[16..24].copy_from_slice(&cmd.ts.0.to_le_bytes());
    buf[24] = t;
    buf[28..32].copy_from_slice(&prev_crc.to_le_bytes());
    #[allow(clippy::cast_possible_truncation, reason = "records are at most MAX_RECORD bytes")]
    buf[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    let crc = crc32c::crc32c(&buf[8..len]);
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    len
}

impl Payload<'_> {
    fn deposit(&mut self, to: Holder, amount: Amount) -> u8 {
        self.holder(to);
        self.i64(amount.0);
        ty::DEPOSIT
    }

    /// A holder in 16 bytes: `u8` kind (0 trading account, 1 insurance fund, 2 fee account),
    /// seven zero bytes, `u64` account id (0 unless kind 0).
    fn holder(&mut self, to: Holder) {
        let (kind, id) = match to {
            Holder::Account(a) => (0, a.0),
            Holder::Insurance => (1, 0),
            Holder::Fees => (2, 0),
        };
        self.u8(kind);
        self.skip(7);
        self.u64(id);
    }

    /// The L1 commands (types 12 to 14); `Tick` for any other command (never called so).
    fn l1(&mut self, cmd: &Command) -> u8 {
        match *cmd {
            Command::L1Deposit { index, to, amount, from, requested_at } => {
                self.u64(index);
                self.holder(to);
                self.i64(amount.0);
                self.bytes(&from.0);
                self.skip(4);
                self.u64(requested_at);
                ty::L1_DEPOSIT
            }
            Command::ForcedWithdrawal { index, account, amount, from, requested_at } => {
                self.u64(index);
                self.u64(account.0);
                self.i64(amount.0);
                self.bytes(&from.0);
                self.skip(4);
                self.u64(requested_at);
                ty::FORCED_WITHDRAWAL
            }
            Command::L1Bind { chain_id, contract, token } => {
                self.u64(chain_id);
                self.bytes(&contract.0);
                self.bytes(&token.0);
                ty::L1_BIND
            }
            _ => {
                self.skip(8);
                ty::TICK
            }
        }
    }

    fn new_order(&mut self, o: &NewOrder) -> u8 {
        self.u64(o.account.0);
        self.u64(o.cid.0);
        self.u32(o.instrument.0);
        self.u8(o.side.code());
        self.u8(o.order_type.code());
        self.u8(o.tif.code());
        self.u8(o.stp.code());
        let flags = u8::from(o.price.is_some())
            | u8::from(o.expire_ts.is_some()) << 1
            | u8::from(o.post_only) << 2
            | u8::from(o.reduce_only) << 3;
        self.u8(flags);
        self.skip(7);
        self.i64(o.price.map_or(0, |x| x.0));
        self.i64(o.qty.0);
        self.u64(o.expire_ts.map_or(0, |t| t.0));
        ty::NEW_ORDER
    }

    fn amend(&mut self, a: &Amend) -> u8 {
        self.u64(a.account.0);
        self.u64(a.cid.0);
        self.u8(u8::from(a.price.is_some()) | u8::from(a.qty.is_some()) << 1);
        self.skip(3);
        self.u32(a.instrument.0);
        self.i64(a.price.map_or(0, |x| x.0));
        self.i64(a.qty.map_or(0, |x| x.0));
        ty::AMEND
    }

    fn mass_cancel(&mut self, m: &MassCancel) -> u8 {
        self.u64(m.account.0);
        self.u32(m.instrument.map_or(0, |i| i.0));
        self.u8(u8::from(m.instrument.is_some()) | u8::from(m.side.is_some()) << 1);
        self.u8(m.side.map_or(0, Side::code));
        ty::MASS_CANCEL
    }
}

struct Payload<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Payload<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.buf[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }
    fn skip(&mut self, n: usize) {
        self.at += n;
    }
    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.bytes(&v.to_le_bytes());
    }
}

/// The length a record at the start of `bytes` claims, if it is plausible (at least a
/// header, a multiple of 8, at most [`MAX_RECORD`], within `bytes`).
pub(crate) fn claimed_len(bytes: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    (len >= HEADER + 8 && len.is_multiple_of(8) && len <= MAX_RECORD && len <= bytes.len()).then_some(len)
}

/// The seal that ends a full segment: a record-shaped block of [`SEAL_LEN`] bytes — length,
/// CRC32C of bytes 8 .. 40, sequence number and time zero, type 0, reserved zero, then the
/// next segment's index (`u64`). The writer puts it after the segment's last record once
/// the next segment exists: a reader that finds it knows the journal goes on.
pub(crate) const SEAL_LEN: usize = 40;

/// The seal's type code (no command has type 0).
const SEAL: u8 = 0;

/// The seal of a segment whose successor is segment `next`.
pub(crate) fn encode_seal(next: u64) -> [u8; SEAL_LEN] {
    let mut b = [0u8; SEAL_LEN];
    #[allow(clippy::cast_possible_truncation, reason = "40 fits")]
    b[0..4].copy_from_slice(&(SEAL_LEN as u32).to_le_bytes());
    b[32..40].copy_from_slice(&next.to_le_bytes());
    let crc = crc32c::crc32c(&b[8..]);
    b[4..8].copy_from_slice(&crc.to_le_bytes());
    b
}

/// What a valid block at some place of a segment is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Block {
    /// A record: the command, the record's CRC and the previous record's CRC it names.
    Record(Sequenced, u32, u32),
    /// The seal: the journal continues in segment `next`.
    Seal {
        /// The next segment's index.
        next: u64,
    },
}

/// Whether the block at the start of `bytes` has a plausible length and a checksum that
/// matches: it was written whole (a torn write cannot match).
pub(crate) fn checksum_ok(bytes: &[u8]) -> bool {
    claimed_len(bytes).is_some_and(|len| {
        let rec = &bytes[..len];
        crc32c::crc32c(&rec[8..]) == u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]])
    })
}

/// Decodes the block (a record or the seal) at the start of `bytes`; returns it and its
/// length.
///
/// # Errors
/// [`DecodeError`] naming the offset within the block and what is wrong.
pub(crate) fn decode_block(bytes: &[u8]) -> Result<(Block, usize), DecodeError> {
    let len = claimed_len(bytes).ok_or(DecodeError { offset: 0, what: "record length" })?;
    let rec = &bytes[..len];
    let crc = u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]);
    if crc32c::crc32c(&rec[8..]) != crc {
        return Err(DecodeError { offset: 4, what: "checksum (CRC32C) mismatch" });
    }
    if rec[24] == SEAL {
        let next = u64::from_le_bytes(rec[SEAL_LEN - 8..].try_into().unwrap_or([0; 8]));
        if rec != encode_seal(next).as_slice() {
            return Err(DecodeError { offset: 8, what: "segment seal" });
        }
        return Ok((Block::Seal { next }, len));
    }
    let prev = u32::from_le_bytes([rec[28], rec[29], rec[30], rec[31]]);
    decode_command(rec).map(|cmd| (Block::Record(cmd, crc, prev), len))
}

/// Decodes a record whose length and checksum were checked.
fn decode_command(rec: &[u8]) -> Result<Sequenced, DecodeError> {
    let mut r = Reader::new(rec);
    r.array::<8>("header")?;
    let seq = Seq(r.u64("seq")?);
    let ts = Timestamp(r.u64("ts")?);
    let t = r.u8("type")?;
    let payload = payload_len(t).ok_or(DecodeError { offset: 24, what: "unknown command type" })?;
    if (HEADER + payload).next_multiple_of(8) != rec.len() {
        return Err(DecodeError { offset: 0, what: "record length does not match its type" });
    }
    r.zeros(3, "reserved bytes")?;
    r.u32("previous crc")?;
    let cmd = match t {
        ty::INSTRUMENT => Command::ListInstrument(Box::new(InstrumentSpec::read(&mut r)?)),
        ty::DEPOSIT => read_deposit(&mut r)?,
        ty::WITHDRAW => Command::Withdraw { account: AccountId(r.u64("account")?), amount: Amount(r.i64("amount")?) },
        ty::WITHDRAW_REQUEST => Command::WithdrawRequest {
            account: AccountId(r.u64("account")?),
            amount: Amount(r.i64("amount")?),
            request_id: r.u64("request id")?,
        },
        ty::ORACLE => {
            let instrument = InstrumentId(r.u32("instrument")?);
            r.zeros(4, "padding")?;
            Command::Oracle { instrument, price: Price(r.i64("price")?) }
        }
        ty::FUNDING => {
            let instrument = InstrumentId(r.u32("instrument")?);
            r.zeros(4, "padding")?;
            Command::Funding { instrument }
        }
        ty::NEW_ORDER => Command::NewOrder(read_new_order(&mut r)?),
        ty::AMEND => Command::Amend(read_amend(&mut r)?),
        ty::CANCEL | ty::DISCONNECT_CANCEL => Command::Cancel(Cancel {
            account: AccountId(r.u64("account")?),
            cid: ClientOrderId(r.u64("cid")?),
            on_disconnect: t == ty::DISCONNECT_CANCEL,
        }),
        ty::MASS_CANCEL => Command::MassCancel(read_mass_cancel(&mut r)?),
        ty::TICK => {
            r.zeros(8, "padding")?;
            Command::Tick
        }
        ty::L1_DEPOSIT => read_l1_deposit(&mut r)?,
        ty::FORCED_WITHDRAWAL => read_forced_withdrawal(&mut r)?,
        ty::L1_BIND => Command::L1Bind {
            chain_id: r.u64("chain id")?,
            contract: L1Address(r.array::<20>("contract")?),
            token: L1Address(r.array::<20>("token")?),
        },
        _ => return Err(DecodeError { offset: 24, what: "unknown command type" }),
    };
    r.zeros(r.remaining(), "padding")?;
    Ok(Sequenced { seq, ts, cmd })
}

fn read_deposit(r: &mut Reader<'_>) -> Result<Command, DecodeError> {
    let to = read_holder(r)?;
    Ok(Command::Deposit { to, amount: Amount(r.i64("amount")?) })
}

fn read_holder(r: &mut Reader<'_>) -> Result<Holder, DecodeError> {
    let at = r.pos();
    let kind = r.u8("holder kind")?;
    r.zeros(7, "padding")?;
    let id = r.u64("account")?;
    match (kind, id) {
        (0, id) => Ok(Holder::Account(AccountId(id))),
        (1, 0) => Ok(Holder::Insurance),
        (2, 0) => Ok(Holder::Fees),
        _ => Err(DecodeError { offset: at, what: "holder" }),
    }
}

fn read_l1_deposit(r: &mut Reader<'_>) -> Result<Command, DecodeError> {
    let index = r.u64("queue index")?;
    let to = read_holder(r)?;
    let amount = Amount(r.i64("amount")?);
    let from = L1Address(r.array::<20>("from")?);
    r.zeros(4, "padding")?;
    Ok(Command::L1Deposit { index, to, amount, from, requested_at: r.u64("requested_at")? })
}

fn read_forced_withdrawal(r: &mut Reader<'_>) -> Result<Command, DecodeError> {
    let index = r.u64("queue index")?;
    let account = AccountId(r.u64("account")?);
    let amount = Amount(r.i64("amount")?);
    let from = L1Address(r.array::<20>("from")?);
    r.zeros(4, "padding")?;
    Ok(Command::ForcedWithdrawal { index, account, amount, from, requested_at: r.u64("requested_at")? })
}

fn read_new_order(r: &mut Reader<'_>) -> Result<NewOrder, DecodeError> {
    let account = AccountId(r.u64("account")?);
    let cid = ClientOrderId(r.u64("cid")?);
    let instrument = InstrumentId(r.u32("instrument")?);
    let side = Side::from_code(r.u8("side")?).ok_or(r.err("side"))?;
    let order_type = OrderType::from_code(r.u8("order type")?).ok_or(r.err("order type"))?;
    let tif = TimeInForce::from_code(r.u8("time in force")?).ok_or(r.err("time in force"))?;
    let stp = StpMode::from_code(r.u8("stp")?).ok_or(r.err("stp"))?;
    let at = r.pos();
    let flags = r.u8("flags")?;
    if flags & !0b1111 != 0 {
        return Err(DecodeError { offset: at, what: "flags" });
    }
    r.zeros(7, "padding")?;
    let price = r.i64("price")?;
    let qty = Qty(r.i64("qty")?);
    let expire = r.u64("expire_ts")?;
    if (flags & 1 == 0 && price != 0) || (flags & 2 == 0 && expire != 0) {
        return Err(DecodeError { offset: at, what: "a field present without its flag" });
    }
    Ok(NewOrder {
        account,
        cid,
        instrument,
        side,
        order_type,
        price: (flags & 1 != 0).then_some(Price(price)),
        qty,
        tif,
        expire_ts: (flags & 2 != 0).then_some(Timestamp(expire)),
        post_only: flags & 4 != 0,
        reduce_only: flags & 8 != 0,
        stp,
    })
}

fn read_amend(r: &mut Reader<'_>) -> Result<Amend, DecodeError> {
    let account = AccountId(r.u64("account")?);
    let cid = ClientOrderId(r.u64("cid")?);
    let at = r.pos();
    let flags = r.u8("flags")?;
    r.zeros(3, "padding")?;
    let instrument = InstrumentId(r.u32("instrument")?);
    let price = r.i64("price")?;
    let qty = r.i64("qty")?;
    if flags & !0b11 != 0 || (flags & 1 == 0 && price != 0) || (flags & 2 == 0 && qty != 0) {
        return Err(DecodeError { offset: at, what: "flags" });
    }
    Ok(Amend {
        account,
        cid,
        instrument,
        price: (flags & 1 != 0).then_some(Price(price)),
        qty: (flags & 2 != 0).then_some(Qty(qty)),
    })
}

fn read_mass_cancel(r: &mut Reader<'_>) -> Result<MassCancel, DecodeError> {
    let account = AccountId(r.u64("account")?);
    let instrument = r.u32("instrument")?;
    let at = r.pos();
    let flags = r.u8("flags")?;
    let side = r.u8("side")?;
    r.zeros(2, "padding")?;
    if flags & !0b11 != 0 || (flags & 1 == 0 && instrument != 0) || (flags & 2 == 0 && side != 0) {
        return Err(DecodeError { offset: at, what: "flags" });
    }
    Ok(MassCancel {
        account,
        instrument: (flags & 1 != 0).then_some(InstrumentId(instrument)),
        side: if flags & 2 != 0 { Some(Side::from_code(side).ok_or(r.err("side"))?) } else { None },
    })
}

#[cfg(test)]
mod tests {
    use l2x_types::L1Address;

    use super::*;

    fn record(cmd: Command) -> (Sequenced, Vec<u8>) {
        let s = Sequenced { seq: Seq(7), ts: Timestamp(9), cmd };
        let mut buf = [0u8; MAX_RECORD];
        let len = encode(&s, 0xdead_beef, &mut buf);
        (s, buf[..len].to_vec())
    }

    /// Rewrites the CRC after a deliberate change, so that only the layout rules can refuse it.
    fn reseal(rec: &mut [u8]) {
        let crc = crc32c::crc32c(&rec[8..]);
        rec[4..8].copy_from_slice(&crc.to_le_bytes());
    }

    fn l1_commands() -> Vec<Command> {
        let a = L1Address([0xab; 20]);
        let mut cmds = Vec::new();
        for to in [Holder::Account(AccountId(5)), Holder::Insurance, Holder::Fees, Holder::Account(AccountId(u64::MAX))]
        {
            for amount in [Amount(1), Amount(0), Amount(-1), Amount(i64::MAX), Amount(i64::MIN)] {
                cmds.push(Command::L1Deposit { index: 1, to, amount, from: a, requested_at: u64::MAX });
            }
        }
        cmds.push(Command::L1Deposit {
            index: u64::MAX,
            to: Holder::Insurance,
            amount: Amount(3),
            from: L1Address::default(),
            requested_at: 0,
        });
        cmds.push(Command::ForcedWithdrawal {
            index: 2,
            account: AccountId(u64::MAX),
            amount: Amount(i64::MIN),
            from: a,
            requested_at: 5,
        });
        cmds.push(Command::L1Bind { chain_id: 31_337, contract: a, token: L1Address([0x01; 20]) });
        cmds
    }

    #[test]
    fn l1_records_round_trip_with_their_documented_lengths() {
        for cmd in l1_commands() {
            let (s, rec) = record(cmd);
            let expected = match s.cmd {
                Command::L1Deposit { .. } => 96,
                Command::ForcedWithdrawal { .. } => 88,
                _ => 80,
            };
            assert_eq!(rec.len(), expected, "{s:?}");
            assert_eq!(encoded_len(&s), expected);
            let (block, len) = decode_block(&rec).unwrap();
            assert_eq!(len, rec.len());
            assert_eq!(block, Block::Record(s, u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]), 0xdead_beef));
        }
    }

    #[test]
    fn l1_records_with_non_zero_padding_or_a_bad_holder_are_refused() {
        let a = L1Address([0xab; 20]);
        let deposit =
            Command::L1Deposit { index: 1, to: Holder::Insurance, amount: Amount(1), from: a, requested_at: 2 };
        let forced =
            Command::ForcedWithdrawal { index: 1, account: AccountId(1), amount: Amount(1), from: a, requested_at: 2 };
        // (command, payload offset, what the decoder names)
        let cases = [
            (deposit.clone(), 8, "holder"),  // holder kind 3
            (deposit.clone(), 9, "padding"), // the holder's padding
            (deposit.clone(), 16, "holder"), // an account id with the insurance fund
            (deposit, 52, "padding"),        // padding after `from`
            (forced, 44, "padding"),         // padding after `from`
        ];
        for (cmd, offset, what) in cases {
            let (_, mut rec) = record(cmd);
            rec[HEADER + offset] = if offset == 8 { 3 } else { 1 };
            reseal(&mut rec);
            let err = decode_block(&rec).unwrap_err();
            assert_eq!(err.what, what, "offset {offset}: {err:?}");
        }
        // A binding's payload is all fields; a type code past the last one is refused.
        let (_, mut rec) = record(Command::L1Bind { chain_id: 1, contract: a, token: a });
        rec[24] = 16;
        reseal(&mut rec);
        assert_eq!(decode_block(&rec).unwrap_err().what, "unknown command type");
    }

    /// Type 15, a wire withdrawal: 24 payload bytes, every value of its fields round-trips,
    /// and it is not type 3 (whose bytes stay what they were).
    #[test]
    fn withdraw_request_records_round_trip_and_leave_type_3_alone() {
        for (amount, request_id) in [(1, 0), (0, u64::MAX), (-1, 7), (i64::MAX, 1), (i64::MIN, 2)] {
            let cmd = Command::WithdrawRequest { account: AccountId(u64::MAX), amount: Amount(amount), request_id };
            let (s, rec) = record(cmd);
            assert_eq!((rec.len(), encoded_len(&s), rec[24]), (56, 56, 15), "{s:?}");
            assert_eq!(rec[HEADER + 16..HEADER + 24], request_id.to_le_bytes());
            let (block, _) = decode_block(&rec).unwrap();
            assert_eq!(block, Block::Record(s, u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]), 0xdead_beef));
        }
        let (_, rec) = record(Command::Withdraw { account: AccountId(5), amount: Amount(9) });
        assert_eq!((rec.len(), rec[24]), (48, 3));
        assert_eq!(rec[HEADER..HEADER + 16], [5, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    }
}
