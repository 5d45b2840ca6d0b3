//! Snapshot Merkle tree nodes (docs/oci-mapping.md section 11) from a hostile registry or a
//! tampered cache: the inner-node and leaf parsers and the walk never panic; an inner node
//! that parses writes back to the same bytes; a walk fed a path whose first node is the
//! root only goes on to nodes whose digests the nodes before it named.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocituf_oci::Digest;
use ocituf_tuf::merkle::{
    inner_bytes, inner_children, leaf_roles, path_nodes, Kind, MerkleRoot, Outcome, Walk,
};

fuzz_target!(|data: &[u8]| {
    // A role name and a leaf prefix from the first bytes; the rest is node bytes.
    let (head, rest) = data.split_at(data.len().min(4));
    let role = format!("app-{}", Digest::of(head).hex().get(..3).unwrap_or("000"));
    let prefix: String = Digest::of(rest)
        .hex()
        .chars()
        .take(usize::from(head.first().copied().unwrap_or(0) % 5))
        .collect();

    if let Ok(children) = inner_children(rest) {
        assert_eq!(
            inner_bytes(&children),
            rest,
            "an inner node writes back to its bytes"
        );
    }
    if let Ok(roles) = leaf_roles(rest, &prefix) {
        assert!(
            roles.values().all(|m| m.version > 0),
            "a leaf gave version 0"
        );
    }

    // A cached path: the walk starts at the first node (as either kind) and checks each
    // next node against the digest its parent names.
    let nodes = path_nodes(rest);
    for kind in [Kind::Inner, Kind::Leaf] {
        let Some(first) = nodes.first() else {
            break;
        };
        let root = MerkleRoot {
            kind,
            sha256: Digest::of(first).hex().to_owned(),
            roles: 1,
        };
        let Ok(mut walk) = Walk::new(&root, &role) else {
            continue;
        };
        for node in &nodes {
            let Some(wanted) = walk.wanted() else {
                break;
            };
            let matches =
                Digest::of(node).hex() == wanted.sha256 && node.len() as u64 <= wanted.max_len;
            match walk.feed(node) {
                Ok(()) => assert!(matches, "a node the parent did not name was taken"),
                Err(_) => break,
            }
        }
        if let Some(Outcome::Found(meta)) = walk.result() {
            assert!(meta.version > 0);
        }
    }
});
