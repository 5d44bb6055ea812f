//! The controller's HTTP listener (`argosy run --listen`): `/healthz`, `/readyz`,
//! `/metrics`, the Git push webhook and (with a token) the dashboard; every replica serves
//! it, leader or not (a follower's refresh warms its cache). Plain HTTP, or HTTPS with
//! `--tls-cert`/`--tls-key` ([`tls`]).
//!
//! * [`session`]: the dashboard's expiring, MACed session cookie;
//! * [`limit`]: failed-login limiting per client address;
//! * [`ready`]: what `/readyz` checks (caches listed, controller loops progressing).

pub mod limit;
pub mod ready;
pub mod session;
pub mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;

use self::ready::Readiness;

/// Why the listener could not serve.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("listening on {listen}: {source}")]
    Bind {
        listen: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP on {listen}: {source}")]
    Serve {
        listen: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The address a request came from (the TCP peer; proxies' headers are not trusted).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<axum::serve::IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<axum::serve::IncomingStream<'_, tls::TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// The client's IP address as the handlers see it: unspecified when the router is called
/// without a listener (tests), so those requests share one bucket.
pub type ClientAddr = Option<Extension<ConnectInfo<Peer>>>;

pub fn client_ip(addr: &ClientAddr) -> IpAddr {
    addr.as_ref().map_or(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        |Extension(ConnectInfo(peer))| peer.0.ip(),
    )
}

/// The token of an `Authorization: Bearer` header, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// 429 with `Retry-After` for a client that failed too often.
pub fn too_many(error: &limit::LimitError) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, error.retry_after_seconds().to_string())],
        error.to_string(),
    )
        .into_response()
}

/// `/healthz` (the process serves) and `/readyz` (see [`ready`]).
pub fn probes(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(readiness))
}

async fn readyz(State(readiness): State<Arc<Readiness>>) -> Response {
    match readiness.check(Instant::now()) {
        Ok(()) => "ok".into_response(),
        Err(e) => {
            tracing::debug!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    }
}

/// Serves `routes` on `listen` (over TLS with `tls`) until `shutdown` completes.
pub async fn serve(
    listen: SocketAddr,
    tls: Option<Arc<ServerConfig>>,
    routes: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    let tcp = TcpListener::bind(listen)
        .await
        .map_err(|source| HttpError::Bind { listen, source })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%listen, scheme, "serving /healthz, /readyz, /metrics, /api/webhook and the dashboard (when configured)");
    let app = routes.into_make_service_with_connect_info::<Peer>();
    let served = match tls {
        None => axum::serve(tcp, app).with_graceful_shutdown(shutdown).await,
        Some(config) => {
            let listener = tls::TlsListener::new(tcp, config)
                .map_err(|source| HttpError::Bind { listen, source })?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    served.map_err(|source| HttpError::Serve { listen, source })
}
