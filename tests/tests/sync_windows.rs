//! AppProject sync windows on real kube-apiservers (one management and two workload
//! clusters, `gold` and `silver`).
//!
//! Project `fleet` has a deny window over cluster `gold` that opens at the current minute
//! for three minutes. While it is active: the automated app on `silver` syncs, the
//! automated app on `gold` does not (a `SyncWindowBlocked` condition names the window and
//! when it opens), `argosy app sync` of the manual `gold` app is refused in one line, and
//! an operation set on it anyway (as a RollingSync step or `kubectl` would) stays Running
//! with Argo CD's "Sync operation blocked by sync window" — and `gold`'s audit log shows
//! no write by Argosy. When the window ends both `gold` apps sync, with the resync period
//! an hour away: only the requeue at the opening time can have woken them, and the first
//! write on `gold` is received after the window's end.
//!
//! Project `office-hours` allows syncs only in a window twelve hours away, with
//! `manualSync`: its automated app is blocked (outside the allow window), `argosy app get`
//! says "Manual Allowed" and when the window opens, and `argosy app sync` goes through.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use argosy::cli::cmd::app::{AppCommand, AppError, Output, WaitFlags};
use argosy::run::SyncEngine;
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, application_resource, apply_json, init_tracing, install_crds,
    prepare_namespace, run_args, start_controller, wait_app,
};
use argosy_tests::fixtures::{AppBuilder, create_namespace, register_cluster};
use argosy_tests::{AuditEvent, ControlPlane, TestCluster};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const REPO_URL: &str = "https://git.example.com/platform/fleet.git";
const NS: &str = "shop";
const OFFICE_NS: &str = "office";

fn project(name: &str, windows: Value) -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
    "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE},
    "spec": {
        "sourceRepos": ["*"],
        "destinations": [{"server": "*", "namespace": "*", "name": "*"}],
        "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        "syncWindows": windows,
    }})
}

fn app(name: &str, project: &str, cluster: &str, path: &str, namespace: &str) -> AppBuilder {
    AppBuilder::new(name)
        .project(project)
        .source(REPO_URL, path)
        .destination_name(cluster)
        .destination_namespace(namespace)
}

fn condition<'a>(app: &'a Value, kind: &str) -> Option<&'a str> {
    app.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["message"].as_str())
}

/// The `SyncWindowBlocked` condition's message of app `name`, once it has one.
async fn blocked_message(client: &Client, name: &str) -> Result<String> {
    let app = wait_app(
        client,
        name,
        "blocked by a window",
        Duration::from_secs(90),
        |a| condition(a, "SyncWindowBlocked").is_some(),
    )
    .await?;
    ensure!(!synced(&app), "{name} synced while blocked");
    Ok(condition(&app, "SyncWindowBlocked")
        .unwrap_or_default()
        .to_owned())
}

fn synced(app: &Value) -> bool {
    app.pointer("/status/sync/status") == Some(&json!("Synced"))
}

async fn configmap_exists(cluster: &TestCluster, namespace: &str, name: &str) -> Result<bool> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await?, namespace);
    Ok(api.get_opt(name).await?.is_some())
}

