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
//!
//! The commands over this format are calls here: `l2x match` is [`run_match`] (the input,
//! the journal, `--state-out`), `l2x journal export` is [`export_journal`].

use std::io::{self, BufRead, Write};

use l2x_types::{
    CommandKind, Decimal, Event, Instrument, InstrumentId, InstrumentSpec, RejectReason, Seq, Sequenced, SpecError,
    Symbol, SymbolError, Timestamp,
};

use l2x_engine::StateMachine;

mod convert;
mod export;
mod lines;
mod output;
mod report;
mod run;

pub use convert::{Parsed, convert};
pub use export::{ExportError, Exported, export, export_journal, format_command};
pub use lines::{LineError, MAX_LINE_BYTES, parse_line};
pub use output::{entry_price, format_event};
pub use report::{AccountReport, PositionReport, StateReport, state_report};
pub use run::{Input, JournalOptions, MatchError, MatchOptions, run_match};

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

#[cfg(test)]
mod tests {
    use l2x_types::SpecField;

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
