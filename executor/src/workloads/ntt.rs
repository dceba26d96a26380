//! Batched number-theoretic transforms over BabyBear (`ntt-babybear`): forward NTT, inverse NTT
//! and coset low-degree extensions of many columns at once, bit for bit equal to Plonky3's
//! `p3-dft` (`Radix2DitParallel`, [`TwoAdicSubgroupDft`]).
//!
//! # Operations ([`NttOp`]), with `n = 2^log_n` input rows and `w` columns
//!
//! | op | input rows are | output | Plonky3 equivalent |
//! |---|---|---|---|
//! | [`NttOp::Forward`] | `n` coefficients | `n` evaluations on `H = ⟨ω_n⟩` | `dft_batch` |
//! | [`NttOp::Inverse`] | `n` evaluations on `H` | `n` coefficients | `idft_batch` |
//! | [`NttOp::CosetExtend`] | `n` coefficients | `n·2^b` evaluations on `shift·K` | `coset_dft_batch` of the coefficients zero-padded to `n·2^b` rows |
//! | [`NttOp::CosetLde`] | `n` evaluations on `H` | `n·2^b` evaluations on `shift·K` | `coset_lde_batch(mat, b, shift)` |
//!
//! `ω_n` is Plonky3's `F::two_adic_generator(log_n)`, `K` the subgroup of order `n·2^b`
//! (`b` = `log_blowup`), `shift` a non-zero field element (Plonky3 uses `F::GENERATOR` = 31,
//! [`super::babybear::GENERATOR`]).
//!
//! # Data layout (input and output)
//!
//! Both buffers are **row-major matrices of canonical field elements**, exactly Plonky3's
//! `RowMajorMatrix<BabyBear>` `values` as little-endian `u32`: element `(row i, column c)` is
//! the word at index `i·w + c` (byte offset `4·(i·w + c)`), value in `[0, p)`. Each **column**
//! is one polynomial (the batch); each **row** is one coefficient index (or evaluation point)
//! across all columns. The input has `n` rows, the output `n` (forward/inverse) or `n·2^b`
//! (coset ops). [`Order::BitReversed`] means row `i` holds what natural order puts at row
//! `bitrev(i)` (over `log2(rows)` bits): Plonky3's `bit_reverse_rows()` of the natural matrix,
//! which is how its FRI commits LDEs. The output is decoded with [`decode_output`].
//!
//! # Kernel and passes
//!
//! A transform of size `T = 2^L` runs as `⌈L / k_max⌉` passes of the `main` entry point of
//! [`WGSL`], each doing up to `k_max = 11 − log2(C)` radix-2 stages on 2048-word tiles in
//! workgroup memory (`C = min(8, w rounded up to a power of two)` columns per tile, so the
//! tile's row segments are contiguous). A thread does two stages at a time on four elements (a
//! radix-4 step of four butterflies), so a pass of `k` stages has `⌈k/2⌉ + 1` workgroup
//! barriers; the twiddles of all its stages are computed once per workgroup after the load. Natural output uses Cooley–Tukey (DIT) stages, whose
//! first pass reads the input through a bit-reversed row index; bit-reversed output uses
//! Gentleman–Sande (DIF) stages on naturally ordered input. The first pass also applies the
//! zero padding (coset ops), the input's bit-reversed order, and the per-row scaling (`n^{-1}`
//! for the inverse, `shift^j`, and both for the LDE). [`NttOp::CosetLde`] is an inverse
//! transform of size `n` (DIT, into the output buffer) followed by a forward transform of size
//! `n·2^b` in place (DIF), then, for natural output order, the `bitrev_rows` pass. Every pass
//! is one dispatch of a format version 2 job ([`crate::spec::Pass`]) with its own parameter
//! block. Every loop in the kernel runs at most 2048/256 = 8 iterations per step, a pass at
//! most 6 steps (lavapipe stops loops after 65,535 iterations).
//!
//! Twiddles and scale factors come from a small second input, the **tables** (binding 1,
//! 32–96 KiB): for each root `r` a two-level table of Montgomery forms, `r^i` and `r^{4096·i}`
//! for `i < 4096`, so `r^e = low[e mod 4096] · high[e / 4096]` for every `e < 2^24` with one
//! multiplication. The tables are a function of the parameters ([`tables`]), generated from
//! Plonky3's roots of unity; [`Workload::validate`] checks them.
//!
//! Bindings (group 0): 0 = input matrix, 1 = tables (inputs), 2 = output matrix, 3 = pass
//! parameters (uniform, 96 bytes: 8 words of job parameters, then the pass's). Workgroup 256.
//!
//! Work units: butterflies / 2^17 (at least 1), over all transforms of the job.

use p3_baby_bear::BabyBear;
use p3_dft::{Radix2DitParallel, TwoAdicSubgroupDft};
use p3_field::{Field, PrimeCharacteristicRing, TwoAdicField};
use p3_matrix::bitrev::BitReversibleMatrix;
use p3_matrix::dense::RowMajorMatrix;
use p3_matrix::util::reverse_matrix_index_bits;
use p3_matrix::Matrix;
use std::sync::Arc;

use super::babybear::{self, from_p3, p3_mont, to_p3, InputError};
use super::{
    dispatch_2d, uniform_block, words_to_bytes, work_units, Kernel, Prepared, PreparedPass,
    Workload,
};
use crate::spec::SpecLimits;

/// The NTT kernel module: BabyBear arithmetic plus the NTT entry points.
pub const WGSL: &str = concat!(
    include_str!("wgsl/babybear.wgsl"),
    include_str!("wgsl/ntt_babybear.wgsl")
);

/// The NTT kernel (first pass: `main`).
pub const KERNEL: Kernel = Kernel {
    name: "ntt-babybear",
    wgsl: WGSL,
    entry_point: "main",
};

/// Entry point of the butterfly passes.
pub const ENTRY_STAGES: &str = "main";
/// Entry point of the in-place bit reversal of rows.
pub const ENTRY_BITREV: &str = "bitrev_rows";

