//! What-if: the journal's inputs replayed under other risk parameters, side by side with the
//! original run, and what changed (docs/REPLAY.md, "What-if").
//!
//! ```text
//!  journal command ──▶ original StateMachine (the journal's parameters)
//!                 └──▶ patched: a listing gets the file's margin fractions, fees, funding
//!                      clamp ──▶ what-if StateMachine (its Ledger with the file's
//!                      liquidation parameters; the file's extra insurance deposited first)
//!  after each command, for each run: liquidations (fills, takeovers, ADL closes,
//!  incompletes), the insurance fund, the equity of the accounts the command could have
//!  moved (those in its events; everyone holding a position after an oracle or funding tick),
//!  accounts that went bankrupt (equity below zero, or a takeover or ADL at their bankruptcy
//!  price), orders rejected
//! ```
//!
//! The inputs are the same commands: orders the new parameters would refuse are refused in
//! the what-if run (and whatever followed from them differs), liquidations follow the new
//! rules. With the journal's own parameters the two runs are the same run, hash for hash.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use l2x_engine::StateMachine;
use l2x_risk::{Ledger, LiquidationParams, MarketParams};
use l2x_types::{
    AccountId, Amount, Command, Decimal, Event, Fraction, Holder, Instrument, InstrumentId, InstrumentSpec, Sequenced,
};

use crate::{Observer, Options, ReplayError, Until};

/// A risk-parameter file (TOML; unknown keys are refused). Every value is a decimal string.
///
/// ```toml
/// [liquidation]
/// bankruptcy_adjustment = "1"     # dYdX v4's BA
/// spread_to_maintenance = "1.5"   # SMMR
/// adl = false
///
/// [insurance]
/// extra_usdc = "250000"           # deposited to the fund before the first command
///
/// [instruments."BTC-PERP"]        # or "*" for every instrument
/// initial_margin = "0.1"
/// maintenance_margin = "0.06"
/// liquidation_fee = "0.02"
/// funding_clamp = "0.01"
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskParams {
    /// Exchange-wide liquidation parameters.
    #[serde(default)]
    pub liquidation: LiquidationOverride,
    /// The insurance fund.
    #[serde(default)]
    pub insurance: InsuranceOverride,
    /// Per instrument, by symbol (`"*"`: all).
    #[serde(default)]
    pub instruments: BTreeMap<String, InstrumentOverride>,
}

/// `[liquidation]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiquidationOverride {
    /// BA: how fast the liquidation spread opens towards bankruptcy.
    pub bankruptcy_adjustment: Option<String>,
    /// SMMR: the largest liquidation spread, in maintenance fractions.
    pub spread_to_maintenance: Option<String>,
    /// Auto-deleveraging on or off.
    pub adl: Option<bool>,
}

/// `[insurance]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsuranceOverride {
    /// USDC added to the fund before the first command.
    pub extra_usdc: Option<String>,
}

/// `[instruments.SYMBOL]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentOverride {
    /// Initial margin fraction.
    pub initial_margin: Option<String>,
    /// Maintenance margin fraction.
    pub maintenance_margin: Option<String>,
    /// Liquidation fee fraction.
    pub liquidation_fee: Option<String>,
    /// Largest funding rate per tick.
    pub funding_clamp: Option<String>,
    /// Maker fee fraction.
    pub maker_fee: Option<String>,
    /// Taker fee fraction.
    pub taker_fee: Option<String>,
    /// Largest position, base units.
    pub max_position_qty: Option<String>,
}

/// What is wrong with a risk-parameter file, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// Not TOML of the expected shape (unknown keys included).
    #[error("{file}: {detail}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message (it names the key and the line).
        detail: String,
    },
    /// A value that is not a decimal, or that the engine's rules refuse.
    #[error("{file}: {key}: {detail}")]
    Value {
        /// The file.
        file: String,
        /// The key, e.g. `instruments."BTC-PERP".maintenance_margin`.
        key: String,
        /// Why.
        detail: String,
    },
}

impl ParamsError {
    fn value(file: &str, key: impl Into<String>, detail: impl std::fmt::Display) -> ParamsError {
        ParamsError::Value { file: file.into(), key: key.into(), detail: detail.to_string() }
    }
}

fn decimal(file: &str, key: &str, text: &str) -> Result<Decimal, ParamsError> {
    text.trim().parse().map_err(|_| ParamsError::value(file, key, format!("{text:?} is not a decimal number")))
}

