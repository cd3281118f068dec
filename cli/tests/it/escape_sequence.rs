//! The documented escape (docs/OPERATIONS.md, "When the operator stops: freeze and escape")
//! run step by step through the real binary, on the embedded chain `l2x demo` leaves:
//!
//! ```text
//!  l2x demo (trades, open positions, batches committed; the node stops)
//!   ─▶ settle rebuild: every account's equity, from the chain alone
//!   ─▶ settle test-owner: each owner's public test key, into L2X_KEY
//!   ─▶ mint-test-usd + deposit: a deposit no batch will take waits in the queue
//!   ─▶ freeze refused (NotOverdue) ─▶ advance-time past the deadline ─▶ freeze (anyone)
//!   ─▶ each owner: escape (proof from the chain, no batch files) ─▶ withdraw-claim
//!   ─▶ refund-queued ─▶ the depositor's withdraw-claim
//!   ─▶ fees and fund: InsuranceNotYet ─▶ advance-time past the delay ─▶ another key NotOwner
//!   ─▶ their recipient's public test key escapes both and claims
//!   ─▶ the vault holds exactly 0: the dust of docs/SETTLEMENT.md, "The dust"
//! ```
//!
//! Each owner is credited and paid exactly its equity as `settle rebuild` computed it, to the
//! token base unit (the last escapes at most what the vault still holds for L2); the
//! equities sum to what it holds (conservation), so after every escape and claim it is
//! empty.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use alloy::primitives::{Address, U256};
use l2x_settlement::chain::abi::{L2xSettlement as Vault, L2xTestUSD as Token};
use l2x_settlement::chain::{L1User, address_of};
use l2x_settlement::embedded::EmbeddedChain;
use l2x_types::Amount;
use serde_json::{Value, json};

/// A week and a second: past `Config::local`'s forced deadline and its insurance exit delay.
const PAST_A_WEEK: &str = "604801";
/// The stranded deposit, USDC and base units.
const STRANDED: &str = "10";
const STRANDED_MICRO: u64 = 10_000_000;

