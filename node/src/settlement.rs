//! The node's settlement: the submitter on its own thread, following the live journal.
//!
//! ```text
//!  every settlement.every_ms (and once more at the stop):
//!    PublishedSeq (what the pipeline published as readable: durable under fsync,
//!    appended under os, after an fsync of the segments written since the last pass)
//!      ─▶ Submitter::sync(chain): recompute the journal's closed epochs, write their batch
//!         files, commit what the chain lacks
//!      ─▶ SettleStatus (epochs, committed, root, last error), shared with the metrics
//!      ─▶ a line for the operator, once the node has said where it listens
//! ```
//!
//! A failed pass is kept in the status and retried on the next: the engine keeps trading
//! while settlement lags (docs/SETTLEMENT.md, "In `l2x serve`"). A committed root is
//! irreversible, so the submitter never reads past what a machine failure could not take
//! back (`live_submitter`).

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use alloy_primitives::B256;
use l2x_risk::Ledger;
use l2x_sequencer::pipeline::{Durability, Pipeline};
use l2x_settlement::chain::Chain;
use l2x_settlement::submitter::{PublishedSeq, Submitter};

use crate::config::Config;
use crate::error::{NodeError, Result};

/// What the submitter has done so far.
#[derive(Clone, Debug, Default)]
pub struct SettleStatus {
    /// Epochs the journal has closed.
    pub epochs: u64,
    /// Batches on the chain.
    pub committed: u64,
    /// The chain's last root.
    pub root: B256,
    /// The last pass's error, if it failed (the next pass retries).
    pub error: Option<String>,
}

/// Where each pass that commits something or fails is told, once the node prints them.
type Sink = Arc<Mutex<Printing>>;

/// The first lines a node prints before its output is switched on (the set-up's first
/// commits can land in the moment between the start and `print_passes`).
const EARLY_LINES: usize = 64;

/// Where pass lines go: kept (the first [`EARLY_LINES`]) until an output is given, then
/// written there, the kept ones first.
#[derive(Default)]
struct Printing {
    out: Option<Box<dyn Write + Send>>,
    early: Vec<String>,
}

/// The submitter thread: every `settlement.every_ms` it recomputes the journal's epochs and
/// commits what the chain lacks (`l2x_settlement::submitter`). Errors are kept in the status
/// and retried on the next pass — the engine keeps trading while settlement lags.
pub struct Settlement {
    status: Arc<Mutex<SettleStatus>>,
    sink: Sink,
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl std::fmt::Debug for Settlement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settlement").field("status", &self.status()).finish_non_exhaustive()
    }
}

impl Settlement {
    /// Starts the thread: `submitter` commits to `chain` every `settlement.every_ms`.
    pub(crate) fn start(
        config: &Config,
        mut chain: Box<dyn Chain + Send>,
        mut submitter: Submitter,
    ) -> std::io::Result<Settlement> {
        let every = Duration::from_millis(config.settlement.every_ms.max(1));
        let status = Arc::new(Mutex::new(SettleStatus::default()));
        let sink: Sink = Arc::new(Mutex::new(Printing::default()));
        let (stop, stopped) = mpsc::channel::<()>();
        let (shared, printing) = (Arc::clone(&status), Arc::clone(&sink));
        let thread = std::thread::Builder::new().name("l2x-submitter".into()).spawn(move || {
            loop {
                // A stop (or the node gone) ends the loop after one last pass.
                let last = !matches!(stopped.recv_timeout(every), Err(mpsc::RecvTimeoutError::Timeout));
                if let Some(line) = pass(&mut submitter, chain.as_mut(), &shared) {
                    tell(&printing, &line);
                }
                if last {
                    return;
                }
            }
        })?;
        Ok(Settlement { status, sink, stop, thread })
    }

    /// From now on, each pass that commits something or fails writes a line to `out`; the
    /// lines of such passes since the start come first (up to 64), so a commit that landed
    /// before this call is told too.
    pub fn print_passes(&self, out: Box<dyn Write + Send>) {
        switch_on(&self.sink, out);
    }

    /// The status, shared (for the metrics endpoint).
    pub(crate) fn status_handle(&self) -> Arc<Mutex<SettleStatus>> {
        Arc::clone(&self.status)
    }

