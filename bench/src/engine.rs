//! `l2x bench engine`: the state machine alone, in process, on one instrument.
//!
//! For each mix: generate the workload ([`crate::workload`]), then
//!
//! 1. **max throughput** — `--throughput-runs` times: a fresh state machine with setup,
//!    prefill and warm-up applied (untimed), then a tight loop over the measured commands
//!    with one reused `Vec<Event>`, cleared per command; the clock is read twice per run.
//!    The best run is the figure; every run is reported.
//! 2. **latency at each offered rate** — a fresh prepared state machine, then an open-loop
//!    schedule: command `i` is due at `t0 + i / rate`. The loop spins until the command is
//!    due (or starts it at once when it is late), applies it, reads the clock, and records
//!    `completion − due` in an HDR histogram. A command that waits behind a slow one is
//!    charged the wait: this is the coordinated-omission correction, and it is what a
//!    client sending at that rate would see. `completion − start` (service time, no queueing)
//!    is recorded alongside.
//!
//! The clock is `std::time::Instant`; its cost and resolution, and the latency of the
//! open-loop harness with no work at all, are measured and reported ([`TimerReport`]).

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use hdrhistogram::Histogram;
use l2x_engine::StateMachine;
use l2x_types::{Event, Sequenced};
use serde::Serialize;

use crate::machine::{CpuMeter, Machine};
use crate::workload::{Config, Mix, Op, Stats, Workload};

/// Command-line options of `l2x bench engine`.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct Options {
    /// Command mix to run.
    #[arg(long, value_enum, default_value_t = EngineMix::All)]
    pub mix: EngineMix,
    /// Seed of the workload generator (ChaCha8): same seed, same commands.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Commands in the timed part (per run) (1 to 100,000,000).
    #[arg(long, default_value_t = 1_000_000, value_parser = crate::ranged::<usize>(1, 100_000_000))]
    pub commands: usize,
    /// Commands of the mix replayed untimed before each timed run (0 to 100,000,000).
    #[arg(long, default_value_t = 200_000, value_parser = crate::ranged::<usize>(0, 100_000_000))]
    pub warmup: usize,
    /// Resting orders in the book before the stream (held near this size) (0 to 1,000,000).
    #[arg(long, default_value_t = 1_000, value_parser = crate::ranged::<usize>(0, 1_000_000))]
    pub resting: usize,
    /// Trading accounts (1 to 10,000,000).
    #[arg(long, default_value_t = 1_000, value_parser = crate::ranged::<u32>(1, 10_000_000))]
    pub accounts: u32,
    /// Each account's deposit, USDC. The default is so large that no order is refused for
    /// margin and no account comes near maintenance; smaller deposits make accounts
    /// leveraged (some orders refused, liquidation-index trees in use) (1 to 9,223,372,036,854).
    #[arg(long, default_value_t = 1_000_000_000, value_parser = clap::value_parser!(i64).range(1..=9_223_372_036_854))]
    pub collateral: i64,
    /// Offered rates for the latency runs, commands per second (`k` and `M` suffixes allowed).
    #[arg(long, value_delimiter = ',', value_parser = parse_rate, default_value = "1M,3M,5M,10M")]
    pub rates: Vec<u64>,
    /// Max-throughput runs per mix (the best is reported as the max); with `--mix peers`, the
    /// timed rounds of the four phases (the median is reported) (1 to 100).
    #[arg(long, default_value_t = 5, value_parser = crate::ranged::<usize>(1, 100))]
    pub throughput_runs: usize,
    /// Pin the benchmark thread to this core (core_affinity) (0 to 1,023).
    #[arg(long, value_name = "CORE", value_parser = crate::ranged::<usize>(0, 1_023))]
    pub pin: Option<usize>,
    /// Print one JSON object per mix instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mix: EngineMix::All,
            seed: 42,
            commands: 1_000_000,
            warmup: 200_000,
            resting: 1_000,
            accounts: 1_000,
            collateral: crate::workload::DEFAULT_COLLATERAL_USDC,
            rates: vec![1_000_000, 3_000_000, 5_000_000, 10_000_000],
            throughput_runs: 5,
            pin: None,
            json: false,
        }
    }
}

