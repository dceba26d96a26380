//! Which tasks of a job are checked, who verifies them, and what a verifier answers: the
//! seeds and the sample every party recomputes identically.
//!
//! - The **check seed** is `sha256(r ‖ c_p)` when the renter reveals its seed `r` (neither
//!   side knows it before the commitment `c_p` is on chain), or, when the renter stays
//!   silent, `sha256(c_p ‖ job_id LE ‖ hash(commit block))` with at least one task sampled.
//! - **Task sampling**: task `i` is checked when word `i mod 8` (u32 LE) of
//!   `sha256("S" ‖ check_seed ‖ ⌊i/8⌋ as u32 LE)`, mod 10,000, is below the check rate. Each
//!   task is checked with probability p (up to 2·10⁻⁶), independently, and one hash serves
//!   eight tasks, so the contract's cost of recomputing the sample is N/8 hashes.
//! - The **draw seed** of a verifier draw mixes the hash of a block sealed *after* the
//!   event that made the draw due; no party knows it when it can still act on it.
//! - A verifier's **answer** is `sha256("cmp" ‖ job_id LE ‖ leaf_{i_1} ‖ … ‖ leaf_{i_k})`
//!   over the sampled tasks in ascending order: equal answers mean equal outputs, and an
//!   answer reveals no output root.
use crate::hash::Sha256;
use crate::{Hash32, BPS};
use alloc::vec::Vec;

/// The check seed from the renter's revealed seed and the provider's commitment.
pub fn check_seed<H: Sha256>(seed: &Hash32, commitment: &Hash32) -> Hash32 {
    H::hash(&[seed, commitment])
}

/// The check seed when the renter stayed silent.
pub fn fallback_seed<H: Sha256>(commitment: &Hash32, job_id: u64, beacon: &Hash32) -> Hash32 {
    H::hash(&[commitment, &job_id.to_le_bytes(), beacon])
}

/// The sampled task indices, ascending. With `at_least_one`, an empty sample becomes one
/// task chosen by the seed (a silent renter's job is always checked).
pub fn sampled<H: Sha256>(check_seed: &Hash32, tasks: u32, rate_bps: u16, at_least_one: bool) -> Vec<u32> {
    let mut out = Vec::new();
    if rate_bps > 0 {
        for chunk in 0..tasks.div_ceil(8) {
            let h = H::hash(&[b"S", check_seed, &chunk.to_le_bytes()]);
            for t in 0..8u32 {
                let i = chunk * 8 + t;
                if i >= tasks {
                    break;
                }
                let w = u32::from_le_bytes([h[4 * t as usize], h[4 * t as usize + 1], h[4 * t as usize + 2], h[4 * t as usize + 3]]);
                if w % u32::from(BPS) < u32::from(rate_bps) {
                    out.push(i);
                }
            }
        }
    }
    if out.is_empty() && at_least_one && tasks > 0 {
        let h = H::hash(&[b"S1", check_seed]);
        out.push(u32::from_le_bytes([h[0], h[1], h[2], h[3]]) % tasks);
    }
    out
}

/// The seed of draw number `draw` (1-based) of `round` for a job.
pub fn draw_seed<H: Sha256>(job_id: u64, round: u8, draw: u8, commitment: &Hash32, beacon: &Hash32) -> Hash32 {
    H::hash(&[b"D", &job_id.to_le_bytes(), &[round, draw], commitment, beacon])
}

/// The answer over the sampled tasks' leaves (ascending task order).
pub fn answer<H: Sha256>(job_id: u64, leaves: &[Hash32]) -> Hash32 {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(leaves.len() + 2);
    let id = job_id.to_le_bytes();
    parts.push(b"cmp");
    parts.push(&id);
    for l in leaves {
        parts.push(l);
    }
    H::hash(&parts)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::hash::HostSha256 as H;

    #[test]
    fn rate_zero_samples_nothing_full_rate_everything() {
        let s = [3u8; 32];
        assert!(sampled::<H>(&s, 100, 0, false).is_empty());
        assert_eq!(sampled::<H>(&s, 100, 0, true).len(), 1);
        assert_eq!(sampled::<H>(&s, 100, BPS, false), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn sample_is_ascending_and_its_size_follows_the_rate() {
        let mut total = 0usize;
        let runs = 400;
        for r in 0..runs {
            let seed = H::hash(&[b"seed", &(r as u32).to_le_bytes()]);
            let s = sampled::<H>(&seed, 1000, 1_000, false);
            assert!(s.windows(2).all(|w| w[0] < w[1]));
            assert!(s.iter().all(|&i| i < 1000));
            total += s.len();
        }
        // E = 100 per run, sd of the mean over 400 runs ≈ 0.47: a 5 sd band.
        let mean = total as f64 / runs as f64;
        assert!((mean - 100.0).abs() < 2.5, "mean {mean}");
    }

    #[test]
    fn answers_differ_when_any_leaf_or_the_job_differs() {
        let l = [[1u8; 32], [2u8; 32]];
        let a = answer::<H>(7, &l);
        assert_ne!(a, answer::<H>(8, &l));
        assert_ne!(a, answer::<H>(7, &[[1u8; 32], [3u8; 32]]));
        assert_ne!(a, answer::<H>(7, &[[2u8; 32], [1u8; 32]]));
    }
}
