//! The commands against the embedded default, an OCI image-layout directory, and the error
//! messages and exit codes of common mistakes.

use base64::Engine as _;

use crate::flows::{self, Place};
use crate::support::Env;

fn layout(env: &Env) -> Place {
    Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    }
}

#[test]
fn whole_flow_on_a_layout() {
    let env = Env::new();
    flows::whole_flow(&env, &layout(&env));
}

#[test]
fn concurrent_signers_on_a_layout_lose_nothing() {
    let env = Env::new();
    flows::concurrent_signers(&env, &layout(&env), 12);
}

#[test]
fn relative_layout_paths_work_from_the_layout_directory() {
    // What the quick start does: oci:registry:… relative to the working directory.
    let env = Env::new();
    flows::set_up(
        &env,
        &Place {
            prefix: "oci:registry:".into(),
        },
    );
    let d = flows::push_image(&env, "oci:registry:acme/app:1", "x");
    env.run(&["sign", "oci:registry:acme/app:1", "--key", "app.pem"])
        .ok();
    flows::publish(
        &env,
        &Place {
            prefix: "oci:registry:".into(),
        },
    )
    .ok();
    assert_eq!(
        env.run(&["verify", "oci:./registry:acme/app:1"])
            .ok()
            .trim(),
        d
    );
}

#[test]
fn wrong_key_is_refused_with_the_roles_it_could_sign() {
    let env = Env::new();
    let place = layout(&env);
    flows::set_up(&env, &place);
    let image = place.repo("acme/app:1.0");
    flows::push_image(&env, &image, "x");
    env.run(&["sign", &image, "--key", "other.pem"]).fails(
        2,
        &[
            "none of the given keys",
            "may sign acme/app:1.0",
            "targets, app",
            "wrong key?",
        ],
    );
    // A public key cannot sign.
    env.run(&["key", "generate", "--out", "p.pem", "--public-out", "p.pub"])
        .ok();
    env.run(&["sign", &image, "--key", "p.pub"])
        .fails(2, &["is a public key"]);
    // publish with a key that is not the online key.
    env.run(&[
        "publish",
        &place.repo("acme/tuf"),
        "-n",
        "acme",
        "--snapshot-key",
        "app.pem",
        "--timestamp-key",
        "online.pem",
    ])
    .fails(2, &["role \"snapshot\" needs"]);
}

#[test]
fn expired_root_is_refused() {
    let env = Env::new();
    let place = layout(&env);
    for k in ["root", "online"] {
        env.run(&["key", "generate", "--out", &format!("{k}.pem")])
            .ok();
    }
    let tuf = place.repo("acme/tuf");
    env.run(&[
        "init",
        &tuf,
        "-n",
        "acme",
        "--root-key",
        "root.pem",
        "--targets-key",
        "root.pem",
        "--snapshot-key",
        "online.pem",
        "--timestamp-key",
        "online.pem",
        "--root-expires",
        "2s",
        "--out-root",
        "root.json",
    ])
    .ok();
    env.run(&[
        "trust",
        "add",
        &place.repo("acme/*"),
        "--repo",
        &tuf,
        "-n",
        "acme",
        "--root",
        "root.json",
    ])
    .ok();
    let image = place.repo("acme/app:1");
    flows::push_image(&env, &image, "x");
    env.run(&["sign", &image, "--key", "root.pem"]).ok();
    flows::publish(&env, &place).ok();
    std::thread::sleep(std::time::Duration::from_secs(3));
    env.run(&["verify", &image])
        .fails(1, &["was refused", "root metadata expired"]);
    let status = env.run(&["status", &tuf, "-n", "acme"]);
    assert!(
        status.ok().contains("root version 1 EXPIRED"),
        "{status:#?}"
    );
}

#[test]
fn unknown_scope_is_a_configuration_error() {
    let env = Env::new();
    let place = layout(&env);
    flows::set_up(&env, &place);
    env.run(&["verify", &place.repo("other/app:1")])
        .fails(2, &["no root of trust covers", "ocituf trust add"]);
    env.run(&["verify", "registry.example.com/acme/app:1"])
        .fails(2, &["no root of trust covers"]);
    env.run(&["verify", "Not A Reference"])
        .fails(2, &["invalid image reference"]);
}

