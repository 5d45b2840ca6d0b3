//! The TUF ⇄ OCI mapping of docs/oci-mapping.md: media types, annotation keys, anchors
//! (deterministic bytes, so every client computes their digests offline), role-version
//! artifacts, and the parsing of hints from untrusted descriptors.
//!
//! Nothing here does I/O. Nothing parsed here is trusted: hints only order and select what
//! to fetch; the bytes are checked by digest and by the TUF client workflow.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::json;

use crate::ocijson::{jcs, RawManifest};
use crate::store::{Descriptor, Digest};
use crate::Error;

/// `application/vnd.oci.image.manifest.v1+json`: anchors and role versions.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.index.v1+json`: multi-platform images, fallback indexes.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The empty descriptor's media type (OCI image spec 1.1).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty blob, `{}`.
pub const EMPTY_BLOB: &[u8] = b"{}";
/// sha256 of [`EMPTY_BLOB`].
pub const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// The `artifactType` of anchors.
pub const ANCHOR_ARTIFACT_TYPE: &str = "application/vnd.ocituf.anchor.v1+json";
/// The media type of the single layer of a role version: the exact signed metadata bytes.
pub const METADATA_MEDIA_TYPE: &str = "application/vnd.tuf.metadata+json";

/// `io.ocituf.anchor`: `top` or `role`, on anchors.
pub const ANNOTATION_ANCHOR: &str = "io.ocituf.anchor";
pub const ANNOTATION_ROOT_OF_TRUST: &str = "io.ocituf.root-of-trust";
pub const ANNOTATION_ROLE: &str = "io.ocituf.role";
pub const ANNOTATION_VERSION: &str = "io.ocituf.version";
pub const ANNOTATION_EXPIRES: &str = "io.ocituf.expires";
pub const ANNOTATION_PARENT: &str = "io.ocituf.parent";
pub const ANNOTATION_METADATA_DIGEST: &str = "io.ocituf.metadata.digest";
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";

/// Tag prefix of anchors: `ocituf-anchor-<hex>`.
pub const ANCHOR_TAG_PREFIX: &str = "ocituf-anchor-";
/// Tag prefix of role versions: `ocituf-meta-<hex>`.
pub const METADATA_TAG_PREFIX: &str = "ocituf-meta-";

/// Hint values longer than this are ignored (docs/oci-mapping.md section 5).
pub const MAX_HINT_LEN: usize = 1024;
/// Longest delegated role name the mapping accepts, in bytes.
pub const MAX_ROLE_NAME_LEN: usize = 1024;
/// Longest manifest ocituf reads (distribution's own limit).
pub const MAX_MANIFEST_LEN: u64 = 4 * 1024 * 1024;

/// The name that keeps roots of trust apart in one metadata repository (`acme`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RootOfTrustName(String);

impl RootOfTrustName {
    /// # Errors
    /// When `name` is not 1 to 64 characters of `[a-z0-9._-]` starting with `[a-z0-9]`.
    pub fn parse(name: &str) -> Result<Self, Error> {
        let bytes = name.as_bytes();
        let ok = (1..=64).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase() | bytes[0].is_ascii_digit()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b));
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(Error::InvalidRootOfTrustName(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RootOfTrustName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Check a TUF role name against the mapping's limits.
///
/// # Errors
/// When it is empty or longer than [`MAX_ROLE_NAME_LEN`] bytes.
pub fn check_role_name(role: &str) -> Result<(), Error> {
    if role.is_empty() {
        return Err(Error::InvalidRoleName {
            name: role.to_owned(),
            reason: "empty",
        });
    }
    if role.len() > MAX_ROLE_NAME_LEN {
        return Err(Error::InvalidRoleName {
            name: role.chars().take(64).collect(),
            reason: "longer than 1024 bytes",
        });
    }
    Ok(())
}

/// The class of a role: its `artifactType`, and which anchor its versions name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleClass {
    Root,
    Timestamp,
    Snapshot,
    /// Top-level targets and every delegated role.
    Targets,
}

impl RoleClass {
    /// The class of a role name: the four top-level names, anything else is delegated targets.
    pub fn of_role(role: &str) -> Self {
        match role {
            "root" => Self::Root,
            "timestamp" => Self::Timestamp,
            "snapshot" => Self::Snapshot,
            _ => Self::Targets,
        }
    }

    /// The `_type` TUF metadata of this class has.
    pub fn tuf_type(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Timestamp => "timestamp",
            Self::Snapshot => "snapshot",
            Self::Targets => "targets",
        }
    }

    /// `application/vnd.tuf.<class>.v1+json`.
    pub fn artifact_type(self) -> &'static str {
        match self {
            Self::Root => "application/vnd.tuf.root.v1+json",
            Self::Timestamp => "application/vnd.tuf.timestamp.v1+json",
            Self::Snapshot => "application/vnd.tuf.snapshot.v1+json",
            Self::Targets => "application/vnd.tuf.targets.v1+json",
        }
    }

    pub fn from_artifact_type(artifact_type: &str) -> Option<Self> {
        [Self::Root, Self::Timestamp, Self::Snapshot, Self::Targets]
            .into_iter()
            .find(|c| c.artifact_type() == artifact_type)
    }

    /// Whether versions of this class name the top-level anchor (root and timestamp).
    pub fn uses_top_anchor(self) -> bool {
        matches!(self, Self::Root | Self::Timestamp)
    }
}

