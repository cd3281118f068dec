//! What a node answers for a committed batch that is not the batch's commit: every such
//! answer is an error naming the batch and what was wrong (no log, two, a log removed by a
//! reorg, a transaction the node does not have, one that is another batch's commit, not a
//! commit at all, or not sent to the contract), and a commit's input altered after the
//! fact is a finding (its data no longer hashes to `h.dataHash`, its arguments no longer
//! give the stored commitment, a root that is not the one stored). The answers come from a
//! real anvil through a lying node (`devnode::Liar`) that rewrites one answer.

use alloy::primitives::{B256, hex};
use alloy::sol_types::SolCall as _;
use l2x_settlement::batch::Batch;
use l2x_settlement::chain::abi::L2xSettlement as S;
use l2x_settlement::chain::{Chain, ChainError, LOG_RANGE, PostedError, RpcChain};
use l2x_settlement::devnode::{Anvil, DEV_KEYS, Liar};
use l2x_settlement::rebuild::{Finding, RebuildError, rebuild};
use serde_json::{Value, json};

use super::scenario;
use crate::common::{SUBMITTER_KEY, anvil};

/// Anvil with the scenario's first three batches committed, and what tests point a lie at.
struct Node {
    anvil: Anvil,
    address: alloy::primitives::Address,
    /// The commits' transactions, batch 1 first.
    commits: Vec<B256>,
    /// A deposit to the contract (a transaction to it that is not a commit).
    deposit: B256,
    /// The test token's deployment (a transaction to no one).
    creation: B256,
}

/// The hash of the first transaction of `block`.
fn first_transaction(anvil: &Anvil, block: u64) -> B256 {
    let block = anvil.request("eth_getBlockByNumber", json!([format!("0x{block:x}"), false])).unwrap();
    block["transactions"][0].as_str().unwrap().parse().unwrap()
}

fn node() -> Node {
    let s = scenario();
    let anvil = anvil();
    let (address, _) = RpcChain::deploy_local(anvil.url(), SUBMITTER_KEY).unwrap();
    let creation = first_transaction(&anvil, 1);
    let mut chain = RpcChain::connect(anvil.url(), SUBMITTER_KEY, address, 1).unwrap();
    let commits = s.closed[..3].iter().map(|e| chain.commit(&Batch::of(e)).unwrap()).collect();
    let block = anvil.deposit(DEV_KEYS[1], address, 1, 1_000_000).unwrap();
    let deposit = first_transaction(&anvil, block);
    Node { anvil, address, commits, deposit, creation }
}

/// Whether a log is batch 2's (topic 1).
fn of_batch_2(log: &Value) -> bool {
    log["topics"][1].as_str() == Some(&B256::with_last_byte(2).to_string())
}

/// A reader through a node that rewrites batch 2's logs in each `eth_getLogs` answer with
/// `edit` (the reader asks for every batch's logs at once: the others are left as they are).
fn lying_logs(node: &Node, edit: impl Fn(&mut Vec<Value>) + Send + 'static) -> (Liar, RpcChain) {
    let liar = Liar::spawn(node.anvil.url(), move |method, _params, result| {
        if method == "eth_getLogs" {
            let (mut batch_2, mut logs): (Vec<Value>, Vec<Value>) =
                result.as_array().cloned().unwrap_or_default().into_iter().partition(of_batch_2);
            if !batch_2.is_empty() {
                edit(&mut batch_2);
                logs.extend(batch_2);
                *result = Value::Array(logs);
            }
        }
    })
    .unwrap();
    let reader = RpcChain::read_only(liar.url(), node.address).unwrap();
    (liar, reader)
}

/// Batch 2's log pointing at transaction `tx`.
fn pointing_at(node: &Node, tx: B256) -> (Liar, RpcChain) {
    lying_logs(node, move |logs| logs[0]["transactionHash"] = json!(tx.to_string()))
}

fn why(chain: &mut RpcChain) -> PostedError {
    match chain.posted(2) {
        Err(ChainError::Posted { index: 2, why }) => why,
        other => panic!("expected batch 2 to be unreadable, got {other:?}"),
    }
}

