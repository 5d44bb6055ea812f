//! The write fence against real kube-apiservers (one management and one workload cluster,
//! v1.20, no controller-manager): the acceptance criterion of the fence issue.
//!
//! The replica loses its Leases in the middle of a sync with waves (the test takes both,
//! the leader Lease and its membership Lease, as another replica would: with leader
//! election the sync engine is sharded, and the membership Lease is what lets a replica
//! write to its clusters); from then on the audit logs of both API servers must show no
//! write by the old replica later than 1 s after the loss, and the waves it was waiting
//! to apply must never reach the workload cluster.
//!
//! There is no Deployment controller: the test plays it by patching Deployment status.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use argosy::run::SyncEngine;
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, application_resource, apply_json, argocd_control_plane, init_tracing,
    run_args, start_controller, wait_for,
};
use argosy_tests::fixtures::register_cluster;
use argosy_tests::{AuditEvent, HARNESS_USER_AGENT, MANAGEMENT, TestCluster};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;

const REPO_URL: &str = "https://git.example.com/platform/fleet.git";
const LEASE: &str = "argosy-controller";
const IDENTITY: &str = "replica-a";
const APP: &str = "waves";
/// Destination namespace on the workload cluster.
const TARGET_NS: &str = "waves";
/// The bound the issue sets: no write by the old leader later than this after the loss.
const BOUND: SignedDuration = SignedDuration::from_secs(1);

fn deployments() -> ApiResource {
    ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        plural: "deployments".into(),
    }
}

fn configmaps() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
    }
}

fn configmap(name: &str, wave: i32) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n    argocd.argoproj.io/sync-wave: \"{wave}\"\ndata:\n  key: \"x\"\n"
    )
}

/// Wave 0: a Deployment that stays unhealthy until the test plays its controller.
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n    argocd.argoproj.io/sync-wave: \"0\"\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n";

async fn exists(cluster: &TestCluster, r: &ApiResource, name: &str) -> Result<bool> {
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client().await?, TARGET_NS, r);
    Ok(api.get_opt(name).await?.is_some())
}

