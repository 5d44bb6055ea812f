//! `argosy app list | get | diff | sync | rollback`: Argo CD's application commands,
//! against the cluster of the current kubeconfig.
//!
//! Owns reading Applications for display ([`format`](mod@format)), requesting operations the Argo CD
//! way (the top-level `operation` field, set with a merge patch that carries the
//! `resourceVersion` read, so two clients cannot both start one) and waiting for their
//! outcome in `status.operationState`, and `diff`, which runs the sync engine's own
//! observation and comparison ([`crate::application::compare_app`]) and writes
//! nothing ([`argosy_sync_engine::diff`] formats it).
//!
//! Exit codes: 0 on success (`diff`: in sync); 1 when a command fails or is refused, when
//! a waited-for operation does not succeed, and when `diff` finds differences; `diff`
//! exits 2 when it cannot compare, so scripts tell "differs" from "broken" (as
//! `argocd app diff` does).

use crate::cli::format::app as format;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argosy_crds::application::ApplicationDestination;
use argosy_crds::consts::{SECRET_TYPE_CLUSTER, SECRET_TYPE_LABEL};
use argosy_crds::operation::{OperationPhase, SyncOperation};
use argosy_crds::sync_window::MatchedWindows;
use argosy_crds::{AppProject, Application};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde::Deserialize as _;
use serde_json::{Value, json};

use crate::application;
use crate::events::EventPublisher;
use crate::registry::{ClusterRegistry, ProjectRegistry, StoreReady};
use argosy_sync_engine::charts::ChartRepos;
use argosy_sync_engine::clients::ClusterClients;
use argosy_sync_engine::diff::Comparison;
use argosy_sync_engine::live::LiveCache;
use argosy_sync_engine::render::{Limits, Renderer};
use argosy_sync_engine::repo::{GitRepos, RemoteSettings};
use argosy_sync_engine::url_policy::UrlPolicy;

/// How `list` and `get` print.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Yaml,
    Json,
}

