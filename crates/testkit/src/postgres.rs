//! A throwaway PostgreSQL server from Debian's packages (`postgresql`, bookworm: version 15)
//! for the signer's lease tests.
//!
//! `initdb` and `postgres` from `/usr/lib/postgresql/15/bin` (or `$OCITUF_PG_BIN`) make a
//! cluster in a temporary directory and serve it on `127.0.0.1` only, on a port picked free,
//! with the unix socket inside the temporary directory (never `/var/run/postgresql`) and
//! `trust` authentication for the user [`Postgres::USER`]. PostgreSQL refuses to run as
//! root, so as root (CI) both run as Debian's `postgres` system user, which the package
//! creates: the child process switches user itself (`Command::uid`), so the PID we hold is
//! the postmaster's own and stopping it by PID stops the server.
//!
//! Stopped on drop: SIGINT (PostgreSQL's "fast" shutdown: SIGTERM would be its "smart"
//! shutdown, which waits for every client to disconnect), SIGKILL if it is still there
//! after [`STOP_GRACE`]. A watchdog kills it if the test process dies without dropping it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// Where Debian's `postgresql-15` puts the server binaries.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// How long a stop waits after SIGINT before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running throwaway PostgreSQL server.
pub struct Postgres {
    child: Option<Child>,
    watchdog: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// The uid and gid the server runs as (`None`: this process's own).
    owner: Option<(u32, u32)>,
}

/// The uid and gid of Debian's `postgres` user, from `/etc/passwd`.
fn postgres_user() -> Result<(u32, u32), Error> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|source| Error::Io {
        path: PathBuf::from("/etc/passwd"),
        source,
    })?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"postgres"))
        .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
        .ok_or_else(|| Error::MissingBinary {
            what: "the postgres system user (made by Debian's postgresql package)".to_owned(),
            looked: "/etc/passwd".to_owned(),
        })
}

fn is_root() -> bool {
    // /proc/self belongs to the effective uid of this process.
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// The directory of `initdb` and `postgres`: `$OCITUF_PG_BIN`, else [`PG_BIN`].
pub fn try_pg_bin() -> Result<PathBuf, Error> {
    let dir = std::env::var_os("OCITUF_PG_BIN")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(PG_BIN), PathBuf::from);
    for b in ["initdb", "postgres"] {
        crate::executable(
            &format!("PostgreSQL's {b} (Debian bookworm package postgresql)"),
            dir.join(b),
        )?;
    }
    Ok(dir)
}

/// A port on 127.0.0.1 nobody listens on right now.
fn free_port() -> Result<u16, Error> {
    let io = |source| Error::Io {
        path: PathBuf::from("127.0.0.1:0"),
        source,
    };
    let l = TcpListener::bind("127.0.0.1:0").map_err(io)?;
    Ok(l.local_addr().map_err(io)?.port())
}

impl Postgres {
    /// The user every test connects as (trust authentication, a superuser).
    pub const USER: &'static str = "ocituf";

