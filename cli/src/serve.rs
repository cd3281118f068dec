//! `l2x serve`: the node as far as it is built — the sequencer pipeline with its journal and
//! snapshots, the gateway's order-entry and market-data ports over it, and the settlement
//! submitter on its own thread.
//!
//! ```text
//!  accounts file (keys) ──┐
//!  --data-dir ─▶ Pipeline::start (recover) ─▶ Server::start (rebuild report streams) ─▶ listen
//!                  fresh journal? list the default instruments, fund every key's account,
//!                  set the oracle prices (through the server's Control)
//!  submitter thread: every --settle-every-ms, Submitter::sync(chain)
//!                  chain = the embedded one in DATA_DIR/chain (default), a node (--chain rpc),
//!                  or none; batch files in DATA_DIR/batches
//! ```
//!
//! It prints the two addresses it listens on, then runs until the process is stopped. The
//! journal holds every command before its result is sent (in the page cache with
//! `--durability os`, on disk with `fsync`), so stopping it, even with SIGKILL, loses
//! nothing a client saw acknowledged; the next start recovers and clients replay.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use alloy::primitives::B256;
use anyhow::{Context, Result};
use l2x_engine::pipeline::{Config as PipelineConfig, Durability, Pipeline};
use l2x_gateway::auth::{Key, Keys};
use l2x_gateway::server::{Config as ServerConfig, Server};
use l2x_risk::Ledger;
use l2x_settlement::chain::{Chain, RpcChain};
use l2x_settlement::embedded::EmbeddedChain;
use l2x_types::{AccountId, Amount, Command, Decimal, Holder, InstrumentId, InstrumentSpec, Price, Symbol};

/// Options of `l2x serve`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Options {
    /// The journal and snapshots (created if missing).
    #[arg(long, default_value = "l2x-data")]
    data_dir: PathBuf,
    /// The API keys (TOML, docs/PROTOCOL.md). Without it: four public demo keys (ids 1–4 on
    /// accounts 1–4, secret 32 bytes of the id), fit for loopback only.
    #[arg(long)]
    accounts: Option<PathBuf>,
    /// Order-entry address.
    #[arg(long, default_value = "127.0.0.1:7001")]
    order_entry: SocketAddr,
    /// Market-data address.
    #[arg(long, default_value = "127.0.0.1:7002")]
    market_data: SocketAddr,
    /// `os`: a result leaves once its command is in the page cache; `fsync`: on disk.
    #[arg(long, default_value = "os", value_parser = ["os", "fsync"])]
    durability: String,
    /// Take a snapshot every this many commands (0: never).
    #[arg(long, default_value_t = 1_000_000)]
    snapshot_every: u64,
    /// Whole USDC deposited to every key's account when the journal is new.
    #[arg(long, default_value_t = 1_000_000)]
    deposit_usdc: u32,
    /// Settle on a chain: `embedded` (the contract in-process, its state in --chain-dir),
    /// `rpc` (a JSON-RPC node), or `none`.
    #[arg(long, default_value = "embedded", value_parser = ["embedded", "rpc", "none"])]
    chain: String,
    /// With `--chain embedded`: the chain's directory (default: DATA_DIR/chain).
    #[arg(long)]
    chain_dir: Option<PathBuf>,
    /// With `--chain rpc`: the node's URL.
    #[arg(long, required_if_eq("chain", "rpc"))]
    rpc_url: Option<String>,
    /// With `--chain rpc`: the submitter's private key (hex).
    #[arg(long, required_if_eq("chain", "rpc"))]
    key: Option<String>,
    /// With `--chain rpc`: the settlement contract's address (`l2x settle deploy`).
    #[arg(long, required_if_eq("chain", "rpc"))]
    contract: Option<String>,
    /// With `--chain rpc`: confirmations to wait for after each commit.
    #[arg(long, default_value_t = 1)]
    confirmations: u64,
    /// How often the submitter looks for closed epochs, ms.
    #[arg(long, default_value_t = 1_000)]
    settle_every_ms: u64,
    #[command(flatten)]
    epochs: crate::settle::EpochArgs,
}

