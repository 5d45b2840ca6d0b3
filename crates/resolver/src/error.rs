//! Errors of the resolver, each with the [`ErrorKind`] that the command line maps to an exit
//! code.

use std::path::PathBuf;

use ocituf_oci::Digest;

/// What kind of failure an error is: the command line's exit code follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Verification refused the image or the metadata (exit 1).
    Refused,
    /// A mistake in the input, the policy or the configuration (exit 2).
    Config,
    /// The registry or the network failed; trying again may help (exit 3).
    Network,
    /// Offline verification met expired metadata: bring a fresh bundle (exit 4).
    Expired,
    /// A wait for something to become visible (`sign --wait`) ran out of time (exit 5).
    Timeout,
}

/// Everything that can go wrong between an image reference and a verified digest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },

    #[error("invalid scope {scope:?}: {reason}")]
    InvalidScope { scope: String, reason: String },

    #[error("could not read the trust policy {}", path.display())]
    PolicyRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not write the trust policy {}", path.display())]
    PolicyWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the trust policy {} is not valid", path.display())]
    PolicySyntax {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },

    #[error("the trust policy {}, [[trust]] entry {entry}, key {key:?}: {reason}", path.display())]
    PolicyInvalid {
        path: PathBuf,
        entry: usize,
        key: &'static str,
        reason: String,
    },

    #[error(
        "the trust policy {} lists scope {scope:?} twice (entries {first} and {second}): remove one",
        path.display()
    )]
    DuplicateScope {
        path: PathBuf,
        scope: String,
        first: usize,
        second: usize,
    },

    #[error("scope {scope:?} is already in the trust policy (remove it first with `ocituf trust remove`)")]
    ScopeExists { scope: String },

    #[error("scope {scope:?} is not in the trust policy (see `ocituf trust list`)")]
    NoSuchScope { scope: String },

    #[error("no root of trust covers {image}: add one with `ocituf trust add SCOPE …`")]
    UnknownScope { image: String },

    #[error("could not read the pinned root {}", path.display())]
    PinnedRootRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the pinned root {} has sha256 {actual}, but the trust policy pins {expected}: \
         the file changed; pin it again with `ocituf trust add`",
        path.display()
    )]
    PinnedRootDigest {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error(
        "{repository} has no root version 1 of root of trust {root_of_trust:?} with the pinned sha256 {sha256}"
    )]
    PinnedRootNotInRepository {
        repository: String,
        root_of_trust: String,
        sha256: String,
    },

    #[error("could not open the metadata cache {}", path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: ocituf_tuf::StoreError,
    },

    #[error("the TUF metadata of root of trust {root_of_trust:?} in {repository} was refused")]
    Metadata {
        root_of_trust: String,
        repository: String,
        #[source]
        source: Box<ocituf_tuf::Error>,
    },

    #[error("{image} is not signed: no role of root of trust {root_of_trust:?} trusted for {target} lists it")]
    NotSigned {
        image: String,
        target: String,
        root_of_trust: String,
    },

    #[error(
        "{target} in targets role {role:?} has no sha256 hash, so its digest cannot be checked"
    )]
    NoSha256 { target: String, role: String },

    #[error(
        "{image} is not signed: the registry says {served}, targets role {role:?} v{role_version} says {signed} (for {target})"
    )]
    DigestMismatch {
        image: String,
        target: String,
        role: String,
        role_version: u64,
        served: Digest,
        signed: Digest,
    },

    #[error(
        "{image} is not signed: the registry serves a manifest longer than the {length} bytes targets role {role:?} v{role_version} signed ({signed})"
    )]
    ServedTooLarge {
        image: String,
        role: String,
        role_version: u64,
        length: u64,
        signed: Digest,
    },

    #[error("the registry has no manifest for {image} (deleted, or the tag was never pushed)")]
    ImageMissing { image: String },

    #[error("could not fetch the manifest of {image}")]
    ImageFetch {
        image: String,
        #[source]
        source: Box<ocituf_oci::Error>,
    },

    #[error(
        "gave up on {image} after {after:?}: the registry is too slow (every request answered, \
         but the whole verification took too long); try again, or check the registry"
    )]
    Deadline {
        image: String,
        after: std::time::Duration,
    },

    #[error(
        "offline: role {role:?} of root of trust {root_of_trust:?} expired at {expires}: \
         bring a bundle exported since (`ocituf bundle export`); only if you accept a frozen \
         or revoked state, pass --danger-allow-expired"
    )]
    OfflineExpired {
        root_of_trust: String,
        role: String,
        expires: time::OffsetDateTime,
    },

    #[error(
        "offline: {place} holds no metadata of root of trust {root_of_trust:?}: verify online \
         once to fill the cache, or pass --bundle DIR from `ocituf bundle export` (a bundle keeps \
         the metadata repository's path, {repository})"
    )]
    OfflineNoMetadata {
        root_of_trust: String,
        place: String,
        repository: String,
    },

    #[error(
        "the bundle {} holds another root of trust named {root_of_trust:?}: its root version 1 has sha256 {found}, not the pinned sha256 {pinned}",
        bundle.display()
    )]
    BundleRootMismatch {
        bundle: PathBuf,
        root_of_trust: String,
        pinned: String,
        found: String,
    },

    #[error(
        "{where_} cannot be used for root of trust {root_of_trust:?}: a metadata file is missing, corrupt or tampered"
    )]
    OfflineSource {
        where_: String,
        root_of_trust: String,
        #[source]
        source: Box<ocituf_tuf::Error>,
    },

    #[error("{} is not an air-gap bundle (no oci-layout file): pass the directory `ocituf bundle export --out` wrote", path.display())]
    BundleMissing { path: PathBuf },

    #[error("could not open the OCI repository {repository}")]
    OpenStore {
        repository: String,
        #[source]
        source: ocituf_oci::Error,
    },
}

