//! TUF inside OCI registries: the mapping of TUF roles to OCI artifacts, artifact stores
//! (a registry, an OCI image-layout directory), referrers with the tag-schema fallback,
//! and a TUF `RepoSource` over them.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod layout;
pub mod mapping;
mod ocijson;
pub mod publish;
pub mod tuf_source;

pub use layout::LayoutStore;
pub use mapping::{Anchor, Hints, RoleClass, RootOfTrustName};
pub use publish::{Publisher, Retention};
pub use tuf_source::OciRepoSource;

pub mod error;
pub mod store;

pub use error::Error;
pub use store::{ArtifactStore, Descriptor, Digest, Manifest, ManifestRef, ReferrersSource};

pub mod registry;
pub use registry::{RegistryClient, RegistryError, RegistryOptions, RegistryRepo};
