//! `ocituf trust add|list|remove`: the client's trust policy.

use anyhow::Context as _;
use ocituf_oci::Digest;
use ocituf_resolver::{ErrorKind, RepositoryReference, RootPin, Scope, TrustEntry, TrustPolicy};

use super::Context;
use crate::cli::{TrustAddArgs, TrustCommand, TrustRemoveArgs};
use crate::failure::{fail, ResultExt as _};

pub fn run(ctx: &Context, cmd: TrustCommand) -> anyhow::Result<()> {
    match cmd {
        TrustCommand::Add(a) => add(ctx, &a),
        TrustCommand::List(a) => list(ctx, a.output.json),
        TrustCommand::Remove(a) => remove(ctx, &a),
    }
}

/// A root file must at least look like TUF root metadata; verification happens on use.
fn check_root_file(bytes: &[u8], path: &std::path::Path) -> anyhow::Result<()> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .config(|| format!("the pinned root {} is not JSON", path.display()))?;
    if value.pointer("/signed/_type").and_then(|t| t.as_str()) != Some("root") {
        return Err(fail(
            ErrorKind::Config,
            format!(
                "the pinned root {} is not TUF root metadata (signed._type is not \"root\"); \
                 pin the root.json that `ocituf init --out-root` wrote",
                path.display()
            ),
        ));
    }
    Ok(())
}

fn add(ctx: &Context, a: &TrustAddArgs) -> anyhow::Result<()> {
    let scope = Scope::parse(&a.scope)?.absolute();
    let repository = RepositoryReference::parse(&a.repo)?.absolute();
    ocituf_resolver::policy::check_root_of_trust_name(&a.name)
        .map_err(|r| fail(ErrorKind::Config, r))?;
    let mut policy = TrustPolicy::load(&ctx.policy_file)?;
    let mut pin = RootPin {
        file: None,
        sha256: a.root_sha256.clone(),
    };
    if let Some(hex) = &a.root_sha256 {
        Digest::parse(&format!("sha256:{hex}")).map_err(|_| {
            fail(
                ErrorKind::Config,
                format!("--root-sha256 {hex:?} is not 64 lowercase hex digits"),
            )
        })?;
    }
    if let Some(file) = &a.root {
        let bytes = std::fs::read(file)
            .config(|| format!("could not read the root file {}", file.display()))?;
        check_root_file(&bytes, file)?;
        let digest = Digest::of(&bytes);
        if let Some(hex) = &a.root_sha256 {
            if hex != digest.hex() {
                return Err(fail(
                    ErrorKind::Config,
                    format!(
                        "the root file {} has sha256 {}, not the --root-sha256 given ({hex})",
                        file.display(),
                        digest.hex()
                    ),
                ));
            }
        }
        // Keep a copy next to the policy: the pin must not vanish with a temporary file.
        let dir = ctx
            .policy_file
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("roots");
        std::fs::create_dir_all(&dir).config(|| format!("could not create {}", dir.display()))?;
        let copy = dir.join(format!("{}-{}.root.json", a.name, &digest.hex()[..16]));
        std::fs::write(&copy, &bytes).config(|| format!("could not write {}", copy.display()))?;
        pin.file = Some(copy);
        pin.sha256 = Some(digest.hex().to_owned());
    }
    policy.add(TrustEntry {
        scope: scope.clone(),
        repository: repository.clone(),
        root_of_trust: a.name.clone(),
        root: pin,
    })?;
    policy
        .save(&ctx.policy_file)
        .context("the trust policy was not changed")?;
    eprintln!(
        "trusting root of trust {:?} in {repository} for {scope} (policy {})",
        a.name,
        ctx.policy_file.display()
    );
    Ok(())
}

fn list(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let policy = TrustPolicy::load(&ctx.policy_file)?;
    if json {
        let entries: Vec<_> = policy
            .entries()
            .iter()
            .map(|e| {
                serde_json::json!({
                    "scope": e.scope.to_string(),
                    "repository": e.repository.to_string(),
                    "root_of_trust": e.root_of_trust,
                    "root": e.root.file.as_ref().map(|f| f.display().to_string()),
                    "root_sha256": e.root.sha256,
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "policy": ctx.policy_file.display().to_string(),
                "trust": entries,
            }))?
        );
        return Ok(());
    }
    if policy.entries().is_empty() {
        outln!(
            "no roots of trust in {} (add one with `ocituf trust add`)",
            ctx.policy_file.display()
        );
        return Ok(());
    }
    for e in policy.entries() {
        outln!("{}", e.scope);
        outln!("  repository:    {}", e.repository);
        outln!("  root of trust: {}", e.root_of_trust);
        if let Some(f) = &e.root.file {
            outln!("  pinned root:   {}", f.display());
        }
        if let Some(h) = &e.root.sha256 {
            outln!("  root sha256:   {h}");
        }
    }
    Ok(())
}

fn remove(ctx: &Context, a: &TrustRemoveArgs) -> anyhow::Result<()> {
    let mut policy = TrustPolicy::load(&ctx.policy_file)?;
    let scope = Scope::parse(&a.scope)?;
    let removed = policy
        .remove(&scope)
        .or_else(|_| policy.remove(&scope.absolute()))?;
    policy
        .save(&ctx.policy_file)
        .context("the trust policy was not changed")?;
    eprintln!(
        "removed {} (root of trust {:?} in {})",
        removed.scope, removed.root_of_trust, removed.repository
    );
    Ok(())
}
