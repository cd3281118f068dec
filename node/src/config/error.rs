//! Why a config (or the accounts file it names) is refused: [`ConfigError`].
//!
//! Every message names the key, the file or the line, and reads as it did when the binary
//! printed it (`l2x: config file l2x.toml: pipeline.input_capacity = … is out of range…`):
//! each layer of context is a variant whose text is that layer alone, and what it wraps is
//! its `#[source]`, so that printing the chain (`{:#}` through `anyhow`, or walking
//! [`std::error::Error::source`]) gives the whole sentence.
//!
//! Two inner errors are kept as fields rather than sources, because their own text already
//! contains what a source would add: [`SpecError`] (its `Inexact` variant prints its
//! source) and the UTF-8 error of a file (printed in parentheses). As sources, the chain
//! would print them twice.

use std::net::SocketAddr;
use std::num::{ParseIntError, TryFromIntError};
use std::path::PathBuf;

use l2x_types::{AccountId, Decimal, SpecError, ValueError};

use super::limits::RESERVED_ACCOUNTS;

/// What `l2x_node::config` returns.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// A setting that cannot be read, parsed or used (see the module documentation).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file named, around what was wrong in it.
    #[error("config file {}", path.display())]
    File {
        /// The config file.
        path: PathBuf,
        /// What was wrong.
        #[source]
        source: Box<ConfigError>,
    },
    /// The accounts file named, around what was wrong in it.
    #[error("accounts.keys_file {}", path.display())]
    KeysFile {
        /// The accounts file.
        path: PathBuf,
        /// What was wrong.
        #[source]
        source: Box<ConfigError>,
    },
    /// A file that cannot be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A path that names a directory where a file was expected.
    #[error("{} is a directory, not a file", path.display())]
    Directory {
        /// The path.
        path: PathBuf,
    },
    /// A file's metadata that cannot be read.
    #[error(transparent)]
    Metadata(std::io::Error),
    /// A file that cannot be read to its end.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file over its bound (a path to something endless, like /dev/zero).
    #[error("{} is larger than {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound, bytes.
        limit: u64,
    },
    /// A file that is not UTF-8 text.
    #[error("{}: not UTF-8 text ({error})", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Where the text broke (printed in the message, so not a source).
        error: std::string::FromUtf8Error,
    },
    /// TOML that does not parse, an unknown key, a value of the wrong type (the message
    /// names the key and the line).
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// An accounts file that does not parse.
    #[error(transparent)]
    Accounts(#[from] l2x_gateway::auth::AccountsError),
    /// `instruments = []`.
    #[error("instruments: a node needs at least one")]
    NoInstruments,
    /// More instruments than instrument ids (the range check refuses this first).
    #[error(transparent)]
    InstrumentId(#[from] TryFromIntError),
    /// A number outside its range in [`LIMITS`](super::LIMITS).
    #[error("{key} = {value} is out of range: it must be from {min} to {max}")]
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The value given.
        value: u64,
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// A setting that must not be empty (`hint`: what to do instead, or empty).
    #[error("{key}: must not be empty{hint}")]
    Empty {
        /// The key.
        key: &'static str,
        /// ` (…)`, or nothing.
        hint: &'static str,
    },
    /// Instrument `index` of `[[instruments]]`, around what was wrong with it.
    #[error("instruments[{index}] ({symbol})")]
    Instrument {
        /// Its position in the file (its id).
        index: usize,
        /// Its symbol as written.
        symbol: String,
        /// What was wrong.
        #[source]
        source: Box<ConfigError>,
    },
    /// Two instruments with one symbol.
    #[error("instruments[{index}]: {symbol} is listed twice")]
    ListedTwice {
        /// The second one's position.
        index: usize,
        /// The symbol.
        symbol: String,
    },
    /// An instrument's decimal field that is not a decimal.
    #[error("{field} = {text:?} is not a decimal")]
    NotADecimal {
        /// The field.
        field: &'static str,
        /// The text given.
        text: String,
        /// Why it does not parse.
        #[source]
        source: <Decimal as std::str::FromStr>::Err,
    },
    /// A symbol that is not one (the message repeats the text, as it always has).
    #[error("symbol {symbol:?}: {symbol}")]
    Symbol {
        /// The text given.
        symbol: String,
    },
    /// An instrument the engine would refuse to list.
    #[error("{0}")]
    Spec(SpecError),
    /// A first oracle price off the instrument's tick grid (or out of range).
    #[error("oracle_price {oracle}")]
    OraclePrice {
        /// The price given.
        oracle: Decimal,
        /// Why it does not convert to ticks.
        #[source]
        source: ValueError,
    },
    /// A first oracle price of zero or less.
    #[error("oracle_price must be positive")]
    OracleNotPositive,
    /// A key of `[accounts.deposits]` that is not an account id.
    #[error("accounts.deposits: {account:?} is not an account id")]
    NotAnAccount {
        /// The key as written.
        account: String,
        /// Why it does not parse.
        #[source]
        source: ParseIntError,
    },
    /// Two keys of `[accounts.deposits]` for one account (`7` and `007`).
    #[error("accounts.deposits: account {id} is listed twice")]
    DepositListedTwice {
        /// The account.
        id: u64,
    },
    /// A deposit to the insurance fund's or the fee account's id.
    #[error("accounts.deposits: account {id} is reserved ({RESERVED_ACCOUNTS}): no deposit can go there")]
    DepositToReserved {
        /// The account.
        id: u64,
    },
    /// A deposit for an account no key trades (it would be dropped silently).
    #[error("accounts.deposits: account {id} has no key in {file} (deposits go to the keys' accounts)")]
    DepositWithoutKey {
        /// The account.
        id: u64,
        /// The accounts file, or "the demo keys".
        file: String,
    },
    /// A key on the insurance fund's or the fee account's id.
    #[error("accounts.keys_file {file}: key id {key} is on account {account}, which is reserved ({RESERVED_ACCOUNTS})")]
    KeyOnReserved {
        /// The accounts file, or "the demo keys".
        file: String,
        /// The key id.
        key: u64,
        /// The account.
        account: AccountId,
    },
    /// No accounts file, and a port that is not on loopback: the demo keys are public.
    #[error(
        "no accounts.keys_file: the public demo keys are only accepted on loopback addresses, and {addr} is not one"
    )]
    DemoKeysOffLoopback {
        /// The first port that is not on loopback.
        addr: SocketAddr,
    },
    /// `mode = "single-thread"` with `durability = "fsync"`.
    #[error(
        "pipeline.mode = \"single-thread\" runs with pipeline.durability = \"os\" only: with \"fsync\" \
         the one thread would wait for the disk; use pipeline.mode = \"threads\" (group commit)"
    )]
    SingleThreadFsync,
    /// `chain = "rpc"` without its table.
    #[error("settlement.chain = \"rpc\" needs a [settlement.rpc] table")]
    NoRpcTable,
    /// `settlement.rpc.contract` that is not an address.
    #[error("settlement.rpc.contract")]
    Contract(#[source] AddressError),
    /// A first deposit with `settlement.chain = "rpc"`: the node credits only what the
    /// vault queued, so owners deposit on L1 themselves.
    #[error(
        "{key}{}: {usdc} USDC, but settlement.chain = \"rpc\" credits only deposits made to the vault on L1 \
         (set it to 0; owners deposit with the contract's deposit(account, amount))",
        .account.as_ref().map(|a| format!(".{a}")).unwrap_or_default()
    )]
    DepositOnRpc {
        /// `accounts.deposit_usdc` or `accounts.deposits`.
        key: &'static str,
        /// The account, for `accounts.deposits`.
        account: Option<String>,
        /// What the config deposits.
        usdc: u64,
    },
    /// The environment variable that should hold the submitter's key.
    #[error("settlement.rpc.key_env: the environment variable {name} (the submitter's key) is not set")]
    KeyEnv {
        /// The variable's name.
        name: String,
        /// Why it cannot be read.
        #[source]
        source: std::env::VarError,
    },
}

