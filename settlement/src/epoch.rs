//! Epochs: the sequenced stream cut into pieces, each ending in a state root
//! (docs/SETTLEMENT.md, "Epochs").
//!
//! ```text
//!  for every command, after the state machine applied it:
//!    Epochs::on_command(cmd, events, state)
//!      holders the events touched ──▶ touched set         (balance, position, insurance, …)
//!      fills += trades
//!      an L1 queue entry taken ──▶ queue_count, queue_hash (refused: its index listed)
//!      a withdrawal asked on L2 ──▶ withdrawals        (withdraw's balance event)
//!      due? cmd.ts ≥ start + max_ms, or fills ≥ max_fills,
//!           or entries taken + withdrawals ≥ MAX_L1_OPS (256)
//!        yes ──▶ leaves of the touched holders, read from the state ──▶ Tree::update
//!                market state of every listed instrument (marks, funding indexes)
//!                root, market state or queue_count differ from the last batch's,
//!                or a withdrawal was made?
//!                  yes ──▶ Epoch (a batch)
//!                  no  ──▶ the epoch stays open (every later command is due too)
//! ```
//!
//! The rule reads only the sequenced stream (each command's sequenced time and events), so a
//! replay of the journal closes the same epochs at the same commands with the same roots:
//! the submitter's roots and `l2x settle verify`'s are one computation. An epoch starts at
//! the first command after the previous one closed; the command that closes it is its last.
//!
//! A batch's sequence range is defined from the batch before it, not from the commands it
//! holds: `first_seq` is the previous batch's `last_seq + 1` (1 for batch 1), `last_seq` the
//! closing command's, and `commands` counts the commands in the range — fewer than
//! `last_seq − first_seq + 1` where the journal's sequence numbers have gaps (`l2x match`
//! numbers commands by input line, so a blank or bad line leaves one). So the ranges are
//! contiguous whatever gaps the journal has.
//! Time passes only with commands: an idle node sequences `Command::Tick`s so that epochs
//! close on time when nobody trades.
//!
//! An epoch that changed nothing — no leaf (its root is the last batch's), no market
//! state, no L1 queue entry taken (its queue count is the last batch's) and no withdrawal
//! — is not a batch: it is extended until a command changes something. So an idle
//! exchange commits nothing, and batch indexes run without gaps (an extended epoch keeps
//! its first command: its range holds the commands that changed nothing).
//!
//! An epoch's *changes* are the leaves of every holder whose collateral or positions its
//! commands changed (a holder whose leaf came back to what it was may be listed), in key
//! order: exactly what the tree's root moved by, and what a batch carries, with the market
//! state at its close ([`crate::market`]).
//!
//! An epoch also says what it did with the L1 queue ([`crate::queue`]): how many entries
//! the state machine has taken in all by its end (`l1_next − 1`) and the rolling hash at
//! that count, the withdrawals asked on L2 that left the ledger in it (a forced one
//! honoured is paid from its queue entry), and the entries it refused. A refunded deposit changes no leaf, but
//! the contract must learn of it: an epoch whose queue count moved is a batch.

use std::collections::BTreeSet;

use alloy_primitives::B256;
use l2x_engine::StateMachine;
use l2x_risk::Ledger;
use l2x_types::{Event, Holder, Sequenced};

use crate::leaf::{self, AccountLeaf};
use crate::market::{self, Market};
use crate::queue::{self, Withdrawal};
use crate::tree::Tree;

/// The most L1 work one epoch may give its batch: queue entries taken plus withdrawals. An
/// epoch that reaches it is due, whatever the policy, so that its commit's gas stays far
/// below a transaction's limit (2^24 since Osaka): each costs the contract some 3,000 (a
/// deposit) to 30,000 gas (a payment to a new claim), so 256 of them stay under 8M
/// (docs/SETTLEMENT.md, "Epochs"). Part of the epoch rule: a verifier must use the same.
pub const MAX_L1_OPS: u64 = 256;