/// The logs are read once per run, in ranges of `LOG_RANGE` blocks (a provider that caps a
/// log query's range answers each), and not once per batch: a chain of 12,000 blocks with
/// three batches takes one `eth_getLogs` per range for the whole rebuild.
#[test]
fn commit_logs_are_read_once_in_ranges_not_once_per_batch() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    let node = node();
    node.anvil.request("anvil_mine", json!([format!("0x{:x}", 12_000)])).unwrap();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let widest = Arc::new(AtomicU64::new(0));
    let (seen, wide) = (Arc::clone(&ranges), Arc::clone(&widest));
    let capped = Liar::spawn(node.anvil.url(), move |method, params, result| {
        if method == "eth_getLogs" {
            let block =
                |k: &str| u64::from_str_radix(params[0][k].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
            let (from, to) = (block("fromBlock"), block("toBlock"));
            wide.fetch_max(to - from + 1, Ordering::Relaxed);
            seen.lock().unwrap().push((from, to));
            if to - from + 1 > LOG_RANGE {
                // What a capped provider does: no logs for a range that wide.
                *result = json!("block range too wide");
            }
        }
    })
    .unwrap();
    let r = rebuild(&mut RpcChain::read_only(capped.url(), node.address).unwrap()).unwrap();
    assert!(r.agrees(), "{:?}", r.finding);
    assert_eq!(r.batches.len(), 3);
    let head = u64::from_str_radix(
        node.anvil.request("eth_blockNumber", json!([])).unwrap().as_str().unwrap().trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let expected: Vec<(u64, u64)> =
        (0..=head).step_by(10_000).map(|from| (from, (from + LOG_RANGE - 1).min(head))).collect();
    assert_eq!(*ranges.lock().unwrap(), expected, "every block once, in ranges, for the whole run");
    assert_eq!((expected.len(), widest.load(Ordering::Relaxed)), (2, LOG_RANGE));
}

#[test]
fn answers_that_are_not_the_batchs_commit_are_errors_naming_the_batch() {
    let node = node();
    assert_eq!(why(&mut lying_logs(&node, Vec::clear).1), PostedError::NoLog);
    let (_liar, mut twice) = lying_logs(&node, |logs| logs.push(logs[0].clone()));
    assert_eq!(why(&mut twice), PostedError::Logs { count: 2 });
    let (_liar, mut removed) = lying_logs(&node, |logs| logs[0]["removed"] = json!(true));
    assert_eq!(why(&mut removed), PostedError::NoLog, "a log a reorg removed is not the canonical chain's");
    let (_liar, mut unknown) = pointing_at(&node, B256::repeat_byte(0x11));
    assert_eq!(why(&mut unknown), PostedError::NoTransaction { transaction: B256::repeat_byte(0x11) });
    let third = node.commits[2];
    let (_liar, mut other) = pointing_at(&node, third);
    assert_eq!(why(&mut other), PostedError::WrongIndex { at: format!("transaction {third}"), got: 3 });
    let (_liar, mut deposit) = pointing_at(&node, node.deposit);
    let w = why(&mut deposit);
    assert!(matches!(&w, PostedError::NotACommit { why, .. } if why.starts_with("selector 0x")), "{w}");
    let (_liar, mut creation) = pointing_at(&node, node.creation);
    let w = why(&mut creation);
    assert!(matches!(&w, PostedError::NotACommit { why, .. } if why.starts_with("a contract creation")), "{w}");
    // The rebuild stops with the chain's error: batch 1 read, nothing claimed of batch 2.
    let err = rebuild(&mut creation).unwrap_err();
    assert!(matches!(err, RebuildError::Chain(ChainError::Posted { index: 2, .. })), "{err}");
    assert!(err.to_string().starts_with("batch 2: what it posted cannot be read back: transaction 0x"), "{err}");
    // The honest answers, through the same lying node: batch 2 reads as committed.
    let (_liar, mut honest) = lying_logs(&node, |_| {});
    assert_eq!(
        honest.posted(2).unwrap().carrier,
        l2x_settlement::chain::Carrier::Calldata { transaction: Some(node.commits[1]) }
    );
}

/// A reader through a node that rewrites batch 2's commit input with `edit` (the bytes,
/// selector first).
fn lying_input(node: &Node, edit: impl Fn(&mut Vec<u8>) + Send + 'static) -> (Liar, RpcChain) {
    let tx = node.commits[1].to_string();
    let liar = Liar::spawn(node.anvil.url(), move |method, params, result| {
        if method == "eth_getTransactionByHash" && params[0].as_str() == Some(tx.as_str()) {
            let mut input = hex::decode(result["input"].as_str().unwrap()).unwrap();
            edit(&mut input);
            result["input"] = json!(hex::encode_prefixed(&input));
        }
    })
    .unwrap();
    let reader = RpcChain::read_only(liar.url(), node.address).unwrap();
    (liar, reader)
}

fn finding(chain: &mut RpcChain) -> Finding {
    super::finding(chain)
}

#[test]
fn a_commit_altered_after_the_fact_is_a_finding_naming_the_batch() {
    let node = node();
    // The last byte of the input is data (the ABI pads `bytes` with zeros: the last one
    // that is not).
    let (_liar, mut data) = lying_input(&node, |input| {
        let at = input.len() - 1 - input.iter().rev().position(|&b| b != 0).unwrap();
        input[at] ^= 1;
    });
    assert!(matches!(finding(&mut data), Finding::DataHash { index: 2, .. }));
    // h.epochTs (the fourth word of the arguments): the stored commitment no longer follows.
    let (_liar, mut header) = lying_input(&node, |input| input[4 + 4 * 32 - 1] ^= 1);
    assert!(matches!(finding(&mut header), Finding::Commitment { index: 2, .. }));
    // roots(2) answered wrong: the leaves give the committed root, the node says another.
    let roots_2 = hex::encode_prefixed(S::rootsCall { index: 2 }.abi_encode());
    let liar = Liar::spawn(node.anvil.url(), move |method, params, result| {
        if method == "eth_call" && params[0]["input"].as_str().or(params[0]["data"].as_str()) == Some(&roots_2) {
            *result = json!(B256::repeat_byte(7).to_string());
        }
    })
    .unwrap();
    let f = finding(&mut RpcChain::read_only(liar.url(), node.address).unwrap());
    assert!(
        matches!(f, Finding::Root { index: 2, whose: "the chain's roots(index)", expected, .. } if expected == B256::repeat_byte(7)),
        "{f}"
    );
}

/// The root the chain's last batch is checked against at the end is `lastRoot()`, not
/// `roots(lastIndex)`: a node answering `lastRoot()` with another root is a `LastRoot`
/// finding after the last batch, the state at that batch (every batch checked).
#[test]
fn a_last_root_that_is_not_the_batches_is_a_finding_after_the_last_batch() {
    let node = node();
    let last_root = hex::encode_prefixed(S::lastRootCall {}.abi_encode());
    let liar = Liar::spawn(node.anvil.url(), move |method, params, result| {
        if method == "eth_call" && params[0]["input"].as_str().or(params[0]["data"].as_str()) == Some(&last_root) {
            *result = json!(B256::repeat_byte(9).to_string());
        }
    })
    .unwrap();
    let mut reader = RpcChain::read_only(liar.url(), node.address).unwrap();
    assert_eq!(reader.last_committed().unwrap(), (3, B256::repeat_byte(9)), "lastRoot(), as the node answers it");
    let r = rebuild(&mut reader).unwrap();
    let rebuilt = scenario().closed[2].root;
    let expected = Finding::LastRoot { index: 3, rebuilt, last_root: B256::repeat_byte(9) };
    assert_eq!(r.finding, Some(expected));
    assert_eq!((r.state.index, r.batches.len(), r.root()), (3, 3, rebuilt), "every batch checked and applied");
    assert!(r.escape(1).is_none(), "no escape against a root that is not the chain's");
}

/// A blob commit's transaction as a node might misreport it: without versioned hashes, or
/// with blobs that are not the ones they name. Each is an error naming the batch and the
/// transaction.
#[test]
fn a_blob_commit_without_hashes_or_with_other_blobs_is_an_error_naming_the_batch() {
    let s = scenario();
    let anvil = anvil();
    let (address, _) = RpcChain::deploy_local(anvil.url(), SUBMITTER_KEY).unwrap();
    let mut chain = RpcChain::connect(anvil.url(), SUBMITTER_KEY, address, 1).unwrap();
    let tx = chain.commit_blobs(&Batch::of(&s.closed[0])).unwrap();
    let honest = RpcChain::read_only(anvil.url(), address).unwrap().posted(1).unwrap();
    assert_eq!(honest.data, Batch::of(&s.closed[0]).data);
    let why = |liar: &Liar| match RpcChain::read_only(liar.url(), address).unwrap().posted(1).unwrap_err() {
        ChainError::Posted { index: 1, why } => why,
        other => panic!("expected a Posted error of batch 1, got {other}"),
    };

    let hex_tx = tx.to_string();
    let no_hashes = Liar::spawn(anvil.url(), move |method, params, result| {
        if method == "eth_getTransactionByHash" && params[0].as_str() == Some(hex_tx.as_str()) {
            result["blobVersionedHashes"] = json!([]);
        }
    })
    .unwrap();
    assert_eq!(why(&no_hashes), PostedError::NoBlobHashes { at: format!("transaction {tx}") });

    let other_blob = Liar::spawn(anvil.url(), move |method, _, result| {
        if method == "anvil_getBlobsByTransactionHash" {
            let mut blob = result[0].as_str().unwrap().to_string();
            let flipped = if &blob[82..83] == "0" { "1" } else { "0" };
            blob.replace_range(82..83, flipped);
            result[0] = json!(blob);
        }
    })
    .unwrap();
    let w = why(&other_blob);
    assert!(
        matches!(&w, PostedError::Blobs { at, why } if *at == format!("transaction {tx}") && why.contains("versioned hash")),
        "{w}"
    );
}

/// A node that answers a blob commit's transaction with its true versioned hashes once and
/// with other hashes after, serving the other hashes' blobs (another batch's, valid blobs):
/// the blobs are checked against the hashes of the one transaction read — those the
/// commitment binds — so the other blobs are an error naming the transaction, and the
/// transaction is read once per blob batch (the defect: a second read checked the blobs
/// against its own answer).
#[test]
fn blobs_are_checked_against_the_hashes_of_the_one_transaction_read() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let s = scenario();
    let anvil = anvil();
    let (address, _) = RpcChain::deploy_local(anvil.url(), SUBMITTER_KEY).unwrap();
    let mut chain = RpcChain::connect(anvil.url(), SUBMITTER_KEY, address, 1).unwrap();
    let tx = chain.commit_blobs(&Batch::of(&s.closed[0])).unwrap();
    let other = l2x_settlement::blob::encode(&Batch::of(&s.closed[1]).data).unwrap();
    let other_hashes: Vec<String> =
        l2x_settlement::blob::versioned_hashes(&other).unwrap().iter().map(ToString::to_string).collect();
    let other_blobs: Vec<String> = other.iter().map(hex::encode_prefixed).collect();
    let reads = Arc::new(AtomicUsize::new(0));
    let (hex_tx, counted) = (tx.to_string(), Arc::clone(&reads));
    let liar = Liar::spawn(anvil.url(), move |method, params, result| {
        if method == "eth_getTransactionByHash" && params[0].as_str() == Some(hex_tx.as_str()) {
            if counted.fetch_add(1, Ordering::SeqCst) > 0 {
                result["blobVersionedHashes"] = json!(other_hashes);
            }
        } else if method == "anvil_getBlobsByTransactionHash" {
            *result = json!(other_blobs);
        }
    })
    .unwrap();
    let err = RpcChain::read_only(liar.url(), address).unwrap().posted(1).unwrap_err();
    assert!(
        matches!(&err, ChainError::Posted { index: 1, why: PostedError::Blobs { at, why } }
            if *at == format!("transaction {tx}") && why.contains("versioned hash")),
        "{err}"
    );
    assert_eq!(reads.load(Ordering::SeqCst), 1, "the transaction read once");
}
