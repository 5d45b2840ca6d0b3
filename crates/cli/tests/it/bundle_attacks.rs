//! Bundles that must be refused, and `verify --offline`: a swapped blob, a rolled-back
//! bundle, a bundle of another root of trust, expired metadata (refused with exit code 4,
//! accepted only with --danger-allow-expired), and no network request at all. Each refusal
//! is checked by exit code and message, and by the trusted cache (or the destination
//! registry) being unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ocituf_oci::{ArtifactStore as _, ManifestRef, RegistryOptions, RegistryRepo};
use ocituf_testkit::{Distribution, ReferrersRegistry};

use crate::bundle::{json, place, trust};
use crate::flows::{self, Place};
use crate::support::Env;

/// Every file under `dir` with its bytes (the trusted cache, for "nothing changed").
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A root of trust `acme` at `place` with `acme/app:1.4` signed and published.
fn source(env: &Env, place: &Place) -> String {
    source_with(env, place, "one")
}

fn source_with(env: &Env, place: &Place, message: &str) -> String {
    flows::set_up(env, place);
    let app = place.repo("acme/app:1.4");
    let digest = flows::push_image(env, &app, message);
    env.run(&["sign", &app, "--key", "app.pem"]).ok();
    flows::publish(env, place).ok();
    digest
}

fn export(env: &Env, place: &Place, out: &str, images: &[&str]) -> PathBuf {
    let bundle = env.path(out);
    let mut args = vec![
        "bundle".to_owned(),
        "export".into(),
        place.repo("acme/tuf"),
        "-n".into(),
        "acme".into(),
        "--root".into(),
        "acme.root.json".into(),
        "--out".into(),
        bundle.display().to_string(),
    ];
    for i in images {
        args.extend(["--image".to_owned(), place.repo(i)]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run(&args).ok();
    bundle
}

/// A client that pins `acme`'s root for images of `far` (a registry it never reaches).
fn client(pin_from: &Env, far: &Place) -> Env {
    let c = Env::new();
    std::fs::copy(pin_from.path("acme.root.json"), c.path("acme.root.json")).unwrap();
    trust(&c, &far.repo("acme/*"), &far.repo("acme/tuf"));
    c
}

fn offline(c: &Env, bundle: &Path, image: &str) -> crate::support::Run {
    c.run(&[
        "verify",
        "--offline",
        "--bundle",
        bundle.to_str().unwrap(),
        image,
    ])
}

fn import(env: &Env, bundle: &Path, to: &str) -> crate::support::Run {
    env.run(&[
        "bundle",
        "import",
        bundle.to_str().unwrap(),
        "--to",
        to,
        "--root",
        "acme.root.json",
    ])
}

fn tag_in(registry: &str, repo: &str, tag: &str) -> Option<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store =
            RegistryRepo::open(&format!("{registry}/{repo}"), RegistryOptions::default()).unwrap();
        store
            .head_manifest(ManifestRef::Tag(tag))
            .await
            .unwrap()
            .map(|d| d.digest.to_string())
    })
}

