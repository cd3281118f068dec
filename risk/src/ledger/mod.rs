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
//! whenever its collateral or positions change — after a fill, once per account when the
//! caller asks ([`Ledger::rekey_pending`], below) —; a funding tick re-keys every holder of
//! the instrument (its unsettled funding changed). Each market also keeps the set of accounts
//! holding a long and holding a short, for funding ticks and auto-deleveraging.
//!
//! # The window: re-keying accounts that no price near the mark can liquidate
//!
//! Each market keeps a window `[lo, hi]` of marks around its mark (`lo = mark / 2`,
//! `hi = 2 · mark`, set when the first oracle price arrives and reset whenever an oracle
//! price falls outside it). A long whose threshold is at or below `lo`, or a short whose
//! threshold is at or above `hi`, cannot be liquidated by any mark inside the window: it is
//! keyed [`Key::Far`](crate::account::Key::Far) and sits in no bucket (as does a position
//! whose exact threshold lies beyond the `i64` range on the safe side). Telling "far" from
//! "near" needs no division (`(mark − lo) · b ≤ h` for a long). So an account with low
//! leverage (a long with less than about 2× leverage, a short with less than about 1×) costs
//! a few multiplications per fill; a leveraged one also moves between buckets when its key
//! leaves its bucket (a swap-remove and a push). When an oracle price
//! leaves the window, the window is re-centred on it and every holder of the instrument
//! re-keyed and re-bucketed (O(holders), once per halving or doubling of the price) before
//! the queries, so the queries stay exact. Before the first oracle price there is no
//! window: every account is keyed exactly and sits in the overflow bucket.
//!
//! # Re-keying after fills
//!
//! A sweep fills one taker against many makers, often against one maker several times.
//! [`Ledger::fill`] only lists the two accounts; [`Ledger::rekey_pending`] re-keys each
//! listed account once and says whether any of them is below maintenance (the re-key
//! computes its health anyway). Between a fill and that call the listed accounts' keys are
//! stale: the caller calls it before anything reads the index ([`Ledger::below_maintenance`],
//! oracle prices, funding ticks, the ADL queue's holder sets) — the engine, at the end of
//! every match. [`Ledger::check_invariants`] fails while any account waits.
//!
//! # Performance
//!
//! Margin figures are kept scaled by 10⁶ and compared exactly ([`Ledger::below_maintenance`],
//! the pre-trade checks, the index); only [`Ledger::health`] rounds them to quote units, for
//! reports. Each market keeps, with its mark, what one lot is worth and requires at it
//! (`mark · k`, times MMF, times IMF), so an account's margin figures cost one multiplication
//! per term and position.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | `mod.rs` | the [`Ledger`]: accounts, deposits and withdrawals, restore, invariants |
//! | `market` | a market's mark, funding index and liquidation index: oracle prices, funding ticks, re-keying |
//! | `margin` | equity and requirements, maintenance, the pre-trade check of an [`Exposure`] |
//! | `fills` | trades, insurance takeovers and auto-deleveraging closes booked on both accounts |
//! | `liquidation` | liquidation orders, bankruptcy prices, the insurance fund's capacity, the ADL queue |

mod fills;
mod liquidation;
mod margin;
mod market;
#[cfg(test)]
mod test_support;

use l2x_types::{AccountId, Amount, DetMap, Holder, InstrumentId, Price, RejectReason, Side};

pub use fills::Fill;
pub use liquidation::LiquidationOrder;
pub use margin::{Change, Exposure, Health};
use market::Market;

use crate::account::{Account, Position};
use crate::params::{LiquidationParams, MarketParams};
use crate::{AccountSlot, LedgerError};

/// Parts per million in one: margin figures are kept scaled by it.
const PPM: i128 = 1_000_000;

/// Every account and market of the risk engine.
#[derive(Clone, Debug)]
pub struct Ledger {
    slots: DetMap<AccountId, AccountSlot>,
    accounts: Vec<Account>,
    markets: Vec<Market>,
    liquidation: LiquidationParams,
    deposits: i128,
    withdrawals: i128,
    /// Accounts a [`Ledger::fill`] changed whose liquidation-index keys wait for
    /// [`Ledger::rekey_pending`] (each once: `pending_mark[slot]` says it is listed).
    pending: Vec<AccountSlot>,
    pending_mark: Vec<bool>,
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
            pending: Vec::new(),
            pending_mark: Vec::new(),
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
        self.markets.push(Market::new(params));
        Ok(id)
    }

    /// A market's parameters (settlement reads their tick value).
    pub fn market_params(&self, instrument: InstrumentId) -> Option<&MarketParams> {
        self.markets.get(instrument.index()).map(|m| &m.params)
    }

    /// A market's mark price.
    pub fn mark(&self, instrument: InstrumentId) -> Option<Price> {
        self.markets.get(instrument.index()).and_then(|m| m.mark.map(|x| x.price))
    }

    /// A market's cumulative funding index (quote micro-units per lot).
    pub fn funding_index(&self, instrument: InstrumentId) -> i128 {
        self.markets.get(instrument.index()).map_or(0, |m| m.funding_index)
    }

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
    /// the collateral would go negative, equity would fall below the initial requirement,
    /// or all withdrawals would exceed all deposits.
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
        // Never more out than ever came in: only possible when some account holds a loss
        // nobody covered, and a vault could not pay it (its books count deposits less
        // withdrawals, and a batch paying more is refused for good).
        if self.withdrawals + a > self.deposits {
            return Err(RejectReason::InsufficientMargin);
        }
        self.accounts[slot.index()].credit(-a);
        self.withdrawals += a;
        self.reindex(slot);
        Ok((slot, self.account(slot).collateral))
    }

    /// Sets a market's mark and funding index as a snapshot recorded them (no liquidation
    /// check: the snapshot was taken after its command's liquidations).
    pub fn restore_market(&mut self, instrument: InstrumentId, mark: Option<Price>, funding_index: i128) {
        if let Some(m) = self.markets.get_mut(instrument.index()) {
            m.restore(mark, funding_index);
        }
    }

    /// Restores a holder's collateral and positions as a snapshot recorded them, with no open
    /// order quantity (the engine re-rests the orders, which adds it back).
    pub fn restore_account(&mut self, holder: Holder, collateral: i64, positions: &[Position]) -> AccountSlot {
        let slot = self.holder_slot(holder);
        let records: Vec<Position> = positions
            .iter()
            .map(|p| Position { open_buy: 0, open_sell: 0, liq_key: None, liq_place: 0, ..*p })
            .filter(|p| (p.instrument.index()) < self.markets.len())
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

    /// Checks conservation and index consistency.
    ///
    /// # Errors
    /// A description of the first broken invariant.
    #[allow(clippy::cast_possible_truncation, reason = "slots and instrument ids fit u32 by construction")]
    pub fn check_invariants(&self) -> Result<(), String> {
        if !self.pending.is_empty() {
            return Err(format!("{} accounts wait to be re-keyed", self.pending.len()));
        }
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
