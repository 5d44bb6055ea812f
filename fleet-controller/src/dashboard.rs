//! The fleet dashboard and its JSON API on the controller's listener.
//!
//! Owns the routes, their token check and the page's assets:
//!
//! * `GET /api/v1/fleet?groupBy=<label>`: the [`FleetSummary`];
//! * `GET /api/v1/apps/{namespace}/{name}`: one Application's status detail;
//! * `GET /api/v1/apps/{namespace}/{name}/diff`: the sync engine's diff (built-in engine only);
//! * `GET /api/v1/appsets/{namespace}/{name}/preview`: what the ApplicationSet generates now;
//! * `GET /api/v1/appsets/{namespace}/{name}/rollout?groupBy=<label>`: where its RollingSync
//!   stands ([`RolloutView`]: phase, step, why, each Application's step, progress,
//!   destination and customer, running and target revision), from the watch caches;
//! * `GET /api/v1/appsets/{namespace}/{name}/plan?to=REV[&from=REV][&repoURL=URL][&groupBy=LABEL]`:
//!   the fleet plan of a revision range (built-in engine only; see
//!   [`argosy_sync_engine::fleet_plan`]), read-only, bounded in Applications and time;
//! * `GET /api/v1/events?groupBy=<label>`: Server-Sent Events, a `fleet` event with the
//!   summary whenever it changes (checked every second), keep-alive comments in between;
//! * `GET /`: the page (a shell plus vanilla JS reading the API); `GET /login`: the login
//!   form; `POST /login` (form field `token`): the session cookie; `POST /logout`: clears it.
//!
//! Every route but the login, the logout and the stylesheet asks for
//! `Authorization: Bearer <token>` or the session cookie. Without a configured token none
//! of these routes exist (404): the page shows deployment state, and nobody should get it
//! by accident. A token is never read from a query string: URLs end up in browser
//! history, proxy logs and `Referer` headers. Tokens are compared in constant time, and a
//! client that sends too many wrong ones gets 429 for a while ([`crate::http::limit`]).
//! The cookie is not the token: it carries its own expiry under an HMAC
//! ([`crate::http::session`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use argosy_crds::application::{ApplicationDestination, ApplicationSource};
use argosy_crds::{Application, ApplicationSet};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use futures::future::{BoxFuture, Shared};
use futures::{Stream, StreamExt};
use kube::runtime::reflector::{ObjectRef, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use argosy_sync_engine::fleet_plan::collect::{FleetPlan, PlanRequest};

use crate::fleet::{self, FleetSummary};
use crate::http::limit::{LimitError, SharedLimiter};
use crate::http::session::{self, Sessions};
use crate::http::{ClientAddr, bearer, client_ip, too_many};
use crate::query::{ControllerQueries, QueryError};
use crate::registry::ClusterRegistry;
use crate::rollout_view::{self, RolloutView};
use crate::webhook::tokens_equal;

/// How often the event stream recomputes the summary.
const EVENT_INTERVAL: Duration = Duration::from_secs(1);

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const APP_CSS: &str = include_str!("dashboard/app.css");
const LOGIN_HTML: &str = include_str!("dashboard/login.html");

/// Completes when the controller shuts down (event streams end then, or the listener's
/// graceful shutdown would wait for them forever).
pub type Shutdown = Shared<BoxFuture<'static, ()>>;

/// What the dashboard reads.
#[derive(Clone)]
pub struct Sources {
    pub applications: Store<Application>,
    pub appsets: Store<ApplicationSet>,
    pub clusters: ClusterRegistry,
    /// The controllers, through the read-only questions the dashboard may ask.
    pub controllers: Arc<dyn ControllerQueries>,
    pub shutdown: Shutdown,
}

impl Sources {
    fn summary(&self, group_by: &str) -> FleetSummary {
        let connections = fleet::connections(self.controllers.cluster_states());
        fleet::summarize(
            &self.applications.state(),
            &self.clusters.valid_clusters(),
            &connections,
            group_by,
        )
    }

    fn appset(&self, namespace: &str, name: &str) -> Result<Arc<ApplicationSet>, DashboardError> {
        self.appsets
            .get(&ObjectRef::new(name).within(namespace))
            .ok_or_else(|| DashboardError::FindObject {
                kind: "ApplicationSet",
                key: format!("{namespace}/{name}"),
            })
    }

    fn app(&self, namespace: &str, name: &str) -> Result<Arc<Application>, DashboardError> {
        self.applications
            .get(&ObjectRef::new(name).within(namespace))
            .ok_or_else(|| DashboardError::FindObject {
                kind: "Application",
                key: format!("{namespace}/{name}"),
            })
    }
}

/// A dashboard request that could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("{kind} {key} not found")]
    FindObject { kind: &'static str, key: String },
    #[error(
        "diffs and plans come from the built-in sync engine, which is off (--sync-engine argocd)"
    )]
    SyncEngineOff,
    #[error("comparing Application {app}: {message}")]
    Compare { app: String, message: String },
    #[error("generating ApplicationSet {appset}: {message}")]
    Generate { appset: String, message: String },
    #[error("generation task of ApplicationSet {appset} failed: {source}")]
    GenerationTask {
        appset: String,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("serializing the fleet summary: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("{0}")]
    BadRequest(String),
    #[error("planning ApplicationSet {appset}: {message}")]
    Plan { appset: String, message: String },
    #[error("planning ApplicationSet {appset}: {message}")]
    PlanUnavailable { appset: String, message: String },
}

impl DashboardError {
    /// A bounded label for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Self::FindObject { .. } => "not_found",
            Self::SyncEngineOff => "sync_engine_off",
            Self::Compare { .. } => "compare",
            Self::Generate { .. } => "generate",
            Self::GenerationTask { .. } => "generation_task",
            Self::Serialize(_) => "serialize",
            Self::BadRequest(_) => "bad_request",
            Self::Plan { .. } => "plan",
            Self::PlanUnavailable { .. } => "plan_unavailable",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::FindObject { .. } | Self::SyncEngineOff => StatusCode::NOT_FOUND,
            Self::Compare { .. } | Self::Generate { .. } | Self::Plan { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            // A plan over its time limit, or too many at once: the server's limits.
            Self::PlanUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::GenerationTask { .. } | Self::Serialize(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        tracing::debug!(category = self.category(), error = %self, "dashboard request failed");
        let body = serde_json::json!({"error": self.to_string()});
        (self.status(), Json(body)).into_response()
    }
}

/// Who may read the dashboard: the token, the sessions it issues, and the failed-login
/// limiter (shared with `/metrics`).
#[derive(Clone)]
pub struct Access {
    token: Arc<str>,
    sessions: Sessions,
    limiter: SharedLimiter,
}

impl Access {
    /// Sessions last `session_ttl`; `secure`: the listener serves TLS (cookies get `Secure`).
    pub fn new(token: &str, session_ttl: Duration, secure: bool, limiter: SharedLimiter) -> Access {
        Access {
            token: token.into(),
            sessions: Sessions::new(token, session_ttl, secure),
            limiter,
        }
    }

    /// Whether a request may pass: its bearer token (counted by the limiter) or else its
    /// session cookie.
    fn check(&self, headers: &HeaderMap, addr: &ClientAddr) -> Result<bool, LimitError> {
        if let Some(given) = bearer(headers) {
            return self
                .limiter
                .attempt(client_ip(addr), || tokens_equal(&self.token, given));
        }
        let now = SystemTime::now();
        Ok(headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| {
                name == session::COOKIE && self.sessions.verify(value, now).is_ok()
            }))
    }

    /// 303 to the page with a new session cookie, the login form again (401), or 429.
    fn login(&self, given: &str, addr: &ClientAddr) -> Response {
        let right = self
            .limiter
            .attempt(client_ip(addr), || tokens_equal(&self.token, given.trim()));
        match right {
            Ok(true) => {
                let cookie = self.sessions.set_cookie(SystemTime::now());
                ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
            }
            Ok(false) => (StatusCode::UNAUTHORIZED, Html(LOGIN_HTML)).into_response(),
            Err(blocked) => too_many(&blocked),
        }
    }
}

/// The dashboard routes; no routes at all without access settings (a token).
pub fn routes(access: Option<Access>, sources: Sources) -> Router {
    let Some(access) = access.filter(|a| !a.token.is_empty()) else {
        return Router::new();
    };
    let protected = Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(asset_js))
        .route("/api/v1/fleet", get(fleet_summary))
        .route("/api/v1/shard", get(shard))
        .route("/api/v1/apps/{namespace}/{name}", get(app_detail))
        .route("/api/v1/apps/{namespace}/{name}/diff", get(app_diff))
        .route(
            "/api/v1/appsets/{namespace}/{name}/preview",
            get(appset_preview),
        )
        .route("/api/v1/appsets/{namespace}/{name}/plan", get(appset_plan))
        .route(
            "/api/v1/appsets/{namespace}/{name}/rollout",
            get(appset_rollout),
        )
        .route("/api/v1/events", get(events))
        .route_layer(middleware::from_fn_with_state(access.clone(), require_auth))
        .with_state(sources);
    // The login form, and the stylesheet it uses (it shows nothing of the fleet).
    let login = Router::new()
        .route("/login", get(login_get).post(login_post))
        .route("/logout", post(logout))
        .route("/assets/app.css", get(asset_css))
        .with_state(access);
    protected.merge(login)
}

