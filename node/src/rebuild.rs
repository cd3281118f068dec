//! `l2x settle rebuild CHAIN`: every account's leaf and value, and the root, from the chain
//! alone — no journal, no batch files (docs/SETTLEMENT.md, "Command line"). What a user
//! runs when the operator is gone.
//!
//! ```text
//!  ChainSpec::reader ──▶ l2x_settlement::rebuild::rebuild (every batch read back and checked)
//!                   ──▶ every leaf valued at the last market state, the totals
//!                   ──▶ one JSON object on stdout: the chain, the batches read, the market
//!                       state, every leaf, the totals, the root, the disagreement if any
//! ```
//!
//! Everything that can fail (the chain) fails before anything is written: the JSON is whole
//! or absent. A leaf whose value does not fit in 128 bits is not a failure (the submitter's
//! key can commit one, and it must not keep every other user from their leaf): its figures
//! are `null` with the reason, and the totals say so. The checks are the library's; this module writes
//! what they found and gives the [`Verdict`] the command line maps to its exit code.

use std::io::Write;

use l2x_settlement::audit;
use l2x_settlement::chain::Carrier;
use l2x_settlement::leaf::{FEES_KEY, INSURANCE_KEY};
use l2x_settlement::rebuild::{self, Rebuild, Totals};
use serde_json::{Value, json};

use crate::chain::ChainSpec;
use crate::error::Result;
use crate::settle::{Verdict, markets_json, positions_json};

/// `settle rebuild`: rebuilds every leaf and the root from `chain` and writes them as JSON.
/// [`Verdict::Differs`] when a batch does not rebuild (the JSON names it).
///
/// # Errors
/// The chain cannot be opened or read, or answers something that is not a batch's commit;
/// writing failed.
pub fn rebuild(out: &mut dyn Write, chain: &ChainSpec) -> Result<Verdict> {
    let mut reader = chain.reader()?;
    let r = rebuild::rebuild(reader.as_mut())?;
    let json = to_json(&r);
    writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    Ok(if r.agrees() { Verdict::Agrees } else { Verdict::Differs })
}

/// Who a leaf key is (docs/SETTLEMENT.md, "Account leaf").
fn holder(key: u64) -> &'static str {
    match key {
        INSURANCE_KEY => "insurance",
        FEES_KEY => "fees",
        _ => "account",
    }
}

fn opt(v: Option<i128>) -> Value {
    v.map_or(Value::Null, |v| json!(v.to_string()))
}

/// The JSON of a rebuild (docs/SETTLEMENT.md, "Command line", `rebuild`).
fn to_json(r: &Rebuild) -> Value {
    let accounts: Vec<Value> = r
        .valued()
        .into_iter()
        .map(|(leaf, value)| {
            let (value, unvalued) = match value {
                Ok(v) => (v, None),
                Err(why) => (audit::Value { funding_owed: None, equity: None }, Some(why.to_string())),
            };
            json!({
                "account": leaf.account,
                "holder": holder(leaf.account),
                "collateral": leaf.collateral,
                "positions": positions_json(leaf),
                "hash": leaf.hash().to_string(),
                "funding_owed": opt(value.funding_owed),
                "equity": opt(value.equity),
                "unvalued": unvalued,
            })
        })
        .collect();
    let Totals { leaves, collateral, funding_owed, equity, unvalued, overflow } = r.totals();
    let batches: Vec<Value> = r
        .batches
        .iter()
        .map(|b| {
            let h = &b.header;
            let transaction = b.carrier.transaction().map(|t| t.to_string());
            let versioned_hashes: Option<Vec<String>> = match &b.carrier {
                Carrier::Blobs { versioned_hashes, .. } => {
                    Some(versioned_hashes.iter().map(ToString::to_string).collect())
                }
                _ => None,
            };
            json!({
                "index": h.index,
                "first_seq": h.first_seq,
                "last_seq": h.last_seq,
                "epoch_ts": h.epoch_ts,
                "commands": h.commands,
                "fills": h.fills,
                "leaves": h.leaves,
                "withdrawals": h.withdrawals,
                "rejected": h.rejected,
                "queue_count": h.queue_count,
                "new_root": h.new_root.to_string(),
                "data_hash": h.data_hash.to_string(),
                "data_bytes": h.data_len,
                "carrier": carrier(&b.carrier),
                "transaction": transaction,
                "versioned_hashes": versioned_hashes,
            })
        })
        .collect();
    json!({
        "chain": { "last_batch": r.chain_last, "root": r.chain_root.to_string() },
        "batch": r.state.index,
        "root": r.root().to_string(),
        "agrees": r.agrees(),
        "disagreement": r.finding.as_ref().map(ToString::to_string),
        "batches": batches,
        "markets": markets_json(&r.state.markets),
        "accounts": accounts,
        "totals": {
            "leaves": leaves,
            "collateral": collateral.to_string(),
            "funding_owed": opt(funding_owed),
            "equity": opt(equity),
            "unvalued": unvalued,
            "overflow": overflow,
        },
        "summary": summary(r),
    })
}

fn carrier(c: &Carrier) -> &'static str {
    match c {
        Carrier::Calldata { .. } => "calldata",
        Carrier::Blobs { .. } => "blobs",
        _ => "unknown",
    }
}

/// One sentence: what was rebuilt, and whether it is the chain's.
fn summary(r: &Rebuild) -> String {
    let batches = |last: u64| if last == 1 { "batch 1".to_owned() } else { format!("batches 1-{last}") };
    match (&r.finding, r.chain_last) {
        (None, 0) => "the chain has no committed batch: nothing to rebuild".into(),
        (None, last) => format!(
            "{} read from the chain and checked; the rebuilt root is the chain's last root {}",
            batches(last),
            r.chain_root
        ),
        (Some(f), last) if r.state.index == last => {
            format!("{} read from the chain and checked, but the chain's last root is not theirs: {f}", batches(last))
        }
        (Some(f), _) if r.state.index == 0 => {
            format!("the chain's first batch does not rebuild: {f}")
        }
        (Some(f), _) => format!(
            "the chain's batches rebuild through batch {}, then batch {} does not: {f}",
            r.state.index,
            f.index()
        ),
    }
}
