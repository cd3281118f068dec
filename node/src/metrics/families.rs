//! What a scrape says: the node's figures as Prometheus metric families, encoded by the
//! `prometheus` crate's [`TextEncoder`] (text format 0.0.4).
//!
//! The figures are not kept in `prometheus` metric objects: they are the atomics the hot
//! paths keep anyway (the gateway's [`Counters`], the pipeline's [`StatsReader`]) and the
//! submitter's status, read at the scrape. So a scrape costs the sequencer and the gateway
//! nothing, and nothing on the hot path is counted twice. Each scrape builds the families
//! afresh, in a fixed order (gateway, open interest, pipeline, rings, settlement, L1 watcher), and the
//! encoder writes `# HELP`, `# TYPE` and the samples.
//!
//! Values are the text format's floats: integers print as integers (`3`), seconds are
//! nanoseconds / 10⁹ (`0.0000015`), exact for any figure below 2⁵³ (and, for seconds, for
//! anything under about 11 days: 15 significant digits).
//!
//! A family with no sample is left out: the encoder refuses an empty one. The only one that
//! can be empty is `l2x_rejects_total` (a sample per reason seen so far), so until the
//! first reject it is absent, `# HELP` and `# TYPE` included (docs/OPERATIONS.md,
//! "Metrics").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use l2x_gateway::metrics::{LATENCY_BUCKETS_NS, Latency, Trading};
use l2x_gateway::server::Counters;
use l2x_sequencer::pipeline::{RingStats, StatsReader};
use l2x_types::InstrumentId;
use prometheus::TextEncoder;
use prometheus::proto::{self, MetricFamily, MetricType};

use crate::settlement::SettleStatus;
use crate::watcher::WatchStatus;

/// Where the figures come from.
pub struct Sources {
    /// The gateway's counters (sessions, traffic, trading).
    pub gateway: Arc<Counters>,
    /// The pipeline's stats (sequenced, rings, watermarks, snapshots).
    pub pipeline: StatsReader,
    /// The submitter's status, if the node settles.
    pub settlement: Option<Arc<Mutex<SettleStatus>>>,
    /// The L1 watcher's status, if the node has a vault.
    pub l1_watcher: Option<Arc<Mutex<WatchStatus>>>,
    /// Instruments whose open interest is shown (ids 0 .. this).
    pub instruments: usize,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("settlement", &self.settlement.is_some())
            .field("l1_watcher", &self.l1_watcher.is_some())
            .field("instruments", &self.instruments)
            .finish_non_exhaustive()
    }
}

/// The metrics text now.
pub(crate) fn render(sources: &Sources) -> String {
    let mut f = Families::default();
    gateway(&mut f, &sources.gateway);
    let ids = (0..sources.instruments).filter_map(|i| u32::try_from(i).ok().map(InstrumentId));
    let trading = &sources.gateway.trading;
    f.labelled(
        "l2x_open_interest_lots",
        "Open interest (the sum of long positions), lots, by instrument id.",
        MetricType::GAUGE,
        "instrument",
        ids.map(|id| (id.0.to_string(), trading.open_interest(id) as f64)),
    );
    pipeline(&mut f, &sources.pipeline);
    if let Some(status) = &sources.settlement {
        settlement(&mut f, &status.lock().unwrap_or_else(PoisonError::into_inner).clone());
    }
    if let Some(status) = &sources.l1_watcher {
        l1_watcher(&mut f, &status.lock().unwrap_or_else(PoisonError::into_inner).clone());
    }
    f.encode()
}

/// The gateway's metrics: sessions and connections, traffic, trading.
fn gateway(f: &mut Families, counters: &Counters) {
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    f.gauge("l2x_sessions", "Order-entry sessions logged on now.", c(&counters.sessions));
    f.counter("l2x_connections_total", "Order-entry connections accepted.", c(&counters.connections));
    f.counter("l2x_logons_total", "Successful logons.", c(&counters.logons));
    f.counter("l2x_logon_rejects_total", "Refused logons.", c(&counters.logon_rejects));
    f.counter("l2x_md_subscribers_total", "Market-data subscribers accepted.", c(&counters.md_subscribers));
    f.counter("l2x_commands_total", "Commands the gateway submitted to the sequencer.", c(&counters.commands));
    f.counter("l2x_reports_total", "Execution reports written live (not replays).", c(&counters.reports));
    f.counter("l2x_throttled_total", "Requests rejected by the throttles.", c(&counters.throttled));
    f.counter("l2x_malformed_total", "Malformed frames received.", c(&counters.malformed));
    f.counter("l2x_slow_consumers_total", "Connections cut off as slow consumers.", c(&counters.slow_consumers));
    f.counter(
        "l2x_cancelled_on_disconnect_total",
        "Orders cancelled because their session's connection ended.",
        c(&counters.cancelled_on_disconnect),
    );
    trading(f, &counters.trading);
}

