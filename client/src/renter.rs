//! The renter's side of a job: build a spec and its tasks (library workload or custom
//! WGSL), check everything before anything is signed, store spec, inputs and task manifest
//! content-addressed, journal the job (seed and terms) before signing so it is never lost,
//! create it with escrow and a seed commitment, reveal the seed once the provider has
//! committed, move it on past deadlines, and fetch every task's output checked against the
//! batch root revealed on chain.

use crate::blob::{self, BlobError, BlobStore};
use crate::chain::ChainError;
use crate::marketplace::{seed_commitment, Amount, Hash32, Job, JobInput, JobState, Requirements};
use crate::Marketplace;
use capacloud_executor::batch::{ManifestError, TaskManifest, MANIFEST_VERSION};
use capacloud_executor::exec::{self, ExecError};
use capacloud_executor::spec::{sha256, Binding, BindingKind, Determinism, InputRef, JobSpec, SpecLimits, FORMAT_VERSION};
use capacloud_executor::workloads::{self, Prepared};
use codec::{Decode, Encode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use subxt::utils::H160;

/// Why a job could not be built, submitted, followed or fetched.
#[derive(Debug, thiserror::Error)]
pub enum RenterError {
    #[error("unknown workload `{0}` (known: {names})", names = workloads::NAMES.join(", "))]
    UnknownWorkload(String),
    #[error("the job spec is invalid: {0}")]
    BadSpec(#[from] ExecError),
    #[error("the workload's input is invalid: {0}")]
    BadWorkloadInput(String),
    #[error("the tasks do not share one kernel and shape: task {task} {reason}")]
    TaskShape { task: usize, reason: String },
    #[error("{0} tasks: a job has 1 to {max}", max = crate::marketplace::MAX_TASKS)]
    TaskCount(usize),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("cannot read {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a custom job needs at least one --output")]
    NoOutput,
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("no randomness for the seed: {0}")]
    Random(String),
    #[error("job {0} has no revealed batch root (it did not settle)")]
    NoResult(u64),
    #[error("no job {0} in the journal at {1} (jobs submitted from this machine are journaled there)")]
    NotJournaled(u64, PathBuf),
    #[error("job journal {path}: {reason}")]
    Journal { path: PathBuf, reason: String },
    #[error("job {job} did not end within {waited:?} (state {state:?})")]
    Timeout { job: u64, waited: Duration, state: JobState },
}

/// A spec with every task's inputs, ready to submit.
pub struct JobBundle {
    /// The spec; its input references are task 0's.
    pub spec: JobSpec,
    /// Every task's inputs (binding → bytes), task 0 first.
    pub tasks: Vec<BTreeMap<u32, Vec<u8>>>,
    /// The library jobs they came from (for their CPU references), if any.
    pub library: Option<(Box<dyn workloads::Workload>, Vec<Prepared>)>,
}

impl JobBundle {
    /// Task 0's inputs.
    pub fn inputs(&self) -> &BTreeMap<u32, Vec<u8>> {
        &self.tasks[0]
    }
}

/// `tasks` tasks of a library workload (see `capacloud_executor::workloads::task_of`): task
/// `i` is the workload at seed `seed + i` (its inputs differ; kernel, dispatch and
/// parameters are shared), or for `mandelbrot` strip `i` of one image.
///
/// # Errors
/// [`RenterError::UnknownWorkload`], [`RenterError::TaskCount`], [`RenterError::TaskShape`]
/// (a workload whose parameters vary with the seed cannot be batched),
/// [`RenterError::BadWorkloadInput`].
pub fn library_job(name: &str, size: u32, seed: u64, tasks: u32) -> Result<JobBundle, RenterError> {
    library_job_with_columns(name, size, None, seed, tasks)
}

