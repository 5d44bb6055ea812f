//! Webhook notifications end to end: a real management API server and one workload
//! cluster, the controller in-process with `--sync-engine argosy`, a real Git repository,
//! and webhook receivers this test runs on loopback (`argosy_tests::webhook_receiver`).
//!
//! The AppProject `default` names three receivers in `argosy.io/notify-webhooks`: one that
//! never answers (named first), one that answers 200, one that answers 500 twice and then
//! 200.
//! An ApplicationSet with a one-step RollingSync names a fourth. The test checks that
//! health turning Degraded is notified exactly once (not again when the app syncs a new
//! commit and stays Degraded), that a failing sync is notified, that the flaky receiver
//! gets the same payload again after its 500s, that the hanging receiver is timed out
//! after every attempt (and counted as failed in /metrics) while the controller goes on
//! reconciling and notifying the others within deadlines shorter than those attempts, and
//! that the rollout's transitions reach the ApplicationSet's
//! webhook and its project's.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use argosy::run::SyncEngine;
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_tests::TestCluster;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, application_resource, apply_json, appset_resource, argocd_control_plane,
    init_tracing, run_args, start_controller, wait_for,
};
use argosy_tests::fixtures::{free_port, register_cluster};
use argosy_tests::webhook_receiver::{Answer, Received, WebhookReceiver};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const REPO_URL: &str = "https://git.example.com/platform/fleet.git";

/// A notification request may take this long: long enough that a controller waiting for
/// the hanging receiver would miss the deadlines below, short enough to see it time out.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

fn deployment() -> &'static str {
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n"
}

fn configmap(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: \"{value}\"\n"
    )
}

/// The API server rejects this Service (port out of range): its sync fails.
const BAD_SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  ports:\n  - name: http\n    port: 70000\n";

fn commit(repo: &Path, files: &[(&str, &str)]) -> Result<String> {
    let entries: BTreeMap<String, TreeEntry> = files
        .iter()
        .map(|(p, c)| ((*p).to_owned(), TreeEntry::File((*c).to_owned())))
        .collect();
    write_tree_commit(repo, "refs/heads/main", &entries)
        .map(|id| id.to_string())
        .map_err(|e| anyhow::anyhow!(e))
}

fn app(name: &str, path: &str, server: &str) -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
           "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE},
           "spec": {"project": "default",
                    "source": {"repoURL": REPO_URL, "targetRevision": "main", "path": path},
                    "destination": {"server": server, "namespace": name},
                    "syncPolicy": {"automated": {}, "syncOptions": ["CreateNamespace=true"]}}})
}

async fn app_status(client: &Client, name: &str) -> Result<Value> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ARGOCD_NAMESPACE, &application_resource());
    Ok(serde_json::to_value(api.get(name).await?)?["status"].clone())
}

/// The notifications of `kind` about Application `app` among `received`.
fn about<'a>(received: &'a [Received], kind: &str, app: &str) -> Vec<&'a Received> {
    received
        .iter()
        .filter(|r| r.body["kind"] == kind && r.body["application"] == app)
        .collect()
}

