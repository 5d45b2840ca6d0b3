//! The large-repository generator and batch signing into hash bins: 1,000 generated images
//! (2,000 target names) signed in ONE run land in the bins the delegation search routes
//! them to, with one new version per bin touched.

use ocituf_writer::generate::synthetic_images;
use ocituf_writer::sign::sign_images;
use ocituf_writer::State;

use crate::fixture::{Org, Place, Shape};

#[tokio::test]
async fn a_thousand_generated_images_signed_in_one_batch_land_in_their_bins() {
    let org = Org::new(Place::layout(), Shape::Bins(16)).await;
    // The fixture delegates acme/app:* and acme/app@*: generate into that one repository.
    let mut images = synthetic_images("acme", 1, 1000, 42);
    for i in &mut images {
        i.repository = "acme/app".to_owned();
        i.tag = format!("t{}", i.tag.replace('.', "-"));
    }
    let before = org.state().await;
    let w = sign_images(&org.repo, &before, &images, &org.who())
        .await
        .unwrap();
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
    // One version per bin touched, not one per image: 2,000 names over 16 bins.
    assert!(w.roles.len() <= 16, "{} role versions", w.roles.len());
    assert!(
        w.roles.len() >= 8,
        "names spread over the bins: {}",
        w.roles.len()
    );

    let state = org.state().await;
    let mut listed = 0;
    for role in &state.order {
        if let Some(t) = state.targets_of(role) {
            for name in t.targets.keys() {
                assert!(state.trusted_for(role, name), "{name} in {role}");
            }
            listed += t.targets.len();
        }
    }
    assert_eq!(listed, 2000, "every tag and digest name, once");
    for i in images.iter().step_by(97) {
        let name = format!("{}:{}", i.repository, i.tag);
        let in_roles: Vec<_> = state
            .order
            .iter()
            .filter(|r| {
                state
                    .targets_of(r)
                    .is_some_and(|t| t.targets.contains_key(&name))
            })
            .collect();
        assert_eq!(in_roles.len(), 1, "{name}: {in_roles:?}");
    }
}

/// The generator fills 256 bins of a root of trust with Merkle snapshots and publishes them
/// with `publish_changes` (the previous tree plus the changed paths); a full `publish`
/// afterwards, which reads every role and builds the tree from scratch, signs the same
/// Merkle root, and a real image signed the ordinary way on top verifies in every form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_merkle_repository_published_incrementally_equals_a_full_publish() {
    use ocituf_tuf::merkle::MerkleRoot;
    use ocituf_writer::generate::populate_bins;
    use ocituf_writer::online::{publish_changes, OnlineKeys};

    let org = Org::new_merkle(Place::layout(), Shape::Bins(256)).await;
    let mut images = synthetic_images("acme", 1, 1500, 9);
    for i in &mut images {
        i.repository = "acme/app".to_owned();
    }
    let found = populate_bins(
        &org.repo,
        Some(&org.pin),
        "app",
        org.team.as_ref(),
        &images,
        crate::fixture::in_days(30),
        4,
    )
    .await
    .unwrap();
    assert!(
        found.len() > 240,
        "3,000 names over 256 bins: {}",
        found.len()
    );
    let keys = OnlineKeys {
        snapshot: org.online.as_ref(),
        timestamp: org.online.as_ref(),
        snapshot_expires: crate::fixture::in_days(7),
        timestamp_expires: crate::fixture::in_days(1),
    };
    let p = publish_changes(&org.repo, Some(&org.pin), &keys, &found)
        .await
        .unwrap();
    assert_eq!(p.roles.len(), found.len());
    let incremental = MerkleRoot::of_snapshot(&org.snapshot().await)
        .unwrap()
        .unwrap();
    // Every bin and the team role "app" are in the tree (targets is in meta).
    assert_eq!(incremental.roles, found.len() as u64 - 1);
    org.publish().await;
    let full = MerkleRoot::of_snapshot(&org.snapshot().await)
        .unwrap()
        .unwrap();
    assert_eq!(
        incremental, full,
        "the incremental tree is the tree over the whole set"
    );

    // Every name is where the delegation search looks for it.
    let state = org.state().await;
    for i in images.iter().step_by(101) {
        let name = format!("{}:{}", i.repository, i.tag);
        let role = state.responsible_roles(&name).pop().unwrap();
        assert!(
            state.targets_of(&role).unwrap().targets.contains_key(&name),
            "{name}"
        );
    }
    // A real image signed and published the ordinary way verifies by every name form.
    let digest = org.push_image("real").await;
    org.sign("real").await;
    org.publish().await;
    for form in crate::fixture::forms("real", &digest) {
        assert_eq!(org.verify(&form).await.unwrap(), digest, "acme/app{form}");
    }
}

/// A write that reads every role (`publish`: the snapshot lists them all) must not build on a
/// partial read: with more bins than a full read holds, it refuses and publishes nothing,
/// where it used to stop reading and sign a snapshot that left bins out (a withheld-role
/// rollback written by the repository itself). `status` still answers, by sampling.
#[tokio::test]
async fn a_full_read_past_its_bound_refuses_rather_than_publish_a_snapshot_missing_roles() {
    let org = Org::new(Place::layout(), Shape::Bins(16)).await;
    let auth =
        ocituf_writer::authority::Authority::of_top_level(&org.state().await.root, "snapshot")
            .unwrap();
    let before = org.repo.newest("snapshot", &auth).await.unwrap().unwrap();
    org.delegate_bins("big", &["big/*".to_owned()], 1 << 17)
        .await;

    let e = State::load(&org.repo, Some(&org.pin))
        .await
        .err()
        .expect("refused");
    assert_eq!(e.kind, ocituf_writer::ErrorKind::Config, "{e}");
    assert!(e.message.contains("more than 66560 targets roles"), "{e}");
    assert!(e.message.contains("ocituf serve"), "says what to do: {e}");
    let keys = ocituf_writer::online::OnlineKeys {
        snapshot: org.online.as_ref(),
        timestamp: org.online.as_ref(),
        snapshot_expires: time::OffsetDateTime::now_utc() + time::Duration::days(7),
        timestamp_expires: time::OffsetDateTime::now_utc() + time::Duration::days(1),
    };
    let p = ocituf_writer::online::publish(&org.repo, Some(&org.pin), &keys).await;
    assert!(p.is_err(), "publish refused");
    let after = org.repo.newest("snapshot", &auth).await.unwrap().unwrap();
    assert_eq!(after.version, before.version, "nothing published");

    let sampled = State::load_sampled(&org.repo, Some(&org.pin), 8, 1)
        .await
        .unwrap();
    assert!(!sampled.is_complete());
    let big = sampled.bins.iter().find(|b| b.delegator == "big").unwrap();
    assert_eq!((big.count, big.sampled.len()), (1 << 17, 8));
}
