//! A static web view of one root of trust (`ocituf site`), built only from verified metadata.
//!
//! [`collect`] reads the same verified state `ocituf status` reads ([`State`]: the root chain
//! from the pinned root, then the newest version of every targets role whose signatures meet
//! its delegator's threshold) and turns it into a [`SiteModel`]; [`render`] writes that model
//! as self-contained HTML (inline CSS and JS, no external assets) with an embedded JSON search
//! index. Nothing the registry serves unverified is shown as trusted: pending roots are shown
//! as pending with the signatures that verify over them, and the "verified now" column is the
//! registry's current answer for a tag compared with the signed digest (a tag moved in the
//! registry shows as NOT signed).

mod render;

use std::collections::BTreeMap;

use ocituf_oci::{ArtifactStore as _, ManifestRef};
use ocituf_resolver::{Location, RepositoryReference};
use ocituf_tuf::metadata::{Role as _, Root, Snapshot, Targets, Timestamp};
use time::OffsetDateTime;

use crate::authority::{valid_signatures, Authority};
use crate::error::Result;
use crate::pin::Pin;
use crate::repo::{Found, MetaRepo};
use crate::state::State;

pub use render::{escape_html, index_json, json_for_script, render};

/// How many older versions of each targets role the history follows back (parent links).
pub const MAX_HISTORY: usize = 64;

/// Whether a role's newest version is fine, expires soon, or has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Ok,
    /// Expires within the warning window.
    Soon,
    Expired,
}

impl Expiry {
    pub fn of(expires: OffsetDateTime, now: OffsetDateTime, warn: time::Duration) -> Self {
        if expires <= now {
            Expiry::Expired
        } else if expires - now <= warn {
            Expiry::Soon
        } else {
            Expiry::Ok
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Expiry::Ok => "ok",
            Expiry::Soon => "expiring",
            Expiry::Expired => "expired",
        }
    }
}

/// One role of the root of trust, as its newest verified version says.
#[derive(Debug, Clone)]
pub struct RoleView {
    pub name: String,
    /// The role that delegates it (`root` for the top-level roles).
    pub delegator: String,
    pub version: Option<u64>,
    pub expires: Option<OffsetDateTime>,
    pub expiry: Option<Expiry>,
    pub threshold: u32,
    pub keyids: Vec<String>,
    /// Target-name patterns of a delegated role (`None`: top-level or hash bins).
    pub paths: Option<Vec<String>>,
    pub targets: usize,
}

/// One key, and the roles it signs for.
#[derive(Debug, Clone)]
pub struct KeyView {
    pub keyid: String,
    pub keytype: String,
    pub scheme: String,
    pub roles: Vec<String>,
}

/// A root version that waits for signatures.
#[derive(Debug, Clone)]
pub struct PendingView {
    pub version: u64,
    pub content: String,
    pub signed_by_old: u32,
    pub old_threshold: u32,
    pub signed_by_new: u32,
    pub new_threshold: u32,
}

/// What the registry answers now for a signed tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NowState {
    /// The tag points at the signed digest.
    Signed,
    /// The tag points at another digest: NOT signed.
    Moved(String),
    /// The registry has no such tag.
    Missing,
    /// A pull by digest (no tag to check) or not checked.
    NotATag,
    /// The registry could not be asked (the reason).
    Unknown(String),
}

impl NowState {
    pub fn label(&self) -> &'static str {
        match self {
            NowState::Signed => "signed",
            NowState::Moved(_) => "NOT signed (tag moved)",
            NowState::Missing => "NOT signed (tag missing)",
            NowState::NotATag => "pinned by digest",
            NowState::Unknown(_) => "unknown",
        }
    }
}

/// One signed image target.
#[derive(Debug, Clone)]
pub struct ImageView {
    pub name: String,
    pub digest: String,
    pub media_type: Option<String>,
    pub role: String,
    pub now: NowState,
}

/// One verified version of a role.
#[derive(Debug, Clone)]
pub struct HistoryView {
    pub role: String,
    pub version: u64,
    pub expires: Option<OffsetDateTime>,
    pub manifest: String,
}

