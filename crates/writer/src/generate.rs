//! Large repositories for tests and benchmarks (issue 10): many images with realistic OCI
//! target entries (manifest lengths, media types of images and indexes, sha256 digests),
//! deterministic from a seed, signed with [`crate::sign::sign_images`] in batches. No image
//! is pushed: the entries are what metadata size and write cost depend on, and a verifying
//! pull of one of them is refused (the registry has no such manifest), as it should be.

use std::collections::BTreeMap;

use ocituf_oci::image::{digest_target, tag_target};
use ocituf_oci::Digest;
use ocituf_tuf::crypto::Signer;
use ocituf_tuf::metadata::{Role as _, TargetFile, Targets, SPEC_VERSION};
use time::OffsetDateTime;

use crate::authority::{sign_envelope, Authority};
use crate::edit::to_value;
use crate::error::{fail, Result, ResultExt as _};
use crate::pin::Pin;
use crate::repo::{Found, MetaRepo};
use crate::sign::{ImageManifest, ImageToSign};
use crate::ErrorKind;

/// The media types of what CI pushes, in the proportions the generator uses (3 in 4 single
/// manifests, 1 in 4 multi-arch indexes).
const MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
];

/// `repositories` repositories `ORG/svc-NNNNN` with `tags` tags each (`1.J.0`): one
/// [`ImageToSign`] per tag, with a manifest digest and length unique to (seed, repository,
/// tag). The same arguments give the same images.
pub fn synthetic_images(
    org: &str,
    repositories: usize,
    tags: usize,
    seed: u64,
) -> Vec<ImageToSign> {
    let mut out = Vec::with_capacity(repositories * tags);
    for r in 0..repositories {
        for t in 0..tags {
            let id = format!("{seed}/{org}/{r}/{t}");
            let digest = Digest::of(id.as_bytes());
            // Manifest sizes of real images: a few hundred bytes to a few KiB.
            let hex = digest.hex();
            let n = u64::from_str_radix(&hex[..4], 16).unwrap_or(0);
            let media_type = MEDIA_TYPES[usize::from(hex.as_bytes()[4] % 4)];
            out.push(ImageToSign {
                repository: format!("{org}/svc-{r:05}"),
                tag: format!("1.{t}.0"),
                manifest: ImageManifest {
                    digest,
                    length: 400 + n % 3000,
                    media_type: media_type.to_owned(),
                },
            });
        }
    }
    out
}

