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

/// A plain HTTP/1.1 GET on loopback: (status, body).
pub fn http_get_full(addr: &str, path: &str, accept: &str) -> (u16, Vec<u8>) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, raw[split + 4..].to_vec())
}

/// The body of a GET (the proxy's `/metrics`).
pub fn http_get(addr: &str, path: &str) -> String {
    String::from_utf8(http_get_full(addr, path, "*/*").1).unwrap()
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

/// Requests for the metadata repository `acme/tuf` in the registry's access log.
fn metadata_requests(registry: &Distribution) -> usize {
    registry
        .log()
        .lines()
        .filter(|l| l.contains("response completed") && l.contains("/v2/acme/tuf/"))
        .count()
}

/// One trusted state per root of trust: 100 concurrent manifest GETs of one signed tag on a
/// proxy with a cold cache cost one refresh, i.e. exactly the metadata requests of one cold
/// `ocituf verify`, not one refresh each.
#[test]
fn hundred_concurrent_pulls_cost_one_refresh() {
    let registry = Distribution::start();
    let env = Env::new();
    let p = place(registry.addr());
    flows::set_up(&env, &p);
    let image = p.repo("acme/app:1.0");
    let digest = flows::push_image(&env, &image, "one");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    flows::publish(&env, &p).ok();

    let before = metadata_requests(&registry);
    env.run(&["--cache-dir", "cold-verify", "verify", &image])
        .ok();
    let one_cold_refresh = metadata_requests(&registry) - before;
    assert!(one_cold_refresh > 1, "{one_cold_refresh}");

    let proxy = ProxyProcess::start(&env, &["--cache-dir", "cold-proxy"]);
    let before = metadata_requests(&registry);
    let path = format!("/v2/{}/acme/app/manifests/1.0", prefix(registry.addr()));
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let answers: Vec<(u16, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| s.spawn(|| http_get_full(&proxy.addr, &path, accept)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, body) in &answers {
        assert_eq!(
            *status,
            200,
            "{}\n{}",
            String::from_utf8_lossy(body),
            proxy.log()
        );
        assert_eq!(Digest::of(body).as_str(), digest);
    }
    assert_eq!(
        metadata_requests(&registry) - before,
        one_cold_refresh,
        "100 concurrent pulls cost more than one refresh; proxy log:\n{}",
        proxy.log()
    );
    let metrics = http_get(&proxy.addr, "/metrics");
    assert!(
        metrics.contains("ocituf_proxy_refreshes_total{root_of_trust=\"acme\""),
        "{metrics}"
    );
    let refreshes: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("ocituf_proxy_refreshes_total{"))
        .collect();
    assert_eq!(refreshes.len(), 1, "{metrics}");
    assert!(refreshes[0].ends_with(" 1"), "{metrics}");
    assert!(
        metrics.contains("ocituf_proxy_manifest_decisions_total{outcome=\"signed\"} 100"),
        "{metrics}"
    );
}
