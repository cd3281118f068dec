//! Issue 16, item 2: the node's L1 watcher. On the embedded chain, a new node's accounts are
//! funded by real deposits to the vault and credited from its queue, a restart credits
//! nothing twice and credits what was deposited while the node was down, and a journal bound
//! elsewhere (or never bound) refuses to start, a failed funding start is retried without
//! double deposits, a vault with another journal's batches is refused, and a forced
//! withdrawal asked on L1 is sequenced, committed and claimed. On anvil, the watcher credits
//! an entry only once it has its confirmations, and never one a reorg removed before then.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};
use alloy_sol_types::SolCall;
use l2x_gateway::auth::Keys;
use l2x_node::config::{ChainKind, Config};
use l2x_node::funding::owner_of;
use l2x_node::watcher::{Source, Watch, WatcherError};
use l2x_node::{Node, NodeError};
use l2x_sequencer::journal::{Journal, Point, read_after};
use l2x_settlement::chain::abi::{L2xSettlement as Vault, L2xTestUSD as Token};
use l2x_settlement::chain::{QueueReader, RpcChain};
use l2x_settlement::devnode::{Anvil, DEV_KEYS};
use l2x_settlement::embedded::{CHAIN_ID, EmbeddedChain, settlement_address, token_address};
use l2x_types::{AccountId, Command, Holder, L1Address, L1Binding};

use crate::node::{KEYS, instrument, key};

/// One USDC in base units.
const USD: i64 = 1_000_000;

fn keys() -> Keys {
    Keys::from_keys(KEYS.iter().map(|&(k, _)| key(k))).unwrap()
}

/// A node on `dir` settling on the embedded chain in `dir/chain`: accounts 1–3 funded with
/// 1,000,000 USDC, account 4 with 500; epochs of 1 ms, a submitter pass and a watcher poll
/// every 20 ms, an idle tick every 20 ms (so that epochs close on an idle node).
fn embedded_config(dir: &Path) -> Config {
    let mut config = Config { data_dir: dir.to_path_buf(), ..Config::default() };
    config.ports.order_entry = "127.0.0.1:0".parse().unwrap();
    config.ports.market_data = "127.0.0.1:0".parse().unwrap();
    config.ports.metrics_enabled = false;
    config.pipeline.idle_tick_ms = 20;
    config.accounts.deposit_usdc = 1_000_000;
    config.accounts.deposits.insert("4".into(), 500);
    config.instruments = vec![instrument()];
    config.settlement.chain = ChainKind::Embedded;
    (config.settlement.epoch_ms, config.settlement.every_ms, config.settlement.l1_poll_ms) = (1, 20, 20);
    config
}

