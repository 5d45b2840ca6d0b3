//! ORAS 1.2 (an independent client) discovers the TUF artifacts ocituf publishes: in an OCI
//! layout directory, on distribution 2.8 (tag-schema fallback) and on the native referrers
//! registry.

use std::process::Command;

use ocituf_oci::mapping::{Anchor, RoleClass};
use ocituf_oci::registry::Credentials;
use ocituf_oci::{ArtifactStore, LayoutStore, Publisher, RegistryOptions, RegistryRepo};
use ocituf_testkit::{Distribution, ReferrersRegistry};

use crate::suite;

/// Publish two timestamps (and what they name), then ask ORAS for the referrers of the top
/// anchor; returns ORAS's JSON answer.
async fn publish_and_discover<A: ArtifactStore>(
    store: A,
    oras_target: &dyn Fn(&str) -> Vec<String>,
) -> anyhow::Result<serde_json::Value> {
    let p = Publisher::new(store, suite::acme());
    suite::publish_history(&p, 2).await?;
    let top = Anchor::top(&suite::acme());
    let mut cmd = Command::new(ocituf_testkit::oras());
    cmd.arg("discover")
        .args(["--format", "json"])
        .args(["--artifact-type", RoleClass::Timestamp.artifact_type()])
        .args(oras_target(top.digest().as_str()));
    let out = ocituf_testkit::run(&mut cmd)?;
    Ok(serde_json::from_str(&out)?)
}

/// The versions ORAS lists, from the annotations it shows.
fn versions(answer: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = answer["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["artifactType"] == RoleClass::Timestamp.artifact_type())
        .filter_map(|m| {
            m["annotations"]["io.ocituf.version"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    v.sort();
    v
}

fn anonymous(addr: &str) -> anyhow::Result<RegistryRepo> {
    let opts = RegistryOptions {
        credentials: Credentials::Anonymous,
        ..RegistryOptions::default()
    };
    Ok(RegistryRepo::open(&format!("{addr}/acme/tuf"), opts)?)
}

#[tokio::test]
async fn oras_discovers_tuf_artifacts_in_a_layout() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = LayoutStore::new(dir.path(), "acme/tuf")?;
    let path = dir.path().display().to_string();
    let answer = publish_and_discover(store, &|digest| {
        vec!["--oci-layout".into(), format!("{path}@{digest}")]
    })
    .await?;
    assert_eq!(versions(&answer), ["1", "2"], "{answer}");
    Ok(())
}

#[tokio::test]
async fn oras_discovers_tuf_artifacts_on_distribution() -> anyhow::Result<()> {
    let reg = Distribution::start();
    let addr = reg.addr().to_owned();
    let answer = publish_and_discover(anonymous(&addr)?, &|digest| {
        vec!["--plain-http".into(), format!("{addr}/acme/tuf@{digest}")]
    })
    .await?;
    assert_eq!(versions(&answer), ["1", "2"], "{answer}");
    Ok(())
}

#[tokio::test]
async fn oras_discovers_tuf_artifacts_on_the_native_registry() -> anyhow::Result<()> {
    let reg = ReferrersRegistry::start();
    let addr = reg.addr().to_owned();
    let answer = publish_and_discover(anonymous(&addr)?, &|digest| {
        vec!["--plain-http".into(), format!("{addr}/acme/tuf@{digest}")]
    })
    .await?;
    assert_eq!(versions(&answer), ["1", "2"], "{answer}");
    Ok(())
}
