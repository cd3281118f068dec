//! `l2x`: the one command-line binary. Thin by design: each subcommand parses its flags,
//! calls a library crate, and prints what it returns. The node, its config, settlement
//! from the command line and the demo are `l2x_node`'s; the scenario format and the journal
//! tools `l2x_sequencer`'s; replay `l2x_replay`'s; the benchmarks `l2x_bench`'s.

#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a command-line program talks on stdout and stderr")]

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

mod args;
mod demo;
mod owner;
mod replay;
mod serve;
mod settle;

use anyhow::Result;
use clap::{Parser, Subcommand};
use l2x_sequencer::journal;
use l2x_sequencer::scenario::{self, JournalOptions, MatchOptions};

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
        #[arg(long, value_parser = args::non_empty_path)]
        input: PathBuf,
        /// Write the final state (balances, margin, positions, state hash) as JSON here.
        #[arg(long, value_parser = args::non_empty_path)]
        state_out: Option<PathBuf>,
        /// Journal every applied command into this (new or empty) directory, before its
        /// events are printed (docs/JOURNAL.md).
        #[arg(long, value_parser = args::non_empty_path)]
        journal: Option<PathBuf>,
        /// With --journal: `os` (in the page cache before release) or `fsync` (on disk).
        #[arg(long, value_enum, default_value_t = args::DurabilityName::Os)]
        durability: args::DurabilityName,
        /// With --journal: write a snapshot after every N applied commands (0: none; at most
        /// 1,000,000,000,000).
        #[arg(long, default_value_t = 0, value_parser = args::ranged(0, l2x_node::config::MAX_SNAPSHOT_EVERY))]
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
        #[arg(value_parser = args::non_empty_path)]
        dir: PathBuf,
    },
    /// Cut a damaged journal at its first damage, moving everything from there on into
    /// DIR/cut-N (docs/JOURNAL.md, "When the node refuses to start"). The node must be
    /// stopped. The records after the damage are given up: run it only once you decided so.
    Truncate {
        /// The journal directory.
        #[arg(value_parser = args::non_empty_path)]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCmd {
    /// The state machine alone, in process, on one instrument: max throughput and
    /// coordinated-omission-corrected latency at fixed offered rates; with `--mix peers`,
    /// median ns per operation in each phase of the peer comparison's workload.
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
            eprintln!("l2x: {}", args::without_url_secrets(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Match { input, state_out, journal, durability, snapshot_every } => {
            let fsync = durability == args::DurabilityName::Fsync;
            let journal = journal.map(|dir| JournalOptions { dir, fsync, snapshot_every });
            let opts = MatchOptions { input: input.into(), state_out, journal };
            let summary = scenario::run_match(&opts, &mut BufWriter::new(io::stdout().lock()), &mut io::stderr())?;
            Ok(ExitCode::from(summary.exit_status()))
        }
        Cmd::Journal { which: JournalCmd::Export { dir } } => {
            scenario::export_journal(&dir, &mut BufWriter::new(io::stdout().lock()), &mut io::stderr())?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Journal { which: JournalCmd::Truncate { dir } } => {
            journal::truncate_and_report(&dir, &mut io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Replay(opts) => replay::replay(&opts),
        Cmd::Serve(opts) => serve::serve(&opts),
        Cmd::Settle { which } => settle::settle(which),
        Cmd::Demo(opts) => demo::demo(&opts),
        Cmd::Bench { which: BenchCmd::Engine(opts) } if opts.mix == l2x_bench::engine::EngineMix::Peers => {
            let report = l2x_bench::peers::run(&opts)?;
            print_bench(opts.json, || Ok(vec![report.json()?]), || report.table())
        }
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