/// Which mixes to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MixChoice {
    /// exchange-core's mix: 9 % GTC, 3 % IOC, 6 % cancel, 82 % amend, ~1,000 resting.
    ExchangeCore,
    /// 40 % GTC, 20 % IOC, 3 % FOK, 2 % market, 15 % cancel, 20 % amend: more trades.
    TakerHeavy,
    /// Both, one after the other.
    All,
}

impl MixChoice {
    /// The mixes it stands for.
    pub fn mixes(self) -> Vec<Mix> {
        match self {
            MixChoice::ExchangeCore => vec![Mix::EXCHANGE_CORE],
            MixChoice::TakerHeavy => vec![Mix::TAKER_HEAVY],
            MixChoice::All => vec![Mix::EXCHANGE_CORE, Mix::TAKER_HEAVY],
        }
    }
}

/// What `l2x bench engine --mix` runs: a generated command stream, or the peer comparison's
/// four phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineMix {
    /// exchange-core's mix: 9 % GTC, 3 % IOC, 6 % cancel, 82 % amend, ~1,000 resting.
    ExchangeCore,
    /// 40 % GTC, 20 % IOC, 3 % FOK, 2 % market, 15 % cancel, 20 % amend: more trades.
    TakerHeavy,
    /// Both, one after the other.
    All,
    /// Issue 17's four phases (add, cancel, one-fill takers, sweeps), the workload of the
    /// peer comparison: median ns per operation per phase ([`crate::peers`]).
    Peers,
}

impl EngineMix {
    /// The generated streams it stands for (`None` for `Peers`).
    pub fn streams(self) -> Option<MixChoice> {
        match self {
            EngineMix::ExchangeCore => Some(MixChoice::ExchangeCore),
            EngineMix::TakerHeavy => Some(MixChoice::TakerHeavy),
            EngineMix::All => Some(MixChoice::All),
            EngineMix::Peers => None,
        }
    }
}

/// Parses a rate such as `1000`, `500k`, `1M` or `2.5M` (commands per second).
///
/// # Errors
/// A message if the text is not a positive number with an optional `k` or `M` suffix, or
/// is above 10¹² per second.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, scale) = match t.strip_suffix(['M', 'm']) {
        Some(d) => (d, 1_000_000u64),
        None => match t.strip_suffix(['k', 'K']) {
            Some(d) => (d, 1_000),
            None => (t, 1),
        },
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let bad = || format!("{text:?} is not a rate like 1000, 500k or 2.5M");
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let mut rate: u64 = whole.parse::<u64>().map_err(|_| bad())?.checked_mul(scale).ok_or_else(bad)?;
    let mut unit = scale;
    for b in frac.bytes() {
        unit /= 10;
        if unit == 0 {
            return Err(format!("{text:?}: too many decimals"));
        }
        rate += u64::from(b - b'0') * unit;
    }
    if rate == 0 || rate > 1_000_000_000_000 {
        return Err(format!("{text:?}: the rate must be between 1 and 10^12 per second"));
    }
    Ok(rate)
}

/// Everything one `l2x bench engine` run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// The clock's own cost, and the harness with no work.
    pub timer: TimerReport,
    /// One entry per mix.
    pub mixes: Vec<MixReport>,
}