/// The blob file of `digest` in a bundle.
fn blob(bundle: &Path, digest: &str) -> PathBuf {
    bundle
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn copy_dir(from: &Path, to: &Path) {
    for (path, bytes) in files(from) {
        let dest = to.join(path.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
}

/// The client's registry is a listening socket that nobody answers: any request would
/// queue a connection. Offline verification (bundle, then cache alone) leaves it empty.
#[test]
fn offline_verify_sends_no_network_request() {
    let registry = Distribution::start();
    let env = Env::new();
    let pa = place(registry.addr());
    let digest = source(&env, &pa);
    let bundle = export(&env, &pa, "bundle", &["acme/app:1.4"]);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let far = place(&listener.local_addr().unwrap().to_string());
    let c = client(&env, &far);
    let image = far.repo("acme/app:1.4");
    assert_eq!(offline(&c, &bundle, &image).ok().trim(), digest);
    let cached = c.run(&["verify", "--offline", &image]);
    assert_eq!(cached.ok().trim(), digest, "{cached:#?}");
    assert!(
        cached.stderr.contains("resolved from trusted metadata"),
        "{cached:#?}"
    );
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("offline verification connected to the registry: {other:?}"),
    }
    // The same policy online does go to that address: nothing listens now, exit 3.
    drop(listener);
    c.run(&["verify", &image]).fails(3, &["Connection refused"]);
}

/// A timestamp that expires seconds after publishing: offline verification refuses it
/// with exit code 4 (bundle or cache), and accepts it only with --danger-allow-expired,
/// warning on stderr and leaving the cache as it was.
#[test]
fn offline_expired_metadata_refused_unless_danger_allow_expired() {
    let registry = ReferrersRegistry::start();
    let env = Env::new();
    let pa = place(registry.addr());
    flows::set_up(&env, &pa);
    let app = pa.repo("acme/app:1.4");
    let digest = flows::push_image(&env, &app, "one");
    env.run(&["sign", &app, "--key", "app.pem"]).ok();
    let published = std::time::Instant::now();
    env.run(&[
        "publish",
        &pa.repo("acme/tuf"),
        "-n",
        "acme",
        "--snapshot-key",
        "online.pem",
        "--timestamp-key",
        "online.pem",
        "--timestamp-expires",
        "8s",
    ])
    .ok();
    let bundle = export(&env, &pa, "bundle", &["acme/app:1.4"]);
    let far = place("registry.invalid");
    let c = client(&env, &far);
    let image = far.repo("acme/app:1.4");
    assert_eq!(offline(&c, &bundle, &image).ok().trim(), digest);

    std::thread::sleep(std::time::Duration::from_secs(9).saturating_sub(published.elapsed()));
    let cache = c.path("cache");
    let before = files(&cache);
    offline(&c, &bundle, &image).fails(
        4,
        &[
            "role \"timestamp\"",
            "expired at",
            "--danger-allow-expired",
            "expired:",
        ],
    );
    c.run(&["verify", "--offline", &image])
        .fails(4, &["role \"timestamp\"", "expired at"]);
    assert_eq!(files(&cache), before, "a refusal changed the trusted cache");

    let danger = c.run(&[
        "verify",
        "--offline",
        "--bundle",
        bundle.to_str().unwrap(),
        "--danger-allow-expired",
        &image,
    ]);
    assert_eq!(danger.ok().trim(), digest, "{danger:#?}");
    assert!(
        danger.stderr.contains("warning: --danger-allow-expired"),
        "{danger:#?}"
    );
    assert!(
        danger.stderr.contains("role \"timestamp\" expired at"),
        "{danger:#?}"
    );
    assert_eq!(
        files(&cache),
        before,
        "expired metadata reached the trusted cache"
    );
    // Never online: the flag needs --offline.
    c.run(&["verify", "--danger-allow-expired", &image])
        .fails(2, &["--offline"]);
}

/// Blob bytes swapped in a bundle: an image layer (import refused before anything is
/// pushed) and a targets role's metadata (offline verification and import refused, cache
/// untouched).
#[test]
fn tampered_bundle_blob_swapped_is_refused() {
    let a = ReferrersRegistry::start();
    let b = Distribution::start();
    let env = Env::new();
    let pa = place(a.addr());
    let digest = source(&env, &pa);
    let bundle = export(&env, &pa, "bundle", &["acme/app:1.4"]);

    let manifest =
        json(&String::from_utf8(std::fs::read(blob(&bundle, &digest)).unwrap()).unwrap());
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let bad_layer = env.path("bad-layer");
    copy_dir(&bundle, &bad_layer);
    std::fs::write(blob(&bad_layer, &layer), b"not the layer").unwrap();
    import(&env, &bad_layer, b.addr()).fails(1, &[&layer, "tampered"]);
    assert_eq!(
        tag_in(b.addr(), "acme/app", "1.4"),
        None,
        "an image was pushed"
    );
    assert_eq!(
        tag_in(b.addr(), "acme/tuf", &top_anchor_tag()),
        None,
        "metadata was pushed"
    );

    // The app role's metadata blob, found by its annotation in the layout's index.
    let index = json(&std::fs::read_to_string(bundle.join("index.json")).unwrap());
    let app_meta = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["io.ocituf.role"] == "app")
        .map(|m| {
            m["annotations"]["io.ocituf.metadata.digest"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .unwrap();
    let bad_meta = env.path("bad-meta");
    copy_dir(&bundle, &bad_meta);
    let mut bytes = std::fs::read(blob(&bad_meta, &app_meta)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20; // same length, other bytes
    std::fs::write(blob(&bad_meta, &app_meta), bytes).unwrap();

    let far = place("registry.invalid");
    let c = client(&env, &far);
    let image = far.repo("acme/app:1.4");
    let cache = c.path("cache");
    let before = files(&cache);
    offline(&c, &bad_meta, &image).fails(1, &["refused", &app_meta]);
    assert_eq!(
        files(&cache),
        before,
        "a tampered bundle changed the trusted cache"
    );
    import(&env, &bad_meta, b.addr()).fails(1, &["was refused", &app_meta]);
    assert_eq!(tag_in(b.addr(), "acme/app", "1.4"), None);
    // The untouched bundle verifies: the refusals were the tampering.
    assert_eq!(offline(&c, &bundle, &image).ok().trim(), digest);
    import(&env, &bundle, b.addr()).ok();
    assert_eq!(tag_in(b.addr(), "acme/app", "1.4"), Some(digest));
}

/// In bundle `into`, replace every version of `role` by the ones of bundle `from`.
fn replace_role(into: &Path, from: &Path, role: &str) {
    let is_role = |m: &serde_json::Value| m["annotations"]["io.ocituf.role"] == role;
    let read = |b: &Path| json(&std::fs::read_to_string(b.join("index.json")).unwrap());
    let mut index = read(into);
    let theirs: Vec<serde_json::Value> = read(from)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| is_role(m))
        .cloned()
        .collect();
    assert!(!theirs.is_empty());
    let manifests = index["manifests"].as_array_mut().unwrap();
    manifests.retain(|m| !is_role(m));
    for m in theirs {
        for d in [
            m["digest"].as_str().unwrap(),
            m["annotations"]["io.ocituf.metadata.digest"]
                .as_str()
                .unwrap(),
        ] {
            std::fs::copy(blob(from, d), blob(into, d)).unwrap();
        }
        manifests.push(m);
    }
    std::fs::write(into.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

fn top_anchor_tag() -> String {
    let name = ocituf_oci::RootOfTrustName::parse("acme").unwrap();
    ocituf_oci::Anchor::top(&name).tag()
}

/// An older bundle after a newer one, and a new bundle whose timestamp was replaced by the
/// older version: offline verification refuses the rollback (cache unchanged), and import
/// refuses to roll the destination back (it keeps serving the new state).
#[test]
fn rollback_older_bundle_is_refused() {
    let a = Distribution::start();
    let b = ReferrersRegistry::start();
    let env = Env::new();
    let pa = place(a.addr());
    let pb = place(b.addr());
    source(&env, &pa);
    let old = export(&env, &pa, "old", &["acme/app:1.4"]);
    let app2 = pa.repo("acme/app:2");
    let digest2 = flows::push_image(&env, &app2, "two");
    env.run(&["sign", &app2, "--key", "app.pem"]).ok();
    flows::publish(&env, &pa).ok();
    let new = export(&env, &pa, "new", &["acme/app:2"]);

    let far = place("registry.invalid");
    let c = client(&env, &far);
    assert_eq!(
        offline(&c, &new, &far.repo("acme/app:2")).ok().trim(),
        digest2
    );
    let cache = c.path("cache");
    let before = files(&cache);
    offline(&c, &old, &far.repo("acme/app:1.4")).fails(
        1,
        &["timestamp version 2 is older than the trusted version 3"],
    );
    assert_eq!(
        files(&cache),
        before,
        "a rolled-back bundle changed the trusted cache"
    );

    // The new bundle with only its timestamp replaced by the older version (its manifest,
    // blob and index entry taken from the old bundle).
    let mixed = env.path("mixed");
    copy_dir(&new, &mixed);
    replace_role(&mixed, &old, "timestamp");
    offline(&c, &mixed, &far.repo("acme/app:2")).fails(
        1,
        &["timestamp version 2 is older than the trusted version 3"],
    );
    assert_eq!(
        files(&cache),
        before,
        "a rolled-back timestamp changed the trusted cache"
    );

    // Alone, the mixed bundle is incomplete (its timestamp names a snapshot it lacks).
    import(&env, &mixed, b.addr()).fails(1, &["lacks snapshot version 2", "tampered"]);
    assert_eq!(
        tag_in(b.addr(), "acme/app", "2"),
        None,
        "an image was pushed"
    );
    import(&env, &new, b.addr()).ok();
    import(&env, &old, b.addr()).fails(
        1,
        &[
            "rollback",
            "timestamp version 3",
            "newer than the bundle's version 2",
        ],
    );
    let cb = Env::new();
    std::fs::copy(env.path("acme.root.json"), cb.path("acme.root.json")).unwrap();
    trust(&cb, &pb.repo("acme/*"), &pb.repo("acme/tuf"));
    let v = json(cb.run(&["verify", &pb.repo("acme/app:2"), "--json"]).ok());
    assert_eq!(v["digest"], digest2.as_str(), "{v}");
    assert_eq!(v["versions"]["timestamp"], 3, "{v}");
}

/// Someone else's root of trust, also named `acme`, signing another digest for
/// `acme/app:1.4`: refused offline (cache unchanged) and at import (nothing pushed).
#[test]
fn bundle_of_another_root_of_trust_is_refused() {
    let a = ReferrersRegistry::start();
    let b = Distribution::start();
    let env = Env::new();
    let pa = place(a.addr());
    let digest = source(&env, &pa);
    let good = export(&env, &pa, "good", &["acme/app:1.4"]);

    let attacker = Env::new();
    let evil_place = Place {
        prefix: format!("oci:{}:", attacker.path("reg").display()),
    };
    let evil_digest = source_with(&attacker, &evil_place, "evil");
    let evil = export(&attacker, &evil_place, "evil", &["acme/app:1.4"]);
    assert_ne!(evil_digest, digest);

    let far = place("registry.invalid");
    let c = client(&env, &far);
    let image = far.repo("acme/app:1.4");
    assert_eq!(offline(&c, &good, &image).ok().trim(), digest);
    let cache = c.path("cache");
    let before = files(&cache);
    offline(&c, &evil, &image).fails(1, &["the pinned sha256"]);
    assert_eq!(
        files(&cache),
        before,
        "a foreign bundle changed the trusted cache"
    );

    import(&env, &evil, b.addr()).fails(1, &["root mismatch", "another root of trust"]);
    assert_eq!(
        tag_in(b.addr(), "acme/app", "1.4"),
        None,
        "an image was pushed"
    );
    assert_eq!(tag_in(b.addr(), "acme/tuf", &top_anchor_tag()), None);

    // The destination already holds the other `acme`: the genuine bundle is not mixed in.
    let pb = place(b.addr());
    attacker
        .run(&[
            "init",
            &pb.repo("acme/tuf"),
            "-n",
            "acme",
            "--root-key",
            "root.pem",
            "--targets-key",
            "targets.pem",
            "--snapshot-key",
            "online.pem",
            "--timestamp-key",
            "online.pem",
        ])
        .ok();
    import(&env, &good, b.addr()).fails(1, &["root mismatch", "the destination"]);
    assert_eq!(
        tag_in(b.addr(), "acme/app", "1.4"),
        None,
        "an image was pushed"
    );
}

/// Export takes only signed images, into a new directory.
#[test]
fn export_refuses_unsigned_images_and_existing_directories() {
    let registry = Distribution::start();
    let env = Env::new();
    let pa = place(registry.addr());
    source(&env, &pa);
    flows::push_image(&env, &pa.repo("acme/app:unsigned"), "nobody signed me");
    let out = env.path("bundle");
    let run = |image: &str| {
        let args = [
            "bundle".to_owned(),
            "export".into(),
            pa.repo("acme/tuf"),
            "-n".into(),
            "acme".into(),
            "--root".into(),
            "acme.root.json".into(),
            "--out".into(),
            out.display().to_string(),
            "--image".into(),
            pa.repo(image),
        ];
        env.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    run("acme/app:unsigned").fails(1, &["acme/app:unsigned is not signed"]);
    assert!(
        !out.join("oci-layout").exists(),
        "an unsigned export wrote a bundle"
    );
    run("acme/app:1.4").ok();
    run("acme/app:1.4").fails(2, &["exists and is not empty"]);
}
