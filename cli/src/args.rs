//! Argument types shared by the subcommands: checked numbers and paths, and `--durability`.
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
