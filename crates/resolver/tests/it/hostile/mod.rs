//! The attack catalogue: every TUF attack class (specification §5, the client workflow) and
//! every registry threat of issue 9, each a named test run against *both* real test
//! registries (distribution 2.8 without the referrers API, and the native-referrers
//! registry) through `ocituf_testkit::AdversarialProxy`, which lies as a compromised
//! registry would. Each test asserts the exact typed refusal and that the trusted state (the
//! resolver's cache of verified metadata) did not change.
//!
//! The owners publish straight to the registry; clients only ever talk to the proxy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use ocituf_oci::registry::Credentials;
use ocituf_oci::RootOfTrustName;
use ocituf_oci::{ArtifactStore as _, Digest, Publisher, RegistryOptions, RegistryRepo};
use ocituf_resolver::{Error, ImageReference, Resolver, TrustPolicy, VerifiedDigest};
use ocituf_testkit::{AdversarialProxy, Distribution, ReferrersRegistry};
use ocituf_tuf::crypto::{KeyKind, PrivateKey, Signer};
use ocituf_tuf::metadata::TargetFile;
use ocituf_tuf::repo::Repository;
use time::{Duration, OffsetDateTime};

mod cache_damage;
mod registry_threats;
mod tuf_attacks;

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Which real registry is behind the proxy.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// distribution 2.8: the tag-schema fallback (`sha256-<hex>` index tags).
    Distribution,
    /// The native referrers API.
    Native,
}

/// One of the two registries, kept alive for the test.
pub enum Registry {
    Distribution(Distribution),
    Native(ReferrersRegistry),
}

impl Registry {
    pub fn start(kind: Kind) -> Self {
        match kind {
            Kind::Distribution => Registry::Distribution(Distribution::start()),
            Kind::Native => Registry::Native(ReferrersRegistry::start()),
        }
    }

    pub fn addr(&self) -> &str {
        match self {
            Registry::Distribution(r) => r.addr(),
            Registry::Native(r) => r.addr(),
        }
    }
}

/// Run one attack test against both registries: `on_both!(name, body)` makes
/// `name::distribution` and `name::native_referrers`.
#[macro_export]
macro_rules! on_both {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test]
            async fn distribution() {
                $body($crate::hostile::Kind::Distribution).await;
            }
            #[tokio::test]
            async fn native_referrers() {
                $body($crate::hostile::Kind::Native).await;
            }
        }
    };
}

/// Registry options of the client: anonymous, plain HTTP on loopback, short timeouts so that
/// slow-retrieval tests end quickly (they are bounds, not timings).
pub fn client_options() -> RegistryOptions {
    RegistryOptions {
        credentials: Credentials::Anonymous,
        read_timeout: StdDuration::from_secs(2),
        request_timeout: StdDuration::from_secs(30),
        max_retries: 1,
        backoff_base: StdDuration::from_millis(10),
        backoff_max: StdDuration::from_millis(50),
        ..RegistryOptions::default()
    }
}

fn owner_options() -> RegistryOptions {
    RegistryOptions {
        credentials: Credentials::Anonymous,
        ..RegistryOptions::default()
    }
}

/// An organization's root of trust on a real registry, and a client that sees the registry
/// only through an adversarial proxy.
pub struct Hostile {
    pub registry: Registry,
    pub proxy: AdversarialProxy,
    pub dir: tempfile::TempDir,
    pub key: PrivateKey,
    pub repo: Repository,
    pub publisher: Publisher<RegistryRepo>,
    pub images: RegistryRepo,
    /// The organization: repositories `ORG/tuf` and `ORG/app`, root of trust `ORG`.
    pub org: String,
}

impl Hostile {
    /// `acme` on a new registry of `kind`, with `acme/app:1.0` signed and published.
    pub async fn start(kind: Kind) -> (Self, Digest) {
        let registry = Registry::start(kind);
        let proxy = AdversarialProxy::start(registry.addr());
        Self::org_on(registry, proxy, "acme").await
    }

