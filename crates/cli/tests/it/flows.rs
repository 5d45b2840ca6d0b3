//! Every command end to end, the same flow against each kind of store: an OCI layout, the
//! fallback-only registry (distribution 2.8) and the registry with the referrers API.

use crate::support::{Env, Run};

/// Where the metadata and images of one test live.
pub struct Place {
    /// Prefix before a repository name: `oci:/tmp/x/reg:` or `127.0.0.1:5000/`.
    pub prefix: String,
}

impl Place {
    pub fn repo(&self, r: &str) -> String {
        format!("{}{r}", self.prefix)
    }
}

/// Key specs (files, `env:VAR` or `pkcs11:` URIs) of a root of trust made by [`set_up_with`].
pub struct Keys<'a> {
    pub root: &'a str,
    pub targets: &'a str,
    /// Snapshot and timestamp.
    pub online: &'a str,
    /// The `app` team role's key.
    pub app: &'a str,
}

/// Keys, a root of trust `acme` in `acme/tuf`, a delegation of `acme/app` to the `app` role,
/// and a trust policy entry pinning the root.
pub fn set_up(env: &Env, place: &Place) {
    for k in ["root", "targets", "online", "app", "other"] {
        env.run(&["key", "generate", "--out", &format!("{k}.pem")])
            .ok();
    }
    set_up_with(
        env,
        place,
        &Keys {
            root: "root.pem",
            targets: "targets.pem",
            online: "online.pem",
            app: "app.pem",
        },
    );
}

/// [`set_up`] with the keys given: init, the delegation of `acme/app` to `app`, and the trust
/// policy entry pinning `acme.root.json`.
pub fn set_up_with(env: &Env, place: &Place, keys: &Keys<'_>) {
    let tuf = place.repo("acme/tuf");
    env.run(&[
        "init",
        &tuf,
        "--name",
        "acme",
        "--root-key",
        keys.root,
        "--targets-key",
        keys.targets,
        "--snapshot-key",
        keys.online,
        "--timestamp-key",
        keys.online,
        "--out-root",
        "acme.root.json",
    ])
    .ok();
    env.run(&[
        "delegate",
        &tuf,
        "--name",
        "acme",
        "--role",
        "app",
        "--path",
        "acme/app:*",
        "--path",
        "acme/app@*",
        "--key",
        keys.app,
        "--signing-key",
        keys.targets,
        "--root",
        "acme.root.json",
    ])
    .ok();
    env.run(&[
        "trust",
        "add",
        &place.repo("acme/*"),
        "--repo",
        &tuf,
        "--name",
        "acme",
        "--root",
        "acme.root.json",
    ])
    .ok();
}

/// A key `bins.pem`, a delegation of `big/*` to role `big` split into `count` succinct
/// hash bins signed by it, and a trust policy entry for `big/*`; returns the delegate run.
pub fn delegate_hash_bins(env: &Env, place: &Place, count: u32) -> Run {
    let tuf = place.repo("acme/tuf");
    env.run(&["key", "generate", "--out", "bins.pem"]).ok();
    let count = count.to_string();
    let r = env.run(&[
        "delegate",
        &tuf,
        "-n",
        "acme",
        "--role",
        "big",
        "--path",
        "big/*",
        "--key",
        "bins.pem",
        "--hash-bins",
        &count,
        "--signing-key",
        "targets.pem",
    ]);
    env.run(&[
        "trust",
        "add",
        &place.repo("big/*"),
        "--repo",
        &tuf,
        "-n",
        "acme",
        "--root",
        "acme.root.json",
    ])
    .ok();
    r
}

pub fn publish(env: &Env, place: &Place) -> Run {
    env.run(&[
        "publish",
        &place.repo("acme/tuf"),
        "--name",
        "acme",
        "--snapshot-key",
        "online.pem",
        "--timestamp-key",
        "online.pem",
    ])
}

pub fn push_image(env: &Env, image: &str, message: &str) -> String {
    let out = env
        .run(&["example-image", image, "--message", message])
        .ok()
        .trim()
        .to_owned();
    out.rsplit_once('@').unwrap().1.to_owned()
}