/// `argosy app` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AppCommand {
    /// List Applications: name, project, cluster, namespace, sync, health, revision.
    List {
        /// Only Applications with these labels (`-l team=shop,tier!=test`).
        #[arg(short = 'l', long)]
        selector: Option<String>,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show an Application: source, destination, status, last operation, resources, history.
    Get {
        name: String,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Diff the live objects against Git (exit 0: in sync, 1: differences, 2: error).
    Diff {
        name: String,
        #[command(flatten)]
        engine: EngineFlags,
    },
    /// Sync an Application (sets its `operation`; the sync engine runs it).
    Sync {
        name: String,
        /// Delete tracked objects Git no longer has.
        #[arg(long)]
        prune: bool,
        /// Sync to this revision instead of the spec's targetRevision.
        #[arg(long)]
        revision: Option<String>,
        #[command(flatten)]
        wait: WaitFlags,
    },
    /// Roll back to a history entry (`argosy app get` lists them); refused for automated apps.
    Rollback {
        name: String,
        /// History ID (default: the entry before the latest).
        id: Option<i64>,
        /// Delete tracked objects the older revision does not have.
        #[arg(long)]
        prune: bool,
        #[command(flatten)]
        wait: WaitFlags,
    },
    /// Approve pruning (`Prune=confirm`) and deletion (`Delete=confirm`) of the app's
    /// resources that wait for it: sets `argocd.argoproj.io/deletion-approved` to now, as
    /// `argocd app confirm-deletion` does.
    ConfirmDeletion { name: String },
}

/// `--wait` and `--timeout`.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitFlags {
    /// Wait until the operation completes; exit 1 unless it succeeded.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// What `diff` needs to observe an app as the sync engine does (same flags as `argosy run`).
#[derive(Debug, Clone, clap::Args)]
pub struct EngineFlags {
    /// Namespace of cluster Secrets and AppProjects (Argo CD's namespace).
    #[arg(long, env = "ARGOSY_NAMESPACE", default_value = "argocd")]
    pub controller_namespace: String,
    /// Serve a repository URL from a local repository: URL=PATH.
    #[arg(long = "repo", value_parser = crate::cli::parse::parse_repo_override)]
    pub repos: Vec<(String, PathBuf)>,
    /// Where remote repositories are cloned.
    #[arg(long, env = "ARGOSY_REPO_CACHE")]
    pub repo_cache: Option<PathBuf>,
    /// Allow exec and AWS auth plugins named in cluster Secrets (they run commands here).
    #[arg(long)]
    pub allow_exec_plugins: bool,
}

/// Why an app command failed. Messages name the application and namespace.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("application {name} not found in namespace {namespace}")]
    NotFound { name: String, namespace: String },
    #[error("reading application {name} in namespace {namespace}: {error}")]
    Read {
        name: String,
        namespace: String,
        error: kube::Error,
    },
    #[error("listing applications in namespace {namespace}: {error}")]
    List {
        namespace: String,
        error: kube::Error,
    },
    #[error("another operation is already in progress on application {name}")]
    InProgress { name: String },
    #[error("application {name}: rollback cannot be initiated when auto-sync is enabled")]
    AutoSyncEnabled { name: String },
    #[error("application {name} has no history entry {wanted} (history IDs: {available})")]
    NoHistory {
        name: String,
        wanted: String,
        available: String,
    },
    #[error("application {name} changed while the operation was requested; try again")]
    Conflict { name: String },
    #[error("requesting the operation on application {name}: {error}")]
    Request { name: String, error: kube::Error },
    #[error("approving deletions of application {name}: {error}")]
    ConfirmDeletion { name: String, error: kube::Error },
    #[error("timed out after {seconds} s waiting for the operation on application {name}{state}")]
    Timeout {
        name: String,
        seconds: u64,
        state: String,
    },
    #[error("the operation on application {name} was removed or replaced before it completed")]
    Cancelled { name: String },
    #[error("cannot sync application {name}: {why}")]
    SyncWindow { name: String, why: String },
    /// `project` is `namespace/name`.
    #[error("reading project {project} of application {name}: {error}")]
    Project {
        name: String,
        project: String,
        error: kube::Error,
    },
    #[error("sync of application {name} {phase}: {message}")]
    OperationFailed {
        name: String,
        phase: String,
        message: String,
    },
    #[error("application {name} is not a valid Application: {reason}")]
    Decode { name: String, reason: String },
    #[error("listing {what} in namespace {namespace}: {error}")]
    ListRegistry {
        what: &'static str,
        namespace: String,
        error: kube::Error,
    },
    #[error("comparing application {name}: {reason}")]
    Compare { name: String, reason: String },
    #[error("printing as YAML: {0}")]
    Encode(String),
    #[error("writing to stdout: {0}")]
    Write(std::io::Error),
}

impl AppError {
    pub fn category(&self) -> &'static str {
        match self {
            AppError::NotFound { .. } => "not_found",
            AppError::Read { .. } => "read",
            AppError::List { .. } => "list",
            AppError::InProgress { .. } => "in_progress",
            AppError::AutoSyncEnabled { .. } => "auto_sync_enabled",
            AppError::NoHistory { .. } => "no_history",
            AppError::Conflict { .. } => "conflict",
            AppError::Request { .. } => "request",
            AppError::ConfirmDeletion { .. } => "confirm_deletion",
            AppError::Timeout { .. } => "timeout",
            AppError::Cancelled { .. } => "cancelled",
            AppError::OperationFailed { .. } => "operation_failed",
            AppError::SyncWindow { .. } => "sync_window",
            AppError::Project { .. } => "project",
            AppError::Decode { .. } => "decode",
            AppError::ListRegistry { .. } => "list_registry",
            AppError::Compare { .. } => "compare",
            AppError::Encode(_) => "encode",
            AppError::Write(_) => "write",
        }
    }
}

