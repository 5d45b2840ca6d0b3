#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

//! An [`ArtifactStore`](crate::ArtifactStore) over the OCI distribution API.
//!
//! - [`RegistryClient`]: one per registry host; connection pool, TLS (custom CA), plain HTTP
//!   only when asked or for loopback, credentials from the Docker config, bearer-token cache
//!   per scope, retries with backoff, a request counter.
//! - [`RegistryRepo`]: one repository of that host; implements `ArtifactStore`; every body is
//!   read with a size limit and every fetched manifest and blob is checked against its digest.
//! - Referrers: the native API when the registry has it, else the OCI tag-schema fallback
//!   (`sha256-<hex>` index), written without losing concurrent entries (see `fallback`).
//!
//! ```no_run
//! # async fn f() -> Result<(), ocituf_oci::Error> {
//! use ocituf_oci::registry::{Credentials, Transport};
//! use ocituf_oci::{ArtifactStore, ManifestRef, RegistryClient, RegistryOptions, RegistryRepo};
//!
//! // One repository, a client of its own; credentials from ~/.docker/config.json.
//! let repo = RegistryRepo::open("registry.example.com/acme/tuf", RegistryOptions::default())?;
//! let head = repo.head_manifest(ManifestRef::Tag("latest")).await?;
//!
//! // Several repositories of one host sharing connections, tokens and the request count.
//! let client = RegistryClient::new(
//!     "registry.example.com:5000",
//!     RegistryOptions {
//!         transport: Transport::Https,
//!         ca_file: Some("/etc/ocituf/ca.pem".into()),
//!         credentials: Credentials::DockerConfig,
//!         ..RegistryOptions::default()
//!     },
//! )?;
//! let tuf = client.repo("acme/tuf")?;
//! let app = client.repo("acme/app")?;
//! println!("{} requests so far", client.request_count());
//! # Ok(()) }
//! ```
//!
//! Why reqwest and not oci-client: every operation here needs something oci-client 0.18 does
//! not expose: response headers (`OCI-Subject` on PUT, `Link`, `OCI-Filters-Applied`,
//! `Docker-Content-Digest`), a byte limit enforced while streaming manifests and pages,
//! "not found" told apart from other failures, `Retry-After`-aware retries, a count of
//! requests, and credentials from Docker credential helpers.
//!
//! It does not: push multi-part or resumable blob uploads (TUF metadata is small), mount
//! blobs across repositories. Proxies: `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` from the
//! environment, never for a loopback registry. Credentials: basic
//! (username and password) and OAuth2 identity tokens (`identitytoken` in the Docker config,
//! or a credential helper's `<token>` user), exchanged at the token realm.

mod auth;
mod client;
mod error;
mod fallback;
mod http;
mod manifest;
mod referrers;
mod repo;
mod stream;

pub use auth::{Credential, Credentials, Secret, IDENTITY_TOKEN_USER};
pub use client::{RegistryClient, RegistryOptions, Transport};
pub use error::RegistryError;
pub use fallback::{index_tag, referrer_tag, SUBJECT_ANNOTATION};
pub use referrers::ReferrersCapability;

/// The descriptors of a referrers list (an OCI image index, from the referrers API or a
/// fallback tag): the entries ocituf can use, in order; unusable entries (non-sha256
/// digests, missing fields, non-string annotations) are skipped, since the list is only a
/// hint of what to fetch. `url` names the source in errors.
///
/// # Errors
/// [`RegistryError::InvalidJson`] for bytes that are not JSON,
/// [`RegistryError::InvalidResponse`] when `manifests` is not an array.
pub fn parse_referrers(body: &[u8], url: &str) -> Result<Vec<crate::Descriptor>, RegistryError> {
    Ok(referrers::parse_index(body, url)?
        .iter()
        .filter_map(referrers::descriptor_from_json)
        .collect())
}
pub use repo::{FallbackReads, RegistryRepo};
pub use stream::{BlobAnswer, BlobStream};

/// The manifest media types ocituf reads. Distribution 2.8 answers 404 for an OCI manifest
/// unless its media type is in `Accept`, on GET and on HEAD alike.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// OCI image index media type.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// Split `registry.example.com/acme/tuf` into host and repository name, as the Docker CLI
/// does: the first component is a host when it has a `.` or `:` or is `localhost`; otherwise
/// the host is `docker.io` (and a single-component name gets `library/`).
///
/// # Errors
/// When the reference carries a tag or digest, or the name is not a valid repository name.
pub fn parse_repository(reference: &str) -> Result<(String, String), RegistryError> {
    let bad = |reason| RegistryError::InvalidReference {
        reference: reference.to_owned(),
        reason,
    };
    if reference.contains('@') {
        return Err(bad("a repository reference takes no digest"));
    }
    let (first, rest) = match reference.split_once('/') {
        Some((f, r)) if f.contains('.') || f.contains(':') || f == "localhost" => {
            (f.to_owned(), r.to_owned())
        }
        Some(_) => ("docker.io".to_owned(), reference.to_owned()),
        None => ("docker.io".to_owned(), format!("library/{reference}")),
    };
    if rest.contains(':') {
        return Err(bad("a repository reference takes no tag"));
    }
    if !valid_repository_name(&rest) {
        return Err(bad(
            "repository name must be lowercase components [a-z0-9] joined by . _ __ - and /",
        ));
    }
    Ok((first, rest))
}

pub(crate) use crate::names::{valid_repository_name, valid_tag};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_references() {
        assert_eq!(
            parse_repository("registry.example.com/acme/tuf").unwrap(),
            ("registry.example.com".into(), "acme/tuf".into())
        );
        assert_eq!(
            parse_repository("127.0.0.1:5000/tuf").unwrap(),
            ("127.0.0.1:5000".into(), "tuf".into())
        );
        assert_eq!(
            parse_repository("localhost/a").unwrap(),
            ("localhost".into(), "a".into())
        );
        assert_eq!(
            parse_repository("acme/tuf").unwrap(),
            ("docker.io".into(), "acme/tuf".into())
        );
        assert_eq!(
            parse_repository("alpine").unwrap(),
            ("docker.io".into(), "library/alpine".into())
        );
        for bad in [
            "registry.example.com/acme/tuf:1",
            "registry.example.com/acme/tuf@sha256:00",
            "registry.example.com/Acme",
            "registry.example.com/a//b",
            "registry.example.com/a/../b",
            "registry.example.com/",
        ] {
            assert!(parse_repository(bad).is_err(), "{bad}");
        }
    }
}
