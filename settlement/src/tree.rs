//! The state tree: a sparse Merkle tree over 64-bit keys (account ids) with keccak-256,
//! compressed at single-leaf subtrees, updated incrementally (docs/SETTLEMENT.md, "State
//! tree").
//!
//! # Hashing
//!
//! The tree is the binary trie of all 2^64 keys, key bits from the most significant at the
//! root. The hash of a subtree depends on how many leaves it holds:
//!
//! ```text
//!  no leaf           0x00…00
//!  exactly one       leafNode(key, value) = keccak256(0x00 ‖ uint64 key ‖ bytes32 value)
//!  two or more       node(left, right)    = keccak256(0x01 ‖ bytes32 left ‖ bytes32 right)
//! ```
//!
//! (`‖` is `abi.encodePacked`; `value` is the account leaf's hash.) The domain bytes keep a
//! leaf from ever being read as a node. A subtree of one leaf hashes to the same value at
//! any depth, so a lonely account costs one hash, not 64; in a dense region (accounts
//! numbered 1, 2, 3, …) every level is a real node, as in a plain binary tree.
//!
//! # Incremental updates
//!
//! Leaves are kept in an ordered map (key → value), and the hash of every subtree with two or
//! more leaves in a cache keyed by (depth, prefix). [`Tree::update`] applies a batch of
//! changes and recomputes only the subtrees that contain a changed key, descending from the
//! root to the keys and splitting the sorted batch at each bit; each level's result says
//! whether the subtree is empty, one leaf (which passes up unhashed) or a node. An untouched
//! sibling's hash comes from the cache, or is its single leaf's, or empty. For `k` changed
//! keys among `n` accounts numbered densely, about `k · (log₂ n − log₂ k) + 2k` hashes.
//!
//! # Proofs
//!
//! A [`Proof`] lists the sibling hashes from the root down to the depth where the key's
//! subtree holds nothing but the key (or nothing at all: a proof of absence). Verification
//! starts from `leafNode(key, value)` (or `0x00…00` for absence) and hashes upwards with the
//! siblings, taking left or right from the key's bits; the result must be the root.

use std::collections::BTreeMap;
use std::ops::Bound;

use alloy_primitives::{B256, keccak256};
use l2x_types::DetMap;

/// Key bits, and so levels below the root.
pub const DEPTH: u32 = 64;

/// `leafNode(key, value)`.
pub fn leaf_node(key: u64, value: B256) -> B256 {
    let mut buf = [0u8; 41];
    buf[1..9].copy_from_slice(&key.to_be_bytes());
    buf[9..].copy_from_slice(value.as_slice());
    keccak256(buf)
}

/// `node(left, right)`.
pub fn node(left: B256, right: B256) -> B256 {
    let mut buf = [0u8; 65];
    buf[0] = 1;
    buf[1..33].copy_from_slice(left.as_slice());
    buf[33..].copy_from_slice(right.as_slice());
    keccak256(buf)
}

/// The keys of the subtree at `depth` (0: the root) that contains `key`: `lo..=hi`.
fn span(depth: u32, key: u64) -> (u64, u64) {
    if depth == 0 {
        return (0, u64::MAX);
    }
    let free = DEPTH - depth;
    let mask = if free == 64 { u64::MAX } else { (1u64 << free) - 1 };
    (key & !mask, key | mask)
}

/// The bit of `key` that chooses the child at `depth` (1: right).
fn bit(depth: u32, key: u64) -> bool {
    (key >> (DEPTH - 1 - depth)) & 1 == 1
}

/// What a subtree holds, with its hash.
#[derive(Clone, Copy, Debug)]
enum Sub {
    /// No leaf.
    Empty,
    /// One leaf (its leaf node).
    Leaf(B256),
    /// Two or more leaves.
    Node(B256),
}

