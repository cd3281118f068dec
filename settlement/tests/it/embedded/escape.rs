//! The escape (issue 16, item 6) on the embedded chain: the contract values a leaf exactly
//! as Rust does; once frozen, every account — traders, the fee account, the insurance fund
//! after its delay — leaves with its equity at the last committed root, the deposits still
//! queued are refunded, and the vault ends holding exactly nothing.

use alloy::primitives::{Address, B256, I256, U256};
use alloy::sol_types::SolCall;
use l2x_engine::StateMachine;
use l2x_risk::Ledger;
use l2x_settlement::batch::Batch;
use l2x_settlement::chain::abi::{L2xSettlement as S, L2xTestUSD as T};
use l2x_settlement::chain::{Chain, QueueReader, WEEK};
use l2x_settlement::embedded::{EmbeddedChain, FixedClock, recipient_key};
use l2x_settlement::epoch::{self, Epoch, Epochs, Policy};
use l2x_settlement::leaf::{AccountLeaf, Position};
use l2x_settlement::market::{self, Market};
use l2x_types::{
    AccountId, ClientOrderId, Command, InstrumentId, L1Address, NewOrder, OrderType, Price, Qty, Seq, Sequenced, Side,
    StpMode, TimeInForce, Timestamp,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::vault::{send, view};

const ALICE: Address = Address::repeat_byte(0xa1);
const BOB: Address = Address::repeat_byte(0xb0);
const CAROL: Address = Address::repeat_byte(0xc0);
const USD: u64 = 1_000_000;

fn refusal<C: SolCall>(chain: &mut EmbeddedChain, from: Address, call: &C) -> String {
    let vault = chain.address();
    chain.transact(from, vault, call.abi_encode()).unwrap_err().to_string()
}

fn sol_markets(markets: &[Market]) -> Vec<S::Market> {
    markets.iter().map(S::Market::from).collect()
}

/// Issue 16: `equityOf` on chain is `settlement::market::equity` in Rust, exactly, on
/// random leaves and market states (sizes, costs and funding indexes of either sign, up to
/// the widths the ledger uses).
#[test]
fn the_contract_values_a_leaf_exactly_as_rust() {
    let dir = tempfile::tempdir().unwrap();
    let chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    for case in 0..300 {
        let n = rng.random_range(1..4u32);
        let markets: Vec<Market> = (0..n)
            .map(|i| Market {
                instrument: i,
                mark: rng.random_range(1..i64::from(u32::MAX)),
                fundingIndex: rng.random_range(-(1i128 << 80)..(1i128 << 80)),
                tickValue: rng.random_range(1..1_000_000),
            })
            .collect();
        let positions = (0..rng.random_range(0..=n))
            .map(|i| Position {
                instrument: i,
                size: rng.random_range(-(1i64 << 40)..(1i64 << 40)),
                cost: rng.random_range(-(1i128 << 100)..(1i128 << 100)),
                fundingIndex: rng.random_range(-(1i128 << 80)..(1i128 << 80)),
            })
            .collect();
        let leaf = AccountLeaf { account: case, collateral: rng.random_range(i64::MIN / 2..i64::MAX / 2), positions };
        let rust = market::equity(&leaf, &markets).unwrap();
        let call = S::equityOfCall { leaf: (&leaf).into(), markets: sol_markets(&markets) };
        let on_chain = view(&chain, chain.address(), &call);
        assert_eq!(on_chain, I256::try_from(rust).unwrap(), "case {case}: {leaf:?}");
    }
    // A position on an instrument the market state lacks, or one without a mark.
    let leaf = AccountLeaf {
        account: 7,
        collateral: 1,
        positions: vec![Position { instrument: 1, size: 1, cost: 0, fundingIndex: 0 }],
    };
    let markets = [Market { instrument: 0, mark: 5, fundingIndex: 0, tickValue: 1 }];
    let call = S::equityOfCall { leaf: (&leaf).into(), markets: sol_markets(&markets) };
    let err = chain.call(chain.address(), call.abi_encode()).unwrap_err();
    assert!(err.to_string().contains("Unlisted(account 7, instrument 1)"), "{err}");
}

fn order(account: u64, side: Side, price: i64, qty: i64) -> Command {
    Command::NewOrder(NewOrder {
        account: AccountId(account),
        cid: ClientOrderId(1),
        instrument: InstrumentId(0),
        side,
        order_type: OrderType::Limit,
        price: Some(Price(price)),
        qty: Qty(qty),
        tif: TimeInForce::Gtc,
        expire_ts: None,
        post_only: false,
        reduce_only: false,
        stp: StpMode::CancelTaker,
    })
}

/// The exchange's life before the freeze: Alice and Bob deposit, the fund is funded, Alice
/// buys 20 lots from Bob at 1,000, the mark moves to 1,080, funding accrues; every batch is
/// committed. Returns the state and the tree after the last batch, and its market state.
fn trade_and_commit(chain: &mut EmbeddedChain) -> (StateMachine, Epochs, Vec<Market>) {
    let (vault, token) = (chain.address(), chain.token());
    for (who, usd) in [(ALICE, 50_000), (BOB, 50_000), (CAROL, 2_000)] {
        chain.mint_test_usd(who, U256::from(usd * USD)).unwrap();
        send(chain, who, token, &T::approveCall { spender: vault, amount: U256::MAX });
    }
    send(chain, ALICE, vault, &S::depositCall { account: 1, amount: 40_000 * USD });
    send(chain, BOB, vault, &S::depositCall { account: 2, amount: 30_000 * USD });
    send(chain, CAROL, vault, &S::depositInsuranceCall { amount: 1_000 * USD });
    let (chain_id, contract, token) = chain.binding().unwrap();
    let block = chain.confirmed_block(1).unwrap().unwrap();
    let mut cmds = crate::common::stream(1, 0)[..4].to_vec().into_iter().map(|c| c.cmd).collect::<Vec<_>>();
    cmds.insert(
        0,
        Command::L1Bind { chain_id, contract: L1Address(contract.into_array()), token: L1Address(token.into_array()) },
    );
    cmds.extend((1..=3).map(|i| chain.entry(i, block).unwrap().command().unwrap()));
    cmds.extend([
        order(2, Side::Sell, 1_000, 20),
        order(1, Side::Buy, 1_000, 20),
        Command::Oracle { instrument: InstrumentId(0), price: Price(1_080) },
        Command::Funding { instrument: InstrumentId(0) },
    ]);
    let mut state = StateMachine::with_ledger(Ledger::default());
    let mut epochs = Epochs::new(Policy { max_ms: 0, max_fills: 0 });
    let mut events = Vec::new();
    let mut last: Option<Epoch> = None;
    let n = cmds.len() as u64;
    for (k, cmd) in cmds.into_iter().enumerate() {
        let c = Sequenced { seq: Seq(k as u64 + 1), ts: Timestamp((k as u64 + 1) * 3_600_000_000_000), cmd };
        events.clear();
        state.apply(&c, &mut events);
        if let Some(e) = epochs.on_command(&c, &events, &state) {
            chain.commit(&Batch::of(&e)).unwrap();
            last = Some(e);
        }
    }
    let last = last.unwrap();
    assert_eq!(last.last_seq, n, "the last command closed a committed batch");
    (state, epochs, last.markets)
}

/// Issue 16: once frozen, everyone leaves through L1 alone. Each account escapes with its
/// proof against the last root and the market state committed with it, paid its equity to
/// the unit (the exact figure Rust computes); the fee account pays its recipient, the fund
/// only after its delay; nobody escapes twice, with a wrong proof or market state, or for
/// someone else; the queued deposit is refunded; after every claim the vault holds 0.
#[test]
fn every_account_escapes_with_its_exact_equity_and_the_vault_ends_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = EmbeddedChain::open_with_clock(dir.path(), FixedClock::TESTS).unwrap();
    let vault = chain.address();
    let (state, epochs, markets) = trade_and_commit(&mut chain);
    let leaves: Vec<AccountLeaf> = epoch::all_leaves(&state);
    let proof = |leaf: &AccountLeaf| epochs.tree().prove(leaf.account).siblings;
    let escape = |leaf: &AccountLeaf, siblings: Vec<B256>, markets: &[Market]| S::escapeCall {
        leaf: leaf.into(),
        siblings,
        markets: sol_markets(markets),
    };
    let alice = leaves.iter().find(|l| l.account == 1).unwrap();
    assert!(!alice.positions.is_empty(), "Alice holds a position");
    assert!(refusal(&mut chain, ALICE, &escape(alice, proof(alice), &markets)).contains("NotFrozen"));

    // Carol's deposit waits past the deadline: anyone freezes.
    send(&mut chain, CAROL, vault, &S::depositCall { account: 3, amount: 500 * USD });
    chain.advance_time(WEEK + 1).unwrap();
    send(&mut chain, CAROL, vault, &S::freezeCall {});
    let held = view(&chain, vault, &S::l2TotalCall {});
    assert_eq!(held, U256::from(71_000 * USD), "what the batches credited");

    // Refusals, each changing nothing.
    let mut moved = markets.clone();
    moved[0].mark += 1;
    assert!(refusal(&mut chain, ALICE, &escape(alice, proof(alice), &moved)).contains("WrongMarketState"));
    let mut richer = alice.clone();
    richer.collateral += 1;
    assert!(refusal(&mut chain, ALICE, &escape(&richer, proof(alice), &markets)).contains("BadProof(account 1)"));
    assert!(refusal(&mut chain, BOB, &escape(alice, proof(alice), &markets)).contains("NotOwner(account 1"));
    let fund = leaves.iter().find(|l| l.account == u64::MAX).unwrap();
    let recipient = recipient_key().1;
    assert!(refusal(&mut chain, recipient, &escape(fund, proof(fund), &markets)).contains("InsuranceNotYet"));

    // Every leaf with anything in it escapes, paid its exact equity.
    chain.advance_time(WEEK).unwrap();
    let mut paid_total = U256::ZERO;
    for leaf in &leaves {
        let equity = market::equity(leaf, &markets).unwrap();
        if leaf.collateral == 0 && leaf.positions.is_empty() {
            continue;
        }
        let payee = match leaf.account {
            1 => ALICE,
            2 => BOB,
            _ => recipient, // the fee account's and the fund's recipient (the genesis's)
        };
        let before = view(&chain, vault, &S::claimsCall { holder: payee }).amount;
        // A leaf of collateral alone needs no market state: a wrong one does not stop it.
        let given = if leaf.positions.is_empty() { &moved } else { &markets };
        send(&mut chain, payee, vault, &escape(leaf, proof(leaf), given));
        let credited = view(&chain, vault, &S::claimsCall { holder: payee }).amount - before;
        assert_eq!(i128::try_from(credited).unwrap(), equity.max(0), "account {}", leaf.account);
        paid_total += U256::from(credited);
        assert!(refusal(&mut chain, payee, &escape(leaf, proof(leaf), &markets)).contains("AlreadyEscaped"));
    }
    assert_eq!(paid_total, held, "every equity was non-negative, so the escapes pay out exactly what L2 held");
    assert_eq!(view(&chain, vault, &S::l2TotalCall {}), U256::ZERO);

    // Carol's queued deposit comes back; everyone claims; the vault is empty, to the unit.
    send(&mut chain, CAROL, vault, &S::refundQueuedCall { count: 10 });
    for who in [ALICE, BOB, CAROL, recipient] {
        send(&mut chain, who, vault, &S::claimCall {});
    }
    assert_eq!(view(&chain, chain.token(), &T::balanceOfCall { holder: vault }), U256::ZERO);
}
