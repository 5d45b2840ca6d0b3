//! The same client suite (`suite.rs`) on the two real test registries: distribution 2.8
//! (tag-schema fallback) and the native referrers registry, both started by the testkit on
//! 127.0.0.1 and stopped by PID on drop.

use ocituf_oci::registry::Credentials;
use ocituf_oci::{ArtifactStore, RegistryOptions, RegistryRepo};
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
    concurrent_publishers,
    endless_data,
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

/// docs/oci-mapping.md 8: after pruning and `garbage-collect --delete-untagged` on
/// distribution 2.8 (which deletes manifests reachable only through a fallback index),
/// everything the current timestamp reaches is still there, and so are all roots.
#[tokio::test]
async fn garbage_collection_keeps_what_the_timestamp_reaches() -> anyhow::Result<()> {
    use ocituf_oci::{OciRepoSource, Publisher, Retention};
    use ocituf_tuf::RepoSource;
    let reg = Distribution::start();
    let repo = open(reg.addr())?;
    let p = Publisher::new(&repo, suite::acme());
    let (snapshot, targets) = suite::publish_history(&p, 5).await?;
    p.prune(&Retention::default()).await?;
    // Control: an untagged manifest (no subject, so the store adds no tag either) is
    // collected, so garbage collection did run with --delete-untagged.
    let untagged = {
        use ocituf_oci::mapping::{EMPTY_BLOB, EMPTY_DIGEST, MANIFEST_MEDIA_TYPE};
        repo.put_blob(EMPTY_BLOB).await?;
        let empty = serde_json::json!({"mediaType": "application/vnd.oci.empty.v1+json",
                                       "digest": EMPTY_DIGEST, "size": 2});
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
                                   "config": empty, "layers": [empty],
                                   "annotations": {"control": "yes"}});
        repo.put_manifest(MANIFEST_MEDIA_TYPE, &serde_json::to_vec(&m)?, None)
            .await?
    };
    reg.garbage_collect()?;

    let repo = open(reg.addr())?;
    let source = OciRepoSource::new(&repo, suite::acme());
    source.start_refresh();
    let root2 = source
        .fetch_metadata(&suite::req("root", Some(2), None, 0))
        .await?;
    assert_eq!(root2.and_then(|f| f.claimed_version), Some(2));
    let ts = source
        .fetch_metadata(&suite::req("timestamp", None, None, 0))
        .await?;
    assert_eq!(ts.and_then(|f| f.claimed_version), Some(5));
    let h = suite::sha256(&snapshot.metadata_digest);
    let snap = source
        .fetch_metadata(&suite::req("snapshot", Some(5), Some(&h), 0))
        .await?;
    assert!(snap.is_some(), "snapshot 5 was garbage-collected");
    let h = suite::sha256(&targets.metadata_digest);
    let t = source
        .fetch_metadata(&suite::req("targets", Some(5), Some(&h), 0))
        .await?;
    assert!(t.is_some(), "targets 5 was garbage-collected");
    assert!(
        repo.get_manifest(ocituf_oci::ManifestRef::Digest(&untagged), 1 << 20)
            .await?
            .is_none(),
        "the control artifact survived: garbage collection did not run"
    );
    // Every listed version is still readable (no dangling fallback entries for kept ones).
    let p = Publisher::new(&repo, suite::acme());
    for role in ["root", "timestamp", "snapshot", "targets"] {
        for listed in p.versions(role).await? {
            assert!(
                p.read(&listed).await?.is_some(),
                "{role} {} listed but gone",
                listed.version
            );
        }
    }
    Ok(())
}

/// The round trips of `round_trip.rs` on both registries: metadata in `acme/tuf`, images
/// in `acme/app`; tampering writes the registry's own blob file.
mod round_trips {
    use ocituf_oci::{Digest, RegistryOptions, RegistryRepo};
    use ocituf_testkit::{Distribution, ReferrersRegistry};

    use crate::round_trip;

    fn repo(addr: &str, name: &str) -> anyhow::Result<RegistryRepo> {
        let opts = RegistryOptions {
            credentials: ocituf_oci::registry::Credentials::Anonymous,
            ..RegistryOptions::default()
        };
        Ok(RegistryRepo::open(&format!("{addr}/{name}"), opts)?)
    }

    macro_rules! round_trips {
        ($($name:ident),* $(,)?) => {
            mod distribution {
                use super::*;
                $(
                    #[tokio::test]
                    async fn $name() -> anyhow::Result<()> {
                        let reg = Distribution::start();
                        let (meta, images) = (repo(reg.addr(), "acme/tuf")?, repo(reg.addr(), "acme/app")?);
                        round_trip::$name(meta, images).await
                    }
                )*

                #[tokio::test]
                async fn blob_swapped() -> anyhow::Result<()> {
                    let reg = Distribution::start();
                    let (meta, images) = (repo(reg.addr(), "acme/tuf")?, repo(reg.addr(), "acme/app")?);
                    round_trip::blob_swapped(meta, images, |d: &Digest, bytes: &[u8]| {
                        std::fs::write(reg.blob_path(d.as_str()), bytes)
                    })
                    .await
                }
            }
            mod native_referrers {
                use super::*;
                $(
                    #[tokio::test]
                    async fn $name() -> anyhow::Result<()> {
                        let reg = ReferrersRegistry::start();
                        let (meta, images) = (repo(reg.addr(), "acme/tuf")?, repo(reg.addr(), "acme/app")?);
                        round_trip::$name(meta, images).await
                    }
                )*

                #[tokio::test]
                async fn blob_swapped() -> anyhow::Result<()> {
                    let reg = ReferrersRegistry::start();
                    let (meta, images) = (repo(reg.addr(), "acme/tuf")?, repo(reg.addr(), "acme/app")?);
                    round_trip::blob_swapped(meta, images, |d: &Digest, bytes: &[u8]| {
                        std::fs::write(reg.blob_path(d.as_str()), bytes)
                    })
                    .await
                }
            }
        };
    }

    round_trips!(
        sign_and_verify,
        tag_moved,
        artifact_deleted,
        old_timestamp_repushed,
        junk_timestamp_with_huge_version,
        junk_root_is_refused,
        multi_arch,
        freeze,
    );
}

/// Issue 3: twenty concurrent writers pushing versions of one role on the fallback
/// registry lose nothing, and everything stays safe from garbage collection.
#[tokio::test]
async fn twenty_concurrent_publishers_survive_garbage_collection() -> anyhow::Result<()> {
    use ocituf_oci::Publisher;
    let reg = Distribution::start();
    suite::concurrent_publishers(open(reg.addr())?).await?;
    reg.garbage_collect()?;
    let p = Publisher::new(open(reg.addr())?, suite::acme());
    let listed = p.versions("team").await?;
    assert_eq!(listed.len(), 21);
    for l in &listed {
        assert!(
            p.read(l).await?.is_some(),
            "team {} collected by GC",
            l.version
        );
    }
    Ok(())
}
