//! The same flows against the two real test registries, started on 127.0.0.1 by the testkit:
//! distribution 2.8 (no referrers API: the tag-schema fallback) and the referrers registry
//! (native referrers API).

use ocituf_testkit::{Distribution, DistributionOptions, ReferrersRegistry};

use crate::flows::{self, Place};
use crate::support::Env;

fn place(addr: &str) -> Place {
    Place {
        prefix: format!("{addr}/"),
    }
}

#[test]
fn whole_flow_on_distribution_fallback() {
    let registry = Distribution::start();
    let env = Env::new();
    flows::whole_flow(&env, &place(registry.addr()));
}

#[test]
fn whole_flow_on_referrers_registry() {
    let registry = ReferrersRegistry::start();
    let env = Env::new();
    flows::whole_flow(&env, &place(registry.addr()));
}

#[test]
fn concurrent_signers_on_distribution_fallback_lose_nothing() {
    let registry = Distribution::start();
    let env = Env::new();
    flows::concurrent_signers(&env, &place(registry.addr()), 8);
}

#[test]
fn registry_stopped_mid_way_is_a_network_failure() {
    let registry = Distribution::start();
    let env = Env::new();
    let p = place(registry.addr());
    flows::set_up(&env, &p);
    let image = p.repo("acme/app:1");
    flows::push_image(&env, &image, "x");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    flows::publish(&env, &p).ok();
    env.run(&["verify", &image]).ok();
    registry.stop();
    env.run(&["verify", &image]).fails(3, &[registry.addr()]);
    env.run(&["sign", &image, "--key", "app.pem"])
        .fails(3, &[registry.addr()]);
}

/// The file in the root of trust's cache that remembers the registry's referrers support.
fn capability_file(env: &Env) -> std::path::PathBuf {
    let roots = env.path("cache/ocituf/roots");
    let mut dirs: Vec<_> = std::fs::read_dir(&roots)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap().join("referrers-capability")
}

fn verify_json(env: &Env, image: &str) -> serde_json::Value {
    serde_json::from_str(env.run(&["verify", image, "--json"]).ok()).unwrap()
}

/// Signed `acme/app:1.0` in a root of trust at `place`, verified once (cold cache).
fn signed_and_verified(env: &Env, place: &Place) -> String {
    flows::set_up(env, place);
    let image = place.repo("acme/app:1.0");
    let digest = flows::push_image(env, &image, "one");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    flows::publish(env, place).ok();
    assert_eq!(env.run(&["verify", &image]).ok().trim(), digest);
    image
}

/// docs/oci-mapping.md 6.1: warm cache, nothing new, a new process: one registry request,
/// on distribution 2.8 too (no referrers probe that 404s before the fallback index).
#[test]
fn warm_new_process_on_fallback_registry_is_one_request() {
    let registry = Distribution::start();
    let env = Env::new();
    let image = signed_and_verified(&env, &place(registry.addr()));
    assert_eq!(
        std::fs::read_to_string(capability_file(&env)).unwrap(),
        "tag-schema-fallback\n"
    );
    let probes = || registry.log().matches("/v2/acme/tuf/referrers/").count();
    let before = probes();
    // Every `ocituf` run is a new process with a new registry client.
    let json = verify_json(&env, &image);
    assert_eq!(json["registry_requests"], 1, "{json}");
    assert_eq!(json["metadata_requests"], 1, "{json}");
    assert_eq!(probes(), before, "no referrers probe in the warm run");
}

/// The remembered capability is untrusted input and may be out of date: a wrong or corrupt
/// value costs requests, never a failure.
#[test]
fn wrong_remembered_referrers_capability_still_verifies() {
    // Fallback registry remembered as native: the probe 404s, the index is read.
    let registry = Distribution::start();
    let env = Env::new();
    let image = signed_and_verified(&env, &place(registry.addr()));
    let file = capability_file(&env);
    std::fs::write(&file, "native\n").unwrap();
    let json = verify_json(&env, &image);
    assert_eq!(json["registry_requests"], 2, "{json}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "tag-schema-fallback\n"
    );
    // Garbage is ignored: detection as with no file.
    std::fs::write(&file, b"\xff\x00tag-schema-fallback, or so").unwrap();
    assert_eq!(verify_json(&env, &image)["registry_requests"], 2);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "tag-schema-fallback\n"
    );
    assert_eq!(verify_json(&env, &image)["registry_requests"], 1);

    // Native registry remembered as fallback (as after an upgrade from distribution 2.8):
    // the fallback index lists nothing, the resolver detects again and verifies.
    let registry = ReferrersRegistry::start();
    let env = Env::new();
    let image = signed_and_verified(&env, &place(registry.addr()));
    let file = capability_file(&env);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "native\n");
    assert_eq!(verify_json(&env, &image)["registry_requests"], 1);
    std::fs::write(&file, "tag-schema-fallback\n").unwrap();
    let json = verify_json(&env, &image);
    assert_eq!(json["verified"], true, "{json}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "native\n");
    assert_eq!(verify_json(&env, &image)["registry_requests"], 1);
}

/// `--ca-file`/`OCITUF_CA_FILE`: a registry whose certificate is signed by a private CA is
/// reached over TLS with that CA; with another CA its certificate is refused, without one a
/// loopback registry is spoken to in plain HTTP, which a TLS registry refuses (both network
/// failures, exit 3).
#[test]
fn registry_with_a_private_ca_needs_ca_file() {
    let tls = || {
        Distribution::start_with(DistributionOptions {
            tls: true,
            ..DistributionOptions::default()
        })
    };
    let registry = tls();
    let ca = registry.ca_cert_path().unwrap().display().to_string();
    let env = Env::new();
    let p = place(registry.addr());
    env.vars
        .borrow_mut()
        .push(("OCITUF_CA_FILE".to_owned(), ca.clone()));
    let image = signed_and_verified(&env, &p);
    env.vars.borrow_mut().clear();
    // Another registry's CA: a certificate the client does not trust.
    let other = tls();
    let other_ca = other.ca_cert_path().unwrap().display().to_string();

    let tuf = p.repo("acme/tuf");
    let status = ["status", tuf.as_str(), "-n", "acme"];
    let verify = ["verify", image.as_str()];
    for args in [&status[..], &verify[..]] {
        let with = |ca: &str| -> Vec<String> {
            ["--ca-file", ca]
                .iter()
                .chain(args)
                .map(|s| (*s).to_owned())
                .collect()
        };
        let run = |v: Vec<String>| env.run(&v.iter().map(String::as_str).collect::<Vec<_>>());
        run(with(&ca)).ok();
        run(with(&other_ca)).fails(
            3,
            &[registry.addr(), "https://", "invalid peer certificate"],
        );
        env.run(args)
            .fails(3, &[registry.addr(), "http://", "HTTP 400"]);
    }
    // `--plain-http` (or `OCITUF_PLAIN_HTTP`) wins over the CA file: plain HTTP.
    env.run(&["--plain-http", "--ca-file", &ca, "verify", &image])
        .fails(3, &["http://", "HTTP 400"]);
    env.run_env(
        &["--ca-file", &ca, "verify", &image],
        &[("OCITUF_PLAIN_HTTP", "true")],
    )
    .fails(3, &["http://", "HTTP 400"]);
    // The CA file applies to image reads and metadata writes too.
    env.run(&["--ca-file", &ca, "sign", &image, "--key", "app.pem"])
        .ok();
}
