//! One organization with many images (issue 10): what one `sign`, one cold `verify` and one
//! warm `verify` after the client's own bin changed cost, in requests, bytes, time and peak
//! memory, with N targets in one root of trust, classic snapshots against Merkle snapshots
//! (docs/oci-mapping.md §11), on the OCI layout and on the fallback registry.
//!
//! Set-up per (store, snapshot form, N): a root of trust made with the `ocituf` binary, the
//! team role `app` for `acme/*` delegated to B ≈ N/8 hash bins (the next power of two),
//! N/2 generated images (tag and digest names: N targets) written straight into
//! the bins by `ocituf_writer::generate::populate_bins` and published with
//! `online::publish_changes`. Then, each measured with the `ocituf` binary under GNU time
//! (`/usr/bin/time`, Debian package `time`) for wall time and peak RSS:
//!
//! - **sign**: a real image `acme/bench:1` (pushed with `ocituf example-image`), `ocituf sign`;
//!   then `publish_changes` of the bin it wrote (what the online signer does with a
//!   submission), not measured;
//! - **cold verify**: `ocituf verify --json` with an empty cache;
//! - **warm verify**: the tag moves to a new image, signed and published as above, and the
//!   same client verifies again (its bin changed; targets and `app` did not).
//!
//! On the registry the CLI goes through a counting pass-through proxy (testkit's
//! `AdversarialProxy` with no rule) for HTTP requests and response body bytes; on both
//! stores `verify --json` reports its metadata store calls and metadata bytes.
//!
//! Run: `cargo bench -p ocituf --bench scale -- [N...]` (default `10000 100000`), with
//! `SCALE_STORES=layout,distribution` (or `referrers`: the registry with the native referrers
//! API) and `SCALE_FORMS=classic,merkle` to choose. Prints a
//! table on stdout.

#![allow(clippy::cast_precision_loss)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use ocituf_resolver::RepositoryReference;
use ocituf_testkit::AdversarialProxy;
use ocituf_testkit::{Distribution, DistributionOptions, ReferrersOptions, ReferrersRegistry};
use ocituf_tuf::crypto::Signer;
use ocituf_writer::authority::Authority;
use ocituf_writer::online::{publish_changes, OnlineKeys};
use ocituf_writer::pin::Pin;
use ocituf_writer::repo::MetaRepo;
use time::OffsetDateTime;

/// One measured run of the `ocituf` binary.
struct Measured {
    stdout: String,
    stderr: String,
    seconds: f64,
    max_rss_kib: u64,
}

fn ocituf(home: &Path, args: &[&str]) -> Result<Measured> {
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("TIME %e %M")
        .arg(env!("CARGO_BIN_EXE_ocituf"))
        .args(args)
        .current_dir(home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .output()
        .context("run /usr/bin/time (apt-get install time)")?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(out.status.success(), "ocituf {args:?} failed: {stderr}");
    let line = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("TIME "))
        .context("no GNU time line")?;
    let mut parts = line.split_whitespace();
    let seconds: f64 = parts.next().context("time")?.parse()?;
    let max_rss_kib: u64 = parts.next().context("rss")?.parse()?;
    Ok(Measured {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        seconds,
        max_rss_kib,
    })
}

/// Where a run writes: the prefix the CLI uses (through the proxy on a registry) and the
/// one the in-process generator uses (straight to the registry).
struct Place {
    cli: String,
    direct: String,
    proxy: Option<AdversarialProxy>,
}

impl Place {
    /// A registry at `addr`: the CLI through a counting proxy, the generator straight.
    fn behind_proxy(addr: &str, limit: std::time::Duration) -> Self {
        let proxy = AdversarialProxy::start_for(addr, limit);
        Place {
            cli: format!("{}/", proxy.addr()),
            direct: format!("{addr}/"),
            proxy: Some(proxy),
        }
    }

    fn counts(&self) -> (u64, u64) {
        self.proxy
            .as_ref()
            .map_or((0, 0), |p| (p.requests(), p.bytes_sent()))
    }
}

