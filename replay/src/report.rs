//! What `l2x replay` prints (docs/REPLAY.md): the summary at a point, its state hash, a
//! view's rows, or a what-if comparison — written to the writers it is given, so the binary
//! only parses flags.
//!
//! ```text
//!  Query ──▶ --dump VIEW         views::Viewer over a replay ──▶ rows (CSV or JSON lines)
//!        ──▶ --risk-params FILE  whatif::run ──▶ a table, CSV per account, or JSON
//!        ──▶ --state-hash        replay ──▶ {"seq":N,"state_hash":"0x…"}
//!        ──▶ otherwise           replay ──▶ the summary: seq, time, accounts, open
//!                                interest, insurance fund, state hash
//! ```
//!
//! What the replay read that is not the state (refused snapshots, a torn tail) goes to the
//! error writer as `l2x: …` lines. Settlement roots (`--verify-roots`) are not here: they
//! are the settlement crate's audit.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use l2x_risk::Ledger;
use l2x_types::{AccountId, Amount, format_units};

use crate::views::{Format, Table, View, Viewer};
use crate::whatif::{ParamsError, RiskParams, WhatIfError};
use crate::{Options, Outcome, ReplayError, Until};

mod compare;

/// The largest risk-parameter file read, bytes.
pub const MAX_PARAMS_BYTES: u64 = 1 << 20;

/// What to replay and what to print: `l2x replay`'s options, parsed.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// The journal directory.
    pub dir: PathBuf,
    /// How far.
    pub until: Until,
    /// A progress bar on standard error (on a terminal only).
    pub progress: bool,
    /// Only `{"seq":N,"state_hash":"0x…"}`.
    pub state_hash: bool,
    /// A view's rows instead of the summary.
    pub dump: Option<View>,
    /// The view's format (CSV if none), or the what-if's (a table if none).
    pub format: Option<Format>,
    /// Replay under the risk parameters in this TOML file as well, and compare.
    pub risk_params: Option<PathBuf>,
    /// Only this account's rows (with a view).
    pub account: Option<AccountId>,
    /// With a state view: a sample every this many nanoseconds of sequenced time.
    pub every: Option<u64>,
}

/// Why a report could not be made. Messages are the command's: they name the flag or the
/// file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The replay of the journal.
    #[error("replaying {}", dir.display())]
    Replay {
        /// The journal directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: ReplayError,
    },
    /// `--every 0`.
    #[error("--every must be longer than zero")]
    EveryZero,
    /// `--every` with a view of events, which are each written anyway.
    #[error("--every samples the state views (accounts, positions, book); {} are events: each is written", view.name())]
    EveryOfEvents {
        /// The view.
        view: View,
    },
    /// `--format` without a view or a what-if.
    #[error("--format is for --dump and --risk-params")]
    FormatUnused,
    /// The risk-parameter file could not be read.
    #[error("--risk-params {name}")]
    ParamsFile {
        /// The file, as given.
        name: String,
        /// Why.
        #[source]
        source: FileError,
    },
    /// The risk-parameter file does not parse, or names a value the rules refuse.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The what-if run.
    #[error(transparent)]
    WhatIf(#[from] WhatIfError),
    /// Writing the report or the notes.
    #[error(transparent)]
    Output(#[from] io::Error),
    /// JSON of the what-if.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Why a small text file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Opening it.
    #[error("cannot open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Its metadata.
    #[error(transparent)]
    Metadata(io::Error),
    /// It is a directory.
    #[error("{} is a directory, not a file", path.display())]
    Directory {
        /// The path.
        path: PathBuf,
    },
    /// Reading it.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Larger than the limit (a path to something endless must not exhaust memory).
    #[error("{} is larger than {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, bytes.
        limit: u64,
    },
    /// Not UTF-8. The decoder's error is part of the message, not a source: the message
    /// reads `FILE: not UTF-8 text (…)`.
    #[error("{}: not UTF-8 text ({utf8})", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        utf8: std::string::FromUtf8Error,
    },
}

/// Replays `query.dir` and writes what `query` asks for to `out`, and what the replay read
/// that is not the state (refused snapshots, a torn tail) to `err`.
///
/// # Errors
/// [`ReportError`]: options that do not go together, the risk-parameter file, the replay
/// (naming the journal), or writing.
pub fn report(query: &Query, out: &mut impl Write, err: &mut impl Write) -> Result<(), ReportError> {
    if let Some(view) = query.dump {
        return dump(query, view, out, err);
    }
    if query.format.is_some() && query.risk_params.is_none() {
        return Err(ReportError::FormatUnused);
    }
    if let Some(file) = &query.risk_params {
        return what_if(query, file, out);
    }
    summary(query, out, err)
}

