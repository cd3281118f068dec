//! Seeded random command streams of order flow (the reference-model tests, the journal's
//! round trips).
//!
//! The streams are built to make the interesting things happen often: a handful of accounts
//! with a small pool of client ids (so cids collide and self-trades happen), prices in a
//! band a little wider than the instruments' price bands around marks that wander (so books
//! cross and some prices are out of band), every order type, time in force, flag and
//! self-trade prevention mode, amends, cancels of live and unknown orders, mass cancels,
//! oracle moves, deposits, time that advances so GTD orders expire, and a sprinkling of
//! invalid commands of every kind.

use core::str::FromStr;
use std::collections::BTreeMap;

use l2x_types::{
    AccountId, Amend, Amount, Cancel, ClientOrderId, Command, Decimal, Holder, InstrumentId, InstrumentSpec,
    MassCancel, NewOrder, OrderType, Price, Qty, Seq, Sequenced, Side, StpMode, Symbol, TimeInForce, Timestamp,
};
use rand::{Rng, RngExt};

/// Instrument listings: (symbol, tick, lot, max order qty, price band, centre price in ticks,
/// price spread in ticks). Instruments 0 and 1 are listed up front; 2 is listed by the
/// stream at some point; id 3 never exists.
const LISTINGS: [(&str, &str, &str, &str, &str, i64, i64); 3] = [
    ("BTC-PERP", "0.5", "0.001", "0.05", "0.01", 1000, 14),
    ("ETH-PERP", "1", "1", "40", "0.02", 300, 9),
    ("SOL-PERP", "0.01", "0.1", "3", "0.05", 50, 4),
];

/// Max order quantities of [`LISTINGS`], in lots.
const MAX_QTY: [i64; 3] = [50, 40, 30];

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).expect("a literal decimal")
}

/// The specification of listing `i`.
pub fn spec(i: usize) -> InstrumentSpec {
    let (symbol, tick, lot, max_order, band, _, _) = LISTINGS[i];
    InstrumentSpec {
        symbol: Symbol::try_new(symbol).expect("a literal symbol"),
        tick_size: d(tick),
        lot_size: d(lot),
        initial_margin: d("0.05"),
        maintenance_margin: d("0.03"),
        max_order_qty: d(max_order),
        // Positions never bind here: margin and limits are the risk tests' subject.
        max_position_qty: d("1000000"),
        price_band: d(band),
        maker_fee: d("0"),
        taker_fee: d("0"),
        liquidation_fee: d("0.01"),
        impact_notional: d("10000"),
        funding_interest: d("0"),
        funding_clamp: d("0.02"),
    }
}

/// The shape of a stream.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Client ids per account (at most this many live orders per account).
    cids: u64,
    /// A buy's limit is `centre + x` (a sell's `centre - x`) with `x` uniform in
    /// `-spread..=spread / lean`: the larger `lean`, the fewer new orders cross and the
    /// deeper the books.
    lean: i64,
    /// Percent of commands that are new orders.
    new_orders: u32,
}

impl Profile {
    /// Thin books that cross all the time: many trades, self-trades and sweeps.
    pub const CROSSING: Profile = Profile { cids: 16, lean: 2, new_orders: 48 };
    /// Books about a hundred orders deep over every price of the band, which mostly
    /// stay on their side (market orders and marks that move still sweep them).
    pub const DEEP: Profile = Profile { cids: 200, lean: 100, new_orders: 70 };
}

/// Builds a command stream: a fixed set-up, then random commands.
#[derive(Clone, Debug)]
pub struct Generator {
    profile: Profile,
    seq: u64,
    ts: u64,
    /// The instrument of the last new order per (account, cid), so that amends get prices
    /// near the right centre.
    last_instrument: BTreeMap<(AccountId, ClientOrderId), InstrumentId>,
    /// The (account, cid) of recent new orders: amends and cancels mostly pick one of
    /// these, so that they mostly hit live orders.
    recent: Vec<(AccountId, ClientOrderId)>,
}

impl Generator {
    /// A generator at sequence 0, time 0.
    pub fn new(profile: Profile) -> Generator {
        Generator { profile, seq: 0, ts: 0, last_instrument: BTreeMap::new(), recent: Vec::new() }
    }

    fn sequenced(&mut self, cmd: Command) -> Sequenced {
        self.seq += 1;
        Sequenced { seq: Seq(self.seq), ts: Timestamp(self.ts), cmd }
    }

    /// One random command. Rarely its timestamp is earlier than the previous one (a
    /// sequencer must never do this; the state machine's clock must not go back if it
    /// does).
    pub fn next(&mut self, rng: &mut impl Rng) -> Sequenced {
        let mut cmd = self.next_in_order(rng);
        if rng.random_ratio(1, 100) {
            cmd.ts = Timestamp(cmd.ts.0.saturating_sub(rng.random_range(1..=50)));
        }
        cmd
    }

