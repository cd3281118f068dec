//! The embedded chain: the contracts' bytecode in revm, its state in a file. It commits and
//! refuses exactly what the contract does, verifies the Rust tree's proofs, continues after a
//! restart, keeps one writer per directory, and spends the gas a real node (anvil) spends on
//! the same batches. Its users and clock are in `users`, its state file's damage in
//! `state_file`.

mod escape;
mod state_file;
mod users;
mod vault;

use alloy::primitives::B256;
use l2x_engine::StateMachine;
use l2x_risk::Ledger;
use l2x_settlement::batch::Batch;
use l2x_settlement::chain::{Carrier, Chain, ChainError, Da, Posted, PostedError, RpcChain, commitment};
use l2x_settlement::embedded::{EmbeddedChain, STATE_FILE, SUBMITTER, batch_data};
use l2x_settlement::epoch::{self, Epoch, Epochs, Policy};
use l2x_settlement::submitter::Submitter;

use crate::common::{SUBMITTER_KEY, anvil, chain_stream};

const POLICY: Policy = Policy { max_ms: 400, max_fills: 0 };

/// The first `n` epochs of the seeded stream, and the state after the last of them.
fn epochs(n: usize) -> (Vec<Epoch>, Epochs, StateMachine) {
    let cmds = chain_stream(4, 1_500);
    let mut state = StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(POLICY);
    let mut closed = Vec::new();
    let mut events = Vec::new();
    for cmd in &cmds {
        events.clear();
        state.apply(cmd, &mut events);
        closed.extend(epochs.on_command(cmd, &events, &state));
        if closed.len() == n {
            break;
        }
    }
    assert_eq!(closed.len(), n);
    (closed, epochs, state)
}

/// Writes the seeded stream's first `n` commands as a journal in `dir`; returns its epochs.
fn journal_of(dir: &std::path::Path, n: usize) -> Vec<Epoch> {
    crate::common::write_journal(dir, &chain_stream(4, n));
    epoch::from_journal(dir, POLICY, &Ledger::default()).unwrap()
}

fn refused(err: ChainError) -> String {
    match err {
        ChainError::Refused { reason, .. } => reason,
        other => panic!("expected a refusal, got {other}"),
    }
}

/// Whether `posted` is what committing `batch` sent: the same arguments (their commitment
/// covers every byte of them) and the same data.
pub(crate) fn is_posted(posted: &Posted, batch: &Batch) -> bool {
    posted.commitment() == commitment(batch, Da::Calldata).unwrap() && posted.data == batch.data
}

/// The reason of a [`ChainError::Posted`] for batch `index`.
pub(crate) fn not_posted(err: ChainError, index: u64) -> PostedError {
    match err {
        ChainError::Posted { index: i, why } if i == index => why,
        other => panic!("expected batch {index}'s posted data to be unreadable, got {other}"),
    }
}

fn state_error(err: ChainError) -> String {
    match err {
        ChainError::State { path, detail } => format!("{}: {detail}", path.display()),
        other => panic!("expected a state-file error, got {other}"),
    }
}

