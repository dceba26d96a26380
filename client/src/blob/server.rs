//! The blob store's HTTP service: what a worker serves at its offer's endpoint and what
//! `capacloud blobs serve` runs standalone.
//!
//! | route                                   | what                                           |
//! |-----------------------------------------|------------------------------------------------|
//! | `GET  /blobs/<sha256 hex>`              | a blob                                         |
//! | `PUT  /blobs/<sha256 hex>`              | store a blob; refused (400) unless it hashes to its name |
//! | `GET  /outputs/<root hex>`              | a job output                                   |
//! | `PUT  /outputs/<root hex>`              | store an output; refused (400) unless its Merkle root is its name |
//! | `GET  /outputs/<root hex>/chunks/<i>`   | chunk `i` with its inclusion proof (JSON [`ChunkProof`]) |
//! | `GET  /batches/<batch root hex>`        | a batch's task output roots (SCALE `Vec<[u8; 32]>`) |
//! | `PUT  /batches/<batch root hex>`        | store one; refused (400) unless it hashes to the batch root |
//! | `GET  /healthz`                         | `ok`                                           |
//!
//! Everything is content-addressed, so an upload cannot overwrite or poison anything; the
//! body size limit bounds what one request may store. A worker's endpoint is
//! [`read_only_router`]: its own outputs are written to its store directly, so the PUT routes
//! (which anyone could fill a disk through) are not there at all (405). Every request holds
//! one of [`MAX_CONCURRENT`] slots (503 when none is free) and has [`REQUEST_TIMEOUT`] to
//! produce its response, upload included (408).

use super::{output_root, sha256, BlobError, ChunkProof, LocalStore};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum::routing::get;
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Default largest upload: 256 MiB.
pub const DEFAULT_MAX_BODY: usize = 256 << 20;
/// Requests served at once; one more is answered 503 at once rather than queued.
pub const MAX_CONCURRENT: usize = 64;
/// Time a request has from its headers to its response (the body of an upload included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

