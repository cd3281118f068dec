//! Batch data in EIP-4844 blobs (`Da::Blobs`) on a real node (anvil) and on the embedded
//! chain: the same journal settled with its data in calldata and in blobs gives the same
//! roots and the same batches; a blob commit's commitment on chain is the Rust one; the
//! blobs read back (anvil's endpoint, the embedded blob store) decode to each batch's data;
//! a blob commit without blobs is refused; a damaged blob store is a named error.

use std::future::IntoFuture as _;

use alloy::primitives::{Address, B256};
use alloy::providers::Provider as _;
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall as _, SolEvent as _};
use l2x_risk::Ledger;
use l2x_settlement::batch::Batch;
use l2x_settlement::batch_set::BatchSet;
use l2x_settlement::blob::BlobError;
use l2x_settlement::chain::abi::L2xSettlement;
use l2x_settlement::chain::{
    Carrier, Chain, ChainError, Da, PostedError, RpcChain, blob_hashes, commit_blobs_call, commitment,
};
use l2x_settlement::embedded::{EmbeddedChain, FixedClock, SUBMITTER, StateError, batch_data, blob_path};
use l2x_settlement::epoch::Policy;
use l2x_settlement::submitter::Submitter;

use crate::common::{SUBMITTER_KEY, anvil, chain_stream, write_journal};

const POLICY: Policy = Policy { max_ms: 400, max_fills: 0 };

/// Settles the journal in `journal` on `chain` posting its data as `da`; returns the batch
/// files written.
fn settle(journal: &std::path::Path, chain: &mut dyn Chain, da: Da) -> (tempfile::TempDir, Vec<Batch>) {
    let batches = tempfile::tempdir().unwrap();
    let mut sub =
        Submitter::new(journal.to_path_buf(), batches.path().to_path_buf(), POLICY, Ledger::default()).posting(da);
    let synced = sub.sync(chain).unwrap();
    assert!(synced.epochs >= 4, "{synced:?}");
    assert_eq!(synced.committed, synced.epochs);
    let set = BatchSet::load(batches.path()).unwrap();
    let files = set.batches().to_vec();
    (batches, files)
}

/// The first batch of a 4-account, 300-command stream, committed in blobs to a fresh
/// embedded chain: the chain's directory, the chain, the batch.
fn first_batch_committed_in_blobs() -> (tempfile::TempDir, EmbeddedChain, Batch) {
    let journal = tempfile::tempdir().unwrap();
    write_journal(journal.path(), &chain_stream(4, 300));
    let first = Batch::of(&l2x_settlement::epoch::from_journal(journal.path(), POLICY, &Ledger::default()).unwrap()[0]);
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    chain.commit_blobs(&first).unwrap();
    (dir, chain, first)
}

/// Every `BatchBlobs` log of the contract at `address`: (index, versioned hashes, transaction).
fn blob_logs(node: &l2x_settlement::devnode::Anvil, address: Address) -> Vec<(u64, Vec<B256>, B256)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let provider = alloy::providers::ProviderBuilder::new().connect_http(node.url().parse().unwrap());
    let filter =
        Filter::new().address(address).event_signature(L2xSettlement::BatchBlobs::SIGNATURE_HASH).from_block(0);
    let logs = rt.block_on(provider.get_logs(&filter)).unwrap();
    logs.iter()
        .map(|log| {
            let event = log.log_decode::<L2xSettlement::BatchBlobs>().unwrap().inner.data;
            (event.index, event.versionedHashes, log.transaction_hash.unwrap())
        })
        .collect()
}

