//! Test registries: Debian's `docker-registry` (CNCF distribution 2.8, no referrers API),
//! started on 127.0.0.1:0 in a temp dir and stopped by PID.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ocituf_oci::{Descriptor, Digest};

const INSTALL: &str = "apt-get install -y docker-registry";

/// A running distribution 2.8 registry with deletes enabled.
pub struct Distribution {
    dir: tempfile::TempDir,
    child: Option<Child>,
    host: String,
    starts: u32,
}

impl Distribution {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Start with extra top-level YAML (e.g. an `auth:` section).
    pub fn start_with(extra_yaml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n  secret: ocituf-test\n{extra_yaml}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("write config");
        let mut d = Self {
            dir,
            child: None,
            host: String::new(),
            starts: 0,
        };
        d.run();
        d
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    fn run(&mut self) {
        self.starts += 1;
        let log = self
            .dir
            .path()
            .join(format!("registry-{}.log", self.starts));
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.config())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run docker-registry ({e}); install it: {INSTALL}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(i) = text.find("listening on 127.0.0.1:") {
                let rest = &text[i + "listening on ".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                    .unwrap_or(rest.len());
                rest[..end].clone_into(&mut self.host);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start within 15 s:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Stop the registry, run `garbage-collect --delete-untagged`, start it again (on a new
    /// port). Returns the GC output.
    pub fn garbage_collect(&mut self) -> String {
        self.stop();
        let out = Command::new("docker-registry")
            .args(["garbage-collect", "--delete-untagged"])
            .arg(self.config())
            .output()
            .expect("run garbage-collect");
        assert!(
            out.status.success(),
            "garbage-collect failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.run();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}

pub const EMPTY_CONFIG: &[u8] = b"{}";
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// An OCI artifact manifest: empty config, one layer, optional subject.
pub fn artifact(
    artifact_type: &str,
    layer: &[u8],
    subject: Option<&Descriptor>,
    annotations: &[(&str, &str)],
) -> Vec<u8> {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": artifact_type,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": Digest::of(EMPTY_CONFIG).as_str(),
            "size": 2
        },
        "layers": [{
            "mediaType": "application/vnd.tuf.metadata+json",
            "digest": Digest::of(layer).as_str(),
            "size": layer.len()
        }]
    });
    if let Some(s) = subject {
        m["subject"] = serde_json::json!({
            "mediaType": s.media_type,
            "digest": s.digest.as_str(),
            "size": s.size
        });
    }
    if !annotations.is_empty() {
        let a: serde_json::Map<String, serde_json::Value> = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).into()))
            .collect();
        m["annotations"] = a.into();
    }
    serde_json::to_vec(&m).expect("json")
}

pub fn descriptor_of(bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: MANIFEST_TYPE.to_owned(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        artifact_type: None,
        annotations: std::collections::BTreeMap::default(),
    }
}
