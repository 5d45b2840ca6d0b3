//! Co-signing a targets role's version over time (`ocituf cosign`): a version whose
//! signatures do not yet meet its delegator's threshold waits as a pending version, named by
//! the digest of its signed part, until enough maintainers have signed it; then it is
//! published as the role's next version.

use std::collections::BTreeMap;

use ocituf_oci::Digest;

use ocituf_tuf::crypto::Signer;
use ocituf_tuf::metadata::{Envelope, Role as _, Targets};

use crate::authority::{file_bytes, valid_signatures, Authority};
use crate::edit::authorised;
use crate::error::{fail, Result};
use crate::keys::SigningKey;
use crate::pin::Pin;
use crate::repo::{Found, MetaRepo};
use crate::root::content_digest;
use crate::state::State;
use crate::ErrorKind;

/// What became of a targets version after signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Threshold met: the version is the role's newest; `ocituf publish` shows it to clients.
    Published {
        version: u64,
        signatures: u32,
        threshold: u32,
    },
    /// Stored as pending; other maintainers run `ocituf cosign --expect CONTENT`.
    Pending {
        version: u64,
        content: String,
        signatures: u32,
        threshold: u32,
    },
}

/// Publish `env` as the next version of `role` when its signatures meet `auth`, else store
/// it as pending.
pub(crate) async fn publish_or_hold(
    repo: &MetaRepo,
    role: &str,
    auth: &Authority,
    parent: Option<&Digest>,
    env: &Envelope,
    version: u64,
) -> Result<Outcome> {
    let bytes = file_bytes(env)?;
    let signatures = valid_signatures(env, &auth.keys, &auth.keyids);
    if signatures >= auth.threshold {
        repo.push(role, &bytes, parent).await?;
        return Ok(Outcome::Published {
            version,
            signatures,
            threshold: auth.threshold,
        });
    }
    repo.push_pending_targets(role, &bytes, version).await?;
    Ok(Outcome::Pending {
        version,
        content: content_digest(env)?,
        signatures,
        threshold: auth.threshold,
    })
}

/// The pending versions right after `current` of `role`, by content digest: the copy with
/// the most signatures that verify with `auth`, and their count. Only version `current + 1`
/// counts: a pending version built on an older base can never be published.
async fn pending_contents(
    repo: &MetaRepo,
    role: &str,
    auth: &Authority,
    current: u64,
) -> Result<BTreeMap<String, (u32, Envelope)>> {
    by_content(repo.pending_targets(role, current).await?, auth, current)
}

/// [`pending_contents`] of pending versions already listed.
fn by_content(
    pending: Vec<(u64, Envelope)>,
    auth: &Authority,
    current: u64,
) -> Result<BTreeMap<String, (u32, Envelope)>> {
    let mut contents: BTreeMap<String, (u32, Envelope)> = BTreeMap::new();
    for (version, env) in pending {
        if version != current + 1 {
            continue;
        }
        let digest = content_digest(&env)?;
        let count = valid_signatures(&env, &auth.keys, &auth.keyids);
        if contents.get(&digest).is_none_or(|(c, _)| *c < count) {
            contents.insert(digest, (count, env));
        }
    }
    Ok(contents)
}

/// A pending version of a targets role, as `status` and the site show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTargets {
    pub role: String,
    pub version: u64,
    /// The digest of its signed part (`ocituf cosign --expect`).
    pub content: String,
    /// Signatures that verify with the role's keys, and how many it needs.
    pub signatures: u32,
    pub threshold: u32,
}

/// Every pending next version of every targets role `state` read (with
/// [`State::load_sampled`], the sampled bins only), from one listing of the pending-targets
/// anchor that they share; rival contents of one version are each listed.
///
/// # Errors
/// Registry failures.
pub async fn pending_versions(repo: &MetaRepo, state: &State) -> Result<Vec<PendingTargets>> {
    let current = |role: &String| {
        state
            .targets
            .get(role)
            .map(|(base, _)| base.as_ref().map_or(0, |f| f.version))
    };
    let roles: BTreeMap<String, u64> = state
        .order
        .iter()
        .filter_map(|r| Some((r.clone(), current(r)?)))
        .collect();
    let mut listed = repo.pending_targets_of(&roles).await?;
    let mut out = Vec::new();
    for role in &state.order {
        let (Some((_, auth)), Some(pending)) = (state.targets.get(role), listed.remove(role))
        else {
            continue;
        };
        let now = roles.get(role).copied().unwrap_or(0);
        for (content, (signatures, _)) in by_content(pending, auth, now)? {
            out.push(PendingTargets {
                role: role.clone(),
                version: now + 1,
                content,
                signatures,
                threshold: auth.threshold,
            });
        }
    }
    Ok(out)
}

