//! Accounts and positions, and the arithmetic of one account: fills, realised PnL,
//! funding settlement, equity and requirements.
//!
//! Amounts are in quote micro-units (USDC 10⁻⁶). A position keeps its signed size in lots,
//! its signed **cost** (the entry notional of what is open: positive for a long), the
//! funding index it last settled at, and its open orders per side. Unrealised PnL at mark
//! `m` is `size · m · k − cost` (k = micro-units per tick-lot).

use l2x_types::{Fraction, Holder, InstrumentId, Price, Qty, Side};

use crate::math::ceil_div;

/// An account's position and open orders in one instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Signed size in lots (positive long).
    pub size: i64,
    /// Signed entry notional of the open size, quote micro-units.
    pub cost: i128,
    /// The instrument's funding index when this position last settled funding.
    pub funding_index: i128,
    /// Realised PnL on this instrument so far (trading only; fees and funding excluded).
    pub realised: i128,
    /// Open quantity of resting buy orders.
    pub open_buy: i64,
    /// Open quantity of resting sell orders.
    pub open_sell: i64,
    /// Liquidation-index key of this position, if indexed (see the ledger's module doc).
    pub(crate) liq_key: Option<IndexKey>,
    /// Its place in its liquidation-index bucket, when near (`index.rs`).
    pub(crate) liq_place: u32,
}

/// Where a position sits in its market's liquidation index: which set (longs or shorts) and
/// under which threshold key (see the ledger's module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexKey {
    /// In the longs' set (else the shorts').
    pub(crate) long: bool,
    /// The threshold mark, or far.
    pub(crate) key: Key,
}

/// The mark at which a position's account crosses maintenance, as far as the liquidation
/// index needs to know it (see the ledger's module doc, "The window").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// No mark inside the market's window can liquidate it (nor can any `i64` mark, when its
    /// exact threshold lies beyond the `i64` range on the safe side): it sits in no bucket.
    Far,
    /// The threshold mark, saturated to `i64`: a long is liquidatable when the mark is below
    /// it, a short when the mark is above it.
    At(i64),
}

impl IndexKey {
    /// The threshold mark, unless far.
    #[inline]
    pub(crate) fn threshold(self) -> Option<i64> {
        match self.key {
            Key::Far => None,
            Key::At(t) => Some(t),
        }
    }
}

impl Position {
    /// A record with no position and no open orders, settled at `funding_index`.
    pub fn new(instrument: InstrumentId, funding_index: i128) -> Position {
        Position {
            instrument,
            size: 0,
            cost: 0,
            funding_index,
            realised: 0,
            open_buy: 0,
            open_sell: 0,
            liq_key: None,
            liq_place: 0,
        }
    }

    /// Adds `delta` lots to the open quantity of the resting orders on `side` (the total is
    /// one of the known limits of `l2x_types`' arithmetic rules: below 2⁶³ lots).
    #[inline]
    pub(crate) fn add_open(&mut self, side: Side, delta: i64) {
        match side {
            Side::Buy => self.open_buy += delta,
            Side::Sell => self.open_sell += delta,
        }
    }

    /// The worse-side open exposure used by the initial requirement:
    /// `max(|size + open buys|, |size − open sells|)`.
    #[inline]
    pub fn worst_side(&self) -> i64 {
        let s = i128::from(self.size);
        let up = (s + i128::from(self.open_buy)).abs();
        let down = (s - i128::from(self.open_sell)).abs();
        crate::math::saturate(up.max(down))
    }
}

/// One account (or the insurance fund, or the fee account).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Who it is.
    pub holder: Holder,
    /// Collateral, quote micro-units: deposits − withdrawals + realised PnL − fees − funding.
    pub collateral: i64,
    /// Positions sorted by instrument; a record stays once created (it carries `realised`).
    pub positions: Vec<Position>,
}

/// What one fill did to one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillEffect {
    /// Funding settled before the fill (paid: positive reduces collateral).
    pub funding_paid: i128,
    /// Realised PnL of the fill.
    pub realised: i128,
    /// Fee charged (negative: rebate paid).
    pub fee: i128,
}

impl Account {
    pub(crate) fn new(holder: Holder) -> Account {
        Account { holder, collateral: 0, positions: Vec::new() }
    }

