//! Reads the market from a `capacloud-indexer`'s HTTP API instead of the chain: what
//! `capacloud offers`, `job list` and `summary` show with `--indexer URL`.

use crate::summary::{AccountRow, JobRow, OfferRow, PricePoint, ProviderRow, Summary};
use std::time::Duration;

/// Why the indexer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IndexedError {
    #[error("indexer URL {0:?} must start with http:// or https://")]
    BadUrl(String),
    #[error("indexer at {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("indexer: {0}")]
    Fetch(#[from] crate::blob::BlobError),
}

/// Longest wait for one API response.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest API response read (a page of 500 jobs with their timelines is well under 1 MiB).
pub const MAX_RESPONSE: u64 = 64 << 20;

/// A handle on one indexer's API.
pub struct Indexed {
    base: String,
    http: reqwest::Client,
}

#[derive(serde::Deserialize)]
struct Offers {
    offers: Vec<OfferRow>,
}
#[derive(serde::Deserialize)]
struct Jobs {
    jobs: Vec<JobRow>,
    next: Option<String>,
}
#[derive(serde::Deserialize)]
struct Providers {
    providers: Vec<AccountRow>,
}
#[derive(serde::Deserialize)]
struct Points {
    points: Vec<PricePoint>,
}
#[derive(serde::Deserialize)]
struct Status {
    indexed_block: i64,
    undecodable_events: u64,
}

impl Indexed {
    /// # Errors
    /// [`IndexedError::BadUrl`].
    pub fn new(base: &str) -> Result<Self, IndexedError> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(IndexedError::BadUrl(base.into()));
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| IndexedError::Http { url: base.into(), reason: e.to_string() })?;
        Ok(Self { base: base.trim_end_matches('/').to_string(), http })
    }

    /// GETs `path` through the blob client's bounded read (no redirects, at most
    /// [`MAX_RESPONSE`] bytes, error bodies cut at 1 KiB) and decodes it.
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, IndexedError> {
        let url = format!("{}{path}", self.base);
        let body = crate::blob::http::get(&self.http, &url, MAX_RESPONSE).await?;
        serde_json::from_slice(&body).map_err(|e| IndexedError::Http { url, reason: format!("unexpected answer: {e}") })
    }

    /// Active offers.
    ///
    /// # Errors
    /// [`IndexedError`].
    pub async fn offers(&self) -> Result<Vec<OfferRow>, IndexedError> {
        Ok(self.get::<Offers>("/api/offers").await?.offers)
    }

    /// Every job, oldest first (all pages).
    ///
    /// # Errors
    /// [`IndexedError`].
    pub async fn jobs(&self) -> Result<Vec<JobRow>, IndexedError> {
        let mut out = Vec::new();
        let mut path = "/api/jobs?limit=500".to_string();
        loop {
            let page: Jobs = self.get(&path).await?;
            out.extend(page.jobs);
            match page.next {
                Some(next) => path = format!("/api/jobs?limit=500&after={next}"),
                None => return Ok(out),
            }
        }
    }

    /// Every account that provided or verified.
    ///
    /// # Errors
    /// [`IndexedError`].
    pub async fn accounts(&self) -> Result<Vec<AccountRow>, IndexedError> {
        Ok(self.get::<Providers>("/api/providers").await?.providers)
    }

    /// The market's history as `capacloud summary` shows it.
    ///
    /// # Errors
    /// [`IndexedError`].
    pub async fn summary(&self) -> Result<Summary, IndexedError> {
        let status: Status = self.get("/status").await?;
        let jobs = self.jobs().await?;
        let prices = self.get::<Points>("/api/prices").await?.points;
        let mut accounts = self.accounts().await?;
        accounts.sort_by_key(|a| a.account);
        let providers = accounts
            .into_iter()
            .filter(|a| a.registered)
            .map(|a| ProviderRow {
                provider: a.account,
                stake: a.stake,
                reputation_score: a.reputation.score(),
                jobs_completed: a.reputation.jobs_completed,
                checks_passed: a.reputation.checks_passed,
                checks_failed: a.reputation.checks_failed,
                timeouts: a.reputation.timeouts,
                provider_payouts: a.provider_payouts,
                verifier_fees: a.verifier_fees,
                slashed: a.slashed,
                withdrawable: a.withdrawable,
            })
            .collect();
        let from_block = jobs.first().map_or(0, |j| j.created.block);
        Ok(Summary {
            from_block,
            to_block: status.indexed_block.max(0) as u32,
            jobs,
            providers,
            prices,
            undecodable_events: status.undecodable_events as usize,
        })
    }
}
