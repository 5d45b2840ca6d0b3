//! `--help` of every command, compared with golden files under testdata/cli/help/.

use crate::support::{golden, Env};

const COMMANDS: &[&[&str]] = &[
    &[],
    &["key"],
    &["key", "generate"],
    &["key", "show"],
    &["init"],
    &["delegate"],
    &["cosign"],
    &["project"],
    &["project", "create"],
    &["maintainer"],
    &["maintainer", "add"],
    &["maintainer", "remove"],
    &["maintainer", "list"],
    &["sign"],
    &["yank"],
    &["publish"],
    &["serve"],
    &["root"],
    &["root", "sign"],
    &["root", "rotate"],
    &["trust"],
    &["trust", "add"],
    &["trust", "list"],
    &["trust", "remove"],
    &["verify"],
    &["resolve"],
    &["status"],
    &["proxy"],
    &["config"],
    &["containerd-verifier"],
    &["bundle"],
    &["bundle", "export"],
    &["bundle", "import"],
    &["site"],
];

#[test]
fn help_text_snapshots() {
    let env = Env::new();
    for cmd in COMMANDS {
        let mut args = cmd.to_vec();
        args.push("--help");
        let run = env.run(&args);
        let out = run.ok();
        assert!(out.contains("Usage: ocituf"), "{out}");
        let name = if cmd.is_empty() {
            "ocituf".to_owned()
        } else {
            format!("ocituf-{}", cmd.join("-"))
        };
        golden(&format!("help/{name}.txt"), out);
    }
}

#[test]
fn every_leaf_command_has_examples() {
    let env = Env::new();
    for cmd in COMMANDS {
        let leaf = !matches!(
            *cmd,
            [] | ["key" | "root" | "trust" | "bundle" | "project" | "maintainer"]
                | ["trust", "list"]
        );
        if leaf {
            let mut args = cmd.to_vec();
            args.push("--help");
            let out = env.run(&args).ok().to_owned();
            assert!(
                out.contains("Examples:"),
                "ocituf {cmd:?} --help has no examples"
            );
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    env.run(&["no-such-command"])
        .fails(2, &["unrecognized subcommand"]);
    env.run(&["verify"]).fails(2, &["IMAGE"]);
    env.run(&["init", "oci:x:acme/tuf"]).fails(2, &["--name"]);
    env.run(&["key", "generate", "--type", "dsa", "--out", "k"])
        .fails(2, &["dsa"]);
    assert_eq!(env.run(&["--version"]).code, 0);
}
