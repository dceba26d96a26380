//! The indexer's HTTP surface: the JSON API over the store, its OpenAPI document, health,
//! readiness, status and Prometheus metrics, and the dashboard at `/`. Read-only: nothing
//! here writes to the database or touches the chain.

use crate::ingest::Progress;
use crate::store::{JobFilter, Store};
use crate::Error;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use capacloud_client::summary::At;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::sync::Arc;
use subxt::utils::H160;

/// Most records one list request returns.
pub const MAX_LIMIT: u32 = 500;
/// Most price points one request returns (rollups cover any span).
pub const MAX_POINTS: u32 = 10_000;
/// Records a list request returns when it does not say.
pub const DEFAULT_LIMIT: u32 = 50;
/// Job states, as the API and the database name them.
pub const JOB_STATES: [&str; 12] = [
    "Open",
    "AwaitingAccept",
    "Assigned",
    "InputCheck",
    "Committed",
    "VerifierCommit",
    "Reveal",
    "Settled",
    "Refunded",
    "Slashed",
    "Unavailable",
    "Unverified",
];
/// Blocks behind the finalized head at which `/ready` still answers 200.
pub const READY_LAG: i64 = 2;

/// What every handler reads.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub progress: Arc<Progress>,
    pub registry: Arc<Registry>,
    pub contract: H160,
}

// Response bodies. Typed, not `json!`: amounts are u128 and can exceed what a
// `serde_json::Value` holds (u64); serialized straight to text they stay exact integers.

#[derive(serde::Serialize)]
struct OffersPage {
    offers: Vec<crate::store::Sourced<capacloud_client::summary::OfferRow>>,
}
#[derive(serde::Serialize)]
struct JobsPage {
    jobs: Vec<crate::store::Sourced<capacloud_client::summary::JobRow>>,
    next: Option<String>,
}
#[derive(serde::Serialize)]
struct ProvidersPage {
    providers: Vec<capacloud_client::summary::AccountRow>,
}
#[derive(serde::Serialize)]
struct PointsPage {
    points: Vec<crate::store::Sourced<capacloud_client::summary::PricePoint>>,
}
#[derive(serde::Serialize)]
struct RollupsPage {
    bucket_blocks: u32,
    rollups: Vec<Rollup>,
}
#[derive(serde::Serialize)]
struct EventPage {
    event: crate::store::RawEvent,
    decoded: Option<capacloud_client::marketplace::Event>,
}

/// An API error: a status and a message, as `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(msg: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        tracing::error!(%e, "query failed");
        Self(StatusCode::INTERNAL_SERVER_ERROR, "the indexer's database failed; see its log".into())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::bad(e.body_text())
    }
}

/// The router over `state`, behind the request limits every CapaCloud service has.
pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .route("/", get(crate::dashboard::page))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/api/stats", get(stats))
        .route("/api/offers", get(offers))
        .route("/api/jobs", get(jobs))
        .route("/api/jobs/{id}", get(job))
        .route("/api/providers", get(providers))
        .route("/api/prices", get(prices))
        .route("/api/events/{block}/{index}", get(event))
        .with_state(state);
    capacloud_client::blob::server::guarded(app)
}

/// Serves `state` on `listener` until `shutdown` resolves.
///
/// # Errors
/// The listener failing.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// Where indexing stands.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub contract: H160,
    pub indexed_block: i64,
    pub head_block: i64,
    pub lag: i64,
    pub events: u64,
    pub undecodable_events: u64,
}

fn status_of(s: &AppState) -> Status {
    let p = &s.progress;
    Status {
        contract: s.contract,
        indexed_block: p.indexed_block.get(),
        head_block: p.head_block.get(),
        lag: p.lag(),
        events: p.events.get(),
        undecodable_events: p.undecodable_events.get(),
    }
}

async fn status(State(s): State<AppState>) -> Json<Status> {
    Json(status_of(&s))
}

async fn ready(State(s): State<AppState>) -> Response {
    let st = status_of(&s);
    if st.head_block > 0 && st.lag <= READY_LAG {
        (StatusCode::OK, Json(st)).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(st)).into_response()
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &s.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn stats(State(s): State<AppState>) -> Result<Json<crate::store::Stats>, ApiError> {
    Ok(Json(s.store.stats().await?))
}

/// `/api/offers` parameters.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffersQuery {
    pub gpu_class: Option<u8>,
    /// `id` (default), `price` or `price_per_score`.
    pub sort: Option<String>,
    /// Include removed offers.
    #[serde(default)]
    pub all: bool,
}

