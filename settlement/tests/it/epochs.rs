//! Epochs over seeded command streams with trading, funding, withdrawals and liquidations:
//! every closed epoch's root is the root of a tree built from scratch over every leaf of
//! the state at that point, its changes cover every leaf that changed, a replay of the
//! journal closes the same epochs with the same roots, and the batches alone rebuild them.

use std::collections::BTreeMap;

use alloy_primitives::B256;
use l2x_engine::StateMachine;
use l2x_risk::Ledger;
use l2x_sequencer::journal::JournalWriter;
use l2x_settlement::batch::{self, Batch};
use l2x_settlement::epoch::{self, Epoch, Epochs, Policy};
use l2x_settlement::tree::root_of;
use l2x_types::Sequenced;

use crate::common::stream;

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
    crate::common::write_journal(dir.path(), &cmds);
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

/// Every epoch of a seeded stream, with the state after its last command.
fn epochs_with_state(
    cmds: &[Sequenced],
    policy: Policy,
    mut at_close: impl FnMut(&Epoch, &StateMachine, usize),
) -> Vec<Epoch> {
    let mut state = StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(policy);
    let mut closed = Vec::new();
    let mut events = Vec::new();
    for cmd in cmds {
        events.clear();
        state.apply(cmd, &mut events);
        if let Some(e) = epochs.on_command(cmd, &events, &state) {
            let trades = events.iter().filter(|e| matches!(e, l2x_types::Event::Trade(_))).count();
            at_close(&e, &state, trades);
            closed.push(e);
        }
    }
    closed
}

/// RISK.md said funding settles "at epoch close"; it settles lazily, when a position
/// trades. The leaves keep each position's last funding index, and each batch carries the
/// market state at its close: from the two, equity and the funding an account owes are
/// exactly the ledger's, for every account at every batch, and some of it is owed (not yet
/// in collateral) at committed boundaries.
#[test]
fn funding_owed_is_computable_from_the_leaves_and_the_batch_market_state() {
    let cmds = stream(5, 4_000);
    let mut owed_at_boundaries = 0usize;
    let epochs = epochs_with_state(&cmds, Policy { max_ms: 500, max_fills: 0 }, |e, state, _| {
        let ledger = state.ledger();
        assert_eq!(e.markets, l2x_settlement::market::of(ledger), "epoch {}: the market state at its close", e.index);
        for slot in ledger.slots_by_id() {
            let leaf = l2x_settlement::leaf::AccountLeaf::of(ledger.account(slot));
            let equity = l2x_settlement::market::equity(&leaf, &e.markets).unwrap();
            assert_eq!(equity, ledger.health(slot).equity, "epoch {}, account {}", e.index, leaf.account);
            if l2x_settlement::market::funding_owed(&leaf, &e.markets).unwrap() != 0 {
                owed_at_boundaries += 1;
            }
        }
    });
    assert!(epochs.len() > 20);
    assert!(owed_at_boundaries > 0, "lazy funding: some positions carry an old index at a boundary");
    // The batches alone carry the same: the market state round-trips through the files.
    let dir = tempfile::tempdir().unwrap();
    for e in &epochs {
        Batch::of(e).write(dir.path()).unwrap();
    }
    let set = l2x_settlement::batch_set::BatchSet::load(dir.path()).unwrap();
    let last = set.state_at(epochs.len() as u64).unwrap();
    assert_eq!(last.markets, epochs.last().unwrap().markets);
    assert!(last.markets.iter().any(|m| m.fundingIndex != 0), "funding ticks moved an index");
}

