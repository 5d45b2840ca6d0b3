//! Offline verification (`ocituf verify --offline`): from the trusted cache of a root of trust
//! and, optionally, an air-gap bundle (an OCI image layout written by `ocituf bundle export`,
//! docs/oci-mapping.md §10), never the network.
//!
//! The bundle is untrusted input exactly like a registry: its metadata goes through the same
//! TUF updater from the pinned root, with the cache as the rollback reference, so an older
//! bundle, a bundle of another root of trust or a swapped blob is refused. Nothing reaches
//! the cache before the whole verification succeeded (an [`Overlay`] holds the writes), so a
//! refused bundle changes no trusted state.
//!
//! Expired metadata is refused ([`Error::OfflineExpired`], its own exit code). Under
//! [`ExpiryPolicy::DangerAllowExpired`] verification is repeated at an instant just before
//! each expiry it met (every other check unchanged), the expired roles are reported, and the
//! cache is left as it was.

use std::path::PathBuf;

use ocituf_oci::{
    ArtifactStore as _, Digest, LayoutStore, ManifestRef, OciRepoSource, RootOfTrustName,
};
use ocituf_tuf::{Clock, FsStore, MetadataRequest, RepoSource, RootHistory, TargetInfo, Updater};
use time::OffsetDateTime;

use crate::error::Error;
use crate::policy::TrustEntry;
use crate::reference::ImageReference;
use crate::resolve::{check_served, pinned_file, pinned_root, signing_role, target_name};
use crate::store::AnyStore;
use crate::{Resolver, VerifiedDigest};

mod overlay;
use overlay::{CacheSource, Overlay};

/// Whether expired metadata may be used offline. Accepting it is a decision to trust
/// metadata whose signers no longer vouch for it (a frozen or revoked state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpiryPolicy {
    /// Expired metadata is refused (TUF 5.3.10, 5.4.4, 5.5.6, 5.6.5).
    #[default]
    Enforce,
    /// DANGEROUS: expired metadata is accepted; every other check still applies.
    DangerAllowExpired,
}

/// Where offline verification may read from.
#[derive(Debug, Clone, Default)]
pub struct Offline {
    /// An air-gap bundle directory; `None`: the trusted cache alone.
    pub bundle: Option<PathBuf>,
    pub expiry: ExpiryPolicy,
}

/// A role whose expiry was ignored under [`ExpiryPolicy::DangerAllowExpired`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredExpiry {
    pub role: String,
    pub expires: OffsetDateTime,
}

/// What offline verification proved.
#[derive(Debug, Clone)]
pub struct OfflineVerified {
    pub verified: VerifiedDigest,
    /// Whether the bundle held a manifest for the tag and it had the signed digest. `false`
    /// for a reference by digest, or when no bundle holds the image: the signed digest is
    /// what to pull, and the runtime checks the pulled bytes against it.
    pub manifest_checked: bool,
    /// Roles accepted although expired (only under `DangerAllowExpired`); the cache was not
    /// written when this is not empty.
    pub ignored_expiries: Vec<IgnoredExpiry>,
}

/// At most this many expiries are stepped over before giving up (one per role class and a
/// few delegations; the search is bounded anyway).
const MAX_IGNORED_EXPIRIES: usize = 16;

impl Resolver {
    /// Verify `image` offline: from the trusted cache of its root of trust and, when given,
    /// the bundle; never the network.
    ///
    /// # Errors
    /// [`Error::OfflineExpired`] for expired metadata (unless allowed);
    /// [`Error::BundleRootMismatch`] for a bundle of another root of trust;
    /// [`Error::OfflineSource`] for a corrupt or tampered file; the refusals of
    /// [`Resolver::resolve`] ([`Error::Metadata`] for a rollback or a bad signature,
    /// [`Error::NotSigned`], [`Error::DigestMismatch`]); [`Error::OfflineNoMetadata`] when
    /// neither the cache nor the bundle holds metadata; [`Error::BundleMissing`].
    ///
    /// # Security
    /// Trust starts at the pinned root; the cache and the bundle are untrusted input. The
    /// cache is written only after every check passed, and never when an expiry was ignored.
    pub async fn resolve_offline(
        &self,
        image: &ImageReference,
        offline: &Offline,
    ) -> Result<OfflineVerified, Error> {
        let entry = self.policy.lookup(image)?;
        let name =
            RootOfTrustName::parse(&entry.root_of_trust).map_err(|source| Error::OpenStore {
                repository: entry.repository.to_string(),
                source,
            })?;
        let cache = self.cache_for(entry);
        let target = target_name(image)?;
        let ((set, info), ignored) = if let Some(dir) = &offline.bundle {
            let meta = AnyStore::Layout(bundle_store(dir, &entry.repository.repository)?);
            let source = || OciRepoSource::new(meta.clone(), name.clone());
            let anchor = pinned_root(entry, &source()).await?;
            check_bundle_root(dir, entry, &source(), &anchor).await?;
            let job = Job {
                entry,
                anchor: &anchor,
                cache: &cache,
                target: &target,
                expiry: offline.expiry,
                place: format!("the bundle {}", dir.display()),
            };
            self.verify_offline(&job, source).await?
        } else {
            let anchor = pinned_root_file(entry)?;
            let fs = open_cache(&cache)?;
            let job = Job {
                entry,
                anchor: &anchor,
                cache: &cache,
                target: &target,
                expiry: offline.expiry,
                place: format!("the trusted cache {}", cache.display()),
            };
            self.verify_offline(&job, || CacheSource(fs.clone()))
                .await?
        };
        let Some(info) = info else {
            return Err(Error::NotSigned {
                image: image.to_string(),
                target,
                root_of_trust: entry.root_of_trust.clone(),
            });
        };
        let (verified, manifest_checked) =
            checked_digest(image, entry, &set, &info, offline.bundle.as_deref()).await?;
        Ok(OfflineVerified {
            verified,
            manifest_checked,
            ignored_expiries: ignored,
        })
    }

