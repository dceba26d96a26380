//! The standard workload library: exact kernels, each with a CPU reference that the GPU must match bit for bit.
//!
//! Every workload is integer or fixed-point arithmetic only, so the output bytes are fully
//! determined by the inputs: a GPU run (any vendor, or lavapipe) and the CPU reference must agree
//! byte for byte. A [`Workload`] turns its parameters into a [`Prepared`] job (kernel, buffers,
//! dispatch size, price in work units) and computes the expected output from that same job.
//!
//! Conventions shared by all kernels:
//! - every binding is in bind group 0;
//! - inputs are `var<storage, read>` buffers, the single output is `var<storage, read_write>`,
//!   parameters are one `var<uniform>` struct of `u32`s whose size is a multiple of 16 bytes;
//! - all data is little-endian `u32`/`i32` words, byte data is packed 4 bytes per word
//!   (byte 0 of the buffer is the low byte of word 0);
//! - every kernel's (first) entry point is `main`; multi-pass jobs ([`Prepared::passes`],
//!   spec format version 2) name their further entry points and give each pass its own
//!   parameter block in place of the uniform's.
//!
//! The workloads: [`matmul`] (tiled wrapping `u32` matrix multiply), [`sha256`](mod@sha256) (batched
//! SHA-256 of 64-byte messages), [`mandelbrot`] (Q4.28 fixed-point escape times),
//! [`dot_i8`] (int8 matrix-vector product with `dot4I8Packed`), and the zero-knowledge proving
//! kernels over the BabyBear field ([`babybear`]): [`ntt`] (batched NTT / inverse NTT / coset
//! LDE, equal to Plonky3's `p3-dft`) and [`poseidon2`] (Poseidon2 permutations, leaf hashing
//! and whole Merkle trees, equal to Plonky3's `p3-merkle-tree`).

pub mod babybear;
pub mod dot_i8;
pub mod mandelbrot;
pub mod matmul;
pub mod ntt;
pub mod poseidon2;
pub mod sha256;

pub use babybear::InputError;
pub use dot_i8::DotI8Layer;
pub use mandelbrot::{Mandelbrot, MandelbrotTile};
pub use matmul::Matmul;
pub use ntt::{NttBabyBear, NttOp, NttParams, Order};
pub use poseidon2::{Poseidon2Job, Poseidon2Mode};
pub use sha256::Sha256Batch;

use crate::spec::{
    sha256, Binding, BindingKind, Determinism, InputRef, JobSpec, Pass, PassUniform, FORMAT_VERSION,
    MULTI_PASS_VERSION,
};
use std::collections::BTreeMap;

/// A WGSL compute kernel: its source and the entry point to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// Short stable name of the kernel (e.g. `"matmul"`, `"matmul-naive"`).
    pub name: &'static str,
    /// The WGSL source of the whole shader module.
    pub wgsl: &'static str,
    /// The `@compute` entry point in [`Kernel::wgsl`].
    pub entry_point: &'static str,
}

/// One concrete job of a workload: the kernel, its buffers and dispatch, and the expected CPU output.
///
/// The expected output is not stored here: [`Workload::cpu_reference`] computes it from this job.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The kernel to run.
    pub kernel: Kernel,
    /// Number of workgroups to dispatch in x, y and z.
    pub workgroups: [u32; 3],
    /// (binding number, bytes) of each read-only input.
    pub inputs: Vec<(u32, Vec<u8>)>,
    /// (binding number, bytes) of the uniform parameter block.
    pub uniform: Option<(u32, Vec<u8>)>,
    /// (binding number, length in bytes) of the single output.
    pub output: (u32, u64),
    /// Abstract work units of this job (used for pricing), documented per workload.
    pub work_units: u64,
    /// Further dispatches after the first, in order, on the same buffers (empty for a
    /// single-pass job). Makes [`Prepared::to_job`] a format version 2 spec.
    pub passes: Vec<PreparedPass>,
}

/// One further dispatch of a multi-pass job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedPass {
    /// The entry point in the job's [`Kernel::wgsl`].
    pub entry_point: &'static str,
    /// Number of workgroups to dispatch in x, y and z.
    pub workgroups: [u32; 3],
    /// This pass's parameter block, replacing [`Prepared::uniform`]'s bytes for this dispatch
    /// (same length); `None` keeps them.
    pub uniform: Option<Vec<u8>>,
}