async fn require_auth(
    State(access): State<Access>,
    addr: ClientAddr,
    request: Request,
    next: Next,
) -> Response {
    match access.check(request.headers(), &addr) {
        Ok(true) => return next.run(request).await,
        Ok(false) => {}
        Err(blocked) => return too_many(&blocked),
    }
    let wants_page = request.uri().path() == "/";
    if wants_page {
        (StatusCode::UNAUTHORIZED, Html(LOGIN_HTML)).into_response()
    } else {
        let body = serde_json::json!({"error": "missing or wrong dashboard token, or the session expired"});
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(body),
        )
            .into_response()
    }
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

/// The form only: a token in the query string is ignored, never accepted.
async fn login_get() -> Html<&'static str> {
    Html(LOGIN_HTML)
}

async fn login_post(
    State(access): State<Access>,
    addr: ClientAddr,
    Form(form): Form<LoginForm>,
) -> Response {
    access.login(&form.token, &addr)
}

/// Clears the browser's session cookie. (Sessions are not stored on the server, so a
/// copied cookie stays valid until it expires; rotating the token ends them all.)
async fn logout(State(access): State<Access>) -> Response {
    (
        [(header::SET_COOKIE, access.sessions.clear_cookie())],
        Redirect::to("/login"),
    )
        .into_response()
}

