//! `L1User`, a user of the vault on either chain: the key's address sends on anvil (signed)
//! and on the embedded chain (unsigned) alike, every refusal comes back in the contract's or
//! the token's words and changes nothing, and a user without a key only reads.

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolEvent;
use l2x_settlement::chain::abi::{L2xSettlement as S, L2xTestUSD as T};
use l2x_settlement::chain::{ChainError, L1User, RpcChain, Sent, address_of};
use l2x_settlement::devnode::DEV_KEYS;
use l2x_settlement::embedded::{CHAIN_ID, EmbeddedChain, FixedClock};

use crate::common::{SUBMITTER_KEY, anvil};

const USD: u64 = 1_000_000;

/// The same user's life on either chain: mint (the test token's open mint), approve, deposit
/// (which binds the account to the key's address), and the refusals.
fn a_users_life(user: &mut L1User) -> Sent {
    let (vault, alice) = (user.vault(), user.sender().unwrap());
    assert_eq!(alice, address_of(DEV_KEYS[1]).unwrap());
    let token = user.view(vault, &S::tokenCall {}).unwrap();
    assert!(user.is_test_token(token).unwrap());
    assert!(!user.is_test_token(vault).unwrap());
    user.send(token, &T::mintCall { to: alice, amount: U256::from(100 * USD) }).unwrap();
    user.send(token, &T::approveCall { spender: vault, amount: U256::from(60 * USD) }).unwrap();
    let sent = user.send(vault, &S::depositCall { account: 7, amount: 60 * USD }).unwrap();
    let queued = sent.logs.iter().find_map(|l| S::Queued::decode_log(l).ok()).unwrap();
    assert_eq!((queued.index, queued.account, queued.amount, queued.from), (1, 7, 60 * USD, alice));
    assert_eq!(user.view(vault, &S::ownersCall { account: 7 }).unwrap(), alice, "the key's address owns it");
    assert_eq!(user.view(token, &T::balanceOfCall { holder: alice }).unwrap(), U256::from(40 * USD));

    // Refusals in words, changing nothing: the contract's, and the token's.
    let err = user.send(vault, &S::claimCall {}).unwrap_err();
    assert!(matches!(&err, ChainError::Reverted { reason, .. } if reason == "NothingToClaim"), "{err}");
    let err = user.send(vault, &S::depositCall { account: 7, amount: 1 }).unwrap_err();
    assert!(err.to_string().contains("TokenTransferFailed"), "the allowance is spent: {err}");
    let too_much = T::transferCall { to: vault, amount: U256::from(41 * USD) };
    let err = user.send(token, &too_much).unwrap_err();
    assert!(err.to_string().contains("ERC20InsufficientBalance(sender"), "{err}");
    assert_eq!(user.view(vault, &S::queueLengthCall {}).unwrap(), 1);
    assert_eq!(user.view(token, &T::balanceOfCall { holder: alice }).unwrap(), U256::from(40 * USD));
    assert!(user.chain_time().unwrap() > 0);
    sent
}

#[test]
fn an_l1_user_sends_as_its_keys_address_on_the_embedded_chain() {
    let dir = tempfile::tempdir().unwrap();
    let chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    let mut user = L1User::embedded(chain, Some(address_of(DEV_KEYS[1]).unwrap()));
    assert_eq!(user.chain_id().unwrap(), CHAIN_ID);
    let deposit = a_users_life(&mut user);
    assert_eq!((deposit.tx_hash, deposit.block), (None, 3), "unsigned: no hash; a block per transaction");
    // Read-only: no key, or a chain opened read-only.
    drop(user);
    let reader = EmbeddedChain::read_only(dir.path()).unwrap();
    let mut user = L1User::embedded(reader, Some(Address::repeat_byte(1)));
    assert_eq!(user.view(user.vault(), &S::queueLengthCall {}).unwrap(), 1);
    assert!(matches!(user.send(user.vault(), &S::claimCall {}), Err(ChainError::Config(_))));
}

#[test]
fn an_l1_user_signs_with_its_key_on_a_node() {
    let node = anvil();
    let (vault, _) = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).unwrap();
    let mut user = L1User::rpc(node.url(), vault, Some(DEV_KEYS[1])).unwrap();
    assert_eq!(user.chain_id().unwrap(), 31_337);
    let deposit = a_users_life(&mut user);
    assert!(deposit.tx_hash.is_some() && deposit.gas_used > 21_000);
    let sent = user.send(vault, &S::depositCall { account: 8, amount: 0 }).unwrap_err();
    assert!(sent.to_string().contains("DepositTooSmall(minimum 1, got 0)"), "{sent}");
    // Refusals were dry runs: the key sent exactly its three transactions.
    let nonce = node.request("eth_getTransactionCount", serde_json::json!([user.sender(), "latest"])).unwrap();
    assert_eq!(nonce, serde_json::json!("0x3"));
    let mut reader = L1User::rpc(node.url(), vault, None).unwrap();
    assert_eq!(reader.sender(), None);
    assert_eq!(reader.view(vault, &S::queueLengthCall {}).unwrap(), 1);
    assert!(matches!(reader.send(vault, &S::claimCall {}), Err(ChainError::Config(_))));
    let not_a_vault = L1User::rpc(node.url(), Address::repeat_byte(9), None).unwrap_err();
    assert!(matches!(not_a_vault, ChainError::WrongContract { .. }), "{not_a_vault}");
}

