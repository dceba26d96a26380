//! Poseidon2 over BabyBear on the GPU (`poseidon2-hash`, `poseidon2-merkle`): batched width-16
//! permutations, leaf hashing, and whole Merkle trees whose every digest (and so the root)
//! equals Plonky3's `MerkleTreeMmcs`.
//!
//! # The construction (Plonky3 0.8.0, checked by the tests)
//!
//! - **Permutation**: `Poseidon2BabyBear<16>` as built by `default_babybear_poseidon2_16()`:
//!   S-box `x^7`; an initial external linear layer, 4 external rounds, 13 internal rounds,
//!   4 external rounds, with the round constants `BABYBEAR_POSEIDON2_RC_16_*`. External layer:
//!   the 4×4 matrix `MDSMat4` `[[2,3,1,1],[1,2,3,1],[1,1,2,3],[3,1,1,2]]` on each chunk of
//!   four, then every element plus the sum of the elements at its position in all chunks.
//!   Internal layer: `1 + Diag(V)`, `V = [−2, 1, 2, 1/2, 3, 4, −1/2, −3, −4, 1/2^8, 1/4, 1/8,
//!   1/2^27, −1/2^8, −1/16, −1/2^27]`. The constants are literals of [`WGSL`] (Montgomery form),
//!   each checked against `p3-baby-bear` by a test.
//! - **Leaf hash**: `PaddingFreeSponge<Perm, 16, 8, 8>`: from the all-zero state, each chunk of
//!   8 elements of the leaf (the last may be shorter) overwrites the first state elements,
//!   then the state is permuted; the digest is the first 8 elements.
//! - **Compression**: `TruncatedPermutation<Perm, 2, 8, 16>`: the state is the left digest then
//!   the right digest; the parent is the first 8 elements of its permutation.
//! - **Tree**: `MerkleTreeMmcs<_, _, that hash, that compression, 2, 8>` committing **one**
//!   matrix whose rows are the leaves: layer 0 is the digest of each row, each next layer
//!   compresses consecutive pairs, the last layer is the root (`cap_height` 0). The number of
//!   leaves must be a power of two (Plonky3 pads other heights with zero digests; this kernel
//!   does not need to).
//!
//! # Data layout
//!
//! Input (binding 0): a row-major matrix of canonical field elements, little-endian `u32`, row
//! `i` = state / leaf `i` (`width` elements; 16 for permutations). Output (binding 1), all
//! canonical little-endian `u32`:
//! - [`Poseidon2Mode::Permute`]: the permuted states, `count × 16`;
//! - [`Poseidon2Mode::HashLeaves`]: the leaf digests, `count × 8`;
//! - [`Poseidon2Mode::MerkleTree`]: every layer from the leaf digests up, `(2·count − 1) × 8`:
//!   digests `0..count` are layer 0, the next `count/2` layer 1, …, the last digest is the
//!   root ([`root`], [`layers`]).
//!
//! # Kernel and passes
//!
//! One thread per state, leaf or node (workgroup 64). `permute` permutes the rows, `main`
//! hashes them; the tree then runs one `compress` pass per level (a format version 2 job with `log2(count)`
//! passes, each with its own parameter block: node count and digest offsets). The permutation
//! is written out round by round (no loops); the only loop is over a leaf's chunks (at most
//! [`MAX_LEAF_WIDTH`] / 8 = 512 iterations).
//!
//! Bindings (group 0): 0 = input rows, 1 = output, 2 = parameters (uniform, 32 bytes: mode,
//! count, width, 0, then the pass's thread count, width, source and destination digest).
//!
//! Work units: permutations / 1024 (at least 1), like 1024 SHA-256 messages.

use p3_baby_bear::{default_babybear_poseidon2_16, BabyBear, Poseidon2BabyBear};
use p3_commit::Mmcs;
use p3_field::Field;
use p3_matrix::dense::RowMajorMatrix;
use p3_merkle_tree::MerkleTreeMmcs;
use p3_symmetric::{CryptographicHasher, PaddingFreeSponge, Permutation, TruncatedPermutation};
use rayon::prelude::*;
use std::sync::Arc;

use super::babybear::{self, from_p3, to_p3, InputError};
use super::{
    dispatch_2d, uniform_block, words_to_bytes, work_units, Kernel, Prepared, PreparedPass,
    Workload,
};
use crate::spec::SpecLimits;

