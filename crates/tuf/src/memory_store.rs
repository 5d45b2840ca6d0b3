//! [`MemoryStore`]: a [`TrustedStore`] in memory, for tests and short-lived clients.
//!
//! Clones share the same contents, so a test can keep a handle to inspect or corrupt what an
//! updater stored.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::store::{StoreError, TrustedStore};

#[derive(Debug, Default)]
struct Inner {
    roles: HashMap<String, Vec<u8>>,
    roots: BTreeMap<u64, Vec<u8>>,
}

/// A [`TrustedStore`] that keeps everything in memory, root history included.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every operation leaves `Inner` consistent, so a panic elsewhere cannot have left it
        // half-written: a poisoned lock is safe to use.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bytes stored for `role`, without a length limit (for tests and inspection).
    pub fn get(&self, role: &str) -> Option<Vec<u8>> {
        self.lock().roles.get(role).cloned()
    }

    /// Replace the bytes of `role` synchronously (for tests: plant a corrupt cache).
    pub fn insert(&self, role: &str, bytes: &[u8]) {
        self.lock().roles.insert(role.to_owned(), bytes.to_vec());
    }

    /// The names of the roles stored, sorted.
    pub fn roles(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().roles.keys().cloned().collect();
        names.sort();
        names
    }

    /// The root versions in the root history, ascending.
    pub fn root_versions(&self) -> Vec<u64> {
        self.lock().roots.keys().copied().collect()
    }
}

fn bounded(
    name: &str,
    bytes: Option<&Vec<u8>>,
    max_len: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    match bytes {
        Some(b) if b.len() as u64 > max_len => Err(StoreError::TooLarge {
            name: name.to_owned(),
            max_len,
        }),
        other => Ok(other.cloned()),
    }
}

impl TrustedStore for MemoryStore {
    async fn load(&self, role: &str, max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        bounded(role, self.lock().roles.get(role), max_len)
    }

    async fn store(&self, role: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.insert(role, bytes);
        Ok(())
    }

    async fn remove(&self, role: &str) -> Result<(), StoreError> {
        self.lock().roles.remove(role);
        Ok(())
    }

    async fn load_root(&self, version: u64, max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        bounded(
            &format!("{version}.root"),
            self.lock().roots.get(&version),
            max_len,
        )
    }

    async fn store_root(&self, version: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.lock().roots.insert(version, bytes.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn round_trip_and_clones_share_contents() {
        let store = MemoryStore::new();
        let handle = store.clone();
        block_on(async {
            store.store("../odd/name", b"x").await.unwrap();
            store.store_root(3, b"r3").await.unwrap();
            assert_eq!(handle.get("../odd/name").unwrap(), b"x");
            assert_eq!(store.load_root(3, 2).await.unwrap().unwrap(), b"r3");
            assert_eq!(store.load_root(4, 2).await.unwrap(), None);
            store.remove("../odd/name").await.unwrap();
            store.remove("absent").await.unwrap();
        });
        assert!(handle.roles().is_empty());
        assert_eq!(handle.root_versions(), [3]);
    }

    #[test]
    fn endless_data_cached_bytes_larger_than_limit() {
        let store = MemoryStore::new();
        store.insert("timestamp", &[0; 10]);
        let err = block_on(store.load("timestamp", 9)).unwrap_err();
        assert!(
            matches!(&err, StoreError::TooLarge { name, max_len: 9 } if name == "timestamp"),
            "{err:?}"
        );
        assert!(matches!(block_on(store.load_root(1, 0)), Ok(None)));
    }
}
