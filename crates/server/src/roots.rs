//! One trusted state per root of trust, shared by every request.
//!
//! Each policy entry has a [`Slot`]: a [`TrustedRoot`] behind an async mutex. A request
//! takes the lock, refreshes the state when it is older than `max_state_age` or past the
//! earliest expiry of its metadata, looks its target up, and lets go. Requests that arrive
//! while one refreshes wait for that refresh instead of starting their own: concurrent pulls
//! cost one refresh.
//!
//! A slot also remembers the platform manifests listed by the signed indexes it served, so
//! that a runtime that pulled an index by tag may then pull a platform manifest by digest
//! (docs/oci-mapping.md §7). Each use checks again that the index is still signed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, Instant};

use ocituf_oci::Digest;
use ocituf_resolver::{Error, Resolver, TrustEntry, TrustedRoot};
use time::OffsetDateTime;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

/// Where a platform manifest digest was seen: in the verified index `index` of `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedBy {
    /// The signed target whose index lists it (`acme/app:1.0` or `acme/app@sha256:…`).
    pub target: String,
    pub index: Digest,
    /// The size the index lists for the platform manifest.
    pub size: u64,
}

/// Most platform digests remembered per root of trust; past it, the oldest half goes.
const MAX_REMEMBERED_PLATFORMS: usize = 100_000;

/// The state of one root of trust.
pub struct Slot {
    pub entry: TrustEntry,
    state: Mutex<Option<Held>>,
    /// (repository, platform digest) → the signed index that lists it.
    platforms: StdMutex<HashMap<(String, Digest), ListedBy>>,
    pub refreshes: AtomicU64,
    pub refresh_failures: AtomicU64,
}

struct Held {
    root: TrustedRoot,
    refreshed: Instant,
    valid_until: Option<OffsetDateTime>,
}

/// A fresh trusted state, locked for the caller's lookups.
pub type Fresh<'a> = MappedMutexGuard<'a, TrustedRoot>;

impl Slot {
    fn new(entry: TrustEntry) -> Self {
        Slot {
            entry,
            state: Mutex::new(None),
            platforms: StdMutex::new(HashMap::new()),
            refreshes: AtomicU64::new(0),
            refresh_failures: AtomicU64::new(0),
        }
    }

    /// The trusted state, refreshed first when it is missing, older than `max_age`, or past
    /// the earliest expiry of its metadata.
    ///
    /// # Errors
    /// The refresh's error; the state is then dropped, so the next request refreshes again.
    pub async fn fresh(&self, resolver: &Resolver, max_age: Duration) -> Result<Fresh<'_>, Error> {
        let mut guard = self.state.lock().await;
        let now = OffsetDateTime::now_utc();
        let stale = match guard.as_ref() {
            None => true,
            Some(h) => h.refreshed.elapsed() >= max_age || h.valid_until.is_none_or(|u| now >= u),
        };
        if stale {
            self.refreshes.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let result = match guard.take() {
                Some(mut held) => held.root.refresh().await.map(|()| held.root),
                None => resolver.open_root(&self.entry).await,
            };
            match result {
                Ok(root) => {
                    let valid_until = root.valid_until();
                    tracing::info!(
                        root_of_trust = %self.entry.root_of_trust,
                        repository = %self.entry.repository,
                        versions = ?root.versions(),
                        valid_until = ?valid_until,
                        elapsed_ms = started.elapsed().as_millis(),
                        "refreshed trusted metadata"
                    );
                    *guard = Some(Held {
                        root,
                        refreshed: Instant::now(),
                        valid_until,
                    });
                }
                Err(e) => {
                    self.refresh_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        root_of_trust = %self.entry.root_of_trust,
                        repository = %self.entry.repository,
                        error = %crate::decide::chain(&e),
                        "refresh failed"
                    );
                    return Err(e);
                }
            }
        }
        MutexGuard::try_map(guard, |held| held.as_mut().map(|h| &mut h.root)).map_err(|_| {
            // Not reached: a state was just checked or stored.
            Error::ImageMissing {
                image: self.entry.scope.to_string(),
            }
        })
    }

    /// Remember that the signed index `by.index` of `by.target` lists `platform`.
    pub fn remember_platform(&self, repository: &str, platform: Digest, by: ListedBy) {
        let mut map = self
            .platforms
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_REMEMBERED_PLATFORMS {
            let drop: Vec<_> = map.keys().take(map.len() / 2).cloned().collect();
            for k in drop {
                map.remove(&k);
            }
        }
        map.insert((repository.to_owned(), platform), by);
    }

    /// Which served signed index listed `platform` in `repository`, if any.
    pub fn listed_by(&self, repository: &str, platform: &Digest) -> Option<ListedBy> {
        self.platforms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(repository.to_owned(), platform.clone()))
            .cloned()
    }
}

/// The slots of every policy entry.
pub struct Roots {
    pub resolver: Resolver,
    pub max_age: Duration,
    slots: Vec<Arc<Slot>>,
}

impl Roots {
    pub fn new(resolver: Resolver, max_age: Duration) -> Self {
        let slots = resolver
            .policy()
            .entries()
            .iter()
            .map(|e| Arc::new(Slot::new(e.clone())))
            .collect();
        Roots {
            resolver,
            max_age,
            slots,
        }
    }

    /// The slot of the policy entry that covers `image` (the most specific scope).
    pub fn slot_for(&self, image: &ocituf_resolver::ImageReference) -> Option<&Arc<Slot>> {
        let entry = self.resolver.policy().lookup(image).ok()?;
        self.slots.iter().find(|s| s.entry.scope == entry.scope)
    }

    pub fn slots(&self) -> &[Arc<Slot>] {
        &self.slots
    }
}
