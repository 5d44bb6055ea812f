//! Progressive delivery across customers against real kube-apiservers (one management
//! cluster and three workload clusters as customers, v1.20, no controller-manager): the
//! RollingSync acceptance criteria of issue #18.
//!
//! The fleet: three customers (`acme` canary, `globex` silver, `initech` gold), two apps
//! each (`web`, `worker`: one Deployment from a plain directory), one ApplicationSet with a
//! RollingSync of three steps (canary, silver, gold with `maxUpdate: 50%`). There is no
//! Deployment controller: the test plays it by patching Deployment status.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use argosy::cli::cmd::app::Output;
use argosy::cli::cmd::rollout::{RolloutCommand, run as rollout_command};
use argosy::run::SyncEngine;
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, ControllerHandle, apply_json, appset_resource, argocd_control_plane,
    init_tracing, run_args, start_controller, wait_for,
};
use argosy_tests::fixtures::register_cluster;
use argosy_tests::{ControlPlane, TestCluster};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

/// One test at a time: each runs four kube-apiservers on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const REPO_URL: &str = "https://git.example.com/platform/fleet.git";
/// The customers: cluster name, tier, workload index.
const CUSTOMERS: [(&str, &str); 3] = [
    ("acme", "canary"),
    ("globex", "silver"),
    ("initech", "gold"),
];
const APPS: [&str; 2] = ["web", "worker"];

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
        let (cp, client) = argocd_control_plane(3).await?;
        let env = Env {
            cp,
            client,
            dir: tempfile::tempdir()?,
            _serial: serial,
        };
        for (i, (customer, tier)) in CUSTOMERS.iter().enumerate() {
            register_cluster(
                &env.client,
                customer,
                &env.cp.workloads()[i],
                &[("customer", customer), ("tier", tier)],
            )
            .await?;
        }
        Ok(env)
    }

    fn workload(&self, customer: &str) -> &TestCluster {
        let i = CUSTOMERS.iter().position(|(c, _)| *c == customer).unwrap();
        &self.cp.workloads()[i]
    }

    /// Commits both apps' Deployments with `image` as the new tree of `main`.
    fn commit(&self, image: &str) -> Result<String> {
        let entries: BTreeMap<String, TreeEntry> = APPS
            .iter()
            .map(|app| {
                let manifest = format!(
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {app}}}\n  template:\n    metadata:\n      labels: {{app: {app}}}\n    spec:\n      containers:\n      - name: main\n        image: {image}\n"
                );
                (format!("apps/{app}/deployment.yaml"), TreeEntry::File(manifest))
            })
            .collect();
        write_tree_commit(
            &self.dir.path().join("fleet.git"),
            "refs/heads/main",
            &entries,
        )
        .map(|id| id.to_string())
        .map_err(|e| anyhow::anyhow!(e))
    }

    async fn controller(&self) -> Result<ControllerHandle> {
        let mut args = run_args("rollout", self.dir.path().join("cache"));
        args.sync_engine = SyncEngine::Argosy;
        args.repos = BTreeMap::from([(REPO_URL.to_owned(), self.dir.path().join("fleet.git"))]);
        args.sync.resync = Duration::from_secs(2);
        start_controller(self.cp.management(), argosy::run::USER_AGENT, args).await
    }

    /// The ApplicationSet: every app to every customer, RollingSync canary → silver → gold.
    async fn apply_appset(&self, annotations: Value) -> Result<()> {
        let step = |tier: &str| json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": [tier]}]});
        let mut gold = step("gold");
        gold["maxUpdate"] = json!("50%");
        apply_json(
            &self.client,
            &appset_resource(),
            json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
                "metadata": {"name": "fleet", "namespace": ARGOCD_NAMESPACE, "annotations": annotations},
                "spec": {
                    "generators": [{"matrix": {"generators": [
                        {"clusters": {"selector": {"matchExpressions": [{"key": "customer", "operator": "Exists"}]}}},
                        {"list": {"elements": APPS.iter().map(|a| json!({"app": a})).collect::<Vec<_>>()}},
                    ]}}],
                    "strategy": {"type": "RollingSync", "deletionOrder": "Reverse",
                                 "rollingSync": {"steps": [step("canary"), step("silver"), gold]}},
                    "template": {
                        "metadata": {"name": "{{app}}-{{name}}", "labels": {"tier": "{{metadata.labels.tier}}", "customer": "{{name}}"}},
                        "spec": {
                            "project": "default",
                            "source": {"repoURL": REPO_URL, "targetRevision": "main", "path": "apps/{{app}}"},
                            "destination": {"server": "{{server}}", "namespace": "{{app}}"},
                            // RollingSync turns this off: the rollout starts every sync.
                            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]},
                        },
                    },
                },
            }),
        )
        .await?;
        Ok(())
    }

    async fn appset(&self) -> Result<Value> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ARGOCD_NAMESPACE, &appset_resource());
        Ok(serde_json::to_value(api.get("fleet").await?)?)
    }

    /// Waits until `check` holds for the ApplicationSet; on timeout says what it saw.
    async fn wait_appset(&self, what: &str, check: impl Fn(&Value) -> bool) -> Result<Value> {
        let last = std::sync::Mutex::new(Value::Null);
        let result = wait_for(what, Duration::from_secs(90), || async {
            let appset = self.appset().await?;
            let ok = check(&appset);
            *last.lock().unwrap() = appset.clone();
            Ok(ok.then_some(appset))
        })
        .await;
        result.with_context(|| {
            let seen = last.lock().unwrap();
            format!(
                "last seen status: {}",
                serde_json::to_string_pretty(&seen["status"]).unwrap_or_default()
            )
        })
    }

    /// The live Deployment `app` of `customer`, if any.
    async fn deployment(&self, customer: &str, app: &str) -> Result<Option<Value>> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.workload(customer).client().await?, app, &deployments());
        Ok(api
            .get_opt(app)
            .await?
            .map(|d| serde_json::to_value(d).unwrap()))
    }

    /// Plays the Deployment controller for `app` of `customer`: available, or past its
    /// progress deadline (Degraded).
    async fn set_deployment(&self, customer: &str, app: &str, available: bool) -> Result<()> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.workload(customer).client().await?, app, &deployments());
        let live = api.get(app).await?;
        let progressing = if available {
            json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"})
        } else {
            json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                   "message": format!("ReplicaSet \"{app}-1\" has timed out progressing.")})
        };
        let ready = i64::from(available);
        let status = json!({"status": {
            "observedGeneration": live.metadata.generation,
            "replicas": 1, "updatedReplicas": 1, "readyReplicas": ready, "availableReplicas": ready,
            "conditions": [{"type": "Available", "status": if available { "True" } else { "False" }, "reason": "MinimumReplicasAvailable"}, progressing]}});
        api.patch_status(app, &PatchParams::default(), &Patch::Merge(status))
            .await?;
        Ok(())
    }

    async fn make_available(&self, customer: &str) -> Result<()> {
        for app in APPS {
            self.set_deployment(customer, app, true).await?;
        }
        Ok(())
    }

    async fn rollout_status(&self) -> Result<String> {
        let mut out = Vec::new();
        rollout_command(
            self.client.clone(),
            ARGOCD_NAMESPACE,
            RolloutCommand::Status {
                name: "fleet".into(),
                output: Output::Table,
            },
            &mut out,
        )
        .await?;
        Ok(String::from_utf8(out)?)
    }

    /// Argosy's writes to `customer`'s cluster since `since` (leases excluded).
    fn writes_since(&self, customer: &str, since: Timestamp) -> Result<Vec<String>> {
        let i = CUSTOMERS.iter().position(|(c, _)| *c == customer).unwrap();
        let name = self.cp.workloads()[i].name.clone();
        Ok(self
            .cp
            .argosy_writes(&name)?
            .into_iter()
            .filter(|e| e.resource.as_deref() != Some("leases"))
            .filter(|e| e.received_between(since, Timestamp::MAX))
            .map(|e| e.describe())
            .collect())
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

/// `status.applicationStatus` as `name -> (status, step)`.
fn progress(appset: &Value) -> BTreeMap<String, (String, String)> {
    appset
        .pointer("/status/applicationStatus")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (text("application"), (text("status"), text("step")))
        })
        .collect()
}

