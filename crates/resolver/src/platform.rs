//! Image reference + platform → verified platform manifest digest (multi-arch images).
//!
//! docs/oci-mapping.md §7: for a multi-arch image the *index* digest is the signed target;
//! platform manifests are reached only through the verified index bytes. So
//! [`resolve_platform`] first verifies the image exactly as [`Resolver::resolve`] does, then
//! fetches the manifest by that verified digest, hashes the bytes as received (they must have
//! the signed sha256 and length), and only then reads the platform entries out of them.
//!
//! The platform manifest itself is not fetched here: the runtime pulls it by the digest the
//! verified index lists and checks its bytes against that digest.

use std::fmt;

use ocituf_oci::image::{index_entries, is_index, select_platform, IndexEntry, Platform};
use ocituf_oci::{ArtifactStore, Digest, ManifestRef};

use crate::error::{Error, ErrorKind};
use crate::reference::ImageReference;
use crate::resolve::{Resolver, VerifiedDigest};
use crate::store;

/// What verification proved about one platform of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPlatformDigest {
    /// The signed target: the index digest of a multi-arch image, the manifest digest of a
    /// single-arch one.
    pub verified: VerifiedDigest,
    /// The platform asked for.
    pub platform: Platform,
    /// The platform manifest digest to pull.
    pub manifest: Digest,
    /// The length the verified index lists for it (the signed length for a single-arch
    /// image).
    pub manifest_size: u64,
    /// Where [`Self::manifest`] came from.
    pub selection: Selection,
}

/// How the platform manifest was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selection {
    /// An entry of the verified image index, with the platform the index lists for it.
    Index { listed: Platform },
    /// The image is a single manifest, not an index: its digest is returned as is when its
    /// config names the platform asked for (`config`), or names none (`None`: unknown, the
    /// runtime decides). A config naming another platform is refused with
    /// [`PlatformError::NoSuchPlatform`].
    SingleArch { config: Option<Platform> },
}

/// Failures of [`resolve_platform`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// The image itself was refused or could not be resolved.
    #[error(transparent)]
    Resolve(#[from] Error),

    #[error("the registry has no manifest {digest} for {image}")]
    IndexMissing { image: String, digest: Digest },

    #[error("could not fetch the manifest {digest} of {image}")]
    IndexFetch {
        image: String,
        digest: Digest,
        #[source]
        source: Box<ocituf_oci::Error>,
    },

    #[error(
        "{image} is not signed: fetched by its signed digest {signed}, the registry served \
         bytes with sha256 {served}"
    )]
    IndexDigestMismatch {
        image: String,
        signed: Digest,
        served: Digest,
    },

    #[error("the verified image index {digest} of {image} is malformed")]
    MalformedIndex {
        image: String,
        digest: Digest,
        #[source]
        source: ocituf_oci::Error,
    },

    #[error("could not fetch the config {digest} of {image}")]
    ConfigFetch {
        image: String,
        digest: Digest,
        #[source]
        source: Box<ocituf_oci::Error>,
    },

    #[error(
        "the config of {image} is not the one its signed manifest names: expected {expected}, \
         the registry served {served}"
    )]
    ConfigDigestMismatch {
        image: String,
        expected: Digest,
        served: Digest,
    },

    #[error(
        "{image} has no manifest for platform {platform} (available: {})",
        if available.is_empty() { "none".to_owned() } else { available.join(", ") }
    )]
    NoSuchPlatform {
        image: String,
        platform: String,
        available: Vec<String>,
    },
}

impl PlatformError {
    /// The kind of failure, for exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PlatformError::Resolve(e) => e.kind(),
            PlatformError::IndexFetch { source, .. }
            | PlatformError::ConfigFetch { source, .. } => match **source {
                ocituf_oci::Error::Registry(_)
                | ocituf_oci::Error::Io { .. }
                | ocituf_oci::Error::Task(_) => ErrorKind::Network,
                _ => ErrorKind::Refused,
            },
            PlatformError::NoSuchPlatform { .. } => ErrorKind::Config,
            PlatformError::IndexMissing { .. }
            | PlatformError::IndexDigestMismatch { .. }
            | PlatformError::ConfigDigestMismatch { .. }
            | PlatformError::MalformedIndex { .. } => ErrorKind::Refused,
        }
    }
}

