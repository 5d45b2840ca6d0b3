//! The client and publisher test suite, generic over any `ArtifactStore`: the layout runs
//! it here (`layout.rs`), and the same functions run against real registries (the registry
//! test files call them with a registry store).
//!
//! These tests exercise the OCI side on unsigned metadata shaped like TUF (the `_type`,
//! `version`, `expires` and `meta` fields); signature verification is the updater's job and
//! is covered by the round-trip tests once the updater exists.

// Test code: panics are assertions; long tests read top to bottom.
#![allow(clippy::missing_panics_doc, clippy::too_many_lines)]

use std::collections::BTreeMap;

use ocituf_oci::mapping::{Anchor, RoleClass, MANIFEST_MEDIA_TYPE, MAX_MANIFEST_LEN};
use ocituf_oci::publish::Published;
use ocituf_oci::tuf_source::MAX_CANDIDATES;
use ocituf_oci::{
    ArtifactStore, Digest, ManifestRef, OciRepoSource, Publisher, Retention, RootOfTrustName,
};
use ocituf_tuf::{MetadataRequest, RepoSource};

pub const MAX_LEN: u64 = 1024 * 1024;

pub fn acme() -> RootOfTrustName {
    RootOfTrustName::parse("acme").expect("valid name")
}

/// TUF-shaped metadata (unsigned): what the OCI side looks at.
pub fn metadata(tuf_type: &str, version: u64, meta: &[(&str, u64, Option<&Digest>)]) -> Vec<u8> {
    let meta: serde_json::Map<String, serde_json::Value> = meta
        .iter()
        .map(|(name, v, sha)| {
            let mut entry = serde_json::json!({ "version": v });
            if let Some(d) = sha {
                entry["hashes"] = serde_json::json!({ "sha256": d.hex() });
            }
            ((*name).to_owned(), entry)
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "signed": {"_type": tuf_type, "version": version,
                   "expires": "2030-01-01T00:00:00Z", "meta": meta},
        "signatures": [],
    }))
    .expect("json")
}

pub fn req<'a>(
    role: &'a str,
    version: Option<u64>,
    hashes: Option<&'a BTreeMap<String, String>>,
    attempt: u32,
) -> MetadataRequest<'a> {
    MetadataRequest {
        role,
        version,
        hashes,
        max_len: MAX_LEN,
        attempt,
    }
}

pub fn sha256(d: &Digest) -> BTreeMap<String, String> {
    BTreeMap::from([("sha256".to_owned(), d.hex().to_owned())])
}

/// A repository: root 1..=2, timestamps 1..=`timestamps`, the snapshot and targets each
/// timestamp names. Returns the last timestamp's snapshot and targets pushes.
pub async fn publish_history<A: ArtifactStore>(
    p: &Publisher<A>,
    timestamps: u64,
) -> anyhow::Result<(Published, Published)> {
    p.push("root", &metadata("root", 1, &[]), None).await?;
    p.push("root", &metadata("root", 2, &[]), None).await?;
    let mut last = None;
    for v in 1..=timestamps {
        let targets = p
            .push("targets", &metadata("targets", v, &[]), None)
            .await?;
        let snap_bytes = metadata(
            "snapshot",
            v,
            &[("targets.json", v, Some(&targets.metadata_digest))],
        );
        let snapshot = p.push("snapshot", &snap_bytes, None).await?;
        let ts = metadata(
            "timestamp",
            v,
            &[("snapshot.json", v, Some(&snapshot.metadata_digest))],
        );
        p.push("timestamp", &ts, None).await?;
        last = Some((snapshot, targets));
    }
    last.ok_or_else(|| anyhow::anyhow!("no timestamps"))
}

/// The ArtifactStore contract the OCI side relies on.
pub async fn store_contract<A: ArtifactStore>(store: A) -> anyhow::Result<()> {
    let p = Publisher::new(store, acme());
    let pushed = p
        .push("timestamp", &metadata("timestamp", 1, &[]), None)
        .await?;
    let store = p.store();
    let top = Anchor::top(&acme());
    // The anchor and the version are tagged (GC safety), and the version is a referrer.
    let anchor = store
        .head_manifest(ManifestRef::Tag(&top.tag()))
        .await?
        .ok_or_else(|| anyhow::anyhow!("anchor tag missing"))?;
    assert_eq!(anchor.digest, *top.digest());
    let tagged = store
        .get_manifest(ManifestRef::Tag(&pushed.tag), MAX_MANIFEST_LEN)
        .await?
        .ok_or_else(|| anyhow::anyhow!("version tag missing"))?;
    assert_eq!(tagged.digest, pushed.manifest_digest);
    let (list, _) = store
        .referrers(top.digest(), Some(RoleClass::Timestamp.artifact_type()))
        .await?;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].digest, pushed.manifest_digest);
    assert_eq!(list[0].annotations["io.ocituf.version"], "1");
    assert!(store
        .referrers(top.digest(), Some(RoleClass::Root.artifact_type()))
        .await?
        .0
        .is_empty());
    // Idempotent push; delete by digest unlists it.
    let again = p
        .push("timestamp", &metadata("timestamp", 1, &[]), None)
        .await?;
    assert_eq!(again, pushed);
    assert_eq!(store.referrers(top.digest(), None).await?.0.len(), 1);
    store.delete_manifest(&pushed.manifest_digest).await?;
    assert!(store.referrers(top.digest(), None).await?.0.is_empty());
    Ok(())
}

