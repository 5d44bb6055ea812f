//! Refresh like Argo CD, against real kube-apiservers (one management and one workload
//! cluster) and a real Git remote: `git daemon` serving the test's repository over
//! `git://127.0.0.1:PORT/`, read through the controller's remote cache with its refresh
//! interval set to an hour (and the periodic resync and the git generator's requeue too),
//! so that only a refresh request can explain a new commit being seen within seconds.
//!
//! * `argocd.argoproj.io/refresh: normal|hard` on an Application: synced to the new commit
//!   within 2 s, the request removed;
//! * `argocd.argoproj.io/application-set-refresh` on an ApplicationSet: regenerated within
//!   2 s, the request removed;
//! * a push webhook POSTed to the follower of two replicas: the leader syncs the new commit;
//!   the follower's only writes are the refresh request (and its Lease attempts).
//!
//! Before each refresh, a control: a change to the object (a label) reconciles it and the
//! new commit is still not seen, so the remote cache's interval is real.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use argosy::run::{RunArgs, SyncEngine};
use argosy_crds::consts::{
    APPSET_REFRESH_ANNOTATION, REFRESH_ANNOTATION, REFRESH_TIMESTAMP_ANNOTATION,
};
use argosy_sync_engine::repo::{TreeEntry, write_tree_commit};
use argosy_sync_engine::url_policy::UrlPolicy;
use argosy_tests::argocd::{
    ARGOCD_NAMESPACE, ControllerHandle, application_resource, apply_json, appset_manifest,
    appset_resource, argocd_control_plane, init_tracing, run_args, start_controller, wait_for,
};
use argosy_tests::fixtures::register_cluster;
use argosy_tests::ports::free_port;
use argosy_tests::{ControlPlane, MANAGEMENT, TestCluster};
use hmac::{Hmac, Mac};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

/// One test at a time: each runs two kube-apiservers on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How soon a refresh request must be acted on.
const AT_ONCE: Duration = Duration::from_secs(2);
/// Long enough that no periodic check (remote refs, resync, git generator requeue) falls
/// into a test.
const AN_HOUR: Duration = Duration::from_secs(3600);
const WEBHOOK_SECRET: &str = "refresh-test-secret";
/// Destination namespace on the workload cluster.
const TARGET_NS: &str = "refreshed";

/// `git daemon` serving the bare repositories under a directory; stopped on drop.
struct GitDaemon {
    child: Child,
    port: u16,
}