#[test]
fn blobs_and_calldata_give_the_same_roots_and_batches_on_anvil_and_the_embedded_chain() {
    let journal = tempfile::tempdir().unwrap();
    write_journal(journal.path(), &chain_stream(4, 900));
    let node = anvil();
    let deploy = || RpcChain::deploy_local(node.url(), SUBMITTER_KEY).map(|(c, _)| c).unwrap();
    let (calldata_at, blobs_at) = (deploy(), deploy());
    let mut on_calldata = RpcChain::connect(node.url(), SUBMITTER_KEY, calldata_at, 1).unwrap();
    let mut on_blobs = RpcChain::connect(node.url(), SUBMITTER_KEY, blobs_at, 1).unwrap();
    let (e1, e2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut embedded_calldata = EmbeddedChain::open_with_clock(e1.path(), FixedClock::TESTS).unwrap();
    let mut embedded_blobs = EmbeddedChain::open_with_clock(e2.path(), FixedClock::TESTS).unwrap();

    let (_d1, reference) = settle(journal.path(), &mut on_calldata, Da::Calldata);
    let (_d2, in_blobs) = settle(journal.path(), &mut on_blobs, Da::Blobs);
    let (_d3, embedded_c) = settle(journal.path(), &mut embedded_calldata, Da::Calldata);
    let (_d4, embedded_b) = settle(journal.path(), &mut embedded_blobs, Da::Blobs);

    // The same batches, byte for byte, whatever carries their data.
    for files in [&in_blobs, &embedded_c, &embedded_b] {
        assert_eq!(files.len(), reference.len());
        for (a, b) in reference.iter().zip(files.iter()) {
            assert_eq!(a.encode(), b.encode(), "batch {}", a.header.index);
        }
    }
    // The same roots on every chain; each commitment is the Rust one of its mode (and the
    // two modes' differ).
    let last = (reference.len() as u64, reference.last().unwrap().header.new_root);
    for b in &reference {
        let (index, root) = (b.header.index, b.header.new_root);
        let (calldata, blobs) = (commitment(b, Da::Calldata).unwrap(), commitment(b, Da::Blobs).unwrap());
        assert_ne!(calldata, blobs);
        assert_eq!(on_calldata.committed(index).unwrap(), (root, calldata));
        assert_eq!(embedded_calldata.committed(index).unwrap(), (root, calldata));
        assert_eq!(on_blobs.committed(index).unwrap(), (root, blobs), "batch {index}: the contract's commitment");
        assert_eq!(embedded_blobs.committed(index).unwrap(), (root, blobs));
    }
    for chain in [&mut on_calldata as &mut dyn Chain, &mut on_blobs, &mut embedded_calldata, &mut embedded_blobs] {
        assert_eq!(chain.last_committed().unwrap(), last);
    }

    // A verifier's way on anvil: each batch's BatchBlobs log names its versioned hashes (the
    // Rust ones) and its transaction, whose blobs anvil serves back; they decode to the
    // batch's data. The calldata contract emitted none.
    let logs = blob_logs(&node, blobs_at);
    assert_eq!(logs.len(), reference.len());
    for ((index, hashes, tx), b) in logs.iter().zip(&reference) {
        assert_eq!(*index, b.header.index);
        assert_eq!(*hashes, blob_hashes(b).unwrap());
        assert_eq!(on_blobs.blob_data_of_transaction(*tx).unwrap(), b.data, "batch {index}");
        // The embedded chain's blob store holds the same blobs under the same hashes.
        assert_eq!(embedded_blobs.blob_data(hashes).unwrap(), b.data, "batch {index}");
    }
    assert!(blob_logs(&node, calldata_at).is_empty());
    // A transaction without blobs has none to read.
    let no_blobs = on_blobs.blobs_of_transaction(B256::repeat_byte(7)).unwrap_err();
    assert!(matches!(no_blobs, ChainError::Incomplete { .. }), "{no_blobs}");

    // Each chain's verification accepts the other mode's commitments (a chain may hold
    // both): a submitter posting in calldata resumes on the blob chain with nothing to do.
    let resumed = Submitter::new(journal.path().to_path_buf(), _d2.path().to_path_buf(), POLICY, Ledger::default())
        .sync(&mut on_blobs)
        .unwrap();
    assert_eq!((resumed.committed_before, resumed.committed), (last.0, 0));
}

#[test]
fn a_blob_commit_without_blobs_is_refused_by_the_contract() {
    let journal = tempfile::tempdir().unwrap();
    write_journal(journal.path(), &chain_stream(4, 300));
    let first = Batch::of(&l2x_settlement::epoch::from_journal(journal.path(), POLICY, &Ledger::default()).unwrap()[0]);
    let input = commit_blobs_call(&first).unwrap().abi_encode();

    // On anvil: the call alone, no blob versioned hashes.
    let node = anvil();
    let address = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).map(|(c, _)| c).unwrap();
    let (provider, submitter) = crate::common::wallet(&node, SUBMITTER_KEY);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let request =
        alloy::rpc::types::TransactionRequest::default().from(submitter).to(address).input(input.clone().into());
    let err = rt.block_on(provider.call(request).into_future()).unwrap_err();
    let data = err.as_error_resp().and_then(|r| r.as_revert_data()).unwrap();
    assert_eq!(l2x_settlement::chain::revert_reason(&data).as_deref(), Some("NoBlobs"));

    // On the embedded chain: the same bytecode, the same refusal, nothing changed.
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    let err = chain.transact(SUBMITTER, chain.address(), input).unwrap_err();
    assert!(matches!(&err, ChainError::Reverted { reason, .. } if reason == "NoBlobs"), "{err}");
    assert_eq!(chain.last_committed().unwrap(), (0, B256::ZERO));
    // With its blobs it goes.
    chain.commit_blobs(&first).unwrap();
    assert_eq!(chain.last_committed().unwrap(), (1, first.header.new_root));
}

