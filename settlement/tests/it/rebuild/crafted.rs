//! Batches the contract accepts from the submitter's key but a submitter never sends (it
//! checks each batch as the loader does first): each is a finding naming the batch and the
//! field, and the rebuilt state stops at the batch before.

use alloy::primitives::{B256, Bytes, keccak256};
use alloy::sol_types::SolCall as _;
use l2x_settlement::batch::{Batch, ZSTD_LEVEL};
use l2x_settlement::blob::BYTES_PER_BLOB;
use l2x_settlement::chain::abi::L2xSettlement::commitBatchCall;
use l2x_settlement::chain::{Chain, RpcChain, commit_blobs_call, commit_call};
use l2x_settlement::embedded::{EmbeddedChain, FixedClock, SUBMITTER};
use l2x_settlement::epoch::Epoch;
use l2x_settlement::queue::Withdrawal;
use l2x_settlement::rebuild::Finding;

use super::{finding, scenario};
use crate::common::{SUBMITTER_KEY, anvil};

/// A new embedded chain holding batch 1 of the scenario, then `second` sent as the
/// submitter (the contract's checks only).
fn embedded_with(second: &commitBatchCall) -> (tempfile::TempDir, EmbeddedChain) {
    let s = scenario();
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    chain.commit(&Batch::of(&s.closed[0])).unwrap();
    chain.transact(SUBMITTER, chain.address(), second.abi_encode()).unwrap();
    assert_eq!(chain.last_committed().unwrap().0, 2, "the contract accepted it");
    (dir, chain)
}

/// The commit of the scenario's batch 2 as `edit` makes its epoch.
fn second(edit: impl FnOnce(&mut Epoch)) -> commitBatchCall {
    let mut e = scenario().closed[1].clone();
    edit(&mut e);
    commit_call(&Batch::of(&e)).unwrap()
}

#[test]
fn data_that_does_not_decode_is_a_finding_naming_the_batch() {
    let mut call = second(|_| {});
    call.data = Bytes::from_static(b"not zstd at all");
    call.h.dataHash = keccak256(&call.data);
    let (_dir, mut chain) = embedded_with(&call);
    let f = finding(&mut chain);
    assert!(matches!(&f, Finding::Data { index: 2, field: "data", why } if why.contains("does not decompress")), "{f}");
    // Data that decompresses but breaks a rule of the format: named by its field.
    let good = Batch::of(&scenario().closed[1]);
    let mut raw = good.raw().unwrap();
    raw[16..24].copy_from_slice(&0u64.to_be_bytes()); // last_seq 0: before first_seq
    let mut call = second(|_| {});
    call.data = zstd::bulk::compress(&raw, ZSTD_LEVEL).unwrap().into();
    call.h.dataHash = keccak256(&call.data);
    let (_dir, mut chain) = embedded_with(&call);
    let f = finding(&mut chain);
    assert!(matches!(&f, Finding::Data { index: 2, field: "last_seq", .. }), "{f}");
}

#[test]
fn arguments_that_are_not_what_the_data_says_are_findings_naming_the_argument() {
    // The data lists a withdrawal the arguments leave out (the contract pays the
    // arguments'): the rebuilt ledger and the vault would part.
    let mut call = second(|e| e.withdrawals = vec![Withdrawal { account: 3, amount: 5 }]);
    call.withdrawals.clear();
    let (_dir, mut chain) = embedded_with(&call);
    let f = finding(&mut chain);
    let expected = Finding::Argument { index: 2, field: "withdrawals", call: "0 items".into(), data: "1 item".into() };
    assert_eq!(f, expected);
    // A header argument: the epoch's time.
    let mut call = second(|_| {});
    call.h.epochTs += 1;
    let (_dir, mut chain) = embedded_with(&call);
    let f = finding(&mut chain);
    assert!(matches!(&f, Finding::Argument { index: 2, field: "h.epochTs", .. }), "{f}");
    assert!(f.to_string().starts_with("batch 2: argument h.epochTs is "), "{f}");
}

#[test]
fn a_batch_that_does_not_follow_the_one_before_is_a_finding() {
    let call = second(|e| e.first_seq -= 1);
    let (_dir, mut chain) = embedded_with(&call);
    let f = finding(&mut chain);
    assert!(matches!(&f, Finding::Sequence { index: 2, field: "first_seq", .. }), "{f}");
}

