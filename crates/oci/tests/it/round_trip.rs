//! Sign-and-verify round trips through the real TUF updater of `ocituf-tuf` over
//! `OciRepoSource`, and the attacks a registry (or anyone with push access to it) can try,
//! each refused by a named check. Generic over the metadata store and the image store, so
//! the same tests run on the OCI layout and on both real registries.

// Test code: panics are assertions.
#![allow(clippy::missing_panics_doc)]

use ocituf_oci::mapping::{
    RoleVersionInfo, RoleVersionManifest, MANIFEST_MEDIA_TYPE, MAX_MANIFEST_LEN,
};
use ocituf_oci::{ArtifactStore, Digest, ManifestRef, OciRepoSource, Publisher};
use ocituf_tuf::{FixedClock, Updater, UpdaterConfig};
use time::Duration;

use crate::fixture::{MapStore, Repo, NOW};
use crate::suite::acme;

type Client<'a, A> = Updater<OciRepoSource<&'a A>, &'a MapStore, FixedClock>;

async fn client<'a, A: ArtifactStore>(
    store: &'a A,
    cache: &'a MapStore,
    root: &[u8],
    now: time::OffsetDateTime,
) -> anyhow::Result<Client<'a, A>> {
    Ok(Updater::new(
        root,
        OciRepoSource::new(store, acme()),
        cache,
        UpdaterConfig::default(),
        FixedClock(now),
    )
    .await?)
}

/// An image manifest in the image repository, tagged; returns its bytes.
async fn push_image<B: ArtifactStore>(images: &B, tag: &str, n: u8) -> anyhow::Result<Vec<u8>> {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","n":{n}}}"#);
    let layer = vec![n; 64];
    let config_digest = images.put_blob(config.as_bytes()).await?;
    let layer_digest = images.put_blob(&layer).await?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest.as_str(), "size": layer.len()}],
    }))?;
    images
        .put_manifest(MANIFEST_MEDIA_TYPE, &manifest, Some(tag))
        .await?;
    Ok(manifest)
}

/// What a resolver does: the digest the registry gives for `acme/app:TAG`, verified against
/// the signed target (docs/oci-mapping.md 7).
async fn verify_tag<A: ArtifactStore, B: ArtifactStore>(
    client: &mut Client<'_, A>,
    images: &B,
    tag: &str,
) -> anyhow::Result<Result<Digest, ocituf_tuf::Error>> {
    let info = client
        .target_info(&format!("acme/app:{tag}"))
        .await?
        .ok_or_else(|| anyhow::anyhow!("acme/app:{tag} is not signed"))?;
    let manifest = images
        .get_manifest(ManifestRef::Tag(tag), MAX_MANIFEST_LEN)
        .await?
        .ok_or_else(|| anyhow::anyhow!("tag {tag} not in the registry"))?;
    Ok(ocituf_tuf::updater::verify_target(&info, &manifest.bytes).map(|()| manifest.digest))
}

/// Publish a repository with `acme/app:1.4` signed, at timestamp version `versions`.
async fn setup<A: ArtifactStore, B: ArtifactStore>(
    store: &A,
    images: &B,
    versions: u64,
) -> anyhow::Result<(Repo, Vec<u8>)> {
    let p = Publisher::new(store, acme());
    let mut repo = Repo::new();
    let manifest = push_image(images, "1.4", 1).await?;
    repo.sign_image("1.4", &manifest, MANIFEST_MEDIA_TYPE);
    for _ in 0..versions {
        repo.publish(&p).await?;
    }
    Ok((repo, manifest))
}