/// The figures of one mix.
#[derive(Clone, Debug, Serialize)]
pub struct MixReport {
    /// The mix's name.
    pub mix: String,
    /// Generator seed.
    pub seed: u64,
    /// Commands per timed run.
    pub commands: u64,
    /// Warm-up commands replayed (untimed) before each timed run.
    pub warmup: u64,
    /// Trading accounts.
    pub accounts: u32,
    /// Each account's deposit, USDC.
    pub collateral_usdc: i64,
    /// Target number of resting orders.
    pub resting_target: u64,
    /// What the measured commands were and did.
    pub workload: WorkloadSummary,
    /// Best of the max-throughput runs, commands per second.
    pub max_throughput_per_s: u64,
    /// The best run's mean time per command.
    pub ns_per_command: f64,
    /// Every max-throughput run, commands per second.
    pub throughput_runs_per_s: Vec<u64>,
    /// Mean cores busy with other work during the throughput runs (see [`CpuMeter`]).
    pub throughput_other_load_cores: Option<f64>,
    /// Latency at each offered rate.
    pub rates: Vec<RateReport>,
}

/// The shape of the measured commands.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadSummary {
    /// Share of each kind of command (fractions of one, as generated).
    pub composition: Composition,
    /// `trade` events per command.
    pub trades_per_command: f64,
    /// Events of any kind per command.
    pub events_per_command: f64,
    /// `rejected` events per command (zero: the stream is valid).
    pub rejects_per_command: f64,
    /// Mean resting orders during the measured part.
    pub resting_mean: f64,
    /// Fewest resting orders during the measured part.
    pub resting_min: u64,
    /// Most resting orders during the measured part.
    pub resting_max: u64,
    /// Price levels (both sides) at the end.
    pub levels_end: u64,
    /// Size of one command as the engine reads it (`Sequenced`), bytes.
    pub command_bytes: u64,
    /// Size of one event as the engine writes it (`Event`), bytes.
    pub event_bytes: u64,
}

/// Shares of the command kinds, fractions of one.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Composition {
    /// New GTC limit orders.
    pub gtc: f64,
    /// New IOC limit orders.
    pub ioc: f64,
    /// New FOK limit orders.
    pub fok: f64,
    /// New market orders.
    pub market: f64,
    /// Cancels.
    pub cancel: f64,
    /// Amends.
    pub amend: f64,
}

/// Latency at one offered rate (nanoseconds, coordinated-omission corrected).
#[derive(Clone, Debug, Serialize)]
pub struct RateReport {
    /// Commands per second offered by the open-loop schedule.
    pub offered_per_s: u64,
    /// Commands per second completed (below `offered_per_s` when saturated).
    pub achieved_per_s: u64,
    /// `true` if the engine could not keep up (achieved below 99 % of offered): the
    /// latencies then grow with the length of the run.
    pub saturated: bool,
    /// Median of completion − due.
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
    /// Service time (completion − start, no queueing): what an uncorrected benchmark shows.
    pub service: ServiceTime,
    /// Mean cores busy with other work during the run (see [`CpuMeter`]).
    pub other_load_cores: Option<f64>,
}

/// Service-time percentiles (nanoseconds).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ServiceTime {
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.99th percentile.
    pub p9999_ns: u64,
    /// Largest.
    pub max_ns: u64,
}

/// The clock's own cost and resolution, and the harness's floor.
#[derive(Clone, Debug, Serialize)]
pub struct TimerReport {
    /// What is read.
    pub clock: &'static str,
    /// Mean cost of one read, nanoseconds.
    pub ns_per_read: f64,
    /// Back-to-back reads: median difference (resolution plus cost).
    pub back_to_back_p50_ns: u64,
    /// Back-to-back reads: 99.99th percentile.
    pub back_to_back_p9999_ns: u64,
    /// Back-to-back reads: largest difference (preemption, interrupts).
    pub back_to_back_max_ns: u64,
    /// The open-loop harness with no work, at each offered rate: the floor under every
    /// latency figure (the clock's cost, and what the machine's own stalls do to the schedule).
    pub harness_floor: Vec<RateReport>,
}

