//! Snapshot Merkle trees (TAP 16, in the form of docs/oci-mapping.md §11).
//!
//! A classic snapshot lists every targets role, so every client downloads an entry per role
//! on every change: 150 B × sqrt(N) per pull with the best hash bins (153 KiB at a million
//! images). With this option the snapshot lists only `targets.json` in `meta`, and signs, in
//! the field [`FIELD`], the digest of the root of a tree over every delegated targets role.
//! A client that needs role R fetches the nodes on the path to R (content-addressed blobs,
//! each checked against the digest its parent names) and takes R's entry (version, length,
//! sha256) from the leaf, exactly as it would take it from a classic snapshot's `meta`.
//!
//! The tree is a 16-way radix tree over the hex digits of `sha256(role name)`:
//! - a **leaf node** holds at most [`LEAF_MAX`] roles, those whose key starts with its
//!   prefix: the canonical JSON `{"prefix":"<hex digits>","roles":{NAME:META,...}}`;
//! - an **inner node** is [`INNER_LEN`] bytes, 16 slots of 33 bytes, one per next hex
//!   digit: a kind byte (0 empty, 1 inner, 2 leaf) and the 32-byte sha256 of the child
//!   node's bytes (zeros when empty).
//!
//! The parent names each child's kind, and the snapshot names the root's, so no bytes are
//! ever read as the other kind. A node's sha256 is its OCI blob digest. The shape is a pure
//! function of the set of roles: a set of at most [`LEAF_MAX`] is a leaf, a larger one an
//! inner node over its 16 subsets. At 131,072 roles a path is 4 inner nodes and a leaf of
//! about 2 roles: 2.3 KiB, where the classic snapshot would be 6 MiB.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::cjson;
use crate::error::Error;
use crate::metadata::MetaFile;

/// The snapshot field (`signed`) that holds the tree's root.
pub const FIELD: &str = "x-ocituf-merkle";
/// The root field (`signed`) that asks publishers for Merkle snapshots: `"merkle"`. Clients
/// never read it (they follow what the snapshot signs); it keeps every publisher of a root
/// of trust (the CLI, the online signer) writing the same form.
pub const ROOT_OPTION: &str = "x-ocituf-snapshot";

/// Whether `root` asks for Merkle snapshots ([`ROOT_OPTION`]).
pub fn root_wants_merkle(root: &crate::metadata::Root) -> bool {
    root.extra.get(ROOT_OPTION).and_then(|v| v.as_str()) == Some("merkle")
}

/// The most roles a leaf node holds before it is split.
pub const LEAF_MAX: usize = 16;
/// The length of every inner node.
pub const INNER_LEN: usize = 16 * 33;
/// A bound on a leaf node's bytes (16 roles with 1 KiB names and their entries fit).
pub const LEAF_MAX_LEN: u64 = 64 * 1024;
/// Keys have 64 hex digits: no path is longer.
const MAX_DEPTH: usize = 64;

/// Whether a node is an inner node or a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Inner,
    Leaf,
}

impl Kind {
    fn tag(self) -> u8 {
        match self {
            Kind::Inner => 1,
            Kind::Leaf => 2,
        }
    }

    /// The read limit for a node of this kind.
    pub fn max_len(self) -> u64 {
        match self {
            Kind::Inner => INNER_LEN as u64,
            Kind::Leaf => LEAF_MAX_LEN,
        }
    }
}

/// The value of [`FIELD`] in a snapshot: the root node and how many roles the tree holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerkleRoot {
    pub kind: Kind,
    /// Lowercase hex sha256 of the root node's bytes.
    pub sha256: String,
    /// How many delegated roles the tree holds (informative: status and sizing).
    pub roles: u64,
}

impl MerkleRoot {
    /// Read the field from a snapshot's `signed` extra fields: `Ok(None)` for a classic
    /// snapshot.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the field is malformed, or when a snapshot with the field
    /// lists any role but `targets.json` in `meta` (a role must have exactly one entry).
    pub fn of_snapshot(snapshot: &crate::metadata::Snapshot) -> Result<Option<Self>, Error> {
        let Some(value) = snapshot.extra.get(FIELD) else {
            return Ok(None);
        };
        let root: MerkleRoot = serde_json::from_value(value.clone())
            .map_err(|e| invalid(format!("{FIELD} is malformed: {e}")))?;
        decode_sha256(&root.sha256).ok_or_else(|| {
            invalid(format!(
                "{FIELD}.sha256 {:?} is not 64 lowercase hex digits",
                root.sha256
            ))
        })?;
        if let Some(name) = snapshot.meta.keys().find(|k| *k != "targets.json") {
            return Err(invalid(format!(
                "a snapshot with {FIELD} lists {name} in meta: delegated roles belong in the tree only"
            )));
        }
        Ok(Some(root))
    }
}

