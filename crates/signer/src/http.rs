//! The signer's HTTP endpoints (`listen = "ADDR:PORT"` in signer.toml): what operators and
//! maintainers look at. Clients never need them: they read only the registry.
//!
//! - `GET /healthz`: 200 while the process runs.
//! - `GET /readyz`: 200 once every root of trust has published and its last batch
//!   succeeded; 503 with the reasons otherwise.
//! - `GET /metrics`: Prometheus text: publishes, published versions, seconds until the
//!   timestamp and snapshot expire, whether the last batch failed, forked roles, queue
//!   depth, leadership, and histograms of submission-to-covered and publish times.
//! - `GET /v1/roots/{name}/status`: the root's [`crate::RootStatus`] as JSON.
//! - `POST /v1/roots/{name}/submissions` (`Authorization: Bearer TOKEN`, a token whose
//!   sha256 the root's `submit-token-sha256` lists; body `{"role": "app", "version": 12}`,
//!   at most 4 KiB; `?wait=SECONDS`, at most 300, default 30): a publisher pushed that
//!   version (`"digest"`, optional: the manifest it pushed). The signer judges it from the
//!   registry (`crate::fate`) and answers 200 `{"fate": "accepted", "timestamp_version": N,
//!   "listed": V}` once a published timestamp covers it; 409 `{"fate": "conflict",
//!   "rebase_on": V, "why": …}` when another version took its place; 422 `{"fate":
//!   "rejected", "why": …}` when it can never be published; 202 `{"fate": "waiting", "why":
//!   …}` when the wait runs out first (the registry failing). 401 without a bearer token, 403 for a token not of this root, 400 for a
//!   malformed body, 413 for a large one, 503 (`Retry-After`, the leader's replica id) on
//!   a replica that does not lead the root; none of them changes anything.
//! - `GET /site/{name}/` (and `index.html`, `index.json`): the static site of `ocituf site`,
//!   built live from verified metadata (the same [`ocituf_writer::site`] code) at most once
//!   per `site-refresh`; concurrent requests share one build.
//!
//! Only the submission reads a request body, bounded. Pages carry the site's own
//! Content-Security-Policy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State as AxumState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ocituf_resolver::RepositoryReference;
use ocituf_writer::site::{self, CollectOptions};
use ocituf_writer::{MetaRepo, Pin};
use time::OffsetDateTime;
use tokio::sync::Mutex;

pub use crate::metrics::{render_metrics, MetricsOf};
use crate::service::Signer;

/// How long one live site build may take before the request gets a 503.
const SITE_BUILD_TIMEOUT: Duration = Duration::from_secs(60);
/// Expiry warnings on the live site: this long before a role expires.
const SITE_WARN_WITHIN: time::Duration = time::Duration::days(7);

/// Largest submission body.
const MAX_SUBMISSION: usize = 4096;
/// Longest `?wait=` of a submission.
const MAX_SUBMIT_WAIT: u64 = 300;

struct Page {
    built: Instant,
    html: String,
    json: String,
}

struct Shared {
    signer: Arc<Signer>,
    registry: ocituf_oci::RegistryOptions,
    refresh: Duration,
    pages: BTreeMap<String, Mutex<Option<Page>>>,
}

/// The router over `signer`'s roots of trust. `refresh`: how long a built site page is
/// served before the next request builds it again.
pub fn router(
    signer: Arc<Signer>,
    registry: ocituf_oci::RegistryOptions,
    refresh: Duration,
) -> Router {
    let pages = signer
        .roots()
        .map(|n| (n.to_owned(), Mutex::new(None)))
        .collect();
    let shared = Arc::new(Shared {
        signer,
        registry,
        refresh,
        pages,
    });
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/roots/{name}/status", get(status))
        .route(
            "/v1/roots/{name}/submissions",
            axum::routing::post(submit).layer(axum::extract::DefaultBodyLimit::max(MAX_SUBMISSION)),
        )
        .route("/site/{name}", get(site_redirect))
        .route("/site/{name}/", get(site_html))
        .route("/site/{name}/index.html", get(site_html))
        .route("/site/{name}/index.json", get(site_json))
        .with_state(shared)
}

/// Serve [`router`] on `listener` until `shutdown` completes (in-flight requests finish).
///
/// # Errors
/// The listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    signer: Arc<Signer>,
    registry: ocituf_oci::RegistryOptions,
    refresh: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(signer, registry, refresh))
        .with_graceful_shutdown(shutdown)
        .await
}

