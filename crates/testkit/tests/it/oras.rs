//! ORAS pushes artifacts with a subject and discovers them: on the native registry through
//! the referrers API, on distribution through the tag-schema fallback.

use ocituf_testkit::{Distribution, ReferrersRegistry};

use crate::{attach, discover, push_subject, tags, ROOT_TYPE, TIMESTAMP_TYPE};

#[test]
fn native_registry_lists_referrers_through_the_api() {
    let reg = ReferrersRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let (addr, repo) = (reg.addr(), "acme/tuf");
    let api = "v1.1-referrers-api";

    let subject = push_subject(addr, repo, "anchor", dir.path());
    let ts = attach(
        addr,
        repo,
        &subject,
        TIMESTAMP_TYPE,
        &[("io.ocituf.version", "7")],
        api,
        dir.path(),
    );
    let root = attach(
        addr,
        repo,
        &subject,
        ROOT_TYPE,
        &[("io.ocituf.version", "1")],
        api,
        dir.path(),
    );

    let all = discover(addr, repo, &subject, None, api);
    let mut expected = vec![ts.clone(), root.clone()];
    expected.sort();
    assert_eq!(
        all.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        expected
    );
    let ts_entry = all.iter().find(|r| r.0 == ts).unwrap();
    assert_eq!(
        ts_entry.1, TIMESTAMP_TYPE,
        "descriptor artifactType from the manifest"
    );
    assert_eq!(
        ts_entry.2["io.ocituf.version"], "7",
        "descriptor annotations from the manifest"
    );

    // The artifactType filter, applied by the registry.
    let only_ts = discover(addr, repo, &subject, Some(TIMESTAMP_TYPE), api);
    assert_eq!(
        only_ts.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        vec![ts]
    );
    let only_root = discover(addr, repo, &subject, Some(ROOT_TYPE), api);
    assert_eq!(
        only_root.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        vec![root]
    );

    // No fallback tag was written: ORAS saw the referrers API.
    assert_eq!(tags(addr, repo), vec!["anchor".to_owned()]);
}

#[test]
fn distribution_lists_referrers_through_the_tag_fallback() {
    let reg = Distribution::start();
    let dir = tempfile::tempdir().unwrap();
    let (addr, repo) = (reg.addr(), "acme/tuf");
    let fallback = "v1.1-referrers-tag";

    let subject = push_subject(addr, repo, "anchor", dir.path());
    let ts = attach(
        addr,
        repo,
        &subject,
        TIMESTAMP_TYPE,
        &[("io.ocituf.version", "7")],
        fallback,
        dir.path(),
    );
    let root = attach(
        addr,
        repo,
        &subject,
        ROOT_TYPE,
        &[("io.ocituf.version", "1")],
        fallback,
        dir.path(),
    );
    let mut expected = vec![ts.clone(), root];
    expected.sort();

    // Read through the fallback index, forced and auto-detected.
    for spec in [fallback, ""] {
        let all = discover(addr, repo, &subject, None, spec);
        assert_eq!(
            all.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            expected,
            "{spec}"
        );
        let ts_entry = all.iter().find(|r| r.0 == ts).unwrap();
        assert_eq!(ts_entry.1, TIMESTAMP_TYPE);
        assert_eq!(ts_entry.2["io.ocituf.version"], "7");
    }
    let only_ts = discover(addr, repo, &subject, Some(TIMESTAMP_TYPE), fallback);
    assert_eq!(
        only_ts.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        vec![ts]
    );

    // The fallback index lives at the sha256-<hex> tag of the subject.
    let fallback_tag = subject.replace(':', "-");
    let mut tags = tags(addr, repo);
    tags.sort();
    assert_eq!(tags, vec!["anchor".to_owned(), fallback_tag]);
}
