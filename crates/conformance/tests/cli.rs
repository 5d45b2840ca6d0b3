//! The CLI protocol of tuf-conformance, checked on the built binary: exit codes (exactly 0
//! or 1), `init` without the network, and the contents of the metadata directory.

use std::path::Path;
use std::process::Command;

fn client() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ocituf-conformance"))
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn usage_errors_exit_1_not_2() {
    for args in [
        &[][..],
        &["--metadata-dir"][..],
        &["--metadata-dir", "x", "frobnicate"][..],
        &["--no-such-flag", "--metadata-dir", "x", "refresh"][..],
        &["--metadata-dir", "x", "init"][..],
    ] {
        let out = client().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
    }
    let help = client().arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
}

#[test]
fn init_copies_the_root_byte_exact_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let md = tmp.path().join("metadata");
    std::fs::create_dir(&md).unwrap();
    // Not even JSON: init does no checks (CLIENT-CLI.md), refresh will.
    let root = tmp.path().join("initial_root.json");
    let bytes = b"{\"signed\":  {\"_type\": \"root\"},\n \"signatures\": []}\n";
    std::fs::write(&root, bytes).unwrap();
    // No --metadata-url: init cannot make a request.
    let out = client()
        .args(["--metadata-dir"])
        .arg(&md)
        .arg("init")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(entries(&md), ["root.json"]);
    assert_eq!(std::fs::read(md.join("root.json")).unwrap(), bytes);
}

#[test]
fn init_with_missing_root_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let out = client()
        .arg("--metadata-dir")
        .arg(tmp.path())
        .arg("init")
        .arg(tmp.path().join("absent.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn refresh_without_init_or_with_unreachable_repository_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let md = tmp.path().join("metadata");
    // Port 9 on loopback (discard) is closed on test machines: connection refused.
    let out = client()
        .args([
            "--metadata-url",
            "http://127.0.0.1:9/metadata/",
            "--metadata-dir",
        ])
        .arg(&md)
        .arg("refresh")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no trusted root"));
}
