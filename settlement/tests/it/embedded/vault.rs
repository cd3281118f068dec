//! The vault on the embedded chain — the same bytecode as on anvil (`tests/it/vault.rs`):
//! owners deposit, the queue is read through `QueueReader`, batches consume it, a forced
//! withdrawal and an L2 withdrawal are paid, claims move exact tokens, the clock's claim
//! delay and deadline hold, and a restart keeps all of it.

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolCall;
use l2x_engine::StateMachine;
use l2x_risk::Ledger;
use l2x_settlement::batch::Batch;
use l2x_settlement::chain::abi::{L2xSettlement as S, L2xTestUSD as T};
use l2x_settlement::chain::{Chain, QueueReader, WEEK};
use l2x_settlement::embedded::{CHAIN_ID, EmbeddedChain, FixedClock};
use l2x_settlement::epoch::{Epochs, Policy};
use l2x_types::{AccountId, Amount, Command, L1Address};

use crate::common::apply_closing;

const ALICE: Address = Address::repeat_byte(0xa1);
const BOB: Address = Address::repeat_byte(0xb0);
/// One dollar in token base units (6 decimals).
const USD: u64 = 1_000_000;

pub(super) fn view<C: SolCall>(chain: &EmbeddedChain, to: Address, call: &C) -> C::Return {
    C::abi_decode_returns(&chain.call(to, call.abi_encode()).unwrap()).unwrap()
}

pub(super) fn send<C: SolCall>(chain: &mut EmbeddedChain, from: Address, to: Address, call: &C) {
    chain.transact(from, to, call.abi_encode()).unwrap();
}

fn balance(chain: &EmbeddedChain, holder: Address) -> U256 {
    view(chain, chain.token(), &T::balanceOfCall { holder })
}

/// The vault's books, checked against its token balance: it holds exactly what it owes.
fn books(chain: &EmbeddedChain) -> (U256, U256, U256) {
    let v = chain.address();
    let books = (
        view(chain, v, &S::l2TotalCall {}),
        view(chain, v, &S::pendingDepositsCall {}),
        view(chain, v, &S::totalClaimableCall {}),
    );
    assert_eq!(balance(chain, v), books.0 + books.1 + books.2, "the vault holds exactly what it owes");
    books
}

/// The commands of the queue entries `from..=to`, read through `QueueReader` at the
/// confirmed block, each checked against the rolling hash the chain stores after it.
fn entries(chain: &mut EmbeddedChain, from: u64, to: u64) -> Vec<Command> {
    let block = chain.confirmed_block(1).unwrap().unwrap();
    let mut prev = chain.queue_hash(from - 1, block).unwrap();
    (from..=to)
        .map(|i| {
            let e = chain.entry(i, block).unwrap();
            prev = e.next_hash(prev);
            assert_eq!(chain.queue_hash(i, block).unwrap(), prev, "entry {i} hashes as the contract did");
            e.command().unwrap()
        })
        .collect()
}

/// Issue 16: money moves through the vault on the embedded chain exactly as on anvil, and
/// the chain's file keeps it across a restart.
#[test]
fn deposits_withdrawals_and_claims_on_the_embedded_chain_move_exact_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    let (vault, token) = (chain.address(), chain.token());
    assert_eq!(chain.binding().unwrap(), (CHAIN_ID, vault, token));
    for who in [ALICE, BOB] {
        chain.mint_test_usd(who, U256::from(10_000 * USD)).unwrap();
        send(&mut chain, who, token, &T::approveCall { spender: vault, amount: U256::MAX });
    }
    send(&mut chain, ALICE, vault, &S::depositCall { account: 1, amount: 5_000 * USD });
    send(&mut chain, BOB, vault, &S::depositCall { account: 2, amount: 3_000 * USD });
    send(&mut chain, ALICE, vault, &S::depositInsuranceCall { amount: 1_000 * USD });
    assert_eq!(books(&chain), (U256::ZERO, U256::from(9_000 * USD), U256::ZERO));

    let mut state = StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(Policy { max_ms: 1_000, max_fills: 0 });
    let (chain_id, contract, token_address) = chain.binding().unwrap();
    let bind = Command::L1Bind {
        chain_id,
        contract: L1Address(contract.into_array()),
        token: L1Address(token_address.into_array()),
    };
    let mut cmds = vec![bind];
    cmds.extend(entries(&mut chain, 1, 3));
    let first = apply_closing(&mut state, &mut epochs, 1, 10, &cmds);
    chain.commit(&Batch::of(&first[0])).unwrap();
    assert_eq!(books(&chain), (U256::from(9_000 * USD), U256::ZERO, U256::ZERO));

    send(&mut chain, ALICE, vault, &S::requestForcedWithdrawalCall { account: 1, amount: 1_000 * USD });
    send(&mut chain, BOB, vault, &S::requestForcedWithdrawalCall { account: 2, amount: 4_000 * USD });
    let mut cmds = entries(&mut chain, 4, 5);
    cmds.push(Command::Withdraw { account: AccountId(2), amount: Amount((500 * USD).cast_signed()) });
    let second = apply_closing(&mut state, &mut epochs, 5, 50, &cmds);
    assert_eq!((second[0].queue_count, second[0].rejected.clone()), (5, vec![5]));
    chain.commit(&Batch::of(&second[0])).unwrap();
    assert_eq!(books(&chain), (U256::from(7_500 * USD), U256::ZERO, U256::from(1_500 * USD)));

    // A restart keeps the books; then each owner claims exactly what was credited.
    drop(chain);
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    assert_eq!(books(&chain), (U256::from(7_500 * USD), U256::ZERO, U256::from(1_500 * USD)));
    send(&mut chain, ALICE, vault, &S::claimCall {});
    send(&mut chain, BOB, vault, &S::claimCall {});
    assert_eq!(balance(&chain, ALICE), U256::from(5_000 * USD));
    assert_eq!(balance(&chain, BOB), U256::from(7_500 * USD));
    let err = chain.transact(ALICE, vault, S::claimCall {}.abi_encode()).unwrap_err();
    assert!(err.to_string().contains("NothingToClaim"), "{err}");
    assert_eq!(books(&chain), (U256::from(7_500 * USD), U256::ZERO, U256::ZERO));
}

