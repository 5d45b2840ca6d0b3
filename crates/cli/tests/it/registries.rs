//! The same flows against the two real test registries, started on 127.0.0.1 by the testkit:
//! distribution 2.8 (no referrers API: the tag-schema fallback) and the referrers registry
//! (native referrers API).

use ocituf_testkit::{Distribution, ReferrersRegistry};

use crate::flows::{self, Place};
use crate::support::Env;

fn place(addr: &str) -> Place {
    Place {
        prefix: format!("{addr}/"),
    }
}

#[test]
fn whole_flow_on_distribution_fallback() {
    let registry = Distribution::start();
    let env = Env::new();
    flows::whole_flow(&env, &place(registry.addr()));
}

#[test]
fn whole_flow_on_referrers_registry() {
    let registry = ReferrersRegistry::start();
    let env = Env::new();
    flows::whole_flow(&env, &place(registry.addr()));
}

#[test]
fn concurrent_signers_on_distribution_fallback_lose_nothing() {
    let registry = Distribution::start();
    let env = Env::new();
    flows::concurrent_signers(&env, &place(registry.addr()), 8);
}

#[test]
fn registry_stopped_mid_way_is_a_network_failure() {
    let registry = Distribution::start();
    let env = Env::new();
    let p = place(registry.addr());
    flows::set_up(&env, &p);
    let image = p.repo("acme/app:1");
    flows::push_image(&env, &image, "x");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    flows::publish(&env, &p).ok();
    env.run(&["verify", &image]).ok();
    registry.stop();
    env.run(&["verify", &image]).fails(3, &[registry.addr()]);
    env.run(&["sign", &image, "--key", "app.pem"])
        .fails(3, &[registry.addr()]);
}
