//! Views of a replay for a desk's tools: accounts, positions and the book at the point (or
//! sampled every so often), trades and liquidations as they happened; CSV with a header, or
//! JSON lines (docs/REPLAY.md, "Views and exports").
//!
//! ```text
//!  state views   accounts · positions · book     at the point, or with --every D at
//!                t0 + D, t0 + 2D, … (the state after every command sequenced at or before
//!                each boundary, as --until-time counts) and at the point
//!  event views   trades · liquidations            every one up to the point (so the
//!                replay starts from the first command, not a snapshot)
//! ```
//!
//! Amounts are decimal strings in the instrument's units (base for sizes, quote for prices,
//! USDC for money), exact: a desk's notebook gets what the engine holds, not floats.

use std::io::{self, Write};
use std::str::FromStr;

use l2x_engine::StateMachine;
use l2x_types::{AccountId, Amount, Decimal, Event, Holder, Instrument, InstrumentId, Sequenced, Side, format_units};

use crate::Observer;

/// What to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Collateral, equity and requirements per account.
    Accounts,
    /// Open positions with entry notional, mark and unrealised PnL.
    Positions,
    /// Resting quantity per price level.
    Book,
    /// Every trade.
    Trades,
    /// Every liquidation fill, insurance takeover, ADL close and incomplete liquidation.
    Liquidations,
}

impl View {
    /// Every view, in the order `l2x replay --dump` lists them.
    pub const ALL: [View; 5] = [View::Accounts, View::Positions, View::Book, View::Trades, View::Liquidations];

    /// The view's name, as `--dump` takes it: `accounts`, `positions`, `book`, `trades`,
    /// `liquidations`.
    pub fn name(self) -> &'static str {
        match self {
            View::Accounts => "accounts",
            View::Positions => "positions",
            View::Book => "book",
            View::Trades => "trades",
            View::Liquidations => "liquidations",
        }
    }

    /// Whether the view is of events (it needs every command from the first).
    pub fn of_events(self) -> bool {
        matches!(self, View::Trades | View::Liquidations)
    }

    fn header(self) -> &'static [&'static str] {
        match self {
            View::Accounts => &[
                "seq",
                "ts",
                "account",
                "collateral",
                "equity",
                "initial_margin",
                "maintenance_margin",
                "below_maintenance",
            ],
            View::Positions => &["seq", "ts", "account", "symbol", "size", "entry_notional", "mark", "unrealised_pnl"],
            View::Book => &["seq", "ts", "symbol", "side", "price", "qty", "orders"],
            View::Trades => &[
                "seq",
                "ts",
                "trade_id",
                "symbol",
                "price",
                "qty",
                "maker_account",
                "taker_account",
                "maker_fee",
                "taker_fee",
            ],
            View::Liquidations => {
                &["seq", "ts", "kind", "account", "symbol", "side", "qty", "price", "fee", "counterparty"]
            }
        }
    }
}

/// How rows are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated, a header line first.
    Csv,
    /// One JSON object per line, keyed by the header's names (all values strings, exact).
    Json,
}

/// A name that is not a view's or a format's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not one of {allowed}")]
pub struct UnknownName {
    /// The name given.
    pub name: String,
    /// The names allowed.
    pub allowed: &'static str,
}

impl FromStr for View {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<View, UnknownName> {
        View::ALL.into_iter().find(|v| v.name() == name).ok_or_else(|| UnknownName {
            name: name.into(),
            allowed: "accounts, positions, book, trades, liquidations",
        })
    }
}

impl FromStr for Format {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Format, UnknownName> {
        match name {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            _ => Err(UnknownName { name: name.into(), allowed: "csv, json" }),
        }
    }
}

/// Rows of one view to a writer.
#[derive(Debug)]
pub struct Table<W: Write> {
    view: View,
    format: Format,
    out: W,
    account: Option<AccountId>,
    /// The first write error; later rows are skipped.
    error: Option<io::Error>,
}

/// Which of an instrument's units a value is counted in.
type Unit = fn(&Instrument) -> Decimal;

fn usdc(micro: i128) -> String {
    Amount::format_micro(micro)
}

fn side(s: Side) -> &'static str {
    if s == Side::Buy { "buy" } else { "sell" }
}

