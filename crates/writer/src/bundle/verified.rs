//! Every metadata file a client of one root of trust needs, verified from the pinned root by
//! the TUF updater and the trusted set exactly as a client verifies them.

use std::collections::BTreeMap;

use ocituf_oci::{ArtifactStore, OciRepoSource, RootOfTrustName};
use ocituf_resolver::{AnyStore, ErrorKind};
use ocituf_tuf::trusted::{SearchStep, TargetSearch};
use ocituf_tuf::{
    MemoryStore, MetadataRequest, RepoSource as _, SystemClock, TargetInfo, TrustedSet,
    TrustedStore as _, Updater, UpdaterConfig,
};

use super::tuf_error;
use crate::error::{fail, Result};
use crate::pin::Pin;

/// At most this many targets roles (top-level, delegated, hash bins) in one bundle.
const MAX_ROLES: usize = 65_536;
/// Root version 1 candidates examined for the pin.
const MAX_ROOT_CANDIDATES: u32 = 8;

/// The verified metadata of one root of trust, as exact bytes.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Root versions 1 to N, in order (version 1 is the pinned root).
    pub roots: Vec<Vec<u8>>,
    pub timestamp: Vec<u8>,
    pub snapshot: Vec<u8>,
    /// `targets` and every delegated role the delegations reach that the snapshot lists.
    pub targets: BTreeMap<String, Vec<u8>>,
    /// The trusted set with every one of them loaded.
    pub trusted: TrustedSet,
}

impl Verified {
    /// Versions of the trusted top-level roles (root, timestamp, snapshot, targets).
    pub fn versions(&self) -> BTreeMap<&'static str, u64> {
        ocituf_tuf::updater::trusted_versions(&self.trusted)
    }

    /// The signed information of `target`, if a role trusted for it lists it.
    ///
    /// # Errors
    /// `Refused` when the delegation search fails (a role reached through two delegators
    /// that one of them did not sign).
    pub fn target(&self, target: &str) -> Result<Option<TargetInfo>> {
        let mut set = self.trusted.clone();
        let mut search = TargetSearch::new(target, UpdaterConfig::default().max_delegations);
        // Every role the snapshot lists is loaded, so one step decides; a role it does not
        // list cannot be loaded by a client either.
        match search.step(&mut set) {
            Ok(SearchStep::Found(info)) => Ok(Some(info)),
            Ok(SearchStep::NotFound) => Ok(None),
            Ok(SearchStep::Load { role, .. }) => Err(fail(
                ErrorKind::Refused,
                format!(
                    "{target}: the delegation search reaches role {role:?}, which the snapshot does not list"
                ),
            )),
            Err(e) => Err(tuf_error(format!("{target}: delegation search failed"), e)),
        }
    }
}

/// Verify the root of trust `name` in `store` from `pin` and collect every metadata file a
/// client needs. `what` names the store in messages (`the bundle`, `the destination`).
///
/// # Errors
/// `Refused` when root version 1 is not the pinned one (another root of trust) or any check
/// fails (rollback, threshold, hashes); `Expired` for expired metadata; `Config` when the
/// store has no root version 1 or no timestamp; `Network` when the store fails.
///
/// # Security
/// Trust starts at the pin. Every file is the exact bytes the updater or the trusted set
/// verified; delegated roles are checked by their delegator's keys and the snapshot's
/// version and hashes, as a client checks them.
pub async fn load_verified(
    store: &AnyStore,
    name: &RootOfTrustName,
    pin: &Pin,
    what: &str,
) -> Result<Verified> {
    let location = store.location();
    let source = OciRepoSource::new(store.clone(), name.clone());
    let anchor = pinned_root(&source, pin, name, &location, what).await?;
    let memory = MemoryStore::new();
    let config = UpdaterConfig::default();
    let refused = |e: ocituf_tuf::Error| {
        if let ocituf_tuf::Error::NotFound { what: missing } = &e {
            // No timestamp: no root of trust here. Anything else missing was named by
            // verified metadata: the store is incomplete or tampered.
            if missing == "timestamp" {
                return fail(
                    ErrorKind::Config,
                    format!(
                        "{what} ({location}) has no {missing} of root of trust {:?}",
                        name.as_str()
                    ),
                );
            }
            return fail(
                ErrorKind::Refused,
                format!(
                    "{what} ({location}) lacks {missing} of root of trust {:?}, which its verified metadata names: incomplete or tampered",
                    name.as_str()
                ),
            );
        }
        tuf_error(
            format!(
                "the metadata of root of trust {:?} in {what} ({location}) was refused",
                name.as_str()
            ),
            e,
        )
    };
    let mut updater = Updater::new(&anchor, source, memory.clone(), config.clone(), SystemClock)
        .await
        .map_err(refused)?;
    updater.refresh().await.map_err(refused)?;
    let mut trusted = updater.trusted().clone();

    let mut roots = vec![anchor];
    for v in 2..=trusted.root().version {
        let bytes = memory
            .load_root(v, config.root_max_len)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                fail(
                    ErrorKind::Config,
                    format!("root version {v} was verified but not kept"),
                )
            })?;
        roots.push(bytes);
    }
    let stored = |role: &str| {
        memory.get(role).ok_or_else(|| {
            fail(
                ErrorKind::Config,
                format!("{role} was verified but not kept"),
            )
        })
    };
    let timestamp = stored("timestamp")?;
    let snapshot = stored("snapshot")?;
    let mut targets = BTreeMap::from([("targets".to_owned(), stored("targets")?)]);

    load_delegated(
        updater.source(),
        &mut trusted,
        &config,
        &mut targets,
        &refused,
    )
    .await?;
    Ok(Verified {
        roots,
        timestamp,
        snapshot,
        targets,
        trusted,
    })
}

