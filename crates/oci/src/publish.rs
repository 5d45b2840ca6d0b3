//! Publishing primitives over any [`ArtifactStore`] (docs/oci-mapping.md sections 3, 4, 8):
//! push a role version (metadata blob, manifest with subject, anchor when missing, the
//! `ocituf-meta-` tag that keeps it from garbage collection), find the newest published
//! version of a role, and prune by the retention rule.
//!
//! This module signs nothing and verifies no signature: it stores bytes that the `tuf`
//! crate signed, and `newest` takes the caller's verification as a closure. Annotations
//! are hints here too: version decisions are made on the signed content.

use std::collections::{BTreeMap, BTreeSet};

use crate::mapping::{
    check_role_name, metadata_tag, parse_role_manifest, Anchor, Hints, RoleClass, RoleVersionInfo,
    RoleVersionManifest, RootOfTrustName, EMPTY_BLOB, MANIFEST_MEDIA_TYPE, MAX_MANIFEST_LEN,
};
use crate::store::{ArtifactStore, Descriptor, Digest, ManifestRef};
use crate::Error;

/// Largest metadata file the publisher reads back.
pub const MAX_METADATA_LEN: u64 = 32 * 1024 * 1024;
/// At most this many versions are read back by [`Publisher::newest`].
pub const MAX_NEWEST_CANDIDATES: usize = 64;

/// One pushed role version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub role: String,
    pub version: u64,
    pub manifest_digest: Digest,
    pub metadata_digest: Digest,
    /// The `ocituf-meta-<hex>` tag.
    pub tag: String,
}

/// A listed version of a role (from the referrers of its anchor): hints, not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVersion {
    pub descriptor: Descriptor,
    pub hints: Hints,
    /// The version hint (listed versions without one are left out).
    pub version: u64,
}

/// The retention rule of docs/oci-mapping.md section 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Newest timestamp versions kept (at least 2).
    pub keep_timestamps: usize,
    /// Newest snapshot versions kept (at least 2).
    pub keep_snapshots: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep_timestamps: 4,
            keep_snapshots: 4,
        }
    }
}

/// What [`Publisher::prune`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Manifest digests deleted.
    pub deleted: Vec<Digest>,
    /// Manifest digests kept (every one of them tagged).
    pub kept: Vec<Digest>,
}

/// The fields of a metadata file the publisher looks at (from the exact signed bytes).
#[derive(Debug, Clone)]
struct SignedFields {
    tuf_type: String,
    version: u64,
    expires: String,
    /// `meta` of timestamp and snapshot: file name -> (version, sha256 hex).
    meta: BTreeMap<String, (u64, Option<String>)>,
}

fn signed_fields(role: &str, bytes: &[u8]) -> Result<SignedFields, Error> {
    let bad = |reason: &str| Error::MalformedMetadata {
        role: role.to_owned(),
        reason: reason.to_owned(),
    };
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| bad("not JSON"))?;
    let signed = v.get("signed").ok_or_else(|| bad("no signed object"))?;
    let tuf_type = signed
        .get("_type")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| bad("no _type"))?
        .to_owned();
    let version = signed
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .filter(|v| *v >= 1)
        .ok_or_else(|| bad("no positive integer version"))?;
    let expires = signed
        .get("expires")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| bad("no expires"))?
        .to_owned();
    let mut meta = BTreeMap::new();
    if let Some(m) = signed.get("meta").and_then(serde_json::Value::as_object) {
        for (name, entry) in m {
            let Some(ver) = entry.get("version").and_then(serde_json::Value::as_u64) else {
                continue;
            };
            let sha = entry
                .pointer("/hashes/sha256")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned);
            meta.insert(name.clone(), (ver, sha));
        }
    }
    Ok(SignedFields {
        tuf_type,
        version,
        expires,
        meta,
    })
}

/// Writes the metadata of one root of trust into an [`ArtifactStore`].
pub struct Publisher<A> {
    store: A,
    root_of_trust: RootOfTrustName,
}

impl<A: ArtifactStore> Publisher<A> {
    pub fn new(store: A, root_of_trust: RootOfTrustName) -> Self {
        Self {
            store,
            root_of_trust,
        }
    }

    pub fn store(&self) -> &A {
        &self.store
    }

    pub fn root_of_trust(&self) -> &RootOfTrustName {
        &self.root_of_trust
    }

