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
//! | `POST /public/<root hex>`               | (worker) make an output or task-root list readable by anyone; signed by a reader |
//! | `GET  /healthz`                         | `ok`                                           |
//!
//! Everything is content-addressed, so an upload cannot overwrite or poison anything; the
//! body size limit bounds what one request may store, and [`Uploaders`] who may store at
//! all: `capacloud blobs serve` takes uploads signed by its renter's key only
//! ([`super::access`], action `upload` naming the content address; 401 unsigned, 403 from
//! anyone else), so no one else can fill its disk. A worker's endpoint is
//! [`read_only_router`]: its own outputs are written to its store directly, so the PUT routes
//! (which anyone could fill a disk through) are not there at all (405), and its outputs,
//! chunks and task-root lists are served only to their readers ([`super::access`]: a signed
//! request from an account granted the root, or admitted by the endpoint's [`Gate`] — for a
//! worker, the renter of a settled job that produced it), or to anyone once a reader has
//! made them public: 401 without a valid signature, 403 for an account that is not a reader.
//!
//! Limits: every request holds one of [`MAX_CONCURRENT`] slots until its response body has
//! been sent (503 at once when none is free) and has [`REQUEST_TIMEOUT`] for all of it,
//! upload and response body included (408, or the connection cut mid-body); a connection
//! must send its request headers within [`HEADER_TIMEOUT`]; at most [`MAX_CONNECTIONS`]
//! connections are open at once, at most [`MAX_CONNECTIONS_PER_IP`] from one address (more
//! are closed on accept), so one attacking host cannot lock everyone else out.

use super::access::{self, Action};
use super::{output_root, sha256, BlobError, ChunkProof, LocalStore};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use subxt::utils::H160;

/// Default largest upload: 256 MiB.
pub const DEFAULT_MAX_BODY: usize = 256 << 20;
/// Requests served at once; one more is answered 503 at once rather than queued.
pub const MAX_CONCURRENT: usize = 64;
/// Time a request has from its headers to the end of its response body (the body of an
/// upload included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Time a connection has to send a request's headers (slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once, idle keep-alive ones included; one more is closed on accept.
pub const MAX_CONNECTIONS: usize = 512;
/// Connections open at once from one IP address; one more from it is closed on accept.
pub const MAX_CONNECTIONS_PER_IP: usize = 32;
/// Time [`serve`] gives the connections still open to finish after shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl IntoResponse for BlobError {
    fn into_response(self) -> Response {
        let status = match &self {
            BlobError::NotFound(_) => StatusCode::NOT_FOUND,
            BlobError::HashMismatch { .. } | BlobError::BadUri(_) | BlobError::BadProof { .. } => StatusCode::BAD_REQUEST,
            BlobError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BlobError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            BlobError::Forbidden(_) => StatusCode::FORBIDDEN,
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

/// Who may upload to a [`router`].
#[derive(Clone, Debug)]
pub enum Uploaders {
    /// Anyone who can reach it (a store on a trusted network; the tests' renter servers).
    Anyone,
    /// Requests signed for the upload (action `upload`, naming the content address) by one
    /// of these accounts (contract addresses).
    Signed(Arc<BTreeSet<H160>>),
}

impl Uploaders {
    /// Whether the request may upload what is named by the last segment of its path.
    fn admit(&self, req: &axum::extract::Request) -> Result<(), BlobError> {
        let Uploaders::Signed(allowed) = self else { return Ok(()) };
        let name = req.uri().path().rsplit('/').next().unwrap_or_default();
        let name = hash_of(name)?;
        let header = req.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let who = access::verify(header, Action::Upload, &name)?;
        if !allowed.contains(&who) {
            return Err(BlobError::Forbidden(format!("{who:?} may not upload here")));
        }
        Ok(())
    }
}

/// The routes above over `store`, accepting uploads up to `max_body` bytes from `uploaders`.
pub fn router(store: LocalStore, max_body: usize, uploaders: Uploaders) -> Router {
    let uploads = Router::new()
        .route("/blobs/{hash}", axum::routing::put(put_blob))
        .route("/outputs/{root}", axum::routing::put(put_output))
        .route("/batches/{root}", axum::routing::put(put_batch))
        .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            let admitted = uploaders.admit(&req);
            async move {
                match admitted {
                    Ok(()) => next.run(req).await,
                    Err(e) => e.into_response(),
                }
            }
        }))
        .layer(DefaultBodyLimit::max(max_body));
    guarded(
        Router::new()
            .route("/blobs/{hash}", get(get_blob))
            .route("/outputs/{root}", get(get_output))
            .route("/outputs/{root}/chunks/{index}", get(get_chunk))
            .route("/batches/{root}", get(get_batch))
            .route("/healthz", get(|| async { "ok" }))
            .merge(uploads)
            .with_state(store),
    )
}

