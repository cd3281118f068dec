//! The market-data feed against the engine over random command streams.

use std::str::FromStr;

use l2x_engine::StateMachine;
use l2x_gateway::market_data::Feed;
use l2x_protocol::book::Book;
use l2x_protocol::codec::MdMsg;
use l2x_types::{
    AccountId, Amend, Amount, Cancel, ClientOrderId, Command, Decimal, Event, Holder, InstrumentId, InstrumentSpec,
    MassCancel, NewOrder, OrderType, Price, Qty, Seq, Sequenced, Side, StpMode, Symbol, TimeInForce, Timestamp,
};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn spec(symbol: &str) -> InstrumentSpec {
    let d = |s: &str| Decimal::from_str(s).unwrap();
    InstrumentSpec {
        symbol: Symbol::try_new(symbol).unwrap(),
        tick_size: d("1"),
        lot_size: d("1"),
        initial_margin: d("0.1"),
        maintenance_margin: d("0.05"),
        max_order_qty: d("50"),
        max_position_qty: d("400"),
        price_band: d("0.2"),
        maker_fee: d("0"),
        taker_fee: d("0.0005"),
        liquidation_fee: d("0.01"),
        impact_notional: d("10000"),
        funding_interest: d("0"),
        funding_clamp: d("0.05"),
    }
}

/// A random command against the current marks and cids.
fn command(rng: &mut impl Rng, marks: &mut [i64; 2], ts: u64) -> Command {
    let i = rng.random_range(0..2usize);
    let instrument = InstrumentId(u32::try_from(i).unwrap());
    let account = AccountId(rng.random_range(1..=6));
    let cid = ClientOrderId(rng.random_range(1..=12));
    match rng.random_range(0..100) {
        0..50 => {
            let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
            let market = rng.random_ratio(1, 12);
            let tif = match rng.random_range(0..10) {
                0 => TimeInForce::Ioc,
                1 => TimeInForce::Fok,
                2 if !market => TimeInForce::Gtd,
                _ => TimeInForce::Gtc,
            };
            Command::NewOrder(NewOrder {
                account,
                cid,
                instrument,
                side,
                order_type: if market { OrderType::Market } else { OrderType::Limit },
                price: (!market).then(|| Price(marks[i] + rng.random_range(-15..=15))),
                qty: Qty(rng.random_range(1..30)),
                tif,
                expire_ts: (tif == TimeInForce::Gtd).then(|| Timestamp(ts + rng.random_range(1..40))),
                post_only: tif == TimeInForce::Gtc && rng.random_ratio(1, 10),
                reduce_only: rng.random_ratio(1, 10),
                stp: StpMode::ALL[rng.random_range(0..4)],
            })
        }
        50..68 => Command::Amend(Amend {
            account,
            cid,
            instrument,
            price: rng.random_bool(0.6).then(|| Price(marks[i] + rng.random_range(-15..=15))),
            qty: rng.random_bool(0.6).then(|| Qty(rng.random_range(1..30))),
        }),
        68..82 => Command::Cancel(Cancel { account, cid, on_disconnect: false }),
        82..85 => Command::MassCancel(MassCancel {
            account,
            instrument: rng.random_bool(0.5).then_some(instrument),
            side: rng.random_bool(0.5).then_some(Side::Buy),
        }),
        _ => {
            let step = if rng.random_ratio(1, 8) { rng.random_range(-120..=120) } else { rng.random_range(-6..=6) };
            marks[i] = (marks[i] + step).max(100);
            Command::Oracle { instrument, price: Price(marks[i]) }
        }
    }
}

/// The engine's resting orders in the book's form.
fn engine_orders(sm: &StateMachine) -> Vec<(InstrumentId, Side, Price, l2x_types::OrderId, Qty)> {
    sm.resting_orders().iter().map(|o| (o.instrument, o.side, o.price, o.order_id, o.leaves)).collect()
}

