//! The risk state: every account's collateral, positions and open orders, every market's
//! mark price and funding index, and the liquidation index.
//!
//! # Liquidation index
//!
//! An account's scaled health `h = 10⁶ · equity − Σ |size|·mark·k·MMF_ppm` is linear in
//! each mark price: `h = h_rest + mark_j · b_j` with `b_j = k_j · (10⁶ · size_j −
//! |size_j| · MMF_j)`. Holding the other marks fixed, the account crosses maintenance in
//! instrument j at the mark `−h_rest / b_j`, its **key**: a long is liquidatable when the
//! mark falls **below** its key, a short when the mark rises **above** it. Each market
//! buckets its accounts by key (`index.rs`: longs and shorts apart, a fixed number of
//! buckets across the window below), so an oracle tick in j finds its liquidatable
//! accounts by walking the buckets past the new mark — cost proportional to the accounts
//! that crossed, plus the occupied buckets passed — and re-keys the accounts that hold j
//! **and** another instrument (their thresholds elsewhere moved). An account is re-keyed
//! whenever its collateral or positions change; a funding tick re-keys every holder of the
//! instrument (its unsettled funding changed). Each market also keeps the set of accounts
//! holding a long and holding a short, for funding ticks and auto-deleveraging.
//!
//! # The window: re-keying accounts that no price near the mark can liquidate
//!
//! Each market keeps a window `[lo, hi]` of marks around its mark (`lo = mark / 2`,
//! `hi = 2 · mark`, set when the first oracle price arrives and reset whenever an oracle
//! price falls outside it). A long whose threshold is at or below `lo`, or a short whose
//! threshold is at or above `hi`, cannot be liquidated by any mark inside the window: it is
//! keyed [`Key::Far`] and sits in no bucket (so is a position whose exact threshold lies
//! beyond the `i64` range on the safe side).
//! Telling "far" from "near" needs no division (`(mark − lo) · b ≤ h` for a long). So an
//! account with low leverage (a long with less than about 2× leverage, a short with less
//! than about 1×) costs a few multiplications per fill; a leveraged one also moves between
//! buckets when its key leaves its bucket (a swap-remove and a push). When an oracle price
//! leaves the window, the window is re-centred on it and every holder of the instrument
//! re-keyed and re-bucketed (O(holders), once per halving or doubling of the price) before
//! the queries, so the queries stay exact. Before the first oracle price there is no
//! window: every account is keyed exactly and sits in the overflow bucket.
//!
//! # Performance
//!
//! Margin figures are kept scaled by 10⁶ and compared exactly ([`Ledger::below_maintenance`],
//! the pre-trade checks, the index); only [`Ledger::health`] rounds them to quote units, for
//! reports. Each market keeps, with its mark, what one lot is worth and requires at it
//! (`mark · k`, times MMF, times IMF), so an account's margin figures cost one multiplication
//! per term and position.

use std::collections::BTreeSet;

use l2x_types::{AccountId, Amount, DetMap, Holder, InstrumentId, Ppb, Price, Qty, RejectReason, Side};

use crate::account::{Account, FillEffect, IndexKey, Key, Position};
use crate::formulas::{self, ExactPrice, LiquidationPrices};
use crate::index::{BUCKETS, Buckets, Geometry, OVERFLOW};
use crate::math::{ceil_div, floor_div, saturate};
use crate::params::{LiquidationParams, MarketParams};
use crate::{AccountSlot, LedgerError};

const PPM: i128 = 1_000_000;

#[derive(Clone, Debug)]
struct Market {
    params: MarketParams,
    /// The mark, with the per-lot products every margin figure multiplies by; set only
    /// through [`Market::set_mark_price`], which keeps the products in step.
    mark: Option<Mark>,
    funding_index: i128,
    /// Slots holding a long, and a short, in this market (near or far).
    long_holders: BTreeSet<u32>,
    short_holders: BTreeSet<u32>,
    /// Near longs and shorts, bucketed by key (module doc; `index.rs`).
    near_longs: Buckets,
    near_shorts: Buckets,
    /// Slots holding this instrument and at least one other.
    multi: BTreeSet<u32>,
    /// The window of marks `[lo, hi]` inside which far accounts need no exact key, and its
    /// buckets (module doc, "The window"); `None` until the first oracle price.
    window: Option<Geometry>,
    /// Per lot of a long, `b / size = k · (10⁶ − MMF)`; of a short, `k · (10⁶ + MMF)`.
    slope_long: i128,
    slope_short: i128,
}

/// The window of marks centred on the mark `p` (module doc): `[p / 2, 2 · p]`.
fn window_at(p: i64) -> Geometry {
    Geometry::new(p / 2, p.saturating_mul(2).max(p / 2 + 1))
}

/// `a · b`, in one multiplication when both fit `i64`; `None` on overflow.
#[inline]
fn mul_wide(a: i128, b: i128) -> Option<i128> {
    match (i64::try_from(a), i64::try_from(b)) {
        (Ok(a), Ok(b)) => Some(i128::from(a) * i128::from(b)),
        _ => a.checked_mul(b),
    }
}

/// A market's mark price and what one lot is worth and requires at it, computed once per
/// oracle price instead of in every margin computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mark {
    price: Price,
    /// `mark · k`: one lot's value at the mark, quote micro-units.
    value: i128,
    /// `mark · k · MMF_ppm`: one lot's maintenance requirement, scaled by 10⁶.
    maintenance: i128,
    /// `mark · k · IMF_ppm`: one lot's initial requirement, scaled by 10⁶.
    initial: i128,
}

impl Market {
    /// The bucket of an indexed position's key: `None` for a far key (in no bucket), the
    /// overflow bucket while there is no window.
    #[inline]
    fn bucket(&self, key: IndexKey) -> Option<usize> {
        match (self.window, key.key) {
            (None, _) => Some(OVERFLOW),
            (Some(_), Key::Far) => None,
            (Some(g), Key::At(k)) => Some(g.bucket(key.long, k)),
        }
    }

    fn near_mut(&mut self, long: bool) -> &mut Buckets {
        if long { &mut self.near_longs } else { &mut self.near_shorts }
    }

    fn holders_mut(&mut self, long: bool) -> &mut BTreeSet<u32> {
        if long { &mut self.long_holders } else { &mut self.short_holders }
    }

    /// Every holder, longs then shorts.
    fn holders(&self) -> Vec<u32> {
        self.long_holders.iter().chain(self.short_holders.iter()).copied().collect()
    }

    /// Sets (or clears) the mark and the per-lot products that go with it.
    fn set_mark_price(&mut self, price: Option<Price>) {
        self.mark = price.map(|price| {
            let value = i128::from(price.0) * i128::from(self.params.quote_per_tick_lot);
            Mark {
                price,
                value,
                maintenance: value * i128::from(self.params.maintenance_margin.0),
                initial: value * i128::from(self.params.initial_margin.0),
            }
        });
    }

