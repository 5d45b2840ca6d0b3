//! Air-gap bundles between the two real test registries: a root of trust with a flat
//! delegation (`acme/app`, single-arch and multi-arch images) and a hash-bin delegation
//! (`big/*`) is exported from one registry, imported into the other, and verifies there by
//! tag, by digest and by tag@digest; skopeo pulls the imported images whole; the bundle
//! itself verifies as an OCI layout and with `verify --offline --bundle`.

use std::path::Path;
use std::process::Command;

use ocituf_oci::{ArtifactStore as _, RegistryOptions, RegistryRepo};
use ocituf_testkit::{Distribution, ReferrersRegistry};

use crate::flows::{self, Place};
use crate::support::Env;

pub fn place(addr: &str) -> Place {
    Place {
        prefix: format!("{addr}/"),
    }
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Push a two-platform index (each platform a real example image) to `repo:tag`; returns
/// (index digest, platform manifest digests).
pub fn push_multiarch(repo: &str, tag: &str) -> (String, Vec<String>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = RegistryRepo::open(repo, RegistryOptions::default()).unwrap();
        let mut entries = Vec::new();
        let mut children = Vec::new();
        for arch in ["amd64", "arm64"] {
            let (config, layer, manifest) = ocituf_oci::example_image::image(arch);
            store.put_blob(&config).await.unwrap();
            store.put_blob(&layer).await.unwrap();
            let d = store.put_manifest(MANIFEST, &manifest, None).await.unwrap();
            entries.push(serde_json::json!({
                "mediaType": MANIFEST, "digest": d.as_str(), "size": manifest.len(),
                "platform": {"os": "linux", "architecture": arch},
            }));
            children.push(d.to_string());
        }
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": INDEX, "manifests": entries,
        }))
        .unwrap();
        let d = store.put_manifest(INDEX, &index, Some(tag)).await.unwrap();
        (d.to_string(), children)
    })
}

/// Delegate `big/*` to 8 hash bins and sign `big/svc{i}:1` until two bins hold one image
/// each; returns those images as (image, digest).
pub fn hash_bin_images(env: &Env, place: &Place) -> Vec<(String, String)> {
    let tuf = place.repo("acme/tuf");
    env.run(&["key", "generate", "--out", "bins.pem"]).ok();
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
        "8",
        "--signing-key",
        "targets.pem",
        "--root",
        "acme.root.json",
    ])
    .ok();
    let mut bins: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for i in 0..16 {
        let image = place.repo(&format!("big/svc{i}:1"));
        let digest = flows::push_image(env, &image, &image);
        let s = env.run(&[
            "sign", &image, "--key", "bins.pem", "--repo", &tuf, "-n", "acme",
        ]);
        s.ok();
        let bin = s
            .stderr
            .split("role \"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        if !bins.iter().any(|b| b == bin) {
            bins.push(bin.to_owned());
            out.push((image, digest));
        }
        if out.len() == 2 {
            break;
        }
    }
    assert_eq!(out.len(), 2, "16 images all landed in one bin");
    out
}

pub fn trust(env: &Env, scope: &str, repo: &str) {
    env.run(&[
        "trust",
        "add",
        scope,
        "--repo",
        repo,
        "-n",
        "acme",
        "--root",
        "acme.root.json",
    ])
    .ok();
}

fn skopeo_pull(env: &Env, image: &str, all: bool) {
    let dest = env.path(&format!("pulled-{}", image.replace(['/', ':', '@'], "_")));
    let mut cmd = Command::new(ocituf_testkit::skopeo());
    cmd.args(["copy", "--quiet", "--src-tls-verify=false"]);
    if all {
        cmd.arg("--all");
    }
    cmd.arg(format!("docker://{image}"))
        .arg(format!("oci:{}:x", dest.display()));
    ocituf_testkit::run(&mut cmd).unwrap_or_else(|e| panic!("skopeo could not pull {image}: {e}"));
}