    /// The position in `instrument`, if any record exists.
    pub fn position(&self, instrument: InstrumentId) -> Option<&Position> {
        self.positions.binary_search_by_key(&instrument, |p| p.instrument).ok().map(|i| &self.positions[i])
    }

    #[inline]
    pub(crate) fn position_mut(&mut self, instrument: InstrumentId, funding_index: i128) -> &mut Position {
        let i = self.position_index(instrument, funding_index);
        &mut self.positions[i]
    }

    /// The index of the position record in `instrument`, if there is one.
    #[inline]
    pub(crate) fn position_index_of(&self, instrument: InstrumentId) -> Option<usize> {
        self.positions.binary_search_by_key(&instrument, |p| p.instrument).ok()
    }

    /// The index of the position record in `instrument`, created (settled at
    /// `funding_index`) if there is none.
    #[inline]
    fn position_index(&mut self, instrument: InstrumentId, funding_index: i128) -> usize {
        match self.positions.binary_search_by_key(&instrument, |p| p.instrument) {
            Ok(i) => i,
            Err(i) => {
                self.positions.insert(i, Position::new(instrument, funding_index));
                i
            }
        }
    }

    /// `true` if any position is open.
    pub fn has_position(&self) -> bool {
        self.positions.iter().any(|p| p.size != 0)
    }

    /// Number of open positions.
    pub fn open_positions(&self) -> usize {
        self.positions.iter().filter(|p| p.size != 0).count()
    }

    pub(crate) fn credit(&mut self, amount: i128) {
        self.collateral = crate::math::saturate(i128::from(self.collateral) + amount);
    }

    /// Applies a fill of `qty` lots at `price` ticks on `side`, with fee fraction `fee` of
    /// the notional (rounded up: against the account). Realised PnL on the closed part
    /// uses the closed share of the cost rounded up (`⌈cost · closed / |size|⌉`), which is
    /// against the account for longs and shorts alike. Returns the effect; the fee is
    /// the caller's to credit to the fee account.
    ///
    /// # Performance
    ///
    /// Every figure is exact in `i128`. When one tick-lot's value `price · k` and the
    /// position's cost fit `i64` (realistic positions always do), each product is one
    /// widening 64-bit multiplication and the fee divides in 64 bits; otherwise the same
    /// formulas run in `i128` throughout. The results are the same (tested against the
    /// all-`i128` form). Funding is settled only when the index moved since the last
    /// settlement (settling nothing changes nothing).
    #[allow(clippy::too_many_arguments, reason = "internal: one fill, fully described")]
    #[inline]
    pub(crate) fn apply_fill(
        &mut self,
        instrument: InstrumentId,
        side: Side,
        price: Price,
        qty: Qty,
        k: i64,
        fee: Fraction,
        funding_index: i128,
    ) -> FillEffect {
        // One lookup for the funding settlement and the fill (a new record starts at the
        // current index, so it owes no funding).
        let i = self.position_index(instrument, funding_index);
        let p = &mut self.positions[i];
        let funding_paid = if p.funding_index == funding_index {
            0
        } else {
            let paid = i128::from(p.size) * (funding_index - p.funding_index);
            p.funding_index = funding_index;
            paid
        };
        let unit = price.0.checked_mul(k);
        let (realised, fee) = match (unit, i64::try_from(p.cost)) {
            (Some(unit), Ok(cost)) => book_fill_64(p, cost, side, qty.0, unit, fee.0),
            _ => book_fill_128(p, side, price, qty, k, fee),
        };
        if funding_paid != 0 {
            self.credit(-funding_paid);
        }
        self.credit(realised - fee);
        FillEffect { funding_paid, realised, fee }
    }
}

/// `a · b` exactly: one widening multiplication.
#[inline(always)]
fn wide(a: i64, b: i64) -> i128 {
    i128::from(a) * i128::from(b)
}

/// ⌈a / 10⁶⌉ in 64 bits.
#[inline(always)]
fn ceil_ppm(a: i64) -> i64 {
    let (q, r) = (a / 1_000_000, a % 1_000_000);
    if r > 0 { q + 1 } else { q }
}