/// Public demo key `id` (1–4): key id and account `id`, secret 32 bytes of `id`.
pub(crate) fn demo_key(id: u8) -> Key {
    Key::new(u64::from(id), AccountId(u64::from(id)), [id; 32])
}

/// The public demo keys used when no accounts file is given.
pub(crate) fn demo_keys() -> Keys {
    Keys::from_keys((1..=4u8).map(demo_key)).unwrap_or_default()
}

/// The instruments a new journal lists, with their first oracle prices in ticks.
pub(crate) fn default_instruments() -> Result<Vec<(InstrumentSpec, Price)>> {
    let d = |s: &str| Decimal::from_str(s).context("a decimal literal");
    let spec = |symbol: &str, tick: &str, lot: &str, max_order: &str| -> Result<InstrumentSpec> {
        Ok(InstrumentSpec {
            symbol: Symbol::try_new(symbol).map_err(|e| anyhow::anyhow!("{}", e.0))?,
            tick_size: d(tick)?,
            lot_size: d(lot)?,
            initial_margin: d("0.05")?,
            maintenance_margin: d("0.03")?,
            max_order_qty: d(max_order)?,
            max_position_qty: d("100000")?,
            price_band: d("0.1")?,
            maker_fee: d("-0.0001")?,
            taker_fee: d("0.0005")?,
            liquidation_fee: d("0.01")?,
            impact_notional: d("10000")?,
            funding_interest: d("0.0000125")?,
            funding_clamp: d("0.02")?,
        })
    };
    // 50,000 USDC in ticks of 0.5; 3,000 USDC in ticks of 0.05.
    Ok(vec![
        (spec("BTC-PERP", "0.5", "0.001", "100")?, Price(100_000)),
        (spec("ETH-PERP", "0.05", "0.01", "1000")?, Price(60_000)),
    ])
}

/// A running node: the pipeline, the gateway over it, and the submitter (if settling).
pub(crate) struct Node {
    pub(crate) server: Server,
    pipeline: Pipeline,
    /// The journal's last command when the node started (0: a new journal).
    pub(crate) recovered_seq: u64,
    pub(crate) settlement: Option<Settlement>,
}

impl Node {
    /// Starts the node `opts` describe: recovers (or creates) the journal, starts the
    /// gateway, lists the default instruments and funds the keys' accounts on a new journal,
    /// and starts the submitter unless `--chain none`.
    pub(crate) fn start(opts: &Options, keys: Keys) -> Result<Node> {
        std::fs::create_dir_all(&opts.data_dir).with_context(|| format!("creating {}", opts.data_dir.display()))?;
        let durability = if opts.durability == "fsync" { Durability::Fsync } else { Durability::Os };
        let ledger = Ledger::default();
        let config = PipelineConfig {
            durability,
            snapshot_every: opts.snapshot_every,
            ledger: ledger.clone(),
            ..PipelineConfig::default()
        };
        let (mut pipeline, recovery) = Pipeline::start(config, &opts.data_dir)
            .with_context(|| format!("starting the pipeline on {}", opts.data_dir.display()))?;
        let server_config =
            ServerConfig { order_entry: opts.order_entry, market_data: opts.market_data, ..ServerConfig::default() };
        let server = Server::start(server_config, keys.clone(), &mut pipeline, &ledger)?;
        if recovery.last_seq == 0 {
            let control = server.control();
            let submit = |cmd: Command| control.submit(cmd).map_err(|e| anyhow::anyhow!("{e}"));
            let deposit = Amount(i64::from(opts.deposit_usdc) * 1_000_000);
            for (i, (spec, price)) in default_instruments()?.into_iter().enumerate() {
                submit(Command::ListInstrument(Box::new(spec)))?;
                submit(Command::Oracle { instrument: InstrumentId(u32::try_from(i)?), price })?;
            }
            let mut funded = std::collections::BTreeSet::new();
            for key in keys.iter() {
                if funded.insert(key.account) {
                    submit(Command::Deposit { to: Holder::Account(key.account), amount: deposit })?;
                }
            }
        }
        let settlement = if opts.chain == "none" { None } else { Some(Settlement::start(opts)?) };
        Ok(Node { server, pipeline, recovered_seq: recovery.last_seq, settlement })
    }

