//! A workload cluster whose API server hangs (SIGSTOP: the kernel still accepts
//! connections, nothing answers) on the real control plane: issue #19's hung-cluster case.
//!
//! * `a_hung_cluster_is_marked_unreachable_holds_its_apps_and_recovers`: a management API
//!   server and two workload API servers, the controller in-process with its default
//!   settings. Cluster B hangs while one of its three apps is mid-sync (waiting for a wave):
//!   its apps get the Unreachable condition within 30 s (the sync in progress stays
//!   `Running`), `/metrics`, the dashboard's JSON API and `argosy status` show B unreachable
//!   and A connected, a change to A's app is synced meanwhile, and after SIGCONT B's change
//!   made during the hang is synced and the sync in progress finishes. The audit logs show
//!   no delete by the controller anywhere and on B exactly the writes the recovery makes,
//!   one per object.
//! * `a_silent_watch_is_remade_and_fails_when_its_server_hangs`: the watch timeout alone (no
//!   probe): an idle watch is re-made at its deadline without ever being marked failing; when
//!   the server hangs the re-made watch fails and marks it; after SIGCONT a re-list clears it.
//!
//! The `HungCluster` guard SIGCONTs the API server when a test fails before resuming it.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use argosy::cli::cmd::app::Output;
use argosy::cli::cmd::fleet::StatusFlags;
use argosy::run::SyncEngine;
use argosy_crds::Cluster;
use argosy_sync_engine::clients::{ClusterClients, ClusterTimeouts};
use argosy_sync_engine::live::{LiveCache, Needs, Visibility};
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_sync_engine::status::Unreachable;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, application_resource, apply_json, argocd_control_plane, init_tracing,
    run_args, start_controller, wait_app, wait_for,
};
use argosy_tests::fixtures::{as_service_account, free_port, register_cluster};
use argosy_tests::{AuditEvent, ControlPlane, MANAGEMENT, TestCluster};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

/// One test at a time: each runs several kube-apiservers on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const REPO_URL: &str = "https://git.example.com/platform/hung.git";
const DASHBOARD_TOKEN: &str = "hung-cluster-dashboard-token";
/// The bound: a hung cluster is marked unreachable within 30 s.
const MARKED_WITHIN: Duration = Duration::from_secs(30);

fn configmap(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: \"{value}\"\n"
    )
}

/// App `b3`: a Deployment in wave 0 and a ConfigMap in wave 1. No controller-manager runs,
/// so the Deployment never becomes available by itself: b3's sync stays in progress
/// (waiting for wave 0) until the test plays the Deployment controller.
const WAVES: [(&str, &str); 2] = [
    (
        "b3/web.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-b3\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web-b3}\n  template:\n    metadata:\n      labels: {app: web-b3}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
    ),
    (
        "b3/late.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late-b3\n  annotations:\n    argocd.argoproj.io/sync-wave: \"1\"\ndata:\n  key: \"v1\"\n",
    ),
];

/// Commits one ConfigMap per app directory (`dir/cm.yaml`, named `settings-<dir>`), and
/// [`WAVES`].
fn commit(repo: &std::path::Path, values: &[(&str, &str)]) -> Result<()> {
    let entries: BTreeMap<String, TreeEntry> = values
        .iter()
        .map(|(dir, value)| {
            (
                format!("{dir}/cm.yaml"),
                TreeEntry::File(configmap(&format!("settings-{dir}"), value)),
            )
        })
        .chain(
            WAVES
                .iter()
                .map(|(path, text)| ((*path).to_owned(), TreeEntry::File((*text).to_owned()))),
        )
        .collect();
    write_tree_commit(repo, "refs/heads/main", &entries)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!(e))
}

fn app_spec(dir: &str, server: &str) -> Value {
    json!({
        "project": "default",
        "source": {"repoURL": REPO_URL, "targetRevision": "main", "path": dir},
        "destination": {"server": server, "namespace": "demo"},
        "syncPolicy": {
            "automated": {"prune": true, "selfHeal": true},
            "syncOptions": ["CreateNamespace=true"],
        },
    })
}