/// Binding of the input matrix.
pub const BINDING_INPUT: u32 = 0;
/// Binding of the twiddle and scale tables.
pub const BINDING_TABLES: u32 = 1;
/// Binding of the output matrix.
pub const BINDING_OUTPUT: u32 = 2;
/// Binding of the pass parameters.
pub const BINDING_PARAMS: u32 = 3;

/// Smallest `log2(n)`.
pub const MIN_LOG_N: u32 = 10;
/// Largest `log2` of the input and of the output height.
pub const MAX_LOG_N: u32 = 24;
/// Most columns in one job (and the total size must fit the spec limits).
pub const MAX_COLUMNS: u32 = 1024;
/// Largest `log2(blowup)` of the coset operations (blowup 16).
pub const MAX_LOG_BLOWUP: u32 = 4;
/// Columns of [`super::by_name`]'s NTT.
pub const DEFAULT_COLUMNS: u32 = 16;

/// Words of a tile in workgroup memory.
const TILE_WORDS: u32 = 2048;
/// Entries of each level of a two-level table.
const TABLE_LEVEL: usize = 4096;
/// Words of one two-level table.
const TABLE_WORDS: usize = 2 * TABLE_LEVEL;
/// Threads per workgroup.
const WORKGROUP_SIZE: u64 = 256;

const FLAG_DIF: u32 = 1;
const FLAG_FIRST: u32 = 2;
const FLAG_FROM_INPUT: u32 = 4;
const FLAG_INPUT_BITREV: u32 = 8;
const FLAG_SCALE: u32 = 16;

/// Row order of a matrix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// Row `i` is coefficient `i` / evaluation at `shift·ω^i`.
    #[default]
    Natural,
    /// Row `i` holds natural row `bitrev(i)` (over `log2(rows)` bits).
    BitReversed,
}

/// What the job computes (see the module docs' table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NttOp {
    /// Coefficients → evaluations on the subgroup (`dft_batch`).
    Forward,
    /// Evaluations on the subgroup → coefficients (`idft_batch`).
    Inverse,
    /// Coefficients → evaluations on `shift·K`, `|K| = n·2^log_blowup` (`coset_dft_batch` of
    /// the zero-padded coefficients).
    CosetExtend {
        /// `log2` of the blowup factor (0..=[`MAX_LOG_BLOWUP`]).
        log_blowup: u32,
        /// The coset shift, a non-zero canonical element.
        shift: u32,
    },
    /// Evaluations on the subgroup → evaluations on `shift·K` (`coset_lde_batch`).
    CosetLde {
        /// `log2` of the blowup factor (0..=[`MAX_LOG_BLOWUP`]).
        log_blowup: u32,
        /// The coset shift, a non-zero canonical element.
        shift: u32,
    },
}

impl NttOp {
    fn code(self) -> u32 {
        match self {
            NttOp::Forward => 0,
            NttOp::Inverse => 1,
            NttOp::CosetExtend { .. } => 2,
            NttOp::CosetLde { .. } => 3,
        }
    }

    /// `(log_blowup, shift)`: `(0, 1)` for the plain transforms.
    fn coset(self) -> (u32, u32) {
        match self {
            NttOp::Forward | NttOp::Inverse => (0, 1),
            NttOp::CosetExtend { log_blowup, shift } | NttOp::CosetLde { log_blowup, shift } => {
                (log_blowup, shift)
            }
        }
    }
}

/// The parameters of an NTT job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NttParams {
    /// `log2` of the input rows `n` ([`MIN_LOG_N`]..=[`MAX_LOG_N`]).
    pub log_n: u32,
    /// Columns (polynomials) of the batch, 1..=[`MAX_COLUMNS`].
    pub columns: u32,
    /// The operation.
    pub op: NttOp,
    /// Row order of the input.
    pub input_order: Order,
    /// Row order of the output.
    pub output_order: Order,
}

impl NttParams {
    /// A forward NTT, natural order in and out.
    pub fn forward(log_n: u32, columns: u32) -> Self {
        Self {
            log_n,
            columns,
            op: NttOp::Forward,
            input_order: Order::Natural,
            output_order: Order::Natural,
        }
    }

    /// An inverse NTT, natural order in and out.
    pub fn inverse(log_n: u32, columns: u32) -> Self {
        Self {
            op: NttOp::Inverse,
            ..Self::forward(log_n, columns)
        }
    }

    /// A coset LDE (Plonky3's `coset_lde_batch`), natural order in and out.
    pub fn coset_lde(log_n: u32, columns: u32, log_blowup: u32, shift: u32) -> Self {
        Self {
            op: NttOp::CosetLde { log_blowup, shift },
            ..Self::forward(log_n, columns)
        }
    }

    /// The same parameters with the given row orders.
    pub fn with_orders(self, input_order: Order, output_order: Order) -> Self {
        Self {
            input_order,
            output_order,
            ..self
        }
    }

    /// `log2` of the output rows.
    pub fn log_n_out(&self) -> u32 {
        self.log_n + self.op.coset().0
    }

    /// Input rows `n`.
    pub fn rows_in(&self) -> u64 {
        1u64 << self.log_n
    }

    /// Output rows.
    pub fn rows_out(&self) -> u64 {
        1u64 << self.log_n_out()
    }

    /// Input bytes: `n · columns · 4`.
    pub fn input_len(&self) -> u64 {
        self.rows_in() * u64::from(self.columns) * 4
    }

    /// Output bytes: `rows_out · columns · 4`.
    pub fn output_len(&self) -> u64 {
        self.rows_out() * u64::from(self.columns) * 4
    }

