//! Signed images per second end to end through the online signer (issue 7): P concurrent
//! publishers each push an image, sign it into the team role `app`'s hash bins (`BENCH_BINS`,
//! default 256; 0: into `app` itself, no bins) with the writer's edit protocol (rebuilding
//! after lost races), submit each role version written to the signer and wait until a
//! published timestamp covers it. Sign-to-visible latency is measured per image, from the
//! start of the signature to the last accepting answer.
//!
//! Set-up: distribution 2.8 (the fallback registry) from the testkit on 127.0.0.1, the
//! signer in-process, the publishers as tasks of one tokio runtime (4 worker threads). The
//! images are pushed before the clock starts (sign to visible is what is measured; the
//! push time is printed beside it). After each run, 16 tasks send HEAD requests to the
//! registry for 3 s: its capacity for the cheapest request, measured in the same run.
//!
//! `BENCH_REGISTRY=referrers`: the registry with the native referrers API instead (no
//! fallback index to rewrite per push).
//!
//! `BENCH_BATCH=K`: each publisher signs its images K per run (`ocituf sign IMAGE...`: one
//! new version per touched role) and submits what each run wrote; default 1.
//!
//! `BENCH_COUNT=1`: the publishers and the signer each reach the registry through a
//! counting pass-through proxy (testkit's `AdversarialProxy`, no rule), and the bench
//! prints HTTP requests per signed image on each side with their mix by kind (the proxies
//! cost CPU: take rates from a run without them).
//!
//! Run: `cargo bench -p ocituf-signer --bench throughput` (optional arguments: PUBLISHERS
//! IMAGES_EACH pairs, default `16 4 64 1`). Prints a table on stdout.

// Figures are printed as floats; the counts are far below 2^52.
#![allow(clippy::cast_precision_loss)]

#[path = "../tests/it/fixture.rs"]
#[allow(dead_code)]
mod fixture;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fixture::{Org, Registry};

/// HTTP requests per signed image, and their mix by kind (most first).
type Counted = (f64, Vec<(String, u64)>);

/// What one run measured.
struct Run {
    /// Signed images per second, from the first signature to the last accepting answer.
    rate: f64,
    /// Sign-to-visible latencies and the signing part of them, sorted.
    latencies: Vec<Duration>,
    signing: Vec<Duration>,
    timestamps: u64,
    /// Seconds the image pushes took before the clock started (not ocituf's work).
    push_s: f64,
    /// With `BENCH_COUNT=1`: HTTP requests per image the publishers and the signer sent
    /// while the clock ran, each with its mix by kind.
    counted: Option<[Counted; 2]>,
    /// HEAD requests per second the registry answered right after (its capacity for the
    /// cheapest request on this machine, in the same run).
    registry_heads_per_s: f64,
}

/// The kind of a logged proxy request (`METHOD target -> status`): method and route.
fn kind(line: &str) -> String {
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("?");
    let target = parts.next().unwrap_or("");
    let route = if target.contains("/blobs/uploads") {
        "blob upload"
    } else if target.contains("/blobs/") {
        "blob"
    } else if target.contains("/manifests/sha256:") {
        "manifest by digest"
    } else if target.contains("/manifests/") {
        "manifest by tag"
    } else if target.contains("/referrers/") {
        "referrers"
    } else if target.contains("/tags/list") {
        "tags list"
    } else {
        "other"
    };
    format!("{method} {route}")
}

/// Requests per image since `from` in `proxy`'s log, and their mix by kind (most first).
fn count(proxy: &ocituf_testkit::AdversarialProxy, from: usize, images: usize) -> Counted {
    let log = proxy.log();
    let mut mix = std::collections::BTreeMap::<String, u64>::new();
    for line in log.iter().skip(from) {
        *mix.entry(kind(line)).or_default() += 1;
    }
    let total: u64 = mix.values().sum();
    let mut mix: Vec<_> = mix.into_iter().collect();
    mix.sort_by_key(|k| std::cmp::Reverse(k.1));
    (total as f64 / images as f64, mix)
}

