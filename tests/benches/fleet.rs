//! The fleet benchmark: 1,000 simulated clusters (`argosy_tests::fleet_sim`), run with
//! `cargo bench -p argosy-tests --bench fleet`. Per size (100, 300 and 1,000 clusters, 10
//! Applications per cluster, each of 5 objects: 4 ConfigMaps and a ServiceAccount, kinds
//! a bare API server holds without controllers), on a fresh control plane of one etcd, a
//! management API server and 3 workload API servers, each serving a third of the
//! simulated clusters:
//!
//! * setup: the simulated clusters' Secrets, 2 namespaces per cluster (5 apps in each),
//!   one Git repository with a directory per Application (distinct content per cluster),
//!   the Applications created directly (automated sync with prune and selfHeal);
//! * cold sync: from the controller process's spawn until a watch of the Applications
//!   sees all of them Synced; its writes from the audit logs (5 per app expected);
//! * full no-change resync: a new controller process over the converged fleet, until it
//!   has reconciled every Application; its writes from the audit logs of all API servers
//!   (must be 0);
//! * peak RSS of each of the two processes (a replica holding the whole fleet), and what
//!   its live cache reports on `/metrics` (objects, JSON bytes, watches per scope);
//! * a plain server-side-apply loop of the same objects (32 in flight, one client per API
//!   server) into other namespaces of the same simulated clusters, on the same API servers
//!   right after the engine's runs (the machine's speed drifts between minutes).
//!
//! `ARGOSY_BENCH_FLEET_SIZES=100` (comma-separated cluster counts) runs other sizes and
//! leaves BENCHMARKS.md alone.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use argosy::run::SyncEngine;
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, application_resource, install_crds, prepare_namespace, run_args,
};
use argosy_tests::bench::{
    ChildController, CpuSnapshot, CpuUsed, load_average, machine, peak_rss_mib_of, synced_count,
    update_benchmarks_md,
};
use argosy_tests::fixtures::{AppBuilder, free_port};
use argosy_tests::fleet_sim::{FleetSim, SimCluster};
use argosy_tests::{ControlPlane, MANAGEMENT};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const SIZES: [usize; 3] = [100, 300, 1_000];
const SIZES_ENV: &str = "ARGOSY_BENCH_FLEET_SIZES";
const APPS_PER_CLUSTER: usize = 10;
const OBJECTS_PER_APP: usize = 5;
/// Namespaces per simulated cluster the apps deploy to (apps alternate between them).
const NAMESPACE_SUFFIXES: [&str; 2] = ["a", "b"];
/// Workload API servers the simulated clusters are spread over.
const API_SERVERS: usize = 3;
const REPO_URL: &str = "https://git.example.com/platform/fleet.git";
/// Path of the child's settings (JSON); its presence makes this binary the controller.
const CONTROLLER_ENV: &str = "ARGOSY_BENCH_FLEET_CONTROLLER";
const TIMEOUT: Duration = Duration::from_secs(1800);
const FIELD_MANAGER: &str = "bench";
/// In-flight requests of the setup and of the plain SSA loop.
const CONCURRENCY: usize = 32;
const RSS_TARGET_MIB: f64 = 400.0;
const CPU_GROUPS: &[&str] = &[
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
        println!("fleet benchmark: run with `cargo bench`");
        return Ok(());
    }
    runtime.block_on(bench())
}

/// The child: `argosy run --sync-engine argosy` as the CLI sets it up, with the fleet
/// repository served from a local path, `/metrics` on `listen`, and a periodic resync
/// long enough to stay out of the way.
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
    let mut args = run_args(&text("identity"), PathBuf::from(text("cache")));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([(REPO_URL.to_owned(), PathBuf::from(text("repo")))]);
    args.sync.resync = Duration::from_secs(3600);
    args.listen = Some(text("listen").parse()?);
    let shutdown = async {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
        }
    };
    argosy::run::run_with(client, args, shutdown).await
}

/// Application `k` of simulated cluster `cluster`.
fn app_name(cluster: &SimCluster, k: usize) -> String {
    format!("{}-app-{k}", cluster.name)
}

