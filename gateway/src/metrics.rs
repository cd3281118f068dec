//! What the gateway measures about trading, for the node's Prometheus endpoint
//! (`l2x_node::metrics`, which reads these figures at each scrape and encodes them).
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
//! The latency histogram has fixed buckets ([`LATENCY_BUCKETS_NS`]) and reads as
//! cumulative counts, the sum and the count: what a Prometheus histogram exposes.

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

#[cfg(test)]
mod tests {
    use l2x_types::{Qty, Side};

    use super::*;

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
        // Its text exposition: l2x_node::metrics::families' tests.
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