/// [`library_job`] with an explicit column count (`ntt-babybear` only; see
/// `capacloud_executor::workloads::by_name_with_columns`).
///
/// # Errors
/// As [`library_job`]; [`RenterError::BadWorkloadInput`] for columns on another workload or
/// out of range.
pub fn library_job_with_columns(name: &str, size: u32, columns: Option<u32>, seed: u64, tasks: u32) -> Result<JobBundle, RenterError> {
    if tasks == 0 || tasks > crate::marketplace::MAX_TASKS {
        return Err(RenterError::TaskCount(tasks as usize));
    }
    let mut prepared = Vec::new();
    let mut spec0: Option<JobSpec> = None;
    let mut all = Vec::new();
    let mut first = None;
    for i in 0..tasks {
        let w = match columns {
            None => workloads::task_of(name, size, seed, i, tasks).ok_or_else(|| RenterError::UnknownWorkload(name.into()))?,
            Some(c) => {
                if !workloads::NAMES.contains(&name) {
                    return Err(RenterError::UnknownWorkload(name.into()));
                }
                workloads::by_name_with_columns(name, size, c, seed.wrapping_add(u64::from(i))).ok_or_else(|| {
                    RenterError::BadWorkloadInput(format!("--columns {c}: {name} takes no columns, or not that many (ntt-babybear: 1..={})", workloads::ntt::MAX_COLUMNS))
                })?
            }
        };
        let p = w.prepare();
        w.validate(&p).map_err(|e| RenterError::BadWorkloadInput(e.to_string()))?;
        let (spec, inputs) = p.to_job();
        match &spec0 {
            None => spec0 = Some(spec),
            Some(s0) => {
                if shape(s0) != shape(&spec) {
                    return Err(RenterError::TaskShape { task: i as usize, reason: "has other parameters than task 0".into() });
                }
            }
        }
        all.push(inputs);
        prepared.push(p);
        if first.is_none() {
            first = Some(w);
        }
    }
    Ok(JobBundle { spec: spec0.expect("at least one task"), tasks: all, library: first.map(|w| (w, prepared)) })
}

/// A spec with its input references blanked: what every task of a batch shares.
fn shape(spec: &JobSpec) -> JobSpec {
    let mut s = spec.clone();
    for b in &mut s.bindings {
        if let BindingKind::Input(r) = &mut b.kind {
            r.sha256 = [0; 32];
            r.uri = String::new();
        }
    }
    s
}

fn read_file(p: &Path) -> Result<Vec<u8>, RenterError> {
    std::fs::read(p).map_err(|source| RenterError::File { path: p.into(), source })
}

/// A custom WGSL job: the kernel and outputs, and one input set per task (binding →
/// file). Every task's inputs must have the same lengths (task 0's).
///
/// # Errors
/// [`RenterError::File`], [`RenterError::NoOutput`], [`RenterError::TaskCount`],
/// [`RenterError::TaskShape`].
pub fn custom_job(
    wgsl_path: &Path,
    entry_point: &str,
    workgroups: [u32; 3],
    task_inputs: &[Vec<(u32, PathBuf)>],
    outputs: &[(u32, u64)],
    work_units: u64,
) -> Result<JobBundle, RenterError> {
    let wgsl = String::from_utf8_lossy(&read_file(wgsl_path)?).into_owned();
    if outputs.is_empty() {
        return Err(RenterError::NoOutput);
    }
    if task_inputs.is_empty() || task_inputs.len() > crate::marketplace::MAX_TASKS as usize {
        return Err(RenterError::TaskCount(task_inputs.len()));
    }
    let mut tasks = Vec::new();
    for (i, files) in task_inputs.iter().enumerate() {
        let mut data = BTreeMap::new();
        for (binding, path) in files {
            data.insert(*binding, read_file(path)?);
        }
        if i > 0 {
            let lens = |m: &BTreeMap<u32, Vec<u8>>| m.iter().map(|(b, d)| (*b, d.len())).collect::<Vec<_>>();
            if lens(&data) != lens(&tasks[0]) {
                return Err(RenterError::TaskShape { task: i, reason: "has other input bindings or lengths than task 0".into() });
            }
        }
        tasks.push(data);
    }
    let mut bindings = Vec::new();
    for (binding, bytes) in &tasks[0] {
        let h = sha256(bytes);
        bindings.push(Binding { binding: *binding, kind: BindingKind::Input(InputRef { sha256: h, uri: blob::uri(&h), len: bytes.len() as u64 }) });
    }
    for (binding, len) in outputs {
        bindings.push(Binding { binding: *binding, kind: BindingKind::Output { len: *len } });
    }
    bindings.sort_by_key(|b| b.binding);
    let spec = JobSpec {
        version: FORMAT_VERSION,
        wgsl,
        entry_point: entry_point.into(),
        workgroups,
        bindings,
        work_units,
        determinism: Determinism::Exact,
        passes: vec![],
    };
    Ok(JobBundle { spec, tasks, library: None })
}

