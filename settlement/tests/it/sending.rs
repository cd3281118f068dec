//! How the submitter's commits get into blocks on a real node (anvil, mining switched off so
//! that the test decides when blocks come): a commit returns only with its confirmations; a
//! stuck one is replaced at a higher fee and lands once; a gas spike is outbid up to the
//! policy's cap and waited out above it; a dropped one is sent again; one sent before a
//! restart is replaced, not doubled.
//!
//! The tests wait for conditions on the node (the pool's contents, a thread finishing),
//! never for a length of time.

use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use l2x_risk::Ledger;
use l2x_settlement::batch::Batch;
use l2x_settlement::chain::{Chain, ChainError, RpcChain, SendPolicy};
use l2x_settlement::devnode::Anvil;
use l2x_settlement::epoch::{Epochs, Policy};

use crate::common::{SUBMITTER_KEY, chain_stream};

const GWEI: u128 = 1_000_000_000;

/// The first `n` batches of the seeded stream.
fn batches(n: usize) -> Vec<Batch> {
    let mut state = l2x_engine::StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(Policy { max_ms: 400, max_fills: 0 });
    let (mut closed, mut events) = (Vec::new(), Vec::new());
    for cmd in &chain_stream(4, 1_500) {
        events.clear();
        state.apply(cmd, &mut events);
        closed.extend(epochs.on_command(cmd, &events, &state).iter().map(Batch::of));
        if closed.len() >= n {
            break;
        }
    }
    closed.truncate(n);
    closed
}

/// A node the test drives: raw JSON-RPC calls for mining, fees and the pool.
struct Node {
    anvil: Anvil,
    rt: tokio::runtime::Runtime,
    provider: DynProvider,
}

impl Node {
    fn start(args: &[&str]) -> Node {
        let anvil = Anvil::spawn_with(args).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let provider = ProviderBuilder::new().connect_http(anvil.url().parse().unwrap()).erased();
        Node { anvil, rt, provider }
    }

    fn raw(&self, method: &'static str, params: serde_json::Value) -> serde_json::Value {
        self.rt.block_on(self.provider.raw_request(method.into(), params)).unwrap()
    }

    fn mine(&self) {
        self.raw("evm_mine", serde_json::json!([]));
    }

    fn set_next_base_fee(&self, wei: u128) {
        self.raw("anvil_setNextBlockBaseFeePerGas", serde_json::json!([format!("{wei:#x}")]));
    }

    /// The pending transactions in the pool: (hash, nonce, max fee per gas).
    fn pool(&self) -> Vec<(B256, u64, u128)> {
        let content = self.raw("txpool_content", serde_json::json!([]));
        let mut txs = Vec::new();
        for by_nonce in content["pending"].as_object().into_iter().flat_map(|m| m.values()) {
            for tx in by_nonce.as_object().into_iter().flat_map(|m| m.values()) {
                let hex = |k: &str| tx[k].as_str().map(|s| s.trim_start_matches("0x").to_string()).unwrap();
                txs.push((
                    tx["hash"].as_str().unwrap().parse().unwrap(),
                    u64::from_str_radix(&hex("nonce"), 16).unwrap(),
                    u128::from_str_radix(&hex("maxFeePerGas"), 16).unwrap(),
                ));
            }
        }
        txs
    }

    /// Waits until the pool holds exactly one transaction satisfying `want`, and returns it.
    fn until_pool(&self, what: &str, want: impl Fn(&(B256, u64, u128)) -> bool) -> (B256, u64, u128) {
        until(what, || {
            let pool = self.pool();
            (pool.len() == 1 && want(&pool[0])).then(|| pool[0])
        })
    }

    fn nonce(&self, who: Address) -> u64 {
        self.rt.block_on(async { self.provider.get_transaction_count(who).await }).unwrap()
    }

    fn connect(&self, policy: SendPolicy, confirmations: u64) -> RpcChain {
        let address = RpcChain::deploy_local(self.anvil.url(), SUBMITTER_KEY).map(|(c, _)| c);
        let mut chain = RpcChain::connect(self.anvil.url(), SUBMITTER_KEY, address.unwrap(), confirmations).unwrap();
        chain.set_policy(policy);
        chain
    }
}

