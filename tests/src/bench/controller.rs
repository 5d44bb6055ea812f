//! What the ApplicationSet controller benchmarks (`benches/controller.rs`,
//! `benches/appset_scale.rs`) share: the benchmark Application, the plain create and
//! server-side-apply loops they are measured against, and the controller as a child
//! process (the bench binary re-executed), so its RSS and CPU are its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use argosy::appset::plan::owner_reference;
use argosy_crds::Application;
use futures::{StreamExt, TryStreamExt};
use kube::api::PostParams;
use kube::{Api, Client};

use super::{CpuSnapshot, CpuUsed};
use crate::ControlPlane;
use crate::fixtures::{AppBuilder, create_namespace};

/// Writes in flight: in the baseline loops and in the controller (`--concurrent-writes`).
pub const CONCURRENCY: usize = 32;
/// Process groups of the CPU accounting, by label prefix.
pub const CPU_GROUPS: &[&str] = &["controller", "kube-apiserver", "etcd"];
/// Set in a child's environment: the kubeconfig it runs a controller with.
const CONTROLLER_ENV: &str = "ARGOSY_BENCH_CONTROLLER_KUBECONFIG";
/// Set in a child's environment: the address of its listener (`/metrics`), if any.
const LISTEN_ENV: &str = "ARGOSY_BENCH_CONTROLLER_LISTEN";
/// The uid of the (absent) ApplicationSet owning the server-side-apply baseline's objects.
const BENCH_UID: &str = "0b0d0000-0000-4000-8000-000000000001";

/// The benchmark Application `app-NNNNN` in `namespace`: what the ApplicationSets of the
/// benchmarks generate, and what the baseline loops write.
pub fn bench_application(i: usize, namespace: &str) -> Application {
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

/// What one baseline loop measured.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub elapsed: Duration,
    /// Objects written per second.
    pub rate: f64,
    /// The CPU the control plane's processes used meanwhile.
    pub cpu: CpuUsed,
}

impl Baseline {
    fn new(what: &str, count: usize, elapsed: Duration, cpu: CpuUsed) -> Baseline {
        let rate = count as f64 / elapsed.as_secs_f64();
        println!(
            "baseline: {count} {what} in {:.1} s ({rate:.0}/s)",
            elapsed.as_secs_f64()
        );
        Baseline { elapsed, rate, cpu }
    }
}

/// A plain concurrent create loop ([`CONCURRENCY`] in flight) of `count` benchmark
/// Applications into a new namespace: the raw API-server write rate.
pub async fn create_loop(
    plane: &ControlPlane,
    client: &Client,
    namespace: &str,
    count: usize,
) -> Result<Baseline> {
    create_namespace(client, namespace).await?;
    let api: Api<Application> = Api::namespaced(client.clone(), namespace);
    let cpu = CpuSnapshot::take(&plane.processes());
    let start = Instant::now();
    futures::stream::iter((0..count).map(|i| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &bench_application(i, namespace))
                .await
        }
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect::<Vec<_>>()
    .await
    .with_context(|| format!("baseline create loop into {namespace}"))?;
    Ok(Baseline::new(
        "creates",
        count,
        start.elapsed(),
        cpu.used_since(),
    ))
}

/// A plain concurrent server-side-apply loop of `count` benchmark Applications into a new
/// namespace, owned by an ApplicationSet like the controller's (the API server works more
/// per write of an object with owner references); with `watched`, a watch of that
/// namespace (full objects, as an informer) runs meanwhile.
pub async fn ssa_loop(
    plane: &ControlPlane,
    client: &Client,
    namespace: &str,
    count: usize,
    watched: bool,
) -> Result<Baseline> {
    create_namespace(client, namespace).await?;
    let api: Api<Application> = Api::namespaced(client.clone(), namespace);
    let watch = watched.then(|| {
        let events = kube::runtime::watcher(api.clone(), kube::runtime::watcher::Config::default());
        tokio::spawn(events.for_each(|_| async {}))
    });
    let params = kube::api::PatchParams::apply("raw-ssa").force();
    let cpu = CpuSnapshot::take(&plane.processes());
    let start = Instant::now();
    futures::stream::iter((0..count).map(|i| {
        let (api, params) = (api.clone(), params.clone());
        async move {
            let mut app = bench_application(i, namespace);
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
    let what = if watched {
        "server-side applies, watched,"
    } else {
        "server-side applies"
    };
    Ok(Baseline::new(what, count, elapsed, used))
}

/// In a child started by [`spawn_controller`]: runs the Argosy controller it was started
/// for until SIGTERM, and returns `Some` with how that ended. `None` in the benchmark
/// itself.
pub fn run_if_child(runtime: &tokio::runtime::Runtime) -> Option<Result<()>> {
    let kubeconfig = std::env::var(CONTROLLER_ENV).ok()?;
    let listen = std::env::var(LISTEN_ENV).ok();
    Some(runtime.block_on(controller_process(PathBuf::from(kubeconfig), listen)))
}

/// The child: an Argosy controller from a kubeconfig (leader election off, the Argo CD
/// sync engine: only the ApplicationSet controller works), until SIGTERM.
async fn controller_process(kubeconfig: PathBuf, listen: Option<String>) -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        // Each reconcile step's span (generate, plan, write) logs its busy and idle time
        // when it closes: the profile of a slow reconcile, from the log alone.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ARGOSY_LOG"))
        .init();
    let config = kube::config::Kubeconfig::read_from(&kubeconfig)?;
    let mut config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(argosy::run::USER_AGENT),
    ));
    let client = Client::try_from(config)?;
    let mut args =
        crate::argocd::run_args("bench", std::env::temp_dir().join("argosy-bench-repos"));
    args.concurrent_writes = CONCURRENCY;
    args.listen = listen
        .map(|l| l.parse::<SocketAddr>())
        .transpose()
        .context("the child's listen address")?;
    let shutdown = async {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
        }
    };
    argosy::run::run_with(client, args, shutdown).await
}

/// The controller as a child process; stopped (SIGTERM, then waited for) when dropped,
/// so a benchmark that fails midway leaves no controller behind.
pub struct ControllerChild {
    child: Child,
}

impl ControllerChild {
    /// Its process id, for the CPU and RSS accounting.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for ControllerChild {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Starts the controller as a child process (this binary re-executed) against the
/// cluster of `kubeconfig`, logging at info to `log`, with its listener on
/// `127.0.0.1:port` when `listen` is given.
pub fn spawn_controller(
    kubeconfig: &Path,
    log: &Path,
    listen: Option<u16>,
) -> Result<ControllerChild> {
    let log_file = std::fs::File::create(log)?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .env(CONTROLLER_ENV, kubeconfig)
        .env("ARGOSY_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log_file);
    if let Some(port) = listen {
        command.env(LISTEN_ENV, format!("127.0.0.1:{port}"));
    }
    Ok(ControllerChild {
        child: command.spawn()?,
    })
}
