//! The provider's job loop: tracks the marketplace's live jobs, validates and takes the ones
//! its offer qualifies for, runs them on the GPU (every task of a batch), commits and reveals
//! batch roots with the sampled tasks' multiproof, does verifier duty (re-executing only the
//! sampled tasks), checks input availability when drawn for it, moves jobs it is part of on
//! past their deadlines, and withdraws earnings above a threshold.
//!
//! Driven by on-chain state: every pass reads each live job's core (one storage read) and
//! takes the one step the contract expects from this provider, if any, so a restarted
//! worker resumes where the chain says it is and never submits a step twice. Each step is
//! bounded by a time limit, and everything slow runs in background tasks — kernels (one per
//! job and role) and the fetches and checks of a job's spec and inputs (one per job and
//! purpose) — so a pass takes chain time only: a commitment or reveal never waits behind
//! another job's fetch or kernel, however slow or silent its URIs are.
//!
//! Before it signs anything for a job it fetches and checks everything the job needs: the
//! spec (format, limits, WGSL validation, bindings against the kernel's reflection, exact
//! determinism), the work units against the spec and the dispatch's cost
//! ([`WORKGROUPS_PER_UNIT`]), the task manifest, every input (length and sha256), its
//! memory budget, and the free space on its disk for every task's inputs and outputs. A job
//! that fails any of them is never accepted or bid on.
//!
//! Nor does it sign for a kernel it has not seen finish: every job is executed first (a
//! *trial*, in the sandbox, under the same limits), and accepted or bid on only once its
//! result is in hand; the trial's result is the one committed, so nothing runs twice (a
//! direct hire is accepted by that commitment itself: one transaction, not two). A
//! kernel that runs away, crashes or fails in its trial is refused before any signature, so
//! it can cost the provider neither a commitment timeout nor an unavailability report it
//! would lose (however small its static bound: a kernel that crashes the driver crashes it
//! fast). Trials run one at a time in two lanes of their own, beside the kernels of jobs the
//! worker has signed for (`Worker::gpu_slot`): jobs whose static bound
//! ([`capacloud_executor::cost`], every task together) is at most [`TRUSTED_OPS`] — seconds
//! of work at most — in a quick lane (`Worker::quick_slot`), the others, which *could* run
//! until the time limit, in theirs (`Worker::long_lane`), whose sandboxed child runs at the
//! lowest CPU priority ([`crate::isolate::Priority::Background`]). The long lane runs the
//! smallest static bound first, and a long trial is stopped (started again later) when one
//! with a smaller bound arrives ([`crate::lane`]): a renter's runaway kernel, whose bound is
//! near the limits, delays no provably shorter trial, neither a small job's trial nor a
//! signed job's kernel; on a CPU adapter it gets only the cycles they leave (on a GPU it
//! shares the device). A trial still running when its job's accept or bid window closes is
//! stopped.
//!
//! A verifier whose re-execution fails (the kernel crashes or fails on its device, its
//! inputs cannot be fetched, or its GPU fails its probe) bows out before committing
//! (`report(false)`: replaced, neither paid nor slashed) instead of letting its commitment
//! time out at the cost of its bond.
//!
//! What the worker knows between passes ([`WorkerState`]) is written atomically and fsynced
//! after every change; a corrupt state file is rebuilt from the chain, never fatal. A
//! worker restarted while a transaction of its previous life is still in the pool takes no
//! step until it lands ([`PassReport::pooled`]), so the state it reads already holds it.
//!
//! It acts on the best block (a step costs one block, not the finality lag) and waits for
//! finality only where a retracted block could cost it: a reveal (the batch root, a
//! verifier's answer) is sent only once the phase that protects it is final — every
//! commitment it follows is in a finalized block, so no re-organisation can let a verifier
//! re-commit after seeing it — and a job is forgotten only once its end is final. A job
//! whose reveal window cannot hold the chain's finality lag plus
//! [`chain::REVEAL_MARGIN_BLOCKS`] is not taken.

use crate::metrics::{ActionLabel, Metrics, StateLabel};
use capacloud_client::blob::{self, BlobStore, LocalStore, Resolver};
use capacloud_client::chain::{self, Chain, ChainError};
use capacloud_client::marketplace::{hash, merkle, sample, Amount, Hash32, JobCore, JobInput, JobState, Reveal, Sha, Verifier};
use capacloud_client::Marketplace;
use capacloud_executor::batch::TaskManifest;
use capacloud_executor::spec::{BindingKind, Determinism, InputRef, JobSpec};
use capacloud_executor::{ExecLimits, Gpu};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subxt::utils::H160;

/// A job's work units must cover its dispatch: at least one unit per this many workgroups
/// (over every pass) of each task. A renter cannot buy 60 s of GPU for one unit.
pub const WORKGROUPS_PER_UNIT: u64 = 256;

/// Operations (the static bound of [`capacloud_executor::cost`], every task together) up to
/// which a job's trial runs in the quick lane: about 2^30, which even lavapipe on two cores
/// runs in seconds, far inside the default 60 s limit, however its operations are mixed.
/// Above it the trial waits in the lane of kernels that may run until their time limit
/// (see the module docs).
pub const TRUSTED_OPS: u64 = 1 << 30;

/// Why the worker could not take a step.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Blob(#[from] blob::BlobError),
    #[error("job {job}: refused before signing: {reason}")]
    Invalid { job: u64, reason: String },
    #[error("job {job}: inputs cannot be fetched: {reason}")]
    Unavailable { job: u64, reason: String },
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
    #[error("job {job}: step timed out after {secs} s")]
    StepTimeout { job: u64, secs: u64 },
    #[error("job {job}: the GPU fails its health probe; the job waits until it passes again")]
    GpuUnhealthy { job: u64 },
    #[error("job {job}: its inputs and outputs need {need} bytes on disk, {free} are free (keeping {reserve} spare); not taken", reserve = DISK_RESERVE)]
    DiskFull { job: u64, need: u64, free: u64 },
}

impl WorkerError {
    /// The failure's label in the `failures` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            WorkerError::Chain(c) if c.is_connection() => "rpc",
            WorkerError::Chain(ChainError::Reverted { .. } | ChainError::Dispatch { .. }) => "refused",
            WorkerError::Chain(_) => "chain",
            WorkerError::Blob(_) => "blob",
            WorkerError::Invalid { .. } => "invalid_job",
            WorkerError::Unavailable { .. } => "unavailable",
            WorkerError::Exec { source: capacloud_executor::ExecError::Timeout(_), .. } => "timeout",
            WorkerError::Isolated { source: crate::isolate::IsolateError::Timeout(_), .. } => "timeout",
            WorkerError::Exec { .. } | WorkerError::Join { .. } | WorkerError::Isolated { .. } => "exec",
            WorkerError::State { .. } => "state",
            WorkerError::StepTimeout { .. } => "step_timeout",
            WorkerError::GpuUnhealthy { .. } => "gpu_unhealthy",
            WorkerError::DiskFull { .. } => "disk_full",
        }
    }

    /// Whether the job cannot be executed as posted (inputs missing, the kernel over its
    /// limits): what a provider reports instead of timing out.
    fn unexecutable(&self) -> bool {
        matches!(self, WorkerError::Unavailable { .. } | WorkerError::Invalid { .. } | WorkerError::Exec { .. } | WorkerError::Isolated { .. })
    }

    /// Whether this machine, not the job, failed: its GPU, its disk too full for the job, or
    /// its blob store (a full or failing disk while storing what the job needs or produces).
    fn local(&self) -> bool {
        matches!(self, WorkerError::GpuUnhealthy { .. } | WorkerError::DiskFull { .. } | WorkerError::Blob(_))
    }
}

