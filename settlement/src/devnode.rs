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
//!
//! [`Liar`] puts a lying node in front of it: every answer forwarded, rewritten by the
//! test (answers no honest node gives).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use alloy::primitives::Address;

mod liar;

pub use crate::anvil::{Anvil, AnvilError, DEV_KEYS};
use crate::chain::ChainError;
pub use liar::Liar;

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

/// What tests do on anvil besides committing: an owner's deposit, and the node's own RPC
/// methods (mining, snapshots, reverts).
impl Anvil {
    /// Sends the JSON-RPC request `method` with `params` (`evm_mine`, `evm_snapshot`,
    /// `evm_revert`, …) and returns its answer.
    ///
    /// # Errors
    /// [`AnvilError::Rpc`].
    pub fn request(&self, method: &'static str, params: serde_json::Value) -> Result<serde_json::Value, AnvilError> {
        use alloy::providers::{Provider, ProviderBuilder};
        let runtime = test_runtime()?;
        let url = self.url().parse().map_err(|_| ChainError::Config(format!("{:?} is not a URL", self.url())))?;
        let provider = ProviderBuilder::new().connect_http(url);
        Ok(runtime.block_on(provider.raw_request(method.into(), params)).map_err(ChainError::rpc(method))?)
    }

    /// What an owner does on L1: `key`'s address is minted `amount` of the vault's test token,
    /// approves the vault and deposits `amount` to `account` (three transactions, three
    /// blocks with automine). Returns the deposit's block.
    ///
    /// # Errors
    /// [`AnvilError::Rpc`]: a transaction refused or not mined.
    pub fn deposit(&self, key: &str, vault: Address, account: u64, amount: u64) -> Result<u64, AnvilError> {
        use alloy::network::EthereumWallet;
        use alloy::providers::ProviderBuilder;
        use alloy::signers::local::PrivateKeySigner;

        use crate::chain::abi::{L2xSettlement, L2xTestUSD};
        let runtime = test_runtime()?;
        let signer: PrivateKeySigner =
            key.parse().map_err(|_| ChainError::Config("not a 32-byte hex private key".into()))?;
        let owner = signer.address();
        let url = self.url().parse().map_err(|_| ChainError::Config(format!("{:?} is not a URL", self.url())))?;
        let provider = ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url);
        let block = runtime.block_on(async move {
            let failed = |what: &'static str| move |e| ChainError::Call { what, source: Box::new(e) };
            let receipt = |what: &'static str| {
                move |e: alloy::providers::PendingTransactionError| ChainError::Config(format!("{what}: {e}"))
            };
            let contract = L2xSettlement::new(vault, provider.clone());
            let token = L2xTestUSD::new(contract.token().call().await.map_err(failed("reading token"))?, provider);
            let amount256 = alloy::primitives::U256::from(amount);
            let mint = token.mint(owner, amount256).send().await.map_err(failed("mint"))?;
            mint.get_receipt().await.map_err(receipt("mint"))?;
            let approve = token.approve(vault, amount256).send().await.map_err(failed("approve"))?;
            approve.get_receipt().await.map_err(receipt("approve"))?;
            let deposit = contract.deposit(account, amount).send().await.map_err(failed("deposit"))?;
            let mined = deposit.get_receipt().await.map_err(receipt("deposit"))?;
            if !mined.status() {
                return Err(ChainError::Config("the deposit reverted".into()));
            }
            mined.block_number.ok_or(ChainError::Incomplete { what: "the deposit's receipt", missing: "no block" })
        })?;
        Ok(block)
    }
}

fn test_runtime() -> Result<tokio::runtime::Runtime, ChainError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ChainError::Config(format!("cannot start the RPC runtime: {e}")))
}
