//! `l2x settle rebuild` through the real binary, on anvil and on the embedded chain: a
//! scenario with open positions, funding ticks and a liquidation is settled batch by batch,
//! and the chain alone rebuilds the root the submitter committed and, for every account,
//! the leaf and value that `settle prove` gives from the batch files. Damaged input exits 1
//! naming the batch: an embedded chain's batch data file flipped or removed (an error, on
//! stderr), a batch the contract accepted whose leaves do not give its root (a
//! disagreement, on stdout), and a node that answers something other than the commit (a
//! lying node in front of anvil: an input whose data no longer hashes to `h.dataHash` — no
//! contract accepts such a commit, so only a node can answer it — and a log pointing at a
//! transaction that is not a commit).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use alloy::primitives::B256;
use l2x_settlement::batch::Batch;
use l2x_settlement::chain::{Chain, RpcChain};
use l2x_settlement::devnode::{Anvil, DEV_KEYS, Liar};
use l2x_settlement::embedded::{EmbeddedChain, FixedClock};
use l2x_settlement::epoch::Epoch;
use l2x_settlement::leaf::{AccountLeaf, Position};
use l2x_settlement::market::Market;
use l2x_settlement::tree::Tree;
use serde_json::{Value, json};

const KEY_ENV: &str = "L2X_TEST_SUBMITTER_KEY";