fn invalid(reason: String) -> Error {
    Error::Invalid {
        role: "snapshot".to_owned(),
        reason,
    }
}

fn decode_sha256(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || s.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// The key of a role in the tree.
pub fn key(role: &str) -> [u8; 32] {
    Sha256::digest(role.as_bytes()).into()
}

fn nibble(key: &[u8; 32], depth: usize) -> usize {
    let b = key[depth / 2];
    usize::from(if depth.is_multiple_of(2) {
        b >> 4
    } else {
        b & 0x0f
    })
}

fn prefix_hex(key: &[u8; 32], depth: usize) -> String {
    let mut s = hex::encode(key);
    s.truncate(depth);
    s
}

/// One node of a built tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Lowercase hex sha256 of `bytes`.
    pub sha256: String,
    pub bytes: Vec<u8>,
}

/// A tree built from every delegated role's entry: its root, and every node (root last,
/// children before parents).
#[derive(Debug, Clone)]
pub struct Tree {
    pub root: MerkleRoot,
    pub nodes: Vec<Node>,
}

#[derive(Serialize)]
struct LeafOut<'a> {
    prefix: String,
    roles: BTreeMap<&'a str, &'a MetaFile>,
}

impl Tree {
    /// Build the tree over `roles` (delegated role name → its snapshot entry).
    ///
    /// # Errors
    /// [`Error::Canonical`] if an entry has no canonical JSON form.
    pub fn build(roles: &BTreeMap<String, MetaFile>) -> Result<Self, Error> {
        let mut keyed: Vec<([u8; 32], &str, &MetaFile)> = roles
            .iter()
            .map(|(name, meta)| (key(name), name.as_str(), meta))
            .collect();
        keyed.sort_by_key(|k| k.0);
        let mut nodes = Vec::new();
        let (kind, sha) = build_node(&keyed, 0, &mut nodes)?;
        Ok(Tree {
            root: MerkleRoot {
                kind,
                sha256: hex::encode(sha),
                roles: roles.len() as u64,
            },
            nodes,
        })
    }
}

type Keyed<'a> = ([u8; 32], &'a str, &'a MetaFile);

/// The subtree at `depth` over `roles` (which must all have keys with the same first
/// `depth` digits): its root kind and sha256, and its nodes, children before parents. The
/// same subtree [`Tree::build`] makes at that path for that set; writers that change a few
/// roles rebuild only the subtrees on their paths with it.
///
/// # Errors
/// [`Error::Invalid`] when the roles do not share the prefix; [`Error::Canonical`].
pub fn build_subtree(
    roles: &BTreeMap<String, MetaFile>,
    depth: usize,
) -> Result<(Kind, String, Vec<Node>), Error> {
    let mut keyed: Vec<Keyed<'_>> = roles
        .iter()
        .map(|(name, meta)| (key(name), name.as_str(), meta))
        .collect();
    keyed.sort_by_key(|k| k.0);
    if let (Some(first), Some(last)) = (keyed.first(), keyed.last()) {
        if prefix_hex(&first.0, depth) != prefix_hex(&last.0, depth) {
            return Err(invalid(format!(
                "a Merkle subtree at depth {depth} was given roles with different prefixes"
            )));
        }
    }
    let mut nodes = Vec::new();
    let (kind, sha) = build_node(&keyed, depth, &mut nodes)?;
    Ok((kind, hex::encode(sha), nodes))
}

/// The hex digit of `role`'s key at `depth`.
pub fn digit(role: &str, depth: usize) -> usize {
    nibble(&key(role), depth.min(MAX_DEPTH - 1))
}

/// The first `depth` hex digits of `role`'s key (a leaf's `prefix` at that depth).
pub fn prefix(role: &str, depth: usize) -> String {
    prefix_hex(&key(role), depth.min(MAX_DEPTH))
}

/// The bytes of an inner node with these children (by hex digit).
pub fn inner_bytes(children: &[Option<(Kind, String)>; 16]) -> Vec<u8> {
    let mut bytes = vec![0u8; INNER_LEN];
    for (digit, child) in children.iter().enumerate() {
        if let Some((kind, sha)) = child {
            if let Some(raw) = decode_sha256(sha) {
                let slot = &mut bytes[digit * 33..(digit + 1) * 33];
                slot[0] = kind.tag();
                slot[1..].copy_from_slice(&raw);
            }
        }
    }
    bytes
}

/// A node with its sha256.
pub fn node(kind: Kind, bytes: Vec<u8>) -> Node {
    Node {
        kind,
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes,
    }
}