    /// Organization `org` (signing `ORG/app:1.0`) on an existing registry and proxy.
    pub async fn org_on(registry: Registry, proxy: AdversarialProxy, org: &str) -> (Self, Digest) {
        let addr = registry.addr().to_owned();
        let open =
            |name: &str| RegistryRepo::open(&format!("{addr}/{name}"), owner_options()).unwrap();
        let key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        let mut repo = Repository::new(OffsetDateTime::now_utc() + Duration::days(1));
        repo.meta_hashes = true;
        for role in ocituf_tuf::metadata::TOP_LEVEL_ROLES {
            repo.add_signer_key(role, &key).unwrap();
        }
        let mut f = Hostile {
            publisher: Publisher::new(
                open(&format!("{org}/tuf")),
                RootOfTrustName::parse(org).unwrap(),
            ),
            images: open(&format!("{org}/app")),
            registry,
            proxy,
            dir: tempfile::tempdir().unwrap(),
            key,
            repo,
            org: org.to_owned(),
        };
        let (d, len) = f.push_image("1.0", "one").await;
        f.sign_target(&format!("{org}/app:1.0"), &d, len);
        f.publish(true).await;
        (f, d)
    }

    /// The image as clients name it: through the proxy.
    pub fn image(&self, rest: &str) -> ImageReference {
        ImageReference::parse(&format!("{}/{}", self.proxy.addr(), rest)).unwrap()
    }

    pub fn policy_text(&self) -> String {
        format!(
            "[[trust]]\nscope = \"{p}/{org}/*\"\nrepository = \"{p}/{org}/tuf\"\n\
             root-of-trust = \"{org}\"\nroot = \"root.json\"\n",
            p = self.proxy.addr(),
            org = self.org,
        )
    }

    pub fn policy_path(&self) -> PathBuf {
        self.dir.path().join("policy.toml")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn resolver(&self) -> Resolver {
        let policy = TrustPolicy::parse(&self.policy_text(), &self.policy_path()).unwrap();
        Resolver::new(policy, self.cache_dir()).with_registry_options(client_options())
    }

    /// Resolve `ORG/app:TAG` through the proxy.
    pub async fn resolve(&self, tag: &str) -> Result<VerifiedDigest, Error> {
        let image = self.image(&format!("{}/app:{tag}", self.org));
        self.resolver().resolve(&image).await
    }

    /// Resolve with other registry options of the client.
    pub async fn resolve_with(
        &self,
        tag: &str,
        options: RegistryOptions,
    ) -> Result<VerifiedDigest, Error> {
        let image = self.image(&format!("{}/app:{tag}", self.org));
        self.resolver()
            .with_registry_options(options)
            .resolve(&image)
            .await
    }

    /// Push a tiny image manifest under `tag` (straight to the registry).
    pub async fn push_image(&self, tag: &str, text: &str) -> (Digest, u64) {
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

    pub fn sign_target(&mut self, name: &str, digest: &Digest, length: u64) {
        let file = TargetFile {
            length,
            hashes: BTreeMap::from([("sha256".to_owned(), digest.hex().to_owned())]),
            custom: Some(serde_json::json!({"oci": {"mediaType": MANIFEST}})),
            extra: BTreeMap::new(),
        };
        self.repo.add_target("targets", name, file).unwrap();
    }

    /// Sign and push root (first time only), targets, snapshot and timestamp; returns the
    /// signed bytes of each role pushed.
    pub async fn publish(&mut self, with_root: bool) -> BTreeMap<&'static str, Vec<u8>> {
        let signers: [&dyn Signer; 1] = [&self.key];
        let mut out = BTreeMap::new();
        if with_root {
            let root = self.repo.sign_root(&signers).unwrap();
            std::fs::write(self.dir.path().join("root.json"), &root).unwrap();
            self.publisher.push("root", &root, None).await.unwrap();
            out.insert("root", root);
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
        out.insert("targets", targets);
        out.insert("snapshot", snapshot);
        out.insert("timestamp", timestamp);
        out
    }

    /// Next version of targets, snapshot and timestamp, signed and pushed.
    pub async fn publish_next(&mut self) -> BTreeMap<&'static str, Vec<u8>> {
        let exp = OffsetDateTime::now_utc() + Duration::days(1);
        for role in ["targets", "snapshot", "timestamp"] {
            self.repo.bump(role, exp).unwrap();
        }
        self.publish(false).await
    }

    /// The verified metadata the client trusts: every file of the resolver's cache except
    /// the remembered referrers capability (a hint, not trust).
    pub fn trusted_state(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        collect(&self.cache_dir(), &self.cache_dir(), &mut out);
        out
    }

    /// The manifest digest of the listed version `version` of `role`.
    pub async fn manifest_of(&self, role: &str, version: u64) -> Digest {
        let versions = self.publisher.versions(role).await.unwrap();
        versions
            .into_iter()
            .find(|v| v.version == version)
            .unwrap_or_else(|| panic!("{role} v{version} is not listed"))
            .descriptor
            .digest
    }
}

fn collect(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(base, &p, out);
        } else if p.file_name().is_some_and(|n| n != "referrers-capability") {
            out.insert(
                p.strip_prefix(base).unwrap().to_owned(),
                std::fs::read(&p).unwrap(),
            );
        }
    }
}

