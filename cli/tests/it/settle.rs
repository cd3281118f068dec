//! `l2x settle` through the real binary against a real node (anvil from
//! `settlement/contracts`): a scenario's journal is settled, verified against its batch
//! files and the chain, and tampering with either is reported with the batch that differs.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Anvil's first development key (public).
const KEY: &str = l2x_settlement::devnode::DEV_KEYS[0];

/// The variable the tests hand the submitter's key in (`--key-env`).
const KEY_ENV: &str = "L2X_TEST_SUBMITTER_KEY";

/// `l2x ARGS` with the submitter's key in [`KEY_ENV`] (and nowhere else).
fn l2x(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l2x")).args(args).env(KEY_ENV, KEY).stdin(Stdio::null()).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn settle_on_a_node_then_verify_and_catch_tampering() {
    let node = l2x_settlement::devnode::Anvil::spawn().unwrap();
    let url = node.url().to_string();
    let deployed = l2x(&["settle", "deploy", "--rpc-url", &url, "--key-env", KEY_ENV, "--test-token"]);
    assert!(deployed.status.success(), "{}", text(&deployed));
    let printed = String::from_utf8(deployed.stdout).unwrap();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "the contract's address, then the test token's: {printed}");
    assert!(lines[1].starts_with("token 0x"), "{printed}");
    let contract = lines[0].to_string();
    // Over a token given by address (here the one just deployed): the contract's address
    // alone; a token that is not an ERC-20 with 6 decimals (the contract itself) is refused.
    let token = lines[1].trim_start_matches("token ");
    let over = l2x(&["settle", "deploy", "--rpc-url", &url, "--key-env", KEY_ENV, "--token", token]);
    assert!(over.status.success(), "{}", text(&over));
    assert_eq!(String::from_utf8(over.stdout).unwrap().lines().count(), 1);
    let not_a_token = l2x(&["settle", "deploy", "--rpc-url", &url, "--key-env", KEY_ENV, "--token", &contract]);
    assert_eq!(not_a_token.status.code(), Some(1), "{}", text(&not_a_token));
    // The key comes from the environment only: a variable that is not set is named.
    let no_key = l2x(&["settle", "deploy", "--rpc-url", &url, "--key-env", "L2X_TEST_UNSET_KEY", "--test-token"]);
    assert_eq!(no_key.status.code(), Some(1), "{}", text(&no_key));
    assert!(
        text(&no_key).contains("L2X_TEST_UNSET_KEY (the submitter's private key, hex) is not set"),
        "{}",
        text(&no_key)
    );
    let on_the_line = l2x(&["settle", "deploy", "--rpc-url", &url, "--key", KEY, "--test-token"]);
    assert_eq!(on_the_line.status.code(), Some(2), "no flag takes a key itself: {}", text(&on_the_line));
    settle_then_verify_and_catch_tampering(&["--rpc-url", &url, "--contract", &contract], &["--key-env", KEY_ENV]);
}

#[test]
fn settle_on_the_embedded_chain_then_verify_and_catch_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    settle_then_verify_and_catch_tampering(&["--chain-dir", chain.to_str().unwrap()], &[]);
}

/// `settle submit --da blobs` on anvil and on the embedded chain: the same flow, and
/// `verify`, `status` and `prove` accept the blob commitments; `--da` takes nothing else.
#[test]
fn settle_with_the_data_in_blobs_then_verify_and_catch_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain");
    settle_then_verify_and_catch_tampering(&["--chain-dir", chain.to_str().unwrap()], &["--da", "blobs"]);
    let blobs = std::fs::read_dir(chain.join("blobs")).unwrap().count();
    assert!(blobs >= 5, "one blob per batch in the embedded blob store: {blobs}");

    let node = l2x_settlement::devnode::Anvil::spawn().unwrap();
    let url = node.url().to_string();
    let deployed = l2x(&["settle", "deploy", "--rpc-url", &url, "--key-env", KEY_ENV, "--test-token"]);
    assert!(deployed.status.success(), "{}", text(&deployed));
    let contract = String::from_utf8(deployed.stdout).unwrap().lines().next().unwrap().to_string();
    let on_node = ["--rpc-url", url.as_str(), "--contract", contract.as_str()];
    settle_then_verify_and_catch_tampering(&on_node, &["--key-env", KEY_ENV, "--da", "blobs"]);

    let bogus = l2x(&["settle", "submit", "--journal", "j", "--batches", "b", "--chain-dir", "c", "--da", "bogus"]);
    assert_eq!(bogus.status.code(), Some(2), "{}", text(&bogus));
    assert!(text(&bogus).contains("\"bogus\" is not a data mode: \"calldata\" or \"blobs\""), "{}", text(&bogus));
}

