//! A root of trust written with the library, for one delegation shape, on one store.

use ocituf_oci::Digest;
use ocituf_resolver::{
    Error as ResolveError, ImageReference, RepositoryReference, Resolver, TrustPolicy,
};
use ocituf_testkit::Distribution;
use ocituf_tuf::crypto::{PrivateKey, PublicKey};
use ocituf_writer::delegate::{delegate, DelegateRequest, HashBins};
use ocituf_writer::init::{init, InitRequest};
use ocituf_writer::keys::SigningKey;
use ocituf_writer::online::{publish, OnlineKeys};
use ocituf_writer::sign::{image_manifest, sign_image, yank_image, Signing, Written};
use ocituf_writer::{MetaRepo, Pin, State};
use time::{Duration, OffsetDateTime};

/// How the top-level targets role hands `acme/app` to the team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// targets → app (acme/app:*, acme/app@*).
    Flat,
    /// targets → apps (acme/*) → app (acme/app:*, acme/app@*).
    Nested,
    /// targets → app (terminating), then a rival role "other" for acme/* that the search
    /// never reaches for acme/app names.
    Terminating,
    /// targets → app → N succinct hash bins.
    Bins(u32),
    /// targets → app (acme/app:* only): no delegation reaches digest names.
    TagsOnly,
}

/// Where the metadata and the images live.
pub enum Place {
    Layout(tempfile::TempDir),
    Distribution(Box<Distribution>),
}

impl Place {
    pub fn layout() -> Self {
        Place::Layout(tempfile::tempdir().unwrap())
    }

    pub fn distribution() -> Self {
        Place::Distribution(Box::new(Distribution::start()))
    }

    /// `oci:DIR:REPO` or `127.0.0.1:PORT/REPO`.
    pub fn repo(&self, rest: &str) -> String {
        match self {
            Place::Layout(d) => format!("oci:{}:{rest}", d.path().join("reg").display()),
            Place::Distribution(r) => format!("{}/{rest}", r.addr()),
        }
    }
}

/// One `delegate` call of a shape.
struct Step {
    from: &'static str,
    role: &'static str,
    paths: Vec<String>,
    keys: Vec<PublicKey>,
    signing: Vec<SigningKey>,
    terminating: bool,
    bins: Option<u32>,
}

pub struct Org {
    pub place: Place,
    pub shape: Shape,
    pub dir: tempfile::TempDir,
    pub repo: MetaRepo,
    pub pin: Pin,
    pub online: SigningKey,
    pub team: SigningKey,
    root_bytes: Vec<u8>,
}

/// Fixed test keys by seed (PrivateKey is not Clone: the same seed makes a second copy).
const OWNER: u8 = 1;
const TEAM: u8 = 2;
const APPS: u8 = 3;
const OTHER: u8 = 4;

fn key(seed: u8) -> SigningKey {
    Box::new(PrivateKey::ed25519_from_seed([seed; 32]).unwrap())
}

fn public(k: &SigningKey) -> PublicKey {
    k.public_key().clone()
}

pub fn in_days(days: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::days(days)
}

impl Org {
    /// A root of trust "acme" in `place` whose delegations have `shape`. One key holds
    /// root, targets and the online roles; the team (and the bins) have their own.
    pub async fn new(place: Place, shape: Shape) -> Self {
        Self::new_with(place, shape, false).await
    }

    /// [`Self::new`] whose snapshots sign a Merkle tree (docs/oci-mapping.md §11).
    pub async fn new_merkle(place: Place, shape: Shape) -> Self {
        Self::new_with(place, shape, true).await
    }