/// The namespace of application `k` (`prefix` "" for the engine's, "raw-" for the loop's).
fn namespace_of(cluster: &SimCluster, prefix: &str, k: usize) -> String {
    cluster.namespace(&format!(
        "{prefix}{}",
        NAMESPACE_SUFFIXES[k % NAMESPACE_SUFFIXES.len()]
    ))
}

fn app_dir(cluster: &SimCluster, k: usize) -> String {
    format!("clusters/{}/app-{k}", cluster.name)
}

/// The 5 manifests of application `k` of `cluster` (file name, YAML), without a namespace.
fn app_manifests(cluster: &SimCluster, k: usize) -> Vec<(&'static str, String)> {
    let name = format!("app-{k}");
    let customer = &cluster.name;
    let labels = format!(
        "  labels:\n    app.kubernetes.io/name: {name}\n    app.kubernetes.io/part-of: fleet\n    customer: {customer}\n"
    );
    let config_map = |suffix: &str, data: String| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-{suffix}\n{labels}data:\n{data}"
        )
    };
    vec![
        (
            "config.yaml",
            config_map(
                "config",
                format!(
                    "  LOG_LEVEL: info\n  app.properties: |\n    server.port=8080\n    customer={customer}\n"
                ),
            ),
        ),
        (
            "features.yaml",
            config_map(
                "features",
                "  FEATURES: \"search,export\"\n  BETA: \"false\"\n".to_owned(),
            ),
        ),
        (
            "routes.yaml",
            config_map(
                "routes",
                format!(
                    "  routes.yaml: |\n    - path: /api\n      backend: {name}:8080\n    - path: /\n      backend: web:80\n"
                ),
            ),
        ),
        (
            "limits.yaml",
            config_map(
                "limits",
                "  MAX_CONNECTIONS: \"100\"\n  TIMEOUT_SECONDS: \"30\"\n".to_owned(),
            ),
        ),
        (
            "serviceaccount.yaml",
            format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n{labels}"),
        ),
    ]
}

/// One size's control plane, simulated clusters and Applications.
struct Fleet {
    plane: ControlPlane,
    sim: FleetSim,
    apps: Api<DynamicObject>,
    dir: tempfile::TempDir,
}

impl Fleet {
    fn app_count(&self) -> usize {
        self.sim.clusters().len() * APPS_PER_CLUSTER
    }

