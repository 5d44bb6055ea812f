//! Controller benchmark against the real API server (issue: controller), run with
//! `cargo bench -p argosy-tests --bench controller`. All in one run:
//!
//! * baselines: a plain concurrent create loop of 10,000 Application objects (32 in
//!   flight), the raw API-server write rate on this machine, and a plain concurrent
//!   server-side-apply loop of the same objects owned by an ApplicationSet (the write the
//!   controller makes), and that loop again while a watch of its objects runs (as any
//!   controller's informer);
//! * cold create: one ApplicationSet whose List generator has 10,000 elements, from
//!   `kubectl apply` of the ApplicationSet until all 10,000 Applications exist;
//! * no-op reconcile: with everything converged, a touch of the ApplicationSet triggers a
//!   reconcile; its duration (from the controller's own log) and the writes it made
//!   (from the API server's audit log: must be 0);
//! * the controller process's peak RSS.
//!
//! The controller runs as a child process (this binary re-executed) so its RSS is its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use argosy::appset::plan::owner_reference;
use argosy_crds::Application;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, apply_json, appset_manifest, appset_resource, install_crds,
    prepare_namespace, run_args,
};
use argosy_tests::bench::{CpuSnapshot, machine, peak_rss_mib_of, update_benchmarks_md};
use argosy_tests::fixtures::AppBuilder;
use argosy_tests::{ControlPlane, MANAGEMENT};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;

const APPS: usize = 10_000;
const CONCURRENCY: usize = 32;
/// The uid of the (absent) ApplicationSet owning the server-side-apply baseline's objects.
const BENCH_UID: &str = "0b0d0000-0000-4000-8000-000000000001";
const CONTROLLER_ENV: &str = "ARGOSY_BENCH_CONTROLLER_KUBECONFIG";
/// Process groups of the CPU accounting, by label prefix.
const CPU_GROUPS: &[&str] = &["controller", "kube-apiserver", "etcd"];

fn main() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    if let Ok(kubeconfig) = std::env::var(CONTROLLER_ENV) {
        return runtime.block_on(controller_process(PathBuf::from(kubeconfig)));
    }
    // `cargo test --all-targets` runs this binary without `--bench`: measure nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("controller benchmark: run with `cargo bench`");
        return Ok(());
    }
    runtime.block_on(bench())
}

/// The child: an Argosy controller from a kubeconfig, until SIGTERM.
async fn controller_process(kubeconfig: PathBuf) -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ARGOSY_LOG"))
        .init();
    let config = kube::config::Kubeconfig::read_from(&kubeconfig)?;
    let mut config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(argosy::run::USER_AGENT),
    ));
    let client = Client::try_from(config)?;
    let mut args = run_args("bench", std::env::temp_dir().join("argosy-bench-repos"));
    args.concurrent_writes = CONCURRENCY;
    let shutdown = async {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
        }
    };
    argosy::run::run_with(client, args, shutdown).await
}

fn app_object(i: usize, namespace: &str) -> Application {
    AppBuilder::new(format!("app-{i:05}"))
        .namespace(namespace)
        .label("customer", format!("customer-{}", i % 500))
        .finalizer("resources-finalizer.argocd.argoproj.io")
        .source(
            "https://git.example.com/fleet.git",
            format!("apps/app-{i:05}"),
        )
        .revision("HEAD")
        .server("https://kubernetes.default.svc")
        .destination_namespace(format!("ns-{}", i % 100))
        .build()
        .expect("benchmark Application")
}

