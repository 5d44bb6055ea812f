//! What the HTTP layer may ask of the controllers: one narrow, read-only trait, so the
//! dashboard never holds a controller's context and cannot reach anything that writes.
//!
//! [`Controllers`] answers it from the two controllers' contexts; the dashboard's tests
//! use the same type over offline contexts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use argosy_crds::{Application, ApplicationSet};
use argosy_generators::pipeline::Generated;
use argosy_sync_engine::clients::ClusterState;
use argosy_sync_engine::diff::Comparison;
use argosy_sync_engine::fleet_plan::collect::{FleetPlan, PlanRequest, PlanSources, plan};
use futures::FutureExt as _;
use futures::future::BoxFuture;

use crate::{application, appset, defaults};

/// Plans computed at once (each renders a whole fleet twice on the blocking threads):
/// more wait for nobody, they are refused.
static PLANS_RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A question the controllers could not answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Comparisons come from the built-in sync engine, which is off.
    #[error(
        "diffs and plans come from the built-in sync engine, which is off (--sync-engine argocd)"
    )]
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
    /// No fleet plan could be made.
    #[error("{0}")]
    Plan(String),
    /// The fleet plan took longer than the API allows.
    #[error("the plan took longer than {}s; narrow it (repoURL=) or use `argosy plan`", .0.as_secs())]
    PlanTimeout(Duration),
    /// Other plans are being computed.
    #[error("other plans are being computed; try again shortly")]
    PlansBusy,
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

    /// The fleet plan of `appset` (see [`argosy_sync_engine::fleet_plan`]) from the
    /// controllers' clusters, projects, Git and charts, bounded by the API's limits
    /// (`request.max_apps`, a deadline of [`defaults::PLAN_API_TIMEOUT_SECONDS`]).
    fn plan(
        &self,
        appset: Arc<ApplicationSet>,
        request: PlanRequest,
    ) -> BoxFuture<'static, Result<FleetPlan, QueryError>>;

    /// This replica's shard of the sync engine (`None`: not sharded).
    fn shard(&self) -> Option<argosy_sync_engine::shard::ShardStatus> {
        None
    }
}

/// The controllers' contexts behind [`ControllerQueries`].
pub struct Controllers {
    /// The ApplicationSet controller's context (generators' sources and options).
    pub appset: Arc<appset::Context>,
    /// The sync engine's context; `None` with `--sync-engine argocd`.
    pub sync: Option<Arc<application::Context>>,
}

impl ControllerQueries for Controllers {
    fn shard(&self) -> Option<argosy_sync_engine::shard::ShardStatus> {
        self.sync
            .as_ref()
            .and_then(|ctx| ctx.writers.shard_status())
    }

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

    fn plan(
        &self,
        appset: Arc<ApplicationSet>,
        mut request: PlanRequest,
    ) -> BoxFuture<'static, Result<FleetPlan, QueryError>> {
        let appset_ctx = self.appset.clone();
        let sync = self.sync.clone();
        async move {
            // Rendering is the sync engine's: its renderer, chart cache and tools.
            let sync = sync.ok_or(QueryError::SyncEngineOff)?;
            let _running = PLANS_RUNNING
                .try_acquire()
                .map_err(|_| QueryError::PlansBusy)?;
            let limit = Duration::from_secs(defaults::PLAN_API_TIMEOUT_SECONDS);
            // The task also stops itself at the deadline, between two Applications.
            request.deadline = Some(Instant::now() + limit);
            let task = tokio::task::spawn_blocking(move || {
                let clusters = appset_ctx.clusters.valid_clusters();
                // The generators read with the template project's credentials, as the
                // ApplicationSet controller does; each Application's sources with its own.
                let project = appset::template_project(&appset);
                let generator_repos = appset_ctx.repos.for_project(&project);
                let generate = |pinned: &ApplicationSet| appset_ctx.generate(pinned);
                let sources = PlanSources {
                    generate: &generate,
                    generator_repos: &generator_repos,
                    clusters: &clusters,
                    projects: &appset_ctx.projects,
                    repos: &sync.repos,
                    charts: &sync.charts,
                    renderer: &sync.renderer,
                };
                plan(&appset, &sources, &request).map_err(|e| QueryError::Plan(e.to_string()))
            });
            match tokio::time::timeout(limit, task).await {
                Ok(joined) => joined?,
                Err(_) => Err(QueryError::PlanTimeout(limit)),
            }
        }
        .boxed()
    }
}
