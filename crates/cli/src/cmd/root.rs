//! `ocituf root rotate` and `ocituf root sign`: new root versions signed by several key
//! holders at different times (the logic is `ocituf_writer::root`).

use ocituf_resolver::RepositoryReference;
use ocituf_tuf::crypto::PublicKey;
use ocituf_writer::keys;
use ocituf_writer::root::{RootOutcome, RotateRequest};
use time::OffsetDateTime;

use super::write::{load_signers, open_repo};
use super::Context;
use crate::cli::{RootCommand, RootRotateArgs, RootSignArgs};
use crate::when::expiry;

pub async fn run(ctx: &Context, cmd: RootCommand) -> anyhow::Result<()> {
    let outcome = match cmd {
        RootCommand::Rotate(a) => rotate(ctx, &a).await?,
        RootCommand::Sign(a) => sign(ctx, &a).await?,
    };
    match outcome {
        RootOutcome::Published { version, signatures: s } => outln!(
            "published root version {version} (signed by {}/{} current and {}/{} new root keys); clients follow it on their next refresh",
            s.current, s.current_threshold, s.new, s.new_threshold
        ),
        RootOutcome::Pending { version, content, signatures: s } => outln!(
            "root version {version} is pending: signed by {}/{} current and {}/{} new root keys; content {content}; other holders run `ocituf root sign --expect {content}`",
            s.current, s.current_threshold, s.new, s.new_threshold
        ),
    }
    Ok(())
}

async fn rotate(ctx: &Context, a: &RootRotateArgs) -> anyhow::Result<RootOutcome> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = open_repo(ctx, &repo_ref, &a.repo.name)?;
    ocituf_writer::root::check_rotatable(&a.role)?;
    let signers = load_signers(&a.keys)?;
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    let add_keys: Vec<PublicKey> = a
        .add_keys
        .iter()
        .map(|k| keys::load_public(k))
        .collect::<Result<_, _>>()?;
    let request = RotateRequest {
        role: &a.role,
        add_keys: &add_keys,
        remove_keys: &a.remove_keys,
        threshold: a.threshold,
        expires: expiry("expires", &a.expires, OffsetDateTime::now_utc())?,
        signers: &signers,
    };
    Ok(ocituf_writer::root::rotate(&repo, pin.as_ref(), &request).await?)
}

async fn sign(ctx: &Context, a: &RootSignArgs) -> anyhow::Result<RootOutcome> {
    let repo_ref = RepositoryReference::parse(&a.repo.repo)?;
    let repo = open_repo(ctx, &repo_ref, &a.repo.name)?;
    let signers = load_signers(&a.keys)?;
    let pin = crate::pin::resolve(ctx, &repo_ref, &a.repo.name, &a.pin)?;
    Ok(
        ocituf_writer::root::cosign_root(&repo, pin.as_ref(), &signers, a.expect.as_deref())
            .await?,
    )
}