/// Decides whether a signed account that was not granted a root may read it now. A worker
/// asks the chain whether the account is the renter of a settled job that produced the root
/// (and grants it, so the chain is asked once).
#[async_trait::async_trait]
pub trait Gate: Send + Sync {
    /// Whether `reader` may read what is stored under `root`.
    async fn admit(&self, root: &[u8; 32], reader: &H160) -> bool;
}

/// Admits no one beyond the granted readers.
pub struct GrantsOnly;

#[async_trait::async_trait]
impl Gate for GrantsOnly {
    async fn admit(&self, _: &[u8; 32], _: &H160) -> bool {
        false
    }
}

/// A store whose outputs are served to their readers only.
#[derive(Clone)]
struct Gated {
    store: LocalStore,
    gate: Arc<dyn Gate>,
}

impl FromRef<Gated> for LocalStore {
    fn from_ref(g: &Gated) -> LocalStore {
        g.store.clone()
    }
}

/// Lets the request `action` `root` ([`super::access`]): reading something public needs no
/// signature; otherwise the signer must be a granted reader or be admitted by the gate.
async fn authorize(g: &Gated, root: &[u8; 32], headers: &HeaderMap, action: Action) -> Result<(), BlobError> {
    let r = *root;
    if action == Action::Read {
        let store = g.store.clone();
        if super::blocking(move || store.may_read_sync(&r, None)).await? {
            return Ok(());
        }
    }
    let header = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let who = access::verify(header, action, root)?;
    let (store, w) = (g.store.clone(), who.0);
    if super::blocking(move || store.may_read_sync(&r, Some(&w))).await? || g.gate.admit(root, &who).await {
        return Ok(());
    }
    Err(BlobError::Forbidden(format!("{who:?} is not a reader of {}", hex::encode(root))))
}

async fn get_output_gated(State(g): State<Gated>, Path(root): Path<String>, headers: HeaderMap) -> Result<Response, BlobError> {
    authorize(&g, &hash_of(&root)?, &headers, Action::Read).await?;
    get_output(State(g.store), Path(root)).await
}

async fn get_chunk_gated(State(g): State<Gated>, Path((root, index)): Path<(String, u64)>, headers: HeaderMap) -> Result<Json<ChunkProof>, BlobError> {
    authorize(&g, &hash_of(&root)?, &headers, Action::Read).await?;
    get_chunk(State(g.store), Path((root, index))).await
}

async fn get_batch_gated(State(g): State<Gated>, Path(root): Path<String>, headers: HeaderMap) -> Result<Vec<u8>, BlobError> {
    authorize(&g, &hash_of(&root)?, &headers, Action::Read).await?;
    get_batch(State(g.store), Path(root)).await
}

