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
use crate::fanout::Fanout;
use anyhow::Context as _;
use argosy_crds::consts::{SECRET_TYPE_CLUSTER, SECRET_TYPE_LABEL};
use argosy_crds::project::NamespacePatterns;
use argosy_crds::repository::{SECRET_TYPE_REPO_CREDS, SECRET_TYPE_REPOSITORY};
use argosy_crds::{AppProject, Application, ApplicationSet};
use argosy_generators::pipeline::PipelineOptions;
use argosy_sync_engine::url_policy::UrlPolicy;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::controller::Controller;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};

use crate::application;
use crate::appset::plan::{ApplicationsSync, DeletionBudget};
use crate::appset::triggers::SecretTrigger;
use crate::appset::{self, Context};
use crate::defaults;
use crate::health_checks::HealthCheckRegistry;
use crate::http::limit::SharedLimiter;
use crate::http::ready::{Heartbeat, Readiness};
use crate::metrics::Metrics;
use crate::queue::{TRIGGER_CAPACITY, TriggerSender, trigger_queue};
use crate::registry::{ClusterRegistry, ProjectRegistry, StoreReady};
use crate::repo_credentials::RepoCredentialRegistry;
use crate::webhook::WebhookConfig;
use argosy_sync_engine::fence::{self, Fence};
use argosy_sync_engine::repo::{GitRepos, RemoteSettings};
use argosy_sync_engine::shard::assign::{ClusterRef, ShardingMethod};
use argosy_sync_engine::shard::{ShardFence, member};
use argosy_sync_engine::{
    charts::ChartRepos,
    clients::ClusterClients,
    live::LiveCache,
    render::{Limits, Renderer},
};
use kube::runtime::reflector::ObjectRef;

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
    /// Namespaces (globs, `/regexes/`) besides `namespace` whose Applications the sync
    /// engine reconciles (Argo CD's `--application-namespaces`).
    pub application_namespaces: Vec<String>,
    pub sync_engine: SyncEngine,
    pub leader_election: bool,
    /// How destination clusters are spread over the replicas (with leader election: the
    /// sync engine is sharded by cluster, see [`argosy_sync_engine::shard`]).
    pub sharding: ShardingMethod,
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
    /// Which other repository URLs may be read (`--allow-*-repos` flags).
    pub url_policy: UrlPolicy,
    /// Settings of the built-in sync engine (`--sync-engine argosy`).
    pub sync: SyncSettings,
    /// How often a remote repository's refs are checked (a push webhook checks at once).
    pub repo_refresh: Duration,
    /// How a failing repository is backed off.
    pub repo_backoff: argosy_sync_engine::repo::Backoff,
    /// Connect and stall timeouts of every Git operation.
    pub repo_timeouts: argosy_sync_engine::repo::Timeouts,
    /// The disk budget of cloned repositories and materialized trees; `None`: unbounded.
    pub repo_cache_max_bytes: Option<u64>,
    /// The disk budget of downloaded Helm chart packages.
    pub chart_cache_max_bytes: u64,
    /// Where `/healthz`, `/metrics` and the Git push webhook are served; `None`: not served.
    pub listen: Option<std::net::SocketAddr>,
    pub webhook: WebhookConfig,
    /// Token of the dashboard and its API on `listen`; `None`: neither is served.
    pub dashboard_token: Option<argosy_crds::cluster::Sensitive>,
    /// TLS, the session TTL, the `/metrics` token and the readiness bound of `listen`.
    pub http: HttpSettings,
    /// How webhook notifications are sent ([`crate::notify`]).
    pub notify: crate::notify::NotifySettings,
}

/// Settings of the HTTP listener beyond its address.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Serve HTTPS with this PEM certificate chain and key (`--tls-cert`, `--tls-key`).
    pub tls: Option<TlsFiles>,
    /// How long a dashboard login lasts.
    pub dashboard_session_ttl: Duration,
    /// Token `/metrics` asks for (`Authorization: Bearer`); `None`: `/metrics` is open.
    pub metrics_token: Option<argosy_crds::cluster::Sensitive>,
    /// `/readyz` fails when reconciles run but none finished for this long.
    pub readiness_stall: Duration,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            tls: None,
            dashboard_session_ttl: defaults::dashboard_session_ttl(),
            metrics_token: None,
            readiness_stall: Duration::from_secs(defaults::READINESS_STALL_SECONDS),
        }
    }
}