/// Parse `os/architecture[/variant]` (`linux/amd64`, `linux/arm64/v8`).
///
/// # Errors
/// [`Error::InvalidReference`] when a part is missing or empty, or there are more than three.
pub fn parse_platform(input: &str) -> Result<Platform, Error> {
    let invalid = || Error::InvalidReference {
        input: input.to_owned(),
        reason: "a platform is os/architecture[/variant]".to_owned(),
    };
    let parts: Vec<&str> = input.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(invalid());
    }
    match parts.as_slice() {
        [os, arch] => Ok(Platform {
            os: (*os).to_owned(),
            architecture: (*arch).to_owned(),
            variant: None,
        }),
        [os, arch, variant] => Ok(Platform {
            os: (*os).to_owned(),
            architecture: (*arch).to_owned(),
            variant: Some((*variant).to_owned()),
        }),
        _ => Err(invalid()),
    }
}

/// `os/architecture[/variant]`.
pub struct DisplayPlatform<'a>(pub &'a Platform);

impl fmt::Display for DisplayPlatform<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        write!(f, "{}/{}", p.os, p.architecture)?;
        if let Some(v) = &p.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Verify `image` and return the manifest digest for `platform`.
///
/// A multi-arch image: the signed index digest (in [`VerifiedPlatformDigest::verified`])
/// and the manifest that the verified index lists for `platform` (the first entry whose os
/// and architecture match, and variant when `platform` names one). A single-arch image: its
/// signed digest as is ([`Selection::SingleArch`]), unless its config names another
/// platform.
///
/// # Errors
/// [`PlatformError::Resolve`] when [`Resolver::resolve`] fails;
/// [`PlatformError::IndexDigestMismatch`] when the bytes fetched by the verified digest do
/// not hash to it; [`PlatformError::NoSuchPlatform`] (listing the platforms the index has)
/// when no entry matches (or a single manifest's config names another platform); [`PlatformError::MalformedIndex`] when the verified index cannot be
/// read.
///
/// # Security
/// The index is fetched by the verified digest, bounded by the signed length, and its sha256
/// is computed here over the exact received bytes: neither the registry's digest header nor
/// its own checks are trusted. Platform entries are read only from bytes that passed.
pub async fn resolve_platform(
    resolver: &Resolver,
    image: &ImageReference,
    platform: &Platform,
) -> Result<VerifiedPlatformDigest, PlatformError> {
    let verified = resolver.resolve(image).await?;
    let image_store = store::open(&image.repo)?;
    platform_of_verified(&image_store, verified, platform).await
}

/// The second half of [`resolve_platform`], over any store: fetch the manifest of an
/// already verified image by its verified digest from `store` (the image's repository),
/// check its bytes, and select `platform` from it.
///
/// # Errors
/// As [`resolve_platform`], without [`PlatformError::Resolve`].
///
/// # Security
/// `verified` must come from [`Resolver::resolve`]: its digest and length are the signed
/// ones, and nothing `store` says is trusted beyond the bytes that hash to that digest.
pub async fn platform_of_verified<S: ArtifactStore>(
    store: &S,
    verified: VerifiedDigest,
    platform: &Platform,
) -> Result<VerifiedPlatformDigest, PlatformError> {
    let name = verified.image.to_string();
    let signed = verified.digest.clone();
    let fetched = store
        .get_manifest(ManifestRef::Digest(&signed), verified.length)
        .await;
    let manifest = match fetched {
        Ok(Some(m)) => m,
        Ok(None) => {
            return Err(PlatformError::IndexMissing {
                image: name,
                digest: signed,
            })
        }
        // A store that checks digests itself (the layout store does) refuses the same way.
        Err(ocituf_oci::Error::DigestMismatch { actual, .. }) => {
            return Err(PlatformError::IndexDigestMismatch {
                image: name,
                signed,
                served: actual,
            })
        }
        Err(source) => {
            return Err(PlatformError::IndexFetch {
                image: name,
                digest: signed,
                source: Box::new(source),
            })
        }
    };
    // docs/oci-mapping.md §7: only verified index bytes name platform manifests. Hash the
    // bytes as received (whatever the store checked); the length must be the signed one.
    let served = Digest::of(&manifest.bytes);
    if served != signed || manifest.bytes.len() as u64 != verified.length {
        return Err(PlatformError::IndexDigestMismatch {
            image: name,
            signed,
            served,
        });
    }
    if !verified_is_index(&manifest.bytes) {
        let config = config_platform(store, &manifest.bytes, &name).await?;
        if let Some(c) = config.as_ref().filter(|c| !matches(c, platform)) {
            return Err(PlatformError::NoSuchPlatform {
                image: name,
                platform: DisplayPlatform(platform).to_string(),
                available: vec![DisplayPlatform(c).to_string()],
            });
        }
        return Ok(VerifiedPlatformDigest {
            manifest: signed,
            manifest_size: verified.length,
            platform: platform.clone(),
            selection: Selection::SingleArch { config },
            verified,
        });
    }
    let entries =
        index_entries(&manifest.bytes).map_err(|source| PlatformError::MalformedIndex {
            image: name.clone(),
            digest: signed.clone(),
            source,
        })?;
    let Some(entry) = select_platform(
        &entries,
        &platform.os,
        &platform.architecture,
        platform.variant.as_deref(),
    ) else {
        return Err(PlatformError::NoSuchPlatform {
            image: name,
            platform: DisplayPlatform(platform).to_string(),
            available: available(&entries),
        });
    };
    let listed = entry.platform.clone().unwrap_or_else(|| platform.clone());
    Ok(VerifiedPlatformDigest {
        manifest: entry.descriptor.digest.clone(),
        manifest_size: entry.descriptor.size,
        platform: platform.clone(),
        selection: Selection::Index { listed },
        verified,
    })
}

