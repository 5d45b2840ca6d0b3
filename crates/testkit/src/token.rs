//! A Docker registry token server (the `auth.token` protocol of distribution) for bearer
//! auth tests: `GET /token?service=…&scope=…` with HTTP basic credentials answers a JWT
//! (ES256, `x5c` header) granting the requested scopes. It runs on a thread of the test
//! process, on `127.0.0.1`, and is stopped with its [`crate::Distribution`].
//!
//! It is not a registry and not a fake of one: distribution itself verifies the tokens.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;

use crate::Error;

pub(crate) const SERVICE: &str = "ocituf-testkit";
pub(crate) const ISSUER: &str = "ocituf-testkit-token-server";

/// How long an issued token is valid.
const TOKEN_LIFETIME: u64 = 300;

pub(crate) struct TokenServer {
    addr: String,
    cert_path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    /// Makes a P-256 key and self-signed certificate in `dir` (with openssl) and starts
    /// serving tokens to `user`/`password`.
    pub(crate) fn start(dir: &Path, user: &str, password: &str) -> Result<Self, Error> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        crate::run(
            Command::new(crate::on_path("openssl")?)
                .current_dir(dir)
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                ])
                .args([
                    "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2",
                ])
                .args(["-subj", "/CN=ocituf-testkit token signer"]),
        )?;
        let key_path = dir.join("key.pem");
        let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&key_pem).map_err(|e| Error::Io {
            path: key_path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        })?;
        let cert_path = dir.join("cert.pem");
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
        // x5c holds the standard base64 of the DER certificate: the PEM body, unwrapped.
        let x5c: String = cert_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").map_err(io(dir))?;
        let addr = listener.local_addr().map_err(io(dir))?.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let issuer = Issuer {
            key,
            x5c,
            user: user.to_owned(),
            password: password.to_owned(),
            serial: AtomicU64::new(0),
        };
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let _ = issuer.serve(conn);
                    }
                }
            })
        };
        Ok(Self {
            addr,
            cert_path,
            stop,
            thread: Some(thread),
        })
    }

    /// The distribution settings (`REGISTRY_AUTH_TOKEN_*`) that trust this server.
    pub(crate) fn registry_env(&self) -> Vec<(String, String)> {
        [
            ("REGISTRY_AUTH", "token".to_owned()),
            ("REGISTRY_AUTH_TOKEN_REALM", self.realm()),
            ("REGISTRY_AUTH_TOKEN_SERVICE", SERVICE.to_owned()),
            ("REGISTRY_AUTH_TOKEN_ISSUER", ISSUER.to_owned()),
            (
                "REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE",
                self.cert_path.display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    pub(crate) fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(
            &self
                .addr
                .parse()
                .unwrap_or_else(|_| ([127, 0, 0, 1], 0).into()),
            Duration::from_secs(1),
        );
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Issuer {
    key: p256::ecdsa::SigningKey,
    x5c: String,
    user: String,
    password: String,
    serial: AtomicU64,
}

impl Issuer {
    fn serve(&self, conn: TcpStream) -> std::io::Result<()> {
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        conn.set_write_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new((&conn).take(64 * 1024));
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        let mut authorization = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.trim().eq_ignore_ascii_case("authorization") {
                    authorization = Some(value.trim().to_owned());
                }
            }
        }
        let target = request_line.split(' ').nth(1).unwrap_or_default();
        let (status, body) = self.answer(target, authorization.as_deref());
        let mut conn = conn;
        write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        conn.flush()
    }

    fn answer(&self, target: &str, authorization: Option<&str>) -> (&'static str, String) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path != "/token" {
            return ("404 Not Found", r#"{"error":"not found"}"#.to_owned());
        }
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", self.user, self.password))
        );
        if authorization != Some(expected.as_str()) {
            return (
                "401 Unauthorized",
                r#"{"error":"bad credentials"}"#.to_owned(),
            );
        }
        let mut access = Vec::new();
        for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            if k != "scope" {
                continue;
            }
            let scope = percent_decode(v);
            // TYPE:NAME:ACTIONS
            let Some((kind, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            access.push(serde_json::json!({
                "type": kind,
                "name": name,
                "actions": actions.split(',').filter(|a| !a.is_empty()).collect::<Vec<_>>(),
            }));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]});
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": self.user,
            "aud": SERVICE,
            "exp": now + TOKEN_LIFETIME,
            "nbf": now.saturating_sub(10),
            "iat": now,
            "jti": format!("t{}", self.serial.fetch_add(1, Ordering::SeqCst)),
            "access": access,
        });
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signing_input = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        );
        let signature: p256::ecdsa::Signature = self.key.sign(signing_input.as_bytes());
        // JWS ES256: the raw 64-byte r || s.
        let token = format!("{signing_input}.{}", b64.encode(signature.to_bytes()));
        let body = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": TOKEN_LIFETIME,
        });
        ("200 OK", body.to_string())
    }
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| Some(hex(*bytes.get(i + 1)?)? * 16 + hex(*bytes.get(i + 2)?)?))
            .flatten();
        if let Some(b) = decoded {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_scopes() {
        assert_eq!(
            percent_decode("repository%3Aacme%2Ftuf%3Apull%2Cpush"),
            "repository:acme/tuf:pull,push"
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
