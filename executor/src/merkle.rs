//! The output commitment: a Merkle root over fixed-size chunks of a job's output, with inclusion proofs.
//!
//! The output is split into chunks of `chunk_size` bytes; the last chunk may be shorter, and
//! an empty output is a single empty chunk. Hashes are domain-separated:
//!
//! - leaf: `sha256(0x00 ‖ chunk)`
//! - node: `sha256(0x01 ‖ left ‖ right)`
//! - root: `sha256(0x02 ‖ output_len as u64 LE ‖ chunk_size as u32 LE ‖ tree_hash)`
//!
//! The tree has the RFC 6962 shape: for `n > 1` leaves, the left subtree holds the largest
//! power of two `k < n` leaves and the right subtree the other `n − k`. The committed root
//! binds the output length and the chunk size as well as the tree hash, so two outputs that
//! differ only by trailing bytes, or one output chunked two ways, never share a root.
//!
//! Inclusion proofs are RFC 6962 audit paths, checked with the RFC 9162 §2.1.3.2 algorithm.

use std::io;
use std::num::NonZeroU32;

use codec::{Decode, Encode};
use rayon::prelude::*;
use thiserror::Error;

/// The default chunk size, in bytes.
pub const DEFAULT_CHUNK_SIZE: u32 = 4096;

/// [`DEFAULT_CHUNK_SIZE`] as a [`NonZeroU32`], for the constructors that take one.
pub const DEFAULT_CHUNK: NonZeroU32 = match NonZeroU32::new(DEFAULT_CHUNK_SIZE) {
    Some(size) => size,
    None => panic!("DEFAULT_CHUNK_SIZE must not be zero"),
};

/// Domain tag prefixed to a chunk to hash a leaf.
pub const LEAF_TAG: u8 = 0x00;
/// Domain tag prefixed to two child hashes to hash an inner node.
pub const NODE_TAG: u8 = 0x01;
/// Domain tag prefixed to the length, chunk size and tree hash to hash the committed root.
pub const ROOT_TAG: u8 = 0x02;

/// Levels at least this wide are combined in parallel by [`commit_parallel`].
const PAR_LEVEL_THRESHOLD: usize = 1024;

/// The leaf hash of one chunk: `sha256(0x00 ‖ chunk)`.
pub fn leaf_hash(chunk: &[u8]) -> [u8; 32] {
    crate::spec::sha256_parts(&[&[LEAF_TAG], chunk])
}

/// The hash of an inner node: `sha256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    crate::spec::sha256_parts(&[&[NODE_TAG], left, right])
}

/// The committed root: `sha256(0x02 ‖ output_len as u64 LE ‖ chunk_size as u32 LE ‖ tree_hash)`.
pub fn root_hash(output_len: u64, chunk_size: u32, tree_hash: &[u8; 32]) -> [u8; 32] {
    crate::spec::sha256_parts(&[&[ROOT_TAG], &output_len.to_le_bytes(), &chunk_size.to_le_bytes(), tree_hash])
}

/// Why a commitment could not be built or a proof did not verify.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MerkleError {
    /// A chunk size of zero was given.
    #[error("chunk size must not be zero")]
    ZeroChunkSize,
    /// The leaf index is not below the number of leaves.
    #[error("leaf index {index} is out of range for a tree of {leaf_count} leaves")]
    IndexOutOfRange {
        /// The requested index.
        index: u64,
        /// Leaves in the tree.
        leaf_count: u64,
    },
    /// The chunk's length is not the length of the chunk at its index.
    #[error("chunk {index} is {found} bytes, expected {expected}")]
    WrongChunkLength {
        /// The chunk's index.
        index: u64,
        /// The length the chunk at that index must have.
        expected: u64,
        /// The length given.
        found: u64,
    },
    /// The proof was made for a tree with a different number of leaves.
    #[error("proof is for a tree of {proof} leaves, but the commitment has {commitment}")]
    LeafCountMismatch {
        /// Leaf count claimed by the proof.
        proof: u64,
        /// Leaf count of the commitment.
        commitment: u64,
    },
    /// The proof does not have as many sibling hashes as the audit path for its index.
    #[error("proof has {found} sibling hashes, expected {expected}")]
    WrongSiblingCount {
        /// Length of the audit path for this index and leaf count.
        expected: usize,
        /// Siblings in the proof.
        found: usize,
    },
    /// The root recomputed from the chunk and the proof is not the committed root.
    #[error("the root recomputed from the chunk and its proof does not match the commitment")]
    RootMismatch,
    /// The commitment's leaf count does not follow from its output length and chunk size.
    #[error(
        "commitment claims {claimed} leaves, but {output_len} bytes in chunks of {chunk_size} make {expected}"
    )]
    InconsistentCommitment {
        /// Leaf count stored in the commitment.
        claimed: u64,
        /// Leaf count implied by `output_len` and `chunk_size`.
        expected: u64,
        /// The commitment's output length.
        output_len: u64,
        /// The commitment's chunk size.
        chunk_size: u32,
    },
}

