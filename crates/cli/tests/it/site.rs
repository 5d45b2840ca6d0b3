//! `ocituf site`: the static web view, checked in headless Chromium (Debian's `chromium`,
//! driven by playwright-core from tests/browser/, both installed by
//! scripts/install-test-deps.sh), from a file:// URL, from a static server on 127.0.0.1, and
//! live from `ocituf serve`.
//!
//! `OCITUF_UPDATE_SCREENSHOTS=1` writes the screenshots into docs/images/.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ocituf_testkit::Distribution;

use crate::flows::{self, Place};
use crate::support::Env;

/// A role name an attacker with a delegation could choose: HTML that would run if unescaped.
const HOSTILE_ROLE: &str = "<img src=x onerror=alert(1)></script><!--";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// A root of trust with `acme/app:1.0` signed (and still there), `acme/app:2.0` signed and
/// then moved in the registry, the `app` role expiring in 3 days, and a delegated role with
/// an HTML-like name. Returns the site directory.
fn build_site(env: &Env, place: &Place) -> PathBuf {
    flows::set_up(env, place);
    let tuf = place.repo("acme/tuf");
    env.run(&[
        "delegate",
        &tuf,
        "--name",
        "acme",
        "--role",
        HOSTILE_ROLE,
        "--path",
        "acme/evil:*",
        "--key",
        "other.pem",
        "--signing-key",
        "targets.pem",
        "--root",
        "acme.root.json",
    ])
    .ok();
    for tag in ["1.0", "2.0"] {
        let image = place.repo(&format!("acme/app:{tag}"));
        flows::push_image(env, &image, tag);
        env.run(&["sign", &image, "--key", "app.pem", "--expires", "3d"])
            .ok();
    }
    flows::publish(env, place).ok();
    let moved_to = flows::push_image(env, &place.repo("acme/app:2.0"), "moved by an attacker");
    // What clients see: the moved tag is refused.
    env.run(&["verify", &place.repo("acme/app:2.0")])
        .fails(1, &["acme/app:2.0"]);
    // A root rotation that waits for a second root key: a pending root version 2.
    env.run(&["key", "generate", "--out", "root2.pem"]).ok();
    let rotated = env
        .run(&[
            "root",
            "rotate",
            &tuf,
            "-n",
            "acme",
            "--role",
            "root",
            "--add-key",
            "root2.pem",
            "--threshold",
            "2",
            "--key",
            "root.pem",
        ])
        .ok()
        .to_owned();
    assert!(rotated.contains("root version 2 is pending"), "{rotated}");
    let out = env.path("site");
    let run = env.run(&[
        "site",
        &tuf,
        "--name",
        "acme",
        "--root",
        "acme.root.json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.ok().contains("index.html"), "{run:#?}");
    assert!(
        run.ok()
            .contains("1 pending roots, 0 pending targets versions"),
        "{run:#?}"
    );
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains(&moved_to), "the moved-to digest is shown");
    assert!(
        !html.contains(HOSTILE_ROLE),
        "the hostile role name is escaped"
    );
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    out
}

/// The tiny static server of tests/browser/serve.js on 127.0.0.1 (bounded in requests and
/// time), stopped by its PID when dropped.
struct StaticServer {
    child: std::process::Child,
    port: u16,
}

impl StaticServer {
    fn start(dir: &Path) -> Self {
        let mut child = Command::new("node")
            .arg(browser_dir().join("serve.js"))
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("node (for the static server)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("static server said {line:?}"));
        StaticServer { child, port }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run tests/browser/site.test.js over `urls`; panics with its output when a check fails.
fn browser(urls: &[String], screenshots: Option<&Path>) -> String {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run scripts/install-test-deps.sh (npm ci)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run scripts/install-test-deps.sh"
    );
    let spec = serde_json::json!({
        "urls": urls,
        "image": "acme/app:1.0",
        "moved": "acme/app:2.0",
        "expiring": "app",
        "hostile": HOSTILE_ROLE,
        "pending": 2,
        "screenshots": screenshots,
    });
    let out = Command::new("timeout")
        .args(["180", "node"])
        .arg(dir.join("site.test.js"))
        .arg(spec.to_string())
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "browser checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn site_on_a_layout_in_chromium_from_file_and_http() {
    let env = Env::new();
    let place = Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    };
    let site = build_site(&env, &place);
    let server = StaticServer::start(&site);
    let shots = if std::env::var_os("OCITUF_UPDATE_SCREENSHOTS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/images")
    } else {
        env.path("shots")
    };
    std::fs::create_dir_all(&shots).unwrap();
    let out = browser(
        &[
            format!("http://127.0.0.1:{}/index.html", server.port),
            format!("file://{}", site.join("index.html").display()),
        ],
        Some(&shots),
    );
    drop(server);
    for url in ["http://127.0.0.1", "file://"] {
        assert!(out.contains(&format!("ok: {url}")), "{out}");
    }
    for check in [
        "search for acme/app:1.0 finds the image",
        "role app is flagged as expiring",
        "acme/app:2.0 shows NOT signed",
        "no console errors or warnings",
        "a role named like HTML is shown as text and not run",
        "pending root version 2 is shown waiting for signatures",
    ] {
        assert!(out.contains(&format!("ok: {check}")), "{out}");
    }
    for png in ["site-overview.png", "site-search.png", "site-full.png"] {
        let bytes = std::fs::read(shots.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{png} is a PNG");
    }
}

#[test]
fn site_on_distribution_in_chromium_shows_a_moved_tag_as_not_signed() {
    let registry = Distribution::start();
    let env = Env::new();
    let place = Place {
        prefix: format!("{}/", registry.addr()),
    };
    let site = build_site(&env, &place);
    let server = StaticServer::start(&site);
    // The same page served live by `ocituf serve`, built from the registry at request time.
    let (_signer, addr) = crate::serve::start_serve(&env, &place, "online.pem");
    let live = format!("http://{addr}/site/acme/");
    let out = browser(
        &[format!("http://127.0.0.1:{}/", server.port), live.clone()],
        None,
    );
    assert!(out.contains(&format!("ok: {live}")), "{out}");
    for check in [
        "acme/app:2.0 shows NOT signed",
        "acme/app:1.0 is verified now",
        "search for acme/app:1.0 finds the image",
        "role app is flagged as expiring",
        "pending root version 2 is shown waiting for signatures",
        "no console errors or warnings",
    ] {
        assert_eq!(
            out.matches(&format!("ok: {check}")).count(),
            2,
            "{check}, from the static and the live page: {out}"
        );
    }
}

#[test]
fn site_from_a_root_chain_that_is_not_the_pinned_one_is_refused_and_writes_nothing() {
    let env = Env::new();
    let place = Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    };
    flows::set_up(&env, &place);
    // Another root of trust's root version 1 as the pin: what a swapped registry looks like.
    let other = Place {
        prefix: format!("oci:{}:", env.path("other").display()),
    };
    env.run(&[
        "init",
        &other.repo("acme/tuf"),
        "--name",
        "acme",
        "--root-key",
        "other.pem",
        "--targets-key",
        "other.pem",
        "--snapshot-key",
        "other.pem",
        "--timestamp-key",
        "other.pem",
        "--out-root",
        "other.root.json",
    ])
    .ok();
    let out = env.path("site");
    env.run(&[
        "site",
        &place.repo("acme/tuf"),
        "--name",
        "acme",
        "--root",
        "other.root.json",
        "--out",
        out.to_str().unwrap(),
    ])
    .fails(1, &["root mismatch"]);
    assert!(!out.exists(), "nothing was written");
}
