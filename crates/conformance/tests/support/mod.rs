//! Shared by the integration tests: the Python interpreter and a real static HTTP server.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The interpreter for the Python side: `OCITUF_INTEROP_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("OCITUF_INTEROP_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// `python3 -m http.server` bound to 127.0.0.1 on a free port, serving `dir`; killed (by
/// its PID) and reaped on drop. Records the request lines it logs.
pub struct StaticServer {
    child: Child,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl StaticServer {
    pub fn start(dir: &Path) -> Self {
        let mut child = Command::new(python())
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} -m http.server (install Python 3): {e}",
                    python()
                )
            });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // "Serving HTTP on 127.0.0.1 port 43727 (http://127.0.0.1:43727/) ..."
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(rest) = line.split(" port ").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = tx.send(port);
                }
            }
        });
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        std::thread::spawn(move || {
            // `127.0.0.1 - - [date] "GET /metadata/2.root.json HTTP/1.1" 404 -`
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                lines.lock().unwrap().push(line);
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(p) => p,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("http.server did not report its port: {e}");
            }
        };
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// The paths of the GET requests served so far, with their status: `("/x", 200)`.
    pub fn requests(&self) -> Vec<(String, u16)> {
        // The log line is written after the response: give the last one a moment.
        std::thread::sleep(Duration::from_millis(300));
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| {
                let request = l.split('"').nth(1)?;
                let path = request.strip_prefix("GET ")?.split(' ').next()?;
                let status = l
                    .split('"')
                    .nth(2)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()?;
                Some((path.to_owned(), status))
            })
            .collect()
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
