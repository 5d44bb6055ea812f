//! `argosy run`: the controller process.
//!
//! Builds one shared reflector per watched kind (ApplicationSets via the controller;
//! Applications, cluster Secrets and AppProjects via explicit reflectors whose streams
//! also trigger reconciles), elects a leader with a `coordination.k8s.io` Lease, and
//! shuts down gracefully on SIGTERM/SIGINT: in-flight reconciles finish, then the Lease
//! is released. (kube-lease-manager followers poll rather than watch the Lease, so a
//! follower takes over at its next attempt, within about one lease duration, not at once.)

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::events::EventPublisher;
use anyhow::Context as _;
use argosy_crds::consts::{SECRET_TYPE_CLUSTER, SECRET_TYPE_LABEL};
use argosy_crds::{AppProject, Application, ApplicationSet};
use argosy_generators::pipeline::PipelineOptions;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Controller;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};

use crate::appset::plan::{ApplicationsSync, DeletionBudget};
use crate::appset::triggers::SecretTrigger;
use crate::appset::{self, Context};
use crate::registry::{ClusterRegistry, ProjectRegistry};
use crate::repo::GitRepos;

/// Which component syncs Applications to clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncEngine {
    /// Argosy's built-in engine.
    Argosy,
    /// An existing Argo CD application controller; Argosy only manages ApplicationSets.
    Argocd,
}

/// Settings of `argosy run`.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub namespace: String,
    pub appset_namespaces: Vec<String>,
    pub sync_engine: SyncEngine,
    pub leader_election: bool,
    pub lease_name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub budget: DeletionBudget,
    pub policy: Option<ApplicationsSync>,
    pub concurrent_writes: usize,
    pub git_requeue: Duration,
    pub repo_cache: PathBuf,
    /// Repository URLs served from local repositories (mirrors, demos, tests).
    pub repos: std::collections::BTreeMap<String, PathBuf>,
}

/// The User-Agent of every request (the audit log tells Argosy's writes apart by it).
pub const USER_AGENT: &str = concat!("argosy/", env!("CARGO_PKG_VERSION"));

/// A client from the kubeconfig / in-cluster environment, identifying itself as Argosy.
pub async fn client() -> anyhow::Result<Client> {
    let mut config = kube::Config::infer()
        .await
        .context("loading kubeconfig or in-cluster config")?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    Client::try_from(config).context("building the Kubernetes client")
}

/// Runs the controller until SIGTERM/SIGINT.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    run_with(client().await?, args, shutdown_signal()).await
}