#[test]
fn blob_commits_spend_the_same_gas_on_anvil_and_the_embedded_chain() {
    let journal = tempfile::tempdir().unwrap();
    write_journal(journal.path(), &chain_stream(4, 600));
    let batches: Vec<Batch> = l2x_settlement::epoch::from_journal(journal.path(), POLICY, &Ledger::default())
        .unwrap()
        .iter()
        .map(Batch::of)
        .take(4)
        .collect();
    let node = anvil();
    let address = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).map(|(c, _)| c).unwrap();
    let mut rpc = RpcChain::connect(node.url(), SUBMITTER_KEY, address, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut embedded = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    for b in &batches {
        let (gas, blob_gas) = rpc.commit_for_gas(b, Da::Blobs).unwrap();
        assert_eq!(blob_gas, l2x_settlement::blob::GAS_PER_BLOB * blob_hashes(b).unwrap().len() as u64);
        embedded.commit_blobs(b).unwrap();
        assert_eq!(embedded.last_gas(), gas, "batch {}", b.header.index);
    }
}

/// The blob store's files, damaged: each read is an error naming the file.
#[test]
fn a_damaged_blob_store_is_a_named_error() {
    let (dir, chain, first) = first_batch_committed_in_blobs();
    let hashes = blob_hashes(&first).unwrap();
    assert_eq!(hashes.len(), 1);
    let hash = hashes[0];
    let path = blob_path(dir.path(), hash);
    let good = std::fs::read(&path).unwrap();
    assert_eq!(chain.blob(hash).unwrap(), good);
    // A reader opened beside the writer reads it too.
    assert_eq!(EmbeddedChain::read_only(dir.path()).unwrap().blob_data(&hashes).unwrap(), first.data);

    let named = |err: ChainError| match err {
        ChainError::State { path: p, detail } => {
            assert_eq!(p, path, "the error names the blob's file");
            *detail
        }
        other => panic!("expected an error naming the file, got {other}"),
    };
    // A data byte flipped: its commitment no longer hashes to its name.
    let mut flipped = good.clone();
    flipped[40] ^= 1;
    std::fs::write(&path, &flipped).unwrap();
    let detail = named(chain.blob(hash).unwrap_err());
    assert!(matches!(detail, StateError::BlobHash { got } if got != hash), "{detail}");
    assert!(named(chain.blob_data(&hashes).unwrap_err()).to_string().contains("not the one it is named by"));
    // A padding byte set: an element c-kzg refuses, or another hash.
    let mut padded = good.clone();
    padded[32] = 0xff;
    std::fs::write(&path, &padded).unwrap();
    let detail = named(chain.blob(hash).unwrap_err());
    assert!(matches!(detail, StateError::Blob(BlobError::Kzg { .. }) | StateError::BlobHash { .. }), "{detail}");
    // Cut short; gone.
    std::fs::write(&path, &good[..1000]).unwrap();
    let detail = named(chain.blob(hash).unwrap_err());
    assert!(matches!(detail, StateError::Blob(BlobError::Size { len: 1000, .. })), "{detail}");
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(named(chain.blob(hash).unwrap_err()), StateError::Io(_)));
    // Put back, it reads again.
    std::fs::write(&path, &good).unwrap();
    assert_eq!(chain.blob_data(&hashes).unwrap(), first.data);
}

/// A blob commit read back from the embedded chain (`Chain::posted`): its input, its
/// hashes file and its blobs; each of them damaged or gone is an error naming the file.
#[test]
fn a_blob_commit_reads_back_from_the_embedded_chain_and_damage_names_the_file() {
    let (dir, mut chain, first) = first_batch_committed_in_blobs();
    let hashes = blob_hashes(&first).unwrap();
    let posted = chain.posted(1).unwrap();
    assert_eq!(posted.carrier, Carrier::Blobs { transaction: None, versioned_hashes: hashes.clone() });
    assert_eq!(posted.data, first.data);
    assert_eq!(posted.commitment(), commitment(&first, Da::Blobs).unwrap());
    assert_eq!(chain.committed(1).unwrap().1, posted.commitment());

    let hashes_file = batch_data::hashes_path(dir.path(), 1);
    let good = std::fs::read(&hashes_file).unwrap();
    assert_eq!(good, hashes.iter().flat_map(|h| h.0).collect::<Vec<u8>>(), "32 bytes per hash, in order");
    let why = |err: ChainError| match err {
        ChainError::Posted { index: 1, why } => why,
        other => panic!("expected a Posted error of batch 1, got {other}"),
    };
    // The hashes file cut short, another hash, gone.
    std::fs::write(&hashes_file, &good[..31]).unwrap();
    let w = why(chain.posted(1).unwrap_err());
    assert!(matches!(&w, PostedError::Damaged { path, .. } if *path == hashes_file), "{w}");
    std::fs::write(&hashes_file, B256::repeat_byte(1).0).unwrap();
    let w = why(chain.posted(1).unwrap_err());
    let input = batch_data::path(dir.path(), 1);
    assert!(matches!(&w, PostedError::Damaged { path, .. } if *path == input), "another hash: {w}");
    std::fs::remove_file(&hashes_file).unwrap();
    let w = why(chain.posted(1).unwrap_err());
    assert!(matches!(&w, PostedError::Missing { path } if *path == hashes_file), "{w}");
    assert!(w.to_string().contains(&hashes_file.display().to_string()), "{w}");
    std::fs::write(&hashes_file, &good).unwrap();
    assert_eq!(chain.posted(1).unwrap().data, first.data, "put back, it reads again");

    // A blob flipped: an error naming the blob's file.
    let blob = blob_path(dir.path(), hashes[0]);
    let bytes = std::fs::read(&blob).unwrap();
    let mut flipped = bytes.clone();
    flipped[40] ^= 1;
    std::fs::write(&blob, &flipped).unwrap();
    let err = chain.posted(1).unwrap_err();
    assert!(matches!(&err, ChainError::State { path, .. } if *path == blob), "{err}");
    std::fs::write(&blob, &bytes).unwrap();
    assert_eq!(chain.posted(1).unwrap().data, first.data);
}

