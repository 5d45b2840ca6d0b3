//! One module per command group; [`run`] dispatches.

pub mod bundle;
mod config;
mod containerd_verifier;
mod key;
mod project;
mod proxy;
mod root;
mod serve;
mod sign;
mod site;
mod status;
mod trust;
mod verify;
mod write;

use ocituf_oci::registry::{RegistryOptions, Transport};
use ocituf_resolver::ErrorKind;

use crate::cli::{Cli, Command};
use crate::failure::fail;

/// Shared context of every command: where the policy and the cache are, and how registries
/// are reached.
pub struct Context {
    pub policy_file: std::path::PathBuf,
    pub cache_dir: std::path::PathBuf,
    pub registry: RegistryOptions,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    crate::progress::set_quiet(cli.quiet);
    let config_flag = cli.config.clone();
    let ctx = Context {
        policy_file: crate::paths::policy_file(cli.config.as_ref())?,
        cache_dir: crate::paths::cache_dir(cli.cache_dir.as_ref())?,
        registry: registry_options(&cli),
    };
    match cli.command {
        Command::Trust(c) => trust::run(&ctx, c),
        Command::Key(c) => key::run(c),
        Command::Init(a) => write::init(&ctx, &a).await,
        Command::Publish(a) => write::publish(&ctx, &a).await,
        Command::Serve(_) => serve::run(&ctx, config_flag.as_deref()).await,
        Command::Sign(a) => sign::sign(&ctx, &a, false).await,
        Command::Yank(a) => sign::sign(&ctx, &a, true).await,
        Command::Delegate(a) => write::delegate(&ctx, &a).await,
        Command::Project(c) => project::run_project(&ctx, c).await,
        Command::Maintainer(c) => project::run_maintainer(&ctx, c).await,
        Command::Cosign(a) => project::cosign(&ctx, &a).await,
        Command::Status(a) => status::run(&ctx, &a).await,
        Command::Site(a) => site::run(&ctx, &a).await,
        Command::Verify(a) => verify::run(&ctx, &a, false).await,
        Command::Resolve(a) => verify::run(&ctx, &a, true).await,
        Command::ExampleImage(a) => example_image(&ctx, &a).await,
        Command::Root(c) => root::run(&ctx, c).await,
        Command::Proxy(a) => proxy::run(&ctx, &a).await,
        Command::Config(a) => config::run(&ctx, &a),
        Command::ContainerdVerifier(a) => containerd_verifier::run(&ctx, &a).await,
        Command::Bundle(c) => bundle::run(&ctx, c).await,
    }
}

/// The registry options of the global flags (`--ca-file`, `--plain-http`), used by every
/// command that opens a registry.
///
/// Without flags: HTTPS, plain HTTP for loopback registries. A CA file says the registries
/// speak TLS with certificates of that CA, so it means HTTPS for loopback registries too
/// (the only way to reach a TLS registry on 127.0.0.1); `--plain-http` means plain HTTP
/// everywhere and wins.
fn registry_options(cli: &Cli) -> RegistryOptions {
    let transport = match (cli.plain_http, &cli.ca_file) {
        (true, _) => Transport::PlainHttp,
        (false, Some(_)) => Transport::Https,
        (false, None) => Transport::Auto,
    };
    RegistryOptions {
        transport,
        ca_file: cli.ca_file.clone(),
        ..RegistryOptions::default()
    }
}

async fn example_image(ctx: &Context, a: &crate::cli::ExampleImageArgs) -> anyhow::Result<()> {
    use crate::failure::ResultExt as _;
    let image = ocituf_resolver::ImageReference::parse(&a.image)?;
    let Some(tag) = &image.tag else {
        return Err(fail(
            ErrorKind::Config,
            format!("{} has no tag: example-image pushes to a tag", a.image),
        ));
    };
    let store = ocituf_resolver::store::open_with(&image.repo, &ctx.registry)?;
    let digest = ocituf_oci::example_image::push(&store, tag, &a.message)
        .await
        .network(|| format!("could not push the example image to {}", image.repo))?;
    outln!("{}", image.with_digest(digest));
    Ok(())
}
