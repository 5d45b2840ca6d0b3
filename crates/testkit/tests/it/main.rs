//! Smoke tests of the test registries with real clients (ORAS, skopeo): what the other
//! crates' integration tests rely on.

mod facts;
mod http;
mod lifecycle;
mod oras;
mod skopeo;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

pub(crate) const TIMESTAMP_TYPE: &str = "application/vnd.tuf.timestamp.v1+json";
pub(crate) const ROOT_TYPE: &str = "application/vnd.tuf.root.v1+json";

/// Runs `oras ARGS` with `--plain-http` (our registries are plain HTTP on loopback) and
/// parses its `--format json` output.
pub(crate) fn oras_json(args: &[&str]) -> Value {
    let out = ocituf_testkit::run(Command::new(ocituf_testkit::oras()).args(args).args([
        "--plain-http",
        "--format",
        "json",
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("oras {args:?} printed no JSON ({e}): {out}"))
}

/// `oras push` of one small file as an image-like artifact; returns its manifest digest.
pub(crate) fn push_subject(addr: &str, repo: &str, tag: &str, dir: &Path) -> String {
    std::fs::write(dir.join("app.txt"), format!("{repo}:{tag}\n")).unwrap();
    let pushed = oras_json_in(dir, &["push", &format!("{addr}/{repo}:{tag}"), "app.txt"]);
    digest_of(&pushed)
}

/// `oras attach` of one small file to `subject` (a digest) with an artifact type and
/// annotations; `spec` is ORAS's `--distribution-spec` (`v1.1-referrers-api` or
/// `v1.1-referrers-tag`). Returns the attached manifest's digest.
pub(crate) fn attach(
    addr: &str,
    repo: &str,
    subject: &str,
    artifact_type: &str,
    annotations: &[(&str, &str)],
    spec: &str,
    dir: &Path,
) -> String {
    let file = format!("{}.json", artifact_type.replace(['/', '.', '+'], "_"));
    std::fs::write(dir.join(&file), b"{\"signed\":{}}").unwrap();
    let reference = format!("{addr}/{repo}@{subject}");
    let mut args = vec![
        "attach",
        "--distribution-spec",
        spec,
        "--artifact-type",
        artifact_type,
    ];
    let pairs: Vec<String> = annotations
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for p in &pairs {
        args.extend(["--annotation", p]);
    }
    args.extend([reference.as_str(), file.as_str()]);
    let attached = oras_json_in(dir, &args);
    assert_eq!(attached["artifactType"], artifact_type, "{attached}");
    digest_of(&attached)
}

/// `oras discover` of `subject` (`spec` as for [`attach`], empty: ORAS detects); returns (digest, artifactType, annotations) per referrer,
/// sorted by digest.
pub(crate) fn discover(
    addr: &str,
    repo: &str,
    subject: &str,
    artifact_type: Option<&str>,
    spec: &str,
) -> Vec<(String, String, Value)> {
    let reference = format!("{addr}/{repo}@{subject}");
    let mut args = vec!["discover"];
    if !spec.is_empty() {
        args.extend(["--distribution-spec", spec]);
    }
    if let Some(t) = artifact_type {
        args.extend(["--artifact-type", t]);
    }
    args.push(&reference);
    let found = oras_json(&args);
    let mut list: Vec<(String, String, Value)> = found["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("no manifests in {found}"))
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap().to_owned(),
                m["artifactType"].as_str().unwrap_or_default().to_owned(),
                m["annotations"].clone(),
            )
        })
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list
}

/// `oras repo tags`.
pub(crate) fn tags(addr: &str, repo: &str) -> Vec<String> {
    let out = ocituf_testkit::run(Command::new(ocituf_testkit::oras()).args([
        "repo",
        "tags",
        "--plain-http",
        &format!("{addr}/{repo}"),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    out.lines().map(str::to_owned).collect()
}

fn oras_json_in(dir: &Path, args: &[&str]) -> Value {
    let out = ocituf_testkit::run(
        Command::new(ocituf_testkit::oras())
            .current_dir(dir)
            .args(args)
            .args(["--plain-http", "--format", "json"]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("oras {args:?} printed no JSON ({e}): {out}"))
}

fn digest_of(v: &Value) -> String {
    let d = v["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no digest in {v}"));
    assert!(d.starts_with("sha256:") && d.len() == 71, "{d}");
    d.to_owned()
}
