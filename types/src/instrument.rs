//! Instruments: the decimal specification an operator lists, and the validated
//! [`Instrument`] the state machine trades, with its exact conversions.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::bytes::{DecodeError, Reader};
use crate::ids::{InstrumentId, Symbol};
use crate::num::{Amount, Fraction, Ppb, Price, Qty, ValueError, exact_units, format_units};

/// An instrument as listed: every value a decimal, exactly as the operator wrote it.
/// [`Instrument::try_new`] validates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstrumentSpec {
    /// The symbol, e.g. `BTC-PERP`.
    pub symbol: Symbol,
    /// Price increment, in quote per base (e.g. `0.5`).
    pub tick_size: Decimal,
    /// Quantity increment, in base (e.g. `0.001`).
    pub lot_size: Decimal,
    /// Initial margin fraction (IMF), e.g. `0.05`.
    pub initial_margin: Decimal,
    /// Maintenance margin fraction (MMF), below the IMF, e.g. `0.03`.
    pub maintenance_margin: Decimal,
    /// Largest quantity of one order, in base.
    pub max_order_qty: Decimal,
    /// Largest absolute position, in base.
    pub max_position_qty: Decimal,
    /// Price band as a fraction of the mark price, e.g. `0.1`.
    pub price_band: Decimal,
    /// Maker fee on notional (negative: a rebate), e.g. `-0.0001`.
    pub maker_fee: Decimal,
    /// Taker fee on notional, e.g. `0.0005`.
    pub taker_fee: Decimal,
    /// Largest liquidation fee on the notional of a liquidation fill, e.g. `0.01`.
    pub liquidation_fee: Decimal,
    /// Notional (quote) whose average fill price is the impact bid/ask, e.g. `10000`.
    pub impact_notional: Decimal,
    /// Interest component of the funding rate, per funding tick.
    pub funding_interest: Decimal,
    /// Largest absolute funding rate per funding tick.
    pub funding_clamp: Decimal,
}

impl InstrumentSpec {
    /// The 13 decimal fields in declaration order (the order of every binary encoding).
    pub fn decimals(&self) -> [Decimal; 13] {
        [
            self.tick_size,
            self.lot_size,
            self.initial_margin,
            self.maintenance_margin,
            self.max_order_qty,
            self.max_position_qty,
            self.price_band,
            self.maker_fee,
            self.taker_fee,
            self.liquidation_fee,
            self.impact_notional,
            self.funding_interest,
            self.funding_clamp,
        ]
    }

    /// The inverse of [`InstrumentSpec::decimals`].
    pub fn from_decimals(symbol: Symbol, d: [Decimal; 13]) -> InstrumentSpec {
        let [
            tick_size,
            lot_size,
            initial_margin,
            maintenance_margin,
            max_order_qty,
            max_position_qty,
            price_band,
            maker_fee,
            taker_fee,
            liquidation_fee,
            impact_notional,
            funding_interest,
            funding_clamp,
        ] = d;
        InstrumentSpec {
            symbol,
            tick_size,
            lot_size,
            initial_margin,
            maintenance_margin,
            max_order_qty,
            max_position_qty,
            price_band,
            maker_fee,
            taker_fee,
            liquidation_fee,
            impact_notional,
            funding_interest,
            funding_clamp,
        }
    }

    /// Reads a specification as every binary encoding stores it (journal records and the
    /// canonical state): the 16 bytes of [`Symbol::to_bytes`], then the 13
    /// [`InstrumentSpec::decimals`].
    ///
    /// # Errors
    /// A symbol that does not validate, a malformed decimal, or too few bytes.
    pub fn read(r: &mut Reader<'_>) -> Result<InstrumentSpec, DecodeError> {
        let at = r.pos();
        let symbol = Symbol::from_bytes(r.array("symbol")?).ok_or(DecodeError { offset: at, what: "symbol" })?;
        let mut d = [Decimal::ZERO; 13];
        for v in &mut d {
            *v = r.decimal("instrument decimal")?;
        }
        Ok(InstrumentSpec::from_decimals(symbol, d))
    }