/// Polls `done` every 10 ms until it holds, for at most 60 s.
#[allow(clippy::disallowed_methods, reason = "a test's deadline is wall-clock time")]
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The journal's L1 deposits: (queue index, account, amount).
fn l1_deposits(dir: &Path) -> Vec<(u64, Holder, i64)> {
    let journal = Journal::open(dir).unwrap();
    let mut out = Vec::new();
    read_after(&journal, Point::START, None, |cmd, _| {
        if let Command::L1Deposit { index, to, amount, .. } = cmd.cmd {
            out.push((index, to, amount.0));
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    out
}

fn collateral(state: &l2x_engine::StateMachine, account: u64) -> i64 {
    let ledger = state.ledger();
    ledger.account(ledger.slot(AccountId(account)).unwrap()).collateral
}

fn view<C: SolCall>(chain: &EmbeddedChain, to: Address, call: &C) -> C::Return {
    C::abi_decode_returns(&chain.call(to, call.abi_encode()).unwrap()).unwrap()
}

fn embedded_binding() -> L1Binding {
    L1Binding {
        chain_id: CHAIN_ID,
        contract: L1Address(settlement_address().into_array()),
        token: L1Address(token_address().into_array()),
    }
}

/// A new node on the embedded chain: bound first, every account funded through the vault
/// before `start` returns, the batches make the vault's books hold what was credited; a
/// restart credits nothing twice, and credits a deposit made while the node was down.
#[test]
fn accounts_are_funded_through_the_embedded_vault_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path());
    let node = Node::start(&config, keys()).unwrap();
    // One pass ran inside start: four accounts (keys 1 and 2 share account 1), four entries.
    assert_eq!(node.l1_watcher().unwrap().next, 5);
    let chain_dir = config.chain_dir();
    let funded = 3 * 1_000_000 * USD + 500 * USD;
    // Everything credited reaches the vault's books through committed batches.
    wait_for("the vault's l2Total to hold the first deposits", || {
        let chain = EmbeddedChain::read_only(&chain_dir).unwrap();
        view(&chain, chain.address(), &Vault::l2TotalCall {}) == U256::from(funded)
    });
    let stopped = node.stop().unwrap();
    assert_eq!(stopped.state.l1().binding, Some(embedded_binding()));
    assert_eq!(stopped.state.l1().next, 5);
    assert_eq!((collateral(&stopped.state, 1), collateral(&stopped.state, 4)), (1_000_000 * USD, 500 * USD));
    assert_eq!(stopped.state.ledger().flows().0, i128::from(funded));
    let holders = |n: u64| Holder::Account(AccountId(n));
    let expected = [(1, holders(1), 1_000_000 * USD), (2, holders(2), 1_000_000 * USD)];
    assert_eq!(l1_deposits(dir.path())[..2], expected[..]);
    assert_eq!(l1_deposits(dir.path()).len(), 4);
    {
        // Each account is owned on L1 by its test owner, and the vault holds the tokens.
        let chain = EmbeddedChain::read_only(&chain_dir).unwrap();
        for account in 1..=4 {
            let owner = view(&chain, chain.address(), &Vault::ownersCall { account });
            assert_eq!(owner, owner_of(AccountId(account)), "account {account}");
        }
        let held = view(&chain, chain.token(), &Token::balanceOfCall { holder: chain.address() });
        assert_eq!(held, U256::from(funded));
    }

    // While the node is down, account 2's owner deposits 7 USDC more.
    {
        let mut chain = EmbeddedChain::open(&chain_dir).unwrap();
        let (vault, token, owner) = (chain.address(), chain.token(), owner_of(AccountId(2)));
        chain.mint_test_usd(owner, U256::from(7 * USD)).unwrap();
        let approve = Token::approveCall { spender: vault, amount: U256::from(7 * USD) };
        chain.transact(owner, token, approve.abi_encode()).unwrap();
        chain.transact(owner, vault, Vault::depositCall { account: 2, amount: 7 * 1_000_000 }.abi_encode()).unwrap();
    }
    let node = Node::start(&config, keys()).unwrap();
    wait_for("the deposit made while the node was down", || node.l1_watcher().unwrap().next == 6);
    let status = node.l1_watcher().unwrap();
    assert_eq!((status.sequenced, status.error), (1, None));
    let stopped = node.stop().unwrap();
    assert_eq!(stopped.state.l1().next, 6);
    assert_eq!(collateral(&stopped.state, 2), 1_000_007 * USD);
    assert_eq!(collateral(&stopped.state, 1), 1_000_000 * USD, "nothing credited twice");
    assert_eq!(l1_deposits(dir.path()).len(), 5);
    assert_eq!(l1_deposits(dir.path())[4], (5, holders(2), 7 * USD));
}

/// A journal bound to another vault, or to none, refuses to start on the embedded chain —
/// before anything is written or a port is bound — naming both bindings.
#[test]
fn a_journal_bound_elsewhere_or_never_bound_refuses_to_start() {
    let other = L1Binding { chain_id: 31_337, contract: L1Address([0xcc; 20]), token: L1Address([0x70; 20]) };
    for bound in [Some(other), None] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = embedded_config(dir.path());
        config.settlement.chain = ChainKind::None;
        let node = Node::start(&config, keys()).unwrap();
        if let Some(b) = bound {
            let bind = Command::L1Bind { chain_id: b.chain_id, contract: b.contract, token: b.token };
            node.server().control().submit(bind).unwrap();
        }
        let last_seq = node.stop().unwrap().last_seq;
        config.settlement.chain = ChainKind::Embedded;
        let refused = Node::start(&config, keys()).unwrap_err();
        let text = refused.to_string();
        match bound {
            Some(b) => {
                assert!(
                    matches!(refused, NodeError::BoundElsewhere { journal, chain }
                    if journal == b && chain == embedded_binding()),
                    "{refused:?}"
                );
                assert!(
                    text.contains(&b.contract.to_string())
                        && text.contains(&settlement_address().to_string().to_lowercase()),
                    "{text}"
                );
            }
            None => {
                assert!(matches!(refused, NodeError::NotBound { chain } if chain == embedded_binding()), "{refused:?}");
                assert!(text.contains("never bound"), "{text}");
            }
        }
        // Nothing was written: the journal is as the first node left it.
        config.settlement.chain = ChainKind::None;
        let again = Node::start(&config, keys()).unwrap();
        assert_eq!(again.recovered_seq(), last_seq);
        again.stop().unwrap();
    }
}

