//! [`HttpStore`]: the [`BlobStore`] of another machine, reached through its [`super::server`].

use super::access::{Action, Signer};
use super::{output_root, sha256, BlobError, BlobStore, ChunkProof};
use std::time::Duration;

/// The HTTP client every blob fetch uses: bounded connect time, generous transfer time,
/// and no redirects (a URI in a job names the server that is asked, never a third one it
/// points to: no blind requests into the fetcher's network).
pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a TLS backend is compiled in")
}

fn http_err(url: &str, reason: impl std::fmt::Display) -> BlobError {
    BlobError::Http { url: url.into(), reason: reason.to_string() }
}

/// Most of an error body that is read (and shown).
const MAX_ERROR_BODY: usize = 1024;

/// A non-success response as an error: its status and at most [`MAX_ERROR_BODY`] bytes of
/// its body.
async fn status_err(url: &str, mut resp: reqwest::Response) -> BlobError {
    let status = resp.status();
    let mut text = Vec::new();
    while text.len() < MAX_ERROR_BODY {
        match resp.chunk().await {
            Ok(Some(c)) => text.extend_from_slice(&c[..c.len().min(MAX_ERROR_BODY - text.len())]),
            _ => break,
        }
    }
    http_err(url, format!("{status}: {}", String::from_utf8_lossy(&text)))
}

/// GETs `url`, reading at most `max` bytes; a 404 is [`BlobError::NotFound`], a longer
/// body [`BlobError::TooLarge`] (read no further), another failure status its status and at
/// most [`MAX_ERROR_BODY`] bytes of its body.
pub(crate) async fn get(client: &reqwest::Client, url: &str, max: u64) -> Result<Vec<u8>, BlobError> {
    get_with(client, url, max, None).await
}

