//! Image reference to verified digest: the trust policy, and resolve/verify over a root of
//! trust.
//!
//! This crate decides *which* root of trust vouches for an image ([`TrustPolicy`], longest
//! scope wins) and parses what users type ([`ImageReference`], [`RepositoryReference`]).
//! It does not speak TUF or OCI itself: the `ocituf-tuf` updater and the `ocituf-oci` stores
//! do that.
//!
//! Modules: [`reference`] (image and repository references), [`policy`] (the trust policy
//! file), [`error`] (errors and their exit-code kinds).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod error;
pub mod policy;
pub mod reference;
pub mod store;

pub use error::{Error, ErrorKind};
pub use policy::{RootPin, Scope, TrustEntry, TrustPolicy};
pub use reference::{ImageReference, Location, RepositoryReference};
pub use store::AnyStore;
