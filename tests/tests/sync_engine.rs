//! The built-in sync engine against real kube-apiservers (one management cluster and
//! two workload clusters, v1.20, no controller-manager): the acceptance criteria of the
//! sync-engine issue.
//!
//! Each test starts its own control plane, registers the workload clusters as Argo CD
//! cluster Secrets, writes a real Git repository (gix) served to the controller through a
//! `--repo URL=PATH` override, and runs `argosy::run::run_with` in-process with
//! `--sync-engine argosy`. There is no Deployment controller: tests play it by patching
//! Deployment status.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use argosy::run::SyncEngine;
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, ControllerHandle, TEST_FIELD_MANAGER, application_resource, apply_json,
    appset_resource, argocd_control_plane, init_tracing, run_args, start_controller, wait_for,
};
use argosy_tests::fixtures::register_cluster;
use argosy_tests::{ControlPlane, TestCluster};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

/// One test at a time: each runs three kube-apiservers on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const REPO_URL: &str = "https://git.example.com/platform/fleet.git";

struct Env {
    cp: ControlPlane,
    client: Client,
    dir: tempfile::TempDir,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Env {
    async fn start(workloads: usize) -> Result<Env> {
        init_tracing();
        let serial = SERIAL.lock().await;
        let (cp, client) = argocd_control_plane(workloads).await?;
        Ok(Env {
            cp,
            client,
            dir: tempfile::tempdir()?,
            _serial: serial,
        })
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("fleet.git")
    }

    /// Commits exactly `files` (path -> content) as the new tree of `main`.
    fn commit(&self, files: &[(&str, &str)]) -> Result<String> {
        let entries: BTreeMap<String, TreeEntry> = files
            .iter()
            .map(|(p, c)| ((*p).to_owned(), TreeEntry::File((*c).to_owned())))
            .collect();
        self.commit_entries(&entries)
    }

    fn commit_entries(&self, entries: &BTreeMap<String, TreeEntry>) -> Result<String> {
        write_tree_commit(&self.repo(), "refs/heads/main", entries)
            .map(|id| id.to_string())
            .map_err(|e| anyhow::anyhow!(e))
    }

    fn workload(&self, i: usize) -> &TestCluster {
        &self.cp.workloads()[i]
    }

    async fn register(&self, i: usize, name: &str, labels: &[(&str, &str)]) -> Result<()> {
        let cluster = self.workload(i);
        register_cluster(&self.client, name, cluster, labels).await
    }

    async fn controller(&self) -> Result<ControllerHandle> {
        let mut args = run_args("sync-engine", self.dir.path().join("cache"));
        args.sync_engine = SyncEngine::Argosy;
        args.repos = BTreeMap::from([(REPO_URL.to_owned(), self.repo())]);
        // Git changes are found by the periodic resync here (no webhook in these tests).
        args.sync.resync = Duration::from_secs(2);
        start_controller(self.cp.management(), argosy::run::USER_AGENT, args).await
    }

    async fn apply_app(&self, name: &str, spec: Value) -> Result<Value> {
        apply_json(
            &self.client,
            &application_resource(),
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                   "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE}, "spec": spec}),
        )
        .await
    }

    async fn app(&self, name: &str) -> Result<Value> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            ARGOCD_NAMESPACE,
            &application_resource(),
        );
        Ok(serde_json::to_value(api.get(name).await?)?)
    }

    /// Waits until `check` holds for Application `name`; on timeout says what it saw.
    async fn wait_app(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        argosy_tests::argocd::wait_app(&self.client, name, what, timeout, check).await
    }

    async fn operation(&self, name: &str, sync: Value) -> Result<()> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            ARGOCD_NAMESPACE,
            &application_resource(),
        );
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"operation": {"sync": sync, "initiatedBy": {"username": "test"}}}),
            ),
        )
        .await?;
        Ok(())
    }
}

fn sync_status(app: &Value) -> &str {
    app.pointer("/status/sync/status")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn health(app: &Value) -> &str {
    app.pointer("/status/health/status")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn has_condition(app: &Value, kind: &str, text: &str) -> bool {
    app.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|c| {
                c["type"] == kind && c["message"].as_str().is_some_and(|m| m.contains(text))
            })
        })
}

fn configmap(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: \"{value}\"\n"
    )
}

fn core(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn deployments() -> ApiResource {
    ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        plural: "deployments".into(),
    }
}