async fn offers(State(s): State<AppState>, q: Result<Query<OffersQuery>, QueryRejection>) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let mut rows = s.store.offers(q.gpu_class, q.all).await?;
    match q.sort.as_deref() {
        None | Some("id") => {}
        Some("price") => rows.sort_by_key(|o| (o.row.price_per_unit, o.row.offer_id)),
        Some("price_per_score") => rows.sort_by(|a, b| {
            // a.price / a.score vs b.price / b.score without division; score 0 sorts last.
            let key = |o: &capacloud_client::summary::OfferRow| (o.benchmark_score == 0, o.price_per_unit, o.benchmark_score.max(1));
            let ((az, ap, asc), (bz, bp, bsc)) = (key(&a.row), key(&b.row));
            az.cmp(&bz).then_with(|| ap.saturating_mul(u128::from(bsc)).cmp(&bp.saturating_mul(u128::from(asc))))
        }),
        Some(other) => return Err(ApiError::bad(format!("sort must be id, price or price_per_score, not {other:?}"))),
    }
    Ok(Json(OffersPage { offers: rows }).into_response())
}

/// `/api/jobs` parameters.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    pub state: Option<String>,
    pub renter: Option<String>,
    pub provider: Option<String>,
    /// `BLOCK:INDEX` of the last job of the previous page (its `source`).
    pub after: Option<String>,
    pub limit: Option<u32>,
}

/// Parses `BLOCK:INDEX`.
pub fn parse_at(s: &str) -> Option<At> {
    let (b, i) = s.split_once(':')?;
    Some(At { block: b.parse().ok()?, index: i.parse().ok()? })
}

fn address(name: &str, s: &Option<String>) -> Result<Option<H160>, ApiError> {
    s.as_deref()
        .map(|a| capacloud_client::chain::parse_address(a).map_err(|_| ApiError::bad(format!("{name} must be 0x followed by 40 hex digits"))))
        .transpose()
}

/// Checks `/api/jobs` parameters and turns them into a filter.
///
/// # Errors
/// A 400 naming the bad parameter.
pub fn job_filter(q: &JobsQuery) -> Result<JobFilter, ApiError> {
    if let Some(st) = &q.state {
        if !JOB_STATES.contains(&st.as_str()) {
            return Err(ApiError::bad(format!("state must be one of {}", JOB_STATES.join(", "))));
        }
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad(format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let after = q.after.as_deref().map(|a| parse_at(a).ok_or_else(|| ApiError::bad("after must be BLOCK:INDEX, e.g. 120:3"))).transpose()?;
    Ok(JobFilter { state: q.state.clone(), renter: address("renter", &q.renter)?, provider: address("provider", &q.provider)?, after, limit, newest_first: false })
}

async fn jobs(State(s): State<AppState>, q: Result<Query<JobsQuery>, QueryRejection>) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let filter = job_filter(&q)?;
    let rows = s.store.jobs(&filter).await?;
    let next = (rows.len() == filter.limit as usize).then(|| rows.last().map(|r| format!("{}:{}", r.source.block, r.source.event_index))).flatten();
    Ok(Json(JobsPage { jobs: rows, next }).into_response())
}

async fn job(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::bad("the job id must be a non-negative integer"))?;
    match s.store.job(id).await? {
        Some(j) => Ok(Json(j).into_response()),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("no job {id} in the indexed blocks"))),
    }
}

async fn providers(State(s): State<AppState>) -> Result<Response, ApiError> {
    let rows = s.store.providers().await?;
    Ok(Json(ProvidersPage { providers: rows }).into_response())
}

/// `/api/prices` parameters.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricesQuery {
    pub gpu_class: Option<u8>,
    /// The newest this many points (1 to 10,000; default 1,000).
    pub limit: Option<u32>,
    /// Roll the points up into buckets of this many blocks (600 ≈ an hour and 14,400 ≈ a
    /// day at 6 s blocks; block numbers, because this chain's timestamps are not reliable).
    pub bucket_blocks: Option<u32>,
}

