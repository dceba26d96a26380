//! Tiled `u32` matrix multiply, the performance flagship: `C = A × B` for `n × n` row-major
//! matrices with wrapping arithmetic (mod 2^32).
//!
//! The tiled kernel ([`WGSL`]) runs 16 × 16 threads per workgroup, each computing a 4 × 4 block,
//! so one workgroup covers a 64 × 64 tile of C; K is consumed 16 at a time through two
//! `array<vec4<u32>, 256>` workgroup tiles. All workgroup-array indices are in range by
//! construction, so the kernel may be created without runtime bounds checks. `n` must be a
//! multiple of 64 ([`Matmul::prepare`] asserts it; [`super::by_name`] rounds up).
//!
//! [`NAIVE_WGSL`] is a one-thread-per-element kernel with the same bindings, the in-run
//! baseline for benchmarks ([`Matmul::prepare_naive`]).
//!
//! Bindings (group 0): 0 = A (input), 1 = B (input), 2 = C (output), 3 = `Params { n, pad×3 }`
//! (uniform).

use rayon::prelude::*;

use super::{
    bytes_to_words, uniform_block, words_to_bytes, work_units, Kernel, Prepared, SplitMix64,
    Workload,
};

/// The tiled kernel (workgroup 16 × 16, 64 × 64 C tile per workgroup, dispatch `[n/64, n/64, 1]`).
pub const WGSL: &str = include_str!("wgsl/matmul.wgsl");

/// The naive kernel (one thread per element of C, workgroup 8 × 8, dispatch
/// `[ceil(n/8), ceil(n/8), 1]`), same bindings and uniform as [`WGSL`].
pub const NAIVE_WGSL: &str = include_str!("wgsl/matmul_naive.wgsl");

/// The tiled kernel as a [`Kernel`].
pub const KERNEL: Kernel = Kernel {
    name: "matmul",
    wgsl: WGSL,
    entry_point: "main",
};

/// The naive baseline kernel as a [`Kernel`].
pub const NAIVE_KERNEL: Kernel = Kernel {
    name: "matmul-naive",
    wgsl: NAIVE_WGSL,
    entry_point: "main",
};

/// Side of the C tile computed by one workgroup of the tiled kernel; `n` must be a multiple of it.
pub const TILE: u32 = 64;

/// Largest `n` (a multiple of [`TILE`]) whose loops fit the loop budget
/// ([`crate::guard::LOOP_BUDGET`]) in the tiled kernel: its outer loop costs 2 per entry
/// (`n/16 + 1` entries) and its inner loop 1 (5 entries per outer iteration), so an invocation
/// spends `7n/16 + 2`. (The wide kernel spends `5n/8 + 2`, at most 6,336; the naive one `n + 1`,
/// at most 3,968.) Beyond these, every adapter would cut the loop the same way and the product
/// would be wrong, so the library never builds such a job.
pub const MAX_N: u32 = 9_088;

/// The wide tiled kernel (workgroup 16 × 16, 128 × 128 C tile, 8 × 8 outputs per thread,
/// dispatch `[n/128, n/128, 1]`), same bindings and uniform as [`WGSL`].
pub const WIDE_WGSL: &str = include_str!("wgsl/matmul_wide.wgsl");

/// The wide tiled kernel as a [`Kernel`].
pub const WIDE_KERNEL: Kernel = Kernel {
    name: "matmul-wide",
    wgsl: WIDE_WGSL,
    entry_point: "main",
};

/// Side of the C tile of the wide kernel; `n` must be a multiple of it to use that kernel.
pub const WIDE_TILE: u32 = 128;

/// The tiled kernels that run without runtime bounds checks, with their tile sides.
pub const TRUSTED: [(Kernel, u32); 2] = [(KERNEL, TILE), (WIDE_KERNEL, WIDE_TILE)];

/// Binding of matrix A.
pub const BINDING_A: u32 = 0;
/// Binding of matrix B.
pub const BINDING_B: u32 = 1;
/// Binding of the output matrix C.
pub const BINDING_C: u32 = 2;
/// Binding of the uniform `Params { n, _pad0, _pad1, _pad2 }`.
pub const BINDING_PARAMS: u32 = 3;

/// `C = A × B` for random `n × n` `u32` matrices generated from `seed` (A first, then B, each
/// row-major from one [`SplitMix64`] stream).
///
/// `n` must be a positive multiple of 64. Work units: `n³ / 2^20` (at least 1), i.e. one unit
/// = 2^20 multiply-adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matmul {
    /// Matrix order; a positive multiple of 64.
    pub n: u32,
    /// Seed of the input generator.
    pub seed: u64,
}

impl Matmul {
    /// The two input matrices `(A, B)`, row-major.
    pub fn inputs(&self) -> (Vec<u32>, Vec<u32>) {
        let len = self.n as usize * self.n as usize;
        let mut rng = SplitMix64::new(self.seed);
        let a = rng.words(len);
        let b = rng.words(len);
        (a, b)
    }