/// The commitment to a job's output.
///
/// Only [`Commitment::root`] needs to be published; the other fields are what it binds, kept
/// so a verifier knows how to chunk the output and check proofs against the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Commitment {
    /// The committed root, binding `output_len`, `chunk_size` and `tree_hash`.
    pub root: [u8; 32],
    /// The Merkle tree hash over the chunks (RFC 6962 shape).
    pub tree_hash: [u8; 32],
    /// Length of the output in bytes.
    pub output_len: u64,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// Number of leaves (chunks); an empty output has one empty chunk.
    pub leaf_count: u64,
}

impl Commitment {
    /// Number of leaves for an output of `len` bytes in chunks of `chunk_size`:
    /// `ceil(len / chunk_size)`, and 1 for an empty output.
    pub fn leaf_count_for(len: u64, chunk_size: NonZeroU32) -> u64 {
        if len == 0 {
            1
        } else {
            len.div_ceil(u64::from(chunk_size.get()))
        }
    }

    /// Length of the chunk at `index`: `chunk_size` for every chunk but the last, whose length
    /// follows from `output_len`. `None` if `index` is out of range or the commitment's chunk
    /// size is zero.
    pub fn chunk_len(&self, index: u64) -> Option<u64> {
        let chunk_size = NonZeroU32::new(self.chunk_size)?;
        let leaf_count = Self::leaf_count_for(self.output_len, chunk_size);
        (index < leaf_count).then(|| chunk_len_at(self.output_len, chunk_size, leaf_count, index))
    }

    /// Builds the commitment from a tree hash.
    fn from_tree_hash(
        tree_hash: [u8; 32],
        output_len: u64,
        chunk_size: NonZeroU32,
        leaf_count: u64,
    ) -> Self {
        Self {
            root: root_hash(output_len, chunk_size.get(), &tree_hash),
            tree_hash,
            output_len,
            chunk_size: chunk_size.get(),
            leaf_count,
        }
    }
}

/// Length of chunk `index` (which must be `< leaf_count`) of an output of `output_len` bytes.
fn chunk_len_at(output_len: u64, chunk_size: NonZeroU32, leaf_count: u64, index: u64) -> u64 {
    let size = u64::from(chunk_size.get());
    if index + 1 < leaf_count {
        size
    } else {
        // (leaf_count − 1) · size < output_len for a non-empty output, and 0 for an empty one,
        // so neither the product nor the subtraction overflows.
        output_len - (leaf_count - 1) * size
    }
}

/// The chunk size as a `usize`. On targets where it does not fit, every possible slice is
/// shorter than one chunk, so `usize::MAX` chunks them the same way.
fn chunk_len_usize(chunk_size: NonZeroU32) -> usize {
    usize::try_from(chunk_size.get()).unwrap_or(usize::MAX)
}

/// A slice's length as a `u64` (`usize` is at most 64 bits on every target Rust supports).
fn len_u64(data: &[u8]) -> u64 {
    data.len() as u64
}

/// Builds a [`Commitment`] from an output fed in pieces of any size, holding at most one
/// partial chunk and one hash per tree level, never the output itself.
///
/// Completed subtrees sit on a stack of `(level, hash)`, where a level-`l` entry covers `2^l`
/// leaves. Each new leaf enters at level 0 and merges with the top while the levels are equal,
/// like carries in a binary counter. So after `n` leaves the stack holds one perfect subtree
/// per set bit of `n`, largest (leftmost) at the bottom. [`MerkleBuilder::finalize`] folds the
/// stack right to left, `node(s₀, node(s₁, … node(sₘ₋₁, sₘ)))`. That is the RFC 6962 shape:
/// for `n` not a power of two, the largest power of two `k < n` is the bottom entry's size,
/// so the left subtree is that perfect tree over the first `k` leaves and the right subtree is
/// the fold of the rest, which by the same argument is the RFC 6962 tree of the other `n − k`
/// leaves; for `n` a power of two the stack holds the single perfect tree.
#[derive(Clone, Debug)]
pub struct MerkleBuilder {
    chunk_size: NonZeroU32,
    /// Bytes of the current partial chunk, always shorter than one chunk.
    pending: Vec<u8>,
    /// Completed perfect subtrees, levels strictly decreasing from bottom to top.
    stack: Vec<(u32, [u8; 32])>,
    leaf_count: u64,
    output_len: u64,
}

impl MerkleBuilder {
    /// A builder for chunks of `chunk_size` bytes.
    pub fn new(chunk_size: NonZeroU32) -> Self {
        Self {
            chunk_size,
            pending: Vec::new(),
            stack: Vec::new(),
            leaf_count: 0,
            output_len: 0,
        }
    }