    /// Start a server, or panic with the install command when PostgreSQL is missing.
    ///
    /// # Panics
    /// When it cannot start.
    #[allow(clippy::panic)]
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Make a cluster in a temporary directory and start a server on it.
    pub fn try_start() -> Result<Self, Error> {
        let bin = try_pg_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("ocituf-pg-")
            .tempdir()
            .map_err(|source| Error::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let owner = if is_root() {
            let (uid, gid) = postgres_user()?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|source| {
                Error::Io {
                    path: dir.path().to_owned(),
                    source,
                }
            })?;
            Some((uid, gid))
        } else {
            None
        };
        let as_owner = |cmd: &mut Command| {
            if let Some((uid, gid)) = owner {
                cmd.uid(uid).gid(gid);
            }
            cmd.env("LC_ALL", "C").env_remove("PGDATA");
        };
        let data = dir.path().join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "-U",
            Self::USER,
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        as_owner(&mut initdb);
        crate::run(&mut initdb)?;

        let log = dir.path().join("postgres.log");
        let mut last = None;
        // The free port may be taken between the check and the bind: try a few.
        for _ in 0..3 {
            let port = free_port()?;
            let mut cmd = Command::new(bin.join("postgres"));
            cmd.arg("-D")
                .arg(&data)
                .arg("-p")
                .arg(port.to_string())
                .arg("-k")
                .arg(dir.path())
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "shared_buffers=16MB",
                    "-c",
                    "max_connections=50",
                ]);
            as_owner(&mut cmd);
            match start_server(&mut cmd, &log, port) {
                Ok((child, watchdog)) => {
                    return Ok(Self {
                        child: Some(child),
                        watchdog,
                        port,
                        dir,
                        owner,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::StartTimeout {
            what: "postgres".to_owned(),
            timeout: crate::START_TIMEOUT,
            log: String::new(),
        }))
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://ocituf@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://{}@127.0.0.1:{}/postgres", Self::USER, self.port)
    }

    /// The server's log so far (for a failing test to print).
    pub fn log(&self) -> String {
        crate::process::read_from(&self.dir.path().join("postgres.log"), 0)
    }

    /// The temporary directory of the cluster (data, log, socket).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Start pgbouncer (Debian's `pgbouncer`, 1.18 in bookworm) in front of this server in
    /// **transaction pooling** with a pool of two server connections, so that consecutive
    /// statements of one client may run on different server connections: what breaks
    /// session state (advisory locks, named prepared statements, `SET`).
    pub fn start_pgbouncer(&self) -> Result<PgBouncer, Error> {
        let bin = crate::on_path("pgbouncer").or_else(|_| {
            crate::executable(
                "pgbouncer (Debian bookworm package pgbouncer)",
                PathBuf::from("/usr/sbin/pgbouncer"),
            )
        })?;
        let dir = self.dir.path();
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|source| Error::Io { path, source })
        };
        write("userlist.txt", &format!("\"{}\" \"\"\n", Self::USER))?;
        let mut last = None;
        for _ in 0..3 {
            let port = free_port()?;
            write(
                "pgbouncer.ini",
                &format!(
                    "[databases]\npostgres = host=127.0.0.1 port={pg} dbname=postgres user={user}\n\n\
                     [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                     auth_type = trust\nauth_file = {auth}\npool_mode = transaction\n\
                     default_pool_size = 2\nmax_client_conn = 100\n\
                     ignore_startup_parameters = extra_float_digits,options\n",
                    pg = self.port,
                    user = Self::USER,
                    auth = dir.join("userlist.txt").display(),
                ),
            )?;
            let mut cmd = Command::new(&bin);
            cmd.arg(dir.join("pgbouncer.ini"));
            if let Some((uid, gid)) = self.owner {
                cmd.uid(uid).gid(gid);
            }
            match start_bouncer(&mut cmd, &dir.join("pgbouncer.log"), port) {
                Ok((child, watchdog)) => {
                    return Ok(PgBouncer {
                        child: Some(child),
                        watchdog,
                        port,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::StartTimeout {
            what: "pgbouncer".to_owned(),
            timeout: crate::START_TIMEOUT,
            log: String::new(),
        }))
    }

    /// Stop the server (fast shutdown, then SIGKILL) and reap it.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, "INT");
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// pgbouncer in transaction pooling in front of a [`Postgres`]; stopped (SIGTERM, then
/// SIGKILL) on drop.
pub struct PgBouncer {
    child: Option<Child>,
    watchdog: Option<Child>,
    port: u16,
}

impl PgBouncer {
    /// `postgres://ocituf@127.0.0.1:PORT/postgres` through pgbouncer.
    pub fn url(&self) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/postgres",
            Postgres::USER,
            self.port
        )
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, "TERM");
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// Spawn pgbouncer and wait (at most [`crate::START_TIMEOUT`]) until its port accepts
/// connections.
fn start_bouncer(
    cmd: &mut Command,
    log: &Path,
    port: u16,
) -> Result<(Child, Option<Child>), Error> {
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| Error::Io {
                path: log.to_owned(),
                source,
            })
    };
    let offset = std::fs::metadata(log).map_or(0, |m| m.len());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(open()?)
        .stderr(open()?)
        .spawn()
        .map_err(|source| Error::Spawn {
            command: format!("{cmd:?}"),
            source,
        })?;
    let watchdog = spawn_watchdog(child.id(), crate::DEFAULT_TIME_LIMIT).ok();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + crate::START_TIMEOUT;
    let failed = loop {
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return Ok((child, watchdog));
        }
        let text = crate::process::read_from(log, offset);
        if let Ok(Some(status)) = child.try_wait() {
            break Error::ExitedEarly {
                what: "pgbouncer".to_owned(),
                status: status.to_string(),
                log: text,
            };
        }
        if Instant::now() >= deadline {
            break Error::StartTimeout {
                what: "pgbouncer".to_owned(),
                timeout: crate::START_TIMEOUT,
                log: text,
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stop_child(&mut child, "TERM");
    if let Some(mut w) = watchdog {
        let _ = w.kill();
        let _ = w.wait();
    }
    Err(failed)
}

/// `signal` (PostgreSQL: INT, its fast shutdown; pgbouncer: TERM, its immediate one), then
/// SIGKILL after [`STOP_GRACE`].
fn stop_child(child: &mut Child, signal: &str) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Spawn the server, wait (at most [`crate::START_TIMEOUT`]) until its log says it is ready
/// and the port accepts connections.
fn start_server(cmd: &mut Command, log: &Path, port: u16) -> Result<(Child, Option<Child>), Error> {
    let io = |source| Error::Io {
        path: log.to_owned(),
        source,
    };
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io)
    };
    let offset = std::fs::metadata(log).map_or(0, |m| m.len());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(open()?)
        .stderr(open()?)
        .spawn()
        .map_err(|source| Error::Spawn {
            command: format!("{cmd:?}"),
            source,
        })?;
    let watchdog = spawn_watchdog(child.id(), crate::DEFAULT_TIME_LIMIT).ok();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + crate::START_TIMEOUT;
    let failed = loop {
        let text = crate::process::read_from(log, offset);
        if text.contains("ready to accept connections")
            && TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        {
            return Ok((child, watchdog));
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Error::ExitedEarly {
                what: "postgres".to_owned(),
                status: status.to_string(),
                log: text,
            };
        }
        if Instant::now() >= deadline {
            break Error::StartTimeout {
                what: "postgres".to_owned(),
                timeout: crate::START_TIMEOUT,
                log: text,
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stop_child(&mut child, "INT");
    if let Some(mut w) = watchdog {
        let _ = w.kill();
        let _ = w.wait();
    }
    Err(failed)
}

/// Kills `pid` once `limit` has passed or the test process is gone (the same loop as the
/// registries' watchdog in process.rs; `/proc/PID/exe` is checked so that a reused PID is
/// never killed).
fn spawn_watchdog(pid: u32, limit: Duration) -> Result<Child, Error> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_else(|_| PathBuf::from("?"));
    let script = format!(
        r#"end=$(( $(date +%s) + {secs} ))
while [ "$(date +%s)" -lt "$end" ] && kill -0 {parent} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done
[ "$(readlink /proc/{pid}/exe)" = '{exe}' ] && kill -9 {pid}
exit 0"#,
        secs = limit.as_secs().max(1),
        parent = std::process::id(),
        exe = exe.display(),
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| Error::Spawn {
            command: "sh -c <watchdog>".to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_loopback_and_stops_by_pid() {
        let pg = Postgres::start();
        let port = pg.port();
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "{}",
            pg.log()
        );
        assert!(pg.url().starts_with("postgres://ocituf@127.0.0.1:"));
        let dir = pg.dir().to_owned();
        pg.stop();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        assert!(!dir.exists());
    }
}
