//! A repository built in code with deterministic keys and a fixed clock.

use std::collections::BTreeMap;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::crypto::{hash, KeyId, PrivateKey, Signer};
use crate::editor;
use crate::metadata::{
    DelegatedRole, Delegations, MetaFile, Role, RoleKeys, Root, Snapshot, TargetFile, Targets,
    Timestamp, SPEC_VERSION,
};

/// The fixed "now" of every test.
pub const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

pub fn key(seed: u8) -> PrivateKey {
    PrivateKey::ed25519_from_seed([seed; 32]).unwrap()
}

pub struct Fixture {
    pub root: Root,
    pub timestamp: Timestamp,
    pub snapshot: Snapshot,
    pub targets: BTreeMap<String, Targets>,
    /// Who signs each role.
    pub signers: BTreeMap<String, Vec<PrivateKey>>,
    seed: u8,
}

fn expires() -> OffsetDateTime {
    NOW + Duration::days(365)
}

pub fn empty_targets() -> Targets {
    Targets {
        spec_version: SPEC_VERSION.into(),
        version: 1,
        expires: expires(),
        targets: BTreeMap::new(),
        delegations: None,
        extra: BTreeMap::new(),
    }
}

impl Fixture {
    pub fn new() -> Self {
        let mut f = Fixture {
            root: Root {
                spec_version: SPEC_VERSION.into(),
                version: 1,
                expires: expires(),
                consistent_snapshot: Some(true),
                keys: BTreeMap::new(),
                roles: BTreeMap::new(),
                extra: BTreeMap::new(),
            },
            timestamp: Timestamp {
                spec_version: SPEC_VERSION.into(),
                version: 1,
                expires: expires(),
                meta: BTreeMap::from([("snapshot.json".into(), MetaFile::new(1))]),
                extra: BTreeMap::new(),
            },
            snapshot: Snapshot {
                spec_version: SPEC_VERSION.into(),
                version: 1,
                expires: expires(),
                meta: BTreeMap::from([("targets.json".into(), MetaFile::new(1))]),
                extra: BTreeMap::new(),
            },
            targets: BTreeMap::from([("targets".into(), empty_targets())]),
            signers: BTreeMap::new(),
            seed: 1,
        };
        for role in ["root", "timestamp", "snapshot", "targets"] {
            let k = f.new_key();
            f.set_top_role_keys(role, vec![k], 1);
        }
        f
    }

    pub fn new_key(&mut self) -> PrivateKey {
        self.seed += 1;
        key(self.seed)
    }

    /// Replace the keys of a top-level role in root (old keys stay in `keys` unused).
    pub fn set_top_role_keys(&mut self, role: &str, keys: Vec<PrivateKey>, threshold: u32) {
        let ids: Vec<KeyId> = keys.iter().map(|k| k.key_id().clone()).collect();
        for k in &keys {
            self.root
                .keys
                .insert(k.key_id().clone(), k.public_key().clone());
        }
        self.root
            .roles
            .insert(role.into(), RoleKeys::new(ids, threshold));
        self.signers.insert(role.into(), keys);
    }

    pub fn sign_with<R: Role>(role: &R, keys: &[&PrivateKey]) -> Vec<u8> {
        let signers: Vec<&dyn Signer> = keys.iter().map(|k| *k as &dyn Signer).collect();
        editor::sign(role, &signers).unwrap()
    }

    fn signers_of(&self, role: &str) -> Vec<&PrivateKey> {
        self.signers.get(role).unwrap().iter().collect()
    }

    pub fn root_bytes(&self) -> Vec<u8> {
        Self::sign_with(&self.root, &self.signers_of("root"))
    }

    pub fn timestamp_bytes(&self) -> Vec<u8> {
        Self::sign_with(&self.timestamp, &self.signers_of("timestamp"))
    }

    pub fn snapshot_bytes(&self) -> Vec<u8> {
        Self::sign_with(&self.snapshot, &self.signers_of("snapshot"))
    }

    pub fn targets_bytes(&self, role: &str) -> Vec<u8> {
        Self::sign_with(&self.targets[role], &self.signers_of(role))
    }

    /// Bump a targets role and list its new version in snapshot.
    pub fn bump_targets(&mut self, role: &str) {
        let t = self.targets.get_mut(role).unwrap();
        t.version += 1;
        let v = t.version;
        self.snapshot
            .meta
            .insert(format!("{role}.json"), MetaFile::new(v));
    }

    /// Bump snapshot and name it in timestamp; bump timestamp.
    pub fn bump_snapshot(&mut self) {
        self.snapshot.version += 1;
        self.timestamp
            .meta
            .insert("snapshot.json".into(), MetaFile::new(self.snapshot.version));
        self.timestamp.version += 1;
    }

    /// Put length and sha256 of the current snapshot bytes into timestamp.
    pub fn hash_snapshot_into_timestamp(&mut self, bytes: &[u8]) {
        let m = self.timestamp.meta.get_mut("snapshot.json").unwrap();
        m.length = Some(bytes.len() as u64);
        m.hashes = Some(BTreeMap::from([(
            "sha256".into(),
            hash::digest("sha256", bytes).unwrap(),
        )]));
    }

    pub fn add_target(&mut self, role: &str, path: &str, data: &[u8]) {
        let file = TargetFile::from_data(data, &["sha256"]).unwrap();
        self.targets
            .get_mut(role)
            .unwrap()
            .targets
            .insert(path.into(), file);
    }

    /// Delegate `child` from `parent` with a fresh key; `child` gets empty targets listed in
    /// snapshot.
    pub fn delegate(&mut self, parent: &str, child: &str, paths: &[&str], terminating: bool) {
        let k = self.new_key();
        let p = self.targets.get_mut(parent).unwrap();
        let d = p.delegations.get_or_insert_with(|| Delegations {
            keys: BTreeMap::new(),
            roles: Some(Vec::new()),
            succinct_roles: None,
            extra: BTreeMap::new(),
        });
        d.keys.insert(k.key_id().clone(), k.public_key().clone());
        d.roles.get_or_insert_with(Vec::new).push(DelegatedRole {
            name: child.into(),
            keyids: vec![k.key_id().clone()],
            threshold: 1,
            terminating,
            paths: Some(paths.iter().map(|s| (*s).to_owned()).collect()),
            path_hash_prefixes: None,
            extra: BTreeMap::new(),
        });
        self.signers.insert(child.into(), vec![k]);
        self.targets
            .entry(child.into())
            .or_insert_with(empty_targets);
        self.snapshot
            .meta
            .insert(format!("{child}.json"), MetaFile::new(1));
    }

    /// Delegate `child` from `parent` with the key `child` already signs with.
    pub fn delegate_again(&mut self, parent: &str, child: &str, paths: &[&str]) {
        let k = &self.signers[child][0];
        let (id, public) = (k.key_id().clone(), k.public_key().clone());
        let d = self
            .targets
            .get_mut(parent)
            .unwrap()
            .delegations
            .get_or_insert_with(|| Delegations {
                keys: BTreeMap::new(),
                roles: Some(Vec::new()),
                succinct_roles: None,
                extra: BTreeMap::new(),
            });
        d.keys.insert(id.clone(), public);
        d.roles.get_or_insert_with(Vec::new).push(DelegatedRole {
            name: child.into(),
            keyids: vec![id],
            threshold: 1,
            terminating: false,
            paths: Some(paths.iter().map(|s| (*s).to_owned()).collect()),
            path_hash_prefixes: None,
            extra: BTreeMap::new(),
        });
    }
}
