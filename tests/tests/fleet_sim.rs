#![allow(clippy::unwrap_used)]
//! Simulated clusters (`argosy_tests::fleet_sim`) on one real kube-apiserver, synced by the
//! in-process controller: the live cache watches only the namespaces the apps use (the
//! other simulated clusters' objects, and a namespace nobody deploys to, never enter it),
//! falls back to one cluster-wide watch above `--watch-namespaces-max`, reports each
//! cluster's cache on `/metrics`, keeps the orphaned-resource warning per destination
//! namespace, and an app moved to another namespace prunes what it left in the first one
//! (whose watches then go).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use argosy::run::SyncEngine;
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, application_resource, apply_json, argocd_control_plane, init_tracing,
    run_args, start_controller, wait_app, wait_for,
};
use argosy_tests::fixtures::{AppBuilder, create_namespace, free_port};
use argosy_tests::fleet_sim::{FleetSim, SimCluster};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};

const REPO_URL: &str = "https://git.example.com/platform/fleet.git";
/// ConfigMaps in a namespace no app deploys to.
const NOISE: usize = 30;

/// The body of `GET /metrics`.
async fn scrape(port: u16) -> Result<String> {
    let (status, body) = argosy_tests::probe::get(port, "/metrics", None).await?;
    if status != 200 {
        bail!("GET /metrics answered {status}: {body}");
    }
    Ok(body)
}

