//! What a submitted role version is, decided from the registry as a client would: the
//! artifacts that claim `(role, version)` are fetched and checked against the keys and
//! threshold the role's delegator names, their `io.ocituf.parent` against the version
//! before, and rivals of the same number against the one submitted (docs/signer.md,
//! "Submission fates"). Nothing here writes: a refused submission changes nothing.

use ocituf_oci::mapping::{self, Anchor, Hints, RoleClass};
use ocituf_oci::{ArtifactStore as _, Digest, ManifestRef};
use ocituf_tuf::metadata::{Envelope, Role as _, Targets};
use ocituf_writer::{valid_signatures, Authority, Found, MetaRepo, Pin, Result, State};
use std::sync::Arc;
use tokio::sync::oneshot;

/// How many artifacts claiming one version are examined (junk pushed by anyone with push
/// rights must not make a submission expensive).
const MAX_CLAIMS: usize = 32;

/// Why a submitted version can never be published.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No artifact in the registry claims this version of the role.
    NotPushed,
    /// Not a targets role (root, snapshot and timestamp are not submitted).
    NotATargetsRole,
    /// No role the delegations reach (for the names the version lists) delegates it.
    NotDelegated,
    /// The artifact or its metadata cannot be read as a version of this role.
    Malformed(String),
    /// Signed by keys its delegator does not name (and too few that it does).
    UnknownKeys { keyids: Vec<String>, threshold: u32 },
    /// Signed by keys its delegator names, but fewer than its threshold.
    BelowThreshold { valid: u32, threshold: u32 },
    /// Its `io.ocituf.parent` does not lead to the version before it.
    BadParent(String),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::NotPushed => write!(f, "not pushed: no artifact claims this version of the role"),
            Rejection::NotATargetsRole => write!(f, "not a targets role: the signer itself writes snapshot and timestamp, and root versions are not submitted"),
            Rejection::NotDelegated => write!(f, "role not delegated: no role the delegations reach delegates it (for the names this version lists)"),
            Rejection::Malformed(why) => write!(f, "malformed: {why}"),
            Rejection::UnknownKeys { keyids, threshold } => write!(
                f,
                "signed by a key its delegator does not name ({}; the delegator names other keys and asks for {threshold})",
                keyids.join(", ")
            ),
            Rejection::BelowThreshold { valid, threshold } => write!(
                f,
                "below threshold: {valid} valid signature(s) of the {threshold} its delegator asks for"
            ),
            Rejection::BadParent(why) => write!(f, "bad parent: {why}"),
        }
    }
}

/// The registry's answer about a submitted version.
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    /// It verifies and builds on the version before it: publishable. `forked`: other
    /// verified claims of its number say something else (the publisher did not say which
    /// one is its own).
    Valid {
        found: Found,
        forked: bool,
    },
    /// Another version took its place; the newest verified version of the role is
    /// `rebase_on`.
    Conflict {
        rebase_on: u64,
        why: String,
    },
    Rejected(Rejection),
}

/// One artifact claiming the submitted version, read but not yet trusted.
struct Claim {
    manifest: Digest,
    parent: Option<Digest>,
    bytes: Vec<u8>,
    envelope: Envelope,
    targets: Targets,
}

/// The delegation reads of submissions judged at once, shared (docs/signer.md "Submission
/// fates"): a submission waits for a read that starts after it arrived, and one read, for
/// every name queued before it started, serves them all. That read is as fresh as the one
/// each would have made, and the root chain and the delegators above the bins are fetched
/// once per read instead of once per submission.
#[derive(Default)]
pub(crate) struct SharedReads {
    queue: std::sync::Mutex<Vec<Waiting>>,
    /// Held while a read runs: submissions that arrive meanwhile queue for the next one.
    reading: tokio::sync::Mutex<()>,
}

/// A shared read's answer (the error as kind and message: one error serves many).
type Shared = std::result::Result<Arc<State>, (ocituf_writer::ErrorKind, String)>;

struct Waiting {
    names: Vec<String>,
    answer: oneshot::Sender<Shared>,
}

