//! Margin: an account's equity and its maintenance and initial requirements at the marks
//! (exact, scaled by 10⁶), whether it is below maintenance, and the pre-trade check of an
//! order's [`Exposure`].

use l2x_types::{InstrumentId, Price, Qty, RejectReason, Side};

use super::{Ledger, PPM};
use crate::AccountSlot;
use crate::account::Key;
use crate::math::ceil_div;

/// An account's equity and requirements scaled by 10⁶, exact: no division.
#[derive(Clone, Copy, Debug)]
pub(super) struct Scaled {
    pub(super) equity: i128,
    pub(super) maintenance: i128,
    pub(super) initial: i128,
}

impl Scaled {
    #[inline]
    pub(super) fn below_maintenance(&self) -> bool {
        PPM * self.equity < self.maintenance
    }
}

/// An account's margin figures at the current marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    /// Collateral + unrealised PnL at mark − unsettled funding.
    pub equity: i128,
    /// Initial requirement (worse side of open orders), rounded up.
    pub initial: i128,
    /// Maintenance requirement, rounded up.
    pub maintenance: i128,
    /// Maintenance requirement × 10⁶, exact.
    pub maintenance_scaled: i128,
    /// Initial requirement × 10⁶, exact.
    pub initial_scaled: i128,
}

impl Health {
    /// `true` if equity is below the maintenance requirement.
    pub fn below_maintenance(&self) -> bool {
        PPM * self.equity < self.maintenance_scaled
    }
}

/// What an order asks of its account's margin: the input of the pre-trade check
/// ([`Ledger::check_exposure`]), for a new order and for an amend alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exposure {
    /// The instrument.
    pub instrument: InstrumentId,
    /// The order's side.
    pub side: Side,
    /// The price it may fill at: its limit (an amend's new price), or a market order's
    /// protection price.
    pub price: Price,
    /// The open quantity it asks for: the new order's quantity, or the amended order's new
    /// open quantity.
    pub qty: Qty,
    /// Reduce-only.
    pub reduce_only: bool,
    /// A new order, or an amend of a resting one.
    pub change: Change,
}

/// Whether an [`Exposure`] is a new order or an amend of a resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new order.
    New,
    /// An amend of a resting order.
    Amend {
        /// The resting order's open quantity before the amend.
        from: Qty,
        /// Whether the amend changes the price.
        repriced: bool,
    },
}

/// An account's position and open orders in one instrument, before an order.
#[derive(Clone, Copy, Debug)]
struct Open {
    size: i64,
    buy: i64,
    sell: i64,
}

impl Ledger {
    /// Margin figures of an account at the current marks.
    pub fn health(&self, slot: AccountSlot) -> Health {
        let h = self.scaled(slot);
        Health {
            equity: h.equity,
            initial: ceil_div(h.initial, PPM),
            maintenance: ceil_div(h.maintenance, PPM),
            maintenance_scaled: h.maintenance,
            initial_scaled: h.initial,
        }
    }

    /// `true` if the account's equity is below its maintenance requirement (the same test as
    /// [`Health::below_maintenance`], without rounding anything).
    ///
    /// Read from the liquidation index when the account has an indexed position: its key is
    /// the mark at which it crosses maintenance with everything else as it is now, so a long
    /// is below exactly when the mark is under its key, a short when the mark is over it (a
    /// far key means "not below" while the mark is inside the window, which it always is).
    /// Otherwise (no position, a saturated key, the insurance fund or the fee account)
    /// computed in full. [`Ledger::check_invariants`] checks the two agree for every account.
    #[inline]
    pub fn below_maintenance(&self, slot: AccountSlot) -> bool {
        let a = self.account(slot);
        for p in &a.positions {
            let (Some(k), Some(mark)) = (p.liq_key, self.markets[p.instrument.index()].mark) else { continue };
            // A threshold saturated on the unsafe side says nothing exact: computed in full.
            match (k.long, k.key) {
                (_, Key::Far) => return false,
                (true, Key::At(t)) if t != i64::MAX => return mark.price < Price(t),
                (false, Key::At(t)) if t != i64::MIN => return mark.price > Price(t),
                _ => {}
            }
        }
        self.scaled(slot).below_maintenance()
    }

