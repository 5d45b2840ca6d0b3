//! A proxy in the environment is not used for a loopback registry. A test binary of its own:
//! it sets `HTTP_PROXY`/`HTTPS_PROXY` for the whole process before any thread starts.

use ocituf_oci::registry::Credentials;
use ocituf_oci::{ArtifactStore, Digest, RegistryOptions, RegistryRepo};
use ocituf_testkit::Distribution;

#[test]
fn loopback_registry_bypasses_the_environment_proxy() {
    let reg = Distribution::start();
    // A proxy that does not exist: any request sent to it fails.
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
    ] {
        std::env::set_var(var, "http://127.0.0.1:9");
    }
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let repo = RegistryRepo::open(
            &format!("{}/acme/tuf", reg.addr()),
            RegistryOptions {
                credentials: Credentials::Anonymous,
                max_retries: 0,
                ..RegistryOptions::default()
            },
        )
        .unwrap();
        let d = repo.put_blob(b"through no proxy").await.unwrap();
        assert_eq!(d, Digest::of(b"through no proxy"));
        let got = repo.get_blob(&d, 100).await.unwrap();
        assert_eq!(got.as_deref(), Some(&b"through no proxy"[..]));
    });
}
