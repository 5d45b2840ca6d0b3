//! A TUF [`RepoSource`] over any [`ArtifactStore`]: the updater of `ocituf-tuf` runs
//! unchanged against a registry or an OCI layout (docs/oci-mapping.md section 6).
//!
//! - One referrers listing of the top-level anchor per refresh answers both "is there root
//!   N+1" (TUF 5.3.3) and "which timestamps exist" (TUF 5.4); it is memoized until the next
//!   [`RepoSource::start_refresh`].
//! - Snapshot, targets and delegated roles are fetched as blobs by the sha256 their trusted
//!   parent lists; only when the parent lists no hash is the role's own anchor listed.
//! - Candidates are ordered by their (untrusted) version hint, highest first, and served one
//!   per `attempt`; a candidate that cannot even be fetched (missing, malformed, too large,
//!   wrong digest) is skipped inside the source, and at most [`MAX_CANDIDATES`] are examined
//!   per request, so junk costs a bounded amount of work.
//! - Blobs are content-addressed: bytes already seen (or handed in with
//!   [`OciRepoSource::remember_blob`]) are reused by digest, so a warm refresh with nothing
//!   new costs one request.
//!
//! This module decides nothing about validity: every byte it returns goes through the TUF
//! checks of the updater. It does not fetch targets (images are verified by the resolver
//! against target hashes, not downloaded through TUF).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ocituf_tuf::{Fetched, MetadataRequest, RepoSource, SourceError, TargetRequest, TrustedStore};

use crate::mapping::{
    check_role_name, parse_role_manifest, Anchor, Hints, RoleClass, RootOfTrustName,
    MAX_MANIFEST_LEN,
};
use crate::store::{ArtifactStore, Descriptor, Digest, ManifestRef};
use crate::Error;

/// At most this many candidates are examined for one metadata request.
pub const MAX_CANDIDATES: usize = 32;
/// Blobs up to this size are kept for reuse by digest.
const CACHE_BLOB_MAX: usize = 1024 * 1024;
/// Total bytes kept for reuse by digest.
const CACHE_TOTAL_MAX: usize = 8 * 1024 * 1024;

/// One listed version of a role: its descriptor and the hints it carries.
#[derive(Debug, Clone)]
struct Candidate {
    descriptor: Descriptor,
    hints: Hints,
    version: u64,
}

#[derive(Default)]
struct State {
    /// Referrers of each anchor, for this refresh.
    listings: HashMap<Digest, Arc<Vec<Descriptor>>>,
    /// For each (role, version) request of this refresh: the candidate index each attempt
    /// was answered with.
    cursors: HashMap<(String, Option<u64>), Vec<usize>>,
    /// Content-addressed bytes, kept across refreshes (insertion order for eviction).
    blobs: HashMap<Digest, Arc<Vec<u8>>>,
    blob_order: VecDeque<Digest>,
    blob_bytes: usize,
}

