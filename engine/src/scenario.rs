//! The scenario format: commands as JSON lines in, events as JSON lines out (`l2x match`).
//! The format is specified in `docs/SCENARIOS.md`; this module is its only implementation.
//!
//! # Edge and engine
//!
//! A line is handled in three steps:
//!
//! 1. **Syntax** ([`parse_line`]) — valid JSON, an object with a known `cmd`, every
//!    required field present with the right type, decimals as strings that parse, enum
//!    names that exist, no unknown field, a non-decreasing `ts`. A failure is a
//!    [`LineError`] naming what was wrong: the runner reports it with the line number and
//!    skips the line; nothing is applied.
//! 2. **Edge conversion** — symbols to instrument ids, decimal strings to ticks, lots and
//!    quote micro-units, exactly. A well-formed command that cannot be converted (an
//!    unknown symbol, an off-tick price, an off-lot quantity, an amend of an order that is
//!    not live) is refused here with the engine's reason code, as a `rejected` event; it
//!    does not reach the state machine (nor, later, the journal).
//! 3. **Engine** — the [`Sequenced`] command is applied by the [`StateMachine`] and its
//!    events are printed, each carrying the command's `seq`.
//!
//! The line number is the command's sequence number, so a skipped line leaves a gap.

use std::io::{self, BufRead, Write};

use l2x_types::{
    AccountId, Amend, Amount, Cancel, ClientOrderId, Command, CommandKind, Decimal, Event, Holder, Instrument,
    InstrumentSpec, MassCancel, NewOrder, OrderType, Qty, RejectReason, Seq, Sequenced, Side, StpMode, Symbol,
    TimeInForce, Timestamp,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::state::StateMachine;

/// A line that is not a well-formed command. The message names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// Not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(serde_json::Error),
    /// Valid JSON but not an object with a string `cmd`.
    #[error("expected a JSON object with a string field \"cmd\"")]
    NotACommand,
    /// `cmd` names no known command.
    #[error("unknown command {0:?}")]
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
    #[error("{cmd}: unknown field {field:?}")]
    UnknownField {
        /// The command.
        cmd: &'static str,
        /// The field as written.
        field: String,
    },
    /// A field with a value of the wrong type or an invalid value.
    #[error("{cmd}: field {field:?}: {problem}")]
    BadValue {
        /// The command.
        cmd: &'static str,
        /// The field.
        field: &'static str,
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

/// A well-formed line's outcome.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// The command reached the state machine (these are what a journal records).
    Command(Sequenced),
    /// The edge refused it with a `rejected` event; the state did not change.
    EdgeReject,
}

/// Runs scenario lines against a [`StateMachine`] and writes event lines.
#[derive(Debug, Default)]
pub struct Runner {
    state: StateMachine,
    last_ts: u64,
    last_seq: u64,
    events: Vec<Event>,
    text: String,
    journal: Option<Journaling>,
}

/// Where and how a runner journals the commands it applies.
#[derive(Debug)]
struct Journaling {
    writer: crate::journal::JournalWriter,
    fsync: bool,
    snapshot_every: u64,
    applied: u64,
}

/// Counts of a whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines read (blank ones included).
    pub lines: u64,
    /// Commands applied by the state machine.
    pub applied: u64,
    /// Lines reported as errors and skipped.
    pub errors: u64,
}

impl Runner {
    /// A runner over an empty exchange.
    pub fn new() -> Runner {
        Runner { state: StateMachine::new(), ..Runner::default() }
    }

    /// Journals every command the state machine applies, before its events are written:
    /// a command whose events were printed is in the journal. With `fsync` each record is
    /// flushed to disk first (`durability = fsync`); otherwise it is in the OS page cache
    /// (`durability = os`). With `snapshot_every > 0` a snapshot is written after every that
    /// many applied commands.
    pub fn with_journal(mut self, writer: crate::journal::JournalWriter, fsync: bool, snapshot_every: u64) -> Runner {
        self.journal = Some(Journaling { writer, fsync, snapshot_every, applied: 0 });
        self
    }

    /// Stops journaling cleanly: the journal is made durable and its end recorded (see
    /// [`crate::journal::JournalWriter::close`]). Without it, the journal ends as after a
    /// crash (still readable; its end just not proven).
    ///
    /// # Errors
    /// I/O errors of the journal.
    pub fn close_journal(&mut self) -> Result<(), crate::journal::JournalError> {
        match self.journal.take() {
            Some(j) => j.writer.close().map(|_| ()),
            None => Ok(()),
        }
    }

    /// The state reached so far.
    pub fn state(&self) -> &StateMachine {
        &self.state
    }

