//! Batch signing: `ocituf sign IMAGE... [--from FILE|-]` signs many images in one run, with
//! one new version per role touched, on the layout and the fallback registry.

use std::io::Write as _;
use std::process::Stdio;

use ocituf_testkit::Distribution;

use crate::flows::{publish, push_image, set_up, Place};
use crate::support::{Env, Run};

fn batch(env: &Env, place: &Place) {
    set_up(env, place);
    let images: Vec<(String, String)> = (1..=5)
        .map(|i| {
            let image = place.repo(&format!("acme/app:b{i}"));
            let digest = push_image(env, &image, &format!("batch {i}"));
            (image, digest)
        })
        .collect();
    // Two on the command line, two in a file (with a comment and a blank line), one more
    // from standard input in a second run.
    env.write(
        "images.txt",
        &format!("# built by CI\n{}\n\n{}\n", images[2].0, images[3].0),
    );
    let run = env.run(&[
        "sign",
        &images[0].0,
        &images[1].0,
        "--from",
        "images.txt",
        "--key",
        "app.pem",
    ]);
    let out = run.ok();
    for (image, digest) in &images[..4] {
        assert!(out.contains(&format!("{image}@{digest}")), "{run:#?}");
    }
    // One new version of the one role touched, not one per image.
    assert!(run.stderr.contains("role \"app\" version 1 of"), "{run:#?}");

    let mut child = env
        .command()
        .args(["sign", "--from", "-", "--key", "app.pem"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{}", images[4].0).unwrap();
    let run = Run::from_output(&child.wait_with_output().unwrap());
    assert!(run.ok().contains(&images[4].1), "{run:#?}");
    assert!(run.stderr.contains("role \"app\" version 2 of"), "{run:#?}");

    publish(env, place).ok();
    for (image, digest) in &images {
        assert_eq!(env.run(&["verify", image]).ok().trim(), digest);
    }

    // Bad input: nothing named, an image without a tag, yank of several; nothing written.
    env.run(&["sign", "--from", "empty.txt", "--key", "app.pem"])
        .fails(2, &["could not read the image list empty.txt"]);
    env.write("empty.txt", "# nothing\n");
    env.run(&["sign", "--from", "empty.txt", "--key", "app.pem"])
        .fails(2, &["no image to sign"]);
    let untagged = format!("{}@{}", place.repo("acme/app"), images[0].1);
    env.run(&["sign", &images[0].0, &untagged, "--key", "app.pem"])
        .fails(2, &["has no tag"]);
    env.run(&["yank", &images[0].0, &images[1].0, "--key", "app.pem"])
        .fails(2, &["yank takes one image, not 2"]);
    let status = env.run(&["status", &place.repo("acme/tuf"), "-n", "acme", "--json"]);
    let json: serde_json::Value = serde_json::from_str(status.ok()).unwrap();
    let app = json["delegated_roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "app")
        .unwrap();
    assert_eq!(app["version"], 2, "the refusals wrote nothing: {app}");
}

#[test]
fn batch_sign_writes_one_version_per_role_on_a_layout() {
    let env = Env::new();
    let place = Place {
        prefix: format!("oci:{}:", env.path("registry").display()),
    };
    batch(&env, &place);
}

#[test]
fn batch_sign_writes_one_version_per_role_on_the_fallback_registry() {
    let registry = Distribution::start();
    let env = Env::new();
    let place = Place {
        prefix: format!("{}/", registry.addr()),
    };
    batch(&env, &place);
}