    /// Equity and the exact scaled requirements of an account at the current marks.
    #[inline]
    pub(super) fn scaled(&self, slot: AccountSlot) -> Scaled {
        let a = self.account(slot);
        let mut equity = i128::from(a.collateral);
        let (mut mmr, mut imr) = (0i128, 0i128);
        for p in &a.positions {
            let m = &self.markets[p.instrument.index()];
            let (value, maintenance, initial) = m.mark.map_or((0, 0, 0), |x| (x.value, x.maintenance, x.initial));
            let s = i128::from(p.size);
            equity += s * value - p.cost - s * (m.funding_index - p.funding_index);
            mmr += s.abs() * maintenance;
            imr += i128::from(p.worst_side()) * initial;
        }
        Scaled { equity, maintenance: mmr, initial: imr }
    }

    /// The pre-trade check of an order's [`Exposure`] for the account in `slot` (`None`: an
    /// account that does not exist yet, which has no equity). Returns the quantity to enter:
    /// a reduce-only new order is cut down to its position; anything else enters whole.
    ///
    /// Rules, in order:
    ///
    /// 1. An amend that neither raises the quantity nor changes the price adds no risk and
    ///    always passes.
    /// 2. Reduce-only (`reduce_only_would_increase`): a new order must be opposite a position
    ///    and is cut to its size; an amended order may not grow beyond the position.
    /// 3. The position if this and every same-side open order filled must stay within
    ///    `max_position_qty`, unless it is no larger than now (`max_position`).
    /// 4. Margin (`insufficient_margin`) unless one of: equity after the worst case (the
    ///    order, or the amended order as a whole, filled at its price, paying the taker fee)
    ///    covers the initial requirement with it open; it strictly lowers the requirement;
    ///    or it can only reduce the position (opposite side, and with the same-side open
    ///    orders no larger than it).
    ///
    /// # Errors
    /// The reject reason.
    ///
    /// # Performance
    ///
    /// Inlined, so that at each caller (which passes one kind of [`Change`]) it is a direct
    /// call of the check of that kind; each check is one out-of-line function with the margin
    /// arithmetic inlined, which keeps the state machine's command dispatch small (inlining
    /// the whole check there measured slower on amends, out of line with the dispatch inside
    /// it 8 instructions per amend more).
    #[inline]
    pub fn check_exposure(&self, slot: Option<AccountSlot>, exposure: &Exposure) -> Result<Qty, RejectReason> {
        match exposure.change {
            Change::New => self.check_new_order(slot, exposure),
            Change::Amend { from, repriced } => self.check_amend(slot, exposure, from, repriced),
        }
    }

    /// Rules 2 to 4 of [`Ledger::check_exposure`] for a new order.
    #[inline(never)]
    fn check_new_order(&self, slot: Option<AccountSlot>, e: &Exposure) -> Result<Qty, RejectReason> {
        let open = self.open(slot, e.instrument);
        let mut qty = e.qty;
        if e.reduce_only {
            if open.size == 0 || (e.side == Side::Buy) == (open.size > 0) {
                return Err(RejectReason::ReduceOnlyWouldIncrease);
            }
            qty = qty.min(Qty(open.size.abs()));
        }
        self.check_margin(slot, e, open, Qty::change(Qty::ZERO, qty), qty)?;
        Ok(qty)
    }

    /// Rules 1 to 4 of [`Ledger::check_exposure`] for an amend from open quantity `from`.
    #[inline(never)]
    fn check_amend(
        &self,
        slot: Option<AccountSlot>,
        e: &Exposure,
        from: Qty,
        repriced: bool,
    ) -> Result<Qty, RejectReason> {
        if e.qty <= from && !repriced {
            return Ok(e.qty);
        }
        let open = self.open(slot, e.instrument);
        if e.reduce_only && e.qty > Qty(open.size.abs()) {
            return Err(RejectReason::ReduceOnlyWouldIncrease);
        }
        // The amended order as a whole is what may fill at its new price.
        self.check_margin(slot, e, open, Qty::change(from, e.qty), e.qty)?;
        Ok(e.qty)
    }

    /// The position and open orders of the account in `slot` (none for an account that does
    /// not exist yet) in one instrument.
    #[inline(always)]
    fn open(&self, slot: Option<AccountSlot>, instrument: InstrumentId) -> Open {
        let pos = slot.and_then(|s| self.account(s).position(instrument));
        pos.map_or(Open { size: 0, buy: 0, sell: 0 }, |p| Open { size: p.size, buy: p.open_buy, sell: p.open_sell })
    }

