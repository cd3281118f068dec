//! What contracts see of the chain (its number and time) and what it refuses to keep, with
//! contracts of the tests' own written in bytecode.

use revm::bytecode::Bytecode;
use revm::state::AccountInfo;

use super::*;

/// `TIMESTAMP PUSH0 MSTORE NUMBER PUSH1 32 MSTORE PUSH1 64 PUSH0 RETURN`: returns the
/// block's timestamp and number.
const READ_CLOCK: &[u8] = &[0x42, 0x5f, 0x52, 0x43, 0x60, 0x20, 0x52, 0x60, 0x40, 0x5f, 0xf3];
/// `TIMESTAMP PUSH0 SSTORE NUMBER PUSH1 1 SSTORE STOP`: keeps them in slots 0 and 1.
const KEEP_CLOCK: &[u8] = &[0x42, 0x5f, 0x55, 0x43, 0x60, 0x01, 0x55, 0x00];
/// `PUSH10 <init> PUSH0 MSTORE PUSH1 10 PUSH1 22 PUSH0 CREATE STOP`, where `<init>`
/// (`PUSH1 1 PUSH1 0 MSTORE8 PUSH1 1 PUSH1 0 RETURN`) deploys the one-byte code `0x01`.
const FACTORY: &[u8] = &[
    0x69, 0x60, 0x01, 0x60, 0x00, 0x53, 0x60, 0x01, 0x60, 0x00, 0xf3, 0x5f, 0x52, 0x60, 0x0a, 0x60, 0x16, 0x5f, 0xf0,
    0x00,
];

const ALICE: Address = Address::repeat_byte(0xa1);

/// Puts `code` at `address` as if the genesis had deployed it.
fn install(chain: &mut EmbeddedChain, address: Address, code: &[u8]) {
    let code = Bytecode::new_raw(Bytes::copy_from_slice(code));
    let hash = chain.genesis.adopt(address, code.clone());
    chain.db.insert_account_info(address, AccountInfo::new(U256::ZERO, 1, hash, code));
}

fn words(output: &[u8]) -> (u64, u64) {
    let word = |i: usize| u64::try_from(U256::from_be_slice(&output[i * 32..(i + 1) * 32])).unwrap();
    (word(0), word(1))
}

#[test]
fn calls_and_transactions_see_the_chains_block_number_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    let (read, keep) = (Address::repeat_byte(0x11), Address::repeat_byte(0x12));
    install(&mut chain, read, READ_CLOCK);
    install(&mut chain, keep, KEEP_CLOCK);
    let t0 = FixedClock::TESTS.0;
    assert_eq!(words(&chain.call(read, Bytes::new()).unwrap()), (t0, 0));

    let receipt = chain.transact(ALICE, keep, Bytes::new()).unwrap();
    assert_eq!((receipt.block, receipt.timestamp), (1, t0 + 1));
    let kept = |chain: &EmbeddedChain| {
        let storage = &chain.state().accounts[&keep].storage;
        (storage[&U256::ZERO].to::<u64>(), storage[&U256::from(1)].to::<u64>())
    };
    assert_eq!(kept(&chain), (t0 + 1, 1));

    assert_eq!(chain.advance_time(100).unwrap(), t0 + 101);
    assert_eq!(words(&chain.call(read, Bytes::new()).unwrap()), (t0 + 101, 1), "calls run at the chain's time");
    chain.transact(ALICE, keep, Bytes::new()).unwrap();
    assert_eq!(kept(&chain), (t0 + 102, 2));
    chain.check_invariants().unwrap();
}

#[test]
fn a_transaction_that_creates_code_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    let factory = Address::repeat_byte(0xfa);
    install(&mut chain, factory, FACTORY);
    let before = chain.state();
    let err = chain.transact(ALICE, factory, Bytes::new()).unwrap_err();
    let ChainError::Reverted { reason, .. } = &err else { panic!("{err}") };
    assert_eq!(reason, &format!("created code at {} (only the genesis's contracts have code here)", factory.create(1)));
    assert_eq!(chain.state(), before);
}

#[test]
fn the_wall_clock_is_past_the_tests_start() {
    assert!(WallClock.now() > FixedClock::TESTS.0);
}

/// A log of the contract with `BatchCommitted`'s topic 0 that does not decode is an error
/// (its batch would be committed with no store file), not a log skipped; other logs, of the
/// contract or not, are not batches.
#[test]
fn a_batch_committed_log_that_does_not_decode_is_an_error_not_skipped() {
    let contract = Address::repeat_byte(0xc0);
    let topic0 = C::BatchCommitted::SIGNATURE_HASH;
    let log = |address, topics: Vec<B256>, data: &[u8]| {
        Log::new(address, topics, Bytes::copy_from_slice(data)).expect("at most 4 topics")
    };
    // Topic 1 (the index) missing: BatchCommitted's topics do not decode.
    let broken = log(contract, vec![topic0], &[]);
    assert!(matches!(committed_index(contract, &broken), Err(ChainError::Decode { .. })));
    let index = B256::with_last_byte(7);
    let other_event = log(contract, vec![B256::repeat_byte(1), index], &[]);
    assert_eq!(committed_index(contract, &other_event).unwrap(), None);
    let elsewhere = log(Address::repeat_byte(0xee), vec![topic0, index], &[]);
    assert_eq!(committed_index(contract, &elsewhere).unwrap(), None);
}

/// The batch data store is created, and the chain directory synced, at every writable
/// open — not only when the first batch is written — so a directory made before it had a
/// store gets one at once.
#[test]
fn the_batch_store_is_created_at_open_not_at_the_first_commit() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap());
    let store = dir.path().join(batch_data::BATCHES_DIR);
    assert!(store.is_dir(), "created at open");
    std::fs::remove_dir(&store).unwrap();
    drop(EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap());
    assert!(store.is_dir(), "created again at the next open");
}
