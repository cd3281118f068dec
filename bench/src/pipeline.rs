//! `l2x bench pipeline`: the whole sequencer pipeline with the journal on, the journal's
//! append rate alone, and recovery time.
//!
//! ```text
//!  client thread (the harness)                       pipeline threads
//!  ──────────────────────────                        ────────────────
//!  submit(tag = command index) ──▶ input ring ──▶ sequencer (journal append, apply)
//!  try_recv reports  ◀── reports ring ◀─────────────┤   ▲ fsync: group commit thread
//!  try_recv market data ◀── market-data ring ◀──────┘   │   (durable watermark)
//! ```
//!
//! One client thread submits and drains both outputs, as a gateway's event loop would; the
//! pipeline runs its own threads (sequencer, group commit with `durability = fsync`,
//! snapshot). Every run starts a fresh pipeline on an empty journal in a new temporary
//! directory, feeds it the workload's setup, prefill and warm-up commands (untimed, waiting
//! until every one was reported), then times the measured commands:
//!
//! 1. **max throughput** — submit as fast as the input ring takes commands, drain whatever is
//!    released; the clock is read when the first measured command is submitted and when its
//!    last report is received.
//! 2. **latency at an offered rate** — command `i` is due at `t0 + i / rate`; the client
//!    submits every command that is due (a full input ring makes it wait: the command keeps
//!    its due time), and when it receives a command's report it records
//!    `received − due` in an HDR histogram. Queueing anywhere (input ring, sequencer,
//!    waiting for an `fsync`, the client itself) is charged: coordinated-omission corrected.
//! 3. **journal append** — `JournalWriter::append` of the measured commands in a tight loop
//!    into a new journal (segment creation and first-touch page faults included).
//! 4. **recovery** — a journal of `--recovery-commands` commands written with
//!    `JournalWriter`, then `journal::recover` timed without a snapshot, and with a snapshot
//!    half a snapshot interval before the end.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use hdrhistogram::Histogram;
use l2x_risk::Ledger;
use l2x_sequencer::journal::{self, DEFAULT_SEGMENT_BYTES, JournalWriter, snapshot};
use l2x_sequencer::pipeline::{Config as PipelineConfig, Cores, Durability, Pipeline, Stats, Tag, WaitStrategy};
use l2x_types::{Command, Sequenced};
use serde::Serialize;

use crate::engine::{MixChoice, parse_rate};
use crate::machine::{CpuMeter, Machine};
use crate::workload::{Config, Workload};

