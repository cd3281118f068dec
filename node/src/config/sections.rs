//! The config's tables, one type each: `[ports]`, `[gateway]`, `[pipeline]`, `[accounts]`,
//! `[settlement]` and `[settlement.rpc]`, each with its defaults and the conversions into
//! the settings of the crate it configures (gateway limits, pipeline durability, wait and
//! cores, epoch and send policies).
//!
//! Every table is `deny_unknown_fields` and `default`: a missing key takes its default, a
//! misspelt one is an error naming it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use l2x_protocol::codec::Limits;
use l2x_sequencer::pipeline::{Cores, Durability, Mode, WaitStrategy};
use l2x_settlement::chain::{Da, SendPolicy};
use l2x_settlement::epoch::Policy;
use serde::Deserialize;

use super::error::{ConfigError, Result};

/// Listen addresses (port 0: any free port, printed at start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ports {
    /// Order entry (docs/PROTOCOL.md).
    pub order_entry: SocketAddr,
    /// Market data.
    pub market_data: SocketAddr,
    /// The Prometheus text endpoint (`GET /metrics`).
    pub metrics: SocketAddr,
    /// Whether to serve metrics at all.
    pub metrics_enabled: bool,
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
pub struct Gateway {
    /// New orders and amends per second, per session.
    pub order_rate: u32,
    /// Their burst.
    pub order_burst: u32,
    /// Cancels and mass cancels per second, per session.
    pub cancel_rate: u32,
    /// Their burst.
    pub cancel_burst: u32,
    /// Unsent bytes a connection may have before it is cut off as a slow consumer.
    pub max_outbound_bytes: usize,
    /// Pin the gateway thread to this core (absent: the scheduler decides).
    pub core: Option<usize>,
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
    /// The throttles' limits.
    pub fn limits(&self) -> Limits {
        Limits {
            order_rate: self.order_rate,
            order_burst: self.order_burst,
            cancel_rate: self.cancel_rate,
            cancel_burst: self.cancel_burst,
        }
    }

    /// The settings of [`Gateway::limits`] (for a caller that has them as a value).
    pub fn set_limits(&mut self, limits: Limits) {
        (self.order_rate, self.order_burst) = (limits.order_rate, limits.order_burst);
        (self.cancel_rate, self.cancel_burst) = (limits.cancel_rate, limits.cancel_burst);
    }
}

/// `durability`'s values (the config key, and `l2x match --durability`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityName {
    /// A result leaves once its command is in the page cache (survives a killed process).
    Os,
    /// Once an fsync covers it (survives a failed machine).
    Fsync,
}

/// `mode`'s values: who runs the sequencer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModeName {
    /// The multi-thread pipeline: gateway, sequencer, snapshot (and group-commit) threads
    /// (the default: many cores, any durability).
    #[default]
    Threads,
    /// One thread, pinned to `gateway.core`, busy-polls the sockets, sequences, journals
    /// and applies inline, then writes the reports (small machines; `durability = "os"`).
    SingleThread,
}

/// `wait`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitName {
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
pub struct PipelineSection {
    /// Who runs the sequencer: `threads` or `single-thread`.
    pub mode: ModeName,
    /// When a result may leave: `os` or `fsync`.
    pub durability: DurabilityName,
    /// How the pipeline's threads wait: `park`, `spin-then-yield`, `busy-spin`.
    pub wait: WaitName,
    /// A snapshot every this many commands (0: only the one at shutdown).
    pub snapshot_every: u64,
    /// Slots of the input ring.
    pub input_capacity: usize,
    /// Pin the sequencer thread to this core.
    pub sequencer_core: Option<usize>,
    /// Pin the group-commit thread (fsync durability) to this core.
    pub group_commit_core: Option<usize>,
    /// Pin the snapshot thread to this core.
    pub snapshot_core: Option<usize>,
    /// When nothing was sequenced for this long, the node sequences a tick (time passes:
    /// GTD orders expire, settlement epochs close on time), ms.
    pub idle_tick_ms: u64,
}

