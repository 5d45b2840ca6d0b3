//! Attacks on the top-level roles, each fed as bytes with the fixed clock [`NOW`].

mod delegation;
pub(crate) mod fixture;

use time::Duration;

use self::fixture::{Fixture, NOW};
use super::*;
use crate::crypto::{KeyId, Signer};
use crate::editor;
use crate::metadata::{Envelope, MetaFile, RoleKeys, Signature};

/// A trusted set with root v1 of the fixture, timestamp, snapshot and targets loaded.
fn loaded(f: &Fixture) -> TrustedSet {
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    set.update_snapshot(&f.snapshot_bytes(), NOW, Origin::Remote)
        .unwrap();
    set.update_targets(&f.targets_bytes("targets"), NOW)
        .unwrap();
    set
}

#[test]
fn the_whole_workflow_accepts_a_good_repository() {
    let f = Fixture::new();
    let set = loaded(&f);
    assert_eq!(set.root().version, 1);
    assert_eq!(set.timestamp().unwrap().version, 1);
    assert_eq!(set.snapshot().unwrap().version, 1);
    assert_eq!(set.targets().unwrap().version, 1);
}

#[test]
fn rollback_root() {
    let mut f = Fixture::new();
    let v1 = f.root_bytes();
    f.root.version = 2;
    let mut set = TrustedSet::new(&v1).unwrap();
    set.update_root(&f.root_bytes()).unwrap();
    assert!(matches!(
        set.update_root(&v1),
        Err(Error::Rollback { role, trusted: 2, got: 1 }) if role == "root"
    ));
}

#[test]
fn root_version_must_be_the_next_one() {
    let mut f = Fixture::new();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    f.root.version = 3;
    assert!(matches!(
        set.update_root(&f.root_bytes()),
        Err(Error::VersionMismatch {
            expected: 2,
            got: 3,
            ..
        })
    ));
}

#[test]
fn root_rotation_old_threshold() {
    // The new root is signed only by its new key: the old root keys did not vouch for it.
    let mut f = Fixture::new();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    let new = f.new_key();
    f.set_top_role_keys("root", vec![new], 1);
    f.root.version = 2;
    assert!(matches!(
        set.update_root(&f.root_bytes()),
        Err(Error::Threshold { role, valid: 0, threshold: 1 }) if role == "root"
    ));
}

#[test]
fn root_rotation_new_threshold() {
    // Signed by the old key only: the new keys never proved they are held.
    let mut f = Fixture::new();
    let old = f.signers["root"][0].key_id().clone();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    let old_key = f.signers.remove("root").unwrap().remove(0);
    let new = f.new_key();
    f.set_top_role_keys("root", vec![new], 1);
    f.root.version = 2;
    let bytes = Fixture::sign_with(&f.root, &[&old_key]);
    assert!(matches!(
        set.update_root(&bytes),
        Err(Error::Threshold { role, valid: 0, threshold: 1 }) if role == "root"
    ));
    // Signed by both: accepted, and the old key no longer counts.
    let both = editor::add_signature(&bytes, &f.signers["root"][0]).unwrap();
    set.update_root(&both).unwrap();
    assert!(!set.root().roles["root"].keyids.contains(&old));
}

