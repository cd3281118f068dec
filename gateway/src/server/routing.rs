//! Routing: each command's events, as they come back from the pipeline, turned into the
//! accounts' reports, the market-data updates and the trading counters, and written to the
//! connections that want them.
//!
//! ```text
//!  batch (tag, events) ──▶ Router::on_batch: counters, open interest,
//!                          Streams (reports, seq per account), Feed (updates, md_seq),
//!                          listings made through Control → definitions
//!        ──▶ Ownership::on_events (cancel-on-disconnect)
//!        ──▶ definitions → every subscriber · reports → the live sessions of their accounts
//!            (a session in catch-up gets them from the store) · updates → every subscriber
//!        ──▶ Ownership::returned: a departed session's orders that rested since → cancels
//! ```
//!
//! The router is rebuilt from the journal when the server starts ([`Router::rebuild`]), so
//! the report streams and the book continue where they were.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use l2x_engine::StateMachine;
use l2x_protocol::codec::{self, MdMsg, ServerMsg};
use l2x_risk::Ledger;
use l2x_sequencer::journal::{self, JournalError};
use l2x_sequencer::pipeline::Tag;
use l2x_types::{AccountId, Command, Decimal, Event, InstrumentId, InstrumentSpec};

use super::event_loop::EventLoop;
use super::{CONTROL_SESSION, DISCONNECT_SESSION, Role, now_ns};
use crate::market_data::Feed;
use crate::metrics::{self, OpenInterest, Trading};
use crate::reports::Streams;

/// Listings submitted through `Control`, by correlation, until their batch comes back.
pub(super) type Listings = Arc<Mutex<BTreeMap<u64, InstrumentSpec>>>;

/// What the gateway makes of the engine's events (see the module documentation).
#[derive(Debug)]
pub(super) struct Router {
    /// Every account's reports, kept for replay.
    pub(super) streams: Streams,
    /// The order-by-order feed.
    pub(super) feed: Feed,
    /// Every listed instrument's definition (its `md_seq` is set when it is sent).
    definitions: BTreeMap<InstrumentId, MdMsg>,
    listings: Listings,
    open_interest: OpenInterest,
    /// Scratch: accounts liquidated by the current command.
    liquidated: Vec<AccountId>,
    /// The current command's reports, as (account, seq).
    routed: Vec<(AccountId, u64)>,
    /// The current command's updates.
    md_msgs: Vec<MdMsg>,
    /// The current command's new definitions.
    listed: Vec<MdMsg>,
}

impl Router {
    /// Replays the journal in `dir` up to `until` into fresh report streams, a fresh feed
    /// and open interest (published to `trading`), with the instruments it lists.
    ///
    /// # Errors
    /// The journal's.
    pub(super) fn rebuild(
        dir: &Path,
        until: u64,
        ledger: &Ledger,
        trading: &Trading,
        listings: Listings,
    ) -> Result<Router, JournalError> {
        let mut sm = StateMachine::with_ledger(ledger.clone());
        let mut streams = Streams::new();
        let mut feed = Feed::new();
        let mut open_interest = OpenInterest::default();
        let (mut events, mut routed, mut md) = (Vec::new(), Vec::new(), Vec::new());
        journal::scan(dir, |cmd| {
            if cmd.seq.0 > until {
                return ControlFlow::Break(());
            }
            events.clear();
            sm.apply(&cmd, &mut events);
            routed.clear();
            streams.on_batch(&events, cmd.ts.0, 0, 0, &mut routed);
            md.clear();
            feed.on_batch(&events, &mut md);
            open_interest.on_events(&events, trading);
            ControlFlow::Continue(())
        })?;
        let definitions = sm
            .instruments()
            .iter()
            .map(|inst| (inst.id, definition(inst.id, inst.symbol.as_str(), inst.tick_size, inst.lot_size)))
            .collect();
        Ok(Router {
            streams,
            feed,
            definitions,
            listings,
            open_interest,
            liquidated: Vec::new(),
            routed: Vec::new(),
            md_msgs: Vec::new(),
            listed: Vec::new(),
        })
    }

    /// One command's events: counted, turned into reports and updates, and the definitions
    /// of what it listed through `Control`.
    pub(super) fn on_batch(&mut self, ts: u64, tag: Tag, events: &[Event], trading: &Trading) {
        let engine_out = now_ns();
        let gateway_in =
            if tag.session == CONTROL_SESSION || tag.session == DISCONNECT_SESSION { 0 } else { tag.correlation };
        let ack_ns = (gateway_in != 0).then(|| engine_out.saturating_sub(gateway_in));
        metrics::count(trading, events, ack_ns, &mut self.liquidated);
        self.open_interest.on_events(events, trading);
        self.routed.clear();
        self.streams.on_batch(events, ts, gateway_in, engine_out, &mut self.routed);
        self.md_msgs.clear();
        self.feed.on_batch(events, &mut self.md_msgs);
        self.listed.clear();
        if tag.session != CONTROL_SESSION {
            return;
        }
        for ev in events {
            if let Event::InstrumentListed { instrument } = *ev {
                let spec = self.listings.lock().unwrap_or_else(PoisonError::into_inner).remove(&tag.correlation);
                if let Some(spec) = spec {
                    let def = definition(instrument, spec.symbol.as_str(), spec.tick_size, spec.lot_size);
                    self.definitions.insert(instrument, def);
                    self.listed.push(def);
                }
            }
        }
    }

