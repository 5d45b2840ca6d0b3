//! The writer commands: `init`, `publish`, `sign`, `yank`, `delegate`.

use std::collections::BTreeMap;

use ocituf_oci::{ArtifactStore as _, Digest, ManifestRef};
use ocituf_resolver::{ErrorKind, ImageReference, RepositoryReference, TrustPolicy};
use ocituf_tuf::crypto::{KeyId, PrivateKey, PublicKey, Signer};
use ocituf_tuf::metadata::{
    DelegatedRole, Delegations, MetaFile, Role, RoleKeys, Root, Snapshot, SuccinctRoles,
    TargetFile, Targets, Timestamp, SPEC_VERSION,
};
use time::OffsetDateTime;

use super::Context;
use crate::cli::{DelegateArgs, InitArgs, PublishArgs, SignArgs};
use crate::failure::{fail, ResultExt as _};
use crate::keys;
use crate::pin::Pin;
use crate::repo::{sign_envelope, Authority, Found, MetaRepo, State};
use crate::when::expiry;

/// Largest image manifest read (the distribution registry's own cap).
const MAX_IMAGE_MANIFEST_LEN: u64 = 4 * 1024 * 1024;
/// How many times a signer rebuilds on top of a concurrent winner before giving up.
const MAX_SIGN_ATTEMPTS: u32 = 32;
/// How long a signer waits before confirming that its change is in every newest version.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(400);

pub(super) fn load_signers(specs: &[String]) -> anyhow::Result<Vec<PrivateKey>> {
    specs.iter().map(|s| keys::load_private(s)).collect()
}

fn as_dyn(keys: &[PrivateKey]) -> Vec<&dyn Signer> {
    keys.iter().map(|k| k as &dyn Signer).collect()
}

fn to_value<T: Role>(role: &T) -> anyhow::Result<serde_json::Value> {
    role.to_signed()
        .config(|| format!("could not serialise {} metadata", T::TYPE))
}

fn sha256_meta(version: u64, bytes: &[u8]) -> MetaFile {
    let mut m = MetaFile::new(version);
    m.length = Some(bytes.len() as u64);
    m.hashes = Some(BTreeMap::from([(
        "sha256".to_owned(),
        Digest::of(bytes).hex().to_owned(),
    )]));
    m
}

fn check_threshold(role: &str, signers: &[&dyn Signer], auth: &Authority) -> anyhow::Result<()> {
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

fn authorised<'a>(signers: &'a [PrivateKey], auth: &Authority) -> Vec<&'a dyn Signer> {
    signers
        .iter()
        .filter(|k| auth.keyids.contains(k.key_id()))
        .map(|k| k as &dyn Signer)
        .collect()
}

