//! TUF inside OCI registries: the mapping of TUF roles to OCI artifacts, artifact stores
//! (a registry, an OCI image-layout directory), referrers with the tag-schema fallback,
//! and a TUF `RepoSource` over them. The normative spec is `docs/oci-mapping.md`.
//!
//! - [`mapping`]: media types, annotation keys, anchors (deterministic bytes), role-version
//!   manifests, hints parsed from untrusted descriptors. No I/O.
//! - [`store`]: the [`ArtifactStore`] boundary (blobs, manifests, referrers of one repository).
//! - [`image`]: images as TUF targets (tag and digest names, `custom.oci`, index entries).
//! - [`example_image`]: a tiny valid image to push (the quick start and tests).
//! - [`names`]: the distribution spec's repository-name and tag grammar, shared by every store.
//! - [`layout`]: [`LayoutStore`], an OCI image-layout directory (`oci:DIR[:REPOSITORY]`).
//! - `registry`: the registry store (native referrers API or the tag-schema fallback).
//! - [`tuf_source`]: [`OciRepoSource`], the `RepoSource` the TUF updater runs on.
//! - [`publish`]: [`Publisher`], push a role version, find the newest, prune, keep from GC.
//!
//! What this crate does not do: verify signatures or decide what is valid (the `tuf` crate
//! does, on the bytes returned here), or resolve image references (the `resolver` crate).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod example_image;
pub mod image;
pub mod layout;
pub mod mapping;
pub mod merkle;
pub mod names;
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
