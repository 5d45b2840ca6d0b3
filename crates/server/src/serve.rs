//! Listening: plain HTTP, or TLS with a certificate chain and key from PEM files (runtimes
//! want TLS for a mirror that is not on loopback).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::error::ConfigError;
use crate::Proxy;

/// Longest TLS handshake a client gets.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The certificate chain and private key (PEM files) of the listening side.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The rustls acceptor for these files.
    ///
    /// # Errors
    /// [`ConfigError::TlsFile`], [`ConfigError::TlsEmpty`], [`ConfigError::Tls`].
    pub fn acceptor(&self) -> Result<TlsAcceptor, ConfigError> {
        let certs = read_pem(&self.cert, "certificate", |bytes| {
            CertificateDer::pem_slice_iter(bytes)
                .filter_map(Result::ok)
                .collect::<Vec<_>>()
        })?;
        let key = read_pem(&self.key, "private key", |bytes| {
            PrivateKeyDer::from_pem_slice(bytes)
                .ok()
                .into_iter()
                .collect()
        })?
        .into_iter()
        .next()
        .ok_or_else(|| ConfigError::TlsEmpty {
            what: "private key",
            path: self.key.clone(),
        })?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(ConfigError::Tls)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(ConfigError::Tls)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

fn read_pem<T>(
    path: &Path,
    what: &'static str,
    parse: impl Fn(&[u8]) -> Vec<T>,
) -> Result<Vec<T>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::TlsFile {
        what,
        path: path.to_owned(),
        source,
    })?;
    let items = parse(&bytes);
    if items.is_empty() {
        return Err(ConfigError::TlsEmpty {
            what,
            path: path.to_owned(),
        });
    }
    Ok(items)
}

/// Serve `proxy` on `listener` until `shutdown` completes: with TLS when `tls` is given.
///
/// # Errors
/// The TLS configuration's errors; [`ConfigError::Listen`] when accepting fails for good.
pub async fn serve(
    proxy: Arc<Proxy>,
    listener: TcpListener,
    tls: Option<&TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ConfigError> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let router = crate::http::router(proxy);
    let Some(tls) = tls else {
        return axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| ConfigError::Listen { addr, source });
    };
    let acceptor = tls.acceptor()?;
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait and go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            if let Err(e) = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
