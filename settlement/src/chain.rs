//! The base chain, as settlement sees it: the contract's committed state and a way to
//! commit a batch (docs/SETTLEMENT.md, "Chain backends").
//!
//! ```text
//!  Submitter ──▶ dyn Chain ──▶ RpcChain: alloy over JSON-RPC (any node; anvil in tests)
//!                          └─▶ EmbeddedChain: the same bytecode in revm, state in a file
//! ```
//!
//! The trait is synchronous: the submitter runs on its own thread, never on the sequencer.
//! [`RpcChain`] keeps a single-threaded tokio runtime and blocks on each call, with a
//! timeout, so a node that hangs is an error and not a stuck thread.

use std::time::Duration;

use alloy::eips::BlockId;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolValue;

use crate::batch::Batch;

/// The contract's interface (docs/SETTLEMENT.md, "Contract").
#[allow(clippy::too_many_arguments, reason = "generated: one argument per ABI parameter")]
pub mod abi {
    alloy::sol! {
        #[sol(rpc)]
        #[derive(Debug)]
        contract L2xSettlement {
            struct Position { uint32 instrument; int64 size; int128 cost; int128 fundingIndex; }
            struct AccountLeaf { uint64 account; int64 collateral; Position[] positions; }
            error NotSubmitter(address sender);
            error WrongIndex(uint64 expected, uint64 got);
            error WrongPreviousRoot(bytes32 expected, bytes32 got);
            error WrongDataHash(bytes32 expected, bytes32 got);
            event BatchCommitted(uint64 indexed index, bytes32 newRoot, bytes32 dataHash, uint64 firstSeq, uint64 lastSeq, uint64 epochTs);
            function submitter() external view returns (address);
            function lastIndex() external view returns (uint64);
            function lastRoot() external view returns (bytes32);
            function roots(uint64 index) external view returns (bytes32);
            function dataHashes(uint64 index) external view returns (bytes32);
            function commitBatch(uint64 index, bytes32 prevRoot, bytes32 newRoot, bytes32 dataHash, uint64 firstSeq, uint64 lastSeq, uint64 epochTs, bytes calldata data) external;
            function leafHash(AccountLeaf calldata leaf) external pure returns (bytes32);
            function verifyLeaf(uint64 index, AccountLeaf calldata leaf, bytes32[] calldata siblings) external view returns (bool);
        }
    }
}

impl From<&crate::leaf::AccountLeaf> for abi::L2xSettlement::AccountLeaf {
    /// The contract's view of a leaf: the same ABI struct, field for field.
    fn from(leaf: &crate::leaf::AccountLeaf) -> Self {
        abi::L2xSettlement::AccountLeaf {
            account: leaf.account,
            collateral: leaf.collateral,
            positions: leaf
                .positions
                .iter()
                .map(|p| abi::L2xSettlement::Position {
                    instrument: p.instrument,
                    size: p.size,
                    cost: p.cost,
                    fundingIndex: p.fundingIndex,
                })
                .collect(),
        }
    }
}

/// The contract call that commits `batch`: its header's fields and its data.
pub fn commit_call(batch: &Batch) -> abi::L2xSettlement::commitBatchCall {
    let h = batch.header;
    abi::L2xSettlement::commitBatchCall {
        index: h.index,
        prevRoot: h.prev_root,
        newRoot: h.new_root,
        dataHash: h.data_hash,
        firstSeq: h.first_seq,
        lastSeq: h.last_seq,
        epochTs: h.epoch_ts,
        data: Bytes::from(batch.data.clone()),
    }
}

/// The input of the transaction that commits `batch`: `commitBatch`'s selector and its
/// ABI-encoded arguments (where a verifier finds the batch's data on chain).
pub fn commit_input(batch: &Batch) -> Vec<u8> {
    use alloy::sol_types::SolCall as _;
    commit_call(batch).abi_encode()
}

/// The least gas the commit of `batch` can cost on a chain with EIP-7623 (Prague and
/// later): 21,000 plus 10 per zero byte and 40 per other byte of its input. A commit's
/// execution costs less than that for any batch with more than a few leaves, so this is
/// what it pays.
pub fn commit_floor_gas(batch: &Batch) -> u64 {
    21_000 + crate::batch::calldata_floor_gas(&commit_input(batch))
}

