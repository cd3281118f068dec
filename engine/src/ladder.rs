//! One side of one order book: its price levels, indexed by price, so that finding,
//! adding and removing a level costs O(1) instead of a search and a shift of a sorted list.
//!
//! # Layout
//!
//! ```text
//!  window (ticks):  base ──────────────────────────────────────▶ base + cap
//!  slots:   [NIL, NIL, h7, NIL, h2, h9, NIL, …]    level handle per tick, NIL where none
//!  words:   bit i set ⇔ slots[i] ≠ NIL             one u64 per 64 ticks
//!  summary: bit j set ⇔ words[j] ≠ 0               one u64 per 4,096 ticks
//!  far:     BTreeMap<price, handle>                levels outside the window (rare)
//!  best:    (price, handle) of the best level, kept up to date
//! ```
//!
//! A level inside the window is found by indexing `slots` with its distance from `base`;
//! the best level is cached; when the best level goes, the next one is the nearest set bit
//! on the worse side, found a word (64 ticks) at a time and, across empty words, a summary
//! word (4,096 ticks) at a time.
//!
//! # The window
//!
//! - The first level fixes a window of [`MIN_WINDOW`] ticks centred on it; a level priced
//!   outside the window grows it (a power of two, at least twice the span of the levels,
//!   centred on them) and every level is re-placed: O(window), amortised by the doubling.
//! - The window never exceeds `max_window` ticks ([`MAX_WINDOW`] by default: 16 MiB of
//!   slots). When the levels span more than half that, the window stays where it is and a
//!   level outside it goes to `far`, an ordered map — unless the best level would then be
//!   outside the window, in which case the window is re-centred on the best level first.
//!   Prices far from the best (stale orders after a large move of the market) thus cost
//!   O(log n); the active part of the book stays O(1).
//! - An empty ladder keeps its allocation; its next level re-centres the window.
//!
//! # Invariants (checked by [`Ladder::check_invariants`])
//!
//! Every level is in exactly one place, decided by its price alone: in the window if the
//! price is inside it, in `far` otherwise. In the window, a bit of `words` says whether the
//! tick has a level (its handle is then in `slots`; other slots are not read), and a bit of
//! `summary` whether a word has any; `len` counts the levels; `best` is the best of them.
//! Checking them costs O(levels + window / 64), not O(window).
//!
//! # Cost
//!
//! | operation | window | far |
//! |---|---|---|
//! | find a level by price | O(1) | O(log f) |
//! | add a level | O(1); growing the window O(window) | O(log f) |
//! | remove a level that is not the best | O(1) | O(log f) |
//! | remove the best level | O(gap / 64) words to the next level, summary words beyond 4,096 ticks | O(log f) |
//! | best level | O(1) | O(1) |
//!
//! f is the number of far levels (zero unless the levels span more than half of
//! `max_window` ticks).

use std::collections::BTreeMap;

use l2x_types::{Price, Side};

use crate::book::LevelHandle;

/// Smallest window, in ticks (a multiple of 4,096, the span of one summary word).
pub(crate) const MIN_WINDOW: usize = 1 << 12;
/// Largest window, in ticks: 4,194,304 (16 MiB of slots, 512 KiB of bitmap).
pub(crate) const MAX_WINDOW: usize = 1 << 22;

/// One side of one book (see the module doc).
#[derive(Clone, Debug)]
pub(crate) struct Ladder {
    side: Side,
    base: i64,
    slots: Vec<LevelHandle>,
    words: Vec<u64>,
    summary: Vec<u64>,
    far: BTreeMap<i64, LevelHandle>,
    len: usize,
    best: Option<(Price, LevelHandle)>,
    max_window: usize,
}

impl Ladder {
    /// An empty side, with the default largest window.
    pub(crate) fn new(side: Side) -> Ladder {
        Ladder::with_max_window(side, MAX_WINDOW)
    }

    /// An empty side whose window never exceeds `max_window` ticks (rounded up to a power
    /// of two of at least [`MIN_WINDOW`]).
    pub(crate) fn with_max_window(side: Side, max_window: usize) -> Ladder {
        Ladder {
            side,
            base: 0,
            slots: Vec::new(),
            words: Vec::new(),
            summary: Vec::new(),
            far: BTreeMap::new(),
            len: 0,
            best: None,
            max_window: max_window.max(MIN_WINDOW).next_power_of_two(),
        }
    }

