//! Prometheus metrics on `GET /metrics` (OpenMetrics text).
//!
//! Owns every metric the controller exports, in two kinds:
//!
//! * **State**, read from the reflector stores at scrape time by `StateCollector`:
//!   Applications, ApplicationSets, clusters and their connection state. Nothing is kept
//!   between scrapes, so a deleted object's series disappear with it.
//! * **Events**, counted by the controllers through the cheap, cloneable [`Metrics`] handle:
//!   reconciles, sync operations, Git and Kubernetes requests.
//!
//! Where Argo CD exports a metric for the same thing, its name and labels are exported too
//! (`argocd_*`), so existing dashboards and alerts keep working; `argosy_*` metrics carry
//! what Argo CD's lack (results, finer buckets, bounded aggregates).
//!
//! Label cardinality: every label value is either bounded by construction (a `&'static str`
//! result or category, an enum, a status normalized to Argo CD's set) or is the name of a
//! configured object (cluster, repository, ApplicationSet). The only per-Application series
//! are Argo CD's own (`argocd_app_info`, `argocd_app_sync_total`): one per Application, as
//! in Argo CD. Repository URLs are normalized (credentials, query and fragment dropped) and
//! server URLs redacted before they become labels; no Secret value is ever read here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use argosy_crds::cluster::Cluster;
use argosy_crds::{Application, ApplicationSet};
use argosy_generators::source::{ClusterEntry, ClusterSource};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kube::runtime::reflector::Store;

use crate::http::limit::SharedLimiter;
use crate::http::{ClientAddr, bearer, client_ip, too_many};
use crate::webhook::tokens_equal;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, LabelValueEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::registry::ClusterRegistry;
use argosy_sync_engine::clients::ClusterState;
use argosy_sync_engine::fence::Fence;
use argosy_sync_engine::repo::{GitRequest, GitRequestObserver, normalize_repo_url, redact_url};

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets of the `argosy_*_duration_seconds` histograms: 5 ms to 2 min.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Argo CD's `argocd_app_reconcile` buckets.
const ARGOCD_APP_RECONCILE_BUCKETS: [f64; 7] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];
/// Argo CD's `argocd_appset_reconcile` buckets (the Prometheus client defaults).
const ARGOCD_APPSET_RECONCILE_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Argo CD's `argocd_git_request_duration_seconds` buckets.
const ARGOCD_GIT_BUCKETS: [f64; 8] = [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0, 20.0];
/// Argo CD's `argocd_kubectl_request_duration_seconds` buckets.
const ARGOCD_KUBECTL_BUCKETS: [f64; 6] = [0.005, 0.1, 0.5, 2.0, 8.0, 30.0];

/// `status.sync.status` values Argo CD defines; anything else is reported as `Unknown`.
const SYNC_STATUSES: [&str; 3] = ["Synced", "OutOfSync", "Unknown"];
/// `status.health.status` values Argo CD defines; anything else is reported as `Unknown`.
const HEALTH_STATUSES: [&str; 6] = [
    "Healthy",
    "Progressing",
    "Degraded",
    "Suspended",
    "Missing",
    "Unknown",
];
/// Sync operation phases that end an operation (Argo CD counts only these).
const COMPLETED_PHASES: [&str; 3] = ["Succeeded", "Failed", "Error"];
/// The `result` label of a success.
const SUCCESS: &str = "success";
/// Argo CD's name for its implicit in-cluster destination.
const IN_CLUSTER_NAME: &str = "in-cluster";

/// Serving the exposition failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("encoding the metrics exposition: {0}")]
    Encode(#[from] std::fmt::Error),
}

impl MetricsError {
    /// A bounded label for logs.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Encode(_) => "encode",
        }
    }
}

/// The `request_type` label of a Git request (the cache's [`GitRequest`], which knows
/// nothing of Prometheus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GitRequestLabel(GitRequest);

impl EncodeLabelValue for GitRequestLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        EncodeLabelValue::encode(&self.0.as_str(), encoder)
    }
}

