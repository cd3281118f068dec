//! The node's configuration: one TOML file (`l2x serve --config FILE`), every setting with a
//! default, so `l2x serve` with no file at all runs on loopback with its data under the
//! working directory. `docs/l2x.example.toml` lists every setting at its default with a
//! comment (a test parses it and compares it with [`Config::default`]); docs/OPERATIONS.md
//! explains them.
//!
//! ```text
//!  Config::load(FILE) ─▶ read_small_file (1 MiB at most) ─▶ Config::parse: toml + serde
//!     (unknown keys refused) ─▶ Config::check: ranges (limits), paths, instruments as the
//!     engine will list them, deposits, the RPC table ─▶ paths made relative to FILE
//!  Config::with_overrides(flags) ─▶ the flags applied ─▶ Config::check again
//! ```
//!
//! Parsing is strict: an unknown key, a malformed address, an off-grid decimal or an
//! inconsistent instrument is an error naming the key ([`ConfigError`]), before anything
//! starts. Decimals are TOML *strings* (`tick_size = "0.5"`), never floats: they are exact.
//!
//! Secrets stay out of this file: API keys live in the accounts file it names
//! (`accounts.keys_file`, the format of docs/PROTOCOL.md), and the submitter's private key is
//! read from the environment variable `settlement.rpc.key_env` names.
//!
//! The module is split by job: the tables ([`sections`]), the instruments
//! ([`instruments`]), the ranges and the bounded file reader ([`limits`]), and the errors
//! ([`error`]).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use l2x_types::{AccountId, InstrumentId, InstrumentSpec, Price};
use serde::Deserialize;

pub mod error;
pub mod instruments;
pub mod limits;
pub mod sections;

pub use error::{AddressError, ConfigError, Result, address};
pub use instruments::InstrumentEntry;
pub use limits::{
    LIMITS, MAX_CONFIRMATIONS, MAX_DEPOSIT_USDC, MAX_EPOCH_FILLS, MAX_EPOCH_MS, MAX_SNAPSHOT_EVERY, RESERVED_ACCOUNTS,
    read_small_file, within,
};
pub use sections::{
    Accounts, ChainKind, DaName, DurabilityName, Gateway, ModeName, PipelineSection, Ports, Rpc, Settlement, WaitName,
};

/// Everything `l2x serve` runs by.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The journal, snapshots, batch files and the embedded chain (created if missing).
    pub data_dir: PathBuf,
    /// Log level of the structured logs on standard error: error, warn, info, debug, trace.
    pub log_level: LogLevel,
    /// Listen addresses.
    pub ports: Ports,
    /// The gateway's limits and pinning.
    pub gateway: Gateway,
    /// The sequencer pipeline.
    pub pipeline: PipelineSection,
    /// API keys and first deposits.
    pub accounts: Accounts,
    /// Instruments a new journal lists (with their first oracle prices).
    pub instruments: Vec<InstrumentEntry>,
    /// Epochs, the chain and the submitter.
    pub settlement: Settlement,
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
            instruments: instruments::default_instruments(),
            settlement: Settlement::default(),
        }
    }
}

/// Log levels (the `tracing` ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
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
    /// The `tracing` level.
    pub fn filter(self) -> tracing::Level {
        match self {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }
}

/// The settings `l2x serve` takes as flags, over the file's.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `ports.order_entry`.
    pub order_entry: Option<SocketAddr>,
    /// `ports.market_data`.
    pub market_data: Option<SocketAddr>,
    /// `ports.metrics`.
    pub metrics: Option<SocketAddr>,
    /// `pipeline.mode = "single-thread"` (`--single-thread`).
    pub single_thread: bool,
}

impl Config {
    /// The largest config file read, bytes (the example is about 5 KB).
    pub const MAX_FILE_BYTES: u64 = 1 << 20;