    /// The liquidation-index key of a position of `size` in this market of an account whose
    /// scaled health is `hscaled` (module doc): `None` when flat.
    fn index_key(&self, size: i64, hscaled: i128) -> Option<IndexKey> {
        if size == 0 {
            return None;
        }
        // b = k · (10⁶ · size − |size| · MMF): size times the per-lot slope of its side.
        let long = size > 0;
        let b = i128::from(size) * if long { self.slope_long } else { self.slope_short };
        let mark = self.mark.map_or(0, |x| x.price.0);
        if let Some(Geometry { lo, hi, .. }) = self.window {
            // With h_rest = hscaled − mark·b: a long is far when ⌈−h_rest / b⌉ ≤ lo, i.e.
            // (mark − lo)·b ≤ hscaled; a short when ⌊h_rest / −b⌋ ≥ hi, i.e.
            // (hi − mark)·(−b) ≤ hscaled. No division, one multiplication.
            let far = if long {
                mul_wide(i128::from(mark) - i128::from(lo), b).is_some_and(|x| x <= hscaled)
            } else {
                mul_wide(i128::from(hi) - i128::from(mark), -b).is_some_and(|x| x <= hscaled)
            };
            if far {
                return Some(IndexKey { long, key: Key::Far });
            }
        }
        let rest = hscaled - i128::from(mark) * b;
        let key = if long { saturate(ceil_div(-rest, b)) } else { saturate(floor_div(rest, -b)) };
        // A threshold saturated on the safe side (below every mark for a long, above every
        // mark for a short) liquidates at no `i64` mark: far.
        let key = match (long, key) {
            (true, i64::MIN) | (false, i64::MAX) => Key::Far,
            _ => Key::At(key),
        };
        Some(IndexKey { long, key })
    }
}

/// An account's equity and requirements scaled by 10⁶, exact: no division.
#[derive(Clone, Copy, Debug)]
struct Scaled {
    equity: i128,
    maintenance: i128,
    initial: i128,
}

impl Scaled {
    #[inline]
    fn below_maintenance(&self) -> bool {
        PPM * self.equity < self.maintenance
    }
}

/// An account's margin figures at the current marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    /// Collateral + unrealised PnL at mark − unsettled funding.
    pub equity: i128,
    /// Initial requirement (worse side of open orders), rounded up.
    pub initial: i128,
    /// Maintenance requirement, rounded up.
    pub maintenance: i128,
    /// Maintenance requirement × 10⁶, exact.
    pub maintenance_scaled: i128,
    /// Initial requirement × 10⁶, exact.
    pub initial_scaled: i128,
}

impl Health {
    /// `true` if equity is below the maintenance requirement.
    pub fn below_maintenance(&self) -> bool {
        PPM * self.equity < self.maintenance_scaled
    }
}

/// A liquidation order for one position, as the engine must enter it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiquidationOrder {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Side of the closing order (opposite the position).
    pub side: Side,
    /// Lots to close.
    pub qty: Qty,
    /// The limit (fillable price, never worse than bankrupt, within the band).
    pub prices: LiquidationPrices,
}

/// One trade as the risk engine books it (see [`Ledger::fill`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Execution price (the maker's).
    pub price: Price,
    /// Executed quantity.
    pub qty: Qty,
    /// The taker's side.
    pub taker_side: Side,
    /// The taker.
    pub taker: AccountSlot,
    /// The resting maker.
    pub maker: AccountSlot,
    /// The taker's bankruptcy price when the taker is being liquidated.
    pub liquidation: Option<ExactPrice>,
}

/// What an order asks of its account's margin: the input of the pre-trade check
/// ([`Ledger::check_exposure`]), for a new order and for an amend alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exposure {
    /// The instrument.
    pub instrument: InstrumentId,
    /// The order's side.
    pub side: Side,
    /// The price it may fill at: its limit (an amend's new price), or a market order's
    /// protection price.
    pub price: Price,
    /// The open quantity it asks for: the new order's quantity, or the amended order's new
    /// open quantity.
    pub qty: Qty,
    /// Reduce-only.
    pub reduce_only: bool,
    /// A new order, or an amend of a resting one.
    pub change: Change,
}

/// Whether an [`Exposure`] is a new order or an amend of a resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new order.
    New,
    /// An amend of a resting order.
    Amend {
        /// The resting order's open quantity before the amend.
        from: Qty,
        /// Whether the amend changes the price.
        repriced: bool,
    },
}

/// An account's position and open orders in one instrument, before an order.
#[derive(Clone, Copy, Debug)]
struct Open {
    size: i64,
    buy: i64,
    sell: i64,
}

/// Every account and market of the risk engine.
#[derive(Clone, Debug)]
pub struct Ledger {
    slots: DetMap<AccountId, AccountSlot>,
    accounts: Vec<Account>,
    markets: Vec<Market>,
    liquidation: LiquidationParams,
    deposits: i128,
    withdrawals: i128,
}

impl Default for Ledger {
    fn default() -> Ledger {
        Ledger::new(LiquidationParams::default())
    }
}

impl Ledger {
    /// The insurance fund's slot.
    pub const INSURANCE: AccountSlot = AccountSlot(0);
    /// The fee account's slot.
    pub const FEES: AccountSlot = AccountSlot(1);

    /// An empty ledger with the insurance fund and the fee account.
    pub fn new(liquidation: LiquidationParams) -> Ledger {
        Ledger {
            slots: DetMap::default(),
            accounts: vec![Account::new(Holder::Insurance), Account::new(Holder::Fees)],
            markets: Vec::new(),
            liquidation,
            deposits: 0,
            withdrawals: 0,
        }
    }

    /// The liquidation parameters.
    pub fn liquidation_params(&self) -> LiquidationParams {
        self.liquidation
    }

    /// Adds the market of a newly listed instrument (ids are dense, in listing order).
    ///
    /// # Errors
    /// [`crate::ParamsError`] if the parameters are invalid.
    pub fn add_market(&mut self, params: MarketParams) -> Result<InstrumentId, crate::ParamsError> {
        params.validate()?;
        let id = InstrumentId(u32::try_from(self.markets.len()).unwrap_or(u32::MAX));
        self.markets.push(Market {
            params,
            mark: None,
            funding_index: 0,
            long_holders: BTreeSet::new(),
            short_holders: BTreeSet::new(),
            near_longs: Buckets::default(),
            near_shorts: Buckets::default(),
            multi: BTreeSet::new(),
            window: None,
            slope_long: i128::from(params.quote_per_tick_lot) * (PPM - i128::from(params.maintenance_margin.0)),
            slope_short: i128::from(params.quote_per_tick_lot) * (PPM + i128::from(params.maintenance_margin.0)),
        });
        Ok(id)
    }

    /// A market's mark price.
    pub fn mark(&self, instrument: InstrumentId) -> Option<Price> {
        self.markets.get(instrument.0 as usize).and_then(|m| m.mark.map(|x| x.price))
    }

    /// A market's cumulative funding index (quote micro-units per lot).
    pub fn funding_index(&self, instrument: InstrumentId) -> i128 {
        self.markets.get(instrument.0 as usize).map_or(0, |m| m.funding_index)
    }

    // ----- accounts ------------------------------------------------------------------------

    /// The slot of an existing trading account.
    #[inline]
    pub fn slot(&self, account: AccountId) -> Option<AccountSlot> {
        self.slots.get(&account).copied()
    }

    /// The slot of a trading account, creating it (empty) on first use.
    ///
    /// # Panics
    /// If more than `u32::MAX` accounts exist.
    pub fn slot_or_create(&mut self, account: AccountId) -> AccountSlot {
        if let Some(slot) = self.slot(account) {
            return slot;
        }
        let slot = AccountSlot(u32::try_from(self.accounts.len()).expect("fewer than 2^32 accounts"));
        self.slots.insert(account, slot);
        self.accounts.push(Account::new(Holder::Account(account)));
        slot
    }

    /// The slot of a holder, creating a trading account on first use.
    pub fn holder_slot(&mut self, holder: Holder) -> AccountSlot {
        match holder {
            Holder::Insurance => Self::INSURANCE,
            Holder::Fees => Self::FEES,
            Holder::Account(id) => self.slot_or_create(id),
        }
    }

    /// The account in `slot`.
    #[inline]
    pub fn account(&self, slot: AccountSlot) -> &Account {
        &self.accounts[slot.index()]
    }

