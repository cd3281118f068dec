//! A chain reached over JSON-RPC (alloy): any Ethereum node, anvil in the tests.
//!
//! ```text
//!  RpcChain::connect ──▶ code at the address? its submitter() = our key's address?
//!  commit(batch)       ──▶ commitBatch(h, withdrawals, rejected, data)         ┐
//!  commit_blobs(batch) ──▶ commitBatchBlobs(h, withdrawals, rejected)          │
//!                          + blobs::sidecar (blobs, KZG commitments, cell proofs)
//!       ┌──────────────────────────────────────────────────────────────────────┘
//!       ▼
//!  nonces (latest, pending) ──▶ the moment's price (and blob base fee, for blobs)
//!       ──▶ dry run with the blobs' versioned hashes (a refusal comes back decoded,
//!           nothing spent) ──▶ more than one of ours pending: Pending, nothing sent
//!       ──▶ first price (fees::first_price: outbid our own pending one)
//!       ──▶ gas estimate on the latest state, +20 %
//!       ──▶ wait::send_and_wait: the fees::Resender's rules, driven over RPC
//!  blobs_of_transaction(tx) ──▶ anvil_getBlobsByTransactionHash (blobs module)
//!  posted(index) ──▶ BatchCommitted logs of the contract, read once per run in ranges of
//!                    LOG_RANGE blocks from block 0 (logs.rs): topic 1 = index, exactly one
//!               ──▶ eth_getTransactionByHash(its transactionHash): sent to the contract,
//!                    input = commitBatch's selector ‖ arguments, h.index = index
//!                    (or commitBatchBlobs's, its blobVersionedHashes non-empty)
//!               ──▶ for blobs: anvil_getBlobsByTransactionHash only, each blob checked
//!                    against that one answer's hashes (never a second read of the
//!                    transaction); blobs that then do not decode: Posted::undecodable
//! ```
//!
//! `posted` reads the contract's logs once and keeps them (`logs`): one `eth_blockNumber`
//! and one `eth_getLogs` per [`LOG_RANGE`] blocks for the whole run, not a query per batch;
//! a node that limits a log query's range below that refuses it (an [`ChainError::Rpc`]
//! naming the call).
//!
//! The runtime is a single-threaded tokio runtime owned by the chain; every call blocks
//! on it with a timeout, so a node that hangs is an error ([`ChainError::Timeout`]) and
//! not a stuck thread. The nonce is asked of the node for every transaction (never
//! cached): after a reorg or a dropped transaction a cached nonce would be too high and
//! the commit would never land.

use std::time::Duration;

use alloy::eips::BlockId;
use alloy::eips::eip7594::{BlobTransactionSidecarEip7594, BlobTransactionSidecarVariant};
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;

use super::binding::{Config, abi, commit_call, creation_code, test_usd_creation_code};
use super::fees::{Fees, InFlight, SendPolicy, first_price};
use super::user::signer;
use super::{
    Chain, ChainError, CommitInput, Posted, PostedError, QueueReader, Result, decode_commit_input, entry_of,
    revert_reason,
};
use crate::batch::Batch;
use crate::queue::Entry;

mod blobs;
mod logs;
mod wait;

pub use logs::LOG_RANGE;

/// A chain reached over JSON-RPC (alloy).
pub struct RpcChain {
    runtime: tokio::runtime::Runtime,
    provider: DynProvider,
    address: Address,
    submitter: Address,
    confirmations: u64,
    timeout: Duration,
    /// How commits are priced, replaced and waited for.
    policy: SendPolicy,
    /// The last commit transaction this process sent (to price a replacement above it).
    in_flight: Option<InFlight>,
    /// The contract's `BatchCommitted` logs read so far (`posted`).
    commit_logs: logs::CommitLogs,
}

impl std::fmt::Debug for RpcChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcChain").field("contract", &self.address).field("submitter", &self.submitter).finish()
    }
}

/// Runs `fut` on `runtime`, failing with [`ChainError::Timeout`] naming `what` after
/// `timeout`.
pub(super) fn within<T>(
    runtime: &tokio::runtime::Runtime,
    what: &'static str,
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    runtime.block_on(async move {
        tokio::time::timeout(timeout, fut).await.map_err(|_| ChainError::Timeout { what, timeout })?
    })
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ChainError::Config(format!("cannot start the RPC runtime: {e}")))
}