/// `l2x ARGS` with `key` (if any) in `L2X_KEY` and no other key in the environment.
fn run(args: &[&str], key: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l2x"));
    cmd.args(args).env_remove("L2X_KEY").env_remove("L2X_SUBMITTER_KEY").stdin(Stdio::null());
    if let Some(key) = key {
        cmd.env("L2X_KEY", key);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `l2x settle CMD --chain-dir CHAIN` as the holder of `key`; must succeed. Its stdout.
fn ok(chain: &Path, key: Option<&str>, cmd: &[&str]) -> String {
    let out = settle(chain, key, cmd);
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn settle(chain: &Path, key: Option<&str>, cmd: &[&str]) -> Output {
    let mut all = vec!["settle"];
    all.extend_from_slice(cmd);
    all.extend(["--chain-dir", chain.to_str().unwrap()]);
    run(&all, key)
}

/// `settle CMD` must exit 1 with `reason` on stderr.
fn refused(chain: &Path, key: Option<&str>, cmd: &[&str], reason: &str) {
    let out = settle(chain, key, cmd);
    assert_eq!(out.status.code(), Some(1), "{cmd:?}: {}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("l2x: ") && err.contains(reason), "{cmd:?}: {err}");
}

/// `settle test-owner --account N`: (address, key), the address checked against the key.
fn test_owner(account: &str) -> (Address, String) {
    let out = run(&["settle", "test-owner", "--account", account], None);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let words: Vec<&str> = stdout.lines().next().unwrap().split(' ').collect();
    assert_eq!((words.len(), words[0], words[2]), (4, "owner", "key"), "{stdout}");
    assert!(stdout.contains("a public test key"), "{stdout}");
    let (owner, key) = (words[1].parse::<Address>().unwrap(), words[3].to_string());
    assert_eq!(address_of(&key).unwrap(), owner);
    (owner, key)
}

fn advance_a_week(chain: &Path) {
    let moved =
        run(&["settle", "advance-time", "--chain-dir", chain.to_str().unwrap(), "--seconds", PAST_A_WEEK], None);
    assert!(text(&moved).contains(&format!("(+{PAST_A_WEEK} s)")), "{}", text(&moved));
}

fn reader(chain: &Path) -> L1User {
    L1User::embedded(EmbeddedChain::read_only(chain).unwrap(), None)
}

fn balance(chain: &Path, holder: Address) -> U256 {
    let reader = reader(chain);
    let token = reader.view(reader.vault(), &Vault::tokenCall {}).unwrap();
    reader.view(token, &Token::balanceOfCall { holder }).unwrap()
}

fn equity(account: &Value) -> i128 {
    account["equity"].as_str().unwrap().parse().unwrap()
}

fn units(micro: i128) -> U256 {
    U256::from(u128::try_from(micro).unwrap())
}

/// The fee account and the fund escape last, to their recipient (a public test key on the
/// embedded chain), only after the delay; they are credited what remains of `l2Total`
/// (`remaining`), the fee account first (its equity or what remains), the fund the rest.
fn fees_and_fund_escape(chain: &Path, all: &[Value], remaining: i128, anyone: &str) {
    let (recipient, recipient_key) = test_owner("fees");
    assert_eq!(test_owner("insurance"), (recipient, recipient_key.clone()));
    refused(chain, Some(&recipient_key), &["escape", "--account", "fees"], "InsuranceNotYet");
    advance_a_week(chain);
    refused(chain, Some(anyone), &["escape", "--account", "fees"], "NotOwner");
    let holder = |h: &str| all.iter().find(|a| a["holder"] == h).map_or(0, equity);
    let fees = holder("fees").max(0).min(remaining);
    let fund = holder("insurance").max(0).min(remaining - fees);
    let before = balance(chain, recipient);
    for h in ["fees", "insurance"] {
        if all.iter().any(|a| a["holder"] == h) {
            ok(chain, Some(&recipient_key), &["escape", "--account", h]);
        }
    }
    if fees + fund > 0 {
        ok(chain, Some(&recipient_key), &["withdraw-claim"]);
    }
    assert_eq!(balance(chain, recipient) - before, units(fees + fund));
    assert_eq!(fees + fund, remaining, "conservation: the two leaves' equities are what remains");
}

/// The whole documented sequence; every account leaves with exactly its equity, and the
/// vault ends empty.
#[test]
fn the_operator_stops_anyone_freezes_every_account_escapes_and_the_dust_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("l2x-demo");
    let demo = run(&["demo", "--data-dir", data.to_str().unwrap(), "--seconds", "1"], None);
    assert!(demo.status.success(), "{}", text(&demo));
    let chain = data.join("chain");

    // Every account's equity, from the chain alone.
    let rebuilt: Value = serde_json::from_str(&ok(&chain, None, &["rebuild"])).unwrap();
    assert_eq!(rebuilt["agrees"], true, "{rebuilt}");
    let all = rebuilt["accounts"].as_array().unwrap();
    let traders: Vec<&Value> = all.iter().filter(|a| a["holder"] == "account").collect();
    let open = traders.iter().filter(|a| !a["positions"].as_array().unwrap().is_empty()).count();
    let ids: Vec<u64> = traders.iter().map(|a| a["account"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=10).collect::<Vec<u64>>(), "the documented loop's accounts, 1 to 10");
    assert!(open >= 2, "the demo left {open} accounts with positions");
    let total: i128 = rebuilt["totals"]["equity"].as_str().unwrap().parse().unwrap();
    assert_eq!(all.iter().map(equity).sum::<i128>(), total);
    // What the traders' escapes pay (a negative equity pays nothing); the fee account and
    // the fund, escaping last, share what remains of `total` (the vault's `l2Total`).
    let paid: i128 = traders.iter().map(|a| equity(a).max(0)).sum();
    assert!(paid <= total, "the traders are owed more than the vault holds for them");
    let remaining = total - paid;

    // The operator is gone; account 1's owner deposits, and no batch will take it.
    let (owner1, key1) = test_owner("1");
    ok(&chain, None, &["mint-test-usd", "--to", &owner1.to_string(), "--amount", STRANDED]);
    ok(&chain, Some(&key1), &["deposit", "--account", "1", "--amount", STRANDED]);

    // No file of the operator's is needed from here on: its journal and batch files go.
    for gone in ["journal", "batches"] {
        if data.join(gone).exists() {
            std::fs::remove_dir_all(data.join(gone)).unwrap();
        }
    }
    refused(&chain, Some(&key1), &["escape", "--account", "1"], "NotFrozen");

    // Anyone (a key that owns nothing) freezes, once the deposit is past the deadline.
    let (_, anyone) = test_owner("999");
    refused(&chain, Some(&anyone), &["freeze"], "NotOverdue");
    advance_a_week(&chain);
    assert!(ok(&chain, Some(&anyone), &["freeze"]).starts_with("froze the vault"));

    // Every owner escapes with the proof from the chain (no batch files) and is paid exactly
    // its equity.
    for account in &traders {
        let n = account["account"].as_u64().unwrap().to_string();
        let (owner, key) = test_owner(&n);
        let e = equity(account).max(0);
        let escaped = ok(&chain, Some(&key), &["escape", "--account", &n]);
        let (owed, credited) = (Amount::format_micro(equity(account)), Amount::format_micro(e));
        let said = format!("equity {owed} USDC, credited {credited} USDC to the claim of {owner}");
        assert!(escaped.contains(&said), "{escaped}");
        if e > 0 {
            let before = balance(&chain, owner);
            ok(&chain, Some(&key), &["withdraw-claim"]);
            assert_eq!(balance(&chain, owner) - before, units(e), "account {n}");
        }
        refused(&chain, Some(&key), &["escape", "--account", &n], "AlreadyEscaped");
    }

    // The stranded deposit goes back to its depositor.
    let refunded = ok(&chain, Some(&anyone), &["refund-queued"]);
    assert!(refunded.contains("1 deposits refunded"), "{refunded}");
    let before = balance(&chain, owner1);
    ok(&chain, Some(&key1), &["withdraw-claim"]);
    assert_eq!(balance(&chain, owner1) - before, U256::from(STRANDED_MICRO));

    // The fee account and the fund escape last, to their recipient, after the delay.
    fees_and_fund_escape(&chain, all, remaining, &anyone);
    let dust = 0;

    // The books: nothing stays, nothing is owed.
    let queue: Value = serde_json::from_str(&ok(&chain, None, &["queue", "--json"])).unwrap();
    assert_eq!(queue["frozen"], true, "{queue}");
    assert_eq!(queue["refunded"], queue["queue_length"], "{queue}");
    // What the documented sequence's last `settle queue` shows, and the chain's own reads.
    let dust_usdc = Amount::format_micro(dust);
    assert_eq!((&queue["balance"], &queue["held_for_l2"]), (&json!(dust_usdc), &json!(dust_usdc)), "{queue}");
    assert_eq!(
        (&queue["pending_deposits"], &queue["claimable"]),
        (&json!(Amount::format_micro(0)), &json!(Amount::format_micro(0))),
        "{queue}"
    );
    let reader = reader(&chain);
    let vault = reader.vault();
    assert_eq!(balance(&chain, vault), units(dust));
    assert_eq!(reader.view(vault, &Vault::l2TotalCall {}).unwrap(), units(dust));
    assert_eq!(reader.view(vault, &Vault::pendingDepositsCall {}).unwrap(), U256::ZERO);
    assert_eq!(reader.view(vault, &Vault::totalClaimableCall {}).unwrap(), U256::ZERO);
}
