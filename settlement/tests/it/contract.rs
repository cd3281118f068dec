//! The settlement contract on a real Ethereum node (anvil, installed by
//! `settlement/contracts/package.json`), through the Rust code: the committed artifact is
//! deployed (`RpcChain::deploy`), the batches of real epochs are committed, every refusal of `commitBatch` is
//! checked, and the Rust tree's proofs verify on chain.

use alloy::network::EthereumWallet;
use alloy::primitives::B256;
use alloy::providers::ProviderBuilder;
use alloy::signers::local::PrivateKeySigner;
use l2x_engine::StateMachine;
use l2x_risk::Ledger;
use l2x_settlement::batch::Batch;
use l2x_settlement::epoch::{self, Epoch, Epochs, Policy};

use l2x_settlement::chain::abi::L2xSettlement;
use l2x_settlement::chain::{Carrier, Chain, PostedError, RpcChain, commit_call};

use crate::common::{OTHER_KEY, SUBMITTER_KEY, anvil};

#[tokio::test(flavor = "current_thread")]
async fn the_contract_commits_batches_refuses_bad_ones_and_verifies_rust_proofs() {
    let node = anvil();
    // The committed artifact, deployed as the submitter would (RpcChain blocks on a runtime
    // of its own: off this test's).
    let url = node.url().to_string();
    let address = tokio::task::spawn_blocking(move || RpcChain::deploy_local(&url, SUBMITTER_KEY).map(|(c, _)| c))
        .await
        .unwrap()
        .unwrap();
    let submitter: PrivateKeySigner = SUBMITTER_KEY.parse().unwrap();
    let provider =
        ProviderBuilder::new().wallet(EthereumWallet::from(submitter)).connect_http(node.url().parse().unwrap());
    let contract = L2xSettlement::new(address, &provider);

    // Real epochs of a seeded stream: commit the first five.
    let cmds = crate::common::chain_stream(4, 1_500);
    let mut state = StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(Policy { max_ms: 400, max_fills: 0 });
    let mut closed: Vec<Epoch> = Vec::new();
    let mut events = Vec::new();
    for cmd in &cmds {
        events.clear();
        state.apply(cmd, &mut events);
        closed.extend(epochs.on_command(cmd, &events, &state));
        if closed.len() == 5 {
            break;
        }
    }
    assert_eq!(closed.len(), 5);
    let call_of = |b: &Batch| commit_call(b).unwrap();
    let mut transactions = Vec::new();
    for e in &closed {
        let receipt = contract.call_builder(&call_of(&Batch::of(e))).send().await.unwrap().get_receipt().await.unwrap();
        assert!(receipt.status(), "batch {} committed", e.index);
        assert_eq!(contract.lastRoot().call().await.unwrap(), e.root);
        transactions.push(receipt.transaction_hash);
    }
    assert_eq!(contract.lastIndex().call().await.unwrap(), 5);

    // What each batch posted, read back from its log and its transaction's input; nothing
    // for a batch not committed.
    let (url, batches) = (node.url().to_string(), closed.iter().map(Batch::of).collect());
    tokio::task::spawn_blocking(move || read_back(&url, address, batches, transactions)).await.unwrap();

    // Refusals: the same batch again, a wrong previous root, data that is not what was
    // hashed, and anyone but the submitter (calls made by hand: a batch file that says
    // these things does not load).
    let again = call_of(&Batch::of(&closed[4]));
    let err = contract.call_builder(&again).call().await.unwrap_err();
    let e = err.as_decoded_error::<L2xSettlement::WrongIndex>().unwrap();
    assert_eq!((e.expected, e.got), (6, 5));
    let mut next = again.clone();
    next.h.index = 6;
    let err = contract.call_builder(&next).call().await.unwrap_err();
    let e = err.as_decoded_error::<L2xSettlement::WrongPreviousRoot>().unwrap();
    assert_eq!(e.expected, closed[4].root);
    let mut fine = next.clone();
    fine.h.prevRoot = closed[4].root;
    let mut tampered = fine.clone();
    tampered.data = [&tampered.data[..], &[0]].concat().into();
    let err = contract.call_builder(&tampered).call().await.unwrap_err();
    assert!(err.as_decoded_error::<L2xSettlement::WrongDataHash>().is_some(), "{err}");
    let other: PrivateKeySigner = OTHER_KEY.parse().unwrap();
    let other_provider =
        ProviderBuilder::new().wallet(EthereumWallet::from(other)).connect_http(node.url().parse().unwrap());
    let as_other = L2xSettlement::new(address, &other_provider);
    let err = as_other.call_builder(&fine).call().await.unwrap_err();
    assert!(err.as_decoded_error::<L2xSettlement::NotSubmitter>().is_some(), "{err}");
    assert_eq!(contract.lastIndex().call().await.unwrap(), 5, "nothing was committed by the refusals");

    // The Rust tree's proofs verify against the committed root; the contract hashes leaves
    // exactly as Rust does; a changed leaf or another batch's root does not verify.
    let tree = epochs.tree();
    let leaves = epoch::all_leaves(&state);
    assert!(leaves.len() > 10);
    for leaf in leaves.iter().step_by(3) {
        let sol_leaf = L2xSettlement::AccountLeaf::from(leaf);
        assert_eq!(contract.leafHash(sol_leaf.clone()).call().await.unwrap(), leaf.hash());
        let siblings: Vec<B256> = tree.prove(leaf.account).siblings;
        assert!(contract.verifyLeaf(5, sol_leaf.clone(), siblings.clone()).call().await.unwrap(), "{}", leaf.account);
        let mut wrong = sol_leaf.clone();
        wrong.collateral += 1;
        assert!(!contract.verifyLeaf(5, wrong, siblings.clone()).call().await.unwrap());
        assert!(!contract.verifyLeaf(0, sol_leaf, siblings).call().await.unwrap());
    }
}