/// The contract takes the submitter's word for a root: one its leaves do not give is
/// committed, on a node as on the embedded chain, and found by the rebuild.
#[test]
fn a_root_the_leaves_do_not_give_is_a_finding_on_a_node() {
    let s = scenario();
    let node = anvil();
    let (address, _) = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).unwrap();
    let mut chain = RpcChain::connect(node.url(), SUBMITTER_KEY, address, 1).unwrap();
    chain.commit(&Batch::of(&s.closed[0])).unwrap();
    let forged = B256::repeat_byte(7);
    chain.commit(&Batch::of(&Epoch { root: forged, ..s.closed[1].clone() })).unwrap();
    let f = finding(&mut RpcChain::read_only(node.url(), address).unwrap());
    let rebuilt = s.closed[1].root;
    assert_eq!(f, Finding::Root { index: 2, rebuilt, whose: "h.newRoot", expected: forged });
}

/// `h.marketHash`, which the contract does not check, is compared with the data: a finding
/// naming it. (`h.queueHash` and `rejected` cannot differ from the data's on a chain
/// without queue entries: the contract checks the call's and the format the data's.)
#[test]
fn a_market_hash_that_is_not_the_datas_is_an_argument_finding() {
    let mut call = second(|_| {});
    call.h.marketHash = B256::repeat_byte(3);
    let (_dir, mut chain) = embedded_with(&call);
    let f = finding(&mut chain);
    assert!(
        matches!(&f, Finding::Argument { index: 2, field: "h.marketHash", call, .. } if *call == B256::repeat_byte(3).to_string()),
        "{f}"
    );
}

/// The contract cannot read blobs, so it does not check that a blob commit's data hashes
/// to `h.dataHash`: rebuild does, and a mismatch is a finding naming the batch, on the
/// embedded chain and on a node.
#[test]
fn blob_data_that_does_not_hash_to_the_header_is_a_finding_on_both_chains() {
    let s = scenario();
    let first = Batch::of(&s.closed[0]);
    // Batch 2's own contents compressed at another level: other bytes, the same raw data,
    // the header's dataHash still the original's.
    let mut second = Batch::of(&s.closed[1]);
    let other = zstd::bulk::compress(&second.raw().unwrap(), 1).unwrap();
    assert_ne!(other, second.data, "another compression gives other bytes");
    second.data = other;
    let check = |chain: &mut dyn Chain| {
        let f = finding(chain);
        let expected = Finding::DataHash { index: 2, header: second.header.data_hash, data: keccak256(&second.data) };
        assert_eq!(f, expected);
    };

    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    chain.commit_blobs(&first).unwrap();
    chain.commit_blobs(&second).unwrap();
    assert_eq!(chain.last_committed().unwrap().0, 2, "the contract accepted it");
    check(&mut chain);

    let node = anvil();
    let (address, _) = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).unwrap();
    let mut chain = RpcChain::connect(node.url(), SUBMITTER_KEY, address, 1).unwrap();
    chain.commit_blobs(&first).unwrap();
    chain.commit_blobs(&second).unwrap();
    assert_eq!(chain.last_committed().unwrap().0, 2, "the contract accepted it");
    check(&mut RpcChain::read_only(node.url(), address).unwrap());
}

/// Blobs that are the commit's (each matches its versioned hash, so the contract's
/// commitment binds them) but do not decode are on chain as committed — the contract never
/// reads blobs — so they are a finding naming the batch (field `blobs`), not an error:
/// one blob too many, a padding byte set, a byte after the data.
#[test]
fn undecodable_blobs_are_a_finding_naming_the_batch() {
    let s = scenario();
    let (first, second) = (Batch::of(&s.closed[0]), Batch::of(&s.closed[1]));
    let good = l2x_settlement::blob::encode(&second.data).unwrap();
    let mut extra = good.clone();
    extra.push(alloy::eips::eip4844::Blob::ZERO);
    let mut padding = good.clone();
    padding[0][32] = 1; // element 1's top byte: a field element, not l2x's padding
    let mut trailing = good.clone();
    let last = trailing.len() - 1;
    trailing[last][BYTES_PER_BLOB - 1] = 1;
    let call = commit_blobs_call(&second).unwrap().abi_encode();
    for (blobs, rule) in [(extra, "blobs for"), (padding, "the first of field element 1"), (trailing, "after the data")]
    {
        let dir = tempfile::tempdir().unwrap();
        let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
        chain.commit_blobs(&first).unwrap();
        chain.transact_with_blobs(SUBMITTER, chain.address(), call.clone(), &blobs).unwrap();
        assert_eq!(chain.last_committed().unwrap().0, 2, "the contract accepted it");
        let posted = chain.posted(2).unwrap();
        assert!(posted.data.is_empty(), "{rule}");
        assert_eq!(posted.commitment(), chain.committed(2).unwrap().1, "the commit's own blobs");
        let f = finding(&mut chain);
        assert!(matches!(&f, Finding::Data { index: 2, field: "blobs", why } if why.contains(rule)), "{rule}: {f}");
    }
}
