//! The online roles: sign a snapshot over the newest verified version of every targets role,
//! and a timestamp over that snapshot, and push both. Whoever holds the snapshot and
//! timestamp keys (`ocituf publish`, the online signer) calls this; it signs no image.

use std::collections::BTreeMap;

use ocituf_oci::Digest;
use ocituf_tuf::crypto::Signer;
use ocituf_tuf::metadata::{MetaFile, Role, Snapshot, Timestamp, SPEC_VERSION};
use time::OffsetDateTime;

use crate::authority::{sign_envelope, Authority};
use crate::edit::{check_threshold, to_value};
use crate::error::{fail, Result, ResultExt as _};
use crate::pin::Pin;
use crate::repo::MetaRepo;
use crate::state::State;
use crate::ErrorKind;

/// The snapshot's entry for one metadata file: version, length and sha256 of its bytes.
pub fn sha256_meta(version: u64, bytes: &[u8]) -> MetaFile {
    let mut m = MetaFile::new(version);
    m.length = Some(bytes.len() as u64);
    m.hashes = Some(BTreeMap::from([(
        "sha256".to_owned(),
        Digest::of(bytes).hex().to_owned(),
    )]));
    m
}

/// The online keys and how long what they sign lives.
pub struct OnlineKeys<'a> {
    pub snapshot: &'a dyn Signer,
    pub timestamp: &'a dyn Signer,
    pub snapshot_expires: OffsetDateTime,
    pub timestamp_expires: OffsetDateTime,
}

/// What [`publish`] pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub snapshot_version: u64,
    pub timestamp_version: u64,
    /// The targets roles the snapshot lists, with their versions.
    pub roles: BTreeMap<String, u64>,
}

/// Sign and push snapshot `snap_version` over `meta`, then timestamp `ts_version` over it.
pub(crate) async fn push_online(
    repo: &MetaRepo,
    meta: BTreeMap<String, MetaFile>,
    snap_version: u64,
    ts_version: u64,
    keys: &OnlineKeys<'_>,
) -> Result<()> {
    let snapshot = Snapshot {
        spec_version: SPEC_VERSION.to_owned(),
        version: snap_version,
        expires: keys.snapshot_expires,
        meta,
        extra: BTreeMap::new(),
    };
    let (_, snap_bytes) = sign_envelope(to_value(&snapshot)?, &[keys.snapshot], Vec::new())?;
    repo.push("snapshot", &snap_bytes, None).await?;
    let timestamp = Timestamp {
        spec_version: SPEC_VERSION.to_owned(),
        version: ts_version,
        expires: keys.timestamp_expires,
        meta: BTreeMap::from([(
            "snapshot.json".to_owned(),
            sha256_meta(snap_version, &snap_bytes),
        )]),
        extra: BTreeMap::new(),
    };
    let (_, ts_bytes) = sign_envelope(to_value(&timestamp)?, &[keys.timestamp], Vec::new())?;
    repo.push("timestamp", &ts_bytes, None).await?;
    Ok(())
}

/// Publish a new snapshot over the newest verified version of every targets role the
/// delegations reach, and a new timestamp over it.
///
/// # Errors
/// A configuration error when the keys are not the root's snapshot and timestamp keys; a
/// refusal when the registry hides a version the previous snapshot listed (publishing
/// would be a rollback that clients refuse, TUF 5.5.5); registry failures.
pub async fn publish(
    repo: &MetaRepo,
    pin: Option<&Pin>,
    keys: &OnlineKeys<'_>,
) -> Result<Published> {
    repo.progress().note(format_args!(
        "loading the targets roles of {:?} from {}…",
        repo.name.as_str(),
        repo.location
    ));
    let state = State::load(repo, pin).await?;
    publish_state(repo, &state, keys).await
}

/// The snapshot entries (`ROLE.json` → version, length, sha256) and role versions that a
/// snapshot over `state` lists: the newest verified version of every targets role.
pub fn snapshot_meta(state: &State) -> (BTreeMap<String, MetaFile>, BTreeMap<String, u64>) {
    let mut meta = BTreeMap::new();
    let mut roles = BTreeMap::new();
    for role in &state.order {
        if let Some((Some(f), _)) = state.targets.get(role) {
            meta.insert(format!("{role}.json"), sha256_meta(f.version, &f.bytes));
            roles.insert(role.clone(), f.version);
        }
    }
    (meta, roles)
}

/// [`publish`] over a state the caller already loaded (the online signer loads it once per
/// batch to decide whether anything changed).
///
/// # Errors
/// As [`publish`].
pub async fn publish_state(
    repo: &MetaRepo,
    state: &State,
    keys: &OnlineKeys<'_>,
) -> Result<Published> {
    let snap_auth = Authority::of_top_level(&state.root, "snapshot")?;
    let ts_auth = Authority::of_top_level(&state.root, "timestamp")?;
    check_threshold("snapshot", &[keys.snapshot], &snap_auth)?;
    check_threshold("timestamp", &[keys.timestamp], &ts_auth)?;
    let prev_snap = repo.newest("snapshot", &snap_auth).await?;
    let prev_ts = repo.newest("timestamp", &ts_auth).await?;

    let (meta, roles) = snapshot_meta(state);
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
                            "{name} is at version {} in the previous snapshot but the newest verified version in {} is {}: the registry lost or hides it",
                            old.version, repo.location, new.version
                        ),
                    ));
                }
            }
        }
    }
    let snapshot_version = prev_snap.as_ref().map_or(1, |f| f.version + 1);
    let timestamp_version = prev_ts.as_ref().map_or(1, |f| f.version + 1);
    repo.progress().note(format_args!(
        "signing snapshot version {snapshot_version} over {} targets roles and timestamp version {timestamp_version}…",
        meta.len()
    ));
    push_online(repo, meta, snapshot_version, timestamp_version, keys).await?;
    Ok(Published {
        snapshot_version,
        timestamp_version,
        roles,
    })
}
