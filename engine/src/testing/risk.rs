//! A seeded stream of risk-heavy commands: two instruments, leveraged accounts and a market
//! maker, wandering marks, funding ticks, withdrawals — so that positions, funding,
//! liquidations, takeovers and ADL happen often (the risk property tests, and the journal and
//! snapshot tests, which want all of them in the state).

use core::str::FromStr;

use l2x_types::{
    AccountId, Amend, Amount, Cancel, ClientOrderId, Command, Decimal, Holder, InstrumentId, InstrumentSpec, NewOrder,
    OrderType, Price, Qty, Seq, Sequenced, Side, StpMode, Symbol, TimeInForce, Timestamp,
};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The leveraged accounts are 1 ..= ACCOUNTS.
pub const ACCOUNTS: u64 = 8;
/// The market maker: deep pockets, quotes both sides.
pub const MAKER: u64 = 9;
/// (symbol, tick, lot, start mark in ticks).
const MARKETS: [(&str, &str, &str, i64); 2] =
    [("BTC-PERP", "0.5", "0.001", 100_000), ("ETH-PERP", "0.01", "0.01", 300_000)];

fn instrument(i: usize) -> InstrumentId {
    InstrumentId(u32::try_from(i).expect("two markets"))
}

fn spec(i: usize) -> InstrumentSpec {
    let d = |s: &str| Decimal::from_str(s).expect("literal");
    let (symbol, tick, lot, _) = MARKETS[i];
    InstrumentSpec {
        symbol: Symbol::try_new(symbol).expect("literal"),
        tick_size: d(tick),
        lot_size: d(lot),
        initial_margin: d("0.1"),
        maintenance_margin: d("0.05"),
        max_order_qty: d("20"),
        max_position_qty: d("60"),
        price_band: d("0.2"),
        maker_fee: d("-0.0001"),
        taker_fee: d("0.0005"),
        liquidation_fee: d("0.01"),
        impact_notional: d("2000"),
        funding_interest: d("0.00001"),
        funding_clamp: d("0.05"),
    }
}

/// A random stream of commands against a state machine, with the marks it drove.
#[derive(Debug)]
pub struct Stream {
    seq: u64,
    ts: u64,
    marks: [i64; 2],
    next_cid: u64,
    live: Vec<(AccountId, ClientOrderId, usize)>,
}

impl Default for Stream {
    fn default() -> Stream {
        Stream::new()
    }
}

impl Stream {
    /// A stream at sequence 0, time 0, the marks at their start.
    pub fn new() -> Stream {
        Stream { seq: 0, ts: 0, marks: [MARKETS[0].3, MARKETS[1].3], next_cid: 0, live: Vec::new() }
    }

    fn cmd(&mut self, cmd: Command) -> Sequenced {
        self.seq += 1;
        self.ts += 1_000;
        Sequenced { seq: Seq(self.seq), ts: Timestamp(self.ts), cmd }
    }

    /// The listings, the oracle prices, the deposits and the maker's first quotes.
    pub fn setup(&mut self, rng: &mut impl Rng) -> Vec<Sequenced> {
        let mut cmds = Vec::new();
        for (i, market) in MARKETS.iter().enumerate() {
            cmds.push(self.cmd(Command::ListInstrument(Box::new(spec(i)))));
            cmds.push(self.cmd(Command::Oracle { instrument: instrument(i), price: Price(market.3) }));
        }
        for a in 1..=ACCOUNTS {
            // From thin (a few hundred USDC) to comfortable.
            let amount = Amount(rng.random_range(200..20_000) * Amount::ONE);
            cmds.push(self.cmd(Command::Deposit { to: Holder::Account(AccountId(a)), amount }));
        }
        cmds.push(
            self.cmd(Command::Deposit {
                to: Holder::Account(AccountId(MAKER)),
                amount: Amount(10_000_000 * Amount::ONE),
            }),
        );
        let fund = rng.random_range(0..3) * 500 * Amount::ONE;
        if fund > 0 {
            cmds.push(self.cmd(Command::Deposit { to: Holder::Insurance, amount: Amount(fund) }));
        }
        cmds
    }