/// Runs `argosy app COMMAND` against the Applications of `namespace` (their AppProjects
/// in `project_namespace`); text goes to `out`.
pub async fn run(
    client: Client,
    namespace: &str,
    project_namespace: &str,
    command: AppCommand,
    out: &mut dyn Write,
) -> Result<ExitCode, AppError> {
    let apps = Apps::new(client.clone(), namespace, project_namespace);
    match command {
        AppCommand::List { selector, output } => {
            let list = apps.list(selector.as_deref()).await?;
            let text = match output {
                Output::Table => format::list_table(&list),
                other => encode(
                    &json!({"apiVersion": "v1", "kind": "List", "items": list}),
                    other,
                )?,
            };
            emit(out, &text)?;
        }
        AppCommand::Get { name, output } => {
            let app = apps.get(&name).await?;
            let text = match output {
                Output::Table => {
                    let now = k8s_openapi::jiff::Timestamp::now();
                    let window = match apps.sync_windows(&app).await {
                        Ok(windows) => format::sync_window_fields(&windows, now),
                        Err(e) => vec![("Sync Window", format!("unknown ({e})"))],
                    };
                    format::app_summary(&app, &window)
                }
                other => encode(&app, other)?,
            };
            emit(out, &text)?;
        }
        AppCommand::Diff { name, engine } => {
            let app = apps.get(&name).await?;
            let comparison = compare(client, &name, app, &engine).await?;
            for warning in &comparison.warnings {
                eprintln!("warning: {warning}");
            }
            let diffs = argosy_sync_engine::diff::resource_diffs(&comparison);
            for d in &diffs {
                emit(out, &d.text)?;
            }
            return Ok(if diffs.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        AppCommand::Sync {
            name,
            prune,
            revision,
            wait,
        } => {
            let app = apps.get(&name).await?;
            let operation = sync_operation(&app, revision.as_deref(), prune, None, &user())?;
            // Argo CD's API refuses a manual sync a window blocks (unless it has manualSync).
            let windows = apps.sync_windows(&app).await?;
            if let Some(blocked) = windows.blocked(true, None, k8s_openapi::jiff::Timestamp::now())
            {
                return Err(AppError::SyncWindow {
                    name,
                    why: blocked.to_string(),
                });
            }
            apps.request(&app, &operation).await?;
            finish(&apps, &name, &operation, &wait, out).await?;
        }
        AppCommand::Rollback {
            name,
            id,
            prune,
            wait,
        } => {
            let app = apps.get(&name).await?;
            let operation = rollback_operation(&app, id, prune, &user())?;
            apps.request(&app, &operation).await?;
            finish(&apps, &name, &operation, &wait, out).await?;
        }
        AppCommand::ConfirmDeletion { name } => {
            let at = apps.confirm_deletion(&name).await?;
            emit(
                out,
                &format!(
                    "application {name}: deletions approved at {at} ({})\n",
                    argosy_sync_engine::resource::DELETION_APPROVED_ANNOTATION
                ),
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reports a requested operation, or waits for it and prints the app.
async fn finish(
    apps: &Apps,
    name: &str,
    operation: &Value,
    wait: &WaitFlags,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    if !wait.wait {
        return emit(
            out,
            &format!(
                "operation requested on application {}/{name}\n",
                apps.namespace
            ),
        );
    }
    let requested = operation.get("sync").unwrap_or(&Value::Null);
    let (app, phase, message) = apps
        .wait(name, requested, Duration::from_secs(wait.timeout))
        .await?;
    emit(out, &format::app_summary(&app, &[]))?;
    if phase == "Succeeded" {
        Ok(())
    } else {
        Err(AppError::OperationFailed {
            name: name.to_owned(),
            phase,
            message,
        })
    }
}

/// Writes `text`; a closed pipe (`argosy app list | head`) is not an error.
pub(crate) fn emit(out: &mut dyn Write, text: &str) -> Result<(), AppError> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(AppError::Write(e)),
        _ => Ok(()),
    }
}

/// JSON or YAML of `value`, without `metadata.managedFields` (as `kubectl get -o`).
pub(crate) fn encode(value: &Value, output: Output) -> Result<String, AppError> {
    let mut value = value.clone();
    let objects = match value.get_mut("items").and_then(Value::as_array_mut) {
        Some(items) => items.iter_mut().collect(),
        None => vec![&mut value],
    };
    for object in objects {
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    }
    let value = &value;
    match output {
        Output::Json => Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(value).unwrap_or_default()
        )),
        _ => serde_yaml_ng::to_string(value).map_err(|e| AppError::Encode(e.to_string())),
    }
}

/// Who requests the operation (`operation.initiatedBy.username`).
fn user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "argosy".to_owned())
}

/// True while an operation is requested or running (Argo CD refuses a second one).
fn in_progress(app: &Value) -> bool {
    app.get("operation").is_some_and(|o| !o.is_null())
        || OperationPhase::from(format::text(app, "/status/operationState/phase")).running()
}