/// Everything the site shows.
#[derive(Debug, Clone)]
pub struct SiteModel {
    pub repository: String,
    pub name: String,
    pub generated: OffsetDateTime,
    pub warn_within: time::Duration,
    pub roles: Vec<RoleView>,
    pub keys: Vec<KeyView>,
    pub pending: Vec<PendingView>,
    /// Targets role versions waiting for their maintainers' signatures.
    pub pending_targets: Vec<crate::cosign::PendingTargets>,
    pub images: Vec<ImageView>,
    pub history: Vec<HistoryView>,
}

/// Options of [`collect`].
pub struct CollectOptions<'a> {
    pub pin: Option<&'a Pin>,
    pub now: OffsetDateTime,
    pub warn_within: time::Duration,
    /// Where the images live (the registry, or the layout directory); the metadata
    /// repository's location when `None`.
    pub images: Option<Location>,
    pub registry: ocituf_oci::RegistryOptions,
}

/// Collect the verified model of `repo_ref`'s root of trust `repo.name`.
///
/// # Errors
/// What [`State::load`] refuses (a root chain that does not start at the pin, a network
/// failure), and malformed verified metadata.
pub async fn collect(
    repo: &MetaRepo,
    repo_ref: &RepositoryReference,
    opts: &CollectOptions<'_>,
) -> Result<SiteModel> {
    let (_, root_history) = repo.root_chain_history(opts.pin).await?;
    let state = State::load(repo, opts.pin).await?;
    let root: &Root = &state.root;
    let now = opts.now;
    let ts = repo
        .newest("timestamp", &Authority::of_top_level(root, "timestamp")?)
        .await?;
    let snap = repo
        .newest("snapshot", &Authority::of_top_level(root, "snapshot")?)
        .await?;
    let timestamp = ts
        .as_ref()
        .and_then(|f| Timestamp::from_signed(&f.envelope.signed).ok());
    let snapshot = snap
        .as_ref()
        .and_then(|f| Snapshot::from_signed(&f.envelope.signed).ok());

    let (roles, keys) = role_views(&state, timestamp.as_ref(), snapshot.as_ref(), opts)?;

    let mut pending = Vec::new();
    let old = Authority::of_top_level(root, "root")?;
    for (version, env) in repo.pending_roots(root.version).await? {
        let Ok(new_root) = Root::from_signed(&env.signed) else {
            continue;
        };
        let Ok(new) = Authority::of_top_level(&new_root, "root") else {
            continue;
        };
        pending.push(PendingView {
            version,
            content: crate::root::content_digest(&env)?,
            signed_by_old: valid_signatures(&env, &old.keys, &old.keyids),
            old_threshold: old.threshold,
            signed_by_new: valid_signatures(&env, &new.keys, &new.keyids),
            new_threshold: new.threshold,
        });
    }

    let pending_targets = crate::cosign::pending_versions(repo, &state).await?;
    let images = signed_images(&state, repo_ref, opts).await;
    let history = history(repo, &state, &root_history, ts.as_ref(), snap.as_ref()).await?;

    Ok(SiteModel {
        repository: repo_ref.to_string(),
        name: repo.name.as_str().to_owned(),
        generated: now,
        warn_within: opts.warn_within,
        roles,
        keys,
        pending,
        pending_targets,
        images,
        history,
    })
}

