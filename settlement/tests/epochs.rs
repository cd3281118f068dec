//! Epochs over seeded command streams with trading, funding, withdrawals and liquidations:
//! every closed epoch's root is the root of a tree built from scratch over every leaf of
//! the state at that point, its changes cover every leaf that changed, a replay of the
//! journal closes the same epochs with the same roots, and the batches alone rebuild them.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

use std::collections::BTreeMap;

use alloy_primitives::B256;
use l2x_engine::StateMachine;
use l2x_risk::Ledger;
use l2x_sequencer::journal::JournalWriter;
use l2x_settlement::batch::{self, Batch};
use l2x_settlement::epoch::{self, Epoch, Epochs, Policy};
use l2x_settlement::tree::root_of;
use l2x_types::Sequenced;

mod common;
use common::stream;

fn leaf_map(state: &StateMachine) -> BTreeMap<u64, B256> {
    epoch::all_leaves(state).into_iter().map(|l| (l.account, l.hash())).collect()
}

/// Applies the stream directly, checking every epoch as it closes.
fn run(cmds: &[Sequenced], policy: Policy) -> Vec<Epoch> {
    let mut state = StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(policy);
    let mut closed = Vec::new();
    let mut events = Vec::new();
    let mut before: BTreeMap<u64, B256> = BTreeMap::new();
    for cmd in cmds {
        events.clear();
        state.apply(cmd, &mut events);
        if let Some(e) = epochs.on_command(cmd, &events, &state) {
            let now = leaf_map(&state);
            let leaves: Vec<(u64, B256)> = now.iter().map(|(k, v)| (*k, *v)).collect();
            assert_eq!(e.root, root_of(0, &leaves), "epoch {}: the root is the root from scratch", e.index);
            assert_eq!(e.prev_root, closed.last().map_or(B256::ZERO, |p: &Epoch| p.root));
            let listed: Vec<u64> = e.changes.iter().map(|l| l.account).collect();
            for (k, v) in &now {
                if before.get(k) != Some(v) {
                    assert!(listed.contains(k), "epoch {}: leaf {k} changed but is not listed", e.index);
                }
            }
            assert!(listed.windows(2).all(|w| w[0] < w[1]), "changes in key order");
            before = now;
            closed.push(e);
        }
    }
    closed
}

#[test]
fn every_epoch_root_is_the_root_of_the_whole_state() {
    for seed in [1, 2, 3] {
        let cmds = stream(seed, 4_000);
        let epochs = run(&cmds, Policy { max_ms: 500, max_fills: 8 });
        assert!(epochs.len() > 20, "seed {seed}: {} epochs", epochs.len());
        let liquidated = {
            let mut state = StateMachine::with_ledger(Ledger::default());
            let mut events = Vec::new();
            let mut n = 0;
            for c in &cmds {
                events.clear();
                state.apply(c, &mut events);
                n += events.iter().filter(|e| matches!(e, l2x_types::Event::Liquidation { .. })).count();
            }
            n
        };
        assert!(liquidated > 0, "seed {seed}: the stream liquidates someone");
        // Both rules close epochs.
        assert!(epochs.iter().any(|e| e.fills >= 8) && epochs.iter().any(|e| e.fills < 8));
    }
}

#[test]
fn a_journal_replay_closes_the_same_epochs() {
    let cmds = stream(9, 3_000);
    let policy = Policy { max_ms: 300, max_fills: 0 };
    let direct = run(&cmds, policy);
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(dir.path(), 1 << 20).unwrap();
    for c in &cmds {
        writer.append(c).unwrap();
    }
    writer.sync().unwrap();
    drop(writer);
    let replayed = epoch::from_journal(dir.path(), policy, &Ledger::default()).unwrap();
    assert_eq!(replayed, direct);
    // The batches alone rebuild every root.
    let mut tree = l2x_settlement::tree::Tree::new();
    for e in &direct {
        let batch = Batch::decode(&Batch::of(e).encode()).unwrap();
        batch::apply(&mut tree, &batch).unwrap();
        assert_eq!(tree.root(), e.root);
    }
    // Another policy cuts other epochs, and ends at the same state: the same final tree.
    let coarse = epoch::from_journal(dir.path(), Policy { max_ms: 5_000, max_fills: 0 }, &Ledger::default()).unwrap();
    assert!(coarse.len() < direct.len());
    let last_common = direct.iter().rev().find(|e| coarse.iter().any(|c| c.last_seq == e.last_seq));
    if let Some(e) = last_common {
        let c = coarse.iter().find(|c| c.last_seq == e.last_seq).unwrap();
        assert_eq!(c.root, e.root, "same state, same root, whatever the epochs");
    }
}
