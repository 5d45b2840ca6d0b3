//! Our `tools/referrers-registry`: go-containerregistry's registry with the native referrers
//! API, wrapped to follow the OCI distribution spec 1.1 (see its main.go).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::process::{self, Running};
use crate::Error;

/// How a [`ReferrersRegistry`] is started.
#[derive(Debug, Clone, Copy)]
pub struct ReferrersOptions {
    /// The registry exits by itself after this long (`-time-limit`).
    pub time_limit: Duration,
    /// Paginate referrers answers after this many descriptors, with a `Link: <…>;
    /// rel="next"` header (`-referrers-page-size`); `None` sends everything at once.
    pub referrers_page_size: Option<usize>,
    /// Largest manifest accepted on PUT (`-max-manifest-bytes`, default 4 MiB like
    /// distribution); a larger one is refused with 413.
    pub max_manifest_bytes: Option<u64>,
}

impl Default for ReferrersOptions {
    fn default() -> Self {
        Self {
            time_limit: crate::DEFAULT_TIME_LIMIT,
            referrers_page_size: None,
            max_manifest_bytes: None,
        }
    }
}

/// A running `referrers-registry` on `127.0.0.1`. Manifests live in its memory and blobs in
/// a temporary directory, so nothing survives a stop. Stopped (SIGKILL by PID, then reaped)
/// by [`ReferrersRegistry::stop`] or on drop; it also exits by itself when the test process
/// dies or its time limit passes.
pub struct ReferrersRegistry {
    dir: tempfile::TempDir,
    addr: String,
    running: Mutex<Option<Running>>,
}

impl std::fmt::Debug for ReferrersRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferrersRegistry")
            .field("addr", &self.addr)
            .field("pid", &self.pid())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl ReferrersRegistry {
    /// Starts a registry with [`ReferrersOptions::default`].
    ///
    /// # Panics
    /// If it cannot start; the message names the install command when the binary is
    /// missing.
    pub fn start() -> Self {
        Self::try_start_with(ReferrersOptions::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`ReferrersRegistry::start`] with options.
    ///
    /// # Panics
    /// If the registry cannot start.
    pub fn start_with(options: ReferrersOptions) -> Self {
        Self::try_start_with(options).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a registry with [`ReferrersOptions::default`].
    pub fn try_start() -> Result<Self, Error> {
        Self::try_start_with(ReferrersOptions::default())
    }

    /// Starts a registry.
    pub fn try_start_with(options: ReferrersOptions) -> Result<Self, Error> {
        let binary = crate::try_referrers_registry()?;
        let dir = tempfile::Builder::new()
            .prefix("ocituf-referrers-")
            .tempdir()
            .map_err(|source| Error::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let mut cmd = Command::new(binary);
        cmd.arg("-addr")
            .arg("127.0.0.1:0")
            .arg("-time-limit")
            .arg(format!("{}s", options.time_limit.as_secs().max(1)))
            .arg("-data-dir")
            .arg(dir.path().join("blobs"));
        if let Some(n) = options.referrers_page_size {
            cmd.arg("-referrers-page-size").arg(n.to_string());
        }
        if let Some(n) = options.max_manifest_bytes {
            cmd.arg("-max-manifest-bytes").arg(n.to_string());
        }
        let log = dir.path().join("registry.log");
        let (running, addr) = process::start("referrers-registry", &mut cmd, &log, None)?;
        Ok(Self {
            dir,
            addr,
            running: Mutex::new(Some(running)),
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The PID of the registry process, `None` once stopped.
    pub fn pid(&self) -> Option<u32> {
        self.lock().as_ref().map(Running::pid)
    }

    /// The temporary directory that holds the blobs and the log.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the registry keeps the blob `digest` (`sha256:<hex>`) on disk, for tests that
    /// tamper with stored content. Its blob store is shared by all repositories.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        self.dir.path().join("blobs").join(algorithm).join(hex)
    }

    /// The file that collects the registry's stdout and stderr (one line per request).
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

    fn lock(&self) -> MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ReferrersRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}