impl Error {
    /// The kind of failure, for exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidReference { .. }
            | Error::InvalidScope { .. }
            | Error::PolicyRead { .. }
            | Error::PolicyWrite { .. }
            | Error::PolicySyntax { .. }
            | Error::PolicyInvalid { .. }
            | Error::DuplicateScope { .. }
            | Error::ScopeExists { .. }
            | Error::NoSuchScope { .. }
            | Error::UnknownScope { .. }
            | Error::OpenStore { .. }
            | Error::PinnedRootRead { .. }
            | Error::PinnedRootDigest { .. }
            | Error::Cache { .. }
            | Error::OfflineNoMetadata { .. }
            | Error::BundleMissing { .. } => ErrorKind::Config,
            Error::OfflineExpired { .. } => ErrorKind::Expired,
            Error::BundleRootMismatch { .. }
            | Error::OfflineSource { .. }
            | Error::PinnedRootNotInRepository { .. }
            | Error::NotSigned { .. }
            | Error::NoSha256 { .. }
            | Error::DigestMismatch { .. }
            | Error::ServedTooLarge { .. }
            | Error::ImageMissing { .. } => ErrorKind::Refused,
            Error::Deadline { .. } => ErrorKind::Network,
            Error::ImageFetch { source, .. } => oci_kind(source),
            Error::Metadata { source, .. } => tuf_kind(source),
        }
    }
}

/// Registry and I/O failures may pass on retry; anything else the registry sent was refused.
/// Bytes that do not hash to the digest they were asked for or announced with (a swapped
/// blob, a lying `Docker-Content-Digest`) are a refusal, not a network failure: trying again
/// against the same registry does not help.
fn oci_kind(e: &ocituf_oci::Error) -> ErrorKind {
    use ocituf_oci::registry::RegistryError;
    match e {
        ocituf_oci::Error::Registry(RegistryError::DigestMismatch { .. }) => ErrorKind::Refused,
        // A damaged index.json of a local OCI layout: the user's file, not the network.
        ocituf_oci::Error::LayoutIndex { .. } => ErrorKind::Config,
        ocituf_oci::Error::Registry(_)
        | ocituf_oci::Error::Io { .. }
        | ocituf_oci::Error::Task(_) => ErrorKind::Network,
        _ => ErrorKind::Refused,
    }
}

/// Failures to fetch are network failures; the cache is configuration; every other TUF
/// error is a verification that failed.
fn tuf_kind(e: &ocituf_tuf::Error) -> ErrorKind {
    match e {
        ocituf_tuf::Error::Source(ocituf_tuf::SourceError::Fetch { source, .. }) => source
            .downcast_ref::<ocituf_oci::Error>()
            .map_or(ErrorKind::Network, oci_kind),
        ocituf_tuf::Error::Store(_) => ErrorKind::Config,
        _ => ErrorKind::Refused,
    }
}
