//! `l2x`: the one command-line binary. Thin by design: each subcommand parses its flags and
//! calls a library crate.

#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a command-line program talks on stdout and stderr")]

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod config;
mod demo;
mod metrics;
mod replay;
mod serve;
mod settle;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use l2x_sequencer::journal::{self, JournalWriter};
use l2x_sequencer::scenario::Runner;

/// l2x: a deterministic perpetual-futures exchange core.
#[derive(Debug, Parser)]
#[command(name = "l2x", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a scenario: commands as JSON lines in, events as JSON lines out (docs/SCENARIOS.md).
    Match {
        /// Scenario file, or `-` for standard input.
        #[arg(long, value_parser = config::non_empty_path)]
        input: PathBuf,
        /// Write the final state (balances, margin, positions, state hash) as JSON here.
        #[arg(long, value_parser = config::non_empty_path)]
        state_out: Option<PathBuf>,
        /// Journal every applied command into this (new or empty) directory, before its
        /// events are printed (docs/JOURNAL.md).
        #[arg(long, value_parser = config::non_empty_path)]
        journal: Option<PathBuf>,
        /// With --journal: `os` (in the page cache before release) or `fsync` (on disk).
        #[arg(long, value_enum, default_value_t = config::DurabilityName::Os)]
        durability: config::DurabilityName,
        /// With --journal: write a snapshot after every N applied commands (0: none; at most
        /// 1,000,000,000,000).
        #[arg(long, default_value_t = 0, value_parser = config::ranged(0, config::MAX_SNAPSHOT_EVERY))]
        snapshot_every: u64,
    },
    /// Journal tools.
    Journal {
        #[command(subcommand)]
        which: JournalCmd,
    },
    /// Replay a journal for a risk desk: the state at any point (docs/REPLAY.md).
    Replay(replay::Options),
    /// Run the node: gateway, sequencer with risk, journal and snapshots, settlement, metrics
    /// (docs/OPERATIONS.md). Runs until SIGINT or SIGTERM, then stops cleanly.
    Serve(serve::Options),
    /// Settlement: deploy the contract, commit a journal's batches, verify roots
    /// (docs/SETTLEMENT.md).
    Settle {
        #[command(subcommand)]
        which: settle::SettleCmd,
    },
    /// Start the node on its embedded defaults, trade on it over TCP for a few seconds,
    /// settle on the embedded chain, and verify every committed root from the journal.
    Demo(demo::Options),
    /// Benchmarks (method and results: docs/BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        which: BenchCmd,
    },
}

#[derive(Debug, Subcommand)]
enum JournalCmd {
    /// Print a journal as the JSON-lines commands of `l2x match` (docs/SCENARIOS.md).
    Export {
        /// The journal directory.
        #[arg(value_parser = config::non_empty_path)]
        dir: PathBuf,
    },
    /// Cut a damaged journal at its first damage, moving everything from there on into
    /// DIR/cut-N (docs/JOURNAL.md, "When the node refuses to start"). The node must be
    /// stopped. The records after the damage are given up: run it only once you decided so.
    Truncate {
        /// The journal directory.
        #[arg(value_parser = config::non_empty_path)]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCmd {
    /// The state machine alone, in process, on one instrument: max throughput and
    /// coordinated-omission-corrected latency at fixed offered rates.
    Engine(l2x_bench::engine::Options),
    /// A liquidation cascade: leveraged accounts, one oracle shock, the engine time of the
    /// command that liquidates them all.
    Risk(l2x_bench::risk::Options),
    /// The sequencer pipeline with the journal on (durability os and fsync): throughput,
    /// coordinated-omission-corrected latency at fixed offered rates, the journal's append
    /// rate, and recovery time with and without a snapshot.
    Pipeline(l2x_bench::pipeline::Options),
    /// The gateway over loopback TCP: order-to-ack latency of N sessions at a fixed offered
    /// rate (coordinated-omission corrected), next to a raw TCP ping-pong of the same sizes.
    Wire(l2x_bench::wire::Options),
    /// Replay of a long journal (default 10M commands): decode-only and replay rates.
    Replay(l2x_bench::replay::Options),
    /// The settlement state tree: leaf updates/s and the root time of an epoch touching
    /// 100k of 1M accounts.
    Settlement(l2x_bench::settlement::Options),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("l2x: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Match { input, state_out, journal, durability, snapshot_every } => {
            let journal = journal.map(|dir| (dir, durability == config::DurabilityName::Fsync, snapshot_every));
            run_match(&input, state_out.as_deref(), journal)
        }
        Cmd::Journal { which: JournalCmd::Export { dir } } => journal_export(&dir),
        Cmd::Journal { which: JournalCmd::Truncate { dir } } => journal_truncate(&dir),
        Cmd::Replay(opts) => replay::replay(&opts),
        Cmd::Serve(opts) => serve::serve(&opts),
        Cmd::Settle { which } => settle::settle(which),
        Cmd::Demo(opts) => demo::demo(&opts),
        Cmd::Bench { which: BenchCmd::Engine(opts) } => {
            let report = l2x_bench::engine::run(&opts)?;
            print_bench(opts.json, || Ok(report.json_lines()?), || report.table())
        }
        Cmd::Bench { which: BenchCmd::Risk(opts) } => {
            let report = l2x_bench::risk::run(&opts)?;
            print_bench(opts.json, || Ok(vec![report.json()?]), || report.table())
        }
        Cmd::Bench { which: BenchCmd::Pipeline(opts) } => {
            let report = l2x_bench::pipeline::run(&opts)?;
            print_bench(opts.json, || Ok(vec![report.json()?]), || report.table())
        }
        Cmd::Bench { which: BenchCmd::Replay(opts) } => {
            let report = l2x_bench::replay::run(&opts)?;
            print_bench(opts.json, || Ok(vec![report.json()?]), || report.table())
        }
        Cmd::Bench { which: BenchCmd::Settlement(opts) } => {
            let report = l2x_bench::settlement::run(&opts)?;
            print_bench(opts.json, || Ok(vec![report.json()?]), || report.table())
        }
        Cmd::Bench { which: BenchCmd::Wire(opts) } => {
            let report = l2x_bench::wire::run(&opts)?;
            print_bench(opts.json, || Ok(vec![report.json()?]), || report.table())
        }
    }
}

