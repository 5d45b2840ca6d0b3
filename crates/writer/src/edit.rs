//! Editing a targets role safely with other writers at work: apply an edit to the newest
//! verified version, push, read back, and after a race rebuild on top of every racing
//! version (a three-way merge along `io.ocituf.parent` links) until one newest version holds
//! every writer's change. Nothing another job signed is dropped.

use std::collections::BTreeMap;

use ocituf_oci::Digest;
use ocituf_tuf::crypto::{KeyId, Signer};
use ocituf_tuf::metadata::{Role, Targets, SPEC_VERSION};
use time::OffsetDateTime;

use crate::authority::{sign_envelope, Authority};
use crate::error::{fail, Result, ResultExt as _};
use crate::keys::SigningKey;
use crate::progress::race_message;
use crate::repo::{Found, MetaRepo};
use crate::ErrorKind;

/// How many times a signer rebuilds on top of a concurrent winner before giving up.
const MAX_SIGN_ATTEMPTS: u32 = 32;
/// How long a signer waits before confirming that its change is in every newest version.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(400);

pub(crate) fn as_dyn(keys: &[SigningKey]) -> Vec<&dyn Signer> {
    keys.iter().map(AsRef::as_ref).collect()
}

pub(crate) fn to_value<T: Role>(role: &T) -> Result<serde_json::Value> {
    role.to_signed()
        .config(|| format!("could not serialise {} metadata", T::TYPE))
}

pub(crate) fn check_threshold(role: &str, signers: &[&dyn Signer], auth: &Authority) -> Result<()> {
    let mine: Vec<&KeyId> = signers
        .iter()
        .map(|s| s.key_id())
        .filter(|id| auth.keyids.contains(id))
        .collect();
    if (mine.len() as u64) < u64::from(auth.threshold) {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "the keys given sign {} of the {} signatures role {role:?} needs \
                 (its keyids: {}); pass more --key options or the right key",
                mine.len(),
                auth.threshold,
                auth.keyids
                    .iter()
                    .map(|k| &k.as_str()[..k.as_str().len().min(16)])
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(())
}

pub(crate) fn authorised<'a>(signers: &'a [SigningKey], auth: &Authority) -> Vec<&'a dyn Signer> {
    signers
        .iter()
        .filter(|k| auth.keyids.contains(k.key_id()))
        .map(AsRef::as_ref)
        .collect()
}

/// The changes `sibling` made since `parent` (their common ancestor), applied to `merged`: targets added, changed or
/// removed, and the delegations when the sibling changed them.
fn apply_diff(merged: &mut Targets, parent: Option<&Targets>, sibling: &Targets) {
    let empty = BTreeMap::new();
    let before = parent.map_or(&empty, |p| &p.targets);
    for (name, file) in &sibling.targets {
        if before.get(name) != Some(file) {
            merged.targets.insert(name.clone(), file.clone());
        }
    }
    for name in before.keys() {
        if !sibling.targets.contains_key(name) {
            merged.targets.remove(name);
        }
    }
    if parent.map(|p| &p.delegations) != Some(&sibling.delegations) {
        merged.delegations.clone_from(&sibling.delegations);
    }
}

/// Whether every version in `tops` already holds `edit` (and there is at least one).
fn all_hold_edit(
    role: &str,
    tops: &[Found],
    edit: &(dyn Fn(&mut Targets) -> Result<bool> + Sync),
) -> Result<bool> {
    for f in tops {
        let mut copy = Targets::from_signed(&f.envelope.signed)
            .config(|| format!("role {role:?} version {} is malformed", f.version))?;
        if edit(&mut copy)? {
            return Ok(false);
        }
    }
    Ok(!tops.is_empty())
}

/// Whether every version in `tops` says the same thing (targets and delegations; version
/// and expiry aside). Rivals that differ are a fork that only a merged next version ends:
/// when each writer finds its own change in every rival, none of them would push again,
/// and the version clients get (the lowest digest) may lack a change whose writer has
/// already returned.
pub(crate) fn converged(role: &str, tops: &[Found]) -> Result<bool> {
    let mut first: Option<Targets> = None;
    for f in tops {
        let t = Targets::from_signed(&f.envelope.signed)
            .config(|| format!("role {role:?} version {} is malformed", f.version))?;
        match &first {
            None => first = Some(t),
            Some(a) if a.targets != t.targets || a.delegations != t.delegations => {
                return Ok(false)
            }
            Some(_) => {}
        }
    }
    Ok(true)
}