async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

async fn asset_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

async fn asset_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupBy {
    #[serde(default)]
    group_by: String,
}

async fn fleet_summary(
    State(sources): State<Sources>,
    Query(query): Query<GroupBy>,
) -> Json<FleetSummary> {
    Json(sources.summary(&query.group_by))
}

/// This replica's shard of the sync engine: its identity and shard number, the live
/// members, the clusters it syncs; `{"sharded": false}` without leader election.
async fn shard(State(sources): State<Sources>) -> Json<serde_json::Value> {
    Json(match sources.controllers.shard() {
        Some(status) => serde_json::json!({"sharded": true, "shard": status}),
        None => serde_json::json!({"sharded": false}),
    })
}

/// `?groupBy=`, defaulting to the fleet's customer label.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerLabel {
    group_by: Option<String>,
}

async fn appset_rollout(
    State(sources): State<Sources>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<CustomerLabel>,
) -> Result<Json<RolloutView>, DashboardError> {
    let appset = sources.appset(&namespace, &name)?;
    let owned: Vec<Arc<Application>> = sources
        .applications
        .state()
        .into_iter()
        .filter(|a| {
            a.metadata.namespace.as_deref() == Some(namespace.as_str())
                && rollout_view::owned_by(a, &name)
        })
        .collect();
    let group_by = query
        .group_by
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| crate::defaults::PLAN_GROUP_BY.to_owned());
    Ok(Json(rollout_view::view(
        &appset,
        &owned,
        &sources.clusters.valid_clusters(),
        &group_by,
    )))
}