fn provider(url: &str, key: &str) -> Result<(DynProvider, Address)> {
    let signer = signer(key)?;
    let submitter = signer.address();
    Ok((signed_provider(url, signer)?, submitter))
}

/// A provider for `url` that signs with `signer`, fills gas and fees by estimate, and asks
/// the node for the nonce of every transaction (never cached: see the module docs). The
/// submitter's and the users' ([`L1User`](super::L1User)) transactions go through one.
///
/// # Errors
/// [`ChainError::Config`] if `url` is not a URL.
pub(super) fn signed_provider(url: &str, signer: PrivateKeySigner) -> Result<DynProvider> {
    let url = parse_url(url)?;
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url);
    Ok(provider.erased())
}

/// `url` parsed. The error shows its scheme and host only: an RPC URL often carries an API
/// key in its path or query, and errors end up in logs.
///
/// # Errors
/// [`ChainError::Config`] if `url` is not a URL.
pub(super) fn parse_url(url: &str) -> Result<alloy::transports::http::reqwest::Url> {
    url.parse().map_err(|_| ChainError::Config(format!("the RPC URL {} is not a URL", scheme_and_host(url))))
}

/// `scheme://host[:port]` of `url`, without a user, path, query or fragment (what may hold
/// a secret); `(no scheme://)` if it has no scheme.
pub(super) fn scheme_and_host(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = authority.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}")
        }
        None => "(no scheme://)".to_owned(),
    }
}

/// Checks that `address` holds code that answers the settlement contract's `lastIndex()`
/// (what a reader can check without knowing the submitter).
///
/// # Errors
/// [`ChainError::WrongContract`] saying what did not match; the transport's errors.
pub(super) async fn check_vault(provider: &DynProvider, address: Address) -> Result<()> {
    let wrong = |why: String, source: Option<ChainError>| ChainError::WrongContract {
        address,
        submitter: Address::ZERO,
        why,
        source: source.map(Box::new),
    };
    let code = provider.get_code_at(address).await.map_err(ChainError::rpc("reading the contract's code"))?;
    if code.is_empty() {
        return Err(wrong("no code at that address".into(), None));
    }
    match abi::L2xSettlement::new(address, provider.clone()).lastIndex().call().await {
        Ok(_) => Ok(()),
        Err(e) => Err(wrong(e.to_string(), Some(ChainError::call("reading lastIndex")(e)))),
    }
}

/// The address of a private key given as hex (the submitter's, for a deployment's
/// `Config`).
///
/// # Errors
/// [`ChainError::Config`] if it is not a 32-byte hex private key.
pub fn submitter_of(key: &str) -> Result<Address> {
    Ok(signer(key)?.address())
}

/// The moment's price, as [`fees_now`] reads it.
#[derive(Clone, Copy, Debug)]
struct Moment {
    /// What a commit sent now should pay.
    fees: Fees,
    /// The next block's base fee.
    base: u128,
    /// The blob base fee (0 when not asked: a commit without blobs).
    blob_base: u128,
}

/// What a commit sent now should pay: the tip the node suggests, and twice the next
/// block's base fee on top (room for six full blocks in a row); for a commit with blobs
/// (`blobs`) also twice the blob base fee as its blob fee cap.
async fn fees_now(provider: &DynProvider, blobs: bool) -> Result<Moment> {
    let history = provider
        .get_fee_history(1, alloy::eips::BlockNumberOrTag::Latest, &[])
        .await
        .map_err(ChainError::rpc("reading the base fee"))?;
    let base = history.next_block_base_fee().unwrap_or(0);
    let tip = provider.get_max_priority_fee_per_gas().await.map_err(ChainError::rpc("reading the tip"))?;
    let blob_base = if blobs {
        provider.get_blob_base_fee().await.map_err(ChainError::rpc("reading the blob base fee"))?
    } else {
        0
    };
    let fees = Fees {
        max_fee: base.saturating_mul(2).saturating_add(tip),
        tip,
        blob: blobs.then(|| blob_base.saturating_mul(2).max(1)),
    };
    Ok(Moment { fees, base, blob_base })
}

impl RpcChain {
    /// The default time allowed for one RPC exchange.
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    /// The default time a commit may wait for its confirmations (blocks are slow).
    pub const CONFIRMATION_TIMEOUT: Duration = Duration::from_secs(600);