/// The Poseidon2 kernel module: BabyBear arithmetic plus the Poseidon2 entry points.
pub const WGSL: &str = concat!(
    include_str!("wgsl/babybear.wgsl"),
    include_str!("wgsl/poseidon2_babybear.wgsl")
);

/// The Poseidon2 kernel hashing leaves (entry point `main`, first pass of the leaf hashes and
/// the tree).
pub const KERNEL: Kernel = Kernel {
    name: "poseidon2-babybear",
    wgsl: WGSL,
    entry_point: "main",
};

/// The Poseidon2 kernel permuting states (entry point `permute`).
pub const PERMUTE_KERNEL: Kernel = Kernel {
    name: "poseidon2-babybear-permute",
    wgsl: WGSL,
    entry_point: "permute",
};

/// Entry point of the tree levels.
pub const ENTRY_COMPRESS: &str = "compress";

/// Binding of the input rows.
pub const BINDING_INPUT: u32 = 0;
/// Binding of the output.
pub const BINDING_OUTPUT: u32 = 1;
/// Binding of the parameters.
pub const BINDING_PARAMS: u32 = 2;

/// Most states or leaves in one job.
pub const MAX_LEAVES: u32 = 1 << 24;
/// Most field elements per leaf.
pub const MAX_LEAF_WIDTH: u32 = 4096;
/// Leaf width of [`super::by_name`]'s jobs (one permutation per leaf).
pub const DEFAULT_LEAF_WIDTH: u32 = 8;
/// Elements of a digest.
pub const DIGEST_ELEMS: usize = 8;
/// Elements of the permutation's state.
pub const WIDTH: u32 = 16;

/// Threads per workgroup.
const WORKGROUP_SIZE: u64 = 64;

/// Plonky3's permutation.
pub type Perm = Poseidon2BabyBear<16>;
/// Plonky3's leaf hash.
pub type LeafHash = PaddingFreeSponge<Perm, 16, 8, 8>;
/// Plonky3's 2-to-1 compression.
pub type Compress = TruncatedPermutation<Perm, 2, 8, 16>;
/// Plonky3's Merkle tree commitment of this construction.
pub type Poseidon2Mmcs = MerkleTreeMmcs<
    <BabyBear as Field>::Packing,
    <BabyBear as Field>::Packing,
    LeafHash,
    Compress,
    2,
    8,
>;

/// What a Poseidon2 job computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Poseidon2Mode {
    /// Permute each row of 16 elements.
    Permute,
    /// Hash each row (leaf) to an 8-element digest.
    HashLeaves,
    /// Build the whole Merkle tree of the rows (a power of two of them).
    MerkleTree,
}

impl Poseidon2Mode {
    fn code(self) -> u32 {
        match self {
            Poseidon2Mode::Permute => 0,
            Poseidon2Mode::HashLeaves => 1,
            Poseidon2Mode::MerkleTree => 2,
        }
    }

    fn from_code(code: u32) -> Result<Self, InputError> {
        match code {
            0 => Ok(Poseidon2Mode::Permute),
            1 => Ok(Poseidon2Mode::HashLeaves),
            2 => Ok(Poseidon2Mode::MerkleTree),
            _ => Err(InputError::JobMismatch("mode code")),
        }
    }
}

/// Checks a Poseidon2 job's parameters: count in 1..=[`MAX_LEAVES`] (a power of two for a
/// tree), width in 1..=[`MAX_LEAF_WIDTH`] (16 for permutations), buffers within the default
/// [`SpecLimits`].
///
/// # Errors
/// [`InputError::Count`], [`InputError::LeafWidth`], [`InputError::TooLarge`].
pub fn validate_params(mode: Poseidon2Mode, count: u32, width: u32) -> Result<(), InputError> {
    let power_of_two = mode == Poseidon2Mode::MerkleTree;
    if !(1..=MAX_LEAVES).contains(&count) || (power_of_two && !count.is_power_of_two()) {
        return Err(InputError::Count {
            count,
            max: MAX_LEAVES,
            power_of_two,
        });
    }
    if !(1..=MAX_LEAF_WIDTH).contains(&width) || (mode == Poseidon2Mode::Permute && width != WIDTH)
    {
        return Err(InputError::LeafWidth {
            width,
            max: MAX_LEAF_WIDTH,
        });
    }
    let limits = SpecLimits::default();
    let (input, output) = (input_len(count, width), output_len(mode, count));
    for (what, bytes) in [("input rows", input), ("output", output)] {
        if bytes > limits.max_buffer_bytes {
            return Err(InputError::TooLarge {
                what,
                bytes,
                max: limits.max_buffer_bytes,
            });
        }
    }
    let total = input + output + 32 * 64;
    if total > limits.max_total_bytes {
        return Err(InputError::TooLarge {
            what: "buffers in total",
            bytes: total,
            max: limits.max_total_bytes,
        });
    }
    Ok(())
}

