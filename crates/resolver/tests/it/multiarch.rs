//! Multi-arch images (docs/oci-mapping.md §7): the index digest is the signed target, and
//! platform manifests are reached only through the verified index bytes.

use std::collections::BTreeMap;

use ocituf_oci::image::Platform;
use ocituf_oci::{ArtifactStore, Descriptor, Digest, Manifest, ManifestRef, ReferrersSource};
use ocituf_resolver::platform::parse_platform;
use ocituf_resolver::{
    platform_of_verified, resolve_platform, Error, ErrorKind, PlatformError, Selection,
};
use ocituf_tuf::metadata::TargetFile;

use super::{fixture, Fixture, MANIFEST};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A platform manifest pushed by digest only (no tag), as `docker buildx` does.
async fn push_platform_manifest(f: &Fixture, arch: &str) -> (Digest, u64) {
    let config = format!("{{\"architecture\":\"{arch}\",\"os\":\"linux\"}}");
    let cd = f.images.put_blob(config.as_bytes()).await.unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.as_str(), "size": config.len()},
        "layers": [],
    }))
    .unwrap();
    let d = f
        .images
        .put_manifest(MANIFEST, &manifest, None)
        .await
        .unwrap();
    (d, manifest.len() as u64)
}

/// An index of `linux/amd64` and `linux/arm64/v8` (plus `note`, so two indexes differ),
/// under `tag`. Returns (index digest, index length, amd64 digest, arm64 digest).
async fn push_index(f: &Fixture, tag: &str, note: &str) -> (Digest, u64, Digest, Digest) {
    let (amd, amd_len) = push_platform_manifest(f, &format!("amd64{note}")).await;
    let (arm, arm_len) = push_platform_manifest(f, &format!("arm64{note}")).await;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": INDEX,
        "manifests": [
            {"mediaType": MANIFEST, "digest": amd.as_str(), "size": amd_len,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": MANIFEST, "digest": arm.as_str(), "size": arm_len,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ],
        "annotations": {"note": note},
    }))
    .unwrap();
    let d = f
        .images
        .put_manifest(INDEX, &index, Some(tag))
        .await
        .unwrap();
    (d, index.len() as u64, amd, arm)
}

fn sign_index(f: &mut Fixture, name: &str, digest: &Digest, length: u64) {
    let file = TargetFile {
        length,
        hashes: BTreeMap::from([("sha256".to_owned(), digest.hex().to_owned())]),
        custom: Some(serde_json::json!({"oci": {"mediaType": INDEX}})),
        extra: BTreeMap::new(),
    };
    f.repo.add_target("targets", name, file).unwrap();
}

/// The fixture plus a multi-arch `acme/app:multi`, signed by its index digest both as the
/// tag and as `acme/app@<index digest>`. Returns (fixture, index, amd64, arm64).
async fn multiarch_fixture() -> (Fixture, Digest, Digest, Digest) {
    let (mut f, _) = fixture().await;
    let (index, len, amd, arm) = push_index(&f, "multi", "good").await;
    sign_index(&mut f, "acme/app:multi", &index, len);
    sign_index(&mut f, &format!("acme/app@{index}"), &index, len);
    f.bump_all();
    f.publish(false).await;
    (f, index, amd, arm)
}

fn linux(arch: &str, variant: Option<&str>) -> Platform {
    Platform {
        os: "linux".to_owned(),
        architecture: arch.to_owned(),
        variant: variant.map(str::to_owned),
    }
}

#[tokio::test]
async fn multiarch_tag_resolves_to_index_then_platform() {
    let (f, index, amd, arm) = multiarch_fixture().await;
    let resolver = f.resolver();
    let image = f.image("acme/app:multi");

    // The signed target is the index digest.
    let v = resolver.resolve(&image).await.unwrap();
    assert_eq!(v.digest, index);
    assert_eq!(v.media_type.as_deref(), Some(INDEX));

    let p = resolve_platform(&resolver, &image, &parse_platform("linux/amd64").unwrap())
        .await
        .unwrap();
    assert_eq!(p.verified.digest, index);
    assert_eq!(p.manifest, amd);
    assert_eq!(
        p.selection,
        Selection::Index {
            listed: linux("amd64", None)
        }
    );

    let p = resolve_platform(&resolver, &image, &linux("arm64", Some("v8")))
        .await
        .unwrap();
    assert_eq!(p.verified.digest, index);
    assert_eq!(p.manifest, arm);
    // Without a variant the arm64 entry still matches.
    let p = resolve_platform(&resolver, &image, &linux("arm64", None))
        .await
        .unwrap();
    assert_eq!(p.manifest, arm);

    // By digest alone, the same answer.
    let by_digest = f.image(&format!("acme/app@{index}"));
    let p = resolve_platform(&resolver, &by_digest, &linux("amd64", None))
        .await
        .unwrap();
    assert_eq!((p.verified.digest, p.manifest), (index, amd));
}