/// One bucket of price-index points of one GPU class.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rollup {
    pub gpu_class: u8,
    /// First block of the bucket.
    pub from_block: u32,
    pub points: u32,
    /// The index at the bucket's first and last point, and its extremes.
    pub open: u128,
    pub close: u128,
    pub low: u128,
    pub high: u128,
    /// Value of the jobs settled in the bucket.
    pub value: u128,
}

/// Rolls `points` (oldest first) up into buckets of `bucket` blocks per GPU class.
pub fn rollup(points: &[capacloud_client::summary::PricePoint], bucket: u32) -> Vec<Rollup> {
    let mut out: std::collections::BTreeMap<(u8, u32), Rollup> = std::collections::BTreeMap::new();
    for p in points {
        let from_block = p.at.block - p.at.block % bucket;
        let r = out.entry((p.gpu_class, from_block)).or_insert(Rollup {
            gpu_class: p.gpu_class,
            from_block,
            points: 0,
            open: p.index,
            close: p.index,
            low: p.index,
            high: p.index,
            value: 0,
        });
        r.points += 1;
        r.close = p.index;
        r.low = r.low.min(p.index);
        r.high = r.high.max(p.index);
        r.value = r.value.saturating_add(p.value);
    }
    out.into_values().collect()
}

async fn prices(State(s): State<AppState>, q: Result<Query<PricesQuery>, QueryRejection>) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(1_000);
    if !(1..=MAX_POINTS).contains(&limit) {
        return Err(ApiError::bad(format!("limit must be 1 to {MAX_POINTS}")));
    }
    // Rollups cover the whole history; raw points the newest `limit`.
    let points = s.store.prices(q.gpu_class, q.bucket_blocks.is_none().then_some(limit)).await?;
    match q.bucket_blocks {
        None => Ok(Json(PointsPage { points }).into_response()),
        Some(0) => Err(ApiError::bad("bucket_blocks must be at least 1")),
        Some(b) => {
            let rows: Vec<_> = points.into_iter().map(|p| p.row).collect();
            Ok(Json(RollupsPage { bucket_blocks: b, rollups: rollup(&rows, b) }).into_response())
        }
    }
}

async fn event(State(s): State<AppState>, Path((block, index)): Path<(String, String)>) -> Result<Response, ApiError> {
    let (Ok(block), Ok(index)) = (block.parse::<u32>(), index.parse::<u32>()) else {
        return Err(ApiError::bad("block and index must be non-negative integers"));
    };
    match s.store.event(At { block, index }).await? {
        Some(e) => {
            let decoded = e.decode();
            Ok(Json(EventPage { event: e, decoded }).into_response())
        }
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("no contract event {block}:{index}"))),
    }
}

/// The API's OpenAPI 3.1 document.
pub const OPENAPI: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use super::*;
    use capacloud_client::summary::PricePoint;

    #[test]
    fn rollups_bucket_by_block_and_class() {
        let p = |block, gpu_class, index| PricePoint { at: At { block, index: 0 }, gpu_class, price: index, value: 10, index };
        let r = rollup(&[p(5, 1, 100), p(590, 1, 80), p(599, 1, 90), p(600, 1, 120), p(10, 2, 7)], 600);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], Rollup { gpu_class: 1, from_block: 0, points: 3, open: 100, close: 90, low: 80, high: 100, value: 30 });
        assert_eq!((r[1].from_block, r[1].points, r[1].open), (600, 1, 120));
        assert_eq!((r[2].gpu_class, r[2].close), (2, 7));
    }

    #[test]
    fn job_parameters_are_checked() {
        let q = |state: Option<&str>, after: Option<&str>, limit| JobsQuery { state: state.map(Into::into), after: after.map(Into::into), limit, ..Default::default() };
        assert!(job_filter(&q(Some("Settled"), Some("12:3"), Some(10))).is_ok());
        assert_eq!(job_filter(&q(None, Some("12:3"), None)).unwrap().after, Some(At { block: 12, index: 3 }));
        assert!(job_filter(&q(Some("settled"), None, None)).is_err(), "state names are exact");
        assert!(job_filter(&q(None, Some("12"), None)).is_err());
        assert!(job_filter(&q(None, Some("a:b"), None)).is_err());
        assert!(job_filter(&q(None, None, Some(0))).is_err());
        assert!(job_filter(&q(None, None, Some(MAX_LIMIT + 1))).is_err());
    }
}
