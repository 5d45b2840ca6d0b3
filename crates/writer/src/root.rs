//! New root versions signed by several key holders at different times (`ocituf root
//! rotate`, `ocituf root sign`). A version that does not yet meet the thresholds of both the
//! current and the new root (TUF 5.3.4) waits in the repository as a pending root, which
//! clients never see, named by the digest of its signed part.

use std::collections::BTreeMap;

use ocituf_tuf::crypto::{KeyId, PublicKey, Signer};

use crate::keys::SigningKey;
use ocituf_tuf::metadata::{Envelope, Role, Root, TOP_LEVEL_ROLES};
use time::OffsetDateTime;

use crate::authority::{file_bytes, valid_signatures, Authority};
use crate::error::{fail, Result, ResultExt as _};
use crate::pin::Pin;
use crate::repo::{Found, MetaRepo};
use crate::ErrorKind;

/// Signatures a root version has, against the current and the new root's root role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootSignatures {
    pub current: u32,
    pub current_threshold: u32,
    pub new: u32,
    pub new_threshold: u32,
}

/// What became of a root version after signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootOutcome {
    /// Both thresholds met: clients follow it on their next refresh.
    Published {
        version: u64,
        signatures: RootSignatures,
    },
    /// Stored as pending; other holders run `ocituf root sign --expect CONTENT`.
    Pending {
        version: u64,
        content: String,
        signatures: RootSignatures,
    },
}

/// The content digest of a root version: the sha256 of the canonical bytes of its `signed`
/// part, the same for every copy whatever signatures it carries. Co-signers compare it with
/// what the holder who started the rotation tells them.
pub fn content_digest(env: &Envelope) -> Result<String> {
    let signed = env
        .signed_bytes()
        .config(|| "could not serialise the root".to_owned())?;
    Ok(ocituf_oci::Digest::of(&signed).to_string())
}

/// Sign `env` with the keys of `signers` that the current or the new root names, then
/// publish it (both thresholds met) or store it as pending.
async fn sign_and_store(
    repo: &MetaRepo,
    current: &Root,
    current_found: &Found,
    mut env: Envelope,
    signers: &[SigningKey],
) -> Result<RootOutcome> {
    let new_root =
        Root::from_signed(&env.signed).config(|| "the new root is not valid".to_owned())?;
    let old = Authority::of_top_level(current, "root")?;
    let new = Authority::of_top_level(&new_root, "root")?;
    let usable: Vec<&dyn Signer> = signers
        .iter()
        .filter(|k| old.keyids.contains(k.key_id()) || new.keyids.contains(k.key_id()))
        .map(AsRef::as_ref)
        .collect();
    if usable.is_empty() {
        return Err(fail(
            ErrorKind::Config,
            "none of the given keys is a root key of the current or the new root (wrong key?)",
        ));
    }
    ocituf_tuf::editor::sign_envelope(&mut env, &usable)
        .config(|| "could not sign the root".to_owned())?;
    let bytes = file_bytes(&env)?;
    let content = content_digest(&env)?;
    let signatures = RootSignatures {
        current: valid_signatures(&env, &old.keys, &old.keyids),
        current_threshold: old.threshold,
        new: valid_signatures(&env, &new.keys, &new.keyids),
        new_threshold: new.threshold,
    };
    if signatures.current >= old.threshold && signatures.new >= new.threshold {
        repo.push("root", &bytes, Some(&current_found.manifest))
            .await?;
        Ok(RootOutcome::Published {
            version: new_root.version,
            signatures,
        })
    } else {
        repo.push_pending_root(&bytes, new_root.version).await?;
        Ok(RootOutcome::Pending {
            version: new_root.version,
            content,
            signatures,
        })
    }
}

/// A change to one top-level role's keys in the next root version.
pub struct RotateRequest<'a> {
    /// `root`, `targets`, `snapshot` or `timestamp`.
    pub role: &'a str,
    pub add_keys: &'a [PublicKey],
    /// Keyid prefixes (at least 8 hex digits) of keys to remove from the role.
    pub remove_keys: &'a [String],
    pub threshold: Option<u32>,
    pub expires: OffsetDateTime,
    pub signers: &'a [SigningKey],
}

/// Whether `role` is one that root rotation changes (a top-level role).
///
/// # Errors
/// A configuration error naming where delegated roles change instead.
pub fn check_rotatable(role: &str) -> Result<()> {
    if TOP_LEVEL_ROLES.contains(&role) {
        return Ok(());
    }
    Err(fail(
        ErrorKind::Config,
        format!(
            "--role {role:?} is not a top-level role (root, targets, snapshot, timestamp); \
             delegated roles change with `ocituf delegate`"
        ),
    ))
}