/// An epoch whose commands changed no leaf and no market state is not a batch: an idle
/// exchange (ticks only) commits nothing, and the next change closes the overdue epoch at
/// once, its sequence range starting right after the last batch's.
#[test]
fn an_epoch_that_changed_nothing_is_not_a_batch() {
    use l2x_types::{AccountId, Amount, Command, Holder, Seq, Timestamp};
    let mut cmds = stream(7, 0);
    let mut ts = cmds.last().unwrap().ts.0;
    let mut push = |cmds: &mut Vec<Sequenced>, cmd: Command, step_ms: u64| {
        ts += step_ms * 1_000_000;
        let seq = Seq(cmds.len() as u64 + 1);
        cmds.push(Sequenced { seq, ts: Timestamp(ts), cmd });
    };
    let setup = cmds.len();
    for _ in 0..200 {
        push(&mut cmds, Command::Tick, 100);
    }
    push(&mut cmds, Command::Deposit { to: Holder::Account(AccountId(3)), amount: Amount(5) }, 100);
    let policy = Policy { max_ms: 500, max_fills: 0 };
    let epochs = epochs_with_state(&cmds, policy, |_, _, _| {});
    for pair in epochs.windows(2) {
        assert_eq!(pair[1].first_seq, pair[0].last_seq + 1, "contiguous ranges");
        assert!(
            pair[1].root != pair[1].prev_root || pair[1].markets != pair[0].markets,
            "batch {} changed nothing",
            pair[1].index
        );
    }
    let last = epochs.last().unwrap();
    assert_eq!(last.last_seq, cmds.len() as u64, "the deposit closes the overdue epoch");
    // The set-up's last epoch closes on one of the first ticks (500 ms of them); every
    // tick after that is folded into the deposit's batch.
    let before = &epochs[epochs.len() - 2];
    assert!(before.last_seq <= setup as u64 + 5, "the set-up's epoch closes on time: seq {}", before.last_seq);
    assert!(last.commands >= 195, "the ticks were folded into it: {} commands", last.commands);
    assert_eq!(last.changes.iter().map(|l| l.account).collect::<Vec<_>>(), [3]);
}

/// The last trades before the exchange goes idle close on the first tick at or after
/// epoch_ms from the epoch's first command: nothing waits for the next trade.
#[test]
fn an_idle_exchange_closes_its_last_epoch_on_a_tick() {
    use l2x_types::{Command, Seq, Timestamp};
    let mut cmds = stream(8, 300);
    let traded = cmds.len();
    let mut ts = cmds.last().unwrap().ts.0;
    for _ in 0..40 {
        ts += 50_000_000;
        cmds.push(Sequenced { seq: Seq(cmds.len() as u64 + 1), ts: Timestamp(ts), cmd: Command::Tick });
    }
    let max_ms = 400;
    let epochs = epochs_with_state(&cmds, Policy { max_ms, max_fills: 0 }, |_, _, _| {});
    let last = epochs.last().unwrap();
    assert!(last.last_seq > traded as u64, "closed by a tick");
    assert!(last.first_seq <= traded as u64, "the epoch of the last trades");
    let start = cmds[usize::try_from(last.first_seq - 1).unwrap()].ts.0;
    assert!(
        last.ts >= start + max_ms * 1_000_000 && last.ts < start + max_ms * 1_000_000 + 50_000_000,
        "the first tick past epoch_ms"
    );
    assert!(epochs.iter().all(|e| e.first_seq <= traded as u64), "no batch of ticks alone");
}

/// `epoch_fills` closes an epoch after the command whose trades bring it to the limit or
/// past it: one command can trade many times (a sweep, a liquidation), so an epoch may end
/// with more fills than the limit, but never with a command after the limit was reached.
#[test]
fn epoch_fills_closes_after_the_command_whose_fills_reach_the_limit() {
    let cmds = stream(2, 4_000);
    let limit = 7;
    let mut over = 0;
    let epochs =
        epochs_with_state(&cmds, Policy { max_ms: 1_000_000, max_fills: limit }, |e, _, last_command_trades| {
            if e.fills >= limit {
                let before = e.fills - last_command_trades as u64;
                assert!(before < limit, "epoch {}: {before} fills before its last command", e.index);
                if e.fills > limit {
                    over += 1;
                }
            }
        });
    assert!(epochs.iter().filter(|e| e.fills >= limit).count() > 20);
    assert!(over > 0, "some command traded past the limit");
}

