//! A signed TUF repository built in code (public API of `ocituf-tuf`, deterministic keys, a
//! fixed clock) and published through the `Publisher`, as the CLI and the online signer do.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ocituf_oci::{ArtifactStore, Digest, Publisher};
use ocituf_tuf::crypto::{PrivateKey, Signer};
use ocituf_tuf::editor;
use ocituf_tuf::metadata::{
    DelegatedRole, Delegations, MetaFile, Role, RoleKeys, Root, Snapshot, TargetFile, Targets,
    Timestamp,
};
use ocituf_tuf::{StoreError, TrustedStore};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// The fixed "now" of the round-trip tests.
pub const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
pub const SPEC_VERSION: &str = "1.0.31";
/// The delegated role that signs `acme/app`.
pub const TEAM: &str = "team-app";

fn key(seed: u8) -> PrivateKey {
    PrivateKey::ed25519_from_seed([seed; 32]).expect("ed25519 seed")
}

fn expires() -> OffsetDateTime {
    NOW + Duration::days(30)
}

fn sign<R: Role>(role: &R, key: &PrivateKey) -> Vec<u8> {
    editor::sign(role, &[key as &dyn Signer]).expect("sign")
}

fn meta_of(version: u64, bytes: &[u8]) -> MetaFile {
    let mut m = MetaFile::new(version);
    m.length = Some(bytes.len() as u64);
    m.hashes = Some(BTreeMap::from([(
        "sha256".to_owned(),
        Digest::of(bytes).hex().to_owned(),
    )]));
    m
}

fn empty_targets() -> Targets {
    Targets {
        spec_version: SPEC_VERSION.into(),
        version: 1,
        expires: expires(),
        targets: BTreeMap::new(),
        delegations: None,
        extra: BTreeMap::new(),
    }
}

/// A root of trust: root, timestamp, snapshot, targets delegating `acme/app:*` and
/// `acme/app@*` to [`TEAM`].
pub struct Repo {
    pub root: Root,
    pub timestamp: Timestamp,
    pub snapshot: Snapshot,
    pub targets: Targets,
    pub team: Targets,
    keys: BTreeMap<&'static str, PrivateKey>,
    /// Bytes of the last published timestamp, snapshot, targets and team role.
    pub published: BTreeMap<&'static str, Vec<u8>>,
}

impl Repo {
    pub fn new() -> Self {
        let keys = BTreeMap::from([
            ("root", key(1)),
            ("timestamp", key(2)),
            ("snapshot", key(3)),
            ("targets", key(4)),
            (TEAM, key(5)),
        ]);
        let mut root = Root {
            spec_version: SPEC_VERSION.into(),
            version: 1,
            expires: NOW + Duration::days(365),
            consistent_snapshot: Some(true),
            keys: BTreeMap::new(),
            roles: BTreeMap::new(),
            extra: BTreeMap::new(),
        };
        for role in ["root", "timestamp", "snapshot", "targets"] {
            let k = &keys[role];
            root.keys.insert(k.key_id().clone(), k.public_key().clone());
            root.roles
                .insert(role.into(), RoleKeys::new(vec![k.key_id().clone()], 1));
        }
        let team_key = &keys[TEAM];
        let mut targets = empty_targets();
        targets.delegations = Some(Delegations {
            keys: BTreeMap::from([(team_key.key_id().clone(), team_key.public_key().clone())]),
            roles: Some(vec![DelegatedRole {
                name: TEAM.into(),
                keyids: vec![team_key.key_id().clone()],
                threshold: 1,
                terminating: true,
                paths: Some(vec!["acme/app:*".into(), "acme/app@*".into()]),
                path_hash_prefixes: None,
                extra: BTreeMap::new(),
            }]),
            succinct_roles: None,
            extra: BTreeMap::new(),
        });
        Self {
            root,
            timestamp: Timestamp {
                spec_version: SPEC_VERSION.into(),
                version: 0,
                expires: expires(),
                meta: BTreeMap::new(),
                extra: BTreeMap::new(),
            },
            snapshot: Snapshot {
                spec_version: SPEC_VERSION.into(),
                version: 0,
                expires: expires(),
                meta: BTreeMap::new(),
                extra: BTreeMap::new(),
            },
            targets,
            team: empty_targets(),
            keys,
            published: BTreeMap::new(),
        }
    }

    pub fn root_bytes(&self) -> Vec<u8> {
        sign(&self.root, &self.keys["root"])
    }

    /// Root `version`, well formed, signed by a key the trusted root does not know.
    pub fn root_signed_by_attacker(&self, version: u64) -> Vec<u8> {
        let mut root = self.root.clone();
        root.version = version;
        sign(&root, &key(99))
    }

    /// Sign `acme/app:TAG` and `acme/app@sha256:…` (docs/oci-mapping.md 7) into the team role.
    pub fn sign_image(&mut self, tag: &str, manifest: &[u8], media_type: &str) {
        let mut file = TargetFile::from_data(manifest, &["sha256"]).expect("hash");
        file.custom = Some(serde_json::json!({ "oci": { "mediaType": media_type } }));
        let digest = Digest::of(manifest);
        self.team
            .targets
            .insert(format!("acme/app:{tag}"), file.clone());
        self.team.targets.insert(format!("acme/app@{digest}"), file);
        self.team.version += 1;
    }

    /// Publish root 1 (once), the team role, targets, snapshot and timestamp.
    pub async fn publish<A: ArtifactStore>(&mut self, p: &Publisher<A>) -> anyhow::Result<()> {
        if !self.published.contains_key("root") {
            let root = self.root_bytes();
            p.push("root", &root, None).await?;
            self.published.insert("root", root);
        }
        let team = sign(&self.team, &self.keys[TEAM]);
        let targets = sign(&self.targets, &self.keys["targets"]);
        self.snapshot.version += 1;
        self.snapshot
            .meta
            .insert(format!("{TEAM}.json"), meta_of(self.team.version, &team));
        self.snapshot.meta.insert(
            "targets.json".into(),
            meta_of(self.targets.version, &targets),
        );
        let snapshot = sign(&self.snapshot, &self.keys["snapshot"]);
        self.timestamp.version += 1;
        self.timestamp.meta.insert(
            "snapshot.json".into(),
            meta_of(self.snapshot.version, &snapshot),
        );
        let timestamp = sign(&self.timestamp, &self.keys["timestamp"]);
        p.push(TEAM, &team, None).await?;
        p.push("targets", &targets, None).await?;
        p.push("snapshot", &snapshot, None).await?;
        p.push("timestamp", &timestamp, None).await?;
        self.published.insert("team", team);
        self.published.insert("targets", targets);
        self.published.insert("snapshot", snapshot);
        self.published.insert("timestamp", timestamp);
        Ok(())
    }
}

/// The client's cache: a map (the updater's `TrustedStore`).
#[derive(Default)]
pub struct MapStore {
    files: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MapStore {
    pub fn get(&self, role: &str) -> Option<Vec<u8>> {
        self.files.lock().ok()?.get(role).cloned()
    }
}

impl TrustedStore for &MapStore {
    async fn load(&self, role: &str, _max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get(role))
    }
    async fn store(&self, role: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if let Ok(mut f) = self.files.lock() {
            f.insert(role.to_owned(), bytes.to_vec());
        }
        Ok(())
    }
    async fn remove(&self, role: &str) -> Result<(), StoreError> {
        if let Ok(mut f) = self.files.lock() {
            f.remove(role);
        }
        Ok(())
    }
}
