//! `ocituf bundle import`: verify a bundle from the pinned root, check every blob of every
//! image, then push the metadata and the images into another registry (or layout).

use std::path::Path;

use ocituf_oci::{ArtifactStore as _, LayoutStore, ManifestRef};
use ocituf_resolver::{AnyStore, ErrorKind, Location, RepositoryReference};

use super::copy::{copy_image, Copied};
use super::export::{signed_digest, write_metadata};
use super::open;
use super::verified::load_verified;
use super::{BundledImage, Description};
use crate::error::{fail, Result};
use crate::pin::Pin;
use crate::progress::Progress;

/// What to import.
#[derive(Debug)]
pub struct ImportRequest<'a> {
    /// The bundle directory (`ocituf bundle export --out`).
    pub bundle: &'a Path,
    /// Where to push: a registry host (`registry-b.example.com`) or a layout directory. The
    /// metadata and the images keep their repository paths, so target names still match.
    pub to: &'a Location,
    pub pin: &'a Pin,
    pub registry: &'a ocituf_oci::RegistryOptions,
    pub progress: &'a Progress,
}

/// What was imported.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The metadata repository written (`registry-b.example.com/acme/tuf`).
    pub metadata: RepositoryReference,
    pub root_of_trust: String,
    pub role_versions: usize,
    pub versions: std::collections::BTreeMap<&'static str, u64>,
    /// Each image as pushed (`registry-b/acme/app:1.4@sha256:…`) and what it moved.
    pub images: Vec<(String, Copied)>,
}

/// Import the bundle `req.bundle` into `req.to`.
///
/// # Errors
/// `Refused` when the bundle's metadata fails verification from the pin (another root of
/// trust, a tampered or rolled-back file), an image is not signed or a blob is tampered,
/// or the destination already has newer metadata of this root of trust; `Expired` for
/// expired metadata; `Config` for a malformed bundle; `Network` when the destination fails.
///
/// # Security
/// Nothing is pushed before the whole bundle verified: the metadata from the pin, each
/// image against its signed digest, every blob against its digest. The timestamp is pushed
/// last, so clients of the destination never see a timestamp whose files are missing.
pub async fn import(req: &ImportRequest<'_>) -> Result<Imported> {
    let description = Description::read(req.bundle)?;
    let name = description.root_of_trust.clone();
    let bundle_meta = AnyStore::Layout(layout(req.bundle, &description.metadata_repository)?);
    req.progress.note(format_args!(
        "verifying the bundle {} (root of trust {:?})",
        req.bundle.display(),
        name.as_str()
    ));
    let verified = load_verified(&bundle_meta, &name, req.pin, "the bundle").await?;

    // Every image: signed, and every manifest and blob present with its digest.
    let mut images = Vec::new();
    for image in &description.images {
        let reference = reference_in(req.bundle, image);
        let (_, digest, length) = signed_digest(&verified, &reference, name.as_str())?;
        if digest != image.digest {
            return Err(fail(
                ErrorKind::Refused,
                format!(
                    "the bundle says {} is {}, but it is signed as {digest}: tampered description",
                    image.target(),
                    image.digest
                ),
            ));
        }
        let from = AnyStore::Layout(layout(req.bundle, &image.repository)?);
        copy_image(&from, None, &digest, length, None).await?;
        images.push((image, from, digest, length));
    }

    let metadata = RepositoryReference {
        location: req.to.clone(),
        repository: description.metadata_repository.clone(),
    };
    let dest = open(&metadata, req.registry)?;
    refuse_rollback(&dest, &name, req.pin, &verified).await?;

    req.progress.note(format_args!(
        "pushing {} images to {}",
        images.len(),
        req.to
    ));
    let mut pushed = Vec::new();
    for (image, from, digest, length) in images {
        let repo = RepositoryReference {
            location: req.to.clone(),
            repository: image.repository.clone(),
        };
        let to = open(&repo, req.registry)?;
        let copied = copy_image(&from, Some(&to), &digest, length, image.tag.as_deref()).await?;
        let shown = match &image.tag {
            Some(t) => format!("{repo}:{t}@{digest}"),
            None => format!("{repo}@{digest}"),
        };
        pushed.push((shown, copied));
    }
    req.progress
        .note(format_args!("pushing the metadata to {metadata}"));
    let role_versions = write_metadata(&dest, &name, &verified).await?;

    // What clients of the destination will see: it verifies from the pin, and serves each
    // tag as signed.
    let after = load_verified(&dest, &name, req.pin, "the destination").await?;
    for image in &description.images {
        if let Some(tag) = &image.tag {
            let repo = RepositoryReference {
                location: req.to.clone(),
                repository: image.repository.clone(),
            };
            let to = open(&repo, req.registry)?;
            let served = to.head_manifest(ManifestRef::Tag(tag)).await.map_err(|e| {
                crate::Error::wrap(
                    ErrorKind::Network,
                    format!("could not read back {repo}:{tag}"),
                    e,
                )
            })?;
            if served.map(|d| d.digest) != Some(image.digest.clone()) {
                return Err(fail(
                    ErrorKind::Refused,
                    format!(
                        "after import {repo}:{tag} is not {}: another writer moved it",
                        image.digest
                    ),
                ));
            }
        }
    }
    Ok(Imported {
        metadata,
        root_of_trust: name.as_str().to_owned(),
        role_versions,
        versions: after.versions(),
        images: pushed,
    })
}

/// Refuse to import over newer metadata of the same root of trust, and over another root of
/// trust of the same name. An empty destination, or one whose metadata no longer verifies
/// (expired: the usual reason to import), takes the bundle.
async fn refuse_rollback(
    dest: &AnyStore,
    name: &ocituf_oci::RootOfTrustName,
    pin: &Pin,
    bundle: &super::Verified,
) -> Result<()> {
    let current = match load_verified(dest, name, pin, "the destination").await {
        Ok(v) => v,
        Err(e) if e.kind() == ErrorKind::Refused && e.message.starts_with("root mismatch") => {
            return Err(e)
        }
        Err(e) if e.kind() == ErrorKind::Network => return Err(e),
        Err(_) => return Ok(()),
    };
    let theirs = current.versions();
    let ours = bundle.versions();
    for role in ["root", "timestamp", "snapshot"] {
        let (have, bring) = (theirs.get(role), ours.get(role));
        if let (Some(have), Some(bring)) = (have, bring) {
            if bring < have {
                return Err(fail(
                    ErrorKind::Refused,
                    format!(
                        "rollback: {} already has {role} version {have} of root of trust {:?}, newer than the bundle's version {bring}; nothing was pushed (export a newer bundle)",
                        dest.location(),
                        name.as_str()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The image as a reference into the bundle (for the signed-digest check).
fn reference_in(bundle: &Path, image: &BundledImage) -> ocituf_resolver::ImageReference {
    ocituf_resolver::ImageReference {
        repo: RepositoryReference {
            location: Location::Layout(bundle.to_owned()),
            repository: image.repository.clone(),
        },
        tag: image.tag.clone(),
        digest: Some(image.digest.clone()),
    }
}

fn layout(dir: &Path, repository: &str) -> Result<LayoutStore> {
    if !dir.join("oci-layout").is_file() {
        return Err(fail(
            ErrorKind::Config,
            format!("{} is not a bundle (no oci-layout file)", dir.display()),
        ));
    }
    LayoutStore::new(dir, repository).map_err(|e| {
        crate::Error::wrap(
            ErrorKind::Config,
            format!("could not read the bundle {}", dir.display()),
            e,
        )
    })
}