/// A move of the market state alone — a mark, a funding index — changes what every holder
/// is worth and owes: the epoch that made it is a batch, though no leaf changed.
#[test]
fn a_mark_or_funding_move_alone_makes_a_batch() {
    use l2x_types::{Command, InstrumentId, Price, Seq, Timestamp};
    let mut cmds = stream(3, 0);
    let mut ts = cmds.last().unwrap().ts.0;
    let mut push = |cmds: &mut Vec<Sequenced>, cmd: Command| {
        ts += 200_000_000;
        cmds.push(Sequenced { seq: Seq(cmds.len() as u64 + 1), ts: Timestamp(ts), cmd });
    };
    for _ in 0..5 {
        push(&mut cmds, Command::Tick);
    }
    let oracle = cmds.len() as u64 + 1;
    push(&mut cmds, Command::Oracle { instrument: InstrumentId(1), price: Price(201) });
    for _ in 0..5 {
        push(&mut cmds, Command::Tick);
    }
    let epochs = epochs_with_state(&cmds, Policy { max_ms: 500, max_fills: 0 }, |_, _, _| {});
    let last = epochs.last().unwrap();
    assert_eq!(last.last_seq, oracle, "the oracle command closes the (overdue) epoch");
    assert_eq!(last.root, last.prev_root, "no leaf changed");
    assert_eq!(last.markets[1].mark, 201);
    assert_ne!(epochs[epochs.len() - 2].markets[1].mark, 201);
}

/// A follower of a live journal reads up to the writer's published sequence number and
/// never looks at the record after it (which a writer may be copying at that moment): a
/// damaged block right after the bound does not stop it, where a read to the end is an
/// error; and the next read, with the bound moved on, continues from where it stopped.
#[test]
fn a_bounded_read_never_looks_past_the_published_record() {
    let cmds = stream(7, 600);
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(dir.path(), 1 << 20).unwrap();
    let mut starts = Vec::new();
    for c in &cmds {
        starts.push(usize::try_from(w.position().1).unwrap());
        w.append(c).unwrap();
    }
    drop(w);
    let policy = Policy { max_ms: 500, max_fills: 8 };
    let whole = epoch::from_journal(dir.path(), policy, &Ledger::default()).unwrap();
    let bound = cmds[400].seq.0;
    let seg = dir.path().join("journal-00000000.l2xj");
    let clean = std::fs::read(&seg).unwrap();
    let mut damaged = clean.clone();
    damaged[starts[401] + 12] ^= 0x20;
    std::fs::write(&seg, &damaged).unwrap();
    let mut follower = epoch::Follower::new(policy, &Ledger::default());
    let mut closed = Vec::new();
    follower.read(dir.path(), &mut closed, bound).unwrap();
    assert!(epoch::from_journal(dir.path(), policy, &Ledger::default()).is_err(), "a read to the end sees it");
    std::fs::write(&seg, &clean).unwrap();
    follower.read(dir.path(), &mut closed, u64::MAX).unwrap();
    assert_eq!(closed, whole, "the two bounded reads close the epochs of one whole read");
}

/// Regression (issue 14, "one reader, one rule"): the settlement follower reads a journal
/// through the journal's own reader, so a missing first segment, a missing segment in the
/// middle and a missing last segment of a cleanly stopped journal are each an error naming
/// the gap — never epochs from a shorter or shifted history.
#[test]
fn the_follower_refuses_a_journal_with_a_missing_segment() {
    let cmds = stream(11, 300);
    let policy = Policy { max_ms: 300, max_fills: 0 };
    let clean = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(clean.path(), 4096).unwrap();
    for c in &cmds {
        w.append(c).unwrap();
    }
    w.close().unwrap();
    let whole = epoch::from_journal(clean.path(), policy, &Ledger::default()).unwrap();
    let segments = l2x_sequencer::journal::segments(clean.path()).unwrap();
    assert!(segments.len() >= 4, "{} segments", segments.len());
    let last = segments.len() - 1;
    for missing in [0, 1, last] {
        let case = tempfile::tempdir().unwrap();
        for (_, path) in &segments {
            std::fs::copy(path, case.path().join(path.file_name().unwrap())).unwrap();
        }
        std::fs::copy(clean.path().join("journal.end"), case.path().join("journal.end")).unwrap();
        let gone = case.path().join(segments[missing].1.file_name().unwrap());
        std::fs::remove_file(&gone).unwrap();
        let e = epoch::from_journal(case.path(), policy, &Ledger::default()).unwrap_err().to_string();
        assert!(e.contains("missing"), "segment {missing}: {e}");
        let mut closed = Vec::new();
        let read = epoch::Follower::new(policy, &Ledger::default()).read(case.path(), &mut closed, u64::MAX);
        assert!(read.is_err(), "segment {missing}: the live follower too");
        assert!(whole.starts_with(&closed), "segment {missing}: only epochs of the true history before the error");
    }
}

