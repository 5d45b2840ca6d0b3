//! Damaged local state through the real binary: a verifier killed at random points of a
//! cold verification (a power cut for its cache writes), a damaged trust policy, and a
//! damaged OCI layout `index.json`. Each is detected with a clear error (exit 2 for local
//! files), nothing else is lost, and the next run recovers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ocituf_testkit::Distribution;

use crate::flows::{self, Place};
use crate::support::Env;

fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(base).unwrap().to_owned(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// SIGKILL a cold `ocituf verify` after 0 to 330 ms, twelve times: whatever the kill
/// interrupted (downloads, cache writes), the next verify succeeds with the signed digest.
#[test]
fn verifier_killed_mid_write_leaves_no_trusted_damage() {
    let registry = Distribution::start();
    let env = Env::new();
    let place = Place {
        prefix: format!("{}/", registry.addr()),
    };
    flows::set_up(&env, &place);
    let image = place.repo("acme/app:1.0");
    let digest = flows::push_image(&env, &image, "one");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    flows::publish(&env, &place).ok();
    for i in 0..12u64 {
        let _ = std::fs::remove_dir_all(env.path("cache"));
        let mut child = env.command().args(["verify", &image]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(i * 30));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            env.run(&["verify", &image]).ok().trim(),
            digest,
            "after a kill at {} ms",
            i * 30
        );
    }
}

type Damage<'a> = Box<dyn Fn(&Path) + 'a>;

/// A damaged trust policy (cut in the middle, binary garbage, a directory in its place) is
/// exit 2 naming the file; the cache is untouched; `trust add` refuses to rewrite it (which
/// would lose the entries it could not read); restoring it restores verification.
#[test]
fn damaged_trust_policy_is_a_clear_error_and_nothing_else_is_lost() {
    let registry = Distribution::start();
    let env = Env::new();
    let place = Place {
        prefix: format!("{}/", registry.addr()),
    };
    flows::set_up(&env, &place);
    let image = place.repo("acme/app:1.0");
    let digest = flows::push_image(&env, &image, "one");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    flows::publish(&env, &place).ok();
    assert_eq!(env.run(&["verify", &image]).ok().trim(), digest);
    let policy_path = env.policy();
    let policy = std::fs::read(&policy_path).unwrap();
    let cache = files(&env.path("cache"));
    let shown = policy_path.display().to_string();

    let damages: [(&str, Damage); 3] = [
        (
            "cut",
            Box::new(|p: &Path| std::fs::write(p, &policy[..policy.len() / 2]).unwrap()),
        ),
        (
            "garbage",
            Box::new(|p: &Path| std::fs::write(p, [0xff, 0xfe, 0x00, 0x9c, 0x80]).unwrap()),
        ),
        (
            "directory",
            Box::new(|p: &Path| {
                std::fs::remove_file(p).unwrap();
                std::fs::create_dir(p).unwrap();
            }),
        ),
    ];
    for (what, damage) in &damages {
        damage(&policy_path);
        let config_files = files(&env.path("config"));
        env.run(&["verify", &image]).fails(2, &[&shown]);
        env.run(&[
            "trust",
            "add",
            &place.repo("beta/*"),
            "--repo",
            &place.repo("beta/tuf"),
            "--name",
            "beta",
            "--root",
            "acme.root.json",
        ])
        .fails(2, &[&shown]);
        assert_eq!(
            files(&env.path("config")),
            config_files,
            "{what}: policy rewritten"
        );
        assert_eq!(files(&env.path("cache")), cache, "{what}: cache changed");
        if policy_path.is_dir() {
            std::fs::remove_dir(&policy_path).unwrap();
        }
        std::fs::write(&policy_path, &policy).unwrap();
        assert_eq!(env.run(&["verify", &image]).ok().trim(), digest, "{what}");
    }
}

/// A damaged `index.json` of the OCI layout that holds the metadata and the image: verify
/// and sign refuse with exit 2 naming the file, sign does not overwrite it (that would
/// drop every tag it could not read), no blob is lost, and the restored file works.
#[test]
fn damaged_layout_index_is_a_clear_error_and_nothing_else_is_lost() {
    let env = Env::new();
    let place = Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    };
    flows::set_up(&env, &place);
    let image = place.repo("acme/app:1.0");
    let digest = flows::push_image(&env, &image, "one");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    flows::publish(&env, &place).ok();
    assert_eq!(env.run(&["verify", &image]).ok().trim(), digest);
    let index_path = env.path("registry/index.json");
    let index = std::fs::read(&index_path).unwrap();
    let blobs = files(&env.path("registry/blobs"));
    let shown = index_path.display().to_string();
    for (what, bytes) in [
        ("cut", index[..index.len() / 2].to_vec()),
        ("garbage", vec![0x00, 0xff, 0x13]),
        (
            "not an index",
            b"{\"schemaVersion\":2,\"manifests\":7}".to_vec(),
        ),
    ] {
        std::fs::write(&index_path, &bytes).unwrap();
        env.run(&["verify", &image]).fails(2, &[&shown]);
        env.run(&["sign", &image, "--key", "app.pem"])
            .fails(2, &[&shown]);
        assert_eq!(
            std::fs::read(&index_path).unwrap(),
            bytes,
            "{what}: rewritten"
        );
        assert_eq!(
            files(&env.path("registry/blobs")),
            blobs,
            "{what}: blobs changed"
        );
        std::fs::write(&index_path, &index).unwrap();
        assert_eq!(env.run(&["verify", &image]).ok().trim(), digest, "{what}");
    }
}