/// [`Account::apply_fill`]'s booking on the position when one tick-lot is worth `unit`
/// (`price · k`) and the cost is `cost`, both `i64`: returns (realised, fee).
#[inline(always)]
fn book_fill_64(p: &mut Position, cost: i64, side: Side, qty: i64, unit: i64, fee_ppm: i64) -> (i128, i128) {
    let notional = wide(unit, qty);
    let fee = if fee_ppm == 0 {
        0
    } else {
        match i64::try_from(notional).ok().and_then(|n| n.checked_mul(fee_ppm)) {
            Some(x) => i128::from(ceil_ppm(x)),
            None => ceil_div(notional * i128::from(fee_ppm), 1_000_000),
        }
    };
    let d = match side {
        Side::Buy => qty,
        Side::Sell => -qty,
    };
    let s = p.size;
    let mut realised = 0;
    let mut d_open = d;
    let mut new_cost = i128::from(cost);
    if s != 0 && (s > 0) != (d > 0) {
        // |size| as i128: size may be i64::MIN. `closed` ≤ qty fits i64.
        let s_abs = i128::from(s).abs();
        let closed = i64::try_from(i128::from(qty).min(s_abs)).unwrap_or(qty);
        let d_closed = if d > 0 { closed } else { -closed };
        let closed_cost = ceil_div(wide(cost, closed), s_abs);
        realised = -wide(d_closed, unit) - closed_cost;
        new_cost -= closed_cost;
        d_open = d - d_closed;
    }
    p.cost = new_cost + wide(d_open, unit);
    p.size = s.saturating_add(d);
    p.realised += realised;
    (realised, fee)
}

/// [`Account::apply_fill`]'s booking in `i128` throughout: returns (realised, fee).
#[cold]
fn book_fill_128(p: &mut Position, side: Side, price: Price, qty: Qty, k: i64, fee: Fraction) -> (i128, i128) {
    let notional = i128::from(price) * i128::from(qty) * i128::from(k);
    let fee_ppm = i128::from(fee);
    let fee = if fee_ppm == 0 { 0 } else { ceil_div(notional * fee_ppm, 1_000_000) };
    let d = match side {
        Side::Buy => i128::from(qty),
        Side::Sell => -i128::from(qty),
    };
    let s = i128::from(p.size);
    let mut realised = 0;
    let mut d_open = d;
    if s != 0 && (s > 0) != (d > 0) {
        let closed = d.abs().min(s.abs());
        let d_closed = if d > 0 { closed } else { -closed };
        let closed_cost = ceil_div(p.cost * closed, s.abs());
        realised = -d_closed * i128::from(price) * i128::from(k) - closed_cost;
        p.cost -= closed_cost;
        d_open = d - d_closed;
    }
    p.cost += d_open * i128::from(price) * i128::from(k);
    p.size = crate::math::saturate(s + d);
    p.realised += realised;
    (realised, fee)
}

#[cfg(test)]
pub(crate) mod tests {
    use l2x_types::AccountId;
    use proptest::prelude::Just;

    use super::*;

    /// Average entry price in ticks, exact as a fraction `cost / (size · k)`; `None` when
    /// flat. Returned as (numerator, denominator) with a positive denominator.
    fn entry(p: &Position, quote_per_tick_lot: i64) -> Option<(i128, i128)> {
        (p.size != 0).then(|| {
            let den = i128::from(p.size) * i128::from(quote_per_tick_lot);
            if den < 0 { (-p.cost, -den) } else { (p.cost, den) }
        })
    }

    /// Settles funding of one position against the instrument's index; returns what was
    /// paid (positive reduces collateral). Exact: the index is in micro-units per lot.
    /// (Funding otherwise settles with the position's next fill.)
    pub(crate) fn settle_funding(a: &mut Account, instrument: InstrumentId, index: i128) -> i128 {
        let Ok(i) = a.positions.binary_search_by_key(&instrument, |p| p.instrument) else { return 0 };
        let p = &mut a.positions[i];
        let paid = i128::from(p.size) * (index - p.funding_index);
        p.funding_index = index;
        a.credit(-paid);
        paid
    }

    const K: i64 = 500; // BTC-PERP: tick 0.5 × lot 0.001 = 500 micro-USDC
    const I: InstrumentId = InstrumentId(0);