fn text(code: StatusCode, body: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn not_served(name: &str) -> Response {
    text(
        StatusCode::NOT_FOUND,
        format!("root of trust {name:?} is not served by this signer\n"),
    )
}

async fn readyz(AxumState(s): AxumState<Arc<Shared>>) -> Response {
    let mut problems = Vec::new();
    for name in s.signer.roots() {
        let Some(st) = s.signer.status(name) else {
            continue;
        };
        if !st.leading {
            // A follower is ready while some replica leads the root.
            if st.leader.is_none() {
                problems.push(format!("{name}: no replica leads it yet"));
            }
        } else if let Some(e) = &st.last_error {
            problems.push(format!("{name}: last batch failed: {e}"));
        } else if st.timestamp_version.is_none() {
            problems.push(format!("{name}: nothing published yet"));
        }
    }
    if problems.is_empty() {
        text(StatusCode::OK, "ready\n".to_owned())
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", problems.join("\n")),
        )
    }
}

async fn metrics(AxumState(s): AxumState<Arc<Shared>>) -> Response {
    let roots: Vec<MetricsOf> = s
        .signer
        .roots()
        .filter_map(|n| {
            Some(MetricsOf {
                name: n.to_owned(),
                status: s.signer.status(n)?,
                counters: s.signer.metrics(n)?,
            })
        })
        .collect();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render_metrics(&roots, OffsetDateTime::now_utc()),
    )
        .into_response()
}

fn rfc3339(t: Option<OffsetDateTime>) -> serde_json::Value {
    t.and_then(|t| ocituf_tuf::metadata::expires_format::format(t).ok())
        .map_or(serde_json::Value::Null, serde_json::Value::String)
}

async fn status(AxumState(s): AxumState<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let Some(st) = s.signer.status(&name) else {
        return not_served(&name);
    };
    let body = serde_json::json!({
        "root_of_trust": name,
        "timestamp_version": st.timestamp_version,
        "snapshot_version": st.snapshot_version,
        "timestamp_expires": rfc3339(st.timestamp_expires),
        "snapshot_expires": rfc3339(st.snapshot_expires),
        "roles": st.roles,
        "forked": st.forked,
        "publishes": st.publishes,
        "last_error": st.last_error,
        "leading": st.leading,
        "leader": st.leader,
        "fencing_token": st.fencing_token,
        "replica_id": s.signer.replica_id(),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body:#}\n"),
    )
        .into_response()
}

fn json_answer(code: StatusCode, body: &serde_json::Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body:#}\n"),
    )
        .into_response()
}

/// Whether `headers` carry a bearer token whose sha256 is one of `allowed`.
fn authorised(headers: &axum::http::HeaderMap, allowed: &[String]) -> Result<(), Response> {
    use sha2::Digest as _;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err((
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "submissions need Authorization: Bearer TOKEN\n",
        )
            .into_response());
    };
    let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    // Compare every listed hash in full: how long this takes says nothing about the token.
    let known = allowed.iter().fold(false, |found, h| {
        let same = h.len() == hash.len()
            && h.bytes()
                .zip(hash.bytes())
                .fold(0u8, |d, (a, b)| d | (a ^ b))
                == 0;
        found | same
    });
    if known {
        Ok(())
    } else {
        Err(text(
            StatusCode::FORBIDDEN,
            "this token may not submit to this root of trust\n".to_owned(),
        ))
    }
}

async fn submit(
    AxumState(s): AxumState<Arc<Shared>>,
    Path(name): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(config) = s.signer.root_config(&name) else {
        return not_served(&name);
    };
    if let Err(r) = authorised(&headers, &config.submit_token_sha256) {
        return r;
    }
    let bad = |why: &str| text(StatusCode::BAD_REQUEST, format!("{why}\n"));
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return bad("the body is not JSON: send {\"role\": \"ROLE\", \"version\": N}");
    };
    let (Some(role), Some(version)) = (v["role"].as_str(), v["version"].as_u64()) else {
        return bad("the body needs \"role\" (a string) and \"version\" (a number)");
    };
    if ocituf_oci::mapping::check_role_name(role).is_err() {
        return bad("\"role\" is not a role name");
    }
    let digest = match &v["digest"] {
        serde_json::Value::Null => None,
        serde_json::Value::String(d) => match ocituf_oci::Digest::parse(d) {
            Ok(d) => Some(d),
            Err(_) => return bad("\"digest\" is not a sha256 manifest digest"),
        },
        _ => return bad("\"digest\" is a string: the manifest digest pushed"),
    };
    if let Some(r) = not_leader(&s.signer, &name) {
        return r;
    }
    let wait = match query.as_deref().and_then(|q| q.strip_prefix("wait=")) {
        None if query.is_none() => 30,
        Some(w) => match w.parse::<u64>() {
            Ok(n) if n <= MAX_SUBMIT_WAIT => n,
            _ => return bad("?wait= must be a number of seconds, at most 300"),
        },
        None => return bad("the only query parameter is ?wait=SECONDS"),
    };
    let answer = |code: StatusCode, fate: &str, more: serde_json::Value| {
        let mut body = serde_json::json!({
            "fate": fate,
            "root_of_trust": name,
            "role": role,
            "version": version,
        });
        if let (Some(b), serde_json::Value::Object(m)) = (body.as_object_mut(), more) {
            b.extend(m);
        }
        json_answer(code, &body)
    };
    match s
        .signer
        .submit(
            &name,
            role,
            version,
            digest.as_ref(),
            Duration::from_secs(wait),
        )
        .await
    {
        Ok(crate::Fate::Accepted {
            timestamp_version,
            listed,
        }) => answer(
            StatusCode::OK,
            "accepted",
            serde_json::json!({"timestamp_version": timestamp_version, "listed": listed}),
        ),
        Ok(crate::Fate::Conflict { rebase_on, why }) => answer(
            StatusCode::CONFLICT,
            "conflict",
            serde_json::json!({"rebase_on": rebase_on, "why": why}),
        ),
        Ok(crate::Fate::Rejected { why }) => answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rejected",
            serde_json::json!({"why": why.to_string()}),
        ),
        Err(e) => answer(
            StatusCode::ACCEPTED,
            "waiting",
            serde_json::json!({"why": e.to_string()}),
        ),
    }
}

