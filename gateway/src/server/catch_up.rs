//! Catch-up: a session replaying its account's reports from the store (after a `Replay`,
//! or a logon with `resume_from`), then catching up with what came meanwhile, then live.
//!
//! ```text
//!  Replay(from) ── CatchUp::new(from, end = last report now)
//!  each loop turn ── pump: reports next..=replay_end flagged possible duplicate,
//!                          ReplayComplete(first, last), then reports made meanwhile,
//!                          a chunk ahead of what the socket has taken
//!  next > the stream's end ── None: the session is live again
//! ```
//!
//! While a session catches up its live reports are not routed to it: they wait in the
//! store and are sent by the catch-up, in order, so the client sees every number once.

use l2x_protocol::codec::{self, ServerMsg};
use l2x_types::AccountId;

use super::event_loop::EventLoop;
use super::{CATCH_UP_CHUNK, Role};
use crate::reports::Streams;

/// A session's place in the report stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CatchUp {
    /// Next sequence number to send from the store.
    next: u64,
    /// Reports up to here are replays (flagged possible duplicate).
    replay_end: u64,
    /// First replayed sequence number (0: none), for `ReplayComplete`.
    first: u64,
    /// `ReplayComplete` was sent.
    completed: bool,
}

impl CatchUp {
    /// A catch-up from `from` (0 means 1) over a stream whose last report is `end`. Asking
    /// past the end replays nothing, and the session goes on from the next report
    /// (`end + 1`), whatever number it asked for: a report made before the catch-up ends is
    /// never skipped.
    pub(super) fn new(from: u64, end: u64) -> CatchUp {
        let next = from.max(1).min(end.saturating_add(1));
        let first = if next <= end { next } else { 0 };
        CatchUp { next, replay_end: end, first, completed: false }
    }

    /// Appends what comes next to `out` (encoded), while the connection's `pending` bytes and
    /// `out` stay under [`CATCH_UP_CHUNK`]. Returns the catch-up to keep, or `None` once it
    /// has caught up with the account's stream.
    pub(super) fn pump(
        mut self,
        streams: &Streams,
        account: AccountId,
        pending: usize,
        out: &mut Vec<u8>,
    ) -> Option<Self> {
        let end = streams.next_seq(account) - 1;
        while pending + out.len() < CATCH_UP_CHUNK {
            if self.next > self.replay_end && !self.completed {
                let (first, last) = if self.first == 0 { (0, 0) } else { (self.first, self.replay_end) };
                codec::encode_server(&ServerMsg::ReplayComplete { first, last }, out);
                self.completed = true;
                continue;
            }
            let Some(stored) = streams.get(account, self.next) else { break };
            let msg = ServerMsg::Report {
                header: stored.header,
                report: stored.report,
                possible_duplicate: self.next <= self.replay_end,
            };
            codec::encode_server(&msg, out);
            self.next += 1;
        }
        let caught_up = self.completed && self.next > end;
        (!caught_up).then_some(self)
    }
}

impl EventLoop {
    /// Feeds sessions in catch-up from the store, a chunk ahead of their sockets; `true` if
    /// anything was sent.
    pub(super) fn pump_catch_ups(&mut self) -> bool {
        let mut worked = false;
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conns.get_mut(slot) else { continue };
            let pending = conn.outbox.pending();
            let Role::Session(s) = &mut conn.role else { continue };
            let Some(cu) = s.catch_up else { continue };
            let mut buf = Vec::new();
            s.catch_up = cu.pump(&self.router.streams, s.account, pending, &mut buf);
            if !buf.is_empty() {
                worked = true;
                // The catch-up's own bound is the chunk; the connection's bound still holds.
                self.queue(slot, &buf);
            }
        }
        worked
    }
}

#[cfg(test)]
mod tests {
    use l2x_protocol::codec::{FrameReader, Report};
    use l2x_types::{ClientOrderId, Event, InstrumentId, OrderId, Price, Qty, Side};

    use super::*;

    const A: AccountId = AccountId(3);

    /// A stream of `n` reports for account `A`.
    fn streams(n: u64) -> Streams {
        let mut s = Streams::new();
        for i in 1..=n {
            add(&mut s, i);
        }
        s
    }

