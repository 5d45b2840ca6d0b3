//! The HTTP face of the proxy: the read-only part of the OCI distribution API, `/metrics`.
//!
//! - `GET /v2/`: the API version check.
//! - `GET|HEAD /v2/<name>/manifests/<reference>`: decided by [`crate::decide`].
//! - `GET|HEAD /v2/<name>/blobs/<digest>`: streamed from the upstream as it arrives, `Range`
//!   passed on; never held in memory.
//! - Anything else under `/v2/` (pushes, deletes, tag lists, referrers): `UNSUPPORTED`.
//!
//! `<name>` selects the upstream: `<upstream>/<repository>` where `<upstream>` is a host with
//! `:` written `-` ([`crate::config::route_prefix`]), or `?ns=<host>` (what containerd
//! sends for a mirror), or, when the proxy fronts one registry, just `<repository>`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt as _;
use ocituf_oci::registry::{BlobAnswer, RegistryClient};
use ocituf_oci::Digest;
use ocituf_resolver::ImageReference;

use crate::decide::Refusal;
use crate::Proxy;

/// The router of a proxy.
pub fn router(proxy: Arc<Proxy>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(handle)
        .with_state(proxy)
}

async fn metrics(State(proxy): State<Arc<Proxy>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        proxy.metrics.render(&proxy.roots),
    )
        .into_response()
}

fn error(r: &Refusal) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        r.body(),
    )
        .into_response()
}

fn refusal(status: u16, code: &'static str, message: String) -> Refusal {
    Refusal {
        status,
        code,
        message,
    }
}

/// What a `/v2/` path asks for.
enum Asked<'a> {
    Base,
    Manifest { name: &'a str, reference: &'a str },
    Blob { name: &'a str, digest: &'a str },
}

fn parse_path(path: &str) -> Option<Asked<'_>> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Asked::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        return Some(Asked::Manifest { name, reference });
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        return Some(Asked::Blob { name, digest });
    }
    None
}

async fn handle(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().replace("%3A", ":").replace("%3a", ":");
    let Some(asked) = parse_path(&path) else {
        return error(&refusal(
            404,
            "NAME_UNKNOWN",
            format!("{path} is not part of the OCI distribution API"),
        ));
    };
    let head = method == Method::HEAD;
    if method != Method::GET && !head {
        return error(&refusal(
            405,
            "UNSUPPORTED",
            format!("the ocituf proxy is read-only: {method} is not served"),
        ));
    }
    let ns = uri.query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("ns="))
            .map(str::to_owned)
    });
    match asked {
        Asked::Base => (
            [
                (
                    header::HeaderName::from_static("docker-distribution-api-version"),
                    "registry/2.0",
                ),
                (header::CONTENT_TYPE, "application/json"),
            ],
            "{}",
        )
            .into_response(),
        Asked::Manifest { name, reference } => {
            let (host, client, repository) = match proxy.route(name, ns.as_deref()) {
                Ok(r) => r,
                Err(r) => return error(&r),
            };
            manifest(&proxy, &host, &client, repository, reference, head).await
        }
        Asked::Blob { name, digest } => {
            let (host, client, repository) = match proxy.route(name, ns.as_deref()) {
                Ok(r) => r,
                Err(r) => return error(&r),
            };
            let range = headers
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            blob(
                &proxy,
                &host,
                &client,
                repository,
                digest,
                range.as_deref(),
                head,
            )
            .await
        }
    }
}

fn parse_image(host: &str, repository: &str, reference: &str) -> Result<ImageReference, Refusal> {
    let joined = if reference.starts_with("sha256:") || reference.contains(':') {
        format!("{host}/{repository}@{reference}")
    } else {
        format!("{host}/{repository}:{reference}")
    };
    ImageReference::parse(&joined).map_err(|e| refusal(400, "NAME_INVALID", e.to_string()))
}

async fn manifest(
    proxy: &Proxy,
    host: &str,
    client: &RegistryClient,
    repository: &str,
    reference: &str,
    head: bool,
) -> Response {
    let image = match parse_image(host, repository, reference) {
        Ok(i) => i,
        Err(r) => return error(&r),
    };
    let repo = match client.repo(repository) {
        Ok(r) => r,
        Err(e) => return error(&refusal(400, "NAME_INVALID", e.to_string())),
    };
    let m = match proxy.manifest(&image, &repo).await {
        Ok((m, _)) => m,
        Err(r) => return error(&r),
    };
    let media_type = if m.media_type.is_empty() {
        "application/vnd.oci.image.manifest.v1+json".to_owned()
    } else {
        m.media_type.clone()
    };
    let mut resp = if head {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(m.bytes.clone()))
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&media_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(m.digest.as_str()) {
        h.insert("docker-content-digest", v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(m.bytes.len()));
    resp
}

async fn blob(
    proxy: &Proxy,
    host: &str,
    client: &RegistryClient,
    repository: &str,
    digest: &str,
    range: Option<&str>,
    head: bool,
) -> Response {
    let Ok(digest) = Digest::parse(digest) else {
        return error(&refusal(
            400,
            "DIGEST_INVALID",
            format!("{digest} is not a sha256 digest"),
        ));
    };
    let image = match parse_image(host, repository, digest.as_str()) {
        Ok(i) => i,
        Err(r) => return error(&r),
    };
    if let Err(r) = proxy.blobs_allowed(&image) {
        return error(&r);
    }
    let repo = match client.repo(repository) {
        Ok(r) => r,
        Err(e) => return error(&refusal(400, "NAME_INVALID", e.to_string())),
    };
    proxy.metrics.blob_requests.fetch_add(1, Ordering::Relaxed);
    let found = match repo.blob_stream(&digest, range, head).await {
        Ok(BlobAnswer::Found(f)) => f,
        Ok(BlobAnswer::RangeNotSatisfiable) => {
            return StatusCode::RANGE_NOT_SATISFIABLE.into_response()
        }
        Ok(_) => {
            return error(&refusal(
                404,
                "BLOB_UNKNOWN",
                format!("{host}/{repository} has no blob {digest}"),
            ))
        }
        Err(e) => {
            tracing::warn!(%image, error = %crate::decide::chain(&e), "blob fetch failed");
            return error(&refusal(
                502,
                "BLOB_UNKNOWN",
                format!(
                    "ocituf could not fetch blob {digest} from {host}/{repository}: {}",
                    crate::decide::chain(&e)
                ),
            ));
        }
    };
    let status = StatusCode::from_u16(found.status).unwrap_or(StatusCode::OK);
    let body = if head {
        Body::empty()
    } else {
        let metrics = Arc::clone(proxy.shared_metrics());
        Body::from_stream(found.response.bytes_stream().map(move |chunk| {
            if let Ok(c) = &chunk {
                metrics
                    .blob_bytes
                    .fetch_add(c.len() as u64, Ordering::Relaxed);
            }
            chunk
        }))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if let Some(len) = found.content_length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if let Some(v) = found
        .content_range
        .and_then(|r| HeaderValue::from_str(&r).ok())
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    let ct = found
        .content_type
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    if let Ok(v) = HeaderValue::from_str(&ct) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(digest.as_str()) {
        h.insert("docker-content-digest", v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    resp
}
