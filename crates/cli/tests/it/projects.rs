//! `project create` and `maintainer add|remove|list` on an OCI layout and both test
//! registries, and the refusals of bad maintainer changes.

use ocituf_testkit::{Distribution, ReferrersRegistry};
use serde_json::Value;

use crate::flows::Place;
use crate::support::Env;

fn layout(env: &Env) -> Place {
    Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    }
}

fn at(addr: &str) -> Place {
    Place {
        prefix: format!("{addr}/"),
    }
}

/// A root of trust `acme` in `acme/tuf`, and keys for three maintainers and a fourth.
pub fn init(env: &Env, place: &Place) -> String {
    for k in [
        "root", "targets", "online", "alice", "bob", "carol", "dave", "mallory",
    ] {
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
    ])
    .ok();
    tuf
}

/// The project `app` (acme/app:*), 2 of alice, bob and carol.
pub fn create_project(env: &Env, tuf: &str) {
    let out = env
        .run(&[
            "project",
            "create",
            tuf,
            "--name",
            "acme",
            "--project",
            "app",
            "--path",
            "acme/app:*",
            "--maintainer",
            "alice.pem",
            "--maintainer",
            "bob.pem",
            "--maintainer",
            "carol.pem",
            "--threshold",
            "2",
            "--signing-key",
            "targets.pem",
            "--root",
            "acme.root.json",
        ])
        .ok()
        .to_owned();
    assert!(out.contains("created project \"app\""), "{out}");
}

pub fn keyid(env: &Env, file: &str) -> String {
    let out = env.run(&["key", "show", file, "--json"]).ok().to_owned();
    let v: Value = serde_json::from_str(&out).unwrap();
    v["keyid"].as_str().unwrap().to_owned()
}

fn list(env: &Env, tuf: &str) -> Value {
    let out = env
        .run(&[
            "maintainer",
            "list",
            tuf,
            "--name",
            "acme",
            "--project",
            "app",
            "--root",
            "acme.root.json",
            "--json",
        ])
        .ok()
        .to_owned();
    serde_json::from_str(&out).unwrap()
}

fn keyids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v["maintainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["keyid"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn change<'a>(verb: &'a str, tuf: &'a str, key: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "maintainer",
        verb,
        tuf,
        "--name",
        "acme",
        "--project",
        "app",
        "--key",
        key,
        "--signing-key",
        "targets.pem",
        "--root",
        "acme.root.json",
    ];
    args.extend_from_slice(extra);
    args
}

fn maintainers_flow(env: &Env, place: &Place) {
    let tuf = init(env, place);
    create_project(env, &tuf);
    let v = list(env, &tuf);
    assert_eq!(v["threshold"], 2);
    assert_eq!(v["delegated_by"], "targets");
    assert_eq!(v["paths"][0], "acme/app:*");
    let mut want = vec![
        keyid(env, "alice.pem"),
        keyid(env, "bob.pem"),
        keyid(env, "carol.pem"),
    ];
    want.sort();
    assert_eq!(keyids(&v), want);

    // Creating it again is refused: its keys change with `maintainer`.
    env.run(&[
        "project",
        "create",
        &tuf,
        "--name",
        "acme",
        "--project",
        "app",
        "--path",
        "acme/*",
        "--maintainer",
        "mallory.pem",
        "--signing-key",
        "targets.pem",
        "--root",
        "acme.root.json",
    ])
    .fails(2, &["already exists", "ocituf maintainer add|remove"]);

    // Add dave, remove carol by key file and bob by keyid prefix.
    let out = env
        .run(&change("add", &tuf, "dave.pem", &[]))
        .ok()
        .to_owned();
    assert!(out.contains("2 of 4 maintainers"), "{out}");
    env.run(&change("remove", &tuf, "carol.pem", &[])).ok();
    let bob = keyid(env, "bob.pem");
    env.run(&change("remove", &tuf, &bob[..12], &[])).ok();
    let mut want = vec![keyid(env, "alice.pem"), keyid(env, "dave.pem")];
    want.sort();
    let before = list(env, &tuf);
    assert_eq!(keyids(&before), want);
    assert_eq!(before["threshold"], 2);

    // Removing a maintainer below the threshold is refused; nothing changes.
    env.run(&change("remove", &tuf, "dave.pem", &[])).fails(
        2,
        &[
            "below its threshold 2",
            "ocituf maintainer add",
            "--threshold",
        ],
    );
    assert_eq!(list(env, &tuf), before);
    // Lowering the threshold with it is what the refusal says to do.
    env.run(&change("remove", &tuf, "dave.pem", &["--threshold", "1"]))
        .ok();
    let after = list(env, &tuf);
    assert_eq!(keyids(&after), vec![keyid(env, "alice.pem")]);
    assert_eq!(after["threshold"], 1);
}

#[test]
fn maintainers_change_on_a_layout() {
    let env = Env::new();
    maintainers_flow(&env, &layout(&env));
}

#[test]
fn maintainers_change_on_distribution_fallback() {
    let registry = Distribution::start();
    let env = Env::new();
    maintainers_flow(&env, &at(registry.addr()));
}

#[test]
fn maintainers_change_on_referrers_registry() {
    let registry = ReferrersRegistry::start();
    let env = Env::new();
    maintainers_flow(&env, &at(registry.addr()));
}

#[test]
fn maintainer_key_that_is_not_a_key_is_refused() {
    let env = Env::new();
    let place = layout(&env);
    let tuf = init(&env, &place);
    create_project(&env, &tuf);
    let before = list(&env, &tuf);
    env.write("notakey.pem", "hello, I am not a key\n");
    env.run(&change("add", &tuf, "notakey.pem", &[]))
        .fails(2, &["notakey.pem", "is not a PEM public key"]);
    assert_eq!(list(&env, &tuf), before);
}

#[test]
fn maintainer_change_without_the_delegating_key_is_refused() {
    let env = Env::new();
    let place = layout(&env);
    let tuf = init(&env, &place);
    create_project(&env, &tuf);
    let before = list(&env, &tuf);
    // A maintainer cannot add a key to their own project: the delegating role signs.
    let mut args = change("add", &tuf, "mallory.pem", &[]);
    args[10] = "alice.pem";
    env.run(&args).fails(2, &["role \"targets\" needs"]);
    assert_eq!(list(&env, &tuf), before);
}

#[test]
fn removing_a_key_that_is_no_maintainer_is_refused() {
    let env = Env::new();
    let place = layout(&env);
    let tuf = init(&env, &place);
    create_project(&env, &tuf);
    env.run(&change("remove", &tuf, "mallory.pem", &[]))
        .fails(2, &["matches 0 maintainers", "ocituf maintainer list"]);
}
