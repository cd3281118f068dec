//! Risk parameters: per instrument ([`MarketParams`]) and exchange-wide
//! ([`LiquidationParams`]). Validated once, at listing or load.

use l2x_types::{Amount, Fraction, Instrument, Ppb, Qty};

/// The risk parameters of one instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketParams {
    /// Micro-units of quote per tick per lot (from the instrument).
    pub quote_per_tick_lot: i64,
    /// Initial margin fraction (IMF).
    pub initial_margin: Fraction,
    /// Maintenance margin fraction (MMF), below the IMF.
    pub maintenance_margin: Fraction,
    /// Largest absolute position.
    pub max_position_qty: Qty,
    /// Fee charged to the maker on notional; negative is a rebate.
    pub maker_fee: Fraction,
    /// Fee charged to the taker on notional.
    pub taker_fee: Fraction,
    /// Largest liquidation fee, on the notional of a liquidation fill; paid to the
    /// insurance fund, never more than the fill is better than the bankruptcy price.
    pub liquidation_fee: Fraction,
    /// Notional (quote) of the market order whose average price is the impact bid/ask.
    pub impact_notional: Amount,
    /// Interest component added to the premium at each funding tick.
    pub funding_interest: Ppb,
    /// Largest absolute funding rate per tick.
    pub funding_clamp: Ppb,
}

/// Why risk parameters are invalid; the message names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct ParamsError {
    /// The field.
    pub field: &'static str,
    /// The rule it breaks.
    pub rule: &'static str,
}

impl MarketParams {
    /// The risk parameters of a listed instrument.
    pub fn from_instrument(i: &Instrument) -> MarketParams {
        MarketParams {
            quote_per_tick_lot: i.quote_per_tick_lot,
            initial_margin: i.initial_margin,
            maintenance_margin: i.maintenance_margin,
            max_position_qty: i.max_position_qty,
            maker_fee: i.maker_fee,
            taker_fee: i.taker_fee,
            liquidation_fee: i.liquidation_fee,
            impact_notional: i.impact_notional,
            funding_interest: i.funding_interest,
            funding_clamp: i.funding_clamp,
        }
    }

    /// Checks the rules the margin and fee arithmetic rely on.
    ///
    /// # Errors
    /// [`ParamsError`] naming the first field that breaks a rule: `0 < MMF < IMF ≤ 1`;
    /// `maker_fee + taker_fee ≥ 0` (the fee account never pays out on a trade); fees and the
    /// liquidation fee between −1 and 1 (liquidation fee ≥ 0); impact notional positive;
    /// funding clamp ≥ 0.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let err = |field, rule| Err(ParamsError { field, rule });
        let one = Fraction::ONE;
        if self.maintenance_margin.0 <= 0 || self.maintenance_margin >= self.initial_margin {
            return err("maintenance_margin", "must be positive and below initial_margin");
        }
        if self.initial_margin > one {
            return err("initial_margin", "must be at most 1");
        }
        if self.maker_fee.0.abs() >= one.0 || self.taker_fee.0.abs() >= one.0 {
            return err("maker_fee", "fees must lie strictly between -1 and 1");
        }
        if self.maker_fee.0 + self.taker_fee.0 < 0 {
            return err("maker_fee", "maker_fee + taker_fee must not be negative");
        }
        if self.liquidation_fee.0 < 0 || self.liquidation_fee >= one {
            return err("liquidation_fee", "must be in [0, 1)");
        }
        if self.impact_notional.0 <= 0 {
            return err("impact_notional", "must be positive");
        }
        if self.funding_clamp.0 < 0 {
            return err("funding_clamp", "must not be negative");
        }
        if self.quote_per_tick_lot <= 0 || self.max_position_qty.0 <= 0 {
            return err("quote_per_tick_lot", "must be positive");
        }
        Ok(())
    }
}

/// Exchange-wide liquidation parameters (dYdX v4's fillable-price configuration, and the
/// auto-deleveraging switch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiquidationParams {
    /// BA: how fast the liquidation spread opens as the account approaches bankruptcy.
    pub bankruptcy_adjustment: Fraction,
    /// SMMR: the largest liquidation spread, as a multiple of the maintenance fraction.
    pub spread_to_maintenance: Fraction,
    /// Whether auto-deleveraging may close opposite positions when the insurance fund
    /// cannot take a position.
    pub adl: bool,
}

impl Default for LiquidationParams {
    /// dYdX v4's published defaults: BA = 1, SMMR = 1.5; ADL on.
    fn default() -> LiquidationParams {
        LiquidationParams {
            bankruptcy_adjustment: Fraction(1_000_000),
            spread_to_maintenance: Fraction(1_500_000),
            adl: true,
        }
    }
}