impl Sub {
    fn hash(self) -> B256 {
        match self {
            Sub::Empty => B256::ZERO,
            Sub::Leaf(h) | Sub::Node(h) => h,
        }
    }
}

/// An inclusion (or absence) proof: the siblings from the root down, and for an absent key
/// whose subtree at the end holds one other leaf, that leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// Sibling hashes, the root's child first.
    pub siblings: Vec<B256>,
    /// Absence only: the one leaf (key, value) in the absent key's subtree at the proof's
    /// depth, if the subtree is not empty.
    pub other: Option<(u64, B256)>,
}

impl Proof {
    /// Whether this proof shows `value` at `key` (`None`: no leaf at `key`) under `root`.
    pub fn verify(&self, root: B256, key: u64, value: Option<B256>) -> bool {
        let Ok(depth) = u32::try_from(self.siblings.len()) else { return false };
        if depth > DEPTH {
            return false;
        }
        let mut h = match (value, self.other) {
            (Some(v), None) => leaf_node(key, v),
            (None, None) => B256::ZERO,
            // The other leaf must be another key in the same subtree.
            (None, Some((k, v))) if k != key && span(depth, k) == span(depth, key) => leaf_node(k, v),
            _ => return false,
        };
        for (depth, sib) in self.siblings.iter().enumerate().rev() {
            #[allow(clippy::cast_possible_truncation, reason = "at most 64 siblings")]
            let right = bit(depth as u32, key);
            h = if right { node(*sib, h) } else { node(h, *sib) };
        }
        h == root
    }
}

/// The sparse Merkle tree. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    leaves: BTreeMap<u64, B256>,
    /// Hashes of subtrees with two or more leaves: (depth, first key of the subtree).
    nodes: DetMap<(u32, u64), B256>,
    root: B256,
}

impl Tree {
    /// An empty tree (root `0x00…00`).
    pub fn new() -> Tree {
        Tree::default()
    }

    /// The root.
    pub fn root(&self) -> B256 {
        self.root
    }

    /// Leaves in the tree.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// Whether the tree has no leaf.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The value at `key`.
    pub fn get(&self, key: u64) -> Option<B256> {
        self.leaves.get(&key).copied()
    }

    /// Applies a batch of changes (`None` removes the key; a later change of the same key
    /// wins) and recomputes the root. Returns it.
    pub fn update(&mut self, changes: impl IntoIterator<Item = (u64, Option<B256>)>) -> B256 {
        let mut touched: Vec<u64> = Vec::new();
        for (key, value) in changes {
            match value {
                Some(v) => self.leaves.insert(key, v),
                None => self.leaves.remove(&key),
            };
            touched.push(key);
        }
        if touched.is_empty() {
            return self.root;
        }
        touched.sort_unstable();
        touched.dedup();
        self.root = self.rehash(0, 0, &touched).hash();
        self.root
    }

    /// The first two leaves of the subtree at `depth` holding `key`.
    fn first_two(&self, depth: u32, key: u64) -> (Option<(u64, B256)>, bool) {
        let (lo, hi) = span(depth, key);
        let mut it = self.leaves.range((Bound::Included(lo), Bound::Included(hi)));
        let first = it.next().map(|(k, v)| (*k, *v));
        (first, it.next().is_some())
    }

    /// An untouched subtree: from the cache (two or more leaves), or its one leaf, or empty.
    fn untouched(&self, depth: u32, prefix: u64) -> Sub {
        if let Some(h) = self.nodes.get(&(depth, prefix)) {
            return Sub::Node(*h);
        }
        if depth == DEPTH {
            return self.leaves.get(&prefix).map_or(Sub::Empty, |v| Sub::Leaf(leaf_node(prefix, *v)));
        }
        match self.first_two(depth, prefix) {
            (None, _) => Sub::Empty,
            (Some((k, v)), false) => Sub::Leaf(leaf_node(k, v)),
            // Every subtree of two or more leaves is cached; recompute if not (never expected).
            (Some(_), true) => Sub::Node(self.full(depth, prefix)),
        }
    }

