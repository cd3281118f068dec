//! The l2x node, composed: one [`Node`] is the gateway, the sequencer pipeline with its
//! journal and snapshots, the settlement submitter, the idle ticker and the metrics
//! endpoint, started from one [`Config`] and stopped in order. `l2x serve` runs it until a
//! signal, `l2x demo` trades on it, `l2x bench wire` measures it, and the integration tests
//! of the gateway drive it: all start the same node.
//!
//! ```text
//!            config (TOML, or the defaults; docs/OPERATIONS.md)   keys (accounts file, or
//!                        │                                         the demo keys)
//!                        ▼                                             │
//!   Node::start ─▶ Pipeline (l2x-sequencer) ─▶ Server (l2x-gateway) ◀──┘
//!                     │  journal, snapshots      order entry, market data
//!                     ├─▶ Settlement thread ─▶ Submitter (l2x-settlement) ─▶ chain
//!                     ├─▶ Ticker thread: a Tick when nothing was sequenced for a while
//!                     ├─▶ L1 watcher thread: the vault's queue ─▶ L1Deposit, ForcedWithdrawal
//!                     └─▶ Metrics thread: GET /metrics (prometheus text, served by hyper)
//!   Node::stop ─▶ Stopped { last seq, state hash, final snapshot, last settlement pass }
//! ```
//!
//! Besides the running node, the crate holds what the command line does with a node's
//! files: the settlement commands over a journal, its batch files and a chain
//! ([`settle`], including root verification for `l2x settle verify` and
//! `l2x replay --verify-roots`), and the demo ([`demo`]).
//!
//! # Modules
//!
//! | module | what it owns |
//! |---|---|
//! | [`config`] | the TOML config: tables, instruments, ranges, [`ConfigError`] |
//! | [`keys`] | the accounts file or the public demo keys, checked against the deposits |
//! | `node` | [`Node`] and [`Stopped`]: the start in numbered steps, the stop in its own order |
//! | [`settlement`] | the submitter thread and its [`SettleStatus`] |
//! | `ticker` | idle ticks, so that sequenced time passes |
//! | [`watcher`] | the L1 watcher: the vault's queue, confirmed, sequenced in order |
//! | [`funding`] | the config's first deposits through the embedded chain's vault |
//! | [`metrics`] | the Prometheus endpoint |
//! | [`chain`] | opening the chain a config or a command names |
//! | [`settle`] | `l2x settle …` and root verification |
//! | [`rebuild`] | `l2x settle rebuild`: every leaf and the root from the chain alone |
//! | [`owner`] | `l2x settle deposit`, `escape`, `queue`, …: what owners and anyone do with the vault on L1 |
//! | [`demo`] | `l2x demo` |
//!
//! # Errors
//!
//! [`NodeError`] (with [`Result`]) for the node and the settlement commands, wrapping a
//! [`ConfigError`] for anything the config or the keys refuse, and [`demo::DemoError`] for
//! the demo. Each wraps the failing part's error as its `#[source]`; the chain reads as one
//! sentence (`config file l2x.toml: pipeline.input_capacity = … is out of range: …`).

pub mod chain;
pub mod config;
pub mod demo;
mod error;
pub mod funding;
pub mod keys;
pub mod metrics;
mod node;
pub mod owner;
pub mod rebuild;
pub mod settle;
pub mod settlement;
mod ticker;
pub mod watcher;

pub use config::{Config, ConfigError};
pub use error::{NodeError, Result};
pub use node::{Node, Stopped};
pub use settlement::{SettleStatus, Settlement};

/// An error and its sources, joined with `": "`: what the binary prints.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
