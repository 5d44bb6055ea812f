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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argosy_crds::Application;
use argosy_crds::cluster::Cluster;
use argosy_crds::consts::RESOURCES_FINALIZER;
use argosy_crds::operation::RetryStrategy;
use argosy_crds::{DestinationError, resolve_destination};
use argosy_generators::source::{ProjectSource, RepoSource};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, Resource};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::events::{EventPublisher, EventType};
use crate::metrics::Metrics;
use crate::registry::{ClusterRegistry, ProjectRegistry};
use argosy_sync_engine::clients::{ClusterClients, ClusterConn};
use argosy_sync_engine::diff::Comparison;
use argosy_sync_engine::echo::{Echoes, version_of};
use argosy_sync_engine::execute::{self, Executed, Reach, Target};
use argosy_sync_engine::health::{self, Health, HealthCode};
use argosy_sync_engine::live::LiveCache;
use argosy_sync_engine::plan::{self, DesiredObject, IgnoreRule, ResourceState};
use argosy_sync_engine::render::{RenderTarget, Renderer, SourceType};
use argosy_sync_engine::repo::GitRepos;
use argosy_sync_engine::resource::{self, ObjKey, ResourceOptions, Role};
use argosy_sync_engine::ssa::FIELD_MANAGER;
use argosy_sync_engine::status::{self, AppSync, ConditionType, Report, ResourceReport};
use argosy_sync_engine::target::{Deployed, Wanted, is_reference_only};

/// Settings of the sync engine.
#[derive(Clone, Debug)]
pub struct Config {
    pub controller_namespace: String,
    /// Periodic re-check of every app (Git changes without a webhook). Argo CD: 180 s.
    pub resync: Duration,
    /// Concurrent applies within one sync step.
    pub concurrency: usize,
}

/// Shared state of the Application controller.
pub struct Context {
    pub client: Client,
    pub clusters: ClusterRegistry,
    pub projects: ProjectRegistry,
    pub repos: Arc<GitRepos>,
    pub renderer: Arc<Renderer>,
    pub clients: Arc<ClusterClients>,
    pub live: Arc<LiveCache>,
    pub events: EventPublisher,
    pub leader: Option<tokio::sync::watch::Receiver<bool>>,
    pub config: Config,
    /// Self-heal attempts per app instance (backoff between repeated reverts).
    self_heal: Mutex<HashMap<String, (u32, Instant)>>,
    /// The resourceVersion of each app's last status write, until the cache has it: a
    /// reconcile must not act on the state from before its own previous write (a cleared
    /// `operation` would run again, a completed hook twice).
    written: Mutex<HashMap<String, u64>>,
    /// The resourceVersions of the objects each app's last sync applied, until the live
    /// watches have them: a reconcile must not take the pre-apply copy in the watch cache
    /// for drift and apply again.
    applied: Mutex<HashMap<String, AppliedVersions>>,
    /// Status writes under way or awaiting their watch event (by `namespace/name`), whose
    /// echo triggers no reconcile.
    status_echoes: Mutex<Echoes<String>>,
    pub metrics: Metrics,
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        clusters: ClusterRegistry,
        projects: ProjectRegistry,
        repos: Arc<GitRepos>,
        renderer: Arc<Renderer>,
        clients: Arc<ClusterClients>,
        live: Arc<LiveCache>,
        events: EventPublisher,
        leader: Option<tokio::sync::watch::Receiver<bool>>,
        config: Config,
    ) -> Self {
        Self {
            client,
            clusters,
            projects,
            repos,
            renderer,
            clients,
            live,
            events,
            leader,
            config,
            self_heal: Mutex::default(),
            written: Mutex::default(),
            applied: Mutex::default(),
            status_echoes: Mutex::default(),
            metrics: Metrics::default(),
        }
    }

    /// Reports syncs and reconciles to `metrics` (the `/metrics` registry).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
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
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Error::WriteStatus { .. } => "write_status",
            Error::RemoveFinalizer { .. } => "remove_finalizer",
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
}

impl Problem {
    fn comparison(message: impl Into<String>) -> Self {
        Self {
            condition: ConditionType::ComparisonError,
            message: message.into(),
            retry: Duration::from_secs(15),
        }
    }

    fn spec(message: impl Into<String>) -> Self {
        Self {
            condition: ConditionType::InvalidSpecError,
            message: message.into(),
            // A missing cluster Secret or project may appear any moment.
            retry: Duration::from_secs(15),
        }
    }
}

