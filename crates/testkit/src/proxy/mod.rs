//! [`AdversarialProxy`]: a test fixture that stands between a client and a *real* test
//! registry ([`crate::Distribution`] or [`crate::ReferrersRegistry`]) and lies the way a
//! compromised registry, a hostile mirror or a man in the middle can: it forwards every
//! request to the registry and rewrites what comes back according to the [`Rule`]s the test
//! switches on (rollback, freeze, forged referrers, swapped blobs, endless bodies, wrong
//! `Content-Length`, redirects to another loopback port, …). With no rule it is a plain
//! forwarding proxy, so the happy path runs through it too.
//!
//! It speaks just enough HTTP/1.1 for registries and `reqwest`: one request per connection
//! (`Connection: close`), request bodies by `Content-Length`, responses from the registry by
//! `Content-Length`, chunked encoding or end of stream. It listens on `127.0.0.1` only, talks
//! only to its loopback upstream, and is bounded: it stops accepting after its time limit or
//! request budget, every socket has a read timeout, and an endless body stops after
//! [`ENDLESS_MAX_BYTES`] or when the client hangs up. Dropping it stops it.

mod wire;

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wire::{
    forward, has_body, head_bytes, header_value, query_param, read_request, set_header, Request,
    Response,
};

/// The proxy stops accepting connections after this long.
pub const PROXY_TIME_LIMIT: Duration = Duration::from_secs(10 * 60);
/// The proxy stops accepting connections after this many requests.
pub const PROXY_MAX_REQUESTS: u64 = 100_000;
/// An endless body ends after this many bytes even if the client keeps reading.
pub const ENDLESS_MAX_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// Largest request head or upstream response the proxy holds in memory.
const MAX_BUFFERED: usize = 64 * 1024 * 1024;
/// Socket read timeout (client and upstream).
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);

/// Which requests a rule applies to.
#[derive(Debug, Clone, Default)]
pub struct Match {
    /// `GET`, `HEAD`, …; any method when `None`.
    pub method: Option<String>,
    /// A substring of the request target (path and query); any when `None`.
    pub path_contains: Option<String>,
    /// Only referrers listings: `GET /v2/<name>/referrers/<digest>` (native API) or
    /// `GET /v2/<name>/manifests/sha256-<hex>` (the tag-schema fallback index).
    pub listings_only: bool,
    /// Apply to at most this many matching requests (then the rule is spent).
    pub times: Option<u64>,
}

impl Match {
    /// Every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Requests whose target contains `s`.
    pub fn path(s: impl Into<String>) -> Self {
        Self {
            path_contains: Some(s.into()),
            ..Self::default()
        }
    }

    /// Every referrers listing (native or fallback index), on any repository.
    pub fn listings() -> Self {
        Self {
            listings_only: true,
            method: Some("GET".into()),
            ..Self::default()
        }
    }

    /// Referrers listings whose target contains `s` (a repository name, an anchor digest).
    pub fn listings_of(s: impl Into<String>) -> Self {
        Self {
            path_contains: Some(s.into()),
            ..Self::listings()
        }
    }

    /// GETs of the blob `digest` (`sha256:…`).
    pub fn blob(digest: &str) -> Self {
        Self {
            method: Some("GET".into()),
            path_contains: Some(format!("/blobs/{digest}")),
            ..Self::default()
        }
    }

    /// Apply only to the first `n` matching requests.
    #[must_use]
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, req: &Request) -> bool {
        if let Some(m) = &self.method {
            if !req.method.eq_ignore_ascii_case(m) {
                return false;
            }
        }
        if let Some(p) = &self.path_contains {
            if !req.target.contains(p.as_str()) {
                return false;
            }
        }
        !self.listings_only || is_listing(&req.target)
    }
}

