//! The registry behaviours docs/testing.md states, checked with exact status codes and
//! headers. ocituf's registry store is written against these.

use ocituf_testkit::{Distribution, DistributionOptions, ReferrersOptions, ReferrersRegistry};

use crate::http::{
    artifact, push_blob, put_manifest, request, sha256, EMPTY_DIGEST, OCI_INDEX, OCI_MANIFEST,
};

const ACCEPT_OCI: (&str, &str) = (
    "Accept",
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
);

/// Pushes the empty blob and an artifact manifest (no subject) tagged `tag`; returns its
/// digest and size.
fn push_plain(addr: &str, repo: &str, tag: &str) -> (String, usize) {
    push_blob(addr, repo, EMPTY_DIGEST, b"{}");
    let body = artifact("application/vnd.test.anchor", None, &[("tag", tag)]);
    let r = put_manifest(addr, repo, tag, OCI_MANIFEST, &body);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    (sha256(&body), body.len())
}

// ----- distribution 2.8.2 ---------------------------------------------------------------

#[test]
fn distribution_hides_oci_manifests_without_oci_accept() {
    let reg = Distribution::start();
    let addr = reg.addr();
    let (digest, _) = push_plain(addr, "acme/tuf", "anchor");
    for reference in ["anchor", digest.as_str()] {
        let path = format!("/v2/acme/tuf/manifests/{reference}");
        for method in ["GET", "HEAD"] {
            assert_eq!(
                request(addr, method, &path, &[], b"").status,
                404,
                "{method} {reference} without Accept"
            );
            let ok = request(addr, method, &path, &[ACCEPT_OCI], b"");
            assert_eq!(ok.status, 200, "{method} {reference} with Accept");
            assert_eq!(ok.header("docker-content-digest"), Some(digest.as_str()));
        }
    }
    let r = request(addr, "GET", "/v2/acme/tuf/manifests/anchor", &[], b"");
    assert_eq!(r.error_code(), "MANIFEST_UNKNOWN");
}

#[test]
fn distribution_has_no_referrers_api_and_no_oci_subject_header() {
    let reg = Distribution::start();
    let addr = reg.addr();
    let (subject, size) = push_plain(addr, "acme/tuf", "anchor");
    let r = put_manifest(
        addr,
        "acme/tuf",
        "ref",
        OCI_MANIFEST,
        &artifact("a/b", Some((&subject, size)), &[]),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("oci-subject"), None);
    let r = request(
        addr,
        "GET",
        &format!("/v2/acme/tuf/referrers/{subject}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 404);
}

#[test]
fn distribution_refuses_a_fallback_index_listing_an_unknown_manifest() {
    let reg = Distribution::start();
    let addr = reg.addr();
    let (subject, size) = push_plain(addr, "acme/tuf", "anchor");
    let missing = artifact("a/b", Some((&subject, size)), &[]);
    let index = |m: &[u8]| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(m), "size": m.len(), "artifactType": "a/b"}],
        }))
        .unwrap()
    };
    let tag = subject.replace(':', "-");
    let r = put_manifest(addr, "acme/tuf", &tag, OCI_INDEX, &index(&missing));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    // Once the referrer is in the repository, the same index is accepted.
    assert_eq!(
        put_manifest(addr, "acme/tuf", &sha256(&missing), OCI_MANIFEST, &missing).status,
        201
    );
    assert_eq!(
        put_manifest(addr, "acme/tuf", &tag, OCI_INDEX, &index(&missing)).status,
        201
    );
}

#[test]
fn distribution_needs_blobs_in_the_same_repository() {
    let reg = Distribution::start();
    let addr = reg.addr();
    push_plain(addr, "one/repo", "x"); // the empty blob is now in one/repo only
    assert_eq!(std::fs::read(reg.blob_path(EMPTY_DIGEST)).unwrap(), b"{}");
    let m = artifact("a/b", None, &[]);
    let r = put_manifest(addr, "two/repo", "x", OCI_MANIFEST, &m);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    let mount = request(
        addr,
        "POST",
        &format!("/v2/two/repo/blobs/uploads/?mount={EMPTY_DIGEST}&from=one/repo"),
        &[],
        b"",
    );
    assert_eq!(mount.status, 201, "cross-repository mount");
    assert_eq!(
        put_manifest(addr, "two/repo", "x", OCI_MANIFEST, &m).status,
        201
    );
}

