//! The embedded chain as a small EVM chain: the genesis's token and contract at their fixed
//! addresses, users moving the test token with exact balances and events, every account
//! kept across a reopen, and a clock whose blocks strictly increase and which tests move by
//! exact seconds.

use alloy::primitives::{Address, U256};
use alloy::sol_types::{SolCall, SolEvent};
use l2x_settlement::batch::Batch;
use l2x_settlement::chain::abi::L2xTestUSD as T;
use l2x_settlement::chain::{Chain, ChainError, runtime_code, test_usd_runtime_code};
use l2x_settlement::embedded::{
    DEPLOYER, EmbeddedChain, FixedClock, Receipt, SUBMITTER, recipient_key, settlement_address, token_address,
};

use super::{epochs, state_error};

const ALICE: Address = Address::repeat_byte(0xa1);
const BOB: Address = Address::repeat_byte(0xb0);
const CAROL: Address = Address::repeat_byte(0xc0);
/// One token in base units (6 decimals).
const USD: u64 = 1_000_000;
const T0: u64 = FixedClock::TESTS.0;

fn usd(n: u64) -> U256 {
    U256::from(n * USD)
}

fn balance(chain: &EmbeddedChain, holder: Address) -> U256 {
    let out = chain.call(chain.token(), T::balanceOfCall { holder }.abi_encode()).unwrap();
    T::balanceOfCall::abi_decode_returns(&out).unwrap()
}

fn transfer(chain: &mut EmbeddedChain, from: Address, to: Address, amount: U256) -> Result<Receipt, ChainError> {
    let token = chain.token();
    chain.transact(from, token, T::transferCall { to, amount }.abi_encode())
}

/// The `Transfer` events of a receipt, as (from, to, value).
fn transfers(receipt: &Receipt) -> Vec<(Address, Address, U256)> {
    let decoded = receipt.logs.iter().filter_map(|log| T::Transfer::decode_log(log).ok());
    decoded.map(|e| (e.data.from, e.data.to, e.data.value)).collect()
}

#[test]
fn the_genesis_puts_the_token_and_the_contract_at_fixed_addresses_with_the_artifacts_code() {
    let dir = tempfile::tempdir().unwrap();
    let chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    assert_eq!((chain.token(), chain.address()), (DEPLOYER.create(0), DEPLOYER.create(1)));
    assert_eq!((token_address(), settlement_address()), (chain.token(), chain.address()));
    let state = chain.state();
    assert_eq!((state.block, state.timestamp, state.genesis_timestamp), (0, T0, T0));
    let code_hash = |a: Address| state.accounts[&a].code_hash;
    assert_eq!(code_hash(chain.token()), alloy::primitives::keccak256(test_usd_runtime_code().unwrap()));
    assert_eq!(
        code_hash(chain.address()),
        alloy::primitives::keccak256(
            runtime_code(&l2x_settlement::chain::Config {
                feeRecipient: recipient_key().1,
                insuranceRecipient: recipient_key().1,
                ..l2x_settlement::chain::Config::local(SUBMITTER, chain.token())
            })
            .unwrap()
        )
    );
    assert_eq!(state.accounts[&DEPLOYER].nonce, 2, "two deployments");
    assert_eq!(state.accounts.len(), 3, "the deployer and its two contracts: {:?}", state.accounts.keys());
    let decimals = chain.call(chain.token(), T::decimalsCall {}.abi_encode()).unwrap();
    assert_eq!(T::decimalsCall::abi_decode_returns(&decimals).unwrap(), 6);
    chain.check_invariants().unwrap();
}

