//! The controller's HTTP listener (`argosy run --listen`): `/healthz`, `/metrics`, the Git push
//! webhook and (with a token) the dashboard; every replica serves it, leader or not (a
//! follower's refresh warms its cache).

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;

/// Serves `routes` plus `/healthz` on `listen` until `shutdown` completes.
pub async fn serve(
    listen: SocketAddr,
    routes: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = routes.route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(%listen, "serving /healthz, /metrics, /api/webhook and the dashboard (when configured)");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")
}
