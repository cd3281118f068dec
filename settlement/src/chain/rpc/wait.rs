//! Sending a commit and waiting for its confirmations: the I/O around
//! [`Resender`](super::super::fees::Resender), which decides (see `chain::fees`).
//!
//! Each turn: price and send a version if one is due, look where the commit is, pause.
//! Every version sent is remembered, because any of them may be the one a block includes.
//! The whole wait is bounded by `give_up_after` (the resender's deadline, and a timeout
//! around the wait as well, for a turn that overruns it); each RPC exchange by the
//! chain's timeout.

use std::time::Duration;

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};

use super::super::fees::{Fees, GiveUp, InFlight, Next, Resender, Seen, Sent};
use super::{RpcChain, fees_now, within};
use crate::chain::{ChainError, Result};

/// What waiting for a commit needs of the chain.
struct Waiter<'a> {
    provider: &'a DynProvider,
    submitter: Address,
    confirmations: u64,
    nonce: u64,
    /// The time allowed to each RPC exchange inside the wait.
    timeout: Duration,
    /// The time allowed to the whole wait.
    give_up_after: Duration,
    /// Every version sent (any of them may be the one a block includes).
    sent: Vec<B256>,
}

/// Where a commit is (see [`Waiter::look`]).
enum Look {
    Confirmed(Box<TransactionReceipt>),
    InBlock,
    Pending,
}

/// Whether a node turned a transaction down because one with its nonce is pending at a
/// price it does not beat (geth: "replacement transaction underpriced"; anvil and others
/// word it alike).
fn is_underpriced(e: &alloy::transports::TransportError) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("underpriced") || text.contains("already known") || text.contains("replacement")
}

impl RpcChain {
    /// Sends the commit, replaces it when it is stuck or dropped, and returns the receipt
    /// of whichever of its versions landed once it has the configured confirmations. The
    /// first version pays at least `first`.
    pub(super) fn send_and_wait(
        &mut self,
        request: TransactionRequest,
        nonce: u64,
        first: Fees,
    ) -> Result<TransactionReceipt> {
        let give_up_after = self.policy.give_up_after;
        let mut waiter = Waiter {
            provider: &self.provider,
            submitter: self.submitter,
            confirmations: self.confirmations,
            nonce,
            timeout: self.timeout,
            give_up_after,
            sent: Vec::new(),
        };
        let resender = Resender::new(self.policy, first);
        let waiting = waiter.run(resender, request, &mut self.in_flight);
        let receipt = within(&self.runtime, "waiting for the commit", give_up_after, waiting)?;
        self.in_flight = None;
        Ok(receipt)
    }
}

