use std::collections::{BTreeMap, BTreeSet};

use super::*;

fn entry(version: u64, name: &str) -> MetaFile {
    let mut m = MetaFile::new(version);
    m.length = Some(100 + version);
    m.hashes = Some(BTreeMap::from([(
        "sha256".to_owned(),
        hex::encode(Sha256::digest(format!("{name}@{version}"))),
    )]));
    m
}

fn roles(n: usize) -> BTreeMap<String, MetaFile> {
    (0..n)
        .map(|i| {
            let name = format!("bins-{i:05x}");
            let e = entry(1 + (i as u64 % 7), &name);
            (name, e)
        })
        .collect()
}

/// Walk `role` through `tree`, feeding nodes from the tree itself; returns the entry and
/// the number of nodes fetched.
fn walk(tree: &Tree, role: &str) -> (Option<MetaFile>, usize) {
    let nodes: BTreeMap<&str, &Node> = tree.nodes.iter().map(|n| (n.sha256.as_str(), n)).collect();
    let mut w = Walk::new(&tree.root, role).unwrap();
    let mut fetched = 0;
    while let Some(req) = w.wanted() {
        let node = nodes[req.sha256.as_str()];
        assert_eq!(node.kind, req.kind);
        w.feed(&node.bytes).unwrap();
        fetched += 1;
    }
    (
        match w.result().unwrap() {
            Outcome::Found(m) => Some(m.clone()),
            Outcome::Absent => None,
        },
        fetched,
    )
}

#[test]
fn every_role_is_found_with_its_entry_along_a_short_path() {
    let set = roles(2_000);
    let tree = Tree::build(&set).unwrap();
    assert_eq!(tree.root.kind, Kind::Inner);
    assert_eq!(tree.root.roles, 2_000);
    let mut longest = 0;
    for (name, meta) in &set {
        let (found, fetched) = walk(&tree, name);
        assert_eq!(found.as_ref(), Some(meta), "{name}");
        longest = longest.max(fetched);
    }
    // 2,000 roles: 16^2 = 256 leaves of ~8, so 2 inner nodes and a leaf (3 at worst 4).
    assert!(longest <= 4, "longest path {longest}");
}

#[test]
fn a_role_the_tree_does_not_hold_is_reported_absent() {
    let tree = Tree::build(&roles(300)).unwrap();
    assert_eq!(walk(&tree, "bins-fffff").0, None);
    assert_eq!(walk(&tree, "not-a-role").0, None);
    let empty = Tree::build(&BTreeMap::new()).unwrap();
    assert_eq!(empty.root.kind, Kind::Leaf);
    assert_eq!(walk(&empty, "anything").0, None);
}

#[test]
fn the_tree_is_a_function_of_the_set_and_a_change_rewrites_only_its_path() {
    let set = roles(5_000);
    let a = Tree::build(&set).unwrap();
    assert_eq!(a.root, Tree::build(&set.clone()).unwrap().root);
    let mut changed = set.clone();
    changed.insert("bins-00042".to_owned(), entry(99, "bins-00042"));
    let b = Tree::build(&changed).unwrap();
    assert_ne!(a.root.sha256, b.root.sha256);
    let old: BTreeSet<&str> = a.nodes.iter().map(|n| n.sha256.as_str()).collect();
    let new: Vec<&Node> = b
        .nodes
        .iter()
        .filter(|n| !old.contains(n.sha256.as_str()))
        .collect();
    let (_, depth) = walk(&b, "bins-00042");
    assert_eq!(
        new.len(),
        depth,
        "only the nodes on the changed role's path are new"
    );
}

#[test]
fn substituted_node_is_refused_before_it_is_read() {
    // An attacker who controls the registry answers the digest of a node with other bytes
    // (an older tree's node, or one naming an older version of the role).
    let old = Tree::build(&roles(100)).unwrap();
    let mut set = roles(100);
    set.insert("bins-00001".to_owned(), entry(50, "bins-00001"));
    let new = Tree::build(&set).unwrap();
    let mut w = Walk::new(&new.root, "bins-00001").unwrap();
    let stale_root = old.nodes.last().unwrap();
    let err = w.feed(&stale_root.bytes).unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
    assert!(
        w.wanted().is_none() && w.result().is_none(),
        "a failed walk yields nothing"
    );
}

