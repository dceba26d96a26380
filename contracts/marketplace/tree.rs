//! The verifier-sampling tree: provider slots' stake weights in a segment tree whose nodes
//! remember their value at the start of the last two epochs they changed in, so a draw
//! reads the weights of a *past* epoch (the one its job was committed in) exactly, in
//! O(log n), whatever stake moved since.
//!
//! Why: a draw must not be steerable. Stake that moves after a job's commitment, in either
//! direction, would shift the intervals a draw point falls into; reading every weight as it
//! was when the epoch began makes later moves invisible to that job's draws. A job draws
//! within one epoch of its commitment (create_job caps the compute window accordingly), so
//! two remembered epochs per node always suffice (see [`Node::at`]).
//!
//! Layout: a complete binary tree over [`LEAVES`] slots, heap-numbered (root 1, leaves
//! `LEAVES + slot`), stored in blocks of up to 7 nodes (3 levels) so a root-to-leaf path is
//! 4 storage values instead of 11. Weights are `u64` (see `econ::weight`).
use capacloud_types::MAX_PROVIDERS;

/// Leaves (provider slots) of the tree.
pub const LEAVES: u32 = MAX_PROVIDERS;
/// Levels below the root (leaves are at this level).
const DEPTH: u32 = LEAVES.trailing_zeros();
/// Levels per stored block.
const BLOCK_LEVELS: u32 = 3;

/// A node's weight now and at the start of the last two epochs it changed in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[ink::scale_derive(Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
pub struct Node {
    /// The weight now.
    pub v: u64,
    /// The weight at the start of epoch `e1` (before its first change in `e1`).
    pub p1: u64,
    /// The weight at the start of epoch `e0`.
    pub p0: u64,
    /// The last epoch it changed in, and the one before.
    pub e1: u32,
    pub e0: u32,
}

impl Node {
    /// The weight at the start of epoch `x`, if this node still knows it: always for `x`
    /// at or after the epoch before its last change.
    pub fn at(&self, x: u32) -> Option<u64> {
        if x > self.e1 {
            Some(self.v)
        } else if x > self.e0 {
            Some(self.p1)
        } else if x == self.e0 {
            Some(self.p0)
        } else {
            None
        }
    }

    /// Applies `delta` in epoch `epoch` (never earlier than the last change).
    fn add(&mut self, delta: i128, epoch: u32) {
        if self.e1 < epoch {
            self.p0 = self.p1;
            self.e0 = self.e1;
            self.p1 = self.v;
            self.e1 = epoch;
        }
        self.v = (i128::from(self.v) + delta).clamp(0, i128::from(u64::MAX)) as u64;
    }
}

/// One stored block: up to 7 nodes, heap-numbered 1..=7 inside the block (index 0 unused).
pub type Block = [Node; 8];

fn level(n: u32) -> u32 {
    31 - n.leading_zeros()
}

/// The block holding node `n` and the node's index inside it.
fn locate(n: u32) -> (u32, usize) {
    let l = level(n);
    let rel = l % BLOCK_LEVELS;
    let root = n >> rel;
    (root, ((1u32 << rel) | (n & ((1u32 << rel) - 1))) as usize)
}

/// Read access to stored blocks (missing blocks are all zero).
pub trait Blocks {
    fn block(&self, id: u32) -> Block;
}

/// A store that reads each block once: a draw reads the root block for the total and
/// again for the descent, and exclusions share leaf blocks with it; every storage read
/// costs the call's proof ~10 KB. Keeps the last [`CACHED_BLOCKS`] blocks read.
pub struct Cached<B: Blocks> {
    store: B,
    slots: core::cell::RefCell<([(u32, Block); CACHED_BLOCKS], usize)>,
}

/// How many blocks a [`Cached`] store keeps (a draw reads at most the root, 3 more blocks
/// on its path and the leaf blocks of its few exclusions).
pub const CACHED_BLOCKS: usize = 8;

impl<B: Blocks> Cached<B> {
    pub fn new(store: B) -> Self {
        Self { store, slots: core::cell::RefCell::new(([(0, Block::default()); CACHED_BLOCKS], 0)) }
    }
}

