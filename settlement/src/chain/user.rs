//! A user of the vault on either chain: an account's owner, a depositor, anyone who freezes
//! the contract or reads its queue. One way to call and send, whichever chain is behind it,
//! so that the commands of owners and operators (`l2x settle deposit`, `escape`, …) are
//! written once.
//!
//! ```text
//!  L1User::rpc(url, vault, key)      a node: signed by the key (alloy, the submitter's
//!                                    provider set-up: nonce asked, gas and fees estimated)
//!  L1User::embedded(chain, sender)   the embedded chain: unsigned, sent as `sender`
//!
//!  view(to, call)   ─▶ the answer at the latest block; a revert decoded
//!  send(to, call)   ─▶ rpc:      dry run as the sender (a revert comes back decoded and
//!                                costs nothing) ─▶ send ─▶ on_broadcast(its hash)
//!                                ─▶ wait for the receipt (failing: Unconfirmed, the hash)
//!                      embedded: transact(sender, to, data): a block of its own
//!                   ─▶ Sent { tx hash (a node's), block, gas, logs }
//!  head()           ─▶ the latest block's number and time (embedded: the chain's time)
//!  view_at(head, …) ─▶ the answer at that block: several reads of one state
//! ```
//!
//! # Design
//!
//! The key decides who the user is on both chains: on a node it signs, on the embedded
//! chain (which signs nothing) its address is the sender. So the same command, with the
//! same key, does the same thing on either chain. Without a key the user can only read.
//!
//! Refusals read the same on both chains: [`ChainError::Reverted`] with the reason in
//! words — one of the settlement contract's errors with its fields
//! (`ClaimNotYet(availableAt 1700000000)`), one of the test token's, a Solidity string or
//! panic — decoded by the code the embedded chain uses.
//!
//! # Known limitations
//!
//! - A transaction is waited for until it is in a block (one confirmation), for at most
//!   [`RpcChain::CONFIRMATION_TIMEOUT`](super::RpcChain::CONFIRMATION_TIMEOUT) (or what
//!   [`L1User::set_receipt_timeout`] says); it is never
//!   replaced or re-priced (the submitter's sending rules are for its commits only).
//! - Once a node accepted a transaction, a failed wait for its receipt (a timeout, the
//!   node gone) is [`ChainError::Unconfirmed`] with the hash: the transaction may still
//!   be mined, so sending it again may do it twice. Check the hash first.
//! - A transaction that passed its dry run but reverted when mined (the chain changed in
//!   between) is reported as such, without a reason: a mined revert carries none.

use std::time::Duration;

use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::network::{Ethereum, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, Log};
use alloy::providers::{DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;

use super::rpc::{check_vault, parse_url, runtime, signed_provider, within};
use super::{ChainError, Result, RpcChain};
use crate::embedded::{CHAIN_ID, EmbeddedChain, revert_words, token_address};

/// The address of a private key given as hex (with or without `0x`).
///
/// # Errors
/// [`ChainError::Config`] if it is not a 32-byte hex private key (the error does not repeat
/// it).
pub fn address_of(key: &str) -> Result<Address> {
    signer(key).map(|s| s.address())
}

/// The signer of a private key given as hex (with or without `0x`): the one parser of keys
/// for the submitter's chain and the users'.
///
/// # Errors
/// [`ChainError::Config`] if it is not a 32-byte hex private key (the error does not repeat
/// it).
pub(super) fn signer(key: &str) -> Result<PrivateKeySigner> {
    key.parse().map_err(|_| ChainError::Config("the key is not a 32-byte hex private key".into()))
}

/// A user of the vault on either chain (see the module docs).
pub struct L1User {
    vault: Address,
    sender: Option<Address>,
    backend: Backend,
    /// Told each transaction's hash as soon as a node accepted it, before its receipt.
    on_broadcast: Option<Box<dyn FnMut(B256) + Send>>,
    /// How long a transaction's receipt is waited for.
    receipt_timeout: Duration,
}

/// The latest block, as read once: its number and time. Reads made "at" it
/// ([`L1User::view_at`]) all see the same state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Its number.
    pub block: u64,
    /// Its timestamp (on the embedded chain, the chain's time: moved on by
    /// `advance_time` since).
    pub time: u64,
}

enum Backend {
    Rpc { runtime: tokio::runtime::Runtime, provider: DynProvider },
    Embedded(Box<EmbeddedChain>),
}

impl std::fmt::Debug for L1User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            Backend::Rpc { .. } => "rpc",
            Backend::Embedded(_) => "embedded",
        };
        f.debug_struct("L1User")
            .field("vault", &self.vault)
            .field("sender", &self.sender)
            .field("backend", &backend)
            .finish()
    }
}

/// What a transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Its hash on a node (`None` on the embedded chain, whose transactions are not signed
    /// and have none).
    pub tx_hash: Option<B256>,
    /// The block it is in.
    pub block: u64,
    /// Gas it used.
    pub gas_used: u64,
    /// The events it emitted, in order.
    pub logs: Vec<Log>,
}

impl L1User {
    /// The time allowed for one read.
    const TIMEOUT: Duration = RpcChain::TIMEOUT;

