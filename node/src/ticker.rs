//! The idle ticker: sequenced time passes on an idle exchange.
//!
//! Time in the engine is the sequencer's time of the command being applied, so on a node
//! nobody trades on, GTD orders would never expire and settlement epochs would never close.
//! The ticker sequences a [`Command::Tick`] whenever nothing was sequenced for `every`
//! (docs/SETTLEMENT.md, "Epochs"). The pipeline's count of sequenced commands says whether
//! anything else arrived; the tick's time is the sequencer's, like any command's. So an
//! idle node journals one tick per `every`, and none while it is busy.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use l2x_gateway::server::Control;
use l2x_sequencer::pipeline::StatsReader;
use l2x_types::Command;

/// The ticker thread (see the module documentation).
#[derive(Debug)]
pub(crate) struct Ticker {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Ticker {
    /// Starts the thread: a tick through `control` after every `every` in which `stats`
    /// counted nothing but its own ticks.
    pub(crate) fn start(every: Duration, control: Control, stats: StatsReader) -> std::io::Result<Ticker> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("l2x-ticker".into()).spawn(move || {
            let mut seen = stats.stats().sequenced;
            // Ticks sent since `seen` was read: they do not count as activity.
            let mut ours = 0;
            while matches!(stopped.recv_timeout(every), Err(mpsc::RecvTimeoutError::Timeout)) {
                let now = stats.stats().sequenced;
                let idle = now.saturating_sub(seen) <= ours;
                (seen, ours) = (now, 0);
                if idle {
                    if control.submit(Command::Tick).is_err() {
                        return; // the pipeline is shutting down
                    }
                    ours = 1;
                }
            }
        })?;
        Ok(Ticker { stop, thread })
    }

    /// Stops the thread (before the pipeline: no tick after the gateway's last command).
    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::warn!("the ticker thread panicked");
        }
    }
}