/// How the worker behaves.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The offer this worker serves.
    pub offer_id: u64,
    /// Price per work unit it bids on open jobs (contract units).
    pub bid_price: Amount,
    /// Secret its result salts derive from (see `keys::Key::salt_secret`).
    pub salt_secret: Hash32,
    /// Test/demo only: commit made-up outputs without computing (a cheating provider).
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
    /// Largest job it takes: every task's inputs and outputs together, in bytes.
    pub max_job_bytes: u64,
    /// Longest a single fetch may take.
    pub fetch_timeout: Duration,
    /// Time between GPU health probes while the GPU fails them ([`HEALTH_RETRY`]).
    pub health_retry: Duration,
}

/// Default time between health probes while the GPU is unhealthy.
pub const HEALTH_RETRY: Duration = Duration::from_secs(30);

/// Time a pass in flight gets to finish once shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// A result the worker has computed for a job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Computed {
    /// As provider: every task's output root, and their batch root. As verifier: the
    /// sampled tasks' roots (in sample order) and the answer over them.
    #[serde(with = "hex_vec")]
    pub roots: Vec<Hash32>,
    #[serde(with = "hex32")]
    pub batch_root: Hash32,
    #[serde(with = "hex32")]
    pub answer: Hash32,
    #[serde(with = "hex32")]
    pub salt: Hash32,
    /// The verifier round it was computed for (0 as provider).
    pub round: u8,
}

impl Computed {
    /// The provider's commitment to this result for job `id`, as provider `me`.
    pub fn provider_commitment(&self, id: u64, me: H160) -> Hash32 {
        hash::provider_commitment::<Sha>(id, me, &self.batch_root, &self.salt)
    }
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

mod hex_vec {
    pub fn serialize<S: serde::Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        use serde::Serialize;
        v.iter().map(hex::encode).collect::<Vec<_>>().serialize(s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        let v: Vec<String> = serde::Deserialize::deserialize(d)?;
        v.iter()
            .map(|s| hex::decode(s).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| serde::de::Error::custom("expected 32 hex bytes")))
            .collect()
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
    /// Jobs it checked and refused (never taken).
    #[serde(default)]
    pub refused: BTreeSet<u64>,
}

impl WorkerState {
    /// Loads the state from `path`. A missing file is a fresh state; an unreadable or
    /// corrupt one (a torn write after a power loss) is set aside as `<path>.corrupt` and the
    /// state rebuilt from the chain: every job is visited again and nothing is recomputed
    /// that the chain does not ask for.
    pub fn load(path: &std::path::Path) -> Self {
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(path = %path.display(), %e, "corrupt worker state; rebuilding it from the chain");
                    let _ = std::fs::rename(path, path.with_extension("corrupt"));
                    Self::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), %e, "unreadable worker state; rebuilding it from the chain");
                Self::default()
            }
        }
    }

    /// Writes the state to `path` durably: temp file, fsync, rename, fsync of the directory.
    ///
    /// # Errors
    /// [`WorkerError::State`].
    pub fn save(&self, path: &std::path::Path) -> Result<(), WorkerError> {
        use std::io::Write;
        let err = |reason: String| WorkerError::State { path: path.into(), reason };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| err(e.to_string()))?;
        tmp.write_all(&serde_json::to_vec_pretty(self).expect("state serializes")).map_err(|e| err(e.to_string()))?;
        tmp.as_file().sync_all().map_err(|e| err(e.to_string()))?;
        tmp.persist(path).map_err(|e| err(e.error.to_string()))?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| err(e.to_string()))?;
        Ok(())
    }
}

/// Bytes one task of `spec` reads and writes: its inputs and outputs.
fn job_bytes(spec: &JobSpec) -> u64 {
    spec.bindings
        .iter()
        .map(|b| match &b.kind {
            BindingKind::Input(r) => r.len,
            BindingKind::Output { len } => *len,
            _ => 0,
        })
        .sum()
}

/// Counts a kernel run's time in the `gpu_seconds` metric when dropped: a run that ends,
/// fails or is stopped (a preempted trial, its future dropped) counts what it used.
struct GpuTime<'a> {
    metrics: &'a Metrics,
    since: Instant,
}

impl<'a> GpuTime<'a> {
    fn start(metrics: &'a Metrics) -> Self {
        Self { metrics, since: Instant::now() }
    }
}

impl Drop for GpuTime<'_> {
    fn drop(&mut self) {
        self.metrics.gpu_seconds.inc_by(self.since.elapsed().as_secs_f64());
    }
}

/// Whether a fetched blob is kept in the worker's store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    /// Kept: the job will run on it.
    Stored,
    /// Only fetched and checked against its hash (a vote on a job's inputs).
    Checked,
}

/// A failed fetch for job `id` (`context` prefixes the reason): a failure of this worker's
/// own store (keeping the fetched copy on a full disk, say) is this machine's trouble, not a
/// sign the job's inputs are missing, so it is not reported (or voted) as such; any other
/// failure (no answer, not found, too large, the wrong bytes) makes them unavailable.
fn fetch_failed(id: u64, context: &str, e: blob::BlobError) -> WorkerError {
    match e {
        blob::BlobError::Io(_) => WorkerError::Blob(e),
        e => WorkerError::Unavailable { job: id, reason: format!("{context}{e}") },
    }
}

/// Bytes free for an unprivileged writer on the filesystem holding `dir`.
#[allow(clippy::useless_conversion)] // the statvfs field types are u64 here, u32 on some targets
fn free_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: statvfs(3) writes into the struct we own; `path` is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize)))
}

/// The largest encoded spec the limits allow: its WGSL, and per binding a URI and a uniform
/// block, with room for the fixed fields and passes.
fn max_spec_bytes(l: &capacloud_executor::spec::SpecLimits) -> u64 {
    (l.max_wgsl_bytes + l.max_bindings * (l.max_uniform_bytes + 4096) + l.max_passes * (l.max_uniform_bytes + 256) + 4096) as u64
}

/// Jobs one pass visits at the same time.
pub const MAX_CONCURRENT_JOBS: usize = 32;
/// Longest one step of one job may take (chain reads and the transaction).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Blocks past a deadline before this worker moves a job on itself (the party whose turn
/// it was gets the first blocks).
pub const GRACE_BLOCKS: u32 = 1;

/// What a pass found at one job.
enum Visit {
    Gone,
    Ended,
    Unreadable(ChainError),
    Live(JobState, Result<Option<&'static str>, WorkerError>),
}

/// What one pass did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub actions: Vec<(u64, &'static str)>,
    pub errors: Vec<(u64, String)>,
    /// Amount withdrawn in this pass (contract units).
    pub withdrawn: Amount,
    /// This account's transactions found in the pool, not yet in the best block: the pass
    /// then took no step (see [`Worker::pass`]).
    pub pooled: u64,
}

/// The role a computation is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Provider,
    Verifier(u8),
}

