//! One trait over the engines compared, and l2x's side of it.
//!
//! | method | timed | what it does |
//! |---|---|---|
//! | [`Contender::reset`] | no | drops the previous book and makes a fresh one (l2x: the setup applied) |
//! | [`Contender::run`] | yes, one clock read before and after | every operation of one phase, prebuilt, through the engine's own entry point; counts the fills it reports |
//! | [`Contender::resting_orders`] | no | orders resting now (checked after every phase) |
//!
//! Each engine's commands are built in its constructor, before any round: the timed loop
//! only reads a prebuilt slice and hands each element to the engine.

use l2x_bench::peers::{L2xRun, PeerWorkload, Phase};
use l2x_engine::StateMachine;
use l2x_types::Event;

/// An engine driven through the four phases.
pub(crate) trait Contender {
    /// Its name and pinned version, as the table shows it.
    fn name(&self) -> &'static str;
    /// How it is built and called (the configuration a user would pick), for the report.
    fn config(&self) -> &'static str;
    /// A fresh, empty book (untimed).
    fn reset(&mut self);
    /// Runs every operation of `phase`; returns the fills the engine reported.
    ///
    /// # Errors
    /// An operation the engine refused (none should be).
    fn run(&mut self, phase: Phase) -> anyhow::Result<u64>;
    /// Orders resting now.
    fn resting_orders(&self) -> u64;
}

/// l2x: `StateMachine::apply` with risk on ([`L2xRun`]).
pub(crate) struct L2x {
    run: L2xRun,
    state: StateMachine,
    events: Vec<Event>,
}

impl L2x {
    pub(crate) fn new(w: &PeerWorkload) -> L2x {
        let run = L2xRun::new(w);
        let state = run.fresh_state();
        L2x { run, state, events: Vec::with_capacity(4096) }
    }
}

impl Contender for L2x {
    fn name(&self) -> &'static str {
        "l2x"
    }

    fn config(&self) -> &'static str {
        "StateMachine::apply with risk: 102 accounts of 10^9 USDC, fees 1/5 bp, one reused Vec<Event> cleared per command"
    }

    fn reset(&mut self) {
        self.state = self.run.fresh_state();
    }

    fn run(&mut self, phase: Phase) -> anyhow::Result<u64> {
        let count = self.run.run_phase(&mut self.state, phase, &mut self.events);
        anyhow::ensure!(count.rejects == 0, "l2x rejected {} commands", count.rejects);
        Ok(count.fills)
    }

    fn resting_orders(&self) -> u64 {
        self.state.resting_count() as u64
    }
}