    /// A new subscriber's first messages, encoded: every definition, then every book's
    /// snapshot, all at the current `md_seq`.
    pub(super) fn snapshot(&self, out: &mut Vec<u8>) {
        let md_seq = self.feed.md_seq();
        let mut msgs = Vec::new();
        for def in self.definitions.values() {
            msgs.push(with_md_seq(*def, md_seq));
        }
        for &id in self.definitions.keys() {
            self.feed.snapshot(id, &mut msgs);
        }
        for m in &msgs {
            codec::encode_md(m, false, out);
        }
    }
}

/// A definition as sent: with the `md_seq` it is consistent with.
fn with_md_seq(mut def: MdMsg, now: u64) -> MdMsg {
    if let MdMsg::InstrumentDefinition { md_seq, .. } = &mut def {
        *md_seq = now;
    }
    def
}

/// The market-data definition of an instrument.
fn definition(instrument: InstrumentId, symbol: &str, tick: Decimal, lot: Decimal) -> MdMsg {
    let mut name = [0u8; 16];
    let bytes = symbol.as_bytes();
    let n = bytes.len().min(16);
    name[..n].copy_from_slice(&bytes[..n]);
    // Validated instrument sizes have at most 12 decimals and at most 10^9: both fit.
    let part = |d: Decimal| {
        let d = d.normalize();
        (i64::try_from(d.mantissa()).unwrap_or(i64::MAX), u8::try_from(d.scale()).unwrap_or(u8::MAX))
    };
    MdMsg::InstrumentDefinition { md_seq: 0, instrument, symbol: name, tick: part(tick), lot: part(lot) }
}

impl EventLoop {
    /// One command's events: reports, market data, order ownership, listings.
    pub(super) fn on_batch(&mut self, ts: u64, tag: Tag, events: &[Event]) {
        self.router.on_batch(ts, tag, events, &self.counters.trading);
        self.ownership.on_events(tag.session, events);
        let listed = std::mem::take(&mut self.router.listed);
        for &def in &listed {
            self.broadcast_definition(def);
        }
        self.router.listed = listed;
        self.route_reports();
        self.broadcast_md();
        for cancel in self.ownership.returned(tag.session) {
            // An order that was in flight when its session went, and rested.
            self.counters.cancelled_on_disconnect.fetch_add(1, Ordering::Relaxed);
            self.submit(Tag { session: DISCONNECT_SESSION, correlation: tag.session }, Command::Cancel(cancel));
        }
    }

    /// Writes this batch's reports to the live sessions of their accounts.
    fn route_reports(&mut self) {
        let routed = std::mem::take(&mut self.router.routed);
        for &(account, seq) in &routed {
            let n = self.sessions.slots_of(account).len();
            let Some(stored) = self.router.streams.get(account, seq) else { continue };
            let mut buf = std::mem::take(&mut self.scratch);
            buf.clear();
            let msg = ServerMsg::Report { header: stored.header, report: stored.report, possible_duplicate: false };
            codec::encode_server(&msg, &mut buf);
            // Backwards: a session cut off as slow leaves the list while it is walked.
            for i in (0..n).rev() {
                let Some(&slot) = self.sessions.slots_of(account).get(i) else { continue };
                let live = matches!(
                    self.conns.get(slot).map(|c| &c.role),
                    Some(Role::Session(s)) if s.catch_up.is_none()
                );
                if live {
                    self.counters.reports.fetch_add(1, Ordering::Relaxed);
                    self.queue(slot, &buf);
                }
            }
            self.scratch = buf;
        }
        self.router.routed = routed;
    }

    /// A new subscriber's definitions and snapshot. A snapshot is as big as the book: the
    /// subscriber's bound is raised by its size, so that a big book does not cut off every
    /// new subscriber at once.
    pub(super) fn send_md_snapshot(&mut self, slot: usize) {
        let mut buf = Vec::new();
        self.router.snapshot(&mut buf);
        if let Some(conn) = self.conns.get_mut(slot) {
            conn.outbox.allowance = buf.len();
        }
        self.queue(slot, &buf);
    }

    /// An instrument listed while subscribers are connected: its definition to each, at the
    /// current `md_seq` (a definition is not an update).
    fn broadcast_definition(&mut self, def: MdMsg) {
        let mut buf = Vec::new();
        codec::encode_md(&with_md_seq(def, self.router.feed.md_seq()), false, &mut buf);
        self.queue_to_subscribers(&buf);
    }

    /// This batch's updates to every subscriber, end of event on the last.
    fn broadcast_md(&mut self) {
        if self.router.md_msgs.is_empty() {
            return;
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let last = self.router.md_msgs.len() - 1;
        for (i, m) in self.router.md_msgs.iter().enumerate() {
            codec::encode_md(m, i == last, &mut buf);
        }
        self.queue_to_subscribers(&buf);
        self.scratch = buf;
    }

    fn queue_to_subscribers(&mut self, bytes: &[u8]) {
        // Backwards: a subscriber cut off as slow leaves the list while it is walked.
        for i in (0..self.conns.subscribers().len()).rev() {
            if let Some(&slot) = self.conns.subscribers().get(i) {
                self.queue(slot, bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn a_definition_carries_the_sizes_as_mantissa_and_scale() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        let def = definition(InstrumentId(2), "BTC-PERP", d("0.50"), d("0.001"));
        let MdMsg::InstrumentDefinition { md_seq, instrument, symbol, tick, lot } = def else { panic!("{def:?}") };
        assert_eq!((md_seq, instrument, tick, lot), (0, InstrumentId(2), (5, 1), (1, 3)));
        assert_eq!(&symbol[..9], b"BTC-PERP\0");
        assert!(matches!(with_md_seq(def, 9), MdMsg::InstrumentDefinition { md_seq: 9, .. }));
    }
}