/// The verb of a Kubernetes request, spelled as Argo CD's `verb` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum KubeVerb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AppSyncLabels {
    namespace: String,
    name: String,
    project: String,
    dest_server: String,
    phase: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AppReconcileLabels {
    namespace: String,
    dest_server: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ObjectLabels {
    namespace: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GitLabels {
    repo: String,
    request_type: GitRequestLabel,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GitResultLabels {
    repo: String,
    request_type: GitRequestLabel,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KubeLabels {
    server: String,
    verb: KubeVerb,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KubeResultLabels {
    server: String,
    verb: KubeVerb,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KubectlLabels {
    host: String,
    verb: KubeVerb,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn histograms<L: Clone + Eq + std::hash::Hash>(new: fn() -> Histogram) -> Histograms<L> {
    Family::new_with_constructor(new)
}

/// The event metrics: a cheap handle (one `Arc`) the controllers clone and update.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Events>,
}

#[derive(Debug)]
struct Events {
    app_sync: Family<AppSyncLabels, Counter>,
    app_reconcile_argocd: Histograms<AppReconcileLabels>,
    app_reconcile: Histograms<ResultLabels>,
    appset_reconcile_argocd: Histograms<ObjectLabels>,
    appset_reconcile: Histograms<ResultLabels>,
    git_requests_argocd: Family<GitLabels, Counter>,
    git_duration_argocd: Histograms<GitLabels>,
    git_requests: Family<GitResultLabels, Counter>,
    git_duration: Histograms<GitLabels>,
    kube_duration_argocd: Histograms<KubectlLabels>,
    kube_requests: Family<KubeResultLabels, Counter>,
    kube_duration: Histograms<KubeLabels>,
    queue_dropped: Family<QueueLabels, Counter>,
    boundary_refusals: Family<BoundaryLabels, Counter>,
    reconcile_panics: Family<ControllerLabels, Counter>,
    rollout_events: Family<RolloutLabels, Counter>,
    notifications: Family<NotificationLabels, Counter>,
}

/// A webhook delivery ([`crate::notify`]): what it told (`rollout`, `syncFailed`,
/// `healthDegraded`; `any` for a refused URL) and how it ended (`sent`, `failed`,
/// `refused`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct NotificationLabels {
    kind: &'static str,
    result: &'static str,
}

/// A RollingSync transition (the Event reason: `RolloutStepStarted`, `RolloutHalted`, ...)
/// of an ApplicationSet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RolloutLabels {
    namespace: String,
    name: String,
    reason: &'static str,
}

/// A refusal of the tenant boundary: the project and the rule (bounded categories).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BoundaryLabels {
    controller: &'static str,
    project: String,
    rule: &'static str,
}

/// Which controller (`application`, `applicationset`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

/// The name of a bounded queue ([`crate::queue`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let durations = || Histogram::new(DURATION_BUCKETS);
        Self {
            inner: Arc::new(Events {
                app_sync: Family::default(),
                app_reconcile_argocd: histograms(|| Histogram::new(ARGOCD_APP_RECONCILE_BUCKETS)),
                app_reconcile: histograms(durations),
                appset_reconcile_argocd: histograms(|| {
                    Histogram::new(ARGOCD_APPSET_RECONCILE_BUCKETS)
                }),
                appset_reconcile: histograms(durations),
                git_requests_argocd: Family::default(),
                git_duration_argocd: histograms(|| Histogram::new(ARGOCD_GIT_BUCKETS)),
                git_requests: Family::default(),
                git_duration: histograms(durations),
                kube_duration_argocd: histograms(|| Histogram::new(ARGOCD_KUBECTL_BUCKETS)),
                boundary_refusals: Family::default(),
                kube_requests: Family::default(),
                kube_duration: histograms(durations),
                queue_dropped: Family::default(),
                reconcile_panics: Family::default(),
                rollout_events: Family::default(),
                notifications: Family::default(),
            }),
        }
    }

    /// The counter of triggers dropped by the full queue `queue` ([`crate::queue`]).
    pub fn queue_dropped(&self, queue: &'static str) -> Counter {
        self.inner
            .queue_dropped
            .get_or_create(&QueueLabels { queue })
            .clone()
    }

    /// A reconcile of `controller` (`application`, `applicationset`) panicked and was
    /// contained ([`crate::contain`]).
    pub fn reconcile_panicked(&self, controller: &'static str) {
        self.inner
            .reconcile_panics
            .get_or_create(&ControllerLabels { controller })
            .inc();
    }

    /// A RollingSync of `appset` made the transition `reason` (the Event's reason).
    pub fn rollout_event(&self, appset: &ApplicationSet, reason: &'static str) {
        self.inner
            .rollout_events
            .get_or_create(&RolloutLabels {
                namespace: appset.metadata.namespace.clone().unwrap_or_default(),
                name: appset.metadata.name.clone().unwrap_or_default(),
                reason,
            })
            .inc();
    }

    /// A notification to one webhook ended (`sent`, `failed` after its attempts) or its URL
    /// was refused ([`crate::notify`]).
    pub fn notification(&self, kind: &'static str, result: &'static str) {
        self.inner
            .notifications
            .get_or_create(&NotificationLabels { kind, result })
            .inc();
    }

    /// Notifications to webhooks so far that ended with `result` (tests).
    pub fn notifications(&self, kind: &'static str, result: &'static str) -> u64 {
        self.inner
            .notifications
            .get_or_create(&NotificationLabels { kind, result })
            .get()
    }

    /// The number of contained panics of `controller` so far (tests).
    pub fn reconcile_panics(&self, controller: &'static str) -> u64 {
        self.inner
            .reconcile_panics
            .get_or_create(&ControllerLabels { controller })
            .get()
    }

    /// One reconcile of `app` by the sync engine ended; `result` is `Ok` or the error's
    /// `category()`.
    pub fn app_reconciled(
        &self,
        app: &Application,
        result: Result<(), &'static str>,
        duration: Duration,
    ) {
        let seconds = duration.as_secs_f64();
        let labels = AppReconcileLabels {
            namespace: app.metadata.namespace.clone().unwrap_or_default(),
            dest_server: server_label(&app.spec.destination.server),
        };
        self.inner
            .app_reconcile_argocd
            .get_or_create(&labels)
            .observe(seconds);
        self.inner
            .app_reconcile
            .get_or_create(&ResultLabels {
                result: result_label(result),
            })
            .observe(seconds);
    }

    /// A sync operation of `app` ended in `phase` (`Succeeded`, `Failed` or `Error`; other
    /// phases, such as `Running`, are not counted, as in Argo CD).
    pub fn app_synced(&self, app: &Application, phase: &str) {
        let Some(phase) = COMPLETED_PHASES.iter().find(|p| **p == phase) else {
            return;
        };
        let labels = AppSyncLabels {
            namespace: app.metadata.namespace.clone().unwrap_or_default(),
            name: app.metadata.name.clone().unwrap_or_default(),
            project: project(app).to_owned(),
            dest_server: server_label(&app.spec.destination.server),
            phase,
        };
        self.inner.app_sync.get_or_create(&labels).inc();
    }

    /// The sync engine refused to write `app`'s render: `rule` is the first finding's
    /// category ([`argosy_sync_engine::boundary::BoundaryError::category`]).
    pub fn sync_refused(&self, app: &Application, rule: &'static str) {
        self.boundary_refused("application", project(app), rule);
    }

    /// A refusal of the tenant boundary by `controller` for an object of `project`.
    pub fn boundary_refused(&self, controller: &'static str, project: &str, rule: &'static str) {
        self.inner
            .boundary_refusals
            .get_or_create(&BoundaryLabels {
                controller,
                project: project.to_owned(),
                rule,
            })
            .inc();
    }

    /// One reconcile of `appset` ended; `result` is `Ok` or the error's `category()`.
    pub fn appset_reconciled(
        &self,
        appset: &ApplicationSet,
        result: Result<(), &'static str>,
        duration: Duration,
    ) {
        let seconds = duration.as_secs_f64();
        let labels = ObjectLabels {
            namespace: appset.metadata.namespace.clone().unwrap_or_default(),
            name: appset.metadata.name.clone().unwrap_or_default(),
        };
        self.inner
            .appset_reconcile_argocd
            .get_or_create(&labels)
            .observe(seconds);
        self.inner
            .appset_reconcile
            .get_or_create(&ResultLabels {
                result: result_label(result),
            })
            .observe(seconds);
    }

    /// One request to the Git remote `repo` (any spelling; credentials are dropped).
    pub fn git_request(&self, repo: &str, kind: GitRequest, ok: bool, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let labels = GitLabels {
            repo: repo_label(repo),
            request_type: GitRequestLabel(kind),
        };
        let result = if ok { SUCCESS } else { "failure" };
        self.inner
            .git_requests
            .get_or_create(&GitResultLabels {
                repo: labels.repo.clone(),
                request_type: GitRequestLabel(kind),
                result,
            })
            .inc();
        self.inner
            .git_duration
            .get_or_create(&labels)
            .observe(seconds);
        self.inner.git_requests_argocd.get_or_create(&labels).inc();
        self.inner
            .git_duration_argocd
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// One request to the Kubernetes API server `server` (a cluster Secret's `server`);
    /// `result` is `Ok` or the failure's category.
    pub fn kube_request(
        &self,
        server: &str,
        verb: KubeVerb,
        result: Result<(), &'static str>,
        duration: Duration,
    ) {
        let seconds = duration.as_secs_f64();
        let server = server_label(server);
        self.inner
            .kube_duration_argocd
            .get_or_create(&KubectlLabels {
                host: host_of(&server).to_owned(),
                verb,
            })
            .observe(seconds);
        self.inner
            .kube_requests
            .get_or_create(&KubeResultLabels {
                server: server.clone(),
                verb,
                result: result_label(result),
            })
            .inc();
        self.inner
            .kube_duration
            .get_or_create(&KubeLabels { server, verb })
            .observe(seconds);
    }

    /// Adds the event metrics to `registry` (they stay shared with this handle).
    fn register(&self, registry: &mut Registry) {
        let m = &self.inner;
        registry.register(
            "argosy_boundary_refusals",
            "Writes refused because an AppProject or a cluster Secret's scope forbids them, by controller, project and rule.",
            m.boundary_refusals.clone(),
        );
        registry.register(
            "argocd_app_sync",
            "Sync operations that ended, by phase (Argo CD's metric).",
            m.app_sync.clone(),
        );
        registry.register(
            "argocd_app_reconcile",
            "Application reconcile duration in seconds (Argo CD's metric).",
            m.app_reconcile_argocd.clone(),
        );
        registry.register(
            "argosy_app_reconcile_duration_seconds",
            "Application reconcile duration in seconds, by result.",
            m.app_reconcile.clone(),
        );
        registry.register(
            "argocd_appset_reconcile",
            "ApplicationSet reconcile duration in seconds (Argo CD's metric).",
            m.appset_reconcile_argocd.clone(),
        );
        registry.register(
            "argosy_applicationset_reconcile_duration_seconds",
            "ApplicationSet reconcile duration in seconds, by result.",
            m.appset_reconcile.clone(),
        );
        registry.register(
            "argocd_git_request",
            "Requests to Git remotes (Argo CD's metric).",
            m.git_requests_argocd.clone(),
        );
        registry.register(
            "argocd_git_request_duration_seconds",
            "Duration of requests to Git remotes in seconds (Argo CD's metric).",
            m.git_duration_argocd.clone(),
        );
        registry.register(
            "argosy_git_requests",
            "Requests to Git remotes, by result.",
            m.git_requests.clone(),
        );
        registry.register(
            "argosy_git_request_duration_seconds",
            "Duration of requests to Git remotes in seconds.",
            m.git_duration.clone(),
        );
        registry.register(
            "argocd_kubectl_request_duration_seconds",
            "Duration of Kubernetes API requests in seconds (Argo CD's metric).",
            m.kube_duration_argocd.clone(),
        );
        registry.register(
            "argosy_kube_requests",
            "Requests to Kubernetes API servers, by result.",
            m.kube_requests.clone(),
        );
        registry.register(
            "argosy_kube_request_duration_seconds",
            "Duration of Kubernetes API requests in seconds.",
            m.kube_duration.clone(),
        );
        registry.register(
            "argosy_queue_dropped",
            "Triggers dropped because their bounded queue was full, by queue.",
            m.queue_dropped.clone(),
        );
        registry.register(
            "argosy_rollout_transitions",
            "RollingSync transitions (step started, baking, halted, rolled back, completed, ...), by ApplicationSet and reason.",
            m.rollout_events.clone(),
        );
        registry.register(
            "argosy_notifications",
            "Webhook notifications, by kind and result (sent, failed after every attempt, refused URL).",
            m.notifications.clone(),
        );
        registry.register(
            "argosy_reconcile_panics",
            "Reconciles that panicked and were contained, by controller.",
            m.reconcile_panics.clone(),
        );
    }
}

impl GitRequestObserver for Metrics {
    fn git_request(&self, repo: &str, kind: GitRequest, ok: bool, took: Duration) {
        Metrics::git_request(self, repo, kind, ok, took);
    }
}

/// Connection states of the destination clusters, by server URL
/// ([`argosy_sync_engine::clients::ClusterClients::states`]).
pub type ClusterStates = Arc<dyn Fn() -> Vec<(String, ClusterState)> + Send + Sync>;

/// What the live cache holds per destination cluster, by server URL
/// ([`argosy_sync_engine::live::LiveCache::footprint`]).
pub type ClusterCaches =
    Arc<dyn Fn() -> Vec<(String, argosy_sync_engine::live::ClusterFootprint)> + Send + Sync>;

/// What the state metrics are read from at scrape time.
#[derive(Clone)]
pub struct Sources {
    pub applications: Store<Application>,
    pub appsets: Store<ApplicationSet>,
    pub clusters: ClusterRegistry,
    /// `None` when Argosy does not sync (`--sync-engine argocd`): no connection state.
    pub cluster_states: Option<ClusterStates>,
    /// `None` when Argosy does not sync: no live cache.
    pub cluster_caches: Option<ClusterCaches>,
    /// The write fence, whose refusals `argosy_fenced_writes_total` counts.
    pub fence: Fence,
    /// With sharding: this replica's share (the `argosy_shard_*` metrics), and which
    /// Applications are its own (their metrics are exported by their replica only).
    pub shard: Option<ShardSources>,
}

/// A test of an Application.
pub type AppTest = Box<dyn Fn(&Application) -> bool>;

/// This replica's shard, for `/metrics`.
#[derive(Clone)]
pub struct ShardSources {
    /// What it holds.
    pub fence: argosy_sync_engine::shard::ShardFence,
    /// At each scrape, a test of which Applications this replica syncs (built once per
    /// scrape: it resolves destinations against one copy of the cluster list).
    pub owns: Arc<dyn Fn() -> AppTest + Send + Sync>,
    /// Whether this replica leads (ApplicationSet metrics come from the leader only).
    pub leads: Arc<dyn Fn() -> bool + Send + Sync>,
}

/// The `/metrics` route: the event metrics of `metrics` and the state read from `sources`.
pub fn routes(metrics: Metrics, sources: Sources) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new(registry(&metrics, sources)))
}

