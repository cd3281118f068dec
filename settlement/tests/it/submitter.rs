//! The submitter against a real node (anvil): it commits what the journal closes, resumes
//! from the chain without committing anything twice, refuses to build on a chain whose roots
//! the journal does not reproduce, checks its batch files, and reports a wrong contract, a
//! node that answers garbage and one that does not answer.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use alloy::primitives::Address;
use l2x_risk::Ledger;
use l2x_settlement::chain::{Chain, ChainError, RpcChain};
use l2x_settlement::epoch::{self, Policy};
use l2x_settlement::submitter::{SubmitError, Submitter};
use l2x_types::Command;

use crate::common::{OTHER_KEY, SUBMITTER_KEY, anvil, chain_stream, write_journal as journal};

const POLICY: Policy = Policy { max_ms: 400, max_fills: 0 };

fn submitter(journal: &Path, batches: &Path) -> Submitter {
    Submitter::new(journal.to_path_buf(), batches.to_path_buf(), POLICY, Ledger::default())
}

#[test]
fn the_submitter_commits_resumes_and_never_builds_on_a_root_it_cannot_reproduce() {
    let node = anvil();
    let address = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).map(|(c, _)| c).unwrap();
    let mut chain = RpcChain::connect(node.url(), SUBMITTER_KEY, address, 1).unwrap();
    let cmds = chain_stream(4, 1_500);
    let (dir, batches) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    journal(dir.path(), &cmds[..700]);
    let mut sub = submitter(dir.path(), batches.path());

    let first = sub.sync(&mut chain).unwrap();
    let expected = epoch::from_journal(dir.path(), POLICY, &Ledger::default()).unwrap();
    assert!(first.epochs > 5);
    assert_eq!(
        (first.committed_before, first.committed, first.epochs),
        (0, expected.len() as u64, expected.len() as u64)
    );
    assert_eq!(first.root, expected.last().unwrap().root);
    assert_eq!(chain.last_committed().unwrap(), (first.epochs, first.root));

    // A restart: nothing to do, nothing sent twice.
    let again = submitter(dir.path(), batches.path()).sync(&mut chain).unwrap();
    assert_eq!((again.committed_before, again.committed), (first.epochs, 0));

    // The journal grows: only the new epochs go.
    journal(dir.path(), &cmds[700..]);
    let more = sub.sync(&mut chain).unwrap();
    assert_eq!(more.committed_before, first.epochs);
    assert_eq!(more.committed_before + more.committed, more.epochs);
    assert!(more.committed > 0);

    // Another journal whose history differs (one order changed): the chain's roots are not
    // what it gives, so it commits nothing and names the batch.
    let mut forged = cmds.clone();
    let at = forged.iter().position(|c| matches!(c.cmd, Command::NewOrder(_)) && c.seq.0 > 50).unwrap();
    if let Command::NewOrder(o) = &mut forged[at].cmd {
        o.qty.0 += 1;
    }
    let (fdir, fbatches) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    journal(fdir.path(), &forged);
    let honest = epoch::from_journal(dir.path(), POLICY, &Ledger::default()).unwrap();
    let dishonest = epoch::from_journal(fdir.path(), POLICY, &Ledger::default()).unwrap();
    let first_differing =
        honest.iter().zip(&dishonest).position(|(a, b)| a.root != b.root).map(|i| i as u64 + 1).unwrap();
    assert!(first_differing < more.epochs, "the forged order changes an early epoch");
    let err = submitter(fdir.path(), fbatches.path()).sync(&mut chain).unwrap_err();
    assert!(matches!(err, SubmitError::Mismatch { index, .. } if index == first_differing), "{err}");
    assert_eq!(chain.last_committed().unwrap().0, more.epochs, "nothing committed");

    // A batch file damaged on disk is caught when a submitter starts (it checks every file
    // it did not write itself) before anything is sent.
    let file = batches.path().join(l2x_settlement::batch::Batch::file_name(2));
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let err = submitter(dir.path(), batches.path()).sync(&mut chain).unwrap_err();
    assert!(matches!(err, SubmitError::Batch(_)), "{err}");
    assert!(err.to_string().contains(&l2x_settlement::batch::Batch::file_name(2)), "{err}");
}

#[test]
fn a_wrong_contract_a_garbage_node_and_a_silent_node_are_clear_errors() {
    let node = anvil();
    let address = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).map(|(c, _)| c).unwrap();
    // Another submitter's key, an address with no code.
    let err = RpcChain::connect(node.url(), OTHER_KEY, address, 1).unwrap_err();
    assert!(matches!(err, ChainError::WrongContract { .. }), "{err}");
    assert!(err.to_string().contains("its submitter is"), "{err}");
    let err = RpcChain::connect(node.url(), SUBMITTER_KEY, Address::repeat_byte(7), 1).unwrap_err();
    assert!(matches!(err, ChainError::WrongContract { ref why, .. } if why.contains("no code")), "{err}");
    let err = RpcChain::connect(node.url(), "not a key", address, 1).unwrap_err();
    assert!(matches!(err, ChainError::Config(_)), "{err}");

    // A node that answers HTTP 200 with garbage.
    let garbage = TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_url = format!("http://{}", garbage.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut s in garbage.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\nnot json!");
        }
    });
    let err = RpcChain::connect(&garbage_url, SUBMITTER_KEY, address, 1).unwrap_err();
    assert!(matches!(err, ChainError::Rpc { .. }), "{err}");

    // A node that accepts and never answers: a timeout, not a stuck thread.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || silent.accept().map(|(s, _)| s));
    let err =
        RpcChain::connect_with_timeout(&silent_url, SUBMITTER_KEY, address, 1, Duration::from_millis(300)).unwrap_err();
    assert!(matches!(err, ChainError::Timeout { .. }), "{err}");
    drop(held);
}

/// A reorg that takes committed batches off the chain (anvil's snapshot and revert): the
/// next sync commits them again, the same ones, and the chain ends where the journal is.
#[test]
fn batches_a_reorg_removed_are_committed_again() {
    use alloy::primitives::U256;
    use alloy::providers::{Provider, ProviderBuilder};

    let node = anvil();
    let address = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).map(|(c, _)| c).unwrap();
    let mut chain = RpcChain::connect(node.url(), SUBMITTER_KEY, address, 1).unwrap();
    let cmds = chain_stream(6, 1_200);
    let (dir, batches) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    journal(dir.path(), &cmds[..400]);
    let mut sub = submitter(dir.path(), batches.path());
    let before = sub.sync(&mut chain).unwrap();
    assert!(before.epochs >= 2);

    // Snapshot, commit the rest, then revert: the later batches are gone from the chain.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let provider = ProviderBuilder::new().connect_http(node.url().parse().unwrap());
    let snapshot: U256 = rt.block_on(provider.raw_request("evm_snapshot".into(), ())).unwrap();
    journal(dir.path(), &cmds[400..]);
    let after = sub.sync(&mut chain).unwrap();
    assert!(after.committed > 0);
    let reverted: bool = rt.block_on(provider.raw_request("evm_revert".into(), (snapshot,))).unwrap();
    assert!(reverted);
    assert_eq!(chain.last_committed().unwrap().0, before.epochs, "the reorg took them off");

    // The next pass (a new submitter, as after a restart) puts them back, the same ones.
    let mut restarted = submitter(dir.path(), batches.path());
    let again = restarted.sync(&mut chain).unwrap();
    assert_eq!((again.committed_before, again.committed), (before.epochs, after.committed));
    assert_eq!(again.root, after.root);
}
