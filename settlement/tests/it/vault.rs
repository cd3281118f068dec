//! The vault on a real node (anvil): tokens deposited on L1 are queued, the state machine
//! takes the queue's entries from the chain, the batches it closes consume them on chain,
//! and what they pay out is claimed — with the token balances exact at every step and the
//! vault always holding what it owes (docs/SETTLEMENT.md, "Contract").

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use l2x_engine::StateMachine;
use l2x_risk::Ledger;
use l2x_settlement::batch::Batch;
use l2x_settlement::chain::abi::{L2xSettlement, L2xTestUSD};
use l2x_settlement::chain::{Chain, RpcChain, WEEK, commit_call};
use l2x_settlement::devnode::{Anvil, DEV_KEYS};
use l2x_settlement::epoch::{Epochs, Policy};
use l2x_settlement::queue::{Entry, Kind};
use l2x_types::{AccountId, Amount, Command, L1Address};

use crate::common::{SUBMITTER_KEY, anvil, apply_closing, wallet};

/// One dollar in token base units (6 decimals).
const USD: u64 = 1_000_000;

/// The vault, its token and the RPC chain the submitter commits through.
struct Vault {
    vault: L2xSettlement::L2xSettlementInstance<DynProvider>,
    token: L2xTestUSD::L2xTestUSDInstance<DynProvider>,
    chain: Option<RpcChain>,
}

impl Vault {
    async fn deploy(node: &Anvil) -> Vault {
        let url = node.url().to_string();
        let (address, token) =
            tokio::task::spawn_blocking(move || RpcChain::deploy_local(&url, SUBMITTER_KEY)).await.unwrap().unwrap();
        let url = node.url().to_string();
        let chain = tokio::task::spawn_blocking(move || RpcChain::connect(&url, SUBMITTER_KEY, address, 1))
            .await
            .unwrap()
            .unwrap();
        let (provider, _) = wallet(node, SUBMITTER_KEY);
        Vault {
            vault: L2xSettlement::new(address, provider.clone()),
            token: L2xTestUSD::new(token, provider),
            chain: Some(chain),
        }
    }

    /// The contract as `key`'s signer sees it, and the token.
    fn as_user(
        &self,
        node: &Anvil,
        key: &str,
    ) -> (L2xSettlement::L2xSettlementInstance<DynProvider>, L2xTestUSD::L2xTestUSDInstance<DynProvider>) {
        let (provider, _) = wallet(node, key);
        (L2xSettlement::new(*self.vault.address(), provider.clone()), L2xTestUSD::new(*self.token.address(), provider))
    }

    /// Commits `batch` through the submitter's RPC chain (the real commit path).
    async fn commit(&mut self, batch: Batch) {
        let mut chain = self.chain.take().unwrap();
        let (chain, result) = tokio::task::spawn_blocking(move || {
            let r = chain.commit(&batch);
            (chain, r)
        })
        .await
        .unwrap();
        self.chain = Some(chain);
        result.unwrap();
    }

    /// Queue entry `i` as the chain holds it.
    async fn entry(&self, i: u64) -> Entry {
        let e = self.vault.entries(i).call().await.unwrap();
        Entry {
            kind: Kind::from_u8(e.kind as u8).unwrap(),
            index: i,
            account: e.account,
            amount: e.amount,
            from: e.from.into_array(),
            requested_at: e.requestedAt,
        }
    }

    /// The vault's books: its token balance must be what it owes, exactly.
    async fn books(&self) -> (U256, U256, U256) {
        let v = &self.vault;
        let (held, pending, claimable) = (
            v.l2Total().call().await.unwrap(),
            v.pendingDeposits().call().await.unwrap(),
            v.totalClaimable().call().await.unwrap(),
        );
        let balance = self.token.balanceOf(*v.address()).call().await.unwrap();
        assert_eq!(balance, held + pending + claimable, "the vault holds exactly what it owes");
        (held, pending, claimable)
    }
}

