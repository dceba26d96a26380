//! The protocol driven in-process, message by message: what a renter, a provider and a
//! verifier send, with outputs made up per task (the contract cannot tell them from real
//! ones). Shared by the real-node tests and the market benchmark's protocol floor.

use capacloud_client::chain::{ChainError, Receipt};
use capacloud_client::marketplace::*;
use capacloud_client::Marketplace;
use subxt::utils::H160;

/// What a party computed: one output root per task, `tag` telling honest from cheating.
pub fn outputs(job: u64, tasks: u32, tag: &[u8]) -> Vec<Hash32> {
    (0..tasks).map(|i| sha(&[tag, &job.to_le_bytes(), &i.to_le_bytes()])).collect()
}

/// SHA-256 of the concatenated parts.
pub fn sha(parts: &[&[u8]]) -> Hash32 {
    <Sha as hash::Sha256>::hash(parts)
}

/// The batch tree's leaves for per-task roots.
pub fn leaves(roots: &[Hash32]) -> Vec<Hash32> {
    roots.iter().enumerate().map(|(i, r)| merkle::task_leaf::<Sha>(i as u32, r)).collect()
}

/// The batch root of per-task roots.
pub fn batch_root(roots: &[Hash32]) -> Hash32 {
    merkle::root::<Sha>(&leaves(roots))
}

/// The salt `who` uses for job `job` (deterministic, so a test can recompute it).
pub fn salt(who: H160, job: u64) -> Hash32 {
    sha(&[b"salt", who.as_bytes(), &job.to_le_bytes()])
}

/// The provider's commitment to `roots` for job `id`.
pub fn provider_commitment(id: u64, provider: H160, roots: &[Hash32]) -> Hash32 {
    hash::provider_commitment::<Sha>(id, provider, &batch_root(roots), &salt(provider, id))
}

/// The sample the contract drew for job `id`.
///
/// # Errors
/// Chain errors; `Unexpected` for a job that does not exist.
pub async fn sample_of(m: &Marketplace<'_>, id: u64) -> Result<Vec<u32>, ChainError> {
    let c = m.job_core(id).await?.ok_or_else(|| ChainError::Unexpected(format!("job {id} does not exist")))?;
    Ok(sample::sampled::<Sha>(&c.check_seed, c.tasks, c.check_rate_bps, !c.seed_revealed))
}

/// The provider's reveal of `roots`, with the sampled leaves and their multiproof when the
/// job is checked.
///
/// # Errors
/// Chain errors.
pub async fn provider_reveal(m: &Marketplace<'_>, id: u64, roots: &[Hash32]) -> Result<Receipt, ChainError> {
    let c = m.job_core(id).await?.ok_or_else(|| ChainError::Unexpected(format!("job {id} does not exist")))?;
    let reveal = if c.checked() {
        let s = sample_of(m, id).await?;
        let all = leaves(roots);
        let proof = merkle::multiproof::<Sha>(&all, &s).ok_or_else(|| ChainError::Unexpected("sample outside the batch".into()))?;
        Reveal::Provider { batch_root: batch_root(roots), leaves: s.iter().map(|&i| all[i as usize]).collect(), proof }
    } else {
        Reveal::Provider { batch_root: batch_root(roots), leaves: vec![], proof: vec![] }
    };
    m.reveal(id, salt(m.chain().address(), id), &reveal).await
}

/// A verifier's answer for `roots` (its own re-execution) and the sampled roots.
async fn verifier_answer(m: &Marketplace<'_>, id: u64, roots: &[Hash32]) -> Result<(Hash32, Vec<Hash32>), ChainError> {
    let s = sample_of(m, id).await?;
    let all = leaves(roots);
    Ok((sample::answer::<Sha>(id, &s.iter().map(|&i| all[i as usize]).collect::<Vec<_>>()), s.iter().map(|&i| roots[i as usize]).collect()))
}

/// The drawn verifier's commitment to its answer for `roots`.
///
/// # Errors
/// Chain errors.
pub async fn verifier_commit(m: &Marketplace<'_>, id: u64, roots: &[Hash32]) -> Result<Receipt, ChainError> {
    let (answer, _) = verifier_answer(m, id, roots).await?;
    let me = m.chain().address();
    m.commit(id, hash::verifier_commitment::<Sha>(id, me, &answer, &salt(me, id))).await
}

/// The drawn verifier's reveal (with the sampled roots when `with_roots`).
///
/// # Errors
/// Chain errors.
pub async fn verifier_reveal(m: &Marketplace<'_>, id: u64, roots: &[Hash32], with_roots: bool) -> Result<Receipt, ChainError> {
    let (answer, sampled) = verifier_answer(m, id, roots).await?;
    let roots = if with_roots { sampled } else { vec![] };
    m.reveal(id, salt(m.chain().address(), id), &Reveal::Verifier { answer, roots }).await
}

/// A seed whose sample of job `job` (committed by `provider` to `roots`) is non-empty
/// (`checked`) or empty; `None` if none of 256 candidates gives that.
pub fn pick_seed(job: u64, provider: H160, roots: &[Hash32], tasks: u32, rate: u16, checked: bool) -> Option<Hash32> {
    let c = provider_commitment(job, provider, roots);
    (0u8..=255).map(|i| [i; 32]).find(|s| sample::sampled::<Sha>(&sample::check_seed::<Sha>(s, &c), tasks, rate, false).is_empty() != checked)
}
