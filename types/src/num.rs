//! Fixed-point numbers and their exact decimal edge.
//!
//! | type | raw | meaning | arithmetic |
//! |---|---|---|---|
//! | [`Price`] | `i64` | ticks of the instrument | compare, add/sub ticks; products via `i128` |
//! | [`Qty`] | `i64` | lots of the instrument | checked add/sub; `min` |
//! | [`Amount`] | `i64` | micro-units of the quote asset (6 decimals) | checked add/sub |
//! | [`Fraction`] | `i64` | parts per million (`50_000` = 5 %) | via `i128` |
//! | [`Ppb`] | `i64` | parts per billion (funding rates) | via `i128` |
//!
//! Conversions to and from decimal strings are exact: [`exact_units`] refuses a value that
//! is not a whole number of units, [`format_units`] prints the exact decimal with no
//! trailing zeros.

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

impl Qty {
    /// The zero quantity.
    pub const ZERO: Qty = Qty(0);

    /// `true` if strictly positive.
    #[inline]
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }
}

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
