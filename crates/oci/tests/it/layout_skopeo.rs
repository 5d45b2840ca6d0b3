//! The layout store against a real, independent client: skopeo reads what we write and we
//! read what skopeo writes (`oci:DIR:REPOSITORY:TAG` ref names).

use std::process::Command;

use ocituf_oci::mapping::{
    Anchor, RoleVersionInfo, RoleVersionManifest, EMPTY_BLOB, MANIFEST_MEDIA_TYPE, MAX_MANIFEST_LEN,
};
use ocituf_oci::{ArtifactStore, Digest, LayoutStore, ManifestRef, RootOfTrustName};

/// A minimal single-layer image in `store` tagged `tag`; returns the manifest bytes.
async fn push_image(store: &LayoutStore, tag: &str) -> anyhow::Result<Vec<u8>> {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"not really a tarball, but skopeo copies blobs verbatim";
    let config_digest = store.put_blob(config).await?;
    let layer_digest = store.put_blob(layer).await?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest.as_str(), "size": layer.len()}],
    }))?;
    store
        .put_manifest(MANIFEST_MEDIA_TYPE, &manifest, Some(tag))
        .await?;
    Ok(manifest)
}

fn skopeo(args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .map_err(|e| {
            anyhow::anyhow!("cannot run skopeo ({e}); install it: apt-get install -y skopeo")
        })?;
    anyhow::ensure!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}

#[tokio::test]
async fn skopeo_reads_and_writes_repository_tag_ref_names() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let layout = dir.path().join("layout");
    let app = LayoutStore::new(&layout, "acme/app")?;
    let manifest = push_image(&app, "1.4").await?;

    // Our TUF bookkeeping lives in the same index.json: an anchor and a role version.
    let tuf = LayoutStore::new(&layout, "acme/tuf")?;
    let acme = RootOfTrustName::parse("acme")?;
    let anchor = Anchor::top(&acme);
    tuf.put_blob(EMPTY_BLOB).await?;
    tuf.put_manifest(MANIFEST_MEDIA_TYPE, anchor.bytes(), Some(&anchor.tag()))
        .await?;
    let metadata = br#"{"signed":{"_type":"timestamp","version":3},"signatures":[]}"#;
    tuf.put_blob(metadata).await?;
    let info = RoleVersionInfo {
        root_of_trust: &acme,
        role: "timestamp",
        version: 3,
        expires: "2030-01-01T00:00:00Z",
        parent: None,
    };
    let rv = RoleVersionManifest::build(&info, metadata)?;
    tuf.put_manifest(MANIFEST_MEDIA_TYPE, &rv.bytes, Some(&rv.tag()))
        .await?;

    // skopeo reads our ref name `acme/app:1.4` byte for byte.
    let loc = format!("oci:{}:acme/app:1.4", layout.display());
    let raw = skopeo(&["inspect", "--raw", &loc])?;
    assert_eq!(raw, manifest);

    // skopeo writes `other/app:2` into the same layout (rewriting index.json) ...
    let dest = format!("oci:{}:other/app:2", layout.display());
    skopeo(&["copy", "--preserve-digests", &loc, &dest])?;
    let other = LayoutStore::new(&layout, "other/app")?;
    let copied = other
        .get_manifest(ManifestRef::Tag("2"), MAX_MANIFEST_LEN)
        .await?
        .ok_or_else(|| anyhow::anyhow!("skopeo's tag other/app:2 is not visible"))?;
    assert_eq!(copied.digest, Digest::of(&manifest));

    // ... and our referrers bookkeeping survives skopeo's rewrite.
    let (referrers, _) = tuf
        .referrers(
            anchor.digest(),
            Some("application/vnd.tuf.timestamp.v1+json"),
        )
        .await?;
    assert_eq!(referrers.len(), 1);
    assert_eq!(referrers[0].digest, rv.digest);
    assert_eq!(referrers[0].annotations, rv.annotations);
    assert!(tuf
        .get_manifest(ManifestRef::Tag(&anchor.tag()), MAX_MANIFEST_LEN)
        .await?
        .is_some());
    Ok(())
}
