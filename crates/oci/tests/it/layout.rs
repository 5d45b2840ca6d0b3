//! The client test suite on the OCI image-layout store.

use ocituf_oci::LayoutStore;

use crate::suite;

fn layout() -> (tempfile::TempDir, LayoutStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LayoutStore::new(dir.path().join("oci"), "acme/tuf").expect("store");
    (dir, store)
}

macro_rules! on_layout {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() -> anyhow::Result<()> {
            let (_dir, store) = layout();
            suite::$name(store).await
        }
    )*};
}

on_layout!(
    store_contract,
    request_budget,
    fetch_without_hashes,
    junk_with_huge_version,
    deleted_artifact_is_absent,
    newest_and_prune,
    concurrent_publishers,
    endless_data,
);

/// The round trips of `round_trip.rs` on a layout: metadata in `acme/tuf`, images in
/// `acme/app`, one directory.
mod round_trips {
    use ocituf_oci::{Digest, LayoutStore};

    use crate::round_trip;

    fn stores() -> (tempfile::TempDir, LayoutStore, LayoutStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = LayoutStore::new(dir.path(), "acme/tuf").expect("store");
        let images = LayoutStore::new(dir.path(), "acme/app").expect("store");
        (dir, meta, images)
    }

    macro_rules! round_trips {
        ($($name:ident),* $(,)?) => {$(
            #[tokio::test]
            async fn $name() -> anyhow::Result<()> {
                let (_dir, meta, images) = stores();
                round_trip::$name(meta, images).await
            }
        )*};
    }

    round_trips!(
        sign_and_verify,
        tag_moved,
        artifact_deleted,
        old_timestamp_repushed,
        junk_timestamp_with_huge_version,
        junk_root_is_refused,
        multi_arch,
        freeze,
    );

    #[tokio::test]
    async fn blob_swapped() -> anyhow::Result<()> {
        let (dir, meta, images) = stores();
        let blobs = dir.path().join("blobs/sha256");
        round_trip::blob_swapped(meta, images, |d: &Digest, bytes: &[u8]| {
            std::fs::write(blobs.join(d.hex()), bytes)
        })
        .await
    }
}
