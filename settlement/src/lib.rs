//! l2x settlement: every epoch of trading becomes a state root that anyone can re-derive
//! from the journal (docs/SETTLEMENT.md).
//!
//! ```text
//!  CanonicalState ──▶ leaf::AccountLeaf::of ──▶ keccak256(abi.encode(leaf)) ──▶ tree::Tree::update
//!  (accounts, positions)   (Solidity ABI struct)        (the leaf's value)        (sparse Merkle, keccak,
//!                                                                                   incremental) ──▶ root
//! ```
//!
//! - [`anvil`]: finding anvil (flag, `L2X_ANVIL`, `PATH`) and running it: a local node
//!   for `l2x bench settlement`.
//! - [`audit`]: what an auditor runs: the journal against the batch files and the chain,
//!   proofs checked against the chain.
//! - [`batch`]: an epoch as stored and posted: header, the epoch's fields, its market state
//!   and compact leaves, data hash.
//! - [`batch_set`]: a directory of batch files, every file and their sequence checked in
//!   one place; applying the batches alone rebuilds the tree.
//! - [`blob`]: batch data packed into EIP-4844 blobs and unpacked with every byte checked;
//!   versioned hashes and the sidecar (KZG).
//! - [`chain`]: the base chain behind one trait; the JSON-RPC backend (alloy) with the
//!   contract's bindings.
//! - `devnode` (feature `test-utils`): the tests' anvil, the pinned one installed from npm
//!   into the source tree on first use.
//! - [`embedded`]: the embedded chain: a small EVM chain in revm (the test token, the
//!   settlement contract, users' transactions, a clock), its whole state in a file.
//! - [`epoch`]: the sequenced stream cut into epochs by a rule on sequenced time and fills;
//!   each closed epoch's changed leaves and root.
//! - [`leaf`]: the canonical account leaf and its ABI encoding.
//! - [`market`]: the market state at an epoch's close (marks, funding indexes), with which
//!   a leaf is valued.
//! - [`queue`]: the L1 queue as a batch sees it: the rolling hash of the entries taken,
//!   the withdrawals, the refused entries.
//! - [`rebuild`]: every leaf and the root from the chain alone (what each batch posted),
//!   checked batch by batch against the contract's roots and commitments.
//! - [`submitter`]: recomputes the epochs from the journal and commits the batches the
//!   chain lacks, stopping on any disagreement.
//! - [`tree`]: the sparse Merkle tree over account ids, its proofs, and the reference root
//!   it is tested against.
//!

#![deny(clippy::float_arithmetic)]

pub mod anvil;
pub mod audit;
pub mod batch;
pub mod batch_set;
pub mod blob;
pub mod chain;
#[cfg(feature = "test-utils")]
pub mod devnode;
pub mod embedded;
pub mod epoch;
pub mod leaf;
pub mod market;
pub mod queue;
pub mod rebuild;
pub mod submitter;
pub mod tree;
