//! `l2x replay`: the risk desk's tool (docs/REPLAY.md) over `l2x_replay`.
//!
//! ```text
//!  replay DIR [--until-seq N | --until-time T] [--state-hash] [--no-progress]
//!     the state at the point: sequence, time, accounts, open interest, insurance fund,
//!     state hash
//! ```

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use l2x_replay::views::{Format, Table, View, Viewer};
use l2x_replay::whatif::{self, RiskParams, RunStats};
use l2x_replay::{Options as ReplayOptions, Outcome, Until};
use l2x_risk::Ledger;
use l2x_types::{AccountId, Amount, Decimal, Timestamp, format_units};

/// Options of `l2x replay`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Options {
    /// The journal directory (its snapshots are used when they help).
    #[arg(value_parser = crate::config::non_empty_path)]
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
    #[arg(long, conflicts_with_all = ["dump", "state_hash"], value_parser = crate::config::non_empty_path)]
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
    #[arg(long, value_parser = crate::config::non_empty_path)]
    batches: Option<PathBuf>,
    /// With --verify-roots: the chain to compare with.
    #[command(flatten)]
    chain: crate::settle::ChainArgs,
    /// With --verify-roots: the epoch policy the submitter used.
    #[command(flatten)]
    epochs: crate::settle::EpochArgs,
}

impl Options {
    /// The options of `l2x replay ARGS…` (the demo runs the command it prints).
    pub(crate) fn parse_args(args: &[&str]) -> Result<Options> {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            replay: Options,
        }
        let all = std::iter::once("replay").chain(args.iter().copied());
        Ok(<Wrapper as clap::Parser>::try_parse_from(all)?.replay)
    }
}

