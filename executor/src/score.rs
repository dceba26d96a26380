//! The adapter benchmark score: the tiled u32 matmul throughput a worker measures at start-up
//! and puts in its offer, and the coarse class that a re-run on the same kind of adapter
//! reproduces.

use crate::exec::{Checks, ExecError, ExecLimits, Plan};
use crate::gpu::Gpu;
use crate::workloads::{Matmul, Workload};
use std::time::Duration;

/// Matrix order of the score run: big enough to fill a data-centre GPU's SMs with work
/// groups, small enough to finish in well under a second on lavapipe.
pub const SCORE_N: u32 = 1024;
/// Timed runs; the median is reported.
pub const RUNS: usize = 5;
/// Each timed run lasts at least this long (dispatches are repeated to reach it).
pub const MIN_RUN: Duration = Duration::from_millis(100);

/// An adapter's measured score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Median tiled-matmul throughput, in 10^9 u32 operations per second (a multiply-add is 2).
    pub matmul_gops: f64,
    /// `floor(log2(matmul_gops))`: one class per doubling of throughput.
    pub class: u32,
}

impl Score {
    /// The score for a measured throughput.
    pub fn from_gops(matmul_gops: f64) -> Self {
        let class = if matmul_gops >= 1.0 { matmul_gops.log2().floor() as u32 } else { 0 };
        Self { matmul_gops, class }
    }
}

/// Operations of one `n × n × n` matmul (a multiply-add counts 2).
pub fn matmul_ops(n: u32) -> f64 {
    2.0 * f64::from(n).powi(3)
}

/// Median throughput (GOP/s) of `plan`, one dispatch computing `ops` operations.
///
/// # Errors
/// Any [`ExecError`] of the dispatches.
pub fn median_gops(plan: &Plan<'_>, ops: f64, runs: usize, min_run: Duration) -> Result<f64, ExecError> {
    let timeout = Duration::from_secs(120);
    let once = plan.time_dispatches(1, timeout)?; // warm-up, and a first estimate
    let reps = ((min_run.as_secs_f64() / once.as_secs_f64().max(1e-6)).ceil() as u32).clamp(1, 10_000);
    let mut rates: Vec<f64> = (0..runs.max(1))
        .map(|_| plan.time_dispatches(reps, timeout).map(|t| ops * f64::from(reps) / t.as_secs_f64() / 1e9))
        .collect::<Result<_, _>>()?;
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}

/// Measures `gpu`'s score.
///
/// # Errors
/// Any [`ExecError`] of the benchmark job.
pub fn measure(gpu: &Gpu) -> Result<Score, ExecError> {
    let prepared = Matmul { n: SCORE_N, seed: 0x5C0 }.prepare();
    let (spec, inputs) = prepared.to_job();
    let plan = Plan::new(gpu, &spec, &inputs, &ExecLimits::default(), Checks::TrustedLibraryKernel)?;
    Ok(Score::from_gops(median_gops(&plan, matmul_ops(SCORE_N), RUNS, MIN_RUN)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_is_one_per_doubling() {
        assert_eq!(Score::from_gops(0.5).class, 0);
        assert_eq!(Score::from_gops(1.0).class, 0);
        assert_eq!(Score::from_gops(15.9).class, 3);
        assert_eq!(Score::from_gops(16.0).class, 4);
        assert_eq!(Score::from_gops(1500.0).class, 10);
    }
}
