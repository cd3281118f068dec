//! The test token (`L2xTestUSD`, docs/SETTLEMENT.md, "Test token") on a real node (anvil),
//! deployed from the committed artifact: 6 decimals, mint, transfer, approve and
//! transferFrom with exact balances, allowances and events, and its refusals decoded as its
//! custom errors.

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::sol_types::SolEvent;
use l2x_settlement::chain::abi::L2xTestUSD;
use l2x_settlement::chain::{TEST_USD_ARTIFACT, test_usd_creation_code, test_usd_runtime_code};

use crate::common::{OTHER_KEY, SUBMITTER_KEY, anvil, wallet};

/// One token in base units (6 decimals).
const TOKEN: u64 = 1_000_000;

/// Deploys the committed artifact as `provider`'s signer; returns the token's address.
async fn deploy(provider: &DynProvider) -> Address {
    let tx = TransactionRequest::default().with_deploy_code(test_usd_creation_code().unwrap());
    let receipt = provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    receipt.contract_address.unwrap()
}

/// The events of type `E` a transaction emitted, in order.
fn events<E: SolEvent>(receipt: &TransactionReceipt) -> Vec<E> {
    receipt.logs().iter().filter_map(|log| log.log_decode::<E>().ok()).map(|log| log.inner.data).collect()
}

fn units(n: u64) -> U256 {
    U256::from(n)
}

#[tokio::test(flavor = "current_thread")]
async fn the_test_token_mints_moves_and_approves_with_exact_balances_allowances_and_events() {
    let node = anvil();
    let (alice, a) = wallet(&node, SUBMITTER_KEY);
    let (bob, b) = wallet(&node, OTHER_KEY);
    let carol = Address::repeat_byte(0xc0);
    let address = deploy(&alice).await;
    let (as_alice, as_bob) = (L2xTestUSD::new(address, &alice), L2xTestUSD::new(address, &bob));
    assert_eq!(as_alice.decimals().call().await.unwrap(), 6);
    assert_eq!(as_alice.symbol().call().await.unwrap(), "tUSD");
    assert_eq!(as_alice.totalSupply().call().await.unwrap(), U256::ZERO);
    let balance = |who: Address| {
        let token = as_alice.clone();
        async move { token.balanceOf(who).call().await.unwrap() }
    };

    // Mint: anyone may (bob mints to alice), minted tokens come from address 0.
    let receipt = as_bob.mint(a, units(1_000 * TOKEN)).send().await.unwrap().get_receipt().await.unwrap();
    let minted = L2xTestUSD::Transfer { from: Address::ZERO, to: a, value: units(1_000 * TOKEN) };
    assert_eq!(events::<L2xTestUSD::Transfer>(&receipt), [minted]);
    assert_eq!(as_alice.totalSupply().call().await.unwrap(), units(1_000 * TOKEN));
    assert_eq!(balance(a).await, units(1_000 * TOKEN));

    // Transfer: returns true, moves exactly the amount.
    let call = as_alice.transfer(b, units(250 * TOKEN));
    assert!(call.call().await.unwrap());
    let receipt = call.send().await.unwrap().get_receipt().await.unwrap();
    assert_eq!(
        events::<L2xTestUSD::Transfer>(&receipt),
        [L2xTestUSD::Transfer { from: a, to: b, value: units(250 * TOKEN) }]
    );
    assert_eq!((balance(a).await, balance(b).await), (units(750 * TOKEN), units(250 * TOKEN)));

    // Approve, then transferFrom on the allowance: the allowance goes down by the amount,
    // with a Transfer and no Approval.
    let call = as_alice.approve(b, units(100));
    assert!(call.call().await.unwrap());
    let receipt = call.send().await.unwrap().get_receipt().await.unwrap();
    assert_eq!(
        events::<L2xTestUSD::Approval>(&receipt),
        [L2xTestUSD::Approval { owner: a, spender: b, value: units(100) }]
    );
    let call = as_bob.transferFrom(a, carol, units(60));
    assert!(call.call().await.unwrap());
    let receipt = call.send().await.unwrap().get_receipt().await.unwrap();
    assert_eq!(
        events::<L2xTestUSD::Transfer>(&receipt),
        [L2xTestUSD::Transfer { from: a, to: carol, value: units(60) }]
    );
    assert!(events::<L2xTestUSD::Approval>(&receipt).is_empty());
    assert_eq!(as_alice.allowance(a, b).call().await.unwrap(), units(40));
    assert_eq!((balance(a).await, balance(carol).await), (units(750 * TOKEN - 60), units(60)));

    // An infinite allowance stays infinite.
    as_alice.approve(b, U256::MAX).send().await.unwrap().get_receipt().await.unwrap();
    as_bob.transferFrom(a, carol, units(40)).send().await.unwrap().get_receipt().await.unwrap();
    assert_eq!(as_alice.allowance(a, b).call().await.unwrap(), U256::MAX);
    assert_eq!(balance(carol).await, units(100));
    assert_eq!(as_alice.totalSupply().call().await.unwrap(), units(1_000 * TOKEN), "moves mint nothing");
}

