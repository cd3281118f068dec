//! The node's Prometheus endpoint: `GET /metrics` on a loopback port, text format 0.0.4.
//!
//! ```text
//!  scrape ─▶ metrics thread: a current-thread tokio runtime, hyper's HTTP/1 server
//!            (one request per connection, headers within 2 s, the whole exchange within 4 s)
//!              GET /metrics ─▶ families::render: reads, without stopping anything, the
//!                gateway's counters (sessions, orders, rejects by reason, fills,
//!                liquidations, open interest, order-to-ack histogram), the pipeline's
//!                stats (sequenced, ring occupancy, journal and durable watermarks,
//!                snapshots), the submitter's status (epochs, batches committed, lag,
//!                failing) ─▶ prometheus' TextEncoder
//!              GET elsewhere ─▶ 404 · another method ─▶ 405 (Allow: GET)
//!              a request that is not HTTP ─▶ 400 (hyper's own answer)
//!  Metrics::stop ─▶ no more connections; the scrapes in flight finish; the thread ends
//! ```
//!
//! Every figure is an atomic the hot paths already keep (or the submitter's mutex-guarded
//! status, written once a pass), so a scrape costs the sequencer and the gateway nothing
//! ([`families`]). The HTTP side is hyper's: request parsing, the limits on a request's
//! size and time, and the answers to what is not a request are the library's, not ours.
//! The runtime is the endpoint's alone, on its own thread (the RPC chain, on the submitter's
//! thread, has the node's only other one; everything else is blocking).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::error::{NodeError, Result};

pub mod families;

pub use families::Sources;

/// The longest a client may take to send a request's headers.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// The longest one connection lives: its request, then 2 s to take the answer.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(4);
/// The largest request head read (hyper's smallest buffer bound; a scrape is ~100 bytes).
const MAX_REQUEST_BYTES: usize = 8192;

/// A running metrics endpoint. Stopping it (or dropping it) ends its thread.
#[derive(Debug)]
pub struct Metrics {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Metrics {
    /// Binds the port (first, so that a port in use stops the node before anything runs).
    ///
    /// # Errors
    /// [`NodeError::MetricsPort`] naming the address.
    pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
        std::net::TcpListener::bind(addr).map_err(|source| NodeError::MetricsPort { addr, source })
    }

    /// Serves `sources` on `listener` on a thread of its own.
    ///
    /// # Errors
    /// The listener's address cannot be read, the runtime or the thread cannot be made.
    pub fn start(listener: std::net::TcpListener, sources: Sources) -> Result<Metrics> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("l2x-metrics".into())
            .spawn(move || runtime.block_on(serve(listener, Arc::new(sources), stopped)))?;
        Ok(Metrics { addr, stop: Some(stop), thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets the scrapes in flight finish, and joins the thread.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the metrics thread panicked");
        }
    }
}

/// Connections served at once (each lives at most [`CONNECTION_DEADLINE`]).
const MAX_CONNECTIONS: usize = 32;

/// Accepts connections until `stopped`, each served on a task, at most [`MAX_CONNECTIONS`]
/// at once; then waits for those in flight (each bounded by [`CONNECTION_DEADLINE`]).
async fn serve(listener: std::net::TcpListener, sources: Arc<Sources>, mut stopped: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(error = %e, "the metrics endpoint cannot listen");
            return;
        }
    };
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            // Beyond the cap, connections wait in the kernel's backlog: a client opening
            // connections in a loop cannot take the descriptors the journal and the
            // gateway need.
            accepted = listener.accept(), if connections.len() < MAX_CONNECTIONS => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, Arc::clone(&sources)));
                }
                Err(e) => {
                    // Out of descriptors, say: back off instead of spinning on the error.
                    tracing::debug!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One connection: one request, answered, then closed.
async fn connection(stream: tokio::net::TcpStream, sources: Arc<Sources>) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let response = answer(&request, &sources);
        async move { Ok::<_, Infallible>(response) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_DEADLINE)
        .keep_alive(false)
        .max_buf_size(MAX_REQUEST_BYTES)
        // The answer's head as it always was: `Content-Type: …`, no `Date`.
        .title_case_headers(true)
        .auto_date_header(false)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_DEADLINE, served).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "metrics request failed"),
        Err(_) => tracing::debug!("metrics request timed out"),
    }
}

/// The answer to one request.
fn answer(request: &Request<Incoming>, sources: &Sources) -> Response<Full<Bytes>> {
    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, families::render(sources)),
        (&Method::GET, _) => (StatusCode::NOT_FOUND, "l2x: the metrics are at /metrics\n".to_string()),
        _ => (StatusCode::METHOD_NOT_ALLOWED, "l2x: GET /metrics\n".to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET"));
    }
    response
}
