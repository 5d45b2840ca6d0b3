//! Credentials and TLS against distribution 2.8 with htpasswd basic auth and with HTTPS.

use base64::Engine as _;
use ocituf_oci::registry::{Credentials, Transport};
use ocituf_oci::{
    ArtifactStore, Digest, Error, ManifestRef, RegistryError, RegistryOptions, RegistryRepo,
};
use ocituf_testkit::{Auth, Distribution, DistributionOptions};

use crate::distribution::push_artifact;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pass";
/// The OAuth2 refresh token the test issuer accepts (`identitytoken` in a Docker config).
const REFRESH_TOKEN: &str = "refresh-xyz-0123";

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
        auth: Auth::Basic {
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

/// Token requests seen by the issuer: (Authorization header, scope).
type Issued = std::sync::Arc<std::sync::Mutex<Vec<(Option<String>, String)>>>;

/// The scope asked for and the credential shown (the expected basic header when a POSTed
/// refresh-token form is the accepted one): a GET with basic credentials, or a POST of an
/// OAuth2 refresh-token form.
fn token_request(req: &crate::http::FakeRequest, basic: &str) -> (String, Option<String>) {
    let params = if req.method == "POST" {
        format!("?{}", String::from_utf8_lossy(&req.body))
    } else {
        req.target.clone()
    };
    let url = reqwest::Url::parse(&format!("http://x{params}")).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let scope = q.get("scope").cloned().unwrap_or_default();
    let auth = if req.method == "POST" {
        (q.get("grant_type").map(String::as_str) == Some("refresh_token")
            && q.get("refresh_token").map(String::as_str) == Some(REFRESH_TOKEN)
            && q.get("service").map(String::as_str) == Some("ocituf-test"))
        .then(|| basic.to_owned())
    } else {
        req.header("authorization").map(str::to_owned)
    };
    (scope, auth)
}

/// A token issuer for distribution's `auth.token`: ES256 JWTs with the certificate in `x5c`,
/// granting the requested scope to `USER:PASSWORD` and nothing to anyone else. Writes
/// `cert.pem` (the registry's `rootcertbundle`) into `d`.
async fn start_token_issuer(d: &std::path::Path) -> (crate::http::TestServer, Issued) {
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::DecodePrivateKey as _;
    use std::sync::atomic::{AtomicU64, Ordering};

    let openssl = |args: &[&str]| {
        ocituf_testkit::run(
            std::process::Command::new("openssl")
                .current_dir(d)
                .args(args),
        )
        .unwrap()
    };
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "ec.pem",
    ]);
    openssl(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", "ec.pem", "-out", "key.pem",
    ]);
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "key.pem",
        "-subj",
        "/CN=ocituf-test-token",
        "-days",
        "2",
        "-out",
        "cert.pem",
    ]);
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(
        &std::fs::read_to_string(d.join("key.pem")).unwrap(),
    )
    .unwrap();
    let cert_b64: String = std::fs::read_to_string(d.join("cert.pem"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let issued = Issued::default();
    let log = issued.clone();
    let counter = AtomicU64::new(0);
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let server = crate::http::serve_http(move |req, _| {
        let (scope, auth) = token_request(req, &expected);
        log.lock().unwrap().push((auth.clone(), scope.clone()));
        let mut parts = scope.splitn(3, ':');
        let (kind, name, actions) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let access = if auth.as_deref() == Some(expected.as_str()) {
            serde_json::json!([{"type": kind, "name": name,
                "actions": actions.split(',').collect::<Vec<_>>()}])
        } else {
            serde_json::json!([])
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [cert_b64]});
        let claims = serde_json::json!({
            "iss": "ocituf-test-issuer", "sub": USER, "aud": "ocituf-test",
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": counter.fetch_add(1, Ordering::SeqCst).to_string(),
            "access": access,
        });
        let input = format!(
            "{}.{}",
            b64url.encode(header.to_string()),
            b64url.encode(claims.to_string())
        );
        let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
        let token = format!("{input}.{}", b64url.encode(sig.to_bytes()));
        crate::http::FakeResponse::new(200)
            .header("Content-Type", "application/json")
            .body(serde_json::json!({"token": token, "expires_in": 300}).to_string())
    })
    .await;
    (server, issued)
}