impl Prepared {
    /// The bytes of the read-only input bound at `binding`, if this job has one.
    pub fn input(&self, binding: u32) -> Option<&[u8]> {
        self.inputs
            .iter()
            .find(|(b, _)| *b == binding)
            .map(|(_, bytes)| bytes.as_slice())
    }

    /// The uniform parameter block as little-endian `u32` words (empty if there is none).
    pub fn uniform_words(&self) -> Vec<u32> {
        self.uniform
            .as_ref()
            .map(|(_, bytes)| bytes_to_words(bytes))
            .unwrap_or_default()
    }
}

impl Prepared {
    /// The job as a content-addressed [`JobSpec`] plus its inputs by binding; inputs are
    /// named `sha256:<hex>` so any blob store can serve them.
    pub fn to_job(&self) -> (JobSpec, BTreeMap<u32, Vec<u8>>) {
        let mut bindings = Vec::new();
        let mut inputs = BTreeMap::new();
        for (binding, data) in &self.inputs {
            let digest = sha256(data);
            bindings.push(Binding {
                binding: *binding,
                kind: BindingKind::Input(InputRef {
                    sha256: digest,
                    uri: format!("sha256:{}", hex::encode(digest)),
                    len: data.len() as u64,
                }),
            });
            inputs.insert(*binding, data.clone());
        }
        bindings.push(Binding { binding: self.output.0, kind: BindingKind::Output { len: self.output.1 } });
        if let Some((binding, data)) = &self.uniform {
            bindings.push(Binding { binding: *binding, kind: BindingKind::Uniform { data: data.clone() } });
        }
        bindings.sort_by_key(|b| b.binding);
        let uniform_binding = self.uniform.as_ref().map(|(b, _)| *b);
        let passes: Vec<Pass> = self
            .passes
            .iter()
            .map(|p| Pass {
                entry_point: p.entry_point.to_string(),
                workgroups: p.workgroups,
                uniform: p.uniform.as_ref().map(|data| PassUniform {
                    // A replacement without a declared uniform is refused by the spec check.
                    binding: uniform_binding.unwrap_or(u32::MAX),
                    data: data.clone(),
                }),
            })
            .collect();
        let spec = JobSpec {
            version: if passes.is_empty() { FORMAT_VERSION } else { MULTI_PASS_VERSION },
            wgsl: self.kernel.wgsl.to_string(),
            entry_point: self.kernel.entry_point.to_string(),
            workgroups: self.workgroups,
            bindings,
            work_units: self.work_units.max(1),
            determinism: Determinism::Exact,
            passes,
        };
        (spec, inputs)
    }
}

/// Whether `spec` may run without naga's runtime bounds checks: only the tiled matmul
/// kernels ([`matmul::TRUSTED`]), and only when the uniform `n`, the three buffers and the
/// dispatch all agree, so every index the kernel computes is in range. Everything else keeps
/// the checks.
pub fn trusted_without_checks(spec: &JobSpec) -> bool {
    let Some(&(_, tile)) = matmul::TRUSTED
        .iter()
        .find(|(k, _)| spec.wgsl == k.wgsl && spec.entry_point == k.entry_point)
    else {
        return false;
    };
    let mut n = None;
    let mut lens = BTreeMap::new();
    for b in &spec.bindings {
        match &b.kind {
            BindingKind::Uniform { data } if b.binding == matmul::BINDING_PARAMS && data.len() >= 4 => {
                n = Some(u64::from(u32::from_le_bytes([data[0], data[1], data[2], data[3]])));
            }
            BindingKind::Input(r) => {
                lens.insert(b.binding, r.len);
            }
            BindingKind::Output { len } => {
                lens.insert(b.binding, *len);
            }
            BindingKind::Uniform { .. } => return false,
        }
    }
    let Some(n) = n else { return false };
    let tile = u64::from(tile);
    let bytes = n * n * 4;
    n > 0
        && n % tile == 0
        && spec.workgroups == [(n / tile) as u32, (n / tile) as u32, 1]
        && lens.len() == 3
        && [matmul::BINDING_A, matmul::BINDING_B, matmul::BINDING_C].iter().all(|b| lens.get(b) == Some(&bytes))
}

