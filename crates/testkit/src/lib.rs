//! Real test registries and clients for ocituf's integration tests.
//!
//! - [`Distribution`]: Debian's `docker-registry` (CNCF distribution 2.8.2). No referrers
//!   API, so clients must use the OCI tag-schema fallback (`sha256-<hex>` index tags).
//! - [`ReferrersRegistry`]: our `tools/referrers-registry` (go-containerregistry's
//!   `pkg/registry` with the native referrers API, wrapped to follow the OCI distribution
//!   spec 1.1).
//!   Optionally with basic auth, bearer tokens (from a token server of ours on a thread of
//!   the test process, `token.rs`) or TLS with a CA made for it.
//! - [`AdversarialProxy`]: a lying HTTP proxy in front of either registry (rollback,
//!   freeze, forged referrers, swapped blobs, endless bodies, …) for the attack tests.
//! - [`SoftHsm`]: a SoftHSM2 token of the test's own, with keys that never leave it.
//! - [`Postgres`]: a throwaway PostgreSQL server (Debian's `postgresql`) on 127.0.0.1, for
//!   the signer's leases.
//! - [`oras()`], [`skopeo()`]: paths of independent OCI clients; [`run()`] runs one with a
//!   time limit.
//!
//! Every registry listens on `127.0.0.1` on a port the kernel picks, keeps its data in a
//! temporary directory, and is stopped by PID (and reaped) by [`Distribution::stop`] /
//! [`ReferrersRegistry::stop`] or on drop. If the test process dies without dropping it, a
//! registry still exits by itself: the referrers registry when its parent is gone, and
//! both at the latest after their time limit ([`DEFAULT_TIME_LIMIT`]).
//!
//! Nothing here skips: a missing binary is an error (a panic in the `start()` helpers) that
//! names `scripts/install-test-deps.sh`, which installs everything (see docs/testing.md).
//!
//! The API is synchronous (`std::process`); a start takes well under a second, so it is fine
//! to call from `#[tokio::test]` functions too.

mod distribution;
mod postgres;
mod process;
mod proxy;
mod referrers;
mod softhsm;
mod token;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use distribution::{Auth, Distribution, DistributionOptions};
pub use postgres::{try_pg_bin, PgBouncer, Postgres, PG_BIN};
pub use proxy::{
    forged_entry, AdversarialProxy, Behaviour, Match, Rule, ENDLESS_MAX_BYTES, PROXY_MAX_REQUESTS,
    PROXY_TIME_LIMIT,
};
pub use referrers::{ReferrersOptions, ReferrersRegistry};
pub use softhsm::{SoftHsm, TokenKey, SOFTHSM_MODULE};

/// The command that installs every binary this crate runs.
pub const INSTALL_COMMAND: &str = "scripts/install-test-deps.sh";

/// Where `scripts/install-test-deps.sh` puts the tools that are not Debian bookworm
/// packages, unless `OCITUF_TEST_TOOLS` says otherwise.
pub const DEFAULT_TOOLS_DIR: &str = "/opt/ocituf-test";

/// How long a registry lives at most when nobody stops it.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(30 * 60);

/// How long a start waits for the registry to listen.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// What went wrong while starting, stopping or running a test tool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "{what} not found (looked for {looked}): run `{INSTALL_COMMAND}` (as root) to install it"
    )]
    MissingBinary { what: String, looked: String },
    #[error("could not run {command}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} did not report its listening address within {timeout:?}; its log:\n{log}")]
    StartTimeout {
        what: String,
        timeout: Duration,
        log: String,
    },
    #[error("{what} exited during start ({status}); its log:\n{log}")]
    ExitedEarly {
        what: String,
        status: String,
        log: String,
    },
    #[error("{command} failed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stdout: String,
        stderr: String,
    },
    #[error("{command} did not finish within {timeout:?}")]
    CommandTimeout { command: String, timeout: Duration },
    #[error("i/o on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The directory of the tools installed by `scripts/install-test-deps.sh`:
/// `$OCITUF_TEST_TOOLS`, else [`DEFAULT_TOOLS_DIR`].
pub fn tools_dir() -> PathBuf {
    std::env::var_os("OCITUF_TEST_TOOLS")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_TOOLS_DIR), PathBuf::from)
}