    /// Run the updater from `anchor` over `source` with the cache as the rollback reference,
    /// through an overlay; commit the overlay only on success with no ignored expiry.
    async fn verify_offline<S: RepoSource>(
        &self,
        job: &Job<'_>,
        source: impl Fn() -> S,
    ) -> Result<
        (
            (ocituf_tuf::TrustedSet, Option<TargetInfo>),
            Vec<IgnoredExpiry>,
        ),
        Error,
    > {
        let Job {
            entry,
            anchor,
            cache,
            target,
            expiry,
            place,
        } = job;
        // Name where the metadata came from (the bundle or the cache), not the registry
        // that was never contacted.
        let meta_err = |source: ocituf_tuf::Error| Error::Metadata {
            root_of_trust: entry.root_of_trust.clone(),
            repository: format!("{place} (offline, for {})", entry.repository),
            source: Box::new(source),
        };
        let mut ignored: Vec<IgnoredExpiry> = Vec::new();
        let mut at: Option<OffsetDateTime> = None;
        loop {
            let overlay = Overlay::new(open_cache(cache)?);
            let attempt = async {
                let mut updater = Updater::new(
                    anchor,
                    source(),
                    overlay.clone(),
                    self.config.clone(),
                    OfflineClock(at),
                )
                .await?;
                updater.refresh().await?;
                let info = updater.target_info(target).await?;
                Ok::<_, ocituf_tuf::Error>((updater.trusted().clone(), info))
            };
            match attempt.await {
                Ok(found) => {
                    if ignored.is_empty() {
                        overlay.commit().await.map_err(|source| Error::Cache {
                            path: cache.to_path_buf(),
                            source,
                        })?;
                    }
                    return Ok((found, ignored));
                }
                Err(ocituf_tuf::Error::Expired { role, expires }) => {
                    if *expiry == ExpiryPolicy::Enforce {
                        return Err(Error::OfflineExpired {
                            root_of_trust: entry.root_of_trust.clone(),
                            role,
                            expires,
                        });
                    }
                    if ignored.len() >= MAX_IGNORED_EXPIRIES
                        || ignored
                            .iter()
                            .any(|i| i.role == role && i.expires == expires)
                    {
                        return Err(meta_err(ocituf_tuf::Error::Expired { role, expires }));
                    }
                    // Check again at an instant this role was still valid; earlier instants
                    // keep every expiry already stepped over valid too.
                    let before = expires
                        .checked_sub(time::Duration::seconds(1))
                        .unwrap_or(expires);
                    at = Some(at.map_or(before, |t| t.min(before)));
                    ignored.push(IgnoredExpiry { role, expires });
                }
                Err(ocituf_tuf::Error::NotFound { what }) if what == "timestamp" => {
                    return Err(Error::OfflineNoMetadata {
                        root_of_trust: entry.root_of_trust.clone(),
                        place: place.clone(),
                        repository: entry.repository.repository.clone(),
                    });
                }
                // Everything comes from local files: a fetch that failed is a bundle (or
                // cache) that is corrupt or tampered, not a network failure.
                Err(e @ ocituf_tuf::Error::Source(_)) => {
                    return Err(Error::OfflineSource {
                        where_: place.clone(),
                        root_of_trust: entry.root_of_trust.clone(),
                        source: Box::new(e),
                    })
                }
                Err(e) => return Err(meta_err(e)),
            }
        }
    }
}

/// One offline verification: what it starts from and checks.
struct Job<'a> {
    entry: &'a TrustEntry,
    anchor: &'a [u8],
    cache: &'a std::path::Path,
    target: &'a str,
    expiry: ExpiryPolicy,
    /// Where the metadata comes from, for messages.
    place: String,
}