/// Command-line options of `l2x bench pipeline`.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct Options {
    /// Command mix (one of them; `all` is not accepted here).
    #[arg(long, value_enum, default_value_t = MixChoice::ExchangeCore)]
    pub mix: MixChoice,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Commands in the timed part of a throughput run (1 to 100,000,000).
    #[arg(long, default_value_t = 1_000_000, value_parser = crate::ranged::<usize>(1, 100_000_000))]
    pub commands: usize,
    /// Warm-up commands fed through the pipeline, untimed, before each run (0 to 100,000,000).
    #[arg(long, default_value_t = 200_000, value_parser = crate::ranged::<usize>(0, 100_000_000))]
    pub warmup: usize,
    /// Resting orders in the book (0 to 1,000,000).
    #[arg(long, default_value_t = 1_000, value_parser = crate::ranged::<usize>(0, 1_000_000))]
    pub resting: usize,
    /// Trading accounts (1 to 10,000,000).
    #[arg(long, default_value_t = 1_000, value_parser = crate::ranged::<u32>(1, 10_000_000))]
    pub accounts: u32,
    /// Durability modes to run (`os`, `fsync`).
    #[arg(long, value_delimiter = ',', value_enum, default_value = "os,fsync")]
    pub durability: Vec<DurabilityChoice>,
    /// The pipeline's wait strategy.
    #[arg(long, value_enum, default_value_t = WaitChoice::Park)]
    pub wait: WaitChoice,
    /// Offered rates for the latency runs (`k` and `M` suffixes allowed).
    #[arg(long, value_delimiter = ',', value_parser = parse_rate, default_value = "100k,1M,2M")]
    pub rates: Vec<u64>,
    /// Length of each latency run, seconds of offered load (at most `--commands` commands) (1 to 3,600).
    #[arg(long, default_value_t = 2, value_parser = crate::ranged::<u64>(1, 3_600))]
    pub latency_seconds: u64,
    /// Max-throughput runs per durability mode (the best is the figure) (1 to 100).
    #[arg(long, default_value_t = 3, value_parser = crate::ranged::<usize>(1, 100))]
    pub throughput_runs: usize,
    /// Slots of each ring (input, reports, market data) (1 to 1,048,576).
    #[arg(long, default_value_t = 16_384, value_parser = crate::ranged::<usize>(1, 1_048_576))]
    pub capacity: usize,
    /// Take a snapshot every this many commands during the pipeline runs (0: never) (0 to 1,000,000,000,000).
    #[arg(long, default_value_t = 0, value_parser = crate::ranged::<u64>(0, 1_000_000_000_000))]
    pub snapshot_every: u64,
    /// Commands in the recovery journal (0 skips the recovery measurement; at most 1G).
    #[arg(long, value_parser = parse_count, default_value = "10M")]
    pub recovery_commands: u64,
    /// In the recovery-with-snapshot case, the snapshot is this many commands before the
    /// journal's end (half of a snapshot interval of 1M) (0 to 1,000,000,000).
    #[arg(long, default_value_t = 500_000, value_parser = crate::ranged::<u64>(0, 1_000_000_000))]
    pub recovery_tail: u64,
    /// Directory for the temporary journals (default: the system's temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Pin the client (harness) thread to this core (0 to 1,023).
    #[arg(long, value_name = "CORE", value_parser = crate::ranged::<usize>(0, 1_023))]
    pub pin_client: Option<usize>,
    /// Pin the sequencer thread to this core (0 to 1,023).
    #[arg(long, value_name = "CORE", value_parser = crate::ranged::<usize>(0, 1_023))]
    pub pin_sequencer: Option<usize>,
    /// Pin the group-commit thread to this core (0 to 1,023).
    #[arg(long, value_name = "CORE", value_parser = crate::ranged::<usize>(0, 1_023))]
    pub pin_group_commit: Option<usize>,
    /// Measure recovery only (no pipeline runs, no append rate).
    #[arg(long)]
    pub recovery_only: bool,
    /// Drop the market-data receiver (the sequencer then publishes execution reports only).
    #[arg(long)]
    pub no_market_data: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mix: MixChoice::ExchangeCore,
            seed: 42,
            commands: 1_000_000,
            warmup: 200_000,
            resting: 1_000,
            accounts: 1_000,
            durability: vec![DurabilityChoice::Os, DurabilityChoice::Fsync],
            wait: WaitChoice::Park,
            rates: vec![100_000, 1_000_000, 2_000_000],
            latency_seconds: 2,
            throughput_runs: 3,
            capacity: 16_384,
            snapshot_every: 0,
            recovery_commands: 10_000_000,
            recovery_tail: 500_000,
            dir: None,
            pin_client: None,
            pin_sequencer: None,
            pin_group_commit: None,
            no_market_data: false,
            recovery_only: false,
            json: false,
        }
    }
}

/// `--durability` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityChoice {
    /// Released once in the journal's mapping.
    Os,
    /// Released once an `fsync` covers it (group commit).
    Fsync,
}

impl DurabilityChoice {
    fn mode(self) -> Durability {
        match self {
            DurabilityChoice::Os => Durability::Os,
            DurabilityChoice::Fsync => Durability::Fsync,
        }
    }
}

/// `--wait` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum WaitChoice {
    /// Spin.
    BusySpin,
    /// Spin, then yield.
    SpinThenYield,
    /// Spin, yield, then park.
    Park,
}

impl WaitChoice {
    fn strategy(self) -> WaitStrategy {
        match self {
            WaitChoice::BusySpin => WaitStrategy::BusySpin,
            WaitChoice::SpinThenYield => WaitStrategy::SpinThenYield,
            WaitChoice::Park => WaitStrategy::Park,
        }
    }
}