/// An artifact manifest of exactly `size` bytes (padded with an annotation).
fn manifest_of_size(size: usize) -> Vec<u8> {
    let base = artifact("a/b", None, &[("pad", "")]).len();
    let m = artifact("a/b", None, &[("pad", &"x".repeat(size - base))]);
    assert_eq!(m.len(), size);
    m
}

#[test]
fn distribution_caps_manifests_at_4_mib() {
    let reg = Distribution::start();
    let addr = reg.addr();
    push_plain(addr, "acme/tuf", "anchor");
    assert_eq!(
        put_manifest(
            addr,
            "acme/tuf",
            "big",
            OCI_MANIFEST,
            &manifest_of_size(4 << 20)
        )
        .status,
        201
    );
    let r = put_manifest(
        addr,
        "acme/tuf",
        "big",
        OCI_MANIFEST,
        &manifest_of_size((4 << 20) + 1),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );
}

#[test]
fn distribution_deletes_by_digest_only_and_untags() {
    let reg = Distribution::start();
    let addr = reg.addr();
    let (digest, _) = push_plain(addr, "acme/tuf", "anchor");
    let r = request(addr, "DELETE", "/v2/acme/tuf/manifests/anchor", &[], b"");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "DIGEST_INVALID"),
        "a tag cannot be deleted"
    );
    let r = request(
        addr,
        "DELETE",
        &format!("/v2/acme/tuf/manifests/{digest}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 202);
    assert_eq!(
        request(
            addr,
            "GET",
            "/v2/acme/tuf/manifests/anchor",
            &[ACCEPT_OCI],
            b""
        )
        .status,
        404,
        "the tag went with it"
    );
    let tags = request(addr, "GET", "/v2/acme/tuf/tags/list", &[], b"").json();
    assert!(tags["tags"].as_array().is_none_or(Vec::is_empty), "{tags}");
}

#[test]
fn distribution_config_is_overridden_by_registry_env_vars() {
    let reg = Distribution::start_with(DistributionOptions {
        env: vec![("REGISTRY_STORAGE_DELETE_ENABLED".into(), "false".into())],
        ..DistributionOptions::default()
    });
    let addr = reg.addr();
    let (digest, _) = push_plain(addr, "acme/tuf", "anchor");
    let r = request(
        addr,
        "DELETE",
        &format!("/v2/acme/tuf/manifests/{digest}"),
        &[],
        b"",
    );
    assert_eq!((r.status, r.error_code().as_str()), (405, "UNSUPPORTED"));
}

// ----- referrers-registry ---------------------------------------------------------------

#[test]
fn referrers_registry_put_with_subject_answers_oci_subject_and_location() {
    let reg = ReferrersRegistry::start();
    let addr = reg.addr();
    let (subject, size) = push_plain(addr, "acme/tuf", "anchor");
    let m = artifact(
        "application/vnd.tuf.timestamp.v1+json",
        Some((&subject, size)),
        &[],
    );
    let r = put_manifest(addr, "acme/tuf", &sha256(&m), OCI_MANIFEST, &m);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("oci-subject"), Some(subject.as_str()));
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/acme/tuf/manifests/{}", sha256(&m)).as_str())
    );
    assert_eq!(r.header("docker-content-digest"), Some(sha256(&m).as_str()));
    let plain = put_manifest(
        addr,
        "acme/tuf",
        "other",
        OCI_MANIFEST,
        &artifact("a/b", None, &[]),
    );
    assert_eq!((plain.status, plain.header("oci-subject")), (201, None));
}