/// The signed digest of `info` checked against the reference (a digest it carries must be
/// the signed one) and, when the bundle holds the tag, against the bundle's manifest.
async fn checked_digest(
    image: &ImageReference,
    entry: &TrustEntry,
    set: &ocituf_tuf::TrustedSet,
    info: &TargetInfo,
    bundle: Option<&std::path::Path>,
) -> Result<(VerifiedDigest, bool), Error> {
    let (role, role_version) = signing_role(set, info);
    let signed = info
        .hashes
        .get("sha256")
        .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok())
        .ok_or_else(|| Error::NoSha256 {
            target: info.path.clone(),
            role: role.clone(),
        })?;
    if let Some(asked) = &image.digest {
        if *asked != signed {
            return Err(Error::DigestMismatch {
                image: image.to_string(),
                target: info.path.clone(),
                role,
                role_version,
                served: asked.clone(),
                signed,
            });
        }
    }
    let mut manifest_checked = false;
    if let (Some(tag), Some(dir)) = (&image.tag, bundle) {
        let images = AnyStore::Layout(bundle_store(dir, &image.repo.repository)?);
        // The bundle may carry metadata only; when it has the tag, it must be the signed
        // manifest.
        let present = images
            .head_manifest(ManifestRef::Tag(tag))
            .await
            .map_err(|source| Error::ImageFetch {
                image: image.to_string(),
                source: Box::new(source),
            })?;
        if present.is_some() {
            check_served(&images, image, tag, info, &signed, &role, role_version).await?;
            manifest_checked = true;
        }
    }
    let media_type = ocituf_oci::image::custom_media_type(info.custom.as_ref()).map(str::to_owned);
    let verified = VerifiedDigest {
        image: image.clone(),
        digest: signed,
        length: info.length,
        media_type,
        target: info.path.clone(),
        role,
        role_version,
        root_of_trust: entry.root_of_trust.clone(),
        repository: entry.repository.clone(),
        versions: ocituf_tuf::updater::trusted_versions(set),
        metadata_requests: 0,
        metadata_bytes: 0,
        registry_requests: None,
    };
    Ok((verified, manifest_checked))
}

/// A bundle whose root version 1 is not the pinned root is another root of trust of the
/// same name: say so, rather than the signature check it would fail later.
async fn check_bundle_root(
    dir: &std::path::Path,
    entry: &TrustEntry,
    source: &OciRepoSource<AnyStore>,
    anchor: &[u8],
) -> Result<(), Error> {
    source.start_refresh();
    let mut found = None;
    for attempt in 0..8 {
        let req = MetadataRequest {
            role: "root",
            version: Some(1),
            hashes: None,
            max_len: ocituf_tuf::UpdaterConfig::default().root_max_len,
            attempt,
        };
        // Unreadable candidates are left to the updater, which reports them.
        let Ok(Some(fetched)) = source.fetch_metadata(&req).await else {
            break;
        };
        if fetched.bytes == anchor {
            return Ok(());
        }
        found.get_or_insert_with(|| Digest::of(&fetched.bytes));
    }
    match found {
        Some(found) => Err(Error::BundleRootMismatch {
            bundle: dir.to_owned(),
            root_of_trust: entry.root_of_trust.clone(),
            pinned: Digest::of(anchor).hex().to_owned(),
            found: found.hex().to_owned(),
        }),
        None => Ok(()),
    }
}

/// The bundle's repository `repository`; the bundle must exist (a missing directory is a
/// mistake, not "no metadata").
fn bundle_store(dir: &std::path::Path, repository: &str) -> Result<LayoutStore, Error> {
    if !dir.join("oci-layout").is_file() {
        return Err(Error::BundleMissing {
            path: dir.to_owned(),
        });
    }
    LayoutStore::new(dir, repository).map_err(|source| Error::OpenStore {
        repository: format!("oci:{}:{repository}", dir.display()),
        source,
    })
}

/// The pinned root without a bundle: only a pinned file can be had offline.
fn pinned_root_file(entry: &TrustEntry) -> Result<Vec<u8>, Error> {
    let Some(file) = &entry.root.file else {
        return Err(Error::PinnedRootNotInRepository {
            repository: "the trusted cache (offline, no --bundle)".to_owned(),
            root_of_trust: entry.root_of_trust.clone(),
            sha256: entry.root.sha256.clone().unwrap_or_default(),
        });
    };
    pinned_file(file, entry.root.sha256.as_deref())
}

fn open_cache(cache: &std::path::Path) -> Result<FsStore, Error> {
    FsStore::open(cache, RootHistory::Keep).map_err(|source| Error::Cache {
        path: cache.to_owned(),
        source,
    })
}

/// The clock of offline verification: the system clock, or a fixed instant before an
/// expiry the user chose to ignore.
struct OfflineClock(Option<OffsetDateTime>);

impl Clock for OfflineClock {
    fn now(&self) -> OffsetDateTime {
        self.0.unwrap_or_else(OffsetDateTime::now_utc)
    }
}
