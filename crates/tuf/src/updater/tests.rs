//! The updater against in-memory test doubles: a source serving a map of files in the
//! standard layout (recording every request) and a map store.

use time::Duration;

use super::*;
use crate::clock::FixedClock;
use crate::crypto::Signer as _;
use crate::metadata::MetaFile;
use crate::source::{Fetched, SourceError};
use crate::store::{StoreError, TrustedStore};
use crate::testutil::{MapSource, MapStore};
use crate::trusted::tests::fixture::{Fixture, NOW};

type TestUpdater<'a> = Updater<&'a MapSource, &'a MapStore, FixedClock>;

async fn updater<'a>(anchor: &[u8], source: &'a MapSource, store: &'a MapStore) -> TestUpdater<'a> {
    Updater::new(
        anchor,
        source,
        store,
        UpdaterConfig::default(),
        FixedClock(NOW),
    )
    .await
    .unwrap()
}

fn req(role: &str, v: Option<u64>) -> (String, Option<u64>) {
    (role.to_owned(), v)
}

#[tokio::test]
async fn first_refresh_fetches_exactly_what_is_needed() {
    let f = Fixture::new();
    let (source, store) = (MapSource::default(), MapStore::default());
    source.publish(&f);
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    u.refresh().await.unwrap();
    assert_eq!(
        source.take_log(),
        [
            req("root", Some(2)),
            req("timestamp", None),
            req("snapshot", Some(1)),
            req("targets", Some(1))
        ]
    );
    let files = store.files.lock().unwrap().clone();
    assert_eq!(files["timestamp"], f.timestamp_bytes());
    assert_eq!(files["snapshot"], f.snapshot_bytes());
    assert_eq!(files["targets"], f.targets_bytes("targets"));
    assert_eq!(trusted_versions(u.trusted())["targets"], 1);
}

#[tokio::test]
async fn unchanged_metadata_is_not_fetched_again() {
    let f = Fixture::new();
    let (source, store) = (MapSource::default(), MapStore::default());
    source.publish(&f);
    let anchor = f.root_bytes();
    updater(&anchor, &source, &store)
        .await
        .refresh()
        .await
        .unwrap();
    source.take_log();
    // A new process with the same cache.
    let mut u = updater(&anchor, &source, &store).await;
    assert_eq!(u.trusted().snapshot().unwrap().version, 1);
    u.refresh().await.unwrap();
    assert_eq!(
        source.take_log(),
        [req("root", Some(2)), req("timestamp", None)]
    );
}

#[tokio::test]
async fn timestamp_content_changes_without_a_new_version() {
    let mut f = Fixture::new();
    let (source, store) = (MapSource::default(), MapStore::default());
    source.publish(&f);
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    u.refresh().await.unwrap();
    let stored = store.files.lock().unwrap()["timestamp"].clone();
    f.timestamp
        .meta
        .insert("snapshot.json".into(), MetaFile::new(100));
    source.put("timestamp.json", f.timestamp_bytes());
    source.take_log();
    u.refresh().await.unwrap();
    assert_eq!(
        source.take_log(),
        [req("root", Some(2)), req("timestamp", None)]
    );
    assert_eq!(store.files.lock().unwrap()["timestamp"], stored);
}

#[tokio::test]
async fn root_rotation_is_followed_and_cached_history_replayed() {
    let mut f = Fixture::new();
    let (source, store) = (MapSource::default(), MapStore::default());
    let anchor = f.root_bytes();
    for v in 2..=3 {
        f.root.version = v;
        let k = f.new_key();
        let old = f.signers["root"][0].key_id().clone();
        // Sign v with old and new root key.
        let old_key = f.signers.remove("root").unwrap();
        f.set_top_role_keys("root", vec![k], 1);
        f.root.keys.remove(&old);
        let signers: Vec<&crate::crypto::PrivateKey> =
            old_key.iter().chain(f.signers["root"].iter()).collect();
        source.put(
            &format!("{v}.root.json"),
            Fixture::sign_with(&f.root, &signers),
        );
    }
    source.publish(&f);
    let mut u = updater(&anchor, &source, &store).await;
    u.refresh().await.unwrap();
    assert_eq!(u.trusted().root().version, 3);
    assert_eq!(
        source.take_log()[..3],
        [
            req("root", Some(2)),
            req("root", Some(3)),
            req("root", Some(4))
        ]
    );
    assert_eq!(store.roots.lock().unwrap().len(), 2);
    // Offline, from the same anchor: the cached history brings the root to v3.
    let offline = MapSource::default();
    let u = updater(&anchor, &offline, &store).await;
    assert_eq!(u.trusted().root().version, 3);
    assert_eq!(u.trusted().timestamp().unwrap().version, 1);
    assert!(offline.take_log().is_empty());
}