    #[allow(clippy::too_many_arguments, reason = "a test helper spelling out one order")]
    fn order(
        &mut self,
        rng: &mut impl Rng,
        account: u64,
        i: usize,
        side: Side,
        offset: i64,
        qty: i64,
        tif: TimeInForce,
    ) -> Command {
        self.next_cid += 1;
        let cid = ClientOrderId(self.next_cid);
        let price = match side {
            Side::Buy => self.marks[i] - offset,
            Side::Sell => self.marks[i] + offset,
        };
        if tif.may_rest() {
            self.live.push((AccountId(account), cid, i));
        }
        Command::NewOrder(NewOrder {
            account: AccountId(account),
            cid,
            instrument: instrument(i),
            side,
            order_type: if rng.random_ratio(1, 15) { OrderType::Market } else { OrderType::Limit },
            price: Some(Price(price)),
            qty: Qty(qty),
            tif,
            expire_ts: None,
            post_only: false,
            reduce_only: rng.random_ratio(1, 8),
            stp: StpMode::ALL[rng.random_range(0..StpMode::ALL.len())],
        })
    }

    /// The next random command.
    pub fn next(&mut self, rng: &mut impl Rng) -> Sequenced {
        let i = rng.random_range(0..2usize);
        let tick_scale = self.marks[i] / 1_000;
        let cmd = match rng.random_range(0..100) {
            // The market maker quotes both sides near the mark.
            0..25 => {
                let side = if rng.random_ratio(1, 2) { Side::Buy } else { Side::Sell };
                let offset = rng.random_range(1..=20) * tick_scale / 10;
                let qty = rng.random_range(100..5_000);
                self.order(rng, MAKER, i, side, offset.max(1), qty, TimeInForce::Gtc)
            }
            // Traders take and make, often leveraged.
            25..60 => {
                let account = rng.random_range(1..=ACCOUNTS);
                let side = if rng.random_ratio(1, 2) { Side::Buy } else { Side::Sell };
                let offset = rng.random_range(-10..=10) * tick_scale / 10;
                let tif = if rng.random_ratio(1, 2) { TimeInForce::Ioc } else { TimeInForce::Gtc };
                let qty = rng.random_range(1..8_000);
                self.order(rng, account, i, side, offset, qty, tif)
            }
            60..70 if !self.live.is_empty() => {
                let (account, cid, _) = self.live.swap_remove(rng.random_range(0..self.live.len()));
                Command::Cancel(Cancel { account, cid, on_disconnect: false })
            }
            70..75 if !self.live.is_empty() => {
                let (account, cid, i) = self.live[rng.random_range(0..self.live.len())];
                let price = self.marks[i] + rng.random_range(-30..=30) * tick_scale / 10;
                Command::Amend(Amend { account, cid, instrument: instrument(i), price: Some(Price(price)), qty: None })
            }
            // The price path: small steps and occasional shocks.
            75..90 => {
                let pct = if rng.random_ratio(1, 6) { rng.random_range(-12..=12) } else { rng.random_range(-2..=2) };
                self.marks[i] = (self.marks[i] * (100 + pct) / 100).max(1_000);
                Command::Oracle { instrument: instrument(i), price: Price(self.marks[i]) }
            }
            90..94 => Command::Funding { instrument: instrument(i) },
            94..97 => Command::Withdraw {
                account: AccountId(rng.random_range(1..=ACCOUNTS)),
                amount: Amount(rng.random_range(1..2_000) * Amount::ONE),
            },
            _ => Command::Deposit {
                to: Holder::Account(AccountId(rng.random_range(1..=ACCOUNTS))),
                amount: Amount(rng.random_range(1..5_000) * Amount::ONE),
            },
        };
        self.cmd(cmd)
    }
}

/// A seeded stream of `commands` random commands after the setup (for the journal and
/// snapshot tests, which want positions, funding and liquidations in the state).
pub fn stream(seed: u64, commands: usize) -> Vec<Sequenced> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stream = Stream::new();
    let mut cmds = stream.setup(&mut rng);
    for _ in 0..commands {
        cmds.push(stream.next(&mut rng));
    }
    cmds
}
