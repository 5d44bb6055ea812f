//! The ApplicationSet controller's shared state, settings and errors: what every step of a
//! reconcile (generate, plan, write, status) reads, kept apart from the steps so they
//! depend on it and not on each other.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use argosy_crds::{Application, ApplicationSet};
use argosy_generators::pipeline::{Generated, PipelineOptions, generate_applications};
use argosy_generators::source::{RepoError, RepoSnapshot, RepoSource, Sources};
use argosy_sync_engine::echo::{Echoes, version_of};
use argosy_sync_engine::repo::GitRepos;
use kube::Client;
use kube::runtime::reflector::{ObjectRef, Store};

use super::plan::{ApplicationsSync, DeletionBudget};
use crate::registry::{ClusterRegistry, ProjectRegistry, StoreReady};

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

/// What a [`Context`] is made of (the process wires these up once).
pub struct ContextParts {
    /// The management cluster's client (fenced: every write passes the fence).
    pub client: Client,
    /// Cluster Secrets, as the generators see them.
    pub clusters: ClusterRegistry,
    /// AppProjects, as the generators see them.
    pub projects: ProjectRegistry,
    /// The Application store (shared with the sync engine).
    pub applications: Store<Application>,
    /// The Application store's initial list.
    pub applications_ready: StoreReady,
    /// The repository cache (shared with the sync engine).
    pub repos: Arc<GitRepos>,
    /// Where Events go.
    pub events: crate::events::EventPublisher,
    /// `true` while this replica holds the Lease; `None`: no leader election.
    pub leader: Option<tokio::sync::watch::Receiver<bool>>,
    /// The controller's settings.
    pub config: Config,
    /// Where rollout transitions are counted.
    pub metrics: crate::metrics::Metrics,
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
    pub metrics: crate::metrics::Metrics,
    /// Where rollout transitions are notified (disabled until [`Self::with_notifier`]).
    pub notifier: crate::notify::Notifier,
    /// Consecutive failures per ApplicationSet, for backoff.
    failures: Mutex<HashMap<ObjectRef<ApplicationSet>, u32>>,
    /// Consecutive contained panics per ApplicationSet ([`crate::contain`]).
    pub(super) panics: crate::contain::PanicBackoff,
    /// The controller's own metadata writes to ApplicationSets (the removal of a refresh
    /// request) under way or awaiting their watch event, whose echo triggers no reconcile.
    own_writes: Mutex<Echoes<ObjectRef<ApplicationSet>>>,
}