/// Settings of the built-in sync engine.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Periodic re-check of every Application (Argo CD: 180 s).
    pub resync: Duration,
    /// Concurrent applies within one sync step.
    pub concurrency: usize,
    /// Concurrent Application reconciles.
    pub workers: u16,
    /// Allow exec / AWS auth plugins from cluster Secrets (they run commands).
    pub allow_exec_plugins: bool,
    /// Built-in Lua health checks (`--resource-customizations DIR`).
    pub resource_customizations: Option<PathBuf>,
    /// Bounds of every request and watch to a destination cluster.
    pub cluster_timeouts: argosy_sync_engine::clients::ClusterTimeouts,
    /// The periodic probe that marks a hung destination cluster unreachable.
    pub cluster_probe: argosy_sync_engine::probe::ProbeSettings,
    /// Namespaces in use on one cluster watched one by one (`--watch-namespaces-max`).
    pub watch_namespaces_max: usize,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(defaults::RESYNC_SECONDS),
            concurrency: defaults::SYNC_CONCURRENCY,
            workers: defaults::SYNC_WORKERS,
            allow_exec_plugins: false,
            resource_customizations: None,
            cluster_timeouts: defaults::cluster_timeouts(),
            cluster_probe: defaults::cluster_probe(),
            watch_namespaces_max: defaults::WATCH_NAMESPACES_MAX,
        }
    }
}

pub use argosy_sync_engine::clients::USER_AGENT;

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
    // A bad certificate or key is the error to report, not a missing kubeconfig after it.
    if let Some(files) = &args.http.tls {
        crate::http::tls::load(&files.cert, &files.key)?;
    }
    run_with(client().await?, args, shutdown_signal()).await
}

