//! Signing and yanking images: every target name goes into the role that the TUF delegation
//! search (5.6.7) reaches for *that* name, so a client that looks the name up finds it.
//!
//! One image has several names: `acme/app:1.4` (the tag) and `acme/app@sha256:…` (how
//! runtimes pull after resolving a tag). With succinct hash bins the two names hash to
//! different bins, so one `sign` may write two roles; each is written with the concurrency
//! protocol of [`crate::edit`]. A write to a role also drops names that the search never
//! reaches in it (stray names, which clients ignore anyway: see
//! [`State::stray_targets`]).
//!
//! A write needs only the roles the delegation search visits for its names:
//! [`State::load_for`] with [`target_names`] reads those (with hash bins, the bins the names
//! hash to), so signing costs the same whatever the number of bins and images. A state from
//! [`State::load`] works too. [`yank_image`] of a signed image needs the full one.

use std::collections::BTreeMap;

use crate::keys::SigningKey;
use ocituf_oci::image::{digest_target, tag_target};
use ocituf_oci::{ArtifactStore as _, Digest, ManifestRef};
use ocituf_resolver::{AnyStore, ImageReference};
use ocituf_tuf::metadata::{TargetFile, Targets};
use time::OffsetDateTime;

use crate::edit::{authorised, update_targets_role};
use crate::error::{fail, Result, ResultExt as _};
use crate::repo::MetaRepo;
use crate::state::State;
use crate::ErrorKind;

/// Largest image manifest read (the distribution registry's own cap).
const MAX_IMAGE_MANIFEST_LEN: u64 = 4 * 1024 * 1024;

/// An image manifest as a target: its digest, length and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    pub digest: Digest,
    pub length: u64,
    pub media_type: String,
}

impl ImageManifest {
    /// The target file entry for this manifest (docs/oci-mapping.md §7).
    pub fn target_file(&self) -> TargetFile {
        TargetFile {
            length: self.length,
            hashes: BTreeMap::from([("sha256".to_owned(), self.digest.hex().to_owned())]),
            custom: Some(ocituf_oci::image::target_custom(&self.media_type)),
            extra: BTreeMap::new(),
        }
    }
}

