//! What the demo prints: a status line a second while it runs, the summary after the stop
//! (orders, acks, open interest, liquidations, each long's position in the final state,
//! the journal and settlement), and the root verification an outside auditor would run.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use alloy_primitives::B256;
use l2x_gateway::metrics::Trading;
use l2x_types::{AccountId, Decimal, InstrumentId};

use super::clients::Stats;
use super::{DemoError, LEVERAGED, Shared};
use crate::chain::ChainSpec;
use crate::node::Stopped;
use crate::settle::{self, Verdict};

/// Open interest of every instrument, in base units: "BTC-PERP 1.234, ETH-PERP 5.6".
pub(super) fn open_interest(trading: &Trading, lots: &[(String, Decimal)]) -> String {
    let each = lots.iter().enumerate().map(|(i, (symbol, lot))| {
        let id = InstrumentId(u32::try_from(i).unwrap_or(u32::MAX));
        format!("{symbol} {}", (Decimal::from(trading.open_interest(id)) * lot).normalize())
    });
    each.collect::<Vec<_>>().join(", ")
}

/// The figures of one status line besides the clients' own.
pub(super) struct StatusLine {
    pub(super) elapsed: Duration,
    pub(super) open_interest: String,
    pub(super) liquidations: u64,
    pub(super) committed: u64,
    pub(super) root: B256,
}

impl StatusLine {
    /// Writes the line: redrawn in place on a terminal, one line a second into a pipe or a
    /// file.
    pub(super) fn write(&self, out: &mut dyn Write, terminal: bool, stats: &Stats) -> std::io::Result<()> {
        let orders = stats.orders.load(Ordering::Relaxed);
        let (p50, p99) = stats.ack_us();
        let root = self.root.to_string();
        let (start, end) = if terminal { ("\r", "") } else { ("", "\n") };
        write!(
            out,
            "{start}{:>3} s  orders {orders} ({:.0}/s)  fills {}  ack p50 {p50} µs p99 {p99} µs  OI {}  liquidated {}  batches {}  root {}…",
            self.elapsed.as_secs(),
            orders as f64 / self.elapsed.as_secs_f64().max(1e-9),
            stats.fills.load(Ordering::Relaxed),
            self.open_interest,
            self.liquidations,
            self.committed,
            &root[..root.len().min(10)],
        )?;
        write!(out, "{end}")?;
        out.flush()
    }
}

/// What was measured when the clients were done.
pub(super) struct End {
    pub(super) elapsed: Duration,
    pub(super) open_interest: String,
    pub(super) liquidations: u64,
    /// BTC-PERP's lot size.
    pub(super) lot: Decimal,
}

/// The summary after the stop. Returns whether every closed epoch was committed.
pub(super) fn summary(out: &mut dyn Write, shared: &Shared, end: &End, stopped: &Stopped) -> Result<bool, DemoError> {
    let stats = &shared.stats;
    writeln!(out)?;
    let orders = stats.orders.load(Ordering::Relaxed);
    let (p50, p99) = stats.ack_us();
    writeln!(
        out,
        "{orders} orders in {:.1} s ({:.0}/s), {} rejected, {} throttled, {} fills; order-to-ack p50 {p50} µs, p99 {p99} µs",
        end.elapsed.as_secs_f64(),
        orders as f64 / end.elapsed.as_secs_f64(),
        stats.rejects.load(Ordering::Relaxed),
        stats.throttled.load(Ordering::Relaxed),
        stats.fills.load(Ordering::Relaxed),
    )?;
    writeln!(
        out,
        "open interest {}; liquidations: {} (accounts, counted per command that liquidated them)",
        end.open_interest, end.liquidations
    )?;
    longs(out, shared, end.lot, stopped)?;
    writeln!(out, "journal: {} commands, final state {}", stopped.last_seq, stopped.state_hash)?;
    let settled = stopped.settled.clone().unwrap_or_default();
    writeln!(
        out,
        "settlement: {} epochs closed, {} batches committed to the embedded chain, last root {}",
        settled.epochs, settled.committed, settled.root
    )?;
    if let Some(e) = &settled.error {
        writeln!(out, "settlement's last pass failed: {e}")?;
    }
    Ok(settled.error.is_none() && settled.committed == settled.epochs)
}

/// Each leveraged long: what it bought, what the final state says it holds.
fn longs(out: &mut dyn Write, shared: &Shared, lot: Decimal, stopped: &Stopped) -> Result<(), DemoError> {
    let ledger = stopped.state.ledger();
    for (i, bought) in shared.longs.bought.iter().enumerate() {
        let id = LEVERAGED.start() + u8::try_from(i)?;
        let account = AccountId(u64::from(id));
        let holds =
            ledger.slot(account).and_then(|s| ledger.account(s).position(InstrumentId(0))).map_or(0, |p| p.size);
        let base = |n: i64| (Decimal::from(n) * lot).normalize();
        let how = if id < LEVERAGED.start() + 3 { "to the margin limit" } else { "5x" };
        writeln!(
            out,
            "  long {id} ({how}): bought {} BTC-PERP, holds {} after the shock{}",
            base(bought.load(Ordering::Relaxed)),
            base(holds),
            if holds == 0 { " (liquidated)" } else { "" }
        )?;
    }
    Ok(())
}

/// Prints the command that verifies every committed root from the journal
/// (`l2x replay DIR --verify-roots --chain-dir DIR/chain`), and runs that verification:
/// the batch files in DIR/batches and the embedded chain in DIR/chain, under the default
/// epochs (the demo's node closes them so).
pub(super) fn verify(out: &mut dyn Write, dir: &Path) -> Result<Verdict, DemoError> {
    let text = dir.to_str().ok_or(DemoError::NotUtf8)?;
    let chain = format!("{text}/chain");
    let args = [text, "--verify-roots", "--chain-dir", &chain];
    writeln!(out, "\nverify every committed root from the journal:\n  l2x replay {}\n", args.join(" "))?;
    let chain = ChainSpec::Embedded { dir: chain.into() };
    let policy = l2x_settlement::epoch::Policy::default();
    // Exactly what the printed command runs.
    Ok(settle::verify_roots(out, dir, None, Some(&chain), policy)?)
}
