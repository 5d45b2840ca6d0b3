//! The registry store against distribution 2.8 (no referrers API: the tag-schema fallback).

use ocituf_oci::registry::{index_tag, referrer_tag, Credentials, ReferrersCapability};
use ocituf_oci::{
    ArtifactStore, Digest, Error, ManifestRef, ReferrersSource, RegistryClient, RegistryError,
    RegistryOptions, RegistryRepo,
};

use ocituf_testkit::Distribution;

use crate::harness::{artifact, descriptor_of, EMPTY_CONFIG, MANIFEST_TYPE};

pub fn anonymous() -> RegistryOptions {
    RegistryOptions {
        credentials: Credentials::Anonymous,
        ..RegistryOptions::default()
    }
}

pub fn repo(reg: &Distribution, name: &str) -> RegistryRepo {
    RegistryRepo::open(&format!("{}/{name}", reg.addr()), anonymous()).unwrap()
}

/// Push the empty config, a layer and a manifest; return (manifest bytes, digest).
pub async fn push_artifact(
    repo: &RegistryRepo,
    artifact_type: &str,
    layer: &[u8],
    subject: Option<&ocituf_oci::Descriptor>,
    tag: Option<&str>,
) -> (Vec<u8>, Digest) {
    repo.put_blob(EMPTY_CONFIG).await.unwrap();
    repo.put_blob(layer).await.unwrap();
    let m = artifact(
        artifact_type,
        layer,
        subject,
        &[("io.ocituf.role", "timestamp")],
    );
    let d = repo.put_manifest(MANIFEST_TYPE, &m, tag).await.unwrap();
    assert_eq!(d, Digest::of(&m));
    (m, d)
}

