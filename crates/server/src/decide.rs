//! The decisions: which manifests the proxy serves, and the refusals it answers instead.
//!
//! - A manifest by tag is served only when the bytes the upstream serves for the tag have
//!   the sha256 and length that the root of trust signed for `repository:tag`.
//! - A manifest by digest only when `repository@digest` is signed with that digest, or the
//!   digest is listed by a signed index this proxy served for the repository (a platform
//!   manifest, docs/oci-mapping.md §7) and that index is still signed.
//! - Images no root of trust covers: by the mode of their scope ([`Mode`]).
//!
//! The bytes served are the bytes hashed: the upstream is asked once per request, and what
//! it answered is checked and passed on, so the tag cannot move between check and use.

use std::sync::Arc;

use ocituf_oci::image::{index_entries, is_index};
use ocituf_oci::registry::RegistryError;
use ocituf_oci::{ArtifactStore as _, Digest, Manifest, ManifestRef, RegistryRepo};
use ocituf_resolver::{Error, ImageReference, SignedTarget};

use crate::config::Mode;
use crate::roots::{ListedBy, Slot};
use crate::Proxy;

/// Largest manifest read for an image no root of trust covers (distribution's own cap).
const MAX_UNSIGNED_MANIFEST: u64 = 4 * 1024 * 1024;

/// An answer other than the manifest: an OCI error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The OCI error code (`DENIED`, `MANIFEST_UNKNOWN`, …).
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn denied(e: &Error) -> Self {
        let (status, code) = match e {
            Error::ImageMissing { .. } => (404, "MANIFEST_UNKNOWN"),
            // Not 503 for a network failure either: runtimes (skopeo, podman) show the
            // message of a 403 and only the status of a 503, and a pull that could not be
            // verified is refused the same way (fail closed). Kubelet retries anyway.
            _ => (403, "DENIED"),
        };
        let message = if code == "MANIFEST_UNKNOWN" {
            chain(e)
        } else {
            format!("ocituf proxy: {}", chain(e))
        };
        Refusal {
            status,
            code,
            message,
        }
    }

    /// The body of the OCI error response.
    pub fn body(&self) -> String {
        serde_json::json!({"errors": [{"code": self.code, "message": self.message}]}).to_string()
    }
}

/// An error and its sources, `: `-separated (what the CLI prints as a chain).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// How a served manifest was allowed, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// Signed under this target.
    Signed(SignedTarget),
    /// A platform manifest of a signed index.
    Platform(ListedBy),
    /// No root of trust covers it; served by its scope's mode.
    Unscoped(Mode),
}

impl Proxy {
    /// Decide a manifest request for `image` (tag or digest), fetching from `repo`.
    ///
    /// # Errors
    /// The [`Refusal`] to answer instead.
    pub async fn manifest(
        &self,
        image: &ImageReference,
        repo: &RegistryRepo,
    ) -> Result<(Manifest, Allowed), Refusal> {
        let started = std::time::Instant::now();
        let result = self.decide(image, repo).await;
        let elapsed_us = started.elapsed().as_micros();
        match &result {
            Ok((m, allowed)) => {
                self.metrics.decision(allowed);
                match allowed {
                    Allowed::Signed(s) => tracing::info!(
                        %image, digest = %m.digest, target = %s.target, role = %s.role,
                        role_version = s.role_version, elapsed_us, "served signed manifest"
                    ),
                    Allowed::Platform(l) => tracing::info!(
                        %image, digest = %m.digest, index = %l.index, target = %l.target,
                        elapsed_us, "served platform manifest of a signed index"
                    ),
                    Allowed::Unscoped(Mode::Warn) => tracing::warn!(
                        %image, digest = %m.digest, elapsed_us,
                        "served an image no root of trust covers (mode warn)"
                    ),
                    Allowed::Unscoped(mode) => tracing::info!(
                        %image, digest = %m.digest, %mode, elapsed_us,
                        "served an image no root of trust covers"
                    ),
                }
            }
            Err(r) => {
                self.metrics.refusal(r);
                tracing::warn!(%image, status = r.status, code = r.code, message = %r.message, elapsed_us, "refused");
            }
        }
        result
    }