/// init → delegate → trust add → push → sign (key from env) → publish → verify/resolve →
/// tamper (tag moved) refused → re-sign → yank → refused; status along the way.
pub fn whole_flow(env: &Env, place: &Place) {
    set_up(env, place);
    let image = place.repo("acme/app:1.0");
    let digest = push_image(env, &image, "one");

    // Signed but not yet published: clients do not see it.
    let pem = std::fs::read_to_string(env.path("app.pem")).unwrap();
    let signed = env.run_env(
        &["sign", &image, "--key", "env:APP_KEY"],
        &[("APP_KEY", &pem)],
    );
    assert_eq!(signed.ok().trim(), format!("{image}@{digest}"));
    assert!(signed.stderr.contains("role \"app\""), "{signed:#?}");
    env.run(&["verify", &image])
        .fails(1, &["is not signed", "acme/app:1.0"]);
    let status = env.run(&["status", &place.repo("acme/tuf"), "-n", "acme"]);
    assert!(
        status.ok().contains("not yet published: app version 1"),
        "{status:#?}"
    );

    publish(env, place).ok();
    assert_eq!(env.run(&["verify", &image]).ok().trim(), digest);
    let pinned = env.run(&["resolve", &image]).ok().trim().to_owned();
    assert_eq!(pinned, format!("{image}@{digest}"));
    // A pull by digest verifies by the digest name the signer added.
    assert_eq!(env.run(&["verify", &pinned]).ok().trim(), digest);
    let by_digest = format!("{}@{digest}", place.repo("acme/app"));
    assert_eq!(env.run(&["verify", &by_digest]).ok().trim(), digest);
    let json: serde_json::Value =
        serde_json::from_str(env.run(&["verify", &image, "--json"]).ok()).unwrap();
    assert_eq!(json["digest"], digest.as_str());
    assert_eq!(json["role"], "app");
    assert_eq!(json["role_version"], 1);
    assert_eq!(json["root_of_trust"], "acme");
    // Warm cache, nothing new: one request to the metadata repository (the top listing).
    assert_eq!(json["metadata_requests"], 1, "{json}");

    // Tamper: the registry moves the tag. Refused, naming role, version and both digests.
    let evil = push_image(env, &image, "evil");
    env.run(&["verify", &image]).fails(
        1,
        &["is not signed", &evil, &digest, "targets role \"app\" v1"],
    );
    env.run(&["resolve", &image]).fails(1, &["is not signed"]);
    // A digest that was never signed is refused too.
    env.run(&["verify", &format!("{}@{evil}", place.repo("acme/app"))])
        .fails(1, &["is not signed"]);

    // The owners sign the new digest; yanking it makes clients refuse the tag again.
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    publish(env, place).ok();
    assert_eq!(env.run(&["verify", &image]).ok().trim(), evil);
    env.run(&["yank", &image, "--key", "app.pem"]).ok();
    publish(env, place).ok();
    env.run(&["verify", &image]).fails(1, &["is not signed"]);

    let status: serde_json::Value = serde_json::from_str(
        env.run(&["status", &place.repo("acme/tuf"), "-n", "acme", "--json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(status["delegated_roles"][0]["role"], "app");
    assert_eq!(status["delegated_roles"][0]["version"], 3);
    assert_eq!(status["delegated_roles"][0]["published_version"], 3);
    assert_eq!(status["unpublished"].as_array().unwrap().len(), 0);
}

/// Several CI jobs sign different tags into the same role at once: no target is lost.
pub fn concurrent_signers(env: &Env, place: &Place, jobs: usize) {
    set_up(env, place);
    let images: Vec<String> = (0..jobs)
        .map(|i| {
            let image = place.repo(&format!("acme/app:{i}"));
            push_image(env, &image, &format!("job {i}"));
            image
        })
        .collect();
    let children: Vec<_> = images
        .iter()
        .map(|image| {
            env.command()
                .args(["sign", image, "--key", "app.pem"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut stderrs = String::new();
    for (c, image) in children.into_iter().zip(&images) {
        let out = c.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a concurrent signer failed: {stderr}");
        // stdout stays machine-readable: only IMAGE@sha256:…, progress lines go to stderr.
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.trim().starts_with(&format!("{image}@sha256:")) && stdout.lines().count() == 1,
            "{stdout}"
        );
        stderrs.push_str(&stderr);
    }
    // Without any race each job pushes one version: `app` ends at version `jobs`. Any other
    // version means some job pushed the same version as another or pushed twice, and a job
    // that lost a race says so on stderr.
    let status: serde_json::Value = serde_json::from_str(
        env.run(&["status", &place.repo("acme/tuf"), "-n", "acme", "--json"])
            .ok(),
    )
    .unwrap();
    if status["delegated_roles"][0]["version"] != jobs {
        assert!(
            stderrs.contains("ocituf: lost a race with another signer of role \"app\", retrying on top of version"),
            "versions raced but no signer said so: {status}\n{stderrs}"
        );
    }
    publish(env, place).ok();
    for image in &images {
        let v = env.run(&["verify", image]);
        if v.code != 0 {
            let status = env.run(&["status", &place.repo("acme/tuf"), "-n", "acme", "--json"]);
            panic!(
                "{image} lost after concurrent signing: {v:#?}\nstatus: {}",
                status.stdout
            );
        }
    }
}
