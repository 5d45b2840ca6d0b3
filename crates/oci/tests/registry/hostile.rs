//! `hostile_fake_registry`: an in-process HTTP/1.1 server on 127.0.0.1 that misbehaves as no
//! real registry does (endless bodies, endless `Link` chains, swapped content, 429 storms),
//! and stands in for a token server. Each test names the attack it stops.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocituf_oci::registry::{Credential, Credentials, Secret};
use ocituf_oci::{
    ArtifactStore, Digest, Error, ManifestRef, RegistryClient, RegistryError, RegistryOptions,
    RegistryRepo,
};

pub use crate::http::{Body, FakeResponse, TestServer as HostileFakeRegistry};

/// The fake registry: a [`serve_http`](crate::http::serve_http) whose handler misbehaves.
pub async fn hostile_fake_registry(
    handler: impl Fn(&crate::http::FakeRequest, u64) -> FakeResponse + Send + Sync + 'static,
) -> HostileFakeRegistry {
    crate::http::serve_http(handler).await
}

fn opts() -> RegistryOptions {
    RegistryOptions {
        credentials: Credentials::Anonymous,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..RegistryOptions::default()
    }
}

fn repo_on(fake: &HostileFakeRegistry, o: RegistryOptions) -> (RegistryClient, RegistryRepo) {
    let client = RegistryClient::new(&fake.host, o).unwrap();
    let repo = client.repo("acme/tuf").unwrap();
    (client, repo)
}

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn referrers_page(entries: &[(&Digest, &str)]) -> Vec<u8> {
    let m: Vec<_> = entries
        .iter()
        .map(|(d, t)| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": d.as_str(), "size": 100, "artifactType": t})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": m}))
        .unwrap()
}

