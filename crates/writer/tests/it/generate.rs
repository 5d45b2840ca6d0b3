//! The large-repository generator and batch signing into hash bins: 1,000 generated images
//! (2,000 target names) signed in ONE run land in the bins the delegation search routes
//! them to, with one new version per bin touched.

use ocituf_writer::generate::synthetic_images;
use ocituf_writer::sign::sign_images;

use crate::fixture::{Org, Place, Shape};

#[tokio::test]
async fn a_thousand_generated_images_signed_in_one_batch_land_in_their_bins() {
    let org = Org::new(Place::layout(), Shape::Bins(16)).await;
    // The fixture delegates acme/app:* and acme/app@*: generate into that one repository.
    let mut images = synthetic_images("acme", 1, 1000, 42);
    for i in &mut images {
        i.repository = "acme/app".to_owned();
        i.tag = format!("t{}", i.tag.replace('.', "-"));
    }
    let before = org.state().await;
    let w = sign_images(&org.repo, &before, &images, &org.who())
        .await
        .unwrap();
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
    // One version per bin touched, not one per image: 2,000 names over 16 bins.
    assert!(w.roles.len() <= 16, "{} role versions", w.roles.len());
    assert!(
        w.roles.len() >= 8,
        "names spread over the bins: {}",
        w.roles.len()
    );

    let state = org.state().await;
    let mut listed = 0;
    for role in &state.order {
        if let Some(t) = state.targets_of(role) {
            for name in t.targets.keys() {
                assert!(state.trusted_for(role, name), "{name} in {role}");
            }
            listed += t.targets.len();
        }
    }
    assert_eq!(listed, 2000, "every tag and digest name, once");
    for i in images.iter().step_by(97) {
        let name = format!("{}:{}", i.repository, i.tag);
        let in_roles: Vec<_> = state
            .order
            .iter()
            .filter(|r| {
                state
                    .targets_of(r)
                    .is_some_and(|t| t.targets.contains_key(&name))
            })
            .collect();
        assert_eq!(in_roles.len(), 1, "{name}: {in_roles:?}");
    }
}