#[test]
fn expired_intermediate_root_is_fine_but_the_final_root_is_not() {
    let mut f = Fixture::new();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    f.root.version = 2;
    f.root.expires = NOW - Duration::days(1);
    set.update_root(&f.root_bytes()).unwrap();
    assert!(matches!(
        set.update_timestamp(&f.timestamp_bytes(), NOW),
        Err(Error::Expired { role, .. }) if role == "root"
    ));
    f.root.version = 3;
    f.root.expires = NOW + Duration::days(1);
    set.update_root(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
}

#[test]
fn root_cannot_change_after_timestamp() {
    let mut f = Fixture::new();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    f.root.version = 2;
    assert!(matches!(
        set.update_root(&f.root_bytes()),
        Err(Error::Order(_))
    ));
}

#[test]
fn rollback_timestamp() {
    let mut f = Fixture::new();
    let old = f.timestamp_bytes();
    f.bump_snapshot();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    let mut fresh = TrustedSet::new(&f.root_bytes()).unwrap();
    fresh.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    assert!(matches!(
        fresh.update_timestamp(&old, NOW),
        Err(Error::Rollback { role, trusted: 2, got: 1 }) if role == "timestamp"
    ));
}

#[test]
fn timestamp_with_the_same_version_changes_nothing() {
    let mut f = Fixture::new();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    f.timestamp
        .meta
        .insert("snapshot.json".into(), MetaFile::new(100));
    assert_eq!(
        set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap(),
        TimestampUpdate::Unchanged
    );
    assert_eq!(set.timestamp().unwrap().snapshot_meta().unwrap().version, 1);
}

#[test]
fn rollback_snapshot_version_in_timestamp() {
    let mut f = Fixture::new();
    f.bump_snapshot();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    f.timestamp.version = 3;
    f.timestamp
        .meta
        .insert("snapshot.json".into(), MetaFile::new(1));
    assert!(matches!(
        set.update_timestamp(&f.timestamp_bytes(), NOW),
        Err(Error::Rollback { role, trusted: 2, got: 1 }) if role == "snapshot"
    ));
}

#[test]
fn freeze_timestamp() {
    let mut f = Fixture::new();
    f.timestamp.expires = NOW - Duration::seconds(1);
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    let later = NOW + Duration::seconds(1);
    assert!(matches!(
        set.update_timestamp(&f.timestamp_bytes(), NOW),
        Err(Error::Expired { role, .. }) if role == "timestamp"
    ));
    // Kept for rollback protection, but nothing can build on it.
    assert!(set.timestamp().is_some());
    assert!(matches!(
        set.update_snapshot(&f.snapshot_bytes(), later, Origin::Remote),
        Err(Error::Expired { role, .. }) if role == "timestamp"
    ));
}

#[test]
fn freeze_snapshot() {
    let mut f = Fixture::new();
    f.snapshot.expires = NOW - Duration::seconds(1);
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    assert!(matches!(
        set.update_snapshot(&f.snapshot_bytes(), NOW, Origin::Remote),
        Err(Error::Expired { role, .. }) if role == "snapshot"
    ));
    assert!(matches!(
        set.update_targets(&f.targets_bytes("targets"), NOW),
        Err(Error::Expired { role, .. }) if role == "snapshot"
    ));
}

#[test]
fn freeze_targets() {
    let mut f = Fixture::new();
    f.targets.get_mut("targets").unwrap().expires = NOW;
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    set.update_snapshot(&f.snapshot_bytes(), NOW, Origin::Remote)
        .unwrap();
    assert!(matches!(
        set.update_targets(&f.targets_bytes("targets"), NOW),
        Err(Error::Expired { role, .. }) if role == "targets"
    ));
}

#[test]
fn mix_and_match_snapshot_hash() {
    let mut f = Fixture::new();
    let other = f.snapshot_bytes();
    f.snapshot.extra.insert("x".into(), "other content".into());
    let real = f.snapshot_bytes();
    f.hash_snapshot_into_timestamp(&real);
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    assert!(matches!(
        set.update_snapshot(&other, NOW, Origin::Remote),
        Err(Error::LengthMismatch { .. } | Error::HashMismatch { .. })
    ));
    set.update_snapshot(&real, NOW, Origin::Remote).unwrap();
}

#[test]
fn mix_and_match_snapshot_version() {
    let mut f = Fixture::new();
    let v1 = f.snapshot_bytes();
    f.bump_snapshot();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    assert!(matches!(
        set.update_snapshot(&v1, NOW, Origin::Remote),
        Err(Error::VersionMismatch { role, expected: 2, got: 1 }) if role == "snapshot"
    ));
}

#[test]
fn rollback_snapshot_targets_version() {
    let mut f = Fixture::new();
    f.bump_targets("targets");
    let cached = f.snapshot_bytes(); // snapshot v1 lists targets v2
    f.bump_snapshot();
    f.snapshot
        .meta
        .insert("targets.json".into(), MetaFile::new(1));
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    // The cached snapshot is not the current one, but it is the rollback reference.
    assert!(set.update_snapshot(&cached, NOW, Origin::Cache).is_err());
    assert!(matches!(
        set.update_snapshot(&f.snapshot_bytes(), NOW, Origin::Remote),
        Err(Error::Rollback { role, trusted: 2, got: 1 }) if role == "targets"
    ));
}

#[test]
fn snapshot_must_not_remove_roles() {
    let mut f = Fixture::new();
    let cached = f.snapshot_bytes();
    f.bump_snapshot();
    f.snapshot.meta.clear();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    assert!(set.update_snapshot(&cached, NOW, Origin::Cache).is_err());
    assert!(matches!(
        set.update_snapshot(&f.snapshot_bytes(), NOW, Origin::Remote),
        Err(Error::MetaRemoved { file }) if file == "targets.json"
    ));
}

#[test]
fn rollback_targets() {
    let mut f = Fixture::new();
    let v1 = f.targets_bytes("targets");
    f.bump_targets("targets");
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    set.update_snapshot(&f.snapshot_bytes(), NOW, Origin::Remote)
        .unwrap();
    assert!(matches!(
        set.update_targets(&v1, NOW),
        Err(Error::VersionMismatch { role, expected: 2, got: 1 }) if role == "targets"
    ));
}

#[test]
fn threshold_not_met() {
    let mut f = Fixture::new();
    let (a, b) = (f.new_key(), f.new_key());
    f.set_top_role_keys("timestamp", vec![a, b], 2);
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    let one = Fixture::sign_with(&f.timestamp, &[&f.signers["timestamp"][0]]);
    assert!(matches!(
        set.update_timestamp(&one, NOW),
        Err(Error::Threshold { role, valid: 1, threshold: 2 }) if role == "timestamp"
    ));
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
}

#[test]
fn duplicate_signature_keyid() {
    let f = Fixture::new();
    let mut envelope = Envelope::parse("timestamp", &f.timestamp_bytes()).unwrap();
    envelope.signatures.push(envelope.signatures[0].clone());
    let bytes = envelope.to_bytes().unwrap();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    assert!(matches!(
        set.update_timestamp(&bytes, NOW),
        Err(Error::DuplicateSignatureKeyId { role, .. }) if role == "timestamp"
    ));
}

#[test]
fn one_key_under_two_keyids_counts_once() {
    let mut f = Fixture::new();
    let k = f.new_key();
    let alias = KeyId::new("alias-of-the-same-key");
    f.root
        .keys
        .insert(k.key_id().clone(), k.public_key().clone());
    f.root.keys.insert(alias.clone(), k.public_key().clone());
    f.root.roles.insert(
        "timestamp".into(),
        RoleKeys::new(vec![k.key_id().clone(), alias.clone()], 2),
    );
    let mut envelope = editor::unsigned(&f.timestamp).unwrap();
    let sig = hex::encode(k.sign(&envelope.signed_bytes().unwrap()).unwrap());
    for id in [k.key_id().clone(), alias] {
        envelope.signatures.push(Signature {
            keyid: id,
            sig: sig.clone(),
            extra: BTreeMap::new(),
        });
    }
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    assert!(matches!(
        set.update_timestamp(&envelope.to_bytes().unwrap(), NOW),
        Err(Error::Threshold {
            valid: 1,
            threshold: 2,
            ..
        })
    ));
}

#[test]
fn empty_and_garbage_signatures_are_ignored() {
    let mut f = Fixture::new();
    let (a, b, c) = (f.new_key(), f.new_key(), f.new_key());
    f.set_top_role_keys("timestamp", vec![a, b, c], 1);
    let mut envelope = Envelope::parse(
        "timestamp",
        &Fixture::sign_with(&f.timestamp, &[&f.signers["timestamp"][0]]),
    )
    .unwrap();
    for (k, sig) in f.signers["timestamp"][1..].iter().zip(["", "zz-not-hex"]) {
        envelope.signatures.push(Signature {
            keyid: k.key_id().clone(),
            sig: sig.into(),
            extra: BTreeMap::new(),
        });
    }
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&envelope.to_bytes().unwrap(), NOW)
        .unwrap();
}

