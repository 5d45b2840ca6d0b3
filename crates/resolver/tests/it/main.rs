//! The resolver against a root of trust in an OCI layout, written with the `ocituf-tuf`
//! repository API and pushed with the `ocituf-oci` publisher. Each attack test asserts the
//! exact typed error.

use std::collections::BTreeMap;

use ocituf_oci::{ArtifactStore as _, Digest, LayoutStore, Publisher, RootOfTrustName};
use ocituf_resolver::{Error, ErrorKind, ImageReference, Resolver, TrustPolicy};
use ocituf_tuf::crypto::{KeyKind, PrivateKey, Signer};
use ocituf_tuf::metadata::TargetFile;
use ocituf_tuf::repo::Repository;
use time::{Duration, OffsetDateTime};

mod hostile;
mod multiarch;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

struct Fixture {
    dir: tempfile::TempDir,
    key: PrivateKey,
    repo: Repository,
    publisher: Publisher<LayoutStore>,
    images: LayoutStore,
}

impl Fixture {
    fn layout(&self) -> String {
        self.dir.path().join("reg").display().to_string()
    }

    fn image(&self, rest: &str) -> ImageReference {
        ImageReference::parse(&format!("oci:{}:{rest}", self.layout())).unwrap()
    }

    fn resolver(&self) -> Resolver {
        let text = format!(
            "[[trust]]\nscope = \"oci:{dir}:acme/*\"\nrepository = \"oci:{dir}:acme/tuf\"\n\
             root-of-trust = \"acme\"\nroot = \"root.json\"\n",
            dir = self.layout()
        );
        let policy = TrustPolicy::parse(&text, &self.dir.path().join("policy.toml")).unwrap();
        Resolver::new(policy, self.dir.path().join("cache"))
    }

    /// Push a tiny image manifest under `tag`; returns (digest, length).
    async fn push_image(&self, tag: &str, text: &str) -> (Digest, u64) {
        let config = format!("{{\"note\":\"{text}\"}}");
        let cd = self.images.put_blob(config.as_bytes()).await.unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.as_str(), "size": config.len()},
            "layers": [],
        }))
        .unwrap();
        let d = self
            .images
            .put_manifest(MANIFEST, &manifest, Some(tag))
            .await
            .unwrap();
        (d, manifest.len() as u64)
    }

    fn sign_target(&mut self, name: &str, digest: &Digest, length: u64) {
        let mut file = TargetFile {
            length,
            hashes: BTreeMap::from([("sha256".to_owned(), digest.hex().to_owned())]),
            custom: None,
            extra: BTreeMap::new(),
        };
        file.custom = Some(serde_json::json!({"oci": {"mediaType": MANIFEST}}));
        self.repo.add_target("targets", name, file).unwrap();
    }

    /// Sign and push root (first time only), targets, snapshot and timestamp.
    async fn publish(&mut self, with_root: bool) {
        let signers: [&dyn Signer; 1] = [&self.key];
        if with_root {
            let root = self.repo.sign_root(&signers).unwrap();
            std::fs::write(self.dir.path().join("root.json"), &root).unwrap();
            self.publisher.push("root", &root, None).await.unwrap();
        }
        let targets = self.repo.sign_targets("targets", &signers).unwrap();
        self.publisher
            .push("targets", &targets, None)
            .await
            .unwrap();
        let snapshot = self.repo.sign_snapshot(&signers).unwrap();
        self.publisher
            .push("snapshot", &snapshot, None)
            .await
            .unwrap();
        let timestamp = self.repo.sign_timestamp(&signers).unwrap();
        self.publisher
            .push("timestamp", &timestamp, None)
            .await
            .unwrap();
    }

    fn bump_all(&mut self) {
        let exp = OffsetDateTime::now_utc() + Duration::days(1);
        for role in ["targets", "snapshot", "timestamp"] {
            self.repo.bump(role, exp).unwrap();
        }
    }
}

/// A root of trust `acme` in `oci:DIR:acme/tuf` that signed `acme/app:1.0`.
async fn fixture() -> (Fixture, Digest) {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let mut repo = Repository::new(OffsetDateTime::now_utc() + Duration::days(1));
    repo.meta_hashes = true;
    for role in ocituf_tuf::metadata::TOP_LEVEL_ROLES {
        repo.add_signer_key(role, &key).unwrap();
    }
    let reg = dir.path().join("reg");
    let publisher = Publisher::new(
        LayoutStore::new(&reg, "acme/tuf").unwrap(),
        RootOfTrustName::parse("acme").unwrap(),
    );
    let images = LayoutStore::new(&reg, "acme/app").unwrap();
    let mut f = Fixture {
        dir,
        key,
        repo,
        publisher,
        images,
    };
    let (d, len) = f.push_image("1.0", "one").await;
    f.sign_target("acme/app:1.0", &d, len);
    f.publish(true).await;
    (f, d)
}

