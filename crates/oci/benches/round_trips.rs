//! Registry round trips per verification (issue 3; the budget of docs/oci-mapping.md 6.1),
//! measured on the real test registries and the OCI layout, independent of the test suite.
//!
//! For each store (distribution 2.8 through the tag-schema fallback, the native referrers
//! registry, an OCI image layout) and each depth of delegation (0 to 3: `targets` -> `team`
//! -> `team-sub1` -> ...; the image `acme/app:1.0` is signed at the deepest level), a root of
//! trust is built with the editing API of `ocituf-tuf`, pushed with the `Publisher`, and a
//! client verifies the image (TUF refresh, then the delegation walk to the target) in these
//! situations:
//!
//! - cold start: empty cache, pinned root version 1;
//! - warm, nothing new: the same `Updater` again, and a new process (this binary re-run as a
//!   child) with a new `Updater` over the `FsStore` cache the first one left, offering the
//!   cached timestamp with `OciRepoSource::remember_cached_timestamp`; on registries once with
//!   the referrers support unknown and once remembered (`set_referrers_capability`);
//! - after a new timestamp only, and after new targets (targets + snapshot + timestamp), in
//!   the same process and in a new one.
//!
//! Requests are counted at the HTTP client (`RegistryClient::request_count`: every request
//! sent, token requests and retries included) and cross-checked against the registry's
//! own request log (see [`RegistryLog`]). On the layout, store calls are counted (no HTTP). The
//! image manifest itself (one more request, to the image repository) is not part of the TUF
//! budget and is not fetched here: the verified target is compared with the pushed bytes.
//!
//! Exits non-zero if any figure exceeds its budget. Run with
//! `cargo bench -p ocituf-oci --bench round_trips`; the table goes to stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ocituf_oci::mapping::MANIFEST_MEDIA_TYPE;
use ocituf_oci::registry::{Credentials, ReferrersCapability};
use ocituf_oci::{
    ArtifactStore, Digest, LayoutStore, OciRepoSource, Publisher, RegistryClient, RegistryOptions,
    RegistryRepo, RootOfTrustName,
};
use ocituf_testkit::{Distribution, ReferrersRegistry};
use ocituf_tuf::crypto::{PrivateKey, Signer};
use ocituf_tuf::metadata::{DelegatedRole, TargetFile};
use ocituf_tuf::{FsStore, Repository, RootHistory, SystemClock, Updater, UpdaterConfig};

/// Runs per figure: request counts must agree across them; times are their median.
const RUNS: usize = 5;
const DEPTHS: [usize; 4] = [0, 1, 2, 3];
const IMAGE_REPO: &str = "acme/app";
const IMAGE_TAG: &str = "1.0";
const LIMIT_WARM: u64 = 1;
const LIMIT_NEW_TIMESTAMP: u64 = 4;
const LIMIT_COLD_BASE: u64 = 6;

fn acme() -> Result<RootOfTrustName> {
    Ok(RootOfTrustName::parse("acme")?)
}

fn target_name() -> String {
    format!("{IMAGE_REPO}:{IMAGE_TAG}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Distribution,
    Native,
    Layout,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Distribution => "distribution",
            Kind::Native => "native",
            Kind::Layout => "layout",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "distribution" => Kind::Distribution,
            "native" => Kind::Native,
            "layout" => Kind::Layout,
            _ => bail!("unknown store kind {s:?}"),
        })
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Distribution => "distribution 2.8 (fallback)",
            Kind::Native => "native referrers",
            Kind::Layout => "OCI layout",
        }
    }
}

/// Where the metadata of one root of trust lives: `ADDR` (a registry on 127.0.0.1) or a
/// layout directory, and the repository name.
#[derive(Clone, Debug)]
struct Location {
    kind: Kind,
    base: String,
    repo: String,
}

fn registry_options() -> RegistryOptions {
    RegistryOptions {
        credentials: Credentials::Anonymous,
        ..RegistryOptions::default()
    }
}

/// One measured verification.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// HTTP requests (registries) or store calls (layout).
    requests: u64,
    /// Store calls made by `OciRepoSource` (ArtifactStore calls).
    store_calls: u64,
    /// Requests in the registry's own log (registries only).
    logged: Option<u64>,
    elapsed: Duration,
}

/// A verifying client: an `Updater` over `OciRepoSource` and an `FsStore` cache.
struct Verifier<A: ArtifactStore> {
    updater: Updater<OciRepoSource<A>, FsStore, SystemClock>,
    http: Option<RegistryClient>,
}