#[test]
fn the_embedded_chain_commits_refuses_verifies_and_continues_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (closed, epochs, state) = epochs(6);
    let mut chain = EmbeddedChain::open(dir.path()).unwrap();
    assert_eq!(chain.last_committed().unwrap(), (0, B256::ZERO));
    for e in &closed[..5] {
        chain.commit(&Batch::of(e)).unwrap();
        assert_eq!(chain.last_committed().unwrap(), (e.index, e.root));
        assert!(chain.last_gas() > 21_000);
    }
    for e in &closed[..5] {
        assert_eq!(chain.committed(e.index).unwrap(), (e.root, commitment(&Batch::of(e), Da::Calldata).unwrap()));
    }
    assert_eq!(chain.committed(6).unwrap(), (B256::ZERO, B256::ZERO));
    assert_eq!(chain.block(), 5);
    // What each batch posted reads back as sent; nothing for a batch not committed.
    read_back(&mut chain, &closed[..5]);
    for index in [0, 6] {
        assert_eq!(not_posted(chain.posted(index).unwrap_err(), index), PostedError::NotCommitted { last: 5 });
    }

    // The contract's refusals, decoded: the same batch again, a wrong previous root. A
    // batch whose data does not decode is refused before anything is sent (its commit's
    // arguments are read from the data). Nothing changes.
    let again = Batch::of(&closed[4]);
    assert_eq!(refused(chain.commit(&again).unwrap_err()), "WrongIndex(expected 6, got 5)");
    let next = Batch::of(&Epoch { prev_root: closed[3].root, ..closed[5].clone() });
    assert!(refused(chain.commit(&next).unwrap_err()).starts_with("WrongPreviousRoot("));
    let mut tampered = Batch::of(&closed[5]);
    tampered.data.push(0);
    let err = chain.commit(&tampered).unwrap_err();
    assert!(matches!(err, ChainError::Batch { index: 6, .. }), "{err}");
    // The same sent by hand, as the submitter: the contract's own check.
    let mut call = l2x_settlement::chain::commit_call(&Batch::of(&closed[5])).unwrap();
    call.data = [&call.data[..], &[0]].concat().into();
    let input = alloy::sol_types::SolCall::abi_encode(&call);
    let err = chain.transact(SUBMITTER, chain.address(), input).unwrap_err();
    assert!(err.to_string().contains("WrongDataHash("), "{err}");
    assert_eq!(chain.last_committed().unwrap(), (5, closed[4].root));
    assert_eq!(chain.block(), 5, "a refused commit makes no block");
    assert!(!batch_data::path(dir.path(), 6).exists(), "nor keeps its input");

    // The Rust tree's proofs (of the state after the sixth epoch) verify against the sixth
    // root; a changed leaf, a batch not committed and index 0 do not.
    chain.commit(&Batch::of(&closed[5])).unwrap();
    let tree = epochs.tree();
    let leaves = epoch::all_leaves(&state);
    assert!(leaves.len() > 10);
    for leaf in leaves.iter().step_by(4) {
        let siblings = tree.prove(leaf.account).siblings;
        assert!(chain.verify_leaf(6, leaf, &siblings).unwrap(), "account {}", leaf.account);
        let mut wrong = leaf.clone();
        wrong.collateral += 1;
        assert!(!chain.verify_leaf(6, &wrong, &siblings).unwrap());
        assert!(!chain.verify_leaf(7, leaf, &siblings).unwrap());
        assert!(!chain.verify_leaf(0, leaf, &siblings).unwrap());
    }

    // One writer per directory; readers see what it committed and cannot commit.
    let busy = state_error(EmbeddedChain::open(dir.path()).unwrap_err());
    assert!(busy.contains("held by another process"), "{busy}");
    let mut reader = EmbeddedChain::read_only(dir.path()).unwrap();
    assert_eq!(reader.last_committed().unwrap(), (6, closed[5].root));
    read_back(&mut reader, &closed);
    assert!(matches!(reader.commit(&Batch::of(&closed[5])), Err(ChainError::Config(_))));

    // A commit whose state file cannot be written did not happen (here the temporary file's
    // name is taken by a directory): the chain stays at batch 6, and takes batch 7 once the
    // disk is writable again.
    let (seventh, _, _) = epochs_after(6);
    let blocker = dir.path().join(format!("{STATE_FILE}.tmp"));
    std::fs::create_dir(&blocker).unwrap();
    assert!(state_error(chain.commit(&Batch::of(&seventh)).unwrap_err()).contains(".tmp"));
    assert_eq!(chain.last_committed().unwrap(), (6, closed[5].root));
    assert_eq!(chain.block(), 6);
    std::fs::remove_dir(&blocker).unwrap();
    // Its input was kept first (the crash rule's order): an orphan, never read, replaced by
    // the next commit of batch 7.
    assert!(batch_data::path(dir.path(), 7).exists());
    assert_eq!(not_posted(chain.posted(7).unwrap_err(), 7), PostedError::NotCommitted { last: 6 });
    std::fs::write(batch_data::path(dir.path(), 7), b"an orphan from before a crash").unwrap();

    // A restart continues: the same state (roots, block, the submitter's nonce), and the
    // next commit is accepted.
    chain.check_invariants().unwrap();
    let before = chain.state();
    assert_eq!(before.accounts[&SUBMITTER].nonce, 6, "refused commits use no nonce");
    drop(chain);
    let mut chain = EmbeddedChain::open(dir.path()).unwrap();
    assert_eq!(chain.state(), before);
    assert_eq!(chain.last_committed().unwrap(), (6, closed[5].root));
    assert_eq!(chain.block(), 6);
    for e in &closed {
        assert_eq!(chain.committed(e.index).unwrap().0, e.root);
    }
    chain.commit(&Batch::of(&seventh)).unwrap();
    assert_eq!(chain.last_committed().unwrap(), (7, seventh.root));
    assert_eq!(chain.block(), 7);
    chain.check_invariants().unwrap();
    read_back(&mut chain, &[closed, vec![seventh]].concat());
}