pub async fn init(ctx: &Context, a: &InitArgs) -> anyhow::Result<()> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = MetaRepo::open(&repo_ref, &a.repo.name, &ctx.registry)?;
    let now = OffsetDateTime::now_utc();
    let root_keys = load_signers(&a.root_keys)?;
    let targets_keys = load_signers(&a.targets_keys)?;
    let snapshot_key = keys::load_private(&a.snapshot_key)?;
    let timestamp_key = keys::load_private(&a.timestamp_key)?;
    if a.root_threshold == 0 || a.targets_threshold == 0 {
        return Err(fail(ErrorKind::Config, "thresholds must be at least 1"));
    }
    if (root_keys.len() as u64) < u64::from(a.root_threshold) {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "--root-threshold {} needs at least that many --root-key options (got {})",
                a.root_threshold,
                root_keys.len()
            ),
        ));
    }
    if (targets_keys.len() as u64) < u64::from(a.targets_threshold) {
        return Err(fail(
            ErrorKind::Config,
            "--targets-threshold is larger than the number of --targets-key options",
        ));
    }
    if repo.root_chain(None).await.is_ok() {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "root of trust {:?} already exists in {}: use `ocituf root rotate` to change it, or pick another --name",
                a.repo.name, repo_ref
            ),
        ));
    }

    let mut all_keys: BTreeMap<KeyId, PublicKey> = BTreeMap::new();
    let mut ids = |ks: &[&PrivateKey]| -> Vec<KeyId> {
        let mut v: Vec<KeyId> = Vec::new();
        for k in ks {
            all_keys.insert(k.key_id().clone(), k.public_key().clone());
            if !v.contains(k.key_id()) {
                v.push(k.key_id().clone());
            }
        }
        v
    };
    let root_ids = ids(&root_keys.iter().collect::<Vec<_>>());
    let targets_ids = ids(&targets_keys.iter().collect::<Vec<_>>());
    let snapshot_ids = ids(&[&snapshot_key]);
    let timestamp_ids = ids(&[&timestamp_key]);
    if root_ids.len() < a.root_threshold as usize {
        return Err(fail(ErrorKind::Config, "the same root key was given twice"));
    }
    let root = Root {
        spec_version: SPEC_VERSION.to_owned(),
        version: 1,
        expires: expiry("root-expires", &a.expiry.root_expires, now)?,
        consistent_snapshot: Some(true),
        keys: all_keys,
        roles: BTreeMap::from([
            ("root".to_owned(), RoleKeys::new(root_ids, a.root_threshold)),
            (
                "targets".to_owned(),
                RoleKeys::new(targets_ids, a.targets_threshold),
            ),
            ("snapshot".to_owned(), RoleKeys::new(snapshot_ids, 1)),
            ("timestamp".to_owned(), RoleKeys::new(timestamp_ids, 1)),
        ]),
        extra: BTreeMap::new(),
    };
    root.validate()
        .config(|| "the new root is not valid".to_owned())?;
    let (_, root_bytes) = sign_envelope(to_value(&root)?, &as_dyn(&root_keys), Vec::new())?;

    let targets = Targets {
        spec_version: SPEC_VERSION.to_owned(),
        version: 1,
        expires: expiry("targets-expires", &a.expiry.targets_expires, now)?,
        targets: BTreeMap::new(),
        delegations: None,
        extra: BTreeMap::new(),
    };
    let (_, targets_bytes) =
        sign_envelope(to_value(&targets)?, &as_dyn(&targets_keys), Vec::new())?;

    crate::progress::note(format_args!(
        "pushing root, targets, snapshot and timestamp version 1 of {:?} to {repo_ref}…",
        a.repo.name
    ));
    repo.push("root", &root_bytes, None).await?;
    repo.push("targets", &targets_bytes, None).await?;
    let snap_exp = expiry("snapshot-expires", &a.expiry.snapshot_expires, now)?;
    let ts_exp = expiry("timestamp-expires", &a.expiry.timestamp_expires, now)?;
    let meta = BTreeMap::from([("targets.json".to_owned(), sha256_meta(1, &targets_bytes))]);
    publish_online(
        &repo,
        meta,
        1,
        1,
        snap_exp,
        ts_exp,
        &snapshot_key,
        &timestamp_key,
    )
    .await?;

    let root_digest = Digest::of(&root_bytes);
    if let Some(out) = &a.out_root {
        std::fs::write(out, &root_bytes)
            .config(|| format!("could not write the root to {}", out.display()))?;
    }
    if a.output.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "repository": repo_ref.to_string(),
                "root_of_trust": a.repo.name,
                "root_sha256": root_digest.hex(),
                "root_file": a.out_root.as_ref().map(|p| p.display().to_string()),
            }))?
        );
    } else {
        outln!("created root of trust {:?} in {repo_ref}", a.repo.name);
        outln!("root version 1 sha256: {}", root_digest.hex());
        if let Some(out) = &a.out_root {
            outln!("root written to {} (pin it: ocituf trust add SCOPE --repo {repo_ref} --name {} --root {})", out.display(), a.repo.name, out.display());
        }
    }
    Ok(())
}

/// Sign and push snapshot `snap_version` over `meta`, then timestamp `ts_version` over it.
#[allow(clippy::too_many_arguments)]
async fn publish_online(
    repo: &MetaRepo,
    meta: BTreeMap<String, MetaFile>,
    snap_version: u64,
    ts_version: u64,
    snap_exp: OffsetDateTime,
    ts_exp: OffsetDateTime,
    snapshot_key: &PrivateKey,
    timestamp_key: &PrivateKey,
) -> anyhow::Result<(u64, u64)> {
    let snapshot = Snapshot {
        spec_version: SPEC_VERSION.to_owned(),
        version: snap_version,
        expires: snap_exp,
        meta,
        extra: BTreeMap::new(),
    };
    let (_, snap_bytes) = sign_envelope(to_value(&snapshot)?, &[snapshot_key], Vec::new())?;
    repo.push("snapshot", &snap_bytes, None).await?;
    let timestamp = Timestamp {
        spec_version: SPEC_VERSION.to_owned(),
        version: ts_version,
        expires: ts_exp,
        meta: BTreeMap::from([(
            "snapshot.json".to_owned(),
            sha256_meta(snap_version, &snap_bytes),
        )]),
        extra: BTreeMap::new(),
    };
    let (_, ts_bytes) = sign_envelope(to_value(&timestamp)?, &[timestamp_key], Vec::new())?;
    repo.push("timestamp", &ts_bytes, None).await?;
    Ok((snap_version, ts_version))
}