    /// Default maker and taker fee: none.
    pub const DEFAULT_FEE: Decimal = Decimal::ZERO;
    /// Default liquidation fee: 1 % (dYdX v4 caps at 1.5 %).
    pub const DEFAULT_LIQUIDATION_FEE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
    /// Default impact notional: 10,000 quote.
    pub const DEFAULT_IMPACT_NOTIONAL: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

    /// The default funding clamp: `initial_margin − maintenance_margin` (dYdX v4 bounds
    /// funding by a multiple of it).
    pub fn default_funding_clamp(initial_margin: Decimal, maintenance_margin: Decimal) -> Decimal {
        (initial_margin - maintenance_margin).max(Decimal::ZERO)
    }

    /// The fields a listing may leave out: the last six of [`InstrumentSpec::decimals`].
    pub const OPTIONAL_FIELDS: [&'static str; 6] =
        ["maker_fee", "taker_fee", "liquidation_fee", "impact_notional", "funding_interest", "funding_clamp"];

    /// A listing's 13 decimals (the order of [`InstrumentSpec::decimals`]) from its seven
    /// required ones and its [`InstrumentSpec::OPTIONAL_FIELDS`], each `None` for its default:
    /// no fees, [`InstrumentSpec::DEFAULT_LIQUIDATION_FEE`],
    /// [`InstrumentSpec::DEFAULT_IMPACT_NOTIONAL`], no funding interest, and
    /// [`InstrumentSpec::default_funding_clamp`]. Every edge that reads listings (scenario
    /// lines, the node's config) fills them in here.
    pub fn decimals_with_defaults(required: [Decimal; 7], optional: [Option<Decimal>; 6]) -> [Decimal; 13] {
        let [tick, lot, imf, mmf, max_order, max_position, band] = required;
        let [maker, taker, liquidation, impact, interest, clamp] = optional;
        [
            tick,
            lot,
            imf,
            mmf,
            max_order,
            max_position,
            band,
            maker.unwrap_or(Self::DEFAULT_FEE),
            taker.unwrap_or(Self::DEFAULT_FEE),
            liquidation.unwrap_or(Self::DEFAULT_LIQUIDATION_FEE),
            impact.unwrap_or(Self::DEFAULT_IMPACT_NOTIONAL),
            interest.unwrap_or(Decimal::ZERO),
            clamp.unwrap_or_else(|| Self::default_funding_clamp(imf, mmf)),
        ]
    }
}

/// A field of an [`InstrumentSpec`], by the name a listing gives it (scenario lines, the
/// node's config, what-if files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpecField {
    /// `tick_size`.
    TickSize,
    /// `lot_size`.
    LotSize,
    /// `initial_margin`.
    InitialMargin,
    /// `maintenance_margin`.
    MaintenanceMargin,
    /// `max_order_qty`.
    MaxOrderQty,
    /// `max_position_qty`.
    MaxPositionQty,
    /// `price_band`.
    PriceBand,
    /// `maker_fee`.
    MakerFee,
    /// `taker_fee`.
    TakerFee,
    /// `liquidation_fee`.
    LiquidationFee,
    /// `impact_notional`.
    ImpactNotional,
    /// `funding_interest`.
    FundingInterest,
    /// `funding_clamp`.
    FundingClamp,
}

impl SpecField {
    /// The 13 decimal fields in the order of [`InstrumentSpec::decimals`].
    pub const ALL: [SpecField; 13] = [
        SpecField::TickSize,
        SpecField::LotSize,
        SpecField::InitialMargin,
        SpecField::MaintenanceMargin,
        SpecField::MaxOrderQty,
        SpecField::MaxPositionQty,
        SpecField::PriceBand,
        SpecField::MakerFee,
        SpecField::TakerFee,
        SpecField::LiquidationFee,
        SpecField::ImpactNotional,
        SpecField::FundingInterest,
        SpecField::FundingClamp,
    ];

