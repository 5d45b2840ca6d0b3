//! The writer commands: `init`, `publish`, `sign`, `yank`, `delegate`. Each parses its
//! flags, calls `ocituf-writer`, and prints what happened.

use ocituf_resolver::{ErrorKind, ImageReference, RepositoryReference, TrustPolicy};
use ocituf_tuf::crypto::PublicKey;
use ocituf_writer::delegate::{DelegateRequest, HashBins};
use ocituf_writer::init::InitRequest;
use ocituf_writer::online::OnlineKeys;
use ocituf_writer::sign::{Signing, Written};
use ocituf_writer::wait::{until, Seen, Want, Watch};
use ocituf_writer::{keys, MetaRepo, Pin, State};
use time::OffsetDateTime;

use super::Context;
use crate::cli::{DelegateArgs, InitArgs, PublishArgs, SignArgs};
use crate::failure::{fail, ResultExt as _};
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

/// The metadata repository and root-of-trust name for an image, and the pinned root to
/// check its chain against: explicit `--repo`/`--name` (pin from `--root` or the policy entry
/// for them, see [`crate::pin::resolve`]), or the trust policy entry that covers the image.
pub fn repo_for_image(
    ctx: &Context,
    image: &ImageReference,
    a: &SignArgs,
) -> anyhow::Result<(RepositoryReference, String, Option<Pin>)> {
    if let (Some(r), Some(n)) = (&a.repo, &a.name) {
        let repo = RepositoryReference::parse(r)?;
        let pin = crate::pin::resolve(ctx, &repo, n, &a.pin)?;
        return Ok((repo, n.clone(), pin));
    }
    let policy = TrustPolicy::load(&ctx.policy_file)?;
    let entry = policy.lookup(image).map_err(|e| {
        crate::failure::wrap(
            anyhow::Error::new(e),
            ErrorKind::Config,
            format!("no metadata repository for {image}: pass --repo and --name, or add a trust policy entry"),
        )
    })?;
    let pin = if a.pin.root.is_some() {
        crate::pin::resolve(ctx, &entry.repository, &entry.root_of_trust, &a.pin)?
    } else {
        match crate::pin::of_entry(entry)? {
            Some(p) => Some(p),
            None => crate::pin::resolve(ctx, &entry.repository, &entry.root_of_trust, &a.pin)?,
        }
    };
    Ok((entry.repository.clone(), entry.root_of_trust.clone(), pin))
}

/// The roles a write changed, for messages: `"app-3" version 4 and "app-9" version 2`.
fn roles_written(w: &Written) -> String {
    w.roles
        .iter()
        .map(|r| format!("{:?} version {}", r.role, r.version))
        .collect::<Vec<_>>()
        .join(" and ")
}

pub async fn sign(ctx: &Context, a: &SignArgs, yank: bool) -> anyhow::Result<()> {
    let image = ImageReference::parse(&a.image)?;
    let Some(tag) = image.tag.clone() else {
        return Err(fail(
            ErrorKind::Config,
            format!("{image} has no tag: sign and yank work on tags (acme/app:1.4); the digest name is signed with it"),
        ));
    };
    let (repo_ref, name, pin) = repo_for_image(ctx, &image, a)?;
    let repo = open_repo(ctx, &repo_ref, &name)?;
    let signers = load_signers(&a.keys)?;
    let now = OffsetDateTime::now_utc();
    let who = Signing {
        keys: &signers,
        role: a.role.as_deref(),
        expires: expiry("expires", &a.expires, now)?,
    };
    let repository = image.repo.repository.as_str();
    let state = State::load(&repo, pin.as_ref()).await?;

    if yank {
        let w = ocituf_writer::sign::yank_image(&repo, &state, repository, &tag, &who).await?;
        for warning in &w.warnings {
            eprintln!("warning: {warning}");
        }
        if w.roles.is_empty() {
            outln!("{image} is not signed: nothing to yank");
        } else if a.wait {
            outln!("yanked {image} from role {}", roles_written(&w));
            let watch = watch(ctx, &repo_ref, &name, pin.as_ref())?;
            let timeout = wait_timeout(a)?;
            if let Seen::Refused(why) = until(&watch, &image, &Want::Refused, timeout).await? {
                outln!("clients now refuse it: {why}");
            }
        } else {
            outln!(
                "yanked {image} from role {}; run `ocituf publish` to make it visible to clients",
                roles_written(&w)
            );
        }
        return Ok(());
    }

    let store = ocituf_resolver::store::open_with(&image.repo, &ctx.registry)?;
    let manifest = ocituf_writer::sign::image_manifest(&store, &image).await?;
    let w =
        ocituf_writer::sign::sign_image(&repo, &state, repository, &tag, &manifest, &who).await?;
    for warning in &w.warnings {
        eprintln!("warning: {warning}");
    }
    outln!("{}", image.with_digest(manifest.digest.clone()));
    for r in &w.roles {
        if let Some((content, n, t)) = &r.pending {
            outln!(
                "role {:?} version {} is pending: {n}/{t} signatures; content {content}; other maintainers run `ocituf cosign --role {} --expect {content}`",
                r.role, r.version, r.role
            );
        }
    }
    if !a.wait {
        eprintln!(
            "signed into role {} of {name:?}; run `ocituf publish` (or let the online signer) to make it visible to clients",
            roles_written(&w)
        );
        return Ok(());
    }
    if let Some(r) = w.roles.iter().find(|r| r.pending.is_some()) {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "--wait: role {:?} version {} waits for more signatures (see above), so clients \
                 cannot see the image until other maintainers co-sign; run `ocituf sign --wait` \
                 again after that, or drop --wait",
                r.role, r.version
            ),
        ));
    }
    let watch = watch(ctx, &repo_ref, &name, pin.as_ref())?;
    let timeout = wait_timeout(a)?;
    if let Seen::Signed(v) = until(
        &watch,
        &image,
        &Want::Signed(manifest.digest.clone()),
        timeout,
    )
    .await?
    {
        eprintln!(
            "visible to clients: timestamp version {} lists role {:?} version {} with it",
            v.versions.get("timestamp").copied().unwrap_or(0),
            v.role,
            v.role_version
        );
    }
    Ok(())
}

/// `--wait-timeout` as a duration.
fn wait_timeout(a: &SignArgs) -> anyhow::Result<std::time::Duration> {
    ocituf_writer::when::parse_duration(&a.wait_timeout)
        .filter(|d| d.is_positive())
        .and_then(|d| std::time::Duration::try_from(d).ok())
        .ok_or_else(|| {
            fail(
                ErrorKind::Config,
                format!(
                    "--wait-timeout {:?} is not a duration (30s, 10m, 1h)",
                    a.wait_timeout
                ),
            )
        })
}

/// How `--wait` looks at the image: as a client pinned to the same root.
fn watch<'a>(
    ctx: &'a Context,
    repo_ref: &'a RepositoryReference,
    name: &'a str,
    pin: Option<&'a Pin>,
) -> anyhow::Result<Watch<'a>> {
    let pin = pin.ok_or_else(|| {
        fail(
            ErrorKind::Config,
            "--wait needs a pinned root (--root FILE or a trust policy entry with one) to look as a client would".to_owned(),
        )
    })?;
    Ok(Watch {
        repository: repo_ref,
        name,
        pin,
        registry: ctx.registry.clone(),
        cache_dir: &ctx.cache_dir,
    })
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