    /// Parses a config file's text. Relative paths in it stay relative (see [`Config::load`]).
    ///
    /// # Errors
    /// TOML that does not parse, an unknown key, or a setting that cannot work.
    pub fn parse(text: &str) -> Result<Config> {
        let config: Config = toml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    /// Reads and parses a config file; `accounts.keys_file` and `settlement.chain_dir` are
    /// taken relative to the file's directory, `data_dir` relative to the working directory.
    ///
    /// # Errors
    /// As [`Config::parse`], naming the file.
    pub fn load(path: &Path) -> Result<Config> {
        let in_file = |source| ConfigError::File { path: path.to_path_buf(), source: Box::new(source) };
        let text = read_small_file(path, Config::MAX_FILE_BYTES).map_err(in_file)?;
        let mut config = Config::parse(&text).map_err(in_file)?;
        let base = path.parent().unwrap_or(Path::new(""));
        if let Some(keys) = &mut config.accounts.keys_file {
            *keys = base.join(&*keys);
        }
        if let Some(dir) = &mut config.settlement.chain_dir {
            *dir = base.join(&*dir);
        }
        Ok(config)
    }

    /// The config file at `path` (or the defaults) with `overrides` applied, checked.
    ///
    /// # Errors
    /// As [`Config::load`]; an override that breaks a rule ([`Config::check`]).
    pub fn with_overrides(path: Option<&Path>, overrides: &Overrides) -> Result<Config> {
        let mut config = match path {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &overrides.data_dir {
            config.data_dir.clone_from(dir);
        }
        let ports = &mut config.ports;
        ports.order_entry = overrides.order_entry.unwrap_or(ports.order_entry);
        ports.market_data = overrides.market_data.unwrap_or(ports.market_data);
        ports.metrics = overrides.metrics.unwrap_or(ports.metrics);
        if overrides.single_thread {
            config.pipeline.mode = ModeName::SingleThread;
        }
        // The overrides are settings too.
        config.check()?;
        Ok(config)
    }

    /// Settings that parse but cannot work together, and values out of their range
    /// ([`LIMITS`]): each error names the key.
    ///
    /// # Errors
    /// The first such setting.
    pub fn check(&self) -> Result<()> {
        if self.instruments.is_empty() {
            return Err(ConfigError::NoInstruments);
        }
        self.check_numbers()?;
        self.check_paths()?;
        self.check_instruments()?;
        self.check_deposits()?;
        if self.pipeline.mode == ModeName::SingleThread && self.pipeline.durability == DurabilityName::Fsync {
            return Err(ConfigError::SingleThreadFsync);
        }
        match (self.settlement.chain, &self.settlement.rpc) {
            (ChainKind::Rpc, None) => return Err(ConfigError::NoRpcTable),
            (ChainKind::Rpc, Some(rpc)) => {
                address(&rpc.contract).map_err(ConfigError::Contract)?;
                if rpc.url.trim().is_empty() {
                    return Err(ConfigError::Empty { key: "settlement.rpc.url", hint: "" });
                }
                if rpc.key_env.is_empty() {
                    return Err(ConfigError::Empty { key: "settlement.rpc.key_env", hint: "" });
                }
                self.check_no_first_deposits()?;
            }
            (_, _) => {}
        }
        Ok(())
    }

    /// Every instrument as the engine will list it, and no symbol twice.
    fn check_instruments(&self) -> Result<()> {
        let mut symbols = BTreeSet::new();
        for (index, entry) in self.instruments.iter().enumerate() {
            let id = InstrumentId(u32::try_from(index)?);
            entry.to_spec(id).map_err(|source| ConfigError::Instrument {
                index,
                symbol: entry.symbol.clone(),
                source: Box::new(source),
            })?;
            if !symbols.insert(&entry.symbol) {
                return Err(ConfigError::ListedTwice { index, symbol: entry.symbol.clone() });
            }
        }
        Ok(())
    }

    /// Deposits to account ids, each once, none to a reserved account.
    fn check_deposits(&self) -> Result<()> {
        let mut ids = BTreeSet::new();
        for account in self.accounts.deposits.keys() {
            let id = sections::deposit_account(account)?;
            if !ids.insert(id) {
                return Err(ConfigError::DepositListedTwice { id });
            }
            if AccountId(id).is_reserved() {
                return Err(ConfigError::DepositToReserved { id });
            }
        }
        Ok(())
    }

    /// With `chain = "rpc"` the node credits only what the vault queued: owners deposit on
    /// L1 themselves, so the config deposits nothing.
    fn check_no_first_deposits(&self) -> Result<()> {
        let a = &self.accounts;
        if a.deposit_usdc != 0 {
            let usdc = a.deposit_usdc;
            return Err(ConfigError::DepositOnRpc { key: "accounts.deposit_usdc", account: None, usdc });
        }
        match a.deposits.iter().find(|(_, usdc)| **usdc != 0) {
            Some((account, &usdc)) => {
                Err(ConfigError::DepositOnRpc { key: "accounts.deposits", account: Some(account.clone()), usdc })
            }
            None => Ok(()),
        }
    }

    /// Every number against its range in [`LIMITS`].
    fn check_numbers(&self) -> Result<()> {
        let (g, p, a, s) = (&self.gateway, &self.pipeline, &self.accounts, &self.settlement);
        let size = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        let mut values: Vec<(&'static str, Option<u64>)> = vec![
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
            ("settlement.l1_poll_ms", Some(s.l1_poll_ms)),
        ];
        values.extend(a.deposits.values().map(|&usdc| ("accounts.deposits", Some(usdc))));
        if let Some(rpc) = &s.rpc {
            values.extend([
                ("settlement.rpc.confirmations", Some(rpc.confirmations)),
                ("settlement.rpc.poll_ms", rpc.poll_ms),
                ("settlement.rpc.replace_after_ms", rpc.replace_after_ms),
                ("settlement.rpc.bump_percent", rpc.bump_percent),
                ("settlement.rpc.max_fee_gwei", rpc.max_fee_gwei),
                ("settlement.rpc.max_blob_fee_gwei", rpc.max_blob_fee_gwei),
                ("settlement.rpc.give_up_after_ms", rpc.give_up_after_ms),
            ]);
        }
        for (key, value) in values {
            if let Some(value) = value {
                within(key, value, limits::limit(key))?;
            }
        }
        Ok(())
    }

    /// Paths that cannot be what they name.
    fn check_paths(&self) -> Result<()> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Empty { key: "data_dir", hint: " (the default is \"l2x-data\")" });
        }
        if self.accounts.keys_file.as_ref().is_some_and(|keys| keys.as_os_str().is_empty()) {
            return Err(ConfigError::Empty { key: "accounts.keys_file", hint: " (leave it out for the demo keys)" });
        }
        if self.settlement.chain_dir.as_ref().is_some_and(|dir| dir.as_os_str().is_empty()) {
            return Err(ConfigError::Empty { key: "settlement.chain_dir", hint: " (leave it out for DATA_DIR/chain)" });
        }
        Ok(())
    }

    /// The listings and first oracle prices of a new journal.
    ///
    /// # Errors
    /// As [`InstrumentEntry::to_spec`] (none once [`Config::check`] passed).
    pub fn listings(&self) -> Result<Vec<(InstrumentSpec, Price)>> {
        self.instruments.iter().enumerate().map(|(i, entry)| entry.to_spec(InstrumentId(u32::try_from(i)?))).collect()
    }

    /// The embedded chain's directory.
    pub fn chain_dir(&self) -> PathBuf {
        self.settlement.chain_dir.clone().unwrap_or_else(|| self.data_dir.join("chain"))
    }
}

