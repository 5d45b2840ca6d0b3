//! Crash recovery of the online signer: `ocituf serve` is killed with SIGKILL at random
//! points while publishers sign, 20 times, and restarted each time. At the end every image
//! verifies to its digest (what a run without kills gives clients) and no two timestamp or
//! snapshot artifacts claim one version (a fork). The seed of the random points is printed
//! (`OCITUF_KILL_SEED=N` repeats a run).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::flows::{push_image, set_up, Place};
use crate::serve::start_serve;
use crate::support::Env;

const KILLS: usize = 20;

/// xorshift64*: the random kill points, from a printed seed.
struct Points(u64);

impl Points {
    fn next_ms(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below
    }
}

/// Role and version claimed by each metadata manifest in the OCI layout at `dir`.
fn claims(dir: &std::path::Path) -> BTreeMap<(String, u64), Vec<String>> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mut out: BTreeMap<(String, u64), Vec<String>> = BTreeMap::new();
    for m in index["manifests"].as_array().unwrap() {
        let digest = m["digest"].as_str().unwrap();
        let hex = digest.strip_prefix("sha256:").unwrap();
        let Ok(bytes) = std::fs::read(dir.join("blobs/sha256").join(hex)) else {
            continue;
        };
        let Ok(manifest) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let a = &manifest["annotations"];
        if let (Some(role), Some(version)) = (
            a["io.ocituf.role"].as_str(),
            a["io.ocituf.version"].as_str().and_then(|v| v.parse().ok()),
        ) {
            let e = out.entry((role.to_owned(), version)).or_default();
            if !e.iter().any(|d| d == digest) {
                e.push(digest.to_owned());
            }
        }
    }
    out
}

fn kill9(child: &mut crate::serve::Child) {
    let pid = child.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = child.0.wait();
}

#[test]
fn signer_killed_at_random_points_20_times_loses_nothing_and_forks_nothing() {
    let env = Env::new();
    let place = Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    };
    set_up(&env, &place);
    let seed = std::env::var("OCITUF_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
                | 1
        });
    eprintln!("OCITUF_KILL_SEED={seed}");
    let mut points = Points(seed);
    let mut images = Vec::new();
    for i in 0..KILLS {
        let (mut serve, _) = start_serve(&env, &place, "online.pem");
        let image = place.repo(&format!("acme/app:k{i}"));
        let digest = push_image(&env, &image, &format!("kill round {i}"));
        env.run(&["sign", &image, "--key", "app.pem"]).ok();
        // Anywhere from before the batch that takes the new version to well after it.
        std::thread::sleep(Duration::from_millis(points.next_ms(1500)));
        kill9(&mut serve);
        images.push((image, digest));
    }

    // A last start, left alone: it recovers from the registry alone.
    let (mut serve, _) = start_serve(&env, &place, "online.pem");
    let deadline = Instant::now() + Duration::from_secs(120);
    for (image, digest) in &images {
        loop {
            let run = env.run(&["verify", image]);
            if run.code == 0 {
                assert_eq!(run.stdout.trim(), digest, "{image}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{image} never verified after the kills (seed {seed}): {run:#?}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    kill9(&mut serve);

    let claimed = claims(&env.path("registry"));
    let forks: Vec<_> = claimed
        .iter()
        .filter(|((role, _), ds)| (role == "timestamp" || role == "snapshot") && ds.len() > 1)
        .collect();
    assert_eq!(
        forks,
        Vec::<(&(String, u64), &Vec<String>)>::new(),
        "forks (seed {seed})"
    );
    let timestamps = claimed.keys().filter(|(r, _)| r == "timestamp").count();
    assert!(timestamps >= 2, "the signers published: {claimed:?}");
}