/// A workload of the standard library: prepares a job and computes its expected output on the CPU.
pub trait Workload: Send + Sync {
    /// The workload's name, one of [`NAMES`].
    fn name(&self) -> &'static str;
    /// Builds the job: kernel, generated inputs, uniform parameters, dispatch and price.
    fn prepare(&self) -> Prepared;
    /// The exact output bytes the GPU must produce for `prepared` (computed from its buffers and
    /// uniform block, not from `self`'s fields). Panics if `prepared` is not a job of this workload.
    fn cpu_reference(&self, prepared: &Prepared) -> Vec<u8>;
    /// Checks `prepared`'s parameters and input data before the job is signed and submitted
    /// (e.g. field elements in range for the BabyBear workloads). The default accepts every
    /// job: the other workloads' inputs are arbitrary bytes.
    ///
    /// # Errors
    /// An [`InputError`] naming the first problem found.
    fn validate(&self, prepared: &Prepared) -> Result<(), InputError> {
        let _ = prepared;
        Ok(())
    }
}

/// The names accepted by [`by_name`].
pub const NAMES: &[&str] = &[
    "matmul",
    "sha256",
    "mandelbrot",
    "dot-i8",
    "ntt-babybear",
    "poseidon2-hash",
    "poseidon2-merkle",
];

/// A workload by name, scaled by `size`, with inputs generated from `seed`.
///
/// What `size` means:
/// - `"matmul"`: the matrix order `n`, clamped to 1..=[`matmul::MAX_N`] and rounded up to a
///   multiple of 64;
/// - `"sha256"`: the number of 64-byte messages (at least 1);
/// - `"mandelbrot"`: the image width (at least 1); the height is `width * 5 / 7` (at least 1),
///   which keeps pixels square for the 3.5 × 2.5 view, and `max_iter` is 512 (`seed` is unused; a batch renders one image as strips, see [`task_of`]);
/// - `"dot-i8"`: the number of rows (at least 1); the number of columns is `size` rounded up
///   to a multiple of 4 (at least 4, at most [`dot_i8::MAX_COLS`]).
/// - `"ntt-babybear"`: the number of rows `n` of a forward NTT (natural order in and out) of
///   [`ntt::DEFAULT_COLUMNS`] columns, rounded up to a power of two and clamped to
///   2^[`ntt::MIN_LOG_N`]..=2^[`ntt::MAX_LOG_N`];
/// - `"poseidon2-hash"`: the number of leaves (at least 1, at most [`poseidon2::MAX_LEAVES`]),
///   each [`poseidon2::DEFAULT_LEAF_WIDTH`] field elements, hashed to 8-element digests;
/// - `"poseidon2-merkle"`: the number of leaves of a whole Merkle tree, rounded up to a power
///   of two (at most [`poseidon2::MAX_LEAVES`]), each [`poseidon2::DEFAULT_LEAF_WIDTH`] field
///   elements.
///
/// Returns `None` for an unknown name.
pub fn by_name(name: &str, size: u32, seed: u64) -> Option<Box<dyn Workload>> {
    match name {
        "matmul" => {
            let n = size.clamp(1, matmul::MAX_N).div_ceil(64) * 64;
            Some(Box::new(Matmul { n, seed }))
        }
        "sha256" => Some(Box::new(Sha256Batch {
            messages: size.max(1),
            seed,
        })),
        "mandelbrot" => {
            let (width, height) = mandelbrot_size(size);
            Some(Box::new(Mandelbrot { width, height, max_iter: MANDELBROT_MAX_ITER }))
        }
        "dot-i8" => {
            let rows = size.max(1);
            let cols = size.clamp(4, dot_i8::MAX_COLS).div_ceil(4) * 4;
            Some(Box::new(DotI8Layer { rows, cols, seed }))
        }
        "ntt-babybear" => by_name_with_columns(name, size, ntt::DEFAULT_COLUMNS, seed),
        "poseidon2-hash" => {
            let leaves = size.clamp(1, poseidon2::MAX_LEAVES);
            Poseidon2Job::seeded(Poseidon2Mode::HashLeaves, leaves, poseidon2::DEFAULT_LEAF_WIDTH, seed)
                .ok()
                .map(|w| Box::new(w) as Box<dyn Workload>)
        }
        "poseidon2-merkle" => {
            let leaves = size.clamp(1, poseidon2::MAX_LEAVES).next_power_of_two();
            Poseidon2Job::seeded(Poseidon2Mode::MerkleTree, leaves, poseidon2::DEFAULT_LEAF_WIDTH, seed)
                .ok()
                .map(|w| Box::new(w) as Box<dyn Workload>)
        }
        _ => None,
    }
}

/// Iterations of the library's Mandelbrot images.
const MANDELBROT_MAX_ITER: u32 = 512;

/// Width and height of the library's Mandelbrot image of `size` (see [`by_name`]).
fn mandelbrot_size(size: u32) -> (u32, u32) {
    let width = size.max(1);
    (width, ((u64::from(width) * 5 / 7) as u32).max(1))
}

