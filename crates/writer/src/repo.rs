//! A root of trust in one OCI repository, as writers see it: find the newest *verified*
//! published version of each role, and push new versions (docs/oci-mapping.md).
//!
//! Writers verify what they build on: a new version of a role is made on top of the newest
//! version whose signatures meet the threshold of the keys its delegator names, so a registry
//! cannot slip targets into a team's role for the team's key to sign. Annotations only decide
//! what to fetch.

use ocituf_oci::mapping::{
    self, Anchor, Hints, RoleClass, RootOfTrustName, EMPTY_BLOB, MANIFEST_MEDIA_TYPE,
};
use ocituf_oci::{ArtifactStore as _, Digest, ManifestRef};
use ocituf_resolver::{AnyStore, ErrorKind};
use ocituf_tuf::metadata::{Envelope, Role, Root};

use crate::authority::Authority;
use crate::error::{fail, Result, ResultExt as _};
use crate::meter::{Meter, Metered, StoreCalls};
use crate::pin::Pin;
use crate::progress::Progress;

/// Largest metadata file read (the updater's default for targets is in this range too).
pub const MAX_METADATA_LEN: u64 = 16 * 1024 * 1024;
/// How many candidates of one version are tried before giving up (junk artifacts).
const MAX_CANDIDATES: usize = 32;

/// The artifact type of a root version that still lacks signatures. Clients never list it
/// (they look for `application/vnd.tuf.root.v1+json`), so a pending root cannot break them.
pub const PENDING_ROOT_ARTIFACT_TYPE: &str = "application/vnd.ocituf.pending-root.v1+json";
/// The role name whose per-role anchor collects pending root versions.
const PENDING_ROOT_ROLE: &str = "root";
/// The `artifactType` of a targets-role version that waits for more signatures (section 4.3
/// of docs/oci-mapping.md); clients never list it.
pub const PENDING_TARGETS_ARTIFACT_TYPE: &str = "application/vnd.ocituf.pending-targets.v1+json";

/// One role version found in the repository, verified.
#[derive(Debug, Clone)]
pub struct Found {
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
    pub version: u64,
    /// The role-version manifest's digest (the `io.ocituf.parent` of the next version).
    pub manifest: Digest,
    /// The version this one says it was built on (a hint; verified before use).
    pub parent: Option<Digest>,
}

/// A root of trust in one OCI repository.
pub struct MetaRepo {
    pub store: AnyStore,
    pub name: RootOfTrustName,
    pub location: String,
    progress: Progress,
    meter: Meter,
}

/// A candidate from a referrers listing (hints only).
#[derive(Debug, Clone)]
struct Candidate {
    manifest: Digest,
    version: Option<u64>,
    metadata_digest: Option<Digest>,
    parent: Option<Digest>,
}

impl MetaRepo {
    pub fn open(
        repo: &ocituf_resolver::RepositoryReference,
        name: &str,
        registry: &ocituf_oci::RegistryOptions,
    ) -> Result<Self> {
        let name = RootOfTrustName::parse(name)
            .config(|| format!("{name:?} cannot be a root-of-trust name"))?;
        let store = ocituf_resolver::store::open_with(repo, registry).map_err(|e| {
            let kind = e.kind();
            crate::Error::wrap(kind, format!("could not open {repo}"), e)
        })?;
        Ok(Self {
            store,
            name,
            location: repo.to_string(),
            progress: Progress::silent(),
            meter: Meter::default(),
        })
    }

    /// Report progress lines (long loads, lost races) to `progress`.
    #[must_use]
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// The store calls this repository made so far, by kind, with the bytes moved.
    pub fn store_calls(&self) -> StoreCalls {
        self.meter.calls()
    }