    /// Checks the parameters: sizes, columns, blowup, shift, and every buffer within the
    /// default [`SpecLimits`].
    ///
    /// # Errors
    /// [`InputError::LogSize`], [`InputError::Columns`], [`InputError::Blowup`],
    /// [`InputError::Shift`], [`InputError::TooLarge`].
    pub fn validate(&self) -> Result<(), InputError> {
        if !(MIN_LOG_N..=MAX_LOG_N).contains(&self.log_n) {
            return Err(InputError::LogSize {
                log_n: self.log_n,
                min: MIN_LOG_N,
                max: MAX_LOG_N,
            });
        }
        if !(1..=MAX_COLUMNS).contains(&self.columns) {
            return Err(InputError::Columns {
                columns: self.columns,
                max: MAX_COLUMNS,
            });
        }
        let (log_blowup, shift) = self.op.coset();
        if log_blowup > MAX_LOG_BLOWUP || self.log_n + log_blowup > MAX_LOG_N {
            return Err(InputError::Blowup {
                log_blowup,
                max: MAX_LOG_BLOWUP,
                max_log_out: MAX_LOG_N,
            });
        }
        if shift == 0 || shift >= babybear::P {
            return Err(InputError::Shift { shift });
        }
        let limits = SpecLimits::default();
        for (what, bytes) in [
            ("input matrix", self.input_len()),
            ("output matrix", self.output_len()),
        ] {
            if bytes > limits.max_buffer_bytes {
                return Err(InputError::TooLarge {
                    what,
                    bytes,
                    max: limits.max_buffer_bytes,
                });
            }
        }
        let total =
            self.input_len() + self.output_len() + (self.table_words() * 4) as u64 + 96 * 64;
        if total > limits.max_total_bytes {
            return Err(InputError::TooLarge {
                what: "buffers in total",
                bytes: total,
                max: limits.max_total_bytes,
            });
        }
        Ok(())
    }

    /// Words of the tables input.
    fn table_words(&self) -> usize {
        TABLE_WORDS
            * match self.op {
                NttOp::Forward => 1,
                NttOp::Inverse | NttOp::CosetExtend { .. } => 2,
                NttOp::CosetLde { .. } => 3,
            }
    }

    /// The 8 job words at the start of every pass's parameter block.
    fn job_words(&self) -> [u32; 8] {
        let (log_blowup, shift) = self.op.coset();
        [
            self.log_n,
            self.columns,
            self.op.code(),
            log_blowup,
            shift,
            u32::from(self.input_order == Order::BitReversed),
            u32::from(self.output_order == Order::BitReversed),
            0,
        ]
    }

    /// The parameters from the job words (no range checks; see [`NttParams::validate`]).
    fn from_job_words(w: &[u32]) -> Result<Self, InputError> {
        let w: [u32; 8] = w
            .get(..8)
            .and_then(|s| s.try_into().ok())
            .ok_or(InputError::JobMismatch("parameter block too short"))?;
        let order = |b: u32| match b {
            0 => Ok(Order::Natural),
            1 => Ok(Order::BitReversed),
            _ => Err(InputError::JobMismatch("row order flag")),
        };
        let op = match w[2] {
            0 => NttOp::Forward,
            1 => NttOp::Inverse,
            2 => NttOp::CosetExtend {
                log_blowup: w[3],
                shift: w[4],
            },
            3 => NttOp::CosetLde {
                log_blowup: w[3],
                shift: w[4],
            },
            _ => return Err(InputError::JobMismatch("operation code")),
        };
        if matches!(op, NttOp::Forward | NttOp::Inverse) && (w[3], w[4]) != (0, 1) {
            return Err(InputError::JobMismatch(
                "blowup and shift of a plain transform",
            ));
        }
        Ok(Self {
            log_n: w[0],
            columns: w[1],
            op,
            input_order: order(w[5])?,
            output_order: order(w[6])?,
        })
    }
}

/// Checks an NTT job's parameters and input before signing: the [`NttParams::validate`]
/// limits, the input length, and every element canonical (`< p`).
///
/// # Errors
/// Any [`InputError`] of the parameters, [`InputError::InputLength`],
/// [`InputError::Unaligned`], [`InputError::NotCanonical`].
pub fn validate_input(params: &NttParams, input: &[u8]) -> Result<(), InputError> {
    params.validate()?;
    if input.len() as u64 != params.input_len() {
        return Err(InputError::InputLength {
            expected: params.input_len(),
            found: input.len() as u64,
        });
    }
    babybear::decode_elements(input).map(|_| ())
}

/// The output matrix's elements (row-major, canonical), checked for length and range.
///
/// # Errors
/// [`InputError::InputLength`] if `output` is not `params.output_len()` bytes, and
/// [`babybear::decode_elements`]'s errors.
pub fn decode_output(params: &NttParams, output: &[u8]) -> Result<Vec<u32>, InputError> {
    if output.len() as u64 != params.output_len() {
        return Err(InputError::InputLength {
            expected: params.output_len(),
            found: output.len() as u64,
        });
    }
    babybear::decode_elements(output)
}

/// Where a job's input elements come from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Data {
    /// [`babybear::random_elements`] of this seed.
    Seeded(u64),
    /// Caller-provided canonical elements.
    Given(Arc<Vec<u32>>),
}

/// A batched NTT job over BabyBear: validated parameters and input (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NttBabyBear {
    params: NttParams,
    data: Data,
}

impl NttBabyBear {
    /// A job on pseudo-random canonical input generated from `seed`.
    ///
    /// # Errors
    /// [`NttParams::validate`]'s errors.
    pub fn seeded(params: NttParams, seed: u64) -> Result<Self, InputError> {
        params.validate()?;
        Ok(Self {
            params,
            data: Data::Seeded(seed),
        })
    }

    /// A job on caller-provided input bytes (row-major, little-endian canonical `u32`s).
    ///
    /// # Errors
    /// [`validate_input`]'s errors.
    pub fn from_bytes(params: NttParams, input: &[u8]) -> Result<Self, InputError> {
        validate_input(&params, input)?;
        let words = babybear::decode_elements(input)?;
        Ok(Self {
            params,
            data: Data::Given(Arc::new(words)),
        })
    }

    /// A job on caller-provided canonical elements (row-major).
    ///
    /// # Errors
    /// As [`NttBabyBear::from_bytes`].
    pub fn from_elements(params: NttParams, input: Vec<u32>) -> Result<Self, InputError> {
        params.validate()?;
        if input.len() as u64 * 4 != params.input_len() {
            return Err(InputError::InputLength {
                expected: params.input_len(),
                found: input.len() as u64 * 4,
            });
        }
        babybear::check_canonical(&input)?;
        Ok(Self {
            params,
            data: Data::Given(Arc::new(input)),
        })
    }