#[allow(clippy::disallowed_methods, reason = "a failing condition is reported after a minute, not awaited forever")]
/// Polls `check` until it gives a value (one minute at most, then the test fails naming
/// `what`).
fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "still waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn submitter() -> Address {
    SUBMITTER_KEY.parse::<PrivateKeySigner>().unwrap().address()
}

fn fast(replace_after_ms: u64) -> SendPolicy {
    SendPolicy {
        poll: Duration::from_millis(20),
        replace_after: Duration::from_millis(replace_after_ms),
        ..SendPolicy::default()
    }
}

/// Deploys with automine, then switches mining off: the contract is there, commits wait.
fn node_without_mining() -> Node {
    let node = Node::start(&[]);
    node.raw("evm_setAutomine", serde_json::json!([false]));
    node
}

fn deploy_then_stop_mining(node: &Node, policy: SendPolicy) -> RpcChain {
    node.raw("evm_setAutomine", serde_json::json!([true]));
    let chain = node.connect(policy, 1);
    node.raw("evm_setAutomine", serde_json::json!([false]));
    chain
}

#[test]
fn a_commit_returns_only_with_its_confirmations() {
    let node = Node::start(&["--block-time", "1"]);
    let mut chain = node.connect(fast(60_000), 3);
    let b = &batches(1)[0];
    let hash = chain.commit(b).unwrap();
    let receipt = node.rt.block_on(node.provider.get_transaction_receipt(hash)).unwrap().unwrap();
    let head = node.rt.block_on(node.provider.get_block_number()).unwrap();
    assert!(head >= receipt.block_number.unwrap() + 2, "head {head}, receipt in {:?}", receipt.block_number);
    assert_eq!(chain.last_committed().unwrap(), (1, b.header.new_root));
}

#[test]
fn a_stuck_commit_is_replaced_at_a_higher_fee_and_lands_once() {
    let node = node_without_mining();
    let mut chain = deploy_then_stop_mining(&node, fast(200));
    let nonce = node.nonce(submitter());
    let b = batches(1).remove(0);
    let root = b.header.new_root;
    let committing = std::thread::spawn(move || chain.commit(&b).map(|hash| (hash, chain)));
    let (first, n, fee) = node.until_pool("the commit in the pool", |_| true);
    assert_eq!(n, nonce);
    // No block comes: the submitter replaces it, same nonce, at least 10 % more.
    let (_, n2, fee2) = node.until_pool("its replacement", |t| t.0 != first);
    assert_eq!(n2, nonce);
    assert!(fee2 * 10 >= fee * 11, "{fee} → {fee2}");
    node.mine();
    let (landed, mut chain) = committing.join().unwrap().unwrap();
    assert_ne!(landed, first, "the replacement landed, not the stuck one");
    assert_eq!(node.nonce(submitter()), nonce + 1, "one transaction landed");
    assert_eq!(chain.last_committed().unwrap(), (1, root));
    node.mine();
    assert!(node.pool().is_empty());
}

