//! One module per command group; [`run`] dispatches.

mod key;
mod root;
mod status;
mod trust;
mod verify;
mod write;

use ocituf_resolver::ErrorKind;

use crate::cli::{Cli, Command};
use crate::failure::fail;

/// Shared context of every command: where the policy and the cache are.
pub struct Context {
    pub policy_file: std::path::PathBuf,
    pub cache_dir: std::path::PathBuf,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    crate::progress::set_quiet(cli.quiet);
    let ctx = Context {
        policy_file: crate::paths::policy_file(cli.config.as_ref())?,
        cache_dir: crate::paths::cache_dir(cli.cache_dir.as_ref())?,
    };
    match cli.command {
        Command::Trust(c) => trust::run(&ctx, c),
        Command::Key(c) => key::run(c),
        Command::Init(a) => write::init(&a).await,
        Command::Publish(a) => write::publish(&ctx, &a).await,
        Command::Sign(a) => write::sign(&ctx, &a, false).await,
        Command::Yank(a) => write::sign(&ctx, &a, true).await,
        Command::Delegate(a) => write::delegate(&ctx, &a).await,
        Command::Status(a) => status::run(&ctx, &a).await,
        Command::Verify(a) => verify::run(&ctx, &a, false).await,
        Command::Resolve(a) => verify::run(&ctx, &a, true).await,
        Command::ExampleImage(a) => example_image(&a).await,
        Command::Root(c) => root::run(&ctx, c).await,
    }
}

async fn example_image(a: &crate::cli::ExampleImageArgs) -> anyhow::Result<()> {
    use crate::failure::ResultExt as _;
    let image = ocituf_resolver::ImageReference::parse(&a.image)?;
    let Some(tag) = &image.tag else {
        return Err(fail(
            ErrorKind::Config,
            format!("{} has no tag: example-image pushes to a tag", a.image),
        ));
    };
    let store = ocituf_resolver::store::open(&image.repo)?;
    let digest = crate::example_image::push(&store, tag, &a.message)
        .await
        .network(|| format!("could not push the example image to {}", image.repo))?;
    outln!("{}", image.with_digest(digest));
    Ok(())
}
