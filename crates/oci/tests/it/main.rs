//! Integration tests of ocituf-oci: one binary (STYLE.md).
//!
//! `suite` holds the client test suite, generic over any `ArtifactStore`, so that the same
//! tests run against the OCI layout here and against real registries elsewhere.

mod layout_skopeo;