    /// Connects to the contract at `address` as the submitter whose private key is `key`,
    /// and checks that the address holds the settlement contract with that submitter.
    ///
    /// # Errors
    /// [`ChainError::Config`], [`ChainError::WrongContract`], the transport's errors.
    pub fn connect(url: &str, key: &str, address: Address, confirmations: u64) -> Result<RpcChain> {
        RpcChain::connect_with_timeout(url, key, address, confirmations, Self::TIMEOUT)
    }

    /// [`RpcChain::connect`] with another time allowed for each RPC exchange.
    ///
    /// # Errors
    /// As [`RpcChain::connect`].
    pub fn connect_with_timeout(
        url: &str,
        key: &str,
        address: Address,
        confirmations: u64,
        timeout: Duration,
    ) -> Result<RpcChain> {
        let (provider, submitter) = provider(url, key)?;
        let mut chain = RpcChain {
            runtime: runtime()?,
            provider,
            address,
            submitter,
            confirmations: confirmations.max(1),
            timeout,
            policy: SendPolicy::default(),
            in_flight: None,
            commit_logs: logs::CommitLogs::default(),
        };
        chain.check_contract()?;
        Ok(chain)
    }

    /// Connects to the contract at `address` to read it only (auditors: `l2x settle verify`);
    /// committing through it fails. Checks that the address holds code that answers
    /// `lastIndex()`.
    ///
    /// # Errors
    /// [`ChainError::Config`], [`ChainError::WrongContract`], the transport's errors.
    pub fn read_only(url: &str, address: Address) -> Result<RpcChain> {
        let provider = ProviderBuilder::new().connect_http(parse_url(url)?).erased();
        let chain = RpcChain {
            runtime: runtime()?,
            provider,
            address,
            submitter: Address::ZERO,
            confirmations: 1,
            timeout: Self::TIMEOUT,
            policy: SendPolicy::default(),
            in_flight: None,
            commit_logs: logs::CommitLogs::default(),
        };
        let provider = chain.provider.clone();
        chain.block_on("checking the contract", async move { check_vault(&provider, address).await })?;
        Ok(chain)
    }

    /// Deploys the committed artifact with `config` (its submitter must be the key's
    /// address: the deployment is refused otherwise); returns the contract's address.
    ///
    /// # Errors
    /// As [`RpcChain::connect`]; [`ChainError::Config`] if `config.submitter` is not the key's
    /// address.
    pub fn deploy(url: &str, key: &str, config: &Config) -> Result<Address> {
        let (provider, submitter) = provider(url, key)?;
        if config.submitter != submitter {
            return Err(ChainError::Config(format!(
                "the deployment's submitter {} is not the key's address {submitter}",
                config.submitter
            )));
        }
        Self::deploy_code(&provider, "deploying", creation_code(config)?)
    }

    /// Deploys the committed test token (`L2xTestUSD`: anyone may mint it; tests and the
    /// demo only) from `key`'s address; returns its address.
    ///
    /// # Errors
    /// As [`RpcChain::connect`].
    pub fn deploy_test_usd(url: &str, key: &str) -> Result<Address> {
        let (provider, _) = provider(url, key)?;
        Self::deploy_code(&provider, "deploying the test token", test_usd_creation_code()?)
    }

    /// Deploys the test token, then the settlement contract over it with the local defaults
    /// ([`Config::local`]: tests, benchmarks, demos); returns the contract's address and the
    /// token's.
    ///
    /// # Errors
    /// As [`RpcChain::deploy`].
    pub fn deploy_local(url: &str, key: &str) -> Result<(Address, Address)> {
        let token = Self::deploy_test_usd(url, key)?;
        let contract = Self::deploy(url, key, &Config::local(submitter_of(key)?, token))?;
        Ok((contract, token))
    }

    /// Sends a deployment of `code` and waits for its receipt; returns the new address.
    fn deploy_code(provider: &DynProvider, what: &'static str, code: Vec<u8>) -> Result<Address> {
        let rt = runtime()?;
        let tx = TransactionRequest::default().with_deploy_code(Bytes::from(code));
        within(&rt, what, Self::CONFIRMATION_TIMEOUT, async {
            let pending = provider.send_transaction(tx).await.map_err(ChainError::rpc(what))?;
            let receipt = pending.get_receipt().await.map_err(|e| ChainError::Receipt { what, source: Box::new(e) })?;
            if !receipt.status() {
                return Err(ChainError::Config(format!("{what}: the constructor reverted")));
            }
            receipt
                .contract_address
                .ok_or(ChainError::Incomplete { what, missing: "no contract address in the receipt" })
        })
    }

