use proptest::prelude::*;

use super::*;

fn account(nonce: u64, slots: &[(u64, u64)]) -> AccountState {
    AccountState {
        nonce,
        balance: U256::from(nonce) << 100,
        code_hash: if nonce.is_multiple_of(2) { KECCAK_EMPTY } else { B256::repeat_byte(0xcc) },
        storage: slots.iter().map(|(k, v)| (U256::from(*k), U256::from(*v))).collect(),
    }
}

fn sample() -> ChainState {
    ChainState {
        block: 3,
        timestamp: 1_700_000_010,
        genesis_timestamp: 1_700_000_000,
        accounts: [
            (Address::repeat_byte(2), account(1, &[(0, 7), (5, 1)])),
            (Address::repeat_byte(1), account(4, &[])),
            (Address::repeat_byte(9), account(3, &[(u64::MAX, u64::MAX)])),
        ]
        .into_iter()
        .collect(),
    }
}

/// `body` with its checksum: a file written wrong, not damaged.
fn sealed(mut body: Vec<u8>) -> Vec<u8> {
    let sum = keccak256(&body);
    body.extend_from_slice(sum.as_slice());
    body
}

/// A header (version 2, block 0, both timestamps 100) announcing `accounts`.
fn header(accounts: u32) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&VERSION.to_be_bytes());
    b.extend_from_slice(&0u64.to_be_bytes());
    b.extend_from_slice(&100u64.to_be_bytes());
    b.extend_from_slice(&100u64.to_be_bytes());
    b.extend_from_slice(&accounts.to_be_bytes());
    b
}

/// One account record: `address` byte, nonce, zero balance, no code, `slots`.
fn record(address: u8, nonce: u64, slots: &[(u8, u8)]) -> Vec<u8> {
    let mut b = Address::repeat_byte(address).to_vec();
    b.extend_from_slice(&nonce.to_be_bytes());
    b.extend_from_slice(&[0; 32]);
    b.extend_from_slice(KECCAK_EMPTY.as_slice());
    b.extend_from_slice(&u32::try_from(slots.len()).unwrap().to_be_bytes());
    for (slot, value) in slots {
        b.extend_from_slice(&U256::from(*slot).to_be_bytes::<32>());
        b.extend_from_slice(&U256::from(*value).to_be_bytes::<32>());
    }
    b
}

fn decode_parts(parts: &[Vec<u8>]) -> Result<ChainState, FormatError> {
    ChainState::decode(&sealed(parts.concat()))
}

#[test]
fn a_state_encodes_sorted_and_decodes_to_itself() {
    let state = sample();
    let bytes = state.encode();
    assert_eq!(ChainState::decode(&bytes).unwrap(), state);
    assert_eq!(&bytes[..8], b"L2XCHAIN");
    assert_eq!(&bytes[8..12], &[0, 0, 0, 2]);
    assert_eq!(&bytes[36..40], &[0, 0, 0, 3]);
    // Sorted by address, whatever order the accounts were given in.
    assert_eq!(&bytes[40..60], Address::repeat_byte(1).as_slice());
    assert_eq!(bytes.len(), FIXED + 3 * (20 + 8 + 32 + 32 + 4) + 3 * 64 + CHECKSUM);
}