async fn publish(State(g): State<Gated>, Path(root): Path<String>, headers: HeaderMap) -> Result<StatusCode, BlobError> {
    let root = hash_of(&root)?;
    authorize(&g, &root, &headers, Action::Publish).await?;
    let store = g.store.clone();
    super::blocking(move || store.publish_sync(&root)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a worker serves: the GET routes above, its outputs, chunk proofs and task-root
/// lists to their readers only (see the module documentation; `gate` admits readers not yet
/// granted), its cached blobs to anyone, and `POST /public/<root>`. A PUT is 405.
pub fn read_only_router(store: LocalStore, gate: Arc<dyn Gate>) -> Router {
    guarded(
        Router::new()
            .route("/blobs/{hash}", get(get_blob))
            .route("/outputs/{root}", get(get_output_gated))
            .route("/outputs/{root}/chunks/{index}", get(get_chunk_gated))
            .route("/batches/{root}", get(get_batch_gated))
            .route("/public/{root}", post(publish))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(Gated { store, gate }),
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
            let Ok(slot) = slots.try_acquire_owned() else {
                return (StatusCode::SERVICE_UNAVAILABLE, "busy: too many requests in flight").into_response();
            };
            let deadline = tokio::time::Instant::now() + timeout;
            match tokio::time::timeout_at(deadline, next.run(req)).await {
                Ok(resp) => holding_until_sent(resp, slot, deadline),
                Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long").into_response(),
            }
        }
    }))
}

/// `resp` whose body keeps `slot` until the body has been sent (or dropped: the client went
/// away) and is cut at `deadline`, so a slow reader of a streamed output holds a slot, and
/// not for longer than the request's time.
fn holding_until_sent(resp: Response, slot: tokio::sync::OwnedSemaphorePermit, deadline: tokio::time::Instant) -> Response {
    use axum::body::HttpBody;
    let (mut parts, body) = resp.into_parts();
    if let Some(len) = body.size_hint().exact() {
        parts.headers.entry(axum::http::header::CONTENT_LENGTH).or_insert(len.into());
    }
    let pieces = futures::stream::unfold((body.into_data_stream(), Some(slot)), move |(mut body, slot)| async move {
        let slot = slot?;
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(piece)) => Some((piece, (body, Some(slot)))),
            Ok(None) => None,
            Err(_) => Some((Err(axum::Error::new("response body took too long; cut")), (body, None))),
        }
    });
    Response::from_parts(parts, axum::body::Body::from_stream(pieces))
}

/// Serves `app` on `listener` until `shutdown` resolves, then gives the connections still
/// open [`SHUTDOWN_GRACE`] to finish. HTTP/1.1 with a [`HEADER_TIMEOUT`] per request's headers
/// and at most [`MAX_CONNECTIONS`] connections, [`MAX_CONNECTIONS_PER_IP`] from one address.
///
/// # Errors
/// The listener failing other than by running out of file descriptors or a connection
/// reset before it was accepted (those are logged and accepting goes on).
pub async fn serve(listener: tokio::net::TcpListener, app: Router, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, HEADER_TIMEOUT, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP).await
}

/// Open connections per peer address; an entry leaves with its last connection.
#[derive(Default)]
struct PerIp(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

/// One open connection from an address, counted until dropped.
struct IpSlot(Arc<PerIp>, std::net::IpAddr);

impl PerIp {
    fn take(self: &Arc<Self>, ip: std::net::IpAddr, max: usize) -> Option<IpSlot> {
        let mut open = self.0.lock().unwrap();
        let n = open.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot(self.clone(), ip))
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.0 .0.lock().unwrap();
        if let Some(n) = open.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.1);
            }
        }
    }
}

async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    header_timeout: Duration,
    max_connections: usize,
    max_per_ip: usize,
) -> std::io::Result<()> {
    let connections = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let per_ip = Arc::new(PerIp::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_transient(&e) => {
                    tracing::warn!(%e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e),
            },
            () = &mut shutdown => break,
        };
        let Some(ip_slot) = per_ip.take(peer.ip(), max_per_ip) else {
            tracing::debug!(%peer, "per-address connection limit reached; closing a new connection");
            continue;
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::debug!("connection limit reached; closing a new connection");
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout);
        let connection = graceful.watch(builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%e, "connection ended with an error");
            }
            drop((permit, ip_slot));
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace; dropping them");
    }
    Ok(())
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    // Out of file descriptors passes as connections close.
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted | WouldBlock)
        || e.raw_os_error().is_some_and(|c| c == libc::EMFILE || c == libc::ENFILE)
}

