//! The tests' anvil: the binary that `settlement/contracts/package.json` pins, installed
//! into the source tree with `npm ci` on first use (feature `test-utils`; never in a
//! release binary, which must not depend on the tree it was built from).
//!
//! ```text
//!  Anvil::spawn() ──▶ settlement/contracts/node_modules/…/anvil missing?
//!                        yes: npm ci (once, under a file lock: parallel tests wait)
//!                     ──▶ Anvil::start(that binary)
//! ```
//!
//! Tests need no environment: the pinned version is what their gas figures assume.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use crate::anvil::{Anvil, AnvilError, DEV_KEYS};

/// The directory of the contract, its package.json and node_modules.
pub fn contracts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts")
}

/// The pinned anvil binary, installed with `npm ci` if it is not there yet.
///
/// # Errors
/// [`AnvilError::Install`] (npm missing, the install failing).
pub fn anvil_binary() -> Result<PathBuf, AnvilError> {
    let dir = contracts_dir();
    let bin = dir.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    let failed = |what, source| AnvilError::Install { dir: dir.clone(), what, source };
    // One installer at a time, across test threads and processes; and nobody looks at the
    // binary before the lock: while npm is still writing it, it exists but cannot be
    // executed ("Text file busy").
    let lock = File::create(dir.join(".npm-install.lock")).map_err(|e| failed("creating its lock", Some(e)))?;
    lock.lock().map_err(|e| failed("locking it", Some(e)))?;
    if !bin.exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| failed("running npm ci (is Node.js installed?)", Some(e)))?;
        if !status.success() {
            return Err(failed("npm ci failed", None));
        }
    }
    drop(lock);
    if bin.exists() { Ok(bin) } else { Err(failed("anvil is still missing after npm ci", None)) }
}

impl Anvil {
    /// Installs (if needed) and starts the pinned anvil with its defaults (automine on).
    ///
    /// # Errors
    /// [`AnvilError`].
    pub fn spawn() -> Result<Anvil, AnvilError> {
        Anvil::spawn_with(&[])
    }

    /// Installs (if needed) and starts the pinned anvil with extra arguments (e.g.
    /// `--no-mining`).
    ///
    /// # Errors
    /// [`AnvilError`].
    pub fn spawn_with(args: &[&str]) -> Result<Anvil, AnvilError> {
        Anvil::start(&anvil_binary()?, args)
    }
}