fn operation_phase(app: &Value) -> &str {
    app.pointer("/status/operationState/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn sync_status(app: &Value) -> &str {
    app.pointer("/status/sync/status")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The Unreachable condition of `app` naming `server`, if it has one.
fn unreachable_condition(app: &Value, server: &str) -> Option<Unreachable> {
    app.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .filter(|c| c["type"] == Unreachable::CONDITION.as_str())
        .filter_map(|c| c["message"].as_str().and_then(Unreachable::from_message))
        .find(|u| u.server == server)
}

/// The `data.key` of ConfigMap `demo/name` on `cluster`, if it exists.
async fn live_value(cluster: &TestCluster, name: &str) -> Result<Option<String>> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(cluster.client().await?, "demo");
    Ok(api
        .get_opt(name)
        .await?
        .and_then(|cm| cm.data)
        .and_then(|data| data.get("key").cloned()))
}

async fn wait_live(cluster: &TestCluster, name: &str, value: &str) -> Result<()> {
    wait_for(
        &format!("{name} = {value} on {}", cluster.name),
        Duration::from_secs(60),
        || async { Ok((live_value(cluster, name).await?.as_deref() == Some(value)).then_some(())) },
    )
    .await
}

/// `GET path` on the controller's listener, with the dashboard token.
async fn get(port: u16, path: &str) -> Result<String> {
    let (status, text) = argosy_tests::probe::get(port, path, Some(DASHBOARD_TOKEN)).await?;
    ensure!(status == 200, "GET {path} answered {status}: {text}");
    Ok(text
        .split_once("\r\n\r\n")
        .map_or(text.as_str(), |(_, body)| body)
        .to_owned())
}

/// The `argosy_cluster_connection_status` of the cluster named `name` in `/metrics`.
async fn connection_metric(port: u16, name: &str) -> Result<Option<String>> {
    let text = get(port, "/metrics").await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("argosy_cluster_connection_status{"))
        .find(|l| l.contains(&format!("name=\"{name}\"")))
        .and_then(|l| l.rsplit_once(' '))
        .map(|(_, value)| value.to_owned()))
}

