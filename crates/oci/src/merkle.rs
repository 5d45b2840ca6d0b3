//! Snapshot Merkle nodes in an OCI repository (docs/oci-mapping.md §11).
//!
//! Each node of a tree (`ocituf_tuf::merkle`) is a blob whose digest is the sha256 its parent
//! names, so a client fetches it by digest with no listing. What keeps a blob from registry
//! garbage collection is a manifest that references it: every node gets a tiny manifest
//! (artifactType [`NODE_ARTIFACT_TYPE`], its one layer the node, no subject: nodes never
//! lengthen a referrers listing or a fallback index), tagged `ocituf-node-<node sha256>`.
//!
//! Publishing a new tree pushes only the nodes the previous snapshot's tree does not have:
//! the two trees are compared from the root down, and a subtree whose digest did not change
//! is not visited. Signing k roles into a tree costs about k × depth nodes, whatever the
//! number of roles. Nodes are pushed children first, and the snapshot after all of them, so
//! a published snapshot never names a node that is not there.

use std::collections::{BTreeMap, BTreeSet};

use ocituf_tuf::merkle::{inner_children, leaf_roles, Kind, MerkleRoot, Node, Tree};
use serde_json::json;

use crate::mapping::{empty_descriptor, EMPTY_BLOB, MANIFEST_MEDIA_TYPE};
use crate::ocijson::jcs;
use crate::store::{ArtifactStore, Digest};
use crate::Error;

/// `artifactType` of a node's manifest.
pub const NODE_ARTIFACT_TYPE: &str = "application/vnd.ocituf.merkle-node.v1";
/// Layer media type of an inner node.
pub const INNER_MEDIA_TYPE: &str = "application/vnd.ocituf.merkle-inner.v1";
/// Layer media type of a leaf node.
pub const LEAF_MEDIA_TYPE: &str = "application/vnd.ocituf.merkle-leaf.v1+json";
/// Tag prefix of node manifests (the node's sha256 hex follows).
pub const NODE_TAG_PREFIX: &str = "ocituf-node-";

/// The manifest that keeps `node` from garbage collection, and its tag.
pub fn node_manifest(node: &Node) -> (Vec<u8>, String) {
    let media_type = match node.kind {
        Kind::Inner => INNER_MEDIA_TYPE,
        Kind::Leaf => LEAF_MEDIA_TYPE,
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": NODE_ARTIFACT_TYPE,
        "config": empty_descriptor(),
        "layers": [{
            "mediaType": media_type,
            "digest": format!("sha256:{}", node.sha256),
            "size": node.bytes.len(),
        }],
    });
    (jcs(&manifest), format!("{NODE_TAG_PREFIX}{}", node.sha256))
}

/// What [`push_tree`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushedTree {
    /// Nodes pushed (new in this tree).
    pub nodes: usize,
    /// Entries of the previous tree met on the changed paths: role → version. A writer
    /// checks them against the new tree so that it never publishes a rollback.
    pub previous: BTreeMap<String, u64>,
}

