//! The node's configuration: one TOML file (`l2x serve --config FILE`), every setting with a
//! default, so `l2x serve` with no file at all runs on loopback with its data under the
//! working directory. `docs/l2x.example.toml` lists every setting at its default with a
//! comment (a test parses it and compares it with [`Config::default`]); docs/OPERATIONS.md
//! explains them.
//!
//! Parsing is strict: an unknown key, a malformed address, an off-grid decimal or an
//! inconsistent instrument is an error naming the key, before anything starts. Decimals are
//! TOML *strings* (`tick_size = "0.5"`), never floats: they are exact.
//!
//! Secrets stay out of this file: API keys live in the accounts file it names
//! (`accounts.keys_file`, the format of docs/PROTOCOL.md), and the submitter's private key is
//! read from the environment variable `settlement.rpc.key_env` names.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use l2x_protocol::codec::Limits;
use l2x_sequencer::pipeline::{Cores, Durability, WaitStrategy};
use l2x_settlement::chain::SendPolicy;
use l2x_settlement::epoch::Policy;
use l2x_types::{AccountId, Decimal, Instrument, InstrumentId, InstrumentSpec, Price, Symbol};
use serde::Deserialize;

/// Everything `l2x serve` runs by.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    /// The journal, snapshots, batch files and the embedded chain (created if missing).
    pub(crate) data_dir: PathBuf,
    /// Log level of the structured logs on standard error: error, warn, info, debug, trace.
    pub(crate) log_level: LogLevel,
    /// Listen addresses.
    pub(crate) ports: Ports,
    /// The gateway's limits and pinning.
    pub(crate) gateway: Gateway,
    /// The sequencer pipeline.
    pub(crate) pipeline: PipelineSection,
    /// API keys and first deposits.
    pub(crate) accounts: Accounts,
    /// Instruments a new journal lists (with their first oracle prices).
    pub(crate) instruments: Vec<InstrumentEntry>,
    /// Epochs, the chain and the submitter.
    pub(crate) settlement: Settlement,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("l2x-data"),
            log_level: LogLevel::Info,
            ports: Ports::default(),
            gateway: Gateway::default(),
            pipeline: PipelineSection::default(),
            accounts: Accounts::default(),
            instruments: default_instruments(),
            settlement: Settlement::default(),
        }
    }
}

/// Log levels (the `tracing` ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogLevel {
    /// Failures only.
    Error,
    /// And what an operator should look at.
    Warn,
    /// And the node's life: start, recovery, sessions, commits, shutdown.
    Info,
    /// And detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    pub(crate) fn filter(self) -> tracing::Level {
        match self {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }
}

/// Listen addresses (port 0: any free port, printed at start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Ports {
    /// Order entry (docs/PROTOCOL.md).
    pub(crate) order_entry: SocketAddr,
    /// Market data.
    pub(crate) market_data: SocketAddr,
    /// The Prometheus text endpoint (`GET /metrics`).
    pub(crate) metrics: SocketAddr,
    /// Whether to serve metrics at all.
    pub(crate) metrics_enabled: bool,
}

impl Default for Ports {
    fn default() -> Ports {
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Ports {
            order_entry: loopback(7001),
            market_data: loopback(7002),
            metrics: loopback(7003),
            metrics_enabled: true,
        }
    }
}

/// The gateway's limits and pinning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Gateway {
    /// New orders and amends per second, per session.
    pub(crate) order_rate: u32,
    /// Their burst.
    pub(crate) order_burst: u32,
    /// Cancels and mass cancels per second, per session.
    pub(crate) cancel_rate: u32,
    /// Their burst.
    pub(crate) cancel_burst: u32,
    /// Unsent bytes a connection may have before it is cut off as a slow consumer.
    pub(crate) max_outbound_bytes: usize,
    /// Pin the gateway thread to this core (absent: the scheduler decides).
    pub(crate) core: Option<usize>,
}

impl Default for Gateway {
    fn default() -> Gateway {
        let limits = Limits::default();
        Gateway {
            order_rate: limits.order_rate,
            order_burst: limits.order_burst,
            cancel_rate: limits.cancel_rate,
            cancel_burst: limits.cancel_burst,
            max_outbound_bytes: l2x_gateway::server::Config::default().max_outbound_bytes,
            core: None,
        }
    }
}

impl Gateway {
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            order_rate: self.order_rate,
            order_burst: self.order_burst,
            cancel_rate: self.cancel_rate,
            cancel_burst: self.cancel_burst,
        }
    }
}

