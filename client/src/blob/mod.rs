//! Content-addressed blob store: job specs and inputs are named by their sha256, outputs by
//! their Merkle root, so whoever fetches a blob checks it against its name.
//!
//! - [`BlobStore`] is the interface (an S3-compatible store would implement it too).
//! - [`LocalStore`] keeps blobs in a directory (one file per hash, written atomically).
//! - [`HttpStore`] reaches another machine's store through [`server`], the HTTP service a
//!   worker runs at its offer's endpoint (`capacloud blobs serve` runs it standalone).
//! - A batch's task-root list is stored under the batch root it hashes to
//!   ([`BlobStore::put_batch`], [`fetch_verified_batch`]), so a renter that knows only the
//!   batch root from the chain finds, and checks, every task's output root.
//! - [`access`]: who may read a worker's outputs (the renters of settled jobs, signed
//!   requests; or anyone once made public).
//! - [`Resolver`] fetches a blob named by a URI: `sha256:<hex>` from the local store,
//!   `http(s)://…/blobs/<hex>` from wherever it points, always checked, then cached locally.

pub mod access;
pub(crate) mod http;
pub mod server;

pub use http::HttpStore;

use capacloud_executor::merkle::{self, Commitment, Proof, DEFAULT_CHUNK};
use std::path::PathBuf;
use std::sync::Arc;

/// Why a blob could not be stored or fetched.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob {0} not found")]
    NotFound(String),
    #[error("blob {name} has hash {actual}: corrupted or wrong content")]
    HashMismatch { name: String, actual: String },
    #[error("`{0}` is not a sha256:<64 hex digits> or http(s)://…/<64 hex digits> URI")]
    BadUri(String),
    #[error("blob store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("blob store at {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("{url} is larger than the {limit} bytes expected; not read further")]
    TooLarge { url: String, limit: u64 },
    #[error("chunk {index} of output {root}: {reason}")]
    BadProof { root: String, index: u64, reason: String },
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
}

/// Jobs a store remembers per output root ([`LocalStore::note_job_sync`]).
pub const MAX_JOBS_PER_ROOT: usize = 16;

/// sha256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sp_crypto_hashing::sha2_256(data)
}

/// The location-free URI of a blob with hash `h`.
pub fn uri(h: &[u8; 32]) -> String {
    format!("sha256:{}", hex::encode(h))
}

/// Whether `location` is an `http://` or `https://` URL (a remote store, endpoint or blob).
pub fn is_http_url(location: &str) -> bool {
    location.starts_with("http://") || location.starts_with("https://")
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

/// The hash named by a `sha256:<hex>` URI or by the last path segment of an
/// `http(s)://…/<hex>` URI.
///
/// # Errors
/// [`BlobError::BadUri`].
pub fn parse_uri(uri: &str) -> Result<[u8; 32], BlobError> {
    let bad = || BlobError::BadUri(uri.to_string());
    let hex_part = match uri.strip_prefix("sha256:") {
        Some(h) => h,
        None if is_http_url(uri) => uri.rsplit('/').next().ok_or_else(bad)?,
        None => return Err(bad()),
    };
    parse_hex32(hex_part).ok_or_else(bad)
}

/// The Merkle root of `data` in the chunking every output uses.
pub fn output_root(data: &[u8]) -> [u8; 32] {
    merkle::commit(data, DEFAULT_CHUNK).root
}

/// A store of blobs named by their sha256 and of outputs named by their Merkle root.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `data`; returns its sha256.
    ///
    /// # Errors
    /// The backend's errors.
    async fn put(&self, data: &[u8]) -> Result<[u8; 32], BlobError>;

    /// Fetches the blob named `h`, checked against its name.
    ///
    /// # Errors
    /// [`BlobError::NotFound`], [`BlobError::HashMismatch`], the backend's errors.
    async fn get(&self, h: &[u8; 32]) -> Result<Vec<u8>, BlobError>;

    /// Stores a job output under its Merkle root (what the provider reveals on chain).
    ///
    /// # Errors
    /// The backend's errors.
    async fn put_output(&self, root: &[u8; 32], data: &[u8]) -> Result<(), BlobError>;

    /// Fetches the output stored under Merkle root `root`, unchecked: callers check it with
    /// [`fetch_verified_output`].
    ///
    /// # Errors
    /// [`BlobError::NotFound`], the backend's errors.
    async fn get_output_unchecked(&self, root: &[u8; 32]) -> Result<Vec<u8>, BlobError>;

    /// Stores a batch's task output roots (in task order) under the batch root they hash to;
    /// returns that root.
    ///
    /// # Errors
    /// The backend's errors.
    async fn put_batch(&self, roots: &[[u8; 32]]) -> Result<[u8; 32], BlobError>;

    /// Fetches the task-root list stored under `batch_root`, unchecked: callers check it with
    /// [`fetch_verified_batch`].
    ///
    /// # Errors
    /// [`BlobError::NotFound`], the backend's errors.
    async fn get_batch_unchecked(&self, batch_root: &[u8; 32]) -> Result<Vec<u8>, BlobError>;

    /// The URI others use to fetch blob `h` from this store: location-free (`sha256:`) for
    /// a local directory, a URL for a store other machines reach.
    fn locator(&self, h: &[u8; 32]) -> String {
        uri(h)
    }
}

