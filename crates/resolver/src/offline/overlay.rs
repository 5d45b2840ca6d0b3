//! The stores of offline verification: the trusted cache read back as an untrusted source
//! (no bundle), and an overlay that holds the updater's writes until verification passed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use ocituf_tuf::{
    Fetched, FsStore, MetadataRequest, RepoSource, SourceError, StoreError, TargetRequest,
    TrustedStore,
};

/// The trusted cache served back as an untrusted source (offline without a bundle): the
/// updater verifies its bytes again like anything fetched.
pub(super) struct CacheSource(pub(super) FsStore);

impl RepoSource for CacheSource {
    async fn fetch_metadata(
        &self,
        req: &MetadataRequest<'_>,
    ) -> Result<Option<Fetched>, SourceError> {
        if req.attempt > 0 {
            return Ok(None);
        }
        let loaded = match (req.role, req.version) {
            ("root", Some(v)) => self.0.load_root(v, req.max_len).await,
            (role, _) => self.0.load(role, req.max_len).await,
        };
        let bytes = loaded.map_err(|e| SourceError::Fetch {
            what: format!("cached metadata of role {:?}", req.role),
            source: Box::new(e),
        })?;
        Ok(bytes.map(|bytes| Fetched {
            bytes,
            claimed_version: None,
        }))
    }

    /// The node from the path the cache kept for the role (docs/oci-mapping.md §11); the
    /// walk checks its digest like any fetched node.
    async fn fetch_merkle_node(
        &self,
        req: &ocituf_tuf::merkle::NodeRequest,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        let path = self
            .0
            .load_merkle_path(&req.role)
            .await
            .map_err(|e| SourceError::Fetch {
                what: format!("the cached snapshot Merkle path of role {:?}", req.role),
                source: Box::new(e),
            })?;
        Ok(path.and_then(|bytes| {
            ocituf_tuf::merkle::path_nodes(&bytes)
                .into_iter()
                .find(|n| {
                    ocituf_tuf::crypto::hash::digest("sha256", n).as_deref()
                        == Some(req.sha256.as_str())
                })
                .map(<[u8]>::to_vec)
        }))
    }

    async fn fetch_target(&self, _req: &TargetRequest<'_>) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(None)
    }
}

/// Where a buffered write goes: a root version of the history, or a role file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Root(u64),
    Role(String),
    MerklePath(String),
}

/// A buffered change.
#[derive(Debug, Clone)]
enum Pending {
    Written(Vec<u8>),
    Removed,
}

/// A [`TrustedStore`] that reads the cache and keeps every write in memory until
/// [`Overlay::commit`]: a verification that fails leaves the cache untouched.
#[derive(Clone)]
pub(super) struct Overlay {
    base: FsStore,
    writes: Arc<Mutex<BTreeMap<Key, Pending>>>,
}

impl Overlay {
    pub(super) fn new(base: FsStore) -> Self {
        Self {
            base,
            writes: Arc::default(),
        }
    }

    fn pending(&self, key: &Key) -> Option<Pending> {
        self.writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn put(&self, key: Key, value: Pending) {
        self.writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, value);
    }

    /// Write the buffered changes into the cache (root history first).
    pub(super) async fn commit(&self) -> Result<(), StoreError> {
        let writes =
            std::mem::take(&mut *self.writes.lock().unwrap_or_else(PoisonError::into_inner));
        for (key, value) in writes {
            match (key, value) {
                (Key::Root(v), Pending::Written(bytes)) => self.base.store_root(v, &bytes).await?,
                (Key::Root(_) | Key::MerklePath(_), Pending::Removed) => {}
                (Key::Role(role), Pending::Written(bytes)) => {
                    self.base.store(&role, &bytes).await?;
                }
                (Key::Role(role), Pending::Removed) => self.base.remove(&role).await?,
                (Key::MerklePath(role), Pending::Written(bytes)) => {
                    self.base.store_merkle_path(&role, &bytes).await?;
                }
            }
        }
        Ok(())
    }
}

fn bounded(name: &str, pending: Pending, max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
    match pending {
        Pending::Written(b) if b.len() as u64 > max_len => Err(StoreError::TooLarge {
            name: name.to_owned(),
            max_len,
        }),
        Pending::Written(b) => Ok(Some(b)),
        Pending::Removed => Ok(None),
    }
}

impl TrustedStore for Overlay {
    async fn load(&self, role: &str, max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        match self.pending(&Key::Role(role.to_owned())) {
            Some(v) => bounded(role, v, max_len),
            None => self.base.load(role, max_len).await,
        }
    }

