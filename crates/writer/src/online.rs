//! The online roles: sign a snapshot over the newest verified version of every targets role,
//! and a timestamp over that snapshot, and push both. Whoever holds the snapshot and
//! timestamp keys (`ocituf publish`, the online signer) calls this; it signs no image.

use std::collections::BTreeMap;

use ocituf_oci::Digest;
use ocituf_tuf::crypto::Signer;
use ocituf_tuf::merkle;
use ocituf_tuf::metadata::{MetaFile, Role, Root, Snapshot, Timestamp, SPEC_VERSION};
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
    extra: BTreeMap<String, ocituf_tuf::cjson::Value>,
    snap_version: u64,
    ts_version: u64,
    keys: &OnlineKeys<'_>,
) -> Result<()> {
    let snapshot = Snapshot {
        spec_version: SPEC_VERSION.to_owned(),
        version: snap_version,
        expires: keys.snapshot_expires,
        meta,
        extra,
    };
    let (_, snap_bytes) = sign_envelope(to_value(&snapshot)?, &[keys.snapshot], Vec::new())?;
    check_readable(&snapshot, snap_bytes.len())?;
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

/// A snapshot larger than readers fetch ([`crate::MAX_METADATA_LEN`]) would be pushed and
/// then refused by every client: it is refused here, before anything is pushed.
fn check_readable(snapshot: &Snapshot, len: usize) -> Result<()> {
    if len as u64 <= crate::MAX_METADATA_LEN {
        return Ok(());
    }
    Err(fail(
        crate::ErrorKind::Config,
        format!(
            "snapshot version {} would be {len} bytes listing {} roles, more than the {} bytes clients fetch: nothing was published. A root of trust this large needs Merkle snapshots (`ocituf init --snapshot-merkle`, docs/oci-mapping.md section 11), or fewer hash bins",
            snapshot.version,
            snapshot.meta.len(),
            crate::MAX_METADATA_LEN
        ),
    ))
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
    let before = previous_online(repo, &state.root, keys).await?;
    let (mut meta, roles) = snapshot_meta(state);
    let mut previous: BTreeMap<String, u64> = before
        .snapshot
        .iter()
        .flat_map(|p| p.meta.iter())
        .map(|(name, m)| (name.clone(), m.version))
        .collect();
    let mut extra = BTreeMap::new();
    let mut tree_versions = BTreeMap::new();
    if merkle::root_wants_merkle(&state.root) {
        let moved = into_merkle_tree(repo, &mut meta, before.snapshot.as_ref()).await?;
        previous.extend(moved.previous);
        tree_versions = moved.versions;
        extra.insert(merkle::FIELD.to_owned(), moved.root);
    }
    check_no_rollback(repo, &previous, &tree_versions, &meta)?;
    let (snapshot_version, timestamp_version) = before.next_versions();
    repo.progress().note(format_args!(
        "signing snapshot version {snapshot_version} over {} targets roles and timestamp version {timestamp_version}…",
        meta.len()
    ));
    push_online(repo, meta, extra, snapshot_version, timestamp_version, keys).await?;
    Ok(Published {
        snapshot_version,
        timestamp_version,
        roles,
    })
}

/// Publish a new snapshot and timestamp that differ from the previous snapshot only in
/// `changes` (role → its new version), reading the previous snapshot and, with Merkle
/// snapshots, only the tree nodes on the changed roles' paths: the cost does not grow with
/// the number of roles (docs/oci-mapping.md §11). For a writer that knows what it changed
/// (a batch signer, the online signer's submissions, the large-repository generator);
/// [`publish`] re-reads every role instead.
///
/// # Security
/// The caller verified each change as a client would (its delegator's keys and threshold,
/// version = the previous one + 1); this function checks only that no version goes back.
///
/// # Errors
/// A refusal when a change lowers a version; a configuration error when there is no
/// previous snapshot, or a Merkle root of trust whose previous snapshot is classic (run
/// `ocituf publish` once); registry failures.
pub async fn publish_changes(
    repo: &MetaRepo,
    pin: Option<&Pin>,
    keys: &OnlineKeys<'_>,
    changes: &BTreeMap<String, crate::repo::Found>,
) -> Result<Published> {
    let (root, _) = repo.root_chain(pin).await?;
    let before = previous_online(repo, &root, keys).await?;
    let Some(prev) = &before.snapshot else {
        return Err(fail(
            ErrorKind::Config,
            "there is no snapshot to build on: run `ocituf publish` first",
        ));
    };
    let mut meta = prev.meta.clone();
    let mut extra = BTreeMap::new();
    let mut previous: BTreeMap<String, u64> = prev
        .meta
        .iter()
        .map(|(n, m)| (n.clone(), m.version))
        .collect();
    let mut entries: BTreeMap<String, MetaFile> = changes
        .iter()
        .map(|(role, f)| (format!("{role}.json"), sha256_meta(f.version, &f.bytes)))
        .collect();
    let new_versions: BTreeMap<String, u64> = entries
        .iter()
        .map(|(n, m)| (n.clone(), m.version))
        .collect();
    if merkle::root_wants_merkle(&root) {
        let delegated = split_delegated(&mut entries);
        let prev_root = merkle::MerkleRoot::of_snapshot(prev)
            .config(|| "the previous snapshot's Merkle root is malformed".to_owned())?
            .ok_or_else(|| {
                fail(
                    ErrorKind::Config,
                    "this root of trust asks for Merkle snapshots but the previous snapshot is classic: run `ocituf publish` once to write the whole tree",
                )
            })?;
        let updated = repo.update_merkle_tree(&prev_root, &delegated).await?;
        previous.extend(
            updated
                .previous
                .iter()
                .map(|(r, v)| (format!("{r}.json"), *v)),
        );
        repo.push_merkle_tree(&updated.tree, Some(&prev_root))
            .await?;
        extra.insert(merkle::FIELD.to_owned(), merkle_field(&updated.tree.root)?);
    }
    meta.extend(entries);
    check_no_rollback(repo, &previous, &new_versions, &BTreeMap::new())?;
    let (snapshot_version, timestamp_version) = before.next_versions();
    push_online(repo, meta, extra, snapshot_version, timestamp_version, keys).await?;
    Ok(Published {
        snapshot_version,
        timestamp_version,
        roles: changes
            .iter()
            .map(|(r, f)| (r.clone(), f.version))
            .collect(),
    })
}

/// The previous online versions a publish builds on, read after checking that the keys
/// given are the root's snapshot and timestamp keys.
struct Previous {
    snapshot: Option<Snapshot>,
    snapshot_version: Option<u64>,
    timestamp_version: Option<u64>,
}

impl Previous {
    /// The version numbers of the next snapshot and timestamp.
    fn next_versions(&self) -> (u64, u64) {
        (
            self.snapshot_version.map_or(1, |v| v + 1),
            self.timestamp_version.map_or(1, |v| v + 1),
        )
    }
}

/// What both [`publish_state`] and [`publish_changes`] start from: the keys meet the
/// root's snapshot and timestamp thresholds, and the newest verified snapshot (parsed) and
/// timestamp versions.
async fn previous_online(repo: &MetaRepo, root: &Root, keys: &OnlineKeys<'_>) -> Result<Previous> {
    let snap_auth = Authority::of_top_level(root, "snapshot")?;
    let ts_auth = Authority::of_top_level(root, "timestamp")?;
    check_threshold("snapshot", &[keys.snapshot], &snap_auth)?;
    check_threshold("timestamp", &[keys.timestamp], &ts_auth)?;
    let prev_snap = repo.newest("snapshot", &snap_auth).await?;
    let prev_ts = repo.newest("timestamp", &ts_auth).await?;
    let snapshot = match &prev_snap {
        Some(f) => Some(
            Snapshot::from_signed(&f.envelope.signed)
                .config(|| "the previous snapshot is malformed".to_owned())?,
        ),
        None => None,
    };
    Ok(Previous {
        snapshot,
        snapshot_version: prev_snap.map(|f| f.version),
        timestamp_version: prev_ts.map(|f| f.version),
    })
}

/// Move the delegated roles' entries (`ROLE.json`) out of `meta`, leaving `targets.json`:
/// the split between a Merkle snapshot's own `meta` and its tree. Returns ROLE → entry.
fn split_delegated(meta: &mut BTreeMap<String, MetaFile>) -> BTreeMap<String, MetaFile> {
    let delegated = meta
        .iter()
        .filter(|(name, _)| *name != "targets.json")
        .filter_map(|(name, m)| Some((name.strip_suffix(".json")?.to_owned(), m.clone())))
        .collect();
    meta.retain(|name, _| name == "targets.json");
    delegated
}

/// The value of the snapshot's `x-ocituf-merkle` field for a tree root.
fn merkle_field(root: &merkle::MerkleRoot) -> Result<ocituf_tuf::cjson::Value> {
    serde_json::to_value(root).map_err(|e| {
        fail(
            ErrorKind::Config,
            format!("the Merkle root cannot be written: {e}"),
        )
    })
}

/// What [`into_merkle_tree`] did.
pub(crate) struct MovedToTree {
    /// The value of the snapshot's `x-ocituf-merkle` field.
    pub root: ocituf_tuf::cjson::Value,
    /// `ROLE.json` → version, of every role the tree holds.
    pub versions: BTreeMap<String, u64>,
    /// `ROLE.json` → version of the previous tree's entries met on the changed paths.
    pub previous: BTreeMap<String, u64>,
}

/// Move every delegated role's entry out of `meta` into a snapshot Merkle tree
/// (docs/oci-mapping.md §11), and push the tree's new nodes (compared with the previous
/// snapshot's tree, if it has one).
pub(crate) async fn into_merkle_tree(
    repo: &MetaRepo,
    meta: &mut BTreeMap<String, MetaFile>,
    prev: Option<&Snapshot>,
) -> Result<MovedToTree> {
    let delegated = split_delegated(meta);
    let tree = merkle::Tree::build(&delegated)
        .config(|| "the snapshot Merkle tree cannot be built".to_owned())?;
    let prev_root = match prev {
        Some(p) => merkle::MerkleRoot::of_snapshot(p)
            .config(|| "the previous snapshot's Merkle root is malformed".to_owned())?,
        None => None,
    };
    let pushed = repo.push_merkle_tree(&tree, prev_root.as_ref()).await?;
    let root = merkle_field(&tree.root)?;
    Ok(MovedToTree {
        root,
        versions: delegated
            .iter()
            .map(|(r, m)| (format!("{r}.json"), m.version))
            .collect(),
        previous: pushed
            .previous
            .into_iter()
            .map(|(r, v)| (format!("{r}.json"), v))
            .collect(),
    })
}

/// TUF 5.5.5: clients refuse a snapshot that lowers a targets role's version. If the
/// registry hides the newest version of a role, say so rather than publish a rollback.
/// `previous`: `ROLE.json` → version in the previous snapshot (its `meta`, and the entries
/// of its Merkle tree met on the changed paths); the new versions are `meta`'s and `tree`'s.
fn check_no_rollback(
    repo: &MetaRepo,
    previous: &BTreeMap<String, u64>,
    tree: &BTreeMap<String, u64>,
    meta: &BTreeMap<String, MetaFile>,
) -> Result<()> {
    for (name, old) in previous {
        let new = meta
            .get(name)
            .map(|m| m.version)
            .or_else(|| tree.get(name).copied());
        if let Some(new) = new {
            if new < *old {
                return Err(fail(
                    ErrorKind::Refused,
                    format!(
                        "{name} is at version {old} in the previous snapshot but the newest verified version in {} is {new}: the registry lost or hides it",
                        repo.location
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic snapshot of ~130,000 bins (a million images) is over what clients fetch:
    /// published, it would freeze every client on the snapshot before it.
    #[tokio::test]
    async fn a_snapshot_too_large_for_clients_is_refused_before_anything_is_pushed() {
        let dir = tempfile::tempdir().unwrap();
        let reference = ocituf_resolver::RepositoryReference::parse(&format!(
            "oci:{}:tuf",
            dir.path().join("layout").display()
        ))
        .unwrap();
        let repo =
            MetaRepo::open(&reference, "acme", &ocituf_oci::RegistryOptions::default()).unwrap();
        let meta: BTreeMap<String, MetaFile> = (0..131_072u32)
            .map(|i| {
                (
                    format!("app-{i:05x}.json"),
                    sha256_meta(1, &i.to_be_bytes()),
                )
            })
            .collect();
        let key = ocituf_tuf::crypto::PrivateKey::ed25519_from_seed([7; 32]).unwrap();
        let in_a_day = OffsetDateTime::now_utc() + time::Duration::days(1);
        let keys = OnlineKeys {
            snapshot: &key,
            timestamp: &key,
            snapshot_expires: in_a_day,
            timestamp_expires: in_a_day,
        };
        let err = push_online(&repo, meta, BTreeMap::new(), 2, 2, &keys)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config, "{err}");
        assert!(err.to_string().contains("--snapshot-merkle"), "{err}");
        assert!(err.to_string().contains("131072 roles"), "{err}");
        assert!(
            !dir.path().join("layout").join("index.json").exists(),
            "something was pushed"
        );
    }
}
