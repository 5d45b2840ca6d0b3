//! Several `ocituf serve` replicas on one PostgreSQL (Debian's, started by the testkit on
//! 127.0.0.1) and the fallback-only registry: the leader is killed with SIGKILL while
//! publishers sign, and the other replica takes over within the lease time (measured); at
//! the end every image verifies, nothing is lost, and no timestamp or snapshot version is
//! claimed by two artifacts. Also: two replicas with two roots of trust lead one each
//! (through pgbouncer in transaction pooling), and a follower sends submissions to the
//! leader (503, `Retry-After`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, Read as _, Write as _};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ocituf_testkit::{Distribution, Postgres};

use crate::flows::{set_up, Place};
use crate::serve::{get, Child};
use crate::support::Env;

/// Short leases keep the test short; production default is 15 s.
const LEASE_SECONDS: u64 = 3;
const TOKEN: &str = "replica-test-token";

fn token_sha256() -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))
}

/// signer.toml of replica `id` serving `roots` (name, pinned root file) in `place`, its
/// leases at `database_url`.
fn replica_config(
    env: &Env,
    place: &Place,
    database_url: &str,
    id: &str,
    roots: &[(&str, &str)],
) -> std::path::PathBuf {
    let mut text = format!(
        "poll-interval = \"1s\"\nlisten = \"127.0.0.1:0\"\ndatabase-url = \"{database_url}\"\nlease-seconds = {LEASE_SECONDS}\nreplica-id = \"{id}\"\n"
    );
    for (name, root) in roots {
        let _ = write!(
            text,
            "\n[[root-of-trust]]\nname = \"{name}\"\nrepository = \"{}\"\nroot = \"{root}\"\nsnapshot-key = \"online.pem\"\ntimestamp-key = \"online.pem\"\nresign-every = \"1h\"\nsubmit-token-sha256 = [\"{}\"]\n",
            place.repo(&format!("{name}/tuf")),
            token_sha256()
        );
    }
    env.write(&format!("signer-{id}.toml"), &text)
}