/// The TUF error inside a resolver refusal of the metadata.
pub fn tuf_error(err: &Error) -> &ocituf_tuf::Error {
    match err {
        Error::Metadata { source, .. } => source,
        other => panic!("expected a refusal of the metadata, got {other:?}"),
    }
}

/// The OCI error behind a fetch failure of the metadata.
pub fn oci_error(err: &Error) -> &ocituf_oci::Error {
    match tuf_error(err) {
        ocituf_tuf::Error::Source(ocituf_tuf::SourceError::Fetch { source, .. }) => source
            .downcast_ref::<ocituf_oci::Error>()
            .unwrap_or_else(|| panic!("expected an ocituf_oci::Error, got {source:?}")),
        other => panic!("expected a fetch failure, got {other:?}"),
    }
}

/// Whether a refusal is bytes that did not hash to `expected` (the requested blob digest):
/// caught by the content-address check of the source, or earlier by the registry client
/// against the digest it asked for.
pub fn is_digest_refusal(err: &Error, expected: &Digest) -> bool {
    use ocituf_oci::registry::RegistryError;
    match oci_error(err) {
        ocituf_oci::Error::DigestMismatch { expected: e, .. }
        | ocituf_oci::Error::Registry(RegistryError::DigestMismatch { expected: e, .. }) => {
            e == expected
        }
        _ => false,
    }
}

impl Hostile {
    /// The trusted state is `before`, except for files that became one of `genuine` (newer
    /// metadata verified before the attacked file was refused: TUF keeps what verified).
    pub fn assert_trusted(&self, before: &BTreeMap<PathBuf, Vec<u8>>, genuine: &[&[u8]]) {
        let after = self.trusted_state();
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>()
        );
        for (path, bytes) in &after {
            assert!(
                bytes == &before[path] || genuine.contains(&bytes.as_slice()),
                "{} changed to bytes that are not genuine",
                path.display()
            );
        }
    }

    /// Anyone with push access: push timestamps signed by a key the root does not name,
    /// claiming `versions` (hints and signed versions agree, so only signatures tell).
    pub async fn push_junk_timestamps(&self, versions: std::ops::Range<u64>) {
        let evil = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        let signers: [&dyn Signer; 1] = [&evil];
        let mut forged = self.repo.clone();
        for v in versions {
            forged.timestamp.version = v;
            let ts = forged.sign_timestamp(&signers).unwrap();
            self.publisher.push("timestamp", &ts, None).await.unwrap();
        }
    }
}
