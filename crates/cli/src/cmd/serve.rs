//! `ocituf serve`: read the signer's configuration, start it (crates/signer), print what it
//! serves, and stop it on SIGINT or SIGTERM.

use ocituf_resolver::ErrorKind;

use crate::cmd::Context;
use crate::failure::fail;

/// `config`: the global `--config` flag, which for `serve` names the signer's configuration.
pub async fn run(ctx: &Context, config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let Some(file) = config else {
        return Err(fail(
            ErrorKind::Config,
            "ocituf serve needs --config signer.toml (see docs/signer.md)".to_owned(),
        ));
    };
    let config = ocituf_signer::Config::load(file)?;
    let signer = ocituf_signer::Signer::start(&config, &ctx.registry)?;
    for name in signer.roots() {
        outln!("serving root of trust {name:?}");
    }
    wait_for_stop().await?;
    outln!("stopping after the current batch");
    signer.stop().await;
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM (`kill`, Kubernetes).
async fn wait_for_stop() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
