//! The epoch tree of SPEC v2 §3.1: a shared group's epoch secrets are the
//! leaves of a depth-48 binary tree over the group's root, so that a member
//! reaches any epoch in at most 48 derivations, and the *frontier* of its
//! current epoch (at most 48 nodes) derives every later epoch and nothing at
//! or before it (forward secrecy).
//!
//! A node is named by its depth `d` (0 = the root, 48 = a leaf) and its
//! prefix: the `d` most significant of the 48 bits of the epochs below it.
//! `child(node, d, b) = ExpandLabel(node, "tree", u8(d) || u8(b), 32)`.
//!
//! Every secret here lives in a [`Secret32`] (zeroized on drop) and is
//! derived in place: nothing is collected in a growable container.
//!
//! Arguments: epochs are at most [`MAX_EPOCH`] and depths in `0..=48` (the
//! functions taking a child's depth: `1..=48`). The frontier's constructors
//! panic on an epoch out of range; the path helpers check only with debug
//! assertions (they are called per node), and give a meaningless result in
//! a release build. A [`crate::Context`] never passes one out of range.

use crate::key_schedule::Expander;
use crate::secret::Secret32;

/// Bits of an epoch number (SPEC §3).
pub const EPOCH_BITS: u32 = 48;
/// The last epoch; a context whose epoch would pass it is exhausted.
pub const MAX_EPOCH: u64 = (1 << EPOCH_BITS) - 1;

/// Bit `d` (`1..=48`) of the path to leaf `n`, most significant first.
#[inline]
pub fn path_bit(n: u64, d: u32) -> u8 {
    ((n >> (EPOCH_BITS - d)) & 1) as u8
}

/// The prefix of leaf `n` at depth `d` (`0..=48`): the node above it there.
#[inline]
pub fn prefix(n: u64, d: u32) -> u64 {
    if d == 0 {
        0
    } else {
        n >> (EPOCH_BITS - d)
    }
}

/// `child(node, d, b)` written into `out` (no copy left behind).
#[inline]
pub fn child_into(node: &Secret32, depth: u32, bit: u8, out: &mut Secret32) {
    Parent::new(node).child_into(depth, bit, out);
}

/// The children of one node, its HMAC key set up once (both children of a
/// node are often needed: a frontier's path and its right sibling, the
/// leaves of a range).
struct Parent(Expander);

impl Parent {
    fn new(node: &Secret32) -> Parent {
        Parent(Expander::new(node))
    }

    /// `child(node, depth, bit)` into `out`.
    #[inline]
    fn child_into(&self, depth: u32, bit: u8, out: &mut Secret32) {
        debug_assert!((1..=EPOCH_BITS).contains(&depth) && bit <= 1);
        self.0.secret_into(b"tree", &[depth as u8, bit], out);
    }
}

/// `child(node, d, b)`.
pub fn child(node: &Secret32, depth: u32, bit: u8) -> Secret32 {
    let mut out = Secret32::zero();
    child_into(node, depth, bit, &mut out);
    out
}

/// Descends from `node` at `depth` (a node above leaf `n`) to leaf `n`:
/// `48 - depth` derivations.
pub fn descend(node: &Secret32, depth: u32, n: u64) -> Secret32 {
    let mut out = Secret32::zero();
    descend_into(node, depth, n, &mut out);
    out
}

/// [`descend`] into `out` (no copy of the leaf left behind in a return).
pub fn descend_into(node: &Secret32, depth: u32, n: u64, out: &mut Secret32) {
    debug_assert!(depth <= EPOCH_BITS && n <= MAX_EPOCH);
    out.expose_mut().copy_from_slice(node.expose());
    let mut next = Secret32::zero();
    for d in depth + 1..=EPOCH_BITS {
        child_into(out, d, path_bit(n, d), &mut next);
        core::mem::swap(out.expose_mut(), next.expose_mut());
    }
}

