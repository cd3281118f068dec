//! `l2x`: the one command-line binary. Thin by design: each subcommand parses its flags and
//! calls a library crate.

#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a command-line program talks on stdout and stderr")]

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use l2x_engine::scenario::Runner;

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
        #[arg(long)]
        input: PathBuf,
        /// Write the final state (balances, margin, positions, state hash) as JSON here.
        #[arg(long)]
        state_out: Option<PathBuf>,
    },
    /// Run a short built-in scenario through the engine and show what happened.
    Demo,
    /// Benchmarks (method and results: docs/BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        which: BenchCmd,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCmd {
    /// The state machine alone, in process, on one instrument: max throughput and
    /// coordinated-omission-corrected latency at fixed offered rates.
    Engine(l2x_bench::engine::Options),
    /// The sequencer pipeline with the journal on (durability os and fsync): throughput,
    /// coordinated-omission-corrected latency at fixed offered rates, the journal's append
    /// rate, and recovery time with and without a snapshot.
    Pipeline(l2x_bench::pipeline::Options),
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
        Cmd::Match { input, state_out } => run_match(&input, state_out.as_deref()),
        Cmd::Demo => demo(),
        Cmd::Bench { which: BenchCmd::Engine(opts) } => bench_engine(&opts),
        Cmd::Bench { which: BenchCmd::Pipeline(opts) } => bench_pipeline(&opts),
    }
}

/// `l2x bench pipeline`: one JSON object with `--json`, else a table.
fn bench_pipeline(opts: &l2x_bench::pipeline::Options) -> Result<ExitCode> {
    let report = l2x_bench::pipeline::run(opts)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if opts.json {
        writeln!(out, "{}", report.json()?)?;
    } else {
        write!(out, "{}", report.table())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `l2x bench engine`: one JSON object per mix with `--json`, else a table.
fn bench_engine(opts: &l2x_bench::engine::Options) -> Result<ExitCode> {
    let report = l2x_bench::engine::run(opts)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if opts.json {
        for line in report.json_lines()? {
            writeln!(out, "{line}")?;
        }
    } else {
        write!(out, "{}", report.table())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `l2x match`: exit 0, or 2 when any line was reported and skipped.
fn run_match(input: &Path, state_out: Option<&Path>) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut err = io::stderr();
    let mut runner = Runner::new();
    let summary = if input.as_os_str() == "-" {
        runner.run(io::stdin().lock(), &mut out, &mut err)?
    } else {
        let file = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
        runner.run(BufReader::new(file), &mut out, &mut err)?
    };
    out.flush()?;
    if let Some(path) = state_out {
        let report = l2x_engine::scenario::state_report(runner.state(), runner.last_seq());
        let mut text = serde_json::to_string_pretty(&report)?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if summary.errors > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// The built-in scenario of `l2x demo` (a golden scenario of the engine's tests).
const DEMO_SCENARIO: &str = include_str!("../../engine/tests/scenarios/basic_matching.jsonl");

fn demo() -> Result<ExitCode> {
    let mut runner = Runner::new();
    let mut events = Vec::new();
    let mut err = Vec::new();
    let summary = runner.run(DEMO_SCENARIO.as_bytes(), &mut events, &mut err)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "l2x demo: the built-in matching scenario, command by command\n")?;
    let events = String::from_utf8_lossy(&events);
    for (n, line) in DEMO_SCENARIO.lines().enumerate() {
        let seq = n + 1;
        writeln!(out, "> {line}")?;
        let tag = format!("\"seq\":{seq},");
        for ev in events.lines().filter(|e| e.contains(&tag)) {
            writeln!(out, "    {ev}")?;
        }
    }
    let state = runner.state();
    writeln!(
        out,
        "\n{} commands applied, {} orders resting, state hash {}",
        summary.applied,
        state.resting_count(),
        state.canonical().hash()
    )?;
    out.write_all(&err)?;
    Ok(ExitCode::SUCCESS)
}