#[tokio::test]
async fn a_cached_root_that_does_not_chain_is_not_trusted() {
    let mut f = Fixture::new();
    let (source, store) = (MapSource::default(), MapStore::default());
    let anchor = f.root_bytes();
    // An attacker who can write the cache but has no root key.
    let mut forged = f.root.clone();
    forged.version = 2;
    let k = f.new_key();
    store
        .roots
        .lock()
        .unwrap()
        .insert(2, Fixture::sign_with(&forged, &[&k]));
    store
        .files
        .lock()
        .unwrap()
        .insert("root".into(), Fixture::sign_with(&forged, &[&k]));
    let u = updater(&anchor, &source, &store).await;
    assert_eq!(u.trusted().root().version, 1);
}

#[tokio::test]
async fn junk_candidates_are_skipped() {
    let mut f = Fixture::new();
    let (source, store) = (MapSource::default(), MapStore::default());
    source.publish(&f);
    let good = f.timestamp_bytes();
    f.timestamp.version = 7;
    let outsider = f.new_key();
    let forged = Fixture::sign_with(&f.timestamp, &[&outsider]);
    source.candidates(
        "timestamp.json",
        vec![
            // Claims a version it does not have.
            Fetched {
                bytes: good.clone(),
                claimed_version: Some(1000),
            },
            // Right claim, wrong key.
            Fetched {
                bytes: forged,
                claimed_version: Some(7),
            },
            Fetched {
                bytes: good.clone(),
                claimed_version: Some(1),
            },
        ],
    );
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    u.refresh().await.unwrap();
    assert_eq!(store.files.lock().unwrap()["timestamp"], good);

    // Only junk: the error of the first candidate.
    source.candidates(
        "timestamp.json",
        vec![Fetched {
            bytes: good,
            claimed_version: Some(1000),
        }],
    );
    let store = MapStore::default();
    let mut u = updater(&anchor, &source, &store).await;
    assert!(matches!(
        u.refresh().await,
        Err(Error::VersionMismatch {
            expected: 1000,
            got: 1,
            ..
        })
    ));
}

#[tokio::test]
async fn endless_data_is_refused() {
    let f = Fixture::new();
    let (source, store) = (MapSource::default(), MapStore::default());
    source.publish(&f);
    let mut huge = f.timestamp_bytes();
    huge.extend(std::iter::repeat_n(b' ', 20_000));
    source.put("timestamp.json", huge);
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    assert!(matches!(
        u.refresh().await,
        Err(Error::Source(SourceError::TooLarge { .. }))
    ));
}

#[tokio::test]
async fn missing_timestamp_is_not_found() {
    let f = Fixture::new();
    let (source, store) = (MapSource::default(), MapStore::default());
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    assert!(matches!(u.refresh().await, Err(Error::NotFound { what }) if what == "timestamp"));
}

#[tokio::test]
async fn fast_forward_recovery_after_timestamp_key_rotation() {
    let mut f = Fixture::new();
    let (source, store) = (MapSource::default(), MapStore::default());
    let anchor = f.root_bytes();
    // The attacker's timestamp v1000 got into the cache.
    f.timestamp.version = 1000;
    source.publish(&f);
    updater(&anchor, &source, &store)
        .await
        .refresh()
        .await
        .unwrap();
    // The repository rotates the timestamp key and starts again at v2.
    let new = f.new_key();
    f.set_top_role_keys("timestamp", vec![new], 1);
    f.root.version = 2;
    source.publish_root(&f);
    f.timestamp.version = 2;
    source.publish(&f);
    let mut u = updater(&anchor, &source, &store).await;
    u.refresh().await.unwrap();
    assert_eq!(u.trusted().timestamp().unwrap().version, 2);
    assert_eq!(
        store.files.lock().unwrap()["timestamp"],
        f.timestamp_bytes()
    );
}

#[tokio::test]
async fn rollback_timestamp_through_the_updater() {
    let mut f = Fixture::new();
    let (source, store) = (MapSource::default(), MapStore::default());
    let anchor = f.root_bytes();
    let old = f.timestamp_bytes();
    f.bump_snapshot();
    source.publish(&f);
    updater(&anchor, &source, &store)
        .await
        .refresh()
        .await
        .unwrap();
    source.put("timestamp.json", old);
    let mut u = updater(&anchor, &source, &store).await;
    assert!(matches!(
        u.refresh().await,
        Err(Error::Rollback { role, trusted: 2, got: 1 }) if role == "timestamp"
    ));
}

#[tokio::test]
async fn expired_final_root() {
    let mut f = Fixture::new();
    f.root.expires = NOW - Duration::days(1);
    let (source, store) = (MapSource::default(), MapStore::default());
    source.publish(&f);
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    assert!(matches!(
        u.refresh().await,
        Err(Error::Expired { role, .. }) if role == "root"
    ));
}