/// `keccak256(abi.encodePacked(prev, kind, index, account, amount, from, requestedAt))` of
/// the L1 command `cmd` taken as entry `index`, by alloy's packed ABI encoding.
fn reference_hash(prev: B256, index: u64, cmd: &l2x_types::Command) -> B256 {
    use alloy_primitives::{Address, keccak256};
    use alloy_sol_types::{SolType, sol_data};
    use l2x_types::{Command, Holder};
    type Packed = (
        sol_data::FixedBytes<32>,
        sol_data::Uint<8>,
        sol_data::Uint<64>,
        sol_data::Uint<64>,
        sol_data::Uint<64>,
        sol_data::Address,
        sol_data::Uint<64>,
    );
    let (kind, account, amount, from, at) = match *cmd {
        Command::L1Deposit { to, amount, from, requested_at, .. } => match to {
            Holder::Account(a) => (0u8, a.0, amount, from, requested_at),
            Holder::Insurance => (1, u64::MAX, amount, from, requested_at),
            Holder::Fees => (0, u64::MAX - 1, amount, from, requested_at),
        },
        Command::ForcedWithdrawal { account, amount, from, requested_at, .. } => {
            (2, account.0, amount, from, requested_at)
        }
        ref other => panic!("a queue event from {other:?}"),
    };
    let packed =
        Packed::abi_encode_packed(&(prev, kind, index, account, amount.0.cast_unsigned(), Address::from(from.0), at));
    assert_eq!(packed.len(), 85);
    keccak256(packed)
}

/// The L1 queue fields of every epoch, computed independently of `l2x_settlement::queue`:
/// the entries and their outcomes from the events, the hash by alloy's packed ABI encoding.
fn queue_reference(cmds: &[Sequenced], closed: &[Epoch]) -> [usize; 5] {
    use l2x_settlement::queue::Withdrawal;
    use l2x_types::{Command, Event, Holder};
    let mut state = StateMachine::with_ledger(Ledger::default());
    let (mut events, mut count, mut hash) = (Vec::new(), 0u64, B256::ZERO);
    let (mut withdrawals, mut rejected) = (Vec::new(), Vec::new());
    // Credited, refunded, honoured, forced rejected, operator withdrawals.
    let mut seen = [0usize; 5];
    for c in cmds {
        events.clear();
        state.apply(c, &mut events);
        for ev in &events {
            let (index, refused, outcome) = match *ev {
                Event::L1Credited { index, .. } => (index, false, 0),
                Event::L1Refunded { index, .. } => (index, true, 1),
                // Paid by the contract from its queue entry: not among the withdrawals.
                Event::ForcedWithdrawn { index, .. } => (index, false, 2),
                Event::ForcedRejected { index, .. } => (index, true, 3),
                Event::Balance { holder: Holder::Account(a), .. } => {
                    if let Command::Withdraw { account, amount } = c.cmd
                        && account == a
                    {
                        withdrawals.push(Withdrawal { account: a.0, amount: amount.0.cast_unsigned() });
                        seen[4] += 1;
                    }
                    continue;
                }
                _ => continue,
            };
            seen[outcome] += 1;
            hash = reference_hash(hash, index, &c.cmd);
            assert_eq!(index, count + 1, "entries in order");
            count = index;
            if refused {
                rejected.push(index);
            }
        }
        if let Some(e) = closed.iter().find(|e| e.last_seq == c.seq.0) {
            let expected = (count, hash, std::mem::take(&mut withdrawals), std::mem::take(&mut rejected));
            assert_eq!(
                (e.queue_count, e.queue_hash, e.withdrawals.clone(), e.rejected.clone()),
                expected,
                "epoch {}",
                e.index
            );
            assert_eq!(state.l1().next - 1, count);
        }
    }
    seen
}

