//! Trades booked on both accounts: a fill between a taker and a resting maker (fees to the
//! fee account, a liquidation's fee to the insurance fund), and a transfer of position with
//! no fee (an insurance-fund takeover, an auto-deleveraging close).

use l2x_types::{Fraction, InstrumentId, Price, Qty, Side};

use super::Ledger;
use crate::AccountSlot;
use crate::account::FillEffect;
use crate::formulas::{self, ExactPrice};

/// One trade as the risk engine books it (see [`Ledger::fill`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Execution price (the maker's).
    pub price: Price,
    /// Executed quantity.
    pub qty: Qty,
    /// The taker's side.
    pub taker_side: Side,
    /// The taker.
    pub taker: AccountSlot,
    /// The resting maker.
    pub maker: AccountSlot,
    /// The taker's bankruptcy price when the taker is being liquidated.
    pub liquidation: Option<ExactPrice>,
}

impl Ledger {
    /// Applies a trade of `qty` at `price` between a taker and a resting maker: positions,
    /// realised PnL, funding settlement, fees (to the fee account), the maker's open
    /// quantity. With `liquidation`, the taker is being liquidated: it pays no trading fee
    /// but the liquidation fee (to the insurance fund, capped by the bankruptcy price).
    ///
    /// Returns the taker's and the maker's effects and the liquidation fee.
    ///
    /// Both accounts' liquidation-index keys are left for [`Ledger::rekey_pending`] (the
    /// module doc, "Re-keying after fills"), which must run before the index is read.
    pub fn fill(&mut self, fill: Fill) -> (FillEffect, FillEffect, i128) {
        let Fill { instrument, price, qty, taker_side, taker, maker, liquidation } = fill;
        let m = &self.markets[instrument.index()];
        let (k, index) = (m.params.quote_per_tick_lot, m.funding_index);
        let taker_fee = if liquidation.is_some() { Fraction(0) } else { m.params.taker_fee };
        let (maker_fee, liq_fee) = (m.params.maker_fee, m.params.liquidation_fee);
        let t = self.accounts[taker.index()].apply_fill(instrument, taker_side, price, qty, k, taker_fee, index);
        let mk =
            self.accounts[maker.index()].apply_fill(instrument, taker_side.opposite(), price, qty, k, maker_fee, index);
        let maker_pos = self.accounts[maker.index()].position_mut(instrument, index);
        maker_pos.add_open(taker_side.opposite(), Qty::change(qty, Qty::ZERO));
        self.accounts[Self::FEES.index()].credit(t.fee + mk.fee);
        let lfee = match liquidation {
            Some(bp) => {
                let fee = formulas::liquidation_fee(taker_side, price, qty, k, liq_fee, bp);
                self.accounts[taker.index()].credit(-fee);
                self.accounts[Self::INSURANCE.index()].credit(fee);
                fee
            }
            None => 0,
        };
        self.defer_rekey(taker);
        self.defer_rekey(maker);
        (t, mk, lfee)
    }

    /// Moves `qty` of position from `from` (which trades on `side_of_from`) to `to` at
    /// `price`, with no fee: an insurance-fund takeover or an auto-deleveraging close.
    pub fn transfer(
        &mut self,
        instrument: InstrumentId,
        price: Price,
        qty: Qty,
        side_of_from: Side,
        from: AccountSlot,
        to: AccountSlot,
    ) -> (FillEffect, FillEffect) {
        let m = &self.markets[instrument.index()];
        let (k, index) = (m.params.quote_per_tick_lot, m.funding_index);
        let a = self.accounts[from.index()].apply_fill(instrument, side_of_from, price, qty, k, Fraction(0), index);
        let b = self.accounts[to.index()].apply_fill(
            instrument,
            side_of_from.opposite(),
            price,
            qty,
            k,
            Fraction(0),
            index,
        );
        self.reindex(from);
        self.reindex(to);
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn fees_flow_to_the_fee_account_and_conserve() {
        let mut l = Ledger::default();
        l.add_market(MarketParams { maker_fee: Fraction(-100), taker_fee: Fraction(500), ..btc() }).unwrap();
        let mut out = Vec::new();
        l.set_mark(BTC, Price(100_000), &mut out);
        let a = l.deposit(Holder::Account(AccountId(1)), usdc(10_000)).unwrap().0;
        let b = l.deposit(Holder::Account(AccountId(2)), usdc(10_000)).unwrap().0;
        l.open_order_delta(b, BTC, Side::Sell, 100);
        let (t, m, _) = l.fill(Fill {
            instrument: BTC,
            price: Price(100_000),
            qty: Qty(100),
            taker_side: Side::Buy,
            taker: a,
            maker: b,
            liquidation: None,
        });
        l.rekey_pending();
        // Notional 5,000 USDC: taker pays 2.5, maker earns 0.5.
        assert_eq!((t.fee, m.fee), (2_500_000, -500_000));
        assert_eq!(l.account(Ledger::FEES).collateral, 2_000_000);
        l.check_invariants().unwrap();
    }
}