/// The `operation` of `argosy app sync`: refused while another one is in progress.
pub fn sync_operation(
    app: &Value,
    revision: Option<&str>,
    prune: bool,
    source: Option<&Value>,
    user: &str,
) -> Result<Value, AppError> {
    let name = format::text(app, "/metadata/name");
    if in_progress(app) {
        return Err(AppError::InProgress {
            name: name.to_owned(),
        });
    }
    let mut sync = json!({"prune": prune});
    if let Some(r) = revision.filter(|r| !r.is_empty()) {
        sync["revision"] = json!(r);
    }
    if let Some(s) = source.filter(|s| s.is_object()) {
        sync["source"] = s.clone();
    }
    Ok(json!({"sync": sync, "initiatedBy": {"username": user}}))
}

/// The `operation` of `argosy app rollback`: a sync to history entry `id`'s revision and
/// source (default: the entry before the latest), refused for automated apps (their
/// next automated sync would undo it), as in Argo CD.
pub fn rollback_operation(
    app: &Value,
    id: Option<i64>,
    prune: bool,
    user: &str,
) -> Result<Value, AppError> {
    let name = format::text(app, "/metadata/name");
    if format::is_automated(app) {
        return Err(AppError::AutoSyncEnabled {
            name: name.to_owned(),
        });
    }
    let history: Vec<&Value> = app
        .pointer("/status/history")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let id_of = |h: &Value| h.get("id").and_then(Value::as_i64);
    let entry = match id {
        Some(id) => history.iter().find(|h| id_of(h) == Some(id)),
        None => history.len().checked_sub(2).and_then(|i| history.get(i)),
    };
    let Some(entry) = entry else {
        let ids: Vec<String> = history
            .iter()
            .filter_map(|h| id_of(h))
            .map(|i| i.to_string())
            .collect();
        return Err(AppError::NoHistory {
            name: name.to_owned(),
            wanted: id.map_or("before the latest".to_owned(), |i| format!("with ID {i}")),
            available: if ids.is_empty() {
                "none".to_owned()
            } else {
                ids.join(", ")
            },
        });
    };
    let mut operation = sync_operation(
        app,
        Some(format::text(entry, "/revision")),
        prune,
        entry.get("source"),
        user,
    )?;
    // A multi-source app's entry holds `revisions` and `sources` instead.
    if let (Some(revisions), Some(sources)) = (entry.get("revisions"), entry.get("sources")) {
        operation["sync"]["revisions"] = revisions.clone();
        operation["sync"]["sources"] = sources.clone();
    }
    Ok(operation)
}

/// Where a requested operation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Still requested or running.
    Pending,
    /// Completed: `Succeeded`, `Failed` or `Error`.
    Done { phase: String, message: String },
    /// No longer requested, and the last operation is not this one.
    Gone,
}

/// Where the operation whose `sync` is `requested` stands in `app`. The engine clears
/// `operation` in the same write that records the outcome in `status.operationState`, so
/// once `operation` is gone the state is this operation's, if it matches.
pub fn progress(app: &Value, requested: &Value) -> Progress {
    if app.get("operation").is_some_and(|o| !o.is_null()) {
        return Progress::Pending;
    }
    let state = app.pointer("/status/operationState");
    let ours = state_is(app, requested);
    let phase = state.map(|s| format::text(s, "/phase")).unwrap_or_default();
    match (ours, phase) {
        (true, phase) if OperationPhase::from(phase).completed() => Progress::Done {
            phase: phase.to_owned(),
            message: state
                .map(|s| format::text(s, "/message"))
                .unwrap_or_default()
                .to_owned(),
        },
        (true, _) => Progress::Pending,
        (false, _) => Progress::Gone,
    }
}

/// True when `app`'s `status.operationState` is the operation whose `sync` is `requested`.
///
/// Both are compared whole, in the form Argo CD writes (Go's `omitempty`: `prune: false`
/// and other empty fields left out), which is how the engine records the operation too.
/// Whole, not by containment: a plain `argosy app sync` asks for `{}` in that form, which
/// every earlier operation (an automated sync with its revision, a pruning sync) contains.
fn state_is(app: &Value, requested: &Value) -> bool {
    let written = |sync: &Value| {
        SyncOperation::deserialize(sync)
            .ok()
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or_else(|| sync.clone())
    };
    let requested = written(requested);
    app.pointer("/status/operationState/operation/sync")
        .is_some_and(|sync| written(sync) == requested)
}

