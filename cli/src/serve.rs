//! `l2x serve`: the node — the gateway's order-entry and market-data ports, the sequencer
//! pipeline with risk, its journal and snapshots, the settlement submitter on its own
//! thread, and the metrics endpoint — run by one config file (`crate::config`,
//! docs/OPERATIONS.md) until SIGINT or SIGTERM.
//!
//! ```text
//!  config (TOML, or the defaults) + --data-dir/--order-entry/--market-data/--metrics
//!    ─▶ Pipeline::start (recover the journal) ─▶ Server::start (rebuild report streams)
//!         new journal? list the config's instruments, set their oracle prices, fund every
//!         key's account (all through the server's Control, so the gateway announces them)
//!    ─▶ ticker thread: nothing sequenced for pipeline.idle_tick_ms? sequence a Tick
//!    ─▶ submitter thread: every settlement.every_ms, Submitter::sync(chain)
//!    ─▶ metrics thread: GET /metrics on its loopback port
//!  SIGINT/SIGTERM ─▶ Node::stop: the ticker stopped, sessions logged out (orders kept), the
//!    pipeline drained and the journal synced, a snapshot of the final state, the
//!    submitter's last pass
//! ```
//!
//! The journal holds every command before its result is sent (in the page cache with
//! `durability = "os"`, on disk with `fsync`), so even SIGKILL loses nothing a client saw
//! acknowledged; the next start recovers and clients replay. A clean stop adds the final
//! snapshot, so the next start recovers without replaying the journal's tail.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use alloy::primitives::B256;
use anyhow::{Context, Result};
use l2x_gateway::auth::Keys;
use l2x_gateway::server::{Config as ServerConfig, Control, Server};
use l2x_node::config::{ChainKind, Config, Overrides};
use l2x_node::keys::{check_accounts, keys};
use l2x_risk::Ledger;
use l2x_sequencer::journal;
use l2x_sequencer::pipeline::{Config as PipelineConfig, Pipeline, StatsReader};
use l2x_settlement::chain::{Chain, RpcChain};
use l2x_settlement::embedded::EmbeddedChain;
use l2x_settlement::submitter::{PublishedSeq, Submitter};
use l2x_types::{Amount, Command, Holder, InstrumentId};

use crate::metrics::Metrics;

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
}

impl Options {
    /// The config file (or the defaults) with the overrides applied.
    fn config(&self) -> Result<Config> {
        let overrides = Overrides {
            data_dir: self.data_dir.clone(),
            order_entry: self.order_entry,
            market_data: self.market_data,
            metrics: self.metrics,
        };
        Ok(Config::with_overrides(self.config.as_deref(), &overrides)?)
    }
}

/// A running node: the pipeline, the gateway over it, the submitter (if settling) and the
/// metrics endpoint (if enabled).
pub(crate) struct Node {
    pub(crate) server: Server,
    pipeline: Pipeline,
    data_dir: PathBuf,
    /// The journal's last command when the node started (0: a new journal).
    pub(crate) recovered_seq: u64,
    pub(crate) settlement: Option<Settlement>,
    pub(crate) metrics: Option<Metrics>,
    ticker: Ticker,
}

/// What a clean stop did.
#[derive(Debug)]
pub(crate) struct Stopped {
    /// The journal's last command.
    pub(crate) last_seq: u64,
    /// The state hash after it.
    pub(crate) state_hash: String,
    /// The snapshot written at the stop (none on an empty journal, or if one was there).
    pub(crate) snapshot: Option<PathBuf>,
    /// The submitter's status after its last pass.
    pub(crate) settled: Option<SettleStatus>,
    /// The final state.
    pub(crate) state: l2x_engine::StateMachine,
}

