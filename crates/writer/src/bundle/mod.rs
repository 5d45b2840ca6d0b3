//! Air-gap bundles (docs/oci-mapping.md §10): a root of trust's metadata and chosen images in
//! an OCI image-layout directory, to carry into a network the source registry cannot reach.
//!
//! - [`export()`]: verify the root of trust from its pin as a client would, verify that each
//!   chosen image is signed, and write every metadata file a client needs (the root chain,
//!   timestamp, snapshot, every targets role the delegations reach) and the images into a
//!   new layout through the same publisher that writes any layout.
//! - [`import()`]: verify a bundle from the pin the same way (a bundle is untrusted input),
//!   check every blob of every image, then push metadata and images into another registry
//!   or layout with the ordinary write path, timestamp last.
//!
//! Target names carry no registry host, so what was signed for `acme/app:1.4` on registry A
//! verifies on registry B, and from the bundle itself (`ocituf verify --offline --bundle`,
//! in `ocituf-resolver`).
//!
//! Why here, in the writer: import is a writer (it pushes role versions through
//! [`crate::MetaRepo`]'s publisher and checks the destination against the pin like every
//! writer), and export writes a layout with that same publisher; both need the resolver's
//! store opening, which `ocituf-oci` cannot use. Offline *verification* is client work and
//! lives in the resolver.

mod copy;
mod export;
mod import;
mod verified;

pub use copy::Copied;
pub use export::{export, ExportRequest, Exported, ExportedImage};
pub use import::{import, ImportRequest, Imported};
pub use verified::{load_verified, Verified};

use std::path::Path;

use ocituf_oci::{Digest, RootOfTrustName};
use ocituf_resolver::ErrorKind;

use crate::error::{fail, Result};

/// The file at the top of a bundle that says what it holds (hints: everything is verified).
pub const DESCRIPTION_FILE: &str = "ocituf-bundle.json";
/// Its `mediaType`.
pub const DESCRIPTION_MEDIA_TYPE: &str = "application/vnd.ocituf.bundle.v1+json";
/// Largest description read.
const MAX_DESCRIPTION_LEN: u64 = 4 * 1024 * 1024;
/// At most this many images per bundle.
pub const MAX_IMAGES: usize = 4096;

/// One image of a bundle: its repository (no registry host), tag if any, and signed digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundledImage {
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Digest,
}

impl BundledImage {
    /// The TUF target name it is verified by: `repository:tag`, else `repository@digest`.
    pub fn target(&self) -> String {
        match &self.tag {
            Some(t) => ocituf_oci::image::tag_target(&self.repository, t),
            None => ocituf_oci::image::digest_target(&self.repository, &self.digest),
        }
    }
}

/// What `ocituf-bundle.json` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub root_of_trust: RootOfTrustName,
    /// The metadata repository's path inside the bundle (`acme/tuf`).
    pub metadata_repository: String,
    pub images: Vec<BundledImage>,
}

impl Description {
    fn to_json(&self) -> serde_json::Value {
        let images: Vec<serde_json::Value> = self
            .images
            .iter()
            .map(|i| {
                serde_json::json!({
                    "repository": i.repository,
                    "tag": i.tag,
                    "digest": i.digest.as_str(),
                })
            })
            .collect();
        serde_json::json!({
            "mediaType": DESCRIPTION_MEDIA_TYPE,
            "rootOfTrust": self.root_of_trust.as_str(),
            "metadataRepository": self.metadata_repository,
            "images": images,
        })
    }

    /// Write it atomically into `dir`.
    fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(DESCRIPTION_FILE);
        let bytes = serde_json::to_vec_pretty(&self.to_json()).map_err(|e| {
            crate::Error::wrap(
                ErrorKind::Config,
                "could not serialise the bundle description",
                e,
            )
        })?;
        ocituf_tuf::fsio::write_atomic(&path, &bytes).map_err(|e| {
            crate::Error::wrap(
                ErrorKind::Config,
                format!("could not write {}", path.display()),
                e,
            )
        })
    }

    /// Read and check the description of the bundle `dir` (untrusted: names are checked
    /// against the OCI grammar, digests parsed; nothing in it is trusted beyond that).
    ///
    /// # Errors
    /// `Config` when the file is missing, too long or malformed.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(DESCRIPTION_FILE);
        let bad = |reason: String| {
            fail(
                ErrorKind::Config,
                format!(
                    "{} is not an ocituf bundle description: {reason}; pass a directory written by `ocituf bundle export`",
                    path.display()
                ),
            )
        };
        let bytes = match ocituf_tuf::fsio::read_bounded(&path, MAX_DESCRIPTION_LEN) {
            Ok(Some(b)) => b,
            Ok(None) => return Err(bad("no such file".to_owned())),
            Err(e) => return Err(bad(e.to_string())),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON ({e})")))?;
        if v.get("mediaType").and_then(serde_json::Value::as_str) != Some(DESCRIPTION_MEDIA_TYPE) {
            return Err(bad(format!("mediaType is not {DESCRIPTION_MEDIA_TYPE}")));
        }
        let text = |key: &str| {
            v.get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("no {key}")))
        };
        let root_of_trust =
            RootOfTrustName::parse(&text("rootOfTrust")?).map_err(|e| bad(e.to_string()))?;
        let metadata_repository = text("metadataRepository")?;
        if !ocituf_oci::names::valid_repository_name(&metadata_repository) {
            return Err(bad(format!("invalid repository {metadata_repository:?}")));
        }
        let list = v
            .get("images")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| bad("no images list".to_owned()))?;
        if list.len() > MAX_IMAGES {
            return Err(bad(format!("more than {MAX_IMAGES} images")));
        }
        let mut images = Vec::new();
        for i in list {
            let field = |k: &str| i.get(k).and_then(serde_json::Value::as_str);
            let repository = field("repository")
                .ok_or_else(|| bad("an image without repository".to_owned()))?
                .to_owned();
            if !ocituf_oci::names::valid_repository_name(&repository) {
                return Err(bad(format!("invalid repository {repository:?}")));
            }
            let tag = field("tag").map(str::to_owned);
            if let Some(t) = &tag {
                if !ocituf_oci::names::valid_tag(t) {
                    return Err(bad(format!("invalid tag {t:?}")));
                }
            }
            let digest = Digest::parse(field("digest").unwrap_or_default())
                .map_err(|e| bad(e.to_string()))?;
            images.push(BundledImage {
                repository,
                tag,
                digest,
            });
        }
        Ok(Self {
            root_of_trust,
            metadata_repository,
            images,
        })
    }
}