    /// Every account, insurance fund and fee account first, then trading accounts in
    /// creation order.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// Trading accounts' slots in ascending account id.
    pub fn slots_by_id(&self) -> Vec<AccountSlot> {
        let mut all: Vec<(AccountId, AccountSlot)> = self.slots.iter().map(|(a, s)| (*a, *s)).collect();
        all.sort_unstable();
        all.into_iter().map(|(_, s)| s).collect()
    }

    /// Total deposits and total withdrawals so far (conservation's right-hand side).
    pub fn flows(&self) -> (i128, i128) {
        (self.deposits, self.withdrawals)
    }

    /// Credits collateral to a holder, creating a trading account on first deposit.
    ///
    /// # Errors
    /// [`LedgerError`] if the amount is not positive or the balance would overflow.
    pub fn deposit(&mut self, holder: Holder, amount: Amount) -> Result<(AccountSlot, i64), LedgerError> {
        if amount.0 <= 0 {
            return Err(LedgerError::NonPositiveAmount);
        }
        let current = match holder {
            Holder::Account(id) => self.slot(id).map_or(0, |s| self.account(s).collateral),
            Holder::Insurance => self.account(Self::INSURANCE).collateral,
            Holder::Fees => self.account(Self::FEES).collateral,
        };
        current.checked_add(amount.0).ok_or(LedgerError::Overflow)?;
        let slot = self.holder_slot(holder);
        self.accounts[slot.index()].credit(i128::from(amount.0));
        self.deposits += i128::from(amount.0);
        self.reindex(slot);
        Ok((slot, self.account(slot).collateral))
    }

    /// Debits collateral from a trading account.
    ///
    /// # Errors
    /// `bad_amount` if not positive; `insufficient_margin` if the account does not exist,
    /// the collateral would go negative, or equity would fall below the initial requirement.
    pub fn withdraw(&mut self, account: AccountId, amount: Amount) -> Result<(AccountSlot, i64), RejectReason> {
        if amount.0 <= 0 {
            return Err(RejectReason::BadAmount);
        }
        let slot = self.slot(account).ok_or(RejectReason::InsufficientMargin)?;
        let h = self.scaled(slot);
        let a = i128::from(amount.0);
        if i128::from(self.account(slot).collateral) < a || PPM * (h.equity - a) < h.initial {
            return Err(RejectReason::InsufficientMargin);
        }
        self.accounts[slot.index()].credit(-a);
        self.withdrawals += a;
        self.reindex(slot);
        Ok((slot, self.account(slot).collateral))
    }

    // ----- restore (from a snapshot) ---------------------------------------------------

    /// Sets a market's mark and funding index as a snapshot recorded them (no liquidation
    /// check: the snapshot was taken after its command's liquidations).
    pub fn restore_market(&mut self, instrument: InstrumentId, mark: Option<Price>, funding_index: i128) {
        if let Some(m) = self.markets.get_mut(instrument.0 as usize) {
            m.set_mark_price(mark);
            // The window is centred on the mark, as an oracle price would centre it.
            m.window = mark.map(|p| window_at(p.0));
            m.funding_index = funding_index;
        }
    }

    /// Restores a holder's collateral and positions as a snapshot recorded them, with no open
    /// order quantity (the engine re-rests the orders, which adds it back).
    pub fn restore_account(&mut self, holder: Holder, collateral: i64, positions: &[Position]) -> AccountSlot {
        let slot = self.holder_slot(holder);
        let records: Vec<Position> = positions
            .iter()
            .map(|p| Position { open_buy: 0, open_sell: 0, liq_key: None, liq_place: 0, ..*p })
            .filter(|p| (p.instrument.0 as usize) < self.markets.len())
            .collect();
        let a = &mut self.accounts[slot.index()];
        a.collateral = collateral;
        a.positions = records;
        slot
    }

    /// Restores the totals of deposits and withdrawals, then re-keys every account in the
    /// liquidation index.
    pub fn restore_flows_and_index(&mut self, deposits: i128, withdrawals: i128) {
        self.deposits = deposits;
        self.withdrawals = withdrawals;
        for i in 0..self.accounts.len() {
            self.reindex(AccountSlot(u32::try_from(i).unwrap_or(u32::MAX)));
        }
    }

    // ----- margin --------------------------------------------------------------------------

    /// Margin figures of an account at the current marks.
    pub fn health(&self, slot: AccountSlot) -> Health {
        let h = self.scaled(slot);
        Health {
            equity: h.equity,
            initial: ceil_div(h.initial, PPM),
            maintenance: ceil_div(h.maintenance, PPM),
            maintenance_scaled: h.maintenance,
            initial_scaled: h.initial,
        }
    }

    /// `true` if the account's equity is below its maintenance requirement (the same test as
    /// [`Health::below_maintenance`], without rounding anything).
    ///
    /// Read from the liquidation index when the account has an indexed position: its key is
    /// the mark at which it crosses maintenance with everything else as it is now, so a long
    /// is below exactly when the mark is under its key, a short when the mark is over it (a
    /// far key means "not below" while the mark is inside the window, which it always is).
    /// Otherwise (no position, a saturated key, the insurance fund or the fee account)
    /// computed in full. [`Ledger::check_invariants`] checks the two agree for every account.
    #[inline]
    pub fn below_maintenance(&self, slot: AccountSlot) -> bool {
        let a = self.account(slot);
        for p in &a.positions {
            let (Some(k), Some(mark)) = (p.liq_key, self.markets[p.instrument.0 as usize].mark) else { continue };
            // A threshold saturated on the unsafe side says nothing exact: computed in full.
            match (k.long, k.key) {
                (_, Key::Far) => return false,
                (true, Key::At(t)) if t != i64::MAX => return mark.price.0 < t,
                (false, Key::At(t)) if t != i64::MIN => return mark.price.0 > t,
                _ => {}
            }
        }
        self.scaled(slot).below_maintenance()
    }

    /// Equity and the exact scaled requirements of an account at the current marks.
    #[inline]
    fn scaled(&self, slot: AccountSlot) -> Scaled {
        let a = self.account(slot);
        let mut equity = i128::from(a.collateral);
        let (mut mmr, mut imr) = (0i128, 0i128);
        for p in &a.positions {
            let m = &self.markets[p.instrument.0 as usize];
            let (value, maintenance, initial) = m.mark.map_or((0, 0, 0), |x| (x.value, x.maintenance, x.initial));
            let s = i128::from(p.size);
            equity += s * value - p.cost - s * (m.funding_index - p.funding_index);
            mmr += s.abs() * maintenance;
            imr += i128::from(p.worst_side()) * initial;
        }
        Scaled { equity, maintenance: mmr, initial: imr }
    }