/// Everything one `l2x bench pipeline` run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// The mix.
    pub mix: String,
    /// Generator seed.
    pub seed: u64,
    /// Measured commands per throughput run.
    pub commands: u64,
    /// Warm-up commands per run (untimed).
    pub warmup: u64,
    /// The wait strategy.
    pub wait: WaitChoice,
    /// Ring capacity.
    pub capacity: usize,
    /// Where the journals were written.
    pub dir: String,
    /// `JournalWriter::append` alone (absent with `--recovery-only`).
    pub append: Option<AppendReport>,
    /// One entry per durability mode.
    pub modes: Vec<ModeReport>,
    /// Recovery times (absent with `--recovery-commands 0`).
    pub recovery: Option<RecoveryReport>,
}

/// The journal's append rate.
#[derive(Clone, Debug, Serialize)]
pub struct AppendReport {
    /// Best of three runs, commands per second.
    pub per_s: u64,
    /// Bytes per second at that rate.
    pub bytes_per_s: u64,
    /// Mean record size, bytes.
    pub record_bytes: f64,
    /// Every run, commands per second.
    pub runs_per_s: Vec<u64>,
}

/// The figures of one durability mode.
#[derive(Clone, Debug, Serialize)]
pub struct ModeReport {
    /// `os` or `fsync`.
    pub durability: DurabilityChoice,
    /// Best max-throughput run, commands per second.
    pub max_throughput_per_s: u64,
    /// Every run, commands per second.
    pub throughput_runs_per_s: Vec<u64>,
    /// Mean cores busy with other work during the throughput runs.
    pub throughput_other_load_cores: Option<f64>,
    /// The pipeline's counters at the end of the best throughput run.
    pub throughput_stats: StatsSummary,
    /// Latency at each offered rate.
    pub rates: Vec<RateReport>,
}

/// Pipeline counters at the end of a run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct StatsSummary {
    /// The sequencer's busy time per command (its service time; waits for input excluded), ns.
    pub sequencer_ns_per_command: f64,
    /// `fsync`s (group commits).
    pub fsyncs: u64,
    /// Commands per `fsync`.
    pub commands_per_fsync: f64,
    /// Mean duration of an `fsync`, ns.
    pub fsync_mean_ns: u64,
    /// Longest `fsync`, ns.
    pub fsync_max_ns: u64,
    /// Times the sequencer found the reports ring full.
    pub reports_full_waits: u64,
    /// Times the sequencer found the market-data ring full.
    pub market_data_full_waits: u64,
    /// Snapshots taken (written or skipped).
    pub snapshots: u64,
    /// The sequencer's longest snapshot pause, ns.
    pub snapshot_max_pause_ns: u64,
    /// The sequencer's mean snapshot pause, ns.
    pub snapshot_mean_pause_ns: u64,
}

impl StatsSummary {
    fn of(stats: &Stats) -> StatsSummary {
        StatsSummary {
            sequencer_ns_per_command: stats.sequencer_busy_ns as f64 / stats.sequenced.max(1) as f64,
            fsyncs: stats.fsyncs,
            commands_per_fsync: if stats.fsyncs == 0 { 0.0 } else { stats.sequenced as f64 / stats.fsyncs as f64 },
            fsync_mean_ns: stats.fsync_total_ns.checked_div(stats.fsyncs).unwrap_or(0),
            fsync_max_ns: stats.fsync_max_ns,
            reports_full_waits: stats.reports.full_waits,
            market_data_full_waits: stats.market_data.full_waits,
            snapshots: stats.snapshots_taken + stats.snapshots_skipped,
            snapshot_max_pause_ns: stats.snapshot_max_pause_ns,
            snapshot_mean_pause_ns: stats
                .snapshot_total_pause_ns
                .checked_div(stats.snapshots_taken + stats.snapshots_skipped)
                .unwrap_or(0),
        }
    }
}

/// Latency at one offered rate, submit-due to report-received, nanoseconds.
#[derive(Clone, Debug, Serialize)]
pub struct RateReport {
    /// Offered commands per second.
    pub offered_per_s: u64,
    /// Completed commands per second.
    pub achieved_per_s: u64,
    /// `true` if achieved is below 99 % of offered.
    pub saturated: bool,
    /// Commands in the run.
    pub commands: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// 99.99th percentile.
    pub p9999_ns: u64,
    /// Largest.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Pipeline counters at the end.
    pub stats: StatsSummary,
    /// Mean cores busy with other work during the run.
    pub other_load_cores: Option<f64>,
}

