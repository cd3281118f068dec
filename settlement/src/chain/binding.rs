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

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::sol_types::SolValue;

use super::ChainError;
use super::artifact::Artifact;
use crate::batch::Batch;
use crate::queue::{Entry, Kind};

/// The contracts' interfaces (docs/SETTLEMENT.md, "Contract" and "Test token").
#[allow(clippy::too_many_arguments, reason = "generated: one argument per ABI parameter")]
pub mod abi {
    alloy::sol! {
        #[sol(rpc)]
        #[derive(Debug)]
        contract L2xSettlement {
            struct Position { uint32 instrument; int64 size; int128 cost; int128 fundingIndex; }
            struct AccountLeaf { uint64 account; int64 collateral; Position[] positions; }
            struct BatchHeader {
                uint64 index; uint64 firstSeq; uint64 lastSeq; uint64 epochTs; bytes32 prevRoot; bytes32 newRoot;
                bytes32 dataHash; bytes32 marketHash; uint64 queueCount; bytes32 queueHash;
            }
            struct Withdrawal { uint64 account; uint64 amount; }
            struct Market { uint32 instrument; int64 mark; int128 fundingIndex; int64 tickValue; }
            #[derive(PartialEq, Eq)]
            struct Config {
                address submitter; address token; uint64 minDeposit; uint64 claimDelay; uint64 forcedDeadline;
                address feeRecipient; address insuranceRecipient; uint64 insuranceExitDelay;
            }
            enum Kind {
                /// A deposit to an account.
                Deposit,
                /// A deposit to the insurance fund.
                InsuranceDeposit,
                /// A forced withdrawal.
                ForcedWithdrawal,
            }

            event BatchCommitted(uint64 indexed index, bytes32 newRoot, bytes32 dataHash, uint64 firstSeq, uint64 lastSeq, uint64 epochTs, uint64 queueCount, bytes32 commitment);
            event BatchBlobs(uint64 indexed index, bytes32[] versionedHashes);
            event Queued(uint64 indexed index, Kind kind, uint64 indexed account, uint64 amount, address indexed from, bytes32 queueHash);
            event OwnerBound(uint64 indexed account, address indexed owner);
            event Credited(address indexed to, uint64 amount, uint64 availableAt);
            event Claimed(address indexed to, uint256 amount);
            event Frozen(uint64 oldestWaiting, uint64 requestedAt);
            event Escaped(uint64 indexed account, address indexed payee, int256 equity, uint256 paid);

            error NotSubmitter(address sender);
            error WrongIndex(uint64 expected, uint64 got);
            error WrongPreviousRoot(bytes32 expected, bytes32 got);
            error WrongDataHash(bytes32 expected, bytes32 got);
            error NoBlobs();
            error QueueCountOutOfRange(uint64 processed, uint64 queueLength, uint64 got);
            error WrongQueueHash(uint64 count, bytes32 expected, bytes32 got);
            error BadRejected(uint256 position);
            error NoOwner(uint64 account);
            error BadWithdrawal(uint256 position);
            error WithdrawalsExceedDeposits(uint256 held, uint256 needed);
            error WrongDecimals(uint8 decimals);
            error ReservedAccount(uint64 account);
            error DepositTooSmall(uint64 minimum, uint64 got);
            error DepositCapReached(uint256 held, uint64 amount);
            error NotOwner(uint64 account, address owner, address sender);
            error BadAmount(uint64 amount);
            error TokenTransferFailed();
            error NothingToClaim();
            error ClaimNotYet(uint64 availableAt);
            error IsFrozen();
            error NotOverdue(uint64 oldestWaiting, uint64 dueAt);
            error NotFrozen();
            error WrongMarketState(bytes32 expected, bytes32 got);
            error BadProof(uint64 account);
            error AlreadyEscaped(uint64 account);
            error InsuranceNotYet(uint64 availableAt);
            error Unlisted(uint64 account, uint32 instrument);
            error NoMark(uint64 account, uint32 instrument);
            error BadConfig();

            function submitter() external view returns (address);
            function token() external view returns (address);
            function minDeposit() external view returns (uint64);
            function claimDelay() external view returns (uint64);
            function forcedDeadline() external view returns (uint64);
            function feeRecipient() external view returns (address);
            function insuranceRecipient() external view returns (address);
            function insuranceExitDelay() external view returns (uint64);
            function lastIndex() external view returns (uint64);
            function lastRoot() external view returns (bytes32);
            function roots(uint64 index) external view returns (bytes32);
            function commitments(uint64 index) external view returns (bytes32);
            function queueLength() external view returns (uint64);
            function processed() external view returns (uint64);
            function entries(uint64 index) external view returns (address from, uint64 amount, Kind kind, uint64 account, uint64 requestedAt);
            function queueHashes(uint64 index) external view returns (bytes32);
            function owners(uint64 account) external view returns (address);
            function claims(address holder) external view returns (uint128 amount, uint64 availableAt);
            function l2Total() external view returns (uint256);
            function pendingDeposits() external view returns (uint256);
            function totalClaimable() external view returns (uint256);
            function frozen() external view returns (bool);
            function refunded() external view returns (uint64);
            function refundQueued(uint64 count) external;
            function lastMarketHash() external view returns (bytes32);
            function frozenAt() external view returns (uint64);
            function escaped(uint64 account) external view returns (bool);
            function escape(AccountLeaf calldata leaf, bytes32[] calldata siblings, Market[] calldata markets) external;
            function equityOf(AccountLeaf calldata leaf, Market[] calldata markets) external pure returns (int256 equity);
            function deposit(uint64 account, uint64 amount) external;
            function depositInsurance(uint64 amount) external;
            function requestForcedWithdrawal(uint64 account, uint64 amount) external;
            function commitBatch(BatchHeader calldata h, Withdrawal[] calldata withdrawals, uint64[] calldata rejected, bytes calldata data) external;
            function commitBatchBlobs(BatchHeader calldata h, Withdrawal[] calldata withdrawals, uint64[] calldata rejected) external;
            function claim() external;
            function freeze() external;
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

impl From<&crate::market::Market> for abi::L2xSettlement::Market {
    /// The contract's view of an instrument's market state: the same ABI struct.
    fn from(m: &crate::market::Market) -> Self {
        abi::L2xSettlement::Market {
            instrument: m.instrument,
            mark: m.mark,
            fundingIndex: m.fundingIndex,
            tickValue: m.tickValue,
        }
    }
}

/// Queue entry `index` as the contract's `entries(index)` returns it.
///
/// # Errors
/// [`ChainError::Incomplete`] for a kind the contract does not have (an answer that is not
/// the contract's).
pub fn entry_of(index: u64, e: &abi::L2xSettlement::entriesReturn) -> Result<Entry, ChainError> {
    let kind = Kind::from_u8(e.kind as u8)
        .ok_or(ChainError::Incomplete { what: "reading entries", missing: "a kind the contract has (0, 1 or 2)" })?;
    Ok(Entry {
        kind,
        index,
        account: e.account,
        amount: e.amount,
        from: e.from.into_array(),
        requested_at: e.requestedAt,
    })
}

/// The contract call that commits `batch`: its header's fields, the withdrawals and refused
/// queue entries its data lists, and its data.
///
/// # Errors
/// [`ChainError::Batch`] if the batch's data does not decode (the contract's arguments are
/// read from it).
pub fn commit_call(batch: &Batch) -> Result<abi::L2xSettlement::commitBatchCall, ChainError> {
    let h = batch.header;
    let contents = batch.contents().map_err(|source| ChainError::Batch { index: h.index, source })?;
    Ok(abi::L2xSettlement::commitBatchCall {
        h: abi::L2xSettlement::BatchHeader {
            index: h.index,
            firstSeq: h.first_seq,
            lastSeq: h.last_seq,
            epochTs: h.epoch_ts,
            prevRoot: h.prev_root,
            newRoot: h.new_root,
            dataHash: h.data_hash,
            marketHash: h.market_hash,
            queueCount: h.queue_count,
            queueHash: h.queue_hash,
        },
        withdrawals: contents
            .withdrawals
            .iter()
            .map(|w| abi::L2xSettlement::Withdrawal { account: w.account, amount: w.amount })
            .collect(),
        rejected: contents.rejected,
        data: Bytes::from(batch.data.clone()),
    })
}

/// The input of the transaction that commits `batch`: `commitBatch`'s selector and its
/// ABI-encoded arguments (where a verifier finds the batch's data on chain).
///
/// # Errors
/// As [`commit_call`].
pub fn commit_input(batch: &Batch) -> Result<Vec<u8>, ChainError> {
    use alloy::sol_types::SolCall as _;
    Ok(commit_call(batch)?.abi_encode())
}

/// The commitment of a commit's arguments, what the contract stores as
/// `commitments(h.index)` ([`commitment`](crate::chain::commitment) of a batch's call): for a `commitBatch` (`blobs`
/// `None`) `keccak256(abi.encode(h, withdrawals, rejected))`; for a `commitBatchBlobs`
/// (`blobs`: the transaction's versioned hashes, in order)
/// `keccak256(abi.encode(h, withdrawals, rejected, versionedHashes))`.
pub fn commitment_of(
    h: &abi::L2xSettlement::BatchHeader,
    withdrawals: &[abi::L2xSettlement::Withdrawal],
    rejected: &[u64],
    blobs: Option<&[B256]>,
) -> B256 {
    let (h, withdrawals, rejected) = (h.clone(), withdrawals.to_vec(), rejected.to_vec());
    match blobs {
        None => keccak256((h, withdrawals, rejected).abi_encode_params()),
        Some(hashes) => keccak256((h, withdrawals, rejected, hashes.to_vec()).abi_encode_params()),
    }
}

/// A commit's input decoded ([`decode_commit_input`]): which of the contract's two commit
/// functions it calls, and its arguments.
#[derive(Clone, Debug)]
pub(crate) enum CommitInput {
    /// `commitBatch(h, withdrawals, rejected, data)`: the data in the input.
    Calldata(abi::L2xSettlement::commitBatchCall),
    /// `commitBatchBlobs(h, withdrawals, rejected)`: the data in the transaction's blobs.
    Blobs(abi::L2xSettlement::commitBatchBlobsCall),
}

impl CommitInput {
    /// The batch index of its header argument.
    pub(crate) fn index(&self) -> u64 {
        match self {
            CommitInput::Calldata(call) => call.h.index,
            CommitInput::Blobs(call) => call.h.index,
        }
    }
}

/// A transaction input read as the commit it must be, `commitBatch` or `commitBatchBlobs`:
/// the selector checked, then the arguments decoded as the contract's decoder reads them
/// (not re-encoded to compare: the contract accepts any encoding its decoder takes).
/// `Err`: what it is instead, in words.
pub(crate) fn decode_commit_input(input: &[u8]) -> Result<CommitInput, String> {
    use alloy::sol_types::SolCall as _;
    type Commit = abi::L2xSettlement::commitBatchCall;
    type CommitBlobs = abi::L2xSettlement::commitBatchBlobsCall;
    let Some((selector, args)) = input.split_first_chunk::<4>() else {
        return Err(format!("{} bytes of input, too short for a selector", input.len()));
    };
    if *selector == Commit::SELECTOR {
        Commit::abi_decode_raw(args)
            .map(CommitInput::Calldata)
            .map_err(|e| format!("the arguments do not decode as commitBatch's: {e}"))
    } else if *selector == CommitBlobs::SELECTOR {
        CommitBlobs::abi_decode_raw(args)
            .map(CommitInput::Blobs)
            .map_err(|e| format!("the arguments do not decode as commitBatchBlobs's: {e}"))
    } else {
        Err(format!(
            "selector 0x{}, neither commitBatch's 0x{} nor commitBatchBlobs's 0x{}",
            alloy::hex::encode(selector),
            alloy::hex::encode(Commit::SELECTOR),
            alloy::hex::encode(CommitBlobs::SELECTOR)
        ))
    }
}

/// The least gas the commit of `batch` can cost on a chain with EIP-7623 (Prague and
/// later): 21,000 plus 10 per zero byte and 40 per other byte of its input. A commit's
/// execution costs less than that for any batch with more than a few leaves, so this is
/// what it pays.
///
/// # Errors
/// As [`commit_call`].
pub fn commit_floor_gas(batch: &Batch) -> Result<u64, ChainError> {
    Ok(21_000 + crate::batch::calldata_floor_gas(&commit_input(batch)?))
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

/// What a deployment of the settlement contract is given: its constructor's `Config`
/// (docs/SETTLEMENT.md, "Contract"). All of it is immutable: it is in the runtime code.
pub type Config = abi::L2xSettlement::Config;

/// A week, the forced-withdrawal deadline of a production deployment (seconds).
pub const WEEK: u64 = 7 * 24 * 3600;

impl Config {
    /// A deployment for `submitter` over `token` with the defaults of tests and the demo:
    /// deposits from 1 base unit, claims payable at once, a week's deadline for the queue,
    /// the fee account and the insurance fund paid to the submitter, the fund's escape a
    /// week after a freeze.
    pub fn local(submitter: Address, token: Address) -> Config {
        Config {
            submitter,
            token,
            minDeposit: 1,
            claimDelay: 0,
            forcedDeadline: WEEK,
            feeRecipient: submitter,
            insuranceRecipient: submitter,
            insuranceExitDelay: WEEK,
        }
    }

    /// Each immutable's name and the 32-byte word the constructor writes for it.
    fn immutables(&self) -> [(&'static str, B256); 8] {
        let word = |v: u64| B256::from(U256::from(v));
        [
            ("submitter", self.submitter.into_word()),
            ("token", self.token.into_word()),
            ("minDeposit", word(self.minDeposit)),
            ("claimDelay", word(self.claimDelay)),
            ("forcedDeadline", word(self.forcedDeadline)),
            ("feeRecipient", self.feeRecipient.into_word()),
            ("insuranceRecipient", self.insuranceRecipient.into_word()),
            ("insuranceExitDelay", word(self.insuranceExitDelay)),
        ]
    }
}

/// The contract's creation code from the committed artifact, with `config` as its
/// constructor argument: what `RpcChain::deploy` sends and the embedded chain's genesis runs.
///
/// # Errors
/// [`ChainError::Artifact`] if the artifact is broken (a broken build).
pub fn creation_code(config: &Config) -> Result<Vec<u8>, ChainError> {
    Ok(settlement()?.creation_code(&config.abi_encode()))
}

/// The runtime code a chain holds for the contract deployed with `config`: the artifact's
/// `deployedBytecode` with each immutable (a 32-byte word: an address left-padded, a
/// number big-endian) written at each of its `immutableReferences`. A verifier comparing a
/// chain's code with the artifact compares it with this (or masks those ranges).
///
/// # Errors
/// [`ChainError::Artifact`] if the artifact is broken or its immutables are not exactly
/// `config`'s fields (a broken build).
pub fn runtime_code(config: &Config) -> Result<Vec<u8>, ChainError> {
    settlement()?.runtime_code(&config.immutables())
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

/// The contract's reason for a revert, when its data is one of the contract's errors: its
/// name and its fields in Solidity's order (`WrongIndex(expected 6, got 5)`).
pub fn revert_reason(data: &[u8]) -> Option<String> {
    use abi::L2xSettlement::L2xSettlementErrors as E;
    use alloy::sol_types::SolInterface as _;
    Some(match E::abi_decode(data).ok()? {
        E::NotSubmitter(x) => format!("NotSubmitter({})", x.sender),
        E::WrongIndex(x) => format!("WrongIndex(expected {}, got {})", x.expected, x.got),
        E::WrongPreviousRoot(x) => format!("WrongPreviousRoot(expected {}, got {})", x.expected, x.got),
        E::WrongDataHash(x) => format!("WrongDataHash(expected {}, got {})", x.expected, x.got),
        E::NoBlobs(_) => "NoBlobs".to_owned(),
        E::QueueCountOutOfRange(x) => {
            format!("QueueCountOutOfRange(processed {}, queueLength {}, got {})", x.processed, x.queueLength, x.got)
        }
        E::WrongQueueHash(x) => format!("WrongQueueHash(count {}, expected {}, got {})", x.count, x.expected, x.got),
        E::BadRejected(x) => format!("BadRejected(position {})", x.position),
        E::NoOwner(x) => format!("NoOwner(account {})", x.account),
        E::BadWithdrawal(x) => format!("BadWithdrawal(position {})", x.position),
        E::WithdrawalsExceedDeposits(x) => format!("WithdrawalsExceedDeposits(held {}, needed {})", x.held, x.needed),
        E::WrongDecimals(x) => format!("WrongDecimals({})", x.decimals),
        E::ReservedAccount(x) => format!("ReservedAccount({})", x.account),
        E::DepositTooSmall(x) => format!("DepositTooSmall(minimum {}, got {})", x.minimum, x.got),
        E::DepositCapReached(x) => format!("DepositCapReached(held {}, amount {})", x.held, x.amount),
        E::NotOwner(x) => format!("NotOwner(account {}, owner {}, sender {})", x.account, x.owner, x.sender),
        E::BadAmount(x) => format!("BadAmount({})", x.amount),
        E::TokenTransferFailed(_) => "TokenTransferFailed".to_owned(),
        E::NothingToClaim(_) => "NothingToClaim".to_owned(),
        E::ClaimNotYet(x) => format!("ClaimNotYet(availableAt {})", x.availableAt),
        E::IsFrozen(_) => "IsFrozen".to_owned(),
        E::NotOverdue(x) => format!("NotOverdue(oldestWaiting {}, dueAt {})", x.oldestWaiting, x.dueAt),
        E::NotFrozen(_) => "NotFrozen".to_owned(),
        E::WrongMarketState(x) => format!("WrongMarketState(expected {}, got {})", x.expected, x.got),
        E::BadProof(x) => format!("BadProof(account {})", x.account),
        E::AlreadyEscaped(x) => format!("AlreadyEscaped(account {})", x.account),
        E::InsuranceNotYet(x) => format!("InsuranceNotYet(availableAt {})", x.availableAt),
        E::Unlisted(x) => format!("Unlisted(account {}, instrument {})", x.account, x.instrument),
        E::NoMark(x) => format!("NoMark(account {}, instrument {})", x.account, x.instrument),
        E::BadConfig(_) => "BadConfig".to_owned(),
    })
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
            S::L2xSettlementEvents::SIGNATURES,
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
        let names: BTreeSet<&str> = settlement.immutables().keys().map(String::as_str).collect();
        let config = Config {
            submitter: Address::repeat_byte(0x11),
            token: Address::repeat_byte(0x22),
            minDeposit: 3,
            claimDelay: 4,
            forcedDeadline: 5,
            feeRecipient: Address::repeat_byte(0x66),
            insuranceRecipient: Address::repeat_byte(0x77),
            insuranceExitDelay: 8,
        };
        assert_eq!(names, config.immutables().iter().map(|(n, _)| *n).collect());
        assert!(test_usd().unwrap().immutables().is_empty());
        let code = runtime_code(&config).unwrap();
        for (name, word) in config.immutables() {
            for r in &settlement.immutables()[name] {
                assert_eq!(code[r.clone()], word[..], "{name}");
            }
        }
        assert!(test_usd_creation_code().unwrap().len() > test_usd_runtime_code().unwrap().len());
    }

    /// Every error the contract declares is named with its fields; other bytes are not.
    #[test]
    fn every_contract_error_is_named_with_its_fields() {
        use alloy::sol_types::SolError as _;
        let index = S::WrongIndex { expected: 6, got: 5 }.abi_encode();
        assert_eq!(revert_reason(&index).as_deref(), Some("WrongIndex(expected 6, got 5)"));
        let hash = S::WrongQueueHash { count: 2, expected: B256::repeat_byte(1), got: B256::ZERO }.abi_encode();
        let text = revert_reason(&hash).unwrap();
        assert!(text.starts_with("WrongQueueHash(count 2, expected 0x0101"), "{text}");
        assert_eq!(revert_reason(&S::IsFrozen {}.abi_encode()).as_deref(), Some("IsFrozen"));
        assert_eq!(revert_reason(&[0xde, 0xad, 0xbe, 0xef]), None);
        assert_eq!(revert_reason(&index[..index.len() - 1]), None, "a truncated error is not named");
    }
}
