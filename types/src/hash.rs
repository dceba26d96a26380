//! The hashes contract and clients must agree on: commitments and the seed commitment,
//! over a sha256 each side supplies (the contract through the chain, clients through
//! `sha2`).
use crate::{Address, Hash32};

/// A sha256 over the concatenation of `parts`.
pub trait Sha256 {
    fn hash(parts: &[&[u8]]) -> Hash32;
}

/// The host's sha256 (the `sha2` crate).
#[cfg(feature = "std")]
pub struct HostSha256;

#[cfg(feature = "std")]
impl Sha256 for HostSha256 {
    fn hash(parts: &[&[u8]]) -> Hash32 {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }
}

/// The renter's seed commitment: `sha256(seed)`.
pub fn seed_commitment<H: Sha256>(seed: &Hash32) -> Hash32 {
    H::hash(&[seed])
}

/// The provider's commitment: `sha256("P" ‖ job_id LE ‖ provider ‖ batch_root ‖ salt)`.
pub fn provider_commitment<H: Sha256>(job_id: u64, provider: Address, batch_root: &Hash32, salt: &Hash32) -> Hash32 {
    H::hash(&[b"P", &job_id.to_le_bytes(), provider.as_bytes(), batch_root, salt])
}

/// A verifier's commitment: `sha256("V" ‖ job_id LE ‖ verifier ‖ answer ‖ salt)`, where the
/// answer is the comparison hash of the sampled tasks ([`crate::sample::answer`]).
pub fn verifier_commitment<H: Sha256>(job_id: u64, verifier: Address, answer: &Hash32, salt: &Hash32) -> Hash32 {
    H::hash(&[b"V", &job_id.to_le_bytes(), verifier.as_bytes(), answer, salt])
}

/// A salt for `job_id` derived from a worker's secret: `sha256("salt" ‖ secret ‖ job_id LE)`.
pub fn derive_salt<H: Sha256>(secret: &Hash32, job_id: u64) -> Hash32 {
    H::hash(&[b"salt", secret, &job_id.to_le_bytes()])
}
