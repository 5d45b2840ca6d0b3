//! Errors of the OCI side.

/// Everything that can go wrong between ocituf and an OCI repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    InvalidDigest(String),

    /// A registry answered wrongly or could not be reached.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}
