//! ORAS 1.2 as an independent client: it must list what ocituf writes on both registries,
//! and extend ocituf's fallback indexes without dropping ocituf's entries (and ocituf ORAS's).

use std::path::Path;
use std::process::Command;

use ocituf_oci::{ArtifactStore, Digest, ReferrersSource, RegistryClient};
use ocituf_testkit::{Distribution, ReferrersRegistry};
use serde_json::Value;

use crate::distribution::{anonymous, push_artifact};
use crate::harness::descriptor_of;

const TS: &str = "application/vnd.tuf.timestamp.v1+json";
const SN: &str = "application/vnd.tuf.snapshot.v1+json";

fn oras(dir: &Path, args: &[&str]) -> Value {
    let out = ocituf_testkit::run(
        Command::new(ocituf_testkit::oras())
            .current_dir(dir)
            .args(args)
            .args(["--plain-http", "--format", "json"]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("oras {args:?}: no JSON ({e}): {out}"))
}

/// `oras discover`: sorted (digest, artifactType, annotations).
fn discover(
    dir: &Path,
    reference: &str,
    artifact_type: Option<&str>,
    spec: Option<&str>,
) -> Vec<(String, String, Value)> {
    let mut args = vec!["discover"];
    if let Some(s) = spec {
        args.extend(["--distribution-spec", s]);
    }
    if let Some(t) = artifact_type {
        args.extend(["--artifact-type", t]);
    }
    args.push(reference);
    let v = oras(dir, &args);
    let mut list: Vec<_> = v["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("no manifests in {v}"))
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap_or_default().to_owned(),
                m["artifactType"].as_str().unwrap_or_default().to_owned(),
                m["annotations"].clone(),
            )
        })
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list
}

async fn our_artifacts(addr: &str) -> (Digest, Vec<Digest>) {
    let repo = RegistryClient::new(addr, anonymous())
        .unwrap()
        .repo("acme/tuf")
        .unwrap();
    let (anchor, anchor_d) = push_artifact(
        &repo,
        "application/vnd.ocituf.anchor.v1+json",
        b"",
        None,
        Some("anchor"),
    )
    .await;
    let subject = descriptor_of(&anchor);
    let (_, t) = push_artifact(&repo, TS, b"ts", Some(&subject), None).await;
    let (_, s) = push_artifact(&repo, SN, b"sn", Some(&subject), None).await;
    let mut ours = vec![t, s];
    ours.sort();
    (anchor_d, ours)
}

fn digests(list: &[(String, String, Value)]) -> Vec<String> {
    list.iter().map(|e| e.0.clone()).collect()
}

fn strings(ds: &[Digest]) -> Vec<String> {
    ds.iter().map(ToString::to_string).collect()
}

#[tokio::test]
async fn oras_discovers_our_artifacts_on_both_registries() {
    let dir = tempfile::tempdir().unwrap();
    let dist = Distribution::start();
    let native = ReferrersRegistry::start();
    for (addr, specs) in [
        (dist.addr(), [None, Some("v1.1-referrers-tag")]),
        (native.addr(), [None, Some("v1.1-referrers-api")]),
    ] {
        let (anchor, ours) = our_artifacts(addr).await;
        let reference = format!("{addr}/acme/tuf@{anchor}");
        for spec in specs {
            let all = discover(dir.path(), &reference, None, spec);
            assert_eq!(digests(&all), strings(&ours), "{addr} {spec:?}");
            let ts = all.iter().find(|e| e.1 == TS).unwrap();
            assert_eq!(ts.2["io.ocituf.role"], "timestamp", "annotations: {addr}");
            let only_sn = discover(dir.path(), &reference, Some(SN), spec);
            assert_eq!(only_sn.len(), 1, "{addr} {spec:?}");
            assert_eq!(only_sn[0].1, SN);
        }
    }
}

#[tokio::test]
async fn oras_attach_extends_our_fallback_index_and_we_keep_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Distribution::start();
    let addr = reg.addr();
    let (anchor, ours) = our_artifacts(addr).await;
    let reference = format!("{addr}/acme/tuf@{anchor}");

    std::fs::write(dir.path().join("sig.json"), b"{\"sig\":1}").unwrap();
    let attached = oras(
        dir.path(),
        &[
            "attach",
            "--distribution-spec",
            "v1.1-referrers-tag",
            "--artifact-type",
            "application/vnd.example.sig.v1+json",
            &reference,
            "sig.json",
        ],
    );
    let theirs = Digest::parse(attached["digest"].as_str().unwrap()).unwrap();
    // And once more with ORAS detecting the fallback by itself (no OCI-Subject on its PUT).
    std::fs::write(dir.path().join("sbom.json"), b"{\"sbom\":1}").unwrap();
    let attached = oras(
        dir.path(),
        &[
            "attach",
            "--artifact-type",
            "application/vnd.example.sbom.v1+json",
            &reference,
            "sbom.json",
        ],
    );
    let theirs_auto = Digest::parse(attached["digest"].as_str().unwrap()).unwrap();

    // ORAS kept our entries, and we read its.
    let repo = RegistryClient::new(addr, anonymous())
        .unwrap()
        .repo("acme/tuf")
        .unwrap();
    let (found, source) = repo.referrers(&anchor, None).await.unwrap();
    assert_eq!(source, ReferrersSource::TagSchemaFallback);
    let mut found: Vec<Digest> = found.into_iter().map(|d| d.digest).collect();
    found.sort();
    let mut want = ours.clone();
    want.push(theirs.clone());
    want.push(theirs_auto);
    want.sort();
    assert_eq!(found, want);

    // Our next write keeps ORAS's entry (it has no unique tag: kept from the index).
    let subject = repo
        .head_manifest(ocituf_oci::ManifestRef::Tag("anchor"))
        .await
        .unwrap()
        .unwrap();
    let (_, third) = push_artifact(&repo, TS, b"ts2", Some(&subject), None).await;
    want.push(third);
    want.sort();
    let all = discover(dir.path(), &reference, None, None);
    assert_eq!(digests(&all), strings(&want));
    let (found, _) = repo.referrers(&anchor, None).await.unwrap();
    let mut found: Vec<Digest> = found.into_iter().map(|d| d.digest).collect();
    found.sort();
    assert_eq!(found, want);
}