/// `durability`'s values (the config key, and `l2x match --durability`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DurabilityName {
    /// A result leaves once its command is in the page cache (survives a killed process).
    Os,
    /// Once an fsync covers it (survives a failed machine).
    Fsync,
}

/// `wait`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum WaitName {
    /// Spin, yield, then sleep (the default; right when threads outnumber cores).
    Park,
    /// Spin, then yield forever.
    SpinThenYield,
    /// Spin forever (a core per pipeline thread).
    BusySpin,
}

/// The sequencer pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PipelineSection {
    /// When a result may leave: `os` or `fsync`.
    pub(crate) durability: DurabilityName,
    /// How the pipeline's threads wait: `park`, `spin-then-yield`, `busy-spin`.
    pub(crate) wait: WaitName,
    /// A snapshot every this many commands (0: only the one at shutdown).
    pub(crate) snapshot_every: u64,
    /// Slots of the input ring.
    pub(crate) input_capacity: usize,
    /// Pin the sequencer thread to this core.
    pub(crate) sequencer_core: Option<usize>,
    /// Pin the group-commit thread (fsync durability) to this core.
    pub(crate) group_commit_core: Option<usize>,
    /// Pin the snapshot thread to this core.
    pub(crate) snapshot_core: Option<usize>,
    /// When nothing was sequenced for this long, the node sequences a tick (time passes:
    /// GTD orders expire, settlement epochs close on time), ms.
    pub(crate) idle_tick_ms: u64,
}

impl Default for PipelineSection {
    fn default() -> PipelineSection {
        PipelineSection {
            durability: DurabilityName::Os,
            wait: WaitName::Park,
            snapshot_every: 1_000_000,
            input_capacity: l2x_sequencer::pipeline::Config::default().input_capacity,
            sequencer_core: None,
            group_commit_core: None,
            snapshot_core: None,
            idle_tick_ms: 200,
        }
    }
}

impl PipelineSection {
    pub(crate) fn durability(&self) -> Durability {
        match self.durability {
            DurabilityName::Os => Durability::Os,
            DurabilityName::Fsync => Durability::Fsync,
        }
    }

    pub(crate) fn wait(&self) -> WaitStrategy {
        match self.wait {
            WaitName::Park => WaitStrategy::Park,
            WaitName::SpinThenYield => WaitStrategy::SpinThenYield,
            WaitName::BusySpin => WaitStrategy::BusySpin,
        }
    }

    pub(crate) fn cores(&self) -> Cores {
        Cores { sequencer: self.sequencer_core, group_commit: self.group_commit_core, snapshot: self.snapshot_core }
    }
}

/// API keys and first deposits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Accounts {
    /// The accounts file (docs/PROTOCOL.md); relative to the config file's directory.
    /// Absent: four public demo keys, accepted on loopback addresses only.
    pub(crate) keys_file: Option<PathBuf>,
    /// Whole USDC deposited to every key's account when the journal is new.
    pub(crate) deposit_usdc: u64,
    /// Other first deposits for some accounts: account id (a string, TOML keys are) → USDC.
    pub(crate) deposits: BTreeMap<String, u64>,
}

impl Default for Accounts {
    fn default() -> Accounts {
        Accounts { keys_file: None, deposit_usdc: 1_000_000, deposits: BTreeMap::new() }
    }
}

impl Accounts {
    /// The whole USDC a new journal deposits to `account` (keys are checked to be account
    /// ids by [`Config::check`]; `"007"` is account 7).
    pub(crate) fn deposit_for(&self, account: u64) -> u64 {
        let listed = self.deposits.iter().find(|(k, _)| k.parse::<u64>().ok() == Some(account));
        listed.map_or(self.deposit_usdc, |(_, &usdc)| usdc)
    }
}

/// One instrument: the fields of a scenario's `instrument` line (docs/SCENARIOS.md), every
/// decimal a string, and its first oracle price.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstrumentEntry {
    symbol: String,
    tick_size: String,
    lot_size: String,
    initial_margin: String,
    maintenance_margin: String,
    max_order_qty: String,
    max_position_qty: String,
    price_band: String,
    #[serde(default)]
    maker_fee: Option<String>,
    #[serde(default)]
    taker_fee: Option<String>,
    #[serde(default)]
    liquidation_fee: Option<String>,
    #[serde(default)]
    impact_notional: Option<String>,
    #[serde(default)]
    funding_interest: Option<String>,
    #[serde(default)]
    funding_clamp: Option<String>,
    /// The first oracle price, quote per base (on the tick grid).
    oracle_price: String,
}