    async fn start(clusters: usize) -> Result<Fleet> {
        let plane = ControlPlane::start(API_SERVERS).await?;
        let client = plane.management().client().await?;
        install_crds(&client).await?;
        prepare_namespace(&client).await?;
        let sim = FleetSim::start(&plane, clusters).await?;
        let began = Instant::now();
        sim.register_all(&client).await?;
        println!(
            "{clusters} cluster Secrets registered in {:.1} s",
            began.elapsed().as_secs_f64()
        );
        // Namespaces, created directly on each API server.
        let mut backings: BTreeMap<String, Client> = BTreeMap::new();
        for cluster in plane.workloads() {
            backings.insert(cluster.name.clone(), cluster.client().await?);
        }
        let namespaces: Vec<(Client, String)> = sim
            .clusters()
            .iter()
            .flat_map(|c| {
                let client = backings[&c.backing.name].clone();
                ["", "raw-"].into_iter().flat_map(move |prefix| {
                    let client = client.clone();
                    NAMESPACE_SUFFIXES
                        .iter()
                        .map(move |s| (client.clone(), c.namespace(&format!("{prefix}{s}"))))
                })
            })
            .collect();
        futures::stream::iter(namespaces.into_iter().map(|(client, name)| async move {
            let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
            Api::<Namespace>::all(client)
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER),
                    &Patch::Apply(&ns),
                )
                .await?;
            anyhow::Ok(())
        }))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .context("creating namespaces")?;
        let dir = tempfile::tempdir()?;
        let entries: BTreeMap<String, TreeEntry> = sim
            .clusters()
            .iter()
            .flat_map(|c| (0..APPS_PER_CLUSTER).map(move |k| (c, k)))
            .flat_map(|(c, k)| {
                app_manifests(c, k).into_iter().map(move |(file, yaml)| {
                    (format!("{}/{file}", app_dir(c, k)), TreeEntry::File(yaml))
                })
            })
            .collect();
        write_tree_commit(&dir.path().join("fleet.git"), "refs/heads/main", &entries)
            .map_err(|e| anyhow::anyhow!(e))?;
        let apps: Api<DynamicObject> =
            Api::namespaced_with(client, ARGOCD_NAMESPACE, &application_resource());
        Ok(Fleet {
            plane,
            sim,
            apps,
            dir,
        })
    }

    /// The Applications, created directly (server-side apply, 32 in flight).
    async fn create_apps(&self) -> Result<Duration> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let start = Instant::now();
        let all: Vec<(&SimCluster, usize)> = self
            .sim
            .clusters()
            .iter()
            .flat_map(|c| (0..APPS_PER_CLUSTER).map(move |k| (c, k)))
            .collect();
        futures::stream::iter(all.into_iter().map(|(c, k)| {
            let name = app_name(c, k);
            let app: DynamicObject = serde_json::from_value(
                AppBuilder::new(&name)
                    .source(REPO_URL, app_dir(c, k))
                    .revision("main")
                    .server(&c.server)
                    .destination_namespace(namespace_of(c, "", k))
                    .automated(true, true)
                    .json(),
            )
            .expect("benchmark Application");
            let (api, params) = (self.apps.clone(), params.clone());
            async move { api.patch(&name, &params, &Patch::Apply(&app)).await }
        }))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .context("creating the Applications")?;
        Ok(start.elapsed())
    }

    fn spawn_controller(&self, tag: &str, identity: &str) -> Result<ChildController> {
        let kubeconfig = self.plane.dir().join("bench-mgmt.kubeconfig");
        self.plane.management().write_kubeconfig(&kubeconfig)?;
        let settings = self.dir.path().join(format!("controller-{tag}.json"));
        let port = free_port()?;
        std::fs::write(
            &settings,
            json!({
                "kubeconfig": kubeconfig,
                "repo": self.dir.path().join("fleet.git"),
                "cache": self.dir.path().join(format!("cache-{tag}")),
                "listen": format!("127.0.0.1:{port}"),
                "identity": identity,
            })
            .to_string(),
        )?;
        let log = self.plane.dir().join(format!("controller-{tag}.log"));
        ChildController::spawn(CONTROLLER_ENV, &settings, log, port, TIMEOUT)
    }

    /// How many Applications are Synced (one list).
    async fn synced(&self) -> Result<usize> {
        let list = self.apps.list(&ListParams::default()).await?;
        Ok(list.items.iter().filter(|a| is_synced(a)).count())
    }

    /// Successful writes by the controller (User-Agent `argosy/`) from `since` on:
    /// `(on the workload API servers, on the management API server)`.
    fn controller_writes(&self, since: Timestamp) -> Result<(usize, usize)> {
        let mut counts = (0, 0);
        for cluster in self.plane.clusters() {
            let n = self
                .plane
                .argosy_writes(&cluster.name)?
                .iter()
                .filter(|e| e.received >= since && e.succeeded())
                .count();
            if cluster.name == MANAGEMENT {
                counts.1 += n;
            } else {
                counts.0 += n;
            }
        }
        Ok(counts)
    }

    fn processes(&self) -> Vec<(String, String)> {
        let mut processes = self.plane.processes();
        processes.push(("bench".to_owned(), std::process::id().to_string()));
        processes
    }

    /// The same objects, server-side applied by a plain loop (32 in flight) into the
    /// simulated clusters' `raw-` namespaces, one client per API server (as a plain
    /// loop would; through 300 simulated addresses, one client each, a run failed with
    /// an error that said nothing, not looked into yet).
    async fn raw_apply_loop(&self) -> Result<Duration> {
        let mut backings: BTreeMap<String, Client> = BTreeMap::new();
        for cluster in self.plane.workloads() {
            backings.insert(cluster.name.clone(), cluster.client().await?);
        }
        let clients: Vec<Client> = self
            .sim
            .clusters()
            .iter()
            .map(|c| backings[&c.backing.name].clone())
            .collect();
        let mut objects = Vec::new();
        for (i, c) in self.sim.clusters().iter().enumerate() {
            for k in 0..APPS_PER_CLUSTER {
                for (_, yaml) in app_manifests(c, k) {
                    let object: DynamicObject = serde_yaml_ng::from_str(&yaml)?;
                    objects.push((i, namespace_of(c, "raw-", k), object));
                }
            }
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let start = Instant::now();
        futures::stream::iter(objects.into_iter().map(|(i, namespace, object)| {
            let types = object.types.clone().unwrap_or_default();
            let resource = kube::discovery::ApiResource::from_gvk(
                &kube::api::GroupVersionKind::try_from(&types).expect("manifest apiVersion"),
            );
            let api: Api<DynamicObject> =
                Api::namespaced_with(clients[i].clone(), &namespace, &resource);
            let params = params.clone();
            async move {
                let name = object.metadata.name.clone().unwrap_or_default();
                api.patch(&name, &params, &Patch::Apply(&object))
                    .await
                    .map_err(|e| anyhow::anyhow!("{namespace}/{name}: {e:?}"))
            }
        }))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .context("raw server-side apply loop")?;
        Ok(start.elapsed())
    }
}