/// What the proxy does to a matching request. Listing edits understand both listing formats
/// (an OCI image index with `manifests`), so one rule attacks both registries.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Behaviour {
    /// Rollback and freeze: drop listing entries of `artifactType`
    /// `application/vnd.tuf.<class>.v1+json` whose `io.ocituf.version` is above `version`.
    HideVersionsAbove { class: String, version: u64 },
    /// Hide one version of a role class from listings.
    HideVersion { class: String, version: u64 },
    /// Dropped referrers: remove every listing entry of that role class.
    DropClass { class: String },
    /// Forged artifacts: add these descriptors (JSON objects) to the listing, first.
    InjectEntries(Vec<serde_json::Value>),
    /// Set (or add) annotation `key` = `value` on every listing entry of the class.
    Annotate {
        class: String,
        key: String,
        value: String,
    },
    /// Huge or looping listings: every entry `times` times over.
    RepeatEntries(usize),
    /// Paginated forever: each listing answer carries `Link: <…&last=N>; rel="next"` to a
    /// new page (same entries) on the same origin.
    PaginateForever,
    /// Serve these bytes instead of the registry's body (`Content-Length` adjusted,
    /// `Docker-Content-Digest` left as the registry sent it).
    ReplaceBody(Vec<u8>),
    /// Forward the request to another target on the same registry (a tag moved to another
    /// digest: `/v2/acme/app/manifests/1.0` → `/v2/acme/app/manifests/sha256:…`; one
    /// organization's repository served as another's: `/v2/acme/tuf/` → `/v2/beta/tuf/`).
    Rewrite { from: String, to: String },
    /// `200` with a body that never ends (no `Content-Length`), until the client hangs up.
    EndlessBody,
    /// `200` that declares `Content-Length: length` and then sends bytes forever.
    EndlessBodyDeclared { length: u64 },
    /// The registry's answer, one byte every `delay` (slow retrieval).
    SlowBody { delay: Duration },
    /// The registry's answer with `Content-Length` changed by `delta` (shorter bodies are
    /// cut; a longer declaration is followed by the real body and a hang-up).
    WrongContentLength { delta: i64 },
    /// `Docker-Content-Digest` replaced by `digest`.
    WrongDigestHeader { digest: String },
    /// `307 Temporary Redirect` to `base` (another loopback origin, `http://127.0.0.1:PORT`)
    /// with the same path and query.
    RedirectTo { base: String },
    /// Answer with `status` and an empty body instead of forwarding.
    Status(u16),
    /// Several edits of the registry's answer, in order (listing edits, `ReplaceBody`,
    /// `WrongDigestHeader`, `PaginateForever`).
    Many(Vec<Behaviour>),
}

/// One switched-on behaviour.
#[derive(Debug, Clone)]
pub struct Rule {
    pub when: Match,
    pub then: Behaviour,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<(Rule, u64)>>,
    log: Mutex<Vec<String>>,
    requests: AtomicU64,
    bytes_sent: AtomicU64,
}

