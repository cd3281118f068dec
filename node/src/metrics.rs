//! The node's Prometheus endpoint: `GET /metrics` on a loopback port, text format 0.0.4.
//!
//! ```text
//!  scrape ─▶ metrics thread (std TcpListener, one request per connection, 2 s deadline)
//!              reads, without stopping anything: the gateway's counters (sessions,
//!              orders, rejects by reason, fills, liquidations, open interest, order-to-ack
//!              histogram), the pipeline's stats (sequenced, ring occupancy, journal and
//!              durable watermarks, snapshots), the submitter's status (epochs, batches
//!              committed, lag, failing)
//! ```
//!
//! Every figure is an atomic the hot paths already keep (or the submitter's mutex-guarded
//! status, written once a pass), so a scrape costs the sequencer and the gateway nothing.
//! The server is a few lines of std: a scrape is one GET with no body, and an HTTP crate
//! would bring an async runtime into the node for it. Anything else gets 404 or 405.

#![allow(clippy::disallowed_methods, reason = "a request's deadline is wall-clock time; nothing here is state")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use l2x_gateway::metrics::{Exposition, seconds};
use l2x_gateway::server::Counters;
use l2x_sequencer::pipeline::{RingStats, StatsReader};
use l2x_types::InstrumentId;

use crate::error::{NodeError, Result};
use crate::settlement::SettleStatus;

/// Where the figures come from.
pub struct Sources {
    /// The gateway's counters (sessions, traffic, trading).
    pub gateway: Arc<Counters>,
    /// The pipeline's stats (sequenced, rings, watermarks, snapshots).
    pub pipeline: StatsReader,
    /// The submitter's status, if the node settles.
    pub settlement: Option<Arc<Mutex<SettleStatus>>>,
    /// Instruments whose open interest is shown (ids 0 .. this).
    pub instruments: usize,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("settlement", &self.settlement.is_some())
            .field("instruments", &self.instruments)
            .finish_non_exhaustive()
    }
}

/// The metrics text now.
fn render(sources: &Sources) -> String {
    let mut e = Exposition::default();
    e.gateway(&sources.gateway);
    let ids: Vec<InstrumentId> =
        (0..sources.instruments).filter_map(|i| u32::try_from(i).ok().map(InstrumentId)).collect();
    e.open_interest(&sources.gateway.trading, &ids);
    let p = sources.pipeline.stats();
    e.counter("l2x_sequenced_total", "Commands sequenced by this process.", p.sequenced);
    e.counter(
        "l2x_sequencer_busy_seconds_total",
        "Time the sequencer spent sequencing (not waiting for input).",
        seconds(p.sequencer_busy_ns),
    );
    e.gauge("l2x_journal_seq", "The last sequence number in the journal (the journal watermark).", p.appended_seq);
    e.gauge("l2x_durable_seq", "The last sequence number covered by an fsync (the durable watermark).", p.durable_seq);
    e.counter("l2x_fsyncs_total", "Group-commit fsyncs.", p.fsyncs);
    e.counter("l2x_snapshots_written_total", "Snapshots written by the snapshot thread.", p.snapshots_written);
    e.gauge(
        "l2x_snapshot_max_pause_seconds",
        "The sequencer's longest pause for a snapshot.",
        seconds(p.snapshot_max_pause_ns),
    );
    let rings: [(&str, RingStats); 3] = [("input", p.input), ("reports", p.reports), ("market_data", p.market_data)];
    let each = |f: fn(&RingStats) -> u64| rings.iter().map(move |(n, r)| ((*n).to_string(), f(r).to_string()));
    e.labelled("l2x_ring_occupancy", "Slots in use in a pipeline ring.", "gauge", "ring", each(|r| r.len as u64));
    e.labelled("l2x_ring_capacity", "Slots of a pipeline ring.", "gauge", "ring", each(|r| r.capacity as u64));
    e.labelled(
        "l2x_ring_full_waits_total",
        "Times a producer found a ring full and waited (backpressure).",
        "counter",
        "ring",
        each(|r| r.full_waits),
    );
    if let Some(status) = &sources.settlement {
        let s = status.lock().unwrap_or_else(PoisonError::into_inner).clone();
        e.gauge("l2x_settlement_epochs", "Epochs the journal has closed.", s.epochs);
        e.gauge("l2x_settlement_batches_committed", "Batches on the chain.", s.committed);
        e.gauge(
            "l2x_settlement_lag_epochs",
            "Closed epochs not yet on the chain (as of the submitter's last pass).",
            s.epochs.saturating_sub(s.committed),
        );
        e.gauge("l2x_settlement_failing", "1 if the submitter's last pass failed.", u8::from(s.error.is_some()));
    }
    e.finish()
}

/// A running metrics endpoint.
#[derive(Debug)]
pub struct Metrics {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Metrics {
    /// Binds the port (first, so that a port in use stops the node before anything runs).
    ///
    /// # Errors
    /// [`NodeError::MetricsPort`] naming the address.
    pub fn bind(addr: SocketAddr) -> Result<TcpListener> {
        TcpListener::bind(addr).map_err(|source| NodeError::MetricsPort { addr, source })
    }

    /// Serves `sources` on `listener` on a thread.
    ///
    /// # Errors
    /// The listener's address cannot be read, or the thread cannot be made.
    pub fn start(listener: TcpListener, sources: Sources) -> Result<Metrics> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("l2x-metrics".into()).spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else {
                    // Out of descriptors, say: back off instead of spinning on the error.
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                if let Err(e) = answer(conn, &sources) {
                    tracing::debug!(error = %e, "metrics request failed");
                }
            }
        })?;
        Ok(Metrics { addr, stop, thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the thread (a connection to itself wakes the blocked accept).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok()
            && let Some(t) = self.thread.take()
        {
            let _ = t.join();
        }
    }
}

/// Reads one request (up to its blank line, 8 KiB at most, 2 s at most in all) and
/// answers it.
fn answer(mut conn: TcpStream, sources: &Sources) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let ended = |b: &[u8]| b.windows(4).any(|w| w == b"\r\n\r\n") || b.windows(2).any(|w| w == b"\n\n");
    while !ended(&buf) && buf.len() < 8192 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        conn.set_read_timeout(Some(left))?;
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = buf.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, body) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", render(sources)),
        (b"GET", _) => ("404 Not Found", "l2x: the metrics are at /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "l2x: GET /metrics\n".to_string()),
    };
    let allow = if status.starts_with("405") { "Allow: GET\r\n" } else { "" };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    conn.flush()
}