/// Runs the controller with `client` until `shutdown` completes; then in-flight
/// reconciles finish and the Lease is released.
pub async fn run_with(
    client: Client,
    args: RunArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    if args.sync_engine == SyncEngine::Argosy {
        tracing::warn!(
            "the built-in sync engine is not part of this build yet: Applications are created but not synced (use --sync-engine=argocd with an Argo CD application controller)"
        );
    }
    let appset_namespaces: BTreeSet<String> = if args.appset_namespaces.is_empty() {
        BTreeSet::from([args.namespace.clone()])
    } else {
        args.appset_namespaces.iter().cloned().collect()
    };

    let (leader, lease_task) = leader_channel(&client, &args).await?;

    let secrets_api: Api<Secret> = Api::namespaced(client.clone(), &args.namespace);
    let (secrets, secrets_writer) = reflector::store();
    let secret_events = reflector(
        secrets_writer,
        watcher(
            secrets_api,
            watcher::Config::default()
                .labels(&format!("{SECRET_TYPE_LABEL}={SECRET_TYPE_CLUSTER}")),
        ),
    )
    .default_backoff()
    .touched_objects();

    let projects_api: Api<AppProject> = Api::namespaced(client.clone(), &args.namespace);
    let (projects, projects_writer) = reflector::store();
    let project_events = reflector(
        projects_writer,
        watcher(projects_api, watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();

    let (apps_api, appsets_api): (Api<Application>, Api<ApplicationSet>) =
        match single(&appset_namespaces) {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
    let (applications, apps_writer) = reflector::store();
    let app_events = reflector(apps_writer, watcher(apps_api, watcher::Config::default()))
        .default_backoff()
        .touched_objects();

    let ctx = Arc::new(Context::new(
        client.clone(),
        ClusterRegistry::new(secrets.clone(), args.namespace.clone()),
        ProjectRegistry::new(projects.clone(), args.namespace.clone()),
        applications.clone(),
        Arc::new(GitRepos::new(args.repos.clone(), args.repo_cache.clone())),
        EventPublisher::new(
            client.clone(),
            "argosy-applicationset-controller",
            args.identity.clone(),
        ),
        leader.clone(),
        appset::Config {
            controller_namespace: args.namespace.clone(),
            appset_namespaces,
            budget: args.budget,
            policy_override: args.policy,
            pipeline: PipelineOptions {
                default_git_requeue: args.git_requeue,
                keep_params: false,
            },
            concurrent_writes: args.concurrent_writes,
        },
    ));

    let controller = Controller::new(appsets_api, watcher::Config::default());
    let appset_store = controller.store();
    let trigger = Arc::new(SecretTrigger::default());
    let became_leader = leadership_gained(leader.clone());
    let all_appsets = appset_store.clone();
    let project_store = appset_store.clone();

    let run = controller
        .owns_stream(app_events)
        .watches_stream(secret_events, move |secret| {
            trigger.map(&secret, &all_appsets.state())
        })
        .watches_stream(project_events, move |_project: AppProject| {
            // A new or changed project can fix (or break) any ApplicationSet of the namespace.
            project_store
                .state()
                .iter()
                .map(|a| kube::runtime::reflector::ObjectRef::from_obj(a.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_all_on(became_leader)
        .graceful_shutdown_on(shutdown)
        .run(appset::reconcile, appset::error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        });
    tracing::info!(identity = %args.identity, "argosy controller starting");
    run.await;
    drop(leader);
    drop(ctx);
    if let Some(task) = lease_task {
        // Dropping every receiver makes the lease task release the Lease and exit.
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => tracing::info!("lease released"),
            other => tracing::warn!(?other, "lease release did not complete"),
        }
    }
    Ok(())
}

fn single(set: &BTreeSet<String>) -> Option<&String> {
    (set.len() == 1).then(|| set.iter().next()).flatten()
}

type LeaseTask = tokio::task::JoinHandle<
    Result<kube_lease_manager::LeaseManager, kube_lease_manager::LeaseManagerError>,
>;

/// A channel that is `true` while this replica leads; `None` without leader election
/// (a single replica that always writes).
async fn leader_channel(
    client: &Client,
    args: &RunArgs,
) -> anyhow::Result<(
    Option<tokio::sync::watch::Receiver<bool>>,
    Option<LeaseTask>,
)> {
    if !args.leader_election {
        return Ok((None, None));
    }
    let seconds = args.lease_duration.as_secs().max(2);
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.lease_name)
        .with_namespace(&args.namespace)
        .with_identity(&args.identity)
        .with_duration(seconds)
        .with_grace((seconds / 3).max(1))
        .build()
        .await
        .context("setting up leader election")?;
    let (rx, task) = manager.watch().await;
    Ok((Some(rx), Some(task)))
}

/// Yields `()` each time this replica becomes the leader (never without election).
fn leadership_gained(
    rx: Option<tokio::sync::watch::Receiver<bool>>,
) -> impl futures::Stream<Item = ()> + Send {
    futures::stream::unfold(rx, |rx| async move {
        let mut rx = rx?;
        loop {
            if rx.changed().await.is_err() {
                return None;
            }
            if *rx.borrow_and_update() {
                tracing::info!("became leader");
                return Some(((), Some(rx)));
            }
            tracing::info!("lost leadership");
        }
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
    tracing::info!("shutting down: finishing in-flight reconciles");
}
