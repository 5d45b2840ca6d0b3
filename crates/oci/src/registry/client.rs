//! One HTTP client per registry host: connection pool, TLS, credentials, token cache,
//! retries, body limits and the request counter.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, Url};

use super::auth::{self, Challenge, Credential, Credentials, Token};
use super::error::RegistryError;
use super::http::retry_after;
use super::http::{random_duration, read_body, strip_query};
use super::referrers::Capability;

/// Which URL scheme to speak to a registry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS, except plain HTTP for loopback hosts (`localhost`, `127.0.0.0/8`, `::1`).
    #[default]
    Auto,
    /// HTTPS always, loopback included.
    Https,
    /// Plain HTTP always ("insecure registry"). Only when the operator asks for it.
    PlainHttp,
}

/// Settings of a [`RegistryClient`]. `RegistryOptions::default()` is right for most uses.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    pub transport: Transport,
    /// Extra PEM CA certificates (a bundle file) trusted besides the platform's roots.
    pub ca_file: Option<PathBuf>,
    pub credentials: Credentials,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an answer.
    pub read_timeout: Duration,
    /// Longest time one HTTP request may take, body included.
    pub request_timeout: Duration,
    /// Retries of one request after 429, 5xx or a connection failure.
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A `Retry-After` longer than this is shortened to it.
    pub retry_after_max: Duration,
    /// Hard cap on `Link` pages followed for one referrers query.
    pub referrers_max_pages: u32,
    /// Hard cap on referrers entries returned for one subject.
    pub referrers_max_entries: u64,
    /// Largest image index read (referrers pages, fallback indexes). Distribution caps
    /// manifests at 4 MiB.
    pub index_max_len: u64,
    /// Rounds of read-merge-write-verify before a fallback index update gives up.
    pub fallback_max_rounds: u32,
    /// Randomized wait between writing a fallback index and checking it (min, max).
    pub fallback_settle: (Duration, Duration),
    /// Pages of `/tags/list` read when searching the unique referrer tags.
    pub tags_max_pages: u32,
    pub user_agent: String,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            transport: Transport::Auto,
            ca_file: None,
            credentials: Credentials::DockerConfig,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            max_retries: 4,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            retry_after_max: Duration::from_secs(30),
            referrers_max_pages: 16,
            referrers_max_entries: 10_000,
            index_max_len: 4 * 1024 * 1024,
            fallback_max_rounds: 16,
            fallback_settle: (Duration::from_millis(20), Duration::from_millis(200)),
            tags_max_pages: 64,
            user_agent: concat!("ocituf/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// An HTTP client for one registry host, shared (cheaply cloned) by every
/// [`super::RegistryRepo`] of that host: one connection pool, one credential lookup, one
/// token cache (per scope), one count of requests.
#[derive(Clone)]
pub struct RegistryClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The host as the user names it (`registry.example.com:5000`, `docker.io`).
    pub(crate) host: String,
    pub(crate) base: Url,
    http: reqwest::Client,
    pub(crate) opts: RegistryOptions,
    requests: AtomicU64,
    credential: tokio::sync::OnceCell<Option<Credential>>,
    auth: Mutex<AuthState>,
    /// What each repository's referrers support, learnt from answers.
    pub(crate) capabilities: Mutex<HashMap<String, Capability>>,
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    tokens: HashMap<String, Token>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("host", &self.inner.host)
            .field("base", &self.inner.base.as_str())
            .field("requests", &self.request_count())
            .finish_non_exhaustive()
    }
}

/// Split `host[:port]` into host and port (IPv6 literals in brackets).
fn split_host_port(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once(']') {
            return (h, p.strip_prefix(':'));
        }
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (host, None),
    }
}

