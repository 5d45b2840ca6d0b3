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

use std::future::Future;
use std::pin::Pin;

use ocituf_tuf::merkle::{
    build_subtree, digit, inner_bytes, inner_children, leaf_roles, node, prefix, Kind, MerkleRoot,
    Node, Tree,
};
use ocituf_tuf::metadata::MetaFile;
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

/// The tree of [`update_tree`], with the nodes it made.
#[derive(Debug, Clone)]
pub struct UpdatedTree {
    pub tree: Tree,
    /// Previous versions of the changed roles that the previous tree held.
    pub previous: BTreeMap<String, u64>,
}

/// The previous snapshot's tree with `changes` (role → new entry) applied, reading only the
/// nodes on the changed roles' paths: the same tree [`Tree::build`] makes over the whole
/// new set, at a cost in k × depth node reads for k changes. `tree.nodes` holds only the
/// new nodes (children first), ready for [`push_tree`] with `previous` as the old root.
///
/// Roles are added or changed, never removed (a removal can shrink a subtree into a leaf,
/// which needs the subtree's size: rebuild the whole tree then).
///
/// # Errors
/// A previous node that is missing or malformed (`MalformedManifest`): publish the whole
/// tree instead; store errors.
pub async fn update_tree<A: ArtifactStore>(
    store: &A,
    previous: &MerkleRoot,
    changes: &BTreeMap<String, MetaFile>,
) -> Result<UpdatedTree, Error> {
    let mut acc = Acc::default();
    let (kind, sha256) = if changes.is_empty() {
        (previous.kind, previous.sha256.clone())
    } else {
        rebuild(
            store,
            previous.kind,
            previous.sha256.clone(),
            0,
            changes.clone(),
            &mut acc,
        )
        .await?
    };
    Ok(UpdatedTree {
        tree: Tree {
            root: MerkleRoot {
                kind,
                sha256,
                roles: previous.roles + acc.added,
            },
            nodes: acc.nodes,
        },
        previous: acc.previous,
    })
}

#[derive(Default)]
struct Acc {
    nodes: Vec<Node>,
    previous: BTreeMap<String, u64>,
    added: u64,
}

type Rebuilt<'a> = Pin<Box<dyn Future<Output = Result<(Kind, String), Error>> + Send + 'a>>;

fn rebuild<'a, A: ArtifactStore>(
    store: &'a A,
    kind: Kind,
    sha: String,
    depth: usize,
    changes: BTreeMap<String, MetaFile>,
    acc: &'a mut Acc,
) -> Rebuilt<'a> {
    Box::pin(async move {
        let malformed = |reason: String| Error::MalformedManifest {
            what: format!("the previous snapshot's Merkle node sha256:{sha}"),
            reason,
        };
        let bytes = fetch_node(store, &sha, kind)
            .await?
            .ok_or_else(|| malformed("it is missing from the repository".to_owned()))?;
        match kind {
            Kind::Leaf => {
                let at = changes
                    .keys()
                    .next()
                    .map_or_else(String::new, |r| prefix(r, depth));
                let mut roles = leaf_roles(&bytes, &at).map_err(|e| malformed(e.to_string()))?;
                for (role, meta) in changes {
                    match roles.insert(role.clone(), meta) {
                        Some(old) => {
                            acc.previous.insert(role, old.version);
                        }
                        None => acc.added += 1,
                    }
                }
                subtree(&roles, depth, acc)
            }
            Kind::Inner => {
                let mut children = inner_children(&bytes).map_err(|e| malformed(e.to_string()))?;
                let mut groups: BTreeMap<usize, BTreeMap<String, MetaFile>> = BTreeMap::new();
                for (role, meta) in changes {
                    groups
                        .entry(digit(&role, depth))
                        .or_default()
                        .insert(role, meta);
                }
                for (d, group) in groups {
                    let child = if let Some((k, s)) = children[d].take() {
                        rebuild(store, k, s, depth + 1, group, acc).await?
                    } else {
                        acc.added += group.len() as u64;
                        subtree(&group, depth + 1, acc)?
                    };
                    children[d] = Some(child);
                }
                let n = node(Kind::Inner, inner_bytes(&children));
                let out = (Kind::Inner, n.sha256.clone());
                acc.nodes.push(n);
                Ok(out)
            }
        }
    })
}

fn subtree(
    roles: &BTreeMap<String, MetaFile>,
    depth: usize,
    acc: &mut Acc,
) -> Result<(Kind, String), Error> {
    let (kind, sha, nodes) = build_subtree(roles, depth).map_err(|e| Error::MalformedManifest {
        what: "a snapshot Merkle subtree".to_owned(),
        reason: e.to_string(),
    })?;
    acc.nodes.extend(nodes);
    Ok((kind, sha))
}

