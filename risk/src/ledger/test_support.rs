//! The ledger tests' markets, accounts and trades.

pub(super) use l2x_types::{AccountId, Amount, Fraction, Holder, InstrumentId, Ppb, Price, Qty, RejectReason, Side};
pub(super) use proptest::prelude::*;

pub(super) use super::{Change, Exposure, Fill, Ledger};
pub(super) use crate::AccountSlot;
pub(super) use crate::account::Key;
pub(super) use crate::params::MarketParams;

pub(super) const BTC: InstrumentId = InstrumentId(0);
pub(super) const ETH: InstrumentId = InstrumentId(1);

/// BTC-PERP of the scenarios: tick 0.5, lot 0.001 (k = 500), IMF 5 %, MMF 3 %.
pub(super) fn btc() -> MarketParams {
    MarketParams {
        quote_per_tick_lot: 500,
        initial_margin: Fraction(50_000),
        maintenance_margin: Fraction(30_000),
        max_position_qty: Qty(1_000_000),
        maker_fee: Fraction(0),
        taker_fee: Fraction(0),
        liquidation_fee: Fraction(10_000),
        impact_notional: Amount(10_000_000_000),
        funding_interest: Ppb(0),
        funding_clamp: Ppb(10_000_000),
    }
}

/// A trade where `seller`'s order was resting (so its open quantity is released).
pub(super) fn trade(l: &mut Ledger, inst: InstrumentId, price: i64, qty: i64, buyer: AccountSlot, seller: AccountSlot) {
    l.open_order_delta(seller, inst, Side::Sell, qty);
    l.fill(Fill {
        instrument: inst,
        price: Price(price),
        qty: Qty(qty),
        taker_side: Side::Buy,
        taker: buyer,
        maker: seller,
        liquidation: None,
    });
    l.rekey_pending();
}

/// The pre-trade check of a new order of `account` (the examples' form).
pub(super) fn check_order(
    l: &Ledger,
    account: AccountId,
    instrument: InstrumentId,
    side: Side,
    qty: Qty,
    price: Price,
    reduce_only: bool,
) -> Result<Qty, RejectReason> {
    let exposure = Exposure { instrument, side, price, qty, reduce_only, change: Change::New };
    l.check_exposure(l.slot(account), &exposure)
}

/// Settles an account's funding in one instrument into collateral; returns what it paid
/// (funding otherwise settles with the next fill).
pub(super) fn settle_funding(l: &mut Ledger, slot: AccountSlot, instrument: InstrumentId) -> i128 {
    let index = l.funding_index(instrument);
    let paid = crate::account::tests::settle_funding(&mut l.accounts[slot.index()], instrument, index);
    if paid != 0 {
        l.reindex(slot);
    }
    paid
}

pub(super) fn usdc(n: i64) -> Amount {
    Amount(n * 1_000_000)
}

pub(super) fn ledger() -> Ledger {
    let mut l = Ledger::default();
    l.add_market(btc()).unwrap();
    l.add_market(MarketParams { quote_per_tick_lot: 100, ..btc() }).unwrap();
    let mut out = Vec::new();
    l.set_mark(BTC, Price(100_000), &mut out); // 50,000
    l.set_mark(ETH, Price(300_000), &mut out); // 3,000 with tick 0.01, lot 0.01
    l
}