    /// The vault at `vault` on the node at `url`, as the holder of `key` (`None`: read
    /// only). Checks that the address holds code answering the contract's `lastIndex()`.
    ///
    /// # Errors
    /// [`ChainError::Config`] for a key or URL that does not parse,
    /// [`ChainError::WrongContract`], the transport's errors.
    pub fn rpc(url: &str, vault: Address, key: Option<&str>) -> Result<L1User> {
        let (provider, sender) = match key {
            Some(key) => {
                let signer = signer(key)?;
                let sender = signer.address();
                (signed_provider(url, signer)?, Some(sender))
            }
            None => (ProviderBuilder::new().connect_http(parse_url(url)?).erased(), None),
        };
        let runtime = runtime()?;
        let checking = provider.clone();
        within(&runtime, "checking the contract", Self::TIMEOUT, async move { check_vault(&checking, vault).await })?;
        Ok(L1User {
            vault,
            sender,
            backend: Backend::Rpc { runtime, provider },
            on_broadcast: None,
            receipt_timeout: RpcChain::CONFIRMATION_TIMEOUT,
        })
    }

    /// The embedded chain's vault, as `sender` (`None`: read only; a chain opened
    /// read-only can only be read whatever the sender).
    pub fn embedded(chain: EmbeddedChain, sender: Option<Address>) -> L1User {
        L1User {
            vault: chain.address(),
            sender,
            backend: Backend::Embedded(Box::new(chain)),
            on_broadcast: None,
            receipt_timeout: RpcChain::CONFIRMATION_TIMEOUT,
        }
    }

    /// Calls `tell` with each transaction's hash as soon as the node accepted it, before
    /// its receipt is waited for (a command prints it: if the wait then fails, the
    /// transaction may still be mined, and its hash says which to look for). Never called
    /// on the embedded chain, whose transactions have no hash and no wait.
    pub fn on_broadcast(&mut self, tell: impl FnMut(B256) + Send + 'static) {
        self.on_broadcast = Some(Box::new(tell));
    }

    /// Waits at most `timeout` for each transaction's receipt from now on (default
    /// [`RpcChain::CONFIRMATION_TIMEOUT`]); past it, [`ChainError::Unconfirmed`].
    pub fn set_receipt_timeout(&mut self, timeout: Duration) {
        self.receipt_timeout = timeout;
    }

    /// The settlement contract (the vault).
    pub fn vault(&self) -> Address {
        self.vault
    }

    /// Who sends: the key's address (`None`: read only).
    pub fn sender(&self) -> Option<Address> {
        self.sender
    }

    /// The embedded chain behind this user, if that is the chain (its own operations:
    /// `advance_time`, `mint_test_usd`).
    pub fn embedded_chain(&mut self) -> Option<&mut EmbeddedChain> {
        match &mut self.backend {
            Backend::Embedded(chain) => Some(chain),
            Backend::Rpc { .. } => None,
        }
    }

    /// The chain id.
    ///
    /// # Errors
    /// The transport's.
    pub fn chain_id(&self) -> Result<u64> {
        match &self.backend {
            Backend::Embedded(_) => Ok(CHAIN_ID),
            Backend::Rpc { runtime, provider } => within(runtime, "reading the chain id", Self::TIMEOUT, async {
                provider.get_chain_id().await.map_err(ChainError::rpc("reading the chain id"))
            }),
        }
    }

    /// The chain's time: the latest block's timestamp (on the embedded chain, that moved on
    /// by `advance_time` since). The next block's time is later.
    ///
    /// # Errors
    /// As [`L1User::head`].
    pub fn chain_time(&self) -> Result<u64> {
        self.head().map(|head| head.time)
    }

    /// The latest block: its number and time, read together.
    ///
    /// # Errors
    /// The transport's; [`ChainError::Incomplete`] for a node without a latest block.
    pub fn head(&self) -> Result<Head> {
        match &self.backend {
            Backend::Embedded(chain) => Ok(Head { block: chain.block(), time: chain.timestamp() }),
            Backend::Rpc { runtime, provider } => within(runtime, "reading the latest block", Self::TIMEOUT, async {
                let block = provider
                    .get_block_by_number(BlockNumberOrTag::Latest)
                    .await
                    .map_err(ChainError::rpc("reading the latest block"))?;
                block
                    .map(|b| Head { block: b.header.number, time: b.header.timestamp })
                    .ok_or(ChainError::Incomplete { what: "reading the latest block", missing: "no latest block" })
            }),
        }
    }

    /// Whether `token` is l2x's test token (its code is `L2xTestUSD`'s exactly; on the
    /// embedded chain, the genesis's token).
    ///
    /// # Errors
    /// The transport's; [`ChainError::Artifact`] for a broken build.
    pub fn is_test_token(&self, token: Address) -> Result<bool> {
        match &self.backend {
            Backend::Embedded(_) => Ok(token == token_address()),
            Backend::Rpc { runtime, provider } => {
                let ours = super::test_usd_runtime_code()?;
                let code = within(runtime, "reading the token's code", Self::TIMEOUT, async {
                    provider.get_code_at(token).await.map_err(ChainError::rpc("reading the token's code"))
                })?;
                Ok(code[..] == ours[..])
            }
        }
    }

