//! A node that lies: a JSON-RPC endpoint in front of a real node (anvil) that forwards every
//! request and lets a test rewrite the answer first. For testing what a client does with
//! answers no honest node gives — a log that is not there, or there twice, a transaction
//! that is not the one the log names, an input that is not what was sent.
//!
//! ```text
//!  client ──HTTP POST {id, method, params}──▶ Liar ──raw_request──▶ upstream (anvil)
//!         ◀──{id, result: edit(method, params, result)}──┘ (errors passed through)
//! ```
//!
//! One request per connection (`Connection: close`); a batch of requests is refused. The
//! listener runs on a thread of its own until the `Liar` is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde_json::{Value, json};

use crate::chain::ChainError;

/// A lying JSON-RPC endpoint (see the module docs).
#[derive(Debug)]
pub struct Liar {
    address: SocketAddr,
    url: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Liar {
    /// Listens on a free local port and forwards to `upstream`, each answer passed through
    /// `edit(method, params, &mut result)` first.
    ///
    /// # Errors
    /// [`ChainError::Config`]: the port, the runtime or the upstream URL.
    pub fn spawn(upstream: &str, edit: impl Fn(&str, &Value, &mut Value) + Send + 'static) -> Result<Liar, ChainError> {
        use alloy::providers::{Provider as _, ProviderBuilder};
        let config = |what: &str, e: &dyn std::fmt::Display| ChainError::Config(format!("the lying node: {what}: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| config("binding", &e))?;
        let address = listener.local_addr().map_err(|e| config("its address", &e))?;
        let url = upstream.parse().map_err(|e| config("the upstream URL", &e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| config("its runtime", &e))?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                // A client that hangs up mid-request is its own business.
                let _ = serve(stream, &|method, params| {
                    let answer = runtime
                        .block_on(provider.raw_request::<Value, Value>(method.to_owned().into(), params.clone()));
                    match answer {
                        Ok(mut result) => {
                            edit(method, params, &mut result);
                            json!({ "result": result })
                        }
                        Err(e) => match e.as_error_resp() {
                            Some(payload) => json!({ "error": payload }),
                            None => json!({ "error": { "code": -32603, "message": e.to_string() } }),
                        },
                    }
                });
            }
        });
        Ok(Liar { address, url: format!("http://{address}"), stop, thread: Some(thread) })
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Liar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one HTTP request, answers it with `answer(method, params)` and closes.
fn serve(stream: TcpStream, answer: &dyn Fn(&str, &Value) -> Value) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (id, method, params) = (&request["id"], request["method"].as_str().unwrap_or(""), &request["params"]);
    let mut response = if request.is_object() {
        answer(method, params)
    } else {
        json!({ "error": { "code": -32600, "message": "the lying node takes one request at a time" } })
    };
    response["jsonrpc"] = json!("2.0");
    response["id"] = id.clone();
    let body = response.to_string();
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