impl RiskParams {
    /// Parses a risk-parameter file's text (`file` names it in errors) and checks the values
    /// that stand alone (the instruments' are checked against each listing).
    ///
    /// # Errors
    /// [`ParamsError`] naming the key.
    pub fn parse(file: &str, text: &str) -> Result<RiskParams, ParamsError> {
        let params: RiskParams =
            toml::from_str(text).map_err(|e| ParamsError::Parse { file: file.into(), detail: e.to_string() })?;
        params.liquidation_params(file, LiquidationParams::default())?;
        params.extra_insurance(file)?;
        for (symbol, o) in &params.instruments {
            let key = |k: &str| format!("instruments.{symbol:?}.{k}");
            for (k, v) in o.fields() {
                if let Some(v) = v {
                    decimal(file, &key(k), v)?;
                }
            }
        }
        Ok(params)
    }

    /// The liquidation parameters: `base` with the file's overrides.
    ///
    /// # Errors
    /// [`ParamsError::Value`].
    pub fn liquidation_params(&self, file: &str, base: LiquidationParams) -> Result<LiquidationParams, ParamsError> {
        let fraction = |k: &str, v: &Option<String>, d: Fraction| -> Result<Fraction, ParamsError> {
            let Some(v) = v else { return Ok(d) };
            let key = format!("liquidation.{k}");
            let f = Fraction::from_decimal(decimal(file, &key, v)?).map_err(|e| ParamsError::value(file, &key, e))?;
            if f.0 <= 0 {
                return Err(ParamsError::value(file, key, "must be above zero"));
            }
            Ok(f)
        };
        let l = &self.liquidation;
        Ok(LiquidationParams {
            bankruptcy_adjustment: fraction(
                "bankruptcy_adjustment",
                &l.bankruptcy_adjustment,
                base.bankruptcy_adjustment,
            )?,
            spread_to_maintenance: fraction(
                "spread_to_maintenance",
                &l.spread_to_maintenance,
                base.spread_to_maintenance,
            )?,
            adl: l.adl.unwrap_or(base.adl),
        })
    }

    /// The extra insurance deposit, micro-USDC (0 if none).
    ///
    /// # Errors
    /// [`ParamsError::Value`].
    pub fn extra_insurance(&self, file: &str) -> Result<i64, ParamsError> {
        let Some(v) = &self.insurance.extra_usdc else { return Ok(0) };
        let key = "insurance.extra_usdc";
        let amount = Amount::from_decimal(decimal(file, key, v)?).map_err(|e| ParamsError::value(file, key, e))?;
        if amount.0 < 0 {
            return Err(ParamsError::value(file, key, "must not be negative"));
        }
        Ok(amount.0)
    }

    /// A listing with the file's overrides for its symbol (then `"*"`), checked by the
    /// engine's listing rules.
    ///
    /// # Errors
    /// [`ParamsError::Value`] naming the key the rules refuse.
    pub fn patch(&self, file: &str, spec: &InstrumentSpec) -> Result<InstrumentSpec, ParamsError> {
        let mut patched = *spec;
        for symbol in ["*", spec.symbol.as_str()] {
            let Some(o) = self.instruments.get(symbol) else { continue };
            let key = |k: &str| format!("instruments.{symbol:?}.{k}");
            let set = |field: &mut Decimal, k: &str, v: &Option<String>| -> Result<(), ParamsError> {
                if let Some(v) = v {
                    *field = decimal(file, &key(k), v)?;
                }
                Ok(())
            };
            set(&mut patched.initial_margin, "initial_margin", &o.initial_margin)?;
            set(&mut patched.maintenance_margin, "maintenance_margin", &o.maintenance_margin)?;
            set(&mut patched.liquidation_fee, "liquidation_fee", &o.liquidation_fee)?;
            set(&mut patched.funding_clamp, "funding_clamp", &o.funding_clamp)?;
            set(&mut patched.maker_fee, "maker_fee", &o.maker_fee)?;
            set(&mut patched.taker_fee, "taker_fee", &o.taker_fee)?;
            set(&mut patched.max_position_qty, "max_position_qty", &o.max_position_qty)?;
        }
        let which = || format!("instruments.{:?}", spec.symbol.as_str());
        let inst = Instrument::try_new(InstrumentId(0), &patched).map_err(|e| ParamsError::value(file, which(), e))?;
        MarketParams::from_instrument(&inst).validate().map_err(|e| ParamsError::value(file, which(), e))?;
        Ok(patched)
    }
}

