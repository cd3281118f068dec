//! Fixed-point numbers and their exact decimal edge.
//!
//! | type | raw | meaning |
//! |---|---|---|
//! | [`Price`] | `i64` | ticks of the instrument; order prices are positive |
//! | [`Qty`] | `i64` | lots of the instrument; order quantities are positive, positions signed |
//! | [`Amount`] | `i64` | micro-units of the quote asset (6 decimals) |
//! | [`Fraction`] | `i64` | parts per million (`50_000` = 5 %) |
//! | [`Ppb`] | `i64` | parts per billion (funding rates) |
//!
//! Conversions to and from decimal strings are exact: [`exact_units`] refuses a value that
//! is not a whole number of units, [`format_units`] prints the exact decimal with no
//! trailing zeros.
//!
//! # Arithmetic rules
//!
//! Values compare freely (`Ord`). Arithmetic goes through the methods below, not through the
//! raw field, and each operation has a reason it cannot overflow or a defined result when it
//! can. The bounds come from validation: an order's quantity is in `1..=max_order_qty` and
//! `max_order_qty ≤ max_position_qty < 2⁶³` ([`crate::Instrument::try_new`]); an order's
//! price is positive and inside the band around the mark; `k`, the quote micro-units of one
//! tick-lot, is in `1..=10¹²`. None of the operations on the matching path adds a branch:
//! the preconditions are `debug_assert!`s, which release builds compile out.
//!
//! | operation | method | why it cannot overflow, or what happens when it does |
//! |---|---|---|
//! | widen for a product or a margin figure | `i128::from(x)` | exact; a product of two widened `i64`s is below 2¹²⁶ in magnitude |
//! | a part taken off an open quantity: a fill, a self-trade decrement, a cut | [`Qty::less`] (`ZERO ≤ part ≤ self`) | the result lies in `[0, self]`; debug builds assert the precondition |
//! | a taker's executed quantity grows by a fill | [`Qty::plus`] | `filled + leaves` of a taker never exceeds its order's quantity (`≤ max_order_qty`), or a liquidated position; debug builds assert |
//! | a sum that validation does not bound and that is only compared or reported: a resting order's executed quantity over its life (amends can raise its quantity again and again), the open quantity of an account's reduce-only orders on one side | [`Qty::saturating_add`] | saturates at `i64::MAX` lots, which compares above any position; branch-free (a conditional move) |
//! | a sum no validation bounds (an amended reduce-only order plus the other reduce-only orders on its side) | [`Qty::checked_add`] | `None` is more than any position: the amend is refused `reduce_only_would_increase` |
//! | how an open quantity changes, `to − from` | [`Qty::change`] | both in `[0, 2⁶³)`, so the difference fits `i64` |
//! | a price or a quantity is positive | [`Price::is_positive`], [`Qty::is_positive`] | — |
//!
//! Known limits, not checked (each needs far more than any real market, and checking them on
//! the fill path would cost every fill a branch): a notional `price · qty · k` is formed in
//! `i128` and fits while `price · qty < 2⁸⁷` (ticks times lots, e.g. 10¹³ ticks and 10¹³
//! lots); the total open quantity of one price level, or of one account's orders on one side,
//! fits `i64` while it stays below 2⁶³ lots. Beyond them release builds wrap (debug builds
//! panic). A listing rule bounding `max_position_qty · k` and the band would close them; it
//! would refuse listings that are accepted today, so it is a change of its own.

use core::fmt;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

/// A price in ticks of its instrument. Valid order prices are positive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(transparent)]
pub struct Price(pub i64);

/// A quantity in lots of its instrument. Order quantities are positive; positions are signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(transparent)]
pub struct Qty(pub i64);

/// An amount of the quote asset in its smallest unit (USDC: 10⁻⁶), signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(transparent)]
pub struct Amount(pub i64);

/// A fraction in parts per million: `Fraction(50_000)` is 0.05.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(transparent)]
pub struct Fraction(pub i64);