    /// Rules 3 and 4 of [`Ledger::check_exposure`]: `open` is the position and open orders
    /// before, `delta` the change of the order's side's open quantity, `fill_qty` what may
    /// fill at the exposure's price.
    #[inline(always)]
    fn check_margin(
        &self,
        slot: Option<AccountSlot>,
        e: &Exposure,
        open: Open,
        delta: i64,
        fill_qty: Qty,
    ) -> Result<(), RejectReason> {
        let Some(m) = self.markets.get(e.instrument.index()) else { return Err(RejectReason::UnknownSymbol) };
        let at = m.mark.ok_or(RejectReason::NoMarkPrice)?;
        let (side, size, limit) = (e.side, open.size, e.price);
        let (buy_delta, sell_delta) = match side {
            Side::Buy => (delta, 0),
            Side::Sell => (0, delta),
        };
        let mark = at.price;
        let (s, ob, os) = (i128::from(size), i128::from(open.buy), i128::from(open.sell));
        let (bd, sd) = (i128::from(buy_delta), i128::from(sell_delta));
        let reach = match side {
            Side::Buy => s + ob + bd,
            Side::Sell => s - os - sd,
        };
        if reach.abs() > i128::from(m.params.max_position_qty) && reach.abs() > s.abs() {
            return Err(RejectReason::MaxPosition);
        }
        let k = i128::from(m.params.quote_per_tick_lot);
        let (o, l, q) = (i128::from(mark), i128::from(limit), i128::from(fill_qty));
        let worst = |b: i128, sl: i128| (s + b).abs().max((s - sl).abs());
        let before_j = worst(ob, os) * at.initial;
        let after_j = worst(ob + bd, os + sd) * at.initial;
        let h = slot.map_or(Scaled { equity: 0, maintenance: 0, initial: 0 }, |s| self.scaled(s));
        let imr_after = h.initial - before_j + after_j;
        let slippage = match side {
            Side::Buy => (l - o).max(0) * q * k,
            Side::Sell => (o - l).max(0) * q * k,
        };
        let taker_fee = i128::from(m.params.taker_fee).max(0);
        let fee = if taker_fee == 0 { 0 } else { ceil_div(l * q * k * taker_fee, PPM) };
        let equity_after = h.equity - slippage - fee;
        let opposite = (side == Side::Buy && size < 0) || (side == Side::Sell && size > 0);
        let same_side_open = match side {
            Side::Buy => ob + bd,
            Side::Sell => os + sd,
        };
        let only_reduces = opposite && same_side_open <= s.abs() && imr_after <= h.initial;
        if PPM * equity_after >= imr_after || imr_after < h.initial || only_reduces {
            Ok(())
        } else {
            Err(RejectReason::InsufficientMargin)
        }
    }