    /// The field's name in a listing (`price_band`).
    pub const fn name(self) -> &'static str {
        match self {
            SpecField::TickSize => "tick_size",
            SpecField::LotSize => "lot_size",
            SpecField::InitialMargin => "initial_margin",
            SpecField::MaintenanceMargin => "maintenance_margin",
            SpecField::MaxOrderQty => "max_order_qty",
            SpecField::MaxPositionQty => "max_position_qty",
            SpecField::PriceBand => "price_band",
            SpecField::MakerFee => "maker_fee",
            SpecField::TakerFee => "taker_fee",
            SpecField::LiquidationFee => "liquidation_fee",
            SpecField::ImpactNotional => "impact_notional",
            SpecField::FundingInterest => "funding_interest",
            SpecField::FundingClamp => "funding_clamp",
        }
    }
}

impl core::fmt::Display for SpecField {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A listing rule of [`Instrument::try_new`]; its text completes "FIELD: VALUE …".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecRule {
    /// A tick or lot size: `0 < x ≤ 10⁹`, at most 12 decimals.
    Increment,
    /// `tick_size × lot_size` a whole number of quote micro-units.
    TickLotWhole,
    /// `tick_size × lot_size` at most 10⁶ quote (10¹² micro-units).
    TickLotTooLarge,
    /// `x > 0`.
    Positive,
    /// `maintenance_margin < initial_margin ≤ 1`.
    AboveMaintenance,
    /// `0 < x < 1`.
    OpenUnit,
    /// `max_order_qty ≤ max_position_qty`.
    AboveMaxPosition,
    /// `−1 < x < 1`.
    SignedOpenUnit,
    /// `maker_fee + taker_fee ≥ 0`: the fee account never pays out on a trade.
    FeesBelowZero,
    /// `0 ≤ x < 1`.
    HalfOpenUnit,
}

impl SpecRule {
    /// What the rule asks, as it completes "FIELD: VALUE …".
    pub const fn text(self) -> &'static str {
        match self {
            SpecRule::Increment => "must be positive, at most 1000000000, with at most 12 decimals",
            SpecRule::TickLotWhole => "times lot_size must be a whole number of quote micro-units (0.000001)",
            SpecRule::TickLotTooLarge => "times lot_size must be at most 1000000 (quote per tick and lot)",
            SpecRule::Positive => "must be positive",
            SpecRule::AboveMaintenance => "must be above maintenance_margin and at most 1",
            SpecRule::OpenUnit => "must be above 0 and below 1",
            SpecRule::AboveMaxPosition => "must not exceed max_position_qty",
            SpecRule::SignedOpenUnit => "must lie strictly between -1 and 1",
            SpecRule::FeesBelowZero => "plus taker_fee must not be negative",
            SpecRule::HalfOpenUnit => "must be at least 0 and below 1",
        }
    }
}

impl core::fmt::Display for SpecRule {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.text())
    }
}

/// Why an [`InstrumentSpec`] is invalid: the field, and the rule it breaks or why it does
/// not convert to its unit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A field outside its allowed range.
    #[error("{field}: {value} {rule}")]
    Range {
        /// The field.
        field: SpecField,
        /// The value given.
        value: Decimal,
        /// The rule it breaks.
        rule: SpecRule,
    },
    /// A field that does not convert exactly to its unit.
    #[error("{field}: {source}")]
    Inexact {
        /// The field.
        field: SpecField,
        /// What was wrong.
        #[source]
        source: ValueError,
    },
}

impl SpecError {
    /// The field that broke a rule.
    pub fn field(&self) -> SpecField {
        match self {
            SpecError::Range { field, .. } | SpecError::Inexact { field, .. } => *field,
        }
    }
}