/// Calls `f(n, leaf)` for every leaf `n` in `lo..=hi` below `node` (at
/// `depth`, with `prefix`), in increasing order, deriving each node on the
/// way once: about `48 - depth + 2 * (hi - lo + 1)` derivations for a range
/// inside the subtree.
pub fn for_each_leaf(node: &Secret32, depth: u32, prefix: u64, lo: u64, hi: u64, f: &mut impl FnMut(u64, &Secret32)) {
    let span = EPOCH_BITS - depth;
    let first = prefix << span;
    let last = first + ((1u64 << span) - 1);
    if hi < first || lo > last || lo > hi {
        return;
    }
    if depth == EPOCH_BITS {
        f(prefix, node);
        return;
    }
    let mut c = Secret32::zero();
    let parent = Parent::new(node);
    for bit in 0..=1u8 {
        let p = (prefix << 1) | u64::from(bit);
        let (cf, cl) = (p << (span - 1), (p << (span - 1)) + ((1u64 << (span - 1)) - 1));
        if hi < cf || lo > cl {
            continue;
        }
        parent.child_into(depth + 1, bit, &mut c);
        for_each_leaf(&c, depth + 1, p, lo, hi, f);
    }
}

/// The frontier of an epoch `c` (SPEC §3.1): for every depth `d` where bit
/// `d` of `c` is 0, the right sibling of `c`'s path there (prefix of `c` at
/// `d` with its last bit set). It derives every epoch after `c` and none at
/// or before it. Fixed size (48 slots, unused ones all zero): it never
/// reallocates, and every slot is zeroized when it is cleared or dropped.
pub struct Frontier {
    epoch: u64,
    /// Bit `d - 1` set: the node at depth `d` is held.
    held: u64,
    nodes: [Secret32; EPOCH_BITS as usize],
}

impl Frontier {
    /// The frontier of epoch `c` from the group's `root`, and `c`'s own
    /// secret: the path down to `c` and its right siblings, at most 96
    /// derivations (the root itself is not kept).
    ///
    /// # Panics
    /// If `c` is above [`MAX_EPOCH`].
    pub fn from_root(root: &Secret32, c: u64) -> (Frontier, Secret32) {
        let mut f = Frontier::empty(c);
        let leaf = f.start_at(root, c);
        (f, leaf)
    }

    /// A frontier of `epoch` that holds no node yet (to be filled in place
    /// with [`Frontier::start_at`] or [`Frontier::restore_node`], so that no
    /// copy of a node is left where the value was built).
    pub fn empty(epoch: u64) -> Frontier {
        Frontier { epoch, held: 0, nodes: core::array::from_fn(|_| Secret32::zero()) }
    }

    /// Makes this the frontier of `c` from the group's `root` (the path and
    /// its right siblings, at most 96 derivations); returns `c`'s secret.
    ///
    /// # Panics
    /// If `c` is above [`MAX_EPOCH`].
    pub fn start_at(&mut self, root: &Secret32, c: u64) -> Secret32 {
        self.start_at_with_window(root, c, c, &mut |_, _| {})
    }

    /// Puts back the node at `depth` (from a sealed state blob). `false`,
    /// and nothing changes, if this frontier has no node at that depth (bit
    /// `depth` of its epoch is 1, or `depth` is out of range).
    pub fn restore_node(&mut self, depth: u32, secret: &[u8; 32]) -> bool {
        if !(1..=EPOCH_BITS).contains(&depth) || path_bit(self.epoch, depth) != 0 {
            return false;
        }
        let slot = (depth - 1) as usize;
        self.nodes[slot].expose_mut().copy_from_slice(secret);
        self.held |= 1 << slot;
        true
    }

    /// Copies the held node above a later epoch `e` into `out` and returns
    /// its depth: what a reader needs to derive `e` without holding the
    /// frontier (or a lock on it) meanwhile. Written in place, so no copy of
    /// the node is left on the stack by a move. `None` (and `out` untouched)
    /// for an epoch at or before this one.
    pub fn node_above_into(&self, e: u64, out: &mut Secret32) -> Option<u32> {
        self.above(e).map(|(d, node)| {
            out.expose_mut().copy_from_slice(node.expose());
            d
        })
    }

    /// From `node` at `depth` on `c`'s path, descends to leaf `c`, storing
    /// each right sibling of the path into the frontier; returns the leaf.
    fn fill_below(&mut self, node: &Secret32, depth: u32, c: u64) -> Secret32 {
        self.fill_below_keeping(node, depth, c, None)
    }