/// The committed contract artifact (`settlement/contracts/L2xSettlement.json`).
pub const ARTIFACT: &str = include_str!("../contracts/L2xSettlement.json");

/// The contract's creation code from the committed artifact, with `submitter` as its
/// constructor argument: what `RpcChain::deploy` sends and the embedded chain's genesis runs.
///
/// # Errors
/// [`ChainError::Config`] if the artifact has no bytecode (a broken build).
pub fn creation_code(submitter: Address) -> Result<Vec<u8>, ChainError> {
    let artifact: serde_json::Value =
        serde_json::from_str(ARTIFACT).map_err(|e| ChainError::Config(format!("the contract artifact: {e}")))?;
    let mut code = artifact["bytecode"]
        .as_str()
        .and_then(|h| alloy::hex::decode(h).ok())
        .ok_or_else(|| ChainError::Config("the contract artifact has no bytecode".into()))?;
    code.extend(submitter.abi_encode());
    Ok(code)
}

/// The runtime code a chain holds for the contract deployed with `submitter`: the
/// artifact's `deployedBytecode` with each of its `immutableReferences` (byte ranges the
/// constructor writes; here the `submitter` address as a 32-byte word) filled in. A
/// verifier comparing a chain's code with the artifact compares it with this (or masks
/// those ranges).
///
/// # Errors
/// [`ChainError::Config`] if the artifact lacks the code or its references (a broken build).
pub fn runtime_code(submitter: Address) -> Result<Vec<u8>, ChainError> {
    let bad = |what: &str| ChainError::Config(format!("the contract artifact: {what}"));
    let artifact: serde_json::Value = serde_json::from_str(ARTIFACT).map_err(|e| bad(&e.to_string()))?;
    let mut code = artifact["deployedBytecode"]
        .as_str()
        .and_then(|h| alloy::hex::decode(h).ok())
        .ok_or_else(|| bad("no deployedBytecode"))?;
    let word = submitter.into_word();
    let refs = artifact["immutableReferences"].as_array().ok_or_else(|| bad("no immutableReferences"))?;
    for r in refs {
        let (Some(start), Some(32)) = (r["start"].as_u64(), r["length"].as_u64()) else {
            return Err(bad("an immutable reference that is not a 32-byte word"));
        };
        let start = usize::try_from(start).map_err(|_| bad("an immutable reference out of range"))?;
        code.get_mut(start..start + 32)
            .ok_or_else(|| bad("an immutable reference past the code"))?
            .copy_from_slice(word.as_slice());
    }
    Ok(code)
}

/// The contract's reason for a revert, when its data is one of the contract's errors.
pub fn revert_reason(data: &[u8]) -> Option<String> {
    use abi::L2xSettlement::L2xSettlementErrors as E;
    use alloy::sol_types::SolInterface as _;
    Some(match E::abi_decode(data).ok()? {
        E::WrongIndex(x) => format!("WrongIndex(expected {}, got {})", x.expected, x.got),
        E::WrongPreviousRoot(x) => format!("WrongPreviousRoot(expected {}, got {})", x.expected, x.got),
        E::WrongDataHash(x) => format!("WrongDataHash(expected {}, got {})", x.expected, x.got),
        E::NotSubmitter(x) => format!("NotSubmitter({})", x.sender),
    })
}

/// Runs `fut` on `runtime`, failing with [`ChainError::Timeout`] naming `what` after
/// `timeout`.
fn within<T>(
    runtime: &tokio::runtime::Runtime,
    what: &'static str,
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T, ChainError>>,
) -> Result<T, ChainError> {
    runtime.block_on(async move {
        tokio::time::timeout(timeout, fut).await.map_err(|_| ChainError::Timeout { what, timeout })?
    })
}