/// When an epoch is due to close (it closes when it is due and has changed something).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// At the first command at least this long (sequenced time) after the epoch's first.
    pub max_ms: u64,
    /// At the command whose trades bring the epoch's to this many or more (0: no fill
    /// limit). One command can trade many times: an epoch may end with more.
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
    /// The first sequence number of its range: the previous epoch's `last_seq + 1` (1 for
    /// the first). The journal need not have a command with it (sequence numbers may have
    /// gaps).
    pub first_seq: u64,
    /// The command that closed it.
    pub last_seq: u64,
    /// The sequenced time of its last command, ns.
    pub ts: u64,
    /// Commands in it: at least 1, at most `last_seq − first_seq + 1` (fewer where the
    /// journal's sequence numbers have gaps).
    pub commands: u64,
    /// Trades in it.
    pub fills: u64,
    /// The root before it.
    pub prev_root: B256,
    /// The root after it.
    pub root: B256,
    /// The market state after its last command: every listed instrument, in order.
    pub markets: Vec<Market>,
    /// The leaves it changed, in key order.
    pub changes: Vec<AccountLeaf>,
    /// L1 queue entries taken in all up to its end (the state's `l1_next − 1`).
    pub queue_count: u64,
    /// The queue's rolling hash after entry `queue_count` (zero for none).
    pub queue_hash: B256,
    /// What left the ledger in it at L2's request, in sequence order: the operator's
    /// withdrawals and the accounts' own (a forced withdrawal honoured is paid from its
    /// queue entry).
    pub withdrawals: Vec<Withdrawal>,
    /// The queue indexes it refused (deposits refunded, forced withdrawals rejected), in
    /// order.
    pub rejected: Vec<u64>,
}

/// Cuts the stream into epochs and keeps the state tree.
#[derive(Clone, Debug)]
pub struct Epochs {
    policy: Policy,
    tree: Tree,
    next_index: u64,
    /// The last closed epoch's last command (0: none yet): the next range starts after it.
    closed_seq: u64,
    /// The open epoch's first command's sequenced time, once it has a command.
    open: Option<u64>,
    commands: u64,
    fills: u64,
    touched: BTreeSet<Holder>,
    /// The market state of the last closed epoch.
    markets: Vec<Market>,
    /// Queue entries taken so far, and the rolling hash after them.
    queue_count: u64,
    queue_hash: B256,
    /// The last closed epoch's queue count.
    closed_queue_count: u64,
    /// The open epoch's withdrawals and refused entries.
    withdrawals: Vec<Withdrawal>,
    rejected: Vec<u64>,
}

impl Epochs {
    /// No epoch yet, an empty tree.
    pub fn new(policy: Policy) -> Epochs {
        Epochs {
            policy,
            tree: Tree::new(),
            next_index: 1,
            closed_seq: 0,
            open: None,
            commands: 0,
            fills: 0,
            // The insurance fund and the fee account exist from the start: in the first root.
            touched: BTreeSet::from([Holder::Insurance, Holder::Fees]),
            markets: Vec::new(),
            queue_count: 0,
            queue_hash: B256::ZERO,
            closed_queue_count: 0,
            withdrawals: Vec::new(),
            rejected: Vec::new(),
        }
    }

    /// The tree as of the last closed epoch.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Records one applied command; returns the epoch it closed, if it closed one.
    pub fn on_command(&mut self, cmd: &Sequenced, events: &[Event], state: &StateMachine) -> Option<Epoch> {
        let start_ts = *self.open.get_or_insert(cmd.ts.0);
        self.commands += 1;
        self.record(cmd, events);
        debug_assert_eq!(self.queue_count, state.l1().next - 1, "the queue count is l1_next − 1");
        let by_time = cmd.ts.0.saturating_sub(start_ts) >= self.policy.max_ms.saturating_mul(1_000_000);
        let by_fills = self.policy.max_fills > 0 && self.fills >= self.policy.max_fills;
        let l1_ops = self.queue_count - self.closed_queue_count + self.withdrawals.len() as u64;
        if !(by_time || by_fills || l1_ops >= MAX_L1_OPS) {
            return None;
        }
        let ledger = state.ledger();
        let mut changes: Vec<AccountLeaf> =
            std::mem::take(&mut self.touched).into_iter().filter_map(|holder| leaf_of(ledger, holder)).collect();
        changes.sort_by_key(|l| l.account);
        let prev_root = self.tree.root();
        // Leaves whose value did not change leave the tree as it was.
        let root = self.tree.update(changes.iter().map(|l| (l.account, Some(l.hash()))));
        let queue_moved = self.queue_count != self.closed_queue_count || !self.withdrawals.is_empty();
        if root == prev_root && market::matches(ledger, &self.markets) && !queue_moved {
            // Nothing changed: no batch; the epoch goes on.
            return None;
        }
        let markets = market::of(ledger);
        let epoch = Epoch {
            index: self.next_index,
            first_seq: self.closed_seq + 1,
            last_seq: cmd.seq.0,
            ts: cmd.ts.0,
            commands: self.commands,
            fills: self.fills,
            prev_root,
            root,
            markets: markets.clone(),
            changes,
            queue_count: self.queue_count,
            queue_hash: self.queue_hash,
            withdrawals: std::mem::take(&mut self.withdrawals),
            rejected: std::mem::take(&mut self.rejected),
        };
        self.markets = markets;
        self.closed_queue_count = self.queue_count;
        self.next_index += 1;
        self.closed_seq = cmd.seq.0;
        self.open = None;
        self.commands = 0;
        self.fills = 0;
        Some(epoch)
    }

