//! The client workflow under a snapshot with a Merkle tree (docs/oci-mapping.md §11): each
//! test is named after the attack or fault it stops.

use super::*;
use crate::clock::FixedClock;
use crate::testutil::{MapSource, MapStore};
use crate::trusted::tests::fixture::{Fixture, NOW};

type TestUpdater<'a> = Updater<&'a MapSource, &'a MapStore, FixedClock>;

async fn updater<'a>(anchor: &[u8], source: &'a MapSource, store: &'a MapStore) -> TestUpdater<'a> {
    Updater::new(
        anchor,
        source,
        store,
        UpdaterConfig::default(),
        FixedClock(NOW),
    )
    .await
    .unwrap()
}

/// Two delegated roles, a target in `a`, published with a Merkle snapshot.
fn fixture() -> Fixture {
    let mut f = Fixture::new();
    f.delegate("targets", "a", &["acme/*"], false);
    f.delegate("targets", "b", &["other/*"], false);
    f.add_target("a", "acme/app:1.4", b"manifest bytes");
    f
}

/// A new snapshot and timestamp over the fixture's current roles.
fn republish(f: &mut Fixture, source: &MapSource) {
    f.bump_snapshot();
    source.publish_merkle(f);
}

#[tokio::test]
async fn delegated_role_is_found_through_its_proof_and_nothing_else_is_fetched() {
    let mut f = fixture();
    let (source, store) = (MapSource::default(), MapStore::default());
    let tree = source.publish_merkle(&mut f);
    assert_eq!(tree.root.roles, 2);
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    let info = u.target_info("acme/app:1.4").await.unwrap().unwrap();
    assert_eq!(info.path, "acme/app:1.4");
    let log = source.take_log();
    let roles: Vec<&str> = log.iter().map(|(r, _)| r.as_str()).collect();
    // Two roles fit one leaf: the root node is the leaf, one node fetch.
    assert_eq!(
        roles,
        ["root", "timestamp", "snapshot", "targets", &log[4].0, "a"]
    );
    assert!(log[4].0.starts_with("merkle:"));
    assert!(
        !roles.contains(&"b"),
        "a role the search does not visit is not fetched"
    );
}

#[tokio::test]
async fn mix_and_match_role_bytes_not_in_the_tree_are_refused() {
    // The registry answers for role `a` with bytes that are validly signed by a's key but
    // are not the version the snapshot's tree names (an older a, or one never published).
    let mut f = fixture();
    let (source, store) = (MapSource::default(), MapStore::default());
    source.publish_merkle(&mut f);
    let signed_earlier = f.targets_bytes("a");
    f.add_target("a", "acme/app:1.5", b"other");
    f.bump_targets("a");
    republish(&mut f, &source);
    source.put("2.a.json", signed_earlier.clone());
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    let err = u.target_info("acme/app:1.4").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::HashMismatch { .. } | Error::LengthMismatch { .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn rollback_of_a_delegated_role_is_refused() {
    // A snapshot key holder (compromised, or a buggy signer) names an older version of `a`
    // than the client already trusts: refused per role, as TUF 5.5.5 refuses it for a
    // classic snapshot.
    let mut f = fixture();
    f.bump_targets("a");
    let (source, store) = (MapSource::default(), MapStore::default());
    source.publish_merkle(&mut f);
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    u.target_info("acme/app:1.4").await.unwrap().unwrap();

    f.targets.get_mut("a").unwrap().version = 1;
    republish(&mut f, &source);
    let mut u = updater(&anchor, &source, &store).await;
    let err = u.target_info("acme/app:1.4").await.unwrap_err();
    assert!(
        matches!(&err, Error::Rollback { role, trusted: 2, got: 1 } if role == "a"),
        "{err}"
    );
}

#[tokio::test]
async fn withheld_node_is_an_error_not_an_absent_target() {
    // A registry that deletes a node must not make a signed target look unsigned.
    let mut f = fixture();
    let (source, store) = (MapSource::default(), MapStore::default());
    source.publish_merkle(&mut f);
    source.nodes.lock().unwrap().clear();
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    let err = u.target_info("acme/app:1.4").await.unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { what } if what.contains("Merkle")),
        "{err}"
    );
}

#[tokio::test]
async fn substituted_node_is_refused() {
    let mut f = fixture();
    let (source, store) = (MapSource::default(), MapStore::default());
    let tree = source.publish_merkle(&mut f);
    let root = tree.root.sha256.clone();
    let forged = b"{\"prefix\":\"\",\"roles\":{}}".to_vec();
    source.nodes.lock().unwrap().insert(root, forged);
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    let err = u.target_info("acme/app:1.4").await.unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
}

#[tokio::test]
async fn role_the_tree_does_not_hold_is_missing_meta() {
    // A delegation to a role the snapshot's signers did not include.
    let mut f = fixture();
    f.delegate("targets", "c", &["late/*"], false);
    f.add_target("c", "late/x:1", b"x");
    let (source, store) = (MapSource::default(), MapStore::default());
    source.publish_merkle(&mut f);
    // Rebuild the tree without c, keep everything else.
    let c = f.targets.remove("c").unwrap();
    f.bump_snapshot();
    source.publish_merkle(&mut f);
    f.targets.insert("c".into(), c);
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    let err = u.target_info("late/x:1").await.unwrap_err();
    assert!(
        matches!(&err, Error::MissingMeta { role } if role == "c"),
        "{err}"
    );
}

#[tokio::test]
async fn switching_a_repository_from_classic_to_merkle_snapshots_keeps_clients_working() {
    // The client's cached classic snapshot lists `a.json`; the Merkle snapshot does not
    // list it in meta. That is no removal (TUF 5.5.5): the role moved into the tree.
    let mut f = fixture();
    let (source, store) = (MapSource::default(), MapStore::default());
    source.publish(&f);
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    u.target_info("acme/app:1.4").await.unwrap().unwrap();
    f.add_target("a", "acme/app:1.5", b"new");
    f.bump_targets("a");
    republish(&mut f, &source);
    let mut u = updater(&anchor, &source, &store).await;
    assert!(u.target_info("acme/app:1.5").await.unwrap().is_some());
    assert_eq!(u.trusted().role_meta("a").unwrap().version, 2);
}
