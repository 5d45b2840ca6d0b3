//! `ocituf serve` as a process against the fallback-only registry: an image signed with
//! `ocituf sign` becomes visible to `ocituf verify` without anyone running `ocituf publish`;
//! a second signer on the same lock is refused; SIGTERM stops it cleanly.

use std::io::{BufRead as _, Read as _, Write as _};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ocituf_testkit::Distribution;

use crate::flows::{push_image, set_up, set_up_with, Keys, Place};
use crate::support::{Env, Run};

/// Kills the signer (by its PID) if the test fails before stopping it.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The bearer token publishers submit with, and its sha256 (`printf %s TOKEN | sha256sum`),
/// which is all the signer's configuration holds.
const TOKEN: &str = "ci-token-for-acme";
const TOKEN_SHA256: &str = "b7c7bc747adaaa450b675b7a271236d246e9b75be09303720719db54678876fb";

/// signer.toml serving `acme` in `place` with `online` as its snapshot and timestamp key,
/// its HTTP endpoints on a port the kernel picks on 127.0.0.1.
fn signer_config(env: &Env, place: &Place, online: &str) -> std::path::PathBuf {
    env.write(
        "signer.toml",
        &format!(
            "lock-file = \"signer.lock\"\npoll-interval = \"1s\"\nlisten = \"127.0.0.1:0\"\nsite-refresh = \"1s\"\n\n[[root-of-trust]]\nname = \"acme\"\nrepository = \"{}\"\nroot = \"acme.root.json\"\nsnapshot-key = \"{online}\"\ntimestamp-key = \"{online}\"\nresign-every = \"1h\"\nsubmit-token-sha256 = [\"{TOKEN_SHA256}\"]\n",
            place.repo("acme/tuf")
        ),
    )
}

