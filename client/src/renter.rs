//! The renter's side of a job: build a spec (library workload or custom WGSL), check it
//! before anything is signed, store spec and inputs content-addressed, create the job with
//! escrow and a seed commitment, reveal the seed when the provider has committed, and fetch
//! the output checked against the revealed Merkle root.

use crate::blob::{self, BlobError, BlobStore};
use crate::chain::ChainError;
use crate::marketplace::{seed_commitment, Amount, Hash32, Job, JobInput, JobState, Requirements};
use crate::Marketplace;
use capacloud_executor::exec::{self, ExecError};
use capacloud_executor::spec::{sha256, Binding, BindingKind, Determinism, InputRef, JobSpec, SpecLimits, FORMAT_VERSION};
use capacloud_executor::workloads::{self, Prepared};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Why a job could not be built, submitted or followed.
#[derive(Debug, thiserror::Error)]
pub enum RenterError {
    #[error("unknown workload `{0}` (known: {names})", names = workloads::NAMES.join(", "))]
    UnknownWorkload(String),
    #[error("the job spec is invalid: {0}")]
    BadSpec(#[from] ExecError),
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
    #[error("job {0} has no revealed result")]
    NoResult(u64),
    #[error("job {job} did not end within {waited:?} (state {state:?})")]
    Timeout { job: u64, waited: Duration, state: JobState },
}

/// A spec with its inputs, ready to submit.
pub struct JobBundle {
    pub spec: JobSpec,
    pub inputs: BTreeMap<u32, Vec<u8>>,
    /// The library job it came from (for its CPU reference), if any.
    pub library: Option<(Box<dyn workloads::Workload>, Prepared)>,
}

/// A library workload by name (see `capacloud_executor::workloads::by_name`).
///
/// # Errors
/// [`RenterError::UnknownWorkload`].
pub fn library_job(name: &str, size: u32, seed: u64) -> Result<JobBundle, RenterError> {
    let w = workloads::by_name(name, size, seed).ok_or_else(|| RenterError::UnknownWorkload(name.into()))?;
    let p = w.prepare();
    let (spec, inputs) = p.to_job();
    Ok(JobBundle { spec, inputs, library: Some((w, p)) })
}

/// A custom WGSL job: inputs from files, outputs by length.
///
/// # Errors
/// [`RenterError::File`], [`RenterError::NoOutput`].
pub fn custom_job(
    wgsl_path: &std::path::Path,
    entry_point: &str,
    workgroups: [u32; 3],
    inputs: &[(u32, PathBuf)],
    outputs: &[(u32, u64)],
    work_units: u64,
) -> Result<JobBundle, RenterError> {
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|source| RenterError::File { path: p.into(), source });
    let wgsl = String::from_utf8_lossy(&read(wgsl_path)?).into_owned();
    if outputs.is_empty() {
        return Err(RenterError::NoOutput);
    }
    let mut bindings = Vec::new();
    let mut data = BTreeMap::new();
    for (binding, path) in inputs {
        let bytes = read(path)?;
        let h = sha256(&bytes);
        bindings.push(Binding {
            binding: *binding,
            kind: BindingKind::Input(InputRef { sha256: h, uri: blob::uri(&h), len: bytes.len() as u64 }),
        });
        data.insert(*binding, bytes);
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
    };
    Ok(JobBundle { spec, inputs: data, library: None })
}

/// Checks a spec as a worker will (fields, WGSL, bindings): run before anything is signed.
///
/// # Errors
/// [`RenterError::BadSpec`].
pub fn check(p: &JobBundle) -> Result<(), RenterError> {
    exec::check_spec(&p.spec, &SpecLimits::default())?;
    exec::check_inputs(&p.spec, &p.inputs)?;
    Ok(())
}