    /// The pre-trade check of an order's [`Exposure`] for the account in `slot` (`None`: an
    /// account that does not exist yet, which has no equity). Returns the quantity to enter:
    /// a reduce-only new order is cut down to its position; anything else enters whole.
    ///
    /// Rules, in order:
    ///
    /// 1. An amend that neither raises the quantity nor changes the price adds no risk and
    ///    always passes.
    /// 2. Reduce-only (`reduce_only_would_increase`): a new order must be opposite a position
    ///    and is cut to its size; an amended order may not grow beyond the position.
    /// 3. The position if this and every same-side open order filled must stay within
    ///    `max_position_qty`, unless it is no larger than now (`max_position`).
    /// 4. Margin (`insufficient_margin`) unless one of: equity after the worst case (the
    ///    order, or the amended order as a whole, filled at its price, paying the taker fee)
    ///    covers the initial requirement with it open; it strictly lowers the requirement;
    ///    or it can only reduce the position (opposite side, and with the same-side open
    ///    orders no larger than it).
    ///
    /// # Errors
    /// The reject reason.
    #[inline]
    pub fn check_exposure(&self, slot: Option<AccountSlot>, exposure: &Exposure) -> Result<Qty, RejectReason> {
        let e = exposure;
        if let Change::Amend { from, repriced: false } = e.change
            && e.qty <= from
        {
            return Ok(e.qty);
        }
        let pos = slot.and_then(|s| self.account(s).position(e.instrument)).copied();
        let (size, open_buy, open_sell) = pos.map_or((0, 0, 0), |p| (p.size, p.open_buy, p.open_sell));
        let (qty, delta) = match e.change {
            Change::New => {
                let mut qty = e.qty.0;
                if e.reduce_only {
                    if size == 0 || (e.side == Side::Buy) == (size > 0) {
                        return Err(RejectReason::ReduceOnlyWouldIncrease);
                    }
                    qty = qty.min(size.abs());
                }
                (qty, qty)
            }
            Change::Amend { from, .. } => {
                if e.reduce_only && e.qty.0 > size.abs() {
                    return Err(RejectReason::ReduceOnlyWouldIncrease);
                }
                (e.qty.0, e.qty.0 - from.0)
            }
        };
        let open = Open { size, buy: open_buy, sell: open_sell };
        self.check_margin(slot, e, open, delta, qty)?;
        Ok(Qty(qty))
    }

    /// Rules 3 and 4 of [`Ledger::check_exposure`]: `open` is the position and open orders
    /// before, `delta` the change of the order's side's open quantity, `fill_qty` what may
    /// fill at the exposure's price.
    #[inline(always)]
    fn check_margin(
        &self,
        slot: Option<AccountSlot>,
        e: &Exposure,
        open: Open,
        delta: i64,
        fill_qty: i64,
    ) -> Result<(), RejectReason> {
        let Some(m) = self.markets.get(e.instrument.0 as usize) else { return Err(RejectReason::UnknownSymbol) };
        let at = m.mark.ok_or(RejectReason::NoMarkPrice)?;
        let (side, size, limit) = (e.side, open.size, e.price);
        let (buy_delta, sell_delta) = match side {
            Side::Buy => (delta, 0),
            Side::Sell => (0, delta),
        };
        let mark = at.price;
        let (s, ob, os) = (i128::from(size), i128::from(open.buy), i128::from(open.sell));
        let (bd, sd) = (i128::from(buy_delta), i128::from(sell_delta));
        let reach = match side {
            Side::Buy => s + ob + bd,
            Side::Sell => s - os - sd,
        };
        if reach.abs() > i128::from(m.params.max_position_qty.0) && reach.abs() > s.abs() {
            return Err(RejectReason::MaxPosition);
        }
        let k = i128::from(m.params.quote_per_tick_lot);
        let (o, l, q) = (i128::from(mark.0), i128::from(limit.0), i128::from(fill_qty));
        let worst = |b: i128, sl: i128| (s + b).abs().max((s - sl).abs());
        let before_j = worst(ob, os) * at.initial;
        let after_j = worst(ob + bd, os + sd) * at.initial;
        let h = slot.map_or(Scaled { equity: 0, maintenance: 0, initial: 0 }, |s| self.scaled(s));
        let imr_after = h.initial - before_j + after_j;
        let slippage = match side {
            Side::Buy => (l - o).max(0) * q * k,
            Side::Sell => (o - l).max(0) * q * k,
        };
        let taker_fee = i128::from(m.params.taker_fee.0.max(0));
        let fee = if taker_fee == 0 { 0 } else { ceil_div(l * q * k * taker_fee, PPM) };
        let equity_after = h.equity - slippage - fee;
        let opposite = (side == Side::Buy && size < 0) || (side == Side::Sell && size > 0);
        let same_side_open = match side {
            Side::Buy => ob + bd,
            Side::Sell => os + sd,
        };
        let only_reduces = opposite && same_side_open <= s.abs() && imr_after <= h.initial;
        if PPM * equity_after >= imr_after || imr_after < h.initial || only_reduces {
            Ok(())
        } else {
            Err(RejectReason::InsufficientMargin)
        }
    }

    /// Records resting quantity entering (`delta > 0`) or leaving (`< 0`) the book.
    pub fn open_order_delta(&mut self, slot: AccountSlot, instrument: InstrumentId, side: Side, delta: i64) {
        let index = self.funding_index(instrument);
        let p = self.accounts[slot.index()].position_mut(instrument, index);
        match side {
            Side::Buy => p.open_buy += delta,
            Side::Sell => p.open_sell += delta,
        }
    }

    // ----- fills ---------------------------------------------------------------------------

    /// Applies a trade of `qty` at `price` between a taker and a resting maker: positions,
    /// realised PnL, funding settlement, fees (to the fee account), the maker's open
    /// quantity. With `liquidation`, the taker is being liquidated: it pays no trading fee
    /// but the liquidation fee (to the insurance fund, capped by the bankruptcy price).
    ///
    /// Returns the taker's and the maker's effects and the liquidation fee.
    pub fn fill(&mut self, fill: Fill) -> (FillEffect, FillEffect, i128) {
        let Fill { instrument, price, qty, taker_side, taker, maker, liquidation } = fill;
        let m = &self.markets[instrument.0 as usize];
        let (k, index) = (m.params.quote_per_tick_lot, m.funding_index);
        let taker_fee = if liquidation.is_some() { 0 } else { m.params.taker_fee.0 };
        let (maker_fee, liq_fee) = (m.params.maker_fee.0, m.params.liquidation_fee);
        let t = self.accounts[taker.index()].apply_fill(instrument, taker_side, price.0, qty.0, k, taker_fee, index);
        let mk = self.accounts[maker.index()].apply_fill(
            instrument,
            taker_side.opposite(),
            price.0,
            qty.0,
            k,
            maker_fee,
            index,
        );
        let maker_pos = self.accounts[maker.index()].position_mut(instrument, index);
        match taker_side.opposite() {
            Side::Buy => maker_pos.open_buy -= qty.0,
            Side::Sell => maker_pos.open_sell -= qty.0,
        }
        self.accounts[Self::FEES.index()].credit(t.fee + mk.fee);
        let lfee = match liquidation {
            Some(bp) => {
                let fee = formulas::liquidation_fee(taker_side, price, qty, k, liq_fee, bp);
                self.accounts[taker.index()].credit(-fee);
                self.accounts[Self::INSURANCE.index()].credit(fee);
                fee
            }
            None => 0,
        };
        self.reindex(taker);
        self.reindex(maker);
        (t, mk, lfee)
    }

    /// Moves `qty` of position from `from` (which trades on `side_of_from`) to `to` at
    /// `price`, with no fee: an insurance-fund takeover or an auto-deleveraging close.
    pub fn transfer(
        &mut self,
        instrument: InstrumentId,
        price: Price,
        qty: Qty,
        side_of_from: Side,
        from: AccountSlot,
        to: AccountSlot,
    ) -> (FillEffect, FillEffect) {
        let m = &self.markets[instrument.0 as usize];
        let (k, index) = (m.params.quote_per_tick_lot, m.funding_index);
        let a = self.accounts[from.index()].apply_fill(instrument, side_of_from, price.0, qty.0, k, 0, index);
        let b = self.accounts[to.index()].apply_fill(instrument, side_of_from.opposite(), price.0, qty.0, k, 0, index);
        self.reindex(from);
        self.reindex(to);
        (a, b)
    }

    // ----- oracle and funding --------------------------------------------------------------

