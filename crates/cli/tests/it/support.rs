//! Running the `ocituf` binary in an isolated environment (its own config and cache dirs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One isolated user: a temporary HOME with its own policy and cache.
pub struct Env {
    pub dir: tempfile::TempDir,
    /// Environment variables set for every run (e.g. `OCITUF_CA_FILE`).
    pub vars: std::cell::RefCell<Vec<(String, String)>>,
}

/// What a run of `ocituf` printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a finished child printed and returned.
    pub fn from_output(out: &Output) -> Self {
        Self::from(out)
    }

    fn from(out: &Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Assert success and return stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        &self.stdout
    }

    /// Assert the exit code and that stderr contains every needle.
    #[track_caller]
    pub fn fails(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code, code, "wrong exit code: {self:#?}");
        for n in needles {
            assert!(self.stderr.contains(n), "stderr lacks {n:?}: {self:#?}");
        }
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ocituf")
}

impl Env {
    pub fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
            vars: std::cell::RefCell::default(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn policy(&self) -> PathBuf {
        self.path("config/ocituf/policy.toml")
    }

    pub fn command(&self) -> Command {
        self.command_with(Command::new(bin()))
    }

    /// `c` (e.g. `ocituf` under a wrapper such as `faketime` or `/usr/bin/time`) in this
    /// environment.
    pub fn command_with(&self, mut c: Command) -> Command {
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_CACHE_HOME", self.path("cache"));
        for (k, v) in self.vars.borrow().iter() {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(&self.command().args(args).output().unwrap())
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command();
        for (k, v) in env {
            c.env(k, v);
        }
        Run::from(&c.args(args).output().unwrap())
    }

    /// Write a file relative to the environment's directory.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// Compare `actual` with the golden file `testdata/cli/<rel>`; with `OCITUF_UPDATE_GOLDEN=1`
/// write it instead.
#[track_caller]
pub fn golden(rel: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/cli")
        .join(rel);
    if std::env::var_os("OCITUF_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} missing ({e}); create it with OCITUF_UPDATE_GOLDEN=1 cargo test -p ocituf",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the output (regenerate with OCITUF_UPDATE_GOLDEN=1 cargo test -p ocituf):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}