/// Task `task` of a batch of `tasks` tasks of the workload `name` (`size` as in
/// [`by_name`]): for `"mandelbrot"`, strip `task` of one image rendered as `tasks`
/// horizontal strips ([`MandelbrotTile`]; the image's height rounded up to a multiple of
/// `tasks`), whose outputs in task order are the whole image; for every other workload, the
/// workload at seed `seed + task` (other inputs, one shape).
///
/// Returns `None` for an unknown name or `task ≥ tasks`.
pub fn task_of(name: &str, size: u32, seed: u64, task: u32, tasks: u32) -> Option<Box<dyn Workload>> {
    if task >= tasks {
        return None;
    }
    match name {
        "mandelbrot" if tasks > 1 => {
            let (width, height) = mandelbrot_size(size);
            Some(Box::new(MandelbrotTile::strip(width, height, MANDELBROT_MAX_ITER, task, tasks)))
        }
        _ => by_name(name, size, seed.wrapping_add(u64::from(task))),
    }
}

/// [`by_name`] with an explicit column count for the column-batched workload
/// (`"ntt-babybear"`: `size` rows as in [`by_name`], `columns` polynomials,
/// 1..=[`ntt::MAX_COLUMNS`]).
///
/// Returns `None` for an unknown name, a workload without columns, or a column count out
/// of range.
pub fn by_name_with_columns(name: &str, size: u32, columns: u32, seed: u64) -> Option<Box<dyn Workload>> {
    match name {
        "ntt-babybear" => {
            let log_n = size.max(1).next_power_of_two().trailing_zeros().clamp(ntt::MIN_LOG_N, ntt::MAX_LOG_N);
            NttBabyBear::seeded(NttParams::forward(log_n, columns), seed).ok().map(|w| Box::new(w) as Box<dyn Workload>)
        }
        _ => None,
    }
}

/// SplitMix64, a tiny deterministic PRNG used to generate workload inputs from a seed.
///
/// Not cryptographic; its only job is that the same seed gives the same inputs everywhere.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose first output is the standard SplitMix64 output for `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next 32 random bits (the high half of [`SplitMix64::next_u64`]).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// `count` random `u32` words.
    pub fn words(&mut self, count: usize) -> Vec<u32> {
        (0..count).map(|_| self.next_u32()).collect()
    }

    /// `count` random bytes (8 per [`SplitMix64::next_u64`] call, little-endian).
    pub fn bytes(&mut self, count: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(count + 8);
        while out.len() < count {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(count);
        out
    }
}

