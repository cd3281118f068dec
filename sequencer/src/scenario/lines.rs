//! Step 1 of a scenario line: syntax. One JSON object in, a typed [`Parsed`] command and
//! its `ts` out, or a [`LineError`] naming what was wrong.
//!
//! # How a line is read
//!
//! ```text
//!  text ──serde_json──▶ the object's entries, in order, duplicates kept (anything but an
//!   │                   object: NotACommand)
//!   ├─ "cmd": exactly one, a known name ──▶ which command struct
//!   └─ the other entries ──serde derive──▶ NewLine, DepositLine, … (deny_unknown_fields)
//!                                            ──▶ Parsed, ts
//! ```
//!
//! Each command is a struct with `#[derive(Deserialize)]` and `deny_unknown_fields`; its
//! fields' types say what JSON they take ([`Id`]: a non-negative integer, [`Dec`]: a decimal
//! in a string, [`Named`]: one of an enum's names, [`Flag`], [`HolderId`]). The derived
//! visitors refuse unknown fields, repeated fields and missing required ones.
//!
//! The structs are not read straight from `serde_json` (nor through one internally tagged
//! enum on `cmd`): both would turn every error into serde_json's text, and an internally
//! tagged enum buffers the fields before the variant sees them, so an error inside a value
//! could no longer say which field it was in. Instead the entries go through [`Fields`], a
//! small deserializer whose error type ([`FieldError`]) keeps serde's missing, unknown and
//! duplicate fields typed and wraps every value's error with its field's name. The JSON
//! object is read once, into entries that keep repeated keys (a `serde_json::Value` would
//! keep only the last).
//!
//! Optional fields may also be `null`, which means absent.

use core::fmt;

use l2x_types::{AccountId, Decimal, Holder, InstrumentSpec, L1Address, OrderType, Side, StpMode, TimeInForce};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::Parsed;

/// A line that is not a well-formed command. The message names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// Not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// Bytes that are not UTF-8 (JSON text is UTF-8).
    #[error("not UTF-8: byte {column} of the line is not part of a UTF-8 character")]
    NotUtf8 {
        /// 1-based position of the first byte that is not.
        column: usize,
    },
    /// Longer than [`MAX_LINE_BYTES`].
    #[error("longer than {limit} bytes")]
    TooLong {
        /// The limit, bytes.
        limit: usize,
    },
    /// Valid JSON but not an object with a string `cmd`.
    #[error("expected a JSON object with a string field \"cmd\"")]
    NotACommand,
    /// `cmd` names no known command.
    #[error("unknown command {0:?} (commands: {commands})", commands = COMMANDS.join(", "))]
    UnknownCommand(String),
    /// A required field is absent.
    #[error("{cmd}: missing field {field:?}")]
    Missing {
        /// The command.
        cmd: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A field the command does not have.
    #[error("{cmd}: unknown field {field:?} (fields: {fields})", fields = expected.join(", "))]
    UnknownField {
        /// The command.
        cmd: &'static str,
        /// The field as written.
        field: String,
        /// The command's fields.
        expected: &'static [&'static str],
    },
    /// A field given more than once (JSON allows it; which value was meant is unknowable).
    #[error("{cmd}: field {field:?} is given more than once")]
    DuplicateField {
        /// The command.
        cmd: &'static str,
        /// The field.
        field: String,
    },
    /// A field with a value of the wrong type or an invalid value.
    #[error("{cmd}: field {field:?}: {problem}")]
    BadValue {
        /// The command.
        cmd: &'static str,
        /// The field.
        field: String,
        /// What was wrong with it.
        problem: String,
    },
    /// `ts` smaller than the previous command's.
    #[error("ts {ts} is before the previous command's ts {previous}")]
    TimeWentBack {
        /// The line's ts.
        ts: u64,
        /// The previous ts.
        previous: u64,
    },
}

