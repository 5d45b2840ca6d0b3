//! Registry threats (issue 9): what a registry, a mirror or anyone with push access can
//! serve besides signed bytes. One named test each, on both registries, through the
//! adversarial proxy; each asserts the exact refusal (or, for junk that must be skipped, the
//! genuine answer) and that the trusted state did not change.

use std::collections::BTreeMap;

use ocituf_oci::registry::RegistryError;
use ocituf_oci::Digest;
use ocituf_resolver::{Error, ErrorKind};
use ocituf_testkit::{forged_entry, AdversarialProxy, Behaviour, Match};
use ocituf_tuf::Error as Tuf;

use super::{is_digest_refusal, oci_error, tuf_error, Hostile, Kind, Registry};
use crate::on_both;

/// Listing annotations a writer would set for `version` of `class` in root of trust `rot`.
fn hints(rot: &str, role: &str, version: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("io.ocituf.root-of-trust".to_owned(), rot.to_owned()),
        ("io.ocituf.role".to_owned(), role.to_owned()),
        ("io.ocituf.version".to_owned(), version.to_owned()),
    ])
}

/// Forged artifacts claiming huge versions (`u64::MAX`, and one past it, which is not a
/// version at all), pointing at a genuine older timestamp: each is refused by its claim and
/// the genuine newest timestamp is used.
async fn forged_huge_version_annotation_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.publish_next().await;
    let v1 = f.manifest_of("timestamp", 1).await;
    let forged = vec![
        forged_entry(
            v1.as_str(),
            "timestamp",
            &hints("acme", "timestamp", "18446744073709551615"),
        ),
        forged_entry(
            v1.as_str(),
            "timestamp",
            &hints("acme", "timestamp", "18446744073709551616"),
        ),
    ];
    f.proxy.add(
        Match::listings_of("/acme/tuf/"),
        Behaviour::InjectEntries(forged),
    );
    let ok = f.resolve("1.0").await.unwrap();
    assert_eq!(ok.versions["timestamp"], 2);
}
on_both!(
    forged_huge_version_annotation,
    super::forged_huge_version_annotation_body
);