impl GitDaemon {
    /// Serves `base`, logging to `log`.
    fn start(base: &Path, log: &Path) -> Result<GitDaemon> {
        // `git-daemon` itself: `git daemon` would run it as a child that outlives a kill.
        let exec_path = Command::new("git")
            .arg("--exec-path")
            .output()
            .context("git --exec-path (is git installed?)")?;
        let daemon = PathBuf::from(String::from_utf8(exec_path.stdout)?.trim()).join("git-daemon");
        let port = free_port()?;
        let child = Command::new(&daemon)
            .arg("--export-all")
            .arg("--reuseaddr")
            .arg("--informative-errors")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("starting {}", daemon.display()))?;
        let mut daemon = GitDaemon { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = daemon.child.try_wait()? {
                bail!("git daemon exited: {status}");
            }
            ensure!(
                Instant::now() < deadline,
                "git daemon is not listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(daemon)
    }

    fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Env {
    cp: ControlPlane,
    client: Client,
    dir: tempfile::TempDir,
    daemon: GitDaemon,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Env {
    async fn start() -> Result<Env> {
        init_tracing();
        let serial = SERIAL.lock().await;
        let (cp, client) = argocd_control_plane(1).await?;
        register_cluster(&client, "w1", &cp.workloads()[0], &[]).await?;
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("served"))?;
        let daemon = GitDaemon::start(
            &dir.path().join("served"),
            &dir.path().join("git-daemon.log"),
        )?;
        Ok(Env {
            cp,
            client,
            dir,
            daemon,
            _serial: serial,
        })
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("served/fleet.git")
    }

    fn repo_url(&self) -> String {
        self.daemon.url("fleet.git")
    }

    fn workload(&self) -> &TestCluster {
        &self.cp.workloads()[0]
    }

    /// Commits exactly `files` (path -> content) as the new tree of `main`.
    fn commit(&self, files: &[(&str, &str)]) -> Result<String> {
        let entries: BTreeMap<String, TreeEntry> = files
            .iter()
            .map(|(p, c)| ((*p).to_owned(), TreeEntry::File((*c).to_owned())))
            .collect();
        write_tree_commit(&self.repo(), "refs/heads/main", &entries)
            .map(|id| id.to_string())
            .map_err(|e| anyhow::anyhow!(e))
    }

    /// Controller settings: the remote cache, resync and git generator requeue at an hour,
    /// `git://` on loopback allowed, the listener on a free port.
    fn args(&self, identity: &str, engine: SyncEngine) -> Result<(RunArgs, u16)> {
        let mut args = run_args(identity, self.dir.path().join(format!("cache-{identity}")));
        args.sync_engine = engine;
        args.url_policy = UrlPolicy {
            allow_internal_hosts: true,
            ..UrlPolicy::default()
        };
        args.repo_refresh = AN_HOUR;
        args.sync.resync = AN_HOUR;
        args.git_requeue = AN_HOUR;
        args.webhook.github_secret = Some(WEBHOOK_SECRET.to_owned());
        let port = free_port()?;
        args.listen = Some(([127, 0, 0, 1], port).into());
        Ok((args, port))
    }

    fn api(&self, resource: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ARGOCD_NAMESPACE, resource)
    }

    /// An automated Application `name` deploying `app/` of the repository to the workload.
    async fn apply_app(&self, name: &str) -> Result<()> {
        apply_json(
            &self.client,
            &application_resource(),
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE},
            "spec": {
                "project": "default",
                "source": {"repoURL": self.repo_url(), "targetRevision": "main", "path": "app"},
                "destination": {"server": self.workload().server, "namespace": TARGET_NS},
                "syncPolicy": {"automated": {"prune": true},
                               "syncOptions": ["CreateNamespace=true"]},
            }}),
        )
        .await?;
        Ok(())
    }

    async fn get(&self, resource: &ApiResource, name: &str) -> Result<Option<Value>> {
        Ok(self
            .api(resource)
            .get_opt(name)
            .await?
            .map(|o| serde_json::to_value(o).unwrap()))
    }

    /// The `key` of the ConfigMap `settings` on the workload cluster, if it exists.
    async fn deployed(&self) -> Result<Option<String>> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.workload().client().await?,
            TARGET_NS,
            &ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
        );
        Ok(api.get_opt("settings").await?.and_then(|cm| {
            cm.data
                .pointer("/data/key")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }))
    }

    /// Waits (at most `timeout`) until Application `name` is synced to `commit` and its
    /// ConfigMap holds `value`.
    async fn wait_synced(
        &self,
        name: &str,
        commit: &str,
        value: &str,
        timeout: Duration,
    ) -> Result<()> {
        wait_for(
            &format!("{name} synced to {commit} ({value})"),
            timeout,
            || async {
                let app = self.get(&application_resource(), name).await?;
                let revision = app
                    .as_ref()
                    .and_then(|a| a.pointer("/status/sync/revision"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let deployed = self.deployed().await?;
                Ok(
                    (revision.as_deref() == Some(commit) && deployed.as_deref() == Some(value))
                        .then_some(()),
                )
            },
        )
        .await
    }

    /// Sets annotations on `name` (a merge patch, as `kubectl annotate` or Argo CD's CLI).
    async fn annotate(&self, resource: &ApiResource, name: &str, annotations: Value) -> Result<()> {
        self.api(resource)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
            )
            .await?;
        Ok(())
    }

    /// Changes a label of `name` (a change that reconciles it, and asks for no refresh).
    async fn poke(&self, resource: &ApiResource, name: &str, value: &str) -> Result<()> {
        self.api(resource)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"poked": value}}})),
            )
            .await?;
        Ok(())
    }

    /// Waits until `name` carries neither `annotation` nor the refresh timestamp.
    async fn wait_request_removed(
        &self,
        resource: &ApiResource,
        name: &str,
        annotation: &str,
    ) -> Result<()> {
        wait_for(
            &format!("{annotation} removed from {name}"),
            Duration::from_secs(10),
            || async {
                let object = self.get(resource, name).await?.context("gone")?;
                let annotations = object.pointer("/metadata/annotations");
                let has = |key: &str| annotations.and_then(|a| a.get(key)).is_some();
                Ok((!has(annotation) && !has(REFRESH_TIMESTAMP_ANNOTATION)).then_some(()))
            },
        )
        .await
    }
}