impl<A: ArtifactStore> Verifier<A> {
    async fn open(
        store: A,
        http: Option<RegistryClient>,
        root: &[u8],
        cache: &Path,
    ) -> Result<Self> {
        let source = OciRepoSource::new(store, acme()?);
        let cache = FsStore::open(cache, RootHistory::Keep)?;
        // What a new process with a warm cache does (docs/oci-mapping.md 6.1).
        source.remember_cached_timestamp(&cache).await;
        let updater =
            Updater::new(root, source, cache, UpdaterConfig::default(), SystemClock).await?;
        Ok(Self { updater, http })
    }

    fn requests(&self) -> u64 {
        self.http.as_ref().map_or_else(
            || self.updater.source().requests(),
            RegistryClient::request_count,
        )
    }

    /// Refresh and look up the image target; check it against the pushed manifest.
    async fn verify(&mut self, manifest: &[u8]) -> Result<(u64, u64, Duration)> {
        let (before, calls_before) = (self.requests(), self.updater.source().requests());
        let t = Instant::now();
        self.updater.refresh().await?;
        let info = self
            .updater
            .target_info(&target_name())
            .await?
            .context("the image target is not found by the delegation walk")?;
        let elapsed = t.elapsed();
        ocituf_tuf::updater::verify_target(&info, manifest)?;
        Ok((
            self.requests() - before,
            self.updater.source().requests() - calls_before,
            elapsed,
        ))
    }
}

/// A verifier of `loc` with its own client (own connections, nothing learnt yet).
async fn verify_once(
    loc: &Location,
    capability: Option<ReferrersCapability>,
    root: &[u8],
    cache: &Path,
    manifest: &[u8],
) -> Result<(u64, u64, Duration)> {
    let t = Instant::now();
    let (requests, calls, _) = match loc.kind {
        Kind::Layout => {
            let store = LayoutStore::new(&loc.base, &loc.repo)?;
            Verifier::open(store, None, root, cache)
                .await?
                .verify(manifest)
                .await?
        }
        Kind::Distribution | Kind::Native => {
            let repo =
                RegistryRepo::open(&format!("{}/{}", loc.base, loc.repo), registry_options())?;
            if let Some(c) = capability {
                repo.set_referrers_capability(c);
            }
            let client = repo.client().clone();
            let mut v = Verifier::open(repo, Some(client), root, cache).await?;
            // Opening the updater makes no request: count from here on.
            ensure!(v.requests() == 0, "opening the updater made requests");
            v.verify(manifest).await?
        }
    };
    // The whole verification of a new client, opening the cache included.
    Ok((requests, calls, t.elapsed()))
}

/// The child process: one verification with a new client over an existing cache.
/// Arguments: KIND BASE REPO CACHE_DIR ROOT_FILE MANIFEST_FILE CAPABILITY(unknown|known).
async fn child(args: &[String]) -> Result<()> {
    let [kind, base, repo, cache, root, manifest, cap] = args else {
        bail!("child: expected 7 arguments, got {}", args.len());
    };
    let loc = Location {
        kind: Kind::parse(kind)?,
        base: base.clone(),
        repo: repo.clone(),
    };
    let capability = match (cap.as_str(), loc.kind) {
        ("unknown", _) | (_, Kind::Layout) => None,
        ("known", Kind::Distribution) => Some(ReferrersCapability::TagSchemaFallback),
        ("known", Kind::Native) => Some(ReferrersCapability::Native),
        _ => bail!("child: capability must be unknown or known"),
    };
    let root = std::fs::read(root)?;
    let manifest = std::fs::read(manifest)?;
    let (requests, calls, elapsed) =
        verify_once(&loc, capability, &root, Path::new(cache), &manifest).await?;
    println!(
        "requests={requests} store_calls={calls} micros={}",
        elapsed.as_micros()
    );
    Ok(())
}

