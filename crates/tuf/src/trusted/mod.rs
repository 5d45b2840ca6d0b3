//! The trusted set: metadata that passed every check of the TUF client workflow.
//!
//! [`TrustedSet`] is fed untrusted bytes and a `now`, and either accepts them (they become
//! trusted) or returns the typed [`Error`] of the check that failed. It does no I/O and
//! reads no clock. The order of the client workflow (TUF 5.3 to 5.6) is enforced: root
//! updates, then timestamp, then snapshot, then targets and delegated targets.
//!
//! Like python-tuf, a trusted set is meant to live for one refresh: the updater builds a
//! new one from the trusted root and reloads cached metadata through the same checks, so
//! that metadata signed by keys a new root revoked is never trusted again (fast-forward
//! attack recovery, TUF 5.3.11). [`TargetSearch`] walks delegations over a trusted set.
//!
//! This module does not fetch, cache or choose candidates: see [`crate::updater`].

mod search;
mod verify;

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

pub use search::{SearchStep, TargetInfo, TargetSearch};
use verify::Verifier;
pub use verify::{signature_report, SignatureReport};

use crate::crypto::hash::verify_length_and_hashes;
use crate::error::Error;
use crate::merkle::{MerkleRoot, Outcome, Walk};
use crate::metadata::{invalid, Envelope, MetaFile, Role, Root, Snapshot, Targets, Timestamp};

/// What [`TrustedSet::update_timestamp`] did with a valid timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUpdate {
    /// A newer timestamp is now trusted (store it).
    Updated,
    /// Same version as the trusted one: the trusted one is kept and nothing changed.
    Unchanged,
}

/// Where snapshot bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The repository: hashes and length from the timestamp are checked first.
    Remote,
    /// The local cache: loaded for rollback protection even if it is not the snapshot the
    /// timestamp names; an error tells the caller to fetch the current one.
    Cache,
}

/// Verified targets metadata and which delegators it was verified for.
#[derive(Debug, Clone)]
struct LoadedTargets {
    targets: Targets,
    envelope: Envelope,
    signed_bytes: Vec<u8>,
    verified_by: BTreeSet<String>,
}

/// The verifiers of the four top-level roles, made from the trusted root.
#[derive(Debug, Clone)]
struct TopVerifiers {
    root: Verifier,
    timestamp: Verifier,
    snapshot: Verifier,
    targets: Verifier,
}

impl TopVerifiers {
    fn new(root: &Root) -> Result<Self, Error> {
        let make = |name: &str| -> Result<Verifier, Error> {
            let role = root.role(name)?;
            Ok(Verifier::new(
                name,
                &root.keys,
                &role.keyids,
                role.threshold,
            ))
        };
        Ok(TopVerifiers {
            root: make("root")?,
            timestamp: make("timestamp")?,
            snapshot: make("snapshot")?,
            targets: make("targets")?,
        })
    }
}

/// Metadata that passed every check, and the state needed to check more.
#[derive(Debug, Clone)]
pub struct TrustedSet {
    root: Root,
    verifiers: TopVerifiers,
    timestamp: Option<Timestamp>,
    snapshot: Option<Snapshot>,
    /// The trusted snapshot's Merkle root, when it has one (docs/oci-mapping.md §11).
    merkle: Option<MerkleRoot>,
    /// Entries of delegated roles proven against `merkle` (cleared with every snapshot).
    proven: BTreeMap<String, MetaFile>,
    targets: BTreeMap<String, LoadedTargets>,
}

/// Parse a metadata file, check its `_type` and schema, and compute the signed bytes.
fn load<R: Role>(name: &str, bytes: &[u8]) -> Result<(R, Envelope, Vec<u8>), Error> {
    let envelope = Envelope::parse(name, bytes)?;
    let role = R::from_signed(&envelope.signed)?;
    let signed_bytes = envelope.signed_bytes()?;
    Ok((role, envelope, signed_bytes))
}

fn expired(role: &str, expires: OffsetDateTime) -> Error {
    Error::Expired {
        role: role.to_owned(),
        expires,
    }
}

