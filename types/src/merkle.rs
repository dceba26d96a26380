//! The batch tree: one leaf per task, binding the task's index and its output's Merkle
//! root, under one batch root the provider commits to; and the multiproof that shows a
//! set of sampled leaves belongs to it.
//!
//! - leaf `i` = `sha256("T" ‖ i as u32 LE ‖ root_i)`; a leaf reveals nothing of `root_i`.
//! - The tree is a perfect binary tree over `2^depth` leaves, `depth = ceil(log2 N)`;
//!   positions `N..2^depth` hold [`PAD_LEAF`]. A node is `sha256(0x01 ‖ left ‖ right)`.
//!   For N = 1 the batch root is the one leaf.
//! - A multiproof for ascending positions `i_1 < … < i_k` lists, level by level from the
//!   leaves up and left to right, every sibling hash the verifier cannot compute from the
//!   sampled leaves themselves: at most `k · depth` hashes, usually far fewer.
use crate::hash::Sha256;
use crate::Hash32;
use alloc::vec::Vec;

/// The leaf standing at positions past the last task.
pub const PAD_LEAF: Hash32 = [0; 32];

/// The leaf of task `index` whose output has Merkle root `root`.
pub fn task_leaf<H: Sha256>(index: u32, root: &Hash32) -> Hash32 {
    H::hash(&[b"T", &index.to_le_bytes(), root])
}

/// An inner node.
pub fn node<H: Sha256>(left: &Hash32, right: &Hash32) -> Hash32 {
    H::hash(&[&[1u8], left, right])
}

/// Levels above the leaves for a batch of `tasks` tasks (0 for one task).
pub fn depth(tasks: u32) -> u32 {
    tasks.max(1).next_power_of_two().trailing_zeros()
}

/// Every level of the tree over `leaves` (padded), leaves first, the root level last.
fn levels<H: Sha256>(leaves: &[Hash32]) -> Vec<Vec<Hash32>> {
    let d = depth(leaves.len() as u32);
    let mut level: Vec<Hash32> = leaves.to_vec();
    level.resize(1usize << d, PAD_LEAF);
    let mut out = Vec::with_capacity(d as usize + 1);
    while level.len() > 1 {
        let next = level.chunks(2).map(|p| node::<H>(&p[0], &p[1])).collect();
        out.push(core::mem::replace(&mut level, next));
    }
    out.push(level);
    out
}

/// The batch root over the tasks' leaves (an empty batch has the pad leaf as root).
pub fn root<H: Sha256>(leaves: &[Hash32]) -> Hash32 {
    levels::<H>(leaves).last().and_then(|l| l.first().copied()).unwrap_or(PAD_LEAF)
}

/// The multiproof of the leaves at ascending `indices` (each `< leaves.len()`), or `None`
/// when the indices are not strictly ascending or out of range.
pub fn multiproof<H: Sha256>(leaves: &[Hash32], indices: &[u32]) -> Option<Vec<Hash32>> {
    if !ascending_below(indices, leaves.len() as u32) {
        return None;
    }
    let lv = levels::<H>(leaves);
    let mut proof = Vec::new();
    let mut cur: Vec<u32> = indices.to_vec();
    for level in &lv[..lv.len() - 1] {
        let mut next = Vec::with_capacity(cur.len());
        let mut i = 0;
        while i < cur.len() {
            let pos = cur[i];
            if pos & 1 == 0 && cur.get(i + 1) == Some(&(pos + 1)) {
                i += 2;
            } else {
                proof.push(level[(pos ^ 1) as usize]);
                i += 1;
            }
            next.push(pos / 2);
        }
        cur = next;
    }
    Some(proof)
}

/// Whether `leaves` at ascending `indices` belong to a batch of `tasks` tasks with root
/// `root`, by `proof` (consumed exactly). Costs one node hash per proof element and pair.
pub fn verify<H: Sha256>(tasks: u32, indices: &[u32], leaves: &[Hash32], proof: &[Hash32], root: &Hash32) -> bool {
    if indices.is_empty() || indices.len() != leaves.len() || !ascending_below(indices, tasks) {
        return false;
    }
    let mut cur: Vec<(u32, Hash32)> = indices.iter().copied().zip(leaves.iter().copied()).collect();
    let mut proof = proof.iter();
    for _ in 0..depth(tasks) {
        let mut next = Vec::with_capacity(cur.len());
        let mut i = 0;
        while i < cur.len() {
            let (pos, h) = cur[i];
            let parent = if pos & 1 == 0 {
                match cur.get(i + 1) {
                    Some((p, right)) if *p == pos + 1 => {
                        i += 1;
                        node::<H>(&h, right)
                    }
                    _ => match proof.next() {
                        Some(right) => node::<H>(&h, right),
                        None => return false,
                    },
                }
            } else {
                match proof.next() {
                    Some(left) => node::<H>(left, &h),
                    None => return false,
                }
            };
            next.push((pos / 2, parent));
            i += 1;
        }
        cur = next;
    }
    proof.next().is_none() && cur.len() == 1 && cur[0].1 == *root
}

