//! `ocituf containerd-verifier`: the containerd 2 image-verifier protocol. Parses what
//! containerd passes, calls `ocituf_server::containerd::judge`, prints the reason on stdout
//! and exits 0 only to allow.

use std::io::Read as _;
use std::time::Duration;

use ocituf_resolver::{ErrorKind, Resolver, TrustPolicy};
use ocituf_server::containerd::{self, DecisionCache};

use super::Context;
use crate::cli_serve::ContainerdVerifierArgs;
use crate::failure::fail;

pub async fn run(ctx: &Context, a: &ContainerdVerifierArgs) -> anyhow::Result<()> {
    let call = containerd::parse_args(&a.protocol).map_err(|e| {
        fail(
            ErrorKind::Config,
            format!("containerd-verifier: {e} (containerd passes -name REF -digest DIGEST)"),
        )
    })?;
    let ttl = crate::when::parse_duration(&a.decision_ttl)
        .and_then(|d| u64::try_from(d.whole_seconds()).ok())
        .map(Duration::from_secs)
        .ok_or_else(|| {
            fail(
                ErrorKind::Config,
                format!(
                    "--decision-ttl {:?} is not a duration such as 30s",
                    a.decision_ttl
                ),
            )
        })?;
    let mut stdin = Vec::new();
    std::io::stdin()
        .take(2 * 1024 * 1024)
        .read_to_end(&mut stdin)
        .map_err(|e| {
            fail(
                ErrorKind::Config,
                format!("could not read the descriptor on stdin: {e}"),
            )
        })?;
    let policy = TrustPolicy::load(&ctx.policy_file)?;
    let resolver =
        Resolver::new(policy, &ctx.cache_dir).with_registry_options(ctx.registry.clone());
    let cache = DecisionCache::new(
        ctx.cache_dir.join("containerd-verifier/decisions.json"),
        ttl,
    );
    let judgement = containerd::judge(
        &resolver,
        &call,
        &stdin,
        Some(&cache),
        time::OffsetDateTime::now_utc(),
    )
    .await;
    // stdout is the reason containerd shows; it logs stderr at debug level.
    outln!("{}", judgement.reason);
    if judgement.allow {
        Ok(())
    } else {
        Err(fail(judgement.kind, judgement.reason))
    }
}
