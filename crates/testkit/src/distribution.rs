//! Debian's `docker-registry` (CNCF distribution 2.8.2): the registry without a referrers
//! API, where clients use the OCI tag-schema fallback.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::process::{self, Running};
use crate::token::TokenServer;
use crate::Error;

/// How a [`Distribution`] is started.
#[derive(Debug, Clone)]
pub struct DistributionOptions {
    /// The registry is killed after this long if nobody stopped it (a watchdog process).
    pub time_limit: Duration,
    /// Extra environment variables; `REGISTRY_*` variables override the configuration file
    /// (e.g. `REGISTRY_AUTH_HTPASSWD_REALM` and `REGISTRY_AUTH_HTPASSWD_PATH` for basic auth).
    pub env: Vec<(String, String)>,
    /// Who may use the registry.
    pub auth: Auth,
    /// Serve HTTPS with a certificate for `127.0.0.1` signed by a CA made for this registry
    /// (see [`Distribution::ca_cert_path`]).
    pub tls: bool,
}

impl Default for DistributionOptions {
    fn default() -> Self {
        Self {
            time_limit: crate::DEFAULT_TIME_LIMIT,
            env: Vec::new(),
            auth: Auth::None,
            tls: false,
        }
    }
}

/// Who may use a [`Distribution`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// Anyone.
    #[default]
    None,
    /// HTTP basic auth with this user and password (an htpasswd file made with
    /// `htpasswd -B`).
    Basic { user: String, password: String },
    /// Bearer tokens (distribution's `auth.token`) from a token server of this crate, which
    /// gives them to this user and password (HTTP basic to the realm); see
    /// [`Distribution::token_realm`].
    Token { user: String, password: String },
}

/// A running `docker-registry serve` on `127.0.0.1`, storing in a temporary directory, with
/// manifest deletion enabled. Stopped (SIGKILL by PID, then reaped) by [`Distribution::stop`]
/// or on drop; its temporary directory is removed on drop.
pub struct Distribution {
    dir: tempfile::TempDir,
    addr: String,
    options: DistributionOptions,
    token_server: Option<TokenServer>,
    running: Mutex<Option<Running>>,
}