/// A scenario's journal settled with `l2x settle submit` on `chain`, then verified, proved,
/// and checked against a missing and a tampered batch file.
fn settle_then_verify_and_catch_tampering(chain: &[&str], submit_extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let journal: PathBuf = dir.path().join("journal");
    let batches: PathBuf = dir.path().join("batches");
    // Its commands 1 ms apart: epochs of 1 ms close every second command.
    let timed = dir.path().join("timed.jsonl");
    let lines = crate::scenario_1ms_apart("liquidation_insurance.jsonl");
    std::fs::write(&timed, lines).unwrap();
    let run = l2x(&["match", "--input", timed.to_str().unwrap(), "--journal", journal.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run));
    let (j, b) = (journal.to_str().unwrap(), batches.to_str().unwrap());

    // Five epochs of two commands (--epoch-ms 1): many batches from a short scenario.
    let submit =
        l2x(&[&["settle", "submit", "--journal", j, "--batches", b, "--epoch-ms", "1"], chain, submit_extra].concat());
    assert!(submit.status.success(), "{}", text(&submit));
    assert!(text(&submit).contains("the chain had 0"), "{}", text(&submit));

    let verify = |extra: &[&str]| l2x(&[&["settle", "verify", "--journal", j][..], chain, extra].concat());
    let ok = verify(&["--batches", b, "--epoch-ms", "1"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("batch files match") && text(&ok).contains("committed roots match"), "{}", text(&ok));

    // Status: everything local is on chain.
    let status = l2x(&[&["settle", "status", "--batches", b][..], chain].concat());
    assert!(status.status.success() && text(&status).contains("lag: 0 batches"), "{}", text(&status));
    // A proof from the batch files alone, checked by the contract, for an account with a
    // position; and an absent account.
    let proof = l2x(&[&["settle", "prove", "--batches", b, "--account", "2"][..], chain].concat());
    assert!(proof.status.success(), "{}", text(&proof));
    let json: serde_json::Value = serde_json::from_slice(&proof.stdout).unwrap();
    assert_eq!(json["verified_by_contract"], serde_json::json!(true), "{json}");
    assert!(json["leaf"]["positions"].as_array().is_some());
    let absent = l2x(&["settle", "prove", "--batches", b, "--account", "999", "--batch", "2"]);
    let json: serde_json::Value = serde_json::from_slice(&absent.stdout).unwrap();
    assert_eq!((json["leaf"].clone(), json["verified"].clone()), (serde_json::Value::Null, serde_json::json!(true)));

    // Other epochs than the submitter's (the scenario never spans a minute: none close):
    // the chain's first batch is not the journal's.
    let other = verify(&["--epoch-ms", "60000"]);
    assert!(!other.status.success());
    assert!(text(&other).contains("batch 1: on chain, but the journal gives only 0 batches"), "{}", text(&other));

    // A batch file missing in the middle: named as missing.
    let gappy = dir.path().join("gappy");
    std::fs::create_dir_all(&gappy).unwrap();
    for entry in std::fs::read_dir(&batches).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), gappy.join(entry.file_name())).unwrap();
    }
    std::fs::remove_file(gappy.join("batch-00000000000000000002.l2xb")).unwrap();
    let missing = verify(&["--batches", gappy.to_str().unwrap(), "--epoch-ms", "1"]);
    assert!(!missing.status.success());
    assert!(text(&missing).contains("batch 2 is missing"), "{}", text(&missing));

    // A tampered batch file: refused, naming the batch.
    let file = batches.join("batch-00000000000000000003.l2xb");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let bad = verify(&["--batches", b, "--epoch-ms", "1"]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("batch-00000000000000000003.l2xb"), "{}", text(&bad));
}

/// `l2x serve` with `settlement.chain = "rpc"`: trading over TCP while the submitter thread commits every
/// closed epoch to the node; an auditor's `settle verify` agrees with the chain.
#[test]
fn serve_settles_on_a_node_while_it_trades() {
    let node = l2x_settlement::devnode::Anvil::spawn().unwrap();
    let url = node.url().to_string();
    let deployed = l2x(&["settle", "deploy", "--rpc-url", &url, "--key-env", KEY_ENV, "--test-token"]);
    let contract = String::from_utf8(deployed.stdout).unwrap().lines().next().unwrap().to_string();
    // With a vault on a node the config funds nothing: account 1's owner deposits on L1,
    // and the new node submits it from the queue before its start returns.
    let vault = contract.parse().unwrap();
    node.deposit(l2x_settlement::devnode::DEV_KEYS[1], vault, 1, 1_000_000_000_000).unwrap();
    let config = format!(
        "[accounts]\ndeposit_usdc = 0\n[settlement]\nchain = \"rpc\"\n[settlement.rpc]\nurl = \"{url}\"\n\
         contract = \"{contract}\"\nkey_env = \"L2X_TEST_SUBMITTER_KEY\"\npoll_ms = 50\n"
    );
    serve_settles_while_it_trades(&config, &[("L2X_TEST_SUBMITTER_KEY", KEY)], |_| {
        ["--rpc-url", &url, "--contract", &contract].iter().map(ToString::to_string).collect()
    });
}

