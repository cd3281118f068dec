//! Epochs over seeded command streams with trading, funding, withdrawals and liquidations:
//! every closed epoch's root is the root of a tree built from scratch over every leaf of
//! the state at that point, its changes cover every leaf that changed, a replay of the
//! journal closes the same epochs with the same roots, and the batches alone rebuild them.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

use std::collections::BTreeMap;
use std::str::FromStr;

use alloy_primitives::B256;
use l2x_engine::StateMachine;
use l2x_engine::journal::JournalWriter;
use l2x_risk::Ledger;
use l2x_settlement::batch::{self, Batch};
use l2x_settlement::epoch::{self, Epoch, Epochs, Policy};
use l2x_settlement::tree::root_of;
use l2x_types::{
    AccountId, Amount, Cancel, ClientOrderId, Command, Decimal, Holder, InstrumentId, InstrumentSpec, NewOrder,
    OrderType, Price, Qty, Seq, Sequenced, Side, StpMode, Symbol, TimeInForce, Timestamp,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn spec(symbol: &str) -> InstrumentSpec {
    let d = |s: &str| Decimal::from_str(s).unwrap();
    InstrumentSpec {
        symbol: Symbol::try_new(symbol).unwrap(),
        tick_size: d("1"),
        lot_size: d("1"),
        initial_margin: d("0.1"),
        maintenance_margin: d("0.05"),
        max_order_qty: d("100"),
        max_position_qty: d("1000"),
        price_band: d("0.3"),
        maker_fee: d("-0.0001"),
        taker_fee: d("0.0005"),
        liquidation_fee: d("0.01"),
        impact_notional: d("1000"),
        funding_interest: d("0.0001"),
        funding_clamp: d("0.01"),
    }
}

/// A seeded stream: two instruments, 30 accounts (some thinly funded, so that shocks
/// liquidate them), orders, cancels, oracle moves, funding ticks, withdrawals. Time moves
/// 1–40 ms per command.
fn stream(seed: u64, n: usize) -> Vec<Sequenced> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cmds = vec![
        Command::ListInstrument(Box::new(spec("BTC-PERP"))),
        Command::ListInstrument(Box::new(spec("ETH-PERP"))),
        Command::Oracle { instrument: InstrumentId(0), price: Price(1000) },
        Command::Oracle { instrument: InstrumentId(1), price: Price(200) },
        Command::Deposit { to: Holder::Insurance, amount: Amount(50_000_000_000) },
    ];
    for a in 1..=30u64 {
        let usdc = if a % 3 == 0 { 2_000 } else { 1_000_000 };
        cmds.push(Command::Deposit { to: Holder::Account(AccountId(a)), amount: Amount(usdc * 1_000_000) });
    }
    let mut marks = [1000i64, 200];
    for _ in 0..n {
        let i = rng.random_range(0..2usize);
        let instrument = InstrumentId(u32::try_from(i).unwrap());
        let account = AccountId(rng.random_range(1..=30));
        let cmd = match rng.random_range(0..100) {
            0..70 => {
                let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
                let tif = if rng.random_ratio(1, 4) { TimeInForce::Ioc } else { TimeInForce::Gtc };
                Command::NewOrder(NewOrder {
                    account,
                    cid: ClientOrderId(rng.random_range(1..20)),
                    instrument,
                    side,
                    order_type: OrderType::Limit,
                    price: Some(Price(marks[i] + rng.random_range(-marks[i] / 50..=marks[i] / 50))),
                    qty: Qty(rng.random_range(1..25)),
                    tif,
                    expire_ts: None,
                    post_only: false,
                    reduce_only: false,
                    stp: StpMode::CancelTaker,
                })
            }
            70..82 => {
                Command::Cancel(Cancel { account, cid: ClientOrderId(rng.random_range(1..20)), on_disconnect: false })
            }
            82..92 => {
                // Mostly small moves, now and then a shock.
                let step = if rng.random_ratio(1, 15) { marks[i] / 8 } else { marks[i] / 100 + 1 };
                marks[i] = (marks[i] + if rng.random_bool(0.5) { step } else { -step }).max(20);
                Command::Oracle { instrument, price: Price(marks[i]) }
            }
            92..97 => Command::Funding { instrument },
            _ => Command::Withdraw { account, amount: Amount(rng.random_range(1..5_000) * 1_000_000) },
        };
        cmds.push(cmd);
    }
    let mut ts = 1_000_000_000u64;
    cmds.into_iter()
        .enumerate()
        .map(|(k, cmd)| {
            ts += rng.random_range(1..40u64) * 1_000_000;
            Sequenced { seq: Seq(k as u64 + 1), ts: Timestamp(ts), cmd }
        })
        .collect()
}

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