impl InstrumentEntry {
    /// The listing and its first oracle price in ticks, validated as the engine will.
    pub(crate) fn to_spec(&self, id: InstrumentId) -> Result<(InstrumentSpec, Price)> {
        let d = |field: &str, text: &str| {
            Decimal::from_str(text.trim()).with_context(|| format!("{field} = {text:?} is not a decimal"))
        };
        let required = [
            d("tick_size", &self.tick_size)?,
            d("lot_size", &self.lot_size)?,
            d("initial_margin", &self.initial_margin)?,
            d("maintenance_margin", &self.maintenance_margin)?,
            d("max_order_qty", &self.max_order_qty)?,
            d("max_position_qty", &self.max_position_qty)?,
            d("price_band", &self.price_band)?,
        ];
        let given = [
            &self.maker_fee,
            &self.taker_fee,
            &self.liquidation_fee,
            &self.impact_notional,
            &self.funding_interest,
            &self.funding_clamp,
        ];
        let mut optional = [None; 6];
        for ((value, text), field) in optional.iter_mut().zip(given).zip(InstrumentSpec::OPTIONAL_FIELDS) {
            *value = text.as_deref().map(|t| d(field, t)).transpose()?;
        }
        let symbol = Symbol::try_new(&self.symbol).map_err(|e| anyhow::anyhow!("symbol {:?}: {}", self.symbol, e.0))?;
        let spec = InstrumentSpec::from_decimals(symbol, InstrumentSpec::decimals_with_defaults(required, optional));
        let instrument = Instrument::try_new(id, &spec).map_err(|e| anyhow::anyhow!("{e}"))?;
        let oracle = d("oracle_price", &self.oracle_price)?;
        let price = instrument.price_from_decimal(oracle).map_err(|e| anyhow::anyhow!("oracle_price {oracle}: {e}"))?;
        ensure!(price.0 > 0, "oracle_price must be positive");
        Ok((spec, price))
    }
}

/// The two instruments of a default node.
fn default_instruments() -> Vec<InstrumentEntry> {
    let entry = |symbol: &str, tick: &str, lot: &str, max_order: &str, oracle: &str| InstrumentEntry {
        symbol: symbol.into(),
        tick_size: tick.into(),
        lot_size: lot.into(),
        initial_margin: "0.05".into(),
        maintenance_margin: "0.03".into(),
        max_order_qty: max_order.into(),
        max_position_qty: "100000".into(),
        price_band: "0.1".into(),
        maker_fee: Some("-0.0001".into()),
        taker_fee: Some("0.0005".into()),
        liquidation_fee: Some("0.01".into()),
        impact_notional: Some("10000".into()),
        funding_interest: Some("0.0000125".into()),
        funding_clamp: Some("0.02".into()),
        oracle_price: oracle.into(),
    };
    vec![entry("BTC-PERP", "0.5", "0.001", "100", "50000"), entry("ETH-PERP", "0.05", "0.01", "1000", "3000")]
}

/// `settlement.chain`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ChainKind {
    /// The settlement contract run in-process by revm, its state in `chain_dir`.
    Embedded,
    /// A JSON-RPC node (`[settlement.rpc]`).
    Rpc,
    /// No settlement.
    None,
}

/// Epochs, the chain and the submitter.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settlement {
    /// `embedded`, `rpc` or `none`.
    pub(crate) chain: ChainKind,
    /// An epoch is due at the first command this many ms (sequenced time) after its first …
    pub(crate) epoch_ms: u64,
    /// … or at the command whose trades bring it to this many or more (0: no limit); a due
    /// epoch becomes a batch once it has changed a leaf or the market state.
    pub(crate) epoch_fills: u64,
    /// How often the submitter looks for closed epochs, ms.
    pub(crate) every_ms: u64,
    /// The embedded chain's directory (default: DATA_DIR/chain).
    pub(crate) chain_dir: Option<PathBuf>,
    /// The node, with `chain = "rpc"`.
    pub(crate) rpc: Option<Rpc>,
}

impl Default for Settlement {
    fn default() -> Settlement {
        let policy = Policy::default();
        Settlement {
            chain: ChainKind::Embedded,
            epoch_ms: policy.max_ms,
            epoch_fills: policy.max_fills,
            every_ms: 1_000,
            chain_dir: None,
            rpc: None,
        }
    }
}

impl Settlement {
    pub(crate) fn policy(&self) -> Policy {
        Policy { max_ms: self.epoch_ms, max_fills: self.epoch_fills }
    }
}