/// The sum of the samples of `metric` on the listener `port`'s `/metrics`.
async fn metric_sum(port: u16, metric: &str) -> Result<u64> {
    let (status, answer) = argosy_tests::probe::get(port, "/metrics", None).await?;
    ensure!(status == 200, "GET /metrics answered {status}");
    let prefix = format!("{metric}{{");
    Ok(answer
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

const APP_RECONCILES: &str = "argosy_app_reconcile_duration_seconds_count";
const APPSET_RECONCILES: &str = "argosy_applicationset_reconcile_duration_seconds_count";

/// Pokes `name` and waits for the reconcile that follows (`metric` counts reconciles on
/// the listener `port`): a reconcile that asked for no refresh.
async fn reconciled_without_refresh(
    env: &Env,
    port: u16,
    metric: &str,
    resource: &ApiResource,
    name: &str,
) -> Result<()> {
    let before = metric_sum(port, metric).await?;
    env.poke(resource, name, &before.to_string()).await?;
    wait_for(
        &format!("{name} reconciled after a label change"),
        Duration::from_secs(10),
        || async { Ok((metric_sum(port, metric).await? > before).then_some(())) },
    )
    .await
}

fn configmap(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  key: \"{value}\"\n"
    )
}

/// `normal`, then `hard`: the new commit is synced within 2 s, where without the request
/// (a label change reconciles the app) it is not seen, and the request is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_annotation_syncs_the_new_commit_at_once_and_is_removed() -> Result<()> {
    let env = Env::start().await?;
    let first = env.commit(&[("app/settings.yaml", &configmap("one"))])?;
    let (args, port) = env.args("refresh", SyncEngine::Argosy)?;
    let controller = start_controller(env.cp.management(), argosy::run::USER_AGENT, args).await?;
    env.apply_app("web").await?;
    env.wait_synced("web", &first, "one", Duration::from_secs(60))
        .await?;
    let apps = application_resource();

    let mut commit = first;
    for (refresh, value) in [("normal", "two"), ("hard", "three")] {
        let next = env.commit(&[("app/settings.yaml", &configmap(value))])?;
        reconciled_without_refresh(&env, port, APP_RECONCILES, &apps, "web").await?;
        let app = env.get(&apps, "web").await?.context("web")?;
        ensure!(
            app.pointer("/status/sync/revision") == Some(&json!(commit)),
            "without a refresh the remote is not checked within its interval: {app:#}"
        );
        ensure!(env.deployed().await?.as_deref() != Some(value));

        let asked = Instant::now();
        env.annotate(&apps, "web", json!({REFRESH_ANNOTATION: refresh}))
            .await?;
        env.wait_synced("web", &next, value, AT_ONCE)
            .await
            .with_context(|| format!("a {refresh} refresh"))?;
        eprintln!("{refresh} refresh: synced after {:?}", asked.elapsed());
        env.wait_request_removed(&apps, "web", REFRESH_ANNOTATION)
            .await?;
        commit = next;
    }

    // The removals were the controller's own writes: their echoes reconciled nothing more
    // than the handful of passes above (a loop would show hundreds by now).
    let reconciles = metric_sum(port, APP_RECONCILES).await?;
    ensure!(reconciles < 40, "{reconciles} reconciles: a loop?");
    drop(controller);
    Ok(())
}

/// The ApplicationSet's request regenerates within 2 s (a new directory in Git becomes an
/// Application), where a label change does not, and is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appset_refresh_annotation_regenerates_at_once_and_is_removed() -> Result<()> {
    let env = Env::start().await?;
    env.commit(&[("apps/one/settings.yaml", &configmap("one"))])?;
    let (args, port) = env.args("appset-refresh", SyncEngine::Argocd)?;
    let controller = start_controller(env.cp.management(), argosy::run::USER_AGENT, args).await?;
    let appsets = appset_resource();
    let apps = application_resource();
    apply_json(
        &env.client,
        &appsets,
        appset_manifest(
            "fleet",
            json!({
                "generators": [{"git": {"repoURL": env.repo_url(), "revision": "main",
                                        "directories": [{"path": "apps/*"}]}}],
                "template": {
                    "metadata": {"name": "{{path.basename}}"},
                    "spec": {
                        "project": "default",
                        "source": {"repoURL": env.repo_url(), "targetRevision": "main",
                                   "path": "{{path}}"},
                        "destination": {"server": env.workload().server,
                                        "namespace": "{{path.basename}}"},
                    },
                },
            }),
        ),
    )
    .await?;
    wait_for("Application one", Duration::from_secs(60), || async {
        Ok(env.get(&apps, "one").await?.map(|_| ()))
    })
    .await?;

    env.commit(&[
        ("apps/one/settings.yaml", &configmap("one")),
        ("apps/two/settings.yaml", &configmap("two")),
    ])?;
    reconciled_without_refresh(&env, port, APPSET_RECONCILES, &appsets, "fleet").await?;
    ensure!(
        env.get(&apps, "two").await?.is_none(),
        "without a refresh the remote is not checked within its interval"
    );

    let asked = Instant::now();
    env.annotate(
        &appsets,
        "fleet",
        json!({APPSET_REFRESH_ANNOTATION: "true"}),
    )
    .await?;
    wait_for("Application two", AT_ONCE, || async {
        Ok(env.get(&apps, "two").await?.map(|_| ()))
    })
    .await?;
    eprintln!(
        "ApplicationSet refresh: regenerated after {:?}",
        asked.elapsed()
    );
    env.wait_request_removed(&appsets, "fleet", APPSET_REFRESH_ANNOTATION)
        .await?;
    let reconciles = metric_sum(port, APPSET_RECONCILES).await?;
    ensure!(reconciles < 20, "{reconciles} reconciles: a loop?");
    drop(controller);
    Ok(())
}

