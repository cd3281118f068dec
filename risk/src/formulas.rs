//! The risk formulas as pure integer functions. `docs/RISK.md` derives each one, with its
//! source and a worked example; the tests below are those examples.
//!
//! Units: prices in ticks, quantities in lots, amounts in quote micro-units, `k` = quote
//! micro-units per tick-lot, fractions in ppm ([`Fraction`]), funding rates in ppb ([`Ppb`]).

use l2x_types::{Fraction, Ppb, Price, Qty, Side};

use crate::math::{ceil_div, floor_div, saturate, trunc_div};

const PPM: i128 = 1_000_000;
const PPB: i128 = 1_000_000_000;

/// A price in ticks as an exact fraction `num / den` of ticks, `den > 0`: a bankruptcy price
/// or an impact price, which fall between ticks. Not reduced: equality compares the two
/// numbers as they were formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExactPrice {
    num: i128,
    den: i128,
}

impl ExactPrice {
    /// `num / den` ticks.
    ///
    /// # Errors
    /// `None` unless `den > 0`.
    #[inline]
    pub const fn try_new(num: i128, den: i128) -> Option<ExactPrice> {
        if den > 0 { Some(ExactPrice { num, den }) } else { None }
    }

    /// For formulas whose denominator is positive by construction (a maintenance
    /// requirement of an open position, a quantity of lots times `k`).
    #[inline]
    const fn positive(num: i128, den: i128) -> ExactPrice {
        debug_assert!(den > 0, "an exact price needs a positive denominator");
        ExactPrice { num, den }
    }

    /// The numerator, in ticks times [`ExactPrice::den`].
    #[inline]
    pub const fn num(self) -> i128 {
        self.num
    }

    /// The denominator, positive.
    #[inline]
    pub const fn den(self) -> i128 {
        self.den
    }
}

/// A whole number of ticks.
impl From<Price> for ExactPrice {
    #[inline]
    fn from(p: Price) -> ExactPrice {
        ExactPrice { num: i128::from(p), den: 1 }
    }
}

/// The liquidation prices of one position of an account below maintenance, after
/// dYdX v4 (`x/clob/keeper/liquidations.go`).
///
/// With `r = TNC / TMMR` (total net collateral over total maintenance requirement):
///
/// - bankruptcy price `BP = o · (1 ∓ r · MMF)` (− for a long, + for a short): closing any
///   part of the position at BP leaves `TNC / TMMR` unchanged, so at BP the closed part
///   consumes exactly its share of the collateral;
/// - fillable price `FP = o · (1 ∓ ABR · SMMR · MMF)` with
///   `ABR = clamp(BA · (1 − r), 0, 1)`: the spread opens from zero at maintenance to
///   `SMMR · MMF` at bankruptcy;
/// - the liquidation order's limit is the fillable price but never worse than bankrupt:
///   `max(FP, BP)` for a long (selling), `min(FP, BP)` for a short (buying), in ticks
///   rounded towards the account's side (up for a sell, down for a buy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiquidationPrices {
    /// Bankruptcy price, exact.
    pub bankruptcy: ExactPrice,
    /// Fillable price in ticks (rounded towards the account).
    pub fillable: Price,
    /// The limit of the liquidation order, in ticks.
    pub limit: Price,
}

/// Computes [`LiquidationPrices`] for a position of `size` lots (non-zero) at oracle `o`.
///
/// `tnc` is the account's equity, `tmmr_scaled` its total maintenance requirement times
/// 10⁶ (exact, positive), `mmf` the instrument's maintenance fraction, `ba` and `smmr` the
/// [`crate::LiquidationParams`].
pub fn liquidation_prices(
    size: i64,
    oracle: Price,
    tnc: i128,
    tmmr_scaled: i128,
    mmf: Fraction,
    ba: Fraction,
    smmr: Fraction,
) -> LiquidationPrices {
    let o = i128::from(oracle);
    let mmf = i128::from(mmf);
    let long = size > 0;
    // ABR in ppm, rounded down (a narrower spread: the account's favour), clamped to [0, 1].
    let abr_ppm = floor_div(i128::from(ba) * (tmmr_scaled - PPM * tnc), tmmr_scaled).clamp(0, PPM);
    // Spread ABR · SMMR · MMF in ppb (ppm³ / 10⁹), rounded down.
    let spread_ppb = abr_ppm * i128::from(smmr) * mmf / PPB;
    // BP = o · (TMMR_scaled ∓ TNC · MMF_ppm) / TMMR_scaled.
    let bp_num = o * if long { tmmr_scaled - tnc * mmf } else { tmmr_scaled + tnc * mmf };
    let bankruptcy = ExactPrice::positive(bp_num, tmmr_scaled);
    let (fillable, limit) = if long {
        let fp = ceil_div(o * (PPB - spread_ppb), PPB);
        (fp, fp.max(ceil_div(bp_num, tmmr_scaled)))
    } else {
        let fp = floor_div(o * (PPB + spread_ppb), PPB);
        (fp, fp.min(floor_div(bp_num, tmmr_scaled)))
    };
    LiquidationPrices { bankruptcy, fillable: Price(saturate(fillable)), limit: Price(saturate(limit.max(1))) }
}

