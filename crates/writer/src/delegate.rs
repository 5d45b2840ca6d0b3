//! Delegating image patterns to a team role (`ocituf delegate`), and a team role to succinct
//! hash bins (TAP 15).

use std::collections::BTreeMap;

use ocituf_tuf::crypto::{KeyId, PublicKey};

use crate::keys::SigningKey;
use ocituf_tuf::metadata::{DelegatedRole, Delegations, SuccinctRoles, Targets};
use time::OffsetDateTime;

use crate::authority::Authority;
use crate::edit::{authorised, update_targets_role};
use crate::error::{fail, Result, ResultExt as _};
use crate::pin::Pin;
use crate::repo::MetaRepo;
use crate::state::State;
use crate::ErrorKind;

/// A new or changed delegation.
pub struct DelegateRequest<'a> {
    /// The delegating role (`targets`, or a team role that delegates further).
    pub from: &'a str,
    /// The new team role's name.
    pub role: &'a str,
    /// The team's public keys, and how many of them must sign.
    pub keys: &'a [PublicKey],
    pub threshold: u32,
    pub terminating: bool,
    /// TUF path patterns (`acme/app:*`); empty means `*`.
    pub paths: &'a [String],
    /// Keys of the delegating role.
    pub signing_keys: &'a [SigningKey],
    pub expires: OffsetDateTime,
    /// Delegate the team role further to this many succinct hash bins (a power of two).
    pub hash_bins: Option<HashBins<'a>>,
}

/// The team role's own private keys, which sign the version that delegates to the bins.
pub struct HashBins<'a> {
    pub count: u32,
    pub team_keys: &'a [SigningKey],
}

/// What [`delegate`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegated {
    pub paths: Vec<String>,
    pub keyids: Vec<KeyId>,
    /// The new version of the delegating role.
    pub from_version: u64,
    /// The new version of the team role, when it now delegates to hash bins.
    pub bins_version: Option<u64>,
}

/// Delegate `r.paths` from `r.from` to `r.role`, then (with `hash_bins`) `r.role` to bins.
///
/// # Errors
/// A configuration error for bad names, thresholds or bin counts, a delegating role that
/// does not exist or delegates to bins already, keys that cannot sign; registry failures.
pub async fn delegate(
    repo: &MetaRepo,
    pin: Option<&Pin>,
    r: &DelegateRequest<'_>,
) -> Result<Delegated> {
    check_request(r)?;
    let state = State::load(repo, pin).await?;
    let Some((base, auth)) = state.targets.get(r.from).cloned() else {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "role {:?} does not exist in {} (see `ocituf status`)",
                r.from, repo.location
            ),
        ));
    };
    let mut team_keys = BTreeMap::new();
    let mut keyids = Vec::new();
    for k in r.keys {
        let id = KeyId::new(crate::keys::key_id(k)?);
        team_keys.insert(id.clone(), k.clone());
        if !keyids.contains(&id) {
            keyids.push(id);
        }
    }
    let paths = if r.paths.is_empty() {
        vec!["*".to_owned()]
    } else {
        r.paths.to_vec()
    };
    let role_name = r.role.to_owned();
    let (terminating, threshold) = (r.terminating, r.threshold);
    let edit = {
        let (team_keys, keyids, paths) = (team_keys.clone(), keyids.clone(), paths.clone());
        move |t: &mut Targets| -> Result<bool> {
            let d = t.delegations.get_or_insert_with(|| Delegations {
                keys: BTreeMap::new(),
                roles: Some(Vec::new()),
                succinct_roles: None,
                extra: BTreeMap::new(),
            });
            if d.succinct_roles.is_some() {
                return Err(fail(
                    ErrorKind::Config,
                    "this role delegates to hash bins; it cannot also delegate by name",
                ));
            }
            for (id, k) in &team_keys {
                d.keys.insert(id.clone(), k.clone());
            }
            let roles = d.roles.get_or_insert_with(Vec::new);
            let new = DelegatedRole {
                name: role_name.clone(),
                keyids: keyids.clone(),
                threshold,
                terminating,
                paths: Some(paths.clone()),
                path_hash_prefixes: None,
                extra: BTreeMap::new(),
            };
            match roles.iter_mut().find(|r| r.name == role_name) {
                Some(r) if *r == new => return Ok(false),
                Some(r) => *r = new,
                None => roles.push(new),
            }
            // Drop keys no role uses any more.
            let used: Vec<KeyId> = roles.iter().flat_map(|r| r.keyids.clone()).collect();
            d.keys.retain(|id, _| used.contains(id));
            Ok(true)
        }
    };
    let signers = authorised(r.signing_keys, &auth);
    let from_version =
        update_targets_role(repo, r.from, &auth, &signers, r.expires, base, &edit).await?;

    let bins_version = match &r.hash_bins {
        Some(bins) => Some(delegate_to_bins(repo, pin, r, bins, team_keys, keyids.clone()).await?),
        None => None,
    };
    Ok(Delegated {
        paths,
        keyids,
        from_version,
        bins_version,
    })
}