#[cfg(test)]
mod tests {
    use super::super::{fetch_verified_output, BlobStore, HttpStore};
    use super::*;

    /// Serves `app` on a free port of 127.0.0.1 until the test ends; its base URL.
    async fn spawn(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(listener, app, std::future::pending()));
        url
    }

    /// A server on a free port over a temp dir; returns its client and the dir.
    async fn start() -> (HttpStore, tempfile::TempDir, tokio::sync::oneshot::Sender<()>) {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(LocalStore::new(dir.path()).unwrap(), 1 << 20, Uploaders::Anyone);
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
    async fn a_signed_store_takes_uploads_from_its_uploaders_only() {
        use subxt_signer::sr25519::dev;
        let dir = tempfile::tempdir().unwrap();
        let dave = crate::chain::revive::h160_of(&dev::dave().public_key().into());
        let app = router(LocalStore::new(dir.path()).unwrap(), 1 << 20, Uploaders::Signed(Arc::new([dave].into())));
        let url = spawn(app).await;
        let anonymous = HttpStore::new(&url).unwrap();
        let stranger = HttpStore::new(&url).unwrap().signed_by(access::Signer::new(dev::eve()));
        let renter = HttpStore::new(&url).unwrap().signed_by(access::Signer::new(dev::dave()));
        let out: Vec<u8> = (0..5_000u32).map(|i| (i % 251) as u8).collect();
        let root = output_root(&out);
        let refused = |r: Result<(), BlobError>, status: &str| assert!(matches!(&r, Err(BlobError::Http { reason, .. }) if reason.starts_with(status)), "{r:?}");
        refused(anonymous.put(b"spec").await.map(|_| ()), "401");
        refused(stranger.put(b"spec").await.map(|_| ()), "403");
        refused(anonymous.put_output(&root, &out).await, "401");
        refused(stranger.put_batch(&[root]).await.map(|_| ()), "403");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing stored");
        // A signature names the content address: one for another blob does not admit this one.
        let other = sha256(b"other");
        let resp = reqwest::Client::new()
            .put(format!("{url}/blobs/{}", hex::encode(sha256(b"spec"))))
            .header(reqwest::header::AUTHORIZATION, access::Signer::new(dev::dave()).header(Action::Upload, &other))
            .body(b"spec".to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        // The renter's own uploads are taken, and anyone may read them.
        let h = renter.put(b"spec").await.unwrap();
        renter.put_output(&root, &out).await.unwrap();
        let batch = renter.put_batch(&[root]).await.unwrap();
        assert_eq!(anonymous.get(&h).await.unwrap(), b"spec");
        assert_eq!(fetch_verified_output(&anonymous, &root).await.unwrap(), out);
        assert_eq!(super::super::fetch_verified_batch(&anonymous, &batch, Some(1)).await.unwrap(), vec![root]);
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
        assert_eq!(resolver.fetch_unkept(&h, &url, 1000).await.unwrap(), data, "checked, not kept");
        assert!(matches!(local.get_sync(&h), Err(BlobError::NotFound(_))), "nothing cached from an unkept fetch");
        assert_eq!(resolver.fetch(&h, &url, 1000).await.unwrap(), data);
        assert_eq!(local.get_sync(&h).unwrap(), data, "cached");
        let other = sha256(b"other");
        assert!(matches!(resolver.fetch(&other, &url, 1000).await, Err(BlobError::BadUri(_))), "the URI names another hash");
        assert!(matches!(resolver.fetch(&other, &super::super::uri(&other), 1000).await, Err(BlobError::NotFound(_))));
        std::fs::write(cache.path().join(hex::encode(h)), b"").unwrap();
        assert_eq!(resolver.fetch(&h, &url, 1000).await.unwrap(), data, "a torn cached copy is fetched again");
        assert_eq!(local.get_sync(&h).unwrap(), data, "and replaced");

        // A store that cannot keep what it fetched (its directory gone, as a full disk
        // refuses): a local I/O error, which the worker does not take for a missing blob;
        // an unkept fetch does not touch the store.
        let gone = tempfile::tempdir().unwrap();
        let broken = super::super::Resolver::new(LocalStore::new(gone.path().join("store")).unwrap());
        std::fs::remove_dir_all(gone.path().join("store")).unwrap();
        assert!(matches!(broken.fetch(&h, &url, 1000).await, Err(BlobError::Io(_))));
        assert_eq!(broken.fetch_unkept(&h, &url, 1000).await.unwrap(), data);
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
        let url = spawn(read_only_router(local, Arc::new(GrantsOnly))).await;
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
        let url = spawn(app).await;
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

    /// Admits one account for one root, as a worker's chain check would for the renter of a
    /// settled job.
    struct Admit([u8; 32], H160);

    #[async_trait::async_trait]
    impl Gate for Admit {
        async fn admit(&self, root: &[u8; 32], reader: &H160) -> bool {
            root == &self.0 && reader == &self.1
        }
    }

    #[tokio::test]
    async fn outputs_are_served_to_their_readers_only() {
        use subxt_signer::sr25519::dev;
        let dir = tempfile::tempdir().unwrap();
        let local = LocalStore::new(dir.path()).unwrap();
        let out: Vec<u8> = (0..9_000u32).map(|i| (i % 251) as u8).collect();
        let root = output_root(&out);
        local.put_output_sync(&root, &out).unwrap();
        let batch = local.put_batch_sync(&[root]).unwrap();
        let alice = crate::chain::revive::h160_of(&dev::alice().public_key().into());
        let url = spawn(read_only_router(local.clone(), Arc::new(Admit(root, alice)))).await;
        let anonymous = HttpStore::new(&url).unwrap();
        let as_alice = anonymous.clone().signed_by(access::Signer::new(dev::alice()));
        let as_bob = anonymous.clone().signed_by(access::Signer::new(dev::bob()));
        let status = |e: BlobError| match e {
            BlobError::Http { reason, .. } => reason[..3].to_string(),
            other => panic!("{other}"),
        };
        assert_eq!(status(anonymous.get_output_unchecked(&root).await.unwrap_err()), "401");
        assert_eq!(status(anonymous.get_chunk(&root, 0).await.unwrap_err()), "401");
        assert_eq!(status(as_bob.get_output_unchecked(&root).await.unwrap_err()), "403");
        assert_eq!(status(as_bob.get_chunk(&root, 0).await.unwrap_err()), "403");
        // A signature made for another root or too long ago does not open this one.
        let http = reqwest::Client::new();
        let get_as = |auth: String| http.get(format!("{url}/outputs/{}", hex::encode(root))).header("authorization", auth).send();
        let signer = access::Signer::new(dev::alice());
        assert_eq!(get_as(signer.header(access::Action::Read, &[9; 32])).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        let stale = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - access::MAX_SKEW - 5;
        assert_eq!(get_as(signer.header_at(access::Action::Read, &root, stale)).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(get_as(signer.header(access::Action::Publish, &root)).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        // The admitted reader gets the output and its chunks.
        assert_eq!(fetch_verified_output(&as_alice, &root).await.unwrap(), out);
        assert_eq!(as_alice.get_chunk(&root, 2).await.unwrap(), out[8192..]);
        // The gate admits Alice for the output's root, not for the batch list (a worker notes
        // both); grants are per root.
        assert_eq!(status(as_alice.get_batch_unchecked(&batch).await.unwrap_err()), "403");
        local.grant_sync(&batch, &alice.0).unwrap();
        local.grant_sync(&batch, &alice.0).unwrap();
        assert_eq!(std::fs::read(dir.path().join(format!("readers-{}", hex::encode(batch)))).unwrap().len(), 20, "granted once");
        assert_eq!(super::super::fetch_verified_batch(&as_alice, &batch, Some(1)).await.unwrap(), vec![root]);
        // Only a reader may publish; then anyone reads, unsigned.
        assert_eq!(status(as_bob.publish(&root).await.unwrap_err()), "403");
        assert!(matches!(anonymous.publish(&root).await, Err(BlobError::Unauthorized(_))));
        as_alice.publish(&root).await.unwrap();
        assert_eq!(fetch_verified_output(&anonymous, &root).await.unwrap(), out);
        assert_eq!(status(anonymous.get_batch_unchecked(&batch).await.unwrap_err()), "401", "the batch list stays private");
        // Cached blobs (inputs fetched from renters' public URIs) stay readable by anyone.
        let h = local.put_sync(b"public input").unwrap();
        assert_eq!(anonymous.get(&h).await.unwrap(), b"public input");
    }

    #[tokio::test]
    async fn a_slow_reader_holds_its_slot_and_is_cut_at_the_deadline() {
        // A body that sends one piece and then nothing.
        let stalled = Router::new()
            .route(
                "/stream",
                get(|| async {
                    let first = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"first piece")) });
                    axum::body::Body::from_stream(first.chain(futures::stream::pending()))
                }),
            )
            .route("/fast", get(|| async { "fast" }));
        let app = limited(stalled, Arc::new(tokio::sync::Semaphore::new(1)), Duration::from_millis(1500));
        let url = spawn(app).await;
        let http = reqwest::Client::new();
        let mut streaming = http.get(format!("{url}/stream")).send().await.unwrap();
        assert_eq!(streaming.status(), StatusCode::OK, "headers sent");
        assert_eq!(streaming.chunk().await.unwrap().unwrap(), "first piece");
        let busy = http.get(format!("{url}/fast")).send().await.unwrap();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE, "the stream's body still holds the one slot");
        // At the deadline the body is cut (the client sees an error, not a clean end) ...
        assert!(streaming.chunk().await.is_err(), "the stalled body is cut");
        // ... and the slot is free again.
        assert_eq!(http.get(format!("{url}/fast")).send().await.unwrap().status(), StatusCode::OK);
        // A sized body keeps its length.
        let sized = http.get(format!("{url}/fast")).send().await.unwrap();
        assert_eq!(sized.content_length(), Some(4));
    }

    #[tokio::test]
    async fn slow_headers_and_too_many_connections_are_closed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let app = Router::new().route("/", get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_with(listener, app, std::future::pending(), Duration::from_millis(800), 3, 2));
        // Slowloris: half a request line, then nothing: closed once the header time is up.
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf)).await.expect("closed, not left open").unwrap_or(0);
        assert!(n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"), "{:?}", String::from_utf8_lossy(&buf[..n]));
        assert!(started.elapsed() >= Duration::from_millis(700), "not before the header time");
        // Two idle connections from 127.0.0.1 fill its cap of 2; a third from it is closed on
        // accept, while another address (127.0.0.2) is still served.
        let _a = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _b = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let n = tokio::time::timeout(Duration::from_secs(2), third.read(&mut buf)).await.expect("closed at once").unwrap_or(0);
        assert_eq!(n, 0, "over the connection cap: closed without an answer");
        let other = tokio::net::TcpSocket::new_v4().unwrap();
        other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut other = other.connect(addr).await.unwrap();
        other.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut text = String::new();
        other.read_to_string(&mut text).await.unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "another address is served: {text}");
        drop((_a, _b));
        // Once they are gone, a request is served.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
        ok.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut text = String::new();
        ok.read_to_string(&mut text).await.unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    }
}