impl Role {
    /// The round a result for this role is computed for (0 as provider).
    fn round(self) -> u8 {
        match self {
            Role::Provider => 0,
            Role::Verifier(r) => r,
        }
    }
}

type Running = tokio::task::JoinHandle<Result<Computed, WorkerError>>;

/// Why a job's inputs are being fetched and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Purpose {
    /// Before accepting or bidding.
    Take,
    /// To vote in an availability check.
    Vote,
}

type Checking = tokio::task::JoinHandle<Result<(), WorkerError>>;

/// Where a kernel waits for the GPU (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    /// A job this worker signed for (as provider or verifier).
    Signed,
    /// A trial whose static bound is at most [`TRUSTED_OPS`].
    QuickTrial,
    /// A trial that may run until its time limit.
    Trial,
}

/// Disk space a worker keeps free beyond what a job it takes needs (its state file, logs,
/// the Merkle levels beside each output).
pub const DISK_RESERVE: u64 = 1 << 20;

/// How long a pass waits for a check it just started before moving on (a check of inputs
/// that answer quickly then completes within the same pass).
const QUICK_CHECK: Duration = Duration::from_secs(2);

/// The job loop of one provider.
pub struct Worker {
    chain: Arc<Chain>,
    market: H160,
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
    /// One long trial at a time (kernels of jobs not yet signed for whose static bound
    /// exceeds [`TRUSTED_OPS`], see the module docs), shortest bound first and preempted by a
    /// shorter one ([`crate::lane`]), in a lane beside `gpu_slot`'s: a renter's runaway trial
    /// slows a signed job's kernel at most by sharing the GPU with it, never by holding it.
    long_lane: crate::lane::LongLane,
    /// One quick trial at a time (static bound at most [`TRUSTED_OPS`]): a runaway kernel in
    /// `long_lane` never delays a small job's trial.
    quick_slot: tokio::sync::Semaphore,
    /// Background computations by (job, role).
    running: Mutex<BTreeMap<(u64, Role), Running>>,
    /// Background fetches and checks of a job's spec, manifest and inputs, by (job, purpose):
    /// a slow or silent URI delays only its own job, never a pass.
    checks: Mutex<BTreeMap<(u64, Purpose), Checking>>,
    /// Woken when background work finishes, so the next pass need not wait for a poll.
    wake: tokio::sync::Notify,
    /// Job inputs and specs read once.
    inputs: Mutex<BTreeMap<u64, JobInput>>,
    /// The GPU's health: `None` while healthy, else when the last failed probe ran. While
    /// unhealthy the worker accepts and bids on nothing and its offer is withdrawn.
    unhealthy_since: Mutex<Option<Instant>>,
    /// The offer it serves: `cfg.offer_id`, or the one it listed after a GPU outage.
    offer_id: std::sync::atomic::AtomicU64,
    /// Since when passes have found this account's transactions in the pool (see `pass`).
    pool_wait_since: Mutex<Option<Instant>>,
}

impl Worker {
    /// A worker acting as `chain`'s signer on the marketplace at `market`, keeping outputs
    /// (and fetched inputs) in `store`. Loads its persisted state, if any.
    pub fn new(chain: Arc<Chain>, market: H160, gpu: Arc<Gpu>, store: LocalStore, cfg: WorkerConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        let state = cfg.state_file.as_ref().map(|p| WorkerState::load(p)).unwrap_or_default();
        let loaded = cfg.state_file.as_ref().is_some_and(|p| p.exists());
        let cfg_offer = cfg.offer_id;
        // Dropping a run stops it only in the sandbox (its child is killed).
        let preemptive = cfg.isolate.is_some();
        Arc::new(Self {
            me: chain.address(),
            chain,
            market,
            gpu,
            resolver: Resolver::new(store.clone()),
            store,
            cfg,
            saved: Mutex::new(loaded.then(|| state.clone())),
            state: Mutex::new(state),
            metrics,
            gpu_slot: tokio::sync::Semaphore::new(1),
            long_lane: crate::lane::LongLane::new(preemptive),
            quick_slot: tokio::sync::Semaphore::new(1),
            running: Mutex::new(BTreeMap::new()),
            checks: Mutex::new(BTreeMap::new()),
            wake: tokio::sync::Notify::new(),
            inputs: Mutex::new(BTreeMap::new()),
            unhealthy_since: Mutex::new(None),
            offer_id: std::sync::atomic::AtomicU64::new(cfg_offer),
            pool_wait_since: Mutex::new(None),
        })
    }

