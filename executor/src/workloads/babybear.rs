//! BabyBear field arithmetic for the GPU kernels: the exact 32-bit Montgomery multiplication the
//! WGSL uses (its CPU port, tested against Plonky3), field-element encoding and input checks.
//!
//! # The field
//!
//! `p = 2^31 − 2^27 + 1 = 0x7800_0001` ([`P`]), two-adicity 27. Elements travel between the
//! renter, the GPU and the verifier in **canonical form**: one little-endian `u32` per element,
//! value in `[0, p)` — the representation of Plonky3's `PrimeField32::as_canonical_u32`.
//! Inputs with a word `≥ p` are refused before signing ([`check_canonical`],
//! [`InputError::NotCanonical`]).
//!
//! # Montgomery multiplication with 32-bit operations
//!
//! WGSL has no 64-bit integers and no `mul_hi`, so the kernels multiply with `R = 2^32` and
//! 16-bit limbs ([`mont_mul`] is the line-by-line CPU port of `bb_mont_mul` in
//! `wgsl/babybear.wgsl`). For `a, b < 2^31`:
//!
//! 1. **Product** `t = a·b < 2^62` as two words. With `a = a1·2^16 + a0`, `b = b1·2^16 + b0`
//!    (`a1, b1 < 2^15`): `lo = a0·b0 < 2^32`, `mid = a0·b1 + a1·b0 < 2·2^31 = 2^32` (no
//!    overflow), `hi = a1·b1 < 2^30`; `t_lo = lo + (mid << 16) mod 2^32` with carry
//!    `c = [t_lo < lo]`, `t_hi = hi + (mid >> 16) + c`.
//! 2. **Reduction** (Montgomery, as Plonky3's `monty_reduce`): `m = t_lo · μ mod 2^32` with
//!    `μ = p^{-1} mod 2^32 = 0x8800_0001` ([`MU`]); then `u = m·p` has the same low word as
//!    `t`, so `(t − u) / 2^32 = t_hi − u_hi` exactly, and `t_hi − u_hi ≡ a·b·2^{-32} (mod p)`.
//!    Since `t < 2^62 < p·2^32` and `u < p·2^32`, both `t_hi` and `u_hi` are below `p`: the
//!    result is `t_hi − u_hi`, plus `p` when `t_hi < u_hi`, in `[0, p)`.
//! 3. **`u_hi = ⌊m·p / 2^32⌋` without `mul_hi`**: `p = 0x7800·2^16 + 1`, so with
//!    `m = m1·2^16 + m0` and `x = m0·0x7800 < 2^31`:
//!    `m·p = (m1·0x7800 + (x >> 16))·2^32 + ((x << 16) mod 2^32) + m`, hence
//!    `u_hi = m1·0x7800 + (x >> 16) + [((x << 16) + m) mod 2^32 < m]`.
//!
//! That is 7 `u32` multiplications per product. `mont_mul(a, b) = a·b·2^{-32} mod p`, so the
//! kernels keep data canonical and store constants in Montgomery form `c·2^32 mod p`
//! ([`to_mont`]): `mont_mul(x, to_mont(c)) = x·c mod p` (NTT twiddles); Poseidon2 converts its
//! state in with `mont_mul(x, R² mod p)` ([`R2_MOD_P`]) and out with `mont_mul(x, 1)`.
//! Addition and subtraction are the same in both forms: `a + b < 2^32` for `a, b < p`, minus
//! `p` when `≥ p`; `a − b`, plus `p` when `a < b`.

use p3_baby_bear::BabyBear;
use p3_field::{PrimeCharacteristicRing, PrimeField32};

use super::SplitMix64;

/// The BabyBear prime `2^31 − 2^27 + 1`.
pub const P: u32 = 0x7800_0001;
/// `p^{-1} mod 2^32` (Plonky3's `MONTY_MU`).
pub const MU: u32 = 0x8800_0001;
/// `p >> 16`; the low 16 bits of `p` are `1`.
pub const P_HI: u32 = P >> 16;
/// `R mod p` with `R = 2^32`: the Montgomery form of 1.
pub const R_MOD_P: u32 = ((1u64 << 32) % P as u64) as u32;
/// `R² mod p`: `mont_mul(x, R2_MOD_P)` is the Montgomery form of `x`.
pub const R2_MOD_P: u32 = ((R_MOD_P as u64 * R_MOD_P as u64) % P as u64) as u32;
/// Plonky3's multiplicative generator of BabyBear (`F::GENERATOR`), the default coset shift.
pub const GENERATOR: u32 = 31;

