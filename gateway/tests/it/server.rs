//! The gateway over real loopback sockets, a real pipeline and a real journal: logon, every
//! order type, throttles, cancel-on-disconnect, replay after reconnect and after a server
//! restart, two sessions on one account, malformed input, slow consumers, market data.
//!
//! No sleeps: every wait is a blocking read of something the server must send (reads time
//! out after 20 s so that a bug fails the test instead of hanging it).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use l2x_gateway::auth::sign;
use l2x_gateway::client::{ClientError, MdClient, Options};
use l2x_gateway::codec::{self, ClientMsg, Liquidity, Logon, MdMsg, Report, ServerMsg, WireAmend, WireOrder};
use l2x_gateway::server::{Config, reason};
use l2x_gateway::throttle::Limits;
use l2x_types::{
    CancelReason, ClientOrderId, OrderType, Price, Qty, RejectReason, Side, StpMode, TimeInForce, Timestamp,
};

use crate::node::{BTC, Node, key, limit, next, report, send};

fn now_ns() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()).unwrap()
}

#[test]
fn order_lifecycle_of_every_order_type_over_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Config::default());
    let mut a = node.connect(1);
    let mut b = node.connect(3);
    assert_eq!(a.info().next_seq, 1);
    assert_eq!(a.info().limits, Limits::default());

    // A limit order rests: Accepted with the order's fields and three timestamps.
    send(&mut a, limit(10, Side::Buy, 990, 5));
    let (h, r) = report(&mut a);
    assert_eq!(h.seq, 1);
    assert!(h.gateway_in_ns > 0 && h.engine_in_ns > 0 && h.engine_out_ns >= h.gateway_in_ns, "{h:?}");
    let Report::Accepted { cid, order_id, instrument, side, price, qty } = r else { panic!("{r:?}") };
    assert_eq!((cid, instrument, side, price, qty), (ClientOrderId(10), BTC, Side::Buy, Price(990), Qty(5)));
    let bid = order_id;

    // Amend down keeps priority; a new price loses it.
    a.send(&ClientMsg::Amend(WireAmend { cid: ClientOrderId(10), instrument: BTC, price: None, qty: Some(Qty(4)) }))
        .unwrap();
    let (h, r) = report(&mut a);
    assert_eq!(h.seq, 2);
    assert_eq!(
        r,
        Report::Amended { cid: ClientOrderId(10), order_id: bid, price: Price(990), qty: Qty(4), priority_kept: true }
    );
    a.send(&ClientMsg::Amend(WireAmend {
        cid: ClientOrderId(10),
        instrument: BTC,
        price: Some(Price(995)),
        qty: None,
    }))
    .unwrap();
    let (_, r) = report(&mut a);
    assert_eq!(
        r,
        Report::Amended { cid: ClientOrderId(10), order_id: bid, price: Price(995), qty: Qty(4), priority_kept: false }
    );

    // An IOC sell crosses: both sides get a fill with the same match id; the rest of the
    // IOC is cancelled.
    send(&mut b, WireOrder { tif: TimeInForce::Ioc, ..limit(20, Side::Sell, 995, 6) });
    let (_, r) = report(&mut b);
    assert!(matches!(r, Report::Accepted { cid: ClientOrderId(20), .. }), "{r:?}");
    let (_, taker_fill) = report(&mut b);
    let (_, maker_fill) = report(&mut a);
    let Report::Fill { match_id, price, qty, leaves, cum_qty, fee, liquidity, .. } = taker_fill else {
        panic!("{taker_fill:?}")
    };
    assert_eq!((price, qty, leaves, cum_qty, liquidity), (Price(995), Qty(4), Qty(2), Qty(4), Liquidity::Taker));
    assert!(fee > 0, "the taker pays");
    let Report::Fill { match_id: maker_match, order_id, leaves, cum_qty, fee, liquidity, .. } = maker_fill else {
        panic!("{maker_fill:?}")
    };
    assert_eq!((maker_match, order_id, leaves, cum_qty, liquidity), (match_id, bid, Qty(0), Qty(4), Liquidity::Maker));
    assert!(fee < 0, "the maker gets the rebate");
    let (_, r) = report(&mut b);
    assert!(
        matches!(r, Report::Cancelled { qty: Qty(2), leaves: Qty(0), reason, .. } if reason == CancelReason::IocRemainder.code()),
        "{r:?}"
    );

    // FOK that cannot fill; market order into an empty side; post-only that would cross.
    send(&mut a, limit(11, Side::Sell, 1010, 3));
    assert!(matches!(report(&mut a).1, Report::Accepted { .. }));
    send(&mut b, WireOrder { tif: TimeInForce::Fok, ..limit(21, Side::Buy, 1010, 5) });
    assert!(matches!(report(&mut b).1, Report::Accepted { .. }));
    let (_, r) = report(&mut b);
    assert!(matches!(r, Report::Cancelled { reason, .. } if reason == CancelReason::FokUnfilled.code()), "{r:?}");
    send(&mut b, WireOrder { post_only: true, ..limit(22, Side::Buy, 1010, 1) });
    let (h, r) = report(&mut b);
    assert!(h.seq > 0, "an engine reject is part of the stream");
    assert_eq!(
        r,
        Report::Rejected { cid: ClientOrderId(22), reason: RejectReason::PostOnlyWouldCross.code(), retry_after_ms: 0 }
    );
    let market = WireOrder { order_type: OrderType::Market, price: None, ..limit(23, Side::Buy, 0, 5) };
    send(&mut b, market);
    assert!(matches!(report(&mut b).1, Report::Accepted { .. }));
    assert!(matches!(report(&mut b).1, Report::Fill { qty: Qty(3), liquidity: Liquidity::Taker, .. }));
    assert!(
        matches!(report(&mut b).1, Report::Cancelled { reason, .. } if reason == CancelReason::MarketRemainder.code())
    );
    assert!(matches!(report(&mut a).1, Report::Fill { qty: Qty(3), liquidity: Liquidity::Maker, .. }));

    // b is short 1 now. Reduce-only that would increase the position is refused; GTD rests
    // until its time.
    send(&mut b, WireOrder { reduce_only: true, ..limit(24, Side::Sell, 1100, 1) });
    let (_, r) = report(&mut b);
    assert!(
        matches!(r, Report::Rejected { reason, .. } if reason == RejectReason::ReduceOnlyWouldIncrease.code()),
        "{r:?}"
    );
    let expiry = Timestamp(now_ns() + 3_600_000_000_000);
    send(&mut b, WireOrder { tif: TimeInForce::Gtd, expire_ts: Some(expiry), ..limit(25, Side::Buy, 900, 2) });
    assert!(matches!(report(&mut b).1, Report::Accepted { .. }));

    // Self-trade prevention, decrement: b's sell of 1 against its own bid of 2 shrinks both.
    send(&mut b, WireOrder { stp: StpMode::Decrement, ..limit(26, Side::Sell, 900, 1) });
    assert!(matches!(report(&mut b).1, Report::Accepted { .. }));
    let mut reasons = vec![];
    for _ in 0..2 {
        let (_, r) = report(&mut b);
        let Report::Cancelled { reason, .. } = r else { panic!("{r:?}") };
        reasons.push(reason);
    }
    assert_eq!(reasons, [CancelReason::SelfTrade.code(); 2]);

    // A resent order whose cid is live is not applied twice; cancel; mass cancel by side.
    send(&mut a, limit(12, Side::Buy, 980, 1));
    assert!(matches!(report(&mut a).1, Report::Accepted { .. }));
    send(&mut a, limit(12, Side::Buy, 980, 1));
    assert!(matches!(report(&mut a).1, Report::Rejected { reason, .. } if reason == RejectReason::DuplicateCid.code()));
    a.send(&ClientMsg::Cancel { cid: ClientOrderId(12) }).unwrap();
    assert!(
        matches!(report(&mut a).1, Report::Cancelled { cid: ClientOrderId(12), reason, .. } if reason == CancelReason::User.code())
    );
    send(&mut a, limit(13, Side::Buy, 970, 1));
    send(&mut a, limit(14, Side::Sell, 1030, 1));
    assert!(matches!(report(&mut a).1, Report::Accepted { .. }));
    assert!(matches!(report(&mut a).1, Report::Accepted { .. }));
    a.send(&ClientMsg::MassCancel { instrument: Some(BTC), side: Some(Side::Sell) }).unwrap();
    // Only the sell that is still live (b's market order took all of cid 11).
    let (_, r) = report(&mut a);
    assert!(
        matches!(r, Report::Cancelled { cid: ClientOrderId(14), reason, .. } if reason == CancelReason::MassCancel.code()),
        "{r:?}"
    );
    // Cancelling another account's cid is impossible: the session's account is implied.
    b.send(&ClientMsg::Cancel { cid: ClientOrderId(13) }).unwrap();
    assert!(matches!(report(&mut b).1, Report::Rejected { reason, .. } if reason == RejectReason::UnknownOrder.code()));

    let state = node.stop();
    state.check_invariants().unwrap();
    let resting: Vec<u64> = state.resting_orders().iter().map(|o| o.cid.0).collect();
    assert_eq!(resting, [13, 25], "a's bid at 970 and b's GTD bid at 900");
}
