//! Projects and their maintainers (`ocituf project create`, `ocituf maintainer
//! add|remove|list`): a project is a team role delegated image patterns by another role; its
//! maintainers are the keys that delegation names, and changing them is a new version of the
//! delegating role, signed by that role's holders.

use ocituf_tuf::crypto::{KeyId, PublicKey};

use crate::keys::SigningKey;
use ocituf_tuf::metadata::{DelegatedRole, Targets};
use time::OffsetDateTime;

use crate::delegate::{delegate, DelegateRequest, Delegated};
use crate::edit::{authorised, update_targets_role};
use crate::error::{fail, Result};
use crate::pin::Pin;
use crate::repo::MetaRepo;
use crate::state::State;
use crate::ErrorKind;

/// A project's maintainers as the newest verified version of its delegating role says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintainers {
    /// The delegating role.
    pub from: String,
    /// Its version that names them.
    pub from_version: u64,
    pub keys: Vec<(KeyId, PublicKey)>,
    pub threshold: u32,
    pub paths: Vec<String>,
}

/// Create a project: delegate `r.paths` to the new team role `r.role` (refused when a role
/// of that name is already delegated: its maintainers change with `ocituf maintainer`).
///
/// # Errors
/// As [`delegate`], and a configuration error when the project exists.
pub async fn create(
    repo: &MetaRepo,
    pin: Option<&Pin>,
    r: &DelegateRequest<'_>,
) -> Result<Delegated> {
    let state = State::load(repo, pin).await?;
    if let Some((from, _)) = find(&state, r.role) {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "project {:?} already exists (delegated by role {from:?}); change its keys with \
                 `ocituf maintainer add|remove`",
                r.role
            ),
        ));
    }
    delegate(repo, pin, r).await
}

/// The delegating role of `project` and the delegation itself, searched in pre-order.
fn find(state: &State, project: &str) -> Option<(String, DelegatedRole)> {
    state.order.iter().find_map(|from| {
        let roles = state
            .targets_of(from)?
            .delegations
            .as_ref()?
            .roles
            .as_ref()?;
        let d = roles.iter().find(|d| d.name == project)?;
        Some((from.clone(), d.clone()))
    })
}

fn not_found(repo: &MetaRepo, project: &str) -> crate::Error {
    fail(
        ErrorKind::Config,
        format!(
            "no project {project:?} in {} (create it with `ocituf project create`; see `ocituf status`)",
            repo.location
        ),
    )
}

/// The maintainers of `project`.
///
/// # Errors
/// A configuration error when no role delegates to `project`; registry failures.
pub async fn list(repo: &MetaRepo, pin: Option<&Pin>, project: &str) -> Result<Maintainers> {
    let state = State::load(repo, pin).await?;
    let (from, d) = find(&state, project).ok_or_else(|| not_found(repo, project))?;
    let t = state
        .targets_of(&from)
        .ok_or_else(|| not_found(repo, project))?;
    let keys_of = t
        .delegations
        .as_ref()
        .map(|d| d.keys.clone())
        .unwrap_or_default();
    let keys = d
        .keyids
        .iter()
        .filter_map(|id| keys_of.get(id).map(|k| (id.clone(), k.clone())))
        .collect();
    Ok(Maintainers {
        from,
        from_version: t.version,
        keys,
        threshold: d.threshold,
        paths: d.paths.clone().unwrap_or_default(),
    })
}

/// Which maintainer to remove: a key, or a keyid prefix (at least 8 hex digits).
pub enum Who<'a> {
    Key(&'a PublicKey),
    KeyIdPrefix(&'a str),
}

/// A change to a project's maintainers.
pub struct Change<'a> {
    pub project: &'a str,
    pub add: Option<&'a PublicKey>,
    pub remove: Option<Who<'a>>,
    /// A new threshold (default: unchanged).
    pub threshold: Option<u32>,
    /// Keys of the delegating role.
    pub signing_keys: &'a [SigningKey],
    pub expires: OffsetDateTime,
}