fn run(seed: u64, commands: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sm = StateMachine::new();
    let mut feed = Feed::new();
    let mut book = Book::new();
    let mut late: Option<Book> = None;
    let mut marks = [1_000i64, 2_000];
    let mut setup = vec![
        Command::ListInstrument(Box::new(spec("AAA-PERP"))),
        Command::ListInstrument(Box::new(spec("BBB-PERP"))),
        Command::Oracle { instrument: InstrumentId(0), price: Price(marks[0]) },
        Command::Oracle { instrument: InstrumentId(1), price: Price(marks[1]) },
        Command::Deposit { to: Holder::Insurance, amount: Amount(100_000_000) },
    ];
    for a in 1..=6 {
        // Some thin accounts, so that liquidations happen too.
        let amount = if a <= 2 { 3_000_000_000 } else { 400_000_000_000 };
        setup.push(Command::Deposit { to: Holder::Account(AccountId(a)), amount: Amount(amount) });
    }
    let mut events = Vec::new();
    let mut updates = Vec::new();
    let mut seen = [0u64; 5];
    for n in 0..setup.len() + commands {
        let ts = n as u64 * 10;
        let cmd = if n < setup.len() { setup[n].clone() } else { command(&mut rng, &mut marks, ts) };
        events.clear();
        sm.apply(&Sequenced { seq: Seq(n as u64 + 1), ts: Timestamp(ts), cmd }, &mut events);
        updates.clear();
        feed.on_batch(&events, &mut updates);
        for u in &updates {
            book.apply(u).unwrap_or_else(|e| panic!("seed {seed}, command {n}: {e} at {u:?}"));
            if let Some(late) = late.as_mut() {
                late.apply(u).unwrap();
            }
            match u {
                MdMsg::Order { .. } => seen[0] += 1,
                MdMsg::ReduceOrder { .. } => seen[1] += 1,
                MdMsg::DeleteOrder { .. } => seen[2] += 1,
                MdMsg::Execution { .. } => seen[3] += 1,
                _ => {}
            }
        }
        seen[4] += events.iter().filter(|e| matches!(e, Event::Liquidation { .. })).count() as u64;
        let expected = engine_orders(&sm);
        assert_eq!(book.orders(), expected, "seed {seed}: the subscriber's book differs after command {n}");
        if let Some(late) = &late {
            assert_eq!(late.orders(), expected, "seed {seed}: the late subscriber's book differs after command {n}");
        }
        if n == setup.len() + commands / 3 {
            // A subscriber joining now: snapshots, then the same updates as everybody.
            let mut b = Book::new();
            let mut snap = Vec::new();
            feed.snapshot(InstrumentId(0), &mut snap);
            feed.snapshot(InstrumentId(1), &mut snap);
            for m in &snap {
                b.apply(m).unwrap();
            }
            assert_eq!(b.orders(), expected);
            late = Some(b);
        }
    }
    assert!(seen[0] > 100 && seen[1] > 5 && seen[2] > 50 && seen[3] > 50, "seed {seed}: {seen:?}");
}

#[test]
fn the_feed_rebuilds_the_engines_book_after_every_command() {
    for seed in 0..6 {
        run(seed, 3_000);
    }
}

#[test]
fn a_gap_is_detected() {
    let mut feed = Feed::new();
    let mut sm = StateMachine::new();
    let mut events = Vec::new();
    let mut updates = Vec::new();
    let cmds = [
        Command::ListInstrument(Box::new(spec("AAA-PERP"))),
        Command::Oracle { instrument: InstrumentId(0), price: Price(1_000) },
        Command::Deposit { to: Holder::Account(AccountId(1)), amount: Amount(1_000_000_000_000) },
    ];
    for (n, cmd) in cmds.into_iter().enumerate() {
        sm.apply(&Sequenced { seq: Seq(n as u64 + 1), ts: Timestamp(0), cmd }, &mut events);
    }
    for cid in 1..=2 {
        events.clear();
        let order = NewOrder {
            account: AccountId(1),
            cid: ClientOrderId(cid),
            instrument: InstrumentId(0),
            side: Side::Buy,
            order_type: OrderType::Limit,
            price: Some(Price(990)),
            qty: Qty(1),
            tif: TimeInForce::Gtc,
            expire_ts: None,
            post_only: false,
            reduce_only: false,
            stp: StpMode::CancelTaker,
        };
        sm.apply(&Sequenced { seq: Seq(10 + cid), ts: Timestamp(0), cmd: Command::NewOrder(order) }, &mut events);
        feed.on_batch(&events, &mut updates);
    }
    let mut book = Book::new();
    assert_eq!(updates.len(), 2);
    let err = book.apply(&updates[1]).unwrap_err();
    assert_eq!((err.expected, err.got), (1, 2));
}