/// Checks a Poseidon2 job's parameters and input before signing: [`validate_params`], the
/// input length, and every element canonical (`< p`).
///
/// # Errors
/// [`validate_params`]'s errors, [`InputError::InputLength`], [`InputError::Unaligned`],
/// [`InputError::NotCanonical`].
pub fn validate_input(
    mode: Poseidon2Mode,
    count: u32,
    width: u32,
    input: &[u8],
) -> Result<(), InputError> {
    validate_params(mode, count, width)?;
    let expected = input_len(count, width);
    if input.len() as u64 != expected {
        return Err(InputError::InputLength {
            expected,
            found: input.len() as u64,
        });
    }
    babybear::decode_elements(input).map(|_| ())
}

/// Input bytes: `count · width · 4`.
pub fn input_len(count: u32, width: u32) -> u64 {
    u64::from(count) * u64::from(width) * 4
}

/// Output bytes of a job (see the module docs' layout).
pub fn output_len(mode: Poseidon2Mode, count: u32) -> u64 {
    let words = match mode {
        Poseidon2Mode::Permute => u64::from(count) * u64::from(WIDTH),
        Poseidon2Mode::HashLeaves => u64::from(count) * DIGEST_ELEMS as u64,
        Poseidon2Mode::MerkleTree => (2 * u64::from(count) - 1) * DIGEST_ELEMS as u64,
    };
    words * 4
}

/// The output's elements (canonical), checked for length and range.
///
/// # Errors
/// [`InputError::InputLength`] for a wrong length, [`babybear::decode_elements`]'s errors.
pub fn decode_output(
    mode: Poseidon2Mode,
    count: u32,
    output: &[u8],
) -> Result<Vec<u32>, InputError> {
    let expected = output_len(mode, count);
    if output.len() as u64 != expected {
        return Err(InputError::InputLength {
            expected,
            found: output.len() as u64,
        });
    }
    babybear::decode_elements(output)
}

/// The digest layers of a decoded [`Poseidon2Mode::MerkleTree`] output, leaves first, each a
/// list of 8-element digests; `None` unless `elements` is a whole tree of a power of two of
/// leaves.
pub fn layers(elements: &[u32]) -> Option<Vec<Vec<[u32; DIGEST_ELEMS]>>> {
    let digests = elements.len() / DIGEST_ELEMS;
    if elements.len() % DIGEST_ELEMS != 0 || digests == 0 || !(digests + 1).is_power_of_two() {
        return None;
    }
    let mut out = Vec::new();
    let (mut start, mut len) = (0, digests.div_ceil(2));
    while len >= 1 {
        let layer = (start..start + len)
            .map(|d| {
                elements[d * DIGEST_ELEMS..(d + 1) * DIGEST_ELEMS]
                    .try_into()
                    .expect("8 elements")
            })
            .collect();
        out.push(layer);
        start += len;
        if len == 1 {
            break;
        }
        len /= 2;
    }
    Some(out)
}

/// The root (last digest) of a decoded [`Poseidon2Mode::MerkleTree`] output.
pub fn root(elements: &[u32]) -> Option<[u32; DIGEST_ELEMS]> {
    layers(elements).and_then(|l| l.last().map(|layer| layer[0]))
}

/// Where a job's input elements come from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Data {
    Seeded(u64),
    Given(Arc<Vec<u32>>),
}

/// A Poseidon2 job: mode, validated sizes and input (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poseidon2Job {
    mode: Poseidon2Mode,
    count: u32,
    width: u32,
    data: Data,
}

