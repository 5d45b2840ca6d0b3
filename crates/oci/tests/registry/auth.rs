//! Credentials and TLS against distribution 2.8 with htpasswd basic auth and with HTTPS.

use base64::Engine as _;
use ocituf_oci::registry::{Credentials, Transport};
use ocituf_oci::{
    ArtifactStore, Digest, Error, ManifestRef, RegistryError, RegistryOptions, RegistryRepo,
};
use ocituf_testkit::{Distribution, DistributionOptions};

use crate::distribution::push_artifact;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pass";

fn docker_config(
    dir: &std::path::Path,
    host: &str,
    user: &str,
    password: &str,
) -> std::path::PathBuf {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let path = dir.join("config.json");
    let cfg = serde_json::json!({ "auths": { host: { "auth": auth } } });
    std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn basic_auth_with_credentials_from_the_docker_config() {
    let reg = Distribution::start_with(DistributionOptions {
        auth: ocituf_testkit::Auth::Basic {
            user: USER.into(),
            password: PASSWORD.into(),
        },
        ..DistributionOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = docker_config(dir.path(), reg.addr(), USER, PASSWORD);
    let opts = RegistryOptions {
        credentials: Credentials::DockerConfigFile(cfg),
        ..RegistryOptions::default()
    };
    let repo = RegistryRepo::open(&format!("{}/acme/tuf", reg.addr()), opts).unwrap();
    let (m, d) = push_artifact(
        &repo,
        "application/vnd.tuf.root.v1+json",
        b"root",
        None,
        Some("r"),
    )
    .await;
    let got = repo
        .get_manifest(ManifestRef::Tag("r"), 1 << 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.bytes, m);
    assert_eq!(got.digest, d);

    // Anonymous: refused, typed.
    let anon = RegistryRepo::open(
        &format!("{}/acme/tuf", reg.addr()),
        RegistryOptions {
            credentials: Credentials::Anonymous,
            ..RegistryOptions::default()
        },
    )
    .unwrap();
    let r = anon.get_blob(&Digest::of(b"root"), 100).await;
    assert!(
        matches!(
            r,
            Err(Error::Registry(RegistryError::Unauthorized {
                status: 401,
                ..
            }))
        ),
        "{r:?}"
    );

    // Wrong password: refused, and the password shows nowhere.
    let cfg = docker_config(dir.path(), reg.addr(), USER, "wrong-password-xyz");
    let bad = RegistryRepo::open(
        &format!("{}/acme/tuf", reg.addr()),
        RegistryOptions {
            credentials: Credentials::DockerConfigFile(cfg),
            ..RegistryOptions::default()
        },
    )
    .unwrap();
    let e = bad.get_blob(&Digest::of(b"root"), 100).await.unwrap_err();
    assert!(
        matches!(e, Error::Registry(RegistryError::Unauthorized { .. })),
        "{e:?}"
    );
    let shown = format!("{e} {e:?} {bad:?}");
    assert!(!shown.contains("wrong-password-xyz"), "{shown}");
}

#[tokio::test]
async fn tls_with_a_custom_ca() {
    let reg = Distribution::start_with(DistributionOptions {
        tls: true,
        ..DistributionOptions::default()
    });
    let ca = reg.ca_cert_path().unwrap();
    let opts = RegistryOptions {
        transport: Transport::Https,
        ca_file: Some(ca),
        credentials: Credentials::Anonymous,
        ..RegistryOptions::default()
    };
    let repo = RegistryRepo::open(&format!("{}/acme/tuf", reg.addr()), opts).unwrap();
    let (_, d) = push_artifact(
        &repo,
        "application/vnd.tuf.root.v1+json",
        b"root",
        None,
        None,
    )
    .await;
    assert!(repo
        .head_manifest(ManifestRef::Digest(&d))
        .await
        .unwrap()
        .is_some());

    // Without the CA the certificate is not trusted.
    let untrusted = RegistryRepo::open(
        &format!("{}/acme/tuf", reg.addr()),
        RegistryOptions {
            transport: Transport::Https,
            credentials: Credentials::Anonymous,
            max_retries: 0,
            ..RegistryOptions::default()
        },
    )
    .unwrap();
    let r = untrusted.head_manifest(ManifestRef::Digest(&d)).await;
    assert!(
        matches!(r, Err(Error::Registry(RegistryError::Transport { .. }))),
        "{r:?}"
    );
    // A CA file that holds no certificate is a clear error.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("ca.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let r = RegistryRepo::open(
        &format!("{}/acme/tuf", reg.addr()),
        RegistryOptions {
            ca_file: Some(junk),
            ..RegistryOptions::default()
        },
    );
    assert!(matches!(r, Err(RegistryError::CaFileEmpty { .. })), "{r:?}");
}