/// A signed GitHub push for the repository, its `git_url` the daemon's URL.
fn github_push(env: &Env) -> (String, String) {
    let body = json!({
        "ref": "refs/heads/main",
        "repository": {
            "full_name": "platform/fleet",
            "git_url": env.repo_url(),
            "html_url": "https://git.example.com/platform/fleet",
            "default_branch": "main",
        },
    })
    .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (body, format!("sha256={hex}"))
}

/// Two replicas (leader election on, so the sync engine is sharded by cluster); the push
/// webhook reaches the replica that does not sync the app. That replica cannot write for
/// the app, so it asks for a refresh (the one write it may make); the replica holding the
/// app's cluster syncs the new commit and removes the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_webhook_to_another_replica_makes_the_apps_replica_sync() -> Result<()> {
    const LEASE: &str = "argosy-refresh";
    let env = Env::start().await?;
    let first = env.commit(&[("app/settings.yaml", &configmap("one"))])?;
    let replica = |identity: &str| -> Result<(RunArgs, u16)> {
        let (mut args, port) = env.args(identity, SyncEngine::Argosy)?;
        args.leader_election = true;
        args.lease_name = LEASE.to_owned();
        args.lease_duration = Duration::from_secs(15);
        Ok((args, port))
    };
    let mut replicas = Vec::new();
    for identity in ["replica-a", "replica-b"] {
        let (args, port) = replica(identity)?;
        let user_agent = format!("argosy-{identity}");
        let handle: ControllerHandle =
            start_controller(env.cp.management(), &user_agent, args).await?;
        replicas.push((handle, port, user_agent));
    }
    env.apply_app("web").await?;
    env.wait_synced("web", &first, "one", Duration::from_secs(60))
        .await?;
    // Which replica syncs the app: the one holding its cluster.
    let server = argosy_crds::server_key(&env.cp.workloads()[0].server);
    let held_line = format!("argosy_shard_cluster_held{{cluster=\"{server}\"}} 1");
    let holder = wait_for(
        "one replica holds the cluster",
        Duration::from_secs(30),
        || async {
            let mut holders = Vec::new();
            for (index, (_, port, _)) in replicas.iter().enumerate() {
                let (_, metrics) = argosy_tests::probe::get(*port, "/metrics", None).await?;
                if metrics.lines().any(|l| l == held_line) {
                    holders.push(index);
                }
            }
            Ok((holders.len() == 1).then(|| holders[0]))
        },
    )
    .await?;
    let (follower_port, follower_agent) = {
        let (_, port, agent) = &replicas[1 - holder];
        (*port, agent.clone())
    };
    let apps = application_resource();
    let since = k8s_openapi::jiff::Timestamp::now();

    let second = env.commit(&[("app/settings.yaml", &configmap("two"))])?;
    let (body, signature) = github_push(&env);
    // The follower's listener answers once its routes are up.
    let client = reqwest::Client::new();
    let status = wait_for(
        "the follower's webhook",
        Duration::from_secs(30),
        || async {
            let answer = client
                .post(format!("http://127.0.0.1:{follower_port}/api/webhook"))
                .header("content-type", "application/json")
                .header("x-github-event", "push")
                .header("x-hub-signature-256", &signature)
                .body(body.clone())
                .send()
                .await;
            Ok(answer.ok().map(|a| a.status().as_u16()))
        },
    )
    .await?;
    ensure!(
        status == 202,
        "the follower answered the push with {status}"
    );
    let pushed = Instant::now();
    env.wait_synced("web", &second, "two", Duration::from_secs(10))
        .await
        .context("the replica syncing the app did not sync the pushed commit")?;
    eprintln!(
        "push to the other replica: the app's replica synced after {:?}",
        pushed.elapsed()
    );
    env.wait_request_removed(&apps, "web", REFRESH_ANNOTATION)
        .await?;

    // What the other replica wrote since: the refresh request, nothing else (Lease
    // renewals aside).
    let by_follower: Vec<String> = env
        .cp
        .audit_writes(MANAGEMENT)?
        .into_iter()
        .filter(|e| e.user_agent == follower_agent && e.received >= since)
        .filter(|e| e.resource.as_deref() != Some("leases"))
        .map(|e| format!("{} {}", e.describe(), e.request_uri))
        .collect();
    ensure!(
        by_follower.len() == 1
            && by_follower[0].starts_with("patch applications argocd/web")
            && by_follower[0].contains("fieldManager=argosy-refresh"),
        "the other replica's writes: {by_follower:#?}"
    );
    drop(replicas);
    Ok(())
}
