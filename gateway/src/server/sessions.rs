//! Sessions: logon, what a logged-on session's messages ask for, and how a session ends.
//!
//! ```text
//!  Pending ──Logon──▶ Sessions::authenticate (key, clock skew, signature, nonce)
//!     │                 refused ──▶ LogonReject, closing
//!     │                 the key's old session ──▶ Logout superseded
//!     └──────────────▶ Sessions::open: id, heartbeat, throttle, catch-up ──▶ LogonAck
//!  Session ──Ask::of(msg)──▶ throttle ──▶ submit, or Rejected throttled, or Logout
//!  logout(why) ──▶ session ended at once: unregistered, cancel-on-disconnect ──▶ Logout last
//! ```
//!
//! A key has one session; an account may have several (two keys on one account see the
//! same reports). [`Sessions`] keeps the three indexes (by key, by session id, by account)
//! consistent: a session is in all of them or in none.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use l2x_protocol::codec::{ClientMsg, Limits, Logon, Report, ReportHeader, ServerMsg, WireError};
use l2x_protocol::codes::{LogoutReason, Refusal, SessionReject};
use l2x_protocol::logon::Key;
use l2x_sequencer::pipeline::Tag;
use l2x_types::{AccountId, Amend, Cancel, ClientOrderId, Command, MassCancel, NewOrder};

use super::catch_up::CatchUp;
use super::event_loop::EventLoop;
use super::{Closing, DEFAULT_HEARTBEAT_MS, DISCONNECT_SESSION, HEARTBEAT_MS, MAX_MALFORMED, Role, now_ns};
use crate::auth::{Authenticator, Keys};
use crate::throttle::{Bucket, Throttle, Verdict};

/// A logged-on session: what its connection carries.
#[derive(Debug)]
pub(super) struct Session {
    /// Unique within this run of the server, from 1.
    pub(super) id: u64,
    /// Its API key.
    pub(super) key_id: u64,
    /// The key's account.
    pub(super) account: AccountId,
    /// The agreed heartbeat interval.
    pub(super) heartbeat: Duration,
    /// Cancel its orders when it ends.
    pub(super) cancel_on_disconnect: bool,
    throttle: Throttle,
    /// Catch-up in progress; `None`: live.
    pub(super) catch_up: Option<CatchUp>,
}

/// The heartbeat interval agreed for what a logon asks: 0 is the default, anything else is
/// clamped to the bounds.
pub(super) fn agreed_heartbeat_ms(asked: u32) -> u32 {
    match asked {
        0 => DEFAULT_HEARTBEAT_MS,
        ms => ms.clamp(HEARTBEAT_MS.0, HEARTBEAT_MS.1),
    }
}

/// The live sessions, and who may log on.
#[derive(Debug)]
pub(super) struct Sessions {
    auth: Authenticator,
    limits: Limits,
    next_id: u64,
    /// Each key's session's connection.
    by_key: BTreeMap<u64, usize>,
    /// Each session's connection.
    by_session: BTreeMap<u64, usize>,
    /// Each account's sessions' connections, in logon order.
    by_account: BTreeMap<AccountId, Vec<usize>>,
}

impl Sessions {
    /// No session yet; logons checked against `keys`, sessions throttled with `limits`.
    pub(super) fn new(keys: Keys, limits: Limits) -> Sessions {
        Sessions {
            auth: Authenticator::new(keys),
            limits,
            next_id: 1,
            by_key: BTreeMap::new(),
            by_session: BTreeMap::new(),
            by_account: BTreeMap::new(),
        }
    }

    /// Checks a logon at server time `now_ns`.
    ///
    /// # Errors
    /// The [`Refusal`].
    pub(super) fn authenticate(&mut self, logon: &Logon, now_ns: u64) -> Result<Key, Refusal> {
        self.auth.verify(logon, now_ns).cloned()
    }