/// The longest line the runner reads, bytes (a scenario line is a few hundred): a longer
/// one is reported and skipped without being held in memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The commands, as `cmd` names them.
const COMMANDS: [&str; 13] = [
    "instrument",
    "deposit",
    "withdraw",
    "oracle",
    "funding",
    "tick",
    "new",
    "amend",
    "cancel",
    "mass_cancel",
    "l1_deposit",
    "forced_withdrawal",
    "l1_bind",
];

/// Parses one line into a typed command and its timestamp (`last_ts` when absent).
///
/// # Errors
/// [`LineError`] naming what is wrong with the line.
pub fn parse_line(line: &str, last_ts: u64) -> Result<(Parsed, u64), LineError> {
    let Top::Object(mut entries) = serde_json::from_str::<Top>(line).map_err(LineError::Json)? else {
        return Err(LineError::NotACommand);
    };
    let Some((_, Value::String(name))) = entries.iter().find(|(k, _)| k == "cmd") else {
        return Err(LineError::NotACommand);
    };
    let Some(cmd) = COMMANDS.iter().copied().find(|c| c == name) else {
        return Err(LineError::UnknownCommand(name.clone()));
    };
    if entries.iter().filter(|(k, _)| k == "cmd").count() > 1 {
        return Err(LineError::DuplicateField { cmd, field: "cmd".into() });
    }
    entries.retain(|(k, _)| k != "cmd");
    let fields = Fields(entries);
    let (parsed, ts) = match cmd {
        "instrument" => command::<InstrumentLine>(cmd, fields)?,
        "deposit" => command::<DepositLine>(cmd, fields)?,
        "withdraw" => command::<WithdrawLine>(cmd, fields)?,
        "oracle" => command::<OracleLine>(cmd, fields)?,
        "funding" => command::<FundingLine>(cmd, fields)?,
        "tick" => command::<TickLine>(cmd, fields)?,
        "new" => command::<NewLine>(cmd, fields)?,
        "amend" => command::<AmendLine>(cmd, fields)?,
        "cancel" => command::<CancelLine>(cmd, fields)?,
        "l1_deposit" => command::<L1DepositLine>(cmd, fields)?,
        "forced_withdrawal" => command::<ForcedWithdrawalLine>(cmd, fields)?,
        "l1_bind" => command::<L1BindLine>(cmd, fields)?,
        _ => command::<MassCancelLine>(cmd, fields)?,
    };
    let ts = ts.map_or(last_ts, |t| t.0);
    if ts < last_ts {
        return Err(LineError::TimeWentBack { ts, previous: last_ts });
    }
    Ok((parsed, ts))
}

/// One command's fields through its struct.
fn command<'de, T: Deserialize<'de> + Command>(
    cmd: &'static str,
    fields: Fields,
) -> Result<(Parsed, Option<Id>), LineError> {
    let line = T::deserialize(fields).map_err(|e| e.at(cmd))?;
    Ok(line.parsed())
}

// ----- the commands -----------------------------------------------------------------------------