/// docs/oci-mapping.md 6.1: the request budget of a client.
pub async fn request_budget<A: ArtifactStore>(store: A) -> anyhow::Result<()> {
    let p = Publisher::new(store, acme());
    let (snapshot, targets) = publish_history(&p, 2).await?;
    let source = OciRepoSource::new(p.store(), acme());

    // Cold start: root 2 (root 1 is pinned), root 3 absent, timestamp, snapshot, targets.
    source.start_refresh();
    let root2 = source
        .fetch_metadata(&req("root", Some(2), None, 0))
        .await?;
    assert_eq!(root2.map(|f| f.claimed_version), Some(Some(2)));
    assert!(source
        .fetch_metadata(&req("root", Some(3), None, 0))
        .await?
        .is_none());
    let ts = source
        .fetch_metadata(&req("timestamp", None, None, 0))
        .await?;
    let ts = ts.ok_or_else(|| anyhow::anyhow!("no timestamp"))?;
    assert_eq!(ts.claimed_version, Some(2));
    let snap_hashes = sha256(&snapshot.metadata_digest);
    let snap = source
        .fetch_metadata(&req("snapshot", Some(2), Some(&snap_hashes), 0))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no snapshot"))?;
    assert_eq!(Digest::of(&snap.bytes), snapshot.metadata_digest);
    let targets_hashes = sha256(&targets.metadata_digest);
    assert!(source
        .fetch_metadata(&req("targets", Some(2), Some(&targets_hashes), 0))
        .await?
        .is_some());
    assert_eq!(
        source.requests(),
        5,
        "cold start: listing, root, ts, snapshot, targets"
    );

    // Warm, nothing new: one listing; the timestamp bytes are reused by digest.
    source.start_refresh();
    assert!(source
        .fetch_metadata(&req("root", Some(3), None, 0))
        .await?
        .is_none());
    let again = source
        .fetch_metadata(&req("timestamp", None, None, 0))
        .await?;
    assert_eq!(again.map(|f| f.bytes), Some(ts.bytes.clone()));
    assert_eq!(source.requests(), 6, "warm refresh costs one request");

    // A new process that remembers its cached timestamp also pays one request.
    let fresh = OciRepoSource::new(p.store(), acme());
    fresh.remember_blob(ts.bytes.clone());
    fresh.start_refresh();
    assert!(fresh
        .fetch_metadata(&req("root", Some(3), None, 0))
        .await?
        .is_none());
    assert!(fresh
        .fetch_metadata(&req("timestamp", None, None, 0))
        .await?
        .is_some());
    assert_eq!(fresh.requests(), 1);

    // After a new timestamp, snapshot and targets: four requests.
    let (snapshot3, targets3) = {
        let t = p
            .push("targets", &metadata("targets", 3, &[]), None)
            .await?;
        let s = p
            .push(
                "snapshot",
                &metadata(
                    "snapshot",
                    3,
                    &[("targets.json", 3, Some(&t.metadata_digest))],
                ),
                None,
            )
            .await?;
        let ts = metadata(
            "timestamp",
            3,
            &[("snapshot.json", 3, Some(&s.metadata_digest))],
        );
        p.push("timestamp", &ts, None).await?;
        (s, t)
    };
    let before = source.requests();
    source.start_refresh();
    assert!(source
        .fetch_metadata(&req("root", Some(3), None, 0))
        .await?
        .is_none());
    let ts3 = source
        .fetch_metadata(&req("timestamp", None, None, 0))
        .await?;
    assert_eq!(ts3.and_then(|f| f.claimed_version), Some(3));
    let h = sha256(&snapshot3.metadata_digest);
    assert!(source
        .fetch_metadata(&req("snapshot", Some(3), Some(&h), 0))
        .await?
        .is_some());
    let h = sha256(&targets3.metadata_digest);
    assert!(source
        .fetch_metadata(&req("targets", Some(3), Some(&h), 0))
        .await?
        .is_some());
    assert_eq!(source.requests() - before, 4);
    Ok(())
}

