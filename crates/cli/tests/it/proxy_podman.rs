//! podman (as root, vfs storage) pulls the upstream's image names through the proxy with the
//! registries.conf that `ocituf config podman` prints: signed images pull, refusals show our
//! message, and nothing reaches the upstream directly (an unsigned tag stays refused; with
//! a plain `[[registry.mirror]]` instead, podman falls back to the upstream and pulls it).

use std::path::Path;
use std::process::Command;

use ocituf_testkit::{Distribution, ReferrersRegistry};

use crate::flows::{self, Place};
use crate::proxy_support::{push_multiarch, Outcome, ProxyProcess};
use crate::support::Env;

/// Run podman with its own storage (vfs), registries.conf and signature policy.
fn podman(env: &Env, registries_conf: &Path, args: &[&str]) -> Outcome {
    let policy = env.write(
        "podman/policy.json",
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    );
    let root = env.path("podman/root");
    let run = env.path("podman/run");
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_REGISTRIES_CONF", registries_conf)
        .args([
            "--root",
            root.to_str().unwrap(),
            "--runroot",
            run.to_str().unwrap(),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ])
        .args(args);
    if args.first() == Some(&"pull") {
        cmd.args(["--signature-policy", policy.to_str().unwrap()]);
    }
    match ocituf_testkit::run(&mut cmd) {
        Ok(stdout) => Outcome {
            ok: true,
            stdout,
            stderr: String::new(),
        },
        Err(ocituf_testkit::Error::CommandFailed { stdout, stderr, .. }) => Outcome {
            ok: false,
            stdout,
            stderr,
        },
        Err(ocituf_testkit::Error::Spawn { .. }) => panic!(
            "podman not found: run `{}` (as root) to install it",
            ocituf_testkit::INSTALL_COMMAND
        ),
        Err(e) => panic!("{e}"),
    }
}

#[track_caller]
fn refused(out: &Outcome, needles: &[&str]) {
    assert!(!out.ok, "expected a refusal: {out:#?}");
    for n in needles {
        assert!(
            out.stderr.contains(n),
            "podman's stderr lacks {n:?}: {out:#?}"
        );
    }
}

fn podman_flow(env: &Env, registry: &str) {
    let p = Place {
        prefix: format!("{registry}/"),
    };
    flows::set_up(env, &p);
    let image = p.repo("acme/app:1.0");
    let digest = flows::push_image(env, &image, "one");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    let multi = p.repo("acme/app:multi");
    push_multiarch(env, &multi, "good");
    env.run(&["sign", &multi, "--key", "app.pem"]).ok();
    let unsigned = p.repo("acme/app:unsigned");
    flows::push_image(env, &unsigned, "nobody signed me");
    flows::publish(env, &p).ok();

    let proxy = ProxyProcess::start(env, &[]);
    // The snippet under test, as printed (upstreams from the trust policy).
    let snippet = env
        .run(&["config", "podman", "--proxy", &proxy.addr, "--plain-http"])
        .ok()
        .to_owned();
    let conf = env.write("podman/registries.conf", &snippet);

    let pulled = podman(env, &conf, &["pull", "-q", &image]);
    assert!(pulled.ok, "{pulled:#?}\nproxy log:\n{}", proxy.log());
    let inspected = podman(
        env,
        &conf,
        &["image", "inspect", "--format", "{{.Digest}}", &image],
    );
    assert_eq!(inspected.stdout.trim(), digest, "{inspected:#?}");
    assert!(
        proxy.log().contains("served signed manifest"),
        "the pull went through the proxy:\n{}",
        proxy.log()
    );
    for arch in ["amd64", "arm64"] {
        let pulled = podman(env, &conf, &["pull", "-q", "--arch", arch, &multi]);
        assert!(
            pulled.ok,
            "{arch}: {pulled:#?}\nproxy log:\n{}",
            proxy.log()
        );
    }
    assert!(proxy
        .log()
        .contains("served platform manifest of a signed index"));

    // Refused, with our message, and no way around the proxy.
    refused(
        &podman(env, &conf, &["pull", "-q", &unsigned]),
        &["ocituf proxy:", "acme/app:unsigned is not signed"],
    );
    let evil = flows::push_image(env, &image, "evil");
    refused(
        &podman(env, &conf, &["pull", "-q", &image]),
        &[
            "ocituf proxy:",
            &format!("the registry says {evil}"),
            &format!("says {digest}"),
        ],
    );

    // Why the snippet rewrites the location instead of adding a mirror: with a mirror,
    // podman goes to the upstream itself when the mirror refuses.
    let mirror = env.write(
        "podman/mirror.conf",
        &format!(
            "[[registry]]\nprefix = \"{registry}\"\nlocation = \"{registry}\"\ninsecure = true\n\
             [[registry.mirror]]\nlocation = \"{}/{}\"\ninsecure = true\n",
            proxy.addr,
            registry.replace(':', "-")
        ),
    );
    let bypass = podman(env, &mirror, &["pull", "-q", &unsigned]);
    assert!(
        bypass.ok,
        "a mirror entry falls back to the upstream (the door the snippet closes): {bypass:#?}"
    );
}

#[test]
fn podman_pulls_through_the_proxy_from_distribution_fallback() {
    let registry = Distribution::start();
    let env = Env::new();
    podman_flow(&env, registry.addr());
}

#[test]
fn podman_pulls_through_the_proxy_from_referrers_registry() {
    let registry = ReferrersRegistry::start();
    let env = Env::new();
    podman_flow(&env, registry.addr());
}