    /// Records what one command's events say: the holders touched, the trades, the queue
    /// entry taken, the withdrawal made.
    fn record(&mut self, cmd: &Sequenced, events: &[Event]) {
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
        if let Some((entry, refused)) = queue::entry_of(&cmd.cmd, events) {
            debug_assert_eq!(entry.index, self.queue_count + 1, "entries are taken in order");
            self.queue_hash = entry.next_hash(self.queue_hash);
            self.queue_count = entry.index;
            if refused {
                self.rejected.push(entry.index);
            }
        }
        self.withdrawals.extend(queue::withdrawal_of(&cmd.cmd, events));
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

    /// Applies the journal's commands after the last one read, up to `until` (`u64::MAX`:
    /// the journal's end), appending the epochs they close to `closed` as they close (so
    /// that on an error `closed` still has those before it). A torn tail ends the read
    /// cleanly; the next read continues from there.
    ///
    /// A reader of a live journal passes the writer's published sequence number as `until`:
    /// the read stops after that record and never looks at the one being appended (see
    /// `l2x_sequencer::journal`, "Reading a journal that is being written").
    ///
    /// # Errors
    /// The journal's.
    pub fn read(
        &mut self,
        dir: &std::path::Path,
        closed: &mut Vec<Epoch>,
        until: u64,
    ) -> Result<(), l2x_sequencer::journal::JournalError> {
        let mut events = Vec::new();
        l2x_sequencer::journal::scan(dir, |cmd| {
            if cmd.seq.0 > until {
                return std::ops::ControlFlow::Break(());
            }
            if cmd.seq.0 > self.last_seq {
                events.clear();
                self.state.apply(&cmd, &mut events);
                closed.extend(self.epochs.on_command(&cmd, &events, &self.state));
                self.last_seq = cmd.seq.0;
            }
            if cmd.seq.0 == until { std::ops::ControlFlow::Break(()) } else { std::ops::ControlFlow::Continue(()) }
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
    Follower::new(policy, ledger).read(dir, &mut closed, u64::MAX)?;
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

#[cfg(test)]
mod tests {
    use l2x_types::{AccountId, Amount, Command, Seq, Timestamp};

    use super::*;
    use crate::batch::Batch;

    fn at(seq: u64, cmd: Command) -> Sequenced {
        Sequenced { seq: Seq(seq), ts: Timestamp(seq * 1_000_000), cmd }
    }

    fn deposit(seq: u64, account: u64) -> Sequenced {
        at(seq, Command::Deposit { to: Holder::Account(AccountId(account)), amount: Amount(1_000_000) })
    }

    /// Issue 14 review: a journal with gaps in its sequence numbers (`l2x match` numbers
    /// commands by input line) gave batches whose `first_seq` was their first command's and
    /// whose `commands` was a count, which the loader refused once committed. A batch's range
    /// starts after the previous batch's (at 1 for batch 1), ends at its closing command, and
    /// counts the commands in it.
    #[test]
    fn batch_ranges_are_contiguous_over_sequence_gaps() {
        // Every command is due; deposits change a leaf, ticks change nothing.
        let mut epochs = Epochs::new(Policy { max_ms: 0, max_fills: 0 });
        let mut state = StateMachine::new();
        let stream = [deposit(3, 1), deposit(4, 2), deposit(7, 3), at(8, Command::Tick), deposit(12, 1)];
        let mut closed = Vec::new();
        let mut events = Vec::new();
        for cmd in &stream {
            events.clear();
            state.apply(cmd, &mut events);
            closed.extend(epochs.on_command(cmd, &events, &state));
        }
        let ranges: Vec<(u64, u64, u64, u64)> =
            closed.iter().map(|e| (e.index, e.first_seq, e.last_seq, e.commands)).collect();
        assert_eq!(ranges, [(1, 1, 3, 1), (2, 4, 4, 1), (3, 5, 7, 1), (4, 8, 12, 2)]);
        // Each one is a batch the loader reads after the one before it.
        let mut prev: Option<(Batch, Vec<Market>)> = None;
        for e in &closed {
            let b = Batch::of(e);
            let path = std::path::PathBuf::from(Batch::file_name(e.index));
            let before = prev.as_ref().map(|(b, m)| (b, m.as_slice()));
            let checked = crate::batch_set::check_next(&path, &b.encode(), e.index, before);
            assert!(checked.is_ok(), "batch {}: {checked:?}", e.index);
            prev = Some((b, e.markets.clone()));
        }
    }
}
