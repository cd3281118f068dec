//! Every leaf and the root from the chain alone (`settlement::rebuild`): on anvil and on the
//! embedded chain, a seeded stream with open positions, funding and liquidations is
//! committed batch by batch, and what the chain holds rebuilds to the exchange's own tree,
//! leaf for leaf, with each leaf's value and a proof the contract accepts. Batches a
//! submitter would never send but the contract accepts (it checks neither the data's
//! content nor the roots) are findings naming the batch and the field; answers that are
//! not a batch's commit are errors naming the batch (`liar`: a node that lies).
//!
//! What can be crafted on chain, by the submitter's key, the contract accepting it: data
//! that does not decompress or decode (the contract hashes the data, never reads it), a
//! root its leaves do not give, arguments that are not what the data says (withdrawals,
//! refused entries, the sequence range), a batch that does not follow the one before. What
//! cannot: data that does not hash to `h.dataHash`, or arguments whose commitment is not
//! the one stored (the contract computes both) — only a node that lies can answer those,
//! and a lying node is what `liar` puts in front of anvil.

use std::collections::BTreeMap;

use alloy::primitives::B256;
use l2x_engine::StateMachine;
use l2x_risk::Ledger;
use l2x_settlement::batch::Batch;
use l2x_settlement::chain::{Carrier, Chain, Da, RpcChain, blob_hashes};
use l2x_settlement::embedded::{EmbeddedChain, FixedClock};
use l2x_settlement::epoch::{self, Epoch, Epochs, Policy};
use l2x_settlement::market;
use l2x_settlement::rebuild::{Finding, rebuild};
use l2x_types::{Command, Event};

use crate::common::{SUBMITTER_KEY, anvil, chain_stream};

mod crafted;
mod liar;
mod queue;

const POLICY: Policy = Policy { max_ms: 2_000, max_fills: 0 };
/// Batches the scenario commits.
const BATCHES: usize = 10;

/// The first [`BATCHES`] batches of the seeded chain stream, the tree and the state after
/// the last of them.
pub(crate) struct Scenario {
    pub(crate) closed: Vec<Epoch>,
    pub(crate) epochs: Epochs,
    pub(crate) state: StateMachine,
}

/// [`Scenario`], checked to hold what the rebuild must get right: open positions at the
/// end, funding ticks and liquidations on the way, several batches.
pub(crate) fn scenario() -> Scenario {
    let mut state = StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(POLICY);
    let (mut closed, mut events, mut liquidations, mut funding) = (Vec::new(), Vec::new(), 0, 0);
    for cmd in &chain_stream(7, 2_500) {
        events.clear();
        state.apply(cmd, &mut events);
        closed.extend(epochs.on_command(cmd, &events, &state));
        liquidations += events.iter().filter(|e| matches!(e, Event::Liquidation { .. })).count();
        funding += usize::from(matches!(cmd.cmd, Command::Funding { .. }));
        if closed.len() == BATCHES {
            break;
        }
    }
    assert_eq!(closed.len(), BATCHES);
    assert!(liquidations > 0 && funding > 0, "{liquidations} liquidation fills, {funding} funding ticks");
    let leaves = epoch::all_leaves(&state);
    assert!(leaves.iter().filter(|l| !l.positions.is_empty()).count() > 5, "open positions at the end");
    Scenario { closed, epochs, state }
}

/// Every leaf of the state after the last batch.
fn committed_leaves(s: &Scenario) -> BTreeMap<u64, l2x_settlement::leaf::AccountLeaf> {
    epoch::all_leaves(&s.state).into_iter().map(|l| (l.account, l)).collect()
}

