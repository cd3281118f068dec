//! A local anvil (foundry's development node) as a child process: what `l2x bench
//! settlement` commits its batches to, and what the tests run against.
//!
//! ```text
//!  find_anvil(flag) ──▶ the flag's path (--anvil PATH)
//!                   ──▶ else $L2X_ANVIL
//!                   ──▶ else `anvil` on $PATH
//!                   ──▶ else AnvilError::NotFound: how to get one
//!  Anvil::start(bin) ──▶ anvil --port 0 ──▶ "Listening on 127.0.0.1:PORT" ──▶ url
//! ```
//!
//! A binary never looks for anvil in the source tree it was built from: it may run where
//! that tree is gone. Only the tests do (`devnode`, behind the `test-utils` feature,
//! installs the anvil that `settlement/contracts/package.json` pins).
//!
//! The process is killed when the [`Anvil`] is dropped. Anvil's development accounts are
//! public: [`DEV_KEYS`] are for local nodes only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Anvil's first three development private keys (public: every anvil has them).
pub const DEV_KEYS: [&str; 3] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
];

/// The environment variable naming the anvil binary when no path is given.
pub const ENV: &str = "L2X_ANVIL";

/// How to get anvil, for the error that says it is missing.
const HOW_TO_GET: &str = "in an l2x checkout, `cd settlement/contracts && npm ci` installs the pinned one \
     (node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil: pass it with --anvil or L2X_ANVIL); \
     or install foundry's anvil (https://getfoundry.sh) on PATH; or set L2X_ANVIL to its path";

/// Where a path to anvil came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The caller's explicit path (a `--anvil` flag).
    Flag,
    /// The [`ENV`] environment variable.
    Env,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Flag => "--anvil",
            Origin::Env => ENV,
        })
    }
}

/// What went wrong finding, installing or running anvil.
#[derive(Debug, thiserror::Error)]
pub enum AnvilError {
    /// A path given for anvil that is not a file.
    #[error("anvil: {path} (from {origin}) is not a file; {HOW_TO_GET}")]
    Missing {
        /// The path.
        path: PathBuf,
        /// Where it came from.
        origin: Origin,
    },
    /// No path given and no `anvil` on `PATH`.
    #[error("anvil not found: no --anvil, no L2X_ANVIL, no anvil on PATH; {HOW_TO_GET}")]
    NotFound,
    /// Installing the pinned anvil with npm (tests only) failed.
    #[error("installing anvil in {dir}: {what}")]
    Install {
        /// The directory of `package.json`.
        dir: PathBuf,
        /// What failed.
        what: &'static str,
        /// The error, when one was returned (else npm's exit status said so).
        #[source]
        source: Option<std::io::Error>,
    },
    /// The binary would not start.
    #[error("starting {bin}: {source}")]
    Start {
        /// The binary.
        bin: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The process ended before saying where it listens.
    #[error("{bin} ended before listening")]
    Ended {
        /// The binary.
        bin: PathBuf,
    },
    /// A question to the running node failed.
    #[error("asking anvil: {0}")]
    Rpc(#[from] crate::chain::ChainError),
}

/// The anvil binary to run: `explicit` if given, else `$L2X_ANVIL`, else `anvil` on
/// `$PATH`.
///
/// # Errors
/// [`AnvilError::Missing`] for a given path that is not a file; [`AnvilError::NotFound`]
/// (saying how to get anvil) when none is given and none is on `PATH`.
pub fn find_anvil(explicit: Option<&Path>) -> Result<PathBuf, AnvilError> {
    find_in(explicit, std::env::var_os(ENV), std::env::var_os("PATH"))
}

/// [`find_anvil`] with the environment given.
fn find_in(
    explicit: Option<&Path>,
    env: Option<std::ffi::OsString>,
    path: Option<std::ffi::OsString>,
) -> Result<PathBuf, AnvilError> {
    let given = match (explicit, env) {
        (Some(p), _) => Some((p.to_path_buf(), Origin::Flag)),
        (None, Some(p)) if !p.is_empty() => Some((PathBuf::from(p), Origin::Env)),
        (None, _) => None,
    };
    if let Some((path, origin)) = given {
        return if path.is_file() { Ok(path) } else { Err(AnvilError::Missing { path, origin }) };
    }
    path.iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("anvil"))
        .find(|p| p.is_file())
        .ok_or(AnvilError::NotFound)
}

/// A running anvil on a free loopback port.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    url: String,
}

impl Anvil {
    /// Starts the anvil binary `bin` with its defaults (automine on) and extra `args`
    /// (e.g. `--no-mining`), on a free loopback port.
    ///
    /// # Errors
    /// [`AnvilError::Start`], [`AnvilError::Ended`].
    pub fn start(bin: &Path, args: &[&str]) -> Result<Anvil, AnvilError> {
        let mut child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|source| AnvilError::Start { bin: bin.to_path_buf(), source })?;
        let ended = || AnvilError::Ended { bin: bin.to_path_buf() };
        let Some(stdout) = child.stdout.take() else { return Err(ended()) };
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
                    return Err(ended());
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
    /// [`AnvilError::Rpc`].
    pub fn hardfork(&self) -> Result<String, AnvilError> {
        use alloy::providers::{Provider, ProviderBuilder};

        use crate::chain::ChainError;
        let what = "anvil_nodeInfo";
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ChainError::Config(format!("cannot start the RPC runtime: {e}")))?;
        let url = self.url.parse().map_err(|_| ChainError::Config(format!("{:?} is not a URL", self.url)))?;
        let provider = ProviderBuilder::new().connect_http(url);
        let info: serde_json::Value =
            runtime.block_on(provider.raw_request(what.into(), ())).map_err(ChainError::rpc(what))?;
        let fork = info["hardFork"].as_str().ok_or(ChainError::Incomplete { what, missing: "no hardFork" })?;
        Ok(fork.to_string())
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_environment_then_path() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("anvil"));
        std::fs::write(&a, b"").unwrap();
        std::fs::write(&b, b"").unwrap();
        let path = Some(dir.path().as_os_str().to_owned());
        assert_eq!(find_in(Some(&a), Some("/nowhere".into()), path.clone()).unwrap(), a);
        assert_eq!(find_in(None, Some(a.clone().into()), None).unwrap(), a);
        assert_eq!(find_in(None, None, path.clone()).unwrap(), b);
        assert_eq!(find_in(None, Some("".into()), path).unwrap(), b, "an empty L2X_ANVIL is unset");
    }

    #[test]
    fn a_missing_anvil_says_where_it_looked_and_how_to_get_one() {
        let err = find_in(Some(Path::new("/nowhere/anvil")), None, None).unwrap_err();
        assert!(matches!(err, AnvilError::Missing { origin: Origin::Flag, .. }), "{err}");
        let err = find_in(None, Some("/nowhere/anvil".into()), None).unwrap_err();
        assert!(err.to_string().contains("(from L2X_ANVIL)"), "{err}");
        let err = find_in(None, None, Some("/nowhere".into())).unwrap_err();
        assert!(matches!(err, AnvilError::NotFound), "{err}");
        assert!(err.to_string().contains("cd settlement/contracts && npm ci"), "{err}");
    }
}
