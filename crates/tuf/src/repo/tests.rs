//! A repository made with the editing API is verified by the updater; threshold signing by
//! several holders; root rotation signed by old and new keys.

use time::Duration;

use super::*;
use crate::clock::FixedClock;
use crate::crypto::signer::tests::RSA_PEM;
use crate::crypto::{KeyKind, PrivateKey};
use crate::editor::add_signature;
use crate::metadata::TargetFile;
use crate::testutil::{MapSource, MapStore};
use crate::trusted::tests::fixture::NOW;
use crate::trusted::TrustedSet;
use crate::updater::{Updater, UpdaterConfig};

fn pair(k: &PrivateKey) -> (KeyId, PublicKey) {
    (k.key_id().clone(), k.public_key().clone())
}

struct Keys {
    root: PrivateKey,
    timestamp: PrivateKey,
    snapshot: PrivateKey,
    targets: PrivateKey,
    team: PrivateKey,
    bins: PrivateKey,
}

fn keys() -> Keys {
    Keys {
        root: PrivateKey::from_pkcs8_pem(RSA_PEM).unwrap(),
        timestamp: PrivateKey::generate(KeyKind::EcdsaP256).unwrap(),
        snapshot: PrivateKey::generate(KeyKind::Ed25519).unwrap(),
        targets: PrivateKey::generate(KeyKind::Ed25519).unwrap(),
        team: PrivateKey::generate(KeyKind::EcdsaP256).unwrap(),
        bins: PrivateKey::generate(KeyKind::Ed25519).unwrap(),
    }
}

/// Sign every role bottom-up and publish into a map source (consistent snapshots).
fn publish(repo: &mut Repository, k: &Keys, source: &MapSource) {
    let mut roles: Vec<String> = repo.targets.keys().cloned().collect();
    roles.sort_by_key(|r| r == "targets"); // delegated roles first, not that it matters
    for role in roles {
        let signer: &dyn Signer = match role.as_str() {
            "targets" => &k.targets,
            "team" => &k.team,
            _ => &k.bins,
        };
        let bytes = repo.sign_targets(&role, &[signer]).unwrap();
        source.put(
            &format!("{}.{role}.json", repo.targets[&role].version),
            bytes,
        );
    }
    let snapshot = repo.sign_snapshot(&[&k.snapshot]).unwrap();
    source.put(
        &format!("{}.snapshot.json", repo.snapshot.version),
        snapshot,
    );
    source.put(
        "timestamp.json",
        repo.sign_timestamp(&[&k.timestamp]).unwrap(),
    );
}

fn new_repository(k: &Keys) -> Repository {
    let mut repo = Repository::new(NOW + Duration::days(30));
    repo.meta_hashes = true;
    repo.add_signer_key("root", &k.root).unwrap();
    repo.add_signer_key("timestamp", &k.timestamp).unwrap();
    repo.add_signer_key("snapshot", &k.snapshot).unwrap();
    repo.add_signer_key("targets", &k.targets).unwrap();
    let team = DelegatedRole::with_paths("team", vec![k.team.key_id().clone()], 1, &["acme/*"]);
    repo.delegate("targets", team, &[pair(&k.team)]).unwrap();
    let bins = repo
        .delegate_hash_bins("team", "team-bin", 3, &[pair(&k.bins)], 1)
        .unwrap();
    assert_eq!(bins.len(), 8);
    repo
}

#[tokio::test]
async fn a_repository_made_here_verifies() {
    let k = keys();
    let mut repo = new_repository(&k);
    let data = b"{\"manifest\": true}";
    let path = "acme/app:1.4";
    let bin = repo.targets["team"]
        .delegations
        .as_ref()
        .unwrap()
        .succinct_roles
        .as_ref()
        .unwrap()
        .role_for_target(path);
    repo.add_target(
        &bin,
        path,
        TargetFile::from_data(data, &["sha256", "sha512"]).unwrap(),
    )
    .unwrap();
    let source = MapSource::default();
    let root = repo.sign_root(&[&k.root]).unwrap();
    publish(&mut repo, &k, &source);
    source
        .targets
        .lock()
        .unwrap()
        .insert(path.into(), data.to_vec());

    let store = MapStore::default();
    let mut u = Updater::new(
        &root,
        &source,
        &store,
        UpdaterConfig::default(),
        FixedClock(NOW),
    )
    .await
    .unwrap();
    let info = u.target_info(path).await.unwrap().unwrap();
    assert_eq!(u.download_target(&info).await.unwrap(), data);
    assert_eq!(u.target_info("acme/other:1").await.unwrap(), None);

    // Edit: yank the target, publish new versions; the updater follows.
    repo.remove_target(&bin, path).unwrap();
    let later = NOW + Duration::days(30);
    for role in [bin.as_str(), "snapshot", "timestamp"] {
        repo.bump(role, later).unwrap();
    }
    let bytes = repo.sign_targets(&bin, &[&k.bins]).unwrap();
    source.put(&format!("2.{bin}.json"), bytes);
    let snapshot = repo.sign_snapshot(&[&k.snapshot]).unwrap();
    source.put("2.snapshot.json", snapshot);
    source.put(
        "timestamp.json",
        repo.sign_timestamp(&[&k.timestamp]).unwrap(),
    );
    let mut u = Updater::new(
        &root,
        &source,
        &store,
        UpdaterConfig::default(),
        FixedClock(NOW),
    )
    .await
    .unwrap();
    u.refresh().await.unwrap();
    assert_eq!(u.target_info(path).await.unwrap(), None);
}