/// Sign `images` (both names of each, as [`crate::sign::sign_images`] writes them) straight
/// into the succinct hash bins that `team_role` delegates to, one version 1 per bin, pushed
/// by `concurrency` tasks; returns each bin's version, and the newest `targets` and
/// `team_role` it read (a fresh delegation may not be in any snapshot yet), for
/// [`crate::online::publish_changes`]. For building large repositories quickly: it reads
/// no bin and assumes none has a version yet (a fresh delegation).
///
/// # Errors
/// A configuration error when `team_role` is not delegated from `targets` or delegates to
/// no bins; registry failures.
pub async fn populate_bins(
    repo: &MetaRepo,
    pin: Option<&Pin>,
    team_role: &str,
    bin_key: &dyn Signer,
    images: &[ImageToSign],
    expires: OffsetDateTime,
    concurrency: usize,
) -> Result<BTreeMap<String, Found>> {
    let (root, _) = repo.root_chain(pin).await?;
    let top_auth = Authority::of_top_level(&root, "targets")?;
    let no_role = || {
        fail(
            ErrorKind::Config,
            format!("{team_role:?} is not delegated from targets to hash bins"),
        )
    };
    let top_found = repo
        .newest("targets", &top_auth)
        .await?
        .ok_or_else(no_role)?;
    let top = Targets::from_signed(&top_found.envelope.signed)
        .config(|| "targets is malformed".to_owned())?;
    let d = top.delegations.as_ref().ok_or_else(no_role)?;
    let delegated = d
        .roles
        .iter()
        .flatten()
        .find(|r| r.name == team_role)
        .ok_or_else(no_role)?;
    let team_auth = Authority {
        keys: d.keys.clone(),
        keyids: delegated.keyids.clone(),
        threshold: delegated.threshold,
    };
    let team_found = repo
        .newest(team_role, &team_auth)
        .await?
        .ok_or_else(no_role)?;
    let team = Targets::from_signed(&team_found.envelope.signed)
        .config(|| format!("{team_role} is malformed"))?;
    let succinct = team
        .delegations
        .as_ref()
        .and_then(|d| d.succinct_roles.clone())
        .ok_or_else(no_role)?;

    let mut bins: BTreeMap<String, BTreeMap<String, TargetFile>> = BTreeMap::new();
    for i in images {
        let file = i.manifest.target_file();
        for name in [
            tag_target(&i.repository, &i.tag),
            digest_target(&i.repository, &i.manifest.digest),
        ] {
            bins.entry(succinct.role_for_target(&name))
                .or_default()
                .insert(name, file.clone());
        }
    }
    let mut signed = Vec::with_capacity(bins.len());
    for (bin, targets) in bins {
        let t = Targets {
            spec_version: SPEC_VERSION.to_owned(),
            version: 1,
            expires,
            targets,
            delegations: None,
            extra: BTreeMap::new(),
        };
        let (envelope, bytes) = sign_envelope(to_value(&t)?, &[bin_key], Vec::new())?;
        signed.push((bin, envelope, bytes));
    }
    let mut found = BTreeMap::from([
        ("targets".to_owned(), top_found),
        (team_role.to_owned(), team_found),
    ]);
    found.extend(push_all(repo, signed, concurrency).await?);
    Ok(found)
}

/// Push signed version 1 of each role, by `concurrency` tasks.
async fn push_all(
    repo: &MetaRepo,
    mut signed: Vec<(String, ocituf_tuf::metadata::Envelope, Vec<u8>)>,
    concurrency: usize,
) -> Result<BTreeMap<String, Found>> {
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = signed.len().div_ceil(concurrency.max(1)).max(1);
    while !signed.is_empty() {
        let chunk: Vec<_> = signed.drain(..per_task.min(signed.len())).collect();
        let publisher = ocituf_oci::Publisher::new(repo.store.clone(), repo.name.clone());
        tasks.spawn(async move {
            let mut out = Vec::with_capacity(chunk.len());
            for (bin, envelope, bytes) in chunk {
                let pushed = publisher.push(&bin, &bytes, None).await;
                out.push((bin, envelope, bytes, pushed));
            }
            out
        });
    }
    let mut found = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let done =
            done.map_err(|e| fail(ErrorKind::Network, format!("a push task failed: {e}")))?;
        for (bin, envelope, bytes, pushed) in done {
            let pushed = pushed.map_err(|e| {
                crate::Error::wrap(ErrorKind::Network, format!("could not push bin {bin:?}"), e)
            })?;
            found.insert(
                bin,
                Found {
                    envelope,
                    bytes,
                    version: 1,
                    manifest: pushed.manifest_digest,
                    parent: None,
                },
            );
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_images_and_every_digest_is_unique() {
        let a = synthetic_images("acme", 20, 5, 7);
        let b = synthetic_images("acme", 20, 5, 7);
        assert_eq!(a.len(), 100);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (&x.repository, &x.tag, &x.manifest.digest),
                (&y.repository, &y.tag, &y.manifest.digest)
            );
        }
        let digests: std::collections::BTreeSet<_> = a.iter().map(|i| &i.manifest.digest).collect();
        assert_eq!(digests.len(), 100);
        assert!(a.iter().all(|i| (400..3400).contains(&i.manifest.length)));
        let other = synthetic_images("acme", 20, 5, 8);
        assert_ne!(a[0].manifest.digest, other[0].manifest.digest);
    }
}