    /// [`Self::fill_below`], also copying the path node at depth
    /// `keep.0` (below `depth`) into `keep.1`.
    fn fill_below_keeping(
        &mut self,
        node: &Secret32,
        depth: u32,
        c: u64,
        mut keep: Option<(u32, &mut Secret32)>,
    ) -> Secret32 {
        let mut cur = Secret32::zero();
        cur.expose_mut().copy_from_slice(node.expose());
        let mut next = Secret32::zero();
        for d in depth + 1..=EPOCH_BITS {
            let b = path_bit(c, d);
            let parent = Parent::new(&cur);
            if b == 0 {
                let slot = (d - 1) as usize;
                parent.child_into(d, 1, &mut self.nodes[slot]);
                self.held |= 1 << slot;
            }
            parent.child_into(d, b, &mut next);
            core::mem::swap(&mut cur, &mut next);
            if let Some((kd, out)) = keep.as_mut() {
                if *kd == d {
                    out.expose_mut().copy_from_slice(cur.expose());
                }
            }
        }
        cur
    }

    /// Makes this the frontier of `c` from the group's `root` and returns
    /// `c`'s secret, and calls `f(n, leaf)` for every epoch `n` in
    /// `lo..c` (in order): a join's window and frontier in one walk, the
    /// path above both `lo` and `c` derived once.
    ///
    /// # Panics
    /// If `c` is above [`MAX_EPOCH`] or `lo` above `c`.
    pub fn start_at_with_window(
        &mut self,
        root: &Secret32,
        c: u64,
        lo: u64,
        f: &mut impl FnMut(u64, &Secret32),
    ) -> Secret32 {
        assert!(c <= MAX_EPOCH && lo <= c, "epochs are 48-bit and the window ends at c");
        self.clear();
        self.epoch = c;
        if lo == c {
            return self.fill_below(root, 0, c);
        }
        // The deepest node above both `lo` and `c`.
        let common = (lo ^ c).leading_zeros() - (64 - EPOCH_BITS);
        let mut above = Secret32::zero();
        let leaf = if common == 0 {
            above.expose_mut().copy_from_slice(root.expose());
            self.fill_below(root, 0, c)
        } else {
            self.fill_below_keeping(root, 0, c, Some((common, &mut above)))
        };
        for_each_leaf(&above, common, prefix(c, common), lo, c - 1, f);
        leaf
    }

    /// The epoch this is the frontier of.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// How many nodes it holds.
    pub fn len(&self) -> usize {
        self.held.count_ones() as usize
    }

    /// Whether it holds every node of its epoch's frontier: the right
    /// sibling at each depth where the epoch's bit is 0 (what a restored
    /// frontier must hold to derive every later epoch).
    pub fn is_complete(&self) -> bool {
        let wanted = (1..=EPOCH_BITS).filter(|&d| path_bit(self.epoch, d) == 0).fold(0u64, |m, d| m | 1 << (d - 1));
        self.held == wanted
    }

    /// Whether it holds no node (the frontier of [`MAX_EPOCH`]).
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// The held nodes, shallowest first, as `(depth, prefix, secret)`.
    pub fn nodes(&self) -> impl Iterator<Item = (u32, u64, &Secret32)> {
        (1..=EPOCH_BITS)
            .filter(|d| self.held & (1 << (d - 1)) != 0)
            .map(|d| (d, prefix(self.epoch, d) | 1, &self.nodes[(d - 1) as usize]))
    }

    /// The held node above a later epoch `e`: at the first depth where the
    /// paths of `e` and the frontier's epoch part (the frontier's bit is 0
    /// there and `e`'s is 1, since `e` is later).
    fn above(&self, e: u64) -> Option<(u32, &Secret32)> {
        if e <= self.epoch || e > MAX_EPOCH {
            return None;
        }
        let d = (e ^ self.epoch).leading_zeros() - (64 - EPOCH_BITS) + 1;
        let slot = (d - 1) as usize;
        (self.held & (1 << slot) != 0).then(|| (d, &self.nodes[slot]))
    }

    /// The secret of a later epoch `e` (at most 48 derivations), or `None`
    /// for an epoch at or before this one (or past [`MAX_EPOCH`]).
    pub fn leaf(&self, e: u64) -> Option<Secret32> {
        self.above(e).map(|(d, node)| descend(node, d, e))
    }

