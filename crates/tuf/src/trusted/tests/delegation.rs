//! The delegation walk: order, cycles, terminating roles, diamonds, hash bins.

use super::fixture::{Fixture, NOW};
use super::*;
use crate::metadata::{Delegations, MetaFile, SuccinctRoles};

/// Run a search to the end, loading roles from the fixture; returns the result and the roles
/// loaded, in order.
fn search(f: &Fixture, set: &mut TrustedSet, path: &str, max: u32) -> (SearchStep, Vec<String>) {
    let mut search = TargetSearch::new(path, max);
    let mut loaded = Vec::new();
    loop {
        match search.step(set).unwrap() {
            SearchStep::Load { role, delegator } => {
                set.update_delegated_targets(&f.targets_bytes(&role), &role, &delegator, NOW)
                    .unwrap();
                loaded.push(role);
            }
            done => return (done, loaded),
        }
    }
}

fn loaded(f: &Fixture) -> TrustedSet {
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    set.update_snapshot(&f.snapshot_bytes(), NOW, Origin::Remote)
        .unwrap();
    set
}

#[test]
fn pre_order_depth_first() {
    let mut f = Fixture::new();
    f.delegate("targets", "a", &["*"], false);
    f.delegate("targets", "b", &["*"], false);
    f.delegate("a", "a1", &["*"], false);
    f.delegate("a", "a2", &["other/*"], false);
    f.add_target("b", "file", b"data");
    let mut set = loaded(&f);
    let (found, order) = search(&f, &mut set, "file", 32);
    assert_eq!(order, ["targets", "a", "a1", "b"]);
    let SearchStep::Found(info) = found else {
        panic!("not found")
    };
    assert_eq!(info.length, 4);
    // Lazily: a second search loads nothing new.
    let (_, again) = search(&f, &mut set, "file", 32);
    assert!(again.is_empty());
}

#[test]
fn delegation_cycle() {
    let mut f = Fixture::new();
    f.delegate("targets", "a", &["*"], false);
    f.delegate("a", "b", &["*"], false);
    f.delegate_again("b", "a", &["*"]);
    let mut set = loaded(&f);
    let (found, order) = search(&f, &mut set, "file", 32);
    assert_eq!(found, SearchStep::NotFound);
    assert_eq!(order, ["targets", "a", "b"]);
}

#[test]
fn terminating_delegation() {
    let mut f = Fixture::new();
    f.delegate("targets", "a", &["*"], true);
    f.delegate("targets", "b", &["*"], false);
    f.add_target("b", "file", b"data");
    let mut set = loaded(&f);
    let (found, order) = search(&f, &mut set, "file", 32);
    assert_eq!(found, SearchStep::NotFound);
    assert_eq!(order, ["targets", "a"]);

    // A terminating role that does not match the path does not stop the search.
    let mut f = Fixture::new();
    f.delegate("targets", "a", &["other/*"], true);
    f.delegate("targets", "b", &["*"], false);
    f.add_target("b", "file", b"data");
    let mut set = loaded(&f);
    assert!(matches!(
        search(&f, &mut set, "file", 32).0,
        SearchStep::Found(_)
    ));
}

#[test]
fn target_path_patterns_per_segment() {
    let mut f = Fixture::new();
    f.delegate("targets", "a", &["acme/*"], false);
    f.add_target("a", "acme/app:1", b"1");
    f.add_target("a", "acme/deep/app:1", b"2");
    let mut set = loaded(&f);
    assert!(matches!(
        search(&f, &mut set, "acme/app:1", 32).0,
        SearchStep::Found(_)
    ));
    // `*` does not cross `/`: the role is not trusted for the deeper path.
    assert_eq!(
        search(&f, &mut set, "acme/deep/app:1", 32).0,
        SearchStep::NotFound
    );
}

#[test]
fn max_delegations() {
    let mut f = Fixture::new();
    f.delegate("targets", "a", &["*"], false);
    f.delegate("a", "b", &["*"], false);
    f.add_target("b", "file", b"data");
    let mut set = loaded(&f);
    let (found, order) = search(&f, &mut set, "file", 2);
    assert_eq!(found, SearchStep::NotFound);
    assert_eq!(order, ["targets", "a"]);
}

#[test]
fn diamond_delegation_is_verified_per_delegator() {
    // "release" is delegated by both a and b with different keys; its metadata is signed
    // only by a's key. Reached through b, it must be refused although already trusted.
    let mut f = Fixture::new();
    f.delegate("targets", "parent-a", &["team-a/*"], false);
    f.delegate("targets", "parent-b", &["team-b/*"], false);
    f.delegate("parent-a", "release", &["team-a/*"], false);
    let a_signer = f.signers.remove("release").unwrap();
    f.delegate("parent-b", "release", &["team-b/*"], false);
    f.signers.insert("release".into(), a_signer);
    f.add_target("release", "team-a/x", b"trusted A");
    f.add_target("release", "team-b/x", b"malicious B");
    let mut set = loaded(&f);
    assert!(matches!(
        search(&f, &mut set, "team-a/x", 32).0,
        SearchStep::Found(_)
    ));
    let mut s = TargetSearch::new("team-b/x", 32);
    let mut result = s.step(&mut set);
    while let Ok(SearchStep::Load { role, delegator }) = &result {
        set.update_delegated_targets(&f.targets_bytes(role), role, delegator, NOW)
            .unwrap();
        result = s.step(&mut set);
    }
    assert!(matches!(
        result,
        Err(Error::Threshold { role, valid: 0, .. }) if role == "release"
    ));
}

#[test]
fn delegation_not_in_snapshot() {
    let mut f = Fixture::new();
    f.delegate("targets", "a", &["*"], false);
    f.snapshot.meta.remove("a.json");
    let mut set = loaded(&f);
    set.update_targets(&f.targets_bytes("targets"), NOW)
        .unwrap();
    assert!(matches!(
        set.update_delegated_targets(&f.targets_bytes("a"), "a", "targets", NOW),
        Err(Error::MissingMeta { role }) if role == "a"
    ));
}

#[test]
fn succinct_hash_bins() {
    let mut f = Fixture::new();
    let k = f.new_key();
    let bins = SuccinctRoles {
        keyids: vec![k.key_id().clone()],
        threshold: 1,
        bit_length: 10,
        name_prefix: "bin".into(),
        extra: BTreeMap::new(),
    };
    let role = bins.role_for_target("acme/app:1.4");
    f.targets.get_mut("targets").unwrap().delegations = Some(Delegations {
        keys: BTreeMap::from([(k.key_id().clone(), k.public_key().clone())]),
        roles: None,
        succinct_roles: Some(bins),
        extra: BTreeMap::new(),
    });
    f.signers.insert(role.clone(), vec![k]);
    f.targets.insert(role.clone(), fixture::empty_targets());
    f.snapshot
        .meta
        .insert(format!("{role}.json"), MetaFile::new(1));
    f.add_target(&role, "acme/app:1.4", b"manifest");
    let mut set = loaded(&f);
    let (found, order) = search(&f, &mut set, "acme/app:1.4", 32);
    assert!(matches!(found, SearchStep::Found(_)));
    assert_eq!(order, ["targets".to_owned(), role]);
}