impl Waiter<'_> {
    /// One RPC exchange with the time allowed to it.
    async fn ask<T>(&self, what: &'static str, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, fut).await.unwrap_or(Err(ChainError::Timeout { what, timeout }))
    }

    /// The turns of the wait, until the resender says it is over.
    async fn run(
        &mut self,
        mut resender: Resender,
        request: TransactionRequest,
        in_flight: &mut Option<InFlight>,
    ) -> Result<TransactionReceipt> {
        let start = tokio::time::Instant::now();
        loop {
            if resender.wants_price() {
                self.price_and_send(&mut resender, &request, in_flight, start).await?;
            }
            let (seen, receipt) = self.observe(&resender).await;
            match (resender.observe(seen, start.elapsed()), receipt) {
                (Next::Done, Some(receipt)) => return Ok(receipt),
                (Next::GiveUp(GiveUp::NonceUsed), _) => return Err(ChainError::NonceUsed { nonce: self.nonce }),
                (Next::GiveUp(GiveUp::Deadline), _) => {
                    return Err(ChainError::Timeout { what: "waiting for the commit", timeout: self.give_up_after });
                }
                _ => {}
            }
            tokio::time::sleep(resender.pause()).await;
        }
    }

    /// Prices the due version and sends it if the resender finds a price for it.
    async fn price_and_send(
        &mut self,
        resender: &mut Resender,
        request: &TransactionRequest,
        in_flight: &mut Option<InFlight>,
        start: tokio::time::Instant,
    ) -> Result<()> {
        let blobs = request.sidecar.is_some();
        let moment = match self.ask("pricing the commit", fees_now(self.provider, blobs)).await {
            Ok(priced) => priced,
            Err(e) if resender.failure_ends_wait() => return Err(e),
            // A version already sent may still land; price again next turn.
            Err(_) => return Ok(()),
        };
        let Some(price) = resender.price(moment.fees, moment.base, moment.blob_base) else { return Ok(()) };
        let mut tx = request.clone().max_fee_per_gas(price.max_fee).max_priority_fee_per_gas(price.tip);
        tx.max_fee_per_blob_gas = price.blob;
        let (outcome, error) = match tokio::time::timeout(self.timeout, self.provider.send_transaction(tx)).await {
            Ok(Ok(pending)) => {
                let hash = *pending.tx_hash();
                if !self.sent.contains(&hash) {
                    self.sent.push(hash);
                }
                *in_flight = Some(InFlight { nonce: self.nonce, fees: price });
                (Sent::Accepted, None)
            }
            Ok(Err(e)) if is_underpriced(&e) => (Sent::Underpriced, None),
            Ok(Err(e)) => (Sent::Failed, Some(ChainError::rpc("sending the commit")(e))),
            Err(_) => (Sent::NoAnswer, None),
        };
        match (resender.sent(price, outcome, start.elapsed()), error) {
            (Next::Abort, Some(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// One look at where the commit is, as the resender wants it; the receipt if confirmed.
    async fn observe(&self, resender: &Resender) -> (Seen, Option<TransactionReceipt>) {
        match self.look().await {
            Ok(Look::Confirmed(receipt)) => (Seen::Confirmed, Some(*receipt)),
            Ok(Look::InBlock) => (Seen::InBlock, None),
            Ok(Look::Pending) if resender.wants_newest_known() => {
                (Seen::Pending { newest_known: self.newest_known().await.ok() }, None)
            }
            Ok(Look::Pending) => (Seen::Pending { newest_known: None }, None),
            Err(ChainError::NonceUsed { .. }) => (Seen::NonceUsed, None),
            // The node briefly unreachable: look again on the next turn.
            Err(_) => (Seen::Failed, None),
        }
    }

    /// Whether the node knows the newest version sent (pending or in a block).
    async fn newest_known(&self) -> Result<bool> {
        let Some(&newest) = self.sent.last() else { return Ok(true) };
        let what = "looking for the commit";
        Ok(self.ask(what, self.rpc(what, self.provider.get_transaction_by_hash(newest))).await?.is_some())
    }

    /// A transport call's error as a [`ChainError::Rpc`] naming `what`.
    async fn rpc<T>(
        &self,
        what: &'static str,
        fut: impl std::future::Future<Output = std::result::Result<T, alloy::transports::TransportError>>,
    ) -> Result<T> {
        fut.await.map_err(ChainError::rpc(what))
    }

    /// Where the commit is: a version in a block with the configured confirmations, in a
    /// block with fewer, or none in a block.
    async fn look(&self) -> Result<Look> {
        let provider = self.provider;
        let mut landed = None;
        for hash in self.sent.iter().rev() {
            let what = "reading a receipt";
            let receipt = self.ask(what, self.rpc(what, provider.get_transaction_receipt(*hash))).await?;
            if receipt.is_some() {
                landed = receipt;
                break;
            }
        }
        if let Some(receipt) = landed {
            let Some(block) = receipt.block_number else { return Ok(Look::InBlock) };
            let what = "reading the block number";
            let head = self.ask(what, self.rpc(what, provider.get_block_number())).await?;
            let deep = head.saturating_sub(block).saturating_add(1) >= self.confirmations;
            return Ok(if deep { Look::Confirmed(Box::new(receipt)) } else { Look::InBlock });
        }
        let count = provider.get_transaction_count(self.submitter).block_id(BlockId::latest());
        let mined = self.ask("reading the nonce", self.rpc("reading the nonce", count.into_future())).await?;
        if mined > self.nonce {
            // The nonce is used: by one of these versions whose receipt the node has not
            // indexed yet, or by a transaction that is none of them (one sent before a
            // restart) — then whether the batch landed is the chain's to say.
            for hash in &self.sent {
                let what = "looking for the commit";
                let tx = self.ask(what, self.rpc(what, provider.get_transaction_by_hash(*hash))).await?;
                if tx.is_some_and(|t| t.block_number.is_some()) {
                    return Ok(Look::InBlock);
                }
            }
            return Err(ChainError::NonceUsed { nonce: self.nonce });
        }
        Ok(Look::Pending)
    }
}