/// Issue 16: epochs state the L1 queue they consumed — the count, the rolling hash, the
/// withdrawals asked on L2, the refused entries — and a replay of the journal
/// gives the same epochs.
#[test]
fn epochs_carry_the_l1_queue_and_a_replay_gives_the_same() {
    let cmds = crate::common::stream_l1(21, 3_000);
    let policy = Policy { max_ms: 300, max_fills: 0 };
    let direct = run(&cmds, policy);
    let seen = queue_reference(&cmds, &direct);
    assert!(seen.iter().all(|&n| n > 0), "credited, refunded, honoured, rejected, operator withdrawals: {seen:?}");
    let dir = tempfile::tempdir().unwrap();
    crate::common::write_journal(dir.path(), &cmds);
    assert_eq!(epoch::from_journal(dir.path(), policy, &Ledger::default()).unwrap(), direct);
    // Every batch round-trips with its queue sections.
    for e in &direct {
        let contents = Batch::decode(&Batch::of(e).encode()).unwrap().contents().unwrap();
        assert_eq!((contents.withdrawals, contents.rejected), (e.withdrawals.clone(), e.rejected.clone()));
    }
}

/// Issue 16: a refunded deposit changes no leaf and no market, but the contract must learn
/// that the entry was consumed: the epoch is a batch.
#[test]
fn a_refund_alone_makes_a_batch() {
    use l2x_types::{Amount, Command, Holder, L1Address, Seq, Timestamp};
    let mut cmds = stream(7, 0);
    let mut ts = cmds.last().unwrap().ts.0;
    for _ in 0..20 {
        ts += 100_000_000;
        cmds.push(Sequenced { seq: Seq(cmds.len() as u64 + 1), ts: Timestamp(ts), cmd: Command::Tick });
    }
    let from = L1Address([1; 20]);
    let refund = Command::L1Deposit { index: 1, to: Holder::Fees, amount: Amount(5), from, requested_at: 9 };
    cmds.push(Sequenced { seq: Seq(cmds.len() as u64 + 1), ts: Timestamp(ts + 100_000_000), cmd: refund });
    let epochs = run(&cmds, Policy { max_ms: 500, max_fills: 0 });
    let last = epochs.last().unwrap();
    assert_eq!(last.last_seq, cmds.len() as u64, "the refund closes a batch");
    assert_eq!((last.root, last.changes.len()), (last.prev_root, 0), "no leaf changed");
    assert_eq!((last.queue_count, last.rejected.clone(), last.withdrawals.len()), (1, vec![1], 0));
    assert_ne!(last.queue_hash, B256::ZERO);
}