impl IntoResponse for BlobError {
    fn into_response(self) -> Response {
        let status = match &self {
            BlobError::NotFound(_) => StatusCode::NOT_FOUND,
            BlobError::HashMismatch { .. } | BlobError::BadUri(_) | BlobError::BadProof { .. } => StatusCode::BAD_REQUEST,
            BlobError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BlobError::Io(_) | BlobError::Http { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, self.to_string()).into_response()
    }
}

fn hash_of(s: &str) -> Result<[u8; 32], BlobError> {
    super::parse_hex32(s).ok_or_else(|| BlobError::BadUri(s.into()))
}

async fn get_blob(State(store): State<LocalStore>, Path(h): Path<String>) -> Result<Vec<u8>, BlobError> {
    let h = hash_of(&h)?;
    super::blocking(move || match store.get_sync(&h) {
        // Corrupted on this server's disk: the server's fault, and never served.
        Err(BlobError::HashMismatch { name, .. }) => Err(BlobError::Io(std::io::Error::other(format!("stored blob {name} is corrupted")))),
        other => other,
    })
    .await
}

async fn put_blob(State(store): State<LocalStore>, Path(h): Path<String>, body: Bytes) -> Result<StatusCode, BlobError> {
    let h = hash_of(&h)?;
    let actual = sha256(&body);
    if actual != h {
        return Err(BlobError::HashMismatch { name: hex::encode(h), actual: hex::encode(actual) });
    }
    super::blocking(move || store.put_sync(&body)).await?;
    Ok(StatusCode::CREATED)
}

async fn get_batch(State(store): State<LocalStore>, Path(root): Path<String>) -> Result<Vec<u8>, BlobError> {
    let root = hash_of(&root)?;
    super::blocking(move || store.get_batch_sync(&root)).await
}

async fn put_batch(State(store): State<LocalStore>, Path(root): Path<String>, body: Bytes) -> Result<StatusCode, BlobError> {
    let root = hash_of(&root)?;
    super::blocking(move || {
        let roots = super::check_batch(&body, &root, None)?;
        store.put_batch_sync(&roots).map(|_| ())
    })
    .await?;
    Ok(StatusCode::CREATED)
}

/// Bytes read from disk per piece of a streamed output.
const STREAM_PIECE: usize = 64 << 10;

/// Streams the output from disk, [`STREAM_PIECE`] bytes at a time (a request holds one piece
/// in memory, never the output), with its `Content-Length`.
async fn get_output(State(store): State<LocalStore>, Path(root): Path<String>) -> Result<Response, BlobError> {
    use std::io::Read;
    let root = hash_of(&root)?;
    let file = super::blocking(move || store.open_output_sync(&root)).await?;
    let len = file.metadata()?.len();
    let pieces = futures::stream::try_unfold(file, |mut file| async move {
        let (file, piece) = tokio::task::spawn_blocking(move || {
            let mut piece = vec![0u8; STREAM_PIECE];
            let n = file.read(&mut piece)?;
            piece.truncate(n);
            Ok::<_, std::io::Error>((file, piece))
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok::<_, std::io::Error>((!piece.is_empty()).then(|| (Bytes::from(piece), file)))
    });
    Ok(([(axum::http::header::CONTENT_LENGTH, len)], axum::body::Body::from_stream(pieces)).into_response())
}

async fn put_output(State(store): State<LocalStore>, Path(root): Path<String>, body: Bytes) -> Result<StatusCode, BlobError> {
    let root = hash_of(&root)?;
    super::blocking(move || {
        let actual = output_root(&body);
        if actual != root {
            return Err(BlobError::HashMismatch { name: format!("output {}", hex::encode(root)), actual: hex::encode(actual) });
        }
        store.put_output_sync(&root, &body)
    })
    .await?;
    Ok(StatusCode::CREATED)
}

async fn get_chunk(State(store): State<LocalStore>, Path((root, index)): Path<(String, u64)>) -> Result<Json<ChunkProof>, BlobError> {
    let root = hash_of(&root)?;
    let proof = super::blocking(move || store.chunk_proof_sync(&root, index)).await?;
    Ok(Json(proof))
}

/// The routes above over `store`, accepting uploads up to `max_body` bytes.
pub fn router(store: LocalStore, max_body: usize) -> Router {
    guarded(
        Router::new()
            .route("/blobs/{hash}", get(get_blob).put(put_blob))
            .route("/outputs/{root}", get(get_output).put(put_output))
            .route("/outputs/{root}/chunks/{index}", get(get_chunk))
            .route("/batches/{root}", get(get_batch).put(put_batch))
            .route("/healthz", get(|| async { "ok" }))
            .layer(DefaultBodyLimit::max(max_body))
            .with_state(store),
    )
}

/// The GET routes above only (what a worker serves: its outputs, chunk proofs, batches and
/// cached blobs); a PUT is 405.
pub fn read_only_router(store: LocalStore) -> Router {
    guarded(
        Router::new()
            .route("/blobs/{hash}", get(get_blob))
            .route("/outputs/{root}", get(get_output))
            .route("/outputs/{root}/chunks/{index}", get(get_chunk))
            .route("/batches/{root}", get(get_batch))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(store),
    )
}

/// `app` behind the concurrency limit ([`MAX_CONCURRENT`] requests in flight, 503 beyond)
/// and the request timeout ([`REQUEST_TIMEOUT`], 408); every CapaCloud HTTP service uses it.
pub fn guarded(app: Router) -> Router {
    limited(app, Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT)), REQUEST_TIMEOUT)
}

fn limited(app: Router, slots: Arc<tokio::sync::Semaphore>, timeout: Duration) -> Router {
    app.layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
        let slots = slots.clone();
        async move {
            let Ok(_slot) = slots.try_acquire_owned() else {
                return (StatusCode::SERVICE_UNAVAILABLE, "busy: too many requests in flight").into_response();
            };
            match tokio::time::timeout(timeout, next.run(req)).await {
                Ok(resp) => resp,
                Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long").into_response(),
            }
        }
    }))
}

