//! `ocituf proxy` end to end: Debian's skopeo pulls through the proxy from both test
//! registries (distribution 2.8 without the referrers API, and the native-referrers
//! registry). Signed images pull; an unsigned tag, a moved tag and an expired timestamp are
//! refused, and skopeo's own output shows the proxy's message.

use ocituf_oci::Digest;
use ocituf_testkit::{Distribution, ReferrersRegistry};

use crate::flows::{self, Place};
use crate::proxy_support::{prefix, pull, push_multiarch, raw_manifest, ProxyProcess};
use crate::support::Env;

fn place(addr: &str) -> Place {
    Place {
        prefix: format!("{addr}/"),
    }
}

/// The manifest skopeo received hashes to `digest`.
#[track_caller]
fn served_digest(proxy: &str, path: &str) -> Digest {
    let out = raw_manifest(proxy, path);
    assert!(out.ok, "{out:#?}");
    Digest::of(out.stdout.as_bytes())
}

/// Every needle is in skopeo's stderr.
#[track_caller]
fn refused(out: &crate::proxy_support::Outcome, needles: &[&str]) {
    assert!(!out.ok, "expected a refusal: {out:#?}");
    for n in needles {
        assert!(
            out.stderr.contains(n),
            "skopeo's stderr lacks {n:?}: {out:#?}"
        );
    }
}

fn skopeo_flow(env: &Env, registry: &str) {
    let p = place(registry);
    flows::set_up(env, &p);
    let image = p.repo("acme/app:1.0");
    let digest = flows::push_image(env, &image, "one");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    let multi = p.repo("acme/app:multi");
    let (index, amd, arm) = push_multiarch(env, &multi, "good");
    env.run(&["sign", &multi, "--key", "app.pem"]).ok();
    let unsigned = p.repo("acme/app:unsigned");
    let unsigned_digest = flows::push_image(env, &unsigned, "nobody signed me");
    flows::publish(env, &p).ok();

    let proxy = ProxyProcess::start(env, &["--refresh-after", "1s"]);
    let at = |rest: &str| format!("{}/{rest}", prefix(registry));
    let out = |name: &str| env.path(&format!("pulled/{name}"));

    // Signed single-arch: pulled, and the manifest served is the signed one.
    let got = pull(&proxy.addr, &at("acme/app:1.0"), &[], &out("one"));
    assert!(got.ok, "{got:#?}\nproxy log:\n{}", proxy.log());
    assert_eq!(
        served_digest(&proxy.addr, &at("acme/app:1.0")).as_str(),
        digest
    );
    // By its signed digest too.
    let by_digest = pull(
        &proxy.addr,
        &at(&format!("acme/app@{digest}")),
        &[],
        &out("d"),
    );
    assert!(by_digest.ok, "{by_digest:#?}");

    // Signed multi-arch: every platform (index, then platform manifests by digest), and one
    // platform picked by skopeo from the verified index.
    let all = pull(&proxy.addr, &at("acme/app:multi"), &["--all"], &out("all"));
    assert!(all.ok, "{all:#?}\nproxy log:\n{}", proxy.log());
    for arch in ["amd64", "arm64"] {
        let one = pull(
            &proxy.addr,
            &at("acme/app:multi"),
            &["--override-os", "linux", "--override-arch", arch],
            &out(arch),
        );
        assert!(one.ok, "{arch}: {one:#?}\nproxy log:\n{}", proxy.log());
    }
    assert_eq!(served_digest(&proxy.addr, &at("acme/app:multi")), index);
    assert_eq!(
        served_digest(&proxy.addr, &at(&format!("acme/app@{arm}"))),
        arm
    );
    assert!(proxy
        .log()
        .contains("served platform manifest of a signed index"));
    let _ = amd;

    // An unsigned tag, and an unsigned manifest by digest: refused, skopeo shows why.
    let got = pull(&proxy.addr, &at("acme/app:unsigned"), &[], &out("u"));
    refused(
        &got,
        &[
            "denied: ocituf proxy:",
            "acme/app:unsigned is not signed",
            "root of trust \\\"acme\\\"",
        ],
    );
    let got = raw_manifest(&proxy.addr, &at(&format!("acme/app@{unsigned_digest}")));
    refused(
        &got,
        &["ocituf proxy:", "is not signed", "platform manifest"],
    );

    // The registry moves the signed tag: refused, naming role, version and both digests.
    let evil = flows::push_image(env, &image, "evil");
    let got = pull(&proxy.addr, &at("acme/app:1.0"), &[], &out("evil"));
    refused(
        &got,
        &[
            "ocituf proxy:",
            "targets role \\\"app\\\" v2",
            &format!("the registry says {evil}"),
            &format!("says {digest}"),
        ],
    );

    // A timestamp that expires: once it has, the proxy refreshes (its state may not outlive
    // the timestamp), finds nothing newer and refuses even the image it served before.
    env.run(&[
        "publish",
        &p.repo("acme/tuf"),
        "--name",
        "acme",
        "--snapshot-key",
        "online.pem",
        "--timestamp-key",
        "online.pem",
        "--timestamp-expires",
        "2s",
    ])
    .ok();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let got = pull(
        &proxy.addr,
        &at("acme/app:multi"),
        &["--all"],
        &out("expired"),
    );
    refused(&got, &["ocituf proxy:", "timestamp", "expired"]);
    // The metrics saw both kinds of answer.
    let metrics = http_get(&proxy.addr, "/metrics");
    assert!(
        metrics.contains("ocituf_proxy_manifest_decisions_total{outcome=\"denied\"}"),
        "{metrics}"
    );
}

/// A plain HTTP GET on loopback (the proxy's `/metrics`), body only.
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or(body)
}

#[test]
fn skopeo_pulls_through_the_proxy_from_distribution_fallback() {
    let registry = Distribution::start();
    let env = Env::new();
    skopeo_flow(&env, registry.addr());
}

#[test]
fn skopeo_pulls_through_the_proxy_from_referrers_registry() {
    let registry = ReferrersRegistry::start();
    let env = Env::new();
    skopeo_flow(&env, registry.addr());
}
