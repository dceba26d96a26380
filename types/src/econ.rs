//! The money rules, as pure functions the contract applies and clients predict: escrow,
//! stake locks and bonds sized against collusion, fees, penalties, the price index and the
//! stake weight of the verifier draw.
//!
//! Why the lock is what it is. A provider that skips the work on the sampled task(s) saves
//! at most the job's value V. It is caught only if the check happens (probability ≥ p) and
//! both verifiers that can decide are honest: with a coalition holding a share s of the
//! verifier weight that is (1 − s)². Caught, it loses its lock L and the payment V it would
//! have had. Cheating loses in expectation when V < p·(1 − s)²·(L + V), i.e.
//! `L > V · (1 − p·(1−s)²) / (p·(1−s)²)`. [`lock_for`] uses s = [`COLLUSION_BPS`] (20 %):
//! at p = 10 % the lock is 14.6 V (the v1 protocol's 9 V lost to a 2 % coalition).
use crate::{Amount, BlockNumber, BPS, COLLUSION_BPS, MAX_DRAWS, TIMEOUT_PENALTY_BPS, UNITS_PER_PLANCK, UNITS_PER_WND, WEIGHT_UNIT};

/// `a × b / c`, rounded down, saturating at `u128::MAX`; 0 when `c` is 0. Exact while
/// `(a mod c) × b` fits in 128 bits (every use here: `b` and `c` are at most 10^8, or
/// `b` is 10^4 and `c` any amount).
pub fn mul_div(a: Amount, b: Amount, c: Amount) -> Amount {
    if c == 0 {
        return 0;
    }
    (a / c).saturating_mul(b).saturating_add((a % c).saturating_mul(b) / c)
}

/// `value × bps / 10,000`, rounded down.
pub fn bps_of(value: Amount, bps: u16) -> Amount {
    mul_div(value, Amount::from(bps), Amount::from(BPS))
}

/// `(1 − s)²` in basis points for the collusion share s.
const HONEST_PAIR_BPS: u128 = (BPS - COLLUSION_BPS) as u128 * (BPS - COLLUSION_BPS) as u128 / BPS as u128;

/// The stake a job of `value` at check rate `rate_bps` locks:
/// `max(min_stake, V · (1 − p(1−s)²) / (p(1−s)²), 2 · verifier fee of V)`; an unchecked job
/// (rate 0) locks `min_stake` (it can only time out). The last term makes a proven lie pay
/// both verifiers' fees out of the lock whatever the sample, so the renter of a cheated job
/// gets back exactly its escrow; it binds only at high check rates (p ≳ 25 % at a 100 %
/// verifier fee).
pub fn lock_for(value: Amount, rate_bps: u16, verifier_fee_bps: u16, min_stake: Amount) -> Amount {
    if rate_bps == 0 {
        return min_stake;
    }
    let pq = u128::from(rate_bps.min(BPS)) * HONEST_PAIR_BPS; // p·(1−s)² in bps²
    let whole = u128::from(BPS) * u128::from(BPS);
    // Rounded up by one unit, so the expected gain of cheating is strictly negative.
    mul_div(value, whole - pq, pq).saturating_add(1).max(verifier_fee(value, verifier_fee_bps).saturating_mul(2)).max(min_stake)
}

/// A verifier's fee for re-executing work worth `work_value`.
pub fn verifier_fee(work_value: Amount, verifier_fee_bps: u16) -> Amount {
    bps_of(work_value, verifier_fee_bps)
}

/// The bond a drawn verifier locks: twice its fee, at least `min_stake`. A verifier that
/// lies (or, in a dispute, matches nobody) loses it; a framer needs two of its own drawn
/// in a row and loses this bond whenever the second is honest.
pub fn bond_for(fee: Amount, min_stake: Amount) -> Amount {
    fee.saturating_mul(2).max(min_stake)
}

