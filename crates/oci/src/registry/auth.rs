//! Credentials and authentication: the Docker config file (`auths`, `credsStore`,
//! `credHelpers`), `WWW-Authenticate` challenges, and the bearer-token cache.
//!
//! Distribution spec "token authentication": a `401` carries
//! `WWW-Authenticate: Bearer realm=...,service=...,scope=...`; the client gets a token from the
//! realm (with basic credentials when it has them, anonymously otherwise) and retries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::error::RegistryError;

/// A secret string (password, token) whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself. Only the HTTP layer calls this, to build a header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A username and a password (or a registry token used as a password).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: Secret,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// The username Docker uses for an OAuth2 refresh token ("identity token"): the password is
/// then the token, exchanged at the realm by `grant_type=refresh_token`.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

impl Credential {
    /// Whether this is an OAuth2 identity token rather than a username and password.
    pub fn is_identity_token(&self) -> bool {
        self.username == IDENTITY_TOKEN_USER
    }

    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password.expose());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Where a [`super::RegistryClient`] takes its credentials from.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Credentials {
    /// The Docker config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (a
    /// missing file means anonymous).
    #[default]
    DockerConfig,
    /// A Docker config file at this path (a missing file is an error).
    DockerConfigFile(PathBuf),
    /// These credentials.
    Basic(Credential),
    /// No credentials (anonymous tokens are still requested when the registry asks).
    Anonymous,
}

impl Credentials {
    /// Resolve the credential for `host` (`registry.example.com[:port]`).
    pub(crate) async fn resolve(&self, host: &str) -> Result<Option<Credential>, RegistryError> {
        match self {
            Self::Anonymous => Ok(None),
            Self::Basic(c) => Ok(Some(c.clone())),
            Self::DockerConfigFile(path) => {
                let bytes =
                    std::fs::read(path).map_err(|source| RegistryError::DockerConfigIo {
                        path: path.clone(),
                        source,
                    })?;
                from_docker_config(path, &bytes, host).await
            }
            Self::DockerConfig => {
                let path = default_docker_config_path();
                let Some(path) = path else { return Ok(None) };
                match std::fs::read(&path) {
                    Ok(bytes) => from_docker_config(&path, &bytes, host).await,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(RegistryError::DockerConfigIo { path, source }),
                }
            }
        }
    }
}

fn default_docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The key Docker uses for a host in `auths` and `credHelpers`: Docker Hub is stored as
/// `https://index.docker.io/v1/`; other hosts as written, sometimes with a scheme or path.
fn normalize_config_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key.split('/').next().unwrap_or(key);
    match key {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        k => k,
    }
}

fn same_host(config_key: &str, host: &str) -> bool {
    let host = match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        h => h,
    };
    normalize_config_host(config_key) == host
}

/// Parse a Docker config and find the credential for `host`. Precedence as in the Docker CLI:
/// `credHelpers[host]`, then `credsStore`, then `auths[host]`.
pub(crate) async fn from_docker_config(
    path: &Path,
    bytes: &[u8],
    host: &str,
) -> Result<Option<Credential>, RegistryError> {
    let bad = |reason: String| RegistryError::DockerConfig {
        path: path.to_owned(),
        reason,
    };
    let config: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let server_url = if host == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        host
    };
    if let Some(helpers) = config.get("credHelpers").and_then(|v| v.as_object()) {
        for (key, helper) in helpers {
            if same_host(key, host) {
                let helper = helper
                    .as_str()
                    .ok_or_else(|| bad(format!("credHelpers.{key} is not a string")))?;
                return run_credential_helper(helper, server_url, host).await;
            }
        }
    }
    if let Some(store) = config.get("credsStore").and_then(|v| v.as_str()) {
        if !store.is_empty() {
            if let Some(c) = run_credential_helper(store, server_url, host).await? {
                return Ok(Some(c));
            }
        }
    }
    let Some(auths) = config.get("auths").and_then(|v| v.as_object()) else {
        return Ok(None);
    };
    for (key, entry) in auths {
        if !same_host(key, host) {
            continue;
        }
        if let Some(token) = entry.get("identitytoken").and_then(|v| v.as_str()) {
            if !token.is_empty() {
                return Ok(Some(Credential {
                    username: IDENTITY_TOKEN_USER.to_owned(),
                    password: Secret::new(token),
                }));
            }
        }
        if let Some(auth) = entry.get("auth").and_then(|v| v.as_str()) {
            if auth.is_empty() {
                continue;
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad(format!("auths.{key}.auth is not base64")))?;
            let raw = String::from_utf8(raw)
                .map_err(|_| bad(format!("auths.{key}.auth is not UTF-8")))?;
            let (user, pass) = raw
                .split_once(':')
                .ok_or_else(|| bad(format!("auths.{key}.auth is not user:password")))?;
            return Ok(Some(Credential {
                username: user.to_owned(),
                password: Secret::new(pass),
            }));
        }
        if let (Some(u), Some(p)) = (
            entry.get("username").and_then(|v| v.as_str()),
            entry.get("password").and_then(|v| v.as_str()),
        ) {
            return Ok(Some(Credential {
                username: u.to_owned(),
                password: Secret::new(p),
            }));
        }
    }
    Ok(None)
}