impl Poseidon2Job {
    /// A job of `count` rows of `width` pseudo-random canonical elements from `seed`.
    ///
    /// # Errors
    /// [`validate_params`]'s errors.
    pub fn seeded(
        mode: Poseidon2Mode,
        count: u32,
        width: u32,
        seed: u64,
    ) -> Result<Self, InputError> {
        validate_params(mode, count, width)?;
        Ok(Self {
            mode,
            count,
            width,
            data: Data::Seeded(seed),
        })
    }

    /// A job on caller-provided input bytes (`count` rows of `width` little-endian canonical
    /// `u32`s).
    ///
    /// # Errors
    /// [`validate_input`]'s errors.
    pub fn from_bytes(
        mode: Poseidon2Mode,
        count: u32,
        width: u32,
        input: &[u8],
    ) -> Result<Self, InputError> {
        validate_input(mode, count, width, input)?;
        let words = babybear::decode_elements(input)?;
        Ok(Self {
            mode,
            count,
            width,
            data: Data::Given(Arc::new(words)),
        })
    }

    /// A job on caller-provided canonical elements (row-major).
    ///
    /// # Errors
    /// As [`Poseidon2Job::from_bytes`].
    pub fn from_elements(
        mode: Poseidon2Mode,
        count: u32,
        width: u32,
        input: Vec<u32>,
    ) -> Result<Self, InputError> {
        validate_params(mode, count, width)?;
        let expected = input_len(count, width);
        if input.len() as u64 * 4 != expected {
            return Err(InputError::InputLength {
                expected,
                found: input.len() as u64 * 4,
            });
        }
        babybear::check_canonical(&input)?;
        Ok(Self {
            mode,
            count,
            width,
            data: Data::Given(Arc::new(input)),
        })
    }

    /// The mode.
    pub fn mode(&self) -> Poseidon2Mode {
        self.mode
    }

    /// Rows (states or leaves).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Elements per row.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// The input elements (row-major, canonical).
    pub fn input_elements(&self) -> Vec<u32> {
        match &self.data {
            Data::Seeded(seed) => {
                babybear::random_elements(*seed, (input_len(self.count, self.width) / 4) as usize)
            }
            Data::Given(words) => words.as_ref().clone(),
        }
    }

    /// Permutations the job computes.
    pub fn permutations(&self) -> u64 {
        permutations(self.mode, self.count, self.width)
    }
}

fn permutations(mode: Poseidon2Mode, count: u32, width: u32) -> u64 {
    let per_leaf = u64::from(width.div_ceil(8));
    match mode {
        Poseidon2Mode::Permute => u64::from(count),
        Poseidon2Mode::HashLeaves => u64::from(count) * per_leaf,
        Poseidon2Mode::MerkleTree => u64::from(count) * per_leaf + u64::from(count) - 1,
    }
}

/// The parameter block of one pass.
fn param_block(
    mode: Poseidon2Mode,
    count: u32,
    width: u32,
    threads: u32,
    src_digest: u32,
    dst_digest: u32,
) -> Vec<u8> {
    uniform_block(&[
        mode.code(),
        count,
        width,
        0,
        threads,
        width,
        src_digest,
        dst_digest,
    ])
}

fn dispatch(threads: u32) -> [u32; 3] {
    dispatch_2d(u64::from(threads).div_ceil(WORKGROUP_SIZE)).expect("at most 2^24 threads")
}

/// The job for the parameters and input (validated by the caller).
fn prepare(mode: Poseidon2Mode, count: u32, width: u32, input: &[u32]) -> Prepared {
    let mut passes = Vec::new();
    if mode == Poseidon2Mode::MerkleTree {
        // Level l has count >> l nodes at digest offset 2·count − 2·(count >> l).
        let mut src = 0;
        let mut len = count;
        while len > 1 {
            let parents = len / 2;
            let dst = src + len;
            passes.push(PreparedPass {
                entry_point: ENTRY_COMPRESS,
                workgroups: dispatch(parents),
                uniform: Some(param_block(mode, count, width, parents, src, dst)),
            });
            src = dst;
            len = parents;
        }
    }
    Prepared {
        kernel: if mode == Poseidon2Mode::Permute {
            PERMUTE_KERNEL
        } else {
            KERNEL
        },
        workgroups: dispatch(count),
        inputs: vec![(BINDING_INPUT, words_to_bytes(input))],
        uniform: Some((BINDING_PARAMS, param_block(mode, count, width, count, 0, 0))),
        output: (BINDING_OUTPUT, output_len(mode, count)),
        work_units: work_units(u128::from(permutations(mode, count, width)) << 10),
        passes,
    }
}

