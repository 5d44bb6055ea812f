//! The fleet plan API end to end: real kube-apiservers (management + three customer
//! clusters), the per-customer example synced by the in-process controller from a real
//! Git history (argosy_tests::fleet_history), and
//! `GET /api/v1/appsets/argocd/customer-apps/plan?from=..&to=..` asked of its listener.
//! The answer must be the plan `argosy plan` makes of the same files offline, and the
//! audit logs of all four API servers must show no write while it was computed.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use argosy::cli::args::{PlanFlags, PlanFormat};
use argosy::run::SyncEngine;
use argosy_tests::ControlPlane;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, application_resource, apply_json, appset_resource, init_tracing,
    install_crds, prepare_namespace, run_args, start_controller, wait_for,
};
use argosy_tests::control_plane::AuditEvent;
use argosy_tests::fixtures::{free_port, register_cluster};
use argosy_tests::fleet_history::{
    EXAMPLE_REPO_URL, example_dir, first_to_second, plan_shape, write_history,
};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::DynamicObject;
use serde_json::Value;

const TOKEN: &str = "plan-test-token";
/// Workload index, cluster name and labels, as in examples/per-customer/clusters.
const CLUSTERS: [(usize, &str, &str, &str); 3] = [
    (0, "acme-prod", "acme", "gold"),
    (1, "globex-prod", "globex", "silver"),
    (2, "initech-prod", "initech", "bronze"),
];

async fn get(url: &str) -> Result<(reqwest::StatusCode, Value)> {
    let response = reqwest::Client::new()
        .get(url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).with_context(|| text)?))
}

/// Writes by Argosy on any of the clusters received since `since`, but the Lease renewals.
fn writes_since(cp: &ControlPlane, since: Timestamp) -> Result<Vec<AuditEvent>> {
    let mut writes = Vec::new();
    for cluster in cp.clusters() {
        writes.extend(
            cp.argosy_writes(&cluster.name)?
                .into_iter()
                .filter(|e| e.received >= since && e.resource.as_deref() != Some("leases")),
        );
    }
    Ok(writes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_api_answers_what_argosy_plan_does_and_writes_nothing() -> Result<()> {
    init_tracing();
    let cp = ControlPlane::start(3)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let client = cp.management().client().await?;
    install_crds(&client).await?;
    prepare_namespace(&client).await?;

    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("fleet.git");
    let [first, second, _] = write_history(&repo, "HEAD")?;
    // The same clusters for the controller (Secrets) and for `argosy plan` (files).
    let cluster_files = dir.path().join("clusters");
    std::fs::create_dir_all(&cluster_files)?;
    for (i, name, customer, tier) in CLUSTERS {
        let cluster = &cp.workloads()[i];
        let labels = [("customer", customer), ("tier", tier)];
        register_cluster(&client, name, cluster, &labels).await?;
        let secret = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE, "labels": {
                "argocd.argoproj.io/secret-type": "cluster", "customer": customer, "tier": tier}},
            "stringData": {"name": name, "server": cluster.server, "config": "{}"},
        });
        std::fs::write(
            cluster_files.join(format!("{name}.yaml")),
            serde_yaml_ng::to_string(&secret)?,
        )?;
    }
    let example = example_dir();
    let appset: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(example.join("appset.yaml"))?)?;
    apply_json(&client, &appset_resource(), appset).await?;

    let port = free_port()?;
    let mut args = run_args("plan", dir.path().join("cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([(EXAMPLE_REPO_URL.to_owned(), repo.clone())]);
    args.listen = Some(([127, 0, 0, 1], port).into());
    args.dashboard_token = Some(TOKEN.to_owned().into());
    let _controller = start_controller(cp.management(), argosy::run::USER_AGENT, args).await?;
    let base = format!("http://127.0.0.1:{port}/api/v1/appsets/argocd/customer-apps/plan");

    // The fleet is in place and compared (gold-tier acme syncs by hand).
    let apps: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ARGOCD_NAMESPACE, &application_resource());
    wait_for(
        "six Applications compared",
        Duration::from_secs(120),
        || async {
            let list = apps.list(&Default::default()).await?.items;
            let compared = list.iter().all(|a| {
                let a = serde_json::to_value(a).unwrap_or_default();
                a.pointer("/status/sync/status").is_some()
                    && a.pointer("/status/health/status").is_some()
            });
            Ok((list.len() == 6 && compared).then_some(()))
        },
    )
    .await?;
    // ... and quiet: 5 s without an Argosy write (but Lease renewals) anywhere.
    wait_for(
        "the controller to go quiet",
        Duration::from_secs(120),
        || async {
            let quiet = writes_since(&cp, Timestamp::now() - Duration::from_secs(5))?.is_empty();
            Ok(quiet.then_some(()))
        },
    )
    .await?;

    let before = Timestamp::now();
    let (status, plan) = get(&format!("{base}?from={first}&to={second}")).await?;
    let (bad_status, bad) = get(&format!("{base}?to=no-such-branch")).await?;
    let after = Timestamp::now();
    assert_eq!(status, reqwest::StatusCode::OK, "{plan}");
    assert_eq!(plan_shape(&plan), first_to_second(), "{plan:#}");
    assert_eq!(plan["applicationSet"], "argocd/customer-apps");
    assert_eq!(plan["to"]["commits"][EXAMPLE_REPO_URL], second.as_str());
    assert_eq!(
        bad_status,
        reqwest::StatusCode::UNPROCESSABLE_ENTITY,
        "{bad}"
    );
    let message = bad["error"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "planning ApplicationSet argocd/customer-apps: to revision no-such-branch: "
        ),
        "{message}"
    );

    // Nothing was written while the plans were computed, on any of the four clusters.
    let during: Vec<String> = writes_since(&cp, before)?
        .into_iter()
        .filter(|e| e.received <= after)
        .map(|e| e.describe())
        .collect();
    assert!(during.is_empty(), "writes while planning: {during:#?}");

    // `argosy plan` over the same files says the same.
    let flags = PlanFlags {
        files: vec![example.join("appset.yaml")],
        clusters: vec![cluster_files],
        repos: vec![(EXAMPLE_REPO_URL.to_owned(), repo.clone())],
        from: Some(first.clone()),
        to: second.clone(),
        repo_urls: Vec::new(),
        group_by: "customer".to_owned(),
        output: PlanFormat::Json,
        max_diff_lines: 200,
        max_apps: 5_000,
        repo_cache: Some(dir.path().join("cli-cache")),
    };
    let offline =
        tokio::task::spawn_blocking(move || argosy::cli::cmd::plan::run(&flags)).await??;
    let offline: Value = serde_json::from_str(&offline.text)?;
    assert_eq!(plan, offline, "the API and argosy plan differ");
    Ok(())
}
