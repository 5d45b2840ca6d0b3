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