impl TrustedSet {
    /// Start from a trusted root (the caller's pinned root, or the newest root already
    /// verified from it). Its expiry is not checked here: a root may be updated from an
    /// expired one (TUF 5.3.10 checks the final root in [`Self::update_timestamp`]).
    ///
    /// # Errors
    /// Parsing errors, [`Error::WrongType`], [`Error::Threshold`] if the root is not signed
    /// by a threshold of its own root keys.
    ///
    /// # Security
    /// The bytes are trusted by the caller; self-signature only guards against mistakes.
    pub fn new(root_bytes: &[u8]) -> Result<Self, Error> {
        let (root, envelope, signed_bytes) = load::<Root>("root", root_bytes)?;
        let verifiers = TopVerifiers::new(&root)?;
        verifiers.root.verify(&envelope, &signed_bytes)?;
        Ok(TrustedSet {
            root,
            verifiers,
            timestamp: None,
            snapshot: None,
            merkle: None,
            proven: BTreeMap::new(),
            targets: BTreeMap::new(),
        })
    }

    /// The trusted root.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The trusted timestamp, if loaded.
    pub fn timestamp(&self) -> Option<&Timestamp> {
        self.timestamp.as_ref()
    }

    /// The trusted snapshot, if loaded.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The trusted top-level targets, if loaded.
    pub fn targets(&self) -> Option<&Targets> {
        self.delegated_targets("targets")
    }

    /// Trusted targets metadata of any targets role (`targets` or a delegated name).
    pub fn delegated_targets(&self, role: &str) -> Option<&Targets> {
        self.targets.get(role).map(|t| &t.targets)
    }

    /// Update the root to the next version (TUF 5.3.4 to 5.3.9).
    ///
    /// # Errors
    /// [`Error::Order`] after a timestamp was loaded; [`Error::Threshold`] if the new root
    /// is not signed by a threshold of the trusted root's root keys *and* of its own;
    /// [`Error::Rollback`] for a version not above the trusted one;
    /// [`Error::VersionMismatch`] for a version other than trusted + 1; parsing errors.
    ///
    /// # Security
    /// Both thresholds protect rotation: the old keys vouch for the new root, and the new
    /// keys prove they are held.
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<&Root, Error> {
        if self.timestamp.is_some() {
            return Err(Error::Order("cannot update root after timestamp"));
        }
        let (new, envelope, signed_bytes) = load::<Root>("root", bytes)?;
        // TUF 5.3.5: signed by a threshold of keys of the trusted root.
        self.verifiers.root.verify(&envelope, &signed_bytes)?;
        // TUF 5.3.6: version must be trusted + 1.
        let expected = self.root.version + 1;
        if new.version < expected {
            return Err(Error::Rollback {
                role: "root".to_owned(),
                trusted: self.root.version,
                got: new.version,
            });
        }
        if new.version != expected {
            return Err(Error::VersionMismatch {
                role: "root".to_owned(),
                expected,
                got: new.version,
            });
        }
        // TUF 5.3.5: and by a threshold of its own root keys.
        let verifiers = TopVerifiers::new(&new)?;
        verifiers.root.verify(&envelope, &signed_bytes)?;
        self.root = new;
        self.verifiers = verifiers;
        Ok(&self.root)
    }

    /// Check that the final root has not expired (TUF 5.3.10).
    ///
    /// # Errors
    /// [`Error::Expired`].
    pub fn check_root_expiry(&self, now: OffsetDateTime) -> Result<(), Error> {
        if self.root.is_expired(now) {
            return Err(expired("root", self.root.expires));
        }
        Ok(())
    }