/// Path of the ORAS CLI (`$TOOLS/bin/oras`, from Debian trixie's `oras` 1.2.0).
pub fn try_oras() -> Result<PathBuf, Error> {
    executable(
        "oras (Debian trixie package, unpacked)",
        tools_dir().join("bin/oras"),
    )
}

/// Path of the ORAS CLI.
///
/// # Panics
/// When it is missing, with the install command in the message.
pub fn oras() -> PathBuf {
    try_oras().unwrap_or_else(|e| panic!("{e}"))
}

/// Path of `skopeo` (Debian bookworm package, on `PATH`).
pub fn try_skopeo() -> Result<PathBuf, Error> {
    on_path("skopeo")
}

/// Path of `skopeo`.
///
/// # Panics
/// When it is missing, with the install command in the message.
pub fn skopeo() -> PathBuf {
    try_skopeo().unwrap_or_else(|e| panic!("{e}"))
}

/// Path of `docker-registry` (Debian bookworm package, on `PATH`).
pub fn try_docker_registry() -> Result<PathBuf, Error> {
    on_path("docker-registry")
}

/// Path of the referrers registry built from *this checkout's*
/// `tools/referrers-registry/main.go`: `$TOOLS/referrers-registry/<sha256 of main.go>/`.
/// A build of another version of the source is not used: rerun the install script.
pub fn try_referrers_registry() -> Result<PathBuf, Error> {
    use sha2::Digest as _;
    const SOURCE: &[u8] = include_bytes!("../../../tools/referrers-registry/main.go");
    let hash = hex::encode(sha2::Sha256::digest(SOURCE));
    executable(
        "referrers-registry built from this checkout's tools/referrers-registry/main.go",
        tools_dir()
            .join("referrers-registry")
            .join(hash)
            .join("referrers-registry"),
    )
}

fn executable(what: &str, path: PathBuf) -> Result<PathBuf, Error> {
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(Error::MissingBinary {
            what: what.to_owned(),
            looked: path.display().to_string(),
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub(crate) fn on_path(name: &str) -> Result<PathBuf, Error> {
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.iter()
        .chain([PathBuf::from("/usr/bin")].iter())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| Error::MissingBinary {
            what: format!("{name} (Debian bookworm package)"),
            looked: format!("{name} on PATH and in /usr/bin"),
        })
}

/// How long [`run`] lets a command run.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a command (stdin closed) to completion within [`RUN_TIMEOUT`] and returns its
/// stdout; a non-zero exit is an error that carries stdout and stderr.
pub fn run(cmd: &mut Command) -> Result<String, Error> {
    run_with_timeout(cmd, RUN_TIMEOUT)
}

/// [`run`] with another time limit; the command is killed when it is exceeded.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<String, Error> {
    let command = format!("{cmd:?}");
    let out = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let (out_path, err_path) = (out.path().join("stdout"), out.path().join("stderr"));
    let create = |p: &Path| {
        std::fs::File::create(p).map_err(|source| Error::Io {
            path: p.to_owned(),
            source,
        })
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(create(&out_path)?)
        .stderr(create(&err_path)?)
        .spawn()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::CommandTimeout { command, timeout });
            }
            Err(source) => {
                return Err(Error::Spawn { command, source });
            }
        }
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let stdout = read(&out_path);
    if status.success() {
        Ok(stdout)
    } else {
        Err(Error::CommandFailed {
            command,
            status: status.to_string(),
            stdout,
            stderr: read(&err_path),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_the_install_command() {
        let err = executable("oras", PathBuf::from("/nonexistent/oras")).unwrap_err();
        assert!(matches!(err, Error::MissingBinary { .. }));
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/oras"), "{msg}");
        assert!(msg.contains("run `scripts/install-test-deps.sh`"), "{msg}");
    }

    #[test]
    fn run_reports_failure_with_stderr_and_times_out() {
        let err =
            run(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"])).unwrap_err();
        assert!(
            matches!(&err, Error::CommandFailed { stdout, stderr, .. } if stdout == "out\n" && stderr == "err\n"),
            "{err}"
        );
        let err = run_with_timeout(Command::new("sleep").arg("5"), Duration::from_millis(100))
            .unwrap_err();
        assert!(matches!(err, Error::CommandTimeout { .. }), "{err}");
    }
}
