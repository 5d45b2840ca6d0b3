//! The write path of a root of trust stored in OCI: everything that makes new metadata, for
//! the `ocituf` command line and the online signer alike (they parse, call this, print).
//!
//! Writers verify what they build on, as a client would: the root chain from a pinned root
//! version 1, then the newest version of each targets role whose signatures meet its
//! delegator's threshold. Several writers may work at once: a version that lost a race is
//! rebuilt on top of the winners and nothing another writer signed is dropped.
//!
//! This crate does not verify images for clients (that is `ocituf-resolver`), parse
//! command lines, or print: progress lines go to a [`Progress`] callback.
//!
//! Modules: [`repo`] (a root of trust in one OCI repository: newest verified versions, root
//! chain, pushing, pending roots), [`state`] (the verified state and the delegation search
//! that decides where each target name goes), [`authority`] (keys, thresholds, signing),
//! [`edit`] (editing a targets role with concurrent writers), [`sign`] (signing and yanking
//! images), [`delegate`] (delegations and hash bins), [`project`] (projects and their
//! maintainers), [`online`] (snapshot and timestamp),
//! [`init`] (a new root of trust), [`root`] (root rotation and co-signing), [`keys`] (keys
//! from files, the environment and PKCS#11 tokens: [`pkcs11`]), [`bundle`] (air-gap
//! bundles: export to an OCI layout, import into another registry), [`when`] (durations), [`meter`] (store calls a writer makes), [`wait`] (until clients see an image), [`generate`] (large
//! repositories for tests and benchmarks),
//! [`pin`], [`progress`], [`error`].
//!
//! Why a crate of its own, above the resolver: it uses the resolver's store opening and
//! error kinds, and both binaries (`ocituf` and the server) need all of it.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![allow(clippy::result_large_err)]

pub mod authority;
pub mod bundle;
pub mod cosign;
pub mod delegate;
pub mod edit;
pub mod error;
pub mod generate;
pub mod init;
pub mod keys;
pub mod meter;
pub mod online;
pub mod pin;
pub mod pkcs11;
pub mod progress;
pub mod project;
pub mod repo;
pub mod root;
pub mod sign;
pub mod site;
pub mod state;
pub mod wait;
pub mod when;

pub use authority::{file_bytes, sign_envelope, valid_signatures, Authority};
pub use error::{Error, ErrorKind, Result};
pub use pin::Pin;
pub use progress::Progress;
pub use repo::{Found, MetaRepo, MAX_METADATA_LEN, PENDING_ROOT_ARTIFACT_TYPE};
pub use state::{State, StrayTarget};