/// A JSON-RPC node and how the submitter sends to it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rpc {
    /// The node's URL.
    pub(crate) url: String,
    /// The settlement contract's address (`l2x settle deploy`).
    pub(crate) contract: String,
    /// The environment variable holding the submitter's private key (hex).
    #[serde(default = "Rpc::default_key_env")]
    pub(crate) key_env: String,
    /// Confirmations to wait for after each commit.
    #[serde(default = "Rpc::default_confirmations")]
    pub(crate) confirmations: u64,
    /// How often a pending commit is looked at, ms.
    #[serde(default)]
    pub(crate) poll_ms: Option<u64>,
    /// A commit not in a block this long after it was sent is replaced at a higher fee, ms.
    #[serde(default)]
    pub(crate) replace_after_ms: Option<u64>,
    /// Each replacement pays at least this many percent more.
    #[serde(default)]
    pub(crate) bump_percent: Option<u64>,
    /// The most the submitter pays per gas, gwei.
    #[serde(default)]
    pub(crate) max_fee_gwei: Option<u64>,
    /// A commit not confirmed this long after it was first sent fails (and is retried), ms.
    #[serde(default)]
    pub(crate) give_up_after_ms: Option<u64>,
}

impl Rpc {
    fn default_key_env() -> String {
        "L2X_SUBMITTER_KEY".into()
    }

    fn default_confirmations() -> u64 {
        1
    }

    /// The send policy: the defaults of [`SendPolicy`] where a setting is absent.
    pub(crate) fn send_policy(&self) -> SendPolicy {
        let d = SendPolicy::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        SendPolicy {
            poll: ms(self.poll_ms, d.poll),
            replace_after: ms(self.replace_after_ms, d.replace_after),
            bump_percent: self.bump_percent.map_or(d.bump_percent, u128::from),
            max_fee_per_gas: self.max_fee_gwei.map_or(d.max_fee_per_gas, |g| u128::from(g) * 1_000_000_000),
            give_up_after: ms(self.give_up_after_ms, d.give_up_after),
        }
    }

    /// The submitter's private key, from the environment.
    pub(crate) fn key(&self) -> Result<String> {
        std::env::var(&self.key_env).with_context(|| {
            format!(
                "settlement.rpc.key_env: the environment variable {} (the submitter's key) is not set",
                self.key_env
            )
        })
    }
}

/// The account ids no deposit may go to, as the errors name them.
pub(crate) const RESERVED_ACCOUNTS: &str =
    "ids 18446744073709551614 and 18446744073709551615 are the insurance fund's and the fee account's";

/// The most whole USDC one deposit may be: its micro-USDC must fit the ledger's i64.
pub(crate) const MAX_DEPOSIT_USDC: u64 = (i64::MAX / 1_000_000).unsigned_abs();

/// The largest snapshot interval, commands (`pipeline.snapshot_every`, `match --snapshot-every`).
pub(crate) const MAX_SNAPSHOT_EVERY: u64 = 1_000_000_000_000;
/// The longest epoch, ms of sequenced time (a day).
pub(crate) const MAX_EPOCH_MS: u64 = 86_400_000;
/// The largest fill limit of an epoch.
pub(crate) const MAX_EPOCH_FILLS: u64 = 1_000_000_000;
/// The most confirmations a commit waits for.
pub(crate) const MAX_CONFIRMATIONS: u64 = 1_000;

/// Every number of the config file and its range, inclusive (docs/OPERATIONS.md's table
/// says the same: a test compares them). Out of range is an error naming the key.
pub(crate) const LIMITS: [(&str, u64, u64); 24] = [
    ("gateway.order_rate", 1, 10_000_000),
    ("gateway.order_burst", 1, 10_000_000),
    ("gateway.cancel_rate", 1, 10_000_000),
    ("gateway.cancel_burst", 1, 10_000_000),
    ("gateway.max_outbound_bytes", 65_536, 1 << 30),
    ("gateway.core", 0, 1_023),
    ("pipeline.snapshot_every", 0, MAX_SNAPSHOT_EVERY),
    // A slot is a command and its tag: 2^20 of them are about 100 MiB.
    ("pipeline.input_capacity", 1, 1 << 20),
    ("pipeline.sequencer_core", 0, 1_023),
    ("pipeline.group_commit_core", 0, 1_023),
    ("pipeline.snapshot_core", 0, 1_023),
    // A tick at most a minute after the last command: epochs still close on time.
    ("pipeline.idle_tick_ms", 1, 60_000),
    ("accounts.deposit_usdc", 0, MAX_DEPOSIT_USDC),
    ("accounts.deposits", 0, MAX_DEPOSIT_USDC),
    // The metrics' open interest covers this many.
    ("instruments", 1, l2x_gateway::metrics::MAX_INSTRUMENTS as u64),
    // 0 would close an epoch at every command.
    ("settlement.epoch_ms", 1, MAX_EPOCH_MS),
    ("settlement.epoch_fills", 0, MAX_EPOCH_FILLS),
    ("settlement.every_ms", 1, 3_600_000),
    // 0 would be taken as 1 by the chain.
    ("settlement.rpc.confirmations", 1, MAX_CONFIRMATIONS),
    ("settlement.rpc.poll_ms", 1, 3_600_000),
    ("settlement.rpc.replace_after_ms", 1, 86_400_000),
    // Nodes refuse a replacement that pays less than 10 % more.
    ("settlement.rpc.bump_percent", 10, 1_000),
    ("settlement.rpc.max_fee_gwei", 1, 1_000_000),
    ("settlement.rpc.give_up_after_ms", 1, 86_400_000),
];