fn l2x(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l2x")).args(args).env(KEY_ENV, DEV_KEYS[0]).stdin(Stdio::null()).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// What the scenario adds to `funding.jsonl` (positions and three funding ticks): account 4
/// buys with little collateral, the mark drops and the insurance fund takes its position
/// over; one more funding tick and a mark.
const LIQUIDATION: &str = r#"{"cmd":"deposit","account":4,"amount":"1000","ts":10800001000000}
{"cmd":"deposit","account":"insurance","amount":"10000","ts":10800002000000}
{"cmd":"new","account":2,"cid":7,"symbol":"BTC-PERP","side":"sell","price":"50000","qty":"0.4","ts":10800003000000}
{"cmd":"new","account":4,"cid":1,"symbol":"BTC-PERP","side":"buy","price":"50000","qty":"0.4","tif":"ioc","ts":10800004000000}
{"cmd":"new","account":2,"cid":8,"symbol":"BTC-PERP","side":"buy","price":"48000","qty":"0.5","ts":10800005000000}
{"cmd":"oracle","symbol":"BTC-PERP","price":"48900","ts":10800006000000}
{"cmd":"funding","symbol":"BTC-PERP","ts":14400000000000}
{"cmd":"oracle","symbol":"BTC-PERP","price":"49500","ts":14400001000000}
"#;

/// The scenario's journal in `dir/journal`, settled on `chain` in epochs of 1 ms; returns
/// the batch directory and the last root the submitter committed.
fn settle(dir: &Path, chain: &[&str]) -> (PathBuf, String) {
    settle_as(dir, chain, &[])
}

/// As [`settle`], `extra` added to `settle submit` (`--da blobs`).
fn settle_as(dir: &Path, chain: &[&str], extra: &[&str]) -> (PathBuf, String) {
    let scenario = dir.join("scenario.jsonl");
    let funding: String =
        crate::scenario_1ms_apart("funding.jsonl").lines().take(18).map(|l| format!("{l}\n")).collect();
    std::fs::write(&scenario, format!("{funding}{LIQUIDATION}")).unwrap();
    let (journal, batches) = (dir.join("journal"), dir.join("batches"));
    let run = l2x(&["match", "--input", s(&scenario), "--journal", s(&journal)]);
    assert!(run.status.success(), "{}", text(&run));
    let events = String::from_utf8_lossy(&run.stdout);
    assert!(events.contains(r#""ev":"takeover""#) && events.contains(r#""ev":"funding""#), "{events}");
    let submit = ["settle", "submit", "--journal", s(&journal), "--batches", s(&batches), "--epoch-ms", "1"];
    let submitted = l2x(&[&submit[..], chain, &["--key-env", KEY_ENV], extra].concat());
    assert!(submitted.status.success(), "{}", text(&submitted));
    let root = text(&submitted).trim().rsplit(' ').next().unwrap().to_string();
    (batches, root)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn rebuild(chain: &[&str]) -> Output {
    l2x(&[&["settle", "rebuild"][..], chain].concat())
}

/// `settle rebuild` agrees with the chain, and every account's leaf and value is what
/// `settle prove` gives from the batch files.
fn rebuilds_what_prove_gives(chain: &[&str], batches: &Path, root: &str) -> Value {
    let out = rebuild(chain);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&r["agrees"], &r["disagreement"]), (&json!(true), &Value::Null));
    assert_eq!((r["root"].as_str(), r["chain"]["root"].as_str()), (Some(root), Some(root)));
    let last = r["chain"]["last_batch"].as_u64().unwrap();
    assert!(last >= 5, "{last} batches");
    assert_eq!((r["batch"].as_u64(), r["batches"].as_array().unwrap().len() as u64), (Some(last), last));
    let accounts = r["accounts"].as_array().unwrap();
    let mut collateral = 0i128;
    for a in accounts {
        let id = a["account"].as_u64().unwrap().to_string();
        let proof = l2x(&["settle", "prove", "--batches", s(batches), "--account", &id]);
        assert!(proof.status.success(), "{}", text(&proof));
        let p: Value = serde_json::from_slice(&proof.stdout).unwrap();
        assert_eq!(p["root"], r["root"]);
        for key in ["collateral", "positions", "hash", "funding_owed", "equity"] {
            assert_eq!(a[key], p["leaf"][key], "account {id}: {key}");
        }
        collateral += i128::from(a["collateral"].as_i64().unwrap());
    }
    assert_eq!(
        r["markets"],
        serde_json::from_slice::<Value>(&l2x(&["settle", "prove", "--batches", s(batches), "--account", "1"]).stdout)
            .unwrap()["markets"]
    );
    let holders: Vec<&str> = accounts.iter().map(|a| a["holder"].as_str().unwrap()).collect();
    assert!(holders.contains(&"insurance") && holders.contains(&"fees"), "{holders:?}");
    let owing = accounts.iter().filter(|a| a["funding_owed"] != json!("0")).count();
    assert!(owing > 0 && accounts.iter().any(|a| !a["positions"].as_array().unwrap().is_empty()));
    assert_eq!(r["totals"]["leaves"], json!(accounts.len()));
    assert_eq!(r["totals"]["collateral"], json!(collateral.to_string()));
    r
}

#[test]
fn rebuild_from_the_embedded_chain_alone_and_name_a_damaged_batch_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let chain_dir = dir.path().join("chain");
    let chain = ["--chain-dir", s(&chain_dir)];
    let (batches, root) = settle(dir.path(), &chain);
    let r = rebuilds_what_prove_gives(&chain, &batches, &root);
    assert!(r["batches"].as_array().unwrap().iter().all(|b| b["carrier"] == "calldata" && b["transaction"].is_null()));

    // The store of what batch 3 posted: a byte flipped, then the file gone. Each is an error
    // naming the batch and the file, nothing on stdout.
    let file = chain_dir.join("batches").join(format!("{:020}", 3));
    let good = std::fs::read(&file).unwrap();
    let mut bytes = good.clone();
    let at = bytes.len() - 1 - bytes.iter().rev().position(|&b| b != 0).unwrap();
    bytes[at] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let damaged = rebuild(&chain);
    assert_eq!(damaged.status.code(), Some(1), "{}", text(&damaged));
    assert!(damaged.stdout.is_empty());
    let said = String::from_utf8_lossy(&damaged.stderr);
    assert!(said.contains("batch 3: what it posted cannot be read back") && said.contains(s(&file)), "{said}");
    assert!(said.contains("damaged: its data hashes to"), "{said}");
    std::fs::remove_file(&file).unwrap();
    let missing = rebuild(&chain);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("missing"), "{}", text(&missing));
    std::fs::write(&file, &good).unwrap();
    assert_eq!(rebuild(&chain).status.code(), Some(0));
}