/// The expected output of a job (canonical elements), computed by Plonky3: its default
/// permutation, `PaddingFreeSponge` leaf hash, and `MerkleTreeMmcs` tree (every layer, read
/// through `MerkleTree::cap`, root last).
pub fn cpu_poseidon2(mode: Poseidon2Mode, count: u32, width: u32, input: &[u32]) -> Vec<u32> {
    let perm = default_babybear_poseidon2_16();
    let rows = to_p3(input);
    let width = width as usize;
    match mode {
        Poseidon2Mode::Permute => {
            let mut states = rows;
            states.par_chunks_mut(16).for_each(|s| {
                let s: &mut [BabyBear; 16] = s.try_into().expect("16 elements");
                perm.permute_mut(s);
            });
            from_p3(&states)
        }
        Poseidon2Mode::HashLeaves => {
            let hash = LeafHash::new(perm);
            let digests: Vec<BabyBear> = rows
                .par_chunks(width)
                .flat_map_iter(|leaf| hash.hash_slice(leaf))
                .collect();
            from_p3(&digests)
        }
        Poseidon2Mode::MerkleTree => {
            let mmcs = Poseidon2Mmcs::new(LeafHash::new(perm.clone()), Compress::new(perm), 0);
            let (cap, tree) = mmcs.commit_matrix(RowMajorMatrix::new(rows, width));
            let layers = tree.num_layers();
            debug_assert_eq!(layers as u32, count.trailing_zeros() + 1);
            let mut out = Vec::with_capacity(output_len(mode, count) as usize / 4);
            // cap(h) is the layer h levels below the root: leaves first means h from the top.
            for h in (0..layers).rev() {
                for digest in tree.cap(h).roots() {
                    out.extend(from_p3(digest));
                }
            }
            debug_assert_eq!(&out[out.len() - DIGEST_ELEMS..], from_p3(&cap.roots()[0]));
            out
        }
    }
}

