use super::*;
use crate::leaf::Position;
use crate::market::Market;
use crate::queue::Withdrawal;
use crate::tree::Tree;

fn leaf(account: u64, n: u32) -> AccountLeaf {
    AccountLeaf {
        account,
        collateral: i64::try_from(account).unwrap_or(0) * -7,
        positions: (0..n)
            .map(|i| Position { instrument: i, size: i64::from(i) + 1, cost: -(i128::from(i) << 70), fundingIndex: 5 })
            .collect(),
    }
}

fn markets() -> Vec<Market> {
    vec![
        Market { instrument: 0, mark: 1000, fundingIndex: -40, tickValue: 1_000_000 },
        Market { instrument: 1, mark: 0, fundingIndex: 0, tickValue: 500 },
    ]
}

fn epoch(index: u64, prev: B256, changes: Vec<AccountLeaf>, tree: &mut Tree) -> Epoch {
    let root = tree.update(changes.iter().map(|l| (l.account, Some(l.hash()))));
    Epoch {
        index,
        first_seq: index * 10,
        last_seq: index * 10 + 9,
        ts: 77,
        commands: 10,
        fills: 3,
        prev_root: prev,
        root,
        markets: markets(),
        changes,
        // Every section non-empty: the damage tests reach the queue fields too.
        queue_count: index * 5,
        queue_hash: B256::repeat_byte(0x51),
        withdrawals: vec![Withdrawal { account: 3, amount: 7 }, Withdrawal { account: 1, amount: 1 << 40 }],
        rejected: vec![index * 5 - 3, index * 5],
    }
}

#[test]
fn batches_round_trip_and_rebuild_the_tree_alone() {
    let mut tree = Tree::new();
    let e1 = epoch(1, B256::ZERO, vec![leaf(1, 0), leaf(2, 2), leaf(u64::MAX, 1)], &mut tree);
    let e2 = epoch(2, e1.root, vec![leaf(2, 1), leaf(9, 3)], &mut tree);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut rebuilt = Tree::new();
    for e in [&e1, &e2] {
        let b = Batch::of(e);
        assert_eq!(b.header.data_len, b.data.len() as u64);
        let path = b.write(dir.path()).unwrap_or_default();
        let read = Batch::read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read, b);
        assert_eq!(
            read.contents(),
            Ok(Contents {
                markets: markets(),
                withdrawals: e.withdrawals.clone(),
                rejected: e.rejected.clone(),
                leaves: e.changes.clone()
            })
        );
        apply(&mut rebuilt, &read).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(rebuilt.root(), tree.root());
    // Out of order: batch 2 on an empty tree.
    assert!(matches!(apply(&mut Tree::new(), &Batch::of(&e2)), Err(BatchError::PrevRoot { index: 2, .. })));
}

/// Issue 14 review: a previous root that did not match was reported as "its leaves give
/// root …", although the value was the root of the tree before the batch.
#[test]
fn a_prev_root_mismatch_says_it_is_the_root_before_the_batch() {
    let mut tree = Tree::new();
    let e1 = epoch(1, B256::ZERO, vec![leaf(1, 0)], &mut tree);
    let e2 = epoch(2, e1.root, vec![leaf(2, 1)], &mut tree);
    let err = apply(&mut Tree::new(), &Batch::of(&e2)).unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        format!(
            "batch 2: header field prev_root is {}, but the tree before the batch has root {}",
            e1.root,
            B256::ZERO
        )
    );
    // A new root that does not match is still said to be what the leaves give.
    let mut at_e1 = Tree::new();
    apply(&mut at_e1, &Batch::of(&e1)).unwrap_or_else(|e| panic!("{e}"));
    let forged = Batch::of(&Epoch { root: B256::repeat_byte(7), ..e2 });
    let err = apply(&mut at_e1, &forged).unwrap_err();
    assert!(matches!(err, BatchError::Root { index: 2, .. }), "{err}");
    assert!(err.to_string().contains("its leaves give root"), "{err}");
}

