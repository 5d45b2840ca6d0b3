//! Start, stop by PID, time limits, restart and garbage collection of the test registries.

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ocituf_testkit::{
    Auth, Distribution, DistributionOptions, ReferrersOptions, ReferrersRegistry,
};

use crate::{attach, discover, push_subject, TIMESTAMP_TYPE};

/// The state letter of /proc/PID/stat (`Z` for a zombie), `None` when there is no such process.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

fn wait_until_dead(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if matches!(proc_state(pid), None | Some('Z')) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn accepts(addr: &str) -> bool {
    TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)).is_ok()
}

#[test]
fn stop_kills_by_pid_and_reaps() {
    let dist = Distribution::start();
    let refs = ReferrersRegistry::start();
    for (pid, addr, stop) in [
        (
            dist.pid().unwrap(),
            dist.addr().to_owned(),
            Box::new(|| dist.stop()) as Box<dyn Fn()>,
        ),
        (
            refs.pid().unwrap(),
            refs.addr().to_owned(),
            Box::new(|| refs.stop()),
        ),
    ] {
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        assert!(accepts(&addr));
        assert!(matches!(proc_state(pid), Some(s) if s != 'Z'));
        stop();
        assert_eq!(proc_state(pid), None, "pid {pid} killed and reaped");
        assert!(!accepts(&addr), "{addr} closed");
        stop(); // idempotent
    }
    assert_eq!(dist.pid(), None);
    assert_eq!(refs.pid(), None);
}

#[test]
fn referrers_registry_exits_after_its_time_limit() {
    let reg = ReferrersRegistry::start_with(ReferrersOptions {
        time_limit: Duration::from_secs(1),
        ..ReferrersOptions::default()
    });
    let pid = reg.pid().unwrap();
    assert!(
        wait_until_dead(pid, Duration::from_secs(10)),
        "{}",
        reg.log()
    );
    assert!(reg.log().contains("time limit 1s reached"), "{}", reg.log());
}

#[test]
fn distribution_is_killed_by_its_watchdog_after_the_time_limit() {
    let reg = Distribution::start_with(DistributionOptions {
        time_limit: Duration::from_secs(1),
        ..DistributionOptions::default()
    });
    let pid = reg.pid().unwrap();
    assert!(
        wait_until_dead(pid, Duration::from_secs(10)),
        "{}",
        reg.log()
    );
}

#[test]
fn distribution_restart_keeps_port_and_storage() {
    let reg = Distribution::start();
    let dir = tempfile::tempdir().unwrap();
    let subject = push_subject(reg.addr(), "keep/me", "v1", dir.path());
    let (addr, pid) = (reg.addr().to_owned(), reg.pid().unwrap());
    reg.restart().unwrap();
    assert_eq!(reg.addr(), addr);
    assert_ne!(reg.pid().unwrap(), pid);
    assert_eq!(resolve(reg.addr(), "keep/me:v1", dir.path()), subject);
}

/// distribution 2.8's `garbage-collect --delete-untagged` deletes a referrer that only the
/// tagged fallback index reaches, and leaves the index pointing at nothing: what the GC-safety
/// design of ocituf must avoid.
#[test]
fn distribution_garbage_collect_deletes_referrers_reachable_only_through_the_fallback_index() {
    let reg = Distribution::start();
    let dir = tempfile::tempdir().unwrap();
    let (addr, repo) = (reg.addr().to_owned(), "acme/tuf");
    let subject = push_subject(&addr, repo, "anchor", dir.path());
    let ts = attach(
        &addr,
        repo,
        &subject,
        TIMESTAMP_TYPE,
        &[],
        "v1.1-referrers-tag",
        dir.path(),
    );
    let tagged = push_subject(&addr, repo, "kept", dir.path());
    let pid = reg.pid().unwrap();

    let report = reg.garbage_collect().unwrap();
    assert!(
        report.contains(&format!("manifest eligible for deletion: {ts}")),
        "{report}"
    );
    assert_eq!(reg.addr(), addr, "same port after the collection");
    assert_ne!(reg.pid().unwrap(), pid, "restarted");

    assert!(
        fetch_manifest(&addr, &format!("{repo}@{ts}"), dir.path()).is_err(),
        "referrer deleted"
    );
    assert_eq!(
        resolve(&addr, &format!("{repo}:anchor"), dir.path()),
        subject
    );
    assert_eq!(resolve(&addr, &format!("{repo}:kept"), dir.path()), tagged);
    // The fallback index still lists the deleted referrer.
    let listed = discover(&addr, repo, &subject, None, "v1.1-referrers-tag");
    assert_eq!(
        listed.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        vec![ts]
    );
}

#[tokio::test]
async fn usable_from_tokio_tests() {
    let dist = Distribution::start();
    let refs = ReferrersRegistry::start();
    for addr in [dist.addr(), refs.addr()] {
        let conn =
            tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
                .await;
        assert!(matches!(conn, Ok(Ok(_))), "{addr}: {conn:?}");
    }
}

fn resolve(addr: &str, reference: &str, dir: &Path) -> String {
    ocituf_testkit::run(Command::new(ocituf_testkit::oras()).current_dir(dir).args([
        "resolve",
        "--plain-http",
        &format!("{addr}/{reference}"),
    ]))
    .unwrap()
    .trim()
    .to_owned()
}