    /// The contract's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Prices, replaces and waits for commits by `policy` from now on.
    pub fn set_policy(&mut self, policy: SendPolicy) {
        self.policy = policy;
    }

    fn block_on<T>(&self, what: &'static str, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        within(&self.runtime, what, self.timeout, fut)
    }

    /// Commits a batch with its data posted as `da` says and returns the gas its
    /// transaction used and the blob gas (0 for calldata), from its receipt (benchmarks).
    ///
    /// # Errors
    /// As [`Chain::commit`].
    pub fn commit_for_gas(&mut self, batch: &Batch, da: super::Da) -> Result<(u64, u64)> {
        let tx = self.commit_as(batch, da)?;
        let provider = self.provider.clone();
        let receipt = self.block_on("reading a receipt", async move {
            provider.get_transaction_receipt(tx).await.map_err(ChainError::rpc("reading a receipt"))
        })?;
        receipt
            .map(|r| (r.gas_used, r.blob_gas_used.unwrap_or(0)))
            .ok_or(ChainError::Incomplete { what: "reading a receipt", missing: "no receipt" })
    }

    fn check_contract(&mut self) -> Result<()> {
        let (address, submitter) = (self.address, self.submitter);
        let provider = self.provider.clone();
        let code = self.block_on("reading the contract's code", async move {
            provider.get_code_at(address).await.map_err(ChainError::rpc("reading the contract's code"))
        })?;
        let wrong = |why: String, source: Option<ChainError>| ChainError::WrongContract {
            address,
            submitter,
            why,
            source: source.map(Box::new),
        };
        if code.is_empty() {
            return Err(wrong("no code at that address".into(), None));
        }
        let contract = abi::L2xSettlement::new(address, self.provider.clone());
        let theirs = self.block_on("reading the contract's submitter", async move {
            contract.submitter().call().await.map_err(ChainError::call("reading the contract's submitter"))
        });
        match theirs {
            Ok(s) if s == submitter => Ok(()),
            Ok(s) => Err(wrong(format!("its submitter is {s}"), None)),
            Err(e) => Err(wrong(e.to_string(), Some(e))),
        }
    }

    /// The submitter's transaction count on the latest and the pending state.
    fn nonces(&self) -> Result<(u64, u64)> {
        let (provider, submitter) = (self.provider.clone(), self.submitter);
        self.block_on("reading the submitter's nonces", async move {
            let count = |tag| provider.get_transaction_count(submitter).block_id(tag);
            let latest = count(BlockId::latest()).await.map_err(ChainError::rpc("reading the nonce"))?;
            let pending = count(BlockId::pending()).await.map_err(ChainError::rpc("reading the nonce"))?;
            Ok((latest, pending))
        })
    }