/// What went wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The endpoint failed or answered something that is not a valid answer.
    #[error("{what}: {detail}")]
    Rpc {
        /// What was being done.
        what: &'static str,
        /// The client's error.
        detail: String,
    },
    /// No answer in time.
    #[error("{what}: no answer within {timeout:?}")]
    Timeout {
        /// What was being done.
        what: &'static str,
        /// The limit.
        timeout: Duration,
    },
    /// The address does not hold the settlement contract this submitter may use.
    #[error("{address} is not the l2x settlement contract for submitter {submitter}: {why}")]
    WrongContract {
        /// The address.
        address: Address,
        /// Our submitter address.
        submitter: Address,
        /// What did not match.
        why: String,
    },
    /// The contract refused the commit (its revert, decoded when it is one of its errors).
    #[error("batch {index} refused: {reason}")]
    Refused {
        /// The batch.
        index: u64,
        /// Why.
        reason: String,
    },
    /// The embedded chain's directory or state file.
    #[error("{path}: {detail}")]
    State {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// Bad configuration (a key or URL that does not parse).
    #[error("{0}")]
    Config(String),
    /// More than one transaction of the submitter is pending: not the submitter's doing,
    /// and nothing is sent until they land or leave.
    #[error("{count} transactions of the submitter still pending; not sending another")]
    Pending {
        /// How many.
        count: u64,
    },
    /// The commit's nonce was used by another transaction of the submitter's key (one sent
    /// before a restart, say): read the chain again to see whether the batch landed.
    #[error("nonce {nonce} was used by another transaction of the submitter; read the chain again")]
    NonceUsed {
        /// The nonce.
        nonce: u64,
    },
}

/// The base chain as settlement uses it.
pub trait Chain {
    /// The last committed batch's index and root (0 and `0x00…00` before the first).
    ///
    /// # Errors
    /// [`ChainError`].
    fn last_committed(&mut self) -> Result<(u64, B256), ChainError>;

    /// The root and the data hash committed by batch `index` (both `0x00…00` if none).
    ///
    /// # Errors
    /// [`ChainError`].
    fn committed(&mut self, index: u64) -> Result<(B256, B256), ChainError>;

    /// Commits a batch and waits until its transaction has the configured confirmations;
    /// returns the transaction hash.
    ///
    /// # Errors
    /// [`ChainError::Refused`] with the contract's reason, or the transport's errors.
    fn commit(&mut self, batch: &Batch) -> Result<B256, ChainError>;

    /// Asks the contract whether `leaf` is in batch `index`'s root by `siblings` (its
    /// `verifyLeaf`).
    ///
    /// # Errors
    /// The transport's.
    fn verify_leaf(
        &mut self,
        index: u64,
        leaf: &crate::leaf::AccountLeaf,
        siblings: &[B256],
    ) -> Result<bool, ChainError>;
}

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
}

/// How the submitter's transactions are priced, replaced when stuck, and waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendPolicy {
    /// How often a pending commit is looked at (receipt, still in the pool, confirmations),
    /// once it has been pending a while (the first looks come sooner).
    pub poll: Duration,
    /// A commit not in a block this long after it was sent is replaced: the same nonce at a
    /// higher fee.
    pub replace_after: Duration,
    /// Each replacement pays at least this much more than the one it replaces, in percent,
    /// on both the fee cap and the tip (nodes require 10 %).
    pub bump_percent: u128,
    /// The most the submitter pays per gas (wei): a spike above it waits instead of paying.
    pub max_fee_per_gas: u128,
    /// A commit not confirmed this long after it was first sent fails with
    /// [`ChainError::Timeout`] (its transaction may still land: the next commit replaces
    /// it or finds the batch on chain).
    pub give_up_after: Duration,
}

impl Default for SendPolicy {
    /// For Ethereum mainnet: look every second, replace after three slots unmined, bump by
    /// 12.5 %, never above 500 gwei, give up (for now) after ten minutes.
    fn default() -> SendPolicy {
        SendPolicy {
            poll: Duration::from_secs(1),
            replace_after: Duration::from_secs(36),
            bump_percent: 25 / 2,
            max_fee_per_gas: 500_000_000_000,
            give_up_after: RpcChain::CONFIRMATION_TIMEOUT,
        }
    }
}

