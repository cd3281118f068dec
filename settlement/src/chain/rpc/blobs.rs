//! Batch data in blobs over JSON-RPC: the parts of a blob commit, and the blobs of a
//! transaction read back.
//!
//! Reading blobs back uses anvil's `anvil_getBlobsByTransactionHash`. A public network's
//! execution nodes do not serve blobs (they drop them once a block is built; the beacon
//! chain keeps them about 18 days, served by a beacon node's `blob_sidecars` API): l2x
//! reads blobs only from a node that serves anvil's endpoint (docs/SETTLEMENT.md, "Batch
//! data in blobs", known limitations).

use alloy::eips::eip7594::BlobTransactionSidecarEip7594;
use alloy::primitives::{B256, Bytes};
use alloy::providers::Provider;
use alloy::sol_types::SolCall as _;

use super::RpcChain;
use crate::batch::Batch;
use crate::blob;
use crate::chain::{ChainError, Result, batch_blobs, commit_blobs_call};

/// The input of `batch`'s blob commit (`commitBatchBlobs`) and the sidecar of its blobs.
///
/// # Errors
/// [`ChainError::Blobs`] for data that does not fit in one transaction's blobs (checked
/// first), [`ChainError::Batch`] for data that does not decode.
pub(super) fn commit_parts(batch: &Batch) -> Result<(Bytes, BlobTransactionSidecarEip7594)> {
    let index = batch.header.index;
    let blobs = batch_blobs(batch)?;
    let input = Bytes::from(commit_blobs_call(batch)?.abi_encode());
    let sidecar = blob::sidecar(blobs).map_err(ChainError::blobs(index))?;
    Ok((input, sidecar))
}

impl RpcChain {
    /// The blobs of transaction `tx`, in order, each checked against the versioned hash
    /// the transaction names for it (so a node cannot answer other bytes), from anvil's
    /// `anvil_getBlobsByTransactionHash`.
    ///
    /// # Errors
    /// [`ChainError::Incomplete`] for a transaction the node does not know, or one that
    /// carries no blob, or blobs the node does not have; [`ChainError::Blobs`] (index 0)
    /// for blobs that are not the transaction's; the transport's errors (a node without
    /// the endpoint answers "method not found").
    pub fn blobs_of_transaction(&self, tx: B256) -> Result<Vec<Bytes>> {
        let what = "reading a transaction's blobs";
        let provider = self.provider.clone();
        let hashes = self.block_on(what, async move {
            let found = provider.get_transaction_by_hash(tx).await.map_err(ChainError::rpc(what))?;
            let t = found.ok_or(ChainError::Incomplete { what, missing: "the node does not know the transaction" })?;
            alloy::consensus::Transaction::blob_versioned_hashes(&t)
                .filter(|h| !h.is_empty())
                .map(<[B256]>::to_vec)
                .ok_or(ChainError::Incomplete { what, missing: "the transaction carries no blob" })
        })?;
        let blobs = self.fetch_blobs(tx)?;
        blob::check_hashes(&blobs, &hashes).map_err(ChainError::blobs(0))?;
        Ok(blobs)
    }

    /// The batch data the blobs of transaction `tx` carry ([`blob::decode`] of
    /// [`RpcChain::blobs_of_transaction`]).
    ///
    /// # Errors
    /// As [`RpcChain::blobs_of_transaction`]; [`ChainError::Blobs`] for blobs that do not
    /// decode.
    pub fn blob_data_of_transaction(&self, tx: B256) -> Result<Vec<u8>> {
        let blobs = self.blobs_of_transaction(tx)?;
        blob::decode(&blobs).map_err(ChainError::blobs(0))
    }

    /// The blobs the node answers for transaction `tx` (`anvil_getBlobsByTransactionHash`),
    /// **unchecked**: the caller checks them against the versioned hashes it holds
    /// ([`blob::check_hashes`]), so that the hashes and the blobs come from one answer
    /// about the transaction each, never a second answer about its hashes.
    ///
    /// # Errors
    /// [`ChainError::Incomplete`] if the node has no blobs for it; the transport's.
    pub(super) fn fetch_blobs(&self, tx: B256) -> Result<Vec<Bytes>> {
        let what = "reading a transaction's blobs";
        let provider = self.provider.clone();
        self.block_on(what, async move {
            // As bytes on the heap: a 128 KiB `Blob` passed by value through serde's frames
            // can overflow a small thread stack.
            let blobs: Option<Vec<Bytes>> = provider
                .raw_request("anvil_getBlobsByTransactionHash".into(), (tx,))
                .await
                .map_err(ChainError::rpc(what))?;
            blobs.ok_or(ChainError::Incomplete { what, missing: "the node has no blobs for it" })
        })
    }
}