/// Loopback hosts may be spoken to over plain HTTP without asking.
pub(crate) fn is_loopback(host: &str) -> bool {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let (h, _) = split_host_port(host);
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

impl RegistryClient {
    /// A client for `host` (`registry.example.com`, `127.0.0.1:5000`, `[::1]:5000`,
    /// `docker.io`). Makes no request; credentials are looked up on first use.
    ///
    /// # Errors
    /// An invalid host, an unreadable CA file, or a TLS set-up failure.
    pub fn new(host: &str, opts: RegistryOptions) -> Result<Self, RegistryError> {
        if !valid_host(host) {
            return Err(RegistryError::InvalidReference {
                reference: host.to_owned(),
                reason: "invalid registry host",
            });
        }
        let plain = match opts.transport {
            Transport::PlainHttp => true,
            Transport::Https => false,
            Transport::Auto => is_loopback(host),
        };
        // Docker Hub's API lives on another host than its name.
        let api_host = if host == "docker.io" || host == "index.docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        let scheme = if plain { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{api_host}")).map_err(|_| {
            RegistryError::InvalidReference {
                reference: host.to_owned(),
                reason: "invalid registry host",
            }
        })?;
        let allow_plain = opts.transport == Transport::PlainHttp;
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("too many redirects");
            }
            let to_plain = attempt.url().scheme() == "http";
            let host_loopback = attempt.url().host_str().is_some_and(is_loopback);
            if to_plain && !allow_plain && !host_loopback {
                return attempt.error("redirect to plain HTTP refused");
            }
            attempt.follow()
        });
        let mut builder = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .timeout(opts.request_timeout)
            .redirect(redirect)
            .user_agent(opts.user_agent.clone())
            .pool_max_idle_per_host(32);
        // Proxies come from HTTP_PROXY/HTTPS_PROXY/NO_PROXY; a loopback registry is never
        // reached through one.
        if is_loopback(host) {
            builder = builder.no_proxy();
        }
        if let Some(path) = &opts.ca_file {
            let pem = std::fs::read(path).map_err(|source| RegistryError::CaFile {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                RegistryError::CaPem {
                    path: path.clone(),
                    source,
                }
            })?;
            if certs.is_empty() {
                return Err(RegistryError::CaFileEmpty { path: path.clone() });
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|source| RegistryError::Client {
            host: host.to_owned(),
            source,
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                host: host.to_owned(),
                base,
                http,
                opts,
                requests: AtomicU64::new(0),
                credential: tokio::sync::OnceCell::new(),
                auth: Mutex::new(AuthState::default()),
                capabilities: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The registry host this client talks to, as given to [`Self::new`].
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// HTTP requests made so far by this client and every repository bound to it (token
    /// requests and retries included; redirects followed inside one request are not counted).
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// A store bound to repository `name` (`acme/tuf`) of this registry.
    ///
    /// # Errors
    /// When `name` is not a valid repository name.
    pub fn repo(&self, name: &str) -> Result<super::RegistryRepo, RegistryError> {
        super::RegistryRepo::new(self.clone(), name)
    }

    pub(crate) fn url(&self, path: &str) -> Url {
        let mut u = self.inner.base.clone();
        u.set_path(path);
        u
    }

    fn count(&self) {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
    }

    async fn credential(&self) -> Result<Option<Credential>, RegistryError> {
        self.inner
            .credential
            .get_or_try_init(|| self.inner.opts.credentials.resolve(&self.inner.host))
            .await
            .cloned()
    }

    fn may_send_secrets_to(&self, url: &Url) -> bool {
        url.scheme() == "https"
            || self.inner.opts.transport == Transport::PlainHttp
            || url.host_str().is_some_and(is_loopback)
    }

    /// The `Authorization` value to send for `scope`, from what earlier answers taught.
    async fn authorization(&self, scope: &str) -> Result<Option<String>, RegistryError> {
        let challenge = {
            let st = self
                .inner
                .auth
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match &st.challenge {
                None => return Ok(None),
                Some(Challenge::Bearer { .. }) => {
                    if let Some(t) = st.tokens.get(scope) {
                        if t.expires > Instant::now() {
                            return Ok(Some(format!("Bearer {}", t.value.expose())));
                        }
                    }
                }
                Some(Challenge::Basic) => {}
            }
            st.challenge.clone()
        };
        match challenge {
            Some(Challenge::Basic) => {
                // An identity token is only good at a token realm.
                let cred = self.credential().await?.filter(|c| !c.is_identity_token());
                if cred.is_some() && !self.may_send_secrets_to(&self.inner.base) {
                    return Err(RegistryError::InsecureCredentials {
                        host: self.inner.host.clone(),
                        url: self.inner.base.to_string(),
                    });
                }
                Ok(cred.map(|c| c.basic_header()))
            }
            Some(Challenge::Bearer { realm, service }) => {
                let token = self.fetch_token(&realm, service.as_deref(), scope).await?;
                Ok(Some(format!("Bearer {}", token.value.expose())))
            }
            None => Ok(None),
        }
    }

    /// Distribution "token authentication": GET realm?service=..&scope=.. with basic
    /// credentials when known, anonymously otherwise.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<Token, RegistryError> {
        let mut url = Url::parse(realm).map_err(|_| RegistryError::Token {
            url: realm.to_owned(),
            reason: "realm is not a URL".into(),
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(RegistryError::Token {
                url: realm.to_owned(),
                reason: "realm is not http(s)".into(),
            });
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            q.append_pair("scope", scope);
        }
        let cred = self.credential().await?;
        if cred.is_some() && !self.may_send_secrets_to(&url) {
            return Err(RegistryError::InsecureCredentials {
                host: self.inner.host.clone(),
                url: strip_query(&url),
            });
        }
        let (method, rb) = match &cred {
            // Distribution "OAuth2 token authentication": POST the refresh token as a form.
            Some(c) if c.is_identity_token() => {
                let mut form = Url::parse("form:").map_err(|_| RegistryError::Token {
                    url: realm.to_owned(),
                    reason: "cannot encode the token request".into(),
                })?;
                form.query_pairs_mut()
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", c.password.expose())
                    .append_pair("service", service.unwrap_or_default())
                    .append_pair("scope", scope)
                    .append_pair("client_id", "ocituf");
                let body = form.query().unwrap_or_default().to_owned();
                let mut post = url.clone();
                post.set_query(None);
                let rb = self
                    .inner
                    .http
                    .post(post)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body);
                ("POST", rb)
            }
            Some(c) => (
                "GET",
                self.inner
                    .http
                    .get(url.clone())
                    .header(reqwest::header::AUTHORIZATION, c.basic_header()),
            ),
            None => ("GET", self.inner.http.get(url.clone())),
        };
        self.count();
        let shown = strip_query(&url);
        let mut resp = rb.send().await.map_err(|source| RegistryError::Transport {
            method: method.into(),
            url: shown.clone(),
            source,
        })?;
        if !resp.status().is_success() {
            return Err(RegistryError::Token {
                url: shown,
                reason: format!("HTTP {}", resp.status().as_u16()),
            });
        }
        let body = read_body(&mut resp, 1024 * 1024, &shown).await?;
        let token = auth::parse_token(&body, Instant::now()).ok_or(RegistryError::Token {
            url: shown,
            reason: "no token in the answer".into(),
        })?;
        self.inner
            .auth
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tokens
            .insert(scope.to_owned(), token.clone());
        Ok(token)
    }

    /// Send one request with authentication, retries on 429/5xx/connection failures (a
    /// connection closed before any answer only for idempotent methods) with
    /// exponential backoff and jitter (honouring `Retry-After`), and counting.
    ///
    /// The caller looks at the status; only a 401 that survives authentication is an error.
    pub(crate) async fn send(&self, req: &Req<'_>) -> Result<reqwest::Response, RegistryError> {
        let mut retries = 0u32;
        let mut authenticated = false;
        let shown = strip_query(&req.url);
        loop {
            let mut rb = self.inner.http.request(req.method.clone(), req.url.clone());
            if let Some(a) = req.accept {
                rb = rb.header(reqwest::header::ACCEPT, a);
            }
            if let Some(ct) = req.content_type {
                rb = rb.header(reqwest::header::CONTENT_TYPE, ct);
            }
            if let Some(range) = req.range {
                rb = rb.header(reqwest::header::RANGE, range);
            }
            if let Some(body) = req.body {
                rb = rb.body(body.to_vec());
            } else if req.method == Method::PUT || req.method == Method::POST {
                rb = rb.header(reqwest::header::CONTENT_LENGTH, "0");
            }
            // Credentials and tokens go to the registry's own origin only (an upload
            // `Location` or a `Link` elsewhere gets none).
            if req.url.origin() == self.inner.base.origin() {
                if let Some(a) = self.authorization(req.scope).await? {
                    rb = rb.header(reqwest::header::AUTHORIZATION, a);
                }
            }
            self.count();
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(source) => {
                    // Not connected, or timed out: sent again. Closed before any answer
                    // (hyper's IncompleteMessage, a kept-alive connection the registry or
                    // a load balancer dropped as the request arrived): sent again only
                    // when repeating it is harmless (GET, HEAD, PUT, DELETE), not a POST.
                    let hung_up = source.is_request() && req.method.is_idempotent();
                    if (source.is_connect() || source.is_timeout() || hung_up)
                        && retries < self.inner.opts.max_retries
                    {
                        tokio::time::sleep(self.backoff(retries)).await;
                        retries += 1;
                        continue;
                    }
                    return Err(RegistryError::Transport {
                        method: req.method.to_string(),
                        url: shown,
                        source,
                    });
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED {
                let challenge = resp
                    .headers()
                    .get_all(reqwest::header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(auth::parse_challenge);
                if authenticated || challenge.is_none() {
                    return Err(RegistryError::Unauthorized {
                        method: req.method.to_string(),
                        url: shown,
                        scope: req.scope.to_owned(),
                        status: status.as_u16(),
                    });
                }
                authenticated = true;
                let mut st = self
                    .inner
                    .auth
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                st.tokens.remove(req.scope);
                st.challenge = challenge;
                continue;
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED);
            if retryable && retries < self.inner.opts.max_retries {
                let wait = retry_after(&resp).map_or_else(
                    || self.backoff(retries),
                    |d| d.min(self.inner.opts.retry_after_max),
                );
                drop(resp);
                tracing::debug!(url = %shown, status = status.as_u16(), ?wait, "retrying");
                tokio::time::sleep(wait).await;
                retries += 1;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Exponential backoff with "equal jitter": half fixed, half random.
    fn backoff(&self, retry: u32) -> Duration {
        let o = &self.inner.opts;
        let exp = o
            .backoff_base
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
            .min(o.backoff_max);
        let half = exp / 2;
        half + random_duration(half)
    }

    /// The error for an unexpected status, with the registry's error code when it gave one.
    pub(crate) async fn status_error(
        &self,
        method: &Method,
        url: &Url,
        mut resp: reqwest::Response,
    ) -> RegistryError {
        let status = resp.status().as_u16();
        let shown = strip_query(url);
        let code = read_body(&mut resp, 16 * 1024, &shown)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| {
                v.get("errors")?
                    .get(0)?
                    .get("code")?
                    .as_str()
                    .map(str::to_owned)
            });
        RegistryError::Status {
            method: method.to_string(),
            url: shown,
            status,
            code,
        }
    }
}

/// One request to send.
pub(crate) struct Req<'a> {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) accept: Option<&'a str>,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) body: Option<&'a [u8]>,
    /// Token scope, `repository:<name>:pull` or `repository:<name>:pull,push`.
    pub(crate) scope: &'a str,
    /// A `Range` header to send (blob reads the proxy passes on).
    pub(crate) range: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:1",
            "127.9.9.9",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "registry.example.com",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[::2]:1",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn transport_choice() {
        let c = RegistryClient::new("127.0.0.1:5000", RegistryOptions::default()).unwrap();
        assert_eq!(c.inner.base.scheme(), "http");
        let c = RegistryClient::new("registry.example.com", RegistryOptions::default()).unwrap();
        assert_eq!(c.inner.base.scheme(), "https");
        let o = RegistryOptions {
            transport: Transport::PlainHttp,
            ..RegistryOptions::default()
        };
        let c = RegistryClient::new("registry.example.com", o).unwrap();
        assert_eq!(c.inner.base.scheme(), "http");
        let o = RegistryOptions {
            transport: Transport::Https,
            ..RegistryOptions::default()
        };
        let c = RegistryClient::new("localhost:5000", o).unwrap();
        assert_eq!(c.inner.base.scheme(), "https");
        let c = RegistryClient::new("docker.io", RegistryOptions::default()).unwrap();
        assert_eq!(c.inner.base.as_str(), "https://registry-1.docker.io/");
        assert!(RegistryClient::new("bad host/", RegistryOptions::default()).is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = RegistryClient::new("127.0.0.1:5000", RegistryOptions::default()).unwrap();
        for r in 0..30 {
            let d = c.backoff(r);
            assert!(d <= Duration::from_secs(10), "{r} {d:?}");
        }
        assert!(c.backoff(0) >= Duration::from_millis(100));
        assert!(c.backoff(5) >= Duration::from_secs(3));
    }
}
