//! `ocituf site REPO --out DIR`: a static web view of a root of trust (behaviour in
//! `ocituf_writer::site`).

use ocituf_resolver::{ErrorKind, RepositoryReference};
use time::OffsetDateTime;

use super::Context;
use crate::cli::SiteArgs;
use crate::failure::fail;
use crate::when::parse_duration;
use ocituf_writer::site;

pub async fn run(ctx: &Context, a: &SiteArgs) -> anyhow::Result<()> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = super::write::open_repo(ctx, &repo_ref, &a.repo.name)?;
    let warn_within = parse_duration(&a.warn_within).ok_or_else(|| {
        fail(
            ErrorKind::Config,
            format!(
                "--warn-within {:?} is not a duration (7d, 12h)",
                a.warn_within
            ),
        )
    })?;
    let images = match &a.images {
        None => None,
        Some(loc) => {
            // A location is what comes before the repository name of a reference.
            let probe = if loc.starts_with("oci:") {
                format!("{loc}:probe")
            } else {
                format!("{loc}/probe")
            };
            let r = RepositoryReference::parse(&probe).map_err(|e| {
                fail(
                    ErrorKind::Config,
                    format!("--images {loc:?} is not a registry host or oci:DIR: {e}"),
                )
            })?;
            Some(r.location)
        }
    };
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    let model = site::collect(
        &repo,
        &repo_ref,
        &site::CollectOptions {
            pin: pin.as_ref(),
            now: OffsetDateTime::now_utc(),
            warn_within,
            images,
            registry: ctx.registry.clone(),
        },
    )
    .await?;
    for f in site::write(&a.out, &model)? {
        outln!("wrote {}", f.display());
    }
    outln!(
        "{} roles, {} signed images, {} pending roots, {} pending targets versions",
        model.roles.len(),
        model.images.len(),
        model.pending.len(),
        model.pending_targets.len()
    );
    Ok(())
}
