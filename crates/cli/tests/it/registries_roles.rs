//! Root rotation with threshold signing and hash-bin delegation against the two real test
//! registries started on 127.0.0.1 by the testkit: distribution 2.8 (no referrers API: the
//! tag-schema fallback) and the referrers registry (native referrers API). The same flows
//! are generic over `Place`, so each runs on both.

use ocituf_testkit::{Distribution, ReferrersRegistry};

use crate::flows::{self, Place};
use crate::support::Env;

fn place(addr: &str) -> Place {
    Place {
        prefix: format!("{addr}/"),
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn root_version_seen(env: &Env, image: &str) -> serde_json::Value {
    json(env.run(&["verify", image, "--json"]).ok())["versions"]["root"].clone()
}

/// Root keys go from 1 (threshold 1) to 3 (threshold 2). One holder starts the rotation:
/// root version 2 waits as a pending root that clients do not see; a key outside the root
/// and the same holder signing again do not count; a second holder completes it. A client
/// that pinned root version 1 and one that already used it both reach the new root.
pub fn root_rotation_two_of_three(env: &Env, place: &Place) {
    flows::set_up(env, place);
    let tuf = place.repo("acme/tuf");
    let image = place.repo("acme/app:1");
    let digest = flows::push_image(env, &image, "one");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    flows::publish(env, place).ok();
    assert_eq!(root_version_seen(env, &image), 1);

    for k in ["root2", "root3"] {
        env.run(&["key", "generate", "--out", &format!("{k}.pem")])
            .ok();
    }
    // Holder 1 starts: meets the current root (1/1) but not the new one (1/2).
    let r = env.run(&[
        "root",
        "rotate",
        &tuf,
        "-n",
        "acme",
        "--role",
        "root",
        "--add-key",
        "root2.pem",
        "--add-key",
        "root3.pem",
        "--threshold",
        "2",
        "--key",
        "root.pem",
    ]);
    assert!(
        r.ok()
            .contains("root version 2 is pending: signed by 1/1 current and 1/2 new root keys"),
        "{r:#?}"
    );
    let status = json(env.run(&["status", &tuf, "-n", "acme", "--json"]).ok());
    assert_eq!(status["roles"][0]["role"], "root", "{status}");
    assert_eq!(status["roles"][0]["version"], 1, "{status}");
    assert_eq!(status["pending_roots"][0]["version"], 2, "{status}");
    assert_eq!(
        status["pending_roots"][0]["signed_by_new_keys"], 1,
        "{status}"
    );
    assert_eq!(status["pending_roots"][0]["new_threshold"], 2, "{status}");

    // Clients do not see the pending version: still root 1, for the user who already
    // verified and for a new one pinning root 1.
    assert_eq!(root_version_seen(env, &image), 1);
    let fresh = Env::new();
    let pinned = env.path("acme.root.json");
    let trust = [
        "trust",
        "add",
        &place.repo("acme/*"),
        "--repo",
        &tuf,
        "-n",
        "acme",
        "--root",
        pinned.to_str().unwrap(),
    ];
    fresh.run(&trust).ok();
    assert_eq!(root_version_seen(&fresh, &image), 1);

    // A key that is not in the current or the new root does not count: refused, and the
    // pending version keeps its one signature.
    env.run(&["root", "sign", &tuf, "-n", "acme", "--key", "other.pem"])
        .fails(
            2,
            &["none of the given keys is a root key of the current or the new root"],
        );
    // The holder who started it signing again replaces its own signature: still 1/2.
    let again = env.run(&["root", "sign", &tuf, "-n", "acme", "--key", "root.pem"]);
    assert!(
        again
            .ok()
            .contains("root version 2 is pending: signed by 1/1 current and 1/2 new root keys"),
        "{again:#?}"
    );
    let status = json(env.run(&["status", &tuf, "-n", "acme", "--json"]).ok());
    assert_eq!(status["roles"][0]["version"], 1, "{status}");
    assert_eq!(
        status["pending_roots"][0]["signed_by_new_keys"], 1,
        "{status}"
    );
    assert_eq!(root_version_seen(env, &image), 1);

    // Holder 2 signs later: 1/1 current and 2/2 new, published.
    let done = env.run(&["root", "sign", &tuf, "-n", "acme", "--key", "root2.pem"]);
    assert!(
        done.ok()
            .contains("published root version 2 (signed by 1/1 current and 2/2 new root keys)"),
        "{done:#?}"
    );
    flows::publish(env, place).ok();
    let status = json(env.run(&["status", &tuf, "-n", "acme", "--json"]).ok());
    assert_eq!(status["roles"][0]["version"], 2, "{status}");
    assert_eq!(status["roles"][0]["threshold"], 2, "{status}");
    assert_eq!(
        status["roles"][0]["keyids"].as_array().unwrap().len(),
        3,
        "{status}"
    );

    // Both clients pinned root 1 and now verify through root 2.
    for client in [env, &fresh] {
        let v = json(client.run(&["verify", &image, "--json"]).ok());
        assert_eq!(v["digest"], digest.as_str(), "{v}");
        assert_eq!(v["versions"]["root"], 2, "{v}");
    }
    // A client starting now from the old pinned root also walks the chain to root 2.
    let late = Env::new();
    late.run(&trust).ok();
    assert_eq!(root_version_seen(&late, &image), 2);

    // Under root 2 one holder alone no longer suffices: the next version waits.
    let r = env.run(&[
        "root",
        "rotate",
        &tuf,
        "-n",
        "acme",
        "--role",
        "root",
        "--threshold",
        "3",
        "--key",
        "root3.pem",
    ]);
    assert!(
        r.ok()
            .contains("root version 3 is pending: signed by 1/2 current and 1/3 new root keys"),
        "{r:#?}"
    );
    assert_eq!(root_version_seen(&late, &image), 2);
}

/// A team role delegating to 8 succinct hash bins: two images land in different bins, both
/// verify through their bin after publish, and a tag the registry moved is refused.
pub fn hash_bins(env: &Env, place: &Place) {
    flows::set_up(env, place);
    let r = flows::delegate_hash_bins(env, place, 8);
    assert!(r.ok().contains("delegates to 8 hash bins"), "{r:#?}");

    // Sign images until two land in different bins (the bin is a function of the name, so
    // this picks the same two images on every run).
    let mut signed: Vec<(String, String, String)> = Vec::new(); // (image, digest, bin)
    for i in 0..16 {
        let image = place.repo(&format!("big/svc{i}:1"));
        let digest = flows::push_image(env, &image, &image);
        let s = env.run(&["sign", &image, "--key", "bins.pem"]);
        assert_eq!(s.ok().trim(), format!("{image}@{digest}"), "{s:#?}");
        let bin = s
            .stderr
            .split("role \"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("sign names no role: {s:#?}"))
            .to_owned();
        assert!(bin.starts_with("big-"), "{s:#?}");
        if signed.iter().all(|(_, _, b)| *b != bin) {
            signed.push((image, digest, bin));
        }
        if signed.len() == 2 {
            break;
        }
    }
    assert_eq!(
        signed.len(),
        2,
        "16 images all landed in one bin: {signed:?}"
    );

    // Not published yet: refused.
    env.run(&["verify", &signed[0].0])
        .fails(1, &["is not signed"]);
    flows::publish(env, place).ok();
    let mut bin_versions = Vec::new();
    for (image, digest, bin) in &signed {
        let v = json(env.run(&["verify", image, "--json"]).ok());
        assert_eq!(v["digest"], digest.as_str(), "{v}");
        assert_eq!(v["role"], bin.as_str(), "{v}");
        bin_versions.push(v["role_version"].as_u64().expect("role_version"));
    }

    // The registry moves one tag: refused, naming the bin, its version and both digests;
    // the other image still verifies. (The bin's version is 1 or 2: the digest name of an
    // image lands in the bin of its own hash, which may be a bin another image's tag took.)
    let (image, digest, bin) = &signed[1];
    let bin_version = bin_versions[1];
    let evil = flows::push_image(env, image, "evil");
    env.run(&["verify", image]).fails(
        1,
        &[
            "is not signed",
            &evil,
            digest,
            &format!("targets role \"{bin}\" v{bin_version}"),
        ],
    );
    env.run(&["resolve", image]).fails(1, &["is not signed"]);
    assert_eq!(env.run(&["verify", &signed[0].0]).ok().trim(), signed[0].1);
}

#[test]
fn root_rotation_two_of_three_on_distribution_fallback() {
    let registry = Distribution::start();
    root_rotation_two_of_three(&Env::new(), &place(registry.addr()));
}

#[test]
fn root_rotation_two_of_three_on_referrers_registry() {
    let registry = ReferrersRegistry::start();
    root_rotation_two_of_three(&Env::new(), &place(registry.addr()));
}

#[test]
fn hash_bins_on_distribution_fallback() {
    let registry = Distribution::start();
    hash_bins(&Env::new(), &place(registry.addr()));
}

#[test]
fn hash_bins_on_referrers_registry() {
    let registry = ReferrersRegistry::start();
    hash_bins(&Env::new(), &place(registry.addr()));
}