impl Context {
    /// The context of the controller over `parts`.
    pub fn new(parts: ContextParts) -> Self {
        let ContextParts {
            client,
            clusters,
            projects,
            applications,
            applications_ready,
            repos,
            events,
            leader,
            config,
            metrics,
        } = parts;
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
            metrics,
            notifier: crate::notify::Notifier::disabled(),
            failures: Mutex::default(),
            panics: crate::contain::PanicBackoff::default(),
            own_writes: Mutex::default(),
        }
    }

    /// Notifies rollout transitions through `notifier`.
    #[must_use]
    pub fn with_notifier(mut self, notifier: crate::notify::Notifier) -> Self {
        self.notifier = notifier;
        self
    }

    /// What `appset` generates now, from this context's clusters, repositories and
    /// projects (blocking: Git reads and template rendering; call it off the async threads).
    /// The reconcile and the dashboard's preview both generate through here.
    pub fn generate(
        &self,
        appset: &ApplicationSet,
    ) -> Result<Generated, argosy_generators::pipeline::GenerateError> {
        self.generate_from(appset, &self.repos.for_project(&template_project(appset)))
    }

    /// [`Self::generate`] for a refresh request: every repository the generation reads
    /// (at any depth, whatever a template made of its URL) is checked against its remote
    /// first, whatever the refresh interval.
    pub(super) fn generate_refreshed(
        &self,
        appset: &ApplicationSet,
    ) -> Result<Generated, argosy_generators::pipeline::GenerateError> {
        let refreshing = Refreshing {
            repos: &self.repos,
            project: template_project(appset),
            refreshed: Mutex::default(),
        };
        self.generate_from(appset, &refreshing)
    }

    fn generate_from(
        &self,
        appset: &ApplicationSet,
        repos: &dyn RepoSource,
    ) -> Result<Generated, argosy_generators::pipeline::GenerateError> {
        let sources = Sources {
            clusters: &self.clusters,
            repos,
            projects: &self.projects,
        };
        generate_applications(appset, sources, &self.config.pipeline)
    }

    /// Whether an ApplicationSet watch event should trigger a reconcile: not the echo of
    /// this controller's own metadata write (see [`argosy_sync_engine::echo`]).
    pub fn triggers_reconcile(&self, appset: &ApplicationSet) -> bool {
        let version = version_of(appset.metadata.resource_version.as_deref());
        lock(&self.own_writes).event(&ObjectRef::from_obj(appset), version)
    }

    /// `appset` is about to be written by this controller: hold back its events.
    pub(super) fn writing(&self, appset: &ApplicationSet) {
        lock(&self.own_writes).writing(ObjectRef::from_obj(appset));
    }

    /// The write of `appset` returned `version` (`None`: it failed). True when an event
    /// held back meanwhile was somebody else's change, which must be reconciled now.
    pub(super) fn written(&self, appset: &ApplicationSet, version: Option<u64>) -> bool {
        lock(&self.own_writes).written(ObjectRef::from_obj(appset), version)
    }

    pub(super) fn is_leader(&self) -> bool {
        self.leader.as_ref().is_none_or(|rx| *rx.borrow())
    }

    /// Waits until every cache has its initial list. Generating from a half-synced Secret
    /// store would look like "no clusters" and plan deletions.
    pub(super) async fn caches_ready(&self) -> Result<(), Error> {
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
    pub(super) fn backoff(&self, key: ObjectRef<ApplicationSet>, steps: &[u64]) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        let idx = usize::try_from(*n - 1)
            .unwrap_or(usize::MAX)
            .min(steps.len() - 1);
        Duration::from_secs(steps[idx])
    }

    pub(super) fn reset_backoff(&self, key: &ObjectRef<ApplicationSet>) {
        lock(&self.failures).remove(key);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The repository cache, asking each repository for a check against its remote at its
/// first read (see [`Context::generate_refreshed`]).
struct Refreshing<'a> {
    repos: &'a GitRepos,
    /// The project whose credentials the generators read with.
    project: String,
    /// The URLs refreshed so far: one check per repository and generation.
    refreshed: Mutex<HashSet<String>>,
}

impl RepoSource for Refreshing<'_> {
    fn snapshot(&self, repo_url: &str, revision: &str) -> Result<Arc<dyn RepoSnapshot>, RepoError> {
        if lock(&self.refreshed).insert(repo_url.to_owned()) {
            self.repos.refresh(repo_url);
        }
        self.repos
            .for_project(&self.project)
            .snapshot(repo_url, revision)
    }
}

/// The project an ApplicationSet's template names: its Git generators read with that
/// project's credentials (a templated project matches no project-scoped Secret, so it gets
/// only the shared ones).
pub(crate) fn template_project(appset: &ApplicationSet) -> String {
    appset
        .spec
        .template
        .spec
        .get("project")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned()
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
    #[error("removing the refresh request of the ApplicationSet: {0}")]
    RemoveRefreshRequest(#[source] kube::Error),
    #[error("starting the rollout's sync of Application {name}: {source}")]
    StartRolloutSync {
        name: String,
        #[source]
        source: kube::Error,
    },
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
            Error::RemoveRefreshRequest(_) => "RefreshApplicationError",
            Error::StartRolloutSync { .. } => "RolloutSyncError",
        }
    }
}