fn build_node(
    set: &[Keyed<'_>],
    depth: usize,
    nodes: &mut Vec<Node>,
) -> Result<(Kind, [u8; 32]), Error> {
    if set.len() <= LEAF_MAX || depth >= MAX_DEPTH {
        let prefix = set
            .first()
            .map_or_else(String::new, |(k, _, _)| prefix_hex(k, depth));
        let leaf = LeafOut {
            prefix,
            roles: set.iter().map(|(_, n, m)| (*n, *m)).collect(),
        };
        let value = serde_json::to_value(&leaf)
            .map_err(|e| invalid(format!("a snapshot Merkle leaf cannot be written: {e}")))?;
        let bytes = cjson::to_canonical(&value).map_err(|e| Error::Canonical {
            what: "a snapshot Merkle leaf".to_owned(),
            source: e,
        })?;
        return Ok(push(nodes, Kind::Leaf, bytes));
    }
    let mut bytes = vec![0u8; INNER_LEN];
    let mut start = 0;
    while start < set.len() {
        let digit = nibble(&set[start].0, depth);
        let end = start
            + set[start..]
                .iter()
                .take_while(|(k, _, _)| nibble(k, depth) == digit)
                .count();
        let (kind, sha) = build_node(&set[start..end], depth + 1, nodes)?;
        let slot = &mut bytes[digit * 33..(digit + 1) * 33];
        slot[0] = kind.tag();
        slot[1..].copy_from_slice(&sha);
        start = end;
    }
    Ok(push(nodes, Kind::Inner, bytes))
}

fn push(nodes: &mut Vec<Node>, kind: Kind, bytes: Vec<u8>) -> (Kind, [u8; 32]) {
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    nodes.push(Node {
        kind,
        sha256: hex::encode(sha),
        bytes,
    });
    (kind, sha)
}

/// The children an inner node names, by hex digit (checked: a well-formed inner node).
///
/// # Errors
/// [`Error::Invalid`] when the bytes are not an inner node.
pub fn inner_children(bytes: &[u8]) -> Result<[Option<(Kind, String)>; 16], Error> {
    let what = "a snapshot Merkle inner node";
    if bytes.len() != INNER_LEN {
        return Err(invalid(format!(
            "{what} is {} bytes, not {INNER_LEN}",
            bytes.len()
        )));
    }
    let mut out: [Option<(Kind, String)>; 16] = Default::default();
    for (i, slot) in bytes.chunks_exact(33).enumerate() {
        out[i] = match slot[0] {
            0 if slot[1..].iter().all(|b| *b == 0) => None,
            1 => Some((Kind::Inner, hex::encode(&slot[1..]))),
            2 => Some((Kind::Leaf, hex::encode(&slot[1..]))),
            t => {
                return Err(invalid(format!(
                    "{what} has slot {i} of kind {t} (0 empty with a zero digest, 1 inner, 2 leaf)"
                )))
            }
        };
    }
    if out.iter().all(Option::is_none) {
        return Err(invalid(format!("{what} has no child")));
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeafIn {
    prefix: String,
    roles: BTreeMap<String, MetaFile>,
}

/// The roles a leaf node holds, checked against the path it was reached by (`prefix`: the
/// hex digits of the path).
///
/// # Errors
/// [`Error::Json`] / [`Error::Invalid`] when the bytes are not such a leaf.
pub fn leaf_roles(bytes: &[u8], prefix: &str) -> Result<BTreeMap<String, MetaFile>, Error> {
    let what = "a snapshot Merkle leaf";
    let value = cjson::parse(bytes).map_err(|e| Error::Json {
        what: what.to_owned(),
        source: e,
    })?;
    let leaf: LeafIn =
        serde_json::from_value(value).map_err(|e| invalid(format!("{what} is malformed: {e}")))?;
    if leaf.prefix != prefix {
        return Err(invalid(format!(
            "{what} reached by path {prefix:?} says its prefix is {:?}",
            leaf.prefix
        )));
    }
    if leaf.roles.len() > LEAF_MAX && prefix.len() < MAX_DEPTH {
        return Err(invalid(format!(
            "{what} holds {} roles, more than {LEAF_MAX}",
            leaf.roles.len()
        )));
    }
    for (name, meta) in &leaf.roles {
        if !hex::encode(key(name)).starts_with(prefix) {
            return Err(invalid(format!(
                "{what} with prefix {prefix:?} holds {name:?}, whose key does not start with it"
            )));
        }
        if meta.version == 0 {
            return Err(invalid(format!("{what} gives {name:?} version 0")));
        }
        if let Some(h) = &meta.hashes {
            crate::metadata::check_hashes("snapshot", h)?;
        }
    }
    Ok(leaf.roles)
}

/// The node a [`Walk`] needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRequest {
    /// The role whose path this node is on (a cache keeps paths by role).
    pub role: String,
    pub kind: Kind,
    /// Lowercase hex sha256 the node's bytes must have.
    pub sha256: String,
    /// Read limit.
    pub max_len: u64,
}

/// What a finished [`Walk`] proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The role's entry.
    Found(MetaFile),
    /// The tree does not hold the role.
    Absent,
}

/// A walk from a trusted root to one role's entry. Each node fed in is checked against the
/// digest its parent (or the root) names before anything in it is read, so a finished walk
/// holds only what the snapshot's signers signed.
#[derive(Debug, Clone)]
pub struct Walk {
    root: MerkleRoot,
    role: String,
    key: [u8; 32],
    depth: usize,
    next: Option<(Kind, String)>,
    found: Option<Outcome>,
    /// The nodes fed so far, root first (what a cache keeps to prove the role offline).
    fed: Vec<Vec<u8>>,
}

impl Walk {
    /// Start a walk for `role` under `root`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the root digest is malformed.
    pub fn new(root: &MerkleRoot, role: &str) -> Result<Self, Error> {
        decode_sha256(&root.sha256)
            .ok_or_else(|| invalid(format!("{FIELD}.sha256 is not a sha256 digest")))?;
        Ok(Walk {
            root: root.clone(),
            role: role.to_owned(),
            key: key(role),
            depth: 0,
            next: Some((root.kind, root.sha256.clone())),
            found: None,
            fed: Vec::new(),
        })
    }

    /// The role this walk is for.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The root it starts from.
    pub fn root(&self) -> &MerkleRoot {
        &self.root
    }

    /// The node to fetch next, or `None` when the walk is over.
    pub fn wanted(&self) -> Option<NodeRequest> {
        self.next.as_ref().map(|(kind, sha)| NodeRequest {
            role: self.role.clone(),
            kind: *kind,
            sha256: sha.clone(),
            max_len: kind.max_len(),
        })
    }

    /// Feed the bytes of the node [`Self::wanted`] asked for.
    ///
    /// # Errors
    /// [`Error::HashMismatch`] when the bytes are not the node asked for; [`Error::TooLarge`];
    /// [`Error::Invalid`] / [`Error::Json`] for a malformed node; [`Error::Order`] when the
    /// walk is over.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let (kind, sha) = self
            .next
            .take()
            .ok_or(Error::Order("the Merkle walk is over"))?;
        let what = format!(
            "snapshot Merkle {} node at depth {} for {}",
            match kind {
                Kind::Inner => "inner",
                Kind::Leaf => "leaf",
            },
            self.depth,
            self.role
        );
        if bytes.len() as u64 > kind.max_len() {
            return Err(Error::TooLarge {
                what,
                max_len: kind.max_len(),
            });
        }
        let actual = hex::encode(Sha256::digest(bytes));
        if actual != sha {
            return Err(Error::HashMismatch {
                what,
                algorithm: "sha256".to_owned(),
                expected: sha,
                actual,
            });
        }
        self.fed.push(bytes.to_vec());
        match kind {
            Kind::Inner => {
                if self.depth >= MAX_DEPTH {
                    return Err(invalid(format!("{what}: the path is deeper than a key")));
                }
                let children = inner_children(bytes)?;
                let digit = nibble(&self.key, self.depth);
                self.depth += 1;
                match &children[digit] {
                    Some(child) => self.next = Some(child.clone()),
                    None => self.found = Some(Outcome::Absent),
                }
            }
            Kind::Leaf => {
                let mut roles = leaf_roles(bytes, &prefix_hex(&self.key, self.depth))?;
                self.found = Some(match roles.remove(&self.role) {
                    Some(meta) => Outcome::Found(meta),
                    None => Outcome::Absent,
                });
            }
        }
        Ok(())
    }

    /// The nodes fed so far, root first, in the form [`path_nodes`] reads.
    pub fn path_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for node in &self.fed {
            // Fed nodes passed the read limit (at most 64 KiB), so the length fits.
            out.extend_from_slice(&u32::try_from(node.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(node);
        }
        out
    }

    /// What the walk proved, once it is over (`None` while nodes are still wanted).
    pub fn result(&self) -> Option<&Outcome> {
        self.found.as_ref()
    }
}

/// The longest path a cache keeps: 64 inner nodes and a leaf.
pub const MAX_PATH_LEN: u64 = 64 * INNER_LEN as u64 + LEAF_MAX_LEN + 65 * 4;

/// The nodes of a path kept by [`Walk::path_bytes`] (untrusted: a cache). Malformed bytes
/// give the nodes read before the fault; each is checked again by the walk that uses it.
pub fn path_nodes(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 4 && out.len() <= MAX_DEPTH {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(node) = rest.get(4..4 + len) else {
            break;
        };
        out.push(node);
        rest = &rest[4 + len..];
    }
    out
}

#[cfg(test)]
mod tests;
