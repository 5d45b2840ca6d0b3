//! The one error type of this crate.
//!
//! Verification failures are typed so that callers and tests can `matches!` the exact check
//! that failed (`Threshold`, `Rollback`, `Expired`, ...). Messages are lowercase and name the
//! role and the check; causes are kept in `#[source]`.

use time::OffsetDateTime;

use crate::cjson::JsonError;
use crate::source::SourceError;
use crate::store::StoreError;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes of `what` are not acceptable JSON (strict parser).
    #[error("{what} is not valid json")]
    Json {
        what: String,
        #[source]
        source: JsonError,
    },
    /// The JSON of a role does not have the shape of TUF metadata.
    #[error("{role} metadata does not match the tuf schema")]
    Schema {
        role: String,
        #[source]
        source: serde_json::Error,
    },
    /// The metadata has the right shape but breaks a rule of the specification.
    #[error("{role} metadata is invalid: {reason}")]
    Invalid { role: String, reason: String },
    /// `_type` is not the role class that was asked for (TUF 5.3.x: type check).
    #[error("expected {expected} metadata, got _type {got:?}")]
    WrongType { expected: String, got: String },
    /// Two signatures name the same keyid: the metadata is rejected outright.
    #[error("{role} metadata has more than one signature with keyid {keyid}")]
    DuplicateSignatureKeyId { role: String, keyid: String },
    /// Fewer distinct authorised keys signed than the threshold requires.
    #[error("{role} metadata is signed by {valid} of the {threshold} keys it needs")]
    Threshold {
        role: String,
        valid: u32,
        threshold: u32,
    },
    /// A version older than the trusted one (rollback attack).
    #[error("{role} version {got} is older than the trusted version {trusted}")]
    Rollback {
        role: String,
        trusted: u64,
        got: u64,
    },
    /// A version other than the one the parent or the file name requires.
    #[error("{role} version {got} is not the expected version {expected}")]
    VersionMismatch {
        role: String,
        expected: u64,
        got: u64,
    },
    /// Metadata past its expiry (freeze attack).
    #[error("{role} metadata expired at {expires}")]
    Expired {
        role: String,
        expires: OffsetDateTime,
    },
    /// A file's hash differs from the trusted one.
    #[error("{what} has {algorithm} {actual}, expected {expected}")]
    HashMismatch {
        what: String,
        algorithm: String,
        expected: String,
        actual: String,
    },
    /// A file's length differs from the trusted one.
    #[error("{what} is {actual} bytes long, expected {expected}")]
    LengthMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    /// A trusted hash of `what` uses an algorithm this crate does not implement: the file
    /// cannot be checked, so it is refused (as python-tuf does).
    #[error("{what} has a hash with the unsupported algorithm {algorithm:?}")]
    UnsupportedHash { what: String, algorithm: String },
    /// More bytes than the configured limit (endless-data attack).
    #[error("{what} is longer than the limit of {max_len} bytes")]
    TooLarge { what: String, max_len: u64 },
    /// The snapshot does not list a role that must be listed.
    #[error("snapshot does not list {role}")]
    MissingMeta { role: String },
    /// The new snapshot dropped a role the trusted snapshot listed.
    #[error("new snapshot removes {file} that the trusted snapshot lists")]
    MetaRemoved { file: String },
    /// The repository does not have a file the client needs.
    #[error("the repository has no {what}")]
    NotFound { what: String },
    /// A call out of the order of the client workflow (a bug in the caller).
    #[error("{0}")]
    Order(&'static str),
    /// A key that cannot be decoded or used.
    #[error("invalid {keytype} key")]
    Key {
        keytype: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A key type or scheme this crate does not implement.
    #[error("unsupported key type {keytype:?} with scheme {scheme:?}")]
    UnsupportedKey { keytype: String, scheme: String },
    /// A signer failed to sign.
    #[error("could not sign with key {keyid}")]
    Sign {
        keyid: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The value cannot be written as canonical JSON.
    #[error("{what} cannot be written as canonical json")]
    Canonical {
        what: String,
        #[source]
        source: JsonError,
    },
    /// The untrusted source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The local cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
