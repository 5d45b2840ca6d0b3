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
        "['distribution', 'signer', 'zot']"
    );
}

/// The checks on the Kubernetes example of docs/deploy.md: what makes two replicas safe and
/// the pod non-root and probed. Run by python3 with PyYAML, like compose.yaml.
const DEPLOY_CHECKS: &str = r#"
import re, sys, yaml
text = open(sys.argv[1]).read()
blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
assert len(blocks) == 1, f"{len(blocks)} yaml blocks in docs/deploy.md"
docs = [d for d in yaml.safe_load_all(blocks[0]) if d]
kinds = {(d["kind"], d["metadata"]["name"]): d for d in docs}
dep = kinds[("Deployment", "ocituf-signer")]["spec"]
assert dep["replicas"] == 2, dep["replicas"]
pod = dep["template"]["spec"]
sc = pod["securityContext"]
assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001, sc
(c,) = pod["containers"]
assert c["args"] == ["serve", "--config", "/etc/ocituf/signer.toml"], c["args"]
assert c["securityContext"]["allowPrivilegeEscalation"] is False
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
assert "requests" in c["resources"] and "limits" in c["resources"]
(env,) = [e for e in c["env"] if e["name"] == "OCITUF_DATABASE_URL"]
ref = env["valueFrom"]["secretKeyRef"]
assert ("Secret", ref["name"]) in kinds and ref["key"] in kinds[("Secret", ref["name"])]["stringData"], ref
vols = {v["name"]: v for v in pod["volumes"]}
keys = vols["keys"]["secret"]["secretName"]
assert ("Secret", keys) in kinds, keys
assert {"snapshot.pem", "timestamp.pem"} <= set(kinds[("Secret", keys)]["stringData"])
mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
assert mounts["/etc/ocituf/keys"]["name"] == "keys" and mounts["/etc/ocituf/keys"]["readOnly"]
svc = kinds[("Service", "ocituf-signer")]["spec"]
assert svc["selector"] == dep["selector"]["matchLabels"], svc["selector"]
assert svc["ports"][0]["targetPort"] == c["ports"][0]["name"]
# The signer.toml shown beside it reads the URL from the variable the Deployment sets.
assert 'database-url-env = "OCITUF_DATABASE_URL"' in text
print("ok", sorted(k for k, _ in kinds))
"#;

#[test]
fn deploy_doc_kubernetes_example_parses_and_holds_what_matters() {
    let out = Command::new("python3")
        .args(["-c", DEPLOY_CHECKS])
        .arg(repo_root().join("docs/deploy.md"))
        .output()
        .expect("python3 is needed to parse docs/deploy.md");
    assert!(
        out.status.success(),
        "the Kubernetes example of docs/deploy.md is wrong (needs PyYAML: python3 -m pip install pyyaml): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok ['Deployment', 'Secret', 'Secret', 'Service']"
    );
}
