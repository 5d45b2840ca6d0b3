//! Starting a registry process on loopback, finding its port in its log, and stopping it by
//! PID.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// A running registry process and, for registries that cannot bound their own lifetime, the
/// watchdog that kills it.
pub(crate) struct Running {
    child: Child,
    watchdog: Option<Child>,
}

impl Running {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the registry (SIGKILL, by PID) and its watchdog, and reaps both.
    pub(crate) fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// Spawns `cmd` with stdout and stderr appended to `log`, waits until the log says
/// `listening on 127.0.0.1:PORT` (only text written after the spawn counts), checks that the
/// port accepts connections, and returns the process and `127.0.0.1:PORT`.
pub(crate) fn start(
    what: &str,
    cmd: &mut Command,
    log: &Path,
    watchdog_limit: Option<Duration>,
) -> Result<(Running, String), Error> {
    let io = |source| Error::Io {
        path: log.to_owned(),
        source,
    };
    let open = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io)
    };
    let offset = std::fs::metadata(log).map_or(0, |m| m.len());
    let child = cmd
        .stdin(Stdio::null())
        .stdout(open()?)
        .stderr(open()?)
        .spawn()
        .map_err(|source| Error::Spawn {
            command: format!("{cmd:?}"),
            source,
        })?;
    let watchdog = match watchdog_limit {
        Some(limit) => match spawn_watchdog(child.id(), limit) {
            Ok(w) => Some(w),
            Err(e) => {
                Running {
                    child,
                    watchdog: None,
                }
                .stop();
                return Err(e);
            }
        },
        None => None,
    };
    let mut running = Running { child, watchdog };
    match wait_for_address(what, &mut running.child, log, offset) {
        Ok(addr) => Ok((running, addr)),
        Err(e) => {
            running.stop();
            Err(e)
        }
    }
}

fn wait_for_address(
    what: &str,
    child: &mut Child,
    log: &Path,
    offset: u64,
) -> Result<String, Error> {
    let deadline = Instant::now() + crate::START_TIMEOUT;
    loop {
        let text = read_from(log, offset);
        if let Some(addr) = listening_address(&text) {
            if let Ok(sa) = addr.parse::<SocketAddr>() {
                if TcpStream::connect_timeout(&sa, Duration::from_secs(1)).is_ok() {
                    return Ok(addr);
                }
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::ExitedEarly {
                what: what.to_owned(),
                status: status.to_string(),
                log: read_from(log, offset),
            });
        }
        if Instant::now() >= deadline {
            return Err(Error::StartTimeout {
                what: what.to_owned(),
                timeout: crate::START_TIMEOUT,
                log: text,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `127.0.0.1:PORT` from the first `listening on 127.0.0.1:PORT` in `text`.
pub(crate) fn listening_address(text: &str) -> Option<String> {
    let (_, rest) = text.split_once("listening on ")?;
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    let port = addr.strip_prefix("127.0.0.1:")?;
    (!port.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)).then_some(addr)
}

pub(crate) fn read_from(path: &Path, offset: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// A shell loop that kills `pid` once `limit` has passed or this (the test) process is gone,
/// for registries that have no time limit of their own. It checks `/proc/PID/exe` first so
/// that a reused PID is never killed.
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
    use super::listening_address;

    #[test]
    fn finds_distribution_and_wrapper_addresses() {
        let dist = r#"time="2026-11-22T02:40:01Z" level=info msg="listening on 127.0.0.1:37573" go.version=go1.19.8"#;
        assert_eq!(listening_address(dist).as_deref(), Some("127.0.0.1:37573"));
        assert_eq!(
            listening_address("listening on 127.0.0.1:44373\n").as_deref(),
            Some("127.0.0.1:44373")
        );
    }

    #[test]
    fn refuses_other_addresses() {
        assert_eq!(listening_address("listening on [::]:5000"), None);
        assert_eq!(listening_address("listening on 0.0.0.0:5000"), None);
        assert_eq!(listening_address("listening on 127.0.0.1:0"), None);
        assert_eq!(listening_address("starting"), None);
    }
}
