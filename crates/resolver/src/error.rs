//! Errors of the resolver, each with the [`ErrorKind`] that the command line maps to an exit
//! code.

use std::path::PathBuf;

/// What kind of failure an error is: the command line's exit code follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Verification refused the image or the metadata (exit 1).
    Refused,
    /// A mistake in the input, the policy or the configuration (exit 2).
    Config,
    /// The registry or the network failed; trying again may help (exit 3).
    Network,
}

/// Everything that can go wrong between an image reference and a verified digest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },

    #[error("invalid scope {scope:?}: {reason}")]
    InvalidScope { scope: String, reason: String },

    #[error("could not read the trust policy {}", path.display())]
    PolicyRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not write the trust policy {}", path.display())]
    PolicyWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the trust policy {} is not valid", path.display())]
    PolicySyntax {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },

    #[error("the trust policy {}, [[trust]] entry {entry}, key {key:?}: {reason}", path.display())]
    PolicyInvalid {
        path: PathBuf,
        entry: usize,
        key: &'static str,
        reason: String,
    },

    #[error(
        "the trust policy {} lists scope {scope:?} twice (entries {first} and {second}): remove one",
        path.display()
    )]
    DuplicateScope {
        path: PathBuf,
        scope: String,
        first: usize,
        second: usize,
    },

    #[error("scope {scope:?} is already in the trust policy (remove it first with `ocituf trust remove`)")]
    ScopeExists { scope: String },

    #[error("scope {scope:?} is not in the trust policy (see `ocituf trust list`)")]
    NoSuchScope { scope: String },

    #[error("no root of trust covers {image}: add one with `ocituf trust add SCOPE …`")]
    UnknownScope { image: String },

    #[error("could not open the OCI repository {repository}")]
    OpenStore {
        repository: String,
        #[source]
        source: ocituf_oci::Error,
    },
}

impl Error {
    /// The kind of failure, for exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidReference { .. }
            | Error::InvalidScope { .. }
            | Error::PolicyRead { .. }
            | Error::PolicyWrite { .. }
            | Error::PolicySyntax { .. }
            | Error::PolicyInvalid { .. }
            | Error::DuplicateScope { .. }
            | Error::ScopeExists { .. }
            | Error::NoSuchScope { .. }
            | Error::UnknownScope { .. }
            | Error::OpenStore { .. } => ErrorKind::Config,
        }
    }
}