impl Default for PipelineSection {
    fn default() -> PipelineSection {
        PipelineSection {
            mode: ModeName::Threads,
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
    /// The pipeline's durability.
    pub fn durability(&self) -> Durability {
        match self.durability {
            DurabilityName::Os => Durability::Os,
            DurabilityName::Fsync => Durability::Fsync,
        }
    }

    /// Who runs the pipeline's sequencer.
    pub fn mode(&self) -> Mode {
        match self.mode {
            ModeName::Threads => Mode::Threads,
            ModeName::SingleThread => Mode::Inline,
        }
    }

    /// The pipeline's wait strategy.
    pub fn wait(&self) -> WaitStrategy {
        match self.wait {
            WaitName::Park => WaitStrategy::Park,
            WaitName::SpinThenYield => WaitStrategy::SpinThenYield,
            WaitName::BusySpin => WaitStrategy::BusySpin,
        }
    }

    /// The pipeline threads' cores.
    pub fn cores(&self) -> Cores {
        Cores { sequencer: self.sequencer_core, group_commit: self.group_commit_core, snapshot: self.snapshot_core }
    }
}

/// API keys and first deposits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Accounts {
    /// The accounts file (docs/PROTOCOL.md); relative to the config file's directory.
    /// Absent: four public demo keys, accepted on loopback addresses only.
    pub keys_file: Option<PathBuf>,
    /// Whole USDC deposited to every key's account when the journal is new: by the operator
    /// with `chain = "none"`, through the vault's L1 queue with `chain = "embedded"` (from
    /// each account's test owner, `crate::funding`); must be 0 with `chain = "rpc"`.
    pub deposit_usdc: u64,
    /// Other first deposits for some accounts: account id (a string, TOML keys are) → USDC
    /// (as `deposit_usdc`).
    pub deposits: BTreeMap<String, u64>,
}

impl Default for Accounts {
    fn default() -> Accounts {
        Accounts { keys_file: None, deposit_usdc: 1_000_000, deposits: BTreeMap::new() }
    }
}

impl Accounts {
    /// The whole USDC a new journal deposits to `account` (keys are checked to be account
    /// ids by [`Config::check`](super::Config::check); `"007"` is account 7).
    pub fn deposit_for(&self, account: u64) -> u64 {
        let listed = self.deposits.iter().find(|(k, _)| k.parse::<u64>().ok() == Some(account));
        listed.map_or(self.deposit_usdc, |(_, &usdc)| usdc)
    }
}

/// A key of `[accounts.deposits]` as an account id.
///
/// # Errors
/// [`ConfigError::NotAnAccount`] naming the key.
pub(crate) fn deposit_account(key: &str) -> Result<u64> {
    key.parse::<u64>().map_err(|source| ConfigError::NotAnAccount { account: key.to_string(), source })
}

/// `settlement.chain`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainKind {
    /// The settlement contract run in-process by revm, its state in `chain_dir`.
    Embedded,
    /// A JSON-RPC node (`[settlement.rpc]`).
    Rpc,
    /// No settlement.
    None,
}

/// `settlement.da`'s values: where a batch's data is posted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DaName {
    /// As the last argument of `commitBatch`.
    #[default]
    Calldata,
    /// As EIP-4844 blobs of a type-3 transaction calling `commitBatchBlobs`.
    Blobs,
}

impl From<DaName> for Da {
    fn from(name: DaName) -> Da {
        match name {
            DaName::Calldata => Da::Calldata,
            DaName::Blobs => Da::Blobs,
        }
    }
}

/// Epochs, the chain and the submitter.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settlement {
    /// `embedded`, `rpc` or `none`.
    pub chain: ChainKind,
    /// Where each batch's data is posted: `calldata` or `blobs` (EIP-4844).
    pub da: DaName,
    /// An epoch is due at the first command this many ms (sequenced time) after its first …
    pub epoch_ms: u64,
    /// … or at the command whose trades bring it to this many or more (0: no limit); a due
    /// epoch becomes a batch once it has changed a leaf or the market state.
    pub epoch_fills: u64,
    /// How often the submitter looks for closed epochs, ms.
    pub every_ms: u64,
    /// How often the L1 watcher reads the vault's queue, ms (`embedded` and `rpc`).
    pub l1_poll_ms: u64,
    /// The embedded chain's directory (default: DATA_DIR/chain).
    pub chain_dir: Option<PathBuf>,
    /// The node, with `chain = "rpc"`.
    pub rpc: Option<Rpc>,
}