#[tokio::test]
async fn signed_tag_resolves_to_its_digest() {
    let (f, d) = fixture().await;
    let v = f
        .resolver()
        .resolve(&f.image("acme/app:1.0"))
        .await
        .unwrap();
    assert_eq!(v.digest, d);
    assert_eq!(v.role, "targets");
    assert_eq!(v.role_version, 1);
    assert_eq!(v.media_type.as_deref(), Some(MANIFEST));
    assert_eq!(
        v.pinned().to_string(),
        format!("oci:{}:acme/app:1.0@{d}", f.layout())
    );
    // Warm cache, nothing new: one request to the metadata repository.
    let again = f
        .resolver()
        .resolve(&f.image("acme/app:1.0"))
        .await
        .unwrap();
    assert_eq!(again.metadata_requests, 1);
}

#[tokio::test]
async fn tag_moved_to_another_digest() {
    let (f, signed) = fixture().await;
    let (evil, _) = f.push_image("1.0", "evil").await;
    let err = f
        .resolver()
        .resolve(&f.image("acme/app:1.0"))
        .await
        .unwrap_err();
    match &err {
        Error::DigestMismatch {
            served,
            signed: s,
            role,
            role_version,
            ..
        } => {
            assert_eq!(*served, evil);
            assert_eq!(*s, signed);
            assert_eq!(role, "targets");
            assert_eq!(*role_version, 1);
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::Refused);
}

#[tokio::test]
async fn reference_with_an_unsigned_digest() {
    let (f, _) = fixture().await;
    let (other, _) = f.push_image("other", "other").await;
    // tag + digest: the digest must be the signed one.
    let err = f
        .resolver()
        .resolve(&f.image(&format!("acme/app:1.0@{other}")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
    // digest alone: its digest name was never signed.
    let err = f
        .resolver()
        .resolve(&f.image(&format!("acme/app@{other}")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotSigned { .. }), "{err:?}");
}

#[tokio::test]
async fn unsigned_tag_and_unknown_scope() {
    let (f, _) = fixture().await;
    f.push_image("2.0", "two").await;
    let err = f
        .resolver()
        .resolve(&f.image("acme/app:2.0"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotSigned { .. }), "{err:?}");
    let err = f
        .resolver()
        .resolve(&f.image("beta/app:1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownScope { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn freeze_expired_timestamp() {
    let (mut f, _) = fixture().await;
    f.bump_all();
    f.repo.timestamp.expires = OffsetDateTime::now_utc() - Duration::hours(1);
    f.publish(false).await;
    let err = f
        .resolver()
        .resolve(&f.image("acme/app:1.0"))
        .await
        .unwrap_err();
    match &err {
        Error::Metadata { source, .. } => assert!(
            matches!(**source, ocituf_tuf::Error::Expired { ref role, .. } if role == "timestamp"),
            "{source:?}"
        ),
        other => panic!("expected an expired timestamp, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::Refused);
}

#[tokio::test]
async fn rollback_timestamp() {
    let (mut f, _) = fixture().await;
    f.bump_all();
    f.publish(false).await;
    // The client has seen timestamp v2.
    f.resolver()
        .resolve(&f.image("acme/app:1.0"))
        .await
        .unwrap();
    // The registry drops v2 and offers only v1 again.
    let versions = f.publisher.versions("timestamp").await.unwrap();
    for v in versions.iter().filter(|v| v.version == 2) {
        f.publisher
            .store()
            .delete_manifest(&v.descriptor.digest)
            .await
            .unwrap();
    }
    let err = f
        .resolver()
        .resolve(&f.image("acme/app:1.0"))
        .await
        .unwrap_err();
    match &err {
        Error::Metadata { source, .. } => assert!(
            matches!(**source, ocituf_tuf::Error::Rollback { ref role, trusted: 2, got: 1 } if role == "timestamp"),
            "{source:?}"
        ),
        other => panic!("expected a timestamp rollback, got {other:?}"),
    }
}

#[tokio::test]
async fn pinned_root_file_changed() {
    let (f, _) = fixture().await;
    let root = std::fs::read(f.dir.path().join("root.json")).unwrap();
    let hex = Digest::of(&root).hex().to_owned();
    std::fs::write(f.dir.path().join("root.json"), b"{}").unwrap();
    let text = format!(
        "[[trust]]\nscope = \"oci:{dir}:acme/*\"\nrepository = \"oci:{dir}:acme/tuf\"\n\
         root-of-trust = \"acme\"\nroot = \"root.json\"\nroot-sha256 = \"{hex}\"\n",
        dir = f.layout()
    );
    let policy = TrustPolicy::parse(&text, &f.dir.path().join("policy.toml")).unwrap();
    let err = Resolver::new(policy, f.dir.path().join("cache"))
        .resolve(&f.image("acme/app:1.0"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PinnedRootDigest { .. }), "{err:?}");
}