/// Run one verification in a new process over a copy of `cache`.
fn in_child(
    loc: &Location,
    known: bool,
    files: &Files,
    cache: &Path,
    log: Option<&RegistryLog>,
) -> Result<Sample> {
    let copy = tempfile::tempdir()?;
    copy_dir(cache, copy.path())?;
    let mark = log.map(RegistryLog::mark).transpose()?;
    let out = Command::new(std::env::current_exe()?)
        .arg("--child")
        .args([loc.kind.name(), &loc.base, &loc.repo])
        .arg(copy.path())
        .arg(&files.root)
        .arg(&files.manifest)
        .arg(if known { "known" } else { "unknown" })
        .output()?;
    ensure!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let field = |name: &str| -> Result<u64> {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .with_context(|| format!("child output {text:?} lacks {name}"))?
            .parse()
            .context("child output")
    };
    let logged = match (log, mark) {
        (Some(l), Some(m)) => Some(l.count_since(m, &loc.repo)?),
        _ => None,
    };
    Ok(Sample {
        requests: field("requests")?,
        store_calls: field("store_calls")?,
        logged,
        elapsed: Duration::from_micros(field("micros")?),
    })
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

/// The registry's own log of the requests it served, to cross-check the client's count.
///
/// - distribution: its access log (combined log format, one line per request, on stdout,
///   which the testkit appends to the registry's log file);
/// - the native referrers registry: ggcr's request log (one line per request it serves).
///   Our wrapper answers a referrers GET by asking ggcr for the raw list and then for every
///   listed manifest, and ggcr logs those internal requests too; so only referrers and blob
///   lines are counted there. The verifier asks for nothing else in these situations (a
///   manifest GET by the client would make the counts differ, which is reported).
struct RegistryLog {
    path: PathBuf,
    native: bool,
}

impl RegistryLog {
    fn mark(&self) -> Result<u64> {
        Ok(std::fs::metadata(&self.path)?.len())
    }

    /// Requests to `/v2/REPO/...` logged after `mark`.
    fn count_since(&self, mark: u64, repo: &str) -> Result<u64> {
        // Both registries log a request once its response is written; give them a moment.
        std::thread::sleep(Duration::from_millis(50));
        let bytes = std::fs::read(&self.path)?;
        let tail = String::from_utf8_lossy(bytes.get(usize::try_from(mark)?..).unwrap_or_default());
        let methods = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"];
        let counted = |line: &str| {
            if self.native {
                line.contains(&format!(" GET /v2/{repo}/referrers/"))
                    || methods
                        .iter()
                        .any(|m| line.contains(&format!(" {m} /v2/{repo}/blobs/")))
            } else {
                methods
                    .iter()
                    .any(|m| line.contains(&format!("\"{m} /v2/{repo}/")))
            }
        };
        Ok(tail.lines().filter(|l| counted(l)).count() as u64)
    }
}

/// The owner of a root of trust: keys, the repository being edited, the publisher.
struct Owner<A: ArtifactStore> {
    repo: Repository,
    keys: BTreeMap<String, PrivateKey>,
    /// Delegated roles, outermost first.
    chain: Vec<String>,
    publisher: Publisher<A>,
}

fn expires() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(30)
}

impl<A: ArtifactStore> Owner<A> {
    /// Root of trust with `depth` delegation levels; `manifest` signed at the deepest one.
    fn new(store: A, depth: usize, manifest: &[u8]) -> Result<Self> {
        let mut repo = Repository::new(expires());
        repo.meta_hashes = true;
        let mut keys = BTreeMap::new();
        for (seed, role) in (1u8..).zip(["root", "timestamp", "snapshot", "targets"]) {
            let key = PrivateKey::ed25519_from_seed([seed; 32])?;
            repo.add_signer_key(role, &key)?;
            keys.insert(role.to_owned(), key);
        }
        let mut chain = Vec::new();
        let mut delegator = "targets".to_owned();
        for level in 1..=depth {
            let name = if level == 1 {
                "team".to_owned()
            } else {
                format!("team-sub{}", level - 1)
            };
            let key = PrivateKey::ed25519_from_seed([10 + u8::try_from(level)?; 32])?;
            let role = DelegatedRole::with_paths(
                &name,
                vec![key.key_id().clone()],
                1,
                &["acme/app:*", "acme/app@*"],
            );
            repo.delegate(
                &delegator,
                role,
                &[(key.key_id().clone(), key.public_key().clone())],
            )?;
            keys.insert(name.clone(), key);
            chain.push(name.clone());
            delegator = name;
        }
        let mut file = TargetFile::from_data(manifest, &["sha256"])?;
        file.custom = Some(serde_json::json!({ "oci": { "mediaType": MANIFEST_MEDIA_TYPE } }));
        repo.add_target(&delegator, &target_name(), file.clone())?;
        repo.add_target(
            &delegator,
            &format!("{IMAGE_REPO}@{}", Digest::of(manifest)),
            file,
        )?;
        Ok(Self {
            repo,
            keys,
            chain,
            publisher: Publisher::new(store, acme()?),
        })
    }

