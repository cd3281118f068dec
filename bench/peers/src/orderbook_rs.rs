//! orderbook-rs 0.15: a concurrent book (a skip list of price levels, each a lock-free
//! queue; `DashMap` indexes by order id and user), usable from many threads, called here
//! from one. Submits go through `add_limit_order_with_result`, which returns the order and
//! a `TradeResult` (with a UUID per trade) when it traded; cancels through `cancel_order`.
//!
//! Built with `OrderBook::with_clock(symbol, StubClock)`: the deterministic clock the crate
//! provides for replay, so no submit reads the wall clock. No fees, risk limits, STP or
//! listeners are configured (all off by default).

use std::sync::Arc;

use l2x_bench::peers::{Op, PeerWorkload, Phase};
use l2x_types::Side;
use orderbook_rs::prelude::{Clock, Id, OrderBook, StubClock, TimeInForce};

use crate::contender::Contender;

const SYMBOL: &str = "PEER-PERP";

/// One prebuilt call.
#[derive(Clone, Copy, Debug)]
enum Call {
    Limit { id: Id, price: u128, qty: u64, side: orderbook_rs::prelude::Side },
    Cancel(Id),
}

pub(crate) struct OrderbookRs {
    book: OrderBook<()>,
    phases: [Vec<Call>; 4],
}

fn fresh() -> OrderBook<()> {
    OrderBook::with_clock(SYMBOL, Arc::new(StubClock::new()) as Arc<dyn Clock>)
}

impl OrderbookRs {
    pub(crate) fn new(w: &PeerWorkload) -> OrderbookRs {
        let phases = Phase::ALL.map(|p| {
            w.phase(p)
                .iter()
                .map(|op| match *op {
                    Op::Limit(o) => Call::Limit {
                        id: Id::sequential(u64::from(o.id)),
                        price: u128::from(o.price),
                        qty: o.qty,
                        side: match o.side {
                            Side::Buy => orderbook_rs::prelude::Side::Buy,
                            Side::Sell => orderbook_rs::prelude::Side::Sell,
                        },
                    },
                    Op::Cancel(o) => Call::Cancel(Id::sequential(u64::from(o.id))),
                })
                .collect()
        });
        OrderbookRs { book: fresh(), phases }
    }
}

impl Contender for OrderbookRs {
    fn name(&self) -> &'static str {
        "orderbook-rs 0.15.3"
    }

    fn config(&self) -> &'static str {
        "OrderBook::<()>::with_clock(symbol, StubClock); add_limit_order_with_result / cancel_order per operation"
    }

    fn reset(&mut self) {
        self.book = fresh();
    }

    fn run(&mut self, phase: Phase) -> anyhow::Result<u64> {
        let mut fills = 0u64;
        for call in &self.phases[phase as usize] {
            match *call {
                Call::Limit { id, price, qty, side } => {
                    let (_, trades) =
                        self.book.add_limit_order_with_result(id, price, qty, side, TimeInForce::Gtc, None)?;
                    fills += trades.map_or(0, |t| t.match_result.trades().len() as u64);
                }
                Call::Cancel(id) => {
                    anyhow::ensure!(self.book.cancel_order(id)?.is_some(), "orderbook-rs: order {id} not found");
                }
            }
        }
        Ok(fills)
    }

    fn resting_orders(&self) -> u64 {
        self.book.get_all_orders().len() as u64
    }
}