#[tokio::test]
async fn blobs_and_manifests_round_trip() {
    let reg = Distribution::start();
    let repo = repo(&reg, "acme/tuf");
    let layer = br#"{"signed":{"_type":"timestamp"}}"#;
    let (m, d) = push_artifact(
        &repo,
        "application/vnd.tuf.timestamp.v1+json",
        layer,
        None,
        Some("v1"),
    )
    .await;

    // Blobs: present, absent, bounded.
    let got = repo.get_blob(&Digest::of(layer), 1 << 20).await.unwrap();
    assert_eq!(got.as_deref(), Some(&layer[..]));
    assert_eq!(
        repo.get_blob(&Digest::of(b"nope"), 1 << 20).await.unwrap(),
        None
    );
    let too_small = repo.get_blob(&Digest::of(layer), 4).await;
    assert!(
        matches!(
            too_small,
            Err(Error::Registry(RegistryError::BodyTooLarge {
                limit: 4,
                ..
            }))
        ),
        "{too_small:?}"
    );
    // put_blob of an existing blob is a no-op that still returns the digest.
    assert_eq!(repo.put_blob(layer).await.unwrap(), Digest::of(layer));

    // Manifests by tag and digest, GET and HEAD (OCI media types need Accept on 2.8).
    for r in [ManifestRef::Tag("v1"), ManifestRef::Digest(&d)] {
        let got = repo
            .get_manifest(r.clone(), 1 << 20)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.bytes, m);
        assert_eq!(got.digest, d);
        assert_eq!(got.media_type, MANIFEST_TYPE);
        let head = repo.head_manifest(r).await.unwrap().unwrap();
        assert_eq!(head.digest, d);
        assert_eq!(head.size, m.len() as u64);
        assert_eq!(head.media_type, MANIFEST_TYPE);
    }
    assert!(repo
        .get_manifest(ManifestRef::Tag("v2"), 1 << 20)
        .await
        .unwrap()
        .is_none());
    assert!(repo
        .head_manifest(ManifestRef::Tag("v2"))
        .await
        .unwrap()
        .is_none());
    assert!(repo
        .head_manifest(ManifestRef::Digest(&Digest::of(b"x")))
        .await
        .unwrap()
        .is_none());
    let small = repo.get_manifest(ManifestRef::Tag("v1"), 10).await;
    assert!(matches!(
        small,
        Err(Error::Registry(RegistryError::BodyTooLarge { .. }))
    ));

    // Delete by digest removes the tag as well.
    repo.delete_manifest(&d).await.unwrap();
    assert!(repo
        .get_manifest(ManifestRef::Digest(&d), 1 << 20)
        .await
        .unwrap()
        .is_none());
    assert!(repo
        .head_manifest(ManifestRef::Tag("v1"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(repo.location(), format!("{}/acme/tuf", reg.addr()));
}

#[tokio::test]
async fn request_counter_counts_each_http_request() {
    let reg = Distribution::start();
    let client = RegistryClient::new(reg.addr(), anonymous()).unwrap();
    let repo = client.repo("acme/tuf").unwrap();
    let (_, d) = push_artifact(
        &repo,
        "application/vnd.tuf.root.v1+json",
        b"root",
        None,
        Some("r"),
    )
    .await;
    let before = client.request_count();
    repo.get_manifest(ManifestRef::Digest(&d), 1 << 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.request_count() - before, 1);
    repo.head_manifest(ManifestRef::Tag("r"))
        .await
        .unwrap()
        .unwrap();
    repo.get_blob(&Digest::of(b"root"), 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.request_count() - before, 3);
    // Two repositories of one client share its counter.
    let other = client.repo("acme/other").unwrap();
    assert!(other
        .get_blob(&Digest::of(b"root"), 100)
        .await
        .unwrap()
        .is_none());
    assert_eq!(client.request_count() - before, 4);
}

#[tokio::test]
async fn referrers_through_the_tag_schema_fallback_with_filter() {
    let reg = Distribution::start();
    let repo = repo(&reg, "acme/tuf");
    let (anchor, anchor_d) = push_artifact(
        &repo,
        "application/vnd.ocituf.anchor.v1+json",
        b"",
        None,
        None,
    )
    .await;
    let subject = descriptor_of(&anchor);
    assert_eq!(subject.digest, anchor_d);
    let ts = "application/vnd.tuf.timestamp.v1+json";
    let sn = "application/vnd.tuf.snapshot.v1+json";
    let (_, t1) = push_artifact(&repo, ts, b"ts1", Some(&subject), None).await;
    let (_, t2) = push_artifact(&repo, ts, b"ts2", Some(&subject), Some("latest-ts")).await;
    let (_, s1) = push_artifact(&repo, sn, b"sn1", Some(&subject), None).await;
    assert_eq!(
        repo.referrers_capability(),
        ReferrersCapability::TagSchemaFallback
    );

    let (all, source) = repo.referrers(&anchor_d, None).await.unwrap();
    assert_eq!(source, ReferrersSource::TagSchemaFallback);
    let digests: Vec<_> = all.iter().map(|d| d.digest.clone()).collect();
    assert_eq!(digests, vec![t1.clone(), t2.clone(), s1.clone()]);
    assert!(all.iter().all(|d| d.media_type == MANIFEST_TYPE));
    assert_eq!(
        all[0].annotations.get("io.ocituf.role").map(String::as_str),
        Some("timestamp")
    );

    let (only_ts, _) = repo.referrers(&anchor_d, Some(ts)).await.unwrap();
    assert_eq!(only_ts.len(), 2);
    assert!(only_ts
        .iter()
        .all(|d| d.artifact_type.as_deref() == Some(ts)));

    // A fresh client learns the fallback from the 404 of the referrers API.
    let fresh = self::repo(&reg, "acme/tuf");
    let (again, source) = fresh.referrers(&anchor_d, Some(sn)).await.unwrap();
    assert_eq!(source, ReferrersSource::TagSchemaFallback);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].digest, s1);
    assert_eq!(
        fresh.referrers_capability(),
        ReferrersCapability::TagSchemaFallback
    );

    // Each referrer has its unique tag, the index its `sha256-<hex>` tag, and a caller's tag
    // is honoured too.
    for d in [&t1, &t2, &s1] {
        let tag = referrer_tag(&anchor_d, d);
        let head = repo
            .head_manifest(ManifestRef::Tag(&tag))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&head.digest, d);
    }
    assert_eq!(
        repo.head_manifest(ManifestRef::Tag("latest-ts"))
            .await
            .unwrap()
            .unwrap()
            .digest,
        t2
    );
    let index = repo
        .get_manifest(ManifestRef::Tag(&index_tag(&anchor_d)), 1 << 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(index.media_type, "application/vnd.oci.image.index.v1+json");

    // Unknown subject: no referrers.
    let (none, _) = repo
        .referrers(&Digest::of(b"no subject"), None)
        .await
        .unwrap();
    assert!(none.is_empty());

    // Deleting a referrer removes it from the index and removes its unique tag.
    repo.delete_manifest(&t1).await.unwrap();
    let (left, _) = repo.referrers(&anchor_d, None).await.unwrap();
    let left: Vec<_> = left.into_iter().map(|d| d.digest).collect();
    assert_eq!(left, vec![t2.clone(), s1.clone()]);
    assert!(repo
        .head_manifest(ManifestRef::Tag(&referrer_tag(&anchor_d, &t1)))
        .await
        .unwrap()
        .is_none());
}

