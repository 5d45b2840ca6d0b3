//! An in-memory repository to create and edit: the typed roles, key management, targets,
//! delegations (explicit and succinct hash bins), and signing that keeps snapshot and
//! timestamp in step with what was signed.
//!
//! The usual edit is: change roles, [`Repository::bump`] the ones that changed, then sign
//! bottom-up: [`Repository::sign_targets`] for each changed targets role (it records the new
//! version in snapshot), [`Repository::sign_snapshot`] (records it in timestamp),
//! [`Repository::sign_timestamp`]. Root changes are signed with [`Repository::sign_root`] by
//! the old and the new root keys. Other key holders add signatures to the bytes with
//! [`crate::editor::add_signature`].
//!
//! ```
//! use ocituf_tuf::crypto::{KeyKind, PrivateKey, Signer};
//! use ocituf_tuf::metadata::{DelegatedRole, TargetFile};
//! use ocituf_tuf::{Repository, TrustedSet};
//! use time::{Duration, OffsetDateTime};
//!
//! let now = OffsetDateTime::now_utc();
//! let [root, timestamp, snapshot, targets, team] =
//!     [(); 5].map(|()| PrivateKey::generate(KeyKind::Ed25519).unwrap());
//! let mut repo = Repository::new(now + Duration::days(365));
//! for (role, key) in [("root", &root), ("timestamp", &timestamp), ("snapshot", &snapshot), ("targets", &targets)] {
//!     repo.add_signer_key(role, key)?;
//! }
//! let delegation = DelegatedRole::with_paths("team", vec![team.key_id().clone()], 1, &["acme/*"]);
//! repo.delegate("targets", delegation, &[(team.key_id().clone(), team.public_key().clone())])?;
//! repo.add_target("team", "acme/app:1.4", TargetFile::from_data(b"manifest", &["sha256"])?)?;
//!
//! // Sign bottom-up: each signature records the new version in the parent.
//! let team_bytes = repo.sign_targets("team", &[&team])?;
//! let targets_bytes = repo.sign_targets("targets", &[&targets])?;
//! let snapshot_bytes = repo.sign_snapshot(&[&snapshot])?;
//! let timestamp_bytes = repo.sign_timestamp(&[&timestamp])?;
//! let root_bytes = repo.sign_root(&[&root])?;
//!
//! let mut trusted = TrustedSet::new(&root_bytes)?;
//! trusted.update_timestamp(&timestamp_bytes, now)?;
//! trusted.update_snapshot(&snapshot_bytes, now, ocituf_tuf::trusted::Origin::Remote)?;
//! trusted.update_targets(&targets_bytes, now)?;
//! trusted.update_delegated_targets(&team_bytes, "team", "targets", now)?;
//! # Ok::<(), ocituf_tuf::Error>(())
//! ```
//!
//! This module does not verify what it loads (verify with [`crate::trusted::TrustedSet`]
//! first) and does not store or publish anything: it returns bytes.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::crypto::{hash, KeyId, PublicKey, Signer};
use crate::editor::sign;
use crate::error::Error;
use crate::metadata::{
    invalid, DelegatedRole, Delegations, Envelope, MetaFile, Role, RoleKeys, Root, Snapshot,
    SuccinctRoles, Targets, Timestamp, SPEC_VERSION, TOP_LEVEL_ROLES,
};

/// The most succinct hash bin bits [`Repository::delegate_hash_bins`] creates (65,536 bins).
pub const MAX_EDITABLE_BIT_LENGTH: u32 = 16;

/// The metadata of a repository, being edited.
#[derive(Debug, Clone)]
pub struct Repository {
    pub root: Root,
    pub timestamp: Timestamp,
    pub snapshot: Snapshot,
    /// `targets` and every delegated targets role, by name.
    pub targets: BTreeMap<String, Targets>,
    /// Whether snapshot and timestamp list length and sha256 of the files they name
    /// (TUF allows both; hashes let content-addressed stores fetch by digest).
    pub meta_hashes: bool,
}

fn not_found(role: &str) -> Error {
    invalid(role, "no such role in this repository")
}

impl Repository {
    /// A new repository: every role at version 1 with `expires`, no keys (add them with
    /// [`Self::add_key`]), consistent snapshots on, empty targets.
    pub fn new(expires: OffsetDateTime) -> Self {
        let roles = TOP_LEVEL_ROLES
            .iter()
            .map(|r| ((*r).to_owned(), RoleKeys::new(Vec::new(), 1)))
            .collect();
        Repository {
            root: Root {
                spec_version: SPEC_VERSION.to_owned(),
                version: 1,
                expires,
                consistent_snapshot: Some(true),
                keys: BTreeMap::new(),
                roles,
                extra: BTreeMap::new(),
            },
            timestamp: Timestamp {
                spec_version: SPEC_VERSION.to_owned(),
                version: 1,
                expires,
                meta: BTreeMap::from([("snapshot.json".to_owned(), MetaFile::new(1))]),
                extra: BTreeMap::new(),
            },
            snapshot: Snapshot {
                spec_version: SPEC_VERSION.to_owned(),
                version: 1,
                expires,
                meta: BTreeMap::from([("targets.json".to_owned(), MetaFile::new(1))]),
                extra: BTreeMap::new(),
            },
            targets: BTreeMap::from([("targets".to_owned(), new_targets(expires))]),
            meta_hashes: false,
        }
    }