    async fn decide(
        &self,
        image: &ImageReference,
        repo: &RegistryRepo,
    ) -> Result<(Manifest, Allowed), Refusal> {
        let Some(slot) = self.roots.slot_for(image) else {
            return self.unscoped(image, repo).await;
        };
        let deny = |e: Error| Refusal::denied(&e);
        let repository = image.repo.repository.as_str();
        // Look up under the lock, fetch without it.
        let (signed, platform) = {
            let mut root = slot
                .fresh(&self.roots.resolver, self.roots.max_age)
                .await
                .map_err(deny)?;
            let signed = root.signed(image).await.map_err(deny)?;
            let platform = match (&signed, &image.tag, &image.digest) {
                (None, None, Some(d)) => match slot.listed_by(repository, d) {
                    Some(l) => {
                        let still = root.signed_target(&l.target).await.map_err(deny)?;
                        still.filter(|s| s.digest == l.index).map(|_| l)
                    }
                    None => None,
                },
                _ => None,
            };
            (signed, platform)
        };
        if let Some(signed) = signed {
            let reference = match (&image.tag, &image.digest) {
                (Some(t), _) => ManifestRef::Tag(t),
                (None, _) => ManifestRef::Digest(&signed.digest),
            };
            if let Some(asked) = &image.digest {
                if *asked != signed.digest {
                    return Err(deny(mismatch(image, &signed, asked.clone())));
                }
            }
            let m = fetch(image, repo, reference, signed.length, &signed).await?;
            let served = Digest::of(&m.bytes);
            if served != signed.digest || m.bytes.len() as u64 != signed.length {
                return Err(deny(mismatch(image, &signed, served)));
            }
            remember_index(slot, repository, &signed.target, &signed.digest, &m);
            return Ok((m, Allowed::Signed(signed)));
        }
        if let (Some(listed), Some(digest)) = (platform, &image.digest) {
            let m = fetch_listed(image, repo, digest, &listed).await?;
            remember_index(slot, repository, &listed.target, &listed.index, &m);
            return Ok((m, Allowed::Platform(listed)));
        }
        let mut refusal = deny(Error::NotSigned {
            image: image.to_string(),
            target: image.target_name().unwrap_or_default(),
            root_of_trust: slot.entry.root_of_trust.clone(),
        });
        if image.tag.is_none() {
            refusal.message.push_str(
                "; nor is it a platform manifest of a signed index this proxy served \
                 (pull the index by its tag first)",
            );
        }
        Err(refusal)
    }

    /// An image no root of trust covers: by its scope's mode.
    async fn unscoped(
        &self,
        image: &ImageReference,
        repo: &RegistryRepo,
    ) -> Result<(Manifest, Allowed), Refusal> {
        let mode = self.config.mode_for(image);
        if mode == Mode::Enforce {
            return Err(Refusal::denied(&Error::UnknownScope {
                image: image.to_string(),
            }));
        }
        let reference = match (&image.tag, &image.digest) {
            (_, Some(d)) => ManifestRef::Digest(d),
            (Some(t), None) => ManifestRef::Tag(t),
            (None, None) => {
                return Err(Refusal {
                    status: 400,
                    code: "MANIFEST_INVALID",
                    message: format!("{image} has neither tag nor digest"),
                })
            }
        };
        match repo.get_manifest(reference, MAX_UNSIGNED_MANIFEST).await {
            Ok(Some(m)) => Ok((m, Allowed::Unscoped(mode))),
            Ok(None) => Err(missing(image)),
            Err(source) => Err(Refusal::denied(&Error::ImageFetch {
                image: image.to_string(),
                source: Box::new(source),
            })),
        }
    }

    /// Whether blobs of `image`'s repository may pass: covered by a root of trust, or by a
    /// scope whose mode is not `enforce`.
    pub fn blobs_allowed(&self, image: &ImageReference) -> Result<(), Refusal> {
        if self.roots.slot_for(image).is_some() || self.config.mode_for(image) != Mode::Enforce {
            return Ok(());
        }
        Err(Refusal::denied(&Error::UnknownScope {
            image: image.to_string(),
        }))
    }
}

