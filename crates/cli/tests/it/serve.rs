//! `ocituf serve` as a process against the fallback-only registry: an image signed with
//! `ocituf sign` becomes visible to `ocituf verify` without anyone running `ocituf publish`;
//! a second signer on the same lock is refused; SIGTERM stops it cleanly.

use std::process::Stdio;
use std::time::{Duration, Instant};

use ocituf_testkit::Distribution;

use crate::flows::{push_image, set_up, Place};
use crate::support::{Env, Run};

/// Kills the signer (by its PID) if the test fails before stopping it.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn signer_config(env: &Env, place: &Place) -> std::path::PathBuf {
    env.write(
        "signer.toml",
        &format!(
            "lock-file = \"signer.lock\"\npoll-interval = \"1s\"\n\n[[root-of-trust]]\nname = \"acme\"\nrepository = \"{}\"\nroot = \"acme.root.json\"\nsnapshot-key = \"online.pem\"\ntimestamp-key = \"online.pem\"\nresign-every = \"1h\"\n",
            place.repo("acme/tuf")
        ),
    )
}

#[test]
fn serve_publishes_what_sign_pushed_and_refuses_a_second_instance() {
    let registry = Distribution::start();
    let env = Env::new();
    let place = Place {
        prefix: format!("{}/", registry.addr()),
    };
    set_up(&env, &place);
    let config = signer_config(&env, &place);
    let config = config.to_str().unwrap();
    let mut serve = Child(
        env.command()
            .args(["serve", "--config", config])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let image = place.repo("acme/app:1.0");
    let digest = push_image(&env, &image, "served");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last: Option<Run> = None;
    while Instant::now() < deadline {
        let run = env.run(&["verify", &image]);
        if run.code == 0 {
            assert_eq!(run.stdout.trim(), digest);
            last = None;
            break;
        }
        last = Some(run);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(last.is_none(), "never visible to clients: {last:#?}");

    env.run(&["serve", "--config", config])
        .fails(2, &["another signer holds"]);

    let pid = serve.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = serve.0.wait().unwrap();
    assert!(status.success(), "ocituf serve exited with {status}");
}