fn status_of<'a>(p: &'a BTreeMap<String, (String, String)>, app: &str) -> &'a str {
    p.get(app).map_or("", |(s, _)| s.as_str())
}

fn condition<'a>(appset: &'a Value, type_: &str) -> Option<&'a Value> {
    appset
        .pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == type_)
}

fn image(deployment: &Value) -> &str {
    deployment
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Argo CD's shape of one `applicationStatus` entry.
fn check_entry_shape(appset: &Value) -> Result<()> {
    for entry in appset["status"]["applicationStatus"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for key in [
            "application",
            "status",
            "step",
            "message",
            "lastTransitionTime",
        ] {
            ensure!(entry.get(key).is_some(), "{key} missing in {entry}");
        }
        ensure!(
            ["Waiting", "Pending", "Progressing", "Healthy"]
                .contains(&entry["status"].as_str().unwrap_or("")),
            "{entry}"
        );
    }
    Ok(())
}

/// Must show 1: three steps; step 2 only after step 1 is Healthy; gold one at a time.
#[tokio::test]
async fn a_rolling_sync_goes_customer_by_customer() -> Result<()> {
    let env = Env::start().await?;
    env.commit("nginx:1.0")?;
    env.apply_appset(json!({})).await?;
    let _controller = env.controller().await?;

    // Step 1: only the canary's apps are synced.
    let appset = env
        .wait_appset("the canary apps sync first", |a| {
            let p = progress(a);
            p.len() == 6
                && ["web-acme", "worker-acme"]
                    .iter()
                    .all(|n| status_of(&p, n) == "Progressing")
        })
        .await?;
    check_entry_shape(&appset)?;
    let p = progress(&appset);
    for (name, step) in [
        ("web-globex", "2"),
        ("worker-globex", "2"),
        ("web-initech", "3"),
        ("worker-initech", "3"),
    ] {
        assert_eq!(
            p[name],
            ("Waiting".to_owned(), step.to_owned()),
            "{name}: {p:?}"
        );
    }
    assert_eq!(
        condition(&appset, "RolloutProgressing").unwrap()["message"],
        "ApplicationSet is performing rollout of step 1"
    );
    assert_eq!(
        condition(&appset, "InvalidRolloutConfig").unwrap()["status"],
        "False"
    );
    assert!(env.deployment("acme", "web").await?.is_some());
    for customer in ["globex", "initech"] {
        assert!(
            env.deployment(customer, "web").await?.is_none(),
            "{customer} must wait for the canary"
        );
    }
    // Automated sync is off on every generated Application (the rollout owns the syncs).
    let apps: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        ARGOCD_NAMESPACE,
        &argosy_tests::argocd::application_resource(),
    );
    let web = apps.get("web-initech").await?;
    assert_eq!(
        web.data["spec"]["syncPolicy"]["automated"]["enabled"],
        false
    );

    // The canary becomes Healthy: step 2 starts.
    let step2_started = Instant::now();
    env.make_available("acme").await?;
    let appset = env
        .wait_appset("silver syncs after the canary is Healthy", |a| {
            let p = progress(a);
            status_of(&p, "web-acme") == "Healthy"
                && status_of(&p, "worker-acme") == "Healthy"
                && ["web-globex", "worker-globex"]
                    .iter()
                    .all(|n| status_of(&p, n) == "Progressing")
        })
        .await?;
    check_entry_shape(&appset)?;
    assert_eq!(
        condition(&appset, "RolloutProgressing").unwrap()["message"],
        "ApplicationSet is performing rollout of step 2"
    );
    assert!(
        env.deployment("initech", "web").await?.is_none(),
        "gold waits for silver"
    );
    tracing::info!(elapsed = ?step2_started.elapsed(), "step 2 started");

    // Silver Healthy: gold, one of its two apps at a time (maxUpdate 50%).
    env.make_available("globex").await?;
    let appset = env
        .wait_appset("one gold app syncs", |a| {
            let p = progress(a);
            ["web-initech", "worker-initech"]
                .iter()
                .any(|n| status_of(&p, n) == "Progressing")
        })
        .await?;
    let p = progress(&appset);
    let (first, second) = if status_of(&p, "web-initech") == "Progressing" {
        ("web", "worker")
    } else {
        ("worker", "web")
    };
    assert_eq!(
        status_of(&p, &format!("{second}-initech")),
        "Waiting",
        "{p:?}"
    );
    assert!(
        env.deployment("initech", second).await?.is_none(),
        "maxUpdate 50%: one at a time"
    );
    env.set_deployment("initech", first, true).await?;
    env.wait_appset("the second gold app syncs", |a| {
        status_of(&progress(a), &format!("{second}-initech")) == "Progressing"
    })
    .await?;
    env.set_deployment("initech", second, true).await?;
    let appset = env
        .wait_appset("the rollout completes", |a| {
            let p = progress(a);
            p.len() == 6 && p.values().all(|(s, _)| s == "Healthy")
        })
        .await?;
    let done = condition(&appset, "RolloutProgressing").unwrap();
    assert_eq!(done["status"], "False");
    assert_eq!(done["reason"], "ApplicationSetRolloutComplete");
    assert_eq!(appset["status"]["rollout"]["phase"], "Completed");

    // `deletionOrder: Reverse`: gold goes first, then silver, then the canary, each step
    // gone before the next (the controller added Argo CD's resources finalizer for it).
    assert!(
        appset["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f
                .iter()
                .any(|f| f == "resources-finalizer.argocd.argoproj.io")),
        "{}",
        appset["metadata"]
    );
    let appsets: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), ARGOCD_NAMESPACE, &appset_resource());
    appsets.delete("fleet", &Default::default()).await?;
    wait_for(
        "the ApplicationSet is gone",
        Duration::from_secs(90),
        || async { Ok(appsets.get_opt("fleet").await?.is_none().then_some(())) },
    )
    .await?;
    let deletes: Vec<(Timestamp, String)> = env
        .cp
        .argosy_writes(argosy_tests::MANAGEMENT)?
        .into_iter()
        .filter(|e| e.verb == "delete" && e.resource.as_deref() == Some("applications"))
        // A delete answered 404 (the cache still held a deleted one) deleted nothing.
        .filter(argosy_tests::AuditEvent::succeeded)
        .map(|e| (e.received, e.name.clone().unwrap_or_default()))
        .collect();
    let customer_of = |name: &str| name.rsplit('-').next().unwrap_or_default().to_owned();
    // The first delete of each (a stale cache may send a second to one already going).
    let mut seen = std::collections::BTreeSet::new();
    let order: Vec<String> = deletes
        .iter()
        .filter(|(_, n)| seen.insert(n.clone()))
        .map(|(_, n)| customer_of(n))
        .collect();
    assert_eq!(
        order,
        ["initech", "initech", "globex", "globex", "acme", "acme"],
        "{deletes:?}"
    );
    Ok(())
}

