//! Connections: the sockets of both ports, their buffers, and how a connection ends.
//!
//! ```text
//!  accept ──▶ slot (reused after the loop turn it closed in) ── registered READABLE
//!  read ──▶ FrameReader ──▶ frames (order entry) | dropped (market data, closing)
//!  queue ──▶ Outbox (bounded: past the bound, a slow consumer) ── dirty ──▶ write at the turn's end
//!           socket takes part: registered WRITABLE until it has taken the rest
//!
//!  how a connection ends:
//!  logout(reason) ── session ended at once ── Logout queued last ── Role::Closing
//!        │  input from now on: read and dropped
//!        ▼
//!  Outbox written ── shutdown(Write): FIN after the Logout ── read and drop until the client's EOF
//!        │ socket takes nothing for CLOSE_GRACE              │ or CLOSE_GRACE after the FIN
//!        ▼                                                   ▼
//!      close                                               close
//! ```
//!
//! The client can always read the logout and its reason, then a clean end of stream: a
//! socket closed with unread input makes the kernel answer with a reset, and a reset throws
//! away what the client has not read yet, so the server never closes while input may still
//! be unread (a client that keeps sending for [`CLOSE_GRACE`] after the FIN is the bounded
//! exception). A client that goes without a logout (EOF, reset) ends its session at once.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Instant;

use l2x_sequencer::clock;

use l2x_protocol::codec::{self, FrameReader, ServerMsg};
use l2x_protocol::codes::LogoutReason;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};

use super::event_loop::EventLoop;
use super::sessions::Session;
use super::{CLOSE_GRACE, LOGON_TIMEOUT, MD_HEARTBEAT};

/// Poll token of the first connection; the ones below are the listeners and the waker.
pub(super) const FIRST_CONN: usize = 3;

/// What a connection is.
#[derive(Debug)]
pub(super) enum Role {
    /// Order entry, not logged on yet.
    Pending,
    /// Order entry, logged on.
    Session(Box<Session>),
    /// A market-data subscriber.
    Subscriber,
    /// Order entry, answered (`Logout` or `LogonReject`) and closing; its session, if it
    /// had one, has ended.
    Closing(Closing),
}

impl Role {
    /// Answered and on its way out.
    #[inline]
    pub(super) fn is_closing(&self) -> bool {
        matches!(self, Role::Closing(_))
    }
}

/// A closing connection's progress: once its outbox is written the write side is shut (FIN
/// after the logout), then the client's input is read and dropped until its end of stream,
/// so that the close is never a reset (see [`EventLoop::write`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Closing {
    /// When the write side was shut.
    pub(super) fin_at: Option<Instant>,
    /// The client ended its stream before the logout was written; close once it is.
    pub(super) peer_eof: bool,
}

/// When a connection last did what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Times {
    /// Accepted.
    pub(super) opened: Instant,
    /// Last byte received.
    pub(super) last_recv: Instant,
    /// Last byte the socket took.
    pub(super) last_send: Instant,
}

/// Bytes waiting for a connection's socket.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    at: usize,
    /// Bytes allowed beyond the outbound bound (a market-data snapshot).
    pub(super) allowance: usize,
}

/// Queuing would take a connection's unsent bytes past its bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Full {
    /// The bytes unsent.
    pub(super) unsent: usize,
}

impl Outbox {
    /// Bytes not written yet.
    #[inline]
    pub(super) fn pending(&self) -> usize {
        self.buf.len() - self.at
    }