impl<W: Write> Table<W> {
    /// A table of `view`, only of `account` if given; writes the CSV header at once.
    pub fn new(view: View, format: Format, account: Option<AccountId>, out: W) -> Table<W> {
        let mut t = Table { view, format, out, account, error: None };
        if format == Format::Csv {
            let line = view.header().join(",");
            t.line(&line);
        }
        t
    }

    fn line(&mut self, text: &str) {
        if self.error.is_none()
            && let Err(e) = writeln!(self.out, "{text}")
        {
            self.error = Some(e);
        }
    }

    fn row(&mut self, values: &[String]) {
        let text = match self.format {
            Format::Csv => values.iter().map(|v| csv_field(v)).collect::<Vec<_>>().join(","),
            Format::Json => {
                let mut o = String::from("{");
                for (i, (k, v)) in self.view.header().iter().zip(values).enumerate() {
                    if i > 0 {
                        o.push(',');
                    }
                    o.push_str(&format!("{k:?}:{}", json_string(v)));
                }
                o.push('}');
                o
            }
        };
        self.line(&text);
    }

    fn wanted(&self, account: AccountId) -> bool {
        self.account.is_none_or(|a| a == account)
    }

    /// The rows of a state view for `state` at (`seq`, `ts`).
    pub fn state(&mut self, state: &StateMachine, seq: u64, ts: u64) {
        let (seq, ts) = (seq.to_string(), ts.to_string());
        let ledger = state.ledger();
        match self.view {
            View::Accounts => {
                for slot in ledger.slots_by_id() {
                    let Holder::Account(id) = ledger.account(slot).holder else { continue };
                    if !self.wanted(id) {
                        continue;
                    }
                    let a = ledger.account(slot);
                    let h = ledger.health(slot);
                    self.row(&[
                        seq.clone(),
                        ts.clone(),
                        id.0.to_string(),
                        usdc(i128::from(a.collateral)),
                        usdc(h.equity),
                        usdc(h.initial),
                        usdc(h.maintenance),
                        h.below_maintenance().to_string(),
                    ]);
                }
            }
            View::Positions => {
                for slot in ledger.slots_by_id() {
                    let Holder::Account(id) = ledger.account(slot).holder else { continue };
                    if !self.wanted(id) {
                        continue;
                    }
                    for p in ledger.account(slot).positions.iter().filter(|p| p.size != 0) {
                        let Some(inst) = state.instrument(p.instrument) else { continue };
                        let mark = state.mark(p.instrument);
                        let unrealised = mark.map(|m| {
                            i128::from(p.size) * i128::from(m.0) * i128::from(inst.quote_per_tick_lot) - p.cost
                        });
                        self.row(&[
                            seq.clone(),
                            ts.clone(),
                            id.0.to_string(),
                            inst.symbol.as_str().to_string(),
                            format_units(i128::from(p.size), inst.lot_size),
                            usdc(p.cost),
                            mark.map(|m| format_units(i128::from(m.0), inst.tick_size)).unwrap_or_default(),
                            unrealised.map(usdc).unwrap_or_default(),
                        ]);
                    }
                }
            }
            View::Book => {
                // Levels: (instrument, side, price) → (qty, orders); bids high to low.
                let mut levels: std::collections::BTreeMap<(u32, u8, i64), (i64, u32)> = Default::default();
                for o in state.resting_orders() {
                    let key = match o.side {
                        Side::Buy => (o.instrument.0, 0, -o.price.0),
                        Side::Sell => (o.instrument.0, 1, o.price.0),
                    };
                    let level = levels.entry(key).or_default();
                    level.0 += o.leaves.0;
                    level.1 += 1;
                }
                for ((instrument, s, key), (qty, orders)) in levels {
                    let Some(inst) = state.instrument(InstrumentId(instrument)) else { continue };
                    let price = if s == 0 { -key } else { key };
                    self.row(&[
                        seq.clone(),
                        ts.clone(),
                        inst.symbol.as_str().to_string(),
                        (if s == 0 { "buy" } else { "sell" }).to_string(),
                        format_units(i128::from(price), inst.tick_size),
                        format_units(i128::from(qty), inst.lot_size),
                        orders.to_string(),
                    ]);
                }
            }
            View::Trades | View::Liquidations => {}
        }
    }