fn ascending_below(indices: &[u32], bound: u32) -> bool {
    indices.windows(2).all(|w| w[0] < w[1]) && indices.last().is_none_or(|&i| i < bound)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::hash::HostSha256 as H;

    fn leaves(n: u32) -> Vec<Hash32> {
        (0..n).map(|i| task_leaf::<H>(i, &H::hash(&[b"out", &i.to_le_bytes()]))).collect()
    }

    #[test]
    fn one_task_root_is_its_leaf_and_needs_no_proof() {
        let l = leaves(1);
        assert_eq!(root::<H>(&l), l[0]);
        let p = multiproof::<H>(&l, &[0]).unwrap();
        assert!(p.is_empty());
        assert!(verify::<H>(1, &[0], &l, &p, &l[0]));
    }

    #[test]
    fn every_subset_of_a_small_batch_verifies_and_tampering_fails() {
        for n in [2u32, 3, 5, 8, 13] {
            let l = leaves(n);
            let r = root::<H>(&l);
            for mask in 1u32..(1 << n) {
                let idx: Vec<u32> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
                let sel: Vec<Hash32> = idx.iter().map(|&i| l[i as usize]).collect();
                let p = multiproof::<H>(&l, &idx).unwrap();
                assert!(p.len() <= idx.len() * depth(n) as usize);
                assert!(verify::<H>(n, &idx, &sel, &p, &r), "n={n} idx={idx:?}");
                // A changed leaf, a dropped or extra proof element, a shifted index: refused.
                let mut bad = sel.clone();
                bad[0][0] ^= 1;
                assert!(!verify::<H>(n, &idx, &bad, &p, &r));
                if !p.is_empty() {
                    assert!(!verify::<H>(n, &idx, &sel, &p[1..], &r));
                }
                let mut longer = p.clone();
                longer.push([7; 32]);
                assert!(!verify::<H>(n, &idx, &sel, &longer, &r));
                if idx.len() < n as usize {
                    let missing = (0..n).find(|i| !idx.contains(i)).unwrap();
                    let mut moved = idx.clone();
                    moved[0] = missing;
                    moved.sort();
                    if moved != idx {
                        assert!(!verify::<H>(n, &moved, &sel, &p, &r));
                    }
                }
            }
        }
    }

    #[test]
    fn malformed_inputs_are_refused_not_panics() {
        let l = leaves(4);
        let r = root::<H>(&l);
        assert!(!verify::<H>(4, &[], &[], &[], &r));
        assert!(!verify::<H>(4, &[1, 0], &[l[1], l[0]], &[], &r));
        assert!(!verify::<H>(4, &[4], &[PAD_LEAF], &[], &r));
        assert!(!verify::<H>(4, &[0, 1], &[l[0]], &[], &r));
        assert!(multiproof::<H>(&l, &[2, 2]).is_none());
        assert!(multiproof::<H>(&l, &[9]).is_none());
        // A padding position cannot be claimed as a task even with a valid path.
        let l3 = leaves(3);
        let r3 = root::<H>(&l3);
        assert!(!verify::<H>(3, &[3], &[PAD_LEAF], &[l3[2], node::<H>(&l3[0], &l3[1])], &r3));
    }

    #[test]
    fn proof_of_a_large_sparse_sample_is_small() {
        let n = 4096;
        let l = leaves(n);
        let idx: Vec<u32> = (0..n).step_by(97).collect();
        let sel: Vec<Hash32> = idx.iter().map(|&i| l[i as usize]).collect();
        let p = multiproof::<H>(&l, &idx).unwrap();
        assert!(verify::<H>(n, &idx, &sel, &p, &root::<H>(&l)));
        assert!(p.len() < idx.len() * 12);
    }
}