    /// The sequence number of the last command the state machine applied (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Handles one line (`seq` is its 1-based line number), writing its events to `out`.
    ///
    /// # Errors
    /// The outer error is a [`LineError`]: nothing was applied or written. The inner one
    /// is an I/O error of `out`.
    pub fn run_line(&mut self, seq: u64, line: &str, out: &mut impl Write) -> Result<io::Result<Applied>, LineError> {
        let (parsed, ts) = parse_line(line, self.last_ts)?;
        self.last_ts = ts;
        let seq = Seq(seq);
        self.events.clear();
        let applied = match convert(&self.state, parsed) {
            Ok(cmd) => {
                let sequenced = Sequenced { seq, ts: Timestamp(ts), cmd };
                if let Some(j) = &mut self.journal {
                    let written =
                        j.writer.append(&sequenced).and_then(|()| if j.fsync { j.writer.sync() } else { Ok(()) });
                    if let Err(e) = written {
                        return Ok(Err(io::Error::other(e)));
                    }
                }
                self.state.apply(&sequenced, &mut self.events);
                self.last_seq = seq.0;
                if let Some(j) = &mut self.journal {
                    j.applied += 1;
                    if j.snapshot_every > 0 && j.applied % j.snapshot_every == 0 {
                        // The journal on disk first: a snapshot is never ahead of it.
                        let w = &mut j.writer;
                        let written = w.sync().and_then(|()| {
                            crate::journal::snapshot::write(w.dir(), w.journal_id(), w.last(), &self.state.canonical())
                        });
                        if let Err(e) = written {
                            return Ok(Err(io::Error::other(e)));
                        }
                    }
                }
                Applied::Command(sequenced)
            }
            Err(rejected) => {
                self.events.push(rejected);
                Applied::EdgeReject
            }
        };
        self.text.clear();
        for ev in &self.events {
            format_event(&self.state, seq, ev, &mut self.text);
        }
        Ok(out.write_all(self.text.as_bytes()).map(|()| applied))
    }

    /// Runs every line of `input`, writing events to `out` and `line N: …` to `err` for
    /// each bad line. Blank lines are skipped silently (they still count for `seq`).
    ///
    /// # Errors
    /// Only I/O errors; bad lines are counted in [`Summary::errors`].
    pub fn run(&mut self, input: impl BufRead, out: &mut impl Write, err: &mut impl Write) -> io::Result<Summary> {
        let mut summary = Summary::default();
        for (seq, line) in (1u64..).zip(input.lines()) {
            let line = line?;
            summary.lines = seq;
            if line.trim().is_empty() {
                continue;
            }
            match self.run_line(seq, &line, out) {
                Ok(result) => {
                    if let Applied::Command(_) = result? {
                        summary.applied += 1;
                    }
                }
                Err(e) => {
                    summary.errors += 1;
                    writeln!(err, "line {seq}: {e}")?;
                }
            }
        }
        out.flush()?;
        Ok(summary)
    }
}

// ----- step 1: syntax ------------------------------------------------------------------

/// A well-formed command, typed but not yet converted to the instrument's units.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// `instrument`.
    Instrument {
        /// Symbol as written.
        symbol: String,
        /// Decimal fields in the order of [`InstrumentSpec`], defaults applied.
        values: [Decimal; 13],
    },
    /// `deposit`.
    Deposit {
        /// Account, or the insurance fund or fee account.
        to: Holder,
        /// Amount.
        amount: Decimal,
    },
    /// `withdraw`.
    Withdraw {
        /// Account.
        account: u64,
        /// Amount.
        amount: Decimal,
    },
    /// `funding`.
    Funding {
        /// Symbol.
        symbol: String,
    },
    /// `tick`: time passes.
    Tick,
    /// `oracle`.
    Oracle {
        /// Symbol.
        symbol: String,
        /// Price.
        price: Decimal,
    },
    /// `new`.
    New {
        /// Account.
        account: u64,
        /// Client order id.
        cid: u64,
        /// Symbol.
        symbol: String,
        /// Side.
        side: Side,
        /// Type.
        order_type: OrderType,
        /// Price, if given.
        price: Option<Decimal>,
        /// Quantity.
        qty: Decimal,
        /// Time in force.
        tif: TimeInForce,
        /// Expiry, if given.
        expire_ts: Option<u64>,
        /// Post-only.
        post_only: bool,
        /// Reduce-only.
        reduce_only: bool,
        /// Self-trade prevention.
        stp: StpMode,
    },
    /// `amend`.
    Amend {
        /// Account.
        account: u64,
        /// Client order id.
        cid: u64,
        /// New price.
        price: Option<Decimal>,
        /// New open quantity.
        qty: Option<Decimal>,
    },
    /// `cancel`.
    Cancel {
        /// Account.
        account: u64,
        /// Client order id.
        cid: u64,
        /// A gateway's cancel-on-disconnect (reason `disconnect`).
        on_disconnect: bool,
    },
    /// `mass_cancel`.
    MassCancel {
        /// Account.
        account: u64,
        /// Narrow to this symbol.
        symbol: Option<String>,
        /// Narrow to this side.
        side: Option<Side>,
    },
}

/// The instrument's decimal fields in the order of [`InstrumentSpec::decimals`].
const INSTRUMENT_FIELDS: [&str; 13] = [
    "tick_size",
    "lot_size",
    "initial_margin",
    "maintenance_margin",
    "max_order_qty",
    "max_position_qty",
    "price_band",
    "maker_fee",
    "taker_fee",
    "liquidation_fee",
    "impact_notional",
    "funding_interest",
    "funding_clamp",
];