    /// The rows of an event view for one command's events.
    fn events(&mut self, cmd: &Sequenced, events: &[Event], state: &StateMachine) {
        let (seq, ts) = (cmd.seq.0.to_string(), cmd.ts.0.to_string());
        let symbol = |i: InstrumentId| state.instrument(i).map(|x| x.symbol.as_str().to_string()).unwrap_or_default();
        let units = |i: InstrumentId, f: fn(&Instrument) -> Decimal, v: i64| {
            state.instrument(i).map(|x| format_units(i128::from(v), f(x))).unwrap_or_default()
        };
        let lot: Unit = |x| x.lot_size;
        let tick: Unit = |x| x.tick_size;
        for ev in events {
            match (self.view, ev) {
                (View::Trades, Event::Trade(t)) if self.wanted(t.maker_account) || self.wanted(t.taker_account) => {
                    self.row(&[
                        seq.clone(),
                        ts.clone(),
                        t.trade_id.0.to_string(),
                        symbol(t.instrument),
                        units(t.instrument, tick, t.price.0),
                        units(t.instrument, lot, t.qty.0),
                        t.maker_account.0.to_string(),
                        t.taker_account.0.to_string(),
                        usdc(i128::from(t.maker_fee)),
                        usdc(i128::from(t.taker_fee)),
                    ]);
                }
                (View::Liquidations, _) => {
                    // (kind, account, counterparty, instrument, side, qty, price, fee)
                    let step = match ev {
                        Event::Liquidation { account, instrument, side: s, qty, price, fee } => {
                            Some(("liquidation", *account, None, *instrument, Some(*s), *qty, Some(*price), Some(*fee)))
                        }
                        Event::Takeover { account, instrument, side: s, qty, price } => {
                            Some(("takeover", *account, None, *instrument, Some(*s), *qty, Some(*price), None))
                        }
                        Event::Adl { account, counterparty, instrument, side: s, qty, price } => Some((
                            "adl",
                            *account,
                            Some(*counterparty),
                            *instrument,
                            Some(*s),
                            *qty,
                            Some(*price),
                            None,
                        )),
                        Event::LiquidationIncomplete { account, instrument, qty } => {
                            Some(("incomplete", *account, None, *instrument, None, *qty, None, None))
                        }
                        _ => None,
                    };
                    let Some((kind, account, counterparty, instrument, s, qty, price, fee)) = step else { continue };
                    if !(self.wanted(account) || counterparty.is_some_and(|c| self.wanted(c))) {
                        continue;
                    }
                    let other = match (kind, counterparty) {
                        ("takeover", _) => "insurance".to_string(),
                        (_, Some(c)) => c.0.to_string(),
                        _ => String::new(),
                    };
                    self.row(&[
                        seq.clone(),
                        ts.clone(),
                        kind.into(),
                        account.0.to_string(),
                        symbol(instrument),
                        s.map(side).unwrap_or_default().into(),
                        units(instrument, lot, qty.0),
                        price.map(|p| units(instrument, tick, p.0)).unwrap_or_default(),
                        fee.map(usdc).unwrap_or_default(),
                        other,
                    ]);
                }
                _ => {}
            }
        }
    }

    /// The first write error, if any; flushes.
    ///
    /// # Errors
    /// The writer's.
    pub fn finish(mut self) -> io::Result<()> {
        match self.error.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        }
    }
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.to_string() }
}

