//! Keys in hardware: every key role of a root of trust on a SoftHSM2 token (`--key
//! pkcs11:…`), on an OCI layout and the fallback registry. The private keys are generated on
//! the token, never extractable, and no key file exists: every signature a client verifies
//! was made inside SoftHSM2. Also a 2-of-2 release co-signed by a token key and a file key,
//! and the refusals of unusable token URIs.

use ocituf_testkit::{Distribution, SoftHsm, TokenKey};

use crate::flows::{push_image, set_up_with, Keys, Place};
use crate::support::Env;

/// An environment that sees the token, and a token with one key of each supported type:
/// root (P-256), targets (Ed25519), online snapshot and timestamp (RSA), the app team (P-256).
pub fn token_env() -> (Env, SoftHsm) {
    let hsm = SoftHsm::new();
    hsm.generate(TokenKey::EcdsaP256, "root", "01");
    hsm.generate(TokenKey::Ed25519, "targets", "02");
    hsm.generate(TokenKey::Rsa2048, "online", "03");
    hsm.generate(TokenKey::EcdsaP256, "app", "04");
    let env = Env::new();
    env.vars.borrow_mut().extend(hsm.env());
    (env, hsm)
}

/// On the registry at `addr`, or on an OCI layout in the environment.
fn every_role_on_the_token(addr: Option<&str>) {
    let (env, hsm) = token_env();
    let place = &Place {
        prefix: addr.map_or_else(
            || format!("oci:{}:", env.path("registry").display()),
            |a| format!("{a}/"),
        ),
    };
    let tuf = place.repo("acme/tuf");
    let (root, targets, online, app) = (
        hsm.uri("root"),
        hsm.uri("targets"),
        hsm.uri("online"),
        hsm.uri("app"),
    );
    // Every key on the token; the team's public key is read from the token too.
    set_up_with(
        &env,
        place,
        &Keys {
            root: &root,
            targets: &targets,
            online: &online,
            app: &app,
        },
    );
    let image = place.repo("acme/app:1.0");
    let digest = push_image(&env, &image, "signed in hardware");
    env.run(&["sign", &image, "--key", &app]).ok();
    env.run(&[
        "publish",
        &tuf,
        "--name",
        "acme",
        "--snapshot-key",
        &online,
        "--timestamp-key",
        &online,
    ])
    .ok();
    assert_eq!(env.run(&["verify", &image]).ok().trim(), digest);
    let by_digest = format!("{}@{digest}", place.repo("acme/app"));
    assert_eq!(env.run(&["verify", &by_digest]).ok().trim(), digest);

    // The keyids in root are the token's keys, and a root rotation signed on the token (adding
    // a token key to the timestamp role) is published and keeps clients verifying.
    let shown = env.run(&["key", "show", &root, "--json"]).ok().to_owned();
    let keyid = serde_json::from_str::<serde_json::Value>(&shown).unwrap()["keyid"]
        .as_str()
        .unwrap()
        .to_owned();
    let root_json = std::fs::read_to_string(env.path("acme.root.json")).unwrap();
    assert!(
        root_json.contains(&keyid),
        "root v1 lacks the token's keyid"
    );
    env.run(&[
        "root",
        "rotate",
        &tuf,
        "--name",
        "acme",
        "--role",
        "timestamp",
        "--add-key",
        &app,
        "--key",
        &root,
        "--root",
        "acme.root.json",
    ])
    .ok();
    assert_eq!(env.run(&["verify", &image]).ok().trim(), digest);

    // No key ever left the token: no PEM anywhere, and SoftHSM2 marks every private key
    // sensitive and never extractable.
    let pems: Vec<_> = walk(env.dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pem"))
        .collect();
    assert_eq!(pems, Vec::<std::path::PathBuf>::new());
    let listed = hsm.private_keys();
    assert_eq!(listed.matches("Private Key Object").count(), 4, "{listed}");
    assert_eq!(
        listed
            .matches("sensitive, always sensitive, never extractable")
            .count(),
        4,
        "{listed}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn every_key_role_signs_inside_softhsm_on_the_layout() {
    every_role_on_the_token(None);
}

#[test]
fn every_key_role_signs_inside_softhsm_on_the_fallback_registry() {
    let registry = Distribution::start();
    every_role_on_the_token(Some(registry.addr()));
}

/// A 2-of-2 project: one maintainer's key on the token, the other's in a file. The token
/// holder signs first, the file holder co-signs later; clients accept it only then.
#[test]
fn a_release_cosigned_by_a_token_key_and_a_file_key() {
    let (env, hsm) = token_env();
    let place = Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    };
    for k in ["root", "targets", "online", "bob"] {
        env.run(&["key", "generate", "--out", &format!("{k}.pem")])
            .ok();
    }
    let tuf = place.repo("acme/tuf");
    let alice = hsm.uri("app");
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
    ])
    .ok();
    env.run(&[
        "project",
        "create",
        &tuf,
        "--name",
        "acme",
        "--project",
        "app",
        "--path",
        "acme/app:*",
        "--maintainer",
        &alice,
        "--maintainer",
        "bob.pem",
        "--threshold",
        "2",
        "--signing-key",
        "targets.pem",
        "--root",
        "acme.root.json",
    ])
    .ok();
    env.run(&[
        "trust",
        "add",
        &place.repo("acme/*"),
        "--repo",
        &tuf,
        "--name",
        "acme",
        "--root",
        "acme.root.json",
    ])
    .ok();
    let image = place.repo("acme/app:2.0");
    let digest = push_image(&env, &image, "release 2.0");
    let publish = || {
        env.run(&[
            "publish",
            &tuf,
            "--name",
            "acme",
            "--snapshot-key",
            "online.pem",
            "--timestamp-key",
            "online.pem",
        ])
        .ok();
    };
    let out = env.run(&["sign", &image, "--key", &alice]).ok().to_owned();
    assert!(out.contains("is pending: 1/2 signatures"), "{out}");
    publish();
    env.run(&["verify", &image]).fails(1, &[]);
    let out = env
        .run(&[
            "cosign", &tuf, "--name", "acme", "--role", "app", "--key", "bob.pem",
        ])
        .ok()
        .to_owned();
    assert!(out.contains("is signed (2/2)"), "{out}");
    publish();
    assert_eq!(env.run(&["verify", &image]).ok().trim(), digest);
}

