//! Content-addressed blob store: job specs, inputs and outputs are named by their sha256
//! (`sha256:<hex>` URIs), so whoever fetches a blob checks it against its name.
//!
//! [`LocalStore`] keeps blobs in a directory (one file per hash, written atomically);
//! an HTTP or S3-compatible store implements the same [`BlobStore`] trait.

use std::path::PathBuf;

/// Why a blob could not be stored or fetched.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob {0} not found")]
    NotFound(String),
    #[error("blob {name} has sha256 {actual}: corrupted or wrong content")]
    HashMismatch { name: String, actual: String },
    #[error("`{0}` is not a sha256:<64 hex digits> URI")]
    BadUri(String),
    #[error("blob store I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// sha256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sp_crypto_hashing::sha2_256(data)
}

/// The URI of a blob with hash `h`.
pub fn uri(h: &[u8; 32]) -> String {
    format!("sha256:{}", hex::encode(h))
}

/// The hash named by a `sha256:<hex>` URI.
///
/// # Errors
/// [`BlobError::BadUri`].
pub fn parse_uri(uri: &str) -> Result<[u8; 32], BlobError> {
    let bad = || BlobError::BadUri(uri.to_string());
    let hex_part = uri.strip_prefix("sha256:").ok_or_else(bad)?;
    let bytes = hex::decode(hex_part).map_err(|_| bad())?;
    bytes.try_into().map_err(|_| bad())
}

/// A store of blobs named by their sha256.
pub trait BlobStore: Send + Sync {
    /// Stores `data`; returns its sha256.
    ///
    /// # Errors
    /// The backend's I/O errors.
    fn put(&self, data: &[u8]) -> Result<[u8; 32], BlobError>;

    /// Fetches the blob named `h`, checked against its name.
    ///
    /// # Errors
    /// [`BlobError::NotFound`], [`BlobError::HashMismatch`], I/O errors.
    fn get(&self, h: &[u8; 32]) -> Result<Vec<u8>, BlobError>;

    /// Stores a job output under its Merkle root (what the provider reveals on chain).
    ///
    /// # Errors
    /// The backend's I/O errors.
    fn put_output(&self, root: &[u8; 32], data: &[u8]) -> Result<(), BlobError>;

    /// Fetches the output stored under Merkle root `root`, unchecked: callers check it with
    /// `capacloud_executor::merkle` (see [`fetch_verified_output`]).
    ///
    /// # Errors
    /// [`BlobError::NotFound`], I/O errors.
    fn get_output_unchecked(&self, root: &[u8; 32]) -> Result<Vec<u8>, BlobError>;
}

/// Fetches the output committed to by `root` and checks it against the root.
///
/// # Errors
/// [`BlobError::NotFound`]; [`BlobError::HashMismatch`] when the data's Merkle root differs.
pub fn fetch_verified_output(store: &dyn BlobStore, root: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
    let data = store.get_output_unchecked(root)?;
    let actual = capacloud_executor::merkle::commit(&data, capacloud_executor::merkle::DEFAULT_CHUNK).root;
    if &actual != root {
        return Err(BlobError::HashMismatch { name: format!("output {}", hex::encode(root)), actual: hex::encode(actual) });
    }
    Ok(data)
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
}

impl LocalStore {
    fn write_atomically(&self, name: &str, data: &[u8]) -> Result<(), BlobError> {
        let path = self.dir.join(name);
        if !path.exists() {
            let tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
            std::fs::write(tmp.path(), data)?;
            tmp.persist(&path).map_err(|e| BlobError::Io(e.error))?;
        }
        Ok(())
    }

    fn read(&self, name: &str, uri: String) -> Result<Vec<u8>, BlobError> {
        match std::fs::read(self.dir.join(name)) {
            Ok(d) => Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound(uri)),
            Err(e) => Err(e.into()),
        }
    }
}

impl BlobStore for LocalStore {
    fn put(&self, data: &[u8]) -> Result<[u8; 32], BlobError> {
        let h = sha256(data);
        self.write_atomically(&hex::encode(h), data)?;
        Ok(h)
    }

    fn put_output(&self, root: &[u8; 32], data: &[u8]) -> Result<(), BlobError> {
        self.write_atomically(&format!("output-{}", hex::encode(root)), data)
    }

    fn get_output_unchecked(&self, root: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
        self.read(&format!("output-{}", hex::encode(root)), format!("output {}", hex::encode(root)))
    }

    fn get(&self, h: &[u8; 32]) -> Result<Vec<u8>, BlobError> {
        let data = self.read(&hex::encode(h), uri(h))?;
        let actual = sha256(&data);
        if &actual != h {
            return Err(BlobError::HashMismatch { name: uri(h), actual: hex::encode(actual) });
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let h = store.put(b"hello").unwrap();
        assert_eq!(store.get(&h).unwrap(), b"hello");
        assert_eq!(store.put(b"hello").unwrap(), h, "idempotent");
        std::fs::write(dir.path().join(hex::encode(h)), b"tampered").unwrap();
        assert!(matches!(store.get(&h), Err(BlobError::HashMismatch { .. })));
        assert!(matches!(store.get(&[0; 32]), Err(BlobError::NotFound(_))));
    }

    #[test]
    fn outputs_are_checked_against_their_merkle_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let data = vec![7u8; 10_000];
        let root = capacloud_executor::merkle::commit(&data, capacloud_executor::merkle::DEFAULT_CHUNK).root;
        store.put_output(&root, &data).unwrap();
        assert_eq!(fetch_verified_output(&store, &root).unwrap(), data);
        std::fs::write(dir.path().join(format!("output-{}", hex::encode(root))), vec![8u8; 10_000]).unwrap();
        assert!(matches!(fetch_verified_output(&store, &root), Err(BlobError::HashMismatch { .. })));
        assert!(matches!(fetch_verified_output(&store, &[1; 32]), Err(BlobError::NotFound(_))));
    }

    #[test]
    fn uris_parse_strictly() {
        let h = sha256(b"x");
        assert_eq!(parse_uri(&uri(&h)).unwrap(), h);
        for bad in ["", "sha256:", "sha256:zz", "md5:00", &format!("sha256:{}", "0".repeat(62))] {
            assert!(matches!(parse_uri(bad), Err(BlobError::BadUri(_))), "{bad}");
        }
    }
}
