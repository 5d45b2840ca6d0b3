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
);
