//! The grammar of the commands that put ocituf in front of container runtimes: `proxy` and
//! `config` (kept apart from `cli.rs`, which holds the signing and verifying commands).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Address to listen on (port 0: the kernel picks one; the address is printed)
    #[arg(long, default_value = "127.0.0.1:5005", value_name = "ADDR")]
    pub listen: String,
    /// An upstream registry host to front; repeat for several [default: every registry
    /// host of the trust policy's scopes]
    #[arg(long = "upstream", value_name = "HOST")]
    pub upstreams: Vec<String>,
    /// What to do with images no root of trust covers: enforce (refuse), warn (serve and
    /// log), allow (serve)
    #[arg(long, default_value = "enforce", value_name = "MODE")]
    pub unscoped: ocituf_server::Mode,
    /// The mode of one scope without a root of trust (registry.example.com/library/*=warn);
    /// repeat for several; the most specific scope wins
    #[arg(long = "scope-mode", value_name = "SCOPE=MODE")]
    pub scope_modes: Vec<ocituf_server::ScopeMode>,
    /// Longest time trusted metadata is used before it is refreshed (never past its expiry)
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub refresh_after: String,
    /// TLS certificate chain (PEM) of the listening side
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of the listening side
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Credentials for the upstream and metadata registries: a Docker config file (podman's
    /// auth.json has the same form) [default: $DOCKER_CONFIG/config.json or
    /// ~/.docker/config.json]
    #[arg(
        long,
        env = "REGISTRY_AUTH_FILE",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub auth_file: Option<PathBuf>,
    /// Stop after this long (for tests and benchmarks)
    #[arg(long, value_name = "DURATION")]
    pub stop_after: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// /etc/containers/registries.conf (podman, CRI-O, skopeo, buildah)
    Podman,
    /// /etc/containerd/certs.d/HOST/hosts.toml
    Containerd,
    /// /etc/docker/daemon.json
    Docker,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The runtime to configure
    #[arg(value_enum)]
    pub runtime: Runtime,
    /// The proxy's address as the runtime reaches it (HOST:PORT)
    #[arg(long, value_name = "HOST:PORT")]
    pub proxy: String,
    /// An upstream registry host to send through the proxy; repeat for several [default:
    /// every registry host of the trust policy's scopes]
    #[arg(long = "upstream", value_name = "HOST")]
    pub upstreams: Vec<String>,
    /// The proxy serves plain HTTP (loopback only; runtimes want TLS elsewhere)
    #[arg(long)]
    pub plain_http: bool,
    /// CA certificate of the proxy's TLS certificate, for containerd's `ca`
    #[arg(long, value_name = "FILE")]
    pub proxy_ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ContainerdVerifierArgs {
    /// How long an allow decision is reused without asking the registry (never past the
    /// metadata's expiry; 0s: never)
    #[arg(
        long,
        env = "OCITUF_VERIFIER_DECISION_TTL",
        default_value = "30s",
        value_name = "DURATION"
    )]
    pub decision_ttl: String,
    /// What containerd passes: -name REF -digest DIGEST -stdin-media-type TYPE (the
    /// descriptor on stdin)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..,
        value_name = "PROTOCOL"
    )]
    pub protocol: Vec<String>,
}
