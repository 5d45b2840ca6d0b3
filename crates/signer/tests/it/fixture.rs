//! A root of trust "acme" with a team role "app" (acme/app:*, acme/app@*) and a signer that
//! serves it, on one of the test registries.

use std::collections::BTreeMap;

use ocituf_oci::mapping::{Anchor, Hints, RoleClass, RootOfTrustName};
use ocituf_oci::{ArtifactStore as _, Digest};
use ocituf_resolver::{ImageReference, RepositoryReference, Resolver, TrustPolicy};
use ocituf_signer::{Config, Signer};
use ocituf_testkit::{Distribution, ReferrersRegistry};
use ocituf_tuf::crypto::{PrivateKey, Signer as _};
use ocituf_writer::delegate::{delegate, DelegateRequest};
use ocituf_writer::init::{init, InitRequest};
use ocituf_writer::keys::SigningKey;
use ocituf_writer::online::OnlineKeys;
use ocituf_writer::sign::{image_manifest, sign_images, target_names, ImageToSign, Signing};
use ocituf_writer::{MetaRepo, Pin, State};
use time::{Duration, OffsetDateTime};

pub enum Registry {
    Distribution(Distribution),
    Referrers(ReferrersRegistry),
    /// A registry behind a counting pass-through proxy (the throughput bench): clients are
    /// given the proxy's address.
    #[allow(dead_code)]
    Counted(Box<Registry>, ocituf_testkit::AdversarialProxy),
}

impl Registry {
    pub fn addr(&self) -> &str {
        match self {
            Registry::Distribution(r) => r.addr(),
            Registry::Referrers(r) => r.addr(),
            Registry::Counted(_, proxy) => proxy.addr(),
        }
    }
}

pub fn key(seed: u8) -> PrivateKey {
    PrivateKey::ed25519_from_seed([seed; 32]).unwrap()
}

const OWNER: u8 = 1;
const ONLINE: u8 = 2;
pub const TEAM: u8 = 3;

fn in_days(days: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::days(days)
}

pub struct Org {
    pub registry: Registry,
    pub dir: tempfile::TempDir,
    pub repo: MetaRepo,
    pub pin: Pin,
    /// Where the signer reaches the registry, when not where the publishers do (the
    /// throughput bench counts the two sides apart).
    pub signer_registry: Option<String>,
}

fn pem(k: &PrivateKey) -> String {
    k.to_pkcs8_pem().unwrap()
}

impl Org {
    pub async fn new(registry: Registry) -> Self {
        Self::with_bins(registry, None).await
    }

