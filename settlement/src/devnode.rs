//! A local Ethereum node for tests and demos: the anvil binary that
//! `settlement/contracts/package.json` pins, installed with `npm ci` on first use.
//!
//! ```text
//!  Anvil::spawn() ──▶ settlement/contracts/node_modules/…/anvil missing?
//!                        yes: npm ci (once, under a file lock: parallel tests wait)
//!                     ──▶ anvil --port 0 ──▶ "Listening on 127.0.0.1:PORT" ──▶ url
//! ```
//!
//! The process is killed when the [`Anvil`] is dropped. Anvil's development accounts are
//! public: [`DEV_KEYS`] are for local nodes only.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Anvil's first two development private keys (public: every anvil has them).
pub const DEV_KEYS: [&str; 2] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
];

/// The directory of the contract, its package.json and node_modules.
pub fn contracts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts")
}

/// The pinned anvil binary, installed with `npm ci` if it is not there yet.
///
/// # Errors
/// A message saying what failed (npm missing, the install failing).
pub fn anvil_binary() -> Result<PathBuf, String> {
    let dir = contracts_dir();
    let bin = dir.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    if bin.exists() {
        return Ok(bin);
    }
    // One installer at a time, across test threads and processes.
    let lock_path = dir.join(".npm-install.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.lock().map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    if !bin.exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("running npm ci in {} (is Node.js installed?): {e}", dir.display()))?;
        if !status.success() {
            return Err(format!("npm ci in {} failed ({status})", dir.display()));
        }
    }
    drop(lock);
    if bin.exists() { Ok(bin) } else { Err(format!("{} is still missing after npm ci", bin.display())) }
}

/// A running anvil on a free loopback port.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    url: String,
}

impl Anvil {
    /// Installs (if needed) and starts anvil with its defaults (automine on).
    ///
    /// # Errors
    /// A message saying what failed.
    pub fn spawn() -> Result<Anvil, String> {
        Anvil::spawn_with(&[])
    }

    /// Starts anvil with extra arguments (e.g. `--no-mining`).
    ///
    /// # Errors
    /// A message saying what failed.
    pub fn spawn_with(args: &[&str]) -> Result<Anvil, String> {
        let bin = anvil_binary()?;
        let mut child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let Some(stdout) = child.stdout.take() else { return Err("anvil's output is not piped".into()) };
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("Listening on ") {
                        break format!("http://{}", addr.trim());
                    }
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("anvil ended before listening".into());
                }
            }
        };
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Anvil { child, url })
    }

    /// Its JSON-RPC URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The hardfork it runs (`anvil_nodeInfo`'s `hardFork`; anvil 1.7.1's default, "latest",
    /// is `Bpo1`: Osaka's EVM rules with the first blob-parameter fork's blob limits).
    ///
    /// # Errors
    /// A message saying what failed.
    pub fn hardfork(&self) -> Result<String, String> {
        use alloy::providers::{Provider, ProviderBuilder};
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let url = self.url.parse().map_err(|e| format!("{}: {e}", self.url))?;
        let provider = ProviderBuilder::new().connect_http(url);
        let info: serde_json::Value = runtime
            .block_on(provider.raw_request("anvil_nodeInfo".into(), ()))
            .map_err(|e| format!("anvil_nodeInfo: {e}"))?;
        info["hardFork"].as_str().map(str::to_string).ok_or_else(|| format!("anvil_nodeInfo without hardFork: {info}"))
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