/// Plays the Deployment controller: marks the Deployment `web` available.
async fn make_available(cluster: &TestCluster) -> Result<()> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client().await?, TARGET_NS, &deployments());
    let live = api.get("web").await?;
    let status = json!({"status": {"observedGeneration": live.metadata.generation, "replicas": 1,
        "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                       {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}});
    api.patch_status("web", &PatchParams::default(), &Patch::Merge(status))
        .await?;
    Ok(())
}

/// From `GET /metrics` on `port`: the writes refused by the leader fence and the
/// clusters' gates (`argosy_fenced_writes_total` + `argosy_shard_fenced_writes_total`), and
/// the clusters the replica holds (`argosy_shard_clusters{state="held"}`).
async fn fenced_writes(port: u16) -> Result<(u64, u64)> {
    let (status, answer) = argosy_tests::probe::get(port, "/metrics", None).await?;
    let (head, body) = answer.split_once("\r\n\r\n").context("no end of headers")?;
    ensure!(status == 200, "GET /metrics answered {head}");
    let value = |metric: &str| -> Result<u64> {
        let value = body
            .lines()
            .find_map(|l| l.strip_prefix(metric))
            .with_context(|| format!("no {metric}in:\n{body}"))?;
        Ok(value.trim().parse::<u64>()?)
    };
    Ok((
        value("argosy_fenced_writes_total ")? + value("argosy_shard_fenced_writes_total ")?,
        value("argosy_shard_clusters{state=\"held\"} ")?,
    ))
}

/// The leader loses its Lease in the middle of a sync with waves: the audit logs of both
/// API servers show no write by it later than 1 s after the loss, and the later waves are
/// never applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_lease_mid_sync_stops_writing_within_a_second() -> Result<()> {
    init_tracing();
    let (cp, admin) = argocd_control_plane(1).await?;
    let workload = &cp.workloads()[0];
    register_cluster(&admin, "w1", workload, &[]).await?;

    // A Git repository with three waves: the Deployment, then one ConfigMap per wave.
    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("fleet.git");
    let files: BTreeMap<String, TreeEntry> = [
        ("app/web.yaml", DEPLOYMENT.to_owned()),
        ("app/one.yaml", configmap("wave-one", 1)),
        ("app/two.yaml", configmap("wave-two", 2)),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_owned(), TreeEntry::File(c)))
    .collect();
    write_tree_commit(&repo, "refs/heads/main", &files).map_err(|e| anyhow::anyhow!(e))?;

    apply_json(
        &admin,
        &application_resource(),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": APP, "namespace": ARGOCD_NAMESPACE},
        "spec": {
            "project": "default",
            "source": {"repoURL": REPO_URL, "targetRevision": "main", "path": "app"},
            "destination": {"server": workload.server, "namespace": TARGET_NS},
            "syncPolicy": {"automated": {"prune": true},
                           "syncOptions": ["CreateNamespace=true"]},
        }}),
    )
    .await?;

    // The controller, with leader election: a short Lease so renewals happen during the test.
    let mut args = run_args(IDENTITY, dir.path().join("cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([(REPO_URL.to_owned(), repo)]);
    args.leader_election = true;
    args.lease_name = LEASE.to_owned();
    args.lease_duration = Duration::from_secs(5);
    args.sync.resync = Duration::from_secs(2);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    args.listen = Some(([127, 0, 0, 1], port).into());
    let controller = start_controller(cp.management(), argosy::run::USER_AGENT, args).await?;

    let leases: Api<Lease> = Api::namespaced(admin.clone(), ARGOCD_NAMESPACE);
    let holder = || async {
        Ok::<_, anyhow::Error>(
            leases
                .get_opt(LEASE)
                .await?
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity),
        )
    };
    wait_for("replica-a leads", Duration::from_secs(60), || async {
        Ok((holder().await?.as_deref() == Some(IDENTITY)).then_some(()))
    })
    .await?;

    // The sync is in progress: wave 0 applied, its Deployment unhealthy, the operation Running.
    let apps: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), ARGOCD_NAMESPACE, &application_resource());
    wait_for(
        "wave 0 applied, the sync Running",
        Duration::from_secs(60),
        || async {
            let app = serde_json::to_value(apps.get(APP).await?)?;
            let running = app.pointer("/status/operationState/phase") == Some(&json!("Running"));
            Ok((running && exists(workload, &deployments(), "web").await?).then_some(()))
        },
    )
    .await?;
    ensure!(
        !exists(workload, &configmaps(), "wave-one").await?,
        "wave 1 must wait for the Deployment of wave 0"
    );

    // Another replica takes both Leases, for long enough that the old replica cannot get
    // them back during the test.
    let member_lease = argosy_sync_engine::shard::member::lease_name(LEASE, IDENTITY);
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(Timestamp::now());
    let takeover = json!({"spec": {
        "holderIdentity": "other-replica",
        "acquireTime": now,
        "renewTime": now,
        "leaseDurationSeconds": 3600,
    }});
    let mut taken_versions = Vec::new();
    for name in [LEASE, member_lease.as_str()] {
        let taken = leases
            .patch(name, &PatchParams::default(), &Patch::Merge(&takeover))
            .await?;
        taken_versions.push((name, taken.metadata.resource_version.unwrap_or_default()));
    }
    // The loss as the API server recorded it: when it completed the second takeover write.
    let loss = wait_for(
        "the takeovers in the audit log",
        Duration::from_secs(10),
        || async {
            let completed: Vec<Timestamp> = cp
                .audit_writes(MANAGEMENT)?
                .into_iter()
                .filter(|e| {
                    e.user_agent == HARNESS_USER_AGENT
                        && e.resource.as_deref() == Some("leases")
                        && e.verb == "patch"
                        && e.succeeded()
                })
                .map(|e| e.completed)
                .collect();
            Ok((completed.len() == 2)
                .then(|| completed.into_iter().max())
                .flatten())
        },
    )
    .await?;

    // Now the old replica would go on: wave 0 turns healthy, waves 1 and 2 are due. Not before
    // the 1 s bound has passed, so that a replica without the fence would write waves 1
    // and 2 past it (when the API server's clock shows loss + 2 s or later).
    tokio::time::sleep(Duration::from_secs(2)).await;
    make_available(workload).await?;
    // Long enough for the Deployment's watch event, several resyncs (2 s) and lease
    // renewal attempts (every ~4 s) of the old leader.
    tokio::time::sleep(Duration::from_secs(15)).await;

    let deadline = loss + BOUND;
    let mut late = Vec::new();
    let mut last_write: Option<AuditEvent> = None;
    for cluster in [MANAGEMENT, workload.name.as_str()] {
        for e in cp.argosy_writes(cluster)? {
            if e.received > deadline {
                late.push(format!("{cluster}: {}", e.describe()));
            }
            if last_write.as_ref().is_none_or(|l| e.received > l.received) {
                last_write = Some(e);
            }
        }
    }
    eprintln!("Lease lost at {loss} (stageTimestamp of the takeover)");
    if let Some(last) = &last_write {
        eprintln!(
            "the old leader's last write: {} ({} after the loss)",
            last.describe(),
            last.received.duration_since(loss)
        );
    }
    if !late.is_empty() {
        bail!(
            "the old leader wrote later than {BOUND:?} after losing its Lease at {loss}:\n{}",
            late.join("\n")
        );
    }
    for name in ["wave-one", "wave-two"] {
        ensure!(
            !exists(workload, &configmaps(), name).await?,
            "{name} was applied after the leader lost its Lease"
        );
    }
    // The old replica is alive and knows it holds nothing (its reconciles of the app now
    // stop before any write; the refusals count what was in flight at the loss).
    let (refused, held) = fenced_writes(port).await?;
    eprintln!("fenced writes: {refused}, clusters held: {held}");
    ensure!(
        held == 0,
        "the old replica still holds {held} clusters after losing its membership Lease"
    );
    for (name, taken_version) in &taken_versions {
        let lease = leases.get(name).await?;
        ensure!(
            lease.metadata.resource_version.as_deref() == Some(taken_version.as_str()),
            "the Lease {name} was written after the takeover: {:?}",
            lease.spec
        );
    }
    drop(controller);
    Ok(())
}
