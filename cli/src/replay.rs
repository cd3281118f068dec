//! `l2x replay`: the risk desk's tool (docs/REPLAY.md) over `l2x_replay`, and the auditor's
//! root verification over `l2x_node::settle`.
//!
//! ```text
//!  replay DIR [--until-seq N | --until-time T] [--state-hash] [--no-progress]
//!     the state at the point: sequence, time, accounts, open interest, insurance fund,
//!     state hash
//!  replay DIR --verify-roots [--batches B] [CHAIN]
//!     every epoch's root recomputed and compared (what `settle verify` does)
//! ```

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use l2x_node::settle;
use l2x_replay::Until;
use l2x_replay::point::{parse_point, parse_time};
use l2x_replay::report::{self, Query};
use l2x_types::AccountId;

/// Options of `l2x replay`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Options {
    /// The journal directory (its snapshots are used when they help).
    #[arg(value_parser = crate::args::non_empty_path)]
    dir: PathBuf,
    /// Stop after this sequence number.
    #[arg(long, conflicts_with = "until_time")]
    until_seq: Option<u64>,
    /// Stop after the last command sequenced at or before this time: `+DURATION` after the
    /// journal's first command (`+90s`, `+1.5m`, `+250ms`), a UTC time
    /// (`2026-11-21T12:30:00Z`), or nanoseconds since the Unix epoch.
    #[arg(long, value_parser = parse_point)]
    until_time: Option<Until>,
    /// Print only `{"seq":N,"state_hash":"0x…"}`.
    #[arg(long)]
    state_hash: bool,
    /// No progress bar (it is shown on a terminal only, on standard error).
    #[arg(long)]
    no_progress: bool,
    /// Write a view as rows instead of the summary: `accounts`, `positions`, `book` (at the
    /// point, or every --every), `trades`, `liquidations` (all up to the point).
    #[arg(long, value_parser = ["accounts", "positions", "book", "trades", "liquidations"])]
    dump: Option<String>,
    /// The format: `csv` (with a header) or `json` (one object per line) for --dump (csv
    /// by default); for --risk-params a table on the terminal unless `csv` (one row per
    /// account) or `json` (the whole comparison).
    #[arg(long, value_parser = ["csv", "json"])]
    format: Option<String>,
    /// Replay the same inputs under the risk parameters in this TOML file as well, and
    /// compare (docs/REPLAY.md, "What-if").
    #[arg(long, conflicts_with_all = ["dump", "state_hash"], value_parser = crate::args::non_empty_path)]
    risk_params: Option<PathBuf>,
    /// Only this account's rows.
    #[arg(long, requires = "dump")]
    account: Option<u64>,
    /// With a state view: a sample every DURATION of sequenced time from the journal's first
    /// command (`1m`, `30s`, `500ms`), then one at the point: a time series.
    #[arg(long, value_parser = parse_time, requires = "dump")]
    every: Option<u64>,
    /// Recompute every epoch's state root from the journal and compare with the batch files
    /// (DIR/batches unless --batches) and, with a chain, the roots committed there; exit 1
    /// naming the first batch that differs. What an outside auditor runs.
    #[arg(long, conflicts_with_all = ["dump", "state_hash", "until_seq", "until_time"])]
    verify_roots: bool,
    /// With --verify-roots: the batch files to compare with.
    #[arg(long, value_parser = crate::args::non_empty_path)]
    batches: Option<PathBuf>,
    /// With --verify-roots: the chain to compare with.
    #[command(flatten)]
    chain: crate::settle::ChainArgs,
    /// With --verify-roots: the epoch policy the submitter used.
    #[command(flatten)]
    epochs: crate::settle::EpochArgs,
}

/// The library's query: the flags, parsed.
fn query(opts: &Options) -> Result<Query> {
    Ok(Query {
        dir: opts.dir.clone(),
        until: match (opts.until_seq, opts.until_time) {
            (Some(n), _) => Until::Seq(n),
            (None, Some(t)) => t,
            (None, None) => Until::End,
        },
        progress: !opts.no_progress,
        state_hash: opts.state_hash,
        dump: opts.dump.as_deref().map(str::parse).transpose()?,
        format: opts.format.as_deref().map(str::parse).transpose()?,
        risk_params: opts.risk_params.clone(),
        account: opts.account.map(AccountId),
        every: opts.every,
    })
}

/// `l2x replay`: roots verified by [`l2x_node::settle::verify_roots`] (the settlement audit),
/// anything else reported by [`l2x_replay::report`].
pub(crate) fn replay(opts: &Options) -> Result<ExitCode> {
    if opts.verify_roots {
        let chain = opts.chain.spec();
        let mut out = io::stdout().lock();
        let verdict =
            settle::verify_roots(&mut out, &opts.dir, opts.batches.as_deref(), chain.as_ref(), opts.epochs.policy())?;
        return Ok(crate::settle::exit(verdict));
    }
    anyhow::ensure!(
        opts.batches.is_none() && opts.chain.spec().is_none(),
        "--batches, --chain-dir and --rpc-url are for --verify-roots"
    );
    let mut out = io::BufWriter::new(io::stdout().lock());
    report::report(&query(opts)?, &mut out, &mut io::stderr())?;
    Ok(ExitCode::SUCCESS)
}
