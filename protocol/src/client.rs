//! The Rust client of docs/PROTOCOL.md: blocking, on standard sockets, one connection per
//! value. What a market maker's own code would do, and what the tests, `l2x demo` and
//! `l2x bench wire` use.
//!
//! ```text
//!  Client::connect(addr, key, options) ── Logon (HMAC over key, time, nonce) ──▶ LogonAck
//!  client.send(&ClientMsg::NewOrder(…))  ──▶
//!  client.send(&ClientMsg::Withdraw { request_id, amount }) ──▶ answered by a report too:
//!                                          Withdrawn (collateral after) or Rejected (cid = request_id)
//!  client.recv() ◀── reports (seq = last + 1; replays already seen are skipped), heartbeats,
//!                    ReplayComplete, Logout (as an error)
//!  client.reconnect() ── Logon with resume_from = last_seq + 1 ──▶ exactly what was missed
//!
//!  MdClient::connect(addr) ◀── definitions, snapshot, then updates applied to its Book;
//!                              a gap is an error: connect again for a new snapshot
//! ```
//!
//! The client remembers the last report sequence number it handed out (`last_seq`); after
//! a reconnect the server replays from the next one, and the client drops any report it has
//! already handed out, so the caller sees every report exactly once, in order. A report
//! that skips a number is an error ([`ClientError::Gap`]): the caller should reconnect.

#![allow(clippy::disallowed_methods, reason = "a logon carries the client's wall-clock time")]

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use l2x_types::InstrumentId;

use crate::book::{Book, Gap};
use crate::codec::{self, ClientMsg, FramingError, Limits, Logon, MdMsg, ServerMsg, WireError};
use crate::codes::LogoutReason;
use crate::logon::Key;

/// What went wrong on a connection.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket failed (or a read timed out).
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// The byte stream is broken.
    #[error("framing: {0}")]
    Framing(#[from] FramingError),
    /// A frame that does not decode.
    #[error("bad message from the server: {0}")]
    Wire(#[from] WireError),
    /// The logon was refused (`LogonReject` reason code).
    #[error("logon refused: reason {0}")]
    Refused(u16),
    /// The server logged the session out (reason code).
    #[error("logged out: reason {0}")]
    LoggedOut(u16),
    /// Something other than the expected answer came.
    #[error("unexpected message: {0:?}")]
    Unexpected(ServerMsg),
    /// A report skipped sequence numbers: reconnect to replay them.
    #[error("report gap: expected seq {expected}, got {got}")]
    Gap {
        /// The number that should have come.
        expected: u64,
        /// What came.
        got: u64,
    },
    /// Market data skipped updates: connect again for a new snapshot.
    #[error(transparent)]
    MdGap(#[from] Gap),
}

/// Logon choices.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Heartbeat interval asked for (0: the server's default).
    pub heartbeat_ms: u32,
    /// Cancel this session's orders when the connection ends.
    pub cancel_on_disconnect: bool,
    /// A read that waits longer than this fails with [`ClientError::Io`] (`None`: wait
    /// forever).
    pub read_timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Options {
        Options { heartbeat_ms: 0, cancel_on_disconnect: false, read_timeout: Some(Duration::from_secs(30)) }
    }
}

/// What the server said at logon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session id.
    pub session_id: u64,
    /// The sequence number of the account's next new report.
    pub next_seq: u64,
    /// The heartbeat interval agreed.
    pub heartbeat_ms: u32,
    /// The throttle limits.
    pub limits: Limits,
}

/// Nonces: the logon time plus a process-wide counter, so two logons in the same
/// nanosecond still differ.
static NONCE: AtomicU64 = AtomicU64::new(0);

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Reads frames from a blocking socket.
#[derive(Debug)]
struct Wire {
    stream: TcpStream,
    reader: codec::FrameReader,
    buf: Box<[u8]>,
    out: Vec<u8>,
}

impl Wire {
    fn connect(addr: SocketAddr, read_timeout: Option<Duration>) -> Result<Wire, ClientError> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(read_timeout)?;
        Ok(Wire {
            stream,
            reader: codec::FrameReader::new(),
            buf: vec![0; 64 * 1024].into_boxed_slice(),
            out: Vec::new(),
        })
    }

    /// The next frame, decoded by `decode`.
    fn next<T>(&mut self, decode: impl Fn(&[u8]) -> Result<T, WireError>) -> Result<T, ClientError> {
        loop {
            if let Some(frame) = self.reader.next_frame()? {
                return Ok(decode(frame)?);
            }
            let n = self.stream.read(&mut self.buf)?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.reader.extend(&self.buf[..n]);
        }
    }
}