/// `clusters[].connection.state` by server in a fleet summary (JSON API or `argosy status`).
fn connection_states(summary: &Value) -> BTreeMap<String, String> {
    summary["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["server"].as_str().unwrap_or_default().to_owned(),
                c["connection"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// The JSON object in an answer's body (whatever the transfer encoding framed it with).
fn json_object(body: &str) -> Result<Value> {
    let start = body.find('{').context("no JSON object in the answer")?;
    let end = body.rfind('}').context("no JSON object in the answer")?;
    Ok(serde_json::from_str(&body[start..=end])?)
}

/// `argosy status -o json` (without `--probe`: from the Applications' conditions).
async fn argosy_status(client: &Client) -> Result<Value> {
    let flags = StatusFlags {
        group_by: None,
        probe: false,
        output: Output::Json,
    };
    let mut out = Vec::new();
    argosy::cli::cmd::fleet::status(client.clone(), ARGOCD_NAMESPACE, &flags, &mut out).await?;
    Ok(serde_json::from_slice(&out)?)
}

/// Plays the Deployment controller: marks `name` available.
async fn complete_deployment(api: &Api<DynamicObject>, name: &str) -> Result<()> {
    let live = api.get(name).await?;
    let status = json!({"status": {"observedGeneration": live.metadata.generation,
        "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [{"type": "Available", "status": "True"}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await?;
    Ok(())
}

fn deletes(events: &[AuditEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.verb == "delete" || e.verb == "deletecollection")
        .map(AuditEvent::describe)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_cluster_is_marked_unreachable_holds_its_apps_and_recovers() -> Result<()> {
    init_tracing();
    let _serial = SERIAL.lock().await;
    let (cp, client) = argocd_control_plane(2).await?;
    let (a, b) = (cp.workloads()[0].clone(), cp.workloads()[1].clone());
    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("hung.git");
    commit(&repo, &[("a", "v1"), ("b1", "v1"), ("b2", "v1")])?;
    register_cluster(&client, "cluster-a", &a, &[]).await?;
    register_cluster(&client, "cluster-b", &b, &[]).await?;
    let apps = [("a", &a), ("b1", &b), ("b2", &b)];
    for (name, cluster) in apps.into_iter().chain([("b3", &b)]) {
        apply_json(
            &client,
            &application_resource(),
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                   "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE},
                   "spec": app_spec(name, &cluster.server)}),
        )
        .await?;
    }

    // The controller with its default timeouts and probe; Git changes are found by a 2 s
    // resync (no webhook here).
    let port = free_port()?;
    let mut args = run_args("hung-cluster", dir.path().join("cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([(REPO_URL.to_owned(), repo.clone())]);
    args.sync.resync = Duration::from_secs(2);
    args.listen = Some(([127, 0, 0, 1], port).into());
    args.dashboard_token = Some(DASHBOARD_TOKEN.to_owned().into());
    let _controller = start_controller(cp.management(), argosy::run::USER_AGENT, args).await?;
    for (name, cluster) in apps {
        wait_app(&client, name, "Synced", Duration::from_secs(60), |app| {
            sync_status(app) == "Synced"
        })
        .await?;
        wait_live(cluster, &format!("settings-{name}"), "v1").await?;
    }
    // b3's sync is in progress when B hangs: wave 0 applied, wave 1 waiting for it.
    wait_app(
        &client,
        "b3",
        "a sync waiting for wave 0",
        Duration::from_secs(60),
        |app| operation_phase(app) == "Running",
    )
    .await?;
    let deployments = ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&());
    let web: Api<DynamicObject> = Api::namespaced_with(b.client().await?, "demo", &deployments);
    ensure!(web.get_opt("web-b3").await?.is_some(), "wave 0 applied");
    ensure!(live_value(&b, "late-b3").await?.is_none(), "wave 1 waits");
    ensure!(
        connection_metric(port, "cluster-b").await?.as_deref() == Some("1"),
        "cluster-b is connected before the hang"
    );

    // B hangs.
    let hung_at = Timestamp::now();
    let hung = cp.hang_cluster(&b.name)?;
    let stopped = Instant::now();
    eprintln!("cluster B ({}) stopped at {}", b.server, Timestamp::now());
    for name in ["b1", "b2", "b3"] {
        let app = wait_app(
            &client,
            name,
            "the Unreachable condition naming cluster B",
            MARKED_WITHIN.saturating_sub(stopped.elapsed()),
            |app| unreachable_condition(app, &b.server).is_some(),
        )
        .await?;
        eprintln!(
            "{name} reported cluster B unreachable {:.1} s after the SIGSTOP: {:?}",
            stopped.elapsed().as_secs_f64(),
            unreachable_condition(&app, &b.server).map(|u| u.reason)
        );
        ensure!(sync_status(&app) == "Unknown", "{name} holds: {app:#}");
    }
    let b3 = argosy_tests::argocd::app_json(&client, "b3").await?;
    ensure!(
        operation_phase(&b3) == "Running",
        "the sync in progress holds (neither failed nor finished): {b3:#}"
    );
    let a_app = argosy_tests::argocd::app_json(&client, "a").await?;
    ensure!(
        unreachable_condition(&a_app, &a.server).is_none() && sync_status(&a_app) == "Synced",
        "A is not affected: {a_app:#}"
    );

    // Everywhere: /metrics, the dashboard's JSON API, `argosy status`.
    ensure!(
        connection_metric(port, "cluster-b").await?.as_deref() == Some("0"),
        "argosy_cluster_connection_status of cluster-b is 0 while it hangs"
    );
    ensure!(
        connection_metric(port, "cluster-a").await?.as_deref() == Some("1"),
        "argosy_cluster_connection_status of cluster-a stays 1"
    );
    let fleet =
        json_object(&get(port, "/api/v1/fleet").await?).context("the JSON API's fleet summary")?;
    let states = connection_states(&fleet);
    ensure!(
        states.get(&b.server).map(String::as_str) == Some("Unreachable")
            && states.get(&a.server).map(String::as_str) == Some("Connected"),
        "/api/v1/fleet: {states:?}"
    );
    let states = connection_states(&argosy_status(&client).await?);
    ensure!(
        states.get(&b.server).map(String::as_str) == Some("Unreachable")
            && states.get(&a.server).map(String::as_str) == Some("Connected"),
        "argosy status: {states:?}"
    );

    // One commit changes A's and B's apps: A syncs while B hangs (which also shows the
    // controller has read the commit), B holds.
    commit(&repo, &[("a", "v2"), ("b1", "v2"), ("b2", "v1")])?;
    wait_live(&a, "settings-a", "v2").await?;
    let b1 = argosy_tests::argocd::app_json(&client, "b1").await?;
    ensure!(
        unreachable_condition(&b1, &b.server).is_some(),
        "b1 still holds after A synced: {b1:#}"
    );

    // SIGCONT: B is reachable again, and the change made during the hang is synced.
    hung.resume()?;
    let resumed = Instant::now();
    wait_live(&b, "settings-b1", "v2").await?;
    // The sync in progress goes on where it was: wave 1 once wave 0 is available.
    complete_deployment(&web, "web-b3").await?;
    wait_live(&b, "late-b3", "v1").await?;
    wait_app(
        &client,
        "b3",
        "its sync Succeeded",
        Duration::from_secs(60),
        |app| operation_phase(app) == "Succeeded",
    )
    .await?;
    for name in ["b1", "b2", "b3"] {
        wait_app(
            &client,
            name,
            "Synced, without the Unreachable condition",
            Duration::from_secs(60),
            |app| sync_status(app) == "Synced" && unreachable_condition(app, &b.server).is_none(),
        )
        .await?;
    }
    eprintln!(
        "cluster B synced again {:.1} s after the SIGCONT",
        resumed.elapsed().as_secs_f64()
    );
    wait_for(
        "cluster-b connected again in /metrics",
        Duration::from_secs(30),
        || async {
            Ok((connection_metric(port, "cluster-b").await?.as_deref() == Some("1")).then_some(()))
        },
    )
    .await?;
    ensure!(live_value(&b, "settings-b2").await?.as_deref() == Some("v1"));
    ensure!(live_value(&a, "settings-a").await?.as_deref() == Some("v2"));

    // The audit logs: no delete by the controller on any cluster; on B, after the hang
    // began, exactly one apply of each object the recovery had to write: b1's changed
    // ConfigMap and b3's wave 1 (a write sent while B hung would be served after the
    // SIGCONT and show here as a second one, or as another object).
    for cluster in cp.clusters() {
        let writes = cp.argosy_writes(&cluster.name)?;
        let deleted = deletes(&writes);
        ensure!(
            deleted.is_empty(),
            "the controller deleted on {}: {deleted:#?}",
            cluster.name
        );
    }
    let since_hang: Vec<AuditEvent> = cp
        .argosy_writes(&b.name)?
        .into_iter()
        .filter(|e| e.received >= hung_at)
        .collect();
    let described: Vec<String> = since_hang.iter().map(AuditEvent::describe).collect();
    let mut written: Vec<(&str, &str, &str)> = since_hang
        .iter()
        .map(|e| {
            (
                e.verb.as_str(),
                e.resource.as_deref().unwrap_or_default(),
                e.name.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    written.sort_unstable();
    ensure!(
        written
            == [
                ("patch", "configmaps", "late-b3"),
                ("patch", "configmaps", "settings-b1")
            ],
        "writes to cluster B since the hang began: {described:#?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_watch_is_remade_and_fails_when_its_server_hangs() -> Result<()> {
    init_tracing();
    let _serial = SERIAL.lock().await;
    let cp = ControlPlane::start(0)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let mgmt = cp.management().clone();
    let admin = mgmt.client().await?;
    // The watch runs as a ServiceAccount: the audit policy records every request of one,
    // so each watch call and list shows.
    for object in [
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "watcher", "namespace": "default"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "tracked", "namespace": "default",
                            "annotations": {"argocd.argoproj.io/tracking-id": "app1:/ConfigMap:default/tracked"}}}),
    ] {
        let resource = if object["kind"] == "ServiceAccount" {
            ApiResource::erase::<k8s_openapi::api::core::v1::ServiceAccount>(&())
        } else {
            ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&())
        };
        apply_json(&admin, &resource, object).await?;
    }
    // (No controller-manager aggregates the built-in `view` role: a Role of its own.)
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "configmap-reader", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}],
    }))?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "watcher-reads-configmaps", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmap-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "watcher", "namespace": "default"}],
    }))?;
    Api::<Role>::namespaced(admin.clone(), "default")
        .create(&Default::default(), &role)
        .await?;
    Api::<RoleBinding>::namespaced(admin.clone(), "default")
        .create(&Default::default(), &binding)
        .await
        .context("letting the watcher read ConfigMaps")?;
    let watcher = as_service_account(&admin, &mgmt, "default", "watcher").await?;
    let account = "system:serviceaccount:default:watcher";

    let timeouts = ClusterTimeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(5),
        watch: Duration::from_secs(3),
    };
    let clients = ClusterClients::new(admin.clone(), false).with_timeouts(timeouts);
    let cluster = Cluster {
        name: MANAGEMENT.into(),
        server: watcher.server.clone(),
        config: serde_json::from_value(watcher.argocd_cluster_config())?,
        ..Cluster::default()
    };
    let conn = clients.connect(&cluster).await?;
    let woken = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = woken.clone();
    let live = LiveCache::new(
        Arc::new(move |app: &str| record.lock().unwrap().push(app.to_owned())),
        Duration::from_secs(10),
    );
    let configmaps = ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&());
    let mut needs = Needs::default();
    needs.kind(&configmaps, true);
    needs.namespace("default");
    live.need(
        &cluster.server,
        &conn.watch_client,
        "watch-timeout-test",
        needs,
        Visibility::All,
    )
    .await?;
    let woken_count = || woken.lock().unwrap().len();
    wait_for(
        "the first list to wake the tracking app",
        Duration::from_secs(10),
        || async { Ok((woken_count() == 1).then_some(())) },
    )
    .await?;

    // Healthy and idle: each watch ends at its 3 s deadline and is re-made, never marked.
    let watches_ended = |since: Timestamp| -> Result<Vec<AuditEvent>> {
        Ok(cp
            .audit_events(MANAGEMENT)?
            .into_iter()
            .filter(|e| {
                e.username == account
                    && e.verb == "watch"
                    && e.resource.as_deref() == Some("configmaps")
                    && e.received >= since
            })
            .collect())
    };
    let began = Timestamp::now();
    let ended = wait_for(
        "two watch calls to end at their deadline",
        Duration::from_secs(60),
        || async {
            let ended = watches_ended(began)?;
            Ok((ended.len() >= 2).then_some(ended))
        },
    )
    .await?;
    ensure!(
        ended.iter().all(AuditEvent::succeeded),
        "{:#?}",
        ended.iter().map(AuditEvent::describe).collect::<Vec<_>>()
    );
    ensure!(
        live.unreachable(&cluster.server).is_none(),
        "a healthy idle watch is never taken for a hung one"
    );
    ensure!(woken_count() == 1, "nobody woken by the re-made watches");

    // The server hangs: the silent watch is given up, its re-making fails, and that marks
    // the cluster (no probe runs here), waking the tracking app.
    let hung = cp.hang_cluster(MANAGEMENT)?;
    let stopped = Instant::now();
    let why = wait_for(
        "the hung server's watch to fail",
        Duration::from_secs(90),
        || async { Ok(live.unreachable(&cluster.server)) },
    )
    .await?;
    eprintln!(
        "the watch marked the hung server unreachable after {:.1} s: {why}",
        stopped.elapsed().as_secs_f64()
    );
    ensure!(woken_count() == 2, "the tracking app is woken once");

    // It answers again: a new list clears the mark and wakes the app.
    let resumed_at = Timestamp::now();
    hung.resume()?;
    wait_for(
        "the watch to recover after SIGCONT",
        Duration::from_secs(90),
        || async { Ok(live.unreachable(&cluster.server).is_none().then_some(())) },
    )
    .await?;
    ensure!(
        woken_count() >= 3,
        "the tracking app is woken by the re-list"
    );
    let relisted = wait_for(
        "the re-list in the audit log",
        Duration::from_secs(10),
        || async {
            Ok(cp.audit_events(MANAGEMENT)?.into_iter().find(|e| {
                e.username == account
                    && e.verb == "list"
                    && e.resource.as_deref() == Some("configmaps")
                    && e.received >= resumed_at
                    && e.succeeded()
            }))
        },
    )
    .await?;
    eprintln!("re-listed: {}", relisted.describe());
    Ok(())
}