/// Must show 2: a commit whose Deployment goes Degraded stops at step 1 within the failure
/// budget, the canary is rolled back automatically, the other customers are never touched,
/// and `argosy rollout status` says why.
#[tokio::test]
async fn a_degraded_canary_is_rolled_back_and_nobody_else_is_touched() -> Result<()> {
    let env = Env::start().await?;
    let good = env.commit("nginx:1.0")?;
    env.apply_appset(json!({"argosy.io/rollout-failure-budget": "0"}))
        .await?;
    let _controller = env.controller().await?;
    // The first rollout, to completion: the test plays every Deployment controller,
    // making each Deployment available as the rollout creates it (gold one at a time).
    wait_for(
        "the first rollout completes",
        Duration::from_secs(120),
        || async {
            for (customer, _) in CUSTOMERS {
                for app in APPS {
                    let Some(live) = env.deployment(customer, app).await? else {
                        continue;
                    };
                    let settled = live["status"]["observedGeneration"]
                        == live["metadata"]["generation"]
                        && live["status"]["availableReplicas"] == 1;
                    if !settled {
                        env.set_deployment(customer, app, true).await?;
                    }
                }
            }
            let appset = env.appset().await?;
            Ok((appset["status"]["rollout"]["phase"] == "Completed").then_some(()))
        },
    )
    .await?;

    // A bad commit: the canary's new Deployments never become available.
    let bad_commit_at = Timestamp::now();
    let bad = env.commit("nginx:9.9-broken")?;
    wait_for(
        "the canary runs the bad commit",
        Duration::from_secs(60),
        || async {
            let live = env.deployment("acme", "web").await?.unwrap_or_default();
            Ok((image(&live) == "nginx:9.9-broken").then_some(()))
        },
    )
    .await?;
    env.set_deployment("acme", "web", false).await?;
    let appset = env
        .wait_appset("the rollout halts", |a| {
            a["status"]["rollout"]["phase"] == "Halted"
        })
        .await?;
    let message = appset["status"]["rollout"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.starts_with("step 1 of 3 halted: 1 of 2 Application(s) failed, over the failure budget of 0 (web-acme: Degraded"),
        "{message}"
    );
    assert!(message.contains("rolled back"), "{message}");
    let halted = condition(&appset, "RolloutHalted").unwrap();
    assert_eq!(halted["status"], "True");

    // The canary is back on the good revision, by itself.
    wait_for(
        "the canary's web is rolled back",
        Duration::from_secs(60),
        || async {
            let live = env.deployment("acme", "web").await?.unwrap_or_default();
            Ok((image(&live) == "nginx:1.0").then_some(()))
        },
    )
    .await?;
    let apps: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        ARGOCD_NAMESPACE,
        &argosy_tests::argocd::application_resource(),
    );
    wait_for(
        "the rollback is recorded",
        Duration::from_secs(30),
        || async {
            let web = serde_json::to_value(apps.get("web-acme").await?)?;
            let last = web
                .pointer("/status/history")
                .and_then(Value::as_array)
                .and_then(|h| h.last())
                .cloned()
                .unwrap_or_default();
            Ok((last["revision"] == good.as_str()).then_some(()))
        },
    )
    .await?;

    // The other customers were never touched after the bad commit.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for customer in ["globex", "initech"] {
        let writes = env.writes_since(customer, bad_commit_at)?;
        assert!(writes.is_empty(), "{customer} was written: {writes:#?}");
        let live = env.deployment(customer, "web").await?.unwrap();
        assert_eq!(image(&live), "nginx:1.0");
    }
    let p = progress(&env.appset().await?);
    assert_eq!(status_of(&p, "web-globex"), "Waiting", "{p:?}");

    // `argosy rollout status` says why.
    let text = env.rollout_status().await?;
    assert!(text.contains("Phase:          Halted"), "{text}");
    assert!(text.contains("web-acme: Degraded"), "{text}");
    assert!(
        text.contains(&format!("rolled back web-acme to {}", &good[..7])),
        "{text}"
    );
    let acme_row = text
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("web-acme"))
        .with_context(|| text.clone())?;
    let cells: Vec<&str> = acme_row.split_whitespace().collect();
    assert_eq!(
        cells[5],
        &good[..7],
        "web-acme runs the good revision: {text}"
    );
    assert_eq!(
        cells[6],
        &bad[..7],
        "and was rolled out to the bad one: {text}"
    );

    // `argosy rollout retry`: the halt ends and step 1 runs the bad commit again.
    let mut out = Vec::new();
    rollout_command(
        env.client.clone(),
        ARGOCD_NAMESPACE,
        RolloutCommand::Retry {
            name: "fleet".into(),
        },
        &mut out,
    )
    .await?;
    assert_eq!(
        String::from_utf8(out)?,
        format!("rollout of applicationset {ARGOCD_NAMESPACE}/fleet: retry requested\n")
    );
    let appset = env
        .wait_appset("the retried rollout runs step 1 again", |a| {
            a["status"]["rollout"]["phase"] == "Progressing" && a["status"]["rollout"]["step"] == 1
        })
        .await?;
    assert!(
        condition(&appset, "RolloutHalted").is_none(),
        "{}",
        appset["status"]
    );
    wait_for(
        "the canary runs the bad commit again",
        Duration::from_secs(60),
        || async {
            let live = env.deployment("acme", "web").await?.unwrap_or_default();
            Ok((image(&live) == "nginx:9.9-broken").then_some(()))
        },
    )
    .await?;
    let live = env.deployment("globex", "web").await?.unwrap();
    assert_eq!(
        image(&live),
        "nginx:1.0",
        "silver still waits for the canary"
    );
    Ok(())
}

