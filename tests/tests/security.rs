//! Security boundaries of the sync engine against real kube-apiservers (issue #15, items
//! 4 and 7): hooks touch only what is theirs, `Prune=confirm` waits for approval, the
//! finalizer holds while the destination is unreachable, and bad input or a failing sync
//! never stops the controller. Same harness as `sync_engine.rs`: one management cluster,
//! one workload cluster, a real Git repository, the controller in-process.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use argosy::run::SyncEngine;
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, ControllerHandle, application_resource, apply_json, argocd_control_plane,
    init_tracing, run_args, start_controller, wait_for,
};
use argosy_tests::fixtures::register_cluster;
use argosy_tests::{ControlPlane, TestCluster};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

/// One test at a time: each runs two kube-apiservers on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const REPO_URL: &str = "https://git.example.com/platform/security.git";

struct Env {
    cp: ControlPlane,
    client: Client,
    dir: tempfile::TempDir,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Env {
    async fn start() -> Result<Env> {
        init_tracing();
        let serial = SERIAL.lock().await;
        let (cp, client) = argocd_control_plane(1).await?;
        let env = Env {
            cp,
            client,
            dir: tempfile::tempdir()?,
            _serial: serial,
        };
        register_cluster(&env.client, "w1", env.workload(), &[]).await?;
        Ok(env)
    }

    fn workload(&self) -> &TestCluster {
        &self.cp.workloads()[0]
    }

    fn commit(&self, files: &[(&str, &str)]) -> Result<String> {
        let entries: BTreeMap<String, TreeEntry> = files
            .iter()
            .map(|(p, c)| ((*p).to_owned(), TreeEntry::File((*c).to_owned())))
            .collect();
        write_tree_commit(
            &self.dir.path().join("repo.git"),
            "refs/heads/main",
            &entries,
        )
        .map(|id| id.to_string())
        .map_err(|e| anyhow::anyhow!(e))
    }

    async fn controller(&self) -> Result<ControllerHandle> {
        self.controller_listening(None).await
    }

    /// The controller, serving `/healthz`, `/readyz` and `/metrics` on `port` if given.
    async fn controller_listening(&self, port: Option<u16>) -> Result<ControllerHandle> {
        let mut args = run_args("security", self.dir.path().join("cache"));
        args.sync_engine = SyncEngine::Argosy;
        args.repos = BTreeMap::from([(REPO_URL.to_owned(), self.dir.path().join("repo.git"))]);
        args.sync.resync = Duration::from_secs(2);
        args.listen = port.map(|port| ([127, 0, 0, 1], port).into());
        start_controller(self.cp.management(), argosy::run::USER_AGENT, args).await
    }

    async fn apply_app(&self, name: &str, path: &str, extra: Value) -> Result<Value> {
        let mut app = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE},
            "spec": {"project": "default",
                "source": {"repoURL": REPO_URL, "targetRevision": "main", "path": path},
                "destination": {"server": self.workload().server, "namespace": "demo"},
                "syncPolicy": {"automated": {"prune": true},
                               "syncOptions": ["CreateNamespace=true"]}}});
        merge(&mut app, extra);
        apply_json(&self.client, &application_resource(), app).await
    }

    fn apps(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            ARGOCD_NAMESPACE,
            &application_resource(),
        )
    }

    async fn wait_app(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        argosy_tests::argocd::wait_app(&self.client, name, what, timeout, check).await
    }
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn has_condition(app: &Value, kind: &str, part: &str) -> bool {
    app.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|c| {
                c["type"] == kind && c["message"].as_str().is_some_and(|m| m.contains(part))
            })
        })
}

fn configmap(name: &str, value: &str, annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{annotations}data:\n  key: \"{value}\"\n"
    )
}

fn configmaps() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&())
}

async fn live_cm(cluster: &TestCluster, name: &str) -> Result<Option<DynamicObject>> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client().await?, "demo", &configmaps());
    Ok(api.get_opt(name).await?)
}