/// Whether `edit` is done: every version in `tops` holds it and they do not fork.
fn settled(
    role: &str,
    tops: &[Found],
    edit: &(dyn Fn(&mut Targets) -> Result<bool> + Sync),
) -> Result<bool> {
    Ok(all_hold_edit(role, tops, edit)? && converged(role, tops)?)
}

/// How far back a merge follows `io.ocituf.parent` links to find a common ancestor.
const MAX_ANCESTORS: usize = 128;

/// The verified ancestors of `start` through its parent links, nearest first.
async fn ancestors(
    repo: &MetaRepo,
    role: &str,
    auth: &Authority,
    start: &Found,
    seen: &mut BTreeMap<Digest, Option<Found>>,
) -> Result<Vec<(Digest, Option<Found>)>> {
    let mut out: Vec<(Digest, Option<Found>)> = Vec::new();
    let mut next = start.parent.clone();
    while let Some(d) = next.take() {
        if out.len() >= MAX_ANCESTORS || out.iter().any(|(x, _)| *x == d) {
            break;
        }
        let found = if let Some(f) = seen.get(&d) {
            f.clone()
        } else {
            let f = repo.verified_at(role, &d, auth).await?;
            seen.insert(d.clone(), f.clone());
            f
        };
        next = found.as_ref().and_then(|f| f.parent.clone());
        out.push((d, found));
    }
    Ok(out)
}

/// One base to build on from every verified version at the highest version number: the
/// lowest-digest one, plus what each racing sibling changed since its nearest common
/// ancestor with it (a three-way merge along `io.ocituf.parent` links). So a writer never
/// drops a change that another writer's line of versions holds.
async fn merge_newest(
    repo: &MetaRepo,
    role: &str,
    auth: &Authority,
    tops: &[Found],
) -> Result<(Targets, Option<Digest>)> {
    let parse = |f: &Found| {
        Targets::from_signed(&f.envelope.signed)
            .config(|| format!("role {role:?} version {} is malformed", f.version))
    };
    let Some(winner) = tops.first() else {
        return Err(fail(
            ErrorKind::Network,
            format!("no version of role {role:?} can be read back"),
        ));
    };
    if tops.len() == 1 {
        // No rival: nothing to merge, and no parent links to walk.
        return Ok((parse(winner)?, Some(winner.manifest.clone())));
    }
    let mut seen = BTreeMap::new();
    let mut winner_line = vec![winner.manifest.clone()];
    winner_line.extend(
        ancestors(repo, role, auth, winner, &mut seen)
            .await?
            .into_iter()
            .map(|(d, _)| d),
    );
    let mut merged = parse(winner)?;
    for sibling in &tops[1..] {
        let mut common = None;
        for (d, f) in ancestors(repo, role, auth, sibling, &mut seen).await? {
            if winner_line.contains(&d) {
                common = f;
                break;
            }
        }
        let common = match &common {
            Some(f) => Some(parse(f)?),
            None => None,
        };
        apply_diff(&mut merged, common.as_ref(), &parse(sibling)?);
    }
    Ok((merged, Some(winner.manifest.clone())))
}

/// What a new version of a role builds on.
pub(crate) struct NextBase {
    /// The content (`None`: the role has no version yet).
    pub targets: Option<Targets>,
    /// The manifest it builds on (`io.ocituf.parent`).
    pub parent: Option<Digest>,
    /// Every verified version at the newest number, as listed now.
    pub tops: Vec<Found>,
    /// Whether the registry listed a version at least as new as the caller's base.
    pub fresh: bool,
}

/// The base of a role's next version: every verified version at the newest number as the
/// registry lists them now, merged (see [`update_targets_role`] for why one sibling alone
/// is not enough); `base` only when the registry lists nothing as new as it.
pub(crate) async fn fresh_base(
    repo: &MetaRepo,
    role: &str,
    auth: &Authority,
    base: Option<&Found>,
) -> Result<NextBase> {
    let tops = repo.newest_all(role, auth).await?;
    let given = base.map_or(0, |f| f.version);
    let fresh = tops.first().is_some_and(|f| f.version >= given);
    let (targets, parent) = match base {
        _ if fresh => {
            let (merged, parent) = merge_newest(repo, role, auth, &tops).await?;
            (Some(merged), parent)
        }
        Some(f) => (
            Some(
                Targets::from_signed(&f.envelope.signed)
                    .config(|| format!("role {role:?} version {} is malformed", f.version))?,
            ),
            Some(f.manifest.clone()),
        ),
        None => (None, None),
    };
    Ok(NextBase {
        targets,
        parent,
        tops,
        fresh,
    })
}

