//! TUF's attack classes (specification §5, the client workflow), one named test each, run on
//! both registries through the adversarial proxy. "Key compromise" tests sign with the
//! (single, test) online key what an attacker holding it would sign; the others only lie
//! with what the registry serves.

use ocituf_resolver::{Error, ErrorKind};
use ocituf_testkit::{Behaviour, Match};
use ocituf_tuf::crypto::Signer;
use ocituf_tuf::Error as Tuf;
use time::{Duration, OffsetDateTime};

use super::{is_digest_refusal, oci_error, tuf_error, Hostile, Kind};
use crate::on_both;

fn hide_above(class: &str, version: u64) -> Behaviour {
    Behaviour::HideVersionsAbove {
        class: class.to_owned(),
        version,
    }
}

/// TUF 5.4.3: the registry re-serves timestamp v1 to a client that trusts v2.
async fn rollback_timestamp_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.publish_next().await;
    let ok = f.resolve("1.0").await.unwrap();
    assert_eq!(ok.versions["timestamp"], 2);
    let trusted = f.trusted_state();
    f.proxy.add(Match::listings(), hide_above("timestamp", 1));
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(
        matches!(tuf_error(&err), Tuf::Rollback { role, trusted: 2, got: 1 } if role == "timestamp"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(rollback_timestamp, super::rollback_timestamp_body);

/// TUF 5.4.3.2: a timestamp signed with the timestamp key (compromised) that names an older
/// snapshot than the trusted timestamp does.
async fn rollback_snapshot_with_a_compromised_timestamp_key_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    let old = f.repo.clone();
    f.publish_next().await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    let mut forged = old;
    forged.timestamp.version = 3;
    let signers: [&dyn Signer; 1] = [&f.key];
    let ts = forged.sign_timestamp(&signers).unwrap();
    f.publisher.push("timestamp", &ts, None).await.unwrap();
    // With the genuine v2 listed, the forged v3 is refused and v2 kept (a candidate that
    // fails is skipped): the registry hides v2 to force the question.
    let ok = f.resolve("1.0").await.unwrap();
    assert_eq!((ok.versions["timestamp"], ok.versions["snapshot"]), (2, 2));
    f.proxy.add(
        Match::listings(),
        Behaviour::HideVersion {
            class: "timestamp".into(),
            version: 2,
        },
    );
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(
        matches!(tuf_error(&err), Tuf::Rollback { role, trusted: 2, got: 1 } if role == "snapshot"),
        "{err:?}"
    );
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(
    rollback_snapshot_with_a_compromised_timestamp_key,
    super::rollback_snapshot_with_a_compromised_timestamp_key_body
);

/// TUF 5.5.5: a snapshot signed with the snapshot key (compromised) that lists an older
/// targets version than the trusted snapshot does.
async fn rollback_targets_with_a_compromised_snapshot_key_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    let old = f.repo.clone();
    f.publish_next().await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    let mut forged = old;
    let signers: [&dyn Signer; 1] = [&f.key];
    forged.snapshot.version = 3;
    forged.timestamp.version = 3;
    let snap = forged.sign_snapshot(&signers).unwrap();
    let ts = forged.sign_timestamp(&signers).unwrap();
    f.publisher.push("snapshot", &snap, None).await.unwrap();
    f.publisher.push("timestamp", &ts, None).await.unwrap();
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(
        matches!(tuf_error(&err), Tuf::Rollback { role, trusted: 2, got: 1 } if role == "targets"),
        "{err:?}"
    );
    // The timestamp v3 is validly signed (the key is compromised) and names a newer
    // snapshot: it is trusted; the snapshot and targets are not.
    f.assert_trusted(&trusted, &[&ts]);
}
on_both!(
    rollback_targets_with_a_compromised_snapshot_key,
    super::rollback_targets_with_a_compromised_snapshot_key_body
);

/// Freeze (TUF 5.4.4): the registry hides the newest timestamp and serves an older one that
/// has expired since; a new client refuses it rather than trusting stale metadata. The
/// control resolve shows the fresh version is there when not hidden.
async fn freeze_hides_the_newest_timestamp_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    // Timestamp v2 expired an hour ago (as v1 would have, later): the frozen view.
    f.repo
        .bump("timestamp", OffsetDateTime::now_utc() - Duration::hours(1))
        .unwrap();
    f.publish(false).await;
    f.publish_next().await; // v3, fresh
    f.proxy.add(Match::listings(), hide_above("timestamp", 2));
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(
        matches!(tuf_error(&err), Tuf::Expired { role, .. } if role == "timestamp"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert!(
        f.trusted_state().is_empty(),
        "{:?}",
        f.trusted_state().keys()
    );
    f.proxy.clear();
    assert_eq!(f.resolve("1.0").await.unwrap().versions["timestamp"], 3);
}
on_both!(
    freeze_hides_the_newest_timestamp,
    super::freeze_hides_the_newest_timestamp_body
);

/// Indefinite freeze of a warm client: the registry keeps serving the timestamp the client
/// already has, and it has expired. (Expiry in the test's present: the client's cache holds
/// a timestamp that a later, frozen registry keeps re-serving.)
async fn indefinite_freeze_of_an_expired_timestamp_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    // v2 is published but expired on arrival; v3 is fresh and hidden.
    f.repo
        .bump(
            "timestamp",
            OffsetDateTime::now_utc() - Duration::minutes(1),
        )
        .unwrap();
    f.publish(false).await;
    f.publish_next().await;
    f.proxy.add(Match::listings(), hide_above("timestamp", 2));
    let trusted = f.trusted_state();
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(
        matches!(tuf_error(&err), Tuf::Expired { role, .. } if role == "timestamp"),
        "{err:?}"
    );
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(
    indefinite_freeze_of_an_expired_timestamp,
    super::indefinite_freeze_of_an_expired_timestamp_body
);

/// Mix-and-match: snapshot v2 names targets v2 by hash; the registry serves targets v1 under
/// that digest. Refused by the content address before TUF parses a byte.
async fn mix_and_match_targets_of_another_snapshot_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    let first = f.repo.clone();
    let signers: [&dyn Signer; 1] = [&f.key];
    let old_targets = first.clone().sign_targets("targets", &signers).unwrap();
    f.resolve("1.0").await.unwrap();
    let published = f.publish_next().await;
    let trusted = f.trusted_state();
    let wanted = ocituf_oci::Digest::of(&published["targets"]);
    f.proxy.add(
        Match::blob(wanted.as_str()),
        Behaviour::ReplaceBody(old_targets),
    );
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(is_digest_refusal(&err, &wanted), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Refused);
    f.assert_trusted(&trusted, &[&published["timestamp"], &published["snapshot"]]);
}
on_both!(
    mix_and_match_targets_of_another_snapshot,
    super::mix_and_match_targets_of_another_snapshot_body
);

/// Arbitrary software: the registry moves the signed tag to a digest nobody signed.
async fn arbitrary_software_tag_moved_to_an_unsigned_digest_body(kind: Kind) {
    let (f, signed) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    let (evil, _) = f.push_image("evil", "evil").await;
    f.proxy.add(
        Match::path("/v2/acme/app/manifests/1.0"),
        Behaviour::Rewrite {
            from: "/manifests/1.0".into(),
            to: format!("/manifests/{evil}"),
        },
    );
    let err = f.resolve("1.0").await.unwrap_err();
    match &err {
        Error::DigestMismatch {
            served,
            signed: s,
            role,
            role_version: 1,
            ..
        } => {
            assert_eq!(*served, evil);
            assert_eq!(*s, signed);
            assert_eq!(role, "targets");
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(
    arbitrary_software_tag_moved_to_an_unsigned_digest,
    super::arbitrary_software_tag_moved_to_an_unsigned_digest_body
);

/// Arbitrary software, pushed as metadata: targets, snapshot and timestamp v2 signed by a key
/// the root does not name. The forged timestamp is refused (threshold) and the genuine v1
/// still wins: the forged target is never trusted.
async fn arbitrary_software_signed_by_an_unknown_key_body(kind: Kind) {
    let (f, signed) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    let (evil, len) = f.push_image("2.0", "evil").await;
    let mut forged = f.repo.clone();
    let evil_key =
        ocituf_tuf::crypto::PrivateKey::generate(ocituf_tuf::crypto::KeyKind::Ed25519).unwrap();
    let file = ocituf_tuf::metadata::TargetFile {
        length: len,
        hashes: std::collections::BTreeMap::from([("sha256".to_owned(), evil.hex().to_owned())]),
        custom: None,
        extra: std::collections::BTreeMap::new(),
    };
    forged.add_target("targets", "acme/app:2.0", file).unwrap();
    let exp = OffsetDateTime::now_utc() + Duration::days(1);
    for role in ["targets", "snapshot", "timestamp"] {
        forged.bump(role, exp).unwrap();
    }
    let signers: [&dyn Signer; 1] = [&evil_key];
    let t = forged.sign_targets("targets", &signers).unwrap();
    let s = forged.sign_snapshot(&signers).unwrap();
    let ts = forged.sign_timestamp(&signers).unwrap();
    f.publisher.push("targets", &t, None).await.unwrap();
    f.publisher.push("snapshot", &s, None).await.unwrap();
    f.publisher.push("timestamp", &ts, None).await.unwrap();
    let err = f.resolve("2.0").await.unwrap_err();
    assert!(matches!(err, Error::NotSigned { .. }), "{err:?}");
    let ok = f.resolve("1.0").await.unwrap();
    assert_eq!(ok.digest, signed);
    assert_eq!(ok.versions["timestamp"], 1);
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(
    arbitrary_software_signed_by_an_unknown_key,
    super::arbitrary_software_signed_by_an_unknown_key_body
);

/// Endless data (TUF 5.4.1): every metadata blob is an endless stream. A new client's
/// timestamp read stops at its byte limit (16 KiB) for every candidate; nothing is trusted.
/// (A warm client skips the endless candidate and keeps its cached timestamp: a freeze,
/// bounded by expiry, see `freeze_hides_the_newest_timestamp`.)
async fn endless_data_timestamp_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.publish_next().await;
    f.proxy.add(
        Match {
            method: Some("GET".into()),
            path_contains: Some("/acme/tuf/blobs/".into()),
            ..Match::default()
        },
        Behaviour::EndlessBody,
    );
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(
        matches!(
            tuf_error(&err),
            Tuf::Source(ocituf_tuf::SourceError::TooLarge { max_len: 16384, .. })
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert!(f.trusted_state().is_empty());
}
on_both!(endless_data_timestamp, super::endless_data_timestamp_body);

/// Endless data behind a trusted length: the snapshot blob never ends; the read stops at the
/// length the trusted timestamp gives it.
async fn endless_data_snapshot_stops_at_the_signed_length_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    let published = f.publish_next().await;
    let snap = ocituf_oci::Digest::of(&published["snapshot"]);
    f.proxy
        .add(Match::blob(snap.as_str()), Behaviour::EndlessBody);
    let err = f.resolve("1.0").await.unwrap_err();
    let len = published["snapshot"].len() as u64;
    assert!(
        matches!(
            tuf_error(&err),
            Tuf::Source(ocituf_tuf::SourceError::TooLarge { max_len, .. }) if *max_len == len
        ),
        "{err:?}"
    );
    f.assert_trusted(&trusted, &[&published["timestamp"]]);
}
on_both!(
    endless_data_snapshot_stops_at_the_signed_length,
    super::endless_data_snapshot_stops_at_the_signed_length_body
);

/// Slow retrieval: the registry drip-feeds metadata one byte every 3 s; the client's read
/// timeout cuts it off (a network failure, exit 3), and nothing is trusted.
async fn slow_retrieval_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    f.publish_next().await;
    f.proxy.add(
        Match::path("/acme/tuf/blobs/"),
        Behaviour::SlowBody {
            delay: std::time::Duration::from_secs(3),
        },
    );
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(
        matches!(oci_error(&err), ocituf_oci::Error::Registry(_)),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Network);
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(slow_retrieval, super::slow_retrieval_body);

/// Extraneous dependencies / a compromised delegated key (TUF 5.7.5): the team key of role
/// `app`, delegated `acme/app:*`, also signs `acme/tools:1.0`. Clients never trust a role
/// for names outside its delegated paths: the image is not signed, while the team's own
/// image still verifies.
async fn extraneous_dependencies_outside_a_delegated_role_paths_body(kind: Kind) {
    use ocituf_tuf::crypto::{KeyKind, PrivateKey};
    use ocituf_tuf::metadata::DelegatedRole;
    let (mut f, signed) = Hostile::start(kind).await;
    let team = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let role = DelegatedRole::with_paths("app", vec![team.key_id().clone()], 1, &["acme/app:*"]);
    f.repo
        .delegate(
            "targets",
            role,
            &[(team.key_id().clone(), team.public_key().clone())],
        )
        .unwrap();
    let (d2, len2) = f.push_image("2.0", "two").await;
    let file = |d: &ocituf_oci::Digest, length: u64| ocituf_tuf::metadata::TargetFile {
        length,
        hashes: std::collections::BTreeMap::from([("sha256".to_owned(), d.hex().to_owned())]),
        custom: None,
        extra: std::collections::BTreeMap::new(),
    };
    f.repo
        .add_target("app", "acme/app:2.0", file(&d2, len2))
        .unwrap();
    f.repo
        .add_target("app", "acme/tools:1.0", file(&signed, 247))
        .unwrap();
    let exp = OffsetDateTime::now_utc() + Duration::days(1);
    for role in ["targets", "snapshot", "timestamp"] {
        f.repo.bump(role, exp).unwrap();
    }
    let app = f.repo.sign_targets("app", &[&team]).unwrap();
    f.publisher.push("app", &app, None).await.unwrap();
    f.publish(false).await;
    f.resolve("2.0").await.unwrap();
    let trusted = f.trusted_state();
    let err = f
        .resolver()
        .resolve(&f.image("acme/tools:1.0"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotSigned { target, .. } if target == "acme/tools:1.0"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(
    extraneous_dependencies_outside_a_delegated_role_paths,
    super::extraneous_dependencies_outside_a_delegated_role_paths_body
);

/// Slow retrieval just faster than the read timeout: a byte every 0.5 s never trips the 2 s
/// read timeout, and each request would run to its own timeout; the resolve's deadline
/// (here 3 s, 5 min by default) ends it.
async fn slow_retrieval_below_the_read_timeout_hits_the_deadline_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    f.publish_next().await;
    f.proxy.add(
        Match::path("/acme/tuf/blobs/"),
        Behaviour::SlowBody {
            delay: std::time::Duration::from_millis(500),
        },
    );
    let deadline = std::time::Duration::from_secs(3);
    let err = f
        .resolver()
        .with_deadline(deadline)
        .resolve(&f.image("acme/app:1.0"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Deadline { after, .. } if after == deadline),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Network);
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(
    slow_retrieval_below_the_read_timeout_hits_the_deadline,
    super::slow_retrieval_below_the_read_timeout_hits_the_deadline_body
);

/// Fast-forward attack and recovery (TUF 5.3.11): a thief of the timestamp key pushes
/// timestamp v1000, which clients accept (that is what a key compromise means). The owners
/// rotate the timestamp key in root v2 and publish timestamp v2 with the new key: the
/// client follows the root, drops its cached v1000, refuses the still-listed v1000 (its key
/// is no longer trusted) and accepts v2, which a plain rollback check would have refused.
async fn fast_forward_recovery_after_timestamp_key_rotation_body(kind: Kind) {
    use ocituf_tuf::crypto::{KeyKind, PrivateKey};
    let (mut f, signed) = Hostile::start(kind).await;
    let signers: [&dyn Signer; 1] = [&f.key];
    let mut stolen = f.repo.clone();
    stolen.timestamp.version = 1000;
    let ts = stolen.sign_timestamp(&signers).unwrap();
    f.publisher.push("timestamp", &ts, None).await.unwrap();
    assert_eq!(f.resolve("1.0").await.unwrap().versions["timestamp"], 1000);

    let new_key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let old_id = f.key.key_id().clone();
    f.repo.revoke_key("timestamp", &old_id).unwrap();
    f.repo.add_signer_key("timestamp", &new_key).unwrap();
    f.repo
        .bump("root", OffsetDateTime::now_utc() + Duration::days(1))
        .unwrap();
    let root = f.repo.sign_root(&signers).unwrap();
    f.publisher.push("root", &root, None).await.unwrap();
    f.repo
        .bump("timestamp", OffsetDateTime::now_utc() + Duration::days(1))
        .unwrap();
    let ts2 = f.repo.sign_timestamp(&[&new_key]).unwrap();
    f.publisher.push("timestamp", &ts2, None).await.unwrap();

    let ok = f.resolve("1.0").await.unwrap();
    assert_eq!(ok.digest, signed);
    assert_eq!((ok.versions["root"], ok.versions["timestamp"]), (2, 2));
    let cached_ts = f
        .trusted_state()
        .into_iter()
        .find(|(p, _)| p.ends_with("timestamp.json"))
        .unwrap()
        .1;
    assert_eq!(cached_ts, ts2);
}
on_both!(
    fast_forward_recovery_after_timestamp_key_rotation,
    super::fast_forward_recovery_after_timestamp_key_rotation_body
);
