//! The `ocituf` binary against a lying registry: owners publish to a real test registry,
//! the client verifies through `ocituf_testkit::AdversarialProxy`. Each refusal is asserted
//! by its exit code (1 refused, 2 configuration, 3 network) and message; an endless-data
//! attack is measured in the child's peak RSS (GNU time's `%M`), which must stay under
//! 64 MiB.

use std::process::Command;

use ocituf_testkit::{AdversarialProxy, Behaviour, Distribution, Match, ReferrersRegistry};

use crate::flows::{self, Place};
use crate::support::{bin, Env, Run};

/// One of the two real registries, alive for the test.
enum Registry {
    Distribution(Distribution),
    Native(ReferrersRegistry),
}

impl Registry {
    fn addr(&self) -> &str {
        match self {
            Registry::Distribution(r) => r.addr(),
            Registry::Native(r) => r.addr(),
        }
    }
}

struct Setup {
    _registry: Registry,
    proxy: AdversarialProxy,
    owner: Env,
    client: Env,
    place: Place,
    /// `PROXY/acme/app:1.0`, what the client verifies.
    image: String,
    digest: String,
}

/// `acme/app:1.0` signed and published on `registry`; a client whose trust policy reaches
/// the metadata only through the proxy, verified once (warm cache).
fn set_up(registry: Registry) -> Setup {
    let proxy = AdversarialProxy::start(registry.addr());
    let owner = Env::new();
    let place = Place {
        prefix: format!("{}/", registry.addr()),
    };
    flows::set_up(&owner, &place);
    let upstream_image = place.repo("acme/app:1.0");
    let digest = flows::push_image(&owner, &upstream_image, "one");
    owner
        .run(&["sign", &upstream_image, "--key", "app.pem"])
        .ok();
    flows::publish(&owner, &place).ok();
    let client = Env::new();
    std::fs::copy(owner.path("acme.root.json"), client.path("acme.root.json")).unwrap();
    let p = proxy.addr().to_owned();
    client
        .run(&[
            "trust",
            "add",
            &format!("{p}/acme/*"),
            "--repo",
            &format!("{p}/acme/tuf"),
            "--name",
            "acme",
            "--root",
            "acme.root.json",
        ])
        .ok();
    let image = format!("{p}/acme/app:1.0");
    assert_eq!(client.run(&["verify", &image]).ok().trim(), digest);
    Setup {
        _registry: registry,
        proxy,
        owner,
        client,
        place,
        image,
        digest,
    }
}

fn trusted_timestamp(env: &Env, image: &str) -> u64 {
    let json: serde_json::Value =
        serde_json::from_str(env.run(&["verify", image, "--json"]).ok()).unwrap();
    json["versions"]["timestamp"].as_u64().unwrap()
}

fn metadata_blobs() -> Match {
    Match {
        method: Some("GET".into()),
        path_contains: Some("/acme/tuf/blobs/".into()),
        ..Match::default()
    }
}

fn forget_cache(env: &Env) {
    std::fs::remove_dir_all(env.path("cache")).unwrap();
}

/// Every refusal class through the real binary, with its exit code.
fn exit_codes(s: &Setup) {
    let (c, image) = (&s.client, s.image.as_str());

    // Rollback: a newer timestamp is trusted, then the registry re-serves the older one.
    let image2 = s.place.repo("acme/app:2.0");
    flows::push_image(&s.owner, &image2, "two");
    s.owner.run(&["sign", &image2, "--key", "app.pem"]).ok();
    flows::publish(&s.owner, &s.place).ok();
    let newest = trusted_timestamp(c, image);
    s.proxy.add(
        Match::listings(),
        Behaviour::HideVersionsAbove {
            class: "timestamp".into(),
            version: newest - 1,
        },
    );
    c.run(&["verify", image])
        .fails(1, &["older than the trusted version"]);
    s.proxy.clear();

    // Arbitrary software: the tag is moved to a digest nobody signed.
    let evil = flows::push_image(&s.owner, &s.place.repo("acme/app:evil"), "evil");
    s.proxy.add(
        Match::path("/v2/acme/app/manifests/1.0"),
        Behaviour::Rewrite {
            from: "/manifests/1.0".into(),
            to: format!("/manifests/{evil}"),
        },
    );
    c.run(&["verify", image])
        .fails(1, &["is not signed", &evil, &s.digest]);
    s.proxy.clear();

    // Dropped referrers: no timestamp listed.
    s.proxy.add(
        Match::listings(),
        Behaviour::DropClass {
            class: "timestamp".into(),
        },
    );
    c.run(&["verify", image]).fails(1, &["has no timestamp"]);
    s.proxy.clear();

    // Endless referrers listing: cut at the index limit.
    s.proxy.add(Match::listings(), Behaviour::EndlessBody);
    c.run(&["verify", image])
        .fails(1, &["longer than the limit"]);
    s.proxy.clear();

    // Redirect loop between two loopback ports: a network failure.
    let other = AdversarialProxy::start(s.proxy.upstream());
    other.add(
        Match::listings(),
        Behaviour::RedirectTo {
            base: format!("http://{}", s.proxy.addr()),
        },
    );
    s.proxy.add(
        Match::listings(),
        Behaviour::RedirectTo {
            base: format!("http://{}", other.addr()),
        },
    );
    c.run(&["verify", image]).fails(3, &["redirect"]);
    s.proxy.clear();

    // Swapped blobs, cold client: every metadata blob fails its digest.
    forget_cache(c);
    s.proxy
        .add(metadata_blobs(), Behaviour::ReplaceBody(b"{}".to_vec()));
    c.run(&["verify", image]).fails(1, &["sha256:"]);
    s.proxy.clear();

    // Endless metadata blobs, cold client.
    s.proxy.add(metadata_blobs(), Behaviour::EndlessBody);
    c.run(&["verify", image])
        .fails(1, &["longer than the limit"]);
    s.proxy.clear();

    // Freeze: two days later the owners have not re-signed; the registry still serves the
    // (1-day) timestamp. The client refuses it (`faketime` moves only the child's clock).
    let mut faketime = Command::new("faketime");
    faketime.args(["-f", "+2d"]).arg(bin());
    let frozen = Run::from_output(
        &c.command_with(faketime)
            .args(["verify", image])
            .output()
            .unwrap(),
    );
    frozen.fails(1, &["expired"]);

    // A broken trust policy: configuration, exit 2; nothing else touched.
    let policy = std::fs::read(c.policy()).unwrap();
    std::fs::write(c.policy(), b"[[trust]\nscope = ").unwrap();
    c.run(&["verify", image]).fails(2, &["policy"]);
    std::fs::write(c.policy(), policy).unwrap();
    assert_eq!(c.run(&["verify", image]).ok().trim(), s.digest);
}

