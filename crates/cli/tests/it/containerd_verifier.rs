//! `ocituf containerd-verifier`, called exactly as containerd 2's "bindir" image-verifier
//! plugin calls its executables (docs/proxy.md; no Debian package reaches containerd 2, so
//! the protocol is tested as documented): `-name REF -digest DIGEST -stdin-media-type
//! application/vnd.oci.descriptor.v1+json`, the descriptor JSON on stdin, exit 0 to allow,
//! the reason on stdout.

use std::io::Write as _;
use std::process::Stdio;

use ocituf_testkit::Distribution;

use crate::flows::{self, Place};
use crate::support::{Env, Run};

const DESCRIPTOR: &str = "application/vnd.oci.descriptor.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// One call as containerd makes it (its descriptor JSON carries annotations too).
fn call(env: &Env, name: &str, digest: &str, size: u64, extra_env: &[(&str, &str)]) -> Run {
    let mut c = env.command();
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let mut child = c
        .args([
            "containerd-verifier",
            "-name",
            name,
            "-digest",
            digest,
            "-stdin-media-type",
            DESCRIPTOR,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let desc = serde_json::json!({
        "mediaType": MANIFEST, "digest": digest, "size": size,
        "annotations": {"io.containerd.image.name": name},
    });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(desc.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn allowed(run: &Run, needle: &str) {
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains(needle), "{run:#?}");
}

#[track_caller]
fn blocked(run: &Run, code: i32, needles: &[&str]) {
    assert_eq!(run.code, code, "{run:#?}");
    for n in needles {
        assert!(
            run.stdout.contains(n),
            "stdout (the reason) lacks {n:?}: {run:#?}"
        );
    }
}

#[test]
fn containerd_verifier_protocol() {
    let registry = Distribution::start();
    let env = Env::new();
    let p = Place {
        prefix: format!("{}/", registry.addr()),
    };
    flows::set_up(&env, &p);
    let image = p.repo("acme/app:1.0");
    let digest = flows::push_image(&env, &image, "one");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    let unsigned = p.repo("acme/app:unsigned");
    let unsigned_digest = flows::push_image(&env, &unsigned, "u");
    flows::publish(&env, &p).ok();
    let json: serde_json::Value =
        serde_json::from_str(env.run(&["verify", &image, "--json"]).ok()).unwrap();
    let size = json["length"].as_u64().unwrap();
    let no_cache = [("OCITUF_VERIFIER_DECISION_TTL", "0s")];

    // The signed digest for the tag, and for the name by digest.
    allowed(
        &call(&env, &image, &digest, size, &no_cache),
        "signed by targets role \"app\" v1 of root of trust \"acme\"",
    );
    allowed(
        &call(&env, &format!("{image}@{digest}"), &digest, size, &no_cache),
        "signed by",
    );
    allowed(
        &call(
            &env,
            &p.repo(&format!("acme/app@{digest}")),
            &digest,
            size,
            &no_cache,
        ),
        "signed by",
    );

    // containerd resolved another digest for the tag (the registry moved it): blocked,
    // naming role, version and both digests.
    blocked(
        &call(&env, &image, &unsigned_digest, size, &no_cache),
        1,
        &["targets role \"app\" v1", &digest, &unsigned_digest],
    );
    blocked(
        &call(&env, &unsigned, &unsigned_digest, size, &no_cache),
        1,
        &["acme/app:unsigned is not signed"],
    );
    // The signed digest with another size, a descriptor that disagrees with -digest, and
    // an image no root of trust covers.
    blocked(
        &call(&env, &image, &digest, size + 1, &no_cache),
        1,
        &["bytes"],
    );
    blocked(
        &call(&env, "other.example/x/y:1", &digest, size, &no_cache),
        2,
        &["no root of trust covers other.example/x/y:1"],
    );

    // The persistent decision cache: an allow is reused without the registry for its TTL;
    // with the TTL at zero the same call needs the registry (fail closed, exit 3), and a
    // refusal is never cached.
    allowed(&call(&env, &image, &digest, size, &[]), "signed by");
    registry.stop();
    allowed(
        &call(&env, &image, &digest, size, &[]),
        "allowed by a decision cached",
    );
    blocked(
        &call(&env, &image, &digest, size, &no_cache),
        3,
        &[registry.addr()],
    );
    blocked(
        &call(&env, &image, &unsigned_digest, size, &[]),
        3,
        &[registry.addr()],
    );
}