/// Issue 16: an account's own withdrawal, asked over the wire, is listed in the batch that
/// covers it exactly as an operator's; one the state machine refused (margin, a bad amount)
/// is not, and changes no leaf.
#[test]
fn a_wire_withdrawal_is_in_its_batch_and_a_refused_one_is_not() {
    use l2x_settlement::queue::Withdrawal;
    use l2x_types::{AccountId, Amount, Command, L1Address, Seq, Timestamp};
    let mut cmds = stream(7, 0);
    let policy = Policy { max_ms: 500, max_fills: 0 };
    let mut ts = cmds.last().unwrap().ts.0;
    let mut push = |cmds: &mut Vec<Sequenced>, cmd| {
        ts += 600_000_000;
        cmds.push(Sequenced { seq: Seq(cmds.len() as u64 + 1), ts: Timestamp(ts), cmd });
    };
    let request = |account, amount, request_id| Command::WithdrawRequest {
        account: AccountId(account),
        amount: Amount(amount),
        request_id,
    };
    // Account 3 holds 2,000 USDC, account 1 a million; the journal is bound to a vault
    // after the stream's operator deposits (unbound, every request is refused `no_vault`).
    let (contract, token) = (L1Address([0xc0; 20]), L1Address([0x70; 20]));
    push(&mut cmds, Command::L1Bind { chain_id: 31_337, contract, token });
    push(&mut cmds, Command::Tick);
    push(&mut cmds, request(3, 2_000_000_001, 1));
    push(&mut cmds, request(1, 0, 2));
    let honoured = cmds.len() as u64 + 1;
    push(&mut cmds, request(3, 1_500_000_000, 3));
    push(&mut cmds, request(1, -7, 4));
    push(&mut cmds, request(99, 1, 5));
    push(&mut cmds, request(3, 500_000_001, 6));
    push(&mut cmds, Command::Tick);
    let epochs = run(&cmds, policy);
    let listed: Vec<Withdrawal> = epochs.iter().flat_map(|e| e.withdrawals.clone()).collect();
    assert_eq!(listed, [Withdrawal { account: 3, amount: 1_500_000_000 }], "only the honoured one, once");
    let covering = epochs.iter().position(|e| e.last_seq >= honoured).unwrap();
    let batch = &epochs[covering];
    // The tick and the two refused after it changed nothing, so the 500 ms limit closed no
    // batch at them: its batch runs from the tick to it, and closes at it.
    assert_eq!((batch.first_seq, batch.last_seq, batch.commands), (honoured - 3, honoured, 4));
    assert_eq!(batch.withdrawals, listed, "in the batch that covers it");
    assert!(batch.changes.iter().any(|l| l.account == 3), "its leaf changed");
    let contents = Batch::decode(&Batch::of(batch).encode()).unwrap().contents().unwrap();
    assert_eq!(contents.withdrawals, listed, "the batch's data carries it");
    // The refused ones after it changed nothing (no leaf, no withdrawal): no batch again.
    assert_eq!(epochs.last().unwrap().last_seq, honoured);
}

/// Issue 16: an epoch is due once its L1 work — queue entries taken plus withdrawals —
/// reaches `MAX_L1_OPS`, however long its time limit: 600 deposits and withdrawals in one
/// millisecond make three batches of 256, 256 and the rest (at the time limit).
#[test]
fn an_epoch_closes_at_256_l1_operations() {
    use l2x_settlement::epoch::MAX_L1_OPS;
    use l2x_types::{AccountId, Amount, Command, Holder, L1Address, Seq, Timestamp};
    let mut cmds = stream(7, 0);
    let ts = cmds.last().unwrap().ts.0;
    let from = L1Address([1; 20]);
    for i in 1..=600u64 {
        let account = AccountId(i % 30 + 1);
        let cmd = if i % 2 == 0 {
            Command::Withdraw { account, amount: Amount(1) }
        } else {
            Command::L1Deposit {
                index: i / 2 + 1,
                to: Holder::Account(account),
                amount: Amount(3),
                from,
                requested_at: 9,
            }
        };
        cmds.push(Sequenced { seq: Seq(cmds.len() as u64 + 1), ts: Timestamp(ts + 1), cmd });
    }
    let end = cmds.last().unwrap().ts.0 + 3_600_000_000_000;
    cmds.push(Sequenced { seq: Seq(cmds.len() as u64 + 1), ts: Timestamp(end), cmd: Command::Tick });
    let epochs = run(&cmds, Policy { max_ms: 3_600_000, max_fills: 0 });
    let l1: Vec<u64> = epochs
        .iter()
        .filter(|e| e.queue_count > 0)
        .map(|e| e.withdrawals.len() as u64 + (e.queue_count - prev_count(&epochs, e)))
        .collect();
    assert_eq!(l1, [MAX_L1_OPS, MAX_L1_OPS, 600 - 2 * MAX_L1_OPS]);
}

/// The queue count of the batch before `e` (0 for the first).
fn prev_count(epochs: &[Epoch], e: &Epoch) -> u64 {
    epochs.iter().take_while(|x| x.index < e.index).last().map_or(0, |x| x.queue_count)
}
