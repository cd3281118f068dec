//! What liquidating an account needs from the ledger (docs/RISK.md): the next liquidation
//! order and its prices, the bankruptcy price, how much the insurance fund can take over,
//! and the auto-deleveraging queue.

use l2x_types::{AccountId, Holder, InstrumentId, Price, Qty, Side};

use super::{Ledger, PPM};
use crate::AccountSlot;
use crate::formulas::{self, ExactPrice, LiquidationPrices};
use crate::math::{floor_div, saturate};

/// A liquidation order for one position, as the engine must enter it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiquidationOrder {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Side of the closing order (opposite the position).
    pub side: Side,
    /// Lots to close.
    pub qty: Qty,
    /// The limit (fillable price, never worse than bankrupt, within the band).
    pub prices: LiquidationPrices,
}

impl Ledger {
    /// The next liquidation order for an account below maintenance: the position with the
    /// largest maintenance requirement (lowest instrument id on ties), closed partially if
    /// that restores maintenance at the worst case. `None` if the account is healthy, has no
    /// position, or is the insurance fund or the fee account.
    pub fn liquidation_order(&self, slot: AccountSlot) -> Option<LiquidationOrder> {
        if slot == Self::INSURANCE || slot == Self::FEES {
            return None;
        }
        let h = self.scaled(slot);
        if !h.below_maintenance() {
            return None;
        }
        let a = self.account(slot);
        let p = a.positions.iter().filter(|p| p.size != 0).max_by_key(|p| {
            let m = &self.markets[p.instrument.index()];
            let mark = m.mark.map_or(0, |x| i128::from(x.price));
            let mmr = i128::from(p.size).abs() * mark * i128::from(m.params.quote_per_tick_lot);
            (mmr * i128::from(m.params.maintenance_margin), core::cmp::Reverse(p.instrument))
        })?;
        let m = &self.markets[p.instrument.index()];
        let mark = m.mark?.price;
        let lq = self.liquidation;
        let mut prices = formulas::liquidation_prices(
            p.size,
            mark,
            h.equity,
            h.maintenance,
            m.params.maintenance_margin,
            lq.bankruptcy_adjustment,
            lq.spread_to_maintenance,
        );
        let side = if p.size > 0 { Side::Sell } else { Side::Buy };
        let hscaled = PPM * h.equity - h.maintenance;
        let qty = formulas::liquidation_qty(
            p.size,
            mark,
            prices.limit,
            m.params.quote_per_tick_lot,
            m.params.maintenance_margin,
            m.params.liquidation_fee,
            hscaled,
        );
        // Never beyond bankruptcy, and never outside what a user order could do.
        prices.limit = prices.limit.max(Price(1));
        Some(LiquidationOrder { instrument: p.instrument, side, qty, prices })
    }

    /// The bankruptcy price (exact) of an account's position in one instrument at the
    /// current state, if the account is below maintenance and holds it.
    pub fn bankruptcy_price(&self, slot: AccountSlot, instrument: InstrumentId) -> Option<ExactPrice> {
        let h = self.scaled(slot);
        let size = self.account(slot).position(instrument).map(|p| p.size).filter(|&s| s != 0)?;
        if !h.below_maintenance() {
            return None;
        }
        let m = self.markets.get(instrument.index())?;
        let lq = self.liquidation;
        let prices = formulas::liquidation_prices(
            size,
            m.mark?.price,
            h.equity,
            h.maintenance,
            m.params.maintenance_margin,
            lq.bankruptcy_adjustment,
            lq.spread_to_maintenance,
        );
        Some(prices.bankruptcy)
    }

    /// How much of `qty` the insurance fund can take over at `price` on `side_of_fund`:
    /// everything when the takeover does not cost it equity at the mark, otherwise what its
    /// equity covers (nothing once it has none).
    pub fn insurance_capacity(&self, instrument: InstrumentId, price: Price, qty: Qty, side_of_fund: Side) -> Qty {
        let m = &self.markets[instrument.index()];
        let mark = i128::from(m.mark.map_or(price, |x| x.price));
        let k = i128::from(m.params.quote_per_tick_lot);
        let loss_per_lot = match side_of_fund {
            Side::Buy => i128::from(price) - mark,
            Side::Sell => mark - i128::from(price),
        } * k;
        if loss_per_lot <= 0 {
            return qty;
        }
        let equity = self.scaled(Self::INSURANCE).equity;
        Qty(saturate(floor_div(equity.max(0), loss_per_lot).min(i128::from(qty))))
    }

    /// Auto-deleveraging candidates against a liquidated position on `side_of_liquidated`:
    /// the trading accounts holding the opposite position, highest BitMEX rank first
    /// (ties: lowest account id). The liquidated account itself is excluded.
    pub fn adl_queue(
        &self,
        instrument: InstrumentId,
        side_of_liquidated: Side,
        exclude: AccountSlot,
    ) -> Vec<AccountSlot> {
        let m = &self.markets[instrument.index()];
        // The liquidated account sells (it is long): counterparties are shorts, and so on.
        let holders = match side_of_liquidated {
            Side::Sell => &m.short_holders,
            Side::Buy => &m.long_holders,
        };
        let mark = m.mark.map_or(0, |x| i128::from(x.price));
        let k = i128::from(m.params.quote_per_tick_lot);
        let mut ranked: Vec<(core::cmp::Reverse<i128>, AccountId, AccountSlot)> = holders
            .iter()
            .map(|&s| AccountSlot(s))
            .filter(|&s| s != exclude && s != Self::INSURANCE && s != Self::FEES)
            .filter_map(|s| {
                let a = self.account(s);
                let Holder::Account(id) = a.holder else { return None };
                let p = a.position(instrument)?;
                let notional = i128::from(p.size) * mark * k;
                let rank = formulas::adl_rank(notional - p.cost, p.cost, notional, self.scaled(s).equity);
                Some((core::cmp::Reverse(rank), id, s))
            })
            .collect();
        ranked.sort_unstable();
        ranked.into_iter().map(|(_, _, s)| s).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn insurance_capacity_and_adl_order() {
        let mut l = ledger();
        let _ = l.deposit(Holder::Insurance, usdc(10)).unwrap();
        // Taking a long at 10 ticks above the mark costs 10 · 500 = 5,000 per lot: 2,000 lots.
        assert_eq!(l.insurance_capacity(BTC, Price(100_010), Qty(5_000), Side::Buy), Qty(2_000));
        assert_eq!(l.insurance_capacity(BTC, Price(99_990), Qty(5_000), Side::Buy), Qty(5_000));
        // Three shorts against one long; the most profitable and leveraged short ranks first.
        let long = l.deposit(Holder::Account(AccountId(1)), usdc(100_000)).unwrap().0;
        let s1 = l.deposit(Holder::Account(AccountId(2)), usdc(10_000)).unwrap().0;
        let s2 = l.deposit(Holder::Account(AccountId(3)), usdc(1_000)).unwrap().0;
        let s3 = l.deposit(Holder::Account(AccountId(4)), usdc(1_000)).unwrap().0;
        trade(&mut l, BTC, 110_000, 100, long, s1);
        trade(&mut l, BTC, 110_000, 100, long, s2);
        trade(&mut l, BTC, 100_000, 100, long, s3);
        let q = l.adl_queue(BTC, Side::Sell, long);
        // s2: +10 % at 5,000/1,500 leverage; s1: +10 % at 5,000/10,500; s3: flat.
        assert_eq!(q, vec![s2, s1, s3]);
    }
}