/// What a timed-out wait last saw: how far the operation got and the app's conditions.
fn last_seen(app: &Value, requested: &Value) -> String {
    let mut parts = Vec::new();
    if state_is(app, requested) {
        parts.push(format!(
            "operation {}: {}",
            format::text(app, "/status/operationState/phase"),
            format::text(app, "/status/operationState/message")
        ));
    } else {
        parts.push("the sync engine has not started it".to_owned());
    }
    for c in app
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        parts.push(format!(
            "{}: {}",
            format::text(c, "/type"),
            format::text(c, "/message")
        ));
    }
    format!(" ({})", parts.join("; "))
}

/// The Applications of one namespace, read as JSON (an app the typed model would reject
/// still lists and shows).
struct Apps {
    api: Api<DynamicObject>,
    namespace: String,
    projects: Api<AppProject>,
}

impl Apps {
    fn new(client: Client, namespace: &str, project_namespace: &str) -> Self {
        Self {
            api: Api::namespaced_with(
                client.clone(),
                namespace,
                &ApiResource::erase::<Application>(&()),
            ),
            namespace: namespace.to_owned(),
            projects: Api::namespaced(client, project_namespace),
        }
    }

    /// The sync windows of `app`'s project that match it; a missing project has none
    /// (`default` is Argo CD's built-in one; the controller reports any other).
    async fn sync_windows(&self, app: &Value) -> Result<MatchedWindows, AppError> {
        let name = format::text(app, "/metadata/name");
        let project = match format::text(app, "/spec/project") {
            "" => "default",
            p => p,
        };
        let found = self
            .projects
            .get_opt(project)
            .await
            .map_err(|error| AppError::Project {
                name: name.to_owned(),
                project: format!(
                    "{}/{project}",
                    self.projects.namespace().unwrap_or_default()
                ),
                error,
            })?;
        let destination = app
            .pointer("/spec/destination")
            .and_then(|d| ApplicationDestination::deserialize(d).ok())
            .unwrap_or_default();
        Ok(found.map_or_else(MatchedWindows::default, |p| {
            MatchedWindows::of(&p.spec.sync_windows, name, &destination)
        }))
    }

    async fn get(&self, name: &str) -> Result<Value, AppError> {
        match self.api.get_opt(name).await {
            Ok(Some(app)) => Ok(serde_json::to_value(app).unwrap_or_default()),
            Ok(None) => Err(AppError::NotFound {
                name: name.to_owned(),
                namespace: self.namespace.clone(),
            }),
            Err(error) => Err(AppError::Read {
                name: name.to_owned(),
                namespace: self.namespace.clone(),
                error,
            }),
        }
    }

    async fn list(&self, selector: Option<&str>) -> Result<Vec<Value>, AppError> {
        let mut params = ListParams::default();
        if let Some(s) = selector {
            params = params.labels(s);
        }
        let list = self
            .api
            .list(&params)
            .await
            .map_err(|error| AppError::List {
                namespace: self.namespace.clone(),
                error,
            })?;
        let mut apps: Vec<Value> = list
            .items
            .into_iter()
            .filter_map(|a| serde_json::to_value(a).ok())
            .collect();
        apps.sort_by(|a, b| {
            format::text(a, "/metadata/name").cmp(format::text(b, "/metadata/name"))
        });
        Ok(apps)
    }

    /// Sets Argo CD's deletion approval on `name` to now (RFC 3339, seconds): it approves
    /// what waits since before this moment. Returns the time written.
    async fn confirm_deletion(&self, name: &str) -> Result<String, AppError> {
        let at = k8s_openapi::jiff::Timestamp::now()
            .round(k8s_openapi::jiff::Unit::Second)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let body = json!({"metadata": {"annotations": {
            argosy_sync_engine::resource::DELETION_APPROVED_ANNOTATION: at}}});
        let params = PatchParams {
            field_manager: Some("argosy-cli".to_owned()),
            ..PatchParams::default()
        };
        match self.api.patch(name, &params, &Patch::Merge(&body)).await {
            Ok(_) => Ok(at),
            Err(kube::Error::Api(s)) if s.code == 404 => Err(AppError::NotFound {
                name: name.to_owned(),
                namespace: self.namespace.clone(),
            }),
            Err(error) => Err(AppError::ConfirmDeletion {
                name: name.to_owned(),
                error,
            }),
        }
    }

