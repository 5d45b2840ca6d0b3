//! Errors of the registry store. Wrapped by [`crate::Error::Registry`].
//!
//! URLs in these errors never carry credentials: ocituf never puts credentials in a URL, and
//! secrets are held in [`super::auth::Secret`], whose `Debug` is redacted.

use std::path::PathBuf;

use crate::store::Digest;

/// What went wrong talking to an OCI registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("invalid registry reference {reference:?}: {reason}")]
    InvalidReference {
        reference: String,
        reason: &'static str,
    },

    #[error("invalid tag {0:?}: expected [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    InvalidTag(String),

    #[error("cannot build the HTTP client for {host}")]
    Client {
        host: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("cannot read the CA certificate file {path:?}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the CA certificate file {path:?} holds no usable PEM certificate")]
    CaPem {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },

    #[error("the CA certificate file {path:?} holds no PEM certificate")]
    CaFileEmpty { path: PathBuf },

    #[error("cannot read the Docker config {path:?}")]
    DockerConfigIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the Docker config {path:?} is not valid: {reason}")]
    DockerConfig { path: PathBuf, reason: String },

    #[error("credential helper docker-credential-{helper} failed for {host}: {reason}")]
    CredentialHelper {
        helper: String,
        host: String,
        reason: String,
    },

    #[error("credential helper docker-credential-{helper} could not be run")]
    CredentialHelperIo {
        helper: String,
        #[source]
        source: std::io::Error,
    },

    #[error("refusing to send credentials for {host} over plain HTTP to {url}")]
    InsecureCredentials { host: String, url: String },

    #[error("{method} {url} failed")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{method} {url}: the registry answered HTTP {status}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        method: String,
        url: String,
        status: u16,
        /// The first OCI error code of the body (`MANIFEST_UNKNOWN`, `DENIED`, ...), if any.
        code: Option<String>,
    },

    #[error("{method} {url}: not authorized for scope {scope:?} (HTTP {status})")]
    Unauthorized {
        method: String,
        url: String,
        scope: String,
        status: u16,
    },

    #[error("token request to {url} failed: {reason}")]
    Token { url: String, reason: String },

    #[error("body of {url} exceeds the limit of {limit} bytes")]
    BodyTooLarge { url: String, limit: u64 },

    #[error("content of {url} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        url: String,
        expected: Digest,
        actual: Digest,
    },

    #[error("{url}: invalid JSON in the registry's answer")]
    InvalidJson {
        url: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{url}: invalid registry answer: {reason}")]
    InvalidResponse { url: String, reason: String },

    #[error("the manifest to push is not valid JSON")]
    InvalidManifest(#[source] serde_json::Error),

    #[error("referrers of {subject} exceed the limit of {max} {what}")]
    ReferrersLimit {
        subject: Digest,
        what: &'static str,
        max: u64,
    },

    #[error(
        "fallback referrers index of {subject} did not converge after {rounds} rounds of \
         concurrent updates"
    )]
    FallbackContention { subject: Digest, rounds: u32 },
}