    fn acct() -> Account {
        let mut a = Account::new(Holder::Account(AccountId(1)));
        a.collateral = 10_000_000_000; // 10,000 USDC
        a
    }

    #[test]
    fn open_then_close_long_realises_exact_pnl() {
        let mut a = acct();
        // Buy 0.1 BTC (100 lots) at 50,000 (100,000 ticks): cost 5,000 USDC, no fee.
        let e = a.apply_fill(I, Side::Buy, Price(100_000), Qty(100), K, Fraction(0), 0);
        assert_eq!(e, FillEffect { funding_paid: 0, realised: 0, fee: 0 });
        let p = *a.position(I).unwrap();
        assert_eq!((p.size, p.cost), (100, 5_000_000_000));
        // Sell 0.04 BTC at 51,000: realised = 0.04 × 1,000 = 40 USDC.
        let e = a.apply_fill(I, Side::Sell, Price(102_000), Qty(40), K, Fraction(0), 0);
        assert_eq!(e.realised, 40_000_000);
        let p = *a.position(I).unwrap();
        assert_eq!((p.size, p.cost), (60, 3_000_000_000));
        assert_eq!(a.collateral, 10_040_000_000);
    }

    #[test]
    fn a_fill_through_zero_flips_the_position_at_the_fill_price() {
        let mut a = acct();
        a.apply_fill(I, Side::Sell, Price(100_000), Qty(10), K, Fraction(0), 0); // short 0.01 at 50,000
        // Buy 0.03 at 49,000: closes 0.01 (+10 USDC), opens long 0.02 at 49,000.
        let e = a.apply_fill(I, Side::Buy, Price(98_000), Qty(30), K, Fraction(0), 0);
        assert_eq!(e.realised, 10_000_000);
        let p = *a.position(I).unwrap();
        assert_eq!((p.size, p.cost), (20, 20 * 98_000 * 500));
        assert_eq!(entry(&p, K), Some((980_000_000, 10_000)));
    }

    #[test]
    fn closed_cost_rounds_against_longs_and_shorts() {
        // Long 3 lots with cost 1,000 (not divisible by 3): closing 1 lot takes ⌈333.3⌉ = 334.
        let mut a = acct();
        a.positions.push(Position { size: 3, cost: 1_000, ..Position::new(I, 0) });
        let e = a.apply_fill(I, Side::Sell, Price(1), Qty(1), 1, Fraction(0), 0);
        assert_eq!(e.realised, 1 - 334);
        assert_eq!(a.position(I).unwrap().cost, 666);
        // Short 3 lots with cost −1,000: closing 1 lot takes ⌈−333.3⌉ = −333, so the
        // short's profit is 333 − price (not 334 − price).
        let mut b = acct();
        b.positions.push(Position { size: -3, cost: -1_000, ..Position::new(I, 0) });
        let e = b.apply_fill(I, Side::Buy, Price(1), Qty(1), 1, Fraction(0), 0);
        assert_eq!(e.realised, 333 - 1);
        assert_eq!(b.position(I).unwrap().cost, -667);
    }

    #[test]
    fn fees_round_up_and_rebates_round_towards_zero() {
        let mut a = acct();
        // Notional 1,001 micro-units at 0.05 % taker: 0.5005 → 1.
        let e = a.apply_fill(I, Side::Buy, Price(1_001), Qty(1), 1, Fraction(500), 0);
        assert_eq!(e.fee, 1);
        // Maker rebate −0.02 % on 1,001: −0.2002 → 0 (the account is not paid the dust).
        let e = a.apply_fill(I, Side::Sell, Price(1_001), Qty(1), 1, Fraction(-200), 0);
        assert_eq!(e.fee, 0);
    }

    #[test]
    fn cash_flow_identity_holds_for_every_fill() {
        // collateral − cost changes by exactly the trade's cash flow minus the fee.
        let fills = [(Side::Buy, 7, 13), (Side::Sell, 9, 5), (Side::Sell, 11, 20), (Side::Buy, 3, 40)];
        let mut a = acct();
        for (side, price, qty) in fills {
            let before = i128::from(a.collateral) - a.position(I).map_or(0, |p| p.cost);
            let e = a.apply_fill(I, side, Price(price), Qty(qty), 7, Fraction(250), 0);
            let after = i128::from(a.collateral) - a.position(I).unwrap().cost;
            let flow = i128::from(price * qty * 7) * if side == Side::Buy { -1 } else { 1 };
            assert_eq!(after - before, flow - e.fee, "{side:?} {price} {qty}");
        }
    }

