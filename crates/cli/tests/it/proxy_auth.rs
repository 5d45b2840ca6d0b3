//! The proxy reaches a registry that wants bearer tokens (distribution with `auth.token`,
//! tokens from the testkit's token server) with credentials from `REGISTRY_AUTH_FILE`;
//! without credentials it fails closed, and skopeo shows why.

use ocituf_testkit::{Auth, Distribution, DistributionOptions};

use crate::flows::{self, Place};
use crate::proxy_support::{prefix, pull, ProxyProcess};
use crate::support::Env;

const USER: &str = "ci";
const PASSWORD: &str = "s3cret-pass";

#[test]
fn proxy_pulls_from_a_token_registry_with_credentials_from_registry_auth_file() {
    use base64::Engine as _;
    let registry = Distribution::start_with(DistributionOptions {
        auth: Auth::Token {
            user: USER.into(),
            password: PASSWORD.into(),
        },
        ..DistributionOptions::default()
    });
    let env = Env::new();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let config = serde_json::json!({"auths": {registry.addr(): {"auth": auth}}}).to_string();
    // The set-up commands use ~/.docker/config.json.
    env.write(".docker/config.json", &config);
    let p = Place {
        prefix: format!("{}/", registry.addr()),
    };
    flows::set_up(&env, &p);
    let image = p.repo("acme/app:1.0");
    flows::push_image(&env, &image, "one");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    flows::publish(&env, &p).ok();
    // The proxy gets its credentials from REGISTRY_AUTH_FILE only.
    std::fs::remove_file(env.path(".docker/config.json")).unwrap();
    let auth_file = env.write("auth.json", &config);

    let anonymous = ProxyProcess::start(&env, &[]);
    let path = format!("{}/acme/app:1.0", prefix(registry.addr()));
    let got = pull(&anonymous.addr, &path, &[], &env.path("pulled/anon"));
    assert!(!got.ok, "{got:#?}");
    assert!(got.stderr.contains("ocituf proxy:"), "{got:#?}");
    assert!(
        got.stderr.contains("401") || got.stderr.contains("token"),
        "{got:#?}"
    );

    env.vars.borrow_mut().push((
        "REGISTRY_AUTH_FILE".to_owned(),
        auth_file.display().to_string(),
    ));
    let proxy = ProxyProcess::start(&env, &[]);
    let got = pull(&proxy.addr, &path, &[], &env.path("pulled/auth"));
    assert!(got.ok, "{got:#?}\nproxy log:\n{}", proxy.log());
    assert!(!proxy.log().contains(PASSWORD), "{}", proxy.log());
}
