//! `l2x serve`: runs [`l2x_node::Node`] (docs/OPERATIONS.md) until SIGINT or SIGTERM.
//!
//! ```text
//!  --config FILE (or the defaults) + --data-dir/--order-entry/--market-data/--metrics
//!    ─▶ Config::with_overrides ─▶ logs ─▶ keys ─▶ signal handlers ─▶ Node::start
//!    ─▶ where it listens, printed; the submitter's passes printed from then on
//!  SIGINT/SIGTERM ─▶ Node::stop (a second signal exits at once) ─▶ where it stopped
//! ```
//!
//! The node is the library's; this module owns what belongs to a process: the signals,
//! standard output, and the exit.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use l2x_node::config::{Config, Overrides};
use l2x_node::{Node, keys};

/// Options of `l2x serve`: a config file, and the settings most often changed per run.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Options {
    /// The config file (TOML; docs/OPERATIONS.md, docs/l2x.example.toml). Without it: the
    /// defaults, on loopback, data in ./l2x-data.
    #[arg(long, value_parser = crate::args::non_empty_path)]
    config: Option<PathBuf>,
    /// Overrides `data_dir`.
    #[arg(long, value_parser = crate::args::non_empty_path)]
    data_dir: Option<PathBuf>,
    /// Overrides `ports.order_entry`.
    #[arg(long)]
    order_entry: Option<SocketAddr>,
    /// Overrides `ports.market_data`.
    #[arg(long)]
    market_data: Option<SocketAddr>,
    /// Overrides `ports.metrics`.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Sets `pipeline.mode = "single-thread"`: one thread, pinned to `gateway.core`, polls
    /// the sockets, sequences, journals and applies (`durability = "os"` only).
    #[arg(long)]
    single_thread: bool,
}

impl Options {
    /// The config file (or the defaults) with the overrides applied.
    fn config(&self) -> Result<Config> {
        let overrides = Overrides {
            data_dir: self.data_dir.clone(),
            order_entry: self.order_entry,
            market_data: self.market_data,
            metrics: self.metrics,
            single_thread: self.single_thread,
        };
        Ok(Config::with_overrides(self.config.as_deref(), &overrides)?)
    }
}

/// A line on standard output. Nobody reading it is no reason to stop a node: write errors
/// are ignored.
fn say(line: &str) {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

pub(crate) fn serve(opts: &Options) -> Result<ExitCode> {
    let config = opts.config()?;
    crate::logs(config.log_level.filter());
    let keys = keys::keys(&config)?;
    // Registered before anything starts: a signal during the start stops the node after it.
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
        .context("registering the SIGINT and SIGTERM handlers")?;
    let node = Node::start(&config, keys)?;
    started(&config, &node);
    let signal = signals.forever().next().unwrap_or(signal_hook::consts::SIGTERM);
    let name = if signal == signal_hook::consts::SIGINT { "SIGINT" } else { "SIGTERM" };
    tracing::info!(signal = name, "stopping: draining the pipeline (a second signal exits at once)");
    // A second signal while the stop runs (a settlement pass waiting on a slow node, say)
    // exits at once: the journal already holds everything acknowledged, as after a kill.
    std::thread::Builder::new().name("l2x-signals".into()).spawn(move || {
        if signals.forever().next().is_some() {
            tracing::warn!("second signal: exiting without finishing the stop");
            std::process::exit(130);
        }
    })?;
    let stopped = node.stop()?;
    say(&format!("l2x serve: {name}: stopped at seq {}, state {}", stopped.last_seq, stopped.state_hash));
    if let Some(path) = &stopped.snapshot {
        say(&format!("l2x serve: final snapshot {}", path.display()));
    }
    if let Some(s) = &stopped.settled {
        say(&format!("l2x serve: settlement: {} of {} epochs committed, root {}", s.committed, s.epochs, s.root));
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the node listens; from then on, the submitter's passes.
fn started(config: &Config, node: &Node) {
    let fresh = node.recovered_seq() == 0;
    say(&format!(
        "l2x serve: journal {} (recovered to seq {}{})",
        config.data_dir.display(),
        node.recovered_seq(),
        if fresh { ", new: instruments listed and accounts funded" } else { "" }
    ));
    if config.accounts.keys_file.is_none() {
        say(
            "l2x serve: no accounts.keys_file: public demo keys 1-4 (secret = 32 bytes, each equal to the key id), loopback only",
        );
    }
    say(&format!("order entry {}", node.server().order_entry_addr()));
    say(&format!("market data {}", node.server().market_data_addr()));
    if let Some(m) = node.metrics() {
        say(&format!("metrics http://{}/metrics", m.addr()));
    }
    if let Some(s) = node.settlement() {
        s.print_passes(Box::new(io::stdout()));
    }
}
