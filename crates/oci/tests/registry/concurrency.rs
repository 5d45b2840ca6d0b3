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

/// Writers and deleters at once: deleted referrers leave the index (a writer that still
/// carries one has its PUT refused by distribution, finds it gone with HEAD and drops it),
/// and every other referrer stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deletes_and_pushes_on_one_fallback_index() {
    let reg = Distribution::start();
    let setup = repo(&reg, "acme/tuf");
    let (anchor, anchor_d) = push_artifact(
        &setup,
        "application/vnd.ocituf.anchor.v1+json",
        b"anchor",
        None,
        Some("anchor"),
    )
    .await;
    let subject = descriptor_of(&anchor);
    let ts = "application/vnd.tuf.timestamp.v1+json";
    let mut old = Vec::new();
    for i in 0..10 {
        let layer = format!("old {i}").into_bytes();
        old.push(
            push_artifact(&setup, ts, &layer, Some(&subject), None)
                .await
                .1,
        );
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(15));
    let mut tasks = Vec::new();
    for (i, victim) in old.iter().take(5).cloned().enumerate() {
        let (host, barrier) = (reg.addr().to_owned(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let repo = RegistryClient::new(&host, anonymous())
                .unwrap()
                .repo("acme/tuf")
                .unwrap();
            barrier.wait().await;
            let t = Instant::now();
            repo.delete_manifest(&victim).await.unwrap();
            eprintln!(
                "delete {i}: {:?}, {} requests",
                t.elapsed(),
                repo.client().request_count()
            );
            None
        }));
    }
    for i in 0..10 {
        let (host, barrier, subject) = (reg.addr().to_owned(), barrier.clone(), subject.clone());
        tasks.push(tokio::spawn(async move {
            let repo = RegistryClient::new(&host, anonymous())
                .unwrap()
                .repo("acme/tuf")
                .unwrap();
            barrier.wait().await;
            let layer = format!("new {i}").into_bytes();
            Some(
                push_artifact(&repo, ts, &layer, Some(&subject), None)
                    .await
                    .1,
            )
        }));
    }
    let started = Instant::now();
    let mut want: Vec<Digest> = old[5..].to_vec();
    for t in tasks {
        if let Some(d) = t.await.unwrap() {
            want.push(d);
        }
    }
    eprintln!("5 deletes and 10 pushes done in {:?}", started.elapsed());
    want.sort();
    let (found, _) = repo(&reg, "acme/tuf")
        .referrers(&anchor_d, None)
        .await
        .unwrap();
    let mut found: Vec<Digest> = found.into_iter().map(|d| d.digest).collect();
    found.sort();
    assert_eq!(found, want);
}
