//! `l2x settle deposit | force-withdraw | withdraw-claim | freeze | refund-queued | escape |
//! queue | mint-test-usd | advance-time` through the real binary, on anvil and on the
//! embedded chain, the same flow for both (docs/OPERATIONS.md, "For account owners"):
//! owners deposit real tokens, the queue shows the entries exactly, a journal that takes
//! them from the queue is settled, refusals come back with the contract's reason, the vault
//! is frozen after the deadline and not before, and the owners escape from the batch files
//! with exactly the equity the docs' rule gives, to the token base unit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use alloy::primitives::{Address, U256};
use l2x_settlement::chain::abi::{L2xSettlement as Vault, L2xTestUSD as Token};
use l2x_settlement::chain::{L1User, address_of};
use l2x_settlement::devnode::{Anvil, DEV_KEYS};
use l2x_settlement::embedded::EmbeddedChain;
use serde_json::{Value, json};

/// The submitter (anvil's first development key), and the owners Alice and Bob.
const SUBMITTER: &str = DEV_KEYS[0];
const ALICE: &str = DEV_KEYS[1];
const BOB: &str = DEV_KEYS[2];
/// Carol: anvil's fourth development key (public, funded with ether on every anvil).
const CAROL: &str = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
/// A week and a second: past the deadline of `Config::local` and `settle deploy`'s default.
const PAST_DEADLINE: u64 = 7 * 24 * 3600 + 1;
const USD: u64 = 1_000_000;

/// The chain a test runs the flow on.
enum Chain {
    Node { node: Anvil, contract: String },
    Embedded { dir: PathBuf },
}

impl Chain {
    fn node() -> Chain {
        let node = Anvil::spawn().unwrap();
        let deployed = run(&["settle", "deploy", "--rpc-url", node.url(), "--test-token"], Some(SUBMITTER));
        assert!(deployed.status.success(), "{}", text(&deployed));
        let contract = String::from_utf8(deployed.stdout).unwrap().lines().next().unwrap().to_string();
        Chain::Node { node, contract }
    }

    fn args(&self) -> Vec<String> {
        match self {
            Chain::Node { node, contract } => {
                vec!["--rpc-url".into(), node.url().into(), "--contract".into(), contract.clone()]
            }
            Chain::Embedded { dir } => vec!["--chain-dir".into(), dir.to_str().unwrap().into()],
        }
    }

    /// Moves the chain's time past the deadline: anvil's own methods, or `settle advance-time`.
    fn pass_the_deadline(&self) {
        match self {
            Chain::Node { node, .. } => {
                node.request("evm_increaseTime", json!([PAST_DEADLINE])).unwrap();
                node.request("evm_mine", json!([])).unwrap();
            }
            Chain::Embedded { dir } => {
                let seconds = PAST_DEADLINE.to_string();
                let moved =
                    l2x(&["settle", "advance-time", "--chain-dir", dir.to_str().unwrap(), "--seconds", &seconds]);
                assert!(text(&moved).contains(&format!("(+{PAST_DEADLINE} s)")), "{}", text(&moved));
            }
        }
    }

    /// The chain read through the library, to check what the commands did.
    fn reader(&self) -> L1User {
        match self {
            Chain::Node { node, contract } => L1User::rpc(node.url(), contract.parse().unwrap(), None).unwrap(),
            Chain::Embedded { dir } => L1User::embedded(EmbeddedChain::read_only(dir).unwrap(), None),
        }
    }

    /// `holder`'s balance of the vault's token, base units.
    fn balance(&self, holder: Address) -> U256 {
        let reader = self.reader();
        let token = reader.view(reader.vault(), &Vault::tokenCall {}).unwrap();
        reader.view(token, &Token::balanceOfCall { holder }).unwrap()
    }

