//! Property: for random images (some tags sharing one manifest) signed and then partly
//! yanked, into a random number of hash bins, the names that verify are exactly the ones
//! signed minus the ones yanked, in every name form.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::fixture::{forms, Org, Place, Shape};

proptest! {
    #![proptest_config(ProptestConfig { cases: 5, ..ProptestConfig::default() })]

    #[test]
    fn verified_names_are_signed_minus_yanked(
        bits in 1u32..=5,
        // tag i names manifest content[i] (small range: tags share manifests).
        content in proptest::collection::vec(0u8..3, 1..=5),
        yank in proptest::collection::vec(any::<bool>(), 5),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(check(1 << bits, &content, &yank));
    }
}

async fn check(bins: u32, content: &[u8], yank: &[bool]) {
    let org = Org::new(Place::layout(), Shape::Bins(bins)).await;
    let mut digests = BTreeMap::new();
    let mut tags = Vec::new();
    for (i, c) in content.iter().enumerate() {
        let tag = format!("v{i}");
        // Same content, same manifest: push under the first tag's message.
        let digest = org.push_image_with(&tag, &format!("content {c}")).await;
        digests.insert(tag.clone(), digest);
        tags.push(tag);
        let w = org.sign(&tags[i]).await;
        assert!(w.warnings.is_empty(), "{w:?}");
    }
    let yanked: BTreeSet<&String> = tags
        .iter()
        .zip(yank)
        .filter(|(_, y)| **y)
        .map(|(t, _)| t)
        .collect();
    for t in &yanked {
        org.yank(t).await;
    }
    org.publish().await;
    let live: BTreeSet<_> = tags
        .iter()
        .filter(|t| !yanked.contains(t))
        .map(|t| digests[t].clone())
        .collect();
    for tag in &tags {
        let d = &digests[tag];
        let [by_tag, by_digest, both] = forms(tag, d);
        let tag_ok = !yanked.contains(tag);
        for (form, expect) in [
            (by_tag, tag_ok),
            (both, tag_ok),
            (by_digest, live.contains(d)),
        ] {
            let got = org.verify(&form).await;
            assert_eq!(
                got.is_ok(),
                expect,
                "{bins} bins, content {content:?}, yanked {yanked:?}: acme/app{form} gave {got:?}"
            );
            if let Ok(v) = got {
                assert_eq!(&v, d);
            }
        }
    }
}