async fn bench() -> Result<()> {
    let plane = ControlPlane::start(0).await?;
    let mgmt = plane.management();
    let client = mgmt.client().await?;
    install_crds(&client).await?;
    prepare_namespace(&client).await?;

    // Baseline: the same objects, created by a plain concurrent loop.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "raw"}}))?,
        )
        .await?;
    let raw_api: Api<Application> = Api::namespaced(client.clone(), "raw");
    let cpu = CpuSnapshot::take(&plane.processes());
    let start = Instant::now();
    futures::stream::iter((0..APPS).map(|i| {
        let api = raw_api.clone();
        async move {
            api.create(&PostParams::default(), &app_object(i, "raw"))
                .await
        }
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect::<Vec<_>>()
    .await
    .context("baseline create loop")?;
    let raw = start.elapsed();
    let raw_cpu = cpu.used_since();
    let raw_rate = APPS as f64 / raw.as_secs_f64();
    println!(
        "baseline: {APPS} creates in {:.1} s ({raw_rate:.0}/s)",
        raw.as_secs_f64()
    );

    // Second baseline: the same objects by a plain concurrent server-side-apply loop,
    // the write the controller makes (SSA costs the API server more than a create).
    let (raw_ssa, raw_ssa_cpu) = ssa_loop(&plane, &client, "raw-ssa", false).await?;
    let ssa_rate = APPS as f64 / raw_ssa.as_secs_f64();
    println!(
        "baseline: {APPS} server-side applies in {:.1} s ({ssa_rate:.0}/s)",
        raw_ssa.as_secs_f64()
    );
    // Third: the same loop while a watch of those objects runs, as any controller's
    // informer does (the API server encodes every write once more, for the watch).
    let (watched_ssa, watched_ssa_cpu) = ssa_loop(&plane, &client, "raw-ssa-watched", true).await?;
    let watched_rate = APPS as f64 / watched_ssa.as_secs_f64();
    println!(
        "baseline: {APPS} server-side applies, watched, in {:.1} s ({watched_rate:.0}/s)",
        watched_ssa.as_secs_f64()
    );

    // The controller, as its own process.
    let kubeconfig = plane.dir().join("bench-mgmt.kubeconfig");
    mgmt.write_kubeconfig(&kubeconfig)?;
    let log = plane.dir().join("controller.log");
    let mut controller = spawn_controller(&kubeconfig, &log)?;
    let pid = controller.id().to_string();
    let mut processes = plane.processes();
    processes.push(("controller".to_owned(), pid.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let elements: Vec<_> = (0..APPS).map(|i| json!({"i": format!("{i:05}"), "customer": format!("customer-{}", i % 500), "ns": format!("ns-{}", i % 100)})).collect();
    let spec = json!({
        "goTemplate": true,
        "generators": [{"list": {"elements": elements}}],
        "template": {
            "metadata": {"name": "app-{{.i}}", "labels": {"customer": "{{.customer}}"}},
            "spec": {"project": "default",
                     "source": {"repoURL": "https://git.example.com/fleet.git", "targetRevision": "HEAD", "path": "apps/app-{{.i}}"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "{{.ns}}"}}
        }
    });
    // Counted by asking etcd every 100 ms how many Application keys it holds: a list of
    // 10,000 objects, or a watch delivering each of them, would load the API server being
    // measured (the raw loops run unobserved).
    let app_keys = format!(
        "{}/argoproj.io/applications/{ARGOCD_NAMESPACE}/",
        mgmt.etcd_prefix
    );
    let cpu = CpuSnapshot::take(&processes);
    let start = Instant::now();
    apply_json(&client, &appset_resource(), appset_manifest("bench", spec)).await?;
    let cold = loop {
        if plane.etcd_count(&app_keys).await? >= APPS as u64 {
            break start.elapsed();
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!("controller did not create {APPS} Applications in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let cold_cpu = cpu.used_since();
    println!(
        "controller cold create CPU: {}",
        cold_cpu.describe(CPU_GROUPS)
    );
    let cold_rate = APPS as f64 / cold.as_secs_f64();
    println!(
        "controller: {APPS} Applications in {:.1} s ({cold_rate:.0}/s, {:.2}x raw)",
        cold.as_secs_f64(),
        cold_rate / raw_rate
    );

    // Let follow-up reconciles (status, the Application events) settle, then touch.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let touched_at = Instant::now();
    let since = k8s_openapi::jiff::Timestamp::now();
    let log_before = std::fs::read_to_string(&log).unwrap_or_default().len();
    let appsets: Api<argosy_crds::ApplicationSet> =
        Api::namespaced(client.clone(), ARGOCD_NAMESPACE);
    appsets
        .patch(
            "bench",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"annotations": {"bench/touch": "1"}}})),
        )
        .await?;
    let noop_ms = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(ms) = text.get(log_before..).and_then(last_reconcile_ms) {
            break ms;
        }
        if touched_at.elapsed() > Duration::from_secs(60) {
            bail!("no reconcile logged after the touch; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes = plane
        .audit_writes(MANAGEMENT)?
        .into_iter()
        .filter(|e| e.user_agent.starts_with("argosy/") && e.received >= since)
        .count();
    let rss = peak_rss_mib_of(&pid);
    println!("no-op reconcile: {noop_ms:.0} ms, {writes} writes; controller peak RSS {rss:.0} MiB");
    stop(&mut controller);

    let controller_cpu = cold_cpu.of("controller");
    let controller_capacity = APPS as f64 * 2.0 / controller_cpu;
    let section = format!(
        "{}. `cargo bench -p argosy-tests --bench controller`: kube-apiserver v1.20.2 + etcd 3.4 on loopback, \
         controller and API server on the same 2 cores.\n\n\
         | benchmark | result | target | baseline (same run) | ratio |\n|---|---|---|---|---|\n\
         | cold create of {APPS} Applications from one ApplicationSet (List generator, goTemplate; {CONCURRENCY} writes in flight) | {:.1} s ({cold_rate:.0}/s) | >= 0.8x raw | plain concurrent create loop ({CONCURRENCY} in flight): {:.1} s ({raw_rate:.0}/s) | {:.2}x |\n\
         | same cold create, against a plain concurrent server-side-apply loop of the same objects (owned by an ApplicationSet, like the controller's) | {:.1} s ({cold_rate:.0}/s) | - | SSA loop ({CONCURRENCY} in flight): {:.1} s ({ssa_rate:.0}/s) | {:.2}x |\n\
         | same cold create, against that SSA loop with a watch of its objects running (what any controller's informer costs the API server) | {:.1} s ({cold_rate:.0}/s) | - | watched SSA loop ({CONCURRENCY} in flight): {:.1} s ({watched_rate:.0}/s) | {:.2}x |\n\
         | CPU seconds used during: raw create loop / SSA loop / watched SSA loop / controller cold create (the controller's CPU counts from its spawn, 2 s before the ApplicationSet is applied) | {} / {} / {} / {} | - | - | - |\n\
         | controller CPU per Application created, and what it sustains on 2 cores of its own | {:.2} ms = {:.0}/s | - | raw create rate: {raw_rate:.0}/s | {:.1}x |\n\
         | no-op reconcile of that ApplicationSet (10,000 Applications, nothing changed) | {noop_ms:.0} ms, {writes} API writes | <= 1 s, 0 writes | - | - |\n\
         | controller peak RSS (whole run) | {rss:.0} MiB | <= 150 MiB | - | - |\n",
        machine(),
        cold.as_secs_f64(),
        raw.as_secs_f64(),
        cold_rate / raw_rate,
        cold.as_secs_f64(),
        raw_ssa.as_secs_f64(),
        cold_rate / ssa_rate,
        cold.as_secs_f64(),
        watched_ssa.as_secs_f64(),
        cold_rate / watched_rate,
        raw_cpu.describe(CPU_GROUPS),
        raw_ssa_cpu.describe(CPU_GROUPS),
        watched_ssa_cpu.describe(CPU_GROUPS),
        cold_cpu.describe(CPU_GROUPS),
        controller_cpu * 1e3 / APPS as f64,
        controller_capacity,
        controller_capacity / raw_rate,
    );
    update_benchmarks_md(
        "controller",
        "ApplicationSet controller on a real API server",
        &section,
    );
    Ok(())
}

/// A plain concurrent server-side-apply loop of the benchmark's Applications into a new
/// namespace, owned by an ApplicationSet like the controller's (the API server works more
/// per write of an object with owner references); with `watched`, a watch of that
/// namespace (full objects, as an informer) runs meanwhile. Returns its duration and the
/// CPU the API server and etcd used.
async fn ssa_loop(
    plane: &ControlPlane,
    client: &Client,
    namespace: &str,
    watched: bool,
) -> Result<(Duration, argosy_tests::bench::CpuUsed)> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": namespace}}))?,
        )
        .await?;
    let api: Api<Application> = Api::namespaced(client.clone(), namespace);
    let watch = watched.then(|| {
        let events = kube::runtime::watcher(api.clone(), kube::runtime::watcher::Config::default());
        tokio::spawn(events.for_each(|_| async {}))
    });
    let params = kube::api::PatchParams::apply("raw-ssa").force();
    let cpu = CpuSnapshot::take(&plane.processes());
    let start = Instant::now();
    futures::stream::iter((0..APPS).map(|i| {
        let (api, params) = (api.clone(), params.clone());
        async move {
            let mut app = app_object(i, namespace);
            app.metadata.owner_references = Some(vec![owner_reference("bench", BENCH_UID)]);
            let name = app.metadata.name.clone().unwrap_or_default();
            api.patch(&name, &params, &kube::api::Patch::Apply(&app))
                .await
        }
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect::<Vec<_>>()
    .await
    .with_context(|| format!("baseline server-side apply loop into {namespace}"))?;
    let elapsed = start.elapsed();
    let used = cpu.used_since();
    if let Some(watch) = watch {
        watch.abort();
    }
    Ok((elapsed, used))
}

fn spawn_controller(kubeconfig: &Path, log: &Path) -> Result<Child> {
    let log_file = std::fs::File::create(log)?;
    Ok(Command::new(std::env::current_exe()?)
        .env(CONTROLLER_ENV, kubeconfig)
        .env("ARGOSY_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()?)
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

/// The duration of the last `reconciled` log line (`elapsed_ms=N`), if any.
fn last_reconcile_ms(log: &str) -> Option<f64> {
    log.lines()
        .rev()
        .filter(|l| l.contains("reconciled"))
        .find_map(|l| l.split("elapsed_ms=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}
