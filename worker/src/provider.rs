//! The provider's job loop: tracks the marketplace's live jobs, takes the ones its offer
//! qualifies for, runs them on the GPU, commits and reveals results, does verifier duty,
//! and withdraws earnings above a threshold.
//!
//! The loop is driven by on-chain state, not by remembered events: every pass reads each
//! live job and performs the one step the contract expects from this provider, if any.
//! That makes it idempotent: a restarted worker resumes where the chain says it is and
//! never submits a step twice (a step the chain already has is not "expected" any more).
//! Salts are derived from the worker's key and the job id, and outputs are deterministic,
//! so a restart recomputes the same commitment. Marketplace events wake the loop at once;
//! a slow poll covers events missed while the connection was down.
//!
//! What the worker knows between passes ([`WorkerState`]: the next job id to look at, the
//! live job ids, the results it computed) is persisted after every change, so a restart
//! neither rescans ended jobs nor recomputes finished kernels.

use crate::metrics::{ActionLabel, Metrics, StateLabel};
use capacloud_client::blob::{self, BlobStore, LocalStore, Resolver};
use capacloud_client::chain::{Chain, ChainError};
use capacloud_client::marketplace::{result_commitment, Amount, Hash32, Job, JobState};
use capacloud_client::Marketplace;
use capacloud_executor::spec::{BindingKind, Determinism, JobSpec};
use capacloud_executor::{ExecLimits, Gpu};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subxt::utils::H160;

/// Why the worker could not take a step.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Blob(#[from] blob::BlobError),
    #[error("job {job}: spec does not decode or check: {reason}")]
    BadSpec { job: u64, reason: String },
    #[error("job {job}: execution failed: {source}")]
    Exec {
        job: u64,
        #[source]
        source: capacloud_executor::ExecError,
    },
    #[error("job {job}: the executor task died: {reason}")]
    Join { job: u64, reason: String },
    #[error("job {job}: {source}")]
    Isolated {
        job: u64,
        #[source]
        source: crate::isolate::IsolateError,
    },
    #[error("worker state file {path}: {reason}")]
    State { path: PathBuf, reason: String },
}

impl WorkerError {
    /// The failure's label in the `failures` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            WorkerError::Chain(c) if c.is_connection() => "rpc",
            WorkerError::Chain(ChainError::Reverted { .. } | ChainError::Dispatch { .. }) => "refused",
            WorkerError::Chain(_) => "chain",
            WorkerError::Blob(_) => "blob",
            WorkerError::BadSpec { .. } => "bad_spec",
            WorkerError::Exec { source: capacloud_executor::ExecError::Timeout(_), .. } => "timeout",
            WorkerError::Isolated { source: crate::isolate::IsolateError::Timeout(_), .. } => "timeout",
            WorkerError::Exec { .. } | WorkerError::Join { .. } | WorkerError::Isolated { .. } => "exec",
            WorkerError::State { .. } => "state",
        }
    }
}

/// How the worker behaves.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The offer this worker serves.
    pub offer_id: u64,
    /// Price per work unit it bids on open jobs (contract units).
    pub bid_price: u128,
    /// Secret mixed into result salts (derive it from the worker's key).
    pub salt_secret: Hash32,
    /// Test/demo only: commit a made-up root without computing (a cheating provider).
    pub cheat: bool,
    /// Longest time between passes when no event arrives.
    pub poll: Duration,
    pub limits: ExecLimits,
    /// Withdraw earnings whenever the withdrawable balance exceeds this (contract units).
    pub withdraw_above: Option<Amount>,
    /// Where [`WorkerState`] is persisted (none: kept in memory only).
    pub state_file: Option<PathBuf>,
    /// Run kernels in child processes of this executable (the worker binary), see
    /// [`crate::isolate`]; `None` runs them in this process.
    pub isolate: Option<PathBuf>,
}