/// A commit transaction sent and not known to be in a block yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InFlight {
    nonce: u64,
    fees: Fees,
}

/// EIP-1559 fees of a transaction, wei per gas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fees {
    max_fee: u128,
    tip: u128,
}

impl Fees {
    /// The larger of each.
    fn max(self, other: Fees) -> Fees {
        Fees { max_fee: self.max_fee.max(other.max_fee), tip: self.tip.max(other.tip) }
    }

    /// Both raised by `percent` (and by at least 1 wei).
    fn bumped(self, percent: u128) -> Fees {
        let up = |x: u128| x.saturating_add((x.saturating_mul(percent) / 100).max(1));
        Fees { max_fee: up(self.max_fee), tip: up(self.tip) }
    }
}

impl std::fmt::Debug for RpcChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcChain").field("contract", &self.address).field("submitter", &self.submitter).finish()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ChainError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ChainError::Config(format!("cannot start the RPC runtime: {e}")))
}

fn provider(url: &str, key: &str) -> Result<(DynProvider, Address), ChainError> {
    let signer: PrivateKeySigner =
        key.parse().map_err(|_| ChainError::Config("the submitter key is not a 32-byte hex private key".into()))?;
    let submitter = signer.address();
    let url = url.parse().map_err(|_| ChainError::Config(format!("{url:?} is not a URL")))?;
    // The nonce is asked of the node for every transaction (not cached): after a reorg or a
    // dropped transaction a cached nonce would be too high and the commit would never land.
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url);
    Ok((provider.erased(), submitter))
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
    pub fn connect(url: &str, key: &str, address: Address, confirmations: u64) -> Result<RpcChain, ChainError> {
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
    ) -> Result<RpcChain, ChainError> {
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
    pub fn read_only(url: &str, address: Address) -> Result<RpcChain, ChainError> {
        let parsed = url.parse().map_err(|_| ChainError::Config(format!("{url:?} is not a URL")))?;
        let provider = ProviderBuilder::new().connect_http(parsed).erased();
        let chain = RpcChain {
            runtime: runtime()?,
            provider,
            address,
            submitter: Address::ZERO,
            confirmations: 1,
            timeout: Self::TIMEOUT,
            policy: SendPolicy::default(),
            in_flight: None,
        };
        let contract = abi::L2xSettlement::new(address, chain.provider.clone());
        let provider = chain.provider.clone();
        let checked = chain.block_on("checking the contract", async move {
            let code = provider.get_code_at(address).await.map_err(|e| rpc("reading the contract's code", &e))?;
            if code.is_empty() {
                return Ok(Err("no code at that address".to_string()));
            }
            Ok(contract.lastIndex().call().await.map(|_| ()).map_err(|e| e.to_string()))
        })?;
        checked.map_err(|why| ChainError::WrongContract { address, submitter: Address::ZERO, why })?;
        Ok(chain)
    }

    /// Deploys the committed artifact with the key's address as submitter; returns the
    /// contract's address.
    ///
    /// # Errors
    /// As [`RpcChain::connect`].
    pub fn deploy(url: &str, key: &str) -> Result<Address, ChainError> {
        let (provider, submitter) = provider(url, key)?;
        let rt = runtime()?;
        let tx = TransactionRequest::default().with_deploy_code(Bytes::from(creation_code(submitter)?));
        within(&rt, "deploying", Self::CONFIRMATION_TIMEOUT, async {
            let pending = provider.send_transaction(tx).await.map_err(|e| rpc("deploying", &e))?;
            let receipt = pending.get_receipt().await.map_err(|e| rpc("deploying", &e))?;
            receipt.contract_address.ok_or_else(|| ChainError::Rpc {
                what: "deploying",
                detail: "no contract address in the receipt".into(),
            })
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

    /// What a commit sent now should pay: the tip the node suggests, and twice the next
    /// block's base fee on top (room for six full blocks in a row); and that base fee.
    async fn fees_now(provider: &DynProvider) -> Result<(Fees, u128), ChainError> {
        let history = provider
            .get_fee_history(1, alloy::eips::BlockNumberOrTag::Latest, &[])
            .await
            .map_err(|e| rpc("reading the base fee", &e))?;
        let base = history.next_block_base_fee().unwrap_or(0);
        let tip = provider.get_max_priority_fee_per_gas().await.map_err(|e| rpc("reading the tip", &e))?;
        Ok((Fees { max_fee: base.saturating_mul(2).saturating_add(tip), tip }, base))
    }

    fn block_on<T>(
        &self,
        what: &'static str,
        fut: impl std::future::Future<Output = Result<T, ChainError>>,
    ) -> Result<T, ChainError> {
        within(&self.runtime, what, self.timeout, fut)
    }

    /// Commits a batch and returns the gas its transaction used (benchmarks).
    ///
    /// # Errors
    /// As [`Chain::commit`].
    pub fn commit_for_gas(&mut self, batch: &Batch) -> Result<u64, ChainError> {
        let tx = self.commit(batch)?;
        let provider = self.provider.clone();
        let receipt = self.block_on("reading a receipt", async move {
            provider.get_transaction_receipt(tx).await.map_err(|e| rpc("reading a receipt", &e))
        })?;
        receipt.map(|r| r.gas_used).ok_or(ChainError::Rpc { what: "reading a receipt", detail: "no receipt".into() })
    }
}

/// What waiting for a commit needs of the chain.
struct Waiter {
    provider: DynProvider,
    submitter: Address,
    confirmations: u64,
    policy: SendPolicy,
    /// The time allowed to each RPC exchange inside the wait.
    timeout: Duration,
}

/// Looks in a row that must find a sent version unknown before it counts as dropped (a
/// load-balanced endpoint may not know a transaction for a moment after it was sent).
const UNKNOWN_LOOKS: u32 = 3;

/// Why a version is (re)sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resend {
    /// First, or replacing one stuck in the pool: must outbid it.
    Replace,
    /// The pool lost it: the same price will do.
    Dropped,
}

impl Waiter {
    /// One RPC exchange with the time allowed to it.
    async fn ask<T, E: std::fmt::Display>(
        &self,
        what: &'static str,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, ChainError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(rpc(what, &e)),
            Err(_) => Err(ChainError::Timeout { what, timeout: self.timeout }),
        }
    }

    /// Sends the commit, replaces it when it is stuck or dropped, and returns the receipt of
    /// whichever of its versions landed once it has the configured confirmations.
    ///
    /// Pricing: the first version pays `first` (the caller's price, which already outbids a
    /// pending transaction of ours); a replacement of a stuck version pays the price of the
    /// moment or the last version's plus `bump_percent`, whichever is higher; a dropped
    /// version is sent again at the higher of its price and the moment's. No version pays
    /// more than `max_fee_per_gas`; while the base fee alone is above it (a spike), nothing
    /// is sent and the commit waits, up to `give_up_after`. A failed look (the node briefly
    /// unreachable) is tried again on the next turn.
    async fn send_and_wait(
        &self,
        request: TransactionRequest,
        nonce: u64,
        first: Fees,
        in_flight: &mut Option<InFlight>,
    ) -> Result<alloy::rpc::types::TransactionReceipt, ChainError> {
        let policy = self.policy;
        // Every version sent: any of them may be the one a block includes.
        let mut sent: Vec<B256> = Vec::new();
        // The price of the last version the node took or turned down as underpriced.
        let mut last: Option<Fees> = None;
        let mut last_sent = tokio::time::Instant::now();
        let mut want = Some(Resend::Replace);
        let mut unknown_looks = 0;
        // When the nonce was first seen used by none of our versions (a node may mine a
        // transaction a moment before it serves its receipt: a conclusion must last).
        let mut nonce_used_since: Option<(tokio::time::Instant, u32)> = None;
        // Looks come quickly after a send (a node that mines at once has the receipt within
        // milliseconds), then slow down to `poll`.
        let first_pause = Duration::from_millis(10).min(policy.poll);
        let mut pause = first_pause;
        loop {
            if let Some(why) = want {
                match self.ask("pricing the commit", RpcChain::fees_now(&self.provider)).await {
                    Ok((now, base)) => {
                        let wanted = match (last, why) {
                            (None, _) => first.max(now),
                            (Some(previous), Resend::Dropped) => now.max(previous),
                            (Some(previous), Resend::Replace) => now.max(previous.bumped(policy.bump_percent)),
                        };
                        let price = Fees {
                            max_fee: wanted.max_fee.min(policy.max_fee_per_gas),
                            tip: wanted.tip.min(policy.max_fee_per_gas),
                        };
                        // A replacement must beat the version the pool holds; a re-sent
                        // dropped version has nothing to beat.
                        let outbids = why == Resend::Dropped
                            || last.is_none_or(|p| {
                                let needed = p.bumped(policy.bump_percent);
                                price.max_fee >= needed.max_fee && price.tip >= needed.tip
                            });
                        if base <= price.max_fee && outbids {
                            let tx = request.clone().max_fee_per_gas(price.max_fee).max_priority_fee_per_gas(price.tip);
                            match tokio::time::timeout(self.timeout, self.provider.send_transaction(tx)).await {
                                Ok(Ok(pending)) => {
                                    let hash = *pending.tx_hash();
                                    if !sent.contains(&hash) {
                                        sent.push(hash);
                                    }
                                    *in_flight = Some(InFlight { nonce, fees: price });
                                    last = Some(price);
                                    last_sent = tokio::time::Instant::now();
                                    want = None;
                                    unknown_looks = 0;
                                    pause = first_pause;
                                }
                                // A transaction of ours with this nonce is in the pool at a
                                // price we did not know: outbid it on the next turn.
                                Ok(Err(e)) if is_underpriced(&e) => {
                                    last = Some(price);
                                    want = Some(Resend::Replace);
                                }
                                Ok(Err(e)) if sent.is_empty() => return Err(rpc("sending the commit", &e)),
                                // A version already sent may still land; try again next turn.
                                Ok(Err(_)) | Err(_) => {}
                            }
                        }
                    }
                    Err(e) if sent.is_empty() => return Err(e),
                    // A version already sent may still land; price again next turn.
                    Err(_) => {}
                }
            }
            let looked = self.look(&sent, nonce).await;
            if !matches!(looked, Err(ChainError::NonceUsed { .. })) {
                nonce_used_since = None;
            }
            match looked {
                Ok(Look::Confirmed(receipt)) => return Ok(*receipt),
                Ok(Look::InBlock) => {
                    want = None;
                    unknown_looks = 0;
                }
                Ok(Look::Pending) if want.is_none() => match self.newest_known(&sent).await {
                    Ok(false) => {
                        unknown_looks += 1;
                        if unknown_looks >= UNKNOWN_LOOKS {
                            want = Some(Resend::Dropped);
                        }
                    }
                    Ok(true) => {
                        unknown_looks = 0;
                        if last_sent.elapsed() >= policy.replace_after {
                            want = Some(Resend::Replace);
                        }
                    }
                    Err(_) => {}
                },
                Ok(Look::Pending) => {}
                Err(e @ ChainError::NonceUsed { .. }) => {
                    let (since, looks) = nonce_used_since.get_or_insert((tokio::time::Instant::now(), 0));
                    *looks += 1;
                    if *looks >= UNKNOWN_LOOKS && since.elapsed() >= policy.poll {
                        return Err(e);
                    }
                }
                // The node briefly unreachable: look again on the next turn.
                Err(_) => {}
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(policy.poll);
        }
    }

    /// Whether the node knows the newest version sent (pending or in a block).
    async fn newest_known(&self, sent: &[B256]) -> Result<bool, ChainError> {
        let Some(&newest) = sent.last() else { return Ok(true) };
        let tx = self.ask("looking for the commit", self.provider.get_transaction_by_hash(newest)).await?;
        Ok(tx.is_some())
    }

    /// Where the commit is: a version in a block with the configured confirmations, in a
    /// block with fewer, or none in a block.
    async fn look(&self, sent: &[B256], nonce: u64) -> Result<Look, ChainError> {
        let provider = &self.provider;
        let mut landed = None;
        for hash in sent.iter().rev() {
            let receipt = self.ask("reading a receipt", provider.get_transaction_receipt(*hash)).await?;
            if receipt.is_some() {
                landed = receipt;
                break;
            }
        }
        if let Some(receipt) = landed {
            let Some(block) = receipt.block_number else { return Ok(Look::InBlock) };
            let head = self.ask("reading the block number", provider.get_block_number()).await?;
            let deep = head.saturating_sub(block).saturating_add(1) >= self.confirmations;
            return Ok(if deep { Look::Confirmed(Box::new(receipt)) } else { Look::InBlock });
        }
        let count = provider.get_transaction_count(self.submitter).block_id(BlockId::latest());
        let mined = self.ask("reading the nonce", count.into_future()).await?;
        if mined > nonce {
            // The nonce is used: by one of these versions whose receipt the node has not
            // indexed yet, or by a transaction that is none of them (one sent before a
            // restart) — then whether the batch landed is the chain's to say.
            for hash in sent {
                let tx = self.ask("looking for the commit", provider.get_transaction_by_hash(*hash)).await?;
                if tx.is_some_and(|t| t.block_number.is_some()) {
                    return Ok(Look::InBlock);
                }
            }
            return Err(ChainError::NonceUsed { nonce });
        }
        Ok(Look::Pending)
    }
}

/// Where a commit is (see `Waiter::look`).
enum Look {
    Confirmed(Box<alloy::rpc::types::TransactionReceipt>),
    InBlock,
    Pending,
}

/// Whether a node turned a transaction down because one with its nonce is pending at a
/// price it does not beat (geth: "replacement transaction underpriced"; anvil and others
/// word it alike).
fn is_underpriced(e: &dyn std::fmt::Display) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("underpriced") || text.contains("already known") || text.contains("replacement")
}

impl RpcChain {
    fn check_contract(&mut self) -> Result<(), ChainError> {
        let (address, submitter) = (self.address, self.submitter);
        let provider = self.provider.clone();
        let code = self.block_on("reading the contract's code", async move {
            provider.get_code_at(address).await.map_err(|e| rpc("reading the contract's code", &e))
        })?;
        if code.is_empty() {
            return Err(ChainError::WrongContract { address, submitter, why: "no code at that address".into() });
        }
        let contract = abi::L2xSettlement::new(address, self.provider.clone());
        let theirs = self.block_on("reading the contract's submitter", async move {
            contract.submitter().call().await.map_err(|e| rpc("reading the contract's submitter", &e))
        });
        match theirs {
            Ok(s) if s == submitter => Ok(()),
            Ok(s) => Err(ChainError::WrongContract { address, submitter, why: format!("its submitter is {s}") }),
            Err(e) => Err(ChainError::WrongContract { address, submitter, why: e.to_string() }),
        }
    }
}

fn rpc(what: &'static str, e: &dyn std::fmt::Display) -> ChainError {
    ChainError::Rpc { what, detail: e.to_string() }
}

/// The contract's reason for a refusal, decoded when it is one of its errors.
fn refusal(e: &alloy::contract::Error) -> String {
    e.as_revert_data().and_then(|data| revert_reason(&data)).unwrap_or_else(|| e.to_string())
}

impl Chain for RpcChain {
    fn last_committed(&mut self) -> Result<(u64, B256), ChainError> {
        let contract = abi::L2xSettlement::new(self.address, self.provider.clone());
        self.block_on("reading the last committed batch", async move {
            let index = contract.lastIndex().call().await.map_err(|e| rpc("reading lastIndex", &e))?;
            // A batch's root never changes once committed: (index, roots(index)) is one
            // consistent reading even if a block lands between the two calls.
            let root = if index == 0 {
                B256::ZERO
            } else {
                contract.roots(index).call().await.map_err(|e| rpc("reading roots", &e))?
            };
            Ok((index, root))
        })
    }

    fn committed(&mut self, index: u64) -> Result<(B256, B256), ChainError> {
        let contract = abi::L2xSettlement::new(self.address, self.provider.clone());
        self.block_on("reading a committed batch", async move {
            let root = contract.roots(index).call().await.map_err(|e| rpc("reading roots", &e))?;
            let data_hash = contract.dataHashes(index).call().await.map_err(|e| rpc("reading dataHashes", &e))?;
            Ok((root, data_hash))
        })
    }

    fn commit(&mut self, batch: &Batch) -> Result<B256, ChainError> {
        let contract = abi::L2xSettlement::new(self.address, self.provider.clone());
        let h = batch.header;
        let commit = commit_call(batch);
        let call = contract.call_builder(&commit);
        // The nonces before the dry run: a commit of ours that lands in between then fails
        // the dry run, instead of this one going out at the next nonce only to revert.
        let (provider, submitter) = (self.provider.clone(), self.submitter);
        let (latest, pending) = self.block_on("reading the submitter's nonces", async move {
            let count = |tag| provider.get_transaction_count(submitter).block_id(tag);
            let latest = count(BlockId::latest()).await.map_err(|e| rpc("reading the nonce", &e))?;
            let pending = count(BlockId::pending()).await.map_err(|e| rpc("reading the nonce", &e))?;
            Ok((latest, pending))
        })?;
        // A dry run: a refusal comes back decoded, and nothing is spent on it; a transport
        // failure is not a refusal.
        let refused = self.block_on("simulating the commit", async {
            match call.call().await {
                Ok(_) => Ok(None),
                Err(e) if e.as_revert_data().is_some() => Ok(Some(refusal(&e))),
                Err(e) => Err(rpc("simulating the commit", &e)),
            }
        })?;
        if let Some(reason) = refused {
            return Err(ChainError::Refused { index: h.index, reason });
        }
        // One transaction of ours pending (a commit whose wait timed out, or one sent before
        // a restart) is replaced: same nonce, higher fee, so that at most one lands. More
        // than one is not the submitter's doing; nothing is sent.
        if pending > latest.saturating_add(1) {
            return Err(ChainError::Pending { count: pending.saturating_sub(latest) });
        }
        let nonce = latest;
        let provider = self.provider.clone();
        let (mut fees, _) = self.block_on("pricing the commit", Self::fees_now(&provider))?;
        if pending > latest {
            fees = match self.in_flight.filter(|f| f.nonce == nonce) {
                Some(previous) => fees.max(previous.fees.bumped(self.policy.bump_percent)),
                // Sent before a restart, at a fee we do not know: outbid it generously (a
                // node that still finds it underpriced says so, and the price goes up).
                None => fees.bumped(100),
            };
        }
        let mut request = call.into_transaction_request().with_nonce(nonce);
        // Estimated on the latest state: the pending one may hold our own stuck commit.
        let gas = self.block_on("estimating the commit's gas", async {
            provider
                .estimate_gas(request.clone())
                .block(BlockId::latest())
                .await
                .map_err(|e| rpc("estimating the commit's gas", &e))
        })?;
        request.set_gas_limit(gas.saturating_add(gas / 5));
        let wait = Waiter {
            provider: self.provider.clone(),
            submitter: self.submitter,
            confirmations: self.confirmations,
            policy: self.policy,
            timeout: self.timeout,
        };
        let waiting = wait.send_and_wait(request, nonce, fees, &mut self.in_flight);
        let receipt = within(&self.runtime, "waiting for the commit", self.policy.give_up_after, waiting)?;
        self.in_flight = None;
        if !receipt.status() {
            return Err(ChainError::Refused { index: h.index, reason: "the transaction reverted".into() });
        }
        Ok(receipt.transaction_hash)
    }

    fn verify_leaf(
        &mut self,
        index: u64,
        leaf: &crate::leaf::AccountLeaf,
        siblings: &[B256],
    ) -> Result<bool, ChainError> {
        let contract = abi::L2xSettlement::new(self.address, self.provider.clone());
        let sol_leaf = abi::L2xSettlement::AccountLeaf::from(leaf);
        let siblings = siblings.to_vec();
        self.block_on("verifying a leaf", async move {
            contract.verifyLeaf(index, sol_leaf, siblings).call().await.map_err(|e| rpc("verifyLeaf", &e))
        })
    }
}
