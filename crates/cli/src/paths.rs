//! Where ocituf keeps its trust policy and its cache (XDG base directories).

use std::path::PathBuf;

use ocituf_resolver::ErrorKind;

use crate::failure::fail;

fn home_dir(var: &str, fallback: &str) -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(fallback)),
        None => Err(fail(
            ErrorKind::Config,
            format!("neither ${var} nor $HOME is set: pass the location explicitly"),
        )),
    }
}

/// The trust policy file: `--config`/`$OCITUF_CONFIG`, else `$XDG_CONFIG_HOME/ocituf/policy.toml`.
pub fn policy_file(explicit: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    match explicit {
        Some(p) => Ok(p.clone()),
        None => Ok(home_dir("XDG_CONFIG_HOME", ".config")?
            .join("ocituf")
            .join("policy.toml")),
    }
}

/// The cache directory: `--cache-dir`/`$OCITUF_CACHE_DIR`, else `$XDG_CACHE_HOME/ocituf`.
pub fn cache_dir(explicit: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    match explicit {
        Some(p) => Ok(p.clone()),
        None => Ok(home_dir("XDG_CACHE_HOME", ".cache")?.join("ocituf")),
    }
}
