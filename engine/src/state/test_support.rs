//! The unit tests' exchange: one worked example per matching rule. Instruments have tick 1 and lot 1, so prices
//! and quantities read as plain numbers; the mark is 1000 and the band 10 %, so limit
//! prices 900..=1100 are in band. Accounts: A = 1, B = 2, C = 3.

use core::str::FromStr;

pub(super) use Side::{Buy, Sell};
pub(super) use l2x_risk::Ledger;
pub(super) use l2x_types::{
    AccountId, Amend, Amount, Cancel, CancelReason, ClientOrderId, Command, CommandKind, Decimal, Event, Holder,
    InstrumentId, InstrumentSpec, MassCancel, NewOrder, OrderId, OrderType, Price, Qty, RejectReason, Seq, Sequenced,
    Side, StpMode, Symbol, TimeInForce, Timestamp, Trade, TradeId,
};

pub(super) use super::{ListingError, RestoreError, StateMachine};
pub(super) use crate::canonical::PositionState;

pub(super) const A: u64 = 1;
pub(super) const B: u64 = 2;
pub(super) const C: u64 = 3;
pub(super) const BTC: InstrumentId = InstrumentId(0);
pub(super) const ETH: InstrumentId = InstrumentId(1);

pub(super) fn spec(symbol: &str) -> InstrumentSpec {
    let d = |s| Decimal::from_str(s).unwrap();
    InstrumentSpec {
        symbol: Symbol::try_new(symbol).unwrap(),
        tick_size: d("1"),
        lot_size: d("1"),
        initial_margin: d("0.05"),
        maintenance_margin: d("0.03"),
        max_order_qty: d("100"),
        max_position_qty: d("1000"),
        price_band: d("0.1"),
        maker_fee: d("0"),
        taker_fee: d("0"),
        liquidation_fee: d("0.01"),
        impact_notional: d("10000"),
        funding_interest: d("0"),
        funding_clamp: d("0.02"),
    }
}

/// A state machine with BTC-PERP (id 0, mark 1000) and ETH-PERP (id 1, no mark) listed,
/// that checks the invariants after every command.
pub(super) struct Exchange {
    pub(super) sm: StateMachine,
    seq: u64,
    ts: u64,
}

impl Exchange {
    pub(super) fn new() -> Exchange {
        let mut ex = Exchange { sm: StateMachine::new(), seq: 0, ts: 0 };
        ex.apply(Command::ListInstrument(Box::new(spec("BTC-PERP"))));
        ex.apply(Command::ListInstrument(Box::new(spec("ETH-PERP"))));
        ex.apply(Command::Oracle { instrument: BTC, price: Price(1000) });
        // Margin is not what these tests are about: every account they use is funded.
        for account in 1..=9 {
            ex.apply(Command::Deposit {
                to: Holder::Account(AccountId(account)),
                amount: Amount(1_000_000_000_000_000),
            });
        }
        ex
    }

    /// Sets the time of the following commands.
    pub(super) fn at(&mut self, ts: u64) -> &mut Exchange {
        self.ts = ts;
        self
    }

    pub(super) fn apply(&mut self, cmd: Command) -> Vec<Event> {
        let mut out = self.apply_all(cmd);
        // The matching events only; positions, balances and the rest are the risk
        // tests' (engine/tests/it/risk.rs).
        out.retain(Event::is_matching);
        out
    }

    /// Applies a command and returns every event it made, the risk engine's included.
    pub(super) fn apply_all(&mut self, cmd: Command) -> Vec<Event> {
        self.seq += 1;
        let mut out = Vec::new();
        self.sm.apply(&Sequenced { seq: Seq(self.seq), ts: Timestamp(self.ts), cmd }, &mut out);
        self.sm.check_invariants().unwrap();
        out
    }

    pub(super) fn new_order(&mut self, o: NewOrder) -> Vec<Event> {
        self.apply(Command::NewOrder(o))
    }

    /// Rests a GTC limit order that must not trade; returns its order id.
    pub(super) fn rest(&mut self, account: u64, cid: u64, side: Side, price: i64, qty: i64) -> u64 {
        let events = self.new_order(limit(account, cid, side, price, qty));
        match events.as_slice() {
            [Event::Accepted { order_id, .. }, Event::Book { .. }] => order_id.0,
            other => panic!("expected the order to rest, got {other:?}"),
        }
    }

    pub(super) fn amend(&mut self, account: u64, cid: u64, price: Option<i64>, qty: Option<i64>) -> Vec<Event> {
        let instrument = self.sm.live_order_instrument(AccountId(account), ClientOrderId(cid)).unwrap_or(BTC);
        self.apply(Command::Amend(Amend {
            account: AccountId(account),
            cid: ClientOrderId(cid),
            instrument,
            price: price.map(Price),
            qty: qty.map(Qty),
        }))
    }