    /// The parameters.
    pub fn params(&self) -> &NttParams {
        &self.params
    }

    /// The input elements (row-major, canonical).
    pub fn input_elements(&self) -> Vec<u32> {
        match &self.data {
            Data::Seeded(seed) => {
                babybear::random_elements(*seed, (self.params.input_len() / 4) as usize)
            }
            Data::Given(words) => words.as_ref().clone(),
        }
    }

    /// The expected output elements, computed by Plonky3 (see [`cpu_ntt`]).
    pub fn expected_elements(&self) -> Vec<u32> {
        cpu_ntt(&self.params, &self.input_elements())
    }
}

/// The tables input (binding 1) of a job: two-level Montgomery tables of the roots and scale
/// factors the passes use, in this order: the twiddles of the first transform (`ω` of its
/// size, inverted for [`NttOp::Inverse`] and the LDE's inverse transform), the scale factors
/// `c·g^j` of the first pass where it scales (`n^{-1}` for the inverse, `shift^j`, or
/// `n^{-1}·shift^j` for the LDE), and the LDE's forward twiddles.
pub fn tables(params: &NttParams) -> Vec<u32> {
    let omega = |log: u32| BabyBear::two_adic_generator(log as usize);
    let n_inv = BabyBear::from_u64(params.rows_in()).inverse();
    let mut out = Vec::with_capacity(params.table_words());
    match params.op {
        NttOp::Forward => push_table(&mut out, BabyBear::ONE, omega(params.log_n)),
        NttOp::Inverse => {
            push_table(&mut out, BabyBear::ONE, omega(params.log_n).inverse());
            push_table(&mut out, n_inv, BabyBear::ONE);
        }
        NttOp::CosetExtend { shift, .. } => {
            push_table(&mut out, BabyBear::ONE, omega(params.log_n_out()));
            push_table(&mut out, BabyBear::ONE, BabyBear::new(shift));
        }
        NttOp::CosetLde { shift, .. } => {
            push_table(&mut out, BabyBear::ONE, omega(params.log_n).inverse());
            push_table(&mut out, n_inv, BabyBear::new(shift));
            push_table(&mut out, BabyBear::ONE, omega(params.log_n_out()));
        }
    }
    out
}

/// Appends the two-level table of `c·g^e`: `g^i` then `c·g^{4096·i}`, `i < 4096`, Montgomery form.
fn push_table(out: &mut Vec<u32>, c: BabyBear, g: BabyBear) {
    let mut x = BabyBear::ONE;
    for _ in 0..TABLE_LEVEL {
        out.push(p3_mont(x));
        x *= g;
    }
    let step = g.exp_u64(TABLE_LEVEL as u64);
    let mut y = c;
    for _ in 0..TABLE_LEVEL {
        out.push(p3_mont(y));
        y *= step;
    }
}

/// How the first pass of a transform loads.
#[derive(Clone, Copy)]
struct FirstLoad {
    flags: u32,
    n_valid: u32,
    log_src: u32,
    sc_off: u32,
}