#[test]
fn oversized_node_is_refused_endless_data() {
    let tree = Tree::build(&roles(40)).unwrap();
    let mut w = Walk::new(&tree.root, "bins-00001").unwrap();
    let err = w.feed(&vec![0u8; INNER_LEN + 1]).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

fn inner_with(slots: &[(usize, u8, [u8; 32])]) -> Vec<u8> {
    let mut b = vec![0u8; INNER_LEN];
    for (i, tag, sha) in slots {
        b[i * 33] = *tag;
        b[i * 33 + 1..(i + 1) * 33].copy_from_slice(sha);
    }
    b
}

#[test]
fn malformed_inner_nodes_are_refused() {
    assert!(inner_children(&[0u8; 10]).is_err(), "wrong length");
    assert!(inner_children(&inner_with(&[])).is_err(), "no child");
    assert!(
        inner_children(&inner_with(&[(3, 7, [1; 32])])).is_err(),
        "unknown kind"
    );
    assert!(
        inner_children(&inner_with(&[(3, 0, [1; 32])])).is_err(),
        "empty slot with a digest"
    );
    let ok = inner_children(&inner_with(&[(3, 1, [1; 32]), (9, 2, [2; 32])])).unwrap();
    assert_eq!(ok[3].as_ref().unwrap().0, Kind::Inner);
    assert_eq!(ok[9].as_ref().unwrap().0, Kind::Leaf);
    assert!(ok[0].is_none());
}

fn leaf_bytes(prefix: &str, roles: &[(&str, MetaFile)]) -> Vec<u8> {
    let value = serde_json::json!({
        "prefix": prefix,
        "roles": roles.iter().map(|(n, m)| ((*n).to_owned(), serde_json::to_value(m).unwrap())).collect::<serde_json::Map<_, _>>(),
    });
    cjson::to_canonical(&value).unwrap()
}

#[test]
fn leaf_holding_a_role_outside_its_prefix_is_refused() {
    // A role may have one entry only: one reachable by its key's path. A leaf that also
    // held it elsewhere would give two answers for one role.
    let name = "bins-00001";
    let own = hex::encode(key(name));
    let other_digit = if own.starts_with('0') { "1" } else { "0" };
    let bytes = leaf_bytes(other_digit, &[(name, entry(1, name))]);
    let err = leaf_roles(&bytes, other_digit).unwrap_err();
    assert!(err.to_string().contains("invalid"), "{err}");
    assert!(
        leaf_roles(&bytes, &own[..1]).is_err(),
        "a leaf must state the path it is at"
    );
    let good = leaf_bytes(&own[..1], &[(name, entry(1, name))]);
    assert_eq!(leaf_roles(&good, &own[..1]).unwrap().len(), 1);
}

#[test]
fn leaf_with_duplicate_keys_or_unknown_fields_is_refused() {
    let name = "bins-00001";
    let p = &hex::encode(key(name))[..1];
    let dup = format!(
        r#"{{"prefix":"{p}","roles":{{"{name}":{{"version":1}},"{name}":{{"version":9}}}}}}"#
    );
    assert!(
        leaf_roles(dup.as_bytes(), p).is_err(),
        "duplicate key (parser differential)"
    );
    let extra = format!(r#"{{"extra":1,"prefix":"{p}","roles":{{}}}}"#);
    assert!(leaf_roles(extra.as_bytes(), p).is_err());
    let v0 = format!(r#"{{"prefix":"{p}","roles":{{"{name}":{{"version":0}}}}}}"#);
    assert!(leaf_roles(v0.as_bytes(), p).is_err(), "version 0");
}

#[test]
fn snapshot_field_is_read_strictly() {
    use crate::metadata::Snapshot;
    let tree = Tree::build(&roles(20)).unwrap();
    let mut snap = Snapshot {
        spec_version: "1.0.31".to_owned(),
        version: 3,
        expires: time::OffsetDateTime::UNIX_EPOCH,
        meta: BTreeMap::from([("targets.json".to_owned(), MetaFile::new(1))]),
        extra: BTreeMap::new(),
    };
    assert_eq!(
        MerkleRoot::of_snapshot(&snap).unwrap(),
        None,
        "classic snapshot"
    );
    snap.extra
        .insert(FIELD.to_owned(), serde_json::to_value(&tree.root).unwrap());
    assert_eq!(
        MerkleRoot::of_snapshot(&snap).unwrap(),
        Some(tree.root.clone())
    );
    let mut both = snap.clone();
    both.meta
        .insert("bins-00001.json".to_owned(), MetaFile::new(1));
    assert!(
        MerkleRoot::of_snapshot(&both).is_err(),
        "a role in meta and in the tree"
    );
    let mut bad = snap.clone();
    bad.extra.insert(
        FIELD.to_owned(),
        serde_json::json!({"kind":"leaf","sha256":"ABC","roles":1}),
    );
    assert!(MerkleRoot::of_snapshot(&bad).is_err());
    bad.extra.insert(
        FIELD.to_owned(),
        serde_json::json!({"kind":"twig","sha256":tree.root.sha256,"roles":1}),
    );
    assert!(MerkleRoot::of_snapshot(&bad).is_err());
}

#[test]
fn kept_path_round_trips_and_a_damaged_one_never_panics() {
    let tree = Tree::build(&roles(500)).unwrap();
    let nodes: BTreeMap<&str, &Node> = tree.nodes.iter().map(|n| (n.sha256.as_str(), n)).collect();
    let mut w = Walk::new(&tree.root, "bins-00007").unwrap();
    let mut fed = 0;
    while let Some(req) = w.wanted() {
        w.feed(&nodes[req.sha256.as_str()].bytes).unwrap();
        fed += 1;
    }
    let kept = w.path_bytes();
    let path = path_nodes(&kept);
    assert_eq!(path.len(), fed);
    assert!(fed >= 2);
    assert_eq!(path[0], nodes[tree.root.sha256.as_str()].bytes.as_slice());
    // A cache file cut short or overwritten gives at most the whole nodes before the damage.
    for cut in 0..kept.len() {
        assert!(path_nodes(&kept[..cut]).len() < fed);
    }
    assert!(path_nodes(&[0xff; 64]).is_empty());
}