    /// Sets `operation` on `app`, only if the app is unchanged since it was read.
    async fn request(&self, app: &Value, operation: &Value) -> Result<(), AppError> {
        let name = format::text(app, "/metadata/name").to_owned();
        let body = json!({
            "metadata": {"resourceVersion": format::text(app, "/metadata/resourceVersion")},
            "operation": operation,
        });
        let params = PatchParams {
            field_manager: Some("argosy-cli".to_owned()),
            ..PatchParams::default()
        };
        match self.api.patch(&name, &params, &Patch::Merge(&body)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Err(AppError::Conflict { name }),
            Err(kube::Error::Api(s)) if s.code == 404 => Err(AppError::NotFound {
                name,
                namespace: self.namespace.clone(),
            }),
            Err(error) => Err(AppError::Request { name, error }),
        }
    }

    /// Polls the app until the operation `requested` completes; returns the app, the
    /// final phase and its message.
    async fn wait(
        &self,
        name: &str,
        requested: &Value,
        timeout: Duration,
    ) -> Result<(Value, String, String), AppError> {
        let deadline = Instant::now() + timeout;
        loop {
            let app = self.get(name).await?;
            match progress(&app, requested) {
                Progress::Done { phase, message } => return Ok((app, phase, message)),
                Progress::Gone => {
                    return Err(AppError::Cancelled {
                        name: name.to_owned(),
                    });
                }
                Progress::Pending if Instant::now() >= deadline => {
                    return Err(AppError::Timeout {
                        name: name.to_owned(),
                        seconds: timeout.as_secs(),
                        state: last_seen(&app, requested),
                    });
                }
                Progress::Pending => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
}

/// The sync engine's comparison of `app`, made with a one-shot copy of the controller's
/// inputs: cluster Secrets and AppProjects listed once, the same Git cache, renderer,
/// cluster clients and live-object watches.
async fn compare(
    client: Client,
    name: &str,
    app: Value,
    flags: &EngineFlags,
) -> Result<Comparison, AppError> {
    let app: Application = serde_json::from_value(app).map_err(|e| AppError::Decode {
        name: name.to_owned(),
        reason: e.to_string(),
    })?;
    let ns = &flags.controller_namespace;
    let secrets = listed::<Secret>(
        &client,
        ns,
        "cluster Secrets",
        ListParams::default().labels(&format!("{SECRET_TYPE_LABEL}={SECRET_TYPE_CLUSTER}")),
    )
    .await?;
    let projects = listed::<AppProject>(&client, ns, "AppProjects", ListParams::default()).await?;
    let repo_cache = flags
        .repo_cache
        .clone()
        .unwrap_or_else(crate::defaults::default_cache_dir);
    let repos: BTreeMap<String, PathBuf> = flags.repos.iter().cloned().collect();
    let ctx = application::Context::new(application::ContextParts {
        client: client.clone(),
        clusters: ClusterRegistry::new(secrets, StoreReady::already(), ns.clone()),
        projects: ProjectRegistry::new(projects, StoreReady::already(), ns.clone()),
        // On the user's own machine, with the user's own network identity.
        repos: Arc::new(
            GitRepos::new(repos, repo_cache.clone()).with_url_policy(UrlPolicy::permissive()),
        ),
        charts: Arc::new(
            ChartRepos::new(repo_cache.join("charts")).with_remote(RemoteSettings {
                url_policy: UrlPolicy::permissive(),
                ..RemoteSettings::default()
            }),
        ),
        renderer: Arc::new(Renderer::new(repo_cache.join("render"), Limits::default())),
        clients: Arc::new(ClusterClients::new(
            client.clone(),
            flags.allow_exec_plugins,
        )),
        // Nothing to re-trigger: one comparison and then the process ends.
        live: Arc::new(LiveCache::new(
            Arc::new(|_: &str| {}),
            Duration::from_secs(30),
        )),
        events: EventPublisher::new(client, "argosy-cli", user()),
        leader: None,
        config: application::Config {
            controller_namespace: ns.clone(),
            application_namespaces: argosy_crds::project::NamespacePatterns::default(),
            resync: Duration::from_secs(180),
            concurrency: 1,
            health: crate::health_checks::HealthCheckRegistry::default(),
        },
    });
    application::compare_app(&app, &ctx)
        .await
        .map_err(|reason| AppError::Compare {
            name: name.to_owned(),
            reason,
        })
}

/// A reflector store holding one list of `K` (what the controller's watch would hold).
async fn listed<K>(
    client: &Client,
    namespace: &str,
    what: &'static str,
    params: ListParams,
) -> Result<Store<K>, AppError>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&params)
        .await
        .map_err(|error| AppError::ListRegistry {
            what,
            namespace: namespace.to_owned(),
            error,
        })?;
    let (store, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for item in list.items {
        writer.apply_watcher_event(&watcher::Event::InitApply(item));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(extra: Value) -> Value {
        let mut app = json!({
            "metadata": {"name": "shop", "namespace": "argocd", "resourceVersion": "5"},
            "spec": {"source": {"repoURL": "r", "path": "p", "targetRevision": "main"}},
            "status": {"history": [
                {"id": 3, "revision": "aaa", "source": {"repoURL": "r", "path": "p", "targetRevision": "v1"}},
                {"id": 4, "revision": "bbb", "source": {"repoURL": "r", "path": "p", "targetRevision": "main"}},
            ]},
        });
        if let (Some(a), Value::Object(e)) = (app.as_object_mut(), extra) {
            for (k, v) in e {
                if k == "status" {
                    for (sk, sv) in v.as_object().unwrap() {
                        a["status"][sk] = sv.clone();
                    }
                } else {
                    a.insert(k, v);
                }
            }
        }
        app
    }

    #[test]
    fn rollback_of_a_multi_source_app_names_its_revisions_and_sources() {
        let app = json!({"metadata": {"name": "shop"}, "spec": {}, "status": {"history": [
            {"id": 1, "revisions": ["aaa", "bbb"], "sources": [{"repoURL": "r", "path": "a"}, {"repoURL": "r", "ref": "values"}]},
            {"id": 2, "revisions": ["ccc", "ddd"], "sources": [{"repoURL": "r", "path": "a"}, {"repoURL": "r", "ref": "values"}]}]}});
        let op = rollback_operation(&app, None, false, "ana").unwrap();
        assert_eq!(op["sync"]["revisions"], json!(["aaa", "bbb"]));
        assert_eq!(op["sync"]["sources"][1]["ref"], "values");
        assert!(op["sync"].get("revision").is_none() && op["sync"].get("source").is_none());
    }

    #[test]
    fn sync_sets_revision_and_prune_and_who() {
        let op = sync_operation(&app(json!({})), Some("v2"), true, None, "ana").unwrap();
        assert_eq!(
            op,
            json!({"sync": {"revision": "v2", "prune": true}, "initiatedBy": {"username": "ana"}})
        );
        let op = sync_operation(&app(json!({})), None, false, None, "ana").unwrap();
        assert_eq!(op["sync"], json!({"prune": false}));
    }

    #[test]
    fn sync_is_refused_while_an_operation_is_requested_or_running() {
        let requested = app(json!({"operation": {"sync": {}}}));
        assert!(matches!(
            sync_operation(&requested, None, false, None, "u"),
            Err(AppError::InProgress { .. })
        ));
        let running = app(json!({"status": {"operationState": {"phase": "Running"}}}));
        let err = sync_operation(&running, None, false, None, "u").unwrap_err();
        assert_eq!(
            err.to_string(),
            "another operation is already in progress on application shop"
        );
        let done =
            app(json!({"operation": null, "status": {"operationState": {"phase": "Failed"}}}));
        assert!(sync_operation(&done, None, false, None, "u").is_ok());
    }

    #[test]
    fn rollback_uses_the_entry_revision_and_source() {
        let op = rollback_operation(&app(json!({})), Some(3), true, "u").unwrap();
        assert_eq!(
            op["sync"],
            json!({"revision": "aaa", "prune": true,
                   "source": {"repoURL": "r", "path": "p", "targetRevision": "v1"}})
        );
        // No ID: the entry before the latest.
        let op = rollback_operation(&app(json!({})), None, false, "u").unwrap();
        assert_eq!(op["sync"]["revision"], "aaa");
    }

    #[test]
    fn rollback_names_the_available_ids_and_refuses_automated_apps() {
        let err = rollback_operation(&app(json!({})), Some(9), false, "u").unwrap_err();
        assert_eq!(
            err.to_string(),
            "application shop has no history entry with ID 9 (history IDs: 3, 4)"
        );
        let mut empty = app(json!({}));
        empty["status"]["history"] = json!([]);
        let err = rollback_operation(&empty, None, false, "u").unwrap_err();
        assert_eq!(
            err.to_string(),
            "application shop has no history entry before the latest (history IDs: none)"
        );
        let mut auto = app(json!({}));
        auto["spec"]["syncPolicy"] = json!({"automated": {"selfHeal": true}});
        let err = rollback_operation(&auto, Some(3), false, "u").unwrap_err();
        assert_eq!(
            err.to_string(),
            "application shop: rollback cannot be initiated when auto-sync is enabled"
        );
        // Disabled automation is manual.
        auto["spec"]["syncPolicy"]["automated"]["enabled"] = json!(false);
        assert!(rollback_operation(&auto, Some(3), false, "u").is_ok());
    }

    #[test]
    fn progress_follows_the_operation_field_and_matches_the_state() {
        let requested = json!({"revision": "v2", "prune": false});
        let pending = app(json!({"operation": {"sync": requested},
            "status": {"operationState": {"phase": "Succeeded", "operation": {"sync": {"prune": false}}}}}));
        assert_eq!(progress(&pending, &requested), Progress::Pending);
        let done = app(json!({"status": {"operationState": {
            "phase": "Failed", "message": "boom",
            "operation": {"sync": {"revision": "v2", "prune": false}, "initiatedBy": {"username": "u"}}}}}));
        assert_eq!(
            progress(&done, &requested),
            Progress::Done {
                phase: "Failed".into(),
                message: "boom".into()
            }
        );
        // Recorded as Argo CD (and the engine) write it: `prune: false` left out.
        let omitted = app(json!({"status": {"operationState": {
            "phase": "Succeeded", "operation": {"sync": {"revision": "v2"}}}}}));
        assert!(matches!(
            progress(&omitted, &requested),
            Progress::Done { .. }
        ));
        // Cleared, but the last operation is another one: ours was removed.
        let other = app(json!({"status": {"operationState": {
            "phase": "Succeeded", "operation": {"sync": {"revision": "v1", "prune": false}}}}}));
        assert_eq!(progress(&other, &requested), Progress::Gone);
        // A plain sync (`{}` as written) is not an earlier automated sync of some revision.
        let plain = json!({"prune": false});
        let automated = app(json!({"status": {"operationState": {
            "phase": "Succeeded", "operation": {"sync": {"revision": "abc123", "prune": true}}}}}));
        assert_eq!(progress(&automated, &plain), Progress::Gone);
    }

    #[test]
    fn encoded_apps_leave_out_managed_fields() {
        let mut one = app(json!({}));
        one["metadata"]["managedFields"] = json!([{"manager": "argosy"}]);
        let yaml = encode(&one, Output::Yaml).unwrap();
        assert!(yaml.contains("resourceVersion: '5'") && !yaml.contains("managedFields"));
        let list = json!({"kind": "List", "items": [one]});
        let json_text = encode(&list, Output::Json).unwrap();
        let parsed: Value = serde_json::from_str(&json_text).unwrap();
        assert_eq!(parsed["items"][0]["metadata"]["name"], "shop");
        assert!(
            parsed["items"][0]["metadata"]
                .get("managedFields")
                .is_none()
        );
    }

    #[test]
    fn a_timeout_tells_what_it_last_saw() {
        let requested = json!({"prune": false});
        let stuck = app(json!({"status": {
            "operationState": {"phase": "Running", "message": "waiting for Job/migrate",
                               "operation": {"sync": {"prune": false}}},
            "conditions": [{"type": "SyncError", "message": "Job/migrate failed once"}]}}));
        assert_eq!(
            last_seen(&stuck, &requested),
            " (operation Running: waiting for Job/migrate; SyncError: Job/migrate failed once)"
        );
        // An earlier operation's state is not this one's.
        assert_eq!(
            last_seen(&stuck, &json!({"revision": "v9"})),
            " (the sync engine has not started it; SyncError: Job/migrate failed once)"
        );
    }
}