#[cfg(test)]
mod tests {
    use l2x_settlement::chain::SendPolicy;

    use super::*;

    /// The commented example in docs/ lists every setting at its default: it and the code
    /// cannot drift apart.
    #[test]
    fn the_example_file_is_the_defaults() {
        let text = include_str!("../../../docs/l2x.example.toml");
        assert_eq!(Config::parse(text).unwrap(), Config::default());
        // The commented-out RPC table is valid too once uncommented.
        let rpc: String = text
            .lines()
            .skip_while(|l| !l.starts_with("# [settlement.rpc]"))
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{}\n", l.trim_start_matches("# ").trim_start_matches('#')))
            .collect();
        // With rpc the config funds nothing: owners deposit on L1.
        let rpc_text = text
            .replace("chain = \"embedded\"", "chain = \"rpc\"")
            .replace("deposit_usdc = 1000000", "deposit_usdc = 0");
        let uncommented = format!("{rpc_text}\n{rpc}");
        let config = Config::parse(&uncommented).unwrap();
        let rpc = config.settlement.rpc.unwrap();
        assert_eq!(rpc.send_policy(), SendPolicy::default());
    }

    /// Issue 16: with `chain = "rpc"` only L1 deposits are credited, so a config that funds
    /// accounts is refused, naming the key (and the account).
    #[test]
    fn rpc_configs_fund_nothing() {
        let rpc = "[settlement]\nchain = \"rpc\"\n[settlement.rpc]\nurl = \"http://127.0.0.1:8545\"\n\
                   contract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\n";
        let refused = |accounts: &str| Config::parse(&format!("{accounts}\n{rpc}")).unwrap_err();
        let e = refused("");
        assert_eq!(e.key(), Some("accounts.deposit_usdc"));
        assert!(
            e.to_string().starts_with("accounts.deposit_usdc: 1000000 USDC, but settlement.chain = \"rpc\""),
            "{e}"
        );
        let e = refused("[accounts]\ndeposit_usdc = 0\n[accounts.deposits]\n\"7\" = 0\n\"8\" = 5");
        assert_eq!(e.key(), Some("accounts.deposits"));
        assert!(e.to_string().starts_with("accounts.deposits.8: 5 USDC"), "{e}");
        assert!(Config::parse(&format!("[accounts]\ndeposit_usdc = 0\n{rpc}")).is_ok());
        // Embedded and none fund as they are told.
        assert!(Config::parse("[settlement]\nchain = \"none\"").is_ok());
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let listings = Config::default().listings().unwrap();
        assert_eq!(listings.iter().map(|(_, p)| p.0).collect::<Vec<_>>(), [100_000, 60_000]);
    }

