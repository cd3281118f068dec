//! The contract's `BatchCommitted` logs, read once for a run and kept: what `posted(index)`
//! looks a batch's commit transaction up in (docs/SETTLEMENT.md, "Finding a batch on chain").
//!
//! ```text
//!  lookup(index) ──▶ index not seen yet? scan from the block after the last read to the head:
//!                      eth_blockNumber, then eth_getLogs per range of LOG_RANGE blocks
//!                      (address = the contract, topic 0 = BatchCommitted's signature hash)
//!                ──▶ by_index[index]: the transaction hash of each log not removed
//! ```
//!
//! | part | does |
//! |---|---|
//! | [`CommitLogs::scan`] | reads blocks `through + 1 ..= head` in ranges of [`LOG_RANGE`] blocks (providers that cap a log query's range take these), indexes the logs by topic 1 |
//! | [`CommitLogs::transaction`] | exactly one log for the index: its transaction hash; none, two or more, or one without a hash: `PostedError` |
//!
//! Invariants: every block from 0 to `through` has been read exactly once; a log marked
//! `removed` (a reorg) is not counted. The cache lives as long as the `RpcChain`: a run
//! reads the chain as it stood when each range was read (a rebuild reads `lastIndex()`
//! first, so every batch it asks for is in the blocks read). An index not in the cache is
//! looked for once more in the blocks added since, then answered `NoLog`.

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEvent as _;

use super::within;
use crate::chain::{ChainError, PostedError, Result, abi};

/// The blocks one `eth_getLogs` asks for (many providers refuse a wider range).
pub const LOG_RANGE: u64 = 10_000;

/// The `BatchCommitted` logs read so far.
#[derive(Debug, Default)]
pub(super) struct CommitLogs {
    /// The last block read (`None`: nothing read yet).
    through: Option<u64>,
    /// Per batch index, the transaction hash of each of its logs not removed (`None`: the
    /// log has none).
    by_index: BTreeMap<u64, Vec<Option<B256>>>,
}

impl CommitLogs {
    /// The transaction of batch `index`'s one `BatchCommitted` log, scanning the blocks not
    /// read yet if the index has not been seen.
    pub(super) fn transaction(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        timeout: std::time::Duration,
        provider: &DynProvider,
        address: Address,
        index: u64,
    ) -> Result<B256> {
        if !self.by_index.contains_key(&index) {
            self.scan(runtime, timeout, provider, address)?;
        }
        let posted = |why| ChainError::Posted { index, why };
        match self.by_index.get(&index).map(Vec::as_slice).unwrap_or_default() {
            [] => Err(posted(PostedError::NoLog)),
            [hash] => hash.ok_or(posted(PostedError::NoTransactionHash)),
            more => Err(posted(PostedError::Logs { count: more.len() })),
        }
    }

    /// Reads the blocks after `through` up to the head, [`LOG_RANGE`] at a time.
    fn scan(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        timeout: std::time::Duration,
        provider: &DynProvider,
        address: Address,
    ) -> Result<()> {
        let p = provider.clone();
        let head = within(runtime, "reading the head", timeout, async move {
            p.get_block_number().await.map_err(ChainError::rpc("reading the head"))
        })?;
        let mut from = self.through.map_or(0, |t| t.saturating_add(1));
        while from <= head {
            let to = from.saturating_add(LOG_RANGE - 1).min(head);
            let filter = Filter::new()
                .address(address)
                .event_signature(abi::L2xSettlement::BatchCommitted::SIGNATURE_HASH)
                .from_block(from)
                .to_block(to);
            let p = provider.clone();
            let logs = within(runtime, "reading BatchCommitted logs", timeout, async move {
                p.get_logs(&filter).await.map_err(ChainError::rpc("reading BatchCommitted logs"))
            })?;
            for log in logs.iter().filter(|log| !log.removed) {
                let index = batch_index(log)?;
                self.by_index.entry(index).or_default().push(log.transaction_hash);
            }
            self.through = Some(to);
            if to == u64::MAX {
                break;
            }
            from = to + 1;
        }
        Ok(())
    }
}

/// A `BatchCommitted` log's batch index (topic 1, a `uint64`).
fn batch_index(log: &Log) -> Result<u64> {
    let what = "reading BatchCommitted logs";
    let topic = log.topics().get(1).ok_or(ChainError::Incomplete { what, missing: "topic 1 (the batch index)" })?;
    u64::try_from(U256::from_be_bytes(topic.0))
        .map_err(|_| ChainError::Incomplete { what, missing: "a topic 1 that is a uint64 batch index" })
}
