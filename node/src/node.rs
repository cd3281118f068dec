//! [`Node`]: the parts started in order and stopped in the order below, by one config.
//!
//! ```text
//!  Node::start(config, keys)
//!   1. refuse early: keys against deposits, the metrics port bound, the data directory
//!      made, the chain opened — a metrics port in use or a bad key stops the node
//!      before anything is written (the trading ports are bound in step 3, after the
//!      journal's recovery and, on a new embedded journal, the first L1 deposits: a port
//!      in use then fails the start, and the next start makes no deposit twice)
//!   2. Pipeline::start: recover the journal (newest valid snapshot, then the records
//!      after it; a torn tail truncated); with a vault, before anything is journaled:
//!        a recovered journal: bound to exactly the configured vault, or refused
//!        a new journal: a vault with committed batches refused (another journal's); on
//!        the embedded chain the first deposits not made yet made, for real, from each
//!        account's test owner (crate::funding: a failed start retries them, never twice)
//!   3. Server::start: the gateway over the pipeline, report streams rebuilt
//!   4. a new journal, through the server's Control (so the gateway announces it): with a
//!      vault, l1_bind first; the config's instruments and their oracle prices; with
//!      chain = "none", the operator's deposits (with a vault the watcher credits the
//!      queue; with chain = "rpc" the config funds nothing: owners deposit)
//!   5. with a vault: one pass of the L1 watcher on a new journal (the first deposits
//!      submitted before start returns; a client that connects while start runs can get a
//!      command in before them, and it is refused for margin) and the submitter
//!      thread; the idle ticker, the metrics endpoint; last, the L1 watcher's thread
//!  Node::stop
//!   ticker and L1 watcher stopped ─▶ gateway stopped (sessions logged out, orders kept) ─▶ pipeline
//!   drained and the journal synced ─▶ a snapshot of the final state ─▶ the submitter's
//!   last pass ─▶ the metrics endpoint stopped
//! ```
//!
//! The journal holds every command before its result is sent (in the page cache with
//! `durability = "os"`, on disk with `fsync`), so even SIGKILL loses nothing a client saw
//! acknowledged; the next start recovers and clients replay. A clean stop adds the final
//! snapshot, so the next start recovers without replaying the journal's tail.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use l2x_engine::L1State;
use l2x_gateway::auth::Keys;
use l2x_gateway::server::{Config as ServerConfig, Server};
use l2x_risk::Ledger;
use l2x_sequencer::journal::{self, RecoveryReport};
use l2x_sequencer::pipeline::{Config as PipelineConfig, Pipeline, Summary};
use l2x_types::{Amount, Command, Holder, InstrumentId, L1Binding};

use crate::chain::{Committer, NodeChain};

use crate::config::Config;
use crate::error::{NodeError, Result};
use crate::funding;
use crate::metrics::{Metrics, Sources};
use crate::settlement::{SettleStatus, Settlement, live_submitter};
use crate::ticker::Ticker;
use crate::watcher::{Source, Watch, WatchStatus, Watcher};

/// A running node: the pipeline, the gateway over it, the submitter (if settling), the idle
/// ticker and the metrics endpoint (if enabled).
#[derive(Debug)]
pub struct Node {
    server: Server,
    pipeline: Pipeline,
    data_dir: PathBuf,
    /// The journal's last command when the node started (0: a new journal).
    recovered_seq: u64,
    settlement: Option<Settlement>,
    /// The L1 watcher thread and its status, with a vault.
    watcher: Option<(Watcher, Arc<Mutex<WatchStatus>>)>,
    metrics: Option<Metrics>,
    ticker: Ticker,
}

/// What a clean stop did.
#[derive(Debug)]
pub struct Stopped {
    /// The journal's last command.
    pub last_seq: u64,
    /// The state hash after it.
    pub state_hash: String,
    /// The snapshot written at the stop (none on an empty journal, or if one was there).
    pub snapshot: Option<PathBuf>,
    /// The submitter's status after its last pass.
    pub settled: Option<SettleStatus>,
    /// The final state.
    pub state: l2x_engine::StateMachine,
}

/// What step 1 of [`Node::start`] made, before anything is written.
struct Refusals {
    metrics: Option<std::net::TcpListener>,
    chain: Option<NodeChain>,
}