    /// Sends a commit of batch `index` whose transaction input is `input` (and, for its
    /// data in blobs, `sidecar`) and waits for it (see the module docs).
    fn send_commit(
        &mut self,
        index: u64,
        input: Bytes,
        sidecar: Option<BlobTransactionSidecarEip7594>,
    ) -> Result<B256> {
        let provider = self.provider.clone();
        let mut request = TransactionRequest::default().from(self.submitter).to(self.address).input(input.into());
        if let Some(car) = &sidecar {
            request.blob_versioned_hashes = Some(car.versioned_hashes().collect());
        }
        // The nonces before the dry run: a commit of ours that lands in between then fails
        // the dry run, instead of this one going out at the next nonce only to revert.
        let (latest, pending) = self.nonces()?;
        let now = self.block_on("pricing the commit", fees_now(&provider, sidecar.is_some()))?.fees;
        if let Some(blob_fee) = now.blob {
            request.max_fee_per_blob_gas = Some(blob_fee);
        }
        // A dry run: a refusal comes back decoded, and nothing is spent on it; a transport
        // failure is not a refusal. A blob commit runs with its blobs' versioned hashes, so
        // that BLOBHASH answers as it will in the block.
        // On the latest state: the pending one may hold our own stuck commit of this batch.
        let dry = request.clone();
        let refused = self.block_on("simulating the commit", async {
            match provider.call(dry).block(BlockId::latest()).await {
                Ok(_) => Ok(None),
                Err(e) => match e.as_error_resp().and_then(|r| r.as_revert_data()) {
                    Some(data) => Ok(Some(revert_reason(&data).unwrap_or_else(|| e.to_string()))),
                    None => Err(ChainError::rpc("simulating the commit")(e)),
                },
            }
        })?;
        if let Some(reason) = refused {
            return Err(ChainError::Refused { index, reason });
        }
        // One transaction of ours pending (a commit whose wait timed out, or one sent before
        // a restart) is replaced: same nonce, higher fee, so that at most one lands. More
        // than one is not the submitter's doing; nothing is sent.
        if pending > latest.saturating_add(1) {
            return Err(ChainError::Pending { count: pending.saturating_sub(latest) });
        }
        let nonce = latest;
        let fees = first_price(now, pending > latest, self.in_flight, nonce, &self.policy);
        request = request.nonce(nonce);
        // Estimated on the latest state: the pending one may hold our own stuck commit.
        let gas = self.block_on("estimating the commit's gas", async {
            provider
                .estimate_gas(request.clone())
                .block(BlockId::latest())
                .await
                .map_err(ChainError::rpc("estimating the commit's gas"))
        })?;
        request.set_gas_limit(gas.saturating_add(gas / 5));
        request.sidecar = sidecar.map(BlobTransactionSidecarVariant::Eip7594);
        let receipt = self.send_and_wait(request, nonce, fees)?;
        if !receipt.status() {
            return Err(ChainError::Refused { index, reason: "the transaction reverted".into() });
        }
        Ok(receipt.transaction_hash)
    }
}

impl Chain for RpcChain {
    fn last_committed(&mut self) -> Result<(u64, B256)> {
        let contract = abi::L2xSettlement::new(self.address, self.provider.clone());
        let provider = self.provider.clone();
        self.block_on("reading the last committed batch", async move {
            // lastIndex() and lastRoot() at one block: one consistent reading even if a
            // commit lands between the two calls.
            let block = provider.get_block_number().await.map_err(ChainError::rpc("reading the head"))?;
            let index =
                contract.lastIndex().block(block.into()).call().await.map_err(ChainError::call("reading lastIndex"))?;
            let root =
                contract.lastRoot().block(block.into()).call().await.map_err(ChainError::call("reading lastRoot"))?;
            Ok((index, root))
        })
    }

    fn committed(&mut self, index: u64) -> Result<(B256, B256)> {
        let contract = abi::L2xSettlement::new(self.address, self.provider.clone());
        self.block_on("reading a committed batch", async move {
            let root = contract.roots(index).call().await.map_err(ChainError::call("reading roots"))?;
            let commitment =
                contract.commitments(index).call().await.map_err(ChainError::call("reading commitments"))?;
            Ok((root, commitment))
        })
    }

    fn commit(&mut self, batch: &Batch) -> Result<B256> {
        use alloy::sol_types::SolCall as _;
        let input = commit_call(batch)?.abi_encode();
        self.send_commit(batch.header.index, Bytes::from(input), None)
    }

    fn commit_blobs(&mut self, batch: &Batch) -> Result<B256> {
        let (input, sidecar) = blobs::commit_parts(batch)?;
        self.send_commit(batch.header.index, input, Some(sidecar))
    }

    fn verify_leaf(&mut self, index: u64, leaf: &crate::leaf::AccountLeaf, siblings: &[B256]) -> Result<bool> {
        let contract = abi::L2xSettlement::new(self.address, self.provider.clone());
        let sol_leaf = abi::L2xSettlement::AccountLeaf::from(leaf);
        let siblings = siblings.to_vec();
        self.block_on("verifying a leaf", async move {
            contract.verifyLeaf(index, sol_leaf, siblings).call().await.map_err(ChainError::call("verifyLeaf"))
        })
    }