    /// Number of levels.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The best level.
    #[inline]
    pub(crate) fn best(&self) -> Option<(Price, LevelHandle)> {
        self.best
    }

    /// `true` if `a` is a better price than `b` on this side.
    #[inline]
    fn better(&self, a: i64, b: i64) -> bool {
        match self.side {
            Side::Buy => a > b,
            Side::Sell => a < b,
        }
    }

    /// The slot index of a price inside the window.
    #[inline]
    fn index(&self, price: i64) -> Option<usize> {
        let offset = price.checked_sub(self.base)?;
        usize::try_from(offset).ok().filter(|&i| i < self.slots.len())
    }

    /// The price of a slot index.
    #[inline]
    fn price_at(&self, i: usize) -> i64 {
        // A window index is below MAX_WINDOW, so it fits i64; base + i was a level's price.
        #[allow(clippy::cast_possible_wrap, reason = "window indices are below 2^22")]
        let offset = i as i64;
        self.base + offset
    }

    /// The level at `price`, if any.
    #[inline]
    pub(crate) fn get(&self, price: Price) -> Option<LevelHandle> {
        match self.index(price.0) {
            Some(i) => (self.words[i >> 6] >> (i & 63) & 1 == 1).then(|| self.slots[i]),
            None => self.far.get(&price.0).copied(),
        }
    }

    /// Adds a level at a price that has none.
    pub(crate) fn insert(&mut self, price: Price, level: LevelHandle) {
        debug_assert!(self.get(price).is_none(), "a level at {price:?} already exists");
        let p = price.0;
        if self.index(p).is_none() {
            self.make_room(p);
        }
        match self.index(p) {
            Some(i) => self.set(i, level),
            None => {
                self.far.insert(p, level);
            }
        }
        self.len += 1;
        if self.best.is_none_or(|(b, _)| self.better(p, b.0)) {
            self.best = Some((price, level));
        }
    }

    /// Removes the level at `price` (which must exist); returns its handle.
    pub(crate) fn remove(&mut self, price: Price) -> LevelHandle {
        let p = price.0;
        let (level, index) = match self.index(p) {
            Some(i) => {
                let h = self.slots[i];
                self.clear(i);
                (h, Some(i))
            }
            None => (self.far.remove(&p).unwrap_or(LevelHandle::NIL), None),
        };
        debug_assert!(!level.is_nil(), "no level at {price:?}");
        self.len -= 1;
        if self.best.is_some_and(|(b, _)| b == price) {
            // The window's best after the removal: the next level on the worse side of the
            // removed one when it was the window's (nothing in the window was better), else
            // a scan of the whole window.
            let in_window = match (index, self.side) {
                (Some(i), Side::Buy) => i.checked_sub(1).and_then(|j| self.at_or_below(j)),
                (Some(i), Side::Sell) => self.at_or_above(i + 1),
                (None, _) => self.window_best(),
            };
            let window = in_window.map(|i| (self.price_at(i), self.slots[i]));
            let far = self.far_best();
            self.best = match (window, far) {
                (Some(w), Some(f)) => Some(if self.better(f.0, w.0) { f } else { w }),
                (w, f) => w.or(f),
            }
            .map(|(p, h)| (Price(p), h));
        }
        level
    }