    /// Calls `to` with `call` at the latest block and decodes its answer (the caller is the
    /// sender, or the zero address).
    ///
    /// # Errors
    /// [`ChainError::Reverted`] with the reason in words; [`ChainError::Decode`] for an
    /// answer that does not decode; the transport's.
    pub fn view<C: SolCall>(&self, to: Address, call: &C) -> Result<C::Return> {
        self.call_at(BlockId::latest(), to, call)
    }

    /// [`L1User::view`] at the block `head` (on the embedded chain, whose reads are of
    /// its one state, the same as [`L1User::view`]).
    ///
    /// # Errors
    /// As [`L1User::view`].
    pub fn view_at<C: SolCall>(&self, head: Head, to: Address, call: &C) -> Result<C::Return> {
        self.call_at(BlockId::number(head.block), to, call)
    }

    fn call_at<C: SolCall>(&self, block: BlockId, to: Address, call: &C) -> Result<C::Return> {
        let data = Bytes::from(call.abi_encode());
        let from = self.sender.unwrap_or(Address::ZERO);
        let output = match &self.backend {
            Backend::Embedded(chain) => chain.call(to, data)?,
            Backend::Rpc { runtime, provider } => {
                let request = TransactionRequest::default().with_from(from).with_to(to).with_input(data);
                within(runtime, "calling the contract", Self::TIMEOUT, dry_run(provider, request, block, from, to))?
            }
        };
        C::abi_decode_returns(&output)
            .map_err(|e| ChainError::Decode { what: "decoding a contract's answer", source: Box::new(e) })
    }

    /// Sends `call` to `to` as the sender and waits until it is in a block.
    ///
    /// # Errors
    /// [`ChainError::Config`] without a key (or on an embedded chain opened read-only);
    /// [`ChainError::Reverted`] with the reason in words (nothing spent: it was a dry run);
    /// the transport's; [`ChainError::Timeout`] if it is not in a block in time.
    pub fn send<C: SolCall>(&mut self, to: Address, call: &C) -> Result<Sent> {
        let from = self.sender.ok_or_else(|| ChainError::Config("no key: this user can only read".into()))?;
        let data = Bytes::from(call.abi_encode());
        match &mut self.backend {
            Backend::Embedded(chain) => {
                let receipt = chain.transact(from, to, data)?;
                Ok(Sent { tx_hash: None, block: receipt.block, gas_used: receipt.gas_used, logs: receipt.logs })
            }
            Backend::Rpc { runtime, provider } => {
                let request = TransactionRequest::default().with_from(from).with_to(to).with_input(data);
                let latest = BlockId::latest();
                within(
                    runtime,
                    "dry-running the transaction",
                    Self::TIMEOUT,
                    dry_run(provider, request.clone(), latest, from, to),
                )?;
                let pending = within(runtime, "sending the transaction", Self::TIMEOUT, async {
                    provider.send_transaction(request).await.map_err(ChainError::rpc("sending the transaction"))
                })?;
                let tx = *pending.tx_hash();
                if let Some(tell) = &mut self.on_broadcast {
                    tell(tx);
                }
                within(
                    runtime,
                    "waiting for the transaction's receipt",
                    self.receipt_timeout,
                    receipt(pending, from, to),
                )
                .map_err(|e| match e {
                    mined @ ChainError::Reverted { .. } => mined,
                    unseen => ChainError::Unconfirmed { tx, source: Box::new(unseen) },
                })
            }
        }
    }
}

/// `eth_call` of `request` at `block`; a revert decoded.
async fn dry_run(
    provider: &DynProvider,
    request: TransactionRequest,
    block: BlockId,
    from: Address,
    to: Address,
) -> Result<Bytes> {
    match provider.call(request).block(block).await {
        Ok(output) => Ok(output),
        Err(e) => match e.as_error_resp().and_then(|payload| payload.as_revert_data()) {
            Some(data) => Err(ChainError::Reverted { from, to, reason: revert_words(&data) }),
            None => Err(ChainError::rpc("calling the contract")(e)),
        },
    }
}

/// Waits for the receipt of a transaction sent.
async fn receipt(pending: PendingTransactionBuilder<Ethereum>, from: Address, to: Address) -> Result<Sent> {
    let receipt = pending
        .get_receipt()
        .await
        .map_err(|e| ChainError::Receipt { what: "waiting for the transaction", source: Box::new(e) })?;
    if !receipt.status() {
        let reason = format!(
            "transaction {} reverted when mined, after its dry run passed (the chain changed in between)",
            receipt.transaction_hash
        );
        return Err(ChainError::Reverted { from, to, reason });
    }
    let block = receipt
        .block_number
        .ok_or(ChainError::Incomplete { what: "the transaction's receipt", missing: "no block number" })?;
    let logs = receipt.inner.logs().iter().map(|l| l.inner.clone()).collect();
    Ok(Sent { tx_hash: Some(receipt.transaction_hash), block, gas_used: receipt.gas_used, logs })
}