/// One Application as the detail view shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppDetail {
    namespace: String,
    name: String,
    project: String,
    destination: ApplicationDestination,
    sources: Vec<ApplicationSource>,
    /// `status` as the sync engine wrote it (sync, health, resources, conditions,
    /// history, operationState, ...).
    status: Value,
}

async fn app_detail(
    State(sources): State<Sources>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<AppDetail>, DashboardError> {
    let app = sources.app(&namespace, &name)?;
    Ok(Json(AppDetail {
        namespace,
        name,
        project: app.spec.project.clone(),
        destination: app.spec.destination.clone(),
        sources: app
            .spec
            .source
            .iter()
            .chain(&app.spec.sources)
            .cloned()
            .collect(),
        status: app
            .status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(Value::Null),
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiffView {
    diffs: Vec<ResourceDiffView>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceDiffView {
    group: String,
    kind: String,
    namespace: String,
    name: String,
    text: String,
}

async fn app_diff(
    State(sources): State<Sources>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<DiffView>, DashboardError> {
    let app = sources.app(&namespace, &name)?;
    let comparison = sources
        .controllers
        .compare(app)
        .await
        .map_err(|error| match error {
            QueryError::SyncEngineOff => DashboardError::SyncEngineOff,
            other => DashboardError::Compare {
                app: format!("{namespace}/{name}"),
                message: other.to_string(),
            },
        })?;
    let diffs = argosy_sync_engine::diff::resource_diffs(&comparison)
        .into_iter()
        .map(|d| ResourceDiffView {
            group: d.key.group,
            kind: d.key.kind,
            namespace: d.key.namespace,
            name: d.key.name,
            text: d.text,
        })
        .collect();
    Ok(Json(DiffView {
        diffs,
        warnings: comparison.warnings,
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Preview {
    applications: Vec<PreviewApp>,
    /// Generated Applications that would not be written, and why.
    validation_errors: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PreviewApp {
    namespace: String,
    name: String,
    project: String,
    destination: ApplicationDestination,
    sources: Vec<ApplicationSource>,
    /// Whether an Application of this name exists now.
    exists: bool,
}

async fn appset_preview(
    State(sources): State<Sources>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<Preview>, DashboardError> {
    let key = format!("{namespace}/{name}");
    let appset = sources.appset(&namespace, &name)?;
    let generated = sources
        .controllers
        .generate(appset)
        .await
        .map_err(|error| match error {
            QueryError::GenerationTask(source) => DashboardError::GenerationTask {
                appset: key.clone(),
                source,
            },
            other => DashboardError::Generate {
                appset: key.clone(),
                message: other.to_string(),
            },
        })?;
    let applications = generated
        .applications
        .into_iter()
        .map(|g| {
            let app = g.application;
            let app_namespace = app
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.clone());
            let app_name = app.metadata.name.clone().unwrap_or_default();
            let exists = sources
                .applications
                .get(&ObjectRef::new(&app_name).within(&app_namespace))
                .is_some();
            PreviewApp {
                namespace: app_namespace,
                name: app_name,
                project: app.spec.project.clone(),
                destination: app.spec.destination.clone(),
                sources: app
                    .spec
                    .source
                    .into_iter()
                    .chain(app.spec.sources)
                    .collect(),
                exists,
            }
        })
        .collect();
    Ok(Json(Preview {
        applications,
        validation_errors: generated
            .validation_errors
            .into_iter()
            .map(|e| e.message)
            .collect(),
    }))
}

/// The query of a plan request.
#[derive(Deserialize)]
struct PlanQuery {
    to: Option<String>,
    from: Option<String>,
    #[serde(rename = "repoURL")]
    repo_url: Option<String>,
    #[serde(rename = "groupBy")]
    group_by: Option<String>,
}

async fn appset_plan(
    State(sources): State<Sources>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<PlanQuery>,
) -> Result<Json<FleetPlan>, DashboardError> {
    let key = format!("{namespace}/{name}");
    let to = query
        .to
        .filter(|t| !t.is_empty())
        .ok_or_else(|| DashboardError::BadRequest("the query needs to=<revision>".to_owned()))?;
    let appset = sources.appset(&namespace, &name)?;
    let request = PlanRequest {
        from: query.from.filter(|f| !f.is_empty()),
        to,
        repo_urls: query.repo_url.into_iter().collect(),
        group_by: query
            .group_by
            .unwrap_or_else(|| crate::defaults::PLAN_GROUP_BY.to_owned()),
        max_apps: crate::defaults::PLAN_API_MAX_APPS,
        max_diff_lines: crate::defaults::PLAN_MAX_DIFF_LINES,
        deadline: None,
    };
    let plan = sources
        .controllers
        .plan(appset, request)
        .await
        .map_err(|error| match error {
            QueryError::SyncEngineOff => DashboardError::SyncEngineOff,
            QueryError::GenerationTask(source) => DashboardError::GenerationTask {
                appset: key.clone(),
                source,
            },
            busy @ (QueryError::PlanTimeout(_) | QueryError::PlansBusy) => {
                DashboardError::PlanUnavailable {
                    appset: key.clone(),
                    message: busy.to_string(),
                }
            }
            other => DashboardError::Plan {
                appset: key.clone(),
                message: other.to_string(),
            },
        })?;
    Ok(Json(plan))
}

async fn events(
    State(sources): State<Sources>,
    Query(query): Query<GroupBy>,
) -> Sse<impl Stream<Item = Result<Event, DashboardError>>> {
    let shutdown = sources.shutdown.clone();
    let changes = fleet_changes(sources, query.group_by)
        .map(|summary| {
            let data = serde_json::to_string(&summary)?;
            Ok(Event::default().event("fleet").data(data))
        })
        .take_until(shutdown);
    Sse::new(changes).keep_alive(KeepAlive::default())
}

/// The summary now, then each time it differs from the last one sent.
fn fleet_changes(sources: Sources, group_by: String) -> impl Stream<Item = FleetSummary> {
    let mut interval = tokio::time::interval(EVENT_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures::stream::unfold(
        (interval, None::<FleetSummary>),
        move |(mut interval, last)| {
            let (sources, group_by) = (sources.clone(), group_by.clone());
            async move {
                loop {
                    interval.tick().await;
                    let summary = sources.summary(&group_by);
                    if last.as_ref() != Some(&summary) {
                        return Some((summary.clone(), (interval, Some(summary))));
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appset::plan::DeletionBudget;
    use crate::events::EventPublisher;
    use crate::registry::{ProjectRegistry, StoreReady};
    use argosy_sync_engine::repo::GitRepos;
    use axum::body::Body;
    use futures::FutureExt;
    use http::Request as HttpRequest;
    use k8s_openapi::api::core::v1::Secret;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher;
    use serde_json::json;
    use std::collections::BTreeSet;
    use tower::ServiceExt;

    const NS: &str = "argocd";
    const TOKEN: &str = "s3cret-dashboard-token";
    const SERVER: &str = "https://acme.example:6443";

    fn writer<K>(objects: impl IntoIterator<Item = K>) -> Writer<K>
    where
        K: kube::Resource + Clone + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        let mut writer = Writer::default();
        for object in objects {
            writer.apply_watcher_event(&watcher::Event::Apply(object));
        }
        writer
    }

    fn app(name: &str, sync: &str) -> Application {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "source": {"repoURL": "https://git.example/fleet.git", "path": "web"},
                "destination": {"server": SERVER, "namespace": "web"},
            },
            "status": {
                "sync": {"status": sync, "revision": "0123456789abcdef0123456789abcdef01234567"},
                "health": {"status": "Healthy"},
                "resources": [{"version": "v1", "kind": "Service", "namespace": "web", "name": "web", "status": sync}],
                "conditions": [{"type": "Warning", "message": "careful"}],
            },
        }))
        .unwrap()
    }

    fn appset() -> ApplicationSet {
        serde_json::from_value(json!({
            "metadata": {"name": "listed", "namespace": NS, "uid": "u1"},
            "spec": {
                "generators": [{"list": {"elements": [{"env": "dev"}, {"env": "prod"}]}}],
                "template": {
                    "metadata": {"name": "web-{{env}}"},
                    "spec": {
                        "project": "default",
                        "source": {"repoURL": "https://git.example/fleet.git", "path": "envs/{{env}}"},
                        "destination": {"server": SERVER, "namespace": "{{env}}"},
                    },
                },
            },
        }))
        .unwrap()
    }

    fn cluster_secret() -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": "cluster-acme", "namespace": NS,
                         "labels": {"argocd.argoproj.io/secret-type": "cluster", "customer": "acme"}},
            "stringData": {"name": "acme", "server": SERVER, "config": "{}"}
        }))
        .unwrap()
    }

    fn default_project() -> argosy_crds::AppProject {
        serde_json::from_value(json!({
            "metadata": {"name": "default", "namespace": NS},
            "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]},
        }))
        .unwrap()
    }

    struct Fixture {
        apps: Writer<Application>,
        sources: Sources,
        _cache: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let apps = writer([app("web-acme", "Synced")]);
        let secrets = writer([cluster_secret()]).as_reader();
        let clusters = ClusterRegistry::new(secrets, StoreReady::already(), NS);
        let cache = tempfile::tempdir().unwrap();
        let client = crate::testing::offline_client(NS);
        let appset_ctx = crate::appset::Context::new(crate::appset::ContextParts {
            client: client.clone(),
            clusters: clusters.clone(),
            projects: ProjectRegistry::new(
                writer([default_project()]).as_reader(),
                StoreReady::already(),
                NS,
            ),
            applications: apps.as_reader(),
            applications_ready: StoreReady::already(),
            repos: Arc::new(GitRepos::new(BTreeMap::new(), cache.path().to_owned())),
            events: EventPublisher::new(client, "test", "test"),
            leader: None,
            metrics: crate::metrics::Metrics::default(),
            config: crate::appset::Config {
                controller_namespace: NS.into(),
                appset_namespaces: BTreeSet::from([NS.to_owned()]),
                budget: DeletionBudget::default(),
                policy_override: None,
                pipeline: Default::default(),
                concurrent_writes: 1,
            },
        });
        let sources = Sources {
            applications: apps.as_reader(),
            appsets: writer([appset()]).as_reader(),
            clusters,
            controllers: Arc::new(crate::query::Controllers {
                appset: Arc::new(appset_ctx),
                sync: None,
            }),
            shutdown: futures::future::pending::<()>().boxed().shared(),
        };
        Fixture {
            apps,
            sources,
            _cache: cache,
        }
    }

    use std::collections::BTreeMap;

    async fn send(router: &Router, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = HttpRequest::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body_text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn access() -> Option<Access> {
        Some(Access::new(
            TOKEN,
            Duration::from_secs(3600),
            false,
            SharedLimiter::default(),
        ))
    }

    async fn post_form(router: &Router, path: &str, body: &str) -> Response {
        let form = HttpRequest::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .unwrap();
        router.clone().oneshot(form).await.unwrap()
    }

    fn bearer() -> (&'static str, String) {
        ("authorization", format!("Bearer {TOKEN}"))
    }

    async fn get_json(router: &Router, path: &str) -> (StatusCode, Value) {
        let (name, value) = bearer();
        let response = send(router, path, &[(name, &value)]).await;
        let status = response.status();
        (
            status,
            serde_json::from_str(&body_text(response).await).unwrap(),
        )
    }

    #[tokio::test]
    async fn without_a_token_nothing_is_served() {
        let router = routes(None, fixture().sources);
        for path in ["/", "/api/v1/fleet", "/login", "/api/v1/events"] {
            assert_eq!(
                send(&router, path, &[]).await.status(),
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn every_route_asks_for_the_token() {
        let router = routes(access(), fixture().sources);
        let api = send(&router, "/api/v1/fleet", &[]).await;
        assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
        let wrong = send(
            &router,
            "/api/v1/fleet",
            &[("authorization", "Bearer nope")],
        )
        .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let cookie = send(
            &router,
            "/api/v1/apps/argocd/web-acme",
            &[("cookie", "argosy_dashboard=forged")],
        )
        .await;
        assert_eq!(cookie.status(), StatusCode::UNAUTHORIZED);
        let page = send(&router, "/", &[]).await;
        assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
        let text = body_text(page).await;
        assert!(text.contains("action=\"/login\""), "{text}");
        assert!(!text.contains(TOKEN));

        let (name, value) = bearer();
        let page = send(&router, "/", &[(name, &value)]).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert!(body_text(page).await.contains("/assets/app.js"));
    }

    #[tokio::test]
    async fn a_token_in_the_query_string_logs_nobody_in() {
        let router = routes(access(), fixture().sources);
        let response = send(&router, &format!("/login?token={TOKEN}"), &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get(header::SET_COOKIE).is_none());
        assert!(body_text(response).await.contains("method=\"post\""));
        let api = send(&router, &format!("/api/v1/fleet?token={TOKEN}"), &[]).await;
        assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn login_sets_an_expiring_session_cookie_that_is_not_the_token() {
        let router = routes(access(), fixture().sources);
        let refused = post_form(&router, "/login", "token=wrong").await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(refused.headers().get(header::SET_COOKIE).is_none());

        let response = post_form(&router, "/login", &format!("token={TOKEN}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set_cookie = response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"] {
            assert!(
                set_cookie.split("; ").any(|a| a == attribute),
                "{attribute}: {set_cookie}"
            );
        }
        assert!(!set_cookie.contains("Secure"), "no TLS: {set_cookie}");
        assert!(
            !set_cookie.contains(TOKEN),
            "the cookie must not carry the token"
        );
        let cookie = set_cookie.split(';').next().unwrap();
        let api = send(
            &router,
            "/api/v1/fleet",
            &[("cookie", &format!("other=1; {cookie}"))],
        )
        .await;
        assert_eq!(api.status(), StatusCode::OK);

        // A cookie of this token issued two TTLs ago, and one with its expiry pushed out.
        let sessions = Sessions::new(TOKEN, Duration::from_secs(3600), false);
        let old = sessions.issue(SystemTime::now() - Duration::from_secs(7200));
        let parts: Vec<&str> = old.split('.').collect();
        let extended = format!("{}.{}.{}.{}", parts[0], parts[1], u64::MAX / 2, parts[3]);
        for value in [old.as_str(), extended.as_str()] {
            let api = send(
                &router,
                "/api/v1/fleet",
                &[("cookie", &format!("{}={value}", session::COOKIE))],
            )
            .await;
            assert_eq!(api.status(), StatusCode::UNAUTHORIZED, "{value}");
        }

        let logout = post_form(&router, "/logout", "").await;
        assert_eq!(logout.status(), StatusCode::SEE_OTHER);
        let cleared = logout.headers()[header::SET_COOKIE].to_str().unwrap();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
    }

    #[tokio::test]
    async fn wrong_tokens_are_limited() {
        let router = routes(access(), fixture().sources);
        for _ in 0..crate::defaults::LOGIN_MAX_FAILURES {
            let refused = post_form(&router, "/login", "token=guess").await;
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        }
        // Blocked: the right token too, by form and by header.
        let blocked = post_form(&router, "/login", &format!("token={TOKEN}")).await;
        assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = blocked.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=crate::defaults::LOGIN_WINDOW_SECONDS).contains(&retry));
        let (name, value) = bearer();
        let api = send(&router, "/api/v1/fleet", &[(name, &value)]).await;
        assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[tokio::test]
    async fn the_shard_api_says_when_the_engine_is_not_sharded() {
        let router = routes(access(), fixture().sources);
        let (status, shard) = get_json(&router, "/api/v1/shard").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(shard, serde_json::json!({"sharded": false}));
    }

    #[tokio::test]
    async fn fleet_and_app_detail() {
        let router = routes(access(), fixture().sources);
        let (status, fleet) = get_json(&router, "/api/v1/fleet?groupBy=customer").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(fleet["groupBy"], "customer");
        assert_eq!(fleet["clusters"][0]["name"], "acme");
        assert_eq!(fleet["clusters"][0]["connection"]["state"], "Connected");
        assert_eq!(fleet["groups"][0]["value"], "acme");
        assert_eq!(fleet["matrix"]["byApp"][0]["key"], "web");
        assert_eq!(
            fleet["matrix"]["byApp"][0]["cells"][SERVER][0]["revision"],
            "0123456"
        );

        let (status, detail) = get_json(&router, "/api/v1/apps/argocd/web-acme").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(detail["destination"]["server"], SERVER);
        assert_eq!(detail["sources"][0]["path"], "web");
        assert_eq!(detail["status"]["resources"][0]["kind"], "Service");
        assert_eq!(detail["status"]["conditions"][0]["message"], "careful");

        let (status, missing) = get_json(&router, "/api/v1/apps/argocd/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(missing["error"], "Application argocd/nope not found");
        let (status, diff) = get_json(&router, "/api/v1/apps/argocd/web-acme/diff").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            diff["error"].as_str().unwrap().contains("sync engine"),
            "{diff}"
        );
    }

    #[tokio::test]
    async fn the_rollout_view_needs_the_token_and_an_appset() {
        let router = routes(access(), fixture().sources);
        let refused = send(&router, "/api/v1/appsets/argocd/listed/rollout", &[]).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let (status, view) = get_json(&router, "/api/v1/appsets/argocd/listed/rollout").await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["name"], "listed");
        assert_eq!(view["rollingSync"], false, "no strategy: every app at once");
        assert_eq!(view["applications"], json!([]));
        let (status, missing) = get_json(&router, "/api/v1/appsets/argocd/nope/rollout").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(missing["error"], "ApplicationSet argocd/nope not found");
    }

    #[tokio::test]
    async fn preview_generates_without_writing() {
        let router = routes(access(), fixture().sources);
        let (status, preview) = get_json(&router, "/api/v1/appsets/argocd/listed/preview").await;
        assert_eq!(status, StatusCode::OK, "{preview}");
        let apps = preview["applications"].as_array().unwrap();
        let names: Vec<&str> = apps.iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["web-dev", "web-prod"], "{preview}");
        assert_eq!(apps[1]["destination"]["namespace"], "prod");
        assert_eq!(apps[1]["sources"][0]["path"], "envs/prod");
        assert_eq!(apps[1]["exists"], false);
        let (status, _) = get_json(&router, "/api/v1/appsets/argocd/other/preview").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_plan_request_is_checked_before_any_work() {
        let router = routes(access(), fixture().sources);
        let plan = "/api/v1/appsets/argocd/listed/plan";
        let (status, body) = get_json(&router, plan).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "the query needs to=<revision>");
        let (status, body) = get_json(&router, "/api/v1/appsets/argocd/other/plan?to=main").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        // Rendering is the sync engine's, which this fixture runs without.
        let (status, body) = get_json(&router, &format!("{plan}?to=main")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(
            body["error"],
            "diffs and plans come from the built-in sync engine, which is off (--sync-engine argocd)"
        );
        // And without the token, nothing.
        let response = send(&router, &format!("{plan}?to=main"), &[]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn events_send_the_summary_then_its_changes() {
        let mut fixture = fixture();
        let mut changes = Box::pin(fleet_changes(fixture.sources.clone(), "customer".into()));
        let first = changes.next().await.unwrap();
        assert_eq!(first.apps.by_sync["Synced"], 1);
        fixture
            .apps
            .apply_watcher_event(&watcher::Event::Apply(app("web-acme", "OutOfSync")));
        let next = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.apps.by_sync["OutOfSync"], 1);
        // Nothing changed: nothing is sent.
        let quiet = tokio::time::timeout(Duration::from_millis(2500), changes.next()).await;
        assert!(quiet.is_err(), "an unchanged fleet sent an event");

        let router = routes(access(), fixture.sources);
        let (name, value) = bearer();
        let response = send(
            &router,
            "/api/v1/events?groupBy=customer",
            &[(name, &value)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        let mut body = response.into_body().into_data_stream();
        let chunk = body.next().await.unwrap().unwrap();
        let text = String::from_utf8(chunk.to_vec()).unwrap();
        assert!(text.starts_with("event: fleet\ndata: {"), "{text}");
    }
}
