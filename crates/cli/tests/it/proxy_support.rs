//! Running `ocituf proxy` as a process for a test, and the images the proxy tests pull.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use ocituf_oci::Digest;

use crate::support::Env;

/// An `ocituf proxy` process on 127.0.0.1 (port picked by the kernel), stopped by PID on
/// drop, and by itself after `--stop-after` in any case.
pub struct ProxyProcess {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    log: PathBuf,
}

impl ProxyProcess {
    pub fn start(env: &Env, extra: &[&str]) -> Self {
        let log = env.path(&format!("proxy-{}.log", std::process::id()));
        let mut child = env
            .command()
            .args(["proxy", "--listen", "127.0.0.1:0", "--stop-after", "900s"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let Some((_, addr)) = line.trim().rsplit_once("://") else {
            let _ = child.kill();
            panic!(
                "the proxy did not print its address (got {line:?}); its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        };
        let addr = addr.to_owned();
        ProxyProcess { child, addr, log }
    }

    /// What the proxy logged on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The route prefix of an upstream host in proxy paths (`127.0.0.1-5000`).
pub fn prefix(host: &str) -> String {
    host.replace(':', "-")
}

/// What a skopeo run printed and returned.
#[derive(Debug)]
pub struct Outcome {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Run skopeo with a time limit (the testkit's), with no policy file needed.
pub fn skopeo(args: &[&str]) -> Outcome {
    let mut cmd = Command::new(ocituf_testkit::skopeo());
    cmd.arg("--insecure-policy").args(args);
    match ocituf_testkit::run(&mut cmd) {
        Ok(stdout) => Outcome {
            ok: true,
            stdout,
            stderr: String::new(),
        },
        Err(ocituf_testkit::Error::CommandFailed { stdout, stderr, .. }) => Outcome {
            ok: false,
            stdout,
            stderr,
        },
        Err(e) => panic!("{e}"),
    }
}

/// `skopeo copy` from the proxy to a fresh OCI layout; `extra` before the source.
pub fn pull(proxy: &str, path: &str, extra: &[&str], out: &Path) -> Outcome {
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let src = format!("docker://{proxy}/{path}");
    let dest = format!("oci:{}:x", out.display());
    let mut args = vec!["copy", "--src-tls-verify=false"];
    args.extend_from_slice(extra);
    args.push(&src);
    args.push(&dest);
    skopeo(&args)
}

/// `skopeo inspect --raw` through the proxy: the manifest bytes as served.
pub fn raw_manifest(proxy: &str, path: &str) -> Outcome {
    skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{proxy}/{path}"),
    ])
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn put_blob(dir: &Path, bytes: &[u8]) -> (Digest, usize) {
    let d = Digest::of(bytes);
    let p = dir.join("blobs/sha256").join(d.hex());
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
    (d, bytes.len())
}

/// A multi-arch image (linux/amd64 and linux/arm64, real tar layers) pushed to `image`
/// (`HOST/acme/app:multi`) with skopeo from an OCI layout. Returns (index, amd64, arm64).
pub fn push_multiarch(env: &Env, image: &str, note: &str) -> (Digest, Digest, Digest) {
    let dir = env.path(&format!("multi-{note}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut entries = Vec::new();
    let mut digests = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = ocituf_oci::example_image::tar_one_file(
            "hello.txt",
            format!("{note} on {arch}\n").as_bytes(),
        );
        let (ld, ll) = put_blob(&dir, &layer);
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": ["/bin/cat", "/hello.txt"]},
            "rootfs": {"type": "layers", "diff_ids": [ld.as_str()]},
        }))
        .unwrap();
        let (cd, cl) = put_blob(&dir, &config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.as_str(), "size": cl},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.as_str(), "size": ll}],
        }))
        .unwrap();
        let (md, ml) = put_blob(&dir, &manifest);
        entries.push(serde_json::json!({
            "mediaType": MANIFEST, "digest": md.as_str(), "size": ml,
            "platform": {"os": "linux", "architecture": arch},
        }));
        digests.push(md);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": INDEX, "manifests": entries,
    }))
    .unwrap();
    let (id, il) = put_blob(&dir, &index);
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": INDEX, "digest": id.as_str(), "size": il,
                           "annotations": {"org.opencontainers.image.ref.name": "multi"}}],
        }))
        .unwrap(),
    )
    .unwrap();
    let out = skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", dir.display()),
        &format!("docker://{image}"),
    ]);
    assert!(out.ok, "{out:#?}");
    // skopeo may rewrite the index while copying it: read back what the registry holds.
    let _ = (id, digests);
    let held = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    assert!(held.ok, "{held:#?}");
    let v: serde_json::Value = serde_json::from_str(&held.stdout).unwrap();
    let entry = |i: usize| Digest::parse(v["manifests"][i]["digest"].as_str().unwrap()).unwrap();
    (Digest::of(held.stdout.as_bytes()), entry(0), entry(1))
}
