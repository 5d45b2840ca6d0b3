//! Writers racing for one targets role, with the race laid out step by step (no timing).

use ocituf_oci::mapping::{RoleVersionInfo, RoleVersionManifest, RootOfTrustName};
use ocituf_resolver::ImageReference;
use ocituf_tuf::crypto::Signer;
use ocituf_tuf::metadata::{Role as _, Targets};
use ocituf_writer::sign_envelope;
use time::Duration;

use crate::fixture::{in_days, Org, Place, Shape};

/// The failure of the 16-publisher signer test on the referrers registry: a job read role
/// `app` at version 1, stalled, and pushed its version 2 long after another job's version 2
/// had been confirmed (the writer returned, the image was reported signed). Both versions 2
/// stay listed; the late one has the lower manifest digest, so a writer's state picks it.
/// The next writer built version 3 on the late sibling alone, the late job found its own
/// image in version 3 and stopped, and the confirmed image was in no newest version again.
#[tokio::test]
async fn late_sibling_on_an_old_parent_loses_no_confirmed_image() {
    let org = Org::new(Place::layout(), Shape::Flat).await;
    org.push_image("base").await;
    org.sign("base").await;
    let (Some(old), _) = org.state().await.targets["app"].clone() else {
        panic!("no version of app after the first signature");
    };

    let confirmed = org.push_image("confirmed").await;
    let w = org.sign("confirmed").await;
    assert_eq!(w.roles[0].version, old.version + 1);
    let winner = org.state().await.targets["app"].0.clone().unwrap();

    // The late job: its edit on the old version, pushed now with the old parent, at the
    // same version number as the confirmed one and sorting before it.
    let late = org.push_image("late").await;
    let pushed = push_sibling(&org, &old, &["late"], winner.version, &winner.manifest).await;
    assert_picked(&org, &pushed).await;

    let next = org.push_image("next").await;
    org.sign("next").await;

    let state = org.state().await;
    let newest = state.targets_of("app").unwrap();
    for tag in ["base", "confirmed", "late", "next"] {
        assert!(
            newest.targets.contains_key(&format!("acme/app:{tag}")),
            "{tag} is not in app version {}: {:?}",
            newest.version,
            newest.targets.keys().collect::<Vec<_>>()
        );
    }
    org.publish().await;
    for (tag, digest) in [("confirmed", confirmed), ("late", late), ("next", next)] {
        assert_eq!(
            org.verify(&format!(":{tag}")).await.unwrap(),
            digest,
            "{tag}"
        );
    }
}

/// A fork in which every rival holds the change of the writer that comes next: version 2
/// {base, late, confirmed} (a merge whose writer confirmed "confirmed") and a late version
/// 2 {base, late} that sorts first. The writer of "late" finds its image in both; if it
/// stopped there, clients would get the late rival, without "confirmed", for good.
#[tokio::test]
async fn fork_that_hides_a_confirmed_image_is_merged_by_the_next_writer() {
    let org = Org::new(Place::layout(), Shape::Flat).await;
    org.push_image("base").await;
    org.sign("base").await;
    let (Some(old), _) = org.state().await.targets["app"].clone() else {
        panic!("no version of app after the first signature");
    };
    let confirmed = org.push_image("confirmed").await;
    let late = org.push_image("late").await;
    let next = old.version + 1;
    let merged = push_sibling(&org, &old, &["late", "confirmed"], next, &MAX_DIGEST).await;
    let hiding = push_sibling(&org, &old, &["late"], next, &merged).await;
    assert_picked(&org, &hiding).await;

    org.sign("late").await;

    let state = org.state().await;
    assert!(!state.forked.contains("app"), "app is still forked");
    let newest = state.targets_of("app").unwrap();
    assert!(
        newest.targets.contains_key("acme/app:confirmed"),
        "confirmed is not in app version {}",
        newest.version
    );
    org.publish().await;
    for (tag, digest) in [("confirmed", confirmed), ("late", late)] {
        assert_eq!(
            org.verify(&format!(":{tag}")).await.unwrap(),
            digest,
            "{tag}"
        );
    }
}

/// Above every sha256 digest.
static MAX_DIGEST: std::sync::LazyLock<ocituf_oci::Digest> = std::sync::LazyLock::new(|| {
    ocituf_oci::Digest::parse(&format!("sha256:{}", "f".repeat(64))).unwrap()
});

/// Push version `version` of app built on `parent` plus the images tagged `tags` (both
/// names of each, as `ocituf sign` writes them; signed
/// by the team, `io.ocituf.parent` = `parent`), whose manifest digest sorts before `below`:
/// the version a slow writer pushes long after it read `parent`.
async fn push_sibling(
    org: &Org,
    parent: &ocituf_writer::Found,
    tags: &[&str],
    version: u64,
    below: &ocituf_oci::Digest,
) -> ocituf_oci::Digest {
    let mut t = Targets::from_signed(&parent.envelope.signed).unwrap();
    for tag in tags {
        let image = ImageReference::parse(&org.place.repo(&format!("acme/app:{tag}"))).unwrap();
        let store = ocituf_resolver::store::open(&image.repo).unwrap();
        let manifest = ocituf_writer::sign::image_manifest(&store, &image)
            .await
            .unwrap();
        // Both names `ocituf sign` writes: the tag and the digest.
        let file = manifest.target_file();
        t.targets.insert(format!("acme/app:{tag}"), file.clone());
        t.targets
            .insert(format!("acme/app@{}", manifest.digest), file);
    }
    t.version = version;
    let name = RootOfTrustName::parse("acme").unwrap();
    let signers: [&dyn Signer; 1] = [org.team.as_ref()];
    let bytes = (0..256)
        .find_map(|s| {
            t.expires = (in_days(30) + Duration::seconds(s))
                .replace_nanosecond(0)
                .unwrap();
            let (env, bytes) = sign_envelope(t.to_signed().unwrap(), &signers, Vec::new()).unwrap();
            let expires = env.signed["expires"].as_str().unwrap().to_owned();
            let info = RoleVersionInfo {
                root_of_trust: &name,
                role: "app",
                version,
                expires: &expires,
                parent: Some(&parent.manifest),
            };
            let m = RoleVersionManifest::build(&info, &bytes).unwrap();
            (m.digest < *below).then_some(bytes)
        })
        .expect("no sibling sorts before the given digest in 256 tries");
    org.repo
        .push("app", &bytes, Some(&parent.manifest))
        .await
        .unwrap()
}

/// The version a writer's state picks for app is `digest` (else the test laid out nothing).
async fn assert_picked(org: &Org, digest: &ocituf_oci::Digest) {
    let state = org.state().await;
    assert_eq!(
        state.targets["app"].0.as_ref().map(|f| &f.manifest),
        Some(digest),
        "the pushed sibling is not the version a writer's state picks"
    );
}