/// A writer that knows nothing of unique tags (ORAS racing us, or a stale writer) rewrites
/// the index without our entries: the unique tags find them again, and reconcile repairs.
#[tokio::test]
async fn clobbered_fallback_index_is_repaired_from_unique_tags() {
    use ocituf_oci::registry::FallbackReads;
    let reg = Distribution::start();
    let repo = repo(&reg, "acme/tuf");
    let (anchor, anchor_d) = push_artifact(
        &repo,
        "application/vnd.ocituf.anchor.v1+json",
        b"",
        None,
        Some("a"),
    )
    .await;
    let subject = descriptor_of(&anchor);
    let ts = "application/vnd.tuf.timestamp.v1+json";
    let mut ours = Vec::new();
    for i in 0..3 {
        ours.push(
            push_artifact(&repo, ts, format!("ts{i}").as_bytes(), Some(&subject), None)
                .await
                .1,
        );
    }
    ours.sort();
    // The clobbering write: an index that lists only the first referrer (copied faithfully,
    // as ORAS copies the entries it read).
    let (keep, _) = repo.referrers(&anchor_d, None).await.unwrap();
    let clobber = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": MANIFEST_TYPE,
            "digest": keep[0].digest.as_str(),
            "size": keep[0].size,
            "artifactType": keep[0].artifact_type,
            "annotations": keep[0].annotations,
        }]
    });
    repo.put_manifest(
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&clobber).unwrap(),
        Some(&index_tag(&anchor_d)),
    )
    .await
    .unwrap();
    let (seen, _) = repo.referrers(&anchor_d, None).await.unwrap();
    assert_eq!(seen.len(), 1, "the clobber took effect");

    // Reading with the unique tags merged finds all three, without writing.
    let merging = self::repo(&reg, "acme/tuf").with_fallback_reads(FallbackReads::MergeUniqueTags);
    let (seen, _) = merging.referrers(&anchor_d, Some(ts)).await.unwrap();
    let mut seen: Vec<Digest> = seen.into_iter().map(|d| d.digest).collect();
    seen.sort();
    assert_eq!(seen, ours);
    let (plain, _) = repo.referrers(&anchor_d, None).await.unwrap();
    assert_eq!(plain.len(), 1, "a merging read does not write");

    // Reconcile rewrites the index; plain reads see everything again, with artifactType and
    // annotations restored from the manifests.
    let fixed = repo.reconcile_referrers(&anchor_d).await.unwrap();
    assert_eq!(fixed.len(), 3);
    let (plain, _) = repo.referrers(&anchor_d, Some(ts)).await.unwrap();
    let mut got: Vec<Digest> = plain.iter().map(|d| d.digest.clone()).collect();
    got.sort();
    assert_eq!(got, ours);
    assert!(plain
        .iter()
        .all(|d| d.annotations.contains_key("io.ocituf.role")));
}

/// Requests per referrers query on the fallback registry: the probe of the referrers API
/// costs one request once per client, unless the capability is known (learnt from a write,
/// or pinned from an earlier run's cache).
#[tokio::test]
async fn referrers_request_budget_on_the_fallback_registry() {
    let reg = Distribution::start();
    let writer = RegistryClient::new(reg.addr(), anonymous()).unwrap();
    let repo = writer.repo("acme/tuf").unwrap();
    let (anchor, anchor_d) = push_artifact(
        &repo,
        "application/vnd.ocituf.anchor.v1+json",
        b"",
        None,
        Some("a"),
    )
    .await;
    push_artifact(&repo, "t", b"x", Some(&descriptor_of(&anchor)), None).await;
    // Learnt from the write: no probe.
    let n = writer.request_count();
    repo.referrers(&anchor_d, None).await.unwrap();
    assert_eq!(writer.request_count() - n, 1);

    // A fresh client probes once (404), then reads the index; later queries cost one.
    let fresh = RegistryClient::new(reg.addr(), anonymous()).unwrap();
    let r = fresh.repo("acme/tuf").unwrap();
    r.referrers(&anchor_d, None).await.unwrap();
    assert_eq!(fresh.request_count(), 2);
    r.referrers(&anchor_d, None).await.unwrap();
    assert_eq!(fresh.request_count(), 3);

    // Pinned from a cache: one request from the start.
    let pinned = RegistryClient::new(reg.addr(), anonymous()).unwrap();
    let r = pinned.repo("acme/tuf").unwrap();
    r.set_referrers_capability(ReferrersCapability::TagSchemaFallback);
    let (found, _) = r.referrers(&anchor_d, None).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(pinned.request_count(), 1);

    // A wrong "native" pin corrects itself on the 404.
    let wrong = RegistryClient::new(reg.addr(), anonymous()).unwrap();
    let r = wrong.repo("acme/tuf").unwrap();
    r.set_referrers_capability(ReferrersCapability::Native);
    let (found, source) = r.referrers(&anchor_d, None).await.unwrap();
    assert_eq!(
        (found.len(), source),
        (1, ReferrersSource::TagSchemaFallback)
    );
    assert_eq!(
        r.referrers_capability(),
        ReferrersCapability::TagSchemaFallback
    );
}
