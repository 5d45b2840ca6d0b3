//! The same client suite (`suite.rs`) on the two real test registries: distribution 2.8
//! (tag-schema fallback) and the native referrers registry, both started by the testkit on
//! 127.0.0.1 and stopped by PID on drop.

use ocituf_oci::registry::Credentials;
use ocituf_oci::{RegistryOptions, RegistryRepo};
use ocituf_testkit::{Distribution, ReferrersRegistry};

use crate::suite;

fn open(addr: &str) -> anyhow::Result<RegistryRepo> {
    let opts = RegistryOptions {
        credentials: Credentials::Anonymous,
        ..RegistryOptions::default()
    };
    Ok(RegistryRepo::open(&format!("{addr}/acme/tuf"), opts)?)
}

macro_rules! on_registries {
    ($($name:ident),* $(,)?) => {
        mod distribution {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    let reg = Distribution::start();
                    suite::$name(open(&reg.addr().to_string())?).await
                }
            )*
        }
        mod native_referrers {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    let reg = ReferrersRegistry::start();
                    suite::$name(open(&reg.addr().to_string())?).await
                }
            )*
        }
    };
}

on_registries!(
    store_contract,
    request_budget,
    fetch_without_hashes,
    junk_with_huge_version,
    deleted_artifact_is_absent,
    newest_and_prune,
);

/// The request budget in HTTP requests (docs/oci-mapping.md 6.1), as the registry client
/// counts them, after the store has learnt whether the registry has the referrers API.
async fn http_budget(repo: RegistryRepo) -> anyhow::Result<[u64; 2]> {
    use ocituf_oci::{OciRepoSource, Publisher};
    use ocituf_tuf::RepoSource;
    let p = Publisher::new(&repo, suite::acme());
    suite::publish_history(&p, 2).await?;
    let source = OciRepoSource::new(&repo, suite::acme());
    let mut costs = [0; 2];
    for cost in &mut costs {
        let before = repo.client().request_count();
        source.start_refresh();
        source
            .fetch_metadata(&suite::req("root", Some(3), None, 0))
            .await?;
        source
            .fetch_metadata(&suite::req("timestamp", None, None, 0))
            .await?;
        *cost = repo.client().request_count() - before;
    }
    Ok(costs)
}

#[tokio::test]
async fn warm_refresh_costs_one_http_request_on_both_registries() -> anyhow::Result<()> {
    let dist = Distribution::start();
    let native = ReferrersRegistry::start();
    let d = http_budget(open(dist.addr())?).await?;
    let n = http_budget(open(native.addr())?).await?;
    eprintln!(
        "distribution: first refresh {} requests, warm {}",
        d[0], d[1]
    );
    eprintln!("native: first refresh {} requests, warm {}", n[0], n[1]);
    assert_eq!(d[1], 1, "distribution (fallback) warm refresh");
    assert_eq!(n[1], 1, "native referrers warm refresh");
    Ok(())
}