    /// With `bins`, the team role `app` delegates on to that many succinct hash bins (the
    /// team key signs them), so publishers of different images rarely write one role.
    pub async fn with_bins(registry: Registry, bins: Option<u32>) -> Self {
        let owner: SigningKey = Box::new(key(OWNER));
        let online = key(ONLINE);
        let repo_ref =
            RepositoryReference::parse(&format!("{}/acme/tuf", registry.addr())).unwrap();
        let repo =
            MetaRepo::open(&repo_ref, "acme", &ocituf_oci::RegistryOptions::default()).unwrap();
        let root_bytes = init(
            &repo,
            &InitRequest {
                root_keys: std::slice::from_ref(&owner),
                root_threshold: 1,
                targets_keys: std::slice::from_ref(&owner),
                targets_threshold: 1,
                root_expires: in_days(365),
                targets_expires: in_days(90),
                online: OnlineKeys {
                    snapshot: &online,
                    timestamp: &online,
                    snapshot_expires: in_days(7),
                    timestamp_expires: in_days(1),
                },
                snapshot_merkle: false,
            },
        )
        .await
        .unwrap();
        let pin = Pin::Bytes(root_bytes.clone());
        let team: SigningKey = Box::new(key(TEAM));
        delegate(
            &repo,
            Some(&pin),
            &DelegateRequest {
                from: "targets",
                role: "app",
                keys: &[key(TEAM).public_key().clone()],
                threshold: 1,
                terminating: false,
                paths: &["acme/app:*".to_owned(), "acme/app@*".to_owned()],
                signing_keys: std::slice::from_ref(&owner),
                expires: in_days(30),
                hash_bins: bins.map(|count| ocituf_writer::delegate::HashBins {
                    count,
                    team_keys: std::slice::from_ref(&team),
                }),
            },
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root.json"), &root_bytes).unwrap();
        std::fs::write(dir.path().join("online.pem"), pem(&online)).unwrap();
        Org {
            registry,
            dir,
            repo,
            pin,
            signer_registry: None,
        }
    }

    /// signer.toml for this root of trust.
    pub fn config_text(&self) -> String {
        format!(
            "lock-file = \"signer.lock\"\npoll-interval = \"1s\"\n\n[[root-of-trust]]\nname = \"acme\"\nrepository = \"{}/acme/tuf\"\nroot = \"root.json\"\nsnapshot-key = \"online.pem\"\ntimestamp-key = \"online.pem\"\nsnapshot-expires = \"7d\"\ntimestamp-expires = \"1d\"\nresign-every = \"6h\"\n",
            self.signer_registry
                .as_deref()
                .unwrap_or_else(|| self.registry.addr())
        )
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        let path = self.dir.path().join("signer.toml");
        std::fs::write(&path, self.config_text()).unwrap();
        path
    }

    pub fn start_signer(&self) -> Signer {
        let config = Config::load(&self.config_path()).unwrap();
        Signer::start(&config, &ocituf_oci::RegistryOptions::default()).unwrap()
    }

    /// Push a tiny image unique to `tag` to acme/app:TAG; returns its digest.
    pub async fn push_image(&self, tag: &str) -> Digest {
        let store = ocituf_resolver::store::open(&self.image(tag).repo).unwrap();
        ocituf_oci::example_image::push(&store, tag, &format!("image {tag}"))
            .await
            .unwrap()
    }

    /// Sign acme/app:TAG as the team; returns the last (role, version) written.
    pub async fn sign(&self, tag: &str) -> (String, u64) {
        self.sign_all(tag).await.pop().unwrap()
    }

    /// Sign acme/app:TAG as the team, reading only the roles its names need (as `ocituf
    /// sign` does); returns every (role, version) written (two bins with hash bins).
    pub async fn sign_all(&self, tag: &str) -> Vec<(String, u64)> {
        self.sign_batch(&[tag]).await
    }

    /// Sign acme/app:TAG for every tag in one run (as `ocituf sign IMAGE...` does: one new
    /// version per touched role); returns every (role, version) written.
    pub async fn sign_batch(&self, tags: &[&str]) -> Vec<(String, u64)> {
        let repository =
            RepositoryReference::parse(&format!("{}/acme/app", self.registry.addr())).unwrap();
        let store = ocituf_resolver::store::open(&repository).unwrap();
        let mut batch = Vec::with_capacity(tags.len());
        for tag in tags {
            let manifest = image_manifest(&store, &self.image(tag)).await.unwrap();
            batch.push(ImageToSign {
                repository: "acme/app".to_owned(),
                tag: (*tag).to_owned(),
                manifest,
            });
        }
        let state = State::load_for(&self.repo, Some(&self.pin), &target_names(&batch))
            .await
            .unwrap();
        let team: [SigningKey; 1] = [Box::new(key(TEAM))];
        let who = Signing {
            keys: &team,
            role: None,
            expires: in_days(30),
        };
        let w = sign_images(&self.repo, &state, &batch, &who).await.unwrap();
        w.roles.into_iter().map(|r| (r.role, r.version)).collect()
    }

    /// A client that pins this root.
    pub fn resolver(&self) -> Resolver {
        let root = self.dir.path().join("root.json");
        let addr = self.registry.addr();
        let text = format!(
            "[[trust]]\nscope = \"{addr}/acme/*\"\nrepository = \"{addr}/acme/tuf\"\nroot-of-trust = \"acme\"\nroot = \"{}\"\n",
            root.display()
        );
        let policy = TrustPolicy::parse(&text, &self.dir.path().join("policy.toml")).unwrap();
        let cache = tempfile::tempdir_in(self.dir.path()).unwrap().keep();
        Resolver::new(policy, cache)
    }

    pub fn image(&self, tag: &str) -> ImageReference {
        ImageReference::parse(&format!("{}/acme/app:{tag}", self.registry.addr())).unwrap()
    }

    /// Every `role` artifact in the registry, by the version its annotations claim: more
    /// than one manifest for one version is a fork.
    pub async fn versions_claimed(&self, role: &str) -> BTreeMap<u64, Vec<Digest>> {
        let name = RootOfTrustName::parse("acme").unwrap();
        let anchor = Anchor::for_role(&name, role).unwrap();
        let artifact_type = RoleClass::of_role(role).artifact_type();
        let (list, _) = self
            .repo
            .store
            .referrers(anchor.digest(), Some(artifact_type))
            .await
            .unwrap();
        let mut out: BTreeMap<u64, Vec<Digest>> = BTreeMap::new();
        for d in list {
            if d.artifact_type.as_deref() != Some(artifact_type) {
                continue;
            }
            let h = Hints::from_annotations(&d.annotations);
            if !h.may_be(&name, role) {
                continue;
            }
            if let Some(v) = h.version {
                out.entry(v).or_default().push(d.digest);
            }
        }
        out
    }
}

impl Org {
    /// The verified newest version of team role `app` (after at least one signature).
    pub async fn app_newest(&self) -> ocituf_writer::Found {
        let state = State::load(&self.repo, Some(&self.pin)).await.unwrap();
        state.targets.get("app").unwrap().0.clone().unwrap()
    }

    /// Push version `version` of `role` by hand: the content of `base` (none: empty) with
    /// `extra` added as one more target, signed by `signers`, naming `parent`. What a
    /// broken or hostile publisher pushes; returns the manifest digest.
    pub async fn push_crafted(
        &self,
        role: &str,
        version: u64,
        base: Option<&ocituf_writer::Found>,
        extra: &str,
        signers: &[&dyn ocituf_tuf::crypto::Signer],
        parent: Option<&Digest>,
    ) -> Digest {
        use ocituf_tuf::metadata::{Role as _, TargetFile, Targets};
        let mut t = match base {
            Some(f) => Targets::from_signed(&f.envelope.signed).unwrap(),
            None => Targets {
                spec_version: ocituf_tuf::metadata::SPEC_VERSION.to_owned(),
                version: 0,
                expires: in_days(30),
                targets: BTreeMap::new(),
                delegations: None,
                extra: BTreeMap::new(),
            },
        };
        t.version = version;
        let any = t.targets.values().next().cloned();
        let file = any.unwrap_or_else(|| TargetFile {
            length: 2,
            hashes: BTreeMap::from([("sha256".to_owned(), "00".repeat(32))]),
            custom: None,
            extra: BTreeMap::new(),
        });
        t.targets.insert(extra.to_owned(), file);
        let (_, bytes) =
            ocituf_writer::sign_envelope(t.to_signed().unwrap(), signers, Vec::new()).unwrap();
        self.repo.push(role, &bytes, parent).await.unwrap()
    }

    /// The newest timestamp version claimed in the registry.
    pub async fn newest_timestamp(&self) -> u64 {
        self.versions_claimed("timestamp")
            .await
            .into_keys()
            .max()
            .unwrap_or(0)
    }
}