/// Fetches the output committed to by `root` and checks it against the root.
///
/// # Errors
/// [`BlobError::NotFound`]; [`BlobError::HashMismatch`] when the data's Merkle root differs.
pub async fn fetch_verified_output(store: &dyn BlobStore, root: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
    let data = store.get_output_unchecked(root).await?;
    let actual = output_root(&data);
    if &actual != root {
        return Err(BlobError::HashMismatch { name: format!("output {}", hex::encode(root)), actual: hex::encode(actual) });
    }
    Ok(data)
}

/// The batch root of task output roots `roots` (see `capacloud_types::merkle`).
pub fn batch_root(roots: &[[u8; 32]]) -> [u8; 32] {
    use capacloud_types::{hash::HostSha256 as H, merkle};
    let leaves: Vec<[u8; 32]> = roots.iter().enumerate().map(|(i, r)| merkle::task_leaf::<H>(i as u32, r)).collect();
    merkle::root::<H>(&leaves)
}

/// Decodes a stored task-root list and checks it against `batch_root` (and `tasks`, when
/// the caller knows the count).
///
/// # Errors
/// [`BlobError::HashMismatch`] when it does not decode or hash to the root.
pub fn check_batch(bytes: &[u8], expected: &[u8; 32], tasks: Option<u32>) -> Result<Vec<[u8; 32]>, BlobError> {
    use codec::Decode;
    let bad = |actual: String| BlobError::HashMismatch { name: format!("batch {}", hex::encode(expected)), actual };
    let mut input = bytes;
    let roots = Vec::<[u8; 32]>::decode(&mut input).map_err(|e| bad(format!("undecodable ({e})")))?;
    if !input.is_empty() || roots.is_empty() || tasks.is_some_and(|n| n as usize != roots.len()) {
        return Err(bad(format!("{} roots, {} bytes left over", roots.len(), input.len())));
    }
    let actual = batch_root(&roots);
    if &actual != expected {
        return Err(bad(hex::encode(actual)));
    }
    Ok(roots)
}

/// Fetches the task-root list of `batch_root` from `store` and checks it.
///
/// # Errors
/// [`BlobError::NotFound`], [`BlobError::HashMismatch`].
pub async fn fetch_verified_batch(store: &dyn BlobStore, batch_root: &[u8; 32], tasks: Option<u32>) -> Result<Vec<[u8; 32]>, BlobError> {
    check_batch(&store.get_batch_unchecked(batch_root).await?, batch_root, tasks)
}

/// One chunk of an output with its inclusion proof: lets a client check a piece of a large
/// output against the root revealed on chain without downloading the rest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkProof {
    /// Output length in bytes (bound by the root).
    pub output_len: u64,
    /// Chunk size in bytes (bound by the root).
    pub chunk_size: u32,
    pub leaf_index: u64,
    pub leaf_count: u64,
    /// The chunk, hex.
    pub chunk: String,
    /// Sibling hashes, leaf level first, hex.
    pub siblings: Vec<String>,
}