/// Issue 14 review: `commands` counts the commands in the batch's range, which may be
/// fewer than its sequence numbers (a journal's numbers may have gaps), never more, and at
/// least the closing one.
#[test]
fn commands_may_be_fewer_than_the_range_but_not_zero_nor_more() {
    let mut tree = Tree::new();
    let e = epoch(1, B256::ZERO, vec![leaf(1, 0)], &mut tree);
    assert_eq!((e.first_seq, e.last_seq), (10, 19));
    for commands in [1, 3, 10] {
        let b = Batch::of(&Epoch { commands, ..e.clone() });
        assert!(Batch::decode(&b.encode()).is_ok(), "{commands} commands in seq 10-19");
    }
    for (commands, why) in [(0, "0: a batch holds at least the command that closed it"), (11, "room for 10")] {
        let b = Batch::of(&Epoch { commands, ..e.clone() });
        let err = Batch::decode(&b.encode()).unwrap_err();
        assert!(
            matches!(&err, FormatError::Header { field: "commands", offset: 44, why: w } if w.contains(why)),
            "{err}"
        );
    }
}

/// The layout of docs/SETTLEMENT.md, byte for byte: header offsets, the data's epoch
/// fields, the markets, the leaves.
#[test]
fn the_file_layout_is_the_documented_one() {
    let mut tree = Tree::new();
    let b = Batch::of(&epoch(3, B256::repeat_byte(9), vec![leaf(5, 1)], &mut tree));
    let f = b.encode();
    let u64_at = |at: usize| u64::from_be_bytes(f[at..at + 8].try_into().unwrap_or_default());
    assert_eq!(&f[..8], b"L2XBATCH");
    assert_eq!(f[8..12], 4u32.to_be_bytes());
    assert_eq!((u64_at(12), u64_at(20), u64_at(28), u64_at(36), u64_at(44)), (3, 30, 39, 77, 10));
    assert_eq!(&f[52..84], B256::repeat_byte(9).as_slice());
    assert_eq!(&f[84..116], b.header.new_root.as_slice());
    assert_eq!(&f[116..148], keccak256(&b.data).as_slice());
    assert_eq!((u64_at(148), u64_at(156)), (3, b.data.len() as u64));
    assert_eq!(f[164..168], 1u32.to_be_bytes());
    assert_eq!(u64_at(168), (EPOCH_LEN + 4 + 2 * 36 + 4 + 2 * 16 + 4 + 2 * 8 + 62) as u64);
    assert_eq!(&f[176..208], crate::market::hash(&markets()).as_slice());
    assert_eq!(u64_at(208), 15);
    assert_eq!(&f[216..248], B256::repeat_byte(0x51).as_slice());
    assert_eq!((&f[248..252], &f[252..256]), (&2u32.to_be_bytes()[..], &2u32.to_be_bytes()[..]));
    assert!(f[256..272].iter().all(|&x| x == 0));
    assert_eq!(DATA_OFFSET, 272);
    let raw = b.raw().unwrap_or_default();
    assert_eq!(raw[..8], 3u64.to_be_bytes(), "the data starts with the epoch's index");
    assert_eq!(raw[40..48], 3u64.to_be_bytes(), "… and its fills after index, seqs, time, commands");
    assert_eq!(raw[112..120], 15u64.to_be_bytes(), "the queue count after the roots");
    assert_eq!(raw[120..152], *B256::repeat_byte(0x51).as_slice(), "then the queue hash");
    assert_eq!(raw[EPOCH_LEN..EPOCH_LEN + 4], 2u32.to_be_bytes(), "two markets");
    assert_eq!(raw[EPOCH_LEN + 4..EPOCH_LEN + 8], 0u32.to_be_bytes());
    assert_eq!(raw[EPOCH_LEN + 8..EPOCH_LEN + 16], 1000i64.to_be_bytes());
    let w_at = EPOCH_LEN + 4 + 72;
    assert_eq!(raw[w_at..w_at + 4], 2u32.to_be_bytes(), "two withdrawals");
    assert_eq!(
        (&raw[w_at + 4..w_at + 12], &raw[w_at + 12..w_at + 20]),
        (&3u64.to_be_bytes()[..], &7u64.to_be_bytes()[..])
    );
    let r_at = w_at + 4 + 32;
    assert_eq!(raw[r_at..r_at + 4], 2u32.to_be_bytes(), "two refused entries");
    assert_eq!(
        (&raw[r_at + 4..r_at + 12], &raw[r_at + 12..r_at + 20]),
        (&12u64.to_be_bytes()[..], &15u64.to_be_bytes()[..])
    );
    let leaf_at = r_at + 4 + 16;
    assert_eq!(raw[leaf_at..leaf_at + 8], 5u64.to_be_bytes(), "then the leaves");
    assert_eq!(raw.len(), leaf_at + 62);
}

