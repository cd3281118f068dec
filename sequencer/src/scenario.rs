//! The scenario format: commands as JSON lines in, events as JSON lines out (`l2x match`).
//! The format is specified in `docs/SCENARIOS.md`; this module is its only implementation.
//!
//! # Edge and engine
//!
//! A line is handled in three steps:
//!
//! 1. **Syntax** ([`parse_line`]) — valid JSON, an object with a known `cmd`, every
//!    required field present with the right type, decimals as strings that parse, enum
//!    names that exist, no unknown or repeated field, a non-decreasing `ts`. A failure is a
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
//!
//! Reading never stops at a bad line: a line that is not UTF-8, or longer than
//! [`MAX_LINE_BYTES`], is reported and skipped like any other bad line. An instrument
//! listing the engine refuses (`bad_instrument`) is a `rejected` event, and the runner also
//! says why on its error stream: which field broke which rule ([`ListingRefused`]).

use std::io::{self, BufRead, Write};

use l2x_types::{
    AccountId, Amend, Amount, Cancel, ClientOrderId, Command, CommandKind, Decimal, Event, Holder, Instrument,
    InstrumentId, InstrumentSpec, MassCancel, NewOrder, OrderType, Qty, RejectReason, Seq, Sequenced, Side, SpecError,
    SpecField, StpMode, Symbol, SymbolError, TimeInForce, Timestamp,
};
use serde::Serialize;

use l2x_engine::StateMachine;

mod lines;

pub use lines::{LineError, MAX_LINE_BYTES, parse_line};

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
    refused: Option<ListingRefused>,
}

/// Why an instrument listing was refused `bad_instrument`: the rule its symbol or one of
/// its fields broke.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListingRefused {
    /// The symbol is not a valid one.
    #[error(transparent)]
    Symbol(#[from] SymbolError),
    /// A field breaks a listing rule ([`Instrument::try_new`]).
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// A failure of a whole run: only I/O (bad lines are counted in [`Summary`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Reading the scenario failed.
    #[error("reading the scenario: {0}")]
    Input(#[source] io::Error),
    /// Writing the events, the error lines or the journal failed.
    #[error("writing the output: {0}")]
    Output(#[source] io::Error),
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
    /// Instrument listings refused `bad_instrument`, whose reason was reported.
    pub refused_listings: u64,
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
        let listing = match &parsed {
            Parsed::Instrument { symbol, values } => Some(listing_refusal(symbol, values)),
            _ => None,
        };
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
        let bad_instrument = |ev: &Event| {
            matches!(ev, Event::Rejected { kind: CommandKind::Instrument, reason: RejectReason::BadInstrument, .. })
        };
        self.refused = listing.flatten().filter(|_| self.events.iter().any(bad_instrument));
        self.text.clear();
        for ev in &self.events {
            format_event(&self.state, seq, ev, &mut self.text);
        }
        Ok(out.write_all(self.text.as_bytes()).map(|()| applied))
    }

    /// Why the listing of the last [`Runner::run_line`] was refused `bad_instrument`
    /// (`None` for any other line).
    pub fn refused_listing(&self) -> Option<&ListingRefused> {
        self.refused.as_ref()
    }

    /// Runs every line of `input`, writing events to `out` and `line N: …` to `err` for
    /// each bad line (skipped) and each refused listing (with the field and rule). Blank
    /// lines are skipped silently (they still count for `seq`); a line that is not UTF-8
    /// or longer than [`MAX_LINE_BYTES`] is a bad line.
    ///
    /// # Errors
    /// Only I/O errors: [`RunError::Input`] reading `input`, [`RunError::Output`] writing.
    pub fn run(
        &mut self,
        mut input: impl BufRead,
        out: &mut impl Write,
        err: &mut impl Write,
    ) -> Result<Summary, RunError> {
        let mut summary = Summary::default();
        let mut bytes = Vec::new();
        for seq in 1u64.. {
            let Some(whole) = read_line(&mut input, &mut bytes, MAX_LINE_BYTES).map_err(RunError::Input)? else {
                break;
            };
            summary.lines = seq;
            let line = match (whole, core::str::from_utf8(&bytes)) {
                (false, _) => Err(LineError::TooLong { limit: MAX_LINE_BYTES }),
                (true, Err(e)) => Err(LineError::NotUtf8 { column: e.valid_up_to() + 1 }),
                (true, Ok(text)) if text.trim().is_empty() => continue,
                (true, Ok(text)) => self.run_line(seq, text, out),
            };
            match line {
                Ok(result) => {
                    if let Applied::Command(_) = result.map_err(RunError::Output)? {
                        summary.applied += 1;
                    }
                    if let Some(why) = &self.refused {
                        summary.refused_listings += 1;
                        writeln!(err, "line {seq}: instrument refused (bad_instrument): {why}")
                            .map_err(RunError::Output)?;
                    }
                }
                Err(e) => {
                    summary.errors += 1;
                    writeln!(err, "line {seq}: {e}").map_err(RunError::Output)?;
                }
            }
        }
        out.flush().map_err(RunError::Output)?;
        Ok(summary)
    }
}

/// Reads one line into `buf` (without its `\n` or `\r\n`), keeping at most `limit` bytes
/// of it: `Ok(Some(true))` for a whole line, `Ok(Some(false))` for a longer one (the rest is
/// read and dropped, so memory stays bounded), `Ok(None)` at the end of the input.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> io::Result<Option<bool>> {
    buf.clear();
    let (mut read_any, mut whole) = (false, true);
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        read_any = true;
        let end = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..end.unwrap_or(available.len())];
        if whole && buf.len() + chunk.len() <= limit {
            buf.extend_from_slice(chunk);
        } else {
            whole = false;
            buf.clear();
        }
        let used = chunk.len() + usize::from(end.is_some());
        input.consume(used);
        if end.is_some() {
            break;
        }
    }
    if !read_any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(whole))
}