impl ChunkProof {
    /// The proof of chunk `index` of `data`.
    ///
    /// # Errors
    /// [`BlobError::BadProof`] when there is no such chunk.
    pub fn of(data: &[u8], index: u64) -> Result<Self, BlobError> {
        let root = output_root(data);
        let bad = |reason: String| BlobError::BadProof { root: hex::encode(root), index, reason };
        let proof = merkle::prove(data, DEFAULT_CHUNK, index).map_err(|e| bad(e.to_string()))?;
        let chunk = merkle::chunk_of(data, DEFAULT_CHUNK, index).ok_or_else(|| bad("no such chunk".into()))?;
        Ok(Self {
            output_len: data.len() as u64,
            chunk_size: DEFAULT_CHUNK.get(),
            leaf_index: proof.leaf_index,
            leaf_count: proof.leaf_count,
            chunk: hex::encode(chunk),
            siblings: proof.siblings.iter().map(hex::encode).collect(),
        })
    }

    /// Checks the chunk against `root` (the root revealed on chain; nothing else in the
    /// proof is trusted) and returns its bytes.
    ///
    /// # Errors
    /// [`BlobError::BadProof`] when the proof does not lead to `root`.
    pub fn verify(&self, root: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
        let bad = |reason: String| BlobError::BadProof { root: hex::encode(root), index: self.leaf_index, reason };
        let chunk = hex::decode(&self.chunk).map_err(|e| bad(format!("chunk is not hex: {e}")))?;
        let siblings = self
            .siblings
            .iter()
            .map(|s| parse_hex32(s).ok_or_else(|| bad(format!("sibling `{s}` is not 32 hex bytes"))))
            .collect::<Result<Vec<_>, _>>()?;
        let commitment = Commitment {
            root: *root,
            tree_hash: [0; 32], // recomputed by verify_chunk from the chunk and the path
            output_len: self.output_len,
            chunk_size: self.chunk_size,
            leaf_count: self.leaf_count,
        };
        let proof = Proof { leaf_index: self.leaf_index, leaf_count: self.leaf_count, siblings };
        merkle::verify_chunk(&commitment, &chunk, &proof).map_err(|e| bad(e.to_string()))?;
        Ok(chunk)
    }
}

/// The file beside output `root` that holds its leaf hashes (32 bytes per 4 KiB chunk).
fn leaves_name(root: &[u8; 32]) -> String {
    format!("leaves-{}", hex::encode(root))
}

