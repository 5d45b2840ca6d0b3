//! The set-up files people meet first: the quick start script and compose.yaml.

use std::path::Path;
use std::process::Command;

fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn quickstart_verifies_then_refuses_the_tampered_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/quickstart.sh"))
        .env("OCITUF", crate::support::bin())
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "quickstart failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("quickstart: ok"), "{stdout}");
    assert!(
        stderr.contains("is not signed: the registry says"),
        "{stderr}"
    );
    assert!(stderr.contains("targets role \"app\" v1 says"), "{stderr}");
}

#[test]
fn compose_file_parses_and_names_both_registries() {
    // CI has no Docker engine: parse the file with PyYAML (python3 -m pip install pyyaml).
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); \
             s = d['services']; \
             print(sorted(s)); \
             assert all(p.startswith('127.0.0.1:') for v in s.values() for p in v['ports'])",
        ])
        .arg(repo_root().join("compose.yaml"))
        .output()
        .expect("python3 is needed to parse compose.yaml");
    assert!(
        out.status.success(),
        "compose.yaml does not parse (needs PyYAML: python3 -m pip install pyyaml): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "['distribution', 'zot']"
    );
}