#[tokio::test]
async fn targets_are_found_through_lazy_delegations_and_downloaded() {
    let mut f = Fixture::new();
    f.delegate("targets", "a", &["acme/*"], false);
    f.delegate("targets", "b", &["other/*"], false);
    f.add_target("a", "acme/app:1.4", b"manifest bytes");
    let (source, store) = (MapSource::default(), MapStore::default());
    source.publish(&f);
    source
        .targets
        .lock()
        .unwrap()
        .insert("acme/app:1.4".into(), b"manifest bytes".to_vec());
    let anchor = f.root_bytes();
    let mut u = updater(&anchor, &source, &store).await;
    // Implicit refresh, then only the delegated role that can hold the path.
    let info = u.target_info("acme/app:1.4").await.unwrap().unwrap();
    assert_eq!(
        source.take_log(),
        [
            req("root", Some(2)),
            req("timestamp", None),
            req("snapshot", Some(1)),
            req("targets", Some(1)),
            req("a", Some(1)),
        ]
    );
    assert_eq!(u.download_target(&info).await.unwrap(), b"manifest bytes");
    assert_eq!(u.target_info("acme/none").await.unwrap(), None);

    // A registry that swaps the target bytes is refused.
    source
        .targets
        .lock()
        .unwrap()
        .insert("acme/app:1.4".into(), b"manifest byteS".to_vec());
    assert!(matches!(
        u.download_target(&info).await,
        Err(Error::HashMismatch { .. })
    ));
    source
        .targets
        .lock()
        .unwrap()
        .insert("acme/app:1.4".into(), b"manifest bytes and more".to_vec());
    assert!(matches!(
        u.download_target(&info).await,
        Err(Error::LengthMismatch { .. })
    ));
}

#[tokio::test]
async fn updater_futures_are_send() {
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let f = Fixture::new();
    let (source, store) = (MapSource::default(), MapStore::default());
    source.publish(&f);
    let anchor = f.root_bytes();
    let mut u = assert_send(updater(&anchor, &source, &store)).await;
    assert_send(u.refresh()).await.unwrap();
    assert_eq!(assert_send(u.target_info("x")).await.unwrap(), None);
}

/// A store whose every file is over the limit.
struct OversizedStore;

impl TrustedStore for OversizedStore {
    async fn load(&self, role: &str, max_len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Err(StoreError::TooLarge {
            name: role.to_owned(),
            max_len,
        })
    }
    async fn store(&self, _: &str, _: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
    async fn remove(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

#[tokio::test]
async fn oversized_cache_files_are_ignored_not_fatal() {
    let f = Fixture::new();
    let source = MapSource::default();
    source.publish(&f);
    let anchor = f.root_bytes();
    let mut u = Updater::new(
        &anchor,
        &source,
        OversizedStore,
        UpdaterConfig::default(),
        FixedClock(NOW),
    )
    .await
    .unwrap();
    u.refresh().await.unwrap();
    assert_eq!(u.trusted().targets().unwrap().version, 1);
}

#[tokio::test]
async fn rotated_timestamp_keys_delete_cached_timestamp_and_snapshot() {
    let mut f = Fixture::new();
    let (source, store) = (MapSource::default(), MapStore::default());
    let anchor = f.root_bytes();
    source.publish(&f);
    updater(&anchor, &source, &store)
        .await
        .refresh()
        .await
        .unwrap();
    // Root v2 rotates the timestamp key; the repository has no timestamp for it yet.
    let new = f.new_key();
    f.set_top_role_keys("timestamp", vec![new], 1);
    f.root.version = 2;
    source.publish_root(&f);
    source.files.lock().unwrap().remove("timestamp.json");
    let mut u = updater(&anchor, &source, &store).await;
    assert!(matches!(u.refresh().await, Err(Error::NotFound { .. })));
    let files = store.files.lock().unwrap();
    assert!(!files.contains_key("timestamp") && !files.contains_key("snapshot"));
    assert!(files.contains_key("targets"));
}

#[tokio::test]
async fn a_root_update_that_keeps_online_keys_keeps_the_cache() {
    let mut f = Fixture::new();
    let (source, store) = (MapSource::default(), MapStore::default());
    let anchor = f.root_bytes();
    source.publish(&f);
    updater(&anchor, &source, &store)
        .await
        .refresh()
        .await
        .unwrap();
    let cached = store.files.lock().unwrap()["snapshot"].clone();
    f.root.version = 2;
    source.publish_root(&f);
    source.take_log();
    let mut u = updater(&anchor, &source, &store).await;
    u.refresh().await.unwrap();
    assert_eq!(store.files.lock().unwrap()["snapshot"], cached);
    assert_eq!(
        source.take_log(),
        [
            req("root", Some(2)),
            req("root", Some(3)),
            req("timestamp", None)
        ]
    );
}
