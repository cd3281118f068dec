//! The near part of the liquidation index of one side of one market: accounts bucketed by
//! the mark at which they cross maintenance, so that re-keying an account after a fill is
//! O(1) and usually touches nothing at all.
//!
//! # Layout
//!
//! ```text
//!  window [lo, hi] of marks (the ledger's), split into BUCKETS buckets of `width` ticks
//!   members: [ [slot, slot], [], [slot], …, [overflow] ]   unordered slots per bucket
//!   occupied: bit b set ⇔ members[b] is not empty
//! ```
//!
//! A long with key `K` (liquidatable when the mark is below `K`) is near when `K > lo`; it
//! sits in bucket `(K − lo − 1) / width`, which holds the keys `(lo + b·width, lo +
//! (b+1)·width]`, or in the overflow bucket when `K > hi`. A short (liquidatable when the
//! mark is above `K`) is near when `K < hi`; bucket `(K − lo) / width` holds `[lo + b·width,
//! lo + (b+1)·width)`, the overflow `K < lo`. Each position remembers its key and where it
//! sits in its bucket; removing it swaps the bucket's last member into its place.
//!
//! # Queries
//!
//! For a mark `p` inside the window, the longs with `K > p` are every member of the buckets
//! above `p`'s bucket and of the overflow, plus the members of `p`'s own bucket whose key is
//! above `p` (the caller checks those); shorts mirror it. The cost is the occupied buckets
//! crossed (found a word of 64 buckets at a time) plus the accounts reported.
//!
//! # Cost of a re-key
//!
//! A key that stays in its bucket changes no structure; one that moves costs a swap-remove
//! and a push. Compared with an ordered tree, that is a few predictable instructions instead
//! of searches whose comparisons the branch predictor cannot guess.

use l2x_types::Side;

/// Buckets across the window (the overflow bucket comes after them).
pub(crate) const BUCKETS: usize = 1024;
/// The overflow bucket: longs above the window, shorts below it.
pub(crate) const OVERFLOW: usize = BUCKETS;
const WORDS: usize = (BUCKETS + 1).div_ceil(64);

/// The window's geometry for one market: `[lo, hi]` and the bucket width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) lo: i64,
    pub(crate) hi: i64,
    width: i64,
}

impl Geometry {
    /// The geometry of the window `[lo, hi]` (`lo < hi`).
    pub(crate) fn new(lo: i64, hi: i64) -> Geometry {
        let span = i128::from(hi) - i128::from(lo);
        let buckets = i128::try_from(BUCKETS).unwrap_or(i128::MAX);
        let width = i64::try_from((span + buckets - 1) / buckets).unwrap_or(i64::MAX).max(1);
        Geometry { lo, hi, width }
    }

    /// The bucket of a near key on `side` (`Side::Buy` for longs).
    #[inline]
    pub(crate) fn bucket(&self, long: bool, key: i64) -> usize {
        let offset = match long {
            true if key > self.hi => return OVERFLOW,
            true => i128::from(key) - i128::from(self.lo) - 1,
            false if key < self.lo => return OVERFLOW,
            false => i128::from(key) - i128::from(self.lo),
        };
        usize::try_from(offset / i128::from(self.width)).map_or(OVERFLOW, |b| b.min(BUCKETS - 1))
    }
}

/// The near accounts of one side of one market (see the module doc).
#[derive(Clone, Debug)]
pub(crate) struct Buckets {
    members: Vec<Vec<u32>>,
    occupied: [u64; WORDS],
    len: usize,
}

impl Default for Buckets {
    fn default() -> Buckets {
        Buckets { members: vec![Vec::new(); BUCKETS + 1], occupied: [0; WORDS], len: 0 }
    }
}

impl Buckets {
    /// Number of accounts held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Empties every bucket (keeping their allocations).
    pub(crate) fn clear(&mut self) {
        for b in &mut self.members {
            b.clear();
        }
        self.occupied = [0; WORDS];
        self.len = 0;
    }

    /// Adds `slot` to `bucket`; returns its place there.
    #[inline]
    pub(crate) fn insert(&mut self, bucket: usize, slot: u32) -> u32 {
        let members = &mut self.members[bucket];
        members.push(slot);
        self.occupied[bucket >> 6] |= 1 << (bucket & 63);
        self.len += 1;
        u32::try_from(members.len() - 1).unwrap_or(u32::MAX)
    }

