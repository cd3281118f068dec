//! Argument types shared by the subcommands: checked numbers and paths, `--durability`,
//! and private keys read from the environment (`--key-env`).
//!
//! clap refuses a bad value before anything runs, naming the flag and what it must be
//! (exit 2); the ranges themselves are the node's (`l2x_node::config::limits`), so a flag
//! and the config key that set the same thing agree.

use std::path::PathBuf;

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

/// `--durability`'s values (the config's `pipeline.durability`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DurabilityName {
    /// A result leaves once its command is in the page cache (survives a killed process).
    Os,
    /// Once an fsync covers it (survives a failed machine).
    Fsync,
}

/// The environment variable that holds the submitter's key unless `--key-env` names another
/// (the same default as the config's `settlement.rpc.key_env`).
pub(crate) const SUBMITTER_KEY_ENV: &str = "L2X_SUBMITTER_KEY";

/// A private key (hex) from the environment variable `var`. Keys never go on the command
/// line, where process listings and shell histories would show them; `whose` says in the
/// error which key was missing.
///
/// # Errors
/// `var` is not set, is empty, or is not valid Unicode.
pub(crate) fn key_from_env(var: &str, whose: &str) -> anyhow::Result<String> {
    match std::env::var(var) {
        Ok(key) if !key.trim().is_empty() => Ok(key.trim().to_string()),
        Ok(_) => anyhow::bail!("the environment variable {var} ({whose}'s private key, hex) is empty"),
        Err(std::env::VarError::NotPresent) => {
            anyhow::bail!("the environment variable {var} ({whose}'s private key, hex) is not set")
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("the environment variable {var} ({whose}'s private key, hex) is not valid UTF-8")
        }
    }
}