/// HEAD requests per second `addr` answers for `acme/app:TAG`, by 16 tasks for 3 s.
async fn registry_heads_per_s(addr: &str, tag: &str) -> f64 {
    use ocituf_oci::ArtifactStore as _;
    let image =
        ocituf_resolver::ImageReference::parse(&format!("{addr}/acme/app:{tag}")).expect("ref");
    let store = Arc::new(ocituf_resolver::store::open(&image.repo).expect("store"));
    let until = Instant::now() + Duration::from_secs(3);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (store, tag) = (store.clone(), tag.to_owned());
        tasks.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                let found = store
                    .head_manifest(ocituf_oci::ManifestRef::Tag(&tag))
                    .await
                    .expect("a HEAD");
                assert!(found.is_some(), "the image is gone");
                n += 1;
            }
            n
        });
    }
    let mut n = 0;
    while let Some(c) = tasks.join_next().await {
        n += c.expect("a HEAD task panicked");
    }
    n as f64 / 3.0
}

/// P publishers each sign their pushed images in turn, `batch` per sign (one version per
/// touched role, as `ocituf sign IMAGE...` does), and wait for them to be visible:
/// sign-to-visible latencies (one per image, that of its sign) and their signing parts.
async fn sign_all(
    org: &Arc<Org>,
    signer: &Arc<ocituf_signer::Signer>,
    publishers: usize,
    images: usize,
    batch: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let org = Arc::clone(org);
        let signer = Arc::clone(signer);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let tags: Vec<String> = (0..images).map(|i| format!("p{p}-i{i}")).collect();
            for chunk in tags.chunks(batch.max(1)) {
                let names: Vec<&str> = chunk.iter().map(String::as_str).collect();
                let t = Instant::now();
                let written = org.sign_batch(&names).await;
                let signing = t.elapsed();
                // Every role version written is submitted at once, as a CI job would.
                let mut submits = tokio::task::JoinSet::new();
                for (role, version) in written {
                    let signer = signer.clone();
                    submits.spawn(async move {
                        signer
                            .submit("acme", &role, version, None, Duration::from_secs(600))
                            .await
                    });
                }
                let first = &chunk[0];
                while let Some(fate) = submits.join_next().await {
                    let fate = fate
                        .expect("a submission panicked")
                        .unwrap_or_else(|e| panic!("{first}: {e}"));
                    assert!(
                        matches!(fate, ocituf_signer::Fate::Accepted { .. }),
                        "{first}: {fate:?}"
                    );
                }
                let visible = t.elapsed();
                latencies.extend(chunk.iter().map(|_| (visible, signing)));
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    let mut signing = Vec::new();
    for t in tasks {
        for (l, s) in t.await.expect("a publisher panicked") {
            latencies.push(l);
            signing.push(s);
        }
    }
    latencies.sort();
    signing.sort();
    (latencies, signing)
}

async fn run(
    publishers: usize,
    images: usize,
    bins: Option<u32>,
    batch: usize,
    counting: bool,
) -> Run {
    let upstream = if std::env::var("BENCH_REGISTRY").is_ok_and(|r| r == "referrers") {
        Registry::Referrers(ocituf_testkit::ReferrersRegistry::start())
    } else {
        Registry::Distribution(ocituf_testkit::Distribution::start())
    };
    let direct = upstream.addr().to_owned();
    let proxy =
        |addr: &str| ocituf_testkit::AdversarialProxy::start_for(addr, Duration::from_secs(3600));
    let (registry, signer_proxy) = if counting {
        let publishers_proxy = proxy(&direct);
        let signer_proxy = proxy(&direct);
        (
            Registry::Counted(Box::new(upstream), publishers_proxy),
            Some(signer_proxy),
        )
    } else {
        (upstream, None)
    };
    let mut org = Org::with_bins(registry, bins).await;
    org.signer_registry = signer_proxy.as_ref().map(|p| p.addr().to_owned());
    let org = Arc::new(org);
    // The images are pushed first, by the publishers at once: sign to visible is measured.
    let push_started = Instant::now();
    let mut push_tasks = tokio::task::JoinSet::new();
    for p in 0..publishers {
        let org = org.clone();
        push_tasks.spawn(async move {
            for i in 0..images {
                org.push_image(&format!("p{p}-i{i}")).await;
            }
        });
    }
    while let Some(done) = push_tasks.join_next().await {
        done.expect("a push panicked");
    }
    let push_s = push_started.elapsed().as_secs_f64();
    let signer = Arc::new(org.start_signer());
    let log_len = |p: Option<&ocituf_testkit::AdversarialProxy>| p.map_or(0, |p| p.log().len());
    let publishers_proxy = match &org.registry {
        Registry::Counted(_, p) => Some(p),
        _ => None,
    };
    let from = [log_len(publishers_proxy), log_len(signer_proxy.as_ref())];
    let started = Instant::now();
    let (latencies, signing) = sign_all(&org, &signer, publishers, images, batch).await;
    let elapsed = started.elapsed().as_secs_f64();
    let n = publishers * images;
    let counted = match (publishers_proxy, signer_proxy.as_ref()) {
        (Some(a), Some(b)) => Some([count(a, from[0], n), count(b, from[1], n)]),
        _ => None,
    };
    let timestamps = signer.status("acme").map_or(0, |s| s.publishes);
    if let Some(s) = Arc::into_inner(signer) {
        s.stop().await;
    }
    let registry_heads_per_s = registry_heads_per_s(&direct, "p0-i0").await;
    Run {
        rate: n as f64 / elapsed,
        latencies,
        signing,
        timestamps,
        push_s,
        counted,
        registry_heads_per_s,
    }
}

/// The `per_mille`/1000 quantile of `sorted` (nearest rank).
fn pct(sorted: &[Duration], per_mille: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) * per_mille + 500) / 1000;
    sorted[i.min(sorted.len() - 1)].as_secs_f64()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let pairs: Vec<(usize, usize)> = if args.len() >= 2 {
        args.chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0], c[1]))
            .collect()
    } else {
        vec![(16, 4), (64, 1)]
    };
    let bins = std::env::var("BENCH_BINS")
        .ok()
        .and_then(|b| b.parse::<u32>().ok())
        .unwrap_or(256);
    let bins = (bins > 0).then_some(bins);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let counting = std::env::var("BENCH_COUNT").is_ok_and(|v| v == "1");
    let batch = std::env::var("BENCH_BATCH")
        .ok()
        .and_then(|b| b.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    println!("images per sign: {batch}");
    println!(
        "| publishers | images | images/s | p50 sign-to-visible | p99 | p50 of it signing | timestamps published | image pushes s | registry HEAD/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut mixes = Vec::new();
    for (p, n) in pairs {
        let r = rt.block_on(run(p, n, bins, batch, counting));
        println!(
            "| {p} | {} | {:.2} | {:.2} s | {:.2} s | {:.2} s | {} | {:.1} | {:.0} |",
            p * n,
            r.rate,
            pct(&r.latencies, 500),
            pct(&r.latencies, 990),
            pct(&r.signing, 500),
            r.timestamps,
            r.push_s,
            r.registry_heads_per_s,
        );
        if let Some(c) = r.counted {
            mixes.push((p, c));
        }
    }
    for (p, [publishers, signer]) in mixes {
        println!();
        println!(
            "{p} publishers, HTTP requests per signed image: publishers {:.1}, signer {:.1}",
            publishers.0, signer.0
        );
        for (who, (_, mix)) in [("publishers", publishers), ("signer", signer)] {
            let mix: Vec<String> = mix.iter().map(|(k, n)| format!("{k} {n}")).collect();
            println!("- {who}: {}", mix.join(", "));
        }
    }
}