    /// Sign and push root 1 and every role (deepest delegation first).
    async fn publish_all(&mut self) -> Result<Vec<u8>> {
        let root = self.repo.sign_root(&[signer(&self.keys, "root")?])?;
        self.publisher.push("root", &root, None).await?;
        let roles: Vec<String> = self
            .chain
            .iter()
            .rev()
            .cloned()
            .chain(["targets".to_owned()])
            .collect();
        for role in &roles {
            let bytes = self.repo.sign_targets(role, &[signer(&self.keys, role)?])?;
            self.publisher.push(role, &bytes, None).await?;
        }
        self.push_snapshot_and_timestamp(true).await?;
        Ok(root)
    }

    async fn push_snapshot_and_timestamp(&mut self, snapshot: bool) -> Result<()> {
        if snapshot {
            let bytes = self
                .repo
                .sign_snapshot(&[signer(&self.keys, "snapshot")?])?;
            self.publisher.push("snapshot", &bytes, None).await?;
        }
        let bytes = self
            .repo
            .sign_timestamp(&[signer(&self.keys, "timestamp")?])?;
        self.publisher.push("timestamp", &bytes, None).await?;
        Ok(())
    }

    /// A new timestamp only (what the online signer does to keep it fresh).
    async fn new_timestamp(&mut self) -> Result<()> {
        self.repo.bump("timestamp", expires())?;
        self.push_snapshot_and_timestamp(false).await
    }

    /// New top-level targets, snapshot and timestamp.
    async fn new_targets(&mut self) -> Result<()> {
        for role in ["targets", "snapshot", "timestamp"] {
            self.repo.bump(role, expires())?;
        }
        let bytes = self
            .repo
            .sign_targets("targets", &[signer(&self.keys, "targets")?])?;
        self.publisher.push("targets", &bytes, None).await?;
        self.push_snapshot_and_timestamp(true).await
    }
}

fn signer<'a>(keys: &'a BTreeMap<String, PrivateKey>, role: &str) -> Result<&'a dyn Signer> {
    Ok(keys
        .get(role)
        .with_context(|| format!("no key for {role}"))?)
}

/// An image manifest (with its config and layer blobs) tagged in the image repository.
async fn push_image<B: ArtifactStore>(images: &B) -> Result<Vec<u8>> {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = vec![7u8; 64];
    let config_digest = images.put_blob(config).await?;
    let layer_digest = images.put_blob(&layer).await?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest.as_str(), "size": layer.len()}],
    }))?;
    images
        .put_manifest(MANIFEST_MEDIA_TYPE, &manifest, Some(IMAGE_TAG))
        .await?;
    Ok(manifest)
}

/// Files handed to child processes.
struct Files {
    _dir: tempfile::TempDir,
    root: PathBuf,
    manifest: PathBuf,
}

impl Files {
    fn new(root: &[u8], manifest: &[u8]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let files = Files {
            root: dir.path().join("root.json"),
            manifest: dir.path().join("manifest.json"),
            _dir: dir,
        };
        std::fs::write(&files.root, root)?;
        std::fs::write(&files.manifest, manifest)?;
        Ok(files)
    }
}

/// One row of the table: a situation, the figures of its runs, and its budget.
struct Row {
    kind: Kind,
    depth: usize,
    situation: &'static str,
    samples: Vec<Sample>,
    limit: u64,
    limit_note: &'static str,
}

impl Row {
    fn requests(&self) -> (u64, u64) {
        let min = self.samples.iter().map(|s| s.requests).min().unwrap_or(0);
        let max = self.samples.iter().map(|s| s.requests).max().unwrap_or(0);
        (min, max)
    }

    fn store_calls(&self) -> u64 {
        self.samples
            .iter()
            .map(|s| s.store_calls)
            .max()
            .unwrap_or(0)
    }

    /// The access-log count, if every run's agrees with the client's count; else the worst.
    fn logged(&self) -> Option<(u64, bool)> {
        let logged: Vec<(u64, u64)> = self
            .samples
            .iter()
            .filter_map(|s| Some((s.logged?, s.requests)))
            .collect();
        let worst = logged.iter().map(|(l, _)| *l).max()?;
        Some((worst, logged.iter().all(|(l, r)| l == r)))
    }