/// The manifest `image` names in `store`, by digest when it has one, else by tag; a digest
/// in the reference must match the bytes received.
///
/// # Errors
/// A configuration error when the image does not exist, a refusal when the registry returns
/// other bytes than the digest asked for; registry failures.
pub async fn image_manifest(store: &AnyStore, image: &ImageReference) -> Result<ImageManifest> {
    let reference = match (&image.digest, &image.tag) {
        (Some(d), _) => ManifestRef::Digest(d),
        (None, Some(t)) => ManifestRef::Tag(t),
        (None, None) => {
            return Err(fail(
                ErrorKind::Config,
                format!("{image} has neither tag nor digest"),
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
    Ok(ImageManifest {
        digest,
        length: m.bytes.len() as u64,
        media_type: m.media_type,
    })
}

/// Who signs and until when.
pub struct Signing<'a> {
    pub keys: &'a [SigningKey],
    /// `--role`: the role the tag name must go into (it must be trusted for it).
    pub role: Option<&'a str>,
    pub expires: OffsetDateTime,
}

/// One change to one target name: add or replace (`Some`), or remove (`None`).
pub type Change = (String, Option<TargetFile>);

/// A new version of one role that a write pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleWrite {
    pub role: String,
    pub version: u64,
    /// The target names this write was for.
    pub names: Vec<String>,
    /// With fewer signing keys than the role's threshold: the version waits as pending
    /// (`ocituf cosign`), with this content digest and signature count.
    pub pending: Option<(String, u32, u32)>,
}

/// What [`sign_image`], [`yank_image`] and [`apply_changes`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// One entry per role written, in the order written.
    pub roles: Vec<RoleWrite>,
    /// Names left out, and why (no delegation reaches them, or the keys cannot sign there).
    pub warnings: Vec<String>,
}

/// Sign `repository:tag` and `repository@digest` for `manifest`.
///
/// # Errors
/// As [`apply_changes`]: the tag name must be signable with the keys given.
pub async fn sign_image(
    repo: &MetaRepo,
    state: &State,
    repository: &str,
    tag: &str,
    manifest: &ImageManifest,
    who: &Signing<'_>,
) -> Result<Written> {
    let file = manifest.target_file();
    let changes = vec![
        (tag_target(repository, tag), Some(file.clone())),
        (digest_target(repository, &manifest.digest), Some(file)),
    ];
    apply_changes(repo, state, &changes, who).await
}

/// One image of a batch: `repository:tag` naming `manifest`.
#[derive(Debug, Clone)]
pub struct ImageToSign {
    pub repository: String,
    pub tag: String,
    pub manifest: ImageManifest,
}

/// The target names a write of `images` changes (both names of each): what
/// [`State::load_for`] needs before [`sign_images`].
pub fn target_names(images: &[ImageToSign]) -> Vec<String> {
    images
        .iter()
        .flat_map(|i| {
            [
                tag_target(&i.repository, &i.tag),
                digest_target(&i.repository, &i.manifest.digest),
            ]
        })
        .collect()
}

/// Sign many images in one write: both names of each, and ONE new version per role touched
/// (not one per image), so a batch of N images into one role costs one version.
///
/// # Errors
/// As [`apply_changes`]: every tag name must be signable with the keys given (digest names
/// that cannot be are left out with a warning).
pub async fn sign_images(
    repo: &MetaRepo,
    state: &State,
    images: &[ImageToSign],
    who: &Signing<'_>,
) -> Result<Written> {
    let mut changes = Vec::with_capacity(images.len() * 2);
    let mut primary = Vec::with_capacity(images.len() * 2);
    for i in images {
        let file = i.manifest.target_file();
        changes.push((tag_target(&i.repository, &i.tag), Some(file.clone())));
        primary.push(true);
        changes.push((digest_target(&i.repository, &i.manifest.digest), Some(file)));
        primary.push(false);
    }
    apply_changes_strict(repo, state, &changes, &primary, who).await
}

/// Remove `repository:tag`, and `repository@digest` of the manifest it named unless another
/// tag of the repository still names that manifest. A tag that is not signed changes nothing.
///
/// # Errors
/// As [`apply_changes`].
pub async fn yank_image(
    repo: &MetaRepo,
    state: &State,
    repository: &str,
    tag: &str,
    who: &Signing<'_>,
) -> Result<Written> {
    let name = tag_target(repository, tag);
    let mut changes: Vec<Change> = vec![(name.clone(), None)];
    if let Some(sha) = signed_sha256(state, &name) {
        // Whether another tag of the repository still names the manifest needs every role
        // that may list a tag of it: with hash bins, every bin (tags hash anywhere). A
        // partial state would answer "no" wrongly and drop the digest name that pulls of
        // the other tag use (runtimes pull by digest after resolving a tag), so a yank of a
        // signed image needs the complete state. Yanks are rare; signing stays bounded.
        if !state.is_complete() {
            return Err(fail(
                ErrorKind::Config,
                format!(
                    "yanking {name} needs every targets role (another tag may name the same \
                     manifest): load the state with State::load, not State::load_for"
                ),
            ));
        }
        let prefix = format!("{repository}:");
        let still_tagged = every_trusted_target(state).any(|(n, f)| {
            *n != name && n.starts_with(&prefix) && f.hashes.get("sha256") == Some(&sha)
        });
        if !still_tagged {
            if let Ok(d) = Digest::parse(&format!("sha256:{sha}")) {
                changes.push((digest_target(repository, &d), None));
            }
        }
    }
    apply_changes(repo, state, &changes, who).await
}

/// The sha256 a name is signed with, from the first role in search order that lists it.
fn signed_sha256(state: &State, name: &str) -> Option<String> {
    state.responsible_roles(name).iter().find_map(|role| {
        state
            .targets_of(role)
            .and_then(|t| t.targets.get(name))
            .and_then(|f| f.hashes.get("sha256").cloned())
    })
}

/// Every (name, file) that a client could verify: listed in a role the search reaches for it.
fn every_trusted_target(state: &State) -> impl Iterator<Item = (&String, &TargetFile)> {
    state.order.iter().flat_map(move |role| {
        state
            .targets_of(role)
            .into_iter()
            .flat_map(|t| t.targets.iter())
            .filter(move |(n, _)| state.trusted_for(role, n))
    })
}

/// Apply `changes` (the first is the primary name: with `who.role` it must go into that
/// role): each name goes into the deepest role the delegation search reaches for it whose
/// keys are among `who.keys`. One new version per role touched.
///
/// # Errors
/// A configuration error when the primary name cannot be signed with the keys given (the
/// other names are then left out with a warning instead); registry failures and races
/// that never settle.
pub async fn apply_changes(
    repo: &MetaRepo,
    state: &State,
    changes: &[Change],
    who: &Signing<'_>,
) -> Result<Written> {
    let primary: Vec<bool> = (0..changes.len()).map(|i| i == 0).collect();
    apply_changes_strict(repo, state, changes, &primary, who).await
}

/// [`apply_changes`] where `primary[i]` says whether name `i` must be signable (else it is
/// left out with a warning).
async fn apply_changes_strict(
    repo: &MetaRepo,
    state: &State,
    changes: &[Change],
    primary: &[bool],
    who: &Signing<'_>,
) -> Result<Written> {
    let mut by_role: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut warnings = Vec::new();
    for (i, (name, file)) in changes.iter().enumerate() {
        if !state.covers(name) {
            return Err(fail(
                ErrorKind::Config,
                format!(
                    "the state was not loaded for {name}: load it with State::load_for(names) \
                     or State::load before signing"
                ),
            ));
        }
        let strict = primary.get(i).copied().unwrap_or(false);
        let role = match pick_role(state, name, who.role, strict, who.keys) {
            Ok(r) => r,
            Err(e) if !strict => {
                warnings.push(format!("{name} is left out: {}", e.message));
                continue;
            }
            Err(e) => return Err(e),
        };
        if !order.contains(&role) {
            order.push(role.clone());
        }
        by_role
            .entry(role)
            .or_default()
            .push((name.clone(), file.clone()));
    }
    let mut written = Written {
        roles: Vec::new(),
        warnings,
    };
    for role in order {
        let Some(mine) = by_role.remove(&role) else {
            continue;
        };
        let Some((base, auth)) = state.targets.get(&role).cloned() else {
            return Err(fail(
                ErrorKind::Config,
                format!("role {role:?} is not in {}", repo.location),
            ));
        };
        let signers = authorised(who.keys, &auth);
        let edit = |t: &mut Targets| -> Result<bool> {
            let mut edited = false;
            for (name, file) in &mine {
                match file {
                    Some(f) if t.targets.get(name) != Some(f) => {
                        t.targets.insert(name.clone(), f.clone());
                        edited = true;
                    }
                    None if t.targets.remove(name).is_some() => edited = true,
                    _ => {}
                }
            }
            // Names the search never reaches in this role are dead weight that clients
            // ignore: drop them with this write. Alone they are no reason to write (and
            // a racing writer that adds them cannot keep this edit from settling).
            // Only names the read roles prove stray are dropped: a partial state
            // (State::load_for) cannot tell for names whose search needs roles it did not
            // read, and those stay.
            t.targets
                .retain(|n, _| state.reaches(&role, n) != Some(false));
            Ok(edited)
        };
        let mine_ids: std::collections::BTreeSet<_> = signers.iter().map(|s| s.key_id()).collect();
        let (version, pending) =
            if !mine_ids.is_empty() && (mine_ids.len() as u64) < u64::from(auth.threshold) {
                // Too few keys for the threshold: the version waits for other maintainers.
                match crate::cosign::propose(
                    repo,
                    &role,
                    &auth,
                    &signers,
                    who.expires,
                    base.as_ref(),
                    &edit,
                )
                .await?
                {
                    crate::cosign::Outcome::Pending {
                        version,
                        content,
                        signatures,
                        threshold,
                    } => (version, Some((content, signatures, threshold))),
                    crate::cosign::Outcome::Published { version, .. } => (version, None),
                }
            } else {
                let v = update_targets_role(repo, &role, &auth, &signers, who.expires, base, &edit)
                    .await?;
                (v, None)
            };
        written.roles.push(RoleWrite {
            role,
            version,
            names: mine.into_iter().map(|(n, _)| n).collect(),
            pending,
        });
    }
    Ok(written)
}

/// Which role the given keys sign `path` into: `preferred` when the search reaches it for
/// `path` (with `strict`, it must), else the deepest reached role (last in pre-order) whose
/// authority includes one of the keys: delegations exist to move targets down to team roles
/// and hash bins, so signing stops where delegation stops.
fn pick_role(
    state: &State,
    path: &str,
    preferred: Option<&str>,
    strict: bool,
    keys: &[SigningKey],
) -> Result<String> {
    let responsible = state.responsible_roles(path);
    if let Some(role) = preferred {
        if responsible.iter().any(|r| r == role) {
            return Ok(role.to_owned());
        }
    }
    let ours = |role: &String| {
        state
            .targets
            .get(role)
            .is_some_and(|(_, auth)| keys.iter().any(|k| auth.keyids.contains(k.key_id())))
    };
    match preferred {
        Some(_) if strict => {}
        _ => {
            if let Some(r) = responsible.iter().rev().find(|r| ours(r)) {
                return Ok(r.clone());
            }
        }
    }
    if let (Some(role), true) = (preferred, strict) {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "role {role:?} is not trusted for {path} (responsible roles: {})",
                responsible.join(", ")
            ),
        ));
    }
    // Only the top-level role is reached: no delegation covers the name at all.
    let hint = if responsible.len() <= 1 {
        "no delegation reaches it; delegate a pattern that matches it with `ocituf delegate --path`, or sign with the targets key"
    } else {
        "wrong key? check `ocituf status` and `ocituf delegate`"
    };
    Err(fail(
        ErrorKind::Config,
        format!(
            "none of the given keys ({}) may sign {path}: the roles trusted for it are {} ({hint})",
            keys.iter()
                .map(|k| &k.key_id().as_str()[..k.key_id().as_str().len().min(16)])
                .collect::<Vec<_>>()
                .join(", "),
            responsible.join(", ")
        ),
    ))
}