#[test]
fn wrong_type() {
    let f = Fixture::new();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    // Timestamp bytes offered as the snapshot.
    assert!(matches!(
        set.update_snapshot(&f.timestamp_bytes(), NOW, Origin::Remote),
        Err(Error::WrongType { expected, got }) if expected == "snapshot" && got == "timestamp"
    ));
}

#[test]
fn endless_data() {
    let mut f = Fixture::new();
    let real = f.targets_bytes("targets");
    let meta = f.snapshot.meta.get_mut("targets.json").unwrap();
    meta.length = Some(real.len() as u64);
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    set.update_snapshot(&f.snapshot_bytes(), NOW, Origin::Remote)
        .unwrap();
    let mut long = real.clone();
    long.extend(std::iter::repeat_n(b' ', 1 << 16));
    assert!(matches!(
        set.update_targets(&long, NOW),
        Err(Error::LengthMismatch { actual, .. }) if actual == long.len() as u64
    ));
    set.update_targets(&real, NOW).unwrap();
}

#[test]
fn fast_forward_recovery() {
    // An attacker with the timestamp key pushed timestamp v1000; the repository rotates the
    // timestamp key in root v2 and goes on at v2. The cached v1000 must not block it.
    let mut f = Fixture::new();
    f.timestamp.version = 1000;
    let attacked = f.timestamp_bytes();
    let v1 = f.root_bytes();
    let new = f.new_key();
    f.set_top_role_keys("timestamp", vec![new], 1);
    f.root.version = 2;
    let v2 = f.root_bytes();
    f.timestamp.version = 2;

    let mut set = TrustedSet::new(&v1).unwrap();
    set.update_root(&v2).unwrap();
    // The updater reloads the cached timestamp through the new root: refused.
    assert!(matches!(
        set.update_timestamp(&attacked, NOW),
        Err(Error::Threshold { role, .. }) if role == "timestamp"
    ));
    assert!(set.timestamp().is_none());
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    assert_eq!(set.timestamp().unwrap().version, 2);
}

