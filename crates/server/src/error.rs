//! Errors of starting the proxy. Refusals of requests are not errors of the proxy: they are
//! answers ([`crate::decide::Refusal`]).

use std::path::PathBuf;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error(
        "no upstream registry: the trust policy names no registry scope; add one with \
         `ocituf trust add` or name registries with --upstream"
    )]
    NoUpstream,

    #[error("could not reach upstream registry {host}")]
    Upstream {
        host: String,
        #[source]
        source: ocituf_oci::registry::RegistryError,
    },

    #[error("could not read the TLS {what} {}", path.display())]
    TlsFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the TLS {what} {} holds no {what}", path.display())]
    TlsEmpty { what: &'static str, path: PathBuf },

    #[error("the TLS certificate and key cannot be used together")]
    Tls(#[source] tokio_rustls::rustls::Error),

    #[error("could not listen on {addr}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}