/// Reads typed fields out of a command object, naming the field in every error.
struct Fields {
    cmd: &'static str,
    map: Map<String, Value>,
}

impl Fields {
    fn bad(&self, field: &'static str, problem: String) -> LineError {
        LineError::BadValue { cmd: self.cmd, field, problem }
    }

    fn required(&mut self, field: &'static str) -> Result<Value, LineError> {
        self.map.remove(field).ok_or(LineError::Missing { cmd: self.cmd, field })
    }

    fn optional(&mut self, field: &'static str) -> Option<Value> {
        self.map.remove(field).filter(|v| !v.is_null())
    }

    fn to_u64(&self, field: &'static str, v: &Value) -> Result<u64, LineError> {
        v.as_u64().ok_or_else(|| self.bad(field, format!("{v} is not a non-negative integer")))
    }

    fn to_string(&self, field: &'static str, v: Value) -> Result<String, LineError> {
        match v {
            Value::String(s) => Ok(s),
            other => Err(self.bad(field, format!("{other} is not a string"))),
        }
    }

    fn to_decimal(&self, field: &'static str, v: Value) -> Result<Decimal, LineError> {
        let text = self.to_string(field, v)?;
        text.parse::<Decimal>().map_err(|e| self.bad(field, format!("{text:?} is not a decimal ({e})")))
    }

