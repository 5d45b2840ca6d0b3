//! The fate of a submission, decided from the registry as a client would: accepted in a
//! timestamp, told to rebase when another version took its place, or rejected with the
//! check that failed. A refused submission publishes nothing.

use std::time::Duration;

use ocituf_signer::{Fate, Rejection, Signer};
use ocituf_tuf::crypto::Signer as _;

use crate::fixture::{key, Org, Registry, TEAM};

const WAIT: Duration = Duration::from_secs(60);

/// An org on the fallback registry whose `app` role has one signed and published image.
async fn org_with_one_image() -> (Org, Signer) {
    let org = Org::new(Registry::Distribution(ocituf_testkit::Distribution::start())).await;
    let signer = org.start_signer();
    org.push_image("1.0").await;
    let (role, version) = org.sign("1.0").await;
    let fate = signer
        .submit("acme", &role, version, None, WAIT)
        .await
        .unwrap();
    assert!(matches!(fate, Fate::Accepted { .. }), "{fate:?}");
    (org, signer)
}

/// `fate` is a refusal and, a poll interval and more later, no timestamp was published.
async fn refused_and_nothing_published(org: &Org, signer: &Signer, before: u64, fate: &Fate) {
    assert!(
        matches!(fate, Fate::Rejected { .. } | Fate::Conflict { .. }),
        "{fate:?}"
    );
    tokio::time::sleep(signer.poll_interval() * 2).await;
    assert_eq!(
        org.newest_timestamp().await,
        before,
        "a refused submission published a timestamp"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_signed_by_a_key_its_delegator_does_not_name_is_rejected() {
    let (org, signer) = org_with_one_image().await;
    let v1 = org.app_newest().await;
    let before = org.newest_timestamp().await;
    let intruder = key(9);
    let digest = org
        .push_crafted(
            "app",
            2,
            Some(&v1),
            "acme/app:evil",
            &[&intruder],
            Some(&v1.manifest),
        )
        .await;
    let fate = submit(&signer, "app", 2, &digest).await;
    let Fate::Rejected {
        why: Rejection::UnknownKeys { keyids, threshold },
    } = &fate
    else {
        panic!("{fate:?}");
    };
    assert_eq!(*threshold, 1);
    assert!(
        intruder.key_id().as_str().starts_with(&keyids[0]),
        "{keyids:?}"
    );
    assert!(fate_text(&fate).contains("signed by a key its delegator does not name"));
    refused_and_nothing_published(&org, &signer, before, &fate).await;
    assert!(org.resolver().resolve(&org.image("evil")).await.is_err());
    signer.stop().await;
}

/// Submissions judged at once share one delegation read (crates/signer/src/fate.rs
/// `SharedReads`): a forged version submitted beside a valid one is still checked against
/// the delegator's keys on its own, and only the valid one is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_submission_judged_beside_a_valid_one_is_rejected_alone() {
    let (org, signer) = org_with_one_image().await;
    let v1 = org.app_newest().await;
    let (team, intruder) = (key(TEAM), key(9));
    let good = org
        .push_crafted(
            "app",
            2,
            Some(&v1),
            "acme/app:good",
            &[&team],
            Some(&v1.manifest),
        )
        .await;
    let evil = org
        .push_crafted(
            "app",
            2,
            Some(&v1),
            "acme/app:evil",
            &[&intruder],
            Some(&v1.manifest),
        )
        .await;
    let (good_fate, evil_fate) = tokio::join!(
        submit(&signer, "app", 2, &good),
        submit(&signer, "app", 2, &evil)
    );
    assert!(
        matches!(
            evil_fate,
            Fate::Rejected {
                why: Rejection::UnknownKeys { .. }
            }
        ),
        "{evil_fate:?}"
    );
    assert!(matches!(good_fate, Fate::Accepted { .. }), "{good_fate:?}");
    assert_eq!(
        org.app_newest().await.manifest,
        good,
        "the verified version 2"
    );
    let status = signer.status("acme").unwrap();
    assert_eq!(status.roles.get("app"), Some(&2));
    assert!(!status.forked.contains("app"), "{status:?}");
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_with_its_signatures_stripped_is_below_threshold_and_rejected() {
    let (org, signer) = org_with_one_image().await;
    let v1 = org.app_newest().await;
    let before = org.newest_timestamp().await;
    let digest = org
        .push_crafted(
            "app",
            2,
            Some(&v1),
            "acme/app:unsigned",
            &[],
            Some(&v1.manifest),
        )
        .await;
    let fate = submit(&signer, "app", 2, &digest).await;
    assert_eq!(
        fate,
        Fate::Rejected {
            why: Rejection::BelowThreshold {
                valid: 0,
                threshold: 1
            }
        }
    );
    refused_and_nothing_published(&org, &signer, before, &fate).await;
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_of_a_version_nobody_pushed_is_rejected() {
    let (org, signer) = org_with_one_image().await;
    let before = org.newest_timestamp().await;
    let fate = signer.submit("acme", "app", 7, None, WAIT).await.unwrap();
    assert_eq!(
        fate,
        Fate::Rejected {
            why: Rejection::NotPushed
        }
    );
    refused_and_nothing_published(&org, &signer, before, &fate).await;
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_of_a_role_nobody_delegates_is_rejected() {
    let (org, signer) = org_with_one_image().await;
    let before = org.newest_timestamp().await;
    let team = key(TEAM);
    let digest = org
        .push_crafted("rogue", 1, None, "acme/rogue:1", &[&team], None)
        .await;
    let fate = submit(&signer, "rogue", 1, &digest).await;
    assert_eq!(
        fate,
        Fate::Rejected {
            why: Rejection::NotDelegated
        }
    );
    refused_and_nothing_published(&org, &signer, before, &fate).await;
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_that_skips_a_version_on_a_stale_parent_is_told_to_rebase() {
    let (org, signer) = org_with_one_image().await;
    let v1 = org.app_newest().await;
    org.push_image("1.1").await;
    let (_, v) = org.sign("1.1").await;
    assert_eq!(v, 2);
    let team = key(TEAM);
    // Built on version 1 while version 2 exists, and numbered past it.
    let digest = org
        .push_crafted(
            "app",
            3,
            Some(&v1),
            "acme/app:stale",
            &[&team],
            Some(&v1.manifest),
        )
        .await;
    let fate = submit(&signer, "app", 3, &digest).await;
    let Fate::Conflict { rebase_on, why } = &fate else {
        panic!("{fate:?}");
    };
    assert_eq!(*rebase_on, 2, "{why}");
    assert!(why.contains("stale parent"), "{why}");
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_on_a_stale_parent_is_told_to_rebase() {
    let (org, signer) = org_with_one_image().await;
    let v1 = org.app_newest().await;
    let team = key(TEAM);
    // Two publishers built version 2 on version 1: one place, two rivals that differ.
    let a = org
        .push_crafted(
            "app",
            2,
            Some(&v1),
            "acme/app:a",
            &[&team],
            Some(&v1.manifest),
        )
        .await;
    let b = org
        .push_crafted(
            "app",
            2,
            Some(&v1),
            "acme/app:b",
            &[&team],
            Some(&v1.manifest),
        )
        .await;
    let (winner, loser) = if a < b { (a, b) } else { (b, a) };
    let fate = submit(&signer, "app", 2, &loser).await;
    let Fate::Conflict { rebase_on, why } = &fate else {
        panic!("{fate:?}");
    };
    assert_eq!(*rebase_on, 2, "{why}");
    assert!(why.contains(winner.as_str()), "{why}");
    signer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_naming_its_digest_is_accepted_in_a_timestamp_that_lists_it() {
    let (org, signer) = org_with_one_image().await;
    let before = org.newest_timestamp().await;
    let v1 = org.app_newest().await;
    let team = key(TEAM);
    let digest = org
        .push_crafted(
            "app",
            2,
            Some(&v1),
            "acme/app:next",
            &[&team],
            Some(&v1.manifest),
        )
        .await;
    let fate = submit(&signer, "app", 2, &digest).await;
    let Fate::Accepted {
        timestamp_version,
        listed,
    } = fate
    else {
        panic!("{fate:?}");
    };
    assert_eq!(listed, 2);
    assert!(timestamp_version > before, "{timestamp_version} {before}");
    assert_eq!(org.app_newest().await.manifest, digest);
    signer.stop().await;
}

/// Submit `version` of `role` naming the manifest `digest` pushed.
async fn submit(signer: &Signer, role: &str, version: u64, digest: &ocituf_oci::Digest) -> Fate {
    signer
        .submit("acme", role, version, Some(digest), WAIT)
        .await
        .unwrap()
}

fn fate_text(f: &Fate) -> String {
    match f {
        Fate::Rejected { why } => why.to_string(),
        other => format!("{other:?}"),
    }
}
