//! Creating a root of trust: root version 1 (signed by a threshold of root keys), an empty
//! top-level targets role, and the first snapshot and timestamp.

use std::collections::BTreeMap;

use ocituf_tuf::crypto::{KeyId, PublicKey, Signer};

use crate::keys::SigningKey;
use ocituf_tuf::metadata::{Role as _, RoleKeys, Root, Targets, SPEC_VERSION};
use time::OffsetDateTime;

use crate::authority::sign_envelope;
use crate::edit::{as_dyn, to_value};
use crate::error::{fail, Result, ResultExt as _};
use crate::online::{push_online, sha256_meta, OnlineKeys};
use crate::repo::MetaRepo;
use crate::ErrorKind;

/// Everything a new root of trust needs.
pub struct InitRequest<'a> {
    pub root_keys: &'a [SigningKey],
    pub root_threshold: u32,
    pub targets_keys: &'a [SigningKey],
    pub targets_threshold: u32,
    pub root_expires: OffsetDateTime,
    pub targets_expires: OffsetDateTime,
    pub online: OnlineKeys<'a>,
    /// Write snapshots with a Merkle tree (TAP 16, docs/oci-mapping.md §11) instead of
    /// listing every role: for roots of trust with many hash bins.
    pub snapshot_merkle: bool,
}

/// Create the root of trust `repo.name` in `repo`; returns the bytes of root version 1 (the
/// file clients pin).
///
/// # Errors
/// A configuration error for thresholds the keys cannot meet, or when the root of trust
/// already exists; registry failures.
pub async fn init(repo: &MetaRepo, r: &InitRequest<'_>) -> Result<Vec<u8>> {
    if r.root_threshold == 0 || r.targets_threshold == 0 {
        return Err(fail(ErrorKind::Config, "thresholds must be at least 1"));
    }
    if (r.root_keys.len() as u64) < u64::from(r.root_threshold) {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "--root-threshold {} needs at least that many --root-key options (got {})",
                r.root_threshold,
                r.root_keys.len()
            ),
        ));
    }
    if (r.targets_keys.len() as u64) < u64::from(r.targets_threshold) {
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
                repo.name.as_str(),
                repo.location
            ),
        ));
    }

    let mut all_keys: BTreeMap<KeyId, PublicKey> = BTreeMap::new();
    let mut ids = |ks: &[&dyn Signer]| -> Vec<KeyId> {
        let mut v: Vec<KeyId> = Vec::new();
        for k in ks {
            all_keys.insert(k.key_id().clone(), k.public_key().clone());
            if !v.contains(k.key_id()) {
                v.push(k.key_id().clone());
            }
        }
        v
    };
    let root_ids = ids(&r.root_keys.iter().map(AsRef::as_ref).collect::<Vec<_>>());
    let targets_ids = ids(&r.targets_keys.iter().map(AsRef::as_ref).collect::<Vec<_>>());
    let snapshot_ids = ids(&[r.online.snapshot]);
    let timestamp_ids = ids(&[r.online.timestamp]);
    if root_ids.len() < r.root_threshold as usize {
        return Err(fail(ErrorKind::Config, "the same root key was given twice"));
    }
    let root = Root {
        spec_version: SPEC_VERSION.to_owned(),
        version: 1,
        expires: r.root_expires,
        consistent_snapshot: Some(true),
        keys: all_keys,
        roles: BTreeMap::from([
            ("root".to_owned(), RoleKeys::new(root_ids, r.root_threshold)),
            (
                "targets".to_owned(),
                RoleKeys::new(targets_ids, r.targets_threshold),
            ),
            ("snapshot".to_owned(), RoleKeys::new(snapshot_ids, 1)),
            ("timestamp".to_owned(), RoleKeys::new(timestamp_ids, 1)),
        ]),
        extra: if r.snapshot_merkle {
            BTreeMap::from([(ocituf_tuf::merkle::ROOT_OPTION.to_owned(), "merkle".into())])
        } else {
            BTreeMap::new()
        },
    };
    root.validate()
        .config(|| "the new root is not valid".to_owned())?;
    let (_, root_bytes) = sign_envelope(to_value(&root)?, &as_dyn(r.root_keys), Vec::new())?;

    let targets = Targets {
        spec_version: SPEC_VERSION.to_owned(),
        version: 1,
        expires: r.targets_expires,
        targets: BTreeMap::new(),
        delegations: None,
        extra: BTreeMap::new(),
    };
    let (_, targets_bytes) =
        sign_envelope(to_value(&targets)?, &as_dyn(r.targets_keys), Vec::new())?;

    repo.progress().note(format_args!(
        "pushing root, targets, snapshot and timestamp version 1 of {:?} to {}…",
        repo.name.as_str(),
        repo.location
    ));
    repo.push("root", &root_bytes, None).await?;
    repo.push("targets", &targets_bytes, None).await?;
    let mut meta = BTreeMap::from([("targets.json".to_owned(), sha256_meta(1, &targets_bytes))]);
    let mut extra = BTreeMap::new();
    if r.snapshot_merkle {
        let moved = crate::online::into_merkle_tree(repo, &mut meta, None).await?;
        extra.insert(ocituf_tuf::merkle::FIELD.to_owned(), moved.root);
    }
    push_online(repo, meta, extra, 1, 1, &r.online).await?;
    Ok(root_bytes)
}
