//! Image reference → verified digest.
//!
//! [`Resolver::resolve`] picks the root of trust that covers the image (the trust policy),
//! refreshes that root of trust's TUF metadata from its OCI repository with the `ocituf-tuf`
//! updater (starting from the pinned root; one cached trusted state per root of trust), looks
//! the image's target name up through the delegations, and compares what the registry
//! serves for the tag with what was signed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ocituf_oci::{
    ArtifactStore as _, Digest, ManifestRef, OciRepoSource, RegistryOptions, RootOfTrustName,
};
use ocituf_tuf::metadata::Targets;
use ocituf_tuf::{
    FsStore, MetadataRequest, RepoSource as _, RootHistory, SystemClock, TargetInfo, TrustedSet,
    Updater, UpdaterConfig,
};

use crate::error::Error;
use crate::policy::{TrustEntry, TrustPolicy};
use crate::reference::{ImageReference, RepositoryReference};
use crate::store::{self, AnyStore};

/// Largest pinned root file read.
const MAX_ROOT_LEN: u64 = 512_000;

/// Longest one [`Resolver::resolve`] may take, every request and retry included
/// ([`Resolver::with_deadline`] changes it). Each request is bounded by the registry
/// options' timeouts; this bounds their sum, so a registry that answers every request just
/// before its timeout cannot hold a client for the product of them.
pub const DEFAULT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// What verification proved about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDigest {
    /// The image as asked for.
    pub image: ImageReference,
    /// The signed manifest digest: pull by it.
    pub digest: Digest,
    /// The signed manifest length.
    pub length: u64,
    /// The media type recorded when it was signed (`custom.oci.mediaType`), if any.
    pub media_type: Option<String>,
    /// The TUF target name that was verified (`acme/app:1.4` or `acme/app@sha256:…`).
    pub target: String,
    /// The targets role that lists it, and that role's version.
    pub role: String,
    pub role_version: u64,
    /// The root of trust that vouched for it.
    pub root_of_trust: String,
    pub repository: RepositoryReference,
    /// Versions of the trusted top-level metadata.
    pub versions: BTreeMap<&'static str, u64>,
    /// Requests made to the metadata repository (the image's manifest not counted), as
    /// store calls: one referrers listing counts once.
    pub metadata_requests: u64,
    /// Bytes of metadata blobs and manifests fetched from the metadata repository
    /// (listings not counted).
    pub metadata_bytes: u64,
    /// HTTP requests sent to the metadata registry (token requests, retries and the
    /// referrers detection included); `None` for an OCI layout.
    pub registry_requests: Option<u64>,
}

impl VerifiedDigest {
    /// `IMAGE@sha256:…`, what `docker pull` takes.
    pub fn pinned(&self) -> ImageReference {
        self.image.with_digest(self.digest.clone())
    }
}

/// Resolves image references to verified digests under a trust policy.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub(crate) policy: TrustPolicy,
    pub(crate) cache_dir: PathBuf,
    pub(crate) config: UpdaterConfig,
    pub(crate) registry: RegistryOptions,
    deadline: std::time::Duration,
}