/// The empty descriptor as JSON.
pub(crate) fn empty_descriptor() -> serde_json::Value {
    json!({"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": EMPTY_BLOB.len()})
}

/// An anchor manifest: its deterministic bytes and their digest (docs/oci-mapping.md 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    bytes: Vec<u8>,
    digest: Digest,
}

impl Anchor {
    /// The top-level anchor of a root of trust: the subject of every root and timestamp version.
    pub fn top(root_of_trust: &RootOfTrustName) -> Self {
        Self::build(&json!({
            ANNOTATION_ANCHOR: "top",
            ANNOTATION_ROOT_OF_TRUST: root_of_trust.as_str(),
        }))
    }

    /// The per-role anchor of `role` (snapshot, targets, or a delegated role).
    ///
    /// # Errors
    /// When `role` is `root` or `timestamp` (their versions name the top-level anchor; use
    /// [`Anchor::for_role`]) or not a valid role name.
    pub fn role(root_of_trust: &RootOfTrustName, role: &str) -> Result<Self, Error> {
        check_role_name(role)?;
        if RoleClass::of_role(role).uses_top_anchor() {
            return Err(Error::InvalidRoleName {
                name: role.to_owned(),
                reason: "root and timestamp versions name the top-level anchor",
            });
        }
        Ok(Self::build(&json!({
            ANNOTATION_ANCHOR: "role",
            ANNOTATION_ROLE: role,
            ANNOTATION_ROOT_OF_TRUST: root_of_trust.as_str(),
        })))
    }

    /// The anchor that versions of `role` name as their subject.
    ///
    /// # Errors
    /// When `role` is not a valid role name.
    pub fn for_role(root_of_trust: &RootOfTrustName, role: &str) -> Result<Self, Error> {
        check_role_name(role)?;
        if RoleClass::of_role(role).uses_top_anchor() {
            Ok(Self::top(root_of_trust))
        } else {
            Self::role(root_of_trust, role)
        }
    }

    fn build(annotations: &serde_json::Value) -> Self {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": ANCHOR_ARTIFACT_TYPE,
            "config": empty_descriptor(),
            "layers": [empty_descriptor()],
            "annotations": annotations,
        });
        let bytes = jcs(&manifest);
        let digest = Digest::of(&bytes);
        Self { bytes, digest }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The tag that keeps the anchor from garbage collection: `ocituf-anchor-<hex>`.
    pub fn tag(&self) -> String {
        format!("{ANCHOR_TAG_PREFIX}{}", self.digest.hex())
    }

    /// The anchor as a `subject` descriptor.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: MANIFEST_MEDIA_TYPE.to_owned(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            artifact_type: Some(ANCHOR_ARTIFACT_TYPE.to_owned()),
            annotations: BTreeMap::new(),
        }
    }
}

/// The tag that keeps a role version from garbage collection: `ocituf-meta-<hex>`.
pub fn metadata_tag(manifest_digest: &Digest) -> String {
    format!("{METADATA_TAG_PREFIX}{}", manifest_digest.hex())
}

/// The TUF file name of a role version, used as `org.opencontainers.image.title`:
/// `timestamp.json`, or `<version>.<percent-encoded role>.json`.
pub fn metadata_file_name(role: &str, version: u64) -> String {
    if role == "timestamp" {
        return "timestamp.json".to_owned();
    }
    let mut encoded = String::with_capacity(role.len());
    for b in role.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            let _ = write!(encoded, "%{b:02X}");
        }
    }
    format!("{version}.{encoded}.json")
}