    /// Queues bytes, unless the unsent bytes would pass `bound` (plus the allowance).
    ///
    /// # Errors
    /// [`Full`]: nothing is queued.
    #[inline]
    pub(super) fn push(&mut self, bytes: &[u8], bound: usize) -> Result<(), Full> {
        if self.pending() + bytes.len() > bound + self.allowance {
            return Err(Full { unsent: self.pending() });
        }
        if self.at > 0 && self.at * 2 >= self.buf.len() {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Queues the last message of a connection, whatever the bound.
    pub(super) fn push_last(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        encode(&mut self.buf);
    }

    /// Writes what `socket` takes: `Ok(true)` when nothing is left, `Ok(false)` when it
    /// would block. `on_progress` is called after every write that took bytes.
    fn write_to(&mut self, socket: &mut impl Write, mut on_progress: impl FnMut()) -> io::Result<bool> {
        while self.pending() > 0 {
            match socket.write(&self.buf[self.at..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.at += n;
                    on_progress();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.buf.clear();
        self.at = 0;
        Ok(true)
    }
}

/// One accepted connection.
#[derive(Debug)]
pub(super) struct Conn {
    stream: TcpStream,
    /// The client's address (for the logs).
    pub(super) peer: SocketAddr,
    /// Frames read but not handled yet.
    pub(super) reader: FrameReader,
    /// Bytes to write.
    pub(super) outbox: Outbox,
    /// When it last did what.
    pub(super) times: Times,
    /// What it is.
    pub(super) role: Role,
    /// Malformed frames so far.
    pub(super) malformed: u32,
    /// Registered for writability (bytes are waiting for the socket).
    wants_writable: bool,
}

/// The connections, in slots addressed by their poll token.
#[derive(Debug, Default)]
pub(super) struct Connections {
    slots: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Slots closed in this loop turn: reused only in the next (an event for the old
    /// connection may still be in the current batch).
    closed: Vec<usize>,
    /// Connections with bytes to write.
    dirty: BTreeSet<usize>,
    /// Market-data subscribers' slots.
    subscribers: Vec<usize>,
}

impl Connections {
    /// Slots so far (some empty).
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The connection in a slot.
    #[inline]
    pub(super) fn get(&self, slot: usize) -> Option<&Conn> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    /// The connection in a slot.
    #[inline]
    pub(super) fn get_mut(&mut self, slot: usize) -> Option<&mut Conn> {
        self.slots.get_mut(slot).and_then(Option::as_mut)
    }

    /// A free slot.
    fn vacant(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        })
    }

    /// Takes a connection out of its slot, to close it.
    fn take(&mut self, slot: usize) -> Option<Conn> {
        let conn = self.slots.get_mut(slot).and_then(Option::take)?;
        self.dirty.remove(&slot);
        self.closed.push(slot);
        if matches!(conn.role, Role::Subscriber) {
            self.subscribers.retain(|&s| s != slot);
        }
        Some(conn)
    }

    /// Frees the slots closed in this loop turn.
    pub(super) fn reap(&mut self) {
        self.free.append(&mut self.closed);
    }

    /// The connection has bytes to write.
    #[inline]
    pub(super) fn mark_dirty(&mut self, slot: usize) {
        self.dirty.insert(slot);
    }

    /// The market-data subscribers' slots.
    #[inline]
    pub(super) fn subscribers(&self) -> &[usize] {
        &self.subscribers
    }
}

/// What a connection's timers call for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Due {
    /// Close it now, for this cause.
    Close(&'static str),
    /// Log it out.
    Logout(LogoutReason),
    /// Send an order-entry heartbeat.
    Heartbeat,
    /// Send a market-data heartbeat.
    MdHeartbeat,
}

/// What the timers call for on a connection with this role, these times and `pending`
/// unsent bytes, at `now`.
pub(super) fn due(role: &Role, times: Times, pending: usize, now: Instant) -> Option<Due> {
    let idle_send = now.duration_since(times.last_send);
    let idle_recv = now.duration_since(times.last_recv);
    match role {
        // Bounded: a client that neither reads its logout nor ends its stream.
        Role::Closing(Closing { fin_at: Some(at), .. }) => {
            (now.duration_since(*at) >= CLOSE_GRACE).then_some(Due::Close("no end of stream after the logout"))
        }
        Role::Closing(Closing { fin_at: None, .. }) => {
            (idle_send >= CLOSE_GRACE).then_some(Due::Close("the logout was not read"))
        }
        Role::Pending => {
            (now.duration_since(times.opened) >= LOGON_TIMEOUT).then_some(Due::Logout(LogoutReason::NotLoggedIn))
        }
        Role::Session(s) => {
            let hb = s.heartbeat;
            if idle_recv >= hb * 3 {
                Some(Due::Logout(LogoutReason::HeartbeatTimeout))
            } else {
                (idle_send >= hb && pending == 0).then_some(Due::Heartbeat)
            }
        }
        Role::Subscriber => (idle_send >= MD_HEARTBEAT && pending == 0).then_some(Due::MdHeartbeat),
    }
}

impl EventLoop {
    /// Accepts what waits on a port's listener.
    pub(super) fn accept(&mut self, market_data: bool) {
        loop {
            let listener: &TcpListener = if market_data { &self.md } else { &self.oe };
            let (stream, peer) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted) => continue,
                // Out of descriptors and the like: the timers try again every 10 ms.
                Err(_) => return,
            };
            let _ = stream.set_nodelay(true);
            let slot = self.conns.vacant();
            let now = clock::now();
            let mut conn = Conn {
                stream,
                peer,
                reader: FrameReader::new(),
                outbox: Outbox::default(),
                times: Times { opened: now, last_recv: now, last_send: now },
                role: if market_data { Role::Subscriber } else { Role::Pending },
                malformed: 0,
                wants_writable: false,
            };
            if self.poll.registry().register(&mut conn.stream, Token(slot + FIRST_CONN), Interest::READABLE).is_err() {
                self.conns.free.push(slot);
                continue;
            }
            self.conns.slots[slot] = Some(conn);
            if market_data {
                self.conns.subscribers.push(slot);
                self.counters.md_subscribers.fetch_add(1, Ordering::Relaxed);
                self.send_md_snapshot(slot);
            } else {
                self.counters.connections.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Appends bytes to a connection's outbound buffer (written at the end of the loop
    /// turn); cuts it off if the buffer would pass the bound.
    pub(super) fn queue(&mut self, slot: usize, bytes: &[u8]) {
        let bound = self.config.max_outbound_bytes;
        let Some(conn) = self.conns.get_mut(slot) else { return };
        if conn.role.is_closing() {
            return;
        }
        if let Err(Full { unsent }) = conn.outbox.push(bytes, bound) {
            tracing::warn!(peer = %conn.peer, unsent, "slow consumer: cut off");
            self.counters.slow_consumers.fetch_add(1, Ordering::Relaxed);
            self.logout(slot, LogoutReason::SlowConsumer);
            return;
        }
        self.conns.mark_dirty(slot);
    }

    /// Queues one order-entry message.
    pub(super) fn queue_server(&mut self, slot: usize, msg: &ServerMsg) {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        codec::encode_server(msg, &mut buf);
        self.queue(slot, &buf);
        self.scratch = buf;
    }

    /// Writes every connection that has bytes waiting.
    pub(super) fn flush_dirty(&mut self) {
        while let Some(slot) = self.conns.dirty.pop_first() {
            self.write(slot);
        }
    }

    /// Writes what the socket takes; registers for writability when it does not take all.
    ///
    /// A closing connection whose last byte (the logout) the socket has taken gets its write
    /// side shut: the client reads the logout, then the end of the stream. The connection
    /// stays open, reading and dropping whatever the client still sends, until the client's
    /// own end of stream or [`CLOSE_GRACE`]: closing a socket with unread input makes the
    /// kernel answer with a reset, which also throws away what the client has not read yet —
    /// the logout with its reason.
    pub(super) fn write(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let times = &mut conn.times;
        let Ok(done) = conn.outbox.write_to(&mut conn.stream, || times.last_send = clock::now()) else {
            self.close(slot, "connection error");
            return;
        };
        let mut drain = false;
        if done
            && let Role::Closing(closing) = &mut conn.role
            && closing.fin_at.is_none()
        {
            let _ = conn.stream.shutdown(Shutdown::Write);
            closing.fin_at = Some(clock::now());
            if closing.peer_eof {
                self.close(slot, "closed by the client");
                return;
            }
            drain = true;
        }
        // Writability is asked for only while bytes wait, and the registration is touched
        // only when that changes (an epoll_ctl per write would be a syscall on every report).
        if conn.wants_writable == done {
            conn.wants_writable = !done;
            let interest = if done { Interest::READABLE } else { Interest::READABLE | Interest::WRITABLE };
            let token = Token(slot + FIRST_CONN);
            if self.poll.registry().reregister(&mut conn.stream, token, interest).is_err() {
                self.close(slot, "cannot register the socket");
                return;
            }
        }
        if drain {
            // Input that came before the shutdown and was not read yet (edge-triggered: no
            // new event would announce it).
            self.read(slot);
        }
    }

    /// Reads everything available and handles each complete frame. A closing connection's
    /// input is read and dropped, never buffered: it has been answered.
    pub(super) fn read(&mut self, slot: usize) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let Some(conn) = self.conns.get_mut(slot) else { return };
            if matches!(conn.role, Role::Closing(Closing { peer_eof: true, .. })) {
                return;
            }
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    if let Role::Closing(closing) = &mut conn.role
                        && closing.fin_at.is_none()
                    {
                        // Done sending, perhaps still reading: the logout is written first.
                        closing.peer_eof = true;
                    } else {
                        self.close(slot, "closed by the client");
                    }
                    return;
                }
                Ok(n) => {
                    conn.times.last_recv = clock::now();
                    if matches!(conn.role, Role::Subscriber | Role::Closing(_)) {
                        // Market data is one-way, and a connection that is closing has been
                        // answered: whatever they send is read and dropped.
                        continue;
                    }
                    conn.reader.extend(&buf[..n]);
                    // A frame that ends the session leaves the rest of the input to the
                    // closing branch above: it is read to the end all the same.
                    self.frames(slot);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close(slot, "connection error");
                    return;
                }
            }
        }
    }

    /// Closes a connection now: reads and drops what input is waiting (bounded), unregisters
    /// it and, if it still has a session (the client went without a logout), ends the session
    /// (logged at info, with `cause`).
    pub(super) fn close(&mut self, slot: usize, cause: &'static str) {
        let Some(mut conn) = self.conns.take(slot) else { return };
        discard_input(&mut conn.stream);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let peer = conn.peer;
        match conn.role {
            Role::Subscriber => {}
            Role::Session(session) => {
                let (id, key, account) = (session.id, session.key_id, session.account.0);
                tracing::info!(session = id, key, account, %peer, cause, "disconnected");
                self.end_session(slot, &session);
            }
            Role::Pending | Role::Closing(_) => tracing::debug!(%peer, cause, "connection closed"),
        }
    }
}

/// Reads and drops what the peer sent and nobody will read (at most 1 MiB, without
/// waiting): the kernel answers the close of a socket with unread input with a reset, which
/// throws away what the peer has not read yet.
fn discard_input(stream: &mut TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    for _ in 0..64 {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A socket that takes at most `room` bytes, then would block; a broken one takes
    /// nothing at all.
    struct Socket {
        taken: Vec<u8>,
        room: usize,
        broken: bool,
    }

    impl Socket {
        fn taking(room: usize) -> Socket {
            Socket { taken: Vec::new(), room, broken: false }
        }
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.broken {
                return Ok(0);
            }
            let n = buf.len().min(self.room);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.taken.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_outbox_refuses_past_its_bound_and_reuses_its_buffer() {
        let mut o = Outbox::default();
        assert_eq!(o.push(&[1; 6], 10), Ok(()));
        assert_eq!(o.push(&[2; 5], 10), Err(Full { unsent: 6 }), "11 > 10: nothing queued");
        assert_eq!(o.pending(), 6);
        // The socket takes 4 bytes: 2 left, then 8 more fit.
        let mut socket = Socket::taking(4);
        assert_eq!(o.write_to(&mut socket, || {}).ok(), Some(false));
        assert_eq!(o.pending(), 2);
        assert_eq!(o.push(&[3; 8], 10), Ok(()));
        assert_eq!(o.pending(), 10);
        // The written part was dropped when it was at least half the buffer.
        assert_eq!((o.at, o.buf.len()), (0, 10));
        // The allowance raises the bound (a snapshot), and a last message passes any bound.
        o.allowance = 5;
        assert_eq!(o.push(&[4; 5], 10), Ok(()));
        o.push_last(|b| b.push(9));
        assert_eq!(o.pending(), 16);
        socket.room = usize::MAX;
        let mut progress = 0;
        assert_eq!(o.write_to(&mut socket, || progress += 1).ok(), Some(true));
        assert_eq!((o.pending(), progress), (0, 1));
        assert_eq!(socket.taken, [[1; 6].as_slice(), &[3; 8], &[4; 5], &[9]].concat());
    }

    #[test]
    fn a_socket_that_takes_nothing_is_an_error() {
        let mut o = Outbox::default();
        o.push(&[1], 10).unwrap();
        let mut socket = Socket { broken: true, ..Socket::taking(10) };
        assert!(o.write_to(&mut socket, || {}).is_err());
    }

    fn times(at: Instant) -> Times {
        Times { opened: at, last_recv: at, last_send: at }
    }

    #[test]
    fn timers_log_out_the_silent_and_close_the_stuck() {
        let t0 = clock::now();
        let s = |d: u64| t0 + Duration::from_millis(d);
        // Not logged on within the timeout.
        assert_eq!(due(&Role::Pending, times(t0), 0, s(4_999)), None);
        assert_eq!(due(&Role::Pending, times(t0), 0, s(5_000)), Some(Due::Logout(LogoutReason::NotLoggedIn)));
        // A closing connection: the logout not taken, then no end of stream after the FIN.
        let closing = Role::Closing(Closing::default());
        assert_eq!(due(&closing, times(t0), 8, s(5_000)), Some(Due::Close("the logout was not read")));
        let fin = Role::Closing(Closing { fin_at: Some(s(1_000)), peer_eof: false });
        assert_eq!(due(&fin, times(t0), 0, s(5_999)), None);
        assert_eq!(due(&fin, times(t0), 0, s(6_000)), Some(Due::Close("no end of stream after the logout")));
        // A subscriber hears from the server every second it has nothing else to say.
        assert_eq!(due(&Role::Subscriber, times(t0), 0, s(1_000)), Some(Due::MdHeartbeat));
        assert_eq!(due(&Role::Subscriber, times(t0), 1, s(1_000)), None, "bytes waiting: no heartbeat");
    }
}
