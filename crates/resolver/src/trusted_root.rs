//! A root of trust held open: its refreshed TUF metadata kept in memory between lookups.
//!
//! [`Resolver::resolve`] starts from the pinned root for every image, which is right for a
//! command that verifies one image and exits. A long-lived process (the verifying proxy)
//! instead opens each root of trust once with [`Resolver::open_root`], looks many targets up
//! in the same trusted state ([`TrustedRoot::signed`]), and refreshes it when it chooses
//! ([`TrustedRoot::refresh`]); [`TrustedRoot::valid_until`] says how long the state may be
//! used at most. Comparing what a registry serves with the signed digest stays the caller's
//! job: it has the exact bytes it serves.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ocituf_oci::{Digest, OciRepoSource, RootOfTrustName};
use ocituf_tuf::{FsStore, SystemClock, TargetInfo, Updater};
use time::OffsetDateTime;

use crate::error::Error;
use crate::policy::{TrustEntry, TrustPolicy};
use crate::reference::ImageReference;
use crate::resolve::{pinned_root, signing_role, target_name, Resolver};
use crate::store::{self, AnyStore};

/// A signed target as the trusted metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTarget {
    /// The TUF target name (`acme/app:1.4` or `acme/app@sha256:…`).
    pub target: String,
    /// The signed manifest digest and length.
    pub digest: Digest,
    pub length: u64,
    /// `custom.oci.mediaType`, if recorded.
    pub media_type: Option<String>,
    /// The targets role that lists it, and that role's version.
    pub role: String,
    pub role_version: u64,
}

type OpenUpdater = Updater<OciRepoSource<AnyStore>, FsStore, SystemClock>;

/// One root of trust, refreshed from its pinned root and kept in memory.
pub struct TrustedRoot {
    entry: TrustEntry,
    store: AnyStore,
    updater: OpenUpdater,
}

impl std::fmt::Debug for TrustedRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedRoot")
            .field("root_of_trust", &self.entry.root_of_trust)
            .field("repository", &self.entry.repository.to_string())
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// The trust policy this resolver applies.
    pub fn policy(&self) -> &TrustPolicy {
        &self.policy
    }

    /// Open the root of trust of `entry`: from its pinned root, refresh its metadata (cached
    /// under [`Resolver::cache_for`]) and keep the trusted state for later lookups.
    ///
    /// # Errors
    /// As [`Resolver::resolve`] for the metadata: [`Error::Metadata`] (expired, rolled back,
    /// badly signed, unreachable), the pinned-root errors, [`Error::OpenStore`].
    ///
    /// # Security
    /// Trust starts at the pinned root of `entry`, never at the cache or the registry.
    pub async fn open_root(&self, entry: &TrustEntry) -> Result<TrustedRoot, Error> {
        let store = store::open_with(&entry.repository, &self.registry)?;
        let name =
            RootOfTrustName::parse(&entry.root_of_trust).map_err(|source| Error::OpenStore {
                repository: entry.repository.to_string(),
                source,
            })?;
        let cache = self.cache_for(entry);
        let remembered = store.remember_referrers_capability(&cache);
        let updater = match self.open_updater(entry, &store, &name, &cache).await {
            // As in `resolve`: a remembered capability may be wrong; detect again.
            Err(e) if remembered && e.kind() != crate::ErrorKind::Network => {
                tracing::debug!(error = %e, "retrying without the remembered referrers capability");
                store.forget_referrers_capability(&cache);
                self.open_updater(entry, &store, &name, &cache).await?
            }
            other => other?,
        };
        store.save_referrers_capability(&cache);
        Ok(TrustedRoot {
            entry: entry.clone(),
            store,
            updater,
        })
    }

    async fn open_updater(
        &self,
        entry: &TrustEntry,
        store: &AnyStore,
        name: &RootOfTrustName,
        cache: &PathBuf,
    ) -> Result<OpenUpdater, Error> {
        let new_source = || OciRepoSource::new(store.clone(), name.clone());
        let anchor = pinned_root(entry, &new_source()).await?;
        match self.refreshed(&anchor, new_source(), cache).await {
            // The cache is untrusted input: start again from the pinned root without it.
            Err(ocituf_tuf::Error::Store(_)) => {
                let _ = std::fs::remove_dir_all(cache);
                self.refreshed(&anchor, new_source(), cache)
                    .await
                    .map_err(|e| metadata_error(entry, e))
            }
            other => other.map_err(|e| metadata_error(entry, e)),
        }
    }
}