/// A follower does not take submissions: 503, `Retry-After` a third of a lease, and the
/// leader's replica id (docs/signer.md: why not queue them in the database).
fn not_leader(signer: &Signer, name: &str) -> Option<Response> {
    let st = signer.status(name)?;
    if st.leading {
        return None;
    }
    let retry = signer
        .lease()
        .map_or(1, |l| (l.as_secs() / 3).max(1))
        .to_string();
    let body = serde_json::json!({
        "fate": "not-leader",
        "root_of_trust": name,
        "leader": st.leader,
        "why": "this replica does not lead this root of trust: submit to the leader, or retry after Retry-After seconds (the leader also finds pushed versions by itself)",
    });
    Some(
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (header::RETRY_AFTER, retry),
            ],
            format!("{body:#}\n"),
        )
            .into_response(),
    )
}

async fn site_redirect(Path(name): Path<String>) -> Response {
    // Relative links in the page need the trailing slash.
    let to = format!("/site/{}/", urlencode(&name));
    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, to)]).into_response()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Build (or reuse) the site of `name`; `pick` chooses the HTML or the JSON.
async fn site_page(s: &Shared, name: &str, pick: fn(&Page) -> (&'static str, String)) -> Response {
    let (Some(slot), Some(config)) = (s.pages.get(name), s.signer.root_config(name)) else {
        return not_served(name);
    };
    let mut page = slot.lock().await;
    if page.as_ref().is_none_or(|p| p.built.elapsed() >= s.refresh) {
        let built = tokio::time::timeout(SITE_BUILD_TIMEOUT, build(s, name, config)).await;
        match built {
            Ok(Ok(p)) => *page = Some(p),
            Ok(Err(e)) => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("could not build the site of {name:?}: {e}\n"),
                )
            }
            Err(_) => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("building the site of {name:?} took over {SITE_BUILD_TIMEOUT:?}\n"),
                )
            }
        }
    }
    let Some(p) = page.as_ref() else {
        return not_served(name);
    };
    let (content_type, body) = pick(p);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn build(
    s: &Shared,
    name: &str,
    config: &crate::config::RootConfig,
) -> ocituf_writer::Result<Page> {
    let repo_ref = RepositoryReference::parse(&config.repository).map_err(|e| {
        ocituf_writer::Error::wrap(
            ocituf_resolver::ErrorKind::Config,
            format!("root of trust {name:?}: bad repository"),
            e,
        )
    })?;
    let repo = MetaRepo::open(&repo_ref, name, &s.registry)?;
    let pin = Pin::Bytes(config.root.clone());
    let model = site::collect(
        &repo,
        &repo_ref,
        &CollectOptions {
            pin: Some(&pin),
            now: OffsetDateTime::now_utc(),
            warn_within: SITE_WARN_WITHIN,
            images: None,
            registry: s.registry.clone(),
        },
    )
    .await?;
    Ok(Page {
        built: Instant::now(),
        html: site::render(&model),
        json: site::index_json(&model),
    })
}

async fn site_html(AxumState(s): AxumState<Arc<Shared>>, Path(name): Path<String>) -> Response {
    site_page(&s, &name, |p| ("text/html; charset=utf-8", p.html.clone())).await
}

async fn site_json(AxumState(s): AxumState<Arc<Shared>>, Path(name): Path<String>) -> Response {
    site_page(&s, &name, |p| ("application/json", p.json.clone())).await
}