/// `argosy app COMMAND`: its output, or its error.
async fn cli(client: &Client, command: AppCommand) -> Result<String, AppError> {
    let mut out = Vec::new();
    argosy::cli::cmd::app::run(
        client.clone(),
        ARGOCD_NAMESPACE,
        ARGOCD_NAMESPACE,
        command,
        &mut out,
    )
    .await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn sync_command(name: &str) -> AppCommand {
    AppCommand::Sync {
        name: name.to_owned(),
        prune: false,
        revision: None,
        wait: WaitFlags {
            wait: false,
            timeout: 300,
        },
    }
}

fn get_command(name: &str) -> AppCommand {
    AppCommand::Get {
        name: name.to_owned(),
        output: Output::Table,
    }
}

fn configmap(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_window_holds_every_sync_to_its_cluster_until_it_ends() -> Result<()> {
    init_tracing();
    let cp = ControlPlane::start(2)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let admin = cp.management().client().await?;
    install_crds(&admin).await?;
    prepare_namespace(&admin).await?;
    let (gold, silver) = (&cp.workloads()[0], &cp.workloads()[1]);
    register_cluster(&admin, "gold", gold, &[]).await?;
    register_cluster(&admin, "silver", silver, &[]).await?;
    for (cluster, ns) in [(gold, NS), (silver, NS), (silver, OFFICE_NS)] {
        create_namespace(&cluster.client().await?, ns).await?;
    }
    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("fleet.git");
    let files: BTreeMap<String, TreeEntry> = [
        ("auto/cm.yaml", configmap("auto")),
        ("manual/cm.yaml", configmap("manual")),
        ("office/cm.yaml", configmap("office")),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_owned(), TreeEntry::File(c)))
    .collect();
    write_tree_commit(&repo, "refs/heads/main", &files).map_err(|e| anyhow::anyhow!(e))?;

    // The deny window: from the current minute (UTC) for three minutes, so at least two
    // remain; it ends at `window_end`.
    let (schedule, window_end) = argosy_tests::fixtures::window_from_this_minute(3)?;
    apply_json(
        &admin,
        &ApiResource::erase::<argosy_crds::AppProject>(&()),
        project(
            "fleet",
            json!([{"kind": "deny", "schedule": schedule, "duration": "3m",
                    "clusters": ["gold"], "description": "gold change freeze"}]),
        ),
    )
    .await?;
    // Office hours: twelve hours from now, an hour long; manual syncs allowed.
    let now = Timestamp::now().to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC);
    let office_hour = (now.hour() + 12) % 24;
    apply_json(
        &admin,
        &ApiResource::erase::<argosy_crds::AppProject>(&()),
        project(
            "office-hours",
            json!([{"kind": "allow", "schedule": format!("0 {office_hour} * * *"),
                    "duration": "1h", "namespaces": [OFFICE_NS], "manualSync": true}]),
        ),
    )
    .await?;

    for app in [
        app("gold-auto", "fleet", "gold", "auto", NS).automated(true, true),
        app("gold-manual", "fleet", "gold", "manual", NS),
        app("silver-auto", "fleet", "silver", "auto", NS).automated(true, true),
        app("office-auto", "office-hours", "silver", "office", OFFICE_NS).automated(true, true),
    ] {
        apply_json(&admin, &application_resource(), app.json()).await?;
    }

    let mut args = run_args("sync-windows", dir.path().join("cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([(REPO_URL.to_owned(), repo.clone())]);
    // Far beyond the test: the sync when the window ends must come from the requeue at
    // its opening time.
    args.sync.resync = Duration::from_secs(3600);
    let _controller = start_controller(cp.management(), argosy::run::USER_AGENT, args).await?;

    // The app on silver syncs; the one on gold is blocked by the window, named with its
    // opening time.
    wait_app(
        &admin,
        "silver-auto",
        "Synced",
        Duration::from_secs(90),
        synced,
    )
    .await?;
    let message = blocked_message(&admin, "gold-auto").await?;
    let opens = format!("opens at {window_end}");
    ensure!(
        message.contains("deny sync window deny:")
            && message.contains("gold change freeze")
            && message.contains(&opens),
        "{message} (expected {opens})"
    );

    // `argosy app sync` is refused in one line; `argosy app get` says why and until when.
    let refused = cli(&admin, sync_command("gold-manual")).await;
    let Err(refusal) = refused else {
        anyhow::bail!("argosy app sync went through inside the deny window: {refused:?}");
    };
    let refusal = refusal.to_string();
    ensure!(
        refusal.starts_with("cannot sync application gold-manual: blocked by deny sync window")
            && !refusal.contains('\n'),
        "{refusal}"
    );
    let shown = cli(&admin, get_command("gold-manual")).await?;
    ensure!(
        shown.contains("Sync Window:       Sync Denied") && shown.contains(&opens),
        "{shown}"
    );

    // An operation set anyway (a RollingSync step, kubectl) is held Running.
    let apps: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), ARGOCD_NAMESPACE, &application_resource());
    apps.patch(
        "gold-manual",
        &PatchParams::default(),
        &Patch::Merge(json!({"operation": {"sync": {}, "initiatedBy": {"username": "test"}}})),
    )
    .await?;
    let held = wait_app(
        &admin,
        "gold-manual",
        "operation held",
        Duration::from_secs(90),
        |a| {
            a.pointer("/status/operationState/message")
                .and_then(Value::as_str)
                .is_some_and(|m| m.starts_with("Sync operation blocked by sync window: "))
        },
    )
    .await?;
    ensure!(
        held["status"]["operationState"]["phase"] == "Running",
        "{:#}",
        held["status"]
    );

    // Allow window: outside it the automated app waits; manualSync lets a manual sync in.
    let message = blocked_message(&admin, "office-auto").await?;
    ensure!(
        message.contains("blocked outside the allow sync window allow:0 "),
        "{message}"
    );
    let shown = cli(&admin, get_command("office-auto")).await?;
    ensure!(
        shown.contains("Sync Window:       Manual Allowed") && shown.contains("opens at "),
        "{shown}"
    );

    // Nothing was written to gold so far (checked while the window is still active).
    let gold_writes = cp.argosy_writes(&gold.name)?;
    ensure!(
        Timestamp::now() < window_end,
        "the deny window ended before its checks were done; the machine is too slow for this test"
    );
    ensure!(
        gold_writes.is_empty(),
        "writes on gold inside the deny window: {:?}",
        gold_writes
            .iter()
            .map(AuditEvent::describe)
            .collect::<Vec<_>>()
    );
    ensure!(!configmap_exists(silver, OFFICE_NS, "office").await?);
    cli(&admin, sync_command("office-auto")).await?;
    wait_app(
        &admin,
        "office-auto",
        "manually synced",
        Duration::from_secs(90),
        |a| a["status"]["operationState"]["phase"] == "Succeeded",
    )
    .await?;
    ensure!(configmap_exists(silver, OFFICE_NS, "office").await?);

    // The window ends: both gold apps sync (the held operation completes and is cleared),
    // and the first write on gold comes after the window's end.
    let until_end = window_end.since(Timestamp::now())?;
    let deadline = Duration::try_from(until_end).unwrap_or_default() + Duration::from_secs(120);
    wait_app(
        &admin,
        "gold-auto",
        "Synced after the window",
        deadline,
        |a| synced(a) && condition(a, "SyncWindowBlocked").is_none(),
    )
    .await?;
    wait_app(
        &admin,
        "gold-manual",
        "held operation done after the window",
        deadline,
        |a| {
            a["status"]["operationState"]["phase"] == "Succeeded"
                && a.get("operation").is_none_or(Value::is_null)
        },
    )
    .await?;
    ensure!(configmap_exists(gold, NS, "auto").await?);
    ensure!(configmap_exists(gold, NS, "manual").await?);
    let gold_writes = cp.argosy_writes(&gold.name)?;
    let early: Vec<String> = gold_writes
        .iter()
        .filter(|e| e.received < window_end)
        .map(AuditEvent::describe)
        .collect();
    ensure!(
        early.is_empty(),
        "writes on gold before the window ended at {window_end}: {early:?}"
    );
    ensure!(!gold_writes.is_empty(), "no write on gold at all");
    Ok(())
}