/// A batch whose data needs more than six blobs is refused before anything is sent.
#[test]
fn data_past_six_blobs_is_refused_before_sending() {
    let journal = tempfile::tempdir().unwrap();
    write_journal(journal.path(), &chain_stream(4, 300));
    let mut big =
        Batch::of(&l2x_settlement::epoch::from_journal(journal.path(), POLICY, &Ledger::default()).unwrap()[0]);
    big.data = vec![1; l2x_settlement::blob::MAX_DATA + 1];
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    let err = chain.commit_blobs(&big).unwrap_err();
    assert!(
        matches!(&err, ChainError::Blobs { index: 1, source } if matches!(**source, BlobError::TooLarge { needed: 7, .. })),
        "{err}"
    );
    assert_eq!(chain.block(), 0, "nothing sent");
    assert!(!dir.path().join(l2x_settlement::embedded::BLOBS_DIR).exists());
}

/// The embedded store's hashes file is checked before any blob is read: longer than six
/// hashes (one transaction's most blobs) it is damaged, read no further than one byte past
/// that; another list of hashes is a commitment mismatch naming the input file, with no
/// blob read (its blobs need not exist).
#[test]
fn a_long_or_foreign_hashes_file_is_damaged_before_any_blob_is_read() {
    let (dir, mut chain, _) = first_batch_committed_in_blobs();
    let hashes_file = batch_data::hashes_path(dir.path(), 1);
    let input = batch_data::path(dir.path(), 1);
    let good = std::fs::read(&hashes_file).unwrap();
    let why = |err: ChainError| match err {
        ChainError::Posted { index: 1, why } => why,
        other => panic!("expected a Posted error of batch 1, got {other}"),
    };
    // Seven hashes, and a large file: damaged, named.
    for len in [7 * 32, 64 << 20] {
        let mut long = good.clone();
        long.resize(len, 0);
        std::fs::write(&hashes_file, &long).unwrap();
        let w = why(chain.posted(1).unwrap_err());
        let named = matches!(&w, PostedError::Damaged { path, why } if *path == hashes_file && why.contains("more than 192 bytes"));
        assert!(named, "{len} bytes: {w}");
    }
    // Six hashes is a list (of other blobs: the commitment says so, before any is read).
    std::fs::write(&hashes_file, [good.clone(), vec![0; 5 * 32]].concat()).unwrap();
    let w = why(chain.posted(1).unwrap_err());
    let commitment = |w: &PostedError| matches!(w, PostedError::Damaged { path, why } if *path == input && why.contains("commitment"));
    assert!(commitment(&w), "{w}");
    // Another hash, its blob nowhere: the commitment first, so no blob is looked for.
    std::fs::write(&hashes_file, B256::repeat_byte(1).0).unwrap();
    assert!(!blob_path(dir.path(), B256::repeat_byte(1)).exists());
    let w = why(chain.posted(1).unwrap_err());
    assert!(commitment(&w), "{w}");
    // The commit's own hashes, a blob gone: the blob's file is named.
    std::fs::write(&hashes_file, &good).unwrap();
    let blob = blob_path(dir.path(), B256::from_slice(&good[..32]));
    std::fs::remove_file(&blob).unwrap();
    let err = chain.posted(1).unwrap_err();
    assert!(matches!(&err, ChainError::State { path, .. } if *path == blob), "{err}");
}
