//! Test doubles shared by unit tests: a source serving a map of files in the standard
//! layout (recording every request) and a map store. Unit-test fixtures, not a registry.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::source::{Fetched, MetadataRequest, RepoSource, SourceError, TargetRequest};
use crate::store::{StoreError, TrustedStore};
use crate::trusted::tests::fixture::Fixture;

/// Serves `files[name][attempt]`; names as in the standard layout.
#[derive(Default)]
pub(crate) struct MapSource {
    pub files: Mutex<BTreeMap<String, Vec<Fetched>>>,
    pub targets: Mutex<BTreeMap<String, Vec<u8>>>,
    pub log: Mutex<Vec<(String, Option<u64>)>>,
    /// Snapshot Merkle nodes by sha256 (docs/oci-mapping.md §11).
    pub nodes: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MapSource {
    pub fn put(&self, name: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(
            name.to_owned(),
            vec![Fetched {
                bytes,
                claimed_version: None,
            }],
        );
    }
    pub fn candidates(&self, name: &str, candidates: Vec<Fetched>) {
        self.files
            .lock()
            .unwrap()
            .insert(name.to_owned(), candidates);
    }
    pub fn take_log(&self) -> Vec<(String, Option<u64>)> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
    /// Publish the fixture as a repository with consistent snapshots.
    pub fn publish(&self, f: &Fixture) {
        self.put("timestamp.json", f.timestamp_bytes());
        self.put(
            &format!("{}.snapshot.json", f.snapshot.version),
            f.snapshot_bytes(),
        );
        for (role, t) in &f.targets {
            self.put(&format!("{}.{role}.json", t.version), f.targets_bytes(role));
        }
    }
    /// Publish the fixture with a snapshot Merkle tree: the snapshot lists only
    /// `targets.json` and signs the root of a tree over the delegated roles (with their
    /// lengths and sha256). Returns the tree.
    pub fn publish_merkle(&self, f: &mut Fixture) -> crate::merkle::Tree {
        use crate::merkle::{Tree, FIELD};
        let mut roles = BTreeMap::new();
        for (role, t) in &f.targets {
            if role != "targets" {
                let bytes = f.targets_bytes(role);
                let mut m = crate::metadata::MetaFile::new(t.version);
                m.length = Some(bytes.len() as u64);
                m.hashes = Some(BTreeMap::from([(
                    "sha256".to_owned(),
                    crate::crypto::hash::digest("sha256", &bytes).unwrap(),
                )]));
                roles.insert(role.clone(), m);
            }
        }
        let tree = Tree::build(&roles).unwrap();
        f.snapshot.meta.retain(|k, _| k == "targets.json");
        f.snapshot
            .extra
            .insert(FIELD.to_owned(), serde_json::to_value(&tree.root).unwrap());
        let mut nodes = self.nodes.lock().unwrap();
        for n in &tree.nodes {
            nodes.insert(n.sha256.clone(), n.bytes.clone());
        }
        drop(nodes);
        self.publish(f);
        tree
    }
    pub fn publish_root(&self, f: &Fixture) {
        self.put(&format!("{}.root.json", f.root.version), f.root_bytes());
    }
}

impl RepoSource for MapSource {
    async fn fetch_metadata(
        &self,
        req: &MetadataRequest<'_>,
    ) -> Result<Option<Fetched>, SourceError> {
        if req.attempt == 0 {
            self.log
                .lock()
                .unwrap()
                .push((req.role.to_owned(), req.version));
        }
        let name = match req.version {
            Some(v) => format!("{v}.{}.json", req.role),
            None => format!("{}.json", req.role),
        };
        let files = self.files.lock().unwrap();
        let Some(found) = files.get(&name).and_then(|c| c.get(req.attempt as usize)) else {
            return Ok(None);
        };
        if found.bytes.len() as u64 > req.max_len {
            return Err(SourceError::TooLarge {
                what: name,
                max_len: req.max_len,
            });
        }
        Ok(Some(found.clone()))
    }

    async fn fetch_merkle_node(
        &self,
        req: &crate::merkle::NodeRequest,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        self.log
            .lock()
            .unwrap()
            .push((format!("merkle:{}", &req.sha256[..8]), None));
        Ok(self.nodes.lock().unwrap().get(&req.sha256).cloned())
    }

    async fn fetch_target(&self, req: &TargetRequest<'_>) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(self.targets.lock().unwrap().get(req.path).cloned())
    }
}

#[derive(Default)]
pub(crate) struct MapStore {
    pub files: Mutex<BTreeMap<String, Vec<u8>>>,
    pub roots: Mutex<BTreeMap<u64, Vec<u8>>>,
}

impl TrustedStore for MapStore {
    async fn load(&self, role: &str, _max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.files.lock().unwrap().get(role).cloned())
    }
    async fn store(&self, role: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.files
            .lock()
            .unwrap()
            .insert(role.to_owned(), bytes.to_vec());
        Ok(())
    }
    async fn remove(&self, role: &str) -> Result<(), StoreError> {
        self.files.lock().unwrap().remove(role);
        Ok(())
    }
    async fn load_root(&self, version: u64, _max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.roots.lock().unwrap().get(&version).cloned())
    }
    async fn store_root(&self, version: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.roots.lock().unwrap().insert(version, bytes.to_vec());
        Ok(())
    }
}

impl RepoSource for &MapSource {
    async fn fetch_metadata(
        &self,
        req: &MetadataRequest<'_>,
    ) -> Result<Option<Fetched>, SourceError> {
        (**self).fetch_metadata(req).await
    }
    async fn fetch_merkle_node(
        &self,
        req: &crate::merkle::NodeRequest,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        (**self).fetch_merkle_node(req).await
    }
    async fn fetch_target(&self, req: &TargetRequest<'_>) -> Result<Option<Vec<u8>>, SourceError> {
        (**self).fetch_target(req).await
    }
}

impl TrustedStore for &MapStore {
    async fn load(&self, role: &str, max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).load(role, max_len).await
    }
    async fn store(&self, role: &str, bytes: &[u8]) -> Result<(), StoreError> {
        (**self).store(role, bytes).await
    }
    async fn remove(&self, role: &str) -> Result<(), StoreError> {
        (**self).remove(role).await
    }
    async fn load_root(&self, version: u64, max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).load_root(version, max_len).await
    }
    async fn store_root(&self, version: u64, bytes: &[u8]) -> Result<(), StoreError> {
        (**self).store_root(version, bytes).await
    }
}
