//! The contracts as Rust sees them: their ABIs (alloy's `sol!`), the committed artifacts
//! (`settlement/contracts/*.json`, compiled by the pinned solc) and the decoding of the
//! settlement contract's reverts.
//!
//! Both backends take everything contract-shaped from here: [`RpcChain`](super::RpcChain)
//! sends [`creation_code`] and [`commit_call`] to a node, the embedded chain runs the same
//! bytes in revm, and a refusal from either is named by [`revert_reason`]. Nothing here
//! does I/O.
//!
//! | contract | artifact | what for |
//! |---|---|---|
//! | `L2xSettlement` | [`ARTIFACT`] | the settlement contract: [`creation_code`], [`runtime_code`] |
//! | `L2xTestUSD` | [`TEST_USD_ARTIFACT`] | an ERC-20 with 6 decimals and an open `mint`, for tests and the demo only, never production collateral: [`test_usd_creation_code`], [`test_usd_runtime_code`] |
//!
//! The artifacts are embedded in the binary (`include_str!`): a build deploys exactly the
//! code it was compiled with, wherever it runs.

use alloy::primitives::{Address, Bytes};
use alloy::sol_types::SolValue;

use super::ChainError;
use super::artifact::Artifact;
use crate::batch::Batch;

/// The contracts' interfaces (docs/SETTLEMENT.md, "Contract" and "Test token").
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

        #[sol(rpc)]
        #[derive(Debug, PartialEq, Eq)]
        contract L2xTestUSD {
            event Transfer(address indexed from, address indexed to, uint256 value);
            event Approval(address indexed owner, address indexed spender, uint256 value);
            error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
            error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
            error ERC20InvalidReceiver(address receiver);
            function name() external view returns (string);
            function symbol() external view returns (string);
            function decimals() external view returns (uint8);
            function totalSupply() external view returns (uint256);
            function balanceOf(address holder) external view returns (uint256);
            function allowance(address owner, address spender) external view returns (uint256);
            function mint(address to, uint256 amount) external;
            function transfer(address to, uint256 amount) external returns (bool);
            function approve(address spender, uint256 amount) external returns (bool);
            function transferFrom(address from, address to, uint256 amount) external returns (bool);
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

/// The committed test token's artifact (`settlement/contracts/L2xTestUSD.json`).
pub const TEST_USD_ARTIFACT: &str = include_str!("../../contracts/L2xTestUSD.json");

/// The settlement contract's artifact, parsed.
fn settlement() -> Result<Artifact, ChainError> {
    Artifact::parse("L2xSettlement", ARTIFACT)
}

/// The test token's artifact, parsed.
fn test_usd() -> Result<Artifact, ChainError> {
    Artifact::parse("L2xTestUSD", TEST_USD_ARTIFACT)
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

/// The test token's creation code from the committed artifact (no constructor arguments).
/// For tests and the demo only: anyone can mint this token.
///
/// # Errors
/// [`ChainError::Artifact`] if the artifact is broken (a broken build).
pub fn test_usd_creation_code() -> Result<Vec<u8>, ChainError> {
    Ok(test_usd()?.creation_code(&[]))
}

/// The runtime code a chain holds for the test token (it has no immutables: the artifact's
/// `deployedBytecode` as it is).
///
/// # Errors
/// [`ChainError::Artifact`] if the artifact is broken or declares immutables (a broken
/// build).
pub fn test_usd_runtime_code() -> Result<Vec<u8>, ChainError> {
    test_usd()?.runtime_code(&[])
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
    use std::collections::BTreeSet;

    use super::abi::{L2xSettlement as S, L2xTestUSD as T};
    use super::*;

    /// The canonical ABI type of a parameter of the artifact's ABI (tuples spelled out).
    fn canonical(param: &serde_json::Value) -> String {
        let ty = param["type"].as_str().unwrap();
        match ty.strip_prefix("tuple") {
            Some(suffix) => {
                let parts: Vec<String> = param["components"].as_array().unwrap().iter().map(canonical).collect();
                format!("({}){suffix}", parts.join(","))
            }
            None => ty.to_owned(),
        }
    }

    /// Every function, event and error signature of an artifact's ABI.
    fn signatures(artifact: &str) -> BTreeSet<String> {
        let artifact: serde_json::Value = serde_json::from_str(artifact).unwrap();
        let entries = artifact["abi"].as_array().unwrap().iter();
        entries
            .filter(|e| matches!(e["type"].as_str(), Some("function" | "event" | "error")))
            .map(|e| {
                let inputs: Vec<String> = e["inputs"].as_array().unwrap().iter().map(canonical).collect();
                format!("{}({})", e["name"].as_str().unwrap(), inputs.join(","))
            })
            .collect()
    }

    fn set(lists: &[&[&str]]) -> BTreeSet<String> {
        lists.iter().flat_map(|l| l.iter().map(|s| (*s).to_owned())).collect()
    }

    /// The `sol!` interfaces are written by hand: each must name only what the compiled
    /// contract declares (the settlement contract's pure tree helpers are left out); the
    /// token's names all of it.
    #[test]
    fn the_bindings_match_the_committed_artifacts() {
        let settlement = set(&[
            S::L2xSettlementCalls::SIGNATURES,
            S::L2xSettlementErrors::SIGNATURES,
            &[<S::BatchCommitted as alloy::sol_types::SolEvent>::SIGNATURE],
        ]);
        let compiled = signatures(ARTIFACT);
        let missing: Vec<_> = settlement.difference(&compiled).collect();
        assert!(missing.is_empty(), "not in L2xSettlement.json: {missing:?}");
        let token =
            set(&[T::L2xTestUSDCalls::SIGNATURES, T::L2xTestUSDErrors::SIGNATURES, T::L2xTestUSDEvents::SIGNATURES]);
        assert_eq!(token, signatures(TEST_USD_ARTIFACT));
    }

    #[test]
    fn the_committed_artifacts_parse_and_name_their_immutables() {
        let settlement = super::settlement().unwrap();
        assert_eq!(settlement.immutables().keys().collect::<Vec<_>>(), ["submitter"]);
        assert!(test_usd().unwrap().immutables().is_empty());
        let code = runtime_code(Address::repeat_byte(0x11)).unwrap();
        for r in &settlement.immutables()["submitter"] {
            assert_eq!(code[r.clone()], Address::repeat_byte(0x11).into_word()[..]);
        }
        assert!(test_usd_creation_code().unwrap().len() > test_usd_runtime_code().unwrap().len());
    }
}