/// The escrow `create_job` takes: the value at the maximum price plus two verifier fees for
/// the whole batch (the most two rounds of checks can cost), rounded up to whole plancks.
/// `None` on overflow.
pub fn escrow_for(tasks: u32, units_per_task: u64, max_price: Amount, verifier_fee_bps: u16) -> Option<Amount> {
    let value = max_price.checked_mul(Amount::from(units_per_task))?.checked_mul(Amount::from(tasks))?;
    let raw = value.checked_add(verifier_fee(value, verifier_fee_bps).checked_mul(2)?)?;
    raw.div_ceil(UNITS_PER_PLANCK).checked_mul(UNITS_PER_PLANCK)
}

/// The protocol's cut of a provider's payout.
pub fn protocol_fee(value: Amount, protocol_fee_bps: u16) -> Amount {
    bps_of(value, protocol_fee_bps)
}

/// What a provider loses (to the treasury) for letting an assigned job time out.
pub fn timeout_penalty(lock: Amount) -> Amount {
    bps_of(lock, TIMEOUT_PENALTY_BPS)
}

/// The availability fee: what a provider deposits to report inputs unavailable, and what
/// the renter pays each of those who tried when a verifier confirms: a tenth of one task's
/// verifier fee (trying to fetch is cheaper than computing), at least one planck. Its size
/// does not decide who gains: a provider reporting falsely with a colluding verifier wins
/// 2 fees with probability s and loses its 1-fee deposit otherwise, a loss for s < 1/3.
pub fn availability_fee(task_value: Amount, verifier_fee_bps: u16) -> Amount {
    (verifier_fee(task_value, verifier_fee_bps) / 10).max(UNITS_PER_PLANCK)
}

/// An offer's GPU class: `floor(log2(benchmark score))`, 0 for a score of 0 or 1.
pub fn gpu_class(benchmark_score: u32) -> u8 {
    benchmark_score.checked_ilog2().unwrap_or(0) as u8
}

/// Settled value at which one settlement moves the price index halfway to its price.
pub const PRICE_INDEX_DEPTH: Amount = 100 * UNITS_PER_WND;

/// The price index of a class after a job of `value` settled at `price`: the old index moved
/// towards the price by `value / (value + PRICE_INDEX_DEPTH)`, the price first clamped to
/// between half and twice the index. A job's weight is its size, and an absurd price buys
/// no leverage: moving the index by a fifth takes 25 WND of settled value (0.5 WND of
/// protocol fees), whatever price a wash trader names.
pub fn price_index_next(old: Option<Amount>, price: Amount, value: Amount) -> Amount {
    let Some(old) = old else { return price };
    let price = price.clamp(old / 2, old.saturating_mul(2));
    let den = value.saturating_add(PRICE_INDEX_DEPTH);
    if price >= old {
        old + mul_div(price - old, value, den)
    } else {
        old - mul_div(old - price, value, den)
    }
}

/// A stake's weight in verifier draws (whole µWND).
pub fn weight(stake: Amount) -> u64 {
    u64::try_from(stake / WEIGHT_UNIT).unwrap_or(u64::MAX)
}

/// The stake-snapshot epoch of a block.
pub fn epoch(block: BlockNumber, epoch_blocks: u32) -> u32 {
    block / epoch_blocks.max(1)
}

/// The longest compute window a job may ask for: every draw after the commitment must
/// happen within one epoch of it (its stake snapshot is kept that long). After the
/// commitment a job lives at most `R + 2 · MAX_DRAWS · (V + 2R)` blocks (seed reveal, then
/// per round up to `MAX_DRAWS` draws, each waiting up to R to be made, V to commit and R
/// to reveal).
pub fn max_compute_blocks(epoch_blocks: u32, reveal_window: u32) -> u32 {
    let d = 2 * u32::from(MAX_DRAWS);
    epoch_blocks.saturating_sub(reveal_window.saturating_mul(1 + 2 * d)) / d
}

/// The one WND every reputation score is measured against.
pub const REPUTATION_BASE: Amount = UNITS_PER_WND;

#[cfg(test)]
mod tests {
    use super::*;

    const V: Amount = 10 * UNITS_PER_WND;

