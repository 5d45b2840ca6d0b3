//! `sign` and `yank`: one or many images (`--from FILE|-`), one new version per role
//! touched, and `--wait` until clients see the change.

use ocituf_resolver::{ErrorKind, ImageReference, RepositoryReference, TrustPolicy};
use ocituf_writer::sign::{ImageToSign, Signing, Written};
use ocituf_writer::wait::{until, Seen, Want, Watch};
use ocituf_writer::{Pin, State};
use time::OffsetDateTime;

use super::write::{load_signers, open_repo};
use super::Context;
use crate::cli::SignArgs;
use crate::failure::{fail, ResultExt as _};
use crate::when::expiry;

/// The images named on the command line and in `--from` (a file, or `-` for stdin).
fn image_names(a: &SignArgs) -> anyhow::Result<Vec<String>> {
    let mut names = a.images.clone();
    if let Some(from) = &a.from {
        let text = if from == "-" {
            std::io::read_to_string(std::io::stdin().lock())
                .config(|| "could not read the image list from standard input".to_owned())?
        } else {
            std::fs::read_to_string(from)
                .config(|| format!("could not read the image list {from}"))?
        };
        names.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    if names.is_empty() {
        return Err(fail(
            ErrorKind::Config,
            "no image to sign: name one or more, or list them with --from FILE".to_owned(),
        ));
    }
    Ok(names)
}

/// An image reference with the tag that sign and yank need.
fn tagged(name: &str) -> anyhow::Result<(ImageReference, String)> {
    let image = ImageReference::parse(name)?;
    let Some(tag) = image.tag.clone() else {
        return Err(fail(
            ErrorKind::Config,
            format!("{image} has no tag: sign and yank work on tags (acme/app:1.4); the digest name is signed with it"),
        ));
    };
    Ok((image, tag))
}

pub async fn sign(ctx: &Context, a: &SignArgs, yank: bool) -> anyhow::Result<()> {
    let images = image_names(a)?
        .iter()
        .map(|n| tagged(n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if yank && images.len() != 1 {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "yank takes one image, not {}: run it once per image",
                images.len()
            ),
        ));
    }
    let (first, _) = &images[0];
    let (repo_ref, name, pin) = repo_for_image(ctx, first, a)?;
    if a.repo.is_none() && images.len() > 1 {
        // Every image by the same trust policy entry's root of trust: read the policy once.
        let policy = TrustPolicy::load(&ctx.policy_file)?;
        for (image, _) in &images[1..] {
            let e = policy.lookup(image).map_err(|e| {
                crate::failure::wrap(
                    anyhow::Error::new(e),
                    ErrorKind::Config,
                    format!("no metadata repository for {image}: pass --repo and --name, or add a trust policy entry"),
                )
            })?;
            if e.repository != repo_ref || e.root_of_trust != name {
                return Err(fail(
                    ErrorKind::Config,
                    format!(
                        "{image} belongs to root of trust {:?} in {}, {first} to {name:?} in {repo_ref}: sign them in separate runs",
                        e.root_of_trust, e.repository
                    ),
                ));
            }
        }
    }
    // --wait's own arguments are checked before anything is written.
    let waiting = if a.wait {
        Some((
            watch(ctx, &repo_ref, &name, pin.as_ref())?,
            wait_timeout(a)?,
        ))
    } else {
        None
    };
    let repo = open_repo(ctx, &repo_ref, &name)?;
    let signers = load_signers(&a.keys)?;
    let now = OffsetDateTime::now_utc();
    let who = Signing {
        keys: &signers,
        role: a.role.as_deref(),
        expires: expiry("expires", &a.expires, now)?,
    };
    if yank {
        // Every role: whether another tag still names the manifest (see `yank_image`).
        let state = State::load(&repo, pin.as_ref()).await?;
        let (image, tag) = &images[0];
        let repository = image.repo.repository.as_str();
        let w = ocituf_writer::sign::yank_image(&repo, &state, repository, tag, &who).await?;
        for warning in &w.warnings {
            eprintln!("warning: {warning}");
        }
        if w.roles.is_empty() {
            outln!("{image} is not signed: nothing to yank");
        } else if let Some((watch, timeout)) = &waiting {
            outln!("yanked {image} from role {}", roles_written(&w));
            if let Seen::Refused(why) = until(watch, image, &Want::Refused, *timeout).await? {
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

    // One store per image repository, however many of its images the batch has.
    let mut stores = std::collections::BTreeMap::new();
    let mut batch = Vec::with_capacity(images.len());
    for (image, tag) in &images {
        let store = match stores.entry(image.repo.clone()) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(
                ocituf_resolver::store::open_with(&image.repo, &ctx.registry)?,
            ),
        };
        let manifest = ocituf_writer::sign::image_manifest(store, image).await?;
        batch.push(ImageToSign {
            repository: image.repo.repository.as_str().to_owned(),
            tag: tag.clone(),
            manifest,
        });
    }
    // Only the roles the delegation search visits for these names: the cost does not
    // grow with the number of hash bins or images in the root of trust.
    let names = ocituf_writer::sign::target_names(&batch);
    let state = State::load_for(&repo, pin.as_ref(), &names).await?;
    let w = ocituf_writer::sign::sign_images(&repo, &state, &batch, &who).await?;
    for warning in &w.warnings {
        eprintln!("warning: {warning}");
    }
    for ((image, _), b) in images.iter().zip(&batch) {
        outln!("{}", image.with_digest(b.manifest.digest.clone()));
    }
    for r in &w.roles {
        if let Some((content, n, t)) = &r.pending {
            outln!(
                "role {:?} version {} is pending: {n}/{t} signatures; content {content}; other maintainers run `ocituf cosign --role {} --expect {content}`",
                r.role, r.version, r.role
            );
        }
    }
    let Some((watch, timeout)) = waiting else {
        eprintln!(
            "signed into role {} of {name:?}; run `ocituf publish` (or let the online signer) to make it visible to clients",
            roles_written(&w)
        );
        return Ok(());
    };
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
    let started = std::time::Instant::now();
    for ((image, _), b) in images.iter().zip(&batch) {
        let left = timeout.saturating_sub(started.elapsed());
        let want = Want::Signed(b.manifest.digest.clone());
        if let Seen::Signed(v) = until(&watch, image, &want, left).await? {
            eprintln!(
                "visible to clients: {image} in timestamp version {} (role {:?} version {})",
                v.versions.get("timestamp").copied().unwrap_or(0),
                v.role,
                v.role_version
            );
        }
    }
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