    /// [`Frontier::leaf`] into `out` (no copy left in a return); `false`,
    /// and `out` untouched, for an epoch it does not derive.
    pub fn leaf_into(&self, e: u64, out: &mut Secret32) -> bool {
        match self.above(e) {
            Some((d, node)) => {
                descend_into(node, d, e, out);
                true
            }
            None => false,
        }
    }

    /// Makes this a copy of `other` (node by node, in place: for a copy in
    /// locked memory that is then moved elsewhere in the tree).
    pub fn copy_from(&mut self, other: &Frontier) {
        self.epoch = other.epoch;
        self.held = other.held;
        for (mine, theirs) in self.nodes.iter_mut().zip(&other.nodes) {
            mine.expose_mut().copy_from_slice(theirs.expose());
        }
    }

    /// Calls `f(n, leaf)` for every epoch `n` in `lo..=hi` that is after
    /// this frontier's epoch, in increasing order, deriving shared nodes
    /// once (SPEC §3.1's "the epochs of the new window that it does not hold
    /// yet").
    pub fn for_each_leaf(&self, lo: u64, hi: u64, f: &mut impl FnMut(u64, &Secret32)) {
        let lo = lo.max(self.epoch.saturating_add(1));
        let hi = hi.min(MAX_EPOCH);
        if lo > hi {
            return;
        }
        // Deepest held nodes cover the earliest epochs.
        for d in (1..=EPOCH_BITS).rev() {
            if self.held & (1 << (d - 1)) != 0 {
                for_each_leaf(&self.nodes[(d - 1) as usize], d, prefix(self.epoch, d) | 1, lo, hi, f);
            }
        }
    }

    /// Moves the frontier to a later epoch `to` and returns `to`'s secret:
    /// the node above `to` is split down to `to` (its right siblings join
    /// the frontier), and every node that derives only epochs at or before
    /// `to` is zeroized. At most 48 derivations. `None` (and nothing
    /// changes) if `to` is not later than the current epoch.
    pub fn advance(&mut self, to: u64) -> Option<Secret32> {
        let (d, node) = self.above(to)?;
        let mut split = Secret32::zero();
        split.expose_mut().copy_from_slice(node.expose());
        // Depths >= d: the node above `to` and every deeper node (those
        // derive epochs before `to`'s prefix at `d`) go; shallower ones are
        // on both paths and stay.
        for depth in d..=EPOCH_BITS {
            let slot = (depth - 1) as usize;
            if self.held & (1 << slot) != 0 {
                zeroize::Zeroize::zeroize(self.nodes[slot].expose_mut());
                self.held &= !(1 << slot);
            }
        }
        self.epoch = to;
        Some(self.fill_below(&split, d, to))
    }

    /// Clears every node (zeroized).
    pub fn clear(&mut self) {
        for n in self.nodes.iter_mut() {
            zeroize::Zeroize::zeroize(n.expose_mut());
        }
        self.held = 0;
    }
}

/// Depths a [`Path`] holds nodes at: the deepest 15 (below depth 33),
/// enough for the current epoch to move through a subtree of 2^15 epochs
/// (a window of up to 32 768) by splitting held nodes only.
const PATH_SLOTS: usize = 15;
const PATH_FLOOR: u32 = EPOCH_BITS - PATH_SLOTS as u32;

/// The deep part of the current epoch's frontier, for a context that keeps
/// its frontier at the oldest epoch of its window: the right siblings of
/// the current epoch's path below the node of that frontier it descends
/// from, and only below depth 33. The next epoch's secret then comes from
/// splitting one of them (two derivations on most boundaries) instead of a
/// walk down from that frontier. Every node derives only epochs after the
/// current one, all derivable from the window's frontier too: it exposes
/// nothing more. 15 slots (496 bytes): it fits a small locked slot.
pub struct Path {
    epoch: u64,
    /// Bit `d - PATH_FLOOR - 1` set: the node at depth `d` is held.
    held: u64,
    nodes: [Secret32; PATH_SLOTS],
}

impl Path {
    /// A path that holds nothing (the first advance starts it).
    pub fn empty() -> Path {
        Path { epoch: 0, held: 0, nodes: core::array::from_fn(|_| Secret32::zero()) }
    }

    fn slot(depth: u32) -> usize {
        (depth - PATH_FLOOR - 1) as usize
    }