impl Price {
    /// `true` if strictly positive (every order price is).
    #[inline]
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl Qty {
    /// The zero quantity.
    pub const ZERO: Qty = Qty(0);

    /// `true` if strictly positive.
    #[inline]
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// What is left of this quantity after `part` of it goes (a fill, a decrement, a cut):
    /// `self − part`, for `ZERO ≤ part ≤ self`, which keeps the result in `[0, self]`.
    #[inline]
    pub const fn less(self, part: Qty) -> Qty {
        debug_assert!(0 <= part.0 && part.0 <= self.0, "a part of a quantity is at most the quantity");
        Qty(self.0 - part.0)
    }

    /// `self + more`, for a sum the caller has bounded below `i64::MAX` (a taker's executed
    /// quantity: at most its order's).
    #[inline]
    pub const fn plus(self, more: Qty) -> Qty {
        debug_assert!(self.0.checked_add(more.0).is_some(), "a bounded sum of quantities");
        Qty(self.0 + more.0)
    }

    /// `self + more`, saturating at `i64::MAX` lots.
    #[inline]
    pub const fn saturating_add(self, more: Qty) -> Qty {
        Qty(self.0.saturating_add(more.0))
    }

    /// `self + more`, or `None` if it does not fit `i64`.
    #[inline]
    pub const fn checked_add(self, more: Qty) -> Option<Qty> {
        match self.0.checked_add(more.0) {
            Some(sum) => Some(Qty(sum)),
            None => None,
        }
    }

    /// The signed change `to − from` of a non-negative quantity (an order's open quantity),
    /// in lots: both are in `[0, 2⁶³)`, so it fits `i64`.
    #[inline]
    pub const fn change(from: Qty, to: Qty) -> i64 {
        debug_assert!(from.0 >= 0 && to.0 >= 0, "open quantities are not negative");
        to.0 - from.0
    }
}

/// Exact widening, for products and margin figures (see the module doc's rules).
macro_rules! widen {
    ($($t:ident),*) => {$(
        impl From<$t> for i128 {
            #[inline]
            fn from(v: $t) -> i128 {
                i128::from(v.0)
            }
        }
    )*};
}
widen!(Price, Qty, Amount, Fraction, Ppb);

impl Amount {
    /// Decimal places of the quote asset (USDC).
    pub const DECIMALS: u32 = 6;
    /// Smallest units per whole unit of the quote asset.
    pub const ONE: i64 = 1_000_000;

    /// Parses an exact decimal amount of the quote asset (at most 6 decimal places).
    ///
    /// # Errors
    /// [`ValueError`] if the value has more than 6 decimals or does not fit.
    pub fn from_decimal(value: Decimal) -> Result<Amount, ValueError> {
        exact_units(value, Decimal::new(1, Self::DECIMALS)).map(Amount)
    }

    /// The exact decimal string, without trailing zeros.
    pub fn format(self) -> String {
        Amount::format_micro(i128::from(self.0))
    }

    /// Micro-units of quote as an exact decimal string (sums and notionals, which are wider
    /// than an [`Amount`]).
    pub fn format_micro(micro: i128) -> String {
        format_units(micro, Decimal::new(1, Self::DECIMALS))
    }
}

impl Fraction {
    /// Parts per million in one.
    pub const SCALE: i64 = 1_000_000;
    /// One whole (100 %).
    pub const ONE: Fraction = Fraction(Self::SCALE);

    /// Parses an exact fraction with at most 6 decimal places.
    ///
    /// # Errors
    /// [`ValueError`] if the value has more than 6 decimals or does not fit.
    pub fn from_decimal(value: Decimal) -> Result<Fraction, ValueError> {
        exact_units(value, Decimal::new(1, 6)).map(Fraction)
    }

    /// The exact decimal string, without trailing zeros.
    pub fn format(self) -> String {
        format_units(i128::from(self.0), Decimal::new(1, 6))
    }
}

/// A rate in parts per billion (funding rates are small: 0.01 % = 100,000 ppb).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(transparent)]
pub struct Ppb(pub i64);

impl Ppb {
    /// Parts per billion in one.
    pub const SCALE: i64 = 1_000_000_000;