    /// Load existing metadata files to edit them (signatures are dropped: they are re-made
    /// when signing). The caller verified them.
    ///
    /// # Errors
    /// Parsing errors.
    pub fn from_files(
        root: &[u8],
        timestamp: &[u8],
        snapshot: &[u8],
        targets: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Self, Error> {
        fn typed<R: Role>(name: &str, bytes: &[u8]) -> Result<R, Error> {
            R::from_signed(&Envelope::parse(name, bytes)?.signed)
        }
        let timestamp: Timestamp = typed("timestamp", timestamp)?;
        let meta_hashes = timestamp.snapshot_meta()?.hashes.is_some();
        let mut roles = BTreeMap::new();
        for (name, bytes) in targets {
            roles.insert(name.clone(), typed::<Targets>(name, bytes)?);
        }
        Ok(Repository {
            root: typed("root", root)?,
            timestamp,
            snapshot: typed("snapshot", snapshot)?,
            targets: roles,
            meta_hashes,
        })
    }

    /// Targets metadata of a targets role.
    ///
    /// # Errors
    /// [`Error::Invalid`] if there is no such role.
    pub fn targets_mut(&mut self, role: &str) -> Result<&mut Targets, Error> {
        self.targets.get_mut(role).ok_or_else(|| not_found(role))
    }

    /// The role that delegates `role` (`root` for top-level roles).
    fn delegator_of(&self, role: &str) -> Option<String> {
        if TOP_LEVEL_ROLES.contains(&role) {
            return Some("root".to_owned());
        }
        self.targets
            .iter()
            .find(|(_, t)| {
                t.delegations
                    .as_ref()
                    .is_some_and(|d| d.role_keys(role).is_some())
            })
            .map(|(name, _)| name.clone())
    }

    /// Authorise a key for a top-level role or an explicitly delegated role.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown role or a succinct bin (bins share their keys: use
    /// [`Self::delegate_hash_bins`]).
    pub fn add_key(&mut self, role: &str, keyid: &KeyId, key: &PublicKey) -> Result<(), Error> {
        if TOP_LEVEL_ROLES.contains(&role) {
            self.root.keys.insert(keyid.clone(), key.clone());
            let r = self
                .root
                .roles
                .get_mut(role)
                .ok_or_else(|| not_found(role))?;
            if !r.keyids.contains(keyid) {
                r.keyids.push(keyid.clone());
            }
            return Ok(());
        }
        let delegations = self.delegations_of_role_mut(role)?;
        delegations.keys.insert(keyid.clone(), key.clone());
        let r = explicit_role_mut(delegations, role)?;
        if !r.keyids.contains(keyid) {
            r.keyids.push(keyid.clone());
        }
        Ok(())
    }

    /// Authorise a signer's key for a role.
    ///
    /// # Errors
    /// As [`Self::add_key`].
    pub fn add_signer_key(&mut self, role: &str, signer: &dyn Signer) -> Result<(), Error> {
        self.add_key(role, signer.key_id(), signer.public_key())
    }

    /// Remove a key from a role; the key itself is dropped once no role uses it.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown role.
    pub fn revoke_key(&mut self, role: &str, keyid: &KeyId) -> Result<(), Error> {
        if TOP_LEVEL_ROLES.contains(&role) {
            let r = self
                .root
                .roles
                .get_mut(role)
                .ok_or_else(|| not_found(role))?;
            r.keyids.retain(|k| k != keyid);
            if !self.root.roles.values().any(|r| r.keyids.contains(keyid)) {
                self.root.keys.remove(keyid);
            }
            return Ok(());
        }
        let delegations = self.delegations_of_role_mut(role)?;
        explicit_role_mut(delegations, role)?
            .keyids
            .retain(|k| k != keyid);
        let used = delegations
            .roles
            .iter()
            .flatten()
            .any(|r| r.keyids.contains(keyid))
            || delegations
                .succinct_roles
                .as_ref()
                .is_some_and(|s| s.keyids.contains(keyid));
        if !used {
            delegations.keys.remove(keyid);
        }
        Ok(())
    }

    /// Set the threshold of a top-level or explicitly delegated role.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown role or a zero threshold.
    pub fn set_threshold(&mut self, role: &str, threshold: u32) -> Result<(), Error> {
        if threshold == 0 {
            return Err(invalid(role, "threshold must be at least 1"));
        }
        if TOP_LEVEL_ROLES.contains(&role) {
            self.root
                .roles
                .get_mut(role)
                .ok_or_else(|| not_found(role))?
                .threshold = threshold;
            return Ok(());
        }
        let delegations = self.delegations_of_role_mut(role)?;
        explicit_role_mut(delegations, role)?.threshold = threshold;
        Ok(())
    }

    fn delegations_of_role_mut(&mut self, role: &str) -> Result<&mut Delegations, Error> {
        let delegator = self.delegator_of(role).ok_or_else(|| not_found(role))?;
        self.targets
            .get_mut(&delegator)
            .and_then(|t| t.delegations.as_mut())
            .ok_or_else(|| not_found(role))
    }

    /// Delegate `role.name` from `delegator` with `keys`, and create its (empty) targets
    /// metadata, listed in snapshot, with the delegator's expiry. Replaces an earlier
    /// delegation of the same name by this delegator.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the delegator is unknown or uses succinct bins.
    pub fn delegate(
        &mut self,
        delegator: &str,
        role: DelegatedRole,
        keys: &[(KeyId, PublicKey)],
    ) -> Result<(), Error> {
        let parent = self.targets_mut(delegator)?;
        let expires = parent.expires;
        let delegations = parent.delegations.get_or_insert_with(|| Delegations {
            keys: BTreeMap::new(),
            roles: Some(Vec::new()),
            succinct_roles: None,
            extra: BTreeMap::new(),
        });
        let roles = delegations
            .roles
            .as_mut()
            .ok_or_else(|| invalid(delegator, "delegates to succinct hash bins"))?;
        for (id, key) in keys {
            delegations.keys.insert(id.clone(), key.clone());
        }
        let name = role.name.clone();
        roles.retain(|r| r.name != name);
        roles.push(role);
        self.add_role_metadata(&name, expires);
        Ok(())
    }

    fn add_role_metadata(&mut self, name: &str, expires: OffsetDateTime) {
        if !self.targets.contains_key(name) {
            self.targets.insert(name.to_owned(), new_targets(expires));
            self.snapshot
                .meta
                .insert(format!("{name}.json"), MetaFile::new(1));
        }
    }

    /// Delegate every target of `delegator` to `2^bit_length` succinct hash bins (TAP 15)
    /// signed by `keys` with `threshold`; creates the empty metadata of every bin. Returns
    /// the bin names.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the delegator is unknown, already delegates to named roles, or
    /// `bit_length` is not 1 to [`MAX_EDITABLE_BIT_LENGTH`] (TAP 15 allows 32, but every
    /// bin is a metadata file this editor holds in memory).
    pub fn delegate_hash_bins(
        &mut self,
        delegator: &str,
        name_prefix: &str,
        bit_length: u32,
        keys: &[(KeyId, PublicKey)],
        threshold: u32,
    ) -> Result<Vec<String>, Error> {
        if bit_length > MAX_EDITABLE_BIT_LENGTH {
            return Err(invalid(
                delegator,
                format!("{bit_length} bits of hash bins is more than this editor can hold"),
            ));
        }
        let bins = SuccinctRoles {
            keyids: keys.iter().map(|(id, _)| id.clone()).collect(),
            threshold,
            bit_length,
            name_prefix: name_prefix.to_owned(),
            extra: BTreeMap::new(),
        };
        let parent = self.targets_mut(delegator)?;
        if parent
            .delegations
            .as_ref()
            .is_some_and(|d| d.roles.as_ref().is_some_and(|r| !r.is_empty()))
        {
            return Err(invalid(delegator, "already delegates to named roles"));
        }
        let expires = parent.expires;
        let delegations = Delegations {
            keys: keys.iter().cloned().collect(),
            roles: None,
            succinct_roles: Some(bins.clone()),
            extra: BTreeMap::new(),
        };
        delegations.validate()?;
        parent.delegations = Some(delegations);
        let names: Vec<String> = (0..bins.bin_count()).map(|b| bins.bin_name(b)).collect();
        for name in &names {
            self.add_role_metadata(name, expires);
        }
        Ok(names)
    }

    /// Remove the delegation of `role` by `delegator`, its metadata and its snapshot entry.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the delegator is unknown.
    pub fn undelegate(&mut self, delegator: &str, role: &str) -> Result<(), Error> {
        let parent = self.targets_mut(delegator)?;
        if let Some(d) = parent.delegations.as_mut() {
            if let Some(roles) = d.roles.as_mut() {
                roles.retain(|r| r.name != role);
                let used: Vec<KeyId> = roles.iter().flat_map(|r| r.keyids.clone()).collect();
                d.keys.retain(|id, _| used.contains(id));
            }
        }
        self.targets.remove(role);
        self.snapshot.meta.remove(&format!("{role}.json"));
        Ok(())
    }

    /// Add or replace a target in a targets role.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown role.
    pub fn add_target(
        &mut self,
        role: &str,
        path: &str,
        file: crate::metadata::TargetFile,
    ) -> Result<(), Error> {
        self.targets_mut(role)?
            .targets
            .insert(path.to_owned(), file);
        Ok(())
    }

    /// Remove a target; returns it if it was there.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown role.
    pub fn remove_target(
        &mut self,
        role: &str,
        path: &str,
    ) -> Result<Option<crate::metadata::TargetFile>, Error> {
        Ok(self.targets_mut(role)?.targets.remove(path))
    }

    /// Increment the version of a role and set its expiry.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown role.
    pub fn bump(&mut self, role: &str, expires: OffsetDateTime) -> Result<(), Error> {
        let (version, exp) = match role {
            "root" => (&mut self.root.version, &mut self.root.expires),
            "timestamp" => (&mut self.timestamp.version, &mut self.timestamp.expires),
            "snapshot" => (&mut self.snapshot.version, &mut self.snapshot.expires),
            _ => {
                let t = self.targets_mut(role)?;
                (&mut t.version, &mut t.expires)
            }
        };
        *version += 1;
        *exp = expires;
        Ok(())
    }

    /// Sign a targets role and record its version (and length and hashes if
    /// [`Self::meta_hashes`]) in snapshot.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown role, signing errors.
    pub fn sign_targets(&mut self, role: &str, signers: &[&dyn Signer]) -> Result<Vec<u8>, Error> {
        let targets = self.targets.get(role).ok_or_else(|| not_found(role))?;
        let bytes = sign(targets, signers)?;
        let meta = self.meta_for(targets.version, &bytes);
        self.snapshot.meta.insert(format!("{role}.json"), meta);
        Ok(bytes)
    }

    /// Sign snapshot and record it in timestamp.
    ///
    /// # Errors
    /// Signing errors.
    pub fn sign_snapshot(&mut self, signers: &[&dyn Signer]) -> Result<Vec<u8>, Error> {
        let bytes = sign(&self.snapshot, signers)?;
        let meta = self.meta_for(self.snapshot.version, &bytes);
        self.timestamp.meta.insert("snapshot.json".to_owned(), meta);
        Ok(bytes)
    }

    /// Sign timestamp.
    ///
    /// # Errors
    /// Signing errors.
    pub fn sign_timestamp(&self, signers: &[&dyn Signer]) -> Result<Vec<u8>, Error> {
        sign(&self.timestamp, signers)
    }

    /// Sign root. After a key rotation, sign with a threshold of the old root keys *and* of
    /// the new ones (or collect signatures with [`crate::editor::add_signature`]).
    ///
    /// # Errors
    /// Signing errors.
    pub fn sign_root(&self, signers: &[&dyn Signer]) -> Result<Vec<u8>, Error> {
        sign(&self.root, signers)
    }

    fn meta_for(&self, version: u64, bytes: &[u8]) -> MetaFile {
        let mut meta = MetaFile::new(version);
        if self.meta_hashes {
            meta.length = Some(bytes.len() as u64);
            if let Some(digest) = hash::digest("sha256", bytes) {
                meta.hashes = Some(BTreeMap::from([("sha256".to_owned(), digest)]));
            }
        }
        meta
    }
}

fn new_targets(expires: OffsetDateTime) -> Targets {
    Targets {
        spec_version: SPEC_VERSION.to_owned(),
        version: 1,
        expires,
        targets: BTreeMap::new(),
        delegations: None,
        extra: BTreeMap::new(),
    }
}

fn explicit_role_mut<'a>(
    delegations: &'a mut Delegations,
    role: &str,
) -> Result<&'a mut DelegatedRole, Error> {
    delegations
        .roles
        .as_mut()
        .and_then(|roles| roles.iter_mut().find(|r| r.name == role))
        .ok_or_else(|| invalid(role, "is a succinct hash bin: its keys are the bins' keys"))
}

impl DelegatedRole {
    /// A delegation by path patterns.
    pub fn with_paths(name: &str, keyids: Vec<KeyId>, threshold: u32, paths: &[&str]) -> Self {
        DelegatedRole {
            name: name.to_owned(),
            keyids,
            threshold,
            terminating: false,
            paths: Some(paths.iter().map(|p| (*p).to_owned()).collect()),
            path_hash_prefixes: None,
            extra: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests;