/// The bankruptcy price rounded to a tick in the liquidated account's favour (up when it
/// sells, down when it buys): the price of an insurance-fund takeover or an ADL close.
pub fn bankruptcy_tick(bankruptcy: ExactPrice, side_of_account: Side) -> Price {
    let (num, den) = (bankruptcy.num, bankruptcy.den);
    let p = match side_of_account {
        Side::Sell => ceil_div(num, den),
        Side::Buy => floor_div(num, den),
    };
    Price(saturate(p.max(1)))
}

/// How many lots of a position to close so that the account is back at maintenance if
/// they fill at the order's limit (the worst case), or the whole position when no partial
/// close can do it.
///
/// Per lot closed at limit `L`, `1e6 · equity − Σ mmr_scaled` (the scaled health `h`, below
/// zero) improves by `o·k·MMF − 1e6·|o − L|·k − L·k·fee`; the answer is
/// `⌈−h / that⌉`, at least 1 and at most `|size|`.
pub fn liquidation_qty(size: i64, oracle: Price, limit: Price, k: i64, mmf: Fraction, fee: Fraction, h: i128) -> Qty {
    let (o, l, k) = (i128::from(oracle), i128::from(limit), i128::from(k));
    let per_lot = o * k * i128::from(mmf) - PPM * (o - l).abs() * k - l * k * i128::from(fee);
    let whole = i128::from(size).abs();
    if per_lot <= 0 || h >= 0 {
        return Qty(saturate(whole));
    }
    Qty(saturate(ceil_div(-h, per_lot).clamp(1, whole)))
}

/// The liquidation fee of a fill of `qty` at `price`: `⌈notional · fee⌉`, capped at what the
/// fill is better than the bankruptcy price (so the fee never makes the account worse than
/// bankrupt), never negative.
pub fn liquidation_fee(
    side_of_account: Side,
    price: Price,
    qty: Qty,
    k: i64,
    fee: Fraction,
    bankruptcy: ExactPrice,
) -> i128 {
    let notional = i128::from(price) * i128::from(qty) * i128::from(k);
    let full = ceil_div(notional * i128::from(fee), PPM);
    let (num, den) = (bankruptcy.num, bankruptcy.den);
    // (price − BP) · qty · k for a sell, (BP − price) · qty · k for a buy, rounded down.
    let better = match side_of_account {
        Side::Sell => floor_div((i128::from(price) * den - num) * i128::from(qty) * i128::from(k), den),
        Side::Buy => floor_div((num - i128::from(price) * den) * i128::from(qty) * i128::from(k), den),
    };
    full.min(better).max(0)
}

/// BitMEX's auto-deleveraging rank of a position (higher is deleveraged first):
/// `PnL% · leverage` when in profit, `PnL% / leverage` otherwise, with
/// `PnL% = upnl / |cost|` and `leverage = |notional| / equity`. In fixed point
/// (ppb of PnL%, then multiplied or divided), rounded towards zero; an account with no
/// equity but a profit ranks first.
pub fn adl_rank(upnl: i128, cost: i128, notional: i128, equity: i128) -> i128 {
    let pnl_ppb = trunc_div(upnl.saturating_mul(PPB), cost.abs().max(1));
    let notional = notional.abs().max(1);
    if upnl > 0 {
        if equity <= 0 {
            return i128::MAX;
        }
        pnl_ppb.saturating_mul(notional) / equity
    } else {
        pnl_ppb.saturating_mul(equity.max(1)) / notional
    }
}

/// Impact price: the average price, in ticks, of a market order of `impact_notional` quote
/// micro-units against `levels` (best first), as the exact fraction
/// `notional / (qty · k)`. The last level is taken in whole lots (rounded up). `None` when
/// the side cannot absorb the notional.
pub fn impact_price(levels: impl Iterator<Item = (Price, Qty)>, impact_notional: i128, k: i64) -> Option<ExactPrice> {
    let k = i128::from(k);
    let (mut notional, mut lots) = (0i128, 0i128);
    for (price, qty) in levels {
        let p = i128::from(price);
        let level_notional = p * i128::from(qty) * k;
        let remaining = impact_notional - notional;
        if level_notional >= remaining {
            let take = ceil_div(remaining, p * k);
            // Positive: at least the one lot `take` rounds up to (prices are positive).
            return Some(ExactPrice::positive(notional + take * p * k, (lots + take) * k));
        }
        notional += level_notional;
        lots += i128::from(qty);
    }
    None
}