/// Blobs as files in one directory.
#[derive(Clone, Debug)]
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    /// A store in `dir` (created if missing).
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The store's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Writes `name` unless it exists: a temp file, fsynced, renamed into place, and the
    /// directory fsynced, so after a crash the name holds all of `data` or is absent.
    fn write_atomically(&self, name: &str, data: &[u8]) -> Result<(), BlobError> {
        if !self.dir.join(name).exists() {
            self.replace_atomically(name, data)?;
        }
        Ok(())
    }

    /// The bytes of `name`, or none when it does not exist.
    fn read_or_empty(&self, name: &str) -> Result<Vec<u8>, BlobError> {
        match std::fs::read(self.dir.join(name)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            other => Ok(other?),
        }
    }

    /// Writes `name` whether or not it exists: a temp file, fsynced, renamed into place, and
    /// the directory fsynced.
    fn replace_atomically(&self, name: &str, data: &[u8]) -> Result<(), BlobError> {
        use std::io::Write;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(data)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.dir.join(name)).map_err(|e| BlobError::Io(e.error))?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// Lets `reader` (a contract address) read the output, chunks or task-root list under
    /// `root` from this store's server ([`access`]); a reader already granted is kept once.
    ///
    /// # Errors
    /// I/O errors.
    pub fn grant_sync(&self, root: &[u8; 32], reader: &[u8; 20]) -> Result<(), BlobError> {
        let name = format!("readers-{}", hex::encode(root));
        let mut readers = self.read_or_empty(&name)?;
        readers.truncate(readers.len() / 20 * 20);
        if readers.chunks_exact(20).any(|r| r == reader) {
            return Ok(());
        }
        readers.extend_from_slice(reader);
        self.replace_atomically(&name, &readers)
    }

    /// Records that job `job` produced what is stored under `root` (a worker's note, read by
    /// its [`server::Gate`]); the newest [`MAX_JOBS_PER_ROOT`] jobs are kept.
    ///
    /// # Errors
    /// I/O errors.
    pub fn note_job_sync(&self, root: &[u8; 32], job: u64) -> Result<(), BlobError> {
        let mut jobs = self.jobs_of_sync(root)?;
        if jobs.contains(&job) {
            return Ok(());
        }
        jobs.push(job);
        let keep = &jobs[jobs.len().saturating_sub(MAX_JOBS_PER_ROOT)..];
        let bytes: Vec<u8> = keep.iter().flat_map(|j| j.to_le_bytes()).collect();
        self.replace_atomically(&format!("jobs-{}", hex::encode(root)), &bytes)
    }

    /// The jobs recorded by [`LocalStore::note_job_sync`] for `root`, oldest first.
    ///
    /// # Errors
    /// I/O errors.
    pub fn jobs_of_sync(&self, root: &[u8; 32]) -> Result<Vec<u64>, BlobError> {
        let bytes = self.read_or_empty(&format!("jobs-{}", hex::encode(root)))?;
        Ok(bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
    }

    /// Drops job `job`'s note on what is stored under `root` and, when no other job's note
    /// is left, the output (with its Merkle leaves), the task-root list and who may read them:
    /// what a worker does with a result it computed for a job it then did not take part in.
    /// Returns whether the files were removed.
    ///
    /// # Errors
    /// I/O errors.
    pub fn forget_job_sync(&self, root: &[u8; 32], job: u64) -> Result<bool, BlobError> {
        let jobs: Vec<u64> = self.jobs_of_sync(root)?.into_iter().filter(|j| *j != job).collect();
        let h = hex::encode(root);
        if !jobs.is_empty() {
            let bytes: Vec<u8> = jobs.iter().flat_map(|j| j.to_le_bytes()).collect();
            self.replace_atomically(&format!("jobs-{h}"), &bytes)?;
            return Ok(false);
        }
        for name in [format!("output-{h}"), leaves_name(root), format!("batch-{h}"), format!("readers-{h}"), format!("public-{h}"), format!("jobs-{h}")] {
            self.discard(&name)?;
        }
        Ok(true)
    }

    /// Lets anyone read what is under `root` ([`access`]).
    ///
    /// # Errors
    /// I/O errors.
    pub fn publish_sync(&self, root: &[u8; 32]) -> Result<(), BlobError> {
        self.write_atomically(&format!("public-{}", hex::encode(root)), b"")
    }

    /// Whether `reader` (`None`: an unsigned request) may read what is under `root`: it was
    /// made public, or `reader` was granted it.
    ///
    /// # Errors
    /// I/O errors.
    pub fn may_read_sync(&self, root: &[u8; 32], reader: Option<&[u8; 20]>) -> Result<bool, BlobError> {
        if self.dir.join(format!("public-{}", hex::encode(root))).exists() {
            return Ok(true);
        }
        let Some(reader) = reader else { return Ok(false) };
        Ok(self.read_or_empty(&format!("readers-{}", hex::encode(root)))?.chunks_exact(20).any(|r| r == reader))
    }

    /// Removes `name` (absent is fine): what a caller does with a copy that failed its check
    /// before fetching it again.
    fn discard(&self, name: &str) -> Result<(), BlobError> {
        match std::fs::remove_file(self.dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn read(&self, name: &str, uri: String) -> Result<Vec<u8>, BlobError> {
        match std::fs::read(self.dir.join(name)) {
            Ok(d) => Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound(uri)),
            Err(e) => Err(e.into()),
        }
    }

    /// Blocking [`BlobStore::put`].
    ///
    /// # Errors
    /// I/O errors.
    pub fn put_sync(&self, data: &[u8]) -> Result<[u8; 32], BlobError> {
        let h = sha256(data);
        self.write_atomically(&hex::encode(h), data)?;
        Ok(h)
    }

    /// Blocking [`BlobStore::get`].
    ///
    /// # Errors
    /// [`BlobError::NotFound`], [`BlobError::HashMismatch`], I/O errors.
    pub fn get_sync(&self, h: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
        let data = self.read(&hex::encode(h), uri(h))?;
        let actual = sha256(&data);
        if &actual != h {
            return Err(BlobError::HashMismatch { name: uri(h), actual: hex::encode(actual) });
        }
        Ok(data)
    }

    /// Blocking [`BlobStore::put_output`].
    ///
    /// # Errors
    /// I/O errors.
    pub fn put_output_sync(&self, root: &[u8; 32], data: &[u8]) -> Result<(), BlobError> {
        self.write_atomically(&format!("output-{}", hex::encode(root)), data)?;
        self.write_atomically(&leaves_name(root), &merkle::leaf_hashes(data, DEFAULT_CHUNK).concat())
    }

    /// Chunk `index` of the output under `root` with its inclusion proof, built from the
    /// leaf hashes stored beside the output (rebuilt from the output when missing or torn)
    /// and that one chunk: a request reads 1/128 of the output and hashes one node per 4 KiB
    /// of it, where proving from the output itself reads and hashes all of it. The leaves are
    /// checked against `root` and the chunk against its leaf, so a corrupted copy is never
    /// served.
    ///
    /// # Errors
    /// [`BlobError::NotFound`] for an unknown output or a chunk past its end; I/O errors,
    /// a corrupted copy among them.
    pub fn chunk_proof_sync(&self, root: &[u8; 32], index: u64) -> Result<ChunkProof, BlobError> {
        use std::io::{Read, Seek};
        let mut file = self.open_output_sync(root)?;
        let output_len = file.metadata()?.len();
        let corrupted = || BlobError::Io(std::io::Error::other(format!("stored output {} is corrupted", hex::encode(root))));
        let leaves = match std::fs::read(self.dir.join(leaves_name(root))) {
            Ok(bytes) if !bytes.is_empty() && bytes.len() % 32 == 0 => bytes
                .chunks_exact(32)
                .map(|c| {
                    let mut leaf = [0u8; 32];
                    leaf.copy_from_slice(c);
                    leaf
                })
                .collect::<Vec<_>>(),
            _ => {
                let leaves = merkle::leaf_hashes(&self.get_output_sync(root)?, DEFAULT_CHUNK);
                self.discard(&leaves_name(root))?;
                self.write_atomically(&leaves_name(root), &leaves.concat())?;
                leaves
            }
        };
        if merkle::root_hash(output_len, DEFAULT_CHUNK.get(), &merkle::tree_hash_of(leaves.clone())) != *root {
            return Err(corrupted());
        }
        let not_found = || BlobError::NotFound(format!("chunk {index} of output {}", hex::encode(root)));
        let Some(leaf) = usize::try_from(index).ok().and_then(|i| leaves.get(i)).copied() else {
            return Err(not_found());
        };
        let size = u64::from(DEFAULT_CHUNK.get());
        let start = index * size;
        let mut chunk = vec![0u8; usize::try_from(output_len.saturating_sub(start).min(size)).map_err(|_| not_found())?];
        file.seek(std::io::SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        if merkle::leaf_hash(&chunk) != leaf {
            return Err(corrupted());
        }
        let proof = merkle::prove_from_leaves(leaves, index).map_err(|_| not_found())?;
        Ok(ChunkProof {
            output_len,
            chunk_size: DEFAULT_CHUNK.get(),
            leaf_index: proof.leaf_index,
            leaf_count: proof.leaf_count,
            chunk: hex::encode(chunk),
            siblings: proof.siblings.iter().map(hex::encode).collect(),
        })
    }

    /// Blocking [`BlobStore::put_batch`].
    ///
    /// # Errors
    /// I/O errors.
    pub fn put_batch_sync(&self, roots: &[[u8; 32]]) -> Result<[u8; 32], BlobError> {
        use codec::Encode;
        let root = batch_root(roots);
        self.write_atomically(&format!("batch-{}", hex::encode(root)), &roots.to_vec().encode())?;
        Ok(root)
    }

    /// Blocking [`BlobStore::get_batch_unchecked`].
    ///
    /// # Errors
    /// [`BlobError::NotFound`], I/O errors.
    pub fn get_batch_sync(&self, root: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
        self.read(&format!("batch-{}", hex::encode(root)), format!("batch {}", hex::encode(root)))
    }

    /// The stored output under `root`, opened for reading (what the server streams).
    ///
    /// # Errors
    /// [`BlobError::NotFound`], I/O errors.
    pub fn open_output_sync(&self, root: &[u8; 32]) -> Result<std::fs::File, BlobError> {
        match std::fs::File::open(self.dir.join(format!("output-{}", hex::encode(root)))) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound(format!("output {}", hex::encode(root)))),
            Err(e) => Err(e.into()),
        }
    }

    /// Blocking [`BlobStore::get_output_unchecked`].
    ///
    /// # Errors
    /// [`BlobError::NotFound`], I/O errors.
    pub fn get_output_sync(&self, root: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
        self.read(&format!("output-{}", hex::encode(root)), format!("output {}", hex::encode(root)))
    }
}