/// Largest answer accepted from a credential helper.
const HELPER_MAX_OUTPUT: usize = 64 * 1024;
const HELPER_TIMEOUT: Duration = Duration::from_secs(20);

/// Run `docker-credential-<helper> get` with the server URL on stdin (the Docker credential
/// helper protocol). "Not found" answers mean no credential.
async fn run_credential_helper(
    helper: &str,
    server_url: &str,
    host: &str,
) -> Result<Option<Credential>, RegistryError> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let fail = |reason: String| RegistryError::CredentialHelper {
        helper: helper.to_owned(),
        host: host.to_owned(),
        reason,
    };
    if helper.is_empty()
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(fail("invalid helper name".into()));
    }
    let io = |source| RegistryError::CredentialHelperIo {
        helper: helper.to_owned(),
        source,
    };
    let mut child = tokio::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(io)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(server_url.as_bytes()).await.map_err(io)?;
        drop(stdin);
    }
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| fail("no stdout".into()))?;
    let run = async {
        let mut out = Vec::new();
        (&mut stdout)
            .take(HELPER_MAX_OUTPUT as u64 + 1)
            .read_to_end(&mut out)
            .await?;
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((out, status))
    };
    let (out, status) = tokio::time::timeout(HELPER_TIMEOUT, run)
        .await
        .map_err(|_| fail(format!("no answer within {HELPER_TIMEOUT:?}")))?
        .map_err(io)?;
    if out.len() > HELPER_MAX_OUTPUT {
        return Err(fail("answer too large".into()));
    }
    if !status.success() {
        let text = String::from_utf8_lossy(&out);
        // docker-credential-helpers' ErrCredentialsNotFound message.
        if text.contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!("exited with {status}")));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out).map_err(|_| fail("answer is not JSON".into()))?;
    let username = v.get("Username").and_then(|v| v.as_str()).unwrap_or("");
    let secret = v.get("Secret").and_then(|v| v.as_str()).unwrap_or("");
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credential {
        username: username.to_owned(),
        password: Secret::new(secret),
    }))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parse the first `Basic` or `Bearer` challenge of a `WWW-Authenticate` value
/// (RFC 7235: `scheme param=value, param="quoted, value"`).
pub(crate) fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let realm = params.get("realm")?.clone();
    Some(Challenge::Bearer {
        realm,
        service: params.get("service").cloned(),
    })
}

fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            val.push(n);
                        }
                    }
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), val.trim().to_owned());
    }
    out
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) value: Secret,
    pub(crate) expires: Instant,
}

/// Parse a token endpoint answer (`token` or `access_token`, `expires_in` seconds; the
/// distribution spec's default lifetime is 60 s).
pub(crate) fn parse_token(body: &[u8], now: Instant) -> Option<Token> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let value = v
        .get("token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .or_else(|| v.get("access_token").and_then(|t| t.as_str()))?;
    let lifetime = v
        .get("expires_in")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(60)
        .clamp(10, 24 * 3600);
    // Refresh a little early so a token does not expire in flight.
    let expires = now + Duration::from_secs(lifetime - 5);
    Some(Token {
        value: Secret::new(value),
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_bearer_with_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Credential {
            username: "alice".into(),
            password: Secret::new("hunter2"),
        };
        let shown = format!("{c:?} {:?}", Credentials::Basic(c.clone()));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice"));
    }

    #[tokio::test]
    async fn docker_config_auths() {
        let cfg = br#"{"auths":{"https://registry.example.com/v1/":{"auth":"YWxpY2U6aHVudGVyMg=="},
                        "https://index.docker.io/v1/":{"auth":"Ym9iOnM="}}}"#;
        let p = Path::new("config.json");
        let c = from_docker_config(p, cfg, "registry.example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password.expose(), "hunter2");
        let hub = from_docker_config(p, cfg, "docker.io")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hub.username, "bob");
        assert!(from_docker_config(p, cfg, "other.example.com")
            .await
            .unwrap()
            .is_none());
        assert!(matches!(
            from_docker_config(p, b"{\"auths\":{\"h\":{\"auth\":\"!!\"}}}", "h").await,
            Err(RegistryError::DockerConfig { .. })
        ));
    }

    #[test]
    fn token_parse() {
        let now = Instant::now();
        let t = parse_token(br#"{"token":"abc","expires_in":300}"#, now).unwrap();
        assert_eq!(t.value.expose(), "abc");
        assert!(t.expires > now + Duration::from_secs(200));
        let t = parse_token(br#"{"access_token":"xyz"}"#, now).unwrap();
        assert_eq!(t.value.expose(), "xyz");
        assert!(parse_token(b"{}", now).is_none());
    }
}