    fn posted(&mut self, index: u64) -> Result<Posted> {
        let hash = self.commit_transaction(index)?;
        let provider = self.provider.clone();
        let tx = self.block_on("reading a commit's transaction", async move {
            provider.get_transaction_by_hash(hash).await.map_err(ChainError::rpc("reading a commit's transaction"))
        })?;
        let posted = |why| ChainError::Posted { index, why };
        let tx = tx.ok_or(posted(PostedError::NoTransaction { transaction: hash }))?;
        let at = format!("transaction {hash}");
        let to = alloy::consensus::Transaction::to(&tx);
        if to != Some(self.address) {
            let to = to.map_or_else(|| "a contract creation".to_owned(), |to| format!("sent to {to}"));
            let why = format!("{to}, not to the contract (a commit through another contract is not read)");
            return Err(posted(PostedError::NotACommit { at, why }));
        }
        let input = alloy::consensus::Transaction::input(&tx);
        let call = decode_commit_input(input).map_err(|why| posted(PostedError::NotACommit { at: at.clone(), why }))?;
        if call.index() != index {
            return Err(posted(PostedError::WrongIndex { at, got: call.index() }));
        }
        match call {
            CommitInput::Calldata(call) => Ok(Posted::of_calldata(call, Some(hash))),
            CommitInput::Blobs(call) => {
                let hashes = alloy::consensus::Transaction::blob_versioned_hashes(&tx)
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| posted(PostedError::NoBlobHashes { at: at.clone() }))?
                    .to_vec();
                // Only the blobs are fetched, and checked against the hashes read above (the
                // ones the commitment binds): a second answer about the transaction could
                // name other hashes.
                let blobs = self.fetch_blobs(hash)?;
                crate::blob::check_hashes(&blobs, &hashes)
                    .map_err(|e| posted(PostedError::Blobs { at, why: e.to_string() }))?;
                // Blobs that are the commit's but do not decode are a fact on chain (the
                // contract never reads them): the reader's finding, not an error.
                let data = crate::blob::decode(&blobs).map_err(|e| e.to_string());
                Ok(Posted::of_blobs(call, data, Some(hash), hashes))
            }
        }
    }
}

impl RpcChain {
    /// The transaction that emitted batch `index`'s `BatchCommitted` log on the canonical
    /// chain: exactly one such log on the contract's address, not removed by a reorg (the
    /// logs read once, in ranges, and kept: `logs`).
    fn commit_transaction(&mut self, index: u64) -> Result<B256> {
        self.commit_logs.transaction(&self.runtime, self.timeout, &self.provider, self.address, index)
    }
}

impl QueueReader for RpcChain {
    fn binding(&mut self) -> Result<(u64, Address, Address)> {
        let (provider, address) = (self.provider.clone(), self.address);
        self.block_on("reading the binding", async move {
            let chain_id = provider.get_chain_id().await.map_err(ChainError::rpc("reading the chain id"))?;
            let contract = abi::L2xSettlement::new(address, provider);
            let token = contract.token().call().await.map_err(ChainError::call("reading token"))?;
            Ok((chain_id, address, token))
        })
    }

    fn confirmed_block(&mut self, confirmations: u64) -> Result<Option<u64>> {
        let provider = self.provider.clone();
        let head = self.block_on("reading the head", async move {
            provider.get_block_number().await.map_err(ChainError::rpc("reading the head"))
        })?;
        // A head of u64::MAX (a bad answer) cannot overflow: head − (c − 1), if any.
        Ok(head.checked_sub(confirmations.max(1) - 1))
    }

    fn queue_length(&mut self, block: u64) -> Result<u64> {
        let contract = abi::L2xSettlement::new(self.address, self.provider.clone());
        self.block_on("reading queueLength", async move {
            contract.queueLength().block(block.into()).call().await.map_err(ChainError::call("reading queueLength"))
        })
    }

    fn queue_hash(&mut self, index: u64, block: u64) -> Result<B256> {
        let contract = abi::L2xSettlement::new(self.address, self.provider.clone());
        self.block_on("reading queueHashes", async move {
            contract
                .queueHashes(index)
                .block(block.into())
                .call()
                .await
                .map_err(ChainError::call("reading queueHashes"))
        })
    }

    fn entry(&mut self, index: u64, block: u64) -> Result<Entry> {
        let contract = abi::L2xSettlement::new(self.address, self.provider.clone());
        let e = self.block_on("reading entries", async move {
            contract.entries(index).block(block.into()).call().await.map_err(ChainError::call("reading entries"))
        })?;
        entry_of(index, &e)
    }
}