/// `metrics_routes` behind `Authorization: Bearer <token>` (`--metrics-token-file`):
/// wrong tokens count toward the failed-login limit of the dashboard's `limiter`.
/// Without a token `/metrics` is open, as Prometheus expects by default.
pub fn with_token(metrics_routes: Router, token: &str, limiter: SharedLimiter) -> Router {
    let access = MetricsAccess {
        token: token.into(),
        limiter,
    };
    metrics_routes.route_layer(axum::middleware::from_fn_with_state(access, require_token))
}

#[derive(Clone)]
struct MetricsAccess {
    token: Arc<str>,
    limiter: SharedLimiter,
}

async fn require_token(
    State(access): State<MetricsAccess>,
    addr: ClientAddr,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(given) = bearer(request.headers()) else {
        return unauthorized();
    };
    match access
        .limiter
        .attempt(client_ip(&addr), || tokens_equal(&access.token, given))
    {
        Ok(true) => next.run(request).await,
        Ok(false) => unauthorized(),
        Err(blocked) => too_many(&blocked),
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "missing or wrong metrics token\n",
    )
        .into_response()
}

fn registry(metrics: &Metrics, sources: Sources) -> Registry {
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    registry.register_collector(Box::new(StateCollector { sources }));
    registry
}

async fn scrape(State(registry): State<Arc<Registry>>) -> Response {
    match exposition(&registry) {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, category = e.category(), "serving /metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The OpenMetrics text of `registry`.
fn exposition(registry: &Registry) -> Result<String, MetricsError> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

/// Reads the stores at each scrape.
struct StateCollector {
    sources: Sources,
}

impl std::fmt::Debug for StateCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateCollector")
    }
}