impl InstrumentOverride {
    fn fields(&self) -> [(&'static str, &Option<String>); 7] {
        [
            ("initial_margin", &self.initial_margin),
            ("maintenance_margin", &self.maintenance_margin),
            ("liquidation_fee", &self.liquidation_fee),
            ("funding_clamp", &self.funding_clamp),
            ("maker_fee", &self.maker_fee),
            ("taker_fee", &self.taker_fee),
            ("max_position_qty", &self.max_position_qty),
        ]
    }
}

/// A liquidation step, as either run saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Liquidated {
    /// The command.
    pub seq: u64,
    /// The account liquidated.
    pub account: AccountId,
    /// The instrument.
    pub instrument: InstrumentId,
    /// `liquidation` (a fill on the book), `takeover`, `adl`, `incomplete`.
    pub kind: &'static str,
    /// Quantity, lots.
    pub qty: i64,
    /// Price, ticks (0 for `incomplete`).
    pub price: i64,
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Every liquidation step, in order.
    pub liquidations: Vec<Liquidated>,
    /// Lowest equity seen per account, micro-USDC, with the command.
    pub worst_equity: BTreeMap<AccountId, (i128, u64)>,
    /// Accounts that went bankrupt: equity below zero, or taken over / deleveraged at their
    /// bankruptcy price.
    pub bankrupt: BTreeSet<AccountId>,
    /// The insurance fund's equity after each command that changed it: (seq, micro-USDC).
    pub insurance: Vec<(u64, i128)>,
    /// Orders (new and amends) rejected.
    pub rejected_orders: u64,
}

impl RunStats {
    fn record(&mut self, cmd: &Sequenced, events: &[Event], state: &StateMachine) {
        let ledger = state.ledger();
        let mut moved: BTreeSet<AccountId> = BTreeSet::new();
        let mut insurance_moved = false;
        for ev in events {
            let mut liq = |account: AccountId, instrument: InstrumentId, kind, qty: i64, price: i64| {
                self.liquidations.push(Liquidated { seq: cmd.seq.0, account, instrument, kind, qty, price });
            };
            match ev {
                Event::Trade(t) => {
                    moved.insert(t.maker_account);
                    moved.insert(t.taker_account);
                }
                Event::Position { holder: Holder::Account(a), .. } => {
                    moved.insert(*a);
                }
                Event::Balance { holder: Holder::Account(a), .. } => {
                    moved.insert(*a);
                }
                Event::Balance { holder: Holder::Insurance, .. } | Event::Insurance { .. } => insurance_moved = true,
                Event::Liquidation { account, instrument, qty, price, .. } => {
                    liq(*account, *instrument, "liquidation", qty.0, price.0);
                    moved.insert(*account);
                    insurance_moved = true;
                }
                Event::Takeover { account, instrument, qty, price, .. } => {
                    liq(*account, *instrument, "takeover", qty.0, price.0);
                    self.bankrupt.insert(*account);
                    insurance_moved = true;
                }
                Event::Adl { account, counterparty, instrument, qty, price, .. } => {
                    liq(*account, *instrument, "adl", qty.0, price.0);
                    self.bankrupt.insert(*account);
                    moved.insert(*counterparty);
                }
                Event::LiquidationIncomplete { account, instrument, qty } => {
                    liq(*account, *instrument, "incomplete", qty.0, 0);
                    self.bankrupt.insert(*account);
                }
                Event::Rejected { kind: l2x_types::CommandKind::New | l2x_types::CommandKind::Amend, .. } => {
                    self.rejected_orders += 1;
                }
                _ => {}
            }
        }
        // A price or funding move changes everyone's equity who holds a position.
        // Otherwise only the accounts in the command's events: no walk over every account
        // for each command.
        let everyone = matches!(cmd.cmd, Command::Oracle { .. } | Command::Funding { .. });
        let holders: Vec<(AccountId, l2x_risk::AccountSlot)> = if everyone {
            let all = ledger.slots_by_id().into_iter();
            let trading = all.filter_map(|slot| match ledger.account(slot).holder {
                Holder::Account(id) => Some((id, slot)),
                _ => None,
            });
            trading
                .filter(|&(id, slot)| moved.contains(&id) || ledger.account(slot).positions.iter().any(|p| p.size != 0))
                .collect()
        } else {
            moved.iter().filter_map(|&id| ledger.slot(id).map(|slot| (id, slot))).collect()
        };
        for (id, slot) in holders {
            let equity = ledger.health(slot).equity;
            let worst = self.worst_equity.entry(id).or_insert((equity, cmd.seq.0));
            if equity < worst.0 {
                *worst = (equity, cmd.seq.0);
            }
            if equity < 0 {
                self.bankrupt.insert(id);
            }
        }
        if insurance_moved || everyone {
            let fund = ledger.health(Ledger::INSURANCE).equity;
            if self.insurance.last().is_none_or(|&(_, e)| e != fund) {
                self.insurance.push((cmd.seq.0, fund));
            }
        }
    }
}

/// Both runs, side by side.
#[derive(Debug)]
pub struct Comparison {
    /// The journal's own run.
    pub original: RunStats,
    /// The what-if run.
    pub what_if: RunStats,
    /// The last command replayed.
    pub last_seq: u64,
    /// State hashes at the end: (original, what-if).
    pub hashes: (String, String),
    /// The two states at the end.
    pub states: (StateMachine, StateMachine),
}