/// Whether verified manifest bytes are an image index: by their `mediaType` field, or, when
/// it is absent (allowed by the OCI image spec), by a `manifests` list and no `config`.
/// Unparseable bytes are not an index; they were signed as they are and go back as is.
fn verified_is_index(bytes: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    match value.get("mediaType").and_then(serde_json::Value::as_str) {
        Some(mt) => is_index(mt),
        None => value.get("manifests").is_some() && value.get("config").is_none(),
    }
}

/// Largest image config read for its platform.
const MAX_CONFIG_LEN: u64 = 1024 * 1024;

/// Whether `listed` satisfies `asked`: the same os and architecture, and the same variant
/// when `asked` names one (as [`select_platform`] matches index entries).
fn matches(listed: &Platform, asked: &Platform) -> bool {
    listed.os == asked.os
        && listed.architecture == asked.architecture
        && asked
            .variant
            .as_deref()
            .is_none_or(|v| listed.variant.as_deref() == Some(v))
}

/// The platform the config of a verified single manifest names, `None` when unknown: no
/// config descriptor, a digest that is not sha256, a config over [`MAX_CONFIG_LEN`] or
/// missing from the store (the runtime cannot pull the image then either), or no
/// `os`/`architecture` in it. The config is fetched by the digest the verified manifest
/// names and hashed here as received.
async fn config_platform<S: ArtifactStore>(
    store: &S,
    manifest: &[u8],
    image: &str,
) -> Result<Option<Platform>, PlatformError> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(manifest) else {
        return Ok(None);
    };
    let Some(digest) = value
        .pointer("/config/digest")
        .and_then(serde_json::Value::as_str)
        .and_then(|d| Digest::parse(d).ok())
    else {
        return Ok(None);
    };
    let size = value
        .pointer("/config/size")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(MAX_CONFIG_LEN);
    if size > MAX_CONFIG_LEN {
        return Ok(None);
    }
    let bytes = match store.get_blob(&digest, size).await {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(ocituf_oci::Error::DigestMismatch { actual, .. }) => {
            return Err(PlatformError::ConfigDigestMismatch {
                image: image.to_owned(),
                expected: digest,
                served: actual,
            })
        }
        Err(source) => {
            return Err(PlatformError::ConfigFetch {
                image: image.to_owned(),
                digest,
                source: Box::new(source),
            })
        }
    };
    let served = Digest::of(&bytes);
    if served != digest {
        return Err(PlatformError::ConfigDigestMismatch {
            image: image.to_owned(),
            expected: digest,
            served,
        });
    }
    let Ok(config) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(None);
    };
    let field = |k: &str| config.get(k).and_then(serde_json::Value::as_str);
    Ok(match (field("os"), field("architecture")) {
        (Some(os), Some(architecture)) => Some(Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: field("variant").map(str::to_owned),
        }),
        _ => None,
    })
}

fn available(entries: &[IndexEntry]) -> Vec<String> {
    let mut out: Vec<String> = entries
        .iter()
        .filter_map(|e| e.platform.as_ref())
        .map(|p| DisplayPlatform(p).to_string())
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_print() {
        let p = parse_platform("linux/arm64/v8").unwrap();
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(DisplayPlatform(&p).to_string(), "linux/arm64/v8");
        let p = parse_platform("linux/amd64").unwrap();
        assert_eq!(DisplayPlatform(&p).to_string(), "linux/amd64");
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
            assert!(
                matches!(parse_platform(bad), Err(Error::InvalidReference { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn index_detection() {
        assert!(verified_is_index(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#
        ));
        assert!(verified_is_index(br#"{"schemaVersion":2,"manifests":[]}"#));
        assert!(!verified_is_index(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}"#
        ));
        assert!(!verified_is_index(b"not json"));
    }
}