    /// The connection of the key's session, if it has one.
    pub(super) fn of_key(&self, key_id: u64) -> Option<usize> {
        self.by_key.get(&key_id).copied()
    }

    /// The connections of the account's sessions.
    pub(super) fn slots_of(&self, account: AccountId) -> &[usize] {
        self.by_account.get(&account).map_or(&[], Vec::as_slice)
    }

    /// Opens a session for `key` on connection `slot` (the key's old session, if any, has
    /// ended): the session, and its `LogonAck`. `next_seq` is the account's next report.
    pub(super) fn open(
        &mut self,
        slot: usize,
        key: &Key,
        logon: &Logon,
        next_seq: u64,
        now_ns: u64,
    ) -> (Session, ServerMsg) {
        let heartbeat_ms = agreed_heartbeat_ms(logon.heartbeat_ms);
        let id = self.next_id;
        self.next_id += 1;
        let limits = self.limits;
        let session = Session {
            id,
            key_id: key.id,
            account: key.account,
            heartbeat: Duration::from_millis(u64::from(heartbeat_ms)),
            cancel_on_disconnect: logon.cancel_on_disconnect,
            throttle: Throttle::new(limits, now_ns),
            catch_up: (logon.resume_from > 0).then(|| CatchUp::new(logon.resume_from, next_seq - 1)),
        };
        self.by_key.insert(key.id, slot);
        self.by_session.insert(id, slot);
        self.by_account.entry(key.account).or_default().push(slot);
        let ack = ServerMsg::LogonAck {
            session_id: id,
            next_seq,
            heartbeat_ms,
            order_rate: limits.order_rate,
            order_burst: limits.order_burst,
            cancel_rate: limits.cancel_rate,
            cancel_burst: limits.cancel_burst,
        };
        (session, ack)
    }

    /// Forgets a session that ended on connection `slot`.
    pub(super) fn close(&mut self, slot: usize, session: &Session) {
        if self.by_key.get(&session.key_id) == Some(&slot) {
            self.by_key.remove(&session.key_id);
        }
        self.by_session.remove(&session.id);
        if let Some(slots) = self.by_account.get_mut(&session.account) {
            slots.retain(|&s| s != slot);
            if slots.is_empty() {
                self.by_account.remove(&session.account);
            }
        }
    }
}

/// What a logged-on session's message asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Ask {
    /// A second logon: refused `not_authorized`, the session goes on.
    Logon,
    /// Nothing (receiving it was the point).
    Heartbeat,
    /// The end of the session.
    Logout,
    /// The account's reports again, from this number.
    Replay(u64),
    /// A command for the engine, throttled first: its client order id (for a reject), the
    /// command, and the bucket it draws from.
    Command(ClientOrderId, Command, Bucket),
}

impl Ask {
    /// What `msg` asks for, on behalf of `account`.
    pub(super) fn of(msg: ClientMsg, account: AccountId) -> Ask {
        match msg {
            ClientMsg::Logon(_) => Ask::Logon,
            ClientMsg::Heartbeat => Ask::Heartbeat,
            ClientMsg::Logout { .. } => Ask::Logout,
            ClientMsg::Replay { from_seq } => Ask::Replay(from_seq),
            ClientMsg::NewOrder(o) => {
                let cmd = Command::NewOrder(NewOrder {
                    account,
                    cid: o.cid,
                    instrument: o.instrument,
                    side: o.side,
                    order_type: o.order_type,
                    price: o.price,
                    qty: o.qty,
                    tif: o.tif,
                    expire_ts: o.expire_ts,
                    post_only: o.post_only,
                    reduce_only: o.reduce_only,
                    stp: o.stp,
                });
                Ask::Command(o.cid, cmd, Bucket::Orders)
            }
            ClientMsg::Amend(a) => {
                let cmd =
                    Command::Amend(Amend { account, cid: a.cid, instrument: a.instrument, price: a.price, qty: a.qty });
                Ask::Command(a.cid, cmd, Bucket::Orders)
            }
            ClientMsg::Cancel { cid } => {
                Ask::Command(cid, Command::Cancel(Cancel { account, cid, on_disconnect: false }), Bucket::Cancels)
            }
            ClientMsg::MassCancel { instrument, side } => Ask::Command(
                ClientOrderId(0),
                Command::MassCancel(MassCancel { account, instrument, side }),
                Bucket::Cancels,
            ),
            // A withdrawal draws on the order bucket; its request id stands where a cid does.
            ClientMsg::Withdraw { request_id, amount } => Ask::Command(
                ClientOrderId(request_id),
                Command::WithdrawRequest { account, amount, request_id },
                Bucket::Orders,
            ),
        }
    }
}