pub async fn publish(ctx: &Context, a: &PublishArgs) -> anyhow::Result<()> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = MetaRepo::open(&repo_ref, &a.repo.name, &ctx.registry)?;
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    let now = OffsetDateTime::now_utc();
    let snapshot_key = keys::load_private(&a.snapshot_key)?;
    let timestamp_key = keys::load_private(&a.timestamp_key)?;
    crate::progress::note(format_args!(
        "loading the targets roles of {:?} from {repo_ref}…",
        a.repo.name
    ));
    let state = State::load(&repo, pin.as_ref()).await?;
    let snap_auth = Authority::of_top_level(&state.root, "snapshot")?;
    let ts_auth = Authority::of_top_level(&state.root, "timestamp")?;
    check_threshold("snapshot", &[&snapshot_key], &snap_auth)?;
    check_threshold("timestamp", &[&timestamp_key], &ts_auth)?;
    let prev_snap = repo.newest("snapshot", &snap_auth).await?;
    let prev_ts = repo.newest("timestamp", &ts_auth).await?;

    let mut meta = BTreeMap::new();
    for role in &state.order {
        if let Some((Some(f), _)) = state.targets.get(role) {
            meta.insert(format!("{role}.json"), sha256_meta(f.version, &f.bytes));
        }
    }
    // TUF 5.5.5: clients refuse a snapshot that lowers a targets role's version. If the
    // registry hides the newest version of a role, say so rather than publish a rollback.
    if let Some(prev) = &prev_snap {
        let prev = Snapshot::from_signed(&prev.envelope.signed)
            .config(|| "the previous snapshot is malformed".to_owned())?;
        for (name, old) in &prev.meta {
            if let Some(new) = meta.get(name) {
                if new.version < old.version {
                    return Err(fail(
                        ErrorKind::Refused,
                        format!(
                            "{name} is at version {} in the previous snapshot but the newest verified version in {repo_ref} is {}: the registry lost or hides it",
                            old.version, new.version
                        ),
                    ));
                }
            }
        }
    }
    let snap_version = prev_snap.as_ref().map_or(1, |f| f.version + 1);
    let ts_version = prev_ts.as_ref().map_or(1, |f| f.version + 1);
    let roles = meta.len();
    crate::progress::note(format_args!(
        "signing snapshot version {snap_version} over {roles} targets roles and timestamp version {ts_version}…"
    ));
    publish_online(
        &repo,
        meta,
        snap_version,
        ts_version,
        expiry("snapshot-expires", &a.snapshot_expires, now)?,
        expiry("timestamp-expires", &a.timestamp_expires, now)?,
        &snapshot_key,
        &timestamp_key,
    )
    .await?;
    outln!(
        "published snapshot version {snap_version} and timestamp version {ts_version} of {:?} ({roles} targets roles)",
        a.repo.name
    );
    Ok(())
}

/// The metadata repository and root-of-trust name for an image, and the pinned root to
/// check its chain against: explicit `--repo`/`--name` (pin from `--root` or the policy entry
/// for them, see [`crate::pin::resolve`]), or the trust policy entry that covers the image.
pub fn repo_for_image(
    ctx: &Context,
    image: &ImageReference,
    a: &SignArgs,
) -> anyhow::Result<(RepositoryReference, String, Option<Pin>)> {
    if let (Some(r), Some(n)) = (&a.repo, &a.name) {
        let repo = RepositoryReference::parse(r)?;
        let pin = crate::pin::resolve(ctx, &repo, n, &a.pin)?;
        return Ok((repo, n.clone(), pin));
    }
    let policy = TrustPolicy::load(&ctx.policy_file)?;
    let entry = policy.lookup(image).map_err(|e| {
        crate::failure::wrap(
            anyhow::Error::new(e),
            ErrorKind::Config,
            format!("no metadata repository for {image}: pass --repo and --name, or add a trust policy entry"),
        )
    })?;
    let pin = if a.pin.root.is_some() {
        crate::pin::resolve(ctx, &entry.repository, &entry.root_of_trust, &a.pin)?
    } else {
        match Pin::of_entry(entry)? {
            Some(p) => Some(p),
            None => crate::pin::resolve(ctx, &entry.repository, &entry.root_of_trust, &a.pin)?,
        }
    };
    Ok((entry.repository.clone(), entry.root_of_trust.clone(), pin))
}