    fn add(s: &mut Streams, i: u64) {
        let accepted = Event::Accepted {
            account: A,
            cid: ClientOrderId(i),
            order_id: OrderId(i),
            instrument: InstrumentId(0),
            side: Side::Buy,
            price: Price(1),
            qty: Qty(1),
        };
        s.on_batch(&[accepted], i, 0, 0, &mut Vec::new());
    }

    /// What a pump sent, as (seq, possible duplicate) for reports and (first, last) for
    /// `ReplayComplete` (as seq `u64::MAX`).
    fn sent(bytes: &[u8]) -> Vec<(u64, bool)> {
        let mut reader = FrameReader::new();
        reader.extend(bytes);
        let mut out = Vec::new();
        while let Some(frame) = reader.next_frame().unwrap() {
            match codec::decode_server(frame).unwrap() {
                ServerMsg::Report { header, report: Report::Accepted { .. }, possible_duplicate } => {
                    out.push((header.seq, possible_duplicate));
                }
                ServerMsg::ReplayComplete { first, last } => out.push((u64::MAX, first == 0 && last == 0)),
                other => panic!("{other:?}"),
            }
        }
        out
    }

    #[test]
    fn replay_past_next_seq_skips_no_report_made_meanwhile() {
        // Reports 1..=5 exist; asking from 9 replays nothing and goes on from 6 (before,
        // the session went on from 9: reports 6..=8, made before its first catch-up pass,
        // were held back from the live stream and then never sent).
        let cu = CatchUp::new(9, 5);
        assert_eq!((cu.next, cu.replay_end, cu.first), (6, 5, 0));
        // From next_seq exactly: the same.
        let cu = CatchUp::new(6, 5);
        assert_eq!((cu.next, cu.first), (6, 0));
        // Within the stream: replayed from there; 0 means 1.
        let cu = CatchUp::new(3, 5);
        assert_eq!((cu.next, cu.replay_end, cu.first), (3, 5, 3));
        assert_eq!(CatchUp::new(0, 5).first, 1);
        // An empty stream, a request from the far end of the range.
        let cu = CatchUp::new(u64::MAX, 0);
        assert_eq!((cu.next, cu.first), (1, 0));
    }

    #[test]
    fn a_replay_is_flagged_then_completed_then_what_came_meanwhile_follows() {
        let mut s = streams(3);
        let cu = CatchUp::new(2, 3);
        // Two reports are made after the replay was asked for.
        add(&mut s, 4);
        add(&mut s, 5);
        let mut out = Vec::new();
        assert_eq!(cu.pump(&s, A, 0, &mut out), None, "caught up in one pass");
        assert_eq!(sent(&out), [(2, true), (3, true), (u64::MAX, false), (4, false), (5, false)]);
    }

    #[test]
    fn a_replay_of_nothing_still_completes() {
        let s = streams(2);
        let mut out = Vec::new();
        assert_eq!(CatchUp::new(7, 2).pump(&s, A, 0, &mut out), None);
        assert_eq!(sent(&out), [(u64::MAX, true)], "ReplayComplete(0, 0)");
    }

    #[test]
    fn a_long_replay_goes_a_chunk_at_a_time() {
        let s = streams(5_000);
        let mut cu = Some(CatchUp::new(1, 5_000));
        let (mut seen, mut passes) = (Vec::new(), 0);
        while let Some(c) = cu {
            let mut out = Vec::new();
            cu = c.pump(&s, A, 0, &mut out);
            assert!(out.len() < CATCH_UP_CHUNK + 200, "about a chunk: {}", out.len());
            seen.extend(sent(&out));
            passes += 1;
        }
        assert!(passes > 1);
        let expected: Vec<(u64, bool)> = (1..=5_000).map(|seq| (seq, true)).chain([(u64::MAX, false)]).collect();
        assert_eq!(seen, expected);
        // A socket that has not taken the last chunk gets nothing more.
        let mut out = Vec::new();
        assert!(CatchUp::new(1, 5_000).pump(&s, A, CATCH_UP_CHUNK, &mut out).is_some());
        assert!(out.is_empty());
    }
}