/// `settle submit --da blobs`, then `settle rebuild` from the chain alone: on the embedded
/// chain (its batch store's inputs and hashes files, its blob store) the same accounts as
/// the same journal settled in calldata, each batch's carrier `blobs` with its versioned
/// hashes; a hashes file or a blob file damaged or gone exits 1 naming the file. On anvil
/// the same, the blobs read back by their transaction.
#[test]
fn rebuild_after_submit_with_the_data_in_blobs_on_both_chains_and_name_damaged_blob_files() {
    let dir = tempfile::tempdir().unwrap();
    let (calldata_dir, blobs_dir) = (dir.path().join("c"), dir.path().join("b"));
    let (calldata_chain, blobs_chain) = (calldata_dir.join("chain"), blobs_dir.join("chain"));
    std::fs::create_dir_all(&calldata_dir).unwrap();
    std::fs::create_dir_all(&blobs_dir).unwrap();
    let (c_batches, c_root) = settle(&calldata_dir, &["--chain-dir", s(&calldata_chain)]);
    let chain = ["--chain-dir", s(&blobs_chain)];
    let (batches, root) = settle_as(&blobs_dir, &chain, &["--da", "blobs"]);
    assert_eq!(root, c_root, "the same roots whatever carries the data");
    let by_calldata = rebuilds_what_prove_gives(&["--chain-dir", s(&calldata_chain)], &c_batches, &c_root);
    let r = rebuilds_what_prove_gives(&chain, &batches, &root);
    assert_eq!(r["accounts"], by_calldata["accounts"], "the same leaves and values");
    assert_eq!(r["markets"], by_calldata["markets"]);
    for b in r["batches"].as_array().unwrap() {
        assert_eq!((&b["carrier"], &b["transaction"]), (&json!("blobs"), &Value::Null), "{b}");
        let hashes = b["versioned_hashes"].as_array().unwrap();
        assert!(!hashes.is_empty() && hashes.iter().all(|h| h.as_str().is_some_and(|h| h.len() == 66)), "{b}");
    }
    assert!(by_calldata["batches"].as_array().unwrap().iter().all(|b| b["versioned_hashes"].is_null()));

    // Batch 3's hashes file gone; one of its blobs flipped: exit 1 naming the file.
    let hashes_file = blobs_chain.join("batches").join(format!("{:020}.blobs", 3));
    let good = std::fs::read(&hashes_file).unwrap();
    std::fs::remove_file(&hashes_file).unwrap();
    let missing = rebuild(&chain);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(said.contains("batch 3: ") && said.contains(s(&hashes_file)) && said.contains("missing"), "{said}");
    std::fs::write(&hashes_file, &good).unwrap();
    let hash = r["batches"][2]["versioned_hashes"][0].as_str().unwrap().trim_start_matches("0x").to_string();
    let blob = blobs_chain.join("blobs").join(format!("{hash}.blob"));
    let bytes = std::fs::read(&blob).unwrap();
    let mut flipped = bytes.clone();
    flipped[40] ^= 1;
    std::fs::write(&blob, &flipped).unwrap();
    let damaged = rebuild(&chain);
    assert_eq!(damaged.status.code(), Some(1), "{}", text(&damaged));
    assert!(damaged.stdout.is_empty());
    assert!(String::from_utf8_lossy(&damaged.stderr).contains(s(&blob)), "{}", text(&damaged));
    std::fs::write(&blob, &bytes).unwrap();
    assert_eq!(rebuild(&chain).status.code(), Some(0));

    let node = Anvil::spawn().unwrap();
    let url = node.url().to_string();
    let deployed = l2x(&["settle", "deploy", "--rpc-url", &url, "--key-env", KEY_ENV, "--test-token"]);
    assert!(deployed.status.success(), "{}", text(&deployed));
    let contract = String::from_utf8(deployed.stdout).unwrap().lines().next().unwrap().to_string();
    let on_node = ["--rpc-url", url.as_str(), "--contract", contract.as_str()];
    let node_dir = dir.path().join("n");
    std::fs::create_dir_all(&node_dir).unwrap();
    let (batches, root) = settle_as(&node_dir, &on_node, &["--da", "blobs"]);
    let r = rebuilds_what_prove_gives(&on_node, &batches, &root);
    assert_eq!(r["accounts"], by_calldata["accounts"]);
    for b in r["batches"].as_array().unwrap() {
        assert_eq!(b["carrier"], json!("blobs"), "{b}");
        assert!(b["transaction"].as_str().is_some_and(|t| t.len() == 66) && b["versioned_hashes"].is_array(), "{b}");
    }
}