/// Checks that a prepared job's dispatches, pass parameters and output size are exactly
/// the ones its parameters give (`expected`, prepared from them): what every field workload
/// validates before its job is signed.
///
/// # Errors
/// [`InputError::JobMismatch`].
pub(crate) fn same_dispatch(prepared: &super::Prepared, expected: &super::Prepared) -> Result<(), InputError> {
    if prepared.workgroups != expected.workgroups || prepared.uniform != expected.uniform || prepared.passes != expected.passes {
        return Err(InputError::JobMismatch("dispatches or pass parameters"));
    }
    if prepared.output != expected.output {
        return Err(InputError::JobMismatch("output size"));
    }
    Ok(())
}

/// Why a BabyBear job's parameters or input were refused (checked before signing).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// `log2` of the number of rows is outside the supported range.
    #[error("log2 of the NTT size is {log_n}, outside {min}..={max}")]
    LogSize {
        /// The requested `log2(n)`.
        log_n: u32,
        /// Smallest supported.
        min: u32,
        /// Largest supported.
        max: u32,
    },
    /// The number of columns is zero or over the cap.
    #[error("{columns} columns, outside 1..={max}")]
    Columns {
        /// Requested columns.
        columns: u32,
        /// The cap.
        max: u32,
    },
    /// The blowup (`2^log_blowup`) is over the cap, or the extended size is over the largest
    /// NTT size.
    #[error("blowup 2^{log_blowup} is not allowed (at most 2^{max}, and log2(n) + log2(blowup) at most {max_log_out})")]
    Blowup {
        /// Requested `log2(blowup)`.
        log_blowup: u32,
        /// Largest `log2(blowup)`.
        max: u32,
        /// Largest `log2` of the extended size.
        max_log_out: u32,
    },
    /// The coset shift is zero or not a canonical field element.
    #[error("coset shift {shift} is not a non-zero field element below p = {P}")]
    Shift {
        /// The shift.
        shift: u32,
    },
    /// The number of leaves (or states) is zero, over the cap, or (Merkle tree) not a power of two.
    #[error("{count} leaves/states not allowed: 1..={max}{}", if *.power_of_two { ", a power of two" } else { "" })]
    Count {
        /// Requested count.
        count: u32,
        /// The cap.
        max: u32,
        /// Whether a power of two is required.
        power_of_two: bool,
    },
    /// The leaf width (elements per leaf) is zero or over the cap (permutations: not 16).
    #[error("leaf width {width} not allowed (1..={max}; permutations take 16)")]
    LeafWidth {
        /// Requested width.
        width: u32,
        /// The cap.
        max: u32,
    },
    /// The input is not the length the parameters imply.
    #[error("input is {found} bytes, the parameters need {expected}")]
    InputLength {
        /// Bytes the parameters imply.
        expected: u64,
        /// Bytes given.
        found: u64,
    },
    /// A buffer of the job would break the default spec limits.
    #[error("the {what} would be {bytes} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// Which buffer (or "buffers in total").
        what: &'static str,
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// A word is not a canonical field element (`≥ p`).
    #[error(
        "element {index} is {value}, not a canonical BabyBear element (must be below p = {P})"
    )]
    NotCanonical {
        /// Index of the element (word) in its buffer.
        index: usize,
        /// Its value.
        value: u32,
    },
    /// A byte buffer's length is not a multiple of 4.
    #[error("{len} bytes is not a whole number of 4-byte field elements")]
    Unaligned {
        /// The length.
        len: usize,
    },
    /// The prepared job is not what this workload builds from its parameters (wrong kernel,
    /// dispatch, passes, tables or buffer sizes).
    #[error("the prepared job does not match its parameters: {0}")]
    JobMismatch(&'static str),
}

/// `a·b·2^{-32} mod p` for `a, b < 2^31`, in `[0, p)`: the CPU port of the kernels'
/// `bb_mont_mul`, operation for operation (see the module docs for the derivation).
pub const fn mont_mul(a: u32, b: u32) -> u32 {
    let a0 = a & 0xffff;
    let a1 = a >> 16;
    let b0 = b & 0xffff;
    let b1 = b >> 16;
    let lo = a0 * b0;
    let mid = a0 * b1 + a1 * b0;
    let hi = a1 * b1;
    let t_lo = lo.wrapping_add(mid << 16);
    let carry = (t_lo < lo) as u32;
    let t_hi = hi + (mid >> 16) + carry;
    let m = t_lo.wrapping_mul(MU);
    let m0 = m & 0xffff;
    let m1 = m >> 16;
    let x = m0 * P_HI;
    let y = (x << 16).wrapping_add(m);
    let u_hi = m1 * P_HI + (x >> 16) + (y < m) as u32;
    if t_hi < u_hi {
        t_hi.wrapping_sub(u_hi).wrapping_add(P)
    } else {
        t_hi - u_hi
    }
}