impl Node {
    /// Starts the node `config` describes with `keys`: recovers (or creates) the journal,
    /// starts the gateway, lists the instruments, sets their oracle prices and funds the
    /// keys' accounts on a new journal, then starts the submitter (unless `chain = "none"`)
    /// and the metrics endpoint.
    pub(crate) fn start(config: &Config, keys: Keys) -> Result<Node> {
        check_accounts(config, &keys)?;
        // A port in use stops the node before anything is written.
        let metrics = config.ports.metrics_enabled.then(|| Metrics::bind(config.ports.metrics)).transpose()?;
        let dir = &config.data_dir;
        anyhow::ensure!(!dir.is_file(), "data_dir {}: is a file, not a directory", dir.display());
        std::fs::create_dir_all(dir)
            .with_context(|| format!("data_dir {}: cannot create the directory", dir.display()))?;
        // The chain too (a missing key, a bad URL, a chain directory in use).
        let chain = match config.settlement.chain {
            ChainKind::None => None,
            _ => Some(open_chain(config)?),
        };
        let ledger = Ledger::default();
        let p = &config.pipeline;
        let pipeline_config = PipelineConfig {
            durability: p.durability(),
            wait: p.wait(),
            input_capacity: p.input_capacity,
            snapshot_every: p.snapshot_every,
            ledger: ledger.clone(),
            cores: p.cores(),
            ..PipelineConfig::default()
        };
        let (mut pipeline, recovery) = Pipeline::start(pipeline_config, dir)
            .with_context(|| format!("starting the pipeline on {}", dir.display()))?;
        if let Some(torn) = &recovery.torn {
            tracing::warn!(?torn, "the journal ended with a torn record: truncated");
        }
        let server_config = ServerConfig {
            order_entry: config.ports.order_entry,
            market_data: config.ports.market_data,
            limits: config.gateway.limits(),
            max_outbound_bytes: config.gateway.max_outbound_bytes,
            core: config.gateway.core,
        };
        let server = Server::start(server_config, keys.clone(), &mut pipeline, &ledger)?;
        if recovery.last_seq == 0 {
            let control = server.control();
            let submit = |cmd: Command| control.submit(cmd).map_err(|e| anyhow::anyhow!("{e}"));
            for (i, (spec, price)) in config.listings()?.into_iter().enumerate() {
                submit(Command::ListInstrument(Box::new(spec)))?;
                submit(Command::Oracle { instrument: InstrumentId(u32::try_from(i)?), price })?;
            }
            let mut funded = std::collections::BTreeSet::new();
            for key in keys.iter() {
                let usdc = config.accounts.deposit_for(key.account.0);
                if funded.insert(key.account) && usdc > 0 {
                    let amount = Amount(i64::try_from(usdc.saturating_mul(1_000_000)).context("a deposit too large")?);
                    submit(Command::Deposit { to: Holder::Account(key.account), amount })?;
                }
            }
            tracing::info!(dir = %dir.display(), "new journal: instruments listed, accounts funded");
        } else {
            tracing::info!(dir = %dir.display(), last_seq = recovery.last_seq, "journal recovered");
        }
        let settlement = match chain {
            Some(chain) => Some(Settlement::start(config, chain, live_submitter(config, &pipeline))?),
            None => None,
        };
        let idle = std::time::Duration::from_millis(config.pipeline.idle_tick_ms);
        let ticker = Ticker::start(idle, server.control(), pipeline.stats_reader())?;
        let mut node = Node {
            server,
            pipeline,
            data_dir: dir.clone(),
            recovered_seq: recovery.last_seq,
            settlement,
            metrics: None,
            ticker,
        };
        if let Some(listener) = metrics {
            let sources = crate::metrics::Sources {
                gateway: node.server.counters_handle(),
                pipeline: node.pipeline.stats_reader(),
                settlement: node.settlement.as_ref().map(Settlement::status_handle),
                instruments: config.instruments.len(),
            };
            node.metrics = Some(Metrics::start(listener, sources)?);
        }
        Ok(node)
    }

