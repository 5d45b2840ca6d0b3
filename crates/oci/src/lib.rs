//! TUF inside OCI registries: the mapping of TUF roles to OCI artifacts, artifact stores
//! (a registry, an OCI image-layout directory), referrers with the tag-schema fallback,
//! and a TUF `RepoSource` over them.

pub mod error;
pub mod store;

pub use error::Error;
pub use store::{ArtifactStore, Descriptor, Digest, Manifest, ManifestRef, ReferrersSource};

pub mod registry;
pub use registry::{RegistryClient, RegistryError, RegistryOptions, RegistryRepo};
