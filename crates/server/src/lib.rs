//! The verifying proxy: a read-only OCI distribution endpoint in front of registries, that
//! serves a manifest only when a TUF root of trust signed it.
//!
//! Runtimes that accept no third-party verifier (podman, CRI-O, containerd, Docker) pull
//! through it as a registry mirror. Per request it asks the upstream once, checks the exact
//! bytes against the trusted metadata and serves those bytes, or answers an OCI error
//! (`DENIED`) whose message names the role, version and digests.
//!
//! It does not: sign, write to a registry, verify blobs (they are content-addressed; the
//! runtime checks them against the digests of the verified manifest), or serve tag lists
//! and referrers. The TUF and OCI checks are the `ocituf-resolver` library's; this crate
//! adds the shared state, the HTTP face and the counters.
//!
//! Modules: [`config`] (upstreams, modes of scopes without a root of trust), [`containerd`]
//! (the containerd 2 image-verifier protocol and its decision cache), [`roots`] (one
//! trusted state per root of trust, shared by every request), [`decide`] (which manifests
//! are served), [`http`] (the routes), [`metrics`] (Prometheus counters), [`runtime_config`] (the
//! podman, containerd and Docker snippets that route pulls through it), [`serve`]
//! (listening, TLS), [`error`].
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![allow(clippy::result_large_err)]

pub mod config;
pub mod containerd;
pub mod decide;
pub mod error;
pub mod http;
pub mod metrics;
pub mod roots;
pub mod runtime_config;
pub mod serve;

use std::sync::Arc;
use std::time::Duration;

use ocituf_oci::registry::RegistryClient;
use ocituf_resolver::{Resolver, TrustPolicy};

pub use config::{Mode, ProxyConfig, ScopeMode};
pub use decide::{Allowed, Refusal};
pub use error::ConfigError;
pub use serve::{serve, TlsFiles};

/// Longest time one upstream request may take, body included (a large blob streams within
/// it); stalls are cut earlier by the read timeout.
const UPSTREAM_REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// The proxy: configuration, shared trusted state, upstream clients, counters.
pub struct Proxy {
    pub(crate) config: ProxyConfig,
    pub(crate) roots: roots::Roots,
    /// (host, client), one connection pool and token cache per upstream registry.
    upstreams: Vec<(String, RegistryClient)>,
    pub(crate) metrics: Arc<metrics::Metrics>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("upstreams", &self.upstream_hosts())
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy over `policy` with `config`.
    ///
    /// # Errors
    /// [`ConfigError::NoUpstream`] when there is nothing to front, [`ConfigError::Upstream`]
    /// when an upstream's client cannot be made (a bad CA file).
    pub fn new(policy: TrustPolicy, config: ProxyConfig) -> Result<Arc<Self>, ConfigError> {
        let hosts = config.upstream_hosts(&policy)?;
        let upstream_opts = ocituf_oci::RegistryOptions {
            request_timeout: UPSTREAM_REQUEST_TIMEOUT,
            ..config.registry.clone()
        };
        let upstreams = hosts
            .into_iter()
            .map(|host| {
                RegistryClient::new(&host, upstream_opts.clone())
                    .map(|c| (host.clone(), c))
                    .map_err(|source| ConfigError::Upstream { host, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let resolver =
            Resolver::new(policy, &config.cache_dir).with_registry_options(config.registry.clone());
        Ok(Arc::new(Proxy {
            roots: roots::Roots::new(resolver, config.max_state_age),
            config,
            upstreams,
            metrics: Arc::default(),
        }))
    }

    /// The upstream registry hosts, in routing order.
    pub fn upstream_hosts(&self) -> Vec<&str> {
        self.upstreams.iter().map(|(h, _)| h.as_str()).collect()
    }

    /// The counters in the Prometheus text format (what `/metrics` serves).
    pub fn metrics_text(&self) -> String {
        self.metrics.render(&self.roots)
    }

    /// Refreshes of trusted metadata so far, over every root of trust.
    pub fn refreshes(&self) -> u64 {
        self.roots
            .slots()
            .iter()
            .map(|s| s.refreshes.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn shared_metrics(&self) -> &Arc<metrics::Metrics> {
        &self.metrics
    }

    /// The upstream and repository a request name selects (see [`http`]).
    pub(crate) fn route<'n>(
        &self,
        name: &'n str,
        ns: Option<&str>,
    ) -> Result<(String, RegistryClient, &'n str), Refusal> {
        if let Some((first, rest)) = name.split_once('/') {
            if let Some((h, c)) = self
                .upstreams
                .iter()
                .find(|(h, _)| config::route_prefix(h) == first || h == first)
            {
                return Ok((h.clone(), c.clone(), rest));
            }
        }
        if let Some(ns) = ns {
            if let Some((h, c)) = self.upstreams.iter().find(|(h, _)| h == ns) {
                return Ok((h.clone(), c.clone(), name));
            }
        }
        if let [(h, c)] = self.upstreams.as_slice() {
            return Ok((h.clone(), c.clone(), name));
        }
        let known: Vec<String> = self
            .upstreams
            .iter()
            .map(|(h, _)| config::route_prefix(h))
            .collect();
        Err(Refusal {
            status: 404,
            code: "NAME_UNKNOWN",
            message: format!(
                "{name} names no upstream registry of this proxy: start the name with one of {}",
                known.join(", ")
            ),
        })
    }
}
