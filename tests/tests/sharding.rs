//! The sync engine sharded across replicas, on real kube-apiservers (one management and
//! six workload clusters, v1.20): the acceptance criterion of the scale-out issue.
//!
//! Three replicas (in-process controllers, leader election on, the default
//! `consistent-hashing` method and 10 s Leases) sync one Application per workload cluster.
//! Every cluster is synced by exactly one replica; one replica is killed (its runtime
//! dropped: no Lease released, as a crash), its clusters are taken over and a change made
//! during the outage reaches them within 30 s; restarted, it takes its share back; and the
//! audit logs of the six workload API servers never show one cluster written by two
//! replicas in the same second. Each replica's destination clients name it in their
//! User-Agent (`argosy/<version> (<identity>)`), which is how the audit logs tell them
//! apart.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
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
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::DynamicObject;
use serde_json::json;

const REPO_URL: &str = "https://git.example.com/platform/fleet.git";
const REPLICAS: [&str; 3] = ["replica-0", "replica-1", "replica-2"];
const CLUSTERS: usize = 6;
const TARGET_NS: &str = "team";
/// The dashboard's token (its JSON API says what a replica holds, too).
const TOKEN: &str = "sharding-test-token";
/// The bound for a dead replica's clusters to be taken over and a change synced.
const TAKEOVER: Duration = Duration::from_secs(30);

/// Commits the fleet's one manifest: a ConfigMap whose `release` is `release`.
fn commit(repo: &Path, release: &str) -> Result<String> {
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fleet\ndata:\n  release: {release}\n"
    );
    let files = BTreeMap::from([("app/fleet.yaml".to_owned(), TreeEntry::File(manifest))]);
    let id = write_tree_commit(repo, "refs/heads/main", &files).map_err(|e| anyhow::anyhow!(e))?;
    Ok(id.to_string())
}

/// One replica: its controller and the port of its `/metrics`.
struct Replica {
    identity: &'static str,
    port: u16,
    handle: ControllerHandle,
}

async fn start_replica(
    cp: &ControlPlane,
    identity: &'static str,
    dir: &Path,
    repo: &Path,
) -> Result<Replica> {
    let mut args = run_args(identity, dir.join(format!("cache-{identity}")));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([(REPO_URL.to_owned(), repo.to_owned())]);
    args.leader_election = true;
    args.lease_name = "argosy-controller".to_owned();
    args.lease_duration = Duration::from_secs(10);
    // The change made during the outage is a commit; every replica re-checks its apps
    // every 5 s (the local repository is read at each check).
    args.sync.resync = Duration::from_secs(5);
    let port = argosy_tests::ports::free_port()?;
    args.listen = Some(([127, 0, 0, 1], port).into());
    args.dashboard_token = Some(TOKEN.to_owned().into());
    let handle =
        start_controller(cp.management(), &format!("argosy/test ({identity})"), args).await?;
    Ok(Replica {
        identity,
        port,
        handle,
    })
}

/// The clusters (server URLs) `replica` says it holds (`argosy_shard_cluster_held`).
async fn held(replica: &Replica) -> Result<BTreeSet<String>> {
    let (status, answer) = argosy_tests::probe::get(replica.port, "/metrics", None).await?;
    ensure!(
        status == 200,
        "GET /metrics of {} answered {status}",
        replica.identity
    );
    Ok(answer
        .lines()
        .filter_map(|l| l.strip_prefix("argosy_shard_cluster_held{cluster=\""))
        .filter_map(|rest| rest.split_once('"').map(|(cluster, _)| cluster.to_owned()))
        .collect())
}

/// The clusters `replica` says it holds in its JSON API (`GET /api/v1/shard`).
async fn held_in_api(replica: &Replica) -> Result<BTreeSet<String>> {
    let (status, answer) =
        argosy_tests::probe::get(replica.port, "/api/v1/shard", Some(TOKEN)).await?;
    ensure!(
        status == 200,
        "GET /api/v1/shard of {} answered {answer}",
        replica.identity
    );
    let (_, body) = answer.split_once("\r\n\r\n").context("no end of headers")?;
    let shard: serde_json::Value = serde_json::from_str(body)?;
    ensure!(shard["sharded"] == json!(true), "{shard}");
    ensure!(
        shard["shard"]["identity"] == json!(replica.identity),
        "{shard}"
    );
    Ok(shard["shard"]["held"]
        .as_array()
        .context("no held clusters")?
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect())
}

/// Every workload's Application is Synced at `revision` and its ConfigMap says `release`.
async fn all_at(
    apps: &Api<DynamicObject>,
    workloads: &[&TestCluster],
    revision: &str,
    release: &str,
) -> Result<Option<()>> {
    for workload in workloads {
        let app = serde_json::to_value(apps.get(&app_name(workload)).await?)?;
        let synced = app.pointer("/status/sync/status") == Some(&json!("Synced"))
            && app.pointer("/status/sync/revision") == Some(&json!(revision));
        if !synced {
            return Ok(None);
        }
        let client = workload.client().await?;
        let cms: Api<ConfigMap> = Api::namespaced(client, TARGET_NS);
        let cm = cms.get("fleet").await?;
        if cm.data.and_then(|d| d.get("release").cloned()).as_deref() != Some(release) {
            return Ok(None);
        }
    }
    Ok(Some(()))
}

fn app_name(workload: &TestCluster) -> String {
    format!("fleet-{}", workload.name)
}