/// A command's struct: what it parses to, and its `ts`.
trait Command {
    fn parsed(self) -> (Parsed, Option<Id>);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstrumentLine {
    symbol: String,
    tick_size: Dec,
    lot_size: Dec,
    initial_margin: Dec,
    maintenance_margin: Dec,
    max_order_qty: Dec,
    max_position_qty: Dec,
    price_band: Dec,
    maker_fee: Option<Dec>,
    taker_fee: Option<Dec>,
    liquidation_fee: Option<Dec>,
    impact_notional: Option<Dec>,
    funding_interest: Option<Dec>,
    funding_clamp: Option<Dec>,
    ts: Option<Id>,
}

impl Command for InstrumentLine {
    fn parsed(self) -> (Parsed, Option<Id>) {
        let required = [
            self.tick_size,
            self.lot_size,
            self.initial_margin,
            self.maintenance_margin,
            self.max_order_qty,
            self.max_position_qty,
            self.price_band,
        ]
        .map(|d| d.0);
        let optional = [
            self.maker_fee,
            self.taker_fee,
            self.liquidation_fee,
            self.impact_notional,
            self.funding_interest,
            self.funding_clamp,
        ]
        .map(|d| d.map(|d| d.0));
        let values = InstrumentSpec::decimals_with_defaults(required, optional);
        (Parsed::Instrument { symbol: self.symbol, values }, self.ts)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DepositLine {
    account: HolderId,
    amount: Dec,
    ts: Option<Id>,
}

impl Command for DepositLine {
    fn parsed(self) -> (Parsed, Option<Id>) {
        (Parsed::Deposit { to: self.account.0, amount: self.amount.0 }, self.ts)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawLine {
    account: Id,
    amount: Dec,
    request_id: Option<Id>,
    ts: Option<Id>,
}

impl Command for WithdrawLine {
    fn parsed(self) -> (Parsed, Option<Id>) {
        let request_id = self.request_id.map(|r| r.0);
        (Parsed::Withdraw { account: self.account.0, amount: self.amount.0, request_id }, self.ts)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OracleLine {
    symbol: String,
    price: Dec,
    ts: Option<Id>,
}

impl Command for OracleLine {
    fn parsed(self) -> (Parsed, Option<Id>) {
        (Parsed::Oracle { symbol: self.symbol, price: self.price.0 }, self.ts)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FundingLine {
    symbol: String,
    ts: Option<Id>,
}

impl Command for FundingLine {
    fn parsed(self) -> (Parsed, Option<Id>) {
        (Parsed::Funding { symbol: self.symbol }, self.ts)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TickLine {
    ts: Option<Id>,
}

impl Command for TickLine {
    fn parsed(self) -> (Parsed, Option<Id>) {
        (Parsed::Tick, self.ts)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLine {
    account: Id,
    cid: Id,
    symbol: String,
    side: Named<Side>,
    #[serde(rename = "type")]
    order_type: Option<Named<OrderType>>,
    price: Option<Dec>,
    qty: Dec,
    tif: Option<Named<TimeInForce>>,
    expire_ts: Option<Id>,
    post_only: Option<Flag>,
    reduce_only: Option<Flag>,
    stp: Option<Named<StpMode>>,
    ts: Option<Id>,
}

impl Command for NewLine {
    fn parsed(self) -> (Parsed, Option<Id>) {
        let parsed = Parsed::New {
            account: self.account.0,
            cid: self.cid.0,
            symbol: self.symbol,
            side: self.side.0,
            order_type: self.order_type.map_or(OrderType::Limit, |t| t.0),
            price: self.price.map(|p| p.0),
            qty: self.qty.0,
            tif: self.tif.map_or(TimeInForce::Gtc, |t| t.0),
            expire_ts: self.expire_ts.map(|t| t.0),
            post_only: self.post_only.is_some_and(|f| f.0),
            reduce_only: self.reduce_only.is_some_and(|f| f.0),
            stp: self.stp.map_or(StpMode::CancelTaker, |s| s.0),
        };
        (parsed, self.ts)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AmendLine {
    account: Id,
    cid: Id,
    price: Option<Dec>,
    qty: Option<Dec>,
    ts: Option<Id>,
}

impl Command for AmendLine {
    fn parsed(self) -> (Parsed, Option<Id>) {
        let parsed = Parsed::Amend {
            account: self.account.0,
            cid: self.cid.0,
            price: self.price.map(|p| p.0),
            qty: self.qty.map(|q| q.0),
        };
        (parsed, self.ts)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelLine {
    account: Id,
    cid: Id,
    on_disconnect: Option<Flag>,
    ts: Option<Id>,
}

impl Command for CancelLine {
    fn parsed(self) -> (Parsed, Option<Id>) {
        let on_disconnect = self.on_disconnect.is_some_and(|f| f.0);
        (Parsed::Cancel { account: self.account.0, cid: self.cid.0, on_disconnect }, self.ts)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MassCancelLine {
    account: Id,
    symbol: Option<String>,
    side: Option<Named<Side>>,
    ts: Option<Id>,
}

impl Command for MassCancelLine {
    fn parsed(self) -> (Parsed, Option<Id>) {
        (Parsed::MassCancel { account: self.account.0, symbol: self.symbol, side: self.side.map(|s| s.0) }, self.ts)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct L1DepositLine {
    index: Id,
    account: HolderId,
    amount: Dec,
    from: Address,
    requested_at: Id,
    ts: Option<Id>,
}

impl Command for L1DepositLine {
    fn parsed(self) -> (Parsed, Option<Id>) {
        let parsed = Parsed::L1Deposit {
            index: self.index.0,
            to: self.account.0,
            amount: self.amount.0,
            from: self.from.0,
            requested_at: self.requested_at.0,
        };
        (parsed, self.ts)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForcedWithdrawalLine {
    index: Id,
    account: Id,
    amount: Dec,
    from: Address,
    requested_at: Id,
    ts: Option<Id>,
}

impl Command for ForcedWithdrawalLine {
    fn parsed(self) -> (Parsed, Option<Id>) {
        let parsed = Parsed::ForcedWithdrawal {
            index: self.index.0,
            account: self.account.0,
            amount: self.amount.0,
            from: self.from.0,
            requested_at: self.requested_at.0,
        };
        (parsed, self.ts)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct L1BindLine {
    chain_id: Id,
    contract: Address,
    token: Address,
    ts: Option<Id>,
}

impl Command for L1BindLine {
    fn parsed(self) -> (Parsed, Option<Id>) {
        (Parsed::L1Bind { chain_id: self.chain_id.0, contract: self.contract.0, token: self.token.0 }, self.ts)
    }
}

// ----- field types: what JSON each takes ----------------------------------------------------------

/// A non-negative JSON integer (ids, `ts`, `expire_ts`).
struct Id(u64);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// An L1 address written as a JSON string: `"0x"` and 40 hex digits.
struct Address(L1Address);

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Address;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string \"0x\" and 40 hex digits")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Address, E> {
                L1Address::from_hex(text).map(Address).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A decimal written as a JSON string (`"50000.5"`): exact, never through a float.
struct Dec(Decimal);

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dec, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string (decimals are strings, e.g. \"0.5\")")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Dec, E> {
                text.parse::<Decimal>().map(Dec).map_err(|e| E::custom(format!("{text:?} is not a decimal ({e})")))
            }
        }
        d.deserialize_any(V)
    }
}

/// `true` or `false`.
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Flag, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A deposit's `account`: a trading account id, or `"insurance"` / `"fees"`.
struct HolderId(Holder);

impl<'de> Deserialize<'de> for HolderId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HolderId, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HolderId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an account id, \"insurance\" or \"fees\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HolderId, E> {
                Ok(HolderId(Holder::Account(AccountId(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HolderId, E> {
                match v {
                    "insurance" => Ok(HolderId(Holder::Insurance)),
                    "fees" => Ok(HolderId(Holder::Fees)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// An enum written by its snake_case name (`"buy"`).
struct Named<T>(T);

/// The enums a scenario names: their names and how to read one.
trait Name: Copy + fmt::Display + 'static {
    const ALL: &'static [Self];
    fn from_name(name: &str) -> Option<Self>;
}

macro_rules! names {
    ($($t:ty),+) => {$(
        impl Name for $t {
            const ALL: &'static [Self] = <$t>::ALL;
            fn from_name(name: &str) -> Option<Self> {
                <$t>::from_name(name)
            }
        }
    )+};
}
names!(Side, OrderType, TimeInForce, StpMode);

impl<'de, T: Name> Deserialize<'de> for Named<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Named<T>, D::Error> {
        struct V<T>(core::marker::PhantomData<T>);
        impl<T: Name> Visitor<'_> for V<T> {
            type Value = Named<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of ")?;
                for (i, t) in T::ALL.iter().enumerate() {
                    write!(f, "{}{t}", if i == 0 { "" } else { ", " })?;
                }
                Ok(())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Named<T>, E> {
                T::from_name(v).map(Named).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V(core::marker::PhantomData))
    }
}

// ----- the JSON object, entries in order ---------------------------------------------------------

/// A line's JSON value: an object's entries in order (repeated keys kept), or anything else.
enum Top {
    Object(Vec<(String, Value)>),
    Other,
}

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Top, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Top::Object(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Top::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Top, E> {
                Ok(Top::Other)
            }
        }
        d.deserialize_any(V)
    }
}

// ----- the deserializer over the entries ---------------------------------------------------------

/// A command's entries (without `cmd`) as a serde map.
struct Fields(Vec<(String, Value)>);

/// What went wrong inside [`Fields`]; [`FieldError::at`] names the command.
#[derive(Debug, thiserror::Error)]
enum FieldError {
    #[error("missing field {0:?}")]
    Missing(&'static str),
    #[error("unknown field {field:?}")]
    Unknown { field: String, expected: &'static [&'static str] },
    #[error("field {0:?} is given more than once")]
    Duplicate(&'static str),
    /// A value the field's type does not take, and what it takes.
    #[error("expected {0}")]
    Expected(String),
    /// Any other complaint about a value (a string that is not a decimal).
    #[error("{0}")]
    Message(String),
    /// One of the two above, in its field.
    #[error("field {field:?}: {problem}")]
    Bad { field: String, problem: String },
}

impl de::Error for FieldError {
    fn custom<T: fmt::Display>(msg: T) -> FieldError {
        FieldError::Message(msg.to_string())
    }
    fn invalid_type(_: de::Unexpected<'_>, expected: &dyn de::Expected) -> FieldError {
        FieldError::Expected(expected.to_string())
    }
    fn invalid_value(_: de::Unexpected<'_>, expected: &dyn de::Expected) -> FieldError {
        FieldError::Expected(expected.to_string())
    }
    fn missing_field(field: &'static str) -> FieldError {
        FieldError::Missing(field)
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> FieldError {
        FieldError::Unknown { field: field.to_string(), expected }
    }
    fn duplicate_field(field: &'static str) -> FieldError {
        FieldError::Duplicate(field)
    }
}

impl FieldError {
    /// An error of `value`'s deserialization, in `field`: "VALUE is not EXPECTED".
    fn in_field(self, field: String, value: &Value) -> FieldError {
        match self {
            FieldError::Expected(e) => FieldError::Bad { field, problem: format!("{value} is not {e}") },
            FieldError::Message(problem) => FieldError::Bad { field, problem },
            other => other,
        }
    }

    /// The line error, for command `cmd`.
    fn at(self, cmd: &'static str) -> LineError {
        match self {
            FieldError::Missing(field) => LineError::Missing { cmd, field },
            FieldError::Unknown { field, expected } => LineError::UnknownField { cmd, field, expected },
            FieldError::Duplicate(field) => LineError::DuplicateField { cmd, field: field.to_string() },
            FieldError::Bad { field, problem } => LineError::BadValue { cmd, field, problem },
            // Only values fail this way, and values are wrapped with their field above.
            FieldError::Expected(problem) | FieldError::Message(problem) => {
                LineError::BadValue { cmd, field: String::new(), problem }
            }
        }
    }
}

impl<'de> Deserializer<'de> for Fields {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_map(Entries { entries: self.0.into_iter(), pending: None })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct Entries {
    entries: std::vec::IntoIter<(String, Value)>,
    pending: Option<(String, Value)>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = FieldError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, FieldError> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        let k = seed.deserialize(key.as_str().into_deserializer())?;
        self.pending = Some((key, value));
        Ok(Some(k))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, FieldError> {
        let (key, value) = self.pending.take().ok_or_else(|| FieldError::Message("a value without a key".into()))?;
        seed.deserialize(FieldValue(&value)).map_err(|e| e.in_field(key, &value))
    }
}

/// One field's JSON value. Numbers other than integers are offered to no visitor: every
/// number of the format is an integer, and no value passes through a float.
struct FieldValue<'a>(&'a Value);

impl<'de> Deserializer<'de> for FieldValue<'_> {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::String(s) => visitor.visit_str(s),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => visitor.visit_u64(u),
                (None, Some(i)) => visitor.visit_i64(i),
                (None, None) => Err(de::Error::invalid_type(de::Unexpected::Other("a number"), &visitor)),
            },
            Value::Array(_) => Err(de::Error::invalid_type(de::Unexpected::Seq, &visitor)),
            Value::Object(_) => Err(de::Error::invalid_type(de::Unexpected::Map, &visitor)),
        }
    }

    /// `null` is an absent optional field.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> String {
        parse_line(line, 0).unwrap_err().to_string()
    }

    #[test]
    fn l1_lines_parse_and_their_errors_name_the_field() {
        let a = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
        let line = format!(
            r#"{{"cmd":"l1_deposit","index":3,"account":"insurance","amount":"1.5","from":"{a}","requested_at":9}}"#
        );
        let (parsed, ts) = parse_line(&line, 4).unwrap();
        assert_eq!(ts, 4);
        let from = L1Address::from_hex(a).unwrap();
        let amount = Decimal::new(15, 1);
        assert_eq!(parsed, Parsed::L1Deposit { index: 3, to: Holder::Insurance, amount, from, requested_at: 9 });
        let line = format!(r#"{{"cmd":"l1_bind","chain_id":31337,"contract":"{a}","token":"{a}","ts":5}}"#);
        assert_eq!(
            parse_line(&line, 0).unwrap(),
            (Parsed::L1Bind { chain_id: 31_337, contract: from, token: from }, 5)
        );
        assert_eq!(
            err(r#"{"cmd":"l1_bind","chain_id":1,"contract":"0x12","token":"0x12"}"#),
            r#"l1_bind: field "contract": "0x12" is not an L1 address ("0x" and 40 hex digits)"#
        );
        assert_eq!(
            err(&format!(
                r#"{{"cmd":"forced_withdrawal","index":1,"account":1,"amount":"1","from":"{a}","requested_at":1,"requested_at":2}}"#
            )),
            r#"forced_withdrawal: field "requested_at" is given more than once"#
        );
        assert_eq!(
            err(&format!(
                r#"{{"cmd":"forced_withdrawal","index":1,"account":"insurance","amount":"1","from":"{a}","requested_at":1}}"#
            )),
            r#"forced_withdrawal: field "account": "insurance" is not a non-negative integer"#
        );
        assert_eq!(
            err(&format!(
                r#"{{"cmd":"l1_deposit","index":1,"account":1,"amount":"1","from":"{a}","requested_at":1,"to":2}}"#
            )),
            r#"l1_deposit: unknown field "to" (fields: index, account, amount, from, requested_at, ts)"#
        );
        assert_eq!(err(r#"{"cmd":"l1_deposit","index":1}"#), r#"l1_deposit: missing field "account""#);
    }

    #[test]
    fn a_withdraw_with_a_request_id_is_the_accounts_own() {
        let line = r#"{"cmd":"withdraw","account":2,"amount":"-1.5","request_id":18446744073709551615}"#;
        let parsed = Parsed::Withdraw { account: 2, amount: Decimal::new(-15, 1), request_id: Some(u64::MAX) };
        assert_eq!(parse_line(line, 3).unwrap(), (parsed, 3));
        let line = r#"{"cmd":"withdraw","account":2,"amount":"1","request_id":null}"#;
        let parsed = Parsed::Withdraw { account: 2, amount: Decimal::ONE, request_id: None };
        assert_eq!(parse_line(line, 0).unwrap(), (parsed, 0));
        assert_eq!(
            err(r#"{"cmd":"withdraw","account":2,"amount":"1","request_id":-1}"#),
            r#"withdraw: field "request_id": -1 is not a non-negative integer"#
        );
        assert_eq!(
            err(r#"{"cmd":"withdraw","account":2,"amount":"1","cid":1}"#),
            r#"withdraw: unknown field "cid" (fields: account, amount, request_id, ts)"#
        );
    }

    #[test]
    fn match_refuses_duplicate_keys() {
        assert_eq!(
            err(r#"{"cmd":"deposit","account":1,"amount":"5","amount":"7"}"#),
            r#"deposit: field "amount" is given more than once"#
        );
        assert_eq!(
            err(r#"{"cmd":"deposit","cmd":"withdraw","account":1,"amount":"5"}"#),
            r#"deposit: field "cmd" is given more than once"#
        );
        // Repeated optional fields and ts too, even with the same value.
        assert_eq!(
            err(r#"{"cmd":"new","account":1,"cid":1,"symbol":"X","side":"buy","qty":"1","tif":"gtc","tif":"gtc"}"#),
            r#"new: field "tif" is given more than once"#
        );
        assert_eq!(err(r#"{"cmd":"tick","ts":1,"ts":2}"#), r#"tick: field "ts" is given more than once"#);
    }

    #[test]
    fn every_field_error_names_command_and_field() {
        assert_eq!(err(r#"{"cmd":"new","account":1}"#), r#"new: missing field "cid""#);
        assert_eq!(
            err(r#"{"cmd":"cancel","account":1,"cid":2,"colour":"red"}"#),
            r#"cancel: unknown field "colour" (fields: account, cid, on_disconnect, ts)"#
        );
        assert_eq!(
            err(r#"{"cmd":"withdraw","account":-1,"amount":"5"}"#),
            r#"withdraw: field "account": -1 is not a non-negative integer"#
        );
        assert_eq!(
            err(r#"{"cmd":"oracle","symbol":"X","price":50000.5}"#),
            r#"oracle: field "price": 50000.5 is not a string (decimals are strings, e.g. "0.5")"#
        );
        assert_eq!(
            err(r#"{"cmd":"oracle","symbol":"X","price":"5O"}"#),
            r#"oracle: field "price": "5O" is not a decimal (Invalid decimal: unknown character)"#
        );
        assert_eq!(
            err(r#"{"cmd":"mass_cancel","account":1,"side":"up"}"#),
            r#"mass_cancel: field "side": "up" is not one of buy, sell"#
        );
        assert_eq!(
            err(r#"{"cmd":"cancel","account":1,"cid":2,"on_disconnect":"yes"}"#),
            r#"cancel: field "on_disconnect": "yes" is not true or false"#
        );
        assert_eq!(
            err(r#"{"cmd":"deposit","account":[1],"amount":"5"}"#),
            r#"deposit: field "account": [1] is not an account id, "insurance" or "fees""#
        );
        assert_eq!(err(r#"{"cmd":"funding","symbol":null}"#), r#"funding: field "symbol": null is not a string"#);
        assert!(err(r#"{"cmd":"nope"}"#).starts_with(r#"unknown command "nope" (commands: instrument, deposit,"#));
        for not_a_command in [r#"["new",1,1,"X","buy"]"#, "5", r#""new""#, "null", r#"{"cmd":5}"#, r#"{"ts":1}"#] {
            assert_eq!(err(not_a_command), r#"expected a JSON object with a string field "cmd""#, "{not_a_command}");
        }
    }

    #[test]
    fn optional_fields_take_defaults_and_null_is_absent() {
        let line = r#"{"cmd":"new","account":1,"cid":2,"symbol":"X","side":"sell","qty":"1","price":"5","tif":null,"post_only":null}"#;
        let (parsed, ts) = parse_line(line, 7).unwrap();
        assert_eq!(ts, 7);
        let Parsed::New { order_type, tif, post_only, reduce_only, stp, expire_ts, .. } = parsed else { panic!() };
        assert_eq!(
            (order_type, tif, post_only, reduce_only, stp, expire_ts),
            (OrderType::Limit, TimeInForce::Gtc, false, false, StpMode::CancelTaker, None)
        );
        let (parsed, ts) = parse_line(r#"{"ts":9,"cmd":"deposit","account":"insurance","amount":"1.5"}"#, 7).unwrap();
        assert_eq!((parsed, ts), (Parsed::Deposit { to: Holder::Insurance, amount: Decimal::new(15, 1) }, 9));
        let back = parse_line(r#"{"cmd":"tick","ts":3}"#, 5).unwrap_err();
        assert_eq!(back.to_string(), "ts 3 is before the previous command's ts 5");
    }
}