    /// The store, with every call counted.
    fn metered(&self) -> Metered<'_, AnyStore> {
        Metered {
            store: &self.store,
            meter: &self.meter,
        }
    }

    /// Where progress lines go.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    fn net<T, E: std::error::Error + Send + Sync + 'static>(
        &self,
        r: Result<T, E>,
        what: impl FnOnce() -> String,
    ) -> Result<T> {
        r.kind(ErrorKind::Network, || {
            format!("{} ({})", what(), self.location)
        })
    }

    /// Referrers of the anchor of `role` that may be versions of it, newest version first,
    /// ties by manifest digest (docs/oci-mapping.md §6).
    async fn candidates(&self, role: &str, artifact_type: &str) -> Result<Vec<Candidate>> {
        let anchor = Anchor::for_role(&self.name, role)
            .config(|| format!("{role:?} cannot be a role name"))?;
        let (list, _) = self.net(
            self.metered()
                .referrers(anchor.digest(), Some(artifact_type))
                .await,
            || format!("could not list the versions of role {role:?}"),
        )?;
        let mut out: Vec<Candidate> = list
            .into_iter()
            .filter(|d| d.artifact_type.as_deref() == Some(artifact_type))
            .filter_map(|d| {
                let h = Hints::from_annotations(&d.annotations);
                h.may_be(&self.name, role).then_some(Candidate {
                    manifest: d.digest,
                    version: h.version,
                    metadata_digest: h.metadata_digest,
                    parent: h.parent,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.version
                .cmp(&a.version)
                .then_with(|| a.manifest.cmp(&b.manifest))
        });
        Ok(out)
    }

    /// The metadata bytes of a candidate: the layer the manifest names (digest-checked).
    async fn fetch(&self, c: &Candidate) -> Result<Option<Vec<u8>>> {
        if let Some(d) = &c.metadata_digest {
            if let Some(bytes) = self
                .net(self.metered().get_blob(d, MAX_METADATA_LEN).await, || {
                    format!("could not fetch metadata blob {d}")
                })?
            {
                if Digest::of(&bytes) == *d {
                    return Ok(Some(bytes));
                }
            }
        }
        let Some(m) = self.net(
            self.metered()
                .get_manifest(ManifestRef::Digest(&c.manifest), mapping::MAX_MANIFEST_LEN)
                .await,
            || format!("could not fetch manifest {}", c.manifest),
        )?
        else {
            return Ok(None);
        };
        let Ok(parsed) = mapping::parse_role_manifest(c.manifest.as_str(), &m.bytes) else {
            return Ok(None);
        };
        let bytes = self.net(
            self.metered()
                .get_blob(&parsed.metadata_digest, MAX_METADATA_LEN)
                .await,
            || format!("could not fetch metadata blob {}", parsed.metadata_digest),
        )?;
        Ok(bytes.filter(|b| Digest::of(b) == parsed.metadata_digest))
    }

    /// The newest version of `role` (class `targets`, `snapshot` or `timestamp`) whose
    /// signatures meet `authority`. `None` when no version verifies. Of several versions
    /// with the same number, the lowest manifest digest wins (docs/oci-mapping.md §6).
    pub async fn newest(&self, role: &str, authority: &Authority) -> Result<Option<Found>> {
        Ok(self.newest_all(role, authority).await?.into_iter().next())
    }

    /// Every verified version of `role` at the highest verified version number (several when
    /// writers raced), lowest manifest digest first.
    pub async fn newest_all(&self, role: &str, authority: &Authority) -> Result<Vec<Found>> {
        let class = RoleClass::of_role(role);
        let cands = self.candidates(role, class.artifact_type()).await?;
        let mut out: Vec<Found> = Vec::new();
        for c in cands.iter().take(MAX_CANDIDATES * 4) {
            if let (Some(first), Some(v)) = (out.first(), c.version) {
                if v < first.version {
                    break;
                }
            }
            if let Some(f) = self.verified(role, c, authority).await? {
                if out.first().is_none_or(|first| first.version == f.version) {
                    out.push(f);
                }
            }
        }
        out.sort_by(|a, b| a.manifest.cmp(&b.manifest));
        Ok(out)
    }

    /// The version of `role` stored under manifest `digest`, if it verifies (with the
    /// parent its manifest names).
    pub async fn verified_at(
        &self,
        role: &str,
        digest: &Digest,
        authority: &Authority,
    ) -> Result<Option<Found>> {
        let Some(m) = self.net(
            self.metered()
                .get_manifest(ManifestRef::Digest(digest), mapping::MAX_MANIFEST_LEN)
                .await,
            || format!("could not fetch manifest {digest}"),
        )?
        else {
            return Ok(None);
        };
        let Ok(parsed) = mapping::parse_role_manifest(digest.as_str(), &m.bytes) else {
            return Ok(None);
        };
        let h = Hints::from_annotations(&parsed.annotations);
        let c = Candidate {
            manifest: digest.clone(),
            version: h.version,
            metadata_digest: Some(parsed.metadata_digest),
            parent: h.parent,
        };
        self.verified(role, &c, authority).await
    }

    async fn verified(
        &self,
        role: &str,
        c: &Candidate,
        authority: &Authority,
    ) -> Result<Option<Found>> {
        let class = RoleClass::of_role(role);
        let Some(bytes) = self.fetch(c).await? else {
            return Ok(None);
        };
        let Ok(env) = Envelope::parse(role, &bytes) else {
            return Ok(None);
        };
        if env.role_type() != Some(class.tuf_type()) || !authority.satisfied_by(&env) {
            return Ok(None);
        }
        let Some(version) = env
            .signed
            .get("version")
            .and_then(serde_json::Value::as_u64)
        else {
            return Ok(None);
        };
        if c.version.is_some_and(|v| v != version) {
            return Ok(None);
        }
        Ok(Some(Found {
            envelope: env,
            bytes,
            version,
            manifest: c.manifest.clone(),
            parent: c.parent.clone(),
        }))
    }

    /// The root chain from version 1 (checked against `pin` when given) to the newest root
    /// that both its predecessor's and its own root keys sign (TUF 5.3).
    pub async fn root_chain(&self, pin: Option<&Pin>) -> Result<(Root, Found)> {
        let (root, mut chain) = self.root_chain_history(pin).await?;
        match chain.pop() {
            Some(found) => Ok((root, found)),
            None => Err(fail(
                ErrorKind::Config,
                "the root chain is empty".to_owned(),
            )),
        }
    }

    /// Like [`MetaRepo::root_chain`], with every verified root version of the chain, oldest
    /// first (the last one is the newest root's).
    pub async fn root_chain_history(&self, pin: Option<&Pin>) -> Result<(Root, Vec<Found>)> {
        let cands = self
            .candidates("root", RoleClass::Root.artifact_type())
            .await?;
        let by_version = |v: u64| {
            cands
                .iter()
                .filter(move |c| c.version == Some(v))
                .take(MAX_CANDIDATES)
        };
        let mut current: Option<(Root, Found)> = None;
        let mut history: Vec<Found> = Vec::new();
        // The sha256 of a root version 1 the registry served that is not the pinned one.
        let mut mismatch: Option<Digest> = None;
        let mut v = 1u64;
        loop {
            let mut next = None;
            for c in by_version(v) {
                let Some(bytes) = self.fetch(c).await? else {
                    continue;
                };
                if v == 1 {
                    if let Some(pin) = pin {
                        // TUF 5.2: the chain starts at the root obtained out of band.
                        if !pin.matches(&bytes) {
                            mismatch.get_or_insert_with(|| Digest::of(&bytes));
                            continue;
                        }
                    }
                }
                let Ok(env) = Envelope::parse("root", &bytes) else {
                    continue;
                };
                let Ok(root) = Root::from_signed(&env.signed) else {
                    continue;
                };
                if root.version != v {
                    continue;
                }
                let own = Authority::of_top_level(&root, "root")?;
                let prev_ok = match &current {
                    Some((prev, _)) => Authority::of_top_level(prev, "root")?.satisfied_by(&env),
                    None => true,
                };
                if prev_ok && own.satisfied_by(&env) {
                    next = Some((
                        root,
                        Found {
                            envelope: env,
                            bytes,
                            version: v,
                            manifest: c.manifest.clone(),
                            parent: None,
                        },
                    ));
                    break;
                }
            }
            match next {
                Some(n) => {
                    if let Some((_, prev)) = current.replace(n) {
                        history.push(prev);
                    }
                }
                None => break,
            }
            v += 1;
        }
        if let (None, Some(pin), Some(served)) = (&current, pin, &mismatch) {
            return Err(fail(
                ErrorKind::Refused,
                format!(
                    "root mismatch: root version 1 of {:?} in {} has sha256 {}, not the pinned root's {}: \
                     the registry serves another root chain (an attacker's, or a re-created root of trust); \
                     nothing was signed",
                    self.name.as_str(),
                    self.location,
                    served.hex(),
                    pin.sha256()
                ),
            ));
        }
        let (root, newest) = current.ok_or_else(|| {
            fail(
                ErrorKind::Config,
                format!(
                    "no root of trust {:?} in {}{}: create it with `ocituf init`",
                    self.name.as_str(),
                    self.location,
                    if pin.is_some() {
                        " matching the pinned root"
                    } else {
                        ""
                    }
                ),
            )
        })?;
        history.push(newest);
        Ok((root, history))
    }

    /// Push one role version (`ocituf-oci`'s publisher: empty blob, anchor, metadata blob,
    /// tagged manifest with `io.ocituf.parent`).
    pub async fn push(&self, role: &str, bytes: &[u8], parent: Option<&Digest>) -> Result<Digest> {
        let publisher = ocituf_oci::Publisher::new(self.metered(), self.name.clone());
        let pushed = self.net(publisher.push(role, bytes, parent).await, || {
            format!("could not push a new version of role {role:?}")
        })?;
        Ok(pushed.manifest_digest)
    }

    /// Push the nodes of a snapshot Merkle tree that the previous tree lacks
    /// (docs/oci-mapping.md §11), before the snapshot that names its root.
    pub async fn push_merkle_tree(
        &self,
        tree: &ocituf_tuf::merkle::Tree,
        previous: Option<&ocituf_tuf::merkle::MerkleRoot>,
    ) -> Result<ocituf_oci::merkle::PushedTree> {
        self.net(
            ocituf_oci::merkle::push_tree(&self.store, tree, previous).await,
            || "could not push the snapshot Merkle tree".to_owned(),
        )
    }

    /// The entries a snapshot Merkle tree holds for `roles` (absent ones left out), each
    /// proven by a walk from `root`; nodes shared by several paths are read once.
    pub async fn merkle_entries(
        &self,
        root: &ocituf_tuf::merkle::MerkleRoot,
        roles: &[String],
    ) -> Result<std::collections::BTreeMap<String, ocituf_tuf::metadata::MetaFile>> {
        self.net(
            ocituf_oci::merkle::entries_of(&self.store, root, roles).await,
            || "could not read the snapshot Merkle tree".to_owned(),
        )
    }

    /// The previous snapshot Merkle tree with `changes` applied, reading only the nodes on
    /// the changed paths (`ocituf_oci::merkle::update_tree`).
    pub async fn update_merkle_tree(
        &self,
        previous: &ocituf_tuf::merkle::MerkleRoot,
        changes: &std::collections::BTreeMap<String, ocituf_tuf::metadata::MetaFile>,
    ) -> Result<ocituf_oci::merkle::UpdatedTree> {
        self.net(
            ocituf_oci::merkle::update_tree(&self.store, previous, changes).await,
            || {
                "could not update the snapshot Merkle tree (run `ocituf publish` to write it whole)"
                    .to_owned()
            },
        )
    }

    async fn ensure_anchor(&self, anchor: &Anchor) -> Result<()> {
        self.net(self.metered().put_blob(EMPTY_BLOB).await, || {
            "could not push the empty blob".to_owned()
        })?;
        self.net(
            self.metered()
                .put_manifest(MANIFEST_MEDIA_TYPE, anchor.bytes(), Some(&anchor.tag()))
                .await,
            || "could not push an anchor".to_owned(),
        )?;
        Ok(())
    }

    /// Store a root version that lacks signatures, for other holders to sign.
    pub async fn push_pending_root(&self, bytes: &[u8], version: u64) -> Result<Digest> {
        self.push_pending(
            PENDING_ROOT_ARTIFACT_TYPE,
            PENDING_ROOT_ROLE,
            bytes,
            version,
        )
        .await
    }

    /// Store a version of targets role `role` that lacks signatures, for other holders to
    /// sign (`ocituf cosign`).
    pub async fn push_pending_targets(
        &self,
        role: &str,
        bytes: &[u8],
        version: u64,
    ) -> Result<Digest> {
        self.push_pending(PENDING_TARGETS_ARTIFACT_TYPE, role, bytes, version)
            .await
    }

    async fn push_pending(
        &self,
        artifact_type: &str,
        role: &str,
        bytes: &[u8],
        version: u64,
    ) -> Result<Digest> {
        let anchor = Anchor::role(&self.name, pending_anchor(artifact_type))
            .config(|| "could not make the pending-version anchor".to_owned())?;
        self.ensure_anchor(&anchor).await?;
        let digest = self.net(self.metered().put_blob(bytes).await, || {
            "could not push the pending root".to_owned()
        })?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": artifact_type,
            "config": {"mediaType": mapping::EMPTY_MEDIA_TYPE, "digest": mapping::EMPTY_DIGEST, "size": 2},
            "layers": [{"mediaType": mapping::METADATA_MEDIA_TYPE, "digest": digest.as_str(), "size": bytes.len()}],
            "subject": {"mediaType": MANIFEST_MEDIA_TYPE, "digest": anchor.digest().as_str(), "size": anchor.bytes().len()},
            "annotations": {
                mapping::ANNOTATION_ROOT_OF_TRUST: self.name.as_str(),
                mapping::ANNOTATION_ROLE: role,
                mapping::ANNOTATION_VERSION: version.to_string(),
                mapping::ANNOTATION_METADATA_DIGEST: digest.as_str(),
            },
        });
        let mbytes = serde_json::to_vec(&manifest)
            .config(|| "could not serialise the pending root manifest".to_owned())?;
        let tag = mapping::metadata_tag(&Digest::of(&mbytes));
        self.net(
            self.metered()
                .put_manifest(MANIFEST_MEDIA_TYPE, &mbytes, Some(&tag))
                .await,
            || "could not push the pending root".to_owned(),
        )
    }

    /// Pending root versions newer than `after`, newest first (unverified: the caller checks).
    pub async fn pending_roots(&self, after: u64) -> Result<Vec<(u64, Envelope)>> {
        let mut out = Vec::new();
        for (version, env) in self
            .pending(PENDING_ROOT_ARTIFACT_TYPE, PENDING_ROOT_ROLE, after)
            .await?
        {
            let Ok(root) = Root::from_signed(&env.signed) else {
                continue;
            };
            if root.version == version {
                out.push((version, env));
            }
        }
        Ok(out)
    }

    /// Pending versions of targets role `role` newer than `after`, newest first
    /// (unverified: the caller checks signatures and content).
    pub async fn pending_targets(&self, role: &str, after: u64) -> Result<Vec<(u64, Envelope)>> {
        let roles = std::collections::BTreeMap::from([(role.to_owned(), after)]);
        Ok(self
            .pending_targets_of(&roles)
            .await?
            .remove(role)
            .unwrap_or_default())
    }

    /// The pending artifacts of `artifact_type` for `role` above `after`, parsed as
    /// envelopes, with their annotated version.
    async fn pending(
        &self,
        artifact_type: &str,
        role: &str,
        after: u64,
    ) -> Result<Vec<(u64, Envelope)>> {
        let roles = std::collections::BTreeMap::from([(role.to_owned(), after)]);
        Ok(self
            .pending_of(artifact_type, &roles)
            .await?
            .remove(role)
            .unwrap_or_default())
    }

    /// Pending versions of each targets role in `roles` newer than the version it maps to,
    /// newest first, from ONE listing of the pending-targets anchor (they all share it), so
    /// `status` pays one request for every role it read (unverified: the caller checks).
    pub async fn pending_targets_of(
        &self,
        roles: &std::collections::BTreeMap<String, u64>,
    ) -> Result<std::collections::BTreeMap<String, Vec<(u64, Envelope)>>> {
        let mut out = self
            .pending_of(PENDING_TARGETS_ARTIFACT_TYPE, roles)
            .await?;
        for list in out.values_mut() {
            list.retain(|(version, env)| {
                ocituf_tuf::metadata::Targets::from_signed(&env.signed)
                    .is_ok_and(|t| t.version == *version)
            });
        }
        Ok(out)
    }

    /// The pending artifacts of `artifact_type` for each role of `roles` above the version
    /// it maps to, parsed as envelopes, with their annotated version, newest first.
    async fn pending_of(
        &self,
        artifact_type: &str,
        roles: &std::collections::BTreeMap<String, u64>,
    ) -> Result<std::collections::BTreeMap<String, Vec<(u64, Envelope)>>> {
        let anchor = Anchor::role(&self.name, pending_anchor(artifact_type))
            .config(|| "could not make the pending-version anchor".to_owned())?;
        let (list, _) = self.net(
            self.metered()
                .referrers(anchor.digest(), Some(artifact_type))
                .await,
            || "could not list pending versions".to_owned(),
        )?;
        let class = if artifact_type == PENDING_ROOT_ARTIFACT_TYPE {
            "root"
        } else {
            "targets"
        };
        let mut out: std::collections::BTreeMap<String, Vec<(u64, Envelope)>> =
            std::collections::BTreeMap::new();
        for d in list.into_iter().take(MAX_CANDIDATES) {
            let h = Hints::from_annotations(&d.annotations);
            let Some(v) = h.version else { continue };
            let wanted: Vec<&String> = roles
                .iter()
                .filter(|(role, after)| h.may_be(&self.name, role) && v > **after)
                .map(|(role, _)| role)
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let c = Candidate {
                manifest: d.digest,
                version: h.version,
                metadata_digest: h.metadata_digest,
                parent: None,
            };
            let Some(bytes) = self.fetch(&c).await? else {
                continue;
            };
            let Ok(env) = Envelope::parse(class, &bytes) else {
                continue;
            };
            for role in wanted {
                out.entry(role.clone()).or_default().push((v, env.clone()));
            }
        }
        for list in out.values_mut() {
            list.sort_by_key(|(v, _)| std::cmp::Reverse(*v));
        }
        Ok(out)
    }
}

/// The role name of the per-role anchor that collects pending versions of one kind.
fn pending_anchor(artifact_type: &str) -> &'static str {
    if artifact_type == PENDING_ROOT_ARTIFACT_TYPE {
        "pending-root"
    } else {
        "pending-targets"
    }
}
