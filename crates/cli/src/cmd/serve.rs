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
    // Leadership changes (leases taken, given up, fenced) are logged on stderr.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let signer = std::sync::Arc::new(ocituf_signer::Signer::launch(&config, &ctx.registry).await?);
    for name in signer.roots() {
        outln!("serving root of trust {name:?}");
    }
    if let (Some(id), Some(lease)) = (signer.replica_id(), signer.lease()) {
        outln!(
            "replica {id:?}: leases in PostgreSQL, {}s each",
            lease.as_secs()
        );
    }
    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let http = match config.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                fail(
                    ErrorKind::Config,
                    format!(
                        "could not listen on {addr} (listen in {}): {e}",
                        file.display()
                    ),
                )
            })?;
            outln!("listening on http://{}", listener.local_addr()?);
            let refresh = std::time::Duration::try_from(config.site_refresh)
                .unwrap_or(std::time::Duration::from_secs(30));
            let mut stopped = http_stopped;
            Some(tokio::spawn(ocituf_signer::http::serve(
                listener,
                signer.clone(),
                ctx.registry.clone(),
                refresh,
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            )))
        }
        None => None,
    };
    wait_for_stop().await?;
    outln!("stopping after the current batch");
    let _ = stop_http.send(true);
    if let Some(h) = http {
        h.await??;
    }
    match std::sync::Arc::into_inner(signer) {
        Some(s) => s.stop().await,
        None => {
            return Err(fail(
                ErrorKind::Config,
                "the HTTP endpoints still hold the signer; stopped without waiting for the batch"
                    .to_owned(),
            ))
        }
    }
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