    /// Parses an exact rate with at most 9 decimal places.
    ///
    /// # Errors
    /// [`ValueError`] if the value has more than 9 decimals or does not fit.
    pub fn from_decimal(value: Decimal) -> Result<Ppb, ValueError> {
        exact_units(value, Decimal::new(1, 9)).map(Ppb)
    }

    /// The exact decimal string, without trailing zeros.
    pub fn format(self) -> String {
        format_units(i128::from(self.0), Decimal::new(1, 9))
    }
}

/// A decimal value that does not convert exactly to whole units.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The value is not a whole multiple of the unit (an off-tick price, an off-lot quantity).
    #[error("{value} is not a multiple of {unit}")]
    NotMultiple {
        /// The value given.
        value: Decimal,
        /// The unit it must be a multiple of.
        unit: Decimal,
    },
    /// The value, in units, does not fit in 64 bits.
    #[error("{value} is out of range")]
    OutOfRange {
        /// The value given.
        value: Decimal,
    },
}

/// `value / unit` as a whole number, or an error if it is not one (never rounds).
///
/// # Errors
/// [`ValueError::NotMultiple`] if `value` is off the grid of `unit`, or `unit` is not
/// positive; [`ValueError::OutOfRange`] if the quotient does not fit in an `i64`.
pub fn exact_units(value: Decimal, unit: Decimal) -> Result<i64, ValueError> {
    let not_multiple = || ValueError::NotMultiple { value, unit };
    if unit <= Decimal::ZERO {
        return Err(not_multiple());
    }
    let rem = value.checked_rem(unit).ok_or_else(not_multiple)?;
    if !rem.is_zero() {
        return Err(not_multiple());
    }
    let quotient = value.checked_div(unit).ok_or(ValueError::OutOfRange { value })?;
    if quotient.fract() != Decimal::ZERO {
        return Err(not_multiple());
    }
    quotient.to_i64().ok_or(ValueError::OutOfRange { value })
}

/// The exact decimal string of `units · unit`, without trailing zeros (`"0"` for zero).
///
/// Exact for every `i64` number of units and every unit with at most 18 significant digits:
/// the product is formed in `i128`, never in floating point.
pub fn format_units(units: i128, unit: Decimal) -> String {
    let scale = unit.scale();
    let mantissa = unit.mantissa();
    match units.checked_mul(mantissa) {
        Some(raw) => format_scaled(raw, scale),
        // Only reachable for absurd units; still exact, through rust_decimal.
        None => (Decimal::from_i128_with_scale(units, 0) * unit).normalize().to_string(),
    }
}

/// Formats `raw · 10^-scale` exactly, trimming trailing zeros.
fn format_scaled(raw: i128, scale: u32) -> String {
    let negative = raw < 0;
    let digits = raw.unsigned_abs().to_string();
    let scale = scale as usize;
    let (int_part, frac_part) = if digits.len() > scale {
        let (i, f) = digits.split_at(digits.len() - scale);
        (i.to_string(), f.to_string())
    } else {
        ("0".to_string(), format!("{digits:0>scale$}"))
    };
    let frac = frac_part.trim_end_matches('0');
    let mut out = String::with_capacity(int_part.len() + frac.len() + 2);
    if negative {
        out.push('-');
    }
    out.push_str(&int_part);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format())
    }
}

#[cfg(test)]
mod tests {
    use core::str::FromStr;

    use proptest::prelude::*;

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn exact_units_accepts_grid_values_and_refuses_off_grid() {
        assert_eq!(exact_units(d("50000"), d("0.5")), Ok(100_000));
        assert_eq!(exact_units(d("50000.5"), d("0.5")), Ok(100_001));
        assert_eq!(exact_units(d("0.25"), d("0.001")), Ok(250));
        assert_eq!(exact_units(d("-1.5"), d("0.5")), Ok(-3));
        assert!(matches!(exact_units(d("50000.25"), d("0.5")), Err(ValueError::NotMultiple { .. })));
        assert!(matches!(exact_units(d("0.0005"), d("0.001")), Err(ValueError::NotMultiple { .. })));
        assert!(matches!(exact_units(d("1"), d("0")), Err(ValueError::NotMultiple { .. })));
        assert!(matches!(exact_units(d("100000000000000000000"), d("1")), Err(ValueError::OutOfRange { .. })));
    }

