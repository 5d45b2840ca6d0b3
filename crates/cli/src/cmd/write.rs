//! The writer commands: `init`, `publish`, `delegate` (`sign` and `yank`: sign.rs). Each parses its
//! flags, calls `ocituf-writer`, and prints what happened.

use ocituf_resolver::{ErrorKind, RepositoryReference};
use ocituf_tuf::crypto::PublicKey;
use ocituf_writer::delegate::{DelegateRequest, HashBins};
use ocituf_writer::init::InitRequest;
use ocituf_writer::online::OnlineKeys;
use ocituf_writer::{keys, MetaRepo};
use time::OffsetDateTime;

use super::Context;
use crate::cli::{DelegateArgs, InitArgs, PublishArgs};
use crate::failure::ResultExt as _;
use crate::when::expiry;

pub(super) fn load_signers(specs: &[String]) -> anyhow::Result<Vec<keys::SigningKey>> {
    Ok(specs
        .iter()
        .map(|s| keys::load_signer(s))
        .collect::<Result<_, _>>()?)
}

/// The root of trust `name` in `repo`, with progress lines on stderr.
pub(super) fn open_repo(
    ctx: &Context,
    repo: &RepositoryReference,
    name: &str,
) -> anyhow::Result<MetaRepo> {
    Ok(
        MetaRepo::open(repo, name, &ctx.registry)?.with_progress(ocituf_writer::Progress::to(
            |line| {
                crate::progress::note(format_args!("{line}"));
            },
        )),
    )
}

pub async fn init(ctx: &Context, a: &InitArgs) -> anyhow::Result<()> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = open_repo(ctx, &repo_ref, &a.repo.name)?;
    let now = OffsetDateTime::now_utc();
    let root_keys = load_signers(&a.root_keys)?;
    let targets_keys = load_signers(&a.targets_keys)?;
    let snapshot_key = keys::load_signer(&a.snapshot_key)?;
    let timestamp_key = keys::load_signer(&a.timestamp_key)?;
    let request = InitRequest {
        root_keys: &root_keys,
        root_threshold: a.root_threshold,
        targets_keys: &targets_keys,
        targets_threshold: a.targets_threshold,
        root_expires: expiry("root-expires", &a.expiry.root_expires, now)?,
        targets_expires: expiry("targets-expires", &a.expiry.targets_expires, now)?,
        online: OnlineKeys {
            snapshot: snapshot_key.as_ref(),
            timestamp: timestamp_key.as_ref(),
            snapshot_expires: expiry("snapshot-expires", &a.expiry.snapshot_expires, now)?,
            timestamp_expires: expiry("timestamp-expires", &a.expiry.timestamp_expires, now)?,
        },
        snapshot_merkle: a.snapshot_merkle,
    };
    let root_bytes = ocituf_writer::init::init(&repo, &request).await?;

    let root_digest = ocituf_oci::Digest::of(&root_bytes);
    if let Some(out) = &a.out_root {
        std::fs::write(out, &root_bytes)
            .config(|| format!("could not write the root to {}", out.display()))?;
    }
    if a.output.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "repository": repo_ref.to_string(),
                "root_of_trust": a.repo.name,
                "root_sha256": root_digest.hex(),
                "root_file": a.out_root.as_ref().map(|p| p.display().to_string()),
            }))?
        );
    } else {
        outln!("created root of trust {:?} in {repo_ref}", a.repo.name);
        outln!("root version 1 sha256: {}", root_digest.hex());
        if let Some(out) = &a.out_root {
            outln!("root written to {} (pin it: ocituf trust add SCOPE --repo {repo_ref} --name {} --root {})", out.display(), a.repo.name, out.display());
        }
    }
    Ok(())
}

pub async fn publish(ctx: &Context, a: &PublishArgs) -> anyhow::Result<()> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = open_repo(ctx, &repo_ref, &a.repo.name)?;
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    let now = OffsetDateTime::now_utc();
    let snapshot_key = keys::load_signer(&a.snapshot_key)?;
    let timestamp_key = keys::load_signer(&a.timestamp_key)?;
    let online = OnlineKeys {
        snapshot: snapshot_key.as_ref(),
        timestamp: timestamp_key.as_ref(),
        snapshot_expires: expiry("snapshot-expires", &a.snapshot_expires, now)?,
        timestamp_expires: expiry("timestamp-expires", &a.timestamp_expires, now)?,
    };
    let p = ocituf_writer::online::publish(&repo, pin.as_ref(), &online).await?;
    outln!(
        "published snapshot version {} and timestamp version {} of {:?} ({} targets roles)",
        p.snapshot_version,
        p.timestamp_version,
        a.repo.name,
        p.roles.len()
    );
    Ok(())
}

pub async fn delegate(ctx: &Context, a: &DelegateArgs) -> anyhow::Result<()> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = open_repo(ctx, &repo_ref, &a.repo.name)?;
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    let now = OffsetDateTime::now_utc();
    let expires = expiry("expires", &a.expires, now)?;
    let signers = load_signers(&a.signing_keys)?;
    let team: Vec<PublicKey> = a
        .keys
        .iter()
        .map(|k| keys::load_public(k))
        .collect::<Result<_, _>>()?;
    // The team role delegates to its bins; making that version needs the team's keys.
    let team_signers = match a.hash_bins {
        Some(_) => load_signers(&a.keys).map_err(|e| {
            crate::failure::wrap(e, ErrorKind::Config, "--hash-bins needs the team's private keys as --key (they sign the role that delegates to the bins)")
        })?,
        None => Vec::new(),
    };
    let request = DelegateRequest {
        from: &a.from,
        role: &a.role,
        keys: &team,
        threshold: a.threshold,
        terminating: a.terminating,
        paths: &a.paths,
        signing_keys: &signers,
        expires,
        hash_bins: a.hash_bins.map(|count| HashBins {
            count,
            team_keys: &team_signers,
        }),
    };
    let d = ocituf_writer::delegate::delegate(&repo, pin.as_ref(), &request).await?;
    outln!(
        "delegated {} to role {:?} ({} of {} keys) in {:?} version {}",
        d.paths.join(", "),
        a.role,
        a.threshold,
        d.keyids.len(),
        a.from,
        d.from_version
    );
    if let (Some(bins), Some(v)) = (a.hash_bins, d.bins_version) {
        outln!(
            "role {:?} version {v} delegates to {bins} hash bins {}-…",
            a.role,
            a.role
        );
    }
    Ok(())
}
