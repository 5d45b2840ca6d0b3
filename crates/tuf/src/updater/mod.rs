//! The updater: the TUF client workflow over a [`RepoSource`] and a [`TrustedStore`].
//!
//! [`Updater::new`] starts from the caller's pinned root (never from the cache as trust),
//! replays the cached root history from it, and loads cached metadata through the same
//! checks as fresh metadata. [`Updater::refresh`] runs TUF 5.3 to 5.6: root versions one by
//! one until the source has no next one, then timestamp, snapshot and top-level targets,
//! fetching snapshot and targets only when the cached copy is not the current one.
//! [`Updater::target_info`] walks delegations lazily (TUF 5.7) and
//! [`Updater::download_target`] fetches a target and checks its length and hashes.
//!
//! Every refresh starts a new [`TrustedSet`] from the trusted root and reloads the cache
//! through it, as python-tuf does: metadata signed by keys that a new root rotated out never
//! verifies again. When a new root rotates the timestamp or snapshot keys, the cached
//! timestamp and snapshot are also deleted from the store (fast-forward attack recovery,
//! TUF 5.3.11).
//!
//! A source may have several candidates for one file (OCI registries, where anyone with push
//! access can add junk). The updater asks for candidate 0, 1, ... while a candidate fails
//! verification, up to [`UpdaterConfig::max_candidates`], and keeps the first that verifies;
//! a candidate whose claimed version differs from its signed version is junk. If none
//! verifies, the error of the first is returned.
//!
//! This module does no I/O of its own: all bytes pass through the two traits.

mod candidates;

use std::collections::BTreeMap;

use crate::clock::Clock;
use crate::crypto::hash::verify_length_and_hashes;
use crate::error::Error;
use crate::metadata::{Envelope, Role, Root, Targets};
use crate::source::{RepoSource, TargetRequest};
use crate::store::TrustedStore;
use crate::trusted::{Origin, SearchStep, TargetSearch, TimestampUpdate, TrustedSet};

pub use crate::trusted::TargetInfo;
use candidates::{fetch_verified, Wanted};

/// Limits of the updater. Every fetch is bounded.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpdaterConfig {
    /// Root versions fetched per refresh (and replayed from the cache) at most.
    pub max_root_rotations: u32,
    /// Targets roles visited per target search at most.
    pub max_delegations: u32,
    /// Byte limit of a root file.
    pub root_max_len: u64,
    /// Byte limit of the timestamp.
    pub timestamp_max_len: u64,
    /// Byte limit of the snapshot when the timestamp gives no length.
    pub snapshot_max_len: u64,
    /// Byte limit of a targets file when the snapshot gives no length.
    pub targets_max_len: u64,
    /// Candidates tried per metadata file at most.
    pub max_candidates: u32,
}

impl Default for UpdaterConfig {
    fn default() -> Self {
        UpdaterConfig {
            max_root_rotations: 256,
            max_delegations: 32,
            root_max_len: 512_000,
            timestamp_max_len: 16 * 1024,
            snapshot_max_len: 2 * 1024 * 1024,
            targets_max_len: 5 * 1024 * 1024,
            max_candidates: 8,
        }
    }
}

/// A TUF client for one repository.
pub struct Updater<S, T, C> {
    source: S,
    store: T,
    config: UpdaterConfig,
    clock: C,
    trusted: TrustedSet,
    /// The bytes of the trusted root, to start each refresh from.
    root_bytes: Vec<u8>,
    /// Whether top-level targets of this refresh are loaded (else `target_info` refreshes).
    refreshed: bool,
    /// The time of the current refresh: one `now` for all of its checks, as python-tuf's
    /// reference time.
    now: time::OffsetDateTime,
}

impl<S, T, C> std::fmt::Debug for Updater<S, T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updater")
            .field("config", &self.config)
            .field("trusted", &self.trusted)
            .finish_non_exhaustive()
    }
}