impl Resolver {
    /// A resolver over `policy`, caching trusted metadata under `cache_dir` (one directory
    /// per root of trust).
    pub fn new(policy: TrustPolicy, cache_dir: impl Into<PathBuf>) -> Self {
        // Anyone with push access to a metadata repository can list junk candidates with
        // high version hints; the updater tries as many as the source examines
        // (`ocituf_oci::tuf_source::MAX_CANDIDATES`), so junk below that bound never hides a
        // valid newer version, and junk above it is a bounded denial of service.
        let mut config = UpdaterConfig::default();
        config.max_candidates = u32::try_from(ocituf_oci::tuf_source::MAX_CANDIDATES).unwrap_or(32);
        Self {
            policy,
            cache_dir: cache_dir.into(),
            config,
            registry: RegistryOptions::default(),
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// Give up on a resolve after `deadline` ([`Error::Deadline`]); [`DEFAULT_DEADLINE`]
    /// otherwise.
    #[must_use]
    pub fn with_deadline(mut self, deadline: std::time::Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Reach registries with `options` (extra CA certificates, plain HTTP, credentials).
    #[must_use]
    pub fn with_registry_options(mut self, options: RegistryOptions) -> Self {
        self.registry = options;
        self
    }

    /// Verify `image` and return its signed digest.
    ///
    /// # Errors
    /// [`Error::UnknownScope`] when no root of trust covers the image; the refusals
    /// ([`Error::NotSigned`], [`Error::DigestMismatch`], [`Error::Metadata`], …) when the image
    /// or the metadata fails a check; [`Error::ImageFetch`] when the registry fails.
    ///
    /// # Security
    /// Trust starts at the pinned root of the policy entry, never at the cache or the
    /// registry. The manifest the registry serves for the tag is hashed as received and must
    /// have the signed sha256 and length; a reference that carries a digest must carry the
    /// signed one.
    pub async fn resolve(&self, image: &ImageReference) -> Result<VerifiedDigest, Error> {
        match tokio::time::timeout(self.deadline, self.resolve_unbounded(image)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Deadline {
                image: image.to_string(),
                after: self.deadline,
            }),
        }
    }

    async fn resolve_unbounded(&self, image: &ImageReference) -> Result<VerifiedDigest, Error> {
        let entry = self.policy.lookup(image)?;
        let metadata_store = store::open_with(&entry.repository, &self.registry)?;
        let name =
            RootOfTrustName::parse(&entry.root_of_trust).map_err(|source| Error::OpenStore {
                repository: entry.repository.to_string(),
                source,
            })?;
        let cache = self.cache_for(entry);
        let target = target_name(image)?;
        // What an earlier process learnt about the registry's referrers support saves the
        // detection request (a 404 on distribution 2.8) of a warm verification.
        let remembered = metadata_store.remember_referrers_capability(&cache);
        let (updater, info) = match self
            .lookup(entry, &metadata_store, &name, &cache, &target)
            .await
        {
            // The remembered capability may be wrong (the file is untrusted, or the registry
            // gained the referrers API and its fallback index went stale): detect again.
            // Network failures are not retried: detection would not help.
            Err(e) if remembered && e.kind() != crate::ErrorKind::Network => {
                tracing::debug!(error = %e, "retrying without the remembered referrers capability");
                metadata_store.forget_referrers_capability(&cache);
                self.lookup(entry, &metadata_store, &name, &cache, &target)
                    .await?
            }
            other => other?,
        };
        metadata_store.save_referrers_capability(&cache);
        let info = info.ok_or_else(|| Error::NotSigned {
            image: image.to_string(),
            target: target.clone(),
            root_of_trust: entry.root_of_trust.clone(),
        })?;
        let (role, role_version) = signing_role(updater.trusted(), &info);
        let signed = info
            .hashes
            .get("sha256")
            .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok())
            .ok_or_else(|| Error::NoSha256 {
                target: target.clone(),
                role: role.clone(),
            })?;
        let versions = ocituf_tuf::updater::trusted_versions(updater.trusted());
        let metadata_requests = updater.source().requests();
        let metadata_bytes = updater.source().bytes_fetched();
        let registry_requests = match &metadata_store {
            AnyStore::Registry(r) => Some(r.client().request_count()),
            _ => None,
        };
        let media_type = info
            .custom
            .as_ref()
            .and_then(|c| c.pointer("/oci/mediaType"))
            .and_then(|m| m.as_str())
            .map(str::to_owned);

        if let Some(asked) = &image.digest {
            if *asked != signed {
                return Err(Error::DigestMismatch {
                    image: image.to_string(),
                    target,
                    role,
                    role_version,
                    served: asked.clone(),
                    signed,
                });
            }
        }
        // A reference by digest alone needs no registry answer: the runtime pulls by that
        // digest and checks the bytes itself. A tag is what a registry can move.
        if let Some(tag) = &image.tag {
            let image_store = store::open_with(&image.repo, &self.registry)?;
            check_served(
                &image_store,
                image,
                tag,
                &info,
                &signed,
                &role,
                role_version,
            )
            .await?;
        }
        Ok(VerifiedDigest {
            image: image.clone(),
            digest: signed,
            length: info.length,
            media_type,
            target: info.path.clone(),
            role,
            role_version,
            root_of_trust: entry.root_of_trust.clone(),
            repository: entry.repository.clone(),
            versions,
            metadata_requests,
            metadata_bytes,
            registry_requests,
        })
    }

    /// From the pinned root to the trusted metadata (refreshed, cached in `cache`) and the
    /// target's signed info, if any role lists it.
    async fn lookup(
        &self,
        entry: &TrustEntry,
        metadata_store: &AnyStore,
        name: &RootOfTrustName,
        cache: &Path,
        target: &str,
    ) -> Result<
        (
            Updater<OciRepoSource<AnyStore>, FsStore, SystemClock>,
            Option<TargetInfo>,
        ),
        Error,
    > {
        let new_source = || OciRepoSource::new(metadata_store.clone(), name.clone());
        let source = new_source();
        let anchor = pinned_root(entry, &source).await?;
        let meta_err = |source: ocituf_tuf::Error| Error::Metadata {
            root_of_trust: entry.root_of_trust.clone(),
            repository: entry.repository.to_string(),
            source: Box::new(source),
        };
        let mut updater = match self.refreshed(&anchor, source, cache).await {
            // The cache is untrusted input: when it cannot be used (a cached file longer than
            // the new limit, unreadable files), start again from the pinned root with an
            // empty cache instead of failing.
            Err(ocituf_tuf::Error::Store(_)) => {
                remove_damaged_cache(cache);
                self.refreshed(&anchor, new_source(), cache)
                    .await
                    .map_err(meta_err)?
            }
            other => other.map_err(meta_err)?,
        };
        let info = updater.target_info(target).await.map_err(meta_err)?;
        Ok((updater, info))
    }

    pub(crate) async fn refreshed(
        &self,
        anchor: &[u8],
        source: OciRepoSource<AnyStore>,
        cache: &Path,
    ) -> Result<Updater<OciRepoSource<AnyStore>, FsStore, SystemClock>, ocituf_tuf::Error> {
        let fs = FsStore::open(cache, RootHistory::Keep)?;
        // A warm cache and nothing new: the top listing is the only registry request.
        source.remember_cached_timestamp(&fs).await;
        let mut updater =
            Updater::new(anchor, source, fs, self.config.clone(), SystemClock).await?;
        updater.refresh().await?;
        Ok(updater)
    }

    /// The cache directory of one root of trust: a readable prefix plus a hash of the
    /// repository and name, so two roots of trust never share a directory.
    pub fn cache_for(&self, entry: &TrustEntry) -> PathBuf {
        let key = format!("{}\n{}", entry.repository.absolute(), entry.root_of_trust);
        let hash = Digest::of(key.as_bytes());
        self.cache_dir
            .join("roots")
            .join(format!("{}-{}", entry.root_of_trust, &hash.hex()[..16]))
    }
}

/// Remove a cache that cannot be used, whatever it became: a directory, or a file (or a
/// symbolic link, removed itself, never followed) where the directory should be. Failures
/// are left to the next open, which reports them.
fn remove_damaged_cache(cache: &Path) {
    match std::fs::symlink_metadata(cache) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(cache);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(cache);
        }
        Err(_) => {}
    }
}