/// A validated, listed instrument. Scale lives here, not in the values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instrument {
    /// Its id (listing order).
    pub id: InstrumentId,
    /// Its symbol.
    pub symbol: Symbol,
    /// Price increment, quote per base.
    pub tick_size: Decimal,
    /// Quantity increment, base.
    pub lot_size: Decimal,
    /// Micro-units of quote that one lot is worth per tick of price:
    /// `tick_size · lot_size · 10⁶`, a whole number ≥ 1 by validation.
    pub quote_per_tick_lot: i64,
    /// Initial margin fraction.
    pub initial_margin: Fraction,
    /// Maintenance margin fraction.
    pub maintenance_margin: Fraction,
    /// Largest order quantity.
    pub max_order_qty: Qty,
    /// Largest absolute position.
    pub max_position_qty: Qty,
    /// Price band fraction.
    pub price_band: Fraction,
    /// Maker fee fraction (negative: rebate).
    pub maker_fee: Fraction,
    /// Taker fee fraction.
    pub taker_fee: Fraction,
    /// Largest liquidation fee fraction.
    pub liquidation_fee: Fraction,
    /// Impact notional, quote micro-units.
    pub impact_notional: Amount,
    /// Funding interest per tick.
    pub funding_interest: Ppb,
    /// Largest absolute funding rate per tick.
    pub funding_clamp: Ppb,
}

/// Largest tick or lot size accepted, and most decimal places.
const MAX_INCREMENT: i64 = 1_000_000_000;
const MAX_INCREMENT_SCALE: u32 = 12;
/// Largest value of one tick-lot, in quote micro-units (keeps notionals far from i128 limits).
const MAX_QUOTE_PER_TICK_LOT: i64 = 1_000_000_000_000;

impl Instrument {
    /// Validates a specification.
    ///
    /// Rules: tick and lot sizes positive, at most 10⁹ and 12 decimals, and
    /// `tick · lot · 10⁶` a whole number (so every notional is exact in USDC micro-units);
    /// `0 < maintenance < initial ≤ 1`; `0 < band < 1`; maximum order and position
    /// quantities positive multiples of the lot, with max order ≤ max position; fees
    /// strictly between −1 and 1 with `maker + taker ≥ 0` (the fee account never pays out on
    /// a trade); liquidation fee in `[0, 1)`; impact notional positive (6 decimals);
    /// funding interest in `(−1, 1)` and clamp in `[0, 1)` (9 decimals).
    ///
    /// # Errors
    /// [`SpecError`] naming the first field that breaks a rule, and the rule
    /// ([`SpecRule`]) or why the value does not convert to the field's unit.
    pub fn try_new(id: InstrumentId, spec: &InstrumentSpec) -> Result<Instrument, SpecError> {
        let (tick_size, lot_size, quote_per_tick_lot) = checked_grid(spec)?;
        let (initial_margin, maintenance_margin, price_band) = checked_margins(spec)?;
        let (max_order_qty, max_position_qty) = checked_limits(spec, lot_size)?;
        let (maker_fee, taker_fee, liquidation_fee) = checked_fees(spec)?;
        let (impact_notional, funding_interest, funding_clamp) = checked_funding(spec)?;
        Ok(Instrument {
            id,
            symbol: spec.symbol,
            tick_size,
            lot_size,
            quote_per_tick_lot,
            initial_margin,
            maintenance_margin,
            max_order_qty,
            max_position_qty,
            price_band,
            maker_fee,
            taker_fee,
            liquidation_fee,
            impact_notional,
            funding_interest,
            funding_clamp,
        })
    }