impl<S: RepoSource, T: TrustedStore, C: Clock> Updater<S, T, C> {
    /// Start from `anchor_root`, the root the caller trusts (pinned, shipped, or verified
    /// before), then replay the cached root history and load cached metadata.
    ///
    /// # Errors
    /// Errors of [`TrustedSet::new`] for a bad anchor; [`Error::Store`] if the cache cannot
    /// be read. Cached metadata that fails verification is ignored, not an error.
    ///
    /// # Security
    /// The cache never supplies trust: cached roots are accepted only as a chain verified
    /// from the anchor, and cached metadata only after every check of the workflow.
    pub async fn new(
        anchor_root: &[u8],
        source: S,
        store: T,
        config: UpdaterConfig,
        clock: C,
    ) -> Result<Self, Error> {
        let trusted = TrustedSet::new(anchor_root)?;
        let now = clock.now();
        let mut updater = Updater {
            source,
            store,
            config,
            clock,
            trusted,
            root_bytes: anchor_root.to_vec(),
            refreshed: false,
            now,
        };
        updater.replay_cached_roots().await?;
        updater.load_cached_top_level().await?;
        Ok(updater)
    }

    /// The trusted metadata, for inspection (versions, expiries, keys).
    pub fn trusted(&self) -> &TrustedSet {
        &self.trusted
    }

    /// The bytes of the trusted root (the newest verified from the anchor), to pin or to
    /// start another updater from.
    pub fn root_bytes(&self) -> &[u8] {
        &self.root_bytes
    }

