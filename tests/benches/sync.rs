//! Sync-engine benchmark against real API servers (issue: sync engine must-show), run
//! with `cargo bench -p argosy-tests --bench sync`. All in one run, 1,000 apps x 5
//! objects (ConfigMap, Secret, Service, ServiceAccount, Deployment) over 3 workload
//! clusters:
//!
//! * baseline, on its own fresh control plane (so neither side sees the other's
//!   objects): `kubectl apply --server-side --force-conflicts -n NS -f <app dir>`, one
//!   invocation per app, 8 in parallel; the same loop again over the unchanged objects;
//!   and one `kubectl apply --server-side -R` per cluster (3 in parallel) over a copy
//!   of the objects in other namespaces;
//! * engine cold sync, on a second fresh control plane: the 1,000 Applications exist
//!   (created directly, automated sync), then the controller process is spawned; from
//!   the spawn until the API server's Application list shows all 1,000 Synced;
//! * full no-change resync: once every reconcile has settled, one GitLab push webhook
//!   for the fleet repository (no new commit) makes the controller re-check every app;
//!   from the POST until its `/metrics` counts 1,000 more reconciles, and every write
//!   the four API servers' audit logs record from the controller in that window besides
//!   the refresh requests (must be 0; a push sets Argo CD's refresh annotation on each
//!   Application and the controller removes it, as Argo CD does: counted apart), plus the
//!   Applications' spec and status before and after;
//! * restart resync: a new controller process over the converged state, until it has
//!   reconciled every app, and its writes (must be 0);
//! * the controller's peak RSS (a child process: this binary re-executed);
//! * the baseline's raw server-side-apply loop once more, on the engine's API servers
//!   right after the controller stopped: the machine's speed drifts by tens of percent
//!   from one minute to the next, so the cold sync is also set against a loop run in the
//!   same minutes.
//!
//! `ARGOSY_BENCH_ENGINE_ONLY=1` skips the baselines and leaves BENCHMARKS.md alone: the
//! engine's part alone, in two minutes, for profiling.
//!
//! Namespaces: 10 shared namespaces per workload cluster (`team-0..9`), created up front
//! by the harness; object names carry the app name. No `CreateNamespace=true`, so every
//! app costs exactly its 5 object writes on either side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use argosy::run::SyncEngine;
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, application_resource, install_crds, prepare_namespace, run_args,
};
use argosy_tests::bench::{
    ChildController, CpuSnapshot, CpuUsed, http_request, machine, peak_rss_mib_of, synced_count,
    update_benchmarks_md,
};
use argosy_tests::fixtures::register_cluster;
use argosy_tests::fixtures::{AppBuilder, free_port};
use argosy_tests::{ControlPlane, MANAGEMENT};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const APPS: usize = 1_000;
const CLUSTERS: usize = 3;
const NAMESPACES: usize = 10;
const KUBECTL_PARALLEL: usize = 8;
const REPO_URL: &str = "https://git.example.com/platform/fleet.git";
const GITLAB_TOKEN: &str = "bench-webhook-token";
/// Path of the child's settings (JSON); its presence makes this binary the controller.
const CONTROLLER_ENV: &str = "ARGOSY_BENCH_SYNC_CONTROLLER";
/// Set (to anything): run the engine's part only (see `bench`).
const ENGINE_ONLY_ENV: &str = "ARGOSY_BENCH_ENGINE_ONLY";
const TIMEOUT: Duration = Duration::from_secs(900);
const FIELD_MANAGER: &str = "bench";
/// Process groups of the CPU accounting, by label prefix.
const CPU_GROUPS: &[&str] = &["controller", "kube-apiserver", "etcd", "bench"];
/// The same for the engine's run, with the management API server (Applications, their
/// status and Events) apart from the three workload API servers (the applied objects).
const ENGINE_CPU_GROUPS: &[&str] = &[
    "controller",
    "kube-apiserver mgmt",
    "kube-apiserver workload",
    "etcd",
    "bench",
];

fn main() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    if let Ok(settings) = std::env::var(CONTROLLER_ENV) {
        return runtime.block_on(controller_process(PathBuf::from(settings)));
    }
    // `cargo test --all-targets` runs this binary without `--bench`: measure nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("sync benchmark: run with `cargo bench`");
        return Ok(());
    }
    runtime.block_on(bench())
}