    /// Create `anchor` (and the empty blob it references) unless it is already there, tagged.
    pub async fn ensure_anchor(&self, anchor: &Anchor) -> Result<(), Error> {
        let tag = anchor.tag();
        if let Some(d) = self.store.head_manifest(ManifestRef::Tag(&tag)).await? {
            if d.digest == *anchor.digest() {
                return Ok(());
            }
        }
        self.store.put_blob(EMPTY_BLOB).await?;
        self.store
            .put_manifest(MANIFEST_MEDIA_TYPE, anchor.bytes(), Some(&tag))
            .await?;
        Ok(())
    }

    /// Push one version of `role`: `metadata` are the exact signed bytes. `parent` is the
    /// manifest digest of the version this one was built on (`io.ocituf.parent`).
    ///
    /// Idempotent: pushing the same bytes twice stores one artifact.
    ///
    /// # Errors
    /// When the metadata is not TUF metadata of the role's class (`MalformedMetadata`), or
    /// on store errors.
    pub async fn push(
        &self,
        role: &str,
        metadata: &[u8],
        parent: Option<&Digest>,
    ) -> Result<Published, Error> {
        check_role_name(role)?;
        let class = RoleClass::of_role(role);
        let fields = signed_fields(role, metadata)?;
        if fields.tuf_type != class.tuf_type() {
            return Err(Error::MalformedMetadata {
                role: role.to_owned(),
                reason: format!(
                    "_type is {:?}, expected {:?}",
                    fields.tuf_type,
                    class.tuf_type()
                ),
            });
        }
        let anchor = Anchor::for_role(&self.root_of_trust, role)?;
        self.ensure_anchor(&anchor).await?;
        let metadata_digest = self.store.put_blob(metadata).await?;
        let info = RoleVersionInfo {
            root_of_trust: &self.root_of_trust,
            role,
            version: fields.version,
            expires: &fields.expires,
            parent,
        };
        let manifest = RoleVersionManifest::build(&info, metadata)?;
        if metadata_digest != manifest.metadata_digest {
            return Err(Error::DigestMismatch {
                what: format!(
                    "metadata blob of {role} stored in {}",
                    self.store.location()
                ),
                expected: manifest.metadata_digest,
                actual: metadata_digest,
            });
        }
        let tag = manifest.tag();
        let digest = self
            .store
            .put_manifest(MANIFEST_MEDIA_TYPE, &manifest.bytes, Some(&tag))
            .await?;
        Ok(Published {
            role: role.to_owned(),
            version: fields.version,
            manifest_digest: digest,
            metadata_digest,
            tag,
        })
    }

    /// The listed versions of `role`, highest version hint first (hints only).
    pub async fn versions(&self, role: &str) -> Result<Vec<ListedVersion>, Error> {
        let class = RoleClass::of_role(role);
        let anchor = Anchor::for_role(&self.root_of_trust, role)?;
        let (list, _) = self
            .store
            .referrers(anchor.digest(), Some(class.artifact_type()))
            .await?;
        let mut out: Vec<ListedVersion> = list
            .into_iter()
            .filter(|d| d.artifact_type.as_deref() == Some(class.artifact_type()))
            .filter_map(|descriptor| {
                let hints = Hints::from_annotations(&descriptor.annotations);
                let version = hints.version?;
                hints
                    .may_be(&self.root_of_trust, role)
                    .then_some(ListedVersion {
                        descriptor,
                        hints,
                        version,
                    })
            })
            .collect();
        out.sort_by(|a, b| {
            b.version
                .cmp(&a.version)
                .then_with(|| a.descriptor.digest.cmp(&b.descriptor.digest))
        });
        Ok(out)
    }