    /// Sets a market's mark price and collects (into `out`, unsorted, possibly with
    /// duplicates) the accounts that may now be below maintenance.
    pub fn set_mark(&mut self, instrument: InstrumentId, price: Price, out: &mut Vec<AccountSlot>) {
        let Some(m) = self.markets.get_mut(instrument.0 as usize) else { return };
        m.set_mark_price(Some(price));
        let p = price.0;
        if m.window.is_none_or(|g| p < g.lo || p > g.hi) {
            // Outside the window, "far" keys are no longer safe: re-centre it and re-key and
            // re-bucket every holder (module doc, "The window").
            m.window = Some(window_at(p));
            m.near_longs.clear();
            m.near_shorts.clear();
            let holders = m.holders();
            for &s in &holders {
                if let Some(i) = self.accounts[s as usize].position_index_of(instrument) {
                    self.accounts[s as usize].positions[i].liq_key = None;
                }
            }
            for s in holders {
                self.reindex(AccountSlot(s));
            }
        }
        let m = &self.markets[instrument.0 as usize];
        let g = m.window.unwrap_or(window_at(p));
        let key_of =
            |s: u32| self.accounts[s as usize].position(instrument).and_then(|p| p.liq_key?.threshold()).unwrap_or(0);
        // Longs with key > p: the buckets above p's, the overflow, and those of p's own bucket
        // whose key is above p (index.rs, "Queries").
        let first = if p > g.lo { g.bucket(true, p) } else { 0 };
        out.extend(m.near_longs.members_in(first + usize::from(p > g.lo)..BUCKETS, true).map(AccountSlot));
        if p > g.lo {
            out.extend(m.near_longs.bucket(first).iter().filter(|&&s| key_of(s) > p).map(|&s| AccountSlot(s)));
        }
        // Shorts with key < p: the buckets below p's, the overflow, and those of p's own
        // bucket whose key is below p.
        let last = if p < g.hi { g.bucket(false, p) } else { BUCKETS };
        out.extend(m.near_shorts.members_in(0..last, true).map(AccountSlot));
        if p < g.hi {
            out.extend(m.near_shorts.bucket(last).iter().filter(|&&s| key_of(s) < p).map(|&s| AccountSlot(s)));
        }
        let multi: Vec<u32> = m.multi.iter().copied().collect();
        for s in multi {
            self.reindex(AccountSlot(s));
            out.push(AccountSlot(s));
        }
    }

    /// Applies one funding tick: computes the rate from the impact prices of `bids` and
    /// `asks` (best first) against the mark, adds `rate · mark · k` per lot to the index, and
    /// re-keys every holder, collecting into `out` those now below maintenance. Returns the
    /// rate and the new index; `None` without a mark.
    pub fn funding_tick(
        &mut self,
        instrument: InstrumentId,
        bids: impl Iterator<Item = (Price, Qty)>,
        asks: impl Iterator<Item = (Price, Qty)>,
        out: &mut Vec<AccountSlot>,
    ) -> Option<(Ppb, i128)> {
        let m = self.markets.get_mut(instrument.0 as usize)?;
        let mark = m.mark?.price;
        let (k, p) = (m.params.quote_per_tick_lot, m.params);
        let notional = i128::from(p.impact_notional.0);
        let ib = formulas::impact_price(bids, notional, k);
        let ia = formulas::impact_price(asks, notional, k);
        let rate = formulas::funding_rate(ib, ia, mark, p.funding_interest, p.funding_clamp);
        m.funding_index += formulas::funding_per_lot(rate, mark, k);
        let index = m.funding_index;
        for s in m.holders() {
            self.reindex(AccountSlot(s));
            if self.below_maintenance(AccountSlot(s)) {
                out.push(AccountSlot(s));
            }
        }
        Some((rate, index))
    }

    // ----- liquidation ---------------------------------------------------------------------

    /// The next liquidation order for an account below maintenance: the position with the
    /// largest maintenance requirement (lowest instrument id on ties), closed partially if
    /// that restores maintenance at the worst case. `None` if the account is healthy, has no
    /// position, or is the insurance fund or the fee account.
    pub fn liquidation_order(&self, slot: AccountSlot) -> Option<LiquidationOrder> {
        if slot == Self::INSURANCE || slot == Self::FEES {
            return None;
        }
        let h = self.scaled(slot);
        if !h.below_maintenance() {
            return None;
        }
        let a = self.account(slot);
        let p = a.positions.iter().filter(|p| p.size != 0).max_by_key(|p| {
            let m = &self.markets[p.instrument.0 as usize];
            let mark = i128::from(m.mark.map_or(0, |x| x.price.0));
            let mmr = i128::from(p.size).abs() * mark * i128::from(m.params.quote_per_tick_lot);
            (mmr * i128::from(m.params.maintenance_margin.0), core::cmp::Reverse(p.instrument))
        })?;
        let m = &self.markets[p.instrument.0 as usize];
        let mark = m.mark?.price;
        let lq = self.liquidation;
        let mut prices = formulas::liquidation_prices(
            p.size,
            mark,
            h.equity,
            h.maintenance,
            m.params.maintenance_margin,
            lq.bankruptcy_adjustment,
            lq.spread_to_maintenance,
        );
        let side = if p.size > 0 { Side::Sell } else { Side::Buy };
        let hscaled = PPM * h.equity - h.maintenance;
        let qty = formulas::liquidation_qty(
            p.size,
            mark,
            prices.limit,
            m.params.quote_per_tick_lot,
            m.params.maintenance_margin,
            m.params.liquidation_fee,
            hscaled,
        );
        // Never beyond bankruptcy, and never outside what a user order could do.
        prices.limit = Price(prices.limit.0.max(1));
        Some(LiquidationOrder { instrument: p.instrument, side, qty, prices })
    }

    /// The bankruptcy price (exact) of an account's position in one instrument at the
    /// current state, if the account is below maintenance and holds it.
    pub fn bankruptcy_price(&self, slot: AccountSlot, instrument: InstrumentId) -> Option<ExactPrice> {
        let h = self.scaled(slot);
        let size = self.account(slot).position(instrument).map(|p| p.size).filter(|&s| s != 0)?;
        if !h.below_maintenance() {
            return None;
        }
        let m = self.markets.get(instrument.0 as usize)?;
        let lq = self.liquidation;
        let prices = formulas::liquidation_prices(
            size,
            m.mark?.price,
            h.equity,
            h.maintenance,
            m.params.maintenance_margin,
            lq.bankruptcy_adjustment,
            lq.spread_to_maintenance,
        );
        Some(prices.bankruptcy)
    }

    /// How much of `qty` the insurance fund can take over at `price` on `side_of_fund`:
    /// everything when the takeover does not cost it equity at the mark, otherwise what its
    /// equity covers (nothing once it has none).
    pub fn insurance_capacity(&self, instrument: InstrumentId, price: Price, qty: Qty, side_of_fund: Side) -> Qty {
        let m = &self.markets[instrument.0 as usize];
        let mark = i128::from(m.mark.map_or(price.0, |x| x.price.0));
        let k = i128::from(m.params.quote_per_tick_lot);
        let loss_per_lot = match side_of_fund {
            Side::Buy => i128::from(price.0) - mark,
            Side::Sell => mark - i128::from(price.0),
        } * k;
        if loss_per_lot <= 0 {
            return qty;
        }
        let equity = self.scaled(Self::INSURANCE).equity;
        Qty(saturate(floor_div(equity.max(0), loss_per_lot).min(i128::from(qty.0))))
    }