/// A result the worker has computed for a job (as provider or as verifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Computed {
    #[serde(with = "hex32")]
    pub root: Hash32,
    #[serde(with = "hex32")]
    pub salt: Hash32,
}

mod hex32 {
    pub fn serialize<S: serde::Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        hex::decode(&s).ok().and_then(|v| v.try_into().ok()).ok_or_else(|| serde::de::Error::custom("expected 32 hex bytes"))
    }
}

/// What the worker remembers between passes and across restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkerState {
    /// Jobs below this id were seen; they are live or ended.
    pub next_job: u64,
    /// Jobs seen and not yet ended.
    pub live: BTreeSet<u64>,
    /// Results computed for live jobs.
    pub computed: BTreeMap<u64, Computed>,
}

impl WorkerState {
    /// Loads the state from `path`; a missing file is a fresh state.
    ///
    /// # Errors
    /// [`WorkerError::State`] for an unreadable or corrupt file (never silently reset).
    pub fn load(path: &std::path::Path) -> Result<Self, WorkerError> {
        let err = |reason: String| WorkerError::State { path: path.into(), reason };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// Writes the state to `path` atomically (temp file + rename).
    ///
    /// # Errors
    /// [`WorkerError::State`].
    pub fn save(&self, path: &std::path::Path) -> Result<(), WorkerError> {
        let err = |reason: String| WorkerError::State { path: path.into(), reason };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| err(e.to_string()))?;
        std::fs::write(tmp.path(), serde_json::to_vec_pretty(self).expect("state serializes")).map_err(|e| err(e.to_string()))?;
        tmp.persist(path).map_err(|e| err(e.error.to_string()))?;
        Ok(())
    }
}

/// The largest encoded spec the limits allow: its WGSL, and per binding a URI and a uniform
/// block, with room for the fixed fields.
fn max_spec_bytes(l: &capacloud_executor::spec::SpecLimits) -> u64 {
    (l.max_wgsl_bytes + l.max_bindings * (l.max_uniform_bytes + 4096) + 4096) as u64
}

/// Jobs one pass works on at the same time (their transactions share the block).
pub const MAX_CONCURRENT_JOBS: usize = 8;

/// What a pass found at one job.
enum Visit {
    /// No such job.
    Gone,
    /// Ended (now forgotten).
    Ended,
    Unreadable(ChainError),
    /// Live in this state; the step taken, if any.
    Live(JobState, Result<Option<&'static str>, WorkerError>),
}

/// What one pass did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub actions: Vec<(u64, &'static str)>,
    pub errors: Vec<(u64, String)>,
    /// Amount withdrawn in this pass (contract units).
    pub withdrawn: Amount,
}

/// The job loop of one provider.
pub struct Worker<'a> {
    chain: &'a Chain,
    market: Marketplace<'a>,
    gpu: Arc<Gpu>,
    store: LocalStore,
    resolver: Resolver,
    cfg: WorkerConfig,
    me: H160,
    state: Mutex<WorkerState>,
    /// What the state file holds (it is rewritten only when the state changed).
    saved: Mutex<Option<WorkerState>>,
    metrics: Arc<Metrics>,
    /// One kernel at a time on the GPU: concurrent jobs queue here, not in VRAM.
    gpu_slot: tokio::sync::Semaphore,
}

impl<'a> Worker<'a> {
    /// A worker acting as `chain`'s signer on the marketplace at `market`, keeping outputs
    /// (and fetched inputs) in `store`. Loads its persisted state, if any.
    ///
    /// # Errors
    /// [`WorkerError::State`] when the state file exists but cannot be read.
    pub fn new(chain: &'a Chain, market: H160, gpu: Arc<Gpu>, store: LocalStore, cfg: WorkerConfig, metrics: Arc<Metrics>) -> Result<Self, WorkerError> {
        let state = match &cfg.state_file {
            Some(path) => WorkerState::load(path)?,
            None => WorkerState::default(),
        };
        let cfg_loaded = cfg.state_file.as_ref().is_some_and(|p| p.exists());
        Ok(Self {
            chain,
            market: Marketplace::unchecked(chain, market),
            gpu,
            resolver: Resolver::new(store.clone()),
            store,
            cfg,
            me: chain.address(),
            saved: Mutex::new(cfg_loaded.then(|| state.clone())),
            state: Mutex::new(state),
            metrics,
            gpu_slot: tokio::sync::Semaphore::new(1),
        })
    }

