//! The contracts as Rust sees them: their ABIs (alloy's `sol!`), the committed artifacts
//! (`settlement/contracts/*.json`, compiled by the pinned solc) and the decoding of the
//! settlement contract's reverts.
//!
//! Both backends take everything contract-shaped from here: [`RpcChain`](super::RpcChain)
//! sends [`creation_code`] and [`commit_call`] to a node, the embedded chain runs the same
//! bytes in revm, and a refusal from either is named by [`revert_reason`]. Nothing here
//! does I/O.
//!
//! The artifacts are embedded in the binary (`include_str!`): a build deploys exactly the
//! code it was compiled with, wherever it runs.

use alloy::primitives::{Address, Bytes};
use alloy::sol_types::SolValue;

use super::ChainError;
use super::artifact::Artifact;
use crate::batch::Batch;

/// The contracts' interfaces (docs/SETTLEMENT.md, "Contract").
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
pub const ARTIFACT: &str = include_str!("../../contracts/L2xSettlement.json");

/// The settlement contract's artifact, parsed.
fn settlement() -> Result<Artifact, ChainError> {
    Artifact::parse("L2xSettlement", ARTIFACT)
}

/// The contract's creation code from the committed artifact, with `submitter` as its
/// constructor argument: what `RpcChain::deploy` sends and the embedded chain's genesis runs.
///
/// # Errors
/// [`ChainError::Artifact`] if the artifact is broken (a broken build).
pub fn creation_code(submitter: Address) -> Result<Vec<u8>, ChainError> {
    Ok(settlement()?.creation_code(&submitter.abi_encode()))
}

/// The runtime code a chain holds for the contract deployed with `submitter`: the
/// artifact's `deployedBytecode` with the immutable `submitter` (the address as a 32-byte
/// word) written at each of its `immutableReferences`. A verifier comparing a chain's
/// code with the artifact compares it with this (or masks those ranges).
///
/// # Errors
/// [`ChainError::Artifact`] if the artifact is broken or its immutables are not exactly
/// `submitter` (a broken build).
pub fn runtime_code(submitter: Address) -> Result<Vec<u8>, ChainError> {
    settlement()?.runtime_code(&[("submitter", submitter.into_word())])
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

/// The contract's reason for a refusal a node reported, decoded when it is one of its
/// errors (else the client's words for it).
pub(super) fn refusal(e: &alloy::contract::Error) -> String {
    e.as_revert_data().and_then(|data| revert_reason(&data)).unwrap_or_else(|| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_artifacts_parse_and_name_their_immutables() {
        let settlement = super::settlement().unwrap();
        assert_eq!(settlement.immutables().keys().collect::<Vec<_>>(), ["submitter"]);
        let code = runtime_code(Address::repeat_byte(0x11)).unwrap();
        for r in &settlement.immutables()["submitter"] {
            assert_eq!(code[r.clone()], Address::repeat_byte(0x11).into_word()[..]);
        }
    }
}
