//! `ocituf proxy`: parse, start the `ocituf-server` proxy, print where it listens.

use std::time::Duration;

use ocituf_resolver::{ErrorKind, TrustPolicy};
use ocituf_server::{Proxy, ProxyConfig, TlsFiles};

use super::Context;
use crate::cli_serve::ProxyArgs;
use crate::failure::{fail, ResultExt as _};

fn duration(flag: &str, value: &str) -> anyhow::Result<Duration> {
    crate::when::parse_duration(value)
        .and_then(|d| u64::try_from(d.whole_seconds()).ok())
        .map(Duration::from_secs)
        .ok_or_else(|| {
            fail(
                ErrorKind::Config,
                format!("{flag} {value:?} is not a duration such as 60s, 5m or 1h"),
            )
        })
}

pub async fn run(ctx: &Context, a: &ProxyArgs) -> anyhow::Result<()> {
    // Decision logs on stderr; `--quiet` keeps warnings (refusals) only.
    let level = if crate::progress::is_quiet() {
        tracing::Level::WARN
    } else {
        tracing::Level::INFO
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();

    let policy = TrustPolicy::load(&ctx.policy_file)?;
    let mut config = ProxyConfig::new(&ctx.cache_dir);
    config.upstreams.clone_from(&a.upstreams);
    config.scope_modes.clone_from(&a.scope_modes);
    config.default_mode = a.unscoped;
    config.max_state_age = duration("--refresh-after", &a.refresh_after)?;
    config.registry = ctx.registry.clone();
    if let Some(file) = &a.auth_file {
        config.registry.credentials =
            ocituf_oci::registry::Credentials::DockerConfigFile(file.clone());
    }
    let proxy = Proxy::new(policy, config).config(|| "could not start the proxy".to_owned())?;
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    if let Some(t) = &tls {
        // Fail before listening when the files are unusable.
        t.acceptor()
            .config(|| "could not load the TLS certificate and key".to_owned())?;
    }
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .config(|| format!("could not listen on {}", a.listen))?;
    let addr = listener
        .local_addr()
        .config(|| format!("could not read the address of {}", a.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    outln!("listening on {scheme}://{addr}");
    eprintln!(
        "ocituf proxy on {scheme}://{addr} for {}",
        proxy.upstream_hosts().join(", ")
    );
    let stop_after = a
        .stop_after
        .as_deref()
        .map(|v| duration("--stop-after", v))
        .transpose()?;
    let shutdown = async move {
        match stop_after {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    ocituf_server::serve(proxy, listener, tls.as_ref(), shutdown)
        .await
        .config(|| format!("the proxy on {addr} stopped"))?;
    Ok(())
}