impl Drop for Vault {
    /// The RPC chain owns a runtime, which may not be dropped inside the test's: it is
    /// dropped on a thread of its own.
    fn drop(&mut self) {
        if let Some(chain) = self.chain.take() {
            let _ = std::thread::spawn(move || drop(chain)).join();
        }
    }
}

async fn sent(
    call: alloy::contract::CallBuilder<&DynProvider, std::marker::PhantomData<impl alloy::sol_types::SolCall>>,
) {
    let receipt = call.send().await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
}

/// Issue 16: money moves through L1. Two owners deposit tokens (and one funds the insurance
/// fund); the state machine takes those entries from the chain; a batch consumes them; a
/// forced withdrawal is honoured and one too large is refused; an L2 withdrawal is paid;
/// each owner claims exactly what the batches credited; the vault's balance equals what it
/// owes after every step.
#[tokio::test(flavor = "current_thread")]
async fn deposits_forced_and_l2_withdrawals_and_claims_move_exact_tokens() {
    let node = anvil();
    let mut v = Vault::deploy(&node).await;
    let (alice_key, bob_key) = (DEV_KEYS[1], DEV_KEYS[2]);
    let (alice_vault, alice_token) = v.as_user(&node, alice_key);
    let (bob_vault, bob_token) = v.as_user(&node, bob_key);
    let (alice, bob) = (wallet(&node, alice_key).1, wallet(&node, bob_key).1);

    // Each mints and approves; Alice deposits to account 1 and the fund, Bob to account 2.
    for (token, who) in [(&alice_token, alice), (&bob_token, bob)] {
        sent(token.mint(who, U256::from(10_000 * USD))).await;
        sent(token.approve(*v.vault.address(), U256::MAX)).await;
    }
    sent(alice_vault.deposit(1, 5_000 * USD)).await;
    sent(bob_vault.deposit(2, 3_000 * USD)).await;
    sent(alice_vault.depositInsurance(1_000 * USD)).await;
    assert_eq!(v.vault.owners(1).call().await.unwrap(), alice);
    assert_eq!(v.vault.owners(2).call().await.unwrap(), bob);
    assert_eq!(v.books().await, (U256::ZERO, U256::from(9_000 * USD), U256::ZERO));
    assert_eq!(alice_token.balanceOf(alice).call().await.unwrap(), U256::from(4_000 * USD));

    // The state machine takes the three entries from the chain, bound to this vault.
    let mut state = StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(Policy { max_ms: 1_000, max_fills: 0 });
    let chain_id = 31_337;
    let bind = Command::L1Bind {
        chain_id,
        contract: L1Address(v.vault.address().into_array()),
        token: L1Address(v.token.address().into_array()),
    };
    let mut cmds = vec![bind];
    for i in 1..=3 {
        cmds.push(v.entry(i).await.command().unwrap());
    }
    let first = apply_closing(&mut state, &mut epochs, 1, 0, &cmds);
    assert_eq!(first.len(), 1, "one batch takes the three deposits");
    assert_eq!((first[0].queue_count, first[0].queue_hash), (3, v.vault.queueHashes(3).call().await.unwrap()));
    v.commit(Batch::of(&first[0])).await;
    assert_eq!(v.vault.processed().call().await.unwrap(), 3);
    assert_eq!(v.books().await, (U256::from(9_000 * USD), U256::ZERO, U256::ZERO));

    // Alice forces 1,000 out of account 1; Bob asks for more than account 2 holds (refused
    // for margin: rejected, nothing paid); account 2 withdraws 500 on L2.
    sent(alice_vault.requestForcedWithdrawal(1, 1_000 * USD)).await;
    sent(bob_vault.requestForcedWithdrawal(2, 4_000 * USD)).await;
    let cmds = vec![
        v.entry(4).await.command().unwrap(),
        v.entry(5).await.command().unwrap(),
        Command::Withdraw { account: AccountId(2), amount: Amount((500 * USD).cast_signed()) },
    ];
    let second = apply_closing(&mut state, &mut epochs, 5, 10, &cmds);
    assert_eq!(second.len(), 1);
    let b = &second[0];
    assert_eq!((b.queue_count, b.rejected.clone(), b.withdrawals.len()), (5, vec![5], 1));
    v.commit(Batch::of(b)).await;
    assert_eq!(v.books().await, (U256::from(7_500 * USD), U256::ZERO, U256::from(1_500 * USD)));
    assert_eq!(v.vault.claims(alice).call().await.unwrap().amount, 1_000 * USD as u128);
    assert_eq!(v.vault.claims(bob).call().await.unwrap().amount, 500 * USD as u128);

    // Each claims exactly that; a second claim has nothing to pay.
    sent(alice_vault.claim()).await;
    sent(bob_vault.claim()).await;
    assert_eq!(alice_token.balanceOf(alice).call().await.unwrap(), U256::from(5_000 * USD));
    assert_eq!(bob_token.balanceOf(bob).call().await.unwrap(), U256::from(7_500 * USD));
    let err = alice_vault.claim().call().await.unwrap_err();
    assert!(err.as_decoded_error::<L2xSettlement::NothingToClaim>().is_some(), "{err}");
    assert_eq!(v.books().await, (U256::from(7_500 * USD), U256::ZERO, U256::ZERO));

    // The leaves the contract committed hold what the vault backs: 4,000 + 2,500 + 1,000.
    let ledger = state.ledger();
    let total: i64 = ledger.accounts().iter().map(|a| a.collateral).sum();
    assert_eq!(u64::try_from(total).unwrap(), 7_500 * USD);
    assert_eq!(ledger.flows(), (9_000 * i128::from(USD), 1_500 * i128::from(USD)));
}