impl Workload for Poseidon2Job {
    fn name(&self) -> &'static str {
        match self.mode {
            // Permutations are the leaf pass without the sponge; they go by the hash's name.
            Poseidon2Mode::Permute | Poseidon2Mode::HashLeaves => "poseidon2-hash",
            Poseidon2Mode::MerkleTree => "poseidon2-merkle",
        }
    }

    fn prepare(&self) -> Prepared {
        prepare(self.mode, self.count, self.width, &self.input_elements())
    }

    fn cpu_reference(&self, prepared: &Prepared) -> Vec<u8> {
        let w = prepared.uniform_words();
        let mode = Poseidon2Mode::from_code(w[0]).expect("poseidon2: mode");
        let input = babybear::decode_elements(
            prepared
                .input(BINDING_INPUT)
                .expect("poseidon2: input rows"),
        )
        .expect("poseidon2: canonical input");
        words_to_bytes(&cpu_poseidon2(mode, w[1], w[2], &input))
    }

    fn validate(&self, prepared: &Prepared) -> Result<(), InputError> {
        let w = prepared.uniform_words();
        if w.len() != 8 {
            return Err(InputError::JobMismatch("parameter block"));
        }
        let (mode, count, width) = (Poseidon2Mode::from_code(w[0])?, w[1], w[2]);
        let input = prepared
            .input(BINDING_INPUT)
            .ok_or(InputError::JobMismatch("no input rows"))?;
        validate_input(mode, count, width, input)?;
        let expected = prepare(mode, count, width, &[]);
        if prepared.kernel != expected.kernel || prepared.inputs.len() != 1 {
            return Err(InputError::JobMismatch("kernel"));
        }
        babybear::same_dispatch(prepared, &expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p3_baby_bear::{
        BABYBEAR_POSEIDON2_RC_16_EXTERNAL_FINAL, BABYBEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
        BABYBEAR_POSEIDON2_RC_16_INTERNAL,
    };
    use p3_field::{PrimeCharacteristicRing, PrimeField32};

    /// The `0x…u` literals of the WGSL between `from` and the next `to`.
    fn literals(from: &str, to: &str) -> Vec<u32> {
        let start = WGSL.find(from).expect("marker") + from.len();
        let body = &WGSL[start..];
        let body = &body[..body.find(to).expect("end marker")];
        body.split(|c: char| !c.is_ascii_hexdigit() && c != 'x')
            .filter_map(|t| t.strip_prefix("0x"))
            .map(|h| u32::from_str_radix(h, 16).expect("hex literal"))
            .collect()
    }

    fn mont(x: BabyBear) -> u32 {
        babybear::to_mont(x.as_canonical_u32())
    }

    #[test]
    fn wgsl_constants_are_plonky3s() {
        // Round constants, in round order.
        let rc = literals("fn bb_poseidon2_permute(", "\n}\n");
        let mut want = Vec::new();
        want.extend(
            BABYBEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL
                .iter()
                .flatten()
                .map(|&c| mont(c)),
        );
        want.extend(BABYBEAR_POSEIDON2_RC_16_INTERNAL.iter().map(|&c| mont(c)));
        want.extend(
            BABYBEAR_POSEIDON2_RC_16_EXTERNAL_FINAL
                .iter()
                .flatten()
                .map(|&c| mont(c)),
        );
        assert_eq!(rc.len(), 4 * 16 + 13 + 4 * 16);
        assert_eq!(rc, want);
        // The internal diagonal: V_i = (internal layer of e_i) - (sum of e_i) = layer(e_i)_i - 1.
        let diag = literals("const P2_DIAG0 =", "\n\n");
        assert_eq!(diag.len(), 16);
        let half = BabyBear::ONE.halve();
        let inv2k = |k: u32| BabyBear::ONE.div_2exp_u64(u64::from(k));
        let v = [
            -BabyBear::TWO,
            BabyBear::ONE,
            BabyBear::TWO,
            half,
            BabyBear::from_u32(3),
            BabyBear::from_u32(4),
            -half,
            -BabyBear::from_u32(3),
            -BabyBear::from_u32(4),
            inv2k(8),
            inv2k(2),
            inv2k(3),
            inv2k(27),
            -inv2k(8),
            -inv2k(4),
            -inv2k(27),
        ];
        assert_eq!(diag, v.iter().map(|&x| mont(x)).collect::<Vec<_>>());
        // Check V against Plonky3's internal layer itself: on a unit vector e_i the layer gives
        // 1 everywhere (the sum) plus V_i at i.
        use p3_baby_bear::BabyBearInternalLayerParameters;
        use p3_monty_31::InternalLayerBaseParameters;
        for (i, vi) in v.iter().enumerate() {
            let mut e = [BabyBear::ZERO; 16];
            e[i] = BabyBear::ONE;
            <BabyBearInternalLayerParameters as InternalLayerBaseParameters<_, 16>>::generic_internal_linear_layer(&mut e);
            for (j, x) in e.iter().enumerate() {
                let want = if i == j {
                    BabyBear::ONE + *vi
                } else {
                    BabyBear::ONE
                };
                assert_eq!(*x, want, "V[{i}] at {j}");
            }
        }
        // R^2 mod p in the shared arithmetic.
        assert_eq!(
            literals("const BB_R2: u32 = ", ";"),
            vec![babybear::R2_MOD_P]
        );
    }

    #[test]
    fn plonky3_known_answer() {
        // Plonky3 0.8.0's own test vector (test_default_babybear_poseidon2_width_16).
        let input = [
            894848333u32,
            1437655012,
            1200606629,
            1690012884,
            71131202,
            1749206695,
            1717947831,
            120589055,
            19776022,
            42382981,
            1831865506,
            724844064,
            171220207,
            1299207443,
            227047920,
            1783754913,
        ];
        let expected = [
            516096821u32,
            90309867,
            1101817252,
            1660784290,
            360715097,
            1789519026,
            1788910906,
            563338433,
            319524748,
            1741414159,
            1650859320,
            894311162,
            1121347488,
            1692793758,
            1052633829,
            1344246938,
        ];
        assert_eq!(
            cpu_poseidon2(Poseidon2Mode::Permute, 1, 16, &input),
            expected
        );
    }

    #[test]
    fn layers_and_root_of_a_tree() {
        let job = Poseidon2Job::seeded(Poseidon2Mode::MerkleTree, 8, 8, 3).unwrap();
        let out = cpu_poseidon2(Poseidon2Mode::MerkleTree, 8, 8, &job.input_elements());
        assert_eq!(out.len(), 15 * 8);
        let l = layers(&out).unwrap();
        assert_eq!(l.iter().map(Vec::len).collect::<Vec<_>>(), vec![8, 4, 2, 1]);
        // Each parent is Plonky3's compression of its children; each leaf digest its hash.
        let perm = default_babybear_poseidon2_16();
        let compress = Compress::new(perm.clone());
        use p3_symmetric::PseudoCompressionFunction;
        for level in 1..l.len() {
            for (i, parent) in l[level].iter().enumerate() {
                let kids = [l[level - 1][2 * i], l[level - 1][2 * i + 1]]
                    .map(|d| <[BabyBear; 8]>::try_from(to_p3(&d)).unwrap());
                assert_eq!(from_p3(&compress.compress(kids)), parent.to_vec());
            }
        }
        let hash = LeafHash::new(perm);
        let rows = to_p3(&job.input_elements());
        assert_eq!(from_p3(&hash.hash_slice(&rows[..8])), l[0][0].to_vec());
        assert_eq!(root(&out), Some(l[3][0]));
        assert_eq!(layers(&out[..8]).map(|l| l.len()), Some(1));
        assert!(layers(&out[..16]).is_none());
        assert!(layers(&[]).is_none());
    }

    #[test]
    fn validation() {
        use Poseidon2Mode::*;
        assert_eq!(
            validate_params(MerkleTree, 6, 8),
            Err(InputError::Count {
                count: 6,
                max: MAX_LEAVES,
                power_of_two: true
            })
        );
        assert_eq!(validate_params(HashLeaves, 6, 8), Ok(()));
        assert_eq!(
            validate_params(HashLeaves, 0, 8),
            Err(InputError::Count {
                count: 0,
                max: MAX_LEAVES,
                power_of_two: false
            })
        );
        assert!(validate_params(MerkleTree, MAX_LEAVES * 2, 8).is_err());
        assert_eq!(validate_params(MerkleTree, MAX_LEAVES, 8), Ok(()));
        assert_eq!(
            validate_params(HashLeaves, 4, 0),
            Err(InputError::LeafWidth {
                width: 0,
                max: MAX_LEAF_WIDTH
            })
        );
        assert_eq!(
            validate_params(Permute, 4, 8),
            Err(InputError::LeafWidth {
                width: 8,
                max: MAX_LEAF_WIDTH
            })
        );
        assert!(matches!(
            validate_params(HashLeaves, MAX_LEAVES, 64),
            Err(InputError::TooLarge { .. })
        ));
        let good = babybear::random_elements(1, 32);
        assert_eq!(
            validate_input(HashLeaves, 4, 8, &words_to_bytes(&good)),
            Ok(())
        );
        let mut bad = good.clone();
        bad[31] = u32::MAX;
        assert_eq!(
            Poseidon2Job::from_bytes(HashLeaves, 4, 8, &words_to_bytes(&bad)),
            Err(InputError::NotCanonical {
                index: 31,
                value: u32::MAX
            })
        );
        assert!(matches!(
            Poseidon2Job::from_elements(HashLeaves, 4, 8, bad),
            Err(InputError::NotCanonical { index: 31, .. })
        ));
        assert_eq!(
            validate_input(HashLeaves, 4, 8, &words_to_bytes(&good[..31])),
            Err(InputError::InputLength {
                expected: 128,
                found: 124
            })
        );
        // A prepared tree validates; tampering with a pass does not.
        let job = Poseidon2Job::seeded(MerkleTree, 64, 12, 5).unwrap();
        let p = job.prepare();
        assert_eq!(p.passes.len(), 6);
        assert_eq!(job.validate(&p), Ok(()));
        let mut bad = p.clone();
        bad.passes.pop();
        assert_eq!(
            job.validate(&bad),
            Err(InputError::JobMismatch("dispatches or pass parameters"))
        );
        let (spec, _) = p.to_job();
        assert_eq!(
            crate::exec::check_spec(&spec, &SpecLimits::default()).map_err(|e| e.to_string()),
            Ok(())
        );
    }

    #[test]
    fn decode_output_checks_length() {
        assert_eq!(
            decode_output(Poseidon2Mode::HashLeaves, 2, &[0; 64]),
            Ok(vec![0; 16])
        );
        assert_eq!(
            decode_output(Poseidon2Mode::MerkleTree, 2, &[0; 64]),
            Err(InputError::InputLength {
                expected: 96,
                found: 64
            })
        );
    }
}