/// A command-line number within `min..=max` (clap names the flag and the range when it is
/// not).
pub(crate) fn ranged(min: u64, max: u64) -> clap::builder::RangedU64ValueParser<u64> {
    clap::builder::RangedU64ValueParser::new().range(min..=max)
}

/// A command-line path that is not empty (an empty one names nothing, and fails later with
/// an OS error that does not say which flag).
pub(crate) fn non_empty_path(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() { Err("must not be empty".into()) } else { Ok(PathBuf::from(text)) }
}

/// `key`'s range in [`LIMITS`].
fn limit(key: &str) -> (u64, u64) {
    LIMITS.iter().find(|(k, _, _)| *k == key).map_or((0, u64::MAX), |&(_, min, max)| (min, max))
}

/// `value` of `key` within `min..=max`, or an error naming the key and the range.
pub(crate) fn within(key: &str, value: u64, (min, max): (u64, u64)) -> Result<()> {
    ensure!((min..=max).contains(&value), "{key} = {value} is out of range: it must be from {min} to {max}");
    Ok(())
}

/// A file of at most `limit` bytes, as text (a config or accounts file: a path to
/// something endless, like /dev/zero, must not exhaust memory).
pub(crate) fn read_small_file(path: &Path, limit: u64) -> Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ensure!(!file.metadata()?.is_dir(), "{} is a directory, not a file", path.display());
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).with_context(|| format!("reading {}", path.display()))?;
    ensure!(u64::try_from(bytes.len()).unwrap_or(u64::MAX) <= limit, "{} is larger than {limit} bytes", path.display());
    String::from_utf8(bytes).map_err(|e| anyhow::anyhow!("{}: not UTF-8 text ({e})", path.display()))
}