/// A reject the gateway makes itself (seq 0, this session only), made at `now_ns`.
fn gateway_reject(report: Report, now_ns: u64) -> ServerMsg {
    let header = ReportHeader { seq: 0, gateway_in_ns: now_ns, engine_in_ns: 0, engine_out_ns: now_ns };
    ServerMsg::Report { header, report, possible_duplicate: false }
}

impl EventLoop {
    /// Handles the complete frames buffered on a connection, until one ends it.
    pub(super) fn frames(&mut self, slot: usize) {
        let gateway_in = now_ns();
        loop {
            let Some(conn) = self.conns.get_mut(slot) else { return };
            if conn.role.is_closing() {
                return;
            }
            let decoded = match conn.reader.next_frame() {
                Ok(None) => return,
                Ok(Some(frame)) => l2x_protocol::codec::decode_client(frame),
                Err(e) => {
                    // The stream is broken, logged on or not: its reason wins over
                    // `not_logged_in` (nothing after it can be framed).
                    self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                    self.logout(slot, e.logout_reason());
                    return;
                }
            };
            match decoded {
                Ok(msg) => self.message(slot, msg, gateway_in),
                Err(e) => self.malformed(slot, &e),
            }
        }
    }

    fn malformed(&mut self, slot: usize, e: &WireError) {
        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
        let Some(conn) = self.conns.get_mut(slot) else { return };
        if matches!(conn.role, Role::Pending) {
            self.logout(slot, LogoutReason::NotLoggedIn);
            return;
        }
        conn.malformed += 1;
        if conn.malformed > MAX_MALFORMED {
            self.logout(slot, LogoutReason::Malformed);
            return;
        }
        let report =
            Report::Rejected { cid: ClientOrderId(e.cid().unwrap_or(0)), reason: e.reject_code(), retry_after_ms: 0 };
        self.queue_server(slot, &gateway_reject(report, now_ns()));
    }

