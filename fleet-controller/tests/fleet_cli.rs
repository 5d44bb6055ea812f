#![allow(clippy::unwrap_used)]
//! `argosy cluster add|list|rm`, `argosy status` and `argosy appset list|get` end to end:
//! the real `argosy` binary with one kubeconfig holding a real management API server (its
//! current context) and two real workload API servers. `cluster add` registers the
//! workloads, an ApplicationSet's Cluster generator picks them up and Argosy's controller
//! (in-process, built-in sync engine) deploys to them with the registered credentials.
//! Needs `kube-apiserver` from `scripts/install-control-plane.sh`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use argosy::run::SyncEngine;
use argosy_crds::Cluster;
use argosy_sync_engine::clients::ClusterClients;
use argosy_tests::ControlPlane;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, apply_json, appset_resource, init_tracing, install_crds, prepare_namespace,
    run_args, start_controller, wait_for,
};
use argosy_tests::fixtures::{AppBuilder, AppSetBuilder};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use kube::Api;
use kube::api::ListParams;
use kube::config::Kubeconfig;
use serde_json::Value;

const REPO_URL: &str = "https://git.example/fleet.git";
const MANAGER: &str = "system:serviceaccount:kube-system:argosy-manager";

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `argosy ARGS` with `KUBECONFIG` set.
async fn argosy(kubeconfig: &PathBuf, args: &[&str]) -> Ran {
    let Output {
        status,
        stdout,
        stderr,
    } = tokio::process::Command::new(env!("CARGO_BIN_EXE_argosy"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
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

/// The whitespace-separated cells of the table row whose first cell is `first`.
fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&first))
        .unwrap_or_default()
}