    #[test]
    fn bad_settings_are_named() {
        let err = |text: &str| crate::error_chain(&Config::parse(text).unwrap_err());
        assert!(err("data_dri = \"x\"").contains("unknown field `data_dri`"));
        assert!(err("[ports]\norder_entry = \"localhost\"").contains("order_entry"));
        assert!(err("[pipeline]\ndurability = \"sometimes\"").contains("sometimes"));
        let fsync = err("[pipeline]\nmode = \"single-thread\"\ndurability = \"fsync\"");
        assert!(fsync.contains("pipeline.mode") && fsync.contains("durability"), "{fsync}");
        assert!(err("[pipeline]\nmode = \"one\"").contains("one"));
        assert!(err("[pipeline]\nwait = \"spin\"").contains("spin"));
        assert!(err("[pipeline]\nidle_tick_ms = 0").contains("pipeline.idle_tick_ms"));
        assert!(err("[settlement]\nchain = \"rpc\"").contains("[settlement.rpc]"));
        let da = err("[settlement]\nda = \"bogus\"");
        assert!(da.contains("da = \"bogus\"") && da.contains("line 2"), "{da}");
        assert!(da.contains("unknown variant `bogus`, expected `calldata` or `blobs`"), "{da}");
        let blobs = Config::parse("[settlement]\nda = \"blobs\"").unwrap();
        assert_eq!(l2x_settlement::chain::Da::from(blobs.settlement.da), l2x_settlement::chain::Da::Blobs);
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
        crate::error_chain(&Config::parse(text).unwrap_err())
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
            assert!(
                Config::parse(&at_min).is_ok(),
                "{key} = {min}: {}",
                crate::error_chain(&Config::parse(&at_min).unwrap_err())
            );
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
        let doc = include_str!("../../../docs/OPERATIONS.md");
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
        let e = crate::error_chain(&Config::load(Path::new("/dev/zero")).unwrap_err());
        assert!(e.contains("/dev/zero is larger than 1048576 bytes"), "{e}");
        let dir = std::env::temp_dir();
        let e = crate::error_chain(&Config::load(&dir).unwrap_err());
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn deposits_by_account() {
        let c = Config::parse("[accounts]\ndeposit_usdc = 10\n[accounts.deposits]\n07 = 3").unwrap();
        assert_eq!((c.accounts.deposit_for(7), c.accounts.deposit_for(8)), (3, 10));
    }
}
