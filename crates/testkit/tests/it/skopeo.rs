//! skopeo copies an image from an OCI layout into each registry, digest preserved.

use std::path::Path;
use std::process::Command;

use ocituf_testkit::{run, skopeo, Distribution, ReferrersRegistry};
use sha2::{Digest as _, Sha256};

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An OCI image layout `dir/layout` with one single-layer image tagged `v1` (written by
/// ORAS); returns the image's manifest digest.
fn make_layout(dir: &Path) -> String {
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("hello.txt"), b"hello\n").unwrap();
    run(Command::new("tar").current_dir(dir).args([
        "--mtime=@0",
        "--owner=0",
        "--group=0",
        "-cf",
        "layer.tar",
        "-C",
        "empty",
        ".",
    ]))
    .unwrap();
    let diff_id = sha256(&std::fs::read(dir.join("layer.tar")).unwrap());
    run(Command::new("gzip")
        .current_dir(dir)
        .args(["-n", "layer.tar"]))
    .unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}},"config":{{}}}}"#
    );
    std::fs::write(dir.join("config.json"), config).unwrap();
    let out = run(Command::new(ocituf_testkit::oras()).current_dir(dir).args([
        "push",
        "--oci-layout",
        "layout:v1",
        "--format",
        "json",
        "--config",
        "config.json:application/vnd.oci.image.config.v1+json",
        "layer.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip",
    ]))
    .unwrap();
    let pushed: serde_json::Value = serde_json::from_str(&out).unwrap();
    pushed["digest"].as_str().unwrap().to_owned()
}

fn copy_and_inspect(addr: &str, layout: &Path) -> String {
    let dest = format!("docker://{addr}/copied/app:v1");
    run(Command::new(skopeo()).args([
        "copy",
        "--quiet",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.display()),
        &dest,
    ]))
    .unwrap();
    let raw = run(Command::new(skopeo()).args(["inspect", "--raw", "--tls-verify=false", &dest]))
        .unwrap();
    sha256(raw.as_bytes())
}

#[test]
fn skopeo_copies_an_oci_layout_image_into_both_registries() {
    let dir = tempfile::tempdir().unwrap();
    let digest = make_layout(dir.path());
    let layout = dir.path().join("layout");
    let dist = Distribution::start();
    assert_eq!(copy_and_inspect(dist.addr(), &layout), digest);
    let refs = ReferrersRegistry::start();
    assert_eq!(copy_and_inspect(refs.addr(), &layout), digest);
}
