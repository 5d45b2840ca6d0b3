//! Co-signing a project's release over time: a 2-of-3 role signed by two maintainers at
//! different times, on an OCI layout and both test registries; clients refuse the image until
//! the threshold is met; rival and wrong pending versions are refused.

use ocituf_testkit::{Distribution, ReferrersRegistry};

use crate::flows::{publish, push_image, Place};
use crate::projects::{create_project, init};
use crate::support::Env;

fn content_of(stdout: &str) -> String {
    let at = stdout.find("content ").expect("a content digest") + "content ".len();
    stdout[at..]
        .split(|c: char| c == ';' || c.is_whitespace())
        .next()
        .unwrap()
        .to_owned()
}

fn set_up(env: &Env, place: &Place) -> String {
    let tuf = init(env, place);
    create_project(env, &tuf);
    env.run(&[
        "trust",
        "add",
        &place.repo("acme/*"),
        "--repo",
        &tuf,
        "--name",
        "acme",
        "--root",
        "acme.root.json",
    ])
    .ok();
    tuf
}

fn sign(env: &Env, image: &str, key: &str) -> String {
    env.run(&["sign", image, "--key", key]).ok().to_owned()
}

fn cosign(env: &Env, tuf: &str, key: &str, expect: Option<&str>) -> crate::support::Run {
    let mut args = vec![
        "cosign", tuf, "--name", "acme", "--role", "app", "--key", key,
    ];
    if let Some(e) = expect {
        args.extend(["--expect", e]);
    }
    env.run(&args)
}

fn two_of_three_release(env: &Env, place: &Place) {
    let tuf = set_up(env, place);
    let image = place.repo("acme/app:1.0");
    push_image(env, &image, "release 1.0");

    // Alice signs on her own: the version waits as pending, clients refuse the image; and
    // `--wait` says at once that waiting cannot help before others co-sign.
    let waited = env.run(&["sign", &image, "--key", "alice.pem", "--wait"]);
    waited.fails(
        2,
        &["--wait: role \"app\" version 1 waits for more signatures"],
    );
    let out = waited.stdout;
    assert!(out.contains("is pending: 1/2 signatures"), "{out}");
    let content = content_of(&out);
    publish(env, place).ok();
    env.run(&["verify", &image]).fails(1, &[]);
    // Maintainers see what waits for them: in `status` and on the site.
    let status = env.run(&["status", &tuf, "--name", "acme"]).ok().to_owned();
    assert!(
        status.contains(&format!(
            "pending app version 1 (content {content}): 1/2 signatures (`ocituf cosign --role app --expect {content}`)"
        )),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_str(env.run(&["status", &tuf, "--name", "acme", "--json"]).ok()).unwrap();
    assert_eq!(
        json["pending_targets"],
        serde_json::json!([{"role": "app", "version": 1, "content": content, "signatures": 1, "threshold": 2}])
    );
    let site = env.path("site");
    let built = env.run(&[
        "site",
        &tuf,
        "--name",
        "acme",
        "--out",
        site.to_str().unwrap(),
    ]);
    assert!(
        built.ok().contains("1 pending targets versions"),
        "{built:#?}"
    );
    let html = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(
        html.contains("data-pending-role=\"app\"") && html.contains(&content),
        "the site lists the pending version"
    );

    // A key that is not the role's, and the wrong content, are refused; still not signed.
    cosign(env, &tuf, "mallory.pem", Some(&content))
        .fails(2, &["none of the given keys is a key of role \"app\""]);
    let wrong = format!("sha256:{}", "0".repeat(64));
    cosign(env, &tuf, "bob.pem", Some(&wrong))
        .fails(2, &["has content", &content, "ask the maintainer"]);
    publish(env, place).ok();
    env.run(&["verify", &image]).fails(1, &[]);

    // Later, Bob adds his: the threshold is met, and once published clients accept it.
    let out = cosign(env, &tuf, "bob.pem", Some(&content)).ok().to_owned();
    assert!(out.contains("is signed (2/2)"), "{out}");
    publish(env, place).ok();
    assert!(env.run(&["verify", &image]).ok().contains("sha256:"));

    // Two maintainers start rival next versions: no co-signing without --expect.
    push_image(env, &place.repo("acme/app:1.1"), "release 1.1");
    push_image(env, &place.repo("acme/app:1.2"), "release 1.2");
    let a = content_of(&sign(env, &place.repo("acme/app:1.1"), "alice.pem"));
    let b = content_of(&sign(env, &place.repo("acme/app:1.2"), "carol.pem"));
    assert_ne!(a, b);
    cosign(env, &tuf, "bob.pem", None).fails(2, &["rival pending versions", &a, &b, "--expect"]);
    cosign(env, &tuf, "bob.pem", Some(&a)).ok();
    publish(env, place).ok();
    env.run(&["verify", &place.repo("acme/app:1.1")]).ok();
    env.run(&["verify", &place.repo("acme/app:1.2")])
        .fails(1, &[]);
    // The rival was built on the version now replaced: it can no longer be co-signed.
    cosign(env, &tuf, "bob.pem", Some(&b)).fails(2, &["no pending version"]);
}

#[test]
fn two_of_three_release_on_a_layout() {
    let env = Env::new();
    let place = Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    };
    two_of_three_release(&env, &place);
}

#[test]
fn two_of_three_release_on_distribution_fallback() {
    let registry = Distribution::start();
    let env = Env::new();
    two_of_three_release(
        &env,
        &Place {
            prefix: format!("{}/", registry.addr()),
        },
    );
}

#[test]
fn two_of_three_release_on_referrers_registry() {
    let registry = ReferrersRegistry::start();
    let env = Env::new();
    two_of_three_release(
        &env,
        &Place {
            prefix: format!("{}/", registry.addr()),
        },
    );
}