async fn get_live(
    cluster: &TestCluster,
    r: &ApiResource,
    ns: &str,
    name: &str,
) -> Result<Option<Value>> {
    let client = cluster.client().await?;
    let api: Api<DynamicObject> = if ns.is_empty() {
        Api::all_with(client, r)
    } else {
        Api::namespaced_with(client, ns, r)
    };
    Ok(api
        .get_opt(name)
        .await?
        .map(|o| serde_json::to_value(o).unwrap()))
}

fn app_spec(path: &str, server: &str, namespace: &str, sync_policy: Value) -> Value {
    json!({
        "project": "default",
        "source": {"repoURL": REPO_URL, "targetRevision": "main", "path": path},
        "destination": {"server": server, "namespace": namespace},
        "syncPolicy": sync_policy,
    })
}

/// Every file under `dir`, as repository paths under `prefix`.
fn files_under(dir: &Path, prefix: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if path.is_dir() {
            out.extend(files_under(&path, &format!("{name}/"))?);
        } else {
            out.push((name, std::fs::read_to_string(&path)?));
        }
    }
    Ok(out)
}

/// 1. The bundled per-customer example (Kustomize overlays) syncs to two workload
///    clusters; Deployments patched to available turn the apps Healthy.
#[tokio::test]
async fn per_customer_example_syncs_to_both_workload_clusters() -> Result<()> {
    let env = Env::start(2).await?;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/per-customer");
    let files = files_under(&example.join("repo"), "")?;
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    env.commit(&borrowed)?;
    env.register(
        0,
        "globex-prod",
        &[("customer", "globex"), ("tier", "silver")],
    )
    .await?;
    env.register(
        1,
        "initech-prod",
        &[("customer", "initech"), ("tier", "bronze")],
    )
    .await?;
    let appset: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(example.join("appset.yaml"))?)?;
    apply_json(&env.client, &appset_resource(), appset).await?;
    let _controller = env.controller().await?;

    let apps = [
        "web-globex",
        "worker-globex",
        "web-initech",
        "worker-initech",
    ];
    for app in apps {
        env.wait_app(app, "Synced", Duration::from_secs(60), |a| {
            sync_status(a) == "Synced"
        })
        .await?;
    }
    // The objects are on the right clusters, with Argo CD's tracking id.
    for (i, customer) in [(0, "globex"), (1, "initech")] {
        let name = format!("{customer}-web");
        let live = get_live(env.workload(i), &deployments(), "web", &name)
            .await?
            .with_context(|| format!("{name} on workload {i}"))?;
        assert_eq!(
            live["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
            format!("web-{customer}:apps/Deployment:web/{name}")
        );
        let other = get_live(env.workload(1 - i), &deployments(), "web", &name).await?;
        assert!(other.is_none(), "{name} must not be on the other cluster");
    }
    let web = env.app("web-globex").await?;
    assert_eq!(web["status"]["sourceType"], "Kustomize");
    // The API server tracks the status as one field (the CRD's `x-kubernetes-map-type:
    // atomic`), which makes every status write cheaper for it.
    let status_owners: Vec<&Value> = web["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["fieldsV1"].get("f:status").is_some())
        .collect();
    assert!(!status_owners.is_empty(), "{web:#}");
    for owner in status_owners {
        assert_eq!(owner["fieldsV1"]["f:status"], json!({}), "{owner:#}");
    }
    assert_eq!(
        health(&web),
        "Progressing",
        "no Deployment controller has run yet"
    );

    // Play the Deployment controller: every Deployment becomes available.
    for i in 0..2 {
        let client = env.workload(i).client().await?;
        for ns in ["web", "worker"] {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &deployments());
            for d in api.list(&Default::default()).await?.items {
                let replicas = d.data["spec"]["replicas"].as_i64().unwrap_or(1);
                let status = json!({"status": {
                    "observedGeneration": d.metadata.generation,
                    "replicas": replicas, "updatedReplicas": replicas,
                    "readyReplicas": replicas, "availableReplicas": replicas,
                    "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                   {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}});
                api.patch_status(
                    d.metadata.name.as_deref().unwrap(),
                    &PatchParams::default(),
                    &Patch::Merge(status),
                )
                .await?;
            }
        }
    }
    for app in apps {
        env.wait_app(app, "Healthy", Duration::from_secs(20), |a| {
            sync_status(a) == "Synced" && health(a) == "Healthy"
        })
        .await?;
    }
    Ok(())
}

/// 2. A change made on the workload cluster is reverted within 5 s with selfHeal, and
///    reported OutOfSync (not reverted) without it.
#[tokio::test]
async fn drift_is_reverted_with_self_heal_and_reported_without() -> Result<()> {
    let env = Env::start(1).await?;
    env.commit(&[("settings/cm.yaml", &configmap("settings", "from-git"))])?;
    env.register(0, "w1", &[]).await?;
    let server = env.workload(0).server.clone();
    let options = json!(["CreateNamespace=true"]);
    env.apply_app(
        "healed",
        app_spec(
            "settings",
            &server,
            "healed",
            json!({"automated": {"selfHeal": true}, "syncOptions": options}),
        ),
    )
    .await?;
    env.apply_app(
        "watched",
        app_spec(
            "settings",
            &server,
            "watched",
            json!({"automated": {}, "syncOptions": options}),
        ),
    )
    .await?;
    let _controller = env.controller().await?;
    for app in ["healed", "watched"] {
        env.wait_app(app, "Synced", Duration::from_secs(30), |a| {
            sync_status(a) == "Synced"
        })
        .await?;
    }

    let client = env.workload(0).client().await?;
    let drift = json!({"data": {"key": "changed-by-hand"}});
    for ns in ["healed", "watched"] {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &core("ConfigMap", "configmaps"));
        api.patch(
            "settings",
            &PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(&drift),
        )
        .await?;
    }
    let changed = Instant::now();
    wait_for(
        "self-heal to revert the ConfigMap",
        Duration::from_secs(5),
        || async {
            let live = get_live(
                env.workload(0),
                &core("ConfigMap", "configmaps"),
                "healed",
                "settings",
            )
            .await?;
            Ok(live.filter(|l| l["data"]["key"] == "from-git").map(|_| ()))
        },
    )
    .await?;
    eprintln!("self-heal reverted the drift after {:?}", changed.elapsed());
    let watched = env
        .wait_app("watched", "OutOfSync", Duration::from_secs(5), |a| {
            sync_status(a) == "OutOfSync"
        })
        .await?;
    let out_of_sync: Vec<&Value> = watched["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "OutOfSync")
        .collect();
    assert_eq!(out_of_sync.len(), 1);
    assert_eq!(out_of_sync[0]["name"], "settings");
    // Without selfHeal the hand change stays.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let live = get_live(
        env.workload(0),
        &core("ConfigMap", "configmaps"),
        "watched",
        "settings",
    )
    .await?
    .unwrap();
    assert_eq!(live["data"]["key"], "changed-by-hand");
    Ok(())
}

/// 3. Removing a manifest from Git prunes exactly that object; a render that suddenly
///    yields zero objects deletes nothing and says why.
#[tokio::test]
async fn prune_removes_exactly_what_git_dropped_and_never_empties() -> Result<()> {
    let env = Env::start(1).await?;
    let (a, b, c) = (
        configmap("a", "1"),
        configmap("b", "1"),
        configmap("c", "1"),
    );
    env.commit(&[("app/a.yaml", &a), ("app/b.yaml", &b), ("app/c.yaml", &c)])?;
    env.register(0, "w1", &[]).await?;
    let server = env.workload(0).server.clone();
    env.apply_app(
        "pruner",
        app_spec(
            "app",
            &server,
            "pruner",
            json!({"automated": {"prune": true}, "syncOptions": ["CreateNamespace=true"]}),
        ),
    )
    .await?;
    let _controller = env.controller().await?;
    env.wait_app(
        "pruner",
        "Synced with 3 resources",
        Duration::from_secs(30),
        |a| {
            sync_status(a) == "Synced"
                && a["status"]["resources"]
                    .as_array()
                    .is_some_and(|r| r.len() == 3)
        },
    )
    .await?;
    // An unrelated object in the same namespace, not tracked by the app.
    let client = env.workload(0).client().await?;
    let cms: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "pruner", &core("ConfigMap", "configmaps"));
    let bystander: Value = serde_yaml_ng::from_str(&configmap("bystander", "x"))?;
    cms.patch(
        "bystander",
        &PatchParams::apply(TEST_FIELD_MANAGER),
        &Patch::Apply(&bystander),
    )
    .await?;

    env.commit(&[("app/a.yaml", &a), ("app/c.yaml", &c)])?;
    wait_for("b pruned", Duration::from_secs(30), || async {
        Ok(cms.get_opt("b").await?.is_none().then_some(()))
    })
    .await?;
    for name in ["a", "c", "bystander"] {
        ensure!(cms.get_opt(name).await?.is_some(), "{name} must stay");
    }
    env.wait_app(
        "pruner",
        "Synced with 2 resources",
        Duration::from_secs(10),
        |a| {
            sync_status(a) == "Synced"
                && a["status"]["resources"]
                    .as_array()
                    .is_some_and(|r| r.len() == 2)
        },
    )
    .await?;

    // Suddenly nothing renders: nothing is deleted, and the app says why.
    env.commit(&[("app/README.md", "moved elsewhere\n")])?;
    env.wait_app(
        "pruner",
        "refusing to sync to zero",
        Duration::from_secs(30),
        |a| has_condition(a, "SyncError", "allowEmpty"),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for name in ["a", "c", "bystander"] {
        ensure!(
            cms.get_opt(name).await?.is_some(),
            "{name} must survive an empty render"
        );
    }
    Ok(())
}

/// 4. One workload cluster down: its apps go Unknown with a condition, the other cluster
///    keeps syncing, nothing is deleted, and it recovers when the server is back.
#[tokio::test]
async fn unreachable_cluster_goes_unknown_and_recovers() -> Result<()> {
    let mut env = Env::start(2).await?;
    env.commit(&[("app/cm.yaml", &configmap("settings", "v1"))])?;
    env.register(0, "w1", &[]).await?;
    env.register(1, "w2", &[]).await?;
    let policy = json!({"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]});
    let (s1, s2) = (
        env.workload(0).server.clone(),
        env.workload(1).server.clone(),
    );
    env.apply_app("one", app_spec("app", &s1, "demo", policy.clone()))
        .await?;
    env.apply_app("two", app_spec("app", &s2, "demo", policy))
        .await?;
    let _controller = env.controller().await?;
    for app in ["one", "two"] {
        env.wait_app(app, "Synced", Duration::from_secs(30), |a| {
            sync_status(a) == "Synced"
        })
        .await?;
    }

    let name = env.workload(0).name.clone();
    env.cp.stop_cluster(&name).await?;
    let stopped = Instant::now();
    let one = env
        .wait_app(
            "one",
            "Unknown with a condition",
            Duration::from_secs(30),
            |a| sync_status(a) == "Unknown" && has_condition(a, "ComparisonError", "unreachable"),
        )
        .await?;
    eprintln!(
        "app on the stopped cluster went Unknown after {:?}",
        stopped.elapsed()
    );
    assert_eq!(health(&one), "Unknown");
    // The other cluster keeps syncing.
    env.commit(&[("app/cm.yaml", &configmap("settings", "v2"))])?;
    wait_for(
        "v2 on the healthy cluster",
        Duration::from_secs(30),
        || async {
            let live = get_live(
                env.workload(1),
                &core("ConfigMap", "configmaps"),
                "demo",
                "settings",
            )
            .await?;
            Ok(live.filter(|l| l["data"]["key"] == "v2").map(|_| ()))
        },
    )
    .await?;

    env.cp.start_cluster(&name).await?;
    // Unknown until now, so Synced means compared (and synced) after the recovery.
    env.wait_app(
        "one",
        "Synced again after recovery",
        Duration::from_secs(60),
        |a| sync_status(a) == "Synced",
    )
    .await?;
    let live = get_live(
        env.workload(0),
        &core("ConfigMap", "configmaps"),
        "demo",
        "settings",
    )
    .await?
    .context("the object on the recovered cluster must still exist")?;
    assert_eq!(live["data"]["key"], "v2");
    Ok(())
}

/// 5. Rollback to an earlier history entry restores the earlier objects.
#[tokio::test]
async fn rollback_restores_an_earlier_history_entry() -> Result<()> {
    let env = Env::start(1).await?;
    let first = env.commit(&[
        ("app/cm.yaml", &configmap("settings", "v1")),
        ("app/old.yaml", &configmap("only-in-v1", "x")),
    ])?;
    env.register(0, "w1", &[]).await?;
    let server = env.workload(0).server.clone();
    env.apply_app(
        "manual",
        app_spec(
            "app",
            &server,
            "manual",
            json!({"syncOptions": ["CreateNamespace=true"]}),
        ),
    )
    .await?;
    let _controller = env.controller().await?;
    env.wait_app(
        "manual",
        "OutOfSync before any sync",
        Duration::from_secs(30),
        |a| sync_status(a) == "OutOfSync",
    )
    .await?;
    env.operation("manual", json!({"revision": "main"})).await?;
    env.wait_app(
        "manual",
        "first sync in history",
        Duration::from_secs(30),
        |a| {
            a["status"]["history"]
                .as_array()
                .is_some_and(|h| h.len() == 1)
                && a.get("operation").is_none_or(Value::is_null)
        },
    )
    .await?;

    env.commit(&[
        ("app/cm.yaml", &configmap("settings", "v2")),
        ("app/new.yaml", &configmap("only-in-v2", "x")),
    ])?;
    env.operation("manual", json!({"revision": "main", "prune": true}))
        .await?;
    let app = env
        .wait_app(
            "manual",
            "second sync in history",
            Duration::from_secs(30),
            |a| {
                a["status"]["history"]
                    .as_array()
                    .is_some_and(|h| h.len() == 2)
            },
        )
        .await?;
    let cms = |name: &'static str| {
        let cluster = env.workload(0).clone();
        async move { get_live(&cluster, &core("ConfigMap", "configmaps"), "manual", name).await }
    };
    assert_eq!(cms("settings").await?.unwrap()["data"]["key"], "v2");
    assert!(
        cms("only-in-v1").await?.is_none(),
        "pruned by the second sync"
    );
    let entry = app["status"]["history"][0].clone();
    assert_eq!(entry["revision"], first);

    env.operation(
        "manual",
        json!({"revision": entry["revision"], "source": entry["source"], "prune": true}),
    )
    .await?;
    env.wait_app(
        "manual",
        "rollback in history",
        Duration::from_secs(30),
        |a| {
            a["status"]["history"]
                .as_array()
                .is_some_and(|h| h.len() == 3)
                && a["status"]["operationState"]["phase"] == "Succeeded"
        },
    )
    .await?;
    assert_eq!(cms("settings").await?.unwrap()["data"]["key"], "v1");
    assert!(
        cms("only-in-v1").await?.is_some(),
        "restored by the rollback"
    );
    assert!(cms("only-in-v2").await?.is_none(), "pruned by the rollback");

    // A sync to a revision that does not exist fails at once and frees the app for the
    // next request (it does not sit in `operation` forever).
    env.operation("manual", json!({"revision": "no-such-branch"}))
        .await?;
    let app = env
        .wait_app("manual", "operation failed", Duration::from_secs(30), |a| {
            a["status"]["operationState"]["phase"] == "Error"
                && a.get("operation").is_none_or(Value::is_null)
        })
        .await?;
    let message = app["status"]["operationState"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("no-such-branch"), "{message}");
    assert_eq!(
        cms("settings").await?.unwrap()["data"]["key"],
        "v1",
        "nothing changed"
    );
    Ok(())
}

/// 6. A path with `../`, a symlink out of the repo and a 50 MB manifest are refused with
///    a clear condition, nothing is applied, and the other apps keep syncing.
#[tokio::test]
async fn escaping_paths_and_huge_manifests_are_refused() -> Result<()> {
    let env = Env::start(1).await?;
    let huge = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge\ndata:\n  blob: \"{}\"\n",
        "x".repeat(50 * 1024 * 1024)
    );
    let entries: BTreeMap<String, TreeEntry> = [
        (
            "good/cm.yaml".to_owned(),
            TreeEntry::File(configmap("good", "1")),
        ),
        (
            "evil/cm.yaml".to_owned(),
            TreeEntry::Symlink("../../../../etc/hostname".into()),
        ),
        ("big/huge.yaml".to_owned(), TreeEntry::File(huge)),
    ]
    .into_iter()
    .collect();
    env.commit_entries(&entries)?;
    env.register(0, "w1", &[]).await?;
    let server = env.workload(0).server.clone();
    let policy = json!({"automated": {"prune": true}, "syncOptions": ["CreateNamespace=true"]});
    for (name, path) in [
        ("dotdot", "../outside"),
        ("symlink", "evil"),
        ("huge", "big"),
        ("good", "good"),
    ] {
        env.apply_app(name, app_spec(path, &server, name, policy.clone()))
            .await?;
    }
    let _controller = env.controller().await?;
    env.wait_app("good", "Synced", Duration::from_secs(60), |a| {
        sync_status(a) == "Synced"
    })
    .await?;
    for (name, text) in [
        ("dotdot", "leaves the repository"),
        ("symlink", "symlink"),
        ("huge", "limit"),
    ] {
        let app = env
            .wait_app(
                name,
                "refused with a condition",
                Duration::from_secs(30),
                |a| a.pointer("/status/conditions/0/type") == Some(&json!("ComparisonError")),
            )
            .await?;
        let message = app["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.contains(text),
            "{name}: condition {message:?} should mention {text:?}"
        );
        assert_eq!(sync_status(&app), "Unknown");
        let namespace = get_live(env.workload(0), &core("Namespace", "namespaces"), "", name).await;
        assert!(
            matches!(namespace, Ok(None)),
            "{name}: nothing may be applied for a refused source, not even its namespace"
        );
    }
    Ok(())
}

fn jobs() -> ApiResource {
    ApiResource {
        group: "batch".into(),
        version: "v1".into(),
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        plural: "jobs".into(),
    }
}

/// Plays the Job / Deployment controllers: marks `name` complete / available.
async fn complete(cluster: &TestCluster, r: &ApiResource, ns: &str, name: &str) -> Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client().await?, ns, r);
    let status = if r.kind == "Job" {
        json!({"status": {"succeeded": 1, "conditions": [
            {"type": "Complete", "status": "True"}]}})
    } else {
        let live = api.get(name).await?;
        json!({"status": {"observedGeneration": live.metadata.generation, "replicas": 1,
            "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
            "conditions": [{"type": "Available", "status": "True"}]}})
    };
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await?;
    Ok(())
}