/// The input sets of a task directory: one subdirectory per task (in name order), each
/// holding a file per input binding named by its number (`0`, `0.bin`, …).
///
/// # Errors
/// [`RenterError::File`] for unreadable directories or a file that does not name a binding.
pub fn task_dirs(dir: &Path) -> Result<Vec<Vec<(u32, PathBuf)>>, RenterError> {
    let io = |source| RenterError::File { path: dir.into(), source };
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir).map_err(io)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    subdirs.sort();
    let mut tasks = Vec::new();
    for d in subdirs {
        let mut files = Vec::new();
        for e in std::fs::read_dir(&d).map_err(|source| RenterError::File { path: d.clone(), source })? {
            let path = e.map_err(|source| RenterError::File { path: d.clone(), source })?.path();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let binding = stem.parse::<u32>().map_err(|_| RenterError::File {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "a task input file is named by its binding number"),
            })?;
            files.push((binding, path));
        }
        files.sort();
        tasks.push(files);
    }
    Ok(tasks)
}

/// Checks a bundle as a worker will (fields, WGSL, bindings, every task's inputs): run
/// before anything is signed.
///
/// # Errors
/// [`RenterError::BadSpec`].
pub fn check(p: &JobBundle) -> Result<(), RenterError> {
    exec::check_spec(&p.spec, &SpecLimits::default())?;
    for inputs in &p.tasks {
        let mut spec = p.spec.clone();
        for b in &mut spec.bindings {
            if let BindingKind::Input(r) = &mut b.kind {
                if let Some(d) = inputs.get(&b.binding) {
                    r.sha256 = sha256(d);
                }
            }
        }
        exec::check_inputs(&spec, inputs)?;
    }
    Ok(())
}

/// What to ask of the market.
#[derive(Clone, Debug)]
pub struct Terms {
    pub offer_id: Option<u64>,
    pub max_price_per_unit: Amount,
    /// Probability that each task is re-executed (basis points; 0 = never checked).
    pub check_rate_bps: u16,
    /// Blocks the provider has to compute and commit (a verifier gets as many).
    pub compute_blocks: u32,
    pub requirements: Requirements,
    /// Pay the provider if the check finds no verifier.
    pub pay_if_unverified: bool,
}

/// A fresh random 32-byte seed.
///
/// # Errors
/// [`RenterError::Random`].
pub fn random_seed() -> Result<Hash32, RenterError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| RenterError::Random(e.to_string()))?;
    Ok(seed)
}

/// The URI of blob `h` served where `sibling` (another blob's URI) is: the same store.
pub fn sibling_uri(sibling: &str, h: &[u8; 32]) -> String {
    match sibling.rsplit_once('/') {
        Some((base, _)) if blob::is_http_url(sibling) => format!("{base}/{}", hex::encode(h)),
        _ => blob::uri(h),
    }
}