impl Node {
    /// Starts the node `config` describes with `keys` (the steps of the module
    /// documentation). The config is taken as given: [`Config::load`] and
    /// [`Config::with_overrides`] check it (every number in its range, by key); a config
    /// built in code is checked only if its builder calls [`Config::check`] (the wire
    /// benchmark lifts the throttles past their configurable range on purpose).
    ///
    /// # Errors
    /// A key or deposit the config refuses, a port in use, a data directory that cannot be
    /// one, a chain that cannot be opened, a journal that does not recover, a gateway that
    /// does not start; each names what it was about.
    pub fn start(config: &Config, keys: Keys) -> Result<Node> {
        let Refusals { metrics, mut chain } = Node::refuse_early(config, &keys)?;
        let dir = &config.data_dir;
        let ledger = Ledger::default();
        let (mut pipeline, recovery) = Node::pipeline(config, &ledger)?;
        let new = recovery.last_seq == 0;
        match (chain.as_mut(), new) {
            (Some(chain), false) => check_binding(&recovery.l1, chain.binding)?,
            // Before anything is journaled: a vault with another journal's batches is
            // refused, and the first deposits are made (only those not made yet: a start
            // that failed or crashed here before journaling retries them, never twice).
            (Some(chain), true) => Node::prepare_vault(config, &keys, chain)?,
            (None, _) => {}
        }
        let server_config = ServerConfig {
            order_entry: config.ports.order_entry,
            market_data: config.ports.market_data,
            limits: config.gateway.limits(),
            max_outbound_bytes: config.gateway.max_outbound_bytes,
            core: config.gateway.core,
        };
        let server = Server::start(server_config, keys.clone(), &mut pipeline, &ledger)?;
        if new {
            Node::set_up(config, &server, &keys, chain.as_mut())?;
            tracing::info!(dir = %dir.display(), "new journal: instruments listed, accounts funded");
        } else {
            tracing::info!(dir = %dir.display(), last_seq = recovery.last_seq, "journal recovered");
        }
        let (settlement, watcher) = match chain {
            Some(chain) => {
                let watcher = Node::first_pass(config, &server, chain.source, recovery.l1.next, new);
                let submitter = live_submitter(config, &pipeline);
                (Some(Settlement::start(config, chain.committer.into_chain(), submitter)?), Some(watcher))
            }
            None => (None, None),
        };
        let idle = std::time::Duration::from_millis(config.pipeline.idle_tick_ms);
        let ticker = Ticker::start(idle, server.control(), pipeline.stats_reader())?;
        let metrics = match metrics {
            Some(listener) => {
                let sources = Sources {
                    gateway: server.counters_handle(),
                    pipeline: pipeline.stats_reader(),
                    settlement: settlement.as_ref().map(Settlement::status_handle),
                    l1_watcher: watcher.as_ref().map(Watch::status_handle),
                    instruments: config.instruments.len(),
                };
                Some(Metrics::start(listener, sources)?)
            }
            None => None,
        };
        let recovered_seq = recovery.last_seq;
        let data_dir = dir.clone();
        // Last, so that no error after it leaves the thread running.
        let every = std::time::Duration::from_millis(config.settlement.l1_poll_ms.max(1));
        let watcher = match watcher {
            Some(watch) => {
                let status = watch.status_handle();
                Some((Watcher::start(watch, every, server.control())?, status))
            }
            None => None,
        };
        Ok(Node { server, pipeline, data_dir, recovered_seq, settlement, watcher, metrics, ticker })
    }

    /// Step 1: everything that can refuse the config before anything is written.
    fn refuse_early(config: &Config, keys: &Keys) -> Result<Refusals> {
        crate::keys::check_accounts(config, keys)?;
        // A port in use stops the node before anything is written.
        let metrics = config.ports.metrics_enabled.then(|| Metrics::bind(config.ports.metrics)).transpose()?;
        let dir = &config.data_dir;
        if dir.is_file() {
            return Err(NodeError::DataDirIsFile { dir: dir.clone() });
        }
        std::fs::create_dir_all(dir).map_err(|source| NodeError::DataDir { dir: dir.clone(), source })?;
        // The chain too (a missing key, a bad URL, a chain directory in use).
        let chain = crate::chain::open_chain(config)?;
        Ok(Refusals { metrics, chain })
    }

    /// Step 2: the pipeline on the data directory, its journal recovered.
    fn pipeline(config: &Config, ledger: &Ledger) -> Result<(Pipeline, RecoveryReport)> {
        let p = &config.pipeline;
        let pipeline_config = PipelineConfig {
            durability: p.durability(),
            wait: p.wait(),
            input_capacity: p.input_capacity,
            snapshot_every: p.snapshot_every,
            ledger: ledger.clone(),
            cores: p.cores(),
            mode: p.mode(),
            ..PipelineConfig::default()
        };
        let dir = &config.data_dir;
        let (pipeline, recovery) =
            Pipeline::start(pipeline_config, dir).map_err(|source| NodeError::Pipeline { dir: dir.clone(), source })?;
        if let Some(torn) = &recovery.torn {
            tracing::warn!(?torn, "the journal ended with a torn record: truncated");
        }
        Ok((pipeline, recovery))
    }

    /// A new journal's vault, before anything is journaled: refused if it already has
    /// committed batches; on the embedded chain, the config's first deposits made.
    fn prepare_vault(config: &Config, keys: &Keys, chain: &mut NodeChain) -> Result<()> {
        let (batches, _) = chain.committer.as_chain().last_committed()?;
        if batches > 0 {
            return Err(NodeError::VaultHasHistory { contract: chain.binding.contract, batches });
        }
        if let Committer::Embedded(embedded) = &mut chain.committer {
            let made = funding::deposit_on_embedded(embedded, config, keys)?;
            tracing::info!(deposits = made, "first deposits queued on the embedded chain's vault");
        }
        Ok(())
    }

