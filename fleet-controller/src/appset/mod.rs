//! The ApplicationSet controller.
//!
//! `reconcile` is thin: generate (pure, on a blocking thread) → plan (pure) → write
//! (leader only) → status → requeue. A generation error writes nothing but the status
//! condition and an Event, and never deletes: the safety rules live in [`plan`].
//! User errors (bad template, unknown generator) requeue slowly; API errors go through
//! [`error_policy`] with per-object exponential backoff, so nothing loops hot.

pub mod plan;
pub mod status;
pub mod triggers;
mod writer;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argosy_crds::{Application, ApplicationSet};
use argosy_generators::pipeline::{Generated, PipelineOptions, generate_applications};
use argosy_generators::source::Sources;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use tracing::Instrument as _;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::registry::{ClusterRegistry, ProjectRegistry, StoreReady};
use argosy_sync_engine::repo::GitRepos;
use plan::{ApplicationsSync, DeletionBudget, IgnoredFields, PlanPolicy, owner_reference};
use status::{APPROVE_DELETIONS_ANNOTATION, DELETION_BUDGET_ANNOTATION, Outcome};

/// Requeue after a user error (bad spec, unreachable repo): slow, like Argo CD's 3 minutes,
/// but starting sooner so a fixed typo is picked up quickly.
const USER_ERROR_REQUEUE: [u64; 4] = [10, 30, 90, 180];

/// Controller settings (from `argosy run` flags).
#[derive(Debug, Clone)]
pub struct Config {
    /// Namespace of cluster Secrets and AppProjects (Argo CD's namespace).
    pub controller_namespace: String,
    /// Namespaces whose ApplicationSets are reconciled.
    pub appset_namespaces: BTreeSet<String>,
    pub budget: DeletionBudget,
    /// Forces one `applicationsSync` policy for every ApplicationSet (Argo CD's `--policy`).
    pub policy_override: Option<ApplicationsSync>,
    pub pipeline: PipelineOptions,
    /// Concurrent Application writes per reconcile.
    pub concurrent_writes: usize,
}

/// Shared state of all reconciles.
pub struct Context {
    pub client: Client,
    pub clusters: ClusterRegistry,
    pub projects: ProjectRegistry,
    pub applications: Store<Application>,
    /// The Application store's initial list (see [`crate::registry::StoreReady`]).
    applications_ready: StoreReady,
    pub repos: Arc<GitRepos>,
    pub events: crate::events::EventPublisher,
    /// `true` while this replica holds the Lease; only then does it write. `None`:
    /// no leader election, always write.
    pub leader: Option<tokio::sync::watch::Receiver<bool>>,
    pub config: Config,
    /// Consecutive failures per ApplicationSet, for backoff.
    failures: Mutex<HashMap<ObjectRef<ApplicationSet>, u32>>,
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        clusters: ClusterRegistry,
        projects: ProjectRegistry,
        applications: Store<Application>,
        applications_ready: StoreReady,
        repos: Arc<GitRepos>,
        events: crate::events::EventPublisher,
        leader: Option<tokio::sync::watch::Receiver<bool>>,
        config: Config,
    ) -> Self {
        Self {
            client,
            clusters,
            projects,
            applications,
            applications_ready,
            repos,
            events,
            leader,
            config,
            failures: Mutex::default(),
        }
    }

    fn is_leader(&self) -> bool {
        self.leader.as_ref().is_none_or(|rx| *rx.borrow())
    }

    /// Waits until every cache has its initial list. Generating from a half-synced Secret
    /// store would look like "no clusters" and plan deletions.
    async fn caches_ready(&self) -> Result<(), Error> {
        let ready = async {
            self.clusters.ready().await
                && self.projects.ready().await
                && self.applications_ready.wait().await
        };
        match tokio::time::timeout(Duration::from_secs(60), ready).await {
            Ok(true) => Ok(()),
            _ => Err(Error::CacheNotReady(
                "cluster Secret, AppProject and Application",
            )),
        }
    }

    /// Counts a failure and returns the backoff for this one.
    fn backoff(&self, key: ObjectRef<ApplicationSet>, steps: &[u64]) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        let idx = usize::try_from(*n - 1)
            .unwrap_or(usize::MAX)
            .min(steps.len() - 1);
        Duration::from_secs(steps[idx])
    }

    fn reset_backoff(&self, key: &ObjectRef<ApplicationSet>) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// A reconcile step that failed talking to the API server (user errors are not errors
