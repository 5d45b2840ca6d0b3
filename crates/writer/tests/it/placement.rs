//! Where each name goes: a tag and its digest name in the bins the client's search picks,
//! stray names reported and cleaned up, and the warning only where no delegation reaches.

use ocituf_oci::image::{digest_target, tag_target};
use ocituf_resolver::Error as ResolveError;
use ocituf_tuf::crypto::PrivateKey;
use ocituf_tuf::metadata::{TargetFile, Targets};
use ocituf_writer::authority::Authority;
use ocituf_writer::delegate::{delegate, DelegateRequest};
use ocituf_writer::edit::update_targets_role;
use ocituf_writer::keys::SigningKey;
use ocituf_writer::sign::{sign_image, Signing};
use ocituf_writer::State;

use crate::fixture::{in_days, Org, Place, Shape};

/// The bin the client's delegation search picks for `name` (the deepest responsible role).
fn bin_of(state: &ocituf_writer::State, name: &str) -> String {
    state.responsible_roles(name).last().cloned().unwrap()
}

/// A tag of acme/app whose tag name and digest name land in different bins: sign writes
/// both bins, each name into its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_writes_the_tag_and_the_digest_into_their_own_bins() {
    let org = Org::new(Place::layout(), Shape::Bins(16)).await;
    let state = org.state().await;
    let mut found = None;
    for i in 0..32 {
        let tag = format!("t{i}");
        let digest = org.push_image(&tag).await;
        let (t, d) = (
            tag_target("acme/app", &tag),
            digest_target("acme/app", &digest),
        );
        if bin_of(&state, &t) != bin_of(&state, &d) {
            found = Some((tag, t, d));
            break;
        }
    }
    let (tag, t, d) = found.expect("32 images all hash tag and digest to one bin of 16");
    let w = org.sign(&tag).await;
    let written: Vec<(String, Vec<String>)> = w
        .roles
        .iter()
        .map(|r| (r.role.clone(), r.names.clone()))
        .collect();
    assert_eq!(
        written,
        vec![
            (bin_of(&state, &t), vec![t.clone()]),
            (bin_of(&state, &d), vec![d.clone()])
        ]
    );
    let after = org.state().await;
    assert!(after
        .targets_of(&bin_of(&state, &d))
        .unwrap()
        .targets
        .contains_key(&d));
    assert!(!after
        .targets_of(&bin_of(&state, &t))
        .unwrap()
        .targets
        .contains_key(&d));
}

/// Metadata written the old way (a digest name in its tag's bin) is not trusted by the
/// client, is reported by `stray_targets`, and goes away with the next write to that bin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_digest_name_in_the_tags_bin_is_untrusted_reported_and_cleaned_up() {
    let org = Org::new(Place::layout(), Shape::Bins(16)).await;
    let state = org.state().await;
    let mut chosen = None;
    for i in 0..32 {
        let tag = format!("s{i}");
        let digest = org.push_image(&tag).await;
        let (t, d) = (
            tag_target("acme/app", &tag),
            digest_target("acme/app", &digest),
        );
        if bin_of(&state, &t) != bin_of(&state, &d) {
            chosen = Some((tag, digest, t, d));
            break;
        }
    }
    let (tag, digest, t, d) = chosen.unwrap();
    let bin = bin_of(&state, &t);
    // Write both names into the tag's bin, as `ocituf sign` did before names were routed.
    let image = ocituf_resolver::ImageReference::parse(&org.place.repo(&format!("acme/app:{tag}")))
        .unwrap();
    let store = ocituf_resolver::store::open(&image.repo).unwrap();
    let file: TargetFile = ocituf_writer::sign::image_manifest(&store, &image)
        .await
        .unwrap()
        .target_file();
    let (base, auth): (_, Authority) = state.targets[&bin].clone();
    let edit = |x: &mut Targets| -> ocituf_writer::Result<bool> {
        let a = x.targets.insert(t.clone(), file.clone()).is_none();
        let b = x.targets.insert(d.clone(), file.clone()).is_none();
        Ok(a || b)
    };
    update_targets_role(
        &org.repo,
        &bin,
        &auth,
        &[org.team.as_ref()],
        in_days(30),
        base,
        &edit,
    )
    .await
    .unwrap();
    org.publish().await;

    let state = org.state().await;
    assert_eq!(
        state.stray_targets(),
        vec![ocituf_writer::StrayTarget {
            role: bin.clone(),
            name: d.clone()
        }]
    );
    assert_eq!(org.verify(&format!(":{tag}")).await.unwrap(), digest);
    // The digest's own bin has never been written, so the snapshot does not list it: the
    // client refuses there (TUF 5.6: a delegated role must be in the snapshot) and never
    // looks in the tag's bin.
    let by_digest = org.verify(&format!("@{digest}")).await;
    let digest_bin = bin_of(&state, &d);
    assert!(
        matches!(
            &by_digest,
            Err(ResolveError::Metadata { source, .. })
                if matches!(&**source, ocituf_tuf::Error::MissingMeta { role } if *role == digest_bin)
        ),
        "{by_digest:?}"
    );

    // The next write to that bin: another image whose tag hashes there.
    let mut next = None;
    for i in 0..256 {
        let tag = format!("n{i}");
        if bin_of(&state, &tag_target("acme/app", &tag)) == bin {
            next = Some(tag);
            break;
        }
    }
    let next = next.unwrap();
    org.push_image(&next).await;
    org.sign(&next).await;
    org.publish().await;
    let state = org.state().await;
    assert_eq!(state.stray_targets(), Vec::new());
    assert!(!state.targets_of(&bin).unwrap().targets.contains_key(&d));
    // The tag stays signed; its digest name is signed only once `sign` puts it in its bin.
    assert_eq!(org.verify(&format!(":{tag}")).await.unwrap(), digest);
    org.sign(&tag).await;
    org.publish().await;
    assert_eq!(org.verify(&format!("@{digest}")).await.unwrap(), digest);
}

