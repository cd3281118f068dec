//! The final state of a run (`l2x match --state-out`, docs/SCENARIOS.md, "Final state").

use l2x_engine::StateMachine;
use l2x_types::{Holder, Qty};
use serde::Serialize;

use super::output::{entry_price, usdc};

/// The `--state-out` document (docs/SCENARIOS.md, "Final state").
#[derive(Debug, Serialize)]
pub struct StateReport {
    /// Sequence number of the last command applied.
    pub seq: u64,
    /// The canonical state hash.
    pub state_hash: String,
    /// The insurance fund's equity (collateral + unrealised PnL of positions it took over).
    pub insurance: String,
    /// The insurance fund's collateral.
    pub insurance_collateral: String,
    /// Positions the insurance fund holds.
    pub insurance_positions: Vec<PositionReport>,
    /// The fee account's collateral.
    pub fees: String,
    /// Trading accounts in ascending id.
    pub accounts: Vec<AccountReport>,
    /// The next L1 queue index the state expects; absent for a state that never saw an L1
    /// command (so reports of such states read as before the L1 queue existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l1_next: Option<u64>,
}

/// One account in a [`StateReport`].
#[derive(Debug, Serialize)]
pub struct AccountReport {
    /// Account id.
    pub account: u64,
    /// Collateral.
    pub collateral: String,
    /// Collateral + unrealised PnL − unsettled funding.
    pub equity: String,
    /// Initial requirement (worse side of resting orders).
    pub initial_margin: String,
    /// Maintenance requirement.
    pub maintenance_margin: String,
    /// Open positions.
    pub positions: Vec<PositionReport>,
}

/// One open position in a [`StateReport`].
#[derive(Debug, Serialize)]
pub struct PositionReport {
    /// Instrument.
    pub symbol: String,
    /// Signed size, base units.
    pub size: String,
    /// Average entry price (8 decimals).
    pub entry_price: String,
    /// Entry notional of the open size, exact.
    pub cost: String,
    /// Unrealised PnL at mark.
    pub unrealised_pnl: String,
    /// Realised PnL so far on this instrument.
    pub realised_pnl: String,
    /// Funding not yet settled into collateral (positive: owed by the account).
    pub unsettled_funding: String,
}

impl StateReport {
    /// The report as `l2x match --state-out` writes it: pretty JSON and a final newline.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and vectors always serializes.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// The final state of a run as a [`StateReport`].
pub fn state_report(state: &StateMachine, seq: u64) -> StateReport {
    let ledger = state.ledger();
    let positions = |slot| -> Vec<PositionReport> {
        ledger
            .account(slot)
            .positions
            .iter()
            .filter(|p| p.size != 0)
            .filter_map(|p| {
                let inst = state.instrument(p.instrument)?;
                let mark = ledger.mark(p.instrument).map_or(0, |m| i128::from(m.0));
                let notional = i128::from(p.size) * mark * i128::from(inst.quote_per_tick_lot);
                let unsettled = i128::from(p.size) * (ledger.funding_index(p.instrument) - p.funding_index);
                Some(PositionReport {
                    symbol: inst.symbol.to_string(),
                    size: inst.format_qty(Qty(p.size)),
                    entry_price: entry_price(inst, Qty(p.size), p.cost).unwrap_or_default(),
                    cost: usdc(p.cost),
                    unrealised_pnl: usdc(notional - p.cost),
                    realised_pnl: usdc(p.realised),
                    unsettled_funding: usdc(unsettled),
                })
            })
            .collect()
    };
    let accounts = ledger
        .slots_by_id()
        .into_iter()
        .filter_map(|slot| {
            let Holder::Account(id) = ledger.account(slot).holder else { return None };
            let h = ledger.health(slot);
            Some(AccountReport {
                account: id.0,
                collateral: usdc(i128::from(ledger.account(slot).collateral)),
                equity: usdc(h.equity),
                initial_margin: usdc(h.initial),
                maintenance_margin: usdc(h.maintenance),
                positions: positions(slot),
            })
        })
        .collect();
    StateReport {
        seq,
        state_hash: state.canonical().hash().to_string(),
        insurance: usdc(ledger.health(l2x_risk::Ledger::INSURANCE).equity),
        insurance_collateral: usdc(i128::from(ledger.account(l2x_risk::Ledger::INSURANCE).collateral)),
        insurance_positions: positions(l2x_risk::Ledger::INSURANCE),
        fees: usdc(i128::from(ledger.account(l2x_risk::Ledger::FEES).collateral)),
        accounts,
        l1_next: (!state.l1().is_initial()).then_some(state.l1().next),
    }
}
