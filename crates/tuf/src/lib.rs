//! The Update Framework (TUF), sans I/O.
//!
//! This crate is TUF itself and nothing about OCI: canonical JSON, keys and signatures,
//! the metadata of every role, the trusted set that performs every check of the client
//! workflow of the TUF specification (section 5) on bytes and a `now` passed in, the
//! repository-side editing and signing API, and an async updater generic over two traits,
//! [`RepoSource`] (untrusted bytes) and [`TrustedStore`] (the local cache).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod cjson;
pub mod clock;
pub mod crypto;
pub mod editor;
pub mod error;
pub mod metadata;
pub mod source;
pub mod store;
pub mod trusted;
pub mod updater;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::Error;
pub use source::{Fetched, MetadataRequest, RepoSource, SourceError, TargetRequest};
pub use store::{StoreError, TrustedStore};

pub mod fs_store;
pub mod memory_store;
pub use fs_store::{FsStore, RootHistory};
pub use memory_store::MemoryStore;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
pub use http::{HttpConfig, HttpSource, HttpSourceError};
pub use trusted::{TargetInfo, TrustedSet};
pub use updater::{Updater, UpdaterConfig};