#[test]
fn users_move_test_usd_with_exact_balances_and_a_reopen_keeps_every_account() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    let token = chain.token();

    let minted = chain.mint_test_usd(ALICE, usd(1_000)).unwrap();
    assert_eq!(transfers(&minted), [(Address::ZERO, ALICE, usd(1_000))]);
    let sent = transfer(&mut chain, ALICE, BOB, usd(250)).unwrap();
    assert!(T::transferCall::abi_decode_returns(&sent.output).unwrap());
    assert_eq!(transfers(&sent), [(ALICE, BOB, usd(250))]);
    assert!(sent.gas_used > 21_000, "{}", sent.gas_used);
    assert_eq!((balance(&chain, ALICE), balance(&chain, BOB)), (usd(750), usd(250)));
    let supply = chain.call(token, T::totalSupplyCall {}.abi_encode()).unwrap();
    assert_eq!(T::totalSupplyCall::abi_decode_returns(&supply).unwrap(), usd(1_000));
    chain.check_invariants().unwrap();

    // More than Bob holds: the token's error, decoded; no block, no nonce, no change.
    let before = chain.state();
    let err = transfer(&mut chain, BOB, ALICE, usd(300)).unwrap_err();
    let ChainError::Reverted { from, to, reason } = &err else { panic!("{err}") };
    assert_eq!((*from, *to), (BOB, token));
    assert_eq!(reason, &format!("ERC20InsufficientBalance(sender {BOB}, balance 250000000, needed 300000000)"));
    assert!(err.is_refusal() && !err.is_retryable());
    assert_eq!(chain.state(), before);
    // A sender with code is refused by the EVM itself (EIP-3607).
    assert!(matches!(transfer(&mut chain, token, BOB, U256::ZERO), Err(ChainError::Evm { .. })));

    // The settlement contract works beside the token.
    let (closed, _, _) = epochs(1);
    chain.commit(&Batch::of(&closed[0])).unwrap();
    let state = chain.state();
    let nonce = |a: Address| state.accounts[&a].nonce;
    assert_eq!((nonce(ALICE), nonce(DEPLOYER), nonce(SUBMITTER)), (1, 3, 1));
    assert!(!state.accounts.contains_key(&BOB), "Bob sent nothing and holds no ether: an empty account");
    assert_eq!(state.block, 3);

    // A reopen keeps every account: nonce, balance, code hash, every storage slot.
    drop(chain);
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    assert_eq!(chain.state(), state);
    assert_eq!((balance(&chain, ALICE), balance(&chain, BOB)), (usd(750), usd(250)));
    let reader = EmbeddedChain::read_only(dir.path()).unwrap();
    assert_eq!(reader.state(), state);
    assert_eq!(balance(&reader, BOB), usd(250));
    let busy = state_error(EmbeddedChain::open(dir.path()).unwrap_err());
    assert!(busy.contains("held by another process"), "{busy}");

    // And continues: Bob pays Carol; a reader cannot send.
    transfer(&mut chain, BOB, CAROL, usd(50)).unwrap();
    assert_eq!((balance(&chain, BOB), balance(&chain, CAROL)), (usd(200), usd(50)));
    assert_eq!(chain.block(), 4);
    let mut reader = reader;
    assert!(matches!(reader.transact(BOB, token, Vec::<u8>::new()), Err(ChainError::Config(_))));
    assert!(matches!(reader.mint_test_usd(BOB, usd(1)), Err(ChainError::Config(_))));
    chain.check_invariants().unwrap();
}

#[test]
fn block_timestamps_strictly_increase_and_advance_time_moves_them_by_exactly_its_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    assert_eq!((chain.block(), chain.timestamp()), (0, T0));
    let stamps: Vec<u64> = (0..3).map(|_| chain.mint_test_usd(ALICE, usd(1)).unwrap().timestamp).collect();
    assert_eq!(stamps, [T0 + 1, T0 + 2, T0 + 3], "a clock that stands still: one second per block");

    assert_eq!(chain.advance_time(86_400).unwrap(), T0 + 3 + 86_400);
    assert_eq!((chain.block(), chain.timestamp()), (3, T0 + 3 + 86_400), "no block");
    let next = chain.mint_test_usd(ALICE, usd(1)).unwrap();
    assert_eq!((next.block, next.timestamp), (4, T0 + 3 + 86_400 + 1));
    chain.check_invariants().unwrap();

    // The time moved is in the file: a reopen keeps it.
    assert_eq!(chain.advance_time(10).unwrap(), T0 + 86_414);
    drop(chain);
    let chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    assert_eq!((chain.block(), chain.timestamp()), (4, T0 + 86_414));
    // A clock ahead of the chain sets the next block's time; one behind never takes it back.
    drop(chain);
    let ahead = T0 + 1_000_000;
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock(ahead)).unwrap();
    assert_eq!(chain.mint_test_usd(ALICE, usd(1)).unwrap().timestamp, ahead);
    assert_eq!(chain.mint_test_usd(ALICE, usd(1)).unwrap().timestamp, ahead + 1);
    drop(chain);
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    assert_eq!(chain.mint_test_usd(ALICE, usd(1)).unwrap().timestamp, ahead + 2);

    // Past u64::MAX: refused, the time unmoved. A reader cannot move it.
    assert!(matches!(chain.advance_time(u64::MAX), Err(ChainError::Config(_))));
    assert_eq!(chain.timestamp(), ahead + 2);
    let mut reader = EmbeddedChain::read_only(dir.path()).unwrap();
    assert!(matches!(reader.advance_time(1), Err(ChainError::Config(_))));
    assert_eq!(balance(&chain, ALICE), usd(7));
    chain.check_invariants().unwrap();
}