/// What to ask of the market.
#[derive(Clone, Debug)]
pub struct Terms {
    pub offer_id: Option<u64>,
    pub max_price_per_unit: Amount,
    pub check_rate_bps: u16,
    pub deadline_blocks: u32,
    pub requirements: Requirements,
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

/// Stores spec and inputs and creates the job; returns its id.
///
/// Inputs are named in the spec by where `blobs` serves them ([`BlobStore::locator`]), so a
/// provider on another machine fetches them from there (and checks their hashes).
///
/// # Errors
/// Blob store and chain errors (a refused `create_job` is `ChainError::Reverted`).
pub async fn submit(
    market: &Marketplace<'_>,
    blobs: &dyn BlobStore,
    p: &JobBundle,
    terms: &Terms,
    seed: &Hash32,
    now: u32,
) -> Result<u64, RenterError> {
    let mut spec = p.spec.clone();
    for b in &mut spec.bindings {
        if let BindingKind::Input(r) = &mut b.kind {
            let data = p.inputs.get(&b.binding).ok_or(RenterError::BadSpec(ExecError::MissingInput { binding: b.binding }))?;
            r.sha256 = blobs.put(data).await?;
            r.uri = blobs.locator(&r.sha256);
        }
    }
    let spec_hash = blobs.put(&spec.encode_spec()).await?;
    let input = JobInput {
        spec_hash,
        spec_uri: blobs.locator(&spec_hash),
        work_units: spec.work_units,
        max_price_per_unit: terms.max_price_per_unit,
        requirements: terms.requirements,
        deadline: now + terms.deadline_blocks,
        check_rate_bps: terms.check_rate_bps,
        seed_commitment: seed_commitment(seed),
        offer_id: terms.offer_id,
    };
    let (id, _) = market.create_job(&input).await?;
    Ok(id)
}

/// Fetches a settled job's output from its provider's endpoint (an `http(s)` URL in the
/// offer), else from `fallback`, and checks it against the revealed Merkle root.
///
/// # Errors
/// [`RenterError::NoResult`] for a job without a revealed root; fetch and check errors.
pub async fn fetch_output(market: &Marketplace<'_>, job_id: u64, job: &Job, fallback: &dyn BlobStore) -> Result<Vec<u8>, RenterError> {
    let root = job.provider_root.ok_or(RenterError::NoResult(job_id))?;
    let endpoint = match job.offer_id {
        Some(offer) => market.offer(offer).await?.map(|o| o.info.endpoint),
        None => None,
    };
    if let Some(url) = endpoint.filter(|e| blob::is_http_url(e)) {
        let provider = blob::HttpStore::new(&url)?;
        match blob::fetch_verified_output(&provider, &root).await {
            Ok(data) => return Ok(data),
            Err(e) => tracing::warn!(job_id, %url, %e, "provider endpoint did not serve the output; trying the local store"),
        }
    }
    Ok(blob::fetch_verified_output(fallback, &root).await?)
}

/// Blocks past a phase's deadline before the renter calls `cleanup` itself.
pub const CLEANUP_GRACE_BLOCKS: u32 = 2;

/// Follows a job to its end, revealing the seed once the provider has committed, and
/// calling `cleanup` once a phase's deadline (plus [`CLEANUP_GRACE_BLOCKS`]) has passed with nobody acting (a dead
/// provider: the escrow comes back, with the provider's penalty; a silent verifier is
/// replaced). `on_state` sees every state change (for progress display).
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
            let state = last.unwrap_or(JobState::Open);
            return Err(RenterError::Timeout { job: id, waited: timeout, state });
        }
        let job = match market.job(id).await {
            Ok(j) => j.ok_or(ChainError::Unexpected(format!("job {id} vanished")))?,
            // The connection dropped: the client reconnects by itself; read again shortly.
            Err(e) if e.is_connection() => {
                tracing::warn!(job_id = id, %e, "chain read failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if last != Some(job.state) {
            on_state(job.state);
            last = Some(job.state);
        }
        if job.state.is_terminal() {
            return Ok(job);
        }
        let step = if job.state == JobState::Committed {
            Some(market.reveal_seed(id, *seed).await.map(|_| ()))
        } else {
            match market.chain().finalized_number().await {
                // A grace period lets the party whose turn it was (a provider closing its
                // auction) move first, so the renter rarely races it for the same block.
                Ok(now) if now > job.phase_deadline + CLEANUP_GRACE_BLOCKS => Some(market.cleanup(id).await.map(|_| ())),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }
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
