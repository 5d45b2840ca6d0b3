//! The pinned root every command that reads or writes a root of trust checks the registry's
//! root chain against: `--root FILE`, else the trust policy entry for the repository and
//! name (or for the image), else a refusal. Without a pin a registry that swapped the whole
//! root chain would get an operator to sign on top of an attacker's root.

use ocituf_resolver::{ErrorKind, RepositoryReference, TrustEntry, TrustPolicy};

use crate::cli::PinArgs;
use crate::cmd::Context;
use crate::failure::{fail, ResultExt as _};

pub use ocituf_writer::Pin;

fn read(path: &std::path::Path) -> anyhow::Result<Pin> {
    let bytes = std::fs::read(path)
        .config(|| format!("could not read the pinned root {}", path.display()))?;
    Ok(Pin::Bytes(bytes))
}

/// The pin a trust policy entry holds: its root file, else its sha256.
pub fn of_entry(entry: &TrustEntry) -> anyhow::Result<Option<Pin>> {
    if let Some(f) = &entry.root.file {
        return read(f).map(Some);
    }
    Ok(entry.root.sha256.clone().map(Pin::Sha256))
}

/// The pin for root of trust `name` in `repo`: `--root`, else the trust policy entry with
/// that repository and name. With neither, a configuration error that says what to pass,
/// unless `--danger-trust-on-first-use` (then `None`: trust the registry's root version 1).
pub fn resolve(
    ctx: &Context,
    repo: &RepositoryReference,
    name: &str,
    a: &PinArgs,
) -> anyhow::Result<Option<Pin>> {
    if let Some(f) = &a.root {
        return read(f).map(Some);
    }
    let policy = TrustPolicy::load(&ctx.policy_file)?;
    // Layout directories compare absolute: `oci:registry:` and `oci:/home/me/registry:`.
    let same = |r: &RepositoryReference| {
        r.repository == repo.repository && r.location.absolute() == repo.location.absolute()
    };
    for e in policy.entries() {
        if same(&e.repository) && e.root_of_trust == name {
            if let Some(p) = of_entry(e)? {
                return Ok(Some(p));
            }
        }
    }
    if a.danger_trust_on_first_use {
        eprintln!(
            "warning: --danger-trust-on-first-use: trusting whatever root version 1 {repo} serves for {name:?}"
        );
        return Ok(None);
    }
    Err(fail(ErrorKind::Config, missing_pin_message(repo, name)))
}

/// What to say when no pin exists for `name` in `repo`.
pub fn missing_pin_message(repo: &RepositoryReference, name: &str) -> String {
    format!(
        "no pinned root for {name:?} in {repo}: pass --root {name}.root.json (the file \
         `ocituf init --out-root` wrote), or pin it once with `ocituf trust add SCOPE --repo {repo} \
         --name {name} --root {name}.root.json`; --danger-trust-on-first-use trusts whatever root \
         the registry serves"
    )
}