/// Issue 16: a batch can neither invent, skip nor misstate what it did with the queue, nor
/// pay anyone but an owner, nor pay out more than the vault backs; a deposit or a forced
/// request the contract cannot honour is refused at once. Every refusal changes nothing.
#[tokio::test(flavor = "current_thread")]
async fn the_vault_refuses_what_it_cannot_honour_and_changes_nothing() {
    let node = anvil();
    let mut v = Vault::deploy(&node).await;
    let (alice_vault, alice_token) = v.as_user(&node, DEV_KEYS[1]);
    let (bob_vault, _) = v.as_user(&node, DEV_KEYS[2]);
    let alice = wallet(&node, DEV_KEYS[1]).1;

    user_refusals(&v, &alice_vault, &bob_vault, &alice_token, alice).await;

    // A real batch taking entry 1, then hand-made commits on top of it.
    let mut state = StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(Policy { max_ms: 0, max_fills: 0 });
    let first = apply_closing(&mut state, &mut epochs, 1, 0, &[v.entry(1).await.command().unwrap()]);
    v.commit(Batch::of(&first[0])).await;
    let mut next = commit_call(&Batch::of(&first[0])).unwrap();
    next.h.index = 2;
    next.h.prevRoot = first[0].root;
    let refusal = |call: L2xSettlement::commitBatchCall| {
        let vault = v.vault.clone();
        async move { vault.call_builder(&call).call().await.unwrap_err() }
    };
    // More entries than the queue holds (an invented one); the right count with another
    // hash (a misstated entry); fewer than the last batch took.
    let mut c = next.clone();
    c.h.queueCount = 3;
    let err = refusal(c).await;
    assert!(err.as_decoded_error::<L2xSettlement::QueueCountOutOfRange>().is_some(), "{err}");
    let mut c = next.clone();
    c.h.queueCount = 2;
    c.h.queueHash = B256::repeat_byte(7);
    let e = refusal(c).await.as_decoded_error::<L2xSettlement::WrongQueueHash>().unwrap();
    assert_eq!((e.count, e.expected), (2, v.vault.queueHashes(2).call().await.unwrap()));
    let mut c = next.clone();
    c.h.queueCount = 0;
    c.h.queueHash = B256::ZERO;
    assert!(refusal(c).await.as_decoded_error::<L2xSettlement::QueueCountOutOfRange>().is_some());
    // Refused entries that are not among those consumed, or not increasing.
    for rejected in [vec![1], vec![3], vec![2, 2]] {
        let mut c = next.clone();
        c.h.queueCount = 2;
        c.h.queueHash = v.vault.queueHashes(2).call().await.unwrap();
        c.rejected = rejected.clone();
        let err = refusal(c).await;
        assert!(err.as_decoded_error::<L2xSettlement::BadRejected>().is_some(), "{rejected:?}: {err}");
    }
    // Withdrawals: of an account with no owner, of more than the vault backs, of nothing,
    // of the insurance fund.
    let w = |account, amount| L2xSettlement::Withdrawal { account, amount };
    let cases: [(Vec<L2xSettlement::Withdrawal>, &str); 4] = [
        (vec![w(9, USD)], "NoOwner(account 9)"),
        (vec![w(1, 60 * USD), w(1, 41 * USD)], "WithdrawalsExceedDeposits(held 40000000, needed 41000000)"),
        (vec![w(1, 0)], "BadWithdrawal(position 0)"),
        (vec![w(u64::MAX, USD)], "BadWithdrawal(position 0)"),
    ];
    for (withdrawals, reason) in cases {
        let mut c = next.clone();
        c.withdrawals = withdrawals;
        let err = refusal(c).await;
        let data = err.as_revert_data().unwrap();
        assert_eq!(l2x_settlement::chain::revert_reason(&data).as_deref(), Some(reason));
    }
    // One of them mined (a fixed gas limit: an estimate would not send it): it reverts and
    // changes nothing.
    let mut c = next.clone();
    c.withdrawals = vec![w(9, USD)];
    let mined = v.vault.call_builder(&c).gas(1_000_000).send().await.unwrap().get_receipt().await.unwrap();
    assert!(!mined.status());
    assert_eq!(v.vault.lastIndex().call().await.unwrap(), 1);
    assert_eq!(v.books().await, (U256::from(100 * USD), U256::from(7 * USD), U256::ZERO), "nothing changed");

    // A deposit the batch refuses is refunded to its depositor, who claims it back.
    let mut c = next.clone();
    c.h.queueCount = 2;
    c.h.queueHash = v.vault.queueHashes(2).call().await.unwrap();
    c.rejected = vec![2];
    let receipt = v.vault.call_builder(&c).send().await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    assert_eq!(v.books().await, (U256::from(100 * USD), U256::ZERO, U256::from(7 * USD)));
    let before = alice_token.balanceOf(alice).call().await.unwrap();
    sent(alice_vault.claim()).await;
    assert_eq!(alice_token.balanceOf(alice).call().await.unwrap() - before, U256::from(7 * USD));
}

