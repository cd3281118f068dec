//! The ranges of the config's numbers, and the bounded file reader.
//!
//! Every number a config file (or a flag that sets the same thing) can hold has a range
//! here, for one of three reasons: a value past it would be an allocation that aborts the
//! process (`pipeline.input_capacity`), a value that makes no sense (`epoch_ms = 0`: an epoch
//! per command), or a value that overflows a unit further in (`deposit_usdc` in micro-USDC).
//! docs/OPERATIONS.md's table gives the same ranges; a test compares them.

use std::io::Read as _;
use std::path::Path;

use super::error::{ConfigError, Result};

/// The account ids no deposit may go to, as the errors name them.
pub const RESERVED_ACCOUNTS: &str =
    "ids 18446744073709551614 and 18446744073709551615 are the insurance fund's and the fee account's";

/// The most whole USDC one deposit may be: its micro-USDC must fit the ledger's i64.
pub const MAX_DEPOSIT_USDC: u64 = (i64::MAX / 1_000_000).unsigned_abs();

/// The largest snapshot interval, commands (`pipeline.snapshot_every`, `match --snapshot-every`).
pub const MAX_SNAPSHOT_EVERY: u64 = 1_000_000_000_000;
/// The longest epoch, ms of sequenced time (a day).
pub const MAX_EPOCH_MS: u64 = 86_400_000;
/// The largest fill limit of an epoch.
pub const MAX_EPOCH_FILLS: u64 = 1_000_000_000;
/// The most confirmations a commit waits for.
pub const MAX_CONFIRMATIONS: u64 = 1_000;

/// Every number of the config file and its range, inclusive (docs/OPERATIONS.md's table
/// says the same: a test compares them). Out of range is an error naming the key.
pub const LIMITS: [(&str, u64, u64); 26] = [
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
    ("settlement.l1_poll_ms", 1, 3_600_000),
    // 0 would be taken as 1 by the chain.
    ("settlement.rpc.confirmations", 1, MAX_CONFIRMATIONS),
    ("settlement.rpc.poll_ms", 1, 3_600_000),
    ("settlement.rpc.replace_after_ms", 1, 86_400_000),
    // Nodes refuse a replacement that pays less than 10 % more.
    ("settlement.rpc.bump_percent", 10, 1_000),
    ("settlement.rpc.max_fee_gwei", 1, 1_000_000),
    ("settlement.rpc.max_blob_fee_gwei", 1, 1_000_000),
    ("settlement.rpc.give_up_after_ms", 1, 86_400_000),
];

/// `key`'s range in [`LIMITS`] (`key` is one of its keys: the caller's list is checked
/// against it by the tests).
pub(super) fn limit(key: &str) -> (u64, u64) {
    LIMITS.iter().find(|(k, _, _)| *k == key).map_or((0, u64::MAX), |&(_, min, max)| (min, max))
}

/// `value` of `key` within `min..=max`.
///
/// # Errors
/// [`ConfigError::OutOfRange`] naming the key and the range.
pub fn within(key: &'static str, value: u64, (min, max): (u64, u64)) -> Result<()> {
    if (min..=max).contains(&value) { Ok(()) } else { Err(ConfigError::OutOfRange { key, value, min, max }) }
}

/// A file of at most `limit` bytes, as text (a config or accounts file: a path to
/// something endless, like /dev/zero, must not exhaust memory).
///
/// # Errors
/// The file cannot be opened or read, is a directory, is over `limit` bytes, or is not
/// UTF-8; each error names the path.
pub fn read_small_file(path: &Path, limit: u64) -> Result<String> {
    let file = std::fs::File::open(path).map_err(|source| ConfigError::Open { path: path.to_path_buf(), source })?;
    if file.metadata().map_err(ConfigError::Metadata)?.is_dir() {
        return Err(ConfigError::Directory { path: path.to_path_buf() });
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(ConfigError::TooLarge { path: path.to_path_buf(), limit });
    }
    String::from_utf8(bytes).map_err(|error| ConfigError::NotUtf8 { path: path.to_path_buf(), error })
}