/// Runs the benchmark.
///
/// # Errors
/// Bad options (no commands, no rates, no throughput run), `--mix peers` (run by
/// [`crate::peers::run`]), or a `--pin` core that does not exist or cannot be pinned to.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let Some(streams) = opts.mix.streams() else { anyhow::bail!("--mix peers is run by l2x_bench::peers::run") };
    ensure!(opts.commands > 0, "--commands must be positive");
    ensure!(opts.accounts > 0, "--accounts must be positive");
    ensure!(
        opts.collateral > 0 && opts.collateral <= 1_000_000_000_000,
        "--collateral must be between 1 and 10^12 USDC"
    );
    ensure!(opts.throughput_runs > 0, "--throughput-runs must be positive");
    ensure!(!opts.rates.is_empty(), "--rates needs at least one rate");
    // Before pinning: the affinity mask narrows what the process sees.
    let machine = Machine::detect(opts.pin);
    if let Some(core) = opts.pin {
        pin(core)?;
    }
    let timer = measure_timer(opts.commands.min(1_000_000), &opts.rates);
    let mut mixes = Vec::new();
    for mix in streams.mixes() {
        let config = Config {
            mix,
            seed: opts.seed,
            accounts: opts.accounts,
            collateral_usdc: opts.collateral,
            resting: opts.resting,
            warmup: opts.warmup,
            commands: opts.commands,
        };
        let workload = Workload::generate(&config);
        let meter = CpuMeter::start();
        let runs: Vec<Duration> = (0..opts.throughput_runs).map(|_| max_throughput(&workload)).collect();
        let throughput_other_load_cores = meter.and_then(|m| m.other_cores());
        let best = runs.iter().copied().min().context("at least one run")?;
        let rates = opts.rates.iter().map(|&rate| at_rate(&workload, rate)).collect();
        let n = workload.measured().len() as u64;
        mixes.push(MixReport {
            mix: mix.name.to_string(),
            seed: opts.seed,
            commands: n,
            warmup: opts.warmup as u64,
            accounts: opts.accounts,
            collateral_usdc: opts.collateral,
            resting_target: opts.resting as u64,
            workload: summarize(workload.stats(), n),
            max_throughput_per_s: per_second(n, best),
            ns_per_command: best.as_nanos() as f64 / n as f64,
            throughput_runs_per_s: runs.iter().map(|&d| per_second(n, d)).collect(),
            throughput_other_load_cores,
            rates,
        });
    }
    Ok(Report { machine, timer, mixes })
}

/// Pins the benchmark's thread (`--pin`).
///
/// # Errors
/// A core that does not exist or cannot be pinned to.
pub fn pin(core: usize) -> anyhow::Result<()> {
    l2x_sequencer::pin::pin_current_thread(core).with_context(|| format!("--pin {core}"))
}

fn summarize(s: &Stats, n: u64) -> WorkloadSummary {
    let n = n.max(1) as f64;
    let share = |k: Op| s.kinds[k as usize] as f64 / n;
    WorkloadSummary {
        composition: Composition {
            gtc: share(Op::Gtc),
            ioc: share(Op::Ioc),
            fok: share(Op::Fok),
            market: share(Op::Market),
            cancel: share(Op::Cancel),
            amend: share(Op::Amend),
        },
        trades_per_command: s.trades as f64 / n,
        events_per_command: s.events as f64 / n,
        rejects_per_command: s.rejects as f64 / n,
        resting_mean: s.resting_mean,
        resting_min: s.resting_min as u64,
        resting_max: s.resting_max as u64,
        levels_end: s.levels_end as u64,
        command_bytes: size_of::<Sequenced>() as u64,
        event_bytes: size_of::<Event>() as u64,
    }
}

/// `n` events in `d`, per second.
fn per_second(n: u64, d: Duration) -> u64 {
    let ns = d.as_nanos().max(1);
    u64::try_from(u128::from(n) * 1_000_000_000 / ns).unwrap_or(u64::MAX)
}

/// One tight pass over the measured commands on a freshly prepared state.
fn max_throughput(w: &Workload) -> Duration {
    let mut state = w.prepared_state();
    let elapsed = timed_pass(&mut state, w.measured());
    black_box(&state);
    elapsed
}