/// Stores every task's inputs, the spec (with task 0's) and, for a batch, the manifest, all
/// named by where `blobs` serves them; returns the job input for `create_job`.
///
/// # Errors
/// Blob store errors.
pub async fn stage(blobs: &dyn BlobStore, p: &JobBundle, terms: &Terms) -> Result<JobInput, RenterError> {
    let mut refs: Vec<Vec<InputRef>> = Vec::with_capacity(p.tasks.len());
    for inputs in &p.tasks {
        let mut task = Vec::new();
        for b in &p.spec.bindings {
            if let BindingKind::Input(_) = b.kind {
                let data = inputs.get(&b.binding).ok_or(RenterError::BadSpec(ExecError::MissingInput { binding: b.binding }))?;
                let h = blobs.put(data).await?;
                task.push(InputRef { sha256: h, uri: blobs.locator(&h), len: data.len() as u64 });
            }
        }
        refs.push(task);
    }
    let mut spec = p.spec.clone();
    let mut it = refs[0].iter();
    for b in &mut spec.bindings {
        if let BindingKind::Input(r) = &mut b.kind {
            *r = it.next().cloned().expect("one reference per input binding");
        }
    }
    let spec_hash = blobs.put(&spec.encode_spec()).await?;
    let manifest_hash = if p.tasks.len() > 1 {
        let m = TaskManifest { version: MANIFEST_VERSION, tasks: refs };
        m.check(&spec, p.tasks.len() as u32)?;
        blobs.put(&m.encode_manifest()).await?
    } else {
        [0; 32]
    };
    Ok(JobInput {
        spec_hash,
        manifest_hash,
        uri: blobs.locator(&spec_hash).into_bytes(),
        tasks: p.tasks.len() as u32,
        units_per_task: spec.work_units,
        max_price_per_unit: terms.max_price_per_unit,
        requirements: terms.requirements,
        compute_blocks: terms.compute_blocks,
        check_rate_bps: terms.check_rate_bps,
        pay_if_unverified: terms.pay_if_unverified,
        offer_id: terms.offer_id,
    })
}

// ------------------------------------------------------------------ the journal

/// What the renter must never lose about a job: written before the job is signed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobRecord {
    /// The contract (0x…).
    pub contract: String,
    /// The job's terms, SCALE hex (`JobInput`).
    pub input: String,
    /// The secret seed, hex.
    pub seed: String,
    /// The job count before it was created: its id is at least this.
    pub first_id: u64,
    /// Its id, once known.
    pub job_id: Option<u64>,
}

impl JobRecord {
    pub fn input(&self) -> Option<JobInput> {
        JobInput::decode(&mut &hex::decode(&self.input).ok()?[..]).ok()
    }
    pub fn seed(&self) -> Option<Hash32> {
        hex::decode(&self.seed).ok()?.try_into().ok()
    }
}

/// The renter's job journal: one JSON file per job under a directory
/// (`$CAPACLOUD_HOME/jobs`), written atomically and fsynced before anything is signed.
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn err(&self, reason: impl std::fmt::Display) -> RenterError {
        RenterError::Journal { path: self.dir.clone(), reason: reason.to_string() }
    }

    /// The file of a job with `input` and `seed` (before its id is known).
    fn path_for(&self, contract: H160, input: &JobInput, seed: &Hash32) -> PathBuf {
        let key = sha256(&(contract, input, seed_commitment(seed)).encode());
        self.dir.join(format!("{}.json", hex::encode(&key[..16])))
    }

    /// Writes `record` durably (temp file, fsync, rename, fsync of the directory).
    pub fn write(&self, path: &Path, record: &JobRecord) -> Result<(), RenterError> {
        use std::io::Write;
        std::fs::create_dir_all(&self.dir).map_err(|e| self.err(e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| self.err(e))?;
        tmp.write_all(&serde_json::to_vec_pretty(record).map_err(|e| self.err(e))?).map_err(|e| self.err(e))?;
        tmp.as_file().sync_all().map_err(|e| self.err(e))?;
        tmp.persist(path).map_err(|e| self.err(e.error))?;
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every record in the journal.
    pub fn records(&self) -> Result<Vec<(PathBuf, JobRecord)>, RenterError> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return Ok(out) };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                // A torn or foreign file is skipped, never fatal.
                if let Ok(r) = serde_json::from_slice::<JobRecord>(&std::fs::read(&p).unwrap_or_default()) {
                    out.push((p, r));
                }
            }
        }
        Ok(out)
    }

    /// The record of job `job_id` on `contract`.
    pub fn find(&self, contract: H160, job_id: u64) -> Result<JobRecord, RenterError> {
        let c = format!("{contract:?}");
        self.records()?
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| r.contract == c && r.job_id == Some(job_id))
            .ok_or_else(|| RenterError::NotJournaled(job_id, self.dir.clone()))
    }
}

