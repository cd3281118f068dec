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
use l2x_engine::pipeline::{Cores, Durability, WaitStrategy};
use l2x_gateway::throttle::Limits;
use l2x_settlement::chain::SendPolicy;
use l2x_settlement::epoch::Policy;
use l2x_types::{Decimal, Instrument, InstrumentId, InstrumentSpec, Price, Symbol};
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

/// `durability`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
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
            input_capacity: l2x_engine::pipeline::Config::default().input_capacity,
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

    /// Reads and parses a config file; `accounts.keys_file` and `settlement.chain_dir` are
    /// taken relative to the file's directory, `data_dir` relative to the working directory.
    ///
    /// # Errors
    /// As [`Config::parse`], naming the file.
    pub(crate) fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
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

    /// Settings that parse but cannot work together.
    pub(crate) fn check(&self) -> Result<()> {
        ensure!(!self.instruments.is_empty(), "instruments: a node needs at least one");
        let mut symbols = std::collections::BTreeSet::new();
        for (i, entry) in self.instruments.iter().enumerate() {
            let id = InstrumentId(u32::try_from(i)?);
            entry.to_spec(id).with_context(|| format!("instruments[{i}] ({})", entry.symbol))?;
            ensure!(symbols.insert(&entry.symbol), "instruments[{i}]: {} is listed twice", entry.symbol);
        }
        // A deposit must fit the ledger's micro-USDC (i64).
        let fits = |usdc: u64| usdc.checked_mul(1_000_000).is_some_and(|micro| i64::try_from(micro).is_ok());
        ensure!(fits(self.accounts.deposit_usdc), "accounts.deposit_usdc: {} is too large", self.accounts.deposit_usdc);
        let mut ids = std::collections::BTreeSet::new();
        for (account, &usdc) in &self.accounts.deposits {
            let id = account
                .parse::<u64>()
                .with_context(|| format!("accounts.deposits: {account:?} is not an account id"))?;
            ensure!(ids.insert(id), "accounts.deposits: account {id} is listed twice");
            ensure!(fits(usdc), "accounts.deposits: {usdc} for account {id} is too large");
        }
        ensure!(self.pipeline.input_capacity > 0, "pipeline.input_capacity must be positive");
        ensure!(
            (1..=60_000).contains(&self.pipeline.idle_tick_ms),
            "pipeline.idle_tick_ms: {} is not in 1..=60000 (ms)",
            self.pipeline.idle_tick_ms
        );
        ensure!(self.settlement.every_ms > 0, "settlement.every_ms must be positive");
        match (self.settlement.chain, &self.settlement.rpc) {
            (ChainKind::Rpc, None) => bail!("settlement.chain = \"rpc\" needs a [settlement.rpc] table"),
            (ChainKind::Rpc, Some(rpc)) => {
                crate::settle::address(&rpc.contract).context("settlement.rpc.contract")?;
                ensure!(
                    rpc.bump_percent.is_none_or(|b| b >= 10),
                    "settlement.rpc.bump_percent: nodes need 10 at least"
                );
            }
            (_, _) => {}
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
        assert!(err("[accounts]\ndeposit_usdc = 10000000000000").contains("too large"));
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

    #[test]
    fn deposits_by_account() {
        let c = Config::parse("[accounts]\ndeposit_usdc = 10\n[accounts.deposits]\n07 = 3").unwrap();
        assert_eq!((c.accounts.deposit_for(7), c.accounts.deposit_for(8)), (3, 10));
    }
}