    /// Auto-deleveraging candidates against a liquidated position on `side_of_liquidated`:
    /// the trading accounts holding the opposite position, highest BitMEX rank first
    /// (ties: lowest account id). The liquidated account itself is excluded.
    pub fn adl_queue(
        &self,
        instrument: InstrumentId,
        side_of_liquidated: Side,
        exclude: AccountSlot,
    ) -> Vec<AccountSlot> {
        let m = &self.markets[instrument.0 as usize];
        // The liquidated account sells (it is long): counterparties are shorts, and so on.
        let holders = match side_of_liquidated {
            Side::Sell => &m.short_holders,
            Side::Buy => &m.long_holders,
        };
        let mark = i128::from(m.mark.map_or(0, |x| x.price.0));
        let k = i128::from(m.params.quote_per_tick_lot);
        let mut ranked: Vec<(core::cmp::Reverse<i128>, AccountId, AccountSlot)> = holders
            .iter()
            .map(|&s| AccountSlot(s))
            .filter(|&s| s != exclude && s != Self::INSURANCE && s != Self::FEES)
            .filter_map(|s| {
                let a = self.account(s);
                let Holder::Account(id) = a.holder else { return None };
                let p = a.position(instrument)?;
                let notional = i128::from(p.size) * mark * k;
                let rank = formulas::adl_rank(notional - p.cost, p.cost, notional, self.scaled(s).equity);
                Some((core::cmp::Reverse(rank), id, s))
            })
            .collect();
        ranked.sort_unstable();
        ranked.into_iter().map(|(_, _, s)| s).collect()
    }

    // ----- index ---------------------------------------------------------------------------

    /// Recomputes an account's liquidation-index keys (see the module doc).
    fn reindex(&mut self, slot: AccountSlot) {
        if slot == Self::INSURANCE || slot == Self::FEES {
            return;
        }
        let h = self.scaled(slot);
        let hscaled = PPM * h.equity - h.maintenance;
        let open = self.accounts[slot.index()].open_positions();
        let count = self.accounts[slot.index()].positions.len();
        for i in 0..count {
            let p: Position = self.accounts[slot.index()].positions[i];
            let m = &mut self.markets[p.instrument.0 as usize];
            let key = m.index_key(p.size, hscaled);
            if key != p.liq_key {
                let (old_side, new_side) = (p.liq_key.map(|k| k.long), key.map(|k| k.long));
                if old_side != new_side {
                    if let Some(long) = old_side {
                        m.holders_mut(long).remove(&slot.0);
                    }
                    if let Some(long) = new_side {
                        m.holders_mut(long).insert(slot.0);
                    }
                }
                let old = p.liq_key.and_then(|k| Some((k.long, m.bucket(k)?)));
                let new = key.and_then(|k| Some((k.long, m.bucket(k)?)));
                let mut place = p.liq_place;
                if old != new {
                    if let Some((long, bucket)) = old
                        && let Some(moved) = m.near_mut(long).remove(bucket, p.liq_place)
                    {
                        // The bucket's last member took the freed place.
                        let a = &mut self.accounts[moved as usize];
                        if let Some(j) = a.position_index_of(p.instrument) {
                            a.positions[j].liq_place = p.liq_place;
                        }
                    }
                    if let Some((long, bucket)) = new {
                        place = m.near_mut(long).insert(bucket, slot.0);
                    }
                }
                let record = &mut self.accounts[slot.index()].positions[i];
                record.liq_key = key;
                record.liq_place = place;
            }
            if p.size != 0 && open >= 2 {
                m.multi.insert(slot.0);
            } else if !m.multi.is_empty() {
                m.multi.remove(&slot.0);
            }
        }
    }