    #[test]
    fn funding_settles_exactly_against_the_index() {
        let mut a = acct();
        a.apply_fill(I, Side::Buy, Price(100_000), Qty(100), K, Fraction(0), 1_000);
        // Index rises by 25 micro-units per lot: a 100-lot long pays 2,500.
        assert_eq!(settle_funding(&mut a, I, 1_025), 2_500);
        assert_eq!(a.collateral, 10_000_000_000 - 2_500);
        assert_eq!(settle_funding(&mut a, I, 1_025), 0);
    }

    /// `apply_fill` before its 64-bit fast path (issue 17): every figure in `i128`.
    fn apply_fill_reference(a: &mut Account, side: Side, price: Price, qty: Qty, k: i64, fee: Fraction) -> FillEffect {
        let i = a.position_index(I, 0);
        let funding_paid = 0;
        a.credit(-funding_paid);
        let notional = i128::from(price) * i128::from(qty) * i128::from(k);
        let fee_ppm = i128::from(fee);
        let fee = if fee_ppm == 0 { 0 } else { ceil_div(notional * fee_ppm, 1_000_000) };
        let p = &mut a.positions[i];
        let d = match side {
            Side::Buy => i128::from(qty),
            Side::Sell => -i128::from(qty),
        };
        let s = i128::from(p.size);
        let mut realised = 0;
        let mut d_open = d;
        if s != 0 && (s > 0) != (d > 0) {
            let closed = d.abs().min(s.abs());
            let d_closed = if d > 0 { closed } else { -closed };
            let closed_cost = ceil_div(p.cost * closed, s.abs());
            realised = -d_closed * i128::from(price) * i128::from(k) - closed_cost;
            p.cost -= closed_cost;
            d_open = d - d_closed;
        }
        p.cost += d_open * i128::from(price) * i128::from(k);
        p.size = crate::math::saturate(s + d);
        p.realised += realised;
        a.credit(realised - fee);
        FillEffect { funding_paid, realised, fee }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2_000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(17),
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Issue 17: the 64-bit fast path and its `i128` fallback book exactly what the
        /// all-`i128` form booked, across sizes, costs and prices on both sides of `i64`.
        #[test]
        fn apply_fill_matches_the_i128_reference(
            fills in proptest::collection::vec(
                (proptest::bool::ANY, 0u32..2, 1i64..1_000_000, 0u32..2, 1i64..100_000, -2_000i64..2_000),
                1..12,
            ),
            k in proptest::prop_oneof![Just(1i64), Just(500), Just(1_000_000), Just(1i64 << 24), Just(1i64 << 37)],
        ) {
            let mut a = acct();
            let mut b = acct();
            for (buy, price_scale, price, qty_scale, qty, fee) in fills {
                let side = if buy { Side::Buy } else { Side::Sell };
                // Scales reach costs and tick-lot values beyond i64 (the fallback) and back,
                // within what the all-i128 form computes without overflow.
                let price = Price(price << (price_scale * 7));
                let qty = Qty(qty << (qty_scale * 8));
                let fee = Fraction(fee);
                let got = a.apply_fill(I, side, price, qty, k, fee, 0);
                let want = apply_fill_reference(&mut b, side, price, qty, k, fee);
                proptest::prop_assert_eq!(got, want);
                proptest::prop_assert_eq!(&a, &b);
            }
        }
    }

    #[test]
    fn worst_side_counts_the_larger_exposure() {
        let p = Position { size: 10, open_buy: 5, open_sell: 30, ..Position::new(I, 0) };
        assert_eq!(p.worst_side(), 20); // |10 − 30| > |10 + 5|
        let q = Position { size: -4, open_buy: 1, open_sell: 2, ..Position::new(I, 0) };
        assert_eq!(q.worst_side(), 6);
    }
}
