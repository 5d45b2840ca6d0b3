//! Images as TUF targets (docs/oci-mapping.md section 7): target names for tags and
//! digests, the `custom.oci` field, and the platform manifests of a verified image index.
//!
//! Nothing here verifies: callers check manifest bytes against the signed target first, and
//! only then read platform manifests out of those verified index bytes (each platform
//! manifest is then checked against the digest the index lists for it).

use crate::mapping::{INDEX_MEDIA_TYPE, MAX_MANIFEST_LEN};
use crate::ocijson::RawManifest;
use crate::store::{Descriptor, Digest};
use crate::Error;

/// Docker's manifest list, read like an OCI image index.
pub const DOCKER_MANIFEST_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";

/// The target path of tag `tag` of `repository` (no registry host): `acme/app:1.4`.
pub fn tag_target(repository: &str, tag: &str) -> String {
    format!("{repository}:{tag}")
}

/// The target path of a pull by digest: `acme/app@sha256:<hex>`.
pub fn digest_target(repository: &str, digest: &Digest) -> String {
    format!("{repository}@{digest}")
}

/// The `custom` value of an image target: `{"oci": {"mediaType": …}}`.
pub fn target_custom(media_type: &str) -> serde_json::Value {
    serde_json::json!({ "oci": { "mediaType": media_type } })
}

/// The media type a target's `custom.oci.mediaType` names, if any.
pub fn custom_media_type(custom: Option<&serde_json::Value>) -> Option<&str> {
    custom?.pointer("/oci/mediaType")?.as_str()
}

/// A platform of an image index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// One manifest listed by an image index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub descriptor: Descriptor,
    pub platform: Option<Platform>,
}

/// Whether `media_type` is an image index (OCI or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == INDEX_MEDIA_TYPE || media_type == DOCKER_MANIFEST_LIST_MEDIA_TYPE
}

/// The manifests an image index lists. Call it on bytes already checked against the signed
/// target: the digests it returns are trusted only through those bytes.
///
/// # Errors
/// `MalformedManifest` when the bytes are not an image index or an entry has a digest that
/// is not sha256 (a platform manifest that cannot be checked is refused, not skipped).
pub fn index_entries(bytes: &[u8]) -> Result<Vec<IndexEntry>, Error> {
    let malformed = |reason: String| Error::MalformedManifest {
        what: "image index".to_owned(),
        reason,
    };
    if bytes.len() as u64 > MAX_MANIFEST_LEN {
        return Err(Error::TooLarge {
            what: "image index".to_owned(),
            max_len: MAX_MANIFEST_LEN,
        });
    }
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| malformed(format!("not an image index: {e}")))?;
    if raw.schema_version != 2 {
        return Err(malformed(format!(
            "schemaVersion is {}, expected 2",
            raw.schema_version
        )));
    }
    if let Some(mt) = raw.media_type.as_deref().filter(|mt| !is_index(mt)) {
        return Err(malformed(format!(
            "mediaType is {mt:?}, not an image index"
        )));
    }
    let manifests = raw
        .manifests
        .ok_or_else(|| malformed("no manifests list".to_owned()))?;
    manifests
        .into_iter()
        .map(|d| {
            let descriptor = d
                .to_descriptor()
                .ok_or_else(|| malformed(format!("entry digest {:?} is not sha256", d.digest)))?;
            let platform = d.other.get("platform").and_then(|p| {
                Some(Platform {
                    os: p.get("os")?.as_str()?.to_owned(),
                    architecture: p.get("architecture")?.as_str()?.to_owned(),
                    variant: p
                        .get("variant")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned),
                })
            });
            Ok(IndexEntry {
                descriptor,
                platform,
            })
        })
        .collect()
}

/// The entry for `os`/`architecture` (and `variant` when given), the first one listed.
pub fn select_platform<'a>(
    entries: &'a [IndexEntry],
    os: &str,
    architecture: &str,
    variant: Option<&str>,
) -> Option<&'a IndexEntry> {
    entries.iter().find(|e| {
        e.platform.as_ref().is_some_and(|p| {
            p.os == os
                && p.architecture == architecture
                && variant.is_none_or(|v| p.variant.as_deref() == Some(v))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names() {
        let d = Digest::of(b"m");
        assert_eq!(tag_target("acme/app", "1.4"), "acme/app:1.4");
        assert_eq!(digest_target("acme/app", &d), format!("acme/app@{d}"));
        let custom = target_custom(INDEX_MEDIA_TYPE);
        assert_eq!(custom_media_type(Some(&custom)), Some(INDEX_MEDIA_TYPE));
        assert_eq!(custom_media_type(None), None);
    }

    #[test]
    fn index_entries_and_platforms() {
        let (a, b) = (Digest::of(b"amd64"), Digest::of(b"arm64"));
        let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": a.as_str(),
             "size": 5, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": b.as_str(),
             "size": 5, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]});
        let entries = index_entries(index.to_string().as_bytes()).unwrap();
        assert_eq!(entries.len(), 2);
        let arm = select_platform(&entries, "linux", "arm64", Some("v8")).unwrap();
        assert_eq!(arm.descriptor.digest, b);
        assert!(select_platform(&entries, "linux", "arm64", Some("v7")).is_none());
        assert_eq!(
            select_platform(&entries, "linux", "amd64", None)
                .unwrap()
                .descriptor
                .digest,
            a
        );
    }

    #[test]
    fn malformed_indexes_are_refused() {
        for bad in [
            &b"[]"[..],
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[]}"#,
            br#"{"schemaVersion":2}"#,
            br#"{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha512:00","size":1}]}"#,
        ] {
            assert!(
                matches!(index_entries(bad), Err(Error::MalformedManifest { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
