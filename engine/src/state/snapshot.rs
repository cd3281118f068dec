//! The state machine's canonical state ([`CanonicalState`]: what the state hash covers and a
//! snapshot stores), and a state machine rebuilt from one.

use l2x_risk::Ledger;
use l2x_types::{Amount, InstrumentId, OrderId, Qty, Symbol};

use super::{ListingError, StateMachine};
use crate::book::Order;
use crate::canonical::{AccountState, CanonicalState, MatchingState, PositionState};

/// Why a canonical state could not be restored: what in it is inconsistent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// An instrument of the snapshot does not list.
    #[error("inconsistent snapshot: instrument {index} ({symbol}) does not list")]
    Instrument {
        /// Its place in the snapshot (its id).
        index: usize,
        /// Its symbol.
        symbol: Symbol,
        /// Why it does not list.
        #[source]
        source: ListingError,
    },
    /// An instrument has no funding index.
    #[error("inconsistent snapshot: missing funding index")]
    MissingFundingIndex {
        /// The instrument's place in the snapshot.
        index: usize,
    },
    /// A resting order names an unknown instrument, has no open quantity, or repeats a
    /// live (account, client id).
    #[error("inconsistent snapshot: resting order {order} is not valid here")]
    Order {
        /// The order.
        order: OrderId,
    },
    /// A resting order belongs to an account the snapshot does not have.
    #[error("inconsistent snapshot: order {order} of an unknown account")]
    UnknownAccount {
        /// The order.
        order: OrderId,
    },
    /// The parts are each valid but rebuilding them gives another state (a derived part,
    /// such as an open quantity, disagrees with what it derives from).
    #[error("inconsistent snapshot: the snapshot's parts disagree (rebuilding it gives another state)")]
    Disagrees,
    /// The rebuilt state breaks an invariant.
    #[error("inconsistent snapshot: restored state breaks an invariant: {what}")]
    Invariant {
        /// The first broken invariant.
        what: String,
    },
}

impl StateMachine {
    /// Rebuilds a state machine from a canonical state (a snapshot): instruments and marks,
    /// the ledger, then every resting order in priority order; every index (cid, accounts,
    /// levels, expiries, the liquidation index) is recomputed. The result's canonical state
    /// must equal `state` exactly, which also validates the snapshot's consistency.
    ///
    /// # Errors
    /// [`RestoreError`] naming what in the snapshot is inconsistent.
    pub fn restore(state: &CanonicalState, ledger: Ledger) -> Result<StateMachine, RestoreError> {
        let mut sm = StateMachine::with_ledger(ledger);
        for (i, (spec, mark)) in state.matching.instruments.iter().enumerate() {
            sm.list(spec).map_err(|source| RestoreError::Instrument { index: i, symbol: spec.symbol, source })?;
            let index = state.funding_indexes.get(i).copied().ok_or(RestoreError::MissingFundingIndex { index: i })?;
            sm.ledger.restore_market(InstrumentId(u32::try_from(i).unwrap_or(u32::MAX)), *mark, index);
        }
        for a in &state.accounts {
            let positions: Vec<l2x_risk::Position> = a
                .positions
                .iter()
                .map(|p| {
                    let mut record = l2x_risk::Position::new(p.instrument, p.funding_index);
                    record.size = p.size.0;
                    record.cost = p.cost;
                    record.realised = p.realised;
                    record
                })
                .collect();
            sm.ledger.restore_account(a.holder, a.collateral.0, &positions);
        }
        sm.ledger.restore_flows_and_index(state.deposits, state.withdrawals);
        sm.now = state.matching.now;
        for o in &state.matching.orders {
            if sm.instrument(o.instrument).is_none()
                || !o.leaves.is_positive()
                || sm.books.find(o.account, o.cid).is_some()
            {
                return Err(RestoreError::Order { order: o.order_id });
            }
            let slot = sm.ledger.slot(o.account).ok_or(RestoreError::UnknownAccount { order: o.order_id })?;
            sm.rest(Order::restored(o, slot));
        }
        sm.next_order_id = state.matching.next_order_id;
        sm.next_trade_id = state.matching.next_trade_id;
        sm.l1 = state.l1;
        sm.books.begin_command();
        sm.touched.clear();
        let rebuilt = sm.canonical();
        if rebuilt != *state {
            return Err(RestoreError::Disagrees);
        }
        sm.check_invariants().map_err(|what| RestoreError::Invariant { what })?;
        Ok(sm)
    }

    /// The canonical form of the whole state, from which the state hash is computed.
    pub fn canonical(&self) -> CanonicalState {
        let matching = MatchingState {
            instruments: self.instruments.iter().map(|i| (i.spec(), self.ledger.mark(i.id))).collect(),
            orders: self.resting_orders(),
            next_order_id: self.next_order_id,
            next_trade_id: self.next_trade_id,
            now: self.now,
        };
        let slots = [Ledger::INSURANCE, Ledger::FEES].into_iter().chain(self.ledger.slots_by_id());
        let accounts = slots
            .map(|s| {
                let a = self.ledger.account(s);
                AccountState {
                    holder: a.holder,
                    collateral: Amount(a.collateral),
                    positions: a
                        .positions
                        .iter()
                        .map(|p| PositionState {
                            instrument: p.instrument,
                            size: Qty(p.size),
                            cost: p.cost,
                            funding_index: p.funding_index,
                            realised: p.realised,
                            open_buy: Qty(p.open_buy),
                            open_sell: Qty(p.open_sell),
                        })
                        .collect(),
                }
            })
            .collect();
        let (deposits, withdrawals) = self.ledger.flows();
        CanonicalState {
            matching,
            funding_indexes: self.instruments.iter().map(|i| self.ledger.funding_index(i.id)).collect(),
            accounts,
            deposits,
            withdrawals,
            l1: self.l1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    /// A snapshot that does not restore says what is wrong in a typed error, and keeps why
    /// an instrument does not list as its source.
    #[test]
    fn restore_errors_are_typed_and_keep_their_source() {
        let ex = Exchange::new();
        let mut state = ex.sm.canonical();
        state.matching.instruments[1].0.price_band = Decimal::ONE;
        let err = StateMachine::restore(&state, Ledger::default()).unwrap_err();
        assert!(matches!(&err, RestoreError::Instrument { index: 1, source: ListingError::Spec(_), .. }), "{err:?}");
        let spec = std::error::Error::source(&err).and_then(std::error::Error::source);
        assert_eq!(spec.map(ToString::to_string).as_deref(), Some("price_band: 1 must be above 0 and below 1"));
        let mut state = ex.sm.canonical();
        state.funding_indexes.pop();
        let err = StateMachine::restore(&state, Ledger::default()).unwrap_err();
        assert_eq!(err, RestoreError::MissingFundingIndex { index: 1 });
        // An open quantity that no resting order accounts for.
        let mut state = ex.sm.canonical();
        state.accounts[2].positions.push(PositionState {
            instrument: BTC,
            size: Qty(0),
            cost: 0,
            funding_index: 0,
            realised: 0,
            open_buy: Qty(1),
            open_sell: Qty(0),
        });
        assert_eq!(StateMachine::restore(&state, Ledger::default()).err(), Some(RestoreError::Disagrees));
    }
}