    fn message(&mut self, slot: usize, msg: ClientMsg, gateway_in: u64) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let session = match &mut conn.role {
            Role::Pending => {
                match msg {
                    ClientMsg::Logon(logon) => self.logon(slot, &logon),
                    _ => self.logout(slot, LogoutReason::NotLoggedIn),
                }
                return;
            }
            Role::Subscriber | Role::Closing(_) => return,
            Role::Session(s) => s,
        };
        let id = session.id;
        match Ask::of(msg, session.account) {
            Ask::Logon => {
                let reason = SessionReject::NotAuthorized.code();
                let report = Report::Rejected { cid: ClientOrderId(0), reason, retry_after_ms: 0 };
                self.queue_server(slot, &gateway_reject(report, now_ns()));
            }
            Ask::Heartbeat => {}
            Ask::Logout => self.logout(slot, LogoutReason::ClientRequest),
            Ask::Replay(from_seq) => {
                // Replaces a replay in progress (its ReplayComplete is not sent).
                let end = self.router.streams.next_seq(session.account) - 1;
                session.catch_up = Some(CatchUp::new(from_seq, end));
            }
            Ask::Command(cid, cmd, kind) => match session.throttle.check(kind, now_ns()) {
                Verdict::Pass => self.submit(Tag { session: id, correlation: gateway_in }, cmd),
                Verdict::Throttled(retry_after_ms) => {
                    self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                    let report = Report::Rejected { cid, reason: SessionReject::Throttled.code(), retry_after_ms };
                    self.queue_server(slot, &gateway_reject(report, now_ns()));
                }
                Verdict::Disconnect => {
                    self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                    self.logout(slot, LogoutReason::ThrottleExceeded);
                }
            },
        }
    }

    fn logon(&mut self, slot: usize, logon: &Logon) {
        let now = now_ns();
        let key = match self.sessions.authenticate(logon, now) {
            Ok(key) => key,
            Err(refusal) => {
                let peer = self.conns.get(slot).map(|c| c.peer.to_string()).unwrap_or_default();
                tracing::warn!(key = logon.key_id, %peer, reason = %refusal, code = refusal.code(), "logon refused");
                self.counters.logon_rejects.fetch_add(1, Ordering::Relaxed);
                self.refuse(slot, refusal);
                return;
            }
        };
        // A key has one session: a new logon supersedes the old one (a client reconnecting
        // after a network failure must not wait for the server to notice the dead
        // connection). The old session ends at once, as if disconnected; its connection
        // closes as any logged-out one does.
        if let Some(old) = self.sessions.of_key(key.id) {
            self.logout(old, LogoutReason::Superseded);
        }
        let Some(peer) = self.conns.get(slot).map(|c| c.peer) else { return };
        let next_seq = self.router.streams.next_seq(key.account);
        let (session, ack) = self.sessions.open(slot, &key, logon, next_seq, now);
        self.ownership.open(session.id, key.account);
        let (id, heartbeat_ms) = (session.id, agreed_heartbeat_ms(logon.heartbeat_ms));
        if let Some(conn) = self.conns.get_mut(slot) {
            conn.role = Role::Session(Box::new(session));
        }
        self.counters.logons.fetch_add(1, Ordering::Relaxed);
        self.counters.sessions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            session = id,
            key = key.id,
            account = key.account.0,
            %peer,
            next_seq,
            resume_from = logon.resume_from,
            heartbeat_ms,
            cancel_on_disconnect = logon.cancel_on_disconnect,
            "logon"
        );
        self.queue_server(slot, &ack);
    }

    fn refuse(&mut self, slot: usize, why: Refusal) {
        self.queue_server(slot, &ServerMsg::LogonReject { reason: why.code() });
        if let Some(conn) = self.conns.get_mut(slot)
            && !conn.role.is_closing()
        {
            conn.role = Role::Closing(Closing::default());
        }
    }

    /// Ends the connection's session (if it has one: logged at info with the reason, and
    /// cancel-on-disconnect applies at once) and sends a logout, beyond the outbound bound: it
    /// is the last thing sent, after everything queued before it, so the stream stays whole.
    /// The connection then closes gracefully ([`EventLoop::write`]), or when
    /// [`super::CLOSE_GRACE`] passes without the socket taking anything (a slow consumer that
    /// never reads). A market-data subscriber, which has no logout, is closed at once.
    pub(super) fn logout(&mut self, slot: usize, why: LogoutReason) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let (code, peer) = (why.code(), conn.peer);
        match &conn.role {
            Role::Closing(_) => return,
            Role::Subscriber => {
                self.close(slot, "cut off");
                return;
            }
            Role::Session(s) => {
                tracing::info!(session = s.id, key = s.key_id, account = s.account.0, %peer, reason = %why, code, "logout");
            }
            Role::Pending => tracing::info!(%peer, reason = %why, code, "logout before logon"),
        }
        conn.outbox.push_last(|out| l2x_protocol::codec::encode_server(&ServerMsg::Logout { reason: code }, out));
        let role = std::mem::replace(&mut conn.role, Role::Closing(Closing::default()));
        self.conns.mark_dirty(slot);
        if let Role::Session(session) = role {
            self.end_session(slot, &session);
        }
    }

    /// Forgets a session that ended (logged out or disconnected) and, if it asked for it and
    /// the server is not shutting down, cancels its live orders.
    pub(super) fn end_session(&mut self, slot: usize, session: &Session) {
        self.counters.sessions.fetch_sub(1, Ordering::Relaxed);
        self.sessions.close(slot, session);
        let cancel = session.cancel_on_disconnect && !self.shutting_down;
        for cancel in self.ownership.end(session.id, cancel) {
            self.counters.cancelled_on_disconnect.fetch_add(1, Ordering::Relaxed);
            self.submit(Tag { session: DISCONNECT_SESSION, correlation: session.id }, Command::Cancel(cancel));
        }
    }
}