#[tokio::test]
async fn unknown_platform_lists_available_ones() {
    let (f, _, _, _) = multiarch_fixture().await;
    for asked in ["linux/s390x", "linux/arm64/v7", "windows/amd64"] {
        let err = resolve_platform(
            &f.resolver(),
            &f.image("acme/app:multi"),
            &parse_platform(asked).unwrap(),
        )
        .await
        .unwrap_err();
        match &err {
            PlatformError::NoSuchPlatform {
                image,
                platform,
                available,
            } => {
                assert!(image.ends_with("acme/app:multi"), "{image}");
                assert_eq!(platform, asked);
                assert_eq!(available, &["linux/amd64", "linux/arm64/v8"]);
            }
            other => panic!("expected NoSuchPlatform, got {other:?}"),
        }
        assert!(
            err.to_string().contains("linux/amd64, linux/arm64/v8"),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::Config);
    }
}

#[tokio::test]
async fn single_arch_image_is_returned_as_is() {
    let (f, _, _, _) = multiarch_fixture().await;
    let p = resolve_platform(
        &f.resolver(),
        &f.image("acme/app:1.0"),
        &linux("arm64", None),
    )
    .await
    .unwrap();
    // Its config names no platform: unknown, returned as is.
    assert_eq!(p.manifest, p.verified.digest);
    assert_eq!(p.selection, Selection::SingleArch { config: None });
}