/// The clock decides the freeze on the embedded chain too: an entry waiting exactly the
/// deadline does not let anyone freeze; one second more does. Frozen, the deposits still
/// queued are refunded to their depositors and the vault ends empty.
#[test]
fn the_embedded_clock_decides_the_freeze_to_the_second_and_queued_deposits_are_refunded() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    let (vault, token) = (chain.address(), chain.token());
    chain.mint_test_usd(ALICE, U256::from(USD)).unwrap();
    send(&mut chain, ALICE, token, &T::approveCall { spender: vault, amount: U256::MAX });
    send(&mut chain, ALICE, vault, &S::depositCall { account: 1, amount: USD });
    send(&mut chain, ALICE, vault, &S::requestForcedWithdrawalCall { account: 1, amount: USD });
    chain.mint_test_usd(BOB, U256::from(2 * USD)).unwrap();
    send(&mut chain, BOB, token, &T::approveCall { spender: vault, amount: U256::MAX });
    send(&mut chain, BOB, vault, &S::depositCall { account: 2, amount: 2 * USD });
    let err = chain.transact(BOB, vault, S::refundQueuedCall { count: 9 }.abi_encode()).unwrap_err();
    assert!(err.to_string().contains("NotFrozen"), "{err}");
    let block = chain.confirmed_block(1).unwrap().unwrap();
    let queued = chain.entry(1, block).unwrap().requested_at;
    // The freeze's block is one second after the chain's time.
    chain.advance_time(queued + WEEK - 1 - chain.timestamp()).unwrap();
    let err = chain.transact(BOB, vault, S::freezeCall {}.abi_encode()).unwrap_err();
    assert!(err.to_string().contains("NotOverdue"), "{err}");
    chain.advance_time(1).unwrap();
    send(&mut chain, BOB, vault, &S::freezeCall {});
    assert!(view(&chain, vault, &S::frozenCall {}));
    // Frozen, the queued deposits go back to their depositors, a few per call, each once;
    // the forced withdrawal between them is moot.
    assert_eq!(books(&chain), (U256::ZERO, U256::from(3 * USD), U256::ZERO));
    send(&mut chain, BOB, vault, &S::refundQueuedCall { count: 2 });
    assert_eq!(view(&chain, vault, &S::refundedCall {}), 2);
    assert_eq!(books(&chain), (U256::ZERO, U256::from(2 * USD), U256::from(USD)));
    send(&mut chain, BOB, vault, &S::refundQueuedCall { count: 9 });
    send(&mut chain, BOB, vault, &S::refundQueuedCall { count: 9 });
    assert_eq!(view(&chain, vault, &S::refundedCall {}), 3);
    assert_eq!(books(&chain), (U256::ZERO, U256::ZERO, U256::from(3 * USD)));
    send(&mut chain, ALICE, vault, &S::claimCall {});
    send(&mut chain, BOB, vault, &S::claimCall {});
    assert_eq!((balance(&chain, ALICE), balance(&chain, BOB)), (U256::from(USD), U256::from(2 * USD)));
    assert_eq!(books(&chain), (U256::ZERO, U256::ZERO, U256::ZERO));
    assert!(chain.queue_length(chain.block() + 1).is_err(), "a block the chain has not made");
}