/// The TUF target name of an image: `repository:tag`, or `repository@sha256:…` for a
/// reference by digest alone (docs/oci-mapping.md §7).
pub(crate) fn target_name(image: &ImageReference) -> Result<String, Error> {
    match (&image.tag, &image.digest) {
        (Some(tag), _) => Ok(format!("{}:{tag}", image.repo.repository)),
        (None, Some(d)) => Ok(format!("{}@{d}", image.repo.repository)),
        (None, None) => Err(Error::InvalidReference {
            input: image.to_string(),
            reason: "neither tag nor digest".into(),
        }),
    }
}

/// The anchor root: the pinned file (checked against its pinned digest), or root version 1
/// from the repository, accepted only with the pinned digest.
pub(crate) async fn pinned_root(
    entry: &TrustEntry,
    source: &OciRepoSource<AnyStore>,
) -> Result<Vec<u8>, Error> {
    if let Some(file) = &entry.root.file {
        return pinned_file(file, entry.root.sha256.as_deref());
    }
    let Some(hex) = &entry.root.sha256 else {
        return Err(Error::PinnedRootNotInRepository {
            repository: entry.repository.to_string(),
            root_of_trust: entry.root_of_trust.clone(),
            sha256: String::new(),
        });
    };
    source.start_refresh();
    for attempt in 0..8 {
        let req = MetadataRequest {
            role: "root",
            version: Some(1),
            hashes: None,
            max_len: MAX_ROOT_LEN,
            attempt,
        };
        let fetched = source
            .fetch_metadata(&req)
            .await
            .map_err(|source| Error::Metadata {
                root_of_trust: entry.root_of_trust.clone(),
                repository: entry.repository.to_string(),
                source: Box::new(source.into()),
            })?;
        let Some(fetched) = fetched else { break };
        if Digest::of(&fetched.bytes).hex() == hex {
            return Ok(fetched.bytes);
        }
    }
    Err(Error::PinnedRootNotInRepository {
        repository: entry.repository.to_string(),
        root_of_trust: entry.root_of_trust.clone(),
        sha256: hex.clone(),
    })
}