/// [`get`] with an `Authorization` header ([`super::access`]).
async fn get_with(client: &reqwest::Client, url: &str, max: u64, auth: Option<String>) -> Result<Vec<u8>, BlobError> {
    let mut req = client.get(url);
    if let Some(auth) = auth {
        req = req.header(reqwest::header::AUTHORIZATION, auth);
    }
    let mut resp = req.send().await.map_err(|e| http_err(url, e))?;
    match resp.status() {
        reqwest::StatusCode::NOT_FOUND => return Err(BlobError::NotFound(url.into())),
        s if s.is_success() => {}
        _ => return Err(status_err(url, resp).await),
    }
    let too_large = || BlobError::TooLarge { url: url.into(), limit: max };
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| http_err(url, e))? {
        if body.len() as u64 + chunk.len() as u64 > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// GETs `url` (at most `max` bytes) and checks the body's sha256 against `h`.
pub(super) async fn get_checked(client: &reqwest::Client, url: &str, h: &[u8; 32], max: u64) -> Result<Vec<u8>, BlobError> {
    let data = get(client, url, max).await?;
    let actual = sha256(&data);
    if &actual != h {
        return Err(BlobError::HashMismatch { name: url.into(), actual: hex::encode(actual) });
    }
    Ok(data)
}

/// Largest chunk-proof document accepted (a 4 KiB chunk in hex plus a 64-level path).
const MAX_PROOF_BYTES: u64 = 64 << 10;

/// A remote blob store at `base` (`http://host:port`), speaking the routes of
/// [`super::server::router`].
#[derive(Clone, Debug)]
pub struct HttpStore {
    base: String,
    client: reqwest::Client,
    /// Signs output, chunk and task-root reads (a worker serves those to their readers only)
    /// and uploads (a `capacloud blobs serve` takes those from its uploaders only).
    signer: Option<Signer>,
}

impl HttpStore {
    /// The store served at `base`.
    ///
    /// # Errors
    /// [`BlobError::BadUri`] when `base` is not an http(s) URL.
    pub fn new(base: &str) -> Result<Self, BlobError> {
        let base = base.trim_end_matches('/').to_string();
        match reqwest::Url::parse(&base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(Self { base, client: client(), signer: None }),
            _ => Err(BlobError::BadUri(base)),
        }
    }

    /// The same store, its output, chunk and task-root reads and its uploads signed by
    /// `signer` (a worker serves those only to their readers, a blob server takes uploads
    /// only from its uploaders: [`super::access`]).
    pub fn signed_by(mut self, signer: Signer) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The store's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn auth(&self, action: Action, root: &[u8; 32]) -> Option<String> {
        self.signer.as_ref().map(|s| s.header(action, root))
    }

    /// Makes what is stored under `root` (an output or a task-root list) readable by anyone
    /// on a worker's endpoint; the signer must be one of its readers.
    ///
    /// # Errors
    /// [`BlobError::Unauthorized`] without a signer; the server's refusal (401, 403) or
    /// transport errors as [`BlobError::Http`].
    pub async fn publish(&self, root: &[u8; 32]) -> Result<(), BlobError> {
        let auth = self.auth(Action::Publish, root).ok_or_else(|| BlobError::Unauthorized("publishing needs a signer".into()))?;
        let url = format!("{}/public/{}", self.base, hex::encode(root));
        let resp = self.client.post(&url).header(reqwest::header::AUTHORIZATION, auth).send().await.map_err(|e| http_err(&url, e))?;
        if !resp.status().is_success() {
            return Err(status_err(&url, resp).await);
        }
        Ok(())
    }

    /// PUTs `data` to `url`, the place of content address `name`.
    async fn put_to(&self, url: String, name: &[u8; 32], data: &[u8]) -> Result<(), BlobError> {
        let mut request = self.client.put(&url).body(data.to_vec());
        if let Some(auth) = self.auth(Action::Upload, name) {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        let resp = request.send().await.map_err(|e| http_err(&url, e))?;
        if !resp.status().is_success() {
            return Err(status_err(&url, resp).await);
        }
        Ok(())
    }

    /// Chunk `index` of the output under `root`, checked against `root`.
    ///
    /// # Errors
    /// Fetch errors; [`BlobError::BadProof`] when the proof does not lead to `root`.
    pub async fn get_chunk(&self, root: &[u8; 32], index: u64) -> Result<Vec<u8>, BlobError> {
        let url = format!("{}/outputs/{}/chunks/{index}", self.base, hex::encode(root));
        let body = get_with(&self.client, &url, MAX_PROOF_BYTES, self.auth(Action::Read, root)).await?;
        let proof: ChunkProof = serde_json::from_slice(&body).map_err(|e| http_err(&url, format!("not a chunk proof: {e}")))?;
        if proof.leaf_index != index {
            return Err(BlobError::BadProof { root: hex::encode(root), index, reason: format!("proof is for chunk {}", proof.leaf_index) });
        }
        proof.verify(root)
    }
}

#[async_trait::async_trait]
impl BlobStore for HttpStore {
    async fn put(&self, data: &[u8]) -> Result<[u8; 32], BlobError> {
        let h = sha256(data);
        self.put_to(self.locator(&h), &h, data).await?;
        Ok(h)
    }

    async fn get(&self, h: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
        get_checked(&self.client, &self.locator(h), h, u64::MAX).await
    }

    async fn put_output(&self, root: &[u8; 32], data: &[u8]) -> Result<(), BlobError> {
        debug_assert_eq!(&output_root(data), root);
        self.put_to(format!("{}/outputs/{}", self.base, hex::encode(root)), root, data).await
    }

    async fn get_output_unchecked(&self, root: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
        get_with(&self.client, &format!("{}/outputs/{}", self.base, hex::encode(root)), u64::MAX, self.auth(Action::Read, root)).await
    }

    async fn put_batch(&self, roots: &[[u8; 32]]) -> Result<[u8; 32], BlobError> {
        use codec::Encode;
        let root = super::batch_root(roots);
        self.put_to(format!("{}/batches/{}", self.base, hex::encode(root)), &root, &roots.to_vec().encode()).await?;
        Ok(root)
    }

    async fn get_batch_unchecked(&self, root: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
        // A task-root list is 32 bytes a task (at most 4,096 tasks) and a length prefix.
        get_with(&self.client, &format!("{}/batches/{}", self.base, hex::encode(root)), 4096 * 32 + 8, self.auth(Action::Read, root)).await
    }

    fn locator(&self, h: &[u8; 32]) -> String {
        format!("{}/blobs/{}", self.base, hex::encode(h))
    }
}