/// The roles (top-level first, then delegated roles in delegation order) and their keys.
fn role_views(
    state: &State,
    timestamp: Option<&Timestamp>,
    snapshot: Option<&Snapshot>,
    opts: &CollectOptions<'_>,
) -> Result<(Vec<RoleView>, Vec<KeyView>)> {
    let root = &state.root;
    let now = opts.now;
    let warn_for = |role: &str| {
        if matches!(role, "timestamp" | "snapshot") {
            // Online roles are short-lived by design: warn only when re-signing is late.
            opts.warn_within.min(time::Duration::hours(6))
        } else {
            opts.warn_within
        }
    };

    let mut roles = Vec::new();
    let mut key_roles: BTreeMap<String, (String, String, Vec<String>)> = BTreeMap::new();
    let mut note_keys = |role: &str, auth: &Authority| {
        for id in &auth.keyids {
            if let Some(k) = auth.keys.get(id) {
                let e = key_roles
                    .entry(id.as_str().to_owned())
                    .or_insert_with(|| (k.keytype.clone(), k.scheme.clone(), Vec::new()));
                if !e.2.iter().any(|r| r == role) {
                    e.2.push(role.to_owned());
                }
            }
        }
    };
    for name in ["root", "timestamp", "snapshot", "targets"] {
        let auth = Authority::of_top_level(root, name)?;
        note_keys(name, &auth);
        let (version, expires) = match name {
            "root" => (Some(root.version), Some(root.expires)),
            "timestamp" => (timestamp.map(|t| t.version), timestamp.map(|t| t.expires)),
            "snapshot" => (snapshot.map(|t| t.version), snapshot.map(|t| t.expires)),
            _ => match state.targets_of("targets") {
                Some(t) => (Some(t.version), Some(t.expires)),
                None => (None, None),
            },
        };
        roles.push(RoleView {
            name: name.to_owned(),
            delegator: "root".to_owned(),
            version,
            expires,
            expiry: expires.map(|e| Expiry::of(e, now, warn_for(name))),
            threshold: auth.threshold,
            keyids: auth.keyids.iter().map(|k| k.as_str().to_owned()).collect(),
            paths: None,
            targets: state.targets_of(name).map_or(0, |t| t.targets.len()),
        });
    }

    // Delegated roles: who delegates each, and with which paths.
    let mut delegator: BTreeMap<String, (String, Option<Vec<String>>)> = BTreeMap::new();
    for name in &state.order {
        if let Some(d) = state.targets_of(name).and_then(|t| t.delegations.as_ref()) {
            for r in d.roles.iter().flatten() {
                delegator
                    .entry(r.name.clone())
                    .or_insert_with(|| (name.clone(), r.paths.clone()));
            }
        }
    }
    for name in state.order.iter().filter(|n| *n != "targets") {
        let Some((_, auth)) = state.targets.get(name) else {
            continue;
        };
        note_keys(name, auth);
        let t: Option<&Targets> = state.targets_of(name);
        let (by, paths) = delegator
            .get(name)
            .cloned()
            .unwrap_or_else(|| ("targets".to_owned(), None));
        roles.push(RoleView {
            name: name.clone(),
            delegator: by,
            version: t.map(|t| t.version),
            expires: t.map(|t| t.expires),
            expiry: t.map(|t| Expiry::of(t.expires, now, opts.warn_within)),
            threshold: auth.threshold,
            keyids: auth.keyids.iter().map(|k| k.as_str().to_owned()).collect(),
            paths,
            targets: t.map_or(0, |t| t.targets.len()),
        });
    }
    let keys = key_roles
        .into_iter()
        .map(|(keyid, (keytype, scheme, roles))| KeyView {
            keyid,
            keytype,
            scheme,
            roles,
        })
        .collect();

    Ok((roles, keys))
}

/// Write the site of `model` into `dir` (created when missing): `index.html` and
/// `index.json` (the search index, for other tools). Returns the files written.
///
/// # Errors
/// A configuration error naming the file that could not be written.
pub fn write(dir: &std::path::Path, model: &SiteModel) -> Result<Vec<std::path::PathBuf>> {
    use crate::error::ResultExt as _;
    std::fs::create_dir_all(dir)
        .config(|| format!("could not create the site directory {}", dir.display()))?;
    let html = dir.join("index.html");
    let json = dir.join("index.json");
    std::fs::write(&html, render(model))
        .config(|| format!("could not write {}", html.display()))?;
    std::fs::write(&json, render::index_json(model))
        .config(|| format!("could not write {}", json.display()))?;
    Ok(vec![html, json])
}