/// Make the next root version with the change, sign it with the keys given, and publish it
/// or store it as pending.
///
/// # Errors
/// A configuration error for a role that is not top-level, an ambiguous key prefix, a
/// threshold the keys cannot meet, or keys that are root keys of neither root.
pub async fn rotate(
    repo: &MetaRepo,
    pin: Option<&Pin>,
    r: &RotateRequest<'_>,
) -> Result<RootOutcome> {
    check_rotatable(r.role)?;
    let (current, found) = repo.root_chain(pin).await?;
    let mut new = current.clone();
    new.version = current.version + 1;
    new.expires = r.expires;
    let role = new
        .roles
        .get_mut(r.role)
        .ok_or_else(|| fail(ErrorKind::Config, format!("root has no role {:?}", r.role)))?;
    for key in r.add_keys {
        let id = KeyId::new(crate::keys::key_id(key)?);
        if !role.keyids.contains(&id) {
            role.keyids.push(id.clone());
        }
        new.keys.insert(id, key.clone());
    }
    for prefix in r.remove_keys {
        let matching: Vec<KeyId> = role
            .keyids
            .iter()
            .filter(|k| prefix.len() >= 8 && k.as_str().starts_with(prefix.as_str()))
            .cloned()
            .collect();
        let [id] = matching.as_slice() else {
            return Err(fail(
                ErrorKind::Config,
                format!(
                    "--remove-key {prefix:?} matches {} keys of role {:?} (give at least 8 hex digits of one keyid; see `ocituf status`)",
                    matching.len(),
                    r.role
                ),
            ));
        };
        role.keyids.retain(|k| k != id);
    }
    if let Some(t) = r.threshold {
        role.threshold = t;
    }
    if role.threshold == 0 || role.threshold as usize > role.keyids.len() {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "role {:?} would have threshold {} with {} keys",
                r.role,
                role.threshold,
                role.keyids.len()
            ),
        ));
    }
    // Drop keys no role uses any more.
    let used: Vec<KeyId> = new.roles.values().flat_map(|r| r.keyids.clone()).collect();
    new.keys.retain(|id, _| used.contains(id));
    new.validate()
        .config(|| "the new root is not valid".to_owned())?;
    let env = Envelope {
        signed: new
            .to_signed()
            .config(|| "could not serialise the root".to_owned())?,
        signatures: Vec::new(),
        extra: BTreeMap::new(),
    };
    sign_and_store(repo, &current, &found, env, r.signers).await
}

/// Add the signatures of `signers` to the pending root version after the current one whose
/// content is `expect` (or the only pending content when `expect` is `None`).
///
/// # Security
/// Pending roots are untrusted: anyone who can push may add a rival candidate naming their
/// own keys. Candidates are grouped by content (the digest of the signed part, which
/// signatures do not change); only the content the holder expects is signed, and with rival
/// contents and no `expect` nothing is.
///
/// # Errors
/// A configuration error when no pending root matches, or contents rival.
pub async fn cosign_root(
    repo: &MetaRepo,
    pin: Option<&Pin>,
    signers: &[SigningKey],
    expect: Option<&str>,
) -> Result<RootOutcome> {
    let (current, found) = repo.root_chain(pin).await?;
    let next = current.version + 1;
    let old = Authority::of_top_level(&current, "root")?;
    let mut contents: BTreeMap<String, (u32, Envelope)> = BTreeMap::new();
    for (version, env) in repo.pending_roots(current.version).await? {
        if version != next {
            continue;
        }
        let digest = content_digest(&env)?;
        let count = valid_signatures(&env, &old.keys, &old.keyids);
        match contents.get(&digest) {
            Some((c, _)) if *c >= count => {}
            _ => {
                contents.insert(digest, (count, env));
            }
        }
    }
    if contents.is_empty() {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "no pending root version {next} of {:?} in {}: start one with `ocituf root rotate`",
                repo.name.as_str(),
                repo.location
            ),
        ));
    }
    let listing = contents
        .iter()
        .map(|(d, (c, _))| format!("{d} ({c}/{} current root keys)", old.threshold))
        .collect::<Vec<_>>()
        .join(", ");
    let chosen = match expect {
        Some(expected) => contents.remove(expected).ok_or_else(|| {
            fail(
                ErrorKind::Config,
                format!(
                    "no pending root version {next} has content {expected}; pending: {listing}"
                ),
            )
        })?,
        None if contents.len() == 1 => contents
            .into_values()
            .next()
            .ok_or_else(|| fail(ErrorKind::Config, "no pending root to sign".to_owned()))?,
        None => {
            return Err(fail(
                ErrorKind::Config,
                format!(
                    "rival pending roots for version {next}: {listing}; ask the holder who started \
                     the rotation for its content digest and pass it with --expect"
                ),
            ))
        }
    };
    let (_, env) = chosen;
    sign_and_store(repo, &current, &found, env, signers).await
}