/// What the state metrics need of one Application.
struct AppView {
    namespace: String,
    name: String,
    project: String,
    repo: String,
    dest_server: String,
    dest_namespace: String,
    autosync: bool,
    operation: &'static str,
    sync: &'static str,
    health: &'static str,
    /// `(namespace, name)` of the owning ApplicationSet, if it is in the store.
    owner: Option<(String, String)>,
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let appsets = self.sources.appsets.state();
        let owners: HashMap<&str, (String, String)> = appsets
            .iter()
            .filter_map(|a| {
                let uid = a.metadata.uid.as_deref()?;
                Some((uid, object_key(&a.metadata)))
            })
            .collect();
        // With sharding each replica exports its own Applications, and the leader the
        // ApplicationSets: summed over replicas, nothing is counted twice.
        let owns = self.sources.shard.as_ref().map(|shard| (shard.owns)());
        let leads = self
            .sources
            .shard
            .as_ref()
            .is_none_or(|shard| (shard.leads)());
        let apps: Vec<AppView> = self
            .sources
            .applications
            .state()
            .iter()
            .filter(|app| owns.as_ref().is_none_or(|owns| owns(app)))
            .map(|app| app_view(app, &owners))
            .collect();

        encode_app_metrics(&mut encoder, &apps)?;
        if leads {
            encode_appset_metrics(&mut encoder, &appsets, &apps)?;
        }
        if let Some(shard) = &self.sources.shard {
            encode_shard_metrics(&mut encoder, &shard.fence)?;
        }
        let states = self
            .sources
            .cluster_states
            .as_ref()
            .map(|states| states())
            .unwrap_or_default();
        encode_cluster_metrics(&mut encoder, &self.sources.clusters.clusters(), &states)?;
        if let Some(caches) = &self.sources.cluster_caches {
            encode_cache_metrics(&mut encoder, &self.sources.clusters.clusters(), &caches())?;
        }
        let refused = self.sources.fence.refused();
        let mut family = encoder.encode_descriptor(
            "argosy_fenced_writes",
            "Writes refused because this replica did not hold the leader Lease.",
            None,
            MetricType::Counter,
        )?;
        family.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&refused, None)
    }
}

/// This replica's share: members, held and assigned clusters, its shard number, the
/// clusters it holds (one series each) and the writes its cluster gates refused.
fn encode_shard_metrics(
    encoder: &mut DescriptorEncoder,
    fence: &argosy_sync_engine::shard::ShardFence,
) -> std::fmt::Result {
    let status = fence.status();
    let gauge = |encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64| {
        encoder
            .encode_descriptor(name, help, None, MetricType::Gauge)?
            .encode_gauge(&value)
    };
    gauge(
        encoder,
        "argosy_shard_members",
        "Live replicas sharing the sync engine, as this replica sees them.",
        i64::try_from(status.members.len()).unwrap_or(i64::MAX),
    )?;
    let mut family = encoder.encode_descriptor(
        "argosy_shard_clusters",
        "Destination clusters of this replica: held (synced now) and assigned (held or waiting for another replica to let go).",
        None,
        MetricType::Gauge,
    )?;
    for (state, count) in [("held", status.held.len()), ("assigned", status.assigned)] {
        family
            .encode_family(&[("state", state)])?
            .encode_gauge(&i64::try_from(count).unwrap_or(i64::MAX))?;
    }
    let shard = status
        .shard
        .map_or_else(|| "none".to_owned(), |s| s.to_string());
    let mut family = encoder.encode_descriptor(
        "argosy_shard_info",
        "This replica's identity and shard number (its position among the live members; none while it is not a member).",
        None,
        MetricType::Gauge,
    )?;
    family
        .encode_family(&[
            ("identity", status.identity.as_str()),
            ("shard", shard.as_str()),
        ])?
        .encode_gauge(&1i64)?;
    let mut family = encoder.encode_descriptor(
        "argosy_shard_cluster_held",
        "1 for each destination cluster (server URL) this replica syncs now.",
        None,
        MetricType::Gauge,
    )?;
    for cluster in &status.held {
        family
            .encode_family(&[("cluster", cluster.as_str())])?
            .encode_gauge(&1i64)?;
    }
    let refused = fence.refused();
    encoder
        .encode_descriptor(
            "argosy_shard_fenced_writes",
            "Writes refused because this replica did not hold the destination cluster.",
            None,
            MetricType::Counter,
        )?
        .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&refused, None)
}

fn app_view(app: &Application, owners: &HashMap<&str, (String, String)>) -> AppView {
    let status = app.status.as_ref();
    let sync = status
        .and_then(|s| s.sync.as_ref())
        .map_or("", |s| s.status.as_str());
    let health = status
        .and_then(|s| s.health.as_ref())
        .map_or("", |h| h.status.as_str());
    let owner = app
        .metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|o| o.kind == "ApplicationSet" && o.api_version.starts_with("argoproj.io/"))
        .find_map(|o| owners.get(o.uid.as_str()).cloned());
    let operation = if app.metadata.deletion_timestamp.is_some() {
        "delete"
    } else if app
        .operation
        .as_ref()
        .is_some_and(|op| op.get("sync").is_some())
    {
        "sync"
    } else {
        ""
    };
    let (namespace, name) = object_key(&app.metadata);
    AppView {
        namespace,
        name,
        project: project(app).to_owned(),
        repo: app
            .spec
            .source
            .iter()
            .chain(&app.spec.sources)
            .next()
            .map(|s| repo_label(&s.repo_url))
            .unwrap_or_default(),
        dest_server: server_label(&app.spec.destination.server),
        dest_namespace: app.spec.destination.namespace.clone(),
        autosync: app
            .spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.automated.as_ref())
            .is_some_and(|a| a.enabled != Some(false)),
        operation,
        sync: known(sync, &SYNC_STATUSES),
        health: known(health, &HEALTH_STATUSES),
        owner,
    }
}

/// Applications by `(sync_status, health_status)`.
type StatusCounts<'a> = BTreeMap<(&'a str, &'a str), u64>;

fn encode_app_metrics(encoder: &mut DescriptorEncoder, apps: &[AppView]) -> std::fmt::Result {
    {
        let mut family = encoder.encode_descriptor(
            "argocd_app_info",
            "Information about an Application: one series per Application (Argo CD's metric).",
            None,
            MetricType::Gauge,
        )?;
        for app in apps {
            let labels = [
                ("namespace", app.namespace.as_str()),
                ("name", &app.name),
                ("project", &app.project),
                ("autosync_enabled", bool_label(app.autosync)),
                ("repo", &app.repo),
                ("dest_server", &app.dest_server),
                ("dest_namespace", &app.dest_namespace),
                ("sync_status", app.sync),
                ("health_status", app.health),
                ("operation", app.operation),
            ];
            family.encode_family(&labels)?.encode_gauge(&1i64)?;
        }
    }
    let mut counts = StatusCounts::new();
    for app in apps {
        *counts.entry((app.sync, app.health)).or_default() += 1;
    }
    let mut family = encoder.encode_descriptor(
        "argosy_apps",
        "Applications by sync and health status.",
        None,
        MetricType::Gauge,
    )?;
    for ((sync, health), count) in counts {
        let labels = [("sync_status", sync), ("health_status", health)];
        family.encode_family(&labels)?.encode_gauge(&count)?;
    }
    Ok(())
}

