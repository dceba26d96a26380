//! The worker's Prometheus metrics, served at `/metrics` on its endpoint.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

/// Everything the worker counts.
pub struct Metrics {
    registry: Registry,
    /// Transactions sent, by step (`accepted`, `bid`, `committed`, …).
    pub steps: Family<ActionLabel, Counter>,
    /// Failed steps and passes, by reason.
    pub failures: Family<ReasonLabel, Counter>,
    /// Chain RPC errors (connection drops, failed calls).
    pub rpc_errors: Counter,
    /// Seconds of kernel execution on the GPU.
    pub gpu_seconds: Counter<f64, AtomicU64>,
    /// Jobs run before signing for them that finished (a trial that failed counts in
    /// `failures` under its reason, e.g. `timeout`).
    pub trials: Counter,
    /// Long trials stopped for a trial with a smaller static bound (each starts again later).
    pub trial_preemptions: Counter,
    /// Live jobs the worker tracks, by contract state.
    pub jobs: Family<StateLabel, Gauge>,
    /// Jobs this worker took part in that ended, by final state.
    pub jobs_finished: Family<StateLabel, Counter>,
    /// WND withdrawn to the provider's account.
    pub withdrawn_wnd: Counter<f64, AtomicU64>,
    /// 1 while the GPU passes its health probe (the offer is listed), 0 while it does not
    /// (the offer is withdrawn).
    pub gpu_healthy: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("capacloud_worker");
        let m = Self {
            steps: Family::default(),
            failures: Family::default(),
            rpc_errors: Counter::default(),
            gpu_seconds: Counter::default(),
            trials: Counter::default(),
            trial_preemptions: Counter::default(),
            jobs: Family::default(),
            jobs_finished: Family::default(),
            withdrawn_wnd: Counter::default(),
            gpu_healthy: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("steps", "Transactions sent, by step", m.steps.clone());
        registry.register("failures", "Failed steps and passes, by reason", m.failures.clone());
        registry.register("rpc_errors", "Chain RPC errors", m.rpc_errors.clone());
        registry.register("gpu_seconds", "Seconds of kernel execution on the GPU", m.gpu_seconds.clone());
        registry.register("trials", "Jobs run before signing for them that finished", m.trials.clone());
        registry.register("trial_preemptions", "Long trials stopped for a trial with a smaller static bound", m.trial_preemptions.clone());
        registry.register("gpu_healthy", "1 while the GPU passes its health probe and the offer is listed", m.gpu_healthy.clone());
        m.gpu_healthy.set(1);
        registry.register("jobs", "Live jobs tracked, by contract state", m.jobs.clone());
        registry.register("jobs_finished", "Jobs taken part in that ended, by final state", m.jobs_finished.clone());
        registry.register("withdrawn_wnd", "WND withdrawn to the provider's account", m.withdrawn_wnd.clone());
        Self { registry, ..m }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// Counts a failure with `reason`.
    pub fn fail(&self, reason: &'static str) {
        self.failures.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// The value of a labelled counter (tests and logs).
    pub fn step_count(&self, action: &'static str) -> u64 {
        self.steps.get_or_create(&ActionLabel { action }).get()
    }

    /// How many failures with `reason` were counted (tests and logs).
    pub fn failure_count(&self, reason: &'static str) -> u64 {
        self.failures.get_or_create(&ReasonLabel { reason }).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_metric_with_its_labels() {
        let m = Metrics::default();
        m.steps.get_or_create(&ActionLabel { action: "committed" }).inc();
        m.fail("rpc");
        m.rpc_errors.inc();
        m.gpu_seconds.inc_by(1.5);
        m.trials.inc();
        m.trial_preemptions.inc_by(2);
        m.jobs.get_or_create(&StateLabel { state: "Assigned".into() }).set(2);
        let text = m.encode();
        for line in [
            "capacloud_worker_steps_total{action=\"committed\"} 1",
            "capacloud_worker_failures_total{reason=\"rpc\"} 1",
            "capacloud_worker_rpc_errors_total 1",
            "capacloud_worker_gpu_seconds_total 1.5",
            "capacloud_worker_trials_total 1",
            "capacloud_worker_trial_preemptions_total 2",
            "capacloud_worker_jobs{state=\"Assigned\"} 2",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