impl std::fmt::Debug for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distribution")
            .field("addr", &self.addr)
            .field("pid", &self.pid())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Distribution {
    /// Starts a registry with [`DistributionOptions::default`].
    ///
    /// # Panics
    /// If it cannot start; the message names the install command when the binary is
    /// missing.
    pub fn start() -> Self {
        Self::try_start_with(DistributionOptions::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Distribution::start`] with options.
    ///
    /// # Panics
    /// If the registry cannot start.
    pub fn start_with(options: DistributionOptions) -> Self {
        Self::try_start_with(options).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a registry with [`DistributionOptions::default`].
    pub fn try_start() -> Result<Self, Error> {
        Self::try_start_with(DistributionOptions::default())
    }

    /// Starts a registry.
    pub fn try_start_with(options: DistributionOptions) -> Result<Self, Error> {
        crate::try_docker_registry()?;
        let dir = tempfile::Builder::new()
            .prefix("ocituf-distribution-")
            .tempdir()
            .map_err(|source| Error::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let mut token_server = None;
        match &options.auth {
            Auth::None => {}
            Auth::Basic { user, password } => {
                let htpasswd = crate::on_path("htpasswd")?;
                let line = crate::run(Command::new(htpasswd).args(["-Bbn", user, password]))?;
                write(&dir.path().join("htpasswd"), line.trim_end().as_bytes())?;
            }
            Auth::Token { user, password } => {
                token_server = Some(TokenServer::start(
                    &dir.path().join("token"),
                    user,
                    password,
                )?);
            }
        }
        if options.tls {
            make_certificates(&dir.path().join("tls"))?;
        }
        let mut this = Self {
            dir,
            addr: String::new(),
            options,
            token_server,
            running: Mutex::new(None),
        };
        let (running, addr) = this.spawn("127.0.0.1:0")?;
        this.addr = addr;
        *this.lock() = Some(running);
        Ok(this)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://…` with [`DistributionOptions::tls`].
    pub fn url(&self) -> String {
        let scheme = if self.options.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The token realm (`http://127.0.0.1:PORT/token`) with [`Auth::Token`].
    pub fn token_realm(&self) -> Option<String> {
        self.token_server.as_ref().map(TokenServer::realm)
    }

    /// The PEM certificate of the CA that signed the registry's certificate, with
    /// [`DistributionOptions::tls`].
    pub fn ca_cert_path(&self) -> Option<PathBuf> {
        self.options.tls.then(|| self.dir.path().join("tls/ca.pem"))
    }

    /// The PID of the registry process, `None` once stopped. It changes across
    /// [`Distribution::restart`] and [`Distribution::garbage_collect`].
    pub fn pid(&self) -> Option<u32> {
        self.lock().as_ref().map(Running::pid)
    }

    /// The temporary directory that holds the configuration, the storage and the log.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The storage root (`storage.filesystem.rootdirectory`).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps the blob `digest` (`sha256:<hex>`) on disk, for tests that
    /// tamper with stored content (distribution serves the file as it is).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        self.storage_dir()
            .join("docker/registry/v2/blobs")
            .join(algorithm)
            .join(hex.get(..2).unwrap_or(hex))
            .join(hex)
            .join("data")
    }

    /// The configuration file the registry runs with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// The file that collects the registry's stdout and stderr (every start appends).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// Everything the registry has logged so far.
    pub fn log(&self) -> String {
        process::read_from(&self.log_path(), 0)
    }

    /// Stops the registry (SIGKILL by PID, reaped). Idempotent.
    pub fn stop(&self) {
        if let Some(r) = self.lock().take() {
            r.stop();
        }
    }

    /// Stops the registry and starts it again on the same port and storage.
    pub fn restart(&self) -> Result<(), Error> {
        let mut guard = self.lock();
        if let Some(r) = guard.take() {
            r.stop();
        }
        let (running, _) = self.spawn(&self.addr)?;
        *guard = Some(running);
        Ok(())
    }

    /// Stops the registry, runs `docker-registry garbage-collect --delete-untagged CONFIG` on
    /// its storage, and starts it again on the same port and storage. Returns what the
    /// garbage collector printed (it lists what it marked and deleted).
    ///
    /// distribution 2.8 deletes every manifest that no tag reaches directly: a manifest
    /// reachable only through a tagged index (e.g. a referrer listed in a `sha256-<hex>`
    /// fallback index) is deleted too.
    pub fn garbage_collect(&self) -> Result<String, Error> {
        let mut guard = self.lock();
        if let Some(r) = guard.take() {
            r.stop();
        }
        let gc = crate::run(
            Command::new(crate::try_docker_registry()?)
                .arg("garbage-collect")
                .arg("--delete-untagged")
                .arg(self.config_path())
                .envs(self.env()),
        );
        // Start again even when the collection failed, so the handle stays usable.
        let (running, _) = self.spawn(&self.addr)?;
        *guard = Some(running);
        gc
    }

    fn lock(&self) -> MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The environment of the registry: auth and TLS settings, then the caller's.
    fn env(&self) -> Vec<(String, String)> {
        let dir = self.dir.path();
        let mut env = self
            .token_server
            .as_ref()
            .map(TokenServer::registry_env)
            .unwrap_or_default();
        let mut set = |k: &str, v: String| env.push((k.to_owned(), v));
        if matches!(self.options.auth, Auth::Basic { .. }) {
            set("REGISTRY_AUTH", "htpasswd".to_owned());
            set("REGISTRY_AUTH_HTPASSWD_REALM", "ocituf-testkit".to_owned());
            set(
                "REGISTRY_AUTH_HTPASSWD_PATH",
                dir.join("htpasswd").display().to_string(),
            );
        }
        if self.options.tls {
            set(
                "REGISTRY_HTTP_TLS_CERTIFICATE",
                dir.join("tls/server.pem").display().to_string(),
            );
            set(
                "REGISTRY_HTTP_TLS_KEY",
                dir.join("tls/server.key").display().to_string(),
            );
        }
        env.extend(self.options.env.iter().cloned());
        env
    }

    fn spawn(&self, addr: &str) -> Result<(Running, String), Error> {
        let config = self.config_path();
        std::fs::write(&config, config_yaml(&self.storage_dir(), addr)).map_err(|source| {
            Error::Io {
                path: config.clone(),
                source,
            }
        })?;
        process::start(
            "docker-registry",
            Command::new(crate::try_docker_registry()?)
                .arg("serve")
                .arg(&config)
                .envs(self.env()),
            &self.log_path(),
            Some(self.options.time_limit),
        )
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The configuration: log level info (the bound port is logged at info), filesystem storage,
/// deletion enabled (DELETE of manifests by digest), no upload purging (it would run in the
/// middle of a test), a fixed HTTP secret (no warning).
fn config_yaml(storage: &Path, addr: &str) -> String {
    format!(
        r#"version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: "{storage}"
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: "{addr}"
  secret: ocituf-testkit
"#,
        storage = storage.display(),
    )
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// A CA (`ca.pem`) and a server certificate for IP 127.0.0.1 (`server.pem`, `server.key`)
/// signed by it, P-256, valid for two days, made with the openssl command.
fn make_certificates(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    let openssl = crate::on_path("openssl")?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    crate::run(
        Command::new(&openssl)
            .current_dir(dir)
            .args(["req", "-x509"])
            .args(ec)
            .args(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"])
            .args(["-subj", "/CN=ocituf-testkit CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
    )?;
    crate::run(
        Command::new(&openssl)
            .current_dir(dir)
            .arg("req")
            .args(ec)
            .args(["-keyout", "server.key", "-out", "server.csr"])
            .args(["-subj", "/CN=127.0.0.1"]),
    )?;
    write(
        &dir.join("server.ext"),
        b"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )?;
    crate::run(
        Command::new(&openssl)
            .current_dir(dir)
            .args([
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
            ])
            .args(["-CAcreateserial", "-out", "server.pem", "-days", "2"])
            .args(["-extfile", "server.ext"]),
    )?;
    Ok(())
}