/// Recovery of a long journal.
#[derive(Clone, Debug, Serialize)]
pub struct RecoveryReport {
    /// Commands in the journal.
    pub commands: u64,
    /// Journal size on disk (segment files, as allocated), bytes.
    pub journal_bytes: u64,
    /// Writing it with `JournalWriter::append` (untimed part of the set-up, for scale), s.
    pub write_s: f64,
    /// `journal::recover` with no snapshot: seconds.
    pub full_s: f64,
    /// Commands replayed per second without a snapshot.
    pub full_per_s: u64,
    /// The snapshot's sequence number.
    pub snapshot_seq: u64,
    /// The snapshot file's size, bytes.
    pub snapshot_bytes: u64,
    /// `journal::recover` from the snapshot plus the tail: seconds.
    pub with_snapshot_s: f64,
    /// Commands replayed after the snapshot.
    pub with_snapshot_replayed: u64,
    /// Both recoveries reached the same state hash.
    pub same_hash: bool,
    /// Mean cores busy with other work during the two timed recoveries.
    pub other_load_cores: Option<f64>,
}

/// Runs the benchmark.
///
/// # Errors
/// Bad options, I/O errors on the temporary journals, a pipeline error, or a `--pin-*` core
/// that does not exist.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    ensure!(opts.commands > 0, "--commands must be positive");
    ensure!(opts.throughput_runs > 0, "--throughput-runs must be positive");
    ensure!(opts.capacity > 0, "--capacity must be positive");
    let mix = match opts.mix.mixes().as_slice() {
        [one] => *one,
        _ => bail!("--mix: choose one mix (exchange-core or taker-heavy)"),
    };
    let machine = Machine::detect(opts.pin_client);
    if let Some(core) = opts.pin_client {
        crate::engine::pin(core)?;
    }
    let base = opts.dir.clone().unwrap_or_else(std::env::temp_dir);
    let config = Config {
        mix,
        seed: opts.seed,
        accounts: opts.accounts,
        collateral_usdc: crate::workload::DEFAULT_COLLATERAL_USDC,
        resting: opts.resting,
        warmup: opts.warmup,
        commands: opts.commands,
    };
    let workload =
        Workload::generate(&if opts.recovery_only { Config { warmup: 0, commands: 0, ..config } } else { config });
    let append = if opts.recovery_only { None } else { Some(append_rate(&base, workload.measured())?) };
    let mut modes = Vec::new();
    let durability: &[DurabilityChoice] = if opts.recovery_only { &[] } else { &opts.durability };
    for &choice in durability {
        modes.push(measure_mode(opts, choice, &base, &workload)?);
    }
    drop(workload);
    let recovery = if opts.recovery_commands > 0 { Some(recovery(&base, opts, mix)?) } else { None };
    Ok(Report {
        machine,
        mix: mix.name.to_string(),
        seed: opts.seed,
        commands: opts.commands as u64,
        warmup: opts.warmup as u64,
        wait: opts.wait,
        capacity: opts.capacity,
        dir: base.display().to_string(),
        append,
        modes,
        recovery,
    })
}

/// One durability mode: the throughput runs, then one latency run per offered rate.
fn measure_mode(
    opts: &Options,
    choice: DurabilityChoice,
    base: &Path,
    workload: &Workload,
) -> anyhow::Result<ModeReport> {
    let pipeline_config = PipelineConfig {
        durability: choice.mode(),
        wait: opts.wait.strategy(),
        input_capacity: opts.capacity,
        reports_capacity: opts.capacity,
        market_data_capacity: opts.capacity,
        snapshot_every: opts.snapshot_every,
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        ledger: Ledger::default(),
        cores: Cores { sequencer: opts.pin_sequencer, group_commit: opts.pin_group_commit, snapshot: None },
        ..PipelineConfig::default()
    };
    let meter = CpuMeter::start();
    let mut runs = Vec::new();
    for _ in 0..opts.throughput_runs {
        runs.push(drive(base, &pipeline_config, workload, workload.measured().len(), None, !opts.no_market_data)?);
    }
    let other = meter.and_then(|m| m.other_cores());
    let best = runs.iter().min_by_key(|r| r.elapsed).context("at least one run")?;
    let n = workload.measured().len() as u64;
    let mut rates = Vec::new();
    for &rate in &opts.rates {
        rates.push(latency_at(opts, rate, base, &pipeline_config, workload)?);
    }
    Ok(ModeReport {
        durability: choice,
        max_throughput_per_s: per_second(n, best.elapsed),
        throughput_runs_per_s: runs.iter().map(|r| per_second(n, r.elapsed)).collect(),
        throughput_other_load_cores: other,
        throughput_stats: StatsSummary::of(&best.stats),
        rates,
    })
}

