//! The registry store against testkit's referrers registry (native referrers API).

use ocituf_oci::registry::{index_tag, referrer_tag, ReferrersCapability};
use ocituf_oci::{
    ArtifactStore, Digest, Error, ManifestRef, ReferrersSource, RegistryClient, RegistryError,
    RegistryOptions,
};
use ocituf_testkit::{ReferrersOptions, ReferrersRegistry};

use crate::distribution::{anonymous, push_artifact};
use crate::harness::descriptor_of;

const TS: &str = "application/vnd.tuf.timestamp.v1+json";
const SN: &str = "application/vnd.tuf.snapshot.v1+json";

#[tokio::test]
async fn native_referrers_with_filter_and_no_fallback_tags() {
    let reg = ReferrersRegistry::start();
    let client = RegistryClient::new(reg.addr(), anonymous()).unwrap();
    let repo = client.repo("acme/tuf").unwrap();
    let (anchor, anchor_d) = push_artifact(
        &repo,
        "application/vnd.ocituf.anchor.v1+json",
        b"",
        None,
        None,
    )
    .await;
    let subject = descriptor_of(&anchor);
    let (m1, t1) = push_artifact(&repo, TS, b"ts1", Some(&subject), None).await;
    assert_eq!(repo.referrers_capability(), ReferrersCapability::Native);
    let (_, t2) = push_artifact(&repo, TS, b"ts2", Some(&subject), Some("ts")).await;
    let (_, s1) = push_artifact(&repo, SN, b"sn1", Some(&subject), None).await;

    let (all, source) = repo.referrers(&anchor_d, None).await.unwrap();
    assert_eq!(source, ReferrersSource::Native);
    let mut got: Vec<Digest> = all.iter().map(|d| d.digest.clone()).collect();
    got.sort();
    let mut want = vec![t1.clone(), t2.clone(), s1.clone()];
    want.sort();
    assert_eq!(got, want);
    let first = all.iter().find(|d| d.digest == t1).unwrap();
    assert_eq!(first.artifact_type.as_deref(), Some(TS));
    assert_eq!(first.size, m1.len() as u64);
    assert_eq!(
        first.annotations.get("io.ocituf.role").map(String::as_str),
        Some("timestamp")
    );

    let (only_sn, _) = repo.referrers(&anchor_d, Some(SN)).await.unwrap();
    assert_eq!(only_sn.len(), 1);
    assert_eq!(only_sn[0].digest, s1);

    // Native mode writes no tag-schema index and no unique tags.
    assert!(repo
        .head_manifest(ManifestRef::Tag(&index_tag(&anchor_d)))
        .await
        .unwrap()
        .is_none());
    assert!(repo
        .head_manifest(ManifestRef::Tag(&referrer_tag(&anchor_d, &t1)))
        .await
        .unwrap()
        .is_none());

    // A fresh client learns "native" from the 200 of the referrers API.
    let fresh = RegistryClient::new(reg.addr(), anonymous())
        .unwrap()
        .repo("acme/tuf")
        .unwrap();
    assert_eq!(fresh.referrers_capability(), ReferrersCapability::Unknown);
    let (again, source) = fresh.referrers(&anchor_d, Some(TS)).await.unwrap();
    assert_eq!(source, ReferrersSource::Native);
    assert_eq!(again.len(), 2);
    assert_eq!(fresh.referrers_capability(), ReferrersCapability::Native);

    // One request per query on a native registry, probe included.
    let counting = RegistryClient::new(reg.addr(), anonymous()).unwrap();
    counting
        .repo("acme/tuf")
        .unwrap()
        .referrers(&anchor_d, None)
        .await
        .unwrap();
    assert_eq!(counting.request_count(), 1);

    // Delete.
    let before = client.request_count();
    repo.delete_manifest(&t2).await.unwrap();
    assert_eq!(
        client.request_count() - before,
        1,
        "a native delete is one DELETE"
    );
    let (left, _) = repo.referrers(&anchor_d, Some(TS)).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].digest, t1);
    assert!(repo
        .head_manifest(ManifestRef::Tag("ts"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn native_link_pagination_is_followed_and_capped() {
    let reg = ReferrersRegistry::start_with(ReferrersOptions {
        referrers_page_size: Some(2),
        ..ReferrersOptions::default()
    });
    let client = RegistryClient::new(reg.addr(), anonymous()).unwrap();
    let repo = client.repo("acme/tuf").unwrap();
    let (anchor, anchor_d) = push_artifact(
        &repo,
        "application/vnd.ocituf.anchor.v1+json",
        b"",
        None,
        None,
    )
    .await;
    let subject = descriptor_of(&anchor);
    let mut pushed = Vec::new();
    for i in 0..5 {
        let (_, d) =
            push_artifact(&repo, TS, format!("ts{i}").as_bytes(), Some(&subject), None).await;
        pushed.push(d);
    }
    let before = client.request_count();
    let (all, _) = repo.referrers(&anchor_d, None).await.unwrap();
    assert_eq!(client.request_count() - before, 3, "pages of 2, 2 and 1");
    let mut got: Vec<_> = all.into_iter().map(|d| d.digest).collect();
    got.sort();
    pushed.sort();
    assert_eq!(got, pushed);

    let capped = RegistryClient::new(
        reg.addr(),
        RegistryOptions {
            referrers_max_pages: 2,
            ..anonymous()
        },
    )
    .unwrap()
    .repo("acme/tuf")
    .unwrap();
    let r = capped.referrers(&anchor_d, None).await;
    assert!(
        matches!(
            r,
            Err(Error::Registry(RegistryError::ReferrersLimit {
                what: "pages",
                max: 2,
                ..
            }))
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn native_round_trip_and_digest_checks() {
    let reg = ReferrersRegistry::start();
    let repo = RegistryClient::new(reg.addr(), anonymous())
        .unwrap()
        .repo("acme/tuf")
        .unwrap();
    let (m, d) = push_artifact(&repo, TS, b"payload", None, Some("v1")).await;
    for r in [ManifestRef::Tag("v1"), ManifestRef::Digest(&d)] {
        let got = repo
            .get_manifest(r.clone(), 1 << 20)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.bytes, m);
        let head = repo.head_manifest(r).await.unwrap().unwrap();
        assert_eq!(head.digest, d);
        assert_eq!(head.size, m.len() as u64);
    }
    assert_eq!(
        repo.get_blob(&Digest::of(b"payload"), 100)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"payload"[..])
    );
    // A blob altered on the registry's disk is refused by digest.
    std::fs::write(reg.blob_path(Digest::of(b"payload").as_str()), b"tampered").unwrap();
    let r = repo.get_blob(&Digest::of(b"payload"), 100).await;
    assert!(
        matches!(
            r,
            Err(Error::Registry(RegistryError::DigestMismatch { .. }))
        ),
        "{r:?}"
    );
}
