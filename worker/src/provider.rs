//! The provider's job loop: reads the marketplace's jobs, takes the ones its offer qualifies
//! for, runs them on the GPU, commits and reveals results, and does verifier duty.
//!
//! The loop is driven by on-chain state, not by remembered events: every pass reads each
//! live job and performs the one step the contract expects from this provider, if any.
//! That makes it idempotent — a restarted worker resumes where the chain says it is and
//! never submits a step twice (a step the chain already has is not "expected" any more).
//! Salts are derived from the worker's key and the job id, and outputs are deterministic,
//! so a restart recomputes the same commitment.

use capacloud_client::blob::{self, BlobStore};
use capacloud_client::chain::{Chain, ChainError};
use capacloud_client::marketplace::{result_commitment, Hash32, Job, JobState};
use capacloud_client::Marketplace;
use capacloud_executor::spec::{BindingKind, Determinism, JobSpec};
use capacloud_executor::{ExecLimits, Gpu};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
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
    /// Time between passes over the jobs.
    pub poll: Duration,
    pub limits: ExecLimits,
}

/// A result the worker has computed for a job (as provider or as verifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Computed {
    root: Hash32,
    salt: Hash32,
}

/// What one pass did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub actions: Vec<(u64, &'static str)>,
    pub errors: Vec<(u64, String)>,
}

/// The job loop of one provider.
pub struct Worker<'a> {
    chain: &'a Chain,
    market: Marketplace<'a>,
    gpu: Arc<Gpu>,
    blobs: Arc<dyn BlobStore>,
    cfg: WorkerConfig,
    me: H160,
    computed: Mutex<BTreeMap<u64, Computed>>,
    finished: Mutex<BTreeSet<u64>>,
}

impl<'a> Worker<'a> {
    /// A worker acting as `chain`'s signer on the marketplace at `market`.
    pub fn new(chain: &'a Chain, market: H160, gpu: Arc<Gpu>, blobs: Arc<dyn BlobStore>, cfg: WorkerConfig) -> Self {
        let m = Marketplace::unchecked(chain, market);
        Self {
            chain,
            market: m,
            gpu,
            blobs,
            cfg,
            me: chain.address(),
            computed: Mutex::new(BTreeMap::new()),
            finished: Mutex::new(BTreeSet::new()),
        }
    }

    /// Runs passes every `poll` until `shutdown` resolves. Step errors are logged and
    /// retried on the next pass; they never stop the loop.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.pass().await {
                Ok(report) => {
                    for (job, what) in &report.actions {
                        tracing::info!(job_id = job, provider = ?self.me, action = what, "step");
                    }
                    for (job, err) in &report.errors {
                        tracing::warn!(job_id = job, provider = ?self.me, %err, "step failed");
                    }
                }
                Err(e) => tracing::warn!(provider = ?self.me, %e, "pass failed"),
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(self.cfg.poll) => {}
            }
        }
    }

    /// One pass over every live job.
    ///
    /// # Errors
    /// Only when the job count cannot be read; per-job failures are in the report.
    pub async fn pass(&self) -> Result<PassReport, WorkerError> {
        let mut report = PassReport::default();
        let count = self.market.job_count().await?;
        for id in 0..count {
            if self.finished.lock().unwrap().contains(&id) {
                continue;
            }
            let Some(job) = self.market.job(id).await? else { continue };
            if job.state.is_terminal() {
                self.finished.lock().unwrap().insert(id);
                continue;
            }
            match self.step(id, &job).await {
                Ok(Some(what)) => report.actions.push((id, what)),
                Ok(None) => {}
                Err(e) => report.errors.push((id, e.to_string())),
            }
        }
        Ok(report)
    }

    /// The step this provider owes job `id` in its current state, if any.
    async fn step(&self, id: u64, job: &Job) -> Result<Option<&'static str>, WorkerError> {
        let now = self.chain.finalized_number().await?;
        let mine = job.provider == Some(self.me);
        let verifier = job.current_verifier().filter(|v| v.account == self.me);
        match job.state {
            JobState::AwaitingAccept if job.input.offer_id == Some(self.cfg.offer_id) && now <= job.phase_deadline => {
                self.load_spec(id, job)?;
                self.market.accept_job(id).await?;
                Ok(Some("accepted"))
            }
            JobState::Open if job.renter != self.me && now <= job.phase_deadline => {
                let price = self.cfg.bid_price;
                let beaten = job.best_bid.is_some_and(|b| b.provider == self.me || b.price_per_unit <= price);
                if beaten || price > job.input.max_price_per_unit {
                    return Ok(None);
                }
                self.load_spec(id, job)?;
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
    fn load_spec(&self, id: u64, job: &Job) -> Result<JobSpec, WorkerError> {
        let bytes = self.blobs.get(&job.input.spec_hash)?;
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
        if let Some(c) = self.computed.lock().unwrap().get(&id) {
            return Ok(*c);
        }
        let salt = blob::sha256(&[self.cfg.salt_secret.as_slice(), &id.to_le_bytes()].concat());
        let root = if cheat {
            blob::sha256(&[b"never computed".as_slice(), &id.to_le_bytes()].concat())
        } else {
            let spec = self.load_spec(id, job)?;
            let mut inputs = BTreeMap::new();
            for b in &spec.bindings {
                if let BindingKind::Input(r) = &b.kind {
                    inputs.insert(b.binding, self.blobs.get(&r.sha256)?);
                }
            }
            let gpu = self.gpu.clone();
            let limits = self.cfg.limits.clone();
            let exec = tokio::task::spawn_blocking(move || capacloud_executor::execute(&gpu, &spec, &inputs, &limits))
                .await
                .map_err(|e| WorkerError::Join { job: id, reason: e.to_string() })?
                .map_err(|source| WorkerError::Exec { job: id, source })?;
            self.blobs.put_output(&exec.commitment.root, &exec.output)?;
            exec.commitment.root
        };
        let c = Computed { root, salt };
        self.computed.lock().unwrap().insert(id, c);
        Ok(c)
    }
}
