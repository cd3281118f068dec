//! The embedded chain's state file (format 2) as found on disk: every flipped byte and every
//! truncation of a real chain's file refused with a typed error naming the file, a file of
//! format 1 refused by its version, a file of another contract build refused by the
//! account whose code differs, and a good file still opening after all of them.

use alloy::primitives::{Address, B256, keccak256};
use l2x_settlement::batch::Batch;
use l2x_settlement::chain::{Chain, ChainError};
use l2x_settlement::embedded::{ChainState, EmbeddedChain, FixedClock, STATE_FILE, SUBMITTER, StateError};

use super::{epochs, state_error};

/// A chain with commits, token holders and several storage slots, closed; its directory
/// and the state it holds.
fn chain_with_users() -> (tempfile::TempDir, ChainState) {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    let (closed, _, _) = epochs(2);
    for e in &closed {
        chain.commit(&Batch::of(e)).unwrap();
    }
    let (alice, bob) = (Address::repeat_byte(0xa1), Address::repeat_byte(0xb0));
    chain.mint_test_usd(alice, alloy::primitives::U256::from(5_000_000)).unwrap();
    chain.mint_test_usd(bob, alloy::primitives::U256::from(7_000_000)).unwrap();
    chain.advance_time(60).unwrap();
    let state = chain.state();
    (dir, state)
}

/// What opening `dir` with `bytes` as its state file says: the typed detail and the words.
fn open_with(dir: &std::path::Path, bytes: &[u8]) -> (StateError, String) {
    let path = dir.join(STATE_FILE);
    std::fs::write(&path, bytes).unwrap();
    let err = EmbeddedChain::open(dir).unwrap_err();
    let words = state_error_of(&err, &path);
    let ChainError::State { detail, .. } = err else { unreachable!() };
    (*detail, words)
}

fn state_error_of(err: &ChainError, path: &std::path::Path) -> String {
    match err {
        ChainError::State { path: p, detail } => {
            assert_eq!(p, path, "the error names the state file");
            detail.to_string()
        }
        other => panic!("expected a state-file error, got {other}"),
    }
}

#[test]
fn every_flipped_byte_and_every_truncation_of_a_state_file_is_refused() {
    let (dir, state) = chain_with_users();
    let good = std::fs::read(dir.path().join(STATE_FILE)).unwrap();
    assert_eq!(good, state.encode());
    assert!(state.accounts.len() >= 4 && good.len() > 700, "{} accounts, {} bytes", state.accounts.len(), good.len());
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        let (detail, why) = open_with(dir.path(), &bad);
        let expected = match at {
            0..8 => "bad magic",
            8..12 => "format version",
            _ => "checksum mismatch",
        };
        assert!(matches!(detail, StateError::Format(_)) && why.contains(expected), "byte {at}: {why}");
    }
    for len in 0..good.len() {
        let (detail, why) = open_with(dir.path(), &good[..len]);
        let expected = if len < 72 { "too short" } else { "checksum mismatch" };
        assert!(matches!(detail, StateError::Format(_)) && why.contains(expected), "{len} bytes: {why}");
    }
    // Nothing was overwritten by the failed opens: the good file still opens, whole.
    std::fs::write(dir.path().join(STATE_FILE), &good).unwrap();
    assert_eq!(EmbeddedChain::open(dir.path()).unwrap().state(), state);
}

#[test]
fn a_format_1_file_a_foreign_code_hash_or_a_missing_contract_is_refused_by_name() {
    let (dir, state) = chain_with_users();
    let good = state.encode();

    // Format 1 (the settlement contract's storage and the submitter's nonce), checksummed.
    let mut v1 = b"L2XCHAIN".to_vec();
    v1.extend_from_slice(&1u32.to_be_bytes());
    v1.extend_from_slice(&2u64.to_be_bytes());
    v1.extend_from_slice(SUBMITTER.create(0).as_slice());
    v1.extend_from_slice(SUBMITTER.as_slice());
    v1.extend_from_slice(&[0x11; 32]);
    v1.extend_from_slice(&2u64.to_be_bytes());
    v1.extend_from_slice(&0u32.to_be_bytes());
    let sum = keccak256(&v1);
    v1.extend_from_slice(sum.as_slice());
    let (_, why) = open_with(dir.path(), &v1);
    assert_eq!(why, "format version 1, this build reads 2 (no migration: start a new chain directory)");

    // A consistent file whose settlement contract has other code: another build's.
    let contract = l2x_settlement::embedded::settlement_address();
    let ours = state.accounts[&contract].code_hash;
    let mut foreign = state.clone();
    foreign.accounts.get_mut(&contract).unwrap().code_hash = B256::repeat_byte(0xee);
    let (detail, why) = open_with(dir.path(), &foreign.encode());
    assert!(
        matches!(detail, StateError::OtherBuild { address, code_hash: Some(h), ours: Some(o) } if address == contract && h == B256::repeat_byte(0xee) && o == ours),
        "{why}"
    );
    assert!(
        why.starts_with(&format!("a chain of another contract build: account {contract} has code 0xeeee")),
        "{why}"
    );

    // An account with code the genesis does not give, and the token missing.
    let stranger = SUBMITTER;
    let mut foreign = state.clone();
    foreign.accounts.get_mut(&stranger).unwrap().code_hash = ours;
    let (detail, _) = open_with(dir.path(), &foreign.encode());
    assert!(matches!(detail, StateError::OtherBuild { address, ours: None, .. } if address == stranger));
    let mut foreign = state.clone();
    let token = l2x_settlement::embedded::token_address();
    foreign.accounts.remove(&token);
    let (_, why) = open_with(dir.path(), &foreign.encode());
    assert!(why.contains(&format!("account {token} has no code, this build's genesis gives it code 0x")), "{why}");

    // A file that decodes but is not canonical (bytes after the last account), resealed.
    let mut trailing = good[..good.len() - 32].to_vec();
    trailing.push(0);
    let sum = keccak256(&trailing);
    trailing.extend_from_slice(sum.as_slice());
    let (_, why) = open_with(dir.path(), &trailing);
    assert_eq!(why, format!("1 bytes after the last account, at byte {}", good.len() - 32));

    // The good file opens, and a reader needs a chain to be there.
    std::fs::write(dir.path().join(STATE_FILE), &good).unwrap();
    let mut chain = EmbeddedChain::open(dir.path()).unwrap();
    assert_eq!(chain.last_committed().unwrap().0, 2);
    let empty = tempfile::tempdir().unwrap();
    assert!(state_error(EmbeddedChain::read_only(empty.path()).unwrap_err()).contains("no embedded chain here"));
}