fn is_synced(app: &DynamicObject) -> bool {
    app.data.pointer("/status/sync/status") == Some(&json!("Synced"))
}

fn per_minute(apps: usize, d: Duration) -> f64 {
    apps as f64 * 60.0 / d.as_secs_f64()
}

/// What the live cache reports on `/metrics`, summed over clusters.
#[derive(Debug, Default, Clone, Copy)]
struct CacheTotals {
    objects: f64,
    bytes: f64,
    namespace_watches: f64,
    cluster_watches: f64,
}

fn cache_totals(metrics: &str) -> CacheTotals {
    let mut t = CacheTotals::default();
    for line in metrics.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if series.starts_with("argosy_cluster_cache_objects{") {
            t.objects += value;
        } else if series.starts_with("argosy_cluster_cache_bytes{") {
            t.bytes += value;
        } else if series.starts_with("argosy_cluster_watches{") {
            if series.contains("scope=\"cluster\"") {
                t.cluster_watches += value;
            } else {
                t.namespace_watches += value;
            }
        }
    }
    t
}

/// One size's results.
struct SizeResult {
    clusters: usize,
    apps: usize,
    setup: Duration,
    cold: Duration,
    first_synced: Duration,
    cold_cpu: CpuUsed,
    cold_writes: (usize, usize),
    cold_rss: f64,
    resync: Duration,
    resync_reconciles: u64,
    resync_writes: (usize, usize),
    resync_rss: f64,
    cache: CacheTotals,
    raw: Duration,
    raw_cpu: CpuUsed,
    load: String,
}