/// Without hashes in the parent's meta, snapshot and targets are found through their
/// role's anchor by version hint; delegated role names are arbitrary strings.
pub async fn fetch_without_hashes<A: ArtifactStore>(store: A) -> anyhow::Result<()> {
    let p = Publisher::new(store, acme());
    publish_history(&p, 3).await?;
    let role = "team/app ü";
    p.push(role, &metadata("targets", 1, &[]), None).await?;
    let delegated = metadata("targets", 2, &[]);
    p.push(role, &delegated, None).await?;
    let source = OciRepoSource::new(p.store(), acme());
    source.start_refresh();
    let snap = source
        .fetch_metadata(&req("snapshot", Some(2), None, 0))
        .await?
        .ok_or_else(|| anyhow::anyhow!("snapshot 2 not found"))?;
    assert_eq!(snap.bytes, metadata_of(&p, "snapshot", 2).await?);
    assert_eq!(snap.claimed_version, Some(2));
    let d = source
        .fetch_metadata(&req(role, Some(2), None, 0))
        .await?
        .ok_or_else(|| anyhow::anyhow!("delegated role not found"))?;
    assert_eq!(d.bytes, delegated);
    assert!(source
        .fetch_metadata(&req(role, Some(3), None, 0))
        .await?
        .is_none());
    assert!(source
        .fetch_metadata(&req(role, Some(2), None, 1))
        .await?
        .is_none());
    Ok(())
}

async fn metadata_of<A: ArtifactStore>(
    p: &Publisher<A>,
    role: &str,
    version: u64,
) -> anyhow::Result<Vec<u8>> {
    for listed in p.versions(role).await? {
        if listed.version == version {
            return p
                .read(&listed)
                .await?
                .ok_or_else(|| anyhow::anyhow!("{role} {version} unreadable"));
        }
    }
    anyhow::bail!("{role} {version} not listed")
}

/// A junk artifact (anyone with push access) claims a huge timestamp version: it is served
/// first with its claim (which the updater refuses), then the real newest; many junk
/// artifacts cost a bounded number of requests.
pub async fn junk_with_huge_version<A: ArtifactStore>(store: A) -> anyhow::Result<()> {
    let p = Publisher::new(store, acme());
    publish_history(&p, 2).await?;
    let top = Anchor::top(&acme());
    let junk_manifest = |n: u64, layer: &Digest| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": RoleClass::Timestamp.artifact_type(),
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                       "digest": ocituf_oci::mapping::EMPTY_DIGEST, "size": 2},
            "layers": [{"mediaType": "application/vnd.tuf.metadata+json",
                        "digest": layer.as_str(), "size": 5}],
            "subject": {"mediaType": MANIFEST_MEDIA_TYPE, "digest": top.digest().as_str(),
                        "size": top.bytes().len()},
            "annotations": {"io.ocituf.version": (u64::MAX - n).to_string(),
                            "io.ocituf.role": "timestamp",
                            "io.ocituf.root-of-trust": "acme"},
        }))
        .expect("json")
    };
    let junk_blob = p.store().put_blob(b"junk!").await?;
    p.store()
        .put_manifest(
            MANIFEST_MEDIA_TYPE,
            &junk_manifest(0, &junk_blob),
            Some("junk-0"),
        )
        .await?;
    let source = OciRepoSource::new(p.store(), acme());
    source.start_refresh();
    let first = source
        .fetch_metadata(&req("timestamp", None, None, 0))
        .await?
        .ok_or_else(|| anyhow::anyhow!("nothing"))?;
    assert_eq!(first.claimed_version, Some(u64::MAX));
    assert_eq!(first.bytes, b"junk!");
    let second = source
        .fetch_metadata(&req("timestamp", None, None, 1))
        .await?
        .ok_or_else(|| anyhow::anyhow!("real timestamp not offered"))?;
    assert_eq!(second.claimed_version, Some(2));

    // Many junk artifacts whose layers are missing: skipped inside the source, bounded.
    let missing = Digest::of(b"never uploaded");
    for n in 1..=(MAX_CANDIDATES as u64 + 8) {
        // A registry refuses a manifest whose layer is missing; use an existing blob with a
        // wrong size and a lying digest hint instead where needed.
        let m = junk_manifest(n, &junk_blob);
        let mut v: serde_json::Value = serde_json::from_slice(&m)?;
        v["annotations"]["io.ocituf.metadata.digest"] = missing.as_str().into();
        v["annotations"]["n"] = n.to_string().into();
        let bytes = serde_json::to_vec(&v)?;
        p.store()
            .put_manifest(MANIFEST_MEDIA_TYPE, &bytes, Some(&format!("junk-{n}")))
            .await?;
    }
    let source = OciRepoSource::new(p.store(), acme());
    source.start_refresh();
    let mut attempt = 0;
    while let Some(f) = source
        .fetch_metadata(&req("timestamp", None, None, attempt))
        .await?
    {
        assert_ne!(
            f.claimed_version,
            Some(2),
            "the real timestamp is beyond the bound"
        );
        attempt += 1;
        assert!(attempt as usize <= MAX_CANDIDATES);
    }
    // Listing + at most three requests per candidate examined (hinted blob, manifest, layer).
    assert!(
        source.requests() <= 1 + 3 * MAX_CANDIDATES as u64,
        "{} requests",
        source.requests()
    );
    Ok(())
}

