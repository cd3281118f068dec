//! The seeded command stream the settlement tests share, and the journal they write it to.

use std::str::FromStr;

use l2x_types::{
    AccountId, Amount, Cancel, ClientOrderId, Command, Decimal, Holder, InstrumentId, InstrumentSpec, NewOrder,
    OrderType, Price, Qty, Seq, Sequenced, Side, StpMode, Symbol, TimeInForce, Timestamp,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub(crate) fn spec(symbol: &str) -> InstrumentSpec {
    let d = |s: &str| Decimal::from_str(s).unwrap();
    InstrumentSpec {
        symbol: Symbol::try_new(symbol).unwrap(),
        tick_size: d("1"),
        lot_size: d("1"),
        initial_margin: d("0.1"),
        maintenance_margin: d("0.05"),
        max_order_qty: d("100"),
        max_position_qty: d("1000"),
        price_band: d("0.3"),
        maker_fee: d("-0.0001"),
        taker_fee: d("0.0005"),
        liquidation_fee: d("0.01"),
        impact_notional: d("1000"),
        funding_interest: d("0.0001"),
        funding_clamp: d("0.01"),
    }
}

/// A seeded stream: two instruments, 30 accounts (some thinly funded, so that shocks
/// liquidate them), orders, cancels, oracle moves, funding ticks, withdrawals. Time moves
/// 1–40 ms per command.
pub(crate) fn stream(seed: u64, n: usize) -> Vec<Sequenced> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cmds = vec![
        Command::ListInstrument(Box::new(spec("BTC-PERP"))),
        Command::ListInstrument(Box::new(spec("ETH-PERP"))),
        Command::Oracle { instrument: InstrumentId(0), price: Price(1000) },
        Command::Oracle { instrument: InstrumentId(1), price: Price(200) },
        Command::Deposit { to: Holder::Insurance, amount: Amount(50_000_000_000) },
    ];
    for a in 1..=30u64 {
        let usdc = if a % 3 == 0 { 2_000 } else { 1_000_000 };
        cmds.push(Command::Deposit { to: Holder::Account(AccountId(a)), amount: Amount(usdc * 1_000_000) });
    }
    let mut marks = [1000i64, 200];
    for _ in 0..n {
        let i = rng.random_range(0..2usize);
        let instrument = InstrumentId(u32::try_from(i).unwrap());
        let account = AccountId(rng.random_range(1..=30));
        let cmd = match rng.random_range(0..100) {
            0..70 => {
                let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
                let tif = if rng.random_ratio(1, 4) { TimeInForce::Ioc } else { TimeInForce::Gtc };
                Command::NewOrder(NewOrder {
                    account,
                    cid: ClientOrderId(rng.random_range(1..20)),
                    instrument,
                    side,
                    order_type: OrderType::Limit,
                    price: Some(Price(marks[i] + rng.random_range(-marks[i] / 50..=marks[i] / 50))),
                    qty: Qty(rng.random_range(1..25)),
                    tif,
                    expire_ts: None,
                    post_only: false,
                    reduce_only: false,
                    stp: StpMode::CancelTaker,
                })
            }
            70..82 => {
                Command::Cancel(Cancel { account, cid: ClientOrderId(rng.random_range(1..20)), on_disconnect: false })
            }
            82..92 => {
                // Mostly small moves, now and then a shock.
                let step = if rng.random_ratio(1, 15) { marks[i] / 8 } else { marks[i] / 100 + 1 };
                marks[i] = (marks[i] + if rng.random_bool(0.5) { step } else { -step }).max(20);
                Command::Oracle { instrument, price: Price(marks[i]) }
            }
            92..97 => Command::Funding { instrument },
            _ => Command::Withdraw { account, amount: Amount(rng.random_range(1..5_000) * 1_000_000) },
        };
        cmds.push(cmd);
    }
    let mut ts = 1_000_000_000u64;
    cmds.into_iter()
        .enumerate()
        .map(|(k, cmd)| {
            ts += rng.random_range(1..40u64) * 1_000_000;
            Sequenced { seq: Seq(k as u64 + 1), ts: Timestamp(ts), cmd }
        })
        .collect()
}

/// [`stream`] without its operator withdrawals, for the tests that commit batches: the
/// vault pays a withdrawal only to an account's L1 owner, and the deposits of [`stream`] are
/// the operator's, not L1's (so no account has one). The commit mechanics they test do not
/// depend on withdrawals; the vault's own tests (`vault.rs`) fund accounts through L1.
pub(crate) fn chain_stream(seed: u64, n: usize) -> Vec<Sequenced> {
    let mut cmds: Vec<Sequenced> =
        stream(seed, n).into_iter().filter(|c| !matches!(c.cmd, Command::Withdraw { .. })).collect();
    for (k, c) in cmds.iter_mut().enumerate() {
        c.seq = Seq(k as u64 + 1);
    }
    cmds
}