    /// Update the timestamp (TUF 5.4).
    ///
    /// On [`Error::Expired`] the new timestamp *is* kept as trusted: it still protects the
    /// next one from rollback, and [`Self::update_snapshot`] refuses to go on with it.
    ///
    /// # Errors
    /// [`Error::Expired`] for an expired final root or an expired timestamp;
    /// [`Error::Threshold`]; [`Error::Rollback`] for a timestamp older than the trusted one
    /// or one naming an older snapshot version; [`Error::Order`]; parsing errors.
    ///
    /// # Security
    /// A timestamp with the trusted version changes nothing (a repository cannot swap the
    /// snapshot it names without a new version); the caller stores only `Updated` ones.
    pub fn update_timestamp(
        &mut self,
        bytes: &[u8],
        now: OffsetDateTime,
    ) -> Result<TimestampUpdate, Error> {
        if self.snapshot.is_some() {
            return Err(Error::Order("cannot update timestamp after snapshot"));
        }
        // TUF 5.3.10: the final root must not be expired.
        self.check_root_expiry(now)?;
        let (new, envelope, signed_bytes) = load::<Timestamp>("timestamp", bytes)?;
        // TUF 5.4.2: signed by a threshold of the timestamp keys.
        self.verifiers.timestamp.verify(&envelope, &signed_bytes)?;
        if let Some(old) = &self.timestamp {
            // TUF 5.4.3.1: no rollback of the timestamp version.
            if new.version < old.version {
                return Err(Error::Rollback {
                    role: "timestamp".to_owned(),
                    trusted: old.version,
                    got: new.version,
                });
            }
            if new.version == old.version {
                return Ok(TimestampUpdate::Unchanged);
            }
            // TUF 5.4.3.2: no rollback of the snapshot version it names.
            let (old_snap, new_snap) = (old.snapshot_meta()?, new.snapshot_meta()?);
            if new_snap.version < old_snap.version {
                return Err(Error::Rollback {
                    role: "snapshot".to_owned(),
                    trusted: old_snap.version,
                    got: new_snap.version,
                });
            }
        }
        let expires = new.expires;
        self.timestamp = Some(new);
        // TUF 5.4.4: freeze attack.
        if self.timestamp.as_ref().is_some_and(|t| t.is_expired(now)) {
            return Err(expired("timestamp", expires));
        }
        Ok(TimestampUpdate::Updated)
    }

    fn final_timestamp(&self, now: OffsetDateTime) -> Result<&Timestamp, Error> {
        let ts = self
            .timestamp
            .as_ref()
            .ok_or(Error::Order("cannot load snapshot before timestamp"))?;
        if ts.is_expired(now) {
            return Err(expired("timestamp", ts.expires));
        }
        Ok(ts)
    }

    /// Update the snapshot (TUF 5.5).
    ///
    /// On [`Error::Expired`] or [`Error::VersionMismatch`] the snapshot *is* kept as
    /// trusted (for rollback protection of the next one) but targets cannot be loaded.
    ///
    /// # Errors
    /// [`Error::Expired`] (timestamp or snapshot); [`Error::LengthMismatch`] /
    /// [`Error::HashMismatch`] against the timestamp; [`Error::Threshold`];
    /// [`Error::MetaRemoved`] / [`Error::Rollback`] against the trusted snapshot;
    /// [`Error::VersionMismatch`] if the version is not the one the timestamp names.
    ///
    /// # Security
    /// [`Origin::Cache`] skips no check that matters: a cached snapshot becomes usable only if
    /// it is the version the timestamp names and matches its length and hashes; otherwise it
    /// serves as the rollback reference for the one fetched next.
    pub fn update_snapshot(
        &mut self,
        bytes: &[u8],
        now: OffsetDateTime,
        origin: Origin,
    ) -> Result<(), Error> {
        if !self.targets.is_empty() {
            return Err(Error::Order("cannot update snapshot after targets"));
        }
        let meta = self.final_timestamp(now)?.snapshot_meta()?.clone();
        // TUF 5.5.2: length and hashes from the timestamp (a cached snapshot is checked
        // against them only after it served as the rollback reference, below).
        if origin == Origin::Remote {
            verify_length_and_hashes("snapshot", bytes, meta.length, meta.hashes.as_ref())?;
        }
        let (new, envelope, signed_bytes) = load::<Snapshot>("snapshot", bytes)?;
        // TUF 5.5.3: signed by a threshold of the snapshot keys.
        self.verifiers.snapshot.verify(&envelope, &signed_bytes)?;
        let merkle = MerkleRoot::of_snapshot(&new)?;
        if let Some(old) = &self.snapshot {
            // TUF 5.5.5: no targets role removed, none rolled back. A snapshot with a Merkle
            // tree lists only `targets.json` in `meta`: the other roles are checked against
            // the client's copy when their entry is proven (`accept_merkle_proof`).
            for (file, old_meta) in &old.meta {
                if merkle.is_some() && file != "targets.json" {
                    continue;
                }
                let new_meta = new
                    .meta
                    .get(file)
                    .ok_or_else(|| Error::MetaRemoved { file: file.clone() })?;
                if new_meta.version < old_meta.version {
                    return Err(Error::Rollback {
                        role: file.strip_suffix(".json").unwrap_or(file).to_owned(),
                        trusted: old_meta.version,
                        got: new_meta.version,
                    });
                }
            }
        }
        self.snapshot = Some(new);
        self.merkle = merkle;
        self.proven.clear();
        self.final_snapshot(now)?;
        if origin == Origin::Cache {
            verify_length_and_hashes("snapshot", bytes, meta.length, meta.hashes.as_ref())?;
        }
        Ok(())
    }