/// Creates the job for `input`, journaled: the record (seed included) is on disk before the
/// transaction is signed, and a retry of the same input and seed finds the job the first
/// attempt created (by its renter and terms on chain) instead of escrowing twice.
///
/// # Errors
/// Journal and chain errors (a refused `create_job` is `ChainError::Reverted`).
pub async fn create(market: &Marketplace<'_>, journal: &Journal, input: &JobInput, seed: &Hash32, now: u32) -> Result<u64, RenterError> {
    let contract = market.address();
    let path = journal.path_for(contract, input, seed);
    let existing: Option<JobRecord> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(r) = &existing {
        if let Some(id) = r.job_id {
            return Ok(id);
        }
        // A crash between signing and recording: look for the job on chain.
        if let Some(id) = recover_id(market, journal, &path, r).await? {
            return Ok(id);
        }
    }
    let record = JobRecord {
        contract: format!("{contract:?}"),
        input: hex::encode(input.encode()),
        seed: hex::encode(seed),
        first_id: market.job_count().await?,
        job_id: None,
    };
    journal.write(&path, &record)?;
    let escrow = market.required_escrow(input, now).await?;
    let (id, _) = market.create_job(input, seed_commitment(seed), escrow).await?;
    journal.write(&path, &JobRecord { job_id: Some(id), ..record })?;
    Ok(id)
}