    /// What `owner` allowed the vault to take of its tokens, base units.
    fn allowance(&self, owner: Address) -> U256 {
        let reader = self.reader();
        let (vault, token) = (reader.vault(), reader.view(reader.vault(), &Vault::tokenCall {}).unwrap());
        reader.view(token, &Token::allowanceCall { owner, spender: vault }).unwrap()
    }

    /// The vault's own balance of its token, base units.
    fn vault_balance(&self) -> U256 {
        self.balance(self.reader().vault())
    }

    /// The vault as the holder of `key`, through the library (drop it before running l2x on
    /// an embedded chain: it holds the directory).
    fn user(&self, key: &str) -> L1User {
        match self {
            Chain::Node { node, contract } => L1User::rpc(node.url(), contract.parse().unwrap(), Some(key)).unwrap(),
            Chain::Embedded { dir } => L1User::embedded(EmbeddedChain::open(dir).unwrap(), Some(addr(key))),
        }
    }
}

/// `l2x ARGS` with `key` in `L2X_KEY` (and the submitter's in `L2X_SUBMITTER_KEY`), and no
/// other key in the environment.
fn run(args: &[&str], key: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l2x"));
    cmd.args(args).env_remove("L2X_KEY").env("L2X_SUBMITTER_KEY", SUBMITTER).stdin(Stdio::null());
    if let Some(key) = key {
        cmd.env("L2X_KEY", key);
    }
    cmd.output().unwrap()
}

