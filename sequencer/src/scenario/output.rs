//! Step 3 of a line: its events as JSON lines, in the documented field order
//! (docs/SCENARIOS.md, "Events").

use l2x_engine::StateMachine;
use l2x_types::{Amount, CommandKind, Decimal, Event, Holder, Instrument, Qty, Seq};

/// A quote amount in micro-units as an exact decimal string.
pub(crate) fn usdc(micro: i128) -> String {
    Amount::format_micro(micro)
}

/// A holder in JSON: the account id, or `"insurance"` / `"fees"`.
pub(crate) fn holder_json(h: Holder) -> String {
    match h {
        Holder::Account(a) => a.to_string(),
        Holder::Insurance => "\"insurance\"".to_string(),
        Holder::Fees => "\"fees\"".to_string(),
    }
}

/// The average entry price of `size` lots with entry notional `cost`, in quote per base,
/// rounded half-even to 8 decimals for display (the exact figure is the cost).
pub fn entry_price(inst: &Instrument, size: Qty, cost: i128) -> Option<String> {
    if size.0 == 0 {
        return None;
    }
    let cost = Decimal::try_from_i128_with_scale(cost, Amount::DECIMALS).ok()?;
    let base = Decimal::from(size.0).checked_mul(inst.lot_size)?;
    Some(cost.checked_div(base)?.round_dp(8).normalize().to_string())
}

/// The funding index of an instrument in quote per unit of base (the index itself is in
/// micro-units per lot), exact where the lot size allows, else rounded to 12 decimals.
pub(crate) fn funding_index(inst: &Instrument, index: i128) -> String {
    Decimal::try_from_i128_with_scale(index, Amount::DECIMALS)
        .ok()
        .and_then(|d| d.checked_div(inst.lot_size))
        .map_or_else(|| index.to_string(), |d| d.round_dp(12).normalize().to_string())
}

/// Appends one event as a JSON line (fields in the documented order). Events with no
/// scenario form (an instrument listing) write nothing.
pub fn format_event(state: &StateMachine, seq: Seq, ev: &Event, out: &mut String) {
    match ev {
        Event::InstrumentListed { .. } => return,
        Event::Accepted { .. }
        | Event::Rejected { .. }
        | Event::Amended { .. }
        | Event::Trade(_)
        | Event::Cancelled { .. }
        | Event::Book { .. } => format_order_event(state, seq, ev, out),
        Event::L1Credited { .. }
        | Event::L1Refunded { .. }
        | Event::ForcedWithdrawn { .. }
        | Event::ForcedRejected { .. }
        | Event::L1Bound { .. } => format_l1_event(seq, ev, out),
        _ => format_risk_event(state, seq, ev, out),
    }
    out.push('\n');
}

