//! Docker credential helpers (`credHelpers`, `credsStore`) found through `$DOCKER_CONFIG`,
//! against distribution 2.8 with basic auth. A test binary of its own: it sets `PATH` and
//! `DOCKER_CONFIG` for the whole process before any thread starts.

use std::os::unix::fs::PermissionsExt as _;

use ocituf_oci::{ArtifactStore, Digest, Error, RegistryError, RegistryOptions, RegistryRepo};
use ocituf_testkit::{Auth, Distribution, DistributionOptions};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pass";

#[test]
fn credential_helpers_from_docker_config_env() {
    let reg = Distribution::start_with(DistributionOptions {
        auth: Auth::Basic {
            user: USER.into(),
            password: PASSWORD.into(),
        },
        ..DistributionOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let asked = dir.path().join("asked");
    // The Docker credential helper protocol: `get`, server URL on stdin, JSON on stdout.
    let script = format!(
        "#!/bin/sh\nurl=$(cat)\necho \"$1 $url\" >> {asked}\nif [ \"$url\" = \"{host}\" ]; then\n  \
         printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$url\"\n\
         else\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n",
        asked = asked.display(),
        host = reg.addr(),
    );
    let helper = bin.join("docker-credential-ocituftest");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Single-threaded here: no other thread reads the environment yet.
    std::env::set_var("PATH", path);
    std::env::set_var("DOCKER_CONFIG", dir.path());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let reference = format!("{}/acme/tuf", reg.addr());
        for config in [
            serde_json::json!({ "credHelpers": { reg.addr(): "ocituftest" } }),
            serde_json::json!({ "credsStore": "ocituftest" }),
        ] {
            std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
            // Default options: credentials from $DOCKER_CONFIG/config.json.
            let repo = RegistryRepo::open(&reference, RegistryOptions::default()).unwrap();
            let d = repo.put_blob(b"blob").await.unwrap();
            assert_eq!(d, Digest::of(b"blob"));
            assert_eq!(
                repo.get_blob(&d, 10).await.unwrap().as_deref(),
                Some(&b"blob"[..])
            );
        }
        // A helper that answers "credentials not found" means anonymous: refused by the
        // registry. (Same registry named `localhost:PORT`, a host the helper does not know.)
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::json!({ "credsStore": "ocituftest" }).to_string(),
        )
        .unwrap();
        let port = reg.addr().rsplit(':').next().unwrap();
        let repo = RegistryRepo::open(
            &format!("localhost:{port}/acme/tuf"),
            RegistryOptions::default(),
        )
        .unwrap();
        let r = repo.get_blob(&Digest::of(b"blob"), 10).await;
        assert!(
            matches!(r, Err(Error::Registry(RegistryError::Unauthorized { .. }))),
            "{r:?}"
        );
        // A missing helper binary is a clear error.
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::json!({ "credsStore": "nosuchhelper" }).to_string(),
        )
        .unwrap();
        let repo = RegistryRepo::open(&reference, RegistryOptions::default()).unwrap();
        let r = repo.get_blob(&Digest::of(b"blob"), 10).await;
        assert!(
            matches!(
                r,
                Err(Error::Registry(RegistryError::CredentialHelperIo { .. }))
            ),
            "{r:?}"
        );
    });
    let asked = std::fs::read_to_string(asked).unwrap();
    let lines: Vec<&str> = asked.lines().collect();
    let port = reg.addr().rsplit(':').next().unwrap();
    assert_eq!(
        lines,
        vec![
            format!("get {}", reg.addr()),
            format!("get {}", reg.addr()),
            format!("get localhost:{port}"),
        ],
        "the helper is asked once per client, with `get` and the host"
    );
}
