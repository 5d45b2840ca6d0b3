//! Signed images per second end to end through the online signer (issue 7): P concurrent
//! publishers each push an image, sign it into the team role `app`'s hash bins (`BENCH_BINS`,
//! default 256; 0: into `app` itself, no bins) with the writer's edit protocol (rebuilding
//! after lost races), submit each role version written to the signer and wait until a
//! published timestamp covers it. Sign-to-visible latency is measured per image, from the
//! start of the signature to the last accepting answer.
//!
//! Set-up: distribution 2.8 (the fallback registry) from the testkit on 127.0.0.1, the
//! signer in-process, the publishers as tasks of one tokio runtime (4 worker threads).
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

/// Images per second; sign-to-visible latencies and the signing part of them, sorted; and
/// timestamps published.
async fn run(
    publishers: usize,
    images: usize,
    bins: Option<u32>,
) -> (f64, Vec<Duration>, Vec<Duration>, u64) {
    let registry = Registry::Distribution(ocituf_testkit::Distribution::start());
    let org = Arc::new(Org::with_bins(registry, bins).await);
    let signer = Arc::new(org.start_signer());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let org = org.clone();
        let signer = signer.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in 0..images {
                let tag = format!("p{p}-i{i}");
                org.push_image(&tag).await;
                let t = Instant::now();
                let written = org.sign_all(&tag).await;
                let signing = t.elapsed();
                // The two bins of an image are submitted at once, as a CI job would.
                let mut submits = tokio::task::JoinSet::new();
                for (role, version) in written {
                    let signer = signer.clone();
                    submits.spawn(async move {
                        signer
                            .submit("acme", &role, version, None, Duration::from_secs(600))
                            .await
                    });
                }
                while let Some(fate) = submits.join_next().await {
                    let fate = fate
                        .expect("a submission panicked")
                        .unwrap_or_else(|e| panic!("{tag}: {e}"));
                    assert!(
                        matches!(fate, ocituf_signer::Fate::Accepted { .. }),
                        "{tag}: {fate:?}"
                    );
                }
                latencies.push((t.elapsed(), signing));
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
    let elapsed = started.elapsed().as_secs_f64();
    let timestamps = signer.status("acme").map_or(0, |s| s.publishes);
    if let Some(s) = Arc::into_inner(signer) {
        s.stop().await;
    }
    latencies.sort();
    signing.sort();
    (
        (publishers * images) as f64 / elapsed,
        latencies,
        signing,
        timestamps,
    )
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
    println!(
        "| publishers | images | images/s | p50 sign-to-visible | p99 | p50 of it signing | timestamps published |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (p, n) in pairs {
        let (rate, lat, signing, publishes) = rt.block_on(run(p, n, bins));
        println!(
            "| {p} | {} | {rate:.2} | {:.2} s | {:.2} s | {:.2} s | {publishes} |",
            p * n,
            pct(&lat, 500),
            pct(&lat, 990),
            pct(&signing, 500)
        );
    }
}