/// The Montgomery form `x·2^32 mod p` of `x < 2^31`.
pub const fn to_mont(x: u32) -> u32 {
    mont_mul(x, R2_MOD_P)
}

/// The canonical value of the Montgomery form `x`.
pub const fn from_mont(x: u32) -> u32 {
    mont_mul(x, 1)
}

/// `a + b mod p` for canonical `a, b` (the kernels' `bb_add`).
pub const fn add(a: u32, b: u32) -> u32 {
    let s = a + b;
    if s >= P {
        s - P
    } else {
        s
    }
}

/// `a − b mod p` for canonical `a, b` (the kernels' `bb_sub`).
pub const fn sub(a: u32, b: u32) -> u32 {
    if a < b {
        a.wrapping_sub(b).wrapping_add(P)
    } else {
        a - b
    }
}

/// The low `bits` bits of `x` in reverse order (`bits` in 1..=32), as the kernels' `bitrev`.
pub const fn bit_reverse(x: u32, bits: u32) -> u32 {
    x.reverse_bits() >> (32 - bits)
}

/// Checks that every word is a canonical field element.
///
/// # Errors
/// [`InputError::NotCanonical`] for the first word `≥ p`.
pub fn check_canonical(words: &[u32]) -> Result<(), InputError> {
    match words.iter().position(|&w| w >= P) {
        Some(index) => Err(InputError::NotCanonical {
            index,
            value: words[index],
        }),
        None => Ok(()),
    }
}

/// The field elements of a buffer of little-endian canonical `u32`s (a job's input or output).
///
/// # Errors
/// [`InputError::Unaligned`] if the length is not a multiple of 4,
/// [`InputError::NotCanonical`] for the first word `≥ p`.
pub fn decode_elements(bytes: &[u8]) -> Result<Vec<u32>, InputError> {
    if bytes.len() % 4 != 0 {
        return Err(InputError::Unaligned { len: bytes.len() });
    }
    let words: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    check_canonical(&words)?;
    Ok(words)
}

/// `count` uniformly random canonical field elements from `seed` (rejection sampling of 31-bit
/// [`SplitMix64`] words, so every seed gives the same elements everywhere).
pub fn random_elements(seed: u64, count: usize) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let w = rng.next_u32() >> 1;
        if w < P {
            out.push(w);
        }
    }
    out
}

/// Canonical words as Plonky3 field elements (words must be below `p`).
pub fn to_p3(words: &[u32]) -> Vec<BabyBear> {
    words.iter().map(|&w| BabyBear::new(w)).collect()
}

/// Plonky3 field elements as canonical words.
pub fn from_p3(elements: &[BabyBear]) -> Vec<u32> {
    elements
        .iter()
        .map(PrimeField32::as_canonical_u32)
        .collect()
}

/// The Montgomery form of a Plonky3 element.
pub fn p3_mont(x: BabyBear) -> u32 {
    to_mont(x.as_canonical_u32())
}