/// The timed loop of [`max_throughput`]: one reused event buffer, cleared per command, the
/// clock read before and after. Never inlined, so that a profiler can isolate it
/// (`valgrind --tool=callgrind --toggle-collect='*timed_pass*'`).
#[inline(never)]
fn timed_pass(state: &mut StateMachine, commands: &[Sequenced]) -> Duration {
    let mut events: Vec<Event> = Vec::with_capacity(1024);
    let mut produced = 0usize;
    let start = Instant::now();
    for cmd in commands {
        events.clear();
        state.apply(cmd, &mut events);
        produced += events.len();
    }
    let elapsed = start.elapsed();
    black_box(produced);
    elapsed
}

/// Latency of the measured commands at an offered rate, on a freshly prepared state.
fn at_rate(w: &Workload, rate: u64) -> RateReport {
    let mut state = w.prepared_state();
    let commands = w.measured();
    let mut events: Vec<Event> = Vec::with_capacity(1024);
    let report = open_loop(commands.len(), rate, |i| {
        events.clear();
        state.apply(&commands[i], &mut events);
    });
    black_box(&state);
    report
}

/// Nanoseconds since a fixed start.
struct Clock(Instant);

impl Clock {
    fn start() -> Clock {
        Clock(Instant::now())
    }

    #[inline(always)]
    fn now_ns(&self) -> u64 {
        let d = self.0.elapsed();
        d.as_secs() * 1_000_000_000 + u64::from(d.subsec_nanos())
    }
}

fn histogram() -> Histogram<u64> {
    // 1 ns to 100 s at 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// Runs `work(0..n)` on an open-loop schedule at `rate` per second and records
/// completion − due (coordinated-omission corrected) and completion − start.
fn open_loop(n: usize, rate: u64, mut work: impl FnMut(usize)) -> RateReport {
    let mut latency = histogram();
    let mut service = histogram();
    let meter = CpuMeter::start();
    let interval_ps = 1_000_000_000_000 / rate.max(1);
    let clock = Clock::start();
    // The schedule starts 10 µs from now, so that command 0 is not already late.
    let t0 = clock.now_ns() + 10_000;
    let mut due_ps = 0u64;
    let mut now = clock.now_ns();
    for i in 0..n {
        let due = t0 + due_ps / 1_000;
        due_ps += interval_ps;
        while now < due {
            std::hint::spin_loop();
            now = clock.now_ns();
        }
        // On time: the spin's last read. Late: the previous completion (no extra read).
        let start = now;
        work(i);
        let done = clock.now_ns();
        latency.saturating_record(done - due);
        service.saturating_record(done - start);
        now = done;
    }
    let other_load_cores = meter.and_then(|m| m.other_cores());
    let elapsed = Duration::from_nanos(now.saturating_sub(t0));
    let achieved = per_second(n as u64, elapsed);
    RateReport {
        offered_per_s: rate,
        achieved_per_s: achieved,
        saturated: (achieved as f64) < 0.99 * rate as f64,
        p50_ns: latency.value_at_quantile(0.5),
        p90_ns: latency.value_at_quantile(0.9),
        p99_ns: latency.value_at_quantile(0.99),
        p999_ns: latency.value_at_quantile(0.999),
        p9999_ns: latency.value_at_quantile(0.9999),
        max_ns: latency.max(),
        mean_ns: latency.mean(),
        service: ServiceTime {
            p50_ns: service.value_at_quantile(0.5),
            p99_ns: service.value_at_quantile(0.99),
            p9999_ns: service.value_at_quantile(0.9999),
            max_ns: service.max(),
        },
        other_load_cores,
    }
}

fn measure_timer(n: usize, rates: &[u64]) -> TimerReport {
    let n = n.max(1);
    let clock = Clock::start();
    let mut sink = 0u64;
    let start = Instant::now();
    for _ in 0..n {
        sink = sink.wrapping_add(clock.now_ns());
    }
    let per_read = start.elapsed().as_nanos() as f64 / n as f64;
    black_box(sink);
    let mut pairs = histogram();
    for _ in 0..n {
        let a = clock.now_ns();
        let b = clock.now_ns();
        pairs.saturating_record(b - a);
    }
    TimerReport {
        clock: "std::time::Instant (clock_gettime(CLOCK_MONOTONIC) through the vDSO)",
        ns_per_read: per_read,
        back_to_back_p50_ns: pairs.value_at_quantile(0.5),
        back_to_back_p9999_ns: pairs.value_at_quantile(0.9999),
        back_to_back_max_ns: pairs.max(),
        harness_floor: rates
            .iter()
            .map(|&rate| {
                open_loop(n, rate, |i| {
                    black_box(i);
                })
            })
            .collect(),
    }
}

#[derive(Serialize)]
struct MixLine<'a> {
    #[serde(flatten)]
    mix: &'a MixReport,
    timer: &'a TimerReport,
    machine: &'a Machine,
}

