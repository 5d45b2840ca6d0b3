//! The Update Framework (TUF), sans I/O.
//!
//! This crate is TUF itself and nothing about OCI: canonical JSON, keys and signatures,
//! the metadata of every role, the trusted set that performs every check of the client
//! workflow of the TUF specification (section 5) on bytes and a `now` passed in, the
//! repository-side editing and signing API, and an async updater generic over two traits,
//! [`RepoSource`] (untrusted bytes) and [`TrustedStore`] (the local cache).
//!
//! | module | what it does |
//! |---|---|
//! | [`cjson`] | canonical JSON (signing input), a strict parser for untrusted bytes, the file writer |
//! | [`crypto`] | keys, keyids, signature verification, [`crypto::Signer`] and PKCS#8 private keys, hashes |
//! | [`metadata`] | the envelope and the typed `signed` part of every role, delegations, path patterns |
//! | [`trusted`] | [`TrustedSet`]: every check of TUF 5.3-5.7 on bytes and `now`; the delegation walk |
//! | [`updater`] | [`Updater`]: the client workflow over [`RepoSource`] and [`TrustedStore`] |
//! | [`editor`], [`repo`] | signing, adding signatures to received bytes, creating and editing a repository |
//! | [`clock`] | [`Clock`], the only place "now" comes from |
//!
//! It does not do HTTP itself except in the `http` module (feature `http`), does not know
//! about OCI (see `ocituf-oci`), and never reads a clock outside [`clock`].

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod cjson;
pub mod clock;
pub mod crypto;
pub mod editor;
pub mod error;
pub mod fsio;
pub mod merkle;
pub mod metadata;
pub mod repo;
pub mod source;
pub mod store;
pub mod trusted;
pub mod updater;

#[cfg(test)]
mod testutil;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::Error;
pub use repo::Repository;
pub use source::{Fetched, MetadataRequest, RepoSource, SourceError, TargetRequest};
pub use store::{StoreError, TrustedStore};
pub use trusted::{TargetInfo, TrustedSet};
pub use updater::{Updater, UpdaterConfig};

pub mod fs_store;
pub mod memory_store;
pub use fs_store::{FsStore, RootHistory};
pub use memory_store::MemoryStore;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
pub use http::{HttpConfig, HttpSource, HttpSourceError};