/// 7. A PreSync hook runs first and once, sync waves wait for the previous wave to be
///    healthy, and deleting the Application (with Argo CD's resources finalizer) deletes
///    what it deployed.
#[tokio::test]
async fn hooks_and_waves_run_in_order_and_the_finalizer_cleans_up() -> Result<()> {
    let env = Env::start(1).await?;
    let wave = |name: &str, wave: i32| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n    argocd.argoproj.io/sync-wave: \"{wave}\"\ndata:\n  key: \"x\"\n"
        )
    };
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n";
    let migrate = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    argocd.argoproj.io/hook: PreSync\n    argocd.argoproj.io/hook-delete-policy: HookSucceeded\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: migrate\n        image: busybox\n";
    env.commit(&[
        ("app/first.yaml", &wave("first", -1)),
        ("app/web.yaml", deployment),
        ("app/late.yaml", &wave("late", 1)),
        ("app/migrate.yaml", migrate),
    ])?;
    env.register(0, "w1", &[]).await?;
    let server = env.workload(0).server.clone();
    let mut app = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "ordered", "namespace": ARGOCD_NAMESPACE,
                     "finalizers": ["resources-finalizer.argocd.argoproj.io"]},
        "spec": app_spec("app", &server, "ordered",
            json!({"automated": {"prune": true}, "syncOptions": ["CreateNamespace=true"]}))});
    apply_json(&env.client, &application_resource(), app.take()).await?;
    let _controller = env.controller().await?;
    let w = env.workload(0);
    let cm = core("ConfigMap", "configmaps");

    // The PreSync hook runs first; nothing else is applied while it runs.
    wait_for("the PreSync Job", Duration::from_secs(30), || async {
        Ok(get_live(w, &jobs(), "ordered", "migrate")
            .await?
            .map(|_| ()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        get_live(w, &cm, "ordered", "first").await?.is_none(),
        "wave -1 must wait for the hook"
    );
    complete(w, &jobs(), "ordered", "migrate").await?;

    // Waves -1 and 0 go; wave 1 waits until the Deployment of wave 0 is available.
    wait_for("waves -1 and 0", Duration::from_secs(30), || async {
        let first = get_live(w, &cm, "ordered", "first").await?;
        let web = get_live(w, &deployments(), "ordered", "web").await?;
        Ok((first.is_some() && web.is_some()).then_some(()))
    })
    .await?;
    wait_for(
        "the succeeded hook deleted (HookSucceeded)",
        Duration::from_secs(30),
        || async {
            Ok(get_live(w, &jobs(), "ordered", "migrate")
                .await?
                .is_none()
                .then_some(()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        get_live(w, &cm, "ordered", "late").await?.is_none(),
        "wave 1 must wait for wave 0 to be healthy"
    );
    ensure!(
        get_live(w, &jobs(), "ordered", "migrate").await?.is_none(),
        "the hook runs once per operation"
    );
    complete(w, &deployments(), "ordered", "web").await?;
    env.wait_app(
        "ordered",
        "Synced and Healthy",
        Duration::from_secs(30),
        |a| {
            sync_status(a) == "Synced"
                && health(a) == "Healthy"
                && a["status"]["operationState"]["phase"] == "Succeeded"
        },
    )
    .await?;
    ensure!(get_live(w, &cm, "ordered", "late").await?.is_some());
    ensure!(
        get_live(w, &jobs(), "ordered", "migrate").await?.is_none(),
        "no second hook run"
    );

    // Deleting the Application deletes what it deployed, then the Application goes.
    let apps: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        ARGOCD_NAMESPACE,
        &application_resource(),
    );
    apps.delete("ordered", &Default::default()).await?;
    wait_for("the Application gone", Duration::from_secs(30), || async {
        Ok(apps.get_opt("ordered").await?.is_none().then_some(()))
    })
    .await?;
    for (r, name) in [(&cm, "first"), (&cm, "late"), (&deployments(), "web")] {
        ensure!(
            get_live(w, r, "ordered", name).await?.is_none(),
            "{name} must be deleted with the app"
        );
    }
    Ok(())
}

/// 8. SyncFail hooks: when a sync fails, the app's SyncFail hooks run (PostSync hooks do
///    not), the operation reports Running until they complete and then Failed with the
///    original error; a good commit syncs without running them.
#[tokio::test]
async fn sync_fail_hooks_run_when_a_sync_fails() -> Result<()> {
    let env = Env::start(1).await?;
    let service = |port: u32| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  ports:\n  - name: http\n    port: {port}\n"
        )
    };
    let hook = |name: &str, phase: &str| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  annotations:\n    argocd.argoproj.io/hook: {phase}\n    argocd.argoproj.io/hook-delete-policy: HookSucceeded\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: {name}\n        image: busybox\n"
        )
    };
    let (notify, smoke) = (hook("notify", "SyncFail"), hook("smoke", "PostSync"));
    let settings = configmap("settings", "v1");
    // Port 70000 is out of range: the API server rejects the Service.
    let bad = service(70000);
    env.commit(&[
        ("app/settings.yaml", &settings),
        ("app/service.yaml", &bad),
        ("app/notify.yaml", &notify),
        ("app/smoke.yaml", &smoke),
    ])?;
    env.register(0, "w1", &[]).await?;
    let server = env.workload(0).server.clone();
    env.apply_app(
        "failing",
        app_spec(
            "app",
            &server,
            "failing",
            json!({"automated": {}, "syncOptions": ["CreateNamespace=true"]}),
        ),
    )
    .await?;
    let _controller = env.controller().await?;
    let w = env.workload(0);

    // The apply fails: the SyncFail hook runs and the operation waits for it.
    let app = env
        .wait_app(
            "failing",
            "Running, waiting for the SyncFail hook",
            Duration::from_secs(30),
            |a| {
                let state = &a["status"]["operationState"];
                state["phase"] == "Running"
                    && state["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("running SyncFail hooks"))
            },
        )
        .await?;
    let message = app["status"]["operationState"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure!(
        message.contains("Service") && message.contains("api"),
        "the failure names the object: {message}"
    );
    ensure!(get_live(w, &jobs(), "failing", "notify").await?.is_some());
    ensure!(
        get_live(w, &jobs(), "failing", "smoke").await?.is_none(),
        "a PostSync hook never runs after a failure"
    );

    // The hook completes: the operation fails with the original error, and the hook is
    // deleted (HookSucceeded).
    complete(w, &jobs(), "failing", "notify").await?;
    let app = env
        .wait_app("failing", "Failed", Duration::from_secs(30), |a| {
            a["status"]["operationState"]["phase"] == "Failed"
        })
        .await?;
    let failed = app["status"]["operationState"]["message"]
        .as_str()
        .unwrap_or_default();
    ensure!(
        failed.contains("failed to sync") && !failed.contains("SyncFail"),
        "the final message is the sync's failure: {failed}"
    );
    wait_for(
        "the SyncFail hook deleted",
        Duration::from_secs(30),
        || async {
            Ok(get_live(w, &jobs(), "failing", "notify")
                .await?
                .is_none()
                .then_some(()))
        },
    )
    .await?;
    // No retry policy: the failed revision is not tried again, so the hook stays gone.
    tokio::time::sleep(Duration::from_secs(5)).await;
    ensure!(
        get_live(w, &jobs(), "failing", "notify").await?.is_none(),
        "a failed operation is not re-run without a retry policy"
    );

    // A good commit syncs: its PostSync hook runs, the SyncFail hook does not.
    let good = service(80);
    env.commit(&[
        ("app/settings.yaml", &settings),
        ("app/service.yaml", &good),
        ("app/notify.yaml", &notify),
        ("app/smoke.yaml", &smoke),
    ])?;
    wait_for("the PostSync hook", Duration::from_secs(30), || async {
        Ok(get_live(w, &jobs(), "failing", "smoke").await?.map(|_| ()))
    })
    .await?;
    ensure!(
        get_live(w, &jobs(), "failing", "notify").await?.is_none(),
        "SyncFail hooks run only when a sync fails"
    );
    complete(w, &jobs(), "failing", "smoke").await?;
    env.wait_app("failing", "Succeeded", Duration::from_secs(30), |a| {
        a["status"]["operationState"]["phase"] == "Succeeded" && sync_status(a) == "Synced"
    })
    .await?;
    Ok(())
}

/// 9. Multiple sources (`spec.sources`): every source's objects are deployed (a
///    reference-only source renders nothing), status and history carry `revisions` and
///    `sources` as Argo CD writes them, a source that drops an object prunes it, and a
///    rollback to the first history entry restores it.
#[tokio::test]
async fn multiple_sources_deploy_together_and_roll_back() -> Result<()> {
    let env = Env::start(1).await?;
    let (base, extra_v1, extra_v2) = (
        configmap("base", "b"),
        configmap("extra", "1"),
        configmap("extra-two", "2"),
    );
    let first = env.commit(&[("base/base.yaml", &base), ("extra/extra.yaml", &extra_v1)])?;
    env.register(0, "w1", &[]).await?;
    let server = env.workload(0).server.clone();
    let source = |path: &str| json!({"repoURL": REPO_URL, "targetRevision": "main", "path": path});
    env.apply_app(
        "multi",
        json!({
            "project": "default",
            "sources": [source("base"), source("extra"),
                        {"repoURL": REPO_URL, "targetRevision": "main", "ref": "values"}],
            "destination": {"server": server, "namespace": "multi"},
            "syncPolicy": {"syncOptions": ["CreateNamespace=true"]},
        }),
    )
    .await?;
    let _controller = env.controller().await?;
    let w = env.workload(0);
    let cm = core("ConfigMap", "configmaps");

    env.operation("multi", json!({"prune": true})).await?;
    let app = env
        .wait_app("multi", "Synced", Duration::from_secs(30), |a| {
            sync_status(a) == "Synced" && a["status"]["operationState"]["phase"] == "Succeeded"
        })
        .await?;
    for name in ["base", "extra"] {
        ensure!(
            get_live(w, &cm, "multi", name).await?.is_some(),
            "{name} deployed"
        );
    }
    let status = &app["status"];
    ensure!(
        status["sync"]["revisions"] == json!([first, first, first]),
        "one revision per source: {}",
        status["sync"]
    );
    ensure!(status["sync"]["comparedTo"]["sources"][2]["ref"] == "values");
    ensure!(status["sourceTypes"] == json!(["Directory", "Directory"]));
    ensure!(status["history"][0]["revisions"] == json!([first, first, first]));
    ensure!(status["operationState"]["syncResult"]["sources"][1]["path"] == "extra");

    // The second source drops `extra` and adds `extra-two`: a pruning sync follows it.
    env.commit(&[
        ("base/base.yaml", &base),
        ("extra/extra-two.yaml", &extra_v2),
    ])?;
    env.wait_app("multi", "OutOfSync", Duration::from_secs(30), |a| {
        sync_status(a) == "OutOfSync"
    })
    .await?;
    env.operation("multi", json!({"prune": true})).await?;
    env.wait_app("multi", "Synced again", Duration::from_secs(30), |a| {
        sync_status(a) == "Synced"
            && a["status"]["history"]
                .as_array()
                .is_some_and(|h| h.len() == 2)
    })
    .await?;
    ensure!(
        get_live(w, &cm, "multi", "extra").await?.is_none(),
        "extra pruned"
    );
    ensure!(get_live(w, &cm, "multi", "extra-two").await?.is_some());

    // Roll back to the first history entry, as `argosy app rollback` asks for it.
    let app = env.app("multi").await?;
    let operation = argosy::cli::cmd::app::rollback_operation(&app, Some(0), true, "test")?;
    env.operation("multi", operation["sync"].clone()).await?;
    env.wait_app("multi", "rolled back", Duration::from_secs(30), |a| {
        a["status"]["operationState"]["phase"] == "Succeeded"
            && a["status"]["history"]
                .as_array()
                .is_some_and(|h| h.len() == 3)
    })
    .await?;
    ensure!(
        get_live(w, &cm, "multi", "extra").await?.is_some(),
        "extra restored"
    );
    ensure!(
        get_live(w, &cm, "multi", "extra-two").await?.is_none(),
        "extra-two pruned"
    );
    Ok(())
}
