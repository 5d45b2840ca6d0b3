//! The online signer (`ocituf serve`): it holds the snapshot and timestamp keys of one or
//! more roots of trust, finds the new versions of their targets roles that publishers pushed
//! (`ocituf sign`, [`ocituf_writer::sign`]), and publishes one new snapshot and timestamp
//! that cover every one of them. It also re-signs the timestamp and snapshot well before they
//! expire, so clients never fail closed because nobody ran `ocituf publish`.
//!
//! Clients never talk to the signer: they read only the registry. Publishers may tell it
//! that they pushed a version ([`Signer::submit`]) and wait until a timestamp covers it;
//! without being told it finds new versions itself by listing the referrers of the role
//! anchors every `poll-interval`.
//!
//! What it trusts: nothing a publisher says. A submitted version is judged from the
//! registry as a client would judge it ([`fate`]: its delegator's keys and threshold, its
//! parent, rivals of its number), and a batch without submissions loads the verified state
//! ([`ocituf_writer::State::load`]: the root chain from the pinned root, then the newest
//! version of each targets role whose signatures meet its delegator's keys and threshold),
//! so a version signed with the wrong key is never listed.
//!
//! One signer per root of trust at a time: two signers would sign two different timestamps
//! with one version number (a fork). Without a database one instance runs alone, held by a
//! local lock file ([`lock`]). With one, several replicas share the roots of trust through
//! leases in PostgreSQL with fencing tokens ([`lease`]).
//!
//! Modules: [`config`] (signer.toml), [`service`] (one worker per root of trust and its
//! submissions), `batch` (what one batch publishes: submissions, a walk, re-signing),
//! [`fate`] (what a submitted version is: accepted, conflict, rejected), [`http`] (health, metrics, status and the live site pages), [`metrics`] (counters
//! and histograms), [`lock`]
//! (the single-instance lock), [`lease`] (leases in PostgreSQL for several replicas),
//! `leader` (a worker's turns as follower or leader on those leases), [`retention`] (pruning
//! by the retention rule after each publish).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![allow(clippy::result_large_err)]

mod batch;
pub mod config;
pub mod fate;
pub mod http;
mod leader;
pub mod lease;
pub mod lock;
pub mod metrics;
pub mod retention;
pub mod service;

pub use config::{Config, DatabaseConfig, RootConfig};
pub use fate::Rejection;
pub use lock::InstanceLock;
pub use service::{Fate, RootStatus, Signer};