    /// What the submitter has done so far.
    pub fn status(&self) -> SettleStatus {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Makes the submitter do its last pass and waits for it.
    pub(crate) fn finish(self) -> Result<SettleStatus> {
        let _ = self.stop.send(());
        self.thread.join().map_err(|_| NodeError::Panicked("submitter"))?;
        Ok(self.status.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

/// One pass of the submitter: the status updated, and the line to tell (a commit or a
/// failure; nothing for a pass that found nothing new).
fn pass(submitter: &mut Submitter, chain: &mut dyn Chain, shared: &Mutex<SettleStatus>) -> Option<String> {
    let result = submitter.sync(chain);
    let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
    match result {
        Ok(synced) => {
            *s = SettleStatus {
                epochs: synced.epochs,
                committed: synced.committed_before + synced.committed,
                root: synced.root,
                error: None,
            };
            if synced.committed == 0 {
                return None;
            }
            tracing::info!(epochs = synced.epochs, committed = synced.committed, root = %synced.root, "settled");
            Some(format!(
                "settled: {} epochs, committed {} (the chain had {}), root {}",
                synced.epochs, synced.committed, synced.committed_before, synced.root
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "settlement pass failed; trading goes on, the next pass retries");
            s.error = Some(e.to_string());
            Some(format!("settlement: {e} (trading goes on; retrying)"))
        }
    }
}

/// Gives the lines an output: the kept ones are written first.
fn switch_on(sink: &Sink, mut out: Box<dyn Write + Send>) {
    let mut printing = sink.lock().unwrap_or_else(PoisonError::into_inner);
    for line in printing.early.drain(..) {
        // Nobody reading our output is no reason to stop settling.
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    printing.out = Some(out);
}

/// Writes `line` to the output, or keeps it until there is one (the first [`EARLY_LINES`]).
fn tell(sink: &Sink, line: &str) {
    let mut guard = sink.lock().unwrap_or_else(PoisonError::into_inner);
    let printing = &mut *guard;
    match printing.out.as_mut() {
        Some(out) => {
            // Nobody reading our output is no reason to stop settling.
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        None if printing.early.len() < EARLY_LINES => printing.early.push(line.to_string()),
        None => {}
    }
}

/// The node's submitter: it reads the live journal up to what the pipeline has published
/// as readable, and never commits a root built on a record a machine failure could take
/// back (a committed root is irreversible: the journal must always reproduce it). Under
/// `durability = fsync` the published number is the durable one; under `os` it is the
/// appended one, and each pass `fsync`s the journal's segments written since the last pass
/// after reading that number and before reading the journal (docs/SETTLEMENT.md, "In
/// `l2x serve`").
pub(crate) fn live_submitter(config: &Config, pipeline: &Pipeline) -> Submitter {
    let stats = pipeline.stats_reader();
    let durable = config.pipeline.durability() == Durability::Fsync;
    let published = PublishedSeq::new(move || {
        let now = stats.stats();
        if durable { now.durable_seq } else { now.appended_seq }
    });
    let submitter = Submitter::new(
        config.data_dir.clone(),
        config.data_dir.join("batches"),
        config.settlement.policy(),
        Ledger::default(),
    )
    .posting(config.settlement.da.into())
    .reading_up_to(published);
    if durable {
        return submitter;
    }
    let mut journal = pipeline.journal_syncer();
    submitter.syncing_before_reading(move || journal.sync())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Regression (flaky `serve_settles_on_a_node_while_it_trades`): a commit that landed
    /// before `l2x serve` switched its pass lines on was never printed, and a reader waiting
    /// for it waited forever. The lines before are kept (a bounded number) and come first.
    #[test]
    fn pass_lines_before_printing_is_switched_on_are_printed_first() {
        let sink: Sink = Arc::new(Mutex::new(Printing::default()));
        tell(&sink, "settled: 1 epochs");
        tell(&sink, "settled: 2 epochs");
        let out = Shared::default();
        switch_on(&sink, Box::new(out.clone()));
        tell(&sink, "settled: 3 epochs");
        let text = String::from_utf8(out.0.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text, "settled: 1 epochs\nsettled: 2 epochs\nsettled: 3 epochs\n");
        let unread: Sink = Arc::new(Mutex::new(Printing::default()));
        for i in 0..EARLY_LINES + 10 {
            tell(&unread, &format!("line {i}"));
        }
        assert_eq!(unread.lock().unwrap_or_else(PoisonError::into_inner).early.len(), EARLY_LINES, "bounded");
    }
}
