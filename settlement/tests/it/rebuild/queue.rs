//! The L1 queue through a rebuild: owners deposit on the embedded chain, trade, one forced
//! withdrawal is honoured and one refused, the operator pays a withdrawal; the batch's
//! withdrawals and refused entries are commit arguments, and the rebuild checks them
//! against the data and gets every leaf.

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::SolCall;
use l2x_engine::StateMachine;
use l2x_risk::Ledger;
use l2x_settlement::batch::Batch;
use l2x_settlement::chain::abi::{L2xSettlement as S, L2xTestUSD as T};
use l2x_settlement::chain::{Chain, QueueReader, commit_call};
use l2x_settlement::embedded::{EmbeddedChain, FixedClock, SUBMITTER};
use l2x_settlement::epoch::{self, Epoch, Epochs, Policy};
use l2x_settlement::rebuild::{Finding, rebuild};
use l2x_types::{
    AccountId, Amount, ClientOrderId, Command, InstrumentId, L1Address, NewOrder, OrderType, Price, Qty, Side, StpMode,
    TimeInForce,
};

use crate::common::apply_closing;

const ALICE: Address = Address::repeat_byte(0xa1);
const BOB: Address = Address::repeat_byte(0xb0);
const USD: u64 = 1_000_000;

fn send<C: SolCall>(chain: &mut EmbeddedChain, from: Address, to: Address, call: &C) {
    chain.transact(from, to, call.abi_encode()).unwrap();
}

/// The commands of queue entries `from..=to` as the chain stores them.
fn entries(chain: &mut EmbeddedChain, from: u64, to: u64) -> Vec<Command> {
    let block = chain.confirmed_block(1).unwrap().unwrap();
    (from..=to).map(|i| chain.entry(i, block).unwrap().command().unwrap()).collect()
}

fn order(account: u64, side: Side, qty: i64) -> Command {
    Command::NewOrder(NewOrder {
        account: AccountId(account),
        cid: ClientOrderId(1),
        instrument: InstrumentId(0),
        side,
        order_type: OrderType::Limit,
        price: Some(Price(1_000)),
        qty: Qty(qty),
        tif: TimeInForce::Gtc,
        expire_ts: None,
        post_only: false,
        reduce_only: false,
        stp: StpMode::CancelTaker,
    })
}

/// The embedded chain with the owners' deposits and queue entries, and the epochs that
/// settle them (not committed yet), the state after them.
fn queued() -> (tempfile::TempDir, EmbeddedChain, Vec<Epoch>, StateMachine) {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    let (vault, token) = (chain.address(), chain.token());
    for who in [ALICE, BOB] {
        chain.mint_test_usd(who, U256::from(10_000 * USD)).unwrap();
        send(&mut chain, who, token, &T::approveCall { spender: vault, amount: U256::MAX });
    }
    send(&mut chain, ALICE, vault, &S::depositCall { account: 1, amount: 5_000 * USD });
    send(&mut chain, BOB, vault, &S::depositCall { account: 2, amount: 3_000 * USD });
    send(&mut chain, ALICE, vault, &S::depositInsuranceCall { amount: 1_000 * USD });

    let mut state = StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(Policy { max_ms: 1_000, max_fills: 0 });
    let (chain_id, contract, token) = chain.binding().unwrap();
    let bind =
        Command::L1Bind { chain_id, contract: L1Address(contract.into_array()), token: L1Address(token.into_array()) };
    let mut cmds = vec![bind];
    cmds.extend(crate::common::stream(1, 0)[..4].iter().map(|c| c.cmd.clone()));
    cmds.extend(entries(&mut chain, 1, 3));
    cmds.extend([order(2, Side::Sell, 20), order(1, Side::Buy, 20)]);
    let first = apply_closing(&mut state, &mut epochs, 1, 10, &cmds);
    let next_seq = cmds.len() as u64 + 1;

    send(&mut chain, ALICE, vault, &S::requestForcedWithdrawalCall { account: 1, amount: 1_000 * USD });
    send(&mut chain, BOB, vault, &S::requestForcedWithdrawalCall { account: 2, amount: 4_000 * USD });
    let mut cmds = entries(&mut chain, 4, 5);
    cmds.extend([
        Command::Withdraw { account: AccountId(2), amount: Amount((500 * USD).cast_signed()) },
        Command::Oracle { instrument: InstrumentId(0), price: Price(1_040) },
        Command::Funding { instrument: InstrumentId(0) },
    ]);
    let second = apply_closing(&mut state, &mut epochs, next_seq, 50, &cmds);
    (dir, chain, [first, second].concat(), state)
}

#[test]
fn withdrawals_and_refused_entries_are_checked_against_the_data_and_every_leaf_rebuilds() {
    let (dir, mut chain, closed, state) = queued();
    for e in &closed {
        chain.commit(&Batch::of(e)).unwrap();
    }
    let last = closed.last().unwrap();
    // Alice's forced withdrawal is paid from its queue entry; the operator's is listed.
    assert_eq!((last.queue_count, last.rejected.clone(), last.withdrawals.len()), (5, vec![5], 1));

    let r = rebuild(&mut EmbeddedChain::read_only(dir.path()).unwrap()).unwrap();
    assert!(r.agrees(), "{:?}", r.finding);
    assert_eq!(r.root(), last.root);
    let leaves: Vec<_> = r.state.leaves.values().cloned().collect();
    assert_eq!(leaves, epoch::all_leaves(&state));
    let h = r.batches.last().unwrap().header;
    assert_eq!((h.queue_count, h.withdrawals, h.rejected), (5, 1, 1));
    assert!(leaves.iter().any(|l| !l.positions.is_empty()));
}

/// Arguments the contract checks against its queue (`h.queueHash`, `rejected`) are compared
/// with the data too: data that says another queue hash, or refuses no entry where the call
/// refuses one, is an `Argument` finding naming it.
#[test]
fn a_queue_hash_or_rejected_that_is_not_the_datas_is_an_argument_finding() {
    for (field, edit) in [
        ("h.queueHash", (|e: &mut Epoch| e.queue_hash = B256::repeat_byte(4)) as fn(&mut Epoch)),
        ("rejected", |e: &mut Epoch| e.rejected.clear()),
    ] {
        let (_dir, mut chain, closed, _) = queued();
        let (last, before) = closed.split_last().unwrap();
        for e in before {
            chain.commit(&Batch::of(e)).unwrap();
        }
        let real = commit_call(&Batch::of(last)).unwrap();
        let mut crafted = last.clone();
        edit(&mut crafted);
        let mut call = commit_call(&Batch::of(&crafted)).unwrap();
        (call.h.queueHash, call.rejected) = (real.h.queueHash, real.rejected.clone());
        chain.transact(SUBMITTER, chain.address(), call.abi_encode()).unwrap();
        assert_eq!(chain.last_committed().unwrap().0, last.index, "the contract accepted it");
        let f = rebuild(&mut chain).unwrap().finding.unwrap();
        assert!(
            matches!(&f, Finding::Argument { index, field: named, .. } if *index == last.index && *named == field),
            "{f}"
        );
    }
}