#[tokio::test(flavor = "current_thread")]
async fn the_test_token_refuses_overdrafts_with_its_custom_errors_and_changes_nothing() {
    let node = anvil();
    let (alice, a) = wallet(&node, SUBMITTER_KEY);
    let (bob, b) = wallet(&node, OTHER_KEY);
    let carol = Address::repeat_byte(0xc0);
    let address = deploy(&alice).await;
    let (as_alice, as_bob) = (L2xTestUSD::new(address, &alice), L2xTestUSD::new(address, &bob));
    as_alice.mint(a, units(500)).send().await.unwrap().get_receipt().await.unwrap();
    as_alice.approve(b, units(300)).send().await.unwrap().get_receipt().await.unwrap();

    // A transfer over the balance.
    let err = as_alice.transfer(carol, units(501)).call().await.unwrap_err();
    let e = err.as_decoded_error::<L2xTestUSD::ERC20InsufficientBalance>().unwrap();
    assert_eq!((e.sender, e.balance, e.needed), (a, units(500), units(501)));
    // A transferFrom over the allowance.
    let err = as_bob.transferFrom(a, carol, units(301)).call().await.unwrap_err();
    let e = err.as_decoded_error::<L2xTestUSD::ERC20InsufficientAllowance>().unwrap();
    assert_eq!((e.spender, e.allowance, e.needed), (b, units(300), units(301)));
    // A transferFrom within an allowance but over the balance.
    as_alice.approve(b, units(1_000)).send().await.unwrap().get_receipt().await.unwrap();
    let err = as_bob.transferFrom(a, carol, units(600)).call().await.unwrap_err();
    let e = err.as_decoded_error::<L2xTestUSD::ERC20InsufficientBalance>().unwrap();
    assert_eq!((e.sender, e.balance, e.needed), (a, units(500), units(600)));
    // Nothing to the zero address.
    let err = as_alice.transfer(Address::ZERO, units(1)).call().await.unwrap_err();
    let e = err.as_decoded_error::<L2xTestUSD::ERC20InvalidReceiver>().unwrap();
    assert_eq!(e.receiver, Address::ZERO);

    // Refusals mined (gas given, so no estimate refuses them first) revert and change nothing.
    let receipt = as_bob.transferFrom(a, carol, units(600)).gas(100_000).send().await.unwrap();
    assert!(!receipt.get_receipt().await.unwrap().status());
    let receipt = as_alice.transfer(carol, units(501)).gas(100_000).send().await.unwrap();
    assert!(!receipt.get_receipt().await.unwrap().status());
    assert_eq!(as_alice.balanceOf(a).call().await.unwrap(), units(500));
    assert_eq!(as_alice.balanceOf(carol).call().await.unwrap(), U256::ZERO);
    assert_eq!(as_alice.allowance(a, b).call().await.unwrap(), units(1_000));
}

/// The token carries no immutables: the code anvil holds after deploying the committed
/// artifact is its `deployedBytecode`, byte for byte.
#[tokio::test(flavor = "current_thread")]
async fn the_test_tokens_deployed_code_is_the_committed_artifacts() {
    let node = anvil();
    let (alice, _) = wallet(&node, SUBMITTER_KEY);
    let address = deploy(&alice).await;
    let on_chain = alice.get_code_at(address).await.unwrap().to_vec();
    let artifact: serde_json::Value = serde_json::from_str(TEST_USD_ARTIFACT).unwrap();
    let plain = alloy::hex::decode(artifact["deployedBytecode"].as_str().unwrap()).unwrap();
    assert_eq!(artifact["immutableReferences"], serde_json::json!({}));
    assert_eq!(on_chain, plain);
    assert_eq!(on_chain, test_usd_runtime_code().unwrap());
}