/// Add the signatures of `signers` to the pending version of `role` after its newest one
/// whose content is `expect` (or the only pending content when `expect` is `None`).
///
/// # Security
/// Pending versions are untrusted: anyone who can push may add a rival. They are grouped by
/// content (the digest of the signed part); only the content the maintainer expects is
/// signed, and with rival contents and no `expect` nothing is. Only the version right after
/// the newest verified one is taken, so a pending version built on an older base (and
/// dropping what was signed since) cannot be published.
///
/// # Errors
/// A configuration error when the role is unknown, no pending version matches, contents
/// rival, or none of the keys is one of the role's.
pub async fn cosign(
    repo: &MetaRepo,
    pin: Option<&Pin>,
    role: &str,
    signers: &[SigningKey],
    expect: Option<&str>,
) -> Result<Outcome> {
    let state = State::load(repo, pin).await?;
    let Some((base, auth)) = state.targets.get(role).cloned() else {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "role {role:?} does not exist in {} (see `ocituf status`)",
                repo.location
            ),
        ));
    };
    let mine = authorised(signers, &auth);
    if mine.is_empty() {
        return Err(fail(
            ErrorKind::Config,
            format!("none of the given keys is a key of role {role:?} (wrong key? see `ocituf maintainer list`)"),
        ));
    }
    let current = base.as_ref().map_or(0, |f| f.version);
    let next = current + 1;
    let mut contents = pending_contents(repo, role, &auth, current).await?;
    if contents.is_empty() {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "no pending version {next} of role {role:?} in {}: start one with `ocituf sign` \
                 (it waits as pending when its signatures are below the threshold)",
                repo.location
            ),
        ));
    }
    let listing = contents
        .iter()
        .map(|(d, (c, _))| format!("{d} ({c}/{} signatures)", auth.threshold))
        .collect::<Vec<_>>()
        .join(", ");
    let (_, mut env) = match expect {
        Some(expected) => contents.remove(expected).ok_or_else(|| {
            fail(
                ErrorKind::Config,
                format!(
                    "no pending version {next} of role {role:?} has content {expected}; pending: \
                     {listing}; ask the maintainer who started it for its content digest"
                ),
            )
        })?,
        None if contents.len() == 1 => contents
            .into_values()
            .next()
            .ok_or_else(|| fail(ErrorKind::Config, "no pending version to sign"))?,
        None => {
            return Err(fail(
                ErrorKind::Config,
                format!(
                    "rival pending versions {next} of role {role:?}: {listing}; ask the maintainer \
                     who started yours for its content digest and pass it with --expect"
                ),
            ))
        }
    };
    Targets::from_signed(&env.signed).map_err(|e| {
        crate::Error::wrap(ErrorKind::Config, "the pending version is malformed", e)
    })?;
    let dyn_signers: Vec<&dyn Signer> = mine;
    ocituf_tuf::editor::sign_envelope(&mut env, &dyn_signers).map_err(|e| {
        crate::Error::wrap(ErrorKind::Config, "could not sign the pending version", e)
    })?;
    publish_or_hold(
        repo,
        role,
        &auth,
        base.as_ref().map(|f| &f.manifest),
        &env,
        next,
    )
    .await
}

/// Apply `edit` to the newest version of `role`, sign the next version with `signers`
/// (fewer than the threshold), and store it as pending. Built, as every writer builds, on
/// every verified version at the newest number merged, not on `base` alone: a pending
/// version built on one rival would, once co-signed, drop what the others hold.
pub(crate) async fn propose(
    repo: &MetaRepo,
    role: &str,
    auth: &Authority,
    signers: &[&dyn Signer],
    expires: time::OffsetDateTime,
    base: Option<&Found>,
    edit: &(dyn Fn(&mut Targets) -> Result<bool> + Sync),
) -> Result<Outcome> {
    let fresh = crate::edit::fresh_base(repo, role, auth, base).await?;
    let mut t = fresh
        .targets
        .unwrap_or_else(|| crate::edit::before_first_version(expires));
    edit(&mut t)?;
    t.version += 1;
    t.expires = expires;
    let (env, _) =
        crate::authority::sign_envelope(crate::edit::to_value(&t)?, signers, Vec::new())?;
    publish_or_hold(repo, role, auth, fresh.parent.as_ref(), &env, t.version).await
}