/// Issue 16: a queue entry left unconsumed past the deadline lets anyone freeze the
/// contract, not a second earlier; frozen, it takes no more commits or deposits.
#[tokio::test(flavor = "current_thread")]
async fn an_entry_left_past_the_deadline_lets_anyone_freeze_the_vault() {
    let node = anvil();
    let mut v = Vault::deploy(&node).await;
    let (alice_vault, alice_token) = v.as_user(&node, DEV_KEYS[1]);
    let (bob_vault, _) = v.as_user(&node, DEV_KEYS[2]);
    let alice = wallet(&node, DEV_KEYS[1]).1;
    sent(alice_token.mint(alice, U256::from(10 * USD))).await;
    sent(alice_token.approve(*v.vault.address(), U256::MAX)).await;
    sent(alice_vault.deposit(1, USD)).await;
    let mut state = StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(Policy { max_ms: 0, max_fills: 0 });
    let first = apply_closing(&mut state, &mut epochs, 1, 0, &[v.entry(1).await.command().unwrap()]);
    v.commit(Batch::of(&first[0])).await;
    // Consumed entries never count: nothing waits, nothing to freeze for.
    let err = bob_vault.freeze().call().await.unwrap_err();
    assert!(err.as_decoded_error::<L2xSettlement::NotOverdue>().is_some(), "{err}");

    sent(alice_vault.deposit(1, USD)).await;
    let queued = v.entry(2).await.requested_at;
    let provider = v.vault.provider();
    let next_block_at = |t: u64| async move {
        let _: serde_json::Value = provider.raw_request("evm_setNextBlockTimestamp".into(), (t,)).await.unwrap();
    };
    // Mined with a fixed gas limit (an estimate would refuse to send a reverting call): in
    // a block at `requestedAt + forcedDeadline` the freeze reverts, a second later it holds.
    next_block_at(queued + WEEK).await;
    let early = bob_vault.freeze().gas(200_000).send().await.unwrap().get_receipt().await.unwrap();
    assert!(!early.status(), "a freeze at requestedAt + deadline is refused");
    assert!(!v.vault.frozen().call().await.unwrap());
    next_block_at(queued + WEEK + 1).await;
    let frozen = bob_vault.freeze().gas(200_000).send().await.unwrap().get_receipt().await.unwrap();
    assert!(frozen.status());
    assert!(v.vault.frozen().call().await.unwrap());
    let mut next = commit_call(&Batch::of(&first[0])).unwrap();
    next.h.index = 2;
    next.h.prevRoot = first[0].root;
    let err = v.vault.call_builder(&next).call().await.unwrap_err();
    assert!(err.as_decoded_error::<L2xSettlement::IsFrozen>().is_some(), "{err}");
    let err = alice_vault.deposit(1, USD).call().await.unwrap_err();
    assert!(err.as_decoded_error::<L2xSettlement::IsFrozen>().is_some(), "{err}");
    let err = alice_vault.requestForcedWithdrawal(1, USD).call().await.unwrap_err();
    assert!(err.as_decoded_error::<L2xSettlement::IsFrozen>().is_some(), "{err}");
    let err = bob_vault.freeze().call().await.unwrap_err();
    assert!(err.as_decoded_error::<L2xSettlement::IsFrozen>().is_some(), "{err}");
}