/// here: they become conditions).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ApplicationSet has no {0}")]
    MissingMetadata(&'static str),
    #[error("waiting for the {0} cache to sync")]
    CacheNotReady(&'static str),
    #[error("generation task: {0}")]
    GenerationTask(#[source] tokio::task::JoinError),
    #[error("applying Application {name}: {source}")]
    ApplyApplication {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting Application {name}: {source}")]
    DeleteApplication {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("patching ApplicationSet: {0}")]
    PatchApplicationSet(#[source] kube::Error),
    #[error("patching ApplicationSet status: {0}")]
    PatchStatus(#[source] kube::Error),
}

impl Error {
    /// A static category for metrics labels and Event reasons.
    pub fn category(&self) -> &'static str {
        match self {
            Error::MissingMetadata(_) => "InvalidObject",
            Error::CacheNotReady(_) => "CacheNotReady",
            Error::GenerationTask(_) => "InternalError",
            Error::ApplyApplication { .. } => "UpdateApplicationError",
            Error::DeleteApplication { .. } => "DeleteApplicationError",
            Error::PatchApplicationSet(_) => "PatchApplicationSetError",
            Error::PatchStatus(_) => "PatchStatusError",
        }
    }
}

/// Reconciles one ApplicationSet.
pub async fn reconcile(appset: Arc<ApplicationSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    // Every log line of this reconcile (generate, plan, write) carries the ApplicationSet.
    let span = tracing::info_span!("reconcile", appset = %ObjectRef::from_obj(appset.as_ref()));
    reconcile_appset(appset, ctx).instrument(span).await
}

async fn reconcile_appset(appset: Arc<ApplicationSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = appset
        .metadata
        .namespace
        .clone()
        .ok_or(Error::MissingMetadata("namespace"))?;
    let name = appset
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingMetadata("name"))?;
    let uid = appset
        .metadata
        .uid
        .clone()
        .ok_or(Error::MissingMetadata("uid"))?;
    let started = std::time::Instant::now();
    if !ctx.config.appset_namespaces.contains(&namespace) {
        return Ok(Action::await_change());
    }
    ctx.caches_ready().await?;
    let key = ObjectRef::from_obj(appset.as_ref());
    let owner = owner_reference(&name, &uid);
    let live: Vec<Arc<Application>> = ctx
        .applications
        .state()
        .into_iter()
        .filter(|a| a.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .collect();
    let owned: Vec<&Application> = live
        .iter()
        .map(AsRef::as_ref)
        .filter(|a| plan::is_owned_by(a, &owner))
        .collect();

    if appset.metadata.deletion_timestamp.is_some() {
        return writer::finalize(&appset, &owned, &ctx).await;
    }

    let generated = {
        let (appset, ctx) = (appset.clone(), ctx.clone());
        // A span does not follow work onto another thread by itself.
        let span = tracing::info_span!("generate");
        tokio::task::spawn_blocking(move || {
            let _in_span = span.enter();
            let sources = Sources {
                clusters: &ctx.clusters,
                repos: ctx.repos.as_ref(),
                projects: &ctx.projects,
            };
            generate_applications(&appset, sources, &ctx.config.pipeline)
        })
        .await
        .map_err(Error::GenerationTask)?
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());

    let mut generated: Generated = match generated {
        Ok(g) => g,
        Err(e) => {
            let message = e.to_string();
            tracing::warn!(appset = %key, error = %message, "generation failed; nothing is created, updated or deleted");
            let outcome = Outcome::GenerationFailed {
                reason: generation_reason(e.category()),
                message: &message,
            };
            let new_status = status::compute(appset.status.as_ref(), &outcome, &owned, &now);
            if ctx.is_leader() {
                writer::publish_status(&appset, new_status, &ctx).await?;
            }
            return Ok(Action::requeue(ctx.backoff(key, &USER_ERROR_REQUEUE)));
        }
    };

    let annotations = appset.metadata.annotations.clone().unwrap_or_default();
    let sync_policy = appset.spec.sync_policy.as_ref();
    let sync = match ctx.config.policy_override {
        Some(p) => Ok(p),
        None => ApplicationsSync::parse(sync_policy.and_then(|p| p.applications_sync.as_deref())),
    };
    let budget = annotations
        .get(DELETION_BUDGET_ANNOTATION)
        .map(|v| {
            DeletionBudget::parse(v)
                .map_err(|e| format!("annotation {DELETION_BUDGET_ANNOTATION}: {e}"))
        })
        .transpose();
    let ignored = IgnoredFields::compile(&appset.spec.ignore_application_differences);
    let (sync, budget, ignored) = match (sync, budget, ignored) {
        (Ok(s), Ok(b), Ok(i)) => (s, b.unwrap_or(ctx.config.budget), i),
        (Err(message), _, _) | (_, Err(message), _) | (_, _, Err(message)) => {
            let outcome = Outcome::GenerationFailed {
                reason: "InvalidSpec",
                message: &message,
            };
            let new_status = status::compute(appset.status.as_ref(), &outcome, &owned, &now);
            if ctx.is_leader() {
                writer::publish_status(&appset, new_status, &ctx).await?;
            }
            return Ok(Action::requeue(ctx.backoff(key, &USER_ERROR_REQUEUE)));
        }
    };
    let preserved = appset.spec.preserved_fields.clone().unwrap_or_default();
    let preserved_labels: BTreeSet<String> = preserved.labels.into_iter().collect();
    let preserved_annotations: BTreeSet<String> = preserved
        .annotations
        .into_iter()
        .chain(
            argosy_crds::consts::ALWAYS_PRESERVED_ANNOTATIONS
                .iter()
                .map(|s| (*s).to_owned()),
        )
        .collect();
    let policy = PlanPolicy {
        owner,
        sync,
        budget,
        deletions_approved: annotations
            .get(APPROVE_DELETIONS_ANNOTATION)
            .map(String::as_str)
            == Some("true"),
        preserved_labels: &preserved_labels,
        preserved_annotations: &preserved_annotations,
        ignored: &ignored,
    };
    let keep: BTreeSet<String> = generated.invalid_app_names.iter().cloned().collect();
    let desired: Vec<Application> = std::mem::take(&mut generated.applications)
        .into_iter()
        .map(|g| g.application)
        .collect();
    let the_plan =
        tracing::info_span!("plan").in_scope(|| plan::plan(desired, &keep, &live, &policy));

    if !ctx.is_leader() {
        // Followers keep their caches warm; the new leader reconciles everything.
        return Ok(Action::await_change());
    }
    let write_error = writer::execute(&appset, &the_plan, &live, &ctx)
        .instrument(tracing::info_span!("write"))
        .await;
    let validation_errors: Vec<String> = generated
        .validation_errors
        .iter()
        .map(|e| e.message.clone())
        .chain(
            the_plan
                .conflicts
                .iter()
                .map(|(n, o)| format!("Application {n} already exists and is owned by {o}")),
        )
        .collect();
    let write_error_text = write_error.as_ref().map(ToString::to_string);
    let outcome = Outcome::Planned {
        validation_errors: &validation_errors,
        write_error: write_error_text.as_deref(),
        held: &the_plan.held,
        held_limit: the_plan.held_limit,
    };
    let new_status = status::compute(appset.status.as_ref(), &outcome, &owned, &now);
    writer::publish_status(&appset, new_status, &ctx).await?;
    if policy.deletions_approved && !the_plan.delete.is_empty() {
        writer::clear_approval(&appset, &ctx).await?;
    }
    if let Some(e) = write_error {
        return Err(e);
    }
    ctx.reset_backoff(&key);
    tracing::info!(
        appset = %key,
        elapsed_ms = started.elapsed().as_millis() as u64,
        created = the_plan.create.len(),
        updated = the_plan.update.len(),
        deleted = the_plan.delete.len(),
        held = the_plan.held.len(),
        unchanged = the_plan.unchanged,
        "reconciled"
    );
    Ok(match generated.requeue_after {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// Argo CD's condition reasons for generation failures.
fn generation_reason(category: &str) -> &'static str {
    match category {
        "RenderError" => "RenderTemplateParamsError",
        _ => "ApplicationGenerationFromParamsError",
    }
}

/// Backoff for API errors: 5 s doubling to 5 minutes, per ApplicationSet.
pub fn error_policy(appset: Arc<ApplicationSet>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(appset = %ObjectRef::from_obj(appset.as_ref()), category = error.category(), %error, "reconcile failed");
    Action::requeue(ctx.backoff(
        ObjectRef::from_obj(appset.as_ref()),
        &[5, 10, 20, 40, 80, 160, 300],
    ))
}