#[test]
fn referrers_registry_lists_artifact_type_and_annotations_and_filters() {
    let reg = ReferrersRegistry::start();
    let addr = reg.addr();
    let (subject, size) = push_plain(addr, "acme/tuf", "anchor");
    let ts = artifact(
        "application/vnd.tuf.timestamp.v1+json",
        Some((&subject, size)),
        &[("io.ocituf.version", "3")],
    );
    // No artifactType: the descriptor takes config.mediaType.
    let mut untyped: serde_json::Value =
        serde_json::from_slice(&artifact("x", Some((&subject, size)), &[])).unwrap();
    untyped.as_object_mut().unwrap().remove("artifactType");
    let untyped = serde_json::to_vec(&untyped).unwrap();
    for m in [&ts, &untyped] {
        assert_eq!(
            put_manifest(addr, "acme/tuf", &sha256(m), OCI_MANIFEST, m).status,
            201
        );
    }
    let path = format!("/v2/acme/tuf/referrers/{subject}");
    let all = request(addr, "GET", &path, &[], b"");
    assert_eq!(all.status, 200);
    assert_eq!(all.header("content-type"), Some(OCI_INDEX));
    assert_eq!(all.header("oci-filters-applied"), None);
    let idx = all.json();
    let list = idx["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{idx}");
    let get = |d: &str| {
        list.iter()
            .find(|e| e["digest"] == d)
            .unwrap_or_else(|| panic!("{d} not in {idx}"))
    };
    assert_eq!(
        get(&sha256(&ts))["artifactType"],
        "application/vnd.tuf.timestamp.v1+json"
    );
    assert_eq!(get(&sha256(&ts))["annotations"]["io.ocituf.version"], "3");
    assert_eq!(get(&sha256(&ts))["size"], ts.len());
    assert_eq!(
        get(&sha256(&untyped))["artifactType"],
        "application/vnd.oci.empty.v1+json"
    );

    let filtered = request(
        addr,
        "GET",
        &format!("{path}?artifactType=application/vnd.tuf.timestamp.v1%2Bjson"),
        &[],
        b"",
    );
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    let f = filtered.json();
    assert_eq!(f["manifests"].as_array().unwrap().len(), 1, "{f}");
    assert_eq!(f["manifests"][0]["digest"], sha256(&ts));

    // A repository with nothing in it: an empty list, never 404.
    let empty = request(
        addr,
        "GET",
        &format!("/v2/no/such/referrers/{subject}"),
        &[],
        b"",
    );
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["manifests"], serde_json::json!([]));
    // Not a digest: 400.
    assert_eq!(
        request(addr, "GET", "/v2/acme/tuf/referrers/anchor", &[], b"").status,
        400
    );
}

