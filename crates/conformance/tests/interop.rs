//! Two-way interop with python-tuf (PyPI `tuf`, pinned in tests/interop/requirements.txt).
//!
//! - a repository written by python-tuf (ed25519, ecdsa and rsa keys, a root rotation,
//!   delegations, succinct hash bins) is verified by ocituf's `Updater` over `HttpSource`;
//! - a repository written by ocituf's repository API is verified by python-tuf's `ngclient`;
//! - a tampered copy of each is refused by both clients.
//!
//! Repositories are served by Python's `http.server` on 127.0.0.1:0, started per test and
//! killed by PID when the test ends. A missing python-tuf fails the test with the command
//! that installs it. `OCITUF_INTEROP_PYTHON` names another interpreter than `python3`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ocituf_tuf::{HttpConfig, HttpSource, MemoryStore, SystemClock, Updater, UpdaterConfig};
use sha2::Digest as _;

/// Whether ocituf refused for the expected reason.
type Check = fn(&ocituf_tuf::Error) -> bool;

const INSTALL: &str = "python3 -m pip install -r tests/interop/requirements.txt";

fn python() -> String {
    std::env::var("OCITUF_INTEROP_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Fail (never skip) when python-tuf cannot be imported.
fn require_python_tuf() {
    let out = Command::new(python())
        .args(["-c", "import tuf.ngclient, securesystemslib.signer"])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python-tuf is not installed for {}: run `{INSTALL}`\n{}",
            python(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "cannot run {}: {e}; install Python 3 and run `{INSTALL}`",
            python()
        ),
    }
}

/// `python3 -m http.server` on 127.0.0.1:0 serving `dir`; killed on drop.
struct StaticServer {
    child: Child,
    base: String,
}

impl StaticServer {
    fn start(dir: &Path) -> Self {
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
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} -m http.server: {e}", python()));
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
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(p) => p,
            Err(e) => {
                let _ = child.kill();
                panic!("http.server did not report its port: {e}");
            }
        };
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_python(script: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(python())
        .arg(interop_dir().join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert_ne!(
        out.status.code(),
        Some(3),
        "python-tuf is missing: run `{INSTALL}`\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Write a repository with python-tuf into `dir`; returns its expected targets
/// (path -> sha256).
fn make_python_repo(dir: &Path) -> BTreeMap<String, String> {
    let out = run_python("make_python_repo.py", &[dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "make_python_repo.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap()
}

/// Verify with python-tuf's ngclient; `Ok(lines)` on success, `Err(message)` on refusal.
fn ngclient_verify(
    root: &Path,
    server: &StaticServer,
    targets: &[&str],
) -> Result<Vec<String>, String> {
    let md = format!("{}/metadata/", server.base);
    let tg = format!("{}/targets/", server.base);
    let mut args = vec![root.to_str().unwrap(), md.as_str(), tg.as_str()];
    args.extend_from_slice(targets);
    let out = run_python("verify_with_ngclient.py", &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.code() {
        Some(0) => Ok(stdout.lines().map(str::to_owned).collect()),
        Some(1) => Err(stdout),
        other => panic!(
            "verify_with_ngclient.py crashed ({other:?}): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn ocituf_updater(
    root: &[u8],
    server: &StaticServer,
) -> Updater<HttpSource, MemoryStore, SystemClock> {
    let source = HttpSource::new(
        &format!("{}/metadata/", server.base),
        Some(&format!("{}/targets/", server.base)),
        &HttpConfig::default(),
    )
    .unwrap();
    Updater::new(
        root,
        source,
        MemoryStore::new(),
        UpdaterConfig::default(),
        SystemClock,
    )
    .await
    .unwrap()
}

/// Verify with ocituf: refresh, then look up and download each target; the sha256 of each.
fn ocituf_verify(
    root: &[u8],
    server: &StaticServer,
    targets: &[&str],
) -> Result<Vec<String>, ocituf_tuf::Error> {
    rt().block_on(async {
        let mut updater = ocituf_updater(root, server).await;
        updater.refresh().await?;
        let mut lines = Vec::new();
        for path in targets {
            let info = updater
                .target_info(path)
                .await?
                .unwrap_or_else(|| panic!("{path} is not in the repository"));
            let bytes = updater.download_target(&info).await?;
            lines.push(format!(
                "ok {path} {}",
                hex::encode(sha2::Sha256::digest(&bytes))
            ));
        }
        Ok(lines)
    })
}

fn expected_lines(expected: &BTreeMap<String, String>, targets: &[&str]) -> Vec<String> {
    targets
        .iter()
        .map(|t| format!("ok {t} {}", expected[*t]))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Replace the first occurrence of `from` by `to` (same length) in `file`.
fn tamper(file: &Path, from: &[u8], to: &[u8]) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| {
            panic!(
                "{} does not contain the bytes to tamper with",
                file.display()
            )
        });
    bytes.splice(at..at + from.len(), to.iter().copied());
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn python_tuf_repository_is_verified_by_ocituf() {
    require_python_tuf();
    let tmp = tempfile::tempdir().unwrap();
    let expected = make_python_repo(tmp.path());
    let targets: Vec<&str> = expected.keys().map(String::as_str).collect();
    assert!(targets.len() > 20, "{targets:?}");
    let root = std::fs::read(tmp.path().join("initial_root.json")).unwrap();
    let server = StaticServer::start(tmp.path());
    // python-tuf verifies its own repository (so the refusals below mean something) ...
    assert_eq!(
        ngclient_verify(&tmp.path().join("initial_root.json"), &server, &targets),
        Ok(expected_lines(&expected, &targets))
    );
    // ... and so does ocituf, through the rotation, delegations and every hash bin used.
    assert_eq!(
        ocituf_verify(&root, &server, &targets).unwrap(),
        expected_lines(&expected, &targets)
    );
}

#[test]
fn python_tuf_repository_tampered_is_refused_by_both() {
    require_python_tuf();
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    let expected = make_python_repo(&good);
    let root_file = good.join("initial_root.json");
    let root = std::fs::read(&root_file).unwrap();

    // 1. A target's bytes swapped (same length) behind the signed hashes.
    let bad_target = tmp.path().join("bad-target");
    copy_dir(&good, &bad_target);
    let top = std::fs::read_dir(bad_target.join("targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".top.txt"))
        .unwrap();
    tamper(&top, b"top-level", b"TOP-LEVEL");
    // 2. A hash bin's signed content changed without re-signing (a target repointed).
    let bad_bin = tmp.path().join("bad-bin");
    copy_dir(&good, &bad_bin);
    let sha = &expected["bins/file-0.txt"];
    let bin = std::fs::read_dir(bad_bin.join("metadata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy().contains(".bin-")
                && std::fs::read_to_string(p).unwrap().contains(sha.as_str())
        })
        .unwrap();
    let mut forged = sha.clone().into_bytes();
    forged[0] = if forged[0] == b'0' { b'1' } else { b'0' };
    tamper(&bin, sha.as_bytes(), &forged);
    // 3. A signature byte of a delegated role flipped (the snapshot lists its version only,
    //    so only the signature can catch it).
    let bad_sig = tmp.path().join("bad-signature");
    copy_dir(&good, &bad_sig);
    let team = bad_sig.join("metadata/1.team.json");
    let snap = std::fs::read_to_string(&team).unwrap();
    let sig_at = snap.find("\"sig\": \"").unwrap() + 8;
    let old = snap[sig_at..sig_at + 2].to_owned();
    let new = if old == "00" { "11" } else { "00" };
    tamper(
        &team,
        format!("\"sig\": \"{old}").as_bytes(),
        format!("\"sig\": \"{new}").as_bytes(),
    );

    let cases: [(&Path, &str, Check); 3] = [
        (&bad_target, "top.txt", |e| {
            matches!(e, ocituf_tuf::Error::HashMismatch { .. })
        }),
        (
            &bad_bin,
            "bins/file-0.txt",
            |e| matches!(e, ocituf_tuf::Error::Threshold { role, .. } if role.starts_with("bin-")),
        ),
        (
            &bad_sig,
            "team/app.bin",
            |e| matches!(e, ocituf_tuf::Error::Threshold { role, .. } if role == "team"),
        ),
    ];
    for (dir, target, expected) in cases {
        let server = StaticServer::start(dir);
        let py = ngclient_verify(&root_file, &server, &[target]);
        assert!(py.is_err(), "python-tuf accepted {}: {py:?}", dir.display());
        match ocituf_verify(&root, &server, &[target]) {
            Err(e) => assert!(expected(&e), "{}: unexpected refusal {e:?}", dir.display()),
            Ok(lines) => panic!("ocituf accepted {}: {lines:?}", dir.display()),
        }
    }
}
