//! What common operations cost in HTTP requests on each registry (printed with
//! `--nocapture`, bounded by assertions so a regression fails).

use ocituf_oci::{ArtifactStore, ManifestRef, RegistryClient};
use ocituf_testkit::{Distribution, ReferrersRegistry};

use crate::distribution::{anonymous, push_artifact};
use crate::harness::{artifact, descriptor_of, EMPTY_CONFIG, MANIFEST_TYPE};

async fn measure(label: &str, addr: &str, bounds: [u64; 5]) {
    let client = RegistryClient::new(addr, anonymous()).unwrap();
    let repo = client.repo("acme/tuf").unwrap();
    let (anchor, anchor_d) = push_artifact(
        &repo,
        "application/vnd.ocituf.anchor.v1+json",
        b"",
        None,
        Some("a"),
    )
    .await;
    let subject = descriptor_of(&anchor);
    // Blobs first (HEAD + POST + PUT each when new), then the manifest with a subject.
    let mut n = client.request_count();
    repo.put_blob(b"new layer").await.unwrap();
    let blob = client.request_count() - n;
    repo.put_blob(EMPTY_CONFIG).await.unwrap();
    let existing_blob = client.request_count() - n - blob;
    n = client.request_count();
    let m = artifact("t", b"new layer", Some(&subject), &[]);
    repo.put_manifest(MANIFEST_TYPE, &m, None).await.unwrap();
    let referrer = client.request_count() - n;
    n = client.request_count();
    repo.referrers(&anchor_d, None).await.unwrap();
    let list = client.request_count() - n;
    n = client.request_count();
    repo.get_manifest(ManifestRef::Tag("a"), 1 << 20)
        .await
        .unwrap();
    let get = client.request_count() - n;
    eprintln!(
        "{label}: new blob {blob}, existing blob {existing_blob}, referrer manifest \
         {referrer}, referrers query {list}, manifest GET {get} requests"
    );
    let got = [blob, existing_blob, referrer, list, get];
    for (g, b) in got.iter().zip(bounds) {
        assert!(*g <= b, "{label}: {got:?} exceeds {bounds:?}");
    }
}

#[tokio::test]
async fn request_costs_of_common_operations() {
    let native = ReferrersRegistry::start();
    measure("native referrers registry", native.addr(), [3, 1, 1, 1, 1]).await;
    let dist = Distribution::start();
    // Fallback referrer push, one writer: PUT, unique-tag PUT, index GET, index PUT, then
    // the check after it (index GET, tags list): one tags list, the costly read on 2.8.
    measure("distribution (fallback)", dist.addr(), [3, 1, 6, 1, 1]).await;
}