/// The id of the job a journal record (at `path`) names but never recorded — its renter
/// died between signing `create_job` and writing the id — found on chain by the signer,
/// seed commitment and terms among the jobs created since, and written to the record.
/// `None`: no such job (the transaction never landed, nothing was escrowed).
///
/// # Errors
/// Journal and chain errors; [`RenterError::Journal`] for a record that does not decode.
pub async fn recover_id(market: &Marketplace<'_>, journal: &Journal, path: &Path, r: &JobRecord) -> Result<Option<u64>, RenterError> {
    let (Some(input), Some(seed)) = (r.input(), r.seed()) else { return Err(journal.err(format!("{} does not decode", path.display()))) };
    let me = market.chain().address();
    let commitment = seed_commitment(&seed);
    for id in r.first_id..market.job_count().await? {
        if let Some(j) = market.job(id).await? {
            if j.core.renter == me && j.core.seed_commitment == commitment && j.input == input {
                journal.write(path, &JobRecord { job_id: Some(id), ..r.clone() })?;
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

/// [`recover_id`] for every record of `market`'s jobs in the journal that has no id yet:
/// the ids found (in journal order) and how many records name no job.
///
/// # Errors
/// As [`recover_id`].
pub async fn recover(market: &Marketplace<'_>, journal: &Journal) -> Result<(Vec<u64>, usize), RenterError> {
    let contract = format!("{:?}", market.address());
    let (mut found, mut none) = (Vec::new(), 0);
    for (path, r) in journal.records()? {
        if r.contract != contract || r.job_id.is_some() {
            continue;
        }
        match recover_id(market, journal, &path, &r).await? {
            Some(id) => found.push(id),
            None => none += 1,
        }
    }
    Ok((found, none))
}

// ------------------------------------------------------------------ following and fetching

/// Blocks past a phase's deadline before the renter calls `cleanup` itself.
pub const CLEANUP_GRACE_BLOCKS: u32 = 2;

/// Follows a job to its end: reveals the seed once the provider's commitment is in a
/// finalized block (a retracted commitment could otherwise be made again knowing the
/// sample), makes due verifier draws, and calls `cleanup` once a phase's deadline (plus
/// [`CLEANUP_GRACE_BLOCKS`]) has passed with nobody acting. It acts on the best block and
/// returns once the job's end is final. `on_state` sees every state change (for progress
/// display).
///
/// # Errors
/// Chain errors; [`RenterError::Timeout`] after `timeout`.
pub async fn follow(
    market: &Marketplace<'_>,
    id: u64,
    seed: &Hash32,
    timeout: Duration,
    mut on_state: impl FnMut(JobState),
) -> Result<Job, RenterError> {
    let start = Instant::now();
    let mut last = None;
    loop {
        if start.elapsed() > timeout {
            return Err(RenterError::Timeout { job: id, waited: timeout, state: last.unwrap_or(JobState::Open) });
        }
        let (job, now) = match (market.job(id).await, market.chain().best_number().await) {
            (Ok(Some(j)), Ok(now)) => (j, now),
            (Ok(None), _) => return Err(ChainError::Unexpected(format!("job {id} does not exist")).into()),
            // The connection dropped: the client reconnects by itself; read again shortly.
            (Err(e), _) | (_, Err(e)) if e.is_connection() => {
                tracing::warn!(job_id = id, %e, "chain read failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            (Err(e), _) | (_, Err(e)) => return Err(e.into()),
        };
        if last != Some(job.state) {
            on_state(job.state);
            last = Some(job.state);
        }
        let wants_final = job.state.is_terminal() || (job.state == JobState::Committed && now > job.commit_block);
        let is_final = if wants_final {
            match market.finalized().await {
                Ok((fin, _)) => match fin.job_core(id).await {
                    Ok(f) => f.is_some_and(|f| f.state == job.state),
                    Err(e) if e.is_connection() => false,
                    Err(e) => return Err(e.into()),
                },
                Err(e) if e.is_connection() => false,
                Err(e) => return Err(e.into()),
            }
        } else {
            false
        };
        if job.state.is_terminal() && is_final {
            return Ok(job);
        }
        let step = if job.state.is_terminal() {
            None
        } else if job.state == JobState::Committed && now > job.commit_block && is_final {
            Some(market.reveal_seed(id, *seed).await.map(|_| ()))
        } else if job.draw_at.is_some_and(|b| b < now) || now > job.phase_deadline + CLEANUP_GRACE_BLOCKS {
            // A due draw is made by anyone once its beacon block is sealed; a grace period
            // past a deadline lets the party whose turn it was move first.
            Some(market.cleanup(id).await.map(|_| ()))
        } else {
            None
        };
        match step {
            Some(Ok(())) => continue,
            // Someone else moved the job on first, or the connection dropped (a transaction
            // in flight may or may not have landed): read the job again and decide anew.
            Some(Err(e)) if e.is_connection() || matches!(e, ChainError::Reverted { .. } | ChainError::Dispatch { .. }) => {
                tracing::debug!(job_id = id, %e, "step not taken; re-reading the job");
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

/// Fetches every task's output of a paid job, checked against the batch root revealed on
/// chain: the task-root list first (it must hash to the batch root), then each output (its
/// Merkle root must be the task's root). Tries the provider's endpoint (the URL in its
/// offer), then each of the job's verifiers' endpoints, then `fallback`. Requests to the
/// endpoints are signed by the market connection's key (the renter's).
///
/// A round that fails on the way (a busy, flooded or unreachable endpoint) is tried again
/// after 1, 2, 4 and 8 s before the error is returned.
///
/// # Errors
/// [`RenterError::NoResult`] for a job without a revealed root; the last fetch or check error.
pub async fn fetch_outputs(market: &Marketplace<'_>, job_id: u64, job: &Job, fallback: &dyn BlobStore) -> Result<Vec<Vec<u8>>, RenterError> {
    let mut wait = Duration::from_secs(1);
    loop {
        match fetch_outputs_once(market, job_id, job, fallback).await {
            Err(RenterError::Blob(e)) if wait <= FETCH_RETRY_MAX && !matches!(e, BlobError::HashMismatch { .. } | BlobError::BadProof { .. }) => {
                tracing::info!(job_id, %e, "outputs not fetched; trying again in {wait:?}");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            other => return other,
        }
    }
}

/// Longest pause between two rounds of [`fetch_outputs`].
const FETCH_RETRY_MAX: Duration = Duration::from_secs(8);

async fn fetch_outputs_once(market: &Marketplace<'_>, job_id: u64, job: &Job, fallback: &dyn BlobStore) -> Result<Vec<Vec<u8>>, RenterError> {
    if job.batch_root == [0; 32] {
        return Err(RenterError::NoResult(job_id));
    }
    let stores = endpoint_stores(market, job).await?;
    let mut last_err: Option<BlobError> = None;
    let mut roots = None;
    for s in stores.iter().map(|s| s as &dyn BlobStore).chain([fallback]) {
        match blob::fetch_verified_batch(s, &job.batch_root, Some(job.tasks)).await {
            Ok(r) => {
                roots = Some(r);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some(roots) = roots else { return Err(last_err.unwrap_or(BlobError::NotFound("batch".into())).into()) };
    let mut outputs = Vec::with_capacity(roots.len());
    'task: for (i, root) in roots.iter().enumerate() {
        for s in stores.iter().map(|s| s as &dyn BlobStore).chain([fallback]) {
            match blob::fetch_verified_output(s, root).await {
                Ok(data) => {
                    outputs.push(data);
                    continue 'task;
                }
                Err(e) => {
                    tracing::debug!(job_id, task = i, %e, "output not served here; trying the next store");
                    last_err = Some(e);
                }
            }
        }
        return Err(last_err.unwrap_or(BlobError::NotFound(format!("task {i}"))).into());
    }
    Ok(outputs)
}

/// Makes a paid job's outputs readable by anyone at the endpoints that hold them: its
/// task-root list and every task's output on the provider's endpoint, and whatever of them
/// each verifier's endpoint holds. Signed by the market connection's key (the renter's).
/// Returns how many (endpoint, root) pairs were published.
///
/// # Errors
/// [`RenterError::NoResult`] for a job without a revealed root; the provider's refusal or
/// fetch error when not one root could be published anywhere.
pub async fn publish_outputs(market: &Marketplace<'_>, job_id: u64, job: &Job) -> Result<usize, RenterError> {
    if job.batch_root == [0; 32] {
        return Err(RenterError::NoResult(job_id));
    }
    let mut published = 0;
    let mut last_err = None;
    for store in endpoint_stores(market, job).await? {
        let roots = match blob::fetch_verified_batch(&store, &job.batch_root, Some(job.tasks)).await {
            Ok(roots) => roots,
            Err(e) => {
                last_err = Some(e);
                continue;
            }
        };
        for root in std::iter::once(job.batch_root).chain(roots) {
            match store.publish(&root).await {
                Ok(()) => published += 1,
                Err(e) => {
                    tracing::debug!(job_id, root = %hex::encode(root), %e, "not published here");
                    last_err = Some(e);
                }
            }
        }
    }
    if published == 0 {
        return Err(last_err.unwrap_or(BlobError::NotFound(format!("job {job_id}'s outputs"))).into());
    }
    Ok(published)
}

/// The endpoints of the job's provider and verifiers (those with an http(s) endpoint), in
/// that order, their requests signed by the market connection's key (the renter's): workers
/// serve outputs only to the renter of a paid job.
async fn endpoint_stores(market: &Marketplace<'_>, job: &Job) -> Result<Vec<blob::HttpStore>, RenterError> {
    let signer = blob::access::Signer::new(market.chain().keypair().clone());
    let mut stores = Vec::new();
    for owner in std::iter::once(job.provider).chain(job.verifiers.iter().flatten().map(|v| v.account)) {
        if let Some(url) = endpoint_of(market, owner, job).await? {
            stores.push(blob::HttpStore::new(&url)?.signed_by(signer.clone()));
        }
    }
    Ok(stores)
}

/// The `http(s)` endpoint in the offers of `account` (the job's offer first).
async fn endpoint_of(market: &Marketplace<'_>, account: H160, job: &Job) -> Result<Option<String>, ChainError> {
    if let Some(id) = job.offer_id {
        if let Some(o) = market.offer(id).await? {
            if o.provider == account {
                return Ok(o.info().map(|i| i.endpoint).filter(|e| blob::is_http_url(e)));
            }
        }
    }
    // A verifier: its newest active offer.
    for id in (0..market.offer_count().await?).rev() {
        if let Some(o) = market.offer(id).await? {
            if o.provider == account && o.active {
                return Ok(o.info().map(|i| i.endpoint).filter(|e| blob::is_http_url(e)));
            }
        }
    }
    Ok(None)
}

/// The seed of a journaled job, for `job follow` after a crash.
///
/// # Errors
/// [`RenterError::NotJournaled`], [`RenterError::Journal`] (a record without a valid seed).
pub fn journaled_seed(journal: &Journal, contract: H160, job_id: u64) -> Result<Hash32, RenterError> {
    let r = journal.find(contract, job_id)?;
    r.seed().ok_or_else(|| journal.err(format!("job {job_id}'s record has no valid seed")))
}