/// Which replica a workload audit event came from (its User-Agent's parenthesis).
fn replica_of(user_agent: &str) -> Option<&str> {
    user_agent
        .strip_prefix("argosy/")?
        .split_once(" (")?
        .1
        .strip_suffix(')')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_six_clusters_and_take_over_a_dead_ones() -> Result<()> {
    init_tracing();
    let (cp, admin) = argocd_control_plane(CLUSTERS).await?;
    let workloads: Vec<&TestCluster> = cp.workloads().iter().collect();
    for workload in &workloads {
        register_cluster(&admin, &workload.name, workload, &[]).await?;
    }
    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("fleet.git");
    let first = commit(&repo, "one")?;
    for workload in &workloads {
        apply_json(
            &admin,
            &application_resource(),
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": app_name(workload), "namespace": ARGOCD_NAMESPACE},
            "spec": {
                "project": "default",
                "source": {"repoURL": REPO_URL, "targetRevision": "main", "path": "app"},
                "destination": {"server": workload.server, "namespace": TARGET_NS},
                "syncPolicy": {"automated": {"prune": true, "selfHeal": true},
                               "syncOptions": ["CreateNamespace=true"]},
            }}),
        )
        .await?;
    }
    let mut replicas = Vec::new();
    for identity in REPLICAS {
        replicas.push(start_replica(&cp, identity, dir.path(), &repo).await?);
    }
    let apps: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), ARGOCD_NAMESPACE, &application_resource());
    wait_for("every cluster synced", Duration::from_secs(120), || {
        all_at(&apps, &workloads, &first, "one")
    })
    .await?;

    // Every workload cluster is held by exactly one replica (the implicit in-cluster
    // cluster is spread too).
    let servers: BTreeSet<String> = workloads
        .iter()
        .map(|w| argosy_crds::server_key(&w.server))
        .collect();
    let shares = wait_for("the shares settle", Duration::from_secs(30), || async {
        let mut shares = BTreeMap::new();
        for replica in &replicas {
            shares.insert(replica.identity, held(replica).await?);
        }
        let holders = |server: &String| shares.values().filter(|h| h.contains(server)).count();
        Ok(servers.iter().all(|s| holders(s) == 1).then_some(shares))
    })
    .await?;
    eprintln!("shares: {shares:#?}");

    // Kill a replica that holds workload clusters.
    let victim = *shares
        .iter()
        .filter(|(_, held)| held.iter().any(|s| servers.contains(s)))
        .map(|(identity, _)| identity)
        .next()
        .context("no replica holds a workload cluster")?;
    let orphaned: BTreeSet<String> = shares[victim].intersection(&servers).cloned().collect();
    let position = replicas.iter().position(|r| r.identity == victim).unwrap();
    let killed = replicas.remove(position);
    let killed_at = k8s_openapi::jiff::Timestamp::now();
    killed.handle.kill().await?;
    eprintln!("killed {victim}, which held {orphaned:?}");

    // A change during the outage: synced everywhere, the orphaned clusters included,
    // within the bound from the kill.
    let second = commit(&repo, "two")?;
    wait_for("the change synced on every cluster", TAKEOVER, || {
        all_at(&apps, &workloads, &second, "two")
    })
    .await?;
    let survivors: BTreeSet<String> = replicas.iter().map(|r| r.identity.to_owned()).collect();
    for workload in &workloads {
        let server = argosy_crds::server_key(&workload.server);
        if !orphaned.contains(&server) {
            continue;
        }
        let writers: BTreeSet<String> = cp
            .argosy_writes(&workload.name)?
            .into_iter()
            .filter(|e| e.received > killed_at)
            .filter_map(|e| replica_of(&e.user_agent).map(str::to_owned))
            .collect();
        ensure!(
            !writers.is_empty() && writers.is_subset(&survivors),
            "{}: written after the kill by {writers:?}, not by a survivor only",
            workload.name
        );
    }

    // Restarted, the replica takes its share back (once its old Lease has expired: it was
    // not released), and a change after that reaches every cluster again.
    replicas.push(start_replica(&cp, victim, dir.path(), &repo).await?);
    let back = replicas.last().unwrap();
    wait_for(
        "the restarted replica holds its share again",
        Duration::from_secs(60),
        || async {
            let now = held(back).await?;
            Ok(orphaned.is_subset(&now).then_some(()))
        },
    )
    .await?;
    let third = commit(&repo, "three")?;
    wait_for(
        "the change after the restart synced",
        Duration::from_secs(60),
        || all_at(&apps, &workloads, &third, "three"),
    )
    .await?;
    for workload in &workloads {
        let server = argosy_crds::server_key(&workload.server);
        let holders: Vec<&str> = {
            let mut holders = Vec::new();
            for replica in &replicas {
                if held(replica).await?.contains(&server) {
                    holders.push(replica.identity);
                }
            }
            holders
        };
        ensure!(holders.len() == 1, "{server} held by {holders:?}");
    }
    for replica in &replicas {
        ensure!(
            held_in_api(replica).await? == held(replica).await?,
            "{}: the JSON API and /metrics disagree",
            replica.identity
        );
    }

    // No cluster written by two replicas in the same second, in the whole run.
    let mut checked = 0;
    for workload in &workloads {
        let mut by_second: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        for event in cp.argosy_writes(&workload.name)? {
            let replica = replica_of(&event.user_agent)
                .with_context(|| format!("a write without a replica: {}", event.describe()))?;
            by_second
                .entry(event.received.as_second())
                .or_default()
                .insert(replica.to_owned());
            checked += 1;
        }
        for (second, writers) in &by_second {
            ensure!(
                writers.len() == 1,
                "{} written by {writers:?} in the second {second}",
                workload.name
            );
        }
    }
    ensure!(
        checked >= 3 * CLUSTERS,
        "only {checked} writes in the audit logs"
    );
    for replica in replicas {
        replica.handle.stop().await?;
    }
    Ok(())
}