#[derive(Default)]
struct Row {
    generate_s: f64,
    bins: u64,
    op: Vec<(&'static str, Op)>,
}

struct Op {
    http_requests: Option<u64>,
    http_bytes: Option<u64>,
    store_calls: Option<u64>,
    metadata_bytes: Option<u64>,
    seconds: f64,
    max_rss_kib: u64,
}

/// About 8 targets per bin (docs/scale.md: what keeps a Merkle pull under 8 KiB).
fn bins_for(n: u64) -> u64 {
    (n / 8).next_power_of_two().clamp(2, 1 << 20)
}

fn in_days(days: i64) -> OffsetDateTime {
    let t = OffsetDateTime::now_utc() + time::Duration::days(days);
    t.replace_nanosecond(0).unwrap_or(t)
}

fn load_key(home: &Path, name: &str) -> Result<Box<dyn Signer>> {
    ocituf_writer::keys::load_signer(&home.join(name).display().to_string())
        .map_err(anyhow::Error::from)
}

async fn publish_bins(
    repo: &MetaRepo,
    pin: &Pin,
    online: &dyn Signer,
    written: &[(String, u64)],
) -> Result<()> {
    let (root, _) = repo
        .root_chain(Some(pin))
        .await
        .map_err(anyhow::Error::from)?;
    // The bin's delegator is `app`, whose keys are the bins' keys: read it to get them.
    let top = Authority::of_top_level(&root, "targets").map_err(anyhow::Error::from)?;
    let targets = repo
        .newest("targets", &top)
        .await
        .map_err(anyhow::Error::from)?;
    let targets = targets.context("no targets")?;
    let t = <ocituf_tuf::metadata::Targets as ocituf_tuf::metadata::Role>::from_signed(
        &targets.envelope.signed,
    )?;
    let d = t.delegations.context("no delegations")?;
    let app = d
        .roles
        .iter()
        .flatten()
        .find(|r| r.name == "app")
        .context("no app")?;
    let app_auth = Authority {
        keys: d.keys.clone(),
        keyids: app.keyids.clone(),
        threshold: app.threshold,
    };
    let app = repo
        .newest("app", &app_auth)
        .await
        .map_err(anyhow::Error::from)?;
    let app = app.context("no app version")?;
    let app = <ocituf_tuf::metadata::Targets as ocituf_tuf::metadata::Role>::from_signed(
        &app.envelope.signed,
    )?;
    let ad = app.delegations.context("app delegates nothing")?;
    let s = ad.succinct_roles.context("app has no bins")?;
    let bin_auth = Authority {
        keys: ad.keys.clone(),
        keyids: s.keyids.clone(),
        threshold: s.threshold,
    };
    let mut changes = std::collections::BTreeMap::new();
    for (role, version) in written {
        let found = repo
            .newest(role, &bin_auth)
            .await
            .map_err(anyhow::Error::from)?;
        let found = found.context("the signed bin is not there")?;
        ensure!(
            found.version == *version,
            "{role} is at {} not {version}",
            found.version
        );
        changes.insert(role.clone(), found);
    }
    let keys = OnlineKeys {
        snapshot: online,
        timestamp: online,
        snapshot_expires: in_days(7),
        timestamp_expires: in_days(1),
    };
    publish_changes(repo, Some(pin), &keys, &changes)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(())
}

/// The roles and versions `ocituf sign` reports on stderr ("signed into role \"app-0a3\"
/// version 2 and \"app-1b2\" version 1 of \"acme\"": the tag and digest names of an image
/// may land in two bins).
fn signed_roles(stderr: &str) -> Result<Vec<(String, u64)>> {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("signed into role "))
        .context("sign says no role")?;
    let mut out = Vec::new();
    for part in line.split(" and ") {
        let mut it = part.split('"');
        let (_, role, rest) = (it.next(), it.next(), it.next());
        let role = role.context("no role name")?.to_owned();
        let version = rest
            .and_then(|r| r.trim_start().strip_prefix("version "))
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|v| v.parse().ok())
            .context("no version")?;
        out.push((role, version));
    }
    Ok(out)
}