    /// Two instruments, collateral for four accounts, a mark for the first instrument only
    /// (the second gets one from the random stream; until then its orders are rejected
    /// `no_mark_price`).
    pub fn setup(&mut self) -> Vec<Sequenced> {
        let mut cmds = vec![
            self.sequenced(Command::ListInstrument(Box::new(spec(0)))),
            self.sequenced(Command::ListInstrument(Box::new(spec(1)))),
        ];
        for a in 1..=4 {
            // A billion USDC each: margin never binds for the funded accounts.
            let amount = Amount(1_000_000_000_000_000);
            cmds.push(self.sequenced(Command::Deposit { to: Holder::Account(AccountId(a)), amount }));
        }
        cmds.push(self.sequenced(Command::Oracle { instrument: InstrumentId(0), price: Price(LISTINGS[0].5) }));
        // Orders for an instrument with no oracle price yet: rejected `no_mark_price` in
        // every stream, whenever the random stream happens to give ETH-PERP its first price.
        for cid in 1..=5 {
            cmds.push(self.sequenced(Command::NewOrder(NewOrder {
                account: AccountId(1),
                cid: ClientOrderId(cid),
                instrument: InstrumentId(1),
                side: Side::Buy,
                order_type: OrderType::Limit,
                price: Some(Price(LISTINGS[1].5)),
                qty: Qty(1),
                tif: TimeInForce::Gtc,
                expire_ts: None,
                post_only: false,
                reduce_only: false,
                stp: StpMode::CancelTaker,
            })));
        }
        cmds
    }

    fn next_in_order(&mut self, rng: &mut impl Rng) -> Sequenced {
        if self.seq % 64 == 63 {
            // Time passes with nothing else: GTD orders expire on a tick alone. (Every 64th
            // command, drawing nothing from `rng`: the random stream stays what it was.)
            self.ts += 5;
            return self.sequenced(Command::Tick);
        }
        if rng.random_ratio(1, 2) {
            self.ts += rng.random_range(1..=30);
        }
        let cmd = match rng.random_range(0..100) {
            // New orders, then amends and cancels share what the profile leaves of 78 %.
            n if n < self.profile.new_orders => Command::NewOrder(self.new_order(rng)),
            n if n < self.profile.new_orders + (78 - self.profile.new_orders) * 8 / 15 => {
                let (account, cid) = self.target(rng);
                let instrument = self.last_instrument.get(&(account, cid)).copied().unwrap_or(InstrumentId(0));
                // Now and then an amend names another instrument than its order's.
                let named = if rng.random_ratio(1, 25) { InstrumentId((instrument.0 + 1) % 3) } else { instrument };
                Command::Amend(Amend {
                    account,
                    cid,
                    instrument: named,
                    price: rng.random_ratio(3, 5).then(|| limit_price(rng, instrument)),
                    qty: rng.random_ratio(3, 5).then(|| qty(rng, instrument)),
                })
            }
            0..78 => {
                let (account, cid) = self.target(rng);
                Command::Cancel(Cancel { account, cid, on_disconnect: rng.random_ratio(1, 8) })
            }
            78..80 => Command::MassCancel(MassCancel {
                account: account(rng),
                instrument: rng.random_ratio(1, 2).then(|| instrument(rng)),
                side: rng.random_ratio(1, 2).then(|| side(rng)),
            }),
            80..93 => {
                // Instrument 2 gets its first mark late, so its orders meet no_mark_price.
                let instrument = InstrumentId(match rng.random_range(0..100) {
                    0..48 => 0,
                    48..97 => 1,
                    97..98 => 2,
                    _ => 3,
                });
                let price = match rng.random_range(0..40) {
                    0 => Price(0),
                    1 => Price(-5),
                    _ => {
                        let (centre, spread) = centre_spread(instrument);
                        Price(centre + rng.random_range(-spread / 3..=spread / 3))
                    }
                };
                Command::Oracle { instrument, price }
            }
            93..97 => Command::Deposit {
                // Now and then one of the two reserved ids (refused `reserved_account`).
                to: Holder::Account(AccountId(if rng.random_ratio(1, 20) {
                    AccountId::RESERVED_FROM + rng.random_range(0..2)
                } else {
                    rng.random_range(1..=4)
                })),
                amount: Amount(match rng.random_range(0..10) {
                    0 => 0,
                    1 => -1,
                    _ => rng.random_range(1..1_000_000),
                }),
            },
            _ => {
                let mut listing = spec(2);
                match rng.random_range(0..4) {
                    0 => {
                        // Invalid: bad_instrument.
                        listing.symbol = Symbol::try_new("BAD-PERP").expect("literal");
                        listing.price_band = d("1");
                    }
                    1 => listing.symbol = Symbol::try_new("BTC-PERP").expect("literal"), // duplicate
                    _ => {} // SOL-PERP: listed the first time, a duplicate after
                }
                Command::ListInstrument(Box::new(listing))
            }
        };
        self.sequenced(cmd)
    }

