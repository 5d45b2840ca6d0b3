//! Image reference to verified digest: the trust policy, and resolve/verify over a root of
//! trust.
//!
//! This crate decides *which* root of trust vouches for an image ([`TrustPolicy`], longest
//! scope wins) and parses what users type ([`ImageReference`], [`RepositoryReference`]).
//! It does not implement TUF or OCI checks itself: the `ocituf-tuf` updater and the
//! `ocituf-oci` stores and `RepoSource` do that; this crate wires them per root of trust and
//! compares what the registry serves with what was signed.
//!
//! Modules: [`reference`] (image and repository references), [`policy`] (the trust policy
//! file), [`resolve`] (the [`Resolver`]: image → verified digest), [`offline`] (verifying from the
//! cache and an air-gap bundle, no network), [`store`] (opening a layout or a registry),
//! [`trusted_root`] (a root of trust held open for many lookups), [`error`] (errors and their
//! exit-code kinds).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
// A refusal carries the image, target, role, version and both digests it names; errors are
// off the hot path, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod error;
pub mod offline;
pub mod policy;
pub mod reference;
pub mod resolve;
pub mod store;
pub mod trusted_root;

pub use error::{Error, ErrorKind};
pub use offline::{ExpiryPolicy, IgnoredExpiry, Offline, OfflineVerified};
pub use policy::{RootPin, Scope, TrustEntry, TrustPolicy};
pub use reference::{ImageReference, Location, RepositoryReference};
pub use resolve::{Resolver, VerifiedDigest};
pub use store::AnyStore;
pub use trusted_root::{SignedTarget, TrustedRoot};
pub mod platform;
pub use platform::{
    platform_of_verified, resolve_platform, PlatformError, Selection, VerifiedPlatformDigest,
};
