//! HTTPS for the listener (`--tls-cert`, `--tls-key`): rustls with the aws-lc-rs provider
//! kube already uses (no second crypto provider), HTTP/1.1 over TLS 1.2 and 1.3.
//!
//! Handshakes run in their own tasks, at most 128 at once and each within 10 s, so a client that connects and sends nothing cannot hold up the
//! others (axum accepts connections one at a time).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// Handshakes in progress at most; further connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 128;
/// A handshake that takes longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the certificate or key could not be used. (Messages name the flag and file; the
/// cause follows through `source`, as `main` prints errors with their chain.)
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert {}: reading", path.display())]
    ReadCert {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--tls-key {}: reading", path.display())]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--tls-cert {}: no PEM CERTIFICATE block ({message})", path.display())]
    ParseCert { path: PathBuf, message: String },
    #[error("--tls-key {}: no PEM private key block ({message})", path.display())]
    ParseKey { path: PathBuf, message: String },
    #[error("--tls-cert {} / --tls-key {}: building the TLS configuration", cert.display(), key.display())]
    BuildConfig {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// The server configuration from a PEM certificate chain and its PEM private key.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_pem = std::fs::read(cert).map_err(|source| TlsError::ReadCert {
        path: cert.to_owned(),
        source,
    })?;
    let key_pem = std::fs::read(key).map_err(|source| TlsError::ReadKey {
        path: key.to_owned(),
        source,
    })?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::ParseCert {
            path: cert.to_owned(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::ParseCert {
            path: cert.to_owned(),
            message: "the file holds none".into(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::ParseKey {
        path: key.to_owned(),
        message: e.to_string(),
    })?;
    let build = |source| TlsError::BuildConfig {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    };
    // The provider is named, not taken from the process default: with two providers
    // in the tree rustls could not pick one.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(build)?
        .with_no_client_auth()
        // Checks that the key belongs to the certificate.
        .with_single_cert(chain, private_key)
        .map_err(build)?;
    // The listener speaks HTTP/1.1 only (axum's `http1` feature).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP listener that hands axum connections whose TLS handshake has completed.
pub struct TlsListener {
    connections:
        tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, connections) = tokio::sync::mpsc::channel(MAX_HANDSHAKES);
        let acceptor = TlsAcceptor::from(config);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let accepting = tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = tokio::select! {
                    // axum dropped the listener (shutdown): stop accepting.
                    () = tx.closed() => return,
                    accepted = tcp.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of file descriptors and the like: wait, as axum does.
                            tracing::debug!(error = %e, "accepting a TLS connection");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            connections,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accepting task never ends while the listener exists (the sender lives
            // in it); should it, accept nothing more rather than spin.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let text = |e: TlsError| e.to_string();
        let e = text(load(&missing, &garbage).unwrap_err());
        assert!(
            e.starts_with("--tls-cert ") && e.contains("missing.pem"),
            "{e}"
        );
        let e = text(load(&garbage, &missing).unwrap_err());
        assert!(
            e.starts_with("--tls-key ") && e.contains("missing.pem"),
            "{e}"
        );
        let e = text(load(&garbage, &garbage).unwrap_err());
        assert!(e.contains("no PEM CERTIFICATE block"), "{e}");
    }
}