    /// Checks conservation and index consistency.
    ///
    /// # Errors
    /// A description of the first broken invariant.
    #[allow(clippy::cast_possible_truncation, reason = "slots and instrument ids fit u32 by construction")]
    pub fn check_invariants(&self) -> Result<(), String> {
        let total: i128 = (0..self.accounts.len()).map(|i| self.scaled(AccountSlot(i as u32)).equity).sum();
        for i in 0..self.accounts.len() {
            let slot = AccountSlot(i as u32);
            if self.below_maintenance(slot) != self.scaled(slot).below_maintenance() {
                return Err(format!("slot {i}: the index and a full computation disagree on maintenance"));
            }
        }
        if total != self.deposits - self.withdrawals {
            return Err(format!(
                "conservation: equity of all accounts {total} != deposits {} - withdrawals {}",
                self.deposits, self.withdrawals
            ));
        }
        for (i, m) in self.markets.iter().enumerate() {
            let net: i128 = self
                .accounts
                .iter()
                .filter_map(|a| a.position(InstrumentId(i as u32)))
                .map(|p| i128::from(p.size))
                .sum();
            if net != 0 {
                return Err(format!("instrument {i}: positions net to {net}, not zero"));
            }
            let mut near = 0;
            for (slot, a) in self.accounts.iter().enumerate().skip(2) {
                let Some(p) = a.position(InstrumentId(i as u32)) else { continue };
                let slot32 = slot as u32;
                let held = (m.long_holders.contains(&slot32), m.short_holders.contains(&slot32));
                if held != (p.size > 0, p.size < 0) || p.liq_key.is_some() != (p.size != 0) {
                    return Err(format!(
                        "instrument {i}: slot {slot} held {held:?}, keyed {:?}, size {}",
                        p.liq_key, p.size
                    ));
                }
                if let Some(k) = p.liq_key
                    && let Some(bucket) = m.bucket(k)
                {
                    let buckets = if k.long { &m.near_longs } else { &m.near_shorts };
                    if buckets.member(bucket, p.liq_place) != Some(slot32) {
                        return Err(format!("instrument {i}: slot {slot} not at its place in bucket {bucket}"));
                    }
                    near += 1;
                }
                let h = self.scaled(AccountSlot(slot as u32));
                let expected = m.index_key(p.size, PPM * h.equity - h.maintenance);
                if p.liq_key != expected || expected.is_some_and(|k| k.long != (p.size > 0)) {
                    return Err(format!("instrument {i}: slot {slot} keyed {:?}, expected {expected:?}", p.liq_key));
                }
                if p.open_buy < 0 || p.open_sell < 0 {
                    return Err(format!("instrument {i}: slot {slot} negative open quantity"));
                }
            }
            if near != m.near_longs.len() + m.near_shorts.len() {
                return Err(format!(
                    "instrument {i}: {near} near positions, buckets hold {}",
                    m.near_longs.len() + m.near_shorts.len()
                ));
            }
            m.near_longs.check_invariants(Side::Buy)?;
            m.near_shorts.check_invariants(Side::Sell)?;
            let live = m.long_holders.len() + m.short_holders.len();
            let holders = self
                .accounts
                .iter()
                .skip(2)
                .filter(|a| a.position(InstrumentId(i as u32)).is_some_and(|p| p.size != 0))
                .count();
            if live != holders {
                return Err(format!("instrument {i}: {live} index entries for {holders} holders"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use l2x_types::Fraction;
    use proptest::prelude::*;

    use super::*;

    const BTC: InstrumentId = InstrumentId(0);
    const ETH: InstrumentId = InstrumentId(1);

    /// BTC-PERP of the scenarios: tick 0.5, lot 0.001 (k = 500), IMF 5 %, MMF 3 %.
    fn btc() -> MarketParams {
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
    fn trade(l: &mut Ledger, inst: InstrumentId, price: i64, qty: i64, buyer: AccountSlot, seller: AccountSlot) {
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
    }

    /// The pre-trade check of a new order of `account` (the examples' form).
    fn check_order(
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
    fn settle_funding(l: &mut Ledger, slot: AccountSlot, instrument: InstrumentId) -> i128 {
        let index = l.funding_index(instrument);
        let paid = crate::account::tests::settle_funding(&mut l.accounts[slot.index()], instrument, index);
        if paid != 0 {
            l.reindex(slot);
        }
        paid
    }

    fn usdc(n: i64) -> Amount {
        Amount(n * 1_000_000)
    }

    fn ledger() -> Ledger {
        let mut l = Ledger::default();
        l.add_market(btc()).unwrap();
        l.add_market(MarketParams { quote_per_tick_lot: 100, ..btc() }).unwrap();
        let mut out = Vec::new();
        l.set_mark(BTC, Price(100_000), &mut out); // 50,000
        l.set_mark(ETH, Price(300_000), &mut out); // 3,000 with tick 0.01, lot 0.01
        l
    }

    #[test]
    fn initial_margin_check_with_worked_numbers() {
        let mut l = ledger();
        l.deposit(Holder::Account(AccountId(1)), usdc(1_000)).unwrap();
        // 0.4 BTC at 50,000 = 20,000 notional → IMR 1,000 = equity: accepted.
        assert_eq!(check_order(&l, AccountId(1), BTC, Side::Buy, Qty(400), Price(100_000), false), Ok(Qty(400)));
        // 0.401 BTC → IMR 1,002.5 > 1,000.
        assert_eq!(
            check_order(&l, AccountId(1), BTC, Side::Buy, Qty(401), Price(100_000), false),
            Err(RejectReason::InsufficientMargin)
        );
        // 0.4 BTC with a limit 10 above the mark: worst-case slippage 0.4 × 10 = 4 USDC.
        assert_eq!(
            check_order(&l, AccountId(1), BTC, Side::Buy, Qty(400), Price(100_020), false),
            Err(RejectReason::InsufficientMargin)
        );
        // Unknown accounts have no equity.
        assert_eq!(
            check_order(&l, AccountId(9), BTC, Side::Buy, Qty(1), Price(100_000), false),
            Err(RejectReason::InsufficientMargin)
        );
    }

    #[test]
    fn resting_orders_count_on_their_worse_side() {
        let mut l = ledger();
        let s = l.deposit(Holder::Account(AccountId(1)), usdc(1_000)).unwrap().0;
        l.open_order_delta(s, BTC, Side::Buy, 300);
        // Buys of 0.3 rest (IMR 750). Another 0.1 buy makes the buy side 0.4 (IMR 1,000 =
        // equity): fine; 0.101 is too much. Sells are the other side: up to 0.4 the worse side
        // is at most 0.4, so 0.4 passes and 0.401 does not.
        assert!(check_order(&l, AccountId(1), BTC, Side::Buy, Qty(100), Price(100_000), false).is_ok());
        assert!(check_order(&l, AccountId(1), BTC, Side::Buy, Qty(101), Price(100_000), false).is_err());
        assert!(check_order(&l, AccountId(1), BTC, Side::Sell, Qty(300), Price(100_000), false).is_ok());
        assert!(check_order(&l, AccountId(1), BTC, Side::Sell, Qty(400), Price(100_000), false).is_ok());
        assert!(check_order(&l, AccountId(1), BTC, Side::Sell, Qty(401), Price(100_000), false).is_err());
    }

    #[test]
    fn reduce_only_and_max_position() {
        let mut l = ledger();
        let a = l.deposit(Holder::Account(AccountId(1)), usdc(100_000)).unwrap().0;
        let b = l.deposit(Holder::Account(AccountId(2)), usdc(100_000)).unwrap().0;
        assert_eq!(
            check_order(&l, AccountId(1), BTC, Side::Sell, Qty(5), Price(100_000), true),
            Err(RejectReason::ReduceOnlyWouldIncrease)
        );
        trade(&mut l, BTC, 100_000, 100, a, b);
        // Long 0.1: a reduce-only sell of 0.5 is cut to 0.1; a reduce-only buy is refused.
        assert_eq!(check_order(&l, AccountId(1), BTC, Side::Sell, Qty(500), Price(100_000), true), Ok(Qty(100)));
        assert_eq!(
            check_order(&l, AccountId(1), BTC, Side::Buy, Qty(1), Price(100_000), true),
            Err(RejectReason::ReduceOnlyWouldIncrease)
        );
        let mut small = btc();
        small.max_position_qty = Qty(150);
        l.add_market(small).unwrap();
        let mut out = Vec::new();
        l.set_mark(InstrumentId(2), Price(100_000), &mut out);
        assert_eq!(
            check_order(&l, AccountId(1), InstrumentId(2), Side::Buy, Qty(151), Price(100_000), false),
            Err(RejectReason::MaxPosition)
        );
    }

    #[test]
    fn closing_is_allowed_below_initial_margin() {
        let mut l = ledger();
        let a = l.deposit(Holder::Account(AccountId(1)), usdc(1_100)).unwrap().0;
        let b = l.deposit(Holder::Account(AccountId(2)), usdc(100_000)).unwrap().0;
        trade(&mut l, BTC, 100_000, 400, a, b);
        let mut out = Vec::new();
        l.set_mark(BTC, Price(99_000), &mut out); // −200 USDC: equity 900 < IMR 990
        assert!(check_order(&l, AccountId(1), BTC, Side::Buy, Qty(1), Price(99_000), false).is_err());
        assert!(check_order(&l, AccountId(1), BTC, Side::Sell, Qty(400), Price(99_000), false).is_ok());
        // Withdrawals need equity above the initial requirement afterwards.
        assert_eq!(l.withdraw(AccountId(1), usdc(1)), Err(RejectReason::InsufficientMargin));
    }

    #[test]
    fn fees_flow_to_the_fee_account_and_conserve() {
        let mut l = Ledger::default();
        l.add_market(MarketParams { maker_fee: Fraction(-100), taker_fee: Fraction(500), ..btc() }).unwrap();
        let mut out = Vec::new();
        l.set_mark(BTC, Price(100_000), &mut out);
        let a = l.deposit(Holder::Account(AccountId(1)), usdc(10_000)).unwrap().0;
        let b = l.deposit(Holder::Account(AccountId(2)), usdc(10_000)).unwrap().0;
        l.open_order_delta(b, BTC, Side::Sell, 100);
        let (t, m, _) = l.fill(Fill {
            instrument: BTC,
            price: Price(100_000),
            qty: Qty(100),
            taker_side: Side::Buy,
            taker: a,
            maker: b,
            liquidation: None,
        });
        // Notional 5,000 USDC: taker pays 2.5, maker earns 0.5.
        assert_eq!((t.fee, m.fee), (2_500_000, -500_000));
        assert_eq!(l.account(Ledger::FEES).collateral, 2_000_000);
        l.check_invariants().unwrap();
    }

    #[test]
    fn funding_moves_value_from_longs_to_shorts_exactly() {
        let mut l = ledger();
        let a = l.deposit(Holder::Account(AccountId(1)), usdc(10_000)).unwrap().0;
        let b = l.deposit(Holder::Account(AccountId(2)), usdc(10_000)).unwrap().0;
        trade(&mut l, BTC, 100_000, 100, a, b);
        // Bid depth far above the index: the rate is clamped at 1 %.
        let bids = [(Price(110_000), Qty(1_000_000))];
        let (rate, index) = l.funding_tick(BTC, bids.into_iter(), core::iter::empty(), &mut Vec::new()).unwrap();
        assert_eq!(rate, Ppb(10_000_000));
        assert_eq!(index, 500_000); // 1 % of 100,000 ticks × 500 per lot
        // Unsettled funding already counts in equity: the long is down 50 USDC.
        assert_eq!(l.health(a).equity, 10_000_000_000 - 50_000_000);
        assert_eq!(l.health(b).equity, 10_000_000_000 + 50_000_000);
        assert_eq!(settle_funding(&mut l, a, BTC), 50_000_000);
        l.check_invariants().unwrap();
    }

    #[test]
    fn the_index_finds_a_long_when_the_mark_crosses_its_threshold() {
        let mut l = ledger();
        let a = l.deposit(Holder::Account(AccountId(1)), usdc(1_000)).unwrap().0;
        let b = l.deposit(Holder::Account(AccountId(2)), usdc(1_000_000)).unwrap().0;
        trade(&mut l, BTC, 100_000, 400, a, b); // long 0.4 at 50,000
        // Equity 1,000 + 0.4·(m − 50,000) < 0.4·m·0.03 ⟺ m < 48,969.07…: threshold 97,939 ticks.
        let mut out = Vec::new();
        l.set_mark(BTC, Price(97_939), &mut out);
        assert!(!out.contains(&a) && !l.health(a).below_maintenance() && !l.below_maintenance(a));
        l.check_invariants().unwrap();
        l.set_mark(BTC, Price(97_938), &mut out);
        assert!(out.contains(&a) && l.health(a).below_maintenance() && l.below_maintenance(a));
        l.check_invariants().unwrap();
        // And the short is found when the mark rises far enough.
        out.clear();
        l.set_mark(BTC, Price(100_000), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_far_account_is_keyed_exactly_once_the_mark_leaves_the_window() {
        let mut l = ledger(); // BTC mark 100,000 ticks: window 50,000..=200,000
        let long = l.deposit(Holder::Account(AccountId(1)), usdc(12_000)).unwrap().0;
        let short = l.deposit(Holder::Account(AccountId(2)), usdc(30_000)).unwrap().0;
        trade(&mut l, BTC, 100_000, 400, long, short); // 0.4 BTC at 50,000 each way
        // Long: 12,000 + 0.4·(m − 50,000) < 0.012·m ⟺ m < 20,618.5…: threshold 41,238 ticks,
        // below the window: far. Short: 30,000 − 0.4·(m − 50,000) < 0.012·m ⟺ m > 121,359.2…:
        // threshold 242,718 ticks, above the window: far.
        let key = |l: &Ledger, s: AccountSlot| l.account(s).position(BTC).unwrap().liq_key.unwrap().key;
        assert_eq!((key(&l, long), key(&l, short)), (Key::Far, Key::Far));
        l.check_invariants().unwrap();
        // A jump to 41,237 ticks leaves the window: it is re-centred, and the long is found.
        let mut out = Vec::new();
        l.set_mark(BTC, Price(41_237), &mut out);
        assert_eq!(out, vec![long]);
        assert!(l.below_maintenance(long));
        // From 100,000 again (the window moves back), a jump to 242,719 finds the short.
        l.set_mark(BTC, Price(100_000), &mut out);
        out.clear();
        l.set_mark(BTC, Price(242_718), &mut out);
        assert!(out.is_empty() && !l.below_maintenance(short));
        l.set_mark(BTC, Price(242_719), &mut out);
        assert_eq!(out, vec![short]);
        l.check_invariants().unwrap();
    }

    #[test]
    fn insurance_capacity_and_adl_order() {
        let mut l = ledger();
        let _ = l.deposit(Holder::Insurance, usdc(10)).unwrap();
        // Taking a long at 10 ticks above the mark costs 10 · 500 = 5,000 per lot: 2,000 lots.
        assert_eq!(l.insurance_capacity(BTC, Price(100_010), Qty(5_000), Side::Buy), Qty(2_000));
        assert_eq!(l.insurance_capacity(BTC, Price(99_990), Qty(5_000), Side::Buy), Qty(5_000));
        // Three shorts against one long; the most profitable and leveraged short ranks first.
        let long = l.deposit(Holder::Account(AccountId(1)), usdc(100_000)).unwrap().0;
        let s1 = l.deposit(Holder::Account(AccountId(2)), usdc(10_000)).unwrap().0;
        let s2 = l.deposit(Holder::Account(AccountId(3)), usdc(1_000)).unwrap().0;
        let s3 = l.deposit(Holder::Account(AccountId(4)), usdc(1_000)).unwrap().0;
        trade(&mut l, BTC, 110_000, 100, long, s1);
        trade(&mut l, BTC, 110_000, 100, long, s2);
        trade(&mut l, BTC, 100_000, 100, long, s3);
        let q = l.adl_queue(BTC, Side::Sell, long);
        // s2: +10 % at 5,000/1,500 leverage; s1: +10 % at 5,000/10,500; s3: flat.
        assert_eq!(q, vec![s2, s1, s3]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]

        /// After any sequence of fills and mark moves, the accounts the index reports on a
        /// mark change include every account that the change put below maintenance (a full
        /// scan is the reference). Accounts a fill put below maintenance are the fill path's
        /// to find, not the oracle's.
        #[test]
        fn index_candidates_cover_every_account_below_maintenance(
            fills in proptest::collection::vec((0usize..6, 0usize..6, 0u32..2, 1i64..400, 97_000i64..103_000), 1..40),
            marks in proptest::collection::vec((0u32..2, 90_000i64..110_000), 1..20),
        ) {
            let mut l = ledger();
            let slots: Vec<AccountSlot> =
                (1u32..=6).map(|i| l.deposit(Holder::Account(AccountId(u64::from(i))), usdc(200 * i64::from(i))).unwrap().0).collect();
            for (a, b, inst, qty, price) in fills {
                if a != b {
                    let price = if inst == 0 { price } else { price * 3 };
                    trade(&mut l, InstrumentId(inst), price, qty, slots[a], slots[b]);
                }
            }
            l.check_invariants().map_err(TestCaseError::fail)?;
            for (inst, mark) in marks {
                let mark = if inst == 0 { mark } else { mark * 3 };
                let before: Vec<bool> = slots.iter().map(|&s| l.health(s).below_maintenance()).collect();
                let mut out = Vec::new();
                l.set_mark(InstrumentId(inst), Price(mark), &mut out);
                for (&s, was_below) in slots.iter().zip(before) {
                    let h = l.health(s);
                    if h.below_maintenance() && !was_below && l.account(s).has_position() {
                        prop_assert!(out.contains(&s), "slot {s:?} below maintenance but not reported");
                    }
                }
                l.check_invariants().map_err(TestCaseError::fail)?;
            }
        }

        /// The same property for accounts from highly to barely leveraged (some indexed
        /// "far", outside the window), fills between mark changes, and marks that jump out of
        /// the window and back. `check_invariants` also checks every key exactly.
        #[test]
        fn index_candidates_cover_every_account_across_window_moves(
            deposits in proptest::collection::vec(1i64..2_000, 6),
            steps in proptest::collection::vec(
                (0usize..6, 0usize..6, 0u32..2, 1i64..400, proptest::bool::ANY, 20_000i64..400_000),
                1..60,
            ),
        ) {
            let mut l = ledger();
            let slots: Vec<AccountSlot> = deposits
                .iter()
                .zip(1u64..)
                .map(|(&d, id)| l.deposit(Holder::Account(AccountId(id)), usdc(100 * d)).unwrap().0)
                .collect();
            for (a, b, inst, qty, is_fill, mark) in steps {
                let instrument = InstrumentId(inst);
                if is_fill {
                    if a != b {
                        let price = l.mark(instrument).unwrap().0;
                        trade(&mut l, instrument, price, qty, slots[a], slots[b]);
                    }
                } else {
                    let mark = if inst == 0 { mark } else { mark * 3 };
                    let before: Vec<bool> = slots.iter().map(|&s| l.below_maintenance(s)).collect();
                    let mut out = Vec::new();
                    l.set_mark(instrument, Price(mark), &mut out);
                    for (&s, was_below) in slots.iter().zip(before) {
                        if l.below_maintenance(s) && !was_below && l.account(s).has_position() {
                            prop_assert!(out.contains(&s), "slot {s:?} below maintenance but not reported");
                        }
                    }
                }
                l.check_invariants().map_err(TestCaseError::fail)?;
            }
        }
    }
}