/// Issue 16: a claim waits out the deployment's claim delay; the vault's holdings are capped
/// at the state machine's bound (2^62); a deployment with a zero minimum or deadline is
/// refused.
#[tokio::test(flavor = "current_thread")]
async fn claims_wait_out_the_delay_holdings_are_capped_and_bad_configs_are_refused() {
    use l2x_settlement::chain::Config;
    let node = anvil();
    let url = node.url().to_string();
    let submitter = wallet(&node, SUBMITTER_KEY).1;
    let token = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || RpcChain::deploy_test_usd(&url, SUBMITTER_KEY)).await.unwrap().unwrap()
    };
    for bad in [
        Config { minDeposit: 0, ..Config::local(submitter, token) },
        Config { forcedDeadline: 0, ..Config::local(submitter, token) },
    ] {
        let url = url.clone();
        let refused = tokio::task::spawn_blocking(move || RpcChain::deploy(&url, SUBMITTER_KEY, &bad)).await.unwrap();
        assert!(refused.is_err(), "a config the constructor refuses (BadConfig)");
    }
    let config = Config { claimDelay: 100, ..Config::local(submitter, token) };
    let address = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || RpcChain::deploy(&url, SUBMITTER_KEY, &config)).await.unwrap().unwrap()
    };
    let (provider, alice) = wallet(&node, DEV_KEYS[1]);
    let (vault, usd) = (L2xSettlement::new(address, provider.clone()), L2xTestUSD::new(token, provider.clone()));
    let cap = U256::from(1u64 << 62);
    sent(usd.mint(alice, cap + U256::from(1))).await;
    sent(usd.approve(address, U256::MAX)).await;
    sent(vault.deposit(1, 1 << 62)).await;
    let err = vault.deposit(1, 1).call().await.unwrap_err();
    let e = err.as_decoded_error::<L2xSettlement::DepositCapReached>().unwrap();
    assert_eq!((e.held, e.amount), (cap, 1));

    // Batch 1 refuses the deposit (a hand-made refusal): its refund is a claim that waits
    // 100 seconds from its block.
    let mut call = commit_call(&batch_one()).unwrap();
    call.h.queueCount = 1;
    call.h.queueHash = vault.queueHashes(1).call().await.unwrap();
    call.rejected = vec![1];
    let (submitter_provider, _) = wallet(&node, SUBMITTER_KEY);
    let as_submitter = L2xSettlement::new(address, submitter_provider);
    let receipt = as_submitter.call_builder(&call).send().await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    let claim = vault.claims(alice).call().await.unwrap();
    let block = provider.get_block_by_number(receipt.block_number.unwrap().into()).await.unwrap().unwrap();
    assert_eq!((claim.amount, claim.availableAt), (1u128 << 62, block.header.timestamp + 100));
    let err = vault.claim().call().await.unwrap_err();
    let e = err.as_decoded_error::<L2xSettlement::ClaimNotYet>().unwrap();
    assert_eq!(e.availableAt, claim.availableAt);
    let _: serde_json::Value =
        provider.raw_request("evm_setNextBlockTimestamp".into(), (claim.availableAt,)).await.unwrap();
    sent(vault.claim()).await;
    assert_eq!(usd.balanceOf(alice).call().await.unwrap(), cap + U256::from(1));
}