pub async fn sign_and_verify<A: ArtifactStore, B: ArtifactStore>(
    store: A,
    images: B,
) -> anyhow::Result<()> {
    let (mut repo, manifest) = setup(&store, &images, 1).await?;
    let cache = MapStore::default();
    let mut c = client(&store, &cache, &repo.root_bytes(), NOW).await?;
    c.refresh().await?;
    // Cold start: listing, timestamp, snapshot, targets (root 2 comes from the listing).
    assert_eq!(c.source().requests(), 4);
    let verified = verify_tag(&mut c, &images, "1.4").await??;
    assert_eq!(verified, Digest::of(&manifest));
    // One more request for the delegated role, by hash.
    assert_eq!(c.source().requests(), 5);
    // Pulls by digest: the digest target name.
    let by_digest = c
        .target_info(&format!("acme/app@{verified}"))
        .await?
        .ok_or_else(|| anyhow::anyhow!("digest target missing"))?;
    assert_eq!(by_digest.hashes["sha256"], verified.hex());
    assert!(c.target_info("acme/other:1.0").await?.is_none());

    // Warm refresh with nothing new: one request.
    let before = c.source().requests();
    c.refresh().await?;
    assert_eq!(c.source().requests() - before, 1);

    // A new image is signed and published: the client sees it after a refresh.
    let p = Publisher::new(&store, acme());
    let manifest2 = push_image(&images, "2.0", 2).await?;
    repo.sign_image("2.0", &manifest2, MANIFEST_MEDIA_TYPE);
    repo.publish(&p).await?;
    let before = c.source().requests();
    c.refresh().await?;
    // listing, timestamp, snapshot (targets unchanged: from the cache)
    assert_eq!(c.source().requests() - before, 3);
    let v2 = verify_tag(&mut c, &images, "2.0").await??;
    assert_eq!(v2, Digest::of(&manifest2));

    // A new process with the cache (and the cached timestamp offered by digest): one request.
    let mut fresh = client(&store, &cache, &repo.root_bytes(), NOW).await?;
    fresh.source().remember_cached_timestamp(&&cache).await;
    fresh.refresh().await?;
    assert_eq!(fresh.source().requests(), 1);
    Ok(())
}

/// tag_moved: the registry (or someone with push access) points the tag at another image.
pub async fn tag_moved<A: ArtifactStore, B: ArtifactStore>(
    store: A,
    images: B,
) -> anyhow::Result<()> {
    let (repo, _) = setup(&store, &images, 1).await?;
    push_image(&images, "1.4", 66).await?; // the tag now names another manifest
    let cache = MapStore::default();
    let mut c = client(&store, &cache, &repo.root_bytes(), NOW).await?;
    c.refresh().await?;
    let refused = verify_tag(&mut c, &images, "1.4").await?;
    assert!(
        matches!(
            refused,
            Err(ocituf_tuf::Error::HashMismatch { .. } | ocituf_tuf::Error::LengthMismatch { .. })
        ),
        "{refused:?}"
    );
    Ok(())
}

/// blob_swapped: the bytes stored for the team role's blob are replaced. `swap_blob`
/// overwrites the registry's (or layout's) file for a digest.
pub async fn blob_swapped<A: ArtifactStore, B: ArtifactStore>(
    store: A,
    images: B,
    swap_blob: impl Fn(&Digest, &[u8]) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let (repo, _) = setup(&store, &images, 1).await?;
    let team = &repo.published["team"];
    let mut evil = team.clone();
    // Same length, different content: only a digest or hash check can tell.
    if let Some(b) = evil.iter_mut().rev().find(|b| b.is_ascii_hexdigit()) {
        *b = if *b == b'0' { b'1' } else { b'0' };
    }
    swap_blob(&Digest::of(team), &evil)?;
    let cache = MapStore::default();
    let mut c = client(&store, &cache, &repo.root_bytes(), NOW).await?;
    c.refresh().await?;
    let err = c
        .target_info("acme/app:1.4")
        .await
        .expect_err("a swapped blob must be refused");
    assert!(names_digest_check(&err), "{err:?}");
    Ok(())
}