#[cfg(test)]
mod tests {
    use l2x_protocol::codec::{WireAmend, WireOrder};
    use l2x_types::{Amount, InstrumentId, Price, Qty, Side};

    use super::*;

    const A: AccountId = AccountId(7);

    fn key(id: u64) -> Key {
        Key::new(id, A, [u8::try_from(id).unwrap(); 32])
    }

    fn logon(key: &Key, ts: u64, heartbeat_ms: u32, resume_from: u64) -> Logon {
        Logon {
            key_id: key.id,
            timestamp_ns: ts,
            nonce: ts,
            signature: key.sign(ts, ts),
            heartbeat_ms,
            cancel_on_disconnect: true,
            resume_from,
        }
    }

    fn sessions() -> Sessions {
        Sessions::new(Keys::from_keys([key(1), key(2)]).unwrap(), Limits::default())
    }

    #[test]
    fn the_heartbeat_asked_for_is_clamped_and_zero_is_the_default() {
        assert_eq!(agreed_heartbeat_ms(0), DEFAULT_HEARTBEAT_MS);
        assert_eq!(agreed_heartbeat_ms(1), HEARTBEAT_MS.0);
        assert_eq!(agreed_heartbeat_ms(2_500), 2_500);
        assert_eq!(agreed_heartbeat_ms(u32::MAX), HEARTBEAT_MS.1);
    }

    #[test]
    fn a_session_is_in_every_index_or_in_none() {
        let mut s = sessions();
        let now = 1_000_000_000_000;
        let (k1, k2) = (s.authenticate(&logon(&key(1), now, 0, 0), now).unwrap(), key(2));
        let (one, ack) = s.open(10, &k1, &logon(&k1, now, 250, 0), 5, now);
        assert_eq!(one.id, 1);
        assert!(matches!(ack, ServerMsg::LogonAck { session_id: 1, next_seq: 5, heartbeat_ms: 250, .. }));
        let (two, _) = s.open(11, &k2, &logon(&k2, now, 0, 3), 5, now);
        assert_eq!((two.id, two.catch_up), (2, Some(CatchUp::new(3, 4))));
        assert_eq!((s.of_key(1), s.of_key(2)), (Some(10), Some(11)));
        assert_eq!(s.slots_of(A), [10, 11], "two keys on one account: both get its reports");
        s.close(10, &one);
        assert_eq!((s.of_key(1), s.slots_of(A)), (None, &[11][..]));
        s.close(11, &two);
        assert!(s.slots_of(A).is_empty() && s.by_session.is_empty() && s.by_account.is_empty());
    }

    /// A superseded session's connection closes after its key logged on again elsewhere:
    /// forgetting it must not forget the new session of the same key.
    #[test]
    fn closing_a_superseded_session_keeps_the_keys_new_one() {
        let mut s = sessions();
        let now = 1_000_000_000_000;
        let k = key(1);
        let (old, _) = s.open(10, &k, &logon(&k, now, 0, 0), 1, now);
        let (new, _) = s.open(11, &k, &logon(&k, now, 0, 0), 1, now);
        s.close(10, &old);
        assert_eq!(s.of_key(1), Some(11));
        assert_eq!(s.slots_of(A), [11]);
        assert_eq!(s.by_session.get(&new.id), Some(&11));
    }