    /// Starts over at epoch `c` from `node`, the node at `depth` above it
    /// (of the window's frontier): `c`'s secret into `out`, the right
    /// siblings of its path below depth 33 kept.
    pub fn start_below(&mut self, node: &Secret32, depth: u32, c: u64, out: &mut Secret32) {
        self.clear();
        self.epoch = c;
        self.descend_keeping(node, depth, out);
    }

    /// Moves to a later epoch `to` when a held node is above it: `to`'s
    /// secret into `out`, every node that derives only epochs at or before
    /// `to` zeroized. `false`, and nothing changes, otherwise (the caller
    /// starts over from the window's frontier).
    pub fn advance(&mut self, to: u64, out: &mut Secret32) -> bool {
        if to <= self.epoch || to > MAX_EPOCH {
            return false;
        }
        let d = (to ^ self.epoch).leading_zeros() - (64 - EPOCH_BITS) + 1;
        if d <= PATH_FLOOR || self.held & (1 << Self::slot(d)) == 0 {
            return false;
        }
        let mut split = Secret32::zero();
        split.expose_mut().copy_from_slice(self.nodes[Self::slot(d)].expose());
        for depth in d..=EPOCH_BITS {
            let i = Self::slot(depth);
            zeroize::Zeroize::zeroize(self.nodes[i].expose_mut());
            self.held &= !(1 << i);
        }
        self.epoch = to;
        self.descend_keeping(&split, d, out);
        true
    }

    /// From `node` at `depth` down to this path's epoch into `out`, keeping
    /// each right sibling below the floor.
    fn descend_keeping(&mut self, node: &Secret32, depth: u32, out: &mut Secret32) {
        out.expose_mut().copy_from_slice(node.expose());
        let mut next = Secret32::zero();
        for d in depth + 1..=EPOCH_BITS {
            let b = path_bit(self.epoch, d);
            let parent = Parent::new(out);
            if b == 0 && d > PATH_FLOOR {
                parent.child_into(d, 1, &mut self.nodes[Self::slot(d)]);
                self.held |= 1 << Self::slot(d);
            }
            parent.child_into(d, b, &mut next);
            core::mem::swap(out.expose_mut(), next.expose_mut());
        }
    }