    fn to_name<T>(&self, field: &'static str, v: Value, parse: fn(&str) -> Option<T>, all: &[T]) -> Result<T, LineError>
    where
        T: core::fmt::Display,
    {
        let text = self.to_string(field, v)?;
        parse(&text).ok_or_else(|| {
            let names: Vec<String> = all.iter().map(|t| t.to_string()).collect();
            self.bad(field, format!("{text:?} is not one of {}", names.join(", ")))
        })
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, LineError> {
        let v = self.required(field)?;
        self.to_u64(field, &v)
    }

    fn opt_u64(&mut self, field: &'static str) -> Result<Option<u64>, LineError> {
        self.optional(field).map(|v| self.to_u64(field, &v)).transpose()
    }

    fn string(&mut self, field: &'static str) -> Result<String, LineError> {
        let v = self.required(field)?;
        self.to_string(field, v)
    }

    fn opt_string(&mut self, field: &'static str) -> Result<Option<String>, LineError> {
        self.optional(field).map(|v| self.to_string(field, v)).transpose()
    }

    fn decimal(&mut self, field: &'static str) -> Result<Decimal, LineError> {
        let v = self.required(field)?;
        self.to_decimal(field, v)
    }

    fn opt_decimal(&mut self, field: &'static str) -> Result<Option<Decimal>, LineError> {
        self.optional(field).map(|v| self.to_decimal(field, v)).transpose()
    }

    /// `"account"`: a trading account id, or `"insurance"` / `"fees"`.
    fn holder(&mut self, field: &'static str) -> Result<Holder, LineError> {
        match self.required(field)? {
            Value::String(s) if s == "insurance" => Ok(Holder::Insurance),
            Value::String(s) if s == "fees" => Ok(Holder::Fees),
            v => match v.as_u64() {
                Some(id) => Ok(Holder::Account(AccountId(id))),
                None => Err(self.bad(field, format!("{v} is not an account id, \"insurance\" or \"fees\""))),
            },
        }
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, LineError> {
        match self.optional(field) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(other) => Err(self.bad(field, format!("{other} is not true or false"))),
        }
    }

    fn opt_name<T: core::fmt::Display>(
        &mut self,
        field: &'static str,
        parse: fn(&str) -> Option<T>,
        all: &[T],
    ) -> Result<Option<T>, LineError> {
        self.optional(field).map(|v| self.to_name(field, v, parse, all)).transpose()
    }

    /// Fails on the first field nobody asked for.
    fn finish(self) -> Result<(), LineError> {
        match self.map.into_iter().next() {
            Some((field, _)) => Err(LineError::UnknownField { cmd: self.cmd, field }),
            None => Ok(()),
        }
    }
}

/// Parses one line into a typed command and its timestamp (`last_ts` when absent).
///
/// # Errors
/// [`LineError`] naming what is wrong with the line.
pub fn parse_line(line: &str, last_ts: u64) -> Result<(Parsed, u64), LineError> {
    let value: Value = serde_json::from_str(line).map_err(LineError::Json)?;
    let Value::Object(mut map) = value else { return Err(LineError::NotACommand) };
    let Some(Value::String(cmd)) = map.remove("cmd") else { return Err(LineError::NotACommand) };
    let cmd: &'static str = match cmd.as_str() {
        "instrument" => "instrument",
        "deposit" => "deposit",
        "oracle" => "oracle",
        "new" => "new",
        "amend" => "amend",
        "cancel" => "cancel",
        "mass_cancel" => "mass_cancel",
        "withdraw" => "withdraw",
        "funding" => "funding",
        "tick" => "tick",
        _ => return Err(LineError::UnknownCommand(cmd)),
    };
    let mut f = Fields { cmd, map };
    let ts = f.opt_u64("ts")?.unwrap_or(last_ts);
    if ts < last_ts {
        return Err(LineError::TimeWentBack { ts, previous: last_ts });
    }
    let parsed = match cmd {
        "instrument" => {
            let symbol = f.string("symbol")?;
            let tick = f.decimal("tick_size")?;
            let lot = f.decimal("lot_size")?;
            let imf = f.decimal("initial_margin")?;
            let mmf = f.decimal("maintenance_margin")?;
            let required = [
                tick,
                lot,
                imf,
                mmf,
                f.decimal("max_order_qty")?,
                f.decimal("max_position_qty")?,
                f.decimal("price_band")?,
            ];
            let mut optional = [None; 6];
            for (value, field) in optional.iter_mut().zip(InstrumentSpec::OPTIONAL_FIELDS) {
                *value = f.opt_decimal(field)?;
            }
            let values = InstrumentSpec::decimals_with_defaults(required, optional);
            Parsed::Instrument { symbol, values }
        }
        "deposit" => Parsed::Deposit { to: f.holder("account")?, amount: f.decimal("amount")? },
        "withdraw" => Parsed::Withdraw { account: f.u64("account")?, amount: f.decimal("amount")? },
        "funding" => Parsed::Funding { symbol: f.string("symbol")? },
        "tick" => Parsed::Tick,
        "oracle" => Parsed::Oracle { symbol: f.string("symbol")?, price: f.decimal("price")? },
        "new" => Parsed::New {
            account: f.u64("account")?,
            cid: f.u64("cid")?,
            symbol: f.string("symbol")?,
            side: {
                let v = f.required("side")?;
                f.to_name("side", v, Side::from_name, Side::ALL)?
            },
            order_type: f.opt_name("type", OrderType::from_name, OrderType::ALL)?.unwrap_or(OrderType::Limit),
            price: f.opt_decimal("price")?,
            qty: f.decimal("qty")?,
            tif: f.opt_name("tif", TimeInForce::from_name, TimeInForce::ALL)?.unwrap_or(TimeInForce::Gtc),
            expire_ts: f.opt_u64("expire_ts")?,
            post_only: f.flag("post_only")?,
            reduce_only: f.flag("reduce_only")?,
            stp: f.opt_name("stp", StpMode::from_name, StpMode::ALL)?.unwrap_or(StpMode::CancelTaker),
        },
        "amend" => Parsed::Amend {
            account: f.u64("account")?,
            cid: f.u64("cid")?,
            price: f.opt_decimal("price")?,
            qty: f.opt_decimal("qty")?,
        },
        "cancel" => {
            Parsed::Cancel { account: f.u64("account")?, cid: f.u64("cid")?, on_disconnect: f.flag("on_disconnect")? }
        }
        _ => Parsed::MassCancel {
            account: f.u64("account")?,
            symbol: f.opt_string("symbol")?,
            side: f.opt_name("side", Side::from_name, Side::ALL)?,
        },
    };
    f.finish()?;
    Ok((parsed, ts))
}

// ----- step 2: edge conversion -----------------------------------------------------------------

fn rejected(kind: CommandKind, account: Option<u64>, cid: Option<u64>, reason: RejectReason) -> Event {
    Event::Rejected { kind, account: account.map(AccountId), cid: cid.map(ClientOrderId), reason }
}

/// Converts a parsed command with the state's instruments. `Err` is the `rejected` event
/// the edge answers with.
///
/// # Errors
/// The `rejected` event for a command that cannot be converted exactly.
pub fn convert(state: &StateMachine, parsed: Parsed) -> Result<Command, Event> {
    Ok(match parsed {
        Parsed::Instrument { symbol, values } => {
            let reject = || rejected(CommandKind::Instrument, None, None, RejectReason::BadInstrument);
            let symbol = Symbol::try_new(&symbol).map_err(|_| reject())?;
            Command::ListInstrument(Box::new(InstrumentSpec::from_decimals(symbol, values)))
        }
        Parsed::Deposit { to, amount } => {
            let account = match to {
                Holder::Account(a) => Some(a.0),
                _ => None,
            };
            let reject = || rejected(CommandKind::Deposit, account, None, RejectReason::BadAmount);
            Command::Deposit { to, amount: Amount::from_decimal(amount).map_err(|_| reject())? }
        }
        Parsed::Withdraw { account, amount } => {
            let reject = || rejected(CommandKind::Withdraw, Some(account), None, RejectReason::BadAmount);
            Command::Withdraw {
                account: AccountId(account),
                amount: Amount::from_decimal(amount).map_err(|_| reject())?,
            }
        }
        Parsed::Funding { symbol } => {
            let inst = state
                .instrument_by_symbol(&symbol)
                .ok_or_else(|| rejected(CommandKind::Funding, None, None, RejectReason::UnknownSymbol))?;
            Command::Funding { instrument: inst.id }
        }
        Parsed::Tick => Command::Tick,
        Parsed::Oracle { symbol, price } => {
            let reject = |r| rejected(CommandKind::Oracle, None, None, r);
            let inst = state.instrument_by_symbol(&symbol).ok_or_else(|| reject(RejectReason::UnknownSymbol))?;
            let price = inst.price_from_decimal(price).map_err(|_| reject(RejectReason::BadOraclePrice))?;
            Command::Oracle { instrument: inst.id, price }
        }
        Parsed::New {
            account,
            cid,
            symbol,
            side,
            order_type,
            price,
            qty,
            tif,
            expire_ts,
            post_only,
            reduce_only,
            stp,
        } => {
            let reject = |r| rejected(CommandKind::New, Some(account), Some(cid), r);
            let inst = state.instrument_by_symbol(&symbol).ok_or_else(|| reject(RejectReason::UnknownSymbol))?;
            let price =
                price.map(|p| inst.price_from_decimal(p).map_err(|_| reject(RejectReason::BadPrice))).transpose()?;
            let qty = inst.qty_from_decimal(qty).map_err(|_| reject(RejectReason::BadQty))?;
            Command::NewOrder(NewOrder {
                account: AccountId(account),
                cid: ClientOrderId(cid),
                instrument: inst.id,
                side,
                order_type,
                price,
                qty,
                tif,
                expire_ts: expire_ts.map(Timestamp),
                post_only,
                reduce_only,
                stp,
            })
        }
        Parsed::Amend { account, cid, price, qty } => {
            let reject = |r| rejected(CommandKind::Amend, Some(account), Some(cid), r);
            let (account, cid) = (AccountId(account), ClientOrderId(cid));
            let inst = state
                .live_order_instrument(account, cid)
                .and_then(|id| state.instrument(id))
                .ok_or_else(|| reject(RejectReason::UnknownOrder))?;
            let instrument = inst.id;
            let price =
                price.map(|p| inst.price_from_decimal(p).map_err(|_| reject(RejectReason::BadPrice))).transpose()?;
            let qty = qty.map(|q| inst.qty_from_decimal(q).map_err(|_| reject(RejectReason::BadQty))).transpose()?;
            Command::Amend(Amend { account, cid, instrument, price, qty })
        }
        Parsed::Cancel { account, cid, on_disconnect } => {
            Command::Cancel(Cancel { account: AccountId(account), cid: ClientOrderId(cid), on_disconnect })
        }
        Parsed::MassCancel { account, symbol, side } => {
            let instrument = match symbol {
                Some(s) => Some(
                    state
                        .instrument_by_symbol(&s)
                        .ok_or_else(|| {
                            rejected(CommandKind::MassCancel, Some(account), None, RejectReason::UnknownSymbol)
                        })?
                        .id,
                ),
                None => None,
            };
            Command::MassCancel(MassCancel { account: AccountId(account), instrument, side })
        }
    })
}

// ----- step 3: output --------------------------------------------------------------------------

/// A quote amount in micro-units as an exact decimal string.
fn usdc(micro: i128) -> String {
    Amount::format_micro(micro)
}

/// A holder in JSON: the account id, or `"insurance"` / `"fees"`.
fn holder_json(h: Holder) -> String {
    match h {
        Holder::Account(a) => a.to_string(),
        Holder::Insurance => "\"insurance\"".to_string(),
        Holder::Fees => "\"fees\"".to_string(),
    }
}

/// The average entry price of `size` lots with entry notional `cost`, in quote per base,
/// rounded half-even to 8 decimals for display (the exact figure is the cost).
pub fn entry_price(inst: &Instrument, size: Qty, cost: i128) -> Option<String> {
    if size.0 == 0 {
        return None;
    }
    let cost = Decimal::try_from_i128_with_scale(cost, Amount::DECIMALS).ok()?;
    let base = Decimal::from(size.0).checked_mul(inst.lot_size)?;
    Some(cost.checked_div(base)?.round_dp(8).normalize().to_string())
}

/// The funding index of an instrument in quote per unit of base (the index itself is in
/// micro-units per lot), exact where the lot size allows, else rounded to 12 decimals.
fn funding_index(inst: &Instrument, index: i128) -> String {
    Decimal::try_from_i128_with_scale(index, Amount::DECIMALS)
        .ok()
        .and_then(|d| d.checked_div(inst.lot_size))
        .map_or_else(|| index.to_string(), |d| d.round_dp(12).normalize().to_string())
}

/// Appends one event as a JSON line (fields in the documented order). Events with no
/// scenario form (an instrument listing) write nothing.
pub fn format_event(state: &StateMachine, seq: Seq, ev: &Event, out: &mut String) {
    use core::fmt::Write as _;
    let symbol = |id| state.instrument(id).map_or("?", |i| i.symbol.as_str());
    let price = |id, p: l2x_types::Price| state.instrument(id).map_or_else(|| p.0.to_string(), |i| i.format_price(p));
    let qty = |id, q: Qty| state.instrument(id).map_or_else(|| q.0.to_string(), |i| i.format_qty(q));
    // Writing to a String cannot fail.
    let _ = match *ev {
        Event::InstrumentListed { .. } => return,
        Event::Accepted { account, cid, order_id, .. } => {
            write!(out, r#"{{"ev":"accepted","seq":{seq},"account":{account},"cid":{cid},"order_id":{order_id}}}"#)
        }
        Event::Rejected { kind, account, cid, reason } => {
            let _ = write!(out, r#"{{"ev":"rejected","seq":{seq}"#);
            if !kind.is_order() {
                let _ = write!(out, r#","cmd":"{}""#, kind.as_str());
            }
            if let Some(a) = account {
                let _ = write!(out, r#","account":{a}"#);
            }
            if let Some(c) = cid {
                let _ = write!(out, r#","cid":{c}"#);
            }
            write!(out, r#","reason":"{reason}"}}"#)
        }
        Event::Amended { account, cid, instrument, price: p, qty: q, priority_kept, .. } => write!(
            out,
            r#"{{"ev":"amended","seq":{seq},"account":{account},"cid":{cid},"price":"{}","qty":"{}","priority_kept":{priority_kept}}}"#,
            price(instrument, p),
            qty(instrument, q)
        ),
        Event::Trade(t) => {
            let taker_cid = if t.liquidation { "null".to_string() } else { t.taker_cid.to_string() };
            let _ = write!(
                out,
                r#"{{"ev":"trade","seq":{seq},"symbol":"{}","price":"{}","qty":"{}","maker_account":{},"maker_cid":{},"taker_account":{},"taker_cid":{taker_cid},"taker_side":"{}""#,
                symbol(t.instrument),
                price(t.instrument, t.price),
                qty(t.instrument, t.qty),
                t.maker_account,
                t.maker_cid,
                t.taker_account,
                t.taker_side
            );
            if t.liquidation {
                let _ = write!(out, r#","liquidation":true"#);
            }
            write!(out, "}}")
        }
        Event::Cancelled { account, cid, instrument, qty: q, leaves, reason, .. } => write!(
            out,
            r#"{{"ev":"cancelled","seq":{seq},"account":{account},"cid":{cid},"qty":"{}","leaves":"{}","reason":"{reason}"}}"#,
            qty(instrument, q),
            qty(instrument, leaves)
        ),
        Event::Book { instrument, side, price: p, qty: q, orders } => write!(
            out,
            r#"{{"ev":"book","seq":{seq},"symbol":"{}","side":"{side}","price":"{}","qty":"{}","orders":{orders}}}"#,
            symbol(instrument),
            price(instrument, p),
            qty(instrument, q)
        ),
        Event::Position { holder, instrument, size, cost, realised } => {
            let entry = state
                .instrument(instrument)
                .and_then(|i| entry_price(i, size, cost))
                .map_or_else(|| "null".to_string(), |e| format!("\"{e}\""));
            write!(
                out,
                r#"{{"ev":"position","seq":{seq},"account":{},"symbol":"{}","size":"{}","entry_price":{entry},"cost":"{}","realised_pnl":"{}"}}"#,
                holder_json(holder),
                symbol(instrument),
                qty(instrument, size),
                usdc(cost),
                usdc(realised)
            )
        }
        Event::Balance { holder, collateral } => write!(
            out,
            r#"{{"ev":"balance","seq":{seq},"account":{},"collateral":"{}"}}"#,
            holder_json(holder),
            usdc(i128::from(collateral.0))
        ),
        Event::Funding { instrument, rate, index } => write!(
            out,
            r#"{{"ev":"funding","seq":{seq},"symbol":"{}","rate":"{}","index":"{}"}}"#,
            symbol(instrument),
            rate.format(),
            state.instrument(instrument).map_or_else(|| index.to_string(), |i| funding_index(i, index))
        ),
        Event::Liquidation { account, instrument, side, qty: q, price: p, fee } => write!(
            out,
            r#"{{"ev":"liquidation","seq":{seq},"account":{account},"symbol":"{}","side":"{side}","qty":"{}","price":"{}","fee":"{}"}}"#,
            symbol(instrument),
            qty(instrument, q),
            price(instrument, p),
            usdc(fee)
        ),
        Event::Takeover { account, instrument, side, qty: q, price: p } => write!(
            out,
            r#"{{"ev":"takeover","seq":{seq},"account":{account},"symbol":"{}","side":"{side}","qty":"{}","price":"{}"}}"#,
            symbol(instrument),
            qty(instrument, q),
            price(instrument, p)
        ),
        Event::Insurance { delta, balance } => write!(
            out,
            r#"{{"ev":"insurance","seq":{seq},"delta":"{}","balance":"{}"}}"#,
            usdc(delta),
            usdc(i128::from(balance.0))
        ),
        Event::Adl { account, counterparty, instrument, side, qty: q, price: p } => write!(
            out,
            r#"{{"ev":"adl","seq":{seq},"account":{account},"counterparty":{counterparty},"symbol":"{}","side":"{side}","qty":"{}","price":"{}"}}"#,
            symbol(instrument),
            qty(instrument, q),
            price(instrument, p)
        ),
        Event::LiquidationIncomplete { account, instrument, qty: q } => write!(
            out,
            r#"{{"ev":"liquidation_incomplete","seq":{seq},"account":{account},"symbol":"{}","qty":"{}"}}"#,
            symbol(instrument),
            qty(instrument, q)
        ),
    };
    out.push('\n');
}

// ----- final state ------------------------------------------------------------------------------

/// The `--state-out` document (docs/SCENARIOS.md, "Final state").
#[derive(Debug, Serialize)]
pub struct StateReport {
    /// Sequence number of the last command applied.
    pub seq: u64,
    /// The canonical state hash.
    pub state_hash: String,
    /// The insurance fund's equity (collateral + unrealised PnL of positions it took over).
    pub insurance: String,
    /// The insurance fund's collateral.
    pub insurance_collateral: String,
    /// Positions the insurance fund holds.
    pub insurance_positions: Vec<PositionReport>,
    /// The fee account's collateral.
    pub fees: String,
    /// Trading accounts in ascending id.
    pub accounts: Vec<AccountReport>,
}

/// One account in a [`StateReport`].
#[derive(Debug, Serialize)]
pub struct AccountReport {
    /// Account id.
    pub account: u64,
    /// Collateral.
    pub collateral: String,
    /// Collateral + unrealised PnL − unsettled funding.
    pub equity: String,
    /// Initial requirement (worse side of resting orders).
    pub initial_margin: String,
    /// Maintenance requirement.
    pub maintenance_margin: String,
    /// Open positions.
    pub positions: Vec<PositionReport>,
}

/// One open position in a [`StateReport`].
#[derive(Debug, Serialize)]
pub struct PositionReport {
    /// Instrument.
    pub symbol: String,
    /// Signed size, base units.
    pub size: String,
    /// Average entry price (8 decimals).
    pub entry_price: String,
    /// Entry notional of the open size, exact.
    pub cost: String,
    /// Unrealised PnL at mark.
    pub unrealised_pnl: String,
    /// Realised PnL so far on this instrument.
    pub realised_pnl: String,
    /// Funding not yet settled into collateral (positive: owed by the account).
    pub unsettled_funding: String,
}

/// The final state of a run as a [`StateReport`].
pub fn state_report(state: &StateMachine, seq: u64) -> StateReport {
    let ledger = state.ledger();
    let positions = |slot| -> Vec<PositionReport> {
        ledger
            .account(slot)
            .positions
            .iter()
            .filter(|p| p.size != 0)
            .filter_map(|p| {
                let inst = state.instrument(p.instrument)?;
                let mark = ledger.mark(p.instrument).map_or(0, |m| i128::from(m.0));
                let notional = i128::from(p.size) * mark * i128::from(inst.quote_per_tick_lot);
                let unsettled = i128::from(p.size) * (ledger.funding_index(p.instrument) - p.funding_index);
                Some(PositionReport {
                    symbol: inst.symbol.to_string(),
                    size: inst.format_qty(Qty(p.size)),
                    entry_price: entry_price(inst, Qty(p.size), p.cost).unwrap_or_default(),
                    cost: usdc(p.cost),
                    unrealised_pnl: usdc(notional - p.cost),
                    realised_pnl: usdc(p.realised),
                    unsettled_funding: usdc(unsettled),
                })
            })
            .collect()
    };
    let accounts = ledger
        .slots_by_id()
        .into_iter()
        .filter_map(|slot| {
            let Holder::Account(id) = ledger.account(slot).holder else { return None };
            let h = ledger.health(slot);
            Some(AccountReport {
                account: id.0,
                collateral: usdc(i128::from(ledger.account(slot).collateral)),
                equity: usdc(h.equity),
                initial_margin: usdc(h.initial),
                maintenance_margin: usdc(h.maintenance),
                positions: positions(slot),
            })
        })
        .collect();
    StateReport {
        seq,
        state_hash: state.canonical().hash().to_string(),
        insurance: usdc(ledger.health(l2x_risk::Ledger::INSURANCE).equity),
        insurance_collateral: usdc(i128::from(ledger.account(l2x_risk::Ledger::INSURANCE).collateral)),
        insurance_positions: positions(l2x_risk::Ledger::INSURANCE),
        fees: usdc(i128::from(ledger.account(l2x_risk::Ledger::FEES).collateral)),
        accounts,
    }
}

// ----- journal export ---------------------------------------------------------------------------

/// The scenario line of a sequenced command, formatted against the state just before it was
/// applied (which knows the instruments' symbols and units). Parsing the line and converting
/// it against the same state gives back exactly `cmd` — except for a command naming an
/// instrument id that was never listed (possible only from the binary gateway, which carries
/// ids): it has no scenario form and is written with the symbol `#<id>`, which the scenario
/// format refuses.
pub fn format_command(state: &StateMachine, cmd: &Sequenced) -> String {
    use core::fmt::Write as _;
    let symbol = |id: l2x_types::InstrumentId| {
        state.instrument(id).map_or_else(|| format!("#{}", id.0), |i| i.symbol.to_string())
    };
    let price = |id, p: l2x_types::Price| state.instrument(id).map_or_else(|| p.0.to_string(), |i| i.format_price(p));
    let qty = |id, q: Qty| state.instrument(id).map_or_else(|| q.0.to_string(), |i| i.format_qty(q));
    let amount = |a: Amount| usdc(i128::from(a.0));
    let mut s = String::with_capacity(160);
    // Writing to a String cannot fail.
    let _ = match &cmd.cmd {
        Command::ListInstrument(spec) => {
            let _ = write!(s, r#"{{"cmd":"instrument","symbol":"{}""#, spec.symbol);
            for (name, value) in INSTRUMENT_FIELDS.iter().zip(spec.decimals()) {
                let _ = write!(s, r#","{name}":"{value}""#);
            }
            Ok(())
        }
        Command::Deposit { to, amount: a } => {
            write!(s, r#"{{"cmd":"deposit","account":{},"amount":"{}""#, holder_json(*to), amount(*a))
        }
        Command::Withdraw { account, amount: a } => {
            write!(s, r#"{{"cmd":"withdraw","account":{account},"amount":"{}""#, amount(*a))
        }
        Command::Oracle { instrument, price: p } => {
            write!(s, r#"{{"cmd":"oracle","symbol":"{}","price":"{}""#, symbol(*instrument), price(*instrument, *p))
        }
        Command::Funding { instrument } => write!(s, r#"{{"cmd":"funding","symbol":"{}""#, symbol(*instrument)),
        Command::Tick => write!(s, r#"{{"cmd":"tick""#),
        Command::NewOrder(o) => {
            let _ = write!(
                s,
                r#"{{"cmd":"new","account":{},"cid":{},"symbol":"{}","side":"{}","type":"{}""#,
                o.account,
                o.cid,
                symbol(o.instrument),
                o.side,
                o.order_type
            );
            if let Some(p) = o.price {
                let _ = write!(s, r#","price":"{}""#, price(o.instrument, p));
            }
            let _ = write!(s, r#","qty":"{}","tif":"{}""#, qty(o.instrument, o.qty), o.tif);
            if let Some(t) = o.expire_ts {
                let _ = write!(s, r#","expire_ts":{t}"#);
            }
            write!(s, r#","post_only":{},"reduce_only":{},"stp":"{}""#, o.post_only, o.reduce_only, o.stp)
        }
        Command::Amend(a) => {
            let _ = write!(s, r#"{{"cmd":"amend","account":{},"cid":{}"#, a.account, a.cid);
            if let Some(p) = a.price {
                let _ = write!(s, r#","price":"{}""#, price(a.instrument, p));
            }
            if let Some(q) = a.qty {
                let _ = write!(s, r#","qty":"{}""#, qty(a.instrument, q));
            }
            Ok(())
        }
        Command::Cancel(c) => {
            let _ = write!(s, r#"{{"cmd":"cancel","account":{},"cid":{}"#, c.account, c.cid);
            if c.on_disconnect {
                let _ = write!(s, r#","on_disconnect":true"#);
            }
            Ok(())
        }
        Command::MassCancel(m) => {
            let _ = write!(s, r#"{{"cmd":"mass_cancel","account":{}"#, m.account);
            if let Some(i) = m.instrument {
                let _ = write!(s, r#","symbol":"{}""#, symbol(i));
            }
            if let Some(side) = m.side {
                let _ = write!(s, r#","side":"{side}""#);
            }
            Ok(())
        }
    };
    let _ = write!(s, r#","ts":{}}}"#, cmd.ts.0);
    s
}

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exported {
    /// Commands written.
    pub commands: u64,
    /// The last sequence number read.
    pub last_seq: u64,
    /// Whether the journal ended with a torn record (not exported).
    pub torn: bool,
}

/// Writes every command of the journal in `dir` as a scenario line, in order: the inverse
/// of `l2x match --journal` (running the export and exporting again gives the same lines).
/// The journal is replayed as it is read, so each command is formatted against the state
/// before it.
///
/// # Errors
/// Journal errors (corruption, I/O) and I/O errors writing `out`.
pub fn export(dir: &std::path::Path, out: &mut impl Write) -> Result<Exported, crate::journal::JournalError> {
    let mut state = StateMachine::new();
    let mut events = Vec::new();
    let mut written = Exported::default();
    let mut failure: Option<io::Error> = None;
    let report = crate::journal::scan(dir, |cmd| {
        let mut line = format_command(&state, &cmd);
        line.push('\n');
        if let Err(e) = out.write_all(line.as_bytes()) {
            failure = Some(e);
            return core::ops::ControlFlow::Break(());
        }
        events.clear();
        state.apply(&cmd, &mut events);
        written.commands += 1;
        core::ops::ControlFlow::Continue(())
    })?;
    if let Some(e) = failure {
        return Err(crate::journal::JournalError::Io { path: "<output>".into(), source: e });
    }
    written.last_seq = report.last_seq;
    written.torn = report.torn.is_some();
    Ok(written)
}