/// A PreSync hook whose manifest is `Namespace payments` while an untracked namespace
/// `payments` exists: the sync fails naming it, and the namespace is untouched (same
/// uid, not being deleted).
#[tokio::test]
async fn a_hook_never_replaces_an_untracked_namespace() -> Result<()> {
    let env = Env::start().await?;
    let namespaces: Api<Namespace> = Api::all(env.workload().client().await?);
    let existing = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "payments",
                "labels": {"owner": "payments-team"}}}))?,
        )
        .await?;
    let hook = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: payments\n  annotations:\n    argocd.argoproj.io/hook: PreSync\n    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation\n";
    env.commit(&[
        ("app/hook.yaml", hook),
        ("app/cm.yaml", &configmap("settings", "v1", "")),
    ])?;
    env.apply_app("hooked", "app", json!({})).await?;
    let _controller = env.controller().await?;
    let app = env
        .wait_app("hooked", "the sync failed", Duration::from_secs(60), |a| {
            text(a, "/status/operationState/phase") == "Failed"
        })
        .await?;
    let message = text(&app, "/status/operationState/message");
    ensure!(
        message.contains(
            "hook payments would replace Namespace/payments, which this application does not own"
        ),
        "{message}"
    );
    // Retries and resyncs change nothing either.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let now = namespaces.get("payments").await?;
    ensure!(now.metadata.uid == existing.metadata.uid, "replaced");
    ensure!(now.metadata.deletion_timestamp.is_none(), "being deleted");
    ensure!(
        live_cm(env.workload(), "settings").await?.is_none(),
        "the sync wave waits behind the failed PreSync hook"
    );
    Ok(())
}