/// The value of `family{server="<server>",...rest}` in `text`.
fn sample(text: &str, family: &str, server: &str, rest: &str) -> Option<i64> {
    let prefix = format!("{family}{{server=\"{server}\",");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .find(|l| l.contains(rest))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

/// `(cached objects, namespace watches, cluster-wide watches)` of `cluster`.
fn cache_of(text: &str, cluster: &SimCluster) -> (Option<i64>, Option<i64>, Option<i64>) {
    (
        sample(text, "argosy_cluster_cache_objects", &cluster.server, "}"),
        sample(
            text,
            "argosy_cluster_watches",
            &cluster.server,
            "scope=\"namespace\"",
        ),
        sample(
            text,
            "argosy_cluster_watches",
            &cluster.server,
            "scope=\"cluster\"",
        ),
    )
}

fn app(name: &str, cluster: &SimCluster, namespace: &str) -> AppBuilder {
    AppBuilder::new(name)
        .source(REPO_URL, "apps/web")
        .revision("main")
        .server(&cluster.server)
        .destination_namespace(namespace)
        .automated(true, true)
}

fn synced(app: &Value) -> bool {
    app.pointer("/status/sync/status") == Some(&json!("Synced"))
        && app.pointer("/status/operationState/phase") == Some(&json!("Succeeded"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_clusters_are_watched_only_where_their_apps_are() -> Result<()> {
    init_tracing();
    let (cp, client) = argocd_control_plane(1).await?;
    let sim = FleetSim::start(&cp, 3).await?;
    sim.register_all(&client).await?;
    let [one, two, three] = sim.clusters() else {
        bail!("three simulated clusters")
    };
    let backing = cp.workloads()[0].client().await?;
    for cluster in sim.clusters() {
        for suffix in ["a", "b", "c"] {
            create_namespace(&backing, &cluster.namespace(suffix)).await?;
        }
    }
    create_namespace(&backing, "elsewhere").await?;
    let config_maps = |ns: &str| Api::<ConfigMap>::namespaced(backing.clone(), ns);
    for i in 0..NOISE {
        let cm = serde_json::from_value(json!({"metadata": {"name": format!("noise-{i}")}}))?;
        config_maps("elsewhere")
            .create(&PostParams::default(), &cm)
            .await?;
    }
    // Untracked, in one app's destination namespace: its orphan.
    let stray = serde_json::from_value(json!({"metadata": {"name": "stray"}}))?;
    config_maps(&one.namespace("a"))
        .create(&PostParams::default(), &stray)
        .await?;

    // The default project, warning about orphaned resources.
    let projects = ApiResource::erase::<argosy_crds::AppProject>(&());
    apply_json(
        &client,
        &projects,
        json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": "default", "namespace": ARGOCD_NAMESPACE},
        "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                 "orphanedResources": {"warn": true}}}),
    )
    .await?;

    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("fleet.git");
    let files = [
        (
            "apps/web/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  k: v\n",
        ),
        (
            "apps/web/serviceaccount.yaml",
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n",
        ),
    ];
    let entries: BTreeMap<String, TreeEntry> = files
        .iter()
        .map(|(p, c)| ((*p).to_owned(), TreeEntry::File((*c).to_owned())))
        .collect();
    write_tree_commit(&repo, "refs/heads/main", &entries).map_err(|e| anyhow::anyhow!(e))?;

    // sim-0001 and sim-0002: one app each, in namespace `a`. sim-0003: three apps in
    // namespaces a, b, c: above the limit of 2, so watched cluster-wide.
    let mut apps = vec![
        ("one-a".to_owned(), one, one.namespace("a")),
        ("two-a".to_owned(), two, two.namespace("a")),
    ];
    for suffix in ["a", "b", "c"] {
        apps.push((format!("three-{suffix}"), three, three.namespace(suffix)));
    }
    let app_api = application_resource();
    for (name, cluster, namespace) in &apps {
        apply_json(&client, &app_api, app(name, cluster, namespace).json()).await?;
    }
    let port = free_port()?;
    let mut args = run_args("fleet-sim", dir.path().join("cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([(REPO_URL.to_owned(), repo)]);
    args.listen = Some(([127, 0, 0, 1], port).into());
    args.sync.watch_namespaces_max = 2;
    let _controller = start_controller(cp.management(), argosy::run::USER_AGENT, args).await?;
    for (name, _, _) in &apps {
        wait_app(&client, name, "Synced", Duration::from_secs(120), synced).await?;
    }
    for (_, cluster, namespace) in &apps {
        config_maps(namespace)
            .get("web-config")
            .await
            .with_context(|| format!("web-config in {namespace} of {}", cluster.name))?;
    }

    // Each cluster's cache holds its own apps' objects (2 each) and what else is in their
    // namespaces (the stray ConfigMap), never its neighbours' or the noise...
    let text = scrape(port).await?;
    assert_eq!(cache_of(&text, one), (Some(3), Some(2), Some(0)), "{text}");
    assert_eq!(cache_of(&text, two), (Some(2), Some(2), Some(0)), "{text}");
    // ... but past the limit one watch per kind sees every ConfigMap and ServiceAccount of
    // its API server: the simulated neighbours' and the noise too.
    let (objects, per_namespace, wide) = cache_of(&text, three);
    assert_eq!((per_namespace, wide), (Some(0), Some(2)), "{text}");
    let everything = (2 * 5 + 1 + NOISE) as i64;
    assert!(
        objects.is_some_and(|n| n >= everything),
        "sim-0003 caches {objects:?} objects, fewer than the {everything} on its API server"
    );
    let bytes = sample(&text, "argosy_cluster_cache_bytes", &one.server, "}");
    assert!(bytes.is_some_and(|b| b > 0), "{text}");

    // The orphan warning counts the destination namespace only: the stray one for one-a,
    // nothing for two-a (the noise is elsewhere, and sim-0003's objects are tracked).
    let one_a = wait_app(
        &client,
        "one-a",
        "an orphan warning",
        Duration::from_secs(60),
        |a| orphan_warning(a).is_some(),
    )
    .await?;
    assert_eq!(
        orphan_warning(&one_a).as_deref(),
        Some("Application has 1 orphaned resources")
    );
    let two_a = wait_app(&client, "two-a", "Synced", Duration::from_secs(10), synced).await?;
    assert_eq!(orphan_warning(&two_a), None);

    // two-a moves to namespace b: its objects in a are pruned, the ones in b created, and
    // once its status no longer lists namespace a, the watches there go.
    apply_json(
        &client,
        &app_api,
        app("two-a", two, &two.namespace("b")).json(),
    )
    .await?;
    let b = two.namespace("b");
    wait_app(
        &client,
        "two-a",
        "synced to namespace b",
        Duration::from_secs(120),
        |a| {
            synced(a)
                && a.pointer("/status/resources")
                    .and_then(Value::as_array)
                    .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["namespace"] == json!(b)))
        },
    )
    .await?;
    config_maps(&two.namespace("b")).get("web-config").await?;
    let left = config_maps(&two.namespace("a"))
        .get_opt("web-config")
        .await?;
    assert!(
        left.is_none(),
        "web-config was left in {}",
        two.namespace("a")
    );
    let accounts: Api<DynamicObject> = Api::namespaced_with(
        backing.clone(),
        &two.namespace("a"),
        &ApiResource::erase::<k8s_openapi::api::core::v1::ServiceAccount>(&()),
    );
    assert!(accounts.get_opt("web").await?.is_none());
    wait_for(
        "sim-0002's watches to leave namespace a",
        Duration::from_secs(60),
        || async {
            let text = scrape(port).await?;
            Ok((cache_of(&text, two) == (Some(2), Some(2), Some(0))).then_some(()))
        },
    )
    .await?;
    // Every simulated cluster was reached at its own address.
    for cluster in sim.clusters() {
        assert!(
            cluster.connections() > 0,
            "{} was never connected to",
            cluster.name
        );
    }
    Ok(())
}

fn orphan_warning(app: &Value) -> Option<String> {
    app.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == json!("OrphanedResourceWarning"))
        .and_then(|c| c["message"].as_str())
        .map(str::to_owned)
}