    /// The same job for the wide tiled kernel ([`WIDE_WGSL`]); `n` must be a multiple of
    /// [`WIDE_TILE`].
    pub fn prepare_wide(&self) -> Prepared {
        assert!(self.n % WIDE_TILE == 0, "matmul-wide: n = {} must be a multiple of {WIDE_TILE}", self.n);
        let mut p = self.prepare();
        let g = self.n / WIDE_TILE;
        p.kernel = WIDE_KERNEL;
        p.workgroups = [g, g, 1];
        p
    }

    /// The same job for the naive baseline kernel ([`NAIVE_WGSL`]); same buffers and expected
    /// output as [`Workload::prepare`], only the kernel and the dispatch differ.
    pub fn prepare_naive(&self) -> Prepared {
        let mut p = self.prepare();
        let g = self.n.div_ceil(8);
        p.kernel = NAIVE_KERNEL;
        p.workgroups = [g, g, 1];
        p
    }
}

impl Workload for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn prepare(&self) -> Prepared {
        let n = self.n;
        assert!(
            n > 0 && n % TILE == 0,
            "matmul: n = {n} must be a positive multiple of {TILE}"
        );
        let (a, b) = self.inputs();
        let g = n / TILE;
        let n64 = u64::from(n);
        Prepared {
            kernel: KERNEL,
            workgroups: [g, g, 1],
            inputs: vec![
                (BINDING_A, words_to_bytes(&a)),
                (BINDING_B, words_to_bytes(&b)),
            ],
            uniform: Some((BINDING_PARAMS, uniform_block(&[n, 0, 0, 0]))),
            output: (BINDING_C, n64 * n64 * 4),
            work_units: work_units(u128::from(n64).pow(3)),
            passes: Vec::new(),
        }
    }

    fn cpu_reference(&self, prepared: &Prepared) -> Vec<u8> {
        let n = prepared.uniform_words()[0] as usize;
        let a = bytes_to_words(prepared.input(BINDING_A).expect("matmul: input A"));
        let b = bytes_to_words(prepared.input(BINDING_B).expect("matmul: input B"));
        words_to_bytes(&cpu_matmul(&a, &b, n))
    }
}

