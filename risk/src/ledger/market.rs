//! A market's mark price and funding index, and its part of the liquidation index (the
//! module doc of the ledger): what an oracle price or a funding tick changes, which accounts
//! it may put below maintenance, and the re-keying of an account whose health changed.

use std::collections::BTreeSet;

use l2x_types::{InstrumentId, Ppb, Price, Qty};

use super::{Ledger, PPM};
use crate::AccountSlot;
use crate::account::{IndexKey, Key, Position};
use crate::formulas;
use crate::index::{BUCKETS, Buckets, Geometry, OVERFLOW};
use crate::math::{ceil_div, floor_div, saturate};
use crate::params::MarketParams;

#[derive(Clone, Debug)]
pub(super) struct Market {
    pub(super) params: MarketParams,
    /// The mark, with the per-lot products every margin figure multiplies by; set only
    /// through [`Market::set_mark_price`], which keeps the products in step.
    pub(super) mark: Option<Mark>,
    pub(super) funding_index: i128,
    /// Slots holding a long, and a short, in this market (near or far).
    pub(super) long_holders: BTreeSet<u32>,
    pub(super) short_holders: BTreeSet<u32>,
    /// Near longs and shorts, bucketed by key (module doc; `index.rs`).
    pub(super) near_longs: Buckets,
    pub(super) near_shorts: Buckets,
    /// Slots holding this instrument and at least one other.
    pub(super) multi: BTreeSet<u32>,
    /// The window of marks `[lo, hi]` inside which far accounts need no exact key, and its
    /// buckets (module doc, "The window"); `None` until the first oracle price.
    pub(super) window: Option<Geometry>,
    /// Per lot of a long, `b / size = k · (10⁶ − MMF)`; of a short, `k · (10⁶ + MMF)`.
    pub(super) slope_long: i128,
    pub(super) slope_short: i128,
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
pub(super) struct Mark {
    pub(super) price: Price,
    /// `mark · k`: one lot's value at the mark, quote micro-units.
    pub(super) value: i128,
    /// `mark · k · MMF_ppm`: one lot's maintenance requirement, scaled by 10⁶.
    pub(super) maintenance: i128,
    /// `mark · k · IMF_ppm`: one lot's initial requirement, scaled by 10⁶.
    pub(super) initial: i128,
}

impl Market {
    /// The market of a newly listed instrument: no mark, no window, a zero funding index.
    pub(super) fn new(params: MarketParams) -> Market {
        Market {
            params,
            mark: None,
            funding_index: 0,
            long_holders: BTreeSet::new(),
            short_holders: BTreeSet::new(),
            near_longs: Buckets::default(),
            near_shorts: Buckets::default(),
            multi: BTreeSet::new(),
            window: None,
            slope_long: i128::from(params.quote_per_tick_lot) * (PPM - i128::from(params.maintenance_margin)),
            slope_short: i128::from(params.quote_per_tick_lot) * (PPM + i128::from(params.maintenance_margin)),
        }
    }

    /// Sets the mark and the funding index as a snapshot recorded them, with the window
    /// centred on the mark, as an oracle price would centre it.
    pub(super) fn restore(&mut self, mark: Option<Price>, funding_index: i128) {
        self.set_mark_price(mark);
        self.window = mark.map(|p| window_at(p.0));
        self.funding_index = funding_index;
    }

    /// The bucket of an indexed position's key: `None` for a far key (in no bucket), the
    /// overflow bucket while there is no window.
    #[inline]
    pub(super) fn bucket(&self, key: IndexKey) -> Option<usize> {
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
            let value = i128::from(price) * i128::from(self.params.quote_per_tick_lot);
            Mark {
                price,
                value,
                maintenance: value * i128::from(self.params.maintenance_margin),
                initial: value * i128::from(self.params.initial_margin),
            }
        });
    }

    /// The liquidation-index key of a position of `size` in this market of an account whose
    /// scaled health is `hscaled` (module doc): `None` when flat.
    pub(super) fn index_key(&self, size: i64, hscaled: i128) -> Option<IndexKey> {
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

impl Ledger {
    /// Sets a market's mark price and collects (into `out`, unsorted, possibly with
    /// duplicates) the accounts that may now be below maintenance.
    pub fn set_mark(&mut self, instrument: InstrumentId, price: Price, out: &mut Vec<AccountSlot>) {
        let Some(m) = self.markets.get_mut(instrument.index()) else { return };
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
        let m = &self.markets[instrument.index()];
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
        let m = self.markets.get_mut(instrument.index())?;
        let mark = m.mark?.price;
        let (k, p) = (m.params.quote_per_tick_lot, m.params);
        let notional = i128::from(p.impact_notional);
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

    /// Lists an account a fill changed for [`Ledger::rekey_pending`], once.
    #[inline]
    pub(super) fn defer_rekey(&mut self, slot: AccountSlot) {
        let i = slot.index();
        if i >= self.pending_mark.len() {
            self.pending_mark.resize(self.accounts.len().max(i + 1), false);
        }
        if !self.pending_mark[i] {
            self.pending_mark[i] = true;
            self.pending.push(slot);
        }
    }

    /// Re-keys, once each, the accounts fills changed since the last call (the module doc,
    /// "Re-keying after fills"). Returns `true` if any of them (a trading account) is now
    /// below maintenance.
    pub fn rekey_pending(&mut self) -> bool {
        let mut pending = core::mem::take(&mut self.pending);
        let mut below = false;
        for &slot in &pending {
            self.pending_mark[slot.index()] = false;
            below |= self.reindex(slot);
        }
        pending.clear();
        self.pending = pending;
        below
    }

    /// Recomputes an account's liquidation-index keys (see the module doc). Returns `true`
    /// if it is a trading account below maintenance.
    pub(super) fn reindex(&mut self, slot: AccountSlot) -> bool {
        if slot == Self::INSURANCE || slot == Self::FEES {
            return false;
        }
        let h = self.scaled(slot);
        let hscaled = PPM * h.equity - h.maintenance;
        let open = self.accounts[slot.index()].open_positions();
        let count = self.accounts[slot.index()].positions.len();
        for i in 0..count {
            let p: Position = self.accounts[slot.index()].positions[i];
            let m = &mut self.markets[p.instrument.index()];
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
        hscaled < 0
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

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