/// Applies `cmds`, sequenced from `first_seq` at `t0` seconds a millisecond apart but the
/// last, one second after `t0` (so that a policy of one second closes one epoch at the
/// last); returns the epochs they closed.
pub(crate) fn apply_closing(
    state: &mut l2x_engine::StateMachine,
    epochs: &mut l2x_settlement::epoch::Epochs,
    first_seq: u64,
    t0: u64,
    cmds: &[Command],
) -> Vec<l2x_settlement::epoch::Epoch> {
    let mut closed = Vec::new();
    let mut events = Vec::new();
    for (k, cmd) in cmds.iter().enumerate() {
        let seq = first_seq + k as u64;
        let ms = if k + 1 == cmds.len() { 1_000 } else { k as u64 };
        let c = Sequenced { seq: Seq(seq), ts: Timestamp(t0 * 1_000_000_000 + ms * 1_000_000), cmd: cmd.clone() };
        events.clear();
        state.apply(&c, &mut events);
        closed.extend(epochs.on_command(&c, &events, state));
    }
    closed
}

/// Anvil's development keys: the submitter's and another.
pub(crate) const SUBMITTER_KEY: &str = l2x_settlement::devnode::DEV_KEYS[0];
pub(crate) const OTHER_KEY: &str = l2x_settlement::devnode::DEV_KEYS[1];

/// A provider on `node` that signs with `key`, and its address.
pub(crate) fn wallet(
    node: &l2x_settlement::devnode::Anvil,
    key: &str,
) -> (alloy::providers::DynProvider, alloy::primitives::Address) {
    use alloy::providers::Provider as _;
    let signer: alloy::signers::local::PrivateKeySigner = key.parse().unwrap();
    let address = signer.address();
    let provider = alloy::providers::ProviderBuilder::new()
        .wallet(alloy::network::EthereumWallet::from(signer))
        .connect_http(node.url().parse().unwrap());
    (provider.erased(), address)
}

/// A local anvil (installed from npm on first use).
pub(crate) fn anvil() -> l2x_settlement::devnode::Anvil {
    l2x_settlement::devnode::Anvil::spawn().unwrap()
}

/// [`stream`] with the L1 queue woven in: every 9th command after the set-up is the next
/// queue entry — deposits credited (to accounts and the fund), a deposit to the fee account
/// (refunded), forced withdrawals honoured and one too large for any margin (rejected) —
/// and every 50th an entry out of turn (a duplicate: no entry at all).
pub(crate) fn stream_l1(seed: u64, n: usize) -> Vec<Sequenced> {
    let from = l2x_types::L1Address([0x5a; 20]);
    let mut next = 1u64;
    let mut out: Vec<Sequenced> = Vec::new();
    for (k, mut c) in stream(seed, n).into_iter().enumerate() {
        let at = c.ts;
        if k > 40 && k % 9 == 0 {
            let account = AccountId(next % 30 + 1);
            let requested_at = 1_700_000_000 + next;
            let cmd = match next % 5 {
                0 => Command::L1Deposit { index: next, to: Holder::Insurance, amount: Amount(7), from, requested_at },
                1 | 3 => Command::L1Deposit {
                    index: next,
                    to: Holder::Account(account),
                    amount: Amount(3_000_000),
                    from,
                    requested_at,
                },
                2 => Command::L1Deposit { index: next, to: Holder::Fees, amount: Amount(9), from, requested_at },
                _ => Command::ForcedWithdrawal {
                    index: next,
                    account,
                    amount: Amount(if next % 10 == 4 { 1_000_000 } else { 1 << 60 }),
                    from,
                    requested_at,
                },
            };
            out.push(Sequenced { seq: Seq(0), ts: at, cmd });
            next += 1;
        }
        if k > 40 && k % 50 == 0 {
            let dup =
                Command::L1Deposit { index: next - 1, to: Holder::Insurance, amount: Amount(1), from, requested_at: 0 };
            out.push(Sequenced { seq: Seq(0), ts: at, cmd: dup });
        }
        c.seq = Seq(0);
        out.push(c);
    }
    for (k, c) in out.iter_mut().enumerate() {
        c.seq = Seq(k as u64 + 1);
    }
    out
}

/// Appends `cmds` to the journal in `dir` (a new one, 1 MiB segments, if there is none)
/// and makes them durable; the writer is dropped without an end marker, as a running node
/// leaves it.
pub(crate) fn write_journal(dir: &std::path::Path, cmds: &[Sequenced]) {
    let (mut w, _) = l2x_sequencer::journal::JournalWriter::open(dir, 1 << 20).unwrap();
    for c in cmds {
        w.append(c).unwrap();
    }
    w.sync().unwrap();
}
