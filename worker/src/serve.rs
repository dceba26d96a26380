//! The worker's HTTP endpoint (the URL in its offer): the blob store's read-only routes
//! ([`capacloud_client::blob::server::read_only_router`]: outputs, chunk proofs, batches,
//! cached blobs; no uploads, so strangers cannot fill its disk) plus `/metrics`. Outputs,
//! chunks and task-root lists go only to their readers: [`ChainGate`] admits the renter of a
//! settled job that produced them.

use crate::metrics::Metrics;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use capacloud_client::blob::{server, LocalStore};
use capacloud_client::chain::Chain;
use capacloud_client::Marketplace;
use std::sync::Arc;
use subxt::utils::H160;

/// The endpoint's routes over the worker's store and metrics; `gate` admits readers.
pub fn router(store: LocalStore, metrics: Arc<Metrics>, gate: Arc<dyn server::Gate>) -> Router {
    let metrics_route = Router::new()
        .route(
            "/metrics",
            get(|axum::extract::State(m): axum::extract::State<Arc<Metrics>>| async move {
                ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.encode()).into_response()
            }),
        )
        .with_state(metrics);
    server::read_only_router(store, gate).merge(metrics_route)
}

/// Admits the renter of a job that produced a root (the worker notes each job's roots when
/// it computes them) once that job is paid for (settled, or unverified with "pay anyway")
/// in a finalized block (a payment in a block that is later retracted pays nothing), and
/// grants it so the chain is asked once. Nobody is admitted for a job that was
/// refunded, slashed or is still running: the renter pays before it gets the work.
pub struct ChainGate {
    chain: Arc<Chain>,
    market: H160,
    store: LocalStore,
}

impl ChainGate {
    pub fn new(chain: Arc<Chain>, market: H160, store: LocalStore) -> Arc<Self> {
        Arc::new(Self { chain, market, store })
    }
}

#[async_trait::async_trait]
impl server::Gate for ChainGate {
    async fn admit(&self, root: &[u8; 32], reader: &H160) -> bool {
        let (store, r) = (self.store.clone(), *root);
        let jobs = match tokio::task::spawn_blocking(move || store.jobs_of_sync(&r)).await {
            Ok(Ok(jobs)) => jobs,
            _ => return false,
        };
        let market = match Marketplace::unchecked(&self.chain, self.market).finalized().await {
            Ok((m, _)) => m,
            Err(e) => {
                tracing::debug!(%e, "reading the finalized head for a reader check failed");
                return false;
            }
        };
        for job in jobs.into_iter().rev() {
            match market.job_core(job).await {
                Ok(Some(core)) if core.renter == *reader && core.renter_paid() => {
                    let (store, r, w) = (self.store.clone(), *root, reader.0);
                    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.grant_sync(&r, &w)).await {
                        tracing::warn!(%e, job, "could not record a reader grant");
                    }
                    return true;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%e, job, "reading a job for a reader check failed");
                    return false;
                }
            }
        }
        false
    }
}