/// Why a listing with this symbol and these values would be refused `bad_instrument`
/// (`None` if it would not be, for these reasons).
fn listing_refusal(symbol: &str, values: &[Decimal; 13]) -> Option<ListingRefused> {
    let symbol = match Symbol::try_new(symbol) {
        Ok(s) => s,
        Err(e) => return Some(e.into()),
    };
    Instrument::try_new(InstrumentId(0), &InstrumentSpec::from_decimals(symbol, *values)).err().map(Into::into)
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

impl StateReport {
    /// The report as `l2x match --state-out` writes it: pretty JSON and a final newline.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and vectors always serializes.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
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
            for (name, value) in SpecField::ALL.iter().zip(spec.decimals()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"{"cmd":"instrument","symbol":"BTC-PERP","tick_size":"0.5","lot_size":"0.001","initial_margin":"0.05","maintenance_margin":"0.03","max_order_qty":"100","max_position_qty":"1000","price_band":"0.1"}"#;
    const DEPOSIT: &str = r#"{"cmd":"deposit","account":1,"amount":"10"}"#;

    fn run(input: &[u8]) -> (Summary, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let summary = Runner::new().run(input, &mut out, &mut err).unwrap();
        (summary, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn match_reports_invalid_utf8_line_and_goes_on() {
        let mut input = format!("{DEPOSIT}\n").into_bytes();
        input.extend_from_slice(b"{\"cmd\":\"deposit\",\"account\":1,\"amount\":\"1\xff\"}\n");
        input.extend_from_slice(format!("{DEPOSIT}\r\n").as_bytes());
        let (summary, out, err) = run(&input);
        assert_eq!(err, "line 2: not UTF-8: byte 41 of the line is not part of a UTF-8 character\n");
        assert_eq!(summary, Summary { lines: 3, applied: 2, errors: 1, refused_listings: 0 });
        // The line after it is run (its CRLF ending is a line ending).
        assert_eq!(
            out,
            "{\"ev\":\"balance\",\"seq\":1,\"account\":1,\"collateral\":\"10\"}\n\
             {\"ev\":\"balance\",\"seq\":3,\"account\":1,\"collateral\":\"20\"}\n"
        );
    }

    #[test]
    fn match_skips_an_overlong_line_without_holding_it() {
        let long = format!("{{\"cmd\":\"tick\",\"pad\":\"{}\"}}", "x".repeat(MAX_LINE_BYTES));
        let input = format!("{long}\n{DEPOSIT}\n{}", " ".repeat(MAX_LINE_BYTES + 1));
        let (summary, out, err) = run(input.as_bytes());
        assert_eq!(
            err,
            format!("line 1: longer than {MAX_LINE_BYTES} bytes\nline 3: longer than {MAX_LINE_BYTES} bytes\n")
        );
        assert_eq!(summary, Summary { lines: 3, applied: 1, errors: 2, refused_listings: 0 });
        assert!(out.contains(r#""seq":2"#), "{out}");
        // A line of exactly the limit is read.
        let mut buf = Vec::new();
        let exact = "y".repeat(MAX_LINE_BYTES);
        assert_eq!(read_line(&mut exact.as_bytes(), &mut buf, MAX_LINE_BYTES).unwrap(), Some(true));
        assert_eq!(buf.len(), MAX_LINE_BYTES);
    }

    #[test]
    fn match_names_the_field_of_a_refused_listing() {
        let band = LISTING.replace(r#""price_band":"0.1""#, r#""price_band":"1""#);
        let symbol = LISTING.replace("BTC-PERP", "BTC PERP");
        let input = format!("{band}\n{symbol}\n{LISTING}\n{LISTING}\n");
        let (summary, out, err) = run(input.as_bytes());
        assert_eq!(
            err,
            "line 1: instrument refused (bad_instrument): price_band: 1 must be above 0 and below 1\n\
             line 2: instrument refused (bad_instrument): symbol \"BTC PERP\" must be 1 to 16 characters of A-Z a-z 0-9 - _ . /\n"
        );
        // The reject events stay; a duplicate symbol says all in its reason and gets no line.
        assert_eq!(
            out,
            "{\"ev\":\"rejected\",\"seq\":1,\"cmd\":\"instrument\",\"reason\":\"bad_instrument\"}\n\
             {\"ev\":\"rejected\",\"seq\":2,\"cmd\":\"instrument\",\"reason\":\"bad_instrument\"}\n\
             {\"ev\":\"rejected\",\"seq\":4,\"cmd\":\"instrument\",\"reason\":\"duplicate_symbol\"}\n"
        );
        assert_eq!(summary, Summary { lines: 4, applied: 3, errors: 0, refused_listings: 2 });
    }

    /// The typed reason, for a caller of `run_line`.
    #[test]
    fn refused_listing_is_typed() {
        let mut runner = Runner::new();
        let band = LISTING.replace(r#""initial_margin":"0.05""#, r#""initial_margin":"0.02""#);
        runner.run_line(1, &band, &mut io::sink()).unwrap().unwrap();
        let Some(ListingRefused::Spec(e)) = runner.refused_listing() else { panic!("{:?}", runner.refused_listing()) };
        assert_eq!(e.field(), SpecField::InitialMargin);
        runner.run_line(2, LISTING, &mut io::sink()).unwrap().unwrap();
        assert_eq!(runner.refused_listing(), None);
    }
}