    fn final_snapshot(&self, now: OffsetDateTime) -> Result<&Snapshot, Error> {
        let snapshot = self
            .snapshot
            .as_ref()
            .ok_or(Error::Order("cannot load targets before snapshot"))?;
        // TUF 5.5.6: freeze attack.
        if snapshot.is_expired(now) {
            return Err(expired("snapshot", snapshot.expires));
        }
        // TUF 5.5.4: the version the timestamp names.
        let expected = self.final_timestamp(now)?.snapshot_meta()?.version;
        if snapshot.version != expected {
            return Err(Error::VersionMismatch {
                role: "snapshot".to_owned(),
                expected,
                got: snapshot.version,
            });
        }
        Ok(snapshot)
    }

    /// The verifier for `role` as delegated by `delegator` (`root` for `targets`).
    fn delegation_verifier(&self, role: &str, delegator: &str) -> Result<Verifier, Error> {
        if delegator == "root" {
            if role != "targets" {
                return Err(invalid("root", format!("root does not delegate {role:?}")));
            }
            return Ok(self.verifiers.targets.clone());
        }
        let parent = self.targets.get(delegator).ok_or(Error::Order(
            "cannot load a delegated role before its delegator",
        ))?;
        let delegations = parent.targets.delegations.as_ref();
        let keys = delegations.and_then(|d| Some((d, d.role_keys(role)?)));
        let Some((delegations, (keyids, threshold))) = keys else {
            return Err(invalid(
                delegator,
                format!("{delegator:?} does not delegate {role:?}"),
            ));
        };
        Ok(Verifier::new(role, &delegations.keys, keyids, threshold))
    }

    /// Update top-level targets (TUF 5.6); the same as delegated targets by `root`.
    ///
    /// # Errors
    /// As [`Self::update_delegated_targets`].
    pub fn update_targets(&mut self, bytes: &[u8], now: OffsetDateTime) -> Result<(), Error> {
        self.update_delegated_targets(bytes, "targets", "root", now)
    }

    /// Load targets metadata of `role`, delegated by `delegator` (TUF 5.6 and 5.7).
    ///
    /// # Errors
    /// [`Error::MissingMeta`] if the snapshot does not list the role;
    /// [`Error::LengthMismatch`] / [`Error::HashMismatch`] against the snapshot;
    /// [`Error::Threshold`] with the delegator's keys for the role;
    /// [`Error::VersionMismatch`] against the snapshot; [`Error::Expired`];
    /// [`Error::Order`] before a final snapshot or delegator.
    ///
    /// # Security
    /// The keys are the delegator's keys *for this role*, never the role's own claims.
    pub fn update_delegated_targets(
        &mut self,
        bytes: &[u8],
        role: &str,
        delegator: &str,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        self.final_snapshot(now)?;
        let meta = self
            .role_meta(role)
            .ok_or_else(|| Error::MissingMeta {
                role: role.to_owned(),
            })?
            .clone();
        let verifier = self.delegation_verifier(role, delegator)?;
        // TUF 5.6.2: length and hashes from the snapshot.
        verify_length_and_hashes(role, bytes, meta.length, meta.hashes.as_ref())?;
        let (new, envelope, signed_bytes) = load::<Targets>(role, bytes)?;
        // TUF 5.6.3: signed by a threshold of the delegator's keys for this role.
        verifier.verify(&envelope, &signed_bytes)?;
        // TUF 5.6.4: the version the snapshot names.
        if new.version != meta.version {
            return Err(Error::VersionMismatch {
                role: role.to_owned(),
                expected: meta.version,
                got: new.version,
            });
        }
        // TUF 5.6.5: freeze attack.
        if new.is_expired(now) {
            return Err(expired(role, new.expires));
        }
        self.targets.insert(
            role.to_owned(),
            LoadedTargets {
                targets: new,
                envelope,
                signed_bytes,
                verified_by: BTreeSet::from([delegator.to_owned()]),
            },
        );
        Ok(())
    }