    /// The specification this instrument was listed with (normalised decimals).
    pub fn spec(&self) -> InstrumentSpec {
        let dec = |f: Fraction| Decimal::new(f.0, 6).normalize();
        InstrumentSpec {
            symbol: self.symbol,
            tick_size: self.tick_size,
            lot_size: self.lot_size,
            initial_margin: dec(self.initial_margin),
            maintenance_margin: dec(self.maintenance_margin),
            max_order_qty: Decimal::from(self.max_order_qty.0) * self.lot_size,
            max_position_qty: Decimal::from(self.max_position_qty.0) * self.lot_size,
            price_band: dec(self.price_band),
            maker_fee: dec(self.maker_fee),
            taker_fee: dec(self.taker_fee),
            liquidation_fee: dec(self.liquidation_fee),
            impact_notional: Decimal::new(self.impact_notional.0, Amount::DECIMALS).normalize(),
            funding_interest: Decimal::new(self.funding_interest.0, 9).normalize(),
            funding_clamp: Decimal::new(self.funding_clamp.0, 9).normalize(),
        }
    }

    /// A decimal price in ticks, exactly.
    ///
    /// # Errors
    /// [`ValueError`] if the price is off the tick grid or out of range.
    pub fn price_from_decimal(&self, price: Decimal) -> Result<Price, ValueError> {
        exact_units(price, self.tick_size).map(Price)
    }

    /// A decimal quantity in lots, exactly.
    ///
    /// # Errors
    /// [`ValueError`] if the quantity is off the lot grid or out of range.
    pub fn qty_from_decimal(&self, qty: Decimal) -> Result<Qty, ValueError> {
        exact_units(qty, self.lot_size).map(Qty)
    }

    /// The exact decimal string of a price.
    pub fn format_price(&self, price: Price) -> String {
        format_units(i128::from(price), self.tick_size)
    }

    /// The exact decimal string of a quantity.
    pub fn format_qty(&self, qty: Qty) -> String {
        format_units(i128::from(qty), self.lot_size)
    }

    /// Notional value of `qty` at `price`, in quote micro-units (exact, signed with `qty`).
    #[inline]
    pub fn notional(&self, price: Price, qty: Qty) -> i128 {
        i128::from(price) * i128::from(qty) * i128::from(self.quote_per_tick_lot)
    }

    /// The inclusive range of limit prices allowed at this mark: every tick within
    /// `mark · (1 ± band)`. The ends are also the protection prices of market orders
    /// (sell, buy): the band edge rounded to the tick towards the mark.
    #[inline]
    pub fn band(&self, mark: Price) -> (Price, Price) {
        let mark = i128::from(mark);
        let band = i128::from(self.price_band);
        let scale = i128::from(Fraction::SCALE);
        let low = -((-(mark * (scale - band))).div_euclid(scale)); // ceil: towards the mark
        let high = (mark * (scale + band)).div_euclid(scale); // floor: towards the mark
        (Price(clamp_i64(low.max(1))), Price(clamp_i64(high)))
    }
}

fn range(field: SpecField, value: Decimal, rule: SpecRule) -> SpecError {
    SpecError::Range { field, value, rule }
}

fn fraction(field: SpecField, value: Decimal) -> Result<Fraction, SpecError> {
    Fraction::from_decimal(value).map_err(|source| SpecError::Inexact { field, source })
}

fn rate(field: SpecField, value: Decimal) -> Result<Ppb, SpecError> {
    Ppb::from_decimal(value).map_err(|source| SpecError::Inexact { field, source })
}

/// The tick and lot sizes (normalised) and the value of one tick-lot in quote micro-units.
fn checked_grid(spec: &InstrumentSpec) -> Result<(Decimal, Decimal, i64), SpecError> {
    let increment = |field, value: Decimal| {
        if value <= Decimal::ZERO
            || value > Decimal::from(MAX_INCREMENT)
            || value.normalize().scale() > MAX_INCREMENT_SCALE
        {
            Err(range(field, value, SpecRule::Increment))
        } else {
            Ok(value.normalize())
        }
    };
    let tick_size = increment(SpecField::TickSize, spec.tick_size)?;
    let lot_size = increment(SpecField::LotSize, spec.lot_size)?;
    let per_tick_lot = tick_size * lot_size * Decimal::from(Amount::ONE);
    if !per_tick_lot.fract().is_zero() {
        return Err(range(SpecField::TickSize, spec.tick_size, SpecRule::TickLotWhole));
    }
    let quote_per_tick_lot = per_tick_lot
        .to_i64()
        .filter(|&q| (1..=MAX_QUOTE_PER_TICK_LOT).contains(&q))
        .ok_or(range(SpecField::TickSize, spec.tick_size, SpecRule::TickLotTooLarge))?;
    Ok((tick_size, lot_size, quote_per_tick_lot))
}