/// `l2x serve` settles on the embedded chain in DATA_DIR/chain by default; an auditor reads
/// it while the node runs.
#[test]
fn serve_settles_on_the_embedded_chain_by_default() {
    serve_settles_while_it_trades("", &[], |data| vec!["--chain-dir".into(), format!("{data}/chain")]);
}

/// Starts `l2x serve` with a config file of `settlement` (epochs of 1 ms, a pass every
/// 20 ms) and environment `env`, trades over TCP, waits for the submitter to settle every
/// epoch, and verifies the journal against the chain `verify_chain(data_dir)` names.
fn serve_settles_while_it_trades(settlement: &str, env: &[(&str, &str)], verify_chain: impl Fn(&str) -> Vec<String>) {
    use std::io::{BufRead, BufReader};

    use l2x_protocol::client::{Client, Options};
    use l2x_protocol::codec::{ClientMsg, Report, ServerMsg, WireOrder};
    use l2x_protocol::logon::Key;
    use l2x_types::{AccountId, ClientOrderId, InstrumentId, Price, Qty, Side};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let data = data.to_str().unwrap();
    let config = dir.path().join("l2x.toml");
    let (accounts, settlement) = settlement.split_at(settlement.find("[settlement]").unwrap_or(0));
    let settlement = settlement.replace("[settlement]\n", "");
    std::fs::write(&config, format!("{accounts}[settlement]\nepoch_ms = 1\nevery_ms = 20\n{settlement}")).unwrap();
    let mut serve = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_l2x"))
            .args(["serve", "--config", config.to_str().unwrap(), "--data-dir", data])
            .args(["--order-entry", "127.0.0.1:0", "--market-data", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(serve.0.stdout.take().unwrap()).lines();
    let mut next_line = || lines.next().expect("l2x serve ended").unwrap();
    let order_entry = loop {
        if let Some(a) = next_line().strip_prefix("order entry ") {
            break a.trim().parse::<std::net::SocketAddr>().unwrap();
        }
    };
    // The node prints its submitter's passes from the line after the metrics address on
    // (passes before it, such as an idle tick's commit of the set-up on a slow machine,
    // come first there: none is lost).
    while !next_line().starts_with("metrics http://") {}
    let options = Options { heartbeat_ms: 60_000, ..Options::default() };
    let mut client = Client::connect(order_entry, &Key::new(1, AccountId(1), [1; 32]), options).unwrap();
    let order = WireOrder::limit(ClientOrderId(1), InstrumentId(0), Side::Buy, Price(99_000), Qty(1_000));
    client.send(&ClientMsg::NewOrder(order)).unwrap();
    assert!(matches!(client.recv().unwrap(), ServerMsg::Report { report: Report::Accepted { .. }, .. }));
    // A new journal: 2 listings, 2 oracle prices, the binding and the deposits, then the order. The set-up's
    // epoch(s) close at the first command 1 ms (sequenced time) after them: the order, or —
    // when a busy machine sequenced the set-up and the order in one run, with one timestamp
    // — the node's first idle tick. How many depends on how the set-up's runs fell: the
    // journal says, once one has closed; the submitter says on its output when the chain has
    // them (the chain had B, committed C: B + C on chain). After the set-up nothing changes a
    // leaf or the market state (the resting order does not, nor do idle ticks).
    let mut seen = 0;
    let mut on_chain = |at_least: u64| {
        while seen < at_least {
            let line = next_line();
            assert!(!line.starts_with("settlement:"), "{line}");
            let Some(rest) = line.strip_prefix("settled: ") else { continue };
            let number =
                |after: &str| rest.split(after).nth(1).and_then(|r| r.split([' ', ')']).next()?.parse::<u64>().ok());
            seen = number("committed ").unwrap() + number("the chain had ").unwrap();
        }
    };
    let chain = verify_chain(data);
    let chain: Vec<&str> = chain.iter().map(String::as_str).collect();
    let verify = || l2x(&[&["settle", "verify", "--journal", data, "--epoch-ms", "1"][..], &chain].concat());
    let closed_by = |v: &std::process::Output| -> u64 {
        text(v).split(" epochs recomputed").next().and_then(|n| n.trim().parse().ok()).unwrap()
    };
    // Until the journal's closed epochs are all on chain and no more close (the last one
    // closes at most an idle tick or two after the set-up).
    let mut closed = 1;
    let verified = loop {
        on_chain(closed);
        let v = verify();
        let now = closed_by(&v);
        if now <= closed {
            break v;
        }
        closed = now;
    };
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).contains(&format!("{closed} committed roots match")), "{}", text(&verified));
}

/// A child process killed when dropped (also when a test fails).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