#[test]
fn referrers_registry_paginates_with_link_when_asked() {
    let reg = ReferrersRegistry::start_with(ReferrersOptions {
        referrers_page_size: Some(2),
        ..ReferrersOptions::default()
    });
    let addr = reg.addr();
    let (subject, size) = push_plain(addr, "acme/tuf", "anchor");
    let mut digests = Vec::new();
    for v in ["1", "2", "3", "4", "5"] {
        let m = artifact("a/b", Some((&subject, size)), &[("v", v)]);
        assert_eq!(
            put_manifest(addr, "acme/tuf", &sha256(&m), OCI_MANIFEST, &m).status,
            201
        );
        digests.push(sha256(&m));
    }
    digests.sort();
    // Follow the Link headers by hand.
    let mut seen = Vec::new();
    let mut next = Some(format!("/v2/acme/tuf/referrers/{subject}"));
    let mut pages = 0;
    while let Some(path) = next.take() {
        pages += 1;
        assert!(pages <= 5, "pagination does not end");
        let r = request(addr, "GET", &path, &[], b"");
        assert_eq!(r.status, 200);
        for e in r.json()["manifests"].as_array().unwrap() {
            seen.push(e["digest"].as_str().unwrap().to_owned());
        }
        next = r.header("link").map(|l| {
            assert!(l.ends_with(r#">; rel="next""#), "{l}");
            l.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_owned()
        });
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, digests);
    // ORAS follows them too.
    let listed = crate::discover(addr, "acme/tuf", &subject, None, "v1.1-referrers-api");
    assert_eq!(listed.into_iter().map(|r| r.0).collect::<Vec<_>>(), digests);
}

#[test]
fn referrers_registry_refuses_bad_manifests() {
    let reg = ReferrersRegistry::start_with(ReferrersOptions {
        max_manifest_bytes: Some(4 << 20),
        ..ReferrersOptions::default()
    });
    let addr = reg.addr();
    let m = artifact("a/b", None, &[]);
    let wrong = sha256(b"something else");
    let r = put_manifest(addr, "acme/tuf", &wrong, OCI_MANIFEST, &m);
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    let r = put_manifest(addr, "acme/tuf", "x", OCI_MANIFEST, b"not json");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );
    assert_eq!(
        put_manifest(
            addr,
            "acme/tuf",
            "big",
            OCI_MANIFEST,
            &manifest_of_size(4 << 20)
        )
        .status,
        201
    );
    let r = put_manifest(
        addr,
        "acme/tuf",
        "big",
        OCI_MANIFEST,
        &manifest_of_size((4 << 20) + 1),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (413, "MANIFEST_INVALID")
    );
}

#[test]
fn referrers_registry_accept_head_and_delete() {
    let reg = ReferrersRegistry::start();
    let addr = reg.addr();
    let (subject, size) = push_plain(addr, "acme/tuf", "anchor");
    // ggcr ignores Accept: OCI manifests are served without it, GET and HEAD alike.
    for method in ["GET", "HEAD"] {
        let r = request(addr, method, "/v2/acme/tuf/manifests/anchor", &[], b"");
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(r.header("docker-content-digest"), Some(subject.as_str()));
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(r.header("content-length"), Some(size.to_string().as_str()));
    }
    // A referrer, deleted by digest, leaves the referrers list.
    let m = artifact("a/b", Some((&subject, size)), &[]);
    assert_eq!(
        put_manifest(addr, "acme/tuf", "sig", OCI_MANIFEST, &m).status,
        201
    );
    let list = |addr| {
        request(
            addr,
            "GET",
            &format!("/v2/acme/tuf/referrers/{subject}"),
            &[],
            b"",
        )
        .json()["manifests"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(list(addr), 1);
    assert_eq!(
        request(
            addr,
            "DELETE",
            &format!("/v2/acme/tuf/manifests/{}", sha256(&m)),
            &[],
            b""
        )
        .status,
        202
    );
    assert_eq!(list(addr), 0);
    // ... and its tag goes with it, as on distribution.
    assert_eq!(
        request(addr, "GET", "/v2/acme/tuf/manifests/sig", &[], b"").status,
        404
    );
    // Deleting a tag is allowed here (distribution refuses it); the manifest stays.
    assert_eq!(
        put_manifest(
            addr,
            "acme/tuf",
            "other",
            OCI_MANIFEST,
            &artifact("c/d", None, &[])
        )
        .status,
        201
    );
    assert_eq!(
        request(addr, "DELETE", "/v2/acme/tuf/manifests/other", &[], b"").status,
        202
    );
    assert_eq!(
        request(addr, "GET", "/v2/acme/tuf/manifests/other", &[], b"").status,
        404
    );
    let other = sha256(&artifact("c/d", None, &[]));
    assert_eq!(
        request(
            addr,
            "GET",
            &format!("/v2/acme/tuf/manifests/{other}"),
            &[],
            b""
        )
        .status,
        200
    );
}

#[test]
fn referrers_registry_tags_list_and_blobs() {
    let reg = ReferrersRegistry::start();
    let addr = reg.addr();
    push_plain(addr, "acme/tuf", "anchor");
    // Tags list: sorted, `n` with a Link, `last`.
    for t in ["b", "c"] {
        assert_eq!(
            put_manifest(addr, "acme/tuf", t, OCI_MANIFEST, &artifact(t, None, &[])).status,
            201
        );
    }
    let all = request(addr, "GET", "/v2/acme/tuf/tags/list", &[], b"").json();
    assert_eq!(all["tags"], serde_json::json!(["anchor", "b", "c"]));
    let first = request(addr, "GET", "/v2/acme/tuf/tags/list?n=2", &[], b"");
    assert_eq!(first.json()["tags"], serde_json::json!(["anchor", "b"]));
    assert_eq!(
        first.header("link"),
        Some(r#"</v2/acme/tuf/tags/list?last=b&n=2>; rel="next""#)
    );
    let rest = request(addr, "GET", "/v2/acme/tuf/tags/list?n=2&last=b", &[], b"").json();
    assert_eq!(rest["tags"], serde_json::json!(["c"]));
    let none = request(addr, "GET", "/v2/acme/tuf/tags/list?last=zzz", &[], b"").json();
    assert_eq!(none["tags"], serde_json::json!([]));
    // Blobs: one store for all repositories; a missing one is 404 on DELETE.
    assert_eq!(
        request(
            addr,
            "HEAD",
            &format!("/v2/another/repo/blobs/{EMPTY_DIGEST}"),
            &[],
            b""
        )
        .status,
        200
    );
    assert_eq!(std::fs::read(reg.blob_path(EMPTY_DIGEST)).unwrap(), b"{}");
    let r = request(
        addr,
        "DELETE",
        &format!("/v2/acme/tuf/blobs/{}", sha256(b"nothing")),
        &[],
        b"",
    );
    assert_eq!((r.status, r.error_code().as_str()), (404, "BLOB_UNKNOWN"));
}