/// A deleted artifact is simply absent; a blob whose bytes were swapped is refused by digest.
pub async fn deleted_artifact_is_absent<A: ArtifactStore>(store: A) -> anyhow::Result<()> {
    let p = Publisher::new(store, acme());
    let (snapshot, _) = publish_history(&p, 2).await?;
    let ts2 = p
        .versions("timestamp")
        .await?
        .into_iter()
        .find(|l| l.version == 2)
        .ok_or_else(|| anyhow::anyhow!("timestamp 2 not listed"))?;
    p.store().delete_manifest(&ts2.descriptor.digest).await?;
    let source = OciRepoSource::new(p.store(), acme());
    source.start_refresh();
    // The newest left is version 1: the updater refuses it as a rollback when it trusts 2.
    let f = source
        .fetch_metadata(&req("timestamp", None, None, 0))
        .await?;
    assert_eq!(f.and_then(|f| f.claimed_version), Some(1));
    // A hash that no blob has is not found, never substituted.
    let wrong = sha256(&Digest::of(b"other"));
    assert!(source
        .fetch_metadata(&req("snapshot", Some(2), Some(&wrong), 0))
        .await?
        .is_none());
    let right = sha256(&snapshot.metadata_digest);
    assert!(source
        .fetch_metadata(&req("snapshot", Some(2), Some(&right), 0))
        .await?
        .is_some());
    Ok(())
}

/// Publisher: newest by verified content, and retention.
pub async fn newest_and_prune<A: ArtifactStore>(store: A) -> anyhow::Result<()> {
    let p = Publisher::new(store, acme());
    let (snapshot, targets) = publish_history(&p, 6).await?;
    // A version the caller's verification refuses is skipped.
    let newest = p
        .newest("timestamp", |_| true)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no newest"))?;
    assert_eq!(newest.0.version, 6);
    let refused_6 = p
        .newest("timestamp", |bytes| {
            !String::from_utf8_lossy(bytes).contains("\"version\":6")
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("no newest"))?;
    assert_eq!(refused_6.0.version, 5);
    // A pending targets version (not yet in any snapshot) must survive pruning.
    let pending = p
        .push("targets", &metadata("targets", 7, &[]), None)
        .await?;
    // Junk under the top anchor that is not a role version at all (two layers).
    let junk = {
        let top = Anchor::top(&acme());
        let e = serde_json::json!({"mediaType": "application/vnd.oci.empty.v1+json",
                                   "digest": ocituf_oci::mapping::EMPTY_DIGEST, "size": 2});
        let m = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": RoleClass::Timestamp.artifact_type(),
            "config": e, "layers": [e, e],
            "subject": {"mediaType": MANIFEST_MEDIA_TYPE, "digest": top.digest().as_str(),
                        "size": top.bytes().len()},
            "annotations": {"io.ocituf.version": "99"}}))?;
        p.store()
            .put_manifest(MANIFEST_MEDIA_TYPE, &m, Some("junk"))
            .await?
    };

    let report = p
        .prune(&Retention {
            keep_timestamps: 2,
            keep_snapshots: 2,
        })
        .await?;
    let versions = |role: &'static str| {
        let p = &p;
        async move {
            Ok::<Vec<u64>, anyhow::Error>(
                p.versions(role)
                    .await?
                    .into_iter()
                    .map(|l| l.version)
                    .collect(),
            )
        }
    };
    assert_eq!(versions("root").await?, [2, 1], "roots are never deleted");
    assert_eq!(versions("timestamp").await?, [6, 5]);
    assert_eq!(versions("snapshot").await?, [6, 5]);
    assert_eq!(versions("targets").await?, [7, 6, 5]);
    assert_eq!(report.deleted.len(), 4 * 3 + 1);
    assert!(report.deleted.contains(&junk));
    assert!(report.kept.contains(&pending.manifest_digest));
    // What the current timestamp reaches is still fetchable, and tagged.
    let source = OciRepoSource::new(p.store(), acme());
    source.start_refresh();
    let h = sha256(&snapshot.metadata_digest);
    assert!(source
        .fetch_metadata(&req("snapshot", Some(6), Some(&h), 0))
        .await?
        .is_some());
    let h = sha256(&targets.metadata_digest);
    assert!(source
        .fetch_metadata(&req("targets", Some(6), Some(&h), 0))
        .await?
        .is_some());
    for d in &report.kept {
        let tag = ocituf_oci::mapping::metadata_tag(d);
        assert!(p
            .store()
            .head_manifest(ManifestRef::Tag(&tag))
            .await?
            .is_some());
    }
    Ok(())
}

