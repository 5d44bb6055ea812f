//! The Application controller: `reconcile(app) -> Action`, one pass of
//! observe (Git, render, live state) -> compare -> decide -> sync -> status.
//!
//! Safety rules that live here:
//! * nothing on a cluster is written or deleted unless the whole observation succeeded:
//!   a Git, render, discovery or connection error only sets the status to Unknown with a
//!   condition (last known resources kept) and requeues;
//! * automated sync refuses to prune everything when the render is suddenly empty,
//!   unless `allowEmpty` is set;
//! * prune touches only objects whose tracking id names this app and themselves.
//!
//! A refresh request (`argocd.argoproj.io/refresh`, see [`crate::refresh`]) makes the pass
//! check the app's repositories at once (`hard`: and render again), and is removed after
//! it, unless reading Git failed (then the next pass tries again, as in Argo CD).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argosy_crds::Application;
use argosy_crds::OperationState;
use argosy_crds::cluster::Cluster;
use argosy_crds::consts::RESOURCES_FINALIZER;
use argosy_crds::project::NamespacePatterns;
use argosy_crds::{AppProject, ProjectPolicy};
use argosy_crds::{DestinationError, resolve_destination};
use argosy_generators::source::ProjectSource;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, Resource};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument as _;

mod shard;
pub use shard::{Owner, Writers};

use crate::events::{EventPublisher, EventType};
use crate::metrics::Metrics;
use crate::refresh::{self, Request};
use crate::registry::{ClusterRegistry, ProjectRegistry};
use argosy_sync_engine::app_sources::{SourceReaders, SourcesError, render_sources};
use argosy_sync_engine::boundary;
use argosy_sync_engine::charts::ChartRepos;
use argosy_sync_engine::clients::{ClusterClients, ClusterConn};
use argosy_sync_engine::decide::{self, DecideInput, Decision, SelfHeal, SyncRequest};
use argosy_sync_engine::diff::Comparison;
use argosy_sync_engine::echo::{Echoes, version_of};
use argosy_sync_engine::execute::{self, Executed, Reach, Target};
use argosy_sync_engine::health::{self, Health, HealthCode};
use argosy_sync_engine::live::{LiveCache, Needs, Visibility};
use argosy_sync_engine::operation::{self, Progress};
use argosy_sync_engine::plan::{self, DesiredObject, IgnoreRule, ResourceState};
use argosy_sync_engine::render::{RenderTarget, Renderer, SourceType};
use argosy_sync_engine::repo::GitRepos;
use argosy_sync_engine::resource::{self, ObjKey, ResourceOptions};
use argosy_sync_engine::ssa::FIELD_MANAGER;
use argosy_sync_engine::status::{self, AppSync, ConditionType, Report, ResourceReport};
use argosy_sync_engine::target::{Deployed, Wanted};

/// Settings of the sync engine.
#[derive(Clone, Debug)]
pub struct Config {
    pub controller_namespace: String,
    /// Other namespaces whose Applications are reconciled (`--application-namespaces`).
    pub application_namespaces: NamespacePatterns,
    /// Periodic re-check of every app (Git changes without a webhook). Argo CD: 180 s.
    pub resync: Duration,
    /// Concurrent applies within one sync step.
    pub concurrency: usize,
    /// The Lua health scripts (`--resource-customizations`, `argocd-cm`).
    pub health: crate::health_checks::HealthCheckRegistry,
}

impl Config {
    /// Whether Applications in `namespace` are reconciled: the control plane's, and those
    /// `--application-namespaces` names (the project then decides by `sourceNamespaces`).
    pub fn reconciles_namespace(&self, namespace: &str) -> bool {
        namespace == self.controller_namespace || self.application_namespaces.matches(namespace)
    }
}

/// What a [`Context`] is made of (the process, the CLI and tests wire these up).
pub struct ContextParts {
    /// The management cluster's client (fenced in the controller).
    pub client: Client,
    /// Cluster Secrets (destinations).
    pub clusters: ClusterRegistry,
    /// AppProjects.
    pub projects: ProjectRegistry,
    /// The repository cache (shared with the ApplicationSet controller).
    pub repos: Arc<GitRepos>,
    /// Helm charts from Helm repositories and OCI registries.
    pub charts: Arc<ChartRepos>,
    /// Renders sources to manifests.
    pub renderer: Arc<Renderer>,
    /// Clients of the destination clusters.
    pub clients: Arc<ClusterClients>,
    /// The live objects, watched per cluster and kind.
    pub live: Arc<LiveCache>,
    /// Where Events go.
    pub events: EventPublisher,
    /// `true` while this replica holds the Lease; `None`: no leader election.
    pub leader: Option<tokio::sync::watch::Receiver<bool>>,
    /// The engine's settings.
    pub config: Config,
}

/// Shared state of the Application controller.
pub struct Context {
    /// The clients writes go through (per cluster with sharding).
    pub writers: Writers,
    pub clusters: ClusterRegistry,
    pub projects: ProjectRegistry,
    pub repos: Arc<GitRepos>,
    pub charts: Arc<ChartRepos>,
    pub renderer: Arc<Renderer>,
    pub clients: Arc<ClusterClients>,
    pub live: Arc<LiveCache>,
    pub events: EventPublisher,
    pub leader: Option<tokio::sync::watch::Receiver<bool>>,
    pub config: Config,
    /// What the engine remembers per app between reconciles (see [`AppRecord`]).
    records: Mutex<HashMap<AppKey, AppRecord>>,
    /// The engine's own writes to Applications (status, the removal of a refresh request)
    /// under way or awaiting their watch event, whose echo triggers no reconcile (kept
    /// apart: [`Echoes`] tracks its own lifecycle per key).
    own_writes: Mutex<Echoes<AppKey>>,
    pub metrics: Metrics,
    /// Where sync failures and Degraded health are notified (disabled until
    /// [`Self::with_notifier`]).
    notifier: crate::notify::Notifier,
    /// Consecutive contained panics per app ([`crate::contain`]), for the requeue backoff.
    panics: crate::contain::PanicBackoff,
}

impl Context {
    /// The context of the controller over `parts` (metrics off until [`Self::with_metrics`]).
    pub fn new(parts: ContextParts) -> Self {
        let ContextParts {
            client,
            clusters,
            projects,
            repos,
            charts,
            renderer,
            clients,
            live,
            events,
            leader,
            config,
        } = parts;
        Self {
            writers: Writers::unsharded(client),
            clusters,
            projects,
            repos,
            charts,
            renderer,
            clients,
            live,
            events,
            leader,
            config,
            records: Mutex::default(),
            own_writes: Mutex::default(),
            metrics: Metrics::default(),
            notifier: crate::notify::Notifier::disabled(),
            panics: crate::contain::PanicBackoff::default(),
        }
    }

    /// Reports syncs and reconciles to `metrics` (the `/metrics` registry).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Shards the Applications by destination cluster: this replica reconciles only those
    /// of the clusters `shard` holds, and writes for them through each cluster's gate over
    /// `unfenced` (see the `shard` module).
    #[must_use]
    pub fn with_shard(
        mut self,
        shard: argosy_sync_engine::shard::ShardFence,
        unfenced: Client,
    ) -> Self {
        let leader = self.writers.client(None);
        self.writers = Writers::sharded(leader, shard, unfenced);
        self
    }

    /// Lets go of what this replica kept for clusters it no longer holds (with sharding):
    /// their watches (the memory of their live objects), their clients and gated clients.
    pub fn let_go_of_unheld(&self) {
        self.writers.retain_held();
        self.clients
            .retain(|server| self.writers.holds_server(server));
        for server in self.live.servers() {
            if !self.writers.holds_server(&server) {
                tracing::info!(%server, "shard: cluster let go");
                self.live.forget(&server);
            }
        }
    }

    /// A test of which Applications this replica syncs now (one copy of the cluster list
    /// for all the Applications it is asked about).
    pub fn owns_filter(&self) -> Box<dyn Fn(&Application) -> bool> {
        let clusters = self.clusters.valid_clusters();
        let leads = self.is_leader();
        let ownership = self.writers.ownership();
        Box::new(move |app| ownership.reconciles(&Owner::of(app, &clusters), leads))
    }

    /// The client writes for `app` go through: its owner's, as recorded by this pass.
    fn writer(&self, app: &Application) -> Client {
        let owner = lock(&self.records)
            .get(&AppKey::of(app))
            .and_then(|r| r.owner.clone());
        self.writers.client(owner.as_ref())
    }

    /// Notifies sync failures and health turning Degraded through `notifier`.
    #[must_use]
    pub fn with_notifier(mut self, notifier: crate::notify::Notifier) -> Self {
        self.notifier = notifier;
        self
    }

    /// Runs `f` on `key`'s record; a record left with nothing in it is dropped.
    fn record<R>(&self, key: &AppKey, f: impl FnOnce(&mut AppRecord) -> R) -> R {
        let mut records = lock(&self.records);
        let record = records.entry(key.clone()).or_default();
        let result = f(record);
        if record.is_empty() {
            records.remove(key);
        }
        result
    }