/// The summary at the point, or with `state_hash` only the hash.
fn summary(query: &Query, out: &mut impl Write, err: &mut impl Write) -> Result<(), ReportError> {
    let run = Options { until: query.until, from_start: false, progress: query.progress && !query.state_hash };
    let outcome = replay(query, run, &mut ())?;
    report_reading(&outcome, err)?;
    let state = &outcome.state;
    let hash = state.canonical().hash();
    if query.state_hash {
        writeln!(out, "{}", serde_json::json!({"seq": outcome.last_seq, "state_hash": hash.to_string()}))?;
        return Ok(out.flush()?);
    }
    if outcome.reached_end && query.until != Until::End {
        writeln!(out, "the journal ends at seq {}, before the point asked for", outcome.last_seq)?;
    }
    let ledger = state.ledger();
    writeln!(out, "seq            {}", outcome.last_seq)?;
    writeln!(out, "time           {} ns", state.now().0)?;
    if let Some((seq, path)) = &outcome.snapshot {
        writeln!(out, "from snapshot  {} ({})", seq, path.display())?;
    }
    writeln!(out, "replayed       {} commands", outcome.replayed)?;
    writeln!(out, "accounts       {}", ledger.slots_by_id().len())?;
    writeln!(out, "resting orders {}", state.resting_count())?;
    for inst in state.instruments() {
        let long: i128 = ledger
            .accounts()
            .iter()
            .flat_map(|a| a.positions.iter())
            .filter(|p| p.instrument == inst.id && p.size > 0)
            .map(|p| i128::from(p.size))
            .sum();
        let mark = state.mark(inst.id).map_or("none".to_string(), |p| format_units(i128::from(p.0), inst.tick_size));
        writeln!(out, "open interest  {} {} (mark {mark})", format_units(long, inst.lot_size), inst.symbol.as_str())?;
    }
    let insurance = ledger.health(Ledger::INSURANCE).equity;
    writeln!(out, "insurance fund {} USDC (equity)", Amount::format_micro(insurance))?;
    writeln!(out, "state hash     {hash}")?;
    Ok(out.flush()?)
}

/// `--dump`: the view's rows.
fn dump(query: &Query, view: View, out: &mut impl Write, err: &mut impl Write) -> Result<(), ReportError> {
    if query.every == Some(0) {
        return Err(ReportError::EveryZero);
    }
    if query.every.is_some() && view.of_events() {
        return Err(ReportError::EveryOfEvents { view });
    }
    let table = Table::new(view, query.format.unwrap_or(Format::Csv), query.account, &mut *out);
    let mut viewer = Viewer::new(table, query.every);
    let run =
        Options { until: query.until, from_start: view.of_events() || query.every.is_some(), progress: query.progress };
    let outcome = replay(query, run, &mut viewer)?;
    report_reading(&outcome, err)?;
    viewer.at_end(&outcome.state, outcome.last_seq, query.until);
    viewer.table.finish()?;
    Ok(())
}

/// `--risk-params`: both runs and what differs.
fn what_if(query: &Query, file: &Path, out: &mut impl Write) -> Result<(), ReportError> {
    let name = file.display().to_string();
    let text = read_small_file(file, MAX_PARAMS_BYTES)
        .map_err(|source| ReportError::ParamsFile { name: name.clone(), source })?;
    let params = RiskParams::parse(&name, &text)?;
    let c = crate::whatif::run(&query.dir, &name, &params, query.until, query.progress)?;
    match query.format {
        Some(Format::Csv) => compare::csv(&c, out)?,
        Some(Format::Json) => compare::json(&c, &name, out)?,
        None => compare::table(&c, &name, out)?,
    }
    Ok(out.flush()?)
}

/// The replay of `query.dir`, its error naming the journal.
fn replay(query: &Query, run: Options, observer: &mut dyn crate::Observer) -> Result<Outcome, ReportError> {
    crate::replay(&query.dir, &Ledger::default(), run, observer)
        .map_err(|source| ReportError::Replay { dir: query.dir.clone(), source })
}

/// Reports what the replay read that is not the state: refused snapshots, a torn tail.
fn report_reading(outcome: &Outcome, err: &mut impl Write) -> io::Result<()> {
    for (path, why) in &outcome.refused_snapshots {
        writeln!(err, "l2x: refused snapshot {}: {why}", path.display())?;
    }
    if let Some(torn) = &outcome.torn {
        writeln!(
            err,
            "l2x: {}: torn record at byte offset {} ({} bytes) after seq {}: replay stops before it",
            torn.path.display(),
            torn.offset,
            torn.bytes,
            outcome.last_seq
        )?;
    }
    Ok(())
}

/// A file of at most `limit` bytes, as text (a path to something endless, like /dev/zero,
/// must not exhaust memory).
fn read_small_file(path: &Path, limit: u64) -> Result<String, FileError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|source| FileError::Open { path: path.into(), source })?;
    if file.metadata().map_err(FileError::Metadata)?.is_dir() {
        return Err(FileError::Directory { path: path.into() });
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|source| FileError::Read { path: path.into(), source })?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(FileError::TooLarge { path: path.into(), limit });
    }
    String::from_utf8(bytes).map_err(|utf8| FileError::NotUtf8 { path: path.into(), utf8 })
}