/// `Prune=confirm`: the object Git dropped stays, the operation runs and says it waits
/// for confirmation, until `argosy app confirm-deletion` approves it; then it is pruned.
#[tokio::test]
async fn prune_confirm_waits_for_approval_with_the_cli() -> Result<()> {
    let env = Env::start().await?;
    let confirm = "  annotations:\n    argocd.argoproj.io/sync-options: Prune=confirm\n";
    env.commit(&[
        ("app/keep.yaml", &configmap("keep", "v1", "")),
        ("app/precious.yaml", &configmap("precious", "v1", confirm)),
    ])?;
    env.apply_app("careful", "app", json!({})).await?;
    let _controller = env.controller().await?;
    env.wait_app("careful", "Synced", Duration::from_secs(60), |a| {
        text(a, "/status/sync/status") == "Synced"
    })
    .await?;
    env.commit(&[("app/keep.yaml", &configmap("keep", "v2", ""))])?;
    let app = env
        .wait_app(
            "careful",
            "waiting for pruning confirmation",
            Duration::from_secs(60),
            |a| {
                text(a, "/status/operationState/phase") == "Running"
                    && text(a, "/status/operationState/message")
                        .contains("waiting for pruning confirmation of ConfigMap demo/precious")
            },
        )
        .await?;
    eprintln!("{}", text(&app, "/status/operationState/message"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    ensure!(
        live_cm(env.workload(), "precious").await?.is_some(),
        "pruned without confirmation"
    );

    let mut out = Vec::new();
    argosy::cli::cmd::app::run(
        env.client.clone(),
        ARGOCD_NAMESPACE,
        ARGOCD_NAMESPACE,
        argosy::cli::cmd::app::AppCommand::ConfirmDeletion {
            name: "careful".into(),
        },
        &mut out,
    )
    .await?;
    eprintln!("{}", String::from_utf8_lossy(&out));
    wait_for("precious pruned", Duration::from_secs(60), || async {
        Ok(live_cm(env.workload(), "precious")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    env.wait_app("careful", "Succeeded", Duration::from_secs(60), |a| {
        text(a, "/status/operationState/phase") == "Succeeded"
    })
    .await?;
    let keep = live_cm(env.workload(), "keep").await?.context("keep")?;
    ensure!(keep.data["data"]["key"] == "v2");
    Ok(())
}

/// An Application deleted while its cluster is unreachable keeps its finalizer (and says
/// why in `DeletionError`); deregistering the cluster lets it go, with a Warning Event
/// saying its workloads were left behind.
#[tokio::test]
async fn the_finalizer_holds_while_the_cluster_is_unreachable() -> Result<()> {
    let mut env = Env::start().await?;
    env.commit(&[("app/cm.yaml", &configmap("settings", "v1", ""))])?;
    env.apply_app(
        "held",
        "app",
        json!({"metadata": {"finalizers": ["resources-finalizer.argocd.argoproj.io"]}}),
    )
    .await?;
    let _controller = env.controller().await?;
    env.wait_app("held", "Synced", Duration::from_secs(60), |a| {
        text(a, "/status/sync/status") == "Synced"
    })
    .await?;

    let name = env.workload().name.clone();
    env.cp.stop_cluster(&name).await?;
    env.wait_app("held", "Unknown", Duration::from_secs(60), |a| {
        text(a, "/status/sync/status") == "Unknown"
    })
    .await?;
    env.apps().delete("held", &DeleteParams::default()).await?;
    env.wait_app("held", "DeletionError", Duration::from_secs(60), |a| {
        has_condition(a, "DeletionError", "finalizer stays")
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let app = serde_json::to_value(env.apps().get("held").await?)?;
    ensure!(
        app.pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f
                .iter()
                .any(|f| f == "resources-finalizer.argocd.argoproj.io")),
        "the finalizer must stay while the cluster is unreachable: {app}"
    );

    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), ARGOCD_NAMESPACE);
    secrets
        .delete("cluster-w1", &DeleteParams::default())
        .await?;
    wait_for("the Application gone", Duration::from_secs(120), || async {
        Ok(env.apps().get_opt("held").await?.is_none().then_some(()))
    })
    .await?;
    let events: Api<Event> = Api::namespaced(env.client.clone(), ARGOCD_NAMESPACE);
    let left = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("ResourcesLeftBehind"))
        .context("a ResourcesLeftBehind Event")?;
    ensure!(left.type_.as_deref() == Some("Warning"));
    ensure!(
        left.note
            .as_deref()
            .is_some_and(|n| n.contains("left behind")),
        "{:?}",
        left.note
    );
    Ok(())
}

/// A retry backoff that overflows any duration, on an app whose sync fails: the
/// controller keeps running, the app reports the problem, and another app keeps syncing.
#[tokio::test]
async fn an_overflowing_retry_backoff_does_not_stop_the_controller() -> Result<()> {
    let env = Env::start().await?;
    // `data` values must be strings: the API server refuses this ConfigMap.
    let invalid = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  key: {nested: true}\n";
    let good = |v: &str| configmap("good", v, "");
    env.commit(&[("bad/cm.yaml", invalid), ("good/cm.yaml", &good("v1"))])?;
    env.apply_app(
        "bad",
        "bad",
        json!({"spec": {"syncPolicy": {"retry": {"limit": 5, "backoff": {
            "duration": "99999999999999999999999h", "factor": 9_223_372_036_854_775_807_i64,
            "maxDuration": "99999999999999999999999h"}}}}}),
    )
    .await?;
    env.apply_app("good", "good", json!({})).await?;
    let port = argosy_tests::ports::free_port()?;
    let mut controller = env.controller_listening(Some(port)).await?;
    env.wait_app("bad", "the sync failed", Duration::from_secs(60), |a| {
        text(a, "/status/operationState/phase") == "Failed"
    })
    .await?;
    env.wait_app("good", "Synced", Duration::from_secs(60), |a| {
        text(a, "/status/sync/status") == "Synced"
    })
    .await?;
    env.commit(&[("bad/cm.yaml", invalid), ("good/cm.yaml", &good("v2"))])?;
    wait_for("good at v2", Duration::from_secs(60), || async {
        Ok(live_cm(env.workload(), "good")
            .await?
            .filter(|cm| cm.data["data"]["key"] == "v2")
            .map(|_| ()))
    })
    .await?;
    let bad = serde_json::to_value(env.apps().get("bad").await?)?;
    ensure!(
        has_condition(&bad, "SyncError", "retry.backoff"),
        "the unreadable backoff is reported: {bad}"
    );
    ensure!(!controller.is_finished(), "the controller stopped");
    let (status, answer) = argosy_tests::probe::get(port, "/readyz", None).await?;
    ensure!(status == 200, "/readyz answered {status}: {answer}");
    Ok(())
}