    /// Levels from best to worst: (price, handle).
    pub(crate) fn iter(&self) -> Levels<'_> {
        let next = match self.best {
            Some((p, _)) if self.index(p.0).is_some() => self.index(p.0),
            _ => self.window_best(),
        };
        Levels { ladder: self, window: next, far: self.far.iter(), far_next: None, started: false }
    }

    // ----- the bitmap --------------------------------------------------------------------

    fn set(&mut self, i: usize, level: LevelHandle) {
        self.slots[i] = level;
        let w = i >> 6;
        self.words[w] |= 1 << (i & 63);
        self.summary[w >> 6] |= 1 << (w & 63);
    }

    fn clear(&mut self, i: usize) {
        self.slots[i] = LevelHandle::NIL;
        let w = i >> 6;
        self.words[w] &= !(1 << (i & 63));
        if self.words[w] == 0 {
            self.summary[w >> 6] &= !(1 << (w & 63));
        }
    }

    /// The lowest set index at or above `i`.
    fn at_or_above(&self, i: usize) -> Option<usize> {
        if i >= self.slots.len() {
            return None;
        }
        let w = i >> 6;
        let bits = self.words[w] & (!0u64 << (i & 63));
        if bits != 0 {
            return Some((w << 6) | bits.trailing_zeros() as usize);
        }
        let j = w + 1;
        if j >= self.words.len() {
            return None;
        }
        let mut s = j >> 6;
        let mut sbits = self.summary[s] & (!0u64 << (j & 63));
        loop {
            if sbits != 0 {
                let word = (s << 6) | sbits.trailing_zeros() as usize;
                return Some((word << 6) | self.words[word].trailing_zeros() as usize);
            }
            s += 1;
            if s >= self.summary.len() {
                return None;
            }
            sbits = self.summary[s];
        }
    }

    /// The highest set index at or below `i`.
    fn at_or_below(&self, i: usize) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let i = i.min(self.slots.len() - 1);
        let w = i >> 6;
        let bits = self.words[w] & (!0u64 >> (63 - (i & 63)));
        if bits != 0 {
            return Some((w << 6) | (63 - bits.leading_zeros() as usize));
        }
        let j = w.checked_sub(1)?;
        let mut s = j >> 6;
        let mut sbits = self.summary[s] & (!0u64 >> (63 - (j & 63)));
        loop {
            if sbits != 0 {
                let word = (s << 6) | (63 - sbits.leading_zeros() as usize);
                return Some((word << 6) | (63 - self.words[word].leading_zeros() as usize));
            }
            let t = s.checked_sub(1)?;
            s = t;
            sbits = self.summary[s];
        }
    }

    /// The best level inside the window, by a scan.
    fn window_best(&self) -> Option<usize> {
        match self.side {
            Side::Buy => self.at_or_below(usize::MAX),
            Side::Sell => self.at_or_above(0),
        }
    }

    /// The best level outside the window.
    fn far_best(&self) -> Option<(i64, LevelHandle)> {
        let e = match self.side {
            Side::Buy => self.far.last_key_value(),
            Side::Sell => self.far.first_key_value(),
        };
        e.map(|(&p, &h)| (p, h))
    }

    // ----- the window --------------------------------------------------------------------

    /// Before adding a level at `p` outside the window: grows or re-centres the window if
    /// the policy of the module doc says so (the level may still end up in `far`).
    fn make_room(&mut self, p: i64) {
        if self.len == 0 {
            let cap = self.slots.len().max(MIN_WINDOW);
            return self.rebuild(p.saturating_sub(half(cap)), cap);
        }
        // The span of every level and the new one.
        let (mut lo, mut hi) = (p, p);
        if let Some(i) = self.at_or_above(0) {
            lo = lo.min(self.price_at(i));
        }
        if let Some(i) = self.at_or_below(usize::MAX) {
            hi = hi.max(self.price_at(i));
        }
        if let (Some((&first, _)), Some((&last, _))) = (self.far.first_key_value(), self.far.last_key_value()) {
            lo = lo.min(first);
            hi = hi.max(last);
        }
        let span = usize::try_from(hi.abs_diff(lo)).unwrap_or(usize::MAX).saturating_add(1);
        if span <= self.max_window / 2 {
            let cap = (span * 2).next_power_of_two().clamp(MIN_WINDOW, self.max_window);
            return self.rebuild(lo.saturating_sub(half(cap - span)), cap);
        }
        // Too wide for one window: keep it on the best level.
        let best = match self.best {
            Some((b, _)) if !self.better(p, b.0) => b.0,
            _ => p,
        };
        if self.index(best).is_none() {
            self.rebuild(best.saturating_sub(half(self.max_window)), self.max_window);
        }
    }

    /// Re-places every level in a window of `cap` ticks from `base`.
    fn rebuild(&mut self, base: i64, cap: usize) {
        let mut all: Vec<(i64, LevelHandle)> = self.far.iter().map(|(&p, &h)| (p, h)).collect();
        let mut i = self.at_or_above(0);
        while let Some(j) = i {
            all.push((self.price_at(j), self.slots[j]));
            i = self.at_or_above(j + 1);
        }
        self.far.clear();
        self.base = base;
        self.slots.clear();
        self.slots.resize(cap, LevelHandle::NIL);
        self.words.clear();
        self.words.resize(cap / 64, 0);
        self.summary.clear();
        self.summary.resize(cap / 4096, 0);
        for (p, h) in all {
            match self.index(p) {
                Some(i) => self.set(i, h),
                None => {
                    self.far.insert(p, h);
                }
            }
        }
    }

    /// Checks the invariants of the module doc.
    ///
    /// # Errors
    /// A description of the first broken invariant.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let cap = self.slots.len();
        if !cap.is_multiple_of(4096)
            || self.words.len() != cap / 64
            || self.summary.len() != cap / 4096
            || cap > self.max_window
        {
            return Err(format!("{}: window of {cap} ticks with {} words", self.side, self.words.len()));
        }
        let mut count = 0;
        for (w, &word) in self.words.iter().enumerate() {
            if (self.summary[w >> 6] >> (w & 63) & 1 == 1) != (word != 0) {
                return Err(format!("{}: word {w} and its summary bit disagree", self.side));
            }
            let mut bits = word;
            while bits != 0 {
                let i = (w << 6) | bits.trailing_zeros() as usize;
                if self.slots[i].is_nil() {
                    return Err(format!("{}: tick {i} is marked but holds no level", self.side));
                }
                bits &= bits - 1;
                count += 1;
            }
        }
        if let Some((&p, _)) = self.far.iter().find(|&(&p, _)| self.index(p).is_some()) {
            return Err(format!("{}: far level at {p} is inside the window", self.side));
        }
        if count + self.far.len() != self.len {
            return Err(format!("{}: {} levels counted, len {}", self.side, count + self.far.len(), self.len));
        }
        let best = self.iter().next();
        if best != self.best {
            return Err(format!("{}: best {:?} but the levels begin with {best:?}", self.side, self.best));
        }
        Ok(())
    }
}

