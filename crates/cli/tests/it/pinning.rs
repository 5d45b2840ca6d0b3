//! Writers and `status` check the registry's root chain against a pinned root (`--root`, or
//! the trust policy entry for the repository and name); without one they refuse.

use crate::flows::{self, Place};
use crate::support::Env;

fn layout(env: &Env) -> Place {
    Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    }
}

fn init(env: &Env, tuf: &str, root_key: &str, out_root: &str) {
    env.run(&[
        "init",
        tuf,
        "--name",
        "acme",
        "--root-key",
        root_key,
        "--targets-key",
        root_key,
        "--snapshot-key",
        root_key,
        "--timestamp-key",
        root_key,
        "--out-root",
        out_root,
    ])
    .ok();
}

fn delegate_args<'a>(tuf: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "delegate",
        tuf,
        "--name",
        "acme",
        "--role",
        "web",
        "--path",
        "acme/web:*",
        "--key",
        "app.pem",
        "--signing-key",
        "targets.pem",
    ];
    v.extend_from_slice(extra);
    v
}

/// The registry replaces the whole root chain with another root of trust of the same name
/// made with the attacker's keys. With the genuine pin every writer and `status` refuse
/// (exit 1, naming the root mismatch) before signing anything.
#[test]
fn root_chain_swapped_by_registry() {
    let env = Env::new();
    let place = layout(&env);
    flows::set_up(&env, &place);
    let tuf = place.repo("acme/tuf");
    let image = place.repo("acme/app:1.0");
    flows::push_image(&env, &image, "genuine");

    // The attacker's root of trust "acme", built elsewhere with other keys, then served in
    // place of the genuine one (same registry, repository and name).
    env.run(&["key", "generate", "--out", "evil.pem"]).ok();
    let evil_tuf = format!("oci:{}:acme/tuf", env.path("evil").display());
    init(&env, &evil_tuf, "evil.pem", "evil.root.json");
    std::fs::remove_dir_all(env.path("registry")).unwrap();
    std::fs::rename(env.path("evil"), env.path("registry")).unwrap();
    flows::push_image(&env, &image, "genuine");

    let mismatch = ["root mismatch", "not the pinned root's"];
    // Pin from the trust policy entry (repository and name match).
    flows::publish(&env, &place).fails(1, &mismatch);
    env.run(&["status", &tuf, "-n", "acme"]).fails(1, &mismatch);
    env.run(&["sign", &image, "--key", "app.pem"])
        .fails(1, &mismatch);
    // Pin given explicitly.
    env.run(&delegate_args(&tuf, &["--root", "acme.root.json"]))
        .fails(1, &mismatch);
    env.run(&[
        "root",
        "rotate",
        &tuf,
        "-n",
        "acme",
        "--root",
        "acme.root.json",
        "--role",
        "timestamp",
        "--threshold",
        "1",
        "--key",
        "root.pem",
    ])
    .fails(1, &mismatch);
    env.run(&[
        "sign",
        &image,
        "--key",
        "app.pem",
        "--repo",
        &tuf,
        "--name",
        "acme",
        "--root",
        "acme.root.json",
    ])
    .fails(1, &mismatch);
    // The attacker's chain is untouched: nothing was signed on top of it.
    let evil = env.run(&[
        "status",
        &tuf,
        "-n",
        "acme",
        "--root",
        "evil.root.json",
        "--json",
    ]);
    let evil: serde_json::Value = serde_json::from_str(evil.ok()).unwrap();
    assert!(
        !evil.to_string().contains("\"web\""),
        "a role was delegated on the attacker's root: {evil}"
    );
}

/// No `--root` and no trust policy entry: every writer and `status` refuse with exit 2 and
/// say what to pass; `--danger-trust-on-first-use` is the explicit escape hatch.
#[test]
fn writers_without_a_pin_refuse() {
    let env = Env::new();
    let place = layout(&env);
    for k in ["root", "targets", "app"] {
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
        "root.pem",
        "--timestamp-key",
        "root.pem",
        "--out-root",
        "acme.root.json",
    ])
    .ok();
    let no_pin = [
        "no pinned root for \"acme\"",
        "--root acme.root.json",
        "ocituf trust add",
        "--danger-trust-on-first-use",
    ];
    flows::publish(&env, &place).fails(2, &no_pin);
    env.run(&delegate_args(&tuf, &[])).fails(2, &no_pin);
    env.run(&["status", &tuf, "-n", "acme"]).fails(2, &no_pin);
    env.run(&[
        "root",
        "rotate",
        &tuf,
        "-n",
        "acme",
        "--role",
        "timestamp",
        "--threshold",
        "1",
        "--key",
        "root.pem",
    ])
    .fails(2, &no_pin);
    env.run(&["root", "sign", &tuf, "-n", "acme", "--key", "root.pem"])
        .fails(2, &no_pin);
    let image = place.repo("acme/app:1.0");
    flows::push_image(&env, &image, "x");
    env.run(&[
        "sign",
        &image,
        "--key",
        "targets.pem",
        "--repo",
        &tuf,
        "--name",
        "acme",
    ])
    .fails(2, &no_pin);

    // With the pin it works; the escape hatch works and says it is dangerous.
    env.run(&delegate_args(&tuf, &["--root", "acme.root.json"]))
        .ok();
    let tofu = env.run(&["status", &tuf, "-n", "acme", "--danger-trust-on-first-use"]);
    tofu.ok();
    assert!(
        tofu.stderr.contains("warning: --danger-trust-on-first-use"),
        "{tofu:#?}"
    );
}

/// Progress lines go to stderr only, start with `ocituf:`, and `--quiet` drops them.
#[test]
fn progress_on_stderr_and_quiet() {
    let env = Env::new();
    let place = layout(&env);
    env.run(&["key", "generate", "--out", "k.pem"]).ok();
    let tuf = place.repo("acme/tuf");
    let args = |name: &'static str| {
        vec![
            "init".to_owned(),
            tuf.clone(),
            "--name".into(),
            name.into(),
            "--root-key".into(),
            "k.pem".into(),
            "--targets-key".into(),
            "k.pem".into(),
            "--snapshot-key".into(),
            "k.pem".into(),
            "--timestamp-key".into(),
            "k.pem".into(),
            "--out-root".into(),
            format!("{name}.root.json"),
        ]
    };
    let loud = env.run(&args("acme").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!loud.ok().contains("ocituf:"), "{loud:#?}");
    assert!(
        loud.stderr
            .contains("ocituf: pushing root, targets, snapshot and timestamp version 1"),
        "{loud:#?}"
    );
    let mut quiet = args("beta");
    quiet.push("-q".into());
    let quiet = env.run(&quiet.iter().map(String::as_str).collect::<Vec<_>>());
    quiet.ok();
    assert_eq!(quiet.stderr, "", "{quiet:#?}");
    let publish = env.run(&[
        "publish",
        &tuf,
        "-n",
        "acme",
        "--root",
        "acme.root.json",
        "--snapshot-key",
        "k.pem",
        "--timestamp-key",
        "k.pem",
    ]);
    assert!(!publish.ok().contains("ocituf:"), "{publish:#?}");
    assert!(
        publish
            .stderr
            .contains("ocituf: signing snapshot version 2"),
        "{publish:#?}"
    );
}