    /// A builder for chunks of `chunk_size` bytes, given as a plain integer.
    ///
    /// # Errors
    /// [`MerkleError::ZeroChunkSize`] if `chunk_size` is zero.
    pub fn try_new(chunk_size: u32) -> Result<Self, MerkleError> {
        NonZeroU32::new(chunk_size)
            .map(Self::new)
            .ok_or(MerkleError::ZeroChunkSize)
    }

    /// The chunk size this builder splits the output into.
    pub fn chunk_size(&self) -> NonZeroU32 {
        self.chunk_size
    }

    /// Bytes fed so far.
    pub fn output_len(&self) -> u64 {
        self.output_len
    }

    /// Feeds the next bytes of the output.
    pub fn update(&mut self, mut data: &[u8]) {
        self.output_len = self.output_len.saturating_add(len_u64(data));
        let chunk = chunk_len_usize(self.chunk_size);

        if !self.pending.is_empty() {
            // pending.len() < chunk always holds, so this does not underflow.
            let take = (chunk - self.pending.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            self.pending.extend_from_slice(head);
            data = rest;
            if self.pending.len() < chunk {
                // `data` is used up and the chunk is still partial.
                return;
            }
            let leaf = leaf_hash(&self.pending);
            self.push_leaf(leaf);
            self.pending.clear();
        }

        // Whole chunks are hashed straight from `data`, without copying.
        let mut chunks = data.chunks_exact(chunk);
        for whole in &mut chunks {
            self.push_leaf(leaf_hash(whole));
        }
        self.pending.extend_from_slice(chunks.remainder());
    }

    /// Finishes the tree: hashes the last partial chunk (or the single empty chunk of an empty
    /// output) and returns the commitment.
    pub fn finalize(mut self) -> Commitment {
        if !self.pending.is_empty() || self.leaf_count == 0 {
            let leaf = leaf_hash(&self.pending);
            self.push_leaf(leaf);
        }
        // Fold right to left; see the type's docs for why this is the RFC 6962 shape.
        let mut hashes = self.stack.iter().rev().map(|&(_, hash)| hash);
        // At least one leaf was pushed above, so the stack is not empty and the fallback is
        // never taken.
        let last = hashes.next().unwrap_or_else(|| leaf_hash(&[]));
        let tree_hash = hashes.fold(last, |right, left| node_hash(&left, &right));
        Commitment::from_tree_hash(tree_hash, self.output_len, self.chunk_size, self.leaf_count)
    }

    /// Adds a leaf, merging equal-level subtrees like a binary counter.
    fn push_leaf(&mut self, leaf: [u8; 32]) {
        let mut level = 0u32;
        let mut hash = leaf;
        while let Some(&(top_level, top_hash)) = self.stack.last() {
            if top_level != level {
                break;
            }
            self.stack.pop();
            hash = node_hash(&top_hash, &hash);
            level += 1;
        }
        self.stack.push((level, hash));
        self.leaf_count += 1;
    }
}

impl io::Write for MerkleBuilder {
    /// Feeds all of `buf`; never fails.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Commits to `data` in one thread, through [`MerkleBuilder`].
pub fn commit(data: &[u8], chunk_size: NonZeroU32) -> Commitment {
    let mut builder = MerkleBuilder::new(chunk_size);
    builder.update(data);
    builder.finalize()
}

/// Commits to `data`, hashing leaves (and wide tree levels) in parallel with rayon.
///
/// Gives exactly the same [`Commitment`] as [`commit`].
pub fn commit_parallel(data: &[u8], chunk_size: NonZeroU32) -> Commitment {
    let leaves = leaf_hashes(data, chunk_size);
    let leaf_count = len_u64_of(&leaves);
    let tree_hash = tree_hash_of(leaves);
    Commitment::from_tree_hash(tree_hash, len_u64(data), chunk_size, leaf_count)
}

/// A `Vec`'s length as a `u64` (`usize` is at most 64 bits on every target Rust supports).
fn len_u64_of<T>(items: &[T]) -> u64 {
    items.len() as u64
}

/// The leaf hashes of `data`, one per chunk (one empty leaf for an empty output), computed
/// in parallel: what a store keeps beside an output so that a chunk's proof needs only them
/// and the chunk ([`prove_from_leaves`]).
pub fn leaf_hashes(data: &[u8], chunk_size: NonZeroU32) -> Vec<[u8; 32]> {
    if data.is_empty() {
        return vec![leaf_hash(&[])];
    }
    data.par_chunks(chunk_len_usize(chunk_size))
        .map(leaf_hash)
        .collect()
}

/// Combines one level of the tree into the next: adjacent pairs become their parent node and
/// an unpaired last node moves up unchanged.
///
/// Doing this level by level yields the RFC 6962 shape: with `k` the largest power of two below
/// `n`, the first `k` nodes of every level pair only among themselves (`k` is a multiple of the
/// level's width) until they become the single left subtree, while the nodes after them form
/// the same level-by-level tree of the other `n − k` leaves, which by induction is their
/// RFC 6962 tree.
fn next_level(level: &[[u8; 32]]) -> Vec<[u8; 32]> {
    fn parent(pair: &[[u8; 32]]) -> [u8; 32] {
        match pair {
            [left, right] => node_hash(left, right),
            // `chunks(2)` yields one or two items, so this is the lone last node.
            _ => pair[0],
        }
    }
    if level.len() >= PAR_LEVEL_THRESHOLD {
        level.par_chunks(2).map(parent).collect()
    } else {
        level.chunks(2).map(parent).collect()
    }
}

/// The tree hash over `leaves` (at least one).
pub fn tree_hash_of(mut level: Vec<[u8; 32]>) -> [u8; 32] {
    while level.len() > 1 {
        level = next_level(&level);
    }
    // Callers always pass at least one leaf, so the fallback is never taken.
    level.first().copied().unwrap_or_else(|| leaf_hash(&[]))
}

/// An inclusion proof for one chunk: the RFC 6962 audit path, leaf to root.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Proof {
    /// Index of the chunk.
    pub leaf_index: u64,
    /// Leaves in the tree the proof was made for.
    pub leaf_count: u64,
    /// Sibling hashes from the leaf's level up to the root's children.
    pub siblings: Vec<[u8; 32]>,
}

/// Number of siblings in the audit path of leaf `index` in a tree of `leaf_count` leaves.
fn path_len(index: u64, leaf_count: u64) -> usize {
    let (mut index, mut width, mut len) = (index, leaf_count, 0usize);
    while width > 1 {
        if index ^ 1 < width {
            len += 1;
        }
        index /= 2;
        width = width.div_ceil(2);
    }
    len
}

/// Builds the inclusion proof of chunk `leaf_index` of `data`.
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`] if `leaf_index` is not below the leaf count.
pub fn prove(data: &[u8], chunk_size: NonZeroU32, leaf_index: u64) -> Result<Proof, MerkleError> {
    let leaf_count = Commitment::leaf_count_for(len_u64(data), chunk_size);
    if leaf_index >= leaf_count {
        return Err(MerkleError::IndexOutOfRange { index: leaf_index, leaf_count });
    }
    prove_from_leaves(leaf_hashes(data, chunk_size), leaf_index)
}

/// Builds the inclusion proof of leaf `leaf_index` from all the tree's leaf hashes
/// ([`leaf_hashes`]), without the output itself.
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`] if `leaf_index` is not below the number of leaves.
pub fn prove_from_leaves(mut level: Vec<[u8; 32]>, leaf_index: u64) -> Result<Proof, MerkleError> {
    let leaf_count = len_u64_of(&level);
    let out_of_range = MerkleError::IndexOutOfRange {
        index: leaf_index,
        leaf_count,
    };
    if leaf_index >= leaf_count {
        return Err(out_of_range);
    }
    let mut index = usize::try_from(leaf_index).map_err(|_| out_of_range)?;
    let mut siblings = Vec::with_capacity(path_len(leaf_index, leaf_count));
    while level.len() > 1 {
        // An even index at the end of an odd-width level has no sibling: it moves up unchanged.
        if let Some(sibling) = level.get(index ^ 1) {
            siblings.push(*sibling);
        }
        level = next_level(&level);
        index /= 2;
    }
    Ok(Proof {
        leaf_index,
        leaf_count,
        siblings,
    })
}