async fn run_size(clusters: usize) -> Result<SizeResult> {
    let load = load_average();
    let began = Instant::now();
    let fleet = Fleet::start(clusters).await?;
    let created = fleet.create_apps().await?;
    let apps = fleet.app_count();
    let setup = began.elapsed();
    println!(
        "[{clusters} clusters] setup {:.1} s ({apps} Applications created in {:.1} s)",
        setup.as_secs_f64(),
        created.as_secs_f64()
    );

    // Cold sync, followed by a watch of the Applications started before the spawn.
    let mut synced = synced_count(fleet.apps.clone(), is_synced).await?;
    let cold_since = Timestamp::now();
    let cpu = CpuSnapshot::take(&fleet.processes());
    let start = Instant::now();
    let mut controller = fleet.spawn_controller("cold", "replica-0")?;
    let mut cpu = cpu;
    cpu.add("controller".to_owned(), controller.pid());
    let mut first_synced = None;
    let cold = loop {
        let now_synced = *synced.count.borrow_and_update();
        if now_synced > 0 && first_synced.is_none() {
            first_synced = Some(start.elapsed());
        }
        if now_synced >= apps {
            break start.elapsed();
        }
        controller.check_running()?;
        ensure!(
            start.elapsed() < TIMEOUT,
            "{now_synced} of {apps} apps Synced after {TIMEOUT:?}; see {}",
            controller.log.display()
        );
        if let Ok(changed) =
            tokio::time::timeout(Duration::from_secs(1), synced.count.changed()).await
        {
            changed.context("the watch of the Applications ended")?;
        }
    };
    drop(synced);
    let cold_cpu = cpu.used_since();
    ensure!(
        fleet.synced().await? >= apps,
        "the watch saw {apps} apps Synced, the API server's list does not"
    );
    println!(
        "[{clusters} clusters] cold sync: {apps} apps Synced in {:.1} s ({:.0} apps/min); CPU: {}",
        cold.as_secs_f64(),
        per_minute(apps, cold),
        cold_cpu.describe(CPU_GROUPS)
    );
    let settled = controller.settle(Duration::from_secs(5)).await?;
    let cold_writes = fleet.controller_writes(cold_since)?;
    let cold_rss = peak_rss_mib_of(&controller.pid());
    println!(
        "[{clusters} clusters] settled after {} reconciles; writes: {} workload, {} management; peak RSS {cold_rss:.0} MiB",
        settled.0 + settled.1,
        cold_writes.0,
        cold_writes.1
    );
    controller.stop()?;

    // Full no-change resync: a new replica over the converged fleet.
    let since = Timestamp::now();
    let start = Instant::now();
    let mut controller = fleet.spawn_controller("resync", "replica-0")?;
    controller.wait_listening().await?;
    controller.wait_reconciles(apps as u64).await?;
    let resync = start.elapsed();
    let after = controller.settle(Duration::from_secs(5)).await?;
    let resync_writes = fleet.controller_writes(since)?;
    let cache = cache_totals(&controller.metrics().await?);
    let resync_rss = peak_rss_mib_of(&controller.pid());
    println!(
        "[{clusters} clusters] no-change resync: {apps} reconciles in {:.1} s, {} until settled; writes: {} workload, {} management; peak RSS {resync_rss:.0} MiB; cache {cache:?}",
        resync.as_secs_f64(),
        after.0 + after.1,
        resync_writes.0,
        resync_writes.1
    );
    controller.stop()?;

    let cpu = CpuSnapshot::take(&fleet.processes());
    let raw = fleet.raw_apply_loop().await?;
    let raw_cpu = cpu.used_since();
    println!(
        "[{clusters} clusters] plain SSA loop: {} objects in {:.1} s ({:.0} apps/min); CPU: {}",
        apps * OBJECTS_PER_APP,
        raw.as_secs_f64(),
        per_minute(apps, raw),
        raw_cpu.describe(CPU_GROUPS)
    );
    Ok(SizeResult {
        clusters,
        apps,
        setup,
        cold,
        first_synced: first_synced.unwrap_or(cold),
        cold_cpu,
        cold_writes,
        cold_rss,
        resync,
        resync_reconciles: after.0 + after.1,
        resync_writes,
        resync_rss,
        cache,
        raw,
        raw_cpu,
        load,
    })
}

async fn bench() -> Result<()> {
    let custom = std::env::var(SIZES_ENV).ok();
    let sizes: Vec<usize> = match &custom {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{SIZES_ENV}={list}"))?,
        None => SIZES.to_vec(),
    };
    let mut results = Vec::new();
    for clusters in sizes {
        results.push(run_size(clusters).await?);
    }
    if custom.is_some() {
        println!("{SIZES_ENV} is set: BENCHMARKS.md not written");
    } else {
        update_benchmarks_md("fleet", "A fleet of simulated clusters", &section(&results));
    }
    for r in &results {
        ensure!(
            r.resync_writes == (0, 0),
            "the no-change resync of {} clusters wrote {:?}",
            r.clusters,
            r.resync_writes
        );
    }
    Ok(())
}