fn encode_appset_metrics(
    encoder: &mut DescriptorEncoder,
    appsets: &[Arc<ApplicationSet>],
    apps: &[AppView],
) -> std::fmt::Result {
    let mut owned: BTreeMap<(&str, &str), StatusCounts> = BTreeMap::new();
    for app in apps {
        if let Some((namespace, name)) = &app.owner {
            *owned
                .entry((namespace.as_str(), name.as_str()))
                .or_default()
                .entry((app.sync, app.health))
                .or_default() += 1;
        }
    }
    let keys: Vec<(String, String)> = appsets.iter().map(|a| object_key(&a.metadata)).collect();
    {
        let mut family = encoder.encode_descriptor(
            "argocd_appset_info",
            "Information about an ApplicationSet (Argo CD's metric).",
            None,
            MetricType::Gauge,
        )?;
        for (appset, (namespace, name)) in appsets.iter().zip(&keys) {
            let update_status = appset
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "ResourcesUpToDate"))
                .map_or("Unknown", |c| c.reason.as_str());
            let labels = [
                ("namespace", namespace.as_str()),
                ("name", name),
                ("resource_update_status", update_status),
            ];
            family.encode_family(&labels)?.encode_gauge(&1i64)?;
        }
    }
    {
        let mut family = encoder.encode_descriptor(
            "argocd_appset_owned_applications",
            "Applications owned by an ApplicationSet (Argo CD's metric).",
            None,
            MetricType::Gauge,
        )?;
        for (namespace, name) in &keys {
            let count: u64 = owned
                .get(&(namespace.as_str(), name.as_str()))
                .map_or(0, |by_status| by_status.values().sum());
            let labels = [("namespace", namespace.as_str()), ("name", name)];
            family.encode_family(&labels)?.encode_gauge(&count)?;
        }
    }
    let mut family = encoder.encode_descriptor(
        "argosy_applicationset_apps",
        "Applications owned by an ApplicationSet, by sync and health status.",
        None,
        MetricType::Gauge,
    )?;
    for ((namespace, name), by_status) in &owned {
        for ((sync, health), count) in by_status {
            let labels = [
                ("applicationset", *name),
                ("namespace", *namespace),
                ("sync_status", *sync),
                ("health_status", *health),
            ];
            family.encode_family(&labels)?.encode_gauge(count)?;
        }
    }
    Ok(())
}

/// One destination cluster as the cluster metrics show it.
#[derive(Default)]
struct ClusterView<'a> {
    name: &'a str,
    state: Option<&'a ClusterState>,
}

fn encode_cluster_metrics(
    encoder: &mut DescriptorEncoder,
    registered: &[ClusterEntry],
    states: &[(String, ClusterState)],
) -> std::fmt::Result {
    // Registered clusters and every server a client was built for (the implicit
    // in-cluster destination has no Secret).
    let mut clusters: BTreeMap<&str, ClusterView> = BTreeMap::new();
    for entry in registered {
        if let ClusterEntry::Valid(Cluster { server, name, .. }) = entry {
            clusters.entry(server).or_default().name = name;
        }
    }
    for (server, state) in states {
        let view = clusters.entry(server).or_default();
        view.state = Some(state);
        let in_cluster = Cluster {
            server: server.clone(),
            ..Cluster::default()
        }
        .is_in_cluster();
        if view.name.is_empty() && in_cluster {
            view.name = IN_CLUSTER_NAME;
        }
    }
    let rows: Vec<(String, &ClusterView, String)> = clusters
        .iter()
        .map(|(server, view)| {
            let version = view
                .state
                .and_then(|s| s.server_version.as_deref())
                .map(minor_version)
                .unwrap_or_default();
            (server_label(server), view, version)
        })
        .collect();
    {
        let mut family = encoder.encode_descriptor(
            "argocd_cluster_info",
            "Information about a cluster (Argo CD's metric).",
            None,
            MetricType::Gauge,
        )?;
        for (server, view, version) in &rows {
            let labels = [
                ("server", server.as_str()),
                ("name", view.name),
                ("k8s_version", version),
            ];
            family.encode_family(&labels)?.encode_gauge(&1i64)?;
        }
    }
    // Connection status only for clusters the controller has talked to (as Argo CD, which
    // reports the clusters it caches): an unused cluster is not a broken one.
    let connected = |view: &ClusterView| -> Option<i64> {
        let state = view.state?;
        if state.last_error.is_some() {
            Some(0)
        } else {
            state.last_success.map(|_| 1)
        }
    };
    {
        let mut family = encoder.encode_descriptor(
            "argocd_cluster_connection_status",
            "1 if the last request to the cluster succeeded, else 0 (Argo CD's metric).",
            None,
            MetricType::Gauge,
        )?;
        for (server, view, version) in &rows {
            if let Some(up) = connected(view) {
                let labels = [("server", server.as_str()), ("k8s_version", version)];
                family.encode_family(&labels)?.encode_gauge(&up)?;
            }
        }
    }
    {
        let mut family = encoder.encode_descriptor(
            "argosy_cluster_connection_status",
            "1 if the last request to the cluster succeeded, else 0.",
            None,
            MetricType::Gauge,
        )?;
        for (server, view, _) in &rows {
            if let Some(up) = connected(view) {
                let labels = [("server", server.as_str()), ("name", view.name)];
                family.encode_family(&labels)?.encode_gauge(&up)?;
            }
        }
    }
    let mut family = encoder.encode_descriptor(
        "argosy_cluster_last_contact_timestamp_seconds",
        "When a request to the cluster last succeeded (Unix time).",
        None,
        MetricType::Gauge,
    )?;
    for (server, view, _) in &rows {
        if let Some(at) = view.state.and_then(|s| s.last_success) {
            let labels = [("server", server.as_str()), ("name", view.name)];
            let seconds = at.as_millisecond() as f64 / 1000.0;
            family.encode_family(&labels)?.encode_gauge(&seconds)?;
        }
    }
    Ok(())
}

