//! `ocituf root sign` never signs a pending root the holder did not ask for: pending roots are
//! untrusted registry content, and anyone who can push may add a rival candidate.

use crate::flows::{self, Place};
use crate::support::Env;

fn layout(env: &Env) -> Place {
    Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    }
}

/// `content sha256:…` as `root rotate` prints it.
fn content_of(stdout: &str) -> String {
    let rest = stdout
        .split("content ")
        .nth(1)
        .unwrap_or_else(|| panic!("no content digest in {stdout:?}"));
    rest.split(|c: char| c == ';' || c.is_whitespace())
        .next()
        .unwrap()
        .to_owned()
}

fn rotate_adding(env: &Env, tuf: &str, key: &str) -> String {
    env.run(&["key", "generate", "--out", key]).ok();
    let r = env.run(&[
        "root",
        "rotate",
        tuf,
        "-n",
        "acme",
        "--role",
        "root",
        "--add-key",
        key,
        "--threshold",
        "2",
        "--key",
        "root.pem",
    ]);
    let out = r.ok().to_owned();
    assert!(out.contains("root version 2 is pending"), "{out}");
    content_of(&out)
}

#[test]
fn rival_pending_root_is_not_signed_blindly() {
    let env = Env::new();
    let place = layout(&env);
    flows::set_up(&env, &place);
    let tuf = place.repo("acme/tuf");

    // The genuine rotation, then a rival candidate for the same version naming another key.
    let genuine = rotate_adding(&env, &tuf, "root2.pem");
    let rival = rotate_adding(&env, &tuf, "mallory.pem");
    assert_ne!(genuine, rival);

    // Status shows both contents, so holders can tell them apart.
    let status: serde_json::Value =
        serde_json::from_str(env.run(&["status", &tuf, "-n", "acme", "--json"]).ok()).unwrap();
    let listed: Vec<&str> = status["pending_roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["content"].as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&genuine.as_str()) && listed.contains(&rival.as_str()),
        "{status}"
    );

    // Without --expect, ocituf refuses to choose between them (a usage/configuration error).
    env.run(&["root", "sign", &tuf, "-n", "acme", "--key", "root2.pem"])
        .fails(
            2,
            &[
                "rival pending roots for version 2",
                &genuine,
                &rival,
                "--expect",
            ],
        );
    // A digest that names neither is refused too.
    let wrong = format!("sha256:{}", "0".repeat(64));
    env.run(&[
        "root",
        "sign",
        &tuf,
        "-n",
        "acme",
        "--key",
        "root2.pem",
        "--expect",
        &wrong,
    ])
    .fails(2, &["has content", &wrong]);

    // With the genuine digest, the second holder completes exactly the genuine rotation.
    let r = env.run(&[
        "root",
        "sign",
        &tuf,
        "-n",
        "acme",
        "--key",
        "root2.pem",
        "--expect",
        &genuine,
    ]);
    assert!(r.ok().contains("published root version 2"), "{r:#?}");
    let status: serde_json::Value =
        serde_json::from_str(env.run(&["status", &tuf, "-n", "acme", "--json"]).ok()).unwrap();
    assert_eq!(status["roles"][0]["version"], 2, "{status}");
    // Root version 2 names root.pem and root2.pem, and not mallory's key.
    let keyid = |file: &str| -> String {
        let v: serde_json::Value =
            serde_json::from_str(env.run(&["key", "show", file, "--json"]).ok()).unwrap();
        v["keyid"].as_str().unwrap().to_owned()
    };
    let mut expected = vec![keyid("root.pem"), keyid("root2.pem")];
    expected.sort();
    let mut got: Vec<String> = status["roles"][0]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    got.sort();
    assert_eq!(got, expected, "{status}");
    assert!(!got.contains(&keyid("mallory.pem")));
}