#[test]
fn key_compromise() {
    // Root v2 revokes the snapshot key; a snapshot signed with it is refused.
    let mut f = Fixture::new();
    let v1 = f.root_bytes();
    let revoked_key = f.signers.remove("snapshot").unwrap().remove(0);
    let new = f.new_key();
    f.set_top_role_keys("snapshot", vec![new], 1);
    f.root.keys.remove(revoked_key.key_id());
    f.root.version = 2;
    let mut set = TrustedSet::new(&v1).unwrap();
    set.update_root(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    let forged = Fixture::sign_with(&f.snapshot, &[&revoked_key]);
    assert!(matches!(
        set.update_snapshot(&forged, NOW, Origin::Remote),
        Err(Error::Threshold { role, valid: 0, .. }) if role == "snapshot"
    ));
    set.update_snapshot(&f.snapshot_bytes(), NOW, Origin::Remote)
        .unwrap();
}

#[test]
fn unknown_fields_are_signed_over() {
    let mut f = Fixture::new();
    f.timestamp
        .extra
        .insert("x-unknown".into(), serde_json::json!({"b": 1, "a": [1, 2]}));
    let bytes = f.timestamp_bytes();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    // Tamper with the unknown field only: the signature no longer holds.
    let mut envelope = Envelope::parse("timestamp", &bytes).unwrap();
    envelope.signed["x-unknown"]["b"] = serde_json::json!(2);
    assert!(matches!(
        set.update_timestamp(&envelope.to_bytes().unwrap(), NOW),
        Err(Error::Threshold { valid: 0, .. })
    ));
    // Non-canonical whitespace and key order in the file do not matter: the signature is over
    // the canonical form of `signed` as received.
    let pretty = serde_json::to_vec_pretty(&crate::cjson::parse(&bytes).unwrap()).unwrap();
    set.update_timestamp(&pretty, NOW).unwrap();
}

#[test]
fn cached_snapshot_that_is_not_current_is_a_rollback_reference_only() {
    let mut f = Fixture::new();
    let cached = f.snapshot_bytes();
    f.bump_snapshot();
    let mut set = TrustedSet::new(&f.root_bytes()).unwrap();
    set.update_timestamp(&f.timestamp_bytes(), NOW).unwrap();
    assert!(matches!(
        set.update_snapshot(&cached, NOW, Origin::Cache),
        Err(Error::VersionMismatch {
            expected: 2,
            got: 1,
            ..
        })
    ));
    assert!(matches!(
        set.update_targets(&f.targets_bytes("targets"), NOW),
        Err(Error::VersionMismatch { .. })
    ));
    set.update_snapshot(&f.snapshot_bytes(), NOW, Origin::Remote)
        .unwrap();
    set.update_targets(&f.targets_bytes("targets"), NOW)
        .unwrap();
}

mod hostile_bytes {
    //! Mutated metadata never panics the trusted set: it is accepted or refused.

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn mutated_metadata_is_refused_or_accepted_never_a_panic(
            which in 0usize..4,
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let f = Fixture::new();
            let files = [
                f.root_bytes(),
                f.timestamp_bytes(),
                f.snapshot_bytes(),
                f.targets_bytes("targets"),
            ];
            let mut bytes = files[which].clone();
            for (at, value) in &flips {
                let i = at.index(bytes.len());
                bytes[i] = *value;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            let mut set = TrustedSet::new(&files[0]).unwrap();
            let result = match which {
                0 => set.update_root(&bytes).map(|_| ()),
                1 => set.update_timestamp(&bytes, NOW).map(|_| ()),
                2 => {
                    set.update_timestamp(&files[1], NOW).unwrap();
                    set.update_snapshot(&bytes, NOW, Origin::Remote)
                }
                _ => {
                    set.update_timestamp(&files[1], NOW).unwrap();
                    set.update_snapshot(&files[2], NOW, Origin::Remote).unwrap();
                    set.update_targets(&bytes, NOW)
                }
            };
            // A changed file either still carries a valid signature over the same signed
            // value (a flip in insignificant bytes) or is refused.
            if result.is_ok() && bytes != files[which] {
                let a = Envelope::parse("x", &bytes).unwrap().signed;
                let b = Envelope::parse("x", &files[which]).unwrap().signed;
                prop_assert!(a == b);
            }
        }
    }
}