/// The entries that the tree under `root` holds for `roles` (absent roles are left out),
/// each proven by a walk from the root; nodes shared by several paths are read once.
/// For writers' reports (`ocituf status`): clients prove roles in the updater.
///
/// # Errors
/// A node that is missing or malformed (`MalformedManifest`); store errors.
pub async fn entries_of<A: ArtifactStore>(
    store: &A,
    root: &MerkleRoot,
    roles: &[String],
) -> Result<BTreeMap<String, MetaFile>, Error> {
    let mut nodes: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for role in roles {
        let mut walk =
            ocituf_tuf::merkle::Walk::new(root, role).map_err(|e| Error::MalformedManifest {
                what: "a snapshot Merkle root".to_owned(),
                reason: e.to_string(),
            })?;
        while let Some(req) = walk.wanted() {
            if !nodes.contains_key(&req.sha256) {
                let bytes = fetch_node(store, &req.sha256, req.kind)
                    .await?
                    .ok_or_else(|| Error::MalformedManifest {
                        what: format!("snapshot Merkle node sha256:{}", req.sha256),
                        reason: "it is missing from the repository".to_owned(),
                    })?;
                nodes.insert(req.sha256.clone(), bytes);
            }
            let bytes = nodes
                .get(&req.sha256)
                .map(Vec::as_slice)
                .unwrap_or_default();
            walk.feed(bytes).map_err(|e| Error::MalformedManifest {
                what: format!("snapshot Merkle node sha256:{}", req.sha256),
                reason: e.to_string(),
            })?;
        }
        if let Some(ocituf_tuf::merkle::Outcome::Found(meta)) = walk.result() {
            out.insert(role.clone(), meta.clone());
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LayoutStore;

    fn entry(version: u64) -> MetaFile {
        let mut m = MetaFile::new(version);
        m.length = Some(1000 + version);
        m.hashes = Some(BTreeMap::from([(
            "sha256".to_owned(),
            Digest::of(&version.to_be_bytes()).hex().to_owned(),
        )]));
        m
    }

    fn roles(n: usize) -> BTreeMap<String, MetaFile> {
        (0..n)
            .map(|i| (format!("bins-{i:05x}"), entry(1)))
            .collect()
    }

    #[tokio::test]
    async fn an_updated_tree_is_the_tree_built_from_scratch_and_reads_only_changed_paths() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::new(dir.path(), "acme/tuf").unwrap();
        let mut set = roles(3_000);
        let first = Tree::build(&set).unwrap();
        let pushed = push_tree(&store, &first, None).await.unwrap();
        assert_eq!(pushed.nodes, first.nodes.len());

        // Change two roles, add one that lands in a leaf (or splits one), add 20 under one
        // new name prefix so that a leaf overflows and splits.
        let mut changes = BTreeMap::from([
            ("bins-00010".to_owned(), entry(2)),
            ("bins-00a00".to_owned(), entry(5)),
            ("new-role".to_owned(), entry(1)),
        ]);
        for i in 0..20 {
            changes.insert(format!("burst-{i}"), entry(1));
        }
        let updated = update_tree(&store, &first.root, &changes).await.unwrap();
        set.extend(changes.clone());
        let scratch = Tree::build(&set).unwrap();
        assert_eq!(
            updated.tree.root, scratch.root,
            "same bytes as a full rebuild"
        );
        assert_eq!(updated.previous.get("bins-00010"), Some(&1));
        assert_eq!(updated.previous.len(), 2, "only changed roles that existed");
        assert!(
            updated.tree.nodes.len() < 23 * 4,
            "{} new nodes for 23 changes",
            updated.tree.nodes.len()
        );
        let pushed = push_tree(&store, &updated.tree, Some(&first.root))
            .await
            .unwrap();
        assert_eq!(pushed.nodes, updated.tree.nodes.len());

        // Every role is provable from the pushed nodes.
        for role in ["bins-00010", "burst-7", "bins-00001"] {
            let mut walk = ocituf_tuf::merkle::Walk::new(&updated.tree.root, role).unwrap();
            while let Some(req) = walk.wanted() {
                let bytes = fetch_node(&store, &req.sha256, req.kind)
                    .await
                    .unwrap()
                    .unwrap();
                walk.feed(&bytes).unwrap();
            }
            assert_eq!(
                walk.result(),
                Some(&ocituf_tuf::merkle::Outcome::Found(set[role].clone()))
            );
        }
    }

    #[tokio::test]
    async fn an_update_over_a_missing_previous_node_is_an_error_not_a_smaller_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::new(dir.path(), "acme/tuf").unwrap();
        let first = Tree::build(&roles(100)).unwrap();
        // Never pushed: the registry lost the previous tree.
        let changes = BTreeMap::from([("bins-00001".to_owned(), entry(2))]);
        let err = update_tree(&store, &first.root, &changes)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