/// Without a delegation of `acme/app@*`, the digest name is left out with a warning that
/// says no delegation reaches it; with one (every matrix shape), there is no warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_name_warning_only_when_no_delegation_reaches_it() {
    let org = Org::new(Place::layout(), Shape::TagsOnly).await;
    let digest = org.push_image("v1").await;
    let w = org.sign("v1").await;
    assert_eq!(w.roles.len(), 1, "{w:?}");
    assert_eq!(w.warnings.len(), 1, "{w:?}");
    let warning = &w.warnings[0];
    assert!(
        warning.starts_with(&format!(
            "acme/app@{digest} is left out: none of the given keys"
        )) && warning.contains("no delegation reaches it"),
        "{warning}"
    );
    org.publish().await;
    assert_eq!(org.verify(":v1").await.unwrap(), digest);
    let by_digest = org.verify(&format!("@{digest}")).await;
    assert!(
        matches!(by_digest, Err(ResolveError::NotSigned { .. })),
        "{by_digest:?}"
    );

    let bins = Org::new(Place::layout(), Shape::Bins(16)).await;
    bins.push_image("v1").await;
    assert_eq!(bins.sign("v1").await.warnings, Vec::<String>::new());
}

/// TUF 5.6.7.2.2: a terminating delegation ends the whole search, not only its delegator's
/// other children. With targets → apps → app (terminating) and targets → other, all for
/// acme/app names, the client never reaches "other" for them: the writer's search (full
/// and lazy) stops there too, reads nothing of "other", and refuses to sign with its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_delegation_deep_in_the_tree_ends_the_writers_search_too() {
    let org = Org::new(Place::layout(), Shape::Nested).await;
    let seeded =
        |s: u8| -> SigningKey { Box::new(PrivateKey::ed25519_from_seed([s; 32]).unwrap()) };
    // The fixture's keys by seed: owner 1, apps 3; "other" gets 4.
    let app_paths = ["acme/app:*".to_owned(), "acme/app@*".to_owned()];
    let request = |from, role, keys, terminating, paths, signing_keys| DelegateRequest {
        from,
        role,
        keys,
        threshold: 1,
        terminating,
        paths,
        signing_keys,
        expires: in_days(30),
        hash_bins: None,
    };
    let team = [org.team.public_key().clone()];
    let apps_key = [seeded(3)];
    delegate(
        &org.repo,
        Some(&org.pin),
        &request("apps", "app", &team, true, &app_paths, &apps_key),
    )
    .await
    .unwrap();
    let other = [seeded(4)];
    let other_public = [other[0].public_key().clone()];
    let owner = [seeded(1)];
    delegate(
        &org.repo,
        Some(&org.pin),
        &request(
            "targets",
            "other",
            &other_public,
            false,
            &["acme/*".to_owned()],
            &owner,
        ),
    )
    .await
    .unwrap();

    let digest = org.push_image("t").await;
    let names = ["acme/app:t".to_owned(), format!("acme/app@{digest}")];
    let full = org.state().await;
    assert!(full.targets.contains_key("other"));
    assert_eq!(
        full.responsible_roles(&names[0]),
        ["targets", "apps", "app"]
    );
    let lazy = State::load_for(&org.repo, Some(&org.pin), &names)
        .await
        .unwrap();
    assert_eq!(lazy.order, ["targets", "apps", "app"]);

    let image = ocituf_resolver::ImageReference::parse(&org.place.repo("acme/app:t")).unwrap();
    let store = ocituf_resolver::store::open(&image.repo).unwrap();
    let manifest = ocituf_writer::sign::image_manifest(&store, &image)
        .await
        .unwrap();
    let who = Signing {
        keys: &other,
        role: None,
        expires: in_days(30),
    };
    let refused = sign_image(&org.repo, &lazy, "acme/app", "t", &manifest, &who).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.message.contains("none of the given keys")),
        "{refused:?}"
    );
    let w = org.sign("t").await;
    assert_eq!(w.roles[0].role, "app");
}

/// Whether another tag still names a yanked image's manifest needs every role (another tag
/// may hash to any bin): a yank of a signed image refuses a state that read only the
/// roles of its names, rather than dropping a digest name another tag's pulls use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yank_of_a_signed_image_refuses_a_partial_state() {
    let org = Org::new(Place::layout(), Shape::Bins(16)).await;
    org.push_image("y").await;
    org.sign("y").await;
    let partial = State::load_for(&org.repo, Some(&org.pin), &["acme/app:y".to_owned()])
        .await
        .unwrap();
    let refused =
        ocituf_writer::sign::yank_image(&org.repo, &partial, "acme/app", "y", &org.who()).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.message.contains("needs every targets role")),
        "{refused:?}"
    );
    let w = org.yank("y").await;
    assert_eq!(w.roles.len(), 2, "the tag and its digest name: {w:?}");
}
