//! Epochs: the sequenced stream cut into pieces, each ending in a state root
//! (docs/SETTLEMENT.md, "Epochs").
//!
//! ```text
//!  for every command, after the state machine applied it:
//!    Epochs::on_command(cmd, events, state)
//!      holders the events touched ──▶ touched set         (balance, position, insurance, …)
//!      fills += trades
//!      closes? cmd.ts ≥ start + max_ms, or fills ≥ max_fills
//!        yes ──▶ leaves of the touched holders, read from the state ──▶ Tree::update ──▶ Epoch
//! ```
//!
//! The rule reads only the sequenced stream (each command's sequenced time and events), so a
//! replay of the journal closes the same epochs at the same commands with the same roots:
//! the submitter's roots and `l2x settle verify`'s are one computation. An epoch starts at
//! the first command after the previous one closed; the command that meets the rule is its
//! last. With no commands no epoch closes (the exchange's periodic oracle and funding
//! commands keep epochs closing when nobody trades).
//!
//! An epoch's *changes* are the leaves of every holder whose collateral or positions its
//! commands changed (a holder whose leaf came back to what it was is still listed), in key
//! order: exactly what the tree's root moved by, and what a batch carries.

use std::collections::BTreeSet;

use alloy_primitives::B256;
use l2x_engine::StateMachine;
use l2x_risk::Ledger;
use l2x_types::{Event, Holder, Sequenced};

use crate::leaf::{self, AccountLeaf};
use crate::tree::Tree;

/// When an epoch closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// At the first command at least this long (sequenced time) after the epoch's first.
    pub max_ms: u64,
    /// At the command that brings the epoch's fills to this many (0: no fill limit).
    pub max_fills: u64,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy { max_ms: 1_000, max_fills: 100_000 }
    }
}

/// A closed epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Epoch {
    /// Its number, from 1.
    pub index: u64,
    /// Its first and last command.
    pub first_seq: u64,
    /// The command that closed it.
    pub last_seq: u64,
    /// The sequenced time of its last command, ns.
    pub ts: u64,
    /// Commands in it.
    pub commands: u64,
    /// Trades in it.
    pub fills: u64,
    /// The root before it.
    pub prev_root: B256,
    /// The root after it.
    pub root: B256,
    /// The leaves it changed, in key order.
    pub changes: Vec<AccountLeaf>,
}

/// Cuts the stream into epochs and keeps the state tree.
#[derive(Clone, Debug)]
pub struct Epochs {
    policy: Policy,
    tree: Tree,
    next_index: u64,
    /// The open epoch: (first seq, first ts), once it has a command.
    open: Option<(u64, u64)>,
    commands: u64,
    fills: u64,
    touched: BTreeSet<Holder>,
}

impl Epochs {
    /// No epoch yet, an empty tree.
    pub fn new(policy: Policy) -> Epochs {
        Epochs {
            policy,
            tree: Tree::new(),
            next_index: 1,
            open: None,
            commands: 0,
            fills: 0,
            // The insurance fund and the fee account exist from the start: in the first root.
            touched: BTreeSet::from([Holder::Insurance, Holder::Fees]),
        }
    }

    /// The tree as of the last closed epoch.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Records one applied command; returns the epoch it closed, if it closed one.
    pub fn on_command(&mut self, cmd: &Sequenced, events: &[Event], state: &StateMachine) -> Option<Epoch> {
        let (first_seq, start_ts) = *self.open.get_or_insert((cmd.seq.0, cmd.ts.0));
        self.commands += 1;
        for ev in events {
            match *ev {
                Event::Balance { holder, .. } | Event::Position { holder, .. } => {
                    self.touched.insert(holder);
                }
                Event::Insurance { .. } => {
                    self.touched.insert(Holder::Insurance);
                }
                Event::Trade(_) => self.fills += 1,
                _ => {}
            }
        }
        let by_time = cmd.ts.0.saturating_sub(start_ts) >= self.policy.max_ms.saturating_mul(1_000_000);
        let by_fills = self.policy.max_fills > 0 && self.fills >= self.policy.max_fills;
        if !(by_time || by_fills) {
            return None;
        }
        let ledger = state.ledger();
        let changes: Vec<AccountLeaf> =
            std::mem::take(&mut self.touched).into_iter().filter_map(|holder| leaf_of(ledger, holder)).collect();
        let mut sorted = changes;
        sorted.sort_by_key(|l| l.account);
        let prev_root = self.tree.root();
        let root = self.tree.update(sorted.iter().map(|l| (l.account, Some(l.hash()))));
        let epoch = Epoch {
            index: self.next_index,
            first_seq,
            last_seq: cmd.seq.0,
            ts: cmd.ts.0,
            commands: self.commands,
            fills: self.fills,
            prev_root,
            root,
            changes: sorted,
        };
        self.next_index += 1;
        self.open = None;
        self.commands = 0;
        self.fills = 0;
        Some(epoch)
    }
}