/// Whether an error (or one of its sources) is a digest or hash check.
fn names_digest_check(err: &ocituf_tuf::Error) -> bool {
    if matches!(err, ocituf_tuf::Error::HashMismatch { .. }) {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(oci) = e.downcast_ref::<ocituf_oci::Error>() {
            if matches!(
                oci,
                ocituf_oci::Error::DigestMismatch { .. }
                    | ocituf_oci::Error::Registry(ocituf_oci::RegistryError::DigestMismatch { .. })
            ) {
                return true;
            }
        }
        if let Some(ocituf_oci::RegistryError::DigestMismatch { .. }) =
            e.downcast_ref::<ocituf_oci::RegistryError>()
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// artifact_deleted: the newest timestamp is deleted from the registry after the client
/// trusted it; the older one left is a rollback.
pub async fn artifact_deleted<A: ArtifactStore, B: ArtifactStore>(
    store: A,
    images: B,
) -> anyhow::Result<()> {
    let (repo, _) = setup(&store, &images, 2).await?;
    let cache = MapStore::default();
    let mut c = client(&store, &cache, &repo.root_bytes(), NOW).await?;
    c.refresh().await?;
    let p = Publisher::new(&store, acme());
    let newest = p
        .versions("timestamp")
        .await?
        .into_iter()
        .find(|l| l.version == 2)
        .ok_or_else(|| anyhow::anyhow!("timestamp 2 not listed"))?;
    store.delete_manifest(&newest.descriptor.digest).await?;
    let err = c.refresh().await.expect_err("rollback must be refused");
    assert!(
        matches!(&err, ocituf_tuf::Error::Rollback { role, trusted: 2, got: 1 } if role == "timestamp"),
        "{err:?}"
    );
    Ok(())
}

/// rollback_timestamp: an old, validly signed timestamp is pushed again, annotated as the
/// newest version. Its claim is refused, the real newest wins; and once the real newest is
/// deleted, the old one is refused as a rollback.
pub async fn old_timestamp_repushed<A: ArtifactStore, B: ArtifactStore>(
    store: A,
    images: B,
) -> anyhow::Result<()> {
    let p = Publisher::new(&store, acme());
    let (mut repo, _) = setup(&store, &images, 1).await?;
    let old = repo.published["timestamp"].clone();
    repo.publish(&p).await?;
    let cache = MapStore::default();
    let mut c = client(&store, &cache, &repo.root_bytes(), NOW).await?;
    c.refresh().await?;
    let info = RoleVersionInfo {
        root_of_trust: &acme(),
        role: "timestamp",
        version: 3, // the lie
        expires: "2099-01-01T00:00:00Z",
        parent: None,
    };
    let m = RoleVersionManifest::build(&info, &old)?;
    store
        .put_manifest(MANIFEST_MEDIA_TYPE, &m.bytes, Some(&m.tag()))
        .await?;
    c.refresh().await?;
    assert_eq!(
        ocituf_tuf::updater::trusted_versions(c.trusted())["timestamp"],
        2
    );

    // Delete the real newest: what is left is refused.
    let real = p
        .versions("timestamp")
        .await?
        .into_iter()
        .find(|l| l.version == 2)
        .ok_or_else(|| anyhow::anyhow!("timestamp 2 not listed"))?;
    store.delete_manifest(&real.descriptor.digest).await?;
    let err = c
        .refresh()
        .await
        .expect_err("an old timestamp must be refused");
    assert!(
        matches!(
            &err,
            ocituf_tuf::Error::VersionMismatch {
                expected: 3,
                got: 1,
                ..
            } | ocituf_tuf::Error::Rollback {
                trusted: 2,
                got: 1,
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

/// junk_with_huge_version: an artifact claiming timestamp version u64::MAX, with garbage as
/// its layer, costs a bounded number of requests and changes nothing.
pub async fn junk_timestamp_with_huge_version<A: ArtifactStore, B: ArtifactStore>(
    store: A,
    images: B,
) -> anyhow::Result<()> {
    let (repo, _) = setup(&store, &images, 1).await?;
    let cache = MapStore::default();
    let mut c = client(&store, &cache, &repo.root_bytes(), NOW).await?;
    c.refresh().await?;
    let garbage = b"{\"signed\":{\"_type\":\"timestamp\",\"version\":18446744073709551615}}";
    store.put_blob(garbage).await?;
    let info = RoleVersionInfo {
        root_of_trust: &acme(),
        role: "timestamp",
        version: u64::MAX,
        expires: "2099-01-01T00:00:00Z",
        parent: None,
    };
    let m = RoleVersionManifest::build(&info, garbage)?;
    store
        .put_manifest(MANIFEST_MEDIA_TYPE, &m.bytes, Some(&m.tag()))
        .await?;
    let before = c.source().requests();
    c.refresh().await?;
    assert_eq!(
        ocituf_tuf::updater::trusted_versions(c.trusted())["timestamp"],
        1
    );
    // listing + the junk blob (the real timestamp's bytes are reused by digest)
    assert_eq!(c.source().requests() - before, 2);
    Ok(())
}

/// freeze: a client whose clock is past the timestamp's expiry refuses it.
pub async fn freeze<A: ArtifactStore, B: ArtifactStore>(store: A, images: B) -> anyhow::Result<()> {
    let (repo, _) = setup(&store, &images, 1).await?;
    let cache = MapStore::default();
    let mut c = client(&store, &cache, &repo.root_bytes(), NOW + Duration::days(31)).await?;
    let err = c
        .refresh()
        .await
        .expect_err("expired timestamp must be refused");
    assert!(
        matches!(&err, ocituf_tuf::Error::Expired { role, .. } if role == "timestamp"),
        "{err:?}"
    );
    Ok(())
}

/// An artifact claiming root version 2, well formed but signed by an attacker's key, is
/// not "no newer root": the refresh stops with the failed check (docs/oci-mapping.md 6), and
/// the trusted root stays version 1.
pub async fn junk_root_is_refused<A: ArtifactStore, B: ArtifactStore>(
    store: A,
    images: B,
) -> anyhow::Result<()> {
    let (repo, _) = setup(&store, &images, 1).await?;
    let evil = repo.root_signed_by_attacker(2);
    store.put_blob(&evil).await?;
    let info = RoleVersionInfo {
        root_of_trust: &acme(),
        role: "root",
        version: 2,
        expires: "2099-01-01T00:00:00Z",
        parent: None,
    };
    let m = RoleVersionManifest::build(&info, &evil)?;
    store
        .put_manifest(MANIFEST_MEDIA_TYPE, &m.bytes, Some(&m.tag()))
        .await?;
    let cache = MapStore::default();
    let mut c = client(&store, &cache, &repo.root_bytes(), NOW).await?;
    let err = c
        .refresh()
        .await
        .expect_err("a bad root 2 must stop the refresh");
    assert!(
        matches!(&err, ocituf_tuf::Error::Threshold { role, valid: 0, .. } if role == "root"),
        "{err:?}"
    );
    assert_eq!(c.trusted().root().version, 1);
    Ok(())
}

/// multi-arch: the index digest is signed; the platform manifest is reached through the
/// verified index bytes and checked against the digest the index lists.
pub async fn multi_arch<A: ArtifactStore, B: ArtifactStore>(
    store: A,
    images: B,
) -> anyhow::Result<()> {
    use ocituf_oci::image::{index_entries, select_platform, target_custom};
    use ocituf_oci::mapping::INDEX_MEDIA_TYPE;

    let p = Publisher::new(&store, acme());
    let mut repo = Repo::new();
    // Two platform manifests, untagged, then the index that lists them, tagged.
    let mut children = Vec::new();
    for (n, arch) in [(7u8, "amd64"), (8, "arm64")] {
        let m = push_image(&images, &format!("tmp-{arch}"), n).await?;
        children.push(serde_json::json!({
            "mediaType": MANIFEST_MEDIA_TYPE, "digest": Digest::of(&m).as_str(),
            "size": m.len(), "platform": {"os": "linux", "architecture": arch}}));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": children}))?;
    images
        .put_manifest(INDEX_MEDIA_TYPE, &index, Some("3.0"))
        .await?;
    repo.sign_image("3.0", &index, INDEX_MEDIA_TYPE);
    repo.publish(&p).await?;

    let cache = MapStore::default();
    let mut c = client(&store, &cache, &repo.root_bytes(), NOW).await?;
    c.refresh().await?;
    let info = c
        .target_info("acme/app:3.0")
        .await?
        .ok_or_else(|| anyhow::anyhow!("acme/app:3.0 not signed"))?;
    assert_eq!(info.custom, Some(target_custom(INDEX_MEDIA_TYPE)));
    let served = images
        .get_manifest(ManifestRef::Tag("3.0"), MAX_MANIFEST_LEN)
        .await?
        .ok_or_else(|| anyhow::anyhow!("tag 3.0 missing"))?;
    ocituf_tuf::updater::verify_target(&info, &served.bytes)?;
    let entries = index_entries(&served.bytes)?;
    let arm = select_platform(&entries, "linux", "arm64", None)
        .ok_or_else(|| anyhow::anyhow!("no linux/arm64"))?;
    let platform = images
        .get_manifest(
            ManifestRef::Digest(&arm.descriptor.digest),
            MAX_MANIFEST_LEN,
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("platform manifest missing"))?;
    assert_eq!(Digest::of(&platform.bytes), arm.descriptor.digest);
    assert_eq!(platform.bytes.len() as u64, arm.descriptor.size);
    // The platform digest alone is not a target (docs/oci-mapping.md 7).
    assert!(c
        .target_info(&format!("acme/app@{}", arm.descriptor.digest))
        .await?
        .is_none());
    Ok(())
}