/// A duration or instant in nanoseconds: a bare integer, or a decimal with a unit.
pub(crate) fn parse_time(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let units: [(&str, u64); 7] = [
        ("ns", 1),
        ("us", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
    ];
    let (number, unit) =
        units.iter().find_map(|(suffix, ns)| text.strip_suffix(suffix).map(|n| (n, *ns))).unwrap_or((text, 1));
    let value: Decimal =
        number.parse().map_err(|_| format!("{text:?} is not a time (e.g. 1500000000, 1.5s, 90s, 2m)"))?;
    let ns = value.checked_mul(Decimal::from(unit));
    match ns {
        Some(v) if v.is_sign_negative() || !v.fract().is_zero() => {
            Err(format!("{text:?}: not a whole, non-negative number of nanoseconds"))
        }
        Some(v) => u64::try_from(v).map_err(|_| format!("{text:?} is out of range: {NS_RANGE}")),
        None => Err(format!("{text:?} is out of range: {NS_RANGE}")),
    }
}

/// What fits a time in nanoseconds (a u64), as errors say it.
const NS_RANGE: &str = "times are at most 18446744073709551615 ns (about 584 years) after 1970-01-01T00:00:00Z";

/// The UTC times `--until-time` takes, as errors say it.
const UTC_RANGE: &str =
    "UTC times run from 1970-01-01T00:00:00Z to 2554-07-21T23:34:33.709551615Z (nanoseconds since 1970 in 64 bits)";

/// A point in time: `+DURATION` from the journal's start, a UTC time, or epoch nanoseconds.
pub(crate) fn parse_point(text: &str) -> Result<Until, String> {
    let text = text.trim();
    if let Some(d) = text.strip_prefix('+') {
        return parse_time(d).map(Until::Elapsed);
    }
    if text.contains('T') {
        return parse_utc(text).map(|ns| Until::Time(Timestamp(ns)));
    }
    parse_time(text).map(|ns| Until::Time(Timestamp(ns)))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` as nanoseconds since the Unix epoch.
fn parse_utc(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a UTC time like 2026-11-21T12:30:00Z");
    let body = text.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = body.split_once('T').ok_or_else(bad)?;
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || t.len() != 3 {
        return Err(bad());
    }
    let (y, m, day) = (num(d[0])?, num(d[1])?, num(d[2])?);
    let (hh, mm) = (num(t[0])?, num(t[1])?);
    let secs: Decimal = t[2].parse().map_err(|_| bad())?;
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in_month = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    // Nanoseconds since 1970 fit a u64 until 2554-07-21T23:34:33.709551615Z.
    if !(1970..=2554).contains(&y) {
        return Err(format!("{text:?} is out of range: {UTC_RANGE}"));
    }
    let real_date = (1..=12).contains(&m) && (1..=days_in_month).contains(&day);
    if !real_date
        || !(0..=23).contains(&hh)
        || !(0..=59).contains(&mm)
        || secs.is_sign_negative()
        || secs >= Decimal::from(61)
    {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm), proleptic Gregorian.
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let whole = Decimal::from(days * 86_400 + hh * 3_600 + mm * 60) + secs;
    let ns = whole.checked_mul(Decimal::from(1_000_000_000u64)).ok_or_else(bad)?;
    if !ns.fract().is_zero() {
        return Err(format!("{text:?}: a UTC time to the nanosecond at most (9 decimals of seconds)"));
    }
    u64::try_from(ns).map_err(|_| format!("{text:?} is out of range: {UTC_RANGE}"))
}

fn until(opts: &Options) -> Until {
    match (opts.until_seq, opts.until_time) {
        (Some(n), _) => Until::Seq(n),
        (None, Some(t)) => t,
        (None, None) => Until::End,
    }
}

/// Reports what the replay read that is not the state: refused snapshots, a torn tail.
fn report_reading(outcome: &Outcome) {
    for (path, why) in &outcome.refused_snapshots {
        eprintln!("l2x: refused snapshot {}: {why}", path.display());
    }
    if let Some(torn) = &outcome.torn {
        eprintln!(
            "l2x: {}: torn record at byte offset {} ({} bytes) after seq {}: replay stops before it",
            torn.path.display(),
            torn.offset,
            torn.bytes,
            outcome.last_seq
        );
    }
}

/// `--risk-params`: both runs and what differs.
fn what_if(opts: &Options, file: &std::path::Path) -> Result<ExitCode> {
    let name = file.display().to_string();
    let text = crate::config::read_small_file(file, crate::config::Config::MAX_FILE_BYTES)
        .with_context(|| format!("--risk-params {name}"))?;
    let params = RiskParams::parse(&name, &text)?;
    let c = whatif::run(&opts.dir, &name, &params, until(opts), !opts.no_progress)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let usdc = Amount::format_micro;
    let state = &c.states.0;
    let symbol =
        |i: l2x_types::InstrumentId| state.instrument(i).map(|x| x.symbol.as_str().to_string()).unwrap_or_default();
    let accounts: std::collections::BTreeSet<AccountId> =
        c.original.worst_equity.keys().chain(c.what_if.worst_equity.keys()).copied().collect();
    let count = |r: &RunStats, a: AccountId| r.liquidations.iter().filter(|l| l.account == a).count();
    let worst = |r: &RunStats, a: AccountId| r.worst_equity.get(&a).map(|w| usdc(w.0)).unwrap_or_default();
    match opts.format.as_deref() {
        Some("csv") => {
            writeln!(
                out,
                "account,liquidations_original,liquidations_whatif,worst_equity_original,worst_equity_whatif,bankrupt_original,bankrupt_whatif"
            )?;
            for a in &accounts {
                writeln!(
                    out,
                    "{},{},{},{},{},{},{}",
                    a.0,
                    count(&c.original, *a),
                    count(&c.what_if, *a),
                    worst(&c.original, *a),
                    worst(&c.what_if, *a),
                    c.original.bankrupt.contains(a),
                    c.what_if.bankrupt.contains(a)
                )?;
            }
        }
        Some(_) => {
            let run = |r: &RunStats, hash: &str| {
                serde_json::json!({
                    "state_hash": hash,
                    "orders_rejected": r.rejected_orders,
                    "liquidations": r.liquidations.iter().map(|l| serde_json::json!({
                        "seq": l.seq, "account": l.account.0, "symbol": symbol(l.instrument), "kind": l.kind,
                        "qty_lots": l.qty, "price_ticks": l.price,
                    })).collect::<Vec<_>>(),
                    "insurance": r.insurance.iter().map(|(seq, e)| serde_json::json!({"seq": seq, "equity": usdc(*e)})).collect::<Vec<_>>(),
                    "worst_equity": r.worst_equity.iter().map(|(a, (e, seq))| serde_json::json!({"account": a.0, "equity": usdc(*e), "seq": seq})).collect::<Vec<_>>(),
                    "bankrupt": r.bankrupt.iter().map(|a| a.0).collect::<Vec<_>>(),
                })
            };
            let doc = serde_json::json!({
                "seq": c.last_seq,
                "params": name,
                "original": run(&c.original, &c.hashes.0),
                "what_if": run(&c.what_if, &c.hashes.1),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        None => {
            let fund_end = |r: &RunStats| r.insurance.last().map(|x| usdc(x.1)).unwrap_or_else(|| "-".into());
            let fund_low = |r: &RunStats| r.insurance.iter().map(|x| x.1).min().map(usdc).unwrap_or_else(|| "-".into());
            let liquidated = |r: &RunStats| {
                r.liquidations.iter().map(|l| l.account).collect::<std::collections::BTreeSet<_>>().len()
            };
            writeln!(out, "what-if {name}, through seq {}", c.last_seq)?;
            writeln!(out, "{:<28}{:>22}{:>22}", "", "original", "what-if")?;
            let row = |out: &mut dyn Write, k: &str, a: String, b: String| writeln!(out, "{k:<28}{a:>22}{b:>22}");
            row(
                &mut out,
                "liquidation steps",
                c.original.liquidations.len().to_string(),
                c.what_if.liquidations.len().to_string(),
            )?;
            row(
                &mut out,
                "accounts liquidated",
                liquidated(&c.original).to_string(),
                liquidated(&c.what_if).to_string(),
            )?;
            row(
                &mut out,
                "accounts bankrupt",
                c.original.bankrupt.len().to_string(),
                c.what_if.bankrupt.len().to_string(),
            )?;
            row(
                &mut out,
                "orders rejected",
                c.original.rejected_orders.to_string(),
                c.what_if.rejected_orders.to_string(),
            )?;
            row(&mut out, "insurance fund, lowest", fund_low(&c.original), fund_low(&c.what_if))?;
            row(&mut out, "insurance fund, at the end", fund_end(&c.original), fund_end(&c.what_if))?;
            let (appear, disappear) = c.changed_liquidations();
            for (what, list) in [("appears in the what-if", appear), ("disappears in the what-if", disappear)] {
                for l in list {
                    writeln!(
                        out,
                        "liquidation {what}: account {} {} ({}, from seq {})",
                        l.account.0,
                        symbol(l.instrument),
                        l.kind,
                        l.seq
                    )?;
                }
            }
            let differing: Vec<&AccountId> = accounts
                .iter()
                .filter(|a| {
                    worst(&c.original, **a) != worst(&c.what_if, **a)
                        || c.original.bankrupt.contains(a) != c.what_if.bankrupt.contains(a)
                })
                .collect();
            if !differing.is_empty() {
                writeln!(
                    out,
                    "\n{:<10}{:>22}{:>22}{:>10}{:>10}",
                    "account", "worst equity", "what-if", "bankrupt", "what-if"
                )?;
                for a in differing {
                    writeln!(
                        out,
                        "{:<10}{:>22}{:>22}{:>10}{:>10}",
                        a.0,
                        worst(&c.original, *a),
                        worst(&c.what_if, *a),
                        c.original.bankrupt.contains(a),
                        c.what_if.bankrupt.contains(a)
                    )?;
                }
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `--dump`: the view's rows on standard output.
fn dump(opts: &Options, which: &str) -> Result<ExitCode> {
    let view = match which {
        "accounts" => View::Accounts,
        "positions" => View::Positions,
        "book" => View::Book,
        "trades" => View::Trades,
        _ => View::Liquidations,
    };
    anyhow::ensure!(opts.every != Some(0), "--every must be longer than zero");
    anyhow::ensure!(
        opts.every.is_none() || !view.of_events(),
        "--every samples the state views (accounts, positions, book); {which} are events: each is written"
    );
    let format = if opts.format.as_deref() == Some("json") { Format::Json } else { Format::Csv };
    let stdout = io::stdout();
    let table = Table::new(view, format, opts.account.map(AccountId), io::BufWriter::new(stdout.lock()));
    let mut viewer = Viewer::new(table, opts.every);
    let run = ReplayOptions {
        until: until(opts),
        from_start: view.of_events() || opts.every.is_some(),
        progress: !opts.no_progress,
    };
    let outcome = l2x_replay::replay(&opts.dir, &Ledger::default(), run, &mut viewer)
        .with_context(|| format!("replaying {}", opts.dir.display()))?;
    report_reading(&outcome);
    viewer.at_end(&outcome.state, outcome.last_seq, until(opts));
    viewer.table.finish()?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn replay(opts: &Options) -> Result<ExitCode> {
    if opts.verify_roots {
        let batches = opts.batches.clone().or_else(|| {
            let default = opts.dir.join("batches");
            default.is_dir().then_some(default)
        });
        return crate::settle::verify(&opts.dir, batches, &opts.chain, opts.epochs);
    }
    anyhow::ensure!(
        opts.batches.is_none() && !opts.chain.is_named(),
        "--batches, --chain-dir and --rpc-url are for --verify-roots"
    );
    if let Some(which) = &opts.dump {
        return dump(opts, which);
    }
    anyhow::ensure!(opts.format.is_none() || opts.risk_params.is_some(), "--format is for --dump and --risk-params");
    if let Some(file) = &opts.risk_params {
        return what_if(opts, file);
    }
    let ledger = Ledger::default();
    let run = ReplayOptions { until: until(opts), from_start: false, progress: !opts.no_progress && !opts.state_hash };
    let outcome = l2x_replay::replay(&opts.dir, &ledger, run, &mut ())
        .with_context(|| format!("replaying {}", opts.dir.display()))?;
    report_reading(&outcome);
    let state = &outcome.state;
    let hash = state.canonical().hash();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if opts.state_hash {
        writeln!(out, "{}", serde_json::json!({"seq": outcome.last_seq, "state_hash": hash.to_string()}))?;
        return Ok(ExitCode::SUCCESS);
    }
    if outcome.reached_end && (opts.until_seq.is_some() || opts.until_time.is_some()) {
        writeln!(out, "the journal ends at seq {}, before the point asked for", outcome.last_seq)?;
    }
    let ledger = state.ledger();
    writeln!(out, "seq            {}", outcome.last_seq)?;
    writeln!(out, "time           {} ns", state.now().0)?;
    if let Some((seq, path)) = &outcome.snapshot {
        writeln!(out, "from snapshot  {} ({})", seq, path.display())?;
    }
    writeln!(out, "replayed       {} commands", outcome.replayed)?;
    writeln!(out, "accounts       {}", ledger.slots_by_id().len())?;
    writeln!(out, "resting orders {}", state.resting_count())?;
    for inst in state.instruments() {
        let long: i128 = ledger
            .accounts()
            .iter()
            .flat_map(|a| a.positions.iter())
            .filter(|p| p.instrument == inst.id && p.size > 0)
            .map(|p| i128::from(p.size))
            .sum();
        let mark = state.mark(inst.id).map_or("none".to_string(), |p| format_units(i128::from(p.0), inst.tick_size));
        writeln!(out, "open interest  {} {} (mark {mark})", format_units(long, inst.lot_size), inst.symbol.as_str())?;
    }
    let insurance = ledger.health(Ledger::INSURANCE).equity;
    writeln!(out, "insurance fund {} USDC (equity)", Amount::format_micro(insurance))?;
    writeln!(out, "state hash     {hash}")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::{parse_point, parse_time};

    #[test]
    fn times_with_and_without_units() {
        assert_eq!(parse_time("1500"), Ok(1500));
        assert_eq!(parse_time("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_time("2m"), Ok(120_000_000_000));
        assert_eq!(parse_time("250ms"), Ok(250_000_000));
        assert_eq!(parse_time("1h"), Ok(3_600_000_000_000));
        for bad in ["", "s", "-1s", "1.5ns", "abc", "1x", "99999999999999999999d"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn points_in_time() {
        use l2x_replay::Until;
        use l2x_types::Timestamp;
        assert_eq!(parse_point("+90s"), Ok(Until::Elapsed(90_000_000_000)));
        assert_eq!(parse_point("1970-01-01T00:00:01Z"), Ok(Until::Time(Timestamp(1_000_000_000))));
        // `date -u -d 2026-11-21T12:30:00Z +%s` = 1795264200.
        assert_eq!(parse_point("2026-11-21T12:30:00.5Z"), Ok(Until::Time(Timestamp(1_795_264_200_500_000_000))));
        assert_eq!(parse_point("2000-02-29T00:00:00Z"), Ok(Until::Time(Timestamp(951_782_400_000_000_000))));
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-21T12:30:-1Z",
            "999999999999-01-01T00:00:00Z",
            "2026-11-21T12:30:00",
            "2026-11-21 12:30:00Z",
            "+",
            "+x",
        ] {
            assert!(parse_point(bad).is_err(), "{bad}");
        }
    }

    /// Regression: a UTC time past the nanosecond range (which REPLAY.md said was accepted)
    /// was called "not a UTC time"; it is out of range, and the range is given.
    #[test]
    fn until_time_past_the_nanosecond_range_says_so() {
        use l2x_replay::Until;
        use l2x_types::Timestamp;
        let last = parse_point("2554-07-21T23:34:33.709551615Z");
        assert_eq!(last, Ok(Until::Time(Timestamp(u64::MAX))));
        for late in
            ["2554-07-21T23:34:33.709551616Z", "2554-12-31T23:59:59Z", "2555-01-01T00:00:00Z", "1969-12-31T23:59:59Z"]
        {
            let e = parse_point(late).unwrap_err();
            assert!(e.contains("is out of range") && e.contains("2554-07-21T23:34:33.709551615Z"), "{late}: {e}");
        }
        let e = parse_point("18446744073709551616").unwrap_err();
        assert!(e.contains("out of range") && e.contains("18446744073709551615 ns"), "{e}");
        assert!(parse_point("2026-13-01T00:00:00Z").unwrap_err().contains("is not a UTC time like"));
        assert!(parse_point("2026-11-21T12:30:00.0000000001Z").unwrap_err().contains("to the nanosecond"));
    }
}