/// A journal followed command by command: the state after the last command read and the
/// open epoch, so that each read applies only what was appended since (the submitter reads
/// a live journal this way; [`from_journal`] reads one once).
#[derive(Debug)]
pub struct Follower {
    state: StateMachine,
    epochs: Epochs,
    last_seq: u64,
}

impl Follower {
    /// Nothing read yet: an empty state of `ledger`'s configuration, no epoch.
    pub fn new(policy: Policy, ledger: &Ledger) -> Follower {
        Follower { state: StateMachine::with_ledger(ledger.clone()), epochs: Epochs::new(policy), last_seq: 0 }
    }

    /// Applies the journal's commands after the last one read, appending the epochs they
    /// close to `closed` as they close (so that on an error `closed` still has those before
    /// it). A torn tail ends the read cleanly; the next read continues from there.
    ///
    /// # Errors
    /// The journal's.
    pub fn read(
        &mut self,
        dir: &std::path::Path,
        closed: &mut Vec<Epoch>,
    ) -> Result<(), l2x_sequencer::journal::JournalError> {
        let mut events = Vec::new();
        l2x_sequencer::journal::scan(dir, |cmd| {
            if cmd.seq.0 > self.last_seq {
                events.clear();
                self.state.apply(&cmd, &mut events);
                closed.extend(self.epochs.on_command(&cmd, &events, &self.state));
                self.last_seq = cmd.seq.0;
            }
            std::ops::ControlFlow::Continue(())
        })?;
        Ok(())
    }
}

/// Every epoch the journal in `dir` closes under `policy`, replaying it from its first
/// record with a state machine of `ledger`'s configuration (a torn tail ends the replay
/// cleanly; the open epoch at the end is not returned).
///
/// # Errors
/// The journal's.
pub fn from_journal(
    dir: &std::path::Path,
    policy: Policy,
    ledger: &Ledger,
) -> Result<Vec<Epoch>, l2x_sequencer::journal::JournalError> {
    let mut closed = Vec::new();
    Follower::new(policy, ledger).read(dir, &mut closed)?;
    Ok(closed)
}

/// A holder's leaf as the ledger has it now (`None` if the ledger never saw it).
pub fn leaf_of(ledger: &Ledger, holder: Holder) -> Option<AccountLeaf> {
    let slot = match holder {
        Holder::Account(id) => ledger.slot(id)?,
        Holder::Insurance => Ledger::INSURANCE,
        Holder::Fees => Ledger::FEES,
    };
    let leaf = AccountLeaf::of(ledger.account(slot));
    debug_assert_eq!(leaf.account, leaf::key(holder));
    Some(leaf)
}

/// Every leaf of the state: what a tree built from scratch at this point holds.
pub fn all_leaves(state: &StateMachine) -> Vec<AccountLeaf> {
    let ledger = state.ledger();
    let mut leaves: Vec<AccountLeaf> = [Ledger::INSURANCE, Ledger::FEES]
        .into_iter()
        .chain(ledger.slots_by_id())
        .map(|s| AccountLeaf::of(ledger.account(s)))
        .collect();
    leaves.sort_by_key(|l| l.account);
    leaves
}