    /// Stops the gateway (sessions logged out, orders kept), drains and closes the pipeline
    /// (journal synced), then lets the submitter make a last pass over the whole journal.
    /// Every step runs even if one before it failed; the first error is returned.
    pub(crate) fn stop(self) -> Result<Option<SettleStatus>> {
        let server = self.server.stop().map_err(anyhow::Error::from);
        let pipeline = self.pipeline.shutdown().map(|_| ()).map_err(anyhow::Error::from);
        let settled = self.settlement.map(Settlement::finish).transpose();
        server.and(pipeline).and(settled)
    }
}

pub(crate) fn serve(opts: &Options) -> Result<ExitCode> {
    let keys = match &opts.accounts {
        Some(path) => Keys::load(path).with_context(|| format!("accounts file {}", path.display()))?,
        None => demo_keys(),
    };
    let node = Node::start(opts, keys)?;
    let fresh = node.recovered_seq == 0;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "l2x serve: journal {} (recovered to seq {}{})",
        opts.data_dir.display(),
        node.recovered_seq,
        if fresh { ", new: instruments listed and accounts funded" } else { "" }
    )?;
    if opts.accounts.is_none() {
        writeln!(out, "l2x serve: no --accounts: public demo keys 1-4 (secret = 32 bytes of the id), loopback only")?;
    }
    writeln!(out, "order entry {}", node.server.order_entry_addr())?;
    writeln!(out, "market data {}", node.server.market_data_addr())?;
    out.flush()?;
    drop(out);
    if let Some(s) = &node.settlement {
        s.print_passes();
    }
    // Runs until the process is stopped; the gateway and the pipeline live on their threads.
    loop {
        std::thread::park();
    }
}

/// The chain `--chain` names, opened for committing.
fn open_chain(opts: &Options) -> Result<Box<dyn Chain + Send>> {
    if opts.chain == "embedded" {
        let dir = opts.chain_dir.clone().unwrap_or_else(|| opts.data_dir.join("chain"));
        let chain = EmbeddedChain::open(&dir).with_context(|| format!("the embedded chain in {}", dir.display()))?;
        return Ok(Box::new(chain));
    }
    let (Some(url), Some(key), Some(contract)) = (&opts.rpc_url, &opts.key, &opts.contract) else {
        anyhow::bail!("--chain rpc needs --rpc-url, --key and --contract");
    };
    Ok(Box::new(RpcChain::connect(url, key, crate::settle::address(contract)?, opts.confirmations)?))
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

/// The submitter thread: every `--settle-every-ms` it recomputes the journal's epochs and
/// commits what the chain lacks (`settlement::submitter`). Errors are kept in the status and
/// retried on the next pass — the engine keeps trading while settlement lags.
pub(crate) struct Settlement {
    status: Arc<Mutex<SettleStatus>>,
    print: Arc<AtomicBool>,
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Settlement {
    fn start(opts: &Options) -> Result<Settlement> {
        let mut chain = open_chain(opts)?;
        let mut submitter = l2x_settlement::submitter::Submitter::new(
            opts.data_dir.clone(),
            opts.data_dir.join("batches"),
            opts.epochs.policy(),
            Ledger::default(),
        );
        let every = std::time::Duration::from_millis(opts.settle_every_ms.max(1));
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
                            (synced.committed > 0).then(|| {
                                format!(
                                    "settled: {} epochs, committed {} (the chain had {}), root {}",
                                    synced.epochs, synced.committed, synced.committed_before, synced.root
                                )
                            })
                        }
                        Err(e) => {
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