/// What the gateway counts about trading.
fn trading(f: &mut Families, t: &Trading) {
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    f.counter("l2x_orders_accepted_total", "New orders accepted from sessions.", c(&t.orders_accepted));
    f.labelled(
        "l2x_rejects_total",
        "Rejected commands by reason (docs/MATCHING.md, docs/RISK.md).",
        MetricType::COUNTER,
        "reason",
        t.rejects().into_iter().map(|(r, n)| (r.as_str().to_string(), n as f64)),
    );
    f.counter("l2x_fills_total", "Trades (maker-taker matches, liquidation fills included).", c(&t.fills));
    f.counter("l2x_liquidations_total", "Accounts liquidated.", c(&t.liquidations));
    f.counter("l2x_liquidation_fills_total", "Fills of liquidation orders.", c(&t.liquidation_fills));
    f.counter("l2x_takeovers_total", "Positions taken over by the insurance fund.", c(&t.takeovers));
    f.counter("l2x_adl_total", "Auto-deleveraging closes.", c(&t.adl));
    f.histogram(
        "l2x_order_to_ack_seconds",
        "From a new order or amend read off its socket to its first report queued for the socket.",
        &t.order_to_ack,
    );
}

/// The pipeline's figures: sequenced, watermarks, fsyncs, snapshots, rings.
fn pipeline(f: &mut Families, stats: &StatsReader) {
    let p = stats.stats();
    f.counter("l2x_sequenced_total", "Commands sequenced by this process.", p.sequenced as f64);
    f.counter(
        "l2x_sequencer_busy_seconds_total",
        "Time the sequencer spent sequencing (not waiting for input).",
        seconds(p.sequencer_busy_ns),
    );
    f.gauge(
        "l2x_journal_seq",
        "The last sequence number in the journal (the journal watermark).",
        p.appended_seq as f64,
    );
    f.gauge(
        "l2x_durable_seq",
        "The last sequence number covered by an fsync (the durable watermark).",
        p.durable_seq as f64,
    );
    f.counter("l2x_fsyncs_total", "Group-commit fsyncs.", p.fsyncs as f64);
    f.counter("l2x_snapshots_written_total", "Snapshots written by the snapshot thread.", p.snapshots_written as f64);
    f.gauge(
        "l2x_snapshot_max_pause_seconds",
        "The sequencer's longest pause for a snapshot.",
        seconds(p.snapshot_max_pause_ns),
    );
    let rings: [(&str, RingStats); 3] = [("input", p.input), ("reports", p.reports), ("market_data", p.market_data)];
    let each = |v: fn(&RingStats) -> f64| rings.iter().map(move |(n, r)| ((*n).to_string(), v(r)));
    let occupancy = "Slots in use in a pipeline ring.";
    f.labelled("l2x_ring_occupancy", occupancy, MetricType::GAUGE, "ring", each(|r| r.len as f64));
    f.labelled(
        "l2x_ring_capacity",
        "Slots of a pipeline ring.",
        MetricType::GAUGE,
        "ring",
        each(|r| r.capacity as f64),
    );
    f.labelled(
        "l2x_ring_full_waits_total",
        "Times a producer found a ring full and waited (backpressure).",
        MetricType::COUNTER,
        "ring",
        each(|r| r.full_waits as f64),
    );
}

/// The submitter's status as of its last pass.
fn settlement(f: &mut Families, s: &SettleStatus) {
    f.gauge("l2x_settlement_epochs", "Epochs the journal has closed.", s.epochs as f64);
    f.gauge("l2x_settlement_batches_committed", "Batches on the chain.", s.committed as f64);
    f.gauge(
        "l2x_settlement_lag_epochs",
        "Closed epochs not yet on the chain (as of the submitter's last pass).",
        s.epochs.saturating_sub(s.committed) as f64,
    );
    f.gauge("l2x_settlement_failing", "1 if the submitter's last pass failed.", f64::from(u8::from(s.error.is_some())));
}

/// The L1 watcher's status as of its last pass.
fn l1_watcher(f: &mut Families, s: &WatchStatus) {
    f.counter(
        "l2x_l1_entries_sequenced_total",
        "L1 queue entries the watcher submitted since the node started.",
        s.sequenced as f64,
    );
    f.gauge("l2x_l1_queue_next", "The next L1 queue index the watcher will sequence.", s.next as f64);
    f.gauge(
        "l2x_l1_watcher_failing",
        "1 if the L1 watcher's last pass failed.",
        f64::from(u8::from(s.error.is_some())),
    );
}

/// Seconds from nanoseconds.
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Metric families in the order they are added.
#[derive(Default)]
struct Families(Vec<MetricFamily>);