/// What a role-version artifact says about itself (docs/oci-mapping.md section 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleVersionInfo<'a> {
    pub root_of_trust: &'a RootOfTrustName,
    pub role: &'a str,
    pub version: u64,
    /// `signed.expires`, verbatim.
    pub expires: &'a str,
    /// Manifest digest of the version this one was built on.
    pub parent: Option<&'a Digest>,
}

/// A role-version manifest ready to push: bytes, digest, and the tag that protects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleVersionManifest {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    /// Digest of the metadata layer (the TUF sha256 of the file).
    pub metadata_digest: Digest,
    /// The manifest's annotations (also what a referrers listing shows).
    pub annotations: BTreeMap<String, String>,
}

impl RoleVersionManifest {
    /// The manifest of one role version whose layer is `metadata` (the exact signed bytes).
    ///
    /// # Errors
    /// When the role name is invalid or `expires` is longer than a hint may be.
    pub fn build(info: &RoleVersionInfo<'_>, metadata: &[u8]) -> Result<Self, Error> {
        check_role_name(info.role)?;
        if info.expires.len() > MAX_HINT_LEN {
            return Err(Error::MalformedMetadata {
                role: info.role.to_owned(),
                reason: "expires is longer than 1024 bytes".to_owned(),
            });
        }
        let class = RoleClass::of_role(info.role);
        let anchor = Anchor::for_role(info.root_of_trust, info.role)?;
        let metadata_digest = Digest::of(metadata);
        let mut annotations = BTreeMap::new();
        annotations.insert(
            ANNOTATION_ROOT_OF_TRUST.to_owned(),
            info.root_of_trust.to_string(),
        );
        annotations.insert(ANNOTATION_ROLE.to_owned(), info.role.to_owned());
        annotations.insert(ANNOTATION_VERSION.to_owned(), info.version.to_string());
        annotations.insert(ANNOTATION_EXPIRES.to_owned(), info.expires.to_owned());
        if let Some(parent) = info.parent {
            annotations.insert(ANNOTATION_PARENT.to_owned(), parent.to_string());
        }
        annotations.insert(
            ANNOTATION_METADATA_DIGEST.to_owned(),
            metadata_digest.to_string(),
        );
        annotations.insert(
            ANNOTATION_TITLE.to_owned(),
            metadata_file_name(info.role, info.version),
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": class.artifact_type(),
            "config": empty_descriptor(),
            "layers": [{
                "mediaType": METADATA_MEDIA_TYPE,
                "digest": metadata_digest.as_str(),
                "size": metadata.len(),
            }],
            "subject": {
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": anchor.digest().as_str(),
                "size": anchor.bytes().len(),
            },
            "annotations": annotations,
        });
        let bytes = jcs(&manifest);
        let digest = Digest::of(&bytes);
        Ok(Self {
            bytes,
            digest,
            metadata_digest,
            annotations,
        })
    }

    pub fn tag(&self) -> String {
        metadata_tag(&self.digest)
    }
}

/// A role-version manifest as read back (untrusted): where its metadata layer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRoleManifest {
    pub artifact_type: Option<String>,
    pub metadata_digest: Digest,
    pub metadata_size: u64,
    pub subject: Option<Digest>,
    pub annotations: BTreeMap<String, String>,
}

/// Parse a role-version manifest strictly (docs/oci-mapping.md section 4): schemaVersion 2,
/// exactly one layer of media type [`METADATA_MEDIA_TYPE`] with a sha256 digest.
///
/// # Errors
/// `MalformedManifest` naming `what` and the failed check.
pub fn parse_role_manifest(what: &str, bytes: &[u8]) -> Result<ParsedRoleManifest, Error> {
    let malformed = |reason: String| Error::MalformedManifest {
        what: what.to_owned(),
        reason,
    };
    if bytes.len() as u64 > MAX_MANIFEST_LEN {
        return Err(Error::TooLarge {
            what: format!("manifest {what}"),
            max_len: MAX_MANIFEST_LEN,
        });
    }
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| malformed(format!("not a manifest: {e}")))?;
    if raw.schema_version != 2 {
        return Err(malformed(format!(
            "schemaVersion is {}, expected 2",
            raw.schema_version
        )));
    }
    if let Some(mt) = &raw.media_type {
        if mt != MANIFEST_MEDIA_TYPE {
            return Err(malformed(format!(
                "mediaType is {mt:?}, expected an image manifest"
            )));
        }
    }
    let layers = raw.layers.unwrap_or_default();
    let [layer] = layers.as_slice() else {
        return Err(malformed(format!(
            "{} layers, expected exactly one metadata layer",
            layers.len()
        )));
    };
    if layer.media_type != METADATA_MEDIA_TYPE {
        return Err(malformed(format!(
            "layer media type is {:?}, expected {METADATA_MEDIA_TYPE}",
            layer.media_type
        )));
    }
    let metadata_digest =
        Digest::parse(&layer.digest).map_err(|_| malformed("layer digest is not sha256".into()))?;
    let subject = match &raw.subject {
        Some(s) => Some(
            Digest::parse(&s.digest)
                .map_err(|_| malformed("subject digest is not sha256".into()))?,
        ),
        None => None,
    };
    Ok(ParsedRoleManifest {
        artifact_type: raw.artifact_type,
        metadata_digest,
        metadata_size: layer.size,
        subject,
        annotations: raw.annotations.unwrap_or_default(),
    })
}