/// The events of orders and books (without the line's end).
fn format_order_event(state: &StateMachine, seq: Seq, ev: &Event, out: &mut String) {
    use core::fmt::Write as _;
    let symbol = |id| state.instrument(id).map_or("?", |i| i.symbol.as_str());
    let price = |id, p: l2x_types::Price| state.instrument(id).map_or_else(|| p.0.to_string(), |i| i.format_price(p));
    let qty = |id, q: Qty| state.instrument(id).map_or_else(|| q.0.to_string(), |i| i.format_qty(q));
    // Writing to a String cannot fail.
    let _ = match *ev {
        Event::Accepted { account, cid, order_id, .. } => {
            write!(out, r#"{{"ev":"accepted","seq":{seq},"account":{account},"cid":{cid},"order_id":{order_id}}}"#)
        }
        Event::Rejected { kind, account, cid, reason } => {
            let _ = write!(out, r#"{{"ev":"rejected","seq":{seq}"#);
            if !kind.is_order() {
                let _ = write!(out, r#","cmd":"{}""#, kind.as_str());
            }
            if let Some(a) = account {
                let _ = write!(out, r#","account":{a}"#);
            }
            if let Some(c) = cid {
                // A withdraw request's reject carries its request id where orders carry a cid.
                let name = if kind == CommandKind::WithdrawRequest { "request_id" } else { "cid" };
                let _ = write!(out, r#","{name}":{c}"#);
            }
            write!(out, r#","reason":"{reason}"}}"#)
        }
        Event::Amended { account, cid, instrument, price: p, qty: q, priority_kept, .. } => write!(
            out,
            r#"{{"ev":"amended","seq":{seq},"account":{account},"cid":{cid},"price":"{}","qty":"{}","priority_kept":{priority_kept}}}"#,
            price(instrument, p),
            qty(instrument, q)
        ),
        Event::Trade(t) => {
            let taker_cid = if t.liquidation { "null".to_string() } else { t.taker_cid.to_string() };
            let _ = write!(
                out,
                r#"{{"ev":"trade","seq":{seq},"symbol":"{}","price":"{}","qty":"{}","maker_account":{},"maker_cid":{},"taker_account":{},"taker_cid":{taker_cid},"taker_side":"{}""#,
                symbol(t.instrument),
                price(t.instrument, t.price),
                qty(t.instrument, t.qty),
                t.maker_account,
                t.maker_cid,
                t.taker_account,
                t.taker_side
            );
            if t.liquidation {
                let _ = write!(out, r#","liquidation":true"#);
            }
            write!(out, "}}")
        }
        Event::Cancelled { account, cid, instrument, qty: q, leaves, reason, .. } => write!(
            out,
            r#"{{"ev":"cancelled","seq":{seq},"account":{account},"cid":{cid},"qty":"{}","leaves":"{}","reason":"{reason}"}}"#,
            qty(instrument, q),
            qty(instrument, leaves)
        ),
        Event::Book { instrument, side, price: p, qty: q, orders } => write!(
            out,
            r#"{{"ev":"book","seq":{seq},"symbol":"{}","side":"{side}","price":"{}","qty":"{}","orders":{orders}}}"#,
            symbol(instrument),
            price(instrument, p),
            qty(instrument, q)
        ),
        _ => Ok(()),
    };
}

/// The events of positions, balances, funding and liquidation (without the line's end).
fn format_risk_event(state: &StateMachine, seq: Seq, ev: &Event, out: &mut String) {
    use core::fmt::Write as _;
    let symbol = |id| state.instrument(id).map_or("?", |i| i.symbol.as_str());
    let price = |id, p: l2x_types::Price| state.instrument(id).map_or_else(|| p.0.to_string(), |i| i.format_price(p));
    let qty = |id, q: Qty| state.instrument(id).map_or_else(|| q.0.to_string(), |i| i.format_qty(q));
    // Writing to a String cannot fail.
    let _ = match *ev {
        Event::Position { holder, instrument, size, cost, realised } => {
            let entry = state
                .instrument(instrument)
                .and_then(|i| entry_price(i, size, cost))
                .map_or_else(|| "null".to_string(), |e| format!("\"{e}\""));
            write!(
                out,
                r#"{{"ev":"position","seq":{seq},"account":{},"symbol":"{}","size":"{}","entry_price":{entry},"cost":"{}","realised_pnl":"{}"}}"#,
                holder_json(holder),
                symbol(instrument),
                qty(instrument, size),
                usdc(cost),
                usdc(realised)
            )
        }
        Event::Balance { holder, collateral } => write!(
            out,
            r#"{{"ev":"balance","seq":{seq},"account":{},"collateral":"{}"}}"#,
            holder_json(holder),
            usdc(i128::from(collateral.0))
        ),
        Event::Withdrawn { account, request_id, amount, collateral } => write!(
            out,
            r#"{{"ev":"withdrawn","seq":{seq},"account":{account},"request_id":{request_id},"amount":"{}","collateral":"{}"}}"#,
            usdc(i128::from(amount.0)),
            usdc(i128::from(collateral.0))
        ),
        Event::Funding { instrument, rate, index } => write!(
            out,
            r#"{{"ev":"funding","seq":{seq},"symbol":"{}","rate":"{}","index":"{}"}}"#,
            symbol(instrument),
            rate.format(),
            state.instrument(instrument).map_or_else(|| index.to_string(), |i| funding_index(i, index))
        ),
        Event::Liquidation { account, instrument, side, qty: q, price: p, fee } => write!(
            out,
            r#"{{"ev":"liquidation","seq":{seq},"account":{account},"symbol":"{}","side":"{side}","qty":"{}","price":"{}","fee":"{}"}}"#,
            symbol(instrument),
            qty(instrument, q),
            price(instrument, p),
            usdc(fee)
        ),
        Event::Takeover { account, instrument, side, qty: q, price: p } => write!(
            out,
            r#"{{"ev":"takeover","seq":{seq},"account":{account},"symbol":"{}","side":"{side}","qty":"{}","price":"{}"}}"#,
            symbol(instrument),
            qty(instrument, q),
            price(instrument, p)
        ),
        Event::Insurance { delta, balance } => write!(
            out,
            r#"{{"ev":"insurance","seq":{seq},"delta":"{}","balance":"{}"}}"#,
            usdc(delta),
            usdc(i128::from(balance.0))
        ),
        Event::Adl { account, counterparty, instrument, side, qty: q, price: p } => write!(
            out,
            r#"{{"ev":"adl","seq":{seq},"account":{account},"counterparty":{counterparty},"symbol":"{}","side":"{side}","qty":"{}","price":"{}"}}"#,
            symbol(instrument),
            qty(instrument, q),
            price(instrument, p)
        ),
        Event::LiquidationIncomplete { account, instrument, qty: q } => write!(
            out,
            r#"{{"ev":"liquidation_incomplete","seq":{seq},"account":{account},"symbol":"{}","qty":"{}"}}"#,
            symbol(instrument),
            qty(instrument, q)
        ),
        _ => Ok(()),
    };
}

/// The events of the L1 queue and the vault binding (without the line's end).
fn format_l1_event(seq: Seq, ev: &Event, out: &mut String) {
    use core::fmt::Write as _;
    let amount = |a: Amount| usdc(i128::from(a.0));
    // Writing to a String cannot fail.
    let _ = match *ev {
        Event::L1Credited { index, holder, amount: a } => write!(
            out,
            r#"{{"ev":"l1_credited","seq":{seq},"index":{index},"account":{},"amount":"{}"}}"#,
            holder_json(holder),
            amount(a)
        ),
        Event::L1Refunded { index, holder, amount: a, reason } => write!(
            out,
            r#"{{"ev":"l1_refunded","seq":{seq},"index":{index},"account":{},"amount":"{}","reason":"{reason}"}}"#,
            holder_json(holder),
            amount(a)
        ),
        Event::ForcedWithdrawn { index, account, amount: a } => write!(
            out,
            r#"{{"ev":"forced_withdrawn","seq":{seq},"index":{index},"account":{account},"amount":"{}"}}"#,
            amount(a)
        ),
        Event::ForcedRejected { index, account, amount: a, reason } => write!(
            out,
            r#"{{"ev":"forced_rejected","seq":{seq},"index":{index},"account":{account},"amount":"{}","reason":"{reason}"}}"#,
            amount(a)
        ),
        Event::L1Bound { chain_id, contract, token } => write!(
            out,
            r#"{{"ev":"l1_bound","seq":{seq},"chain_id":{chain_id},"contract":"{contract}","token":"{token}"}}"#
        ),
        _ => Ok(()),
    };
}