#[test]
fn rebuild_from_a_node_alone_and_name_a_batch_that_does_not_rebuild() {
    let node = Anvil::spawn().unwrap();
    let url = node.url().to_string();
    let deployed = l2x(&["settle", "deploy", "--rpc-url", &url, "--key-env", KEY_ENV, "--test-token"]);
    assert!(deployed.status.success(), "{}", text(&deployed));
    let contract = String::from_utf8(deployed.stdout).unwrap().lines().next().unwrap().to_string();
    let chain = ["--rpc-url", url.as_str(), "--contract", contract.as_str()];
    let dir = tempfile::tempdir().unwrap();
    let (batches, root) = settle(dir.path(), &chain);
    let r = rebuilds_what_prove_gives(&chain, &batches, &root);
    let last = r["batch"].as_u64().unwrap();
    assert!(r["batches"].as_array().unwrap().iter().all(|b| b["transaction"].as_str().is_some_and(|t| t.len() == 66)));

    lying_nodes(&node, &contract, last);

    // A batch whose leaves do not give its root: the contract takes the submitter's word
    // for a root, so it is committed (by the submitter's key, bypassing the submitter's own
    // checks) — and found.
    let address = contract.parse().unwrap();
    let mut submitter = RpcChain::connect(&url, DEV_KEYS[0], address, 1).unwrap();
    let prev = l2x_settlement::batch::Batch::read(&batches.join(Batch::file_name(last))).unwrap();
    let forged = B256::repeat_byte(7);
    let h = prev.header;
    let next = Epoch {
        index: last + 1,
        first_seq: h.last_seq + 1,
        last_seq: h.last_seq + 1,
        ts: h.epoch_ts + 1,
        commands: 1,
        fills: 0,
        prev_root: h.new_root,
        root: forged,
        markets: prev.markets().unwrap(),
        changes: Vec::new(),
        queue_count: h.queue_count,
        queue_hash: h.queue_hash,
        withdrawals: Vec::new(),
        rejected: Vec::new(),
    };
    submitter.commit(&Batch::of(&next)).unwrap();
    let out = rebuild(&chain);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = format!("batch {}: its leaves give root {root}, h.newRoot is {forged}", last + 1);
    assert_eq!((&r["agrees"], r["disagreement"].as_str()), (&json!(false), Some(expected.as_str())));
    assert_eq!((r["batch"].as_u64(), r["root"].as_str()), (Some(last), Some(root.as_str())), "the state before it");
    assert_eq!(r["chain"]["root"], json!(forged.to_string()));
}

/// Through a node that lies about batch 2: its commit's input altered (a data byte), and
/// its log pointing at the token's deployment.
fn lying_nodes(node: &Anvil, contract: &str, last: u64) {
    let tx = {
        let r: Value =
            serde_json::from_slice(&rebuild(&["--rpc-url", node.url(), "--contract", contract]).stdout).unwrap();
        r["batches"][1]["transaction"].as_str().unwrap().to_string()
    };
    let altered = Liar::spawn(node.url(), move |method, params, result| {
        if method == "eth_getTransactionByHash" && params[0].as_str() == Some(tx.as_str()) {
            let mut input = alloy::hex::decode(result["input"].as_str().unwrap()).unwrap();
            let at = input.len() - 1 - input.iter().rev().position(|&b| b != 0).unwrap();
            input[at] ^= 1;
            result["input"] = json!(alloy::hex::encode_prefixed(&input));
        }
    })
    .unwrap();
    let out = rebuild(&["--rpc-url", altered.url(), "--contract", contract]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["disagreement"].as_str().unwrap().starts_with("batch 2: h.dataHash is "), "{r}");
    assert_eq!((r["batch"].as_u64(), r["chain"]["last_batch"].as_u64()), (Some(1), Some(last)));

    let creation = node.request("eth_getBlockByNumber", json!(["0x1", false])).unwrap()["transactions"][0].clone();
    let pointing = Liar::spawn(node.url(), move |method, _params, result| {
        let batch_2 = json!(B256::with_last_byte(2).to_string());
        if method == "eth_getLogs" {
            for log in result.as_array_mut().into_iter().flatten().filter(|l| l["topics"][1] == batch_2) {
                log["transactionHash"] = creation.clone();
            }
        }
    })
    .unwrap();
    let out = rebuild(&["--rpc-url", pointing.url(), "--contract", contract]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(out.stdout.is_empty());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("batch 2: what it posted cannot be read back: transaction 0x"), "{said}");
    assert!(said.contains("not a commitBatch call to the contract: a contract creation"), "{said}");
}