/// Half of a tick count, as a price offset.
fn half(ticks: usize) -> i64 {
    i64::try_from(ticks / 2).unwrap_or(i64::MAX)
}

/// Levels of a [`Ladder`] from best to worst (see [`Ladder::iter`]).
pub(crate) struct Levels<'a> {
    ladder: &'a Ladder,
    /// The next window level, best first.
    window: Option<usize>,
    far: std::collections::btree_map::Iter<'a, i64, LevelHandle>,
    far_next: Option<(i64, LevelHandle)>,
    started: bool,
}

impl Iterator for Levels<'_> {
    type Item = (Price, LevelHandle);

    fn next(&mut self) -> Option<(Price, LevelHandle)> {
        let l = self.ladder;
        if !self.started {
            self.started = true;
            self.far_next = self.next_far();
        }
        let window = self.window.map(|i| (l.price_at(i), l.slots[i]));
        let take_far = match (window, self.far_next) {
            (Some(w), Some(f)) => l.better(f.0, w.0),
            (None, Some(_)) => true,
            _ => false,
        };
        let (p, h) = if take_far {
            let f = self.far_next?;
            self.far_next = self.next_far();
            f
        } else {
            let i = self.window?;
            self.window = match l.side {
                Side::Buy => i.checked_sub(1).and_then(|j| l.at_or_below(j)),
                Side::Sell => l.at_or_above(i + 1),
            };
            (l.price_at(i), l.slots[i])
        };
        Some((Price(p), h))
    }
}