    /// A copy of the worker's state.
    pub fn state(&self) -> WorkerState {
        self.state.lock().unwrap().clone()
    }

    /// Runs a pass whenever a marketplace event arrives, and at least every `poll`, until
    /// `shutdown` resolves. Step errors are logged, counted and retried on the next pass;
    /// they never stop the loop.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let (tx, mut events) = tokio::sync::mpsc::channel(256);
        let follower = tokio::spawn(crate::follow::follow_forever(
            self.chain.client().clone(),
            self.market.address(),
            tx,
            self.metrics.clone(),
        ));
        loop {
            match self.pass().await {
                Ok(report) => {
                    for (job, what) in &report.actions {
                        tracing::info!(job_id = job, provider = ?self.me, action = what, "step");
                    }
                    for (job, err) in &report.errors {
                        tracing::warn!(job_id = job, provider = ?self.me, %err, "step failed");
                    }
                    if report.withdrawn > 0 {
                        tracing::info!(provider = ?self.me, amount = report.withdrawn, "withdrew earnings");
                    }
                }
                Err(e) => {
                    self.metrics.fail(e.reason());
                    tracing::warn!(provider = ?self.me, %e, "pass failed");
                }
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(self.cfg.poll) => {}
                Some(_) = events.recv() => {
                    // Several events usually arrive per block: one pass covers them all.
                    while events.try_recv().is_ok() {}
                }
            }
        }
        follower.abort();
    }

    /// One pass over every live job, then the withdrawal check.
    ///
    /// # Errors
    /// Only when the job count or the chain's height cannot be read or the state cannot be
    /// saved; per-job
    /// failures are in the report.
    pub async fn pass(&self) -> Result<PassReport, WorkerError> {
        let mut report = PassReport::default();
        let count = self.market.job_count().await.inspect_err(|e| self.count_rpc(e))?;
        // Deadlines are compared with one reading of the chain's height per pass.
        let now = self.chain.finalized_number().await.inspect_err(|e| self.count_rpc(e))?;
        let live: Vec<u64> = {
            let mut st = self.state.lock().unwrap();
            let from = st.next_job;
            st.live.extend(from..count);
            st.next_job = st.next_job.max(count);
            st.live.iter().copied().collect()
        };
        // Jobs are visited concurrently: each step waits about a block for finality, so a
        // provider with several live jobs would otherwise serialize them block by block.
        let visits: Vec<(u64, Visit)> = futures::stream::iter(live)
            .map(|id| async move { (id, self.visit(id, now).await) })
            .buffer_unordered(MAX_CONCURRENT_JOBS)
            .collect()
            .await;
        let mut by_state: BTreeMap<String, i64> = BTreeMap::new();
        for (id, visit) in visits {
            match visit {
                Visit::Gone | Visit::Ended => {}
                Visit::Unreadable(e) => {
                    self.count_rpc(&e);
                    report.errors.push((id, e.to_string()));
                }
                Visit::Live(state, outcome) => {
                    *by_state.entry(format!("{state:?}")).or_default() += 1;
                    match outcome {
                        Ok(Some(what)) => {
                            self.metrics.steps.get_or_create(&ActionLabel { action: what }).inc();
                            report.actions.push((id, what));
                        }
                        Ok(None) => {}
                        Err(e) => {
                            self.metrics.fail(e.reason());
                            if let WorkerError::Chain(c) = &e {
                                self.count_rpc(c);
                            }
                            report.errors.push((id, e.to_string()));
                        }
                    }
                }
            }
        }
        self.metrics.jobs.clear();
        for (state, n) in by_state {
            self.metrics.jobs.get_or_create(&StateLabel { state }).set(n);
        }
        if let Some(path) = &self.cfg.state_file {
            let now = self.state.lock().unwrap().clone();
            let mut saved = self.saved.lock().unwrap();
            if saved.as_ref() != Some(&now) {
                now.save(path)?;
                *saved = Some(now);
            }
        }
        report.withdrawn = self.maybe_withdraw().await?;
        Ok(report)
    }

    /// Reads job `id` and takes the step this provider owes it at height `now`, if any.
    async fn visit(&self, id: u64, now: u32) -> Visit {
        let job = match self.market.job(id).await {
            Ok(Some(job)) => job,
            Ok(None) => return Visit::Gone,
            Err(e) => return Visit::Unreadable(e),
        };
        if job.state.is_terminal() {
            self.finish(id, &job);
            return Visit::Ended;
        }
        Visit::Live(job.state, self.step(id, &job, now).await)
    }

    fn count_rpc(&self, e: &ChainError) {
        if e.is_connection() {
            self.metrics.rpc_errors.inc();
        }
    }

    /// Forgets an ended job, counting it when this worker took part.
    fn finish(&self, id: u64, job: &Job) {
        let mut st = self.state.lock().unwrap();
        st.live.remove(&id);
        st.computed.remove(&id);
        let took_part = job.provider == Some(self.me) || job.verifiers.iter().flatten().any(|v| v.account == self.me);
        if took_part {
            self.metrics.jobs_finished.get_or_create(&StateLabel { state: format!("{:?}", job.state) }).inc();
            tracing::info!(job_id = id, renter = ?job.renter, provider = ?job.provider, state = ?job.state, "job ended");
        }
    }

    /// Withdraws everything when the withdrawable balance exceeds the threshold.
    async fn maybe_withdraw(&self) -> Result<Amount, WorkerError> {
        let Some(threshold) = self.cfg.withdraw_above else { return Ok(0) };
        let available = self.market.withdrawable_of(self.me).await?;
        if available <= threshold {
            return Ok(0);
        }
        let (amount, _) = self.market.withdraw().await?;
        self.metrics.withdrawn_wnd.inc_by(amount as f64 / 1e18);
        Ok(amount)
    }

    /// The step this provider owes job `id` in its current state at height `now`, if any.
    async fn step(&self, id: u64, job: &Job, now: u32) -> Result<Option<&'static str>, WorkerError> {
        let mine = job.provider == Some(self.me);
        let verifier = job.current_verifier().filter(|v| v.account == self.me);
        match job.state {
            JobState::AwaitingAccept if job.input.offer_id == Some(self.cfg.offer_id) && now <= job.phase_deadline => {
                self.load_spec(id, job).await?;
                self.market.accept_job(id).await?;
                Ok(Some("accepted"))
            }
            JobState::Open if job.renter != self.me && now <= job.phase_deadline => {
                let price = self.cfg.bid_price;
                let beaten = job.best_bid.is_some_and(|b| b.provider == self.me || b.price_per_unit <= price);
                if beaten || price > job.input.max_price_per_unit {
                    return Ok(None);
                }
                self.load_spec(id, job).await?;
                self.market.bid(id, self.cfg.offer_id, price).await?;
                Ok(Some("bid"))
            }
            JobState::Open if now > job.phase_deadline && job.best_bid.is_some_and(|b| b.provider == self.me) => {
                self.market.close_auction(id).await?;
                Ok(Some("closed auction"))
            }
            JobState::Assigned if mine && job.provider_commitment.is_none() => {
                let c = self.compute(id, job, self.cfg.cheat).await?;
                self.market.commit_result(id, result_commitment(b"P", id, self.me, &c.root, &c.salt)).await?;
                Ok(Some("committed"))
            }
            JobState::VerifierCommit if verifier.is_some_and(|v| v.commitment.is_none()) => {
                // A verifier always computes honestly: its bond is at stake.
                let c = self.compute(id, job, false).await?;
                self.market.commit_verification(id, result_commitment(b"V", id, self.me, &c.root, &c.salt)).await?;
                Ok(Some("verification committed"))
            }
            JobState::Reveal if mine && job.provider_root.is_none() => {
                let c = self.compute(id, job, self.cfg.cheat).await?;
                self.market.reveal_result(id, c.root, c.salt).await?;
                Ok(Some("revealed"))
            }
            JobState::Reveal if job.checked && verifier.is_some_and(|v| v.commitment.is_some() && v.root.is_none()) => {
                let c = self.compute(id, job, false).await?;
                self.market.reveal_result(id, c.root, c.salt).await?;
                Ok(Some("verification revealed"))
            }
            _ => Ok(None),
        }
    }

    /// Fetches and checks the job's spec (hash, format, limits, exact determinism).
    async fn load_spec(&self, id: u64, job: &Job) -> Result<JobSpec, WorkerError> {
        let bytes = self.resolver.fetch(&job.input.spec_hash, &job.input.spec_uri, max_spec_bytes(&self.cfg.limits.spec)).await?;
        let spec = JobSpec::decode_spec_with_limits(&bytes, &self.cfg.limits.spec)
            .map_err(|e| WorkerError::BadSpec { job: id, reason: e.to_string() })?;
        if spec.determinism != Determinism::Exact {
            return Err(WorkerError::BadSpec { job: id, reason: "only exact kernels can be spot-checked".into() });
        }
        Ok(spec)
    }

    /// The job's result root and this worker's salt for it, computing (or, cheating,
    /// inventing) the output the first time and storing it in the blob store.
    async fn compute(&self, id: u64, job: &Job, cheat: bool) -> Result<Computed, WorkerError> {
        if let Some(c) = self.state.lock().unwrap().computed.get(&id) {
            return Ok(*c);
        }
        let salt = blob::sha256(&[self.cfg.salt_secret.as_slice(), &id.to_le_bytes()].concat());
        let root = if cheat {
            blob::sha256(&[b"never computed".as_slice(), &id.to_le_bytes()].concat())
        } else {
            let spec = self.load_spec(id, job).await?;
            let mut inputs = BTreeMap::new();
            for b in &spec.bindings {
                if let BindingKind::Input(r) = &b.kind {
                    inputs.insert(b.binding, self.resolver.fetch(&r.sha256, &r.uri, r.len).await?);
                }
            }
            let gpu = self.gpu.clone();
            let limits = self.cfg.limits.clone();
            let _slot = self.gpu_slot.acquire().await.expect("the semaphore is never closed");
            let started = Instant::now();
            let (output, commitment) = match &self.cfg.isolate {
                Some(exe) => crate::isolate::execute(exe, &spec, &inputs, &limits, crate::isolate::STARTUP_GRACE).await.map_err(|source| WorkerError::Isolated { job: id, source })?,
                None => {
                    let exec = tokio::task::spawn_blocking(move || capacloud_executor::execute(&gpu, &spec, &inputs, &limits))
                        .await
                        .map_err(|e| WorkerError::Join { job: id, reason: e.to_string() })?
                        .map_err(|source| WorkerError::Exec { job: id, source })?;
                    (exec.output, exec.commitment)
                }
            };
            self.metrics.gpu_seconds.inc_by(started.elapsed().as_secs_f64());
            tracing::info!(job_id = id, renter = ?job.renter, bytes = output.len(), secs = started.elapsed().as_secs_f64(), isolated = self.cfg.isolate.is_some(), "computed");
            self.store.put_output(&commitment.root, &output).await?;
            commitment.root
        };
        let c = Computed { root, salt };
        self.state.lock().unwrap().computed.insert(id, c);
        Ok(c)
    }
}