/// The passes of a transform of size `2^log_t` on `cols` columns: `(entry, workgroups,
/// parameter words)`.
fn transform_passes(
    out: &mut Vec<(&'static str, [u32; 3], Vec<u32>)>,
    job: [u32; 8],
    log_t: u32,
    cols: u32,
    dif: bool,
    tw_off: u32,
    first: FirstLoad,
) {
    let log_c = cols.next_power_of_two().trailing_zeros().min(3);
    let col_blocks = cols.div_ceil(1 << log_c);
    let k_max = TILE_WORDS.trailing_zeros() - log_c;
    let passes = log_t.div_ceil(k_max);
    let (base, extra) = (log_t / passes, log_t % passes);
    let sizes: Vec<u32> = (0..passes).map(|i| base + u32::from(i < extra)).collect();
    // DIT passes go up from stage 0; DIF passes come down from the top stage.
    let mut next = if dif { log_t } else { 0 };
    for (i, &k) in sizes.iter().enumerate() {
        let s0 = if dif {
            next -= k;
            next
        } else {
            let s = next;
            next += k;
            s
        };
        let total_wg = (1u32 << (log_t - k)) * col_blocks;
        let mut flags = if dif { FLAG_DIF } else { 0 };
        let (mut n_valid, mut log_src, mut sc_off) = (0, 0, 0);
        if i == 0 {
            flags |= FLAG_FIRST | first.flags;
            (n_valid, log_src, sc_off) = (first.n_valid, first.log_src, first.sc_off);
        }
        let mut words = job.to_vec();
        words.extend([
            log_t, cols, log_c, s0, k, flags, tw_off, sc_off, n_valid, log_src, col_blocks,
            total_wg, 0, 0, 0, 0,
        ]);
        let workgroups =
            dispatch_2d(u64::from(total_wg)).expect("validated sizes fit a 2-D dispatch");
        out.push((ENTRY_STAGES, workgroups, words));
    }
}

/// All passes of a job, in order.
fn passes(params: &NttParams) -> Vec<(&'static str, [u32; 3], Vec<u32>)> {
    let job = params.job_words();
    let cols = params.columns;
    let (l, l_out) = (params.log_n, params.log_n_out());
    let n = 1u32 << l;
    let in_bitrev = if params.input_order == Order::BitReversed {
        FLAG_INPUT_BITREV
    } else {
        0
    };
    let out_bitrev = params.output_order == Order::BitReversed;
    let table = TABLE_WORDS as u32;
    let from_input = FirstLoad {
        flags: FLAG_FROM_INPUT | in_bitrev,
        n_valid: n,
        log_src: l,
        sc_off: 0,
    };
    let mut out = Vec::new();
    match params.op {
        NttOp::Forward => transform_passes(&mut out, job, l, cols, out_bitrev, 0, from_input),
        NttOp::Inverse | NttOp::CosetExtend { .. } => {
            let log_t = if params.op == NttOp::Inverse {
                l
            } else {
                l_out
            };
            let first = FirstLoad {
                flags: from_input.flags | FLAG_SCALE,
                sc_off: table,
                ..from_input
            };
            transform_passes(&mut out, job, log_t, cols, out_bitrev, 0, first);
        }
        NttOp::CosetLde { .. } => {
            // Coefficients (natural order) into rows 0..n of the output, unscaled.
            transform_passes(&mut out, job, l, cols, false, 0, from_input);
            // Scale by n^-1·shift^j, zero-pad, forward transform in place (DIF).
            let first = FirstLoad {
                flags: FLAG_SCALE,
                n_valid: n,
                log_src: 0,
                sc_off: table,
            };
            transform_passes(&mut out, job, l_out, cols, true, 2 * table, first);
            if !out_bitrev {
                let mut words = job.to_vec();
                words.extend([l_out, cols, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
                let elements = params.rows_out() * u64::from(cols);
                let workgroups = dispatch_2d(elements.div_ceil(WORKGROUP_SIZE))
                    .expect("validated sizes fit a 2-D dispatch");
                out.push((ENTRY_BITREV, workgroups, words));
            }
        }
    }
    out
}

/// Bytes each dispatch of the job reads and writes in the matrices (device memory traffic,
/// tables not counted), in dispatch order: a butterfly pass reads its source rows (the valid
/// input rows in a first pass) and writes the whole transform; `bitrev_rows` reads and writes
/// every row that moves. For benchmarks' bandwidth bounds.
pub fn pass_traffic(params: &NttParams) -> Vec<u64> {
    passes(params)
        .iter()
        .map(|(entry, _, w)| {
            let (log_t, cols, flags, n_valid) = (w[8], u64::from(w[9]), w[13], u64::from(w[16]));
            let rows = 1u64 << log_t;
            if *entry == ENTRY_BITREV {
                let fixed = 1u64 << log_t.div_ceil(2);
                return 2 * (rows - fixed) * cols * 4;
            }
            let read = if flags & FLAG_FIRST != 0 {
                n_valid.min(rows)
            } else {
                rows
            };
            (read + rows) * cols * 4
        })
        .collect()
}

/// Butterflies of the job (over all its transforms).
fn butterflies(params: &NttParams) -> u128 {
    let one = |log: u32| (1u128 << log) / 2 * u128::from(log) * u128::from(params.columns);
    match params.op {
        NttOp::Forward | NttOp::Inverse => one(params.log_n),
        NttOp::CosetExtend { .. } => one(params.log_n_out()),
        NttOp::CosetLde { .. } => one(params.log_n) + one(params.log_n_out()),
    }
}

/// The job for `params` and `input` (validated by the caller).
fn prepare(params: &NttParams, input: &[u32]) -> Prepared {
    let mut all = passes(params);
    let rest = all.split_off(1);
    let (entry, workgroups, words) = all.remove(0);
    debug_assert_eq!(entry, KERNEL.entry_point);
    Prepared {
        kernel: KERNEL,
        workgroups,
        inputs: vec![
            (BINDING_INPUT, words_to_bytes(input)),
            (BINDING_TABLES, words_to_bytes(&tables(params))),
        ],
        uniform: Some((BINDING_PARAMS, uniform_block(&words))),
        output: (BINDING_OUTPUT, params.output_len()),
        work_units: work_units(butterflies(params) << 3),
        passes: rest
            .into_iter()
            .map(|(entry_point, workgroups, words)| PreparedPass {
                entry_point,
                workgroups,
                uniform: Some(uniform_block(&words)),
            })
            .collect(),
    }
}

/// The expected output of `params` on `input` (row-major canonical elements), computed by
/// Plonky3's `Radix2DitParallel` (see the module docs' table for which method).
pub fn cpu_ntt(params: &NttParams, input: &[u32]) -> Vec<u32> {
    let dft = Radix2DitParallel::<BabyBear>::default();
    let width = params.columns as usize;
    let mut mat = RowMajorMatrix::new(to_p3(input), width);
    if params.input_order == Order::BitReversed {
        reverse_matrix_index_bits(&mut mat);
    }
    let bitrev_out = params.output_order == Order::BitReversed;
    let natural_or_bitrev =
        |evals: <Radix2DitParallel<BabyBear> as TwoAdicSubgroupDft<BabyBear>>::Evaluations| {
            if bitrev_out {
                evals.bit_reverse_rows().to_row_major_matrix()
            } else {
                evals.to_row_major_matrix()
            }
        };
    let out = match params.op {
        NttOp::Forward => natural_or_bitrev(dft.dft_batch(mat)),
        NttOp::Inverse => {
            let mut coeffs = dft.idft_batch(mat);
            if bitrev_out {
                reverse_matrix_index_bits(&mut coeffs);
            }
            coeffs
        }
        NttOp::CosetExtend { log_blowup, shift } => {
            let mut values = mat.values;
            values.resize(values.len() << log_blowup, BabyBear::ZERO);
            natural_or_bitrev(
                dft.coset_dft_batch(RowMajorMatrix::new(values, width), BabyBear::new(shift)),
            )
        }
        NttOp::CosetLde { log_blowup, shift } => {
            natural_or_bitrev(dft.coset_lde_batch(mat, log_blowup as usize, BabyBear::new(shift)))
        }
    };
    from_p3(&out.values)
}

impl Workload for NttBabyBear {
    fn name(&self) -> &'static str {
        "ntt-babybear"
    }

    fn prepare(&self) -> Prepared {
        prepare(&self.params, &self.input_elements())
    }

    fn cpu_reference(&self, prepared: &Prepared) -> Vec<u8> {
        let params = NttParams::from_job_words(&prepared.uniform_words())
            .expect("ntt-babybear: parameter block");
        let input = babybear::decode_elements(
            prepared
                .input(BINDING_INPUT)
                .expect("ntt-babybear: input matrix"),
        )
        .expect("ntt-babybear: canonical input");
        words_to_bytes(&cpu_ntt(&params, &input))
    }

    fn validate(&self, prepared: &Prepared) -> Result<(), InputError> {
        let params = NttParams::from_job_words(&prepared.uniform_words())?;
        let input = prepared
            .input(BINDING_INPUT)
            .ok_or(InputError::JobMismatch("no input matrix"))?;
        validate_input(&params, input)?;
        // The rest of the job must be exactly what the parameters build: kernel, tables,
        // dispatches, pass parameters and output size.
        let expected = prepare(&params, &[]);
        if prepared.kernel != expected.kernel {
            return Err(InputError::JobMismatch("kernel"));
        }
        if prepared.input(BINDING_TABLES) != expected.input(BINDING_TABLES)
            || prepared.inputs.len() != 2
        {
            return Err(InputError::JobMismatch("tables input"));
        }
        babybear::same_dispatch(prepared, &expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_two_level_powers() {
        let params = NttParams::coset_lde(12, 3, 2, babybear::GENERATOR);
        let t = tables(&params);
        assert_eq!(t.len(), 3 * TABLE_WORDS);
        let pow = |off: usize, e: usize| {
            babybear::from_mont(babybear::mont_mul(
                t[off + (e % 4096)],
                t[off + 4096 + e / 4096],
            ))
        };
        let w_inv = BabyBear::two_adic_generator(12).inverse();
        let w_out = BabyBear::two_adic_generator(14);
        let g = BabyBear::new(babybear::GENERATOR);
        let n_inv = BabyBear::from_u64(1 << 12).inverse();
        for e in [
            0usize,
            1,
            4095,
            4096,
            4097,
            1 << 20,
            (1 << 23) - 1,
            (1 << 24) - 1,
        ] {
            assert_eq!(
                pow(0, e),
                from_p3(&[w_inv.exp_u64(e as u64)])[0],
                "inverse twiddle {e}"
            );
            assert_eq!(
                pow(TABLE_WORDS, e),
                from_p3(&[n_inv * g.exp_u64(e as u64)])[0],
                "scale {e}"
            );
            assert_eq!(
                pow(2 * TABLE_WORDS, e),
                from_p3(&[w_out.exp_u64(e as u64)])[0],
                "forward twiddle {e}"
            );
        }
    }

    #[test]
    fn passes_cover_every_stage_once() {
        for params in [
            NttParams::forward(10, 1),
            NttParams::forward(24, 8),
            NttParams::forward(17, 3).with_orders(Order::Natural, Order::BitReversed),
            NttParams::coset_lde(20, 8, 4, 7),
            NttParams::coset_lde(12, 100, 1, 7).with_orders(Order::BitReversed, Order::BitReversed),
        ] {
            params.validate().unwrap();
            let all = passes(&params);
            let mut per_transform: Vec<Vec<(u32, u32)>> = Vec::new();
            for (entry, wg, words) in &all {
                assert!(wg.iter().all(|&g| (1..=65_535).contains(&g)));
                assert_eq!(words[..8], params.job_words());
                if *entry == ENTRY_BITREV {
                    continue;
                }
                let (log_t, cols, log_c, s0, k, flags) = (
                    words[8], words[9], words[10], words[11], words[12], words[13],
                );
                assert_eq!(cols, params.columns);
                assert!(k >= 1 && (1 << k) << log_c <= TILE_WORDS, "tile fits");
                assert!(1 << log_c <= cols.next_power_of_two().max(1));
                // Enough workgroups dispatched for the work.
                assert!(u64::from(wg[0]) * u64::from(wg[1]) >= u64::from(words[19]));
                if flags & FLAG_FIRST != 0 {
                    per_transform.push(Vec::new());
                }
                per_transform.last_mut().unwrap().push((s0, k));
                assert!(s0 + k <= log_t);
            }
            for stages in per_transform {
                let mut covered: Vec<u32> = stages.iter().flat_map(|&(s0, k)| s0..s0 + k).collect();
                covered.sort_unstable();
                let log_t = covered.len() as u32;
                assert_eq!(covered, (0..log_t).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn parameter_validation() {
        let ok = NttParams::forward(10, 1);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            NttParams::forward(9, 1).validate(),
            Err(InputError::LogSize {
                log_n: 9,
                min: 10,
                max: 24
            })
        );
        assert_eq!(
            NttParams::forward(25, 1).validate(),
            Err(InputError::LogSize {
                log_n: 25,
                min: 10,
                max: 24
            })
        );
        assert_eq!(
            NttParams::forward(10, 0).validate(),
            Err(InputError::Columns {
                columns: 0,
                max: MAX_COLUMNS
            })
        );
        assert_eq!(
            NttParams::forward(10, MAX_COLUMNS + 1).validate(),
            Err(InputError::Columns {
                columns: MAX_COLUMNS + 1,
                max: MAX_COLUMNS
            })
        );
        assert_eq!(
            NttParams::coset_lde(10, 1, 5, 7).validate(),
            Err(InputError::Blowup {
                log_blowup: 5,
                max: 4,
                max_log_out: 24
            })
        );
        assert_eq!(
            NttParams::coset_lde(22, 1, 3, 7).validate(),
            Err(InputError::Blowup {
                log_blowup: 3,
                max: 4,
                max_log_out: 24
            })
        );
        assert_eq!(
            NttParams::coset_lde(10, 1, 1, 0).validate(),
            Err(InputError::Shift { shift: 0 })
        );
        assert_eq!(
            NttParams::coset_lde(10, 1, 1, babybear::P).validate(),
            Err(InputError::Shift { shift: babybear::P })
        );
        // 2^24 rows × 64 columns is 4 GiB.
        assert!(matches!(
            NttParams::forward(24, 64).validate(),
            Err(InputError::TooLarge { .. })
        ));
        // 2^22 × 16 columns in, 2^24 × 16 out: 256 MiB + 1 GiB.
        assert_eq!(NttParams::coset_lde(22, 16, 2, 31).validate(), Ok(()));
        assert!(matches!(
            NttParams::coset_lde(22, 17, 2, 31).validate(),
            Err(InputError::TooLarge { .. })
        ));
    }

    #[test]
    fn input_validation() {
        let params = NttParams::forward(10, 2);
        let good = babybear::random_elements(1, 2048);
        assert_eq!(validate_input(&params, &words_to_bytes(&good)), Ok(()));
        assert!(NttBabyBear::from_elements(params, good.clone()).is_ok());
        let mut bad = good.clone();
        bad[77] = babybear::P;
        assert_eq!(
            validate_input(&params, &words_to_bytes(&bad)),
            Err(InputError::NotCanonical {
                index: 77,
                value: babybear::P
            })
        );
        assert_eq!(
            NttBabyBear::from_bytes(params, &words_to_bytes(&bad)),
            Err(InputError::NotCanonical {
                index: 77,
                value: babybear::P
            })
        );
        bad[77] = u32::MAX;
        assert!(matches!(
            NttBabyBear::from_elements(params, bad),
            Err(InputError::NotCanonical { index: 77, .. })
        ));
        assert_eq!(
            validate_input(&params, &words_to_bytes(&good[..2047])),
            Err(InputError::InputLength {
                expected: 8192,
                found: 8188
            })
        );
        assert!(matches!(
            NttBabyBear::from_elements(params, good[..10].to_vec()),
            Err(InputError::InputLength { .. })
        ));
        assert!(matches!(
            NttBabyBear::seeded(NttParams::forward(3, 1), 0),
            Err(InputError::LogSize { .. })
        ));
    }

    #[test]
    fn prepared_job_validates_and_tampering_is_caught() {
        let w =
            NttBabyBear::seeded(NttParams::coset_lde(11, 5, 2, babybear::GENERATOR), 9).unwrap();
        let p = w.prepare();
        assert_eq!(w.validate(&p), Ok(()));
        assert_eq!(p.output.1, (1 << 13) * 5 * 4);
        assert!(p.passes.len() >= 2);
        let (spec, _) = p.to_job();
        assert_eq!(
            crate::exec::check_spec(&spec, &SpecLimits::default()).map_err(|e| e.to_string()),
            Ok(())
        );

        let mut bad = p.clone();
        bad.inputs[1].1[5] ^= 1;
        assert_eq!(
            w.validate(&bad),
            Err(InputError::JobMismatch("tables input"))
        );
        let mut bad = p.clone();
        bad.passes[0].workgroups[0] += 1;
        assert_eq!(
            w.validate(&bad),
            Err(InputError::JobMismatch("dispatches or pass parameters"))
        );
        let mut bad = p.clone();
        bad.inputs[0].1[0..4].copy_from_slice(&babybear::P.to_le_bytes());
        assert_eq!(
            w.validate(&bad),
            Err(InputError::NotCanonical {
                index: 0,
                value: babybear::P
            })
        );
        let mut bad = p.clone();
        bad.output.1 += 4;
        assert_eq!(
            w.validate(&bad),
            Err(InputError::JobMismatch("output size"))
        );
    }

    #[test]
    fn job_words_round_trip() {
        for params in [
            NttParams::forward(10, 1),
            NttParams::inverse(12, 7).with_orders(Order::BitReversed, Order::Natural),
            NttParams::coset_lde(14, 3, 3, 31).with_orders(Order::Natural, Order::BitReversed),
            NttParams {
                op: NttOp::CosetExtend {
                    log_blowup: 1,
                    shift: 5,
                },
                ..NttParams::forward(10, 2)
            },
        ] {
            assert_eq!(NttParams::from_job_words(&params.job_words()), Ok(params));
        }
        assert!(NttParams::from_job_words(&[0; 4]).is_err());
        assert!(NttParams::from_job_words(&[10, 1, 9, 0, 1, 0, 0, 0]).is_err());
    }

    /// A scalar model of the WGSL passes (same tiles, index arithmetic, tables and Montgomery
    /// port), run on the CPU against Plonky3: checks the pass plan without a GPU.
    fn model(params: &NttParams, input: &[u32]) -> Vec<u32> {
        let t = tables(params);
        let cols = params.columns as usize;
        let mut data = vec![0u32; (params.output_len() / 4) as usize];
        let table_pow = |off: u32, e: u32| {
            babybear::mont_mul(
                t[(off + (e & 4095)) as usize],
                t[(off + 4096 + (e >> 12)) as usize],
            )
        };
        for (entry, wg, w) in passes(params) {
            let (
                log_t,
                log_c,
                s0,
                k,
                flags,
                tw_off,
                sc_off,
                n_valid,
                log_src,
                col_blocks,
                total_wg,
            ) = (
                w[8], w[10], w[11], w[12], w[13], w[14], w[15], w[16], w[17], w[18], w[19],
            );
            if entry == ENTRY_BITREV {
                let rows = 1usize << log_t;
                for r in 0..rows {
                    let rr = babybear::bit_reverse(r as u32, log_t) as usize;
                    if r < rr {
                        for c in 0..cols {
                            data.swap(r * cols + c, rr * cols + c);
                        }
                    }
                }
                continue;
            }
            assert!(u64::from(wg[0]) * u64::from(wg[1]) >= u64::from(total_wg));
            let dif = flags & FLAG_DIF != 0;
            for g in 0..total_wg {
                let cb = g % col_blocks;
                let qg = g / col_blocks;
                let lo = qg & ((1 << s0) - 1);
                let hi = qg >> s0;
                let words = (1u32 << k) << log_c;
                let row_of = |tt: u32| lo | ((tt >> log_c) << s0) | (hi << (s0 + k));
                let col_of = |tt: u32| (cb << log_c) + (tt & ((1 << log_c) - 1));
                let mut tile = vec![0u32; words as usize];
                for tt in 0..words {
                    let (row, col) = (row_of(tt), col_of(tt));
                    if col as usize >= cols {
                        continue;
                    }
                    tile[tt as usize] = if flags & FLAG_FIRST != 0 {
                        let j = if dif {
                            row
                        } else {
                            babybear::bit_reverse(row, log_t)
                        };
                        if j >= n_valid {
                            0
                        } else {
                            let src_row = if flags & FLAG_INPUT_BITREV != 0 {
                                babybear::bit_reverse(j, log_src)
                            } else {
                                j
                            };
                            let at = src_row as usize * cols + col as usize;
                            let v = if flags & FLAG_FROM_INPUT != 0 {
                                input[at]
                            } else {
                                data[at]
                            };
                            if flags & FLAG_SCALE != 0 {
                                babybear::mont_mul(v, table_pow(sc_off, j))
                            } else {
                                v
                            }
                        }
                    } else {
                        data[row as usize * cols + col as usize]
                    };
                }
                // Twiddles of every stage of the pass, stage q at 2^q - 1.
                let twd: Vec<u32> = (0..(1u32 << k) - 1)
                    .map(|t| {
                        let q = 31 - (t + 1).leading_zeros();
                        let jj = t + 1 - (1 << q);
                        table_pow(tw_off, (lo | (jj << s0)) << (log_t - s0 - q - 1))
                    })
                    .collect();
                let c_mask = (1u32 << log_c) - 1;
                let mut i = 0;
                while i + 2 <= k {
                    let q = if dif { k - 2 - i } else { i };
                    let m = 1u32 << q;
                    for b in 0..(words / 4) {
                        let p = b >> log_c;
                        let c = b & c_mask;
                        let jj = p & (m - 1);
                        let r = ((p >> q) << (q + 2)) | jj;
                        let (w1, w2, w3) = (
                            twd[(m - 1 + jj) as usize],
                            twd[(2 * m - 1 + jj) as usize],
                            twd[(3 * m - 1 + jj) as usize],
                        );
                        let at = |row: u32| ((row << log_c) | c) as usize;
                        let (i0, i1, i2, i3) = (at(r), at(r + m), at(r + 2 * m), at(r + 3 * m));
                        let (a0, a1, a2, a3) = (tile[i0], tile[i1], tile[i2], tile[i3]);
                        use babybear::{add, mont_mul as mm, sub};
                        if dif {
                            let (b0, b2) = (add(a0, a2), mm(sub(a0, a2), w2));
                            let (b1, b3) = (add(a1, a3), mm(sub(a1, a3), w3));
                            tile[i0] = add(b0, b1);
                            tile[i1] = mm(sub(b0, b1), w1);
                            tile[i2] = add(b2, b3);
                            tile[i3] = mm(sub(b2, b3), w1);
                        } else {
                            let (t1, t3) = (mm(a1, w1), mm(a3, w1));
                            let (b0, b1, b2, b3) =
                                (add(a0, t1), sub(a0, t1), add(a2, t3), sub(a2, t3));
                            let (u2, u3) = (mm(b2, w2), mm(b3, w3));
                            tile[i0] = add(b0, u2);
                            tile[i2] = sub(b0, u2);
                            tile[i1] = add(b1, u3);
                            tile[i3] = sub(b1, u3);
                        }
                    }
                    i += 2;
                }
                if i < k {
                    let q = if dif { 0 } else { k - 1 };
                    let m = 1u32 << q;
                    for b in 0..(words / 2) {
                        let p = b >> log_c;
                        let c = b & c_mask;
                        let jj = p & (m - 1);
                        let r1 = ((p >> q) << (q + 1)) | jj;
                        let i1 = ((r1 << log_c) | c) as usize;
                        let i2 = (((r1 + m) << log_c) | c) as usize;
                        let tw = twd[(m - 1 + jj) as usize];
                        let (x, y) = (tile[i1], tile[i2]);
                        if dif {
                            tile[i1] = babybear::add(x, y);
                            tile[i2] = babybear::mont_mul(babybear::sub(x, y), tw);
                        } else {
                            let ty = babybear::mont_mul(y, tw);
                            tile[i1] = babybear::add(x, ty);
                            tile[i2] = babybear::sub(x, ty);
                        }
                    }
                }
                for tt in 0..words {
                    let (row, col) = (row_of(tt), col_of(tt));
                    if (col as usize) < cols {
                        data[row as usize * cols + col as usize] = tile[tt as usize];
                    }
                }
            }
        }
        data
    }

    #[test]
    fn pass_model_matches_plonky3() {
        let g = babybear::GENERATOR;
        let cases = [
            NttParams::forward(10, 1),
            NttParams::forward(12, 3).with_orders(Order::BitReversed, Order::Natural),
            NttParams::forward(13, 9).with_orders(Order::Natural, Order::BitReversed),
            NttParams::forward(11, 2).with_orders(Order::BitReversed, Order::BitReversed),
            NttParams::inverse(12, 4),
            NttParams::inverse(11, 1).with_orders(Order::BitReversed, Order::BitReversed),
            NttParams {
                op: NttOp::CosetExtend {
                    log_blowup: 2,
                    shift: g,
                },
                ..NttParams::forward(10, 3)
            },
            NttParams {
                op: NttOp::CosetExtend {
                    log_blowup: 1,
                    shift: 7,
                },
                ..NttParams::forward(10, 2)
            }
            .with_orders(Order::BitReversed, Order::BitReversed),
            NttParams::coset_lde(10, 5, 1, g),
            NttParams::coset_lde(12, 2, 3, g).with_orders(Order::Natural, Order::BitReversed),
            NttParams::coset_lde(10, 8, 0, 5).with_orders(Order::BitReversed, Order::Natural),
        ];
        for (i, params) in cases.iter().enumerate() {
            let input = babybear::random_elements(i as u64, (params.input_len() / 4) as usize);
            assert_eq!(model(params, &input), cpu_ntt(params, &input), "{params:?}");
        }
    }

    #[test]
    fn cpu_reference_is_plonky3_on_known_values() {
        // The DFT of the constant-1 polynomial (coefficient 1, rest 0) is all ones; of x it is
        // the powers of ω.
        let params = NttParams::forward(10, 2);
        let mut input = vec![0u32; 2048];
        input[0] = 1;
        input[3] = 1;
        let out = cpu_ntt(&params, &input);
        let w = BabyBear::two_adic_generator(10);
        for i in 0..1024 {
            assert_eq!(out[2 * i], 1);
            assert_eq!(out[2 * i + 1], from_p3(&[w.exp_u64(i as u64)])[0]);
        }
        // The inverse undoes the forward transform.
        let back = cpu_ntt(&NttParams::inverse(10, 2), &out);
        assert_eq!(back, input);
    }
}