fn op_from(m: &Measured, before: (u64, u64), after: (u64, u64), place: &Place) -> Op {
    let json: Option<serde_json::Value> = serde_json::from_str(&m.stdout).ok();
    let registry = place.proxy.is_some();
    Op {
        http_requests: registry.then_some(after.0 - before.0),
        http_bytes: registry.then_some(after.1 - before.1),
        store_calls: json.as_ref().and_then(|j| j["metadata_requests"].as_u64()),
        metadata_bytes: json.as_ref().and_then(|j| j["metadata_bytes"].as_u64()),
        seconds: m.seconds,
        max_rss_kib: m.max_rss_kib,
    }
}

async fn one(place: &Place, n: u64, merkle: bool) -> Result<Row> {
    let home = tempfile::tempdir()?;
    let h = home.path();
    for k in ["root", "targets", "online", "app"] {
        ocituf(h, &["key", "generate", "--out", &format!("{k}.pem")])?;
    }
    let tuf = format!("{}acme/tuf", place.cli);
    let mut init = vec![
        "init",
        &tuf,
        "--name",
        "acme",
        "--root-key",
        "root.pem",
        "--targets-key",
        "targets.pem",
        "--snapshot-key",
        "online.pem",
        "--timestamp-key",
        "online.pem",
        "--out-root",
        "acme.root.json",
    ];
    if merkle {
        init.push("--snapshot-merkle");
    }
    ocituf(h, &init)?;
    let bins = bins_for(n);
    let bins_s = bins.to_string();
    ocituf(
        h,
        &[
            "delegate",
            &tuf,
            "-n",
            "acme",
            "--role",
            "app",
            "--path",
            "acme/*",
            "--key",
            "app.pem",
            "--hash-bins",
            &bins_s,
            "--signing-key",
            "targets.pem",
            "--root",
            "acme.root.json",
        ],
    )?;
    let scope = format!("{}acme/*", place.cli);
    ocituf(
        h,
        &[
            "trust",
            "add",
            &scope,
            "--repo",
            &tuf,
            "-n",
            "acme",
            "--root",
            "acme.root.json",
        ],
    )?;

    // Generate N targets (N/2 images) straight into the bins.
    let started = Instant::now();
    let repo_ref = RepositoryReference::parse(&format!("{}acme/tuf", place.direct))?;
    let repo = MetaRepo::open(&repo_ref, "acme", &ocituf_oci::RegistryOptions::default())
        .map_err(anyhow::Error::from)?;
    let pin = Pin::Bytes(std::fs::read(h.join("acme.root.json"))?);
    let images_n = usize::try_from(n / 2)?;
    let per_repo = 10;
    let images =
        ocituf_writer::generate::synthetic_images("acme", images_n.div_ceil(per_repo), per_repo, n);
    let app = load_key(h, "app.pem")?;
    let online = load_key(h, "online.pem")?;
    let found = ocituf_writer::generate::populate_bins(
        &repo,
        Some(&pin),
        "app",
        app.as_ref(),
        &images[..images_n],
        in_days(30),
        8,
    )
    .await
    .map_err(anyhow::Error::from)?;
    let keys = OnlineKeys {
        snapshot: online.as_ref(),
        timestamp: online.as_ref(),
        snapshot_expires: in_days(7),
        timestamp_expires: in_days(1),
    };
    publish_changes(&repo, Some(&pin), &keys, &found)
        .await
        .map_err(anyhow::Error::from)?;
    let mut row = Row {
        generate_s: started.elapsed().as_secs_f64(),
        bins,
        ..Row::default()
    };

    // sign a real image.
    let image = format!("{}acme/bench:1", place.cli);
    ocituf(h, &["example-image", &image, "--message", "one"])?;
    let before = place.counts();
    let m = ocituf(h, &["sign", &image, "--key", "app.pem"])?;
    row.op
        .push(("sign", op_from(&m, before, place.counts(), place)));
    publish_bins(&repo, &pin, online.as_ref(), &signed_roles(&m.stderr)?).await?;

    // cold verify.
    let _ = std::fs::remove_dir_all(h.join("cache"));
    let before = place.counts();
    let m = ocituf(h, &["verify", &image, "--json"])?;
    row.op
        .push(("cold verify", op_from(&m, before, place.counts(), place)));

    // the client's own bin changes: the tag moves, is signed and published.
    ocituf(h, &["example-image", &image, "--message", "two"])?;
    let s = ocituf(h, &["sign", &image, "--key", "app.pem"])?;
    publish_bins(&repo, &pin, online.as_ref(), &signed_roles(&s.stderr)?).await?;
    let before = place.counts();
    let m = ocituf(h, &["verify", &image, "--json"])?;
    row.op
        .push(("warm verify", op_from(&m, before, place.counts(), place)));
    Ok(row)
}