fn json_string(v: &str) -> String {
    let mut o = String::with_capacity(v.len() + 2);
    o.push('"');
    for c in v.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A view as an [`Observer`]: event views write each command's events; state views with a
/// period write a sample at each boundary passed.
#[derive(Debug)]
pub struct Viewer<W: Write> {
    /// The table written to.
    pub table: Table<W>,
    every: Option<u64>,
    next: Option<u64>,
    /// The first command's time (the series' origin).
    t0: Option<u64>,
    last: (u64, u64),
    /// Samples written at boundaries so far.
    samples: u64,
}

impl<W: Write> Viewer<W> {
    /// The most samples a time series writes: a period too short for its span is an error
    /// (from [`Table::finish`]), not an endless output.
    pub const MAX_SAMPLES: u64 = 10_000_000;

    /// A viewer writing to `table`, sampling state views every `every` ns of sequenced time.
    pub fn new(table: Table<W>, every: Option<u64>) -> Viewer<W> {
        Viewer { table, every: every.filter(|&e| e > 0), next: None, t0: None, last: (0, 0), samples: 0 }
    }

    /// Writes the sample at `boundary`, unless the series is at its limit (then the table
    /// fails with an error saying so). `false` when no more samples may be written.
    fn sample(&mut self, state: &StateMachine, seq: u64, boundary: u64) -> bool {
        if self.samples >= Self::MAX_SAMPLES {
            if self.table.error.is_none() {
                self.table.error = Some(io::Error::other(format!(
                    "--every: more than {} samples; choose a longer period (or an earlier point)",
                    Self::MAX_SAMPLES
                )));
            }
            return false;
        }
        self.samples += 1;
        self.table.state(state, seq, boundary);
        true
    }

    /// The rows at the point the replay reached (state views).
    ///
    /// `seq` is the last command replayed (the replay's, not only those this viewer saw: a
    /// snapshot may have covered them all); with a period, the boundaries between the last
    /// command and a time point asked for (`until`) are written too, then the point itself.
    pub fn at_end(&mut self, state: &StateMachine, seq: u64, until: crate::Until) {
        if self.table.view.of_events() {
            return;
        }
        if let (Some(every), Some(mut boundary), Some(t0)) = (self.every, self.next, self.t0) {
            let end = match until {
                crate::Until::Time(t) => t.0,
                crate::Until::Elapsed(d) => t0.saturating_add(d),
                crate::Until::End | crate::Until::Seq(_) => state.now().0,
            };
            while boundary <= end && self.sample(state, seq, boundary) {
                // The last boundary a u64 holds ends the series (saturating would repeat it).
                let Some(after) = boundary.checked_add(every) else { break };
                boundary = after;
            }
            self.next = Some(boundary);
        }
        self.table.state(state, seq, state.now().0);
    }
}

impl<W: Write> Observer for Viewer<W> {
    fn before(&mut self, cmd: &Sequenced, state: &StateMachine) {
        let Some(every) = self.every else { return };
        self.t0.get_or_insert(cmd.ts.0);
        let next = *self.next.get_or_insert(cmd.ts.0.saturating_add(every));
        if cmd.ts.0 <= next || self.table.view.of_events() {
            return;
        }
        // Every boundary this command is past: the state before it held there (commands
        // at a boundary's very time count, as with --until-time).
        let mut boundary = next;
        while boundary < cmd.ts.0 && self.sample(state, self.last.0, boundary) {
            boundary = boundary.saturating_add(every);
        }
        self.next = Some(boundary);
    }

    fn command(&mut self, cmd: &Sequenced, events: &[Event], state: &StateMachine) {
        self.last = (cmd.seq.0, cmd.ts.0);
        if self.table.view.of_events() {
            self.table.events(cmd, events, state);
        }
    }
}

#[cfg(test)]
mod tests {
    use l2x_types::{Command, Seq, Timestamp};

    use super::*;

    /// A positions series (header only: an empty exchange has no rows) through a time point,
    /// after one command at `t0`.
    fn series(t0: u64, every: u64, until: u64) -> (u64, io::Result<()>) {
        let state = StateMachine::new();
        let mut viewer = Viewer::new(Table::new(View::Positions, Format::Csv, None, Vec::new()), Some(every));
        let tick = Sequenced { seq: Seq(1), ts: Timestamp(t0), cmd: Command::Tick };
        viewer.before(&tick, &state);
        viewer.command(&tick, &[], &state);
        viewer.at_end(&state, 1, crate::Until::Time(Timestamp(until)));
        (viewer.samples, viewer.table.finish())
    }

    /// Regression: a period whose boundaries reach the end of u64 time repeated the last
    /// boundary for ever (`--every 1s --until-time 18446744073709551615` never ended).
    #[test]
    fn every_stops_at_the_last_representable_boundary() {
        let (samples, result) = series(0, u64::MAX / 2, u64::MAX);
        assert!(result.is_ok());
        // t0 + every and t0 + 2·every fit; the next would not.
        assert_eq!(samples, 2);
    }

    /// A period far too short for its span is an error after MAX_SAMPLES, not endless output.
    #[test]
    fn every_refuses_more_than_max_samples() {
        let (samples, result) = series(0, 1, u64::MAX);
        assert_eq!(samples, Viewer::<Vec<u8>>::MAX_SAMPLES);
        let e = result.unwrap_err().to_string();
        assert!(e.contains("more than 10000000 samples"), "{e}");
    }
}