#[tokio::test]
async fn single_arch_image_config_platform_is_checked() {
    let (mut f, _) = fixture().await;
    let (d, len) = push_platform_manifest(&f, "amd64").await;
    f.sign_target(&format!("acme/app@{d}"), &d, len);
    f.bump_all();
    f.publish(false).await;
    let image = f.image(&format!("acme/app@{d}"));

    let p = resolve_platform(&f.resolver(), &image, &linux("amd64", None))
        .await
        .unwrap();
    assert_eq!(p.manifest, d);
    assert_eq!(
        p.selection,
        Selection::SingleArch {
            config: Some(linux("amd64", None))
        }
    );

    let err = resolve_platform(&f.resolver(), &image, &linux("arm64", None))
        .await
        .unwrap_err();
    match &err {
        PlatformError::NoSuchPlatform {
            platform,
            available,
            ..
        } => {
            assert_eq!(platform, "linux/arm64");
            assert_eq!(available, &["linux/amd64"]);
        }
        other => panic!("expected NoSuchPlatform, got {other:?}"),
    }

    // The config blob is swapped on disk for one naming arm64: refused by its digest, not
    // read as the platform.
    let config = Digest::of(br#"{"architecture":"amd64","os":"linux"}"#);
    let blob = f.dir.path().join("reg/blobs/sha256").join(config.hex());
    assert!(blob.exists());
    std::fs::write(&blob, br#"{"architecture":"arm64","os":"linux"}"#).unwrap();
    let err = resolve_platform(&f.resolver(), &image, &linux("arm64", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PlatformError::ConfigDigestMismatch { expected, .. } if *expected == config),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Refused);
}

/// The registry moves the tag to another (unsigned) index: refused before any platform
/// entry is read.
#[tokio::test]
async fn index_swapped_under_tag() {
    let (f, signed, _, _) = multiarch_fixture().await;
    // Same length as the signed index, so only the digest tells them apart.
    let (evil, _, _, _) = push_index(&f, "multi", "evil").await;
    assert_ne!(evil, signed);
    let err = resolve_platform(
        &f.resolver(),
        &f.image("acme/app:multi"),
        &linux("amd64", None),
    )
    .await
    .unwrap_err();
    match &err {
        PlatformError::Resolve(Error::DigestMismatch {
            served, signed: s, ..
        }) => {
            assert_eq!(*served, evil);
            assert_eq!(*s, signed);
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::Refused);
}

/// Rewrite the index blob under its digest on disk: same length, the amd64 entry pointing
/// elsewhere. Returns the tampered bytes.
fn tamper_index_blob(f: &Fixture, index: &Digest, amd: &Digest) -> Vec<u8> {
    let blob = f.dir.path().join("reg/blobs/sha256").join(index.hex());
    let bytes = std::fs::read(&blob).unwrap();
    let tampered = String::from_utf8(bytes.clone())
        .unwrap()
        .replace(amd.hex(), Digest::of(b"evil").hex())
        .into_bytes();
    assert_eq!(tampered.len(), bytes.len());
    assert_ne!(tampered, bytes);
    std::fs::write(&blob, &tampered).unwrap();
    tampered
}

/// The index blob under the verified digest is changed on disk. A pull by digest makes no
/// tag check in `resolve`, so the check of the bytes fetched by the verified digest is what
/// refuses it (here the layout store's own check reports it first; the fake below shows
/// ours without it).
#[tokio::test]
async fn index_blob_tampered_under_verified_digest() {
    let (f, index, amd, _) = multiarch_fixture().await;
    let tampered = tamper_index_blob(&f, &index, &amd);
    let err = resolve_platform(
        &f.resolver(),
        &f.image(&format!("acme/app@{index}")),
        &linux("amd64", None),
    )
    .await
    .unwrap_err();
    match &err {
        PlatformError::IndexDigestMismatch { signed, served, .. } => {
            assert_eq!(*signed, index);
            assert_eq!(*served, Digest::of(&tampered));
        }
        other => panic!("expected IndexDigestMismatch, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::Refused);
}

/// A store that does not check digests and serves whatever bytes a blob file holds under
/// the digest asked for: hostile behaviour a real registry does not show, so a fake.
struct FakeStoreWithoutDigestCheck {
    dir: std::path::PathBuf,
}

impl ArtifactStore for FakeStoreWithoutDigestCheck {
    fn location(&self) -> String {
        "fake-store-without-digest-check".to_owned()
    }
    async fn get_blob(&self, d: &Digest, _: u64) -> Result<Option<Vec<u8>>, ocituf_oci::Error> {
        Ok(std::fs::read(self.dir.join(d.hex())).ok())
    }
    async fn put_blob(&self, _: &[u8]) -> Result<Digest, ocituf_oci::Error> {
        unreachable!("read only")
    }
    async fn get_manifest(
        &self,
        reference: ManifestRef<'_>,
        _: u64,
    ) -> Result<Option<Manifest>, ocituf_oci::Error> {
        let ManifestRef::Digest(d) = reference else {
            unreachable!("fetched by digest only")
        };
        Ok(std::fs::read(self.dir.join(d.hex()))
            .ok()
            .map(|bytes| Manifest {
                media_type: INDEX.to_owned(),
                bytes,
                digest: d.clone(),
            }))
    }
    async fn head_manifest(
        &self,
        _: ManifestRef<'_>,
    ) -> Result<Option<Descriptor>, ocituf_oci::Error> {
        unreachable!("not used")
    }
    async fn put_manifest(
        &self,
        _: &str,
        _: &[u8],
        _: Option<&str>,
    ) -> Result<Digest, ocituf_oci::Error> {
        unreachable!("read only")
    }
    async fn delete_manifest(&self, _: &Digest) -> Result<(), ocituf_oci::Error> {
        unreachable!("read only")
    }
    async fn referrers(
        &self,
        _: &Digest,
        _: Option<&str>,
    ) -> Result<(Vec<Descriptor>, ReferrersSource), ocituf_oci::Error> {
        unreachable!("not used")
    }
}

/// The same tampering served by a store that checks nothing: our own sha256 over the
/// received bytes refuses it before any platform entry is read.
#[tokio::test]
async fn index_tampered_behind_a_store_without_digest_check() {
    let (f, index, amd, _) = multiarch_fixture().await;
    let verified = f
        .resolver()
        .resolve(&f.image(&format!("acme/app@{index}")))
        .await
        .unwrap();
    let fake = FakeStoreWithoutDigestCheck {
        dir: f.dir.path().join("reg/blobs/sha256"),
    };
    // Untampered, the fake serves the right bytes and the platform resolves.
    let ok = platform_of_verified(&fake, verified.clone(), &linux("amd64", None))
        .await
        .unwrap();
    assert_eq!(ok.manifest, amd);

    let tampered = tamper_index_blob(&f, &index, &amd);
    let err = platform_of_verified(&fake, verified, &linux("amd64", None))
        .await
        .unwrap_err();
    match &err {
        PlatformError::IndexDigestMismatch { signed, served, .. } => {
            assert_eq!(*signed, index);
            assert_eq!(*served, Digest::of(&tampered));
        }
        other => panic!("expected IndexDigestMismatch, got {other:?}"),
    }
}

/// The happy path on a real registry (distribution, started by the testkit on 127.0.0.1 and
/// stopped by PID on drop): metadata and images pushed over HTTP, resolved back.
#[tokio::test]
async fn multiarch_on_distribution() {
    use ocituf_oci::registry::Credentials;
    use ocituf_oci::{Publisher, RegistryOptions, RegistryRepo, RootOfTrustName};
    use ocituf_resolver::{Resolver, TrustPolicy};
    use ocituf_tuf::crypto::{KeyKind, PrivateKey, Signer};
    use ocituf_tuf::repo::Repository;
    use time::{Duration, OffsetDateTime};

    let registry = ocituf_testkit::Distribution::start();
    let addr = registry.addr().to_owned();
    let open = |name: &str| {
        let opts = RegistryOptions {
            credentials: Credentials::Anonymous,
            ..RegistryOptions::default()
        };
        RegistryRepo::open(&format!("{addr}/{name}"), opts).unwrap()
    };
    let images = open("acme/app");
    let publisher = Publisher::new(open("acme/tuf"), RootOfTrustName::parse("acme").unwrap());

    // Two platform manifests and their index, pushed as `docker buildx` does.
    let mut entries = Vec::new();
    for (arch, variant) in [("amd64", None), ("arm64", Some("v8"))] {
        let config = format!("{{\"architecture\":\"{arch}\",\"os\":\"linux\"}}");
        let cd = images.put_blob(config.as_bytes()).await.unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.as_str(), "size": config.len()},
            "layers": [],
        }))
        .unwrap();
        let d = images
            .put_manifest(MANIFEST, &manifest, None)
            .await
            .unwrap();
        let mut platform = serde_json::json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        entries.push((
            d.clone(),
            serde_json::json!({"mediaType": MANIFEST, "digest": d.as_str(), "size": manifest.len(), "platform": platform}),
        ));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": INDEX,
        "manifests": entries.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
    }))
    .unwrap();
    let index_digest = images
        .put_manifest(INDEX, &index, Some("multi"))
        .await
        .unwrap();

    // A root of trust that signs the index digest under the tag.
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let mut repo = Repository::new(OffsetDateTime::now_utc() + Duration::days(1));
    repo.meta_hashes = true;
    for role in ocituf_tuf::metadata::TOP_LEVEL_ROLES {
        repo.add_signer_key(role, &key).unwrap();
    }
    let file = TargetFile {
        length: index.len() as u64,
        hashes: BTreeMap::from([("sha256".to_owned(), index_digest.hex().to_owned())]),
        custom: Some(serde_json::json!({"oci": {"mediaType": INDEX}})),
        extra: BTreeMap::new(),
    };
    repo.add_target("targets", "acme/app:multi", file).unwrap();
    let signers: [&dyn Signer; 1] = [&key];
    let root = repo.sign_root(&signers).unwrap();
    std::fs::write(dir.path().join("root.json"), &root).unwrap();
    publisher.push("root", &root, None).await.unwrap();
    let targets = repo.sign_targets("targets", &signers).unwrap();
    publisher.push("targets", &targets, None).await.unwrap();
    let snapshot = repo.sign_snapshot(&signers).unwrap();
    publisher.push("snapshot", &snapshot, None).await.unwrap();
    let timestamp = repo.sign_timestamp(&signers).unwrap();
    publisher.push("timestamp", &timestamp, None).await.unwrap();

    let text = format!(
        "[[trust]]\nscope = \"{addr}/acme/*\"\nrepository = \"{addr}/acme/tuf\"\n\
         root-of-trust = \"acme\"\nroot = \"root.json\"\n"
    );
    let policy = TrustPolicy::parse(&text, &dir.path().join("policy.toml")).unwrap();
    let resolver = Resolver::new(policy, dir.path().join("cache"));
    let image = ocituf_resolver::ImageReference::parse(&format!("{addr}/acme/app:multi")).unwrap();

    assert_eq!(resolver.resolve(&image).await.unwrap().digest, index_digest);
    for (asked, (expected, _)) in ["linux/amd64", "linux/arm64/v8"].iter().zip(&entries) {
        let p = resolve_platform(&resolver, &image, &parse_platform(asked).unwrap())
            .await
            .unwrap();
        assert_eq!(p.verified.digest, index_digest);
        assert_eq!(&p.manifest, expected, "{asked}");
    }
    let err = resolve_platform(&resolver, &image, &linux("riscv64", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PlatformError::NoSuchPlatform { available, .. } if available.len() == 2),
        "{err:?}"
    );
}