impl ConfigError {
    /// The key, file or table the error names, outermost first: `"config file"`,
    /// `"accounts.keys_file"`, `"instruments"`, or the key itself for a value out of range
    /// or empty. `None` for errors of the file's text (TOML) or of the OS.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            ConfigError::File { .. } => Some("config file"),
            ConfigError::KeysFile { .. }
            | ConfigError::KeyOnReserved { .. }
            | ConfigError::DemoKeysOffLoopback { .. } => Some("accounts.keys_file"),
            ConfigError::OutOfRange { key, .. } | ConfigError::Empty { key, .. } => Some(key),
            ConfigError::NoInstruments | ConfigError::Instrument { .. } | ConfigError::ListedTwice { .. } => {
                Some("instruments")
            }
            ConfigError::NotAnAccount { .. }
            | ConfigError::DepositListedTwice { .. }
            | ConfigError::DepositToReserved { .. }
            | ConfigError::DepositWithoutKey { .. } => Some("accounts.deposits"),
            ConfigError::DepositOnRpc { key, .. } => Some(key),
            ConfigError::NoRpcTable => Some("settlement.chain"),
            ConfigError::SingleThreadFsync => Some("pipeline.mode"),
            ConfigError::Contract(_) => Some("settlement.rpc.contract"),
            ConfigError::KeyEnv { .. } => Some("settlement.rpc.key_env"),
            _ => None,
        }
    }
}

/// A contract address that does not parse (`--contract`, `settlement.rpc.contract`).
#[derive(Debug, thiserror::Error)]
#[error("--contract {text:?} is not an address")]
pub struct AddressError {
    /// The text given.
    pub text: String,
    /// Why it does not parse.
    #[source]
    pub source: <alloy_primitives::Address as std::str::FromStr>::Err,
}

/// `--contract`'s (or `settlement.rpc.contract`'s) address.
///
/// # Errors
/// [`AddressError`] naming the text.
pub fn address(text: &str) -> Result<alloy_primitives::Address, AddressError> {
    text.parse().map_err(|source| AddressError { text: text.to_string(), source })
}
