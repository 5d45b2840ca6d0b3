//! `ocituf status` of a root of trust with 1,024 succinct hash bins: it reads a seeded
//! sample of the bins, says so, and costs a bounded number of registry requests (counted by
//! a forwarding proxy in front of distribution); `--all` reads every bin.

use ocituf_testkit::{AdversarialProxy, Distribution};

use crate::flows::{self, Place};
use crate::support::Env;

/// Registry requests `status` may make with the default sample of 32 bins: the root chain,
/// timestamp, snapshot, targets and the bins' delegator (a listing and a blob or two each),
/// a listing and a blob per sampled bin, one listing of pending targets versions and one of
/// pending roots. Independent of the number of bins (46 in this test).
const STATUS_REQUEST_BUDGET: u64 = 100;

#[test]
fn status_of_1024_bins_samples_32_and_stays_within_a_request_budget() {
    let registry = Distribution::start();
    let proxy = AdversarialProxy::start(registry.addr());
    let env = Env::new();
    let place = Place {
        prefix: format!("{}/", proxy.addr()),
    };
    flows::set_up(&env, &place);
    let tuf = place.repo("acme/tuf");
    flows::delegate_hash_bins(&env, &place, 1024).ok();
    for i in 0..3 {
        let image = place.repo(&format!("big/svc{i}:1"));
        flows::push_image(&env, &image, &image);
        env.run(&["sign", &image, "--key", "bins.pem"]).ok();
    }
    flows::publish(&env, &place).ok();

    let before = proxy.requests();
    let run = env.run(&["status", &tuf, "-n", "acme", "--seed", "7"]);
    let sampled = proxy.requests() - before;
    let out = run.ok();
    assert!(
        out.contains("hash bins of big: sampled 32 of 1024 bins (seed 7;"),
        "{out}"
    );
    assert!(
        sampled <= STATUS_REQUEST_BUDGET,
        "status made {sampled} requests"
    );

    let json: serde_json::Value = serde_json::from_str(
        env.run(&["status", &tuf, "-n", "acme", "--seed", "7", "--json"])
            .ok(),
    )
    .unwrap();
    let bins = &json["hash_bins"][0];
    assert_eq!(bins["bins"], 1024, "{json}");
    assert_eq!(bins["read"], 32, "{json}");
    assert_eq!(bins["sampled"], true, "{json}");
    assert_eq!(bins["seed"], 7, "{json}");
    // Three images, both names each: six names in at most six bins, all published.
    let published = bins["published"].as_u64().unwrap();
    assert!((1..=6).contains(&published), "{json}");

    let before = proxy.requests();
    let all = env.run(&["status", &tuf, "-n", "acme", "--all"]);
    let every = proxy.requests() - before;
    assert!(
        all.ok().contains("hash bins of big: all 1024 bins read"),
        "{all:#?}"
    );
    assert!(every > 1024, "--all made only {every} requests");
    eprintln!("status: {sampled} requests sampled, {every} with --all");
}