/// Serves `app` on `listener` until `shutdown` resolves, then finishes the requests in flight.
///
/// # Errors
/// The listener failing.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::super::{fetch_verified_output, BlobStore, HttpStore};
    use super::*;

    /// A server on a free port over a temp dir; returns its client and the dir.
    async fn start() -> (HttpStore, tempfile::TempDir, tokio::sync::oneshot::Sender<()>) {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(LocalStore::new(dir.path()).unwrap(), 1 << 20);
        tokio::spawn(serve(listener, app, async move {
            let _ = stopped.await;
        }));
        (HttpStore::new(&url).unwrap(), dir, stop)
    }

    #[tokio::test]
    async fn blobs_and_outputs_round_trip_over_http_and_are_checked() {
        let (store, dir, _stop) = start().await;
        let h = store.put(b"input bytes").await.unwrap();
        assert_eq!(h, sha256(b"input bytes"));
        assert_eq!(store.get(&h).await.unwrap(), b"input bytes");
        assert!(store.locator(&h).ends_with(&format!("/blobs/{}", hex::encode(h))));
        assert!(matches!(store.get(&[3; 32]).await, Err(BlobError::NotFound(_))));

        // A blob corrupted on the server's disk is not served.
        std::fs::write(dir.path().join(hex::encode(h)), b"tampered").unwrap();
        assert!(matches!(store.get(&h).await, Err(BlobError::Http { reason, .. }) if reason.contains("corrupted")));

        let out: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let root = output_root(&out);
        store.put_output(&root, &out).await.unwrap();
        assert_eq!(fetch_verified_output(&store, &root).await.unwrap(), out);
        assert_eq!(store.get_chunk(&root, 2).await.unwrap(), out[8192..]);
        // Larger than one streamed piece: served in pieces, with its length, byte for byte.
        let big: Vec<u8> = (0..300_001u32).map(|i| (i % 241) as u8).collect();
        let big_root = output_root(&big);
        store.put_output(&big_root, &big).await.unwrap();
        let resp = reqwest::get(format!("{}/outputs/{}", store.base(), hex::encode(big_root))).await.unwrap();
        assert_eq!(resp.content_length(), Some(300_001));
        assert_eq!(resp.bytes().await.unwrap(), big);
        assert_eq!(fetch_verified_output(&store, &big_root).await.unwrap(), big);
        assert!(matches!(fetch_verified_output(&store, &[6; 32]).await, Err(BlobError::NotFound(_))), "unknown output is 404");
        assert!(matches!(store.get_chunk(&root, 3).await, Err(BlobError::NotFound(_))));
    }

    #[tokio::test]
    async fn resolver_fetches_by_url_within_a_size_limit_and_caches() {
        let (remote, _dir, _stop) = start().await;
        let data = vec![5u8; 1000];
        let h = remote.put(&data).await.unwrap();
        let url = remote.locator(&h);
        let cache = tempfile::tempdir().unwrap();
        let local = LocalStore::new(cache.path()).unwrap();
        let resolver = super::super::Resolver::new(local.clone());
        assert!(matches!(resolver.fetch(&h, &url, 999).await, Err(BlobError::TooLarge { limit: 999, .. })));
        assert!(matches!(local.get_sync(&h), Err(BlobError::NotFound(_))), "nothing cached from a refused fetch");
        assert_eq!(resolver.fetch(&h, &url, 1000).await.unwrap(), data);
        assert_eq!(local.get_sync(&h).unwrap(), data, "cached");
        let other = sha256(b"other");
        assert!(matches!(resolver.fetch(&other, &url, 1000).await, Err(BlobError::BadUri(_))), "the URI names another hash");
        assert!(matches!(resolver.fetch(&other, &super::super::uri(&other), 1000).await, Err(BlobError::NotFound(_))));
        std::fs::write(cache.path().join(hex::encode(h)), b"").unwrap();
        assert_eq!(resolver.fetch(&h, &url, 1000).await.unwrap(), data, "a torn cached copy is fetched again");
        assert_eq!(local.get_sync(&h).unwrap(), data, "and replaced");
    }

    #[tokio::test]
    async fn a_lying_server_is_caught_by_the_client() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let liar = Router::new()
            .route("/blobs/{hash}", get(|| async { "not what you asked for" }))
            .route("/outputs/{root}", get(|| async { "nor this" }))
            .route("/outputs/{root}/chunks/{i}", get(|| async { Json(ChunkProof::of(b"other output", 0).unwrap()) }));
        tokio::spawn(serve(listener, liar, std::future::pending()));
        let store = HttpStore::new(&url).unwrap();
        let h = sha256(b"wanted");
        assert!(matches!(store.get(&h).await, Err(BlobError::HashMismatch { .. })));
        assert!(matches!(fetch_verified_output(&store, &h).await, Err(BlobError::HashMismatch { .. })));
        assert!(matches!(store.get_chunk(&h, 0).await, Err(BlobError::BadProof { .. })));
    }

    #[tokio::test]
    async fn a_read_only_endpoint_serves_but_takes_no_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalStore::new(dir.path()).unwrap();
        let h = local.put_sync(b"cached input").unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(listener, read_only_router(local), std::future::pending()));
        let store = HttpStore::new(&url).unwrap();
        assert_eq!(store.get(&h).await.unwrap(), b"cached input");
        let http = reqwest::Client::new();
        for path in [format!("blobs/{}", hex::encode(sha256(b"x"))), format!("outputs/{}", hex::encode(output_root(b"x"))), format!("batches/{}", hex::encode([1u8; 32]))] {
            let resp = http.put(format!("{url}/{path}")).body(b"x".to_vec()).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "PUT /{path}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().filter(|e| e.as_ref().unwrap().path().is_file()).count(), 1, "only the blob put locally");
    }

    #[tokio::test]
    async fn requests_over_the_limit_or_the_time_are_refused() {
        let gate = Arc::new(tokio::sync::Notify::new());
        let held = gate.clone();
        let slow = Router::new()
            .route("/slow", get(move || {
                let held = held.clone();
                async move {
                    held.notified().await;
                    "done"
                }
            }))
            .route("/fast", get(|| async { "fast" }));
        let app = limited(slow, Arc::new(tokio::sync::Semaphore::new(1)), Duration::from_millis(1500));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(listener, app, std::future::pending()));
        let http = reqwest::Client::new();
        let first = tokio::spawn(http.get(format!("{url}/slow")).send());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = http.get(format!("{url}/fast")).send().await.unwrap();
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE, "the one slot is held by /slow");
        let first = first.await.unwrap().unwrap();
        assert_eq!(first.status(), StatusCode::REQUEST_TIMEOUT, "/slow never answers within its time");
        let third = http.get(format!("{url}/fast")).send().await.unwrap();
        assert_eq!(third.status(), StatusCode::OK, "the slot is free again after the timeout");
        gate.notify_waiters();
    }

    #[tokio::test]
    async fn the_client_follows_no_redirect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let target = url.clone();
        let redirector = Router::new().route(
            "/blobs/{hash}",
            get(move || {
                let target = target.clone();
                async move { axum::response::Redirect::temporary(&format!("{target}/elsewhere")) }
            }),
        )
        .route("/elsewhere", get(|| async { "followed" }));
        tokio::spawn(serve(listener, redirector, std::future::pending()));
        let store = HttpStore::new(&url).unwrap();
        let err = store.get(&sha256(b"followed")).await.unwrap_err();
        assert!(matches!(&err, BlobError::Http { reason, .. } if reason.starts_with("307")), "{err}");
    }

    #[tokio::test]
    async fn uploads_that_do_not_match_their_name_or_limit_are_refused() {
        let (store, dir, _stop) = start().await;
        let http = reqwest::Client::new();
        let put = |url: String, body: Vec<u8>| http.put(url).body(body).send();
        let wrong = put(format!("{}/blobs/{}", store.base(), hex::encode(sha256(b"a"))), b"b".to_vec()).await.unwrap();
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
        let wrong_root = put(format!("{}/outputs/{}", store.base(), hex::encode([0u8; 32])), b"x".to_vec()).await.unwrap();
        assert_eq!(wrong_root.status(), StatusCode::BAD_REQUEST);
        let bad_name = put(format!("{}/blobs/xyz", store.base()), b"x".to_vec()).await.unwrap();
        assert_eq!(bad_name.status(), StatusCode::BAD_REQUEST);
        let big = vec![0u8; (1 << 20) + 1];
        let too_big = put(format!("{}/blobs/{}", store.base(), hex::encode(sha256(&big))), big).await.unwrap();
        assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was stored");
    }
}