/// The team role `r.role` delegates to `bins.count` succinct hash bins (its keys sign them).
async fn delegate_to_bins(
    repo: &MetaRepo,
    pin: Option<&Pin>,
    r: &DelegateRequest<'_>,
    bins: &HashBins<'_>,
    team_keys: BTreeMap<KeyId, PublicKey>,
    keyids: Vec<KeyId>,
) -> Result<u64> {
    let threshold = r.threshold;
    let team_auth = Authority {
        keys: team_keys.clone(),
        keyids: keyids.clone(),
        threshold,
    };
    let team_signers = authorised(bins.team_keys, &team_auth);
    repo.progress().note(format_args!(
        "delegating role {:?} to {} hash bins…",
        r.role, bins.count
    ));
    let state = State::load(repo, pin).await?;
    let base = state.targets.get(r.role).and_then(|(f, _)| f.clone());
    let bit_length = bins.count.trailing_zeros();
    let prefix = r.role.to_owned();
    let edit = move |t: &mut Targets| -> Result<bool> {
        let succinct = SuccinctRoles {
            keyids: keyids.clone(),
            threshold,
            bit_length,
            name_prefix: prefix.clone(),
            extra: BTreeMap::new(),
        };
        if !t.targets.is_empty() {
            return Err(fail(
                ErrorKind::Config,
                "the role already has targets of its own; hash bins need an empty role",
            ));
        }
        let d = Delegations {
            keys: team_keys.clone(),
            roles: None,
            succinct_roles: Some(succinct),
            extra: BTreeMap::new(),
        };
        if t.delegations.as_ref() == Some(&d) {
            return Ok(false);
        }
        t.delegations = Some(d);
        Ok(true)
    };
    update_targets_role(
        repo,
        r.role,
        &team_auth,
        &team_signers,
        r.expires,
        base,
        &edit,
    )
    .await
}

/// The most hash bins a team role may delegate to (2^20). About 8 targets per bin keeps a
/// pull with Merkle snapshots under 8 KiB (docs/scale.md): a million targets want 2^17.
pub const MAX_HASH_BINS: u32 = 1 << 20;

/// Refuse a request that cannot make valid metadata, before anything is read or pushed.
fn check_request(r: &DelegateRequest<'_>) -> Result<()> {
    if r.threshold == 0 || r.threshold as usize > r.keys.len() {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "--threshold {} must be between 1 and the number of --key options ({})",
                r.threshold,
                r.keys.len()
            ),
        ));
    }
    ocituf_oci::mapping::check_role_name(r.role)
        .config(|| format!("{:?} cannot be a role name", r.role))?;
    if ocituf_tuf::metadata::TOP_LEVEL_ROLES.contains(&r.role) {
        return Err(fail(
            ErrorKind::Config,
            format!("{:?} is a top-level role name; pick a team name", r.role),
        ));
    }
    if let Some(bins) = &r.hash_bins {
        if !bins.count.is_power_of_two() || !(2..=MAX_HASH_BINS).contains(&bins.count) {
            return Err(fail(
                ErrorKind::Config,
                format!("--hash-bins must be a power of two from 2 to {MAX_HASH_BINS}"),
            ));
        }
    }
    Ok(())
}
