//! The local trusted cache is untrusted input: truncated files, garbage, empty files and
//! files from another root of trust are detected (they fail verification from the pinned
//! root), never trusted, and recovered from the registry byte for byte. Run on both
//! registries, through the (here honest) adversarial proxy.

use std::path::PathBuf;

use ocituf_tuf::crypto::{KeyKind, PrivateKey, Signer};
use ocituf_tuf::{FsStore, RootHistory, TrustedStore as _};
use time::{Duration, OffsetDateTime};

use super::{Hostile, Kind};
use crate::on_both;

/// The cache directory of the one root of trust.
fn root_cache(f: &Hostile) -> PathBuf {
    let roots = f.cache_dir().join("roots");
    let mut dirs: Vec<_> = std::fs::read_dir(&roots)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

/// A warm client at version 2; `damage` rewrites every cached metadata file; the next
/// resolve verifies the same versions and the cache is back to the genuine bytes.
async fn recovers(kind: Kind, damage: fn(&[u8]) -> Vec<u8>) {
    let (mut f, signed) = Hostile::start(kind).await;
    f.publish_next().await;
    f.resolve("1.0").await.unwrap();
    let genuine = f.trusted_state();
    assert!(
        genuine.keys().any(|p| p.ends_with("timestamp.json")),
        "{genuine:?}"
    );
    for path in genuine.keys() {
        let full = f.cache_dir().join(path);
        let bytes = std::fs::read(&full).unwrap();
        std::fs::write(&full, damage(&bytes)).unwrap();
    }
    let again = f.resolve("1.0").await.unwrap();
    assert_eq!(again.digest, signed);
    assert_eq!(again.versions["timestamp"], 2);
    assert_eq!(again.versions["targets"], 2);
    assert_eq!(f.trusted_state(), genuine);
}

async fn truncated_cache_files_body(kind: Kind) {
    recovers(kind, |b| b[..b.len() / 2].to_vec()).await;
}
on_both!(truncated_cache_files, super::truncated_cache_files_body);

async fn garbage_cache_files_body(kind: Kind) {
    recovers(kind, |b| {
        b.iter().map(|x| x.wrapping_mul(31) ^ 0x5a).collect()
    })
    .await;
}
on_both!(garbage_cache_files, super::garbage_cache_files_body);

async fn empty_cache_files_body(kind: Kind) {
    recovers(kind, |_| Vec::new()).await;
}
on_both!(empty_cache_files, super::empty_cache_files_body);

/// A cached signature flipped in place (valid JSON, same length): the signature check
/// catches it.
async fn tampered_signature_in_cache_body(kind: Kind) {
    recovers(kind, |b| {
        let text = String::from_utf8(b.to_vec()).unwrap();
        let at = text.find("\"sig\":\"").unwrap() + 7;
        let mut out = b.to_vec();
        out[at] = if out[at] == b'a' { b'b' } else { b'a' };
        out
    })
    .await;
}
on_both!(
    tampered_signature_in_cache,
    super::tampered_signature_in_cache_body
);

/// Files from another root of trust (another organization's keys, higher versions) placed
/// in this root of trust's cache, including a root version 2 in its root history: none is
/// trusted, the genuine metadata is fetched again, and root stays at version 1.
async fn cache_files_from_another_root_of_trust_body(kind: Kind) {
    let (mut f, signed) = Hostile::start(kind).await;
    f.publish_next().await;
    f.resolve("1.0").await.unwrap();
    let genuine = f.trusted_state();
    let dir = root_cache(&f);

    let key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let mut other =
        ocituf_tuf::repo::Repository::new(OffsetDateTime::now_utc() + Duration::days(1));
    other.meta_hashes = true;
    for role in ocituf_tuf::metadata::TOP_LEVEL_ROLES {
        other.add_signer_key(role, &key).unwrap();
    }
    for _ in 0..4 {
        let exp = OffsetDateTime::now_utc() + Duration::days(1);
        for role in ["targets", "snapshot", "timestamp"] {
            other.bump(role, exp).unwrap();
        }
    }
    let signers: [&dyn Signer; 1] = [&key];
    other.root.version = 2;
    let root = other.sign_root(&signers).unwrap();
    let targets = other.sign_targets("targets", &signers).unwrap();
    let snapshot = other.sign_snapshot(&signers).unwrap();
    let timestamp = other.sign_timestamp(&signers).unwrap();
    let store = FsStore::open(&dir, RootHistory::Keep).unwrap();
    store.store_root(2, &root).await.unwrap();
    store.store("root", &root).await.unwrap();
    store.store("targets", &targets).await.unwrap();
    store.store("snapshot", &snapshot).await.unwrap();
    store.store("timestamp", &timestamp).await.unwrap();

    let again = f.resolve("1.0").await.unwrap();
    assert_eq!(again.digest, signed);
    assert_eq!(again.versions["root"], 1);
    assert_eq!(again.versions["timestamp"], 2);
    // The planted root files stay (ignored on every use, replaced by a real rotation);
    // every role file is the genuine one again.
    let role_files = |m: &std::collections::BTreeMap<PathBuf, Vec<u8>>| {
        m.iter()
            .filter(|(p, _)| {
                let name = p.file_name().unwrap().to_string_lossy();
                name != "root.json" && name != "2.root.json"
            })
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(role_files(&f.trusted_state()), role_files(&genuine));
}
on_both!(
    cache_files_from_another_root_of_trust,
    super::cache_files_from_another_root_of_trust_body
);

/// A writer killed mid-write leaves a temporary file beside the cache (`write_atomic`
/// renames only complete files); leftovers of that kind and a cache directory that is a
/// file are survived.
async fn killed_writer_leftovers_body(kind: Kind) {
    let (mut f, signed) = Hostile::start(kind).await;
    f.publish_next().await;
    f.resolve("1.0").await.unwrap();
    let dir = root_cache(&f);
    std::fs::write(dir.join(".timestamp.json.4242.0.tmp"), b"{\"signed\":").unwrap();
    assert_eq!(f.resolve("1.0").await.unwrap().digest, signed);
    // The whole cache of the root of trust replaced by a file: started again from the pin.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    assert_eq!(f.resolve("1.0").await.unwrap().digest, signed);
    assert!(dir.is_dir());
}
on_both!(killed_writer_leftovers, super::killed_writer_leftovers_body);