    fn is_leader(&self) -> bool {
        self.leader.as_ref().is_none_or(|rx| *rx.borrow())
    }

    /// Connection state of every destination cluster, for `/metrics` and the dashboard:
    /// the clients' record, with a failing watch as the error when no request failed (a
    /// stopped cluster fails its watches first, and reconciles then skip the requests).
    pub fn cluster_states(&self) -> Vec<(String, argosy_sync_engine::clients::ClusterState)> {
        let mut states = self.clients.states();
        for (server, state) in &mut states {
            if state.last_error.is_none() {
                state.last_error = self.live.unreachable(server);
            }
        }
        states
    }
}

/// An Application in the engine's records: its namespace and name (one key for every
/// record, so no two spellings of the same app can diverge).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct AppKey {
    namespace: String,
    name: String,
}

impl std::fmt::Display for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl AppKey {
    fn of(app: &Application) -> AppKey {
        AppKey {
            namespace: app.metadata.namespace.clone().unwrap_or_default(),
            name: app.metadata.name.clone().unwrap_or_default(),
        }
    }
}

/// What the engine remembers about one app between reconciles. These records exist so a
/// reconcile never acts on a cache that has not caught up with the engine's own writes.
#[derive(Debug, Default)]
struct AppRecord {
    /// Self-heal attempts (backoff between repeated reverts); reset when Synced.
    self_heal: SelfHeal,
    /// The resourceVersion of the app's last status write, until the cache has it: a
    /// reconcile must not act on the state from before its own previous write (a cleared
    /// `operation` would run again, a completed hook twice).
    written: Option<u64>,
    /// The resourceVersions of the objects the app's last sync applied, until the live
    /// watches have them: a reconcile must not take the pre-apply copy in the watch cache
    /// for drift and apply again.
    applied: Option<AppliedVersions>,
    /// Failed finalizer passes in a row (their retries back off).
    finalize_failures: u32,
    /// Who reconciles the app, as the last pass found (its writes' gate).
    owner: Option<Owner>,
}

impl AppRecord {
    fn is_empty(&self) -> bool {
        self.self_heal == SelfHeal::default()
            && self.written.is_none()
            && self.applied.is_none()
            && self.finalize_failures == 0
            && self.owner.is_none()
    }
}

/// Failures that go to the error policy (transient, retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the status of Application {app}: {source}")]
    WriteStatus {
        app: String,
        #[source]
        source: kube::Error,
    },
    #[error("removing the finalizer of Application {app}: {source}")]
    RemoveFinalizer {
        app: String,
        #[source]
        source: kube::Error,
    },
    #[error("removing the refresh request of Application {app}: {source}")]
    RemoveRefreshRequest {
        app: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Error::WriteStatus { .. } => "write_status",
            Error::RemoveFinalizer { .. } => "remove_finalizer",
            Error::RemoveRefreshRequest { .. } => "remove_refresh_request",
        }
    }
}

