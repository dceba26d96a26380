//! The worker's HTTP endpoint (the URL in its offer): the blob store's read-only routes
//! ([`capacloud_client::blob::server::read_only_router`]: outputs, chunk proofs, batches,
//! cached blobs; no uploads, so strangers cannot fill its disk) plus `/metrics`.

use crate::metrics::Metrics;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use capacloud_client::blob::{server, LocalStore};
use std::sync::Arc;

/// The endpoint's routes over the worker's store and metrics.
pub fn router(store: LocalStore, metrics: Arc<Metrics>) -> Router {
    let metrics_route = Router::new()
        .route(
            "/metrics",
            get(|axum::extract::State(m): axum::extract::State<Arc<Metrics>>| async move {
                ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.encode()).into_response()
            }),
        )
        .with_state(metrics);
    server::read_only_router(store).merge(metrics_route)
}
