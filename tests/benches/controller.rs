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

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use argosy_tests::MANAGEMENT;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, apply_json, appset_manifest, appset_resource, argocd_control_plane,
};
use argosy_tests::bench::controller::{
    CONCURRENCY, CPU_GROUPS, create_loop, run_if_child, spawn_controller, ssa_loop,
};
use argosy_tests::bench::{CpuSnapshot, machine, peak_rss_mib_of, update_benchmarks_md};
use kube::Api;
use serde_json::json;

const APPS: usize = 10_000;

fn main() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    if let Some(child) = run_if_child(&runtime) {
        return child;
    }
    // `cargo test --all-targets` runs this binary without `--bench`: measure nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("controller benchmark: run with `cargo bench`");
        return Ok(());
    }
    runtime.block_on(bench())
}

async fn bench() -> Result<()> {
    let (plane, client) = argocd_control_plane(0).await?;
    let mgmt = plane.management();

    // Baseline: the same objects, created by a plain concurrent loop.
    let raw = create_loop(&plane, &client, "raw", APPS).await?;
    // Second baseline: the same objects by a plain concurrent server-side-apply loop,
    // the write the controller makes (SSA costs the API server more than a create).
    let raw_ssa = ssa_loop(&plane, &client, "raw-ssa", APPS, false).await?;
    // Third: the same loop while a watch of those objects runs, as any controller's
    // informer does (the API server encodes every write once more, for the watch).
    let watched_ssa = ssa_loop(&plane, &client, "raw-ssa-watched", APPS, true).await?;
    let (raw_rate, ssa_rate, watched_rate) = (raw.rate, raw_ssa.rate, watched_ssa.rate);

    // The controller, as its own process.
    let kubeconfig = plane.dir().join("bench-mgmt.kubeconfig");
    mgmt.write_kubeconfig(&kubeconfig)?;
    let log = plane.dir().join("controller.log");
    let controller = spawn_controller(&kubeconfig, &log, None)?;
    let pid = controller.pid();
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
    // Stopped here (SIGTERM), not at the end of the run: its RSS was read just before.
    drop(controller);

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
        raw.elapsed.as_secs_f64(),
        cold_rate / raw_rate,
        cold.as_secs_f64(),
        raw_ssa.elapsed.as_secs_f64(),
        cold_rate / ssa_rate,
        cold.as_secs_f64(),
        watched_ssa.elapsed.as_secs_f64(),
        cold_rate / watched_rate,
        raw.cpu.describe(CPU_GROUPS),
        raw_ssa.cpu.describe(CPU_GROUPS),
        watched_ssa.cpu.describe(CPU_GROUPS),
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

/// The duration of the last `reconciled` log line (`elapsed_ms=N`), if any.
fn last_reconcile_ms(log: &str) -> Option<f64> {
    log.lines()
        .rev()
        .filter(|l| l.contains("reconciled"))
        .find_map(|l| l.split("elapsed_ms=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}