/// The hints a descriptor (from a referrers listing) or a manifest carries. Never trusted:
/// values longer than [`MAX_HINT_LEN`] and versions that are not canonical decimals are
/// dropped, so a hostile annotation costs nothing but its own bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    pub root_of_trust: Option<String>,
    pub role: Option<String>,
    pub version: Option<u64>,
    pub expires: Option<String>,
    pub parent: Option<Digest>,
    pub metadata_digest: Option<Digest>,
    pub title: Option<String>,
}

impl Hints {
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Self {
        let get = |key: &str| {
            annotations
                .get(key)
                .filter(|v| v.len() <= MAX_HINT_LEN)
                .cloned()
        };
        Self {
            root_of_trust: get(ANNOTATION_ROOT_OF_TRUST),
            role: get(ANNOTATION_ROLE),
            version: get(ANNOTATION_VERSION).and_then(|v| parse_version_hint(&v)),
            expires: get(ANNOTATION_EXPIRES),
            parent: get(ANNOTATION_PARENT).and_then(|v| Digest::parse(&v).ok()),
            metadata_digest: get(ANNOTATION_METADATA_DIGEST).and_then(|v| Digest::parse(&v).ok()),
            title: get(ANNOTATION_TITLE),
        }
    }

    /// Whether these hints may describe a version of `role` of `root_of_trust`: a hint that
    /// is present and different rules the entry out; a missing hint does not.
    pub fn may_be(&self, root_of_trust: &RootOfTrustName, role: &str) -> bool {
        self.root_of_trust
            .as_deref()
            .is_none_or(|r| r == root_of_trust.as_str())
            && self.role.as_deref().is_none_or(|r| r == role)
    }
}