#[test]
fn threshold_signing_by_two_holders() {
    let k = keys();
    let mut repo = new_repository(&k);
    let second = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    repo.add_signer_key("root", &second).unwrap();
    repo.set_threshold("root", 2).unwrap();
    // Holder one signs and passes the bytes on; holder two adds a signature.
    let partial = repo.sign_root(&[&k.root]).unwrap();
    assert!(matches!(
        TrustedSet::new(&partial),
        Err(Error::Threshold {
            valid: 1,
            threshold: 2,
            ..
        })
    ));
    let keys = &repo.root.keys;
    let role = &repo.root.roles["root"];
    let report =
        crate::trusted::signature_report("root", &partial, keys, &role.keyids, role.threshold)
            .unwrap();
    assert!(!report.is_complete());
    assert_eq!(report.valid, [k.root.key_id().clone()]);
    assert_eq!(report.missing, [second.key_id().clone()]);
    let full = add_signature(&partial, &second).unwrap();
    TrustedSet::new(&full).unwrap();
    let report =
        crate::trusted::signature_report("root", &full, keys, &role.keyids, role.threshold)
            .unwrap();
    assert!(report.is_complete() && report.missing.is_empty());
    // Signing again with the same key replaces, never duplicates, its signature.
    let again = add_signature(&full, &second).unwrap();
    assert_eq!(Envelope::parse("root", &again).unwrap().signatures.len(), 2);
}

#[test]
fn add_signature_keeps_unknown_fields_signed() {
    let k = keys();
    let mut repo = new_repository(&k);
    repo.root.extra.insert(
        "x-future-field".into(),
        serde_json::json!({"z": 1, "a": "b"}),
    );
    let second = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    repo.add_signer_key("root", &second).unwrap();
    repo.set_threshold("root", 2).unwrap();
    let partial = repo.sign_root(&[&k.root]).unwrap();
    // Holder two has a client that knows nothing of x-future-field: it signs the bytes.
    let full = add_signature(&partial, &second).unwrap();
    let set = TrustedSet::new(&full).unwrap();
    assert!(set.root().extra.contains_key("x-future-field"));
}

#[test]
fn root_rotation_signed_by_old_and_new_keys() {
    let k = keys();
    let mut repo = new_repository(&k);
    let v1 = repo.sign_root(&[&k.root]).unwrap();
    let new_root = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    repo.revoke_key("root", k.root.key_id()).unwrap();
    repo.add_signer_key("root", &new_root).unwrap();
    assert!(!repo.root.keys.contains_key(k.root.key_id()));
    repo.bump("root", NOW + Duration::days(365)).unwrap();
    let mut set = TrustedSet::new(&v1).unwrap();
    let only_new = repo.sign_root(&[&new_root]).unwrap();
    assert!(matches!(
        set.update_root(&only_new),
        Err(Error::Threshold { .. })
    ));
    let both = repo.sign_root(&[&k.root, &new_root]).unwrap();
    set.update_root(&both).unwrap();
    assert_eq!(set.root().version, 2);
}

#[test]
fn loading_files_round_trips() {
    let k = keys();
    let mut repo = new_repository(&k);
    let root = repo.sign_root(&[&k.root]).unwrap();
    let targets = repo.sign_targets("targets", &[&k.targets]).unwrap();
    let team = repo.sign_targets("team", &[&k.team]).unwrap();
    let snapshot = repo.sign_snapshot(&[&k.snapshot]).unwrap();
    let timestamp = repo.sign_timestamp(&[&k.timestamp]).unwrap();
    let files = BTreeMap::from([
        ("targets".to_owned(), targets.clone()),
        ("team".to_owned(), team),
    ]);
    let mut loaded = Repository::from_files(&root, &timestamp, &snapshot, &files).unwrap();
    assert!(loaded.meta_hashes);
    // RSA-PSS signatures are randomised: compare what was signed.
    let signed = |b: &[u8]| Envelope::parse("root", b).unwrap().signed;
    assert!(signed(&loaded.sign_root(&[&k.root]).unwrap()) == signed(&root));
    assert_eq!(
        loaded.sign_targets("targets", &[&k.targets]).unwrap(),
        targets
    );
    loaded.undelegate("targets", "team").unwrap();
    assert!(!loaded.snapshot.meta.contains_key("team.json"));
    assert!(loaded.targets["targets"]
        .delegations
        .as_ref()
        .unwrap()
        .keys
        .is_empty());
}