/// Root version 1 as the pin says: the first candidate in the store with the pinned bytes.
async fn pinned_root<A: ArtifactStore>(
    source: &OciRepoSource<A>,
    pin: &Pin,
    name: &RootOfTrustName,
    location: &str,
    what: &str,
) -> Result<Vec<u8>> {
    source.start_refresh();
    let mut other = None;
    for attempt in 0..MAX_ROOT_CANDIDATES {
        let req = MetadataRequest {
            role: "root",
            version: Some(1),
            hashes: None,
            max_len: UpdaterConfig::default().root_max_len,
            attempt,
        };
        let fetched = source.fetch_metadata(&req).await.map_err(|e| {
            tuf_error(
                format!("could not read root version 1 from {what} ({location})"),
                e.into(),
            )
        })?;
        let Some(fetched) = fetched else { break };
        if pin.matches(&fetched.bytes) {
            return Ok(fetched.bytes);
        }
        other.get_or_insert_with(|| ocituf_oci::Digest::of(&fetched.bytes));
    }
    match other {
        Some(served) => Err(fail(
            ErrorKind::Refused,
            format!(
                "root mismatch: root version 1 of {:?} in {what} ({location}) has sha256 {}, not the pinned root's {}: \
                 it belongs to another root of trust; nothing was written",
                name.as_str(),
                served.hex(),
                pin.sha256()
            ),
        )),
        None => Err(fail(
            ErrorKind::Config,
            format!(
                "{what} ({location}) has no root version 1 of root of trust {:?}",
                name.as_str()
            ),
        )),
    }
}

/// Every delegated role the snapshot lists and a delegation reaches, each verified with its
/// delegator's keys and the snapshot's version and hashes, into `targets`.
async fn load_delegated<S: ocituf_tuf::RepoSource>(
    source: &S,
    trusted: &mut TrustedSet,
    config: &UpdaterConfig,
    targets: &mut BTreeMap<String, Vec<u8>>,
    refused: &dyn Fn(ocituf_tuf::Error) -> crate::Error,
) -> Result<()> {
    if trusted.merkle_root().is_some() {
        // A bundle would have to carry every node of the tree; until it does, say so rather
        // than export a bundle whose delegated roles no client can prove.
        return Err(fail(
            ErrorKind::Config,
            "this root of trust signs snapshots with a Merkle tree (ocituf init --snapshot-merkle),              which air-gap bundles do not carry yet: export a root of trust with classic snapshots",
        ));
    }
    let now = time::OffsetDateTime::now_utc();
    let consistent = trusted.root().consistent_snapshot();
    let mut queue = vec!["targets".to_owned()];
    while let Some(delegator) = queue.pop() {
        let loaded = if delegator == "targets" {
            trusted.targets()
        } else {
            trusted.delegated_targets(&delegator)
        };
        let Some(delegations) = loaded.and_then(|t| t.delegations.clone()) else {
            continue;
        };
        let mut names: Vec<String> = delegations
            .roles
            .iter()
            .flatten()
            .map(|r| r.name.clone())
            .collect();
        if let Some(s) = &delegations.succinct_roles {
            // Untrusted until the snapshot lists them: never enumerate more bins than a
            // bundle may hold.
            if s.bin_count() > MAX_ROLES as u64 {
                return Err(fail(
                    ErrorKind::Refused,
                    format!(
                        "role {delegator:?} delegates to {} hash bins, more than the {MAX_ROLES} a bundle holds",
                        s.bin_count()
                    ),
                ));
            }
            names.extend((0..s.bin_count()).map(|b| s.bin_name(b)));
        }
        for role in names {
            if targets.contains_key(&role) {
                trusted
                    .verify_delegated_by(&role, &delegator)
                    .map_err(refused)?;
                continue;
            }
            let Some(meta) = trusted.snapshot().and_then(|s| s.role_meta(&role)).cloned() else {
                continue;
            };
            if targets.len() >= MAX_ROLES {
                return Err(fail(
                    ErrorKind::Refused,
                    format!("the root of trust has more than {MAX_ROLES} targets roles"),
                ));
            }
            let mut first_error = None;
            let mut found = None;
            for attempt in 0..config.max_candidates {
                let req = MetadataRequest {
                    role: &role,
                    version: consistent.then_some(meta.version),
                    hashes: meta.hashes.as_ref(),
                    max_len: meta.length.unwrap_or(config.targets_max_len),
                    attempt,
                };
                let fetched = source
                    .fetch_metadata(&req)
                    .await
                    .map_err(|e| refused(e.into()))?;
                let Some(fetched) = fetched else { break };
                match trusted.update_delegated_targets(&fetched.bytes, &role, &delegator, now) {
                    Ok(()) => {
                        found = Some(fetched.bytes);
                        break;
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            let Some(bytes) = found else {
                return Err(refused(first_error.unwrap_or(
                    ocituf_tuf::Error::NotFound {
                        what: format!("{role} version {}", meta.version),
                    },
                )));
            };
            targets.insert(role.clone(), bytes);
            queue.push(role);
        }
    }
    Ok(())
}
