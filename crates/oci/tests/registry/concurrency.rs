//! Twenty writers race on one fallback index (distribution 2.8 has no conditional tag
//! writes): nothing may be lost, before or after `garbage-collect --delete-untagged`.

use std::sync::Arc;
use std::time::Instant;

use ocituf_oci::{ArtifactStore, Digest, ManifestRef, ReferrersSource, RegistryClient};

use crate::distribution::{anonymous, push_artifact, repo};
use ocituf_testkit::Distribution;

use crate::harness::descriptor_of;

const WRITERS: usize = 20;
/// Races per test run: a lost update does not show in every race, so run several.
const RACES: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_fallback_writers_lose_nothing_and_survive_gc() {
    let reg = Distribution::start();
    let mut races = Vec::new();
    for race in 0..RACES {
        races.push(race_on_one_subject(&reg, race).await);
    }
    // Garbage collection with --delete-untagged keeps every referrer and its blobs.
    let gc = reg.garbage_collect().unwrap();
    assert!(gc.contains("blobs marked"), "unexpected gc output: {gc}");
    // It did collect: the superseded versions of the fallback indexes were untagged.
    let deleted = gc.matches("manifest eligible for deletion").count();
    eprintln!("garbage-collect --delete-untagged deleted {deleted} manifests");
    assert!(
        deleted > 0,
        "nothing collected, the test proves nothing: {gc}"
    );
    let after = repo(&reg, "acme/tuf");
    for (anchor_d, pushed) in &races {
        let (found, _) = after.referrers(anchor_d, None).await.unwrap();
        assert_eq!(found.len(), WRITERS);
        for (d, layer) in pushed {
            assert!(found.iter().any(|f| &f.digest == d), "{d} lost after gc");
            let m = after
                .get_manifest(ManifestRef::Digest(d), 1 << 20)
                .await
                .unwrap();
            assert!(m.is_some(), "{d} garbage-collected");
            let blob = after.get_blob(&Digest::of(layer), 1 << 20).await.unwrap();
            assert_eq!(
                blob.as_deref(),
                Some(&layer[..]),
                "layer of {d} garbage-collected"
            );
        }
    }
}

/// Twenty writers push referrers of one new subject at once; returns the subject and the
/// pushed (digest, layer) pairs after checking that the index lists all of them.
async fn race_on_one_subject(reg: &Distribution, race: usize) -> (Digest, Vec<(Digest, Vec<u8>)>) {
    let setup = repo(reg, "acme/tuf");
    let (anchor, anchor_d) = push_artifact(
        &setup,
        "application/vnd.ocituf.anchor.v1+json",
        format!("anchor {race}").as_bytes(),
        None,
        Some(&format!("anchor-{race}")),
    )
    .await;
    let subject = descriptor_of(&anchor);

    let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let host = reg.addr().to_owned();
        let subject = subject.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            // Each writer has its own client: no shared cache, as separate processes.
            let client = RegistryClient::new(&host, anonymous()).unwrap();
            let repo = client.repo("acme/tuf").unwrap();
            let layer = format!("{{\"signed\":{{\"race\":{race},\"version\":{i}}}}}").into_bytes();
            barrier.wait().await;
            let (_, d) = push_artifact(
                &repo,
                "application/vnd.tuf.timestamp.v1+json",
                &layer,
                Some(&subject),
                None,
            )
            .await;
            (d, layer, client.request_count())
        }));
    }
    let mut pushed = Vec::new();
    let mut requests = 0;
    for t in tasks {
        let (d, layer, n) = t.await.unwrap();
        requests += n;
        pushed.push((d, layer));
    }
    eprintln!(
        "{WRITERS} writers done in {:?} with {requests} HTTP requests in all",
        started.elapsed()
    );

    // Every artifact is in the index itself (no reconcile, no tags merge).
    let reader = repo(reg, "acme/tuf");
    let (found, source) = reader.referrers(&anchor_d, None).await.unwrap();
    assert_eq!(source, ReferrersSource::TagSchemaFallback);
    let found: Vec<Digest> = found.into_iter().map(|d| d.digest).collect();
    assert_eq!(found.len(), WRITERS, "duplicates or losses: {found:?}");
    for (d, _) in &pushed {
        assert!(found.contains(d), "{d} lost from the fallback index");
    }

    (anchor_d, pushed)
}