/// Structured logs (`tracing`) on standard error at `level` and above. Called once, by the
/// commands that run a node.
fn logs(level: tracing::Level) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&io::stderr()))
        .with_target(false)
        .try_init();
}

/// Prints a benchmark's report: its JSON (one object per line) with `--json`, else its table.
fn print_bench(
    json: bool,
    lines: impl FnOnce() -> Result<Vec<String>>,
    table: impl FnOnce() -> String,
) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if json {
        for line in lines()? {
            writeln!(out, "{line}")?;
        }
    } else {
        write!(out, "{}", table())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `l2x match`: exit 0, or 2 when any line was reported and skipped. (A listing refused
/// `bad_instrument` is not a bad line: its reason goes to standard error, the exit status
/// stays.)
fn run_match(input: &Path, state_out: Option<&Path>, journal: Option<(PathBuf, bool, u64)>) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut err = io::stderr();
    let mut runner = Runner::new();
    if let Some((dir, fsync, snapshot_every)) = journal {
        let (writer, report) = JournalWriter::open(&dir, journal::DEFAULT_SEGMENT_BYTES)
            .with_context(|| format!("cannot open the journal in {}", dir.display()))?;
        if report.records > 0 || report.torn.is_some() {
            anyhow::bail!(
                "{} already holds a journal ({} records); `l2x match --journal` needs a new or empty directory",
                dir.display(),
                report.records
            );
        }
        runner = runner.with_journal(writer, fsync, snapshot_every);
    }
    let summary = if input.as_os_str() == "-" {
        runner.run(io::stdin().lock(), &mut out, &mut err).context("--input - (standard input)")?
    } else {
        let file = open_input(input)?;
        runner.run(BufReader::new(file), &mut out, &mut err).with_context(|| format!("--input {}", input.display()))?
    };
    runner.close_journal()?;
    out.flush()?;
    if let Some(path) = state_out {
        let text = l2x_sequencer::scenario::state_report(runner.state(), runner.last_seq()).to_json();
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if summary.errors > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// `--input FILE`, opened for reading; a directory or anything else that is not a file one
/// can read lines from is refused here, with the path (reading a directory fails later,
/// with an OS error that names nothing).
fn open_input(input: &Path) -> Result<File> {
    let meta = std::fs::metadata(input).with_context(|| format!("cannot open {} (--input)", input.display()))?;
    anyhow::ensure!(!meta.is_dir(), "--input {}: is a directory, not a scenario file", input.display());
    File::open(input).with_context(|| format!("cannot open {} (--input)", input.display()))
}

/// `l2x journal truncate DIR`: the journal cut at its first damage, what was cut kept aside.
fn journal_truncate(dir: &Path) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    match journal::truncate_at_damage(dir)? {
        None => writeln!(out, "{}: the journal reads to its end by every rule: nothing to cut", dir.display())?,
        Some(t) => {
            writeln!(out, "damage: {}", t.damage)?;
            writeln!(out, "cut at {} byte {}; the journal now ends at seq {}", t.at.0.display(), t.at.1, t.kept.seq)?;
            writeln!(out, "everything cut is in {}", t.kept_aside.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `l2x journal export DIR`: the journal as scenario lines on standard output.
fn journal_export(dir: &Path) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let exported = l2x_sequencer::scenario::export(dir, &mut out)?;
    out.flush()?;
    if exported.torn {
        eprintln!(
            "l2x: {}: the journal ends with a torn record after seq {} (not exported)",
            dir.display(),
            exported.last_seq
        );
    }
    Ok(ExitCode::SUCCESS)
}
