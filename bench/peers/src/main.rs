//! `l2x-peers`: l2x against the Rust order-book crates a user would pick instead — lobster
//! 0.7, matchcore 0.4 and orderbook-rs 0.15 — on one workload, interleaved in one process
//! run, reported as ratios (issue 17). Outside the product: a workspace member that nothing
//! depends on and that `cargo build` (default member `cli`) does not build.
//!
//! ```sh
//! cargo run --release -p l2x-peers                      # the table
//! cargo run --release -p l2x-peers -- --pin 0 --json    # one JSON object
//! ```
//!
//! # Method
//!
//! ```text
//!  PeerWorkload (seed) ─▶ each engine builds its own commands (untimed, once)
//!
//!  round r:  engines in rotated order (r mod 4 first)
//!            ├─ reset: a fresh book (untimed)
//!            └─ A │ B │ C │ D   each phase one loop between two clock reads; fills checked
//!  warm-up rounds are discarded; medians over the timed rounds
//! ```
//!
//! | step | what |
//! |---|---|
//! | workload | [`l2x_bench::peers`]: (A) 100,000 resting limit orders, (B) 20,000 cancels, (C) 20,000 one-fill takers, (D) 200 sweeps of 100 fills; the same orders for every engine |
//! | commands | built before any round, in each engine's own types; the timed loop reads a prebuilt slice |
//! | l2x | `StateMachine::apply` with risk on (margin checks, positions, fees, liquidation index, events) |
//! | peers | their documented entry points with the configuration most favourable to them ([`lobster`], [`matchcore`], [`orderbook_rs`]); each consumes its result (counts the fills) as a caller must |
//! | rounds | `--warmup-rounds` (default 1) untimed, then `--rounds` (default 11) timed; in round `r` the engines run in the order rotated by `r`, so that each runs first, second, third and last equally often and the machine's drift hits all alike; `--engines` runs a subset, or one engine alone, in the order named |
//! | figure | per engine and phase, the median over the timed rounds of the phase's time divided by its operations; the whole workload: the median of the rounds' total time |
//! | ratio | the first engine's (l2x's by default) speed against each other = the other's median ÷ the first's (above 1: the first is faster); the per-round ratios' range is printed beside it |
//! | checks | after every phase of every round (untimed) each engine's fills and resting orders equal the workload's; any refusal or mismatch stops the run |
//!
//! The clock is read only around a whole phase: at ~30 ns a read, per-operation timing
//! would be a large part of a 100–300 ns operation.

#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark reads the wall clock (Instant::now); the state machine it times never does"
)]
#![allow(clippy::print_stdout, reason = "a command-line program prints its report on stdout")]

mod contender;
mod lobster;
mod matchcore;
mod orderbook_rs;
mod report;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use l2x_bench::machine::{CpuMeter, Machine};
use l2x_bench::peers::{PeerWorkload, Phase, Rounds, Shape};

use crate::contender::Contender;
use crate::report::{EngineReport, Report};

/// l2x against lobster, matchcore and orderbook-rs on issue 17's four-phase workload.
#[derive(Debug, Parser)]
#[command(name = "l2x-peers", version, about)]
struct Options {
    /// Timed rounds (each engine runs the four phases once per round) (1 to 1,000).
    #[arg(long, default_value_t = 11, value_parser = l2x_bench::ranged::<usize>(1, 1_000))]
    rounds: usize,
    /// Untimed rounds before them (0 to 100).
    #[arg(long, default_value_t = 1, value_parser = l2x_bench::ranged::<usize>(0, 100))]
    warmup_rounds: usize,
    /// Seed of the workload's price draws (ChaCha8).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The engines to run, each once; the first is the ratios' reference.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "l2x,lobster,matchcore,orderbook-rs")]
    engines: Vec<EngineName>,
    /// Pin the benchmark thread to this core (0 to 1,023).
    #[arg(long, value_name = "CORE", value_parser = l2x_bench::ranged::<usize>(0, 1_023))]
    pin: Option<usize>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// An engine of `--engines`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum EngineName {
    /// l2x's state machine with risk.
    L2x,
    /// lobster 0.7.
    Lobster,
    /// matchcore 0.4.
    Matchcore,
    /// orderbook-rs 0.15.
    OrderbookRs,
}

fn main() -> ExitCode {
    let opts = Options::parse();
    match run(&opts).and_then(|r| print(&r, opts.json)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "l2x-peers: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(report)?)?;
    } else {
        write!(out, "{}", report.table())?;
    }
    Ok(out.flush()?)
}