    /// Stops the gateway (sessions logged out, orders kept), drains and closes the pipeline
    /// (journal synced), writes a snapshot of the final state, lets the submitter make a
    /// last pass over the whole journal, and stops the metrics endpoint. Every step runs
    /// even if one before it failed; the first error is returned.
    pub(crate) fn stop(self) -> Result<Stopped> {
        self.ticker.stop();
        let server = self.server.stop().map_err(anyhow::Error::from);
        let summary = self.pipeline.shutdown().map_err(anyhow::Error::from);
        let stopped = summary.and_then(|summary| {
            let have = journal::snapshot::list(&self.data_dir, summary.last_seq)?;
            let fresh = summary.last_seq > 0 && have.last().is_none_or(|(seq, _)| *seq < summary.last_seq);
            let snapshot = if fresh {
                Some(journal::snapshot::write(
                    &self.data_dir,
                    summary.journal,
                    summary.end,
                    &summary.state.canonical(),
                )?)
            } else {
                None
            };
            Ok(Stopped {
                last_seq: summary.last_seq,
                state_hash: summary.state_hash.to_string(),
                snapshot,
                settled: None,
                state: summary.state,
            })
        });
        let settled = self.settlement.map(Settlement::finish).transpose();
        if let Some(m) = self.metrics {
            m.stop();
        }
        let (mut stopped, settled) = (server.and(stopped)?, settled?);
        stopped.settled = settled;
        Ok(stopped)
    }
}

pub(crate) fn serve(opts: &Options) -> Result<ExitCode> {
    let config = opts.config()?;
    crate::logs(config.log_level.filter());
    let keys = keys(&config)?;
    // Registered before anything starts: a signal during the start stops the node after it.
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
        .context("registering the SIGINT and SIGTERM handlers")?;
    let node = Node::start(&config, keys)?;
    let fresh = node.recovered_seq == 0;
    // Nobody reading standard output is no reason to stop a node: write errors are ignored.
    let say = |line: String| {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    };
    say(format!(
        "l2x serve: journal {} (recovered to seq {}{})",
        config.data_dir.display(),
        node.recovered_seq,
        if fresh { ", new: instruments listed and accounts funded" } else { "" }
    ));
    if config.accounts.keys_file.is_none() {
        say("l2x serve: no accounts.keys_file: public demo keys 1-4 (secret = 32 bytes, each equal to the key id), loopback only"
            .into());
    }
    say(format!("order entry {}", node.server.order_entry_addr()));
    say(format!("market data {}", node.server.market_data_addr()));
    if let Some(m) = &node.metrics {
        say(format!("metrics http://{}/metrics", m.addr()));
    }
    if let Some(s) = &node.settlement {
        s.print_passes();
    }
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
    say(format!("l2x serve: {name}: stopped at seq {}, state {}", stopped.last_seq, stopped.state_hash));
    if let Some(path) = &stopped.snapshot {
        say(format!("l2x serve: final snapshot {}", path.display()));
    }
    if let Some(s) = &stopped.settled {
        say(format!("l2x serve: settlement: {} of {} epochs committed, root {}", s.committed, s.epochs, s.root));
    }
    Ok(ExitCode::SUCCESS)
}

/// The chain the config names, opened for committing.
fn open_chain(config: &Config) -> Result<Box<dyn Chain + Send>> {
    let settlement = &config.settlement;
    match (settlement.chain, &settlement.rpc) {
        (ChainKind::Rpc, Some(rpc)) => {
            let address = l2x_node::config::address(&rpc.contract)?;
            let mut chain = RpcChain::connect(&rpc.url, &rpc.key()?, address, rpc.confirmations)?;
            chain.set_policy(rpc.send_policy());
            Ok(Box::new(chain))
        }
        (ChainKind::Rpc, None) => anyhow::bail!("settlement.chain = \"rpc\" needs a [settlement.rpc] table"),
        _ => {
            let dir = config.chain_dir();
            let chain =
                EmbeddedChain::open(&dir).with_context(|| format!("the embedded chain in {}", dir.display()))?;
            Ok(Box::new(chain))
        }
    }
}

/// The node's submitter: it reads the live journal up to what the pipeline has published
/// as readable, and never commits a root built on a record a machine failure could take
/// back (a committed root is irreversible: the journal must always reproduce it). Under
/// `durability = fsync` the published number is the durable one; under `os` it is the
/// appended one, and each pass `fsync`s the journal's segments written since the last pass
/// after reading that number and before reading the journal (docs/SETTLEMENT.md, "In
/// `l2x serve`").
fn live_submitter(config: &Config, pipeline: &Pipeline) -> Submitter {
    let stats = pipeline.stats_reader();
    let durable = config.pipeline.durability() == l2x_sequencer::pipeline::Durability::Fsync;
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
    .reading_up_to(published);
    if durable {
        return submitter;
    }
    let mut journal = pipeline.journal_syncer();
    submitter.syncing_before_reading(move || journal.sync())
}