    #[test]
    fn format_units_is_exact_and_trims() {
        assert_eq!(format_units(100_000, d("0.5")), "50000");
        assert_eq!(format_units(100_001, d("0.5")), "50000.5");
        assert_eq!(format_units(100, d("0.001")), "0.1");
        assert_eq!(format_units(0, d("0.001")), "0");
        assert_eq!(format_units(-3, d("0.5")), "-1.5");
        assert_eq!(format_units(1, d("0.000001")), "0.000001");
        assert_eq!(format_units(i128::from(i64::MAX), d("0.001")), "9223372036854775.807");
    }

    #[test]
    fn amounts_and_fractions_parse_exactly() {
        assert_eq!(Amount::from_decimal(d("100000")), Ok(Amount(100_000_000_000)));
        assert_eq!(Amount::from_decimal(d("0.000001")), Ok(Amount(1)));
        assert!(Amount::from_decimal(d("0.0000001")).is_err());
        assert_eq!(Fraction::from_decimal(d("0.05")), Ok(Fraction(50_000)));
        assert_eq!(Amount(1_500_000).format(), "1.5");
    }

    /// `value · f`, rounded towards negative infinity.
    fn mul_floor(f: Fraction, value: i128) -> i128 {
        (value * i128::from(f.0)).div_euclid(i128::from(Fraction::SCALE))
    }

    /// `value · f`, rounded towards positive infinity.
    fn mul_ceil(f: Fraction, value: i128) -> i128 {
        -(-(value * i128::from(f.0))).div_euclid(i128::from(Fraction::SCALE))
    }

    #[test]
    fn fraction_rounding_directions() {
        let f = Fraction(333_333); // 0.333333
        assert_eq!(mul_floor(f, 10), 3);
        assert_eq!(mul_ceil(f, 10), 4);
        assert_eq!(mul_floor(f, -10), -4);
        assert_eq!(mul_ceil(f, -10), -3);
        assert_eq!(mul_floor(Fraction(500_000), 10), 5);
        assert_eq!(mul_ceil(Fraction(500_000), 10), 5);
    }

    /// Each quantity operation of the rules table at its edges.
    #[test]
    fn quantity_arithmetic_follows_the_rules_table() {
        assert_eq!(Qty(7).less(Qty(7)), Qty::ZERO);
        assert_eq!(Qty(7).less(Qty::ZERO), Qty(7));
        assert_eq!(Qty(3).plus(Qty(4)), Qty(7));
        assert_eq!(Qty(i64::MAX - 1).saturating_add(Qty(5)), Qty(i64::MAX));
        assert_eq!(Qty(i64::MAX).checked_add(Qty(1)), None);
        assert_eq!(Qty(2).checked_add(Qty(3)), Some(Qty(5)));
        assert_eq!(Qty::change(Qty::ZERO, Qty(i64::MAX)), i64::MAX);
        assert_eq!(Qty::change(Qty(i64::MAX), Qty::ZERO), -i64::MAX);
        assert_eq!(i128::from(Price(i64::MIN)) * i128::from(Qty(i64::MIN)), 1 << 126);
        assert!(Price(1).is_positive() && !Price(0).is_positive() && !Qty(-1).is_positive());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(units in any::<i64>(), scale in 0u32..12, m in 1i64..10_000) {
            let unit = Decimal::new(m, scale);
            let text = format_units(i128::from(units), unit);
            let parsed = Decimal::from_str(&text).unwrap();
            prop_assert_eq!(exact_units(parsed, unit), Ok(units));
        }
    }
}