fn metadata_error(entry: &TrustEntry, source: ocituf_tuf::Error) -> Error {
    Error::Metadata {
        root_of_trust: entry.root_of_trust.clone(),
        repository: entry.repository.to_string(),
        source: Box::new(source),
    }
}

impl TrustedRoot {
    /// The policy entry this root of trust was opened for.
    pub fn entry(&self) -> &TrustEntry {
        &self.entry
    }

    /// Refresh the metadata from the repository (TUF 5.3–5.5, from the pinned root).
    ///
    /// # Errors
    /// [`Error::Metadata`]. After a failure the state must not be used: the caller refreshes
    /// again before its next lookup.
    pub async fn refresh(&mut self) -> Result<(), Error> {
        self.updater
            .refresh()
            .await
            .map_err(|e| metadata_error(&self.entry, e))
    }

    /// The signed target for `image` (its tag name, or its digest name when it has no tag),
    /// `None` when no role trusted for the name lists it. Delegated roles are loaded as the
    /// search needs them.
    ///
    /// # Errors
    /// [`Error::InvalidReference`] for a reference without tag or digest,
    /// [`Error::Metadata`] when a delegated role fails, [`Error::NoSha256`].
    pub async fn signed(&mut self, image: &ImageReference) -> Result<Option<SignedTarget>, Error> {
        let target = target_name(image)?;
        self.signed_target(&target).await
    }

    /// [`Self::signed`] for a target name.
    ///
    /// # Errors
    /// As [`Self::signed`].
    pub async fn signed_target(&mut self, target: &str) -> Result<Option<SignedTarget>, Error> {
        let info = self
            .updater
            .target_info(target)
            .await
            .map_err(|e| metadata_error(&self.entry, e))?;
        info.map(|info| self.describe(&info)).transpose()
    }

    fn describe(&self, info: &TargetInfo) -> Result<SignedTarget, Error> {
        let (role, role_version) = signing_role(self.updater.trusted(), info);
        let digest = info
            .hashes
            .get("sha256")
            .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok())
            .ok_or_else(|| Error::NoSha256 {
                target: info.path.clone(),
                role: role.clone(),
            })?;
        let media_type = info
            .custom
            .as_ref()
            .and_then(|c| c.pointer("/oci/mediaType"))
            .and_then(|m| m.as_str())
            .map(str::to_owned);
        Ok(SignedTarget {
            target: info.path.clone(),
            digest,
            length: info.length,
            media_type,
            role,
            role_version,
        })
    }

    /// The earliest expiry of the trusted root, timestamp, snapshot and top-level targets:
    /// no decision made from this state may be reused after it. `None` before a refresh
    /// loaded them.
    pub fn valid_until(&self) -> Option<OffsetDateTime> {
        let set = self.updater.trusted();
        let mut until = set.root().expires;
        for e in [
            set.timestamp().map(|t| t.expires),
            set.snapshot().map(|s| s.expires),
            set.targets().map(|t| t.expires),
        ] {
            until = until.min(e?);
        }
        Some(until)
    }

    /// Versions of the trusted top-level metadata.
    pub fn versions(&self) -> BTreeMap<&'static str, u64> {
        ocituf_tuf::updater::trusted_versions(self.updater.trusted())
    }

    /// Requests made to the metadata repository since this root was opened, as store calls.
    pub fn metadata_requests(&self) -> u64 {
        self.updater.source().requests()
    }

    /// HTTP requests sent to the metadata registry; `None` for an OCI layout.
    pub fn registry_requests(&self) -> Option<u64> {
        match &self.store {
            AnyStore::Registry(r) => Some(r.client().request_count()),
            AnyStore::Layout(_) => None,
        }
    }
}