/// Issue 16, items 4–5 end to end: owners ask forced withdrawals on L1 while the node is
/// down; the restarted node's watcher sequences them, the one margin allows is paid and the
/// one it does not is refused, the batch consumes both on chain, and the owner claims
/// exactly the amount in tokens — the vault holding exactly what it owes throughout.
#[test]
fn a_forced_withdrawal_asked_on_l1_is_sequenced_committed_and_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path());
    let chain_dir = config.chain_dir();
    let funded = 3 * 1_000_000 * USD + 500 * USD;
    let l2_total = |chain: &EmbeddedChain| view(chain, chain.address(), &Vault::l2TotalCall {});
    let node = Node::start(&config, keys()).unwrap();
    wait_for("the first deposits committed", || {
        l2_total(&EmbeddedChain::read_only(&chain_dir).unwrap()) == U256::from(funded)
    });
    node.stop().unwrap();

    let (one, four) = (owner_of(AccountId(1)), owner_of(AccountId(4)));
    {
        let mut chain = EmbeddedChain::open(&chain_dir).unwrap();
        let vault = chain.address();
        let forced =
            |account, usd: i64| Vault::requestForcedWithdrawalCall { account, amount: (usd * USD).cast_unsigned() };
        chain.transact(one, vault, forced(1, 100).abi_encode()).unwrap();
        chain.transact(four, vault, forced(4, 10_000).abi_encode()).unwrap();
    }
    let node = Node::start(&config, keys()).unwrap();
    wait_for("both forced withdrawals consumed on chain", || {
        let chain = EmbeddedChain::read_only(&chain_dir).unwrap();
        view(&chain, chain.address(), &Vault::processedCall {}) == 6
    });
    let stopped = node.stop().unwrap();
    assert_eq!(collateral(&stopped.state, 1), (1_000_000 - 100) * USD, "paid");
    assert_eq!(collateral(&stopped.state, 4), 500 * USD, "refused for margin: nothing moved");

    let mut chain = EmbeddedChain::open(&chain_dir).unwrap();
    let (vault, token) = (chain.address(), chain.token());
    let books = |chain: &EmbeddedChain| {
        let held = view(chain, token, &Token::balanceOfCall { holder: vault });
        let owed = l2_total(chain)
            + view(chain, vault, &Vault::pendingDepositsCall {})
            + view(chain, vault, &Vault::totalClaimableCall {});
        assert_eq!(held, owed, "the vault holds exactly what it owes");
        held
    };
    assert_eq!(books(&chain), U256::from(funded));
    assert_eq!(view(&chain, vault, &Vault::claimsCall { holder: one }).amount, 100 * 1_000_000);
    assert_eq!(view(&chain, vault, &Vault::claimsCall { holder: four }).amount, 0);
    chain.transact(one, vault, Vault::claimCall {}.abi_encode()).unwrap();
    assert_eq!(view(&chain, token, &Token::balanceOfCall { holder: one }), U256::from(100 * USD));
    assert_eq!(books(&chain), U256::from(funded - 100 * USD));
}

/// Review of issue 16: a start that fails while making the first deposits (account 3's
/// refused: the vault's holdings would pass 2^62) journals nothing; the next start, its
/// config fixed, makes only the deposits still missing — accounts 1's and 2's, made by the
/// failed start, are not made again — and every entry is credited once.
#[test]
fn a_start_that_failed_funding_retries_only_the_missing_deposits() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = embedded_config(dir.path());
    // 2.3 × 10^12 USDC each: the third account's deposit passes the vault's 2^62 base units.
    let big = 2_300_000_000_000;
    config.accounts.deposit_usdc = big;
    let refused = Node::start(&config, keys()).unwrap_err();
    assert!(matches!(refused, NodeError::Funding { account: AccountId(3), .. }), "{refused:?}");
    let NodeError::Funding { source, .. } = &refused else { unreachable!() };
    assert!(source.to_string().contains("DepositCapReached"), "{source}");
    assert!(l1_deposits(dir.path()).is_empty(), "nothing journaled");
    config.accounts.deposit_usdc = 1_000_000;
    let node = Node::start(&config, keys()).unwrap();
    assert_eq!(node.l1_watcher().unwrap().next, 5, "four entries, two of them from the failed start");
    let stopped = node.stop().unwrap();
    let credited: Vec<i64> = (1..=4).map(|a| collateral(&stopped.state, a)).collect();
    assert_eq!(credited, [big.cast_signed() * USD, big.cast_signed() * USD, 1_000_000 * USD, 500 * USD]);
    assert_eq!(l1_deposits(dir.path()).len(), 4);
}