/// Requeue after a transient failure.
pub fn error_policy(_app: Arc<Application>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %error, category = error.category(), "application reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// Why an app could not be observed; reported as a condition, nothing is written to
/// the destination cluster.
struct Problem {
    condition: ConditionType,
    message: String,
    retry: Duration,
    /// Reading Git failed: a refresh request stays for the next pass (Argo CD's
    /// `ErrCompareStateRepo`).
    reading_git: bool,
}

impl Problem {
    fn comparison(message: impl Into<String>) -> Self {
        Self {
            condition: ConditionType::ComparisonError,
            message: message.into(),
            retry: Duration::from_secs(15),
            reading_git: false,
        }
    }

    fn git(message: impl Into<String>) -> Self {
        Self {
            reading_git: true,
            ..Self::comparison(message)
        }
    }

    fn spec(message: impl Into<String>) -> Self {
        Self {
            condition: ConditionType::InvalidSpecError,
            message: message.into(),
            // A missing cluster Secret or project may appear any moment.
            retry: Duration::from_secs(15),
            reading_git: false,
        }
    }
}

/// What one observation found.
struct Observed {
    conn: Arc<ClusterConn>,
    /// The destination cluster (its Secret's scope limits what may be written).
    cluster: Cluster,
    /// The app's project, compiled (what may be written).
    policy: ProjectPolicy,
    deployed: Deployed,
    /// The type of each rendered source (reference-only sources render nothing).
    source_types: Vec<&'static str>,
    desired: Vec<DesiredObject>,
    reach: BTreeMap<(String, String), Reach>,
    live: BTreeMap<ObjKey, Value>,
    /// Kinds whose CRD is part of this render but not served yet.
    pending_kinds: Vec<String>,
    warnings: Vec<String>,
}

/// The requested operation (`argosy app sync`/`rollback`, or Argo CD's CLI): as written
/// (what the render reads) and typed (what the decision and the state read).
#[derive(Clone, Debug, Default, PartialEq)]
struct Requested {
    raw: Value,
    typed: argosy_crds::Operation,
    /// Why it cannot be read; the operation then fails at once (Error phase).
    invalid: Option<String>,
}

fn operation_of(app: &Application) -> Option<Requested> {
    let raw = app.operation.as_ref()?;
    raw.get("sync")?;
    Some(match argosy_crds::Operation::deserialize(raw) {
        Ok(typed) => Requested {
            raw: raw.clone(),
            typed,
            invalid: None,
        },
        Err(e) => Requested {
            raw: raw.clone(),
            typed: argosy_crds::Operation::default(),
            invalid: Some(format!("operation is invalid: {e}")),
        },
    })
}

/// `status.operationState`, typed; one that cannot be read is reported and treated as
/// absent (a new operation starts over it).
fn recorded_state(app: &Application, warnings: &mut Vec<String>) -> Option<OperationState> {
    match app.status.as_ref()?.operation_state()? {
        Ok(state) => Some(state),
        Err(e) => {
            warnings.push(format!("status.operationState cannot be read: {e}"));
            None
        }
    }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// One pass over an Application (timed for `/metrics`).
pub async fn reconcile(app: Arc<Application>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    // Every log line of this pass (observe, plan, execute, write) carries the app and
    // its destination.
    let span = tracing::info_span!(
        "reconcile",
        app = %format!(
            "{}/{}",
            app.metadata.namespace.as_deref().unwrap_or_default(),
            app.metadata.name.as_deref().unwrap_or_default()
        ),
        cluster = %destination_label(&app),
    );
    let key = AppKey::of(&app).to_string();
    let result =
        match crate::contain::catch(reconcile_app(&app, &ctx).instrument(span.clone())).await {
            Ok(result) => {
                ctx.panics.recovered(&key);
                result
            }
            Err(message) => Ok(reconcile_panicked(&app, &ctx, &key, &message)
                .instrument(span)
                .await),
        };
    ctx.metrics.app_reconciled(
        &app,
        result.as_ref().map(|_| ()).map_err(Error::category),
        started.elapsed(),
    );
    result
}

/// A contained panic of [`reconcile_app`]: counted, reported on the Application (a
/// `ReconcileError` condition, best effort, and a Warning Event) and retried with backoff.
async fn reconcile_panicked(app: &Application, ctx: &Context, key: &str, message: &str) -> Action {
    let retry = ctx.panics.panicked(key);
    ctx.metrics.reconcile_panicked("application");
    let why = crate::contain::report(message);
    tracing::error!(%why, retry = ?retry, "reconcile panicked");
    let existing = app
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    let report = Report::unknown(&existing, ConditionType::ReconcileError, why.clone());
    if let Err(e) = write_status(app, ctx, &existing, &report, false).await {
        tracing::warn!(error = %e, "reporting the panic in the status failed");
    }
    warn(ctx, app, ConditionType::ReconcileError.as_str(), &why).await;
    Action::requeue(retry)
}

async fn reconcile_app(app: &Arc<Application>, ctx: &Arc<Context>) -> Result<Action, Error> {
    let (app, ctx) = (app.clone(), ctx.clone());
    // Test-only: a reconcile that panics, to prove containment (never in the binary).
    #[cfg(test)]
    if app.metadata.name.as_deref() == Some(tests::PANICS) {
        panic!("injected by a test");
    }
    let name = app.metadata.name.clone().unwrap_or_default();
    let namespace = app.metadata.namespace.clone().unwrap_or_default();
    if !ctx.config.reconciles_namespace(&namespace) {
        // Not ours (Argo CD ignores these too): no status, no finalizer, no write.
        return Ok(Action::await_change());
    }
    // Whose is it: the replica holding its destination cluster (or the leader). A
    // half-loaded cluster list would make every app look unresolved: wait for it.
    if !ctx.clusters.ready().await {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let owner = Owner::of(&app, &ctx.clusters.valid_clusters());
    if !ctx.writers.reconciles(&owner, ctx.is_leader()) {
        // Another replica's (a gained cluster reconciles all its apps here).
        return Ok(Action::await_change());
    }
    ctx.record(&AppKey::of(&app), |r| r.owner = Some(owner));
    let instance = resource::app_instance(&namespace, &name, &ctx.config.controller_namespace);
    let key = AppKey::of(&app);
    let existing = app
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    if cache_is_behind(&ctx, &app, &key) {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    if app.metadata.deletion_timestamp.is_some() {
        // A deleted app is not synced again: nothing to wait for.
        ctx.record(&key, |r| r.applied = None);
        return finalize(&app, &ctx, &instance, &existing).await;
    }
    // Destinations and projects are looked up in caches: wait for their first list.
    if !(ctx.clusters.ready().await && ctx.projects.ready().await) {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let refresh = Request::of_app(&app);
    if let Some(request) = &refresh {
        refresh_sources(&ctx, &app, request);
    }
    let operation = operation_of(&app);
    let observed = match observe(&app, &ctx, &instance, &existing, operation.as_ref())
        .instrument(tracing::info_span!("observe"))
        .await
    {
        Ok(o) => o,
        Err(problem) => {
            let mut report = Report::unknown(&existing, problem.condition, problem.message.clone());
            // A requested operation that cannot even start fails now (as in Argo CD)
            // rather than blocking every later request until someone clears it.
            let failed_operation = operation
                .as_ref()
                .map(|op| operation::errored(op.typed.clone(), problem.message.clone(), &now()));
            report.operation_state = failed_operation.as_ref().map(state_json);
            if write_status(&app, &ctx, &existing, &report, failed_operation.is_some()).await? {
                warn(&ctx, &app, problem.condition.as_str(), &problem.message).await;
            }
            if let Some(state) = &failed_operation {
                ctx.metrics.app_synced(&app, "Error");
                tracing::info!(app = %instance, state = %state.message, "operation failed before it started");
            }
            if let Some(request) = refresh.as_ref().filter(|_| !problem.reading_git) {
                remove_refresh_request(&app, &ctx, request).await?;
            }
            return Ok(Action::requeue(problem.retry));
        }
    };
    let Observed {
        conn,
        cluster,
        policy,
        deployed,
        source_types,
        desired,
        reach,
        mut live,
        pending_kinds,
        mut warnings,
    } = observed;
    if live_is_behind(&ctx, &key, &live) {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let ignore = ignore_rules(&app, &mut warnings);
    let recorded = recorded_state(&app, &mut warnings);
    let states =
        tracing::info_span!("plan").in_scope(|| plan::compare(&desired, &live, &instance, &ignore));
    // What the sync would create, update or prune, against the tenant's boundary.
    let touched: std::collections::BTreeSet<&ObjKey> =
        desired.iter().map(|d| &d.key).chain(live.keys()).collect();
    let findings = boundary::check(&policy, &cluster, touched);
    let forbidden = boundary::summary(&findings);
    if let Some(first) = findings.first() {
        ctx.metrics.sync_refused(&app, first.category());
    }
    let windows = policy.sync_windows(&name, &app.spec.destination);
    warnings.extend(windows.warnings());
    let wall_now = k8s_openapi::jiff::Timestamp::now();
    let input = DecideInput {
        operation: operation.as_ref().map(|o| &o.typed),
        recorded: recorded.as_ref(),
        policy: app.spec.sync_policy.as_ref(),
        desired: &desired,
        states: &states,
        deployed: &deployed,
        forbidden: forbidden.as_deref(),
        windows: &windows,
        wall_now,
    };
    let heal = ctx.record(&key, |r| r.self_heal);
    let (decision, heal) = decide::decide(&input, heal, Instant::now());
    ctx.record(&key, |r| r.self_heal = heal);

    let mut outcome = Outcome::new(warnings, ctx.config.resync);
    if let Some(warning) = orphan_warning(&ctx, &app, &policy, &conn.server, &desired) {
        outcome
            .conditions
            .push((ConditionType::OrphanedResourceWarning, warning));
    }
    match decision {
        Decision::Nothing => {}
        Decision::Wait(after) => outcome.requeue = outcome.requeue.min(after),
        Decision::Refuse(why) => {
            if forbidden.as_deref() == Some(why.as_str()) && !has_condition(&existing, &why) {
                outcome.event = Some((EventType::Warning, "SyncRefused", why.clone()));
            }
            outcome.conditions.push((ConditionType::SyncError, why));
        }
        Decision::Blocked { blocked, hold } => {
            let why = blocked.to_string();
            if let Some(held) = hold {
                let message = format!("{}: {why}", decide::HELD_MESSAGE);
                let state = operation::held(recorded.as_ref(), *held, message, &now());
                outcome.operation_state = Some(state);
            }
            // One Event when the block starts (or its window or opening changes), not one
            // per reconcile.
            if !has_condition(&existing, &why) {
                outcome.event = Some((EventType::Normal, "SyncBlocked", why.clone()));
            }
            if let Some(wait) = blocked
                .opens_at
                .and_then(|at| std::time::Duration::try_from(at.duration_since(wall_now)).ok())
            {
                // Exactly when the window lets the sync through (not sooner: no polling).
                outcome.requeue = outcome.requeue.min(wait.max(Duration::from_secs(1)));
            }
            outcome
                .conditions
                .push((ConditionType::SyncWindowBlocked, why));
        }
        Decision::Fail { operation, why } => {
            let state = operation::errored(*operation, why.clone(), &now());
            outcome
                .conditions
                .push((ConditionType::SyncError, why.clone()));
            outcome.clear_operation = true;
            outcome.event = Some((EventType::Warning, "SyncFailed", why));
            outcome.operation_state = Some(state);
        }
        Decision::Sync(sync) => {
            let started = operation::started_at(recorded.as_ref(), sync.continues, &now());
            let options = sync_options(&app);
            // The destination namespace passed the project's destinations; a cluster
            // Secret limited to namespaces without clusterResources forbids creating any.
            let may_create_namespaces = cluster.namespaces.is_empty() || cluster.cluster_resources;
            if options.iter().any(|o| o == "CreateNamespace=true") && may_create_namespaces {
                let ns = &app.spec.destination.namespace;
                if !ns.is_empty()
                    && let Err(e) = execute::ensure_namespace(&*conn, ns).await
                {
                    outcome
                        .conditions
                        .push((ConditionType::SyncError, e.to_string()));
                }
            }
            let live_options = |key: &ObjKey| {
                live.get(key)
                    .map(|l| ResourceOptions::of(l, &options))
                    .unwrap_or_default()
            };
            let sync_plan = plan::steps(&desired, &states, sync.prune, sync.hooks, &live_options);
            let done_hooks = if sync.continues {
                operation::completed_hooks(recorded.as_ref())
            } else {
                Default::default()
            };
            let sync_fail_hooks: std::collections::BTreeSet<ObjKey> = sync_plan
                .sync_fail
                .iter()
                .filter_map(|&i| desired.get(i).map(|d| d.key.clone()))
                .collect();
            let health_checks = ctx.config.health.current();
            let mut target = Target {
                health: &health_checks,
                desired: &desired,
                reach: &reach,
                live: &mut live,
                operation_id: &started,
                done_hooks: &done_hooks,
                concurrency: ctx.config.concurrency,
                app: &instance,
                prune_approved: resource::deletion_approved(
                    app.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(resource::DELETION_APPROVED_ANNOTATION))
                        .map(String::as_str),
                    &started,
                ),
            };
            // An operation that already failed and waits for its SyncFail hooks does not
            // apply again; it only follows the hooks.
            let failed_before = recorded
                .as_ref()
                .filter(|_| sync.continues)
                .and_then(operation::recorded_sync_failure);
            let mut executed = match failed_before {
                Some(_) => execute::Executed::default(),
                None => {
                    announce_writes(&ctx, &conn.server, &reach, &desired);
                    let executed = execute::run(&*conn, &mut target, &sync_plan)
                        .instrument(tracing::info_span!("execute", server = %conn.server))
                        .await;
                    settle_writes(&ctx, &conn.server, &reach, &desired, &executed);
                    executed
                }
            };
            remember_applied(&ctx, &key, &executed);
            let failure = failed_before.or_else(|| executed.failure());
            let sync_fail = match failure {
                Some(_) if !sync_plan.sync_fail.is_empty() => Some(
                    execute::run_sync_fail_hooks(&*conn, &mut target, &sync_plan, &mut executed)
                        .instrument(tracing::info_span!("execute", server = %conn.server))
                        .await,
                ),
                _ => None,
            };
            let pass = operation::Pass {
                request: &sync,
                executed: &executed,
                failure,
                sync_fail,
                sync_fail_hooks: &sync_fail_hooks,
                deployed: &deployed,
            };
            let (state, progress) = operation::next(recorded.as_ref(), &pass, &started, &now());
            outcome.progressed(
                &app,
                &ctx,
                PassEnd {
                    sync: &sync,
                    state: &state,
                    progress,
                    executed: &executed,
                    deployed: &deployed,
                    started: &started,
                },
            );
            outcome.operation_state = Some(state);
        }
    }
    if !pending_kinds.is_empty() {
        outcome.requeue = Duration::from_secs(2);
    }

    let states = plan::compare(&desired, &live, &instance, &ignore);
    let Outcome {
        conditions,
        operation_state,
        history_entry,
        clear_operation,
        requeue,
        event,
    } = outcome;
    let phase = operation_state.as_ref().map(|s| s.phase.clone());
    let report = build_report(
        &Observation {
            app: &app,
            states: &states,
            desired: &desired,
            live: &live,
            reach: &reach,
            deployed: &deployed,
            source_types: &source_types,
            health: &ctx.config.health.current(),
        },
        conditions,
        operation_state.as_ref().map(state_json),
        history_entry,
    );
    let synced = report.sync == AppSync::Synced;
    ctx.record(&key, |r| r.self_heal = r.self_heal.after_compare(synced));
    write_status(&app, &ctx, &existing, &report, clear_operation)
        .instrument(tracing::info_span!("write"))
        .await?;
    if let Some(request) = &refresh {
        remove_refresh_request(&app, &ctx, request).await?;
    }
    if let Some(phase) = phase {
        ctx.metrics.app_synced(&app, phase.as_str());
    }
    if let Some((kind, reason, note)) = event {
        publish(&ctx, &app, kind, reason, &note).await;
    }
    Ok(Action::requeue(requeue))
}

/// How one sync pass ended, for [`Outcome::progressed`].
struct PassEnd<'a> {
    sync: &'a SyncRequest,
    state: &'a OperationState,
    progress: Progress,
    executed: &'a Executed,
    deployed: &'a Deployed,
    started: &'a str,
}

/// What a reconcile reports and does after deciding: built up by the decision and the
/// operation's progress, then written once.
struct Outcome {
    conditions: Vec<(ConditionType, String)>,
    /// The new `operationState`, when an operation ran or progressed.
    operation_state: Option<OperationState>,
    /// The history entry of a completed sync.
    history_entry: Option<Value>,
    /// Clear `Application.operation` (a manual operation completed).
    clear_operation: bool,
    requeue: Duration,
    event: Option<(EventType, &'static str, String)>,
}

impl Outcome {
    /// Nothing done yet: the observation's warnings as conditions, the periodic resync.
    fn new(warnings: Vec<String>, resync: Duration) -> Outcome {
        Outcome {
            conditions: warnings
                .into_iter()
                .map(|w| (ConditionType::Warning, w))
                .collect(),
            operation_state: None,
            history_entry: None,
            clear_operation: false,
            requeue: resync,
            event: None,
        }
    }

    /// Follows the operation's progress after a sync pass.
    fn progressed(&mut self, app: &Application, ctx: &Context, pass: PassEnd<'_>) {
        let PassEnd {
            sync,
            state,
            progress,
            executed,
            deployed,
            started,
        } = pass;
        let resync = ctx.config.resync;
        match progress {
            Progress::Running(why) => {
                self.requeue = Duration::from_secs(2);
                tracing::debug!(app = ?app.metadata.name, %why, "sync waiting");
            }
            Progress::Failed(why) => {
                self.conditions
                    .push((ConditionType::SyncError, why.clone()));
                self.clear_operation = sync.manual;
                // Requeues are capped at the resync period: the controller's delay queue
                // refuses times years away (a huge backoff is legal).
                let policy = app.spec.sync_policy.as_ref();
                self.requeue = match decide::retry_after(policy, state.retry_count) {
                    Ok(delay) => delay.unwrap_or(resync).min(resync),
                    Err(e) => {
                        self.conditions
                            .push((ConditionType::SyncError, e.to_string()));
                        resync
                    }
                };
                self.event = Some((EventType::Warning, "SyncFailed", why));
            }
            Progress::Succeeded => {
                self.clear_operation = sync.manual;
                self.history_entry = Some(status::history_entry(deployed, started, &now()));
                self.event = Some((
                    EventType::Normal,
                    "Synced",
                    format!(
                        "synced to {}: {} applied, {} pruned",
                        deployed.short(),
                        executed.count(false),
                        executed.count(true)
                    ),
                ));
            }
        }
    }
}

/// `operationState` as written to the status (Argo CD's shape).
fn state_json(state: &OperationState) -> Value {
    serde_json::to_value(state).unwrap_or(Value::Null)
}

/// Argo CD's orphaned-resource warning, when the project asks for it: the top-level objects
/// in the destination namespace that no app tracks and this app does not render (among
/// the kinds watched on the cluster).
fn orphan_warning(
    ctx: &Context,
    app: &Application,
    policy: &ProjectPolicy,
    server: &str,
    desired: &[DesiredObject],
) -> Option<String> {
    let namespace = &app.spec.destination.namespace;
    if !policy.warns_orphans() || namespace.is_empty() {
        return None;
    }
    let orphans = ctx
        .live
        .untracked_top_level(server, namespace)
        .into_iter()
        .filter(|k| !desired.iter().any(|d| &d.key == k))
        .filter(|k| policy.counts_as_orphan(&k.group, &k.kind, &k.namespace, &k.name))
        .count();
    (orphans > 0).then(|| format!("Application has {orphans} orphaned resources"))
}

/// Whether the recorded status already carries a condition with this message (an Event
/// is published when a refusal is new, not on every resync).
fn has_condition(existing: &Value, message: &str) -> bool {
    existing
        .get("conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.get("message").and_then(Value::as_str) == Some(message))
        })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The destination as the app names it (server, else cluster name), for log spans.
fn destination_label(app: &Application) -> &str {
    let destination = &app.spec.destination;
    if destination.server.is_empty() {
        &destination.name
    } else {
        &destination.server
    }
}

fn sync_options(app: &Application) -> Vec<String> {
    app.spec
        .sync_policy
        .as_ref()
        .map(|p| p.sync_options.clone())
        .unwrap_or_default()
}

fn ignore_rules(app: &Application, warnings: &mut Vec<String>) -> Vec<IgnoreRule> {
    let mut rules = Vec::new();
    for (i, raw) in app.spec.ignore_differences.iter().enumerate() {
        match serde_json::from_value::<IgnoreRule>(raw.clone()) {
            Ok(r) => rules.push(r),
            Err(e) => warnings.push(format!("spec.ignoreDifferences[{i}] is invalid: {e}")),
        }
    }
    for error in plan::invalid_ignore_expressions(&rules) {
        warnings.push(format!(
            "spec.ignoreDifferences: {error}; the expression is not applied"
        ));
    }
    rules
}

/// The app's `AppProject`, compiled with the project-scoped clusters. `default` without an
/// `AppProject` of that name is Argo CD's built-in default (everything permitted to
/// Applications of the control plane's namespace); any other missing project is an error.
fn project_policy(
    app: &Application,
    ctx: &Context,
    clusters: &[Cluster],
) -> Result<ProjectPolicy, Problem> {
    let name = if app.spec.project.is_empty() {
        "default"
    } else {
        &app.spec.project
    };
    let project = match ctx.projects.project(name) {
        Some(project) => project,
        None if name == "default" => Arc::new(AppProject::builtin_default()),
        None => return Err(Problem::spec(format!("project {name} does not exist"))),
    };
    Ok(ProjectPolicy::new(&project, clusters))
}

/// The cluster the app's destination means, by the one resolver every part of Argosy
/// uses (so the engine, the dashboard and the CLI agree).
fn destination_cluster(app: &Application, clusters: &[Cluster]) -> Result<Cluster, Problem> {
    resolve_destination(&app.spec.destination, clusters)
        .map(std::borrow::Cow::into_owned)
        .map_err(|e| match e {
            DestinationError::UnknownServer { server: unknown }
            | DestinationError::UnknownName { name: unknown } => Problem::spec(format!(
                "destination cluster {unknown} is not registered (no cluster Secret with this server/name)"
            )),
            other => Problem::spec(format!("destination: {other}")),
        })
}

async fn observe(
    app: &Application,
    ctx: &Context,
    instance: &str,
    existing: &Value,
    operation: Option<&Requested>,
) -> Result<Observed, Problem> {
    if let Some(why) = operation.and_then(|o| o.invalid.clone()) {
        return Err(Problem::spec(why));
    }
    let wanted = Wanted::of(app, operation.map(|o| &o.raw)).map_err(Problem::spec)?;
    // One copy of the cluster list for the destination and the project's scoped clusters.
    let clusters = ctx.clusters.valid_clusters();
    let cluster = destination_cluster(app, &clusters)?;
    let policy = project_policy(app, ctx, &clusters)?;
    // The tenant boundary, before any repository is read or cluster contacted.
    let refused = |v: argosy_crds::Violation| Problem::spec(v.to_string());
    policy
        .check_app_namespace(
            app.metadata.namespace.as_deref().unwrap_or_default(),
            &ctx.config.controller_namespace,
        )
        .map_err(refused)?;
    for (source, _) in &wanted.sources {
        policy.check_source(&source.repo_url).map_err(refused)?;
    }
    let destination = &app.spec.destination;
    policy
        .check_destination(
            &cluster,
            &destination.namespace,
            !destination.name.is_empty(),
        )
        .map_err(refused)?;

    let conn = ctx
        .clients
        .connect(&cluster)
        .await
        .map_err(|e| Problem::comparison(e.to_string()))?;
    if let Some(why) = ctx.live.unreachable(&conn.server) {
        let unreachable = status::Unreachable {
            server: conn.server.clone(),
            reason: why,
        };
        return Err(Problem {
            condition: status::Unreachable::CONDITION,
            ..Problem::comparison(unreachable.to_string())
        });
    }

    // Helm renders for the destination's version and APIs (`.Capabilities`), as Argo CD.
    let capabilities = conn
        .capabilities()
        .await
        .map_err(|e| Problem::comparison(e.to_string()))?;
    let repos = ctx.repos.clone();
    let charts = ctx.charts.clone();
    let renderer = ctx.renderer.clone();
    let render_wanted = wanted.clone();
    let project = app.spec.project.clone();
    let app_name = app.metadata.name.clone().unwrap_or_default();
    let app_ns = app.spec.destination.namespace.clone();
    let render_policy = policy.clone();
    let (commits, renders) = tokio::task::spawn_blocking(move || {
        let target = RenderTarget {
            app_name: &app_name,
            namespace: &app_ns,
            kube_version: &capabilities.kube_version,
            api_versions: &capabilities.api_versions,
        };
        let readers = SourceReaders {
            repos: repos.for_project(&project),
            // Project-scoped repository Secrets serve only their project's Applications.
            charts: charts.for_project(&project),
            policy: &render_policy,
            renderer: &renderer,
        };
        let rendered = render_sources(&readers, &render_wanted, target).map_err(|e| match e {
            SourcesError::Fetch(message) => Problem::git(message),
            SourcesError::Render(message) => Problem::comparison(message),
        })?;
        Ok::<_, Problem>((rendered.commits, rendered.renders))
    })
    .await
    .map_err(|e| Problem::comparison(format!("rendering task failed: {e}")))??;
    let objects = || renders.iter().flat_map(|r| r.objects.iter());
    tracing::debug!(app = instance, objects = objects().count(), commits = ?commits, "rendered");
    let deployed = Deployed::new(
        wanted
            .sources
            .iter()
            .map(|(source, _)| serde_json::to_value(source).unwrap_or(Value::Null))
            .collect(),
        commits,
        wanted.multi,
    );

    tracing::debug!(app = instance, server = %conn.server, "connected");
    let options = sync_options(app);
    let destination_ns = app.spec.destination.namespace.clone();
    let mut reach: BTreeMap<(String, String), Reach> = BTreeMap::new();
    let mut desired = Vec::with_capacity(objects().count());
    let mut pending_kinds = Vec::new();
    let mut warnings = Vec::new();
    let crd_kinds = crd_kinds(objects());
    for object in objects() {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let group = resource::group_of(api_version).to_owned();
        let reach_key = (group.clone(), kind.to_owned());
        if !reach.contains_key(&reach_key) {
            match conn.resource(api_version, kind).await {
                Ok((resource, scope)) => {
                    reach.insert(reach_key.clone(), Reach { resource, scope });
                }
                Err(e) if crd_kinds.contains(&reach_key) => {
                    tracing::debug!(error = %e, "kind defined by a CRD of this app; waiting for it");
                    pending_kinds.push(format!("{kind}.{group}"));
                    continue;
                }
                Err(e) => return Err(Problem::comparison(e.to_string())),
            }
        }
        let Some(r) = reach.get(&reach_key) else {
            continue;
        };
        match normalize(object, r, &destination_ns, instance, &options) {
            Ok(d) => {
                if desired.iter().any(|o: &DesiredObject| o.key == d.key) {
                    warnings.push(format!("{} is rendered twice; the first is used", d.key));
                } else {
                    desired.push(d);
                }
            }
            Err(e) => return Err(Problem::comparison(e)),
        }
    }
    // Kinds of what the app deployed before (to find objects to prune).
    add_deployed_kinds(&conn, existing, &mut reach).await;
    tracing::debug!(app = instance, kinds = reach.len(), "kinds resolved");
    // Namespaces: the rendered objects', the destination's, and those of what the app
    // deployed before (objects left where it no longer renders to are still pruned).
    let mut namespaces = used_namespaces(app, existing);
    for d in &desired {
        if reach
            .get(&(d.key.group.clone(), d.key.kind.clone()))
            .is_some_and(|r| matches!(r.scope, argosy_sync_engine::clients::Scope::Namespaced))
        {
            namespaces.insert(d.key.namespace.clone());
        }
    }
    watch_kinds(ctx, &conn, &cluster, app, instance, &reach, namespaces).await?;
    let mut live: BTreeMap<ObjKey, Value> = ctx
        .live
        .tracked(&conn.server, instance)
        .into_iter()
        .collect();
    for d in &desired {
        if live.contains_key(&d.key) {
            continue;
        }
        if let Some(r) = reach.get(&(d.key.group.clone(), d.key.kind.clone()))
            && let Some(v) = ctx.live.get(&conn.server, &r.resource, &d.key)
        {
            live.insert(d.key.clone(), v);
        }
    }
    Ok(Observed {
        conn,
        cluster,
        policy,
        deployed,
        source_types: renders
            .iter()
            .map(|r| source_type_name(r.source_type))
            .collect(),
        desired,
        reach,
        live,
        pending_kinds,
        warnings,
    })
}

/// Observes and compares `app` as a reconcile does (render from Git, normalize, read the
/// live objects through `ctx.live`, apply `ignoreDifferences`), against the spec's source
/// (a pending operation is not looked at), and writes nothing.
pub async fn compare_app(app: &Application, ctx: &Context) -> Result<Comparison, String> {
    let instance = resource::app_instance(
        app.metadata.namespace.as_deref().unwrap_or_default(),
        app.metadata.name.as_deref().unwrap_or_default(),
        &ctx.config.controller_namespace,
    );
    let existing = app
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    let observed = observe(app, ctx, &instance, &existing, None)
        .await
        .map_err(|p| format!("{}: {}", p.condition.as_str(), p.message))?;
    let mut warnings = observed.warnings;
    warnings.extend(observed.pending_kinds.iter().map(|k| {
        format!("kind {k} is defined by a CRD of this app and not served yet; not compared")
    }));
    let ignore = ignore_rules(app, &mut warnings);
    let states = plan::compare(&observed.desired, &observed.live, &instance, &ignore);
    Ok(Comparison {
        desired: observed.desired,
        live: observed.live,
        states,
        warnings,
    })
}

/// Declares what the app needs watched on its cluster (every kind in `reach`, in
/// `namespaces`, plus the managers its `ignoreDifferences` reads) and waits for the first
/// lists of new watches (an app's first reconcile on a cluster waits for them). A cluster
/// whose Secret lists `namespaces` is watched only there, and its cluster-scoped kinds
/// only with `clusterResources` (its credentials may allow nothing else; the boundary
/// check refuses writes outside anyway).
async fn watch_kinds(
    ctx: &Context,
    conn: &ClusterConn,
    cluster: &Cluster,
    app: &Application,
    instance: &str,
    reach: &BTreeMap<(String, String), Reach>,
    namespaces: std::collections::BTreeSet<String>,
) -> Result<(), Problem> {
    let visibility = if cluster.namespaces.is_empty() {
        Visibility::All
    } else {
        Visibility::Namespaces {
            allowed: cluster.namespaces.iter().cloned().collect(),
            cluster_resources: cluster.cluster_resources,
        }
    };
    let mut needs = Needs::default();
    for r in reach.values() {
        needs.kind(
            &r.resource,
            matches!(r.scope, argosy_sync_engine::clients::Scope::Namespaced),
        );
    }
    for namespace in &namespaces {
        needs.namespace(namespace);
    }
    for manager in ignored_managers(app) {
        needs.manager(&manager);
    }
    ctx.live
        .need(
            &conn.server,
            &conn.watch_client,
            instance,
            needs,
            visibility,
        )
        .await
        .map_err(|e| Problem::comparison(e.to_string()))
}

/// The namespaces the app uses besides its rendered objects': its destination namespace
/// and those of the resources its status lists.
fn used_namespaces(app: &Application, existing: &Value) -> std::collections::BTreeSet<String> {
    let recorded = existing
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("namespace").and_then(Value::as_str));
    std::iter::once(app.spec.destination.namespace.as_str())
        .chain(recorded)
        .filter(|ns| !ns.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The managers whose `managedFields` the app's `ignoreDifferences` reads (invalid rules
/// are reported by [`ignore_rules`]; here they name nobody).
fn ignored_managers(app: &Application) -> Vec<String> {
    app.spec
        .ignore_differences
        .iter()
        .filter_map(|raw| serde_json::from_value::<IgnoreRule>(raw.clone()).ok())
        .flat_map(|rule| rule.managed_fields_managers)
        .collect()
}

/// Adds to `reach` the kinds listed in the app's last `status.resources` that the cluster
/// still serves (a kind it no longer serves has no objects left to find).
async fn add_deployed_kinds(
    conn: &ClusterConn,
    existing: &Value,
    reach: &mut BTreeMap<(String, String), Reach>,
) {
    for r in existing
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        let (group, version, kind) = (text("group"), text("version"), text("kind"));
        let key = (group.to_owned(), kind.to_owned());
        if reach.contains_key(&key) || kind.is_empty() {
            continue;
        }
        let api_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        if let Ok((resource, scope)) = conn.resource(&api_version, kind).await {
            reach.insert(key, Reach { resource, scope });
        }
    }
}

/// `status.sourceType` as Argo CD writes it.
fn source_type_name(t: SourceType) -> &'static str {
    match t {
        SourceType::Directory => "Directory",
        SourceType::Kustomize => "Kustomize",
        SourceType::Helm => "Helm",
    }
}

/// `(group, kind)` of every CRD among the rendered objects.
fn crd_kinds<'a>(objects: impl Iterator<Item = &'a Value>) -> Vec<(String, String)> {
    objects
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"))
        .filter_map(|o| {
            Some((
                o.pointer("/spec/group")?.as_str()?.to_owned(),
                o.pointer("/spec/names/kind")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// A rendered manifest made ready to apply: namespace per scope, Argo CD's tracking id,
/// `stringData` folded into `data` (what the API server stores, so comparisons hold).
fn normalize(
    object: &Value,
    reach: &Reach,
    destination_ns: &str,
    instance: &str,
    app_options: &[String],
) -> Result<DesiredObject, String> {
    let mut object = object.clone();
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err("a manifest has no metadata".into());
    };
    match reach.scope {
        argosy_sync_engine::clients::Scope::Namespaced => {
            let ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if ns.is_empty() {
                if destination_ns.is_empty() {
                    return Err(format!(
                        "{} {} has no namespace and the Application has no destination namespace",
                        reach.resource.kind,
                        meta.get("name").and_then(Value::as_str).unwrap_or_default()
                    ));
                }
                meta.insert("namespace".into(), json!(destination_ns));
            }
        }
        argosy_sync_engine::clients::Scope::Cluster => {
            meta.remove("namespace");
        }
    }
    let key = ObjKey::of(&object).ok_or("a manifest has no kind or metadata.name")?;
    object["metadata"]["annotations"][resource::TRACKING_ANNOTATION] =
        json!(key.tracking_id(instance));
    if key.group.is_empty() && key.kind == "Secret" {
        fold_string_data(&mut object);
    }
    default_port_protocols(&mut object);
    Ok(DesiredObject {
        role: resource::role_of(&object),
        wave: resource::wave_of(&object),
        options: ResourceOptions::of(&object, app_options),
        key,
        object,
    })
}

/// Sets `protocol: TCP` on port entries that omit it (Service ports, container ports).
/// `protocol` is part of those lists' merge key, and API servers before 1.21 reject a
/// server-side apply whose port omits it ("associative list with keys has an element
/// that omits key field"); TCP is the value the server would default anyway.
fn default_port_protocols(value: &mut Value) {
    match value {
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                if k == "ports"
                    && let Value::Array(ports) = v
                {
                    for port in ports.iter_mut() {
                        if let Value::Object(p) = port
                            && (p.contains_key("port") || p.contains_key("containerPort"))
                            && !p.contains_key("protocol")
                        {
                            p.insert("protocol".into(), json!("TCP"));
                        }
                    }
                } else {
                    default_port_protocols(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(default_port_protocols),
        _ => {}
    }
}

fn fold_string_data(secret: &mut Value) {
    use base64::Engine as _;
    let Some(Value::Object(string_data)) =
        secret.as_object_mut().and_then(|o| o.remove("stringData"))
    else {
        return;
    };
    for (k, v) in string_data {
        let text = v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        secret["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

/// What one reconcile observed and compared, for [`build_report`].
struct Observation<'a> {
    app: &'a Application,
    states: &'a [ResourceState],
    desired: &'a [DesiredObject],
    live: &'a BTreeMap<ObjKey, Value>,
    reach: &'a BTreeMap<(String, String), Reach>,
    deployed: &'a Deployed,
    source_types: &'a [&'static str],
    health: &'a health::HealthChecks,
}

fn build_report(
    observation: &Observation<'_>,
    conditions: Vec<(ConditionType, String)>,
    operation_state: Option<Value>,
    history_entry: Option<Value>,
) -> Report {
    let Observation {
        app,
        states,
        desired,
        live,
        reach,
        deployed,
        source_types,
        health: health_checks,
    } = *observation;
    let mut resources = Vec::with_capacity(states.len());
    let mut codes = Vec::new();
    let mut worst_message = String::new();
    let wanted: std::collections::BTreeSet<&ObjKey> = desired.iter().map(|d| &d.key).collect();
    for state in states {
        let health = if state.missing {
            Some(Health {
                code: HealthCode::Missing,
                message: String::new(),
            })
        } else if wanted.contains(&state.key) {
            live.get(&state.key)
                .and_then(|live| health::assess_with(live, health_checks))
        } else {
            None
        };
        if let Some(h) = &health {
            if codes.iter().all(|c| *c < h.code) && !h.message.is_empty() {
                worst_message = format!("{}: {}", state.key, h.message);
            }
            codes.push(h.code);
        }
        let version = reach
            .get(&(state.key.group.clone(), state.key.kind.clone()))
            .map(|r| r.resource.version.clone())
            .unwrap_or_default();
        resources.push(ResourceReport {
            state: state.clone(),
            version,
            health,
        });
    }
    let health = health::worst(codes);
    let (source_key, source) = deployed.source_field();
    let mut compared_to = json!({"destination": app.spec.destination});
    compared_to[source_key] = source;
    Report {
        sync: status::app_sync(states),
        revision: Some(deployed.revision_field()),
        compared_to,
        health,
        health_message: worst_message,
        resources,
        conditions,
        source_type: Some(deployed.source_type_field(source_types)),
        operation_state,
        history_entry,
    }
}

/// Writes `report` if it changes the status; true when it wrote.
async fn write_status(
    app: &Application,
    ctx: &Context,
    existing: &Value,
    report: &Report,
    clear_operation: bool,
) -> Result<bool, Error> {
    let limit = app.spec.revision_history_limit.unwrap_or(10).clamp(1, 1000) as usize;
    let patch = status::status_patch(existing, report, &now(), limit);
    if patch.is_none() && !clear_operation {
        return Ok(false);
    }
    let mut body = json!({});
    if let Some(p) = patch {
        body["status"] = p;
    }
    if clear_operation {
        body["operation"] = Value::Null;
    }
    own_patch(app, ctx, FIELD_MANAGER, &Patch::Merge(&body))
        .await
        .map_err(|source| Error::WriteStatus {
            app: app.metadata.name.clone().unwrap_or_default(),
            source,
        })?;
    // What changed is written: a failed sync or Degraded health is news now, once.
    ctx.notifier.app_status_written(app, existing, report);
    Ok(true)
}

/// Sends `patch` of `app` (as `field_manager`) as one of the engine's own writes: its
/// watch echo triggers no reconcile, and no reconcile acts on a cached copy from before it.
async fn own_patch<P: serde::Serialize + std::fmt::Debug>(
    app: &Application,
    ctx: &Context,
    field_manager: &str,
    patch: &Patch<P>,
) -> Result<(), kube::Error> {
    let name = app.metadata.name.clone().unwrap_or_default();
    let api: Api<Application> = Api::namespaced(
        ctx.writer(app),
        app.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let params = PatchParams {
        field_manager: Some(field_manager.to_owned()),
        ..PatchParams::default()
    };
    let key = AppKey::of(app);
    lock(&ctx.own_writes).writing(key.clone());
    let result = api.patch(&name, &params, patch).await;
    let version = result.as_ref().ok().and_then(resource_version);
    if lock(&ctx.own_writes).written(key.clone(), version) {
        // Somebody changed the app while it was being written.
        ctx.live.wake(&resource::app_instance(
            app.metadata.namespace.as_deref().unwrap_or_default(),
            &name,
            &ctx.config.controller_namespace,
        ));
    }
    if let Some(version) = version {
        ctx.record(&key, |r| r.written = Some(version));
    }
    result.map(drop)
}

/// Acts on a refresh request before the app is observed: its repositories are checked at
/// the next read, whatever the refresh interval; a hard refresh renders them again too.
fn refresh_sources(ctx: &Context, app: &Application, request: &Request) {
    tracing::info!(hard = request.is_hard(), "refresh requested");
    for source in app.spec.source.iter().chain(&app.spec.sources) {
        ctx.repos.refresh(&source.repo_url);
        ctx.charts.refresh(&source.repo_url);
        if request.is_hard() {
            ctx.renderer.forget_results(&source.repo_url);
        }
    }
}

/// Removes a refresh request that was acted on (unless a newer one replaced it meanwhile:
/// that one stays, and its watch event reconciles again).
async fn remove_refresh_request(
    app: &Application,
    ctx: &Context,
    request: &Request,
) -> Result<(), Error> {
    match own_patch(app, ctx, refresh::FIELD_MANAGER, &request.removal()).await {
        Err(e) if refresh::superseded(&e) => {
            tracing::debug!(error = %e, "the refresh request changed meanwhile; kept");
            Ok(())
        }
        result => result.map_err(|source| Error::RemoveRefreshRequest {
            app: app.metadata.name.clone().unwrap_or_default(),
            source,
        }),
    }
}

fn resource_version(app: &Application) -> Option<u64> {
    version_of(app.metadata.resource_version.as_deref())
}

impl Context {
    /// Whether an Application watch event should trigger a reconcile: not the echo of
    /// this controller's own write (see [`argosy_sync_engine::echo`]).
    pub fn triggers_reconcile(&self, app: &Application) -> bool {
        lock(&self.own_writes).event(&AppKey::of(app), resource_version(app))
    }

    /// Drops what this engine remembers about `app`, which was deleted: no reconcile of it
    /// will come to clear its records (an app generated per pull request comes and goes;
    /// without this each one would leave its entries behind for good).
    pub fn forget_deleted(&self, app: &Application) {
        if app.metadata.namespace.is_none() || app.metadata.name.is_none() {
            return;
        }
        let key = AppKey::of(app);
        lock(&self.records).remove(&key);
        lock(&self.own_writes).forget(&key);
        // Its watches go unless another app needs them.
        self.live.release(&resource::app_instance(
            &key.namespace,
            &key.name,
            &self.config.controller_namespace,
        ));
    }
}

/// True while the cached `app` is older than this controller's last write to it.
/// (resourceVersions are etcd revisions, increasing integers on every API server Argosy
/// supports; one that does not parse disables the check rather than stalling the app.)
fn cache_is_behind(ctx: &Context, app: &Application, key: &AppKey) -> bool {
    ctx.record(key, |record| {
        let Some(wrote) = record.written else {
            return false;
        };
        match resource_version(app) {
            Some(seen) if seen < wrote => true,
            _ => {
                record.written = None;
                false
            }
        }
    })
}

/// How long a reconcile waits for the live watches to show what the app's last sync
/// applied. Past it the cache is trusted again (the object may have been deleted since).
const LIVE_CATCH_UP: Duration = Duration::from_secs(10);

/// What one sync applied: each object's resourceVersion in the apply response.
#[derive(Debug)]
struct AppliedVersions {
    at: Instant,
    versions: BTreeMap<ObjKey, u64>,
}

/// The resourceVersion of each object the sync applied, from the apply responses.
fn applied_versions(executed: &Executed) -> BTreeMap<ObjKey, u64> {
    executed
        .results
        .iter()
        .filter_map(|(key, outcome)| match outcome {
            execute::Outcome::Applied(object) => Some((key.clone(), object_version(object)?)),
            _ => None,
        })
        .collect()
}

fn remember_applied(ctx: &Context, key: &AppKey, executed: &Executed) {
    let versions = applied_versions(executed);
    if !versions.is_empty() {
        let applied = AppliedVersions {
            at: Instant::now(),
            versions,
        };
        ctx.record(key, |r| r.applied = Some(applied));
    }
}

/// Tells the live watches that the desired objects are about to be applied: their events
/// are held back until [`settle_writes`] (see [`argosy_sync_engine::echo`]).
fn announce_writes(
    ctx: &Context,
    server: &str,
    reach: &BTreeMap<(String, String), Reach>,
    desired: &[DesiredObject],
) {
    for d in desired {
        if let Some(r) = reach.get(&(d.key.group.clone(), d.key.kind.clone())) {
            ctx.live.writing(server, &r.resource, &d.key);
        }
    }
}

/// Tells the live watches what the sync applied, at which versions: those events are
/// echoes this reconcile already compared against; the rest held back trigger now.
fn settle_writes(
    ctx: &Context,
    server: &str,
    reach: &BTreeMap<(String, String), Reach>,
    desired: &[DesiredObject],
    executed: &Executed,
) {
    let applied = applied_versions(executed);
    for d in desired {
        if let Some(r) = reach.get(&(d.key.group.clone(), d.key.kind.clone())) {
            let version = applied.get(&d.key).copied();
            ctx.live.written(server, &r.resource, &d.key, version);
        }
    }
}

/// True while the live cache lacks, or holds an older copy of, an object the app's last
/// sync applied (within [`LIVE_CATCH_UP`]). Clears the record once the cache caught up.
fn live_is_behind(ctx: &Context, key: &AppKey, live: &BTreeMap<ObjKey, Value>) -> bool {
    ctx.record(key, |record| {
        let Some(applied) = &record.applied else {
            return false;
        };
        let behind =
            applied.at.elapsed() < LIVE_CATCH_UP && versions_behind(&applied.versions, live);
        if !behind {
            record.applied = None;
        }
        behind
    })
}

/// Whether `live` misses an object of `applied` or has it at a lower resourceVersion
/// (etcd revisions, as in [`cache_is_behind`]; one that does not parse counts as caught up).
fn versions_behind(applied: &BTreeMap<ObjKey, u64>, live: &BTreeMap<ObjKey, Value>) -> bool {
    applied.iter().any(|(key, &version)| match live.get(key) {
        None => true,
        Some(object) => object_version(object).is_some_and(|seen| seen < version),
    })
}

fn object_version(object: &Value) -> Option<u64> {
    version_of(
        object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str),
    )
}

fn reference(app: &Application) -> ObjectReference {
    app.object_ref(&())
}

async fn publish(ctx: &Context, app: &Application, kind: EventType, reason: &str, note: &str) {
    ctx.events
        .publish_through(&ctx.writer(app), reference(app), kind, reason, "Sync", note)
        .await;
}

async fn warn(ctx: &Context, app: &Application, reason: &str, note: &str) {
    publish(ctx, app, EventType::Warning, reason, note).await;
}

/// A deleted Application with Argo CD's resources finalizer: delete what it deployed
/// (except `Delete=false`, and `Delete=confirm` until approved), then let it go. While the
/// destination is registered but cannot be reached, or any delete fails, the finalizer
/// stays (a `DeletionError` condition, retried with capped backoff): releasing it would
/// orphan the workloads for good. Only a deregistered cluster (no cluster Secret names
/// it any more) ends it without deleting, with a Warning Event saying so. The decision is
/// [`decide::finalizer_step`]; this function only gathers what it needs and acts on it.
async fn finalize(
    app: &Application,
    ctx: &Context,
    instance: &str,
    existing: &Value,
) -> Result<Action, Error> {
    let finalizers = app.metadata.finalizers.clone().unwrap_or_default();
    if !finalizers
        .iter()
        .any(|f| f.starts_with(RESOURCES_FINALIZER))
    {
        return Ok(Action::await_change());
    }
    // A half-loaded cluster Secret list would look like a deregistered cluster.
    if !ctx.clusters.ready().await {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let key = AppKey::of(app);
    let view = finalizer_view(app, ctx, instance, existing).await;
    let failed_before = ctx.record(&key, |r| r.finalize_failures);
    match decide::finalizer_step(view, failed_before) {
        decide::FinalizerStep::Release => {
            ctx.record(&key, |r| r.finalize_failures = 0);
            remove_finalizer(app, ctx, finalizers).await
        }
        decide::FinalizerStep::Hold { why, retry, failed } => {
            if failed {
                ctx.record(&key, |r| {
                    r.finalize_failures = r.finalize_failures.saturating_add(1);
                });
            }
            tracing::info!(app = instance, %why, retry = ?retry, "finalizer held");
            let report = Report::unknown(existing, ConditionType::DeletionError, why.clone());
            if write_status(app, ctx, existing, &report, false).await? {
                warn(ctx, app, ConditionType::DeletionError.as_str(), &why).await;
            }
            Ok(Action::requeue(retry))
        }
        decide::FinalizerStep::Abandon { why } => {
            ctx.record(&key, |r| r.finalize_failures = 0);
            tracing::warn!(app = instance, %why, "finalizer released without deleting");
            warn(ctx, app, "ResourcesLeftBehind", &why).await;
            remove_finalizer(app, ctx, finalizers).await
        }
    }
}

/// Removes Argo CD's resources finalizer (and only it) from `app`.
async fn remove_finalizer(
    app: &Application,
    ctx: &Context,
    finalizers: Vec<String>,
) -> Result<Action, Error> {
    let name = app.metadata.name.clone().unwrap_or_default();
    let remaining: Vec<String> = finalizers
        .into_iter()
        .filter(|f| !f.starts_with(RESOURCES_FINALIZER))
        .collect();
    let api: Api<Application> = Api::namespaced(
        ctx.writer(app),
        app.metadata.namespace.as_deref().unwrap_or_default(),
    );
    // resourceVersion makes this a compare-and-swap: a finalizer added meanwhile is kept.
    let body = json!({"metadata": {"finalizers": remaining,
        "resourceVersion": app.metadata.resource_version}});
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        // Already gone: an earlier pass removed the finalizer and the API server deleted it.
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Action::await_change()),
        Err(source) => Err(Error::RemoveFinalizer { app: name, source }),
    }
}

/// Tries the finalizer's deletions and says what it found. Every step that cannot read
/// the cluster (connection, discovery of a kind the app deployed, watches) blocks: an
/// unreachable cluster must not look like one without objects to delete.
async fn finalizer_view(
    app: &Application,
    ctx: &Context,
    instance: &str,
    existing: &Value,
) -> decide::FinalizerView {
    use decide::FinalizerView::{Blocked, Deleted, Deregistered};
    let clusters = ctx.clusters.valid_clusters();
    let cluster = match resolve_destination(&app.spec.destination, &clusters) {
        Ok(c) => c.into_owned(),
        Err(
            DestinationError::UnknownServer { server: unknown }
            | DestinationError::UnknownName { name: unknown },
        ) => return Deregistered(unknown),
        Err(other) => return Blocked(format!("destination: {other}")),
    };
    let conn = match ctx.clients.connect(&cluster).await {
        Ok(conn) => conn,
        Err(e) => return Blocked(e.to_string()),
    };
    let unreachable = |ctx: &Context| {
        ctx.live.unreachable(&conn.server).map(|reason| {
            status::Unreachable {
                server: conn.server.clone(),
                reason,
            }
            .to_string()
        })
    };
    if let Some(why) = unreachable(ctx) {
        return Blocked(why);
    }
    let reach = match deployed_kinds(&conn, existing).await {
        Ok(reach) => reach,
        Err(why) => return Blocked(why),
    };
    let namespaces = used_namespaces(app, existing);
    if let Err(problem) = watch_kinds(ctx, &conn, &cluster, app, instance, &reach, namespaces).await
    {
        return Blocked(problem.message);
    }
    if let Some(why) = unreachable(ctx) {
        return Blocked(why);
    }
    let tracked = ctx.live.tracked(&conn.server, instance);
    let approved = app.metadata.deletion_timestamp.as_ref().is_some_and(|t| {
        resource::deletion_approved(
            app.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(resource::DELETION_APPROVED_ANNOTATION))
                .map(String::as_str),
            &t.0.to_string(),
        )
    });
    let outcome = execute::finalize(&*conn, &reach, &tracked, instance, approved).await;
    let failures = outcome.failures();
    if failures.is_empty() {
        Deleted {
            awaiting: outcome
                .awaiting_confirmation
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    } else {
        Blocked(failures.join("; "))
    }
}

/// The kinds listed in the app's last `status.resources`, resolved on its cluster. Unlike
/// [`add_deployed_kinds`] a failing lookup is an error: only a kind the cluster answers
/// it does not serve is left out (it has no objects left to delete).
async fn deployed_kinds(
    conn: &ClusterConn,
    existing: &Value,
) -> Result<BTreeMap<(String, String), Reach>, String> {
    let mut reach = BTreeMap::new();
    for r in existing
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        let (group, version, kind) = (text("group"), text("version"), text("kind"));
        let key = (group.to_owned(), kind.to_owned());
        if reach.contains_key(&key) || kind.is_empty() {
            continue;
        }
        let api_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        match conn.resource(&api_version, kind).await {
            Ok((resource, scope)) => {
                reach.insert(key, Reach { resource, scope });
            }
            Err(argosy_sync_engine::clients::ClientError::UnknownKind { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(reach)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::StoreReady;
    use kube::runtime::reflector;

    /// A context whose clients never reach an API server.
    fn offline_context(cache: &std::path::Path) -> Context {
        let client = crate::testing::offline_client("argocd");
        Context::new(ContextParts {
            client: client.clone(),
            clusters: ClusterRegistry::new(reflector::store().0, StoreReady::already(), "argocd"),
            projects: ProjectRegistry::new(reflector::store().0, StoreReady::already(), "argocd"),
            repos: Arc::new(GitRepos::new(BTreeMap::new(), cache.join("repos"))),
            charts: Arc::new(ChartRepos::new(cache.join("charts"))),
            renderer: Arc::new(Renderer::new(cache.join("render"), Default::default())),
            clients: Arc::new(ClusterClients::new(client.clone(), false)),
            live: Arc::new(LiveCache::new(
                Arc::new(|_: &str| {}),
                Duration::from_secs(1),
            )),
            events: EventPublisher::new(client, "test", "test"),
            leader: None,
            config: Config {
                controller_namespace: "argocd".into(),
                application_namespaces: NamespacePatterns::default(),
                resync: Duration::from_secs(180),
                concurrency: 1,
                health: crate::health_checks::HealthCheckRegistry::default(),
            },
        })
    }

    fn application(namespace: &str, name: &str) -> Application {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "7"}}))
        .expect("an Application")
    }

    /// The name of an Application whose reconcile panics (see `reconcile_app`).
    pub(super) const PANICS: &str = "panics-in-test";

    /// A reconcile that panics is contained: the caller gets a requeue with backoff, the
    /// panic is counted, and the next app reconciles as usual.
    #[tokio::test]
    async fn a_panicking_reconcile_is_contained_and_backs_off() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let ctx = Arc::new(offline_context(dir.path()));
        let app = Arc::new(application("argocd", PANICS));
        let first = reconcile(app.clone(), ctx.clone())
            .await
            .expect("an action");
        assert_eq!(first, Action::requeue(Duration::from_secs(5)));
        let second = reconcile(app, ctx.clone()).await.expect("an action");
        assert_eq!(second, Action::requeue(Duration::from_secs(10)));
        assert_eq!(ctx.metrics.reconcile_panics("application"), 2);
        // The same context serves another app afterwards: its reconcile returns (offline,
        // it cannot write its status) instead of unwinding, and counts no panic.
        let _offline = reconcile(Arc::new(application("argocd", "fine")), ctx.clone()).await;
        assert_eq!(ctx.metrics.reconcile_panics("application"), 2);
    }

    /// Deleting an app drops its records (and only its): nothing reconciles it again.
    #[tokio::test]
    async fn a_deleted_app_leaves_no_records_behind() {
        let cache = tempfile::tempdir().expect("a temp dir");
        let ctx = offline_context(cache.path());
        let (gone, kept) = (application("argocd", "gone"), application("team", "kept"));
        for app in [&gone, &kept] {
            let key = AppKey::of(app);
            lock(&ctx.own_writes).writing(key.clone());
            ctx.record(&key, |r| {
                r.written = Some(7);
                r.applied = Some(AppliedVersions {
                    at: Instant::now(),
                    versions: BTreeMap::new(),
                });
                r.self_heal = SelfHeal {
                    attempts: 1,
                    last: Some(Instant::now()),
                };
            });
        }
        assert!(!ctx.triggers_reconcile(&gone), "its write is under way");

        ctx.forget_deleted(&gone);
        assert_eq!(
            lock(&ctx.records).keys().collect::<Vec<_>>(),
            [&AppKey::of(&kept)]
        );
        assert!(
            ctx.triggers_reconcile(&gone),
            "no write of it is remembered"
        );
        assert!(
            !ctx.triggers_reconcile(&kept),
            "the other app's write still is"
        );
    }

    /// The cache is behind the app's own status write until it shows that version; then
    /// the record is dropped (nothing else in it).
    #[tokio::test]
    async fn the_app_cache_is_behind_until_it_has_the_written_version() {
        let cache = tempfile::tempdir().expect("a temp dir");
        let ctx = offline_context(cache.path());
        let mut app = application("team", "web");
        let key = AppKey::of(&app);
        ctx.record(&key, |r| r.written = Some(9));
        assert!(cache_is_behind(&ctx, &app, &key), "the cache has version 7");
        app.metadata.resource_version = Some("9".into());
        assert!(!cache_is_behind(&ctx, &app, &key));
        assert!(lock(&ctx.records).is_empty(), "an empty record is dropped");
        app.metadata.resource_version = Some("3".into());
        assert!(!cache_is_behind(&ctx, &app, &key), "nothing written since");
    }

    /// A requested operation is read typed once; one that does not read fails at once
    /// (the caller reports it as an Error phase) instead of running with guessed fields.
    #[test]
    fn a_requested_operation_is_typed_or_refused() {
        let mut app = application("team", "web");
        assert_eq!(operation_of(&app), None);
        app.operation = Some(json!({"sync": {"prune": true, "revision": "v2"}}));
        let requested = operation_of(&app).expect("an operation");
        assert_eq!(requested.invalid, None);
        assert!(requested.typed.sync.as_ref().is_some_and(|s| s.prune));
        app.operation = Some(json!({"sync": {"prune": "yes"}}));
        let requested = operation_of(&app).expect("an operation");
        assert!(
            requested
                .invalid
                .as_deref()
                .is_some_and(|w| w.starts_with("operation is invalid")),
            "{requested:?}"
        );
        // Not a sync: nothing this engine runs.
        app.operation = Some(json!({"info": []}));
        assert_eq!(operation_of(&app), None);
    }

    fn config_map(name: &str, version: &str) -> (ObjKey, Value) {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "web", "resourceVersion": version}});
        (ObjKey::of(&object).expect("a key"), object)
    }

    #[test]
    fn the_live_cache_is_behind_until_it_has_every_applied_version() {
        let (a, a_applied) = config_map("a", "120");
        let (b, _) = config_map("b", "121");
        let applied: BTreeMap<ObjKey, u64> = [(a.clone(), 120), (b.clone(), 121)].into();

        let mut live = BTreeMap::from([config_map("a", "100")]);
        assert!(versions_behind(&applied, &live), "a is older, b missing");
        live.insert(a.clone(), a_applied);
        assert!(versions_behind(&applied, &live), "b still missing");
        live.insert(b.clone(), config_map("b", "125").1);
        assert!(
            !versions_behind(&applied, &live),
            "both at or past the applied versions"
        );
        live.insert(b, config_map("b", "not-a-number").1);
        assert!(
            !versions_behind(&applied, &live),
            "an unparsable version does not stall"
        );
    }
}
