//! [`HttpSource`]: a [`RepoSource`] for the standard TUF repository layout over HTTP(S).
//!
//! The layout (TUF specification 5.2 ff. and python-tuf's `ngclient`):
//! - metadata at `{metadata_base}/{VERSION}.{ROLE}.json` when a version is asked for
//!   (consistent snapshots, and every root), otherwise `{metadata_base}/{ROLE}.json`;
//!   `ROLE` is percent-encoded ([`crate::fs_store::ROLE_NAME_ENCODE_SET`], what python-tuf
//!   sends), so a delegated role named `../x` or `a?b` stays one path segment.
//! - targets at `{targets_base}/{TARGETPATH}`, and with consistent snapshots at
//!   `{targets_base}/{DIRNAME}/{HASH}.{BASENAME}` (TUF 5.7.3: the hash prefixes the file name,
//!   never the directories).
//!
//! 404 and 403 mean "not there" (`Ok(None)`); any other non-success status is an error. Every
//! body is read chunk by chunk and abandoned as soon as it passes the limit the updater set, so
//! an endless answer costs at most `max_len` bytes of memory. Every request has a timeout.
//! This source holds one answer per request: attempts after the first return `Ok(None)`.

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use reqwest::{StatusCode, Url};

use crate::fs_store::role_file_stem;
use crate::source::{Fetched, MetadataRequest, RepoSource, SourceError, TargetRequest};

