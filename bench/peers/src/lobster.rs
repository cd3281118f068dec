//! lobster 0.7: a single-threaded book (`BTreeMap` of price levels, each a `Vec` of arena
//! indices; a `HashMap` from order id to arena slot). `execute` takes an `OrderType` by value
//! and returns an `OrderEvent` whose fills are a freshly allocated `Vec`.
//!
//! Built with `OrderBook::new(120_200, 128, false)`: an arena preallocated for every order
//! of the workload (phase A's and the takers', which never rest), a queue capacity above
//! the ~100 orders a level holds, statistics off: the configuration most favourable to it.
//! Its arena is allocated and first touched in the untimed reset; l2x's pools grow inside
//! the timed phase A.

use l2x_bench::peers::{Op, PeerWorkload, Phase};
use l2x_types::Side;
use lobster::{OrderBook, OrderEvent, OrderType};

use crate::contender::Contender;

/// Orders per price level the queues are sized for.
const QUEUE_CAPACITY: usize = 128;

pub(crate) struct Lobster {
    book: OrderBook,
    arena: usize,
    qty: u64,
    phases: [Vec<OrderType>; 4],
}

impl Lobster {
    pub(crate) fn new(w: &PeerWorkload) -> Lobster {
        let side = |s: Side| match s {
            Side::Buy => lobster::Side::Bid,
            Side::Sell => lobster::Side::Ask,
        };
        let phases = Phase::ALL.map(|p| {
            w.phase(p)
                .iter()
                .map(|op| match *op {
                    Op::Limit(o) => {
                        OrderType::Limit { id: u128::from(o.id), side: side(o.side), qty: o.qty, price: o.price }
                    }
                    Op::Cancel(o) => OrderType::Cancel { id: u128::from(o.id) },
                })
                .collect()
        });
        let arena = w.order_count() as usize;
        Lobster { book: OrderBook::new(arena, QUEUE_CAPACITY, false), arena, qty: w.shape().qty, phases }
    }
}

impl Contender for Lobster {
    fn name(&self) -> &'static str {
        "lobster 0.7.0"
    }

    fn config(&self) -> &'static str {
        "OrderBook::new(arena = every order, queue capacity 128, stats off); execute(OrderType) per operation"
    }

    fn reset(&mut self) {
        self.book = OrderBook::new(self.arena, QUEUE_CAPACITY, false);
    }

    fn run(&mut self, phase: Phase) -> anyhow::Result<u64> {
        let mut fills = 0u64;
        for op in &self.phases[phase as usize] {
            match self.book.execute(*op) {
                OrderEvent::Filled { fills: f, .. } | OrderEvent::PartiallyFilled { fills: f, .. } => {
                    fills += f.len() as u64;
                }
                OrderEvent::Unfilled { id } => anyhow::bail!("lobster left order {id} unfilled"),
                OrderEvent::Placed { .. } | OrderEvent::Canceled { .. } => {}
            }
        }
        Ok(fills)
    }

    fn resting_orders(&self) -> u64 {
        // Every resting order has the workload's quantity at a phase's end (fills are whole).
        // `depth` lists every level whatever its argument, which only sizes its vectors.
        let depth = self.book.depth(0);
        depth.bids.iter().chain(&depth.asks).map(|l| l.qty).sum::<u64>() / self.qty
    }
}