#[test]
fn a_file_written_wrong_is_refused_naming_the_field_and_offset() {
    let t = |field, at| FormatError::Truncated { field, at };
    let a1 = Address::repeat_byte(1);
    let cases = [
        (vec![header(1)], t("account address", 40)),
        (vec![header(1), record(1, 1, &[])[..30].to_vec()], t("account balance", 68)),
        (vec![header(1), record(1, 1, &[(1, 1)])[..100].to_vec()], t("storage slot", 136)),
        (vec![header(2), record(1, 1, &[]), record(1, 2, &[])], FormatError::AccountOrder { at: 136, address: a1 }),
        (vec![header(2), record(2, 1, &[]), record(1, 2, &[])], FormatError::AccountOrder { at: 136, address: a1 }),
        (vec![header(1), record(1, 0, &[])], FormatError::EmptyAccount { at: 40, address: a1 }),
        (
            vec![header(1), record(1, 1, &[(2, 1), (2, 1)])],
            FormatError::SlotOrder { at: 200, address: a1, slot: U256::from(2) },
        ),
        (vec![header(1), record(1, 1, &[(2, 0)])], FormatError::ZeroSlot { at: 136, address: a1, slot: U256::from(2) }),
        (vec![header(1), record(1, 1, &[]), vec![0; 5]], FormatError::Trailing { at: 136, bytes: 5 }),
        (vec![header(0), vec![0; 3]], FormatError::Trailing { at: 40, bytes: 3 }),
    ];
    for (parts, expected) in cases {
        assert_eq!(decode_parts(&parts), Err(expected.clone()), "{expected}");
    }
    // A timestamp before the genesis's plus one second per block.
    let mut state = sample();
    state.timestamp = state.genesis_timestamp + state.block - 1;
    let err = ChainState::decode(&state.encode()).unwrap_err();
    assert_eq!(err.to_string(), "timestamp 1700000002 is before genesis timestamp 1700000000 + 3 blocks");
    state.genesis_timestamp = u64::MAX;
    assert!(matches!(ChainState::decode(&state.encode()), Err(FormatError::Clock { .. })));
}

#[test]
fn another_version_is_refused_by_its_number_before_the_checksum() {
    // Format 1's fixed part (block, contract, submitter, code hash, nonce, no slots).
    let mut v1 = MAGIC.to_vec();
    v1.extend_from_slice(&1u32.to_be_bytes());
    v1.extend_from_slice(&[0; 8 + 20 + 20 + 32 + 8 + 4]);
    let err = ChainState::decode(&sealed(v1.clone())).unwrap_err();
    assert_eq!(err, FormatError::Version { found: 1 });
    assert!(err.to_string().contains("no migration"), "{err}");
    v1.push(0);
    assert_eq!(ChainState::decode(&v1), Err(FormatError::Version { found: 1 }));
}

fn arb_state() -> impl Strategy<Value = ChainState> {
    let slot = (any::<[u8; 32]>(), 1..u64::MAX).prop_map(|(k, v)| (U256::from_be_bytes(k), U256::from(v)));
    let account = (
        1..u64::MAX,
        any::<[u8; 32]>(),
        any::<bool>(),
        prop::collection::btree_map(slot.prop_map(|s| s.0), 1..u64::MAX, 0..4),
    )
        .prop_map(|(nonce, balance, code, storage)| AccountState {
            nonce,
            balance: U256::from_be_bytes(balance),
            code_hash: if code { B256::repeat_byte(7) } else { KECCAK_EMPTY },
            storage: storage.into_iter().map(|(k, v)| (k, U256::from(v))).collect(),
        });
    (0..1_000u64, 0..1_000u64, prop::collection::btree_map(any::<[u8; 20]>().prop_map(Address::new), account, 0..5))
        .prop_map(|(block, extra, accounts)| ChainState {
            block,
            timestamp: 1_700_000_000 + block + extra,
            genesis_timestamp: 1_700_000_000,
            accounts,
        })
}

proptest! {
    #[test]
    fn every_state_round_trips(state in arb_state()) {
        let bytes = state.encode();
        prop_assert_eq!(ChainState::decode(&bytes).unwrap(), state);
    }

    /// Any bytes after a good header, sealed with a good checksum: refused with an error
    /// or read; nothing panics, and what is read re-encodes to the same bytes (one file per
    /// state).
    #[test]
    fn any_sealed_body_is_refused_or_canonical(accounts in 0u32..3, tail in prop::collection::vec(any::<u8>(), 0..400)) {
        let bytes = sealed([header(accounts), tail].concat());
        if let Ok(state) = ChainState::decode(&bytes) {
            prop_assert_eq!(state.encode(), bytes);
        }
    }

    /// Every damage to a good file's bytes (a flipped bit anywhere, any truncation) is
    /// refused.
    #[test]
    fn damage_is_refused(state in arb_state(), at in any::<prop::sample::Index>(), bit in 0u8..8, cut in any::<prop::sample::Index>()) {
        let good = state.encode();
        let mut flipped = good.clone();
        flipped[at.index(good.len())] ^= 1 << bit;
        prop_assert!(ChainState::decode(&flipped).is_err());
        prop_assert!(ChainState::decode(&good[..cut.index(good.len())]).is_err());
    }
}
