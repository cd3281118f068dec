//! What the gateway measures about trading, for the node's Prometheus endpoint, and the text
//! exposition format it is served in.
//!
//! The gateway thread sees every command's events on their way to the sessions, so it counts
//! there — never on the sequencer: accepted orders, rejects by reason, fills, liquidations,
//! open interest, and the order-to-ack latency (from the request read off its socket to its
//! first report queued for the socket). Every value is a relaxed atomic the gateway thread
//! alone writes; a scrape reads them without stopping anything, so a scrape is not a
//! consistent cut (each value is right on its own).
//!
//! Open interest is rebuilt with the report streams when the server starts (it is a
//! function of the journal); the counters count from the process's start, as Prometheus
//! counters do.
//!
//! [`Exposition`] writes the text format (version 0.0.4): `# HELP`, `# TYPE`, then samples;
//! histograms as cumulative `_bucket{le=…}` lines, `_sum` and `_count`; seconds printed from
//! integer nanoseconds.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use l2x_types::{AccountId, CommandKind, DetMap, Event, Holder, InstrumentId, RejectReason};

/// Instruments whose open interest is tracked (ids past this are not shown).
pub const MAX_INSTRUMENTS: usize = 64;

/// Upper bounds of the latency histogram's buckets, ns (then +Inf).
pub const LATENCY_BUCKETS_NS: [u64; 14] = [
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    1_000_000_000,
];