impl Comparison {
    /// Liquidated (account, instrument) pairs of one run but not the other: (appear in the
    /// what-if, disappear from it), each with its first step.
    pub fn changed_liquidations(&self) -> (Vec<&Liquidated>, Vec<&Liquidated>) {
        let (o, w) = (firsts(&self.original), firsts(&self.what_if));
        let appear = w.iter().filter(|(k, _)| !o.contains_key(k)).map(|(_, l)| *l).collect();
        let disappear = o.iter().filter(|(k, _)| !w.contains_key(k)).map(|(_, l)| *l).collect();
        (appear, disappear)
    }
}

/// Each liquidated (account, instrument) pair's first step.
fn firsts(r: &RunStats) -> BTreeMap<(AccountId, InstrumentId), &Liquidated> {
    let mut m: BTreeMap<(AccountId, InstrumentId), &Liquidated> = BTreeMap::new();
    for l in &r.liquidations {
        m.entry((l.account, l.instrument)).or_insert(l);
    }
    m
}

struct WhatIf<'a> {
    file: &'a str,
    params: &'a RiskParams,
    alt: StateMachine,
    alt_events: Vec<Event>,
    extra: i64,
    started: bool,
    original: RunStats,
    what_if: RunStats,
    error: Option<ParamsError>,
}

impl Observer for WhatIf<'_> {
    fn before(&mut self, cmd: &Sequenced, _: &StateMachine) {
        if !self.started {
            self.started = true;
            if self.extra > 0 {
                let deposit = Command::Deposit { to: Holder::Insurance, amount: Amount(self.extra) };
                self.alt.apply(&Sequenced { seq: cmd.seq, ts: cmd.ts, cmd: deposit }, &mut self.alt_events);
                self.alt_events.clear();
            }
        }
    }

    fn command(&mut self, cmd: &Sequenced, events: &[Event], state: &StateMachine) {
        self.original.record(cmd, events, state);
        let patched;
        // Only listings the original run accepted are patched: a refused one stays refused
        // in both runs, so instrument ids (given in listing order) stay the same.
        let listed = events.iter().any(|e| matches!(e, Event::InstrumentListed { .. }));
        let alt_cmd = match &cmd.cmd {
            Command::ListInstrument(spec) if listed => match self.params.patch(self.file, spec) {
                Ok(p) => {
                    patched = Sequenced { seq: cmd.seq, ts: cmd.ts, cmd: Command::ListInstrument(Box::new(p)) };
                    &patched
                }
                Err(e) => {
                    self.error.get_or_insert(e);
                    cmd
                }
            },
            _ => cmd,
        };
        self.alt_events.clear();
        self.alt.apply(alt_cmd, &mut self.alt_events);
        self.what_if.record(cmd, &self.alt_events, &self.alt);
    }
}

/// Why a what-if could not run.
#[derive(Debug, thiserror::Error)]
pub enum WhatIfError {
    /// The replay.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The parameters.
    #[error(transparent)]
    Params(#[from] ParamsError),
}

/// Replays the journal in `dir` twice at once — as it was, and under `params` (read from
/// `file`) — up to `until`.
///
/// # Errors
/// [`WhatIfError`]: the journal's, or a parameter the engine's rules refuse (named), or a
/// symbol in the file that the journal never lists.
pub fn run(
    dir: &Path,
    file: &str,
    params: &RiskParams,
    until: Until,
    progress: bool,
) -> Result<Comparison, WhatIfError> {
    let base = Ledger::default();
    let liquidation = params.liquidation_params(file, base.liquidation_params())?;
    let mut w = WhatIf {
        file,
        params,
        alt: StateMachine::with_ledger(Ledger::new(liquidation)),
        alt_events: Vec::new(),
        extra: params.extra_insurance(file)?,
        started: false,
        original: RunStats::default(),
        what_if: RunStats::default(),
        error: None,
    };
    let outcome = crate::replay(dir, &base, Options { until, from_start: true, progress }, &mut w)?;
    if let Some(e) = w.error {
        return Err(e.into());
    }
    for symbol in params.instruments.keys().filter(|s| *s != "*") {
        if outcome.state.instrument_by_symbol(symbol).is_none() {
            let key = format!("instruments.{symbol:?}");
            return Err(ParamsError::value(file, key, "the journal lists no such instrument").into());
        }
    }
    let hashes = (outcome.state.canonical().hash().to_string(), w.alt.canonical().hash().to_string());
    Ok(Comparison {
        original: w.original,
        what_if: w.what_if,
        last_seq: outcome.last_seq,
        hashes,
        states: (outcome.state, w.alt),
    })
}
