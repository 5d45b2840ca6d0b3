//! Retention in the signer (docs/oci-mapping.md §8, crates/signer/src/retention.rs) on the
//! fallback registry: after many re-signs only the kept timestamp and snapshot versions and
//! the live versions of the team role remain, each fallback index lists exactly the role
//! versions that still exist, and a client still verifies the signed images.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ocituf_oci::mapping::{Anchor, RootOfTrustName, MAX_MANIFEST_LEN};
use ocituf_oci::{ArtifactStore as _, Digest, ManifestRef};
use ocituf_signer::{Config, Signer};
use ocituf_testkit::Distribution;

use crate::fixture::{Org, Registry};

/// The fixture's signer.toml with `extra` lines in its root of trust, re-signing every
/// second, written beside it.
fn config_with(org: &Org, extra: &str) -> std::path::PathBuf {
    let text = org
        .config_text()
        .replace("resign-every = \"6h\"", "resign-every = \"1s\"");
    let path = org.dir.path().join("signer-retention.toml");
    std::fs::write(&path, format!("{text}{extra}\n")).unwrap();
    path
}

/// The digests the fallback index of `role`'s anchor lists (`sha256-<anchor hex>`).
async fn fallback_index(org: &Org, role: &str) -> BTreeSet<Digest> {
    let anchor = Anchor::for_role(&RootOfTrustName::parse("acme").unwrap(), role).unwrap();
    let tag = format!("sha256-{}", anchor.digest().hex());
    let index = org
        .repo
        .store
        .get_manifest(ManifestRef::Tag(&tag), MAX_MANIFEST_LEN)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no fallback index {tag} for {role}"));
    let v: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Digest::parse(e["digest"].as_str().unwrap()).unwrap())
        .collect()
}

/// The short names (first 32 hex digits) of the referrers of `role`'s anchor that hold a
/// unique referrer tag in the registry's storage: what exists, whatever the index says.
fn referrer_tags_on_disk(registry: &Distribution, role: &str) -> BTreeSet<String> {
    let anchor = Anchor::for_role(&RootOfTrustName::parse("acme").unwrap(), role).unwrap();
    let prefix = format!("sha256-{}.", anchor.digest().hex());
    let tags = registry
        .storage_dir()
        .join("docker/registry/v2/repositories/acme/tuf/_manifests/tags");
    std::fs::read_dir(tags)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_prefix(&prefix).map(str::to_owned)
        })
        .collect()
}

/// The versions of `role` listed, each claimed by one artifact only (no fork).
async fn listed(org: &Org, role: &str) -> Vec<u64> {
    org.versions_claimed(role)
        .await
        .into_iter()
        .map(|(v, digests)| {
            assert_eq!(digests.len(), 1, "{role} v{v} claimed twice: {digests:?}");
            v
        })
        .collect()
}