/// `ocituf serve --config CONFIG`; returns it and its HTTP address.
fn start_replica(env: &Env, config: &std::path::Path) -> (Child, String) {
    let mut child = Child(
        env.command()
            .args(["serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

fn status(addr: &str, root: &str) -> serde_json::Value {
    let (code, body) = get(addr, &format!("/v1/roots/{root}/status"));
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn leads(addr: &str, root: &str) -> bool {
    status(addr, root)["leading"] == true
}

/// Wait until `ok()` holds, at most `timeout`.
fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill9(child: &mut Child) {
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = child.0.wait();
}

/// A submission (POST) to `addr`: (status code, the whole raw answer with its headers).
fn submit(addr: &str, root: &str) -> (u16, String) {
    let body = br#"{"role": "app", "version": 1}"#;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /v1/roots/{root}/submissions?wait=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let code = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {raw:?}"));
    (code, raw)
}

/// Every `role` artifact of root of trust `name` in the registry, by the version its
/// annotations claim (the referrers of the role's anchor, through the fallback tag here):
/// two digests for one version is a fork.
fn versions_claimed(place: &Place, name: &str, role: &str) -> BTreeMap<u64, Vec<String>> {
    use ocituf_oci::mapping::{Anchor, Hints, RoleClass, RootOfTrustName};
    use ocituf_oci::ArtifactStore as _;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let repo_ref =
            ocituf_resolver::RepositoryReference::parse(&place.repo(&format!("{name}/tuf")))
                .unwrap();
        let repo =
            ocituf_writer::MetaRepo::open(&repo_ref, name, &ocituf_oci::RegistryOptions::default())
                .unwrap();
        let rot = RootOfTrustName::parse(name).unwrap();
        let anchor = Anchor::for_role(&rot, role).unwrap();
        let artifact_type = RoleClass::of_role(role).artifact_type();
        let (list, _) = repo
            .store
            .referrers(anchor.digest(), Some(artifact_type))
            .await
            .unwrap();
        let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for d in list {
            let h = Hints::from_annotations(&d.annotations);
            if d.artifact_type.as_deref() != Some(artifact_type) || !h.may_be(&rot, role) {
                continue;
            }
            if let Some(v) = h.version {
                let e = out.entry(v).or_default();
                let digest = d.digest.to_string();
                if !e.contains(&digest) {
                    e.push(digest);
                }
            }
        }
        out
    })
}

/// xorshift64*: where in the signing the leader is killed, from a printed seed.
fn seed() -> u64 {
    std::env::var("OCITUF_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
                | 1
        })
}

fn next_ms(state: &mut u64, below: u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d) % below
}

/// r2 follows r1: metrics say who leads, submissions go to the leader (503, Retry-After,
/// the leader's id), and a follower with a live leader is ready.
fn check_follower(a1: &str, a2: &str) {
    assert!(get(a1, "/metrics")
        .1
        .contains("ocituf_signer_leader{root_of_trust=\"acme\"} 1"));
    let follower = get(a2, "/metrics").1;
    assert!(
        follower.contains("ocituf_signer_leader{root_of_trust=\"acme\"} 0")
            && !follower.contains("ocituf_signer_fencing_token{root_of_trust=\"acme\"}"),
        "{follower}"
    );
    let token = status(a1, "acme")["fencing_token"].as_i64().unwrap();
    assert!(get(a1, "/metrics").1.contains(&format!(
        "ocituf_signer_fencing_token{{root_of_trust=\"acme\"}} {token}"
    )));
    // A follower sends publishers to the leader rather than queueing what it cannot sign.
    let (code, answer) = submit(a2, "acme");
    assert_eq!(code, 503, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert!(answer.contains("\"leader\": \"r1\""), "{answer}");
    assert_eq!(
        get(a2, "/readyz").0,
        200,
        "a follower with a live leader is ready"
    );
}

/// Publisher `p`'s commands: push an image, sign it (no --wait: the signer is to find it).
fn publisher_jobs(
    env: &Env,
    place: &Place,
    p: usize,
) -> Vec<(String, std::process::Command, std::process::Command)> {
    (0..IMAGES)
        .map(|i| {
            let image = place.repo(&format!("acme/app:p{p}-{i}"));
            let mut push = env.command();
            push.args([
                "example-image",
                &image,
                "--message",
                &format!("publisher {p} image {i}"),
            ]);
            let mut sign = env.command();
            sign.args(["sign", &image, "--key", "app.pem"]);
            (image, push, sign)
        })
        .collect()
}

/// Run one publisher's jobs in order; returns (image, digest) of each signed image.
fn publish(
    jobs: Vec<(String, std::process::Command, std::process::Command)>,
) -> Vec<(String, String)> {
    let mut signed = Vec::new();
    for (image, mut push, mut sign) in jobs {
        let out = push.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let out = String::from_utf8(out.stdout).unwrap();
        let digest = out.trim().rsplit_once('@').unwrap().1.to_owned();
        let out = sign.output().unwrap();
        assert!(out.status.success(), "{image}: {out:?}");
        signed.push((image, digest));
    }
    signed
}

/// Every image verifies to its digest within 60 s.
fn all_verify(env: &Env, images: &[(String, String)]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for (image, digest) in images {
        loop {
            let run = env.run(&["verify", image]);
            if run.code == 0 {
                assert_eq!(run.stdout.trim(), digest, "{image}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{image} lost after the leader was killed: {run:#?}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

const PUBLISHERS: usize = 3;
const IMAGES: usize = 3;

#[test]
fn leader_killed_mid_batch_the_other_replica_takes_over_within_the_lease_and_nothing_forks() {
    let registry = Distribution::start();
    let pg = Postgres::start();
    let env = Env::new();
    let place = Place {
        prefix: format!("{}/", registry.addr()),
    };
    set_up(&env, &place);
    let roots = [("acme", "acme.root.json")];
    let (mut r1, a1) = start_replica(&env, &replica_config(&env, &place, &pg.url(), "r1", &roots));
    wait_for("r1 leads acme", Duration::from_secs(20), || {
        leads(&a1, "acme")
    });
    let (mut r2, a2) = start_replica(&env, &replica_config(&env, &place, &pg.url(), "r2", &roots));
    wait_for("r2 sees r1 lead", Duration::from_secs(20), || {
        status(&a2, "acme")["leader"] == "r1"
    });
    assert!(!leads(&a2, "acme"), "two leaders of acme");
    let old_token = status(&a1, "acme")["fencing_token"].as_i64().unwrap();
    check_follower(&a1, &a2);

    // Publishers sign while r1 publishes; r1 is killed at a random point among them.
    let mut rng = seed();
    eprintln!("OCITUF_KILL_SEED={rng}");
    let lease = Duration::from_secs(LEASE_SECONDS);
    let images = std::thread::scope(|scope| {
        // Each publisher's commands are made here (the environment stays on this thread).
        let publishers: Vec<_> = (0..PUBLISHERS)
            .map(|p| {
                let jobs = publisher_jobs(&env, &place, p);
                scope.spawn(move || publish(jobs))
            })
            .collect();
        wait_for(
            "r1 publishes a signed image",
            Duration::from_secs(60),
            || status(&a1, "acme")["roles"]["app"].as_u64().unwrap_or(0) >= 2,
        );
        std::thread::sleep(Duration::from_millis(next_ms(&mut rng, 1500)));
        kill9(&mut r1);
        let killed = Instant::now();
        // The dead leader's lease runs out at most one lease after its last renewal; the
        // follower tries every third of a lease.
        let bound = lease + lease / 3 + Duration::from_millis(1500);
        wait_for("r2 takes over", bound, || leads(&a2, "acme"));
        let takeover = killed.elapsed();
        eprintln!("takeover after {takeover:?} (lease {lease:?}, bound {bound:?})");
        let st = status(&a2, "acme");
        assert!(
            st["fencing_token"].as_i64().unwrap() > old_token,
            "the new leader's token is not higher: {st}"
        );
        let images: Vec<(String, String)> = publishers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect();
        images
    });
    assert_eq!(images.len(), PUBLISHERS * IMAGES);
    all_verify(&env, &images);
    assert!(get(&a2, "/metrics")
        .1
        .contains("ocituf_signer_leader{root_of_trust=\"acme\"} 1"));
    kill9(&mut r2);
    for role in ["timestamp", "snapshot"] {
        let forks: Vec<_> = versions_claimed(&place, "acme", role)
            .into_iter()
            .filter(|(_, ds)| ds.len() > 1)
            .collect();
        assert_eq!(
            forks,
            Vec::new(),
            "{role} versions claimed by two artifacts"
        );
    }
}

#[test]
fn two_replicas_with_two_roots_of_trust_lead_one_each() {
    let registry = Distribution::start();
    let pg = Postgres::start();
    // Through pgbouncer in transaction pooling: nothing the replicas do needs a session.
    let bouncer = pg.start_pgbouncer().unwrap();
    let env = Env::new();
    let place = Place {
        prefix: format!("{}/", registry.addr()),
    };
    set_up(&env, &place);
    env.run(&[
        "init",
        &place.repo("beta/tuf"),
        "--name",
        "beta",
        "--root-key",
        "root.pem",
        "--targets-key",
        "targets.pem",
        "--snapshot-key",
        "online.pem",
        "--timestamp-key",
        "online.pem",
        "--out-root",
        "beta.root.json",
    ])
    .ok();
    let roots = [("acme", "acme.root.json"), ("beta", "beta.root.json")];
    let (mut r1, a1) = start_replica(
        &env,
        &replica_config(&env, &place, &bouncer.url(), "r1", &roots),
    );
    // Alone, r1 leads both.
    wait_for("r1 leads both", Duration::from_secs(20), || {
        leads(&a1, "acme") && leads(&a1, "beta")
    });
    let (mut r2, a2) = start_replica(
        &env,
        &replica_config(&env, &place, &bouncer.url(), "r2", &roots),
    );
    // Once r2 is up, r1 gives up the root it ranks last (beta), and r2 takes it.
    let mut seen = (false, false);
    wait_for(
        "one root each",
        Duration::from_secs(4 * LEASE_SECONDS),
        || {
            let (l1, l2) = (
                (leads(&a1, "acme"), leads(&a1, "beta")),
                (leads(&a2, "acme"), leads(&a2, "beta")),
            );
            assert!(!(l1.0 && l2.0 || l1.1 && l2.1), "two leaders of one root");
            seen = l2;
            l1.0 != l1.1 && l2.0 != l2.1 && l1.0 != l2.0
        },
    );
    assert_eq!(seen, (false, true), "r2 leads beta, r1 acme");
    for addr in [&a1, &a2] {
        wait_for("ready", Duration::from_secs(30), || {
            get(addr, "/readyz").0 == 200
        });
    }
    assert_eq!(status(&a1, "beta")["leader"], "r2");
    kill9(&mut r1);
    kill9(&mut r2);
}