/// Regression (the tx hash was dropped): a node's transaction's hash is told as soon as the
/// node accepted it, before its receipt, and is the receipt's; a dry run refused tells
/// nothing (nothing was sent).
#[test]
fn an_l1_users_tx_hash_is_told_as_soon_as_it_is_sent() {
    let node = anvil();
    let (vault, token) = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).unwrap();
    let mut user = L1User::rpc(node.url(), vault, Some(DEV_KEYS[1])).unwrap();
    let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let tell = told.clone();
    user.on_broadcast(move |tx| tell.lock().unwrap().push(tx));
    let alice = user.sender().unwrap();
    let sent = user.send(token, &T::mintCall { to: alice, amount: U256::from(USD) }).unwrap();
    assert_eq!(*told.lock().unwrap(), vec![sent.tx_hash.unwrap()]);
    user.send(vault, &S::claimCall {}).unwrap_err();
    assert_eq!(told.lock().unwrap().len(), 1, "a refused dry run sends nothing and tells nothing");
}

/// Regression (reads at "latest" one by one): `view_at` reads the state of the one block
/// `head` names, whatever was mined since.
#[test]
fn an_l1_users_reads_at_one_head_see_one_block() {
    let node = anvil();
    let (vault, token) = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).unwrap();
    let mut user = L1User::rpc(node.url(), vault, Some(DEV_KEYS[1])).unwrap();
    let head = user.head().unwrap();
    assert_eq!(head.time, user.chain_time().unwrap());
    let alice = user.sender().unwrap();
    user.send(token, &T::mintCall { to: alice, amount: U256::from(USD) }).unwrap();
    user.send(token, &T::approveCall { spender: vault, amount: U256::from(USD) }).unwrap();
    user.send(vault, &S::depositCall { account: 7, amount: USD }).unwrap();
    assert_eq!(user.view(vault, &S::queueLengthCall {}).unwrap(), 1);
    assert_eq!(user.view_at(head, vault, &S::queueLengthCall {}).unwrap(), 0, "the state at head");
    assert!(user.head().unwrap().block > head.block);
}

/// Regression (errors printed the whole RPC URL): a URL that does not parse is named by its
/// scheme and host only; its path, query and user (where API keys go) are not printed.
#[test]
fn an_rpc_urls_secret_parts_are_never_in_an_error() {
    for url in ["http://exa mple.com/v3/SECRET", "https://user:SECRET@[::1/v3/SECRET?key=SECRET", "SECRET"] {
        let errors = [
            L1User::rpc(url, Address::ZERO, None).unwrap_err().to_string(),
            L1User::rpc(url, Address::ZERO, Some(DEV_KEYS[1])).unwrap_err().to_string(),
            RpcChain::read_only(url, Address::ZERO).unwrap_err().to_string(),
            RpcChain::connect(url, SUBMITTER_KEY, Address::ZERO, 1).unwrap_err().to_string(),
        ];
        for err in errors {
            assert!(err.starts_with("the RPC URL ") && err.ends_with(" is not a URL"), "{err}");
            assert!(!err.contains("SECRET"), "{err}");
        }
    }
}

/// Regression (a timeout after the broadcast looked like nothing done, and a retry
/// deposited twice): a transaction the node accepted but did not mine in time is
/// `Unconfirmed`, naming the hash told when it was sent; it is still in the node's pool
/// and is mined later — exactly why it must not be sent again blindly.
#[test]
fn an_l1_users_unmined_transaction_is_unconfirmed_with_its_hash() {
    let node = anvil();
    let (vault, token) = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).unwrap();
    let mut user = L1User::rpc(node.url(), vault, Some(DEV_KEYS[1])).unwrap();
    let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let tell = told.clone();
    user.on_broadcast(move |tx| tell.lock().unwrap().push(tx));
    user.set_receipt_timeout(std::time::Duration::from_millis(300));
    node.request("evm_setAutomine", serde_json::json!([false])).unwrap();
    let alice = user.sender().unwrap();
    let err = user.send(token, &T::mintCall { to: alice, amount: U256::from(USD) }).unwrap_err();
    let sent = told.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(matches!(&err, ChainError::Unconfirmed { tx, .. } if *tx == sent[0]), "{err}");
    assert!(err.to_string().contains(&sent[0].to_string()) && !err.is_retryable(), "{err}");
    node.request("evm_mine", serde_json::json!([])).unwrap();
    let receipt = node.request("eth_getTransactionReceipt", serde_json::json!([sent[0]])).unwrap();
    assert_eq!(receipt["status"], serde_json::json!("0x1"), "it was mined after all: {receipt}");
    assert_eq!(user.view(token, &T::balanceOfCall { holder: alice }).unwrap(), U256::from(USD));
}