/// The engines named, in the order named, their commands built.
fn contenders(w: &PeerWorkload, names: &[EngineName]) -> Vec<Box<dyn Contender>> {
    names
        .iter()
        .map(|name| -> Box<dyn Contender> {
            match name {
                EngineName::L2x => Box::new(contender::L2x::new(w)),
                EngineName::Lobster => Box::new(lobster::Lobster::new(w)),
                EngineName::Matchcore => Box::new(matchcore::Matchcore::new(w)),
                EngineName::OrderbookRs => Box::new(orderbook_rs::OrderbookRs::new(w)),
            }
        })
        .collect()
}

fn run(opts: &Options) -> anyhow::Result<Report> {
    let machine = Machine::detect(opts.pin);
    if let Some(core) = opts.pin {
        l2x_bench::engine::pin(core)?;
    }
    for (i, e) in opts.engines.iter().enumerate() {
        anyhow::ensure!(!opts.engines[..i].contains(e), "--engines: {e:?} named twice");
    }
    let w = PeerWorkload::generate(&Shape::ISSUE_17, opts.seed);
    let mut engines = contenders(&w, &opts.engines);
    let n = engines.len();
    let mut rounds = vec![Rounds::default(); n];
    let mut meter = None;
    for r in 0..opts.warmup_rounds + opts.rounds {
        if r == opts.warmup_rounds {
            meter = CpuMeter::start();
        }
        for k in 0..n {
            let i = (r + k) % n;
            let times = round(engines[i].as_mut(), &w)?;
            if r >= opts.warmup_rounds {
                rounds[i].push(times);
            }
        }
    }
    let other_load_cores = meter.and_then(|m| m.other_cores());
    let engines =
        engines.iter().zip(rounds).map(|(e, rounds)| EngineReport::new(e.name(), e.config(), &w, rounds)).collect();
    Ok(Report::new(machine, opts.seed, opts.rounds, opts.warmup_rounds, engines, other_load_cores))
}

/// One round of one engine: a fresh book (untimed), then the four phases, each timed; after
/// each, untimed, its fills and the orders left resting are checked.
fn round(engine: &mut dyn Contender, w: &PeerWorkload) -> anyhow::Result<[Duration; 4]> {
    engine.reset();
    let mut times = [Duration::ZERO; 4];
    for phase in Phase::ALL {
        let start = Instant::now();
        let fills = engine.run(phase)?;
        times[phase as usize] = start.elapsed();
        anyhow::ensure!(
            fills == w.expected_fills(phase),
            "{}, phase {}: {fills} fills, expected {}",
            engine.name(),
            phase.label(),
            w.expected_fills(phase)
        );
        let resting = engine.resting_orders();
        anyhow::ensure!(
            resting == w.expected_resting(phase),
            "{}, after phase {}: {resting} orders rest, expected {}",
            engine.name(),
            phase.label(),
            w.expected_resting(phase)
        );
    }
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [EngineName; 4] = [EngineName::L2x, EngineName::Lobster, EngineName::Matchcore, EngineName::OrderbookRs];

    /// Each engine on the tiny workload: the fills of every phase and the orders resting
    /// after it are the workload's, twice in a row (a reset really starts afresh).
    #[test]
    fn every_engine_fills_and_rests_what_the_workload_says() {
        let w = PeerWorkload::generate(&Shape::TINY, 3);
        for mut engine in contenders(&w, &ALL) {
            for _ in 0..2 {
                engine.reset();
                assert_eq!(engine.resting_orders(), 0, "{}", engine.name());
                for phase in Phase::ALL {
                    let fills = engine.run(phase).unwrap();
                    assert_eq!(fills, w.expected_fills(phase), "{} {phase:?}", engine.name());
                    assert_eq!(engine.resting_orders(), w.expected_resting(phase), "{} {phase:?}", engine.name());
                }
            }
        }
    }

    /// The harness on the tiny workload: one report row per engine, ratios against l2x.
    #[test]
    fn a_round_checks_fills_and_reports_every_engine() {
        let w = PeerWorkload::generate(&Shape::TINY, 3);
        let mut engines = contenders(&w, &ALL);
        let mut rounds = vec![Rounds::default(); engines.len()];
        for (e, r) in engines.iter_mut().zip(&mut rounds) {
            r.push(round(e.as_mut(), &w).unwrap());
        }
        let reports: Vec<EngineReport> =
            engines.iter().zip(rounds).map(|(e, r)| EngineReport::new(e.name(), e.config(), &w, r)).collect();
        let report = Report::new(Machine::detect(None), 3, 1, 0, reports, None);
        assert_eq!(report.engines.len(), 4);
        assert_eq!(report.ratios.len(), 3);
        let table = report.table();
        for name in ["l2x", "lobster 0.7.0", "matchcore 0.4.0", "orderbook-rs 0.15.3", "D sweep", "whole workload"] {
            assert!(table.contains(name), "{name} in\n{table}");
        }
    }
}