#[test]
fn a_gas_spike_is_outbid_up_to_the_cap_and_waited_out_above_it() {
    let node = node_without_mining();
    let cap = 20 * GWEI;
    let policy = SendPolicy { max_fee_per_gas: cap, ..fast(100) };
    let mut chain = deploy_then_stop_mining(&node, policy);
    let nonce = node.nonce(submitter());
    let bs = batches(2);

    // Sent at the quiet price, then the base fee jumps to 15 gwei: the block leaves the
    // commit out, the submitter re-prices it up to its cap, and the next block takes it.
    let b = bs[0].clone();
    let committing = std::thread::spawn(move || chain.commit(&b).map(|_| chain));
    let (first, _, quiet) = node.until_pool("the commit in the pool", |_| true);
    assert!(quiet < 15 * GWEI);
    node.set_next_base_fee(15 * GWEI);
    node.mine();
    assert_eq!(node.nonce(submitter()), nonce, "below the base fee: left out");
    let (_, _, fee) = node.until_pool("the commit re-priced for the spike", |t| t.0 != first);
    assert_eq!(fee, cap, "2 × base + tip is above the cap: the cap");
    node.set_next_base_fee(15 * GWEI);
    node.mine();
    let mut chain = committing.join().unwrap().unwrap();
    assert_eq!(node.nonce(submitter()), nonce + 1);
    assert_eq!(chain.last_committed().unwrap(), (1, bs[0].header.new_root));

    // A spike above the cap: nothing is sent; the commit gives up for now (after a second).
    node.set_next_base_fee(50 * GWEI);
    node.mine();
    chain.set_policy(SendPolicy { give_up_after: Duration::from_secs(1), ..policy });
    assert!(matches!(chain.commit(&bs[1]), Err(ChainError::Timeout { .. })));
    assert!(node.pool().is_empty(), "nothing sent above the cap");
    // It passes: the next commit goes through.
    chain.set_policy(policy);
    node.set_next_base_fee(5 * GWEI);
    node.mine();
    let b = bs[1].clone();
    let committing = std::thread::spawn(move || chain.commit(&b).map(|_| chain));
    node.until_pool("the commit after the spike", |_| true);
    node.mine();
    let mut chain = committing.join().unwrap().unwrap();
    assert_eq!(node.nonce(submitter()), nonce + 2);
    assert_eq!(chain.last_committed().unwrap(), (2, bs[1].header.new_root));
}

#[test]
fn a_dropped_commit_is_sent_again() {
    let node = node_without_mining();
    let mut chain = deploy_then_stop_mining(&node, fast(60_000));
    let b = batches(1).remove(0);
    let root = b.header.new_root;
    let committing = std::thread::spawn(move || chain.commit(&b).map(|_| chain));
    let (hash, _, _) = node.until_pool("the commit in the pool", |_| true);
    node.raw("anvil_dropTransaction", serde_json::json!([hash]));
    node.until_pool("the commit sent again", |_| true);
    node.mine();
    let mut chain = committing.join().unwrap().unwrap();
    assert_eq!(chain.last_committed().unwrap(), (1, root));
}

#[test]
fn a_commit_sent_before_a_restart_is_replaced_not_doubled() {
    let node = node_without_mining();
    let policy = SendPolicy { give_up_after: Duration::from_millis(500), ..fast(60_000) };
    let mut chain = deploy_then_stop_mining(&node, policy);
    let address = chain.address();
    let nonce = node.nonce(submitter());
    let bs = batches(2);
    // The first process sends batch 1 and stops waiting (it dies, say): the transaction
    // stays in the pool.
    assert!(matches!(chain.commit(&bs[0]), Err(ChainError::Timeout { .. })));
    drop(chain);
    let (stale, _, stale_fee) = node.until_pool("the first commit in the pool", |_| true);
    // A new process: it does not know that transaction's fee; it outbids it, same nonce.
    let mut chain = RpcChain::connect(node.anvil.url(), SUBMITTER_KEY, address, 1).unwrap();
    chain.set_policy(fast(60_000));
    let b = bs[0].clone();
    let committing = std::thread::spawn(move || chain.commit(&b).map(|_| chain));
    let (_, n, fee) = node.until_pool("the replacement", |t| t.0 != stale);
    assert_eq!(n, nonce);
    assert!(fee > stale_fee);
    node.mine();
    let mut chain = committing.join().unwrap().unwrap();
    assert_eq!(node.nonce(submitter()), nonce + 1, "one of the two landed");
    assert_eq!(chain.last_committed().unwrap(), (1, bs[0].header.new_root));
    // And the submitter goes on with the next batch at the next nonce.
    node.raw("evm_setAutomine", serde_json::json!([true]));
    chain.commit(&bs[1]).unwrap();
    assert_eq!(chain.last_committed().unwrap(), (2, bs[1].header.new_root));
}