/// The live cache of each destination cluster (memory that grows with the fleet): its
/// watches, and the objects they hold with their JSON size.
fn encode_cache_metrics(
    encoder: &mut DescriptorEncoder,
    registered: &[ClusterEntry],
    footprints: &[(String, argosy_sync_engine::live::ClusterFootprint)],
) -> std::fmt::Result {
    let names: HashMap<&str, &str> = registered
        .iter()
        .filter_map(|entry| match entry {
            ClusterEntry::Valid(Cluster { server, name, .. }) => {
                Some((server.as_str(), name.as_str()))
            }
            _ => None,
        })
        .collect();
    let rows: Vec<(String, &str, &argosy_sync_engine::live::ClusterFootprint)> = footprints
        .iter()
        .map(|(server, f)| {
            let name = names.get(server.as_str()).copied().unwrap_or_default();
            (server_label(server), name, f)
        })
        .collect();
    {
        let mut family = encoder.encode_descriptor(
            "argosy_cluster_watches",
            "Open watches of the cluster's live cache, by scope: one namespace, or the whole cluster (a namespaced kind watched cluster-wide once more namespaces are in use than --watch-namespaces-max, or a cluster-scoped kind).",
            None,
            MetricType::Gauge,
        )?;
        for (server, name, f) in &rows {
            let wide = f.cluster_wide as i64;
            for (scope, count) in [("namespace", f.watches as i64 - wide), ("cluster", wide)] {
                let labels = [
                    ("server", server.as_str()),
                    ("name", *name),
                    ("scope", scope),
                ];
                family.encode_family(&labels)?.encode_gauge(&count)?;
            }
        }
    }
    {
        let mut family = encoder.encode_descriptor(
            "argosy_cluster_cache_objects",
            "Live objects cached for the cluster.",
            None,
            MetricType::Gauge,
        )?;
        for (server, name, f) in &rows {
            let labels = [("server", server.as_str()), ("name", *name)];
            family
                .encode_family(&labels)?
                .encode_gauge(&(f.cached.objects as i64))?;
        }
    }
    let mut family = encoder.encode_descriptor(
        "argosy_cluster_cache_bytes",
        "Bytes of JSON text of the live objects cached for the cluster (the cache keeps each trimmed object as its text).",
        None,
        MetricType::Gauge,
    )?;
    for (server, name, f) in &rows {
        let labels = [("server", server.as_str()), ("name", *name)];
        family
            .encode_family(&labels)?
            .encode_gauge(&(f.cached.bytes as i64))?;
    }
    Ok(())
}