fn fetch_manifest(
    addr: &str,
    reference: &str,
    dir: &Path,
) -> Result<String, ocituf_testkit::Error> {
    ocituf_testkit::run(Command::new(ocituf_testkit::oras()).current_dir(dir).args([
        "manifest",
        "fetch",
        "--plain-http",
        &format!("{addr}/{reference}"),
    ]))
}

#[test]
fn distribution_with_basic_auth() {
    let reg = Distribution::start_with(DistributionOptions {
        auth: Auth::Basic {
            user: "alice".into(),
            password: "s3cret".into(),
        },
        ..DistributionOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), b"a").unwrap();
    std::fs::write(dir.path().join("empty-config.json"), b"{}").unwrap();
    let push = |creds: &[&str]| {
        ocituf_testkit::run(
            Command::new(ocituf_testkit::oras())
                .current_dir(dir.path())
                .args([
                    "push",
                    "--plain-http",
                    "--registry-config",
                    "empty-config.json",
                ])
                .args(creds)
                .args([&format!("{}/acme/app:1", reg.addr()), "a.txt"]),
        )
    };
    let refused = push(&[]).unwrap_err();
    assert!(
        refused.to_string().contains("basic credential not found"),
        "{refused}"
    );
    let wrong = push(&["-u", "alice", "-p", "wrong"]).unwrap_err();
    assert!(wrong.to_string().contains("401"), "{wrong}");
    push(&["-u", "alice", "-p", "s3cret"]).unwrap();
}

#[test]
fn distribution_with_tls_and_a_custom_ca() {
    let reg = Distribution::start_with(DistributionOptions {
        tls: true,
        ..DistributionOptions::default()
    });
    assert_eq!(reg.url(), format!("https://{}", reg.addr()));
    let ca = reg.ca_cert_path().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), b"a").unwrap();
    let push = |extra: &[&str]| {
        ocituf_testkit::run(
            Command::new(ocituf_testkit::oras())
                .current_dir(dir.path())
                .arg("push")
                .args(extra)
                .args([&format!("{}/acme/app:1", reg.addr()), "a.txt"]),
        )
    };
    let untrusted = push(&[]).unwrap_err();
    assert!(untrusted.to_string().contains("certificate"), "{untrusted}");
    push(&["--ca-file", ca.to_str().unwrap()]).unwrap();
    // The same certificate through skopeo, which takes a directory of CA files.
    let certs = tempfile::tempdir().unwrap();
    std::fs::copy(&ca, certs.path().join("ca.crt")).unwrap();
    ocituf_testkit::run(Command::new(ocituf_testkit::skopeo()).args([
        "inspect",
        "--raw",
        "--cert-dir",
        certs.path().to_str().unwrap(),
        &format!("docker://{}/acme/app:1", reg.addr()),
    ]))
    .unwrap();
}

#[test]
fn distribution_with_bearer_tokens() {
    let reg = Distribution::start_with(DistributionOptions {
        auth: Auth::Token {
            user: "bob".into(),
            password: "t0ken".into(),
        },
        ..DistributionOptions::default()
    });
    let realm = reg.token_realm().unwrap();
    // The registry sends clients to the realm.
    let challenge = crate::http::request(reg.addr(), "GET", "/v2/", &[], b"");
    assert_eq!(challenge.status, 401);
    let www = challenge.header("www-authenticate").unwrap();
    assert!(
        www.starts_with(&format!(
            r#"Bearer realm="{realm}",service="ocituf-testkit""#
        )),
        "{www}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), b"a").unwrap();
    std::fs::write(dir.path().join("empty-config.json"), b"{}").unwrap();
    let oras = |args: &[&str]| {
        ocituf_testkit::run(
            Command::new(ocituf_testkit::oras())
                .current_dir(dir.path())
                .args(args)
                .args(["--plain-http", "--registry-config", "empty-config.json"]),
        )
    };
    let reference = format!("{}/acme/app:1", reg.addr());
    let wrong = oras(&["push", "-u", "bob", "-p", "wrong", &reference, "a.txt"]).unwrap_err();
    assert!(wrong.to_string().contains("401"), "{wrong}");
    oras(&["push", "-u", "bob", "-p", "t0ken", &reference, "a.txt"]).unwrap();
    oras(&["manifest", "fetch", "-u", "bob", "-p", "t0ken", &reference]).unwrap();
    // A token from the realm, used by hand.
    let realm_addr = realm
        .trim_start_matches("http://")
        .trim_end_matches("/token")
        .to_owned();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(b"bob:t0ken")
    );
    let t = crate::http::request(
        &realm_addr,
        "GET",
        "/token?service=ocituf-testkit&scope=repository%3Aacme%2Fapp%3Apull",
        &[("Authorization", &basic)],
        b"",
    );
    assert_eq!(t.status, 200);
    let token = t.json()["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    let ok = crate::http::request(
        reg.addr(),
        "HEAD",
        "/v2/acme/app/manifests/1",
        &[
            ("Authorization", &bearer),
            ("Accept", "application/vnd.oci.image.manifest.v1+json"),
        ],
        b"",
    );
    assert_eq!(ok.status, 200);
    // A pull token does not allow a push.
    let denied = crate::http::request(
        reg.addr(),
        "POST",
        "/v2/acme/app/blobs/uploads/",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(denied.status, 401);
}