    /// Few client ids per account, so cids collide and amends and cancels hit live orders.
    fn cid(&self, rng: &mut impl Rng) -> ClientOrderId {
        ClientOrderId(rng.random_range(1..=self.profile.cids))
    }

    /// An (account, cid) to amend or cancel: mostly one of a recent new order.
    fn target(&mut self, rng: &mut impl Rng) -> (AccountId, ClientOrderId) {
        if self.recent.is_empty() || rng.random_ratio(1, 4) {
            (account(rng), self.cid(rng))
        } else {
            self.recent[rng.random_range(0..self.recent.len())]
        }
    }

    fn new_order(&mut self, rng: &mut impl Rng) -> NewOrder {
        let instrument = instrument(rng);
        let market = rng.random_ratio(1, 10);
        let tif = match rng.random_range(0..20) {
            0..9 => TimeInForce::Gtc,
            9..13 => TimeInForce::Ioc,
            13..16 => TimeInForce::Fok,
            _ => TimeInForce::Gtd,
        };
        let expire_ts = match (tif, rng.random_range(0..30)) {
            (TimeInForce::Gtd, 0) => None,
            (TimeInForce::Gtd, 1) => Some(Timestamp(self.ts)),
            (TimeInForce::Gtd, _) => Some(Timestamp(self.ts + rng.random_range(1..=1000))),
            (_, 0) => Some(Timestamp(self.ts + 10)),
            _ => None,
        };
        let side = side(rng);
        let price = match (market, rng.random_range(0..40)) {
            (true, 0) => Some(limit_price(rng, instrument)),
            (true, _) => None,
            (false, 0) => None,
            (false, 1) => Some(Price(0)),
            (false, _) => {
                // Buyers lean low and sellers high, so books build some depth and a
                // crossing order often sweeps several levels.
                let (centre, spread) = centre_spread(instrument);
                let lean = rng.random_range(-spread..=spread / self.profile.lean);
                Some(Price(if side == Side::Buy { centre + lean } else { centre - lean }))
            }
        };
        // Account 5 (never funded) sends one order in twenty: enough to see its rejects, few
        // enough that the books stay deep.
        let account = if rng.random_ratio(1, 20) { AccountId(5) } else { AccountId(rng.random_range(1..=4)) };
        let cid = self.cid(rng);
        self.last_instrument.insert((account, cid), instrument);
        if self.recent.len() == 32 {
            self.recent.remove(0);
        }
        self.recent.push((account, cid));
        NewOrder {
            account,
            cid,
            instrument,
            side,
            order_type: if market { OrderType::Market } else { OrderType::Limit },
            price,
            qty: qty(rng, instrument),
            tif,
            expire_ts,
            post_only: rng.random_ratio(1, 7),
            // Reduce-only needs positions, which this model does not keep: the risk tests
            // (risk.rs) cover it.
            reduce_only: false,
            stp: StpMode::ALL[rng.random_range(0..StpMode::ALL.len())],
        }
    }
}

/// Any account: 1-4 have collateral; 5 sends orders but never deposits (they are all
/// refused `insufficient_margin`); 6 only sends amends, cancels and mass cancels (it never
/// exists).
fn account(rng: &mut impl Rng) -> AccountId {
    AccountId(rng.random_range(1..=6))
}

fn side(rng: &mut impl Rng) -> Side {
    if rng.random_ratio(1, 2) { Side::Buy } else { Side::Sell }
}

/// Mostly the two listed instruments; sometimes the one the stream lists; rarely one that
/// never exists.
fn instrument(rng: &mut impl Rng) -> InstrumentId {
    InstrumentId(match rng.random_range(0..20) {
        0..9 => 0,
        9..17 => 1,
        17..19 => 2,
        _ => 3,
    })
}

fn centre_spread(instrument: InstrumentId) -> (i64, i64) {
    LISTINGS.get(instrument.0 as usize).map_or((100, 5), |l| (l.5, l.6))
}

/// A price near the instrument's centre, a little wider than its band; rarely not positive.
fn limit_price(rng: &mut impl Rng, instrument: InstrumentId) -> Price {
    if rng.random_ratio(1, 60) {
        return Price(rng.random_range(-2..=0));
    }
    let (centre, spread) = centre_spread(instrument);
    Price(centre + rng.random_range(-spread..=spread))
}

/// A small quantity; sometimes up to and past the instrument's maximum; rarely not positive.
fn qty(rng: &mut impl Rng, instrument: InstrumentId) -> Qty {
    let max = MAX_QTY.get(instrument.0 as usize).copied().unwrap_or(10);
    Qty(match rng.random_range(0..50) {
        0 => rng.random_range(-1..=0),
        1..4 => rng.random_range(max - 2..=max + 2),
        _ => rng.random_range(1..=12),
    })
}
