//! `ocituf verify IMAGE` and `ocituf resolve IMAGE`.

use ocituf_resolver::{ImageReference, Resolver, TrustPolicy};

use super::Context;
use crate::cli::VerifyArgs;

pub async fn run(ctx: &Context, a: &VerifyArgs, resolve: bool) -> anyhow::Result<()> {
    let image = ImageReference::parse(&a.image)?;
    let policy = TrustPolicy::load(&ctx.policy_file)?;
    let resolver =
        Resolver::new(policy, &ctx.cache_dir).with_registry_options(ctx.registry.clone());
    let platform = a
        .platform
        .as_deref()
        .map(ocituf_resolver::platform::parse_platform)
        .transpose()?;
    let v = if a.offline.offline {
        super::bundle::resolve_offline(&resolver, &image, &a.offline).await?
    } else {
        resolver.resolve(&image).await?
    };
    if let Some(platform) = platform {
        let store = ocituf_resolver::store::open_with(&image.repo, &ctx.registry)?;
        let p = ocituf_resolver::platform_of_verified(&store, v, &platform).await?;
        return print_platform(a, &image, &p, resolve);
    }
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
                "metadata_bytes": v.metadata_bytes,
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

/// Output of `verify`/`resolve --platform`: the platform manifest to pull, and the signed
/// target it was reached through.
fn print_platform(
    a: &VerifyArgs,
    image: &ImageReference,
    p: &ocituf_resolver::VerifiedPlatformDigest,
    resolve: bool,
) -> anyhow::Result<()> {
    use ocituf_resolver::platform::DisplayPlatform;
    let v = &p.verified;
    let platform = DisplayPlatform(&p.platform).to_string();
    let via_index = matches!(p.selection, ocituf_resolver::Selection::Index { .. });
    if a.output.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "image": a.image,
                "verified": true,
                "platform": platform,
                "digest": p.manifest.as_str(),
                "pinned": image.with_digest(p.manifest.clone()).to_string(),
                "manifest_size": p.manifest_size,
                "signed_digest": v.digest.as_str(),
                "signed_is_index": via_index,
                "target": v.target,
                "role": v.role,
                "role_version": v.role_version,
                "root_of_trust": v.root_of_trust,
                "repository": v.repository.to_string(),
                "versions": v.versions,
            }))?
        );
    } else if resolve {
        outln!("{}", image_with_digest(&a.image, &p.manifest));
    } else {
        outln!("{}", p.manifest);
        let how = if via_index {
            format!("listed for {platform} by the signed index {}", v.digest)
        } else {
            format!("a single-arch image, signed as is, for {platform}")
        };
        eprintln!(
            "verified {} ({}) by targets role {:?} v{} of root of trust {:?}: {how}",
            a.image, v.target, v.role, v.role_version, v.root_of_trust
        );
    }
    Ok(())
}