    async fn new_with(place: Place, shape: Shape, snapshot_merkle: bool) -> Self {
        let owner = key(OWNER);
        let team = key(TEAM);
        let repo_ref = RepositoryReference::parse(&place.repo("acme/tuf")).unwrap();
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
                    snapshot: owner.as_ref(),
                    timestamp: owner.as_ref(),
                    snapshot_expires: in_days(7),
                    timestamp_expires: in_days(1),
                },
                snapshot_merkle,
            },
        )
        .await
        .unwrap();
        let pin = Pin::Bytes(root_bytes.clone());
        let app = vec!["acme/app:*".to_owned(), "acme/app@*".to_owned()];
        let team_keys = [key(TEAM)];
        let d =
            |from, role, paths: &[String], keys: Vec<PublicKey>, signing: Vec<SigningKey>| Step {
                from,
                role,
                paths: paths.to_vec(),
                keys,
                signing,
                terminating: false,
                bins: None,
            };
        let steps = match shape {
            Shape::Flat => vec![d(
                "targets",
                "app",
                &app,
                vec![public(&team)],
                vec![key(OWNER)],
            )],
            Shape::Nested => {
                let apps = key(APPS);
                vec![
                    d(
                        "targets",
                        "apps",
                        &["acme/*".to_owned()],
                        vec![public(&apps)],
                        vec![key(OWNER)],
                    ),
                    d("apps", "app", &app, vec![public(&team)], vec![apps]),
                ]
            }
            Shape::Terminating => vec![
                Step {
                    terminating: true,
                    ..d(
                        "targets",
                        "app",
                        &app,
                        vec![public(&team)],
                        vec![key(OWNER)],
                    )
                },
                d(
                    "targets",
                    "other",
                    &["acme/*".to_owned()],
                    vec![public(&key(OTHER))],
                    vec![key(OWNER)],
                ),
            ],
            Shape::TagsOnly => vec![d(
                "targets",
                "app",
                &app[..1],
                vec![public(&team)],
                vec![key(OWNER)],
            )],
            Shape::Bins(n) => vec![Step {
                bins: Some(n),
                ..d(
                    "targets",
                    "app",
                    &app,
                    vec![public(&team)],
                    vec![key(OWNER)],
                )
            }],
        };
        for s in &steps {
            delegate(
                &repo,
                Some(&pin),
                &DelegateRequest {
                    from: s.from,
                    role: s.role,
                    keys: &s.keys,
                    threshold: 1,
                    terminating: s.terminating,
                    paths: &s.paths,
                    signing_keys: &s.signing,
                    expires: in_days(30),
                    hash_bins: s.bins.map(|count| HashBins {
                        count,
                        team_keys: &team_keys,
                    }),
                },
            )
            .await
            .unwrap();
        }
        let org = Org {
            place,
            shape,
            dir: tempfile::tempdir().unwrap(),
            repo,
            pin,
            online: owner,
            team,
            root_bytes,
        };
        org.publish().await;
        org
    }

    pub async fn state(&self) -> State {
        State::load(&self.repo, Some(&self.pin)).await.unwrap()
    }

    /// The newest published snapshot.
    pub async fn snapshot(&self) -> ocituf_tuf::metadata::Snapshot {
        use ocituf_tuf::metadata::Role as _;
        let state = self.state().await;
        let auth =
            ocituf_writer::authority::Authority::of_top_level(&state.root, "snapshot").unwrap();
        let found = self.repo.newest("snapshot", &auth).await.unwrap().unwrap();
        ocituf_tuf::metadata::Snapshot::from_signed(&found.envelope.signed).unwrap()
    }

    pub fn who(&self) -> Signing<'_> {
        Signing {
            keys: std::slice::from_ref(&self.team),
            role: None,
            expires: in_days(30),
        }
    }

    /// Push a tiny image (unique to the tag) to acme/app:TAG; returns its digest.
    pub async fn push_image(&self, tag: &str) -> Digest {
        self.push_image_with(tag, &format!("{tag} of {:?}", self.shape))
            .await
    }

    /// Push the image made of `message` to acme/app:TAG (one message, one manifest).
    pub async fn push_image_with(&self, tag: &str, message: &str) -> Digest {
        let image = ImageReference::parse(&self.place.repo(&format!("acme/app:{tag}"))).unwrap();
        let store = ocituf_resolver::store::open(&image.repo).unwrap();
        ocituf_oci::example_image::push(&store, tag, message)
            .await
            .unwrap()
    }

    /// Sign acme/app:TAG as the team.
    pub async fn sign(&self, tag: &str) -> Written {
        let image = ImageReference::parse(&self.place.repo(&format!("acme/app:{tag}"))).unwrap();
        let store = ocituf_resolver::store::open(&image.repo).unwrap();
        let manifest = image_manifest(&store, &image).await.unwrap();
        // As `ocituf sign` does: only the roles the search visits for the two names.
        let names = [
            format!("acme/app:{tag}"),
            format!("acme/app@{}", manifest.digest),
        ];
        let state = State::load_for(&self.repo, Some(&self.pin), &names)
            .await
            .unwrap();
        sign_image(&self.repo, &state, "acme/app", tag, &manifest, &self.who())
            .await
            .unwrap()
    }

    pub async fn yank(&self, tag: &str) -> Written {
        let state = self.state().await;
        yank_image(&self.repo, &state, "acme/app", tag, &self.who())
            .await
            .unwrap()
    }

    /// Delegate `paths` from targets to a team role `role` with `count` hash bins (signed
    /// by the owner; the bins' keys are the team's).
    pub async fn delegate_bins(&self, role: &str, paths: &[String], count: u32) {
        delegate(
            &self.repo,
            Some(&self.pin),
            &DelegateRequest {
                from: "targets",
                role,
                keys: &[public(&self.team)],
                threshold: 1,
                terminating: false,
                paths,
                signing_keys: &[key(OWNER)],
                expires: in_days(30),
                hash_bins: Some(HashBins {
                    count,
                    team_keys: &[key(TEAM)],
                }),
            },
        )
        .await
        .unwrap();
    }

    pub async fn publish(&self) {
        let keys = OnlineKeys {
            snapshot: self.online.as_ref(),
            timestamp: self.online.as_ref(),
            snapshot_expires: in_days(7),
            timestamp_expires: in_days(1),
        };
        publish(&self.repo, Some(&self.pin), &keys).await.unwrap();
    }

    /// A client that pins this root (a fresh cache each time: nothing carried over).
    pub fn resolver(&self) -> Resolver {
        let root = self.dir.path().join("root.json");
        std::fs::write(&root, &self.root_bytes).unwrap();
        let text = format!(
            "[[trust]]\nscope = \"{}\"\nrepository = \"{}\"\nroot-of-trust = \"acme\"\nroot = \"{}\"\n",
            self.place.repo("acme/*"),
            self.place.repo("acme/tuf"),
            root.display()
        );
        let policy = TrustPolicy::parse(&text, &self.dir.path().join("policy.toml")).unwrap();
        let cache = tempfile::tempdir_in(self.dir.path()).unwrap().keep();
        Resolver::new(policy, cache)
    }

    /// Verify `acme/app` + `rest` (`:tag`, `@sha256:…`, `:tag@sha256:…`).
    pub async fn verify(&self, rest: &str) -> Result<Digest, ResolveError> {
        let image = ImageReference::parse(&self.place.repo(&format!("acme/app{rest}"))).unwrap();
        self.resolver().resolve(&image).await.map(|v| v.digest)
    }
}

/// The three ways a runtime names one image: tag, digest alone, tag@digest.
pub fn forms(tag: &str, digest: &Digest) -> [String; 3] {
    [
        format!(":{tag}"),
        format!("@{digest}"),
        format!(":{tag}@{digest}"),
    ]
}
