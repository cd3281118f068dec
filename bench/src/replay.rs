//! `l2x bench replay`: how fast a risk desk's replay reads a long journal.
//!
//! # Method
//!
//! 1. A seeded workload (`--mix`, default exchange-core; `--accounts`, `--resting`) of
//!    `--commands` commands (default 10,000,000) after its setup, generated in memory and
//!    written to a journal in a temporary directory (segments of the default size, no
//!    snapshots) — untimed.
//! 2. Decode only: `sequencer::journal::scan` over the whole journal, every record decoded and
//!    checked (CRC32C), nothing applied — the reading floor.
//! 3. Replay: `l2x_replay::replay` from the first command to the end, every command applied
//!    by the engine's state machine (matching and risk), no progress bar — what
//!    `l2x replay DIR` does. The final state hash is checked against the generator's.
//!
//! Each is run `--runs` times (default 3); the median and the range are reported, as
//! commands per second of wall time on this thread.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use l2x_risk::Ledger;
use l2x_sequencer::journal::{self, JournalWriter};
use serde::Serialize;

use crate::engine::MixChoice;
use crate::machine::{CpuMeter, Machine};
use crate::workload::{Config, Workload};

/// Options of `l2x bench replay`.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Command mix (one of them).
    #[arg(long, value_enum, default_value_t = MixChoice::ExchangeCore)]
    pub mix: MixChoice,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Commands in the journal after the setup (1 to 100,000,000).
    #[arg(long, default_value_t = 10_000_000, value_parser = crate::ranged::<usize>(1, 100_000_000))]
    pub commands: usize,
    /// Resting orders the book is held near (0 to 1,000,000).
    #[arg(long, default_value_t = 1_000, value_parser = crate::ranged::<usize>(0, 1_000_000))]
    pub resting: usize,
    /// Trading accounts (1 to 10,000,000).
    #[arg(long, default_value_t = 1_000, value_parser = crate::ranged::<u32>(1, 10_000_000))]
    pub accounts: u32,
    /// Timed runs of each part (1 to 100).
    #[arg(long, default_value_t = 3, value_parser = crate::ranged::<usize>(1, 100))]
    pub runs: usize,
    /// Where the temporary journal goes (default: the system's temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The results.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// Records in the journal.
    pub records: u64,
    /// Journal bytes (segments, as allocated).
    pub journal_bytes: u64,
    /// Decode-only rates, commands/s, one per run.
    pub decode_per_s: Vec<f64>,
    /// Replay rates, commands/s, one per run.
    pub replay_per_s: Vec<f64>,
    /// Other load on the machine during the runs, cores.
    pub other_load_cores: Option<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the benchmark.
///
/// # Errors
/// Bad options, I/O.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let [mix] = opts.mix.mixes()[..] else { anyhow::bail!("--mix: choose one mix (exchange-core or taker-heavy)") };
    anyhow::ensure!(opts.runs > 0 && opts.commands > 0, "--runs and --commands must be positive");
    let machine = Machine::detect(None);
    let config = Config {
        mix,
        seed: opts.seed,
        accounts: opts.accounts,
        collateral_usdc: crate::workload::DEFAULT_COLLATERAL_USDC,
        resting: opts.resting,
        warmup: 0,
        commands: opts.commands,
    };
    let workload = Workload::generate(&config);
    let expected = {
        let mut state = l2x_engine::StateMachine::new();
        let mut events = Vec::new();
        for cmd in workload.all() {
            events.clear();
            state.apply(cmd, &mut events);
        }
        state.canonical().hash()
    };
    let base = opts.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = crate::pipeline::temp_dir(&base, "replay")?;
    let result = (|| -> anyhow::Result<Report> {
        let (mut writer, _) = JournalWriter::open(&dir, journal::DEFAULT_SEGMENT_BYTES)?;
        for cmd in workload.all() {
            writer.append(cmd)?;
        }
        writer.sync()?;
        drop(writer);
        drop(workload);
        let journal_bytes =
            std::fs::read_dir(&dir)?.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
        let meter = CpuMeter::start();
        let (mut decode, mut replay, mut records) = (Vec::new(), Vec::new(), 0);
        for _ in 0..opts.runs {
            let t = Instant::now();
            let mut n = 0u64;
            journal::scan(&dir, |cmd| {
                n += 1;
                std::hint::black_box(&cmd);
                ControlFlow::Continue(())
            })?;
            decode.push(n as f64 / t.elapsed().as_secs_f64());
            records = n;
            let t = Instant::now();
            let opts = l2x_replay::Options { from_start: true, ..l2x_replay::Options::default() };
            let out = l2x_replay::replay(&dir, &Ledger::default(), opts, &mut ()).context("replaying")?;
            replay.push(out.replayed as f64 / t.elapsed().as_secs_f64());
            anyhow::ensure!(out.state.canonical().hash() == expected, "the replay's state hash is not the generator's");
        }
        Ok(Report {
            machine,
            records,
            journal_bytes,
            decode_per_s: decode,
            replay_per_s: replay,
            other_load_cores: meter.and_then(|m| m.other_cores()),
        })
    })();
    crate::pipeline::remove(&dir);
    result
}

impl Report {
    /// The report as one JSON object.
    ///
    /// # Errors
    /// Serialization errors (none expected).
    pub fn json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }

    /// A plain-text summary.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let m = |v: &[f64]| v.iter().map(|x| format!("{:.2}M", x / 1e6)).collect::<Vec<_>>().join(", ");
        let _ = writeln!(s, "{}", self.machine.summary("pinned"));
        let _ = writeln!(
            s,
            "journal: {} records, {:.0} MB; other load {}",
            self.records,
            self.journal_bytes as f64 / 1e6,
            self.other_load_cores.map_or("unknown".into(), |c| format!("{c:.2} cores"))
        );
        let _ = writeln!(
            s,
            "decode only: median {:.2}M commands/s ({})",
            median(&self.decode_per_s) / 1e6,
            m(&self.decode_per_s)
        );
        let _ = writeln!(
            s,
            "replay (apply, state hash checked): median {:.2}M commands/s ({})",
            median(&self.replay_per_s) / 1e6,
            m(&self.replay_per_s)
        );
        s
    }
}