/// The adversarial proxy fixture (see the module docs).
pub struct AdversarialProxy {
    addr: String,
    upstream: String,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for AdversarialProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdversarialProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl AdversarialProxy {
    /// A proxy on `127.0.0.1:0` in front of the registry at `upstream` (`127.0.0.1:PORT`).
    ///
    /// # Panics
    /// When `upstream` is not a loopback address or the port cannot be bound (a test
    /// fixture: the test cannot run without it).
    pub fn start(upstream: &str) -> Self {
        Self::start_for(upstream, PROXY_TIME_LIMIT)
    }

    /// [`AdversarialProxy::start`] that stops accepting after `time_limit` instead of
    /// [`PROXY_TIME_LIMIT`] (benchmarks whose set-up takes longer than a test's).
    ///
    /// # Panics
    /// As [`AdversarialProxy::start`].
    pub fn start_for(upstream: &str, time_limit: Duration) -> Self {
        assert!(
            upstream.starts_with("127.0.0.1:"),
            "the adversarial proxy only talks to loopback registries, not {upstream}"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address").to_string();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop, upstream) =
                (Arc::clone(&shared), Arc::clone(&stop), upstream.to_owned());
            std::thread::spawn(move || {
                accept_loop(&listener, &upstream, &shared, &stop, time_limit);
            })
        };
        Self {
            addr,
            upstream: upstream.to_owned(),
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT` of the proxy: the registry host clients are given.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The registry behind the proxy.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Switch a behaviour on (rules are tried in the order they were added; the first
    /// that matches a request decides it).
    pub fn add(&self, when: Match, then: Behaviour) {
        lock(&self.shared.rules).push((Rule { when, then }, 0));
    }

    /// Switch every behaviour off: a plain forwarding proxy again.
    pub fn clear(&self) {
        lock(&self.shared.rules).clear();
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Body bytes written to clients so far (endless bodies included).
    pub fn bytes_sent(&self) -> u64 {
        self.shared.bytes_sent.load(Ordering::Relaxed)
    }

    /// `METHOD target -> status` of every request so far.
    pub fn log(&self) -> Vec<String> {
        lock(&self.shared.log).clone()
    }

    /// Stop accepting and join the accept thread (connections in flight finish alone).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AdversarialProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept_loop(
    listener: &TcpListener,
    upstream: &str,
    shared: &Arc<Shared>,
    stop: &AtomicBool,
    time_limit: Duration,
) {
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed)
        && started.elapsed() < time_limit
        && shared.requests.load(Ordering::Relaxed) < PROXY_MAX_REQUESTS
    {
        match listener.accept() {
            Ok((stream, _)) => {
                let (shared, upstream) = (Arc::clone(shared), upstream.to_owned());
                std::thread::spawn(move || {
                    let _ = serve(stream, &upstream, &shared);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn serve(stream: TcpStream, upstream: &str, shared: &Shared) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(SOCKET_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let req = read_request(&mut reader)?;
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let rule = pick_rule(shared, &req);
    let mut out = stream;
    let status = answer(&mut out, upstream, &req, rule, shared);
    lock(&shared.log).push(format!(
        "{} {} -> {}",
        req.method,
        req.target,
        status
            .as_ref()
            .map_or_else(|e| format!("error {e}"), u16::to_string)
    ));
    let _ = out.shutdown(Shutdown::Both);
    status.map(|_| ())
}

fn pick_rule(shared: &Shared, req: &Request) -> Option<Behaviour> {
    let mut rules = lock(&shared.rules);
    for (rule, used) in rules.iter_mut() {
        if rule.when.matches(req) && rule.when.times.is_none_or(|n| *used < n) {
            *used += 1;
            return Some(rule.then.clone());
        }
    }
    None
}

fn answer(
    out: &mut TcpStream,
    upstream: &str,
    req: &Request,
    rule: Option<Behaviour>,
    shared: &Shared,
) -> std::io::Result<u16> {
    let Some(rule) = rule else {
        let resp = forward(upstream, req, &req.target)?;
        return write_response(out, &resp, shared);
    };
    match rule {
        Behaviour::Status(status) => write_response(
            out,
            &Response {
                status,
                headers: Vec::new(),
                body: Vec::new(),
            },
            shared,
        ),
        Behaviour::RedirectTo { base } => write_response(
            out,
            &Response {
                status: 307,
                headers: vec![("Location".into(), format!("{base}{}", req.target))],
                body: Vec::new(),
            },
            shared,
        ),
        Behaviour::EndlessBody => endless(out, None, shared),
        Behaviour::EndlessBodyDeclared { length } => endless(out, Some(length), shared),
        Behaviour::Rewrite { from, to } => {
            let target = req.target.replacen(&from, &to, 1);
            let resp = forward(upstream, req, &target)?;
            write_response(out, &resp, shared)
        }
        Behaviour::SlowBody { delay } => {
            let resp = forward(upstream, req, &req.target)?;
            slow(out, &resp, delay, shared)
        }
        Behaviour::WrongContentLength { delta } => {
            let resp = forward(upstream, req, &req.target)?;
            wrong_length(out, &resp, delta, shared)
        }
        Behaviour::Many(edits) => {
            let mut resp = forward(upstream, req, &req.target)?;
            for edit in &edits {
                edit_response(req, &mut resp, edit);
            }
            write_response(out, &resp, shared)
        }
        edit => {
            let mut resp = forward(upstream, req, &req.target)?;
            edit_response(req, &mut resp, &edit);
            write_response(out, &resp, shared)
        }
    }
}

/// Edit the registry's answer in place. A lying registry is consistent: when the body
/// changes, `Docker-Content-Digest` is recomputed for the new body.
fn edit_response(req: &Request, resp: &mut Response, edit: &Behaviour) {
    match edit {
        Behaviour::ReplaceBody(bytes) => {
            resp.body.clone_from(bytes);
            rehash(resp);
        }
        Behaviour::WrongDigestHeader { digest } => {
            set_header(&mut resp.headers, "Docker-Content-Digest", digest);
        }
        Behaviour::PaginateForever => {
            let page = query_param(&req.target, "last")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let path = req.target.split('?').next().unwrap_or_default();
            set_header(
                &mut resp.headers,
                "Link",
                &format!("<{path}?n=1000&last={}>; rel=\"next\"", page + 1),
            );
        }
        edit => {
            if resp.status == 200 {
                let edited = edit_listing(&resp.body, edit);
                if edited != resp.body {
                    resp.body = edited;
                    rehash(resp);
                }
            }
        }
    }
}

fn rehash(resp: &mut Response) {
    use sha2::Digest as _;
    if header_value(&resp.headers, "docker-content-digest").is_some() {
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&resp.body)));
        set_header(&mut resp.headers, "Docker-Content-Digest", &digest);
    }
}

/// Apply a listing edit to an image index body; other bodies are returned unchanged.
fn edit_listing(body: &[u8], edit: &Behaviour) -> Vec<u8> {
    let Ok(mut index) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    let Some(entries) = index.get_mut("manifests").and_then(|m| m.as_array_mut()) else {
        return body.to_vec();
    };
    let of_class = |e: &serde_json::Value, class: &str| {
        e.get("artifactType").and_then(|t| t.as_str())
            == Some(format!("application/vnd.tuf.{class}.v1+json").as_str())
    };
    let version = |e: &serde_json::Value| {
        e.pointer("/annotations/io.ocituf.version")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<u64>().ok())
    };
    match edit {
        Behaviour::HideVersionsAbove {
            class,
            version: max,
        } => {
            entries.retain(|e| !(of_class(e, class) && version(e).is_some_and(|v| v > *max)));
        }
        Behaviour::HideVersion { class, version: v } => {
            entries.retain(|e| !(of_class(e, class) && version(e) == Some(*v)));
        }
        Behaviour::DropClass { class } => entries.retain(|e| !of_class(e, class)),
        Behaviour::InjectEntries(forged) => {
            let mut all = forged.clone();
            all.append(entries);
            *entries = all;
        }
        Behaviour::Annotate { class, key, value } => {
            for e in entries.iter_mut().filter(|e| of_class(e, class)) {
                if let Some(obj) = e.as_object_mut() {
                    let ann = obj
                        .entry("annotations")
                        .or_insert_with(|| serde_json::json!({}));
                    if let Some(ann) = ann.as_object_mut() {
                        ann.insert(key.clone(), value.clone().into());
                    }
                }
            }
        }
        Behaviour::RepeatEntries(times) => {
            let one = entries.clone();
            entries.clear();
            for _ in 0..*times {
                entries.extend(one.iter().cloned());
            }
        }
        _ => {}
    }
    serde_json::to_vec(&index).unwrap_or_else(|_| body.to_vec())
}

/// Whether a request target is a referrers listing (native API or fallback index tag).
fn is_listing(target: &str) -> bool {
    let path = target.split('?').next().unwrap_or_default();
    if path.contains("/referrers/sha256:") {
        return true;
    }
    path.rsplit_once("/manifests/").is_some_and(|(_, tag)| {
        tag.strip_prefix("sha256-")
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

fn write_response(out: &mut TcpStream, resp: &Response, shared: &Shared) -> std::io::Result<u16> {
    let length = has_body(resp).then_some(resp.body.len() as u64);
    out.write_all(&head_bytes(resp.status, &resp.headers, length))?;
    out.write_all(&resp.body)?;
    shared
        .bytes_sent
        .fetch_add(resp.body.len() as u64, Ordering::Relaxed);
    out.flush()?;
    Ok(resp.status)
}

fn endless(out: &mut TcpStream, declared: Option<u64>, shared: &Shared) -> std::io::Result<u16> {
    let headers = vec![(
        "Content-Type".to_owned(),
        "application/octet-stream".to_owned(),
    )];
    out.write_all(&head_bytes(200, &headers, declared))?;
    let chunk = vec![b'7'; 64 * 1024];
    let mut sent = 0u64;
    while sent < ENDLESS_MAX_BYTES {
        if out.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len() as u64;
        shared
            .bytes_sent
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    Ok(200)
}

fn slow(
    out: &mut TcpStream,
    resp: &Response,
    delay: Duration,
    shared: &Shared,
) -> std::io::Result<u16> {
    out.write_all(&head_bytes(
        resp.status,
        &resp.headers,
        Some(resp.body.len() as u64),
    ))?;
    for b in &resp.body {
        std::thread::sleep(delay);
        out.write_all(std::slice::from_ref(b))?;
        out.flush()?;
        shared.bytes_sent.fetch_add(1, Ordering::Relaxed);
    }
    Ok(resp.status)
}

fn wrong_length(
    out: &mut TcpStream,
    resp: &Response,
    delta: i64,
    shared: &Shared,
) -> std::io::Result<u16> {
    let real = resp.body.len() as u64;
    let declared = real.saturating_add_signed(delta);
    out.write_all(&head_bytes(resp.status, &resp.headers, Some(declared)))?;
    let sent = usize::try_from(declared.min(real)).unwrap_or(usize::MAX);
    out.write_all(&resp.body[..sent])?;
    shared.bytes_sent.fetch_add(sent as u64, Ordering::Relaxed);
    out.flush()?;
    Ok(resp.status)
}

/// Annotations of a forged listing entry: `io.ocituf.*` hints as a writer would set them.
pub fn forged_entry(
    digest: &str,
    class: &str,
    annotations: &BTreeMap<String, String>,
) -> serde_json::Value {
    serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": 500,
        "artifactType": format!("application/vnd.tuf.{class}.v1+json"),
        "annotations": annotations,
    })
}