    #[test]
    fn a_refused_logon_says_why_and_opens_nothing() {
        let mut s = sessions();
        let now = 1_000_000_000_000;
        let mut bad = logon(&key(1), now, 0, 0);
        bad.signature[0] ^= 1;
        assert_eq!(s.authenticate(&bad, now), Err(Refusal::BadSignature));
        let unknown = logon(&Key::new(9, A, [9; 32]), now, 0, 0);
        assert_eq!(s.authenticate(&unknown, now), Err(Refusal::UnknownKey));
        assert!(s.of_key(1).is_none() && s.of_key(9).is_none());
    }

    #[test]
    fn messages_ask_for_the_sessions_account_and_draw_from_their_bucket() {
        let order = WireOrder::limit(ClientOrderId(4), InstrumentId(1), Side::Sell, Price(10), Qty(2));
        let Ask::Command(cid, Command::NewOrder(o), Bucket::Orders) = Ask::of(ClientMsg::NewOrder(order), A) else {
            panic!("a new order")
        };
        assert_eq!(
            (cid, o.account, o.cid, o.instrument, o.side, o.price),
            (ClientOrderId(4), A, order.cid, order.instrument, order.side, order.price)
        );
        let amend = WireAmend { cid: ClientOrderId(5), instrument: InstrumentId(1), price: None, qty: Some(Qty(1)) };
        assert_eq!(
            Ask::of(ClientMsg::Amend(amend), A),
            Ask::Command(
                ClientOrderId(5),
                Command::Amend(Amend {
                    account: A,
                    cid: ClientOrderId(5),
                    instrument: InstrumentId(1),
                    price: None,
                    qty: Some(Qty(1))
                }),
                Bucket::Orders
            )
        );
        assert_eq!(
            Ask::of(ClientMsg::Cancel { cid: ClientOrderId(6) }, A),
            Ask::Command(
                ClientOrderId(6),
                Command::Cancel(Cancel { account: A, cid: ClientOrderId(6), on_disconnect: false }),
                Bucket::Cancels
            )
        );
        assert_eq!(
            Ask::of(ClientMsg::MassCancel { instrument: None, side: Some(Side::Buy) }, A),
            Ask::Command(
                ClientOrderId(0),
                Command::MassCancel(MassCancel { account: A, instrument: None, side: Some(Side::Buy) }),
                Bucket::Cancels
            )
        );
        assert_eq!(
            Ask::of(ClientMsg::Withdraw { request_id: 9, amount: Amount(-4) }, A),
            Ask::Command(
                ClientOrderId(9),
                Command::WithdrawRequest { account: A, amount: Amount(-4), request_id: 9 },
                Bucket::Orders
            )
        );
        assert_eq!(Ask::of(ClientMsg::Replay { from_seq: 3 }, A), Ask::Replay(3));
        assert_eq!(Ask::of(ClientMsg::Logout { reason: 99 }, A), Ask::Logout);
        assert_eq!(Ask::of(ClientMsg::Logon(logon(&key(1), 1, 0, 0)), A), Ask::Logon);
        assert_eq!(Ask::of(ClientMsg::Heartbeat, A), Ask::Heartbeat);
    }

    #[test]
    fn a_gateway_reject_is_outside_the_stream() {
        let report = Report::Rejected { cid: ClientOrderId(3), reason: 400, retry_after_ms: 9 };
        assert_eq!(
            gateway_reject(report, 77),
            ServerMsg::Report {
                header: ReportHeader { seq: 0, gateway_in_ns: 77, engine_in_ns: 0, engine_out_ns: 77 },
                report,
                possible_duplicate: false
            }
        );
    }
}