/// The child: `argosy run --sync-engine argosy` as the CLI sets it up (default workers and
/// concurrency), with the fleet repository served from a local path, `/metrics` and the
/// push webhook on `listen`, and a periodic resync long enough to stay out of the way.
async fn controller_process(settings: PathBuf) -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ARGOSY_LOG"))
        .init();
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&settings)?)?;
    let text = |key: &str| s[key].as_str().unwrap_or_default().to_owned();
    let kubeconfig = kube::config::Kubeconfig::read_from(text("kubeconfig"))?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(argosy::run::USER_AGENT),
    ));
    let client = kube::Client::try_from(config)?;
    let mut args = run_args("bench-sync", PathBuf::from(text("cache")));
    args.sync_engine = SyncEngine::Argosy;
    args.concurrent_writes = 32;
    args.repos = BTreeMap::from([(REPO_URL.to_owned(), PathBuf::from(text("repo")))]);
    args.sync.resync = Duration::from_secs(3600);
    args.listen = Some(text("listen").parse()?);
    args.webhook.gitlab_token = Some(GITLAB_TOKEN.to_owned());
    let shutdown = async {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
        }
    };
    argosy::run::run_with(client, args, shutdown).await
}

fn app_name(i: usize) -> String {
    format!("app-{i:04}")
}

fn namespace_of(i: usize) -> String {
    format!("team-{}", i % NAMESPACES)
}

/// The 5 manifests of app `i` (file name, YAML), without a namespace: kubectl gets it from
/// `-n`, the engine from the Application's destination.
fn app_manifests(i: usize) -> Vec<(&'static str, String)> {
    let name = app_name(i);
    let labels = format!(
        "  labels:\n    app.kubernetes.io/name: {name}\n    app.kubernetes.io/part-of: fleet\n"
    );
    vec![
        (
            "configmap.yaml",
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\n{labels}data:\n  LOG_LEVEL: info\n  FEATURES: \"search,export\"\n  app.properties: |\n    server.port=8080\n    customer=customer-{i:04}\n"
            ),
        ),
        (
            "secret.yaml",
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-credentials\n{labels}type: Opaque\nstringData:\n  DATABASE_URL: postgres://{name}@db.internal:5432/{name}\n  API_KEY: bench-key-{i:04}\n"
            ),
        ),
        (
            "serviceaccount.yaml",
            format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n{labels}"),
        ),
        (
            "service.yaml",
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n{labels}spec:\n  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: {name}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n    protocol: TCP\n"
            ),
        ),
        (
            "deployment.yaml",
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n{labels}spec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: {name}\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: {name}\n    spec:\n      serviceAccountName: {name}\n      containers:\n      - name: app\n        image: registry.example.com/fleet/app:1.4.2\n        ports:\n        - containerPort: 8080\n          protocol: TCP\n        envFrom:\n        - configMapRef:\n            name: {name}-config\n        - secretRef:\n            name: {name}-credentials\n        resources:\n          requests:\n            cpu: 50m\n            memory: 64Mi\n          limits:\n            memory: 128Mi\n        readinessProbe:\n          httpGet:\n            path: /healthz\n            port: 8080\n"
            ),
        ),
    ]
}

/// Creates `team-0..9` (and `prefix`-ed copies when given) on every workload cluster.
async fn create_namespaces(plane: &ControlPlane, prefixes: &[&str]) -> Result<()> {
    for cluster in plane.workloads() {
        let api: Api<Namespace> = Api::all(cluster.client().await?);
        for prefix in prefixes {
            for n in 0..NAMESPACES {
                let ns = serde_json::from_value(
                    json!({"metadata": {"name": format!("{prefix}team-{n}")}}),
                )?;
                api.create(&PostParams::default(), &ns).await?;
            }
        }
    }
    Ok(())
}

fn write_kubeconfigs(plane: &ControlPlane) -> Result<Vec<PathBuf>> {
    plane
        .workloads()
        .iter()
        .map(|c| {
            let path = plane.dir().join(format!("{}.kubeconfig", c.name));
            c.write_kubeconfig(&path)?;
            Ok(path)
        })
        .collect()
}