#[test]
fn refusals_have_their_exit_codes_on_distribution() {
    exit_codes(&set_up(Registry::Distribution(Distribution::start())));
}

#[test]
fn refusals_have_their_exit_codes_on_referrers_registry() {
    exit_codes(&set_up(Registry::Native(ReferrersRegistry::start())));
}

/// `ocituf verify` under GNU time: the exit code and the peak RSS in KiB (`%M`).
fn verify_peak_rss(env: &Env, image: &str) -> (Run, u64) {
    let mut time = Command::new("/usr/bin/time");
    time.args(["-f", "peak-rss-kib=%M", bin()]);
    let out = env
        .command_with(time)
        .args(["verify", image])
        .output()
        .unwrap();
    let run = Run::from_output(&out);
    let kib = run
        .stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("peak-rss-kib="))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no peak RSS from /usr/bin/time: {run:#?}"));
    (run, kib)
}

const MAX_RSS_KIB: u64 = 64 * 1024;

/// Endless data, measured: endless listings and endless metadata blobs make the client read
/// at most its limits (4 MiB for an index), and its peak RSS stays under 64 MiB.
fn endless_data_memory(s: &Setup, registry: &str) {
    let (c, image) = (&s.client, s.image.as_str());
    let (ok, baseline) = verify_peak_rss(c, image);
    assert_eq!(ok.code, 0, "{ok:#?}");

    s.proxy.add(Match::listings(), Behaviour::EndlessBody);
    let (run, listing) = verify_peak_rss(c, image);
    run.fails(1, &["longer than the limit"]);
    s.proxy.clear();

    forget_cache(c);
    s.proxy.add(metadata_blobs(), Behaviour::EndlessBody);
    let (run, blobs) = verify_peak_rss(c, image);
    run.fails(1, &["longer than the limit"]);
    s.proxy.clear();

    // An endless body that declares a huge Content-Length is refused from the header.
    s.proxy.add(
        metadata_blobs(),
        Behaviour::EndlessBodyDeclared { length: 1 << 40 },
    );
    let (run, declared) = verify_peak_rss(c, image);
    run.fails(1, &["longer than the limit"]);
    s.proxy.clear();

    eprintln!(
        "{registry}: peak RSS KiB: verify {baseline}, endless listing {listing}, \
         endless blobs {blobs}, declared 1 TiB {declared}; proxy sent {} bytes",
        s.proxy.bytes_sent()
    );
    for (what, kib) in [
        ("endless listing", listing),
        ("endless blobs", blobs),
        ("declared", declared),
    ] {
        assert!(kib < MAX_RSS_KIB, "{what}: peak RSS {kib} KiB");
    }
}

#[test]
fn endless_data_client_stays_under_64_mib_on_distribution() {
    let s = set_up(Registry::Distribution(Distribution::start()));
    endless_data_memory(&s, "distribution");
}

#[test]
fn endless_data_client_stays_under_64_mib_on_referrers_registry() {
    let s = set_up(Registry::Native(ReferrersRegistry::start()));
    endless_data_memory(&s, "referrers-registry");
}
