//! `ocituf bundle export|import` and `verify --offline`: parse, call `ocituf_writer::bundle`
//! or `Resolver::resolve_offline`, print.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use ocituf_resolver::{
    ErrorKind, ExpiryPolicy, ImageReference, Location, Offline, RepositoryReference, Resolver,
    VerifiedDigest,
};
use ocituf_writer::bundle;

use super::Context;
use crate::cli::{Output, PinArgs, RepoArgs};
use crate::failure::fail;

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write a root of trust's metadata and signed images into a new OCI layout (air gap)
    #[command(after_help = "\
Only what the pinned root verifies is written, and only signed images (by their signed
digest; index children and every blob included). Carry the directory across the air gap,
then `ocituf bundle import` it or verify from it with `ocituf verify --offline --bundle DIR`.

Examples:
  ocituf bundle export registry-a.example.com/acme/tuf --name acme --root acme.root.json \\
      --image registry-a.example.com/acme/app:1.4 --image registry-a.example.com/acme/db@sha256:… \\
      --out ./acme-bundle")]
    Export(ExportArgs),

    /// Push a bundle's metadata and images into another registry, after verifying all of it
    #[command(after_help = "\
Repositories keep their paths (acme/tuf, acme/app), so images signed as acme/app:1.4 verify
from the new registry. The bundle is verified from the pinned root first (--root, else the
trust policy entry for the destination's metadata repository and name); nothing is pushed
when any file, image or blob fails, or when the destination already has newer metadata.

Examples:
  ocituf bundle import ./acme-bundle --to registry-b.internal --root acme.root.json
  ocituf bundle import ./acme-bundle --to oci:/srv/mirror")]
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The pinned root version 1 (`init --out-root`) [default: from the trust policy entry
    /// for this repository and name]
    #[arg(long = "root", value_name = "FILE")]
    pub root: Option<PathBuf>,
    /// An image to include: REGISTRY/REPO:TAG, …@sha256:…, or …:TAG@sha256:… (repeatable)
    #[arg(long = "image", value_name = "IMAGE")]
    pub images: Vec<String>,
    /// The new bundle directory (must not exist, or be empty)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle directory
    #[arg(value_name = "DIR")]
    pub bundle: PathBuf,
    /// Destination: a registry host (registry-b.example.com, 127.0.0.1:5000) or oci:DIR
    #[arg(long, value_name = "REGISTRY")]
    pub to: String,
    /// The pinned root version 1 [default: from the trust policy entry for the
    /// destination's metadata repository and the bundle's root-of-trust name]
    #[arg(long = "root", value_name = "FILE")]
    pub root: Option<PathBuf>,
    #[command(flatten)]
    pub output: Output,
}

/// The offline flags of `verify` and `resolve`.
#[derive(Debug, Args)]
pub struct OfflineArgs {
    /// Use only the trusted cache and --bundle: no network request at all
    #[arg(long)]
    pub offline: bool,
    /// An air-gap bundle (`ocituf bundle export --out`) to verify from
    #[arg(long, value_name = "DIR", requires = "offline")]
    pub bundle: Option<PathBuf>,
    /// DANGEROUS: with --offline, accept metadata past its expiry (a frozen or revoked state)
    #[arg(long, requires = "offline")]
    pub danger_allow_expired: bool,
}

pub async fn run(ctx: &Context, c: BundleCommand) -> anyhow::Result<()> {
    match c {
        BundleCommand::Export(a) => export(ctx, &a).await,
        BundleCommand::Import(a) => import(ctx, &a).await,
    }
}

fn progress() -> ocituf_writer::Progress {
    ocituf_writer::Progress::to(|line| crate::progress::note(format_args!("{line}")))
}

fn pin(
    ctx: &Context,
    repo: &RepositoryReference,
    name: &str,
    root: Option<&PathBuf>,
) -> anyhow::Result<ocituf_writer::Pin> {
    let args = PinArgs {
        root: root.cloned(),
        danger_trust_on_first_use: false,
    };
    crate::pin::resolve(ctx, repo, name, &args)?.ok_or_else(|| {
        fail(
            ErrorKind::Config,
            "a bundle needs a pinned root (--root FILE)",
        )
    })
}

async fn export(ctx: &Context, a: &ExportArgs) -> anyhow::Result<()> {
    let repo = RepositoryReference::parse(&a.repo.repo)?;
    let pin = pin(ctx, &repo, &a.repo.name, a.root.as_ref())?;
    let images = a
        .images
        .iter()
        .map(|i| ImageReference::parse(i))
        .collect::<Result<Vec<_>, _>>()?;
    let exported = bundle::export(&bundle::ExportRequest {
        metadata: &repo,
        name: &a.repo.name,
        pin: &pin,
        images: &images,
        out: &a.out,
        registry: &ctx.registry,
        progress: &progress(),
    })
    .await?;
    if a.output.json {
        let images: Vec<serde_json::Value> = exported
            .images
            .iter()
            .map(|i| {
                serde_json::json!({
                    "image": i.image.to_string(),
                    "target": i.target,
                    "digest": i.digest.as_str(),
                    "manifests": i.copied.manifests,
                    "blobs": i.copied.blobs,
                    "bytes": i.copied.bytes,
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "bundle": a.out.display().to_string(),
                "root_of_trust": a.repo.name,
                "role_versions": exported.role_versions,
                "versions": exported.versions,
                "images": images,
            }))?
        );
    } else {
        for i in &exported.images {
            outln!("{}@{}", i.image.repo, i.digest);
        }
        eprintln!(
            "exported root of trust {:?} ({} role versions, timestamp v{}) and {} images to {}",
            a.repo.name,
            exported.role_versions,
            exported.versions.get("timestamp").copied().unwrap_or(0),
            exported.images.len(),
            a.out.display()
        );
    }
    Ok(())
}

/// `--to`: `oci:DIR` or a registry host (no path: repositories keep theirs).
fn destination(to: &str) -> anyhow::Result<Location> {
    if let Some(dir) = to.strip_prefix("oci:") {
        if dir.is_empty() || dir.contains(':') {
            return Err(fail(
                ErrorKind::Config,
                format!("--to {to:?}: expected oci:DIR (no repository: the bundle's are kept)"),
            ));
        }
        return Ok(Location::Layout(PathBuf::from(dir)));
    }
    let probe = RepositoryReference::parse(&format!("{to}/ocituf-probe"))?;
    match probe.location {
        Location::Registry(host) if probe.repository == "ocituf-probe" => {
            Ok(Location::Registry(host))
        }
        _ => Err(fail(
            ErrorKind::Config,
            format!("--to {to:?}: expected a registry host such as registry.example.com or 127.0.0.1:5000, without a path"),
        )),
    }
}

async fn import(ctx: &Context, a: &ImportArgs) -> anyhow::Result<()> {
    let to = destination(&a.to)?;
    let description = bundle::Description::read(&a.bundle)?;
    let metadata = RepositoryReference {
        location: to.clone(),
        repository: description.metadata_repository.clone(),
    };
    let pin = pin(
        ctx,
        &metadata,
        description.root_of_trust.as_str(),
        a.root.as_ref(),
    )?;
    let imported = bundle::import(&bundle::ImportRequest {
        bundle: &a.bundle,
        to: &to,
        pin: &pin,
        registry: &ctx.registry,
        progress: &progress(),
    })
    .await?;
    if a.output.json {
        let images: Vec<serde_json::Value> = imported
            .images
            .iter()
            .map(|(image, c)| {
                serde_json::json!({"image": image, "manifests": c.manifests, "blobs": c.blobs, "bytes": c.bytes})
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "metadata": imported.metadata.to_string(),
                "root_of_trust": imported.root_of_trust,
                "role_versions": imported.role_versions,
                "versions": imported.versions,
                "images": images,
            }))?
        );
    } else {
        for (image, _) in &imported.images {
            outln!("{image}");
        }
        eprintln!(
            "imported root of trust {:?} into {} ({} role versions, timestamp v{}) and {} images",
            imported.root_of_trust,
            imported.metadata,
            imported.role_versions,
            imported.versions.get("timestamp").copied().unwrap_or(0),
            imported.images.len()
        );
    }
    Ok(())
}

/// `verify --offline` / `resolve --offline`: the trusted cache and the bundle, no network.
pub async fn resolve_offline(
    resolver: &Resolver,
    image: &ImageReference,
    a: &OfflineArgs,
) -> anyhow::Result<VerifiedDigest> {
    let expiry = if a.danger_allow_expired {
        eprintln!(
            "warning: --danger-allow-expired: expired metadata will be accepted; its signers no longer vouch for it (it may be frozen or revoked)"
        );
        ExpiryPolicy::DangerAllowExpired
    } else {
        ExpiryPolicy::Enforce
    };
    let offline = Offline {
        bundle: a.bundle.clone(),
        expiry,
    };
    let v = resolver.resolve_offline(image, &offline).await?;
    for i in &v.ignored_expiries {
        eprintln!(
            "warning: --danger-allow-expired: role {:?} expired at {} and was accepted; the trusted cache was not updated",
            i.role, i.expires
        );
    }
    if !v.manifest_checked && image.tag.is_some() {
        eprintln!("offline: {image} resolved from trusted metadata; pull it by the digest printed");
    }
    Ok(v.verified)
}
