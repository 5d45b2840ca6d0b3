//! Delegation shapes x name forms x stores: every image signed with `sign_image` verifies by
//! tag, by digest alone and by tag@digest; after `yank_image` every form is refused, and
//! the images left alone still verify (issue 13: with hash bins a digest name hashes to
//! another bin than its tag).

use ocituf_resolver::Error as ResolveError;

use crate::fixture::{forms, Org, Place, Shape};

/// Enough images that with 16 bins the tag and digest names of most land in other bins.
const IMAGES: usize = 6;

async fn sign_verify_yank(place: Place, shape: Shape, merkle: bool) {
    let org = if merkle {
        Org::new_merkle(place, shape).await
    } else {
        Org::new(place, shape).await
    };
    let mut images = Vec::new();
    for i in 0..IMAGES {
        let tag = format!("v{i}");
        let digest = org.push_image(&tag).await;
        let w = org.sign(&tag).await;
        assert!(w.warnings.is_empty(), "{shape:?} {tag}: {:?}", w.warnings);
        images.push((tag, digest));
    }
    org.publish().await;
    let snapshot = org.snapshot().await;
    let tree = ocituf_tuf::merkle::MerkleRoot::of_snapshot(&snapshot).unwrap();
    assert_eq!(tree.is_some(), merkle, "{shape:?}: {snapshot:?}");
    if merkle {
        assert_eq!(snapshot.meta.keys().collect::<Vec<_>>(), ["targets.json"]);
    }
    for (tag, digest) in &images {
        for form in forms(tag, digest) {
            let got = org.verify(&form).await;
            assert_eq!(
                got.as_ref().ok(),
                Some(digest),
                "{shape:?} acme/app{form}: {got:?}"
            );
        }
    }
    let state = org.state().await;
    assert_eq!(state.stray_targets(), Vec::new(), "{shape:?}");

    let (yanked, kept) = images.split_at(IMAGES / 2);
    for (tag, _) in yanked {
        let w = org.yank(tag).await;
        assert!(!w.roles.is_empty(), "{shape:?}: yank {tag} wrote nothing");
    }
    org.publish().await;
    for (tag, digest) in yanked {
        for form in forms(tag, digest) {
            let got = org.verify(&form).await;
            assert!(
                matches!(got, Err(ResolveError::NotSigned { .. })),
                "{shape:?} yanked acme/app{form} must be refused as not signed: {got:?}"
            );
        }
    }
    for (tag, digest) in kept {
        for form in forms(tag, digest) {
            let got = org.verify(&form).await;
            assert_eq!(
                got.as_ref().ok(),
                Some(digest),
                "{shape:?} kept acme/app{form}: {got:?}"
            );
        }
    }
}

macro_rules! matrix {
    ($($name:ident: $place:ident, $shape:expr, $merkle:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            sign_verify_yank(Place::$place(), $shape, $merkle).await;
        }
    )*};
}

matrix! {
    layout_flat: layout, Shape::Flat, false;
    layout_nested: layout, Shape::Nested, false;
    layout_terminating: layout, Shape::Terminating, false;
    layout_16_bins: layout, Shape::Bins(16), false;
    layout_1024_bins: layout, Shape::Bins(1024), false;
    distribution_flat: distribution, Shape::Flat, false;
    distribution_nested: distribution, Shape::Nested, false;
    distribution_terminating: distribution, Shape::Terminating, false;
    distribution_16_bins: distribution, Shape::Bins(16), false;
    distribution_1024_bins: distribution, Shape::Bins(1024), false;
    // Snapshots with a Merkle tree (TAP 16): the same matrix, roles proven through the tree.
    layout_flat_merkle: layout, Shape::Flat, true;
    layout_nested_merkle: layout, Shape::Nested, true;
    layout_terminating_merkle: layout, Shape::Terminating, true;
    layout_1024_bins_merkle: layout, Shape::Bins(1024), true;
    distribution_nested_merkle: distribution, Shape::Nested, true;
    distribution_16_bins_merkle: distribution, Shape::Bins(16), true;
}
