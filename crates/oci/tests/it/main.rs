//! Integration tests of ocituf-oci: one binary (STYLE.md).
//!
//! `suite` is the client and publisher test suite, generic over any `ArtifactStore`, so
//! that the same tests run against the OCI layout (`layout`) and against real registries.

mod fixture;
mod layout;
mod layout_skopeo;
mod on_registries;
mod oras_discover;
mod round_trip;
pub mod suite;