/// An order-entry session.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    key: Key,
    options: Options,
    wire: Wire,
    info: SessionInfo,
    last_seq: u64,
    /// When this side last sent something (heartbeats are due `heartbeat_ms` after it).
    last_send: Instant,
}

impl Client {
    /// Connects and logs on without replay: the first report handed out will be the
    /// account's next new one.
    ///
    /// # Errors
    /// [`ClientError`]; [`ClientError::Refused`] with the reason if the logon is refused.
    pub fn connect(addr: SocketAddr, key: &Key, options: Options) -> Result<Client, ClientError> {
        Client::open(addr, key, options, 0)
    }

    /// Connects and logs on asking for the account's reports from `resume_from` (≥ 1) on:
    /// they come first (flagged possible duplicate), then `ReplayComplete`.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn connect_from(
        addr: SocketAddr,
        key: &Key,
        options: Options,
        resume_from: u64,
    ) -> Result<Client, ClientError> {
        Client::open(addr, key, options, resume_from.max(1))
    }

    fn open(addr: SocketAddr, key: &Key, options: Options, resume_from: u64) -> Result<Client, ClientError> {
        let mut wire = Wire::connect(addr, options.read_timeout)?;
        let info = logon(&mut wire, key, options, resume_from)?;
        // Replay from `resume_from`, or nothing; never past what the server has.
        let from = if resume_from > 0 { resume_from.min(info.next_seq) } else { info.next_seq };
        let last_seq = from.saturating_sub(1);
        Ok(Client { addr, key: key.clone(), options, wire, info, last_seq, last_send: Instant::now() })
    }

    /// What the server said at logon.
    pub fn info(&self) -> SessionInfo {
        self.info
    }

    /// The sequence number of the last report handed out by [`Client::recv`].
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Sends one message.
    ///
    /// # Errors
    /// The socket's.
    pub fn send(&mut self, msg: &ClientMsg) -> io::Result<()> {
        self.wire.out.clear();
        codec::encode_client(msg, &mut self.wire.out);
        self.wire.stream.write_all(&self.wire.out)?;
        self.last_send = Instant::now();
        Ok(())
    }

    /// Sends raw bytes (for tests of malformed input).
    ///
    /// # Errors
    /// The socket's.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wire.stream.write_all(bytes)
    }

    /// The next message: a report not handed out before (replays of those are skipped), a
    /// heartbeat (answered with one), or `ReplayComplete`. Every call also sends a heartbeat
    /// if this side has sent nothing for the agreed interval, so a client that keeps calling
    /// `recv` is never timed out; one that neither sends nor reads for 3 intervals is.
    ///
    /// # Errors
    /// [`ClientError::LoggedOut`] on a logout, [`ClientError::Closed`] at the end of the
    /// stream, [`ClientError::Gap`] if a report skipped numbers, and the socket's errors.
    pub fn recv(&mut self) -> Result<ServerMsg, ClientError> {
        loop {
            // A client that only reads (a drop copy) still owes the server its heartbeats.
            let interval = Duration::from_millis(u64::from(self.info.heartbeat_ms));
            if self.last_send.elapsed() >= interval {
                self.send(&ClientMsg::Heartbeat)?;
            }
            let msg = self.wire.next(codec::decode_server)?;
            match msg {
                ServerMsg::Logout { reason } => return Err(ClientError::LoggedOut(reason)),
                ServerMsg::Heartbeat => {
                    // Answered at once: the server sends one only when it has sent nothing
                    // for an interval, which is when it may have heard nothing either.
                    self.send(&ClientMsg::Heartbeat)?;
                    return Ok(msg);
                }
                ServerMsg::Report { header, .. } if header.seq != 0 => {
                    if header.seq <= self.last_seq {
                        continue;
                    }
                    if header.seq != self.last_seq + 1 {
                        return Err(ClientError::Gap { expected: self.last_seq + 1, got: header.seq });
                    }
                    self.last_seq = header.seq;
                    return Ok(msg);
                }
                _ => return Ok(msg),
            }
        }
    }

    /// Drops the connection (without a logout, like a network failure), connects again and
    /// logs on with `resume_from = last_seq + 1`: the reports missed meanwhile come next.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn reconnect(&mut self) -> Result<(), ClientError> {
        let mut wire = Wire::connect(self.addr, self.options.read_timeout)?;
        self.info = logon(&mut wire, &self.key, self.options, self.last_seq + 1)?;
        if self.info.next_seq <= self.last_seq {
            // The server's stream is shorter than what this client saw (a reset journal):
            // nothing it sends could be told apart from what was handed out already.
            return Err(ClientError::Gap { expected: self.last_seq + 1, got: self.info.next_seq });
        }
        self.wire = wire;
        self.last_send = Instant::now();
        Ok(())
    }

    /// Hands over the logged-on socket and the frames read but not handed out yet, for a
    /// caller that drives the connection itself (the wire benchmark's non-blocking loop).
    pub fn into_parts(self) -> (TcpStream, codec::FrameReader) {
        (self.wire.stream, self.wire.reader)
    }

    /// Sends a logout and waits for the server's.
    ///
    /// # Errors
    /// The socket's, or [`ClientError::Unexpected`] if the server answers otherwise.
    pub fn logout(mut self) -> Result<(), ClientError> {
        self.send(&ClientMsg::Logout { reason: LogoutReason::ClientRequest.code() })?;
        loop {
            match self.recv() {
                Err(ClientError::LoggedOut(_)) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Sends the logon and reads the answer.
fn logon(wire: &mut Wire, key: &Key, options: Options, resume_from: u64) -> Result<SessionInfo, ClientError> {
    let timestamp_ns = now_ns();
    let nonce = timestamp_ns.wrapping_add(NONCE.fetch_add(1, Ordering::Relaxed));
    let msg = ClientMsg::Logon(Logon {
        key_id: key.id,
        timestamp_ns,
        nonce,
        signature: key.sign(timestamp_ns, nonce),
        heartbeat_ms: options.heartbeat_ms,
        cancel_on_disconnect: options.cancel_on_disconnect,
        resume_from,
    });
    wire.out.clear();
    codec::encode_client(&msg, &mut wire.out);
    wire.stream.write_all(&wire.out)?;
    match wire.next(codec::decode_server)? {
        ServerMsg::LogonAck {
            session_id,
            next_seq,
            heartbeat_ms,
            order_rate,
            order_burst,
            cancel_rate,
            cancel_burst,
        } => Ok(SessionInfo {
            session_id,
            next_seq,
            heartbeat_ms,
            limits: Limits { order_rate, order_burst, cancel_rate, cancel_burst },
        }),
        ServerMsg::LogonReject { reason } | ServerMsg::Logout { reason } => Err(ClientError::Refused(reason)),
        other => Err(ClientError::Unexpected(other)),
    }
}

/// A market-data subscriber: keeps the instruments' definitions and the book.
#[derive(Debug)]
pub struct MdClient {
    wire: Wire,
    book: Book,
    definitions: BTreeMap<InstrumentId, MdMsg>,
}

impl MdClient {
    /// Connects; the definitions and the snapshot come first through [`MdClient::recv`].
    ///
    /// # Errors
    /// The socket's.
    pub fn connect(addr: SocketAddr, read_timeout: Option<Duration>) -> Result<MdClient, ClientError> {
        Ok(MdClient { wire: Wire::connect(addr, read_timeout)?, book: Book::new(), definitions: BTreeMap::new() })
    }

    /// The next message, applied to the book; with its end-of-event flag.
    ///
    /// # Errors
    /// [`ClientError::MdGap`] when updates were lost (connect again), [`ClientError::Closed`]
    /// at the end of the stream, and the socket's errors.
    pub fn recv(&mut self) -> Result<(MdMsg, bool), ClientError> {
        let (msg, end) = self.wire.next(codec::decode_md)?;
        if let MdMsg::InstrumentDefinition { instrument, .. } = msg {
            self.definitions.insert(instrument, msg);
        }
        self.book.apply(&msg)?;
        Ok((msg, end))
    }

    /// The book rebuilt so far.
    pub fn book(&self) -> &Book {
        &self.book
    }

    /// The instrument definitions received.
    pub fn definitions(&self) -> &BTreeMap<InstrumentId, MdMsg> {
        &self.definitions
    }
}