/// Twenty publishers push versions of one role at the same time: every pushed artifact is
/// listed afterwards and readable (on distribution, the fallback index is read-modify-write
/// without conditional writes; the store must not lose entries).
pub async fn concurrent_publishers<A: ArtifactStore + 'static>(store: A) -> anyhow::Result<()> {
    let store = std::sync::Arc::new(store);
    // The anchor first, as a real publisher has (the first push of a role creates it).
    Publisher::new(std::sync::Arc::clone(&store), acme())
        .push("team", &metadata("targets", 1, &[]), None)
        .await?;
    let mut tasks = tokio::task::JoinSet::new();
    for v in 2..=21 {
        let p = Publisher::new(std::sync::Arc::clone(&store), acme());
        tasks.spawn(async move { p.push("team", &metadata("targets", v, &[]), None).await });
    }
    let mut pushed = Vec::new();
    while let Some(r) = tasks.join_next().await {
        pushed.push(r??);
    }
    let p = Publisher::new(std::sync::Arc::clone(&store), acme());
    let listed = p.versions("team").await?;
    let versions: Vec<u64> = listed.iter().map(|l| l.version).collect();
    assert_eq!(versions, (1..=21).rev().collect::<Vec<_>>());
    for l in &listed {
        assert!(p.read(l).await?.is_some(), "team {} unreadable", l.version);
    }
    for d in pushed {
        let tag = ocituf_oci::mapping::metadata_tag(&d.manifest_digest);
        assert!(store.head_manifest(ManifestRef::Tag(&tag)).await?.is_some());
    }
    Ok(())
}

/// TUF-shaped metadata padded to more than `len` bytes (still valid JSON).
fn padded(tuf_type: &str, len: usize) -> Vec<u8> {
    let mut big = metadata(tuf_type, 1, &[]);
    big.truncate(big.len() - 1);
    big.extend_from_slice(b",\"pad\":\"");
    big.extend(std::iter::repeat_n(b'x', len));
    big.extend_from_slice(b"\"}");
    big
}

/// endless_data: metadata longer than the updater's limit is refused with `TooLarge`, never
/// truncated and accepted, whether it is found through a listing or by hash.
pub async fn endless_data<A: ArtifactStore>(store: A) -> anyhow::Result<()> {
    let p = Publisher::new(store, acme());
    let big = padded("timestamp", 64 * 1024);
    serde_json::from_slice::<serde_json::Value>(&big)?;
    p.push("timestamp", &big, None).await?;
    let snapshot = p
        .push("snapshot", &padded("snapshot", 64 * 1024), None)
        .await?;
    let source = OciRepoSource::new(p.store(), acme());
    source.start_refresh();
    let limited = |role, hashes| MetadataRequest {
        role,
        version: None,
        hashes,
        max_len: 16 * 1024,
        attempt: 0,
    };
    let err = source
        .fetch_metadata(&limited("timestamp", None))
        .await
        .expect_err("an oversized timestamp must be refused");
    assert!(
        matches!(
            err,
            ocituf_tuf::SourceError::TooLarge { max_len: 16384, .. }
        ),
        "{err:?}"
    );
    let h = sha256(&snapshot.metadata_digest);
    let err = source
        .fetch_metadata(&limited("snapshot", Some(&h)))
        .await
        .expect_err("an oversized snapshot must be refused");
    assert!(
        matches!(
            err,
            ocituf_tuf::SourceError::TooLarge { max_len: 16384, .. }
        ),
        "{err:?}"
    );
    Ok(())
}
