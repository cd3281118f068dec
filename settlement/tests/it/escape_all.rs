//! Issue 16: "every account of a scenario with open positions, a liquidation and funding
//! escapes and the totals conserve" — one test body, run on anvil and on the embedded chain
//! (the same bytecode). A seeded history of two instruments and 30 accounts (thin ones among
//! them, oracle shocks that liquidate them, funding, fees, withdrawals) is funded through the
//! vault by 30 owners and the fund's depositor and committed batch by batch; then the
//! operator stops, a queued deposit waits out the deadline, anyone freezes, and every leaf
//! escapes with its exact equity. The equities sum to what the vault holds for L2
//! (conservation: trading, fees, funding and liquidations create and lose nothing), the
//! escapes pay out exactly that, and after every claim the vault holds 0.
//!
//! The base chain is a small trait: the embedded chain sends as anyone; on anvil the test
//! impersonates each owner (`anvil_impersonateAccount`) and moves the clock with
//! `evm_increaseTime`, and the submitter commits through [`RpcChain`], the real path.

use alloy::primitives::{Address, Bytes, I256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use l2x_engine::StateMachine;
use l2x_risk::Ledger;
use l2x_settlement::batch::Batch;
use l2x_settlement::chain::abi::{L2xSettlement as S, L2xTestUSD as T};
use l2x_settlement::chain::{Chain, QueueReader, RpcChain, WEEK, submitter_of};
use l2x_settlement::devnode::Anvil;
use l2x_settlement::embedded::{EmbeddedChain, FixedClock, recipient_key};
use l2x_settlement::epoch::{self, Epoch, Epochs, Policy};
use l2x_settlement::leaf::AccountLeaf;
use l2x_settlement::market::{self, Market};
use l2x_types::{Command, Holder, InstrumentId, L1Address, Seq, Sequenced, Timestamp};
use serde_json::json;

use crate::common::{SUBMITTER_KEY, anvil};

/// The fund's depositor, and the depositor of the deposit left waiting.
const CAROL: Address = Address::repeat_byte(0xc0);
/// Whoever freezes: anyone.
const DAVE: Address = Address::repeat_byte(0xd0);
/// The fee account's leaf key; the fund's is the one after it.
const FEE_ACCOUNT: u64 = u64::MAX - 1;

/// The L1 owner of trading account `a`.
fn owner(a: u64) -> Address {
    Address::repeat_byte(0x80 | u8::try_from(a).unwrap())
}

/// What the test does on a base chain. Every call that fails panics: each is expected to
/// succeed.
trait Base {
    fn vault(&self) -> Address;
    fn token(&self) -> Address;
    /// Where the fee account and the fund escape to.
    fn recipient(&self) -> Address;
    fn send(&mut self, from: Address, to: Address, data: Vec<u8>);
    fn call(&mut self, to: Address, data: Vec<u8>) -> Bytes;
    fn advance_time(&mut self, secs: u64);
    /// The submitter's chain, for commits and the queue.
    fn chain(&mut self) -> &mut dyn Submitted;
}

/// The chain the submitter commits to and reads the queue from.
trait Submitted: Chain + QueueReader {}
impl<T: Chain + QueueReader> Submitted for T {}

fn view<C: SolCall>(base: &mut dyn Base, to: Address, call: &C) -> C::Return {
    C::abi_decode_returns(&base.call(to, call.abi_encode())).unwrap()
}

fn send<C: SolCall>(base: &mut dyn Base, from: Address, to: Address, call: &C) {
    base.send(from, to, call.abi_encode());
}

impl Base for EmbeddedChain {
    fn vault(&self) -> Address {
        self.address()
    }
    fn token(&self) -> Address {
        EmbeddedChain::token(self)
    }
    fn recipient(&self) -> Address {
        recipient_key().1
    }
    fn send(&mut self, from: Address, to: Address, data: Vec<u8>) {
        self.transact(from, to, data).unwrap();
    }
    fn call(&mut self, to: Address, data: Vec<u8>) -> Bytes {
        EmbeddedChain::call(self, to, data).unwrap()
    }
    fn advance_time(&mut self, secs: u64) {
        EmbeddedChain::advance_time(self, secs).unwrap();
    }
    fn chain(&mut self) -> &mut dyn Submitted {
        self
    }
}

/// Anvil, the vault deployed on it, the submitter's RPC chain, and a provider without a
/// wallet (anvil signs for the addresses it impersonates).
struct OnAnvil {
    node: Anvil,
    chain: RpcChain,
    token: Address,
    provider: DynProvider,
    runtime: tokio::runtime::Runtime,
}

impl OnAnvil {
    fn deploy() -> OnAnvil {
        let node = anvil();
        let (vault, token) = RpcChain::deploy_local(node.url(), SUBMITTER_KEY).unwrap();
        let chain = RpcChain::connect(node.url(), SUBMITTER_KEY, vault, 1).unwrap();
        let provider = ProviderBuilder::new().connect_http(node.url().parse().unwrap()).erased();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        OnAnvil { node, chain, token, provider, runtime }
    }
}

impl Base for OnAnvil {
    fn vault(&self) -> Address {
        self.chain.address()
    }
    fn token(&self) -> Address {
        self.token
    }
    fn recipient(&self) -> Address {
        submitter_of(SUBMITTER_KEY).unwrap()
    }
    fn send(&mut self, from: Address, to: Address, data: Vec<u8>) {
        // Anyone, as on the embedded chain: anvil signs for an impersonated address.
        self.node.request("anvil_impersonateAccount", json!([from])).unwrap();
        self.node.request("anvil_setBalance", json!([from, "0xde0b6b3a7640000"])).unwrap();
        let tx = TransactionRequest::default().from(from).to(to).input(Bytes::from(data).into());
        let receipt = self
            .runtime
            .block_on(async { self.provider.send_transaction(tx).await.unwrap().get_receipt().await })
            .unwrap();
        assert!(receipt.status(), "mined and succeeded: {receipt:?}");
    }
    fn call(&mut self, to: Address, data: Vec<u8>) -> Bytes {
        let answer = self.node.request("eth_call", json!([{ "to": to, "data": Bytes::from(data) }, "latest"])).unwrap();
        serde_json::from_value(answer).unwrap()
    }
    fn advance_time(&mut self, secs: u64) {
        self.node.request("evm_increaseTime", json!([secs])).unwrap();
        self.node.request("evm_mine", json!([])).unwrap();
    }
    fn chain(&mut self) -> &mut dyn Submitted {
        &mut self.chain
    }
}

/// Funds the history's accounts through the vault, trades, commits every batch; returns
/// the state, the epochs (their tree) and the last batch's market state.
fn trade_and_commit(base: &mut dyn Base) -> (StateMachine, Epochs, Vec<Market>) {
    let (vault, token) = (base.vault(), base.token());
    let history = crate::common::stream(7, 3_000);
    // Every operator deposit of the history becomes the same deposit on L1, in order.
    for c in &history {
        if let Command::Deposit { to, amount } = c.cmd {
            let amount = u64::try_from(amount.0).unwrap();
            let (from, call) = match to {
                Holder::Account(a) => (owner(a.0), S::depositCall { account: a.0, amount }.abi_encode()),
                _ => (CAROL, S::depositInsuranceCall { amount }.abi_encode()),
            };
            send(base, from, token, &T::mintCall { to: from, amount: U256::from(amount) });
            send(base, from, token, &T::approveCall { spender: vault, amount: U256::MAX });
            base.send(from, vault, call);
        }
    }
    let chain = base.chain();
    let (chain_id, contract, token_address) = chain.binding().unwrap();
    let block = chain.confirmed_block(1).unwrap().unwrap();
    let queued = chain.queue_length(block).unwrap();
    let mut cmds = vec![Command::L1Bind {
        chain_id,
        contract: L1Address(contract.into_array()),
        token: L1Address(token_address.into_array()),
    }];
    cmds.extend((1..=queued).map(|i| chain.entry(i, block).unwrap().command().unwrap()));
    cmds.extend(history.iter().filter(|c| !matches!(c.cmd, Command::Deposit { .. })).map(|c| c.cmd.clone()));
    // One more command, long after the rest, closes the last epoch.
    cmds.push(Command::Funding { instrument: InstrumentId(1) });

    let mut state = StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(Policy { max_ms: 1_000, max_fills: 0 });
    let (mut events, mut liquidations, mut batches) = (Vec::new(), 0, 0);
    let mut last: Option<Epoch> = None;
    let n = cmds.len() as u64;
    for (k, cmd) in cmds.into_iter().enumerate() {
        let seq = k as u64 + 1;
        let ms = if seq == n { n + 2_000 } else { seq } * 20;
        let c = Sequenced { seq: Seq(seq), ts: Timestamp(1_000_000_000 + ms * 1_000_000), cmd };
        events.clear();
        state.apply(&c, &mut events);
        liquidations += events.iter().filter(|e| matches!(e, l2x_types::Event::Liquidation { .. })).count();
        if let Some(e) = epochs.on_command(&c, &events, &state) {
            chain.commit(&Batch::of(&e)).unwrap();
            batches += 1;
            last = Some(e);
        }
    }
    let last = last.unwrap();
    assert_eq!(last.last_seq, n, "the last command closed a committed batch");
    assert!(liquidations > 0 && batches > 10, "{liquidations} liquidations over {batches} batches");
    (state, epochs, last.markets)
}

fn everyone_escapes(base: &mut dyn Base) {
    let (vault, token) = (base.vault(), base.token());
    let (state, epochs, markets) = trade_and_commit(base);
    let leaves = epoch::all_leaves(&state);
    assert!(leaves.iter().filter(|l| !l.positions.is_empty()).count() > 5, "open positions at the end");

    // The operator stops; a deposit waits past the deadline; anyone freezes.
    send(base, CAROL, token, &T::mintCall { to: CAROL, amount: U256::from(500_000_000) });
    send(base, CAROL, vault, &S::depositCall { account: 31, amount: 500_000_000 });
    base.advance_time(WEEK + 1);
    send(base, DAVE, vault, &S::freezeCall {});
    let held = view(base, vault, &S::l2TotalCall {});
    let equities: Vec<i128> = leaves.iter().map(|l| market::equity(l, &markets).unwrap()).collect();
    assert_eq!(I256::try_from(equities.iter().sum::<i128>()).unwrap(), I256::from_raw(held), "conservation");

    // The traders escape, then (after their delay) the fee account and the fund.
    let escape = |base: &mut dyn Base, leaf: &AccountLeaf, equity: i128, payee: Address| {
        let call = S::escapeCall {
            leaf: leaf.into(),
            siblings: epochs.tree().prove(leaf.account).siblings,
            markets: markets.iter().map(S::Market::from).collect(),
        };
        let before = view(base, vault, &S::claimsCall { holder: payee }).amount;
        send(base, payee, vault, &call);
        let credited = view(base, vault, &S::claimsCall { holder: payee }).amount - before;
        assert_eq!(i128::try_from(credited).unwrap(), equity.max(0), "account {}", leaf.account);
        U256::from(credited)
    };
    let mut paid = U256::ZERO;
    for (leaf, &equity) in leaves.iter().zip(&equities).filter(|(l, _)| l.account < FEE_ACCOUNT) {
        paid += escape(base, leaf, equity, owner(leaf.account));
    }
    base.advance_time(WEEK);
    let recipient = base.recipient();
    for (leaf, &equity) in leaves.iter().zip(&equities).filter(|(l, _)| l.account >= FEE_ACCOUNT) {
        paid += escape(base, leaf, equity, recipient);
    }
    assert_eq!(paid, held, "the escapes pay out exactly what L2 held");

    // The queued deposit comes back; everyone claims; the vault is empty, to the unit.
    send(base, DAVE, vault, &S::refundQueuedCall { count: 10 });
    for who in (1..=30).map(owner).chain([CAROL, recipient]) {
        if view(base, vault, &S::claimsCall { holder: who }).amount > 0 {
            send(base, who, vault, &S::claimCall {});
        }
    }
    assert_eq!(view(base, token, &T::balanceOfCall { holder: vault }), U256::ZERO);
}

#[test]
fn a_liquidation_history_escapes_in_full_on_the_embedded_chain() {
    let dir = tempfile::tempdir().unwrap();
    everyone_escapes(&mut EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap());
}

#[test]
fn a_liquidation_history_escapes_in_full_on_anvil() {
    everyone_escapes(&mut OnAnvil::deploy());
}