#[tokio::test]
async fn after_many_resigns_only_kept_versions_remain_and_the_fallback_index_lists_what_exists() {
    let org = Org::new(Registry::Distribution(Distribution::start())).await;
    let first = org.push_image("1.0").await;
    org.sign("1.0").await;
    let config = Config::load(&config_with(
        &org,
        "keep-timestamps = 2\nkeep-snapshots = 3",
    ))
    .unwrap();
    assert_eq!(config.roots[0].retention.keep_timestamps, 2);
    let signer = Signer::start(&config, &ocituf_oci::RegistryOptions::default()).unwrap();
    signer
        .submit("acme", "app", 1, None, Duration::from_secs(60))
        .await
        .unwrap();
    let second = org.push_image("1.1").await;
    let (role, version) = org.sign("1.1").await;
    assert_eq!((role.as_str(), version), ("app", 2));
    signer
        .submit("acme", "app", 2, None, Duration::from_secs(60))
        .await
        .unwrap();
    // Re-signs every second: wait for several more publishes over app v2.
    let start = Instant::now();
    let target = signer.status("acme").unwrap().publishes + 6;
    while signer.status("acme").unwrap().publishes < target {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no re-signs: {:?}",
            signer.status("acme")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = signer.status("acme").unwrap();
    assert_eq!(status.last_error, None);
    let newest_ts = status.timestamp_version.unwrap();
    let newest_snap = status.snapshot_version.unwrap();
    // stop() waits for the batch under way, its prune included.
    signer.stop().await;

    let Registry::Distribution(registry) = &org.registry else {
        unreachable!()
    };
    assert_eq!(
        listed(&org, "timestamp").await,
        vec![newest_ts - 1, newest_ts]
    );
    assert_eq!(
        listed(&org, "snapshot").await,
        vec![newest_snap - 2, newest_snap - 1, newest_snap]
    );
    // The signer prunes only timestamps and snapshots: publishers may be building on any
    // version of a targets role (a rival, a parent), so those are left alone.
    assert_eq!(listed(&org, "app").await, vec![1, 2]);
    // Root versions are never deleted.
    assert_eq!(listed(&org, "root").await, vec![1]);

    // Timestamp and root share the top-level anchor (docs/oci-mapping.md §3).
    for roles in [
        &["timestamp", "root"][..],
        &["snapshot"],
        &["app"],
        &["targets"],
    ] {
        let role = roles[0];
        let index = fallback_index(&org, role).await;
        for d in &index {
            assert!(
                org.repo
                    .store
                    .head_manifest(ManifestRef::Digest(d))
                    .await
                    .unwrap()
                    .is_some(),
                "the fallback index of {role} lists {d}, which no longer exists"
            );
        }
        let short: BTreeSet<String> = index.iter().map(|d| d.hex()[..32].to_owned()).collect();
        assert_eq!(
            short,
            referrer_tags_on_disk(registry, role),
            "the fallback index of {role} and the referrers that exist differ"
        );
        let mut claimed = 0;
        for r in roles {
            claimed += org.versions_claimed(r).await.len();
        }
        assert_eq!(index.len(), claimed, "the fallback index of {roles:?}");
    }

    // A client that has never seen the root of trust verifies both images.
    let resolver = org.resolver();
    for (tag, digest) in [("1.0", first), ("1.1", second)] {
        let verified = resolver
            .resolve(&org.image(tag))
            .await
            .unwrap_or_else(|e| panic!("{tag}: {e:?}"));
        assert_eq!(verified.digest, digest, "{tag}");
    }
}

#[tokio::test]
async fn after_many_resigns_the_signer_counts_what_it_pruned() {
    // Covered by the test above for what remains; this one checks that /metrics' counter
    // moves, on the native-referrers registry where no fallback index is involved.
    let org = Org::new(Registry::Referrers(
        ocituf_testkit::ReferrersRegistry::start(),
    ))
    .await;
    let config = Config::load(&config_with(
        &org,
        "keep-timestamps = 2\nkeep-snapshots = 2",
    ))
    .unwrap();
    let signer = Signer::start(&config, &ocituf_oci::RegistryOptions::default()).unwrap();
    let start = Instant::now();
    while signer.metrics("acme").unwrap().pruned < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "nothing pruned: {:?} {:?}",
            signer.status("acme"),
            signer.metrics("acme")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(signer.metrics("acme").unwrap().prune_failures, 0);
    signer.stop().await;
    assert_eq!(org.versions_claimed("timestamp").await.len(), 2);
}

#[test]
fn a_retention_that_keeps_fewer_than_two_versions_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("root.json"), b"{}").unwrap();
    for (line, wanted) in [
        (
            "keep-timestamps = 1",
            "keep-timestamps = 1 must be from 2 to 1000",
        ),
        (
            "keep-snapshots = -1",
            "keep-snapshots = -1 must be from 2 to 1000",
        ),
    ] {
        let path = dir.path().join("signer.toml");
        std::fs::write(
            &path,
            format!("[[root-of-trust]]\nname = \"acme\"\nrepository = \"127.0.0.1:5000/acme/tuf\"\nroot = \"root.json\"\nsnapshot-key = \"online.pem\"\ntimestamp-key = \"online.pem\"\n{line}\n"),
        )
        .unwrap();
        let e = Config::load(&path).unwrap_err();
        let message = e.to_string();
        assert!(message.contains(wanted), "{line}: {message}");
        assert!(message.contains("signer.toml"), "{message}");
    }
}