/// Must show 3: a deny window over the gold customer blocks its sync and the rollout's gold
/// step; the sync happens when the window ends.
#[tokio::test]
async fn a_deny_window_holds_the_gold_step_until_it_ends() -> Result<()> {
    let env = Env::start().await?;
    env.commit("nginx:1.0")?;
    // From the current minute (UTC) for two minutes: one to two minutes remain.
    let (schedule, window_end) = argosy_tests::fixtures::window_from_this_minute(2)?;
    let gold_server = env.workload("initech").server.clone();
    apply_json(
        &env.client,
        &ApiResource::erase::<argosy_crds::AppProject>(&()),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "default", "namespace": ARGOCD_NAMESPACE},
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"server": "*", "namespace": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
                "syncWindows": [{"kind": "deny", "schedule": schedule,
                                 "duration": "2m", "clusters": [gold_server], "description": "gold change freeze"}],
            }}),
    )
    .await?;
    env.apply_appset(json!({})).await?;
    let _controller = env.controller().await?;

    // Canary and silver go; the gold step starts and its sync is held by the window.
    for customer in ["acme", "globex"] {
        wait_for(
            &format!("{customer} is synced"),
            Duration::from_secs(60),
            || async {
                Ok(env
                    .deployment(customer, "worker")
                    .await?
                    .and(env.deployment(customer, "web").await?)
                    .map(|_| ()))
            },
        )
        .await?;
        env.make_available(customer).await?;
    }
    let appset = env
        .wait_appset("the gold step is held by the window", |a| {
            a["status"]["rollout"]["step"] == 3
                && a["status"]["rollout"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("sync window"))
        })
        .await?;
    assert!(
        Timestamp::now() < window_end,
        "the window ended before the gold step: a slow run"
    );
    let message = appset["status"]["rollout"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("gold change freeze"), "{message}");
    let text = env.rollout_status().await?;
    assert!(
        text.contains("gold change freeze"),
        "argosy rollout status says which window: {text}"
    );
    for app in APPS {
        assert!(
            env.deployment("initech", app).await?.is_none(),
            "{app} synced inside the window"
        );
    }

    // The window ends: gold syncs (one app at a time), and nothing reached it before.
    wait_for(
        "gold syncs after the window",
        Duration::from_secs(240),
        || async {
            let live = env
                .deployment("initech", "web")
                .await?
                .or(env.deployment("initech", "worker").await?);
            Ok(live.map(|_| ()))
        },
    )
    .await?;
    let early: Vec<String> = {
        let i = CUSTOMERS.iter().position(|(c, _)| *c == "initech").unwrap();
        env.cp
            .argosy_writes(&env.cp.workloads()[i].name)?
            .into_iter()
            .filter(|e| e.resource.as_deref() != Some("leases"))
            .filter(|e| e.received < window_end)
            .map(|e| e.describe())
            .collect()
    };
    assert!(
        early.is_empty(),
        "writes to gold inside the window: {early:#?}"
    );
    Ok(())
}