/// Rebuilds from `reader` what `s` committed on the chain behind it, and checks everything
/// against the exchange's own: the root, every leaf, the market state, the batches' headers,
/// each leaf's value, and each leaf's proof, by the contract (`verify_leaf`).
fn rebuilds_to_the_scenario(reader: &mut dyn Chain, s: &Scenario, transactions: bool, da: Da) {
    let last = s.closed.last().unwrap();
    assert_eq!(last.root, s.epochs.tree().root(), "nothing changed after the last batch");
    let r = rebuild(reader).unwrap();
    assert!(r.agrees(), "{:?}", r.finding);
    assert_eq!((r.chain_last, r.chain_root, r.root()), (last.index, last.root, last.root));
    assert_eq!(r.state.index, last.index);
    assert_eq!(r.state.leaves, committed_leaves(s), "every leaf");
    assert_eq!(r.state.markets, last.markets);
    let headers: Vec<_> = r.batches.iter().map(|b| b.header).collect();
    assert_eq!(headers, s.closed.iter().map(|e| Batch::of(e).header).collect::<Vec<_>>());
    for (b, e) in r.batches.iter().zip(&s.closed) {
        assert_eq!(b.carrier.transaction().is_some(), transactions, "batch {}", b.header.index);
        match (&b.carrier, da) {
            (Carrier::Calldata { .. }, Da::Calldata) => {}
            // The versioned hashes the data was read from: the batch's blobs.
            (Carrier::Blobs { versioned_hashes, .. }, Da::Blobs) => {
                assert_eq!(*versioned_hashes, blob_hashes(&Batch::of(e)).unwrap(), "batch {}", b.header.index);
            }
            (other, _) => panic!("batch {}: carrier {other:?}, posted as {da}", b.header.index),
        }
    }
    let valued: Vec<_> = r.valued().into_iter().map(|(leaf, v)| (leaf, v.unwrap())).collect();
    assert_eq!(valued.len(), r.state.leaves.len());
    let mut equity = 0i128;
    for (leaf, value) in &valued {
        assert_eq!(value.equity, Some(market::equity(leaf, &last.markets).unwrap()), "account {}", leaf.account);
        assert_eq!(value.funding_owed, Some(market::funding_owed(leaf, &last.markets).unwrap()));
        equity += value.equity.unwrap();
        let escape = r.escape(leaf.account).unwrap();
        assert_eq!((&escape.leaf, &escape.markets), (*leaf, &last.markets));
        assert!(reader.verify_leaf(last.index, leaf, &escape.siblings).unwrap(), "account {}", leaf.account);
    }
    assert!(valued.iter().any(|(_, v)| v.funding_owed != Some(0)), "funding owed somewhere");
    let totals = r.totals();
    assert_eq!((totals.equity, totals.unvalued, totals.overflow.len()), (Some(equity), 0, 0));
    // An account without a leaf: a proof of absence against the chain's root, no escape.
    let absent = 1_000_000;
    assert!(r.escape(absent).is_none());
    assert!(r.prove(absent).verify(last.root, absent, None));
}

#[test]
fn every_leaf_and_the_root_rebuild_from_the_embedded_chain_alone() {
    let s = scenario();
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    // Before the first batch: nothing, and that agrees.
    let empty = rebuild(&mut chain).unwrap();
    assert!(empty.agrees() && empty.state.leaves.is_empty() && empty.root() == B256::ZERO);
    for e in &s.closed {
        chain.commit(&Batch::of(e)).unwrap();
    }
    drop(chain);
    // The user's view: the directory alone, read-only.
    rebuilds_to_the_scenario(&mut EmbeddedChain::read_only(dir.path()).unwrap(), &s, false, Da::Calldata);
}

#[test]
fn every_leaf_and_the_root_rebuild_from_a_node_alone() {
    let s = scenario();
    let node = anvil();
    let (address, _) = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).unwrap();
    let mut chain = RpcChain::connect(node.url(), SUBMITTER_KEY, address, 1).unwrap();
    for e in &s.closed {
        chain.commit(&Batch::of(e)).unwrap();
    }
    // The user's view: no key, the contract's address alone.
    rebuilds_to_the_scenario(&mut RpcChain::read_only(node.url(), address).unwrap(), &s, true, Da::Calldata);
}

/// The scenario committed with its data in blobs (`commitBatchBlobs`): the chain alone
/// (the embedded chain's batch and blob stores; a node's transactions and anvil's blobs)
/// rebuilds the same root, leaves and values as from calldata.
#[test]
fn every_leaf_and_the_root_rebuild_from_blob_commits_on_the_embedded_chain_and_a_node() {
    let s = scenario();
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    for e in &s.closed {
        chain.commit_blobs(&Batch::of(e)).unwrap();
    }
    drop(chain);
    rebuilds_to_the_scenario(&mut EmbeddedChain::read_only(dir.path()).unwrap(), &s, false, Da::Blobs);

    let node = anvil();
    let (address, _) = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).unwrap();
    let mut chain = RpcChain::connect(node.url(), SUBMITTER_KEY, address, 1).unwrap();
    for e in &s.closed {
        chain.commit_blobs(&Batch::of(e)).unwrap();
    }
    rebuilds_to_the_scenario(&mut RpcChain::read_only(node.url(), address).unwrap(), &s, true, Da::Blobs);
}

/// The first finding of a rebuild of `chain`, checked to stop the state at the batch
/// before it.
pub(crate) fn finding(chain: &mut dyn Chain) -> Finding {
    let r = rebuild(chain).unwrap();
    let finding = r.finding.clone().expect("a finding");
    assert_eq!(r.state.index, finding.index() - 1, "{finding}");
    assert_eq!(r.batches.len() as u64, finding.index() - 1);
    assert!(r.escape(1).is_none(), "no escape from a state that is not the chain's");
    finding
}