/// What one observation found.
struct Observed {
    conn: Arc<ClusterConn>,
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

/// The requested operation (`argosy app sync`/`rollback`, or Argo CD's CLI).
#[derive(Clone, Debug, Default, PartialEq)]
struct Operation {
    prune: bool,
    raw: Value,
}

fn operation_of(app: &Application) -> Option<Operation> {
    let raw = app.operation.as_ref()?;
    let sync = raw.get("sync")?;
    Some(Operation {
        prune: sync.get("prune").and_then(Value::as_bool).unwrap_or(false),
        raw: raw.clone(),
    })
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
    let result = reconcile_app(&app, &ctx).await;
    ctx.metrics.app_reconciled(
        &app,
        result.as_ref().map(|_| ()).map_err(Error::category),
        started.elapsed(),
    );
    result
}

async fn reconcile_app(app: &Arc<Application>, ctx: &Arc<Context>) -> Result<Action, Error> {
    let (app, ctx) = (app.clone(), ctx.clone());
    if !ctx.is_leader() {
        return Ok(Action::await_change());
    }
    let name = app.metadata.name.clone().unwrap_or_default();
    let namespace = app.metadata.namespace.clone().unwrap_or_default();
    let instance = resource::app_instance(&namespace, &name, &ctx.config.controller_namespace);
    let existing = app
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    if cache_is_behind(&ctx, &app, &name) {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    if app.metadata.deletion_timestamp.is_some() {
        // A deleted app is not synced again: nothing to wait for.
        lock(&ctx.applied).remove(&instance);
        return finalize(&app, &ctx, &instance, &existing).await;
    }
    // Destinations and projects are looked up in caches: wait for their first list.
    if !(ctx.clusters.ready().await && ctx.projects.ready().await) {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let operation = operation_of(&app);
    let observed = match observe(&app, &ctx, &instance, &existing, operation.as_ref()).await {
        Ok(o) => o,
        Err(problem) => {
            let mut report = Report::unknown(&existing, problem.condition, problem.message.clone());
            // A requested operation that cannot even start fails now (as in Argo CD)
            // rather than blocking every later request until someone clears it.
            let failed_operation = operation.as_ref().map(|op| {
                let at = now();
                json!({"operation": op.raw, "phase": "Error", "startedAt": at,
                       "finishedAt": at, "message": problem.message})
            });
            report.operation_state = failed_operation.clone();
            if write_status(&app, &ctx, &existing, &report, failed_operation.is_some()).await? {
                warn(&ctx, &app, problem.condition.as_str(), &problem.message).await;
            }
            if let Some(state) = &failed_operation {
                ctx.metrics.app_synced(&app, "Error");
                tracing::info!(app = %instance, state = %state["message"], "operation failed before it started");
            }
            return Ok(Action::requeue(problem.retry));
        }
    };
    let Observed {
        conn,
        deployed,
        source_types,
        desired,
        reach,
        mut live,
        pending_kinds,
        mut warnings,
    } = observed;
    if live_is_behind(&ctx, &instance, &live) {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let ignore = ignore_rules(&app, &mut warnings);
    let states = plan::compare(&desired, &live, &instance, &ignore);
    let decision = decide(
        &app,
        &ctx,
        &instance,
        &existing,
        &desired,
        &states,
        &deployed,
        operation.as_ref(),
    );

    let mut conditions: Vec<(ConditionType, String)> = warnings
        .into_iter()
        .map(|w| (ConditionType::Warning, w))
        .collect();
    let mut operation_state = None;
    let mut history_entry = None;
    let mut clear_operation = false;
    let mut requeue = ctx.config.resync;
    let mut event: Option<(EventType, &'static str, String)> = None;

    match decision {
        Decision::Nothing => {}
        Decision::Wait(after) => requeue = requeue.min(after),
        Decision::Refuse(why) => {
            conditions.push((ConditionType::SyncError, why));
        }
        Decision::Sync(sync) => {
            let started = existing
                .pointer("/operationState/startedAt")
                .and_then(Value::as_str)
                .filter(|_| sync.continues)
                .map(str::to_owned)
                .unwrap_or_else(now);
            let options = sync_options(&app);
            if options.iter().any(|o| o == "CreateNamespace=true") {
                let ns = &app.spec.destination.namespace;
                if !ns.is_empty()
                    && let Err(e) = execute::ensure_namespace(&conn, ns).await
                {
                    conditions.push((ConditionType::SyncError, e));
                }
            }
            let live_options = |key: &ObjKey| {
                live.get(key)
                    .map(|l| ResourceOptions::of(l, &options))
                    .unwrap_or_default()
            };
            let sync_plan = plan::steps(&desired, &states, sync.prune, sync.hooks, &live_options);
            let done_hooks = if sync.continues {
                completed_hooks(&existing)
            } else {
                Default::default()
            };
            let mut target = Target {
                conn: &conn,
                desired: &desired,
                reach: &reach,
                live: &mut live,
                operation_id: &started,
                done_hooks: &done_hooks,
                concurrency: ctx.config.concurrency,
            };
            // An operation that already failed and waits for its SyncFail hooks does not
            // apply again; it only follows the hooks.
            let failed_before = sync
                .continues
                .then(|| recorded_sync_failure(&existing))
                .flatten();
            let mut executed = match failed_before {
                Some(_) => execute::Executed::default(),
                None => {
                    announce_writes(&ctx, &conn.server, &reach, &desired);
                    let executed = execute::run(&mut target, &sync_plan).await;
                    settle_writes(&ctx, &conn.server, &reach, &desired, &executed);
                    executed
                }
            };
            remember_applied(&ctx, &instance, &executed);
            let failure = failed_before.or_else(|| executed.failure());
            let sync_fail = match failure {
                Some(_) if !sync_plan.sync_fail.is_empty() => {
                    Some(execute::run_sync_fail_hooks(&mut target, &sync_plan, &mut executed).await)
                }
                _ => None,
            };
            let ending = Ending {
                failure,
                sync_fail,
                waiting: executed.waiting.clone(),
            };
            let (state, outcome) =
                operation_state_of(&sync, &executed, ending, &deployed, &started, &existing);
            match outcome {
                SyncOutcome::Running(why) => {
                    requeue = Duration::from_secs(2);
                    tracing::debug!(app = %instance, %why, "sync waiting");
                }
                SyncOutcome::Failed(why) => {
                    conditions.push((ConditionType::SyncError, why.clone()));
                    clear_operation = sync.manual;
                    let retries = state.get("retryCount").and_then(Value::as_i64).unwrap_or(0);
                    // Requeues are capped at the resync period: the controller's delay
                    // queue refuses times years away (a huge backoff is legal).
                    requeue = match retry_delay(&app, retries) {
                        Ok(delay) => delay.unwrap_or(ctx.config.resync).min(ctx.config.resync),
                        Err(why) => {
                            conditions.push((ConditionType::SyncError, why));
                            ctx.config.resync
                        }
                    };
                    event = Some((EventType::Warning, "SyncFailed", why));
                }
                SyncOutcome::Succeeded => {
                    clear_operation = sync.manual;
                    history_entry = Some(status::history_entry(&deployed, &started, &now()));
                    event = Some((
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
            operation_state = Some(state);
        }
    }
    if !pending_kinds.is_empty() {
        requeue = Duration::from_secs(2);
    }

    let states = plan::compare(&desired, &live, &instance, &ignore);
    let report = build_report(
        &app,
        &states,
        &desired,
        &live,
        &reach,
        &deployed,
        &source_types,
        conditions,
        operation_state,
        history_entry,
    );
    if report.sync == AppSync::Synced {
        lock(&ctx.self_heal).remove(&instance);
    }
    write_status(&app, &ctx, &existing, &report, clear_operation).await?;
    if let Some(phase) = report
        .operation_state
        .as_ref()
        .and_then(|o| o.get("phase"))
        .and_then(Value::as_str)
    {
        ctx.metrics.app_synced(&app, phase);
    }
    if let Some((kind, reason, note)) = event {
        publish(&ctx, &app, kind, reason, &note).await;
    }
    Ok(Action::requeue(requeue))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

/// The cluster the app's destination means, by the one resolver every part of Argosy
/// uses (so the engine, the dashboard and the CLI agree).
fn destination_cluster(app: &Application, ctx: &Context) -> Result<Cluster, Problem> {
    let clusters = ctx.clusters.valid_clusters();
    resolve_destination(&app.spec.destination, &clusters)
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
    operation: Option<&Operation>,
) -> Result<Observed, Problem> {
    let wanted = Wanted::of(app, operation.map(|o| &o.raw)).map_err(Problem::spec)?;
    let project = if app.spec.project.is_empty() {
        "default"
    } else {
        &app.spec.project
    };
    if project != "default" && !ctx.projects.project_exists(project) {
        return Err(Problem::spec(format!("project {project} does not exist")));
    }
    let cluster = destination_cluster(app, ctx)?;

    let repos = ctx.repos.clone();
    let renderer = ctx.renderer.clone();
    let render_wanted = wanted.clone();
    let app_name = app.metadata.name.clone().unwrap_or_default();
    let app_ns = app.spec.destination.namespace.clone();
    let (commits, renders) = tokio::task::spawn_blocking(move || {
        let target = RenderTarget {
            app_name: &app_name,
            namespace: &app_ns,
        };
        let multi = render_wanted.multi;
        let mut commits = Vec::new();
        let mut renders = Vec::new();
        for (i, (source, revision)) in render_wanted.sources.iter().enumerate() {
            let which = |e: String| {
                if multi {
                    format!("spec.sources[{i}]: {e}")
                } else {
                    e
                }
            };
            let snapshot = repos
                .snapshot(&source.repo_url, revision)
                .map_err(|e| which(e.to_string()))?;
            commits.push(snapshot.commit().to_owned());
            if !is_reference_only(source) {
                let rendered = renderer
                    .render(&source.repo_url, snapshot.as_ref(), source, target)
                    .map_err(|e| which(e.to_string()))?;
                renders.push(rendered);
            }
        }
        Ok::<_, String>((commits, renders))
    })
    .await
    .map_err(|e| Problem::comparison(format!("rendering task failed: {e}")))?
    .map_err(Problem::comparison)?;
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

    let conn = ctx
        .clients
        .connect(&cluster)
        .await
        .map_err(|e| Problem::comparison(e.to_string()))?;
    if let Some(why) = ctx.live.unreachable(&conn.server) {
        return Err(Problem::comparison(format!(
            "cluster {} is unreachable: {why}",
            conn.server
        )));
    }

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
    watch_kinds(ctx, &conn, &reach).await?;
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

/// Makes sure every kind in `reach` is watched on the app's cluster, the first lists of
/// new watches all at once (an app's first reconcile on a cluster waits for them).
async fn watch_kinds(
    ctx: &Context,
    conn: &ClusterConn,
    reach: &BTreeMap<(String, String), Reach>,
) -> Result<(), Problem> {
    futures::future::try_join_all(reach.values().map(|r| {
        ctx.live
            .ensure(&conn.server, &conn.watch_client, &r.resource)
    }))
    .await
    .map_err(|e| Problem::comparison(e.to_string()))?;
    Ok(())
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

/// What this reconcile should do about the comparison.
enum Decision {
    Nothing,
    /// Self-heal is backing off; look again after this long.
    Wait(Duration),
    Refuse(String),
    Sync(SyncRequest),
}

struct SyncRequest {
    prune: bool,
    hooks: bool,
    manual: bool,
    /// Continues a Running operation (keeps its start time and hook identity).
    continues: bool,
    initiated_by: Value,
    operation: Value,
}

#[allow(clippy::too_many_arguments)]
fn decide(
    app: &Application,
    ctx: &Context,
    instance: &str,
    existing: &Value,
    desired: &[DesiredObject],
    states: &[ResourceState],
    deployed: &Deployed,
    operation: Option<&Operation>,
) -> Decision {
    let op_state = existing.get("operationState");
    let phase = op_state
        .and_then(|o| o.get("phase"))
        .and_then(Value::as_str);
    let running = phase == Some("Running");
    if let Some(op) = operation {
        return Decision::Sync(SyncRequest {
            prune: op.prune,
            hooks: true,
            manual: true,
            continues: running,
            initiated_by: op
                .raw
                .get("initiatedBy")
                .cloned()
                .unwrap_or(json!({"username": "argosy"})),
            operation: op.raw.clone(),
        });
    }
    let Some(auto) = app
        .spec
        .sync_policy
        .as_ref()
        .and_then(|p| p.automated.as_ref())
        .filter(|a| a.enabled != Some(false))
    else {
        return Decision::Nothing;
    };
    let out_of_sync = states
        .iter()
        .any(|s| s.sync == plan::ResourceSync::OutOfSync && (!s.requires_pruning || auto.prune));
    if !out_of_sync && !running {
        return Decision::Nothing;
    }
    let wants_resources = desired.iter().any(|d| d.role == Role::Resource);
    let has_live = states.iter().any(|s| !s.missing);
    if !wants_resources && has_live && !auto.allow_empty {
        return Decision::Refuse(
            "the source rendered no resources; automated sync will not prune every resource of the app (syncPolicy.automated.allowEmpty is false)".into(),
        );
    }
    let target_changed = !deployed.is_recorded_in(op_state.and_then(|o| o.get("syncResult")));
    let (revision_key, revision) = deployed.revision_field();
    let mut automated_sync = json!({"prune": auto.prune});
    automated_sync[revision_key] = revision;
    let request = |hooks: bool| {
        Decision::Sync(SyncRequest {
            prune: auto.prune,
            hooks,
            manual: false,
            continues: running,
            initiated_by: json!({"automated": true}),
            operation: json!({"sync": automated_sync,
                              "initiatedBy": {"automated": true}}),
        })
    };
    if running {
        return request(true);
    }
    let failed = matches!(phase, Some("Failed") | Some("Error"));
    if target_changed {
        return request(true);
    }
    if failed {
        // Same revision failed before: only the retry policy brings it back.
        let retries = op_state
            .and_then(|o| o.get("retryCount"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        return match retry_delay(app, retries) {
            Ok(Some(_)) => request(true),
            Ok(None) => Decision::Nothing,
            Err(why) => Decision::Refuse(why),
        };
    }
    if !auto.self_heal {
        return Decision::Nothing;
    }
    let mut attempts = lock(&ctx.self_heal);
    let entry = attempts
        .entry(instance.to_owned())
        .or_insert((0, Instant::now()));
    let backoff = Duration::from_secs(if entry.0 == 0 {
        0
    } else {
        (1u64 << entry.0.min(6)).min(60)
    });
    let since = entry.1.elapsed();
    if entry.0 > 0 && since < backoff {
        return Decision::Wait(backoff - since);
    }
    *entry = (entry.0 + 1, Instant::now());
    request(false)
}

/// Backoff before retrying a failed sync that was retried `retry_count` times already,
/// `Ok(None)` when retries are off or exhausted, or why the retry policy cannot be read
/// (a bad `limit`, an unparsable or out-of-range backoff duration): a condition for the
/// user, never a guessed delay.
fn retry_delay(app: &Application, retry_count: i64) -> Result<Option<Duration>, String> {
    let Some(raw) = app.spec.sync_policy.as_ref().and_then(|p| p.retry.as_ref()) else {
        return Ok(None);
    };
    let retry = RetryStrategy::deserialize(raw)
        .map_err(|e| format!("syncPolicy.retry is invalid: {e}; the failed sync is not retried"))?;
    if !retry.may_retry(retry_count) {
        return Ok(None);
    }
    retry
        .delay(retry_count)
        .map(Some)
        .map_err(|e| format!("syncPolicy.{e}; the failed sync is not retried"))
}

enum SyncOutcome {
    Running(String),
    Failed(String),
    Succeeded,
}

/// Hooks the running operation already completed, from its recorded sync result.
fn completed_hooks(existing: &Value) -> std::collections::BTreeSet<ObjKey> {
    existing
        .pointer("/operationState/syncResult/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("hookPhase").and_then(Value::as_str) == Some("Succeeded"))
        .filter_map(|r| {
            let text = |k: &str| {
                r.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            Some(ObjKey {
                group: text("group"),
                kind: r.get("kind")?.as_str()?.to_owned(),
                namespace: text("namespace"),
                name: r.get("name")?.as_str()?.to_owned(),
            })
        })
        .collect()
}

/// While a failed operation waits for its SyncFail hooks, its phase is `Running` and its
/// message is the failure followed by this.
const SYNC_FAIL_RUNNING: &str = "; running SyncFail hooks";

/// The failure of an operation that waits for its SyncFail hooks, from its recorded state.
fn recorded_sync_failure(existing: &Value) -> Option<String> {
    let state = existing.get("operationState")?;
    if state.get("phase").and_then(Value::as_str) != Some("Running") {
        return None;
    }
    let message = state.get("message").and_then(Value::as_str)?;
    message.strip_suffix(SYNC_FAIL_RUNNING).map(str::to_owned)
}

/// How one pass of an operation ended.
struct Ending {
    /// Why the sync failed (this pass or an earlier one).
    failure: Option<String>,
    /// The SyncFail hooks, when the sync failed and has any.
    sync_fail: Option<execute::SyncFailHooks>,
    /// A later step waits for an earlier one.
    waiting: Option<String>,
}

impl Ending {
    fn phase(self) -> (&'static str, String, SyncOutcome) {
        use execute::SyncFailHooks;
        match (self.failure, self.sync_fail, self.waiting) {
            (Some(failure), Some(SyncFailHooks::Running), _) => {
                let message = format!("{failure}{SYNC_FAIL_RUNNING}");
                ("Running", message.clone(), SyncOutcome::Running(message))
            }
            (Some(failure), Some(SyncFailHooks::Failed(hook)), _) => {
                let message = format!("{failure}; SyncFail hook failed: {hook}");
                ("Failed", message.clone(), SyncOutcome::Failed(message))
            }
            (Some(failure), _, _) => ("Failed", failure.clone(), SyncOutcome::Failed(failure)),
            (None, _, Some(why)) => ("Running", why.clone(), SyncOutcome::Running(why)),
            (None, _, None) => (
                "Succeeded",
                "successfully synced (all tasks run)".to_owned(),
                SyncOutcome::Succeeded,
            ),
        }
    }
}

fn operation_state_of(
    sync: &SyncRequest,
    executed: &Executed,
    ending: Ending,
    deployed: &Deployed,
    started: &str,
    existing: &Value,
) -> (Value, SyncOutcome) {
    // A continuing operation keeps what earlier passes recorded (completed hooks above all).
    let mut by_key: BTreeMap<(String, String, String, String), Value> = BTreeMap::new();
    if sync.continues {
        for r in existing
            .pointer("/operationState/syncResult/resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = |k: &str| {
                r.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            by_key.insert(
                (text("group"), text("kind"), text("namespace"), text("name")),
                r.clone(),
            );
        }
    }
    for (key, outcome) in &executed.results {
        let (status, message) = match outcome {
            execute::Outcome::Applied(_) => ("Synced", String::new()),
            execute::Outcome::Pruned => ("Pruned", String::new()),
            execute::Outcome::Failed(e) => ("SyncFailed", e.clone()),
            execute::Outcome::HookSucceeded => ("Synced", String::new()),
        };
        let mut entry = json!({"group": key.group, "kind": key.kind, "namespace": key.namespace,
                               "name": key.name, "status": status, "message": message});
        if *outcome == execute::Outcome::HookSucceeded {
            entry["hookPhase"] = json!("Succeeded");
        }
        by_key.insert(
            (
                key.group.clone(),
                key.kind.clone(),
                key.namespace.clone(),
                key.name.clone(),
            ),
            entry,
        );
    }
    let resources: Vec<Value> = by_key.into_values().collect();
    let previous_retries = existing
        .pointer("/operationState/retryCount")
        .and_then(Value::as_i64)
        .filter(|_| sync.continues || !sync.manual)
        .unwrap_or(0);
    let (phase, message, outcome) = ending.phase();
    let mut state = json!({
        "operation": sync.operation,
        "phase": phase,
        "message": message,
        "startedAt": started,
        "syncResult": {"resources": resources},
    });
    if let Some(result) = state["syncResult"].as_object_mut() {
        result.extend(deployed.fields());
    }
    state["operation"]["initiatedBy"] = sync.initiated_by.clone();
    if phase != "Running" {
        state["finishedAt"] = json!(now());
    }
    if phase == "Failed" {
        state["retryCount"] = json!(previous_retries + 1);
    }
    (state, outcome)
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    app: &Application,
    states: &[ResourceState],
    desired: &[DesiredObject],
    live: &BTreeMap<ObjKey, Value>,
    reach: &BTreeMap<(String, String), Reach>,
    deployed: &Deployed,
    source_types: &[&'static str],
    conditions: Vec<(ConditionType, String)>,
    operation_state: Option<Value>,
    history_entry: Option<Value>,
) -> Report {
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
            live.get(&state.key).and_then(health::assess)
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
    let name = app.metadata.name.clone().unwrap_or_default();
    let api: Api<Application> = Api::namespaced(
        ctx.client.clone(),
        app.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let key = cache_key(app, &name);
    lock(&ctx.status_echoes).writing(key.clone());
    let result = api.patch(&name, &params, &Patch::Merge(&body)).await;
    let version = result.as_ref().ok().and_then(resource_version);
    if lock(&ctx.status_echoes).written(key.clone(), version) {
        // Somebody changed the app while the status was being written.
        ctx.live.wake(&resource::app_instance(
            app.metadata.namespace.as_deref().unwrap_or_default(),
            &name,
            &ctx.config.controller_namespace,
        ));
    }
    result.map_err(|source| Error::WriteStatus {
        app: name.clone(),
        source,
    })?;
    if let Some(version) = version {
        lock(&ctx.written).insert(key, version);
    }
    Ok(true)
}

fn resource_version(app: &Application) -> Option<u64> {
    version_of(app.metadata.resource_version.as_deref())
}

fn cache_key(app: &Application, name: &str) -> String {
    format!(
        "{}/{name}",
        app.metadata.namespace.as_deref().unwrap_or_default()
    )
}

impl Context {
    /// Whether an Application watch event should trigger a reconcile: not the echo of
    /// this controller's own status write (see [`argosy_sync_engine::echo`]).
    pub fn triggers_reconcile(&self, app: &Application) -> bool {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        lock(&self.status_echoes).event(&cache_key(app, name), resource_version(app))
    }

    /// Drops what this engine remembers about `app`, which was deleted: no reconcile of it
    /// will come to clear its records (an app generated per pull request comes and goes;
    /// without this each one would leave its entries behind for good).
    pub fn forget_deleted(&self, app: &Application) {
        let (Some(namespace), Some(name)) = (&app.metadata.namespace, &app.metadata.name) else {
            return;
        };
        let key = cache_key(app, name);
        let instance = resource::app_instance(namespace, name, &self.config.controller_namespace);
        lock(&self.written).remove(&key);
        lock(&self.status_echoes).forget(&key);
        lock(&self.applied).remove(&instance);
        lock(&self.self_heal).remove(&instance);
    }
}

/// True while the cached `app` is older than this controller's last write to it.
/// (resourceVersions are etcd revisions, increasing integers on every API server Argosy
/// supports; one that does not parse disables the check rather than stalling the app.)
fn cache_is_behind(ctx: &Context, app: &Application, name: &str) -> bool {
    let key = cache_key(app, name);
    let mut written = lock(&ctx.written);
    let Some(&wrote) = written.get(&key) else {
        return false;
    };
    match resource_version(app) {
        Some(seen) if seen < wrote => true,
        _ => {
            written.remove(&key);
            false
        }
    }
}

/// How long a reconcile waits for the live watches to show what the app's last sync
/// applied. Past it the cache is trusted again (the object may have been deleted since).
const LIVE_CATCH_UP: Duration = Duration::from_secs(10);

/// What one sync applied: each object's resourceVersion in the apply response.
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

fn remember_applied(ctx: &Context, instance: &str, executed: &Executed) {
    let versions = applied_versions(executed);
    if !versions.is_empty() {
        let applied = AppliedVersions {
            at: Instant::now(),
            versions,
        };
        lock(&ctx.applied).insert(instance.to_owned(), applied);
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
fn live_is_behind(ctx: &Context, instance: &str, live: &BTreeMap<ObjKey, Value>) -> bool {
    let mut applied = lock(&ctx.applied);
    let Some(record) = applied.get(instance) else {
        return false;
    };
    let behind = record.at.elapsed() < LIVE_CATCH_UP && versions_behind(&record.versions, live);
    if !behind {
        applied.remove(instance);
    }
    behind
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
        .publish(reference(app), kind, reason, "Sync", note)
        .await;
}

async fn warn(ctx: &Context, app: &Application, reason: &str, note: &str) {
    publish(ctx, app, EventType::Warning, reason, note).await;
}

/// A deleted Application with Argo CD's resources finalizer: delete what it deployed
/// (except `Delete=false`), then let it go. An unreachable cluster holds the finalizer.
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
    let leftover = match delete_tracked(app, ctx, instance, existing).await {
        Ok(left) => left,
        Err(problem) => {
            let report = Report::unknown(existing, problem.condition, problem.message);
            write_status(app, ctx, existing, &report, false).await?;
            return Ok(Action::requeue(problem.retry));
        }
    };
    if !leftover.is_empty() {
        let report = Report::unknown(
            existing,
            ConditionType::SyncError,
            format!("deleting the app's resources: {}", leftover.join("; ")),
        );
        write_status(app, ctx, existing, &report, false).await?;
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let name = app.metadata.name.clone().unwrap_or_default();
    let remaining: Vec<String> = finalizers
        .into_iter()
        .filter(|f| !f.starts_with(RESOURCES_FINALIZER))
        .collect();
    let api: Api<Application> = Api::namespaced(
        ctx.client.clone(),
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

async fn delete_tracked(
    app: &Application,
    ctx: &Context,
    instance: &str,
    existing: &Value,
) -> Result<Vec<String>, Problem> {
    let cluster = destination_cluster(app, ctx)?;
    let conn = ctx
        .clients
        .connect(&cluster)
        .await
        .map_err(|e| Problem::comparison(e.to_string()))?;
    let mut reach = BTreeMap::new();
    add_deployed_kinds(&conn, existing, &mut reach).await;
    watch_kinds(ctx, &conn, &reach).await?;
    let tracked = ctx.live.tracked(&conn.server, instance);
    Ok(execute::delete_all(&conn, &reach, &tracked).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::StoreReady;
    use execute::SyncFailHooks;
    use kube::runtime::reflector;

    /// A context whose clients never reach an API server.
    fn offline_context(cache: &std::path::Path) -> Context {
        let client = crate::testing::offline_client("argocd");
        Context::new(
            client.clone(),
            ClusterRegistry::new(reflector::store().0, StoreReady::already(), "argocd"),
            ProjectRegistry::new(reflector::store().0, StoreReady::already(), "argocd"),
            Arc::new(GitRepos::new(BTreeMap::new(), cache.join("repos"))),
            Arc::new(Renderer::new(cache.join("render"), Default::default())),
            Arc::new(ClusterClients::new(client.clone(), false)),
            Arc::new(LiveCache::new(
                Arc::new(|_: &str| {}),
                Duration::from_secs(1),
            )),
            EventPublisher::new(client, "test", "test"),
            None,
            Config {
                controller_namespace: "argocd".into(),
                resync: Duration::from_secs(180),
                concurrency: 1,
            },
        )
    }

    fn application(namespace: &str, name: &str) -> Application {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "7"}}))
        .expect("an Application")
    }

    /// Deleting an app drops its records (and only its): nothing reconciles it again.
    #[tokio::test]
    async fn a_deleted_app_leaves_no_records_behind() {
        let cache = tempfile::tempdir().expect("a temp dir");
        let ctx = offline_context(cache.path());
        let (gone, kept) = (application("argocd", "gone"), application("team", "kept"));
        for (app, instance) in [(&gone, "gone"), (&kept, "team_kept")] {
            let key = cache_key(app, app.metadata.name.as_deref().unwrap_or_default());
            lock(&ctx.written).insert(key.clone(), 7);
            lock(&ctx.status_echoes).writing(key);
            let applied = AppliedVersions {
                at: Instant::now(),
                versions: BTreeMap::new(),
            };
            lock(&ctx.applied).insert(instance.to_owned(), applied);
            lock(&ctx.self_heal).insert(instance.to_owned(), (1, Instant::now()));
        }
        assert!(!ctx.triggers_reconcile(&gone), "its write is under way");

        ctx.forget_deleted(&gone);
        assert_eq!(lock(&ctx.written).keys().collect::<Vec<_>>(), ["team/kept"]);
        assert_eq!(lock(&ctx.applied).keys().collect::<Vec<_>>(), ["team_kept"]);
        assert_eq!(
            lock(&ctx.self_heal).keys().collect::<Vec<_>>(),
            ["team_kept"]
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

    /// A backoff duration past Go's range is reported, never a panic (it used to overflow
    /// `Duration::from_secs_f64`).
    #[tokio::test]
    async fn an_overflowing_retry_backoff_is_a_condition_not_a_panic() {
        let cache = tempfile::tempdir().expect("a temp dir");
        let ctx = offline_context(cache.path());
        let mut app = application("argocd", "huge");
        app.spec = serde_json::from_value(json!({
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
            "syncPolicy": {"automated": {}, "retry": {"limit": 5,
                "backoff": {"duration": "99999999999999999999999h", "factor": 2}}}}))
        .expect("a spec");
        let existing = json!({"operationState": {"phase": "Failed", "retryCount": 1,
            "syncResult": {"revision": "abc", "source": {}}}});
        let deployed = Deployed::new(vec![json!({})], vec!["abc".into()], false);
        let (key, object) = config_map("a", "1");
        let desired = [DesiredObject {
            key: key.clone(),
            object,
            role: Role::Resource,
            wave: 0,
            options: ResourceOptions::default(),
        }];
        let states = [ResourceState {
            key,
            sync: plan::ResourceSync::OutOfSync,
            differences: vec![],
            requires_pruning: false,
            missing: false,
            wave: 0,
        }];
        let decision = decide(
            &app, &ctx, "huge", &existing, &desired, &states, &deployed, None,
        );
        let Decision::Refuse(why) = decision else {
            panic!("a failed sync with an unreadable backoff is not retried");
        };
        assert!(why.contains("retry.backoff.duration"), "{why}");
        assert!(retry_delay(&app, 1).is_err());
        // Within Go's range but huge: saturates instead of overflowing.
        app.spec.sync_policy.as_mut().expect("a policy").retry =
            Some(json!({"limit": -1, "backoff": {"duration": "2562047h", "factor": 1000}}));
        let delay = retry_delay(&app, 30)
            .expect("a delay")
            .expect("retries left");
        assert!(delay >= Duration::from_secs(3 * 60));
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

    fn ending(failure: Option<&str>, sync_fail: Option<SyncFailHooks>) -> Ending {
        Ending {
            failure: failure.map(str::to_owned),
            sync_fail,
            waiting: None,
        }
    }

    #[test]
    fn a_failed_sync_waits_for_its_sync_fail_hooks_then_fails_with_its_error() {
        let (phase, message, _) =
            ending(Some("1 resource(s) failed"), Some(SyncFailHooks::Running)).phase();
        assert_eq!(phase, "Running");
        // The next pass finds the failure again in the recorded state.
        let existing = json!({"operationState": {"phase": phase, "message": message}});
        assert_eq!(
            recorded_sync_failure(&existing).as_deref(),
            Some("1 resource(s) failed")
        );

        let (phase, message, _) =
            ending(Some("1 resource(s) failed"), Some(SyncFailHooks::Done)).phase();
        assert_eq!(
            (phase, message.as_str()),
            ("Failed", "1 resource(s) failed")
        );
        let existing = json!({"operationState": {"phase": phase, "message": message}});
        assert_eq!(recorded_sync_failure(&existing), None);

        let (phase, message, _) = ending(
            Some("1 resource(s) failed"),
            Some(SyncFailHooks::Failed("Job/notify: job failed".into())),
        )
        .phase();
        assert_eq!(phase, "Failed");
        assert!(message.ends_with("SyncFail hook failed: Job/notify: job failed"));
    }

    #[test]
    fn waves_waiting_and_success_are_not_failures() {
        let waiting = Ending {
            failure: None,
            sync_fail: None,
            waiting: Some("waiting for web".into()),
        };
        let (phase, message, _) = waiting.phase();
        assert_eq!((phase, message.as_str()), ("Running", "waiting for web"));
        let existing = json!({"operationState": {"phase": phase, "message": message}});
        assert_eq!(recorded_sync_failure(&existing), None);
        assert_eq!(ending(None, None).phase().0, "Succeeded");
    }
}
