//! int8 dot-product layer, the core of quantised inference: `y = W · x` for an int8 weight
//! matrix `W` (`rows × cols`, row-major) and an int8 vector `x` (`cols`), with `i32` outputs.
//!
//! int8 values are two's-complement bytes packed 4 per `u32` (byte 0 = element 0), so `cols`
//! must be a multiple of 4. The kernel runs one thread per row (workgroup 64) and accumulates
//! WGSL's `dot4I8Packed` over the row's `cols / 4` words with wrapping `i32` adds; the output
//! is one `i32` per row (little-endian bytes of its two's-complement bits).
//!
//! Bindings (group 0): 0 = W (input), 1 = x (input), 2 = y (output), 3 =
//! `Params { rows, cols_words, pad×2 }` (uniform). Dispatch `[ceil(rows/64), 1, 1]`.

use rayon::prelude::*;

use super::{uniform_block, work_units, Kernel, Prepared, SplitMix64, Workload};

/// The int8 layer kernel.
pub const WGSL: &str = include_str!("wgsl/dot_i8.wgsl");

/// The int8 layer kernel as a [`Kernel`].
pub const KERNEL: Kernel = Kernel {
    name: "dot-i8",
    wgsl: WGSL,
    entry_point: "main",
};

/// Threads per workgroup (one row each).
pub const WORKGROUP_SIZE: u32 = 64;

/// Binding of the weights W.
pub const BINDING_W: u32 = 0;
/// Binding of the input vector x.
pub const BINDING_X: u32 = 1;
/// Binding of the output vector y.
pub const BINDING_Y: u32 = 2;
/// Binding of the uniform `Params { rows, cols_words, _pad0, _pad1 }`.
pub const BINDING_PARAMS: u32 = 3;

/// Largest `cols` whose loop fits the loop budget ([`crate::guard::LOOP_BUDGET`]): a row's
/// loop does `cols/4` iterations at cost 1 each (its last entry only fails the condition, so
/// the budget cutting it changes nothing).
pub const MAX_COLS: u32 = 4 * crate::guard::LOOP_BUDGET;

/// One int8 layer `y = W · x` with random weights and input generated from `seed` (W's
/// `rows · cols` bytes first, then x's `cols` bytes, from one [`SplitMix64`] stream).
///
/// `rows` must be at least 1 and `cols` a positive multiple of 4. Work units:
/// `rows · cols / 2^20` (at least 1), i.e. one unit = 2^20 int8 multiply-adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DotI8Layer {
    /// Number of rows of W (= outputs).
    pub rows: u32,
    /// Number of columns of W (= length of x); a positive multiple of 4.
    pub cols: u32,
    /// Seed of the input generator.
    pub seed: u64,
}

impl DotI8Layer {
    /// The inputs `(W, x)` as two's-complement bytes (W row-major).
    pub fn input_bytes(&self) -> (Vec<u8>, Vec<u8>) {
        let mut rng = SplitMix64::new(self.seed);
        let w = rng.bytes(self.rows as usize * self.cols as usize);
        let x = rng.bytes(self.cols as usize);
        (w, x)
    }
}

impl Workload for DotI8Layer {
    fn name(&self) -> &'static str {
        "dot-i8"
    }

    fn prepare(&self) -> Prepared {
        let (rows, cols) = (self.rows, self.cols);
        assert!(rows > 0, "dot-i8: at least one row");
        assert!(
            cols > 0 && cols % 4 == 0,
            "dot-i8: cols = {cols} must be a positive multiple of 4"
        );
        let (w, x) = self.input_bytes();
        Prepared {
            kernel: KERNEL,
            workgroups: [rows.div_ceil(WORKGROUP_SIZE), 1, 1],
            inputs: vec![(BINDING_W, w), (BINDING_X, x)],
            uniform: Some((BINDING_PARAMS, uniform_block(&[rows, cols / 4, 0, 0]))),
            output: (BINDING_Y, u64::from(rows) * 4),
            work_units: work_units(u128::from(rows) * u128::from(cols)),
            passes: Vec::new(),
        }
    }

    fn cpu_reference(&self, prepared: &Prepared) -> Vec<u8> {
        let params = prepared.uniform_words();
        let rows = params[0] as usize;
        let cols = params[1] as usize * 4;
        let w = prepared.input(BINDING_W).expect("dot-i8: input W");
        let x = prepared.input(BINDING_X).expect("dot-i8: input x");
        let y = cpu_dot_i8(&w[..rows * cols], &x[..cols], rows, cols);
        let mut out = Vec::with_capacity(rows * 4);
        for v in y {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }
}

/// WGSL's `dot4I8Packed(a, b)`: the sum of the products of the four signed bytes of `a` and
/// `b` (byte 0 with byte 0, …). Cannot overflow (|sum| ≤ 4 · 128²).
pub fn dot4_i8_packed(a: u32, b: u32) -> i32 {
    a.to_le_bytes()
        .iter()
        .zip(b.to_le_bytes())
        .map(|(&p, q)| i32::from(p as i8) * i32::from(q as i8))
        .sum()
}