/// `x^e` in Plonky3's field.
pub fn p3_pow(x: BabyBear, e: u64) -> BabyBear {
    x.exp_u64(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p3_field::Field;

    /// The reference: Plonky3's multiplication.
    fn p3_mul(a: u32, b: u32) -> u32 {
        (BabyBear::new(a) * BabyBear::new(b)).as_canonical_u32()
    }

    #[test]
    fn constants() {
        assert_eq!(P, (1 << 31) - (1 << 27) + 1);
        assert_eq!(P.wrapping_mul(MU), 1, "MU is p^-1 mod 2^32");
        assert_eq!(P & 0xffff, 1);
        assert_eq!(R_MOD_P, 0x0fff_fffe);
        assert_eq!(
            BabyBear::new(R_MOD_P),
            BabyBear::new(1 << 16) * BabyBear::new(1 << 16)
        );
        assert_eq!(BabyBear::new(R2_MOD_P), BabyBear::new(R_MOD_P).square());
        assert_eq!(BabyBear::new(GENERATOR), BabyBear::GENERATOR);
    }

    const EDGES: [u32; 10] = [
        0,
        1,
        2,
        3,
        0xffff,
        0x1_0000,
        P - 2,
        P - 1,
        P >> 1,
        0x7800_0000,
    ];

    #[test]
    fn edge_values_match_plonky3() {
        for &a in &EDGES {
            for &b in &EDGES {
                let want = p3_mul(a, b);
                assert_eq!(mont_mul(a, to_mont(b)), want, "{a} * {b}");
                assert_eq!(
                    from_mont(mont_mul(to_mont(a), to_mont(b))),
                    want,
                    "{a} * {b} in Montgomery form"
                );
                assert_eq!(
                    add(a, b),
                    (BabyBear::new(a) + BabyBear::new(b)).as_canonical_u32()
                );
                assert_eq!(
                    sub(a, b),
                    (BabyBear::new(a) - BabyBear::new(b)).as_canonical_u32()
                );
            }
            assert_eq!(from_mont(to_mont(a)), a);
        }
        // Inputs up to 2^31 - 1 (not reduced) still give a reduced, correct result.
        for a in [P, P + 1, (1 << 31) - 1] {
            let b = (1 << 31) - 1;
            let want =
                ((u128::from(a) * u128::from(b) * u128::from(inv_r())) % u128::from(P)) as u32;
            assert_eq!(mont_mul(a, b), want);
        }
    }

    /// `2^{-32} mod p`, from Plonky3.
    fn inv_r() -> u32 {
        BabyBear::new(R_MOD_P).inverse().as_canonical_u32()
    }

    #[test]
    fn a_million_random_pairs_match_plonky3() {
        let inv_r = u128::from(inv_r());
        let mut rng = SplitMix64::new(0xB4B7_BEA2);
        for i in 0..1_000_000u32 {
            let a = (rng.next_u32() >> 1) % P;
            let b = (rng.next_u32() >> 1) % P;
            let got = mont_mul(a, b);
            // The definition: a·b·2^-32 mod p (checked in wide integers on a subset).
            if i % 16 == 0 {
                assert_eq!(
                    u128::from(got),
                    u128::from(a) * u128::from(b) * inv_r % u128::from(P),
                    "{a} {b}"
                );
            }
            assert_eq!(
                from_mont(mont_mul(to_mont(a), to_mont(b))),
                p3_mul(a, b),
                "{a} * {b}"
            );
            assert_eq!(mont_mul(a, to_mont(b)), p3_mul(a, b), "{a} * {b}");
            assert_eq!(
                add(a, b),
                (BabyBear::new(a) + BabyBear::new(b)).as_canonical_u32()
            );
            assert_eq!(
                sub(a, b),
                (BabyBear::new(a) - BabyBear::new(b)).as_canonical_u32()
            );
        }
    }

    #[test]
    fn bit_reverse_small() {
        assert_eq!(bit_reverse(1, 10), 512);
        assert_eq!(bit_reverse(0b110, 3), 0b011);
        assert_eq!(bit_reverse(0xffff_fffe, 32), 0x7fff_ffff);
        for x in 0..1024 {
            assert_eq!(bit_reverse(x, 10) as usize, p3_util_reverse(x as usize, 10));
        }
    }

    fn p3_util_reverse(x: usize, bits: usize) -> usize {
        x.reverse_bits() >> (usize::BITS as usize - bits)
    }

    #[test]
    fn canonical_checks_and_decoding() {
        assert_eq!(check_canonical(&[0, 1, P - 1]), Ok(()));
        assert_eq!(
            check_canonical(&[0, P, 1]),
            Err(InputError::NotCanonical { index: 1, value: P })
        );
        assert_eq!(decode_elements(&[1, 0, 0, 0, 2, 0, 0, 0]), Ok(vec![1, 2]));
        assert_eq!(
            decode_elements(&[1, 0, 0]),
            Err(InputError::Unaligned { len: 3 })
        );
        assert_eq!(
            decode_elements(&u32::MAX.to_le_bytes()),
            Err(InputError::NotCanonical {
                index: 0,
                value: u32::MAX
            })
        );
        let r = random_elements(5, 1000);
        assert_eq!(r.len(), 1000);
        assert!(r.iter().all(|&x| x < P));
        assert_eq!(r, random_elements(5, 1000));
        assert_ne!(r, random_elements(6, 1000));
        assert_eq!(from_p3(&to_p3(&r)), r);
        assert!(!InputError::NotCanonical { index: 0, value: P }
            .to_string()
            .is_empty());
    }
}