impl Default for Settlement {
    fn default() -> Settlement {
        let policy = Policy::default();
        Settlement {
            chain: ChainKind::Embedded,
            da: DaName::Calldata,
            epoch_ms: policy.max_ms,
            epoch_fills: policy.max_fills,
            every_ms: 1_000,
            l1_poll_ms: 1_000,
            chain_dir: None,
            rpc: None,
        }
    }
}

impl Settlement {
    /// Whether the chain is a vault the node must bind to and read deposits from (`embedded`
    /// or `rpc`; `none` keeps operator deposits).
    pub fn vault(&self) -> bool {
        self.chain != ChainKind::None
    }

    /// The confirmations the L1 watcher waits for: the RPC table's, 1 on the embedded chain
    /// (final at once).
    pub fn l1_confirmations(&self) -> u64 {
        match (self.chain, &self.rpc) {
            (ChainKind::Rpc, Some(rpc)) => rpc.confirmations,
            _ => 1,
        }
    }

    /// How epochs close.
    pub fn policy(&self) -> Policy {
        Policy { max_ms: self.epoch_ms, max_fills: self.epoch_fills }
    }
}

/// A JSON-RPC node and how the submitter sends to it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rpc {
    /// The node's URL.
    pub url: String,
    /// The settlement contract's address (`l2x settle deploy`).
    pub contract: String,
    /// The environment variable holding the submitter's private key (hex).
    #[serde(default = "Rpc::default_key_env")]
    pub key_env: String,
    /// Confirmations to wait for after each commit.
    #[serde(default = "Rpc::default_confirmations")]
    pub confirmations: u64,
    /// How often a pending commit is looked at, ms.
    #[serde(default)]
    pub poll_ms: Option<u64>,
    /// A commit not in a block this long after it was sent is replaced at a higher fee, ms.
    #[serde(default)]
    pub replace_after_ms: Option<u64>,
    /// Each replacement pays at least this many percent more.
    #[serde(default)]
    pub bump_percent: Option<u64>,
    /// The most the submitter pays per gas, gwei.
    #[serde(default)]
    pub max_fee_gwei: Option<u64>,
    /// The most the submitter pays per blob gas, gwei (`settlement.da = "blobs"`).
    #[serde(default)]
    pub max_blob_fee_gwei: Option<u64>,
    /// A commit not confirmed this long after it was first sent fails (and is retried), ms.
    #[serde(default)]
    pub give_up_after_ms: Option<u64>,
}

impl Rpc {
    fn default_key_env() -> String {
        "L2X_SUBMITTER_KEY".into()
    }

    fn default_confirmations() -> u64 {
        1
    }

    /// The send policy: the defaults of [`SendPolicy`] where a setting is absent.
    pub fn send_policy(&self) -> SendPolicy {
        let d = SendPolicy::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        SendPolicy {
            poll: ms(self.poll_ms, d.poll),
            replace_after: ms(self.replace_after_ms, d.replace_after),
            bump_percent: self.bump_percent.map_or(d.bump_percent, u128::from),
            max_fee_per_gas: self.max_fee_gwei.map_or(d.max_fee_per_gas, |g| u128::from(g) * 1_000_000_000),
            max_fee_per_blob_gas: self
                .max_blob_fee_gwei
                .map_or(d.max_fee_per_blob_gas, |g| u128::from(g) * 1_000_000_000),
            give_up_after: ms(self.give_up_after_ms, d.give_up_after),
        }
    }

    /// The submitter's private key, from the environment.
    ///
    /// # Errors
    /// [`ConfigError::KeyEnv`] naming the variable.
    pub fn key(&self) -> Result<String> {
        std::env::var(&self.key_env).map_err(|source| ConfigError::KeyEnv { name: self.key_env.clone(), source })
    }
}
