#![allow(clippy::unwrap_used)]
//! `argosy app list|get|diff|sync|rollback` end to end: the real `argosy` binary, with a
//! kubeconfig for a real management API server where Argosy's controller (built-in sync
//! engine, in-process) deploys from a local Git repository to a real workload API server.
//! Needs `kube-apiserver` from `scripts/install-control-plane.sh`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::{Context as _, Result};
use argosy::run::SyncEngine;
use argosy_crds::Application;
use argosy_tests::ControlPlane;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, apply_json, init_tracing, install_crds, prepare_namespace, run_args,
    start_controller, wait_for,
};
use argosy_tests::fixtures::{AppBuilder, ClusterSecretBuilder};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{ApiResource, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const REPO_URL: &str = "https://git.example/shop.git";

/// Runs the `argosy` binary with a kubeconfig for the management cluster.
struct Argosy {
    kubeconfig: PathBuf,
    repo: PathBuf,
    cache: PathBuf,
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Argosy {
    async fn run(&self, args: &[&str]) -> Ran {
        let Output {
            status,
            stdout,
            stderr,
        } = tokio::process::Command::new(env!("CARGO_BIN_EXE_argosy"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("ARGOSY_REPO_CACHE", &self.cache)
            .env_remove("ARGOSY_NAMESPACE")
            .output()
            .await
            .unwrap();
        let ran = Ran {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        eprintln!(
            "$ argosy {}\n-> {:?}\n{}{}",
            args.join(" "),
            ran.code,
            ran.stdout,
            ran.stderr
        );
        ran
    }

    /// `argosy app diff NAME` with the repository override the controller uses.
    async fn diff(&self, name: &str) -> Ran {
        let repo = format!("{REPO_URL}={}", self.repo.display());
        self.run(&["app", "diff", name, "--repo", &repo]).await
    }
}

/// The whitespace-separated cells of the table row whose first cell is `first`.
fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&first))
        .unwrap_or_default()
}

fn config_map_yaml(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {value}\n")
}

/// A commit on `branch` (`write_commit` starts a branch; it does not extend one).
fn commit(repo: &Path, branch: &str, manual_value: &str) -> String {
    let files = BTreeMap::from([
        ("auto/cm.yaml".to_owned(), config_map_yaml("auto-cm", "a1")),
        (
            "manual/cm.yaml".to_owned(),
            config_map_yaml("manual-cm", manual_value),
        ),
    ]);
    argosy_sync_engine::repo::write_commit(repo, &format!("refs/heads/{branch}"), &files)
        .unwrap()
        .to_string()
}

fn application(name: &str, server: &str, automated: bool) -> Value {
    let app = AppBuilder::new(name)
        .label("tier", name)
        .source(REPO_URL, name)
        .revision("main")
        .server(server)
        .destination_namespace("shop");
    if automated {
        app.automated(true, true).json()
    } else {
        app.json()
    }
}

async fn live_value(workload: &Client, name: &str) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(workload.clone(), "shop");
    api.get_opt(name)
        .await
        .unwrap()
        .and_then(|cm| cm.data)
        .and_then(|d| d.get("key").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_commands_drive_the_sync_engine() -> Result<()> {
    init_tracing();
    let cp = ControlPlane::start(1)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let mgmt = cp.management().client().await?;
    let workload = &cp.workloads()[0];
    let wl = workload.client().await?;
    install_crds(&mgmt).await?;
    prepare_namespace(&mgmt).await?;
    let namespaces: Api<Namespace> = Api::all(wl.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "shop"}}))?,
        )
        .await?;
    ClusterSecretBuilder::new("workload-1", &workload.server)
        .raw_config(workload.argocd_cluster_config().to_string())
        .apply(&mgmt)
        .await?;
    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("shop.git");
    let first = commit(&repo, "main", "v1");
    let app_resource = ApiResource::erase::<Application>(&());
    apply_json(
        &mgmt,
        &app_resource,
        application("auto", &workload.server, true),
    )
    .await?;
    apply_json(
        &mgmt,
        &app_resource,
        application("manual", &workload.server, false),
    )
    .await?;

    let mut args = run_args("app-cli-test", dir.path().join("controller-cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([(REPO_URL.to_owned(), repo.clone())]);
    let controller = start_controller(cp.management(), "argosy-controller", args).await?;

    let kubeconfig = dir.path().join("kubeconfig");
    cp.management().write_kubeconfig(&kubeconfig)?;
    let argosy = Argosy {
        kubeconfig,
        repo: repo.clone(),
        cache: dir.path().join("cli-cache"),
    };
    let apps: Api<Application> = Api::namespaced(mgmt.clone(), ARGOCD_NAMESPACE);
    wait_for(
        "auto Synced and Healthy, manual OutOfSync",
        Duration::from_secs(60),
        || async {
            let status = |app: Application| app.status.unwrap_or_default();
            let auto = status(apps.get("auto").await?);
            let manual = status(apps.get("manual").await?);
            let synced = auto.sync.is_some_and(|s| s.status == "Synced");
            let healthy = auto.health.is_some_and(|h| h.status == "Healthy");
            let waiting = manual.sync.is_some_and(|s| s.status == "OutOfSync");
            Ok((synced && healthy && waiting).then_some(()))
        },
    )
    .await?;

    // list: the automated app is Synced at the commit; the manual one waits.
    let list = argosy.run(&["app", "list"]).await;
    assert_eq!(list.code, Some(0));
    assert_eq!(
        row(&list.stdout, "NAME"),
        [
            "NAME",
            "PROJECT",
            "CLUSTER",
            "NAMESPACE",
            "SYNC",
            "HEALTH",
            "REVISION"
        ]
    );
    assert_eq!(
        row(&list.stdout, "auto"),
        [
            "auto",
            "default",
            workload.server.as_str(),
            "shop",
            "Synced",
            "Healthy",
            &first[..7]
        ]
    );
    assert_eq!(row(&list.stdout, "manual")[4..6], ["OutOfSync", "Missing"]);
    let selected = argosy.run(&["app", "list", "-l", "tier=manual"]).await;
    assert!(row(&selected.stdout, "auto").is_empty());
    assert_eq!(row(&selected.stdout, "manual")[0], "manual");

    // sync --wait of the manual app: Succeeded, the object is on the workload.
    let sync = argosy
        .run(&["app", "sync", "manual", "--wait", "--timeout", "60"])
        .await;
    assert_eq!(sync.code, Some(0), "{}", sync.stderr);
    assert!(
        sync.stdout.contains("Phase:          Succeeded"),
        "{}",
        sync.stdout
    );
    assert_eq!(live_value(&wl, "manual-cm").await.as_deref(), Some("v1"));

    // diff: in sync exits 0; a change on the workload shows and exits 1.
    let clean = argosy.diff("manual").await;
    assert_eq!(clean.code, Some(0), "{}", clean.stderr);
    assert_eq!(clean.stdout, "");
    let cms: Api<ConfigMap> = Api::namespaced(wl.clone(), "shop");
    cms.patch(
        "manual-cm",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"key": "drift"}})),
    )
    .await?;
    let drifted = argosy.diff("manual").await;
    assert_eq!(drifted.code, Some(1), "{}", drifted.stderr);
    assert!(
        drifted
            .stdout
            .starts_with("===== /ConfigMap shop/manual-cm ======\n--- live\n+++ desired\n"),
        "{}",
        drifted.stdout
    );
    assert!(
        drifted.stdout.contains("\n-  key: drift\n+  key: v1\n"),
        "{}",
        drifted.stdout
    );
    assert_eq!(argosy.diff("auto").await.code, Some(0));

    // A sync to another revision, then rollback to history entry 0 restores the first.
    let second = commit(&repo, "next", "v2");
    let sync = argosy
        .run(&["app", "sync", "manual", "--revision", "next", "--wait"])
        .await;
    assert_eq!(sync.code, Some(0), "{}", sync.stderr);
    assert_eq!(live_value(&wl, "manual-cm").await.as_deref(), Some("v2"));
    let rollback = argosy
        .run(&[
            "app",
            "rollback",
            "manual",
            "0",
            "--wait",
            "--timeout",
            "60",
        ])
        .await;
    assert_eq!(rollback.code, Some(0), "{}", rollback.stderr);
    assert_eq!(live_value(&wl, "manual-cm").await.as_deref(), Some("v1"));
    let got = argosy.run(&["app", "get", "manual", "-o", "json"]).await;
    let got: Value = serde_json::from_str(&got.stdout)?;
    let history: Vec<(i64, &str)> = got["status"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["id"].as_i64().unwrap(), h["revision"].as_str().unwrap()))
        .collect();
    assert_eq!(
        history,
        [
            (0, first.as_str()),
            (1, second.as_str()),
            (2, first.as_str())
        ]
    );
    // Git (main) is at the rolled-back commit again: the app is Synced.
    let table = argosy.run(&["app", "get", "manual"]).await;
    assert_eq!(table.code, Some(0));
    assert_eq!(
        row(&table.stdout, "ConfigMap")[..4],
        ["ConfigMap", "shop", "manual-cm", "Synced"]
    );
    let short_first = format!("({})", &first[..7]);
    assert_eq!(
        row(&table.stdout, "2").last(),
        Some(&short_first.as_str()),
        "{}",
        table.stdout
    );

    // Refusals and errors: one line, non-zero.
    let absent = argosy.run(&["app", "rollback", "manual", "9"]).await;
    assert_eq!(absent.code, Some(1));
    assert_eq!(
        absent.stderr,
        "error: application manual has no history entry with ID 9 (history IDs: 0, 1, 2)\n"
    );
    let automated = argosy.run(&["app", "rollback", "auto", "0"]).await;
    assert_eq!(automated.code, Some(1));
    assert_eq!(
        automated.stderr,
        "error: application auto: rollback cannot be initiated when auto-sync is enabled\n"
    );
    let missing = argosy.run(&["app", "get", "nope", "-n", "argocd"]).await;
    assert_eq!(missing.code, Some(1));
    assert_eq!(
        missing.stderr,
        "error: application nope not found in namespace argocd\n"
    );
    assert_eq!(argosy.diff("nope").await.code, Some(2));

    // With no engine running, a requested operation stays: a second one is refused and
    // --wait gives up at its timeout.
    controller.stop().await?;
    let requested = argosy.run(&["app", "sync", "manual"]).await;
    assert_eq!(requested.code, Some(0));
    assert_eq!(
        requested.stdout,
        "operation requested on application argocd/manual\n"
    );
    let refused = argosy.run(&["app", "sync", "manual", "--prune"]).await;
    assert_eq!(refused.code, Some(1));
    assert_eq!(
        refused.stderr,
        "error: another operation is already in progress on application manual\n"
    );
    let timed_out = argosy
        .run(&["app", "sync", "auto", "--wait", "--timeout", "1"])
        .await;
    assert_eq!(timed_out.code, Some(1));
    assert_eq!(
        timed_out.stderr,
        "error: timed out after 1 s waiting for the operation on application auto \
         (the sync engine has not started it)\n"
    );
    let operation = apps.get("manual").await?.operation.unwrap();
    assert_eq!(operation["sync"], json!({"prune": false}));
    assert!(operation["initiatedBy"]["username"].is_string());
    Ok(())
}