async fn degrade(cluster: &TestCluster, namespace: &str) -> Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        cluster.client().await?,
        namespace,
        &ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
        },
    );
    let generation = api.get("web").await?.metadata.generation;
    let status = json!({"status": {"observedGeneration": generation, "replicas": 1,
        "updatedReplicas": 1, "unavailableReplicas": 1,
        "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}});
    api.patch_status("web", &PatchParams::default(), &Patch::Merge(status))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_health_failed_syncs_and_rollouts_are_notified() -> Result<()> {
    init_tracing();
    let (cp, client) = argocd_control_plane(1).await?;
    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("fleet.git");
    let web = deployment();
    let first = commit(
        &repo,
        &[
            ("web/deployment.yaml", web),
            ("broken/service.yaml", BAD_SERVICE),
            ("canary/settings.yaml", &configmap("settings", "v1")),
        ],
    )?;
    let workload = &cp.workloads()[0];
    register_cluster(&client, "w1", workload, &[("customer", "acme")]).await?;
    let server = workload.server.clone();

    let ok = WebhookReceiver::start(&[], Answer::Status(200)).await?;
    let flaky = WebhookReceiver::start(
        &[Answer::Status(500), Answer::Status(500)],
        Answer::Status(200),
    )
    .await?;
    let hang = WebhookReceiver::start(&[], Answer::Hang).await?;
    let rollouts = WebhookReceiver::start(&[], Answer::Status(200)).await?;
    // The hanging receiver first: a controller that sent in order and waited for each
    // answer would reach the others only after its attempts time out.
    let project_hooks = format!("{}, {}\n{}", hang.url, ok.url, flaky.url);
    let projects: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ARGOCD_NAMESPACE,
        &ApiResource {
            group: "argoproj.io".into(),
            version: "v1alpha1".into(),
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "AppProject".into(),
            plural: "appprojects".into(),
        },
    );
    projects
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"argosy.io/notify-webhooks": project_hooks}}}),
            ),
        )
        .await?;
    apply_json(&client, &application_resource(), app("web", "web", &server)).await?;

    let port = free_port()?;
    let mut args = run_args("notifications", dir.path().join("cache"));
    args.sync_engine = SyncEngine::Argosy;
    args.repos = BTreeMap::from([(REPO_URL.to_owned(), repo.clone())]);
    args.sync.resync = Duration::from_secs(2);
    args.listen = Some(([127, 0, 0, 1], port).into());
    args.notify.timeout = NOTIFY_TIMEOUT;
    // The receivers are on loopback.
    args.notify.allow_internal_hosts = true;
    let _controller = start_controller(cp.management(), argosy::run::USER_AGENT, args).await?;

    // The Deployment is applied; no Deployment controller runs, so the test plays one.
    wait_for("web synced", Duration::from_secs(60), || async {
        let status = app_status(&client, "web").await?;
        Ok(
            (status["sync"]["status"] == "Synced" && status["sync"]["revision"] == first.as_str())
                .then_some(()),
        )
    })
    .await?;
    degrade(workload, "web").await?;
    // Within a deadline shorter than the hanging receiver's attempts (3 x 10 s + backoff).
    let degraded = wait_for(
        "the Degraded notification",
        Duration::from_secs(20),
        || async {
            let received = ok.received();
            Ok(about(&received, "healthDegraded", "web")
                .first()
                .map(|r| r.body.clone()))
        },
    )
    .await?;
    assert_eq!(degraded["reason"], "HealthDegraded", "{degraded}");
    assert_eq!(degraded["project"], "default");
    assert_eq!(degraded["namespace"], ARGOCD_NAMESPACE);
    assert_eq!(degraded["revision"], first.as_str());
    assert_eq!(degraded["severity"], "warning");
    let text = degraded["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("argocd/web")
            && text.contains("Degraded")
            && text.contains("progress deadline"),
        "{text}"
    );

    // A sync that fails, while the hanging receiver still holds the Degraded notification:
    // the controller neither waits for it nor stops notifying the others (a reconcile
    // that waited would miss this deadline, shorter than the hanging receiver's attempts).
    apply_json(
        &client,
        &application_resource(),
        app("broken", "broken", &server),
    )
    .await?;
    let failed = wait_for(
        "the sync-failed notification",
        Duration::from_secs(20),
        || async {
            let received = ok.received();
            Ok(about(&received, "syncFailed", "broken")
                .first()
                .map(|r| r.body.clone()))
        },
    )
    .await?;
    assert_eq!(failed["reason"], "SyncFailed", "{failed}");
    assert_eq!(failed["phase"], "Failed");
    assert!(
        failed["message"]
            .as_str()
            .is_some_and(|m| m.contains("api")),
        "the failure names the object: {failed}"
    );

    // The ApplicationSet's rollout: its own webhook and its project's hear of it.
    apply_json(
        &client,
        &appset_resource(),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
               "metadata": {"name": "canary", "namespace": ARGOCD_NAMESPACE,
                            "annotations": {"argosy.io/notify-webhooks": rollouts.url}},
               "spec": {
                   "generators": [{"list": {"elements": [{"cluster": "w1"}]}}],
                   "strategy": {"type": "RollingSync", "rollingSync": {"steps": [
                       {"matchExpressions": [{"key": "ring", "operator": "In", "values": ["canary"]}]}]}},
                   "template": {
                       "metadata": {"name": "canary-{{cluster}}", "labels": {"ring": "canary"}},
                       "spec": {"project": "default",
                                "source": {"repoURL": REPO_URL, "targetRevision": "main", "path": "canary"},
                                "destination": {"name": "{{cluster}}", "namespace": "canary"},
                                "syncPolicy": {"automated": {}, "syncOptions": ["CreateNamespace=true"]}}}}}),
    )
    .await?;
    let completed = wait_for(
        "the rollout's notifications",
        Duration::from_secs(60),
        || async {
            let received = rollouts.received();
            Ok(received
                .iter()
                .find(|r| r.body["reason"] == "RolloutCompleted")
                .map(|r| r.body.clone()))
        },
    )
    .await?;
    assert_eq!(completed["kind"], "rollout", "{completed}");
    assert_eq!(completed["applicationSet"], "canary");
    assert_eq!(completed["project"], "default");
    assert_eq!(completed["revision"], first.as_str());
    assert_eq!(completed["steps"], 1);
    let reasons: Vec<Value> = rollouts
        .received()
        .iter()
        .map(|r| r.body["reason"].clone())
        .collect();
    assert!(
        reasons.contains(&json!("RolloutStepStarted")),
        "{reasons:?}"
    );
    assert!(
        ok.received()
            .iter()
            .any(|r| r.body["kind"] == "rollout" && r.body["applicationSet"] == "canary"),
        "the project's webhook hears of the rollout too"
    );

    // A new commit: web syncs it and stays Degraded; staying Degraded is no news.
    let second = commit(
        &repo,
        &[
            ("web/deployment.yaml", web),
            ("web/settings.yaml", &configmap("settings", "v2")),
            ("broken/service.yaml", BAD_SERVICE),
            ("canary/settings.yaml", &configmap("settings", "v1")),
        ],
    )?;
    wait_for(
        "web synced the new commit, still Degraded",
        Duration::from_secs(60),
        || async {
            let status = app_status(&client, "web").await?;
            Ok((status["sync"]["revision"] == second.as_str()
                && status["operationState"]["phase"] == "Succeeded"
                && status["operationState"]["syncResult"]["revision"] == second.as_str()
                && status["health"]["status"] == "Degraded")
                .then_some(()))
        },
    )
    .await?;
    // The failing app's new attempt is notified after web's sync: once it is here, any
    // second Degraded notification of web would be too.
    wait_for(
        "the new commit's sync failure",
        Duration::from_secs(60),
        || async {
            let received = ok.received();
            Ok(about(&received, "syncFailed", "broken")
                .iter()
                .any(|r| r.body["revision"] == second.as_str())
                .then_some(()))
        },
    )
    .await?;
    let received = ok.received();
    assert_eq!(
        about(&received, "healthDegraded", "web").len(),
        1,
        "exactly one Degraded notification: {received:#?}"
    );

    // The flaky receiver answered 500 twice; the same payload came again and was taken.
    let attempts = wait_for(
        "the flaky receiver's third attempt",
        Duration::from_secs(30),
        || async {
            let attempts = flaky.received();
            Ok((attempts.len() >= 3).then_some(attempts))
        },
    )
    .await?;
    assert_eq!(attempts[0].answer, Answer::Status(500));
    assert_eq!(attempts[1].answer, Answer::Status(500));
    assert_eq!(attempts[2].answer, Answer::Status(200));
    assert_eq!(
        attempts[0].raw, attempts[1].raw,
        "a retry sends the same payload"
    );
    assert_eq!(attempts[1].raw, attempts[2].raw);
    assert_eq!(attempts[2].content_type, "application/json");
    assert_eq!(attempts[2].path, "/hook");

    // The hanging receiver got every attempt of the Degraded notification (each one timed
    // out), and the delivery is counted as failed.
    wait_for(
        "three timed-out attempts at the hanging receiver",
        Duration::from_secs(90),
        || async {
            let received = hang.received();
            Ok((about(&received, "healthDegraded", "web").len() == 3).then_some(()))
        },
    )
    .await?;
    let hung = hang.received();
    let tries = about(&hung, "healthDegraded", "web");
    assert!(tries.iter().all(|r| r.raw == tries[0].raw));
    let metrics = wait_for(
        "the failure counted in /metrics",
        Duration::from_secs(30),
        || async {
            let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
                .await?
                .text()
                .await?;
            Ok(text
                .lines()
                .any(|l| {
                    l.starts_with(
                        "argosy_notifications_total{kind=\"healthDegraded\",result=\"failed\"}",
                    )
                })
                .then_some(text))
        },
    )
    .await?;
    assert!(
        metrics.lines().any(|l| l
            .starts_with("argosy_notifications_total{kind=\"healthDegraded\",result=\"sent\"} 2")),
        "ok and flaky took it: {}",
        metrics
            .lines()
            .filter(|l| l.starts_with("argosy_notifications"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // No webhook URL is in the metrics.
    assert!(!metrics.contains("/hook"));
    Ok(())
}
