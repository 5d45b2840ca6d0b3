//! Errors of the OCI side.

/// Everything that can go wrong between ocituf and an OCI repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A root-of-trust name outside the alphabet of docs/oci-mapping.md section 1.
    #[error("invalid root-of-trust name {0:?}: expected 1 to 64 characters of [a-z0-9._-], starting with a letter or digit")]
    InvalidRootOfTrustName(String),
    #[error("invalid role name {name:?}: {reason}")]
    InvalidRoleName { name: String, reason: &'static str },
    #[error("invalid repository name {0:?}: expected lowercase path components as in the OCI distribution spec")]
    InvalidRepository(String),
    #[error("invalid tag {0:?}: expected [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}")]
    InvalidTag(String),
    #[error("invalid layout location {0:?}: expected oci:DIR or oci:DIR:REPOSITORY")]
    InvalidLayoutLocation(String),
    /// A manifest (from a store, untrusted) is not what the mapping requires.
    #[error("manifest {what} is malformed: {reason}")]
    MalformedManifest { what: String, reason: String },
    /// Metadata handed to the publisher is not usable (not JSON, no version, wrong `_type`).
    #[error("metadata of role {role:?} is malformed: {reason}")]
    MalformedMetadata { role: String, reason: String },
    /// Content read back does not have the digest it is stored under.
    #[error("{what} has digest {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: crate::store::Digest,
        actual: crate::store::Digest,
    },
    /// Content longer than the limit given for it (never truncated and accepted).
    #[error("{what} is longer than the limit of {max_len} bytes")]
    TooLarge { what: String, max_len: u64 },
    #[error("i/o error: {op} {}", path.display())]
    Io {
        op: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The layout's `index.json` (untrusted) cannot be used.
    #[error("malformed OCI layout index {}: {reason}", path.display())]
    LayoutIndex {
        path: std::path::PathBuf,
        reason: String,
        #[source]
        source: Option<serde_json::Error>,
    },
    /// A blocking task of the layout store did not complete.
    #[error("layout store task failed")]
    Task(#[source] tokio::task::JoinError),
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    InvalidDigest(String),

    /// A registry answered wrongly or could not be reached.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}