/// One kubeconfig with every cluster's context; the management cluster is current.
fn kubeconfig(cp: &ControlPlane, path: &PathBuf) -> Result<()> {
    let mut merged = Kubeconfig::from_yaml(&cp.management().kubeconfig_yaml())?;
    for workload in cp.workloads() {
        merged = merged.merge(Kubeconfig::from_yaml(&workload.kubeconfig_yaml())?)?;
    }
    std::fs::write(path, serde_yaml_ng::to_string(&merged)?)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_are_added_listed_summarized_and_removed() -> Result<()> {
    init_tracing();
    let mut cp = ControlPlane::start(2)
        .await
        .context("starting the control plane (run scripts/install-control-plane.sh first)")?;
    let mgmt = cp.management().client().await?;
    install_crds(&mgmt).await?;
    prepare_namespace(&mgmt).await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("kubeconfig");
    kubeconfig(&cp, &config)?;
    let (w1, w2) = (cp.workloads()[0].clone(), cp.workloads()[1].clone());

    // cluster add: steps on stderr, one line on stdout.
    let added = argosy(
        &config,
        &[
            "cluster",
            "add",
            "workload-1",
            "--label",
            "customer=acme",
            "--label",
            "fleet=yes",
        ],
    )
    .await;
    assert_eq!(added.code, Some(0), "{}", added.stderr);
    for step in [
        "creating ServiceAccount kube-system/argosy-manager on workload-1... ok\n",
        "creating ClusterRole argosy-manager-role... ok\n",
        "creating ClusterRoleBinding argosy-manager-role-binding... ok\n",
        "requesting a token for ServiceAccount kube-system/argosy-manager (365 days)... ok\n",
        "creating cluster Secret argocd/cluster-workload-1 on mgmt... ok\n",
        "... ok (v1.20.2)\n",
    ] {
        assert!(added.stderr.contains(step), "{step:?} in\n{}", added.stderr);
    }
    assert_eq!(
        added.stdout,
        format!(
            "cluster workload-1 added: {} (v1.20.2), Secret argocd/cluster-workload-1\n",
            w1.server
        )
    );
    // Registered already: refused without --upsert (nothing written), updated with it.
    let again = argosy(&config, &["cluster", "add", "workload-1"]).await;
    assert_eq!(again.code, Some(1));
    assert_eq!(
        again.stderr,
        format!(
            "error: cluster {} is already registered as Secret argocd/cluster-workload-1; pass --upsert to update it\n",
            w1.server
        )
    );
    let upsert = argosy(
        &config,
        &[
            "cluster",
            "add",
            "workload-1",
            "--upsert",
            "--label",
            "customer=acme",
            "--label",
            "fleet=yes",
            "--token-days",
            "30",
        ],
    )
    .await;
    assert_eq!(upsert.code, Some(0), "{}", upsert.stderr);
    assert!(upsert.stdout.starts_with("cluster workload-1 updated: "));
    let json_add = argosy(
        &config,
        &[
            "cluster",
            "add",
            "workload-2",
            "--name",
            "globex-eu",
            "--label",
            "customer=globex",
            "--label",
            "fleet=yes",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(json_add.code, Some(0), "{}", json_add.stderr);
    let registered: Value = serde_json::from_str(&json_add.stdout)?;
    assert_eq!(registered["secret"], "argocd/cluster-globex-eu");
    assert_eq!(registered["server"], w2.server.as_str());
    assert_eq!(registered["labels"]["customer"], "globex");
    assert!(!json_add.stdout.contains("bearerToken"));

    // The Secret parses, carries the ServiceAccount's token (not the admin's), and a client
    // built from it, as the sync engine builds it, lists namespaces on the workload.
    let secrets: Api<Secret> = Api::namespaced(mgmt.clone(), ARGOCD_NAMESPACE);
    let cluster = Cluster::from_secret(&secrets.get("cluster-workload-1").await?)?;
    assert_eq!(
        (cluster.name.as_str(), cluster.server.as_str()),
        ("workload-1", w1.server.as_str())
    );
    assert_eq!(cluster.labels["customer"], "acme");
    let token = cluster.config.bearer_token.clone().unwrap();
    assert!(!token.expose().is_empty() && token.expose() != w1.token);
    assert_eq!(
        cluster.config.tls_client_config.ca_data.as_deref(),
        Some(w1.ca_data().as_str())
    );
    let conn = ClusterClients::new(mgmt.clone(), false)
        .connect(&cluster)
        .await?;
    let namespaces: Api<Namespace> = Api::all(conn.client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"kube-system".to_owned()), "{names:?}");
    assert!(
        cp.audit_events("workload-1")?
            .iter()
            .any(|e| e.username == MANAGER && e.resource.as_deref() == Some("namespaces")),
        "the namespace list was not made as {MANAGER}"
    );

    // cluster list: both, with their labels; no app yet, so no state.
    let list = argosy(&config, &["cluster", "list"]).await;
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    assert_eq!(
        row(&list.stdout, "NAME"),
        ["NAME", "SERVER", "LABELS", "APPS", "STATE"]
    );
    assert_eq!(
        row(&list.stdout, "workload-1"),
        [
            "workload-1",
            w1.server.as_str(),
            "customer=acme,fleet=yes",
            "0",
            "Unknown"
        ]
    );
    let probed = argosy(&config, &["cluster", "list", "--probe"]).await;
    assert_eq!(
        row(&probed.stdout, "globex-eu"),
        [
            "globex-eu",
            w2.server.as_str(),
            "v1.20.2",
            "customer=globex,fleet=yes",
            "0",
            "Connected"
        ]
    );

    // An ApplicationSet deploys to every registered cluster with the added credentials.
    let repo = dir.path().join("fleet.git");
    argosy_sync_engine::repo::write_commit(
        &repo,
        "refs/heads/main",
        &BTreeMap::from([(
            "web/cm.yaml".to_owned(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  key: v1\n"
                .to_owned(),
        )]),
    )
    .unwrap();
    apply_json(
        &mgmt,
        &appset_resource(),
        AppSetBuilder::new("web")
            .cluster_generator(&[("fleet", "yes")])
            .template(
                "{{name}}-web",
                &AppBuilder::new("")
                    .source(REPO_URL, "web")
                    .revision("main")
                    .server("{{server}}")
                    .destination_namespace("web")
                    .automated(true, true)
                    .sync_option("CreateNamespace=true"),
            )
            .json(),
    )
    .await?;
    let mut args = run_args("fleet-cli-test", dir.path().join("controller-cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([(REPO_URL.to_owned(), repo.clone())]);
    args.sync.resync = Duration::from_secs(2);
    let _controller = start_controller(cp.management(), "argosy-controller", args).await?;
    wait_for(
        "both apps Synced and Healthy",
        Duration::from_secs(90),
        || async {
            let ran = argosy(&config, &["app", "list"]).await;
            let ok = |name| row(&ran.stdout, name).get(4..6) == Some(&["Synced", "Healthy"][..]);
            Ok((ok("workload-1-web") && ok("globex-eu-web")).then_some(()))
        },
    )
    .await?;
    let cms: Api<ConfigMap> = Api::namespaced(w1.client().await?, "web");
    assert!(cms.get_opt("web").await?.is_some());

    // status: clusters Connected (their apps compared), the ApplicationSet, totals.
    let status = argosy(&config, &["status"]).await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    assert_eq!(
        row(&status.stdout, "workload-1"),
        [
            "workload-1",
            w1.server.as_str(),
            "Connected",
            "1",
            "Synced:1",
            "Healthy:1"
        ]
    );
    assert_eq!(row(&status.stdout, "globex-eu")[2], "Connected");
    assert_eq!(
        row(&status.stdout, "web"),
        ["web", "argocd", "2", "Synced:2", "Healthy:2"]
    );
    assert!(
        status
            .stdout
            .contains("Clusters:         2 (0 unreachable)\n"),
        "{}",
        status.stdout
    );
    let grouped = argosy(&config, &["status", "--group-by", "customer"]).await;
    assert_eq!(row(&grouped.stdout, "workload-1")[2], "acme");
    assert_eq!(
        row(&grouped.stdout, "globex"),
        ["globex", "1", "0", "1", "Synced:1", "Healthy:1"]
    );
    let json_status = argosy(&config, &["status", "-o", "json"]).await;
    let summary: Value = serde_json::from_str(&json_status.stdout)?;
    assert_eq!(summary["apps"]["bySync"]["Synced"], 2);

    // appset list|get: owned Applications by status and the generators.
    let appsets = argosy(&config, &["appset", "list"]).await;
    assert_eq!(appsets.code, Some(0), "{}", appsets.stderr);
    assert_eq!(
        row(&appsets.stdout, "web"),
        [
            "web",
            "2",
            "Synced:2",
            "Healthy:2",
            "ApplicationSetUpToDate",
            "clusters"
        ]
    );
    let got = argosy(&config, &["appset", "get", "web"]).await;
    assert!(
        got.stdout
            .contains("Generator:     clusters: selector fleet=yes\n"),
        "{}",
        got.stdout
    );
    assert_eq!(row(&got.stdout, "globex-eu-web")[4], "Synced");
    let missing = argosy(&config, &["appset", "get", "nope"]).await;
    assert_eq!(missing.code, Some(1));
    assert_eq!(
        missing.stderr,
        "error: applicationset nope not found in namespace argocd\n"
    );

    // cluster rm refuses while an Application deploys there.
    let refused = argosy(&config, &["cluster", "rm", "workload-1"]).await;
    assert_eq!(refused.code, Some(1));
    assert_eq!(
        refused.stderr,
        format!(
            "error: cluster workload-1 ({}) is the destination of 1 application(s) (argocd/workload-1-web); delete or move them first, or pass --force\n",
            w1.server
        )
    );
    assert!(secrets.get_opt("cluster-workload-1").await?.is_some());

    // A stopped workload shows as unreachable, from the apps' conditions alone.
    cp.stop_cluster("workload-2").await?;
    let stopped = Instant::now();
    let status = wait_for(
        "globex-eu Unreachable in argosy status",
        Duration::from_secs(30),
        || async {
            let ran = argosy(&config, &["status"]).await;
            Ok((row(&ran.stdout, "globex-eu").get(2) == Some(&"Unreachable")).then_some(ran))
        },
    )
    .await?;
    eprintln!("Unreachable after {:?}", stopped.elapsed());
    assert_eq!(row(&status.stdout, "workload-1")[2], "Connected");
    assert!(
        status.stdout.contains(&format!(
            "\nglobex-eu: cluster {} is unreachable",
            w2.server
        )),
        "{}",
        status.stdout
    );
    let list = argosy(&config, &["cluster", "list"]).await;
    assert_eq!(row(&list.stdout, "globex-eu")[4], "Unreachable");

    // --force removes the Secret only: the workload keeps its ServiceAccount and objects.
    let removed = argosy(&config, &["cluster", "rm", &w1.server, "--force"]).await;
    assert_eq!(removed.code, Some(0), "{}", removed.stderr);
    assert_eq!(
        removed.stdout,
        format!(
            "cluster workload-1 ({}) removed: deleted Secret argocd/cluster-workload-1; nothing on the cluster was changed\n",
            w1.server
        )
    );
    assert!(
        removed
            .stderr
            .starts_with("warning: 1 application(s) still deploy")
    );
    assert!(secrets.get_opt("cluster-workload-1").await?.is_none());
    let accounts: Api<ServiceAccount> = Api::namespaced(w1.client().await?, "kube-system");
    assert!(accounts.get_opt("argosy-manager").await?.is_some());
    assert!(cms.get_opt("web").await?.is_some());
    let gone = argosy(&config, &["cluster", "rm", "workload-1"]).await;
    assert_eq!(gone.code, Some(1));
    assert_eq!(
        gone.stderr,
        "error: cluster workload-1 not found (no cluster Secret in namespace argocd has this name or server)\n"
    );
    Ok(())
}