impl Report {
    /// One self-contained JSON object per mix (the mix's figures plus the timer and the
    /// machine), as `l2x bench engine --json` prints them, one per line.
    ///
    /// # Errors
    /// Serialization errors (none expected: every field is plain data).
    pub fn json_lines(&self) -> serde_json::Result<Vec<String>> {
        self.mixes
            .iter()
            .map(|mix| serde_json::to_string(&MixLine { mix, timer: &self.timer, machine: &self.machine }))
            .collect()
    }

    /// A plain-text table of every figure.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.machine.summary("pinned"));
        let t = &self.timer;
        let _ = writeln!(
            s,
            "timer:   {:.1} ns per read; back-to-back p50 {} p99.99 {} max {}",
            t.ns_per_read,
            ns(t.back_to_back_p50_ns),
            ns(t.back_to_back_p9999_ns),
            ns(t.back_to_back_max_ns),
        );
        let _ = writeln!(s, "harness with no work (the floor under every latency figure):");
        latency_header(&mut s);
        for x in &t.harness_floor {
            latency_row(&mut s, x);
        }
        for r in &self.mixes {
            let w = &r.workload;
            let c = &w.composition;
            let _ = writeln!(
                s,
                "\nmix {} (seed {}, {} commands after {} warm-up, {} accounts of {} USDC, ~{} resting)",
                r.mix, r.seed, r.commands, r.warmup, r.accounts, r.collateral_usdc, r.resting_target
            );
            let _ = writeln!(
                s,
                "  commands: gtc {:.1}% ioc {:.1}% fok {:.1}% market {:.1}% cancel {:.1}% amend {:.1}%",
                100.0 * c.gtc,
                100.0 * c.ioc,
                100.0 * c.fok,
                100.0 * c.market,
                100.0 * c.cancel,
                100.0 * c.amend
            );
            let _ = writeln!(
                s,
                "  per command: {:.3} trades, {:.2} events, {:.4} rejects; resting {:.0} mean ({}..{}), {} levels at end; {} B per command, {} B per event",
                w.trades_per_command,
                w.events_per_command,
                w.rejects_per_command,
                w.resting_mean,
                w.resting_min,
                w.resting_max,
                w.levels_end,
                w.command_bytes,
                w.event_bytes
            );
            let runs: Vec<String> = r.throughput_runs_per_s.iter().map(|&x| rate(x)).collect();
            let _ = writeln!(
                s,
                "  max throughput: {} ({:.1} ns/command; runs {}; other load {} cores)",
                rate(r.max_throughput_per_s),
                r.ns_per_command,
                runs.join(", "),
                cores(r.throughput_other_load_cores)
            );
            latency_header(&mut s);
            for x in &r.rates {
                latency_row(&mut s, x);
            }
        }
        s
    }
}

fn latency_header(s: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "  {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}  | service p50 p99 p99.99 max",
        "offered", "achieved", "p50", "p90", "p99", "p99.9", "p99.99", "max", "other"
    );
}