    /// Removes the member at `place` of `bucket`; returns the slot moved into that place,
    /// if any (its remembered place must be updated).
    #[inline]
    pub(crate) fn remove(&mut self, bucket: usize, place: u32) -> Option<u32> {
        let members = &mut self.members[bucket];
        let place = place as usize;
        members.swap_remove(place);
        if members.is_empty() {
            self.occupied[bucket >> 6] &= !(1 << (bucket & 63));
        }
        self.len -= 1;
        members.get(place).copied()
    }

    /// The member at `place` of `bucket`.
    pub(crate) fn member(&self, bucket: usize, place: u32) -> Option<u32> {
        self.members[bucket].get(place as usize).copied()
    }

    /// Members of one bucket.
    pub(crate) fn bucket(&self, bucket: usize) -> &[u32] {
        &self.members[bucket]
    }

    /// Every member of the regular buckets in `range` and, if `overflow`, of the overflow
    /// bucket, in bucket order.
    pub(crate) fn members_in(&self, range: core::ops::Range<usize>, overflow: bool) -> impl Iterator<Item = u32> + '_ {
        let mut b = range.start;
        let end = range.end.min(BUCKETS);
        let regular = core::iter::from_fn(move || {
            while b < end {
                let word = self.occupied[b >> 6] >> (b & 63);
                if word == 0 {
                    b = (b | 63) + 1;
                    continue;
                }
                b += word.trailing_zeros() as usize;
                if b >= end {
                    return None;
                }
                let found = b;
                b += 1;
                return Some(found);
            }
            None
        });
        regular.chain(overflow.then_some(OVERFLOW)).flat_map(move |bucket| self.members[bucket].iter().copied())
    }

    /// Checks that the occupancy bits and the count agree with the members, in
    /// O(occupied buckets): every marked bucket has members, and the marked buckets hold
    /// `len` members between them (so no unmarked bucket holds any, `len` being kept apart).
    ///
    /// # Errors
    /// A description of the first disagreement.
    pub(crate) fn check_invariants(&self, side: Side) -> Result<(), String> {
        let mut count = 0;
        for (w, &word) in self.occupied.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let b = (w << 6) | bits.trailing_zeros() as usize;
                let members = self.members.get(b).map_or(0, Vec::len);
                if members == 0 {
                    return Err(format!("{side} bucket {b}: marked but empty"));
                }
                count += members;
                bits &= bits - 1;
            }
        }
        if count != self.len {
            return Err(format!("{side}: {count} members in marked buckets, len {}", self.len));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_partition_the_window_for_both_sides() {
        let g = Geometry::new(50_000, 200_000); // width ⌈150,000 / 1,024⌉ = 147
        // Longs: (lo, hi] in buckets, above hi overflow.
        assert_eq!(g.bucket(true, 50_001), 0);
        assert_eq!(g.bucket(true, 50_147), 0);
        assert_eq!(g.bucket(true, 50_148), 1);
        assert_eq!(g.bucket(true, 200_000), 149_999 / 147); // the last buckets run past hi
        assert_eq!(g.bucket(true, 200_001), OVERFLOW);
        // Shorts: [lo, hi) in buckets, below lo overflow.
        assert_eq!(g.bucket(false, 50_000), 0);
        assert_eq!(g.bucket(false, 50_146), 0);
        assert_eq!(g.bucket(false, 50_147), 1);
        assert_eq!(g.bucket(false, 199_999), 149_999 / 147);
        assert_eq!(g.bucket(false, 49_999), OVERFLOW);
    }

    #[test]
    fn remove_moves_the_last_member_into_the_hole() {
        let mut b = Buckets::default();
        assert_eq!((b.insert(3, 10), b.insert(3, 11), b.insert(3, 12)), (0, 1, 2));
        assert_eq!(b.remove(3, 0), Some(12));
        assert_eq!(b.bucket(3), &[12, 11]);
        assert_eq!(b.remove(3, 1), None);
        b.insert(700, 13);
        b.insert(OVERFLOW, 14);
        assert_eq!(b.members_in(0..BUCKETS, true).collect::<Vec<_>>(), vec![12, 13, 14]);
        assert_eq!(b.members_in(4..700, false).count(), 0);
        assert_eq!(b.members_in(4..701, false).collect::<Vec<_>>(), vec![13]);
        b.check_invariants(Side::Buy).unwrap();
    }
}