    /// Step 4, on a new journal: with a vault (`chain`), `l1_bind` first; the listings and
    /// their first oracle prices; without a vault, the operator's first deposits (with one,
    /// the watcher credits the L1 deposits `prepare_vault` made on the embedded chain, and
    /// none with `rpc`).
    fn set_up(config: &Config, server: &Server, keys: &Keys, chain: Option<&mut NodeChain>) -> Result<()> {
        let control = server.control();
        // Computed before anything is submitted: a config whose listings fail journals nothing.
        let listings = config.listings()?;
        // The binding is the journal's first command: a journal that holds anything is bound.
        if let Some(chain) = &chain {
            let L1Binding { chain_id, contract, token } = chain.binding;
            control.submit(Command::L1Bind { chain_id, contract, token })?;
        }
        for (i, (spec, price)) in listings.into_iter().enumerate() {
            control.submit(Command::ListInstrument(Box::new(spec)))?;
            let instrument = InstrumentId(u32::try_from(i).map_err(crate::config::ConfigError::from)?);
            control.submit(Command::Oracle { instrument, price })?;
        }
        match chain {
            // The watcher credits the vault's queue (the embedded chain's first deposits were
            // made before anything was journaled).
            Some(_) => {}
            None => {
                for (account, micro) in funding::first_deposits(config, keys)? {
                    control.submit(Command::Deposit { to: Holder::Account(account), amount: Amount(micro) })?;
                }
            }
        }
        Ok(())
    }

    /// Step 5's watcher: started at the recovered queue index `next`; on a new journal, one
    /// pass first, here, so that the first deposits are submitted before `start` returns (the
    /// thread starts last).
    fn first_pass(config: &Config, server: &Server, source: Source, next: u64, new: bool) -> Watch {
        let mut watch = Watch::new(source, config.settlement.l1_confirmations(), next);
        if new {
            // A failure is logged and kept in the status; the thread retries it.
            let control = server.control();
            let _ = watch.pass(&mut |cmd| control.submit(cmd));
        }
        watch
    }

    /// The gateway (its addresses, its [`Control`](l2x_gateway::server::Control), its
    /// counters).
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The journal's last command when the node started (0: a new journal, set up by this
    /// start).
    pub fn recovered_seq(&self) -> u64 {
        self.recovered_seq
    }

    /// The L1 watcher's status, if the node has a vault.
    pub fn l1_watcher(&self) -> Option<WatchStatus> {
        self.watcher.as_ref().map(|(_, status)| status.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }

    /// The submitter, if the node settles.
    pub fn settlement(&self) -> Option<&Settlement> {
        self.settlement.as_ref()
    }

    /// The metrics endpoint, if enabled.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()
    }

    /// Stops the gateway (sessions logged out, orders kept), drains and closes the pipeline
    /// (journal synced), writes a snapshot of the final state, lets the submitter make a
    /// last pass over the whole journal, and stops the metrics endpoint. Every step runs
    /// even if one before it failed; the first error is returned, and any later one is
    /// logged.
    ///
    /// # Errors
    /// The gateway, the pipeline, the snapshot or the submitter thread failed.
    pub fn stop(self) -> Result<Stopped> {
        self.ticker.stop();
        if let Some((watcher, _)) = self.watcher {
            watcher.stop();
        }
        let server = self.server.stop().map_err(NodeError::from);
        let summary = self.pipeline.shutdown().map_err(NodeError::Shutdown);
        let stopped = summary.and_then(|summary| final_snapshot(&self.data_dir, summary));
        let settled = self.settlement.map(Settlement::finish).transpose();
        if let Some(m) = self.metrics {
            m.stop();
        }
        // Every step ran: the first failure is the answer, the later ones are logged.
        let failures = [server.as_ref().err(), stopped.as_ref().err(), settled.as_ref().err()];
        for later in failures.iter().flatten().skip(1) {
            tracing::warn!(error = %later, "stopping the node: a later step failed too");
        }
        let (mut stopped, settled) = (server.and(stopped)?, settled?);
        stopped.settled = settled;
        Ok(stopped)
    }
}

/// A recovered journal settles on the configured vault only if it is bound to exactly it.
///
/// # Errors
/// [`NodeError::NotBound`], [`NodeError::BoundElsewhere`].
fn check_binding(l1: &L1State, chain: L1Binding) -> Result<()> {
    match l1.binding {
        None => Err(NodeError::NotBound { chain }),
        Some(journal) if journal != chain => Err(NodeError::BoundElsewhere { journal, chain }),
        Some(_) => Ok(()),
    }
}

/// The snapshot of a drained pipeline's final state, unless the journal is empty or one is
/// there already.
fn final_snapshot(dir: &Path, summary: Summary) -> Result<Stopped> {
    let have = journal::snapshot::list(dir, summary.last_seq)?;
    let fresh = summary.last_seq > 0 && have.last().is_none_or(|(seq, _)| *seq < summary.last_seq);
    let snapshot = if fresh {
        Some(journal::snapshot::write(dir, summary.journal, summary.end, &summary.state.canonical())?)
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
}