/// Add or remove a maintainer of `c.project` (and optionally change its threshold): a new
/// version of the delegating role. Returns that version and the maintainers after it.
///
/// # Errors
/// A configuration error for an unknown project, a maintainer to remove who is not one, a
/// removal that would leave fewer maintainers than the threshold, keys that cannot sign the
/// delegating role; registry failures.
pub async fn change(repo: &MetaRepo, pin: Option<&Pin>, c: &Change<'_>) -> Result<Maintainers> {
    let state = State::load(repo, pin).await?;
    let (from, current) = find(&state, c.project).ok_or_else(|| not_found(repo, c.project))?;
    let Some((base, auth)) = state.targets.get(&from).cloned() else {
        return Err(not_found(repo, c.project));
    };
    let mut keyids = current.keyids.clone();
    let added = match c.add {
        Some(k) => {
            let id = KeyId::new(crate::keys::key_id(k)?);
            if keyids.contains(&id) {
                return Err(fail(
                    ErrorKind::Config,
                    format!(
                        "key {} is already a maintainer of {:?} (see `ocituf maintainer list`)",
                        short(&id),
                        c.project
                    ),
                ));
            }
            keyids.push(id.clone());
            Some((id, k.clone()))
        }
        None => None,
    };
    if let Some(who) = &c.remove {
        let matching: Vec<KeyId> = match who {
            Who::Key(k) => {
                let id = KeyId::new(crate::keys::key_id(k)?);
                keyids.iter().filter(|x| **x == id).cloned().collect()
            }
            Who::KeyIdPrefix(p) => keyids
                .iter()
                .filter(|x| p.len() >= 8 && x.as_str().starts_with(*p))
                .cloned()
                .collect(),
        };
        let [id] = matching.as_slice() else {
            return Err(fail(
                ErrorKind::Config,
                format!(
                    "the key to remove matches {} maintainers of {:?}; give a key file or at \
                     least 8 hex digits of one keyid from `ocituf maintainer list`",
                    matching.len(),
                    c.project
                ),
            ));
        };
        keyids.retain(|k| k != id);
    }
    let threshold = c.threshold.unwrap_or(current.threshold);
    if threshold == 0 || threshold as usize > keyids.len() {
        let what = if c.remove.is_some() && c.threshold.is_none() {
            format!(
                "removing it would leave {} maintainers of {:?}, below its threshold {threshold}; \
                 add a maintainer first (`ocituf maintainer add`) or lower the threshold with \
                 --threshold",
                keyids.len(),
                c.project
            )
        } else {
            format!(
                "threshold {threshold} must be between 1 and the number of maintainers ({})",
                keyids.len()
            )
        };
        return Err(fail(ErrorKind::Config, what));
    }
    let project = c.project.to_owned();
    let edit = move |t: &mut Targets| -> Result<bool> {
        let Some(d) = t.delegations.as_mut() else {
            return Err(fail(
                ErrorKind::Config,
                format!("project {project:?} is no longer delegated"),
            ));
        };
        if let Some((id, k)) = &added {
            d.keys.insert(id.clone(), k.clone());
        }
        let roles = d.roles.get_or_insert_with(Vec::new);
        let Some(role) = roles.iter_mut().find(|r| r.name == project) else {
            return Err(fail(
                ErrorKind::Config,
                format!("project {project:?} is no longer delegated"),
            ));
        };
        if role.keyids == keyids && role.threshold == threshold {
            return Ok(false);
        }
        role.keyids.clone_from(&keyids);
        role.threshold = threshold;
        let used: Vec<KeyId> = roles.iter().flat_map(|r| r.keyids.clone()).collect();
        d.keys.retain(|id, _| used.contains(id));
        Ok(true)
    };
    let signers = authorised(c.signing_keys, &auth);
    update_targets_role(repo, &from, &auth, &signers, c.expires, base, &edit).await?;
    list(repo, pin, c.project).await
}

/// The first 16 hex digits of a keyid, as messages show it.
pub fn short(id: &KeyId) -> &str {
    &id.as_str()[..id.as_str().len().min(16)]
}
