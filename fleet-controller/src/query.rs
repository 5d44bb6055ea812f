//! What the HTTP layer may ask of the controllers: one narrow, read-only trait, so the
//! dashboard never holds a controller's context and cannot reach anything that writes.
//!
//! [`Controllers`] answers it from the two controllers' contexts; the dashboard's tests
//! use the same type over offline contexts.

use std::sync::Arc;

use argosy_crds::{Application, ApplicationSet};
use argosy_generators::pipeline::Generated;
use argosy_sync_engine::clients::ClusterState;
use argosy_sync_engine::diff::Comparison;
use futures::FutureExt as _;
use futures::future::BoxFuture;

use crate::{application, appset};

/// A question the controllers could not answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Comparisons come from the built-in sync engine, which is off.
    #[error("diffs come from the built-in sync engine, which is off (--sync-engine argocd)")]
    SyncEngineOff,
    /// The sync engine could not observe or compare the Application.
    #[error("{0}")]
    Compare(String),
    /// The ApplicationSet's generators or templates failed.
    #[error("{0}")]
    Generate(String),
    /// The blocking generation task ended abnormally.
    #[error("generation task failed: {0}")]
    GenerationTask(#[from] tokio::task::JoinError),
}

/// Read-only questions the dashboard asks; nothing here writes to any API server.
pub trait ControllerQueries: Send + Sync {
    /// Connection state of every destination cluster, by server (empty when the built-in
    /// sync engine is off).
    fn cluster_states(&self) -> Vec<(String, ClusterState)>;

    /// The sync engine's comparison of `app` with its spec, as a reconcile would make it.
    fn compare(&self, app: Arc<Application>) -> BoxFuture<'static, Result<Comparison, QueryError>>;

    /// What `appset` generates now, as its reconcile would generate it.
    fn generate(
        &self,
        appset: Arc<ApplicationSet>,
    ) -> BoxFuture<'static, Result<Generated, QueryError>>;
}

/// The controllers' contexts behind [`ControllerQueries`].
pub struct Controllers {
    /// The ApplicationSet controller's context (generators' sources and options).
    pub appset: Arc<appset::Context>,
    /// The sync engine's context; `None` with `--sync-engine argocd`.
    pub sync: Option<Arc<application::Context>>,
}

impl ControllerQueries for Controllers {
    fn cluster_states(&self) -> Vec<(String, ClusterState)> {
        self.sync
            .as_ref()
            .map(|ctx| ctx.cluster_states())
            .unwrap_or_default()
    }

    fn compare(&self, app: Arc<Application>) -> BoxFuture<'static, Result<Comparison, QueryError>> {
        let sync = self.sync.clone();
        async move {
            let ctx = sync.ok_or(QueryError::SyncEngineOff)?;
            application::compare_app(&app, &ctx)
                .await
                .map_err(QueryError::Compare)
        }
        .boxed()
    }

    fn generate(
        &self,
        appset: Arc<ApplicationSet>,
    ) -> BoxFuture<'static, Result<Generated, QueryError>> {
        let ctx = self.appset.clone();
        async move {
            // Generators read Git and render templates: blocking work, off the async threads.
            tokio::task::spawn_blocking(move || {
                ctx.generate(&appset)
                    .map_err(|e| QueryError::Generate(e.to_string()))
            })
            .await?
        }
        .boxed()
    }
}
