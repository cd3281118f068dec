//! matchcore 0.4: a deterministic single-threaded state machine (`BTreeMap` of price
//! levels in a `Slab`, an `FxHashMap` of resting orders). `execute` takes a `&Command`
//! carrying a sequence number (consecutive from 0) and a timestamp, and returns a
//! `CommandOutcome` whose trades are a freshly allocated `Vec`. An order's id is the
//! sequence number of its submit, so the cancels of phase B name the ids phase A produced.

use l2x_bench::peers::{Op, PeerWorkload, Phase};
use l2x_types::Side;
use matchcore::{
    CancelCmd, Command, CommandKind, CommandMeta, CommandOutcome, CommandReport, LimitOrder, NewOrder, OrderBook,
    OrderFlags, OrderId, OrderKind, Price, Quantity, QuantityPolicy, SequenceNumber, SubmitCmd, TimeInForce, Timestamp,
};

use crate::contender::Contender;

const SYMBOL: &str = "PEER-PERP";

pub(crate) struct Matchcore {
    book: OrderBook,
    phases: [Vec<Command>; 4],
}

impl Matchcore {
    pub(crate) fn new(w: &PeerWorkload) -> Matchcore {
        let mut seq = 0u64;
        // Order number → matchcore's order id (the sequence number of its submit).
        let mut ids: Vec<Option<OrderId>> = vec![None; w.order_count() as usize];
        let mut command = |op: &Op| {
            let meta = CommandMeta { sequence_number: SequenceNumber(seq), timestamp: Timestamp(seq) };
            let kind = match *op {
                Op::Limit(o) => {
                    ids[o.id as usize] = Some(OrderId(seq));
                    let side = match o.side {
                        Side::Buy => matchcore::Side::Buy,
                        Side::Sell => matchcore::Side::Sell,
                    };
                    CommandKind::Submit(SubmitCmd {
                        order: NewOrder::Limit(LimitOrder::new(
                            Price(o.price),
                            QuantityPolicy::Standard { quantity: Quantity(o.qty) },
                            OrderFlags::new(side, false, TimeInForce::Gtc),
                        )),
                    })
                }
                Op::Cancel(o) => CommandKind::Cancel(CancelCmd {
                    // A cancel names an order of an earlier phase: its id is known.
                    order_id: ids[o.id as usize].unwrap_or(OrderId(u64::MAX)),
                    order_kind: OrderKind::Limit,
                }),
            };
            seq += 1;
            Command { meta, kind }
        };
        let phases = Phase::ALL.map(|p| w.phase(p).iter().map(&mut command).collect());
        Matchcore { book: OrderBook::new(SYMBOL), phases }
    }
}

impl Contender for Matchcore {
    fn name(&self) -> &'static str {
        "matchcore 0.4.0"
    }

    fn config(&self) -> &'static str {
        "OrderBook::new(symbol) (2,048 price levels preallocated); execute(&Command) per operation"
    }

    fn reset(&mut self) {
        self.book = OrderBook::new(SYMBOL);
    }

    fn run(&mut self, phase: Phase) -> anyhow::Result<u64> {
        let mut fills = 0u64;
        for cmd in &self.phases[phase as usize] {
            match self.book.execute(cmd) {
                CommandOutcome::Applied(CommandReport::Submit(effects)) => {
                    fills += effects.target_order().match_result().map_or(0, |m| m.trades().len() as u64);
                }
                CommandOutcome::Applied(_) => {}
                CommandOutcome::Rejected(failure) => anyhow::bail!("matchcore rejected a command: {failure}"),
            }
        }
        Ok(fills)
    }

    fn resting_orders(&self) -> u64 {
        self.book.limit().orders().len() as u64
    }
}