/// TUF metadata of one root of trust, read from an [`ArtifactStore`].
pub struct OciRepoSource<A> {
    store: A,
    root_of_trust: RootOfTrustName,
    top: Anchor,
    state: Mutex<State>,
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl<A: ArtifactStore> OciRepoSource<A> {
    pub fn new(store: A, root_of_trust: RootOfTrustName) -> Self {
        let top = Anchor::top(&root_of_trust);
        Self {
            store,
            root_of_trust,
            top,
            state: Mutex::new(State::default()),
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    pub fn store(&self) -> &A {
        &self.store
    }

    pub fn root_of_trust(&self) -> &RootOfTrustName {
        &self.root_of_trust
    }

    /// The top-level anchor whose referrers are every root and timestamp version.
    pub fn top_anchor(&self) -> &Anchor {
        &self.top
    }

    /// How many store calls (registry requests) this source made so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// How many bytes of blobs and manifests this source fetched so far (metadata files,
    /// Merkle nodes, role-version manifests; listings are not counted: their size is the
    /// transport's).
    pub fn bytes_fetched(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Offer bytes the caller already has (e.g. the cached timestamp), to be reused when a
    /// listing names their digest. Safe with untrusted bytes: they are keyed by their own
    /// sha256, and served only for that digest (then verified by TUF like any download).
    pub fn remember_blob(&self, bytes: Vec<u8>) {
        let digest = Digest::of(&bytes);
        self.lock().insert_blob(digest, Arc::new(bytes));
    }

    /// Offer the timestamp cached in `cache` (the updater's `TrustedStore`) with
    /// [`Self::remember_blob`], so that a new process with a warm cache refreshes with one
    /// request. Call it before the first refresh; errors and absence are ignored (the
    /// timestamp is then downloaded, which is only slower).
    pub async fn remember_cached_timestamp<T: TrustedStore>(&self, cache: &T) {
        if let Ok(Some(bytes)) = cache.load("timestamp", CACHE_BLOB_MAX as u64).await {
            self.remember_blob(bytes);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only caches behind: keep using them.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A blob by digest: from the cache, else from the store, checked against the digest.
    async fn blob(&self, digest: &Digest, max_len: u64) -> Result<Option<Arc<Vec<u8>>>, Error> {
        let cached = self.lock().blobs.get(digest).cloned();
        if let Some(bytes) = cached {
            if bytes.len() as u64 > max_len {
                return Err(Error::TooLarge {
                    what: format!("blob {digest}"),
                    max_len,
                });
            }
            return Ok(Some(bytes));
        }
        self.count();
        let Some(bytes) = self.store.get_blob(digest, max_len).await? else {
            return Ok(None);
        };
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if bytes.len() as u64 > max_len {
            return Err(Error::TooLarge {
                what: format!("blob {digest}"),
                max_len,
            });
        }
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(Error::DigestMismatch {
                what: format!("blob from {}", self.store.location()),
                expected: digest.clone(),
                actual,
            });
        }
        let bytes = Arc::new(bytes);
        self.lock().insert_blob(digest.clone(), Arc::clone(&bytes));
        Ok(Some(bytes))
    }

    /// The referrers of `anchor`, once per refresh.
    async fn listing(&self, anchor: &Anchor) -> Result<Arc<Vec<Descriptor>>, Error> {
        if let Some(l) = self.lock().listings.get(anchor.digest()) {
            return Ok(Arc::clone(l));
        }
        self.count();
        let (list, _) = self.store.referrers(anchor.digest(), None).await?;
        let list = Arc::new(list);
        self.lock()
            .listings
            .insert(anchor.digest().clone(), Arc::clone(&list));
        Ok(list)
    }

    /// The candidates for a request, best first (docs/oci-mapping.md 6.2-6.4).
    async fn candidates(
        &self,
        role: &str,
        version: Option<u64>,
    ) -> Result<(Anchor, Vec<Candidate>), Error> {
        let class = RoleClass::of_role(role);
        let anchor = Anchor::for_role(&self.root_of_trust, role)?;
        let listing = self.listing(&anchor).await?;
        let mut out: Vec<Candidate> = listing
            .iter()
            .filter(|d| d.artifact_type.as_deref() == Some(class.artifact_type()))
            .filter_map(|d| {
                let hints = Hints::from_annotations(&d.annotations);
                let v = hints.version?;
                (hints.may_be(&self.root_of_trust, role) && version.is_none_or(|want| want == v))
                    .then(|| Candidate {
                        descriptor: d.clone(),
                        hints,
                        version: v,
                    })
            })
            .collect();
        // Highest claimed version first; ties in a fixed order. Claims are checked by the
        // updater (claimed_version) and by signatures, never trusted here.
        out.sort_by(|a, b| {
            b.version
                .cmp(&a.version)
                .then_with(|| a.descriptor.digest.cmp(&b.descriptor.digest))
        });
        // A looping listing (the same entry many times over) must not spend the candidate
        // bound: identical (digest, claimed version) pairs are adjacent after the sort.
        out.dedup_by(|a, b| a.version == b.version && a.descriptor.digest == b.descriptor.digest);
        Ok((anchor, out))
    }

    /// The metadata bytes of one candidate; `Ok(None)` when they are not there.
    async fn fetch_candidate(
        &self,
        anchor: &Anchor,
        class: RoleClass,
        c: &Candidate,
        max_len: u64,
    ) -> Result<Option<Arc<Vec<u8>>>, Error> {
        // Straight from the listing to the blob (docs/oci-mapping.md 6.5).
        if let Some(md) = &c.hints.metadata_digest {
            if let Some(bytes) = self.blob(md, max_len).await? {
                return Ok(Some(bytes));
            }
        }
        self.count();
        let digest = &c.descriptor.digest;
        let Some(manifest) = self
            .store
            .get_manifest(ManifestRef::Digest(digest), MAX_MANIFEST_LEN)
            .await?
        else {
            return Ok(None);
        };
        self.bytes
            .fetch_add(manifest.bytes.len() as u64, Ordering::Relaxed);
        let actual = Digest::of(&manifest.bytes);
        if actual != *digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest from {}", self.store.location()),
                expected: digest.clone(),
                actual,
            });
        }
        let parsed = parse_role_manifest(digest.as_str(), &manifest.bytes)?;
        if parsed.subject.as_ref() != Some(anchor.digest())
            || parsed.artifact_type.as_deref() != Some(class.artifact_type())
        {
            return Err(Error::MalformedManifest {
                what: digest.to_string(),
                reason: "not a version of this role (subject or artifactType differ)".to_owned(),
            });
        }
        if parsed.metadata_size > max_len {
            return Err(Error::TooLarge {
                what: format!("metadata layer {}", parsed.metadata_digest),
                max_len,
            });
        }
        self.blob(&parsed.metadata_digest, max_len).await
    }

    /// Serve `attempt` of a listed request: the attempt-th candidate that can be fetched.
    async fn fetch_listed(&self, req: &MetadataRequest<'_>) -> Result<Option<Fetched>, Error> {
        let class = RoleClass::of_role(req.role);
        let key = (req.role.to_owned(), req.version);
        let (anchor, candidates) = self.candidates(req.role, req.version).await?;
        let attempt = usize::try_from(req.attempt).unwrap_or(usize::MAX);
        let known = self.lock().cursors.get(&key).cloned().unwrap_or_default();
        if let Some(&idx) = known.get(attempt) {
            // Asked again for an attempt already answered: same candidate.
            if let Some(c) = candidates.get(idx) {
                if let Some(bytes) = self.fetch_candidate(&anchor, class, c, req.max_len).await? {
                    return Ok(Some(fetched(&bytes, c.version)));
                }
            }
            return Ok(None);
        }
        let mut answered = known.len();
        let start = known.last().map_or(0, |i| i + 1);
        let mut first_skip: Option<Error> = None;
        for (idx, c) in candidates
            .iter()
            .enumerate()
            .take(MAX_CANDIDATES)
            .skip(start)
        {
            match self.fetch_candidate(&anchor, class, c, req.max_len).await {
                Ok(Some(bytes)) => {
                    self.lock()
                        .cursors
                        .entry(key.clone())
                        .or_default()
                        .push(idx);
                    if answered == attempt {
                        return Ok(Some(fetched(&bytes, c.version)));
                    }
                    answered += 1;
                }
                Ok(None) => {}
                // Junk in the listing: skip it, remember why in case nothing else works.
                Err(e) if is_bad_candidate(&e) => {
                    tracing::debug!(role = req.role, candidate = %c.descriptor.digest, error = %e, "skipping candidate");
                    first_skip.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        match first_skip {
            Some(e) if answered == 0 => Err(e),
            _ => Ok(None),
        }
    }

    async fn fetch(&self, req: &MetadataRequest<'_>) -> Result<Option<Fetched>, Error> {
        if check_role_name(req.role).is_err() {
            return Ok(None);
        }
        let class = RoleClass::of_role(req.role);
        let sha256 = req.hashes.and_then(|h| h.get("sha256"));
        match (class.uses_top_anchor(), sha256) {
            // TUF 5.5/5.6: content-addressed by the hash the trusted parent lists.
            (false, Some(hex)) => {
                if req.attempt > 0 {
                    return Ok(None);
                }
                let digest = Digest::parse(&format!("sha256:{hex}"))?;
                Ok(self.blob(&digest, req.max_len).await?.map(|bytes| Fetched {
                    bytes: bytes.as_ref().clone(),
                    claimed_version: None,
                }))
            }
            _ => self.fetch_listed(req).await,
        }
    }
}

/// Whether an error condemns one candidate (its content), not the transport.
fn is_bad_candidate(e: &Error) -> bool {
    use crate::registry::RegistryError as R;
    matches!(
        e,
        Error::TooLarge { .. }
            | Error::DigestMismatch { .. }
            | Error::MalformedManifest { .. }
            | Error::InvalidDigest(_)
            | Error::Registry(
                R::BodyTooLarge { .. }
                    | R::DigestMismatch { .. }
                    | R::InvalidJson { .. }
                    | R::InvalidResponse { .. }
            )
    )
}

fn fetched(bytes: &Arc<Vec<u8>>, version: u64) -> Fetched {
    Fetched {
        bytes: bytes.as_ref().clone(),
        claimed_version: Some(version),
    }
}

impl State {
    fn insert_blob(&mut self, digest: Digest, bytes: Arc<Vec<u8>>) {
        if bytes.len() > CACHE_BLOB_MAX || self.blobs.contains_key(&digest) {
            return;
        }
        self.blob_bytes += bytes.len();
        self.blobs.insert(digest.clone(), bytes);
        self.blob_order.push_back(digest);
        while self.blob_bytes > CACHE_TOTAL_MAX {
            let Some(old) = self.blob_order.pop_front() else {
                break;
            };
            if let Some(b) = self.blobs.remove(&old) {
                self.blob_bytes -= b.len();
            }
        }
    }
}

impl<A: ArtifactStore> RepoSource for OciRepoSource<A> {
    fn start_refresh(&self) {
        let mut state = self.lock();
        state.listings.clear();
        state.cursors.clear();
    }

    async fn fetch_metadata(
        &self,
        req: &MetadataRequest<'_>,
    ) -> Result<Option<Fetched>, SourceError> {
        let what = || match req.version {
            Some(v) => format!("{} version {v} from {}", req.role, self.store.location()),
            None => format!("newest {} from {}", req.role, self.store.location()),
        };
        self.fetch(req).await.map_err(|e| match e {
            Error::TooLarge { max_len, .. }
            | Error::Registry(crate::registry::RegistryError::BodyTooLarge {
                limit: max_len,
                ..
            }) => SourceError::TooLarge {
                what: what(),
                max_len,
            },
            e => SourceError::Fetch {
                what: what(),
                source: Box::new(e),
            },
        })
    }

    /// A snapshot Merkle node is the blob with the digest its parent names
    /// (docs/oci-mapping.md §11): one request, no listing.
    async fn fetch_merkle_node(
        &self,
        req: &ocituf_tuf::merkle::NodeRequest,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        let what = || {
            format!(
                "snapshot Merkle node sha256:{} from {}",
                req.sha256,
                self.store.location()
            )
        };
        let digest =
            Digest::parse(&format!("sha256:{}", req.sha256)).map_err(|e| SourceError::Fetch {
                what: what(),
                source: Box::new(e),
            })?;
        match self.blob(&digest, req.max_len).await {
            Ok(bytes) => Ok(bytes.map(|b| b.as_ref().clone())),
            Err(Error::TooLarge { max_len, .. }) => Err(SourceError::TooLarge {
                what: what(),
                max_len,
            }),
            Err(e) => Err(SourceError::Fetch {
                what: what(),
                source: Box::new(e),
            }),
        }
    }

    /// Images are not downloaded through TUF: the resolver compares their digests with the
    /// signed target hashes. There is no target file to fetch.
    async fn fetch_target(&self, _req: &TargetRequest<'_>) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(None)
    }
}