    fn market(&self) -> Marketplace<'_> {
        Marketplace::unchecked(&self.chain, self.market)
    }

    /// A copy of the worker's state.
    pub fn state(&self) -> WorkerState {
        self.state.lock().unwrap().clone()
    }

    /// Runs a pass whenever a marketplace event arrives, and at least every `poll`, until
    /// `shutdown` resolves. Step errors are logged, counted and retried on the next pass;
    /// they never stop the loop. A pass in flight at shutdown gets [`SHUTDOWN_GRACE`] to
    /// finish (a node that is gone would otherwise hold it forever: the connection keeps
    /// reconnecting); the state is saved on the way out.
    pub async fn run(self: &Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let (tx, mut events) = tokio::sync::mpsc::channel(256);
        let follower = tokio::spawn(crate::follow::follow_forever(self.chain.client().clone(), self.market, tx, self.metrics.clone()));
        loop {
            let pass = self.pass();
            tokio::pin!(pass);
            let outcome = tokio::select! {
                r = &mut pass => r,
                _ = &mut shutdown => {
                    match tokio::time::timeout(SHUTDOWN_GRACE, pass).await {
                        Ok(r) => self.log_pass(r),
                        Err(_) => tracing::warn!(provider = ?self.me, "shutdown: the pass in flight did not finish within {SHUTDOWN_GRACE:?}; abandoned"),
                    }
                    break;
                }
            };
            self.log_pass(outcome);
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(self.cfg.poll) => {}
                _ = self.wake.notified() => {}
                Some(_) = events.recv() => {
                    // Several events usually arrive per block: one pass covers them all.
                    while events.try_recv().is_ok() {}
                }
            }
        }
        follower.abort();
        for (_, h) in std::mem::take(&mut *self.running.lock().unwrap()) {
            h.abort();
        }
        for (_, h) in std::mem::take(&mut *self.checks.lock().unwrap()) {
            h.abort();
        }
        if let Err(e) = self.persist() {
            tracing::warn!(provider = ?self.me, %e, "saving the state at shutdown failed");
        }
    }

    fn log_pass(&self, outcome: Result<PassReport, WorkerError>) {
        match outcome {
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
    }

    /// One pass over every live job, then the withdrawal check; none while this account has
    /// transactions in the pool ([`PassReport::pooled`]).
    ///
    /// # Errors
    /// Only when the pool, the job count or the chain's height cannot be read or the state
    /// cannot be saved; per-job failures are in the report.
    pub async fn pass(self: &Arc<Self>) -> Result<PassReport, WorkerError> {
        let mut report = PassReport::default();
        // A transaction of this account still in the pool (sent by an earlier life of the
        // worker that was killed before it landed, or by a send that timed out) may be a
        // step the chain does not show yet: acting now could send it twice, and pay for a
        // failed call. The pass takes no step until the pool is clear, or until
        // `chain::SUBMIT_TIMEOUT` has passed (a transaction that never lands).
        let pending = self.chain.pending_transactions().await.inspect_err(|e| self.count_rpc(e))?;
        let waiting = {
            let mut since = self.pool_wait_since.lock().unwrap();
            if pending == 0 {
                *since = None;
            }
            pending > 0 && since.get_or_insert_with(Instant::now).elapsed() < chain::SUBMIT_TIMEOUT
        };
        if waiting {
            tracing::info!(provider = ?self.me, pending, "waiting for this account's transactions in the pool to land");
            report.pooled = pending;
            return Ok(report);
        } else if pending > 0 {
            tracing::warn!(provider = ?self.me, pending, secs = chain::SUBMIT_TIMEOUT.as_secs(), "transactions still in the pool after the submission timeout; acting anyway");
        }
        self.recheck_health().await;
        let market = self.market();
        let count = market.job_count().await.inspect_err(|e| self.count_rpc(e))?;
        let now = self.chain.best_number().await.inspect_err(|e| self.count_rpc(e))?;
        let live: Vec<u64> = {
            let mut st = self.state.lock().unwrap();
            let from = st.next_job;
            st.live.extend(from..count);
            st.next_job = st.next_job.max(count);
            st.live.iter().copied().collect()
        };
        let visits: Vec<(u64, Visit)> = futures::stream::iter(live)
            .map(|id| async move {
                let visit = match tokio::time::timeout(STEP_TIMEOUT, self.visit(id, now)).await {
                    Ok(v) => v,
                    Err(_) => Visit::Live(JobState::Open, Err(WorkerError::StepTimeout { job: id, secs: STEP_TIMEOUT.as_secs() })),
                };
                (id, visit)
            })
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
        self.persist()?;
        report.withdrawn = self.maybe_withdraw().await?;
        Ok(report)
    }

    fn persist(&self) -> Result<(), WorkerError> {
        if let Some(path) = &self.cfg.state_file {
            let now = self.state.lock().unwrap().clone();
            let mut saved = self.saved.lock().unwrap();
            if saved.as_ref() != Some(&now) {
                now.save(path)?;
                *saved = Some(now);
            }
        }
        Ok(())
    }

    async fn visit(self: &Arc<Self>, id: u64, now: u32) -> Visit {
        let core = match self.market().job_core(id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Visit::Gone,
            Err(e) => return Visit::Unreadable(e),
        };
        if core.state.is_terminal() {
            // Forgotten only once the end is final: a retracted block could bring it back.
            return match self.phase_is_final(id, &core).await {
                Ok(true) => {
                    self.finish(id, &core);
                    Visit::Ended
                }
                Ok(false) => Visit::Live(core.state, Ok(None)),
                Err(WorkerError::Chain(e)) => Visit::Unreadable(e),
                Err(e) => Visit::Live(core.state, Err(e)),
            };
        }
        Visit::Live(core.state, self.step(id, &core, now).await)
    }

    /// Whether the finalized head has job `id` in the phase `core` (read at the best block)
    /// shows: same state and round. A reveal waits for this (see the module docs).
    async fn phase_is_final(&self, id: u64, core: &JobCore) -> Result<bool, WorkerError> {
        let (fin, _) = self.market().finalized().await?;
        Ok(fin.job_core(id).await?.is_some_and(|f| f.state == core.state && f.round == core.round))
    }

    fn count_rpc(&self, e: &ChainError) {
        if e.is_connection() {
            self.metrics.rpc_errors.inc();
        }
    }

    /// Forgets an ended job, counting it when this worker took part.
    fn finish(&self, id: u64, core: &JobCore) {
        let (took_part, computed) = {
            let mut st = self.state.lock().unwrap();
            st.live.remove(&id);
            st.refused.remove(&id);
            let computed = st.computed.remove(&id);
            // A trial for a job another provider won is not taking part.
            (computed.as_ref().is_some_and(|c| c.round > 0) || core.provider == self.me, computed)
        };
        if let Some(c) = computed.filter(|c| c.round == 0 && (core.provider != self.me || !core.renter_paid())) {
            // A provider's outputs for a job no renter paid for (a trial for a job it did not
            // get, or never accepted) serve no one: a renter's trials must not fill the disk.
            self.forget_outputs(id, &c);
        }
        self.running.lock().unwrap().retain(|(j, _), _| *j != id);
        self.checks.lock().unwrap().retain(|(j, _), h| {
            if *j == id {
                h.abort();
            }
            *j != id
        });
        self.inputs.lock().unwrap().remove(&id);
        if took_part {
            self.metrics.jobs_finished.get_or_create(&StateLabel { state: format!("{:?}", core.state) }).inc();
            tracing::info!(job_id = id, renter = ?core.renter, provider = ?core.provider, state = ?core.state, "job ended");
        }
    }

    /// Removes the outputs and task-root list `c` of job `id` stored, unless another job
    /// produced them too.
    fn forget_outputs(&self, id: u64, c: &Computed) {
        for root in c.roots.iter().chain(std::iter::once(&c.batch_root).filter(|r| **r != [0; 32])) {
            if let Err(e) = self.store.forget_job_sync(root, id) {
                tracing::warn!(job_id = id, %e, "removing a trial's output failed");
            }
        }
    }

    /// Withdraws everything when the withdrawable balance exceeds the threshold.
    async fn maybe_withdraw(&self) -> Result<Amount, WorkerError> {
        let Some(threshold) = self.cfg.withdraw_above else { return Ok(0) };
        let market = self.market();
        let available = market.withdrawable_of(self.me).await?;
        if available <= threshold {
            return Ok(0);
        }
        let (amount, _) = market.withdraw().await?;
        self.metrics.withdrawn_wnd.inc_by(amount as f64 / 1e18);
        Ok(amount)
    }

    // ------------------------------------------------------------ the step

    /// The step this provider owes job `id` in its current state at height `now`, if any.
    async fn step(self: &Arc<Self>, id: u64, core: &JobCore, now: u32) -> Result<Option<&'static str>, WorkerError> {
        let market = self.market();
        let mine = core.provider == self.me;
        let past = |extra: u32| now > core.phase_deadline.saturating_add(extra);
        // A due verifier draw: anyone may make it once its beacon block is sealed; the
        // parties of the job (and anyone who could be drawn) do.
        if core.draw_at.is_some_and(|b| b < now) {
            market.cleanup(id).await?;
            return Ok(Some("made a draw"));
        }
        if matches!(core.state, JobState::AwaitingAccept | JobState::Open) && past(0) {
            // Its window closed: a check (and trial) still running for it can no longer lead
            // to a signature. A renter that never moves its expired jobs on cannot keep this
            // worker's trial lanes busy with them.
            if let Some(h) = self.checks.lock().unwrap().remove(&(id, Purpose::Take)) {
                h.abort();
                tracing::info!(job_id = id, "window closed: its check is stopped");
            }
        }
        let verifier = if matches!(core.state, JobState::InputCheck | JobState::VerifierCommit | JobState::Reveal) {
            self.my_verifier(id, core).await?
        } else {
            None
        };
        match core.state {
            JobState::AwaitingAccept | JobState::Open if !self.healthy() && !past(0) => Ok(None),
            JobState::AwaitingAccept if mine && core.offer_id == Some(self.offer_id()) && !past(0) => {
                if !self.take_check(id, core).await? {
                    return Ok(None);
                }
                // The take check ran the job (its trial): commit to that result, which accepts
                // the hire in the same transaction (one block and one call's fee less than
                // accepting first).
                match self.held(id, Role::Provider) {
                    Some(c) => {
                        market.commit(id, c.provider_commitment(id, self.me)).await?;
                        Ok(Some("accepted and committed"))
                    }
                    None => {
                        market.accept_job(id).await?;
                        Ok(Some("accepted"))
                    }
                }
            }
            JobState::Open if core.renter != self.me && !past(0) => {
                let price = self.cfg.bid_price;
                let beaten = core.has_provider() && (mine || core.price_per_unit <= price);
                if beaten || price > core.max_price_per_unit {
                    return Ok(None);
                }
                if !self.take_check(id, core).await? {
                    return Ok(None);
                }
                market.bid(id, self.offer_id(), price).await?;
                Ok(Some("bid"))
            }
            JobState::Open if mine && past(0) => {
                market.cleanup(id).await?;
                Ok(Some("closed auction"))
            }
            JobState::Assigned if mine && core.commitment == [0; 32] && !past(0) => {
                match self.result(id, core, Role::Provider).await {
                    Ok(Some(c)) => {
                        market.commit(id, c.provider_commitment(id, self.me)).await?;
                        Ok(Some("committed"))
                    }
                    Ok(None) => Ok(None),
                    Err(e) if e.unexecutable() && !core.reported => {
                        tracing::warn!(job_id = id, %e, "reporting the job unexecutable");
                        market.report(id, false).await?;
                        Ok(Some("reported inputs unavailable"))
                    }
                    Err(e) => Err(e),
                }
            }
            JobState::InputCheck if verifier.is_some_and(|v| v.account == self.me) && !past(0) => {
                // Drawn to check the provider's report: can the inputs be fetched?
                let available = match self.checked_in_background(id, core, Purpose::Vote).await? {
                    None => return Ok(None),
                    Some(Ok(())) => true,
                    // This machine's trouble is no evidence about the inputs: no vote yet.
                    Some(Err(e @ (WorkerError::Chain(_) | WorkerError::StepTimeout { .. } | WorkerError::Join { .. } | WorkerError::Blob(_)))) => return Err(e),
                    Some(Err(_)) => false,
                };
                market.report(id, available).await?;
                Ok(Some(if available { "voted inputs available" } else { "voted inputs unavailable" }))
            }
            JobState::VerifierCommit if verifier.is_some_and(|v| v.account == self.me && !v.has_committed()) && !past(0) => {
                match self.result(id, core, Role::Verifier(core.round)).await {
                    Ok(Some(c)) => {
                        market.commit(id, hash::verifier_commitment::<Sha>(id, self.me, &c.answer, &c.salt)).await?;
                        Ok(Some("verification committed"))
                    }
                    Ok(None) => Ok(None),
                    Err(e) if e.unexecutable() || e.local() => {
                        // Its inputs cannot be fetched, its kernel fails on this device, or
                        // this machine does (GPU, disk, store): bowing out costs nothing, a
                        // missed commitment the bond.
                        tracing::warn!(job_id = id, %e, "bowing out as verifier");
                        self.metrics.fail(e.reason());
                        market.report(id, false).await?;
                        Ok(Some(if matches!(e, WorkerError::Unavailable { .. }) { "reported inputs unavailable as verifier" } else { "bowed out as verifier" }))
                    }
                    Err(e) => Err(e),
                }
            }
            JobState::Reveal if mine && core.batch_root == [0; 32] && now > core.commit_block && !past(0) => {
                if !self.phase_is_final(id, core).await? {
                    return Ok(None);
                }
                let Some(c) = self.result(id, core, Role::Provider).await? else { return Ok(None) };
                let reveal = if core.checked() {
                    let indices = sample::sampled::<Sha>(&core.check_seed, core.tasks, core.check_rate_bps, !core.seed_revealed);
                    let leaves_all: Vec<Hash32> = c.roots.iter().enumerate().map(|(i, r)| merkle::task_leaf::<Sha>(i as u32, r)).collect();
                    let proof = merkle::multiproof::<Sha>(&leaves_all, &indices)
                        .ok_or_else(|| WorkerError::Invalid { job: id, reason: "sample out of range".into() })?;
                    let leaves = indices.iter().map(|&i| leaves_all[i as usize]).collect();
                    Reveal::Provider { batch_root: c.batch_root, leaves, proof }
                } else {
                    Reveal::Provider { batch_root: c.batch_root, leaves: vec![], proof: vec![] }
                };
                market.reveal(id, c.salt, &reveal).await?;
                Ok(Some("revealed"))
            }
            JobState::Reveal if verifier.is_some_and(|v| v.account == self.me && v.has_committed() && !v.has_revealed()) && !past(0) => {
                let v = verifier.expect("matched");
                if now <= v.committed_at || !self.phase_is_final(id, core).await? {
                    return Ok(None);
                }
                let Some(c) = self.result(id, core, Role::Verifier(core.round)).await? else { return Ok(None) };
                let roots = if self.answer_was_public(id, core, &v, &c.answer).await? { c.roots.clone() } else { vec![] };
                market.reveal(id, c.salt, &Reveal::Verifier { answer: c.answer, roots }).await?;
                Ok(Some("verification revealed"))
            }
            // Past a deadline, the parties of a job move it on themselves rather than wait for
            // a keeper: the provider for its payout or stake, a verifier for its bond. A hire
            // it never accepted holds nothing of the provider's (no lock): moving it on would
            // only spend the provider's fee on the renter's refund.
            _ if past(GRACE_BLOCKS) && ((mine && core.lock > 0) || verifier.is_some_and(|v| v.account == self.me)) => {
                market.cleanup(id).await?;
                Ok(Some("cleaned up"))
            }
            _ => Ok(None),
        }
    }

    /// This worker's verifier record for the job's current round, if it is drawn.
    async fn my_verifier(&self, id: u64, core: &JobCore) -> Result<Option<Verifier>, WorkerError> {
        let v = self.market().job(id).await?.and_then(|j| j.verifiers[usize::from(core.slot())]);
        Ok(v.filter(|v| v.account == self.me))
    }

    /// Whether `answer` was public before verifier `v` committed (the provider's, or in a
    /// dispute the first verifier's): then the roots behind it must be revealed.
    async fn answer_was_public(&self, id: u64, core: &JobCore, v: &Verifier, answer: &Hash32) -> Result<bool, WorkerError> {
        if core.answered_at != 0 && core.answered_at <= v.committed_at && *answer == core.provider_answer {
            return Ok(true);
        }
        if core.round == 2 {
            if let Some(v1) = self.market().job(id).await?.and_then(|j| j.verifiers[1]) {
                return Ok(v1.has_revealed() && v1.revealed_at <= v.committed_at && v1.answer == *answer);
            }
        }
        Ok(false)
    }

    // ------------------------------------------------------------ validation before signing

    /// Checks everything a job needs before this worker signs for it (see the module docs);
    /// `false` while the check runs, and (the job remembered as refused) when it fails.
    async fn take_check(self: &Arc<Self>, id: u64, core: &JobCore) -> Result<bool, WorkerError> {
        if self.state.lock().unwrap().refused.contains(&id) {
            return Ok(false);
        }
        // Not remembered as refused: the lag may shrink before the job's window closes.
        let lag = self.chain.finality_lag().await?;
        if !chain::window_holds_lag(core.terms.reveal_window, lag) {
            tracing::warn!(job_id = id, lag, reveal_window = core.terms.reveal_window, "not taken: the reveal window cannot hold the finality lag");
            self.metrics.fail("window_below_lag");
            return Ok(false);
        }
        let Some(checked) = self.checked_in_background(id, core, Purpose::Take).await? else { return Ok(false) };
        match checked {
            Ok(()) => Ok(true),
            Err(e @ (WorkerError::Chain(_) | WorkerError::StepTimeout { .. } | WorkerError::Join { .. })) => Err(e),
            Err(e) if e.local() || matches!(e, WorkerError::State { .. }) => {
                // This machine's trouble, not the job's: looked at again on a later pass.
                tracing::warn!(job_id = id, %e, "job not taken");
                self.metrics.fail(e.reason());
                Ok(false)
            }
            Err(e) => {
                tracing::warn!(job_id = id, %e, "job refused before signing");
                self.metrics.fail(e.reason());
                self.state.lock().unwrap().refused.insert(id);
                Ok(false)
            }
        }
    }

    /// The outcome of fetching and checking everything job `id` needs (spec and manifest
    /// through `load_job`, the disk space before taking it, every task's inputs through
    /// `fetch_task`), run in a background task: `None` while it runs. A check just started gets
    /// [`QUICK_CHECK`] to finish within this pass; one that takes longer (a slow or silent
    /// URI: each fetch is bounded by the configured fetch timeout) is looked at again by a
    /// later pass, woken when it ends. Every pass therefore takes chain time only.
    async fn checked_in_background(self: &Arc<Self>, id: u64, core: &JobCore, purpose: Purpose) -> Result<Option<Result<(), WorkerError>>, WorkerError> {
        let taken = self.checks.lock().unwrap().remove(&(id, purpose));
        let mut handle = match taken {
            Some(h) => h,
            None => {
                let (me, core) = (self.clone(), core.clone());
                tokio::spawn(async move {
                    let checked = async {
                        // A vote only needs to know the job's inputs can be had: nothing is
                        // stored (a verifier's full disk must not decide its vote).
                        let keep = if purpose == Purpose::Take { Keep::Stored } else { Keep::Checked };
                        let input = me.job_input(id).await?;
                        let (spec, manifest, ops) = me.load_job(id, &core, &input, keep).await?;
                        if purpose == Purpose::Take {
                            me.check_disk(id, &spec, core.tasks)?;
                        }
                        for t in 0..manifest.tasks.len() {
                            me.fetch_task(id, &spec, &manifest, t, keep).await?;
                        }
                        if purpose == Purpose::Take {
                            let lane = if ops.saturating_mul(u64::from(core.tasks)) > TRUSTED_OPS { Lane::Trial } else { Lane::QuickTrial };
                            me.trial(id, &core, lane).await?;
                        }
                        Ok(())
                    };
                    let outcome = checked.await;
                    me.wake.notify_one();
                    outcome
                })
            }
        };
        let wait = if handle.is_finished() { Duration::ZERO } else { QUICK_CHECK };
        match tokio::time::timeout(wait, &mut handle).await {
            Ok(joined) => Ok(Some(joined.map_err(|e| WorkerError::Join { job: id, reason: e.to_string() })?)),
            Err(_) => {
                self.checks.lock().unwrap().insert((id, purpose), handle);
                Ok(None)
            }
        }
    }

    async fn job_input(&self, id: u64) -> Result<JobInput, WorkerError> {
        if let Some(i) = self.inputs.lock().unwrap().get(&id) {
            return Ok(i.clone());
        }
        let j = self.market().job(id).await?.ok_or_else(|| WorkerError::Invalid { job: id, reason: "vanished".into() })?;
        self.inputs.lock().unwrap().insert(id, j.input.clone());
        Ok(j.input)
    }

    /// The job's spec and manifest, fetched and checked against the job, and the static bound
    /// on the operations one of its tasks executes.
    async fn load_job(&self, id: u64, core: &JobCore, input: &JobInput, keep: Keep) -> Result<(JobSpec, TaskManifest, u64), WorkerError> {
        let invalid = |reason: String| WorkerError::Invalid { job: id, reason };
        let unavailable = |e: blob::BlobError| fetch_failed(id, "", e);
        let uri = String::from_utf8(input.uri.clone()).map_err(|_| invalid("the spec URI is not UTF-8".into()))?;
        let limits = &self.cfg.limits.spec;
        let bytes = self.fetch(&input.spec_hash, &uri, max_spec_bytes(limits), keep).await.map_err(unavailable)?;
        let spec = JobSpec::decode_spec_with_limits(&bytes, limits).map_err(|e| invalid(e.to_string()))?;
        if spec.determinism != Determinism::Exact {
            return Err(invalid("only exact kernels can be spot-checked".into()));
        }
        let ops = capacloud_executor::exec::check_spec_bounded(&spec, limits).map_err(|e| invalid(e.to_string()))?;
        if spec.work_units != core.units_per_task {
            return Err(invalid(format!("the spec says {} units a task, the job {}", spec.work_units, core.units_per_task)));
        }
        let workgroups: u64 = std::iter::once(spec.workgroups)
            .chain(spec.passes.iter().map(|p| p.workgroups))
            .map(|w| w.iter().map(|d| u64::from(*d)).product::<u64>())
            .sum();
        if core.units_per_task < workgroups.div_ceil(WORKGROUPS_PER_UNIT) {
            return Err(invalid(format!("{workgroups} workgroups a task need at least {} units", workgroups.div_ceil(WORKGROUPS_PER_UNIT))));
        }
        let manifest = if input.manifest_hash == [0; 32] {
            if core.tasks != 1 {
                return Err(invalid("a batch without a manifest".into()));
            }
            TaskManifest::single(&spec)
        } else {
            let muri = capacloud_client::renter::sibling_uri(&uri, &input.manifest_hash);
            let max = u64::from(core.tasks) * (spec.bindings.len() as u64) * 700 + 64;
            let m = self.fetch(&input.manifest_hash, &muri, max, keep).await.map_err(unavailable)?;
            TaskManifest::decode_for(&m, &spec, core.tasks, &input.manifest_hash).map_err(|e| invalid(e.to_string()))?
        };
        let per_task = job_bytes(&spec);
        if per_task.saturating_mul(u64::from(core.tasks)) > self.cfg.max_job_bytes {
            return Err(invalid(format!("{} tasks of {per_task} bytes exceed the {}-byte budget", core.tasks, self.cfg.max_job_bytes)));
        }
        Ok((spec, manifest, ops))
    }

    /// Blob `h` through `uri`, within the fetch timeout; kept in the store when `keep`.
    async fn fetch(&self, h: &Hash32, uri: &str, max: u64, keep: Keep) -> Result<Vec<u8>, blob::BlobError> {
        let fetched = async {
            match keep {
                Keep::Stored => self.resolver.fetch(h, uri, max).await,
                Keep::Checked => self.resolver.fetch_unkept(h, uri, max).await,
            }
        };
        match tokio::time::timeout(self.cfg.fetch_timeout, fetched).await {
            Ok(r) => r,
            Err(_) => Err(blob::BlobError::Http { url: uri.into(), reason: format!("no answer within {:?}", self.cfg.fetch_timeout) }),
        }
    }

    /// Declines (before signing) a job whose inputs and outputs, every task's, would not fit
    /// on the store's disk with [`DISK_RESERVE`] to spare: a disk that fills after accepting
    /// would cost the provider its commitment. Not the job's fault: it is not remembered as
    /// refused (space may be freed before its window closes).
    fn check_disk(&self, id: u64, spec: &JobSpec, tasks: u32) -> Result<(), WorkerError> {
        let need = job_bytes(spec).saturating_mul(u64::from(tasks));
        let free = free_bytes(self.store.dir()).map_err(|e| WorkerError::State { path: self.store.dir().into(), reason: format!("free space: {e}") })?;
        if need.saturating_add(DISK_RESERVE) > free {
            return Err(WorkerError::DiskFull { job: id, need, free });
        }
        Ok(())
    }

    /// Task `task`'s inputs by binding, fetched (and kept as `keep` says) and checked
    /// against their declared lengths.
    async fn fetch_task(&self, id: u64, spec: &JobSpec, manifest: &TaskManifest, task: usize, keep: Keep) -> Result<BTreeMap<u32, Vec<u8>>, WorkerError> {
        let mut inputs = BTreeMap::new();
        for (binding, r) in manifest.inputs_of(spec, task) {
            let InputRef { sha256, uri, len } = r;
            let data = self.fetch(&sha256, &uri, len, keep).await.map_err(|e| fetch_failed(id, &format!("task {task}: "), e))?;
            if data.len() as u64 != len {
                return Err(WorkerError::Invalid { job: id, reason: format!("task {task} input {binding}: {} bytes, {len} declared", data.len()) });
            }
            inputs.insert(binding, data);
        }
        Ok(inputs)
    }

    // ------------------------------------------------------------ computing

    /// The result the worker holds for job `id` in `role`.
    fn held(&self, id: u64, role: Role) -> Option<Computed> {
        self.state.lock().unwrap().computed.get(&id).filter(|c| c.round == role.round()).cloned()
    }

    /// The job's result for `role`: persisted, finished in the background, or started now
    /// (`None` until it is done).
    async fn result(self: &Arc<Self>, id: u64, core: &JobCore, role: Role) -> Result<Option<Computed>, WorkerError> {
        if let Some(c) = self.held(id, role) {
            return Ok(Some(c));
        }
        let finished = {
            let mut running = self.running.lock().unwrap();
            match running.get(&(id, role)) {
                Some(h) if h.is_finished() => running.remove(&(id, role)),
                Some(_) => return Ok(None),
                None => {
                    let me = self.clone();
                    let core = core.clone();
                    running.insert(
                        (id, role),
                        tokio::spawn(async move {
                            let computed = me.clone().compute(id, &core, role, Lane::Signed).await;
                            me.wake.notify_one();
                            computed
                        }),
                    );
                    return Ok(None);
                }
            }
        };
        let h = finished.expect("finished task");
        let c = h.await.map_err(|e| WorkerError::Join { job: id, reason: e.to_string() })??;
        self.state.lock().unwrap().computed.insert(id, c.clone());
        self.persist()?;
        Ok(Some(c))
    }

    /// Runs job `id` as its provider before signing for it (see the module docs) and keeps
    /// the result, which the commitment then uses; a job already computed is not run again.
    ///
    /// # Errors
    /// The computation's: a kernel over its limits, crashed or failed is the job's fault
    /// (refused), an unhealthy GPU is not.
    async fn trial(self: &Arc<Self>, id: u64, core: &JobCore, lane: Lane) -> Result<(), WorkerError> {
        if self.held(id, Role::Provider).is_some() {
            return Ok(());
        }
        let c = self.clone().compute(id, core, Role::Provider, lane).await?;
        self.metrics.trials.inc();
        self.state.lock().unwrap().computed.insert(id, c);
        self.persist()
    }

    /// Runs `spec` over every task's inputs, in the kernel sandbox unless configured
    /// in-process; each task's output and commitment, in order.
    /// A long trial's child runs in the background ([`crate::isolate::Priority`]).
    async fn run_kernels(&self, id: u64, spec: &JobSpec, task_inputs: &[BTreeMap<u32, Vec<u8>>], lane: Lane) -> Result<Vec<(Vec<u8>, capacloud_executor::merkle::Commitment)>, WorkerError> {
        let priority = if lane == Lane::Trial { crate::isolate::Priority::Background } else { crate::isolate::Priority::Normal };
        match &self.cfg.isolate {
            Some(exe) => crate::isolate::execute_tasks_at(exe, spec, task_inputs, &self.cfg.limits, crate::isolate::STARTUP_GRACE, priority)
                .await
                .map_err(|source| WorkerError::Isolated { job: id, source }),
            None => {
                let (gpu, limits, spec, task_inputs) = (self.gpu.clone(), self.cfg.limits.clone(), spec.clone(), task_inputs.to_vec());
                tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    capacloud_executor::batch::execute_batch(&gpu, &spec, task_inputs, &limits, |_, e| {
                        out.push((e.output, e.commitment));
                        Ok(())
                    })
                    .map(|_| out)
                })
                .await
                .map_err(|e| WorkerError::Join { job: id, reason: e.to_string() })?
                .map_err(|source| WorkerError::Exec { job: id, source })
            }
        }
    }

    /// The offer this worker serves (a new one after its GPU recovered from an outage).
    pub fn offer_id(&self) -> u64 {
        self.offer_id.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether the GPU passed its last health probe.
    pub fn healthy(&self) -> bool {
        self.unhealthy_since.lock().unwrap().is_none()
    }

    /// Runs a known kernel (a small SHA-256 batch) the way jobs run (sandboxed unless
    /// in-process) and compares it with its CPU reference: whether the GPU works.
    pub async fn probe_health(&self) -> bool {
        use capacloud_executor::workloads::{Sha256Batch, Workload};
        let probe = Sha256Batch { messages: 64, seed: 0x004e_a17b };
        let prepared = probe.prepare();
        let expected = probe.cpu_reference(&prepared);
        let (spec, inputs) = prepared.to_job();
        let _slot = self.gpu_slot.acquire().await.expect("the semaphore is never closed");
        match self.run_kernels(u64::MAX, &spec, std::slice::from_ref(&inputs), Lane::Signed).await {
            Ok(out) if out.len() == 1 && out[0].0 == expected => true,
            Ok(_) => {
                tracing::error!(provider = ?self.me, "GPU health probe: wrong output");
                false
            }
            Err(e) => {
                tracing::error!(provider = ?self.me, %e, "GPU health probe failed");
                false
            }
        }
    }

    /// The GPU failed its probe: stop accepting and bidding, and withdraw the offer so
    /// renters do not hire a worker that cannot compute (its jobs would time out at its
    /// cost). Probed again every `health_retry` by [`Worker::recheck_health`].
    async fn mark_unhealthy(&self) {
        let first = self.unhealthy_since.lock().unwrap().replace(Instant::now()).is_none();
        self.metrics.gpu_healthy.set(0);
        if first {
            tracing::error!(provider = ?self.me, offer = self.offer_id(), "GPU unhealthy: withdrawing the offer until it passes its probe again");
            self.withdraw_offer().await;
        }
    }

    /// Withdraws the offer unless the chain shows it withdrawn already; a failure is logged
    /// and the next probe tries again.
    async fn withdraw_offer(&self) {
        let market = self.market();
        let id = self.offer_id();
        let done = match market.offer(id).await {
            Ok(Some(o)) if o.active => market.remove_offer(id).await.map(|_| ()),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            tracing::warn!(%e, offer = id, "withdrawing the offer failed; retried with the next probe");
        }
    }

    /// While unhealthy, probes again every `health_retry`; once the GPU passes, lists the
    /// offer's terms again (under a new id: the contract keeps a withdrawn offer withdrawn)
    /// and takes jobs again.
    async fn recheck_health(&self) {
        let due = matches!(*self.unhealthy_since.lock().unwrap(), Some(t) if t.elapsed() >= self.cfg.health_retry);
        if !due {
            return;
        }
        if !self.probe_health().await {
            *self.unhealthy_since.lock().unwrap() = Some(Instant::now());
            self.withdraw_offer().await;
            return;
        }
        // A withdrawn offer stays withdrawn on chain: the same terms are listed as a new offer.
        let market = self.market();
        let old = self.offer_id();
        let relisted = match market.offer(old).await {
            Ok(Some(o)) if o.active => Ok(old),
            Ok(Some(o)) => market.list_offer(None, &o.input).await.map(|(id, _)| id),
            Ok(None) => Ok(old),
            Err(e) => Err(e),
        };
        match relisted {
            Ok(id) => {
                self.offer_id.store(id, std::sync::atomic::Ordering::SeqCst);
                *self.unhealthy_since.lock().unwrap() = None;
                self.metrics.gpu_healthy.set(1);
                tracing::info!(provider = ?self.me, offer = id, withdrawn = old, "GPU healthy again: offer listed");
            }
            Err(e) => tracing::warn!(%e, "re-listing the offer failed; retried with the next probe"),
        }
    }

    /// Notes that job `id` produced `root`, so its renter can read it once the job settles
    /// ([`crate::serve::ChainGate`]).
    async fn note_job(&self, root: &Hash32, id: u64) -> Result<(), WorkerError> {
        let (store, root) = (self.store.clone(), *root);
        tokio::task::spawn_blocking(move || store.note_job_sync(&root, id))
            .await
            .map_err(|e| WorkerError::Join { job: id, reason: e.to_string() })??;
        Ok(())
    }

    /// Computes the job's tasks for `role`: every task as provider, the sampled ones as
    /// verifier. Outputs go to the store (and, as provider, the task-root list under the
    /// batch root), so renters and verifiers can fetch them.
    /// A trial (before signing) runs in its trial `lane`, every other computation in the GPU
    /// slot.
    async fn compute(self: Arc<Self>, id: u64, core: &JobCore, role: Role, lane: Lane) -> Result<Computed, WorkerError> {
        let salt = hash::derive_salt::<Sha>(&self.cfg.salt_secret, id);
        let round = role.round();
        if role == Role::Provider && self.cfg.cheat {
            let roots: Vec<Hash32> = (0..core.tasks).map(|i| blob::sha256(&[b"never computed".as_slice(), &id.to_le_bytes(), &i.to_le_bytes()].concat())).collect();
            let batch_root = blob::batch_root(&roots);
            return Ok(Computed { roots, batch_root, answer: [0; 32], salt, round });
        }
        let input = self.job_input(id).await?;
        let (spec, manifest, ops) = self.load_job(id, core, &input, Keep::Stored).await?;
        let tasks: Vec<u32> = match role {
            Role::Provider => (0..core.tasks).collect(),
            Role::Verifier(_) => sample::sampled::<Sha>(&core.check_seed, core.tasks, core.check_rate_bps, !core.seed_revealed),
        };
        if matches!(role, Role::Verifier(_)) {
            // The provider checked before signing; a drawn verifier checks before fetching
            // and running its sample, whose outputs (declared by the renter) must fit.
            self.check_disk(id, &spec, tasks.len() as u32)?;
        }
        let mut task_inputs = Vec::with_capacity(tasks.len());
        for &t in &tasks {
            task_inputs.push(self.fetch_task(id, &spec, &manifest, t as usize, Keep::Stored).await?);
        }
        if !self.healthy() {
            return Err(WorkerError::GpuUnhealthy { job: id });
        }
        let trial = lane != Lane::Signed;
        let (results, started) = match lane {
            Lane::Trial => {
                let bound = ops.saturating_mul(tasks.len() as u64);
                let started = Mutex::new(Instant::now());
                let (me, spec, inputs, started_at) = (&*self, &spec, &task_inputs[..], &started);
                let mut runs = 0u32;
                let ran = self
                    .long_lane
                    .run(bound, move || {
                        runs += 1;
                        if runs > 1 {
                            me.metrics.trial_preemptions.inc();
                        }
                        *started_at.lock().unwrap() = Instant::now();
                        tracing::info!(job_id = id, bound, run = runs, "long trial running");
                        async move {
                            let _spent = GpuTime::start(&me.metrics);
                            me.run_kernels(id, spec, inputs, lane).await
                        }
                    })
                    .await;
                if ran.preempted > 0 {
                    tracing::info!(job_id = id, bound, preempted = ran.preempted, "long trial ran to its end after preemption");
                }
                (ran.output, started.into_inner().unwrap())
            }
            Lane::Signed | Lane::QuickTrial => {
                let slot = if lane == Lane::Signed { &self.gpu_slot } else { &self.quick_slot };
                let _slot = slot.acquire().await.expect("the semaphore is never closed");
                let started = Instant::now();
                let _spent = GpuTime::start(&self.metrics);
                (self.run_kernels(id, &spec, &task_inputs, lane).await, started)
            }
        };
        let results = match results {
            Ok(r) => r,
            Err(e) => {
                // The job's kernel failed: the job's fault, or the GPU's? A known kernel says.
                // A GPU fault is not the job's: the job waits (it is not reported).
                if !self.probe_health().await {
                    self.mark_unhealthy().await;
                    return Err(WorkerError::GpuUnhealthy { job: id });
                }
                return Err(e);
            }
        };
        let mut roots = Vec::with_capacity(results.len());
        for (output, commitment) in &results {
            self.store.put_output(&commitment.root, output).await?;
            self.note_job(&commitment.root, id).await?;
            roots.push(commitment.root);
        }
        tracing::info!(job_id = id, ?role, trial, ?lane, tasks = tasks.len(), secs = started.elapsed().as_secs_f64(), isolated = self.cfg.isolate.is_some(), "computed");
        Ok(match role {
            Role::Provider => {
                let batch_root = self.store.put_batch(&roots).await?;
                self.note_job(&batch_root, id).await?;
                Computed { roots, batch_root, answer: [0; 32], salt, round }
            }
            Role::Verifier(_) => {
                let leaves: Vec<Hash32> = tasks.iter().zip(&roots).map(|(i, r)| merkle::task_leaf::<Sha>(*i, r)).collect();
                let answer = sample::answer::<Sha>(id, &leaves);
                if tasks.len() as u32 == core.tasks {
                    // Every task re-executed (one task, or a 100 % check): this endpoint can
                    // serve the renter the whole job if the provider's cannot.
                    let batch_root = self.store.put_batch(&roots).await?;
                    self.note_job(&batch_root, id).await?;
                }
                Computed { roots, batch_root: [0; 32], answer, salt, round }
            }
        })
    }
}