    pub(super) fn cancel(&mut self, account: u64, cid: u64) -> Vec<Event> {
        self.apply(Command::Cancel(Cancel {
            account: AccountId(account),
            cid: ClientOrderId(cid),
            on_disconnect: false,
        }))
    }

    pub(super) fn mass_cancel(
        &mut self,
        account: u64,
        instrument: Option<InstrumentId>,
        side: Option<Side>,
    ) -> Vec<Event> {
        self.apply(Command::MassCancel(MassCancel { account: AccountId(account), instrument, side }))
    }

    /// (order id, account, cid, price, leaves, filled) of every resting order, canonically
    /// ordered.
    pub(super) fn book(&self) -> Vec<(u64, u64, u64, i64, i64, i64)> {
        self.sm
            .resting_orders()
            .iter()
            .map(|o| (o.order_id.0, o.account.0, o.cid.0, o.price.0, o.leaves.0, o.filled.0))
            .collect()
    }
}

/// A GTC limit order on BTC-PERP with STP `cancel_taker`.
pub(super) fn limit(account: u64, cid: u64, side: Side, price: i64, qty: i64) -> NewOrder {
    NewOrder {
        account: AccountId(account),
        cid: ClientOrderId(cid),
        instrument: BTC,
        side,
        order_type: OrderType::Limit,
        price: Some(Price(price)),
        qty: Qty(qty),
        tif: TimeInForce::Gtc,
        expire_ts: None,
        post_only: false,
        reduce_only: false,
        stp: StpMode::CancelTaker,
    }
}

/// A market order on BTC-PERP.
pub(super) fn market(account: u64, cid: u64, side: Side, qty: i64) -> NewOrder {
    NewOrder { order_type: OrderType::Market, price: None, ..limit(account, cid, side, 0, qty) }
}

pub(super) fn accepted(account: u64, cid: u64, order_id: u64, side: Side, price: i64, qty: i64) -> Event {
    Event::Accepted {
        account: AccountId(account),
        cid: ClientOrderId(cid),
        order_id: OrderId(order_id),
        instrument: BTC,
        side,
        price: Price(price),
        qty: Qty(qty),
    }
}

pub(super) fn rejected(kind: CommandKind, account: u64, cid: Option<u64>, reason: RejectReason) -> Event {
    Event::Rejected { kind, account: Some(AccountId(account)), cid: cid.map(ClientOrderId), reason }
}

pub(super) fn amended(account: u64, cid: u64, order_id: u64, price: i64, qty: i64, priority_kept: bool) -> Event {
    Event::Amended {
        account: AccountId(account),
        cid: ClientOrderId(cid),
        order_id: OrderId(order_id),
        instrument: BTC,
        price: Price(price),
        qty: Qty(qty),
        priority_kept,
    }
}

/// A BTC-PERP trade; `maker` and `taker` are (account, cid, order id, leaves after).
pub(super) fn trade(
    trade_id: u64,
    price: i64,
    qty: i64,
    maker: (u64, u64, u64, i64),
    taker: (u64, u64, u64, i64),
    taker_side: Side,
) -> Event {
    Event::Trade(Trade {
        trade_id: TradeId(trade_id),
        instrument: BTC,
        price: Price(price),
        qty: Qty(qty),
        maker_account: AccountId(maker.0),
        maker_cid: ClientOrderId(maker.1),
        maker_order_id: OrderId(maker.2),
        maker_leaves: Qty(maker.3),
        maker_fee: 0,
        taker_account: AccountId(taker.0),
        taker_cid: ClientOrderId(taker.1),
        taker_order_id: OrderId(taker.2),
        taker_leaves: Qty(taker.3),
        taker_fee: 0,
        taker_side,
        liquidation: false,
    })
}

/// A BTC-PERP cancel; `order` is (account, cid, order id).
pub(super) fn cancel(order: (u64, u64, u64), side: Side, qty: i64, leaves: i64, reason: CancelReason) -> Event {
    Event::Cancelled {
        account: AccountId(order.0),
        cid: ClientOrderId(order.1),
        order_id: OrderId(order.2),
        instrument: BTC,
        side,
        qty: Qty(qty),
        leaves: Qty(leaves),
        reason,
    }
}

/// A BTC-PERP book event.
pub(super) fn book(side: Side, price: i64, qty: i64, orders: u32) -> Event {
    Event::Book { instrument: BTC, side, price: Price(price), qty: Qty(qty), orders }
}

pub(super) fn reasons(events: &[Event]) -> Vec<RejectReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Rejected { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

pub(super) fn gtd(account: u64, cid: u64, side: Side, price: i64, qty: i64, expire_ts: u64) -> NewOrder {
    NewOrder { tif: TimeInForce::Gtd, expire_ts: Some(Timestamp(expire_ts)), ..limit(account, cid, side, price, qty) }
}