    /// Clears every node (zeroized).
    pub fn clear(&mut self) {
        for n in self.nodes.iter_mut() {
            zeroize::Zeroize::zeroize(n.expose_mut());
        }
        self.held = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A node's HMAC key, set up for both its children (the public types are
    // checked with the context's).
    crate::secret::assert_no_leaky_traits!(Parent);

    #[test]
    fn a_path_gives_the_leaves_a_frontier_gives() {
        // From the window frontier of epoch `lo`, along epochs after it:
        // the path's leaves equal the frontier's, whether it splits a held
        // node or has to start over (crossing depth 33, or a jump).
        let lo = (1u64 << 20) - 40;
        let (f, _) = Frontier::from_root(&root(), lo);
        let mut path = Path::empty();
        let mut leaf = Secret32::zero();
        let mut splits = 0;
        for to in (lo + 1..lo + 100).chain([lo + 5000, lo + 5001, (1 << 40) + 3, (1 << 40) + 4]) {
            if path.advance(to, &mut leaf) {
                splits += 1;
            } else {
                let mut node = Secret32::zero();
                let d = f.node_above_into(to, &mut node).expect("later");
                path.start_below(&node, d, to, &mut leaf);
            }
            assert!(leaf.ct_eq(&f.leaf(to).expect("later")), "epoch {to}");
            // Nothing held derives an epoch at or before the current one.
            for depth in PATH_FLOOR + 1..=EPOCH_BITS {
                if path.held & (1 << Path::slot(depth)) != 0 {
                    assert_eq!(path_bit(to, depth), 0, "a node at {depth} beside {to}'s path");
                }
            }
        }
        assert!(splits >= 95, "{splits} of 103 advances split a held node");
        assert!(!path.advance(lo, &mut leaf), "never backwards");
    }

    fn root() -> Secret32 {
        let mut r = Secret32::zero();
        r.expose_mut().copy_from_slice(&[7u8; 32]);
        r
    }

    fn leaf(n: u64) -> Secret32 {
        descend(&root(), 0, n)
    }

    #[test]
    fn a_frontier_derives_every_later_epoch_and_nothing_at_or_before_it() {
        for c in [0u64, 1, 5, 6, 63, 64, 1 << 20, 17_645_472_000, MAX_EPOCH - 1, MAX_EPOCH] {
            let (f, own) = Frontier::from_root(&root(), c);
            assert!(own.ct_eq(&leaf(c)));
            assert_eq!(f.len() as u32, EPOCH_BITS - c.count_ones().min(EPOCH_BITS));
            for e in [c.saturating_sub(1), c] {
                assert!(f.leaf(e).is_none(), "epoch {e} from the frontier of {c}");
            }
            for e in [c + 1, c + 2, c + 1000, MAX_EPOCH] {
                if e > c && e <= MAX_EPOCH {
                    assert!(f.leaf(e).expect("later").ct_eq(&leaf(e)), "epoch {e} from {c}");
                }
            }
            // Every held node lies strictly after c (its first leaf > c).
            for (d, p, _) in f.nodes() {
                assert!(p << (EPOCH_BITS - d) > c);
            }
            // Restored node by node, it is complete only with every node.
            let nodes: Vec<(u32, [u8; 32])> = f.nodes().map(|(d, _, s)| (d, *s.expose())).collect();
            let mut r = Frontier::empty(c);
            for (i, (d, s)) in nodes.iter().enumerate() {
                assert!(!r.is_complete(), "{i} of {} nodes of {c}", nodes.len());
                assert!(r.restore_node(*d, s));
            }
            assert!(r.is_complete(), "every node of {c}");
        }
    }

    #[test]
    fn advancing_equals_joining_at_the_new_epoch() {
        let (mut f, _) = Frontier::from_root(&root(), 1000);
        for to in [1001u64, 1002, 1023, 1024, 5000, 5001, 1 << 33, (1 << 33) + 7] {
            let s = f.advance(to).expect("later");
            let (g, own) = Frontier::from_root(&root(), to);
            assert!(s.ct_eq(&own));
            let a: Vec<_> = f.nodes().map(|(d, p, _)| (d, p)).collect();
            let b: Vec<_> = g.nodes().map(|(d, p, _)| (d, p)).collect();
            assert_eq!(a, b);
            for ((_, _, x), (_, _, y)) in f.nodes().zip(g.nodes()) {
                assert!(x.ct_eq(y));
            }
        }
        assert!(f.advance(5).is_none(), "never backwards");
    }

    #[test]
    fn a_join_walk_gives_the_window_and_the_frontier_of_separate_walks() {
        for (lo, c) in
            [(0, 0), (0, 63), (5, 5), (1000, 1063), (0x7fff_ffff_ffc1, 0x8000_0000_0000), (MAX_EPOCH - 63, MAX_EPOCH)]
        {
            let mut f = Frontier::empty(c);
            let mut seen = Vec::new();
            let leaf_c = f.start_at_with_window(&root(), c, lo, &mut |n, s| {
                assert_eq!(s.expose(), leaf(n).expose(), "leaf {n}");
                seen.push(n);
            });
            assert_eq!(seen, (lo..c).collect::<Vec<_>>());
            assert_eq!(leaf_c.expose(), leaf(c).expose());
            let (g, _) = Frontier::from_root(&root(), c);
            assert_eq!(f.held, g.held);
            for (a, b) in f.nodes().zip(g.nodes()) {
                assert_eq!((a.0, a.1, a.2.expose()), (b.0, b.1, b.2.expose()));
            }
        }
    }

    #[test]
    fn for_each_leaf_visits_the_range_once_in_order() {
        let (f, _) = Frontier::from_root(&root(), 100);
        let mut seen = Vec::new();
        f.for_each_leaf(90, 230, &mut |n, s| {
            assert!(s.ct_eq(&leaf(n)));
            seen.push(n);
        });
        assert_eq!(seen, (101..=230).collect::<Vec<_>>());
        let mut from_root = Vec::new();
        for_each_leaf(&root(), 0, 0, MAX_EPOCH - 3, MAX_EPOCH, &mut |n, s| {
            assert!(s.ct_eq(&leaf(n)));
            from_root.push(n);
        });
        assert_eq!(from_root, (MAX_EPOCH - 3..=MAX_EPOCH).collect::<Vec<_>>());
    }
}
