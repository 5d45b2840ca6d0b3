//! `ocituf trust add|list|remove` and policy mistakes.

use crate::support::Env;

const ROOT: &str = r#"{"signed":{"_type":"root","version":1},"signatures":[]}"#;

#[test]
fn add_list_remove() {
    let env = Env::new();
    env.write("acme.root.json", ROOT);
    assert!(env
        .run(&["trust", "list"])
        .ok()
        .contains("no roots of trust"));
    env.run(&[
        "trust",
        "add",
        "registry.example.com/acme/*",
        "--repo",
        "registry.example.com/acme/tuf",
        "--name",
        "acme",
        "--root",
        "acme.root.json",
    ])
    .ok();
    let json: serde_json::Value =
        serde_json::from_str(env.run(&["trust", "list", "--json"]).ok()).unwrap();
    let e = &json["trust"][0];
    assert_eq!(e["scope"], "registry.example.com/acme/*");
    assert_eq!(e["repository"], "registry.example.com/acme/tuf");
    assert_eq!(e["root_of_trust"], "acme");
    assert_eq!(e["root_sha256"].as_str().unwrap().len(), 64);
    // The pinned root is copied next to the policy, so deleting the original is harmless.
    let copy = e["root"].as_str().unwrap();
    assert!(copy.starts_with(env.path("config/ocituf/roots").to_str().unwrap()));
    assert_eq!(std::fs::read_to_string(copy).unwrap(), ROOT);

    env.run(&[
        "trust",
        "add",
        "registry.example.com/acme/*",
        "--repo",
        "r.io/x/tuf",
        "-n",
        "x",
        "--root",
        "acme.root.json",
    ])
    .fails(2, &["already in the trust policy"]);
    env.run(&["trust", "remove", "registry.example.com/acme/*"])
        .ok();
    env.run(&["trust", "remove", "registry.example.com/acme/*"])
        .fails(2, &["not in the trust policy", "ocituf trust list"]);
}

#[test]
fn config_env_var_names_the_policy_file() {
    let env = Env::new();
    let file = env.path("elsewhere/policy.toml");
    let r = env.run_env(
        &[
            "trust",
            "add",
            "r.io/acme/*",
            "--repo",
            "r.io/acme/tuf",
            "-n",
            "acme",
            "--root-sha256",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ],
        &[("OCITUF_CONFIG", file.to_str().unwrap())],
    );
    r.ok();
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("root-sha256"));
    assert!(!env.policy().exists());
}

#[test]
fn policy_mistakes_name_the_file_and_key() {
    let env = Env::new();
    let policy = env.write(
        "config/ocituf/policy.toml",
        "[[trust]]\nscope = \"r.io/acme/*\"\nrepository = \"r.io/acme/tuf\"\nroot-of-trust = \"acme\"\nroot-sha256 = \"xyz\"\n",
    );
    env.run(&["trust", "list"]).fails(
        2,
        &[
            policy.to_str().unwrap(),
            "entry 1",
            "root-sha256",
            "64 lowercase hex",
        ],
    );
    env.write(
        "config/ocituf/policy.toml",
        "[[trust]]\nscope = \"r.io/acme/*\"\nrepository = \"r.io/acme/tuf\"\nroot-of-trust = \"acme\"\nroot-sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\nroots = \"x\"\n",
    );
    env.run(&["trust", "list"])
        .fails(2, &[policy.to_str().unwrap(), "roots"]);
}

#[test]
fn a_file_that_is_not_a_root_is_not_pinned() {
    let env = Env::new();
    env.write(
        "t.json",
        r#"{"signed":{"_type":"targets"},"signatures":[]}"#,
    );
    env.run(&[
        "trust",
        "add",
        "r.io/acme/*",
        "--repo",
        "r.io/acme/tuf",
        "-n",
        "acme",
        "--root",
        "t.json",
    ])
    .fails(2, &["not TUF root metadata"]);
    env.run(&[
        "trust",
        "add",
        "r.io/acme/*",
        "--repo",
        "r.io/acme/tuf",
        "-n",
        "acme",
        "--root-sha256",
        "abc",
    ])
    .fails(2, &["--root-sha256"]);
    env.run(&[
        "trust",
        "add",
        "r.io/acme/*/x",
        "--repo",
        "r.io/acme/tuf",
        "-n",
        "acme",
        "--root-sha256",
        "abc",
    ])
    .fails(2, &["invalid scope"]);
}
