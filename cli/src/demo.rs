//! `l2x demo`: the flags of [`l2x_node::demo`], which starts the node on its embedded
//! defaults, trades on it over TCP for a few seconds, settles on the embedded chain and
//! verifies every committed root from the journal.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use l2x_node::config::LogLevel;
use l2x_node::demo;

/// Options of `l2x demo`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Options {
    /// Where the demo's node keeps its journal, batches and chain (recreated on each run;
    /// only a directory an earlier demo made is ever removed).
    #[arg(long, default_value = "l2x-demo", value_parser = crate::args::non_empty_path)]
    data_dir: PathBuf,
    /// How long the clients trade, seconds (1 to 3,600).
    #[arg(long, default_value_t = 5, value_parser = crate::args::ranged(1, 3_600))]
    seconds: u64,
    /// The workload's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The node's log level on standard error. Warnings only by default (the status line is
    /// the demo's output); `info` logs every session's logon and logout, as `l2x serve` does.
    #[arg(long, default_value = "warn", value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: String,
}

pub(crate) fn demo(opts: &Options) -> Result<ExitCode> {
    let log_level = match opts.log_level.as_str() {
        "error" => LogLevel::Error,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        _ => LogLevel::Warn,
    };
    crate::logs(log_level.filter());
    let options = demo::Options { data_dir: opts.data_dir.clone(), seconds: opts.seconds, seed: opts.seed, log_level };
    let stdout = io::stdout();
    let terminal = stdout.is_terminal();
    let verdict = demo::run(&options, &mut stdout.lock(), terminal)?;
    Ok(crate::settle::exit(verdict))
}