/// Every target a client can verify (the delegation search reaches it in the role that lists
/// it), with the registry's current answer for its tag.
async fn signed_images(
    state: &State,
    repo_ref: &RepositoryReference,
    opts: &CollectOptions<'_>,
) -> Vec<ImageView> {
    let location = opts
        .images
        .clone()
        .unwrap_or_else(|| repo_ref.location.clone());
    let mut out = Vec::new();
    for role in &state.order {
        let Some(t) = state.targets_of(role) else {
            continue;
        };
        for (name, file) in &t.targets {
            if !state.trusted_for(role, name) {
                continue;
            }
            let Some(sha) = file.hashes.get("sha256") else {
                continue;
            };
            let digest = format!("sha256:{sha}");
            let now = current(&location, name, &digest, &opts.registry).await;
            out.push(ImageView {
                name: name.clone(),
                digest,
                media_type: ocituf_oci::image::custom_media_type(file.custom.as_ref())
                    .map(str::to_owned),
                role: role.clone(),
                now,
            });
        }
    }
    out
}

/// What the registry at `location` answers now for target `name` (`repo:tag`).
async fn current(
    location: &Location,
    name: &str,
    signed: &str,
    registry: &ocituf_oci::RegistryOptions,
) -> NowState {
    if name.contains('@') {
        return NowState::NotATag;
    }
    let Some((repository, tag)) = name.rsplit_once(':') else {
        return NowState::NotATag;
    };
    if repository.contains('/') && tag.contains('/') {
        return NowState::NotATag;
    }
    let r = RepositoryReference {
        location: location.clone(),
        repository: repository.to_owned(),
    };
    let store = match ocituf_resolver::store::open_with(&r, registry) {
        Ok(s) => s,
        Err(e) => return NowState::Unknown(e.to_string()),
    };
    // The digest of the bytes the registry serves for the tag (computed here, not the
    // digest header it sends): what a client pulling the tag would get.
    match store
        .get_manifest(ManifestRef::Tag(tag), ocituf_oci::mapping::MAX_MANIFEST_LEN)
        .await
    {
        Ok(Some(m)) => {
            let served = ocituf_oci::Digest::of(&m.bytes);
            if served.as_str() == signed {
                NowState::Signed
            } else {
                NowState::Moved(served.as_str().to_owned())
            }
        }
        Ok(None) => NowState::Missing,
        Err(e) => NowState::Unknown(e.to_string()),
    }
}

/// The verified versions of every role: the root chain, the newest timestamp and snapshot,
/// and each targets role back through its parent links while the versions still verify
/// with the role's current keys.
async fn history(
    repo: &MetaRepo,
    state: &State,
    root_history: &[Found],
    ts: Option<&Found>,
    snap: Option<&Found>,
) -> Result<Vec<HistoryView>> {
    let expires_of = |f: &Found| {
        f.envelope
            .signed
            .get("expires")
            .and_then(|v| v.as_str())
            .and_then(|s| ocituf_tuf::metadata::expires_format::parse(s).ok())
    };
    let view = |role: &str, f: &Found| HistoryView {
        role: role.to_owned(),
        version: f.version,
        expires: expires_of(f),
        manifest: f.manifest.as_str().to_owned(),
    };
    let mut out: Vec<HistoryView> = root_history.iter().rev().map(|f| view("root", f)).collect();
    out.extend(ts.map(|f| view("timestamp", f)));
    out.extend(snap.map(|f| view("snapshot", f)));
    for role in &state.order {
        let Some((Some(found), auth)) = state.targets.get(role) else {
            continue;
        };
        out.push(view(role, found));
        let mut version = found.version;
        let mut parent = found.parent.clone();
        for _ in 0..MAX_HISTORY {
            let Some(p) = parent.take() else { break };
            let Some(f) = repo.verified_at(role, &p, auth).await? else {
                break;
            };
            if f.version >= version {
                break;
            }
            version = f.version;
            out.push(view(role, &f));
            parent.clone_from(&f.parent);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_flagged_before_it_comes_and_after() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1000);
        let week = time::Duration::days(7);
        assert_eq!(
            Expiry::of(now + time::Duration::days(30), now, week),
            Expiry::Ok
        );
        assert_eq!(
            Expiry::of(now + time::Duration::days(3), now, week),
            Expiry::Soon
        );
        assert_eq!(Expiry::of(now, now, week), Expiry::Expired);
        assert_eq!(
            Expiry::of(now - time::Duration::hours(1), now, week),
            Expiry::Expired
        );
    }
}