fn section(results: &[SizeResult]) -> String {
    let mut rows = String::new();
    for r in results {
        let ratio = r.raw.as_secs_f64() / r.cold.as_secs_f64();
        rows.push_str(&format!(
            "| {} | {} | {} | {:.1} s ({:.0} apps/min; first after {:.1} s) | {:.1} s ({:.0} apps/min) | {ratio:.2}x | {} / {} ({:.1} per app) | {:.1} s, {} reconciles, {} writes | {:.0} / {:.0} MiB | {:.0} objects, {:.1} MiB of JSON, {:.0} + {:.0} watches | {:.1} s / {:.1} s / {:.1} s | {} |\n",
            r.clusters,
            r.apps,
            r.apps * OBJECTS_PER_APP,
            r.cold.as_secs_f64(),
            per_minute(r.apps, r.cold),
            r.first_synced.as_secs_f64(),
            r.raw.as_secs_f64(),
            per_minute(r.apps, r.raw),
            r.cold_writes.0,
            r.cold_writes.1,
            r.cold_writes.0 as f64 / r.apps as f64,
            r.resync.as_secs_f64(),
            r.resync_reconciles,
            r.resync_writes.0 + r.resync_writes.1,
            r.cold_rss,
            r.resync_rss,
            r.cache.objects,
            r.cache.bytes / (1024.0 * 1024.0),
            r.cache.namespace_watches,
            r.cache.cluster_watches,
            r.cold_cpu.of("controller"),
            r.cold_cpu.of("kube-apiserver"),
            r.raw_cpu.of("kube-apiserver"),
            r.load,
        ));
    }
    let largest = results.last();
    let verdict = largest.map_or(String::new(), |r| {
        let peak = r.cold_rss.max(r.resync_rss);
        format!(
            "Peak RSS of one replica holding all {} clusters: {peak:.0} MiB (target <= {RSS_TARGET_MIB:.0} MiB: {}). Setup of that size (control plane, cluster Secrets, namespaces, repository, Applications) took {:.0} s.\n\n",
            r.clusters,
            if peak <= RSS_TARGET_MIB { "met" } else { "missed" },
            r.setup.as_secs_f64()
        )
    });
    format!(
        "{}. `cargo bench -p argosy-tests --bench fleet`: kube-apiserver v1.20.2 + etcd 3.4 on loopback \
         (one etcd; a management API server and {API_SERVERS} workload API servers), controller, API servers \
         and the benchmark on the same 2 cores. Simulated clusters (`argosy_tests::fleet_sim`): each has \
         its own loopback address (`127.1.X.Y`) forwarded by the benchmark process to one of the \
         {API_SERVERS} workload API servers, its own cluster Secret (TLS verified with `serverName`) \
         and its own 2 namespaces; {APPS_PER_CLUSTER} Applications per cluster (automated sync, prune, \
         selfHeal; a directory per app in one Git repository), 5 apps per namespace, each of \
         {OBJECTS_PER_APP} objects (4 ConfigMaps, 1 ServiceAccount). One controller process \
         (defaults: 16 workers, `--watch-namespaces-max 20`).\n\n\
         | clusters | Applications | objects | cold sync: spawn -> all Synced | plain SSA loop, same objects, same API servers, right after | SSA loop time / cold sync time | controller writes in the cold sync: workload / management | no-change resync: a new process over the converged fleet, until every app is reconciled; its writes (audit logs) | peak RSS: cold sync process / resync process | live cache after the resync (`/metrics`): objects, JSON size, watches per namespace + cluster-wide | CPU: controller / API servers during the cold sync / API servers during the SSA loop | 1-min load at start |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n{rows}\n{verdict}\
         Notes: the SSA loop writes the same objects into other namespaces of the same \
         simulated clusters (5 writes per app, 32 in flight, one client per API server, no \
         render, diff or status), after the \
         engine's runs on the same API servers. Management writes in the cold sync are the \
         Applications' status patches and Events. What the simulation does not model is listed \
         in `tests/src/fleet_sim.rs`: the simulated clusters of one API server share its CPU, \
         watch cache and etcd, one CA and token serve all, there is no network latency, and all \
         run the same Kubernetes version.\n",
        machine(),
    )
}