impl Levels<'_> {
    fn next_far(&mut self) -> Option<(i64, LevelHandle)> {
        let e = match self.ladder.side {
            Side::Buy => self.far.next_back(),
            Side::Sell => self.far.next(),
        };
        e.map(|(&p, &h)| (p, h))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Level handle `i` (the ladder only stores handles; which ones is the caller's business).
    fn lv(i: usize) -> LevelHandle {
        LevelHandle::at(i)
    }

    /// The reference: an ordered map, best first by iteration direction.
    fn reference_levels(side: Side, r: &BTreeMap<i64, LevelHandle>) -> Vec<(Price, LevelHandle)> {
        let v: Vec<(Price, LevelHandle)> = r.iter().map(|(&p, &h)| (Price(p), h)).collect();
        match side {
            Side::Buy => v.into_iter().rev().collect(),
            Side::Sell => v,
        }
    }

    #[test]
    fn best_moves_to_the_next_level_on_the_worse_side() {
        let mut bids = Ladder::new(Side::Buy);
        for (p, h) in [(100, 1), (90, 2), (5_000, 3), (99, 4)] {
            bids.insert(Price(p), lv(h));
        }
        assert_eq!(bids.best(), Some((Price(5_000), lv(3))));
        bids.remove(Price(5_000));
        assert_eq!(bids.best(), Some((Price(100), lv(1))));
        bids.remove(Price(100));
        assert_eq!(bids.best(), Some((Price(99), lv(4))));
        assert_eq!(bids.iter().collect::<Vec<_>>(), vec![(Price(99), lv(4)), (Price(90), lv(2))]);
        bids.check_invariants().unwrap();
    }

    #[test]
    fn levels_beyond_the_largest_window_go_far_and_the_window_follows_the_best() {
        let mut asks = Ladder::with_max_window(Side::Sell, MIN_WINDOW);
        asks.insert(Price(1_000_000), lv(1));
        asks.insert(Price(10), lv(2)); // too far for one window: the best moves, the window follows
        assert_eq!(asks.best(), Some((Price(10), lv(2))));
        assert!(asks.index(10).is_some() && asks.far.contains_key(&1_000_000));
        asks.insert(Price(20), lv(3));
        asks.check_invariants().unwrap();
        assert_eq!(asks.iter().map(|(p, _)| p.0).collect::<Vec<_>>(), vec![10, 20, 1_000_000]);
        asks.remove(Price(10));
        asks.remove(Price(20));
        assert_eq!(asks.best(), Some((Price(1_000_000), lv(1))));
        asks.check_invariants().unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, rng_seed: proptest::test_runner::RngSeed::Fixed(11), ..ProptestConfig::default() })]

        /// Any sequence of adds and removes, on either side, with the smallest window or one
        /// that fits three of the four price clusters (the fourth is far from them), gives the
        /// same levels, in the same order, as an ordered map; and the invariants hold after
        /// every operation.
        #[test]
        fn a_ladder_is_an_ordered_map_of_levels(
            buy in proptest::bool::ANY,
            small in proptest::bool::ANY,
            ops in proptest::collection::vec((proptest::bool::ANY, 0u8..4, 0i64..3_000), 1..200),
        ) {
            let side = if buy { Side::Buy } else { Side::Sell };
            let mut ladder = Ladder::with_max_window(side, if small { MIN_WINDOW } else { 1 << 14 });
            let mut reference: BTreeMap<i64, LevelHandle> = BTreeMap::new();
            let mut next = 0;
            for (add, cluster, offset) in ops {
                // Four clusters of 3,000 ticks: the middle two fit the larger window together,
                // the first does not with them, the last is far from all.
                let price = [1, 10_000, 12_000, 3_000_000][usize::from(cluster)] + offset;
                if add && !reference.contains_key(&price) {
                    ladder.insert(Price(price), lv(next));
                    reference.insert(price, lv(next));
                    next += 1;
                } else if !add {
                    // Remove the nearest existing level at or above the price, if any.
                    if let Some((&p, &h)) = reference.range(price..).next() {
                        prop_assert_eq!(ladder.remove(Price(p)), h);
                        reference.remove(&p);
                    }
                }
                ladder.check_invariants().map_err(TestCaseError::fail)?;
                prop_assert_eq!(ladder.len(), reference.len());
                let want = reference_levels(side, &reference);
                prop_assert_eq!(ladder.best(), want.first().copied());
                prop_assert_eq!(ladder.iter().collect::<Vec<_>>(), want);
                for p in [price, price + 1, price - 1] {
                    prop_assert_eq!(ladder.get(Price(p)), reference.get(&p).copied());
                }
            }
        }
    }
}