async fn kubectl(args: Vec<String>) -> Result<()> {
    let out = tokio::process::Command::new("kubectl")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running kubectl")?;
    ensure!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// One `kubectl apply --server-side --force-conflicts` per app dir, 8 at a time.
async fn kubectl_loop(dir: &Path, kubeconfigs: &[PathBuf]) -> Result<Duration> {
    let start = Instant::now();
    futures::stream::iter((0..APPS).map(|i| {
        kubectl(vec![
            format!("--kubeconfig={}", kubeconfigs[i % CLUSTERS].display()),
            "apply".into(),
            "--server-side".into(),
            "--force-conflicts".into(),
            format!("--namespace={}", namespace_of(i)),
            "-f".into(),
            dir.join(app_name(i)).display().to_string(),
        ])
    }))
    .buffer_unordered(KUBECTL_PARALLEL)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(start.elapsed())
}

struct Baseline {
    cold: Duration,
    noop: Duration,
    bulk: Duration,
    bulk_cpu: CpuUsed,
    raw_create: Duration,
    raw_create_cpu: CpuUsed,
    raw_apply: Duration,
    raw_apply_cpu: CpuUsed,
    kubectl_version: String,
}

/// In-flight requests of the raw write loops.
const RAW_CONCURRENCY: usize = 32;

/// The same 5,000 objects written by a plain concurrent loop from this process (no
/// rendering, no diff, no status): creates, or server-side applies, into the
/// `prefix`-ed namespaces. The ceiling for any engine on these API servers.
async fn raw_write_loop(plane: &ControlPlane, prefix: &str, apply: bool) -> Result<Duration> {
    let mut clients = Vec::new();
    for cluster in plane.workloads() {
        clients.push(cluster.client().await?);
    }
    let mut objects = Vec::new();
    for i in 0..APPS {
        for (_, yaml) in app_manifests(i) {
            let object: DynamicObject = serde_yaml_ng::from_str(&yaml)?;
            objects.push((i, object));
        }
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let start = Instant::now();
    futures::stream::iter(objects.into_iter().map(|(i, object)| {
        let types = object.types.clone().unwrap_or_default();
        let resource = kube::discovery::ApiResource::from_gvk(
            &kube::api::GroupVersionKind::try_from(&types).expect("manifest apiVersion"),
        );
        let namespace = format!("{prefix}{}", namespace_of(i));
        let api: Api<DynamicObject> =
            Api::namespaced_with(clients[i % CLUSTERS].clone(), &namespace, &resource);
        let params = params.clone();
        async move {
            let name = object.metadata.name.clone().unwrap_or_default();
            if apply {
                api.patch(&name, &params, &Patch::Apply(&object)).await
            } else {
                api.create(&PostParams::default(), &object).await
            }
        }
    }))
    .buffer_unordered(RAW_CONCURRENCY)
    .try_collect::<Vec<_>>()
    .await
    .with_context(|| format!("raw write loop into {prefix}team-*"))?;
    Ok(start.elapsed())
}

/// The kubectl baselines, on their own control plane.
async fn baseline() -> Result<Baseline> {
    let plane = ControlPlane::start(CLUSTERS).await?;
    create_namespaces(&plane, &["", "bulk-", "raw-", "rawssa-"]).await?;
    let kubeconfigs = write_kubeconfigs(&plane)?;
    let dir = tempfile::tempdir()?;
    for i in 0..APPS {
        let app_dir = dir.path().join("apps").join(app_name(i));
        std::fs::create_dir_all(&app_dir)?;
        // The bulk copy names its namespace (one `-R` call spans all ten).
        let bulk_dir = dir
            .path()
            .join(format!("bulk-{}", i % CLUSTERS))
            .join(app_name(i));
        std::fs::create_dir_all(&bulk_dir)?;
        for (file, yaml) in app_manifests(i) {
            std::fs::write(app_dir.join(file), &yaml)?;
            let namespaced = yaml.replacen(
                "metadata:\n",
                &format!("metadata:\n  namespace: bulk-{}\n", namespace_of(i)),
                1,
            );
            std::fs::write(bulk_dir.join(file), namespaced)?;
        }
    }
    let kubectl_version = Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .and_then(|v| v["clientVersion"]["gitVersion"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());

    let cold = kubectl_loop(&dir.path().join("apps"), &kubeconfigs).await?;
    println!(
        "kubectl loop: {APPS} apps in {:.1} s ({:.0} apps/min)",
        cold.as_secs_f64(),
        per_minute(cold)
    );
    let noop = kubectl_loop(&dir.path().join("apps"), &kubeconfigs).await?;
    println!(
        "kubectl loop again (no change): {:.1} s ({:.0} apps/min)",
        noop.as_secs_f64(),
        per_minute(noop)
    );
    let cpu = CpuSnapshot::take(&plane.processes());
    let start = Instant::now();
    futures::future::try_join_all((0..CLUSTERS).map(|c| {
        kubectl(vec![
            format!("--kubeconfig={}", kubeconfigs[c].display()),
            "apply".into(),
            "--server-side".into(),
            "--force-conflicts".into(),
            "-R".into(),
            "-f".into(),
            dir.path().join(format!("bulk-{c}")).display().to_string(),
        ])
    }))
    .await?;
    let bulk = start.elapsed();
    let bulk_cpu = cpu.used_since();
    println!(
        "kubectl apply -R per cluster: {:.1} s ({:.0} apps/min); CPU: {}",
        bulk.as_secs_f64(),
        per_minute(bulk),
        bulk_cpu.describe(CPU_GROUPS)
    );
    let cpu = CpuSnapshot::take(&plane.processes());
    let raw_create = raw_write_loop(&plane, "raw-", false).await?;
    let raw_create_cpu = cpu.used_since();
    println!(
        "raw create loop: {} objects in {:.1} s ({:.0} apps/min); CPU: {}",
        APPS * 5,
        raw_create.as_secs_f64(),
        per_minute(raw_create),
        raw_create_cpu.describe(CPU_GROUPS)
    );
    let cpu = CpuSnapshot::take(&plane.processes());
    let raw_apply = raw_write_loop(&plane, "rawssa-", true).await?;
    let raw_apply_cpu = cpu.used_since();
    println!(
        "raw server-side apply loop: {} objects in {:.1} s ({:.0} apps/min); CPU: {}",
        APPS * 5,
        raw_apply.as_secs_f64(),
        per_minute(raw_apply),
        raw_apply_cpu.describe(CPU_GROUPS)
    );
    Ok(Baseline {
        cold,
        noop,
        bulk,
        bulk_cpu,
        raw_create,
        raw_create_cpu,
        raw_apply,
        raw_apply_cpu,
        kubectl_version,
    })
}

fn per_minute(d: Duration) -> f64 {
    APPS as f64 * 60.0 / d.as_secs_f64()
}

/// The engine's side: its own control plane, the repo and the Applications.
struct Engine {
    plane: ControlPlane,
    apps: Api<DynamicObject>,
    dir: tempfile::TempDir,
}

impl Engine {
    async fn start() -> Result<Engine> {
        let plane = ControlPlane::start(CLUSTERS).await?;
        let client = plane.management().client().await?;
        install_crds(&client).await?;
        prepare_namespace(&client).await?;
        for (c, cluster) in plane.workloads().iter().enumerate() {
            register_cluster(&client, &format!("w{c}"), cluster, &[]).await?;
        }
        create_namespaces(&plane, &[""]).await?;
        let dir = tempfile::tempdir()?;
        let entries: BTreeMap<String, TreeEntry> = (0..APPS)
            .flat_map(|i| {
                app_manifests(i).into_iter().map(move |(file, yaml)| {
                    (
                        format!("apps/{}/{file}", app_name(i)),
                        TreeEntry::File(yaml),
                    )
                })
            })
            .collect();
        write_tree_commit(&dir.path().join("fleet.git"), "refs/heads/main", &entries)
            .map_err(|e| anyhow::anyhow!(e))?;
        let apps: Api<DynamicObject> =
            Api::namespaced_with(client, ARGOCD_NAMESPACE, &application_resource());
        Ok(Engine { plane, apps, dir })
    }

    /// The 1,000 Applications, created directly (server-side apply, 16 in flight).
    async fn create_apps(&self) -> Result<Duration> {
        let servers: Vec<String> = self
            .plane
            .workloads()
            .iter()
            .map(|c| c.server.clone())
            .collect();
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let start = Instant::now();
        futures::stream::iter((0..APPS).map(|i| {
            let app: DynamicObject = serde_json::from_value(
                AppBuilder::new(app_name(i))
                    .source(REPO_URL, format!("apps/{}", app_name(i)))
                    .revision("main")
                    .server(&servers[i % CLUSTERS])
                    .destination_namespace(namespace_of(i))
                    .automated(true, true)
                    .json(),
            )
            .expect("benchmark Application");
            let (api, params) = (self.apps.clone(), params.clone());
            async move { api.patch(&app_name(i), &params, &Patch::Apply(&app)).await }
        }))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .context("creating the Applications")?;
        Ok(start.elapsed())
    }

    /// Starts the controller process; its log is `controller-<tag>.log`.
    fn spawn_controller(&self, tag: &str, port: u16) -> Result<ChildController> {
        let kubeconfig = self.plane.dir().join("bench-mgmt.kubeconfig");
        self.plane.management().write_kubeconfig(&kubeconfig)?;
        let settings = self.dir.path().join(format!("controller-{tag}.json"));
        std::fs::write(
            &settings,
            json!({
                "kubeconfig": kubeconfig,
                "repo": self.dir.path().join("fleet.git"),
                "cache": self.dir.path().join(format!("cache-{tag}")),
                "listen": format!("127.0.0.1:{port}"),
            })
            .to_string(),
        )?;
        let log = self.plane.dir().join(format!("controller-{tag}.log"));
        ChildController::spawn(CONTROLLER_ENV, &settings, log, port, TIMEOUT)
    }

    /// `(Synced apps, resourceVersion by app)` from one list of the API server.
    /// How many Applications are Synced, and each one's spec and status (what a sync or
    /// a status write would change; a refresh request changes only annotations).
    async fn synced(&self) -> Result<(usize, BTreeMap<String, String>)> {
        let list = self.apps.list(&ListParams::default()).await?;
        let synced = list
            .items
            .iter()
            .filter(|a| a.data.pointer("/status/sync/status") == Some(&json!("Synced")))
            .count();
        let states = list
            .items
            .into_iter()
            .map(|a| {
                let state = json!([a.data.get("spec"), a.data.get("status")]).to_string();
                (a.metadata.name.unwrap_or_default(), state)
            })
            .collect();
        Ok((synced, states))
    }

    /// Successful writes the controller (User-Agent `argosy/...`) made from `since` on,
    /// per cluster, refresh requests apart; `(cluster, verb resource[/subresource], count)`.
    fn controller_writes(&self, since: Timestamp) -> Result<Vec<(String, String, usize)>> {
        let mut out = Vec::new();
        for cluster in self.plane.clusters() {
            let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
            for e in self.plane.audit_writes(&cluster.name)? {
                if e.user_agent.starts_with("argosy/")
                    && e.received >= since
                    && e.succeeded()
                    && !is_refresh_request(&e)
                {
                    let what = match &e.subresource {
                        Some(sub) => format!("{} {}/{sub}", e.verb, e.resource.unwrap_or_default()),
                        None => format!("{} {}", e.verb, e.resource.unwrap_or_default()),
                    };
                    *by_kind.entry(what).or_default() += 1;
                }
            }
            out.extend(
                by_kind
                    .into_iter()
                    .map(|(what, n)| (cluster.name.clone(), what, n)),
            );
        }
        Ok(out)
    }
}

/// A refresh request or its removal (field manager `argosy-refresh`), not fleet state.
fn is_refresh_request(e: &argosy_tests::AuditEvent) -> bool {
    e.request_uri
        .contains(&format!("fieldManager={}", argosy::refresh::FIELD_MANAGER))
}

impl Engine {
    /// Refresh requests and their removals from `since` on.
    fn refresh_requests(&self, since: Timestamp) -> Result<usize> {
        Ok(self
            .plane
            .audit_writes(MANAGEMENT)?
            .iter()
            .filter(|e| e.received >= since && e.succeeded() && is_refresh_request(e))
            .count())
    }

    /// Status writes per Application from `since` on (patches by the controller).
    fn app_patches(&self, since: Timestamp) -> Result<BTreeMap<String, usize>> {
        let mut out: BTreeMap<String, usize> = BTreeMap::new();
        for e in self.plane.audit_writes(MANAGEMENT)? {
            if e.user_agent.starts_with("argosy/")
                && e.received >= since
                && e.resource.as_deref() == Some("applications")
                && !is_refresh_request(&e)
            {
                *out.entry(e.name.unwrap_or_default()).or_default() += 1;
            }
        }
        Ok(out)
    }

    /// Copies the controllers' logs out of the control plane's temp dir (removed on drop).
    fn keep_logs(&self) -> Result<PathBuf> {
        let dir = std::env::temp_dir().join("argosy-bench-sync");
        std::fs::create_dir_all(&dir)?;
        for tag in ["cold", "restart"] {
            let name = format!("controller-{tag}.log");
            std::fs::copy(self.plane.dir().join(&name), dir.join(&name))?;
        }
        Ok(dir)
    }
}

fn total(writes: &[(String, String, usize)]) -> usize {
    writes.iter().map(|(_, _, n)| n).sum()
}

fn describe(writes: &[(String, String, usize)]) -> String {
    if writes.is_empty() {
        return "none".to_owned();
    }
    writes
        .iter()
        .map(|(cluster, what, n)| format!("{cluster}: {n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
}

struct Resync {
    duration: Duration,
    writes: Vec<(String, String, usize)>,
    reconciles: u64,
}

async fn bench() -> Result<()> {
    // For profiling the engine: no baselines, nothing written to BENCHMARKS.md.
    let engine_only = std::env::var_os(ENGINE_ONLY_ENV).is_some();
    let base = if engine_only {
        None
    } else {
        Some(baseline().await?)
    };

    let engine = Engine::start().await?;
    let created = engine.create_apps().await?;
    println!(
        "{APPS} Applications created in {:.1} s",
        created.as_secs_f64()
    );

    // Cold sync: from the spawn until every app is Synced, followed through a watch of the
    // Applications started (and listed) before the spawn, as `kubectl get -w` would: one
    // event per status write. Polling instead would load what is measured: a list of
    // 1,000 Applications every 100 ms the API server, a `/metrics` scrape (one series
    // per Application) or the fleet summary (one matrix cell per Application) every
    // 100 ms the controller, 9 to 14% of its CPU in profiles. Confirmed at the end by one
    // list of the API server.
    let mut synced = synced_count(engine.apps.clone(), |app| {
        app.data.pointer("/status/sync/status") == Some(&json!("Synced"))
    })
    .await?;
    let cold_since = Timestamp::now();
    let mut processes = engine.plane.processes();
    processes.push(("bench".to_owned(), std::process::id().to_string()));
    let cpu = CpuSnapshot::take(&processes);
    let start = Instant::now();
    let mut controller = engine.spawn_controller("cold", free_port()?)?;
    let cpu = {
        let mut cpu = cpu;
        cpu.add("controller".to_owned(), controller.pid());
        cpu
    };
    let mut first_synced = None;
    let cold = loop {
        let now_synced = *synced.count.borrow_and_update();
        if now_synced > 0 && first_synced.is_none() {
            first_synced = Some(start.elapsed());
        }
        if now_synced >= APPS {
            break start.elapsed();
        }
        controller.check_running()?;
        ensure!(
            start.elapsed() < TIMEOUT,
            "{now_synced} of {APPS} apps Synced after {TIMEOUT:?}; see {}",
            controller.log.display()
        );
        // Woken by the watch; the timeout only re-checks that the controller still runs.
        if let Ok(changed) =
            tokio::time::timeout(Duration::from_secs(1), synced.count.changed()).await
        {
            changed.context("the watch of the Applications ended")?;
        }
    };
    drop(synced);
    ensure!(
        engine.synced().await?.0 >= APPS,
        "the watch saw {APPS} apps Synced, the API server's list does not"
    );
    let cold_cpu = cpu.used_since();
    let first_synced = first_synced.unwrap_or(cold);
    println!(
        "engine cold sync: {APPS} apps Synced in {:.1} s ({:.0} apps/min; first after {:.1} s); CPU: {}",
        cold.as_secs_f64(),
        per_minute(cold),
        first_synced.as_secs_f64(),
        cold_cpu.describe(ENGINE_CPU_GROUPS)
    );
    // Follow-up reconciles (watch events of the objects just applied) must settle first.
    let (settled_ok, settled_failed) = controller.settle(Duration::from_secs(5)).await?;
    let cold_writes = engine.controller_writes(cold_since)?;
    let rewritten: Vec<(String, usize)> = engine
        .app_patches(cold_since)?
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    println!(
        "cold sync: {} reconciles ({settled_failed} failed) until settled; controller writes: {}",
        settled_ok + settled_failed,
        describe(&cold_writes)
    );
    println!(
        "{} Applications had their status written more than once: {:?}",
        rewritten.len(),
        rewritten.iter().take(20).collect::<Vec<_>>()
    );

    // Full no-change resync: a push webhook for the repository (no new commit).
    let (_, states_before) = engine.synced().await?;
    let since = Timestamp::now();
    let start = Instant::now();
    let body = json!({"object_kind": "push", "project": {"git_http_url": REPO_URL}}).to_string();
    http_request(
        controller.port,
        "POST /api/webhook",
        &[
            ("Content-Type", "application/json"),
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", GITLAB_TOKEN),
        ],
        &body,
    )
    .await?;
    controller
        .wait_reconciles(settled_ok + settled_failed + APPS as u64)
        .await?;
    let duration = start.elapsed();
    let after = controller.settle(Duration::from_secs(3)).await?;
    let (synced_after, states_after) = engine.synced().await?;
    let changed = states_before
        .iter()
        .filter(|(name, state)| states_after.get(*name) != Some(*state))
        .count();
    let warm = Resync {
        duration,
        writes: engine.controller_writes(since)?,
        reconciles: after.0 + after.1 - settled_ok - settled_failed,
    };
    let requests = engine.refresh_requests(since)?;
    println!(
        "no-change resync: {:.2} s ({:.0} apps/min), {} reconciles, writes: {}, refresh requests set and removed: {requests}; {changed} Applications changed, {synced_after} Synced",
        warm.duration.as_secs_f64(),
        per_minute(warm.duration),
        warm.reconciles,
        describe(&warm.writes)
    );
    let rss = peak_rss_mib_of(&controller.pid());
    controller.stop()?;

    // Restart: a new process over the converged state.
    let since = Timestamp::now();
    let start = Instant::now();
    let mut controller = engine.spawn_controller("restart", free_port()?)?;
    controller.wait_listening().await?;
    controller.wait_reconciles(APPS as u64).await?;
    let restart_duration = start.elapsed();
    let after = controller.settle(Duration::from_secs(3)).await?;
    let restart = Resync {
        duration: restart_duration,
        writes: engine.controller_writes(since)?,
        reconciles: after.0 + after.1,
    };
    let restart_rss = peak_rss_mib_of(&controller.pid());
    println!(
        "restart: {APPS} reconciles in {:.1} s ({:.0} apps/min), {} reconciles until settled, writes: {}; peak RSS {restart_rss:.0} MiB",
        restart.duration.as_secs_f64(),
        per_minute(restart.duration),
        restart.reconciles,
        describe(&restart.writes)
    );
    controller.stop()?;

    // The raw SSA loop again, on the engine's own API servers right after its runs: this
    // machine's speed drifts by tens of percent between minutes, so the ratio to a loop run
    // in the same minutes says more about the engine than the one to the baseline's loop.
    create_namespaces(&engine.plane, &["rawssa-"]).await?;
    let cpu = CpuSnapshot::take(&engine.plane.processes());
    let adjacent_raw_apply = raw_write_loop(&engine.plane, "rawssa-", true).await?;
    let adjacent_raw_apply_cpu = cpu.used_since();
    println!(
        "raw server-side apply loop on the engine's API servers, right after: {:.1} s ({:.0} apps/min; cold sync {:.2}x of it); CPU: {}",
        adjacent_raw_apply.as_secs_f64(),
        per_minute(adjacent_raw_apply),
        adjacent_raw_apply.as_secs_f64() / cold.as_secs_f64(),
        adjacent_raw_apply_cpu.describe(CPU_GROUPS)
    );
    let logs = engine.keep_logs()?;
    println!(
        "controller peak RSS (cold sync + resync): {rss:.0} MiB; logs in {}",
        logs.display()
    );
    let Some(base) = base else {
        println!("{ENGINE_ONLY_ENV} is set: no baselines, BENCHMARKS.md not written");
        return Ok(());
    };

    let workload_writes: usize = cold_writes
        .iter()
        .filter(|(c, _, _)| c != MANAGEMENT)
        .map(|(_, _, n)| n)
        .sum();
    let mgmt_writes = cold_writes
        .iter()
        .filter(|(c, _, _)| c == MANAGEMENT)
        .map(|(_, what, n)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ");
    let ratio = |engine: Duration, kubectl: Duration| kubectl.as_secs_f64() / engine.as_secs_f64();
    let objects = APPS * 5;
    let controller_cpu = cold_cpu.of("controller");
    let cpu_rows = [
        (&base.bulk_cpu, CPU_GROUPS),
        (&base.raw_create_cpu, CPU_GROUPS),
        (&base.raw_apply_cpu, CPU_GROUPS),
        (&cold_cpu, ENGINE_CPU_GROUPS),
        (&adjacent_raw_apply_cpu, CPU_GROUPS),
    ]
    .iter()
    .map(|(used, groups)| used.describe(groups))
    .collect::<Vec<_>>()
    .join(" / ");
    let section = format!(
        "{}. `cargo bench -p argosy-tests --bench sync`: kube-apiserver v1.20.2 + etcd 3.4 on loopback \
         (one etcd, 4 API servers: management + 3 workload clusters), controller, API servers and kubectl \
         ({}) on the same 2 cores. {APPS} Applications (created directly, automated sync with prune and \
         selfHeal) x 5 objects (ConfigMap, Secret, Service, ServiceAccount, Deployment; plain directory \
         per app) spread round-robin over the 3 clusters, in 10 pre-created shared namespaces per \
         cluster (no `CreateNamespace`). The kubectl baselines run first on their own fresh control \
         plane; the engine gets a second fresh one. Ratio = engine apps/min / kubectl apps/min.\n\n\
         | measure | result | target / ratio |\n|---|---|---|\n\
         | baseline: `kubectl apply --server-side --force-conflicts -n NS -f <app dir>`, one per app, {KUBECTL_PARALLEL} in parallel | {:.1} s ({:.0} apps/min) | - |\n\
         | baseline: the same loop again, nothing changed | {:.1} s ({:.0} apps/min) | - |\n\
         | baseline: one `kubectl apply --server-side -R` per cluster (3 in parallel), fresh namespaces | {:.1} s ({:.0} apps/min) | - |\n\
         | baseline: the same {objects} objects by a plain concurrent create loop from Rust ({RAW_CONCURRENCY} in flight, no render, diff or status) | {:.1} s ({:.0} apps/min) | - |\n\
         | baseline: the same by a plain concurrent server-side-apply loop ({RAW_CONCURRENCY} in flight) | {:.1} s ({:.0} apps/min) | - |\n\
         | engine cold sync: controller process spawn -> all {APPS} Applications `Synced` (a watch of the Applications, then one API list) | {:.1} s ({:.0} apps/min; first app Synced after {:.1} s) | >= 5,000 apps/min; {:.2}x the kubectl loop, {:.2}x `apply -R`, {:.2}x the raw create loop, {:.2}x the raw SSA loop |\n\
         | the raw SSA loop again, on the engine's API servers right after the engine's runs (the machine's speed drifts between minutes) | {:.1} s ({:.0} apps/min) | engine cold sync {:.2}x of it |\n\
         | CPU seconds used during: `apply -R` / raw create loop / raw SSA loop / engine cold sync / raw SSA loop right after | {cpu_rows} | - |\n\
         | controller CPU per app (cold sync) and what it sustains on 2 cores of its own | {:.1} ms per app = {:.0} apps/min | >= 5,000 apps/min equivalent |\n\
         | controller writes during the cold sync | workload clusters: {workload_writes} ({:.1} per app); management: {mgmt_writes}; {} apps had their status written more than once | 5 per app |\n\
         | full no-change resync: push webhook (no new commit) -> {APPS} reconciles done (`/metrics`) | {:.2} s ({:.0} apps/min), {} reconciles | {:.2}x the no-change kubectl loop |\n\
         | writes during that resync (audit logs of all 4 API servers, User-Agent `argosy/`), refresh requests apart | {} ({changed} Applications with a changed spec or status; {requests} refresh requests set and removed) | 0 |\n\
         | restart over the converged state: new process spawn -> {APPS} reconciles done | {:.1} s ({:.0} apps/min), {} reconciles until settled | - |\n\
         | writes during the restart | {} | 0 |\n\
         | controller peak RSS (cold sync + resync process / restart process) | {rss:.0} MiB / {restart_rss:.0} MiB | - |\n\n\
         Notes: Argo CD publishes 190 to 1,250 apps/minute for 10,000 apps (its own figures, other \
         hardware, not re-measured here). The resync is triggered by a GitLab push webhook for the \
         fleet repository without a new commit: every Application deployed from it is re-checked \
         (render from Git, compare with the watch caches) and nothing may be written but the refresh \
         requests (Argo CD's `refresh` annotation, set for the push and removed by the controller, \
         counted apart); the Applications' spec and status are compared before and after. The \
         periodic resync is set to 1 h so it \
         stays out of the measured windows. {} failed reconciles during the cold sync.\n",
        machine(),
        base.kubectl_version,
        base.cold.as_secs_f64(),
        per_minute(base.cold),
        base.noop.as_secs_f64(),
        per_minute(base.noop),
        base.bulk.as_secs_f64(),
        per_minute(base.bulk),
        base.raw_create.as_secs_f64(),
        per_minute(base.raw_create),
        base.raw_apply.as_secs_f64(),
        per_minute(base.raw_apply),
        cold.as_secs_f64(),
        per_minute(cold),
        first_synced.as_secs_f64(),
        ratio(cold, base.cold),
        ratio(cold, base.bulk),
        ratio(cold, base.raw_create),
        ratio(cold, base.raw_apply),
        adjacent_raw_apply.as_secs_f64(),
        per_minute(adjacent_raw_apply),
        ratio(cold, adjacent_raw_apply),
        controller_cpu * 1e3 / APPS as f64,
        APPS as f64 * 60.0 * 2.0 / controller_cpu,
        workload_writes as f64 / APPS as f64,
        rewritten.len(),
        warm.duration.as_secs_f64(),
        per_minute(warm.duration),
        warm.reconciles,
        ratio(warm.duration, base.noop),
        total(&warm.writes),
        restart.duration.as_secs_f64(),
        per_minute(restart.duration),
        restart.reconciles,
        total(&restart.writes),
        settled_failed,
    );
    update_benchmarks_md("sync", "Sync engine on real API servers", &section);
    ensure!(
        total(&warm.writes) == 0 && total(&restart.writes) == 0 && changed == 0,
        "a no-change resync wrote: {} / {}",
        describe(&warm.writes),
        describe(&restart.writes)
    );
    Ok(())
}
