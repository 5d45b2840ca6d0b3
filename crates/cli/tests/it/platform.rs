//! `verify --platform` and `resolve --platform`: the platform manifest of a multi-arch image,
//! reached only through the verified index (docs/oci-mapping.md §7).

use ocituf_testkit::Distribution;

use crate::flows::{self, Place};
use crate::proxy_support::push_multiarch;
use crate::support::Env;

#[test]
fn platform_is_selected_from_the_verified_index() {
    let registry = Distribution::start();
    let env = Env::new();
    let p = Place {
        prefix: format!("{}/", registry.addr()),
    };
    flows::set_up(&env, &p);
    let multi = p.repo("acme/app:multi");
    let (index, amd, arm) = push_multiarch(&env, &multi, "good");
    env.run(&["sign", &multi, "--key", "app.pem"]).ok();
    let single = p.repo("acme/app:1.0");
    let single_digest = flows::push_image(&env, &single, "one");
    env.run(&["sign", &single, "--key", "app.pem"]).ok();
    flows::publish(&env, &p).ok();

    // Without --platform: the signed index digest.
    assert_eq!(env.run(&["verify", &multi]).ok().trim(), index.as_str());
    let arm_run = env.run(&["verify", &multi, "--platform", "linux/arm64"]);
    assert_eq!(arm_run.ok().trim(), arm.as_str());
    assert!(
        arm_run.stderr.contains(&format!(
            "listed for linux/arm64 by the signed index {index}"
        )),
        "{arm_run:#?}"
    );
    assert_eq!(
        env.run(&["resolve", &multi, "--platform", "linux/amd64"])
            .ok()
            .trim(),
        format!("{multi}@{amd}")
    );
    let json: serde_json::Value = serde_json::from_str(
        env.run(&["verify", &multi, "--platform", "linux/arm64", "--json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(json["digest"], arm.as_str());
    assert_eq!(json["signed_digest"], index.as_str());
    assert_eq!(json["signed_is_index"], true);
    assert_eq!(json["role"], "app");

    // A platform the index does not list: a usage error naming what it has.
    env.run(&["verify", &multi, "--platform", "windows/amd64"])
        .fails(
            2,
            &[
                "no manifest for platform windows/amd64",
                "linux/amd64, linux/arm64",
            ],
        );
    env.run(&["verify", &multi, "--platform", "linux"])
        .fails(2, &["os/architecture"]);

    // A single-arch image: its signed digest when its config names the platform.
    assert_eq!(
        env.run(&["verify", &single, "--platform", "linux/amd64"])
            .ok()
            .trim(),
        single_digest
    );
    env.run(&["verify", &single, "--platform", "linux/arm64"])
        .fails(2, &["no manifest for platform linux/arm64", "linux/amd64"]);

    // The tag moved to another index: refused before any platform is read.
    let (evil, _, _) = push_multiarch(&env, &multi, "evil");
    env.run(&["verify", &multi, "--platform", "linux/arm64"])
        .fails(1, &["is not signed", evil.as_str(), index.as_str()]);
}