/// Everything of one source registry `a` carried to registry `b` through a bundle.
fn export_import_verify(a: &str, b: &str) {
    let env = Env::new();
    let (pa, pb) = (place(a), place(b));
    flows::set_up(&env, &pa);
    let app = pa.repo("acme/app:1.4");
    let app_digest = flows::push_image(&env, &app, "one");
    env.run(&["sign", &app, "--key", "app.pem"]).ok();
    let (index, platforms) = push_multiarch(&pa.repo("acme/app"), "multi");
    env.run(&["sign", &pa.repo("acme/app:multi"), "--key", "app.pem"])
        .ok();
    let bins = hash_bin_images(&env, &pa);
    flows::publish(&env, &pa).ok();

    let bundle = env.path("bundle");
    let by_digest = pa.repo(&format!("acme/app@{app_digest}"));
    let mut export = vec![
        "bundle".to_owned(),
        "export".into(),
        pa.repo("acme/tuf"),
        "-n".into(),
        "acme".into(),
        "--root".into(),
        "acme.root.json".into(),
        "--out".into(),
        bundle.display().to_string(),
        "--json".into(),
        "--image".into(),
        app.clone(),
        "--image".into(),
        by_digest,
        "--image".into(),
        pa.repo("acme/app:multi"),
    ];
    for (image, _) in &bins {
        export.extend(["--image".to_owned(), image.clone()]);
    }
    let args: Vec<&str> = export.iter().map(String::as_str).collect();
    let out = json(env.run(&args).ok());
    assert_eq!(out["images"].as_array().unwrap().len(), 5, "{out}");
    // The multi-arch image brought its index and both platform manifests.
    assert_eq!(out["images"][2]["digest"], index.as_str(), "{out}");
    assert_eq!(out["images"][2]["manifests"], 3, "{out}");

    // Into the other registry; clients there pin the same root.
    let r = env.run(&[
        "bundle",
        "import",
        bundle.to_str().unwrap(),
        "--to",
        b,
        "--root",
        "acme.root.json",
    ]);
    assert!(
        r.ok().contains(&format!("{b}/acme/app:1.4@{app_digest}")),
        "{r:#?}"
    );

    let client = Env::new();
    std::fs::copy(env.path("acme.root.json"), client.path("acme.root.json")).unwrap();
    trust(&client, &pb.repo("acme/*"), &pb.repo("acme/tuf"));
    trust(&client, &pb.repo("big/*"), &pb.repo("acme/tuf"));
    let at_b = |r: &str| pb.repo(r);
    for image in [
        at_b("acme/app:1.4"),
        at_b(&format!("acme/app@{app_digest}")),
        at_b(&format!("acme/app:1.4@{app_digest}")),
    ] {
        let v = json(client.run(&["verify", &image, "--json"]).ok());
        assert_eq!(v["digest"], app_digest.as_str(), "{image}: {v}");
        assert_eq!(v["role"], "app", "{v}");
    }
    let v = json(
        client
            .run(&["verify", &at_b("acme/app:multi"), "--json"])
            .ok(),
    );
    assert_eq!(v["digest"], index.as_str(), "{v}");
    for (image, digest) in &bins {
        let (repo_tag, repo) = (
            image.strip_prefix(&pa.prefix).unwrap(),
            image
                .strip_prefix(&pa.prefix)
                .unwrap()
                .split(':')
                .next()
                .unwrap(),
        );
        for at in [
            at_b(repo_tag),
            at_b(&format!("{repo}@{digest}")),
            at_b(&format!("{repo_tag}@{digest}")),
        ] {
            let v = json(client.run(&["verify", &at, "--json"]).ok());
            assert_eq!(v["digest"], digest.as_str(), "{at}: {v}");
            assert!(v["role"].as_str().unwrap().starts_with("big-"), "{v}");
        }
    }
    // A tag moved on the new registry is still refused there.
    let evil = flows::push_image(&env, &at_b("acme/app:1.4"), "evil");
    client
        .run(&["verify", &at_b("acme/app:1.4")])
        .fails(1, &["is not signed", &evil, &app_digest]);

    // Every blob arrived: a real client pulls the images (all platforms of the index).
    skopeo_pull(&env, &at_b(&format!("acme/app@{app_digest}")), false);
    skopeo_pull(&env, &at_b("acme/app:multi"), true);
    for p in &platforms {
        skopeo_pull(&env, &at_b(&format!("acme/app@{p}")), false);
    }

    // The bundle itself is an OCI layout a client can verify from.
    let layout = format!("oci:{}:", bundle.display());
    trust(
        &client,
        &format!("{layout}acme/*"),
        &format!("{layout}acme/tuf"),
    );
    let v = json(
        client
            .run(&["verify", &format!("{layout}acme/app:1.4"), "--json"])
            .ok(),
    );
    assert_eq!(v["digest"], app_digest.as_str(), "{v}");
    check_offline_from_bundle(&bundle, &app_digest, &index, &bins, &pa.prefix);
}

/// A client that never reached any registry verifies from the bundle alone.
fn check_offline_from_bundle(
    bundle: &Path,
    app_digest: &str,
    index: &str,
    bins: &[(String, String)],
    source_prefix: &str,
) {
    let offline = Env::new();
    let pin = bundle.join("../acme.root.json");
    std::fs::copy(pin, offline.path("acme.root.json")).unwrap();
    let far = place("registry.invalid");
    trust(&offline, &far.repo("acme/*"), &far.repo("acme/tuf"));
    trust(&offline, &far.repo("big/*"), &far.repo("acme/tuf"));
    let b = bundle.to_str().unwrap();
    let mut cases = vec![
        (far.repo("acme/app:1.4"), app_digest.to_owned()),
        (
            far.repo(&format!("acme/app@{app_digest}")),
            app_digest.to_owned(),
        ),
        (
            far.repo(&format!("acme/app:1.4@{app_digest}")),
            app_digest.to_owned(),
        ),
        (far.repo("acme/app:multi"), index.to_owned()),
    ];
    for (image, digest) in bins {
        let repo_tag = image.strip_prefix(source_prefix).unwrap();
        cases.push((far.repo(repo_tag), digest.clone()));
        cases.push((far.repo(&format!("{repo_tag}@{digest}")), digest.clone()));
    }
    for (image, digest) in &cases {
        let out = offline.run(&["verify", "--offline", "--bundle", b, image]);
        assert_eq!(out.ok().trim(), digest, "{image}: {out:#?}");
    }
}

#[test]
fn bundle_from_distribution_fallback_verifies_on_referrers_registry() {
    let a = Distribution::start();
    let b = ReferrersRegistry::start();
    export_import_verify(a.addr(), b.addr());
}

#[test]
fn bundle_from_referrers_registry_verifies_on_distribution_fallback() {
    let a = ReferrersRegistry::start();
    let b = Distribution::start();
    export_import_verify(a.addr(), b.addr());
}
