//! Two-way interop with python-tuf (PyPI `tuf`, pinned in tests/interop/requirements.txt).
//!
//! - a repository written by python-tuf (ed25519, ecdsa and rsa keys, a root rotation,
//!   delegations, succinct hash bins) is verified by ocituf's `Updater` over `HttpSource`;
//! - a repository written by ocituf's repository API is verified by python-tuf's `ngclient`;
//! - a tampered copy of each is refused by both clients.
//!
//! ocituf's repository is signed with ed25519 and P-256 keys of its own and an RSA key made
//! by pyca/cryptography (PKCS#8 PEM, read by `PrivateKey::from_pkcs8_pem`).
//!
//! Repositories are served by Python's `http.server` on 127.0.0.1:0, started per test and
//! killed by PID when the test ends. A missing python-tuf fails the test with the command
//! that installs it. `OCITUF_INTEROP_PYTHON` names another interpreter than `python3`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocituf_tuf::crypto::{KeyKind, PrivateKey, Signer};
use ocituf_tuf::fs_store::role_file_stem;
use ocituf_tuf::metadata::{DelegatedRole, SuccinctRoles, TargetFile};
use ocituf_tuf::{
    HttpConfig, HttpSource, MemoryStore, Repository, SystemClock, Updater, UpdaterConfig,
};
use sha2::Digest as _;
use support::{python, StaticServer};

mod support;

/// Whether ocituf refused for the expected reason.
type Check = fn(&ocituf_tuf::Error) -> bool;

const INSTALL: &str = "python3 -m pip install -r tests/interop/requirements.txt";

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Fail (never skip) when python-tuf cannot be imported.
fn require_python_tuf() {
    let out = Command::new(python())
        .args(["-c", "import tuf.ngclient, securesystemslib.signer"])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python-tuf is not installed for {}: run `{INSTALL}`\n{}",
            python(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "cannot run {}: {e}; install Python 3 and run `{INSTALL}`",
            python()
        ),
    }
}