    /// The configuration.
    pub fn config(&self) -> &UpdaterConfig {
        &self.config
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The store.
    pub fn store(&self) -> &T {
        &self.store
    }

    async fn replay_cached_roots(&mut self) -> Result<(), Error> {
        let max_len = self.config.root_max_len;
        for _ in 0..self.config.max_root_rotations {
            let next = self.trusted.root().version + 1;
            let Some(bytes) = cached(self.store.load_root(next, max_len).await)? else {
                break;
            };
            if self.trusted.update_root(&bytes).is_err() {
                tracing::warn!(version = next, "cached root does not verify; ignored");
                break;
            }
            self.root_bytes = bytes;
        }
        // A store without history may still hold the next root under its role name.
        if let Some(bytes) = cached(self.store.load("root", max_len).await)? {
            if self.trusted.update_root(&bytes).is_ok() {
                self.root_bytes = bytes;
            }
        }
        Ok(())
    }

    /// Load cached timestamp, snapshot and targets through the checks; failures only mean
    /// the cache is not used.
    async fn load_cached_top_level(&mut self) -> Result<(), Error> {
        let now = self.now;
        let cfg = &self.config;
        if let Some(bytes) = cached(self.store.load("timestamp", cfg.timestamp_max_len).await)? {
            if let Err(e) = self.trusted.update_timestamp(&bytes, now) {
                tracing::debug!(error = %e, "cached timestamp not used");
                return Ok(());
            }
        } else {
            return Ok(());
        }
        // The cached snapshot is the rollback reference (TUF 5.5.5): bound it by the
        // configured maximum, never by the length the newest timestamp gives the *next*
        // snapshot, or a shorter new snapshot would make the reference unreadable.
        let snapshot_len = self.config.snapshot_max_len;
        if let Some(bytes) = cached(self.store.load("snapshot", snapshot_len).await)? {
            if let Err(e) = self.trusted.update_snapshot(&bytes, now, Origin::Cache) {
                tracing::debug!(error = %e, "cached snapshot not used");
                return Ok(());
            }
        } else {
            return Ok(());
        }
        let targets_len = self.targets_limit("targets");
        if let Some(bytes) = cached(self.store.load("targets", targets_len).await)? {
            if let Err(e) = self.trusted.update_targets(&bytes, now) {
                tracing::debug!(error = %e, "cached targets not used");
            }
        }
        Ok(())
    }

    fn targets_limit(&self, role: &str) -> u64 {
        self.trusted
            .role_meta(role)
            .and_then(|m| m.length)
            .unwrap_or(self.config.targets_max_len)
    }

    /// Run the client workflow: root, timestamp, snapshot, top-level targets (TUF 5.3-5.6).
    ///
    /// # Errors
    /// The typed error of the first check that failed, [`Error::NotFound`] when the
    /// repository lacks a file the workflow needs, [`Error::Source`] / [`Error::Store`].
    /// Metadata verified before the failure stays trusted and stored.
    ///
    /// # Security
    /// Stores only verified bytes, exactly as received.
    pub async fn refresh(&mut self) -> Result<(), Error> {
        self.refreshed = false;
        self.now = self.clock.now();
        self.source.start_refresh();
        // Each refresh starts from the trusted root alone (see the module docs).
        self.trusted = TrustedSet::new(&self.root_bytes)?;
        let before = self.trusted.root().clone();
        self.update_root().await?;
        self.forget_rotated_online_roles(&before).await?;
        self.update_timestamp().await?;
        self.update_snapshot().await?;
        self.update_top_level_targets().await?;
        self.refreshed = true;
        Ok(())
    }

    /// TUF 5.3: fetch root N+1, N+2, ... until the source has none (bounded).
    async fn update_root(&mut self) -> Result<(), Error> {
        for _ in 0..self.config.max_root_rotations {
            let next = self.trusted.root().version + 1;
            let wanted = Wanted {
                role: "root",
                version: Some(next),
                hashes: None,
                max_len: self.config.root_max_len,
            };
            let fetched = fetch_verified(
                &self.source,
                &mut self.trusted,
                self.config.max_candidates,
                &wanted,
                |set, bytes| set.update_root(bytes).map(|_| ()),
            )
            .await?;
            let Some((bytes, ())) = fetched else {
                break;
            };
            self.store.store_root(next, &bytes).await?;
            self.store.store("root", &bytes).await?;
            self.root_bytes = bytes;
        }
        Ok(())
    }

    /// TUF 5.3.11: if the timestamp or snapshot keys rotated, delete the cached timestamp
    /// and snapshot (fast-forward attack recovery). They would fail verification under the
    /// new keys anyway; deleting them also keeps them from ever being served from the cache.
    async fn forget_rotated_online_roles(&mut self, before: &Root) -> Result<(), Error> {
        let after = self.trusted.root();
        if after.version == before.version {
            return Ok(());
        }
        let rotated = ["timestamp", "snapshot"].into_iter().any(|role| {
            let (old, new) = (before.roles.get(role), after.roles.get(role));
            let keyset = |r: Option<&crate::metadata::RoleKeys>| {
                r.map(|r| {
                    let ids: std::collections::BTreeSet<String> =
                        r.keyids.iter().map(ToString::to_string).collect();
                    (ids, r.threshold)
                })
            };
            let keys_changed = old.into_iter().chain(new).any(|r| {
                r.keyids
                    .iter()
                    .any(|id| before.keys.get(id) != after.keys.get(id))
            });
            keyset(old) != keyset(new) || keys_changed
        });
        if rotated {
            tracing::info!("timestamp or snapshot keys rotated: cached copies deleted");
            self.store.remove("timestamp").await?;
            self.store.remove("snapshot").await?;
        }
        Ok(())
    }

    /// TUF 5.4: cached timestamp as the rollback reference, then the repository's.
    async fn update_timestamp(&mut self) -> Result<(), Error> {
        let now = self.now;
        let max_len = self.config.timestamp_max_len;
        if let Some(bytes) = cached(self.store.load("timestamp", max_len).await)? {
            // Errors only mean the cache is not used; an expired final root (TUF 5.3.10)
            // fails the repository's timestamp below with the same error.
            if let Err(e) = self.trusted.update_timestamp(&bytes, now) {
                tracing::debug!(error = %e, "cached timestamp not used");
            }
        }
        let wanted = Wanted {
            role: "timestamp",
            version: None,
            hashes: None,
            max_len: self.config.timestamp_max_len,
        };
        let fetched = fetch_verified(
            &self.source,
            &mut self.trusted,
            self.config.max_candidates,
            &wanted,
            |set, bytes| set.update_timestamp(bytes, now),
        )
        .await?;
        match fetched {
            None => Err(Error::NotFound {
                what: "timestamp".to_owned(),
            }),
            Some((_, TimestampUpdate::Unchanged)) => Ok(()),
            Some((bytes, TimestampUpdate::Updated)) => {
                self.store.store("timestamp", &bytes).await?;
                Ok(())
            }
        }
    }

    /// TUF 5.5: the cached snapshot if it is the one the timestamp names, else fetch it.
    async fn update_snapshot(&mut self) -> Result<(), Error> {
        let now = self.now;
        // Bounded by the configured maximum, not the timestamp's length: see
        // load_cached_top_level (the cached snapshot is the rollback reference).
        let snapshot_len = self.config.snapshot_max_len;
        if let Some(bytes) = cached(self.store.load("snapshot", snapshot_len).await)? {
            match self.trusted.update_snapshot(&bytes, now, Origin::Cache) {
                Ok(()) => return Ok(()),
                Err(e) => tracing::debug!(error = %e, "cached snapshot not used"),
            }
        }
        let meta = self
            .trusted
            .timestamp()
            .ok_or(Error::Order("no trusted timestamp"))?
            .snapshot_meta()?
            .clone();
        let consistent = self.trusted.root().consistent_snapshot();
        let wanted = Wanted {
            role: "snapshot",
            version: consistent.then_some(meta.version),
            hashes: meta.hashes.as_ref(),
            max_len: meta.length.unwrap_or(self.config.snapshot_max_len),
        };
        let fetched = fetch_verified(
            &self.source,
            &mut self.trusted,
            self.config.max_candidates,
            &wanted,
            |set, bytes| set.update_snapshot(bytes, now, Origin::Remote),
        )
        .await?;
        let (bytes, ()) = fetched.ok_or_else(|| Error::NotFound {
            what: format!("snapshot version {}", meta.version),
        })?;
        self.store.store("snapshot", &bytes).await?;
        Ok(())
    }

    async fn update_top_level_targets(&mut self) -> Result<(), Error> {
        let now = self.now;
        self.load_targets("targets", "root", now).await
    }

    /// TUF 5.6/5.7: the cached copy of a targets role if it is the one the snapshot names,
    /// else fetch it.
    async fn load_targets(
        &mut self,
        role: &str,
        delegator: &str,
        now: time::OffsetDateTime,
    ) -> Result<(), Error> {
        self.prove_role(role).await?;
        let max_len = self.targets_limit(role);
        if let Some(bytes) = cached(self.store.load(role, max_len).await)? {
            match self
                .trusted
                .update_delegated_targets(&bytes, role, delegator, now)
            {
                Ok(()) => return Ok(()),
                Err(e) => tracing::debug!(role, error = %e, "cached targets not used"),
            }
        }
        let meta = self
            .trusted
            .role_meta(role)
            .ok_or_else(|| Error::MissingMeta {
                role: role.to_owned(),
            })?
            .clone();
        let consistent = self.trusted.root().consistent_snapshot();
        let wanted = Wanted {
            role,
            version: consistent.then_some(meta.version),
            hashes: meta.hashes.as_ref(),
            max_len: meta.length.unwrap_or(self.config.targets_max_len),
        };
        let fetched = fetch_verified(
            &self.source,
            &mut self.trusted,
            self.config.max_candidates,
            &wanted,
            |set, bytes| set.update_delegated_targets(bytes, role, delegator, now),
        )
        .await?;
        let (bytes, ()) = fetched.ok_or_else(|| Error::NotFound {
            what: format!("{role} version {}", meta.version),
        })?;
        self.store.store(role, &bytes).await?;
        Ok(())
    }

    /// Under a snapshot with a Merkle tree, prove `role`'s entry: fetch the nodes on its
    /// path (each checked against the digest its parent names) and check the entry's
    /// version against the client's cached copy of the role (rollback, TUF 5.5.5 per role).
    /// A no-op for classic snapshots and for entries already proven.
    async fn prove_role(&mut self, role: &str) -> Result<(), Error> {
        let Some(mut walk) = self.trusted.merkle_walk(role)? else {
            return Ok(());
        };
        while let Some(req) = walk.wanted() {
            let bytes =
                self.source
                    .fetch_merkle_node(&req)
                    .await?
                    .ok_or_else(|| Error::NotFound {
                        what: format!("snapshot Merkle node sha256:{} (for {role})", req.sha256),
                    })?;
            walk.feed(&bytes)?;
        }
        // The cached copy was verified when it was stored; its version is the client's
        // rollback reference. Unreadable bytes are no reference (as for a cached snapshot).
        let cached_version = cached(self.store.load(role, self.config.targets_max_len).await)?
            .and_then(|bytes| Envelope::parse(role, &bytes).ok())
            .and_then(|e| Targets::from_signed(&e.signed).ok())
            .map(|t| t.version);
        self.trusted.accept_merkle_proof(&walk, cached_version)?;
        // Kept so that the role can be proven again offline from the cache.
        self.store
            .store_merkle_path(role, &walk.path_bytes())
            .await?;
        Ok(())
    }

    /// Find the trusted information of a target, walking delegations (TUF 5.7) and fetching
    /// delegated roles as needed. Refreshes first if this updater has not refreshed yet.
    ///
    /// # Errors
    /// Errors of [`Self::refresh`] and of loading delegated roles.
    ///
    /// # Security
    /// `Ok(None)` means no role trusted for the path lists it: the target must not be used.
    pub async fn target_info(&mut self, path: &str) -> Result<Option<TargetInfo>, Error> {
        if !self.refreshed {
            self.refresh().await?;
        }
        let mut search = TargetSearch::new(path, self.config.max_delegations);
        loop {
            match search.step(&mut self.trusted)? {
                SearchStep::Load { role, delegator } => {
                    // Delegated roles loaded later than the refresh are checked at the time
                    // they are loaded.
                    let now = self.clock.now();
                    self.load_targets(&role, &delegator, now).await?;
                }
                SearchStep::Found(info) => return Ok(Some(info)),
                SearchStep::NotFound => return Ok(None),
            }
        }
    }

    /// Fetch a target and check it against its trusted length and hashes.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::LengthMismatch`], [`Error::HashMismatch`],
    /// [`Error::UnsupportedHash`], [`Error::Source`].
    ///
    /// # Security
    /// The read is bounded by the trusted length; bytes are returned only once every
    /// trusted hash matched.
    pub async fn download_target(&self, info: &TargetInfo) -> Result<Vec<u8>, Error> {
        let req = TargetRequest {
            path: &info.path,
            hashes: &info.hashes,
            length: info.length,
            consistent_snapshot: self.trusted.root().consistent_snapshot(),
        };
        let bytes = self
            .source
            .fetch_target(&req)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("target {:?}", info.path),
            })?;
        verify_target(info, &bytes)?;
        Ok(bytes)
    }

    /// Check bytes from anywhere (a local cache of targets) against a target's trusted
    /// length and hashes.
    ///
    /// # Errors
    /// As [`verify_target`].
    pub fn verify_target(&self, info: &TargetInfo, bytes: &[u8]) -> Result<(), Error> {
        verify_target(info, bytes)
    }
}