/// Runs the controller with `client` until `shutdown` completes; then in-flight
/// reconciles finish and the Lease is released.
pub async fn run_with(
    client: Client,
    args: RunArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    // A bad certificate or key stops the process before it watches or leads anything.
    let tls = args
        .http
        .tls
        .as_ref()
        .map(|files| crate::http::tls::load(&files.cert, &files.key))
        .transpose()?;
    let appset_namespaces: BTreeSet<String> = if args.appset_namespaces.is_empty() {
        BTreeSet::from([args.namespace.clone()])
    } else {
        args.appset_namespaces.iter().cloned().collect()
    };

    let (leader, lease_task) = leader_channel(&client, &args).await?;
    // Every write from here on passes the fence (the lease manager above keeps the one
    // unfenced client: it must be able to take the Lease).
    let (fence, follow_task) = match &leader {
        Some(rx) => {
            let fence = Fence::leased(args.identity.clone());
            let task = tokio::spawn(fence::follow(
                fence.clone(),
                client.clone(),
                args.namespace.clone(),
                args.lease_name.clone(),
                args.lease_duration,
                rx.clone(),
            ));
            (fence, Some(task))
        }
        None => (Fence::open(), None),
    };
    // The one exception: refresh requests from a push webhook, which any replica makes
    // (a webhook may reach a follower) and only the leader acts on. Its client sends
    // nothing but those (see `fence::refresh_requests_only`).
    let refresh_requester = crate::refresh::Requester::new(client.clone());
    // With leader election the sync engine is sharded by destination cluster: each
    // replica writes to a cluster (and for its Applications) only while it holds it, a
    // gate per cluster over this unfenced client (see `argosy_sync_engine::shard`).
    let shard = args
        .leader_election
        .then(|| ShardFence::new(args.identity.clone()));
    let unfenced = client.clone();
    let client = fence.wrap(client);

    let secrets_api: Api<Secret> = Api::namespaced(client.clone(), &args.namespace);
    let (secrets, secrets_writer) = reflector::store();
    let (secrets_listed, secrets_ready) = StoreReady::new();
    let secret_events = reflector(
        secrets_writer,
        watcher(
            secrets_api,
            watcher::Config::default()
                .labels(&format!("{SECRET_TYPE_LABEL}={SECRET_TYPE_CLUSTER}")),
        ),
    )
    .inspect(move |event| secrets_listed.observe(event))
    .default_backoff()
    .touched_objects();

    // Argo CD's repository credentials and the two ConfigMaps of host keys and CAs: read
    // on every Git operation, so a rotated password needs no restart.
    // The health scripts of --resource-customizations, read once; a bad directory stops
    // the start (one line, non-zero exit), a script that does not compile is logged.
    let builtin_health = match &args.sync.resource_customizations {
        Some(dir) => {
            let (scripts, broken) = argosy_sync_engine::health::script_dir::load(dir)
                .map_err(|e| anyhow::anyhow!("--resource-customizations: {e}"))?;
            for problem in broken {
                tracing::warn!(%problem, "built-in health script does not compile");
            }
            tracing::info!(dir = %dir.display(), scripts = scripts.len(), "health scripts loaded");
            Arc::new(scripts)
        }
        None => Arc::default(),
    };
    // A changed argocd-cm re-assesses every Application's health (its scripts may differ).
    let (argocd_cm_changed, argocd_cm_changes) = tokio::sync::watch::channel(());
    let (
        repo_credentials,
        config_maps,
        repo_credential_watches,
        [repo_secrets_ready, repo_config_ready],
    ) = repo_credential_watches(&client, &args.namespace, move || {
        argocd_cm_changed.send_replace(());
    });
    let health_checks = HealthCheckRegistry::new(builtin_health, Some(config_maps));

    let projects_api: Api<AppProject> = Api::namespaced(client.clone(), &args.namespace);
    let (projects, projects_writer) = reflector::store();
    let (projects_listed, projects_ready) = StoreReady::new();
    let project_events = reflector(
        projects_writer,
        watcher(projects_api, watcher::Config::default()),
    )
    .inspect(move |event| projects_listed.observe(event))
    .default_backoff()
    .touched_objects();

    // Applications are watched where ApplicationSets write them and where the sync engine
    // takes them from: one namespace when that is all, else the whole cluster (filtered by
    // each controller).
    let (apps_api, appsets_api): (Api<Application>, Api<ApplicationSet>) =
        match single(&appset_namespaces) {
            Some(ns) if args.application_namespaces.is_empty() => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            Some(ns) => (
                Api::all(client.clone()),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
    // One Application watch feeds both controllers (the ApplicationSet controller owns
    // them, the sync engine reconciles them). Neither reads other managers' managedFields
    // nor kubectl's last-applied copy: the cache keeps objects trimmed.
    let (applications, apps_writer) = reflector::store();
    let (apps_listed, applications_ready) = StoreReady::new();
    let app_fanout = Fanout::new(SHARED_BUFFER);
    let app_events = app_fanout.subscribe();
    let app_reflector = app_fanout.forward(
        reflector(
            apps_writer,
            watcher(apps_api, watcher::Config::default())
                .default_backoff()
                .modify(|app: &mut Application| {
                    argosy_sync_engine::ssa::trim_for_cache(&mut app.metadata)
                }),
        ),
        applications.clone(),
        apps_listed,
    );
    // The stores /readyz waits for (the ApplicationSets' is added below).
    let mut readiness_stores = vec![
        ("repository secrets", repo_secrets_ready),
        ("configmaps", repo_config_ready),
        ("clusters", secrets_ready.clone()),
        ("projects", projects_ready.clone()),
        ("applications", applications_ready.clone()),
    ];
    let clusters = ClusterRegistry::new(secrets.clone(), secrets_ready, args.namespace.clone());
    let projects = ProjectRegistry::new(projects, projects_ready, args.namespace.clone());
    let shutdown = futures::FutureExt::shared(shutdown);
    let metrics = Metrics::new();
    // One repository cache for generators and the sync engine.
    // Git repositories, Helm repositories and registries are reached alike.
    let remote = RemoteSettings {
        credentials: Arc::new(repo_credentials),
        url_policy: args.url_policy,
        timeouts: args.repo_timeouts,
        backoff: args.repo_backoff,
        refresh_interval: args.repo_refresh,
    };
    let mut git = GitRepos::new(args.repos.clone(), args.repo_cache.clone())
        .with_remote(remote.clone())
        .with_evictable_dirs(vec![
            args.repo_cache.join("render").join("trees"),
            args.repo_cache.join("render").join("dependencies"),
        ])
        .with_observer(Arc::new(metrics.clone()));
    if let Some(max_bytes) = args.repo_cache_max_bytes {
        git = git.with_max_bytes(max_bytes);
    }
    let repos = Arc::new(git);
    // Helm charts from Helm repositories and OCI registries.
    let charts = Arc::new(
        ChartRepos::new(args.repo_cache.join("charts"))
            .with_remote(remote)
            .with_max_bytes(args.chart_cache_max_bytes),
    );
    // Apps to re-check (by app instance): from the live cache and from push webhooks.
    let (app_trigger, app_triggers) =
        trigger_queue::<String>(TRIGGER_CAPACITY, metrics.queue_dropped("app_triggers"));
    // The ApplicationSet reflector is ours (not `Controller::new`'s) so that /readyz can
    // see its first list complete; notifications read webhooks from its store.
    let (appset_store, appsets_writer) = reflector::store();
    let (notifier, notify_task) = crate::notify::Notifier::start(crate::notify::NotifierParts {
        projects: projects.clone(),
        appsets: appset_store.clone(),
        leader: leader.clone(),
        settings: args.notify,
        metrics: metrics.clone(),
    });
    let notify_task = tokio::spawn(notify_task);
    let ctx = Arc::new(
        Context::new(appset::ContextParts {
            client: client.clone(),
            clusters: clusters.clone(),
            projects: projects.clone(),
            applications: applications.clone(),
            applications_ready,
            repos: repos.clone(),
            events: EventPublisher::new(
                client.clone(),
                "argosy-applicationset-controller",
                args.identity.clone(),
            ),
            leader: leader.clone(),
            metrics: metrics.clone(),
            config: appset::Config {
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
        })
        .with_notifier(notifier.clone()),
    );

    let (appsets_listed, appsets_ready) = StoreReady::new();
    // The echo of the controller's own metadata write (the removal of a refresh request)
    // is not a change to regenerate for.
    let own_writes = ctx.clone();
    let appset_events = reflector(
        appsets_writer,
        watcher(appsets_api, watcher::Config::default()),
    )
    .inspect(move |event| appsets_listed.observe(event))
    .default_backoff()
    .applied_objects()
    .filter(move |event| {
        let triggers = event
            .as_ref()
            .map_or(true, |appset| own_writes.triggers_reconcile(appset));
        futures::future::ready(triggers)
    });
    let controller = Controller::for_stream(appset_events, appset_store.clone());
    readiness_stores.push(("applicationsets", appsets_ready));
    let appset_heartbeat = Heartbeat::new(std::time::Instant::now());
    let trigger = Arc::new(SecretTrigger::default());
    let became_leader = leadership_gained(leader.clone());
    let all_appsets = appset_store.clone();
    let project_store = appset_store.clone();
    let (project_apps, project_app_trigger, project_app_namespace) = (
        applications.clone(),
        app_trigger.clone(),
        args.namespace.clone(),
    );

    // Destination cluster clients (their connection state goes to /metrics and the dashboard).
    let cluster_clients = (args.sync_engine == SyncEngine::Argosy).then(|| {
        Arc::new(
            match &shard {
                Some(shard) => ClusterClients::new(unfenced.clone(), args.sync.allow_exec_plugins)
                    .with_shard(shard.clone())
                    .with_replica(&args.identity),
                None => ClusterClients::new(client.clone(), args.sync.allow_exec_plugins)
                    .with_fence(fence.clone()),
            }
            .with_timeouts(args.sync.cluster_timeouts),
        )
    });
    // The membership that moves the shard's held clusters; stopped after the controllers
    // finished (their in-flight writes still pass), then it releases its Lease.
    let (stop_membership, membership_stopped) = tokio::sync::oneshot::channel::<()>();
    let membership_task = shard
        .as_ref()
        .filter(|_| args.sync_engine == SyncEngine::Argosy)
        .map(|shard| {
            tokio::spawn(member::run(
                shard.clone(),
                unfenced.clone(),
                member::MembershipSettings {
                    namespace: args.namespace.clone(),
                    group: args.lease_name.clone(),
                    identity: args.identity.clone(),
                    duration: args.lease_duration,
                    method: args.sharding,
                },
                shard_clusters(clusters.clone()),
                async move {
                    let _ = membership_stopped.await;
                },
            ))
        });
    let sync_heartbeat = Heartbeat::new(std::time::Instant::now());
    let (sync_ctx, sync_engine) = cluster_clients
        .as_ref()
        .map(|cluster_clients| {
            sync_controller(
                &client,
                &args,
                SyncWiring {
                    clusters: cluster_clients.clone(),
                    applications: applications.clone(),
                    app_events: app_events.clone(),
                    cluster_registry: clusters.clone(),
                    projects: projects.clone(),
                    leader: leader.clone(),
                    repos: repos.clone(),
                    charts: charts.clone(),
                    metrics: metrics.clone(),
                    triggers: (app_trigger.clone(), app_triggers),
                    heartbeat: sync_heartbeat.clone(),
                    health_checks: health_checks.clone(),
                    argocd_cm_changes: argocd_cm_changes.clone(),
                    notifier: notifier.clone(),
                    shard: shard.clone().map(|shard| (shard, unfenced.clone())),
                },
                shutdown.clone(),
            )
        })
        .unzip();

    let run = controller
        .owns_shared_stream(app_events)
        .watches_stream(secret_events, move |secret| {
            trigger.map(&secret, &all_appsets.state())
        })
        .watches_stream(project_events, move |project: AppProject| {
            // A changed project re-checks its Applications at once (the sync engine's
            // boundary), not at the next resync.
            let name = project.metadata.name.as_deref().unwrap_or_default();
            for app in project_apps.state() {
                let app_project = if app.spec.project.is_empty() {
                    "default"
                } else {
                    app.spec.project.as_str()
                };
                if app_project == name {
                    project_app_trigger.send(argosy_sync_engine::resource::app_instance(
                        app.metadata.namespace.as_deref().unwrap_or_default(),
                        app.metadata.name.as_deref().unwrap_or_default(),
                        &project_app_namespace,
                    ));
                }
            }
            // A new or changed project can fix (or break) any ApplicationSet of the namespace.
            project_store
                .state()
                .iter()
                .map(|a| kube::runtime::reflector::ObjectRef::from_obj(a.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_all_on(became_leader)
        .graceful_shutdown_on(shutdown.clone())
        .run(
            {
                let metrics = metrics.clone();
                let heartbeat = appset_heartbeat.clone();
                move |appset: Arc<ApplicationSet>, ctx: Arc<Context>| {
                    let metrics = metrics.clone();
                    let heartbeat = heartbeat.clone();
                    async move {
                        let _running = heartbeat.start();
                        let started = std::time::Instant::now();
                        let result =
                            appset::reconcile_contained(appset.clone(), ctx, &metrics).await;
                        metrics.appset_reconciled(
                            &appset,
                            result.as_ref().map(|_| ()).map_err(|e| e.category()),
                            started.elapsed(),
                        );
                        result
                    }
                }
            },
            appset::error_policy,
            ctx.clone(),
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        });
    let http_task = if let Some(listen) = args.listen {
        let on_push = push_handler(PushWiring {
            repos: repos.clone(),
            applications: applications.clone(),
            appsets: appset_store.clone(),
            app_trigger,
            requester: refresh_requester,
            apps_reconciled: sync_config(&args),
            appset_namespaces: ctx.config.appset_namespaces.clone(),
        });
        let metrics_sources = crate::metrics::Sources {
            applications: applications.clone(),
            appsets: appset_store.clone(),
            clusters: clusters.clone(),
            cluster_states: sync_ctx
                .clone()
                .map(|ctx| -> crate::metrics::ClusterStates {
                    Arc::new(move || ctx.cluster_states())
                }),
            cluster_caches: sync_ctx
                .clone()
                .map(|ctx| -> crate::metrics::ClusterCaches {
                    Arc::new(move || ctx.live.footprint())
                }),
            fence: fence.clone(),
            shard: shard.clone().zip(sync_ctx.clone()).map(|(shard, ctx)| {
                let leads = leader.clone();
                crate::metrics::ShardSources {
                    fence: shard,
                    owns: Arc::new(move || ctx.owns_filter()),
                    leads: Arc::new(move || leads.as_ref().is_none_or(|rx| *rx.borrow())),
                }
            }),
        };
        let dashboard_sources = crate::dashboard::Sources {
            applications: applications.clone(),
            appsets: appset_store.clone(),
            clusters: clusters.clone(),
            controllers: Arc::new(crate::query::Controllers {
                appset: ctx.clone(),
                sync: sync_ctx.clone(),
            }),
            shutdown: futures::FutureExt::shared(futures::FutureExt::boxed(shutdown.clone())),
        };
        // One failed-login limit for every token check on the listener.
        let limiter = SharedLimiter::default();
        let mut metrics_routes = crate::metrics::routes(metrics, metrics_sources);
        if let Some(token) = &args.http.metrics_token {
            metrics_routes =
                crate::metrics::with_token(metrics_routes, token.expose(), limiter.clone());
        }
        let dashboard_access = args.dashboard_token.as_ref().map(|token| {
            crate::dashboard::Access::new(
                token.expose(),
                args.http.dashboard_session_ttl,
                tls.is_some(),
                limiter.clone(),
            )
        });
        let mut loops = vec![("applicationset", appset_heartbeat.clone())];
        if sync_ctx.is_some() {
            loops.push(("application", sync_heartbeat.clone()));
        }
        let readiness = Readiness::new(readiness_stores, loops, args.http.readiness_stall);
        let routes = crate::webhook::router(args.webhook.clone(), on_push)
            .merge(metrics_routes)
            .merge(crate::dashboard::routes(
                dashboard_access,
                dashboard_sources,
            ))
            .merge(crate::http::probes(readiness));
        let shutdown = shutdown.clone();
        Some(tokio::spawn(async move {
            if let Err(e) = crate::http::serve(listen, tls, routes, shutdown).await {
                tracing::error!(error = format!("{e:#}"), "HTTP listener stopped");
            }
        }))
    } else {
        None
    };
    tracing::info!(identity = %args.identity, sync_engine = ?args.sync_engine, "argosy controller starting");
    let sync_run = async {
        if let Some(engine) = sync_engine {
            engine.await;
        }
    };
    tokio::select! {
        _ = futures::future::join(run, sync_run) => {}
        _ = app_reflector => {}
        () = repo_credential_watches => {}
    }
    // The controllers are done: let go of every cluster and release the membership Lease.
    let _ = stop_membership.send(());
    if let Some(task) = membership_task
        && tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
    {
        tracing::warn!("the membership Lease was not released within 5 s");
    }
    // The Lease is released once every holder of a leadership receiver is gone: the
    // contexts, and the HTTP listener's routes (which hold both contexts).
    drop(leader);
    drop(ctx);
    drop(sync_ctx);
    // Notifications still queued or retrying are not waited for (nor are they a write).
    drop(notifier);
    notify_task.abort();
    // The fence's follower holds a leadership receiver too (and never ends by itself):
    // without stopping it the Lease would never be released. Nothing writes any more;
    // close the fence for good all the same.
    if let Some(task) = follow_task {
        task.abort();
        let _ = task.await;
        fence.set_leader(false);
    }
    if let Some(task) = http_task
        && tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
    {
        tracing::warn!("the HTTP listener did not stop within 5 s");
    }
    if let Some(task) = lease_task {
        // Dropping every receiver makes the lease task release the Lease and exit.
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => tracing::info!("lease released"),
            other => tracing::warn!(?other, "lease release did not complete"),
        }
    }
    Ok(())
}

/// The watches of Argo CD's repository Secrets and the control plane's ConfigMaps, the
/// registry reading their stores, the future that drives both watches (it never ends) and
/// the readiness of their first lists.
fn repo_credential_watches<OnArgocdCm: Fn() + Send + 'static>(
    client: &Client,
    namespace: &str,
    on_argocd_cm: OnArgocdCm,
) -> (
    RepoCredentialRegistry,
    reflector::Store<ConfigMap>,
    impl std::future::Future<Output = ()> + Send + use<OnArgocdCm>,
    [StoreReady; 2],
) {
    let secrets_api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let (secrets, secrets_writer) = reflector::store();
    let (secrets_listed, secrets_ready) = StoreReady::new();
    let secret_watch = reflector(
        secrets_writer,
        watcher(
            secrets_api,
            watcher::Config::default().labels(&format!(
                "{SECRET_TYPE_LABEL} in ({SECRET_TYPE_REPOSITORY},{SECRET_TYPE_REPO_CREDS})"
            )),
        ),
    )
    .inspect(move |event| secrets_listed.observe(event))
    .default_backoff();
    // All of the namespace's ConfigMaps: a field selector cannot name two objects, and the
    // credentials registry reads only argocd-ssh-known-hosts-cm and argocd-tls-certs-cm, the
    // health checks only argocd-cm.
    let config_maps_api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let (config_maps, config_maps_writer) = reflector::store();
    let (config_maps_listed, config_maps_ready) = StoreReady::new();
    let config_map_watch = reflector(
        config_maps_writer,
        watcher(config_maps_api, watcher::Config::default()),
    )
    .inspect(move |event| {
        config_maps_listed.observe(event);
        if let Ok(event) = event
            && crate::health_checks::touches_argocd_cm(event)
        {
            on_argocd_cm();
        }
    })
    .default_backoff();
    let drive = async move {
        futures::future::join(
            secret_watch.for_each(|_| futures::future::ready(())),
            config_map_watch.for_each(|_| futures::future::ready(())),
        )
        .await;
    };
    (
        RepoCredentialRegistry::new(secrets, config_maps.clone()),
        config_maps,
        drive,
        [secrets_ready, config_maps_ready],
    )
}

/// What a push webhook handler works with (built once by [`run_with`]).
struct PushWiring {
    repos: Arc<GitRepos>,
    applications: reflector::Store<Application>,
    appsets: reflector::Store<ApplicationSet>,
    app_trigger: TriggerSender<String>,
    requester: crate::refresh::Requester,
    /// Which Applications the sync engine reconciles (their namespaces).
    apps_reconciled: application::Config,
    appset_namespaces: BTreeSet<String>,
}

/// What a Git push does, on whichever replica receives it: ask for a refresh of the
/// Applications and ApplicationSets that read the pushed branch (the annotations the
/// leader acts on; see [`crate::refresh`]). As a fast path, this replica's own cache checks
/// the pushed repositories at their next read and the moved Applications are reconciled
/// here at once (which acts only where this replica leads).
fn push_handler(wiring: PushWiring) -> crate::webhook::OnPush {
    let PushWiring {
        repos,
        applications,
        appsets,
        app_trigger,
        requester,
        apps_reconciled,
        appset_namespaces,
    } = wiring;
    Arc::new(move |push: crate::webhook::Push| {
        for url in &push.urls {
            repos.refresh(url);
        }
        let apps = moved(applications.state(), |namespace, app| {
            apps_reconciled.reconciles_namespace(namespace) && crate::refresh::moves_app(&push, app)
        });
        for (namespace, name) in &apps {
            app_trigger.send(argosy_sync_engine::resource::app_instance(
                namespace,
                name,
                &apps_reconciled.controller_namespace,
            ));
        }
        let appsets = moved(appsets.state(), |namespace, appset| {
            appset_namespaces.contains(namespace) && crate::refresh::moves_appset(&push, appset)
        });
        tracing::info!(
            apps = apps.len(),
            appsets = appsets.len(),
            "requesting refreshes for a push"
        );
        let requester = requester.clone();
        tokio::spawn(async move {
            let requests = apps
                .iter()
                .map(|(namespace, name)| {
                    futures::future::Either::Left(requester.refresh_app(namespace, name))
                })
                .chain(appsets.iter().map(|(namespace, name)| {
                    futures::future::Either::Right(requester.refresh_appset(namespace, name))
                }));
            futures::stream::iter(requests)
                .for_each_concurrent(REFRESH_REQUESTS_AT_ONCE, |request| async move {
                    if let Err(e) = request.await {
                        tracing::warn!(category = e.category(), error = %e, "refresh request failed");
                    }
                })
                .await;
        });
    })
}

/// `(namespace, name)` of the `objects` a push moved (`moved(namespace, object)`).
fn moved<K: kube::Resource>(
    objects: Vec<Arc<K>>,
    moved: impl Fn(&str, &K) -> bool,
) -> Vec<(String, String)> {
    objects
        .iter()
        .filter_map(|object| {
            let meta = object.meta();
            let namespace = meta.namespace.clone().unwrap_or_default();
            moved(&namespace, object).then(|| (namespace, meta.name.clone().unwrap_or_default()))
        })
        .collect()
}

/// Refresh requests a push webhook sends at once.
const REFRESH_REQUESTS_AT_ONCE: usize = 8;

/// Applications one consumer of the shared watch may fall behind before the watch waits.
const SHARED_BUFFER: usize = 1024;

/// The sync engine's Application controller: reconciles every Application of the
/// shared store, re-triggered by changes to the objects it deployed. Also returns its
/// context (the dashboard's diffs and connection states read it).
/// What the sync engine's controller is wired to (built once by [`run_with`]).
struct SyncWiring {
    clusters: Arc<ClusterClients>,
    applications: reflector::Store<Application>,
    app_events: async_broadcast::Receiver<Arc<Application>>,
    cluster_registry: ClusterRegistry,
    projects: ProjectRegistry,
    leader: Option<tokio::sync::watch::Receiver<bool>>,
    repos: Arc<GitRepos>,
    charts: Arc<ChartRepos>,
    metrics: Metrics,
    /// Apps to re-check (by app instance), from the live cache and push webhooks.
    triggers: (TriggerSender<String>, tokio::sync::mpsc::Receiver<String>),
    /// The loop's progress record, which /readyz reads.
    heartbeat: Heartbeat,
    /// The Lua health scripts.
    health_checks: HealthCheckRegistry,
    /// Ticks when `argocd-cm` changed.
    argocd_cm_changes: tokio::sync::watch::Receiver<()>,
    /// Where sync failures and Degraded health are notified.
    notifier: crate::notify::Notifier,
    /// With sharding: this replica's share, and the unfenced client its gates wrap.
    shard: Option<(ShardFence, Client)>,
}

fn sync_controller(
    client: &Client,
    args: &RunArgs,
    wiring: SyncWiring,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> (
    Arc<application::Context>,
    impl std::future::Future<Output = ()> + Send,
) {
    let SyncWiring {
        clusters,
        applications,
        app_events,
        cluster_registry,
        projects,
        leader,
        repos,
        charts,
        metrics,
        triggers: (trigger_tx, trigger_rx),
        heartbeat,
        health_checks,
        mut argocd_cm_changes,
        notifier,
        shard,
    } = wiring;
    // The first value is the channel's initial one, not a change.
    argocd_cm_changes.mark_unchanged();
    let argocd_cm_changed = futures::stream::unfold(argocd_cm_changes, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    });
    let controller_namespace = args.namespace.clone();
    let live = Arc::new(
        LiveCache::new(
            Arc::new(move |instance: &str| {
                trigger_tx.send(instance.to_owned());
            }),
            Duration::from_secs(10),
        )
        .with_max_namespaces(args.sync.watch_namespaces_max),
    );
    let triggers = futures::stream::unfold(trigger_rx, move |mut rx| {
        let ns = controller_namespace.clone();
        async move {
            let instance = rx.recv().await?;
            // `<namespace>_<name>` outside the controller namespace (names have no `_`).
            let reference = match instance.split_once('_') {
                Some((namespace, name)) => ObjectRef::new(name).within(namespace),
                None => ObjectRef::new(&instance).within(&ns),
            };
            Some((reference, rx))
        }
    });
    let mut sync_ctx = application::Context::new(application::ContextParts {
        client: client.clone(),
        clusters: cluster_registry,
        projects,
        repos,
        charts,
        renderer: Arc::new(Renderer::new(
            args.repo_cache.join("render"),
            Limits::default(),
        )),
        clients: clusters,
        live,
        events: EventPublisher::new(
            client.clone(),
            "argosy-application-controller",
            args.identity.clone(),
        ),
        leader: leader.clone(),
        config: application::Config {
            health: health_checks,
            ..sync_config(args)
        },
    })
    .with_metrics(metrics)
    .with_notifier(notifier);
    let shard_changes = shard.as_ref().map(|(shard, _)| shard.changes());
    if let Some((shard, unfenced)) = shard {
        sync_ctx = sync_ctx.with_shard(shard, unfenced);
    }
    let ctx = Arc::new(sync_ctx);
    // A gained cluster's Applications are reconciled at once; a lost one's watches and
    // gated clients are let go (its memory goes with it).
    let shard_changed = {
        let ctx = ctx.clone();
        futures::stream::unfold(shard_changes, |rx| async move {
            let mut rx = rx?;
            rx.changed().await.ok()?;
            Some(((), Some(rx)))
        })
        .map(move |()| ctx.let_go_of_unheld())
    };
    // The echo of the engine's own status write is not a change to act on. An event whose
    // app is no longer in the store (the fan-out passes each event on after the store has
    // it) is a deletion: nothing to reconcile, only records to drop.
    let own_writes = ctx.clone();
    let store = applications.clone();
    let app_events = app_events.filter(move |app| {
        let deleted = store.get(&ObjectRef::from_obj(app.as_ref())).is_none();
        if deleted {
            own_writes.forget_deleted(app);
        }
        futures::future::ready(!deleted && own_writes.triggers_reconcile(app))
    });
    let engine = Controller::for_shared_stream(app_events, applications)
        .with_config(kube::runtime::controller::Config::default().concurrency(args.sync.workers))
        .reconcile_on(triggers)
        .reconcile_all_on(leadership_gained(leader))
        .reconcile_all_on(argocd_cm_changed)
        .reconcile_all_on(shard_changed)
        .graceful_shutdown_on(shutdown)
        .run(
            move |app: Arc<Application>, ctx: Arc<application::Context>| {
                let running = heartbeat.start();
                async move {
                    let _running = running;
                    application::reconcile(app, ctx).await
                }
            },
            application::error_policy,
            ctx.clone(),
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "sync controller event");
            }
        });
    // The probe that marks a hung destination cluster unreachable runs as long as the
    // engine does (it never ends by itself).
    let probe = argosy_sync_engine::probe::run(
        ctx.clients.clone(),
        ctx.live.clone(),
        args.sync.cluster_probe,
    );
    let engine = async move {
        tokio::select! {
            () = engine => {}
            () = probe => {}
        }
    };
    (ctx, engine)
}

/// The sync engine's settings from the flags.
fn sync_config(args: &RunArgs) -> application::Config {
    application::Config {
        controller_namespace: args.namespace.clone(),
        application_namespaces: NamespacePatterns::new(&args.application_namespaces),
        resync: args.sync.resync,
        concurrency: args.sync.concurrency,
        health: HealthCheckRegistry::default(),
    }
}

/// The clusters the shards spread: every registered cluster (by server key, once) and the
/// implicit in-cluster one, read from the cluster Secret cache at each membership step.
fn shard_clusters(registry: ClusterRegistry) -> member::ClusterList {
    Arc::new(move || {
        let mut refs: Vec<ClusterRef> = registry
            .valid_clusters()
            .iter()
            .map(|cluster| ClusterRef {
                key: argosy_crds::server_key(&cluster.server),
                id: cluster.id.clone(),
                pinned: cluster.shard,
            })
            .collect();
        refs.push(ClusterRef {
            key: argosy_crds::consts::IN_CLUSTER_SERVER.to_owned(),
            id: String::new(),
            pinned: None,
        });
        // A registered Secret for the in-cluster server (or two Secrets for one server)
        // counts once: the first by key order wins, on every replica alike.
        refs.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| b.id.cmp(&a.id)));
        refs.dedup_by(|later, first| later.key == first.key);
        refs
    })
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
    // Unfenced (it must be able to take the Lease), but never overwriting a Lease another
    // replica validly holds.
    let lease_client = fence::guard_lease(
        client.clone(),
        &args.namespace,
        &args.lease_name,
        &args.identity,
    );
    let manager = kube_lease_manager::LeaseManagerBuilder::new(lease_client, &args.lease_name)
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
