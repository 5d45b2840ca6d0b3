//! `ocituf root rotate` and `ocituf root sign`: new root versions signed by several key
//! holders at different times. A version that does not yet meet the thresholds of both the
//! current and the new root (TUF 5.3.4) waits in the repository as a pending root, which
//! clients never see.

use std::collections::BTreeMap;

use ocituf_resolver::{ErrorKind, RepositoryReference};
use ocituf_tuf::crypto::{KeyId, PrivateKey, Signer};
use ocituf_tuf::metadata::{Envelope, Role, Root, TOP_LEVEL_ROLES};
use time::OffsetDateTime;

use super::write::load_signers;
use super::Context;
use crate::cli::{RootCommand, RootRotateArgs, RootSignArgs};
use crate::failure::{fail, ResultExt as _};
use crate::keys;
use crate::repo::{valid_signatures, Authority, Found, MetaRepo};
use crate::when::expiry;

pub async fn run(ctx: &Context, cmd: RootCommand) -> anyhow::Result<()> {
    match cmd {
        RootCommand::Rotate(a) => rotate(ctx, &a).await,
        RootCommand::Sign(a) => sign(ctx, &a).await,
    }
}

/// Sign `env` with the keys of `signers` that the current or the new root names, then
/// publish it (both thresholds met) or store it as pending.
async fn sign_and_store(
    repo: &MetaRepo,
    current: &Root,
    current_found: &Found,
    mut env: Envelope,
    signers: &[PrivateKey],
) -> anyhow::Result<()> {
    let new_root =
        Root::from_signed(&env.signed).config(|| "the new root is not valid".to_owned())?;
    let old = Authority::of_top_level(current, "root")?;
    let new = Authority::of_top_level(&new_root, "root")?;
    let usable: Vec<&dyn Signer> = signers
        .iter()
        .filter(|k| old.keyids.contains(k.key_id()) || new.keyids.contains(k.key_id()))
        .map(|k| k as &dyn Signer)
        .collect();
    if usable.is_empty() {
        return Err(fail(
            ErrorKind::Config,
            "none of the given keys is a root key of the current or the new root (wrong key?)",
        ));
    }
    ocituf_tuf::editor::sign_envelope(&mut env, &usable)
        .config(|| "could not sign the root".to_owned())?;
    let bytes = crate::repo::file_bytes(&env)?;
    let content = content_digest(&env)?;
    let (o, n) = (
        valid_signatures(&env, &old.keys, &old.keyids),
        valid_signatures(&env, &new.keys, &new.keyids),
    );
    if o >= old.threshold && n >= new.threshold {
        repo.push("root", &bytes, Some(&current_found.manifest))
            .await?;
        outln!(
            "published root version {} (signed by {o}/{} current and {n}/{} new root keys); clients follow it on their next refresh",
            new_root.version, old.threshold, new.threshold
        );
    } else {
        repo.push_pending_root(&bytes, new_root.version).await?;
        outln!(
            "root version {} is pending: signed by {o}/{} current and {n}/{} new root keys; content {content}; other holders run `ocituf root sign --expect {content}`",
            new_root.version, old.threshold, new.threshold
        );
    }
    Ok(())
}

/// The content digest of a root version: the sha256 of the canonical bytes of its `signed`
/// part, the same for every copy whatever signatures it carries. Co-signers compare it with
/// what the holder who started the rotation tells them.
pub(super) fn content_digest(env: &Envelope) -> anyhow::Result<String> {
    let signed = env
        .signed_bytes()
        .config(|| "could not serialise the root".to_owned())?;
    Ok(ocituf_oci::Digest::of(&signed).to_string())
}

async fn rotate(ctx: &Context, a: &RootRotateArgs) -> anyhow::Result<()> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = MetaRepo::open(&repo_ref, &a.repo.name, &ctx.registry)?;
    if !TOP_LEVEL_ROLES.contains(&a.role.as_str()) {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "--role {:?} is not a top-level role (root, targets, snapshot, timestamp); \
                 delegated roles change with `ocituf delegate`",
                a.role
            ),
        ));
    }
    let signers = load_signers(&a.keys)?;
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    let (current, found) = repo.root_chain(pin.as_ref()).await?;
    let mut new = current.clone();
    new.version = current.version + 1;
    new.expires = expiry("expires", &a.expires, OffsetDateTime::now_utc())?;
    let role = new
        .roles
        .get_mut(&a.role)
        .ok_or_else(|| fail(ErrorKind::Config, format!("root has no role {:?}", a.role)))?;
    for spec in &a.add_keys {
        let key = keys::load_public(spec)?;
        let id = KeyId::new(keys::key_id(&key)?);
        if !role.keyids.contains(&id) {
            role.keyids.push(id.clone());
        }
        new.keys.insert(id, key);
    }
    for prefix in &a.remove_keys {
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
                    a.role
                ),
            ));
        };
        role.keyids.retain(|k| k != id);
    }
    if let Some(t) = a.threshold {
        role.threshold = t;
    }
    if role.threshold == 0 || role.threshold as usize > role.keyids.len() {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "role {:?} would have threshold {} with {} keys",
                a.role,
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
    sign_and_store(&repo, &current, &found, env, &signers).await
}

async fn sign(ctx: &Context, a: &RootSignArgs) -> anyhow::Result<()> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = MetaRepo::open(&repo_ref, &a.repo.name, &ctx.registry)?;
    let signers = load_signers(&a.keys)?;
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    let (current, found) = repo.root_chain(pin.as_ref()).await?;
    let next = current.version + 1;
    let old = Authority::of_top_level(&current, "root")?;
    // Pending roots are untrusted: anyone who can push may add a rival candidate naming their
    // own keys. Group the candidates by their content (the digest of the signed part, which
    // signatures do not change); sign only the content the holder expects, and never pick
    // between rival contents on their behalf.
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
                "no pending root version {next} of {:?} in {repo_ref}: start one with `ocituf root rotate`",
                a.repo.name
            ),
        ));
    }
    let listing = contents
        .iter()
        .map(|(d, (c, _))| format!("{d} ({c}/{} current root keys)", old.threshold))
        .collect::<Vec<_>>()
        .join(", ");
    let chosen = match &a.expect {
        Some(expected) => contents.remove(expected.as_str()).ok_or_else(|| {
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
    sign_and_store(&repo, &current, &found, env, &signers).await
}
