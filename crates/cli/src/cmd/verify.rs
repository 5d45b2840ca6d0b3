//! `ocituf verify IMAGE` and `ocituf resolve IMAGE`.

use ocituf_resolver::{ImageReference, Resolver, TrustPolicy};

use super::Context;
use crate::cli::VerifyArgs;

pub async fn run(ctx: &Context, a: &VerifyArgs, resolve: bool) -> anyhow::Result<()> {
    let image = ImageReference::parse(&a.image)?;
    let policy = TrustPolicy::load(&ctx.policy_file)?;
    let resolver =
        Resolver::new(policy, &ctx.cache_dir).with_registry_options(ctx.registry.clone());
    let v = if a.offline.offline {
        super::bundle::resolve_offline(&resolver, &image, &a.offline).await?
    } else {
        resolver.resolve(&image).await?
    };
    if a.output.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "image": a.image,
                "verified": true,
                "digest": v.digest.as_str(),
                "pinned": v.pinned().to_string(),
                "length": v.length,
                "media_type": v.media_type,
                "target": v.target,
                "role": v.role,
                "role_version": v.role_version,
                "root_of_trust": v.root_of_trust,
                "repository": v.repository.to_string(),
                "versions": v.versions,
                "metadata_requests": v.metadata_requests,
                "registry_requests": v.registry_requests,
            }))?
        );
    } else if resolve {
        outln!("{}", image_with_digest(&a.image, &v.digest));
    } else {
        outln!("{}", v.digest);
        eprintln!(
            "verified {} ({}) by targets role {:?} v{} of root of trust {:?}",
            a.image, v.target, v.role, v.role_version, v.root_of_trust
        );
    }
    Ok(())
}

/// The image as the user wrote it, pinned to the digest (`IMAGE@sha256:…`), without
/// repeating a digest that is already there.
fn image_with_digest(input: &str, digest: &ocituf_oci::Digest) -> String {
    let base = match input.rfind('@') {
        Some(i) if !input[..i].is_empty() && input[i + 1..].starts_with("sha256:") => &input[..i],
        _ => input,
    };
    format!("{base}@{digest}")
}