    /// Check that the already trusted metadata of `role` is also signed as `delegator`
    /// requires: a role reached through another delegator must not inherit the authority
    /// of the path it was first loaded through (diamond delegations).
    ///
    /// # Errors
    /// [`Error::Threshold`] with this delegator's keys; [`Error::Order`] if `role` is not
    /// loaded.
    pub fn verify_delegated_by(&mut self, role: &str, delegator: &str) -> Result<(), Error> {
        let loaded = self
            .targets
            .get(role)
            .ok_or(Error::Order("role is not loaded"))?;
        if loaded.verified_by.contains(delegator) {
            return Ok(());
        }
        let verifier = self.delegation_verifier(role, delegator)?;
        verifier.verify(&loaded.envelope, &loaded.signed_bytes)?;
        if let Some(loaded) = self.targets.get_mut(role) {
            loaded.verified_by.insert(delegator.to_owned());
        }
        Ok(())
    }

    /// The trusted snapshot's entry for a targets role: from its `meta`, or, for a delegated
    /// role under a snapshot with a Merkle tree, the entry proven by
    /// [`Self::accept_merkle_proof`] (`None` until then).
    pub fn role_meta(&self, role: &str) -> Option<&MetaFile> {
        let snapshot = self.snapshot.as_ref()?;
        if self.merkle.is_some() && role != "targets" {
            return self.proven.get(role);
        }
        snapshot.role_meta(role)
    }

    /// The trusted snapshot's Merkle root, if it has one.
    pub fn merkle_root(&self) -> Option<&MerkleRoot> {
        self.merkle.as_ref()
    }

    /// A walk to prove `role`'s entry, when the trusted snapshot has a Merkle tree and the
    /// entry is not proven yet (`None` otherwise: [`Self::role_meta`] answers).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed root (never for a snapshot this set accepted).
    pub fn merkle_walk(&self, role: &str) -> Result<Option<Walk>, Error> {
        match &self.merkle {
            Some(root) if role != "targets" && !self.proven.contains_key(role) => {
                Walk::new(root, role).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Take the entry a finished walk proved. `client_version` is the version of the role
    /// the client already trusted (its cached copy), if any.
    ///
    /// # Errors
    /// [`Error::MissingMeta`] when the tree does not hold the role; [`Error::Rollback`] when
    /// the tree names an older version than the client's (TUF 5.5.5, per role);
    /// [`Error::Order`] for a walk that is not over or not from the trusted snapshot.
    ///
    /// # Security
    /// A walk yields an entry only after every node on its path matched the digest its
    /// parent names, from the root the snapshot's signers signed (checked here).
    pub fn accept_merkle_proof(
        &mut self,
        walk: &Walk,
        client_version: Option<u64>,
    ) -> Result<(), Error> {
        let root = self
            .merkle
            .as_ref()
            .ok_or(Error::Order("the trusted snapshot has no Merkle tree"))?;
        if walk.root() != root {
            return Err(Error::Order(
                "the Merkle walk does not start at the trusted snapshot's root",
            ));
        }
        let role = walk.role();
        let meta = match walk.result() {
            None => return Err(Error::Order("the Merkle walk is not over")),
            Some(Outcome::Absent) => {
                return Err(Error::MissingMeta {
                    role: role.to_owned(),
                })
            }
            Some(Outcome::Found(meta)) => meta.clone(),
        };
        if let Some(trusted) = client_version {
            if meta.version < trusted {
                return Err(Error::Rollback {
                    role: role.to_owned(),
                    trusted,
                    got: meta.version,
                });
            }
        }
        self.proven.insert(role.to_owned(), meta);
        Ok(())
    }

    /// Whether `role` has trusted targets metadata.
    pub fn has_targets(&self, role: &str) -> bool {
        self.targets.contains_key(role)
    }
}

#[cfg(test)]
pub(crate) mod tests;