/// The delegation search of TUF 5.6.7 for `path`, over the writer's verified state: roles in
/// pre-order that are trusted for `path` (terminating delegations stop the search).
pub fn responsible_roles(state: &State, path: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec!["targets".to_owned()];
    while let Some(role) = stack.pop() {
        if out.contains(&role) || out.len() > 1024 {
            continue;
        }
        out.push(role.clone());
        let Some(t) = state.targets_of(&role)? else {
            continue;
        };
        let Some(d) = &t.delegations else { continue };
        let mut children = Vec::new();
        for (name, terminating) in d.roles_for_target(path) {
            children.push(name);
            if terminating {
                break;
            }
        }
        for c in children.into_iter().rev() {
            stack.push(c);
        }
    }
    Ok(out)
}

/// Which role the given keys sign `path` into: `--role`, or the deepest responsible role
/// (last in pre-order) whose authority includes one of the keys: delegations exist to move
/// targets down to team roles and hash bins, so signing stops where delegation stops.
fn pick_role(
    state: &State,
    path: &str,
    explicit: Option<&String>,
    signers: &[PrivateKey],
) -> anyhow::Result<String> {
    let responsible = responsible_roles(state, path)?;
    if let Some(role) = explicit {
        if !responsible.contains(role) {
            return Err(fail(
                ErrorKind::Config,
                format!(
                    "role {role:?} is not trusted for {path} (responsible roles: {})",
                    responsible.join(", ")
                ),
            ));
        }
        return Ok(role.clone());
    }
    let ours = |role: &String| {
        state
            .targets
            .get(role)
            .is_some_and(|(_, auth)| signers.iter().any(|k| auth.keyids.contains(k.key_id())))
    };
    responsible
        .iter()
        .rev()
        .find(|r| ours(r))
        .cloned()
        .ok_or_else(|| {
            fail(
                ErrorKind::Config,
                format!(
                    "none of the given keys ({}) may sign {path}: the roles trusted for it are {} \
                 (wrong key? check `ocituf status` and `ocituf delegate`)",
                    signers
                        .iter()
                        .map(|k| &k.key_id().as_str()[..16])
                        .collect::<Vec<_>>()
                        .join(", "),
                    responsible.join(", ")
                ),
            )
        })
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
    edit: &dyn Fn(&mut Targets) -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    for f in tops {
        let mut copy = Targets::from_signed(&f.envelope.signed)
            .config(|| format!("role {role:?} version {} is malformed", f.version))?;
        if edit(&mut copy)? {
            return Ok(false);
        }
    }
    Ok(!tops.is_empty())
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
) -> anyhow::Result<Vec<(Digest, Option<Found>)>> {
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
) -> anyhow::Result<(Targets, Option<Digest>)> {
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

/// Apply `edit` to the newest version of `role` and push the result. Then read the role
/// back: the edit is done once every verified version at the highest version number holds
/// it. Otherwise (another CI job raced us) rebuild on top of all of them and try again.
async fn update_targets_role(
    repo: &MetaRepo,
    role: &str,
    auth: &Authority,
    signers: &[&dyn Signer],
    expires: OffsetDateTime,
    base: Option<Found>,
    edit: &dyn Fn(&mut Targets) -> anyhow::Result<bool>,
) -> anyhow::Result<u64> {
    check_threshold(role, signers, auth)?;
    let mut base: (Option<Targets>, Option<Digest>) = match &base {
        Some(f) => (
            Some(
                Targets::from_signed(&f.envelope.signed)
                    .config(|| format!("role {role:?} version {} is malformed", f.version))?,
            ),
            Some(f.manifest.clone()),
        ),
        None => (None, None),
    };
    for attempt in 0..MAX_SIGN_ATTEMPTS {
        let mut t = base.0.clone().unwrap_or_else(|| Targets {
            spec_version: SPEC_VERSION.to_owned(),
            version: 0,
            expires,
            targets: BTreeMap::new(),
            delegations: None,
            extra: BTreeMap::new(),
        });
        let changed = edit(&mut t)?;
        if !changed && attempt == 0 {
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
        if all_hold_edit(role, &tops, edit)? {
            // Confirm after a pause: a job that read an older version before ours appeared
            // may still push a sibling, and its merge must not drop our change unseen.
            tokio::time::sleep(SETTLE).await;
            tops = repo.newest_all(role, auth).await?;
            if all_hold_edit(role, &tops, edit)? {
                return Ok(tops.first().map_or(t.version, |f| f.version));
            }
        }
        if attempt + 1 < MAX_SIGN_ATTEMPTS {
            crate::progress::note(format_args!(
                "{}",
                crate::progress::race_message(
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

/// The image's current manifest: (digest, length, media type).
async fn current_manifest(
    registry: &ocituf_oci::RegistryOptions,
    image: &ImageReference,
) -> anyhow::Result<(Digest, u64, String)> {
    let store = ocituf_resolver::store::open_with(&image.repo, registry)?;
    let reference = match (&image.digest, &image.tag) {
        (Some(d), _) => ManifestRef::Digest(d),
        (None, Some(t)) => ManifestRef::Tag(t),
        (None, None) => {
            return Err(fail(
                ErrorKind::Config,
                "the image has neither tag nor digest",
            ))
        }
    };
    let m = store
        .get_manifest(reference, MAX_IMAGE_MANIFEST_LEN)
        .await
        .network(|| format!("could not fetch the manifest of {image}"))?
        .ok_or_else(|| {
            fail(
                ErrorKind::Config,
                format!("{image} does not exist (push it first)"),
            )
        })?;
    let digest = Digest::of(&m.bytes);
    if let Some(d) = &image.digest {
        if *d != digest {
            return Err(fail(
                ErrorKind::Refused,
                format!("the registry returned manifest {digest} for {image}"),
            ));
        }
    }
    Ok((digest, m.bytes.len() as u64, m.media_type))
}

pub async fn sign(ctx: &Context, a: &SignArgs, yank: bool) -> anyhow::Result<()> {
    let image = ImageReference::parse(&a.image)?;
    let Some(tag) = image.tag.clone() else {
        return Err(fail(
            ErrorKind::Config,
            format!("{image} has no tag: sign and yank work on tags (acme/app:1.4); the digest name is signed with it"),
        ));
    };
    let (repo_ref, name, pin) = repo_for_image(ctx, &image, a)?;
    let repo = MetaRepo::open(&repo_ref, &name, &ctx.registry)?;
    let signers = load_signers(&a.keys)?;
    let now = OffsetDateTime::now_utc();
    let expires = expiry("expires", &a.expires, now)?;
    let tag_name = format!("{}:{tag}", image.repo.repository);

    let state = State::load(&repo, pin.as_ref()).await?;
    let role = pick_role(&state, &tag_name, a.role.as_ref(), &signers)?;
    let Some((base, auth)) = state.targets.get(&role).cloned() else {
        return Err(fail(
            ErrorKind::Config,
            format!("role {role:?} is not in {repo_ref}"),
        ));
    };
    let dyn_signers = authorised(&signers, &auth);

    if yank {
        let repo_name = image.repo.repository.clone();
        let edit = move |t: &mut Targets| -> anyhow::Result<bool> {
            let Some(old) = t.targets.remove(&tag_name) else {
                return Ok(false);
            };
            if let Some(h) = old.hashes.get("sha256") {
                let digest_name = format!("{repo_name}@sha256:{h}");
                let still_tagged = t.targets.iter().any(|(k, v)| {
                    k.starts_with(&format!("{repo_name}:")) && v.hashes.get("sha256") == Some(h)
                });
                if !still_tagged {
                    t.targets.remove(&digest_name);
                }
            }
            Ok(true)
        };
        let v =
            update_targets_role(&repo, &role, &auth, &dyn_signers, expires, base, &edit).await?;
        outln!("yanked {image} from role {role:?} (version {v}); run `ocituf publish` to make it visible to clients");
        return Ok(());
    }

    let (digest, length, media_type) = current_manifest(&ctx.registry, &image).await?;
    let mut file = TargetFile {
        length,
        hashes: BTreeMap::from([("sha256".to_owned(), digest.hex().to_owned())]),
        custom: Some(serde_json::json!({"oci": {"mediaType": media_type}})),
        extra: BTreeMap::new(),
    };
    file.extra.clear();
    let digest_name = format!("{}@{digest}", image.repo.repository);
    let digest_too = responsible_roles(&state, &digest_name)?.contains(&role);
    if !digest_too {
        eprintln!(
            "warning: role {role:?} is not trusted for {digest_name}: pulls by digest will not verify \
             (delegate the pattern {}@* too)",
            image.repo.repository
        );
    }
    let edit = move |t: &mut Targets| -> anyhow::Result<bool> {
        let mut changed = false;
        for name in std::iter::once(&tag_name).chain(digest_too.then_some(&digest_name)) {
            if t.targets.get(name) != Some(&file) {
                t.targets.insert(name.clone(), file.clone());
                changed = true;
            }
        }
        Ok(changed)
    };
    let v = update_targets_role(&repo, &role, &auth, &dyn_signers, expires, base, &edit).await?;
    outln!("{}", image.with_digest(digest));
    eprintln!("signed into role {role:?} version {v} of {name:?}; run `ocituf publish` (or let the online signer) to make it visible to clients");
    Ok(())
}

pub async fn delegate(ctx: &Context, a: &DelegateArgs) -> anyhow::Result<()> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = MetaRepo::open(&repo_ref, &a.repo.name, &ctx.registry)?;
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    let now = OffsetDateTime::now_utc();
    let expires = expiry("expires", &a.expires, now)?;
    let signers = load_signers(&a.signing_keys)?;
    let team: Vec<PublicKey> = a
        .keys
        .iter()
        .map(|k| keys::load_public(k))
        .collect::<Result<_, _>>()?;
    if a.threshold == 0 || a.threshold as usize > team.len() {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "--threshold {} must be between 1 and the number of --key options ({})",
                a.threshold,
                team.len()
            ),
        ));
    }
    ocituf_oci::mapping::check_role_name(&a.role)
        .config(|| format!("{:?} cannot be a role name", a.role))?;
    if ocituf_tuf::metadata::TOP_LEVEL_ROLES.contains(&a.role.as_str()) {
        return Err(fail(
            ErrorKind::Config,
            format!("{:?} is a top-level role name; pick a team name", a.role),
        ));
    }
    let state = State::load(&repo, pin.as_ref()).await?;
    let Some((base, auth)) = state.targets.get(&a.from).cloned() else {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "role {:?} does not exist in {repo_ref} (see `ocituf status`)",
                a.from
            ),
        ));
    };
    let mut team_keys = BTreeMap::new();
    let mut keyids = Vec::new();
    for k in &team {
        let id = KeyId::new(keys::key_id(k)?);
        team_keys.insert(id.clone(), k.clone());
        if !keyids.contains(&id) {
            keyids.push(id);
        }
    }
    let paths = if a.paths.is_empty() {
        vec!["*".to_owned()]
    } else {
        a.paths.clone()
    };
    let role_name = a.role.clone();
    let (terminating, threshold) = (a.terminating, a.threshold);
    let edit = {
        let (team_keys, keyids, paths) = (team_keys.clone(), keyids.clone(), paths.clone());
        move |t: &mut Targets| -> anyhow::Result<bool> {
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
    let dyn_signers = authorised(&signers, &auth);
    let v = update_targets_role(&repo, &a.from, &auth, &dyn_signers, expires, base, &edit).await?;
    outln!(
        "delegated {} to role {:?} ({} of {} keys) in {:?} version {v}",
        paths.join(", "),
        a.role,
        a.threshold,
        keyids.len(),
        a.from
    );

    if let Some(bins) = a.hash_bins {
        if !bins.is_power_of_two() || !(2..=65536).contains(&bins) {
            return Err(fail(
                ErrorKind::Config,
                "--hash-bins must be a power of two from 2 to 65536",
            ));
        }
        // The team role delegates to its bins; making that version needs the team's keys.
        let team_signers = load_signers(&a.keys).map_err(|e| {
            crate::failure::wrap(e, ErrorKind::Config, "--hash-bins needs the team's private keys as --key (they sign the role that delegates to the bins)")
        })?;
        let team_auth = Authority {
            keys: team_keys.clone(),
            keyids: keyids.clone(),
            threshold: a.threshold,
        };
        let team_dyn = authorised(&team_signers, &team_auth);
        crate::progress::note(format_args!(
            "delegating role {:?} to {bins} hash bins…",
            a.role
        ));
        let state = State::load(&repo, pin.as_ref()).await?;
        let base = state.targets.get(&a.role).and_then(|(f, _)| f.clone());
        let bit_length = bins.trailing_zeros();
        let prefix = a.role.clone();
        let edit = move |t: &mut Targets| -> anyhow::Result<bool> {
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
        let v = update_targets_role(&repo, &a.role, &team_auth, &team_dyn, expires, base, &edit)
            .await?;
        outln!(
            "role {:?} version {v} delegates to {bins} hash bins {}-…",
            a.role,
            a.role
        );
    }
    Ok(())
}