/// The initial and maintenance margin fractions and the price band.
fn checked_margins(spec: &InstrumentSpec) -> Result<(Fraction, Fraction, Fraction), SpecError> {
    let initial_margin = fraction(SpecField::InitialMargin, spec.initial_margin)?;
    let maintenance_margin = fraction(SpecField::MaintenanceMargin, spec.maintenance_margin)?;
    let price_band = fraction(SpecField::PriceBand, spec.price_band)?;
    if maintenance_margin.0 <= 0 {
        return Err(range(SpecField::MaintenanceMargin, spec.maintenance_margin, SpecRule::Positive));
    }
    if initial_margin <= maintenance_margin || initial_margin > Fraction::ONE {
        return Err(range(SpecField::InitialMargin, spec.initial_margin, SpecRule::AboveMaintenance));
    }
    if price_band.0 <= 0 || price_band >= Fraction::ONE {
        return Err(range(SpecField::PriceBand, spec.price_band, SpecRule::OpenUnit));
    }
    Ok((initial_margin, maintenance_margin, price_band))
}

/// The largest order and the largest position, in lots.
fn checked_limits(spec: &InstrumentSpec, lot_size: Decimal) -> Result<(Qty, Qty), SpecError> {
    let lots = |field, value| {
        let units = exact_units(value, lot_size).map_err(|source| SpecError::Inexact { field, source })?;
        if units <= 0 {
            return Err(range(field, value, SpecRule::Positive));
        }
        Ok(Qty(units))
    };
    let max_order_qty = lots(SpecField::MaxOrderQty, spec.max_order_qty)?;
    let max_position_qty = lots(SpecField::MaxPositionQty, spec.max_position_qty)?;
    if max_order_qty > max_position_qty {
        return Err(range(SpecField::MaxOrderQty, spec.max_order_qty, SpecRule::AboveMaxPosition));
    }
    Ok((max_order_qty, max_position_qty))
}

/// The maker, taker and liquidation fees.
fn checked_fees(spec: &InstrumentSpec) -> Result<(Fraction, Fraction, Fraction), SpecError> {
    let maker_fee = fraction(SpecField::MakerFee, spec.maker_fee)?;
    let taker_fee = fraction(SpecField::TakerFee, spec.taker_fee)?;
    for (field, fee, value) in
        [(SpecField::MakerFee, maker_fee, spec.maker_fee), (SpecField::TakerFee, taker_fee, spec.taker_fee)]
    {
        if fee.0.abs() >= Fraction::SCALE {
            return Err(range(field, value, SpecRule::SignedOpenUnit));
        }
    }
    if maker_fee.0 + taker_fee.0 < 0 {
        return Err(range(SpecField::MakerFee, spec.maker_fee, SpecRule::FeesBelowZero));
    }
    let liquidation_fee = fraction(SpecField::LiquidationFee, spec.liquidation_fee)?;
    if liquidation_fee.0 < 0 || liquidation_fee >= Fraction::ONE {
        return Err(range(SpecField::LiquidationFee, spec.liquidation_fee, SpecRule::HalfOpenUnit));
    }
    Ok((maker_fee, taker_fee, liquidation_fee))
}