/// The pinned root file, checked against its pinned sha256 when the policy has one.
pub(crate) fn pinned_file(file: &Path, sha256: Option<&str>) -> Result<Vec<u8>, Error> {
    let bytes = read_bounded(file)?;
    if let Some(hex) = sha256 {
        let actual = Digest::of(&bytes);
        if actual.hex() != hex {
            return Err(Error::PinnedRootDigest {
                path: file.to_owned(),
                expected: hex.to_owned(),
                actual: actual.hex().to_owned(),
            });
        }
    }
    Ok(bytes)
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, Error> {
    use ocituf_tuf::fsio::{self, FileError};
    let source = match fsio::read_bounded(path, MAX_ROOT_LEN) {
        Ok(Some(bytes)) => return Ok(bytes),
        Ok(None) => std::io::Error::from(std::io::ErrorKind::NotFound),
        Err(FileError::TooLarge { max_len }) => {
            std::io::Error::other(format!("longer than {max_len} bytes"))
        }
        Err(e) => std::io::Error::other(e),
    };
    Err(Error::PinnedRootRead {
        path: path.to_owned(),
        source,
    })
}

/// Which loaded targets role lists `info` (pre-order, as the search found it), for messages.
pub(crate) fn signing_role(set: &TrustedSet, info: &TargetInfo) -> (String, u64) {
    let lists = |t: &Targets| {
        t.targets
            .get(&info.path)
            .is_some_and(|f| f.hashes == info.hashes && f.length == info.length)
    };
    let mut stack = vec!["targets".to_owned()];
    let mut seen = Vec::new();
    while let Some(role) = stack.pop() {
        if seen.contains(&role) || seen.len() > 4096 {
            continue;
        }
        seen.push(role.clone());
        let t = if role == "targets" {
            set.targets()
        } else {
            set.delegated_targets(&role)
        };
        let Some(t) = t else { continue };
        if lists(t) {
            return (role, t.version);
        }
        if let Some(d) = &t.delegations {
            let mut children: Vec<String> = d
                .roles_for_target(&info.path)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            children.reverse();
            stack.extend(children);
        }
    }
    ("targets".to_owned(), set.targets().map_or(0, |t| t.version))
}

/// Fetch what the registry serves for the tag and compare it with the signed digest.
pub(crate) async fn check_served(
    store: &AnyStore,
    image: &ImageReference,
    tag: &str,
    info: &TargetInfo,
    signed: &Digest,
    role: &str,
    role_version: u64,
) -> Result<(), Error> {
    let served = store.get_manifest(ManifestRef::Tag(tag), info.length).await;
    let manifest = match served {
        Ok(Some(m)) => m,
        Ok(None) => {
            return Err(Error::ImageMissing {
                image: image.to_string(),
            })
        }
        Err(ocituf_oci::Error::TooLarge { .. }) => {
            return Err(Error::ServedTooLarge {
                image: image.to_string(),
                role: role.to_owned(),
                role_version,
                length: info.length,
                signed: signed.clone(),
            })
        }
        Err(source) => {
            return Err(Error::ImageFetch {
                image: image.to_string(),
                source: Box::new(source),
            })
        }
    };
    // Hash the bytes as received: the registry's own digest header is not trusted.
    let served = Digest::of(&manifest.bytes);
    if served != *signed || manifest.bytes.len() as u64 != info.length {
        return Err(Error::DigestMismatch {
            image: image.to_string(),
            target: info.path.clone(),
            role: role.to_owned(),
            role_version,
            served,
            signed: signed.clone(),
        });
    }
    Ok(())
}