fn run_python(script: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(python())
        .arg(interop_dir().join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert_ne!(
        out.status.code(),
        Some(3),
        "python-tuf is missing: run `{INSTALL}`\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Write a repository with python-tuf into `dir`; returns its expected targets
/// (path -> sha256).
fn make_python_repo(dir: &Path) -> BTreeMap<String, String> {
    let out = run_python("make_python_repo.py", &[dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "make_python_repo.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap()
}

/// Verify with python-tuf's ngclient; `Ok(lines)` on success, `Err(message)` on refusal.
fn ngclient_verify(
    root: &Path,
    server: &StaticServer,
    targets: &[&str],
) -> Result<Vec<String>, String> {
    let md = format!("{}/metadata/", server.base);
    let tg = format!("{}/targets/", server.base);
    let mut args = vec![root.to_str().unwrap(), md.as_str(), tg.as_str()];
    args.extend_from_slice(targets);
    let out = run_python("verify_with_ngclient.py", &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.code() {
        Some(0) => Ok(stdout.lines().map(str::to_owned).collect()),
        Some(1) => Err(stdout),
        other => panic!(
            "verify_with_ngclient.py crashed ({other:?}): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn ocituf_updater(
    root: &[u8],
    server: &StaticServer,
) -> Updater<HttpSource, MemoryStore, SystemClock> {
    let source = HttpSource::new(
        &format!("{}/metadata/", server.base),
        Some(&format!("{}/targets/", server.base)),
        &HttpConfig::default(),
    )
    .unwrap();
    Updater::new(
        root,
        source,
        MemoryStore::new(),
        UpdaterConfig::default(),
        SystemClock,
    )
    .await
    .unwrap()
}

/// Verify with ocituf: refresh, then look up and download each target; the sha256 of each.
fn ocituf_verify(
    root: &[u8],
    server: &StaticServer,
    targets: &[&str],
) -> Result<Vec<String>, ocituf_tuf::Error> {
    rt().block_on(async {
        let mut updater = ocituf_updater(root, server).await;
        updater.refresh().await?;
        let mut lines = Vec::new();
        for path in targets {
            let info = updater
                .target_info(path)
                .await?
                .unwrap_or_else(|| panic!("{path} is not in the repository"));
            let bytes = updater.download_target(&info).await?;
            lines.push(format!(
                "ok {path} {}",
                hex::encode(sha2::Sha256::digest(&bytes))
            ));
        }
        Ok(lines)
    })
}

fn expected_lines(expected: &BTreeMap<String, String>, targets: &[&str]) -> Vec<String> {
    targets
        .iter()
        .map(|t| format!("ok {t} {}", expected[*t]))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Replace the first occurrence of `from` by `to` (same length) in `file`.
fn tamper(file: &Path, from: &[u8], to: &[u8]) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| {
            panic!(
                "{} does not contain the bytes to tamper with",
                file.display()
            )
        });
    bytes.splice(at..at + from.len(), to.iter().copied());
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn python_tuf_repository_is_verified_by_ocituf() {
    require_python_tuf();
    let tmp = tempfile::tempdir().unwrap();
    let expected = make_python_repo(tmp.path());
    let targets: Vec<&str> = expected.keys().map(String::as_str).collect();
    assert!(targets.len() > 20, "{targets:?}");
    let root = std::fs::read(tmp.path().join("initial_root.json")).unwrap();
    let server = StaticServer::start(tmp.path());
    // python-tuf verifies its own repository (so the refusals below mean something) ...
    assert_eq!(
        ngclient_verify(&tmp.path().join("initial_root.json"), &server, &targets),
        Ok(expected_lines(&expected, &targets))
    );
    // ... and so does ocituf, through the rotation, delegations and every hash bin used.
    assert_eq!(
        ocituf_verify(&root, &server, &targets).unwrap(),
        expected_lines(&expected, &targets)
    );
}

#[test]
fn python_tuf_repository_tampered_is_refused_by_both() {
    require_python_tuf();
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    let expected = make_python_repo(&good);
    let root_file = good.join("initial_root.json");
    let root = std::fs::read(&root_file).unwrap();

    // 1. A target's bytes swapped (same length) behind the signed hashes.
    let bad_target = tmp.path().join("bad-target");
    copy_dir(&good, &bad_target);
    let top = std::fs::read_dir(bad_target.join("targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".top.txt"))
        .unwrap();
    tamper(&top, b"top-level", b"TOP-LEVEL");
    // 2. A hash bin's signed content changed without re-signing (a target repointed).
    let bad_bin = tmp.path().join("bad-bin");
    copy_dir(&good, &bad_bin);
    let sha = &expected["bins/file-0.txt"];
    let bin = std::fs::read_dir(bad_bin.join("metadata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy().contains(".bin-")
                && std::fs::read_to_string(p).unwrap().contains(sha.as_str())
        })
        .unwrap();
    let mut forged = sha.clone().into_bytes();
    forged[0] = if forged[0] == b'0' { b'1' } else { b'0' };
    tamper(&bin, sha.as_bytes(), &forged);
    // 3. A signature byte of a delegated role flipped (the snapshot lists its version only,
    //    so only the signature can catch it).
    let bad_sig = tmp.path().join("bad-signature");
    copy_dir(&good, &bad_sig);
    let team = bad_sig.join("metadata/1.team.json");
    let snap = std::fs::read_to_string(&team).unwrap();
    let sig_at = snap.find("\"sig\": \"").unwrap() + 8;
    let old = snap[sig_at..sig_at + 2].to_owned();
    let new = if old == "00" { "11" } else { "00" };
    tamper(
        &team,
        format!("\"sig\": \"{old}").as_bytes(),
        format!("\"sig\": \"{new}").as_bytes(),
    );

    let cases: [(&Path, &str, &str, Check); 3] = [
        (&bad_target, "top.txt", "LengthOrHashMismatchError", |e| {
            matches!(e, ocituf_tuf::Error::HashMismatch { .. })
        }),
        (
            &bad_bin,
            "bins/file-0.txt",
            "UnsignedMetadataError",
            |e| matches!(e, ocituf_tuf::Error::Threshold { role, .. } if role.starts_with("bin-")),
        ),
        (
            &bad_sig,
            "team/app.bin",
            "UnsignedMetadataError",
            |e| matches!(e, ocituf_tuf::Error::Threshold { role, .. } if role == "team"),
        ),
    ];
    for (dir, target, python_error, expected) in cases {
        let server = StaticServer::start(dir);
        match ngclient_verify(&root_file, &server, &[target]) {
            Err(refusal) => assert!(
                refusal.contains(python_error),
                "{}: python-tuf refused for another reason: {refusal}",
                dir.display()
            ),
            Ok(lines) => panic!("python-tuf accepted {}: {lines:?}", dir.display()),
        }
        match ocituf_verify(&root, &server, &[target]) {
            Err(e) => assert!(expected(&e), "{}: unexpected refusal {e:?}", dir.display()),
            Ok(lines) => panic!("ocituf accepted {}: {lines:?}", dir.display()),
        }
    }
}

fn generated(kind: KeyKind) -> PrivateKey {
    PrivateKey::generate(kind).unwrap()
}

/// A private key made by pyca/cryptography, as PKCS#8 PEM.
fn python_key(kind: &str) -> PrivateKey {
    let out = run_python("genkey_pem.py", &[kind]);
    assert!(out.status.success(), "genkey_pem.py {kind} failed");
    PrivateKey::from_pkcs8_pem(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

fn keys_of(
    signers: &[&PrivateKey],
) -> Vec<(ocituf_tuf::crypto::KeyId, ocituf_tuf::crypto::PublicKey)> {
    signers
        .iter()
        .map(|k| (k.key_id().clone(), k.public_key().clone()))
        .collect()
}

/// Write a repository with ocituf's repository API into `dir`, in the standard layout
/// (consistent snapshots): the same shape as make_python_repo.py. Returns the expected
/// targets (path -> sha256).
fn make_ocituf_repo(dir: &Path) -> BTreeMap<String, String> {
    let md = dir.join("metadata");
    let tg = dir.join("targets");
    std::fs::create_dir_all(&md).unwrap();
    std::fs::create_dir_all(&tg).unwrap();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(365);

    let root_a = generated(KeyKind::Ed25519);
    let root_b = generated(KeyKind::EcdsaP256);
    let timestamp = generated(KeyKind::Ed25519);
    let snapshot = generated(KeyKind::EcdsaP256);
    let targets = python_key("rsa");
    let team = python_key("ecdsa");
    let hashed = python_key("ed25519");
    let bins = generated(KeyKind::Ed25519);

    let mut repo = Repository::new(expires);
    repo.meta_hashes = true;
    repo.add_signer_key("root", &root_a).unwrap();
    repo.add_signer_key("timestamp", &timestamp).unwrap();
    repo.add_signer_key("snapshot", &snapshot).unwrap();
    repo.add_signer_key("targets", &targets).unwrap();

    let mut expected = BTreeMap::new();
    let mut add = |repo: &mut Repository, role: &str, path: &str, data: &[u8]| {
        let file = TargetFile::from_data(data, &["sha256", "sha512"]).unwrap();
        let sha = file.hashes["sha256"].clone();
        let (dirname, base) = path.rsplit_once('/').map_or(("", path), |(d, b)| (d, b));
        let dest = tg.join(dirname).join(format!("{sha}.{base}"));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, data).unwrap();
        repo.add_target(role, path, file).unwrap();
        expected.insert(path.to_owned(), sha);
    };
    add(
        &mut repo,
        "targets",
        "top.txt",
        b"top-level target from ocituf\n",
    );
    repo.delegate(
        "targets",
        DelegatedRole::with_paths("team", vec![team.key_id().clone()], 1, &["team/*"]),
        &keys_of(&[&team]),
    )
    .unwrap();
    let mut hashed_role =
        DelegatedRole::with_paths("hashed", vec![hashed.key_id().clone()], 1, &["bins/*"]);
    hashed_role.terminating = true;
    repo.delegate("targets", hashed_role, &keys_of(&[&hashed]))
        .unwrap();
    add(
        &mut repo,
        "team",
        "team/app.bin",
        &(0..=255).collect::<Vec<u8>>(),
    );
    let bin_names = repo
        .delegate_hash_bins("hashed", "bin", 4, &keys_of(&[&bins]), 1)
        .unwrap();
    let succinct: SuccinctRoles = repo.targets["hashed"]
        .delegations
        .as_ref()
        .unwrap()
        .succinct_roles
        .clone()
        .unwrap();
    for i in 0..24 {
        let path = format!("bins/file-{i}.txt");
        let bin = succinct.role_for_target(&path);
        add(&mut repo, &bin, &path, format!("binned {i}\n").as_bytes());
    }

    let write = |name: &str, bytes: &[u8]| std::fs::write(md.join(name), bytes).unwrap();
    let mut roles: Vec<(String, &PrivateKey)> =
        bin_names.iter().map(|b| (b.clone(), &bins)).collect();
    roles.push(("team".to_owned(), &team));
    roles.push(("hashed".to_owned(), &hashed));
    roles.push(("targets".to_owned(), &targets));
    for (role, key) in &roles {
        let bytes = repo.sign_targets(role, &[*key as &dyn Signer]).unwrap();
        let version = repo.targets[role].version;
        write(&format!("{version}.{}.json", role_file_stem(role)), &bytes);
    }
    let snapshot_bytes = repo.sign_snapshot(&[&snapshot]).unwrap();
    write(
        &format!("{}.snapshot.json", repo.snapshot.version),
        &snapshot_bytes,
    );
    write(
        "timestamp.json",
        &repo.sign_timestamp(&[&timestamp]).unwrap(),
    );

    // Root v1, then v2 adding a P-256 root key with threshold 2, signed by the old and the
    // new root keys (TUF 5.3.4).
    let root_v1 = repo.sign_root(&[&root_a]).unwrap();
    write("1.root.json", &root_v1);
    std::fs::write(dir.join("initial_root.json"), &root_v1).unwrap();
    repo.add_signer_key("root", &root_b).unwrap();
    repo.set_threshold("root", 2).unwrap();
    repo.bump("root", expires).unwrap();
    write("2.root.json", &repo.sign_root(&[&root_a, &root_b]).unwrap());
    expected
}

#[test]
fn ocituf_repository_is_verified_by_python_tuf() {
    require_python_tuf();
    let tmp = tempfile::tempdir().unwrap();
    let expected = make_ocituf_repo(tmp.path());
    let targets: Vec<&str> = expected.keys().map(String::as_str).collect();
    let root_file = tmp.path().join("initial_root.json");
    let server = StaticServer::start(tmp.path());
    // python-tuf's ngclient verifies what ocituf wrote: rotation, delegations, every bin.
    assert_eq!(
        ngclient_verify(&root_file, &server, &targets),
        Ok(expected_lines(&expected, &targets))
    );
    // And ocituf verifies its own output the same way (the refusals below mean something).
    let root = std::fs::read(&root_file).unwrap();
    assert_eq!(
        ocituf_verify(&root, &server, &targets).unwrap(),
        expected_lines(&expected, &targets)
    );
}

#[test]
fn ocituf_repository_tampered_is_refused_by_both() {
    require_python_tuf();
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    let expected = make_ocituf_repo(&good);
    let root_file = good.join("initial_root.json");
    let root = std::fs::read(&root_file).unwrap();
    let metadata_file = |dir: &Path, containing: &str| -> PathBuf {
        std::fs::read_dir(dir.join("metadata"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name().unwrap().to_string_lossy() != "timestamp.json"
                    && std::fs::read_to_string(p).unwrap().contains(containing)
            })
            .unwrap()
    };

    // 1. A target's bytes swapped (same length) behind the signed hashes.
    let bad_target = tmp.path().join("bad-target");
    copy_dir(&good, &bad_target);
    let team_sha = &expected["team/app.bin"];
    let app = bad_target.join(format!("targets/team/{team_sha}.app.bin"));
    tamper(&app, &[0, 1, 2], &[2, 1, 0]);
    // 2. A bin's signed content changed and the snapshot left alone: the snapshot lists
    //    length and hashes (meta_hashes), so both clients must refuse it.
    let bad_bin = tmp.path().join("bad-bin");
    copy_dir(&good, &bad_bin);
    let sha = &expected["bins/file-0.txt"];
    let mut forged = sha.clone().into_bytes();
    forged[0] = if forged[0] == b'0' { b'1' } else { b'0' };
    tamper(
        &metadata_file(&bad_bin, &format!("\"{sha}\"")),
        sha.as_bytes(),
        &forged,
    );
    // 3. The timestamp's signature flipped (nothing lists timestamp hashes: only the
    //    signature can catch it).
    let bad_sig = tmp.path().join("bad-signature");
    copy_dir(&good, &bad_sig);
    let ts = bad_sig.join("metadata/timestamp.json");
    let text = std::fs::read_to_string(&ts).unwrap();
    let at = text.find("\"sig\":\"").unwrap() + 7;
    let old = text[at..at + 2].to_owned();
    let new = if old == "00" { "11" } else { "00" };
    tamper(
        &ts,
        format!("\"sig\":\"{old}").as_bytes(),
        format!("\"sig\":\"{new}").as_bytes(),
    );

    let cases: [(&Path, &str, &str, Check); 3] = [
        (
            &bad_target,
            "team/app.bin",
            "LengthOrHashMismatchError",
            |e| matches!(e, ocituf_tuf::Error::HashMismatch { .. }),
        ),
        (
            &bad_bin,
            "bins/file-0.txt",
            "LengthOrHashMismatchError",
            |e| matches!(e, ocituf_tuf::Error::HashMismatch { what, .. } if what.starts_with("bin-")),
        ),
        (
            &bad_sig,
            "top.txt",
            "UnsignedMetadataError",
            |e| matches!(e, ocituf_tuf::Error::Threshold { role, .. } if role == "timestamp"),
        ),
    ];
    for (dir, target, python_error, expected) in cases {
        let server = StaticServer::start(dir);
        match ngclient_verify(&root_file, &server, &[target]) {
            Err(refusal) => assert!(
                refusal.contains(python_error),
                "{}: python-tuf refused for another reason: {refusal}",
                dir.display()
            ),
            Ok(lines) => panic!("python-tuf accepted {}: {lines:?}", dir.display()),
        }
        match ocituf_verify(&root, &server, &[target]) {
            Err(e) => assert!(expected(&e), "{}: unexpected refusal {e:?}", dir.display()),
            Ok(lines) => panic!("ocituf accepted {}: {lines:?}", dir.display()),
        }
    }
}