    /// The hash of an untouched subtree.
    fn cached(&self, depth: u32, prefix: u64) -> B256 {
        self.untouched(depth, prefix).hash()
    }

    /// Recomputes the subtree at `depth` starting at `prefix`, where `touched` (sorted, all
    /// inside it, not empty) changed; keeps the cache exact on the way (a subtree that fell
    /// to one leaf or none leaves it).
    fn rehash(&mut self, depth: u32, prefix: u64, touched: &[u64]) -> Sub {
        if depth == DEPTH {
            return self.leaves.get(&prefix).map_or(Sub::Empty, |v| Sub::Leaf(leaf_node(prefix, *v)));
        }
        let half = 1u64 << (DEPTH - 1 - depth);
        let split = touched.partition_point(|&t| !bit(depth, t));
        let (left_t, right_t) = touched.split_at(split);
        let right_prefix = prefix | half;
        let left =
            if left_t.is_empty() { self.untouched(depth + 1, prefix) } else { self.rehash(depth + 1, prefix, left_t) };
        let right = if right_t.is_empty() {
            self.untouched(depth + 1, right_prefix)
        } else {
            self.rehash(depth + 1, right_prefix, right_t)
        };
        let out = match (left, right) {
            (Sub::Empty, Sub::Empty) => Sub::Empty,
            // One leaf in the whole subtree: it hashes as that leaf.
            (Sub::Leaf(h), Sub::Empty) | (Sub::Empty, Sub::Leaf(h)) => Sub::Leaf(h),
            (l, r) => Sub::Node(node(l.hash(), r.hash())),
        };
        match out {
            Sub::Node(h) => {
                self.nodes.insert((depth, prefix), h);
            }
            Sub::Empty | Sub::Leaf(_) => {
                self.nodes.remove(&(depth, prefix));
            }
        }
        out
    }

    /// The hash of a subtree computed from its leaves alone (no cache).
    fn full(&self, depth: u32, prefix: u64) -> B256 {
        let (lo, hi) = span(depth, prefix);
        let leaves: Vec<(u64, B256)> =
            self.leaves.range((Bound::Included(lo), Bound::Included(hi))).map(|(k, v)| (*k, *v)).collect();
        root_of(depth, &leaves)
    }

    /// The proof for `key` (of its leaf, or of its absence).
    pub fn prove(&self, key: u64) -> Proof {
        let mut siblings = Vec::new();
        let mut depth = 0;
        loop {
            let (first, more) = self.first_two(depth, key);
            if !more {
                let other = first.filter(|&(k, _)| k != key);
                return Proof { siblings, other };
            }
            let (lo, _) = span(depth + 1, key);
            let sibling_prefix = lo ^ (1u64 << (DEPTH - 1 - depth));
            siblings.push(self.cached(depth + 1, sibling_prefix));
            depth += 1;
        }
    }
}