/// A latency histogram with fixed buckets, lock-free: one writer, any readers.
#[derive(Debug, Default)]
pub struct Latency {
    /// Per bucket (not cumulative), the last one +Inf.
    buckets: [AtomicU64; LATENCY_BUCKETS_NS.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Latency {
    /// Records one latency.
    pub fn record(&self, ns: u64) {
        let i = LATENCY_BUCKETS_NS.iter().position(|&le| ns <= le).unwrap_or(LATENCY_BUCKETS_NS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket bound (the last is +Inf), the sum in ns, and the count.
    pub fn read(&self) -> (Vec<u64>, u64, u64) {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        (cumulative, self.sum_ns.load(Ordering::Relaxed), self.count.load(Ordering::Relaxed))
    }

    /// The smallest bucket bound (ns) at or under which a fraction `q` (in parts per
    /// thousand) of the samples fall: a bucket-resolution quantile. `None` with no samples
    /// or past the last finite bound.
    pub fn quantile_bound_ns(&self, per_mille: u64) -> Option<u64> {
        let (cumulative, _, count) = self.read();
        if count == 0 {
            return None;
        }
        let want = count.saturating_mul(per_mille).div_ceil(1_000).max(1);
        cumulative.iter().position(|&c| c >= want).and_then(|i| LATENCY_BUCKETS_NS.get(i).copied())
    }
}

/// Trading counters the gateway keeps (see the module documentation).
#[derive(Debug)]
pub struct Trading {
    /// Orders accepted (new orders from sessions that entered the book or traded).
    pub orders_accepted: AtomicU64,
    /// Rejected commands, by reason (the index of the reason in [`RejectReason::ALL`]).
    rejects: Vec<AtomicU64>,
    /// Trades (each match between a maker and a taker, liquidation fills included).
    pub fills: AtomicU64,
    /// Accounts liquidated — through the book, a takeover or auto-deleveraging — counted
    /// once per command that liquidated them.
    pub liquidations: AtomicU64,
    /// Fills of liquidation orders.
    pub liquidation_fills: AtomicU64,
    /// Position takeovers by the insurance fund.
    pub takeovers: AtomicU64,
    /// Auto-deleveraging closes.
    pub adl: AtomicU64,
    /// Open interest per instrument id, lots (the sum of the long positions).
    open_interest: Vec<AtomicI64>,
    /// Order-to-ack latency.
    pub order_to_ack: Latency,
}

impl Default for Trading {
    fn default() -> Trading {
        Trading {
            orders_accepted: AtomicU64::new(0),
            rejects: RejectReason::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            fills: AtomicU64::new(0),
            liquidations: AtomicU64::new(0),
            liquidation_fills: AtomicU64::new(0),
            takeovers: AtomicU64::new(0),
            adl: AtomicU64::new(0),
            open_interest: (0..MAX_INSTRUMENTS).map(|_| AtomicI64::new(0)).collect(),
            order_to_ack: Latency::default(),
        }
    }
}

impl Trading {
    /// Rejects so far, for each reason that has any.
    pub fn rejects(&self) -> Vec<(RejectReason, u64)> {
        RejectReason::ALL
            .iter()
            .zip(&self.rejects)
            .map(|(&r, n)| (r, n.load(Ordering::Relaxed)))
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    /// Open interest of an instrument, lots.
    pub fn open_interest(&self, instrument: InstrumentId) -> i64 {
        self.open_interest.get(instrument.0 as usize).map_or(0, |a| a.load(Ordering::Relaxed))
    }

    /// Accounts liquidated so far.
    pub fn liquidations(&self) -> u64 {
        self.liquidations.load(Ordering::Relaxed)
    }
}

/// Positions by holder, to keep open interest: the gateway thread's own.
#[derive(Debug, Default)]
pub(crate) struct OpenInterest {
    sizes: DetMap<(Holder, InstrumentId), i64>,
}

impl OpenInterest {
    /// Applies one command's position events to the sizes and the published totals.
    pub(crate) fn on_events(&mut self, events: &[Event], trading: &Trading) {
        for ev in events {
            if let Event::Position { holder, instrument, size, .. } = *ev {
                let old = self.sizes.insert((holder, instrument), size.0).unwrap_or(0);
                let delta = size.0.max(0) - old.max(0);
                if delta != 0
                    && let Some(oi) = trading.open_interest.get(instrument.0 as usize)
                {
                    oi.fetch_add(delta, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Counts one command's events. `ack_ns`: the order-to-ack latency of a session's command
/// (`None` for commands no session sent), recorded when the command is a new order or an
/// amend. An account whose liquidation could not complete (`liquidation_incomplete`) is
/// not counted again on each later attempt.
pub(crate) fn count(trading: &Trading, events: &[Event], ack_ns: Option<u64>, liquidated: &mut Vec<AccountId>) {
    liquidated.clear();
    for ev in events {
        match ev {
            Event::Accepted { .. } if ack_ns.is_some() => {
                trading.orders_accepted.fetch_add(1, Ordering::Relaxed);
            }
            Event::Rejected { reason, .. } => {
                if let Some(i) = RejectReason::ALL.iter().position(|r| r == reason) {
                    trading.rejects[i].fetch_add(1, Ordering::Relaxed);
                }
            }
            Event::Trade(_) => {
                trading.fills.fetch_add(1, Ordering::Relaxed);
            }
            Event::Liquidation { account, .. } => {
                trading.liquidation_fills.fetch_add(1, Ordering::Relaxed);
                liquidated.push(*account);
            }
            Event::Takeover { account, .. } => {
                trading.takeovers.fetch_add(1, Ordering::Relaxed);
                liquidated.push(*account);
            }
            Event::Adl { account, .. } => {
                trading.adl.fetch_add(1, Ordering::Relaxed);
                liquidated.push(*account);
            }
            _ => {}
        }
    }
    if !liquidated.is_empty() {
        liquidated.sort_unstable();
        liquidated.dedup();
        trading.liquidations.fetch_add(liquidated.len() as u64, Ordering::Relaxed);
    }
    // An order's (or amend's) first answer: its acceptance, amendment or reject.
    let answers_an_order = |e: &Event| match e {
        Event::Accepted { .. } | Event::Amended { .. } => true,
        Event::Rejected { kind, .. } => matches!(kind, CommandKind::New | CommandKind::Amend),
        _ => false,
    };
    if let Some(ns) = ack_ns
        && events.first().is_some_and(answers_an_order)
    {
        trading.order_to_ack.record(ns);
    }
}

/// A Prometheus text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// Seconds from nanoseconds, exactly, without floats: `1500` → `0.0000015`.
pub fn seconds(ns: u64) -> String {
    let (whole, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl Exposition {
    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// A counter (a value given as text for fractional ones, e.g. from [`seconds`]).
    pub fn counter(&mut self, name: &str, help: &str, value: impl std::fmt::Display) {
        self.header(name, help, "counter");
        let _ = writeln!(self.out, "{name} {value}");
    }

    /// A gauge (a value given as text, e.g. from [`seconds`]).
    pub fn gauge(&mut self, name: &str, help: &str, value: impl std::fmt::Display) {
        self.header(name, help, "gauge");
        let _ = writeln!(self.out, "{name} {value}");
    }

    /// A metric with one label: (label value, value) per sample. Label values are escaped.
    pub fn labelled(
        &mut self,
        name: &str,
        help: &str,
        kind: &str,
        label: &str,
        samples: impl IntoIterator<Item = (String, String)>,
    ) {
        self.header(name, help, kind);
        for (value_of_label, value) in samples {
            let escaped = value_of_label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let _ = writeln!(self.out, "{name}{{{label}=\"{escaped}\"}} {value}");
        }
    }

    /// A histogram in seconds.
    pub fn histogram(&mut self, name: &str, help: &str, latency: &Latency) {
        self.header(name, help, "histogram");
        let (cumulative, sum_ns, count) = latency.read();
        for (i, c) in cumulative.iter().enumerate() {
            let le = LATENCY_BUCKETS_NS.get(i).map_or_else(|| "+Inf".to_string(), |&ns| seconds(ns));
            let _ = writeln!(self.out, "{name}_bucket{{le=\"{le}\"}} {c}");
        }
        // The count is the +Inf bucket's: read separately, it could be ahead of the buckets.
        let _ = count;
        let count = cumulative.last().copied().unwrap_or(0);
        let _ = writeln!(self.out, "{name}_sum {}\n{name}_count {count}", seconds(sum_ns));
    }

    /// The gateway's metrics: sessions and connections, traffic, trading.
    pub fn gateway(&mut self, counters: &crate::server::Counters) {
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        self.gauge("l2x_sessions", "Order-entry sessions logged on now.", c(&counters.sessions));
        self.counter("l2x_connections_total", "Order-entry connections accepted.", c(&counters.connections));
        self.counter("l2x_logons_total", "Successful logons.", c(&counters.logons));
        self.counter("l2x_logon_rejects_total", "Refused logons.", c(&counters.logon_rejects));
        self.counter("l2x_md_subscribers_total", "Market-data subscribers accepted.", c(&counters.md_subscribers));
        self.counter("l2x_commands_total", "Commands the gateway submitted to the sequencer.", c(&counters.commands));
        self.counter("l2x_reports_total", "Execution reports written live (not replays).", c(&counters.reports));
        self.counter("l2x_throttled_total", "Requests rejected by the throttles.", c(&counters.throttled));
        self.counter("l2x_malformed_total", "Malformed frames received.", c(&counters.malformed));
        self.counter("l2x_slow_consumers_total", "Connections cut off as slow consumers.", c(&counters.slow_consumers));
        self.counter(
            "l2x_cancelled_on_disconnect_total",
            "Orders cancelled because their session's connection ended.",
            c(&counters.cancelled_on_disconnect),
        );
        let t = &counters.trading;
        self.counter("l2x_orders_accepted_total", "New orders accepted from sessions.", c(&t.orders_accepted));
        self.labelled(
            "l2x_rejects_total",
            "Rejected commands by reason (docs/MATCHING.md, docs/RISK.md).",
            "counter",
            "reason",
            t.rejects().into_iter().map(|(r, n)| (r.as_str().to_string(), n.to_string())),
        );
        self.counter("l2x_fills_total", "Trades (maker-taker matches, liquidation fills included).", c(&t.fills));
        self.counter("l2x_liquidations_total", "Accounts liquidated.", c(&t.liquidations));
        self.counter("l2x_liquidation_fills_total", "Fills of liquidation orders.", c(&t.liquidation_fills));
        self.counter("l2x_takeovers_total", "Positions taken over by the insurance fund.", c(&t.takeovers));
        self.counter("l2x_adl_total", "Auto-deleveraging closes.", c(&t.adl));
        self.histogram(
            "l2x_order_to_ack_seconds",
            "From a new order or amend read off its socket to its first report queued for the socket.",
            &t.order_to_ack,
        );
    }

    /// Open interest per instrument (lots), labelled by instrument id.
    pub fn open_interest(&mut self, trading: &Trading, instruments: &[InstrumentId]) {
        self.labelled(
            "l2x_open_interest_lots",
            "Open interest (the sum of long positions), lots, by instrument id.",
            "gauge",
            "instrument",
            instruments.iter().map(|&id| (id.0.to_string(), trading.open_interest(id).to_string())),
        );
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use l2x_types::{Qty, Side};

    use super::*;

    #[test]
    fn seconds_are_exact() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(1_500), "0.0000015");
        assert_eq!(seconds(2_000_000_000), "2");
        assert_eq!(seconds(1_000_000_001), "1.000000001");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let l = Latency::default();
        for ns in [1, 5_000, 5_001, 2_000_000_000] {
            l.record(ns);
        }
        let (cumulative, sum, count) = l.read();
        assert_eq!((cumulative[0], cumulative[1], cumulative[13], cumulative[14]), (2, 3, 3, 4));
        assert_eq!((sum, count), (2_000_010_002, 4));
        assert_eq!(l.quantile_bound_ns(500), Some(5_000));
        assert_eq!(l.quantile_bound_ns(750), Some(10_000));
        assert_eq!(l.quantile_bound_ns(1_000), None, "past the last bound");
        let mut e = Exposition::default();
        e.histogram("x_seconds", "h", &l);
        let text = e.finish();
        assert!(text.contains("x_seconds_bucket{le=\"0.000005\"} 2\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 4\nx_seconds_sum 2.000010002\nx_seconds_count 4\n"));
    }

    #[test]
    fn open_interest_is_the_sum_of_longs() {
        let t = Trading::default();
        let mut oi = OpenInterest::default();
        let pos = |a: u64, size: i64| Event::Position {
            holder: Holder::Account(AccountId(a)),
            instrument: InstrumentId(1),
            size: Qty(size),
            cost: 0,
            realised: 0,
        };
        oi.on_events(&[pos(1, 5), pos(2, -5)], &t);
        assert_eq!(t.open_interest(InstrumentId(1)), 5);
        // 1 sells 8 to 2: 1 goes short 3, 2 long 3.
        oi.on_events(&[pos(1, -3), pos(2, 3)], &t);
        assert_eq!(t.open_interest(InstrumentId(1)), 3);
        oi.on_events(&[pos(1, 0), pos(2, 0)], &t);
        assert_eq!(t.open_interest(InstrumentId(1)), 0);
        assert_eq!(t.open_interest(InstrumentId(0)), 0);
    }

    #[test]
    fn liquidated_accounts_count_once_per_command() {
        let t = Trading::default();
        let liq = |a: u64| Event::Liquidation {
            account: AccountId(a),
            instrument: InstrumentId(0),
            side: Side::Sell,
            qty: Qty(1),
            price: l2x_types::Price(1),
            fee: 0,
        };
        let mut scratch = Vec::new();
        count(&t, &[liq(1), liq(1), liq(2)], None, &mut scratch);
        assert_eq!((t.liquidations(), t.liquidation_fills.load(Ordering::Relaxed)), (2, 3));
        let reject = Event::Rejected {
            kind: l2x_types::CommandKind::New,
            account: None,
            cid: None,
            reason: RejectReason::ALL[0],
        };
        count(&t, &[reject], Some(7_000), &mut scratch);
        assert_eq!(t.rejects(), [(RejectReason::ALL[0], 1)]);
        assert_eq!(t.order_to_ack.read().2, 1);
        // A cancel's answer is no order-to-ack.
        let cancel_reject = Event::Rejected {
            kind: l2x_types::CommandKind::Cancel,
            account: None,
            cid: None,
            reason: RejectReason::ALL[0],
        };
        count(&t, &[cancel_reject], Some(7_000), &mut scratch);
        assert_eq!(t.order_to_ack.read().2, 1);
    }
}
