//! Snapshot Merkle trees (docs/oci-mapping.md §11) end to end with the CLI, on the OCI
//! layout and on both real test registries: `init --snapshot-merkle`, 1,024 hash bins,
//! batch signing, publish, verify by tag and by digest alone (roles proven through the
//! tree), a warm verify after the client's own bin changed, offline verification from the
//! cache, and the bundle export that refuses what it cannot carry yet.

use ocituf_testkit::{Distribution, ReferrersRegistry};

use crate::flows::{self, Place};
use crate::support::Env;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn set_up(env: &Env, place: &Place) {
    for k in ["root", "targets", "online", "bins"] {
        env.run(&["key", "generate", "--out", &format!("{k}.pem")])
            .ok();
    }
    let tuf = place.repo("acme/tuf");
    env.run(&[
        "init",
        &tuf,
        "--name",
        "acme",
        "--root-key",
        "root.pem",
        "--targets-key",
        "targets.pem",
        "--snapshot-key",
        "online.pem",
        "--timestamp-key",
        "online.pem",
        "--out-root",
        "acme.root.json",
        "--snapshot-merkle",
    ])
    .ok();
    env.run(&[
        "delegate",
        &tuf,
        "-n",
        "acme",
        "--role",
        "big",
        "--path",
        "big/*",
        "--key",
        "bins.pem",
        "--hash-bins",
        "1024",
        "--signing-key",
        "targets.pem",
        "--root",
        "acme.root.json",
    ])
    .ok();
    env.run(&[
        "trust",
        "add",
        &place.repo("big/*"),
        "--repo",
        &tuf,
        "-n",
        "acme",
        "--root",
        "acme.root.json",
    ])
    .ok();
}

fn merkle_flow(env: &Env, place: &Place) {
    set_up(env, place);
    let images: Vec<(String, String)> = (0..6)
        .map(|i| {
            let image = place.repo(&format!("big/svc{i}:1"));
            let digest = flows::push_image(env, &image, &image);
            (image, digest)
        })
        .collect();
    let mut sign = vec!["sign"];
    sign.extend(images.iter().map(|(i, _)| i.as_str()));
    sign.extend(["--key", "bins.pem"]);
    env.run(&sign).ok();
    flows::publish(env, place).ok();

    for (image, digest) in &images {
        let v = json(env.run(&["verify", image, "--json"]).ok());
        assert_eq!(v["digest"], digest.as_str(), "{v}");
        assert!(v["role"].as_str().unwrap().starts_with("big-"), "{v}");
        let repo = image.rsplit_once(':').unwrap().0;
        let by_digest = format!("{repo}@{digest}");
        assert_eq!(env.run(&["verify", &by_digest]).ok().trim(), digest);
        assert_eq!(
            env.run(&["verify", &format!("{image}@{digest}")])
                .ok()
                .trim(),
            digest
        );
    }

    // The client's own bin changes: a warm verify fetches the listing, the timestamp, the
    // snapshot, the path of nodes and the bin (targets is cached and unchanged).
    let (image, _) = &images[0];
    let moved = flows::push_image(env, image, "moved");
    env.run(&["sign", image, "--key", "bins.pem"]).ok();
    flows::publish(env, place).ok();
    let v = json(env.run(&["verify", image, "--json"]).ok());
    assert_eq!(v["digest"], moved.as_str(), "{v}");
    let requests = v["metadata_requests"].as_u64().unwrap();
    // 1,024 roles: an inner root and leaves of ~4 roles, so a path of 2 nodes.
    assert!((5..=6).contains(&requests), "{requests} requests: {v}");

    // Offline, from the cache alone: the kept paths prove the bins again.
    assert_eq!(
        env.run(&["verify", "--offline", image]).ok().trim(),
        moved,
        "offline verification re-proves the bin from the cached path"
    );

    // `status` proves each read role's published version from the tree: nothing shows as
    // unpublished after a publish, and a new bin version signed but not published does.
    let status_args = [
        "status",
        &place.repo("acme/tuf"),
        "-n",
        "acme",
        "--root",
        "acme.root.json",
        "--all",
        "--json",
    ];
    let st = json(env.run(&status_args).ok());
    assert_eq!(st["unpublished"], serde_json::json!([]), "{st}");
    let with_versions: Vec<_> = st["delegated_roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["version"].is_u64())
        .collect();
    assert!(
        with_versions.len() > 6,
        "big and the bins signed into: {st}"
    );
    for r in &with_versions {
        assert_eq!(r["published_version"], r["version"], "{r}");
    }
    assert_eq!(
        st["hash_bins"][0]["published"],
        serde_json::Value::Null,
        "{st}"
    );
    let in_tree = st["snapshot_merkle_roles"].as_u64().unwrap();
    assert_eq!(in_tree, with_versions.len() as u64, "{st}");
    let (image, _) = &images[1];
    flows::push_image(env, image, "unpublished");
    env.run(&["sign", image, "--key", "bins.pem"]).ok();
    let st = json(env.run(&status_args).ok());
    let unpublished = st["unpublished"].as_array().unwrap();
    // The tag's bin, and the new digest's bin when it hashes elsewhere.
    assert!((1..=2).contains(&unpublished.len()), "{st}");
    for u in unpublished {
        assert!(u.as_str().unwrap().starts_with("big-"), "{st}");
    }

    // A bundle cannot carry the tree yet: refused with what to do, nothing written.
    let out = env.path("bundle");
    env.run(&[
        "bundle",
        "export",
        &place.repo("acme/tuf"),
        "-n",
        "acme",
        "--root",
        "acme.root.json",
        "--out",
        out.to_str().unwrap(),
    ])
    .fails(2, &["Merkle", "classic snapshots"]);
}

#[test]
fn merkle_snapshots_on_oci_layout() {
    let env = Env::new();
    let place = Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    };
    merkle_flow(&env, &place);
}

#[test]
fn merkle_snapshots_on_distribution_fallback() {
    let registry = Distribution::start();
    let place = Place {
        prefix: format!("{}/", registry.addr()),
    };
    merkle_flow(&Env::new(), &place);
}

#[test]
fn merkle_snapshots_on_referrers_registry() {
    let registry = ReferrersRegistry::start();
    let place = Place {
        prefix: format!("{}/", registry.addr()),
    };
    merkle_flow(&Env::new(), &place);
}