fn l2x(args: &[&str]) -> Output {
    run(args, None)
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `l2x settle CMD ARGS CHAIN` as the holder of `key`; must succeed. Returns its stdout.
fn ok(chain: &Chain, key: Option<&str>, cmd: &[&str]) -> String {
    let out = settle(chain, key, cmd);
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn settle(chain: &Chain, key: Option<&str>, cmd: &[&str]) -> Output {
    let args = chain.args();
    let mut all = vec!["settle"];
    all.extend_from_slice(cmd);
    all.extend(args.iter().map(String::as_str));
    run(&all, key)
}

/// `settle CMD` must exit 1 with `reason` (the contract's, or ours) on stderr, and print
/// nothing on stdout (the one exception, a deposit refused after its approval, is not
/// tested here: the checks before the approval refuse what the contract would).
fn refused(chain: &Chain, key: Option<&str>, cmd: &[&str], reason: &str) {
    let out = settle(chain, key, cmd);
    assert_eq!(out.status.code(), Some(1), "{cmd:?}: {}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("l2x: ") && err.contains(reason), "{cmd:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty(), "{cmd:?}: nothing on stdout: {}", String::from_utf8_lossy(&out.stdout));
}

fn queue(chain: &Chain) -> Value {
    serde_json::from_str(&ok(chain, None, &["queue", "--json"])).unwrap()
}

fn addr(key: &str) -> Address {
    address_of(key).unwrap()
}

fn lower(key: &str) -> String {
    alloy::hex::encode_prefixed(addr(key))
}

#[test]
fn owners_deposit_claim_freeze_and_escape_on_a_node() {
    owners_deposit_claim_freeze_and_escape(&Chain::node());
}

#[test]
fn owners_deposit_claim_freeze_and_escape_on_the_embedded_chain() {
    let dir = tempfile::tempdir().unwrap();
    owners_deposit_claim_freeze_and_escape(&Chain::Embedded { dir: dir.path().join("chain") });
}

/// The flow of the module docs on `chain`.
fn owners_deposit_claim_freeze_and_escape(chain: &Chain) {
    let dir = tempfile::tempdir().unwrap();
    // Tokens (the test token's open mint), then the deposits through the queue.
    for (key, usd) in [(ALICE, "50000"), (BOB, "50000"), (CAROL, "2000")] {
        let minted = ok(chain, Some(SUBMITTER), &["mint-test-usd", "--to", &lower(key), "--amount", usd]);
        assert!(minted.contains(&format!("its balance is now {usd} USDC")), "{minted}");
    }
    let first = ok(chain, Some(ALICE), &["deposit", "--account", "1", "--amount", "40000"]);
    assert!(first.contains("approved the vault") && first.contains("queue entry 1"), "{first}");
    assert!(first.contains(&format!("account 1 is now owned on L1 by {}", addr(ALICE))), "{first}");
    ok(chain, Some(BOB), &["deposit", "--account", "2", "--amount", "30000"]);
    let fund = ok(chain, Some(CAROL), &["deposit", "--account", "insurance", "--amount", "1000.5"]);
    assert!(fund.contains("deposited 1000.5 USDC to the insurance fund") && fund.contains("queue entry 3"), "{fund}");
    assert_eq!(chain.balance(addr(ALICE)), U256::from(10_000 * USD));
    assert_eq!(chain.balance(addr(CAROL)), U256::from(999_500_000u64));
    for key in [ALICE, BOB, CAROL] {
        assert_eq!(chain.allowance(addr(key)), U256::ZERO, "the approval was exactly the amount, and spent");
    }
    assert_eq!(chain.vault_balance(), U256::from(71_000_500_000u64));
    refused(
        chain,
        Some(BOB),
        &["deposit", "--account", "2", "--amount", "20000.000001"],
        "less than 20000.000001 USDC",
    );

    // The queue shows them, exactly; nothing consumed, nothing to freeze for yet.
    let q = queue(chain);
    assert_eq!((q["queue_length"].clone(), q["processed"].clone()), (json!(3), json!(0)), "{q}");
    assert_eq!(q["freeze_possible"], json!(false));
    let entries = q["entries"].as_array().unwrap();
    let seen: Vec<_> = entries
        .iter()
        .map(|e| (e["kind"].clone(), e["account"].clone(), e["amount"].clone(), e["from"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (json!("deposit"), json!(1), json!("40000"), json!(lower(ALICE))),
            (json!("deposit"), json!(2), json!("30000"), json!(lower(BOB))),
            (json!("insurance_deposit"), json!("insurance"), json!("1000.5"), json!(lower(CAROL))),
        ]
    );
    assert!(entries.iter().all(|e| e["state"] == "waiting"), "{q}");

    // The operator sequences them (the queue's fields are the scenario's), trades, settles.
    let batches = settle_a_journal_of(chain, &q, dir.path());
    let q = queue(chain);
    assert_eq!(q["processed"], json!(3), "the committed batches consumed the queue: {q}");
    assert!(q["entries"].as_array().unwrap().iter().all(|e| e["state"] == "consumed"), "{q}");

    // Refusals, with the contract's reason, changing nothing.
    let not_owner = format!("NotOwner(account 1, owner {}, sender {})", addr(ALICE), addr(BOB));
    refused(chain, Some(BOB), &["force-withdraw", "--account", "1", "--amount", "1"], &not_owner);
    refused(chain, Some(ALICE), &["withdraw-claim"], "claim: the contract refused: NothingToClaim");
    let b = batches.to_str().unwrap();
    refused(
        chain,
        Some(ALICE),
        &["escape", "--account", "1", "--batches", b],
        "escape: the contract refused: NotFrozen",
    );
    let unset = ["escape", "--account", "1", "--batches", b, "--key-env", "L2X_TEST_UNSET_KEY"];
    refused(chain, Some(ALICE), &unset, "L2X_TEST_UNSET_KEY (the owner's private key, hex) is not set");

    // Carol's deposit waits: the freeze is refused until it is overdue, then anyone freezes.
    let late = ok(chain, Some(CAROL), &["deposit", "--account", "3", "--amount", "500"]);
    assert!(late.contains("queue entry 4"), "{late}");
    assert_eq!(chain.allowance(addr(CAROL)), U256::ZERO);
    refused(chain, Some(BOB), &["freeze"], "freeze: the contract refused: NotOverdue(oldestWaiting 4, dueAt ");
    // Alice, censored (say), asks on L1 for 100 USDC: her owner's request joins the queue.
    let forced = ok(chain, Some(ALICE), &["force-withdraw", "--account", "1", "--amount", "100"]);
    assert!(forced.contains("queue entry 5") && forced.contains("else anyone may freeze the vault from"), "{forced}");
    chain.pass_the_deadline();
    let q = queue(chain);
    assert_eq!((q["freeze_possible"].clone(), q["oldest_waiting"]["index"].clone()), (json!(true), json!(4)), "{q}");
    let frozen = ok(chain, Some(BOB), &["freeze"]);
    assert!(frozen.contains("queue entry 4") && frozen.contains("waited past the deadline"), "{frozen}");
    refused(chain, Some(BOB), &["freeze"], "IsFrozen");
    let q = queue(chain);
    assert_eq!((q["frozen"].clone(), q["freeze_possible"].clone()), (json!(true), json!(false)), "{q}");
    assert_eq!(q["entries"][3]["state"], json!("to_refund"));
    let e = &q["entries"][4];
    assert_eq!(
        (e["kind"].clone(), e["amount"].clone(), e["state"].clone()),
        (json!("forced_withdrawal"), json!("100"), json!("void"))
    );

    escape_and_claim(chain, &batches, dir.path());
}

/// A journal that takes the queue's entries (as `settle queue --json` printed them), lists
/// an instrument, and has Alice buy 0.5 BTC from Bob before the mark moves and funding
/// accrues; settled with `settle submit` (epochs of 1 ms). Returns the batch directory.
fn settle_a_journal_of(chain: &Chain, q: &Value, dir: &Path) -> PathBuf {
    let mut lines = vec![
        json!({"cmd":"instrument","symbol":"BTC-PERP","tick_size":"0.5","lot_size":"0.001","initial_margin":"0.05",
               "maintenance_margin":"0.03","max_order_qty":"10","max_position_qty":"100","price_band":"0.1",
               "maker_fee":"-0.0001","taker_fee":"0.0005","funding_interest":"0.0001"}),
        json!({"cmd":"l1_bind","chain_id":q["chain_id"],"contract":q["contract"],"token":q["token"]}),
    ];
    for e in q["entries"].as_array().unwrap() {
        lines.push(json!({"cmd":"l1_deposit","index":e["index"],"account":e["account"],"amount":e["amount"],
                          "from":e["from"],"requested_at":e["requested_at"]}));
    }
    lines.extend([
        json!({"cmd":"oracle","symbol":"BTC-PERP","price":"50000"}),
        json!({"cmd":"new","account":2,"cid":1,"symbol":"BTC-PERP","side":"sell","price":"50000","qty":"0.5"}),
        json!({"cmd":"new","account":1,"cid":1,"symbol":"BTC-PERP","side":"buy","price":"50000","qty":"0.5"}),
        json!({"cmd":"new","account":2,"cid":2,"symbol":"BTC-PERP","side":"sell","price":"51500","qty":"0.1"}),
        json!({"cmd":"new","account":1,"cid":2,"symbol":"BTC-PERP","side":"buy","price":"51400","qty":"0.1"}),
        json!({"cmd":"oracle","symbol":"BTC-PERP","price":"51000"}),
        json!({"cmd":"funding","symbol":"BTC-PERP"}),
        json!({"cmd":"tick"}),
        json!({"cmd":"tick"}),
    ]);
    // One millisecond apart: epochs of 1 ms close every second command.
    let scenario: String = (1u64..)
        .zip(lines)
        .map(|(n, mut line)| {
            line["ts"] = json!(n * 1_000_000);
            format!("{line}\n")
        })
        .collect();
    let (input, journal, batches) = (dir.join("owners.jsonl"), dir.join("journal"), dir.join("batches"));
    std::fs::write(&input, scenario).unwrap();
    let matched = l2x(&["match", "--input", input.to_str().unwrap(), "--journal", journal.to_str().unwrap()]);
    assert!(matched.status.success(), "{}", text(&matched));
    let events = String::from_utf8(matched.stdout).unwrap();
    assert_eq!(events.matches("\"ev\":\"l1_credited\"").count(), 3, "{events}");
    assert!(events.contains("\"ev\":\"trade\""), "{events}");
    assert!(events.contains("\"ev\":\"funding\"") && !events.contains("\"rate\":\"0\""), "{events}");
    let (j, b) = (journal.to_str().unwrap(), batches.to_str().unwrap());
    ok(chain, None, &["submit", "--journal", j, "--batches", b, "--epoch-ms", "1"]);
    batches
}

/// An account's equity at a batch by the docs' rule (docs/SETTLEMENT.md, "Escape"), from
/// `settle prove`'s JSON: collateral + Σ size × mark × tickValue − cost − size × (F − f).
fn equity_by_the_rule(proof: &Value) -> i128 {
    let int = |v: &Value| v.as_i64().map_or_else(|| v.as_str().unwrap().parse::<i128>().unwrap(), i128::from);
    let markets = proof["markets"].as_array().unwrap();
    let leaf = &proof["leaf"];
    let mut equity = int(&leaf["collateral"]);
    for p in leaf["positions"].as_array().unwrap() {
        let m = markets.iter().find(|m| m["instrument"] == p["instrument"]).unwrap();
        let size = int(&p["size"]);
        equity += size * int(&m["mark"]) * int(&m["tick_value"])
            - int(&p["cost"])
            - size * (int(&m["funding_index"]) - int(&p["funding_index"]));
    }
    equity
}

/// Frozen: Alice and Bob escape from the batch files, each credited exactly its equity by
/// the rule, once; a batch set that lacks the chain's last batch sends nothing; Carol's
/// queued deposit is refunded; everyone claims, to the base unit.
fn escape_and_claim(chain: &Chain, batches: &Path, dir: &Path) {
    let b = batches.to_str().unwrap();
    // Batch files that end before the chain's last batch: a named disagreement, nothing sent.
    let short = dir.join("short");
    std::fs::create_dir_all(&short).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(batches).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let last_file = files.pop().unwrap();
    for f in &files {
        std::fs::copy(f, short.join(f.file_name().unwrap())).unwrap();
    }
    let last = files.len() + 1;
    let s = short.to_str().unwrap();
    let wanted =
        format!("the chain's last committed batch is {last}, but the batch files in {s} end at batch {}", last - 1);
    refused(chain, Some(BOB), &["escape", "--account", "2", "--batches", s], &wanted);
    assert!(last_file.ends_with(format!("batch-{last:020}.l2xb")));

    let not_owner = format!("NotOwner(account 1, owner {}, sender {})", addr(ALICE), addr(BOB));
    refused(chain, Some(BOB), &["escape", "--account", "1", "--batches", b], &not_owner);
    let mut credited = Vec::new();
    for (key, account) in [(ALICE, "1"), (BOB, "2")] {
        let prove = l2x(&[
            &["settle", "prove", "--batches", b, "--account", account][..],
            &chain.args().iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat());
        let proof: Value = serde_json::from_slice(&prove.stdout).unwrap();
        assert_eq!(proof["verified_by_contract"], json!(true), "{proof}");
        assert!(!proof["leaf"]["positions"].as_array().unwrap().is_empty(), "{proof}");
        let equity = equity_by_the_rule(&proof);
        assert_eq!(proof["leaf"]["equity"], json!(equity.to_string()), "settle prove values it by the same rule");
        assert!(equity > 0);
        let escaped = ok(chain, Some(key), &["escape", "--account", account, "--batches", b]);
        let usdc = l2x_types::Amount::format_micro(equity);
        assert!(
            escaped.contains(&format!("equity {usdc} USDC, credited {usdc} USDC to the claim of {}", addr(key))),
            "{escaped}"
        );
        refused(
            chain,
            Some(key),
            &["escape", "--account", account, "--batches", b],
            &format!("AlreadyEscaped(account {account})"),
        );
        credited.push(equity);
    }
    // An account without a leaf (Carol's deposit was never consumed) has nothing to prove.
    refused(chain, Some(CAROL), &["escape", "--account", "3", "--batches", b], "account 3 has no leaf at batch");

    let refunds = ok(chain, Some(BOB), &["refund-queued"]);
    assert!(refunds.contains("went through queue entries 4-5: 1 deposits refunded, 500 USDC credited"), "{refunds}");
    for key in [ALICE, BOB, CAROL] {
        ok(chain, Some(key), &["withdraw-claim"]);
    }
    let micro = |n: u64| U256::from(n * USD);
    assert_eq!(chain.balance(addr(ALICE)), micro(10_000) + U256::from(credited[0].cast_unsigned()));
    assert_eq!(chain.balance(addr(BOB)), micro(20_000) + U256::from(credited[1].cast_unsigned()));
    assert_eq!(chain.balance(addr(CAROL)), U256::from(999_500_000u64), "the 500 came back; the fund's 1000.5 stays");
    refused(chain, Some(ALICE), &["withdraw-claim"], "NothingToClaim");
}

/// Bad values are usage errors naming the flag (exit 2), before any chain is opened; a
/// chain that is not there is an error (exit 1), and a deposit never creates one.
#[test]
fn bad_flags_are_usage_errors_and_a_missing_chain_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("nothing-here");
    let d = d.to_str().unwrap();
    let usage = |args: &[&str], says: &str| {
        let out = run(args, Some(ALICE));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    };
    for amount in ["0", "-5", "0.0000001", "1e6", "ten", "1_000", "1__0", "+5", ".5", "5."] {
        let flag = format!("--amount={amount}");
        usage(&["settle", "deposit", "--account", "1", &flag, "--chain-dir", d], "for '--amount <AMOUNT>'");
    }
    usage(&["settle", "deposit", "--account", "alice", "--amount", "1", "--chain-dir", d], "for '--account <ACCOUNT>'");
    usage(&["settle", "deposit", "--account", "1", "--amount", "1"], "name a chain: --chain-dir DIR, or --rpc-url URL");
    usage(&["settle", "deposit", "--account", "1", "--amount", "1", "--key", ALICE, "--chain-dir", d], "--key");
    usage(&["settle", "advance-time", "--rpc-url", "http://127.0.0.1:1", "--seconds", "1"], "--rpc-url");
    usage(&["settle", "queue", "--chain-dir", d, "--limit", "0"], "for '--limit <LIMIT>'");
    let no_chain = run(&["settle", "deposit", "--account", "1", "--amount", "1", "--chain-dir", d], Some(ALICE));
    assert_eq!(no_chain.status.code(), Some(1), "{}", text(&no_chain));
    assert!(text(&no_chain).contains("no embedded chain here"), "{}", text(&no_chain));
    assert!(!Path::new(d).exists(), "a deposit creates no chain");
    let bad_key = run(&["settle", "freeze", "--chain-dir", d], Some("0x1234"));
    assert!(text(&bad_key).contains("L2X_KEY: the key is not a 32-byte hex private key"), "{}", text(&bad_key));
    assert!(!text(&bad_key).contains("0x1234"), "the key is never printed");
    let queue = run(&["settle", "queue", "--chain-dir", d], None);
    assert_eq!(queue.status.code(), Some(1), "{}", text(&queue));
}

/// Regressions of `settle deposit`: a deposit to an account another address owns is refused
/// before anything is sent unless `--gift` (it would be that owner's); `settle owner` says
/// who owns one; a first deposit says beforehand that it binds the account; an allowance
/// already enough sends no approval; a deposit past the cap (DepositCapReached) or after the
/// freeze sends nothing, not even the approval; each approval is exactly the amount and
/// spent (allowance 0), and the vault holds exactly what was deposited; on a node every
/// transaction's hash is on stderr as soon as it is sent.
fn deposits_check_the_owner_the_cap_and_the_approval(chain: &Chain) {
    let (alice, bob) = (addr(ALICE), addr(BOB));
    ok(chain, Some(SUBMITTER), &["mint-test-usd", "--to", &lower(ALICE), "--amount", "5000000000000"]);
    ok(chain, Some(SUBMITTER), &["mint-test-usd", "--to", &lower(BOB), "--amount", "100"]);
    assert_eq!(
        ok(chain, None, &["owner", "--account", "1"]),
        "account 1 has no owner on L1: the next deposit to it binds it to its sender\n"
    );

    let first = settle(chain, Some(ALICE), &["deposit", "--account", "1", "--amount", "100"]);
    assert!(first.status.success(), "{}", text(&first));
    let (stdout, stderr) = (String::from_utf8_lossy(&first.stdout), String::from_utf8_lossy(&first.stderr));
    assert!(
        stderr.contains(&format!("account 1 has no owner on L1 yet: this deposit binds it to {alice}")),
        "{stderr}"
    );
    assert!(stdout.contains(&format!("deposited 100 USDC to account 1 from {alice}: queue entry 1")), "{stdout}");
    if let Chain::Node { .. } = chain {
        // The approval's and the deposit's hashes, told when sent, are those printed after.
        let sent: Vec<_> = stderr.lines().filter_map(|l| l.strip_prefix("sent tx ")).collect();
        assert_eq!(sent.len(), 2, "{stderr}");
        for line in sent {
            let hash = line.strip_suffix(" (waiting for its receipt)").unwrap();
            assert!(stdout.contains(&format!("(tx {hash}, block")), "{hash}: {stdout}");
        }
    }
    assert_eq!((chain.allowance(alice), chain.vault_balance()), (U256::ZERO, U256::from(100 * USD)));
    assert_eq!(ok(chain, None, &["owner", "--account", "1"]), format!("account 1 is owned on L1 by {alice}\n"));

    // Bob to Alice's account: refused before anything is sent, then sent as a gift.
    let gift = format!(
        "deposit: account 1 is owned by {alice}; a deposit to it is a gift to that owner: pass --gift to send it \
         anyway; nothing was sent"
    );
    refused(chain, Some(BOB), &["deposit", "--account", "1", "--amount", "50"], &gift);
    assert_eq!((chain.allowance(bob), chain.balance(bob)), (U256::ZERO, U256::from(100 * USD)), "nothing sent");
    let given = ok(chain, Some(BOB), &["deposit", "--account", "1", "--amount", "50", "--gift"]);
    assert!(given.contains(&format!("deposited 50 USDC to account 1 from {bob}: queue entry 2")), "{given}");
    assert!(!given.contains("now owned"), "{given}");
    assert_eq!((chain.allowance(bob), chain.vault_balance()), (U256::ZERO, U256::from(150 * USD)));

    // An allowance already enough: no approval.
    let mut user = chain.user(ALICE);
    let token = user.view(user.vault(), &Vault::tokenCall {}).unwrap();
    let spender = user.vault();
    user.send(token, &Token::approveCall { spender, amount: U256::from(300 * USD) }).unwrap();
    drop(user);
    let second = ok(chain, Some(ALICE), &["deposit", "--account", "1", "--amount", "200"]);
    assert!(!second.contains("approved") && second.contains("queue entry 3"), "{second}");
    assert_eq!((chain.allowance(alice), chain.vault_balance()), (U256::from(100 * USD), U256::from(350 * USD)));

    // The cap: l2Total + pendingDeposits + amount ≤ 2^62. One base unit past it sends
    // nothing (the allowance stays 100, not the amount); exactly to it is taken.
    let past = "4611686018077.387905";
    let reason = "deposit: the contract would refuse it: DepositCapReached(held 350000000, amount 4611686018077387905); nothing was sent";
    refused(chain, Some(ALICE), &["deposit", "--account", "1", "--amount", past], reason);
    assert_eq!(chain.allowance(alice), U256::from(100 * USD), "not even the approval");
    ok(chain, Some(ALICE), &["deposit", "--account", "1", "--amount", "4611686018077.387904"]);
    assert_eq!((chain.allowance(alice), chain.vault_balance()), (U256::ZERO, U256::from(1u64 << 62)));

    // Frozen: IsFrozen before anything is sent.
    chain.pass_the_deadline();
    ok(chain, Some(BOB), &["freeze"]);
    refused(
        chain,
        Some(BOB),
        &["deposit", "--account", "2", "--amount", "1"],
        "the contract would refuse it: IsFrozen",
    );
    assert_eq!((chain.allowance(bob), chain.balance(bob)), (U256::ZERO, U256::from(50 * USD)), "nothing sent");
}

#[test]
fn deposit_checks_the_owner_the_cap_and_the_approval_on_a_node() {
    deposits_check_the_owner_the_cap_and_the_approval(&Chain::node());
}

#[test]
fn deposit_checks_the_owner_the_cap_and_the_approval_on_the_embedded_chain() {
    let dir = tempfile::tempdir().unwrap();
    deposits_check_the_owner_the_cap_and_the_approval(&Chain::Embedded { dir: dir.path().join("chain") });
}

/// Regression (`freeze_possible` was `time ≥ due`): at exactly the due time the contract
/// (`block.timestamp > dueAt`) refuses `settle freeze`'s try at the latest block, and the
/// queue says so; a second later both agree the freeze is taken.
#[test]
fn queue_freeze_possible_is_what_the_contract_does_at_the_due_time() {
    let chain = Chain::node();
    let Chain::Node { node, .. } = &chain else { unreachable!() };
    ok(&chain, Some(SUBMITTER), &["mint-test-usd", "--to", &lower(ALICE), "--amount", "10"]);
    ok(&chain, Some(ALICE), &["deposit", "--account", "1", "--amount", "10"]);
    let due = queue(&chain)["oldest_waiting"]["due_at"].as_u64().unwrap();
    node.request("evm_mine", json!([due])).unwrap();
    let q = queue(&chain);
    assert_eq!((q["chain_time"].clone(), q["freeze_possible"].clone()), (json!(due), json!(false)), "{q}");
    refused(&chain, Some(BOB), &["freeze"], &format!("NotOverdue(oldestWaiting 1, dueAt {due})"));
    node.request("evm_mine", json!([due + 1])).unwrap();
    let q = queue(&chain);
    assert_eq!((q["chain_time"].clone(), q["freeze_possible"].clone()), (json!(due + 1), json!(true)), "{q}");
    let text = ok(&chain, None, &["queue"]);
    assert!(text.contains("not frozen; a freeze is possible now"), "{text}");
    ok(&chain, Some(BOB), &["freeze"]);
}

/// Regression (errors printed the whole RPC URL): an RPC URL's user, path and query, where
/// providers put API keys, are never printed, whether the URL does not parse or the node
/// does not answer.
#[test]
fn an_rpc_urls_secrets_are_never_printed() {
    for url in ["http://127.0.0.1:1/v3/SECRET?apikey=SECRET", "http://user:SECRET@exa mple.com/SECRET"] {
        let vault = "0x0000000000000000000000000000000000000001";
        for (cmd, key) in [(&["settle", "queue"][..], None), (&["settle", "freeze"][..], Some(ALICE))] {
            let out = run(&[cmd, &["--rpc-url", url, "--contract", vault][..]].concat(), key);
            assert_eq!(out.status.code(), Some(1), "{}", text(&out));
            assert!(!text(&out).contains("SECRET"), "{}", text(&out));
            assert!(text(&out).contains("127.0.0.1:1") || text(&out).contains("exa mple.com"), "{}", text(&out));
        }
    }
}