/// Open the store `repo` names, with the error kind the resolver gives.
pub(crate) fn open(
    repo: &ocituf_resolver::RepositoryReference,
    registry: &ocituf_oci::RegistryOptions,
) -> Result<ocituf_resolver::AnyStore> {
    ocituf_resolver::store::open_with(repo, registry).map_err(|e| {
        let kind = e.kind();
        crate::Error::wrap(kind, format!("could not open {repo}"), e)
    })
}

/// The writer error of a refused TUF check: expired metadata has its own kind.
pub(crate) fn tuf_error(message: String, e: ocituf_tuf::Error) -> crate::Error {
    let kind = match &e {
        ocituf_tuf::Error::Expired { .. } => ErrorKind::Expired,
        // Content that failed its digest or size check is refused; a transport that failed
        // may pass on retry.
        ocituf_tuf::Error::Source(ocituf_tuf::SourceError::Fetch { source, .. }) => {
            match source.downcast_ref::<ocituf_oci::Error>() {
                Some(
                    ocituf_oci::Error::DigestMismatch { .. }
                    | ocituf_oci::Error::TooLarge { .. }
                    | ocituf_oci::Error::MalformedManifest { .. }
                    | ocituf_oci::Error::LayoutIndex { .. },
                ) => ErrorKind::Refused,
                _ => ErrorKind::Network,
            }
        }
        _ => ErrorKind::Refused,
    };
    crate::Error::wrap(kind, message, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description() -> Description {
        Description {
            root_of_trust: RootOfTrustName::parse("acme").unwrap(),
            metadata_repository: "acme/tuf".to_owned(),
            images: vec![
                BundledImage {
                    repository: "acme/app".to_owned(),
                    tag: Some("1.4".to_owned()),
                    digest: Digest::of(b"app"),
                },
                BundledImage {
                    repository: "acme/db".to_owned(),
                    tag: None,
                    digest: Digest::of(b"db"),
                },
            ],
        }
    }

    #[test]
    fn description_round_trips_and_names_targets_without_host() {
        let dir = tempfile::tempdir().unwrap();
        let d = description();
        d.write(dir.path()).unwrap();
        assert_eq!(Description::read(dir.path()).unwrap(), d);
        assert_eq!(d.images[0].target(), "acme/app:1.4");
        assert_eq!(
            d.images[1].target(),
            format!("acme/db@{}", Digest::of(b"db"))
        );
    }

    /// The description is untrusted: names that could escape a path or a tag, digests that
    /// are not sha256, another media type, are configuration errors before anything runs.
    #[test]
    fn hostile_description_is_refused() {
        type Edit = fn(&mut serde_json::Value);
        let cases: [(&str, Edit); 5] = [
            ("mediaType", |v| v["mediaType"] = "application/json".into()),
            ("invalid repository", |v| {
                v["metadataRepository"] = "../../etc".into();
            }),
            ("invalid repository", |v| {
                v["images"][0]["repository"] = "Acme/App".into();
            }),
            ("invalid tag", |v| v["images"][0]["tag"] = "a/b".into()),
            ("invalid digest", |v| {
                v["images"][0]["digest"] = "md5:00".into();
            }),
        ];
        for (needle, edit) in cases {
            let dir = tempfile::tempdir().unwrap();
            let mut v = description().to_json();
            edit(&mut v);
            std::fs::write(
                dir.path().join(DESCRIPTION_FILE),
                serde_json::to_vec(&v).unwrap(),
            )
            .unwrap();
            let e = Description::read(dir.path()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            assert!(e.message.contains(needle), "{needle}: {e}");
        }
        let empty = tempfile::tempdir().unwrap();
        let e = Description::read(empty.path()).unwrap_err();
        assert!(e.message.contains("no such file"), "{e}");
    }
}