/// `ocituf serve` for `acme` in `place`; returns it and its HTTP address (`127.0.0.1:PORT`).
pub fn start_serve(env: &Env, place: &Place, online: &str) -> (Child, String) {
    let config = signer_config(env, place, online);
    let mut child = Child(
        env.command()
            .args(["serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("ocituf serve exited before it listened")
            .unwrap();
        if let Some(a) = line.strip_prefix("listening on http://") {
            break a.to_owned();
        }
    };
    // Keep reading so the signer never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// One HTTP/1.1 GET to the signer on loopback: (status code, body).
pub fn get(addr: &str, path: &str) -> (u16, String) {
    request(addr, "GET", path, &[], b"")
}

/// One HTTP/1.1 request to the signer on loopback: (status code, body).
fn request(addr: &str, method: &str, path: &str, headers: &[&str], body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // A refused body may be answered before all of it is sent.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let code = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {raw:?}"));
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (code, body)
}

/// Wait (at most 60 s) until `ocituf verify IMAGE` prints `digest`.
fn wait_until_visible(env: &Env, image: &str, digest: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last: Option<Run> = None;
    while Instant::now() < deadline {
        let run = env.run(&["verify", image]);
        if run.code == 0 {
            assert_eq!(run.stdout.trim(), digest);
            return;
        }
        last = Some(run);
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("never visible to clients: {last:#?}");
}

/// What operators see once `acme/app:1.0` (`digest`) is visible: ready, metrics, status,
/// and the site of the root of trust, live.
fn check_operator_endpoints(addr: &str, digest: &str) {
    assert_eq!(get(addr, "/readyz"), (200, "ready\n".to_owned()));
    let (code, metrics) = get(addr, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("ocituf_signer_last_batch_failed{root_of_trust=\"acme\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "ocituf_signer_seconds_until_expiry{root_of_trust=\"acme\",role=\"timestamp\"}"
        ),
        "{metrics}"
    );
    // The status follows the publish that clients already see (it is updated once the
    // publish returns): look until it lists app, at most 30 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let (code, status) = get(addr, "/v1/roots/acme/status");
        assert_eq!(code, 200, "{status}");
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        if status["roles"]["app"] == 1 || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status["timestamp_version"].as_u64().unwrap() >= 2,
        "{status}"
    );
    assert_eq!(status["roles"]["app"], 1, "{status}");
    let (code, page) = get(addr, "/site/acme/");
    assert_eq!(code, 200);
    assert!(
        page.contains("acme/app:1.0") && page.contains(digest),
        "the live page lists the image"
    );
    let (code, index) = get(addr, "/site/acme/index.json");
    assert_eq!(code, 200);
    assert!(index.contains("acme/app:1.0"), "{index}");
    assert_eq!(get(addr, "/site/nobody/").0, 404);
    assert_eq!(get(addr, "/v1/roots/nobody/status").0, 404);

    // The next image shows on the live page once signed (site-refresh is 1 s here).
}

/// The submission API of a signer whose `app` role is at version 1: refusals change
/// nothing; a pushed version is accepted once a published timestamp covers it; a version
/// nobody pushed is rejected.
fn check_submissions(addr: &str) {
    let submit = |auth: Option<&str>, body: &[u8], query: &str| {
        let header = auth.map(|t| format!("Authorization: Bearer {t}"));
        let headers: Vec<&str> = header.iter().map(String::as_str).collect();
        request(
            addr,
            "POST",
            &format!("/v1/roots/acme/submissions{query}"),
            &headers,
            body,
        )
    };
    let good = br#"{"role": "app", "version": 1}"#;
    assert_eq!(submit(None, good, "").0, 401);
    assert_eq!(submit(Some("not-the-token"), good, "").0, 403);
    assert_eq!(submit(Some(TOKEN), b"{not json", "").0, 400);
    assert_eq!(submit(Some(TOKEN), br#"{"role": "app"}"#, "").0, 400);
    assert_eq!(
        submit(Some(TOKEN), br#"{"role": "", "version": 1}"#, "").0,
        400
    );
    assert_eq!(submit(Some(TOKEN), good, "?wait=9999").0, 400);
    assert_eq!(submit(Some(TOKEN), &vec![b' '; 64 * 1024], "").0, 413);
    assert_eq!(
        request(addr, "POST", "/v1/roots/nobody/submissions", &[], good).0,
        404
    );
    let (code, fate) = submit(Some(TOKEN), good, "?wait=60");
    assert_eq!(code, 200, "{fate}");
    let fate: serde_json::Value = serde_json::from_str(&fate).unwrap();
    assert_eq!(fate["fate"], "accepted", "{fate}");
    assert!(fate["timestamp_version"].as_u64().unwrap() >= 2, "{fate}");
    // A version nobody pushed is rejected at once, and says why.
    let (code, fate) = submit(Some(TOKEN), br#"{"role": "app", "version": 99}"#, "?wait=2");
    assert_eq!(code, 422, "{fate}");
    assert!(fate.contains("\"fate\": \"rejected\""), "{fate}");
    assert!(fate.contains("not pushed"), "{fate}");
}

#[test]
fn serve_publishes_what_sign_pushed_and_refuses_a_second_instance() {
    let registry = Distribution::start();
    let env = Env::new();
    let place = Place {
        prefix: format!("{}/", registry.addr()),
    };
    set_up(&env, &place);
    let (mut serve, addr) = start_serve(&env, &place, "online.pem");
    assert_eq!(get(&addr, "/healthz"), (200, "ok\n".to_owned()));

    let image = place.repo("acme/app:1.0");
    let digest = push_image(&env, &image, "served");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    wait_until_visible(&env, &image, &digest);

    check_operator_endpoints(&addr, &digest);
    check_submissions(&addr);
    let metrics = get(&addr, "/metrics").1;
    for line in [
        "ocituf_signer_queue_depth{root_of_trust=\"acme\"} 0",
        "ocituf_signer_leader{root_of_trust=\"acme\"} 1",
        "ocituf_signer_submission_seconds_count{root_of_trust=\"acme\"} 1",
        "ocituf_signer_submission_seconds_bucket{root_of_trust=\"acme\",le=\"+Inf\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    assert!(
        !metrics.contains("ocituf_signer_publish_seconds_count{root_of_trust=\"acme\"} 0"),
        "{metrics}"
    );

    // `sign --wait` returns once a client would verify it: no polling by the pipeline.
    let next = place.repo("acme/app:1.1");
    let next_digest = push_image(&env, &next, "served later");
    let signed = env.run(&[
        "sign",
        &next,
        "--key",
        "app.pem",
        "--wait",
        "--wait-timeout",
        "60s",
    ]);
    assert!(signed.ok().contains(&next_digest), "{signed:#?}");
    assert!(
        signed
            .stderr
            .contains(&format!("visible to clients: {next} in timestamp version")),
        "{signed:#?}"
    );
    assert_eq!(env.run(&["verify", &next]).ok().trim(), next_digest);
    std::thread::sleep(Duration::from_millis(1100));
    assert!(get(&addr, "/site/acme/").1.contains(&next_digest));
    // `yank --wait` returns once clients refuse it.
    let yanked = env.run(&[
        "yank",
        &next,
        "--key",
        "app.pem",
        "--wait",
        "--wait-timeout",
        "60s",
    ]);
    assert!(yanked.ok().contains("clients now refuse it"), "{yanked:#?}");
    env.run(&["verify", &next]).fails(1, &["acme/app:1.1"]);

    let config = env.path("signer.toml");
    env.run(&["serve", "--config", config.to_str().unwrap()])
        .fails(2, &["another signer holds"]);

    let pid = serve.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = serve.0.wait().unwrap();
    assert!(status.success(), "ocituf serve exited with {status}");
}

/// With no signer running, `sign --wait` gives up at its timeout with exit 5 and says why.
#[test]
fn sign_wait_without_a_signer_times_out_with_its_own_exit_code() {
    let env = Env::new();
    let place = Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    };
    set_up(&env, &place);
    let image = place.repo("acme/app:1.0");
    push_image(&env, &image, "nobody publishes");
    let started = Instant::now();
    env.run(&[
        "sign",
        &image,
        "--key",
        "app.pem",
        "--wait",
        "--wait-timeout",
        "2s",
    ])
    .fails(
        5,
        &[
            "no timestamp that clients can see shows it within 2s",
            "ocituf serve",
            "ocituf publish",
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    env.run(&[
        "sign",
        &image,
        "--key",
        "app.pem",
        "--wait",
        "--wait-timeout",
        "soon",
    ])
    .fails(2, &["--wait-timeout \"soon\" is not a duration"]);
}

/// The online keys in hardware: `ocituf serve` signs snapshot and timestamp inside SoftHSM2.
#[test]
fn serve_signs_with_online_keys_that_stay_on_a_token() {
    let (env, hsm) = crate::pkcs11::token_env();
    let place = Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    };
    let online = hsm.uri("online");
    for k in ["root", "targets", "app"] {
        env.run(&["key", "generate", "--out", &format!("{k}.pem")])
            .ok();
    }
    set_up_with(
        &env,
        &place,
        &Keys {
            root: "root.pem",
            targets: "targets.pem",
            online: &online,
            app: "app.pem",
        },
    );
    let (mut serve, addr) = start_serve(&env, &place, &online);
    let image = place.repo("acme/app:1.0");
    let digest = push_image(&env, &image, "online keys in hardware");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    wait_until_visible(&env, &image, &digest);
    assert_eq!(get(&addr, "/readyz").0, 200);
    let status: serde_json::Value =
        serde_json::from_str(&get(&addr, "/v1/roots/acme/status").1).unwrap();
    assert!(status["publishes"].as_u64().unwrap() >= 1, "{status}");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &serve.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(serve.0.wait().unwrap().success());
}

/// Issue 7: "`ocituf sign --wait` … on conflict it rebases and retries". Eight CI jobs sign
/// different tags into the one role `app` at once against `ocituf serve`: the ones that
/// lose the race for a version rebuild on the winner and push again, and every job returns
/// only once clients see its image, which then verifies.
#[test]
fn concurrent_sign_wait_jobs_that_lose_a_race_rebase_and_all_become_visible() {
    const JOBS: usize = 8;
    let registry = Distribution::start();
    let env = Env::new();
    let place = Place {
        prefix: format!("{}/", registry.addr()),
    };
    set_up(&env, &place);
    let (mut serve, _addr) = start_serve(&env, &place, "online.pem");
    let images: Vec<(String, String)> = (0..JOBS)
        .map(|i| {
            let image = place.repo(&format!("acme/app:race-{i}"));
            let digest = push_image(&env, &image, &format!("racer {i}"));
            (image, digest)
        })
        .collect();
    let jobs: Vec<_> = images
        .iter()
        .map(|(image, _)| {
            env.command()
                .args([
                    "sign",
                    image,
                    "--key",
                    "app.pem",
                    "--wait",
                    "--wait-timeout",
                    "120s",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut races = 0;
    for (job, (image, digest)) in jobs.into_iter().zip(&images) {
        let out = job.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{image}: {stderr}");
        assert!(
            stderr.contains(&format!("visible to clients: {image} in timestamp version")),
            "{stderr}"
        );
        races += stderr.matches("lost a race with another signer").count();
        assert_eq!(env.run(&["verify", image]).ok().trim(), digest);
    }
    assert!(races > 0, "no job lost a race: nothing rebased");
    let _ = serve.0.kill();
    let _ = serve.0.wait();
}