/// Review of issue 16: a new journal on a vault that already has committed batches (another
/// journal's) is refused, naming the vault: its queue's entries would be credited again.
#[test]
fn a_new_journal_on_a_vault_with_batches_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path());
    let node = Node::start(&config, keys()).unwrap();
    let chain_dir = config.chain_dir();
    wait_for("a committed batch", || {
        let chain = EmbeddedChain::read_only(&chain_dir).unwrap();
        view(&chain, chain.address(), &Vault::lastIndexCall {}) > 0
    });
    node.stop().unwrap();
    let other = tempfile::tempdir().unwrap();
    let mut fresh = embedded_config(other.path());
    fresh.settlement.chain_dir = Some(chain_dir);
    let refused = Node::start(&fresh, keys()).unwrap_err();
    assert!(matches!(refused, NodeError::VaultHasHistory { batches, .. } if batches > 0), "{refused:?}");
    assert!(refused.to_string().contains("settlement.chain_dir"), "{refused}");
}

/// On anvil, with 3 confirmations: a deposit is credited only once two more blocks are
/// built on its block; a deposit a reorg (a snapshot reverted) removes before its
/// confirmations is never credited, and the queue entry that takes its index later is.
#[test]
fn the_watcher_credits_confirmed_deposits_only_and_never_a_reorged_one() {
    let anvil = Anvil::spawn().unwrap();
    let url = anvil.url().to_string();
    let (vault, _) = RpcChain::deploy_local(&url, DEV_KEYS[0]).unwrap();
    let mut watch = Watch::new(Source::Rpc(Box::new(RpcChain::read_only(&url, vault).unwrap())), 3, 1);
    let status = watch.status_handle();
    let mut sequenced = Vec::new();
    let mut pass = |watch: &mut Watch| {
        watch
            .pass(&mut |cmd| {
                sequenced.push(cmd);
                Ok(())
            })
            .unwrap()
    };
    let mine = |n: u64| (0..n).for_each(|_| drop(anvil.request("evm_mine", serde_json::json!([])).unwrap()));

    // Deposited at block d: not confirmed at d or d + 1, confirmed at d + 2.
    let d = anvil.deposit(DEV_KEYS[1], vault, 1, 5_000_000).unwrap();
    assert_eq!(pass(&mut watch), 0);
    assert_eq!(status.lock().unwrap().block, Some(d - 2));
    mine(1);
    assert_eq!(pass(&mut watch), 0);
    mine(1);
    assert_eq!(pass(&mut watch), 1);
    assert_eq!(status.lock().unwrap().next, 2);

    // A deposit mined, then reorged out (a snapshot reverted) before its confirmations.
    let snapshot = anvil.request("evm_snapshot", serde_json::json!([])).unwrap();
    let r = anvil.deposit(DEV_KEYS[2], vault, 2, 9_000_000).unwrap();
    mine(1);
    assert_eq!(pass(&mut watch), 0, "one confirmation short");
    assert_eq!(anvil.request("evm_revert", serde_json::json!([snapshot])).unwrap(), serde_json::json!(true));
    // The chain grows past where the removed deposit would have been confirmed.
    mine(6);
    assert_eq!(pass(&mut watch), 0);
    assert!(status.lock().unwrap().block.unwrap() >= r, "the watcher read past the removed deposit's block");
    // Entry 2 is whatever the chain holds now, once confirmed.
    anvil.deposit(DEV_KEYS[1], vault, 1, 3_000_000).unwrap();
    mine(2);
    assert_eq!(pass(&mut watch), 1);
    let amounts: Vec<(u64, u64, i64)> = sequenced
        .iter()
        .map(|c| match *c {
            Command::L1Deposit { index, to: Holder::Account(a), amount, .. } => (index, a.0, amount.0),
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(amounts, [(1, 1, 5_000_000), (2, 1, 3_000_000)]);
    drop(sequenced);

    // A queue that no longer holds what was sequenced: an error, nothing submitted, retried.
    let mut reader = RpcChain::read_only(&url, vault).unwrap();
    let block = reader.confirmed_block(1).unwrap().unwrap();
    assert_eq!(reader.queue_length(block).unwrap(), 2);
    let mut ahead = Watch::new(Source::Rpc(Box::new(reader)), 1, 4);
    let mut none = Vec::new();
    let e = ahead
        .pass(&mut |cmd| {
            none.push(cmd);
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(e, WatcherError::Shrunk { length: 2, sequenced: 3, .. }), "{e:?}");
    assert!(none.is_empty());
    assert!(ahead.status_handle().lock().unwrap().error.as_ref().unwrap().contains("3 were sequenced"));
}
