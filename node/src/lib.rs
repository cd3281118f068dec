//! The l2x node, composed: the composition root of the exchange. `l2x serve`, `l2x demo`,
//! `l2x bench wire` and the gateway's socket tests each wire the same parts; this crate is
//! where that wiring goes, so that they all start the same node.
//!
//! So far it holds what the node runs by: the TOML config ([`config`], with its
//! [`ConfigError`]) and the API keys ([`keys`]).

pub mod config;
pub mod keys;

pub use config::{Config, ConfigError};

/// An error and its sources, joined with `": "`: what the binary prints.
#[cfg(test)]
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