    async fn store(&self, role: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put(Key::Role(role.to_owned()), Pending::Written(bytes.to_vec()));
        Ok(())
    }

    async fn remove(&self, role: &str) -> Result<(), StoreError> {
        self.put(Key::Role(role.to_owned()), Pending::Removed);
        Ok(())
    }

    async fn load_root(&self, version: u64, max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        match self.pending(&Key::Root(version)) {
            Some(v) => bounded(&format!("{version}.root"), v, max_len),
            None => self.base.load_root(version, max_len).await,
        }
    }

    async fn store_root(&self, version: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.put(Key::Root(version), Pending::Written(bytes.to_vec()));
        Ok(())
    }

    async fn load_merkle_path(&self, role: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.pending(&Key::MerklePath(role.to_owned())) {
            Some(v) => bounded(role, v, ocituf_tuf::merkle::MAX_PATH_LEN),
            None => self.base.load_merkle_path(role).await,
        }
    }

    async fn store_merkle_path(&self, role: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put(
            Key::MerklePath(role.to_owned()),
            Pending::Written(bytes.to_vec()),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> (tempfile::TempDir, FsStore) {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsStore::open(dir.path().join("c"), ocituf_tuf::RootHistory::Keep).unwrap();
        (dir, fs)
    }

    #[tokio::test]
    async fn refused_verification_leaves_the_cache_unchanged() {
        let (_dir, fs) = base();
        fs.store("timestamp", b"old").await.unwrap();
        let overlay = Overlay::new(fs.clone());
        overlay.store("timestamp", b"new").await.unwrap();
        overlay.store_root(2, b"root2").await.unwrap();
        overlay.remove("snapshot").await.unwrap();
        // The updater sees its own writes...
        assert_eq!(
            overlay.load("timestamp", 16).await.unwrap().unwrap(),
            b"new"
        );
        assert_eq!(overlay.load_root(2, 16).await.unwrap().unwrap(), b"root2");
        assert_eq!(overlay.load("snapshot", 16).await.unwrap(), None);
        // ...the cache does not, until commit (never called for a refusal).
        assert_eq!(fs.load("timestamp", 16).await.unwrap().unwrap(), b"old");
        assert_eq!(fs.load_root(2, 16).await.unwrap(), None);
        drop(overlay);
        assert_eq!(fs.load("timestamp", 16).await.unwrap().unwrap(), b"old");
    }

    #[tokio::test]
    async fn commit_writes_roots_roles_and_removals() {
        let (_dir, fs) = base();
        fs.store("snapshot", b"stale").await.unwrap();
        let overlay = Overlay::new(fs.clone());
        overlay.store("timestamp", b"new").await.unwrap();
        overlay.store_root(2, b"root2").await.unwrap();
        overlay.remove("snapshot").await.unwrap();
        overlay.commit().await.unwrap();
        assert_eq!(fs.load("timestamp", 16).await.unwrap().unwrap(), b"new");
        assert_eq!(fs.load_root(2, 16).await.unwrap().unwrap(), b"root2");
        assert_eq!(fs.load("snapshot", 16).await.unwrap(), None);
    }

    #[tokio::test]
    async fn endless_data_overlay_bounds_pending_writes() {
        let (_dir, fs) = base();
        let overlay = Overlay::new(fs);
        overlay.store("targets", &[b'x'; 64]).await.unwrap();
        assert!(matches!(
            overlay.load("targets", 63).await,
            Err(StoreError::TooLarge { max_len: 63, .. })
        ));
    }

    #[tokio::test]
    async fn cache_source_serves_cached_bytes_once_per_request() {
        let (_dir, fs) = base();
        fs.store("timestamp", b"ts").await.unwrap();
        fs.store_root(2, b"r2").await.unwrap();
        let source = CacheSource(fs);
        let req = |role, version, attempt| MetadataRequest {
            role,
            version,
            hashes: None,
            max_len: 16,
            attempt,
        };
        let got = source
            .fetch_metadata(&req("timestamp", None, 0))
            .await
            .unwrap();
        assert_eq!(got.unwrap().bytes, b"ts");
        assert!(source
            .fetch_metadata(&req("timestamp", None, 1))
            .await
            .unwrap()
            .is_none());
        let root = source
            .fetch_metadata(&req("root", Some(2), 0))
            .await
            .unwrap();
        assert_eq!(root.unwrap().bytes, b"r2");
        assert!(source
            .fetch_metadata(&req("root", Some(3), 0))
            .await
            .unwrap()
            .is_none());
    }
}