    fn median_ms(&self) -> f64 {
        let mut t: Vec<Duration> = self.samples.iter().map(|s| s.elapsed).collect();
        t.sort();
        t.get(t.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }

    fn ok(&self) -> bool {
        self.requests().1 <= self.limit && self.logged().is_none_or(|(_, agree)| agree)
    }
}

/// Run one verification and count, besides, what the registry's own log saw meanwhile.
async fn logged(
    log: Option<&RegistryLog>,
    repo: &str,
    verification: impl std::future::Future<Output = Result<(u64, u64, Duration)>>,
) -> Result<Sample> {
    let mark = log.map(RegistryLog::mark).transpose()?;
    let (requests, store_calls, elapsed) = verification.await?;
    let logged = match (log, mark) {
        (Some(l), Some(mark)) => Some(l.count_since(mark, repo)?),
        _ => None,
    };
    Ok(Sample {
        requests,
        store_calls,
        logged,
        elapsed,
    })
}

/// All measurements for one store and depth.
async fn measure<A: ArtifactStore>(
    meta_store: A,
    images: impl ArtifactStore,
    loc: &Location,
    depth: usize,
    log: Option<&RegistryLog>,
) -> Result<Vec<Row>> {
    let manifest = push_image(&images).await?;
    let mut owner = Owner::new(meta_store, depth, &manifest)?;
    let root = owner.publish_all().await?;
    let files = Files::new(&root, &manifest)?;
    let registry = loc.kind != Kind::Layout;
    let row = |situation, samples, limit, limit_note| Row {
        kind: loc.kind,
        depth,
        situation,
        samples,
        limit,
        limit_note,
    };
    let mut rows = Vec::new();

    // (1) Cold start: a new client, an empty cache, root 1 pinned.
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let cache = tempfile::tempdir()?;
        samples.push(
            logged(
                log,
                &loc.repo,
                verify_once(loc, None, &root, cache.path(), &manifest),
            )
            .await?,
        );
    }
    let cold_limit = LIMIT_COLD_BASE + depth as u64;
    rows.push(row("cold start", samples, cold_limit, ""));

    // The long-lived client of the next situations, warmed by one verification.
    let cache = tempfile::tempdir()?;
    let mut warm = open_verifier(loc, &root, cache.path()).await?;
    warm.verify(&manifest).await?;

    // (2) Warm, nothing new: the same process, then new processes over the cache.
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        samples.push(logged(log, &loc.repo, warm.verify(&manifest)).await?);
    }
    rows.push(row("warm, same process", samples, LIMIT_WARM, ""));
    let samples = (0..RUNS)
        .map(|_| in_child(loc, true, &files, cache.path(), log))
        .collect::<Result<Vec<_>>>()?;
    rows.push(row(
        if registry {
            "warm, new process (referrers support remembered)"
        } else {
            "warm, new process"
        },
        samples,
        LIMIT_WARM,
        "",
    ));
    if registry {
        let samples = (0..RUNS)
            .map(|_| in_child(loc, false, &files, cache.path(), log))
            .collect::<Result<Vec<_>>>()?;
        // Not in the issue's budget: a client that remembers nothing between processes
        // first asks whether the registry has the referrers API (distribution: a 404).
        let (limit, note) = if loc.kind == Kind::Distribution {
            (LIMIT_WARM + 1, " (1 + detection probe)")
        } else {
            (LIMIT_WARM, "")
        };
        rows.push(row(
            "warm, new process (referrers support unknown)",
            samples,
            limit,
            note,
        ));
    }

    // (3) and (4): after a new timestamp only, after new targets + snapshot + timestamp.
    for (situation_same, situation_new, targets) in [
        (
            "new timestamp, same process",
            "new timestamp, new process",
            false,
        ),
        (
            "new targets, same process",
            "new targets, new process",
            true,
        ),
    ] {
        let (mut same, mut new) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            if targets {
                owner.new_targets().await?;
            } else {
                owner.new_timestamp().await?;
            }
            new.push(in_child(loc, true, &files, cache.path(), log)?);
            same.push(logged(log, &loc.repo, warm.verify(&manifest)).await?);
        }
        rows.push(row(situation_same, same, LIMIT_NEW_TIMESTAMP, ""));
        rows.push(row(situation_new, new, LIMIT_NEW_TIMESTAMP, ""));
    }
    Ok(rows)
}

enum AnyVerifier {
    Layout(Verifier<LayoutStore>),
    Registry(Verifier<RegistryRepo>),
}