fn object_key(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The Application's project (`default` when unset, as Argo CD reads it).
fn project(app: &Application) -> &str {
    match app.spec.project.as_str() {
        "" => "default",
        project => project,
    }
}

/// `value` if it is one of `allowed`, else `Unknown` (keeps status labels bounded).
fn known(value: &str, allowed: &[&'static str]) -> &'static str {
    allowed
        .iter()
        .find(|a| **a == value)
        .copied()
        .unwrap_or("Unknown")
}

fn bool_label(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

fn result_label(result: Result<(), &'static str>) -> &'static str {
    match result {
        Ok(()) => SUCCESS,
        Err(category) => category,
    }
}

/// A repository URL as a label: one spelling per repository, without credentials, query
/// or fragment (where tokens sometimes ride).
fn repo_label(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    normalize_repo_url(url)
}

/// A server URL as a label, credentials (if someone wrote them into the URL) redacted.
fn server_label(server: &str) -> String {
    redact_url(server)
}

/// `host[:port]` of a URL, Argo CD's `host` label.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

/// `1.31` from a `gitVersion` such as `v1.31.2-eks-1234`, the form Argo CD reports.
fn minor_version(git_version: &str) -> String {
    let version = git_version.trim_start_matches('v');
    let mut parts = version.split(['.', '-', '+']);
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) if !major.is_empty() && !minor.is_empty() => {
            format!("{major}.{minor}")
        }
        _ => version.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::jiff::Timestamp;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher;
    use serde_json::json;

    const NS: &str = "argocd";

    fn store<K>(objects: impl IntoIterator<Item = K>) -> Store<K>
    where
        K: kube::Resource + Clone + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        let mut writer = Writer::default();
        for object in objects {
            writer.apply_watcher_event(&watcher::Event::Apply(object));
        }
        writer.as_reader()
    }

    fn app(name: &str, server: &str, sync: &str, health: &str, owner: Option<&str>) -> Application {
        let owners: Vec<_> = owner
            .map(|uid| {
                json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
                       "name": "owner", "uid": uid, "controller": true})
            })
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": NS, "ownerReferences": owners},
            "spec": {
                "source": {"repoURL": "https://user:s3cret@GitHub.com/org/Repo.git?token=t0k", "path": "web"},
                "destination": {"server": server, "namespace": "web"},
                "syncPolicy": {"automated": {"prune": true}}
            },
            "status": {"sync": {"status": sync}, "health": {"status": health}}
        }))
        .unwrap()
    }

    fn appset(name: &str, uid: &str, update_status: Option<&str>) -> ApplicationSet {
        let conditions: Vec<_> = update_status
            .map(|reason| {
                json!({"type": "ResourcesUpToDate", "status": "True", "reason": reason, "message": ""})
            })
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": NS, "uid": uid},
            "spec": {"generators": [], "template": {"metadata": {}, "spec": {}}},
            "status": {"conditions": conditions}
        }))
        .unwrap()
    }

    fn cluster_secret(name: &str, server: &str) -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": format!("cluster-{name}"), "namespace": NS,
                         "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
            "stringData": {"name": name, "server": server,
                           "config": "{\"bearerToken\": \"t0ken-value\"}"}
        }))
        .unwrap()
    }

    fn sources(
        apps: Vec<Application>,
        appsets: Vec<ApplicationSet>,
        secrets: Vec<Secret>,
        states: Vec<(String, ClusterState)>,
    ) -> Sources {
        Sources {
            applications: store(apps),
            appsets: store(appsets),
            clusters: ClusterRegistry::new(
                store(secrets),
                crate::registry::StoreReady::already(),
                NS,
            ),
            cluster_states: Some(Arc::new(move || states.clone())),
            cluster_caches: None,
            fence: Fence::open(),
            shard: None,
        }
    }

    fn scrape_text(metrics: &Metrics, sources: Sources) -> String {
        exposition(&registry(metrics, sources)).unwrap()
    }

    /// Sample lines of one metric family (`name{...} value` or `name value`).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .collect()
    }

    fn assert_has(text: &str, line: &str) {
        assert!(
            text.lines().any(|l| l == line),
            "missing line:\n{line}\nin:\n{text}"
        );
    }

    const PROD: &str = "https://prod.example:6443";
    const IN_CLUSTER: &str = "https://kubernetes.default.svc";

    #[test]
    fn state_metrics_read_the_stores() {
        let apps = vec![
            app("web-prod", PROD, "Synced", "Healthy", Some("uid-web")),
            app("api-prod", PROD, "OutOfSync", "Degraded", Some("uid-web")),
            app("local", IN_CLUSTER, "", "made-up", None),
        ];
        let appsets = vec![
            appset("web", "uid-web", Some("ApplicationSetUpToDate")),
            appset("empty", "uid-empty", None),
        ];
        let connected = ClusterState {
            last_success: Some(Timestamp::from_second(1_700_000_000).unwrap()),
            server_version: Some("v1.31.2-eks-1234".into()),
            ..ClusterState::default()
        };
        let failing = ClusterState {
            last_success: Some(Timestamp::from_second(1_600_000_000).unwrap()),
            last_error: Some("connection refused".into()),
            ..ClusterState::default()
        };
        let text = scrape_text(
            &Metrics::new(),
            sources(
                apps,
                appsets,
                vec![
                    cluster_secret("prod", PROD),
                    cluster_secret("idle", "https://idle.example"),
                ],
                vec![(PROD.into(), connected), (IN_CLUSTER.into(), failing)],
            ),
        );

        assert_has(
            &text,
            r#"argocd_app_info{namespace="argocd",name="web-prod",project="default",autosync_enabled="true",repo="https://github.com/org/Repo",dest_server="https://prod.example:6443",dest_namespace="web",sync_status="Synced",health_status="Healthy",operation=""} 1"#,
        );
        // Status values outside Argo CD's set read as Unknown.
        assert_has(
            &text,
            r#"argocd_app_info{namespace="argocd",name="local",project="default",autosync_enabled="true",repo="https://github.com/org/Repo",dest_server="https://kubernetes.default.svc",dest_namespace="web",sync_status="Unknown",health_status="Unknown",operation=""} 1"#,
        );
        assert_eq!(samples(&text, "argocd_app_info").len(), 3);
        assert_has(
            &text,
            r#"argosy_apps{sync_status="Synced",health_status="Healthy"} 1"#,
        );
        assert_has(
            &text,
            r#"argosy_apps{sync_status="OutOfSync",health_status="Degraded"} 1"#,
        );
        assert_has(
            &text,
            r#"argosy_apps{sync_status="Unknown",health_status="Unknown"} 1"#,
        );
        assert_eq!(samples(&text, "argosy_apps").len(), 3);

        assert_has(
            &text,
            r#"argocd_appset_info{namespace="argocd",name="web",resource_update_status="ApplicationSetUpToDate"} 1"#,
        );
        assert_has(
            &text,
            r#"argocd_appset_info{namespace="argocd",name="empty",resource_update_status="Unknown"} 1"#,
        );
        assert_has(
            &text,
            r#"argocd_appset_owned_applications{namespace="argocd",name="web"} 2"#,
        );
        assert_has(
            &text,
            r#"argocd_appset_owned_applications{namespace="argocd",name="empty"} 0"#,
        );
        assert_has(
            &text,
            r#"argosy_applicationset_apps{applicationset="web",namespace="argocd",sync_status="Synced",health_status="Healthy"} 1"#,
        );
        assert_has(
            &text,
            r#"argosy_applicationset_apps{applicationset="web",namespace="argocd",sync_status="OutOfSync",health_status="Degraded"} 1"#,
        );
        assert_eq!(samples(&text, "argosy_applicationset_apps").len(), 2);

        assert_has(
            &text,
            r#"argocd_cluster_info{server="https://prod.example:6443",name="prod",k8s_version="1.31"} 1"#,
        );
        assert_has(
            &text,
            r#"argocd_cluster_info{server="https://idle.example",name="idle",k8s_version=""} 1"#,
        );
        assert_has(
            &text,
            r#"argocd_cluster_info{server="https://kubernetes.default.svc",name="in-cluster",k8s_version=""} 1"#,
        );
        assert_has(
            &text,
            r#"argocd_cluster_connection_status{server="https://prod.example:6443",k8s_version="1.31"} 1"#,
        );
        assert_has(
            &text,
            r#"argosy_cluster_connection_status{server="https://kubernetes.default.svc",name="in-cluster"} 0"#,
        );
        assert_has(
            &text,
            r#"argosy_cluster_connection_status{server="https://prod.example:6443",name="prod"} 1"#,
        );
        // A cluster never talked to has no connection status (it is not broken).
        assert_eq!(samples(&text, "argosy_cluster_connection_status").len(), 2);
        assert_eq!(samples(&text, "argocd_cluster_connection_status").len(), 2);
        assert_has(
            &text,
            r#"argosy_cluster_last_contact_timestamp_seconds{server="https://prod.example:6443",name="prod"} 1700000000.0"#,
        );

        for secret in ["s3cret", "t0k", "t0ken-value", "user"] {
            assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn event_metrics_count_what_the_controllers_report() {
        let metrics = Metrics::new();
        let web = app("web", PROD, "Synced", "Healthy", None);
        metrics.app_reconciled(&web, Ok(()), Duration::from_millis(300));
        metrics.app_reconciled(&web, Err("ClusterUnreachable"), Duration::from_secs(3));
        metrics.app_synced(&web, "Succeeded");
        metrics.app_synced(&web, "Running"); // not an end: not counted
        metrics.app_synced(&web, "Failed");
        metrics.app_synced(&web, "Failed");
        metrics.appset_reconciled(&appset("web", "u", None), Ok(()), Duration::from_millis(20));
        let repo = "https://user:s3cret@github.com/org/repo.git";
        metrics.git_request(repo, GitRequest::LsRemote, true, Duration::from_millis(150));
        metrics.git_request(repo, GitRequest::Fetch, false, Duration::from_secs(1));
        metrics.kube_request(PROD, KubeVerb::Patch, Ok(()), Duration::from_millis(40));
        metrics.kube_request(
            PROD,
            KubeVerb::Patch,
            Err("ClusterUnauthorized"),
            Duration::from_millis(5),
        );

        let text = scrape_text(&metrics, sources(vec![], vec![], vec![], vec![]));
        assert_has(
            &text,
            r#"argocd_app_sync_total{namespace="argocd",name="web",project="default",dest_server="https://prod.example:6443",phase="Succeeded"} 1"#,
        );
        assert_has(
            &text,
            r#"argocd_app_sync_total{namespace="argocd",name="web",project="default",dest_server="https://prod.example:6443",phase="Failed"} 2"#,
        );
        assert_eq!(samples(&text, "argocd_app_sync_total").len(), 2);
        assert_has(
            &text,
            r#"argocd_app_reconcile_bucket{le="0.5",namespace="argocd",dest_server="https://prod.example:6443"} 1"#,
        );
        assert_has(
            &text,
            r#"argocd_app_reconcile_count{namespace="argocd",dest_server="https://prod.example:6443"} 2"#,
        );
        assert_has(
            &text,
            r#"argosy_app_reconcile_duration_seconds_count{result="success"} 1"#,
        );
        assert_has(
            &text,
            r#"argosy_app_reconcile_duration_seconds_count{result="ClusterUnreachable"} 1"#,
        );
        assert_has(
            &text,
            r#"argocd_appset_reconcile_count{namespace="argocd",name="web"} 1"#,
        );
        assert_has(
            &text,
            r#"argosy_applicationset_reconcile_duration_seconds_count{result="success"} 1"#,
        );
        assert_has(
            &text,
            r#"argosy_git_requests_total{repo="https://github.com/org/repo",request_type="ls-remote",result="success"} 1"#,
        );
        assert_has(
            &text,
            r#"argosy_git_requests_total{repo="https://github.com/org/repo",request_type="fetch",result="failure"} 1"#,
        );
        assert_has(
            &text,
            r#"argocd_git_request_total{repo="https://github.com/org/repo",request_type="fetch"} 1"#,
        );
        assert_has(
            &text,
            r#"argocd_git_request_duration_seconds_bucket{le="0.25",repo="https://github.com/org/repo",request_type="ls-remote"} 1"#,
        );
        assert_has(
            &text,
            r#"argosy_git_request_duration_seconds_count{repo="https://github.com/org/repo",request_type="fetch"} 1"#,
        );
        assert_has(
            &text,
            r#"argosy_kube_requests_total{server="https://prod.example:6443",verb="Patch",result="success"} 1"#,
        );
        assert_has(
            &text,
            r#"argosy_kube_requests_total{server="https://prod.example:6443",verb="Patch",result="ClusterUnauthorized"} 1"#,
        );
        assert_has(
            &text,
            r#"argosy_kube_request_duration_seconds_count{server="https://prod.example:6443",verb="Patch"} 2"#,
        );
        assert_has(
            &text,
            r#"argocd_kubectl_request_duration_seconds_count{host="prod.example:6443",verb="Patch"} 2"#,
        );
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn each_clusters_live_cache_is_reported() {
        use argosy_sync_engine::live::{ClusterFootprint, Footprint};
        let server = "https://a.example";
        let mut sources = sources(vec![], vec![], vec![cluster_secret("a", server)], vec![]);
        sources.cluster_caches = Some(Arc::new(move || {
            vec![(
                server.to_owned(),
                ClusterFootprint {
                    watches: 5,
                    cluster_wide: 1,
                    cached: Footprint {
                        objects: 40,
                        bytes: 51_200,
                    },
                },
            )]
        }));
        let text = scrape_text(&Metrics::new(), sources);
        let labels = format!("server=\"{server}\",name=\"a\"");
        assert_has(
            &text,
            &format!("argosy_cluster_cache_objects{{{labels}}} 40"),
        );
        assert_has(
            &text,
            &format!("argosy_cluster_cache_bytes{{{labels}}} 51200"),
        );
        assert_has(
            &text,
            &format!("argosy_cluster_watches{{{labels},scope=\"namespace\"}} 4"),
        );
        assert_has(
            &text,
            &format!("argosy_cluster_watches{{{labels},scope=\"cluster\"}} 1"),
        );
    }

    #[test]
    fn aggregate_series_stay_bounded_for_ten_thousand_apps() {
        const SYNCS: [&str; 3] = ["Synced", "OutOfSync", "Unknown"];
        const HEALTHS: [&str; 7] = [
            "Healthy",
            "Progressing",
            "Degraded",
            "Suspended",
            "Missing",
            "Unknown",
            "odd",
        ];
        let servers = [
            "https://a.example",
            "https://b.example",
            "https://c.example",
        ];
        let appsets: Vec<_> = (0..5)
            .map(|i| {
                appset(
                    &format!("set-{i}"),
                    &format!("uid-{i}"),
                    Some("ApplicationSetUpToDate"),
                )
            })
            .collect();
        let metrics = Metrics::new();
        let apps: Vec<_> = (0..10_000)
            .map(|i| {
                let owner = format!("uid-{}", i % 5);
                let app = app(
                    &format!("app-{i}"),
                    servers[i % 3],
                    SYNCS[i % 3],
                    HEALTHS[i % 7],
                    Some(&owner),
                );
                metrics.app_reconciled(&app, Ok(()), Duration::from_millis(i as u64 % 2000));
                metrics.kube_request(
                    servers[i % 3],
                    KubeVerb::Get,
                    Ok(()),
                    Duration::from_millis(3),
                );
                app
            })
            .collect();
        let secrets: Vec<_> = servers
            .iter()
            .enumerate()
            .map(|(i, s)| cluster_secret(&format!("c{i}"), s))
            .collect();
        let states = servers
            .iter()
            .map(|s| {
                let state = ClusterState {
                    last_success: Some(Timestamp::now()),
                    ..ClusterState::default()
                };
                (s.to_string(), state)
            })
            .collect();
        let text = scrape_text(&metrics, sources(apps, appsets, secrets, states));

        // Per Application by design, as in Argo CD.
        assert_eq!(samples(&text, "argocd_app_info").len(), 10_000);
        // Bounded by the status sets, whatever the number of Applications.
        assert_eq!(samples(&text, "argosy_apps").len(), 3 * 6);
        let total: u64 = samples(&text, "argosy_apps")
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(total, 10_000);
        assert!(samples(&text, "argosy_applicationset_apps").len() <= 5 * 3 * 6);
        assert_eq!(samples(&text, "argocd_appset_info").len(), 5);
        assert_eq!(samples(&text, "argocd_appset_owned_applications").len(), 5);
        for family in [
            "argocd_cluster_info",
            "argocd_cluster_connection_status",
            "argosy_cluster_connection_status",
            "argosy_cluster_last_contact_timestamp_seconds",
        ] {
            assert_eq!(samples(&text, family).len(), 3, "{family}");
        }
        // Event histograms: one series per (namespace, cluster) and per result.
        assert_eq!(samples(&text, "argocd_app_reconcile_count").len(), 3);
        assert_eq!(
            samples(&text, "argosy_app_reconcile_duration_seconds_count").len(),
            1
        );
        assert_eq!(samples(&text, "argosy_kube_requests_total").len(), 3);
    }

    #[tokio::test]
    async fn the_route_serves_openmetrics() {
        use tower::ServiceExt as _;
        let router = routes(
            Metrics::new(),
            sources(
                vec![app("web", PROD, "Synced", "Healthy", None)],
                vec![],
                vec![],
                vec![],
            ),
        );
        let response = router
            .oneshot(
                axum::http::Request::get("/metrics")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(samples(&text, "argocd_app_info").len(), 1);
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn versions_read_as_major_minor() {
        assert_eq!(minor_version("v1.31.2"), "1.31");
        assert_eq!(minor_version("v1.29.4-eks-036c24b"), "1.29");
        assert_eq!(minor_version("v1.30+k3s1"), "1.30");
        assert_eq!(minor_version("weird"), "weird");
        assert_eq!(host_of("https://u:p@h.example:6443/path"), "h.example:6443");
    }

    #[tokio::test]
    async fn a_metrics_token_is_required_once_configured() {
        use tower::ServiceExt as _;
        let open = Router::new().route("/metrics", get(|| async { "argosy_apps 1" }));
        let guarded = with_token(open, "scrape-token", SharedLimiter::default());
        let call = |auth: Option<&str>| {
            let mut request = http::Request::get("/metrics");
            if let Some(auth) = auth {
                request = request.header(header::AUTHORIZATION, auth);
            }
            guarded
                .clone()
                .oneshot(request.body(axum::body::Body::empty()).unwrap())
        };
        assert_eq!(call(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            call(Some("Bearer wrong")).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(Some("Bearer scrape-token")).await.unwrap().status(),
            StatusCode::OK
        );
    }
}
