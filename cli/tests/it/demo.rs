//! `l2x demo` as the README runs it: it trades over TCP, commits batches to the embedded
//! chain, moves tokens through the vault (deposits, a withdrawal claimed on L1), and its own
//! verification (and an outside `l2x settle verify`) re-derives every committed root from
//! the journal it wrote. It recreates only a directory it made.

use std::process::{Command, Output, Stdio};

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolCall;
use l2x_node::funding::owner_of;
use l2x_settlement::chain::abi::{L2xSettlement as Vault, L2xTestUSD as Token};
use l2x_settlement::embedded::EmbeddedChain;
use l2x_types::{AccountId, Decimal};

/// One USDC in the test token's base units.
const USDC: u64 = 1_000_000;

fn l2x(args: &[&str], cwd: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l2x")).args(args).current_dir(cwd).stdin(Stdio::null()).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The number before `what` in `line`, e.g. "3 batches committed".
fn count_before(out: &str, what: &str) -> u64 {
    let at = out.find(what).unwrap_or_else(|| panic!("no {what:?} in {out}"));
    out[..at].split_whitespace().last().unwrap().parse().unwrap()
}

fn view<C: SolCall>(chain: &EmbeddedChain, to: Address, call: &C) -> C::Return {
    C::abi_decode_returns(&chain.call(to, call.abi_encode()).unwrap()).unwrap()
}

/// The demo's money through L1, in its summary and on the chain it left: 4 × 1,000,000 USDC
/// (makers, takers) and 6 × 5,000 (longs) deposited through the vault; account 1 withdrew
/// 1,000 and its owner claimed exactly that; the vault holds exactly what it owes.
fn assert_money_moved_through_l1(out: &str, data: &std::path::Path) {
    let lines = [
        "  deposited through the vault: 4030000 USDC in 10 deposits, credited from its queue".to_owned(),
        "  vault before the claim: holds 4030000 USDC; l2Total 4029000 + pendingDeposits 0 + totalClaimable 1000 (balanced)"
            .to_owned(),
        format!("  owner {} of account 1 claimed: its balance 0 → 1000 USDC", owner_of(AccountId(1))),
    ];
    for line in lines {
        assert!(out.lines().any(|l| l == line), "no {line:?} in {out}");
    }
    let withdrawn = "  account 1 withdrew 1000 USDC over the wire: Withdrawn, collateral ";
    let after = out.lines().find_map(|l| l.strip_prefix(withdrawn)).unwrap_or_else(|| panic!("{out}"));
    let collateral: Decimal = after.strip_suffix(" USDC after").unwrap().parse().unwrap();
    assert!(collateral > Decimal::ZERO, "{out}");
    // The chain agrees after the claim: the owner holds the withdrawal, nothing is left to
    // claim, the vault backs the L2 state alone.
    let chain = EmbeddedChain::read_only(&data.join("chain")).unwrap();
    let vault = chain.address();
    let owner_has = view(&chain, chain.token(), &Token::balanceOfCall { holder: owner_of(AccountId(1)) });
    assert_eq!(owner_has, U256::from(1_000 * USDC));
    let books = (
        view(&chain, chain.token(), &Token::balanceOfCall { holder: vault }),
        view(&chain, vault, &Vault::l2TotalCall {}),
        view(&chain, vault, &Vault::pendingDepositsCall {}),
        view(&chain, vault, &Vault::totalClaimableCall {}),
    );
    let left = U256::from(4_029_000 * USDC);
    assert_eq!(books, (left, left, U256::ZERO, U256::ZERO));
}

#[test]
fn the_demo_trades_settles_moves_tokens_through_l1_and_verifies_its_roots() {
    let dir = tempfile::tempdir().unwrap();
    let run = l2x(&["demo", "--seconds", "2"], dir.path());
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert!(count_before(&out, "orders in") > 100, "{out}");
    assert!(count_before(&out, "fills;") > 0, "{out}");
    // The shock at the end liquidates the leveraged longs that went to the margin limit (each
    // bought about 2 BTC on 5,000 USDC), not the 5x ones (0.5 BTC each).
    for id in 5..=7 {
        let line = out.lines().find(|l| l.starts_with(&format!("  long {id} "))).unwrap_or_else(|| panic!("{out}"));
        assert!(line.ends_with("holds 0 after the shock (liquidated)"), "{out}");
        assert!(!line.contains("bought 0 "), "{out}");
    }
    for id in 8..=10 {
        let line = format!("  long {id} (5x): bought 0.5 BTC-PERP, holds 0.5 after the shock");
        assert!(out.contains(&line), "{out}");
    }
    assert!(out.lines().any(|l| l.starts_with("open interest BTC-PERP ")), "{out}");
    let committed = count_before(&out, "batches committed to the embedded chain");
    assert!(committed >= 1, "{out}");
    assert_eq!(count_before(&out, "epochs closed"), committed, "every closed epoch committed: {out}");
    assert!(!out.contains("last pass failed"), "{out}");
    assert!(out.contains(&format!("{committed} committed roots match")), "{out}");
    assert_money_moved_through_l1(&out, &dir.path().join("l2x-demo"));

    // The printed command, run by hand, agrees.
    let printed = out.lines().find_map(|l| l.trim().strip_prefix("l2x replay ")).unwrap_or_else(|| panic!("{out}"));
    let replay = l2x(&[&["replay"][..], &printed.split(' ').collect::<Vec<_>>()].concat(), dir.path());
    assert!(replay.status.success(), "{}", text(&replay));
    assert!(text(&replay).contains(&format!("{committed} committed roots match")), "{}", text(&replay));
    let data = dir.path().join("l2x-demo");
    let d = data.to_str().unwrap();
    let (batches, chain) = (format!("{d}/batches"), format!("{d}/chain"));
    let verify = l2x(&["settle", "verify", "--journal", d, "--batches", &batches, "--chain-dir", &chain], dir.path());
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains(&format!("{committed} committed roots match")), "{}", text(&verify));

    // A second run starts afresh in its own directory; a directory it did not make is left
    // alone.
    // It logs warnings only unless asked: with `--log-level info`, every session's logon and
    // logout, as `l2x serve` does (two makers, two takers, six longs, and maker 1 again to
    // withdraw).
    let quiet = String::from_utf8_lossy(&run.stderr);
    assert!(!quiet.contains(" INFO "), "{quiet}");
    let again = l2x(&["demo", "--seconds", "1", "--log-level", "info"], dir.path());
    assert!(again.status.success(), "{}", text(&again));
    let logs = String::from_utf8_lossy(&again.stderr);
    assert_eq!(logs.lines().filter(|l| l.contains(" INFO logon ")).count(), 11, "{logs}");
    assert!(logs.lines().filter(|l| l.contains(" INFO logout ") && l.contains("reason=")).count() >= 11, "{logs}");
    let other = dir.path().join("mine");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "x").unwrap();
    let refused = l2x(&["demo", "--data-dir", other.to_str().unwrap()], dir.path());
    assert!(!refused.status.success());
    assert!(text(&refused).contains("is not a demo directory"), "{}", text(&refused));
    assert!(other.join("keep.txt").exists());
}