impl<B: Blocks> Blocks for Cached<B> {
    fn block(&self, id: u32) -> Block {
        let mut slots = self.slots.borrow_mut();
        let (cache, used) = &mut *slots;
        if let Some((_, b)) = cache[..(*used).min(CACHED_BLOCKS)].iter().find(|(i, _)| *i == id) {
            return *b;
        }
        let b = self.store.block(id);
        cache[*used % CACHED_BLOCKS] = (id, b);
        *used += 1;
        b
    }
}

/// A cache of the last block read, so a walk reads each block once.
struct Reader<'a, B: Blocks> {
    store: &'a B,
    id: u32,
    block: Block,
}

impl<'a, B: Blocks> Reader<'a, B> {
    fn new(store: &'a B) -> Self {
        Self { store, id: 0, block: Block::default() }
    }
    fn node(&mut self, n: u32) -> Node {
        let (id, i) = locate(n);
        if id != self.id {
            self.block = self.store.block(id);
            self.id = id;
        }
        self.block[i]
    }
}

/// Sets slot `slot`'s weight to `weight` in epoch `epoch`: writes the 4 blocks of its path
/// through `write` (block id, block).
pub fn set_weight<B: Blocks>(store: &B, slot: u32, weight: u64, epoch: u32, mut write: impl FnMut(u32, &Block)) {
    debug_assert!(slot < LEAVES);
    let mut n = LEAVES + slot;
    let (leaf_block, leaf_i) = locate(n);
    let mut block = store.block(leaf_block);
    let delta = i128::from(weight) - i128::from(block[leaf_i].v);
    if delta == 0 {
        return;
    }
    let mut id = leaf_block;
    loop {
        let (b, i) = locate(n);
        if b != id {
            write(id, &block);
            id = b;
            block = store.block(b);
        }
        block[i].add(delta, epoch);
        if n == 1 {
            break;
        }
        n /= 2;
    }
    write(id, &block);
}

/// Slot `slot`'s weight at the start of epoch `x`.
pub fn weight_at<B: Blocks>(store: &B, slot: u32, x: u32) -> Option<u64> {
    let (b, i) = locate(LEAVES + slot);
    store.block(b)[i].at(x)
}

/// Every slot's weight together at the start of epoch `x`.
pub fn total_at<B: Blocks>(store: &B, x: u32) -> Option<u64> {
    store.block(1)[1].at(x)
}