impl Families {
    /// A family of `metrics` (left out if it has none: see the module documentation).
    fn add(&mut self, name: &str, help: &str, kind: MetricType, metrics: Vec<proto::Metric>) {
        if metrics.is_empty() {
            return;
        }
        let mut family = MetricFamily::default();
        family.set_name(name.to_string());
        family.set_help(help.to_string());
        family.set_field_type(kind);
        family.set_metric(metrics);
        self.0.push(family);
    }

    /// A sample of a counter or a gauge, with its labels.
    fn sample(kind: MetricType, labels: Vec<proto::LabelPair>, value: f64) -> proto::Metric {
        let mut metric = proto::Metric::from_label(labels);
        if kind == MetricType::COUNTER {
            let mut counter = proto::Counter::default();
            counter.set_value(value);
            metric.set_counter(counter);
        } else {
            let mut gauge = proto::Gauge::default();
            gauge.set_value(value);
            metric.set_gauge(gauge);
        }
        metric
    }

    fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.add(name, help, MetricType::COUNTER, vec![Families::sample(MetricType::COUNTER, Vec::new(), value)]);
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.add(name, help, MetricType::GAUGE, vec![Families::sample(MetricType::GAUGE, Vec::new(), value)]);
    }

    /// A counter or gauge with one label: (label value, value) per sample, in the order
    /// given. The encoder escapes label values.
    fn labelled(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        label: &str,
        samples: impl IntoIterator<Item = (String, f64)>,
    ) {
        let metrics = samples
            .into_iter()
            .map(|(value_of_label, value)| {
                let mut pair = proto::LabelPair::default();
                pair.set_name(label.to_string());
                pair.set_value(value_of_label);
                Families::sample(kind, vec![pair], value)
            })
            .collect();
        self.add(name, help, kind, metrics);
    }

    /// A latency histogram in seconds: the cumulative buckets (the encoder adds `+Inf` from
    /// the count), the sum and the count.
    fn histogram(&mut self, name: &str, help: &str, latency: &Latency) {
        let (cumulative, sum_ns, _) = latency.read();
        let buckets = LATENCY_BUCKETS_NS
            .iter()
            .zip(&cumulative)
            .map(|(&le, &count)| {
                let mut bucket = proto::Bucket::default();
                bucket.set_upper_bound(seconds(le));
                bucket.set_cumulative_count(count);
                bucket
            })
            .collect();
        let mut histogram = proto::Histogram::default();
        histogram.set_bucket(buckets);
        histogram.set_sample_sum(seconds(sum_ns));
        // The count is the +Inf bucket's: read separately, it could be ahead of the buckets.
        histogram.set_sample_count(cumulative.last().copied().unwrap_or(0));
        let mut metric = proto::Metric::default();
        metric.set_histogram(histogram);
        self.add(name, help, MetricType::HISTOGRAM, vec![metric]);
    }

    /// The text exposition.
    fn encode(self) -> String {
        let mut text = String::new();
        // Every family here has a name and a sample, the encoder's only refusals.
        if let Err(e) = TextEncoder::new().encode_utf8(&self.0, &mut text) {
            tracing::warn!(error = %e, "encoding the metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds print exactly from integer nanoseconds (moved with the encoding from the
    /// gateway's hand-written exposition).
    #[test]
    fn seconds_are_exact() {
        let text = |ns: u64| seconds(ns).to_string();
        assert_eq!(text(0), "0");
        assert_eq!(text(1_500), "0.0000015");
        assert_eq!(text(2_000_000_000), "2");
        assert_eq!(text(1_000_000_001), "1.000000001");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let l = Latency::default();
        for ns in [1, 5_000, 5_001, 2_000_000_000] {
            l.record(ns);
        }
        let mut f = Families::default();
        f.histogram("x_seconds", "h", &l);
        let text = f.encode();
        assert!(text.contains("x_seconds_bucket{le=\"0.000005\"} 2\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 4\nx_seconds_sum 2.000010002\nx_seconds_count 4\n"));
        assert!(text.starts_with("# HELP x_seconds h\n# TYPE x_seconds histogram\n"), "{text}");
    }

    /// Label values are escaped; the samples keep the order given; a family with no
    /// sample is left out.
    #[test]
    fn labelled_samples_keep_their_order_and_empty_families_are_left_out() {
        let mut f = Families::default();
        let samples = [("b\"\\\n", 1.0), ("a", 2.0)].map(|(l, v)| (l.to_string(), v));
        f.labelled("x_total", "x", MetricType::COUNTER, "k", samples);
        f.labelled("y_total", "y", MetricType::COUNTER, "k", std::iter::empty());
        f.gauge("z", "z", 3.0);
        assert_eq!(
            f.encode(),
            "# HELP x_total x\n# TYPE x_total counter\nx_total{k=\"b\\\"\\\\\\n\"} 1\nx_total{k=\"a\"} 2\n\
             # HELP z z\n# TYPE z gauge\nz 3\n"
        );
    }
}