/// Batch 1 of a journal whose first command is an operator deposit: real data, header and
/// root, for hand-made commits.
fn batch_one() -> Batch {
    let mut state = StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(Policy { max_ms: 0, max_fills: 0 });
    let bind = Command::L1Bind { chain_id: 1, contract: L1Address([1; 20]), token: L1Address([2; 20]) };
    let deposit = Command::Deposit { to: l2x_types::Holder::Account(AccountId(5)), amount: Amount(1) };
    Batch::of(&apply_closing(&mut state, &mut epochs, 1, 0, &[deposit, bind])[0])
}

/// The refusals a user meets: a deposit not approved, to a reserved id, below the minimum;
/// a forced withdrawal by anyone but the owner, or of nothing. Leaves two deposits queued
/// (100 to account 1, 7 to account 3).
async fn user_refusals(
    v: &Vault,
    alice_vault: &L2xSettlement::L2xSettlementInstance<DynProvider>,
    bob_vault: &L2xSettlement::L2xSettlementInstance<DynProvider>,
    alice_token: &L2xTestUSD::L2xTestUSDInstance<DynProvider>,
    alice: Address,
) {
    // Deposits: not approved yet; to the reserved ids; below the minimum.
    sent(alice_token.mint(alice, U256::from(1_000 * USD))).await;
    let err = alice_vault.deposit(1, 10 * USD).call().await.unwrap_err();
    assert!(err.as_decoded_error::<L2xSettlement::TokenTransferFailed>().is_some(), "{err}");
    sent(alice_token.approve(*v.vault.address(), U256::MAX)).await;
    for reserved in [u64::MAX - 1, u64::MAX] {
        let err = alice_vault.deposit(reserved, 10 * USD).call().await.unwrap_err();
        assert_eq!(err.as_decoded_error::<L2xSettlement::ReservedAccount>().unwrap().account, reserved);
    }
    let err = alice_vault.deposit(1, 0).call().await.unwrap_err();
    assert!(err.as_decoded_error::<L2xSettlement::DepositTooSmall>().is_some(), "{err}");
    sent(alice_vault.deposit(1, 100 * USD)).await;
    sent(alice_vault.deposit(3, 7 * USD)).await;
    // A forced withdrawal by anyone but the owner, or of nothing.
    let err = bob_vault.requestForcedWithdrawal(1, USD).call().await.unwrap_err();
    assert!(err.as_decoded_error::<L2xSettlement::NotOwner>().is_some(), "{err}");
    let err = alice_vault.requestForcedWithdrawal(1, 0).call().await.unwrap_err();
    assert!(err.as_decoded_error::<L2xSettlement::BadAmount>().is_some(), "{err}");
}