/// One latency run at an offered rate, `--latency-seconds` long (at most the whole workload).
fn latency_at(
    opts: &Options,
    rate: u64,
    base: &Path,
    pipeline_config: &PipelineConfig,
    workload: &Workload,
) -> anyhow::Result<RateReport> {
    let count = usize::try_from(rate.saturating_mul(opts.latency_seconds))
        .unwrap_or(usize::MAX)
        .clamp(1, workload.measured().len());
    let meter = CpuMeter::start();
    let run = drive(base, pipeline_config, workload, count, Some(rate), !opts.no_market_data)?;
    let h = run.latency.context("a latency run records latencies")?;
    let achieved = per_second(count as u64, run.elapsed);
    Ok(RateReport {
        offered_per_s: rate,
        achieved_per_s: achieved,
        saturated: (achieved as f64) < 0.99 * rate as f64,
        commands: count as u64,
        p50_ns: h.value_at_quantile(0.5),
        p90_ns: h.value_at_quantile(0.9),
        p99_ns: h.value_at_quantile(0.99),
        p999_ns: h.value_at_quantile(0.999),
        p9999_ns: h.value_at_quantile(0.9999),
        max_ns: h.max(),
        mean_ns: h.mean(),
        stats: StatsSummary::of(&run.stats),
        other_load_cores: meter.and_then(|m| m.other_cores()),
    })
}

/// A count such as `0`, `500k` or `10M`.
fn parse_count(text: &str) -> Result<u64, String> {
    const MAX: u64 = 1_000_000_000;
    match text.trim() {
        "0" => Ok(0),
        _ => parse_rate(text)
            .and_then(|n| if n <= MAX { Ok(n) } else { Err(format!("{text:?}: at most {MAX} commands (1G)")) }),
    }
}

/// `n` in `d`, per second.
fn per_second(n: u64, d: Duration) -> u64 {
    let ns = d.as_nanos().max(1);
    u64::try_from(u128::from(n) * 1_000_000_000 / ns).unwrap_or(u64::MAX)
}

