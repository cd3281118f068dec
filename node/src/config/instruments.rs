//! `[[instruments]]`: what a new journal lists, each with its first oracle price.
//!
//! The fields are those of a scenario's `instrument` line (docs/SCENARIOS.md), every decimal
//! a TOML *string* (`tick_size = "0.5"`): exact, never a float. [`InstrumentEntry::to_spec`]
//! validates an entry as the engine will list it, so that a bad one stops the node before
//! anything starts, with the field named.

use std::str::FromStr;

use l2x_types::{Decimal, Instrument, InstrumentId, InstrumentSpec, Price, Symbol};
use serde::Deserialize;

use super::error::{ConfigError, Result};

/// One instrument: the fields of a scenario's `instrument` line (docs/SCENARIOS.md), every
/// decimal a string, and its first oracle price.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentEntry {
    /// Its symbol (`BTC-PERP`).
    pub symbol: String,
    /// Price increment, quote per base.
    pub tick_size: String,
    /// Quantity increment, base.
    pub lot_size: String,
    /// Initial margin fraction.
    pub initial_margin: String,
    /// Maintenance margin fraction.
    pub maintenance_margin: String,
    /// Largest order, base.
    pub max_order_qty: String,
    /// Largest position, base.
    pub max_position_qty: String,
    /// How far from the mark an order may be priced, a fraction.
    pub price_band: String,
    /// Maker fee (negative: a rebate); the engine's default if absent.
    #[serde(default)]
    pub maker_fee: Option<String>,
    /// Taker fee.
    #[serde(default)]
    pub taker_fee: Option<String>,
    /// Liquidation fee.
    #[serde(default)]
    pub liquidation_fee: Option<String>,
    /// Impact notional of the funding premium, quote.
    #[serde(default)]
    pub impact_notional: Option<String>,
    /// Funding interest rate per interval.
    #[serde(default)]
    pub funding_interest: Option<String>,
    /// Funding clamp.
    #[serde(default)]
    pub funding_clamp: Option<String>,
    /// The first oracle price, quote per base (on the tick grid).
    pub oracle_price: String,
}

impl InstrumentEntry {
    /// The listing and its first oracle price in ticks, validated as the engine will.
    ///
    /// # Errors
    /// A field that is not a decimal, a bad symbol, a spec the engine refuses, an oracle
    /// price off the tick grid or not positive.
    pub fn to_spec(&self, id: InstrumentId) -> Result<(InstrumentSpec, Price)> {
        let d = |field: &'static str, text: &str| {
            Decimal::from_str(text.trim()).map_err(|source| ConfigError::NotADecimal {
                field,
                text: text.to_string(),
                source,
            })
        };
        let required = [
            d("tick_size", &self.tick_size)?,
            d("lot_size", &self.lot_size)?,
            d("initial_margin", &self.initial_margin)?,
            d("maintenance_margin", &self.maintenance_margin)?,
            d("max_order_qty", &self.max_order_qty)?,
            d("max_position_qty", &self.max_position_qty)?,
            d("price_band", &self.price_band)?,
        ];
        let given = [
            &self.maker_fee,
            &self.taker_fee,
            &self.liquidation_fee,
            &self.impact_notional,
            &self.funding_interest,
            &self.funding_clamp,
        ];
        let mut optional = [None; 6];
        for ((value, text), field) in optional.iter_mut().zip(given).zip(InstrumentSpec::OPTIONAL_FIELDS) {
            *value = text.as_deref().map(|t| d(field, t)).transpose()?;
        }
        let symbol = Symbol::try_new(&self.symbol).map_err(|e| ConfigError::Symbol { symbol: e.0 })?;
        let spec = InstrumentSpec::from_decimals(symbol, InstrumentSpec::decimals_with_defaults(required, optional));
        let instrument = Instrument::try_new(id, &spec).map_err(ConfigError::Spec)?;
        let oracle = d("oracle_price", &self.oracle_price)?;
        let price =
            instrument.price_from_decimal(oracle).map_err(|source| ConfigError::OraclePrice { oracle, source })?;
        if price.0 <= 0 {
            return Err(ConfigError::OracleNotPositive);
        }
        Ok((spec, price))
    }
}

/// The two instruments of a default node.
pub(super) fn default_instruments() -> Vec<InstrumentEntry> {
    let entry = |symbol: &str, tick: &str, lot: &str, max_order: &str, oracle: &str| InstrumentEntry {
        symbol: symbol.into(),
        tick_size: tick.into(),
        lot_size: lot.into(),
        initial_margin: "0.05".into(),
        maintenance_margin: "0.03".into(),
        max_order_qty: max_order.into(),
        max_position_qty: "100000".into(),
        price_band: "0.1".into(),
        maker_fee: Some("-0.0001".into()),
        taker_fee: Some("0.0005".into()),
        liquidation_fee: Some("0.01".into()),
        impact_notional: Some("10000".into()),
        funding_interest: Some("0.0000125".into()),
        funding_clamp: Some("0.02".into()),
        oracle_price: oracle.into(),
    };
    vec![entry("BTC-PERP", "0.5", "0.001", "100", "50000"), entry("ETH-PERP", "0.05", "0.01", "1000", "3000")]
}