/// The little-endian bytes of `words` (4 bytes per word).
pub fn words_to_bytes(words: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(words.len() * 4);
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

/// The little-endian `u32` words of `bytes`; a trailing partial word is zero-padded.
pub fn bytes_to_words(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}

/// A uniform block from `u32` fields; callers pass a multiple of 4 fields (16 bytes).
pub(crate) fn uniform_block(words: &[u32]) -> Vec<u8> {
    debug_assert!(
        words.len() % 4 == 0,
        "uniform size must be a multiple of 16 bytes"
    );
    words_to_bytes(words)
}

/// Work units from a raw operation count: `ops / 2^20`, at least 1, saturating at `u64::MAX`.
pub(crate) fn work_units(ops: u128) -> u64 {
    (ops >> 20).clamp(1, u128::from(u64::MAX)) as u64
}

/// Workgroups along x of every two-dimensional dispatch of the library's kernels; a power of two,
/// so kernels may recover the linear workgroup index as `id.x + id.y * num_workgroups.x`.
pub const DISPATCH_X: u32 = 32_768;

/// The dispatch `[x, y, 1]` covering `workgroups` workgroups (at least one): up to
/// [`DISPATCH_X`] along x, then rows of [`DISPATCH_X`] along y. The kernel skips linear indices
/// at or past `workgroups`. `None` if even that exceeds 65,535 rows.
pub(crate) fn dispatch_2d(workgroups: u64) -> Option<[u32; 3]> {
    let total = workgroups.max(1);
    let x = total.min(u64::from(DISPATCH_X));
    let y = total.div_ceil(x);
    (y <= 65_535).then_some([x as u32, y as u32, 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_known_answer() {
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn splitmix64_is_deterministic() {
        let a = SplitMix64::new(42).bytes(37);
        let b = SplitMix64::new(42).bytes(37);
        assert_eq!(a, b);
        assert_eq!(a.len(), 37);
        assert_ne!(a, SplitMix64::new(43).bytes(37));
    }

    #[test]
    fn word_byte_round_trip() {
        let words = [0x0403_0201u32, 0xdead_beef, 0];
        let bytes = words_to_bytes(&words);
        assert_eq!(&bytes[..4], &[1, 2, 3, 4]);
        assert_eq!(bytes_to_words(&bytes), words);
        assert_eq!(bytes_to_words(&[1, 2, 3, 4, 5]), vec![0x0403_0201, 5]);
    }

    #[test]
    fn work_units_floor_and_minimum() {
        assert_eq!(work_units(0), 1);
        assert_eq!(work_units(1 << 20), 1);
        assert_eq!(work_units(5 << 20), 5);
        assert_eq!(work_units(u128::MAX), u64::MAX);
    }

    #[test]
    fn by_name_knows_all_names() {
        for name in NAMES {
            let w = by_name(name, 64, 7).expect("known workload");
            assert_eq!(w.name(), *name);
            let p = w.prepare();
            if let Some((_, u)) = &p.uniform {
                assert_eq!(u.len() % 16, 0, "{name}: uniform size");
            }
            assert!(p.work_units >= 1);
            assert!(p.workgroups.iter().all(|&g| g >= 1));
            assert_eq!(p.kernel.entry_point, "main");
        }
        assert!(by_name("nope", 1, 0).is_none());
        assert!(task_of("nope", 1, 0, 0, 1).is_none());
        assert!(task_of("sha256", 8, 0, 3, 3).is_none(), "task 3 of 3");
        assert_eq!(task_of("sha256", 8, 5, 2, 3).unwrap().prepare().inputs, by_name("sha256", 8, 7).unwrap().prepare().inputs, "seed + task");
        assert_eq!(task_of("mandelbrot", 70, 0, 0, 1).unwrap().prepare().inputs, by_name("mandelbrot", 70, 0).unwrap().prepare().inputs, "one task is the whole image");
        let strip = task_of("mandelbrot", 70, 0, 2, 4).unwrap().prepare();
        assert_eq!(strip.input(mandelbrot::BINDING_VIEW), Some(&words_to_bytes(&[26, 52])[..]), "50 rows → 4 strips of 13");
        let w = by_name_with_columns("ntt-babybear", 1024, 3, 1).expect("3 columns");
        assert_eq!(w.prepare().output.1, 1024 * 3 * 4, "2^10 rows × 3 columns of u32");
        assert!(by_name_with_columns("ntt-babybear", 1024, 0, 1).is_none());
        assert!(by_name_with_columns("ntt-babybear", 1024, ntt::MAX_COLUMNS + 1, 1).is_none());
        assert!(by_name_with_columns("sha256", 1024, 2, 1).is_none(), "sha256 has no columns");
    }

    #[test]
    fn dispatch_2d_covers_and_fits() {
        assert_eq!(dispatch_2d(0), Some([1, 1, 1]));
        assert_eq!(dispatch_2d(7), Some([7, 1, 1]));
        assert_eq!(dispatch_2d(32_768), Some([32_768, 1, 1]));
        assert_eq!(dispatch_2d(32_769), Some([32_768, 2, 1]));
        assert_eq!(dispatch_2d(1 << 28), Some([32_768, 8192, 1]));
        assert_eq!(dispatch_2d(32_768 * 65_536), None);
    }

    #[test]
    fn multi_pass_job_is_version_2() {
        let w = by_name("poseidon2-merkle", 64, 1).unwrap();
        let p = w.prepare();
        assert!(!p.passes.is_empty());
        let (spec, _) = p.to_job();
        assert_eq!(spec.version, MULTI_PASS_VERSION);
        assert_eq!(spec.passes.len(), p.passes.len());
        assert_eq!(spec.check(&crate::spec::SpecLimits::default()), Ok(()));
        assert_eq!(crate::exec::check_spec(&spec, &crate::spec::SpecLimits::default()).map_err(|e| e.to_string()), Ok(()));
        let (single, _) = Matmul { n: 64, seed: 1 }.prepare().to_job();
        assert_eq!(single.version, FORMAT_VERSION);
        assert!(single.passes.is_empty());
    }

    #[test]
    fn by_name_rounds_matmul_up() {
        let w = by_name("matmul", 100, 1).unwrap();
        let p = w.prepare();
        assert_eq!(p.uniform_words()[0], 128);
        assert_eq!(p.workgroups, [2, 2, 1]);
    }
}