/// Packs int8 values 4 per `u32`, element `4k + j` in byte `j` of word `k`; a trailing
/// partial word is zero-padded.
pub fn pack_i8(values: &[i8]) -> Vec<u32> {
    values
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            for (dst, &v) in w.iter_mut().zip(c) {
                *dst = v as u8;
            }
            u32::from_le_bytes(w)
        })
        .collect()
}

/// `y = W · x` with int8 inputs given as two's-complement bytes (`w` row-major `rows × cols`,
/// `x` of length `cols`), `i32` products summed with wrapping adds (parallel over rows).
/// Panics if the lengths do not match.
pub fn cpu_dot_i8(w: &[u8], x: &[u8], rows: usize, cols: usize) -> Vec<i32> {
    assert_eq!(w.len(), rows * cols, "dot-i8: W must be rows*cols bytes");
    assert_eq!(x.len(), cols, "dot-i8: x must be cols bytes");
    if cols == 0 {
        return vec![0; rows];
    }
    w.par_chunks(cols)
        .map(|row| {
            row.iter().zip(x).fold(0i32, |acc, (&a, &b)| {
                acc.wrapping_add(i32::from(a as i8) * i32::from(b as i8))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::{bytes_to_words, words_to_bytes};

    #[test]
    fn hand_example() {
        let w: [i8; 8] = [1, -2, 3, -4, 127, -128, 0, 1];
        let x: [i8; 4] = [5, 6, -7, 8];
        let wb: Vec<u8> = w.iter().map(|&v| v as u8).collect();
        let xb: Vec<u8> = x.iter().map(|&v| v as u8).collect();
        // 5 - 12 - 21 - 32 = -60;  635 - 768 + 0 + 8 = -125
        assert_eq!(cpu_dot_i8(&wb, &xb, 2, 4), vec![-60, -125]);
    }

    #[test]
    fn packed_dot_matches_unpacked() {
        let a = pack_i8(&[1, -2, 3, -4]);
        assert_eq!(a, vec![0xFC03_FE01]);
        let b = pack_i8(&[5, 6, -7, 8]);
        assert_eq!(dot4_i8_packed(a[0], b[0]), -60);
        let min = pack_i8(&[-128; 4])[0];
        assert_eq!(dot4_i8_packed(min, min), 65536);
        let max = pack_i8(&[127; 4])[0];
        assert_eq!(dot4_i8_packed(min, max), -65024);
        assert_eq!(pack_i8(&[1, 2, 3, 4, 5]), vec![0x0403_0201, 5]);
    }

    #[test]
    fn word_model_matches_reference() {
        // The kernel's view: per row, the sum of dot4I8Packed over packed words.
        let layer = DotI8Layer {
            rows: 70,
            cols: 36,
            seed: 4,
        };
        let (w, x) = layer.input_bytes();
        let (ww, xw) = (bytes_to_words(&w), bytes_to_words(&x));
        let model: Vec<u32> = ww
            .chunks(9)
            .map(|row| {
                row.iter()
                    .zip(&xw)
                    .fold(0i32, |acc, (&a, &b)| acc.wrapping_add(dot4_i8_packed(a, b)))
                    as u32
            })
            .collect();
        let p = layer.prepare();
        assert_eq!(layer.cpu_reference(&p), words_to_bytes(&model));
    }

    #[test]
    fn prepare_sizes() {
        let layer = DotI8Layer {
            rows: 100,
            cols: 12,
            seed: 1,
        };
        let p = layer.prepare();
        assert_eq!(p.kernel.name, "dot-i8");
        assert_eq!(p.workgroups, [2, 1, 1]);
        assert_eq!(p.input(BINDING_W).unwrap().len(), 1200);
        assert_eq!(p.input(BINDING_X).unwrap().len(), 12);
        assert_eq!(p.output, (BINDING_Y, 400));
        let (binding, u) = p.uniform.as_ref().unwrap();
        assert_eq!(*binding, BINDING_PARAMS);
        assert_eq!(u.len() % 16, 0);
        assert_eq!(p.uniform_words(), vec![100, 3, 0, 0]);
        assert_eq!(p.work_units, 1);
        assert_eq!(layer.cpu_reference(&p).len() as u64, p.output.1);
        let big = DotI8Layer {
            rows: 4096,
            cols: 1024,
            seed: 0,
        };
        assert_eq!(big.prepare().work_units, 4);
    }

    #[test]
    fn wgsl_declares_bindings() {
        assert!(WGSL.contains("dot4I8Packed("));
        assert!(WGSL.contains("@binding(0) var<storage, read>"));
        assert!(WGSL.contains("@binding(1) var<storage, read>"));
        assert!(WGSL.contains("@binding(2) var<storage, read_write>"));
        assert!(WGSL.contains("@binding(3) var<uniform>"));
    }
}