    #[test]
    fn lock_makes_cheating_lose_against_a_20_percent_coalition() {
        for p in [100u16, 500, 1_000, 2_500, 5_000, 10_000] {
            let l = lock_for(V, p, 0, 0);
            let pf = f64::from(p) / 1e4;
            let caught = pf * 0.8 * 0.8;
            // Gain V always; lose lock + payment when caught.
            let ev = V as f64 - caught * (l as f64 + V as f64);
            assert!(ev <= 0.0, "p={p} lock={l} ev={ev}");
            // Exactly: V < p(1-s)^2 (L + V) in integers (bps^3 scale).
            let lhs = V * 1_000_000_000_000;
            let rhs = u128::from(p) * 6_400 * 10_000 * (l + V);
            assert!(lhs < rhs, "p={p}");
            // ... and not by a wide margin (the lock is not arbitrarily large).
            assert!(ev > -(V as f64) * 0.01, "p={p} ev={ev}");
        }
        assert_eq!(lock_for(V, 1_000, 10_000, 0), V * 14_625 / 1_000 + 1);
        assert_eq!(lock_for(1, 0, 10_000, 5), 5);
        assert_eq!(lock_for(1, 10_000, 10_000, 5), 5);
        // At a 100 % rate the collusion term is 0.5625 V; both verifiers' fees (2 V) bind.
        assert_eq!(lock_for(V, 10_000, 0, 0), V * 5_625 / 10_000 + 1);
        assert_eq!(lock_for(V, 10_000, 10_000, 0), 2 * V);
        assert_eq!(lock_for(V, 10_000, 5_000, 0), V);
    }

    #[test]
    fn escrow_covers_value_and_two_rounds_of_checks_in_whole_plancks() {
        let e = escrow_for(100, 3, 1_000_001, 10_000).unwrap();
        let value = 100 * 3 * 1_000_001u128;
        assert!(e >= 3 * value && e.is_multiple_of(UNITS_PER_PLANCK) && e - 3 * value < UNITS_PER_PLANCK);
        assert!(escrow_for(u32::MAX, u64::MAX, u128::MAX / 2, 100).is_none());
    }

    #[test]
    fn price_index_moves_by_settled_value() {
        let p0 = 1_000u128;
        assert_eq!(price_index_next(None, p0, 1), p0);
        // A job worth PRICE_INDEX_DEPTH moves it halfway; a 1 WND wash trade about 1 %,
        // however absurd its price.
        assert_eq!(price_index_next(Some(p0), 3 * p0 / 2, PRICE_INDEX_DEPTH), 5 * p0 / 4);
        let wash = price_index_next(Some(p0), 1_000 * p0, UNITS_PER_WND);
        assert!(wash < p0 + p0 / 50, "{wash}");
        assert_eq!(price_index_next(Some(p0), 1_000 * p0, PRICE_INDEX_DEPTH), 3 * p0 / 2);
        assert_eq!(price_index_next(Some(4 * p0), 0, PRICE_INDEX_DEPTH), 3 * p0);
    }

    #[test]
    fn class_follows_score_and_windows_fit_the_epoch() {
        assert_eq!(gpu_class(0), 0);
        assert_eq!(gpu_class(6), 2);
        assert_eq!(gpu_class(20_423), 14);
        let v = max_compute_blocks(14_400, 20);
        assert!(20 + 2 * 3 * (v + 40) <= 14_400 && 20 + 2 * 3 * (v + 1 + 40) > 14_400 - 6);
        assert_eq!(max_compute_blocks(10, 20), 0);
    }

    #[test]
    fn mul_div_is_exact_and_saturates() {
        assert_eq!(mul_div(u128::MAX, 1, 1), u128::MAX);
        assert_eq!(mul_div(u128::MAX, 2, 1), u128::MAX);
        assert_eq!(mul_div(10, 3, 4), 7);
        assert_eq!(mul_div(7, 0, 0), 0);
        assert_eq!(bps_of(12_345, 200), 246);
    }
}