fn histogram() -> Histogram<u64> {
    // 1 ns to 100 s at 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// A fresh temporary directory under `base`.
pub(crate) fn temp_dir(base: &Path, what: &str) -> anyhow::Result<PathBuf> {
    for k in 0..1_000u32 {
        let dir = base.join(format!("l2x-bench-{what}-{}-{k}", std::process::id()));
        if std::fs::create_dir(&dir).is_ok() {
            return Ok(dir);
        }
    }
    bail!("cannot create a temporary directory under {}", base.display())
}

/// Removes a temporary directory (a failure only leaves files behind).
pub(crate) fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// What one pipeline run measured.
struct Run {
    elapsed: Duration,
    latency: Option<Histogram<u64>>,
    stats: Stats,
}

/// Feeds the workload's untimed prefix, then the first `count` measured commands, through a
/// fresh pipeline: as fast as possible (`rate = None`), or on an open-loop schedule.
fn drive(
    base: &Path,
    config: &PipelineConfig,
    workload: &Workload,
    count: usize,
    rate: Option<u64>,
    market_data: bool,
) -> anyhow::Result<Run> {
    let dir = temp_dir(base, "pipeline")?;
    let result = drive_in(&dir, config, workload, count, rate, market_data);
    remove(&dir);
    result
}

fn drive_in(
    dir: &Path,
    config: &PipelineConfig,
    workload: &Workload,
    count: usize,
    rate: Option<u64>,
    market_data: bool,
) -> anyhow::Result<Run> {
    let (mut pipeline, _) = Pipeline::start(config.clone(), dir)?;
    let mut reports = pipeline.reports().context("reports receiver")?;
    let mut market = pipeline.market_data().filter(|_| market_data);
    let input = pipeline.input();
    let setup = workload.all().len() - workload.measured().len();
    let prefix: Vec<Command> = workload.all()[..setup].iter().map(|c| c.cmd.clone()).collect();
    let measured: Vec<Command> = workload.measured()[..count].iter().map(|c| c.cmd.clone()).collect();

    // Untimed: set-up, prefill and warm-up, until every one was reported.
    let mut received = 0usize;
    let mut next = 0usize;
    while received < prefix.len() {
        while next < prefix.len() {
            let tag = Tag { session: 0, correlation: next as u64 };
            match input.submit(tag, prefix[next].clone()) {
                Ok(()) => next += 1,
                Err(_) => break,
            }
        }
        while reports.try_recv().is_ok() {
            received += 1;
        }
        while market.as_mut().is_some_and(|m| m.try_recv().is_ok()) {}
    }

    let clock = Instant::now();
    let now_ns = || u64::try_from(clock.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let mut latency = rate.map(|_| histogram());
    let interval_ps = rate.map_or(0, |r| 1_000_000_000_000 / r.max(1));
    // The schedule starts 10 µs from now.
    let t0 = now_ns() + 10_000;
    let due = |i: usize| t0 + (i as u64).saturating_mul(interval_ps) / 1_000;
    let mut next = 0usize;
    let mut received = 0usize;
    let mut idle = 0u32;
    let start = now_ns();
    while received < count {
        let now = if rate.is_some() { now_ns() } else { 0 };
        let before = (next, received);
        while next < count && (rate.is_none() || due(next) <= now) {
            let tag = Tag { session: 1, correlation: next as u64 };
            match input.submit(tag, measured[next].clone()) {
                Ok(()) => next += 1,
                Err(_) => break,
            }
        }
        while let Ok(batch) = reports.try_recv() {
            if let Some(h) = latency.as_mut() {
                let done = now_ns();
                let i = usize::try_from(batch.tag.correlation).unwrap_or(usize::MAX);
                h.saturating_record(done.saturating_sub(due(i)));
            }
            received += 1;
        }
        while market.as_mut().is_some_and(|m| m.try_recv().is_ok()) {}
        if (next, received) == before {
            // Nothing moved: do not hammer the rings' indexes (the sequencer writes them),
            // and after a while give the core away (two cores, more threads than that).
            idle += 1;
            if idle.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                for _ in 0..16 {
                    std::hint::spin_loop();
                }
            }
        } else {
            idle = 0;
        }
    }
    let end = now_ns();
    let stats = pipeline.stats();
    drop(input);
    drop(reports);
    drop(market);
    pipeline.shutdown()?;
    let elapsed = Duration::from_nanos(if rate.is_some() { end.saturating_sub(t0) } else { end - start });
    Ok(Run { elapsed, latency, stats })
}

/// `JournalWriter::append` of `commands`, best of three fresh journals.
fn append_rate(base: &Path, commands: &[Sequenced]) -> anyhow::Result<AppendReport> {
    let mut runs = Vec::new();
    let mut bytes = 0u64;
    for _ in 0..3 {
        let dir = temp_dir(base, "append")?;
        let (mut writer, _) = JournalWriter::open(&dir, DEFAULT_SEGMENT_BYTES)?;
        let start = Instant::now();
        for cmd in commands {
            writer.append(cmd)?;
        }
        let elapsed = start.elapsed();
        drop(writer);
        bytes = commands.iter().map(|c| journal::encoded_len(c) as u64).sum();
        remove(&dir);
        runs.push(elapsed);
    }
    let best = runs.iter().copied().min().context("three runs")?;
    let n = commands.len() as u64;
    Ok(AppendReport {
        per_s: per_second(n, best),
        bytes_per_s: per_second(bytes, best),
        record_bytes: bytes as f64 / n.max(1) as f64,
        runs_per_s: runs.iter().map(|&d| per_second(n, d)).collect(),
    })
}

/// Writes a journal of `--recovery-commands` commands of the mix and times recovery.
fn recovery(base: &Path, opts: &Options, mix: crate::workload::Mix) -> anyhow::Result<RecoveryReport> {
    let total = usize::try_from(opts.recovery_commands).context("--recovery-commands")?;
    let config = Config {
        mix,
        seed: opts.seed,
        accounts: opts.accounts,
        collateral_usdc: crate::workload::DEFAULT_COLLATERAL_USDC,
        resting: opts.resting,
        warmup: 0,
        commands: total.saturating_sub(opts.resting + opts.accounts as usize + 2),
    };
    let workload = Workload::generate(&config);
    let commands = workload.all();
    let dir = temp_dir(base, "recovery")?;
    let result = (|| {
        let start = Instant::now();
        let (mut writer, _) = JournalWriter::open(&dir, DEFAULT_SEGMENT_BYTES)?;
        for cmd in commands {
            writer.append(cmd)?;
        }
        writer.sync()?;
        drop(writer);
        let write_s = start.elapsed().as_secs_f64();
        let journal_bytes =
            journal::segments(&dir)?.iter().map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum();
        let ledger = Ledger::default();

        let meter = CpuMeter::start();
        let start = Instant::now();
        let (full, _, report) = journal::recover(&dir, DEFAULT_SEGMENT_BYTES, &ledger)?;
        let full_s = start.elapsed().as_secs_f64();
        ensure!(report.snapshot.is_none(), "no snapshot expected");
        let n = report.last_seq;
        let full_hash = full.canonical().hash();
        drop(full);

        let snapshot_seq = n.saturating_sub(opts.recovery_tail).max(1);
        let (at, at_report) = journal::replay(&dir, Some(snapshot_seq), &ledger)?;
        let id = journal::Journal::open(&dir)?.id();
        let path = snapshot::write(&dir, id, at_report.last, &at.canonical())?;
        drop(at);
        let full_load = meter.and_then(|m| m.other_cores());
        let snapshot_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let meter = CpuMeter::start();
        let start = Instant::now();
        let (from_snapshot, _, report) = journal::recover(&dir, DEFAULT_SEGMENT_BYTES, &ledger)?;
        let with_snapshot_s = start.elapsed().as_secs_f64();
        let snapshot_load = meter.and_then(|m| m.other_cores());
        ensure!(report.snapshot.as_ref().map(|(s, _)| *s) == Some(snapshot_seq), "the snapshot was not used");
        Ok(RecoveryReport {
            commands: n,
            journal_bytes,
            write_s,
            full_s,
            full_per_s: per_second(n, Duration::from_secs_f64(full_s)),
            snapshot_seq,
            snapshot_bytes,
            with_snapshot_s,
            with_snapshot_replayed: report.replayed,
            same_hash: from_snapshot.canonical().hash() == full_hash,
            other_load_cores: match (full_load, snapshot_load) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
        })
    })();
    remove(&dir);
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

    /// A plain-text table of every figure.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.machine.summary("client pinned"));
        let _ = writeln!(
            s,
            "mix {} (seed {}), {} measured commands after {} warm-up; wait {:?}; rings of {}; journals in {}",
            self.mix, self.seed, self.commands, self.warmup, self.wait, self.capacity, self.dir
        );
        if let Some(a) = &self.append {
            let _ = writeln!(
                s,
                "journal append alone: {} ({:.0} MB/s, {:.1} B per record; runs {})",
                rate(a.per_s),
                a.bytes_per_s as f64 / 1e6,
                a.record_bytes,
                a.runs_per_s.iter().map(|&x| rate(x)).collect::<Vec<_>>().join(", ")
            );
        }
        for mode in &self.modes {
            mode.table(&mut s);
        }
        if let Some(r) = &self.recovery {
            let _ = writeln!(
                s,
                "\nrecovery of {} commands ({:.0} MB of segments, written in {:.1} s; other load {}):\n  no snapshot: {:.2} s ({})\n  snapshot at {} ({:.1} MB) + {} commands: {:.2} s; same state hash: {}",
                r.commands,
                r.journal_bytes as f64 / 1e6,
                r.write_s,
                cores(r.other_load_cores),
                r.full_s,
                rate(r.full_per_s),
                r.snapshot_seq,
                r.snapshot_bytes as f64 / 1e6,
                r.with_snapshot_replayed,
                r.with_snapshot_s,
                r.same_hash
            );
        }
        s
    }
}

