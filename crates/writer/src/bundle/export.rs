//! `ocituf bundle export`: a root of trust's verified metadata and chosen signed images into
//! a new OCI image layout.

use std::path::Path;

use ocituf_oci::{Digest, LayoutStore, Publisher, RootOfTrustName};
use ocituf_resolver::{AnyStore, ErrorKind, ImageReference, RepositoryReference};

use super::copy::{copy_image, Copied};
use super::open;
use super::verified::{load_verified, Verified};
use super::{BundledImage, Description, MAX_IMAGES};
use crate::error::{fail, Result};
use crate::pin::Pin;
use crate::progress::Progress;

/// What to export.
#[derive(Debug)]
pub struct ExportRequest<'a> {
    /// The metadata repository (`registry.example.com/acme/tuf`).
    pub metadata: &'a RepositoryReference,
    pub name: &'a str,
    pub pin: &'a Pin,
    /// Images by tag, digest, or tag and digest; each must be signed.
    pub images: &'a [ImageReference],
    /// A directory that does not exist yet or is empty.
    pub out: &'a Path,
    pub registry: &'a ocituf_oci::RegistryOptions,
    pub progress: &'a Progress,
}

/// One exported image.
#[derive(Debug, Clone)]
pub struct ExportedImage {
    pub image: ImageReference,
    pub target: String,
    pub digest: Digest,
    pub copied: Copied,
}

/// What was exported.
#[derive(Debug, Clone)]
pub struct Exported {
    /// Role versions written (roots, targets roles, snapshot, timestamp).
    pub role_versions: usize,
    pub versions: std::collections::BTreeMap<&'static str, u64>,
    pub images: Vec<ExportedImage>,
}

/// Export the root of trust `req.name` of `req.metadata` (verified from `req.pin`) and the
/// images into a new bundle at `req.out`, then verify the bundle as an importer would.
///
/// # Errors
/// `Config` when `out` is not new or empty; `Refused` when the metadata fails a check or an
/// image is not signed (or the registry serves other bytes for its signed digest); `Expired`
/// when metadata expired; `Network` when a registry fails.
///
/// # Security
/// Only what the pinned root of trust verifies is written, and only signed images, copied
/// by their signed digest (a tag the registry moved is not followed).
pub async fn export(req: &ExportRequest<'_>) -> Result<Exported> {
    if req.images.len() > MAX_IMAGES {
        return Err(fail(
            ErrorKind::Config,
            format!("at most {MAX_IMAGES} images per bundle"),
        ));
    }
    check_new_dir(req.out)?;
    let name = RootOfTrustName::parse(req.name).map_err(|e| {
        crate::Error::wrap(
            ErrorKind::Config,
            format!("{:?} cannot be a root-of-trust name", req.name),
            e,
        )
    })?;
    let source = open(req.metadata, req.registry)?;
    req.progress.note(format_args!(
        "verifying root of trust {:?} in {}",
        req.name, req.metadata
    ));
    let verified = load_verified(&source, &name, req.pin, "the source repository").await?;

    // Every image is checked before anything is written.
    let mut signed = Vec::new();
    for image in req.images {
        let (target, digest, length) = signed_digest(&verified, image, req.name)?;
        signed.push((image, target, digest, length));
    }

    let bundle_meta = AnyStore::Layout(layout(req.out, &req.metadata.repository)?);
    let role_versions = write_metadata(&bundle_meta, &name, &verified).await?;
    let mut images = Vec::new();
    let mut described = Vec::new();
    for (image, target, digest, length) in signed {
        req.progress.note(format_args!("copying {image}"));
        let from = open(&image.repo, req.registry)?;
        let to = AnyStore::Layout(layout(req.out, &image.repo.repository)?);
        let copied = copy_image(&from, Some(&to), &digest, length, image.tag.as_deref()).await?;
        described.push(BundledImage {
            repository: image.repo.repository.clone(),
            tag: image.tag.clone(),
            digest: digest.clone(),
        });
        images.push(ExportedImage {
            image: image.clone(),
            target,
            digest,
            copied,
        });
    }
    Description {
        root_of_trust: name.clone(),
        metadata_repository: req.metadata.repository.clone(),
        images: described,
    }
    .write(req.out)?;
    // What an importer will see: the bundle alone verifies from the pin.
    load_verified(&bundle_meta, &name, req.pin, "the new bundle").await?;
    Ok(Exported {
        role_versions,
        versions: verified.versions(),
        images,
    })
}

/// The signed target, digest and length of `image` (its tag's target, else its digest's),
/// refusing an image nobody signed or whose reference carries another digest.
pub(crate) fn signed_digest(
    verified: &Verified,
    image: &ImageReference,
    root_of_trust: &str,
) -> Result<(String, Digest, u64)> {
    let repository = &image.repo.repository;
    let target = match (&image.tag, &image.digest) {
        (Some(tag), _) => ocituf_oci::image::tag_target(repository, tag),
        (None, Some(d)) => ocituf_oci::image::digest_target(repository, d),
        (None, None) => {
            return Err(fail(
                ErrorKind::Config,
                format!("{image} has neither tag nor digest"),
            ))
        }
    };
    let info = verified.target(&target)?.ok_or_else(|| {
        fail(
            ErrorKind::Refused,
            format!(
                "{image} is not signed: no role of root of trust {root_of_trust:?} trusted for {target} lists it"
            ),
        )
    })?;
    let digest = info
        .hashes
        .get("sha256")
        .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok())
        .ok_or_else(|| fail(ErrorKind::Refused, format!("{target} has no sha256 hash")))?;
    if let Some(asked) = &image.digest {
        if *asked != digest {
            return Err(fail(
                ErrorKind::Refused,
                format!("{image} is not signed: {target} is signed as {digest}, not {asked}"),
            ));
        }
    }
    Ok((target, digest, info.length))
}

/// Push every verified metadata file into `store` with the ordinary publisher (anchors,
/// tags, referrers): roots first, the timestamp last. Returns how many were pushed.
pub(crate) async fn write_metadata(
    store: &AnyStore,
    name: &RootOfTrustName,
    verified: &Verified,
) -> Result<usize> {
    let publisher = Publisher::new(store.clone(), name.clone());
    let mut files: Vec<(&str, &[u8])> = verified
        .roots
        .iter()
        .map(|b| ("root", b.as_slice()))
        .collect();
    files.extend(
        verified
            .targets
            .iter()
            .map(|(r, b)| (r.as_str(), b.as_slice())),
    );
    files.push(("snapshot", &verified.snapshot));
    files.push(("timestamp", &verified.timestamp));
    for (role, bytes) in &files {
        publisher.push(role, bytes, None).await.map_err(|e| {
            crate::Error::wrap(
                ErrorKind::Network,
                format!(
                    "could not write role {role:?} to {}",
                    ocituf_oci::ArtifactStore::location(store)
                ),
                e,
            )
        })?;
    }
    Ok(files.len())
}

fn layout(dir: &Path, repository: &str) -> Result<LayoutStore> {
    LayoutStore::new(dir, repository).map_err(|e| {
        crate::Error::wrap(
            ErrorKind::Config,
            format!("could not use {} as a bundle", dir.display()),
            e,
        )
    })
}

/// A bundle is written into a new directory: mixing two exports would mix two states.
fn check_new_dir(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(fail(
                    ErrorKind::Config,
                    format!(
                        "{} exists and is not empty: export into a new directory",
                        dir.display()
                    ),
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::Error::wrap(
            ErrorKind::Config,
            format!("could not read {}", dir.display()),
            e,
        )),
    }
}
