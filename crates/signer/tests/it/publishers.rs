//! 16 concurrent publishers through the signer at once (2 images each here: the full 16 x 25
//! takes ~15 minutes in a debug build, see docs/signer.md): every image verifies for a client
//! at the end, none is lost, and no timestamp version was signed twice (a fork).

use std::sync::Arc;
use std::time::Duration;

use crate::fixture::{Org, Registry};

const PUBLISHERS: usize = 16;
const IMAGES: usize = 2;

async fn many_publishers(registry: Registry) {
    let org = Arc::new(Org::new(registry).await);
    let signer = Arc::new(org.start_signer());
    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        let org = org.clone();
        let signer = signer.clone();
        tasks.push(tokio::spawn(async move {
            let mut fates = Vec::new();
            for i in 0..IMAGES {
                let tag = format!("p{p}-i{i}");
                let digest = org.push_image(&tag).await;
                let (role, version) = org.sign(&tag).await;
                eprintln!("{tag}: signed into {role} v{version}");
                let fate = signer
                    .submit("acme", &role, version, Duration::from_secs(120))
                    .await
                    .unwrap_or_else(|e| panic!("{tag}: {e}"));
                fates.push((tag, digest, fate));
            }
            fates
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.extend(t.await.unwrap());
    }
    let status = signer.status("acme").unwrap();
    assert_eq!(status.last_error, None);
    // Batching: far fewer timestamps than images.
    let publishes = status.publishes;
    assert!(
        publishes < (PUBLISHERS * IMAGES) as u64,
        "{publishes} publishes for {} images: no batching",
        PUBLISHERS * IMAGES
    );
    Arc::into_inner(signer).unwrap().stop().await;

    assert_eq!(outcomes.len(), PUBLISHERS * IMAGES);
    let resolver = org.resolver();
    let mut lost = Vec::new();
    for (tag, digest, _) in &outcomes {
        match resolver.resolve(&org.image(tag)).await {
            Ok(v) if v.digest == *digest => {}
            other => lost.push(format!("{tag}: {other:?}")),
        }
    }
    if !lost.is_empty() {
        eprintln!("lost: {lost:#?}\n{}", org.app_lineage().await);
    }
    assert_eq!(lost, Vec::<String>::new(), "images lost");
    for role in ["timestamp", "snapshot"] {
        let forks: Vec<_> = org
            .versions_claimed(role)
            .await
            .into_iter()
            .filter(|(_, m)| m.len() > 1)
            .collect();
        assert_eq!(
            forks,
            Vec::new(),
            "{role} versions claimed by two artifacts"
        );
    }
    eprintln!(
        "{} images by {PUBLISHERS} publishers in {publishes} timestamps",
        outcomes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishers_lose_nothing_and_fork_nothing_on_distribution() {
    many_publishers(Registry::Distribution(ocituf_testkit::Distribution::start())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishers_lose_nothing_and_fork_nothing_on_the_referrers_registry() {
    many_publishers(Registry::Referrers(
        ocituf_testkit::ReferrersRegistry::start(),
    ))
    .await;
}