impl ModeReport {
    /// This mode's lines of [`Report::table`].
    fn table(&self, s: &mut String) {
        use std::fmt::Write as _;
        let st = &self.throughput_stats;
        let _ = writeln!(
            s,
            "\ndurability {:?}: max throughput {} (runs {}; other load {}); sequencer busy {:.0} ns/command; {} fsyncs ({:.0} commands each), rings full {}/{} times",
            self.durability,
            rate(self.max_throughput_per_s),
            self.throughput_runs_per_s.iter().map(|&x| rate(x)).collect::<Vec<_>>().join(", "),
            cores(self.throughput_other_load_cores),
            st.sequencer_ns_per_command,
            st.fsyncs,
            st.commands_per_fsync,
            st.reports_full_waits,
            st.market_data_full_waits,
        );
        if st.snapshots > 0 {
            let _ = writeln!(
                s,
                "  snapshots: {} taken, sequencer pause mean {} max {}",
                st.snapshots,
                ns(st.snapshot_mean_pause_ns),
                ns(st.snapshot_max_pause_ns)
            );
        }
        let _ = writeln!(
            s,
            "  {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>9} {:>8} {:>8}",
            "offered", "achieved", "p50", "p90", "p99", "p99.9", "p99.99", "max", "other", "cmd/fsync", "fsync", "max"
        );
        for x in &self.rates {
            let _ = writeln!(
                s,
                "  {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>9.0} {:>8} {:>8}{}",
                rate(x.offered_per_s),
                rate(x.achieved_per_s),
                ns(x.p50_ns),
                ns(x.p90_ns),
                ns(x.p99_ns),
                ns(x.p999_ns),
                ns(x.p9999_ns),
                ns(x.max_ns),
                cores(x.other_load_cores),
                x.stats.commands_per_fsync,
                ns(x.stats.fsync_mean_ns),
                ns(x.stats.fsync_max_ns),
                if x.saturated { "  (saturated)" } else { "" }
            );
        }
    }
}