/// The impact notional, the funding interest and the funding clamp.
fn checked_funding(spec: &InstrumentSpec) -> Result<(Amount, Ppb, Ppb), SpecError> {
    let impact_notional = Amount::from_decimal(spec.impact_notional)
        .map_err(|source| SpecError::Inexact { field: SpecField::ImpactNotional, source })?;
    if impact_notional.0 <= 0 {
        return Err(range(SpecField::ImpactNotional, spec.impact_notional, SpecRule::Positive));
    }
    let funding_interest = rate(SpecField::FundingInterest, spec.funding_interest)?;
    let funding_clamp = rate(SpecField::FundingClamp, spec.funding_clamp)?;
    if funding_interest.0.abs() >= Ppb::SCALE {
        return Err(range(SpecField::FundingInterest, spec.funding_interest, SpecRule::SignedOpenUnit));
    }
    if funding_clamp.0 < 0 || funding_clamp.0 >= Ppb::SCALE {
        return Err(range(SpecField::FundingClamp, spec.funding_clamp, SpecRule::HalfOpenUnit));
    }
    Ok((impact_notional, funding_interest, funding_clamp))
}

fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use core::str::FromStr;

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    pub(crate) fn btc_spec() -> InstrumentSpec {
        InstrumentSpec {
            symbol: Symbol::try_new("BTC-PERP").unwrap(),
            tick_size: d("0.5"),
            lot_size: d("0.001"),
            initial_margin: d("0.05"),
            maintenance_margin: d("0.03"),
            max_order_qty: d("100"),
            max_position_qty: d("1000"),
            price_band: d("0.1"),
            maker_fee: d("-0.0001"),
            taker_fee: d("0.0005"),
            liquidation_fee: d("0.01"),
            impact_notional: d("10000"),
            funding_interest: d("0.00001"),
            funding_clamp: d("0.02"),
        }
    }

    #[test]
    fn btc_perp_converts_exactly() {
        let i = Instrument::try_new(InstrumentId(0), &btc_spec()).unwrap();
        assert_eq!(i.quote_per_tick_lot, 500); // 0.5 · 0.001 USDC = 500 micro-USDC
        assert_eq!(i.max_order_qty, Qty(100_000));
        assert_eq!(i.price_from_decimal(d("50000")), Ok(Price(100_000)));
        assert!(i.price_from_decimal(d("50000.25")).is_err());
        assert_eq!(i.format_price(Price(100_001)), "50000.5");
        assert_eq!(i.format_qty(Qty(250)), "0.25");
        // 0.25 BTC at 50,000 = 12,500 USDC.
        assert_eq!(i.notional(Price(100_000), Qty(250)), 12_500_000_000);
        assert_eq!(i.spec(), InstrumentSpec { tick_size: d("0.5"), ..btc_spec() });
        assert_eq!((i.maker_fee, i.taker_fee), (Fraction(-100), Fraction(500)));
        assert_eq!(i.impact_notional, Amount(10_000_000_000));
        assert_eq!((i.funding_interest, i.funding_clamp), (Ppb(10_000), Ppb(20_000_000)));
    }

    #[test]
    fn band_rounds_towards_the_mark() {
        let i = Instrument::try_new(InstrumentId(0), &btc_spec()).unwrap();
        // mark 50,000 (100,000 ticks), band 10 %: [45,000, 55,000] exactly.
        assert_eq!(i.band(Price(100_000)), (Price(90_000), Price(110_000)));
        // mark 3 ticks: 2.7 → 3 (ceil), 3.3 → 3 (floor).
        assert_eq!(i.band(Price(3)), (Price(3), Price(3)));
        // mark 15 ticks: 13.5 → 14, 16.5 → 16.
        assert_eq!(i.band(Price(15)), (Price(14), Price(16)));
    }

    #[test]
    fn invalid_specs_name_the_field() {
        let bad = |f: fn(&mut InstrumentSpec)| {
            let mut s = btc_spec();
            f(&mut s);
            Instrument::try_new(InstrumentId(0), &s).unwrap_err().to_string()
        };
        assert!(bad(|s| s.tick_size = d("0")).starts_with("tick_size"));
        assert!(bad(|s| s.lot_size = d("-1")).starts_with("lot_size"));
        assert!(
            bad(|s| {
                s.tick_size = d("0.0001");
                s.lot_size = d("0.001")
            })
            .starts_with("tick_size")
        );
        assert!(bad(|s| s.initial_margin = d("0.02")).starts_with("initial_margin"));
        assert!(bad(|s| s.maintenance_margin = d("0")).starts_with("maintenance_margin"));
        assert!(bad(|s| s.initial_margin = d("0.0500001")).starts_with("initial_margin"));
        assert!(bad(|s| s.price_band = d("1")).starts_with("price_band"));
        assert!(bad(|s| s.max_order_qty = d("0.0005")).starts_with("max_order_qty"));
        assert!(bad(|s| s.max_order_qty = d("2000")).starts_with("max_order_qty"));
        assert!(bad(|s| s.max_position_qty = d("0")).starts_with("max_position_qty"));
        assert!(bad(|s| s.maker_fee = d("-0.001")).starts_with("maker_fee"));
        assert!(bad(|s| s.taker_fee = d("1")).starts_with("taker_fee"));
        assert!(bad(|s| s.liquidation_fee = d("-0.01")).starts_with("liquidation_fee"));
        assert!(bad(|s| s.impact_notional = d("0")).starts_with("impact_notional"));
        assert!(bad(|s| s.funding_interest = d("0.0000000001")).starts_with("funding_interest"));
        assert!(bad(|s| s.funding_clamp = d("-0.1")).starts_with("funding_clamp"));
        assert_eq!(InstrumentSpec::default_funding_clamp(d("0.05"), d("0.03")), d("0.02"));
    }

    /// A refused listing's error is typed: the field and the rule, not only a message.
    #[test]
    fn spec_error_names_field_and_rule() {
        let err = |f: fn(&mut InstrumentSpec)| {
            let mut s = btc_spec();
            f(&mut s);
            Instrument::try_new(InstrumentId(0), &s).unwrap_err()
        };
        let band = err(|s| s.price_band = d("1"));
        assert_eq!(band, SpecError::Range { field: SpecField::PriceBand, value: d("1"), rule: SpecRule::OpenUnit });
        assert_eq!(band.to_string(), "price_band: 1 must be above 0 and below 1");
        let fine = err(|s| s.price_band = d("0.1234567"));
        assert_eq!(fine.field(), SpecField::PriceBand);
        assert!(matches!(fine, SpecError::Inexact { .. }), "{fine:?}");
        assert!(std::error::Error::source(&fine).is_some(), "the conversion error is kept as the source");
        // A tick-lot worth more than 10^6 quote is refused for its size, not called fractional.
        let huge = err(|s| {
            s.tick_size = d("1000000");
            s.lot_size = d("1000");
        });
        assert_eq!(
            huge.to_string(),
            "tick_size: 1000000 times lot_size must be at most 1000000 (quote per tick and lot)"
        );
        for (name, field) in ["tick_size", "maker_fee", "funding_clamp"].into_iter().zip([
            SpecField::TickSize,
            SpecField::MakerFee,
            SpecField::FundingClamp,
        ]) {
            assert_eq!(field.name(), name);
            assert_eq!(SpecField::ALL.iter().filter(|f| f.name() == name).count(), 1);
        }
    }

    /// Regression: a maker fee of -1 or below was reported as a bad `taker_fee`.
    #[test]
    fn spec_error_blames_maker_fee_not_taker_fee() {
        let mut s = btc_spec();
        s.maker_fee = d("-1");
        s.taker_fee = d("0.5");
        let e = Instrument::try_new(InstrumentId(0), &s).unwrap_err();
        assert_eq!(e, SpecError::Range { field: SpecField::MakerFee, value: d("-1"), rule: SpecRule::SignedOpenUnit });
    }
}