    /// Records resting quantity entering (`delta > 0`) or leaving (`< 0`) the book.
    pub fn open_order_delta(&mut self, slot: AccountSlot, instrument: InstrumentId, side: Side, delta: i64) {
        let index = self.funding_index(instrument);
        self.accounts[slot.index()].position_mut(instrument, index).add_open(side, delta);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    /// Issue 16: withdrawals never exceed deposits in all, even when an account's collateral
    /// allows it (its gain mirrors another's uncovered loss): a vault could not pay it.
    #[test]
    fn a_withdrawal_past_all_deposits_is_refused_even_with_the_collateral() {
        let mut l = ledger();
        let a = l.deposit(Holder::Account(AccountId(1)), usdc(100)).unwrap().0;
        // Account 2's gain of 50 is account 1's loss, which account 1 cannot cover.
        l.restore_account(Holder::Account(AccountId(2)), usdc(150).0, &[]);
        l.restore_account(Holder::Account(AccountId(1)), usdc(-50).0, &[]);
        assert_eq!(l.account(a).collateral, usdc(-50).0);
        assert_eq!(l.withdraw(AccountId(2), usdc(101)), Err(RejectReason::InsufficientMargin));
        assert_eq!(l.withdraw(AccountId(2), usdc(100)).map(|(_, c)| c), Ok(usdc(50).0));
        assert_eq!(l.withdraw(AccountId(2), usdc(1)), Err(RejectReason::InsufficientMargin));
        assert_eq!(l.flows(), (i128::from(usdc(100).0), i128::from(usdc(100).0)));
    }

    #[test]
    fn initial_margin_check_with_worked_numbers() {
        let mut l = ledger();
        l.deposit(Holder::Account(AccountId(1)), usdc(1_000)).unwrap();
        // 0.4 BTC at 50,000 = 20,000 notional → IMR 1,000 = equity: accepted.
        assert_eq!(check_order(&l, AccountId(1), BTC, Side::Buy, Qty(400), Price(100_000), false), Ok(Qty(400)));
        // 0.401 BTC → IMR 1,002.5 > 1,000.
        assert_eq!(
            check_order(&l, AccountId(1), BTC, Side::Buy, Qty(401), Price(100_000), false),
            Err(RejectReason::InsufficientMargin)
        );
        // 0.4 BTC with a limit 10 above the mark: worst-case slippage 0.4 × 10 = 4 USDC.
        assert_eq!(
            check_order(&l, AccountId(1), BTC, Side::Buy, Qty(400), Price(100_020), false),
            Err(RejectReason::InsufficientMargin)
        );
        // Unknown accounts have no equity.
        assert_eq!(
            check_order(&l, AccountId(9), BTC, Side::Buy, Qty(1), Price(100_000), false),
            Err(RejectReason::InsufficientMargin)
        );
    }

    #[test]
    fn resting_orders_count_on_their_worse_side() {
        let mut l = ledger();
        let s = l.deposit(Holder::Account(AccountId(1)), usdc(1_000)).unwrap().0;
        l.open_order_delta(s, BTC, Side::Buy, 300);
        // Buys of 0.3 rest (IMR 750). Another 0.1 buy makes the buy side 0.4 (IMR 1,000 =
        // equity): fine; 0.101 is too much. Sells are the other side: up to 0.4 the worse side
        // is at most 0.4, so 0.4 passes and 0.401 does not.
        assert!(check_order(&l, AccountId(1), BTC, Side::Buy, Qty(100), Price(100_000), false).is_ok());
        assert!(check_order(&l, AccountId(1), BTC, Side::Buy, Qty(101), Price(100_000), false).is_err());
        assert!(check_order(&l, AccountId(1), BTC, Side::Sell, Qty(300), Price(100_000), false).is_ok());
        assert!(check_order(&l, AccountId(1), BTC, Side::Sell, Qty(400), Price(100_000), false).is_ok());
        assert!(check_order(&l, AccountId(1), BTC, Side::Sell, Qty(401), Price(100_000), false).is_err());
    }

    #[test]
    fn reduce_only_and_max_position() {
        let mut l = ledger();
        let a = l.deposit(Holder::Account(AccountId(1)), usdc(100_000)).unwrap().0;
        let b = l.deposit(Holder::Account(AccountId(2)), usdc(100_000)).unwrap().0;
        assert_eq!(
            check_order(&l, AccountId(1), BTC, Side::Sell, Qty(5), Price(100_000), true),
            Err(RejectReason::ReduceOnlyWouldIncrease)
        );
        trade(&mut l, BTC, 100_000, 100, a, b);
        // Long 0.1: a reduce-only sell of 0.5 is cut to 0.1; a reduce-only buy is refused.
        assert_eq!(check_order(&l, AccountId(1), BTC, Side::Sell, Qty(500), Price(100_000), true), Ok(Qty(100)));
        assert_eq!(
            check_order(&l, AccountId(1), BTC, Side::Buy, Qty(1), Price(100_000), true),
            Err(RejectReason::ReduceOnlyWouldIncrease)
        );
        let mut small = btc();
        small.max_position_qty = Qty(150);
        l.add_market(small).unwrap();
        let mut out = Vec::new();
        l.set_mark(InstrumentId(2), Price(100_000), &mut out);
        assert_eq!(
            check_order(&l, AccountId(1), InstrumentId(2), Side::Buy, Qty(151), Price(100_000), false),
            Err(RejectReason::MaxPosition)
        );
    }

    #[test]
    fn closing_is_allowed_below_initial_margin() {
        let mut l = ledger();
        let a = l.deposit(Holder::Account(AccountId(1)), usdc(1_100)).unwrap().0;
        let b = l.deposit(Holder::Account(AccountId(2)), usdc(100_000)).unwrap().0;
        trade(&mut l, BTC, 100_000, 400, a, b);
        let mut out = Vec::new();
        l.set_mark(BTC, Price(99_000), &mut out); // −200 USDC: equity 900 < IMR 990
        assert!(check_order(&l, AccountId(1), BTC, Side::Buy, Qty(1), Price(99_000), false).is_err());
        assert!(check_order(&l, AccountId(1), BTC, Side::Sell, Qty(400), Price(99_000), false).is_ok());
        // Withdrawals need equity above the initial requirement afterwards.
        assert_eq!(l.withdraw(AccountId(1), usdc(1)), Err(RejectReason::InsufficientMargin));
    }
}