/// Recomputes the tree hash from a leaf hash and its audit path (RFC 9162 §2.1.3.2).
/// `None` if the path does not fit the index and leaf count.
fn tree_hash_from_path(
    leaf: [u8; 32],
    leaf_index: u64,
    leaf_count: u64,
    path: &[[u8; 32]],
) -> Option<[u8; 32]> {
    if leaf_index >= leaf_count {
        return None;
    }
    let mut fnode = leaf_index;
    let mut snode = leaf_count - 1;
    let mut hash = leaf;
    for sibling in path {
        if snode == 0 {
            return None;
        }
        if fnode & 1 == 1 || fnode == snode {
            hash = node_hash(sibling, &hash);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    (snode == 0).then_some(hash)
}

/// Checks that `chunk` is chunk `proof.leaf_index` of the output `commitment` commits to.
///
/// Only `commitment.root` is trusted as the commitment: `tree_hash` is recomputed from the
/// chunk and the proof, and the leaf count is rederived from `output_len` and `chunk_size`.
///
/// # Errors
/// - [`MerkleError::ZeroChunkSize`] if the commitment's chunk size is zero;
/// - [`MerkleError::InconsistentCommitment`] if its leaf count does not follow from its length
///   and chunk size;
/// - [`MerkleError::LeafCountMismatch`] if the proof is for another leaf count;
/// - [`MerkleError::IndexOutOfRange`] if the proof's index is not below the leaf count;
/// - [`MerkleError::WrongChunkLength`] if the chunk is not as long as the chunk at that index;
/// - [`MerkleError::WrongSiblingCount`] if the proof's path has the wrong length;
/// - [`MerkleError::RootMismatch`] if the recomputed root is not the committed one.
pub fn verify_chunk(
    commitment: &Commitment,
    chunk: &[u8],
    proof: &Proof,
) -> Result<(), MerkleError> {
    let chunk_size = NonZeroU32::new(commitment.chunk_size).ok_or(MerkleError::ZeroChunkSize)?;
    let leaf_count = Commitment::leaf_count_for(commitment.output_len, chunk_size);
    if commitment.leaf_count != leaf_count {
        return Err(MerkleError::InconsistentCommitment {
            claimed: commitment.leaf_count,
            expected: leaf_count,
            output_len: commitment.output_len,
            chunk_size: commitment.chunk_size,
        });
    }
    if proof.leaf_count != leaf_count {
        return Err(MerkleError::LeafCountMismatch {
            proof: proof.leaf_count,
            commitment: leaf_count,
        });
    }
    let index = proof.leaf_index;
    if index >= leaf_count {
        return Err(MerkleError::IndexOutOfRange { index, leaf_count });
    }
    let expected_len = chunk_len_at(commitment.output_len, chunk_size, leaf_count, index);
    if len_u64(chunk) != expected_len {
        return Err(MerkleError::WrongChunkLength {
            index,
            expected: expected_len,
            found: len_u64(chunk),
        });
    }
    let expected_siblings = path_len(index, leaf_count);
    let wrong_count = MerkleError::WrongSiblingCount {
        expected: expected_siblings,
        found: proof.siblings.len(),
    };
    if proof.siblings.len() != expected_siblings {
        return Err(wrong_count);
    }
    let tree_hash = tree_hash_from_path(leaf_hash(chunk), index, leaf_count, &proof.siblings)
        .ok_or(wrong_count)?;
    if root_hash(commitment.output_len, commitment.chunk_size, &tree_hash) != commitment.root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Chunk `index` of `data` split into chunks of `chunk_size`; `None` if there is no such chunk.
/// An empty output has one chunk, the empty slice, at index 0.
pub fn chunk_of(data: &[u8], chunk_size: NonZeroU32, index: u64) -> Option<&[u8]> {
    if data.is_empty() {
        return (index == 0).then_some(data);
    }
    let size = u64::from(chunk_size.get());
    let len = len_u64(data);
    let start = index.checked_mul(size)?;
    if start >= len {
        return None;
    }
    let end = start.saturating_add(size).min(len);
    // Both bounds are at most data.len(), so they fit in usize.
    let start = usize::try_from(start).ok()?;
    let end = usize::try_from(end).ok()?;
    data.get(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::sha256;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("non-zero chunk size")
    }

    /// Deterministic test output of `len` bytes.
    fn output(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i.wrapping_mul(31).wrapping_add(7) % 251) as u8).collect()
    }

    /// A leaf, hashed by explicit concatenation.
    fn leaf(chunk: &[u8]) -> [u8; 32] {
        let mut bytes = vec![0x00];
        bytes.extend_from_slice(chunk);
        sha256(&bytes)
    }

    /// A node, hashed by explicit concatenation.
    fn node(left: [u8; 32], right: [u8; 32]) -> [u8; 32] {
        let mut bytes = vec![0x01];
        bytes.extend_from_slice(&left);
        bytes.extend_from_slice(&right);
        sha256(&bytes)
    }

    /// The committed root, hashed by explicit concatenation.
    fn root(len: u64, chunk_size: u32, tree: [u8; 32]) -> [u8; 32] {
        let mut bytes = vec![0x02];
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&chunk_size.to_le_bytes());
        bytes.extend_from_slice(&tree);
        sha256(&bytes)
    }

    fn largest_power_of_two_below(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// RFC 6962 MTH, recursively, straight from the definition.
    fn reference_mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = largest_power_of_two_below(leaves.len());
        node(reference_mth(&leaves[..k]), reference_mth(&leaves[k..]))
    }

    /// RFC 6962 PATH, recursively, straight from the definition.
    fn reference_path(m: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
        if leaves.len() == 1 {
            return Vec::new();
        }
        let k = largest_power_of_two_below(leaves.len());
        if m < k {
            let mut path = reference_path(m, &leaves[..k]);
            path.push(reference_mth(&leaves[k..]));
            path
        } else {
            let mut path = reference_path(m - k, &leaves[k..]);
            path.push(reference_mth(&leaves[..k]));
            path
        }
    }

    fn reference_leaves(data: &[u8], chunk_size: usize) -> Vec<[u8; 32]> {
        if data.is_empty() {
            vec![leaf(&[])]
        } else {
            data.chunks(chunk_size).map(leaf).collect()
        }
    }

    /// Asserts that both commit paths agree with the reference for `data`.
    fn assert_commitment_matches_reference(data: &[u8], chunk_size: u32) -> Commitment {
        let c = commit(data, nz(chunk_size));
        assert_eq!(c, commit_parallel(data, nz(chunk_size)), "len {}", data.len());
        let leaves = reference_leaves(data, chunk_size as usize);
        assert_eq!(c.leaf_count, leaves.len() as u64);
        assert_eq!(c.leaf_count, Commitment::leaf_count_for(data.len() as u64, nz(chunk_size)));
        assert_eq!(c.tree_hash, reference_mth(&leaves));
        assert_eq!(c.output_len, data.len() as u64);
        assert_eq!(c.chunk_size, chunk_size);
        assert_eq!(c.root, root(data.len() as u64, chunk_size, c.tree_hash));
        c
    }

    #[test]
    fn constants() {
        assert_eq!(DEFAULT_CHUNK.get(), DEFAULT_CHUNK_SIZE);
        assert_eq!(DEFAULT_CHUNK_SIZE, 4096);
        assert_eq!((LEAF_TAG, NODE_TAG, ROOT_TAG), (0, 1, 2));
        assert_eq!(leaf_hash(b"abc"), leaf(b"abc"));
        assert_eq!(node_hash(&[1; 32], &[2; 32]), node([1; 32], [2; 32]));
        assert_eq!(root_hash(5, 7, &[3; 32]), root(5, 7, [3; 32]));
    }

    #[test]
    fn empty_output_is_one_empty_chunk() {
        for c in [commit(&[], DEFAULT_CHUNK), commit_parallel(&[], DEFAULT_CHUNK)] {
            assert_eq!(c.leaf_count, 1);
            assert_eq!(c.output_len, 0);
            assert_eq!(c.tree_hash, leaf(&[]));
            assert_eq!(c.root, root(0, DEFAULT_CHUNK_SIZE, leaf(&[])));
        }
        assert_eq!(Commitment::leaf_count_for(0, DEFAULT_CHUNK), 1);
    }

    #[test]
    fn hand_computed_tiny_trees() {
        let cs = 4u32;
        let data = output(20);
        let c: Vec<&[u8]> = data.chunks(4).collect();
        let l: Vec<[u8; 32]> = c.iter().map(|chunk| leaf(chunk)).collect();

        let expected = [
            (1, l[0]),
            (2, node(l[0], l[1])),
            (3, node(node(l[0], l[1]), l[2])),
            (5, node(node(node(l[0], l[1]), node(l[2], l[3])), l[4])),
        ];
        for (n, tree) in expected {
            let bytes = &data[..4 * n];
            for got in [commit(bytes, nz(cs)), commit_parallel(bytes, nz(cs))] {
                assert_eq!(got.tree_hash, tree, "{n} leaves");
                assert_eq!(got.leaf_count, n as u64);
                assert_eq!(got.root, root(4 * n as u64, cs, tree));
            }
        }

        // Three leaves, the last one short.
        let bytes = &data[..10];
        let tree = node(node(l[0], l[1]), leaf(&data[8..10]));
        assert_eq!(commit(bytes, nz(cs)).tree_hash, tree);
        assert_eq!(commit_parallel(bytes, nz(cs)).root, root(10, cs, tree));
    }

    #[test]
    fn matches_rfc6962_reference() {
        for n in 1..=40usize {
            assert_commitment_matches_reference(&output(n * 3), 3);
            assert_commitment_matches_reference(&output(n * 3 - 1), 3);
        }
    }

    #[test]
    fn parallel_equals_serial_for_many_sizes() {
        let cs = 64usize;
        for len in [0, 1, cs - 1, cs, cs + 1, 3 * cs, 7 * cs + 5, 1000 * cs, 1000 * cs + 17] {
            assert_commitment_matches_reference(&output(len), cs as u32);
        }
        for len in [0, 1, 4095, 4096, 4097, 3 * 4096, 7 * 4096 + 5] {
            assert_commitment_matches_reference(&output(len), DEFAULT_CHUNK_SIZE);
        }
        for len in [0, 1, 2, 3, 1025, 5000] {
            assert_commitment_matches_reference(&output(len), 1);
        }
    }

    #[test]
    fn builder_in_odd_pieces_equals_one_shot() {
        for cs in [1u32, 7, 64] {
            for len in [0usize, 1, 63, 64, 65, 1000, 64 * 33 + 3] {
                let data = output(len);
                let expected = commit_parallel(&data, nz(cs));

                // One byte at a time.
                let mut builder = MerkleBuilder::new(nz(cs));
                for byte in &data {
                    builder.update(std::slice::from_ref(byte));
                }
                assert_eq!(builder.output_len(), len as u64);
                assert_eq!(builder.finalize(), expected, "bytewise, cs {cs}, len {len}");

                // Random split points from an LCG, with empty pieces mixed in.
                let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ (len as u64) ^ u64::from(cs);
                let mut builder = MerkleBuilder::new(nz(cs));
                let mut rest = &data[..];
                while !rest.is_empty() {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let take = ((state >> 33) as usize % 150).min(rest.len());
                    let (piece, tail) = rest.split_at(take);
                    builder.update(piece);
                    rest = tail;
                }
                builder.update(&[]);
                assert_eq!(builder.finalize(), expected, "random split, cs {cs}, len {len}");
            }
        }
    }

    #[test]
    fn builder_as_io_write() {
        let data = output(10_000);
        let mut builder = MerkleBuilder::try_new(100).expect("non-zero");
        let copied = io::copy(&mut &data[..], &mut builder).expect("writing never fails");
        assert_eq!(copied, 10_000);
        assert_eq!(builder.chunk_size(), nz(100));
        assert_eq!(builder.finalize(), commit(&data, nz(100)));
    }

    #[test]
    fn zero_chunk_size_rejected() {
        assert_eq!(MerkleBuilder::try_new(0).err(), Some(MerkleError::ZeroChunkSize));
        let c = commit(&output(8), nz(4));
        let proof = prove(&output(8), nz(4), 0).expect("in range");
        let zero = Commitment { chunk_size: 0, ..c };
        assert_eq!(verify_chunk(&zero, &output(4), &proof), Err(MerkleError::ZeroChunkSize));
        assert_eq!(zero.chunk_len(0), None);
    }

    #[test]
    fn every_proof_verifies() {
        let cs = 8u32;
        for n in 1..=17u64 {
            // Full chunks for some n, a short last chunk for others.
            let len = (n - 1) * 8 + (8 - n % 3);
            let data = output(len as usize);
            let c = commit(&data, nz(cs));
            assert_eq!(c.leaf_count, n);
            let leaves = reference_leaves(&data, cs as usize);
            for index in 0..n {
                let proof = prove(&data, nz(cs), index).expect("index in range");
                assert_eq!(proof.leaf_index, index);
                assert_eq!(proof.leaf_count, n);
                assert_eq!(proof.siblings, reference_path(index as usize, &leaves));
                let chunk = chunk_of(&data, nz(cs), index).expect("chunk exists");
                assert_eq!(Some(chunk.len() as u64), c.chunk_len(index));
                assert_eq!(verify_chunk(&c, chunk, &proof), Ok(()), "n {n}, index {index}");

                let decoded = Proof::decode(&mut &proof.encode()[..]).expect("proof decodes");
                assert_eq!(decoded, proof);
            }
            assert_eq!(
                prove(&data, nz(cs), n),
                Err(MerkleError::IndexOutOfRange { index: n, leaf_count: n })
            );
            assert_eq!(chunk_of(&data, nz(cs), n), None);
            assert_eq!(c.chunk_len(n), None);
        }
    }

    #[test]
    fn proofs_in_a_large_tree() {
        let data = output(1000 * 64 + 9);
        let c = commit_parallel(&data, nz(64));
        assert_eq!(c.leaf_count, 1001);
        for index in [0, 1, 511, 512, 999, 1000] {
            let proof = prove(&data, nz(64), index).expect("index in range");
            let chunk = chunk_of(&data, nz(64), index).expect("chunk exists");
            assert_eq!(verify_chunk(&c, chunk, &proof), Ok(()), "index {index}");
        }
    }

    #[test]
    fn empty_output_proof() {
        let c = commit(&[], DEFAULT_CHUNK);
        let proof = prove(&[], DEFAULT_CHUNK, 0).expect("the empty chunk exists");
        assert!(proof.siblings.is_empty());
        assert_eq!(chunk_of(&[], DEFAULT_CHUNK, 0), Some(&[][..]));
        assert_eq!(chunk_of(&[], DEFAULT_CHUNK, 1), None);
        assert_eq!(verify_chunk(&c, &[], &proof), Ok(()));
        assert_eq!(
            verify_chunk(&c, &[0], &proof),
            Err(MerkleError::WrongChunkLength { index: 0, expected: 0, found: 1 })
        );
    }

    #[test]
    fn chunk_of_edges() {
        let data = output(10);
        assert_eq!(chunk_of(&data, nz(4), 0), Some(&data[0..4]));
        assert_eq!(chunk_of(&data, nz(4), 2), Some(&data[8..10]));
        assert_eq!(chunk_of(&data, nz(4), 3), None);
        assert_eq!(chunk_of(&data, nz(4), u64::MAX), None);
        assert_eq!(chunk_of(&data, nz(u32::MAX), 0), Some(&data[..]));
        assert_eq!(chunk_of(&data, nz(u32::MAX), 1), None);
    }

    #[test]
    fn tampering_fails_with_specific_errors() {
        let cs = nz(8);
        let data = output(7 * 8 - 3); // 7 leaves, the last one 5 bytes
        let c = commit(&data, cs);
        let index = 2;
        let proof = prove(&data, cs, index).expect("in range");
        let chunk = chunk_of(&data, cs, index).expect("exists").to_vec();
        assert_eq!(verify_chunk(&c, &chunk, &proof), Ok(()));

        // Tampered chunk.
        let mut bad_chunk = chunk.clone();
        bad_chunk[0] ^= 1;
        assert_eq!(verify_chunk(&c, &bad_chunk, &proof), Err(MerkleError::RootMismatch));

        // Tampered sibling, each one in turn.
        for i in 0..proof.siblings.len() {
            let mut bad = proof.clone();
            bad.siblings[i][31] ^= 1;
            assert_eq!(verify_chunk(&c, &chunk, &bad), Err(MerkleError::RootMismatch));
        }

        // Tampered index: in range (same chunk length) and out of range.
        let moved = Proof { leaf_index: 3, ..proof.clone() };
        assert_eq!(verify_chunk(&c, &chunk, &moved), Err(MerkleError::RootMismatch));
        let beyond = Proof { leaf_index: 7, ..proof.clone() };
        assert_eq!(
            verify_chunk(&c, &chunk, &beyond),
            Err(MerkleError::IndexOutOfRange { index: 7, leaf_count: 7 })
        );

        // Wrong chunk lengths: truncated, padded, and a full chunk where the short last one is.
        assert_eq!(
            verify_chunk(&c, &chunk[..7], &proof),
            Err(MerkleError::WrongChunkLength { index: 2, expected: 8, found: 7 })
        );
        let mut padded = chunk.clone();
        padded.push(0);
        assert_eq!(
            verify_chunk(&c, &padded, &proof),
            Err(MerkleError::WrongChunkLength { index: 2, expected: 8, found: 9 })
        );
        let last = prove(&data, cs, 6).expect("in range");
        assert_eq!(
            verify_chunk(&c, &chunk, &last),
            Err(MerkleError::WrongChunkLength { index: 6, expected: 5, found: 8 })
        );

        // Leaf count mismatch.
        let recounted = Proof { leaf_count: 8, ..proof.clone() };
        assert_eq!(
            verify_chunk(&c, &chunk, &recounted),
            Err(MerkleError::LeafCountMismatch { proof: 8, commitment: 7 })
        );

        // Wrong number of siblings: one missing, one extra.
        let mut short = proof.clone();
        short.siblings.pop();
        assert_eq!(
            verify_chunk(&c, &chunk, &short),
            Err(MerkleError::WrongSiblingCount { expected: 3, found: 2 })
        );
        let mut long = proof.clone();
        long.siblings.push([0; 32]);
        assert_eq!(
            verify_chunk(&c, &chunk, &long),
            Err(MerkleError::WrongSiblingCount { expected: 3, found: 4 })
        );

        // A commitment whose leaf count does not follow from its length.
        let inconsistent = Commitment { leaf_count: 6, ..c };
        assert_eq!(
            verify_chunk(&inconsistent, &chunk, &proof),
            Err(MerkleError::InconsistentCommitment {
                claimed: 6,
                expected: 7,
                output_len: 53,
                chunk_size: 8,
            })
        );

        // A commitment to other data, or with a forged tree hash, does not accept the proof.
        let mut other_data = data.clone();
        other_data[50] ^= 1;
        let other = commit(&other_data, cs);
        assert_eq!(verify_chunk(&other, &chunk, &proof), Err(MerkleError::RootMismatch));
        let forged_root = Commitment { root: [0; 32], ..c };
        assert_eq!(verify_chunk(&forged_root, &chunk, &proof), Err(MerkleError::RootMismatch));
        // A claimed output length one byte longer (same leaf count) moves the root too.
        let longer = Commitment { output_len: 54, ..c };
        assert_eq!(verify_chunk(&longer, &chunk, &proof), Err(MerkleError::RootMismatch));

        // Every error renders a message.
        assert!(!MerkleError::RootMismatch.to_string().is_empty());
    }

    #[test]
    fn root_binds_length_and_chunk_size() {
        let data = output(64);
        let c = commit(&data, nz(16));

        // A trailing zero byte changes the root.
        let mut longer = data.clone();
        longer.push(0);
        assert_ne!(commit(&longer, nz(16)).root, c.root);
        // The length is bound even for the same tree hash.
        assert_ne!(root_hash(65, 16, &c.tree_hash), c.root);

        // The same single chunk under two chunk sizes: same tree hash, different roots.
        let small = output(8);
        let a = commit(&small, nz(8));
        let b = commit(&small, nz(16));
        assert_eq!(a.tree_hash, b.tree_hash);
        assert_eq!(a.leaf_count, b.leaf_count);
        assert_ne!(a.root, b.root);

        // A different chunking of the same data changes the root.
        assert_ne!(commit(&data, nz(32)).root, c.root);

        // Commitments round-trip through SCALE.
        assert_eq!(Commitment::decode(&mut &c.encode()[..]).expect("decodes"), c);
    }
}