/// Apply `edit` to the newest version of `role` and push the result. Then read the role
/// back: the edit is done once every verified version at the highest version number holds
/// it and they all say the same. Otherwise (another CI job raced us) rebuild on top of all
/// of them and try again.
///
/// The first version is built on every verified version at the highest number as the
/// registry lists them now (merged), not on `base` alone: `base` is one of them at best
/// (the lowest digest, what [`crate::State`] keeps), and a version built on one sibling
/// drops what the others hold. A writer that already returned may own one of those
/// others: a late sibling pushed on an old parent after that writer confirmed is still a
/// top beside it, and building on the late one alone loses the confirmed change for good
/// (the late writer then finds its own change in the new version and stops too).
/// `base` is used when the registry lists no version at or above it.
pub async fn update_targets_role(
    repo: &MetaRepo,
    role: &str,
    auth: &Authority,
    signers: &[&dyn Signer],
    expires: OffsetDateTime,
    base: Option<Found>,
    edit: &(dyn Fn(&mut Targets) -> Result<bool> + Sync),
) -> Result<u64> {
    check_threshold(role, signers, auth)?;
    let NextBase {
        targets,
        parent,
        tops,
        fresh,
    } = fresh_base(repo, role, auth, base.as_ref()).await?;
    let mut base: (Option<Targets>, Option<Digest>) = (targets, parent);
    // Rivals at the top that differ (or lack the edit): the merge is pushed even when it
    // holds the edit already, so that one newest version holds every racer's change.
    let forked = fresh && tops.len() > 1 && !settled(role, &tops, edit)?;
    for attempt in 0..MAX_SIGN_ATTEMPTS {
        let mut t = base
            .0
            .clone()
            .unwrap_or_else(|| before_first_version(expires));
        let changed = edit(&mut t)?;
        if !changed && attempt == 0 && !forked {
            // Nothing to do: the newest version already says what we would write.
            return Ok(t.version);
        }
        // After a race the merged base may already hold our edit; it is pushed anyway so
        // that one newest version holds every racer's change.
        t.version += 1;
        t.expires = expires;
        let (_, bytes) = sign_envelope(to_value(&t)?, signers, Vec::new())?;
        repo.push(role, &bytes, base.1.as_ref()).await?;
        let mut tops = repo.newest_all(role, auth).await?;
        if settled(role, &tops, edit)? {
            // Confirm after a pause: a job that read an older version before ours appeared
            // may still push a sibling, and its merge must not drop our change unseen.
            tokio::time::sleep(SETTLE).await;
            tops = repo.newest_all(role, auth).await?;
            if settled(role, &tops, edit)? {
                return Ok(tops.first().map_or(t.version, |f| f.version));
            }
        }
        if attempt + 1 < MAX_SIGN_ATTEMPTS {
            repo.progress().note(format_args!(
                "{}",
                race_message(
                    role,
                    tops.first().map_or(0, |f| f.version),
                    attempt + 2,
                    MAX_SIGN_ATTEMPTS
                )
            ));
        }
        let (merged, parent) = merge_newest(repo, role, auth, &tops).await?;
        base = (Some(merged), parent);
        // Back off with jitter so racing jobs stop colliding: up to 50 ms more per attempt.
        let noise = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()))
            ^ u64::from(std::process::id());
        let jitter = noise % (50 * (u64::from(attempt) + 1));
        tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
    }
    Err(fail(
        ErrorKind::Network,
        format!("gave up after {MAX_SIGN_ATTEMPTS} attempts: other writers keep racing for role {role:?}"),
    ))
}

/// The base a role's first version is built on: empty, version 0 (the edit bumps it to 1).
pub(crate) fn before_first_version(expires: OffsetDateTime) -> Targets {
    Targets {
        spec_version: SPEC_VERSION.to_owned(),
        version: 0,
        expires,
        targets: BTreeMap::new(),
        delegations: None,
        extra: BTreeMap::new(),
    }
}
