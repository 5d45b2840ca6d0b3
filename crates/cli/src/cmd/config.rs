//! `ocituf config podman|containerd|docker`: print the runtime configuration that makes the
//! proxy the only way to each upstream registry. The snippets themselves are built by
//! `ocituf_server::runtime_config`.

use ocituf_resolver::TrustPolicy;
use ocituf_server::runtime_config::{self, Endpoint};

use super::Context;
use crate::cli_serve::{ConfigArgs, Runtime};
use crate::failure::ResultExt as _;

pub fn run(ctx: &Context, a: &ConfigArgs) -> anyhow::Result<()> {
    let upstreams = if a.upstreams.is_empty() {
        let policy = TrustPolicy::load(&ctx.policy_file)?;
        ocituf_server::ProxyConfig::new(&ctx.cache_dir)
            .upstream_hosts(&policy)
            .config(|| "nothing to configure".to_owned())?
    } else {
        a.upstreams.clone()
    };
    let endpoint = Endpoint {
        proxy: a.proxy.clone(),
        plain_http: a.plain_http,
        ca_file: a.proxy_ca.clone(),
    };
    let text = match a.runtime {
        Runtime::Podman => runtime_config::podman(&endpoint, &upstreams),
        Runtime::Containerd => runtime_config::containerd(&endpoint, &upstreams),
        Runtime::Docker => runtime_config::docker(&endpoint, &upstreams),
    };
    out!("{text}");
    Ok(())
}