/// Reads what `batches` posted back from the node (their commits in `transactions`), as
/// sent; and nothing for the batch after them.
fn read_back(url: &str, address: alloy::primitives::Address, batches: Vec<Batch>, transactions: Vec<B256>) {
    let mut reader = RpcChain::read_only(url, address).unwrap();
    for (b, tx) in batches.iter().zip(transactions) {
        let posted = reader.posted(b.header.index).unwrap();
        assert!(crate::embedded::is_posted(&posted, b), "batch {}", b.header.index);
        assert_eq!(posted.carrier, Carrier::Calldata { transaction: Some(tx) });
    }
    let next = batches.len() as u64 + 1;
    assert_eq!(crate::embedded::not_posted(reader.posted(next).unwrap_err(), next), PostedError::NoLog);
}

/// Issue 14: a verifier comparing deployed code with the artifact must know where the
/// artifact's immutable references are. The code anvil holds after `RpcChain::deploy` is
/// the artifact's `deployedBytecode` with each immutable's value written at each range of
/// its `immutableReferences`, and differs from it nowhere else. The artifact is read here
/// as JSON, as a verifier reads it (docs/SETTLEMENT.md, "Contract").
#[tokio::test(flavor = "current_thread")]
async fn deployed_code_differs_from_the_artifact_only_at_its_immutable_references() {
    use alloy::primitives::{Address, U256};
    use alloy::providers::Provider;
    use l2x_settlement::chain::Config;
    let node = anvil();
    let url = node.url().to_string();
    let submitter = SUBMITTER_KEY.parse::<PrivateKeySigner>().unwrap().address();
    let token = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || RpcChain::deploy_test_usd(&url, SUBMITTER_KEY)).await.unwrap().unwrap()
    };
    // Every immutable a value of its own, so that a value written at another's place shows.
    let config = Config {
        submitter,
        token,
        minDeposit: 3,
        claimDelay: 4,
        forcedDeadline: 5,
        feeRecipient: Address::repeat_byte(0x66),
        insuranceRecipient: Address::repeat_byte(0x77),
        insuranceExitDelay: 8,
    };
    let address = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || RpcChain::deploy(&url, SUBMITTER_KEY, &config)).await.unwrap().unwrap()
    };
    let provider = ProviderBuilder::new().connect_http(node.url().parse().unwrap());
    let on_chain = provider.get_code_at(address).await.unwrap().to_vec();
    assert_eq!(on_chain, l2x_settlement::chain::runtime_code(&config).unwrap());
    let artifact: serde_json::Value = serde_json::from_str(l2x_settlement::chain::ARTIFACT).unwrap();
    let plain = alloy::hex::decode(artifact["deployedBytecode"].as_str().unwrap()).unwrap();
    let by_name = artifact["immutableReferences"].as_object().unwrap();
    let word = |v: u64| B256::from(U256::from(v));
    let values = [
        ("claimDelay", word(4)),
        ("feeRecipient", config.feeRecipient.into_word()),
        ("forcedDeadline", word(5)),
        ("insuranceExitDelay", word(8)),
        ("insuranceRecipient", config.insuranceRecipient.into_word()),
        ("minDeposit", word(3)),
        ("submitter", submitter.into_word()),
        ("token", token.into_word()),
    ];
    assert_eq!(by_name.keys().collect::<Vec<_>>(), values.iter().map(|(n, _)| n).collect::<Vec<_>>());
    let mut masked_plain = plain.clone();
    let mut masked_chain = on_chain.clone();
    for (name, value) in values {
        for r in by_name[name].as_array().unwrap() {
            let n = |k: &str| usize::try_from(r[k].as_u64().unwrap()).unwrap();
            let (start, len) = (n("start"), n("length"));
            assert_eq!(len, 32);
            assert_eq!(plain[start..start + len], [0u8; 32], "{name}: zero in the artifact");
            assert_eq!(on_chain[start..start + len], value[..], "{name} at {start}");
            masked_plain[start..start + len].fill(0);
            masked_chain[start..start + len].fill(0);
        }
    }
    assert_ne!(on_chain, plain, "the immutables are written into the code");
    assert_eq!(masked_chain, masked_plain, "and nothing else differs");
}
