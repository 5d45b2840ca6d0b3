//! The untrusted side of the updater: where metadata and target bytes come from.
//!
//! This trait is the contract between the updater and the transports (the standard HTTP
//! layout in this crate, OCI registries and layouts in `ocituf-oci`). Everything a source
//! returns is untrusted: the updater checks it. A source never decides what is valid.

use std::collections::BTreeMap;
use std::future::Future;

/// What the updater asks a source for: one metadata file of one role.
#[derive(Debug, Clone, Copy)]
pub struct MetadataRequest<'a> {
    /// Role name as written in the metadata: `root`, `timestamp`, `snapshot`, `targets`, or a
    /// delegated role name (any string; sources must encode it, never use it raw in a path).
    pub role: &'a str,
    /// `Some(n)` asks for version `n` (`n.ROLE.json` in the standard layout); `None` asks for
    /// the unversioned file (`timestamp.json`, or any role without consistent snapshots).
    pub version: Option<u64>,
    /// Hashes the trusted parent lists for this file (algorithm name to lowercase hex), if any.
    /// Content-addressed sources (OCI) fetch by these; the updater verifies them regardless.
    pub hashes: Option<&'a BTreeMap<String, String>>,
    /// Hard limit on the number of bytes to read. A longer answer is an error, never truncated
    /// and accepted (endless-data attack).
    pub max_len: u64,
    /// Which candidate to return, starting at 0. A source that can hold several candidates for
    /// one request (an OCI registry where anyone with push access may add junk artifacts that
    /// claim a high version) returns them best first, one per attempt; the updater asks for
    /// the next one only while the previous failed verification, and only up to a bound.
    /// Sources with one answer per request return `Ok(None)` for every attempt after 0.
    pub attempt: u32,
}

/// One untrusted answer to a [`MetadataRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The bytes exactly as received.
    pub bytes: Vec<u8>,
    /// The version the source claims these bytes have (an OCI annotation), if it claims one.
    /// The updater rejects a candidate whose signed version differs: a claim is a hint only.
    pub claimed_version: Option<u64>,
}

/// What the updater asks a source for: one target file.
#[derive(Debug, Clone, Copy)]
pub struct TargetRequest<'a> {
    /// The target path as written in targets metadata.
    pub path: &'a str,
    /// The trusted hashes of the target (algorithm name to lowercase hex).
    pub hashes: &'a BTreeMap<String, String>,
    /// The trusted length; also the read limit.
    pub length: u64,
    /// Whether the repository uses consistent snapshots (`HASH.NAME` file names).
    pub consistent_snapshot: bool,
}

/// Why a source could not answer. "Not found" is not an error: it is `Ok(None)`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The answer was longer than the limit the updater set.
    #[error("{what} is longer than the limit of {max_len} bytes")]
    TooLarge { what: String, max_len: u64 },
    /// The transport failed (network, registry error, I/O).
    #[error("could not fetch {what}")]
    Fetch {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Untrusted bytes of a TUF repository.
///
/// Implementations must bound every read by the limit they are given and must treat 404 and
/// 403 (or their equivalents) as `Ok(None)`.
pub trait RepoSource: Send + Sync {
    /// Called once at the start of every refresh, before any fetch. Sources that memoize
    /// listings (OCI referrers) drop them here so that one refresh sees one consistent view
    /// and the next refresh sees new versions.
    fn start_refresh(&self) {}

    /// Fetch one candidate for a metadata file; `Ok(None)` when there is none (left).
    fn fetch_metadata(
        &self,
        req: &MetadataRequest<'_>,
    ) -> impl Future<Output = Result<Option<Fetched>, SourceError>> + Send;

    /// Fetch one node of a snapshot Merkle tree (docs/oci-mapping.md §11) by the sha256 its
    /// parent names; `Ok(None)` when it is not there. Content-addressed sources (OCI) fetch
    /// the blob with that digest; the updater checks the digest regardless. Sources of
    /// repositories that never use the option keep this default.
    fn fetch_merkle_node(
        &self,
        req: &crate::merkle::NodeRequest,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, SourceError>> + Send {
        let _ = req;
        async { Ok(None) }
    }

    /// Fetch a target file; `Ok(None)` when it is not there.
    fn fetch_target(
        &self,
        req: &TargetRequest<'_>,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, SourceError>> + Send;
}