/// A canonical decimal TUF version: no sign, no leading zero, at least 1.
pub fn parse_version_hint(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> RootOfTrustName {
        RootOfTrustName::parse("acme").unwrap()
    }

    #[test]
    fn golden_anchor_digests() {
        // Computed independently with Python (docs/oci-mapping.md 3.1).
        let top = Anchor::top(&acme());
        assert_eq!(top.bytes().len(), 509);
        assert_eq!(
            top.digest().as_str(),
            "sha256:f2cd439ec5f78362c1bbdf2af6cf3695de75b642fc1b4bf650536051ae4f93c2"
        );
        let snapshot = Anchor::role(&acme(), "snapshot").unwrap();
        assert_eq!(snapshot.bytes().len(), 538);
        assert_eq!(
            snapshot.digest().as_str(),
            "sha256:14a0b3800d566beded70acce96ae44d674f9b92bac6465d9c7cd051e569aeda9"
        );
        assert_eq!(
            top.tag(),
            "ocituf-anchor-f2cd439ec5f78362c1bbdf2af6cf3695de75b642fc1b4bf650536051ae4f93c2"
        );
    }

    #[test]
    fn anchors_are_deterministic_and_distinct() {
        let a = Anchor::role(&acme(), "team/app").unwrap();
        assert_eq!(a, Anchor::role(&acme(), "team/app").unwrap());
        let other = RootOfTrustName::parse("globex").unwrap();
        let all = [
            Anchor::top(&acme()),
            Anchor::top(&other),
            Anchor::role(&acme(), "snapshot").unwrap(),
            Anchor::role(&acme(), "targets").unwrap(),
            Anchor::role(&other, "targets").unwrap(),
            a,
        ];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x.digest(), y.digest());
            }
        }
        assert_eq!(
            Anchor::for_role(&acme(), "root").unwrap(),
            Anchor::top(&acme())
        );
        assert_eq!(
            Anchor::for_role(&acme(), "timestamp").unwrap(),
            Anchor::top(&acme())
        );
        assert!(Anchor::role(&acme(), "timestamp").is_err());
    }

    #[test]
    fn anchor_is_a_valid_image_manifest_with_the_empty_layer() {
        let top = Anchor::top(&acme());
        let v: serde_json::Value = serde_json::from_slice(top.bytes()).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(v["config"]["digest"], EMPTY_DIGEST);
        assert_eq!(v["layers"][0]["digest"], EMPTY_DIGEST);
        assert_eq!(Digest::of(EMPTY_BLOB).as_str(), EMPTY_DIGEST);
    }

    #[test]
    fn role_names_with_control_characters_get_json_escapes() {
        let a = Anchor::role(&acme(), "we\"ird\n\u{1}name").unwrap();
        let text = std::str::from_utf8(a.bytes()).unwrap();
        assert!(
            text.contains(r#""io.ocituf.role":"we\"ird\n\u0001name""#),
            "{text}"
        );
        assert!(Anchor::role(&acme(), "").is_err());
        assert!(Anchor::role(&acme(), &"x".repeat(1025)).is_err());
    }

    #[test]
    fn root_of_trust_names() {
        for ok in ["acme", "a", "acme-corp.eu_1", "0rg"] {
            RootOfTrustName::parse(ok).unwrap();
        }
        for bad in ["", "Acme", "-acme", "acme/x", "a b", &"a".repeat(65)] {
            assert!(RootOfTrustName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn role_version_manifest_round_trips_through_the_parser() {
        let parent = Digest::of(b"previous");
        let info = RoleVersionInfo {
            root_of_trust: &acme(),
            role: "team/app",
            version: 7,
            expires: "2030-01-01T00:00:00Z",
            parent: Some(&parent),
        };
        let metadata = br#"{"signed":{},"signatures":[]}"#;
        let m = RoleVersionManifest::build(&info, metadata).unwrap();
        assert_eq!(m, RoleVersionManifest::build(&info, metadata).unwrap());
        let parsed = parse_role_manifest("test", &m.bytes).unwrap();
        assert_eq!(parsed.metadata_digest, Digest::of(metadata));
        assert_eq!(parsed.metadata_size, metadata.len() as u64);
        assert_eq!(
            parsed.artifact_type.as_deref(),
            Some("application/vnd.tuf.targets.v1+json")
        );
        assert_eq!(
            parsed.subject.as_ref(),
            Some(Anchor::role(&acme(), "team/app").unwrap().digest())
        );
        let hints = Hints::from_annotations(&parsed.annotations);
        assert_eq!(hints.version, Some(7));
        assert_eq!(hints.parent, Some(parent));
        assert_eq!(hints.metadata_digest, Some(Digest::of(metadata)));
        assert_eq!(hints.title.as_deref(), Some("7.team%2Fapp.json"));
        assert!(hints.may_be(&acme(), "team/app"));
        assert!(!hints.may_be(&acme(), "other"));
    }

    #[test]
    fn parser_rejects_manifests_that_are_not_role_versions() {
        let anchor = Anchor::top(&acme());
        assert!(matches!(
            parse_role_manifest("anchor", anchor.bytes()),
            Err(Error::MalformedManifest { .. })
        ));
        for bad in [
            &b"not json"[..],
            br#"{"schemaVersion":1,"layers":[]}"#,
            br#"{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.tuf.metadata+json","digest":"md5:00","size":1}]}"#,
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","layers":[]}"#,
        ] {
            assert!(matches!(
                parse_role_manifest("bad", bad),
                Err(Error::MalformedManifest { .. })
            ));
        }
    }

    #[test]
    fn hostile_hints_are_dropped() {
        let mut ann = BTreeMap::new();
        ann.insert(
            ANNOTATION_VERSION.to_owned(),
            "18446744073709551616".to_owned(),
        );
        ann.insert(ANNOTATION_ROLE.to_owned(), "x".repeat(MAX_HINT_LEN + 1));
        ann.insert(
            ANNOTATION_METADATA_DIGEST.to_owned(),
            "sha256:../../etc".to_owned(),
        );
        let h = Hints::from_annotations(&ann);
        assert_eq!(h, Hints::default());
        for bad in ["", "0", "007", "+1", "-1", "1e3", " 1"] {
            assert_eq!(parse_version_hint(bad), None, "{bad:?}");
        }
        assert_eq!(parse_version_hint("18446744073709551615"), Some(u64::MAX));
    }

    #[test]
    fn file_names() {
        assert_eq!(metadata_file_name("timestamp", 9), "timestamp.json");
        assert_eq!(metadata_file_name("snapshot", 9), "9.snapshot.json");
        assert_eq!(metadata_file_name("a b/ü", 2), "2.a%20b%2F%C3%BC.json");
    }
}