    /// The metadata bytes of a listed version: the layer its manifest names (`Ok(None)` when
    /// the manifest or blob is gone). The manifest, not the hint, says which blob.
    pub async fn read(&self, listed: &ListedVersion) -> Result<Option<Vec<u8>>, Error> {
        let digest = &listed.descriptor.digest;
        let Some(m) = self
            .store
            .get_manifest(ManifestRef::Digest(digest), MAX_MANIFEST_LEN)
            .await?
        else {
            return Ok(None);
        };
        let actual = Digest::of(&m.bytes);
        if actual != *digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest from {}", self.store.location()),
                expected: digest.clone(),
                actual,
            });
        }
        let parsed = parse_role_manifest(digest.as_str(), &m.bytes)?;
        let Some(bytes) = self
            .store
            .get_blob(&parsed.metadata_digest, MAX_METADATA_LEN)
            .await?
        else {
            return Ok(None);
        };
        let actual = Digest::of(&bytes);
        if actual != parsed.metadata_digest {
            return Err(Error::DigestMismatch {
                what: format!("metadata blob from {}", self.store.location()),
                expected: parsed.metadata_digest,
                actual,
            });
        }
        Ok(Some(bytes))
    }

    /// The newest published version of `role` whose signed content has the version it
    /// claims, the role's `_type`, and passes `accept` (the caller's TUF verification, e.g.
    /// signatures by the delegator's keys). Versions that fail are skipped; at most
    /// [`MAX_NEWEST_CANDIDATES`] are read.
    pub async fn newest(
        &self,
        role: &str,
        mut accept: impl FnMut(&[u8]) -> bool + Send,
    ) -> Result<Option<(ListedVersion, Vec<u8>)>, Error> {
        let class = RoleClass::of_role(role);
        for listed in self
            .versions(role)
            .await?
            .into_iter()
            .take(MAX_NEWEST_CANDIDATES)
        {
            let bytes = match self.read(&listed).await {
                Ok(Some(b)) => b,
                Ok(None)
                | Err(
                    Error::MalformedManifest { .. }
                    | Error::DigestMismatch { .. }
                    | Error::TooLarge { .. },
                ) => continue,
                Err(e) => return Err(e),
            };
            let Ok(fields) = signed_fields(role, &bytes) else {
                continue;
            };
            if fields.version == listed.version
                && fields.tuf_type == class.tuf_type()
                && accept(&bytes)
            {
                return Ok(Some((listed, bytes)));
            }
        }
        Ok(None)
    }

    /// Make sure each manifest has its `ocituf-meta-<hex>` tag (repairs artifacts pushed
    /// without one), so registry garbage collection keeps it and its blobs.
    pub async fn ensure_tagged(&self, manifests: &[Digest]) -> Result<(), Error> {
        for digest in manifests {
            let tag = metadata_tag(digest);
            if let Some(d) = self.store.head_manifest(ManifestRef::Tag(&tag)).await? {
                if d.digest == *digest {
                    continue;
                }
            }
            if let Some(m) = self
                .store
                .get_manifest(ManifestRef::Digest(digest), MAX_MANIFEST_LEN)
                .await?
            {
                if Digest::of(&m.bytes) == *digest {
                    self.store
                        .put_manifest(&m.media_type, &m.bytes, Some(&tag))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Delete role versions by the retention rule of docs/oci-mapping.md section 8: never a
    /// root; the newest K timestamps and snapshots (by signed version); every version of a
    /// targets role that a kept timestamp reaches, and every version newer than the newest
    /// one reached (not yet in a snapshot); the rest of the roles a kept snapshot names is
    /// deleted. Roles no kept snapshot names are left alone.
    pub async fn prune(&self, retention: &Retention) -> Result<PruneReport, Error> {
        let mut report = PruneReport::default();
        let snap_bytes = self.prune_online_into(retention, &mut report).await?;
        self.prune_targets_into(&snap_bytes, &mut report).await?;
        Ok(report)
    }

    /// [`Publisher::prune`] of timestamps and snapshots only: two listings whatever the
    /// number of targets roles, for a signer that publishes often (the timestamp anchor's
    /// listing is what every client reads first, so it must stay short); targets roles'
    /// old versions wait for the next full [`Publisher::prune`].
    pub async fn prune_online(&self, retention: &Retention) -> Result<PruneReport, Error> {
        let mut report = PruneReport::default();
        self.prune_online_into(retention, &mut report).await?;
        Ok(report)
    }

    /// Timestamps and snapshots by the rule; returns the kept snapshots' bytes.
    async fn prune_online_into(
        &self,
        retention: &Retention,
        report: &mut PruneReport,
    ) -> Result<Vec<Vec<u8>>, Error> {
        // Timestamps: newest K by signed version; junk whose content contradicts its hints
        // is deleted, unreadable entries are left alone.
        let (_, ts_bytes) = self
            .keep_newest("timestamp", retention.keep_timestamps.max(2), report)
            .await?;
        // What the kept timestamps name: snapshot versions and hashes.
        let mut snap_refs = Protect::default();
        for bytes in &ts_bytes {
            if let Ok(f) = signed_fields("timestamp", bytes) {
                if let Some((v, sha)) = f.meta.get("snapshot.json") {
                    snap_refs.add(*v, sha.as_deref());
                }
            }
        }
        let (_, snap_bytes) = self
            .keep_newest_protected(
                "snapshot",
                retention.keep_snapshots.max(2),
                &snap_refs,
                report,
            )
            .await?;
        Ok(snap_bytes)
    }

    /// Targets roles named by the kept snapshots (`snap_bytes`), by the rule.
    async fn prune_targets_into(
        &self,
        snap_bytes: &[Vec<u8>],
        report: &mut PruneReport,
    ) -> Result<(), Error> {
        let mut roles: BTreeMap<String, Protect> = BTreeMap::new();
        for bytes in snap_bytes {
            if let Ok(f) = signed_fields("snapshot", bytes) {
                for (name, (v, sha)) in f.meta {
                    if let Some(role) = name.strip_suffix(".json") {
                        roles
                            .entry(role.to_owned())
                            .or_default()
                            .add(v, sha.as_deref());
                    }
                }
            }
        }
        for (role, protect) in &roles {
            if check_role_name(role).is_err() || RoleClass::of_role(role) != RoleClass::Targets {
                continue;
            }
            let newest_reached = protect.versions.iter().max().copied().unwrap_or(0);
            for listed in self.versions(role).await? {
                // Hints decide only in the direction of keeping more.
                let keep = listed.version > newest_reached || protect.covers(&listed);
                self.keep_or_delete(&listed, keep, report).await?;
            }
        }
        Ok(())
    }

    async fn keep_or_delete(
        &self,
        listed: &ListedVersion,
        keep: bool,
        report: &mut PruneReport,
    ) -> Result<(), Error> {
        let digest = listed.descriptor.digest.clone();
        if keep {
            self.ensure_tagged(std::slice::from_ref(&digest)).await?;
            report.kept.push(digest);
        } else {
            self.store.delete_manifest(&digest).await?;
            report.deleted.push(digest);
        }
        Ok(())
    }

    async fn keep_newest(
        &self,
        role: &str,
        keep: usize,
        report: &mut PruneReport,
    ) -> Result<(Vec<ListedVersion>, Vec<Vec<u8>>), Error> {
        self.keep_newest_protected(role, keep, &Protect::default(), report)
            .await
    }

    /// Keep the newest `keep` versions of `role` whose content matches their hints, and
    /// every version `protect` names; delete the others.
    async fn keep_newest_protected(
        &self,
        role: &str,
        keep: usize,
        protect: &Protect,
        report: &mut PruneReport,
    ) -> Result<(Vec<ListedVersion>, Vec<Vec<u8>>), Error> {
        let class = RoleClass::of_role(role);
        let mut kept = Vec::new();
        let mut kept_bytes = Vec::new();
        for listed in self.versions(role).await? {
            let protected = protect.covers(&listed);
            let bytes = match self.read(&listed).await {
                Ok(Some(bytes)) => bytes,
                // Not a role version at all (junk under our anchor): delete it.
                Err(Error::MalformedManifest { .. }) if !protected => {
                    self.keep_or_delete(&listed, false, report).await?;
                    continue;
                }
                // Unreadable now: leave it alone (never delete on a transient failure).
                _ => {
                    report.kept.push(listed.descriptor.digest.clone());
                    continue;
                }
            };
            let genuine = signed_fields(role, &bytes)
                .is_ok_and(|f| f.version == listed.version && f.tuf_type == class.tuf_type());
            let keep_it = protected || (genuine && kept.len() < keep);
            self.keep_or_delete(&listed, keep_it, report).await?;
            if keep_it {
                kept.push(listed);
                kept_bytes.push(bytes);
            }
        }
        Ok((kept, kept_bytes))
    }
}

/// Versions and hashes a parent names for one role.
#[derive(Debug, Default)]
struct Protect {
    versions: BTreeSet<u64>,
    digests: BTreeSet<Digest>,
}

impl Protect {
    fn add(&mut self, version: u64, sha256: Option<&str>) {
        self.versions.insert(version);
        if let Some(d) = sha256.and_then(|h| Digest::parse(&format!("sha256:{h}")).ok()) {
            self.digests.insert(d);
        }
    }

    fn covers(&self, listed: &ListedVersion) -> bool {
        listed
            .hints
            .metadata_digest
            .as_ref()
            .is_some_and(|d| self.digests.contains(d))
            || self.versions.contains(&listed.version)
    }
}
