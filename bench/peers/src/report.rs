//! What a run of `l2x-peers` measured: per engine and phase the median ns per operation,
//! and the first engine's (l2x's) speed against each other as ratios, with their per-round
//! range.

use l2x_bench::machine::Machine;
use l2x_bench::peers::{PeerWorkload, Phase, Rounds, Shape, median};
use serde::Serialize;

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    /// Where it ran.
    pub(crate) machine: Machine,
    /// Seed of the price draws.
    pub(crate) seed: u64,
    /// The workload's sizes.
    pub(crate) shape: Shape,
    /// Timed rounds.
    pub(crate) rounds: usize,
    /// Untimed rounds before them.
    pub(crate) warmup_rounds: usize,
    /// One entry per engine, in the order named (l2x first by default).
    pub(crate) engines: Vec<EngineReport>,
    /// The first engine's speed against each other.
    pub(crate) ratios: Vec<Ratios>,
    /// Mean cores busy with other work during the timed rounds.
    pub(crate) other_load_cores: Option<f64>,
}

/// One engine's figures.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct EngineReport {
    /// Name and version.
    pub(crate) name: &'static str,
    /// How it was built and called.
    pub(crate) config: &'static str,
    /// Per phase, in running order.
    pub(crate) phases: Vec<PhaseFigure>,
    /// Median over the rounds of the four phases' total time, nanoseconds.
    pub(crate) total_median_ns: f64,
    /// Every round's phase times, nanoseconds (`ns[round][phase]`).
    pub(crate) rounds: Rounds,
}

/// One phase of one engine.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PhaseFigure {
    /// Which phase.
    pub(crate) phase: Phase,
    /// Operations in it.
    pub(crate) ops: u64,
    /// Median over the rounds of its time per operation, nanoseconds.
    pub(crate) median_ns_per_op: f64,
}

/// The first engine's speed against another: the other's median time ÷ the first's (above 1:
/// the first is faster).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Ratios {
    /// The first engine (the reference).
    pub(crate) of: &'static str,
    /// The other engine.
    pub(crate) peer: &'static str,
    /// Per phase, in running order.
    pub(crate) phases: Vec<Ratio>,
    /// The whole workload.
    pub(crate) overall: Ratio,
}

/// A ratio of medians, and the range of the same ratio taken round by round.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Ratio {
    /// The other's median ÷ the first's.
    pub(crate) of_medians: f64,
    /// Smallest per-round ratio.
    pub(crate) round_min: f64,
    /// Largest per-round ratio.
    pub(crate) round_max: f64,
}

impl EngineReport {
    pub(crate) fn new(name: &'static str, config: &'static str, w: &PeerWorkload, rounds: Rounds) -> EngineReport {
        let phases = Phase::ALL
            .iter()
            .map(|&phase| {
                let ops = w.phase(phase).len() as u64;
                PhaseFigure { phase, ops, median_ns_per_op: rounds.median_ns(phase).unwrap_or(0.0) / ops.max(1) as f64 }
            })
            .collect();
        EngineReport { name, config, phases, total_median_ns: rounds.median_total_ns().unwrap_or(0.0), rounds }
    }
}

/// `peer / first` over the rounds' values picked by `pick`.
fn ratio(first: &Rounds, peer: &Rounds, pick: impl Fn(&[u64; 4]) -> u64) -> Ratio {
    let of = |r: &Rounds| median(r.ns.iter().map(&pick).collect()).unwrap_or(0.0);
    let per_round: Vec<f64> =
        first.ns.iter().zip(&peer.ns).map(|(a, b)| pick(b) as f64 / (pick(a) as f64).max(1.0)).collect();
    Ratio {
        of_medians: of(peer) / of(first).max(1.0),
        round_min: per_round.iter().copied().fold(f64::INFINITY, f64::min),
        round_max: per_round.iter().copied().fold(0.0, f64::max),
    }
}

impl Report {
    pub(crate) fn new(
        machine: Machine,
        seed: u64,
        rounds: usize,
        warmup_rounds: usize,
        engines: Vec<EngineReport>,
        other_load_cores: Option<f64>,
    ) -> Report {
        let ratios = match engines.split_first() {
            Some((first, others)) => others
                .iter()
                .map(|p| Ratios {
                    of: first.name,
                    peer: p.name,
                    phases: Phase::ALL.iter().map(|&ph| ratio(&first.rounds, &p.rounds, |r| r[ph as usize])).collect(),
                    overall: ratio(&first.rounds, &p.rounds, |r| r.iter().sum()),
                })
                .collect(),
            None => Vec::new(),
        };
        Report { machine, seed, shape: Shape::ISSUE_17, rounds, warmup_rounds, engines, ratios, other_load_cores }
    }

    /// Two tables: median ns per operation, then the first engine's speed against each other.
    pub(crate) fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.machine.summary("pinned"));
        let _ = writeln!(
            s,
            "issue 17's workload, seed {}: median of {} rounds after {} warm-up, engines interleaved; other load {} cores",
            self.seed,
            self.rounds,
            self.warmup_rounds,
            self.other_load_cores.map_or_else(|| "?".to_string(), |c| format!("{c:.2}"))
        );
        let _ = write!(s, "\nmedian ns per operation\n{:<16} {:>7}", "phase", "ops");
        for e in &self.engines {
            let _ = write!(s, " {:>20}", e.name);
        }
        let _ = writeln!(s);
        for (i, phase) in Phase::ALL.iter().enumerate() {
            let ops = self.engines.first().map_or(0, |e| e.phases[i].ops);
            let _ = write!(s, "{:<16} {ops:>7}", phase.label());
            for e in &self.engines {
                let _ = write!(s, " {:>20.0}", e.phases[i].median_ns_per_op);
            }
            let _ = writeln!(s);
        }
        let _ = write!(s, "{:<16} {:>7}", "whole workload", "ms");
        for e in &self.engines {
            let _ = write!(s, " {:>20.2}", e.total_median_ns / 1e6);
        }
        let _ = writeln!(s);
        if let Some(first) = self.engines.first().filter(|_| !self.ratios.is_empty()) {
            let _ = writeln!(
                s,
                "\n{} speed against each other (their time / its time; per-round range in brackets)",
                first.name
            );
        }
        let _ = write!(s, "{:<16}", "phase");
        for r in &self.ratios {
            let _ = write!(s, " {:>24}", r.peer);
        }
        let _ = writeln!(s);
        let row = |s: &mut String, label: &str, pick: &dyn Fn(&Ratios) -> Ratio| {
            let _ = write!(s, "{label:<16}");
            for r in &self.ratios {
                let x = pick(r);
                let cell = format!("{:.2}× [{:.2}–{:.2}]", x.of_medians, x.round_min, x.round_max);
                let _ = write!(s, " {cell:>24}");
            }
            let _ = writeln!(s);
        };
        for (i, phase) in Phase::ALL.iter().enumerate() {
            row(&mut s, phase.label(), &|r| r.phases[i]);
        }
        row(&mut s, "overall", &|r| r.overall);
        s
    }
}
