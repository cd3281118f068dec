//! A what-if comparison as the desk reads it: a table on the terminal, one CSV row per
//! account, or the whole comparison as JSON.

use std::collections::BTreeSet;
use std::io::{self, Write};

use l2x_types::{AccountId, Amount, InstrumentId};

use crate::whatif::{Comparison, RunStats};

/// USDC from micro-units.
fn usdc(micro: i128) -> String {
    Amount::format_micro(micro)
}

/// The symbol of `id` in the comparison's original state ("" if it lists none).
fn symbol(c: &Comparison, id: InstrumentId) -> String {
    c.states.0.instrument(id).map(|x| x.symbol.as_str().to_string()).unwrap_or_default()
}

/// Every account with a worst equity in either run, in order.
fn accounts(c: &Comparison) -> BTreeSet<AccountId> {
    c.original.worst_equity.keys().chain(c.what_if.worst_equity.keys()).copied().collect()
}

/// The liquidation steps of account `a` in run `r`.
fn count(r: &RunStats, a: AccountId) -> usize {
    r.liquidations.iter().filter(|l| l.account == a).count()
}

/// The worst equity of account `a` in run `r` ("" if it had none).
fn worst(r: &RunStats, a: AccountId) -> String {
    r.worst_equity.get(&a).map(|w| usdc(w.0)).unwrap_or_default()
}

/// One row per account, a header first.
pub(super) fn csv(c: &Comparison, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "account,liquidations_original,liquidations_whatif,worst_equity_original,worst_equity_whatif,bankrupt_original,bankrupt_whatif"
    )?;
    for a in &accounts(c) {
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
    Ok(())
}

/// The whole comparison as one pretty-printed JSON object.
pub(super) fn json(c: &Comparison, name: &str, out: &mut impl Write) -> Result<(), super::ReportError> {
    let run = |r: &RunStats, hash: &str| {
        serde_json::json!({
            "state_hash": hash,
            "orders_rejected": r.rejected_orders,
            "liquidations": r.liquidations.iter().map(|l| serde_json::json!({
                "seq": l.seq, "account": l.account.0, "symbol": symbol(c, l.instrument), "kind": l.kind,
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
    Ok(())
}

/// The table: counts side by side, liquidations that appear or disappear, and the accounts
/// whose worst equity or bankruptcy differ.
pub(super) fn table(c: &Comparison, name: &str, out: &mut impl Write) -> io::Result<()> {
    counts(c, name, out)?;
    let (appear, disappear) = c.changed_liquidations();
    for (what, list) in [("appears in the what-if", appear), ("disappears in the what-if", disappear)] {
        for l in list {
            writeln!(
                out,
                "liquidation {what}: account {} {} ({}, from seq {})",
                l.account.0,
                symbol(c, l.instrument),
                l.kind,
                l.seq
            )?;
        }
    }
    differing_accounts(c, out)
}

/// The table's head: what each run counted.
fn counts(c: &Comparison, name: &str, out: &mut impl Write) -> io::Result<()> {
    let fund_end = |r: &RunStats| r.insurance.last().map(|x| usdc(x.1)).unwrap_or_else(|| "-".into());
    let fund_low = |r: &RunStats| r.insurance.iter().map(|x| x.1).min().map(usdc).unwrap_or_else(|| "-".into());
    let liquidated = |r: &RunStats| r.liquidations.iter().map(|l| l.account).collect::<BTreeSet<_>>().len();
    writeln!(out, "what-if {name}, through seq {}", c.last_seq)?;
    writeln!(out, "{:<28}{:>22}{:>22}", "", "original", "what-if")?;
    let (o, w) = (&c.original, &c.what_if);
    let rows = [
        ("liquidation steps", o.liquidations.len().to_string(), w.liquidations.len().to_string()),
        ("accounts liquidated", liquidated(o).to_string(), liquidated(w).to_string()),
        ("accounts bankrupt", o.bankrupt.len().to_string(), w.bankrupt.len().to_string()),
        ("orders rejected", o.rejected_orders.to_string(), w.rejected_orders.to_string()),
        ("insurance fund, lowest", fund_low(o), fund_low(w)),
        ("insurance fund, at the end", fund_end(o), fund_end(w)),
    ];
    for (k, a, b) in rows {
        writeln!(out, "{k:<28}{a:>22}{b:>22}")?;
    }
    Ok(())
}

/// The accounts whose worst equity or bankruptcy differ between the runs, if any.
fn differing_accounts(c: &Comparison, out: &mut impl Write) -> io::Result<()> {
    let accounts = accounts(c);
    let differing: Vec<&AccountId> = accounts
        .iter()
        .filter(|a| {
            worst(&c.original, **a) != worst(&c.what_if, **a)
                || c.original.bankrupt.contains(a) != c.what_if.bankrupt.contains(a)
        })
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{:<10}{:>22}{:>22}{:>10}{:>10}", "account", "worst equity", "what-if", "bankrupt", "what-if")?;
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
    Ok(())
}