/// Runs blocking file work off the async runtime's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, BlobError> + Send + 'static) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| BlobError::Io(std::io::Error::other(e.to_string())))?
}

#[async_trait::async_trait]
impl BlobStore for LocalStore {
    async fn put(&self, data: &[u8]) -> Result<[u8; 32], BlobError> {
        let (me, data) = (self.clone(), data.to_vec());
        blocking(move || me.put_sync(&data)).await
    }

    async fn get(&self, h: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
        let (me, h) = (self.clone(), *h);
        blocking(move || me.get_sync(&h)).await
    }

    async fn put_output(&self, root: &[u8; 32], data: &[u8]) -> Result<(), BlobError> {
        let (me, root, data) = (self.clone(), *root, data.to_vec());
        blocking(move || me.put_output_sync(&root, &data)).await
    }

    async fn get_output_unchecked(&self, root: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
        let (me, root) = (self.clone(), *root);
        blocking(move || me.get_output_sync(&root)).await
    }

    async fn put_batch(&self, roots: &[[u8; 32]]) -> Result<[u8; 32], BlobError> {
        let (me, roots) = (self.clone(), roots.to_vec());
        blocking(move || me.put_batch_sync(&roots)).await
    }

    async fn get_batch_unchecked(&self, root: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
        let (me, root) = (self.clone(), *root);
        blocking(move || me.get_batch_sync(&root)).await
    }
}