impl SharedReads {
    /// The roles the delegation search visits for `names`, read after this call began.
    /// When the shared read fails, this submission's own names are read alone (so one
    /// submission's names cannot fail the others').
    ///
    /// # Errors
    /// As [`State::load_for`].
    async fn load_for(&self, repo: &MetaRepo, pin: &Pin, names: &[String]) -> Result<Arc<State>> {
        loop {
            let (tx, mut rx) = oneshot::channel();
            let queued = self
                .queue
                .lock()
                .map(|mut q| {
                    q.push(Waiting {
                        names: names.to_vec(),
                        answer: tx,
                    });
                })
                .is_ok();
            if !queued {
                break;
            }
            let reading = self.reading.lock().await;
            match rx.try_recv() {
                Ok(Ok(state)) => return Ok(state),
                Ok(Err(_)) => break,
                // The read that took this entry was cancelled (its submission timed out).
                Err(oneshot::error::TryRecvError::Closed) => continue,
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let waiting = self
                .queue
                .lock()
                .map(|mut q| std::mem::take(&mut *q))
                .unwrap_or_default();
            if waiting.len() <= 1 {
                // Alone: read as before, keeping the error whole.
                drop(waiting);
                return State::load_for(repo, Some(pin), names).await.map(Arc::new);
            }
            let mut all: Vec<String> = waiting
                .iter()
                .flat_map(|w| w.names.iter().cloned())
                .collect();
            all.sort_unstable();
            all.dedup();
            let read: Shared = State::load_for(repo, Some(pin), &all)
                .await
                .map(Arc::new)
                .map_err(|e| (e.kind(), e.to_string()));
            for w in waiting {
                let _ = w.answer.send(read.clone());
            }
            drop(reading);
            match rx.try_recv() {
                Ok(Ok(state)) => return Ok(state),
                // The shared read failed, or it could not take the queue: read alone.
                Ok(Err(_)) | Err(_) => break,
            }
        }
        State::load_for(repo, Some(pin), names).await.map(Arc::new)
    }
}

/// Judge `version` of `role` (`digest`: the manifest the publisher pushed, when it says).
///
/// # Errors
/// Registry failures, and a root chain that does not verify from `pin`.
pub(crate) async fn judge(
    repo: &MetaRepo,
    pin: &Pin,
    reads: &SharedReads,
    role: &str,
    version: u64,
    digest: Option<&Digest>,
) -> Result<Verdict> {
    if RoleClass::of_role(role) != RoleClass::Targets {
        return Ok(Verdict::Rejected(Rejection::NotATargetsRole));
    }
    let listed = claims_of(repo, role, version, digest).await?;
    if listed.is_empty() {
        return Ok(Verdict::Rejected(Rejection::NotPushed));
    }
    let mut claims = Vec::new();
    let mut malformed = None;
    for (manifest, hints) in listed.iter().take(MAX_CLAIMS) {
        match read_claim(repo, role, version, manifest, hints).await? {
            Ok(c) => claims.push(c),
            Err(why) => malformed = malformed.or(Some(why)),
        }
    }
    let Some(first) = claims.first() else {
        return Ok(Verdict::Rejected(Rejection::Malformed(
            malformed.unwrap_or_else(|| "nothing readable".to_owned()),
        )));
    };
    // Which role delegates `role`: the delegation search for the names the version lists
    // (bounded, however many bins the root of trust has); a version that lists nothing
    // needs the whole walk.
    let names: Vec<String> = first.targets.targets.keys().cloned().collect();
    let state = if names.is_empty() {
        Arc::new(State::load(repo, Some(pin)).await?)
    } else {
        reads.load_for(repo, pin, &names).await?
    };
    let Some((newest, auth)) = state.targets.get(role) else {
        return Ok(Verdict::Rejected(Rejection::NotDelegated));
    };
    let newest = newest.as_ref().map_or(0, |f| f.version);
    let mut refusal = None;
    let mut verified: Vec<Found> = Vec::new();
    for c in claims {
        match signatures(&c.envelope, auth) {
            Some(r) => refusal = refusal.or(Some(r)),
            None => verified.push(Found {
                envelope: c.envelope,
                bytes: c.bytes,
                version,
                manifest: c.manifest,
                parent: c.parent,
            }),
        }
    }
    verified.sort_by(|a, b| a.manifest.cmp(&b.manifest));
    let forked = verified.windows(2).any(|w| !same_content(&w[0], &w[1]));
    let Some(submitted) = verified.into_iter().next() else {
        return Ok(Verdict::Rejected(refusal.unwrap_or_else(|| {
            Rejection::Malformed("no claim could be checked".to_owned())
        })));
    };
    if let Some(v) = parent_verdict(repo, role, auth, &submitted, newest).await? {
        return Ok(v);
    }
    if digest.is_some() {
        if let Some(v) = rival_verdict(repo, role, version, auth, &submitted, newest).await? {
            return Ok(v);
        }
    }
    Ok(Verdict::Valid {
        found: submitted,
        forked,
    })
}

/// Whether two versions say the same (targets and delegations; version and expiry aside).
fn same_content(a: &Found, b: &Found) -> bool {
    match (
        Targets::from_signed(&a.envelope.signed),
        Targets::from_signed(&b.envelope.signed),
    ) {
        (Ok(a), Ok(b)) => a.targets == b.targets && a.delegations == b.delegations,
        _ => false,
    }
}

/// The manifests whose annotations claim `version` of `role` (only `digest`, when given),
/// with their hints, lowest digest first.
async fn claims_of(
    repo: &MetaRepo,
    role: &str,
    version: u64,
    digest: Option<&Digest>,
) -> Result<Vec<(Digest, Hints)>> {
    let anchor = Anchor::for_role(&repo.name, role).map_err(|e| {
        ocituf_writer::Error::wrap(
            ocituf_writer::ErrorKind::Config,
            format!("{role:?} cannot be a role name"),
            e,
        )
    })?;
    let artifact_type = RoleClass::of_role(role).artifact_type();
    let (list, _) = repo
        .store
        .referrers(anchor.digest(), Some(artifact_type))
        .await
        .map_err(|e| {
            ocituf_writer::Error::wrap(
                ocituf_writer::ErrorKind::Network,
                format!(
                    "could not list the versions of role {role:?} ({})",
                    repo.location
                ),
                e,
            )
        })?;
    let mut out: Vec<(Digest, Hints)> = list
        .into_iter()
        .filter(|d| d.artifact_type.as_deref() == Some(artifact_type))
        .filter(|d| digest.is_none_or(|want| *want == d.digest))
        .filter_map(|d| {
            let h = Hints::from_annotations(&d.annotations);
            (h.may_be(&repo.name, role) && h.version == Some(version)).then_some((d.digest, h))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}

/// Read one claim: its manifest, its metadata (digest-checked) and the targets in it.
/// `Ok(Err(why))`: it is not a readable version `version` of `role`.
async fn read_claim(
    repo: &MetaRepo,
    role: &str,
    version: u64,
    manifest: &Digest,
    hints: &Hints,
) -> Result<std::result::Result<Claim, String>> {
    let net = |what: String| {
        move |e: ocituf_oci::Error| {
            ocituf_writer::Error::wrap(
                ocituf_writer::ErrorKind::Network,
                format!("{what} ({})", repo.location),
                e,
            )
        }
    };
    let Some(m) = repo
        .store
        .get_manifest(ManifestRef::Digest(manifest), mapping::MAX_MANIFEST_LEN)
        .await
        .map_err(net(format!("could not fetch manifest {manifest}")))?
    else {
        return Ok(Err(format!("manifest {manifest} is listed but not stored")));
    };
    let parsed = match mapping::parse_role_manifest(manifest.as_str(), &m.bytes) {
        Ok(p) => p,
        Err(e) => return Ok(Err(format!("manifest {manifest}: {e}"))),
    };
    let Some(bytes) = repo
        .store
        .get_blob(&parsed.metadata_digest, ocituf_writer::MAX_METADATA_LEN)
        .await
        .map_err(net(format!(
            "could not fetch metadata blob {}",
            parsed.metadata_digest
        )))?
    else {
        return Ok(Err(format!(
            "the metadata blob {} of {manifest} is not stored",
            parsed.metadata_digest
        )));
    };
    if Digest::of(&bytes) != parsed.metadata_digest {
        return Ok(Err(format!(
            "the metadata blob of {manifest} does not match its digest"
        )));
    }
    let envelope = match Envelope::parse(role, &bytes) {
        Ok(e) => e,
        Err(e) => return Ok(Err(format!("the metadata of {manifest} is not TUF: {e}"))),
    };
    if envelope.role_type() != Some("targets") {
        return Ok(Err(format!(
            "the metadata of {manifest} is a {:?}, not a targets role",
            envelope.role_type().unwrap_or("nothing")
        )));
    }
    let targets = match Targets::from_signed(&envelope.signed) {
        Ok(t) => t,
        Err(e) => {
            return Ok(Err(format!(
                "the metadata of {manifest} is not targets metadata: {e}"
            )))
        }
    };
    if targets.version != version {
        return Ok(Err(format!(
            "{manifest} says version {version} in its annotations and {} in its signed metadata",
            targets.version
        )));
    }
    let parent = Hints::from_annotations(&parsed.annotations)
        .parent
        .or_else(|| hints.parent.clone());
    Ok(Ok(Claim {
        manifest: manifest.clone(),
        parent,
        bytes,
        envelope,
        targets,
    }))
}

/// `None` when `env`'s signatures meet `auth` (TUF 5.6.4 for a delegated role, 5.6.3 for
/// `targets`); otherwise why not.
fn signatures(env: &Envelope, auth: &Authority) -> Option<Rejection> {
    let valid = valid_signatures(env, &auth.keys, &auth.keyids);
    if valid >= auth.threshold {
        return None;
    }
    let unknown: Vec<String> = env
        .signatures
        .iter()
        .filter(|s| !auth.keyids.contains(&s.keyid))
        .map(|s| {
            let id = s.keyid.as_str();
            id[..id.len().min(16)].to_owned()
        })
        .collect();
    Some(if unknown.is_empty() {
        Rejection::BelowThreshold {
            valid,
            threshold: auth.threshold,
        }
    } else {
        Rejection::UnknownKeys {
            keyids: unknown,
            threshold: auth.threshold,
        }
    })
}

/// A version builds on the one before it: version 1 on nothing, version V on a verified
/// version V - 1 (its `io.ocituf.parent`). Built on an older one (a stale parent): rebase.
async fn parent_verdict(
    repo: &MetaRepo,
    role: &str,
    auth: &Authority,
    submitted: &Found,
    newest: u64,
) -> Result<Option<Verdict>> {
    let version = submitted.version;
    let Some(parent) = &submitted.parent else {
        return Ok((version > 1).then(|| {
            Verdict::Rejected(Rejection::BadParent(format!(
                "version {version} names no parent (io.ocituf.parent): only version 1 builds on nothing"
            )))
        }));
    };
    let Some(p) = repo.verified_at(role, parent, auth).await? else {
        return Ok(Some(Verdict::Rejected(Rejection::BadParent(format!(
            "its parent {parent} is not a verified version of role {role:?}"
        )))));
    };
    if p.version + 1 == version {
        return Ok(None);
    }
    if p.version + 1 < version {
        // The newest verified version may be the submitted one itself: then the one to
        // build on is the version before it.
        let rebase_on = if newest > version {
            newest
        } else {
            version - 1
        };
        return Ok(Some(Verdict::Conflict {
            rebase_on,
            why: format!(
                "stale parent: version {version} is built on version {}, not on version {}",
                p.version,
                version - 1
            ),
        }));
    }
    Ok(Some(Verdict::Rejected(Rejection::BadParent(format!(
        "version {version} is built on version {}: a version is its parent's + 1",
        p.version
    )))))
}

/// The place `version` is taken by a rival that is not the one submitted: another verified
/// version of that number, with a lower digest (what clients get, docs/oci-mapping.md §6)
/// and other content.
async fn rival_verdict(
    repo: &MetaRepo,
    role: &str,
    version: u64,
    auth: &Authority,
    submitted: &Found,
    newest: u64,
) -> Result<Option<Verdict>> {
    for (digest, _) in claims_of(repo, role, version, None).await? {
        if digest >= submitted.manifest {
            break;
        }
        let Some(rival) = repo.verified_at(role, &digest, auth).await? else {
            continue;
        };
        if !same_content(submitted, &rival) {
            return Ok(Some(Verdict::Conflict {
                rebase_on: newest.max(version),
                why: format!(
                    "version {version} of role {role:?} is taken by {digest}, which clients get (the lowest digest) and which says something else"
                ),
            }));
        }
    }
    Ok(None)
}
