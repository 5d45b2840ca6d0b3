//! The local cache of trusted metadata.
//!
//! A cache is untrusted input too: whatever a [`TrustedStore`] returns is verified again
//! before it is used, and a corrupt or truncated file is replaced, never trusted.

use std::future::Future;

/// Why the cache could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cached metadata {name:?} is longer than the limit of {max_len} bytes")]
    TooLarge { name: String, max_len: u64 },
    #[error("could not {op} cached metadata {name:?}")]
    Io {
        op: &'static str,
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Where the updater keeps the metadata it has verified, by role name (`root`, `timestamp`,
/// `snapshot`, `targets`, delegated names). Bytes are stored exactly as received.
///
/// Implementations must make `store` atomic (a reader sees the old or the new bytes, never a
/// mix) and must encode role names so that no name can escape the store (`../x`, `a/b`).
pub trait TrustedStore: Send + Sync {
    /// Read the bytes last stored for `role`, `Ok(None)` if there are none.
    fn load(
        &self,
        role: &str,
        max_len: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Atomically replace the bytes stored for `role`.
    fn store(
        &self,
        role: &str,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forget `role` (no error if absent).
    fn remove(&self, role: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Read a root version from the root history, so that the chain from the pinned root to
    /// the newest cached root can be verified again offline. A store without history returns
    /// `Ok(None)` and the updater walks the chain over the network instead.
    fn load_root(
        &self,
        version: u64,
        max_len: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        let _ = (version, max_len);
        async { Ok(None) }
    }

    /// Read the snapshot Merkle path last kept for `role` (docs/oci-mapping.md §11), so that
    /// the role can be proven again offline. Stores without them return `Ok(None)`.
    fn load_merkle_path(
        &self,
        role: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        let _ = role;
        async { Ok(None) }
    }
    /// Replace the snapshot Merkle path kept for `role` (a no-op for stores without them).
    fn store_merkle_path(
        &self,
        role: &str,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (role, bytes);
        async { Ok(()) }
    }
    /// Keep a verified root version in the root history (a no-op for stores without one).
    fn store_root(
        &self,
        version: u64,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (version, bytes);
        async { Ok(()) }
    }
}