/// Reads what `epochs`' batches posted back from the embedded chain: as sent.
fn read_back(chain: &mut EmbeddedChain, epochs: &[Epoch]) {
    for e in epochs {
        let posted = chain.posted(e.index).unwrap();
        assert!(is_posted(&posted, &Batch::of(e)), "batch {}", e.index);
        assert_eq!(posted.carrier, Carrier::Calldata { transaction: None });
    }
}

/// Epoch `n + 1` of the seeded stream.
fn epochs_after(n: usize) -> (Epoch, Epochs, StateMachine) {
    let (mut closed, epochs, state) = epochs(n + 1);
    (closed.pop().unwrap(), epochs, state)
}

#[test]
fn the_submitter_settles_a_journal_on_the_embedded_chain() {
    let (dir, batches, chain_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let expected = journal_of(dir.path(), 1_000);
    let submitter =
        || Submitter::new(dir.path().to_path_buf(), batches.path().to_path_buf(), POLICY, Ledger::default());
    let mut chain = EmbeddedChain::open(chain_dir.path()).unwrap();
    let synced = submitter().sync(&mut chain).unwrap();
    assert_eq!((synced.epochs, synced.committed), (expected.len() as u64, expected.len() as u64));
    assert_eq!(synced.root, expected.last().unwrap().root);
    drop(chain);
    let mut chain = EmbeddedChain::open(chain_dir.path()).unwrap();
    let again = submitter().sync(&mut chain).unwrap();
    assert_eq!((again.committed_before, again.committed), (expected.len() as u64, 0));
}

fn commit_all(chain: &mut dyn Chain, batches: &[Batch]) {
    for b in batches {
        chain.commit(b).unwrap();
    }
}

#[test]
fn the_embedded_chain_spends_the_gas_a_node_spends_on_the_same_batches() {
    let node = anvil();
    let address = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).map(|(c, _)| c).unwrap();
    let mut rpc = RpcChain::connect(node.url(), SUBMITTER_KEY, address, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut embedded = EmbeddedChain::open(dir.path()).unwrap();
    let (closed, _, _) = epochs(4);
    let batches: Vec<Batch> = closed.iter().map(Batch::of).collect();
    commit_all(&mut embedded, &batches[..1]);
    commit_all(&mut rpc, &batches[..1]);
    for b in &batches[1..] {
        let on_node = rpc.commit_for_gas(b, Da::Calldata).unwrap().0;
        embedded.commit(b).unwrap();
        assert_eq!(embedded.last_gas(), on_node, "batch {}", b.header.index);
    }
    assert_eq!(embedded.last_committed().unwrap(), rpc.last_committed().unwrap());
    check_same_views(&mut embedded, &mut rpc, 4);
}

fn check_same_views(a: &mut dyn Chain, b: &mut dyn Chain, last: u64) {
    for index in 0..=last + 1 {
        assert_eq!(a.committed(index).unwrap(), b.committed(index).unwrap(), "batch {index}");
    }
}

/// Batch files whose data another zstd compressed (other bytes, the same leaves) are kept
/// and committed as they are: the chain's data hash is the file's.
#[test]
fn batch_files_compressed_by_another_zstd_are_committed_as_they_are() {
    use alloy::primitives::keccak256;
    use l2x_settlement::batch::Header;

    let (dir, batches, chain_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let expected = journal_of(dir.path(), 600);
    let mut files = Vec::new();
    for e in &expected {
        let ours = Batch::of(e);
        let data = zstd::bulk::compress(&ours.raw().unwrap(), 1).unwrap();
        let header = Header { data_hash: keccak256(&data), data_len: data.len() as u64, ..ours.header };
        let theirs = Batch { header, data };
        assert_ne!(theirs.header.data_hash, ours.header.data_hash);
        theirs.write(batches.path()).unwrap();
        files.push(theirs);
    }
    let mut chain = EmbeddedChain::open(chain_dir.path()).unwrap();
    let mut sub = Submitter::new(dir.path().to_path_buf(), batches.path().to_path_buf(), POLICY, Ledger::default());
    let synced = sub.sync(&mut chain).unwrap();
    assert_eq!(synced.committed, expected.len() as u64);
    for f in &files {
        assert_eq!(chain.committed(f.header.index).unwrap(), (f.header.new_root, commitment(f, Da::Calldata).unwrap()));
    }
}

/// A pass that stops half-way through writing the batch files (batch 3's cannot be
/// written) has written those before it, committed nothing, and written none after it; the
/// next pass (the obstacle gone) writes every one of them before committing.
#[test]
fn batch_files_a_failed_pass_did_not_write_are_written_by_the_next() {
    let (dir, batches, chain_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let expected = journal_of(dir.path(), 600);
    assert!(expected.len() >= 4);
    // A directory where batch 3's temporary file goes: the loader ignores the name, the
    // write of batch 3 fails.
    let obstacle = batches.path().join(Batch::file_name(3)).with_extension("tmp");
    std::fs::create_dir(&obstacle).unwrap();
    let mut chain = EmbeddedChain::open(chain_dir.path()).unwrap();
    let mut sub = Submitter::new(dir.path().to_path_buf(), batches.path().to_path_buf(), POLICY, Ledger::default());
    let err = sub.sync(&mut chain).unwrap_err();
    assert!(err.to_string().contains(&obstacle.display().to_string()), "{err}");
    assert_eq!(chain.last_committed().unwrap().0, 0, "nothing committed before every file is in place");
    assert!(batches.path().join(Batch::file_name(2)).exists(), "the files before the failure are written");
    assert!(!batches.path().join(Batch::file_name(4)).exists(), "none after it");
    std::fs::remove_dir(&obstacle).unwrap();
    let synced = sub.sync(&mut chain).unwrap();
    assert_eq!(synced.committed, expected.len() as u64);
    let set = l2x_settlement::batch_set::BatchSet::load(batches.path()).unwrap();
    let files = set.batches();
    assert_eq!(files.len(), expected.len());
    for (f, e) in files.iter().zip(&expected) {
        assert!(f.same_content(&Batch::of(e)), "batch {}", e.index);
    }
}

/// A batch directory that loads (a whole, consistent set) but was made from another
/// journal is refused at the first file that is not this journal's batch, before anything
/// is committed.
#[test]
fn a_consistent_batch_set_of_another_journal_is_a_local_mismatch() {
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let (journal_a, journal_b, batches) = (dirs[0].path(), dirs[1].path(), dirs[2].path());
    journal_of(journal_a, 600);
    let mut chain_a = EmbeddedChain::open(dirs[3].path()).unwrap();
    Submitter::new(journal_a.to_path_buf(), batches.to_path_buf(), POLICY, Ledger::default())
        .sync(&mut chain_a)
        .unwrap();
    crate::common::write_journal(journal_b, &chain_stream(5, 600));
    let mut chain_b = EmbeddedChain::open(dirs[4].path()).unwrap();
    let err = Submitter::new(journal_b.to_path_buf(), batches.to_path_buf(), POLICY, Ledger::default())
        .sync(&mut chain_b)
        .unwrap_err();
    assert!(matches!(err, l2x_settlement::submitter::SubmitError::LocalMismatch { index: 1, .. }), "{err}");
    assert_eq!(chain_b.last_committed().unwrap().0, 0, "nothing committed");
}

/// Issue 14: "batches on a current-hardfork chain pay the EIP-7623 calldata floor". The
/// anvil the tests pin runs hardfork Bpo1 (Osaka's EVM rules), the embedded chain revm's
/// Osaka: a batch of many leaves costs exactly the floor of its transaction's input —
/// 21,000 + 10 per zero byte + 40 per other byte —, not the EIP-2028 calldata price, on
/// both; a batch of a few leaves costs more than its floor (the contract's storage writes).
#[test]
fn batches_pay_the_eip7623_calldata_floor_on_a_current_hardfork() {
    use l2x_settlement::chain::commit_floor_gas;
    use l2x_settlement::leaf::{AccountLeaf, Position};
    use rand::{RngExt, SeedableRng};
    let node = anvil();
    assert_eq!(node.hardfork().unwrap(), "Bpo1");
    let address = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).map(|(c, _)| c).unwrap();
    let mut rpc = RpcChain::connect(node.url(), SUBMITTER_KEY, address, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut embedded = EmbeddedChain::open(dir.path()).unwrap();
    let (closed, _, state) = epochs(1);
    let small = Batch::of(&closed[0]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let leaves: Vec<AccountLeaf> = (1..=500u64)
        .map(|account| AccountLeaf {
            account,
            collateral: rng.random_range(0..1_000_000_000_000i64),
            positions: vec![Position {
                instrument: 0,
                size: rng.random_range(1..1_000i64),
                cost: i128::from(rng.random_range(1..100_000_000_000i64)),
                fundingIndex: i128::from(rng.random_range(-1_000_000..1_000_000i64)),
            }],
        })
        .collect();
    let mut tree = l2x_settlement::tree::Tree::new();
    tree.update(closed[0].changes.iter().map(|l| (l.account, Some(l.hash()))));
    let root = tree.update(leaves.iter().map(|l| (l.account, Some(l.hash()))));
    let large = Batch::of(&Epoch {
        index: 2,
        first_seq: closed[0].last_seq + 1,
        last_seq: closed[0].last_seq + 1,
        commands: 1,
        prev_root: closed[0].root,
        root,
        markets: l2x_settlement::market::of(state.ledger()),
        changes: leaves,
        ..closed[0].clone()
    });
    let small_gas = rpc.commit_for_gas(&small, Da::Calldata).unwrap().0;
    let large_gas = rpc.commit_for_gas(&large, Da::Calldata).unwrap().0;
    assert!(small_gas > commit_floor_gas(&small).unwrap(), "a small batch pays for its execution: {small_gas}");
    assert_eq!(large_gas, commit_floor_gas(&large).unwrap(), "a large batch pays the floor");
    assert!(large_gas > 21_000 + l2x_settlement::batch::calldata_gas(&large.data) * 2, "well above the EIP-2028 price");
    embedded.commit(&small).unwrap();
    assert_eq!(embedded.last_gas(), small_gas);
    embedded.commit(&large).unwrap();
    assert_eq!(embedded.last_gas(), large_gas, "the embedded chain applies the same floor");
}

/// What a batch posted is read from the embedded chain's store and checked against the
/// contract's commitment: a file damaged anywhere (a flipped byte in its data, in its
/// arguments, or in its selector), another batch's file, or no file is an error naming
/// the batch and the file, never a wrong answer.
#[test]
fn a_damaged_swapped_or_missing_batch_data_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (closed, _, _) = epochs(3);
    let mut chain = EmbeddedChain::open(dir.path()).unwrap();
    for e in &closed {
        chain.commit(&Batch::of(e)).unwrap();
    }
    let file = batch_data::path(dir.path(), 2);
    let good = std::fs::read(&file).unwrap();
    let named = |why: &PostedError| why.to_string().contains(&file.display().to_string());
    // The last byte is the data's (the ABI pads `bytes` with zeros: flip a data byte).
    let data_end = good.len() - good.iter().rev().position(|&b| b != 0).unwrap() - 1;
    for (at, expect) in [(data_end, "its data hashes to"), (4 + 63, "its arguments give commitment"), (0, "selector")] {
        let mut bytes = good.clone();
        bytes[at] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        let why = not_posted(chain.posted(2).unwrap_err(), 2);
        assert!(named(&why) && why.to_string().contains(expect), "byte {at}: {why}");
    }
    std::fs::copy(batch_data::path(dir.path(), 3), &file).unwrap();
    let why = not_posted(chain.posted(2).unwrap_err(), 2);
    assert!(matches!(why, PostedError::WrongIndex { got: 3, .. }) && named(&why), "{why}");
    std::fs::remove_file(&file).unwrap();
    assert_eq!(not_posted(chain.posted(2).unwrap_err(), 2), PostedError::Missing { path: file.clone() });
    std::fs::write(&file, &good).unwrap();
    assert!(is_posted(&chain.posted(2).unwrap(), &Batch::of(&closed[1])));
}
