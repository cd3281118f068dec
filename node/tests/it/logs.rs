//! What the gateway logs about sessions (docs/OPERATIONS.md, "Logs"): logons, logouts with
//! their reason and sessions that ended without one at `info`, refused logons at `warn`.
//! A subscriber installed for this test binary captures the gateway's events in process;
//! each test picks its own out by the client's address (`peer`), unique among live sockets.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Condvar, Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

use l2x_gateway::server::Config;
use l2x_protocol::client::Options;
use l2x_protocol::codec::{self, ClientMsg, Logon};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber, span};

use crate::node::Node;

/// One captured event.
#[derive(Clone, Debug)]
struct Logged {
    level: Level,
    message: String,
    fields: BTreeMap<&'static str, String>,
}

static EVENTS: Mutex<Vec<Logged>> = Mutex::new(Vec::new());
static CHANGED: Condvar = Condvar::new();
static INSTALL: Once = Once::new();

/// Captures the gateway's events (every level) into [`EVENTS`].
struct Capture;

struct Fields<'a>(&'a mut Logged);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields<'_> {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.0.message = value;
        } else {
            self.0.fields.insert(field.name(), value);
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("l2x_gateway")
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut logged = Logged { level: *event.metadata().level(), message: String::new(), fields: BTreeMap::new() };
        event.record(&mut Fields(&mut logged));
        EVENTS.lock().unwrap_or_else(PoisonError::into_inner).push(logged);
        CHANGED.notify_all();
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

fn install() {
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(Capture).expect("no other subscriber in this test binary");
    });
}

/// The first event with this message about this client address, waiting for it (20 s at
/// most: the server logs on its own thread).
#[allow(clippy::disallowed_methods, reason = "the wait's deadline is wall-clock time")]
fn logged(message: &str, peer: SocketAddr) -> Logged {
    let deadline = Instant::now() + Duration::from_secs(20);
    let peer = peer.to_string();
    let mut events = EVENTS.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let found = events.iter().find(|e| e.message == message && e.fields.get("peer") == Some(&peer));
        if let Some(e) = found {
            return e.clone();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {message:?} logged for {peer}");
        events = CHANGED.wait_timeout(events, left).unwrap_or_else(PoisonError::into_inner).0;
    }
}

fn field<'a>(e: &'a Logged, name: &str) -> &'a str {
    e.fields.get(name).map_or_else(|| panic!("no {name} in {e:?}"), String::as_str)
}

#[test]
fn logons_refused_logons_and_logouts_are_logged_with_their_reason() {
    install();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let options = Options { heartbeat_ms: 60_000, ..Options::default() };

    // A logon, then a logout the client asks for.
    let (mut stream, _) = node.connect_with(1, options).into_parts();
    let peer = stream.local_addr().unwrap();
    let logon = logged("logon", peer);
    assert_eq!(logon.level, Level::INFO);
    assert_eq!((field(&logon, "key"), field(&logon, "account"), field(&logon, "next_seq")), ("1", "1", "1"));
    let session = field(&logon, "session").to_string();
    let mut bytes = Vec::new();
    codec::encode_client(&ClientMsg::Logout { reason: 1 }, &mut bytes);
    stream.write_all(&bytes).unwrap();
    let logout = logged("logout", peer);
    assert_eq!(logout.level, Level::INFO);
    assert_eq!((field(&logout, "reason"), field(&logout, "code")), ("client_request", "1"));
    assert_eq!(field(&logout, "session"), session);

    // A session that ends without a logout: the client just goes.
    let (stream, _) = node.connect_with(3, options).into_parts();
    let peer = stream.local_addr().unwrap();
    drop(stream);
    let gone = logged("disconnected", peer);
    assert_eq!(gone.level, Level::INFO);
    assert_eq!((field(&gone, "key"), field(&gone, "account")), ("3", "2"));

    // A refused logon (a key the server does not know), at warn with its reason.
    let mut raw = TcpStream::connect(node.server().order_entry_addr()).unwrap();
    let peer = raw.local_addr().unwrap();
    let logon = Logon {
        key_id: 99,
        timestamp_ns: 0,
        nonce: 1,
        signature: [0; 32],
        heartbeat_ms: 0,
        cancel_on_disconnect: false,
        resume_from: 0,
    };
    let mut bytes = Vec::new();
    codec::encode_client(&ClientMsg::Logon(logon), &mut bytes);
    raw.write_all(&bytes).unwrap();
    let refused = logged("logon refused", peer);
    assert_eq!(refused.level, Level::WARN);
    assert_eq!(
        (field(&refused, "key"), field(&refused, "reason"), field(&refused, "code")),
        ("99", "unknown_key", "20")
    );

    // A connection logged out before any logon.
    let mut raw = TcpStream::connect(node.server().order_entry_addr()).unwrap();
    let peer = raw.local_addr().unwrap();
    let mut bytes = Vec::new();
    codec::encode_client(&ClientMsg::Heartbeat, &mut bytes);
    raw.write_all(&bytes).unwrap();
    let early = logged("logout before logon", peer);
    assert_eq!(early.level, Level::INFO);
    assert_eq!(field(&early, "reason"), "not_logged_in");
    node.stop();
}