fn latency_row(s: &mut String, x: &RateReport) {
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "  {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}  | {} {} {} {}{}",
        rate(x.offered_per_s),
        rate(x.achieved_per_s),
        ns(x.p50_ns),
        ns(x.p90_ns),
        ns(x.p99_ns),
        ns(x.p999_ns),
        ns(x.p9999_ns),
        ns(x.max_ns),
        cores(x.other_load_cores),
        ns(x.service.p50_ns),
        ns(x.service.p99_ns),
        ns(x.service.p9999_ns),
        ns(x.service.max_ns),
        if x.saturated { "  (saturated)" } else { "" }
    );
}

/// Cores of other load, `?` if unknown.
fn cores(c: Option<f64>) -> String {
    c.map_or_else(|| "?".to_string(), |c| format!("{c:.2}"))
}

/// `1.5M/s`, `800k/s`.
fn rate(per_s: u64) -> String {
    let x = per_s as f64;
    // 999,999 prints as 1M/s, not 1000k/s.
    if x >= 999_500.0 {
        format!("{}M/s", trim(x / 1e6))
    } else if x >= 1e3 {
        format!("{}k/s", trim(x / 1e3))
    } else {
        format!("{per_s}/s")
    }
}

/// `85ns`, `1.2µs`, `3.4ms`, `1.2s`.
fn ns(v: u64) -> String {
    let x = v as f64;
    if v < 1_000 {
        format!("{v}ns")
    } else if v < 999_500 {
        format!("{}µs", trim(x / 1e3))
    } else if v < 999_500_000 {
        format!("{}ms", trim(x / 1e6))
    } else {
        format!("{}s", trim(x / 1e9))
    }
}

/// Three significant digits, no trailing zeros.
fn trim(x: f64) -> String {
    let s = if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_suffixes() {
        assert_eq!(parse_rate("1M"), Ok(1_000_000));
        assert_eq!(parse_rate("2.5M"), Ok(2_500_000));
        assert_eq!(parse_rate("500k"), Ok(500_000));
        assert_eq!(parse_rate("1234"), Ok(1_234));
        for bad in ["", "M", "0", "-1M", "1.5", "abc", "1e6", "2000000M"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn units_format_readably() {
        assert_eq!(ns(85), "85ns");
        assert_eq!(ns(1_250), "1.25µs");
        assert_eq!(ns(12_500_000), "12.5ms");
        assert_eq!(rate(10_000_000), "10M/s");
        assert_eq!(rate(3_330_000), "3.33M/s");
        assert_eq!(rate(800_000), "800k/s");
        assert_eq!(rate(999_990), "1M/s");
        assert_eq!(ns(999_900), "1ms");
    }

    /// A tiny run (no timing assertions): every documented key is in each JSON line.
    #[test]
    fn json_lines_have_the_documented_shape() {
        let opts = Options {
            commands: 2_000,
            warmup: 500,
            resting: 200,
            accounts: 50,
            rates: vec![1_000_000, 20_000_000],
            throughput_runs: 2,
            ..Options::default()
        };
        let report = run(&opts).unwrap();
        let lines = report.json_lines().unwrap();
        assert_eq!(lines.len(), 2);
        for (line, name) in lines.iter().zip(["exchange-core", "taker-heavy"]) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["mix"], name);
            assert!(v["max_throughput_per_s"].as_u64().unwrap() > 0);
            assert_eq!(v["commands"], 2_000);
            let rates = v["rates"].as_array().unwrap();
            assert_eq!(rates.len(), 2);
            assert_eq!(rates[0]["offered_per_s"], 1_000_000);
            for key in ["p50_ns", "p90_ns", "p99_ns", "p999_ns", "p9999_ns", "max_ns", "achieved_per_s"] {
                assert!(rates[1][key].is_u64(), "{key} in {line}");
            }
            assert!(v["workload"]["trades_per_command"].is_f64());
            assert!(v["timer"]["ns_per_read"].is_f64());
            assert!(v["machine"]["nproc"].is_u64());
        }
        assert!(report.table().contains("mix taker-heavy"));
    }
}