#[test]
fn every_truncation_and_every_flipped_byte_is_refused_by_name() {
    let mut tree = Tree::new();
    let good = Batch::of(&epoch(1, B256::ZERO, vec![leaf(3, 2), leaf(4, 0)], &mut tree)).encode();
    assert!(Batch::decode(&good).is_ok());
    for n in 0..good.len() {
        assert!(Batch::decode(&good[..n]).is_err(), "truncated to {n}");
    }
    // The data repeats the header's epoch fields, and every other header field is checked
    // against the data: no flipped byte goes unnoticed, in the header or in the data.
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        assert!(Batch::decode(&bad).is_err(), "byte {i} flipped unnoticed");
    }
    let mut tampered = good.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(Batch::decode(&tampered), Err(FormatError::DataHash));
    let mut ts = good.clone();
    ts[40] ^= 1;
    let err = Batch::decode(&ts).unwrap_err();
    assert!(matches!(err, FormatError::Header { field: "epoch_ts", offset: 36, .. }), "{err}");
}

#[test]
fn data_compressed_by_another_zstd_is_the_same_batch() {
    let mut tree = Tree::new();
    let leaves: Vec<AccountLeaf> = (1..200).map(|a| leaf(a * 3, u32::try_from(a % 3).unwrap_or(0))).collect();
    let b = Batch::of(&epoch(1, B256::ZERO, leaves, &mut tree));
    assert!((b.data.len() as u64) < b.header.raw_len / 2, "{} of {}", b.data.len(), b.header.raw_len);
    // The same content at another level: other bytes, another hash, the same batch.
    let raw = b.raw().unwrap_or_default();
    let other_data = zstd::bulk::compress(&raw, 1).unwrap_or_default();
    assert_ne!(other_data, b.data);
    let other = Batch {
        header: Header { data_hash: keccak256(&other_data), data_len: other_data.len() as u64, ..b.header },
        data: other_data,
    };
    assert!(Batch::decode(&other.encode()).is_ok());
    assert!(other.same_content(&b) && b.same_content(&other));
    // Another leaf, or another header field: not the same batch.
    let mut changed = raw.clone();
    changed[EPOCH_LEN + 4 + 2 * 36 + 4 + 2 * 16 + 4 + 2 * 8 + 9] ^= 1;
    let changed_data = zstd::bulk::compress(&changed, ZSTD_LEVEL).unwrap_or_default();
    let changed = Batch { data: changed_data, ..b.clone() };
    assert!(!changed.same_content(&b));
    let later = Batch { header: Header { epoch_ts: 78, ..b.header }, ..b.clone() };
    assert!(!later.same_content(&b));
    // A raw length that is a lie, or absurd: refused, nothing huge allocated.
    for raw_len in [b.header.raw_len - 1, b.header.raw_len + 1, u64::MAX] {
        let lie = Batch { header: Header { raw_len, ..b.header }, ..b.clone() };
        assert!(Batch::decode(&lie.encode()).is_err(), "{raw_len}");
    }
}