impl AnyVerifier {
    async fn verify(&mut self, manifest: &[u8]) -> Result<(u64, u64, Duration)> {
        match self {
            AnyVerifier::Layout(v) => v.verify(manifest).await,
            AnyVerifier::Registry(v) => v.verify(manifest).await,
        }
    }
}

async fn open_verifier(loc: &Location, root: &[u8], cache: &Path) -> Result<AnyVerifier> {
    Ok(match loc.kind {
        Kind::Layout => AnyVerifier::Layout(
            Verifier::open(LayoutStore::new(&loc.base, &loc.repo)?, None, root, cache).await?,
        ),
        Kind::Distribution | Kind::Native => {
            let repo =
                RegistryRepo::open(&format!("{}/{}", loc.base, loc.repo), registry_options())?;
            let client = repo.client().clone();
            AnyVerifier::Registry(Verifier::open(repo, Some(client), root, cache).await?)
        }
    })
}

async fn run_all() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    // Publisher and images use their own clients: only the verifier's requests are counted.
    let dist = Distribution::try_start()?;
    let log = RegistryLog {
        path: dist.log_path(),
        native: false,
    };
    for depth in DEPTHS {
        let loc = Location {
            kind: Kind::Distribution,
            base: dist.addr().to_string(),
            repo: format!("acme/tuf-d{depth}"),
        };
        let meta = RegistryRepo::open(&format!("{}/{}", loc.base, loc.repo), registry_options())?;
        let images = RegistryRepo::open(&format!("{}/{IMAGE_REPO}", loc.base), registry_options())?;
        rows.extend(measure(meta, images, &loc, depth, Some(&log)).await?);
    }
    dist.stop();

    let native = ReferrersRegistry::try_start()?;
    let log = RegistryLog {
        path: native.log_path(),
        native: true,
    };
    for depth in DEPTHS {
        let loc = Location {
            kind: Kind::Native,
            base: native.addr().to_string(),
            repo: format!("acme/tuf-d{depth}"),
        };
        let meta = RegistryRepo::open(&format!("{}/{}", loc.base, loc.repo), registry_options())?;
        let images = RegistryRepo::open(&format!("{}/{IMAGE_REPO}", loc.base), registry_options())?;
        rows.extend(measure(meta, images, &loc, depth, Some(&log)).await?);
    }
    native.stop();

    let dir = tempfile::tempdir()?;
    for depth in DEPTHS {
        let base = dir.path().join(format!("d{depth}"));
        let loc = Location {
            kind: Kind::Layout,
            base: base.to_string_lossy().into_owned(),
            repo: "acme/tuf".to_owned(),
        };
        let meta = LayoutStore::new(&base, &loc.repo)?;
        let images = LayoutStore::new(&base, IMAGE_REPO)?;
        rows.extend(measure(meta, images, &loc, depth, None).await?);
    }
    Ok(rows)
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| store | delegation levels | situation | requests | budget | store calls | registry log | median ms | |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let (min, max) = r.requests();
        let requests = if min == max {
            max.to_string()
        } else {
            format!("{min}-{max}")
        };
        let logged = match r.logged() {
            None => "-".to_owned(),
            Some((n, true)) => n.to_string(),
            Some((n, false)) => format!("{n} (DIFFERS)"),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | ≤ {}{} | {} | {} | {:.1} | {} |",
            r.kind.label(),
            r.depth,
            r.situation,
            requests,
            r.limit,
            r.limit_note,
            r.store_calls(),
            logged,
            r.median_ms(),
            if r.ok() { "ok" } else { "OVER BUDGET" },
        );
    }
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("round_trips: no tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.first().map(String::as_str) == Some("--child") {
        return match runtime.block_on(child(&args[1..])) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("round_trips child: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let started = Instant::now();
    let rows = match runtime.block_on(run_all()) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("round_trips: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("Registry round trips per verification ({RUNS} runs each; requests = HTTP requests");
    println!("sent by the verifier's RegistryClient, store calls on the layout)\n");
    print!("{}", table(&rows));
    println!("\ntotal {:.1} s", started.elapsed().as_secs_f64());
    let over: Vec<&Row> = rows.iter().filter(|r| !r.ok()).collect();
    if over.is_empty() {
        println!("every figure within its budget");
        ExitCode::SUCCESS
    } else {
        for r in over {
            eprintln!(
                "over budget: {} depth {} {}: {:?} requests, budget {}, registry log {:?}",
                r.kind.label(),
                r.depth,
                r.situation,
                r.requests(),
                r.limit,
                r.logged()
            );
        }
        ExitCode::FAILURE
    }
}