/// The root of a subtree from its sorted leaves, by the definition (the reference the
/// incremental tree is tested against).
pub fn root_of(depth: u32, leaves: &[(u64, B256)]) -> B256 {
    match leaves {
        [] => B256::ZERO,
        [(k, v)] => leaf_node(*k, *v),
        _ => {
            let split = leaves.partition_point(|(k, _)| !bit(depth, *k));
            node(root_of(depth + 1, &leaves[..split]), root_of(depth + 1, &leaves[split..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn v(x: u8) -> B256 {
        B256::repeat_byte(x)
    }

    #[test]
    fn small_trees_by_hand() {
        let mut t = Tree::new();
        assert_eq!(t.root(), B256::ZERO);
        t.update([(1, Some(v(1)))]);
        assert_eq!(t.root(), leaf_node(1, v(1)), "one leaf: the root is the leaf node");
        t.update([(0, Some(v(2)))]);
        // 0 and 1 part at the last bit: 63 levels of node(x, 0) above them (their higher
        // bits are all 0, so they are always in the left subtree).
        let mut h = node(leaf_node(0, v(2)), leaf_node(1, v(1)));
        for _ in 0..63 {
            h = node(h, B256::ZERO);
        }
        assert_eq!(t.root(), h);
        // The top key is on the right of the root.
        t.update([(u64::MAX, Some(v(3)))]);
        let mut left = node(leaf_node(0, v(2)), leaf_node(1, v(1)));
        for _ in 0..62 {
            left = node(left, B256::ZERO);
        }
        assert_eq!(t.root(), node(left, leaf_node(u64::MAX, v(3))));
        t.update([(0, None), (u64::MAX, None)]);
        assert_eq!(t.root(), leaf_node(1, v(1)), "removing leaves collapses the path");
        t.update([(1, None)]);
        assert_eq!(t.root(), B256::ZERO);
        assert!(t.nodes.is_empty(), "no stale cache");
    }

    #[test]
    fn proofs_of_inclusion_and_absence() {
        let mut t = Tree::new();
        t.update((1..=1000u64).map(|k| (k, Some(v(u8::try_from(k % 251).unwrap())))));
        t.update([(u64::MAX, Some(v(9)))]);
        let root = t.root();
        for key in [1, 2, 500, 999, 1000, u64::MAX] {
            let p = t.prove(key);
            assert!(p.verify(root, key, t.get(key)), "{key}");
            assert!(!p.verify(root, key, Some(v(250))), "{key}: wrong value");
            assert!(!p.verify(root, key ^ 1, t.get(key)), "{key}: wrong key");
        }
        for absent in [0, 1001, 5000, u64::MAX - 1] {
            let p = t.prove(absent);
            assert!(p.verify(root, absent, None), "{absent}");
            assert!(!p.verify(root, absent, Some(v(1))), "{absent} is not there");
        }
        let mut p = t.prove(7);
        p.siblings[3] = v(7);
        assert!(!p.verify(root, 7, t.get(7)), "a tampered sibling");
    }

    fn key() -> impl Strategy<Value = u64> {
        // Dense small ids, a few far ones, and the reserved top keys.
        prop_oneof![6 => 0u64..64, 2 => any::<u64>(), 1 => Just(u64::MAX), 1 => Just(u64::MAX - 1)]
    }

    proptest! {
        /// Differential: after every batch, the incremental root equals the root computed
        /// from scratch over the same leaves, and every key's proof verifies.
        #[test]
        fn incremental_root_equals_the_root_from_scratch(
            batches in prop::collection::vec(
                prop::collection::vec((key(), prop::option::weighted(0.8, any::<u8>())), 0..20),
                1..12,
            )
        ) {
            let mut t = Tree::new();
            let mut model: BTreeMap<u64, B256> = BTreeMap::new();
            for batch in batches {
                let changes: Vec<(u64, Option<B256>)> = batch.iter().map(|&(k, x)| (k, x.map(v))).collect();
                for &(k, x) in &changes {
                    match x {
                        Some(x) => model.insert(k, x),
                        None => model.remove(&k),
                    };
                }
                t.update(changes);
                let leaves: Vec<(u64, B256)> = model.iter().map(|(k, x)| (*k, *x)).collect();
                prop_assert_eq!(t.root(), root_of(0, &leaves));
                for &(k, _) in batch.iter().take(5) {
                    prop_assert!(t.prove(k).verify(t.root(), k, model.get(&k).copied()));
                }
                // The cache holds exactly the subtrees with two or more leaves.
                let mut expected = 0;
                for depth in 0..DEPTH {
                    let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
                    for k in model.keys() {
                        *counts.entry(span(depth, *k).0).or_default() += 1;
                    }
                    expected += counts.values().filter(|&&c| c >= 2).count();
                }
                prop_assert_eq!(t.nodes.len(), expected);
            }
        }
    }
}
