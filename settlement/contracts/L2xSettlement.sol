// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title l2x settlement: the state roots of l2x's epochs, committed one batch at a time.
/// @notice docs/SETTLEMENT.md specifies the leaf, the tree and the batch this contract checks.
///         Only the submitter commits; only the next index; only on top of the last root;
///         only with data that hashes to the batch's data hash. Anyone can check an account
///         leaf against any committed root with its proof.
contract L2xSettlement {
    struct Position {
        uint32 instrument;
        int64 size;
        int128 cost;
        int128 fundingIndex;
    }

    struct AccountLeaf {
        uint64 account;
        int64 collateral;
        Position[] positions;
    }

    /// The only address that may commit.
    address public immutable submitter;
    /// The index of the last committed batch (0: none).
    uint64 public lastIndex;
    /// The root after the last committed batch (0x00…00 before the first).
    bytes32 public lastRoot;
    /// The root after each committed batch.
    mapping(uint64 => bytes32) public roots;
    /// The data hash of each committed batch.
    mapping(uint64 => bytes32) public dataHashes;

    event BatchCommitted(
        uint64 indexed index, bytes32 newRoot, bytes32 dataHash, uint64 firstSeq, uint64 lastSeq, uint64 epochTs
    );

    error NotSubmitter(address sender);
    error WrongIndex(uint64 expected, uint64 got);
    error WrongPreviousRoot(bytes32 expected, bytes32 got);
    error WrongDataHash(bytes32 expected, bytes32 got);

    constructor(address submitter_) {
        submitter = submitter_;
    }

    /// Commits batch `index`: its header's fields and its data (the changed leaves).
    function commitBatch(
        uint64 index,
        bytes32 prevRoot,
        bytes32 newRoot,
        bytes32 dataHash,
        uint64 firstSeq,
        uint64 lastSeq,
        uint64 epochTs,
        bytes calldata data
    ) external {
        if (msg.sender != submitter) revert NotSubmitter(msg.sender);
        if (index != lastIndex + 1) revert WrongIndex(lastIndex + 1, index);
        if (prevRoot != lastRoot) revert WrongPreviousRoot(lastRoot, prevRoot);
        bytes32 got = keccak256(data);
        if (got != dataHash) revert WrongDataHash(dataHash, got);
        lastIndex = index;
        lastRoot = newRoot;
        roots[index] = newRoot;
        dataHashes[index] = dataHash;
        emit BatchCommitted(index, newRoot, dataHash, firstSeq, lastSeq, epochTs);
    }

    /// The tree's hash of a subtree holding one leaf.
    function leafNode(uint64 key, bytes32 value) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(uint8(0), key, value));
    }

    /// The tree's hash of a subtree holding two or more leaves.
    function node(bytes32 left, bytes32 right) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(uint8(1), left, right));
    }

    /// The value the tree stores for a leaf.
    function leafHash(AccountLeaf calldata leaf) public pure returns (bytes32) {
        return keccak256(abi.encode(leaf));
    }

    /// Whether `leaf` is in the tree of batch `index`'s root, by its proof (the siblings
    /// from the root's children down).
    function verifyLeaf(uint64 index, AccountLeaf calldata leaf, bytes32[] calldata siblings)
        external
        view
        returns (bool)
    {
        bytes32 root = roots[index];
        if (index == 0 || index > lastIndex || siblings.length > 64) return false;
        bytes32 h = leafNode(leaf.account, leafHash(leaf));
        for (uint256 i = siblings.length; i > 0; i--) {
            uint256 depth = i - 1;
            bool right = (leaf.account >> (63 - depth)) & 1 == 1;
            h = right ? node(siblings[depth], h) : node(h, siblings[depth]);
        }
        return h == root;
    }
}