/// Opens the store named on a command line: an `http(s)://` URL is a remote [`HttpStore`],
/// anything else a [`LocalStore`] directory.
///
/// # Errors
/// A directory that cannot be created, a URL that does not parse.
pub fn open(location: &str) -> Result<Arc<dyn BlobStore>, BlobError> {
    if is_http_url(location) {
        Ok(Arc::new(HttpStore::new(location)?))
    } else {
        Ok(Arc::new(LocalStore::new(location)?))
    }
}

/// Fetches blobs named by URIs, local store first, and caches what it fetched remotely.
#[derive(Clone)]
pub struct Resolver {
    local: LocalStore,
    http: reqwest::Client,
}

impl Resolver {
    /// A resolver caching into `local`.
    pub fn new(local: LocalStore) -> Self {
        Self { local, http: http::client() }
    }

    /// The blob `h`, found through `uri`, checked against `h`; a remote blob longer than
    /// `max_len` bytes is refused without reading it all (URIs come from strangers).
    ///
    /// # Errors
    /// [`BlobError::BadUri`] when `uri` names another hash; [`BlobError::TooLarge`]; fetch
    /// and hash errors.
    pub async fn fetch(&self, h: &[u8; 32], uri: &str, max_len: u64) -> Result<Vec<u8>, BlobError> {
        self.fetch_keeping(h, uri, max_len, true).await
    }