/// Push the nodes of `tree` that `previous` (the previous snapshot's tree, in `store`) does
/// not have.
///
/// # Errors
/// Store errors. A previous node that is missing or malformed is not an error: its subtree
/// is pushed whole, as if there were no previous tree there.
pub async fn push_tree<A: ArtifactStore>(
    store: &A,
    tree: &Tree,
    previous: Option<&MerkleRoot>,
) -> Result<PushedTree, Error> {
    let by_sha: BTreeMap<&str, &Node> = tree.nodes.iter().map(|n| (n.sha256.as_str(), n)).collect();
    let mut out = PushedTree::default();
    let mut new_nodes: Vec<&Node> = Vec::new();
    let mut seen = BTreeSet::new();
    let prev = previous.map(|p| (p.kind, p.sha256.clone()));
    let mut stack = vec![(tree.root.kind, tree.root.sha256.clone(), prev, 0usize)];
    while let Some((kind, sha, prev, depth)) = stack.pop() {
        if prev.as_ref() == Some(&(kind, sha.clone())) || !seen.insert(sha.clone()) {
            continue;
        }
        let node = by_sha
            .get(sha.as_str())
            .ok_or_else(|| Error::MalformedManifest {
                what: "a snapshot Merkle tree".to_owned(),
                reason: format!("it names node {sha} that it does not hold"),
            })?;
        new_nodes.push(node);
        let prev_children = match &prev {
            Some((prev_kind, prev_sha)) => {
                previous_children(store, *prev_kind, prev_sha, kind, depth, &mut out).await?
            }
            None => Default::default(),
        };
        if kind == Kind::Inner {
            let children = inner_children(&node.bytes).map_err(|e| Error::MalformedManifest {
                what: "a snapshot Merkle inner node being published".to_owned(),
                reason: e.to_string(),
            })?;
            for (child, prev_child) in children.into_iter().zip(prev_children) {
                if let Some((k, s)) = child {
                    stack.push((k, s, prev_child, depth + 1));
                }
            }
        }
    }
    if !new_nodes.is_empty() {
        store.put_blob(EMPTY_BLOB).await?;
    }
    // Children were discovered after their parents: push in reverse, children first.
    for node in new_nodes.iter().rev() {
        let digest = store.put_blob(&node.bytes).await?;
        if digest.hex() != node.sha256 {
            return Err(Error::DigestMismatch {
                what: format!("snapshot Merkle node stored in {}", store.location()),
                expected: Digest::of(&node.bytes),
                actual: digest,
            });
        }
        let (manifest, tag) = node_manifest(node);
        store
            .put_manifest(MANIFEST_MEDIA_TYPE, &manifest, Some(&tag))
            .await?;
        out.nodes += 1;
    }
    Ok(out)
}

type Children = [Option<(Kind, String)>; 16];

/// The children of the previous tree's node at the same path, for the comparison; a
/// previous leaf's entries are recorded. When the new node is a leaf and the previous one
/// an inner node (roles were removed), the previous subtree's leaves are read whole so
/// that every role it held is checked.
async fn previous_children<A: ArtifactStore>(
    store: &A,
    prev_kind: Kind,
    prev_sha: &str,
    new_kind: Kind,
    depth: usize,
    out: &mut PushedTree,
) -> Result<Children, Error> {
    let mut pending = vec![(prev_kind, prev_sha.to_owned(), depth, true)];
    let mut first: Children = Default::default();
    let mut budget = 4096usize;
    while let Some((kind, sha, d, is_first)) = pending.pop() {
        budget = budget.saturating_sub(1);
        if budget == 0 {
            break;
        }
        let Some(bytes) = fetch_node(store, &sha, kind).await? else {
            continue;
        };
        match kind {
            Kind::Leaf => {
                // The prefix is checked by the client; here any well-formed leaf is read.
                let prefix = leaf_prefix(&bytes).unwrap_or_default();
                if let Ok(roles) = leaf_roles(&bytes, &prefix) {
                    out.previous
                        .extend(roles.into_iter().map(|(r, m)| (r, m.version)));
                }
            }
            Kind::Inner => {
                let Ok(children) = inner_children(&bytes) else {
                    continue;
                };
                if is_first && new_kind == Kind::Inner {
                    first = children;
                } else {
                    for (k, s) in children.into_iter().flatten() {
                        pending.push((k, s, d + 1, false));
                    }
                }
            }
        }
    }
    Ok(first)
}

fn leaf_prefix(bytes: &[u8]) -> Option<String> {
    let v = ocituf_tuf::cjson::parse(bytes).ok()?;
    v.get("prefix")?.as_str().map(str::to_owned)
}

/// A node's bytes by its sha256, checked; `None` when missing or not matching.
///
/// # Errors
/// Store errors.
pub async fn fetch_node<A: ArtifactStore>(
    store: &A,
    sha256: &str,
    kind: Kind,
) -> Result<Option<Vec<u8>>, Error> {
    let Ok(digest) = Digest::parse(&format!("sha256:{sha256}")) else {
        return Ok(None);
    };
    let Some(bytes) = store.get_blob(&digest, kind.max_len()).await? else {
        return Ok(None);
    };
    Ok((Digest::of(&bytes) == digest).then_some(bytes))
}