/// An embedded chain in `dir` holding one batch whose leaves are `leaves` (instrument 0 at
/// mark 1, one micro-USDC a tick), committed by the submitter's key; the contract never
/// reads leaves, so it takes any.
fn one_batch_of(dir: &Path, leaves: Vec<AccountLeaf>) -> PathBuf {
    let chain_dir = dir.join("chain");
    let mut chain = EmbeddedChain::open_with_clock(&chain_dir, FixedClock::TESTS).unwrap();
    let mut tree = Tree::new();
    let root = tree.update(leaves.iter().map(|l| (l.account, Some(l.hash()))));
    let epoch = Epoch {
        index: 1,
        first_seq: 1,
        last_seq: 1,
        ts: 1,
        commands: 1,
        fills: 0,
        prev_root: B256::ZERO,
        root,
        markets: vec![Market { instrument: 0, mark: 1, fundingIndex: 0, tickValue: 1 }],
        changes: leaves,
        queue_count: 0,
        queue_hash: B256::ZERO,
        withdrawals: Vec::new(),
        rejected: Vec::new(),
    };
    chain.commit(&Batch::of(&epoch)).unwrap();
    chain_dir
}

/// A leaf of `account` with `collateral` and, if `cost` is given, one lot of instrument 0
/// at that cost.
fn leaf(account: u64, collateral: i64, cost: Option<i128>) -> AccountLeaf {
    let positions = cost.map(|cost| Position { instrument: 0, size: 1, cost, fundingIndex: 0 });
    AccountLeaf { account, collateral, positions: positions.into_iter().collect() }
}

/// A leaf whose equity does not fit in 128 bits (the submitter's key committed it): that
/// leaf's figures are `null` with the reason, every other leaf is valued, and the rebuild
/// agrees (exit 0) — one hostile leaf does not keep every user from theirs.
#[test]
fn a_leaf_whose_value_overflows_is_null_with_the_reason_and_the_rest_are_valued() {
    let dir = tempfile::tempdir().unwrap();
    let chain_dir = one_batch_of(dir.path(), vec![leaf(1, 100, None), leaf(2, 0, Some(i128::MIN)), leaf(3, 50, None)]);
    let out = rebuild(&["--chain-dir", s(&chain_dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let accounts = r["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 3);
    assert_eq!((&accounts[0]["equity"], &accounts[0]["unvalued"]), (&json!("100"), &Value::Null));
    assert_eq!((&accounts[2]["equity"], &accounts[2]["funding_owed"]), (&json!("50"), &json!("0")));
    let bad = &accounts[1];
    assert_eq!((&bad["equity"], &bad["funding_owed"]), (&Value::Null, &Value::Null));
    let why = bad["unvalued"].as_str().unwrap();
    assert!(why.starts_with("account 2: the position in instrument 0: ") && why.ends_with("does not fit in 128 bits"));
    let t = &r["totals"];
    assert_eq!((&t["leaves"], &t["collateral"], &t["funding_owed"]), (&json!(3), &json!("150"), &Value::Null));
    assert_eq!((&t["equity"], &t["unvalued"], &t["overflow"]), (&Value::Null, &json!(1), &json!([])));
    assert_eq!(
        r["summary"],
        json!(format!(
            "batch 1 read from the chain and checked; the rebuilt root is the chain's last root {}",
            r["root"].as_str().unwrap()
        ))
    );

    // Every leaf's equity fits, their sum does not: the total is null and named.
    let dir = tempfile::tempdir().unwrap();
    let half = -(1i128 << 126);
    let chain_dir = one_batch_of(dir.path(), vec![leaf(1, 0, Some(half)), leaf(2, 0, Some(half))]);
    let out = rebuild(&["--chain-dir", s(&chain_dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["accounts"][1]["equity"], json!(((1i128 << 126) + 1).to_string()));
    let t = &r["totals"];
    assert_eq!((&t["equity"], &t["funding_owed"]), (&Value::Null, &json!("0")));
    assert_eq!((&t["unvalued"], &t["overflow"]), (&json!(0), &json!(["equity"])));
}

/// A chain with no batch: the JSON the docs promise (no account, no batch, agrees), exit 0.
#[test]
fn an_empty_chain_rebuilds_to_no_account_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let chain_dir = dir.path().join("chain");
    drop(EmbeddedChain::open_with_clock(&chain_dir, FixedClock::TESTS).unwrap());
    let out = rebuild(&["--chain-dir", s(&chain_dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let zero = B256::ZERO.to_string();
    assert_eq!((&r["accounts"], &r["batches"], &r["markets"]), (&json!([]), &json!([]), &json!([])));
    assert_eq!((&r["agrees"], &r["disagreement"], &r["batch"]), (&json!(true), &Value::Null, &json!(0)));
    assert_eq!(r["chain"], json!({ "last_batch": 0, "root": zero }));
    assert_eq!(r["totals"]["leaves"], json!(0));
    assert_eq!(r["summary"], json!("the chain has no committed batch: nothing to rebuild"));
}