#[tokio::test]
async fn endless_data_blob_stops_at_the_limit() {
    let fake = hostile_fake_registry(|_, _| FakeResponse {
        status: 200,
        headers: Vec::new(),
        body: Body::Endless,
    })
    .await;
    let (_, repo) = repo_on(&fake, opts());
    let t = Instant::now();
    let r = repo.get_blob(&Digest::of(b"x"), 100_000).await;
    assert!(
        matches!(
            r,
            Err(Error::Registry(RegistryError::BodyTooLarge {
                limit: 100_000,
                ..
            }))
        ),
        "{r:?}"
    );
    let r = repo.get_manifest(ManifestRef::Tag("v1"), 50_000).await;
    assert!(
        matches!(
            r,
            Err(Error::Registry(RegistryError::BodyTooLarge {
                limit: 50_000,
                ..
            }))
        ),
        "{r:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn endless_data_declared_by_content_length_is_refused_before_reading() {
    let fake = hostile_fake_registry(|_, _| {
        FakeResponse::new(200).header("Content-Length", "1000000000000")
    })
    .await;
    let (_, repo) = repo_on(&fake, opts());
    let r = repo.get_blob(&Digest::of(b"x"), 1024).await;
    assert!(
        matches!(
            r,
            Err(Error::Registry(RegistryError::BodyTooLarge {
                limit: 1024,
                ..
            }))
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn blob_swapped_is_refused_by_digest() {
    let fake = hostile_fake_registry(|_, _| FakeResponse::new(200).body("evil bytes")).await;
    let (_, repo) = repo_on(&fake, opts());
    let want = Digest::of(b"good bytes");
    match repo.get_blob(&want, 1024).await {
        Err(Error::Registry(RegistryError::DigestMismatch {
            expected, actual, ..
        })) => {
            assert_eq!(expected, want);
            assert_eq!(actual, Digest::of(b"evil bytes"));
        }
        other => panic!("{other:?}"),
    }
    // A manifest fetched by digest is checked the same way.
    match repo.get_manifest(ManifestRef::Digest(&want), 1024).await {
        Err(Error::Registry(RegistryError::DigestMismatch { expected, .. })) => {
            assert_eq!(expected, want);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn manifest_swapped_under_a_tag_is_refused_by_docker_content_digest() {
    let claimed = Digest::of(b"{\"claimed\":1}");
    let c = claimed.clone();
    let fake = hostile_fake_registry(move |_, _| {
        FakeResponse::new(200)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .header("Docker-Content-Digest", c.as_str())
            .body("{\"served\":1}")
    })
    .await;
    let (_, repo) = repo_on(&fake, opts());
    match repo.get_manifest(ManifestRef::Tag("v1"), 1024).await {
        Err(Error::Registry(RegistryError::DigestMismatch {
            expected, actual, ..
        })) => {
            assert_eq!(expected, claimed);
            assert_eq!(actual, Digest::of(b"{\"served\":1}"));
        }
        other => panic!("{other:?}"),
    }
    // HEAD by digest answering another digest is refused too.
    let asked = Digest::of(b"asked");
    let r = repo.head_manifest(ManifestRef::Digest(&asked)).await;
    assert!(
        matches!(
            r,
            Err(Error::Registry(RegistryError::DigestMismatch { .. }))
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn endless_link_chain_stops_at_the_page_cap() {
    let fake = hostile_fake_registry(|req, n| {
        let d = Digest::of(n.to_string().as_bytes());
        FakeResponse::new(200)
            .header("Content-Type", INDEX)
            .header(
                "Link",
                &format!("<{}?page={}>; rel=\"next\"", req.path(), n + 1),
            )
            .body(referrers_page(&[(&d, "t")]))
    })
    .await;
    let (client, repo) = repo_on(&fake, opts());
    let subject = Digest::of(b"subject");
    let r = repo.referrers(&subject, None).await;
    assert!(
        matches!(
            r,
            Err(Error::Registry(RegistryError::ReferrersLimit {
                what: "pages",
                max: 16,
                ..
            }))
        ),
        "{r:?}"
    );
    assert_eq!(client.request_count(), 16);
    assert_eq!(fake.count(), 16);
}

#[tokio::test]
async fn huge_referrers_list_stops_at_the_entry_cap() {
    let digests: Vec<Digest> = (0..150)
        .map(|i: i32| Digest::of(&i.to_be_bytes()))
        .collect();
    let page = referrers_page(&digests.iter().map(|d| (d, "t")).collect::<Vec<_>>());
    let fake = hostile_fake_registry(move |_, _| {
        FakeResponse::new(200)
            .header("Content-Type", INDEX)
            .body(page.clone())
    })
    .await;
    let (_, repo) = repo_on(
        &fake,
        RegistryOptions {
            referrers_max_entries: 100,
            ..opts()
        },
    );
    let r = repo.referrers(&Digest::of(b"s"), None).await;
    assert!(
        matches!(
            r,
            Err(Error::Registry(RegistryError::ReferrersLimit {
                what: "entries",
                max: 100,
                ..
            }))
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn link_to_another_origin_is_not_followed() {
    let fake = hostile_fake_registry(|_, _| {
        FakeResponse::new(200)
            .header("Content-Type", INDEX)
            .header("Link", "<http://127.0.0.2:9/v2/steal?x=1>; rel=\"next\"")
            .body(referrers_page(&[]))
    })
    .await;
    let (client, repo) = repo_on(&fake, opts());
    let r = repo.referrers(&Digest::of(b"s"), None).await;
    assert!(
        matches!(
            r,
            Err(Error::Registry(RegistryError::InvalidResponse { .. }))
        ),
        "{r:?}"
    );
    assert_eq!(client.request_count(), 1);
}

#[tokio::test]
async fn unfiltered_referrers_are_filtered_locally_and_a_filtering_registry_is_trusted() {
    let a = Digest::of(b"a");
    let b = Digest::of(b"b");
    let page = referrers_page(&[(&a, "type/a"), (&b, "type/b")]);
    let p = page.clone();
    let ignores_filter = hostile_fake_registry(move |req, _| {
        assert!(
            req.target.contains("artifactType=type%2Fa"),
            "{}",
            req.target
        );
        FakeResponse::new(200)
            .header("Content-Type", INDEX)
            .body(p.clone())
    })
    .await;
    let (_, repo) = repo_on(&ignores_filter, opts());
    let (got, src) = repo
        .referrers(&Digest::of(b"s"), Some("type/a"))
        .await
        .unwrap();
    assert_eq!(src, ocituf_oci::ReferrersSource::Native);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].digest, a);

    // `OCI-Filters-Applied: artifactType` means the registry filtered: its answer is used as is.
    let says_filtered = hostile_fake_registry(move |_, _| {
        FakeResponse::new(200)
            .header("Content-Type", INDEX)
            .header("OCI-Filters-Applied", "artifactType")
            .body(page.clone())
    })
    .await;
    let (_, repo) = repo_on(&says_filtered, opts());
    let (got, _) = repo
        .referrers(&Digest::of(b"s"), Some("type/a"))
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
}

#[tokio::test]
async fn retry_storm_429_is_bounded() {
    let fake =
        hostile_fake_registry(|_, _| FakeResponse::new(429).header("Retry-After", "0")).await;
    let (client, repo) = repo_on(&fake, opts());
    let r = repo.get_blob(&Digest::of(b"x"), 10).await;
    assert!(
        matches!(
            r,
            Err(Error::Registry(RegistryError::Status { status: 429, .. }))
        ),
        "{r:?}"
    );
    // One try and max_retries (4) retries.
    assert_eq!(client.request_count(), 5);
    assert_eq!(fake.count(), 5);
}

#[tokio::test]
async fn transient_429_and_503_are_retried_until_success() {
    let fake = hostile_fake_registry(|_, n| match n {
        0 => FakeResponse::new(429).header("Retry-After", "0"),
        1 | 2 => FakeResponse::new(503),
        _ => FakeResponse::new(200).body("ok"),
    })
    .await;
    let (client, repo) = repo_on(&fake, opts());
    let got = repo.get_blob(&Digest::of(b"ok"), 10).await.unwrap();
    assert_eq!(got.as_deref(), Some(&b"ok"[..]));
    assert_eq!(client.request_count(), 4);
}

/// A registry (or a load balancer before it) that closes a kept-alive connection as the
/// request arrives: a read is sent again and succeeds; an upload `POST`, which the registry
/// may have acted on, is not repeated and fails with the transport error.
#[tokio::test]
async fn a_connection_closed_before_any_answer_is_retried_for_reads_only() {
    let hang_up = || FakeResponse {
        body: Body::HangUp,
        ..FakeResponse::new(200)
    };
    let fake = hostile_fake_registry(move |_, n| match n {
        0 | 1 => hang_up(),
        _ => FakeResponse::new(200).body("ok"),
    })
    .await;
    let (client, repo) = repo_on(&fake, opts());
    let got = repo.get_blob(&Digest::of(b"ok"), 10).await.unwrap();
    assert_eq!(got.as_deref(), Some(&b"ok"[..]));
    assert_eq!(client.request_count(), 3);

    let fake = hostile_fake_registry(move |req, _| {
        if req.method == "POST" {
            hang_up()
        } else {
            FakeResponse::new(404)
        }
    })
    .await;
    let (_, repo) = repo_on(&fake, opts());
    let err = repo.put_blob(b"new").await.unwrap_err();
    assert!(
        matches!(err, Error::Registry(RegistryError::Transport { ref method, .. }) if method == "POST"),
        "{err:?}"
    );
    let posts = fake
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1, "the upload was sent again");
}

#[tokio::test]
async fn retry_after_is_honoured_and_capped() {
    let fake = hostile_fake_registry(|_, n| match n {
        0 => FakeResponse::new(429).header("Retry-After", "1"),
        1 => FakeResponse::new(503).header("Retry-After", "3600"),
        _ => FakeResponse::new(200).body("ok"),
    })
    .await;
    let (_, repo) = repo_on(
        &fake,
        RegistryOptions {
            retry_after_max: Duration::from_millis(1500),
            ..opts()
        },
    );
    let t = Instant::now();
    repo.get_blob(&Digest::of(b"ok"), 10)
        .await
        .unwrap()
        .unwrap();
    let took = t.elapsed();
    // 1 s as asked, then 3600 s capped to 1.5 s.
    assert!(took >= Duration::from_millis(2500), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

fn basic(user: &str, pass: &str) -> Credentials {
    Credentials::Basic(Credential {
        username: user.into(),
        password: Secret::new(pass),
    })
}

/// Distribution's token flow, with the fake as registry and token server.
#[tokio::test]
async fn bearer_token_flow_caches_one_token_per_scope() {
    let tokens = Arc::new(AtomicU64::new(0));
    let t = tokens.clone();
    let fake = hostile_fake_registry(move |req, _| {
        if req.path() == "/token" {
            assert_eq!(req.header("authorization"), Some("Basic YWxpY2U6aHVudGVyMg=="));
            let n = t.fetch_add(1, Ordering::SeqCst);
            let scope = req.target.split("scope=").nth(1).unwrap_or("").to_owned();
            return FakeResponse::new(200)
                .body(format!("{{\"token\":\"tok-{n}-{scope}\",\"expires_in\":300}}"));
        }
        match req.header("authorization") {
            Some(a) if a.starts_with("Bearer tok-") => FakeResponse::new(404),
            _ => FakeResponse::new(401).header(
                "WWW-Authenticate",
                &format!(
                    "Bearer realm=\"http://{}/token\",service=\"fake\",scope=\"repository:acme/tuf:pull\"",
                    req.header("host").unwrap_or("")
                ),
            ),
        }
    })
    .await;
    let (client, repo) = repo_on(
        &fake,
        RegistryOptions {
            credentials: basic("alice", "hunter2"),
            ..opts()
        },
    );
    for _ in 0..3 {
        assert!(repo
            .get_blob(&Digest::of(b"x"), 10)
            .await
            .unwrap()
            .is_none());
    }
    // 401, token, retry, then two requests with the cached token.
    assert_eq!(tokens.load(Ordering::SeqCst), 1);
    assert_eq!(client.request_count(), 5);
    // A push scope needs its own token.
    let _ = repo.put_blob(b"y").await;
    assert_eq!(tokens.load(Ordering::SeqCst), 2);
    let reqs = fake.requests.lock().unwrap().clone();
    let token_reqs: Vec<_> = reqs.iter().filter(|r| r.path() == "/token").collect();
    assert!(token_reqs[0].target.contains("service=fake"));
    assert!(token_reqs[0]
        .target
        .contains("scope=repository%3Aacme%2Ftuf%3Apull"));
    assert!(token_reqs[1]
        .target
        .contains("scope=repository%3Aacme%2Ftuf%3Apull%2Cpush"));
}

#[tokio::test]
async fn credentials_never_leak_into_errors_or_plain_http_realms() {
    // A token server that refuses: the error names the URL, never the password.
    let fake = hostile_fake_registry(|req, _| {
        if req.path() == "/token" {
            return FakeResponse::new(401);
        }
        FakeResponse::new(401).header(
            "WWW-Authenticate",
            &format!(
                "Bearer realm=\"http://{}/token\"",
                req.header("host").unwrap_or("")
            ),
        )
    })
    .await;
    let (client, repo) = repo_on(
        &fake,
        RegistryOptions {
            credentials: basic("alice", "hunter2"),
            ..opts()
        },
    );
    let e = repo.get_blob(&Digest::of(b"x"), 10).await.unwrap_err();
    let shown = format!("{e} {e:?} {client:?} {repo:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("YWxpY2U6aHVudGVyMg"),
        "{shown}"
    );
    assert!(
        matches!(e, Error::Registry(RegistryError::Token { .. })),
        "{e:?}"
    );

    // A realm on plain HTTP off loopback never gets the credentials.
    let fake = hostile_fake_registry(|_, _| {
        FakeResponse::new(401).header(
            "WWW-Authenticate",
            "Bearer realm=\"http://auth.example.invalid/token\"",
        )
    })
    .await;
    let (_, repo) = repo_on(
        &fake,
        RegistryOptions {
            credentials: basic("alice", "hunter2"),
            ..opts()
        },
    );
    let e = repo.get_blob(&Digest::of(b"x"), 10).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Registry(RegistryError::InsecureCredentials { .. })
        ),
        "{e:?}"
    );
}

/// A registry that sends uploads to another origin must not receive our credentials there.
#[tokio::test]
async fn upload_location_on_another_origin_gets_no_credentials() {
    let elsewhere = hostile_fake_registry(|_, _| FakeResponse::new(201)).await;
    let target = format!("http://{}/upload?state=1", elsewhere.host);
    let registry = hostile_fake_registry(move |req, _| {
        if req.header("authorization") != Some("Basic YWxpY2U6aHVudGVyMg==") {
            return FakeResponse::new(401).header("WWW-Authenticate", "Basic realm=\"fake\"");
        }
        match req.method.as_str() {
            "HEAD" => FakeResponse::new(404),
            "POST" => FakeResponse::new(202).header("Location", &target),
            _ => FakeResponse::new(500),
        }
    })
    .await;
    let (_, repo) = repo_on(
        &registry,
        RegistryOptions {
            credentials: basic("alice", "hunter2"),
            ..opts()
        },
    );
    let d = repo.put_blob(b"blob").await.unwrap();
    assert_eq!(d, Digest::of(b"blob"));
    let put = elsewhere.requests.lock().unwrap().clone();
    assert_eq!(put.len(), 1);
    assert_eq!(put[0].method, "PUT");
    assert!(
        put[0].target.contains("digest=sha256%3A"),
        "{}",
        put[0].target
    );
    assert_eq!(
        put[0].header("authorization"),
        None,
        "credentials leaked to another origin"
    );
}

/// Registries redirect blob downloads to storage elsewhere: followed, digest-checked, and
/// the storage host never sees our credentials.
#[tokio::test]
async fn blob_redirect_to_another_origin_drops_credentials() {
    let storage = hostile_fake_registry(|_, _| FakeResponse::new(200).body("blob")).await;
    let target = format!("http://{}/storage/blob", storage.host);
    let registry = hostile_fake_registry(move |req, _| {
        if req.header("authorization") != Some("Basic YWxpY2U6aHVudGVyMg==") {
            return FakeResponse::new(401).header("WWW-Authenticate", "Basic realm=\"fake\"");
        }
        FakeResponse::new(307).header("Location", &target)
    })
    .await;
    let (_, repo) = repo_on(
        &registry,
        RegistryOptions {
            credentials: basic("alice", "hunter2"),
            ..opts()
        },
    );
    let got = repo.get_blob(&Digest::of(b"blob"), 100).await.unwrap();
    assert_eq!(got.as_deref(), Some(&b"blob"[..]));
    let seen = storage.requests.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        None,
        "credentials leaked to storage"
    );
}

/// Slow retrieval (TUF's name for it): a registry that never answers, or drip-feeds an
/// endless body, is cut off by the read and request timeouts, bounded retries included.
#[tokio::test]
async fn slow_retrieval_is_cut_off_by_timeouts() {
    let stalled = hostile_fake_registry(|_, _| FakeResponse {
        status: 200,
        headers: Vec::new(),
        body: Body::Stall,
    })
    .await;
    let (client, repo) = repo_on(
        &stalled,
        RegistryOptions {
            read_timeout: Duration::from_millis(300),
            max_retries: 1,
            ..opts()
        },
    );
    let t = Instant::now();
    let r = repo.get_blob(&Digest::of(b"x"), 1 << 20).await;
    assert!(
        matches!(r, Err(Error::Registry(RegistryError::Transport { .. }))),
        "{r:?}"
    );
    assert_eq!(client.request_count(), 2, "one try and one retry");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    let drip = hostile_fake_registry(|_, _| FakeResponse {
        status: 200,
        headers: Vec::new(),
        body: Body::Drip,
    })
    .await;
    let (_, repo) = repo_on(
        &drip,
        RegistryOptions {
            request_timeout: Duration::from_secs(1),
            ..opts()
        },
    );
    let t = Instant::now();
    let r = repo.get_blob(&Digest::of(b"x"), 1 << 20).await;
    assert!(
        matches!(r, Err(Error::Registry(RegistryError::Transport { .. }))),
        "{r:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}