/// Forged `io.ocituf.*` annotations: every timestamp entry claims another root of trust.
/// The client takes none of them: the repository has no timestamp for it.
async fn forged_wrong_root_of_trust_annotation_body(kind: Kind) {
    let (f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    f.proxy.add(
        Match::listings(),
        Behaviour::Annotate {
            class: "timestamp".into(),
            key: "io.ocituf.root-of-trust".into(),
            value: "beta".into(),
        },
    );
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(
        matches!(tuf_error(&err), Tuf::NotFound { what } if what == "timestamp"),
        "{err:?}"
    );
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(
    forged_wrong_root_of_trust_annotation,
    super::forged_wrong_root_of_trust_annotation_body
);

/// Junk candidates must not make a refresh fail while a valid newer version is listed:
/// twenty timestamps pushed by someone with push access, claiming versions 100 to 119 and
/// signed by a key the root does not name, are tried and refused within the bound (32), and
/// the genuine v2 is used. (Before the resolver tried as many candidates as the source
/// examines, the ninth junk candidate made the refresh fail with the first one's error.)
async fn junk_candidates_do_not_hide_a_valid_newer_version_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.publish_next().await;
    f.push_junk_timestamps(100..120).await;
    let ok = f.resolve("1.0").await.unwrap();
    assert_eq!(ok.versions["timestamp"], 2);
}
on_both!(
    junk_candidates_do_not_hide_a_valid_newer_version,
    super::junk_candidates_do_not_hide_a_valid_newer_version_body
);

/// More junk than the candidate bound: a bounded denial of service, never acceptance. The
/// refusal names the first junk candidate (signed by no key of the root); the client made a
/// bounded number of requests; nothing changed in the trusted state.
async fn junk_candidates_beyond_the_bound_are_a_bounded_denial_of_service_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    f.publish_next().await;
    f.push_junk_timestamps(1000..1040).await;
    let trusted = f.trusted_state();
    let before = f.proxy.requests();
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(
        matches!(tuf_error(&err), Tuf::Threshold { role, valid: 0, threshold: 1 } if role == "timestamp"),
        "{err:?}"
    );
    let spent = f.proxy.requests() - before;
    // Twice (the resolver retries once without the remembered referrers capability), each
    // at most the listing, root and 32 candidates of three requests.
    assert!(spent <= 2 * (2 + 3 * 32), "{spent} requests");
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(
    junk_candidates_beyond_the_bound_are_a_bounded_denial_of_service,
    super::junk_candidates_beyond_the_bound_are_a_bounded_denial_of_service_body
);

/// Dropped referrers: the registry stops listing timestamps. The client says so and keeps
/// what it trusted.
async fn dropped_referrers_body(kind: Kind) {
    let (f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    f.proxy.add(
        Match::listings(),
        Behaviour::DropClass {
            class: "timestamp".into(),
        },
    );
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(
        matches!(tuf_error(&err), Tuf::NotFound { what } if what == "timestamp"),
        "{err:?}"
    );
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(dropped_referrers, super::dropped_referrers_body);

/// A huge referrers list (every entry 800 times, about 1 MB in one answer) against a client
/// whose index byte limit is 512 KiB (the default is 4 MiB; a smaller one keeps the proxy's
/// debug-build rewriting fast): the native API page and the fallback index both stop there.
async fn huge_referrers_list_body(kind: Kind) {
    let (f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    f.proxy
        .add(Match::listings(), Behaviour::RepeatEntries(800));
    let options = ocituf_oci::RegistryOptions {
        index_max_len: 512 * 1024,
        ..super::client_options()
    };
    let err = f.resolve_with("1.0", options).await.unwrap_err();
    assert!(
        matches!(
            tuf_error(&err),
            Tuf::Source(ocituf_tuf::SourceError::TooLarge {
                max_len: 524_288,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(huge_referrers_list, super::huge_referrers_list_body);

/// A huge list spread over pages that never end (1,400 entries a page): the native API stops
/// at the entry cap (10,000) before the page cap; the fallback index has no pages, so its
/// `Link` is ignored and 1,400 looping entries cost no more than the plain list.
async fn huge_referrers_list_over_pages_body(kind: Kind) {
    let (f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    f.proxy.add(
        Match::listings(),
        Behaviour::Many(vec![
            Behaviour::RepeatEntries(700),
            Behaviour::PaginateForever,
        ]),
    );
    let result = f.resolve("1.0").await;
    match kind {
        Kind::Native => {
            let err = result.unwrap_err();
            assert!(
                matches!(
                    oci_error(&err),
                    ocituf_oci::Error::Registry(RegistryError::ReferrersLimit {
                        what: "entries",
                        max: 10_000,
                        ..
                    })
                ),
                "{err:?}"
            );
        }
        Kind::Distribution => assert_eq!(result.unwrap().versions["timestamp"], 1),
    }
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(
    huge_referrers_list_over_pages,
    super::huge_referrers_list_over_pages_body
);

/// A looping referrers list (the same entries 200 times over) costs no more requests than
/// the plain list: the client resolves, within a handful of requests.
async fn looping_referrers_list_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.publish_next().await;
    f.proxy
        .add(Match::listings(), Behaviour::RepeatEntries(200));
    let before = f.proxy.requests();
    let ok = f.resolve("1.0").await.unwrap();
    assert_eq!(ok.versions["timestamp"], 2);
    let spent = f.proxy.requests() - before;
    assert!(spent <= 8, "{spent} requests: {:?}", f.proxy.log());
}
on_both!(looping_referrers_list, super::looping_referrers_list_body);

/// Referrers paginated forever: the native API stops at the page cap (16). A registry
/// without the API serves the fallback index as a manifest, where `Link` means nothing: it
/// is ignored and the client resolves.
async fn paginated_forever_referrers_body(kind: Kind) {
    let (f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    f.proxy.add(Match::listings(), Behaviour::PaginateForever);
    let result = f.resolve("1.0").await;
    match kind {
        Kind::Native => {
            let err = result.unwrap_err();
            assert!(
                matches!(
                    oci_error(&err),
                    ocituf_oci::Error::Registry(RegistryError::ReferrersLimit {
                        what: "pages",
                        max: 16,
                        ..
                    })
                ),
                "{err:?}"
            );
        }
        Kind::Distribution => assert_eq!(result.unwrap().versions["timestamp"], 1),
    }
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(
    paginated_forever_referrers,
    super::paginated_forever_referrers_body
);

/// An endless referrers listing: cut at the index byte limit.
async fn endless_referrers_listing_body(kind: Kind) {
    let (f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    f.proxy.add(Match::listings(), Behaviour::EndlessBody);
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(
        matches!(
            tuf_error(&err),
            Tuf::Source(ocituf_tuf::SourceError::TooLarge {
                max_len: 4_194_304,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(
    endless_referrers_listing,
    super::endless_referrers_listing_body
);

/// A blob swapped for other bytes (the new snapshot): refused by its digest.
async fn blob_swapped_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    let published = f.publish_next().await;
    let snap = Digest::of(&published["snapshot"]);
    let mut other = published["snapshot"].clone();
    other[10] ^= 1;
    f.proxy
        .add(Match::blob(snap.as_str()), Behaviour::ReplaceBody(other));
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(is_digest_refusal(&err, &snap), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Refused);
    f.assert_trusted(&trusted, &[&published["timestamp"]]);
}
on_both!(blob_swapped, super::blob_swapped_body);

/// `Content-Length` shorter than the body: the bytes read are cut, and the cut blob fails
/// its digest.
async fn wrong_content_length_shorter_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    let published = f.publish_next().await;
    let snap = Digest::of(&published["snapshot"]);
    f.proxy.add(
        Match::blob(snap.as_str()),
        Behaviour::WrongContentLength { delta: -7 },
    );
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(is_digest_refusal(&err, &snap), "{err:?}");
    f.assert_trusted(&trusted, &[&published["timestamp"]]);
}
on_both!(
    wrong_content_length_shorter,
    super::wrong_content_length_shorter_body
);

/// `Content-Length` longer than the body (the registry hangs up early), and so longer than
/// the length the trusted timestamp gives the snapshot: refused from the header.
async fn wrong_content_length_longer_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    let published = f.publish_next().await;
    let snap = Digest::of(&published["snapshot"]);
    f.proxy.add(
        Match::blob(snap.as_str()),
        Behaviour::WrongContentLength { delta: 100 },
    );
    let err = f.resolve("1.0").await.unwrap_err();
    // The declared length is over the signed one: refused before a byte is read.
    let len = published["snapshot"].len() as u64;
    assert!(
        matches!(
            tuf_error(&err),
            Tuf::Source(ocituf_tuf::SourceError::TooLarge { max_len, .. }) if *max_len == len
        ),
        "{err:?}"
    );
    f.assert_trusted(&trusted, &[&published["timestamp"]]);
}
on_both!(
    wrong_content_length_longer,
    super::wrong_content_length_longer_body
);

/// A bad `Docker-Content-Digest` on the image manifest: the client hashes what it received
/// and refuses the answer whose header disagrees.
async fn bad_digest_header_body(kind: Kind) {
    let (f, _) = Hostile::start(kind).await;
    let (evil, _) = f.push_image("evil", "evil").await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    f.proxy.add(
        Match::path("/v2/acme/app/manifests/1.0"),
        Behaviour::WrongDigestHeader {
            digest: evil.to_string(),
        },
    );
    let err = f.resolve("1.0").await.unwrap_err();
    match &err {
        Error::ImageFetch { source, .. } => assert!(
            matches!(
                **source,
                ocituf_oci::Error::Registry(RegistryError::DigestMismatch { .. })
            ),
            "{source:?}"
        ),
        other => panic!("expected ImageFetch, got {other:?}"),
    }
    assert_eq!(f.trusted_state(), trusted);
}
on_both!(bad_digest_header, super::bad_digest_header_body);

/// A redirect to another loopback port, where another (lying) server swaps the blob: the
/// redirect is followed and the bytes are refused by their digest.
async fn redirect_to_another_port_serving_other_bytes_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    let published = f.publish_next().await;
    let snap = Digest::of(&published["snapshot"]);
    let elsewhere = AdversarialProxy::start(f.registry.addr());
    elsewhere.add(
        Match::blob(snap.as_str()),
        Behaviour::ReplaceBody(b"{\"signed\":{}}".to_vec()),
    );
    f.proxy.add(
        Match::blob(snap.as_str()),
        Behaviour::RedirectTo {
            base: format!("http://{}", elsewhere.addr()),
        },
    );
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(is_digest_refusal(&err, &snap), "{err:?}");
    assert!(elsewhere.requests() >= 1);
    f.assert_trusted(&trusted, &[&published["timestamp"]]);
}
on_both!(
    redirect_to_another_port_serving_other_bytes,
    super::redirect_to_another_port_serving_other_bytes_body
);

/// Redirects between two loopback ports forever: stopped after 5 hops.
async fn redirect_loop_body(kind: Kind) {
    let (mut f, _) = Hostile::start(kind).await;
    f.resolve("1.0").await.unwrap();
    let trusted = f.trusted_state();
    let published = f.publish_next().await;
    let snap = Digest::of(&published["snapshot"]);
    let other = AdversarialProxy::start(f.registry.addr());
    other.add(
        Match::blob(snap.as_str()),
        Behaviour::RedirectTo {
            base: format!("http://{}", f.proxy.addr()),
        },
    );
    f.proxy.add(
        Match::blob(snap.as_str()),
        Behaviour::RedirectTo {
            base: format!("http://{}", other.addr()),
        },
    );
    let err = f.resolve("1.0").await.unwrap_err();
    assert!(
        matches!(oci_error(&err), ocituf_oci::Error::Registry(_)),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Network);
    assert!(other.requests() <= 2 * 3, "{} hops", other.requests());
    f.assert_trusted(&trusted, &[&published["timestamp"]]);
}
on_both!(redirect_loop, super::redirect_loop_body);

/// Cross-organization cut and paste: two organizations on one registry both name their root
/// of trust `acme` in their own repositories; the registry serves `beta/tuf` where the client
/// asked for `acme/tuf`. Beta's timestamp is not signed by acme's keys.
async fn cross_org_cut_and_paste_body(kind: Kind) {
    let registry = Registry::start(kind);
    let proxy = AdversarialProxy::start(registry.addr());
    let (acme, _) = super::Hostile::org_on(registry, proxy, "acme").await;
    // A second organization "beta" whose repository is beta/tuf, root of trust also "acme".
    let beta_publisher = ocituf_oci::Publisher::new(
        ocituf_oci::RegistryRepo::open(
            &format!("{}/beta/tuf", acme.registry.addr()),
            super::client_options(),
        )
        .unwrap(),
        ocituf_oci::RootOfTrustName::parse("acme").unwrap(),
    );
    let beta_key =
        ocituf_tuf::crypto::PrivateKey::generate(ocituf_tuf::crypto::KeyKind::Ed25519).unwrap();
    let mut beta = ocituf_tuf::repo::Repository::new(
        time::OffsetDateTime::now_utc() + time::Duration::days(1),
    );
    beta.meta_hashes = true;
    for role in ocituf_tuf::metadata::TOP_LEVEL_ROLES {
        beta.add_signer_key(role, &beta_key).unwrap();
    }
    for _ in 0..3 {
        // Newer versions than acme's, as an attacker would pick.
        let exp = time::OffsetDateTime::now_utc() + time::Duration::days(1);
        for role in ["targets", "snapshot", "timestamp"] {
            beta.bump(role, exp).unwrap();
        }
    }
    let signers: [&dyn ocituf_tuf::crypto::Signer; 1] = [&beta_key];
    let root = beta.sign_root(&signers).unwrap();
    beta_publisher.push("root", &root, None).await.unwrap();
    let t = beta.sign_targets("targets", &signers).unwrap();
    beta_publisher.push("targets", &t, None).await.unwrap();
    let s = beta.sign_snapshot(&signers).unwrap();
    beta_publisher.push("snapshot", &s, None).await.unwrap();
    let ts = beta.sign_timestamp(&signers).unwrap();
    beta_publisher.push("timestamp", &ts, None).await.unwrap();

    acme.resolve("1.0").await.unwrap();
    let trusted = acme.trusted_state();
    acme.proxy.add(
        Match::path("/v2/acme/tuf/"),
        Behaviour::Rewrite {
            from: "/v2/acme/tuf/".into(),
            to: "/v2/beta/tuf/".into(),
        },
    );
    let err = acme.resolve("1.0").await.unwrap_err();
    assert!(
        matches!(tuf_error(&err), Tuf::Threshold { role, valid: 0, threshold: 1 } if role == "timestamp"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert_eq!(acme.trusted_state(), trusted);
}
on_both!(cross_org_cut_and_paste, super::cross_org_cut_and_paste_body);