/// Token URIs that cannot sign are refused before anything is written, with what to change.
#[test]
fn unusable_token_uris_are_refused_with_what_to_do() {
    let (env, hsm) = token_env();
    let module = ocituf_testkit::SOFTHSM_MODULE;
    let show = |uri: &str| env.run(&["key", "show", uri]);
    show(&format!(
        "pkcs11:token={};object=root?module-path={module}&pin-value=9999",
        hsm.token
    ))
    .fails(2, &["the token refused the PIN", "pin-value=…"]);
    show(&format!(
        "pkcs11:token={};object=nope?module-path={module}&pin-value=1234",
        hsm.token
    ))
    .fails(
        2,
        &["has no private key with that object/id", "--list-objects"],
    );
    show(&format!(
        "pkcs11:token=other;object=root?module-path={module}&pin-value=1234"
    ))
    .fails(2, &["no token matches", "\"ocituf\""]);
    show(&format!("pkcs11:token={};object=root", hsm.token))
        .fails(2, &["which PKCS#11 module?", "OCITUF_PKCS11_MODULE"]);
    show(&format!(
        "pkcs11:token={};object=root?module-path=/nonexistent.so",
        hsm.token
    ))
    .fails(2, &["could not load the PKCS#11 module /nonexistent.so"]);
    show(&format!(
        "pkcs11:token={};objekt=root?module-path={module}",
        hsm.token
    ))
    .fails(2, &["unknown path attribute \"objekt\""]);
    show(&format!(
        "pkcs11:token={};object=root?module-path={module}",
        hsm.token
    ))
    .fails(2, &["no PIN", "pin-source=file:PATH", "OCITUF_PKCS11_PIN"]);
    // The PIN from the environment, the module too.
    let ok = env.run_env(
        &[
            "key",
            "show",
            &format!("pkcs11:token={};object=root", hsm.token),
        ],
        &[
            ("OCITUF_PKCS11_MODULE", module),
            ("OCITUF_PKCS11_PIN", SoftHsm::PIN),
        ],
    );
    assert!(ok.ok().contains("ecdsa-sha2-nistp256"), "{ok:#?}");
}
