//! `ocituf project create` and `ocituf maintainer add|remove|list` (the logic is
//! `ocituf_writer::project`).

use ocituf_resolver::RepositoryReference;
use ocituf_tuf::crypto::PublicKey;
use ocituf_writer::delegate::DelegateRequest;
use ocituf_writer::keys;
use ocituf_writer::project::{short, Change, Maintainers, Who};
use serde_json::json;
use time::OffsetDateTime;

use super::write::{load_signers, open_repo};
use super::Context;
use crate::cli_project::{
    CosignArgs, MaintainerChangeArgs, MaintainerCommand, MaintainerListArgs, ProjectCommand,
    ProjectCreateArgs,
};
use crate::when::expiry;

pub async fn run_project(ctx: &Context, cmd: ProjectCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectCommand::Create(a) => create(ctx, &a).await,
    }
}

pub async fn run_maintainer(ctx: &Context, cmd: MaintainerCommand) -> anyhow::Result<()> {
    match cmd {
        MaintainerCommand::Add(a) => change(ctx, &a, true).await,
        MaintainerCommand::Remove(a) => change(ctx, &a, false).await,
        MaintainerCommand::List(a) => list(ctx, &a).await,
    }
}

async fn create(ctx: &Context, a: &ProjectCreateArgs) -> anyhow::Result<()> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = open_repo(ctx, &repo_ref, &a.repo.name)?;
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    let expires = expiry("expires", &a.expires, OffsetDateTime::now_utc())?;
    let team: Vec<PublicKey> = a
        .maintainers
        .iter()
        .map(|k| keys::load_public(k))
        .collect::<Result<_, _>>()?;
    let signers = load_signers(&a.signing_keys)?;
    let request = DelegateRequest {
        from: &a.from,
        role: &a.project,
        keys: &team,
        threshold: a.threshold,
        terminating: a.terminating,
        paths: &a.paths,
        signing_keys: &signers,
        expires,
        hash_bins: None,
    };
    let d = ocituf_writer::project::create(&repo, pin.as_ref(), &request).await?;
    outln!(
        "created project {:?}: {} signed by {} of {} maintainers, in {:?} version {}",
        a.project,
        d.paths.join(", "),
        a.threshold,
        d.keyids.len(),
        a.from,
        d.from_version
    );
    Ok(())
}

async fn change(ctx: &Context, a: &MaintainerChangeArgs, add: bool) -> anyhow::Result<()> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = open_repo(ctx, &repo_ref, &a.repo.name)?;
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    let expires = expiry("expires", &a.expires, OffsetDateTime::now_utc())?;
    let signers = load_signers(&a.signing_keys)?;
    let is_prefix = !add
        && a.key.len() >= 8
        && a.key.bytes().all(|b| b.is_ascii_hexdigit())
        && !std::path::Path::new(&a.key).exists();
    let key = if is_prefix {
        None
    } else {
        Some(keys::load_public(&a.key)?)
    };
    let remove = match (&key, add) {
        (_, true) => None,
        (Some(k), false) => Some(Who::Key(k)),
        (None, false) => Some(Who::KeyIdPrefix(&a.key)),
    };
    let c = Change {
        project: &a.project,
        add: if add { key.as_ref() } else { None },
        remove,
        threshold: a.threshold,
        signing_keys: &signers,
        expires,
    };
    let m = ocituf_writer::project::change(&repo, pin.as_ref(), &c).await?;
    outln!(
        "{} a maintainer of project {:?}: now {} of {} maintainers, in {:?} version {}",
        if add { "added" } else { "removed" },
        a.project,
        m.threshold,
        m.keys.len(),
        m.from,
        m.from_version
    );
    Ok(())
}

async fn list(ctx: &Context, a: &MaintainerListArgs) -> anyhow::Result<()> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = open_repo(ctx, &repo_ref, &a.repo.name)?;
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    let m: Maintainers = ocituf_writer::project::list(&repo, pin.as_ref(), &a.project).await?;
    if a.json {
        let keys: Vec<_> = m
            .keys
            .iter()
            .map(|(id, k)| json!({"keyid": id.as_str(), "keytype": k.keytype, "scheme": k.scheme}))
            .collect();
        outln!(
            "{}",
            json!({
                "project": a.project,
                "delegated_by": m.from,
                "delegated_by_version": m.from_version,
                "threshold": m.threshold,
                "paths": m.paths,
                "maintainers": keys,
            })
        );
        return Ok(());
    }
    outln!(
        "project {:?} ({}): {} of {} maintainers, delegated by {:?} version {}",
        a.project,
        m.paths.join(", "),
        m.threshold,
        m.keys.len(),
        m.from,
        m.from_version
    );
    for (id, k) in &m.keys {
        outln!("  {}  {}", short(id), k.keytype);
    }
    Ok(())
}

pub async fn cosign(ctx: &Context, a: &CosignArgs) -> anyhow::Result<()> {
    use ocituf_writer::cosign::Outcome;
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = open_repo(ctx, &repo_ref, &a.repo.name)?;
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    let signers = load_signers(&a.keys)?;
    let outcome =
        ocituf_writer::cosign::cosign(&repo, pin.as_ref(), &a.role, &signers, a.expect.as_deref())
            .await?;
    match outcome {
        Outcome::Published { version, signatures, threshold } => outln!(
            "role {:?} version {version} is signed ({signatures}/{threshold}); run `ocituf publish` (or let the online signer) to make it visible to clients",
            a.role
        ),
        Outcome::Pending { version, content, signatures, threshold } => outln!(
            "role {:?} version {version} is pending: {signatures}/{threshold} signatures; content {content}; other maintainers run `ocituf cosign --role {} --expect {content}`",
            a.role, a.role
        ),
    }
    Ok(())
}