/// Bytes percent-encoded in each `/`-separated segment of a target path: what cannot stand
/// in a URL path as itself. `/` separates segments and is kept.
const TARGET_SEGMENT_ENCODE_SET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Why an [`HttpSource`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpSourceError {
    /// A base URL does not parse or cannot carry a path.
    #[error("{what} {url:?} is not a usable base URL")]
    InvalidBaseUrl {
        what: &'static str,
        url: String,
        #[source]
        source: Option<UrlParseError>,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("could not build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Why a URL did not parse (`url::ParseError`, named here so callers need no `url` crate).
pub type UrlParseError = <Url as std::str::FromStr>::Err;

/// Timeouts and identification of an [`HttpSource`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Limit for one whole request, body included (slow-retrieval attacks).
    pub request_timeout: Duration,
    /// Limit for the silence between two reads of a body.
    pub read_timeout: Duration,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(20),
            user_agent: concat!("ocituf/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// A [`RepoSource`] for a TUF repository served over HTTP(S) in the standard layout.
#[derive(Debug, Clone)]
pub struct HttpSource {
    client: reqwest::Client,
    metadata_base: Url,
    targets_base: Option<Url>,
}

/// Parse `url` as a base: a trailing `/` is added so that joining keeps its last segment.
fn base_url(what: &'static str, url: &str) -> Result<Url, HttpSourceError> {
    let with_slash = if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    };
    let parsed = Url::parse(&with_slash).map_err(|e| HttpSourceError::InvalidBaseUrl {
        what,
        url: url.to_owned(),
        source: Some(e),
    })?;
    if parsed.cannot_be_a_base() || !matches!(parsed.scheme(), "http" | "https") {
        return Err(HttpSourceError::InvalidBaseUrl {
            what,
            url: url.to_owned(),
            source: None,
        });
    }
    Ok(parsed)
}

impl HttpSource {
    /// A source for the metadata under `metadata_base` and the targets under `targets_base`
    /// (without one, every target fetch answers "not found").
    ///
    /// # Errors
    /// When a base URL is not an absolute `http`/`https` URL, or the client cannot be built.
    pub fn new(
        metadata_base: &str,
        targets_base: Option<&str>,
        config: &HttpConfig,
    ) -> Result<Self, HttpSourceError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .read_timeout(config.read_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(HttpSourceError::Client)?;
        Self::with_client(client, metadata_base, targets_base)
    }

    /// Like [`HttpSource::new`] with a client of the caller's (proxies, custom roots, ...).
    ///
    /// # Errors
    /// When a base URL is not an absolute `http`/`https` URL.
    pub fn with_client(
        client: reqwest::Client,
        metadata_base: &str,
        targets_base: Option<&str>,
    ) -> Result<Self, HttpSourceError> {
        Ok(Self {
            client,
            metadata_base: base_url("metadata base URL", metadata_base)?,
            targets_base: targets_base
                .map(|t| base_url("targets base URL", t))
                .transpose()?,
        })
    }

    /// The URL of one metadata file.
    pub fn metadata_url(&self, role: &str, version: Option<u64>) -> Option<Url> {
        let stem = role_file_stem(role);
        let name = match version {
            Some(v) => format!("{v}.{stem}.json"),
            None => format!("{stem}.json"),
        };
        // The name is one percent-encoded segment: joining cannot leave the base.
        self.metadata_base.join(&name).ok()
    }

    /// The URL of one target file (`None` without a targets base URL).
    pub fn target_url(&self, req: &TargetRequest<'_>) -> Option<Url> {
        let base = self.targets_base.as_ref()?;
        let (dir, file) = match req.path.rsplit_once('/') {
            Some((d, f)) => (Some(d), f),
            None => (None, req.path),
        };
        let mut rel = String::new();
        if let Some(dir) = dir {
            for segment in dir.split('/') {
                rel.push_str(&encode_segment(segment));
                rel.push('/');
            }
        }
        if req.consistent_snapshot {
            // TUF 5.7.3: any listed hash may prefix the name; prefer sha256, else the first.
            let hash = req
                .hashes
                .get("sha256")
                .or_else(|| req.hashes.values().next())?;
            rel.push_str(&encode_segment(hash));
            rel.push('.');
        }
        rel.push_str(&encode_segment(file));
        // Segments of `.` or `..` would be resolved away by URL joining: refuse them rather
        // than fetch another path than the one named.
        if rel.split('/').any(|s| s == "." || s == "..") {
            return None;
        }
        base.join(&rel).ok()
    }

    async fn get(&self, url: Url, max_len: u64) -> Result<Option<Vec<u8>>, SourceError> {
        let what = url.to_string();
        let fetch_error = |e: reqwest::Error| SourceError::Fetch {
            what: what.clone(),
            source: Box::new(e),
        };
        let mut response = self.client.get(url).send().await.map_err(fetch_error)?;
        match response.status() {
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => return Ok(None),
            s if s.is_success() => {}
            _ => {
                let status_error = response.error_for_status_ref().err();
                return Err(SourceError::Fetch {
                    what: what.clone(),
                    source: match status_error {
                        Some(e) => Box::new(e),
                        None => format!("unexpected HTTP status {}", response.status()).into(),
                    },
                });
            }
        }
        let too_large = || SourceError::TooLarge {
            what: what.clone(),
            max_len,
        };
        if response.content_length().is_some_and(|l| l > max_len) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
            // Never hold more than max_len bytes: stop at the first chunk that passes it.
            if (body.len() as u64).saturating_add(chunk.len() as u64) > max_len {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }
}

fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, TARGET_SEGMENT_ENCODE_SET).to_string()
}

impl RepoSource for HttpSource {
    async fn fetch_metadata(
        &self,
        req: &MetadataRequest<'_>,
    ) -> Result<Option<Fetched>, SourceError> {
        if req.attempt > 0 {
            return Ok(None);
        }
        let Some(url) = self.metadata_url(req.role, req.version) else {
            return Ok(None);
        };
        Ok(self.get(url, req.max_len).await?.map(|bytes| Fetched {
            bytes,
            claimed_version: None,
        }))
    }

    async fn fetch_target(&self, req: &TargetRequest<'_>) -> Result<Option<Vec<u8>>, SourceError> {
        let Some(url) = self.target_url(req) else {
            return Ok(None);
        };
        self.get(url, req.length).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    use std::thread;

    use super::*;

    fn source(targets: Option<&str>) -> HttpSource {
        HttpSource::new(
            "http://127.0.0.1:1/repo/metadata",
            targets,
            &HttpConfig::default(),
        )
        .unwrap()
    }

    #[test]
    fn metadata_urls_versioned_unversioned_and_encoded() {
        let s = source(None);
        let url = |r, v| s.metadata_url(r, v).unwrap().to_string();
        assert_eq!(
            url("root", Some(2)),
            "http://127.0.0.1:1/repo/metadata/2.root.json"
        );
        assert_eq!(
            url("timestamp", None),
            "http://127.0.0.1:1/repo/metadata/timestamp.json"
        );
        // What python-tuf requests (urllib.parse.quote(role, "")).
        assert_eq!(
            url("../delegatedrole", Some(1)),
            "http://127.0.0.1:1/repo/metadata/1...%2Fdelegatedrole.json"
        );
        assert_eq!(
            url("?", Some(1)),
            "http://127.0.0.1:1/repo/metadata/1.%3F.json"
        );
        assert_eq!(url("#", None), "http://127.0.0.1:1/repo/metadata/%23.json");
        assert_eq!(
            url("/delegatedrole", Some(1)),
            "http://127.0.0.1:1/repo/metadata/1.%2Fdelegatedrole.json"
        );
    }

    #[test]
    fn target_urls_hash_prefix_only_on_the_file_name() {
        let s = source(Some("http://127.0.0.1:1/repo/targets/"));
        let hashes = BTreeMap::from([
            ("sha512".to_owned(), "bb".to_owned()),
            ("sha256".to_owned(), "aa".to_owned()),
        ]);
        let req = |path, consistent_snapshot| TargetRequest {
            path,
            hashes: &hashes,
            length: 1,
            consistent_snapshot,
        };
        let url = |p, c| s.target_url(&req(p, c)).map(|u| u.to_string());
        assert_eq!(
            url("path/to/file.txt", true).unwrap(),
            "http://127.0.0.1:1/repo/targets/path/to/aa.file.txt"
        );
        assert_eq!(
            url("path/to/file.txt", false).unwrap(),
            "http://127.0.0.1:1/repo/targets/path/to/file.txt"
        );
        assert_eq!(
            url("file", true).unwrap(),
            "http://127.0.0.1:1/repo/targets/aa.file"
        );
        assert_eq!(
            url("a b?c#d", false).unwrap(),
            "http://127.0.0.1:1/repo/targets/a%20b%3Fc%23d"
        );
        // Traversal cannot climb out of the targets base.
        assert_eq!(url("../secret", false), None);
        assert_eq!(url("a/../../secret", false), None);
        assert!(source(None).target_url(&req("file", false)).is_none());
    }

    #[test]
    fn base_urls_must_be_http() {
        for bad in ["not a url", "file:///etc", "mailto:x@y"] {
            assert!(matches!(
                HttpSource::new(bad, None, &HttpConfig::default()),
                Err(HttpSourceError::InvalidBaseUrl { .. })
            ));
        }
    }

    /// A one-thread server on 127.0.0.1:0 that answers each connection with the response
    /// `answer` gives for the request path, and records the paths. Hostile answers (endless
    /// bodies, lying lengths) are why this is hand-written: no real server sends them.
    struct FakeHostileServer {
        base: String,
        paths: Arc<Mutex<Vec<String>>>,
        handle: Option<thread::JoinHandle<()>>,
    }

    impl FakeHostileServer {
        fn start(connections: usize, answer: fn(&str, &mut dyn Write)) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let paths = Arc::new(Mutex::new(Vec::new()));
            let seen = paths.clone();
            let handle = thread::spawn(move || {
                for _ in 0..connections {
                    let Ok((mut conn, _)) = listener.accept() else {
                        return;
                    };
                    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&req);
                    let path = text.split(' ').nth(1).unwrap_or("").to_owned();
                    seen.lock().unwrap().push(path.clone());
                    answer(&path, &mut conn);
                }
            });
            Self {
                base,
                paths,
                handle: Some(handle),
            }
        }

        fn stop(mut self) -> Vec<String> {
            if let Some(h) = self.handle.take() {
                h.join().unwrap();
            }
            self.paths.lock().unwrap().clone()
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn meta_req(role: &str, version: Option<u64>, max_len: u64) -> MetadataRequest<'_> {
        MetadataRequest {
            role,
            version,
            hashes: None,
            max_len,
            attempt: 0,
        }
    }

    #[test]
    fn not_found_and_forbidden_are_none_other_errors_are_errors() {
        let server = FakeHostileServer::start(4, |path, w| {
            let status = match path {
                "/m/timestamp.json" => "404 Not Found",
                "/m/1.snapshot.json" => "403 Forbidden",
                "/m/2.root.json" => "500 Internal Server Error",
                _ => "200 OK",
            };
            let body = b"{}";
            let _ = write!(
                w,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = w.write_all(body);
        });
        let s =
            HttpSource::new(&format!("{}/m", server.base), None, &HttpConfig::default()).unwrap();
        rt().block_on(async {
            assert!(s
                .fetch_metadata(&meta_req("timestamp", None, 100))
                .await
                .unwrap()
                .is_none());
            assert!(s
                .fetch_metadata(&meta_req("snapshot", Some(1), 100))
                .await
                .unwrap()
                .is_none());
            let err = s
                .fetch_metadata(&meta_req("root", Some(2), 100))
                .await
                .unwrap_err();
            assert!(
                matches!(&err, SourceError::Fetch { what, .. } if what.ends_with("/m/2.root.json")),
                "{err:?}"
            );
            let ok = s
                .fetch_metadata(&meta_req("targets", Some(1), 100))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(ok.bytes, b"{}");
            assert_eq!(ok.claimed_version, None);
            // One answer per request: the second attempt asks nothing.
            let mut again = meta_req("targets", Some(1), 100);
            again.attempt = 1;
            assert!(s.fetch_metadata(&again).await.unwrap().is_none());
        });
        assert_eq!(
            server.stop(),
            [
                "/m/timestamp.json",
                "/m/1.snapshot.json",
                "/m/2.root.json",
                "/m/1.targets.json"
            ]
        );
    }

    #[test]
    fn endless_data_without_content_length_is_cut_at_the_limit() {
        let server = FakeHostileServer::start(1, |_, w| {
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            // Far more than the limit; the client must stop reading long before the end.
            let chunk = [b'a'; 8192];
            for _ in 0..1024 {
                if w.write_all(&chunk).is_err() {
                    return;
                }
            }
        });
        let s = HttpSource::new(&server.base, None, &HttpConfig::default()).unwrap();
        let err = rt()
            .block_on(s.fetch_metadata(&meta_req("timestamp", None, 10_000)))
            .unwrap_err();
        assert!(
            matches!(&err, SourceError::TooLarge { max_len: 10_000, what } if what.ends_with("/timestamp.json")),
            "{err:?}"
        );
        drop(s);
        server.stop();
    }

    #[test]
    fn endless_data_declared_content_length_over_limit() {
        let server = FakeHostileServer::start(1, |_, w| {
            let _ = w.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\nabc",
            );
        });
        let s = HttpSource::new(&server.base, None, &HttpConfig::default()).unwrap();
        let err = rt()
            .block_on(s.fetch_metadata(&meta_req("timestamp", None, 10)))
            .unwrap_err();
        assert!(
            matches!(err, SourceError::TooLarge { max_len: 10, .. }),
            "{err:?}"
        );
        server.stop();
    }

    #[test]
    fn target_exactly_at_length_is_read_and_one_byte_more_is_refused() {
        let server = FakeHostileServer::start(2, |path, w| {
            let body: &[u8] = if path.ends_with("/aa.five") {
                b"12345"
            } else {
                b"123456"
            };
            let _ = write!(w, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let _ = w.write_all(body);
        });
        let s = HttpSource::new(
            &format!("{}/m", server.base),
            Some(&format!("{}/t", server.base)),
            &HttpConfig::default(),
        )
        .unwrap();
        let hashes = BTreeMap::from([("sha256".to_owned(), "aa".to_owned())]);
        rt().block_on(async {
            let five = TargetRequest {
                path: "dir/five",
                hashes: &hashes,
                length: 5,
                consistent_snapshot: true,
            };
            assert_eq!(s.fetch_target(&five).await.unwrap().unwrap(), b"12345");
            let six = TargetRequest {
                path: "six",
                consistent_snapshot: false,
                ..five
            };
            assert!(matches!(
                s.fetch_target(&six).await,
                Err(SourceError::TooLarge { max_len: 5, .. })
            ));
        });
        assert_eq!(server.stop(), ["/t/dir/aa.five", "/t/six"]);
    }

    #[test]
    fn slow_retrieval_times_out() {
        let server = FakeHostileServer::start(1, |_, w| {
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\na");
            thread::sleep(Duration::from_millis(1500));
        });
        let config = HttpConfig {
            read_timeout: Duration::from_millis(300),
            ..HttpConfig::default()
        };
        let s = HttpSource::new(&server.base, None, &config).unwrap();
        let err = rt()
            .block_on(s.fetch_metadata(&meta_req("timestamp", None, 10)))
            .unwrap_err();
        assert!(matches!(err, SourceError::Fetch { .. }), "{err:?}");
        server.stop();
    }
}