/// The slot whose interval holds point `r` when the slots in `excluded` (slot, weight at
/// `x`) are taken out, with every weight as at the start of epoch `x`; `r` must be below
/// the total minus the excluded weights. `None` if the epoch is no longer known.
pub fn find<B: Blocks>(store: &B, x: u32, mut r: u64, excluded: &[(u32, u64)]) -> Option<u32> {
    let mut reader = Reader::new(store);
    let mut n = 1u32;
    for depth in 1..=DEPTH {
        let left = 2 * n;
        let mut w = reader.node(left).at(x)?;
        for (s, ws) in excluded {
            if (LEAVES + s) >> (DEPTH - depth) == left {
                w = w.saturating_sub(*ws);
            }
        }
        if r < w {
            n = left;
        } else {
            r -= w;
            n = left + 1;
        }
    }
    Some(n - LEAVES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Mem(RefCell<HashMap<u32, Block>>);
    impl Blocks for Mem {
        fn block(&self, id: u32) -> Block {
            self.0.borrow().get(&id).copied().unwrap_or_default()
        }
    }
    impl Mem {
        fn set(&self, slot: u32, w: u64, e: u32) {
            let mut writes = Vec::new();
            set_weight(self, slot, w, e, |id, b| writes.push((id, *b)));
            assert!(writes.len() <= 4);
            for (id, b) in writes {
                self.0.borrow_mut().insert(id, b);
            }
        }
    }

    #[test]
    fn cached_store_reads_each_block_once() {
        struct Counting<'a>(&'a Mem, RefCell<Vec<u32>>);
        impl Blocks for Counting<'_> {
            fn block(&self, id: u32) -> Block {
                self.1.borrow_mut().push(id);
                self.0.block(id)
            }
        }
        let m = Mem::default();
        for (s, w) in [(0u32, 10u64), (1, 5), (3, 20), (900, 30)] {
            m.set(s, w, 4);
        }
        let plain = Counting(&m, RefCell::default());
        let total = total_at(&plain, 5).unwrap();
        let (w0, w1) = (weight_at(&plain, 0, 5).unwrap(), weight_at(&plain, 1, 5).unwrap());
        let found = find(&plain, 5, 12, &[(0, w0)]).unwrap();
        let cached = Cached::new(Counting(&m, RefCell::default()));
        assert_eq!(total_at(&cached, 5), Some(total));
        assert_eq!((weight_at(&cached, 0, 5), weight_at(&cached, 1, 5)), (Some(w0), Some(w1)));
        assert_eq!(find(&cached, 5, 12, &[(0, w0)]), Some(found));
        assert_eq!((total, w0, w1, found), (65, 10, 5, 3));
        let mut distinct = plain.1.borrow().clone();
        distinct.sort();
        distinct.dedup();
        assert!(plain.1.borrow().len() > distinct.len(), "the plain store reads some block twice");
        assert_eq!(*cached.store.1.borrow(), {
            let mut first_seen = Vec::new();
            for id in plain.1.borrow().iter() {
                if !first_seen.contains(id) {
                    first_seen.push(*id);
                }
            }
            first_seen
        });
        // More distinct blocks than slots: still right, the oldest is read again.
        let many = Cached::new(Counting(&m, RefCell::default()));
        for slot in (0..LEAVES).step_by(64) {
            assert_eq!(weight_at(&many, slot, 5), weight_at(&m, slot, 5));
        }
        assert_eq!(weight_at(&many, 0, 5), Some(10));
    }

    #[test]
    fn blocks_partition_the_tree() {
        let mut seen = HashMap::new();
        for n in 1..2 * LEAVES {
            let (b, i) = locate(n);
            assert!((1..8).contains(&i));
            assert!(seen.insert((b, i), n).is_none(), "node {n} collides");
        }
        // A leaf's path touches exactly 4 blocks.
        let mut ids: Vec<u32> = (0..=DEPTH).map(|d| locate((LEAVES + 517) >> d).0).collect();
        ids.dedup();
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn snapshots_hide_later_changes_for_two_epochs() {
        let m = Mem::default();
        m.set(0, 10, 0);
        m.set(5, 30, 0);
        // Epoch 1: slot 0 grows, slot 7 arrives.
        m.set(0, 50, 1);
        m.set(7, 20, 1);
        // Epoch 2: slot 5 leaves.
        m.set(5, 0, 2);
        // Start of epoch 1 still sees epoch 0's end; start of epoch 2 sees epoch 1's end.
        assert_eq!(total_at(&m, 1), Some(40));
        assert_eq!(weight_at(&m, 0, 1), Some(10));
        assert_eq!(weight_at(&m, 7, 1), Some(0));
        assert_eq!(total_at(&m, 2), Some(100));
        assert_eq!(weight_at(&m, 5, 2), Some(30));
        assert_eq!(total_at(&m, 3), Some(70));
        // Epoch 0's start is forgotten at the root after changes in epochs 1 and 2.
        assert_eq!(total_at(&m, 0), None);
    }

    #[test]
    fn find_follows_the_snapshot_not_the_present() {
        let m = Mem::default();
        for (s, w) in [(0u32, 10u64), (3, 20), (900, 30)] {
            m.set(s, w, 4);
        }
        // In epoch 5 slot 0 (before slot 3) is emptied: at epoch 5's start nothing moved.
        m.set(0, 0, 5);
        let pick = |r| find(&m, 5, r, &[]).unwrap();
        assert_eq!(pick(0), 0);
        assert_eq!(pick(9), 0);
        assert_eq!(pick(10), 3);
        assert_eq!(pick(29), 3);
        assert_eq!(pick(30), 900);
        assert_eq!(pick(59), 900);
        // The present (epoch 6) sees the change.
        assert_eq!(find(&m, 6, 0, &[]).unwrap(), 3);
        // Exclusions are skipped.
        assert_eq!(find(&m, 5, 0, &[(0, 10)]).unwrap(), 3);
        assert_eq!(find(&m, 5, 20, &[(0, 10)]).unwrap(), 900);
        assert_eq!(find(&m, 5, 0, &[(0, 10), (3, 20)]).unwrap(), 900);
    }
}
