//! `l2x match` as one call: a scenario from a file or standard input, events to a writer,
//! with an optional journal (and snapshots) and the final state written to a file.
//!
//! ```text
//!  Input ──▶ Runner ──▶ out (event lines), err (`line N: …`)
//!              │ with a journal: each command appended before its events are written
//!              ▼
//!  the journal closed (made durable, its end recorded), out flushed, then --state-out
//! ```

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use super::{RunError, Runner, Summary, state_report};
use crate::journal::{self, JournalError, JournalWriter};

/// Where the scenario is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Standard input (the path `-`).
    Stdin,
    /// A file.
    File(PathBuf),
}

impl From<PathBuf> for Input {
    /// `-` is standard input; any other path a file.
    fn from(path: PathBuf) -> Input {
        if path.as_os_str() == "-" { Input::Stdin } else { Input::File(path) }
    }
}

impl fmt::Display for Input {
    /// As errors name it: `- (standard input)`, or the path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Stdin => f.write_str("- (standard input)"),
            Input::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Where and how a run journals the commands it applies ([`Runner::with_journal`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalOptions {
    /// The journal directory: new, or empty.
    pub dir: PathBuf,
    /// Each record flushed to disk before its events are written (`durability = fsync`).
    pub fsync: bool,
    /// A snapshot after every this many applied commands (0: none).
    pub snapshot_every: u64,
}

/// What `l2x match` runs and where it writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchOptions {
    /// The scenario.
    pub input: Input,
    /// Write the final state ([`super::StateReport`]) as JSON here.
    pub state_out: Option<PathBuf>,
    /// Journal every applied command.
    pub journal: Option<JournalOptions>,
}

/// Why `l2x match` could not run (bad lines are not errors: they are counted in
/// [`Summary`]). Messages name the flag or the path.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    /// The journal directory could not be opened.
    #[error("cannot open the journal in {}", dir.display())]
    OpenJournal {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: JournalError,
    },
    /// The journal directory already holds a journal.
    #[error(
        "{} already holds a journal ({records} records); `l2x match --journal` needs a new or empty directory",
        dir.display()
    )]
    JournalNotEmpty {
        /// The directory.
        dir: PathBuf,
        /// The records it holds.
        records: u64,
    },
    /// The input file could not be opened.
    #[error("cannot open {} (--input)", path.display())]
    OpenInput {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The input is a directory.
    #[error("--input {}: is a directory, not a scenario file", path.display())]
    InputIsDirectory {
        /// The directory.
        path: PathBuf,
    },
    /// Reading the input or writing the events failed.
    #[error("--input {input}")]
    Run {
        /// The input.
        input: Input,
        /// Why.
        #[source]
        source: RunError,
    },
    /// Closing the journal failed.
    #[error(transparent)]
    CloseJournal(JournalError),
    /// Flushing the events failed.
    #[error(transparent)]
    Output(io::Error),
    /// The final state could not be written.
    #[error("cannot write {}", path.display())]
    StateOut {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl Summary {
    /// The exit status of `l2x match`: 0, or 2 when any line was reported and skipped. (A
    /// listing refused `bad_instrument` is not a bad line: its reason is reported, the
    /// status stays.)
    pub fn exit_status(&self) -> u8 {
        if self.errors > 0 { 2 } else { 0 }
    }
}

/// Runs the scenario `opts.input` (`l2x match`, docs/SCENARIOS.md): events to `out`, bad
/// lines and refused listings to `err`; with a journal, every applied command journaled
/// before its events are written, and the journal closed at the end; then `out` flushed and
/// the final state written.
///
/// # Errors
/// [`MatchError`]: the journal directory (it must be new or empty), the input, I/O.
pub fn run_match(opts: &MatchOptions, out: &mut impl Write, err: &mut impl Write) -> Result<Summary, MatchError> {
    let mut runner = Runner::new();
    if let Some(j) = &opts.journal {
        runner = runner.with_journal(open_journal(&j.dir)?, j.fsync, j.snapshot_every);
    }
    let run = |source| MatchError::Run { input: opts.input.clone(), source };
    let summary = match &opts.input {
        Input::Stdin => runner.run(io::stdin().lock(), out, err).map_err(run)?,
        Input::File(path) => runner.run(BufReader::new(open_input(path)?), out, err).map_err(run)?,
    };
    runner.close_journal().map_err(MatchError::CloseJournal)?;
    out.flush().map_err(MatchError::Output)?;
    if let Some(path) = &opts.state_out {
        let text = state_report(runner.state(), runner.last_seq()).to_json();
        std::fs::write(path, text).map_err(|source| MatchError::StateOut { path: path.clone(), source })?;
    }
    Ok(summary)
}

/// A journal writer on `dir`, which must hold no journal yet.
fn open_journal(dir: &Path) -> Result<JournalWriter, MatchError> {
    let (writer, report) = JournalWriter::open(dir, journal::DEFAULT_SEGMENT_BYTES)
        .map_err(|source| MatchError::OpenJournal { dir: dir.into(), source })?;
    if report.records > 0 || report.torn.is_some() {
        return Err(MatchError::JournalNotEmpty { dir: dir.into(), records: report.records });
    }
    Ok(writer)
}

/// The input file, opened for reading; a directory or anything else that is not a file one
/// can read lines from is refused here, with the path (reading a directory fails later,
/// with an OS error that names nothing).
fn open_input(path: &Path) -> Result<File, MatchError> {
    let open = |source| MatchError::OpenInput { path: path.into(), source };
    let meta = std::fs::metadata(path).map_err(open)?;
    if meta.is_dir() {
        return Err(MatchError::InputIsDirectory { path: path.into() });
    }
    File::open(path).map_err(open)
}