#[test]
fn raw_data_that_breaks_a_rule_is_named() {
    let mut tree = Tree::new();
    let b = Batch::of(&epoch(1, B256::ZERO, vec![leaf(3, 1), leaf(4, 0)], &mut tree));
    let raw = b.raw().unwrap_or_default();
    // Re-encoded with a valid hash: only the raw rule can catch it.
    let with_raw = |raw: &[u8]| {
        let data = zstd::bulk::compress(raw, ZSTD_LEVEL).unwrap_or_default();
        let header =
            Header { data_hash: keccak256(&data), data_len: data.len() as u64, raw_len: raw.len() as u64, ..b.header };
        Batch::decode(&Batch { header, data }.encode())
    };
    let leaves_at = EPOCH_LEN + 4 + 2 * 36 + 4 + 2 * 16 + 4 + 2 * 8;
    let mut swapped = raw[..leaves_at].to_vec();
    swapped.extend(encode_leaves(&[leaf(4, 0), leaf(3, 1)]));
    let err = with_raw(&swapped).unwrap_err();
    assert!(matches!(err, FormatError::Raw { field: "leaf account", .. }), "{err}");
    let mut unordered = raw.clone();
    unordered[EPOCH_LEN + 4 + 3] = 1;
    let err = with_raw(&unordered).unwrap_err();
    assert!(matches!(err, FormatError::Raw { field: "market instrument", .. }), "{err}");
    let mut too_many = raw.clone();
    too_many[EPOCH_LEN..EPOCH_LEN + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let err = with_raw(&too_many).unwrap_err();
    assert!(matches!(err, FormatError::Raw { field: "market count", .. }), "{err}");
    // The queue sections: a zero amount, refused indexes out of order or past the count.
    let w_at = EPOCH_LEN + 4 + 2 * 36;
    let r_at = w_at + 4 + 2 * 16;
    let cases: [(usize, u64, &str, &str); 4] = [
        (w_at + 4 + 8, 0, "withdrawal amount", "not in 1..="),
        (r_at + 12, 2, "rejected index", "not strictly increasing"),
        (r_at + 12, 6, "rejected index", "not in 1..=5"),
        (r_at + 4, 0, "rejected index", "not in 1..=5"),
    ];
    for (at, value, field, why) in cases {
        let mut bad = raw.clone();
        bad[at..at + 8].copy_from_slice(&value.to_be_bytes());
        let err = with_raw(&bad).unwrap_err();
        assert!(
            matches!(&err, FormatError::Raw { field: f, offset, why: w } if *f == field && *offset == at && w.contains(why)),
            "{field} = {value}: {err}"
        );
    }
    let mut w_count = raw.clone();
    w_count[w_at..w_at + 4].copy_from_slice(&1u32.to_be_bytes());
    let err = with_raw(&w_count).unwrap_err();
    assert!(
        matches!(err, FormatError::Raw { .. } | FormatError::Header { field: "withdrawals", offset: 248, .. }),
        "{err}"
    );
}

#[test]
fn the_compact_encoding_is_a_fifth_of_the_abi() {
    let l = leaf(123_456, 1);
    assert_eq!(encode_leaves(std::slice::from_ref(&l)).len(), 8 + 8 + 2 + 44);
    assert_eq!(l.encode().len(), 288);
    assert!(calldata_gas(&encode_leaves(&[l])) < 62 * 16);
}

/// Issue 16: format 4 replaced format 3 (the L1 queue fields); a format 3 file is refused by
/// its version, not misread.
#[test]
fn a_format_3_file_is_refused_by_its_version() {
    let mut tree = Tree::new();
    let mut old = Batch::of(&epoch(1, B256::ZERO, vec![leaf(1, 0)], &mut tree)).encode();
    old[8..12].copy_from_slice(&3u32.to_be_bytes());
    let err = Batch::decode(&old).unwrap_err();
    assert_eq!(err, FormatError::Version { found: 3 });
    assert_eq!(err.to_string(), "batch format version 3 (bytes 8-11); this l2x reads version 4");
}

/// What a chain holds of a batch is its data: the batch read from the data alone is the
/// batch (every header field, counts and lengths included), however it was compressed;
/// data that does not decompress, or whose raw data breaks a rule, is named.
#[test]
fn the_data_alone_is_the_whole_batch() {
    let mut tree = Tree::new();
    let b = Batch::of(&epoch(3, B256::repeat_byte(9), vec![leaf(3, 1), leaf(4, 0), leaf(u64::MAX, 2)], &mut tree));
    assert_eq!(Batch::from_data(b.data.clone()).map(|(b, _)| b), Ok(b.clone()));
    assert_eq!(Batch::from_data(b.data.clone()).map(|(_, c)| c), b.contents());
    let raw = b.raw().unwrap_or_default();
    let (other, _) =
        Batch::from_data(zstd::bulk::compress(&raw, 1).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(other.same_content(&b) && other.header.data_hash != b.header.data_hash);
    // Not zstd; zstd of nothing; a frame cut short.
    for (data, expect) in
        [(b"not zstd".to_vec(), "does not decompress"), (zstd::bulk::compress(&[], 3).unwrap_or_default(), "index")]
    {
        let err = Batch::from_data(data).unwrap_err();
        assert!(err.to_string().contains(expect), "{err}");
    }
    assert!(matches!(Batch::from_data(b.data[..b.data.len() - 1].to_vec()), Err(FormatError::Data { .. })));
    // A rule of the raw data (a zero withdrawal amount), and one between the epoch fields
    // (last_seq before first_seq).
    let at = EPOCH_LEN + 4 + 2 * 36 + 4 + 8;
    let mut bad = raw.clone();
    bad[at..at + 8].copy_from_slice(&0u64.to_be_bytes());
    let err = Batch::from_data(zstd::bulk::compress(&bad, 1).unwrap_or_default()).unwrap_err();
    assert!(matches!(err, FormatError::Raw { field: "withdrawal amount", .. }), "{err}");
    let mut bad = raw;
    bad[16..24].copy_from_slice(&1u64.to_be_bytes());
    let err = Batch::from_data(zstd::bulk::compress(&bad, 1).unwrap_or_default()).unwrap_err();
    assert!(matches!(err, FormatError::Header { field: "last_seq", .. }), "{err}");
}

/// Data that is not exactly one zstd frame — two frames concatenated, or one followed by a
/// skippable frame — is refused alike by the file path (`Batch::raw`, bulk before) and the
/// chain path (`Batch::from_data`, streaming before): both once took more than one frame,
/// differently.
#[test]
fn data_with_two_frames_is_refused_on_both_paths() {
    let mut tree = Tree::new();
    let b = Batch::of(&epoch(3, B256::repeat_byte(9), vec![leaf(3, 1), leaf(4, 0)], &mut tree));
    let raw = b.raw().unwrap_or_default();
    let (first, second) = raw.split_at(raw.len() / 2);
    let mut two = zstd::bulk::compress(first, 9).unwrap_or_default();
    two.extend(zstd::bulk::compress(second, 9).unwrap_or_default());
    let mut skippable = b.data.clone();
    skippable.extend(0x184D_2A50u32.to_le_bytes());
    skippable.extend(4u32.to_le_bytes());
    skippable.extend([0u8; 4]);
    for data in [two, skippable] {
        let err = Batch::from_data(data.clone()).unwrap_err();
        assert!(err.to_string().contains("not one zstd frame"), "chain path: {err}");
        let file =
            Batch { header: Header { data_len: data.len() as u64, data_hash: keccak256(&data), ..b.header }, data };
        let err = file.raw().unwrap_err();
        assert!(err.to_string().contains("not one zstd frame"), "file path: {err}");
    }
    // The one frame itself reads on both.
    assert_eq!(Batch::from_data(b.data.clone()).map(|(c, _)| c.raw()), Ok(Ok(raw)));
}