/// Sequences a [`Command::Tick`] whenever nothing was sequenced for `every`, so that
/// sequenced time passes on an idle exchange: GTD orders expire and settlement epochs
/// close on time (docs/SETTLEMENT.md, "Epochs"). The pipeline's count of sequenced commands
/// says whether anything else arrived; the tick's time is the sequencer's, like any
/// command's. So an idle node journals one tick per `every`, and none while it is busy.
struct Ticker {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Ticker {
    fn start(every: std::time::Duration, control: Control, stats: StatsReader) -> Result<Ticker> {
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
    fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::warn!("the ticker thread panicked");
        }
    }
}

/// What the submitter has done so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct SettleStatus {
    /// Epochs the journal has closed.
    pub(crate) epochs: u64,
    /// Batches on the chain.
    pub(crate) committed: u64,
    /// The chain's last root.
    pub(crate) root: B256,
    /// The last pass's error, if it failed (the next pass retries).
    pub(crate) error: Option<String>,
}

/// The submitter thread: every `settlement.every_ms` it recomputes the journal's epochs and
/// commits what the chain lacks (`settlement::submitter`). Errors are kept in the status and
/// retried on the next pass — the engine keeps trading while settlement lags.
pub(crate) struct Settlement {
    status: Arc<Mutex<SettleStatus>>,
    print: Arc<AtomicBool>,
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Settlement {
    fn start(config: &Config, mut chain: Box<dyn Chain + Send>, mut submitter: Submitter) -> Result<Settlement> {
        let every = std::time::Duration::from_millis(config.settlement.every_ms.max(1));
        let status = Arc::new(Mutex::new(SettleStatus::default()));
        let print = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let (shared, printing) = (Arc::clone(&status), Arc::clone(&print));
        let thread = std::thread::Builder::new().name("l2x-submitter".into()).spawn(move || {
            loop {
                // A stop (or the node gone) ends the loop after one last pass.
                let last = !matches!(stopped.recv_timeout(every), Err(mpsc::RecvTimeoutError::Timeout));
                let result = submitter.sync(chain.as_mut());
                let line = {
                    let mut s = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    match result {
                        Ok(synced) => {
                            *s = SettleStatus {
                                epochs: synced.epochs,
                                committed: synced.committed_before + synced.committed,
                                root: synced.root,
                                error: None,
                            };
                            if synced.committed > 0 {
                                tracing::info!(
                                    epochs = synced.epochs,
                                    committed = synced.committed,
                                    root = %synced.root,
                                    "settled"
                                );
                            }
                            (synced.committed > 0).then(|| {
                                format!(
                                    "settled: {} epochs, committed {} (the chain had {}), root {}",
                                    synced.epochs, synced.committed, synced.committed_before, synced.root
                                )
                            })
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "settlement pass failed; trading goes on, the next pass retries");
                            s.error = Some(e.to_string());
                            Some(format!("settlement: {e} (trading goes on; retrying)"))
                        }
                    }
                };
                if let Some(line) = line.filter(|_| printing.load(Ordering::Relaxed)) {
                    // Nobody reading our output is no reason to stop settling.
                    let stdout = io::stdout();
                    let mut out = stdout.lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
                if last {
                    return;
                }
            }
        })?;
        Ok(Settlement { status, print, stop, thread })
    }

    /// From now on, each pass that commits something or fails prints a line.
    fn print_passes(&self) {
        self.print.store(true, Ordering::Relaxed);
    }

    /// The status, shared (for the metrics endpoint).
    fn status_handle(&self) -> Arc<Mutex<SettleStatus>> {
        Arc::clone(&self.status)
    }

    /// What the submitter has done so far.
    pub(crate) fn status(&self) -> SettleStatus {
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Makes the submitter do its last pass and waits for it.
    fn finish(self) -> Result<SettleStatus> {
        let _ = self.stop.send(());
        self.thread.join().map_err(|_| anyhow::anyhow!("the submitter thread panicked"))?;
        Ok(self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}