/// The funding rate of one tick, in ppb:
/// `clamp(premium + interest, −clamp, clamp)` with
/// `premium = (max(0, IB − I) − max(0, I − IA)) / I` (Binance and BitMEX's impact-price
/// premium; a side without depth for the impact notional contributes zero), rounded
/// towards zero. `index` is the oracle (index) price.
pub fn funding_rate(
    impact_bid: Option<ExactPrice>,
    impact_ask: Option<ExactPrice>,
    index: Price,
    interest: Ppb,
    clamp: Ppb,
) -> Ppb {
    let i = i128::from(index);
    // max(0, IB − I) as a fraction over its own denominator, and likewise for the ask.
    let (a_num, a_den) = impact_bid.map_or((0, 1), |p| ((p.num - i * p.den).max(0), p.den));
    let (b_num, b_den) = impact_ask.map_or((0, 1), |p| ((i * p.den - p.num).max(0), p.den));
    let premium = trunc_div((a_num * b_den - b_num * a_den) * PPB, a_den * b_den * i);
    let c = i128::from(clamp);
    Ppb(saturate((premium + i128::from(interest)).clamp(-c, c)))
}

/// What one funding tick adds to the cumulative index, in quote micro-units per lot (longs
/// pay it, shorts receive it): `rate · index price · k`, rounded towards zero. Because
/// positions net to zero, longs pay exactly what shorts receive: no rounding dust.
pub fn funding_per_lot(rate: Ppb, index: Price, k: i64) -> i128 {
    trunc_div(i128::from(rate) * i128::from(index) * i128::from(k), PPB)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: i64 = 500;
    const MMF: Fraction = Fraction(30_000);
    const BA: Fraction = Fraction(1_000_000);
    const SMMR: Fraction = Fraction(1_500_000);

    fn tick(p: i64) -> ExactPrice {
        ExactPrice::from(Price(p))
    }

    #[test]
    fn at_maintenance_the_fillable_price_is_the_oracle() {
        // Long 1 BTC (1000 lots) at oracle 50,000 (100,000 ticks): TMMR = 1,500 USDC.
        let tmmr_scaled = 1_000 * 100_000 * 500 * 30_000;
        let tnc = 1_500_000_000; // equity exactly at maintenance
        let lp = liquidation_prices(1_000, Price(100_000), tnc, tmmr_scaled, MMF, BA, SMMR);
        assert_eq!(lp.fillable, Price(100_000));
        // BP = o·(1 − 1·0.03) = 48,500 (97,000 ticks).
        assert_eq!(lp.bankruptcy.num() / lp.bankruptcy.den(), 97_000);
        assert_eq!(lp.limit, Price(100_000));
    }

    #[test]
    fn at_bankruptcy_the_spread_is_smmr_times_mmf_but_never_below_bp() {
        let tmmr_scaled = 1_000 * 100_000 * 500 * 30_000;
        // TNC = 0: ABR = 1, FP = o·(1 − 1.5·0.03) = 47,750; BP = o: the limit is BP = 50,000.
        let lp = liquidation_prices(1_000, Price(100_000), 0, tmmr_scaled, MMF, BA, SMMR);
        assert_eq!(lp.fillable, Price(95_500));
        assert_eq!(lp.limit, Price(100_000));
        // Half-way (TNC = 750 USDC): ABR = 0.5, FP = o·(1 − 0.0225) = 48,875 (97,750 ticks);
        // BP = o·(1 − 0.5·0.03) = 49,250 (98,500 ticks): the limit is BP.
        let lp = liquidation_prices(1_000, Price(100_000), 750_000_000, tmmr_scaled, MMF, BA, SMMR);
        assert_eq!(lp.fillable, Price(97_750));
        assert_eq!(lp.limit, Price(98_500));
        // A short mirrors it: limit = min(FP, BP) = BP = 50,750 (101,500 ticks).
        let lp = liquidation_prices(-1_000, Price(100_000), 750_000_000, tmmr_scaled, MMF, BA, SMMR);
        assert_eq!(lp.fillable, Price(102_250));
        assert_eq!(lp.limit, Price(101_500));
    }

    #[test]
    fn near_maintenance_the_fillable_price_governs() {
        // TNC/TMMR = 0.9: ABR = 0.1, FP = o·(1 − 0.0045) = 99,550 ticks; BP = o·(1 − 0.027)
        // = 97,300 ticks. The limit is FP (the higher sell price).
        let tmmr_scaled = 1_000 * 100_000 * 500 * 30_000;
        let lp = liquidation_prices(1_000, Price(100_000), 1_350_000_000, tmmr_scaled, MMF, BA, SMMR);
        assert_eq!(lp.fillable, Price(99_550));
        assert_eq!(lp.limit, Price(99_550));
    }

    #[test]
    fn partial_liquidation_closes_just_enough() {
        // Long 1,000 lots at o = 100,000 ticks, limit 99,550, no fee. Health h = −150 USDC
        // scaled by 1e6. Per lot: o·k·MMF − 1e6·(o − L)·k = 1.5e12 − 2.25e11 = 1.275e12.
        let h = -150_000_000 * 1_000_000;
        let q = liquidation_qty(1_000, Price(100_000), Price(99_550), K, MMF, Fraction(0), h);
        assert_eq!(q, Qty(118)); // ⌈1.5e14 / 1.275e12⌉ = ⌈117.6⌉
        // At the bankruptcy spread (per lot ≤ 0) the whole position goes.
        let q = liquidation_qty(1_000, Price(100_000), Price(95_000), K, MMF, Fraction(0), h);
        assert_eq!(q, Qty(1_000));
    }

    #[test]
    fn liquidation_fee_is_capped_at_the_distance_to_bankruptcy() {
        // Sell 10 lots at 100,000 ticks, BP = 99,990 ticks: the fill is 10 ticks · 10 lots ·
        // 500 = 50,000 better than bankrupt. A 1 % fee would be 5,000,000: capped at 50,000.
        let fee = liquidation_fee(Side::Sell, Price(100_000), Qty(10), K, Fraction(10_000), tick(99_990));
        assert_eq!(fee, 50_000);
        // Far from bankruptcy the fee is the full 1 %.
        let fee = liquidation_fee(Side::Sell, Price(100_000), Qty(10), K, Fraction(10_000), tick(90_000));
        assert_eq!(fee, 5_000_000);
        // Never negative.
        assert_eq!(liquidation_fee(Side::Buy, Price(100_000), Qty(1), K, Fraction(10_000), tick(90_000)), 0);
    }

    #[test]
    fn adl_rank_follows_bitmex() {
        // +10 % PnL at 5× leverage ranks above +20 % at 2×: 0.5 > 0.4.
        let a = adl_rank(100, 1_000, 1_100, 220);
        let b = adl_rank(200, 1_000, 1_200, 600);
        assert!(a > b, "{a} {b}");
        assert_eq!(a, 500_000_000); // 0.1 · 5 in ppb
        // Losses rank below profits, and a loss at higher leverage ranks higher (−10 % / 5
        // > −10 % / 2).
        let c = adl_rank(-100, 1_000, 900, 180);
        let d = adl_rank(-100, 1_000, 900, 450);
        assert!(b > c && c > d, "{c} {d}");
    }

    #[test]
    fn impact_price_averages_the_levels_it_needs() {
        // Asks 100 × 2 lots, 101 × 10 lots, k = 1; impact notional 400: takes 2 at 100 (200)
        // and ⌈200 / 101⌉ = 2 at 101 (202): average 402 / 4.
        let levels = [(Price(100), Qty(2)), (Price(101), Qty(10))];
        assert_eq!(impact_price(levels.into_iter(), 400, 1), ExactPrice::try_new(402, 4));
        assert_eq!(impact_price(levels.into_iter(), 10_000, 1), None);
    }

    #[test]
    fn funding_rate_is_the_clamped_premium_plus_interest() {
        // Index 1,000; impact bid 1,002 (2/1000 = 0.2 % premium), no ask depth.
        let r = funding_rate(Some(tick(1_002)), None, Price(1_000), Ppb(100_000), Ppb(10_000_000));
        assert_eq!(r, Ppb(2_100_000)); // 0.2 % + 0.01 %
        // Impact ask below the index: negative premium.
        let r = funding_rate(None, Some(tick(997)), Price(1_000), Ppb(0), Ppb(10_000_000));
        assert_eq!(r, Ppb(-3_000_000));
        // Clamped.
        let r = funding_rate(Some(tick(1_100)), None, Price(1_000), Ppb(0), Ppb(5_000_000));
        assert_eq!(r, Ppb(5_000_000));
        // Per lot: 0.21 % of 100,000 ticks × 500 = 105,000 micro-USDC per lot.
        assert_eq!(funding_per_lot(Ppb(2_100_000), Price(100_000), 500), 105_000);
    }
}