fn missing(image: &ImageReference) -> Refusal {
    Refusal::denied(&Error::ImageMissing {
        image: image.to_string(),
    })
}

fn mismatch(image: &ImageReference, signed: &SignedTarget, served: Digest) -> Error {
    Error::DigestMismatch {
        image: image.to_string(),
        target: signed.target.clone(),
        role: signed.role.clone(),
        role_version: signed.role_version,
        served,
        signed: signed.digest.clone(),
    }
}

/// Fetch the manifest of a signed target, bounded by its signed length.
async fn fetch(
    image: &ImageReference,
    repo: &RegistryRepo,
    reference: ManifestRef<'_>,
    max_len: u64,
    signed: &SignedTarget,
) -> Result<Manifest, Refusal> {
    match repo.get_manifest(reference, max_len).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(missing(image)),
        Err(ocituf_oci::Error::Registry(RegistryError::BodyTooLarge { .. })) => {
            Err(Refusal::denied(&Error::ServedTooLarge {
                image: image.to_string(),
                role: signed.role.clone(),
                role_version: signed.role_version,
                length: signed.length,
                signed: signed.digest.clone(),
            }))
        }
        Err(ocituf_oci::Error::Registry(RegistryError::DigestMismatch { actual, .. })) => {
            Err(Refusal::denied(&mismatch(image, signed, actual)))
        }
        Err(source) => Err(Refusal::denied(&Error::ImageFetch {
            image: image.to_string(),
            source: Box::new(source),
        })),
    }
}

/// Fetch a platform manifest a signed index lists, bounded by the size the index gives, and
/// check it against the listed digest.
async fn fetch_listed(
    image: &ImageReference,
    repo: &RegistryRepo,
    digest: &Digest,
    listed: &ListedBy,
) -> Result<Manifest, Refusal> {
    let refuse = |served: String| {
        Refusal {
        status: 403,
        code: "DENIED",
        message: format!(
            "ocituf proxy: {image} is not signed: the signed index {} of {} lists {digest} ({} bytes), \
             the registry served {served}",
            listed.index, listed.target, listed.size
        ),
    }
    };
    match repo
        .get_manifest(ManifestRef::Digest(digest), listed.size)
        .await
    {
        Ok(Some(m)) => {
            let served = Digest::of(&m.bytes);
            if served != *digest || m.bytes.len() as u64 != listed.size {
                return Err(refuse(format!("{served} ({} bytes)", m.bytes.len())));
            }
            Ok(m)
        }
        Ok(None) => Err(missing(image)),
        Err(ocituf_oci::Error::Registry(RegistryError::BodyTooLarge { .. })) => {
            Err(refuse("a longer manifest".to_owned()))
        }
        Err(ocituf_oci::Error::Registry(RegistryError::DigestMismatch { actual, .. })) => {
            Err(refuse(actual.to_string()))
        }
        Err(source) => Err(Refusal::denied(&Error::ImageFetch {
            image: image.to_string(),
            source: Box::new(source),
        })),
    }
}

/// When verified bytes are an image index, remember the manifests it lists as allowed by
/// the signed index `index` of `target`.
fn remember_index(slot: &Arc<Slot>, repository: &str, target: &str, index: &Digest, m: &Manifest) {
    let looks_like_index = is_index(&m.media_type)
        || serde_json::from_slice::<serde_json::Value>(&m.bytes)
            .is_ok_and(|v| v.get("manifests").is_some() && v.get("config").is_none());
    if !looks_like_index {
        return;
    }
    let Ok(entries) = index_entries(&m.bytes) else {
        return;
    };
    for e in entries {
        slot.remember_platform(
            repository,
            e.descriptor.digest.clone(),
            ListedBy {
                target: target.to_owned(),
                index: index.clone(),
                size: e.descriptor.size,
            },
        );
    }
}