impl Config {
    /// Parses a config file's text. Relative paths in it stay relative (see [`Config::load`]).
    ///
    /// # Errors
    /// TOML that does not parse, an unknown key, or a setting that cannot work.
    pub(crate) fn parse(text: &str) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        config.check()?;
        Ok(config)
    }

    /// The largest config file read, bytes (the example is about 5 KB).
    pub(crate) const MAX_FILE_BYTES: u64 = 1 << 20;

    /// Reads and parses a config file; `accounts.keys_file` and `settlement.chain_dir` are
    /// taken relative to the file's directory, `data_dir` relative to the working directory.
    ///
    /// # Errors
    /// As [`Config::parse`], naming the file.
    pub(crate) fn load(path: &Path) -> Result<Config> {
        let text =
            read_small_file(path, Config::MAX_FILE_BYTES).with_context(|| format!("config file {}", path.display()))?;
        let mut config = Config::parse(&text).with_context(|| format!("config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        if let Some(keys) = &mut config.accounts.keys_file {
            *keys = base.join(&*keys);
        }
        if let Some(dir) = &mut config.settlement.chain_dir {
            *dir = base.join(&*dir);
        }
        Ok(config)
    }

    /// Settings that parse but cannot work together, and values out of their range
    /// ([`LIMITS`]): each error names the key.
    pub(crate) fn check(&self) -> Result<()> {
        ensure!(!self.instruments.is_empty(), "instruments: a node needs at least one");
        self.check_numbers()?;
        self.check_paths()?;
        let mut symbols = std::collections::BTreeSet::new();
        for (i, entry) in self.instruments.iter().enumerate() {
            let id = InstrumentId(u32::try_from(i)?);
            entry.to_spec(id).with_context(|| format!("instruments[{i}] ({})", entry.symbol))?;
            ensure!(symbols.insert(&entry.symbol), "instruments[{i}]: {} is listed twice", entry.symbol);
        }
        let mut ids = std::collections::BTreeSet::new();
        for account in self.accounts.deposits.keys() {
            let id = account
                .parse::<u64>()
                .with_context(|| format!("accounts.deposits: {account:?} is not an account id"))?;
            ensure!(ids.insert(id), "accounts.deposits: account {id} is listed twice");
            ensure!(
                !AccountId(id).is_reserved(),
                "accounts.deposits: account {id} is reserved ({RESERVED_ACCOUNTS}): no deposit can go there"
            );
        }
        match (self.settlement.chain, &self.settlement.rpc) {
            (ChainKind::Rpc, None) => bail!("settlement.chain = \"rpc\" needs a [settlement.rpc] table"),
            (ChainKind::Rpc, Some(rpc)) => {
                crate::settle::address(&rpc.contract).context("settlement.rpc.contract")?;
                ensure!(!rpc.url.trim().is_empty(), "settlement.rpc.url: must not be empty");
                ensure!(!rpc.key_env.is_empty(), "settlement.rpc.key_env: must not be empty");
            }
            (_, _) => {}
        }
        Ok(())
    }

    /// Every number against its range in [`LIMITS`].
    fn check_numbers(&self) -> Result<()> {
        let (g, p, a, s) = (&self.gateway, &self.pipeline, &self.accounts, &self.settlement);
        let size = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        let mut values: Vec<(&str, Option<u64>)> = vec![
            ("gateway.order_rate", Some(g.order_rate.into())),
            ("gateway.order_burst", Some(g.order_burst.into())),
            ("gateway.cancel_rate", Some(g.cancel_rate.into())),
            ("gateway.cancel_burst", Some(g.cancel_burst.into())),
            ("gateway.max_outbound_bytes", Some(size(g.max_outbound_bytes))),
            ("gateway.core", g.core.map(size)),
            ("pipeline.snapshot_every", Some(p.snapshot_every)),
            ("pipeline.input_capacity", Some(size(p.input_capacity))),
            ("pipeline.sequencer_core", p.sequencer_core.map(size)),
            ("pipeline.group_commit_core", p.group_commit_core.map(size)),
            ("pipeline.snapshot_core", p.snapshot_core.map(size)),
            ("pipeline.idle_tick_ms", Some(p.idle_tick_ms)),
            ("accounts.deposit_usdc", Some(a.deposit_usdc)),
            ("instruments", Some(size(self.instruments.len()))),
            ("settlement.epoch_ms", Some(s.epoch_ms)),
            ("settlement.epoch_fills", Some(s.epoch_fills)),
            ("settlement.every_ms", Some(s.every_ms)),
        ];
        values.extend(a.deposits.values().map(|&usdc| ("accounts.deposits", Some(usdc))));
        if let Some(rpc) = &s.rpc {
            values.extend([
                ("settlement.rpc.confirmations", Some(rpc.confirmations)),
                ("settlement.rpc.poll_ms", rpc.poll_ms),
                ("settlement.rpc.replace_after_ms", rpc.replace_after_ms),
                ("settlement.rpc.bump_percent", rpc.bump_percent),
                ("settlement.rpc.max_fee_gwei", rpc.max_fee_gwei),
                ("settlement.rpc.give_up_after_ms", rpc.give_up_after_ms),
            ]);
        }
        for (key, value) in values {
            if let Some(value) = value {
                within(key, value, limit(key))?;
            }
        }
        Ok(())
    }

    /// Paths that cannot be what they name.
    fn check_paths(&self) -> Result<()> {
        ensure!(!self.data_dir.as_os_str().is_empty(), "data_dir: must not be empty (the default is \"l2x-data\")");
        if let Some(keys) = &self.accounts.keys_file {
            ensure!(
                !keys.as_os_str().is_empty(),
                "accounts.keys_file: must not be empty (leave it out for the demo keys)"
            );
        }
        if let Some(dir) = &self.settlement.chain_dir {
            ensure!(
                !dir.as_os_str().is_empty(),
                "settlement.chain_dir: must not be empty (leave it out for DATA_DIR/chain)"
            );
        }
        Ok(())
    }

    /// The listings and first oracle prices of a new journal.
    pub(crate) fn listings(&self) -> Result<Vec<(InstrumentSpec, Price)>> {
        self.instruments.iter().enumerate().map(|(i, entry)| entry.to_spec(InstrumentId(u32::try_from(i)?))).collect()
    }

    /// The embedded chain's directory.
    pub(crate) fn chain_dir(&self) -> PathBuf {
        self.settlement.chain_dir.clone().unwrap_or_else(|| self.data_dir.join("chain"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commented example in docs/ lists every setting at its default: it and the code
    /// cannot drift apart.
    #[test]
    fn the_example_file_is_the_defaults() {
        let text = include_str!("../../docs/l2x.example.toml");
        assert_eq!(Config::parse(text).unwrap(), Config::default());
        // The commented-out RPC table is valid too once uncommented.
        let rpc: String = text
            .lines()
            .skip_while(|l| !l.starts_with("# [settlement.rpc]"))
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{}\n", l.trim_start_matches("# ").trim_start_matches('#')))
            .collect();
        let uncommented = format!("{}\n{}", text.replace("chain = \"embedded\"", "chain = \"rpc\""), rpc);
        let config = Config::parse(&uncommented).unwrap();
        let rpc = config.settlement.rpc.unwrap();
        assert_eq!(rpc.send_policy(), SendPolicy::default());
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let listings = Config::default().listings().unwrap();
        assert_eq!(listings.iter().map(|(_, p)| p.0).collect::<Vec<_>>(), [100_000, 60_000]);
    }

    #[test]
    fn bad_settings_are_named() {
        let err = |text: &str| format!("{:#}", Config::parse(text).unwrap_err());
        assert!(err("data_dri = \"x\"").contains("unknown field `data_dri`"));
        assert!(err("[ports]\norder_entry = \"localhost\"").contains("order_entry"));
        assert!(err("[pipeline]\ndurability = \"sometimes\"").contains("sometimes"));
        assert!(err("[pipeline]\nwait = \"spin\"").contains("spin"));
        assert!(err("[pipeline]\nidle_tick_ms = 0").contains("pipeline.idle_tick_ms"));
        assert!(err("[settlement]\nchain = \"rpc\"").contains("[settlement.rpc]"));
        assert!(
            err("[settlement.rpc]\nurl = \"x\"\ncontract = \"0x12\"\n[settlement]\nchain = \"rpc\"")
                .contains("contract")
        );
        assert!(err("[accounts.deposits]\nalice = 5").contains("alice"));
        assert!(err("[accounts.deposits]\n7 = 5\n007 = 6").contains("twice"));
        assert!(
            err("[accounts]\ndeposit_usdc = 10000000000000")
                .contains("accounts.deposit_usdc = 10000000000000 is out of range")
        );
        let instrument = |extra: &str| {
            format!(
                "[[instruments]]\nsymbol = \"X\"\ntick_size = \"0.5\"\nlot_size = \"0.001\"\ninitial_margin = \"0.05\"\n\
                 maintenance_margin = \"0.03\"\nmax_order_qty = \"10\"\nmax_position_qty = \"100\"\n\
                 price_band = \"0.1\"\n{extra}"
            )
        };
        assert!(err(&instrument("oracle_price = \"100.25\"")).contains("oracle_price"));
        assert!(err(&instrument("oracle_price = 100")).contains("oracle_price"));
        assert!(err(&instrument("oracle_price = \"100\"\ntaker_fee = \"0.0.1\"")).contains("taker_fee"));
        assert!(err(&instrument("")).contains("oracle_price"));
        let twice = format!("{}\n{}", instrument("oracle_price = \"100\""), instrument("oracle_price = \"100\""));
        assert!(err(&twice).contains("listed twice"));
        assert!(Config::parse(&instrument("oracle_price = \"100\"")).is_ok());
    }

    fn err(text: &str) -> String {
        format!("{:#}", Config::parse(text).unwrap_err())
    }

    /// Regression: `input_capacity = 1099511627776` aborted the node on a failed allocation
    /// (exit 134, the key not named).
    #[test]
    fn config_refuses_huge_input_capacity() {
        assert_eq!(
            err("[pipeline]\ninput_capacity = 1099511627776"),
            "pipeline.input_capacity = 1099511627776 is out of range: it must be from 1 to 1048576"
        );
    }

    /// Every number of [`LIMITS`] is checked at both ends, and the error names the key and
    /// the range; the ends themselves are accepted.
    #[test]
    fn every_config_number_is_bounded() {
        let rpc = "[settlement.rpc]\nurl = \"http://127.0.0.1:8545\"\ncontract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\n";
        let text = |key: &str, value: u64| -> Option<String> {
            let (table, name) = key.rsplit_once('.')?;
            Some(match table {
                "accounts" if name == "deposits" => format!("[accounts.deposits]\n\"7\" = {value}"),
                "settlement.rpc" => format!("{rpc}{name} = {value}"),
                _ => format!("[{table}]\n{name} = {value}"),
            })
        };
        let mut checked = 0;
        for (key, min, max) in LIMITS {
            let Some(at_min) = text(key, min) else { continue };
            assert!(Config::parse(&at_min).is_ok(), "{key} = {min}: {:#}", Config::parse(&at_min).unwrap_err());
            assert!(Config::parse(&text(key, max).unwrap()).is_ok(), "{key} = {max}");
            let mut outside = vec![max.saturating_add(1)];
            if min > 0 {
                outside.push(min - 1);
            }
            for v in outside {
                let Some(t) = text(key, v) else { continue };
                // Past a field's own type (u32, say) TOML itself refuses it, with the key's line.
                let e = err(&t);
                let named = e.contains(&format!("{key} = {v} is out of range: it must be from {min} to {max}"));
                let too_big_for_type = e.contains(key.rsplit('.').next().unwrap()) && e.contains(&v.to_string());
                assert!(named || too_big_for_type, "{key} = {v}: {e}");
            }
            checked += 1;
        }
        assert_eq!(checked, LIMITS.len() - 1, "every key but `instruments` (a count of tables)");
        assert!(err("instruments = []").contains("a node needs at least one"));
    }

    /// The documented limits are the code's: docs/OPERATIONS.md's table gives each range.
    #[test]
    fn config_limits_are_documented() {
        let doc = include_str!("../../docs/OPERATIONS.md");
        let with_commas = |n: u64| {
            let digits = n.to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            out
        };
        for (key, min, max) in LIMITS {
            // A row names its first key in full and the others of its table by name.
            let row = doc
                .lines()
                .filter(|l| l.starts_with("| `"))
                .find(|l| {
                    let first = l.split(" | ").next().unwrap_or_default();
                    match key.rsplit_once('.') {
                        Some((table, name)) => {
                            first.contains(&format!("`{key}`"))
                                || first.contains(&format!("`{table}.")) && first.contains(&format!("`{name}`"))
                        }
                        None => first.contains(&format!("`[[{key}]]`")),
                    }
                })
                .unwrap_or_else(|| panic!("no row for {key} in docs/OPERATIONS.md"));
            let range = format!("{} – {}", with_commas(min), with_commas(max));
            assert!(row.contains(&range), "docs/OPERATIONS.md: the row of {key} must give {range}: {row}");
        }
    }

    /// Regression: `data_dir = ""` failed with an OS error naming no key.
    #[test]
    fn config_refuses_empty_data_dir() {
        assert!(err("data_dir = \"\"").starts_with("data_dir: must not be empty"));
        assert!(err("[accounts]\nkeys_file = \"\"").starts_with("accounts.keys_file: must not be empty"));
        assert!(err("[settlement]\nchain_dir = \"\"").starts_with("settlement.chain_dir: must not be empty"));
    }

    /// Regression: deposits to the insurance fund's and fee account's ids were accepted.
    #[test]
    fn config_refuses_deposit_to_reserved_account() {
        for id in [u64::MAX - 1, u64::MAX] {
            let e = err(&format!("[accounts.deposits]\n\"{id}\" = 5"));
            assert!(e.starts_with(&format!("accounts.deposits: account {id} is reserved")), "{e}");
        }
        assert!(Config::parse(&format!("[accounts.deposits]\n\"{}\" = 5", u64::MAX - 2)).is_ok());
    }

    /// Regression: `epoch_ms = 0` was accepted (an epoch per command).
    #[test]
    fn config_refuses_zero_epoch_ms() {
        assert_eq!(
            err("[settlement]\nepoch_ms = 0"),
            "settlement.epoch_ms = 0 is out of range: it must be from 1 to 86400000"
        );
    }

    /// A config file is read up to a bound: a path to something endless is an error, not
    /// all the memory.
    #[test]
    fn config_file_is_read_to_a_bound() {
        let e = format!("{:#}", Config::load(Path::new("/dev/zero")).unwrap_err());
        assert!(e.contains("/dev/zero is larger than 1048576 bytes"), "{e}");
        let dir = std::env::temp_dir();
        let e = format!("{:#}", Config::load(&dir).unwrap_err());
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn deposits_by_account() {
        let c = Config::parse("[accounts]\ndeposit_usdc = 10\n[accounts.deposits]\n07 = 3").unwrap();
        assert_eq!((c.accounts.deposit_for(7), c.accounts.deposit_for(8)), (3, 10));
    }
}