    /// As [`Resolver::fetch`], but a blob fetched remotely is checked and returned, not
    /// cached: for a reader that only needs to know the blob can be had (a verifier voting
    /// on a job's inputs), whose disk it must not fill.
    ///
    /// # Errors
    /// As [`Resolver::fetch`]; a local store's failure is [`BlobError::Io`] and no other
    /// error is.
    pub async fn fetch_unkept(&self, h: &[u8; 32], uri: &str, max_len: u64) -> Result<Vec<u8>, BlobError> {
        self.fetch_keeping(h, uri, max_len, false).await
    }

    async fn fetch_keeping(&self, h: &[u8; 32], uri: &str, max_len: u64, keep: bool) -> Result<Vec<u8>, BlobError> {
        if parse_uri(uri)? != *h {
            return Err(BlobError::BadUri(format!("{uri} (does not name {})", hex::encode(h))));
        }
        match self.local.get(h).await {
            Err(BlobError::NotFound(_) | BlobError::HashMismatch { .. }) if is_http_url(uri) => {
                // Absent, or a copy that fails its hash (torn by a crash): fetch it again.
                self.local.discard(&hex::encode(h))?;
                let data = http::get_checked(&self.http, uri, h, max_len).await?;
                if keep {
                    self.local.put(&data).await?;
                }
                Ok(data)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgetting_a_job_keeps_what_another_job_still_notes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let data = vec![7u8; 10_000];
        let root = output_root(&data);
        store.put_output_sync(&root, &data).unwrap();
        let batch = store.put_batch_sync(&[root]).unwrap();
        for j in [1, 2] {
            store.note_job_sync(&root, j).unwrap();
        }
        store.note_job_sync(&batch, 2).unwrap();
        // Job 1 forgotten: job 2 still notes the output, so it stays.
        assert!(!store.forget_job_sync(&root, 1).unwrap());
        assert_eq!(store.jobs_of_sync(&root).unwrap(), vec![2]);
        assert_eq!(store.get_output_sync(&root).unwrap(), data);
        // Job 2 forgotten: output, leaves, notes and the task-root list are gone.
        assert!(store.forget_job_sync(&root, 2).unwrap());
        assert!(store.forget_job_sync(&batch, 2).unwrap());
        assert!(matches!(store.get_output_sync(&root), Err(BlobError::NotFound(_))));
        assert!(matches!(store.get_batch_sync(&batch), Err(BlobError::NotFound(_))));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left behind");
    }

    #[test]
    fn put_get_round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let h = store.put_sync(b"hello").unwrap();
        assert_eq!(store.get_sync(&h).unwrap(), b"hello");
        assert_eq!(store.put_sync(b"hello").unwrap(), h, "idempotent");
        std::fs::write(dir.path().join(hex::encode(h)), b"tampered").unwrap();
        assert!(matches!(store.get_sync(&h), Err(BlobError::HashMismatch { .. })));
        assert!(matches!(store.get_sync(&[0; 32]), Err(BlobError::NotFound(_))));
    }

    #[tokio::test]
    async fn outputs_are_checked_against_their_merkle_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let data = vec![7u8; 10_000];
        let root = output_root(&data);
        store.put_output(&root, &data).await.unwrap();
        assert_eq!(fetch_verified_output(&store, &root).await.unwrap(), data);
        std::fs::write(dir.path().join(format!("output-{}", hex::encode(root))), vec![8u8; 10_000]).unwrap();
        assert!(matches!(fetch_verified_output(&store, &root).await, Err(BlobError::HashMismatch { .. })));
        assert!(matches!(fetch_verified_output(&store, &[1; 32]).await, Err(BlobError::NotFound(_))));
    }