#[test]
fn registry_down_is_a_network_failure() {
    // A port that was just free on 127.0.0.1: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env = Env::new();
    flows::set_up(&env, &layout(&env));
    let reg = format!("127.0.0.1:{port}");
    env.run(&[
        "trust",
        "add",
        &format!("{reg}/acme/*"),
        "--repo",
        &format!("{reg}/acme/tuf"),
        "-n",
        "acme",
        "--root",
        "acme.root.json",
    ])
    .ok();
    let started = std::time::Instant::now();
    env.run(&["verify", &format!("{reg}/acme/app:1")])
        .fails(3, &["acme", &reg]);
    env.run(&["status", &format!("{reg}/acme/tuf"), "-n", "acme"])
        .fails(3, &[&reg]);
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn keys_from_openssl_and_from_base64_env() {
    let env = Env::new();
    let out = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(env.path("ossl.pem"))
        .output()
        .expect("openssl is needed for this test (apt-get install openssl)");
    assert!(out.status.success());
    let keyid = env.run(&["key", "show", "ossl.pem", "--json"]);
    let v: serde_json::Value = serde_json::from_str(keyid.ok()).unwrap();
    assert_eq!(v["keytype"], "ed25519");
    let pem = std::fs::read(env.path("ossl.pem")).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
    let again = env.run_env(&["key", "show", "env:K", "--json"], &[("K", &b64)]);
    let w: serde_json::Value = serde_json::from_str(again.ok()).unwrap();
    assert_eq!(v["keyid"], w["keyid"]);
    env.run_env(&["key", "show", "env:K"], &[("K", "garbage")])
        .fails(2, &["environment variable K"]);
    env.run(&["key", "show", "env:UNSET_VAR"])
        .fails(2, &["UNSET_VAR is not set"]);
    // ocituf never overwrites a key.
    env.run(&["key", "generate", "--out", "ossl.pem"])
        .fails(2, &["never overwrites"]);
    for t in ["ecdsa-p256", "rsa"] {
        let j: serde_json::Value = serde_json::from_str(
            env.run(&[
                "key",
                "generate",
                "--type",
                t,
                "--out",
                &format!("{t}.pem"),
                "--json",
            ])
            .ok(),
        )
        .unwrap();
        assert_eq!(j["keyid"].as_str().unwrap().len(), 64);
    }
}

#[test]
fn init_twice_and_bad_thresholds() {
    let env = Env::new();
    let place = layout(&env);
    flows::set_up(&env, &place);
    let tuf = place.repo("acme/tuf");
    env.run(&[
        "init",
        &tuf,
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
    .fails(2, &["already exists", "root rotate"]);
    env.run(&[
        "init",
        &tuf,
        "-n",
        "beta",
        "--root-key",
        "root.pem",
        "--root-threshold",
        "2",
        "--targets-key",
        "targets.pem",
        "--snapshot-key",
        "online.pem",
        "--timestamp-key",
        "online.pem",
    ])
    .fails(2, &["--root-threshold 2"]);
    env.run(&[
        "init",
        &tuf,
        "-n",
        "beta",
        "--root-key",
        "root.pem",
        "--targets-key",
        "targets.pem",
        "--snapshot-key",
        "online.pem",
        "--timestamp-key",
        "online.pem",
        "--root-expires",
        "1y",
    ])
    .fails(2, &["--root-expires", "duration"]);
}

#[test]
fn cross_org_cut_and_paste() {
    // Two roots of trust share one metadata repository; acme's keys sign beta's image into
    // acme's metadata. Clients trust beta's images only to beta's root: refused.
    let env = Env::new();
    let place = layout(&env);
    flows::set_up(&env, &place);
    let tuf = place.repo("acme/tuf");
    env.run(&["key", "generate", "--out", "beta.pem"]).ok();
    env.run(&[
        "init",
        &tuf,
        "-n",
        "beta",
        "--root-key",
        "beta.pem",
        "--targets-key",
        "beta.pem",
        "--snapshot-key",
        "beta.pem",
        "--timestamp-key",
        "beta.pem",
        "--out-root",
        "beta.json",
    ])
    .ok();
    env.run(&[
        "trust",
        "add",
        &place.repo("beta/*"),
        "--repo",
        &tuf,
        "-n",
        "beta",
        "--root",
        "beta.json",
    ])
    .ok();
    let a = place.repo("acme/app:1");
    let b = place.repo("beta/app:1");
    flows::push_image(&env, &a, "a");
    flows::push_image(&env, &b, "b");
    env.run(&["sign", &a, "--key", "app.pem"]).ok();
    // acme's team key is only trusted for acme/app: it cannot sign beta's image.
    env.run(&[
        "sign", &b, "--key", "app.pem", "--repo", &tuf, "--name", "acme",
    ])
    .fails(2, &["none of the given keys"]);
    // acme's targets key can sign anything into acme's own metadata…
    env.run(&[
        "sign",
        &b,
        "--key",
        "targets.pem",
        "--repo",
        &tuf,
        "--name",
        "acme",
    ])
    .ok();
    flows::publish(&env, &place).ok();
    env.run(&["verify", &a]).ok();
    // …but clients take beta's images only from beta's root of trust.
    env.run(&["verify", &b])
        .fails(1, &["is not signed", "\"beta\""]);
}

#[test]
fn root_rotation_with_a_pending_threshold_version() {
    let env = Env::new();
    let place = layout(&env);
    flows::set_up(&env, &place);
    let tuf = place.repo("acme/tuf");
    let image = place.repo("acme/app:1");
    flows::push_image(&env, &image, "x");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    flows::publish(&env, &place).ok();
    env.run(&["verify", &image]).ok();

    // Add a second root key and require both: root.pem alone cannot publish version 2.
    env.run(&["key", "generate", "--out", "root2.pem"]).ok();
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
        "--threshold",
        "2",
        "--key",
        "root.pem",
    ]);
    assert!(r.ok().contains("root version 2 is pending"), "{r:#?}");
    let status: serde_json::Value =
        serde_json::from_str(env.run(&["status", &tuf, "-n", "acme", "--json"]).ok()).unwrap();
    assert_eq!(status["pending_roots"][0]["version"], 2);
    assert_eq!(status["pending_roots"][0]["signed_by_new_keys"], 1);
    assert_eq!(status["roles"][0]["version"], 1);
    // Clients are not disturbed by the pending version.
    env.run(&["verify", &image]).ok();

    // The second holder signs later: now both thresholds are met and it is published.
    env.run(&["root", "sign", &tuf, "-n", "acme", "--key", "other.pem"])
        .fails(2, &["none of the given keys is a root key"]);
    let r = env.run(&["root", "sign", &tuf, "-n", "acme", "--key", "root2.pem"]);
    assert!(r.ok().contains("published root version 2"), "{r:#?}");
    env.run(&["verify", &image]).ok();
    let v: serde_json::Value =
        serde_json::from_str(env.run(&["verify", &image, "--json"]).ok()).unwrap();
    assert_eq!(v["versions"]["root"], 2);

    // Rotate the timestamp key: the old online key can no longer publish, the new one can.
    env.run(&["key", "generate", "--out", "online2.pem"]).ok();
    let old_id: serde_json::Value =
        serde_json::from_str(env.run(&["key", "show", "online.pem", "--json"]).ok()).unwrap();
    let old_id = old_id["keyid"].as_str().unwrap()[..12].to_owned();
    env.run(&[
        "root",
        "rotate",
        &tuf,
        "-n",
        "acme",
        "--role",
        "timestamp",
        "--add-key",
        "online2.pem",
        "--remove-key",
        &old_id,
        "--key",
        "root.pem",
        "--key",
        "root2.pem",
    ])
    .ok();
    flows::publish(&env, &place).fails(2, &["role \"timestamp\" needs"]);
    env.run(&[
        "publish",
        &tuf,
        "-n",
        "acme",
        "--snapshot-key",
        "online.pem",
        "--timestamp-key",
        "online2.pem",
    ])
    .ok();
    env.run(&["verify", &image]).ok();
    env.run(&["root", "sign", &tuf, "-n", "acme", "--key", "root.pem"])
        .fails(2, &["no pending root version 4"]);
}

/// The same hash-bin flow the registries run (crate::registries_roles::hash_bins).
#[test]
fn hash_bin_delegation() {
    let env = Env::new();
    crate::registries_roles::hash_bins(&env, &layout(&env));
}

#[test]
fn pin_by_digest_fetches_root_version_1() {
    let env = Env::new();
    let place = layout(&env);
    flows::set_up(&env, &place);
    let image = place.repo("acme/app:1");
    let d = flows::push_image(&env, &image, "x");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    flows::publish(&env, &place).ok();
    let root = std::fs::read(env.path("acme.root.json")).unwrap();
    let hex = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&root))
    };
    let other = Env::new();
    let tuf = place.repo("acme/tuf");
    other
        .run(&[
            "trust",
            "add",
            &place.repo("acme/*"),
            "--repo",
            &tuf,
            "-n",
            "acme",
            "--root-sha256",
            &hex,
        ])
        .ok();
    assert_eq!(other.run(&["verify", &image]).ok().trim(), d);
    // A pin that matches no root in the repository is refused.
    let third = Env::new();
    third
        .run(&[
            "trust",
            "add",
            &place.repo("acme/*"),
            "--repo",
            &tuf,
            "-n",
            "acme",
            "--root-sha256",
            &"0".repeat(64),
        ])
        .ok();
    third
        .run(&["verify", &image])
        .fails(1, &["no root version 1", "pinned sha256"]);
}

#[test]
fn pinned_root_file_changed_on_disk() {
    let env = Env::new();
    let place = layout(&env);
    flows::set_up(&env, &place);
    let list: serde_json::Value =
        serde_json::from_str(env.run(&["trust", "list", "--json"]).ok()).unwrap();
    let copy = list["trust"][0]["root"].as_str().unwrap().to_owned();
    std::fs::write(&copy, b"{\"signed\":{}}").unwrap();
    env.run(&["verify", &place.repo("acme/app:1")])
        .fails(2, &["the file changed", "ocituf trust add"]);
}