/// A cached file over its limit is unusable, not an error: it is verified input like any
/// other and will be replaced by the next verified copy.
fn cached(
    loaded: Result<Option<Vec<u8>>, crate::store::StoreError>,
) -> Result<Option<Vec<u8>>, Error> {
    match loaded {
        Err(crate::store::StoreError::TooLarge { name, max_len }) => {
            tracing::warn!(name, max_len, "cached metadata over its limit; ignored");
            Ok(None)
        }
        other => Ok(other?),
    }
}

/// Check target bytes against trusted length and hashes.
///
/// # Errors
/// [`Error::LengthMismatch`], [`Error::HashMismatch`], [`Error::UnsupportedHash`];
/// [`Error::Invalid`] for a `TargetInfo` without hashes (never from metadata).
///
/// # Security
/// Every trusted hash is checked; an algorithm this crate does not implement refuses the
/// target rather than skipping the hash.
pub fn verify_target(info: &TargetInfo, bytes: &[u8]) -> Result<(), Error> {
    if info.hashes.is_empty() {
        return Err(crate::metadata::invalid(
            "targets",
            format!("target {:?} has no hashes to check", info.path),
        ));
    }
    verify_length_and_hashes(
        &format!("target {:?}", info.path),
        bytes,
        Some(info.length),
        Some(&info.hashes),
    )
}

/// Versions of the trusted metadata, for logs and status output.
pub fn trusted_versions(set: &TrustedSet) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    out.insert("root", set.root().version());
    if let Some(t) = set.timestamp() {
        out.insert("timestamp", t.version());
    }
    if let Some(s) = set.snapshot() {
        out.insert("snapshot", s.version());
    }
    if let Some(t) = set.targets() {
        out.insert("targets", t.version());
    }
    out
}

#[cfg(test)]
mod merkle_tests;
#[cfg(test)]
mod tests;
