//! What signing one image into succinct hash bins costs the store: the same number of calls
//! (and, on the registry, of HTTP requests) at 16 bins and at 1,024, with the bins filled by
//! the large-repository generator. Only the roles the delegation search visits for the two
//! names are read (targets, app, the tag's bin, the digest's bin), and only the two bins
//! are written (docs/oci-mapping.md §6.1, "writers").

use std::collections::{BTreeMap, BTreeSet};

use ocituf_oci::image::{digest_target, tag_target};
use ocituf_resolver::AnyStore;
use ocituf_tuf::crypto::Signer;
use ocituf_tuf::metadata::{Role as _, SuccinctRoles, TargetFile, Targets, SPEC_VERSION};
use ocituf_writer::generate::synthetic_images;
use ocituf_writer::meter::StoreCalls;
use ocituf_writer::sign::{sign_image, target_names, ImageManifest, ImageToSign};
use ocituf_writer::{sign_envelope, State};

use crate::fixture::{in_days, Org, Place, Shape};

/// Store calls of one `sign` of one image whose tag and digest land in two bins that have
/// versions: the root chain (a listing and root version 1), then a listing and a blob for
/// each of targets, app and the two bins; per bin written, the fresh base (a listing and a
/// blob), the push (the anchor's HEAD, the metadata blob and the manifest), the read-back and
/// the confirmation after the pause (a listing and a blob each).
pub const SIGN_INTO_BINS_STORE_CALLS: u64 = 2 + 4 * 2 + 2 * (2 + 3 + 2 + 2);

/// Images generated into the bins before the measured signature.
const FILL_IMAGES: usize = 512;

/// The succinct delegation of app, as the writer reads it.
async fn bins_of(org: &Org) -> SuccinctRoles {
    let state = State::load_for(&org.repo, Some(&org.pin), &["acme/app:x".to_owned()])
        .await
        .unwrap();
    state
        .targets_of("app")
        .and_then(|t| t.delegations.clone())
        .and_then(|d| d.succinct_roles)
        .unwrap()
}

/// `FILL_IMAGES` generated images, both names of each in its bin: one version 1 per bin,
/// pushed directly (what `sign_images` writes, without its per-role confirmation pause, so
/// that filling 1,024 bins takes seconds). Returns the bins written.
async fn fill(org: &Org, bins: &SuccinctRoles) -> BTreeSet<String> {
    let mut images = synthetic_images("acme", 1, FILL_IMAGES, 3);
    for i in &mut images {
        "acme/app".clone_into(&mut i.repository);
    }
    let files: BTreeMap<String, TargetFile> = target_names(&images)
        .into_iter()
        .zip(images.iter().flat_map(|i| {
            let f = i.manifest.target_file();
            [f.clone(), f]
        }))
        .collect();
    let mut by_bin: BTreeMap<String, BTreeMap<String, TargetFile>> = BTreeMap::new();
    for (name, file) in files {
        by_bin
            .entry(bins.role_for_target(&name))
            .or_default()
            .insert(name, file);
    }
    let signers: [&dyn Signer; 1] = [org.team.as_ref()];
    let filled = by_bin.keys().cloned().collect();
    for (bin, targets) in by_bin {
        let t = Targets {
            spec_version: SPEC_VERSION.to_owned(),
            version: 1,
            expires: in_days(30),
            targets,
            delegations: None,
            extra: BTreeMap::new(),
        };
        let (_, bytes) = sign_envelope(t.to_signed().unwrap(), &signers, Vec::new()).unwrap();
        org.repo.push(&bin, &bytes, None).await.unwrap();
    }
    filled
}

/// An image (not in the fill) whose tag name and digest name land in different bins, both
/// of them `filled`.
fn two_bin_image(bins: &SuccinctRoles, filled: &BTreeSet<String>) -> ImageToSign {
    synthetic_images("acme", 1, 64, 99)
        .into_iter()
        .map(|mut i| {
            "acme/app".clone_into(&mut i.repository);
            i
        })
        .find(|i| {
            let tag = bins.role_for_target(&tag_target(&i.repository, &i.tag));
            let digest = bins.role_for_target(&digest_target(&i.repository, &i.manifest.digest));
            tag != digest && filled.contains(&tag) && filled.contains(&digest)
        })
        .unwrap()
}

/// HTTP requests the registry client made so far (`None` on a layout).
fn http_requests(org: &Org) -> Option<u64> {
    match &org.repo.store {
        AnyStore::Registry(r) => Some(r.client().request_count()),
        _ => None,
    }
}

/// What one sign costs at `count` bins in `place`: store calls, HTTP requests, and for
/// comparison the store calls of a full `State::load`.
async fn cost_of_one_sign(place: Place, count: u32) -> (StoreCalls, Option<u64>, u64) {
    let org = Org::new(place, Shape::Bins(count)).await;
    let bins = bins_of(&org).await;
    let filled = fill(&org, &bins).await;
    let image = two_bin_image(&bins, &filled);
    let manifest: &ImageManifest = &image.manifest;

    let (calls, http) = (org.repo.store_calls(), http_requests(&org));
    let names = target_names(std::slice::from_ref(&image));
    let state = State::load_for(&org.repo, Some(&org.pin), &names)
        .await
        .unwrap();
    let w = sign_image(
        &org.repo,
        &state,
        &image.repository,
        &image.tag,
        manifest,
        &org.who(),
    )
    .await
    .unwrap();
    let cost = org.repo.store_calls().since(&calls);
    let http = http_requests(&org)
        .zip(http)
        .map(|(after, before)| after - before);
    assert_eq!(w.roles.len(), 2, "{w:?}");

    // For comparison: what loading every role costs (what `sign` did before).
    let before = org.repo.store_calls();
    let full = State::load(&org.repo, Some(&org.pin)).await.unwrap();
    let full_calls = org.repo.store_calls().since(&before).total();
    for name in &names {
        let bin = bins.role_for_target(name);
        assert!(
            full.targets_of(&bin)
                .is_some_and(|t| t.targets.contains_key(name)),
            "{name} is not in {bin}"
        );
    }
    eprintln!(
        "{count} bins on {}: sign {cost:?}, {http:?} HTTP requests; full state load {full_calls} calls",
        org.repo.location
    );
    (cost, http, full_calls)
}

async fn same_cost_at_16_and_1024_bins(place: fn() -> Place) {
    let (small, small_http, small_full) = cost_of_one_sign(place(), 16).await;
    let (large, large_http, large_full) = cost_of_one_sign(place(), 1024).await;
    assert_eq!(small.total(), SIGN_INTO_BINS_STORE_CALLS, "{small:?}");
    assert_eq!(large.total(), SIGN_INTO_BINS_STORE_CALLS, "{large:?}");
    assert_eq!(
        (large.listings, large.reads, large.writes),
        (small.listings, small.reads, small.writes)
    );
    assert_eq!(large_http, small_http, "HTTP requests");
    // Bytes: the bins read and written, smaller when the same images spread over more bins.
    assert!(large.bytes_read <= small.bytes_read, "{large:?} {small:?}");
    // The full walk reads every bin: what the bound saves.
    assert!(
        small_full > 16 && large_full > 1024,
        "{small_full} {large_full}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_one_image_into_hash_bins_costs_the_same_at_16_and_1024_bins_on_a_layout() {
    same_cost_at_16_and_1024_bins(Place::layout).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_one_image_into_hash_bins_costs_the_same_at_16_and_1024_bins_on_the_registry() {
    same_cost_at_16_and_1024_bins(Place::distribution).await;
}