fn cores(c: Option<f64>) -> String {
    c.map_or_else(|| "?".to_string(), |c| format!("{c:.2}"))
}

fn rate(per_s: u64) -> String {
    let x = per_s as f64;
    if x >= 999_500.0 {
        format!("{:.2}M/s", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k/s", x / 1e3)
    } else {
        format!("{per_s}/s")
    }
}

fn ns(v: u64) -> String {
    let x = v as f64;
    if v < 1_000 {
        format!("{v}ns")
    } else if v < 999_500 {
        format!("{:.1}µs", x / 1e3)
    } else if v < 999_500_000 {
        format!("{:.2}ms", x / 1e6)
    } else {
        format!("{:.2}s", x / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny run (no timing assertions): both modes, a latency run, recovery; the JSON has
    /// the documented keys.
    #[test]
    fn a_tiny_run_reports_every_figure() {
        let opts = Options {
            commands: 3_000,
            warmup: 500,
            resting: 100,
            accounts: 20,
            rates: vec![200_000],
            latency_seconds: 1,
            throughput_runs: 1,
            capacity: 256,
            snapshot_every: 1_000,
            recovery_commands: 5_000,
            recovery_tail: 1_000,
            ..Options::default()
        };
        let report = run(&opts).unwrap();
        let v: serde_json::Value = serde_json::from_str(&report.json().unwrap()).unwrap();
        assert!(v["append"]["per_s"].as_u64().unwrap() > 0);
        assert!(v["modes"][0]["throughput_stats"]["sequencer_ns_per_command"].as_f64().unwrap() > 0.0);
        assert_eq!(v["modes"].as_array().unwrap().len(), 2);
        for mode in v["modes"].as_array().unwrap() {
            assert!(mode["max_throughput_per_s"].as_u64().unwrap() > 0);
            assert_eq!(mode["rates"][0]["offered_per_s"], 200_000);
            assert!(mode["rates"][0]["p99_ns"].is_u64());
        }
        assert!(v["modes"][1]["throughput_stats"]["fsyncs"].as_u64().unwrap() > 0);
        assert_eq!(v["recovery"]["same_hash"], true);
        assert!(report.table().contains("recovery of"));
    }
}