    #[test]
    fn stored_chunk_proofs_equal_the_full_ones_and_refuse_a_corrupted_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let json = |p: &ChunkProof| serde_json::to_string(p).unwrap();
        let output = |len: u32| (0..len).map(|i| (i * 13 % 251) as u8).collect::<Vec<u8>>();
        for len in [0, 1, 4096, 4097, 20_000, 5 * 4096] {
            let data = output(len);
            let root = output_root(&data);
            store.put_output_sync(&root, &data).unwrap();
            let n = Commitment::leaf_count_for(u64::from(len), DEFAULT_CHUNK);
            for index in 0..n {
                let stored = store.chunk_proof_sync(&root, index).unwrap();
                assert_eq!(json(&stored), json(&ChunkProof::of(&data, index).unwrap()), "len {len} chunk {index}");
                stored.verify(&root).unwrap();
            }
            assert!(matches!(store.chunk_proof_sync(&root, n), Err(BlobError::NotFound(_))), "len {len}: past the end");
            assert!(matches!(store.chunk_proof_sync(&root, u64::MAX), Err(BlobError::NotFound(_))));
        }
        assert!(matches!(store.chunk_proof_sync(&[4; 32], 0), Err(BlobError::NotFound(_))), "unknown output");

        let data = output(20_000);
        let root = output_root(&data);
        let leaves = dir.path().join(leaves_name(&root));
        let expected = json(&ChunkProof::of(&data, 3).unwrap());
        std::fs::remove_file(&leaves).unwrap();
        assert_eq!(json(&store.chunk_proof_sync(&root, 3).unwrap()), expected, "lost leaves are rebuilt");
        assert!(leaves.exists());
        std::fs::write(&leaves, b"torn").unwrap();
        assert_eq!(json(&store.chunk_proof_sync(&root, 3).unwrap()), expected, "torn leaves are rebuilt");
        let corrupted = |r: Result<ChunkProof, BlobError>| matches!(r, Err(BlobError::Io(e)) if e.to_string().contains("corrupted"));
        std::fs::write(&leaves, merkle::leaf_hashes(&output(20_001), DEFAULT_CHUNK).concat()).unwrap();
        assert!(corrupted(store.chunk_proof_sync(&root, 3)), "leaves of another output are never served");
        std::fs::remove_file(&leaves).unwrap();
        let mut flipped = data.clone();
        flipped[2 * 4096 + 5] ^= 1;
        std::fs::write(dir.path().join(format!("output-{}", hex::encode(root))), &flipped).unwrap();
        assert!(corrupted(store.chunk_proof_sync(&root, 2)), "a flipped byte in the output is caught");
        assert!(corrupted(store.chunk_proof_sync(&root, 0)), "leaves rebuilt from a corrupted output do not reach the root");
    }

    #[test]
    fn chunk_proofs_verify_against_the_root_only() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let root = output_root(&data);
        for index in 0..5 {
            let p = ChunkProof::of(&data, index).unwrap();
            let chunk = p.verify(&root).unwrap();
            assert_eq!(chunk, data[index as usize * 4096..((index as usize + 1) * 4096).min(data.len())]);
        }
        let mut p = ChunkProof::of(&data, 2).unwrap();
        assert!(matches!(p.verify(&[9; 32]), Err(BlobError::BadProof { .. })), "another root");
        p.chunk.replace_range(0..2, "ff");
        assert!(matches!(p.verify(&root), Err(BlobError::BadProof { .. })), "tampered chunk");
        assert!(matches!(ChunkProof::of(&data, 5), Err(BlobError::BadProof { .. })), "no chunk 5");
    }

    #[test]
    fn uris_parse_strictly() {
        let h = sha256(b"x");
        assert_eq!(parse_uri(&uri(&h)).unwrap(), h);
        assert_eq!(parse_uri(&format!("http://host:1/blobs/{}", hex::encode(h))).unwrap(), h);
        for bad in ["", "sha256:", "sha256:zz", "md5:00", "ftp://x/00", &format!("sha256:{}", "0".repeat(62))] {
            assert!(matches!(parse_uri(bad), Err(BlobError::BadUri(_))), "{bad}");
        }
    }
}