/// `C = A × B` mod 2^32 for row-major `n × n` matrices (any `n`), an i-k-j loop parallel over
/// rows of C. Panics if `a` or `b` does not hold `n * n` words.
pub fn cpu_matmul(a: &[u32], b: &[u32], n: usize) -> Vec<u32> {
    assert_eq!(a.len(), n * n, "cpu_matmul: A must be n*n");
    assert_eq!(b.len(), n * n, "cpu_matmul: B must be n*n");
    let mut c = vec![0u32; n * n];
    if n == 0 {
        return c;
    }
    c.par_chunks_mut(n).enumerate().for_each(|(i, c_row)| {
        let a_row = &a[i * n..(i + 1) * n];
        for (k, &aik) in a_row.iter().enumerate() {
            let b_row = &b[k * n..(k + 1) * n];
            for (cij, &bkj) in c_row.iter_mut().zip(b_row) {
                *cij = cij.wrapping_add(aik.wrapping_mul(bkj));
            }
        }
    });
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[u32], b: &[u32], n: usize) -> Vec<u32> {
        let mut c = vec![0u32; n * n];
        for i in 0..n {
            for j in 0..n {
                let mut s = 0u32;
                for k in 0..n {
                    s = s.wrapping_add(a[i * n + k].wrapping_mul(b[k * n + j]));
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    /// A scalar model of the tiled WGSL kernel: same tiles, same index arithmetic.
    fn tiled_model(a: &[u32], b: &[u32], n: usize) -> Vec<u32> {
        let nq = n / 4;
        let vec4 = |m: &[u32], i: usize| [m[4 * i], m[4 * i + 1], m[4 * i + 2], m[4 * i + 3]];
        let mut c = vec![0u32; n * n];
        for wy in 0..n / 64 {
            for wx in 0..n / 64 {
                let (row0, col0) = (wy * 64, wx * 64);
                // acc[tid][r] = the vec4 accumulator of row r of thread tid.
                let mut acc = [[[0u32; 4]; 4]; 256];
                for k0 in (0..n).step_by(16) {
                    let mut a_tile = [[0u32; 4]; 256];
                    let mut b_tile = [[0u32; 4]; 256];
                    for tid in 0..256 {
                        let (ty, tx) = (tid / 16, tid % 16);
                        let a_src = (row0 + tid / 4) * nq + tid % 4;
                        let b_src = ty * nq + col0 / 4 + tx;
                        a_tile[tid] = vec4(a, a_src + k0 / 4);
                        b_tile[tid] = vec4(b, b_src + k0 * nq);
                    }
                    for (tid, acc_t) in acc.iter_mut().enumerate() {
                        let (ty, tx) = (tid / 16, tid % 16);
                        let a_base = ty * 16;
                        for kq in 0..4 {
                            let bv = [
                                b_tile[kq * 64 + tx],
                                b_tile[kq * 64 + 16 + tx],
                                b_tile[kq * 64 + 32 + tx],
                                b_tile[kq * 64 + 48 + tx],
                            ];
                            for (r, acc_r) in acc_t.iter_mut().enumerate() {
                                let av = a_tile[a_base + 4 * r + kq];
                                for (aj, bj) in av.iter().zip(&bv) {
                                    for (cv, bjc) in acc_r.iter_mut().zip(bj) {
                                        *cv = cv.wrapping_add(aj.wrapping_mul(*bjc));
                                    }
                                }
                            }
                        }
                    }
                }
                for (tid, acc_t) in acc.iter().enumerate() {
                    let (ty, tx) = (tid / 16, tid % 16);
                    let c_base = (row0 + ty * 4) * nq + col0 / 4 + tx;
                    for (r, acc_r) in acc_t.iter().enumerate() {
                        let v = c_base + r * nq;
                        c[4 * v..4 * v + 4].copy_from_slice(acc_r);
                    }
                }
            }
        }
        c
    }

    #[test]
    fn identity_gives_a() {
        let n = 64;
        let a = SplitMix64::new(1).words(n * n);
        let mut id = vec![0u32; n * n];
        for i in 0..n {
            id[i * n + i] = 1;
        }
        assert_eq!(cpu_matmul(&a, &id, n), a);
        assert_eq!(cpu_matmul(&id, &a, n), a);
    }

    #[test]
    fn wraps_mod_2_32() {
        assert_eq!(cpu_matmul(&[u32::MAX], &[2], 1), vec![u32::MAX - 1]);
        // [[1, 2], [3, 4]] × [[5, 6], [7, 8]] = [[19, 22], [43, 50]]
        assert_eq!(
            cpu_matmul(&[1, 2, 3, 4], &[5, 6, 7, 8], 2),
            vec![19, 22, 43, 50]
        );
    }

    #[test]
    fn matches_naive_on_odd_size() {
        let n = 7;
        let mut rng = SplitMix64::new(9);
        let (a, b) = (rng.words(n * n), rng.words(n * n));
        assert_eq!(cpu_matmul(&a, &b, n), naive(&a, &b, n));
    }

    #[test]
    fn tiled_kernel_model_matches_reference() {
        let m = Matmul { n: 128, seed: 3 };
        let (a, b) = m.inputs();
        assert_eq!(tiled_model(&a, &b, 128), cpu_matmul(&a, &b, 128));
    }

    #[test]
    fn prepare_sizes() {
        let m = Matmul { n: 64, seed: 5 };
        let p = m.prepare();
        assert_eq!(p.kernel.name, "matmul");
        assert_eq!(p.workgroups, [1, 1, 1]);
        assert_eq!(p.input(BINDING_A).unwrap().len(), 64 * 64 * 4);
        assert_eq!(p.input(BINDING_B).unwrap().len(), 64 * 64 * 4);
        assert_eq!(p.output, (BINDING_C, 64 * 64 * 4));
        let (binding, u) = p.uniform.as_ref().unwrap();
        assert_eq!(*binding, BINDING_PARAMS);
        assert_eq!(u.len() % 16, 0);
        assert_eq!(p.uniform_words(), vec![64, 0, 0, 0]);
        assert_eq!(p.work_units, 1); // 64³ = 2^18 < 2^20
        assert_eq!(Matmul { n: 256, seed: 0 }.prepare().work_units, 16);
        assert_eq!(m.cpu_reference(&p).len() as u64, p.output.1);

        let nv = m.prepare_naive();
        assert_eq!(nv.kernel.name, "matmul-naive");
        assert_eq!(nv.workgroups, [8, 8, 1]);
        assert_eq!(nv.inputs, p.inputs);
    }

    #[test]
    fn reference_uses_prepared_buffers() {
        let m = Matmul { n: 64, seed: 11 };
        let p = m.prepare();
        let (a, b) = m.inputs();
        assert_eq!(m.cpu_reference(&p), words_to_bytes(&naive(&a, &b, 64)));
    }

    #[test]
    fn wgsl_declares_bindings() {
        for src in [WGSL, NAIVE_WGSL] {
            assert!(src.contains("@binding(0) var<storage, read>"));
            assert!(src.contains("@binding(1) var<storage, read>"));
            assert!(src.contains("@binding(2) var<storage, read_write>"));
            assert!(src.contains("@binding(3) var<uniform>"));
            assert!(src.contains("fn main("));
        }
    }
}