/// Distribution's token authentication for real: the registry verifies ES256 JWTs signed
/// by a key whose certificate is its `rootcertbundle`; the test issues them at the realm.
#[tokio::test]
async fn bearer_token_auth_against_distribution_token_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (token_server, issued) = start_token_issuer(d).await;
    let env = [
        ("REGISTRY_AUTH", "token".to_owned()),
        (
            "REGISTRY_AUTH_TOKEN_REALM",
            format!("http://{}/token", token_server.host),
        ),
        ("REGISTRY_AUTH_TOKEN_SERVICE", "ocituf-test".to_owned()),
        (
            "REGISTRY_AUTH_TOKEN_ISSUER",
            "ocituf-test-issuer".to_owned(),
        ),
        (
            "REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE",
            d.join("cert.pem").display().to_string(),
        ),
    ];
    let reg = Distribution::start_with(DistributionOptions {
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        ..DistributionOptions::default()
    });
    let cfg = docker_config(d, reg.addr(), USER, PASSWORD);
    let client = ocituf_oci::RegistryClient::new(
        reg.addr(),
        RegistryOptions {
            credentials: Credentials::DockerConfigFile(cfg),
            ..RegistryOptions::default()
        },
    )
    .unwrap();
    let repo = client.repo("acme/tuf").unwrap();
    let (m, digest) = push_artifact(
        &repo,
        "application/vnd.tuf.root.v1+json",
        b"root",
        None,
        Some("r"),
    )
    .await;
    for _ in 0..3 {
        let got = repo
            .get_manifest(ManifestRef::Tag("r"), 1 << 20)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((got.bytes.as_slice(), &got.digest), (m.as_slice(), &digest));
    }
    // One token per scope, cached: push,pull for the writes, pull for the reads.
    let scopes: Vec<String> = issued
        .lock()
        .unwrap()
        .iter()
        .map(|(_, s)| s.clone())
        .collect();
    assert_eq!(
        scopes,
        vec![
            "repository:acme/tuf:pull,push".to_owned(),
            "repository:acme/tuf:pull".to_owned()
        ]
    );
    assert!(issued.lock().unwrap().iter().all(|(a, _)| a.is_some()));

    // Anonymous: the token grants nothing, the registry refuses, typed.
    let anon = RegistryRepo::open(
        &format!("{}/acme/tuf", reg.addr()),
        RegistryOptions {
            credentials: Credentials::Anonymous,
            ..RegistryOptions::default()
        },
    )
    .unwrap();
    let r = anon.get_manifest(ManifestRef::Tag("r"), 1 << 20).await;
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
    assert_eq!(
        issued.lock().unwrap().last().unwrap().0,
        None,
        "no credentials sent"
    );
}

/// The same flow against testkit's own token server (a second, independent issuer).
#[tokio::test]
async fn bearer_token_auth_with_the_testkit_token_server() {
    let reg = Distribution::start_with(DistributionOptions {
        auth: Auth::Token {
            user: USER.into(),
            password: PASSWORD.into(),
        },
        ..DistributionOptions::default()
    });
    assert!(reg.token_realm().is_some());
    let dir = tempfile::tempdir().unwrap();
    let cfg = docker_config(dir.path(), reg.addr(), USER, PASSWORD);
    let client = ocituf_oci::RegistryClient::new(
        reg.addr(),
        RegistryOptions {
            credentials: Credentials::DockerConfigFile(cfg),
            ..RegistryOptions::default()
        },
    )
    .unwrap();
    let repo = client.repo("acme/tuf").unwrap();
    let (m, _) = push_artifact(
        &repo,
        "application/vnd.tuf.root.v1+json",
        b"root",
        None,
        Some("r"),
    )
    .await;
    let before = client.request_count();
    let got = repo
        .get_manifest(ManifestRef::Tag("r"), 1 << 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.bytes, m);
    // First pull: the challenge is known from the pushes, so the pull-scope token is fetched
    // up front (no 401 round trip): token + GET. Second pull: the cached token only.
    assert_eq!(client.request_count() - before, 2);
    repo.get_manifest(ManifestRef::Tag("r"), 1 << 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.request_count() - before, 3);
}

/// An OAuth2 identity token from the Docker config (`identitytoken`, as `docker login`
/// writes for some registries) is exchanged at the realm with a refresh-token POST.
#[tokio::test]
async fn identity_token_from_the_docker_config_against_distribution_token_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (token_server, issued) = start_token_issuer(d).await;
    let reg = Distribution::start_with(DistributionOptions {
        env: vec![
            ("REGISTRY_AUTH".into(), "token".into()),
            (
                "REGISTRY_AUTH_TOKEN_REALM".into(),
                format!("http://{}/token", token_server.host),
            ),
            ("REGISTRY_AUTH_TOKEN_SERVICE".into(), "ocituf-test".into()),
            (
                "REGISTRY_AUTH_TOKEN_ISSUER".into(),
                "ocituf-test-issuer".into(),
            ),
            (
                "REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE".into(),
                d.join("cert.pem").display().to_string(),
            ),
        ],
        ..DistributionOptions::default()
    });
    let cfg = d.join("identity.json");
    let config = serde_json::json!({ "auths": { reg.addr(): { "auth": "", "identitytoken": REFRESH_TOKEN } } });
    std::fs::write(&cfg, config.to_string()).unwrap();
    let repo = RegistryRepo::open(
        &format!("{}/acme/tuf", reg.addr()),
        RegistryOptions {
            credentials: Credentials::DockerConfigFile(cfg),
            ..RegistryOptions::default()
        },
    )
    .unwrap();
    let (m, _) = push_artifact(
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
    let issued = issued.lock().unwrap().clone();
    assert_eq!(issued.len(), 2, "one token per scope: {issued:?}");
    assert!(
        issued.iter().all(|(granted, _)| granted.is_some()),
        "{issued:?}"
    );
    assert!(!format!("{repo:?}").contains(REFRESH_TOKEN));
}