/// `SCALE_TIME_LIMIT` (minutes, default 30): how long the registry and the proxy live.
fn time_limit_minutes() -> Result<u64> {
    match std::env::var("SCALE_TIME_LIMIT") {
        Ok(v) => v
            .parse()
            .with_context(|| format!("SCALE_TIME_LIMIT {v:?} is not a number of minutes")),
        Err(_) => Ok(30),
    }
}

fn fmt_opt(v: Option<u64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| v.to_string())
}

fn main() -> Result<()> {
    let ns: Vec<u64> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let ns = if ns.is_empty() {
        vec![10_000, 100_000]
    } else {
        ns
    };
    let stores = std::env::var("SCALE_STORES").unwrap_or_else(|_| "layout,distribution".into());
    let forms = std::env::var("SCALE_FORMS").unwrap_or_else(|_| "classic,merkle".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?;
    println!("| store | snapshot | N targets | bins | generate s | operation | HTTP requests | HTTP bytes | store calls | metadata bytes | time s | peak RSS MiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for store in stores.split(',') {
        for &n in &ns {
            for form in forms.split(',') {
                let merkle = match form {
                    "merkle" => true,
                    "classic" => false,
                    other => bail!("SCALE_FORMS: unknown form {other:?}"),
                };
                let dir = tempfile::tempdir()?;
                // The registry lives until the row is measured (dropping it stops it).
                let mut registry: Option<Box<dyn std::any::Any>> = None;
                let place = match store {
                    "layout" => {
                        let p = format!("oci:{}:", dir.path().join("reg").display());
                        Place {
                            cli: p.clone(),
                            direct: p,
                            proxy: None,
                        }
                    }
                    "distribution" => {
                        // Generating a million targets takes longer than a test's limits.
                        let limit = std::time::Duration::from_secs(time_limit_minutes()? * 60);
                        let r = Distribution::start_with(DistributionOptions {
                            time_limit: limit,
                            ..DistributionOptions::default()
                        });
                        let place = Place::behind_proxy(r.addr(), limit);
                        registry = Some(Box::new(r));
                        place
                    }
                    "referrers" => {
                        let limit = std::time::Duration::from_secs(time_limit_minutes()? * 60);
                        let r = ReferrersRegistry::start_with(ReferrersOptions {
                            time_limit: limit,
                            ..ReferrersOptions::default()
                        });
                        let place = Place::behind_proxy(r.addr(), limit);
                        registry = Some(Box::new(r));
                        place
                    }
                    other => bail!("SCALE_STORES: unknown store {other:?}"),
                };
                let started = Instant::now();
                let row = rt.block_on(one(&place, n, merkle));
                drop(registry);
                let row = match row {
                    Ok(r) => r,
                    Err(e) => {
                        println!(
                            "| {store} | {form} | {n} | {} | – | FAILED after {:.0} s: {e:#} |",
                            bins_for(n),
                            started.elapsed().as_secs_f64()
                        );
                        continue;
                    }
                };
                for (name, op) in &row.op {
                    println!(
                        "| {store} | {form} | {n} | {} | {:.1} | {name} | {} | {} | {} | {} | {:.2} | {:.1} |",
                        row.bins,
                        row.generate_s,
                        fmt_opt(op.http_requests),
                        fmt_opt(op.http_bytes),
                        fmt_opt(op.store_calls),
                        fmt_opt(op.metadata_bytes),
                        op.seconds,
                        op.max_rss_kib as f64 / 1024.0
                    );
                }
            }
        }
    }
    Ok(())
}
